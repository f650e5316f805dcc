/*
 * loss.h - the training losses, each masked by a per-row weight.
 *
 * Rows are prediction slots (N = B*T). mask[i] is 1 where the loss is read
 * and 0 elsewhere (other non-negative weights are allowed). Each loss is the
 * mask-weighted mean over rows, so its scale does not depend on how many
 * positions are read; if the mask sums to 0 the loss is 0 and no gradient
 * flows. backward ACCUMULATES dloss * dL/dpred into dpred.
 */
#ifndef ICL_LOSS_H
#define ICL_LOSS_H

/* MSE: pred, target (N, O); per row the mean over the O outputs.
 * L = sum_i m_i * mean_o (pred_io - target_io)^2 / sum_i m_i. */
double loss_mse_forward(const float *pred, const float *target, const float *mask, int N, int O);
void loss_mse_backward(float *dpred, float dloss, const float *pred, const float *target, const float *mask,
                       int N, int O);

/* Binary cross-entropy on a logit: pred (N) logits, target (N) in [0, 1].
 * Stable form: max(z,0) - z*t + log(1 + exp(-|z|)). */
double loss_bce_forward(const float *pred, const float *target, const float *mask, int N);
void loss_bce_backward(float *dpred, float dloss, const float *pred, const float *target, const float *mask,
                       int N);

/* Cross-entropy over V classes: logits (N, V), target (N) class indices
 * (rows whose mask is 0 may hold any index, including -1). */
double loss_ce_forward(const float *logits, const int *target, const float *mask, int N, int V);
void loss_ce_backward(float *dlogits, float dloss, const float *logits, const int *target, const float *mask,
                      int N, int V);

#endif
