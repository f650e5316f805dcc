/*
 * trainer.h - the training loop of one model on one task: sample a fresh
 * batch, forward, loss, backward, clip, Adam, advance the curriculum.
 *
 * Data are a pure function of (seed, step): step s trains on prompts from
 * streams s*B .. s*B + B-1 of the task sampler, so a run resumed from a
 * checkpoint at step s sees exactly the batches it would have seen.
 * A step whose loss or gradient is not finite, or whose Adam update would
 * leave a parameter or moment NaN/Inf, changes nothing (parameters, moments,
 * Adam's update count, step counter, history and curriculum stay bit for
 * bit as before: every check runs before the first write) and returns
 * ICL_ERR_NUMERIC with a message naming the step and where it appeared:
 * for a loss, the first stage of the forward holding a NaN/Inf (the input
 * at the read-in, block i's output, the final norm, the read-out; else the
 * task's targets); for a gradient, the first block from the read-out back
 * (nn/model_check.h); for an update, the parameter tensor and element.
 * The trainer does not own the model or the task; it owns its batch,
 * optimiser state, output-gradient buffer and history.
 */
#ifndef ICL_TRAINER_H
#define ICL_TRAINER_H

#include <stdint.h>

#include "nn/model.h"
#include "nn/optim.h"
#include "tasks/task.h"

/* Loss history, fixed memory: when full, neighbouring entries are averaged
 * and the stride doubles, so a long run keeps an even summary. */
#define TRAINER_HIST 4096
typedef struct {
    double loss[TRAINER_HIST];
    long step[TRAINER_HIST]; /* step of the last sample in each entry */
    int n;
    int stride;  /* steps per entry */
    int pending; /* steps accumulated into the entry being built */
    double acc;
} loss_history;

typedef struct {
    model *m;
    task *t;
    optim opt;
    batch b;
    float *dout;        /* (B, T_max, O) dL/dout */
    int B;
    uint64_t seed;      /* data seed */
    long step;          /* completed steps */
    double loss;        /* loss of the last completed step */
    double grad_norm;   /* before clipping, of the last completed step */
    double lr;          /* learning rate used by the last step */
    loss_history hist;
} trainer;

/* Shapes spec for task t, what trainer_init checks: the input width (1 for
 * a token task, whose ids are embedded), the vocabulary, the output width,
 * and enough learned positions for the task's longest prompt (raised only;
 * architectures without positions keep 0). */
icl_status model_spec_fit_task(model_spec *s, const task *t);

/* Validates that model and task fit each other (input width, output width,
 * vocabulary, positions), reserves the model's activations for (B, T_max)
 * and allocates everything the step needs. */
icl_status trainer_init(trainer *tr, model *m, task *t, const optim_config *oc, int B, uint64_t seed);
void trainer_free(trainer *tr);
/* One step (no allocation); ICL_ERR_NUMERIC as above. */
icl_status trainer_step(trainer *tr);
/* The loss of one batch without updating anything (e.g. for evaluation). */
icl_status trainer_batch_loss(trainer *tr, uint64_t seed, uint64_t stream0, double *loss);
/* Put the trainer at step `step` (after loading a checkpoint): the
 * curriculum seeks to that step. */
void trainer_seek(trainer *tr, long step);

/* The mask-weighted training loss of predictions `pred` on batch b. */
double trainer_loss_of(const batch *b, const float *pred, int O);

#endif
