/*
 * baselines_linear.c - the two linear baselines that need a solver:
 * minimum-norm least squares and coordinate-descent Lasso (SPEC.md 1.4).
 *
 * Both are built for "predict at every prefix of a prompt": rows are added one
 * at a time and a solve is cheap relative to refitting from scratch.
 *
 * Least squares. Adding a row updates an upper-triangular R (d, d) and z (d)
 * by Givens rotations so that R^T R = X^T X and R^T z = X^T y: the solutions
 * of the normal equations of (R, z) and (X, y) are the same set, so the
 * minimum-norm least-squares solution pinv(X) y equals pinv(R) z, whatever
 * the number of rows (fewer than d included). Solving:
 *  - if every |R_kk| > 1e-6 max |R_kk|, R is invertible and w = R^{-1} z
 *    by back-substitution (the unique, hence minimum-norm, solution): the
 *    usual case from d examples on;
 *  - otherwise a one-sided (Hestenes) Jacobi SVD of the non-zero rows of R:
 *    rows are rotated in pairs, and z with them, until they are orthogonal,
 *    B = Q R = S V^T; then w = sum_k b_k (Q z)_k / ||b_k||^2 over the rows
 *    with ||b_k|| > rcond * max ||b||. With i < d examples only i rows are
 *    non-zero, so this costs ~ i^2 d per sweep.
 * Singular values below BASELINE_LSQ_RCOND = 1e-10 relative count as 0: rank
 * deficiency here is exact (repeated outlier rows, curriculum-zeroed
 * coordinates, fewer rows than d) and leaves singular values ~1e-16, while
 * genuine ones of Gaussian data stay far above 1e-10. (A full-rank R whose
 * singular values fall below 1e-10 relative while its diagonal stays above
 * 1e-6 relative would be solved exactly rather than truncated; Gaussian
 * inputs do not produce such matrices.)
 *
 * Lasso. (1/2n)||y - Xw||^2 + alpha ||w||_1, no intercept (sklearn's Lasso
 * with fit_intercept=False). Multiplying by n gives (1/2)||y - Xw||^2 +
 * (alpha n)||w||_1, which is solved by cyclic coordinate descent on the Gram
 * form (S = X^T X, s = X^T y, both accumulated row by row), keeping the
 * gradient g = s - S w up to date. Stop when the duality gap (sklearn's
 * formula) is <= BASELINE_LASSO_TOL * ||y||^2, or after
 * BASELINE_LASSO_MAX_SWEEPS sweeps. A coordinate whose column is all zero
 * stays 0. With alpha >= max |X^T y| / n the solution is exactly 0, and CD
 * started at 0 returns exactly 0 (soft-thresholding never leaves 0).
 * Plain CD moves weight between nearly interchangeable coordinates at a
 * speed proportional to alpha, so with alpha = 1e-4 and fewer examples than
 * coordinates it needs 1e4 sweeps or more, and a duality-gap stop there can
 * leave w visibly off (the objective is flat along those moves). So once a
 * sweep leaves the sign pattern of w unchanged, CD hands over to an exact
 * active-set finish (feature-sign search, lasso_feature_sign) that ends when
 * the KKT conditions hold to 1e-10 relative; if that fails (degenerate
 * designs), CD goes on from a point no worse, until the gap test or the cap.
 *
 * Not here: the batch driver and workspace (baselines.c).
 */
#include "tasks/baselines.h"
#include "tasks/baselines_impl.h"

#include <math.h>
#include <string.h>

/* ---- least squares ------------------------------------------------------- */

void bl_lsq_reset(bl_scratch *s, int d) {
    memset(s->R, 0, (size_t)d * d * sizeof(double));
    memset(s->z, 0, (size_t)d * sizeof(double));
}

/* Rotate the row (x, y) into (R, z): for each k, a Givens rotation in the
 * plane of R's row k and the new row zeroes the new row's k-th entry. The
 * rotated-out remainder of y is the residual of this row and is dropped. */
void bl_lsq_add(bl_scratch *s, int d, const double *x, double y) {
    double *r = s->q, ry = y;
    memcpy(r, x, (size_t)d * sizeof(double));
    for (int k = 0; k < d; k++) {
        double b = r[k];
        if (b == 0.0) continue;
        double *Rk = s->R + (size_t)k * d;
        double a = Rk[k];
        double rho = hypot(a, b), c = a / rho, sn = b / rho;
        Rk[k] = rho;
        r[k] = 0.0;
        for (int j = k + 1; j < d; j++) {
            double t = Rk[j];
            Rk[j] = c * t + sn * r[j];
            r[j] = -sn * t + c * r[j];
        }
        double t = s->z[k];
        s->z[k] = c * t + sn * ry;
        ry = -sn * t + c * ry;
    }
}

static double dot(const double *a, const double *b, int n) {
    double acc = 0.0;
    for (int i = 0; i < n; i++) acc += a[i] * b[i];
    return acc;
}

/* Back-substitution R w = z when R is clearly full rank: every diagonal
 * entry above LSQ_DIAG_RATIO times the largest. Then the least-squares
 * solution is unique (so it is the minimum-norm one) and the SVD is not
 * needed; this is the common case from d examples on. */
#define LSQ_DIAG_RATIO 1e-6

static int lsq_backsub(const bl_scratch *s, int d, double *w) {
    double dmax = 0.0, dmin = INFINITY;
    for (int k = 0; k < d; k++) {
        double v = fabs(s->R[(size_t)k * d + k]);
        dmax = v > dmax ? v : dmax;
        dmin = v < dmin ? v : dmin;
    }
    if (!(dmax > 0.0) || dmin <= LSQ_DIAG_RATIO * dmax) return 0;
    for (int k = d - 1; k >= 0; k--) {
        const double *Rk = s->R + (size_t)k * d;
        double acc = s->z[k];
        for (int j = k + 1; j < d; j++) acc -= Rk[j] * w[j];
        w[k] = acc / Rk[k];
    }
    return 1;
}

void bl_lsq_solve(bl_scratch *s, int d, double *w) {
    memset(w, 0, (size_t)d * sizeof(double));
    if (lsq_backsub(s, d, w)) return;
    /* B (m, d) row-major: the non-zero rows of R (a row of R is zero exactly
     * when its diagonal is, and then its z entry is 0 too), zz (m) their z. */
    double *B = s->A, *zz = s->z + d, *nrm = s->q;
    int m = 0;
    for (int k = 0; k < d; k++) {
        if (s->R[(size_t)k * d + k] == 0.0) continue;
        memcpy(B + (size_t)m * d, s->R + (size_t)k * d, (size_t)d * sizeof(double));
        zz[m++] = s->z[k];
    }
    if (m == 0) return; /* no rows, or only zero rows: w = 0 */
    double frob = 0.0;
    for (int r = 0; r < m; r++) frob += dot(B + (size_t)r * d, B + (size_t)r * d, d);
    /* Rows with ||b||^2 below this are numerically zero (1e-15 relative):
     * rotating them against the others only churns rounding noise, and they
     * are dropped by rcond anyway. */
    const double negligible = 1e-30 * frob;
    for (int sweep = 0; sweep < 60; sweep++) {
        int rotated = 0;
        /* Squared row norms, recomputed each sweep and updated exactly after
         * each rotation: alpha' = alpha - t gamma, beta' = beta + t gamma. */
        for (int r = 0; r < m; r++) nrm[r] = dot(B + (size_t)r * d, B + (size_t)r * d, d);
        for (int p = 0; p < m - 1; p++) {
            for (int q = p + 1; q < m; q++) {
                double alpha = nrm[p], beta = nrm[q];
                if (alpha <= negligible || beta <= negligible) continue;
                double *bp = B + (size_t)p * d, *bq = B + (size_t)q * d;
                double gamma = dot(bp, bq, d);
                if (fabs(gamma) <= 1e-15 * sqrt(alpha * beta)) continue;
                /* The rotation that makes rows p and q orthogonal:
                 * t = tan(theta) is the smaller root of t^2 + 2 zeta t - 1. */
                double zeta = (beta - alpha) / (2.0 * gamma);
                double t = (zeta >= 0 ? 1.0 : -1.0) / (fabs(zeta) + hypot(1.0, zeta));
                double c = 1.0 / sqrt(1.0 + t * t), sn = c * t;
                for (int i = 0; i < d; i++) {
                    double xa = bp[i], xb = bq[i];
                    bp[i] = c * xa - sn * xb;
                    bq[i] = sn * xa + c * xb;
                }
                double za = zz[p], zb = zz[q];
                zz[p] = c * za - sn * zb;
                zz[q] = sn * za + c * zb;
                nrm[p] = alpha - t * gamma;
                nrm[q] = beta + t * gamma;
                rotated = 1;
            }
        }
        if (!rotated) break;
    }
    /* Now B = Q R' with orthogonal rows b_k = s_k v_k^T, so
     * w = pinv(B) (Q z) = sum_k b_k zz_k / ||b_k||^2 over the kept rows. */
    double smax2 = 0.0;
    for (int r = 0; r < m; r++) {
        nrm[r] = dot(B + (size_t)r * d, B + (size_t)r * d, d);
        if (nrm[r] > smax2) smax2 = nrm[r];
    }
    const double cut2 = BASELINE_LSQ_RCOND * BASELINE_LSQ_RCOND * smax2;
    for (int r = 0; r < m; r++) {
        if (nrm[r] <= cut2 || nrm[r] == 0.0) continue;
        const double *br = B + (size_t)r * d;
        double coef = zz[r] / nrm[r];
        for (int i = 0; i < d; i++) w[i] += coef * br[i];
    }
}

/* ---- Lasso ---------------------------------------------------------------- */

void bl_lasso_reset(bl_scratch *s, int d) {
    memset(s->S, 0, (size_t)d * d * sizeof(double));
    memset(s->s, 0, (size_t)d * sizeof(double));
    s->yy = 0.0;
    s->n_seen = 0;
}

void bl_lasso_add(bl_scratch *s, int d, const double *x, double y) {
    for (int i = 0; i < d; i++) {
        if (x[i] == 0.0) continue;
        double *Si = s->S + (size_t)i * d;
        for (int j = 0; j < d; j++) Si[j] += x[i] * x[j];
        s->s[i] += x[i] * y;
    }
    s->yy += y * y;
    s->n_seen++;
}

static double soft_threshold(double v, double a) {
    if (v > a) return v - a;
    if (v < -a) return v + a;
    return 0.0;
}

/* The duality gap of (1/2)||y - Xw||^2 + a ||w||_1 at w, from the Gram
 * quantities (sklearn's enet_coordinate_descent with beta = 0). */
static double lasso_gap(const bl_scratch *s, int d, double a, const double *w, const double *g) {
    double sw = dot(s->s, w, d), wg = dot(w, g, d);
    double r2 = s->yy - sw - wg; /* ||y - Xw||^2 = yy - 2 s.w + w.S w, S w = s - g */
    if (r2 < 0) r2 = 0;          /* rounding */
    double ry = s->yy - sw;      /* (y - Xw) . y */
    double dual = 0.0, l1 = 0.0;
    for (int j = 0; j < d; j++) {
        if (fabs(g[j]) > dual) dual = fabs(g[j]);
        l1 += fabs(w[j]);
    }
    double cst, gap;
    if (dual > a) {
        cst = a / dual;
        gap = 0.5 * r2 * (1.0 + cst * cst);
    } else {
        cst = 1.0;
        gap = r2;
    }
    return gap + a * l1 - cst * ry;
}

/* The sign pattern of w into s->pat; 1 if it differs from before. */
static int update_pattern(bl_scratch *s, int d, const double *w) {
    int changed = 0;
    for (int j = 0; j < d; j++) {
        signed char p = (signed char)((w[j] > 0) - (w[j] < 0));
        changed |= p != s->pat[j];
        s->pat[j] = p;
    }
    return changed;
}

/* Cholesky M = L L^T (m, m) in the lower triangle, leaving the strict upper
 * triangle as it was. Returns -1 on success, else the first column k whose
 * pivot is <= 1e-12 * max diag (column k of X_A depends on columns < k). */
static int cholesky(double *M, int m) {
    double dmax = 0.0;
    for (int r = 0; r < m; r++) dmax = M[r * m + r] > dmax ? M[r * m + r] : dmax;
    for (int k = 0; k < m; k++) {
        double piv = M[k * m + k];
        for (int q = 0; q < k; q++) piv -= M[k * m + q] * M[k * m + q];
        if (!(piv > 1e-12 * dmax)) return k;
        double lk = sqrt(piv);
        M[k * m + k] = lk;
        for (int r = k + 1; r < m; r++) {
            double v = M[r * m + k];
            for (int q = 0; q < k; q++) v -= M[r * m + q] * M[k * m + q];
            M[r * m + k] = v / lk;
        }
    }
    return -1;
}

/* Solve L L^T u = u in place with the leading (k, k) factor of M (m, m). */
static void chol_solve(const double *M, int m, int k, double *u) {
    for (int r = 0; r < k; r++) {
        double v = u[r];
        for (int q = 0; q < r; q++) v -= M[r * m + q] * u[q];
        u[r] = v / M[r * m + r];
    }
    for (int r = k - 1; r >= 0; r--) {
        double v = u[r];
        for (int q = r + 1; q < k; q++) v -= M[q * m + r] * u[q];
        u[r] = v / M[r * m + r];
    }
}

/* The objective (1/2)||y - Xw||^2 + a ||w||_1 from the Gram quantities. */
static double lasso_objective(const bl_scratch *s, int d, double a, const double *w) {
    double quad = 0.0, l1 = 0.0;
    for (int j = 0; j < d; j++) {
        if (w[j] == 0.0) continue;
        quad += w[j] * dot(s->S + (size_t)j * d, w, d);
        l1 += fabs(w[j]);
    }
    return 0.5 * (s->yy - 2.0 * dot(s->s, w, d) + quad) + a * l1;
}

/* g = s - S w from scratch. */
static void lasso_grad(const bl_scratch *s, int d, const double *w, double *g) {
    for (int j = 0; j < d; j++) g[j] = s->s[j] - dot(s->S + (size_t)j * d, w, d);
}

/* The exact finish: feature-sign search (Lee, Battle, Raina and Ng 2007),
 * an active-set method that reaches the exact Lasso solution in finitely many
 * steps, each lowering the objective. State: the active set A with signs
 * th (s->pat; th_j = sign(w_j), or the sign a just-activated w_j = 0 will
 * take). One iteration:
 *  - if some active coordinate is not optimal (g_j != a th_j), or after
 *    activating the zero coordinate with the largest |g_j| > a (th_j =
 *    sign g_j): solve the problem restricted to A and the orthant th,
 *    S_AA w_A = s_A - a th_A, then line-search the segment from w to that
 *    solution at its end and at every point where a coordinate crosses 0,
 *    keeping the lowest true objective; coordinates at 0 leave A;
 *  - if the columns X_A are dependent (a Cholesky pivot fails at k), move
 *    instead along the null vector v of columns 0..k (S v = 0, v_k = -1) in
 *    the direction that does not raise th . w (the squared error is constant
 *    along v), until a coordinate reaches 0, and drop it.
 * It stops when every active g_j = a th_j and every other |g_j| <= a (the
 * KKT conditions, to 1e-10 relative): returns 1 with w and g (= s - S w) set.
 * Returns 0 after 10 d + 10 iterations (w then is no worse than on entry). */
static int lasso_feature_sign(bl_scratch *s, int d, double a, double *w, double *g) {
    double *M = s->M, *wa = s->wa, *wt = s->gn;
    double scale = a;
    for (int j = 0; j < d; j++) scale = fabs(s->s[j]) > scale ? fabs(s->s[j]) : scale;
    const double eps = 1e-10 * scale;
    update_pattern(s, d, w);
    lasso_grad(s, d, w, g);
    for (int it = 0; it < 10 * d + 10; it++) {
        int active_ok = 1;
        for (int j = 0; j < d; j++)
            if (s->pat[j] && fabs(g[j] - a * s->pat[j]) > eps) active_ok = 0;
        if (active_ok) {
            int jb = -1;
            double gb = a + eps;
            for (int j = 0; j < d; j++) {
                if (s->pat[j] || s->S[(size_t)j * d + j] <= 0.0) continue;
                if (fabs(g[j]) > gb) {
                    gb = fabs(g[j]);
                    jb = j;
                }
            }
            if (jb < 0) return 1; /* KKT holds */
            s->pat[jb] = (signed char)(g[jb] > 0 ? 1 : -1);
        }
        int m = 0;
        for (int j = 0; j < d; j++)
            if (s->pat[j]) s->act[m++] = j;
        for (int r = 0; r < m; r++)
            for (int c = 0; c < m; c++) M[r * m + c] = s->S[(size_t)s->act[r] * d + s->act[c]];
        int k = cholesky(M, m);
        if (k >= 0) {
            /* v = (u, -1) with S_{0..k-1,0..k-1} u = S_{0..k-1,k} (the strict
             * upper triangle of M still holds S). */
            for (int r = 0; r < k; r++) wa[r] = M[r * m + k];
            chol_solve(M, m, k, wa);
            wa[k] = -1.0;
            double slope = 0.0;
            for (int r = 0; r <= k; r++) slope += s->pat[s->act[r]] * wa[r];
            if (slope > 0)
                for (int r = 0; r <= k; r++) wa[r] = -wa[r];
            /* Blocking: a coordinate moving against its sign reaches 0 at
             * t = |w_j| / |v_j| (at once if it is still 0). */
            double t = INFINITY;
            int hit = -1;
            for (int r = 0; r <= k; r++) {
                double th = s->pat[s->act[r]], wr = w[s->act[r]];
                if (th * wa[r] < 0 && fabs(wr) / fabs(wa[r]) < t) {
                    t = fabs(wr) / fabs(wa[r]);
                    hit = r;
                }
            }
            if (hit < 0) return 0; /* degenerate: leave it to CD */
            for (int r = 0; r <= k; r++) {
                int j = s->act[r];
                w[j] = r == hit ? 0.0 : w[j] + t * wa[r];
            }
            s->pat[s->act[hit]] = 0;
            lasso_grad(s, d, w, g);
            continue;
        }
        for (int r = 0; r < m; r++) wa[r] = s->s[s->act[r]] - a * s->pat[s->act[r]];
        chol_solve(M, m, m, wa);
        /* Line search on w + t (w_new - w), t in (0, 1]: the end point and
         * every sign crossing. wt holds the candidate. */
        double best_f = lasso_objective(s, d, a, w);
        int best_c = -2; /* -2: no decrease, -1: the end point, c: crossing of act[c] */
        for (int c = -1; c < m; c++) {
            if (c >= 0 && !(w[s->act[c]] * wa[c] < 0)) continue; /* no crossing inside (0, 1) */
            double tc = c < 0 ? 1.0 : w[s->act[c]] / (w[s->act[c]] - wa[c]);
            memcpy(wt, w, (size_t)d * sizeof(double));
            for (int r = 0; r < m; r++) wt[s->act[r]] = w[s->act[r]] + tc * (wa[r] - w[s->act[r]]);
            if (c >= 0) wt[s->act[c]] = 0.0;
            double f = lasso_objective(s, d, a, wt);
            if (f < best_f) {
                best_f = f;
                best_c = c;
            }
        }
        if (best_c == -2) return 0; /* no decrease: leave it to CD */
        double tc = best_c < 0 ? 1.0 : w[s->act[best_c]] / (w[s->act[best_c]] - wa[best_c]);
        for (int r = 0; r < m; r++) {
            int j = s->act[r];
            w[j] = r == best_c ? 0.0 : w[j] + tc * (wa[r] - w[j]);
        }
        update_pattern(s, d, w);
        lasso_grad(s, d, w, g);
    }
    return 0;
}

int bl_lasso_solve(bl_scratch *s, int d, double alpha, double *w) {
    if (s->n_seen == 0) {
        memset(w, 0, (size_t)d * sizeof(double));
        return 0;
    }
    const double a = alpha * s->n_seen;
    double *g = s->q; /* g = s - S w, the negative gradient of the smooth part */
    for (int j = 0; j < d; j++) {
        if (s->S[(size_t)j * d + j] <= 0.0) w[j] = 0.0; /* an all-zero column */
    }
    for (int j = 0; j < d; j++) g[j] = s->s[j] - dot(s->S + (size_t)j * d, w, d);
    const double tol = BASELINE_LASSO_TOL * s->yy;
    if (s->yy == 0.0 || lasso_gap(s, d, a, w, g) <= tol) {
        if (s->yy == 0.0) memset(w, 0, (size_t)d * sizeof(double)); /* y = 0: w = 0 */
        return 0;
    }
    update_pattern(s, d, w);
    memset(s->pat_fail, 0, (size_t)d);
    int have_fail = 0;
    for (int sweep = 1; sweep <= BASELINE_LASSO_MAX_SWEEPS; sweep++) {
        for (int j = 0; j < d; j++) {
            double Sjj = s->S[(size_t)j * d + j];
            if (Sjj <= 0.0) continue;
            double wn = soft_threshold(g[j] + Sjj * w[j], a) / Sjj;
            double dw = wn - w[j];
            if (dw == 0.0) continue;
            w[j] = wn;
            /* S is symmetric: column j = row j. */
            const double *Sj = s->S + (size_t)j * d;
            for (int k = 0; k < d; k++) g[k] -= Sj[k] * dw;
        }
        /* Once a sweep leaves the sign pattern unchanged, finish exactly
         * from here (retried only after the pattern changes). */
        int changed = update_pattern(s, d, w);
        if (!changed && !(have_fail && !memcmp(s->pat, s->pat_fail, (size_t)d))) {
            if (lasso_feature_sign(s, d, a, w, g)) return sweep;
            update_pattern(s, d, w);
            memcpy(s->pat_fail, s->pat, (size_t)d);
            have_fail = 1;
        }
        if (lasso_gap(s, d, a, w, g) <= tol) return sweep;
    }
    return BASELINE_LASSO_MAX_SWEEPS;
}
