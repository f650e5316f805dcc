/*
 * task_parity.c - the sparse parity sampler of SPEC.md 2.7.
 *
 * x_i uniform on {-1, +1}^d (coordinates >= d_cur zeroed), y_i the product of
 * x_i over a hidden subset S of k coordinates drawn among the first d_cur.
 * Interleaved layout (task.h): the y-token holds y_i in {-1, +1} (zero-padded
 * to d, as the paper embeds it), and the target at the x_i slot is the BCE
 * target (y_i + 1) / 2 in {0, 1}; the model's logit is trained with BCE and
 * scored by the accuracy of its sign (TASK_METRIC_SIGN_ACC).
 *
 * S is drawn per prompt by default (each prompt its own task, like every
 * other task here). With subset_per_batch = 1 it is drawn once per
 * task_sample call from rng_make(seed, TASK_STREAM_BATCH | stream0), so all
 * prompts of a call share it, as the paper's code does (one task object per
 * training step; C(10, 2) = 45 possible tasks).
 *
 * Each coordinate of x costs one random bit: a prompt draws ceil(d/64) words
 * per example, so sampling 64 prompts of 140 examples is cheap.
 */
#include "core/parallel.h"
#include "tasks/task.h"

#include <stdlib.h>
#include <string.h>


/* k distinct coordinates among the first m into sub[0..k) (partial Fisher-Yates on perm). */
static void draw_subset(rng_t *r, int *perm, int m, int k, int *sub) {
    for (int c = 0; c < m; c++) perm[c] = c;
    for (int j = 0; j < k; j++) {
        int pick = j + (int)rng_below(r, (uint32_t)(m - j));
        int tmp = perm[j];
        perm[j] = perm[pick];
        perm[pick] = tmp;
        sub[j] = perm[j];
    }
}

static void parity_prompt(const task_spec *s, const int *shared_sub, int d_cur, int n, batch *b, int bi, rng_t *r,
                          int *scratch) {
    const int d = s->n_dims, T = b->T, k = s->k;
    int *sub = scratch, *perm = scratch + k;
    if (shared_sub) memcpy(sub, shared_sub, (size_t)k * sizeof(int));
    else draw_subset(r, perm, d_cur, k, sub);
    for (int i = 0; i < n; i++) {
        size_t slot = (size_t)bi * T + 2 * (size_t)i;
        float *xt = b->x + slot * d, *yt = b->x + (slot + 1) * d;
        uint64_t bits = 0;
        for (int c = 0; c < d; c++) {
            if (c % 64 == 0) bits = rng_u64(r);
            float v = (bits >> (c % 64)) & 1u ? 1.0f : -1.0f;
            xt[c] = c < d_cur ? v : 0.0f;
        }
        float y = 1.0f;
        for (int j = 0; j < k; j++) y *= xt[sub[j]];
        yt[0] = y;
        b->y[slot] = 0.5f * (y + 1.0f);
        b->mask[slot] = b->metric[slot] = 1.0f;
        b->example[slot] = i;
    }
}

icl_status task_parity_fill(const task_spec *s, int d_cur, int n_cur, batch *b, uint64_t seed, uint64_t stream0) {
    int nth = par_max_threads();
    size_t per = (size_t)s->k + (size_t)s->n_dims;
    /* per-thread slots, then one shared slot for a subset drawn per batch */
    int *scratch = task_batch_scratch(b, ((size_t)nth + 1) * per * sizeof(int));
    if (!scratch) return icl_fail(ICL_ERR_NOMEM, "task %s: out of memory for sampling scratch", s->name);
    int *shared = NULL;
    if (s->subset_per_batch) {
        shared = scratch + (size_t)nth * per;
        rng_t rb = rng_make(seed, TASK_STREAM_BATCH | stream0);
        draw_subset(&rb, shared + s->k, d_cur, s->k, shared);
    }
    size_t work = (size_t)b->B * b->T * s->n_dims;
#pragma omp parallel for schedule(static) if (work >= TASK_PAR_MIN_WORK)
    for (int bi = 0; bi < b->B; bi++) {
        rng_t r = rng_make(seed, stream0 + (uint64_t)bi);
        parity_prompt(s, shared, d_cur, n_cur, b, bi, &r, scratch + (size_t)par_thread_id() * per);
    }
    return ICL_OK;
}
