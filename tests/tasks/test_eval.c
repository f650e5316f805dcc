/*
 * test_eval.c - the evaluation accumulator (metrics, mean, std, bootstrap
 * interval) and the CSV writer, on hand-built batches (no task samplers).
 *
 * Randomised tests draw from test_rng seeded by --seed (printed first).
 */
#include "tasks/eval.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "testlib.h"

/* A batch with B prompts of T slots and O outputs; no metric slots yet. */
typedef struct {
    batch b;
    float *pred; /* (B, T, O) */
} tbatch;

static void tb_alloc(tbatch *t, int B, int T, int O) {
    memset(t, 0, sizeof *t);
    t->b.B = t->b.cap_B = B;
    t->b.T = t->b.cap_T = T;
    t->b.d = O;
    t->b.O = O;
    t->b.x = calloc((size_t)B * T * O, sizeof(float));
    t->b.y = calloc((size_t)B * T * O, sizeof(float));
    t->b.mask = calloc((size_t)B * T, sizeof(float));
    t->b.metric = calloc((size_t)B * T, sizeof(float));
    t->b.example = malloc((size_t)B * T * sizeof(int));
    t->pred = calloc((size_t)B * T * O, sizeof(float));
    for (int i = 0; i < B * T; i++) t->b.example[i] = -1;
}

static void tb_free(tbatch *t) {
    free(t->b.x), free(t->b.y), free(t->b.mask), free(t->b.metric), free(t->b.example), free(t->pred);
}

/* Mark slot t of prompt b as a metric slot at position ex with a scalar
 * target and prediction. */
static void tb_slot(tbatch *t, int b, int slot, int ex, float y, float p) {
    size_t i = (size_t)b * t->b.T + slot;
    t->b.metric[i] = 1.0f;
    t->b.example[i] = ex;
    t->b.y[i * t->b.O] = y;
    t->pred[i * t->b.O] = p;
}

static int close_to(double a, double b, double tol) { return fabs(a - b) <= tol; }

/* ---- metrics on hand cases ---------------------------------------------------- */

static void test_sqerr_hand(void) {
    /* Two prompts, positions 0 and 1, normaliser 2:
     *   prompt 0: pred (1, 0) vs y (0, 2) -> 0.5, 2
     *   prompt 1: pred (3, 1) vs y (1, 1) -> 2, 0
     * position 0: mean 1.25, std sqrt(2 * 0.75^2) = 1.0606602
     * position 1: mean 1, std sqrt(2) = 1.4142136 */
    tbatch t;
    tb_alloc(&t, 2, 4, 1);
    tb_slot(&t, 0, 0, 0, 0, 1);
    tb_slot(&t, 0, 2, 1, 2, 0);
    tb_slot(&t, 1, 0, 0, 1, 3);
    tb_slot(&t, 1, 2, 1, 1, 1);
    eval_acc acc;
    CHECK(eval_acc_init(&acc, 2) == ICL_OK, "%s", icl_error());
    CHECK(eval_acc_add_batch(&acc, &t.b, t.pred, 2.0, EVAL_SQERR) == ICL_OK, "%s", icl_error());
    eval_curve c;
    CHECK(eval_acc_finish(&acc, 1, &c) == ICL_OK, "%s", icl_error());
    printf("    means %.7g %.7g, stds %.7g %.7g\n", c.mean[0], c.mean[1], c.std[0], c.std[1]);
    CHECK(close_to(c.mean[0], 1.25, 1e-12) && close_to(c.mean[1], 1.0, 1e-12), "means");
    CHECK(close_to(c.std[0], 1.0606601717798212, 1e-12) && close_to(c.std[1], sqrt(2.0), 1e-12), "stds");
    CHECK(c.count[0] == 2 && c.count[1] == 2 && c.n_prompts == 2, "counts");
    /* With 2 prompts every resample mean is one of 3 values, so the interval
     * lies within [min, max] of the per-prompt values. */
    CHECK(c.lo[0] >= 0.5 && c.hi[0] <= 2.0 && c.lo[0] <= c.hi[0], "interval at 0: [%g, %g]", c.lo[0], c.hi[0]);
    eval_curve_free(&c);
    eval_acc_free(&acc);
    tb_free(&t);
}

/* Vector outputs: the squared error is summed over the O coordinates. */
static void test_sqerr_vector(void) {
    tbatch t;
    tb_alloc(&t, 1, 2, 3);
    t.b.metric[1] = 1.0f;
    t.b.example[1] = 0;
    const float y[3] = {1, 2, 3}, p[3] = {0, 2, 5};
    memcpy(t.b.y + 3, y, sizeof y);
    memcpy(t.pred + 3, p, sizeof p);
    eval_acc acc;
    eval_acc_init(&acc, 1);
    CHECK(eval_acc_add_batch(&acc, &t.b, t.pred, 5.0, EVAL_SQERR) == ICL_OK, "%s", icl_error());
    eval_curve c;
    eval_acc_finish(&acc, 1, &c);
    CHECK(close_to(c.mean[0], (1.0 + 0.0 + 4.0) / 5.0, 1e-12), "vector squared error %g, want 1", c.mean[0]);
    CHECK(c.std[0] == 0.0, "one prompt: std 0 (got %g)", c.std[0]);
    eval_curve_free(&c);
    eval_acc_free(&acc);
    tb_free(&t);
}

static void test_sign_accuracy_hand(void) {
    /* The rule is (pred > 0) == (y > 0.5), so +-1 and {0, 1} targets both
     * work. Eight prompts at position 0, +-1 targets first:
     *   0.3 vs +1 (right), -2 vs +1 (wrong), 0 vs -1 (right: 0 is not > 0),
     *   5 vs -1 (wrong);
     * then the samplers' {0, 1} BCE targets:
     *   0.7 vs 1 (right), -0.2 vs 1 (wrong), -3 vs 0 (right), 0.1 vs 0 (wrong)
     * -> 4 of 8 = 0.5. At position 1: -0.1 vs -1 (right) for the first four
     * and -0.1 vs 0 (right) for the others -> 1. */
    tbatch t;
    tb_alloc(&t, 8, 4, 1);
    const float p[8] = {0.3f, -2.0f, 0.0f, 5.0f, 0.7f, -0.2f, -3.0f, 0.1f}, y[8] = {1, 1, -1, -1, 1, 1, 0, 0};
    const int right0[8] = {1, 0, 1, 0, 1, 0, 1, 0};
    for (int b = 0; b < 8; b++) {
        tb_slot(&t, b, 0, 0, y[b], p[b]);
        tb_slot(&t, b, 2, 1, b < 4 ? -1.0f : 0.0f, -0.1f);
    }
    eval_acc acc;
    eval_acc_init(&acc, 2);
    CHECK(eval_acc_add_batch(&acc, &t.b, t.pred, 1.0, EVAL_SIGN_ACC) == ICL_OK, "%s", icl_error());
    for (int b = 0; b < 8; b++)
        CHECK(acc.val[(size_t)b * 2] == right0[b], "prompt %d: pred %g vs target %g scored %g, want %d", b, p[b],
              y[b], acc.val[(size_t)b * 2], right0[b]);
    eval_curve c;
    eval_acc_finish(&acc, 1, &c);
    printf("    sign accuracy: %.3f at position 0 (want 0.5), %.3f at 1 (want 1)\n", c.mean[0], c.mean[1]);
    CHECK(close_to(c.mean[0], 0.5, 1e-12), "position 0");
    CHECK(close_to(c.mean[1], 1.0, 1e-12) && c.std[1] == 0.0 && c.lo[1] == 1.0 && c.hi[1] == 1.0, "position 1");
    /* A different metric kind on the same accumulator is refused. */
    CHECK(eval_acc_add_batch(&acc, &t.b, t.pred, 1.0, EVAL_SQERR) == ICL_ERR_ARG, "metric kind switch");
    eval_curve_free(&c);
    eval_acc_free(&acc);
    tb_free(&t);
}

static void test_nearest_accuracy_hand(void) {
    /* One prompt, O = 3, three query slots (positions 0, 1, 2) whose targets
     * are e0, e1, e2 (the candidate values). Predictions: slot 0 near e1
     * (wrong), slot 1 near e1 (right), slot 2 = 2 e2 - 0.5 e0 (right).
     * Second prompt: two slots with the same target e0 and one with e1;
     * predicting e0 at the duplicated slots is right (equal vectors). */
    tbatch t;
    tb_alloc(&t, 2, 6, 3);
    const float e[3][3] = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
    const float preds[3][3] = {{0.1f, 0.9f, 0}, {0, 2, 0.5f}, {-0.5f, 0, 2}};
    for (int k = 0; k < 3; k++) {
        size_t i = (size_t)2 * k;
        t.b.metric[i] = 1.0f;
        t.b.example[i] = k;
        memcpy(t.b.y + i * 3, e[k], sizeof e[k]);
        memcpy(t.pred + i * 3, preds[k], sizeof preds[k]);
    }
    const int tgt2[3] = {0, 0, 1};
    for (int k = 0; k < 3; k++) {
        size_t i = (size_t)6 + 2 * k;
        t.b.metric[i] = 1.0f;
        t.b.example[i] = k;
        memcpy(t.b.y + i * 3, e[tgt2[k]], sizeof e[0]);
        memcpy(t.pred + i * 3, e[tgt2[k]], sizeof e[0]);
    }
    eval_acc acc;
    eval_acc_init(&acc, 3);
    CHECK(eval_acc_add_batch(&acc, &t.b, t.pred, 1.0, EVAL_NEAREST_ACC) == ICL_OK, "%s", icl_error());
    eval_curve c;
    eval_acc_finish(&acc, 1, &c);
    printf("    nearest-value accuracy per position: %.2f %.2f %.2f (want 0.5 1 1)\n", c.mean[0], c.mean[1], c.mean[2]);
    CHECK(close_to(c.mean[0], 0.5, 1e-12) && close_to(c.mean[1], 1.0, 1e-12) && close_to(c.mean[2], 1.0, 1e-12),
          "nearest accuracy");
    eval_curve_free(&c);
    eval_acc_free(&acc);
    tb_free(&t);
}

/* Several slots of one prompt at one position are averaged first; a
 * position no prompt reaches has count 0 and NaN statistics. */
static void test_slots_averaged_and_missing(void) {
    tbatch t;
    tb_alloc(&t, 2, 4, 1);
    tb_slot(&t, 0, 0, 0, 0, 1); /* 1 */
    tb_slot(&t, 0, 1, 0, 0, 3); /* 9 -> prompt 0 at position 0: 5 */
    tb_slot(&t, 1, 0, 0, 0, 1); /* prompt 1: 1 */
    eval_acc acc;
    eval_acc_init(&acc, 3);
    CHECK(eval_acc_add_batch(&acc, &t.b, t.pred, 1.0, EVAL_SQERR) == ICL_OK, "%s", icl_error());
    eval_curve c;
    eval_acc_finish(&acc, 1, &c);
    CHECK(close_to(c.mean[0], 3.0, 1e-12) && c.count[0] == 2, "prompt-level average: mean %g count %d", c.mean[0],
          c.count[0]);
    CHECK(isnan(c.mean[1]) && isnan(c.lo[2]) && c.count[1] == 0, "unreached positions");
    eval_curve_free(&c);
    eval_acc_free(&acc);
    tb_free(&t);
}

static void test_errors(void) {
    tbatch t;
    tb_alloc(&t, 1, 2, 1);
    tb_slot(&t, 0, 0, 3, 1, 1);
    eval_acc acc;
    CHECK(eval_acc_init(&acc, 0) == ICL_ERR_ARG, "positions 0");
    eval_acc_init(&acc, 3);
    CHECK(eval_acc_add_batch(&acc, &t.b, t.pred, 1.0, EVAL_SQERR) == ICL_ERR_SHAPE && strstr(icl_error(), "example 3"),
          "example beyond positions: %s", icl_error());
    CHECK(acc.n_prompts == 0, "a failed call must not add prompts");
    t.b.example[0] = 0;
    t.pred[0] = NAN;
    CHECK(eval_acc_add_batch(&acc, &t.b, t.pred, 1.0, EVAL_SQERR) == ICL_ERR_NUMERIC && strstr(icl_error(), "slot 0"),
          "NaN prediction: %s", icl_error());
    t.pred[0] = 1.0f;
    CHECK(eval_acc_add_batch(&acc, &t.b, t.pred, 0.0, EVAL_SQERR) == ICL_ERR_ARG, "normaliser 0");
    eval_curve c;
    CHECK(eval_acc_finish(&acc, 1, &c) == ICL_ERR_ARG, "finish with no prompts");
    eval_acc_free(&acc);
    tb_free(&t);
}

/* ---- bootstrap --------------------------------------------------------------------- */

/* N prompts x P positions of iid N(10, 1) values through the accumulator
 * (fed in batches of 64, position p at slot p). The metric is squared error
 * against y = 0, so pred = sqrt(v) makes the stored value v (to float
 * rounding); v < 0 has probability ~1e-23. */
static void fill_normal(eval_acc *acc, int N, int P, test_rng *r) {
    tbatch t;
    tb_alloc(&t, EVAL_BATCH, P, 1);
    for (int done = 0; done < N; done += EVAL_BATCH) {
        t.b.B = N - done < EVAL_BATCH ? N - done : EVAL_BATCH;
        for (int b = 0; b < t.b.B; b++)
            for (int p = 0; p < P; p++) tb_slot(&t, b, p, p, 0, (float)sqrt(fmax(0, 10.0 + test_rng_normal(r))));
        CHECK(eval_acc_add_batch(acc, &t.b, t.pred, 1.0, EVAL_SQERR) == ICL_OK, "%s", icl_error());
    }
    tb_free(&t);
}

static void test_bootstrap(void) {
    /* iid N(10, 1) values: the 90% interval of the mean should be about
     * 2 * 1.645 / sqrt(N) wide (the standard error of the mean). */
    const int P = 20;
    const double z90 = 1.6448536269514722;
    test_rng r = {test_seed() ^ 0xB0};
    eval_acc small, big;
    eval_acc_init(&small, P);
    eval_acc_init(&big, P);
    fill_normal(&small, 160, P, &r);
    fill_normal(&big, 1280, P, &r);
    eval_curve cs, cb, cb2, cb3;
    CHECK(eval_acc_finish(&small, 42, &cs) == ICL_OK, "%s", icl_error());
    CHECK(eval_acc_finish(&big, 42, &cb) == ICL_OK, "%s", icl_error());
    double ws = 0, wb = 0, want_b = 0, contain = 1, sd = 0;
    for (int p = 0; p < P; p++) {
        ws += (cs.hi[p] - cs.lo[p]) / P;
        wb += (cb.hi[p] - cb.lo[p]) / P;
        want_b += 2 * z90 / sqrt(1280.0) / P;
        sd += cb.std[p] / P;
        contain = contain && cs.lo[p] <= cs.mean[p] && cs.mean[p] <= cs.hi[p] && cb.lo[p] <= cb.mean[p] &&
                  cb.mean[p] <= cb.hi[p];
    }
    printf("    mean interval width: %.4f at N=160, %.4f at N=1280 (normal theory %.4f; ratio %.2f, want ~2.83); "
           "std %.3f (want ~1)\n", ws, wb, want_b, ws / wb, sd);
    CHECK(contain, "every interval must contain its mean");
    CHECK(fabs(wb / want_b - 1) < 0.1, "width %.4f vs standard-error theory %.4f (tol 10%%)", wb, want_b);
    CHECK(ws / wb > 2.3 && ws / wb < 3.4, "8x the prompts should narrow the interval ~sqrt(8) (ratio %.2f)", ws / wb);
    CHECK(fabs(sd - 1.0) < 0.05, "std %.3f", sd);
    /* Same seed: identical numbers; another seed: different intervals, same
     * mean and std. */
    eval_acc_finish(&big, 42, &cb2);
    eval_acc_finish(&big, 43, &cb3);
    CHECK(!memcmp(cb.lo, cb2.lo, P * sizeof(double)) && !memcmp(cb.hi, cb2.hi, P * sizeof(double)),
          "same seed must give identical intervals");
    CHECK(memcmp(cb.lo, cb3.lo, P * sizeof(double)) != 0, "another seed should resample differently");
    CHECK(!memcmp(cb.mean, cb3.mean, P * sizeof(double)), "the mean does not depend on the seed");
#ifdef _OPENMP
    /* And the thread count does not matter. */
    int max_t = omp_get_max_threads();
    omp_set_num_threads(1);
    eval_curve c1;
    eval_acc_finish(&big, 42, &c1);
    omp_set_num_threads(max_t);
    CHECK(!memcmp(cb.lo, c1.lo, P * sizeof(double)) && !memcmp(cb.hi, c1.hi, P * sizeof(double)),
          "1 thread and %d threads must agree", max_t);
    eval_curve_free(&c1);
#endif
    eval_curve_free(&cs), eval_curve_free(&cb), eval_curve_free(&cb2), eval_curve_free(&cb3);
    eval_acc_free(&small), eval_acc_free(&big);
}

/* ---- CSV ---------------------------------------------------------------------------- */

static char tmpdir[256];

static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(d);
    return n;
}

static void test_csv(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/icl_test_eval_XXXXXX");
    CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp failed");
    char path[512];
    snprintf(path, sizeof path, "%s/curves.csv", tmpdir);
    /* A 3-position model curve and a 2-position flat chance curve. */
    eval_curve cm, cc;
    eval_curve_constant(&cm, 3, 0.0, 10);
    for (int p = 0; p < 3; p++) {
        cm.mean[p] = 1.0 / (p + 1);
        cm.std[p] = 0.5;
        cm.lo[p] = cm.mean[p] - 0.1;
        cm.hi[p] = cm.mean[p] + 0.1;
    }
    CHECK(eval_curve_constant(&cc, 2, 0.5, 10) == ICL_OK, "%s", icl_error());
    eval_curve curves[2] = {cm, cc};
    const char *names[2] = {"model", "chance"};
    CHECK(eval_write_csv(path, curves, names, 2) == ICL_OK, "%s", icl_error());
    FILE *f = fopen(path, "r");
    char buf[2048] = {0};
    size_t len = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    (void)len;
    const char *want =
        "position,model_mean,model_std,model_lo,model_hi,chance_mean,chance_std,chance_lo,chance_hi\n"
        "0,1,0.5,0.9,1.1,0.5,0,0.5,0.5\n"
        "1,0.5,0.5,0.4,0.6,0.5,0,0.5,0.5\n"
        "2,0.3333333333,0.5,0.2333333333,0.4333333333,,,,\n";
    CHECK(!strcmp(buf, want), "CSV content differs:\n%s\n--- want ---\n%s", buf, want);
    CHECK(count_entries(tmpdir) == 1, "only the CSV may remain in the directory (%d entries)", count_entries(tmpdir));
    /* Overwriting replaces the file whole. */
    CHECK(eval_write_csv(path, &cc, names + 1, 1) == ICL_OK, "%s", icl_error());
    f = fopen(path, "r");
    memset(buf, 0, sizeof buf);
    if (f) {
        len = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
    }
    CHECK(!strncmp(buf, "position,chance_mean,chance_std,chance_lo,chance_hi\n0,0.5,0,0.5,0.5\n1,", 60) &&
              strlen(buf) == strlen("position,chance_mean,chance_std,chance_lo,chance_hi\n0,0.5,0,0.5,0.5\n"
                                    "1,0.5,0,0.5,0.5\n"),
          "overwrite: %s", buf);
    /* A missing directory: an error naming the path, and nothing created. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no_such_dir/curves.csv", tmpdir);
    CHECK(eval_write_csv(bad, curves, names, 2) == ICL_ERR_IO && strstr(icl_error(), bad),
          "missing directory must fail naming the path: %s", icl_error());
    struct stat st;
    char baddir[560];
    snprintf(baddir, sizeof baddir, "%s/no_such_dir", tmpdir);
    CHECK(stat(bad, &st) != 0 && stat(baddir, &st) != 0, "nothing may be created on failure");
    CHECK(count_entries(tmpdir) == 1, "no temporary file may be left (%d entries)", count_entries(tmpdir));
    /* Bad names. */
    const char *bad_names[2] = {"a,b", "chance"};
    CHECK(eval_write_csv(path, curves, bad_names, 2) == ICL_ERR_ARG, "a name with a comma");
    remove(path);
    rmdir(tmpdir);
    eval_curve_free(&cm);
    eval_curve_free(&cc);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    TEST_RUN(test_sqerr_hand);
    TEST_RUN(test_sqerr_vector);
    TEST_RUN(test_sign_accuracy_hand);
    TEST_RUN(test_nearest_accuracy_hand);
    TEST_RUN(test_slots_averaged_and_missing);
    TEST_RUN(test_errors);
    TEST_RUN(test_bootstrap);
    TEST_RUN(test_csv);
    return test_finish();
}
