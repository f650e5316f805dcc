/*
 * baselines.h - the classical in-context learners a model is compared with
 * (SPEC.md 1.4): least squares, 3-nearest-neighbours, averaging, Lasso, a
 * greedy regression tree, and a 2-layer ReLU net trained by Adam on the prompt.
 *
 * All of them read only a `batch` in the interleaved regression layout
 * (SPEC.md 1.1). In prompt b, example i is
 *     x_i = batch.x[b, 2i, 0:d]        and   y_i = batch.x[b, 2i+1, 0],
 * i.e. the y the prompt *shows* (outlier tasks' corrupted pairs are seen as
 * the model sees them). At every slot t with batch.metric[b, t] != 0 the
 * baseline predicts y_i with i = batch.example[b, t] (t must equal 2i) from
 * examples 0..i-1 and the query x_i alone, and writes it to pred[b, t, 0];
 * pred has the layout of batch.y, (B, T, O) with O = 1, and every other slot
 * is set to 0. With no examples (i = 0) every baseline predicts 0.
 *
 * Numbers are computed in double, without BLAS (d <= ~30, N <= ~500), with
 * OpenMP over prompts; each prompt is computed by one thread from its own
 * data alone, so results do not depend on the thread count. All scratch
 * lives in a `baseline_ws` allocated once for (cap_B, T_max, d); running a
 * baseline never allocates.
 *
 * Cost: a baseline only predicts at metric slots, so clearing metric slots
 * (e.g. keeping every 5th position) skips work. Least squares, k-NN,
 * averaging and Lasso update running statistics and cost little; the trees
 * refit at every position; gd_2nn trains a fresh net per position, about
 * 4 n h d flops x 100 steps: ~4 Gflop for one 101-example prompt (d = 20),
 * by far the slowest (see baselines_nn.c).
 *
 * Not here: the task samplers (task.h) and the metrics and curves (eval.h).
 * "chance" is not a predictor but a constant accuracy: baseline_chance().
 */
#ifndef ICL_BASELINES_H
#define ICL_BASELINES_H

#include <stdint.h>

#include "core/status.h"
#include "tasks/batch.h"
#include "tasks/eval.h"

typedef enum {
    BASELINE_LEAST_SQUARES = 0, /* minimum-norm least squares */
    BASELINE_KNN,               /* mean y of the k nearest x (Euclidean) */
    BASELINE_AVERAGING,         /* w = mean_j y_j x_j, pred = w . x */
    BASELINE_LASSO,             /* coordinate-descent Lasso, no intercept */
    BASELINE_TREE,              /* greedy CART regression tree */
    BASELINE_GD_2NN,            /* 2-layer ReLU net, Adam on the prompt */
    BASELINE_CHANCE             /* constant accuracy; see baseline_chance */
} baseline_kind;

typedef struct {
    const char *name;        /* e.g. "least_squares", "lasso_0.01" */
    const char *description; /* one line for help */
    baseline_kind kind;
    double alpha;            /* Lasso penalty (BASELINE_LASSO) */
    int k;                   /* neighbours (BASELINE_KNN) */
    int max_depth;           /* tree depth limit, 0 = unlimited (BASELINE_TREE) */
} baseline_info;

/* Fixed settings, stated once (SPEC.md 1.4 and the reasons in baselines_*.c). */
#define BASELINE_LSQ_RCOND 1e-10      /* singular values <= rcond * s_max count as 0 */
/* Lasso: coordinate descent until the KKT conditions hold to 1e-10 relative
 * (via the exact active-set finish in baselines_linear.c), or the duality
 * gap is <= tol * ||y||^2, or after MAX_SWEEPS sweeps over the d coordinates. */
#define BASELINE_LASSO_TOL 1e-10
#define BASELINE_LASSO_MAX_SWEEPS 20000
#define BASELINE_GD2NN_WIDTH 100      /* hidden units */
#define BASELINE_GD2NN_STEPS 100      /* full-batch Adam steps */
#define BASELINE_GD2NN_LR 5e-3

/* ---- the registry ------------------------------------------------------ */

/* Number of named baselines, and the i-th (0 <= i < count), for help lists. */
int baseline_count(void);
const baseline_info *baseline_at(int i);
/* The baseline called `name`, or NULL (then icl_error() lists the known names). */
const baseline_info *baseline_by_name(const char *name);

/* The chance accuracy of a metric: 0.5 for EVAL_SIGN_ACC (parity), 1/n_values
 * for EVAL_NEAREST_ACC (MQAR with n_values = kappa pairs). [out] *value.
 * ICL_ERR_ARG for EVAL_SQERR (no chance level) or n_values < 1. */
icl_status baseline_chance(eval_metric kind, int n_values, double *value);

/* ---- workspace ---------------------------------------------------------- */

typedef struct baseline_ws baseline_ws;

/* Scratch for batches of up to cap_B prompts of up to T_max tokens of width
 * up to d (one slice per OpenMP thread). [out] *out; free with baseline_ws_free. */
icl_status baseline_ws_new(baseline_ws **out, int cap_B, int T_max, int d);
void baseline_ws_free(baseline_ws *ws);

/* ---- running a baseline on a batch --------------------------------------- */

/* Fill pred (B, T, 1) as described at the top. `seed` only matters for
 * gd_2nn: prompt b initialises its net from rng_make(seed, b) (the same init
 * at every position of the prompt). ICL_ERR_ARG when the batch does not have
 * the interleaved layout (O != 1, no x, a metric slot t != 2*example) or the
 * baseline is "chance"; ICL_ERR_SHAPE when it exceeds the workspace;
 * ICL_ERR_NUMERIC when a token is NaN or infinite. */
icl_status baseline_predict(const baseline_info *bl, baseline_ws *ws, const batch *bt, float *pred,
                            uint64_t seed);

/* ---- one problem at a time (tests, and callers with their own data) ------ */
/* X (n, d) row-major, y (n), in double; n <= (T_max + 1) / 2 and d <= the
 * workspace's d. They use the workspace's first slice: do not call them
 * concurrently on one workspace. */

/* Minimum-norm least squares: [out] w (d) = pinv(X) y. */
icl_status baseline_fit_least_squares(baseline_ws *ws, const double *X, const double *y, int n, int d,
                                      double *w);
/* Lasso: [out] w (d) minimising (1/2n)||y - Xw||^2 + alpha ||w||_1 from w = 0;
 * [out] *sweeps (may be NULL) the coordinate-descent sweeps used. */
icl_status baseline_fit_lasso(baseline_ws *ws, const double *X, const double *y, int n, int d, double alpha,
                              double *w, int *sweeps);
/* Greedy tree of max_depth (0 = unlimited) fitted to (X, y), evaluated at the
 * nq rows of Xq (nq, d): [out] yq (nq); [out] *n_leaves (may be NULL). */
icl_status baseline_fit_tree(baseline_ws *ws, const double *X, const double *y, int n, int d, int max_depth,
                             const double *Xq, int nq, double *yq, int *n_leaves);
/* 2-layer ReLU net initialised from rng_make(seed, stream), trained by the
 * gd_2nn recipe on (X, y), evaluated at Xq: [out] yq (nq); [out] the training
 * MSE before the first and after the last step (either may be NULL). */
icl_status baseline_fit_gd2nn(baseline_ws *ws, const double *X, const double *y, int n, int d, uint64_t seed,
                              uint64_t stream, const double *Xq, int nq, double *yq, double *loss_first,
                              double *loss_last);
/* k nearest neighbours and averaging at one query xq (d): [out] *yq. */
void baseline_knn_predict(const double *X, const double *y, int n, int d, int k, const double *xq, double *yq);
void baseline_averaging_predict(const double *X, const double *y, int n, int d, const double *xq, double *yq);

#endif
