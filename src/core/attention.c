/*
 * attention.c - causal multi-head softmax attention (GPT-2 / nanoGPT's
 * CausalSelfAttention without its two Linear layers).
 *
 * It takes the fused QKV projection, already computed by a GEMM, and gives
 * the heads concatenated, ready for the output projection (another GEMM).
 * It is not a flash-attention kernel. The full (B, NH, T, T) probability
 * tensor is written, because backward reads it and the attention panel
 * draws it. T stays in the low hundreds here (two tokens per in-context
 * example), so T^2 floats per head is cheap.
 *
 * Shapes (B batch, T time, C channels, NH heads, hs = C / NH head size):
 *   qkv  (B, T, 3C)     row (b, t) is [q | k | v], head h at [h*hs, (h+1)*hs)
 *   out  (B, T, C)
 *   att  (B, NH, T, T)  att[b][h][t1][t2], exactly 0 for t2 > t1
 *
 * Work is split over the B*NH (b, h) pairs with OpenMP. One thread owns a
 * pair from start to end and writes only head h's columns of batch b, so
 * there are no races and the summation order does not depend on the thread
 * count. There is no BLAS inside (no nested threading). The loops over the
 * contiguous head dimension hs are marked `omp simd`. We build without
 * fast-math, and without that mark GCC will not vectorise a float dot
 * product, and at -O2 few loops of unknown length. The vector summation
 * order is fixed at compile time, so results stay reproducible. The
 * masked upper triangle costs nothing beyond writing its zeros.
 */
#include "attention.h"
#include "core/prof.h"
#include "core/parallel.h"

#include <math.h>
#include <stddef.h>

/* Backward keeps one row of dP = dout v^T on the stack for the first
 * ATT_DP_CACHE keys (2 KiB per thread, no VLA, no malloc). Keys beyond it,
 * which only occur when T > ATT_DP_CACHE, get their dot product computed a
 * second time instead. */
#define ATT_DP_CACHE 512

/* sum_i a[i] * b[i] over n contiguous floats. */
static inline float dot_f(const float *restrict a, const float *restrict b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Four dot products of q with the rows k, k + ld, k + 2 ld, k + 3 ld at once:
 * q is loaded once per element and the four sums run in parallel. */
static inline void dot4_f(float s[4], const float *restrict q, const float *restrict k, size_t ld, int n) {
    const float *restrict k0 = k, *restrict k1 = k + ld, *restrict k2 = k + 2 * ld, *restrict k3 = k + 3 * ld;
    float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int i = 0; i < n; i++) {
        s0 += q[i] * k0[i];
        s1 += q[i] * k1[i];
        s2 += q[i] * k2[i];
        s3 += q[i] * k3[i];
    }
    s[0] = s0, s[1] = s1, s[2] = s2, s[3] = s3;
}

/* y[i] += alpha * x[i] over n contiguous floats (y and x do not overlap). */
static inline void axpy_f(float *restrict y, float alpha, const float *restrict x, int n) {
#pragma omp simd
    for (int i = 0; i < n; i++) y[i] += alpha * x[i];
}

/* y[i] += sum_j a[j] * x[j*ld + i] for j < 4. When a row of out (or dq)
 * gathers many keys, adding them one at a time makes every key wait for the
 * previous store to y; taking four per store cuts that chain by four. */
static inline void axpy4_f(float *restrict y, const float a[4], const float *restrict x, size_t ld, int n) {
    const float *restrict x0 = x, *restrict x1 = x + ld, *restrict x2 = x + 2 * ld, *restrict x3 = x + 3 * ld;
    const float a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
#pragma omp simd
    for (int i = 0; i < n; i++) y[i] += (a0 * x0[i] + a1 * x1[i]) + (a2 * x2[i] + a3 * x3[i]);
}

/* ------------------------------------------------------------------------ */
/* forward                                                                  */
/* ------------------------------------------------------------------------ */

static void attention_forward_impl(float *out, float *att, const float *qkv, int B, int T, int C, int NH) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    const int hs = C / NH;
    const size_t C3 = 3 * (size_t)C;
    const float scale = 1.0f / sqrtf((float)hs);
    const int pairs = B * NH;

#pragma omp parallel for schedule(static) if ((size_t)pairs * T * T * hs >= PAR_MIN_WORK)
    for (int bh = 0; bh < pairs; bh++) {
        const int b = bh / NH, h = bh % NH;
        const float *base = qkv + (size_t)b * T * C3 + (size_t)h * hs; /* q of (b, t=0, h) */
        float *att_bh = att + (size_t)bh * T * T;

        for (int t1 = 0; t1 < T; t1++) {
            const float *q = base + (size_t)t1 * C3;
            float *arow = att_bh + (size_t)t1 * T;

            /* scores over the visible keys t2 <= t1, four keys at a time,
             * and their maximum (started from -inf, not a magic constant) */
            const int n = t1 + 1;
            int t2 = 0;
            for (; t2 + 4 <= n; t2 += 4) dot4_f(arow + t2, q, base + (size_t)t2 * C3 + C, C3, hs);
            for (; t2 < n; t2++) arow[t2] = dot_f(q, base + (size_t)t2 * C3 + C, hs);
            float maxv = -INFINITY;
            for (t2 = 0; t2 < n; t2++) {
                arow[t2] *= scale;
                if (arow[t2] > maxv) maxv = arow[t2];
            }
            /* softmax with the max subtracted: every exp is <= 1, and the
             * key attaining the max contributes exactly 1, so sum >= 1 */
            float sum = 0.0f;
            for (t2 = 0; t2 < n; t2++) {
                float e = expf(arow[t2] - maxv);
                arow[t2] = e;
                sum += e;
            }
            const float inv = 1.0f / sum;
            for (t2 = 0; t2 < n; t2++) arow[t2] *= inv;
            for (t2 = n; t2 < T; t2++) arow[t2] = 0.0f; /* future keys: masked */

            /* out[b, t1, head h] = sum_{t2 <= t1} att[t1][t2] * v[t2] */
            float *o = out + ((size_t)b * T + t1) * C + (size_t)h * hs;
            const float *v = base + 2 * (size_t)C;
            for (int i = 0; i < hs; i++) o[i] = 0.0f;
            for (t2 = 0; t2 + 4 <= n; t2 += 4) axpy4_f(o, arow + t2, v + (size_t)t2 * C3, C3, hs);
            for (; t2 < n; t2++) axpy_f(o, arow[t2], v + (size_t)t2 * C3, hs);
        }
    }
}

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH) {
    uint64_t t0 = prof_start();
    attention_forward_impl(out, att, qkv, B, T, C, NH);
    prof_stop(PROF_ATTENTION, t0);
}

/* ------------------------------------------------------------------------ */
/* backward                                                                 */
/* ------------------------------------------------------------------------ */

/*
 * With P = att (one row t1; only t2 <= t1 is non-zero) and S the scaled scores:
 *   dv[t2]  += P[t1][t2] * dout[t1]
 *   dP[t2]   = dout[t1] . v[t2]
 *   dS[t2]   = P[t2] * (dP[t2] - sum_j P[j] dP[j])      (softmax backward)
 *   dq[t1]  += scale * sum_t2 dS[t2] k[t2]
 *   dk[t2]  += scale * dS[t2] q[t1]
 * The masked entries have P = 0, hence dS = 0, so the loops stop at t2 = t1.
 * The row needs sum_j P[j] dP[j] before any dS, hence passes per row:
 *   1. dP (four keys at a time) into the stack cache, and its P-weighted sum;
 *   2. dS per key (overwriting dP in the cache), dk and dv;
 *   3. dq from the cached dS, four keys at a time.
 * Keys past the cache (t2 >= ATT_DP_CACHE) recompute dP in pass 2 and add
 * their dq term there.
 */
static void attention_backward_impl(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T, int C,
                        int NH) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    const int hs = C / NH;
    const size_t C3 = 3 * (size_t)C;
    const float scale = 1.0f / sqrtf((float)hs);
    const int pairs = B * NH;

#pragma omp parallel for schedule(static) if ((size_t)pairs * T * T * hs >= PAR_MIN_WORK)
    for (int bh = 0; bh < pairs; bh++) {
        const int b = bh / NH, h = bh % NH;
        const size_t off = (size_t)b * T * C3 + (size_t)h * hs; /* q of (b, t=0, h) */
        const float *base = qkv + off;
        float *dbase = dqkv + off;
        const float *att_bh = att + (size_t)bh * T * T;
        float cache[ATT_DP_CACHE]; /* dP, then dS, of the current row */

        for (int t1 = 0; t1 < T; t1++) {
            const float *q = base + (size_t)t1 * C3;
            float *dq = dbase + (size_t)t1 * C3;
            const float *go = dout + ((size_t)b * T + t1) * C + (size_t)h * hs;
            const float *arow = att_bh + (size_t)t1 * T;
            const float *k = base + (size_t)C, *v = base + 2 * (size_t)C;
            const int n = t1 + 1;
            const int nc = n < ATT_DP_CACHE ? n : ATT_DP_CACHE; /* keys whose dP/dS are cached */

            /* pass 1: dP and its P-weighted sum */
            int t2 = 0;
            for (; t2 + 4 <= nc; t2 += 4) dot4_f(cache + t2, go, v + (size_t)t2 * C3, C3, hs);
            for (; t2 < nc; t2++) cache[t2] = dot_f(go, v + (size_t)t2 * C3, hs);
            float pdp = 0.0f;
            for (t2 = 0; t2 < nc; t2++) pdp += arow[t2] * cache[t2];
            for (t2 = nc; t2 < n; t2++) pdp += arow[t2] * dot_f(go, v + (size_t)t2 * C3, hs);

            /* pass 2: dS, dk, dv (and dq for uncached keys) */
            for (t2 = 0; t2 < n; t2++) {
                const float p = arow[t2];
                float *dk = dbase + (size_t)t2 * C3 + C;
                float *dv = dbase + (size_t)t2 * C3 + 2 * (size_t)C;
                if (t2 < nc) {
                    const float ds = p * (cache[t2] - pdp) * scale;
                    cache[t2] = ds;
                    axpy_f(dk, ds, q, hs);
                } else {
                    const float ds = p * (dot_f(go, v + (size_t)t2 * C3, hs) - pdp) * scale;
                    axpy_f(dk, ds, q, hs);
                    axpy_f(dq, ds, k + (size_t)t2 * C3, hs);
                }
                axpy_f(dv, p, go, hs);
            }

            /* pass 3: dq[t1] += sum over cached keys of dS[t2] k[t2] */
            for (t2 = 0; t2 + 4 <= nc; t2 += 4) axpy4_f(dq, cache + t2, k + (size_t)t2 * C3, C3, hs);
            for (; t2 < nc; t2++) axpy_f(dq, cache[t2], k + (size_t)t2 * C3, hs);
        }
    }
}

void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T, int C,
                        int NH) {
    uint64_t t0 = prof_start();
    attention_backward_impl(dqkv, dout, qkv, att, B, T, C, NH);
    prof_stop(PROF_ATTENTION, t0);
}

int attention_scratch_floats(int T, int nthreads) {
    /* no caller scratch: the per-row dP cache lives on each thread's stack */
    (void)T;
    (void)nthreads;
    return 0;
}
