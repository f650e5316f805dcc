/*
 * task_mqar.c - multi-query associative recall, in two forms:
 *
 * vector_mqar (SPEC.md 2.9, the paper's continuous MQAR): kappa keys and
 * kappa values, each a N(0, I_d) vector rescaled to norm sqrt(d) (as the
 * released retrieval sampler does), key j at slot 2j and its value at 2j+1;
 * then `queries` query slots, each a copy of a distinct key chosen uniformly
 * (without replacement, so every query is answerable and none repeats). The
 * target at query slot 2*kappa + m is the queried key's value (O = d), with
 * MSE as the loss. With noise = sigma > 0 the query key gets N(0, sigma^2 I)
 * noise and is rescaled to norm sqrt(d) again ([MF]'s noisy-query eval).
 * Metrics: TASK_METRIC_NEAREST_ACC (the value with the largest inner product
 * with the prediction, among the prompt's kappa values, is the right one;
 * [MF] compared against the keys, which looks like a slip, SPEC 2.9) and the
 * squared error summed over d coordinates / d (0 predicts 1.0).
 *
 * token_mqar (SPEC.md 2.10, Zoology's multiquery_ar): vocabulary V, keys
 * drawn without replacement from {1 .. V/2 - 1}, values from {V/2 .. V-1};
 * the first 2 kappa tokens are the pairs, the rest (L - 2 kappa tokens) is
 * the query region where key j sits at offset 2 g_j, the gaps g_j drawn
 * without replacement from {0 .. (L - 2 kappa)/2 - 1} with P(g) ~ (g+1)^(a-1)
 * (successive weighted draws; numpy's choice(replace=False, p) is close to
 * but not exactly this). Other query-region slots are 0, or uniform tokens
 * of [0, V) with random_non_queries = 1 (Zoology's default). The target at
 * each query slot (ycls) is the key's value; CE loss and exact-match
 * accuracy there. example = m for the m-th query in time order.
 */
#include "core/parallel.h"
#include "tasks/task.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


/* Rescale v (d) to norm sqrt(d) (a zero vector stays zero). */
static void to_sphere(float *v, int d) {
    double nn = 0;
    for (int c = 0; c < d; c++) nn += (double)v[c] * v[c];
    if (nn <= 0) return;
    double f = sqrt(d / nn);
    for (int c = 0; c < d; c++) v[c] = (float)(v[c] * f);
}

/* ------------------------------------------------------------------------ */
/* vector_mqar                                                              */
/* ------------------------------------------------------------------------ */

static void vmqar_prompt(const task_spec *s, batch *b, int bi, rng_t *r, int *perm) {
    const int d = s->n_dims, T = b->T, K = s->kappa;
    float *x0 = b->x + (size_t)bi * T * d;
    for (int t = 0; t < 2 * K; t++) { /* keys at even, values at odd slots */
        rng_fill_normal(r, x0 + (size_t)t * d, (size_t)d, 0.0f, 1.0f);
        to_sphere(x0 + (size_t)t * d, d);
    }
    for (int j = 0; j < K; j++) perm[j] = j;
    for (int m = 0; m < s->queries; m++) {
        int pick = m + (int)rng_below(r, (uint32_t)(K - m));
        int tmp = perm[m];
        perm[m] = perm[pick];
        perm[pick] = tmp;
        int j = perm[m];
        size_t slot = (size_t)bi * T + 2 * (size_t)K + m;
        float *q = b->x + slot * d;
        memcpy(q, x0 + 2 * (size_t)j * d, (size_t)d * sizeof(float));
        if (s->noise > 0) {
            for (int c = 0; c < d; c++) q[c] += (float)(s->noise * rng_normal(r));
            to_sphere(q, d);
        }
        memcpy(b->y + slot * d, x0 + (2 * (size_t)j + 1) * d, (size_t)d * sizeof(float));
        b->mask[slot] = b->metric[slot] = 1.0f;
        b->example[slot] = m;
    }
}

icl_status task_vector_mqar_fill(const task_spec *s, batch *b, uint64_t seed, uint64_t stream0) {
    int nth = par_max_threads();
    int *perm = task_batch_scratch(b, (size_t)nth * (size_t)s->kappa * sizeof(int));
    if (!perm) return icl_fail(ICL_ERR_NOMEM, "task %s: out of memory for sampling scratch", s->name);
    size_t work = (size_t)b->B * b->T * s->n_dims;
#pragma omp parallel for schedule(static) if (work >= TASK_PAR_MIN_WORK)
    for (int bi = 0; bi < b->B; bi++) {
        rng_t r = rng_make(seed, stream0 + (uint64_t)bi);
        vmqar_prompt(s, b, bi, &r, perm + (size_t)par_thread_id() * s->kappa);
    }
    return ICL_OK;
}

/* ------------------------------------------------------------------------ */
/* token_mqar                                                               */
/* ------------------------------------------------------------------------ */

typedef struct {
    int *cand;    /* (V/2) candidate tokens for the without-replacement draws */
    int *key_at;  /* (L) key index j at a query slot, -1 elsewhere */
    double *w;    /* (space) power-law weights of the gaps still available */
} tmqar_scratch;

/* k distinct draws from the n consecutive tokens lo .. lo+n-1 into out. */
static void distinct_tokens(rng_t *r, int *cand, int lo, int n, int k, int *out, int stride) {
    for (int i = 0; i < n; i++) cand[i] = lo + i;
    for (int j = 0; j < k; j++) {
        int pick = j + (int)rng_below(r, (uint32_t)(n - j));
        int tmp = cand[j];
        cand[j] = cand[pick];
        cand[pick] = tmp;
        out[(size_t)j * stride] = cand[j];
    }
}

static void tmqar_prompt(const task_spec *s, batch *b, int bi, rng_t *r, tmqar_scratch z) {
    const int V = s->vocab, L = s->seq_len, K = s->kappa, half = V / 2;
    const int space = (L - 2 * K) / 2;
    int *tok = b->tok + (size_t)bi * L;
    int *ycls = b->ycls + (size_t)bi * L;
    distinct_tokens(r, z.cand, 1, half - 1, K, tok, 2);         /* keys at slots 0, 2, ... */
    distinct_tokens(r, z.cand, half, V - half, K, tok + 1, 2);  /* values at slots 1, 3, ... */
    /* gaps: successive draws without replacement, P(g) ~ (g+1)^(a-1) */
    double total = 0;
    for (int g = 0; g < space; g++) total += z.w[g] = pow(g + 1.0, s->power_a - 1.0);
    for (int t = 0; t < L; t++) z.key_at[t] = -1;
    for (int j = 0; j < K; j++) {
        double u = (double)(rng_u64(r) >> 11) * 0x1.0p-53 * total;
        int g = 0, last = -1;
        for (; g < space; g++) {
            if (z.w[g] <= 0) continue;
            last = g;
            if (u < z.w[g]) break;
            u -= z.w[g];
        }
        if (g == space) g = last; /* rounding at the very end of the scan */
        total -= z.w[g];
        z.w[g] = 0;
        z.key_at[2 * K + 2 * g] = j;
    }
    int m = 0;
    for (int t = 2 * K; t < L; t++) {
        int j = z.key_at[t];
        if (j >= 0) {
            tok[t] = tok[2 * j];
            ycls[t] = tok[2 * j + 1];
            b->mask[(size_t)bi * L + t] = b->metric[(size_t)bi * L + t] = 1.0f;
            b->example[(size_t)bi * L + t] = m++;
        } else {
            tok[t] = s->random_non_queries ? (int)rng_below(r, (uint32_t)V) : 0;
        }
    }
}

icl_status task_token_mqar_fill(const task_spec *s, batch *b, uint64_t seed, uint64_t stream0) {
    int nth = par_max_threads();
    size_t ni = (size_t)s->vocab / 2 + (size_t)s->seq_len, nd = (size_t)s->seq_len / 2 + 1;
    /* scratch: doubles (nth x nd) first, for their alignment, then ints (nth x ni) */
    double *ds = task_batch_scratch(b, (size_t)nth * nd * sizeof(double) + (size_t)nth * ni * sizeof(int));
    if (!ds) return icl_fail(ICL_ERR_NOMEM, "task %s: out of memory for sampling scratch", s->name);
    int *is = (int *)(ds + (size_t)nth * nd);
    size_t work = (size_t)b->B * ((size_t)s->vocab / 2 + (size_t)s->seq_len * s->kappa);
#pragma omp parallel for schedule(static) if (work >= TASK_PAR_MIN_WORK)
    for (int bi = 0; bi < b->B; bi++) {
        int th = par_thread_id();
        tmqar_scratch z = {is + (size_t)th * ni, is + (size_t)th * ni + s->vocab / 2, ds + (size_t)th * nd};
        rng_t r = rng_make(seed, stream0 + (uint64_t)bi);
        tmqar_prompt(s, b, bi, &r, z);
    }
    return ICL_OK;
}
