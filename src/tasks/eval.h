/*
 * eval.h - evaluation curves: a metric per number of in-context examples,
 * averaged over prompts, with a standard deviation and a bootstrap interval
 * (SPEC.md 1.4).
 *
 * Use it as an accumulator, so a model and every baseline are scored on the
 * same prompts:
 *     eval_acc acc;  eval_acc_init(&acc, positions);
 *     for each batch (64 prompts, EVAL_N_PROMPTS in all):
 *         predict -> pred (B, T, O);  eval_acc_add_batch(&acc, &bt, pred, norm, kind);
 *     eval_curve c;  eval_acc_finish(&acc, seed, &c);  ... eval_curve_free(&c);
 *
 * Per prompt and metric slot t the metric value is
 *   EVAL_SQERR        sum_o (pred[b,t,o] - y[b,t,o])^2 / normaliser, where the
 *                     task gives d, k or 1 so that predicting 0 scores ~1;
 *   EVAL_SIGN_ACC     1 if (pred[b,t,0] > 0) == (y[b,t,0] > 0.5) else 0: the
 *                     target is positive when above 0.5, so the samplers'
 *                     {0, 1} BCE targets (sparse_parity, task.h) and +-1
 *                     targets both work (0 and -1 both mean negative); the
 *                     prediction is positive when > 0, so a prediction of
 *                     exactly 0 counts as negative (the rule of task_score);
 *   EVAL_NEAREST_ACC  (vector outputs, O = d) 1 if, among the candidate value
 *                     vectors of prompt b, the one with the largest inner
 *                     product with pred[b,t,:] equals y[b,t,:], else 0.
 *                     ASSUMPTION: the candidates of prompt b are the targets
 *                     y[b,t',:] at all its metric slots t' in the batch. That
 *                     is the prompt's value set only when every value is
 *                     queried; with fewer queries the test is easier (and
 *                     chance higher than 1/kappa).
 * The value lands at position p = example[b, t] (0 <= p < positions); several
 * slots of one prompt at one position are averaged first, so the prompt is
 * the unit of the statistics. Per position over the prompts that have it:
 * mean, standard deviation (n - 1 denominator, 0 when n < 2), and a 90%
 * percentile bootstrap interval: EVAL_RESAMPLES resamples of the prompts with
 * replacement, the resample means sorted, lo = sorted[floor(0.05 R)] and
 * hi = sorted[floor(0.95 R)] (the indices Garg et al.'s eval uses). Resample r
 * draws its prompts from rng_make(seed, EVAL_BOOT_STREAM + r), so the numbers
 * are a function of (values, seed) only, for any thread count, and the same
 * seed resamples a model and a baseline identically (paired).
 *
 * Not here: prediction (baselines.h, the models) and the prompts (task.h).
 */
#ifndef ICL_EVAL_H
#define ICL_EVAL_H

#include <stdint.h>

#include "core/status.h"
#include "tasks/batch.h"

#define EVAL_N_PROMPTS 1280 /* default prompts per evaluation (SPEC.md 1.4) */
#define EVAL_BATCH 64       /* fed in batches of this many */
#define EVAL_RESAMPLES 1000
#define EVAL_LOWER_Q 0.05   /* a 90% interval */
#define EVAL_UPPER_Q 0.95
#define EVAL_BOOT_STREAM 0xB0075747ull /* stream base of the bootstrap draws */

typedef enum { EVAL_SQERR = 0, EVAL_SIGN_ACC = 1, EVAL_NEAREST_ACC = 2 } eval_metric;

typedef struct {
    int positions;        /* P */
    int n_prompts;        /* prompts added so far */
    int cap_prompts;      /* rows allocated (grows by doubling) */
    int kind_set;         /* 0 until the first batch fixes `kind` */
    eval_metric kind;
    double *val;          /* (cap_prompts, P) per prompt and position: sum of the metric */
    int *cnt;             /* (cap_prompts, P) metric slots summed into val (0 = none) */
} eval_acc;

typedef struct {
    int positions;    /* P; index p = number of in-context examples */
    int n_prompts;    /* prompts evaluated */
    double *mean;     /* (P) NaN where no prompt had the position */
    double *std;      /* (P) */
    double *lo, *hi;  /* (P) bootstrap interval */
    int *count;       /* (P) prompts that had a value at the position */
} eval_curve;

/* An empty accumulator for positions 0..positions-1. */
icl_status eval_acc_init(eval_acc *acc, int positions);
void eval_acc_free(eval_acc *acc);
/* Score one batch of predictions pred (B, T, O) against bt's targets; adds B
 * prompts. The metric kind must be the same on every call. ICL_ERR_ARG on a
 * bad normaliser/kind/layout, ICL_ERR_SHAPE on an example index outside
 * [0, positions), ICL_ERR_NUMERIC on a non-finite prediction (named). */
icl_status eval_acc_add_batch(eval_acc *acc, const batch *bt, const float *pred, double normaliser,
                              eval_metric kind);
/* Add B prompts whose per-slot metric values are already computed, e.g. by
 * task_score(): score (B, T) is read at the slots where bt->metric != 0 and
 * lands at position bt->example[b, t], as in eval_acc_add_batch (slots of one
 * prompt at one position are averaged). Same checks and all-or-nothing
 * behaviour as eval_acc_add_batch: ICL_ERR_ARG on a missing buffer or bad
 * sizes, ICL_ERR_SHAPE on an example outside [0, positions), ICL_ERR_NUMERIC
 * on a non-finite score (named); a failed call leaves acc as it was. Only
 * bt->B, T, metric and example are read (not x, y or O). The metric kind of
 * the accumulator is neither checked nor set: the caller knows what the
 * scores mean, and must not mix kinds in one accumulator. */
icl_status eval_acc_add_scores(eval_acc *acc, const batch *bt, const float *score);
/* Statistics of everything added: [out] *curve (free with eval_curve_free). */
icl_status eval_acc_finish(const eval_acc *acc, uint64_t seed, eval_curve *curve);

/* A flat curve (a chance level): mean = lo = hi = value, std = 0. [out] *curve. */
icl_status eval_curve_constant(eval_curve *curve, int positions, double value, int n_prompts);
void eval_curve_free(eval_curve *curve);

/* Write curves as CSV: a header "position,<name>_mean,<name>_std,<name>_lo,
 * <name>_hi,..." and one row per position up to the longest curve (numbers
 * as %.10g; empty fields beyond a curve's positions or where a value is NaN,
 * e.g. a position no prompt reached). Atomic: written to "<path>.tmp.<pid>",
 * flushed and renamed over path; on failure nothing is left behind and the
 * message names the path. Names must be non-empty without , " or newlines. */
icl_status eval_write_csv(const char *path, const eval_curve *curves, const char *const *names, int n_curves);

/* "sqerr", "sign_acc", "nearest_acc". */
const char *eval_metric_name(eval_metric kind);

#endif
