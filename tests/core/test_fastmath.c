/*
 * test_fastmath.c - fm_expf (core/fastmath.h) against exp in double:
 * relative error at most 3e-7 (about 2.5 ulp) over the whole normal range,
 * subnormal results flushed to 0,
 * the documented clamps, and monotonicity on a fine grid of the scan's
 * range (delta * A is in [-50, 0] in practice). fm_exp2f (the scan's exp)
 * the same way against exp2 in double, exact at integers.
 */
#include <math.h>

#include "core/fastmath.h"
#include "testlib.h"

/* Worst relative error of f against ref in double over 2e6 random x in
 * [lo, hi]; *at: where. */
static double worst_relative(float (*f)(float), double (*ref)(double), double lo, double hi, uint64_t seed,
                             double *at) {
    test_rng r = {seed};
    double worst = 0;
    for (int i = 0; i < 2000000; i++) {
        float x = (float)(lo + (hi - lo) * test_rng_uniform(&r));
        if (x > hi) continue;
        double want = ref((double)x), rel = fabs(f(x) - want) / want;
        if (rel > worst) { worst = rel; *at = x; }
    }
    return worst;
}

static float expf_fm(float x) { return fm_expf(x); }
static float exp2f_fm(float x) { return fm_exp2f(x); }

static void test_accuracy(void) {
    double at = 0, worst = worst_relative(expf_fm, exp, -87.0, 88.0, test_seed(), &at);
    printf("    worst relative error %.3g at x = %.9g\n", worst, at);
    CHECK(worst <= 3e-7, "fm_expf relative error %.3g at %.9g exceeds 3e-7", worst, at);
    CHECK(fm_expf(0.0f) == 1.0f, "exp(0) must be exactly 1, got %.9g", fm_expf(0.0f));
}

static void test_clamps(void) {
    CHECK(fm_expf(-1000.0f) == 0.0f && fm_expf(-87.4f) == 0.0f, "subnormal results flush to 0, got %g",
          fm_expf(-1000.0f));
    CHECK(fm_expf(-87.3f) > 1.17e-38f, "exp(-87.3) is the smallest normal result, got %g", fm_expf(-87.3f));
    CHECK(isfinite(fm_expf(1000.0f)) && fm_expf(1000.0f) > 1e38f, "very positive saturates finite, got %g",
          fm_expf(1000.0f));
    CHECK(fm_expf(-INFINITY) == 0.0f, "-inf -> 0");
    CHECK(fm_expf(INFINITY) == fm_expf(88.0f), "+inf saturates like 88, got %g", fm_expf(INFINITY));
    /* a NaN must come out as a NaN (a step with NaN activations is then
     * refused), and without converting NaN to an int on the way (UB) */
    volatile float nan_in = NAN;
    CHECK(isnan(fm_expf(nan_in)), "NaN -> NaN, got %g", fm_expf(nan_in));
    CHECK(isnan(fm_sigmoidf(nan_in)) && isnan(fm_softplusf(nan_in)), "sigmoid and softplus keep NaN");
}

static void test_monotone(void) {
    float prev = fm_expf(-50.0f);
    int bad = 0;
    for (int i = 1; i <= 500000; i++) {
        float x = -50.0f + 50.0f * (float)i / 500000.0f, v = fm_expf(x);
        if (v < prev) bad++;
        prev = v;
    }
    CHECK(bad == 0, "%d decreases on [-50, 0]", bad);
}

/* fm_exp2f over its whole normal range against exp2 in double; exact at
 * integers (2^k is only the exponent bits); the clamps and NaN. */
static void test_exp2(void) {
    double at = 0, worst = worst_relative(exp2f_fm, exp2, -126.0, 127.0, test_seed() + 2, &at);
    printf("    fm_exp2f worst relative error %.3g at x = %.9g\n", worst, at);
    CHECK(worst <= 1.5e-7, "fm_exp2f relative error %.3g at %.9g exceeds 1.5e-7", worst, at);
    int inexact = 0;
    for (int k = -126; k <= 127; k++)
        if (fm_exp2f((float)k) != ldexpf(1.0f, k)) inexact++;
    CHECK(inexact == 0, "%d integer powers of 2 not exact", inexact);
    CHECK(fm_exp2f(-126.5f) == 0.0f && fm_exp2f(-1000.0f) == 0.0f && fm_exp2f(-INFINITY) == 0.0f,
          "below -126 flushes to 0, got %g", fm_exp2f(-126.5f));
    CHECK(fm_exp2f(1000.0f) == ldexpf(1.0f, 127) && fm_exp2f(INFINITY) == ldexpf(1.0f, 127),
          "above 127 saturates at 2^127, got %g", fm_exp2f(1000.0f));
    volatile float nan_in = NAN;
    CHECK(isnan(fm_exp2f(nan_in)), "NaN -> NaN, got %g", fm_exp2f(nan_in));
    float prev = fm_exp2f(-72.0f);
    int bad = 0;
    for (int i = 1; i <= 500000; i++) {
        float x = -72.0f + 72.0f * (float)i / 500000.0f, v = fm_exp2f(x);
        if (v < prev) bad++;
        prev = v;
    }
    CHECK(bad == 0, "fm_exp2f: %d decreases on [-72, 0]", bad);
}

static float exp2f_nonpos_fn(float x) { return fm_exp2f_nonpos(x); }
static float exp2f_fn(float x) { return fm_exp2f(x); }
static float expf_nonpos_fn(float x) { return fm_expf_nonpos(x); }
static float expf_fn(float x) { return fm_expf(x); }

/* How often a _nonpos exp differs in its bits from the general one over
 * every float of [-1, 0) and 1e6 random draws in [lo, 0]. */
static int nonpos_differ(const char *name, float (*f)(float), float (*ref)(float), float lo, uint64_t seed) {
    int differ = 0;
    float x = -1.0f;
    while (x < 0.0f) { /* every float in [-1, 0): steps of one ulp */
        float a = f(x), b = ref(x);
        if (memcmp(&a, &b, sizeof a)) differ++;
        x = nextafterf(x, 0.0f);
    }
    test_rng r = {seed};
    for (int i = 0; i < 1000000; i++) {
        float y = (float)(lo * test_rng_uniform(&r));
        if (f(y) != ref(y)) differ++;
    }
    printf("    %s: %d of the floats in [-1, 0) and 1e6 draws in [%g, 0] differ\n", name, differ, lo);
    return differ;
}

/* fm_exp2f_nonpos: the same bits as fm_exp2f on [-126, 0] (every float of
 * [-1, 0), and random draws below), 0 below -127, NaN -> NaN, and no
 * larger than 2^-126 on [-127, -126) (where fm_exp2f flushes to 0). */
static void test_exp2_nonpos(void) {
    int differ = nonpos_differ("fm_exp2f_nonpos vs fm_exp2f", exp2f_nonpos_fn, exp2f_fn, -126.0f, test_seed() + 5);
    CHECK(differ == 0, "fm_exp2f_nonpos differs from fm_exp2f %d times on [-126, 0]", differ);
    CHECK(fm_exp2f_nonpos(0.0f) == 1.0f && fm_exp2f_nonpos(-0.0f) == 1.0f, "2^0 = %g", fm_exp2f_nonpos(0.0f));
    CHECK(fm_exp2f_nonpos(-127.5f) == 0.0f && fm_exp2f_nonpos(-1000.0f) == 0.0f && fm_exp2f_nonpos(-3e38f) == 0.0f,
          "below -127: %g", fm_exp2f_nonpos(-1000.0f));
    float sub = fm_exp2f_nonpos(-126.4f);
    CHECK(sub >= 0.0f && sub <= ldexpf(1.0f, -126), "[-127, -126): %g", sub);
    volatile float nan_in = NAN;
    CHECK(isnan(fm_exp2f_nonpos(nan_in)) && isnan(fm_exp2f_nonpos(-nan_in)), "NaN -> NaN, got %g",
          fm_exp2f_nonpos(nan_in));
}

/* fm_expf_nonpos (the sigmoid's exp): the same bits as fm_expf on
 * [-87.33, 0], 0 at and below -88, NaN -> NaN, and no larger than 2^-126
 * on [-88, -87.33) (where fm_expf flushes to 0). */
static void test_exp_nonpos(void) {
    int differ = nonpos_differ("fm_expf_nonpos vs fm_expf", expf_nonpos_fn, expf_fn, -87.33f, test_seed() + 6);
    CHECK(differ == 0, "fm_expf_nonpos differs from fm_expf %d times on [-87.33, 0]", differ);
    CHECK(fm_expf_nonpos(0.0f) == 1.0f && fm_expf_nonpos(-0.0f) == 1.0f, "e^0 = %g", fm_expf_nonpos(0.0f));
    CHECK(fm_expf_nonpos(-88.0f) == 0.0f && fm_expf_nonpos(-1000.0f) == 0.0f && fm_expf_nonpos(-3e38f) == 0.0f &&
              fm_expf_nonpos(-INFINITY) == 0.0f,
          "at and below -88: %g", fm_expf_nonpos(-1000.0f));
    float sub = fm_expf_nonpos(-87.5f);
    CHECK(sub >= 0.0f && sub <= ldexpf(1.0f, -126), "[-88, -87.33): %g", sub);
    volatile float nan_in = NAN;
    CHECK(isnan(fm_expf_nonpos(nan_in)) && isnan(fm_expf_nonpos(-nan_in)), "NaN -> NaN, got %g",
          fm_expf_nonpos(nan_in));
}

/* fm_exp2f_nonpos_v16 (the scan's register-blocked kernels): the scalar's
 * bits in every lane, over random draws in [-140, 0] (past the -127
 * clamp) and of magnitudes down to 1e-38, and the edges: 0, -0, -127, -1000,
 * -inf and NaN of both signs. */
static void test_exp2_v16(void) {
#ifdef FM_HAVE_V16
    enum { NL = 16 };
    float in[NL], out[NL];
    long differ = 0, n = 0;
    test_rng r = {test_seed() + 6};
    /* 2^22 draws: uniform on [-140, 0] and log-uniform magnitudes in [1e-38, 1) */
    for (int batch = 0; batch < (1 << 22) / NL; batch++) {
        for (int l = 0; l < NL; l++)
            in[l] = (float)(l % 2 ? -140.0 * test_rng_uniform(&r) : -exp(-87.0 * test_rng_uniform(&r)));
        _mm512_storeu_ps(out, fm_exp2f_nonpos_v16(_mm512_loadu_ps(in)));
        for (int l = 0; l < NL; l++, n++) {
            float want = fm_exp2f_nonpos(in[l]);
            if (memcmp(&want, &out[l], sizeof want)) differ++;
        }
    }
    volatile float nan_in = NAN;
    const float edge[NL] = {0.0f, -0.0f, -127.0f, -126.5f, -127.5f, -1000.0f, -INFINITY, nan_in, -nan_in,
                            -1e-30f, -0.5f, -1.5f, -63.25f, -3e38f, -126.0f, -1e-45f};
    _mm512_storeu_ps(out, fm_exp2f_nonpos_v16(_mm512_loadu_ps(edge)));
    int edge_bad = 0;
    for (int l = 0; l < NL; l++) {
        float want = fm_exp2f_nonpos(edge[l]);
        if (isnan(want) ? !isnan(out[l]) : memcmp(&want, &out[l], sizeof want)) {
            printf("    edge %g: scalar %a, 16 lanes %a\n", edge[l], want, out[l]);
            edge_bad++;
        }
    }
    printf("    fm_exp2f_nonpos_v16 vs the scalar: %ld of %ld inputs differ, %d of %d edges\n", differ, n, edge_bad,
           NL);
    CHECK(differ == 0 && edge_bad == 0, "fm_exp2f_nonpos_v16 differs from fm_exp2f_nonpos (%ld, %d edges)", differ,
          edge_bad);
#else
    printf("    no AVX-512 with FMA on this target: fm_exp2f_nonpos_v16 is not compiled, nothing uses it\n");
#endif
}

/* fm_logf on [1e-30, 1e30] and fm_log1pf_unit on [0, 1] against double. */
static void test_log(void) {
    test_rng r = {test_seed() + 1};
    double worst = 0, at = 0, worst1 = 0, at1 = 0;
    for (int i = 0; i < 1000000; i++) {
        float x = (float)exp(-69.0 + 138.0 * test_rng_uniform(&r));
        double want = log((double)x), got = fm_logf(x);
        double err = fabs(got - want) / fmax(fabs(want), 1e-30);
        if (fabs(want) > 1e-3 && err > worst) { worst = err; at = x; }
        float u = (float)pow(10.0, -12.0 * test_rng_uniform(&r));
        double w1 = log1p((double)u), g1 = fm_log1pf_unit(u);
        double e1 = fabs(g1 - w1) / w1;
        if (e1 > worst1) { worst1 = e1; at1 = u; }
    }
    printf("    fm_logf worst relative error %.3g at %.9g; fm_log1pf_unit %.3g at %.9g\n", worst, at, worst1, at1);
    CHECK(worst <= 3e-7, "fm_logf relative error %.3g at %.9g", worst, at);
    CHECK(worst1 <= 5e-7, "fm_log1pf_unit relative error %.3g at %.9g", worst1, at1);
    CHECK(fm_logf(1.0f) == 0.0f, "log(1) = %.9g", fm_logf(1.0f));
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    TEST_RUN(test_accuracy);
    TEST_RUN(test_exp2_nonpos);
    TEST_RUN(test_exp_nonpos);
    TEST_RUN(test_exp2_v16);
    TEST_RUN(test_clamps);
    TEST_RUN(test_monotone);
    TEST_RUN(test_exp2);
    TEST_RUN(test_log);
    return test_finish();
}
