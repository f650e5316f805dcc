/*
 * test_noalloc.c - a training step allocates nothing: for every
 * architecture and every task family, after a few warm-up steps (which may
 * size scratch: the model's arena, the batch's sampler scratch, OpenBLAS's
 * and OpenMP's own buffers), trainer_step runs with malloc, calloc, realloc
 * and the aligned allocators counted, on 1 and on 2 threads, and the count
 * of allocations made by iclplay's own code must stay 0.
 *
 * How: this executable defines malloc and friends itself, forwarding to
 * glibc's __libc_* entry points; the dynamic linker binds every library
 * (OpenBLAS, libgomp, Lua) to the executable's definitions first, so the
 * counter sees all of them. Under AddressSanitizer (make test's second
 * pass) the sanitizer owns malloc, so the interposers are left out and the
 * test says so; the release pass of the same `make test` does the check.
 * Whose allocation it is: the caller's return address. iclplay's code is
 * linked statically into this executable, so a caller inside the
 * executable's text (__executable_start .. etext) is ours; OpenBLAS (whose
 * cblas_sgemm allocates its thread jobs on every call in Debian's OpenMP
 * build) and libgomp are shared libraries, outside it. Their counts are
 * printed, not asserted: we do not own them.
 *
 *   test_noalloc [--seed N] [--only NAME]
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "core/blas.h"
#include "train/trainer.h"
#include "testlib.h"
#include "train_testutil.h"

#if defined(__SANITIZE_ADDRESS__)
#define NOALLOC_COUNTED 0
#else
#define NOALLOC_COUNTED 1
#endif

static atomic_int counting;
static atomic_long n_allocs;   /* by iclplay's code */
static atomic_long n_foreign;  /* by the shared libraries */

#if NOALLOC_COUNTED
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

extern const char __executable_start[], etext[];

static void note_from(const void *caller) {
    if (!atomic_load(&counting)) return;
    const char *c = caller;
    if (c >= __executable_start && c < etext) atomic_fetch_add(&n_allocs, 1);
    else atomic_fetch_add(&n_foreign, 1);
}
#define note() note_from(__builtin_return_address(0))
void *malloc(size_t n) {
    note();
    return __libc_malloc(n);
}
void *calloc(size_t k, size_t n) {
    note();
    return __libc_calloc(k, n);
}
void *realloc(void *p, size_t n) {
    note();
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t a, size_t n) {
    note();
    return __libc_memalign(a, n);
}
void *memalign(size_t a, size_t n);
void *memalign(size_t a, size_t n) {
    note();
    return __libc_memalign(a, n);
}
int posix_memalign(void **out, size_t a, size_t n) {
    note();
    void *p = __libc_memalign(a, n);
    if (!p) return ENOMEM;
    *out = p;
    return 0;
}
#endif

static model *make_model(const char *arch, const task *t) {
    model_spec s;
    /* shaped for the task as `iclplay train` does (src/train/train_cli.c) */
    icl_status st = model_spec_default(&s, arch);
    if (!st) st = model_spec_set(&s, "d_model", 32);
    if (!st) st = model_spec_set(&s, "n_layer", 4);
    if (!st) st = model_spec_set(&s, "n_head", 4);
    if (!st) st = model_spec_fit_task(&s, t);
    CHECK(st == ICL_OK, "model spec %s: %s", arch, icl_error());
    s.seed = test_seed();
    model *m = NULL;
    if (!st) st = model_create(&m, &s);
    CHECK(st == ICL_OK, "model_create %s: %s", arch, icl_error());
    return m;
}

/* Warm-up steps, then counted steps; returns the allocations counted. */
static long counted_steps(const char *arch, const char *task_name, int threads, long *foreign) {
    blas_set_threads(threads);
    task *t = tu_task(task_name, 0, 0);
    model *m = t ? make_model(arch, t) : NULL;
    long n = -1;
    if (m) {
        optim_config oc;
        optim_config_default(&oc);
        trainer tr;
        icl_status st = trainer_init(&tr, m, t, &oc, 8, test_seed());
        CHECK(st == ICL_OK, "trainer_init: %s", icl_error());
        if (st == ICL_OK) {
            /* under the sanitizer nothing is counted: one warm-up and one
             * counted step still run every (architecture, task) pair through
             * its memory checks, at a fraction of the time */
            const int warm = NOALLOC_COUNTED ? 3 : 1, counted = NOALLOC_COUNTED ? 5 : 1;
            for (int i = 0; i < warm && st == ICL_OK; i++) st = trainer_step(&tr);
            atomic_store(&n_allocs, 0);
            atomic_store(&n_foreign, 0);
            atomic_store(&counting, 1);
            for (int i = 0; i < counted && st == ICL_OK; i++) st = trainer_step(&tr);
            atomic_store(&counting, 0);
            if (*foreign < atomic_load(&n_foreign)) *foreign = atomic_load(&n_foreign);
            CHECK(st == ICL_OK, "%s on %s: step failed: %s", arch, task_name, icl_error());
            n = atomic_load(&n_allocs);
            trainer_free(&tr);
        }
        model_free(m);
    }
    task_free(t);
    blas_set_threads(2);
    return n;
}

static void check_arch(const char *arch) {
    static const char *tasks[] = {"linear_regression", "relu2nn_regression", "decision_tree",
                                  "ortho_outlier_regression", "sparse_parity", "cot_io", "vector_mqar",
                                  "token_mqar"};
    long foreign = 0;
    for (size_t i = 0; i < sizeof tasks / sizeof *tasks; i++)
        for (int th = 1; th <= (NOALLOC_COUNTED ? 2 : 1); th++) {
            long n = counted_steps(arch, tasks[i], th, &foreign);
            if (!NOALLOC_COUNTED) continue;
            CHECK(n == 0, "%s on %s, %d thread(s): %ld allocations in 5 training steps", arch, tasks[i], th, n);
        }
    if (!NOALLOC_COUNTED)
        printf("    (sanitizer build: malloc belongs to the sanitizer, nothing counted; the release pass checks it)\n");
    else
        printf("    %s: iclplay's allocations in 5 steps on each of 8 tasks, 1 and 2 threads: 0 expected; "
               "the shared libraries' (OpenBLAS, libgomp): at most %ld\n", arch, foreign);
}

/* The counter itself works: a malloc while counting is seen. */
static void test_counter_sees_malloc(void) {
    if (!NOALLOC_COUNTED) return;
    atomic_store(&n_allocs, 0);
    atomic_store(&counting, 1);
    void *p = malloc(100);
    atomic_store(&counting, 0);
    free(p);
    CHECK(atomic_load(&n_allocs) == 1, "the interposed malloc did not count this executable's call (%ld)",
          atomic_load(&n_allocs));
}

static void test_transformer(void) { check_arch("transformer"); }
static void test_mamba(void) { check_arch("mamba"); }
static void test_s4mamba(void) { check_arch("s4mamba"); }
static void test_hybrid(void) { check_arch("hybrid"); }
static void test_mambaformer(void) { check_arch("mambaformer"); }

int main(int argc, char **argv) {
    test_init(argc, argv);
    TEST_RUN(test_counter_sees_malloc);
    TEST_RUN(test_transformer);
    TEST_RUN(test_mamba);
    TEST_RUN(test_s4mamba);
    TEST_RUN(test_hybrid);
    TEST_RUN(test_mambaformer);
    return test_finish();
}
