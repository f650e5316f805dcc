/*
 * attention.h - causal multi-head softmax attention, the part between the
 * fused QKV projection and the output projection.
 *
 * Shapes (B batch, T time, C channels, NH heads, hs = C / NH head size):
 *   qkv  (B, T, 3C)      q | k | v blocks of C each; head h uses columns
 *                        [h*hs, (h+1)*hs) of each block
 *   out  (B, T, C)       heads concatenated, head h at [h*hs, (h+1)*hs)
 *   att  (B, NH, T, T)   post-softmax probabilities, saved for backward and
 *                        read by the attention panel; entries above the
 *                        diagonal (future keys) are exactly 0
 * Scores are q.k / sqrt(hs); the softmax subtracts the row maximum.
 * backward ACCUMULATES into dqkv. Parallel over (b, h) with OpenMP, no BLAS
 * inside (so no nested threading); results do not depend on thread count.
 * scratch: attention_scratch_floats(T, C, NH, nthreads) floats, nthreads =
 * the caller's omp_get_max_threads() (one transposed head per thread);
 * inside an enclosing parallel region the loop runs on the calling thread
 * and 1 is enough, if concurrent callers each pass their own (model shards).
 */
#ifndef ICL_ATTENTION_H
#define ICL_ATTENTION_H

#include <stddef.h>

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH, float *scratch);
void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T, int C,
                        int NH, float *scratch);

/* Scratch floats that attention_forward/attention_backward need. */
size_t attention_scratch_floats(int T, int C, int NH, int nthreads);

#endif
