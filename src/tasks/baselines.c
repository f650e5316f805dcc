/*
 * baselines.c - the baseline registry, the workspace, the batch driver and
 * the two solver-free baselines (k-NN, averaging). See baselines.h.
 *
 * The driver loads prompt b's examples into its thread's scratch slice as
 * double, X (n, d) and y (n), then walks the positions i = 0, 1, ... in order,
 * predicting at the metric slots. Least squares and Lasso add example i to
 * running statistics after predicting at i, so prefix i costs one solve, not
 * a refit; the tree and gd_2nn refit on examples 0..i-1 at every metric slot
 * (as the reference does).
 *
 * k-NN (Garg et al.'s NNModel, uniform weights): the mean y of the k = 3
 * examples with the smallest Euclidean distance to the query; fewer than k
 * examples -> the mean of all; ties in distance go to the earlier example.
 * Averaging (Garg et al.'s AveragingModel): w = (1/i) sum_j y_j x_j over the
 * i examples, pred = w . x_query.
 *
 * Not here: the solvers (baselines_linear.c, baselines_tree.c,
 * baselines_nn.c) and the metrics (eval.c).
 */
#include "tasks/baselines.h"
#include "tasks/baselines_impl.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- registry ------------------------------------------------------------- */

static const baseline_info registry[] = {
    {"least_squares", "minimum-norm least squares on the examples so far (pseudo-inverse below d points)",
     BASELINE_LEAST_SQUARES, 0.0, 0, 0},
    {"knn", "mean y of the 3 nearest examples by Euclidean distance in x", BASELINE_KNN, 0.0, 3, 0},
    {"averaging", "w = mean of y_j x_j over the examples, prediction w . x", BASELINE_AVERAGING, 0.0, 0, 0},
    {"lasso_1", "Lasso (coordinate descent, no intercept), alpha = 1", BASELINE_LASSO, 1.0, 0, 0},
    {"lasso_0.1", "Lasso (coordinate descent, no intercept), alpha = 0.1", BASELINE_LASSO, 0.1, 0, 0},
    {"lasso_0.01", "Lasso (coordinate descent, no intercept), alpha = 0.01", BASELINE_LASSO, 0.01, 0, 0},
    {"lasso_0.001", "Lasso (coordinate descent, no intercept), alpha = 0.001", BASELINE_LASSO, 0.001, 0, 0},
    {"lasso_0.0001", "Lasso (coordinate descent, no intercept), alpha = 0.0001", BASELINE_LASSO, 0.0001, 0, 0},
    {"greedy_tree_4", "greedy regression tree (CART, squared error), depth at most 4", BASELINE_TREE, 0.0, 0, 4},
    {"greedy_tree", "greedy regression tree (CART, squared error), unlimited depth", BASELINE_TREE, 0.0, 0, 0},
    {"gd_2nn", "2-layer ReLU net (width 100) trained on the examples by Adam, lr 5e-3, 100 full-batch steps",
     BASELINE_GD_2NN, 0.0, 0, 0},
    {"chance", "chance accuracy: 0.5 for parity, 1/kappa for MQAR (a constant, not a predictor)",
     BASELINE_CHANCE, 0.0, 0, 0},
};
#define N_REGISTRY ((int)(sizeof registry / sizeof registry[0]))

int baseline_count(void) { return N_REGISTRY; }

const baseline_info *baseline_at(int i) { return (i >= 0 && i < N_REGISTRY) ? &registry[i] : NULL; }

const baseline_info *baseline_by_name(const char *name) {
    if (name) {
        for (int i = 0; i < N_REGISTRY; i++)
            if (!strcmp(registry[i].name, name)) return &registry[i];
    }
    char list[512];
    size_t len = 0;
    list[0] = 0;
    for (int i = 0; i < N_REGISTRY && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", registry[i].name);
    icl_fail(ICL_ERR_ARG, "unknown baseline '%s' (known: %s)", name ? name : "(null)", list);
    return NULL;
}

icl_status baseline_chance(eval_metric kind, int n_values, double *value) {
    switch (kind) {
    case EVAL_SIGN_ACC: *value = 0.5; return ICL_OK;
    case EVAL_NEAREST_ACC:
        if (n_values < 1) return icl_fail(ICL_ERR_ARG, "baseline_chance: n_values must be >= 1 (got %d)", n_values);
        *value = 1.0 / n_values;
        return ICL_OK;
    case EVAL_SQERR: break;
    }
    return icl_fail(ICL_ERR_ARG, "baseline_chance: metric '%s' has no chance level", eval_metric_name(kind));
}

/* ---- workspace ------------------------------------------------------------ */

struct baseline_ws {
    int cap_B, T_max, d, n_max, n_slots;
    bl_scratch *slots; /* (n_slots) one per OpenMP thread */
};

static void scratch_free(bl_scratch *s) {
    void *p[] = {s->X, s->y, s->q, s->R, s->z, s->A, s->w, s->S, s->s, s->lw, s->M, s->wa, s->gn,
                 s->act, s->pat, s->pat_fail, s->sorted, s->ord, s->goes_left, s->tmp,
                 s->pairs, s->nodes, s->stack, s->par, s->grad, s->m, s->v, s->H, s->dout};
    for (size_t i = 0; i < sizeof p / sizeof p[0]; i++) free(p[i]);
}

static int scratch_alloc(bl_scratch *s, int n_max, int d) {
    size_t n = (size_t)n_max, dd = (size_t)d, np = (size_t)BASELINE_GD2NN_WIDTH * (dd + 2) + 1;
    s->n_max = n_max;
    s->d_max = d;
    /* +1 so that no count is 0 (calloc(0) may return NULL). */
#define ALLOC(f, cnt) ((s->f = calloc((size_t)(cnt) + 1, sizeof *s->f)) == NULL)
    if (ALLOC(X, n * dd) || ALLOC(y, n) || ALLOC(q, dd) || ALLOC(R, dd * dd) || ALLOC(z, 2 * dd) ||
        ALLOC(A, dd * dd) || ALLOC(w, dd) || ALLOC(S, dd * dd) || ALLOC(s, dd) || ALLOC(lw, dd) || ALLOC(M, dd * dd) ||
        ALLOC(wa, dd) || ALLOC(gn, dd) || ALLOC(act, dd) || ALLOC(pat, dd) || ALLOC(pat_fail, dd) || ALLOC(sorted, dd * n) || ALLOC(ord, dd * n) ||
        ALLOC(goes_left, n) ||
        ALLOC(tmp, n) || ALLOC(pairs, n) || ALLOC(nodes, 2 * n) || ALLOC(stack, 2 * n) || ALLOC(par, np) ||
        ALLOC(grad, np) || ALLOC(m, np) || ALLOC(v, np) || ALLOC(H, n * BASELINE_GD2NN_WIDTH) || ALLOC(dout, n))
        return 0;
#undef ALLOC
    return 1;
}

icl_status baseline_ws_new(baseline_ws **out, int cap_B, int T_max, int d) {
    *out = NULL;
    if (cap_B < 1) return icl_fail(ICL_ERR_ARG, "baseline_ws_new: cap_B must be >= 1 (got %d)", cap_B);
    if (T_max < 1) return icl_fail(ICL_ERR_ARG, "baseline_ws_new: T_max must be >= 1 (got %d)", T_max);
    if (d < 1) return icl_fail(ICL_ERR_ARG, "baseline_ws_new: d must be >= 1 (got %d)", d);
    baseline_ws *ws = calloc(1, sizeof *ws);
    if (!ws) return icl_fail(ICL_ERR_NOMEM, "baseline_ws_new: out of memory");
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    ws->cap_B = cap_B;
    ws->T_max = T_max;
    ws->d = d;
    ws->n_max = (T_max + 1) / 2; /* x-slots 0, 2, 4, ... below T_max */
    ws->n_slots = threads < cap_B ? threads : cap_B;
    ws->slots = calloc((size_t)ws->n_slots, sizeof *ws->slots);
    if (!ws->slots) {
        free(ws);
        return icl_fail(ICL_ERR_NOMEM, "baseline_ws_new: out of memory");
    }
    for (int i = 0; i < ws->n_slots; i++) {
        if (!scratch_alloc(&ws->slots[i], ws->n_max, d)) {
            baseline_ws_free(ws);
            return icl_fail(ICL_ERR_NOMEM, "baseline_ws_new: out of memory for %d examples of width %d", ws->n_max,
                            d);
        }
    }
    *out = ws;
    return ICL_OK;
}

void baseline_ws_free(baseline_ws *ws) {
    if (!ws) return;
    for (int i = 0; i < ws->n_slots; i++) scratch_free(&ws->slots[i]);
    free(ws->slots);
    free(ws);
}

/* ---- k-NN and averaging ---------------------------------------------------- */

#define KNN_MAX 16

void baseline_knn_predict(const double *X, const double *y, int n, int d, int k, const double *xq, double *yq) {
    if (k > KNN_MAX) k = KNN_MAX;
    if (k < 1 || n == 0) {
        *yq = 0.0;
        return;
    }
    /* Keep the k best (distance, index) sorted ascending; a strict "<" keeps
     * the earlier example on equal distances. */
    double bd[KNN_MAX];
    int bi[KNN_MAX], nb = 0;
    for (int j = 0; j < n; j++) {
        const double *xj = X + (size_t)j * d;
        double dist = 0.0;
        for (int c = 0; c < d; c++) dist += (xj[c] - xq[c]) * (xj[c] - xq[c]);
        if (nb == k && !(dist < bd[k - 1])) continue;
        int pos = nb < k ? nb++ : k - 1;
        while (pos > 0 && dist < bd[pos - 1]) {
            bd[pos] = bd[pos - 1];
            bi[pos] = bi[pos - 1];
            pos--;
        }
        bd[pos] = dist;
        bi[pos] = j;
    }
    double acc = 0.0;
    for (int j = 0; j < nb; j++) acc += y[bi[j]];
    *yq = acc / nb;
}

void baseline_averaging_predict(const double *X, const double *y, int n, int d, const double *xq, double *yq) {
    if (n == 0) {
        *yq = 0.0;
        return;
    }
    double acc = 0.0;
    for (int c = 0; c < d; c++) {
        double wc = 0.0;
        for (int j = 0; j < n; j++) wc += y[j] * X[(size_t)j * d + c];
        acc += wc / n * xq[c];
    }
    *yq = acc;
}

/* ---- the batch driver -------------------------------------------------------- */

static icl_status check_batch(const baseline_info *bl, const baseline_ws *ws, const batch *bt, const float *pred) {
    if (!bl) return icl_fail(ICL_ERR_ARG, "baseline_predict: no baseline given");
    if (bl->kind == BASELINE_CHANCE)
        return icl_fail(ICL_ERR_ARG, "baseline 'chance' is a constant accuracy, not a predictor: use baseline_chance()");
    if (!ws || !bt || !pred) return icl_fail(ICL_ERR_ARG, "baseline_predict(%s): NULL workspace, batch or pred", bl->name);
    if (!bt->x || !bt->metric || !bt->example)
        return icl_fail(ICL_ERR_ARG,
                        "baseline %s needs a continuous batch (x, metric and example set); token tasks have none",
                        bl->name);
    if (bt->O != 1)
        return icl_fail(ICL_ERR_ARG,
                        "baseline %s predicts a scalar y per example; this batch has O = %d outputs per slot",
                        bl->name, bt->O);
    if (bt->B < 0 || bt->T < 0 || bt->d < 1)
        return icl_fail(ICL_ERR_ARG, "baseline %s: bad batch sizes B=%d T=%d d=%d", bl->name, bt->B, bt->T, bt->d);
    if (bt->B > ws->cap_B || bt->T > ws->T_max || bt->d > ws->d)
        return icl_fail(ICL_ERR_SHAPE,
                        "baseline %s: batch (B=%d, T=%d, d=%d) exceeds the workspace (cap_B=%d, T_max=%d, d=%d)",
                        bl->name, bt->B, bt->T, bt->d, ws->cap_B, ws->T_max, ws->d);
    const size_t n_x = (size_t)bt->B * bt->T * bt->d;
    for (size_t i = 0; i < n_x; i++)
        if (!isfinite(bt->x[i]))
            return icl_fail(ICL_ERR_NUMERIC, "baseline %s: token x[prompt %zu, slot %zu, coordinate %zu] is not finite",
                            bl->name, i / ((size_t)bt->T * bt->d), i / bt->d % bt->T, i % bt->d);
    for (int b = 0; b < bt->B; b++) {
        for (int t = 0; t < bt->T; t++) {
            size_t bt_i = (size_t)b * bt->T + t;
            if (bt->metric[bt_i] == 0.0f) continue;
            int ex = bt->example[bt_i];
            if (ex < 0 || t != 2 * ex)
                return icl_fail(ICL_ERR_ARG,
                                "baseline %s needs the interleaved layout x_0, y_0, x_1, ...: metric slot t=%d of "
                                "prompt %d has example=%d (expected t = 2*example)",
                                bl->name, t, b, ex);
        }
    }
    return ICL_OK;
}

/* Predict every metric slot of prompt b into pred (already zeroed). */
static void run_prompt(const baseline_info *bl, bl_scratch *s, const batch *bt, int b, float *pred, uint64_t seed) {
    const int T = bt->T, d = bt->d;
    const size_t row = (size_t)b * T;
    /* The last metric slot bounds the examples needed. */
    int n_x = 0;
    for (int t = 0; t < T; t += 2)
        if (bt->metric[row + t] != 0.0f) n_x = t / 2 + 1;
    if (n_x == 0) return;
    for (int i = 0; i < n_x; i++) {
        const float *xi = bt->x + (row + 2 * (size_t)i) * d;
        for (int c = 0; c < d; c++) s->X[(size_t)i * d + c] = xi[c];
        s->y[i] = (2 * i + 1 < T) ? bt->x[(row + 2 * (size_t)i + 1) * d] : 0.0;
    }
    if (bl->kind == BASELINE_LEAST_SQUARES) bl_lsq_reset(s, d);
    if (bl->kind == BASELINE_LASSO) {
        bl_lasso_reset(s, d);
        memset(s->lw, 0, (size_t)d * sizeof(double));
    }
    for (int i = 0; i < n_x; i++) {
        const double *xq = s->X + (size_t)i * d;
        if (bt->metric[row + 2 * (size_t)i] != 0.0f) {
            double yq = 0.0;
            switch (bl->kind) {
            case BASELINE_LEAST_SQUARES:
                bl_lsq_solve(s, d, s->w);
                for (int c = 0; c < d; c++) yq += s->w[c] * xq[c];
                break;
            case BASELINE_LASSO:
                bl_lasso_solve(s, d, bl->alpha, s->lw);
                for (int c = 0; c < d; c++) yq += s->lw[c] * xq[c];
                break;
            case BASELINE_KNN: baseline_knn_predict(s->X, s->y, i, d, bl->k, xq, &yq); break;
            case BASELINE_AVERAGING: baseline_averaging_predict(s->X, s->y, i, d, xq, &yq); break;
            case BASELINE_TREE:
                if (i > 0) {
                    bl_tree_fit(s, s->X, s->y, i, d, bl->max_depth, 1);
                    yq = bl_tree_eval(s, xq);
                }
                break;
            case BASELINE_GD_2NN:
                if (i > 0) {
                    bl_nn_fit(s, s->X, s->y, i, d, seed, (uint64_t)b, NULL, NULL);
                    yq = bl_nn_eval(s, d, xq);
                }
                break;
            case BASELINE_CHANCE: break;
            }
            pred[row + 2 * (size_t)i] = (float)yq;
        }
        if (bl->kind == BASELINE_LEAST_SQUARES) bl_lsq_add(s, d, xq, s->y[i]);
        if (bl->kind == BASELINE_LASSO) bl_lasso_add(s, d, xq, s->y[i]);
        if (bl->kind == BASELINE_TREE) bl_tree_presort_add(s, s->X, i, d);
    }
}

icl_status baseline_predict(const baseline_info *bl, baseline_ws *ws, const batch *bt, float *pred, uint64_t seed) {
    icl_status st = check_batch(bl, ws, bt, pred);
    if (st != ICL_OK) return st;
    memset(pred, 0, (size_t)bt->B * bt->T * sizeof(float));
    /* One prompt per iteration, on the calling thread's slice; dynamic
     * scheduling because prompts of outlier tasks differ in work. */
#pragma omp parallel for schedule(dynamic, 1) num_threads(ws->n_slots)
    for (int b = 0; b < bt->B; b++) {
        int slot = 0;
#ifdef _OPENMP
        slot = omp_get_thread_num();
#endif
        run_prompt(bl, &ws->slots[slot], bt, b, pred, seed);
    }
    return ICL_OK;
}

/* ---- one problem at a time -------------------------------------------------- */

static icl_status check_problem(const char *who, const baseline_ws *ws, int n, int d) {
    if (!ws) return icl_fail(ICL_ERR_ARG, "%s: NULL workspace", who);
    if (n < 0 || d < 1) return icl_fail(ICL_ERR_ARG, "%s: bad sizes n=%d d=%d", who, n, d);
    if (n > ws->n_max || d > ws->d)
        return icl_fail(ICL_ERR_SHAPE, "%s: n=%d, d=%d exceed the workspace (n_max=%d, d=%d)", who, n, d, ws->n_max,
                        ws->d);
    return ICL_OK;
}

icl_status baseline_fit_least_squares(baseline_ws *ws, const double *X, const double *y, int n, int d, double *w) {
    icl_status st = check_problem("baseline_fit_least_squares", ws, n, d);
    if (st != ICL_OK) return st;
    bl_scratch *s = &ws->slots[0];
    bl_lsq_reset(s, d);
    for (int i = 0; i < n; i++) bl_lsq_add(s, d, X + (size_t)i * d, y[i]);
    bl_lsq_solve(s, d, w);
    return ICL_OK;
}

icl_status baseline_fit_lasso(baseline_ws *ws, const double *X, const double *y, int n, int d, double alpha,
                              double *w, int *sweeps) {
    icl_status st = check_problem("baseline_fit_lasso", ws, n, d);
    if (st != ICL_OK) return st;
    if (!(alpha >= 0.0)) return icl_fail(ICL_ERR_ARG, "baseline_fit_lasso: alpha must be >= 0 (got %g)", alpha);
    bl_scratch *s = &ws->slots[0];
    bl_lasso_reset(s, d);
    for (int i = 0; i < n; i++) bl_lasso_add(s, d, X + (size_t)i * d, y[i]);
    memset(w, 0, (size_t)d * sizeof(double));
    int k = bl_lasso_solve(s, d, alpha, w);
    if (sweeps) *sweeps = k;
    return ICL_OK;
}

icl_status baseline_fit_tree(baseline_ws *ws, const double *X, const double *y, int n, int d, int max_depth,
                             const double *Xq, int nq, double *yq, int *n_leaves) {
    icl_status st = check_problem("baseline_fit_tree", ws, n, d);
    if (st != ICL_OK) return st;
    if (max_depth < 0) return icl_fail(ICL_ERR_ARG, "baseline_fit_tree: max_depth must be >= 0 (got %d)", max_depth);
    bl_scratch *s = &ws->slots[0];
    int leaves = bl_tree_fit(s, X, y, n, d, max_depth, 0);
    for (int i = 0; i < nq; i++) yq[i] = bl_tree_eval(s, Xq + (size_t)i * d);
    if (n_leaves) *n_leaves = leaves;
    return ICL_OK;
}

icl_status baseline_fit_gd2nn(baseline_ws *ws, const double *X, const double *y, int n, int d, uint64_t seed,
                              uint64_t stream, const double *Xq, int nq, double *yq, double *loss_first,
                              double *loss_last) {
    icl_status st = check_problem("baseline_fit_gd2nn", ws, n, d);
    if (st != ICL_OK) return st;
    bl_scratch *s = &ws->slots[0];
    bl_nn_fit(s, X, y, n, d, seed, stream, loss_first, loss_last);
    for (int i = 0; i < nq; i++) yq[i] = n > 0 ? bl_nn_eval(s, d, Xq + (size_t)i * d) : 0.0;
    return ICL_OK;
}
