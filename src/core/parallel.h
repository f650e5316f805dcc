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

/* The threshold, 2^16 by default. Tests of thread-count independence set it
 * to 0 so their small shapes really run on two threads. */
extern size_t par_min_work;
void par_set_min_work(size_t n);
#define PAR_MIN_WORK par_min_work

#endif
