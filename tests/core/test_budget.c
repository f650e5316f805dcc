/*
 * test_budget.c - the memory budget (core/budget.h) and the byte counts it
 * relies on (nn/model_mem.h):
 *   - sizes print as "37.2 GiB" and parse from "512M", "1.5G", "off", and
 *     malformed sizes are refused with a message;
 *   - the budget comes from icl_budget_set, else $ICLPLAY_BUDGET, else half
 *     of the physical memory;
 *   - the counts model_create / model_reserve / optim_create check equal
 *     what they allocate: exactly against the model's own fields (parameter
 *     block, arena), and against the bytes malloc reports in use before and
 *     after each call (mallinfo2), within 1% + 16 KiB (malloc's chunk
 *     headers, page rounding of mmapped blocks, alignment padding);
 *   - a model, a (B, T) reservation, a task and a task batch one byte over
 *     the budget are refused before anything is allocated (malloc's count
 *     does not move by more than 4 KiB) with the estimate in the message,
 *     and exactly at the budget they are built;
 *   - an absurd size (d_model 4096 x 48 layers, or (B, T) whose count does
 *     not fit in size_t) is refused at once.
 * Under a sanitizer mallinfo2 sees nothing; the malloc-based checks are then
 * skipped (said so in the output) and the field-based ones still run.
 */
#include <malloc.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/budget.h"
#include "nn/model.h"
#include "nn/model_internal.h"
#include "nn/model_mem.h"
#include "nn/optim.h"
#include "tasks/task.h"
#include "testlib.h"

#define KIB ((size_t)1 << 10)
#define MIB ((size_t)1 << 20)
#define GIB ((size_t)1 << 30)

/* Bytes malloc has handed out and not taken back (all arenas + mmapped). */
static size_t malloc_in_use(void) {
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

/* 1 if mallinfo2 sees our allocations (not under ASan and friends). */
static int malloc_stats_work(void) {
    static int known = -1;
    if (known >= 0) return known;
    size_t before = malloc_in_use();
    char *p = malloc(3 * MIB);
    if (p) memset(p, 1, 3 * MIB);
    size_t after = malloc_in_use();
    free(p);
    known = p && after >= before + 3 * MIB && after <= before + 3 * MIB + 64 * KIB;
    if (!known) printf("# mallinfo2 does not see allocations (a sanitizer?): malloc-based checks skipped\n");
    return known;
}

/* |measured - counted| <= 1% of counted + 16 KiB. */
static int close_enough(size_t measured, size_t counted) {
    double d = (double)measured - (double)counted;
    return fabs(d) <= 0.01 * (double)counted + 16.0 * KIB;
}

/* ---- sizes ------------------------------------------------------------------ */

static void test_format_bytes(void) {
    struct { size_t v; const char *want; } cases[] = {
        {0, "0 B"},
        {1023, "1023 B"},
        {1024, "1.0 KiB"},
        {1536, "1.5 KiB"},
        {MIB, "1.0 MiB"},
        {(size_t)(37.2 * GIB), "37.2 GiB"},
        {8 * GIB, "8.0 GiB"},
        {(size_t)3 << 40, "3.0 TiB"},
        {SIZE_MAX, "unlimited"},
    };
    char buf[32];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        icl_format_bytes(buf, sizeof buf, cases[i].v);
        CHECK(!strcmp(buf, cases[i].want), "%zu printed as '%s', expected '%s'", cases[i].v, buf, cases[i].want);
    }
    /* truncation keeps snprintf semantics */
    char tiny[4];
    int n = icl_format_bytes(tiny, sizeof tiny, 8 * GIB);
    CHECK(n == 7 && !strcmp(tiny, "8.0"), "truncated: n=%d '%s'", n, tiny);
}

static void test_parse_bytes(void) {
    struct { const char *text; size_t want; } good[] = {
        {"512M", 512 * MIB}, {"2G", 2 * GIB},       {"1.5G", GIB + GIB / 2}, {"1048576", MIB},
        {"2 GiB", 2 * GIB},  {"64kb", 64 * KIB},    {" 3K ", 3 * KIB},       {"100B", 100},
        {"1T", (size_t)1 << 40}, {"0", 0},          {"off", SIZE_MAX},       {"Unlimited", SIZE_MAX},
        {"none", SIZE_MAX},  {"0.5k", 512},
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        size_t v = 12345;
        icl_status st = icl_parse_bytes(good[i].text, &v);
        CHECK(st == ICL_OK && v == good[i].want, "'%s' -> st %d, %zu (expected %zu): %s", good[i].text, (int)st, v,
              good[i].want, icl_error());
    }
    const char *bad[] = {"", "abc", "-1", "1e9", "inf", "nan", "5X", "1.2.3", "12 MBx", "G", "0x10", "offf", "1e30G"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        size_t v = 0;
        icl_status st = icl_parse_bytes(bad[i], &v);
        CHECK(st == ICL_ERR_ARG, "'%s' was accepted as %zu", bad[i], v);
        CHECK(strstr(icl_error(), "size") != NULL, "'%s': message '%s' does not say it is about a size", bad[i],
              icl_error());
    }
}

/* ---- the budget itself ------------------------------------------------------------ */

static void test_budget_sources(void) {
    unsetenv("ICLPLAY_BUDGET");
    icl_budget_set(0);
    size_t phys = icl_phys_bytes();
    CHECK(phys > 64 * MIB, "physical memory %zu looks wrong", phys);
    CHECK(icl_budget_default() == phys / 2, "default %zu, expected half of %zu", icl_budget_default(), phys);
    CHECK(icl_budget_get() == icl_budget_default(), "no setting: the default");
    setenv("ICLPLAY_BUDGET", "1G", 1);
    CHECK(icl_budget_get() == GIB, "ICLPLAY_BUDGET=1G gives %zu", icl_budget_get());
    setenv("ICLPLAY_BUDGET", "nonsense", 1);
    CHECK(icl_budget_get() == icl_budget_default(), "a bad ICLPLAY_BUDGET falls back to the default");
    setenv("ICLPLAY_BUDGET", "1G", 1);
    icl_budget_set(100 * MIB);
    CHECK(icl_budget_get() == 100 * MIB, "icl_budget_set wins over the environment");
    icl_budget_set(0);
    CHECK(icl_budget_get() == GIB, "icl_budget_set(0) goes back to the environment");
    unsetenv("ICLPLAY_BUDGET");
    icl_budget_set(SIZE_MAX);
    CHECK(icl_budget_check(SIZE_MAX - 1, "x", "y") == ICL_OK, "SIZE_MAX is no budget");
    icl_budget_set(0);
}

static void test_budget_message(void) {
    icl_budget_set(8 * GIB);
    CHECK(icl_budget_check(8 * GIB, "model: m", "weights") == ICL_OK, "exactly the budget fits");
    icl_status st = icl_budget_check((size_t)(37.2 * GIB), "model: m", "weights, gradients and Adam state");
    const char *want = "model: m needs about 37.2 GiB for weights, gradients and Adam state, over the budget of "
                       "8.0 GiB (icl.memory_budget or ICLPLAY_BUDGET)";
    CHECK(st == ICL_ERR_NOMEM, "status %d", (int)st);
    CHECK(!strcmp(icl_error(), want), "message:\n    '%s'\n  expected\n    '%s'", icl_error(), want);
    /* one byte over: both would print "8.0 GiB", so more digits */
    st = icl_budget_check(8 * GIB + 2 * MIB, "t", "b");
    CHECK(st == ICL_ERR_NOMEM && strstr(icl_error(), "8.002 GiB") && strstr(icl_error(), "budget of 8.000 GiB"),
          "close sizes print with three decimals: '%s'", icl_error());
    icl_budget_set(0);
}

/* ---- the model's counts against what it allocates ---------------------------------- */

static model_spec spec_of(const char *arch, int d_model, int n_layer) {
    model_spec s;
    model_spec_default(&s, arch);
    model_spec_set(&s, "d_model", d_model);
    model_spec_set(&s, "n_layer", n_layer);
    model_spec_set(&s, "n_head", 4);
    model_spec_set(&s, "d_state", 8);
    model_spec_set(&s, "n_dims", 5);
    if (s.n_positions) model_spec_set(&s, "n_positions", 64);
    return s;
}

static size_t line64(size_t bytes) { return bytes ? (bytes + 63) / 64 * 64 : 64; }

static void test_model_counts(void) {
    int stats = malloc_stats_work();
    { /* warm-up: OpenMP's team and BLAS's buffers are allocated on first use */
        model_spec s = spec_of("mambaformer", 16, 2);
        model *m = NULL;
        if (model_create(&m, &s) == ICL_OK && model_reserve(m, 2, 8) == ICL_OK) {
            float x[2 * 8 * 5] = {0};
            model_forward(m, x, NULL, 2, 8);
        }
        model_free(m);
    }
    const char *archs[] = {"transformer", "mamba", "s4mamba", "hybrid", "mambaformer"};
    const int dims[][4] = {{32, 2, 4, 16}, {64, 4, 8, 40}, {16, 2, 1, 1}}; /* d_model, n_layer, B, T */
    double worst_rel = 0, worst_abs = 0;
    int nthreads = omp_get_max_threads();
    for (size_t a = 0; a < sizeof archs / sizeof *archs; a++) {
        for (size_t k = 0; k < sizeof dims / sizeof *dims; k++) {
            model_spec s = spec_of(archs[a], dims[k][0], dims[k][1]);
            int B = dims[k][2], T = dims[k][3];
            size_t before = malloc_in_use();
            model *m = NULL;
            icl_status st = model_create(&m, &s);
            size_t after_create = malloc_in_use();
            CHECK(st == ICL_OK, "%s: %s", archs[a], icl_error());
            if (st) continue;
            /* exact, from the model's fields */
            CHECK(model_spec_param_bytes(&s) == line64(m->n_params * sizeof(float)), "%s: param bytes %zu vs %zu",
                  archs[a], model_spec_param_bytes(&s), line64(m->n_params * sizeof(float)));
            CHECK(model_spec_create_bytes(&s) ==
                      sizeof(model) + (size_t)s.n_blocks * sizeof(block) + 2 * line64(m->n_params * sizeof(float)),
                  "%s: create bytes", archs[a]);
            CHECK(model_spec_adam_bytes(&s) == 2 * m->n_params * sizeof(float), "%s: Adam bytes", archs[a]);
            st = model_reserve(m, B, T);
            size_t after_reserve = malloc_in_use();
            CHECK(st == ICL_OK, "%s reserve: %s", archs[a], icl_error());
            size_t counted = model_spec_reserve_bytes(&s, B, T, nthreads);
            /* the arena, the residual-stream table, and the shard views (one per thread after the first) */
            size_t fields = line64(m->arena_floats * sizeof(float)) + ((size_t)s.n_blocks + 1) * sizeof(float *) +
                            model_shard_table_bytes(&s, m->nthreads);
            CHECK(counted == fields, "%s B=%d T=%d: reserve count %zu, the model's arena + table %zu", archs[a], B, T,
                  counted, fields);
            CHECK(model_activation_bytes(&s, B, T) == counted, "%s: model_activation_bytes agrees", archs[a]);
            optim_config oc;
            optim_config_default(&oc);
            optim o;
            size_t before_opt = malloc_in_use();
            st = optim_create(&o, &oc, m->n_params);
            size_t after_opt = malloc_in_use();
            CHECK(st == ICL_OK, "optim_create: %s", icl_error());
            if (stats) {
                size_t c1 = model_spec_create_bytes(&s), m1 = after_create - before;
                size_t m2 = after_reserve - after_create, m3 = after_opt - before_opt, c3 = model_spec_adam_bytes(&s);
                CHECK(close_enough(m1, c1), "%s: model_create allocated %zu bytes, counted %zu", archs[a], m1, c1);
                CHECK(close_enough(m2, counted), "%s B=%d T=%d: model_reserve allocated %zu, counted %zu", archs[a],
                      B, T, m2, counted);
                CHECK(close_enough(m3, c3), "%s: optim_create allocated %zu, counted %zu", archs[a], m3, c3);
                double r1 = fabs((double)m1 - c1) / c1, r2 = fabs((double)m2 - counted) / counted;
                double r3 = fabs((double)m3 - c3) / c3;
                if (r1 > worst_rel) worst_rel = r1;
                if (r2 > worst_rel) worst_rel = r2;
                if (r3 > worst_rel) worst_rel = r3;
                double a1 = fabs((double)m1 - c1), a2 = fabs((double)m2 - counted), a3 = fabs((double)m3 - c3);
                if (a1 > worst_abs) worst_abs = a1;
                if (a2 > worst_abs) worst_abs = a2;
                if (a3 > worst_abs) worst_abs = a3;
            }
            optim_free(&o);
            model_free(m);
        }
    }
    if (stats)
        printf("# worst gap between malloc's count and ours: %.0f bytes, %.3f%% (tolerance 1%% + 16 KiB)\n",
               worst_abs, 100 * worst_rel);
}

/* ---- refusals --------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_model_refused_before_allocating(void) {
    int stats = malloc_stats_work();
    model_spec s = spec_of("mamba", 48, 2);
    size_t need = model_spec_create_bytes(&s) + model_spec_adam_bytes(&s);
    icl_budget_set(need - 1);
    size_t before = malloc_in_use();
    model *m = (model *)&s; /* must be reset to NULL */
    icl_status st = model_create(&m, &s);
    size_t after = malloc_in_use();
    CHECK(st == ICL_ERR_NOMEM && m == NULL, "one byte over the budget: status %d", (int)st);
    CHECK(strstr(icl_error(), "needs about") && strstr(icl_error(), "weights, gradients and Adam state") &&
              strstr(icl_error(), "icl.memory_budget"),
          "message: %s", icl_error());
    if (stats) CHECK(after <= before + 4 * KIB, "refused, yet malloc's count grew by %zu", after - before);
    icl_budget_set(need);
    st = model_create(&m, &s);
    CHECK(st == ICL_OK && m, "exactly at the budget: %s", icl_error());
    if (st) {
        icl_budget_set(0);
        return;
    }
    /* reserve: weights + grads + Adam + activations */
    int nthreads = omp_get_max_threads();
    size_t r1 = model_spec_reserve_bytes(&s, 2, 8, nthreads);
    icl_budget_set(need + r1);
    CHECK(model_reserve(m, 2, 8) == ICL_OK, "reserve exactly at the budget: %s", icl_error());
    size_t r2 = model_spec_reserve_bytes(&s, 4, 16, nthreads);
    icl_budget_set(need + r2 - 1);
    float *arena = m->arena;
    before = malloc_in_use();
    st = model_reserve(m, 4, 16);
    after = malloc_in_use();
    CHECK(st == ICL_ERR_NOMEM, "reserve one byte over: status %d", (int)st);
    CHECK(strstr(icl_error(), "batch 4 x 16 tokens") && strstr(icl_error(), "activations") &&
              strstr(icl_error(), "Adam state"),
          "message: %s", icl_error());
    CHECK(m->arena == arena && m->cap_B == 2 && m->cap_T == 8, "a refused reserve leaves the old arena");
    if (stats) CHECK(after <= before + 4 * KIB, "refused reserve, yet malloc's count grew by %zu", after - before);
    float x[2 * 8 * 5] = {0};
    CHECK(model_forward(m, x, NULL, 2, 8) == ICL_OK, "the model still runs at its old size: %s", icl_error());
    icl_budget_set(need + r2);
    CHECK(model_reserve(m, 4, 16) == ICL_OK, "reserve at the budget: %s", icl_error());
    model_free(m);
    icl_budget_set(0);
}

static void test_absurd_sizes_refused_at_once(void) {
    double t0 = now_s();
    size_t before = malloc_in_use();
    icl_budget_set(8 * GIB);
    model_spec s;
    model_spec_default(&s, "mambaformer");
    model_spec_set(&s, "d_model", 4096);
    model_spec_set(&s, "n_layer", 48);
    model_spec_set(&s, "n_head", 32);
    model *m = NULL;
    icl_status st = model_create(&m, &s);
    CHECK(st == ICL_ERR_NOMEM && !m, "d_model 4096 x 48 layers was not refused");
    printf("# %s\n", icl_error());
    CHECK(strstr(icl_error(), "model: mambaformer with d_model 4096 and 49 blocks") &&
              strstr(icl_error(), "over the budget of 8.0 GiB (icl.memory_budget or ICLPLAY_BUDGET)"),
          "message: %s", icl_error());
    /* (B, T) whose count overflows size_t: saturates, refused */
    model_spec t = spec_of("transformer", 16, 2);
    /* attention probabilities alone: B * NH * T * T = 2^16 * 4 * 2^48 floats */
    CHECK(model_spec_reserve_bytes(&t, 65536, 1 << 24, 4) == SIZE_MAX, "an overflowing count saturates");
    icl_budget_set(SIZE_MAX - 1);
    st = model_create(&m, &t);
    CHECK(st == ICL_OK, "%s", icl_error());
    if (!st) {
        st = model_reserve(m, 65536, 1 << 24);
        CHECK(st == ICL_ERR_NOMEM, "a reservation of 2^66 floats was not refused");
        CHECK(m->cap_B == 0 && m->arena == NULL, "nothing was reserved");
        model_free(m);
    }
    icl_budget_set(0);
    double dt = now_s() - t0;
    CHECK(dt < 1.0, "refusals took %.3f s", dt);
    if (malloc_stats_work())
        CHECK(malloc_in_use() <= before + 64 * KIB, "memory grew by %zu", malloc_in_use() - before);
}

static void test_task_budget(void) {
    task_spec s;
    task_spec_default(&s, "linear_regression");
    task_spec_set(&s, "n_dims", 64);
    task_spec_set(&s, "n_points", 100);
    /* task_create counts a batch of 64 (T = 200, d = 64, O = 1) and the
     * predictions: 64 * 200 * (64*4 + 12 + 4 + 4) bytes */
    size_t spec_need = (size_t)64 * 200 * (64 * 4 + 12 + 4 + 4);
    icl_budget_set(spec_need - 1);
    task *t = NULL;
    icl_status st = task_create(&t, &s);
    CHECK(st == ICL_ERR_NOMEM && !t, "one byte over: status %d", (int)st);
    CHECK(strstr(icl_error(), "task linear_regression: a batch of 64 prompts (T = 200 tokens, d = 64, O = 1) needs "
                              "about") &&
              strstr(icl_error(), "icl.memory_budget"),
          "message: %s", icl_error());
    icl_budget_set(spec_need);
    st = task_create(&t, &s);
    CHECK(st == ICL_OK, "at the budget: %s", icl_error());
    if (st) {
        icl_budget_set(0);
        return;
    }
    /* task_batch_alloc(cap_B): x (d), y (O = 1), mask, metric, example per slot */
    size_t batch_need = (size_t)1000 * 200 * (64 * 4 + 4 + 4 + 4 + 4);
    icl_budget_set(batch_need - 1);
    batch b;
    size_t before = malloc_in_use();
    st = task_batch_alloc(&b, t, 1000);
    size_t after = malloc_in_use();
    CHECK(st == ICL_ERR_NOMEM && !b.x && !b.y, "batch one byte over: status %d", (int)st);
    CHECK(strstr(icl_error(), "a batch of 1000 prompts x 200 tokens needs about"), "message: %s", icl_error());
    if (malloc_stats_work()) CHECK(after <= before + 4 * KIB, "refused batch, yet malloc grew by %zu", after - before);
    task_batch_free(&b);
    icl_budget_set(batch_need);
    before = malloc_in_use();
    st = task_batch_alloc(&b, t, 1000);
    after = malloc_in_use();
    CHECK(st == ICL_OK, "batch at the budget: %s", icl_error());
    if (!st && malloc_stats_work())
        CHECK(close_enough(after - before, batch_need), "batch allocated %zu, counted %zu", after - before,
              batch_need);
    task_batch_free(&b);
    task_free(t);
    icl_budget_set(0);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    unsetenv("ICLPLAY_BUDGET");
    TEST_RUN(test_format_bytes);
    TEST_RUN(test_parse_bytes);
    TEST_RUN(test_budget_sources);
    TEST_RUN(test_budget_message);
    TEST_RUN(test_model_counts);
    TEST_RUN(test_model_refused_before_allocating);
    TEST_RUN(test_absurd_sizes_refused_at_once);
    TEST_RUN(test_task_budget);
    return test_finish();
}
