/*
 * test_vec16.c - the 16-lane helpers of src/core/vec16.h against naive
 * twins: the in-register transposes (16 x 16 and 8 x 8) element by element,
 * v16_set1 lane by lane, the tree sum against
 * a double sum (and exactly on small integers, where every order is exact),
 * the lane max and the tree max against a loop, NaN included (v16_max takes
 * b where a is NaN, as `a > b ? a : b` does).
 */
#include "core/vec16.h"
#include "testlib.h"

static void test_transpose(void) {
    test_rng rng = {test_seed()};
    for (int rep = 0; rep < 100; rep++) {
        float m[16][16];
        v16 r[16];
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 16; j++) m[i][j] = test_rng_normal(&rng);
        for (int i = 0; i < 16; i++) r[i] = v16_load(m[i]);
        v16_transpose(r);
        int bad = 0;
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 16; j++) bad += r[i][j] != m[j][i];
        CHECK(bad == 0, "rep %d: %d elements not transposed", rep, bad);
        v16_transpose(r); /* twice: the identity */
        for (int i = 0; i < 16; i++)
            for (int j = 0; j < 16; j++) bad += r[i][j] != m[i][j];
        CHECK(bad == 0, "rep %d: transposing twice is not the identity (%d)", rep, bad);
    }
}

/* v8_transpose (the 8 x 8 blocks of builds without AVX-512) against the
 * element-by-element twin, and v16_set1 against a lane loop. */
static void test_transpose8_set1(void) {
    test_rng rng = {test_seed() + 2};
    for (int rep = 0; rep < 100; rep++) {
        float m[8][8];
        v8 r[8];
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++) m[i][j] = test_rng_normal(&rng);
        for (int i = 0; i < 8; i++) r[i] = v8_load(m[i]);
        v8_transpose(r);
        int bad = 0;
        for (int i = 0; i < 8; i++)
            for (int j = 0; j < 8; j++) bad += r[i][j] != m[j][i];
        CHECK(bad == 0, "rep %d: %d elements not transposed", rep, bad);
        const float x = m[rep % 8][rep % 7];
        const v16 b = v16_set1(x);
        for (int j = 0; j < 16; j++) bad += b[j] != x;
        CHECK(bad == 0, "rep %d: v16_set1(%g) has %d lanes wrong", rep, x, bad);
    }
}

static void test_hsum_hmax(void) {
    test_rng rng = {test_seed() + 1};
    double worst = 0;
    for (int rep = 0; rep < 1000; rep++) {
        float x[16];
        double want = 0, scale = 0;
        float mx = -INFINITY;
        for (int j = 0; j < 16; j++) {
            x[j] = test_rng_normal(&rng) * (rep % 7 + 1);
            want += x[j];
            scale += fabs(x[j]);
            mx = x[j] > mx ? x[j] : mx;
        }
        const v16 v = v16_load(x);
        worst = fmax(worst, fabs(v16_hsum(v) - want) / scale);
        CHECK(v16_hmax(v) == mx, "rep %d: max %g, want %g", rep, v16_hmax(v), mx);
    }
    printf("  hsum: worst |error| / sum |x| = %.3g\n", worst);
    /* 15 float adds: at most ~4 roundings on any lane's path (a tree of depth 4) */
    CHECK(worst < 4 * 6e-8, "hsum error %.3g of sum |x|", worst);
    float ints[16];
    for (int j = 0; j < 16; j++) ints[j] = (float)(j * j - 40);
    CHECK(v16_hsum(v16_load(ints)) == 1240.0f - 640.0f, "hsum of integers: %g", v16_hsum(v16_load(ints)));
    /* lane max and its NaN rule, lane by lane */
    float a[16], b[16];
    for (int j = 0; j < 16; j++) a[j] = (float)j - 8.0f, b[j] = (float)(15 - j) - 8.0f;
    a[3] = NAN, b[5] = NAN;
    const v16 m = v16_max(v16_load(a), v16_load(b));
    int bad = 0;
    for (int j = 0; j < 16; j++) {
        float w = a[j] > b[j] ? a[j] : b[j];
        bad += !(m[j] == w || (isnan(m[j]) && isnan(w)));
    }
    CHECK(bad == 0, "v16_max differs from a > b ? a : b in %d lanes", bad);
    float neg[16];
    for (int j = 0; j < 16; j++) neg[j] = -INFINITY;
    neg[11] = -3.0f;
    CHECK(v16_hmax(v16_load(neg)) == -3.0f, "hmax with -inf lanes: %g", v16_hmax(v16_load(neg)));
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    TEST_RUN(test_transpose);
    TEST_RUN(test_transpose8_set1);
    TEST_RUN(test_hsum_hmax);
    return test_finish();
}
