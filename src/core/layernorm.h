/*
 * layernorm.h - LayerNorm over the last axis (eps 1e-5, as GPT-2 and Mamba).
 *
 * inp, out: (N, C) rows (N = B*T tokens); weight, bias: (C);
 * mean, rstd: (N), saved by forward for backward.
 * backward accumulates into dinp, dweight, dbias (+=). The weight and bias
 * gradients are reduced over rows in a fixed order (parallel over channels),
 * so results do not depend on the thread count.
 */
#ifndef ICL_LAYERNORM_H
#define ICL_LAYERNORM_H

#define LAYERNORM_EPS 1e-5f

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp, const float *weight,
                       const float *bias, int N, int C);
void layernorm_backward(float *dinp, float *dweight, float *dbias, const float *dout, const float *inp,
                        const float *weight, const float *mean, const float *rstd, int N, int C);

#endif
