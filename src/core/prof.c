/* prof.c - per-kernel time accounting (see prof.h). */
#include "prof.h"
#include "core/parallel.h"

#include <time.h>

int prof_on;
static uint64_t total_ns[PROF_COUNT];
static const char *const names[PROF_COUNT] = {"gemm", "attention", "scan", "s4d", "conv1d", "layernorm",
                                              "elementwise", "sample", "loss", "optimizer"};

uint64_t prof_now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

void prof_enable(int on) { prof_on = on != 0; }

void prof_reset(void) {
    for (int k = 0; k < PROF_COUNT; k++) total_ns[k] = 0;
}

/* Only the main thread counts: model shards run the same kernels on every
 * thread at once, and the profile is a breakdown of one step's wall time. */
void prof_add(prof_kind k, uint64_t t0) {
    if (par_is_main_thread()) total_ns[k] += prof_now_ns() - t0;
}

double prof_seconds(prof_kind k) { return (k >= 0 && k < PROF_COUNT) ? total_ns[k] * 1e-9 : 0.0; }

const char *prof_name(prof_kind k) { return (k >= 0 && k < PROF_COUNT) ? names[k] : "?"; }
