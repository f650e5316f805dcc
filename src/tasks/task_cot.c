/*
 * task_cot.c - chain-of-thought I/O (SPEC.md 2.8, after Li et al. 2023,
 * "Dissecting Chain-of-Thought"): a 2-layer ReLU net whose hidden activation
 * is shown as an intermediate token.
 *
 * Per prompt: W1 (h, d) and W2 (h) with N(0, 1) entries. Per example:
 *     x_i ~ N(0, I_d), coordinates >= d_cur zeroed,
 *     s_i = sqrt(2 / d_cur) ReLU(W1 x_i)       (h values, E[s_ij^2] = 1)
 *     y_i = sqrt(1 / h) W2 . s_i               (E[y_i^2] = 1)
 * The scalings are our choice (the paper's exact ones are [R?]): they keep
 * every token at unit scale, so the zero predictor's error on y is ~1 and
 * the metric needs no normaliser (task_metric_norm = 1).
 *
 * Tokens (T = 3N, width d): x_i at 3i; s_i at 3i+1 in coordinates 0..h-1
 * (h <= d is required; the rest are 0); y_i at 3i+2 in coordinate 0.
 * Predictions have width O = h and are "the next token's first h
 * coordinates": at slot 3i the target is s_i, at slot 3i+1 it is
 * (y_i, 0, ..., 0); the loss (MSE, mean over the h outputs) reads both
 * (mask = 1). The metric is read only at 3i+1 (example = i) and is the
 * squared error of coordinate 0 alone, i.e. the error on y_i
 * (task_metric_out = 1). Slot 3i+2 predicts the next x, which is random:
 * mask = 0 there.
 */
#include "core/parallel.h"
#include "tasks/task.h"

#include <math.h>
#include <stdlib.h>


static void cot_prompt(const task_spec *s, int d_cur, int n, batch *b, int bi, rng_t *r, float *fs) {
    const int d = s->n_dims, h = s->hidden, T = b->T, O = b->O;
    float *W1 = fs, *W2 = fs + (size_t)h * d, *hid = W2 + h;
    rng_fill_normal(r, W1, (size_t)h * d, 0.0f, 1.0f);
    rng_fill_normal(r, W2, (size_t)h, 0.0f, 1.0f);
    const double s_scale = sqrt(2.0 / d_cur), y_scale = sqrt(1.0 / h);
    for (int i = 0; i < n; i++) {
        size_t slot = (size_t)bi * T + 3 * (size_t)i; /* x_i; s_i at +1, y_i at +2 */
        float *xt = b->x + slot * d, *st = b->x + (slot + 1) * d, *yt = b->x + (slot + 2) * d;
        for (int c = 0; c < d; c++) {
            float v = rng_normal(r);
            xt[c] = c < d_cur ? v : 0.0f;
        }
        double y = 0;
        for (int j = 0; j < h; j++) {
            double a = 0;
            for (int c = 0; c < d_cur; c++) a += (double)W1[(size_t)j * d + c] * xt[c];
            hid[j] = a > 0 ? (float)(s_scale * a) : 0.0f;
            y += (double)W2[j] * hid[j];
        }
        y *= y_scale;
        float *tx = b->y + slot * (size_t)O, *ts = b->y + (slot + 1) * (size_t)O;
        for (int j = 0; j < h; j++) {
            st[j] = hid[j];
            tx[j] = hid[j];
        }
        yt[0] = (float)y;
        ts[0] = (float)y;
        b->mask[slot] = b->mask[slot + 1] = 1.0f;
        b->metric[slot + 1] = 1.0f;
        b->example[slot + 1] = i;
    }
}

icl_status task_cot_fill(const task_spec *s, int d_cur, int n_cur, batch *b, uint64_t seed, uint64_t stream0) {
    size_t per = (size_t)s->hidden * ((size_t)s->n_dims + 2);
    float *fs = task_batch_scratch(b, (size_t)par_max_threads() * per * sizeof(float));
    if (!fs) return icl_fail(ICL_ERR_NOMEM, "task %s: out of memory for sampling scratch", s->name);
    size_t work = (size_t)b->B * b->T * s->n_dims * s->hidden;
#pragma omp parallel for schedule(static) if (work >= TASK_PAR_MIN_WORK)
    for (int bi = 0; bi < b->B; bi++) {
        rng_t r = rng_make(seed, stream0 + (uint64_t)bi);
        cot_prompt(s, d_cur, n_cur, b, bi, &r, fs + (size_t)par_thread_id() * per);
    }
    return ICL_OK;
}
