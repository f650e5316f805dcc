/* status.c - the thread-local last-error message (see status.h). */
#include "status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[512];

/* Formats into a local buffer first: callers often wrap the previous
 * message, icl_fail(st, "%s: %s", path, icl_error()), and vsnprintf must not
 * read the buffer it writes. */
icl_status icl_fail(icl_status code, const char *fmt, ...) {
    char buf[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    memcpy(last_error, buf, sizeof buf);
    return code;
}

const char *icl_error(void) { return last_error; }

const char *icl_status_name(icl_status s) {
    switch (s) {
    case ICL_OK: return "ok";
    case ICL_ERR_ARG: return "bad argument";
    case ICL_ERR_NOMEM: return "out of memory";
    case ICL_ERR_IO: return "i/o error";
    case ICL_ERR_FORMAT: return "bad file format";
    case ICL_ERR_SHAPE: return "shape mismatch";
    case ICL_ERR_NUMERIC: return "non-finite number";
    case ICL_ERR_INTERRUPT: return "interrupted";
    }
    return "unknown status";
}
