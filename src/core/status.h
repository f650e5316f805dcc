/*
 * status.h - status codes and the last error message of the C core.
 *
 * The C core never exits, aborts or raises: every fallible function returns an
 * icl_status and, on failure, leaves a human-readable message (what failed and
 * where) in a thread-local buffer read with icl_error(). Only the Lua binding
 * layer turns these into Lua errors. Think of it as errno with a sentence.
 */
#ifndef ICL_STATUS_H
#define ICL_STATUS_H

typedef enum {
    ICL_OK = 0,
    ICL_ERR_ARG,      /* a bad argument or spec field */
    ICL_ERR_NOMEM,    /* allocation failed or would exceed the budget */
    ICL_ERR_IO,       /* open/read/write/rename failed */
    ICL_ERR_FORMAT,   /* a file is corrupt or not what it claims */
    ICL_ERR_SHAPE,    /* shapes disagree, or exceed what was reserved */
    ICL_ERR_NUMERIC,  /* NaN or Inf where a finite number was needed */
    ICL_ERR_INTERRUPT /* stopped by the user (Ctrl-C) */
} icl_status;

/* Record a message (printf-style) and return `code`, so callers can write
 * `return icl_fail(ICL_ERR_ARG, "d_model must be > 0 (got %d)", d);`. */
icl_status icl_fail(icl_status code, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The message of the last failure on this thread ("" if none). */
const char *icl_error(void);

/* Short name of a status code, e.g. "bad argument". */
const char *icl_status_name(icl_status s);

#endif
