/*
 * model_check.h - where a model's numbers first stopped being finite: in
 * the activations of the last forward pass, or in a flat array laid out
 * like the parameters (the parameters, their gradients, Adam's moments).
 *
 * The trainer calls these only after a step went wrong (a NaN/Inf loss or
 * gradient), to name the block in its message, so they favour clear
 * answers over speed: each is one plain pass over what it scans.
 *
 *   model_fault f;
 *   if (model_check_forward(m, &f)) {
 *       char where[160];
 *       model_fault_describe(m, &f, where, sizeof where);  // "the output of block 2 (mamba) ..."
 *   }
 *
 * Not here: the forward pass itself (model.c), deciding what to do about a
 * fault (trainer.c).
 */
#ifndef ICL_MODEL_CHECK_H
#define ICL_MODEL_CHECK_H

#include <stddef.h>

#include "nn/model.h"

typedef enum {
    MODEL_FAULT_NONE = 0, /* everything scanned is finite */
    MODEL_FAULT_INPUT,    /* the input x of the forward itself (continuous read-in only) */
    MODEL_FAULT_READ_IN,  /* the read-in's output res[0] (read-in / embedding / positions) */
    MODEL_FAULT_BLOCK,    /* the output res[i+1] of block i */
    MODEL_FAULT_NORM_F,   /* the final LayerNorm's output */
    MODEL_FAULT_READ_OUT, /* the predictions m->out */
} model_fault_stage;

typedef struct {
    model_fault_stage stage;
    int block;   /* MODEL_FAULT_BLOCK: the block index; else -1 */
    int b, t;    /* the first prompt and position holding a non-finite value */
    float value; /* that value (NaN, +Inf or -Inf) */
    float input_max; /* the largest |x| of a finite continuous input (0 for token ids):
                        above 1e18 the description says so (huge inputs overflow
                        float with finite weights) */
} model_fault;

/* Scan the activations of the last forward in the order they were computed:
 * the input x, the read-in's output, each block's output, the final norm
 * and the predictions. [out] *f describes the first stage holding a NaN or
 * Inf (within it, the first prompt b, then position t). Returns 1 if one
 * was found, 0 if all are finite (or no forward has run: f->stage NONE). */
int model_check_forward(const model *m, model_fault *f);

/* A phrase naming where the fault is, for messages ("the output of block 2
 * (mamba), prompt 0 position 3 is NaN"); [out] buf, snprintf semantics. */
int model_fault_describe(const model *m, const model_fault *f, char *buf, size_t n);

/* The first tensor of the model's table whose slice of `flat` (n_params
 * floats laid out like m->params: the parameters, m->grads or an optimiser
 * moment) holds a NaN or Inf; NULL if none. backward != 0 scans the table
 * from the read-out back to the read-in (the order backward fills the
 * gradients). [out] *index (may be NULL) is the flat index of the first
 * non-finite element within that tensor. */
const param_tensor *model_first_nonfinite(const model *m, const float *flat, int backward, size_t *index);

/* The tensor of the table holding flat index i (NULL if out of range). */
const param_tensor *model_tensor_at(const model *m, size_t i);

/* "block 2 (mamba)" or "the read-in" / "the positions" / "the final norm" /
 * "the read-out" for a tensor of the table; [out] buf, snprintf semantics. */
int model_tensor_place(const model *m, const param_tensor *p, char *buf, size_t n);

#endif
