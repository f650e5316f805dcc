/*
 * model_mem.h - what a model of a given spec will allocate, computed from
 * the spec alone, before anything is allocated.
 *
 * The budget checks (core/budget.h) use these numbers:
 *   model_create(spec)     refuses when create + Adam bytes exceed the budget
 *                          (a model is built to be trained, and the trainer
 *                          allocates the two Adam moments next);
 *   model_reserve(m, B, T) refuses when create + Adam + reserve(B, T) bytes
 *                          exceed it: weights, gradients, Adam state and the
 *                          activations, i.e. the whole footprint of training
 *                          at that batch (trainer_init reserves before it
 *                          creates the optimiser). m:forward reserves too, so
 *                          inference is counted as if it trained: simpler,
 *                          and an over-estimate by 2 x the parameters.
 * The numbers are exact, not estimates: tests/core/test_budget.c compares
 * them with what model_create and model_reserve really allocate (the bytes
 * malloc reports in use before and after), and the reserve bytes with the
 * arena the model carved. Task batches and Lua memory are not counted here.
 *
 * Sizes that do not fit in size_t saturate at SIZE_MAX (always over budget).
 */
#ifndef ICL_MODEL_MEM_H
#define ICL_MODEL_MEM_H

#include <stddef.h>

#include "nn/model.h"

/* One copy of the parameters as allocated (4 bytes each, in whole 64-byte lines). */
size_t model_spec_param_bytes(const model_spec *s);
/* What model_create allocates: the model struct, its block table, the
 * parameters and the gradients. */
size_t model_spec_create_bytes(const model_spec *s);
/* The two Adam moments an optimiser adds (optim_create: 2 x 4 bytes per parameter). */
size_t model_spec_adam_bytes(const model_spec *s);
/* What model_reserve(B, T) allocates when the model is run by `nthreads`
 * OpenMP threads: the activation arena (with the gradients and scratch of
 * every shard but the first, three shards per thread, nn/model_shard.c),
 * the residual-stream table and the shard views. */
size_t model_spec_reserve_bytes(const model_spec *s, int B, int T, int nthreads);

#endif
