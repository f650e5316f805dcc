/*
 * testlib.h - the tiny test harness every C test uses (header only).
 *
 *   int main(int argc, char **argv) {
 *       test_init(argc, argv);            // --seed N, --only NAME, ICL_TEST_SEED
 *       TEST_RUN(test_something);         // runs unless filtered out by --only
 *       return test_finish();             // prints "N passed, N failed", exit code
 *   }
 *
 * Checks never stop a test early: CHECK records a failure with file:line and a
 * message and the test goes on, so one run shows every broken thing. Every test
 * binary prints its seed first, so a failing randomised run can be replayed
 * with --seed. Finite-difference helpers accumulate in double.
 */
#ifndef ICL_TESTLIB_H
#define ICL_TESTLIB_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t test_seed_value = 1234;
static const char *test_only = NULL;
static int test_checks_failed_in_test = 0;
static int test_passed = 0, test_failed = 0;
static const char *test_current = "";

static inline void test_init(int argc, char **argv) {
    const char *env = getenv("ICL_TEST_SEED");
    if (env && *env) test_seed_value = strtoull(env, NULL, 10);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--seed") && i + 1 < argc) test_seed_value = strtoull(argv[++i], NULL, 10);
        else if (!strcmp(argv[i], "--only") && i + 1 < argc) test_only = argv[++i];
    }
    printf("# %s seed=%llu (replay with --seed %llu)\n", argv[0], (unsigned long long)test_seed_value,
           (unsigned long long)test_seed_value);
}

static inline uint64_t test_seed(void) { return test_seed_value; }

#define CHECK(cond, ...)                                                         \
    do {                                                                         \
        if (!(cond)) {                                                           \
            test_checks_failed_in_test++;                                        \
            printf("  FAIL %s:%d [%s] %s: ", __FILE__, __LINE__, test_current, #cond); \
            printf(__VA_ARGS__);                                                 \
            printf("\n");                                                        \
        }                                                                        \
    } while (0)

#define TEST_RUN(fn) test_run_named(#fn, fn)

static inline void test_run_named(const char *name, void (*fn)(void)) {
    if (test_only && !strstr(name, test_only)) return;
    test_current = name;
    test_checks_failed_in_test = 0;
    fn();
    if (test_checks_failed_in_test) { test_failed++; printf("not ok  %s\n", name); }
    else { test_passed++; printf("ok      %s\n", name); }
    fflush(stdout);
}

static inline int test_finish(void) {
    printf("%d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}

/* ---- numbers ---------------------------------------------------------- */

/* A small self-contained generator for test inputs (splitmix64), so tests
 * do not depend on the RNG they may be testing. */
typedef struct { uint64_t s; } test_rng;
static inline uint64_t test_rng_u64(test_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline double test_rng_uniform(test_rng *r) { return (test_rng_u64(r) >> 11) * 0x1.0p-53; }
static inline float test_rng_normal(test_rng *r) {
    double u1 = test_rng_uniform(r), u2 = test_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
static inline void test_fill_normal(test_rng *r, float *x, size_t n, float scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * test_rng_normal(r);
}
static inline void test_fill_uniform(test_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * (float)test_rng_uniform(r);
}

/* Zeroed arrays for test data (never NULL: out of memory ends the test
 * binary with status 2, as no test can go on without its inputs). */
static inline float *test_falloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof *p);
    if (!p) { printf("out of memory\n"); exit(2); }
    return p;
}
static inline double *test_dalloc(size_t n) {
    double *p = calloc(n ? n : 1, sizeof *p);
    if (!p) { printf("out of memory\n"); exit(2); }
    return p;
}

/* Kernel output against a double reference, rows x cols read with row
 * strides ldg and ldr: |got - ref| <= atol + rtol (|ref| + mag), mag (laid
 * out like ref, or NULL for 0) the sum of the absolute values of the terms
 * that make up ref (a float sum of n terms is only accurate to ~n eps of
 * that when they cancel). Prints the worst error and up to 3 offenders. */
static inline int test_close_to_ref(const char *what, const float *got, size_t ldg, const double *ref,
                                    const double *mag, size_t ldr, size_t rows, size_t cols, double rtol,
                                    double atol) {
    double worst = 0, worst_excess = 0;
    size_t bad = 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            double g = got[r * ldg + c], e = ref[r * ldr + c], m = mag ? mag[r * ldr + c] : 0.0;
            double err = fabs(g - e), lim = atol + rtol * (fabs(e) + m);
            if (!(err <= lim)) {
                if (bad < 3) printf("    %s[%zu,%zu]: %.8g vs ref %.8g\n", what, r, c, g, e);
                bad++;
            }
            if (err > worst || isnan(err)) worst = err;
            if (err / lim > worst_excess) worst_excess = err / lim;
        }
    printf("    %-8s max|err| %.3g (%.2f of tolerance)\n", what, worst, worst_excess);
    return bad == 0;
}

/* For a kernel that WRITES an output kept in a strided buffer (n floats in
 * rows of ld, the first cols of each row its own, the rest another tensor's):
 * bad[0] counts own entries where `twice` (two calls into one buffer) is not
 * bit for bit `once` (one call), bad[1] own entries where `from_old` (one
 * call into a buffer of other values) is not, and bad[2] the other entries of
 * from_old that differ from `old`, its values before the call. */
static inline void test_written_strided(const float *once, const float *twice, const float *from_old,
                                        const float *old, size_t n, size_t ld, size_t cols, int bad[3]) {
    bad[0] = bad[1] = bad[2] = 0;
    for (size_t i = 0; i < n; i++) {
        if (i % ld < cols) {
            bad[0] += memcmp(&twice[i], &once[i], sizeof(float)) != 0;
            bad[1] += memcmp(&from_old[i], &once[i], sizeof(float)) != 0;
        } else bad[2] += memcmp(&from_old[i], &old[i], sizeof(float)) != 0;
    }
}

/* Compare two arrays elementwise: |a-b| <= atol + rtol*max(|a|,|b|).
 * Prints the worst element and up to 3 offenders; returns 1 when all agree. */
static inline int test_allclose(const char *what, const float *a, const float *b, size_t n, double rtol,
                                double atol) {
    size_t bad = 0, worst = 0;
    double worst_excess = -1.0;
    for (size_t i = 0; i < n; i++) {
        double x = a[i], y = b[i];
        double lim = atol + rtol * fmax(fabs(x), fabs(y));
        double err = fabs(x - y);
        if (!(err <= lim)) {
            if (bad < 3) printf("    %s[%zu]: %.8g vs %.8g (|diff| %.3g > %.3g)\n", what, i, x, y, err, lim);
            bad++;
        }
        double excess = (lim > 0 ? err / lim : err);
        if (excess > worst_excess || isnan(err)) { worst_excess = excess; worst = i; }
    }
    if (bad)
        printf("    %s: %zu of %zu differ; worst [%zu] %.8g vs %.8g\n", what, bad, n, worst, a[worst], b[worst]);
    return bad == 0;
}

/* Central finite differences of a scalar loss in double:
 * numeric[i] = (f(p_i + h) - f(p_i - h)) / (p_i+h - (p_i-h)), using the step
 * actually representable in float. `f` recomputes the loss from scratch. */
typedef double (*test_loss_fn)(void *ctx);
static inline void test_fd_grad(test_loss_fn f, void *ctx, float *p, size_t n, double eps, float *numeric) {
    for (size_t i = 0; i < n; i++) {
        float orig = p[i];
        float hi = (float)(orig + eps), lo = (float)(orig - eps);
        p[i] = hi;
        double fp = f(ctx);
        p[i] = lo;
        double fm = f(ctx);
        p[i] = orig;
        numeric[i] = (float)((fp - fm) / ((double)hi - (double)lo));
    }
}

/* Five-point central differences, truncation error O(h^4): lets h be ten
 * times larger than test_fd_grad's for the same accuracy, so float rounding
 * in f (which is amplified by 1/h) drops by as much. Costs 4 evaluations. */
static inline void test_fd_grad4(test_loss_fn f, void *ctx, float *p, size_t n, double eps, float *numeric) {
    for (size_t i = 0; i < n; i++) {
        float orig = p[i];
        double v[4];
        const double k[4] = {-2, -1, 1, 2};
        for (int j = 0; j < 4; j++) {
            p[i] = (float)(orig + k[j] * eps);
            v[j] = f(ctx);
        }
        p[i] = orig;
        numeric[i] = (float)((8.0 * (v[2] - v[1]) - (v[3] - v[0])) / (12.0 * eps));
    }
}

/* A fixed random projection turns any output tensor into a scalar loss:
 * L = sum_i r_i * out_i (accumulated in double); dL/dout = r. */
static inline double test_dot(const float *r, const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)r[i] * (double)x[i];
    return s;
}

#endif
