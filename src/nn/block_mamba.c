/*
 * block_mamba.c - the pre-norm Mamba-1 block, forward and backward, exactly
 * the maths of SPEC.md 6.1 (mamba_simple.py with selective_scan_ref):
 *
 *   u      = LN(res)                                   (B,T,D)
 *   [x|z]  = u W_in^T                                  (B,T,2E)  no bias
 *   xc     = conv1d_causal(x) + b_conv                 (B,T,E)   depthwise, K taps
 *   xs     = SiLU(xc)                                  (B,T,E)   (SiLU'(xc) is kept in xc's place)
 *   [dl|B|C] = xs W_x^T                                (B,T,R+2N) no bias
 *   delta  = softplus(dl W_dt^T + b_dt)                (B,T,E)   core/delta.c, one pass
 *   y      = selective_scan(xs, delta, A_log, B, C, D) (B,T,E)   core/scan.c
 *            (saving its chunk checkpoints in hck for the backward)
 *   yg     = y * SiLU(z)                               (B,T,E)   (SiLU(z), y SiLU'(z) kept in z's, y's places)
 *   res'   = res + yg W_out^T                          (B,T,D)   no bias
 *
 * B and C are read in place as column slices of the x_proj output (row
 * stride R+2N), and x and z as slices of the in_proj output (stride 2E), so
 * no copies are made. The backward walks the same steps in reverse.
 */

#include "core/blas.h"
#include "core/conv1d.h"
#include "core/delta.h"
#include "core/fastmath.h"
#include "core/layernorm.h"
#include "core/parallel.h"
#include "core/scan.h"
#include "core/tick.h"
#include "nn/model_internal.h"

void mamba_block_forward(const model *m, block *bl, float *res_out, const float *res_in, int B, int T) {
    const int D = m->D, E = m->E, N = m->N, R = m->R, K = m->K, BT = B * T, W = R + 2 * N;
    float *const *P = bl->p;
    layernorm_forward(bl->ln_out, bl->ln_mean, bl->ln_rstd, res_in, P[MB_LN_W], P[MB_LN_B], BT, D);
    /* xz = u W_in^T:  in_proj, (BT, D) x (D, 2E) */
    blas_gemm(0, 1, BT, 2 * E, D, 1.0f, bl->ln_out, D, P[MB_IN_W], D, 0.0f, bl->xz, 2 * E);
    /* xs = silu(conv1d(x)); xc keeps silu'(conv1d(x)) for the backward */
    conv1d_silu_forward(bl->xs, bl->xc, bl->xz, 2 * E, P[MB_CONV_W], P[MB_CONV_B], B, T, E, K);
    /* dbc = xs W_x^T: x_proj, (BT, E) x (E, R+2N) */
    blas_gemm(0, 1, BT, W, E, 1.0f, bl->xs, E, P[MB_XPROJ_W], E, 0.0f, bl->dbc, W);
    /* delta = softplus(dt_pre), dt_pre = dl W_dt^T + b_dt, with dl the first
     * R columns of dbc */
    delta_forward(bl->delta, bl->dt_pre, bl->dbc, W, P[MB_DT_W], P[MB_DT_B], BT, E, R, m->delta_scratch);
    /* the selective scan */
    scan_forward(bl->y, bl->hck, bl->xs, bl->delta, P[MB_A_LOG], bl->dbc + R, bl->dbc + R + N, W, P[MB_D], B, T, E, N,
                 m->scan_scratch);
    icl_tick(); /* the scan is most of the block: let a screen redraw on each side of it */
    /* gate: yg = y * silu(z), z the second half of xz. Only the backward
     * reads z and y after this, and only for the two partial derivatives:
     * z's place keeps silu(z) = d yg / d y and y's place y silu'(z) = d yg /
     * d z, so the backward evaluates no sigmoid */
#pragma omp parallel for schedule(static) if ((size_t)BT * E >= PAR_MIN_WORK)
    for (int i = 0; i < BT; i++) {
        float *restrict z = bl->xz + (size_t)i * 2 * E + E;
        float *restrict y = bl->y + (size_t)i * E;
        float *restrict yg = bl->yg + (size_t)i * E;
#pragma omp simd
        for (int c = 0; c < E; c++) {
            float zc = z[c], yc = y[c], sg = fm_sigmoidf(zc), sz = zc * sg;
            yg[c] = yc * sz;
            z[c] = sz;
            y[c] = yc * fm_silu_grad(zc, sg);
        }
    }
    /* res' = res + yg W_out^T */
    linear_forward_residual(res_out, bl->yg, P[MB_OUT_W], NULL, res_in, BT, E, D);
}

void mamba_block_backward(const model *m, block *bl, float *dres, const float *res_in, const block_scratch *s,
                          int B, int T) {
    const int D = m->D, E = m->E, N = m->N, R = m->R, K = m->K, BT = B * T, W = R + 2 * N;
    float *const *P = bl->p, *const *G = bl->g;
    float *dxz = s->d1, *ddbc = s->d2;
    float *dxc = s->e[0], *dxs = s->e[1], *ddelta = s->e[2], *dy = s->e[3], *dyg = s->e[4];

    /* out_proj: dyg = dres W_out; dW_out += dres^T yg */
    blas_gemm(0, 0, BT, E, D, 1.0f, dres, D, P[MB_OUT_W], E, 0.0f, dyg, E);
    blas_gemm(1, 0, D, E, BT, 1.0f, dres, D, bl->yg, E, 1.0f, G[MB_OUT_W], E);

    /* gate: dy = dyg * silu(z); dz = dyg * y * silu'(z) into the z half of
     * dxz (conv1d_silu_backward writes its x half); the forward left silu(z)
     * in z's place and y silu'(z) in y's */
#pragma omp parallel for schedule(static) if ((size_t)BT * E >= PAR_MIN_WORK)
    for (int i = 0; i < BT; i++) {
        const float *restrict sz = bl->xz + (size_t)i * 2 * E + E;
        const float *restrict ydz = bl->y + (size_t)i * E;
        const float *restrict g = dyg + (size_t)i * E;
        float *restrict dyi = dy + (size_t)i * E, *restrict dz = dxz + (size_t)i * 2 * E + E;
#pragma omp simd
        for (int c = 0; c < E; c++) {
            dyi[c] = g[c] * sz[c];
            dz[c] = g[c] * ydz[c];
        }
    }

    /* selective scan backward: writes dxs, ddelta and the dB, dC columns of
     * ddbc (delta_backward writes its first R, ddl), accumulates dA_log, dD */
    scan_backward(dxs, ddelta, G[MB_A_LOG], ddbc + R, ddbc + R + N, G[MB_D], dy, bl->hck, bl->xs, bl->delta,
                  P[MB_A_LOG], bl->dbc + R, bl->dbc + R + N, W, P[MB_D], B, T, E, N, m->scan_scratch);
    icl_tick();

    /* delta = softplus(dl W_dt^T + b_dt): ddl into the first R columns of ddbc */
    delta_backward(ddbc, W, G[MB_DT_W], G[MB_DT_B], ddelta, bl->dbc, W, bl->dt_pre, P[MB_DT_W], BT, E, R,
                   m->delta_scratch);

    /* x_proj: dxs += ddbc W_x; dW_x += ddbc^T xs */
    blas_gemm(0, 0, BT, E, W, 1.0f, ddbc, W, P[MB_XPROJ_W], E, 1.0f, dxs, E);
    blas_gemm(1, 0, W, E, BT, 1.0f, ddbc, W, bl->xs, E, 1.0f, G[MB_XPROJ_W], E);

    /* xs = silu(conv1d(x)), xc = its silu': dxc is the kernel's scratch */
    conv1d_silu_backward(dxz, 2 * E, G[MB_CONV_W], G[MB_CONV_B], dxc, dxs, bl->xc, bl->xz, 2 * E, P[MB_CONV_W], B, T,
                         E, K);

    /* in_proj: du = dxz W_in; dW_in += dxz^T u */
    blas_gemm(0, 0, BT, D, 2 * E, 1.0f, dxz, 2 * E, P[MB_IN_W], D, 0.0f, s->dln, D);
    blas_gemm(1, 0, 2 * E, D, BT, 1.0f, dxz, 2 * E, bl->ln_out, D, 1.0f, G[MB_IN_W], D);

    layernorm_backward(dres, G[MB_LN_W], G[MB_LN_B], s->dln, res_in, P[MB_LN_W], bl->ln_mean, bl->ln_rstd, BT, D);
}
