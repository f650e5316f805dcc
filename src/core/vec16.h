/*
 * vec16.h - 16 floats as one value, for kernels that keep a row of 16
 * channels in a register across a loop (GCC/Clang vector extension: one
 * AVX-512 register, two AVX2, four SSE; the same C on every target).
 *
 * Arithmetic on v16 is element-wise and, under -std=c11, never contracted
 * into FMAs, so a v16 loop gives the bits of the scalar loop it replaces.
 * Loads and stores go through memcpy: no alignment is assumed.
 */
#ifndef ICL_VEC16_H
#define ICL_VEC16_H

#include <string.h>

typedef float v16 __attribute__((vector_size(64)));

static inline v16 v16_load(const float *p) {
    v16 v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void v16_store(float *p, v16 v) { memcpy(p, &v, sizeof v); }

#endif
