/*
 * act.c - elementwise activations: tanh-GELU, SiLU, softplus, and the scalar
 * helpers (sigmoid, softplus, silu) other kernels reuse.
 *
 * Every array is a flat run of n floats (any shape, e.g. (B, T, C)).
 * forward(out, inp, n) may run in place (out == inp): each element is read
 * once before its output is written. backward(dinp, dout, inp, n)
 * ACCUMULATES dout * f'(inp) into dinp; it recomputes what it needs from inp,
 * so forward saves nothing. The exception is GELU's kept pair for a training
 * step (gelu_forward_keep / gelu_backward_kept): the forward also writes the
 * derivative, and the backward writes dinp from it.
 *
 * Numerics: single precision throughout (these are memory-bound loops), but
 * written so nothing overflows: sigmoid never evaluates exp of a positive
 * number, softplus is the identity above 20 (where log1p(e^x) = x to float
 * precision) and log1pf(expf(x)) below, which is accurate down to large
 * negative x where the result underflows gracefully to 0.
 *
 * What it is not: a fused kernel library. Parallel (OpenMP over elements)
 * only when n >= ACT_PAR_MIN, since a parallel region costs more than a
 * short loop.
 */
#include "act.h"
#include "core/prof.h"

#include <math.h>

#include "core/fastmath.h"

#define ACT_PAR_MIN ((size_t)1 << 15)

/* sqrt(2/pi) and the cubic coefficient of GPT-2's "gelu_new" */
#define GELU_SCALE 0.7978845608028654f
#define GELU_CUBIC 0.044715f
#define GELU_SATURATE 10.0f /* |u| > 43 beyond this: tanhf(u) == +-1 */

/* ------------------------------------------------------------------------ */
/* scalar helpers                                                           */
/* ------------------------------------------------------------------------ */

/* The polynomial forms of core/fastmath.h: same results to a few ulp as
 * expf/log1pf, but the loops below vectorise (libm calls do not), which
 * made these activations about a fifth of a Mamba training step. */
float act_sigmoid(float x) { return fm_sigmoidf(x); }

float act_softplus(float x) { return fm_softplusf(x); }

float act_silu(float x) { return x * fm_sigmoidf(x); }

/* ------------------------------------------------------------------------ */
/* GELU (tanh form)                                                         */
/* ------------------------------------------------------------------------ */

/* gelu(x) = 0.5 x (1 + tanh(u)),  u = s (x + c x^3).
 * Since 0.5 (1 + tanh(u)) = sigmoid(2u), this is x * sigmoid(2u): the same
 * function, computed with the vectorisable sigmoid of core/fastmath.h
 * (tanhf is a libm call; it made GELU about half of a Transformer step).
 * gelu_sig gives sigmoid(2u), which the value and the derivative share. */
static inline __attribute__((always_inline)) float gelu_sig(float x) {
    float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
    return fm_sigmoidf(2.0f * u);
}

/* d gelu / dx = g + x g (1 - g) 2 du/dx,  g = sigmoid(2u),
 * du/dx = s (1 + 3 c x^2). For |x| > 10, g is 0 or 1 exactly and the
 * derivative is taken as 0 or 1 (du/dx overflows for |x| > 1e19, and
 * 0 * inf would make a NaN). */
static inline __attribute__((always_inline)) float gelu_grad(float x, float g) {
    float du = GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
    float grad = g + x * g * (1.0f - g) * 2.0f * du;
    float sat = x > 0.0f ? 1.0f : 0.0f;
    return fabsf(x) > GELU_SATURATE ? sat : grad;
}

static void gelu_forward_impl(float *out, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * gelu_sig(inp[i]);
}

void gelu_forward(float *out, const float *inp, size_t n) {
    uint64_t t0 = prof_start();
    gelu_forward_impl(out, inp, n);
    prof_stop(PROF_ELEMENTWISE, t0);
}

static void gelu_backward_impl(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * gelu_grad(inp[i], gelu_sig(inp[i]));
}

void gelu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    uint64_t t0 = prof_start();
    gelu_backward_impl(dinp, dout, inp, n);
    prof_stop(PROF_ELEMENTWISE, t0);
}

/* One sigmoid per element for the pair instead of two, and a backward that
 * streams three arrays: at the small Transformer (B 64, T 41, 4D 256) the
 * backward's sigmoid and the zeroing of dinp before it were 8% of a step. No
 * restrict: dgelu may be inp (each element is read before it is written). */
static void gelu_forward_keep_impl(float *out, float *dgelu, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i], g = gelu_sig(x);
        out[i] = x * g;
        dgelu[i] = gelu_grad(x, g);
    }
}

void gelu_forward_keep(float *out, float *dgelu, const float *inp, size_t n) {
    uint64_t t0 = prof_start();
    gelu_forward_keep_impl(out, dgelu, inp, n);
    prof_stop(PROF_ELEMENTWISE, t0);
}

/* 0.0f + ...: the bits of gelu_backward into zeros, a -0 product included */
static void gelu_backward_kept_impl(float *restrict dinp, const float *restrict dout, const float *restrict dgelu,
                                    size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) dinp[i] = 0.0f + dout[i] * dgelu[i];
}

void gelu_backward_kept(float *dinp, const float *dout, const float *dgelu, size_t n) {
    uint64_t t0 = prof_start();
    gelu_backward_kept_impl(dinp, dout, dgelu, n);
    prof_stop(PROF_ELEMENTWISE, t0);
}

/* ------------------------------------------------------------------------ */
/* SiLU                                                                     */
/* ------------------------------------------------------------------------ */

static void silu_forward_impl(float *out, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) out[i] = inp[i] * fm_sigmoidf(inp[i]);
}

void silu_forward(float *out, const float *inp, size_t n) {
    uint64_t t0 = prof_start();
    silu_forward_impl(out, inp, n);
    prof_stop(PROF_ELEMENTWISE, t0);
}

/* d silu / dx = s + x s (1 - s) = s (1 + x (1 - s)),  s = sigmoid(x) */
static void silu_backward_impl(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float s = fm_sigmoidf(x);
        dinp[i] += dout[i] * fm_silu_grad(x, s); /* the factor conv1d_silu_forward keeps */
    }
}

void silu_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    uint64_t t0 = prof_start();
    silu_backward_impl(dinp, dout, inp, n);
    prof_stop(PROF_ELEMENTWISE, t0);
}

/* ------------------------------------------------------------------------ */
/* softplus                                                                 */
/* ------------------------------------------------------------------------ */

/* By blocks of FM_SOFTPLUS_BLOCK (fastmath.h says why not one loop). */
static void softplus_forward_impl(float *out, const float *inp, size_t n) {
    const size_t nblk = (n + FM_SOFTPLUS_BLOCK - 1) / FM_SOFTPLUS_BLOCK;
#pragma omp parallel for schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t b = 0; b < nblk; b++) {
        const size_t lo = b * FM_SOFTPLUS_BLOCK, m = n - lo < FM_SOFTPLUS_BLOCK ? n - lo : FM_SOFTPLUS_BLOCK;
        fm_softplus_block(out + lo, inp + lo, (int)m);
    }
}

void softplus_forward(float *out, const float *inp, size_t n) {
    uint64_t t0 = prof_start();
    softplus_forward_impl(out, inp, n);
    prof_stop(PROF_ELEMENTWISE, t0);
}

/* d softplus / dx = sigmoid(x) on both branches: above 20 it is 1 to float
 * precision, which is also the slope of the identity branch. */
static void softplus_backward_impl(float *dinp, const float *dout, const float *inp, size_t n) {
#pragma omp parallel for simd schedule(static) if (n >= ACT_PAR_MIN)
    for (size_t i = 0; i < n; i++) dinp[i] += dout[i] * fm_sigmoidf(inp[i]);
}

void softplus_backward(float *dinp, const float *dout, const float *inp, size_t n) {
    uint64_t t0 = prof_start();
    softplus_backward_impl(dinp, dout, inp, n);
    prof_stop(PROF_ELEMENTWISE, t0);
}
