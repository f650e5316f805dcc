/*
 * trainer.c - one model, one task, one optimiser (see trainer.h): the
 * step, its refusal of non-finite numbers, and the loss history.
 */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/loss.h"
#include "core/prof.h"
#include "nn/model_check.h"

static icl_status check_fit(const model *m, const task *t) {
    const model_spec *s = &m->spec;
    int d = task_d(t), O = task_out(t), V = task_vocab(t), T = task_T_max(t);
    char desc[512];
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

icl_status model_spec_fit_task(model_spec *s, const task *t) {
    icl_status st = model_spec_set(s, "n_dims", task_vocab(t) ? 1 : task_d(t));
    if (!st && task_vocab(t)) st = model_spec_set(s, "vocab", task_vocab(t));
    if (!st) st = model_spec_set(s, "n_out", task_out(t));
    if (!st && s->n_positions > 0 && s->n_positions < task_T_max(t))
        st = model_spec_set(s, "n_positions", task_T_max(t));
    return st;
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

/* ---- non-finite steps -------------------------------------------------------
 * A step is refused, before anything is written, when (1) its loss is not
 * finite, (2) its gradient is not, or (3) the Adam update computed from a
 * finite gradient would leave a parameter or a moment NaN/Inf (a huge
 * gradient or learning rate: with beta2 = 0.999, (1 - beta2) g^2 overflows
 * float for unclipped |g| above ~6e20). Case 3 is
 * found by computing the update once without storing it (optim_check), so
 * no copy of the parameters and moments is needed to undo anything. */

/* Why the loss of the batch in tr->b is not finite: the first stage of the
 * forward that went non-finite, else the targets, else the loss itself. */
static icl_status fail_loss(const trainer *tr, double loss) {
    const model *m = tr->m;
    const batch *b = &tr->b;
    char where[256];
    model_fault f;
    if (model_check_forward(m, &f)) {
        model_fault_describe(m, &f, where, sizeof where);
    } else {
        snprintf(where, sizeof where, "the loss itself: every activation and prediction is finite");
        const size_t N = (size_t)b->B * b->T;
        for (size_t i = 0; i < N; i++) {
            int bad = !isfinite(b->mask[i]);
            for (int o = 0; o < b->O && !bad && b->loss != LOSS_CE; o++) bad = !isfinite(b->y[i * b->O + o]);
            if (bad) {
                snprintf(where, sizeof where, "the task's targets (prompt %d, position %d is not finite)",
                         (int)(i / (size_t)b->T), (int)(i % (size_t)b->T));
                break;
            }
        }
    }
    return icl_fail(ICL_ERR_NUMERIC, "step %ld: the loss is %s; nothing was updated (first non-finite: %s)",
                    tr->step + 1, isnan(loss) ? "NaN" : "Inf", where);
}

/* The gradient norm is not finite: name the first tensor holding a NaN/Inf
 * gradient, going from the read-out back to the read-in (the order backward
 * visits them, so the first one found is where it appeared). */
static icl_status fail_grad(const trainer *tr) {
    const model *m = tr->m;
    const param_tensor *p = model_first_nonfinite(m, m->grads, 1, NULL);
    char place[96] = "an unknown tensor";
    if (p) model_tensor_place(m, p, place, sizeof place);
    return icl_fail(ICL_ERR_NUMERIC, "step %ld: the gradient became non-finite, first in %s (%s); nothing was updated",
                    tr->step + 1, place, p ? p->name : "?");
}

static icl_status fail_update(const trainer *tr, size_t i, double norm) {
    const model *m = tr->m;
    const optim *o = &tr->opt;
    const param_tensor *p = model_tensor_at(m, i);
    char place[96] = "?";
    if (p) model_tensor_place(m, p, place, sizeof place);
    const char *name = p ? p->name : "?";
    size_t k = p ? i - p->offset : i;
    if (!isfinite(m->params[i]) || !isfinite(o->m[i]) || !isfinite(o->v[i]))
        return icl_fail(ICL_ERR_NUMERIC,
                        "step %ld: %s[%zu] in %s is already %s before the update (set from outside?); nothing was "
                        "updated",
                        tr->step + 1, name, k, place, !isfinite(m->params[i]) ? "a non-finite parameter"
                                                                             : "non-finite in Adam's moments");
    return icl_fail(ICL_ERR_NUMERIC,
                    "step %ld: the update would make %s[%zu] in %s non-finite (gradient %.3g, gradient norm %.3g, lr "
                    "%.3g: lower the learning rate or clip the gradient); nothing was updated",
                    tr->step + 1, name, k, place, (double)m->grads[i], norm, optim_lr_at(&o->cfg, o->t));
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
    if (!isfinite(loss)) return fail_loss(tr, loss);
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
    /* every check before the first write: a refused step leaves the
     * parameters, moments, counters and curriculum exactly as they were */
    const double norm = optim_grad_norm(m->grads, m->n_params);
    if (!isfinite(norm)) {
        prof_stop(PROF_OPTIM, t0);
        return fail_grad(tr);
    }
    const size_t bad = optim_check(&tr->opt, m->params, m->grads, norm);
    if (bad < m->n_params) {
        prof_stop(PROF_OPTIM, t0);
        return fail_update(tr, bad, norm);
    }
    st = optim_step_norm(&tr->opt, m->params, m->grads, norm);
    prof_stop(PROF_OPTIM, t0);
    if (st) return st; /* not reached: it fails only on a non-finite norm */
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
