/*
 * delta.c - Mamba's time step delta = softplus(dl W_dt^T + b_dt) in one
 * pass, forward and backward (the contract and the reasons are in delta.h).
 *
 * Layout: W (E, R) is transposed once per call into WT (R, E) in scratch, so
 * every inner loop runs along the E channels (`omp simd`):
 *   forward, row i:  acc[c] = b[c] + sum_r dl[i,r] WT[r,c]   (R axpys)
 *                    then the softplus of the row, by blocks of SP_BLOCK
 *   backward, row i: g[c] = ddelta[i,c] sigmoid(dt_pre[i,c])
 *                    ddl[i,r] += sum_c g[c] WT[r,c]          (R dots)
 *                    part_W[r,c] += g[c] dl[i,r], part_b[c] += g[c]
 * with the partials (R + 1, E) of each block of DELTA_ROWS rows in scratch,
 * and the blocks summed in order at the end (one parallel region: a loop
 * over row blocks, its barrier, a loop over channels).
 *
 * softplus is fastmath.h's fm_softplus_block, as act.c's softplus_forward,
 * so delta is bitwise what
 * softplus_forward(dt_pre) gives; the sigmoid of the backward is
 * fm_sigmoidf, as softplus_backward.
 */
#include "delta.h"

#include <string.h>

#include "core/fastmath.h"
#include "core/parallel.h"
#include "core/prof.h"

/* Channels per softplus/sigmoid block (stack buffers of this size). */
#define SP_BLOCK FM_SOFTPLUS_BLOCK

size_t delta_scratch_floats(int M, int E, int R) {
    if (M <= 0 || E <= 0 || R <= 0) return 0;
    size_t nblk = ((size_t)M + DELTA_ROWS - 1) / DELTA_ROWS;
    return (size_t)R * E + nblk * ((size_t)R + 1) * E;
}

static void transpose_W(float *WT, const float *W, int E, int R) {
    for (int c = 0; c < E; c++)
        for (int r = 0; r < R; r++) WT[(size_t)r * E + c] = W[(size_t)c * R + r];
}

static void delta_forward_impl(float *delta, float *dt_pre, const float *dl, int ldl, const float *W,
                               const float *b, int M, int E, int R, float *scratch) {
    if (M <= 0 || E <= 0) return;
    float *WT = scratch;
    if (R > 0) transpose_W(WT, W, E, R);
#pragma omp parallel for schedule(static) if ((size_t)M * E >= PAR_MIN_WORK)
    for (int i = 0; i < M; i++) {
        const float *dli = dl + (size_t)i * ldl;
        float *restrict pre = dt_pre + (size_t)i * E;
        /* the sum starts at r = 0 and adds the bias last: the order of a
         * GEMM with beta 0 followed by the bias pass, the path this replaced */
#pragma omp simd
        for (int c = 0; c < E; c++) pre[c] = 0.0f;
        for (int r = 0; r < R; r++) {
            const float *restrict wr = WT + (size_t)r * E;
            float a = dli[r];
#pragma omp simd
            for (int c = 0; c < E; c++) pre[c] = FM_FMA(a, wr[c], pre[c]);
        }
#pragma omp simd
        for (int c = 0; c < E; c++) pre[c] += b[c];
        float *d = delta + (size_t)i * E;
        for (int c0 = 0; c0 < E; c0 += SP_BLOCK)
            fm_softplus_block(d + c0, pre + c0, E - c0 < SP_BLOCK ? E - c0 : SP_BLOCK);
    }
}

void delta_forward(float *delta, float *dt_pre, const float *dl, int ldl, const float *W, const float *b, int M,
                   int E, int R, float *scratch) {
    uint64_t t0 = prof_start();
    delta_forward_impl(delta, dt_pre, dl, ldl, W, b, M, E, R, scratch);
    prof_stop(PROF_ELEMENTWISE, t0);
}

/* Rows lo..hi-1 into this block's partials pW (R, E) and pb (E), which
 * start at zero; ddl written (its row's sum over the first channel block,
 * then the later blocks added: 0 + s would be the same bits). */
static void backward_rows(float *ddl, int lddl, float *restrict pW, float *restrict pb, const float *ddelta,
                          const float *dl, int ldl, const float *dt_pre, const float *WT, int lo, int hi, int E,
                          int R) {
    float g[SP_BLOCK];
    for (int i = lo; i < hi; i++) {
        const float *dli = dl + (size_t)i * ldl;
        float *ddli = ddl + (size_t)i * lddl;
        for (int c0 = 0; c0 < E; c0 += SP_BLOCK) {
            int m = E - c0 < SP_BLOCK ? E - c0 : SP_BLOCK;
            const float *restrict dd = ddelta + (size_t)i * E + c0, *restrict x = dt_pre + (size_t)i * E + c0;
            float *restrict pbc = pb + c0;
#pragma omp simd
            for (int c = 0; c < m; c++) {
                g[c] = dd[c] * fm_sigmoidf(x[c]);
                pbc[c] += g[c];
            }
            for (int r = 0; r < R; r++) {
                const float *restrict wr = WT + (size_t)r * E + c0;
                float *restrict pr = pW + (size_t)r * E + c0;
                float a = dli[r], s = 0.0f;
#pragma omp simd reduction(+ : s)
                for (int c = 0; c < m; c++) {
                    s = FM_FMA(g[c], wr[c], s);
                    pr[c] = FM_FMA(g[c], a, pr[c]);
                }
                ddli[r] = c0 == 0 ? s : ddli[r] + s;
            }
        }
    }
}

static void delta_backward_impl(float *ddl, int lddl, float *dW, float *db, const float *ddelta, const float *dl,
                                int ldl, const float *dt_pre, const float *W, int M, int E, int R,
                                float *scratch) {
    if (M <= 0 || E <= 0) return;
    const int nblk = (M + DELTA_ROWS - 1) / DELTA_ROWS;
    const size_t pstride = ((size_t)R + 1) * E; /* one block's partials: W (R, E), then b (E) */
    float *WT = scratch, *parts = scratch + (size_t)R * E;
    if (R > 0) transpose_W(WT, W, E, R);
#pragma omp parallel if ((size_t)M * E >= PAR_MIN_WORK)
    {
#pragma omp for schedule(static)
        for (int k = 0; k < nblk; k++) {
            float *pW = parts + (size_t)k * pstride, *pb = pW + (size_t)R * E;
            memset(pW, 0, pstride * sizeof(float));
            int lo = k * DELTA_ROWS, hi = lo + DELTA_ROWS < M ? lo + DELTA_ROWS : M;
            backward_rows(ddl, lddl, pW, pb, ddelta, dl, ldl, dt_pre, WT, lo, hi, E, R);
        }
        /* the blocks in order, each (r, c) summed serially: thread-count
         * independent; 16 channels at a time so the adds run along c */
#pragma omp for schedule(static)
        for (int c0 = 0; c0 < E; c0 += 16) {
            int m = E - c0 < 16 ? E - c0 : 16;
            for (int r = 0; r <= R; r++) { /* r == R: the bias */
                float acc[16] = {0};
                for (int k = 0; k < nblk; k++) {
                    const float *p = parts + (size_t)k * pstride + (size_t)r * E + c0;
#pragma omp simd
                    for (int c = 0; c < m; c++) acc[c] += p[c];
                }
                if (r < R)
                    for (int c = 0; c < m; c++) dW[(size_t)(c0 + c) * R + r] += acc[c];
                else
                    for (int c = 0; c < m; c++) db[c0 + c] += acc[c];
            }
        }
    }
}

void delta_backward(float *ddl, int lddl, float *dW, float *db, const float *ddelta, const float *dl, int ldl,
                    const float *dt_pre, const float *W, int M, int E, int R, float *scratch) {
    uint64_t t0 = prof_start();
    delta_backward_impl(ddl, lddl, dW, db, ddelta, dl, ldl, dt_pre, W, M, E, R, scratch);
    prof_stop(PROF_ELEMENTWISE, t0);
}
