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
 * count. There is no BLAS inside (no nested threading).
 *
 * Vectorisation (we build without fast-math, so GCC vectorises a loop only
 * when it is marked `omp simd` or is a plain elementwise loop): the scores
 * q.k of one query row and, in the backward, dP = dout.v are computed along
 * the keys t2, from the head's keys (values) transposed into per-thread
 * scratch (hs, T): hs axpy passes over the row, no horizontal sums. With
 * hs = 16 the former one-dot-product-per-key form spent most of its time
 * reducing a 16-lane register to a scalar; the change made the attention
 * block's model 1.44x faster at T = 281 and 1.15x at T = 81 (d_model 64,
 * 4 heads, batch 64, one thread). The softmax uses fm_expf (vectorised).
 * The products with v, k and q (out, dq, dk, dv) run along hs in vector
 * registers, four keys per add, and four rows at a time: out and dq keep
 * a group's four query rows in registers while the keys stream
 * (axpy4_rows4), dk and dv keep its four q and dout rows while the keys'
 * rows stream (axpy4_keys). One row per call loaded and stored its y row
 * and reloaded the four x rows for only hs = 16-32 floats: at hs 32, T 82
 * these products were 35% of the backward and 23% of the forward (perf);
 * now the forward is 1.05-1.16x and the backward 1.2x faster (same bits).
 * The masked upper triangle costs nothing beyond writing its zeros.
 * Without AVX-512 the scores and the head transposes take 8-lane paths
 * (block_scores, transpose_head): on AVX2 GCC kept their 16-lane vectors,
 * broadcasts and shuffles on the stack (the small Transformer's step in an
 * AVX2 build 53 -> 25 ms).
 */
#include "attention.h"
#include "core/vec16.h"
#include "core/prof.h"
#include "core/parallel.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#include "core/fastmath.h"

/* Keys per register block of row_scores: four 16-float vectors. */
#define ATT_BLOCK 64


/* T rounded up to a whole block: the row stride of a transposed head, whose
 * padding is zeroed, so row_scores may read a whole block past n. */
static int padded_T(int T) { return (T + ATT_BLOCK - 1) / ATT_BLOCK * ATT_BLOCK; }

/* Query rows whose dk/dv updates the backward makes together. */
#define ATT_ROWS 4

/* Per-thread scratch: one head's keys (forward) or values (backward)
 * transposed, (hs, Tp), then ATT_ROWS rows of dP / dS (Tp each). */
static size_t thread_floats(int T, int hs) { return ((size_t)hs + ATT_ROWS) * (size_t)padded_T(T); }

size_t attention_scratch_floats(int T, int C, int NH, int nthreads) {
    if (T <= 0 || C <= 0 || NH <= 0) return 0;
    if (nthreads < 1) nthreads = 1;
    return (size_t)nthreads * thread_floats(T, C / NH);
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

/* Up to 16 floats of p (w of them; the rest of the vector 0), and back. */
static inline v16 v16_load_w(const float *p, int w) {
    if (w == 16) return v16_load(p);
    v16 v = {0};
    memcpy(&v, p, sizeof(float) * (size_t)w);
    return v;
}
static inline void v16_store_w(float *p, v16 v, int w) { memcpy(p, &v, sizeof(float) * (size_t)w); }

/* (a0 x0 + a1 x1) + (a2 x2 + a3 x3): four keys' terms, in axpy4_f's order. */
static inline v16 sum4(float a0, float a1, float a2, float a3, v16 x0, v16 x1, v16 x2, v16 x3) {
    return (v16_set1(a0) * x0 + v16_set1(a1) * x1) + (v16_set1(a2) * x2 + v16_set1(a3) * x3);
}

/* axpy4_f over the keys 0..nk-1 (nk a multiple of 4) for four rows at once:
 * y_j += a_j[k..k+3] . x[k..k+3] group after group, row j at y + j ldy with
 * weights a + j lda, x's rows ldx apart. Each y row stays in a register
 * across the groups and each x row is loaded once for the four rows (one
 * row at a time loaded and stored y, and loaded x, per group of 4 keys, for
 * only hs = 16-32 floats). The same sums in the same order: the same bits. */
static void axpy4_rows4(float *y, size_t ldy, const float *a, size_t lda, const float *x, size_t ldx, int nk,
                        int hs) {
    for (int c0 = 0; c0 < hs; c0 += 16) {
        const int w = hs - c0 < 16 ? hs - c0 : 16;
        v16 y0 = v16_load_w(y + c0, w), y1 = v16_load_w(y + ldy + c0, w), y2 = v16_load_w(y + 2 * ldy + c0, w),
            y3 = v16_load_w(y + 3 * ldy + c0, w);
        for (int k = 0; k + 4 <= nk; k += 4) {
            const float *xk = x + (size_t)k * ldx + c0;
            const v16 x0 = v16_load_w(xk, w), x1 = v16_load_w(xk + ldx, w), x2 = v16_load_w(xk + 2 * ldx, w),
                      x3 = v16_load_w(xk + 3 * ldx, w);
            const float *a0 = a + k, *a1 = a0 + lda, *a2 = a1 + lda, *a3 = a2 + lda;
            y0 += sum4(a0[0], a0[1], a0[2], a0[3], x0, x1, x2, x3);
            y1 += sum4(a1[0], a1[1], a1[2], a1[3], x0, x1, x2, x3);
            y2 += sum4(a2[0], a2[1], a2[2], a2[3], x0, x1, x2, x3);
            y3 += sum4(a3[0], a3[1], a3[2], a3[3], x0, x1, x2, x3);
        }
        v16_store_w(y + c0, y0, w);
        v16_store_w(y + ldy + c0, y1, w);
        v16_store_w(y + 2 * ldy + c0, y2, w);
        v16_store_w(y + 3 * ldy + c0, y3, w);
    }
}

/* axpy4_f for the keys t2 = 0..nk-1 against the same four x rows (x + j ldx):
 * y_t2 += (a_0 x_0 + a_1 x_1) + (a_2 x_2 + a_3 x_3) with a_j = w[j lw + t2],
 * y_t2 at y + t2 ldy. The four x rows stay in registers across the keys
 * (one call per key reloaded them). The same sums: the same bits. */
static void axpy4_keys(float *y, size_t ldy, const float *w, size_t lw, const float *x, size_t ldx, int nk,
                       int hs) {
    for (int c0 = 0; c0 < hs; c0 += 16) {
        const int wd = hs - c0 < 16 ? hs - c0 : 16;
        const v16 x0 = v16_load_w(x + c0, wd), x1 = v16_load_w(x + ldx + c0, wd),
                  x2 = v16_load_w(x + 2 * ldx + c0, wd), x3 = v16_load_w(x + 3 * ldx + c0, wd);
        for (int t2 = 0; t2 < nk; t2++) {
            float *yt = y + (size_t)t2 * ldy + c0;
            v16 yv = v16_load_w(yt, wd);
            yv += sum4(w[t2], w[lw + t2], w[2 * lw + t2], w[3 * lw + t2], x0, x1, x2, x3);
            v16_store_w(yt, yv, wd);
        }
    }
}

/* y_j += sum_{t2 <= r + j} w_j[t2] x[t2] for the g rows j < g of the query
 * group starting at row r (g = ATT_ROWS, r then a multiple of 4, or g = 1):
 * y_j at y + j ldy, w_j at w + j lw, x's rows ldx apart. Each row adds its
 * keys in fours from t2 = 0 (axpy4_f's order), the keys before the group
 * for all four rows at once (axpy4_rows4), the rest row by row. Forward's
 * out (w = P, x = v) and backward's dq (w = dS, x = k). */
static inline void rows_gather(float *y, size_t ldy, const float *w, size_t lw, const float *x, size_t ldx, int r,
                               int g, int hs) {
    if (g == ATT_ROWS) axpy4_rows4(y, ldy, w, lw, x, ldx, r, hs);
    for (int j = 0; j < g; j++) {
        float *yj = y + (size_t)j * ldy;
        const float *wj = w + (size_t)j * lw;
        int t2 = g == ATT_ROWS ? r : 0;
        for (; t2 + 4 <= r + j + 1; t2 += 4) axpy4_f(yj, wj + t2, x + (size_t)t2 * ldx, ldx, hs);
        for (; t2 <= r + j; t2++) axpy_f(yj, wj[t2], x + (size_t)t2 * ldx, hs);
    }
}

/* Head h of sequence b, rows t = 0..T-1 of one of the q/k/v blocks (row
 * stride C3), into x_T (hs, T): the keys or values of one head transposed,
 * so that the scores (and dP) of one query row are computed along t2 in
 * SIMD lanes, with no horizontal sums (hs is 16 at d_model 64: one dot
 * product per vector register, whose reduction cost more than its FMAs). */
static void transpose_head(float *restrict x_T, const float *restrict x, size_t C3, int T, int hs) {
    const int Tp = padded_T(T);
#if !defined(__AVX512F__)
    if (hs % 8 == 0) { /* 8 x 8 blocks: without AVX-512, v16_transpose goes through the stack (vec16.h) */
        for (int i0 = 0; i0 < hs; i0 += 8)
            for (int t0 = 0; t0 < Tp; t0 += 8) {
                v8 r[8];
                for (int k = 0; k < 8; k++) r[k] = t0 + k < T ? v8_load(x + (size_t)(t0 + k) * C3 + i0) : (v8){0};
                v8_transpose(r);
                for (int k = 0; k < 8; k++) v8_store(x_T + (size_t)(i0 + k) * Tp + t0, r[k]);
            }
        return;
    }
#endif
    if (hs % 16 == 0) { /* 16 x 16 blocks in registers (element by element: a fifth of the backward at hs 16) */
        for (int i0 = 0; i0 < hs; i0 += 16)
            for (int t0 = 0; t0 < Tp; t0 += 16) { /* Tp: whole blocks, the padding rows zero */
                v16 r[16];
                for (int k = 0; k < 16; k++) r[k] = t0 + k < T ? v16_load(x + (size_t)(t0 + k) * C3 + i0) : (v16){0};
                v16_transpose(r);
                for (int k = 0; k < 16; k++) v16_store(x_T + (size_t)(i0 + k) * Tp + t0, r[k]);
            }
        return;
    }
    for (int t = 0; t < T; t++)
        for (int i = 0; i < hs; i++) x_T[(size_t)i * Tp + t] = x[(size_t)t * C3 + i];
    for (int i = 0; i < hs; i++)
        for (int t = T; t < Tp; t++) x_T[(size_t)i * Tp + t] = 0.0f;
}

/* acc[16 v + j] = sum_i a[i] x_T[i][16 v + j] for v < nv (nv = 1..4, a
 * constant where it is inlined): up to ATT_BLOCK keys in nv vector
 * registers while i runs over the head, summed over i in order. */
static inline __attribute__((always_inline)) void block_scores(float *restrict acc, const float *restrict a,
                                                               const float *restrict x_T, size_t Tp, int hs,
                                                               const int nv) {
#if defined(__AVX512F__)
    /* four 16-lane accumulators, not a float[64], so that GCC keeps them in
     * registers */
    v16 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0};
    for (int i = 0; i < hs; i++) {
        const v16 ai = v16_set1(a[i]);
        const float *xi = x_T + (size_t)i * Tp;
        s0 += ai * v16_load(xi);
        if (nv > 1) s1 += ai * v16_load(xi + 16);
        if (nv > 2) s2 += ai * v16_load(xi + 32);
        if (nv > 3) s3 += ai * v16_load(xi + 48);
    }
    v16_store(acc, s0);
    if (nv > 1) v16_store(acc + 16, s1);
    if (nv > 2) v16_store(acc + 32, s2);
    if (nv > 3) v16_store(acc + 48, s3);
#else
    /* the same sums in eight 8-lane accumulators: without AVX-512 GCC kept
     * the 16-lane ones, and every broadcast of a[i], on the stack */
    v8 s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, s4 = {0}, s5 = {0}, s6 = {0}, s7 = {0};
    for (int i = 0; i < hs; i++) {
        const v8 ai = (v8){0} + a[i];
        const float *xi = x_T + (size_t)i * Tp;
        s0 += ai * v8_load(xi);
        s1 += ai * v8_load(xi + 8);
        if (nv > 1) s2 += ai * v8_load(xi + 16), s3 += ai * v8_load(xi + 24);
        if (nv > 2) s4 += ai * v8_load(xi + 32), s5 += ai * v8_load(xi + 40);
        if (nv > 3) s6 += ai * v8_load(xi + 48), s7 += ai * v8_load(xi + 56);
    }
    v8_store(acc, s0);
    v8_store(acc + 8, s1);
    if (nv > 1) v8_store(acc + 16, s2), v8_store(acc + 24, s3);
    if (nv > 2) v8_store(acc + 32, s4), v8_store(acc + 40, s5);
    if (nv > 3) v8_store(acc + 48, s6), v8_store(acc + 56, s7);
#endif
}

/* s[t2] = alpha * sum_i a[i] x_T[i][t2] for t2 < n: one query (or dout) row
 * against n keys (or values), summed over i in order, and s[t2] = pad for
 * the rest of the last 16-key vector (s has room for round16(n) floats).
 * Blocks of up to ATT_BLOCK keys keep their sums in vector registers while
 * i runs over the head (the axpy-per-i form loaded and stored the row hs
 * times, and for T ~ 80 spent its time in loop overhead); the last block
 * computes only the vectors that hold keys < n (at T ~ 40 a whole block
 * was three times the keys a row has on average). x_T's rows are padded to
 * whole blocks (transpose_head), so a vector may run past n. */
static inline void row_scores(float *restrict s, const float *restrict a, const float *restrict x_T, int T, int n,
                              int hs, float alpha, float pad) {
    const size_t Tp = (size_t)padded_T(T);
    for (int t0 = 0; t0 < n; t0 += ATT_BLOCK) {
        const int m = n - t0; /* keys of this block in range (all of it if m >= ATT_BLOCK) */
        const int nv = m >= ATT_BLOCK ? 4 : (m + 15) / 16; /* vectors to compute */
        float acc[ATT_BLOCK];
        switch (nv) { /* one inlined copy per count, its accumulators in registers */
        case 1: block_scores(acc, a, x_T + t0, Tp, hs, 1); break;
        case 2: block_scores(acc, a, x_T + t0, Tp, hs, 2); break;
        case 3: block_scores(acc, a, x_T + t0, Tp, hs, 3); break;
        default: block_scores(acc, a, x_T + t0, Tp, hs, 4); break;
        }
        for (int v = 0; v < nv; v++)
#pragma omp simd
            for (int j = 0; j < 16; j++) s[t0 + 16 * v + j] = 16 * v + j < m ? acc[16 * v + j] * alpha : pad;
    }
}

/* ------------------------------------------------------------------------ */
/* forward                                                                  */
/* ------------------------------------------------------------------------ */

static void attention_forward_impl(float *out, float *att, const float *qkv, int B, int T, int C, int NH,
                                   float *scratch) {
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
        float *k_T = scratch + (size_t)par_thread_id() * thread_floats(T, hs);
        float *s = k_T + (size_t)hs * padded_T(T); /* one row's scores (Tp) */
        transpose_head(k_T, base + C, C3, T, hs);

        for (int t1 = 0; t1 < T; t1++) {
            const float *q = base + (size_t)t1 * C3;
            float *arow = att_bh + (size_t)t1 * T;

            /* scaled scores over the visible keys t2 <= t1 in the scratch
             * row s, padded with -inf to whole vectors (np keys), and their
             * maximum (started from -inf, not a magic constant). The loops
             * run over whole vectors: at T ~ 40 the scalar tails of loops
             * over n keys were most of this row's work */
            const int n = t1 + 1, np = (n + 15) / 16 * 16;
            row_scores(s, q, k_T, T, n, hs, scale, -INFINITY);
            v16 mx = v16_load(s);
            for (int t2 = 16; t2 < np; t2 += 16) mx = v16_max(mx, v16_load(s + t2));
            const float maxv = v16_hmax(mx);
            /* softmax with the max subtracted: every exp is <= 1, and the
             * key attaining the max contributes exactly 1, so sum >= 1; the
             * padding's exp(-inf) is 0 */
#pragma omp simd
            for (int t2 = 0; t2 < np; t2++) s[t2] = fm_expf(s[t2] - maxv);
            v16 sv = v16_load(s);
            for (int t2 = 16; t2 < np; t2 += 16) sv += v16_load(s + t2);
            const float sum = v16_hsum(sv);
            const float inv = 1.0f / sum;
            /* the row, future keys masked to 0, in whole vectors where the
             * rows after it in this (b, h) matrix have room: it runs on into
             * the next row, which this thread writes next */
            const int T16 = (T + 15) / 16 * 16, nw = T16 <= (T - t1) * T ? T16 : T;
#pragma omp simd
            for (int t2 = 0; t2 < nw; t2++) arow[t2] = t2 < n ? s[t2] * inv : 0.0f;

            /* out[b, t1, head h] = sum_{t2 <= t1} att[t1][t2] * v[t2], by groups
             * of four rows (done by the group's last row: the keys before
             * the group for all four rows at once), the rows after the last
             * whole group one at a time */
            const int g = t1 % ATT_ROWS == ATT_ROWS - 1 ? ATT_ROWS : t1 >= T / ATT_ROWS * ATT_ROWS ? 1 : 0;
            const int r0 = t1 + 1 - g;
            float *o0 = out + ((size_t)b * T + r0) * C + (size_t)h * hs;
            for (int j = 0; j < g; j++)
                for (int i = 0; i < hs; i++) o0[(size_t)j * C + i] = 0.0f;
            rows_gather(o0, (size_t)C, att_bh + (size_t)r0 * T, (size_t)T, base + 2 * (size_t)C, C3, r0, g, hs);
        }
    }
}

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH, float *scratch) {
    uint64_t t0 = prof_start();
    attention_forward_impl(out, att, qkv, B, T, C, NH, scratch);
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
 * A row needs sum_j P[j] dP[j] before any dS. Rows go in groups of
 * ATT_ROWS consecutive queries t1 = r .. r+3:
 *   1. per row: dP along t2 from the head's transposed values (row_scores),
 *      its P-weighted sum, then dS (scaled) over dP in the row's buffer;
 *   2. dk and dv for the keys all four rows see (t2 <= r): each key's rows
 *      are loaded and stored once for the four rows (axpy4 over the four
 *      consecutive q rows, and over the four dout rows), not four times;
 *      the three keys only some rows see (r < t2 <= r+3) row by row;
 *   3. per row: dq from dS, four keys at a time.
 * Rows left over at the end (T not a multiple of 4) go one at a time.
 */
/* Pass 1 of row t1: ds (n = t1 + 1) = scale * P * (dP - sum_j P[j] dP[j]). */
static inline void row_ds(float *restrict ds, const float *restrict go, const float *restrict v_T,
                          const float *restrict arow, int T, int n, int hs, float scale) {
    row_scores(ds, go, v_T, T, n, hs, 1.0f, 0.0f);
    /* over whole vectors where the row allows: att's masked entries and the
     * padding of ds are 0, so the extra lanes add nothing to pdp (and their
     * dS is never read) */
    const int n16 = (n + 15) / 16 * 16, nv = n16 <= T ? n16 : n;
    v16 acc = {0};
    int t2 = 0;
    for (; t2 + 16 <= nv; t2 += 16) acc += v16_load(arow + t2) * v16_load(ds + t2);
    if (t2 < nv) acc += v16_load_w(arow + t2, nv - t2) * v16_load(ds + t2); /* ds padded with 0 */
    const float pdp = v16_hsum(acc);
#pragma omp simd
    for (t2 = 0; t2 < nv; t2++) ds[t2] = arow[t2] * (ds[t2] - pdp) * scale;
}

static void attention_backward_impl(float *dqkv, const float *dout, const float *qkv, const float *att, int B,
                                    int T, int C, int NH, float *scratch) {
    if (B <= 0 || T <= 0 || C <= 0 || NH <= 0) return;
    const int hs = C / NH, Tp = padded_T(T);
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
        float *v_T = scratch + (size_t)par_thread_id() * thread_floats(T, hs);
        float *ds = v_T + (size_t)hs * Tp; /* ATT_ROWS rows of dP, then dS (Tp each) */
        const float *k = base + (size_t)C;
        const float *go0 = dout + (size_t)b * T * C + (size_t)h * hs; /* dout of (b, t=0, h) */
        transpose_head(v_T, base + 2 * (size_t)C, C3, T, hs);

        for (int r = 0; r < T;) {
            const int g = T - r >= ATT_ROWS ? ATT_ROWS : 1; /* rows in this group */
            for (int j = 0; j < g; j++)
                row_ds(ds + (size_t)j * Tp, go0 + (size_t)(r + j) * C, v_T, att_bh + (size_t)(r + j) * T, T,
                       r + j + 1, hs, scale);
            /* pass 2: dk[t2] += sum_j dS_j[t2] q_j, dv[t2] += sum_j P_j[t2] dout_j */
            const float *q_r = base + (size_t)r * C3, *go_r = go0 + (size_t)r * C;
            if (g == ATT_ROWS) { /* the group's four q rows and dout rows held while the keys stream */
                const float *P_r = att_bh + (size_t)r * T;
                axpy4_keys(dbase + C, C3, ds, (size_t)Tp, q_r, C3, r + 1, hs);                        /* dk */
                axpy4_keys(dbase + 2 * (size_t)C, C3, P_r, (size_t)T, go_r, (size_t)C, r + 1, hs); /* dv */
            }
            for (int j = 0; j < g; j++) { /* the keys only some rows of the group see (all, for a single row) */
                const float *arow = att_bh + (size_t)(r + j) * T, *dsj = ds + (size_t)j * Tp;
                for (int t2 = g == ATT_ROWS ? r + 1 : 0; t2 <= r + j; t2++) {
                    float *dk = dbase + (size_t)t2 * C3 + C;
                    axpy_f(dk, dsj[t2], q_r + (size_t)j * C3, hs);
                    axpy_f(dk + C, arow[t2], go_r + (size_t)j * C, hs); /* dv */
                }
            }
            /* pass 3: dq[t1] += sum over keys of dS[t2] k[t2] */
            rows_gather(dbase + (size_t)r * C3, C3, ds, (size_t)Tp, k, C3, r, g, hs);
            r += g;
        }
    }
}

void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T, int C,
                        int NH, float *scratch) {
    uint64_t t0 = prof_start();
    attention_backward_impl(dqkv, dout, qkv, att, B, T, C, NH, scratch);
    prof_stop(PROF_ATTENTION, t0);
}
