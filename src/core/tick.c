/*
 * tick.c - the "still working" callback of tick.h: a clock check per call,
 * nothing at all when no callback is installed.
 */
#include "core/tick.h"
#include "core/parallel.h"

#include <time.h>

static icl_tick_fn tick_fn;
static void *tick_ud;
static double tick_interval, tick_last;
static int tick_running; /* the callback itself may call code that ticks */

static double tick_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void icl_tick_set(icl_tick_fn fn, void *ud, double interval_s) {
    tick_fn = fn;
    tick_ud = ud;
    tick_interval = interval_s > 0 ? interval_s : 0;
    tick_last = tick_now();
}

void icl_tick(void) {
    if (!tick_fn || tick_running || !par_is_main_thread()) return;
    double now = tick_now();
    if (now - tick_last < tick_interval) return;
    tick_last = now;
    tick_running = 1;
    tick_fn(tick_ud);
    tick_running = 0;
}
