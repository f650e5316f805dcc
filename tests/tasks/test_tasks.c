/*
 * test_tasks.c - the task samplers, their curricula, metrics and validation.
 *
 * Statistics are checked against SPEC.md's moments with tolerances of about
 * 4-5 standard errors (stated at each check); structure (layouts, masks,
 * orthogonality, parity products, MQAR answers) is checked exactly or to
 * float rounding. Every random draw comes from the test seed (--seed N), so
 * a failure replays.
 */
#include "tasks/task.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "testlib.h"

#include "task_testutil.h"


/* ---- layouts ----------------------------------------------------------------- */

static void test_registry(void) {
    int n = 0;
    const char *const *names = task_names(&n);
    CHECK(n == 10, "10 built-in tasks, got %d", n);
    for (int i = 0; i < n; i++) {
        task_spec s;
        task_spec_default(&s, names[i]);
        CHECK(task_spec_validate(&s) == ICL_OK, "default spec of %s validates: %s", names[i], icl_error());
        CHECK(task_help(names[i]) != NULL, "help for %s", names[i]);
        task *t = NULL;
        CHECK(task_create(&t, &s) == ICL_OK, "create default %s: %s", names[i], icl_error());
        if (t) {
            char buf[1024];
            int len = task_describe(t, buf, sizeof buf);
            CHECK(len > 0 && !strncmp(buf, names[i], strlen(names[i])), "describe %s: %s", names[i], buf);
            const char *keys[64];
            int nk = task_spec_keys(&s, keys, 64);
            for (int k = 0; k < nk && k < 64; k++) {
                double v;
                CHECK(task_spec_get(&s, keys[k], &v) == ICL_OK, "get %s", keys[k]);
                CHECK(task_spec_set(&s, keys[k], v) == ICL_OK, "set %s back to its default %g: %s", keys[k], v,
                      icl_error());
            }
            task_free(t);
        }
    }
    task *t = KV("linear_regression", ((const char *[]){"n_dims", "n_points"}), ((double[]){5, 20}));
    if (t) {
        char buf[512];
        task_describe(t, buf, sizeof buf);
        printf("    %s\n", buf);
        CHECK(strstr(buf, "linear_regression(n_dims=5, n_points=20") != NULL, "describe: %s", buf);
        CHECK(task_d(t) == 5 && task_out(t) == 1 && task_T(t) == 40 && task_T_max(t) == 40 && task_vocab(t) == 0,
              "geometry d=%d O=%d T=%d", task_d(t), task_out(t), task_T(t));
        CHECK(task_metric_norm(t) == 5.0 && task_loss(t) == LOSS_MSE && task_metric(t) == TASK_METRIC_SQERR,
              "norm %g", task_metric_norm(t));
        task_free(t);
    }
}

static void test_interleaved_layout(void) {
    task *t = KV("linear_regression", ((const char *[]){"n_dims", "n_points"}), ((double[]){5, 20}));
    if (!t) return;
    batch b;
    if (sample_new(&b, t, 8, S(), 0)) {
        CHECK(b.B == 8 && b.T == 40 && b.d == 5 && b.O == 1 && b.tok == NULL && b.ycls == NULL, "shape");
        int bad = 0;
        for (int bi = 0; bi < b.B; bi++)
            for (int t2 = 0; t2 < b.T; t2++) {
                size_t sl = slot_of(&b, bi, t2);
                if (t2 % 2 == 0) {
                    bad += b.mask[sl] != 1.0f || b.metric[sl] != 1.0f || b.example[sl] != t2 / 2;
                    bad += b.y[sl] != tokx(&b, bi, t2 + 1)[0]; /* target = the shown y */
                    bad += tokx(&b, bi, t2)[0] == 0.0f;
                } else {
                    bad += b.mask[sl] != 0.0f || b.metric[sl] != 0.0f || b.example[sl] != -1 || b.y[sl] != 0.0f;
                    for (int c = 1; c < b.d; c++) bad += tokx(&b, bi, t2)[c] != 0.0f;
                }
            }
        CHECK(bad == 0, "%d layout violations", bad);
    }
    task_batch_free(&b);
    task_free(t);
}

/* ---- regression statistics --------------------------------------------------- */

/* Moments over a batch: E[x] and E[x^2] over x-token coordinates < dd, E[y^2] over clean targets. */
static void moments(const batch *b, int dd, double *ex, double *ex2, double *ey2) {
    double sx = 0, sx2 = 0, sy2 = 0;
    long nx = 0, ny = 0;
    for (int bi = 0; bi < b->B; bi++)
        for (int t = 0; t < b->T; t += 2) {
            size_t sl = slot_of(b, bi, t);
            if (b->mask[sl] == 0.0f) continue;
            for (int c = 0; c < dd; c++) {
                double v = tokx(b, bi, t)[c];
                sx += v;
                sx2 += v * v;
                nx++;
            }
            sy2 += (double)b->y[sl] * b->y[sl];
            ny++;
        }
    *ex = sx / nx;
    *ex2 = sx2 / nx;
    *ey2 = sy2 / ny;
}

static void test_linear_stats(void) {
    const int d = 8, N = 32, B = 2048;
    task *t = KV("linear_regression", ((const char *[]){"n_dims", "n_points"}), ((double[]){d, N}));
    if (!t) return;
    batch b;
    if (sample_new(&b, t, B, S(), 0)) {
        double ex, ex2, ey2;
        moments(&b, d, &ex, &ex2, &ey2);
        /* x: 524k draws, sd of the mean 0.0014; E[y^2]/d: |w|^2 ~ chi2_8 per prompt, sd(mean)/d ~ 0.011 */
        printf("    E[x]=%.4f E[x^2]=%.4f E[y^2]/d=%.4f\n", ex, ex2, ey2 / d);
        CHECK(fabs(ex) < 0.01, "E[x] %.4f", ex);
        CHECK(fabs(ex2 - 1) < 0.02, "E[x^2] %.4f", ex2);
        CHECK(fabs(ey2 / d - 1) < 0.06, "E[y^2]/d %.4f (tol 0.06)", ey2 / d);
        /* noiseless and linear: w fitted by least squares reproduces every y to float rounding */
        double X[64 * 8], y[64], w[8] = {0}, worst = 0;
        for (int bi = 0; bi < 64; bi++) {
            int n = collect(&b, bi, d, 0, X, y);
            CHECK(lstsq(X, y, n, d, w) == 0, "solvable");
            for (int i = 0; i < n; i++) {
                double p = 0;
                for (int c = 0; c < d; c++) p += w[c] * X[i * d + c];
                double e = fabs(p - y[i]) / (1 + fabs(y[i]));
                if (e > worst) worst = e;
            }
        }
        printf("    worst relative residual of y = w.x: %.2e\n", worst);
        CHECK(worst < 1e-4, "y is w.x (worst %.2e, tol 1e-4)", worst);
    }
    task_batch_free(&b);
    task_free(t);
}

static void test_noise_and_scales(void) {
    const int d = 4, N = 40, B = 256;
    double sigma = 0.5;
    task *t = KV("linear_regression", ((const char *[]){"n_dims", "n_points", "noise"}), ((double[]){d, N, sigma}));
    batch b;
    if (t && sample_new(&b, t, B, S(), 0)) {
        double X[40 * 4], y[40], w[4] = {0}, rss = 0;
        long dof = 0;
        for (int bi = 0; bi < B; bi++) {
            int n = collect(&b, bi, d, 0, X, y);
            lstsq(X, y, n, d, w);
            for (int i = 0; i < n; i++) {
                double p = 0;
                for (int c = 0; c < d; c++) p += w[c] * X[i * d + c];
                rss += (p - y[i]) * (p - y[i]);
            }
            dof += n - d;
        }
        double s2 = rss / dof;
        /* 9216 residual degrees of freedom: relative sd of s2 is sqrt(2/9216) = 1.5% */
        printf("    noise: residual variance %.4f (sigma^2 = %.4f)\n", s2, sigma * sigma);
        CHECK(fabs(s2 / (sigma * sigma) - 1) < 0.07, "residual variance %.4f vs %.4f (tol 7%%)", s2, sigma * sigma);
        task_batch_free(&b);
    }
    task_free(t);

    /* noise_renorm with sigma = 1 keeps E[y^2] = d; x_scale and y_scale scale the moments */
    t = KV("linear_regression", ((const char *[]){"n_dims", "n_points", "noise", "noise_renorm"}),
           ((double[]){d, N, 1.0, 1}));
    if (t && sample_new(&b, t, 1024, S(), 0)) {
        double ex, ex2, ey2;
        moments(&b, d, &ex, &ex2, &ey2);
        printf("    noise_renorm: E[y^2]/d = %.4f\n", ey2 / d);
        CHECK(fabs(ey2 / d - 1) < 0.1, "renormalised E[y^2]/d %.4f (tol 0.1)", ey2 / d);
        task_batch_free(&b);
    }
    task_free(t);
    t = KV("linear_regression", ((const char *[]){"n_dims", "n_points", "x_scale", "y_scale"}),
           ((double[]){d, N, 2.0, 3.0}));
    if (t && sample_new(&b, t, 1024, S(), 0)) {
        double ex, ex2, ey2;
        moments(&b, d, &ex, &ex2, &ey2);
        /* E[x^2] = 4; E[y^2] = (3)^2 * 4 * d (w scaled by 3, x by 2) */
        printf("    scaled: E[x^2] = %.4f (4), E[y^2]/(36 d) = %.4f (1)\n", ex2, ey2 / (36.0 * d));
        CHECK(fabs(ex2 / 4 - 1) < 0.03, "x_scale: E[x^2] %.4f", ex2);
        CHECK(fabs(ey2 / (36.0 * d) - 1) < 0.1, "y_scale: E[y^2]/(36d) %.4f", ey2 / (36.0 * d));
        task_batch_free(&b);
    }
    task_free(t);
}

static void test_ood(void) {
    const int d = 8;
    for (int mode = 1; mode <= 2; mode++) {
        task *t = KV("linear_regression", ((const char *[]){"n_dims", "n_points", "ood"}), ((double[]){d, 32, mode}));
        batch b;
        if (!t || !sample_new(&b, t, 512, S(), 0)) {
            task_free(t);
            continue;
        }
        /* sample covariance over all prompts (the transform is fixed per seed) */
        double C[64] = {0};
        long n = 0;
        for (int bi = 0; bi < b.B; bi++)
            for (int t2 = 0; t2 < b.T; t2 += 2, n++)
                for (int a = 0; a < d; a++)
                    for (int c = 0; c < d; c++) C[a * d + c] += (double)tokx(&b, bi, t2)[a] * tokx(&b, bi, t2)[c];
        double tr = 0, tr2 = 0;
        for (int a = 0; a < d; a++) tr += C[a * d + a] / n;
        for (int i = 0; i < 64; i++) tr2 += (C[i] / n) * (C[i] / n);
        /* participation ratio tr(C)^2 / tr(C^2) = (sum l^2)^2 / sum l^4 */
        double s2 = 0, s4 = 0;
        for (int i = 0; i < d; i++) {
            double l = mode == 1 ? 1.0 / (i + 1) : (i < d / 2 ? 1.0 : 0.0);
            s2 += l * l;
            s4 += l * l * l * l;
        }
        double pr = tr * tr / tr2, pr_want = s2 * s2 / s4;
        printf("    ood %d: E|x|^2 = %.3f (d = %d), participation ratio %.3f (want %.3f)\n", mode, tr, d, pr, pr_want);
        CHECK(fabs(tr / d - 1) < 0.03, "E|x|^2/d %.4f", tr / d);
        CHECK(fabs(pr / pr_want - 1) < 0.05, "participation ratio %.3f vs %.3f", pr, pr_want);
        /* a second call with another stream0 uses the same transform: its x lie in the same subspace */
        if (mode == 2) {
            batch b2;
            if (sample_new(&b2, t, 4, S(), 1000)) {
                /* project a fresh x on C's null space: residual ~ 0 */
                double num = 0, den = 0;
                const float *x = tokx(&b2, 0, 0);
                /* C x should reproduce the scale of x for x in range(C) (eigenvalue 2 here) */
                for (int a = 0; a < d; a++) {
                    double cx = 0;
                    for (int c = 0; c < d; c++) cx += C[a * d + c] / n * x[c];
                    num += (cx - 2.0 * x[a]) * (cx - 2.0 * x[a]);
                    den += 4.0 * x[a] * x[a];
                }
                CHECK(sqrt(num / den) < 0.1, "half-subspace fixed per seed (rel. residual %.3f)", sqrt(num / den));
            }
            task_batch_free(&b2);
        }
        task_batch_free(&b);
        task_free(t);
    }
}

static void test_sparse(void) {
    const int d = 10, k = 3, N = 20;
    task *t = KV("sparse_linear_regression", ((const char *[]){"n_dims", "n_points", "k"}), ((double[]){d, N, k}));
    batch b;
    if (t && sample_new(&b, t, 2048, S(), 0)) {
        double ex, ex2, ey2;
        moments(&b, d, &ex, &ex2, &ey2);
        /* E[y^2] = k; |w|^2 ~ chi2_3 per prompt plus x: sd(mean)/k ~ 0.021 */
        printf("    sparse: E[y^2]/k = %.4f\n", ey2 / k);
        CHECK(fabs(ey2 / k - 1) < 0.1, "E[y^2]/k %.4f (tol 0.1)", ey2 / k);
        double X[20 * 10], y[20], w[10] = {0};
        /* at most k weights are non-zero; exactly k unless a drawn weight is below the 1e-3 threshold */
        int bad = 0, exact = 0;
        for (int bi = 0; bi < 100; bi++) {
            int n = collect(&b, bi, d, 0, X, y);
            lstsq(X, y, n, d, w);
            int nz = 0;
            for (int c = 0; c < d; c++) nz += fabs(w[c]) > 1e-3;
            bad += nz > k;
            exact += nz == k;
        }
        CHECK(bad == 0 && exact >= 95, "%d of 100 prompts have more than k = %d non-zero weights, %d exactly k", bad,
              k, exact);
        task_batch_free(&b);
    }
    task_free(t);
    /* with a curriculum the support is among the first d_cur = 4 coordinates */
    t = KV("sparse_linear_regression", ((const char *[]){"n_dims", "n_points", "k", "dims_start"}),
           ((double[]){d, N, k, 4}));
    if (t && sample_new(&b, t, 50, S(), 0)) {
        double X[20 * 4], y[20], w[4] = {0}, worst = 0;
        for (int bi = 0; bi < 50; bi++) {
            int n = collect(&b, bi, 4, 0, X, y);
            lstsq(X, y, n, 4, w);
            for (int i = 0; i < n; i++) {
                double p = 0;
                for (int c = 0; c < 4; c++) p += w[c] * X[i * 4 + c];
                worst = fmax(worst, fabs(p - y[i]) / (1 + fabs(y[i])));
            }
        }
        CHECK(worst < 1e-4, "y depends only on the first d_cur coordinates (worst residual %.2e)", worst);
        task_batch_free(&b);
    }
    task_free(t);
}

static void test_relu2nn_tree(void) {
    const int d = 6;
    task *t = KV("relu2nn_regression", ((const char *[]){"n_dims", "n_points", "hidden"}), ((double[]){d, 20, 100}));
    batch b;
    if (t && sample_new(&b, t, 2048, S(), 0)) {
        double ex, ex2, ey2;
        moments(&b, d, &ex, &ex2, &ey2);
        /* E[y^2] = d by the sqrt(2/h) scaling (SPEC 1.4); per-prompt spread gives sd(mean)/d ~ 0.03 */
        printf("    relu2nn: E[y^2]/d = %.4f\n", ey2 / d);
        CHECK(fabs(ey2 / d - 1) < 0.12, "E[y^2]/d %.4f (tol 0.12)", ey2 / d);
        task_batch_free(&b);
    }
    task_free(t);

    t = KV("decision_tree", ((const char *[]){"n_dims", "n_points", "depth"}), ((double[]){d, 30, 4}));
    if (t && sample_new(&b, t, 2048, S(), 0)) {
        double ex, ex2, ey2;
        moments(&b, d, &ex, &ex2, &ey2);
        printf("    decision_tree: E[y^2] = %.4f\n", ey2);
        CHECK(fabs(ey2 - 1) < 0.08, "E[y^2] %.4f (tol 0.08)", ey2);
        /* at most 16 distinct leaf values per prompt; equal sign patterns give equal y */
        int bad = 0;
        for (int bi = 0; bi < b.B; bi++) {
            float vals[30];
            int nv = 0;
            for (int t2 = 0; t2 < b.T; t2 += 2) {
                float y = b.y[slot_of(&b, bi, t2)];
                int seen = 0;
                for (int j = 0; j < nv; j++) seen |= vals[j] == y;
                if (!seen) vals[nv++] = y;
                for (int t3 = 0; t3 < t2; t3 += 2) {
                    int same = 1;
                    for (int c = 0; c < d; c++) same &= (tokx(&b, bi, t2)[c] > 0) == (tokx(&b, bi, t3)[c] > 0);
                    if (same) bad += b.y[slot_of(&b, bi, t3)] != y;
                }
            }
            bad += nv > 16;
        }
        CHECK(bad == 0, "%d tree-structure violations", bad);
        task_batch_free(&b);
    }
    task_free(t);
}

/* ---- outliers ---------------------------------------------------------------- */

static void test_ortho_outlier(void) {
    const int d = 10, N = 60, B = 512;
    for (int own = 1; own >= 0; own--) {
        task *t = KV("ortho_outlier_regression", ((const char *[]){"n_dims", "n_points", "p", "ortho_to_own_w"}),
                     ((double[]){d, N, 0.5, own}));
        batch b;
        if (!t || !sample_new(&b, t, B, S(), 0)) {
            task_free(t);
            continue;
        }
        long outl = 0, total = 0;
        int bad = 0;
        double worst_cos = 0, max_cos = 0, norm2 = 0;
        long nnorm = 0;
        double X[60 * 10], y[60], w[10] = {0};
        for (int bi = 0; bi < B; bi++) {
            const float *vx = NULL;
            for (int t2 = 0; t2 < b.T; t2 += 2) {
                size_t sl = slot_of(&b, bi, t2);
                total++;
                if (b.mask[sl] != 0.0f) continue;
                outl++;
                bad += b.metric[sl] != 0.0f || b.example[sl] != -1;
                if (!vx) vx = tokx(&b, bi, t2);
                else bad += memcmp(vx, tokx(&b, bi, t2), d * sizeof(float)) != 0; /* one vector per prompt */
                bad += tokx(&b, bi, t2 + 1)[1] == 0.0f; /* the y-token is a full vector */
            }
            int n = collect(&b, bi, d, 1, X, y);
            if (!vx || n < d + 2 || lstsq(X, y, n, d, w)) continue;
            double wn = 0, vn = 0, dot = 0, yv = 0, yn = 0;
            const float *vy = NULL;
            for (int t2 = 0; t2 < b.T && !vy; t2 += 2)
                if (b.mask[slot_of(&b, bi, t2)] == 0.0f) vy = tokx(&b, bi, t2 + 1);
            for (int c = 0; c < d; c++) {
                wn += w[c] * w[c];
                vn += (double)vx[c] * vx[c];
                dot += w[c] * vx[c];
                yv += w[c] * vy[c];
                yn += (double)vy[c] * vy[c];
            }
            double cs = fmax(fabs(dot) / sqrt(wn * vn), fabs(yv) / sqrt(wn * yn));
            worst_cos = fmax(worst_cos, cs);
            max_cos = fmax(max_cos, cs);
            norm2 += vn;
            nnorm++;
        }
        double share = (double)outl / total;
        /* 30720 Bernoulli(0.5) flags: sd 0.003 */
        printf("    ortho (own w = %d): outlier share %.4f, worst |cos(x_out, w)| %.2e, E|x_out|^2/d %.3f\n", own,
               share, worst_cos, norm2 / nnorm / d);
        CHECK(fabs(share - 0.5) < 0.015, "outlier share %.4f (p = 0.5, tol 0.015)", share);
        CHECK(bad == 0, "%d outlier layout violations", bad);
        if (own) {
            CHECK(worst_cos < 1e-4, "outliers orthogonal to the prompt's own w (worst |cos| %.2e, tol 1e-4)",
                  worst_cos);
            /* |u|^2 ~ chi2(d-1), |v'|^2 ~ chi2(d-2), mixed on the unit circle: E|x_out|^2 = d - 1.5 */
            double want = (d - 1.5) / d;
            CHECK(fabs(norm2 / nnorm / d - want) < 0.1, "outlier |x|^2 / d %.3f ~ %.3f (tol 0.1)",
                  norm2 / nnorm / d, want);
        } else {
            CHECK(max_cos > 0.1, "code mode: orthogonal to an unrelated w', not to w (max |cos| %.3f)", max_cos);
        }
        task_batch_free(&b);
        task_free(t);
    }
    /* curriculum: outliers live in the first d_cur coordinates, orthogonal to w there */
    task *t = KV("ortho_outlier_regression", ((const char *[]){"n_dims", "n_points", "dims_start"}),
                 ((double[]){d, N, 5}));
    batch b;
    if (t && sample_new(&b, t, 64, S(), 0)) {
        int bad = 0;
        for (int bi = 0; bi < b.B; bi++)
            for (int t2 = 0; t2 < b.T; t2++)
                for (int c = 5; c < d; c++) bad += tokx(&b, bi, t2)[c] != 0.0f;
        CHECK(bad == 0, "%d non-zero coordinates >= d_cur", bad);
        task_batch_free(&b);
    }
    task_free(t);
}

static void test_many_outlier(void) {
    const int d = 6, N = 50, B = 512;
    task *t = KV("many_outlier_regression", ((const char *[]){"n_dims", "n_points", "dims_start"}),
                 ((double[]){d, N, 3}));
    batch b;
    if (!t || !sample_new(&b, t, B, S(), 0)) {
        task_free(t);
        return;
    }
    long outl = 0, total = 0;
    int bad = 0;
    for (int bi = 0; bi < B; bi++)
        for (int t2 = 0; t2 < b.T; t2 += 2) {
            size_t sl = slot_of(&b, bi, t2);
            total++;
            if (b.mask[sl] != 0.0f) {
                for (int c = 3; c < d; c++) bad += tokx(&b, bi, t2)[c] != 0.0f; /* clean x truncated */
                continue;
            }
            outl++;
            for (int c = 0; c < d; c++) bad += tokx(&b, bi, t2)[c] != 1.0f; /* all ones, even truncated coords */
            bad += tokx(&b, bi, t2 + 1)[0] != 1.0f || b.metric[sl] != 0.0f;
            for (int c = 1; c < d; c++) bad += tokx(&b, bi, t2 + 1)[c] != 0.0f;
        }
    double share = (double)outl / total;
    printf("    many_outlier: share %.4f (p = 0.9)\n", share);
    CHECK(fabs(share - 0.9) < 0.01, "outlier share %.4f (p = 0.9, sd 0.0019, tol 0.01)", share);
    CHECK(bad == 0, "%d many-outlier layout violations", bad);
    task_batch_free(&b);
    task_free(t);
}

/* ---- parity ------------------------------------------------------------------- */

static void test_curriculum(void) {
    const int d = 8, N = 10;
    task *t = KV("linear_regression",
                 ((const char *[]){"n_dims", "n_points", "dims_start", "dims_end", "dims_inc", "dims_interval",
                                   "points_start", "points_end", "points_inc", "points_interval"}),
                 ((double[]){d, N, 3, 8, 2, 3, 4, 10, 3, 2}));
    if (!t) return;
    batch b;
    CHECK(task_T_max(t) == 2 * N, "T_max %d", task_T_max(t));
    if (task_batch_alloc(&b, t, 4) != ICL_OK) {
        task_free(t);
        return;
    }
    int bad = 0, prev_T = 0;
    for (int step = 0; step <= 20; step++) {
        int want_d = 3 + 2 * (step / 3), want_n = 4 + 3 * (step / 2);
        if (want_d > 8) want_d = 8;
        if (want_n > 10) want_n = 10;
        if (task_cur_dims(t) != want_d || task_cur_points(t) != want_n) {
            bad++;
            printf("    step %d: d_cur %d (want %d), n_cur %d (want %d)\n", step, task_cur_dims(t), want_d,
                   task_cur_points(t), want_n);
        }
        task_sample(t, &b, 4, S(), (uint64_t)step * 4);
        bad += b.T != 2 * want_n || task_T(t) != 2 * want_n || b.T < prev_T || task_examples(t) != want_n;
        prev_T = b.T;
        int nonzero_inside = 0;
        for (int bi = 0; bi < 4; bi++)
            for (int t2 = 0; t2 < b.T; t2 += 2)
                for (int c = 0; c < d; c++) {
                    float v = tokx(&b, bi, t2)[c];
                    if (c >= want_d) bad += v != 0.0f;
                    else nonzero_inside += v != 0.0f;
                }
        bad += nonzero_inside != 4 * want_n * want_d;
        task_curriculum_step(t);
    }
    CHECK(bad == 0, "%d curriculum violations", bad);
    CHECK(task_curriculum_steps(t) == 21, "steps %lld", task_curriculum_steps(t));
    task_curriculum_seek(t, 5);
    CHECK(task_cur_dims(t) == 5 && task_cur_points(t) == 10, "seek(5): d %d n %d", task_cur_dims(t),
          task_cur_points(t));
    task_curriculum_seek(t, 0);
    CHECK(task_cur_dims(t) == 3 && task_cur_points(t) == 4, "seek(0)");
    task_batch_free(&b);
    task_free(t);
}

/* ---- reproducibility ----------------------------------------------------------- */

/* Small specs of every task for the determinism and metric tests, each
 * sized so that a batch of 64 has >= TASK_PAR_MIN_WORK units of work
 * (B * T * d >= 65536) and task_sample really runs in parallel. */
static task *small_task(int kind) {
    switch (kind) {
    case 0: return KV("linear_regression", ((const char *[]){"n_dims", "n_points", "noise"}), ((double[]){8, 64, 0.3}));
    case 1: return KV("sparse_linear_regression", ((const char *[]){"n_dims", "n_points"}), ((double[]){8, 64}));
    case 2:
        return KV("relu2nn_regression", ((const char *[]){"n_dims", "n_points", "hidden"}), ((double[]){8, 64, 16}));
    case 3: return KV("decision_tree", ((const char *[]){"n_dims", "n_points"}), ((double[]){8, 64}));
    case 4: return KV("ortho_outlier_regression", ((const char *[]){"n_dims", "n_points"}), ((double[]){8, 64}));
    case 5: /* p = 0.5: at p = 0.9, short prompts of only outliers would be the same for every seed */
        return KV("many_outlier_regression", ((const char *[]){"n_dims", "n_points", "p"}), ((double[]){8, 64, 0.5}));
    case 6: return KV("sparse_parity", ((const char *[]){"n_dims", "n_points"}), ((double[]){8, 64}));
    case 7: return KV("cot_io", ((const char *[]){"n_dims", "n_points", "hidden"}), ((double[]){8, 43, 3}));
    case 8: return KV("vector_mqar", ((const char *[]){"n_dims", "kappa", "queries"}), ((double[]){16, 24, 16}));
    case 9: return KV("token_mqar", ((const char *[]){"vocab", "seq_len", "kappa"}), ((double[]){1000, 128, 16}));
    case 10:
        return KV("linear_regression", ((const char *[]){"n_dims", "n_points", "ood"}), ((double[]){8, 64, 1}));
    default: return NULL;
    }
}

/* Bytewise equality of prompt i of a and prompt j of b (same task). */
static int same_prompt(const batch *a, int i, const batch *b, int j) {
    size_t T = (size_t)a->T, d = (size_t)a->d, O = (size_t)a->O;
    int eq = a->T == b->T;
    if (!eq) return 0;
    if (a->x) eq &= !memcmp(a->x + i * T * d, b->x + j * T * d, T * d * sizeof(float));
    if (a->y) eq &= !memcmp(a->y + i * T * O, b->y + j * T * O, T * O * sizeof(float));
    if (a->tok) eq &= !memcmp(a->tok + i * T, b->tok + j * T, T * sizeof(int));
    if (a->ycls) eq &= !memcmp(a->ycls + i * T, b->ycls + j * T, T * sizeof(int));
    eq &= !memcmp(a->mask + i * T, b->mask + j * T, T * sizeof(float));
    eq &= !memcmp(a->metric + i * T, b->metric + j * T, T * sizeof(float));
    eq &= !memcmp(a->example + i * T, b->example + j * T, T * sizeof(int));
    return eq;
}

static void test_determinism(void) {
    const int B = 64;
    for (int k = 0; k <= 10; k++) {
        task *t = small_task(k);
        if (!t) continue;
        const char *nm = task_get_spec(t)->name;
        batch a, b, c;
        task_batch_alloc(&a, t, B);
        task_batch_alloc(&b, t, B);
        task_batch_alloc(&c, t, 1);
        int nth_max = 1;
#ifdef _OPENMP
        nth_max = omp_get_max_threads();
        omp_set_num_threads(1);
#endif
        task_sample(t, &a, B, S(), 100);
#ifdef _OPENMP
        omp_set_num_threads(2);
#endif
        task_sample(t, &b, B, S(), 100);
#ifdef _OPENMP
        omp_set_num_threads(nth_max);
#endif
        int same = 1, diff_seed = 0, stream_ok = 1;
        for (int i = 0; i < B; i++) same &= same_prompt(&a, i, &b, i);
        CHECK(same, "%s: 1 thread and 2 threads give identical batches", nm);
        task_sample(t, &b, B, S() + 1, 100);
        for (int i = 0; i < B; i++) diff_seed += !same_prompt(&a, i, &b, i);
        CHECK(diff_seed == B, "%s: another seed changes every prompt (%d of %d differ)", nm, diff_seed, B);
        /* prompt i of (seed, 100) is prompt 0 of (seed, 100 + i) */
        for (int i = 0; i < B; i += 5) {
            task_sample(t, &c, 1, S(), 100 + (uint64_t)i);
            stream_ok &= same_prompt(&a, i, &c, 0);
        }
        CHECK(stream_ok, "%s: prompt i comes from stream stream0 + i alone", nm);
        task_batch_free(&a);
        task_batch_free(&b);
        task_batch_free(&c);
        task_free(t);
    }
}

/* ---- validation -------------------------------------------------------------------- */

static int err_has(icl_status st, icl_status want, const char *needle) {
    return st == want && strstr(icl_error(), needle) != NULL;
}

static void test_validation(void) {
    task_spec s;
    task *t = NULL;
    task_spec_default(&s, "sparse_linear_regression");
    task_spec_set(&s, "n_dims", 5);
    task_spec_set(&s, "k", 7);
    CHECK(err_has(task_create(&t, &s), ICL_ERR_ARG, "k (7) must be <= n_dims (5)"), "k > d: %s", icl_error());
    CHECK(t == NULL, "no task on error");
    task_spec_set(&s, "k", 4);
    task_spec_set(&s, "dims_start", 3);
    CHECK(err_has(task_spec_validate(&s), ICL_ERR_ARG, "dims_start (3)"), "k > dims_start: %s", icl_error());

    task_spec_default(&s, "linear_regression");
    CHECK(err_has(task_spec_set(&s, "n_points", 0), ICL_ERR_ARG, "n_points must be an integer in [1,"),
          "n_points = 0: %s", icl_error());
    s.n_points = 0;
    CHECK(err_has(task_spec_validate(&s), ICL_ERR_ARG, "n_points (0) must be >= 1"), "no points: %s", icl_error());
    task_spec_default(&s, "linear_regression");
    CHECK(err_has(task_spec_set(&s, "n_dims", 2.5), ICL_ERR_ARG, "integer"), "non-integer: %s", icl_error());
    CHECK(err_has(task_spec_set(&s, "n_dims", NAN), ICL_ERR_ARG, "n_dims"), "NaN: %s", icl_error());
    CHECK(err_has(task_spec_set(&s, "bogus", 1), ICL_ERR_ARG, "unknown option 'bogus'"), "unknown key: %s",
          icl_error());
    CHECK(err_has(task_spec_set(&s, "hidden", 10), ICL_ERR_ARG, "has no option 'hidden'"), "inapplicable key: %s",
          icl_error());
    CHECK(err_has(task_spec_set(&s, "x_scale", 0), ICL_ERR_ARG, "x_scale must be in (0"), "x_scale 0: %s",
          icl_error());
    CHECK(err_has(task_spec_set(&s, "ood", 3), ICL_ERR_ARG, "ood"), "ood 3: %s", icl_error());

    task_spec_default(&s, "no_such_task");
    CHECK(err_has(task_create(&t, &s), ICL_ERR_ARG, "unknown task 'no_such_task'"), "unknown task: %s", icl_error());
    CHECK(strstr(icl_error(), "linear_regression") != NULL, "the message lists the known tasks");

    task_spec_default(&s, "linear_regression");
    task_spec_set(&s, "n_dims", 5);
    task_spec_set(&s, "dims_start", 4);
    task_spec_set(&s, "dims_end", 3);
    CHECK(err_has(task_spec_validate(&s), ICL_ERR_ARG, "dims_start (4) must be <= dims_end (3)"), "start > end: %s",
          icl_error());
    task_spec_set(&s, "dims_end", 6);
    CHECK(err_has(task_spec_validate(&s), ICL_ERR_ARG, "dims_end (6) must be <= n_dims (5)"), "end > d: %s",
          icl_error());
    /* an ood transform is a random d x d rotation per batch: d is capped */
    task_spec_default(&s, "linear_regression");
    task_spec_set(&s, "ood", 1);
    task_spec_set(&s, "n_dims", TASK_OOD_MAX_DIMS + 1);
    CHECK(err_has(task_spec_validate(&s), ICL_ERR_ARG, "ood needs n_dims <= 256 (got 257)"), "ood d: %s",
          icl_error());
    task_spec_set(&s, "n_dims", TASK_OOD_MAX_DIMS);
    CHECK(task_spec_validate(&s) == ICL_OK, "ood at d = %d must validate: %s", TASK_OOD_MAX_DIMS, icl_error());

    task_spec_default(&s, "cot_io");
    task_spec_set(&s, "hidden", 11);
    CHECK(err_has(task_spec_validate(&s), ICL_ERR_ARG, "hidden (11)"), "cot hidden > d: %s", icl_error());
    task_spec_default(&s, "vector_mqar");
    task_spec_set(&s, "queries", 17);
    CHECK(err_has(task_spec_validate(&s), ICL_ERR_ARG, "queries (17)"), "queries > kappa: %s", icl_error());
    task_spec_default(&s, "token_mqar");
    task_spec_set(&s, "vocab", 64);
    CHECK(err_has(task_spec_validate(&s), ICL_ERR_ARG, "vocab (64) must be > seq_len (64)"), "vocab: %s",
          icl_error());
    task_spec_default(&s, "token_mqar");
    task_spec_set(&s, "kappa", 17);
    CHECK(err_has(task_spec_validate(&s), ICL_ERR_ARG, "kappa (17)"), "kappa: %s", icl_error());
    task_spec_set(&s, "kappa", 4);
    task_spec_set(&s, "seq_len", 63);
    CHECK(err_has(task_spec_validate(&s), ICL_ERR_ARG, "seq_len (63) must be even"), "odd L: %s", icl_error());

    /* the size guard: the estimate is in the message */
    task_spec_default(&s, "token_mqar");
    task_spec_set(&s, "vocab", 1 << 20);
    task_spec_set(&s, "seq_len", 4096);
    CHECK(err_has(task_create(&t, &s), ICL_ERR_NOMEM, "GiB"), "huge token task: %s", icl_error());
    printf("    %s\n", icl_error());
    task_spec_default(&s, "linear_regression");
    task_spec_set(&s, "n_dims", 4096);
    task_spec_set(&s, "n_points", 2048);
    CHECK(err_has(task_spec_validate(&s), ICL_ERR_NOMEM, "over the 1 GiB limit"), "huge regression: %s", icl_error());

    task_spec_default(&s, "custom");
    CHECK(err_has(task_create(&t, &s), ICL_ERR_ARG, "fill function"), "custom without fill: %s", icl_error());

    /* batch/task mismatches */
    task *a = KV("linear_regression", ((const char *[]){"n_dims", "n_points"}), ((double[]){5, 10}));
    task *c = KV("linear_regression", ((const char *[]){"n_dims", "n_points"}), ((double[]){6, 10}));
    batch b;
    if (a && c && task_batch_alloc(&b, a, 4) == ICL_OK) {
        CHECK(err_has(task_sample(c, &b, 4, 1, 0), ICL_ERR_SHAPE, "allocated for d = 5"), "wrong batch: %s",
              icl_error());
        CHECK(err_has(task_sample(a, &b, 5, 1, 0), ICL_ERR_SHAPE, "B (5)"), "B > cap: %s", icl_error());
        task_batch_free(&b);
    }
    task_free(a);
    task_free(c);
}

/* ---- metrics ------------------------------------------------------------------------ */

static void test_zero_predictor(void) {
    /* SPEC 1.4: dividing by d, k or 1 makes the zero predictor score ~1 */
    for (int k = 0; k <= 4; k++) {
        task *t = small_task(k);
        if (!t) continue;
        const int B = 2048;
        batch b;
        if (sample_new(&b, t, B, S(), 0)) {
            size_t n = (size_t)B * b.T;
            float *pred = calloc(n * b.O, sizeof(float)), *score = malloc(n * sizeof(float));
            task_score(t, task_metric(t), &b, pred, score);
            double m = 0, cnt = 0;
            for (size_t i = 0; i < n; i++) {
                m += score[i];
                cnt += b.metric[i];
            }
            m /= cnt;
            double tol = k == 2 ? 0.15 : 0.08; /* relu2nn with h = 16 spreads more */
            printf("    %s: zero predictor scores %.4f\n", task_get_spec(t)->name, m);
            CHECK(fabs(m - 1) < tol, "%s: %.4f ~ 1 (tol %.2f)",
                  task_get_spec(t)->name, m, tol);
            free(pred);
            free(score);
        }
        task_batch_free(&b);
        task_free(t);
    }
}

/* ---- custom ------------------------------------------------------------------------------ */

typedef struct {
    int calls, order_ok, fail_at;
} custom_ctx;

static icl_status custom_sum(void *vctx, int prompt, rng_t *rng, int n, int d, int d_cur, float *x, float *y) {
    custom_ctx *c = vctx;
    c->order_ok &= prompt == c->calls;
    c->calls++;
    if (prompt == c->fail_at) return icl_fail(ICL_ERR_ARG, "custom callback refused prompt %d", prompt);
    (void)d_cur;
    for (int i = 0; i < n; i++) {
        y[i] = 0;
        for (int j = 0; j < d; j++) {
            x[i * d + j] = rng_normal(rng);
            y[i] += x[i * d + j];
        }
    }
    return ICL_OK;
}

static void test_custom(void) {
    task_spec s;
    task_spec_default(&s, "custom");
    task_spec_set(&s, "n_dims", 4);
    task_spec_set(&s, "n_points", 6);
    task_spec_set(&s, "dims_start", 2);
    task_spec_set(&s, "norm", 4);
    custom_ctx ctx = {0, 1, -1};
    task *t = NULL;
    CHECK(task_create_custom(&t, &s, custom_sum, &ctx) == ICL_OK, "create custom: %s", icl_error());
    if (!t) return;
    batch b;
    if (sample_new(&b, t, 8, S(), 0)) {
        int bad = 0;
        for (int bi = 0; bi < 8; bi++)
            for (int t2 = 0; t2 < b.T; t2 += 2) {
                const float *x = tokx(&b, bi, t2);
                bad += x[2] != 0.0f || x[3] != 0.0f; /* truncated after the callback */
                bad += b.mask[slot_of(&b, bi, t2)] != 1 || b.example[slot_of(&b, bi, t2)] != t2 / 2;
                bad += b.y[slot_of(&b, bi, t2)] != tokx(&b, bi, t2 + 1)[0];
            }
        CHECK(bad == 0 && ctx.calls == 8 && ctx.order_ok, "custom layout (%d bad, %d calls in order %d)", bad,
              ctx.calls, ctx.order_ok);
        CHECK(task_metric_norm(t) == 4.0, "custom norm");
        ctx = (custom_ctx){0, 1, 3};
        CHECK(err_has(task_sample(t, &b, 8, S(), 0), ICL_ERR_ARG, "refused prompt 3"), "callback error passes: %s",
              icl_error());
    }
    task_batch_free(&b);
    task_free(t);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    TEST_RUN(test_registry);
    TEST_RUN(test_interleaved_layout);
    TEST_RUN(test_linear_stats);
    TEST_RUN(test_noise_and_scales);
    TEST_RUN(test_ood);
    TEST_RUN(test_sparse);
    TEST_RUN(test_relu2nn_tree);
    TEST_RUN(test_ortho_outlier);
    TEST_RUN(test_many_outlier);
    TEST_RUN(test_curriculum);
    TEST_RUN(test_determinism);
    TEST_RUN(test_validation);
    TEST_RUN(test_zero_predictor);
    TEST_RUN(test_custom);
    return test_finish();
}
