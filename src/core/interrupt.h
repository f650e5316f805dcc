/*
 * interrupt.h - the process-wide "stop at the next step boundary" flag.
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

#endif
