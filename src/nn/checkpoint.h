/*
 * checkpoint.h - models and optimiser state in safetensors files.
 *
 * A checkpoint is an ordinary safetensors file (core/safetensors.h), so any
 * safetensors reader loads the weights. Tensors:
 *   <name>            every parameter, named as in the model's table
 *                     (read_in.weight, pos.weight, blocks.<i>.<kind>.<tensor>,
 *                     norm_f.weight, read_out.weight, ...; see README)
 *   optim.m.<name>    Adam's first moment of that parameter (if saved)
 *   optim.v.<name>    Adam's second moment
 * Metadata (all strings):
 *   format            "iclplay-checkpoint-1"
 *   model_spec        the model spec as JSON (model_spec_to_json)
 *   n_params          parameter count, checked on load
 *   optim             {"lr":..,"beta1":..,...,"t":updates} when moments are saved
 *   plus any extra keys the caller adds (the trainer adds step, seed, batch,
 *   task spec).
 * Loading validates the whole file first (safetensors layer), then that every
 * parameter tensor is present with the right shape and no tensor is unknown,
 * and answers every mismatch with ICL_ERR_FORMAT naming the file and tensor.
 */
#ifndef ICL_CHECKPOINT_H
#define ICL_CHECKPOINT_H

#include "core/safetensors.h"
#include "nn/model.h"
#include "nn/optim.h"

#define CHECKPOINT_FORMAT "iclplay-checkpoint-1"

/* Save m (and o's moments and config if o is not NULL) atomically. */
icl_status checkpoint_save(const char *path, const model *m, const optim *o, const char *const *keys,
                           const char *const *vals, size_t n_extra);
/* Open and validate a checkpoint file ([out] *f; st_close it). Checks the
 * format key. */
icl_status checkpoint_open(const char *path, st_file **f);
/* Build a model from an open checkpoint: spec from metadata, every weight
 * copied. [out] *out. */
icl_status checkpoint_read_model(const st_file *f, const char *label, model **out);
/* Read the optimiser config, update count and moments into o, which must be
 * sized for m. ICL_ERR_FORMAT if the file holds no optimiser state. */
icl_status checkpoint_read_optim(const st_file *f, const char *label, const model *m, optim *o);

#endif
