/*
 * conv1d.h - causal depthwise 1-D convolution over time (Mamba's conv1d).
 *
 *   out[b,t,c] = bias[c] + sum_{k=0}^{K-1} w[c,k] * x[b, t-K+1+k, c]
 * with x at negative t taken as 0 (PyTorch Conv1d, groups = C, padding K-1,
 * output cut to the first T steps). conv1d_silu_* below add the SiLU that
 * follows it in both Mamba blocks.
 *
 * Shapes: x (B, T, C) stored with row stride ldx >= C (so the x half of
 * Mamba's in_proj output (B, T, 2E) is read in place); out (B, T, C) dense;
 * w (C, K); bias (C) or NULL.
 * backward WRITES dx (row stride lddx; the first C columns of each row, the
 * rest untouched) and ACCUMULATES into dw, dbias (dbias may be NULL):
 * writing spares the caller a zeroing pass and the kernel a read. Weight
 * gradients reduce over (b, t) per channel in a fixed order, so results do
 * not depend on the thread count.
 */
#ifndef ICL_CONV1D_H
#define ICL_CONV1D_H

void conv1d_forward(float *out, const float *x, int ldx, const float *w, const float *bias, int B, int T, int C,
                    int K);
void conv1d_backward(float *dx, int lddx, float *dw, float *dbias, const float *dout, const float *x, int ldx,
                     const float *w, int B, int T, int C, int K);

/* The conv followed by SiLU, as both Mamba blocks use it, in the same
 * passes. The forward writes act = SiLU(pre) and, instead of the
 * pre-activation pre = conv(x), its derivative dsilu = SiLU'(pre) (B, T, C),
 * which is all the backward needs of it: the backward then evaluates no
 * sigmoid. The backward takes dact, the gradient of act, writes dout = dact *
 * dsilu into the caller's scratch dout (B, T, C), overwritten, and from it
 * writes dx and accumulates dw, dbias as conv1d_backward.
 * Bitwise the results of conv1d_forward + silu_forward (act) and of
 * silu_backward (into zeros) + conv1d_backward (act.h's SiLU, the same
 * expressions), with one parallel region and one pass over (B, T, C) fewer
 * each way and no zeroing of dout. */
void conv1d_silu_forward(float *act, float *dsilu, const float *x, int ldx, const float *w, const float *bias, int B,
                         int T, int C, int K);
void conv1d_silu_backward(float *dx, int lddx, float *dw, float *dbias, float *dout, const float *dact,
                          const float *dsilu, const float *x, int ldx, const float *w, int B, int T, int C, int K);

#endif
