/*
 * optim.c - Adam/AdamW, clipping and schedules (see optim.h).
 * The update follows torch.optim.Adam / AdamW exactly:
 *   m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2
 *   p -= lr * (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * with Adam's weight decay added to g first, AdamW's applied as p -= lr*wd*p.
 */
#include "nn/optim.h"
#include "core/parallel.h"

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

/* The optimiser's loops are memory-bound once vectorised (a few bytes per
 * parameter per pass): a second thread pays for its wake-up (tens to
 * hundreds of microseconds with passive waiting, src/main.c) only from
 * about a million parameters. At 119k parameters (S4-Mamba, d_model 64, one
 * thread) norm, check and update were 2.8% of a 31 ms step while scalar
 * (sqrtf may set errno, so GCC kept it a call) and are 0.4% vectorised
 * (perf, share of samples). */
#define OPTIM_MIN_PARALLEL (16 * PAR_MIN_WORK)

#define NORM_CHUNK 4096

double optim_grad_norm(const float *g, size_t n) {
    size_t nchunks = (n + NORM_CHUNK - 1) / NORM_CHUNK;
    double total = 0;
    /* Each chunk's partial sum is the same whatever thread computes it
     * (its lanes are summed in a fixed order by `omp simd`); the partials
     * are then added in chunk order. Chunks are processed in groups of 64
     * so no allocation is needed. */
    for (size_t c0 = 0; c0 < nchunks; c0 += 64) {
        double part[64];
        size_t cn = nchunks - c0 < 64 ? nchunks - c0 : 64;
#pragma omp parallel for schedule(static) if (n >= OPTIM_MIN_PARALLEL)
        for (size_t c = 0; c < cn; c++) {
            size_t lo = (c0 + c) * NORM_CHUNK, hi = lo + NORM_CHUNK < n ? lo + NORM_CHUNK : n;
            double s = 0;
#pragma omp simd reduction(+ : s)
            for (size_t i = lo; i < hi; i++) s += (double)g[i] * g[i];
            part[c] = s;
        }
        for (size_t c = 0; c < cn; c++) total += part[c];
    }
    return sqrt(total);
}

/* The constants of the next update (number o->t + 1) for gradient norm
 * `norm`. Passed by value into the loops, so the compiler knows the
 * parameter stores cannot change them. */
typedef struct {
    float gscale, b1, b2, bc1, bc2, lr, eps, wd;
    int l2;        /* Adam's weight decay: wd p added to the gradient */
    int decoupled; /* AdamW's: p -= lr wd p */
} adam_consts;

static adam_consts consts_of(const optim *o, double norm) {
    const optim_config *c = &o->cfg;
    adam_consts k;
    k.gscale = c->clip > 0 && norm > c->clip ? (float)(c->clip / (norm + 1e-6)) : 1.0f;
    const double t = (double)(o->t + 1);
    k.b1 = c->beta1;
    k.b2 = c->beta2;
    k.bc1 = (float)(1.0 - pow(k.b1, t));
    k.bc2 = (float)(1.0 - pow(k.b2, t));
    k.lr = (float)optim_lr_at(c, o->t);
    k.eps = c->eps;
    k.wd = c->weight_decay;
    k.l2 = k.wd > 0 && !c->decoupled;
    k.decoupled = k.wd > 0 && c->decoupled;
    return k;
}

/* One element's update, (p, m, v) in and out: the one place it is written,
 * so optim_check tests bit for bit what optim_step_norm stores (-std=c11
 * contracts nothing into FMAs; division and sqrtf are exactly rounded in
 * vector form too, which -fno-math-errno lets GCC use). */
static inline void adam_elem(adam_consts k, float g, float *p, float *m, float *v) {
    float gi = g * k.gscale;
    if (k.l2) gi += k.wd * *p;
    float mi = k.b1 * *m + (1.0f - k.b1) * gi;
    float vi = k.b2 * *v + (1.0f - k.b2) * gi * gi;
    float mhat = mi / k.bc1, vhat = vi / k.bc2;
    float pi = *p;
    if (k.decoupled) pi -= k.lr * k.wd * pi;
    pi -= k.lr * mhat / (sqrtf(vhat) + k.eps);
    *p = pi;
    *m = mi;
    *v = vi;
}

/* The update of n contiguous elements: its own function, so that the
 * pointers are restrict and the constants a local copy (inside an OpenMP
 * outlined loop GCC reloaded them per element and left the loop scalar). */
static void apply_block(adam_consts k, float *restrict P, const float *restrict G, float *restrict M,
                        float *restrict V, size_t n) {
#pragma omp simd
    for (size_t i = 0; i < n; i++) adam_elem(k, G[i], &P[i], &M[i], &V[i]);
}

static inline int all_finite(float p, float m, float v) { return isfinite(p) & isfinite(m) & isfinite(v); }

/* Elements per block of the check and of the update (a parallel loop runs over blocks). */
#define OPTIM_BLOCK 4096

static size_t block_count(size_t n) { return (n + OPTIM_BLOCK - 1) / OPTIM_BLOCK; }
/* One past the last element of block b of n. */
static size_t block_end(size_t b, size_t n) { return (b + 1) * OPTIM_BLOCK < n ? (b + 1) * OPTIM_BLOCK : n; }

size_t optim_check(const optim *o, const float *params, const float *grads, double norm) {
    const adam_consts k = consts_of(o, norm);
    const size_t n = o->n, nb = block_count(n);
    const float *restrict P = params, *restrict G = grads, *restrict M = o->m, *restrict V = o->v;
    size_t first = n;
    /* a vectorised pass flags a block; only a flagged block is searched for its first index */
#pragma omp parallel for schedule(static) reduction(min : first) if (n >= OPTIM_MIN_PARALLEL)
    for (size_t b = 0; b < nb; b++) {
        const size_t lo = b * OPTIM_BLOCK, hi = block_end(b, n);
        int ok = 1;
#pragma omp simd reduction(& : ok)
        for (size_t i = lo; i < hi; i++) {
            float p = P[i], m = M[i], v = V[i];
            adam_elem(k, G[i], &p, &m, &v);
            ok &= all_finite(p, m, v);
        }
        for (size_t i = lo; !ok && i < hi; i++) {
            float p = P[i], m = M[i], v = V[i];
            adam_elem(k, G[i], &p, &m, &v);
            if (!all_finite(p, m, v)) {
                if (i < first) first = i;
                break;
            }
        }
    }
    return first;
}

icl_status optim_step_norm(optim *o, float *params, const float *grads, double norm) {
    o->last_grad_norm = norm;
    if (!isfinite(norm))
        return icl_fail(ICL_ERR_NUMERIC, "optimizer: gradient norm is %s at update %ld; parameters left unchanged",
                        isnan(norm) ? "NaN" : "Inf", o->t + 1);
    const adam_consts k = consts_of(o, norm);
    o->last_lr = optim_lr_at(&o->cfg, o->t);
    o->t++;
    const size_t n = o->n, nb = block_count(n);
#pragma omp parallel for schedule(static) if (n >= OPTIM_MIN_PARALLEL)
    for (size_t b = 0; b < nb; b++) {
        const size_t lo = b * OPTIM_BLOCK, hi = block_end(b, n);
        apply_block(k, params + lo, grads + lo, o->m + lo, o->v + lo, hi - lo);
    }
    return ICL_OK;
}

icl_status optim_step(optim *o, float *params, const float *grads) {
    return optim_step_norm(o, params, grads, optim_grad_norm(grads, o->n));
}
