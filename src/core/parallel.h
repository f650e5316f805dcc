/*
 * parallel.h - when a kernel's loop is worth a second thread.
 *
 * Opening an OpenMP region costs a few microseconds on an idle machine and
 * far more when the cores are busy (a waiting thread spins, then sleeps;
 * a tiny training step was measured at 150 ms with 2 threads against
 * 0.6 ms with 1 on a loaded machine). Kernels therefore go parallel only
 * when their loop does at least PAR_MIN_WORK inner iterations:
 *   #pragma omp parallel for schedule(static) if (work >= PAR_MIN_WORK)
 * Every kernel computes the same bits on one thread as on two, so the
 * threshold changes speed, never results. (The one global tunable of the
 * core besides the thread count, which is process-wide too.)
 */
#ifndef ICL_PARALLEL_H
#define ICL_PARALLEL_H

#include <stddef.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* The threshold, 2^16 by default. Tests of thread-count independence set it
 * to 0 so their small shapes really run on two threads. */
extern size_t par_min_work;
void par_set_min_work(size_t n);
#define PAR_MIN_WORK par_min_work

/* The calling thread's index in the current parallel region (0 outside one,
 * or without OpenMP): kernels index their per-thread scratch with it. */
static inline int par_thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Threads in the current parallel region's team (1 outside one). */
static inline int par_team_size(void) {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* 1 on the thread that runs the program's serial parts: outside every
 * parallel region, or thread 0 of every enclosing team. Code that must run
 * once per step (the screen's tick, the per-kernel profile) asks this, as
 * model shards call the kernels from inside a parallel region. */
static inline int par_is_main_thread(void) {
#ifdef _OPENMP
    for (int l = omp_get_level(); l > 0; l--)
        if (omp_get_ancestor_thread_num(l) != 0) return 0;
#endif
    return 1;
}

/* Threads a parallel region opened here would get (1 without OpenMP). */
static inline int par_max_threads(void) {
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

#endif
