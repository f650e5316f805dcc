/*
 * fastmath.h - a vectorisable exp for the hot loops (selective scan, softmax).
 *
 * glibc's expf is a scalar call, so a loop of them never vectorises, and in
 * the selective scan one exp per (t, channel, state) is about 60% of the
 * work. fm_expf is plain arithmetic (Cody-Waite range reduction, the Cephes
 * degree-6 polynomial, the exponent built from integer bits), so GCC turns a
 * `#pragma omp simd` loop of it into SIMD code. It is exact to about 2 ulp
 * over the whole float range (tests/core/test_fastmath.c measures it),
 * flushes arguments below -87.3 to exp(-87.3) ~ 1.2e-38 and saturates above
 * 88 at exp(88). Deterministic: no libm, no FMA contraction under -std=c11.
 */
#ifndef ICL_FASTMATH_H
#define ICL_FASTMATH_H

#include <stdint.h>
#include <string.h>

static inline float fm_expf(float x) {
    x = x < -87.33654f ? -87.33654f : x;
    x = x > 88.0f ? 88.0f : x;
    /* k = round(x / ln 2) by the 1.5 * 2^23 trick (exact for |k| < 2^22) */
    float k = x * 1.44269504088896341f;
    k = (k + 12582912.0f) - 12582912.0f;
    /* r = x - k ln 2, with ln 2 split in two so r is exact */
    float r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23; /* 2^k, k in [-126, 127] */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

#endif
