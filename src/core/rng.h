/*
 * rng.h - a seeded, counter-based random number generator.
 *
 * Every number is a pure function of (seed, stream, counter): a Philox-style
 * bijective hash of the counter keyed by seed and stream. The same seed gives
 * the same numbers on every machine and for every thread count, and a
 * generator's whole state is two 64-bit words, so checkpoints can save and
 * restore it bit-exactly. Independent streams (one per task sampler, one per
 * initialiser, one per prompt) come from distinct `stream` values; drawing
 * prompt i of a batch from stream (base + i) lets threads fill prompts in
 * parallel with results that do not depend on the thread count.
 */
#ifndef ICL_RNG_H
#define ICL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t key;     /* mixes seed and stream */
    uint64_t counter; /* number of 64-bit draws so far */
} rng_t;

/* A generator for (seed, stream), counter at 0. */
rng_t rng_make(uint64_t seed, uint64_t stream);

uint64_t rng_u64(rng_t *r);
/* Uniform in [0, 1) with 24 random bits (exactly representable floats). */
float rng_uniform(rng_t *r);
/* Uniform in [lo, hi). */
float rng_uniform_range(rng_t *r, float lo, float hi);
/* Standard normal (Box-Muller on two uniform draws, computed in double). */
float rng_normal(rng_t *r);
/* Uniform integer in [0, n), n >= 1, without modulo bias. */
uint32_t rng_below(rng_t *r, uint32_t n);

void rng_fill_normal(rng_t *r, float *x, size_t n, float mean, float std);
void rng_fill_uniform(rng_t *r, float *x, size_t n, float lo, float hi);

#endif
