/*
 * batch.h - one batch of in-context prompts, as every task fills it and every
 * model, loss, metric and baseline reads it.
 *
 * Shapes (B prompts, T tokens per prompt, d token width, O prediction width):
 *   x        (B, T, d)  input tokens (continuous tasks); y-tokens carry y in
 *                       coordinate 0 and zeros elsewhere (SPEC.md 1.1)
 *   tok      (B, T)     token ids (token tasks, d unused), else NULL
 *   y        (B, T, O)  targets at prediction slots, 0 elsewhere
 *   ycls     (B, T)     class targets (cross-entropy tasks), else NULL
 *   mask     (B, T)     1 where the training loss is read, else 0
 *   metric   (B, T)     1 where the evaluation metric is read, else 0
 *   example  (B, T)     at a metric slot, the number of in-context examples
 *                       the prediction has seen (0 for the first); -1 elsewhere
 * Buffers are allocated once for (cap_B, cap_T) and reused; B and T say how
 * much of them the current batch uses (x is packed as (B, T, d) densely).
 */
#ifndef ICL_BATCH_H
#define ICL_BATCH_H

#include <stddef.h>

typedef enum { LOSS_MSE = 0, LOSS_BCE = 1, LOSS_CE = 2 } loss_kind;

typedef struct {
    int B, T, d, O;
    int cap_B, cap_T;
    loss_kind loss;
    float *x;
    int *tok;
    float *y;
    int *ycls;
    float *mask;
    float *metric;
    int *example;
    /* The samplers' per-thread scratch (task_batch_scratch): grown at the
     * first task_sample that needs more and then kept, so sampling a batch
     * in the training step allocates nothing. Freed by task_batch_free. */
    void *scratch;
    size_t scratch_bytes;
} batch;

#endif
