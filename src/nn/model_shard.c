/*
 * model_shard.c - data-parallel training over sequences: with T threads, a
 * batch of B sequences runs its forward and backward as shards of whole
 * sequences inside one parallel region each way. The threads claim the
 * shards in order as they come free, and the shards' gradients are added in
 * shard order at the end.
 *
 * Why: a training step at d_model 64 is ~140 kernel calls, and when each of
 * them splits its own loop over the threads, each opens a parallel region
 * whose waiting thread must be woken through the kernel (passive waiting,
 * src/main.c says why), 30-80 us on this VM: milliseconds per step, and the
 * serial code between the regions runs on one core. A shard instead runs
 * every kernel single-threaded on its rows (their own `omp parallel` loops
 * are nested, so inactive), and the step pays for two wake-ups.
 *
 * The layout (model_shard_layout): for a large enough batch, T big shards
 * of about 3/4 of the batch, then 2T small ones of about B / 8T sequences
 * each (B = 64, T = 2: 24 24 4 4 4 4). Each thread starts on a big shard
 * and the small ones go to whichever thread is free first, so a thread on a
 * slower core takes fewer of them. One shard per thread (the layout before)
 * waited for the slower core: this VM's two vCPUs differ by 20-28% in speed
 * (the same step pinned to each, and which one is slower changes), and a
 * machine with performance and efficiency cores differs more. Small batches
 * (B < 8T) are cut evenly, one shard per thread.
 *
 * How: every activation and backward-scratch buffer is laid out by sequence
 * ((B, T, ...) or (B, ..., T, T)), so shard k's part of each is a slice at
 * b0 sequences in; a shard's view is a copy of the model struct whose
 * pointers address those slices (bound per call, as the slice offsets
 * depend on T). Shard 0 is the model itself (offset 0). What a shard cannot
 * share is carved per shard in model.c's carve_all: its gradient block (the
 * weight gradients sum over its rows), the scan's, delta's and attention's
 * scratch (indexed by thread, or by call), and the gradient dK of each S4D
 * kernel (the kernel itself is shared: model_forward forms it once, before
 * the shards, and model_backward sums the shards' dK). A model reserved for
 * T threads has model_shard_max(T) shards, each with scratch for half the
 * batch.
 *
 * Results: each sequence's forward is computed by the same single-threaded
 * kernels as with one thread; weight gradients are sums over the batch in
 * shard pieces, so they agree with one thread up to rounding. Which thread
 * runs a shard changes nothing: each shard computes into its own gradient
 * block and slices, and the blocks are added in shard order, so results are
 * bit for bit the same at a fixed thread count (tests/nn/test_model.c runs
 * a layout on one thread and on two and compares).
 */
#include <omp.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/parallel.h"
#include "core/scan.h"
#include "nn/model_internal.h"

/* The views, their block tables and residual tables, in one allocation:
 * nthreads - 1 of each. */
static size_t one_shard_bytes(const model_spec *s) {
    size_t nb = (size_t)s->n_blocks;
    return sizeof(model_shard) + nb * sizeof(block) + (nb + 1) * sizeof(float *);
}

size_t model_shard_table_bytes(const model_spec *s, int nthreads) {
    return (size_t)(model_shard_max(nthreads) - 1) * one_shard_bytes(s);
}

void model_shard_table_init(model *m, void *table) {
    m->shards = table;
    if (!table) return;
    const size_t nb = (size_t)m->spec.n_blocks;
    char *p = (char *)table + (size_t)(m->nshards - 1) * sizeof(model_shard);
    for (int k = 1; k < m->nshards; k++) {
        model_shard *sh = &m->shards[k - 1];
        sh->blocks = (block *)p;
        p += nb * sizeof(block);
        sh->res = (float **)p;
        p += (nb + 1) * sizeof(float *);
    }
}

void model_shard_views_init(model *m) {
    for (int k = 1; k < m->nshards; k++) {
        model_shard *sh = &m->shards[k - 1];
        model *v = &sh->v;
        /* what carve_all gave the shard, kept across the copy */
        float *grads = v->grads, *ss = v->scan_scratch, *ds = v->delta_scratch, *as = v->att_scratch;
        *v = *m; /* dims, parameter pointers, spec; the activations are bound per call */
        v->blocks = sh->blocks;
        v->res = sh->res;
        v->shards = NULL;
        v->nshards = 1;
        v->grads = grads;
        v->scan_scratch = ss;
        v->delta_scratch = ds;
        v->att_scratch = as;
        for (int i = 0; i < m->spec.n_blocks; i++) {
            double *dkern = sh->blocks[i].dkern;
            sh->blocks[i] = m->blocks[i]; /* kern: the model's, formed once per forward */
            sh->blocks[i].dkern = dkern;
        }
        /* gradient views into the shard's own block, at the model's offsets */
#define GVIEW(f) v->f = m->f ? grads + (m->f - m->grads) : NULL
        GVIEW(g_ri_w);
        GVIEW(g_ri_b);
        GVIEW(g_emb);
        GVIEW(g_pos);
        GVIEW(g_lnf_w);
        GVIEW(g_lnf_b);
        GVIEW(g_ro_w);
        GVIEW(g_ro_b);
#undef GVIEW
        for (int i = 0; i < m->spec.n_blocks; i++)
            for (int j = 0; j < m->blocks[i].n_param; j++)
                sh->blocks[i].g[j] = grads + (m->blocks[i].g[j] - m->grads);
    }
}

int model_shard_max(int nthreads) {
    if (nthreads > MODEL_SHARD_THREADS_MAX) nthreads = MODEL_SHARD_THREADS_MAX;
    return nthreads > 1 ? 3 * nthreads : 1; /* model_shard_layout's most */
}

int model_shard_layout(int B, int nt, int *start) {
    int ns = 0;
    start[0] = 0;
    if (nt < 2 || B < 2) {
        ns = 1;
    } else if (B < 8 * nt) { /* too few sequences for small shards: an even split */
        ns = nt < B ? nt : B;
        for (int k = 1; k < ns; k++) start[k] = (int)((int64_t)k * B / ns);
    } else {
        const int small = B / (8 * nt), big = B - 2 * nt * small; /* small >= 1 */
        for (int k = 1; k <= nt; k++) start[k] = (int)((int64_t)k * big / nt);
        for (int k = 1; k < 2 * nt; k++) start[nt + k] = big + k * small;
        ns = 3 * nt;
    }
    start[ns] = B;
    return ns;
}

int model_shard_plan(const model *m, int B, int *start) {
    start[0] = 0;
    start[1] = B;
    if (m->nshards < 2 || B < 2 || omp_in_parallel()) return 1;
    int nt = omp_get_max_threads();
    if (nt > m->nthreads) nt = m->nthreads; /* the views reserved (model_forward refuses more threads) */
    if (nt > MODEL_SHARD_THREADS_MAX) nt = MODEL_SHARD_THREADS_MAX;
    int ns = model_shard_layout(B, nt, start);
    for (int k = 0; k < ns; k++)
        if (start[k + 1] - start[k] > m->shard_cap) { /* a shard's scratch would not hold it */
            start[1] = B;
            return 1;
        }
    return ns;
}

int model_shard_threads(int ns) {
    int nt = omp_get_max_threads();
    return nt < ns ? nt : ns;
}

static float *at(float *p, int b0, size_t per_seq) { return p ? p + (size_t)b0 * per_seq : NULL; }

/* Points shard k's view at sequences [b0, b0 + nb) of the batch (B, T). */
static void bind(model *m, int k, int b0, int nb, int T) {
    model_shard *sh = &m->shards[k - 1];
    model *v = &sh->v;
    const size_t t = (size_t)T, D = (size_t)m->D, E = (size_t)m->E, O = (size_t)m->spec.n_out;
    const size_t W = (size_t)m->R + 2 * (size_t)m->N, NH = (size_t)m->NH;
    sh->b0 = b0;
    sh->nb = nb;
    for (int i = 0; i <= m->spec.n_blocks; i++) v->res[i] = at(m->res[i], b0, t * D);
    v->lnf_out = at(m->lnf_out, b0, t * D);
    v->lnf_mean = at(m->lnf_mean, b0, t);
    v->lnf_rstd = at(m->lnf_rstd, b0, t);
    v->out = at(m->out, b0, t * O);
    v->dres = at(m->dres, b0, t * D);
    v->dln = at(m->dln, b0, t * D);
    v->dout_scratch = at(m->dout_scratch, b0, t * O);
    v->d_big1 = at(m->d_big1, b0, t * m->w1);
    v->d_big2 = at(m->d_big2, b0, t * m->w2);
    for (int j = 0; j < 5; j++) v->d_e[j] = at(m->d_e[j], b0, t * E);
    for (int i = 0; i < m->spec.n_blocks; i++) {
        const block *src = &m->blocks[i];
        block *dst = &sh->blocks[i];
        dst->ln_out = at(src->ln_out, b0, t * D);
        dst->ln_mean = at(src->ln_mean, b0, t);
        dst->ln_rstd = at(src->ln_rstd, b0, t);
        dst->qkv = at(src->qkv, b0, t * 3 * D);
        dst->att = at(src->att, b0, NH * t * t);
        dst->atty = at(src->atty, b0, t * D);
        dst->fc = at(src->fc, b0, t * 4 * D);
        dst->fcg = at(src->fcg, b0, t * 4 * D);
        dst->xz = at(src->xz, b0, t * 2 * E);
        dst->xc = at(src->xc, b0, t * E);
        dst->xs = at(src->xs, b0, t * E);
        dst->dbc = at(src->dbc, b0, t * W);
        dst->dt_pre = at(src->dt_pre, b0, t * E);
        dst->delta = at(src->delta, b0, t * E);
        dst->hck = at(src->hck, b0, scan_ckpt_floats(1, T, m->E, m->N));
        dst->y = at(src->y, b0, t * E);
        dst->yg = at(src->yg, b0, t * E); /* kern is shared; dkern is the shard's own */
    }
}

/* The next shard to run (ns or more: none left), for the thread that asks. */
static int claim(int *next) {
    int k;
#pragma omp atomic capture
    k = (*next)++;
    return k;
}

void model_shard_forward(model *m, const float *x, const int *tok, int T, const int *start, int ns, int nt) {
    const size_t d = (size_t)m->spec.n_dims;
    for (int k = 1; k < ns; k++) bind(m, k, start[k], start[k + 1] - start[k], T);
    int next = 0;                    /* the next shard to claim */
#pragma omp parallel num_threads(nt)
    for (int k; (k = claim(&next)) < ns;) {
        if (k == 0) {
            model_rows_forward(m, x, tok, start[1], T);
        } else {
            model_shard *sh = &m->shards[k - 1];
            const size_t r0 = (size_t)sh->b0 * T;
            model_rows_forward(&sh->v, x ? x + r0 * d : NULL, tok ? tok + r0 : NULL, sh->nb, T);
        }
    }
}

void model_shard_backward(model *m, const float *dout, int ns, int nt) {
    const int T = m->T;
    const size_t O = (size_t)m->spec.n_out, np = m->n_params;
    /* the views are still bound as the last forward (model_backward follows
     * it); shard 0 ends where shard 1 begins */
    int next = 0;
#pragma omp parallel num_threads(nt)
    {
        for (int k; (k = claim(&next)) < ns;) {
            if (k == 0) {
                model_rows_backward(m, dout, m->shards[0].b0, T); /* into m->grads */
            } else {
                model_shard *sh = &m->shards[k - 1];
                memset(sh->v.grads, 0, sizeof(float) * np);
                model_rows_backward(&sh->v, dout + (size_t)sh->b0 * T * O, sh->nb, T);
            }
        }
#pragma omp barrier
        /* m->grads += the other shards' gradients, in shard order */
#pragma omp for schedule(static)
        for (size_t i = 0; i < np; i++) {
            float s = m->grads[i];
            for (int k = 1; k < ns; k++) s += m->shards[k - 1].v.grads[i];
            m->grads[i] = s;
        }
    }
}
