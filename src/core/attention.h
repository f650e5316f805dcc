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
 */
#ifndef ICL_ATTENTION_H
#define ICL_ATTENTION_H

void attention_forward(float *out, float *att, const float *qkv, int B, int T, int C, int NH);
void attention_backward(float *dqkv, const float *dout, const float *qkv, const float *att, int B, int T, int C,
                        int NH);

/* Scratch the backward pass needs, in floats (per-thread dP rows). */
int attention_scratch_floats(int T, int nthreads);

#endif
