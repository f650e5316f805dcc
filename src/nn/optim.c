/*
 * optim.c - Adam/AdamW, clipping and schedules (see optim.h).
 * The update follows torch.optim.Adam / AdamW exactly:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * with Adam's weight decay added to g first, AdamW's applied as p -= lr*wd*p.
 */
#include "nn/optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void optim_config_default(optim_config *c) {
    memset(c, 0, sizeof *c);
    c->lr = 1e-4f;
    c->beta1 = 0.9f;
    c->beta2 = 0.999f;
    c->eps = 1e-8f;
    c->schedule = SCHED_CONSTANT;
    c->min_lr = 0.0f;
}

icl_status optim_config_validate(const optim_config *c) {
    if (!(c->lr >= 0) || !isfinite(c->lr)) return icl_fail(ICL_ERR_ARG, "optimizer: lr must be >= 0 (got %g)", c->lr);
    if (!(c->beta1 >= 0 && c->beta1 < 1)) return icl_fail(ICL_ERR_ARG, "optimizer: beta1 must be in [0, 1) (got %g)", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1)) return icl_fail(ICL_ERR_ARG, "optimizer: beta2 must be in [0, 1) (got %g)", c->beta2);
    if (!(c->eps > 0)) return icl_fail(ICL_ERR_ARG, "optimizer: eps must be > 0 (got %g)", c->eps);
    if (!(c->weight_decay >= 0)) return icl_fail(ICL_ERR_ARG, "optimizer: weight_decay must be >= 0 (got %g)", c->weight_decay);
    if (!(c->clip >= 0)) return icl_fail(ICL_ERR_ARG, "optimizer: clip must be >= 0 (got %g)", c->clip);
    if (c->warmup < 0) return icl_fail(ICL_ERR_ARG, "optimizer: warmup must be >= 0 (got %ld)", c->warmup);
    if (c->schedule == SCHED_COSINE && c->total <= c->warmup)
        return icl_fail(ICL_ERR_ARG, "optimizer: a cosine schedule needs total steps (%ld) > warmup (%ld)", c->total,
                        c->warmup);
    if (!(c->min_lr >= 0 && c->min_lr <= c->lr))
        return icl_fail(ICL_ERR_ARG, "optimizer: min_lr must be in [0, lr] (got %g)", c->min_lr);
    return ICL_OK;
}

icl_status optim_create(optim *o, const optim_config *c, size_t n) {
    memset(o, 0, sizeof *o);
    icl_status st = optim_config_validate(c);
    if (st) return st;
    o->cfg = *c;
    o->n = n;
    o->m = calloc(n ? n : 1, sizeof(float));
    o->v = calloc(n ? n : 1, sizeof(float));
    if (!o->m || !o->v) {
        optim_free(o);
        return icl_fail(ICL_ERR_NOMEM, "optimizer: cannot allocate moments for %zu parameters", n);
    }
    return ICL_OK;
}

void optim_free(optim *o) {
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

void optim_reset(optim *o) {
    memset(o->m, 0, sizeof(float) * o->n);
    memset(o->v, 0, sizeof(float) * o->n);
    o->t = 0;
}

double optim_lr_at(const optim_config *c, long t) {
    double lr = c->lr;
    if (c->schedule == SCHED_CONSTANT) return lr;
    if (t < c->warmup) return lr * (double)(t + 1) / (double)c->warmup;
    if (c->schedule == SCHED_WARMUP) return lr;
    /* cosine from lr (at the end of warm-up) down to min_lr at `total` */
    double p = (double)(t - c->warmup) / (double)(c->total - c->warmup);
    if (p > 1) p = 1;
    return c->min_lr + 0.5 * (lr - c->min_lr) * (1.0 + cos(M_PI * p));
}

#define NORM_CHUNK 4096

double optim_grad_norm(const float *g, size_t n) {
    size_t nchunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    double total = 0;
    /* Each chunk's partial sum is the same whatever thread computes it;
     * the partials are then added in chunk order. Chunks are processed in
     * groups of 64 so no allocation is needed. */
    for (size_t c0 = 0; c0 < nchunks; c0 += 64) {
        double part[64];
        size_t cn = nchunks - c0 < 64 ? nchunks - c0 : 64;
#pragma omp parallel for schedule(static) if (n > (1u << 16))
        for (size_t c = 0; c < cn; c++) {
            size_t lo = (c0 + c) * NORM_CHUNK, hi = lo + NORM_CHUNK < n ? lo + NORM_CHUNK : n;
            double s = 0;
            for (size_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
            part[c] = s;
        }
        for (size_t c = 0; c < cn; c++) total += part[c];
    }
    return sqrt(total);
}

icl_status optim_step(optim *o, float *params, float *grads) {
    const optim_config *c = &o->cfg;
    const size_t n = o->n;
    double norm = optim_grad_norm(grads, n);
    o->last_grad_norm = norm;
    if (!isfinite(norm))
        return icl_fail(ICL_ERR_NUMERIC, "optimizer: gradient norm is %s at update %ld; parameters left unchanged",
                        isnan(norm) ? "NaN" : "Inf", o->t + 1);
    float gscale = 1.0f;
    if (c->clip > 0 && norm > c->clip) gscale = (float)(c->clip / (norm + 1e-6));
    double lr = optim_lr_at(c, o->t);
    o->last_lr = lr;
    o->t++;
    const float b1 = c->beta1, b2 = c->beta2, eps = c->eps, wd = c->weight_decay;
    const float bc1 = (float)(1.0 - pow(b1, (double)o->t)), bc2 = (float)(1.0 - pow(b2, (double)o->t));
    const float flr = (float)lr;
    const int decoupled = c->decoupled;
    float *restrict p = params, *restrict g = grads, *restrict m = o->m, *restrict v = o->v;
#pragma omp parallel for schedule(static) if (n > (1u << 16))
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gscale;
        if (wd > 0 && !decoupled) gi += wd * p[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float mhat = m[i] / bc1, vhat = v[i] / bc2;
        if (wd > 0 && decoupled) p[i] -= flr * wd * p[i];
        p[i] -= flr * mhat / (sqrtf(vhat) + eps);
    }
    return ICL_OK;
}
