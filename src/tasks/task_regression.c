/*
 * task_regression.c - the interleaved scalar-regression samplers of SPEC.md
 * 2.1-2.6: linear, sparse linear, 2-layer ReLU net, decision tree, and the
 * two outlier variants of linear regression, with the options noise, x/y
 * scaling and (linear regression only) the OOD covariances of Garg et al.
 *
 * Layout (task.h): T = 2N; x_i at slot 2i, the y-token at 2i+1 (y_i in
 * coordinate 0); the prediction of y_i is read at slot 2i. Each prompt draws,
 * from its own generator rng_make(seed, stream0 + i), first the function
 * (w, the net, the tree, the outlier vectors), then per example: the outlier
 * flag (outlier tasks), x (all d coordinates, so the draw count does not
 * depend on the curriculum), then the noise on y (when sigma > 0).
 *
 * Choices (documented here and in the report of issue 3):
 *  - Curriculum: x coordinates >= d_cur are zeroed after drawing (SPEC 1.3);
 *    w is drawn over all d coordinates (only its first d_cur matter), the
 *    sparse support among the first d_cur, tree splits among all d.
 *  - Noise: y = f(x) * y_scale + sigma * eps; with noise_renorm the noisy y
 *    is multiplied by sqrt(n / (n + sigma^2)), n the metric normaliser: a
 *    deterministic stand-in for Garg's renormalisation by the batch's std.
 *    The y-token and the target both carry the noisy y.
 *  - ortho_outlier (SPEC 2.5): an outlier pair shows x = v_x and, at the
 *    y-token, a second vector v_y of the same kind (a full d-vector); both are
 *    drawn once per prompt. v = a u + b v', with u, v' Gaussian, orthogonal to
 *    a reference w_r and to each other (not normalised, as the code). With
 *    ortho_to_own_w = 1 (default, the paper's description) w_r is the
 *    prompt's own w restricted to the first d_cur coordinates and v lives in
 *    those coordinates, so <v, w> = 0 for the w the prompt actually uses. With
 *    0 (the released code's behaviour) w_r is an unrelated fresh N(0, I_d)
 *    vector and v spans all d coordinates. Mixing weights: a, b ~ N(0, 1)
 *    divided by sqrt(a^2 + b^2), so |v| ~ sqrt(d) like a clean x; with
 *    ortho_code_coeffs = 1 the code's a /= (a^2+b^2); b /= (a^2+b^2) (the
 *    second with the updated a), whose magnitude is heavy-tailed.
 *    The stored target at an outlier slot is 0 (mask = metric = 0 there).
 *  - many_outlier (SPEC 2.6): outlier x = all ones over all d coordinates,
 *    y-token 1; the stored target is 1 (masked).
 *  - OOD (linear regression): x = z tr with tr fixed per seed, see task.h.
 *
 * Not here: sparse parity (task_parity.c), which shares the layout.
 */
#include "core/parallel.h"
#include "tasks/task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* Per-thread scratch sizes. */
typedef struct {
    size_t nf, ni;
} scratch_size;

static scratch_size reg_scratch(const task_spec *s) {
    size_t d = (size_t)s->n_dims;
    scratch_size z = {6 * d, d};
    if (s->kind == TASK_RELU2NN_REGRESSION) z.nf += (size_t)s->hidden * (d + 1);
    if (s->kind == TASK_DECISION_TREE) {
        z.nf += (size_t)1 << s->depth;       /* leaf values */
        z.ni += ((size_t)1 << s->depth) - 1; /* split coordinates */
    }
    return z;
}

/* The normaliser n with E[f(x)^2] = n (SPEC 1.4), for noise_renorm. */
static double reg_norm(const task_spec *s) {
    switch (s->kind) {
    case TASK_SPARSE_LINEAR_REGRESSION: return s->k;
    case TASK_DECISION_TREE: return 1.0;
    default: return s->n_dims;
    }
}

/* tr (d, d) for the `ood` option from rng_make(seed, TASK_STREAM_SEED):
 * U from modified Gram-Schmidt (twice, for orthogonality in double) on a
 * Gaussian matrix, tr = U diag(l) U^T sqrt(d / sum l^2). Returns 0 on success,
 * -1 on allocation failure. */
static int ood_transform(const task_spec *s, uint64_t seed, float *tr) {
    int d = s->n_dims;
    double *U = malloc((size_t)d * d * sizeof(double)), *l = malloc((size_t)d * sizeof(double));
    if (!U || !l) {
        free(U);
        free(l);
        return -1;
    }
    rng_t r = rng_make(seed, TASK_STREAM_SEED);
    for (size_t i = 0; i < (size_t)d * d; i++) U[i] = rng_normal(&r);
    /* rows of U become orthonormal */
    for (int i = 0; i < d; i++) {
        double *ui = U + (size_t)i * d;
        for (int pass = 0; pass < 2; pass++)
            for (int j = 0; j < i; j++) {
                const double *uj = U + (size_t)j * d;
                double dot = 0;
                for (int c = 0; c < d; c++) dot += ui[c] * uj[c];
                for (int c = 0; c < d; c++) ui[c] -= dot * uj[c];
            }
        double nrm = 0;
        for (int c = 0; c < d; c++) nrm += ui[c] * ui[c];
        nrm = sqrt(nrm);
        for (int c = 0; c < d; c++) ui[c] /= nrm;
    }
    double sum_l2 = 0;
    for (int i = 0; i < d; i++) {
        l[i] = s->ood == TASK_OOD_SKEWED ? 1.0 / (i + 1) : (i < d / 2 ? 1.0 : 0.0);
        sum_l2 += l[i] * l[i];
    }
    double scale = sqrt(d / sum_l2);
    /* tr = sum_i l_i u_i u_i^T (U's rows are the eigenvectors) */
    for (int a = 0; a < d; a++)
        for (int c = 0; c < d; c++) {
            double v = 0;
            for (int i = 0; i < d; i++) v += l[i] * U[(size_t)i * d + a] * U[(size_t)i * d + c];
            tr[(size_t)a * d + c] = (float)(v * scale);
        }
    free(U);
    free(l);
    return 0;
}

/* One outlier vector of ortho_outlier_regression in the first m coordinates,
 * orthogonal to wr (m). g1, g2 are scratch of m floats; out gets m floats. */
static void ortho_vector(rng_t *r, const float *wr, int m, int code_coeffs, float *g1, float *g2, float *out) {
    double ww = 0;
    for (int c = 0; c < m; c++) ww += (double)wr[c] * wr[c];
    for (int c = 0; c < m; c++) g1[c] = rng_normal(r);
    for (int c = 0; c < m; c++) g2[c] = rng_normal(r);
    /* u = g1 - proj_w g1; v = g2 - proj_w g2 - proj_u (.) (Gram-Schmidt in double) */
    double p1 = 0, p2 = 0;
    for (int c = 0; c < m; c++) {
        p1 += (double)g1[c] * wr[c];
        p2 += (double)g2[c] * wr[c];
    }
    double uu = 0, uv = 0;
    for (int c = 0; c < m; c++) {
        double uc = g1[c] - (ww > 0 ? p1 / ww : 0) * wr[c];
        double vc = g2[c] - (ww > 0 ? p2 / ww : 0) * wr[c];
        g1[c] = (float)uc;
        g2[c] = (float)vc;
        uu += uc * uc;
        uv += uc * vc;
    }
    for (int c = 0; c < m; c++) g2[c] = (float)(g2[c] - (uu > 0 ? uv / uu : 0) * g1[c]);
    double a = rng_normal(r), b = rng_normal(r);
    if (code_coeffs) {
        a = a / (a * a + b * b);
        b = b / (a * a + b * b); /* the released code reuses the updated a here */
    } else {
        double rr = sqrt(a * a + b * b);
        a /= rr;
        b /= rr;
    }
    /* Re-project the float result onto w's complement: keeps <out, w> at
     * double-rounding level instead of float-rounding of u and v. */
    double ow = 0;
    for (int c = 0; c < m; c++) {
        double oc = a * g1[c] + b * g2[c];
        out[c] = (float)oc;
        ow += oc * wr[c];
    }
    if (ww > 0)
        for (int c = 0; c < m; c++) out[c] = (float)(out[c] - ow / ww * wr[c]);
}

/* Draw the k-sparse support: k distinct coordinates among the first m. */
static void draw_support(rng_t *r, int *perm, int m, int k) {
    for (int c = 0; c < m; c++) perm[c] = c;
    for (int j = 0; j < k; j++) { /* partial Fisher-Yates */
        int pick = j + (int)rng_below(r, (uint32_t)(m - j));
        int tmp = perm[j];
        perm[j] = perm[pick];
        perm[pick] = tmp;
    }
}

/* Fill prompt `bi` of b. fs / is: this thread's scratch. */
static void reg_prompt(const task_spec *s, const float *tr, int d_cur, int n, batch *b, int bi, rng_t *r, float *fs,
                       int *is) {
    const int d = s->n_dims, T = b->T;
    const int is_ortho = s->kind == TASK_ORTHO_OUTLIER_REGRESSION, is_many = s->kind == TASK_MANY_OUTLIER_REGRESSION;
    float *w = fs, *wr = fs + d, *vx = fs + 2 * (size_t)d, *vy = fs + 3 * (size_t)d, *z = fs + 4 * (size_t)d,
          *g = fs + 5 * (size_t)d;
    float *more = fs + 6 * (size_t)d; /* W1 (h, d) then W2 (h) | tree leaves */
    int h = s->hidden;

    /* ---- the function of this prompt ---- */
    switch (s->kind) {
    case TASK_SPARSE_LINEAR_REGRESSION:
        memset(w, 0, (size_t)d * sizeof(float));
        draw_support(r, is, d_cur, s->k);
        for (int j = 0; j < s->k; j++) w[is[j]] = rng_normal(r);
        break;
    case TASK_RELU2NN_REGRESSION:
        rng_fill_normal(r, more, (size_t)h * d, 0.0f, 1.0f);
        rng_fill_normal(r, more + (size_t)h * d, (size_t)h, 0.0f, 1.0f);
        break;
    case TASK_DECISION_TREE: {
        int n_int = (1 << s->depth) - 1;
        for (int j = 0; j < n_int; j++) is[j] = (int)rng_below(r, (uint32_t)d);
        rng_fill_normal(r, more, (size_t)1 << s->depth, 0.0f, 1.0f);
        break;
    }
    default: rng_fill_normal(r, w, (size_t)d, 0.0f, 1.0f); break; /* linear and the outlier tasks */
    }
    int m_out = d; /* coordinates the ortho outliers live in */
    if (is_ortho) {
        if (s->ortho_to_own_w) {
            m_out = d_cur;
            memcpy(wr, w, (size_t)d * sizeof(float));
        } else {
            rng_fill_normal(r, wr, (size_t)d, 0.0f, 1.0f); /* a fresh task's w, as the code */
        }
        memset(vx, 0, (size_t)d * sizeof(float));
        memset(vy, 0, (size_t)d * sizeof(float));
        ortho_vector(r, wr, m_out, s->ortho_code_coeffs, z, g, vx);
        ortho_vector(r, wr, m_out, s->ortho_code_coeffs, z, g, vy);
    }

    double renorm = s->noise_renorm ? sqrt(reg_norm(s) / (reg_norm(s) + s->noise * s->noise)) : 1.0;
    for (int i = 0; i < n; i++) {
        size_t slot = (size_t)bi * T + 2 * (size_t)i; /* x_i; its y-token is slot + 1 */
        float *xt = b->x + slot * d, *yt = b->x + (slot + 1) * d;
        int outlier = 0;
        if (is_ortho || is_many) outlier = rng_uniform(r) < s->p;
        /* x: N(0, I_d) (through the OOD transform), scaled, truncated */
        rng_fill_normal(r, z, (size_t)d, 0.0f, 1.0f);
        if (tr) {
            for (int c = 0; c < d; c++) {
                double v = 0;
                for (int a = 0; a < d; a++) v += (double)z[a] * tr[(size_t)a * d + c];
                g[c] = (float)v;
            }
            memcpy(z, g, (size_t)d * sizeof(float));
        }
        for (int c = 0; c < d; c++) xt[c] = c < d_cur ? (float)(z[c] * s->x_scale) : 0.0f;
        /* f(x) */
        double f = 0;
        if (s->kind == TASK_RELU2NN_REGRESSION) {
            const float *W1 = more, *W2 = more + (size_t)h * d;
            for (int j = 0; j < h; j++) {
                double a = 0;
                for (int c = 0; c < d_cur; c++) a += (double)W1[(size_t)j * d + c] * xt[c];
                if (a > 0) f += W2[j] * a;
            }
            f *= sqrt(2.0 / h);
        } else if (s->kind == TASK_DECISION_TREE) {
            int node = 0; /* heap order: children of v are 2v+1 (x[c] <= 0) and 2v+2 (x[c] > 0) */
            for (int lvl = 0; lvl < s->depth; lvl++) node = 2 * node + 1 + (xt[is[node]] > 0.0f);
            f = more[node - ((1 << s->depth) - 1)];
        } else {
            for (int c = 0; c < d_cur; c++) f += (double)w[c] * xt[c];
        }
        double y = f * s->y_scale;
        if (s->noise > 0) y = (y + s->noise * rng_normal(r)) * renorm;

        if (outlier && is_ortho) {
            memcpy(xt, vx, (size_t)d * sizeof(float));
            memcpy(yt, vy, (size_t)d * sizeof(float));
            b->y[slot] = 0.0f;
        } else if (outlier) { /* many_outlier */
            for (int c = 0; c < d; c++) xt[c] = 1.0f;
            yt[0] = 1.0f;
            b->y[slot] = 1.0f;
        } else {
            yt[0] = (float)y;
            b->y[slot] = (float)y;
            b->mask[slot] = b->metric[slot] = 1.0f;
            b->example[slot] = i;
        }
    }
}

icl_status task_regression_fill(const task_spec *s, int d_cur, int n_cur, batch *b, uint64_t seed,
                                uint64_t stream0) {
    int nth = par_max_threads();
    scratch_size z = reg_scratch(s);
    /* scratch: per-thread floats (nth x nf), then ints (nth x ni) */
    size_t nfs = (size_t)nth * z.nf, nis = (size_t)nth * z.ni;
    float *fs = task_batch_scratch(b, nfs * sizeof(float) + nis * sizeof(int));
    if (!fs) return icl_fail(ICL_ERR_NOMEM, "task %s: out of memory for sampling scratch", s->name);
    int *is = (int *)(fs + nfs);
    float *tr = NULL;
    if (s->kind == TASK_LINEAR_REGRESSION && s->ood != TASK_OOD_NONE) {
        /* OOD evaluation only, never a training step: its d x d transform
         * is built per call */
        tr = malloc((size_t)s->n_dims * s->n_dims * sizeof(float));
        if (!tr || ood_transform(s, seed, tr)) {
            free(tr);
            return icl_fail(ICL_ERR_NOMEM, "task %s: out of memory for the ood transform", s->name);
        }
    }
    size_t work = (size_t)b->B * b->T * s->n_dims * (s->kind == TASK_RELU2NN_REGRESSION ? s->hidden : 1);
#pragma omp parallel for schedule(static) if (work >= TASK_PAR_MIN_WORK)
    for (int bi = 0; bi < b->B; bi++) {
        int th = par_thread_id();
        rng_t r = rng_make(seed, stream0 + (uint64_t)bi);
        reg_prompt(s, tr, d_cur, n_cur, b, bi, &r, fs + (size_t)th * z.nf, is + (size_t)th * z.ni);
    }
    free(tr);
    return ICL_OK;
}
