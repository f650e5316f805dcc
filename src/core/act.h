/*
 * act.h - elementwise activations with forward/backward pairs.
 *
 * Argument order (the project's rule): forward(out, inp, n);
 * backward(dinp, dout, inp, n) ACCUMULATES into dinp (+=), so gradients from
 * several consumers add up; zeroing is the caller's explicit job.
 * out may alias inp in forward. Parallel over elements (OpenMP) when n is large.
 */
#ifndef ICL_ACT_H
#define ICL_ACT_H

#include <stddef.h>

/* tanh-form GELU ("gelu_new" of GPT-2):
 * 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
void gelu_forward(float *out, const float *inp, size_t n);
void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n);
/* The same GELU for a training step, its derivative kept instead of
 * recomputed: gelu_forward_keep writes out = gelu(inp) and dgelu =
 * gelu'(inp), and dgelu may be inp itself (the MLP block keeps it in place of
 * the pre-activation, which only its backward read); gelu_backward_kept
 * WRITES dinp = dout * dgelu. The bits of gelu_forward, and of
 * gelu_backward into zeros. */
void gelu_forward_keep(float *out, float *dgelu, const float *inp, size_t n);
void gelu_backward_kept(float *dinp, const float *dout, const float *dgelu, size_t n);

/* SiLU: x * sigmoid(x). */
void silu_forward(float *out, const float *inp, size_t n);
void silu_backward(float *dinp, const float *dout, const float *inp, size_t n);

/* Stable softplus log(1 + e^x): identity above 20, log1p(exp(x)) below. */
void softplus_forward(float *out, const float *inp, size_t n);
void softplus_backward(float *dinp, const float *dout, const float *inp, size_t n);

float act_softplus(float x);
float act_sigmoid(float x);
float act_silu(float x);

#endif
