/*
 * task.h - the in-context tasks of SPEC.md sections 1 and 2 as samplers of
 * batches (batch.h), with their curricula and metrics.
 *
 * A task is built from a task_spec: a plain struct holding the task's name
 * and every option, filled with defaults by task_spec_default() and changed
 * key by key with task_spec_set() (the Lua binding forwards table fields).
 * task_create() validates the spec and returns an object that knows its
 * geometry, its curriculum position and how to fill a batch:
 *
 *   task_spec s;  task_spec_default(&s, "linear_regression");
 *   task_spec_set(&s, "n_dims", 5);  task_spec_set(&s, "n_points", 20);
 *   task *t;  if (task_create(&t, &s) != ICL_OK) puts(icl_error());
 *   batch b;  task_batch_alloc(&b, t, 64);
 *   task_sample(t, &b, 64, seed, step * 64);   // prompts from streams step*64 + i
 *   task_curriculum_step(t);                    // after each training step
 *
 * Reproducibility: prompt i of a task_sample call is a pure function of the
 * spec, the curriculum position and rng_make(seed, stream0 + i); draws shared
 * by a whole call (sparse_parity's subset with subset_per_batch = 1) use
 * stream TASK_STREAM_BATCH | stream0, and draws shared by every call with one
 * seed (the OOD covariance of linear regression) use TASK_STREAM_SEED.
 * stream0 + B must stay below 2^62. Prompts are filled in parallel (OpenMP,
 * for batches above TASK_PAR_MIN_WORK) and the result does not depend on the
 * thread count.
 *
 * Scoring: task_score() is the reference implementation of every metric. A
 * generic scorer must (a) read only the first task_metric_out() coordinates
 * (1 for cot_io, whose metric slots also carry zero targets), (b) compare
 * signs as (pred > 0) == (y > 0.5), since parity targets are {0, 1}, and
 * (c) for vector_mqar take the candidates from the value slots 2j+1 of x,
 * not from the queried targets (queries may be fewer than kappa).
 *
 * Layouts (T tokens, d token width, O prediction width; see batch.h):
 *  - Interleaved regression (linear, sparse linear, relu2nn, decision tree,
 *    the outlier tasks, sparse parity, custom): T = 2N, x_i at slot 2i,
 *    y_i at slot 2i+1 in coordinate 0 (other coordinates 0). The prediction
 *    of y_i is read at slot 2i: y[b,2i,0] is the target, mask = metric = 1
 *    there (0 at odd slots), example[b,2i] = i. O = 1.
 *    Outlier tasks: mask = metric = 0 (example = -1) at outlier pairs.
 *    sparse_parity: LOSS_BCE and y[b,2i,0] holds the BCE target (y_i+1)/2 in
 *    {0, 1}; the y-token itself holds y_i in {-1, +1} (SPEC.md 2.7).
 *  - cot_io (SPEC.md 2.8): T = 3N, x_i at slot 3i, s_i = hidden activation
 *    (its h coordinates, then zeros) at 3i+1, y_i (coordinate 0) at 3i+2.
 *    O = h: every prediction is the NEXT token's first h coordinates. At
 *    slot 3i the target is s_i; at slot 3i+1 it is (y_i, 0, ..., 0). mask = 1
 *    at both; metric = 1 only at 3i+1 (example i), where the metric is the
 *    squared error of coordinate 0 alone (task_metric_out() = 1).
 *  - vector_mqar (SPEC.md 2.9): T = 2*kappa + queries. Key j at slot 2j, its
 *    value at 2j+1 (random vectors of norm sqrt(d)), then the query keys.
 *    At query slot 2*kappa + m the target is the queried key's value (O = d),
 *    mask = metric = 1, example = m (queries answered before this one).
 *  - token_mqar (SPEC.md 2.10): d = 0, x = y = NULL; ids in tok, the value
 *    to predict in ycls at query slots (-1 elsewhere), O = vocab (logits),
 *    LOSS_CE; example = m, the m-th query in time order.
 *
 * Not here: baselines (baselines.h), evaluation curves (eval.h), models.
 */
#ifndef ICL_TASK_H
#define ICL_TASK_H

#include <stddef.h>
#include <stdint.h>

#include "core/rng.h"
#include "core/status.h"
#include "tasks/batch.h"

/* ---- kinds, options ------------------------------------------------------- */

typedef enum {
    TASK_LINEAR_REGRESSION = 0,
    TASK_SPARSE_LINEAR_REGRESSION,
    TASK_RELU2NN_REGRESSION,
    TASK_DECISION_TREE,
    TASK_ORTHO_OUTLIER_REGRESSION,
    TASK_MANY_OUTLIER_REGRESSION,
    TASK_SPARSE_PARITY,
    TASK_COT_IO,
    TASK_VECTOR_MQAR,
    TASK_TOKEN_MQAR,
    TASK_CUSTOM, /* prompts from a C callback (task_create_custom) */
    TASK_KIND_COUNT
} task_kind;

/* Values of the `ood` option (linear_regression only, SPEC.md 1.4; Garg et
 * al.'s build_evals). The covariance is fixed per seed (TASK_STREAM_SEED):
 * x = z U diag(l) U^T sqrt(d / sum l^2), U a random orthogonal matrix, so
 * E|x|^2 = d as in-distribution. */
#define TASK_OOD_NONE 0
#define TASK_OOD_SKEWED 1        /* l_i = 1/(i+1) */
#define TASK_OOD_HALF_SUBSPACE 2 /* l_i = 1 for i < d/2, else 0 */

#define TASK_STREAM_BATCH (1ull << 63)
#define TASK_STREAM_SEED ((1ull << 63) | (1ull << 62))

/* Largest batch-of-64 footprint task_spec_validate accepts (see there). */
#define TASK_MAX_BYTES (1ull << 30)
#define TASK_NAME_MAX 32

/* Every option of every task; which ones a task reads is listed by
 * task_spec_keys(). Curriculum fields at 0 mean "follow n_dims / n_points"
 * (no curriculum: start = end = n_dims, n_points). */
typedef struct task_spec {
    char name[TASK_NAME_MAX];
    task_kind kind;
    int n_dims;        /* d, token width (x in R^d) */
    int n_points;      /* N, in-context examples at the end of the curriculum */
    int k;             /* sparsity (sparse_linear_regression) / subset size (sparse_parity) */
    int hidden;        /* h: relu2nn width (sqrt(2/h) scaling), cot_io hidden width (h <= d) */
    int depth;         /* decision_tree depth */
    double p;          /* outlier probability (outlier tasks) */
    double noise;      /* sigma of N(0, sigma^2) noise on y (regression); query-key noise (vector_mqar) */
    int noise_renorm;  /* 1: multiply noisy y by sqrt(n / (n + sigma^2)), n the metric normaliser */
    double x_scale;    /* x multiplied by this (OOD "x scaled") */
    double y_scale;    /* y multiplied by this (OOD "y scaled"; Garg scales w) */
    int ood;           /* TASK_OOD_* (linear_regression) */
    int ortho_to_own_w;    /* ortho_outlier: 1 = outliers orthogonal to the prompt's own w (paper),
                              0 = to an unrelated random w' over all d coordinates (released code) */
    int ortho_code_coeffs; /* ortho_outlier: 1 = the code's a/(a^2+b^2) mixing weights, 0 = a/sqrt(a^2+b^2) */
    int subset_per_batch;  /* sparse_parity: 1 = one subset per task_sample call (paper's code) */
    int kappa;         /* key-value pairs (MQAR) */
    int queries;       /* queries (vector_mqar), <= kappa, distinct keys */
    int vocab;         /* V (token_mqar) */
    int seq_len;       /* L (token_mqar) */
    double power_a;    /* token_mqar query-gap power law P(g) ~ g^(a-1) */
    int random_non_queries; /* token_mqar: 1 = non-query slots hold random tokens (Zoology default) */
    double norm;       /* custom: metric normaliser */
    int dims_start, dims_end, dims_inc, dims_interval;
    int points_start, points_end, points_inc, points_interval;
} task_spec;

/* The built-in task names (not "custom"), for help and completion. [out] *n. */
const char *const *task_names(int *n);
/* One line describing the named task, or NULL if unknown. */
const char *task_help(const char *name);

/* Fill *s with the defaults of task `name` (SPEC.md values; no curriculum).
 * An unknown name leaves s->kind = TASK_KIND_COUNT, which validate rejects. */
void task_spec_default(task_spec *s, const char *name);
/* Set option `key` (see task_spec_keys). Integer options need integral values.
 * ICL_ERR_ARG naming the key and its allowed range when the key is unknown,
 * does not apply to this task, or the value is out of range. */
icl_status task_spec_set(task_spec *s, const char *key, double value);
/* [out] *value of option `key`; ICL_ERR_ARG if the key is unknown. */
icl_status task_spec_get(const task_spec *s, const char *key, double *value);
/* The option keys task s reads, in a fixed order: up to max written to keys;
 * returns the total count. */
int task_spec_keys(const task_spec *s, const char **keys, int max);
/* Cross-field checks (k <= d, points >= 1, curriculum ranges, token_mqar
 * constraints, ...) and the size guard: the batch of 64 prompts at the
 * longest curriculum stage plus the (64, T, O) prediction tensor a model
 * writes must fit in TASK_MAX_BYTES (ICL_ERR_NOMEM, with the estimate).
 * Messages name the task and the field. */
icl_status task_spec_validate(const task_spec *s);

/* ---- the task object ------------------------------------------------------ */

typedef struct task task;

/* Validate s and build the task (curriculum at step 0). [out] *out. */
icl_status task_create(task **out, const task_spec *s);
void task_free(task *t);

/* The custom-task seam (issue 4: Lua-defined tasks). A custom task uses the
 * interleaved regression layout, MSE and the squared-error metric divided by
 * the spec's `norm`. Its spec comes from task_spec_default(s, "custom") and
 * reads n_dims, n_points, noise, norm and the curriculum. For prompt i of a
 * task_sample call, `fill` writes x (n_points, d) row-major and y (n_points);
 * `rng` is that prompt's generator rng_make(seed, stream0 + i), for callbacks
 * that want reproducible draws. Coordinates >= d_cur of x are zeroed after
 * the call, then noise (sigma = `noise`) is added to y from the same
 * generator, after the callback's own draws. `fill` is called serially, prompt by
 * prompt, on the calling thread (a Lua state is not re-entrant); a non-OK
 * return (with icl_fail's message) stops task_sample with that status. */
typedef icl_status (*task_fill_fn)(void *ctx, int prompt, rng_t *rng, int n_points, int d, int d_cur, float *x,
                                   float *y);
icl_status task_create_custom(task **out, const task_spec *s, task_fill_fn fill, void *ctx);

const task_spec *task_get_spec(const task *t);
task_kind task_get_kind(const task *t);

/* ---- geometry --------------------------------------------------------------- */

int task_d(const task *t);      /* token width d (0 for token_mqar) */
int task_out(const task *t);    /* prediction width O (1, h, d or vocab) */
int task_T(const task *t);      /* tokens per prompt at the current curriculum */
int task_T_max(const task *t);  /* maximum T over the curriculum */
int task_vocab(const task *t);  /* vocabulary (0 for continuous tasks) */
int task_examples(const task *t); /* distinct `example` values at the current curriculum (n_cur, queries, kappa) */
loss_kind task_loss(const task *t);

/* ---- metrics (SPEC.md 1.4) --------------------------------------------------- */

typedef enum {
    TASK_METRIC_SQERR = 0,   /* sum over the first task_metric_out coords of (pred - y)^2 / task_metric_norm */
    TASK_METRIC_SIGN_ACC,    /* 1 if (pred > 0) == (target > 0.5), else 0 (sparse_parity) */
    TASK_METRIC_NEAREST_ACC, /* 1 if the prompt's value with the largest inner product with pred is the target */
    TASK_METRIC_TOKEN_ACC    /* 1 if argmax of the O logits == ycls (token_mqar) */
} task_metric_kind;

task_metric_kind task_metric(const task *t); /* the task's main metric */
/* The metrics task_score can compute for this task, main one first. [out] kinds; returns the count (<= 4). */
int task_metric_kinds(const task *t, task_metric_kind kinds[4]);
/* Divisor of the squared error so that predicting 0 scores ~1: d (linear,
 * relu2nn, outlier tasks, vector_mqar: per-vector sum over d coords), k
 * (sparse linear), 1 (tree, cot_io, parity), `norm` (custom). */
double task_metric_norm(const task *t);
/* How many leading coordinates of y the squared-error metric reads (O, or 1 for cot_io). */
int task_metric_out(const task *t);
/* Score predictions pred (B, T, O) of batch b: [out] score (B, T) holds the
 * metric at metric slots and 0 elsewhere. ICL_ERR_ARG if `kind` does not
 * apply to this task (see task_metric_kinds). */
icl_status task_score(const task *t, task_metric_kind kind, const batch *b, const float *pred, float *score);

/* ---- batches ------------------------------------------------------------------- */

/* Allocate b for up to cap_B prompts of task_T_max tokens (x and y are NULL
 * for token_mqar, tok and ycls NULL for continuous tasks). [out] *b. */
icl_status task_batch_alloc(batch *b, const task *t, int cap_B);
void task_batch_free(batch *b);
/* Fill b with B prompts at the current curriculum (sets b->B, b->T). Prompt i
 * is drawn from rng_make(seed, stream0 + i) alone. ICL_ERR_SHAPE if b was
 * allocated for another task geometry or fewer prompts. */
icl_status task_sample(const task *t, batch *b, int B, uint64_t seed, uint64_t stream0);

/* ---- curriculum (SPEC.md 1.3) --------------------------------------------------- */

/* Advance the step counter; every `interval` steps d_cur (n_cur) grows by
 * `inc`, capped at `end`. */
void task_curriculum_step(task *t);
/* Jump to the position after `steps` calls of task_curriculum_step (resume). */
void task_curriculum_seek(task *t, long long steps);
long long task_curriculum_steps(const task *t);
int task_cur_dims(const task *t);   /* d_cur: x coordinates >= d_cur are 0 (n_dims for MQAR) */
int task_cur_points(const task *t); /* n_cur: examples (pairs/triples) per prompt (kappa for MQAR) */

/* "linear_regression(n_dims=5, n_points=20, ...)"; snprintf semantics. */
int task_describe(const task *t, char *buf, size_t n);

/* ---- family samplers ---------------------------------------------------------------
 * Implemented in task_regression.c, task_parity.c, task_cot.c and task_mqar.c
 * and called by task_sample after it has checked the batch, set b->B and
 * b->T and cleared every buffer (x, y = 0, mask = metric = 0, example = -1,
 * tok = 0, ycls = -1). They fill only the slots they own. Other modules call
 * task_sample, not these. */
/* A task_sample call runs its prompts in parallel only when it has at least
 * this many units of work (about B * T * d multiply-adds or draws): on tiny
 * batches a parallel region costs more than it saves, badly so when the
 * cores are shared. Results never depend on it (each prompt has its stream). */
#define TASK_PAR_MIN_WORK ((size_t)1 << 16)

/* The largest n_dims of a linear_regression with an `ood` transform. */
#define TASK_OOD_MAX_DIMS 256

/* At least `bytes` of scratch owned by b (aligned for double), grown only
 * when a call needs more than any before it; NULL when out of memory. */
void *task_batch_scratch(batch *b, size_t bytes);

icl_status task_regression_fill(const task_spec *s, int d_cur, int n_cur, batch *b, uint64_t seed,
                                uint64_t stream0);
icl_status task_parity_fill(const task_spec *s, int d_cur, int n_cur, batch *b, uint64_t seed, uint64_t stream0);
icl_status task_cot_fill(const task_spec *s, int d_cur, int n_cur, batch *b, uint64_t seed, uint64_t stream0);
icl_status task_vector_mqar_fill(const task_spec *s, batch *b, uint64_t seed, uint64_t stream0);
icl_status task_token_mqar_fill(const task_spec *s, batch *b, uint64_t seed, uint64_t stream0);

#endif
