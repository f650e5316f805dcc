/*
 * conv1d.c - Mamba's causal depthwise 1-D convolution over time.
 *
 *   out[b,t,c] = bias[c] + sum_{k=0}^{K-1} w[c,k] * x[b, t-K+1+k, c],   x[t<0] = 0
 *
 * This is PyTorch's Conv1d(groups = C, padding = K-1) with the output cut to
 * the first T steps. It has no activation (the caller applies SiLU) and no
 * decode-time state (a rolling conv_state is a different thing).
 *
 * Shapes (B batch, T time, C channels, K taps):
 *   x (B, T, C) with row stride ldx >= C, so the x half of in_proj's (B, T, 2E)
 *   output is read in place; out (B, T, C) dense; w (C, K); bias (C) or NULL.
 * Any K >= 1 works, including K > T: taps that reach before t = 0 read the
 * zero padding and are skipped.
 *
 * Parallelism: out is split over (sequence, channel block) pairs, each
 * written by one thread. The backward (dx, dw, dbias in one pass) is split
 * over channel blocks. Each channel's sums run in a fixed order whatever
 * the block width, so results do not depend on the thread count. Inner
 * loops run over contiguous channels.
 */
#include "conv1d.h"
#include "core/prof.h"
#include "core/parallel.h"

#include <omp.h>
#include <stddef.h>

#include "core/fastmath.h"
#include "core/vec16.h"

/* Channels are processed in blocks of at most CONV_CBLOCK, and taps in
 * groups of at most CONV_KGROUP (Mamba's K = 4 is one group). Per block a
 * thread copies its taps into a small transposed stack tile wt[k][c], so the
 * inner loops read w contiguously instead of with stride K. The weight
 * gradient keeps its accumulators in the same shape. Everything lives on the
 * stack, at most 15 KiB per thread (the weight gradient's float and double
 * accumulators). */
#define CONV_CBLOCK 256
#define CONV_KGROUP 4

/* Block width for splitting C channels into about `parts` blocks: a
 * multiple of 16 in [16, CONV_CBLOCK]. The width only decides which thread
 * does which channel. Each channel's arithmetic is the same for any width,
 * so results do not depend on the thread count. */
static int block_width(int C, int parts) {
    if (parts < 1) parts = 1;
    int w = (C + parts - 1) / parts;
    w = (w + 15) / 16 * 16;
    return w > CONV_CBLOCK ? CONV_CBLOCK : w;
}

/* wt[j][c] = w[c0 + c, kg + j] for j < nk, c < nc */
static void load_taps(float wt[CONV_KGROUP][CONV_CBLOCK], const float *w, int K, int c0, int nc, int kg, int nk) {
    for (int c = 0; c < nc; c++)
        for (int j = 0; j < nk; j++) wt[j][c] = w[(size_t)(c0 + c) * K + kg + j];
}

/* Zeros in place of an absent bias: the generic path starts such a sum at
 * 0.0f too. */
static const float conv_zeros[CONV_CBLOCK];

/* One row of a four-tap sum from tap j0 on: out[c] = init[c] + w_j0 r_j0 +
 * ... + w3 r3, in that order, each a product and then an add (C11 does not
 * contract them), row j at xj0 + (j - j0) ld, tap j's weights at wt + j
 * CONV_CBLOCK. Taps below j0 reach past the sequence's edge (the zero
 * padding) and are left out, as the generic paths skip them. It is the
 * generic paths' sum held in a register: they store the row and reload it for
 * each tap, and each reload waits on the store before it (the forward ran
 * 1.6x slower that way, B 32, T 40, C 128, one thread). The K - 1 edge rows
 * of each sequence (j0 > 0) take it too, through a loop over their taps, so
 * the generic paths run only for K != 4. Bitwise the generic paths. init: the
 * bias row (forward) or zeros (the backward's dx, which it writes). */
static inline __attribute__((always_inline)) void taps4_row(float *out, const float *init, const float *xj0,
                                                            ptrdiff_t ld, const float *wt, int nc, int j0) {
    if (j0 > 0) { /* an edge row; x_j for j < j0 is not formed: it may lie outside the array */
#pragma omp simd
        for (int c = 0; c < nc; c++) {
            float s = init[c];
            for (int j = j0; j < CONV_KGROUP; j++) s += wt[j * CONV_CBLOCK + c] * xj0[(j - j0) * ld + c];
            out[c] = s;
        }
        return;
    }
    const float *restrict w0 = wt, *restrict w1 = wt + CONV_CBLOCK, *restrict w2 = wt + 2 * CONV_CBLOCK,
                          *restrict w3 = wt + 3 * CONV_CBLOCK;
    const float *restrict x0 = xj0, *restrict x1 = xj0 + ld, *restrict x2 = xj0 + 2 * ld, *restrict x3 = xj0 + 3 * ld;
#pragma omp simd
    for (int c = 0; c < nc; c++) {
        float s = init[c];
        s += w0[c] * x0[c];
        s += w1[c] * x1[c];
        s += w2[c] * x2[c];
        s += w3[c] * x3[c];
        out[c] = s;
    }
}

/* a = SiLU(o) over one row (act.c's silu_forward, element for element),
 * and o overwritten with SiLU'(o) = s (1 + o (1 - s)) from the same sigmoid
 * s, which is all the backward needs of the pre-activation: it then takes no
 * sigmoid of its own (act.c's silu_backward takes the same factor). */
static inline void silu_keep_row(float *restrict a, float *restrict o, int nc) {
#pragma omp simd
    for (int c = 0; c < nc; c++) {
        float x = o[c], s = fm_sigmoidf(x);
        a[c] = x * s;
        o[c] = fm_silu_grad(x, s);
    }
}

/* act: NULL, or where SiLU(out) goes, row by row after the row's last tap
 * group, out then overwritten with SiLU'(out) (conv1d_silu_forward) */
static void conv1d_forward_impl(float *out, float *act, const float *x, int ldx, const float *w, const float *bias,
                                int B, int T, int C, int K) {
    if (B <= 0 || T <= 0 || C <= 0 || K <= 0) return;
    /* enough (b, channel block) items for every thread */
    const int threads = omp_get_max_threads();
    const int cw = block_width(C, (threads + B - 1) / B);
    const int nblocks = (C + cw - 1) / cw;
    const int items = B * nblocks;

#pragma omp parallel for schedule(static) if ((size_t)B * T * C * K >= PAR_MIN_WORK)
    for (int it = 0; it < items; it++) {
        const int b = it / nblocks, c0 = (it % nblocks) * cw;
        const int nc = C - c0 < cw ? C - c0 : cw;
        float wt[CONV_KGROUP][CONV_CBLOCK];

        for (int kg = 0; kg < K; kg += CONV_KGROUP) {
            const int nk = K - kg < CONV_KGROUP ? K - kg : CONV_KGROUP;
            load_taps(wt, w, K, c0, nc, kg, nk);
            for (int t = 0; t < T; t++) {
                float *restrict o = out + ((size_t)b * T + t) * C + c0;
                if (K == CONV_KGROUP) { /* tap j reads x at t - 3 + j, from tap j0 = 3 - t on at t < 3 */
                    const int j0 = t >= 3 ? 0 : 3 - t;
                    taps4_row(o, bias ? bias + c0 : conv_zeros, x + ((size_t)b * T + t - 3 + j0) * ldx + c0, ldx,
                              wt[0], nc, j0);
                    if (act) silu_keep_row(act + ((size_t)b * T + t) * C + c0, o, nc);
                    continue;
                }
                if (kg == 0 && bias) {
                    for (int c = 0; c < nc; c++) o[c] = bias[c0 + c];
                } else if (kg == 0) {
                    for (int c = 0; c < nc; c++) o[c] = 0.0f;
                }
                /* tap k reads time t - (K-1-k); before t = 0 is zero padding */
                for (int j = 0; j < nk; j++) {
                    const int lag = K - 1 - (kg + j);
                    if (t < lag) continue;
                    const float *restrict xr = x + ((size_t)b * T + (t - lag)) * ldx + c0;
                    const float *restrict wj = wt[j];
#pragma omp simd
                    for (int c = 0; c < nc; c++) o[c] += wj[c] * xr[c];
                }
                if (act && kg + nk == K) silu_keep_row(act + ((size_t)b * T + t) * C + c0, o, nc);
            }
        }
    }
}

void conv1d_forward(float *out, const float *x, int ldx, const float *w, const float *bias, int B, int T, int C,
                    int K) {
    uint64_t t0 = prof_start();
    conv1d_forward_impl(out, NULL, x, ldx, w, bias, B, T, C, K);
    prof_stop(PROF_CONV, t0);
}

void conv1d_silu_forward(float *act, float *dsilu, const float *x, int ldx, const float *w, const float *bias, int B,
                         int T, int C, int K) {
    uint64_t t0 = prof_start();
    conv1d_forward_impl(dsilu, act, x, ldx, w, bias, B, T, C, K);
    prof_stop(PROF_CONV, t0);
}

/* One sequence's weight sums of a full tap group for channels c .. c+15
 * (tile offset c, absolute cg): part[j][c..] = sum_t dout[b,t] x[b, t - lag_j]
 * and partb[c..] = sum_t dout[b,t], each a register summed over t in
 * increasing order, the taps before t = 0 skipped. The row-by-row loop
 * (below, for the tile's last channels) kept part in memory, and every add
 * waited on the store of the row before: 70% of the weight gradient's time
 * was that add (B 64, T 41, C 128). partb is the bias's sum (stored whatever
 * the caller needs). Bitwise the row-by-row loop. */
static void wsums4_seq(float part[CONV_KGROUP][CONV_CBLOCK], float partb[CONV_CBLOCK], int c, const float *dout,
                       const float *x, int ldx, int b, int T, int C, int cg, int kg, int K) {
    v16 p[CONV_KGROUP] = {{0}}, pb = {0};
    for (int t = 0; t < T; t++) {
        const v16 g = v16_load(dout + ((size_t)b * T + t) * C + cg);
        for (int j = 0; j < CONV_KGROUP; j++) {
            const int lag = K - 1 - (kg + j);
            if (t >= lag) p[j] += g * v16_load(x + ((size_t)b * T + (t - lag)) * ldx + cg);
        }
        pb += g;
    }
    for (int j = 0; j < CONV_KGROUP; j++) v16_store(part[j] + c, p[j]);
    v16_store(partb + c, pb);
}

/* One sequence's dx rows for a block of nc channels at c0 (tap group kg of
 * nk taps, wt its taps): dx[b,s,c] = sum_k w[c,k] dout[b, s+K-1-k, c] over
 * s+K-1-k < T, the taps added to 0 in k order (K = 4: one register row per
 * s, taps4_row). */
static void dx_rows(float *dx, int lddx, const float *dout, const float wt[CONV_KGROUP][CONV_CBLOCK], int b, int T,
                    int C, int c0, int nc, int kg, int nk, int K) {
    for (int s = 0; s < T; s++) {
        float *restrict d = dx + ((size_t)b * T + s) * lddx + c0;
        if (K == CONV_KGROUP) { /* tap j reads dout at s + 3 - j, from j0 = s + 4 - T on near T */
            const int j0 = s + 3 < T ? 0 : s + 4 - T;
            taps4_row(d, conv_zeros, dout + ((size_t)b * T + s + 3 - j0) * C + c0, -(ptrdiff_t)C, wt[0], nc, j0);
            continue;
        }
        if (kg == 0)
#pragma omp simd
            for (int c = 0; c < nc; c++) d[c] = 0.0f;
        for (int j = 0; j < nk; j++) {
            const int t = s + K - 1 - (kg + j); /* the output that read x[s] through this tap */
            if (t >= T) continue;
            const float *restrict g = dout + ((size_t)b * T + t) * C + c0;
            const float *restrict wj = wt[j];
#pragma omp simd
            for (int c = 0; c < nc; c++) d[c] += wj[c] * g[c];
        }
    }
}

/* One sequence's weight sums for a block of nc channels at c0 (tap group kg
 * of nk taps), into part[j][c] = sum_t dout[b,t,c] x[b, t - lag_j, c] and
 * partb[c] = sum_t dout[b,t,c], each over t in increasing order in float:
 * 16 channels at a time in registers (wsums4_seq), the block's last ones
 * row by row. */
static void wsums_seq(float part[CONV_KGROUP][CONV_CBLOCK], float partb[CONV_CBLOCK], const float *dout,
                      const float *x, int ldx, int b, int T, int C, int c0, int nc, int kg, int nk, int K,
                      int with_bias) {
    int c = 0;
    if (nk == CONV_KGROUP) /* 16 channels at a time, the five sums in registers */
        for (; c + 16 <= nc; c += 16) wsums4_seq(part, partb, c, dout, x, ldx, b, T, C, c0 + c, kg, K);
    for (int j = 0; j < nk; j++)
        for (int cc = c; cc < nc; cc++) part[j][cc] = 0.0f;
    for (int cc = c; cc < nc; cc++) partb[cc] = 0.0f;
    for (int t = 0; t < T && c < nc; t++) {
        const float *restrict g = dout + ((size_t)b * T + t) * C + c0;
        for (int j = 0; j < nk; j++) {
            const int lag = K - 1 - (kg + j); /* tap kg+j reads x at t - lag */
            if (t < lag) continue;
            const float *restrict xr = x + ((size_t)b * T + (t - lag)) * ldx + c0;
            float *restrict pj = part[j];
#pragma omp simd
            for (int cc = c; cc < nc; cc++) pj[cc] += g[cc] * xr[cc];
        }
        if (with_bias) {
#pragma omp simd
            for (int cc = c; cc < nc; cc++) partb[cc] += g[cc];
        }
    }
}

/* dact NULL: dout is the gradient of out. Otherwise dout is NULL and gsilu is
 * scratch that each (sequence, channel block) first fills with dact *
 * SiLU'(pre) (dsilu, kept by the forward) for all its rows (the taps of dx
 * read later rows); the weight sums read it from there too.
 *
 * One pass: blocks of channels go to threads, and each walks the sequences,
 * doing a sequence's gsilu, dx and weight sums while its rows are in cache.
 * (A pass for dx and then one for the weights read every dout and x row
 * back from memory.) Every channel is one thread's, so dx is written once,
 * and its weight sums run over t in float within a sequence, like a GEMM
 * over T terms, then in b order in double (B*T can be many thousands of
 * terms), added to dw once at the end: the same bits for any thread count. */
static void conv1d_backward_impl(float *dx, int lddx, float *dw, float *dbias, const float *dout, float *gsilu,
                                 const float *dact, const float *dsilu, const float *x, int ldx, const float *w, int B,
                                 int T, int C, int K) {
    if (dact) dout = gsilu;
    if (B <= 0 || T <= 0 || C <= 0 || K <= 0) return;
    const int cw = block_width(C, omp_get_max_threads());
    const int nblocks = (C + cw - 1) / cw;
#pragma omp parallel for schedule(static) if ((size_t)B * T * C * K >= PAR_MIN_WORK)
    for (int cb = 0; cb < nblocks; cb++) {
        const int c0 = cb * cw;
        const int nc = C - c0 < cw ? C - c0 : cw;
        float wt[CONV_KGROUP][CONV_CBLOCK], part[CONV_KGROUP][CONV_CBLOCK], partb[CONV_CBLOCK];
        double acc[CONV_KGROUP][CONV_CBLOCK], accb[CONV_CBLOCK];

        for (int kg = 0; kg < K; kg += CONV_KGROUP) {
            const int nk = K - kg < CONV_KGROUP ? K - kg : CONV_KGROUP;
            const int with_bias = dbias != NULL && kg == 0;
            load_taps(wt, w, K, c0, nc, kg, nk);
            for (int j = 0; j < nk; j++)
                for (int c = 0; c < nc; c++) acc[j][c] = 0.0;
            for (int c = 0; c < nc; c++) accb[c] = 0.0;

            for (int b = 0; b < B; b++) {
                if (dact && kg == 0) /* act.c's silu_backward into zeros, element for element */
                    for (int t = 0; t < T; t++) {
                        size_t o = ((size_t)b * T + t) * C + c0;
                        const float *restrict da = dact + o, *restrict ds = dsilu + o;
                        float *restrict go = gsilu + o;
#pragma omp simd
                        for (int c = 0; c < nc; c++) go[c] = 0.0f + da[c] * ds[c];
                    }
                dx_rows(dx, lddx, dout, (const float (*)[CONV_CBLOCK])wt, b, T, C, c0, nc, kg, nk, K);
                wsums_seq(part, partb, dout, x, ldx, b, T, C, c0, nc, kg, nk, K, with_bias);
                for (int j = 0; j < nk; j++)
                    for (int cc = 0; cc < nc; cc++) acc[j][cc] += (double)part[j][cc];
                for (int cc = 0; cc < nc; cc++) accb[cc] += (double)partb[cc];
            }

            for (int j = 0; j < nk; j++)
                for (int c = 0; c < nc; c++) dw[(size_t)(c0 + c) * K + kg + j] += (float)acc[j][c];
            if (with_bias)
                for (int c = 0; c < nc; c++) dbias[c0 + c] += (float)accb[c];
        }
    }
}

void conv1d_backward(float *dx, int lddx, float *dw, float *dbias, const float *dout, const float *x, int ldx,
                     const float *w, int B, int T, int C, int K) {
    uint64_t t0 = prof_start();
    conv1d_backward_impl(dx, lddx, dw, dbias, dout, NULL, NULL, NULL, x, ldx, w, B, T, C, K);
    prof_stop(PROF_CONV, t0);
}

void conv1d_silu_backward(float *dx, int lddx, float *dw, float *dbias, float *dout, const float *dact,
                          const float *dsilu, const float *x, int ldx, const float *w, int B, int T, int C, int K) {
    uint64_t t0 = prof_start();
    conv1d_backward_impl(dx, lddx, dw, dbias, NULL, dout, dact, dsilu, x, ldx, w, B, T, C, K);
    prof_stop(PROF_CONV, t0);
}
