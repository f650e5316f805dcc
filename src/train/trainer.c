/*
 * trainer.c - one model, one task, one optimiser (see trainer.h).
 */
#include "train/trainer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/loss.h"
#include "core/prof.h"

static icl_status check_fit(const model *m, const task *t) {
    const model_spec *s = &m->spec;
    int d = task_d(t), O = task_out(t), V = task_vocab(t), T = task_T_max(t);
    char desc[160];
    task_describe(t, desc, sizeof desc);
    if (V > 0) {
        if (s->vocab != V)
            return icl_fail(ICL_ERR_SHAPE, "trainer: task %s has vocabulary %d but the model's vocab is %d", desc, V,
                            s->vocab);
    } else if (s->vocab > 0 || s->n_dims != d) {
        return icl_fail(ICL_ERR_SHAPE, "trainer: task %s has tokens of width %d but the model's n_dims is %d", desc, d,
                        s->n_dims);
    }
    if (s->n_out != O)
        return icl_fail(ICL_ERR_SHAPE, "trainer: task %s predicts %d outputs per slot but the model's n_out is %d",
                        desc, O, s->n_out);
    if (s->n_positions > 0 && T > s->n_positions)
        return icl_fail(ICL_ERR_SHAPE,
                        "trainer: task %s needs %d tokens but the model has only %d learned positions (n_positions)",
                        desc, T, s->n_positions);
    return ICL_OK;
}

icl_status trainer_init(trainer *tr, model *m, task *t, const optim_config *oc, int B, uint64_t seed) {
    memset(tr, 0, sizeof *tr);
    if (B < 1) return icl_fail(ICL_ERR_ARG, "trainer: batch must be >= 1 (got %d)", B);
    icl_status st = check_fit(m, t);
    if (st) return st;
    st = model_reserve(m, B, task_T_max(t));
    if (st) return st;
    st = optim_create(&tr->opt, oc, m->n_params);
    if (st) return st;
    st = task_batch_alloc(&tr->b, t, B);
    if (st) {
        optim_free(&tr->opt);
        return st;
    }
    tr->dout = calloc((size_t)B * task_T_max(t) * m->spec.n_out, sizeof(float));
    if (!tr->dout) {
        trainer_free(tr);
        return icl_fail(ICL_ERR_NOMEM, "trainer: out of memory");
    }
    tr->m = m;
    tr->t = t;
    tr->B = B;
    tr->seed = seed;
    tr->loss = NAN;
    tr->hist.stride = 1;
    return ICL_OK;
}

void trainer_free(trainer *tr) {
    optim_free(&tr->opt);
    task_batch_free(&tr->b);
    free(tr->dout);
    tr->dout = NULL;
}

double trainer_loss_of(const batch *b, const float *pred, int O) {
    const int N = b->B * b->T;
    switch (b->loss) {
    case LOSS_BCE: return loss_bce_forward(pred, b->y, b->mask, N);
    case LOSS_CE: return loss_ce_forward(pred, b->ycls, b->mask, N, O);
    case LOSS_MSE:
    default: return loss_mse_forward(pred, b->y, b->mask, N, O);
    }
}

static void hist_push(loss_history *h, double loss, long step) {
    h->acc += loss;
    if (++h->pending < h->stride) return;
    if (h->n == TRAINER_HIST) { /* halve the resolution: average neighbours */
        for (int i = 0; i < TRAINER_HIST / 2; i++) {
            h->loss[i] = 0.5 * (h->loss[2 * i] + h->loss[2 * i + 1]);
            h->step[i] = h->step[2 * i + 1];
        }
        h->n = TRAINER_HIST / 2;
        h->stride *= 2;
        /* the pending entry now covers half of the new stride: keep summing */
        if (h->pending < h->stride) return;
    }
    h->loss[h->n] = h->acc / h->pending;
    h->step[h->n] = step;
    h->n++;
    h->acc = 0;
    h->pending = 0;
}

/* Which block first shows a non-finite gradient, going from the read-out
 * back to the read-in (the order backward visits them). */
static int first_bad_block(const model *m) {
    for (int k = m->n_tensors - 1; k >= 0; k--) {
        const param_tensor *t = &m->table[k];
        for (size_t i = 0; i < t->numel; i++)
            if (!isfinite(m->grads[t->offset + i])) return t->block;
    }
    return -2;
}

icl_status trainer_step(trainer *tr) {
    model *m = tr->m;
    batch *b = &tr->b;
    const int B = tr->B, O = m->spec.n_out;
    uint64_t t0 = prof_start();
    icl_status st = task_sample(tr->t, b, B, tr->seed, (uint64_t)tr->step * (uint64_t)B);
    prof_stop(PROF_SAMPLE, t0);
    if (st) return st;
    st = model_forward(m, b->x, b->tok, B, b->T);
    if (st) return st;
    t0 = prof_start();
    double loss = trainer_loss_of(b, m->out, O);
    if (!isfinite(loss))
        return icl_fail(ICL_ERR_NUMERIC, "step %ld: the loss is %s; nothing was updated", tr->step + 1,
                        isnan(loss) ? "NaN" : "Inf");
    const int N = B * b->T;
    memset(tr->dout, 0, sizeof(float) * (size_t)N * O);
    switch (b->loss) {
    case LOSS_BCE: loss_bce_backward(tr->dout, 1.0f, m->out, b->y, b->mask, N); break;
    case LOSS_CE: loss_ce_backward(tr->dout, 1.0f, m->out, b->ycls, b->mask, N, O); break;
    default: loss_mse_backward(tr->dout, 1.0f, m->out, b->y, b->mask, N, O); break;
    }
    prof_stop(PROF_LOSS, t0);
    model_zero_grad(m);
    st = model_backward(m, tr->dout);
    if (st) return st;
    t0 = prof_start();
    st = optim_step(&tr->opt, m->params, m->grads);
    prof_stop(PROF_OPTIM, t0);
    if (st == ICL_ERR_NUMERIC) {
        int blk = first_bad_block(m);
        if (blk >= 0)
            return icl_fail(ICL_ERR_NUMERIC,
                            "step %ld: the gradient became non-finite, first in block %d (%s); nothing was updated",
                            tr->step + 1, blk, block_kind_name(m->spec.blocks[blk]));
        return icl_fail(ICL_ERR_NUMERIC,
                        "step %ld: the gradient became non-finite in the read-out/read-in; nothing was updated",
                        tr->step + 1);
    }
    if (st) return st;
    task_curriculum_step(tr->t);
    tr->step++;
    tr->loss = loss;
    tr->grad_norm = tr->opt.last_grad_norm;
    tr->lr = tr->opt.last_lr;
    hist_push(&tr->hist, loss, tr->step);
    return ICL_OK;
}

icl_status trainer_batch_loss(trainer *tr, uint64_t seed, uint64_t stream0, double *loss) {
    batch *b = &tr->b;
    icl_status st = task_sample(tr->t, b, tr->B, seed, stream0);
    if (st) return st;
    st = model_forward(tr->m, b->x, b->tok, tr->B, b->T);
    if (st) return st;
    *loss = trainer_loss_of(b, tr->m->out, tr->m->spec.n_out);
    return ICL_OK;
}

void trainer_seek(trainer *tr, long step) {
    tr->step = step;
    task_curriculum_seek(tr->t, step);
}
