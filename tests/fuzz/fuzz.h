/*
 * fuzz.h - what the fuzz targets share (header only, like testlib.h).
 *
 * Each target is one function `int fuzz_<name>_one(data, size)` in
 * tests/fuzz/fuzz_<name>.c that feeds one input to the code under test and
 * checks the promises the headers make (a failed call leaves a message, a
 * failed load changes nothing, what loads reads back the same, ...). It
 * returns 0 when every promise held and 1 after printing the broken one to
 * stderr. A crash, a hang or a sanitizer report is of course a failure too.
 *
 * The same file is used two ways:
 *   - with -DFUZZ_LIBFUZZER it defines LLVMFuzzerTestOneInput, which aborts
 *     on a broken promise so libFuzzer keeps the input (mk/fuzz.mk);
 *   - without it, tests/fuzz/test_fuzz_replay.c #includes it and replays
 *     every kept input (tests/fuzz/corpus/<name>/, tests/fuzz/crashes/<name>/).
 * So the target files define their helpers static and prefixed per target
 * (ck_, sp_, rp_): they share one translation unit in the replay test.
 *
 * Not here: the code under test (src/), the build rules (mk/fuzz.mk).
 */
#ifndef ICL_FUZZ_H
#define ICL_FUZZ_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

int fuzz_checkpoint_one(const uint8_t *data, size_t size);
int fuzz_spec_one(const uint8_t *data, size_t size);
int fuzz_repl_one(const uint8_t *data, size_t size);

#ifdef FUZZ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
#endif

/* Print "fuzz <target>: <what broke>" to stderr; returns 1 so a check reads
 * `bad |= fuzz_fail("checkpoint", "...", ...)`. */
static inline int fuzz_fail(const char *target, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int fuzz_fail(const char *target, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz %s: ", target);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 1;
}

/* A little reader over the input for targets that decode structure from it:
 * every read past the end yields zeros, so any byte string is a valid input. */
typedef struct {
    const uint8_t *p;
    size_t n, at;
} fuzz_reader;

static inline uint8_t fuzz_u8(fuzz_reader *r) { return r->at < r->n ? r->p[r->at++] : 0; }
static inline uint32_t fuzz_u32(fuzz_reader *r) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) v |= (uint32_t)fuzz_u8(r) << (8 * i);
    return v;
}
static inline uint64_t fuzz_u64(fuzz_reader *r) {
    uint64_t lo = fuzz_u32(r);
    return lo | (uint64_t)fuzz_u32(r) << 32;
}
static inline int fuzz_left(const fuzz_reader *r) { return r->at < r->n; }

#endif
