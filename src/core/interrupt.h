/*
 * interrupt.h - the process-wide "stop at the next step boundary" flag, and
 * the "end the process cleanly" one.
 *
 * Ctrl-C is process-wide, so this is the one deliberate global of the core:
 * a signal handler (the REPL's SIGINT handler) calls icl_interrupt_request(),
 * and long C loops (trainer runs, evaluations) poll icl_interrupt_pending()
 * between steps and return ICL_ERR_INTERRUPT, leaving every object
 * consistent. Whoever reports the interruption clears it. Async-signal-safe.
 */
#ifndef ICL_INTERRUPT_H
#define ICL_INTERRUPT_H

void icl_interrupt_request(void);
int icl_interrupt_pending(void);
void icl_interrupt_clear(void);
/* A flag-only SIGINT handler for headless runs, so a Ctrl-C between two
 * Lua calls is kept (the REPL's call wrapper then stops the next call at
 * once) instead of killing the process or being ignored. 0 on success. */
int icl_interrupt_install(void);

/* SIGTERM and SIGHUP (and a Ctrl-C that ends a headless script): the
 * process should end soon and cleanly. icl_terminate_install() sets
 * handlers that record the signal and request an interrupt, so a running
 * step stops at its boundary; the loops (TUI, REPL) poll
 * icl_terminate_pending() and leave, restoring the terminal; main then
 * writes a recovery checkpoint of unsaved models and exits 128 + signal.
 * Async-signal-safe; 0 from install on success. */
int icl_terminate_install(void);
void icl_terminate_request(int sig);
/* What a SIGTERM/SIGHUP handler calls: icl_terminate_request, or, when the
 * process is already terminating, the signal's default action (the second
 * signal ends a program stuck where no check runs). */
void icl_terminate_signal(int sig);
int icl_terminate_pending(void); /* the signal number, or 0 */

#endif
