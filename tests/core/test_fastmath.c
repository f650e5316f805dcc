/*
 * test_fastmath.c - fm_expf (core/fastmath.h) against exp in double:
 * relative error at most 3e-7 (about 2.5 ulp) over the whole normal range,
 * the documented clamps, and monotonicity on a fine grid of the scan's
 * range (delta * A is in [-50, 0] in practice).
 */
#include <math.h>

#include "core/fastmath.h"
#include "testlib.h"

static void test_accuracy(void) {
    test_rng r = {test_seed()};
    double worst = 0, at = 0;
    for (int i = 0; i < 2000000; i++) {
        float x = (float)(-87.0 + 175.0 * test_rng_uniform(&r));
        if (x > 88.0f) continue;
        double want = exp((double)x), got = fm_expf(x);
        double rel = fabs(got - want) / want;
        if (rel > worst) { worst = rel; at = x; }
    }
    printf("    worst relative error %.3g at x = %.9g\n", worst, at);
    CHECK(worst <= 3e-7, "fm_expf relative error %.3g at %.9g exceeds 3e-7", worst, at);
    CHECK(fm_expf(0.0f) == 1.0f, "exp(0) must be exactly 1, got %.9g", fm_expf(0.0f));
}

static void test_clamps(void) {
    CHECK(fm_expf(-1000.0f) > 0 && fm_expf(-1000.0f) < 1.3e-38f, "very negative -> tiny positive, got %g",
          fm_expf(-1000.0f));
    CHECK(isfinite(fm_expf(1000.0f)) && fm_expf(1000.0f) > 1e38f, "very positive saturates finite, got %g",
          fm_expf(1000.0f));
    CHECK(fm_expf(-INFINITY) >= 0 && fm_expf(-INFINITY) < 1.3e-38f, "-inf -> ~0");
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

int main(int argc, char **argv) {
    test_init(argc, argv);
    TEST_RUN(test_accuracy);
    TEST_RUN(test_clamps);
    TEST_RUN(test_monotone);
    return test_finish();
}
