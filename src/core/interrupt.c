/* interrupt.c - the Ctrl-C and the terminate flags (see interrupt.h). */
#include "interrupt.h"

#include <signal.h>
#include <string.h>

static volatile sig_atomic_t pending;
static volatile sig_atomic_t term_sig;

void icl_interrupt_request(void) { pending = 1; }
int icl_interrupt_pending(void) { return pending != 0; }
/* Once the process is terminating, the request stays: every later step
 * stops too, so a script that catches one interruption still ends. */
void icl_interrupt_clear(void) {
    if (!term_sig) pending = 0;
}

void icl_terminate_request(int sig) {
    if (!term_sig) term_sig = sig; /* the first one names the reason */
    pending = 1;
}

int icl_terminate_pending(void) { return (int)term_sig; }

/* The handlers' entry for SIGTERM and SIGHUP. A second one while the first
 * is still being honoured means the program is not getting to its next
 * check (Lua runs a __gc finalizer with its hooks off, or a C loop has no
 * tick): then the signal's default action ends the process at once, as a
 * second Ctrl-C does in lua.c. Files stay whole: every write goes to a
 * temporary file first. (Ctrl-C keeps its one meaning, "stop": a second
 * impatient Ctrl-C during a long step must not cost the session.) */
void icl_terminate_signal(int sig) {
    if (term_sig) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    icl_terminate_request(sig);
}

static void on_terminate(int sig) { icl_terminate_signal(sig); }

static void on_interrupt(int sig) {
    (void)sig;
    icl_interrupt_request();
}

int icl_interrupt_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_interrupt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0;
    return sigaction(SIGINT, &sa, NULL) == 0 ? 0 : -1;
}

int icl_terminate_install(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_terminate;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocking wait for input returns */
    int bad = sigaction(SIGTERM, &sa, NULL) != 0;
    bad |= sigaction(SIGHUP, &sa, NULL) != 0;
    return bad ? -1 : 0;
}
