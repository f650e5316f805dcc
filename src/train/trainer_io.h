/*
 * trainer_io.h - trainer checkpoints: save a trainer and resume it so that
 * the continued run is bit for bit the run that was never interrupted.
 *
 * A trainer checkpoint is a model checkpoint (nn/checkpoint.h) saved with
 * the optimiser's moments and config, plus these metadata strings:
 *   trainer    TRAINER_IO_FORMAT (marks the file as a trainer checkpoint)
 *   step       completed steps (decimal)
 *   seed       the data seed (decimal, 64-bit unsigned)
 *   batch      prompts per step
 *   loss       loss of the last step before saving (absent if none)
 *   grad_norm  its gradient norm before clipping (absent if none)
 *   task       the task spec as JSON: {"name":"linear_regression",
 *              "n_dims":5, ...} with every key task_spec_keys() lists
 * Because data are a pure function of (seed, step) (trainer.h), these and
 * the optimiser state are everything a continuation needs; the curriculum
 * is re-derived from the step (trainer_seek).
 *
 *   trainer_io_save(&tr, "run.safetensors");
 *   model *m; task *t; trainer tr2;
 *   trainer_io_load("run.safetensors", &m, &t, &tr2);   // steps continue
 *
 * A custom task (prompts from a callback, e.g. a Lua function) cannot be
 * rebuilt from a file: trainer_io_load refuses it with a message saying so,
 * and a caller that still has the task uses trainer_io_restore with it.
 * Not here: the loss history (it restarts empty) and weights-only files
 * (checkpoint.h loads those as models).
 */
#ifndef ICL_TRAINER_IO_H
#define ICL_TRAINER_IO_H

#include <stdint.h>

#include "core/safetensors.h"
#include "nn/model.h"
#include "tasks/task.h"
#include "train/trainer.h"

#define TRAINER_IO_FORMAT "iclplay-trainer-1"

/* What a trainer checkpoint says besides the model and the optimiser. */
typedef struct {
    long step;
    uint64_t seed;
    int batch;
    double loss;      /* NaN if the trainer had not stepped */
    double grad_norm; /* NaN if the trainer had not stepped */
    task_spec task;   /* the spec the task was built from */
} trainer_meta;

/* Write tr's model, optimiser and metadata to path (atomic, checkpoint.h). */
icl_status trainer_io_save(const trainer *tr, const char *path);

/* Read and check the trainer metadata of an open checkpoint into [out]
 * *meta; `label` (the path) names the file in messages. ICL_ERR_FORMAT if
 * it is a weights-only file or a field is missing or invalid. */
icl_status trainer_io_read_meta(const st_file *f, const char *label, trainer_meta *meta);

/* The JSON of a task spec as stored under "task" ([out] buf, snprintf
 * semantics: returns the length needed). */
int trainer_io_task_json(const task_spec *s, char *buf, size_t n);

/* Check that task t is the one the checkpoint trained on: same name and
 * the same value of every option. ICL_ERR_ARG naming the first difference. */
icl_status trainer_io_check_task(const task *t, const trainer_meta *meta, const char *label);

/* Set up [out] *tr on model m (already holding the checkpoint's weights) and
 * task t (checked with trainer_io_check_task): trainer_init with the saved
 * batch and seed, the optimiser's config and moments from f, then seek to
 * the saved step. On failure *tr holds nothing to free. */
icl_status trainer_io_restore(trainer *tr, const st_file *f, const char *label, model *m, task *t,
                              const trainer_meta *meta);

/* Everything from a path: [out] *m and *t (the caller frees them after
 * trainer_free(tr)) and *tr. ICL_ERR_ARG for a custom task. On failure
 * nothing is left allocated and *m, *t are NULL. */
icl_status trainer_io_load(const char *path, model **m, task **t, trainer *tr);

#endif
