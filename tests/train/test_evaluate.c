/*
 * test_evaluate.c - evaluating a model and the baselines on held-out prompts
 * (train/evaluate.h), and eval_acc_add_scores (tasks/eval.h).
 *
 * A tiny real model (transformer, d_model 8, 2 layers) is evaluated on
 * linear regression with 128 prompts: the curves have the task's positions,
 * the untrained model (outputs of rms ~0.4 against targets of rms sqrt(d))
 * scores about like the zero predictor, least squares reaches ~0 once it has d noiseless
 * examples, the numbers are a function of the seed only (also across thread
 * counts), inapplicable baselines are refused before any work, Ctrl-C
 * (before and during the run) returns ICL_ERR_INTERRUPT and frees
 * everything, sparse parity is scored by accuracy against a 0.5 chance line,
 * and the CSV and SVG files are written and read back.
 */
#include "train/evaluate.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/blas.h"
#include "core/interrupt.h"
#include "tasks/baselines.h"
#include "testlib.h"
#include "train_testutil.h"

static char tmpdir[256];

static int curve_index(const eval_report *r, const char *name) {
    for (int c = 0; c < r->n_curves; c++)
        if (!strcmp(r->names[c], name)) return c;
    return -1;
}

static int curves_equal(const eval_curve *a, const eval_curve *b) {
    if (a->positions != b->positions || a->n_prompts != b->n_prompts) return 0;
    size_t P = (size_t)a->positions;
    /* memcmp: NaN positions must match bit for bit too */
    return !memcmp(a->mean, b->mean, P * sizeof(double)) && !memcmp(a->std, b->std, P * sizeof(double)) &&
           !memcmp(a->lo, b->lo, P * sizeof(double)) && !memcmp(a->hi, b->hi, P * sizeof(double)) &&
           !memcmp(a->count, b->count, P * sizeof(int));
}

static int reports_equal(const eval_report *a, const eval_report *b) {
    if (a->n_curves != b->n_curves || a->positions != b->positions || a->metric != b->metric) return 0;
    for (int c = 0; c < a->n_curves; c++)
        if (strcmp(a->names[c], b->names[c]) || !curves_equal(&a->curves[c], &b->curves[c])) return 0;
    return 1;
}

/* ---- eval_acc_add_scores -------------------------------------------------- */

static void test_add_scores(void) {
    /* Two prompts, T = 4; metric slots 0 and 2 at positions 0 and 1, and slot
     * 3 of prompt 1 also at position 1 (averaged with slot 2 first). Slot 1
     * is not a metric slot: its NaN must be ignored. */
    enum { B = 2, T = 4 };
    float metric[B * T] = {1, 0, 1, 0, 1, 0, 1, 1};
    int example[B * T] = {0, -1, 1, -1, 0, -1, 1, 1};
    float score[B * T] = {2, NAN, 4, 0, 6, NAN, 1, 3};
    batch bt;
    memset(&bt, 0, sizeof bt);
    bt.B = B;
    bt.T = T;
    bt.metric = metric;
    bt.example = example;
    eval_acc acc;
    CHECK(eval_acc_init(&acc, 2) == ICL_OK, "%s", icl_error());
    CHECK(eval_acc_add_scores(&acc, &bt, score) == ICL_OK, "%s", icl_error());
    eval_curve c;
    CHECK(eval_acc_finish(&acc, 1, &c) == ICL_OK, "%s", icl_error());
    /* position 0: (2 + 6) / 2 = 4; position 1: prompt 0 -> 4, prompt 1 -> (1 + 3) / 2 = 2, mean 3 */
    printf("    means %g %g (want 4, 3)\n", c.mean[0], c.mean[1]);
    CHECK(c.mean[0] == 4.0 && c.mean[1] == 3.0, "means %g %g", c.mean[0], c.mean[1]);
    CHECK(fabs(c.std[1] - sqrt(2.0)) < 1e-12, "std at 1: %g, want sqrt(2)", c.std[1]);
    eval_curve_free(&c);
    /* All or nothing: a non-finite score at a metric slot, or an example out
     * of range, in the SECOND prompt leaves the accumulator unchanged. */
    score[6] = INFINITY;
    CHECK(eval_acc_add_scores(&acc, &bt, score) == ICL_ERR_NUMERIC, "non-finite score must be refused");
    CHECK(strstr(icl_error(), "prompt 1 slot 2") != NULL, "message names the slot: %s", icl_error());
    score[6] = 1;
    example[7] = 2;
    CHECK(eval_acc_add_scores(&acc, &bt, score) == ICL_ERR_SHAPE, "example outside the positions");
    CHECK(acc.n_prompts == 2, "failed calls added prompts (%d)", acc.n_prompts);
    CHECK(eval_acc_add_scores(&acc, NULL, score) == ICL_ERR_ARG, "NULL batch");
    eval_acc_free(&acc);
}

/* ---- linear regression ------------------------------------------------------- */

/* The zero predictor's curve on the same prompts, computed here from the
 * samples directly (sum of y^2 / d per position), in double. */
static void zero_curve(task *t, const eval_options *o, double *mean) {
    int P = task_examples(t), d = task_d(t);
    batch bt;
    task_batch_alloc(&bt, t, o->batch);
    double *sum = calloc((size_t)P, sizeof *sum);
    int *cnt = calloc((size_t)P, sizeof *cnt);
    for (int done = 0, bi = 0; done < o->n_prompts; done += o->batch, bi++) {
        int nb = o->n_prompts - done < o->batch ? o->n_prompts - done : o->batch;
        task_sample(t, &bt, nb, o->seed, (uint64_t)bi * o->batch);
        for (int b = 0; b < nb; b++)
            for (int s = 0; s < bt.T; s++) {
                size_t i = (size_t)b * bt.T + s;
                if (bt.metric[i] == 0.0f) continue;
                sum[bt.example[i]] += (double)bt.y[i] * bt.y[i] / d;
                cnt[bt.example[i]]++;
            }
    }
    for (int p = 0; p < P; p++) mean[p] = sum[p] / cnt[p];
    free(sum);
    free(cnt);
    task_batch_free(&bt);
}

static void test_linear_regression_curves(void) {
    const int d = 5, N = 20;
    task *t = tu_task("linear_regression", d, N);
    model *m = tu_model("transformer", d, 8, 2, 2, 7);
    if (!t || !m) return;
    eval_options o;
    eval_options_default(&o, t);
    CHECK(o.n_prompts == 1280 && o.batch == 64 && o.metric == TASK_METRIC_SQERR, "defaults");
    CHECK(o.n_baselines == 3 && !strcmp(o.baselines[0], "least_squares") && !strcmp(o.baselines[1], "knn") &&
              !strcmp(o.baselines[2], "averaging"),
          "linear regression baselines");
    o.n_prompts = 128;
    o.seed = test_seed();
    eval_report r;
    icl_status st = evaluate(m, t, &o, &r);
    CHECK(st == ICL_OK, "evaluate: %s", icl_error());
    if (st) goto out;
    CHECK(r.n_curves == 4 && !strcmp(r.names[0], "model") && !strcmp(r.names[1], "least_squares"), "curves %d",
          r.n_curves);
    CHECK(r.positions == N && r.n_prompts == 128 && r.metric == TASK_METRIC_SQERR && r.reference == 1.0,
          "report header");
    for (int c = 0; c < r.n_curves; c++) {
        CHECK(r.curves[c].positions == N, "curve %s has %d positions", r.names[c], r.curves[c].positions);
        for (int p = 0; p < r.curves[c].positions; p++) {
            const eval_curve *cv = &r.curves[c];
            CHECK(cv->count[p] == 128, "%s: %d prompts at position %d", r.names[c], cv->count[p], p);
            CHECK(cv->lo[p] <= cv->mean[p] + 1e-12 && cv->mean[p] <= cv->hi[p] + 1e-12,
                  "%s: mean %g outside its interval [%g, %g] at %d", r.names[c], cv->mean[p], cv->lo[p], cv->hi[p],
                  p);
        }
    }
    double zero[64];
    zero_curve(t, &o, zero);
    const eval_curve *mc = &r.curves[0], *ls = &r.curves[1];
    /* The untrained model's outputs have rms ~0.4 (measured), unrelated to
     * the targets: it adds about E[f^2]/d ~ 0.03 to the zero predictor's
     * error on average, plus a cross term 2 E[f y]/d that is 0 in
     * expectation but ~0.1 per position over 128 prompts. Bounds: 0.3 at
     * any position, 0.12 on the average over positions. */
    double worst_model = 0, avg_diff = 0, zmean = 0, ls_worst_after = 0, ls_best_before = INFINITY;
    for (int p = 0; p < N; p++) {
        worst_model = fmax(worst_model, fabs(mc->mean[p] - zero[p]));
        avg_diff += (mc->mean[p] - zero[p]) / N;
        zmean += zero[p] / N;
        if (p >= d) ls_worst_after = fmax(ls_worst_after, ls->mean[p]);
        else if (p > 0) ls_best_before = fmin(ls_best_before, ls->mean[p]);
    }
    printf("    model vs zero predictor: worst |diff| %.3g, average diff %.3g; zero predictor mean %.3f\n",
           worst_model, avg_diff, zmean);
    printf("    least squares: %.3g at 0, best before d %.3g, worst from d on %.3g\n", ls->mean[0], ls_best_before,
           ls_worst_after);
    CHECK(worst_model < 0.3 && fabs(avg_diff) < 0.12,
          "untrained model differs from the zero predictor by %g (average %g)", worst_model, avg_diff);
    /* E[y^2 / d] = 1; 128 prompts share w per prompt: SE of the mean over
     * positions ~0.06, so 0.25 is 4 SE. */
    CHECK(fabs(zmean - 1.0) < 0.25, "zero predictor scores %g on average, want ~1", zmean);
    for (int p = 0; p < N; p++)
        CHECK(mc->mean[p] > 0.4 && mc->mean[p] < 2.0, "model at position %d: %g, want ~1", p, mc->mean[p]);
    /* With no examples every baseline predicts 0: the zero predictor exactly
     * (float scores vs double here: 1e-5 relative). */
    CHECK(fabs(ls->mean[0] - zero[0]) < 1e-5 * zero[0], "least squares at 0: %g, zero predictor %g", ls->mean[0],
          zero[0]);
    /* Noiseless: d examples determine w; float tokens leave ~1e-12. */
    CHECK(ls_worst_after < 1e-6, "least squares after d examples: %g", ls_worst_after);
    CHECK(ls_best_before > 0.05, "least squares below d examples should not be exact (%g)", ls_best_before);
    /* The model's interval is a real interval at a real spread. */
    CHECK(mc->hi[3] > mc->lo[3] && mc->std[3] > 0, "model interval at 3 [%g, %g]", mc->lo[3], mc->hi[3]);
    eval_report_free(&r);
    CHECK(r.n_curves == 0, "free resets");
out:
    model_free(m);
    task_free(t);
}

static void test_reproducible(void) {
    task *t = tu_task("linear_regression", 4, 12);
    model *m = tu_model("transformer", 4, 8, 2, 2, 3);
    if (!t || !m) return;
    eval_options o;
    eval_options_default(&o, t);
    o.n_prompts = 100; /* not a multiple of the batch: the last batch has 36 */
    o.seed = test_seed();
    eval_report a, b, c, e;
    CHECK(evaluate(m, t, &o, &a) == ICL_OK, "%s", icl_error());
    CHECK(evaluate(m, t, &o, &b) == ICL_OK, "%s", icl_error());
    CHECK(reports_equal(&a, &b), "same seed, different reports");
    CHECK(a.curves[0].count[0] == 100, "100 prompts counted (got %d)", a.curves[0].count[0]);
    int saved = blas_get_threads();
    blas_set_threads(saved > 1 ? 1 : 2);
    CHECK(evaluate(m, t, &o, &e) == ICL_OK, "%s", icl_error());
    blas_set_threads(saved);
    /* Baselines, sampling, scoring and the bootstrap do not depend on the
     * thread count: bit for bit. The model does, by an ulp: OpenBLAS's sgemm
     * itself rounds differently with 1 and 2 threads (measured: 1e-6 on a
     * (768 x 32) x (32 x 96) product), so its curve gets 1e-5 relative. */
    for (int k = 1; k < a.n_curves; k++)
        CHECK(curves_equal(&a.curves[k], &e.curves[k]), "%s: the thread count changed the curve (%d vs %d)",
              a.names[k], saved, saved > 1 ? 1 : 2);
    double worst_thr = 0;
    for (int p = 0; p < 12; p++) {
        worst_thr = fmax(worst_thr, fabs(a.curves[0].mean[p] - e.curves[0].mean[p]) / a.curves[0].mean[p]);
        worst_thr = fmax(worst_thr, fabs(a.curves[0].hi[p] - e.curves[0].hi[p]) / a.curves[0].hi[p]);
    }
    printf("    model curve, %d vs %d threads: worst relative difference %.2g (tolerance 1e-5)\n", saved,
           saved > 1 ? 1 : 2, worst_thr);
    CHECK(worst_thr < 1e-5, "model curve moved by %g with the thread count", worst_thr);
    o.seed += 1;
    CHECK(evaluate(m, t, &o, &c) == ICL_OK, "%s", icl_error());
    int differ = 0;
    for (int k = 0; k < a.n_curves; k++) differ += !curves_equal(&a.curves[k], &c.curves[k]);
    CHECK(differ == a.n_curves, "a different seed changed only %d of %d curves", differ, a.n_curves);
    /* Fewer prompts than a batch: the buffers shrink, the prompts are the
     * first ones of the full run (same streams). */
    eval_options small = o;
    small.seed -= 1;
    small.n_prompts = 10;
    eval_report sm;
    CHECK(evaluate(m, t, &small, &sm) == ICL_OK, "%s", icl_error());
    CHECK(sm.n_curves == a.n_curves && sm.curves[1].count[0] == 10, "10 prompts");
    eval_report_free(&sm);
    /* A different bootstrap seed moves only the interval. */
    o.seed -= 1;
    o.boot_seed = 99;
    eval_report g;
    CHECK(evaluate(m, t, &o, &g) == ICL_OK, "%s", icl_error());
    CHECK(!memcmp(g.curves[0].mean, a.curves[0].mean, 12 * sizeof(double)) &&
              memcmp(g.curves[0].lo, a.curves[0].lo, 12 * sizeof(double)),
          "boot_seed should move the interval, not the mean");
    eval_report_free(&a);
    eval_report_free(&b);
    eval_report_free(&c);
    eval_report_free(&e);
    eval_report_free(&g);
    model_free(m);
    task_free(t);
}

/* ---- refusals ------------------------------------------------------------------- */

static void test_refusals(void) {
    task *mqar = tu_task("token_mqar", 0, 0);
    task *lin = tu_task("linear_regression", 5, 10);
    if (!mqar || !lin) return;
    eval_options o;
    eval_report r;
    eval_options_default(&o, mqar);
    CHECK(o.n_baselines == 1 && !strcmp(o.baselines[0], "chance"), "token_mqar defaults to chance");
    /* Inapplicable baseline, listed after one that applies, with a prompt
     * count that would take hours: refused at once. */
    o.n_prompts = 1 << 30;
    o.baselines[o.n_baselines++] = "least_squares";
    icl_status st = evaluate(NULL, mqar, &o, &r);
    printf("    %s\n", icl_error());
    CHECK(st == ICL_ERR_ARG, "least_squares on token_mqar: status %d", (int)st);
    CHECK(strstr(icl_error(), "least_squares") && strstr(icl_error(), "token_mqar"),
          "message must name the baseline and the task: %s", icl_error());
    CHECK(r.n_curves == 0, "report not empty after an error");

    eval_options_default(&o, lin);
    o.baselines[o.n_baselines++] = "chance";
    st = evaluate(NULL, lin, &o, &r);
    CHECK(st == ICL_ERR_ARG && strstr(icl_error(), "chance") && strstr(icl_error(), "linear_regression"),
          "chance on squared error: %s", icl_error());
    eval_options_default(&o, lin);
    o.baselines[0] = "no_such_baseline";
    st = evaluate(NULL, lin, &o, &r);
    CHECK(st == ICL_ERR_ARG && strstr(icl_error(), "no_such_baseline"), "unknown name: %s", icl_error());
    eval_options_default(&o, lin);
    o.baselines[1] = "least_squares";
    CHECK(evaluate(NULL, lin, &o, &r) == ICL_ERR_ARG, "a baseline listed twice");
    o.n_baselines = 0;
    CHECK(evaluate(NULL, lin, &o, &r) == ICL_ERR_ARG, "nothing to evaluate");
    eval_options_default(&o, lin);
    o.n_prompts = 0;
    CHECK(evaluate(NULL, lin, &o, &r) == ICL_ERR_ARG && strstr(icl_error(), "n_prompts"), "n_prompts 0");
    eval_options_default(&o, lin);
    o.metric = TASK_METRIC_SIGN_ACC;
    CHECK(evaluate(NULL, lin, &o, &r) == ICL_ERR_ARG, "a metric the task does not have");
    /* A model whose input width does not fit. */
    model *m = tu_model("transformer", 3, 8, 2, 2, 1);
    eval_options_default(&o, lin);
    st = evaluate(m, lin, &o, &r);
    CHECK(st == ICL_ERR_SHAPE && strstr(icl_error(), "n_dims"), "model of the wrong width: %s", icl_error());
    model_free(m);
    /* cot_io: no predictor applies, so the default list is empty. */
    task *cot = tu_task("cot_io", 0, 0);
    if (cot) {
        eval_options_default(&o, cot);
        CHECK(o.n_baselines == 0, "cot_io has no applicable default baseline (got %d)", o.n_baselines);
        o.baselines[o.n_baselines++] = "knn";
        CHECK(evaluate(NULL, cot, &o, &r) == ICL_ERR_ARG && strstr(icl_error(), "knn"), "knn on cot_io");
        task_free(cot);
    }
    task_free(mqar);
    task_free(lin);
}

/* Every task's default list applies (a small run of each, baselines only). */
static void test_defaults_apply(void) {
    static const struct {
        const char *name;
        int d, points, want_min;
        const char *must;
    } cases[] = {
        {"linear_regression", 5, 12, 3, "averaging"},
        {"sparse_linear_regression", 5, 12, 6, "lasso_0.01"},
        {"relu2nn_regression", 5, 12, 3, "knn"},
        {"decision_tree", 5, 16, 5, "greedy_tree_4"},
        {"ortho_outlier_regression", 5, 12, 1, "least_squares"},
        {"many_outlier_regression", 5, 12, 1, "least_squares"},
        {"sparse_parity", 6, 20, 1, "chance"},
        {"vector_mqar", 0, 0, 1, "chance"},
        {"token_mqar", 0, 0, 1, "chance"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        task *t = tu_task(cases[i].name, cases[i].d, cases[i].points);
        if (!t) continue;
        eval_options o;
        eval_options_default(&o, t);
        int found = 0;
        for (int b = 0; b < o.n_baselines; b++) found |= !strcmp(o.baselines[b], cases[i].must);
        CHECK(o.n_baselines >= cases[i].want_min && found, "%s: %d default baselines, %s %s", cases[i].name,
              o.n_baselines, cases[i].must, found ? "present" : "missing");
        o.n_prompts = 16;
        o.batch = 8;
        eval_report r;
        icl_status st = evaluate(NULL, t, &o, &r);
        CHECK(st == ICL_OK, "%s: %s", cases[i].name, icl_error());
        if (st == ICL_OK) {
            CHECK(r.n_curves == o.n_baselines && r.positions == task_examples(t), "%s: %d curves, %d positions",
                  cases[i].name, r.n_curves, r.positions);
            for (int c = 0; c < r.n_curves; c++)
                for (int p = 0; p < r.positions; p++)
                    if (r.curves[c].count[p] > 0)
                        CHECK(isfinite(r.curves[c].mean[p]), "%s/%s: mean at %d not finite", cases[i].name,
                              r.names[c], p);
        }
        eval_report_free(&r);
        task_free(t);
    }
}

/* ---- interruption ------------------------------------------------------------------ */

/* A custom task (y = sum of x) that raises the Ctrl-C flag while the second
 * batch is sampled, as a signal arriving mid-run would. */
typedef struct {
    int calls, raise_at;
} fill_ctx;

static icl_status fill_sum(void *ctx, int prompt, rng_t *rng, int n_points, int d, int d_cur, float *x, float *y) {
    (void)prompt;
    (void)d_cur;
    fill_ctx *c = ctx;
    if (++c->calls == c->raise_at) icl_interrupt_request();
    for (int i = 0; i < n_points; i++) {
        double s = 0;
        for (int k = 0; k < d; k++) {
            x[(size_t)i * d + k] = (float)(2.0 * rng_uniform(rng) - 1.0);
            s += x[(size_t)i * d + k];
        }
        y[i] = (float)s;
    }
    return ICL_OK;
}

static void test_interrupt(void) {
    task *t = tu_task("linear_regression", 4, 10);
    model *m = tu_model("transformer", 4, 8, 2, 2, 2);
    if (!t || !m) return;
    eval_options o;
    eval_options_default(&o, t);
    o.n_prompts = 256;
    eval_report r;
    icl_interrupt_clear();
    icl_interrupt_request();
    icl_status st = evaluate(m, t, &o, &r);
    printf("    %s\n", icl_error());
    CHECK(st == ICL_ERR_INTERRUPT, "status %d, want ICL_ERR_INTERRUPT", (int)st);
    CHECK(icl_interrupt_pending(), "evaluate must leave the flag for the caller to report and clear");
    CHECK(r.n_curves == 0, "an interrupted evaluation returns an empty report");
    icl_interrupt_clear();

    /* Mid-run: the flag goes up while batch 2 (prompts 65..128) is drawn;
     * evaluate finishes that batch and stops before the third. */
    task_spec cs;
    task_spec_default(&cs, "custom");
    task_spec_set(&cs, "n_dims", 4);
    task_spec_set(&cs, "n_points", 10);
    fill_ctx ctx = {0, 70};
    task *ct = NULL;
    st = task_create_custom(&ct, &cs, fill_sum, &ctx);
    CHECK(st == ICL_OK, "task_create_custom: %s", icl_error());
    if (ct) {
        eval_options_default(&o, ct);
        CHECK(o.n_baselines == 1 && !strcmp(o.baselines[0], "least_squares"), "custom defaults to least squares");
        o.n_prompts = 256;
        st = evaluate(m, ct, &o, &r);
        printf("    %s (after %d prompts drawn)\n", icl_error(), ctx.calls);
        CHECK(st == ICL_ERR_INTERRUPT && strstr(icl_error(), "128 of 256"), "mid-run interrupt: %s", icl_error());
        CHECK(ctx.calls == 128, "sampled %d prompts, want 128", ctx.calls);
        CHECK(r.n_curves == 0, "report not empty");
        icl_interrupt_clear();
        /* And without the interrupt the same task evaluates fine. */
        ctx.calls = 0;
        ctx.raise_at = -1;
        CHECK(evaluate(m, ct, &o, &r) == ICL_OK, "%s", icl_error());
        eval_report_free(&r);
        task_free(ct);
    }
    icl_interrupt_clear();
    model_free(m);
    task_free(t);
}

/* ---- parity --------------------------------------------------------------------------- */

static void test_sparse_parity(void) {
    task_spec ts;
    task_spec_default(&ts, "sparse_parity");
    task_spec_set(&ts, "n_dims", 8);
    task_spec_set(&ts, "n_points", 30);
    task *t = NULL;
    CHECK(task_create(&t, &ts) == ICL_OK, "%s", icl_error());
    model *m = tu_model("transformer", 8, 8, 2, 2, 5);
    if (!t || !m) return;
    eval_options o;
    eval_options_default(&o, t);
    CHECK(o.metric == TASK_METRIC_SIGN_ACC, "parity metric is the sign accuracy");
    o.n_prompts = 128;
    o.baselines[o.n_baselines++] = "least_squares"; /* applies (interleaved, scalar) */
    eval_report r;
    icl_status st = evaluate(m, t, &o, &r);
    CHECK(st == ICL_OK, "%s", icl_error());
    if (st == ICL_OK) {
        int ch = curve_index(&r, "chance");
        CHECK(r.metric == TASK_METRIC_SIGN_ACC && r.reference == 0.5, "metric %d, reference %g", (int)r.metric,
              r.reference);
        CHECK(ch >= 0, "no chance curve");
        double avg = 0;
        for (int p = 0; p < r.positions; p++) {
            if (ch >= 0)
                CHECK(r.curves[ch].mean[p] == 0.5 && r.curves[ch].lo[p] == 0.5 && r.curves[ch].hi[p] == 0.5,
                      "chance curve at %d: %g", p, r.curves[ch].mean[p]);
            double v = r.curves[0].mean[p];
            CHECK(v >= 0.0 && v <= 1.0, "accuracy %g outside [0, 1]", v);
            avg += v / r.positions;
        }
        /* An untrained model guesses: 128 x 30 coin flips (correlated within
         * a prompt, since its outputs barely depend on the prompt). */
        printf("    untrained model accuracy %.3f (chance 0.5)\n", avg);
        CHECK(avg > 0.3 && avg < 0.7, "untrained accuracy %g", avg);
        char path[512];
        snprintf(path, sizeof path, "%s/parity.svg", tmpdir);
        CHECK(eval_report_svg(&r, path, "sparse parity") == ICL_OK, "%s", icl_error());
        FILE *f = fopen(path, "r");
        char buf[1 << 16];
        size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
        buf[n] = '\0';
        if (f) fclose(f);
        CHECK(strstr(buf, "chance (0.5)") && strstr(buf, "sign accuracy"), "parity chart labels");
        remove(path);
    }
    eval_report_free(&r);
    model_free(m);
    task_free(t);
}

/* ---- files ----------------------------------------------------------------------------- */

static void test_csv_and_svg(void) {
    task *t = tu_task("linear_regression", 3, 8);
    model *m = tu_model("transformer", 3, 8, 2, 2, 11);
    if (!t || !m) return;
    eval_options o;
    eval_options_default(&o, t);
    o.n_prompts = 64;
    eval_report r;
    CHECK(evaluate(m, t, &o, &r) == ICL_OK, "%s", icl_error());
    char path[512];
    snprintf(path, sizeof path, "%s/eval.csv", tmpdir);
    CHECK(eval_report_csv(&r, path) == ICL_OK, "%s", icl_error());
    FILE *f = fopen(path, "r");
    CHECK(f != NULL, "cannot reopen %s", path);
    if (f) {
        char line[4096];
        CHECK(fgets(line, sizeof line, f) != NULL, "empty CSV");
        const char *head = "position,model_mean,model_std,model_lo,model_hi,least_squares_mean,";
        CHECK(!strncmp(line, head, strlen(head)), "header: %s", line);
        int rows = 0;
        double worst = 0;
        while (fgets(line, sizeof line, f)) {
            char *p = line, *end;
            long pos = strtol(p, &end, 10);
            CHECK(pos == rows, "row %d has position %ld", rows, pos);
            p = end;
            for (int c = 0; c < r.n_curves; c++) {
                const double want[4] = {r.curves[c].mean[pos], r.curves[c].std[pos], r.curves[c].lo[pos],
                                        r.curves[c].hi[pos]};
                for (int k = 0; k < 4; k++) {
                    CHECK(*p == ',', "missing field");
                    double v = strtod(p + 1, &end);
                    worst = fmax(worst, fabs(v - want[k]) / fmax(1e-300, fabs(want[k])));
                    p = end;
                }
            }
            rows++;
        }
        fclose(f);
        printf("    CSV: %d rows, worst relative difference to the report %.2g (%%.10g: < 1e-9)\n", rows, worst);
        CHECK(rows == 8 && worst < 1e-9, "rows %d, worst %g", rows, worst);
    }
    snprintf(path, sizeof path, "%s/eval.svg", tmpdir);
    CHECK(eval_report_svg(&r, path, "linear regression, d = 3") == ICL_OK, "%s", icl_error());
    f = fopen(path, "r");
    static char buf[1 << 18];
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f) fclose(f);
    CHECK(strstr(buf, "</svg>") && strstr(buf, ">least_squares<") && strstr(buf, ">knn<") &&
              strstr(buf, ">averaging<") && strstr(buf, "model (90% interval shaded)") &&
              strstr(buf, "zero predictor (1)") && strstr(buf, ">in-context examples<") &&
              strstr(buf, "normalised squared error") && strstr(buf, "<polygon"),
          "chart is missing a curve, the band, the reference line or a label");
    CHECK(!strstr(buf, "nan") && !strstr(buf, "inf"), "non-finite number in the chart");
    remove(path);
    /* Errors name the path and leave nothing. */
    snprintf(path, sizeof path, "%s/missing/eval.svg", tmpdir);
    CHECK(eval_report_svg(&r, path, "x") == ICL_ERR_IO && strstr(icl_error(), path), "svg error: %s", icl_error());
    snprintf(path, sizeof path, "%s/missing/eval.csv", tmpdir);
    CHECK(eval_report_csv(&r, path) == ICL_ERR_IO && strstr(icl_error(), path), "csv error: %s", icl_error());
    eval_report_free(&r);
    model_free(m);
    task_free(t);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/icl_test_evaluate_%ld", (long)getpid());
    mkdir(tmpdir, 0700);
    TEST_RUN(test_add_scores);
    TEST_RUN(test_linear_regression_curves);
    TEST_RUN(test_reproducible);
    TEST_RUN(test_refusals);
    TEST_RUN(test_defaults_apply);
    TEST_RUN(test_interrupt);
    TEST_RUN(test_sparse_parity);
    TEST_RUN(test_csv_and_svg);
    char path[512];
    snprintf(path, sizeof path, "%s/eval.csv", tmpdir);
    remove(path);
    rmdir(tmpdir);
    return test_finish();
}
