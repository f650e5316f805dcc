/*
 * s4d.h - the input-independent diagonal SSM of S4-Mamba (SPEC.md 3.3):
 * S4D-Lin with Nh = N/2 complex modes per channel and a learned step.
 *
 * Parameters per channel c (E channels), mode n (Nh modes):
 *   log_dt (E)            dt_c = exp(log_dt[c])
 *   log_A_re (E, Nh)      A = -exp(log_A_re) + i * A_im
 *   A_im (E, Nh)
 *   C (E, Nh, 2)          complex C as (re, im) pairs
 * The ZOH kernel, for l = 0..L-1:
 *   K[l,c] = 2 Re sum_n C_n (exp(dt A_n) - 1) / A_n * exp(dt A_n l)
 * and the layer output is the causal long convolution plus skip, and the
 * S4-Mamba gate (without SiLU) fused in while the rows are in cache:
 *   y[b,t,c]  = sum_{l=0}^{t} K[l,c] u[b,t-l,c] + D[c] u[b,t,c]
 *   yg[b,t,c] = y[b,t,c] z[b,t,c]
 *
 * Shapes: K (L, E) with K[l,c] the weight of lag l, lag-major so the
 * convolution reads a lag's channels contiguously; u, y, yg (B, T, E); z
 * and dz (B, T) rows of E channels, ldz floats apart (the z half of the
 * block's [x | z]: ldz = 2E). The convolution uses lags l < T, so T <= L.
 * z NULL: no gate (yg, dz and dy unused, dyg is dy; the tests of the
 * convolution alone).
 *
 * The gradient dK of the kernel is double, (L, E): s4d_conv_backward
 * WRITES its rows l < T (the sum over its B sequences) and
 * s4d_kernel_backward reads rows l < L. s4d_conv_backward also WRITES du
 * and dz (the caller needs no zeroing pass over (B, T, E)); dy (B, T, E) is
 * its scratch for dy = dyg z, written a sequence at a time and read back by
 * that sequence's tiles. Every other gradient is ACCUMULATED. The kernel is
 * computed in double internally. Parallel over channels (deterministic).
 */
#ifndef ICL_S4D_H
#define ICL_S4D_H

void s4d_kernel_forward(float *K, const float *log_dt, const float *log_A_re, const float *A_im, const float *C,
                        int E, int Nh, int L);
void s4d_kernel_backward(float *dlog_dt, float *dlog_A_re, float *dA_im, float *dC, const double *dK,
                         const float *log_dt, const float *log_A_re, const float *A_im, const float *C, int E,
                         int Nh, int L);

void s4d_conv_forward(float *y, float *yg, const float *u, const float *z, int ldz, const float *K, const float *D,
                      int B, int T, int E);
void s4d_conv_backward(float *du, float *dz, double *dK, float *dD, float *dy, const float *dyg, const float *z,
                       int ldz, const float *y, const float *u, const float *K, const float *D, int B, int T, int E);

#endif
