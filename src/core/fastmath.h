/*
 * fastmath.h - a vectorisable exp for the hot loops (selective scan, softmax).
 *
 * glibc's expf is a scalar call, so a loop of them never vectorises, and in
 * the selective scan one exp per (t, channel, state) is about 60% of the
 * work. fm_expf is plain arithmetic (Cody-Waite range reduction, the Cephes
 * degree-6 polynomial, the exponent built from integer bits), so GCC turns a
 * `#pragma omp simd` loop of it into SIMD code. It is exact to about 2 ulp
 * over the normal float range (tests/core/test_fastmath.c measures it),
 * returns 0 below -87.34 (where exp is subnormal: flushed, like FTZ hardware)
 * saturates above 88 at exp(88) and keeps NaN a NaN. Deterministic: no libm
 * and no implicit FMA contraction (-std=c11); the Horner steps use fmaf
 * explicitly where the target has FMA (__FP_FAST_FMAF, e.g. -march=native on
 * x86-64-v3 and later): one exactly rounded operation instead of two, so
 * still the same bits on every such machine, and about a third fewer
 * instructions per exp (the selective scan spends most of its time here).
 * Without hardware FMA (the portable valgrind build) they are a multiply
 * and an add.
 * fm_exp2f is the same for 2^x with a cheaper range reduction (the scan).
 * fm_logf, fm_sigmoidf and fm_softplusf are built the same way for the
 * elementwise activations (act.c) and the Mamba gate.
 */
#ifndef ICL_FASTMATH_H
#define ICL_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__FP_FAST_FMAF)
#define FM_FMA(a, b, c) fmaf((a), (b), (c))
#else
#define FM_FMA(a, b, c) ((a) * (b) + (c))
#endif

/* 2^k from t = k + 1.5 * 2^23 (k an integer in [-127, 127] in t's low
 * mantissa bits): the exponent field (k + 127) << 23, read from t's bits,
 * so no float is converted to int (a NaN t gives some float, never
 * undefined behaviour); k = -127 gives exactly 0. The exps below share it. */
static inline __attribute__((always_inline)) float fm_pow2_rounded(float t) {
    uint32_t tb;
    memcpy(&tb, &t, sizeof tb);
    uint32_t bits = (tb - 0x4B400000u + 127u) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return scale;
}

/* e^x for x already in [-88, 88] (or NaN): k = round(x / ln 2) by the
 * 1.5 * 2^23 trick, r = x - k ln 2 with ln 2 split in two so r is exact, a
 * degree-6 polynomial in r (Cephes' expf) and 2^k; fm_expf and
 * fm_expf_nonpos share it, as fm_exp2f and fm_exp2f_nonpos share
 * fm_exp2f_core. */
static inline __attribute__((always_inline)) float fm_expf_core(float x) {
    float t = x * 1.44269504088896341f + 12582912.0f;
    float k = t - 12582912.0f;
    float r = FM_FMA(k, -0.693359375f, x);
    r = FM_FMA(k, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = FM_FMA(p, r, 1.3981999507e-3f);
    p = FM_FMA(p, r, 8.3334519073e-3f);
    p = FM_FMA(p, r, 4.1665795894e-2f);
    p = FM_FMA(p, r, 1.6666665459e-1f);
    p = FM_FMA(p, r, 5.0000001201e-1f);
    p = FM_FMA(p, r * r, r) + 1.0f;
    return p * fm_pow2_rounded(t);
}

static inline __attribute__((always_inline)) float fm_expf(float xin) {
    /* clamped to where 2^k is a normal float (a NaN becomes -87.33 here,
     * and NaN again at the end) */
    float x = xin > -87.33654f ? xin : -87.33654f;
    x = x < 88.0f ? x : 88.0f;
    float r = fm_expf_core(x);
    /* below FLT_MIN's log the true result is subnormal or 0: flush to 0 */
    return xin < -87.33654f ? 0.0f : xin == xin ? r : xin;
}

/* 2^x for x already in [-127, 127] (or NaN): the polynomial and the
 * exponent bits that fm_exp2f and fm_exp2f_nonpos share. */
static inline __attribute__((always_inline)) float fm_exp2f_core(float x) {
    float t = x + 12582912.0f;    /* 1.5 * 2^23: round(x) lands in the low mantissa bits */
    float f = x - (t - 12582912.0f); /* exact */
    float p = 1.5594677549e-4f;
    p = FM_FMA(p, f, 1.3406643905e-3f);
    p = FM_FMA(p, f, 9.6176929749e-3f);
    p = FM_FMA(p, f, 5.5503105510e-2f);
    p = FM_FMA(p, f, 2.4022652783e-1f);
    p = FM_FMA(p, f, 6.9314721497e-1f);
    p = FM_FMA(p, f, 1.0f);
    return p * fm_pow2_rounded(t);
}

/* 2^x: the selective scan's exp, exp(delta A) = 2^(delta A log2 e) with
 * A log2 e precomputed once per call (core/scan.c). In base 2 the range
 * reduction needs no Cody-Waite split: k = round(x) and f = x - k are both
 * exact (f in [-0.5, 0.5]), and 2^f is a degree-6 polynomial with relative
 * error 2.6e-9 (minimax on [-0.5, 0.5], coefficients from a Remez exchange;
 * about 1 ulp with the Horner rounding). The exponent comes straight from
 * the bits of x + 1.5 * 2^23, so no float-to-int conversion either: about
 * 15 vector operations against fm_expf's 24. 0 below -126 (subnormal
 * results flushed, as fm_expf), 2^127 above 127, NaN stays NaN. */
static inline __attribute__((always_inline)) float fm_exp2f(float xin) {
    float x = xin > -126.0f ? xin : -126.0f; /* NaN becomes -126 here, NaN again at the end */
    x = x < 127.0f ? x : 127.0f;
    float r = fm_exp2f_core(x);
    return xin < -126.0f ? 0.0f : xin == xin ? r : xin;
}

/* fm_exp2f for x <= 0 or NaN only (the selective scan's decays, 2^(delta
 * A log2 e) with delta >= 0 and A < 0): the same bits as fm_exp2f on
 * [-126, 0] with fewer instructions around the polynomial (about 25 ->
 * 19 in the scan's loops). One clamp below, written so that a NaN passes
 * through it (and the polynomial of a NaN is NaN); no upper clamp and no
 * final select: below -127 the exponent field is 0, so 2^k and the result
 * are exactly 0; on [-127, -126) the result is p 2^-126 (subnormal) where
 * fm_exp2f flushes to 0. Positive x is out of its domain (wrong above 127). */
static inline __attribute__((always_inline)) float fm_exp2f_nonpos(float xin) {
    return fm_exp2f_core(-127.0f > xin ? -127.0f : xin);
}

/* fm_exp2f_nonpos on 16 lanes, for the selective scan's register-blocked
 * kernels (core/scan.c), which hold their states in AVX-512 registers and so
 * cannot go through an `omp simd` loop of the scalar. The same operations in
 * the same order, so the same bits lane by lane (tests/core/test_fastmath.c
 * compares the two over [-140, 0], NaN included). max(-127, x) keeps a NaN
 * x, as the scalar's select does (vmaxps returns its second operand when
 * either is NaN). Only where the target has AVX-512 and FMA. */
#if defined(__AVX512F__) && defined(__FP_FAST_FMAF)
#include <immintrin.h>
#define FM_HAVE_V16 1
static inline __attribute__((always_inline)) __m512 fm_exp2f_nonpos_v16(__m512 xin) {
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 x = _mm512_max_ps(_mm512_set1_ps(-127.0f), xin);
    __m512 t = _mm512_add_ps(x, magic);
    __m512 f = _mm512_sub_ps(x, _mm512_sub_ps(t, magic));
    __m512 p = _mm512_set1_ps(1.5594677549e-4f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3406643905e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6176929749e-3f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5503105510e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022652783e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314721497e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    /* (bits(t) - 0x4B400000 + 127) << 23, the scalar's unsigned arithmetic */
    __m512i k = _mm512_add_epi32(_mm512_castps_si512(t), _mm512_set1_epi32((int32_t)(127u - 0x4B400000u)));
    return _mm512_mul_ps(p, _mm512_castsi512_ps(_mm512_slli_epi32(k, 23)));
}
#endif

/* Natural log of a positive normal float (Cephes' logf: x = m 2^e with m in
 * [sqrt(1/2), sqrt(2)), a degree-8 polynomial in m - 1). About 1 ulp; not
 * for zero, negatives, denormals, inf or NaN (the callers never pass them). */
static inline __attribute__((always_inline)) float fm_logf(float x) {
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    int32_t e = ((bits >> 23) & 0xff) - 126; /* x = m 2^e, m in [0.5, 1) */
    bits = (bits & (int32_t)0x807fffff) | 0x3f000000;
    float m;
    memcpy(&m, &bits, sizeof m);
    float small = m < 0.707106781186547524f ? 1.0f : 0.0f; /* move m to [sqrt(1/2), sqrt(2)) */
    e -= (int32_t)small;
    m = m + m * small - 1.0f;
    float z = m * m;
    float y = 7.0376836292e-2f;
    y = FM_FMA(y, m, -1.1514610310e-1f);
    y = FM_FMA(y, m, 1.1676998740e-1f);
    y = FM_FMA(y, m, -1.2420140846e-1f);
    y = FM_FMA(y, m, 1.4249322787e-1f);
    y = FM_FMA(y, m, -1.6668057665e-1f);
    y = FM_FMA(y, m, 2.0000714765e-1f);
    y = FM_FMA(y, m, -2.4999993993e-1f);
    y = FM_FMA(y, m, 3.3333331174e-1f);
    y = y * m * z;
    float fe = (float)e;
    y += -2.12194440e-4f * fe;
    y += -0.5f * z;
    return m + y + 0.693359375f * fe;
}

/* log(1 + u) for u in [0, 1], accurate to a few ulp relative even for tiny
 * u: with w = 1 + u rounded, log1p(u) = log(w) + (u - (w - 1)) / w, the
 * second term correcting the rounding of w (u itself when w rounds to 1).
 * No branches and no division by a possible zero, so loops vectorise. */
static inline __attribute__((always_inline)) float fm_log1pf_unit(float u) {
    float w = 1.0f + u;
    return fm_logf(w) + (u - (w - 1.0f)) / w;
}

/* fm_expf for x <= 0 or NaN only: the same bits as fm_expf on [-87.33, 0]
 * with no selects around the polynomial. One clamp below, at -88, where
 * k = -127 makes 2^k and the result exactly 0 (on [-88, -87.33) a subnormal
 * or 0 where fm_expf flushes to 0); a NaN passes the clamp and the
 * polynomial of a NaN is NaN. Positive x is out of its domain. */
static inline __attribute__((always_inline)) float fm_expf_nonpos(float xin) {
    return fm_expf_core(-88.0f > xin ? -88.0f : xin);
}

/* SiLU'(x) = s (1 + x (1 - s)) from s = sigmoid(x): the factor that
 * act.c's silu_backward multiplies by, conv1d's fused forward keeps, and the
 * Mamba gate keeps for dz; one expression, so the three agree bit for bit. */
static inline __attribute__((always_inline)) float fm_silu_grad(float x, float s) {
    return s * (1.0f + x * (1.0f - s));
}

/* sigmoid(x), evaluating exp of a non-positive number only. No select
 * comes before the division: with fm_expf's final selects GCC if-converted
 * the division into three masked vdivps, each on its own path (GELU
 * forward: 48 cycles per 16 floats). */
static inline __attribute__((always_inline)) float fm_sigmoidf(float x) {
    float e = fm_expf_nonpos(-fabsf(x));
    float r = 1.0f / (1.0f + e);
    return x >= 0.0f ? r : e * r;
}

/* softplus(x) = log(1 + e^x) = max(x, 0) + log1p(e^-|x|); the identity above
 * 20, where the correction is below half an ulp of x. */
static inline __attribute__((always_inline)) float fm_softplusf(float x) {
    float sp = (x > 0.0f ? x : 0.0f) + fm_log1pf_unit(fm_expf(-fabsf(x)));
    return x > 20.0f ? x : sp;
}

/* fm_softplusf over x[0..m), m <= FM_SOFTPLUS_BLOCK, into o: three loops
 * through a stack buffer, e = exp(-|x|), e = log1p(e), max(x, 0) + e. As
 * one loop of fm_softplusf, GCC's jump threading splits the body on the
 * known sign of -|x| and the loop no longer vectorises (18 ns an element
 * instead of under 1). The same bits as fm_softplusf. */
#define FM_SOFTPLUS_BLOCK 256
static inline __attribute__((always_inline)) void fm_softplus_block(float *restrict o, const float *restrict x,
                                                                    int m) {
    float e[FM_SOFTPLUS_BLOCK];
#pragma omp simd
    for (int i = 0; i < m; i++) e[i] = fm_expf(-fabsf(x[i]));
#pragma omp simd
    for (int i = 0; i < m; i++) e[i] = fm_log1pf_unit(e[i]);
#pragma omp simd
    for (int i = 0; i < m; i++) {
        float sp = (x[i] > 0.0f ? x[i] : 0.0f) + e[i];
        o[i] = x[i] > 20.0f ? x[i] : sp; /* identity above 20, as fm_softplusf */
    }
}

#endif
