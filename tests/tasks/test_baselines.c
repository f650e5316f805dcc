/*
 * test_baselines.c - the classical baselines on problems with known answers,
 * against naive twins written here, and on hand-built batches (the task
 * samplers are not used: every batch is filled by hand in the interleaved
 * layout x_0, y_0, x_1, y_1, ...).
 *
 * Randomised tests draw from test_rng seeded by --seed (printed first).
 */
#include "tasks/baselines.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/rng.h"
#include "tasks/eval.h"
#include "testlib.h"

/* ---- hand-built batches ------------------------------------------------------- */

typedef struct {
    batch b;
    float *pred; /* (B, T, 1) */
} tbatch;

static void tb_alloc(tbatch *t, int B, int T, int d) {
    memset(t, 0, sizeof *t);
    t->b.B = t->b.cap_B = B;
    t->b.T = t->b.cap_T = T;
    t->b.d = d;
    t->b.O = 1;
    t->b.loss = LOSS_MSE;
    t->b.x = calloc((size_t)B * T * d, sizeof(float));
    t->b.y = calloc((size_t)B * T, sizeof(float));
    t->b.mask = calloc((size_t)B * T, sizeof(float));
    t->b.metric = calloc((size_t)B * T, sizeof(float));
    t->b.example = malloc((size_t)B * T * sizeof(int));
    t->pred = calloc((size_t)B * T, sizeof(float));
    for (int i = 0; i < B * T; i++) t->b.example[i] = -1;
}

static void tb_free(tbatch *t) {
    free(t->b.x), free(t->b.y), free(t->b.mask), free(t->b.metric), free(t->b.example), free(t->pred);
}

/* Put example i of prompt b: x (d) at slot 2i, y at slot 2i+1 coordinate 0,
 * target y and a metric slot at 2i. */
static void tb_set(tbatch *t, int b, int i, const double *x, double y) {
    const int T = t->b.T, d = t->b.d;
    size_t s = (size_t)b * T + 2 * (size_t)i;
    for (int c = 0; c < d; c++) t->b.x[s * d + c] = (float)x[c];
    if (2 * i + 1 < T) t->b.x[(s + 1) * d] = (float)y;
    t->b.y[s] = (float)y;
    t->b.mask[s] = 1.0f;
    t->b.metric[s] = 1.0f;
    t->b.example[s] = i;
}

/* The examples of prompt b back as double, as the baselines see them
 * (float-rounded). X (n, d), y (n). */
static void tb_get(const tbatch *t, int b, int n, double *X, double *y) {
    const int T = t->b.T, d = t->b.d;
    for (int i = 0; i < n; i++) {
        size_t s = (size_t)b * T + 2 * (size_t)i;
        for (int c = 0; c < d; c++) X[(size_t)i * d + c] = t->b.x[s * d + c];
        y[i] = t->b.x[(s + 1) * d];
    }
}

static double dotd(const double *a, const double *b, int n) {
    double s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Solve the m x m system M a = r by Gaussian elimination with partial
 * pivoting (M and r are overwritten). */
static void naive_solve(double *M, double *r, int m) {
    for (int k = 0; k < m; k++) {
        int piv = k;
        for (int i = k + 1; i < m; i++)
            if (fabs(M[i * m + k]) > fabs(M[piv * m + k])) piv = i;
        for (int j = 0; j < m; j++) {
            double t = M[k * m + j];
            M[k * m + j] = M[piv * m + j];
            M[piv * m + j] = t;
        }
        double t = r[k];
        r[k] = r[piv];
        r[piv] = t;
        for (int i = k + 1; i < m; i++) {
            double f = M[i * m + k] / M[k * m + k];
            for (int j = k; j < m; j++) M[i * m + j] -= f * M[k * m + j];
            r[i] -= f * r[k];
        }
    }
    for (int k = m - 1; k >= 0; k--) {
        double s = r[k];
        for (int j = k + 1; j < m; j++) s -= M[k * m + j] * r[j];
        r[k] = s / M[k * m + k];
    }
}

/* Naive twin of minimum-norm least squares: the ridge limit, which tends to
 * pinv(X) y as lam -> 0 (error ~ lam / s_min^2), also for rank-deficient X.
 * The smaller system is solved: w = X^T (X X^T + lam I)^{-1} y when n <= d,
 * else w = (X^T X + lam I)^{-1} X^T y (the same w; better conditioned). */
static void naive_min_norm(const double *X, const double *y, int n, int d, double lam, double *w) {
    memset(w, 0, (size_t)d * sizeof *w);
    if (n == 0) return;
    int m = n <= d ? n : d;
    double *M = malloc((size_t)m * m * sizeof *M), *a = malloc((size_t)m * sizeof *a);
    for (int i = 0; i < m; i++) {
        for (int j = 0; j < m; j++) {
            double v = 0;
            if (n <= d) v = dotd(X + (size_t)i * d, X + (size_t)j * d, d);
            else
                for (int k = 0; k < n; k++) v += X[(size_t)k * d + i] * X[(size_t)k * d + j];
            M[i * m + j] = v + (i == j ? lam : 0);
        }
        if (n <= d) a[i] = y[i];
        else {
            a[i] = 0;
            for (int k = 0; k < n; k++) a[i] += X[(size_t)k * d + i] * y[k];
        }
    }
    naive_solve(M, a, m);
    if (n <= d) {
        for (int i = 0; i < n; i++)
            for (int c = 0; c < d; c++) w[c] += X[(size_t)i * d + c] * a[i];
    } else {
        memcpy(w, a, (size_t)d * sizeof *w);
    }
    free(M), free(a);
}

/* ---- least squares -------------------------------------------------------------- */

static void test_lsq_recovers_w(void) {
    test_rng r = {test_seed() ^ 0x11};
    const int d = 8;
    baseline_ws *ws;
    CHECK(baseline_ws_new(&ws, 1, 64, d) == ICL_OK, "%s", icl_error());
    double X[32 * 8], y[32], w[8], wh[8];
    for (int c = 0; c < d; c++) w[c] = test_rng_normal(&r);
    for (int i = 0; i < 32; i++) {
        for (int c = 0; c < d; c++) X[i * d + c] = test_rng_normal(&r);
        y[i] = dotd(X + i * d, w, d);
    }
    double worst = 0;
    for (int n = d; n <= 32; n += 8) {
        baseline_fit_least_squares(ws, X, y, n, d, wh);
        for (int c = 0; c < d; c++) worst = fmax(worst, fabs(wh[c] - w[c]));
    }
    printf("    lsq from >= d noiseless points: max |w_hat - w| = %.3g (tol 1e-4)\n", worst);
    CHECK(worst <= 1e-4, "w not recovered: %g", worst);
    baseline_ws_free(ws);
}

static void test_lsq_min_norm_hand(void) {
    baseline_ws *ws;
    CHECK(baseline_ws_new(&ws, 1, 16, 3) == ICL_OK, "%s", icl_error());
    /* x1 = (1,0,0), y1 = 2; x2 = (0,1,1), y2 = 4. X X^T = diag(1, 2), so
     * w = X^T (X X^T)^{-1} y = 2 (1,0,0) + 2 (0,1,1) = (2, 2, 2). */
    double X1[] = {1, 0, 0, 0, 1, 1}, y1[] = {2, 4}, w[3];
    baseline_fit_least_squares(ws, X1, y1, 2, 3, w);
    double e1 = fabs(w[0] - 2) + fabs(w[1] - 2) + fabs(w[2] - 2);
    /* Repeated, inconsistent rows (like outliers): x = (1,1,0) twice with
     * y = 1 and 3: least squares y = 2 on that row, min norm w = (1, 1, 0). */
    double X2[] = {1, 1, 0, 1, 1, 0}, y2[] = {1, 3};
    baseline_fit_least_squares(ws, X2, y2, 2, 3, w);
    double e2 = fabs(w[0] - 1) + fabs(w[1] - 1) + fabs(w[2]);
    /* Only zero rows, and no rows: w = 0. */
    double X3[] = {0, 0, 0}, y3[] = {5};
    baseline_fit_least_squares(ws, X3, y3, 1, 3, w);
    double e3 = fabs(w[0]) + fabs(w[1]) + fabs(w[2]);
    baseline_fit_least_squares(ws, X3, y3, 0, 3, w);
    e3 += fabs(w[0]) + fabs(w[1]) + fabs(w[2]);
    printf("    hand cases: |w - (2,2,2)|_1 = %.3g, |w - (1,1,0)|_1 = %.3g, zero rows %.3g (tol 1e-10)\n", e1, e2, e3);
    CHECK(e1 <= 1e-10, "2-point min-norm case: w = (%g, %g, %g)", w[0], w[1], w[2]);
    CHECK(e2 <= 1e-10, "repeated-row case off by %g", e2);
    CHECK(e3 == 0.0, "zero rows should give w = 0 exactly (%g)", e3);
    baseline_ws_free(ws);
}

/* The batch driver at every prefix against the naive ridge-limit twin, on
 * prompts that are plain, curriculum-truncated (zero coordinates) and full of
 * repeated all-ones outlier rows (rank deficiency beyond n < d). */
static void test_lsq_batch_vs_naive(void) {
    test_rng r = {test_seed() ^ 0x12};
    const int B = 6, n = 16, d = 6, T = 2 * n;
    tbatch t;
    tb_alloc(&t, B, T, d);
    for (int b = 0; b < B; b++) {
        double w[6], x[6];
        for (int c = 0; c < d; c++) w[c] = test_rng_normal(&r);
        for (int i = 0; i < n; i++) {
            int outlier = (b >= 4) && test_rng_uniform(&r) < 0.6;
            for (int c = 0; c < d; c++) x[c] = outlier ? 1.0 : test_rng_normal(&r);
            if (b == 2 || b == 3)
                for (int c = 3; c < d; c++) x[c] = 0.0; /* curriculum d_cur = 3 */
            tb_set(&t, b, i, x, outlier ? 1.0 : dotd(x, w, d));
        }
    }
    baseline_ws *ws;
    CHECK(baseline_ws_new(&ws, B, T, d) == ICL_OK, "%s", icl_error());
    CHECK(baseline_predict(baseline_by_name("least_squares"), ws, &t.b, t.pred, 0) == ICL_OK, "%s", icl_error());
    double X[16 * 6], y[16], wn[6], worst = 0;
    for (int b = 0; b < B; b++) {
        tb_get(&t, b, n, X, y);
        for (int i = 0; i < n; i++) {
            naive_min_norm(X, y, i, d, 1e-10, wn);
            double want = dotd(wn, X + i * d, d), got = t.pred[(size_t)b * T + 2 * i];
            worst = fmax(worst, fabs(got - want) / (1 + fabs(want)));
        }
    }
    printf("    lsq batch vs naive ridge-limit twin: worst rel diff %.3g (tol 1e-4)\n", worst);
    CHECK(worst <= 1e-4, "least squares differs from the naive twin: %g", worst);
    /* Noiseless clean prompts are predicted exactly from d examples on. */
    double exact = 0;
    for (int b = 0; b < 2; b++)
        for (int i = d; i < n; i++) exact = fmax(exact, fabs(t.pred[(size_t)b * T + 2 * i] - t.b.y[(size_t)b * T + 2 * i]));
    CHECK(exact <= 1e-4, "from d examples on the prediction should be exact: %g", exact);
    tb_free(&t);
    baseline_ws_free(ws);
}

/* ---- Lasso ---------------------------------------------------------------------- */

/* Naive twin: cyclic coordinate descent on the residual (no Gram matrix),
 * run for a fixed, large number of sweeps. */
static void naive_lasso(const double *X, const double *y, int n, int d, double alpha, int sweeps, double *w) {
    double *res = malloc((size_t)n * sizeof *res);
    memset(w, 0, (size_t)d * sizeof *w);
    memcpy(res, y, (size_t)n * sizeof *res);
    for (int it = 0; it < sweeps; it++) {
        for (int j = 0; j < d; j++) {
            double sq = 0, rho = 0;
            for (int i = 0; i < n; i++) {
                double xij = X[(size_t)i * d + j];
                sq += xij * xij;
                rho += xij * (res[i] + xij * w[j]);
            }
            if (sq == 0) continue;
            double a = alpha * n, wn = rho > a ? (rho - a) / sq : rho < -a ? (rho + a) / sq : 0.0;
            for (int i = 0; i < n; i++) res[i] -= X[(size_t)i * d + j] * (wn - w[j]);
            w[j] = wn;
        }
    }
    free(res);
}

/* Worst KKT violation of (1/2n)||y - Xw||^2 + alpha ||w||_1 at w, over
 * alpha: g_j = x_j . (y - Xw) / n must equal alpha sign(w_j) where w_j != 0
 * and be at most alpha in magnitude where w_j = 0. */
static double kkt_violation(const double *X, const double *y, int n, int d, double alpha, const double *w) {
    double worst = 0;
    for (int j = 0; j < d; j++) {
        double g = 0;
        for (int i = 0; i < n; i++) g += X[i * d + j] * (y[i] - dotd(X + i * d, w, d));
        g /= n;
        double viol = w[j] != 0 ? fabs(g - alpha * (w[j] > 0 ? 1 : -1)) : fmax(0, fabs(g) - alpha);
        worst = fmax(worst, viol / alpha);
    }
    return worst;
}

static void test_lasso_sparse(void) {
    test_rng r = {test_seed() ^ 0x21};
    const int d = 10, n = 40;
    double X[40 * 10], y[40], w[10] = {0}, wh[10];
    int supp[3];
    /* 3 distinct coordinates with values of magnitude in [1, 2]. */
    for (int k = 0; k < 3;) {
        int j = (int)(test_rng_uniform(&r) * d), dup = 0;
        for (int q = 0; q < k; q++) dup |= supp[q] == j;
        if (dup) continue;
        supp[k++] = j;
        w[j] = (test_rng_uniform(&r) < 0.5 ? -1 : 1) * (1 + test_rng_uniform(&r));
    }
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < d; c++) X[i * d + c] = test_rng_normal(&r);
        y[i] = dotd(X + i * d, w, d);
    }
    baseline_ws *ws;
    CHECK(baseline_ws_new(&ws, 1, 2 * n, d) == ICL_OK, "%s", icl_error());
    int sweeps = -1;
    baseline_fit_lasso(ws, X, y, n, d, 1e-3, wh, &sweeps);
    double worst = 0;
    int wrong_support = 0;
    for (int c = 0; c < d; c++) {
        worst = fmax(worst, fabs(wh[c] - w[c]));
        wrong_support += (wh[c] != 0.0) != (w[c] != 0.0);
    }
    printf("    lasso alpha=1e-3: %d sweeps, max |w_hat - w| = %.3g (tol 0.05), support errors %d\n", sweeps, worst,
           wrong_support);
    CHECK(wrong_support == 0, "support not exactly right (%d coordinates)", wrong_support);
    CHECK(worst <= 0.05, "values off by %g", worst);
    /* KKT conditions of (1/2n)||y - Xw||^2 + alpha ||w||_1 at the result:
     * g_j = x_j . (y - Xw) / n equals alpha sign(w_j) on the support and is
     * at most alpha in magnitude off it. */
    const double alphas[] = {1.0, 0.1, 0.01, 1e-3, 1e-4};
    double kkt = 0, twin = 0;
    for (int a = 0; a < 5; a++) {
        baseline_fit_lasso(ws, X, y, n, d, alphas[a], wh, &sweeps);
        kkt = fmax(kkt, kkt_violation(X, y, n, d, alphas[a], wh));
        double wn[10];
        naive_lasso(X, y, n, d, alphas[a], 5000, wn);
        for (int j = 0; j < d; j++) twin = fmax(twin, fabs(wn[j] - wh[j]));
    }
    printf("    lasso KKT: worst violation / alpha = %.3g (tol 1e-6); vs naive CD twin %.3g (tol 1e-5)\n", kkt, twin);
    CHECK(kkt <= 1e-6, "KKT violated: %g", kkt);
    CHECK(twin <= 1e-5, "differs from the naive twin: %g", twin);
    /* Degenerate designs: identical rows and columns (all-ones outlier
     * x's), and one all-zero column; the fit must still be optimal. */
    double Xd[6 * 4], yd[6], wd[4];
    for (int i = 0; i < 6; i++) {
        for (int c = 0; c < 4; c++) Xd[i * 4 + c] = c == 3 ? 0.0 : 1.0;
        yd[i] = 1.0 + 0.1 * i;
    }
    int sw_d = 0;
    baseline_fit_lasso(ws, Xd, yd, 6, 4, 1e-3, wd, &sw_d);
    double kkt_d = kkt_violation(Xd, yd, 6, 4, 1e-3, wd);
    printf("    degenerate design: KKT violation / alpha %.3g (tol 1e-6) in %d sweeps, w = (%g, %g, %g, %g)\n", kkt_d,
           sw_d, wd[0], wd[1], wd[2], wd[3]);
    CHECK(kkt_d <= 1e-6 && wd[3] == 0.0, "degenerate design not solved: %g", kkt_d);
    /* A huge alpha gives exactly zero weights. */
    baseline_fit_lasso(ws, X, y, n, d, 1e6, wh, &sweeps);
    int nonzero = 0;
    for (int c = 0; c < d; c++) nonzero += wh[c] != 0.0;
    CHECK(nonzero == 0, "alpha = 1e6 should give w = 0 exactly (%d non-zero)", nonzero);
    baseline_ws_free(ws);
}

/* The Lasso batch driver (warm-started across positions) agrees with fresh
 * single-problem fits at each prefix, and every fit satisfies the KKT
 * conditions, including below d examples with a tiny alpha (where plain CD
 * would need ~1/alpha sweeps) and with curriculum-zeroed coordinates. */
static void test_lasso_batch(void) {
    test_rng r = {test_seed() ^ 0x22};
    const int B = 3, n = 24, d = 8, T = 2 * n;
    tbatch t;
    tb_alloc(&t, B, T, d);
    for (int b = 0; b < B; b++) {
        double w[8] = {0}, x[8];
        w[b] = 1.5;
        w[b + 3] = -1.0;
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < d; c++) x[c] = test_rng_normal(&r);
            if (b == 2) x[6] = x[7] = 0.0; /* curriculum d_cur = 6 */
            tb_set(&t, b, i, x, dotd(x, w, d));
        }
    }
    baseline_ws *ws;
    CHECK(baseline_ws_new(&ws, B, T, d) == ICL_OK, "%s", icl_error());
    double X[24 * 8], y[24], w[8], worst = 0, kkt = 0;
    int max_sweeps = 0, sweeps;
    const char *names[] = {"lasso_0.1", "lasso_0.0001"};
    for (int k = 0; k < 2; k++) {
        const baseline_info *bl = baseline_by_name(names[k]);
        CHECK(baseline_predict(bl, ws, &t.b, t.pred, 0) == ICL_OK, "%s", icl_error());
        for (int b = 0; b < B; b++) {
            tb_get(&t, b, n, X, y);
            for (int i = 0; i < n; i++) {
                baseline_fit_lasso(ws, X, y, i, d, bl->alpha, w, &sweeps);
                if (i > 0) kkt = fmax(kkt, kkt_violation(X, y, i, d, bl->alpha, w));
                if (sweeps > max_sweeps) max_sweeps = sweeps;
                double want = i ? dotd(w, X + i * d, d) : 0.0;
                worst = fmax(worst, fabs(t.pred[(size_t)b * T + 2 * i] - want) / (1 + fabs(want)));
            }
        }
    }
    printf("    lasso batch (warm start) vs fresh fits: worst rel diff %.3g (tol 1e-6, float output); every prefix: "
           "KKT violation / alpha %.3g (tol 1e-6), at most %d sweeps\n", worst, kkt, max_sweeps);
    CHECK(worst <= 1e-6, "warm-started batch Lasso differs: %g", worst);
    CHECK(kkt <= 1e-6, "a prefix fit is not optimal: %g", kkt);
    tb_free(&t);
    baseline_ws_free(ws);
}

/* ---- tree --------------------------------------------------------------------------- */

/* The depth-2 tree that generates the data. */
static double gen_tree(const double *x) {
    if (x[0] <= 0.3) return x[1] <= -0.2 ? -10.0 : -8.0;
    return x[2] <= 0.5 ? 8.0 : 10.0;
}

static void test_tree_fits_own_depth(void) {
    test_rng r = {test_seed() ^ 0x31};
    const int d = 4, n = 200, nq = 1000;
    double *X = malloc(sizeof(double) * n * d), *y = malloc(sizeof(double) * n), *yh = malloc(sizeof(double) * n);
    double *Xq = malloc(sizeof(double) * nq * d), *yq = malloc(sizeof(double) * nq);
    for (int i = 0; i < n; i++) {
        for (int c = 0; c < d; c++) X[i * d + c] = test_rng_normal(&r);
        y[i] = gen_tree(X + i * d);
    }
    /* New points at least 0.1 from every threshold, so any threshold between
     * the neighbouring training values routes them like the true tree. */
    for (int i = 0; i < nq;) {
        double *x = Xq + (size_t)i * d;
        for (int c = 0; c < d; c++) x[c] = test_rng_normal(&r);
        if (fabs(x[0] - 0.3) < 0.1 || fabs(x[1] + 0.2) < 0.1 || fabs(x[2] - 0.5) < 0.1) continue;
        i++;
    }
    baseline_ws *ws;
    CHECK(baseline_ws_new(&ws, 1, 2 * n, d) == ICL_OK, "%s", icl_error());
    int leaves = 0;
    baseline_fit_tree(ws, X, y, n, d, 2, X, n, yh, &leaves);
    double train = 0, test = 0;
    for (int i = 0; i < n; i++) train = fmax(train, fabs(yh[i] - y[i]));
    baseline_fit_tree(ws, X, y, n, d, 2, Xq, nq, yq, NULL);
    for (int i = 0; i < nq; i++) test = fmax(test, fabs(yq[i] - gen_tree(Xq + i * d)));
    printf("    depth-2 tree: %d leaves, max train error %.3g, max error on new points %.3g (tol 1e-12)\n", leaves, train,
           test);
    CHECK(leaves == 4, "expected 4 leaves, got %d", leaves);
    CHECK(train <= 1e-12, "training error %g", train);
    CHECK(test <= 1e-12, "error on new points %g", test);
    /* Unlimited depth fits any labels on distinct points exactly; depth 4
     * has at most 16 leaves. */
    for (int i = 0; i < n; i++) y[i] = test_rng_normal(&r);
    baseline_fit_tree(ws, X, y, n, d, 0, X, n, yh, &leaves);
    train = 0;
    for (int i = 0; i < n; i++) train = fmax(train, fabs(yh[i] - y[i]));
    CHECK(train == 0.0, "unlimited tree should interpolate distinct points (error %g, %d leaves)", train, leaves);
    baseline_fit_tree(ws, X, y, n, d, 4, X, n, yh, &leaves);
    CHECK(leaves <= 16 && leaves >= 2, "depth-4 tree has %d leaves", leaves);
    free(X), free(y), free(yh), free(Xq), free(yq);
    baseline_ws_free(ws);
}

/* A depth-1 tree (stump) against a brute-force twin: every feature, every
 * midpoint, SSE computed directly. */
static void test_tree_stump_vs_naive(void) {
    test_rng r = {test_seed() ^ 0x32};
    baseline_ws *ws;
    CHECK(baseline_ws_new(&ws, 1, 64, 5) == ICL_OK, "%s", icl_error());
    double worst = 0;
    for (int trial = 0; trial < 20; trial++) {
        int n = 2 + trial, d = 1 + trial % 5;
        double X[32 * 5], y[32], yh[64];
        for (int i = 0; i < n; i++) {
            for (int c = 0; c < d; c++) X[i * d + c] = round(4 * test_rng_normal(&r)) / 4; /* ties */
            y[i] = test_rng_normal(&r);
        }
        double best = INFINITY, bl = 0, br = 0;
        int bf = -1;
        double bt = 0;
        for (int f = 0; f < d; f++) {
            for (int a = 0; a < n; a++) {
                for (int b = 0; b < n; b++) {
                    double va = X[a * d + f], vb = X[b * d + f];
                    if (!(va < vb)) continue;
                    int between = 0; /* only consecutive distinct values */
                    for (int c = 0; c < n; c++) between |= X[c * d + f] > va && X[c * d + f] < vb;
                    if (between) continue;
                    double thr = 0.5 * (va + vb), sl = 0, sr = 0, nl = 0, nr = 0, sse = 0;
                    for (int c = 0; c < n; c++) {
                        if (X[c * d + f] <= thr) sl += y[c], nl++;
                        else sr += y[c], nr++;
                    }
                    for (int c = 0; c < n; c++) {
                        double m = X[c * d + f] <= thr ? sl / nl : sr / nr;
                        sse += (y[c] - m) * (y[c] - m);
                    }
                    if (sse < best - 1e-12) best = sse, bf = f, bt = thr, bl = sl / nl, br = sr / nr;
                }
            }
        }
        /* Evaluate at the training points and at new points (which see
         * where between two training values the threshold lies). */
        double Q[64 * 5];
        for (int i = 0; i < 64; i++)
            for (int c = 0; c < d; c++) Q[i * d + c] = i < n ? X[i * d + c] : round(8 * test_rng_normal(&r)) / 8;
        baseline_fit_tree(ws, X, y, n, d, 1, Q, 64, yh, NULL);
        for (int i = 0; i < 64; i++) {
            double want = bf < 0 ? 0 : (Q[i * d + bf] <= bt ? bl : br);
            if (bf < 0) {
                for (int c = 0; c < n; c++) want += y[c] / n;
            }
            worst = fmax(worst, fabs(yh[i] - want));
        }
    }
    printf("    stump vs brute-force twin: worst diff %.3g (tol 1e-12)\n", worst);
    CHECK(worst <= 1e-12, "stump differs from brute force: %g", worst);
    baseline_ws_free(ws);
}

/* ---- k-NN and averaging ----------------------------------------------------------------- */

static void test_knn_averaging_hand(void) {
    /* Examples x: (0,0) y=1, (1,0) y=2, (0,2) y=3, (3,3) y=4; query (0.2, 0.1)
     * at position 4. Squared distances 0.05, 0.65, 3.65, 17.45: the 3 nearest
     * have y 1, 2, 3 -> 2. Averaging: w = mean y_j x_j = (14/4, 18/4) =
     * (3.5, 4.5), pred = 0.7 + 0.45 = 1.15. Earlier positions: i=0 -> 0;
     * i=1: knn 1, avg w = 1*(0,0) -> 0; i=2 (query (0,2)): knn (1+2)/2 = 1.5,
     * avg w = (1, 0) -> 0; i=3 (query (3,3)): knn 2, avg w = (2/3, 2) -> 8. */
    const double xs[5][2] = {{0, 0}, {1, 0}, {0, 2}, {3, 3}, {0.2, 0.1}};
    const double ys[5] = {1, 2, 3, 4, 0};
    const double want_knn[5] = {0, 1, 1.5, 2, 2}, want_avg[5] = {0, 0, 0, 8, 1.15};
    tbatch t;
    tb_alloc(&t, 1, 10, 2);
    for (int i = 0; i < 5; i++) tb_set(&t, 0, i, xs[i], ys[i]);
    /* Baselines read y from the y-token the prompt shows (x[b, 2i+1, 0]),
     * never from the targets: spoil the targets to prove it. */
    for (int i = 0; i < 10; i++) t.b.y[i] = 1000.0f;
    baseline_ws *ws;
    CHECK(baseline_ws_new(&ws, 1, 10, 2) == ICL_OK, "%s", icl_error());
    double ek = 0, ea = 0;
    CHECK(baseline_predict(baseline_by_name("knn"), ws, &t.b, t.pred, 0) == ICL_OK, "%s", icl_error());
    for (int i = 0; i < 5; i++) ek = fmax(ek, fabs(t.pred[2 * i] - want_knn[i]));
    CHECK(baseline_predict(baseline_by_name("averaging"), ws, &t.b, t.pred, 0) == ICL_OK, "%s", icl_error());
    for (int i = 0; i < 5; i++) ea = fmax(ea, fabs(t.pred[2 * i] - want_avg[i]));
    int odd_zero = 1;
    for (int i = 0; i < 5; i++) odd_zero &= t.pred[2 * i + 1] == 0.0f;
    printf("    hand 4-point case: knn max err %.3g, averaging max err %.3g (tol 1e-6, float output)\n", ek, ea);
    CHECK(ek <= 1e-6, "knn off by %g", ek);
    CHECK(ea <= 1e-6, "averaging off by %g", ea);
    CHECK(odd_zero, "non-metric slots must stay 0");
    /* Equal distances go to the earlier example: query (0,0), four points at
     * distance 1 with y 1..4 -> mean of the first three = 2. */
    double X4[] = {1, 0, 0, 1, -1, 0, 0, -1}, y4[] = {1, 2, 3, 4}, q[] = {0, 0}, out;
    baseline_knn_predict(X4, y4, 4, 2, 3, q, &out);
    CHECK(fabs(out - 2.0) < 1e-15, "knn tie-break: got %g, want 2", out);
    tb_free(&t);
    baseline_ws_free(ws);
}

/* ---- gd_2nn --------------------------------------------------------------------------------- */

#define NH BASELINE_GD2NN_WIDTH

/* Naive twin of the 2-layer net: loss and gradient with per-parameter
 * loops over samples. p: W1 (NH, d), b1 (NH), w2 (NH), b2. */
static double twin_loss_grad(const double *p, const double *X, const double *y, int n, int d, double *g) {
    const double *W1 = p, *b1 = p + NH * d, *w2 = b1 + NH, *b2 = w2 + NH;
    if (g) memset(g, 0, sizeof(double) * (NH * (d + 2) + 1));
    double loss = 0;
    for (int k = 0; k < n; k++) {
        double h[NH], out = *b2;
        for (int j = 0; j < NH; j++) {
            double a = b1[j];
            for (int c = 0; c < d; c++) a += W1[j * d + c] * X[k * d + c];
            h[j] = a > 0 ? a : 0;
            out += w2[j] * h[j];
        }
        double e = out - y[k];
        loss += e * e / n;
        if (!g) continue;
        double go = 2 * e / n;
        g[NH * (d + 2)] += go;
        for (int j = 0; j < NH; j++) {
            g[NH * d + NH + j] += go * h[j];
            if (h[j] > 0) {
                g[NH * d + j] += go * w2[j];
                for (int c = 0; c < d; c++) g[j * d + c] += go * w2[j] * X[k * d + c];
            }
        }
    }
    return loss;
}

static void test_gd2nn(void) {
    test_rng r = {test_seed() ^ 0x41};
    const int d = 5, n = 30;
    const int np = NH * (d + 2) + 1;
    double X[30 * 5], y[30], Xq[5 * 5], yq[5], yq2[5];
    /* Data from a random 2-layer ReLU net (the 2NN task, small). */
    double A[8 * 5], v[8];
    for (int i = 0; i < 40; i++) A[i] = test_rng_normal(&r);
    for (int j = 0; j < 8; j++) v[j] = test_rng_normal(&r);
    for (int i = 0; i < n + 5; i++) {
        double *x = i < n ? X + i * d : Xq + (i - n) * d, f = 0;
        for (int c = 0; c < d; c++) x[c] = test_rng_normal(&r);
        for (int j = 0; j < 8; j++) {
            double a = dotd(A + j * d, x, d);
            f += v[j] * (a > 0 ? a : 0) * 0.5;
        }
        if (i < n) y[i] = f;
    }
    baseline_ws *ws;
    CHECK(baseline_ws_new(&ws, 1, 2 * n, d) == ICL_OK, "%s", icl_error());
    double l0 = 0, l1 = 0;
    uint64_t seed = test_seed();
    baseline_fit_gd2nn(ws, X, y, n, d, seed, 7, Xq, 5, yq, &l0, &l1);
    printf("    gd_2nn training MSE %.4g -> %.4g after %d Adam steps (want < 0.5x)\n", l0, l1, BASELINE_GD2NN_STEPS);
    CHECK(l1 < 0.5 * l0, "training loss did not drop enough: %g -> %g", l0, l1);
    baseline_fit_gd2nn(ws, X, y, n, d, seed, 7, Xq, 5, yq2, NULL, NULL);
    CHECK(!memcmp(yq, yq2, sizeof yq), "same seed must give identical predictions");

    /* Twin: the same init (rng order W1, b1 | w2, b2) and PyTorch Adam,
     * with the naive gradient, first checked by central differences. */
    double *p = malloc(sizeof(double) * np), *g = malloc(sizeof(double) * np), *m = calloc(np, sizeof(double)),
           *vv = calloc(np, sizeof(double));
    rng_t g0 = rng_make(seed, 7);
    for (int i = 0; i < np; i++)
        p[i] = (i < NH * d + NH ? 1 / sqrt((double)d) : 1 / sqrt((double)NH)) * (2.0 * rng_uniform(&g0) - 1.0);
    twin_loss_grad(p, X, y, n, d, g);
    double fd_worst = 0;
    for (int i = 0; i < np; i += 7) {
        double o = p[i], h = 1e-6;
        p[i] = o + h;
        double lp = twin_loss_grad(p, X, y, n, d, NULL);
        p[i] = o - h;
        double lm = twin_loss_grad(p, X, y, n, d, NULL);
        p[i] = o;
        /* |fd - g| <= 1e-7 + 1e-4 |g|: the absolute part covers the
         * rounding of the difference quotient (~1e-16 L / h ~ 1e-9). */
        fd_worst = fmax(fd_worst, fabs((lp - lm) / (2 * h) - g[i]) / (1e-7 + 1e-4 * fabs(g[i])));
    }
    printf("    twin gradient vs central differences: worst |fd - g| / (1e-7 + 1e-4 |g|) = %.3g (tol 1)\n", fd_worst);
    CHECK(fd_worst <= 1.0, "twin gradient wrong: %g", fd_worst);
    double tl0 = twin_loss_grad(p, X, y, n, d, NULL);
    for (int t = 1; t <= BASELINE_GD2NN_STEPS; t++) {
        twin_loss_grad(p, X, y, n, d, g);
        for (int i = 0; i < np; i++) {
            m[i] = 0.9 * m[i] + 0.1 * g[i];
            vv[i] = 0.999 * vv[i] + 0.001 * g[i] * g[i];
            double mh = m[i] / (1 - pow(0.9, t)), vh = vv[i] / (1 - pow(0.999, t));
            /* PyTorch's m/(1-b1^t) / (sqrt(v)/sqrt(1-b2^t) + eps), written
             * with the bias-corrected moments. */
            p[i] -= BASELINE_GD2NN_LR * mh / (sqrt(vh) + 1e-8);
        }
    }
    double tl1 = twin_loss_grad(p, X, y, n, d, NULL), pw = 0;
    for (int q = 0; q < 5; q++) {
        double *x = Xq + q * d, out = p[NH * (d + 2)];
        for (int j = 0; j < NH; j++) {
            double a = p[NH * d + j];
            for (int c = 0; c < d; c++) a += p[j * d + c] * x[c];
            out += p[NH * d + NH + j] * (a > 0 ? a : 0);
        }
        pw = fmax(pw, fabs(out - yq[q]) / (1 + fabs(out)));
    }
    printf("    gd_2nn vs twin: loss %.6g/%.6g vs %.6g/%.6g, worst prediction diff %.3g (tol 1e-6)\n", l0, l1, tl0, tl1,
           pw);
    CHECK(fabs(tl0 - l0) <= 1e-12 * (1 + l0), "initial loss differs from the twin");
    CHECK(pw <= 1e-6, "trained predictions differ from the twin: %g", pw);
    free(p), free(g), free(m), free(vv);
    baseline_ws_free(ws);
}

/* The tree and gd_2nn batch paths equal their single-problem fits at each
 * prefix (gd_2nn prompt b uses stream b). */
static void test_refit_baselines_batch(void) {
    test_rng r = {test_seed() ^ 0x42};
    const int B = 2, n = 9, d = 3, T = 2 * n;
    tbatch t;
    tb_alloc(&t, B, T, d);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++) {
            double x[3] = {test_rng_normal(&r), test_rng_normal(&r), test_rng_normal(&r)};
            tb_set(&t, b, i, x, x[0] > 0 ? 1.0 : -1.0);
        }
    t.b.metric[4] = 0.0f; /* one prompt skips position 2: that slot stays 0 */
    baseline_ws *ws;
    CHECK(baseline_ws_new(&ws, B, T, d) == ICL_OK, "%s", icl_error());
    double X[9 * 3], y[9], out, worst = 0;
    const char *names[] = {"greedy_tree_4", "greedy_tree", "gd_2nn"};
    for (int k = 0; k < 3; k++) {
        const baseline_info *bl = baseline_by_name(names[k]);
        CHECK(baseline_predict(bl, ws, &t.b, t.pred, 99) == ICL_OK, "%s", icl_error());
        for (int b = 0; b < B; b++) {
            tb_get(&t, b, n, X, y);
            for (int i = 0; i < n; i++) {
                if (bl->kind == BASELINE_TREE) baseline_fit_tree(ws, X, y, i, d, bl->max_depth, X + i * d, 1, &out, NULL);
                else baseline_fit_gd2nn(ws, X, y, i, d, 99, (uint64_t)b, X + i * d, 1, &out, NULL, NULL);
                if (i == 0) out = 0;
                if (b == 0 && i == 2) out = 0;
                worst = fmax(worst, fabs(t.pred[(size_t)b * T + 2 * i] - out) / (1 + fabs(out)));
            }
        }
    }
    printf("    tree/gd_2nn batch vs single fits: worst rel diff %.3g (tol 1e-6)\n", worst);
    CHECK(worst <= 1e-6, "batch path differs: %g", worst);
    tb_free(&t);
    baseline_ws_free(ws);
}

/* ---- registry, errors, determinism ------------------------------------------------------ */

static void test_registry_and_errors(void) {
    int n = baseline_count();
    CHECK(n >= 12, "expected at least 12 baselines, got %d", n);
    for (int i = 0; i < n; i++) {
        const baseline_info *bl = baseline_at(i);
        CHECK(bl && baseline_by_name(bl->name) == bl, "baseline %d not found by its name", i);
        CHECK(bl && bl->description && strlen(bl->description) > 10, "baseline %d lacks a description", i);
    }
    CHECK(baseline_at(n) == NULL && baseline_at(-1) == NULL, "out-of-range index");
    CHECK(baseline_by_name("least_square") == NULL, "a misspelt name must not resolve");
    CHECK(strstr(icl_error(), "least_square") && strstr(icl_error(), "least_squares, knn"),
          "message should name the bad name and list the known ones: %s", icl_error());
    const char *want[] = {"least_squares", "knn", "averaging", "lasso_1", "lasso_0.1", "lasso_0.01", "lasso_0.001",
                          "lasso_0.0001", "greedy_tree_4", "greedy_tree", "gd_2nn", "chance"};
    for (int i = 0; i < 12; i++) CHECK(baseline_by_name(want[i]) != NULL, "missing baseline %s", want[i]);
    double c = 0;
    CHECK(baseline_chance(EVAL_SIGN_ACC, 0, &c) == ICL_OK && c == 0.5, "parity chance");
    CHECK(baseline_chance(EVAL_NEAREST_ACC, 8, &c) == ICL_OK && c == 0.125, "MQAR chance 1/kappa");
    CHECK(baseline_chance(EVAL_SQERR, 8, &c) == ICL_ERR_ARG, "squared error has no chance level");

    tbatch t;
    tb_alloc(&t, 2, 8, 3);
    double x[3] = {1, 2, 3};
    for (int i = 0; i < 4; i++) tb_set(&t, 0, i, x, 1.0);
    baseline_ws *ws;
    CHECK(baseline_ws_new(&ws, 2, 8, 3) == ICL_OK, "%s", icl_error());
    const baseline_info *lsq = baseline_by_name("least_squares");
    CHECK(baseline_predict(baseline_by_name("chance"), ws, &t.b, t.pred, 0) == ICL_ERR_ARG, "chance is no predictor");
    t.b.O = 2;
    CHECK(baseline_predict(lsq, ws, &t.b, t.pred, 0) == ICL_ERR_ARG && strstr(icl_error(), "O = 2"),
          "O != 1 must be refused with a clear message: %s", icl_error());
    t.b.O = 1;
    t.b.metric[3] = 1.0f; /* an odd slot: not the interleaved layout */
    t.b.example[3] = 1;
    CHECK(baseline_predict(lsq, ws, &t.b, t.pred, 0) == ICL_ERR_ARG && strstr(icl_error(), "interleaved"),
          "metric slot at t != 2*example must be refused: %s", icl_error());
    t.b.metric[3] = 0.0f;
    t.b.example[3] = -1;
    CHECK(baseline_predict(lsq, ws, &t.b, t.pred, 0) == ICL_OK, "%s", icl_error());
    baseline_ws_free(ws);
    CHECK(baseline_ws_new(&ws, 2, 6, 3) == ICL_OK, "%s", icl_error());
    CHECK(baseline_predict(lsq, ws, &t.b, t.pred, 0) == ICL_ERR_SHAPE && strstr(icl_error(), "T_max=6"),
          "a batch longer than the workspace must be refused: %s", icl_error());
    baseline_ws_free(ws);
    CHECK(baseline_ws_new(&ws, 0, 6, 3) == ICL_ERR_ARG && ws == NULL, "cap_B = 0");
    tb_free(&t);
}

/* The same batch gives bit-identical predictions with 1 and 2 threads. */
static void test_thread_independence(void) {
#ifdef _OPENMP
    test_rng r = {test_seed() ^ 0x51};
    const int B = 8, n = 20, d = 5, T = 2 * n;
    tbatch t;
    tb_alloc(&t, B, T, d);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++) {
            double x[5];
            for (int c = 0; c < d; c++) x[c] = test_rng_normal(&r);
            tb_set(&t, b, i, x, x[0] - 2 * x[3]);
        }
    float *p1 = malloc(sizeof(float) * B * T);
    const char *names[] = {"least_squares", "lasso_0.01", "greedy_tree", "knn", "averaging"};
    int max_t = omp_get_max_threads();
    int same = 1;
    for (int k = 0; k < 5; k++) {
        const baseline_info *bl = baseline_by_name(names[k]);
        baseline_ws *ws1, *ws2;
        omp_set_num_threads(1);
        baseline_ws_new(&ws1, B, T, d);
        baseline_predict(bl, ws1, &t.b, p1, 3);
        omp_set_num_threads(max_t > 1 ? max_t : 2);
        baseline_ws_new(&ws2, B, T, d);
        baseline_predict(bl, ws2, &t.b, t.pred, 3);
        if (memcmp(p1, t.pred, sizeof(float) * B * T)) {
            same = 0;
            printf("    %s differs between thread counts\n", names[k]);
        }
        baseline_ws_free(ws1);
        baseline_ws_free(ws2);
    }
    omp_set_num_threads(max_t);
    CHECK(same, "predictions depend on the thread count");
    free(p1);
    tb_free(&t);
#endif
}

/* End to end with eval: linear-regression prompts built here (x ~ N(0, I),
 * w ~ N(0, I), y = w.x, d = 5, 11 examples), 1280 prompts in batches of 64.
 * The zero predictor scores ~1 after dividing by d; least squares scores 0
 * from d examples on. */
static void test_eval_linear_regression(void) {
    test_rng r = {test_seed() ^ 0x61};
    const int B = EVAL_BATCH, n = 11, d = 5, T = 2 * n;
    tbatch t;
    tb_alloc(&t, B, T, d);
    baseline_ws *ws;
    CHECK(baseline_ws_new(&ws, B, T, d) == ICL_OK, "%s", icl_error());
    float *zero = calloc((size_t)B * T, sizeof(float));
    eval_acc a_lsq, a_zero;
    eval_acc_init(&a_lsq, n);
    eval_acc_init(&a_zero, n);
    for (int batch_i = 0; batch_i < EVAL_N_PROMPTS / B; batch_i++) {
        for (int b = 0; b < B; b++) {
            double w[5], x[5];
            for (int c = 0; c < d; c++) w[c] = test_rng_normal(&r);
            for (int i = 0; i < n; i++) {
                for (int c = 0; c < d; c++) x[c] = test_rng_normal(&r);
                tb_set(&t, b, i, x, dotd(w, x, d));
            }
        }
        CHECK(baseline_predict(baseline_by_name("least_squares"), ws, &t.b, t.pred, 0) == ICL_OK, "%s", icl_error());
        CHECK(eval_acc_add_batch(&a_lsq, &t.b, t.pred, d, EVAL_SQERR) == ICL_OK, "%s", icl_error());
        CHECK(eval_acc_add_batch(&a_zero, &t.b, zero, d, EVAL_SQERR) == ICL_OK, "%s", icl_error());
    }
    eval_curve cl, cz;
    CHECK(eval_acc_finish(&a_lsq, 5, &cl) == ICL_OK, "%s", icl_error());
    CHECK(eval_acc_finish(&a_zero, 5, &cz) == ICL_OK, "%s", icl_error());
    /* E[y^2 / d] = 1 exactly; each position's mean is within 5 standard
     * errors (std / sqrt(N), from the curve) of 1, and the average over
     * positions within 0.1. */
    double zmin = INFINITY, zmax = -INFINITY, lmax = 0, zavg = 0, zdev = 0;
    for (int p = 0; p < n; p++) {
        zmin = fmin(zmin, cz.mean[p]);
        zmax = fmax(zmax, cz.mean[p]);
        zavg += cz.mean[p] / n;
        zdev = fmax(zdev, fabs(cz.mean[p] - 1) / (cz.std[p] / sqrt((double)cz.count[p])));
        if (p >= d) lmax = fmax(lmax, cl.mean[p]);
    }
    printf("    1280 prompts: zero predictor mean in [%.3f, %.3f], average %.3f (want 1 +- 0.1), worst %.2f "
           "standard errors from 1 (tol 5); lsq from d on <= %.3g, lsq at 1 example %.3f\n",
           zmin, zmax, zavg, zdev, lmax, cl.mean[1]);
    CHECK(fabs(zavg - 1) < 0.1 && zdev < 5, "zero predictor should score ~1 per position");
    CHECK(lmax < 1e-8, "least squares should be exact from d examples on");
    CHECK(cl.count[0] == EVAL_N_PROMPTS && cl.n_prompts == EVAL_N_PROMPTS, "prompt counts");
    eval_curve_free(&cl);
    eval_curve_free(&cz);
    eval_acc_free(&a_lsq);
    eval_acc_free(&a_zero);
    free(zero);
    tb_free(&t);
    baseline_ws_free(ws);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    TEST_RUN(test_lsq_recovers_w);
    TEST_RUN(test_lsq_min_norm_hand);
    TEST_RUN(test_lsq_batch_vs_naive);
    TEST_RUN(test_lasso_sparse);
    TEST_RUN(test_lasso_batch);
    TEST_RUN(test_tree_fits_own_depth);
    TEST_RUN(test_tree_stump_vs_naive);
    TEST_RUN(test_knn_averaging_hand);
    TEST_RUN(test_gd2nn);
    TEST_RUN(test_refit_baselines_batch);
    TEST_RUN(test_registry_and_errors);
    TEST_RUN(test_thread_independence);
    TEST_RUN(test_eval_linear_regression);
    return test_finish();
}
