/*
 * evaluate.h - evaluate a model and the classical baselines on the same
 * held-out prompts of a task: per number of in-context examples, the mean
 * metric, its standard deviation and a 90% bootstrap interval (SPEC.md 1.4).
 *
 *   eval_options o;  eval_options_default(&o, t);   // 1280 prompts, task's baselines
 *   eval_report r;   evaluate(m, t, &o, &r);         // curve 0 is the model
 *   eval_report_csv(&r, "err.csv");  eval_report_svg(&r, "err.svg", "title");
 *   eval_report_free(&r);
 *
 * Prompts come from task_sample(t, ..., o->seed, stream0 = batch index * batch)
 * at the task's current curriculum, so every curve scores the same prompts,
 * and the bootstrap of every curve uses the same resamples (paired). The
 * metric of each slot is task_score()'s, so every task kind is supported.
 * Between batches the Ctrl-C flag (core/interrupt.h) is polled: an
 * interrupted evaluation returns ICL_ERR_INTERRUPT and frees what it made.
 */
#ifndef ICL_EVALUATE_H
#define ICL_EVALUATE_H

#include <stdint.h>

#include "nn/model.h"
#include "tasks/eval.h"
#include "tasks/task.h"

#define EVAL_MAX_CURVES 17
#define EVAL_NAME_MAX 32

typedef struct {
    int n_prompts;            /* default EVAL_N_PROMPTS (1280) */
    int batch;                /* prompts per forward, default EVAL_BATCH (64) */
    uint64_t seed;            /* prompt seed (default 0xE7A1, distinct from training seeds) */
    uint64_t boot_seed;       /* bootstrap seed (default 1) */
    task_metric_kind metric;  /* default task_metric(t) */
    int n_baselines;
    const char *baselines[EVAL_MAX_CURVES - 1]; /* names as baselines.h, e.g. "least_squares" */
} eval_options;

typedef struct {
    int n_curves;
    char names[EVAL_MAX_CURVES][EVAL_NAME_MAX]; /* "model", then the baselines */
    eval_curve curves[EVAL_MAX_CURVES];
    task_metric_kind metric;
    int positions;
    int n_prompts;
    double reference; /* dashed line of the chart: 1 for squared error (the zero
                         predictor), the chance level for accuracies, NaN if none */
} eval_report;

/* 1280 prompts in batches of 64 and the baselines the paper compares with
 * for this task (SPEC.md 1.4): least squares, 3-NN and averaging for linear
 * regression, plus Lasso for sparse regression, trees for decision trees,
 * chance for parity and MQAR, ... (the exact lists and what is left out,
 * e.g. gd_2nn for its cost, are in evaluate.c). */
void eval_options_default(eval_options *o, const task *t);
/* m may be NULL (baselines only). [out] *r, free with eval_report_free.
 * Everything is checked before any prompt is drawn: a baseline name that is
 * unknown or does not apply to the task (e.g. least_squares on token_mqar:
 * the predictors need the interleaved layout with scalar outputs; chance
 * needs an accuracy metric) and a model that does not fit the task are
 * ICL_ERR_ARG / ICL_ERR_SHAPE naming them. The model's activations are
 * reserved for (batch, task_T) (model_reserve). On any error *r is empty. */
icl_status evaluate(model *m, task *t, const eval_options *o, eval_report *r);
void eval_report_free(eval_report *r);
/* CSV via eval_write_csv; SVG: a line chart of every curve against the
 * number of in-context examples, the model's 90% band shaded, a legend and
 * axes. Both atomic (temp file + rename), errors name the path. */
icl_status eval_report_csv(const eval_report *r, const char *path);
icl_status eval_report_svg(const eval_report *r, const char *path, const char *title);
/* Axis label of a metric: "normalised squared error", "sign accuracy",
 * "nearest-value accuracy", "token accuracy". */
const char *eval_metric_label(task_metric_kind kind);

#endif
