/*
 * evaluate.c - a model and the classical baselines scored on the same
 * held-out prompts, per number of in-context examples (see evaluate.h).
 *
 * One pass over the prompts, batch by batch: sample, run the model, score it
 * with task_score() into its accumulator, then let each predicting baseline
 * fill a prediction tensor of the batch's layout and score that the same
 * way. "chance" predicts nothing: it becomes a flat curve at the metric's
 * chance level at the end. Every curve is finished with the same bootstrap
 * seed, so the resamples are paired across curves.
 *
 * Everything that can be refused (options, baseline names, whether each
 * baseline applies to the task, whether the model fits the task) is checked
 * before the first prompt is drawn, so a bad request costs nothing. This
 * runs outside the training step, so it allocates freely, and it frees
 * everything on every path.
 *
 * Not here: the statistics (tasks/eval.c), the predictors (tasks/baselines*.c)
 * and the chart drawing itself (svg.c).
 */
#include "train/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/interrupt.h"
#include "tasks/baselines.h"
#include "train/svg.h"

#define EVAL_DEFAULT_SEED 0xE7A1ull
#define EVAL_DEFAULT_BOOT_SEED 1ull
/* gd_2nn's nets are initialised from rng_make(seed, prompt in batch); the
 * seed is mixed with the batch index so no two prompts share an init. */
#define EVAL_GD2NN_MIX 0x9E3779B97F4A7C15ull
/* Highest normalised error the chart's y axis shows (zero predictor = 1). */
#define EVAL_SVG_MAX_ERR 3.0
#define EVAL_SVG_MAX_ERR_TEXT "3"

const char *eval_metric_label(task_metric_kind kind) {
    switch (kind) {
    case TASK_METRIC_SQERR: return "normalised squared error";
    case TASK_METRIC_SIGN_ACC: return "sign accuracy";
    case TASK_METRIC_NEAREST_ACC: return "nearest-value accuracy";
    case TASK_METRIC_TOKEN_ACC: return "token accuracy";
    }
    return "metric";
}

static int is_accuracy(task_metric_kind k) { return k != TASK_METRIC_SQERR; }

/* ---- defaults ---------------------------------------------------------------- */

static void add_default(eval_options *o, const char *name) {
    if (o->n_baselines < EVAL_MAX_CURVES - 1) o->baselines[o->n_baselines++] = name;
}

void eval_options_default(eval_options *o, const task *t) {
    memset(o, 0, sizeof *o);
    o->n_prompts = EVAL_N_PROMPTS;
    o->batch = EVAL_BATCH;
    o->seed = EVAL_DEFAULT_SEED;
    o->boot_seed = EVAL_DEFAULT_BOOT_SEED;
    o->metric = task_metric(t);
    /* The lists of SPEC.md 1.4 ([G]/[MF] get_relevant_baselines), minus
     * what we do not have or cannot afford by default. */
    switch (task_get_kind(t)) {
    case TASK_LINEAR_REGRESSION:
        add_default(o, "least_squares");
        add_default(o, "knn");
        add_default(o, "averaging");
        break;
    case TASK_SPARSE_LINEAR_REGRESSION:
        add_default(o, "least_squares");
        add_default(o, "knn");
        add_default(o, "averaging");
        /* Three of the paper's five alphas: 0.1, 0.01 and 0.001. The other
         * two add nothing to the picture on noiseless prompts (measured at
         * d = 20, 41 points, 256 prompts): alpha = 1 shrinks the weights so
         * much that its error stays near 0.6 however many examples it sees,
         * and 0.0001 is within 0.001 of lasso_0.001 at every position. All
         * five can be asked for by name (lasso_1 ... lasso_0.0001); each
         * costs about as much as least squares (bench_tasks). */
        add_default(o, "lasso_0.1");
        add_default(o, "lasso_0.01");
        add_default(o, "lasso_0.001");
        break;
    case TASK_RELU2NN_REGRESSION:
        add_default(o, "least_squares");
        add_default(o, "knn");
        add_default(o, "averaging");
        /* gd_2nn (the paper's fourth baseline) is left out of the default:
         * it trains a fresh width-100 net for 100 Adam steps at every
         * position of every prompt, ~4 Gflop per 101-example prompt at
         * d = 20, i.e. hours for 1,280 prompts. Ask for it by name, with
         * fewer prompts. */
        break;
    case TASK_DECISION_TREE:
        /* The paper also shows XGBoost, which we do not have. */
        add_default(o, "least_squares");
        add_default(o, "knn");
        add_default(o, "averaging");
        add_default(o, "greedy_tree_4");
        add_default(o, "greedy_tree");
        break;
    case TASK_ORTHO_OUTLIER_REGRESSION:
    case TASK_MANY_OUTLIER_REGRESSION: add_default(o, "least_squares"); break;
    case TASK_SPARSE_PARITY:
    case TASK_VECTOR_MQAR:
    case TASK_TOKEN_MQAR: add_default(o, "chance"); break;
    case TASK_CUSTOM: add_default(o, "least_squares"); break; /* interleaved scalar layout: it applies */
    case TASK_COT_IO:                                         /* vector outputs: no predictor applies */
    case TASK_KIND_COUNT: break;
    }
}

/* ---- checks ------------------------------------------------------------------- */

/* The baseline predictors read the interleaved regression layout with scalar
 * outputs (baselines.h); these task kinds have it. */
static int has_interleaved_layout(const task *t) {
    switch (task_get_kind(t)) {
    case TASK_LINEAR_REGRESSION:
    case TASK_SPARSE_LINEAR_REGRESSION:
    case TASK_RELU2NN_REGRESSION:
    case TASK_DECISION_TREE:
    case TASK_ORTHO_OUTLIER_REGRESSION:
    case TASK_MANY_OUTLIER_REGRESSION:
    case TASK_SPARSE_PARITY:
    case TASK_CUSTOM: return task_out(t) == 1 && task_d(t) >= 1;
    default: return 0;
    }
}

/* Chance level of an accuracy metric on task t: 0.5 for the sign, 1/kappa
 * when one of the prompt's kappa values is to be picked (vector and token
 * MQAR; for token MQAR this is "guess among the values shown", not 1/vocab). */
static icl_status chance_level(const task *t, task_metric_kind metric, double *value) {
    if (metric == TASK_METRIC_SIGN_ACC) return baseline_chance(EVAL_SIGN_ACC, 0, value);
    if (metric == TASK_METRIC_NEAREST_ACC || metric == TASK_METRIC_TOKEN_ACC)
        return baseline_chance(EVAL_NEAREST_ACC, task_get_spec(t)->kappa, value);
    return icl_fail(ICL_ERR_ARG, "metric '%s' has no chance level", eval_metric_label(metric));
}

static icl_status check_model_fit(const model *m, const task *t, const char *desc) {
    const model_spec *s = &m->spec;
    int d = task_d(t), O = task_out(t), V = task_vocab(t), T = task_T(t);
    if (V > 0) {
        if (s->vocab != V)
            return icl_fail(ICL_ERR_SHAPE, "evaluate: task %s has vocabulary %d but the model's vocab is %d", desc, V,
                            s->vocab);
    } else if (s->vocab > 0 || s->n_dims != d) {
        return icl_fail(ICL_ERR_SHAPE, "evaluate: task %s has tokens of width %d but the model's n_dims is %d", desc,
                        d, s->n_dims);
    }
    if (s->n_out != O)
        return icl_fail(ICL_ERR_SHAPE, "evaluate: task %s predicts %d outputs per slot but the model's n_out is %d",
                        desc, O, s->n_out);
    if (s->n_positions > 0 && T > s->n_positions)
        return icl_fail(ICL_ERR_SHAPE,
                        "evaluate: task %s needs %d tokens but the model has only %d learned positions (n_positions)",
                        desc, T, s->n_positions);
    return ICL_OK;
}

/* Options, names and applicability; fills bl[] with the registry entries. */
static icl_status check_request(const model *m, const task *t, const eval_options *o, const baseline_info **bl,
                                const char *desc) {
    if (o->n_prompts < 1) return icl_fail(ICL_ERR_ARG, "evaluate: n_prompts must be >= 1 (got %d)", o->n_prompts);
    if (o->batch < 1) return icl_fail(ICL_ERR_ARG, "evaluate: batch must be >= 1 (got %d)", o->batch);
    if (o->n_baselines < 0 || o->n_baselines > EVAL_MAX_CURVES - 1)
        return icl_fail(ICL_ERR_ARG, "evaluate: n_baselines must be in [0, %d] (got %d)", EVAL_MAX_CURVES - 1,
                        o->n_baselines);
    if (!m && o->n_baselines == 0)
        return icl_fail(ICL_ERR_ARG, "evaluate: nothing to evaluate on task %s (no model and no baselines)", desc);
    task_metric_kind kinds[4];
    int nk = task_metric_kinds(t, kinds), ok = 0;
    for (int i = 0; i < nk; i++) ok |= kinds[i] == o->metric;
    if (!ok)
        return icl_fail(ICL_ERR_ARG, "evaluate: metric '%s' does not apply to task %s (its metric is '%s')",
                        eval_metric_label(o->metric), desc, eval_metric_label(kinds[0]));
    for (int i = 0; i < o->n_baselines; i++) {
        const char *name = o->baselines[i];
        if (!name) return icl_fail(ICL_ERR_ARG, "evaluate: baseline %d has no name", i);
        bl[i] = baseline_by_name(name);
        if (!bl[i]) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", icl_error());
            return icl_fail(ICL_ERR_ARG, "evaluate: %s", msg);
        }
        for (int j = 0; j < i; j++)
            if (!strcmp(o->baselines[j], name))
                return icl_fail(ICL_ERR_ARG, "evaluate: baseline '%s' is listed twice", name);
        if (strlen(name) >= EVAL_NAME_MAX || !strcmp(name, "model"))
            return icl_fail(ICL_ERR_ARG, "evaluate: baseline name '%s' cannot name a curve", name);
        if (bl[i]->kind == BASELINE_CHANCE) {
            if (!is_accuracy(o->metric))
                return icl_fail(ICL_ERR_ARG,
                                "evaluate: baseline 'chance' does not apply to task %s: its metric '%s' is not an "
                                "accuracy",
                                desc, eval_metric_label(o->metric));
        } else if (!has_interleaved_layout(t)) {
            return icl_fail(ICL_ERR_ARG,
                            "evaluate: baseline '%s' does not apply to task %s: it needs the interleaved regression "
                            "layout (x_i, y_i) with a scalar output, and this task predicts %d value(s) per slot%s",
                            name, desc, task_out(t), task_d(t) < 1 ? " from token ids" : "");
        }
    }
    if (m) return check_model_fit(m, t, desc);
    return ICL_OK;
}

/* ---- the evaluation -------------------------------------------------------------- */

void eval_report_free(eval_report *r) {
    if (!r) return;
    for (int c = 0; c < EVAL_MAX_CURVES; c++) eval_curve_free(&r->curves[c]);
    memset(r, 0, sizeof *r);
}

/* Prefix the current error message with the curve it concerns. */
static icl_status blame(icl_status st, const char *curve, const char *desc) {
    char msg[512];
    snprintf(msg, sizeof msg, "%s", icl_error());
    return icl_fail(st, "evaluate (%s on %s): %s", curve, desc, msg);
}

icl_status evaluate(model *m, task *t, const eval_options *o, eval_report *r) {
    if (!r) return icl_fail(ICL_ERR_ARG, "evaluate: NULL report");
    memset(r, 0, sizeof *r);
    if (!t || !o) return icl_fail(ICL_ERR_ARG, "evaluate: NULL task or options");
    char desc[160];
    task_describe(t, desc, sizeof desc);
    const baseline_info *bl[EVAL_MAX_CURVES - 1] = {0};
    icl_status st = check_request(m, t, o, bl, desc);
    if (st != ICL_OK) return st;

    /* Buffers for min(batch, n_prompts) prompts; batch i still starts at
     * stream i * o->batch. */
    const int P = task_examples(t), T = task_T(t), O = task_out(t);
    const int B = o->batch < o->n_prompts ? o->batch : o->n_prompts;
    const int nb = o->n_baselines, has_model = m != NULL;
    const int n_curves = has_model + nb;
    int n_predictors = 0;
    for (int i = 0; i < nb; i++) n_predictors += bl[i]->kind != BASELINE_CHANCE;

    /* Resources. acc[c] is used by curve c (the model, then the baselines;
     * chance's stays empty). */
    eval_acc acc[EVAL_MAX_CURVES];
    memset(acc, 0, sizeof acc);
    batch bt;
    memset(&bt, 0, sizeof bt);
    float *score = NULL, *pred = NULL;
    baseline_ws *ws = NULL;
    if (has_model) {
        st = model_reserve(m, B, T);
        if (st != ICL_OK) return blame(st, "model", desc);
    }
    st = task_batch_alloc(&bt, t, B);
    if (st != ICL_OK) goto done;
    score = malloc((size_t)B * T * sizeof *score);
    if (n_predictors) pred = malloc((size_t)B * T * O * sizeof *pred);
    if (!score || (n_predictors && !pred)) {
        st = icl_fail(ICL_ERR_NOMEM, "evaluate: out of memory for a batch of %d x %d", B, T);
        goto done;
    }
    if (n_predictors) {
        st = baseline_ws_new(&ws, B, T, task_d(t));
        if (st != ICL_OK) goto done;
    }
    for (int c = 0; c < n_curves; c++) {
        st = eval_acc_init(&acc[c], P);
        if (st != ICL_OK) goto done;
    }

    long long bi = 0;
    for (long long done_p = 0; done_p < o->n_prompts; done_p += o->batch, bi++) {
        if (icl_interrupt_pending()) {
            st = icl_fail(ICL_ERR_INTERRUPT, "evaluate: interrupted after %lld of %d prompts on task %s", done_p,
                          o->n_prompts, desc);
            goto done;
        }
        const int nb_p = o->n_prompts - done_p < o->batch ? (int)(o->n_prompts - done_p) : o->batch;
        st = task_sample(t, &bt, nb_p, o->seed, (uint64_t)bi * (uint64_t)o->batch);
        if (st != ICL_OK) goto done;
        if (has_model) {
            st = model_forward(m, bt.x, bt.tok, nb_p, bt.T);
            if (st == ICL_OK) st = task_score(t, o->metric, &bt, m->out, score);
            if (st == ICL_OK) st = eval_acc_add_scores(&acc[0], &bt, score);
            if (st != ICL_OK) {
                st = blame(st, "model", desc);
                goto done;
            }
        }
        for (int i = 0; i < nb; i++) {
            if (bl[i]->kind == BASELINE_CHANCE) continue;
            uint64_t seed = o->seed ^ (EVAL_GD2NN_MIX * (uint64_t)(bi + 1));
            st = baseline_predict(bl[i], ws, &bt, pred, seed);
            if (st == ICL_OK) st = task_score(t, o->metric, &bt, pred, score);
            if (st == ICL_OK) st = eval_acc_add_scores(&acc[has_model + i], &bt, score);
            if (st != ICL_OK) {
                st = blame(st, bl[i]->name, desc);
                goto done;
            }
        }
    }

    /* Curves. */
    r->metric = o->metric;
    r->positions = P;
    r->n_prompts = o->n_prompts;
    r->reference = NAN;
    if (o->metric == TASK_METRIC_SQERR) r->reference = 1.0;
    else if (chance_level(t, o->metric, &r->reference) != ICL_OK) r->reference = NAN;
    for (int c = 0; c < n_curves; c++) {
        const baseline_info *b = c < has_model ? NULL : bl[c - has_model];
        snprintf(r->names[c], EVAL_NAME_MAX, "%s", b ? b->name : "model");
        if (b && b->kind == BASELINE_CHANCE) {
            double level;
            st = chance_level(t, o->metric, &level);
            if (st == ICL_OK) st = eval_curve_constant(&r->curves[c], P, level, o->n_prompts);
        } else {
            st = eval_acc_finish(&acc[c], o->boot_seed, &r->curves[c]);
        }
        r->n_curves = c + 1; /* so eval_report_free sees what was made */
        if (st != ICL_OK) {
            st = blame(st, r->names[c], desc);
            goto done;
        }
    }

done:
    for (int c = 0; c < EVAL_MAX_CURVES; c++) eval_acc_free(&acc[c]);
    baseline_ws_free(ws);
    free(pred);
    free(score);
    task_batch_free(&bt);
    if (st != ICL_OK) eval_report_free(r);
    return st;
}

/* ---- output ------------------------------------------------------------------------ */

icl_status eval_report_csv(const eval_report *r, const char *path) {
    if (!r || r->n_curves < 1) return icl_fail(ICL_ERR_ARG, "eval_report_csv(%s): empty report", path ? path : "");
    const char *names[EVAL_MAX_CURVES];
    for (int c = 0; c < r->n_curves; c++) names[c] = r->names[c];
    return eval_write_csv(path, r->curves, names, r->n_curves);
}

icl_status eval_report_svg(const eval_report *r, const char *path, const char *title) {
    if (!r || r->n_curves < 1) return icl_fail(ICL_ERR_ARG, "eval_report_svg(%s): empty report", path ? path : "");
    const int acc_metric = is_accuracy(r->metric);
    /* Accuracies live in [0, 1]. Errors start at 0 and go as high as the
     * data, up to EVAL_SVG_MAX_ERR: least squares near n = d (the
     * interpolation peak) can reach hundreds and would flatten every other
     * curve, so the axis is cut there and the label says so. */
    double top = 0.0;
    for (int c = 0; c < r->n_curves; c++)
        for (int p = 0; p < r->curves[c].positions; p++) {
            if (isfinite(r->curves[c].mean[p])) top = fmax(top, r->curves[c].mean[p]);
            if (c == 0 && isfinite(r->curves[c].hi[p])) top = fmax(top, r->curves[c].hi[p]);
        }
    const int cut = !acc_metric && top > EVAL_SVG_MAX_ERR;
    svg_chart ch;
    char ylab[128];
    snprintf(ylab, sizeof ylab, "%s (%d prompts)%s", eval_metric_label(r->metric), r->n_prompts,
             cut ? ", axis cut at " EVAL_SVG_MAX_ERR_TEXT : "");
    svg_chart_init(&ch, title ? title : "evaluation", "in-context examples", ylab);
    svg_chart_set_y_range(&ch, 0.0, acc_metric ? 1.0 : cut ? EVAL_SVG_MAX_ERR : NAN);
    int P = 0;
    for (int c = 0; c < r->n_curves; c++)
        if (r->curves[c].positions > P) P = r->curves[c].positions;
    double *x = malloc((P > 0 ? (size_t)P : 1) * sizeof *x);
    if (!x) return icl_fail(ICL_ERR_NOMEM, "cannot write '%s': out of memory", path ? path : "");
    for (int p = 0; p < P; p++) x[p] = p;
    icl_status st = ICL_OK;
    for (int c = 0; c < r->n_curves && st == ICL_OK; c++) {
        const eval_curve *cv = &r->curves[c];
        /* A constant chance curve is the reference line itself. */
        if (acc_metric && !strcmp(r->names[c], "chance") && isfinite(r->reference)) continue;
        /* Only the model gets its interval drawn: bands of every baseline
         * would hide each other. */
        int band = !strcmp(r->names[c], "model");
        st = svg_chart_add_series(&ch, band ? "model (90% interval shaded)" : r->names[c], x, cv->mean,
                                  band ? cv->lo : NULL, band ? cv->hi : NULL, cv->positions);
    }
    if (st == ICL_OK && isfinite(r->reference)) {
        char lab[64];
        if (acc_metric) snprintf(lab, sizeof lab, "chance (%.3g)", r->reference);
        else snprintf(lab, sizeof lab, "zero predictor (%.3g)", r->reference);
        st = svg_chart_add_hline(&ch, lab, r->reference);
    }
    if (st == ICL_OK) st = svg_chart_write(&ch, path);
    svg_chart_free(&ch);
    free(x);
    return st;
}
