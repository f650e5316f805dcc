/* interrupt.c - the Ctrl-C flag (see interrupt.h). */
#include "interrupt.h"

#include <signal.h>

static volatile sig_atomic_t pending;

void icl_interrupt_request(void) { pending = 1; }
int icl_interrupt_pending(void) { return pending != 0; }
void icl_interrupt_clear(void) { pending = 0; }
