/*
 * tick.h - a process-wide "still working" callback, so a screen stays live
 * while one long computation runs.
 *
 * A training step of a medium model takes 0.5-1 s; the TUI must redraw at
 * least 10 times a second. Long C loops (the model's forward and backward,
 * once per block) call icl_tick(); when a callback is installed and at least
 * `interval_s` passed since it last ran, it runs. The callback must not touch
 * the model that is being computed (it may draw from data gathered before the
 * step, poll the keyboard and queue input). Like interrupt.h, this is a
 * deliberate global: there is one screen per process. Not thread-safe: call
 * from the thread that installed it (OpenMP regions never call it).
 */
#ifndef ICL_TICK_H
#define ICL_TICK_H

typedef void (*icl_tick_fn)(void *ud);

/* Installs fn (NULL removes it); it runs at most every interval_s seconds. */
void icl_tick_set(icl_tick_fn fn, void *ud, double interval_s);
void icl_tick(void);

#endif
