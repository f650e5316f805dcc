/*
 * vec16.h - 16 floats as one value, for kernels that keep a row of 16
 * channels in a register across a loop (GCC/Clang vector extension: one
 * AVX-512 register, two AVX2, four SSE; the same C on every target).
 *
 * Arithmetic on v16 is element-wise and, under -std=c11, never contracted
 * into FMAs, so a v16 loop gives the bits of the scalar loop it replaces.
 * v16_fma is the one fused operation: it rounds once where the target has
 * FMA (__FP_FAST_FMAF), as fastmath.h's FM_FMA does, so a scalar loop with
 * FM_FMA gives its bits. Loads and stores go through memcpy: no alignment
 * is assumed.
 *
 * v8, its half, is for the paths of targets without AVX-512: there GCC
 * keeps a v16 in two registers only while few are live; a kernel with a
 * dozen or more in flight, or a 16-lane shuffle or broadcast, went through
 * the stack element by element (the S4D convolution and attention 3-5x
 * slower than their 8-lane versions in an AVX2 build).
 */
#ifndef ICL_VEC16_H
#define ICL_VEC16_H

#include <string.h>
#if defined(__FP_FAST_FMAF) && defined(__AVX__)
#include <immintrin.h>
#endif

typedef float v16 __attribute__((vector_size(64)));
/* 8 floats: half a v16, one AVX register. */
typedef float v8 __attribute__((vector_size(32)));

static inline v16 v16_load(const float *p) {
    v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void v16_store(float *p, v16 v) { memcpy(p, &v, sizeof v); }

/* x in every lane (0 + x, as `(v16){0} + x` gives). Without AVX-512 GCC
 * builds the 16-lane broadcast by storing x 16 times and reloading it; an
 * 8-lane broadcast used twice is one vbroadcastss. */
static inline v16 v16_set1(float x) {
#if defined(__AVX512F__)
    return (v16){0} + x;
#else
    const v8 h = (v8){0} + x;
    return __builtin_shufflevector(h, h, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#endif
}

/* a b + c, fused where the target has FMA (one AVX-512 or two AVX
 * instructions), else a multiply and an add. */
static inline v16 v16_fma(v16 a, v16 b, v16 c) {
#if defined(__FP_FAST_FMAF) && defined(__AVX512F__)
    return (v16)_mm512_fmadd_ps((__m512)a, (__m512)b, (__m512)c);
#elif defined(__FP_FAST_FMAF) && defined(__AVX__)
    const v8 lo = (v8)_mm256_fmadd_ps((__m256)__builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7),
                                      (__m256)__builtin_shufflevector(b, b, 0, 1, 2, 3, 4, 5, 6, 7),
                                      (__m256)__builtin_shufflevector(c, c, 0, 1, 2, 3, 4, 5, 6, 7));
    const v8 hi = (v8)_mm256_fmadd_ps((__m256)__builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15),
                                      (__m256)__builtin_shufflevector(b, b, 8, 9, 10, 11, 12, 13, 14, 15),
                                      (__m256)__builtin_shufflevector(c, c, 8, 9, 10, 11, 12, 13, 14, 15));
    return __builtin_shufflevector(lo, hi, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#elif defined(__FP_FAST_FMAF)
    v16 r;
    for (int j = 0; j < 16; j++) r[j] = __builtin_fmaf(a[j], b[j], c[j]);
    return r;
#else
    return a * b + c;
#endif
}

/* Lane masks and index vectors for the shuffles below. */
typedef int v16i __attribute__((vector_size(64)));

/* The larger of a and b lane by lane (b where a is NaN: a > b is false). */
static inline v16 v16_max(v16 a, v16 b) {
    const v16i m = a > b;
    return (v16)(((v16i)a & m) | ((v16i)b & ~m));
}

/* The lanes swapped in halves, quarters, eighths, sixteenths: the four
 * stages of a tree over the 16 lanes. */
static inline v16 v16_swap(v16 v, int stage) {
    static const v16i swap[4] = {{8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7},
                                 {4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11},
                                 {2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13},
                                 {1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14}};
    return __builtin_shuffle(v, swap[stage]);
}

/* The sum and the maximum of the 16 lanes, as a tree of four shuffles:
 * GCC ends an `omp simd` reduction with the lanes added one after the
 * other from the stack, 16 dependent adds (most of a short attention
 * row's softmax). The tree adds in its own fixed order. */
static inline float v16_hsum(v16 v) {
    for (int s = 0; s < 4; s++) v = v + v16_swap(v, s);
    return v[0];
}

static inline float v16_hmax(v16 v) {
    for (int s = 0; s < 4; s++) v = v16_max(v, v16_swap(v, s));
    return v[0];
}

/* r[0..15] transposed in place: r[i][j] <-> r[j][i]. Four butterfly
 * stages; stage d (8, 4, 2, 1) swaps the d x d blocks off the diagonal of
 * every 2d x 2d block, with two-input shuffles (one vpermt2ps each). */
static inline void v16_transpose(v16 r[16]) {
    static const v16i lo[4] = {
        {0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23},
        {0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27},
        {0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29},
        {0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}};
    static const v16i hi[4] = {
        {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31},
        {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31},
        {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31},
        {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}};
    for (int s = 0, d = 8; s < 4; s++, d /= 2)
        for (int i = 0; i < 16; i++)
            if (!(i & d)) {
                const v16 a = r[i], b = r[i + d];
                r[i] = __builtin_shuffle(a, b, lo[s]);
                r[i + d] = __builtin_shuffle(a, b, hi[s]);
            }
}

typedef int v8i __attribute__((vector_size(32)));

static inline v8 v8_load(const float *p) {
    v8 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void v8_store(float *p, v8 v) { memcpy(p, &v, sizeof v); }

/* a b + c on 8 lanes, fused where the target has FMA, as v16_fma. */
static inline v8 v8_fma(v8 a, v8 b, v8 c) {
#if defined(__FP_FAST_FMAF) && defined(__AVX__)
    return (v8)_mm256_fmadd_ps((__m256)a, (__m256)b, (__m256)c);
#elif defined(__FP_FAST_FMAF)
    v8 r;
    for (int j = 0; j < 8; j++) r[j] = __builtin_fmaf(a[j], b[j], c[j]);
    return r;
#else
    return a * b + c;
#endif
}

/* r[0..7] transposed in place: v16_transpose's butterflies on 8 lanes.
 * Without AVX-512 GCC lowers v16_transpose's 16-lane two-input shuffles
 * element by element through the stack (6,000 instructions per 16 x 16
 * block at -march=haswell); these take a few vperm2f128 / vshufps each. */
static inline void v8_transpose(v8 r[8]) {
    static const v8i lo[3] = {{0, 1, 2, 3, 8, 9, 10, 11}, {0, 1, 8, 9, 4, 5, 12, 13}, {0, 8, 2, 10, 4, 12, 6, 14}};
    static const v8i hi[3] = {{4, 5, 6, 7, 12, 13, 14, 15}, {2, 3, 10, 11, 6, 7, 14, 15}, {1, 9, 3, 11, 5, 13, 7, 15}};
    for (int s = 0, d = 4; s < 3; s++, d /= 2)
        for (int i = 0; i < 8; i++)
            if (!(i & d)) {
                const v8 a = r[i], b = r[i + d];
                r[i] = __builtin_shuffle(a, b, lo[s]);
                r[i + d] = __builtin_shuffle(a, b, hi[s]);
            }
}

#endif
