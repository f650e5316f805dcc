/*
 * delta.h - Mamba's time step delta in one pass: dt_proj, its bias and the
 * softplus of SPEC.md 6.1 step 4 (mamba_simple.py's dt_proj followed by
 * selective_scan_fn's delta_bias and delta_softplus), forward and backward.
 *
 *   dt_pre[i,c] = b[c] + sum_{r<R} dl[i,r] W[c,r]
 *   delta[i,c]  = softplus(dt_pre[i,c])     (identity above 20, as act.h)
 *
 * Shapes: dl (M, R) with row stride ldl >= R (the first R columns of the
 * x_proj output (M, R + 2N), read in place); W (E, R) row-major, as
 * PyTorch's dt_proj.weight; b (E); dt_pre and delta (M, E) dense.
 *
 * backward WRITES ddl (row stride lddl; its first R columns, the rest
 * untouched) and ACCUMULATES (+=) into dW and db, given ddelta (M, E):
 *   g[i,c]    = ddelta[i,c] * sigmoid(dt_pre[i,c])
 *   ddl[i,r]  = sum_c g[i,c] W[c,r]
 *   dW[c,r]  += sum_i g[i,c] dl[i,r]
 *   db[c]    += sum_i g[i,c]
 *
 * Why one kernel and not a GEMM, a bias pass and a softplus pass: R is tiny
 * (ceil(d_model / 16): 4 to 16), and a GEMM with an inner dimension or a
 * side of 4 runs at a quarter of OpenBLAS's speed and is never worth
 * splitting over threads; the three passes read and write (M, E) six times
 * and open three parallel regions, the backward five (softplus', the bias
 * column sum, two GEMMs, a zeroed buffer). Here the forward is one pass
 * writing dt_pre and delta, the backward one pass reading ddelta and dt_pre
 * (g never reaches memory) plus an ordered sum of per-block partials.
 *
 * scratch: delta_scratch_floats(M, E, R) floats (W transposed, and the
 * backward's partials of dW and db for each block of DELTA_ROWS rows).
 * Determinism: every row of delta, dt_pre and ddl is computed by one thread
 * in a fixed order; dW and db are summed per block of rows and the blocks
 * added in block order, so all results are bitwise independent of the
 * number of threads. Called inside a parallel region the kernels run on the
 * calling thread; concurrent callers each pass their own scratch (the
 * model's shards do).
 */
#ifndef ICL_DELTA_H
#define ICL_DELTA_H

#include <stddef.h>

/* Rows per partial sum of the backward (the unit of its parallel loop). */
#define DELTA_ROWS 64

size_t delta_scratch_floats(int M, int E, int R);

void delta_forward(float *delta, float *dt_pre, const float *dl, int ldl, const float *W, const float *b, int M,
                   int E, int R, float *scratch);
void delta_backward(float *ddl, int lddl, float *dW, float *db, const float *ddelta, const float *dl, int ldl,
                    const float *dt_pre, const float *W, int M, int E, int R, float *scratch);

#endif
