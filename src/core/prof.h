/*
 * prof.h - where a training step's time goes, per kind of kernel.
 *
 *   uint64_t t0 = prof_start();  ...kernel...  prof_stop(PROF_SCAN, t0);
 *
 * Off by default: prof_start() then returns 0 and prof_stop() does nothing
 * (one predictable branch each). `make bench` turns it on and prints the
 * breakdown of each architecture's step. Process-wide on purpose, like the
 * thread count; counters are updated only from the calling thread (kernels
 * are timed around their parallel regions, never inside them).
 */
#ifndef ICL_PROF_H
#define ICL_PROF_H

#include <stdint.h>

typedef enum {
    PROF_GEMM = 0,  /* every blas_gemm */
    PROF_ATTENTION, /* softmax attention core */
    PROF_SCAN,      /* selective scan */
    PROF_S4D,       /* S4D kernel and long convolution */
    PROF_CONV,      /* depthwise conv1d */
    PROF_NORM,      /* LayerNorm */
    PROF_ELEMENTWISE, /* GELU, SiLU, softplus */
    PROF_SAMPLE,    /* task sampling */
    PROF_LOSS,      /* loss forward and backward */
    PROF_OPTIM,     /* gradient norm, clipping, Adam */
    PROF_COUNT
} prof_kind;

void prof_enable(int on);
void prof_reset(void);
/* Accumulated seconds of kind k since the last reset. */
double prof_seconds(prof_kind k);
const char *prof_name(prof_kind k);

extern int prof_on;
uint64_t prof_now_ns(void);
static inline uint64_t prof_start(void) { return prof_on ? prof_now_ns() : 0; }
void prof_add(prof_kind k, uint64_t t0);
static inline void prof_stop(prof_kind k, uint64_t t0) {
    if (t0) prof_add(k, t0);
}

#endif
