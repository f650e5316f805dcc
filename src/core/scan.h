/*
 * scan.h - the selective scan (S6) of Mamba, SPEC.md section 6.1 steps 5-8.
 *
 * For every sequence b and channel c (E channels, N states each):
 *   A[c,n]      = -exp(A_log[c,n])
 *   h[t,c,n]    = exp(delta[b,t,c] * A[c,n]) * h[t-1,c,n]
 *                 + delta[b,t,c] * Bm[b,t,n] * u[b,t,c]          (h[-1] = 0)
 *   y[b,t,c]    = sum_n Cm[b,t,n] * h[t,c,n] + D[c] * u[b,t,c]
 * (the Euler form of B-bar, exactly as the reference selective_scan_ref).
 *
 * Shapes: u, delta, y (B, T, E) dense; A_log (E, N); D (E);
 * Bm, Cm (B, T, N) stored with row stride ldbc (they are column slices of
 * the x_proj output (B, T, R + 2N), read in place).
 *
 * The forward saves the state at the end of every chunk of L =
 * scan_chunk_len(E, N) steps but the last into hck (B, ceil(T/L) - 1, N, E),
 * scan_ckpt_floats(B, T, E, N) floats: O(B T E N / L), not the O(B T E N)
 * of all the states. The backward recomputes one chunk at a time from its
 * checkpoint (states and decays, in per-thread scratch) and runs the reverse
 * recurrence through it. hck may be NULL in both: the forward then saves
 * nothing, and the backward makes each sequence's checkpoints itself (one
 * more pass over time, same results bitwise).
 * backward WRITES du and ddelta (B, T, E) and the N columns of dBm and dCm
 * in every row (stride ldbc; the row's other columns are not touched), and
 * ACCUMULATES into the parameter gradients dA_log and dD. (Writing spares
 * the caller a zeroing pass over three activation-sized buffers and the scan
 * a read of them.) Work is split over sequences b; dA_log and dD are summed
 * from per-sequence partials in a fixed order, so results do not depend on
 * the thread count.
 */
#ifndef ICL_SCAN_H
#define ICL_SCAN_H

#include <stddef.h>

/* Scratch floats that scan_forward/scan_backward need for `nthreads`. */
size_t scan_scratch_floats(int B, int T, int E, int N, int nthreads);
/* The backward's chunk length L, and the floats of the checkpoints hck. */
int scan_chunk_len(int E, int N);
size_t scan_ckpt_floats(int B, int T, int E, int N);
/* Test hook (like par_set_min_work): caps the chunk length at L (0: the
 * default, 32), so that small test shapes run through several chunks. The
 * sizes above depend on it: set it before sizing any scratch or checkpoint
 * buffer (before model_reserve), never while a scan runs. */
void scan_set_max_chunk(int L);
/* Whether shape (E, N) runs the register-blocked kernels (N = 16, E a
 * multiple of 16, on a target with AVX-512 and FMA; scan.c), and a test hook
 * that turns them off (1) or back on (0), so that tests can compare them
 * with the channel-major kernels. Never while a scan runs. */
int scan_blocked(int E, int N);
void scan_set_channel_major(int on);

void scan_forward(float *y, float *hck, const float *u, const float *delta, const float *A_log, const float *Bm,
                  const float *Cm, int ldbc, const float *D, int B, int T, int E, int N, float *scratch);
void scan_backward(float *du, float *ddelta, float *dA_log, float *dBm, float *dCm, float *dD, const float *dy,
                   const float *hck, const float *u, const float *delta, const float *A_log, const float *Bm,
                   const float *Cm, int ldbc, const float *D, int B, int T, int E, int N, float *scratch);

/* Probe: the states of sequence b, h (T, E, N), for the SSM-state panel. */
void scan_states(float *h, const float *u, const float *delta, const float *A_log, const float *Bm,
                 const float *Cm, int ldbc, int b, int T, int E, int N);

#endif
