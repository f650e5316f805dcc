/*
 * optim.h - Adam and AdamW over the model's flat parameter block, global
 * gradient-norm clipping, and learning-rate schedules.
 *
 * The moments m and v mirror the parameter block element for element, so an
 * update is one flat loop (parallel, elementwise: deterministic) and saving
 * the optimiser is two tensors. The gradient norm is reduced over fixed
 * chunks in a fixed order, so it does not depend on the thread count.
 */
#ifndef ICL_OPTIM_H
#define ICL_OPTIM_H

#include <stddef.h>

#include "core/status.h"

typedef enum { SCHED_CONSTANT = 0, SCHED_WARMUP = 1, SCHED_COSINE = 2 } lr_schedule;

typedef struct {
    float lr;            /* peak learning rate */
    float beta1, beta2, eps;
    float weight_decay;  /* 0 = none */
    int decoupled;       /* 1 = AdamW (decay applied to the weights), 0 = Adam (L2 added to the gradient) */
    float clip;          /* global gradient-norm clip; 0 = off */
    lr_schedule schedule;
    long warmup;         /* steps of linear warm-up (SCHED_WARMUP, SCHED_COSINE) */
    long total;          /* cosine: steps until lr reaches min_lr */
    float min_lr;
} optim_config;

typedef struct {
    optim_config cfg;
    size_t n;
    float *m, *v;        /* (n) first and second moments */
    long t;              /* updates done (bias correction uses t) */
    double last_grad_norm; /* before clipping */
    double last_lr;
} optim;

/* Paper defaults: Adam, betas (0.9, 0.999), eps 1e-8, no decay, constant lr. */
void optim_config_default(optim_config *c);
icl_status optim_config_validate(const optim_config *c);
icl_status optim_create(optim *o, const optim_config *c, size_t n);
void optim_free(optim *o);
void optim_reset(optim *o); /* zero moments and t */

/* The learning rate of update number t (0-based) under the schedule. */
double optim_lr_at(const optim_config *c, long t);
/* L2 norm of g (n), in double, deterministic. */
double optim_grad_norm(const float *g, size_t n);
/* One update with g scaled to the clip if configured (g itself is not
 * written), then Adam(W). Returns ICL_ERR_NUMERIC (and changes nothing) if
 * the gradient norm is not finite. */
icl_status optim_step(optim *o, float *params, const float *grads);
/* The same with the gradient norm already computed (optim_grad_norm of
 * grads): the trainer computes it once for its checks and the update. */
icl_status optim_step_norm(optim *o, float *params, const float *grads, double norm);
/* The first flat index whose parameter or moment the next update (with
 * this norm) would make NaN or Inf, computed exactly as optim_step_norm
 * would, nothing stored; o->n if none. Lets a caller refuse a step before
 * anything is written. */
size_t optim_check(const optim *o, const float *params, const float *grads, double norm);

#endif
