/*
 * conv1d.h - causal depthwise 1-D convolution over time (Mamba's conv1d).
 *
 *   out[b,t,c] = bias[c] + sum_{k=0}^{K-1} w[c,k] * x[b, t-K+1+k, c]
 * with x at negative t taken as 0 (PyTorch Conv1d, groups = C, padding K-1,
 * output cut to the first T steps). No activation: the caller applies SiLU.
 *
 * Shapes: x (B, T, C) stored with row stride ldx >= C (so the x half of
 * Mamba's in_proj output (B, T, 2E) is read in place); out (B, T, C) dense;
 * w (C, K); bias (C) or NULL.
 * backward ACCUMULATES into dx (row stride lddx), dw, dbias (dbias may be
 * NULL). Weight gradients reduce over (b, t) per channel in a fixed order, so
 * results do not depend on the thread count.
 */
#ifndef ICL_CONV1D_H
#define ICL_CONV1D_H

void conv1d_forward(float *out, const float *x, int ldx, const float *w, const float *bias, int B, int T, int C,
                    int K);
void conv1d_backward(float *dx, int lddx, float *dw, float *dbias, const float *dout, const float *x, int ldx,
                     const float *w, int B, int T, int C, int K);

#endif
