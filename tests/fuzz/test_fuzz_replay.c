/*
 * test_fuzz_replay.c - replays every input the fuzzers keep, in `make test`.
 *
 * For each target (checkpoint, spec, repl) it runs every file under
 * tests/fuzz/corpus/<name>/ (the seeds) and tests/fuzz/crashes/<name>/
 * (inputs that once crashed, hung or broke a promise: see mk/fuzz.mk)
 * through the same fuzz_<name>_one the fuzzer runs, which checks the
 * promises of the code under test (error paths leave a message, failed
 * loads change nothing, ...). Paths are relative to the repository root,
 * where the tests run.
 *
 * Each input runs in a child process with a time limit (REPLAY_SECONDS), so
 * one crashing or hanging input is reported by name as a failure and the
 * others still run. The target files are #included (the Makefile's test
 * rule compiles this one file against libicl.a); they are the fuzzer's
 * sources unchanged, built without FUZZ_LIBFUZZER.
 *
 * Not here: fuzzing itself (`make fuzz`), or growing the corpus.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"

#include "fuzz_checkpoint.c"
#include "fuzz_repl.c"
#include "fuzz_spec.c"

#define REPLAY_SECONDS 60       /* per input; the slowest seed takes well under a second */
#define REPLAY_MAX_BYTES (64u << 20)
#define REPLAY_BROKEN 42        /* the child's exit status for a broken promise */

typedef int (*fuzz_fn)(const uint8_t *data, size_t size);

static int replay_read(const char *path, uint8_t **out, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap || cap >= REPLAY_MAX_BYTES) break;
        uint8_t *nb = realloc(buf, cap * 2);
        if (!nb) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = nb;
        cap *= 2;
    }
    int ok = buf && !ferror(f);
    fclose(f);
    if (!ok) {
        free(buf);
        return 0;
    }
    *out = buf;
    *n = len;
    return 1;
}

/* Runs fn on the file in a child. Returns "" when the input passed, else
 * what went wrong (a static string or buf). */
static const char *replay_one(fuzz_fn fn, const char *path, char *buf, size_t cap) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(buf, cap, "fork: %s", strerror(errno));
        return buf;
    }
    if (pid == 0) {
        alarm(REPLAY_SECONDS);
        uint8_t *data = NULL;
        size_t n = 0;
        if (!replay_read(path, &data, &n)) exit(3);
        int bad = fn(data, n);
        free(data);
        /* exit, not _exit: under `make asan` LeakSanitizer checks at exit.
         * REPLAY_BROKEN, not 1: a sanitizer report exits with 1. */
        exit(bad ? REPLAY_BROKEN : 0);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            snprintf(buf, cap, "waitpid: %s", strerror(errno));
            return buf;
        }
    if (WIFEXITED(status)) {
        switch (WEXITSTATUS(status)) {
        case 0: return "";
        case REPLAY_BROKEN: return "a promise was broken (see the \"fuzz <target>:\" message above)";
        case 3: return "cannot read the file";
        default: snprintf(buf, cap, "exit status %d (a sanitizer report? see above)", WEXITSTATUS(status)); return buf;
        }
    }
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        snprintf(buf, cap, "%s (signal %d)", sig == SIGALRM ? "hung: killed after the time limit" : strsignal(sig),
                 sig);
        return buf;
    }
    return "stopped for an unknown reason";
}

static int replay_name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir through fn, in name order. A missing directory
 * is fine when `optional` (no crash was ever kept), else a failure. */
static void replay_dir(fuzz_fn fn, const char *dir, int optional) {
    DIR *d = opendir(dir);
    if (!d) {
        CHECK(optional, "cannot open %s: %s", dir, strerror(errno));
        return;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **nn = realloc(names, cap * sizeof *nn);
            if (!nn) break;
            names = nn;
        }
        names[n] = strdup(e->d_name);
        if (names[n]) n++;
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, replay_name_cmp);
    int ran = 0, failed = 0;
    char path[4096], why[256];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
        const char *res = replay_one(fn, path, why, sizeof why);
        ran++;
        if (res[0]) failed++;
        CHECK(res[0] == 0, "%s: %s", path, res);
    }
    printf("    %s: %d inputs, %d failed\n", dir, ran, failed);
    CHECK(optional || ran > 0, "%s holds no inputs", dir);
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static void test_checkpoint_corpus(void) { replay_dir(fuzz_checkpoint_one, "tests/fuzz/corpus/checkpoint", 0); }
static void test_checkpoint_crashes(void) { replay_dir(fuzz_checkpoint_one, "tests/fuzz/crashes/checkpoint", 1); }
static void test_spec_corpus(void) { replay_dir(fuzz_spec_one, "tests/fuzz/corpus/spec", 0); }
static void test_spec_crashes(void) { replay_dir(fuzz_spec_one, "tests/fuzz/crashes/spec", 1); }
static void test_repl_corpus(void) { replay_dir(fuzz_repl_one, "tests/fuzz/corpus/repl", 0); }
static void test_repl_crashes(void) { replay_dir(fuzz_repl_one, "tests/fuzz/crashes/repl", 1); }

/* The replay must be able to fail: a target that reports a broken promise
 * and one that crashes are both failures, named; and plain inputs that
 * break nothing pass through all three targets. */
static int replay_selftest_broken(const uint8_t *data, size_t size) {
    (void)data;
    (void)size;
    return 1;
}
/* SIGKILL rather than abort(): no sanitizer intercepts it, so `make asan`'s
 * report files stay empty for this deliberate crash. */
static int replay_selftest_crash(const uint8_t *data, size_t size) {
    (void)data;
    (void)size;
    raise(SIGKILL);
    return 1;
}

static void test_replay_can_fail(void) {
    char why[256];
    const char *r1 = replay_one(replay_selftest_broken, "/dev/null", why, sizeof why);
    CHECK(r1[0] != 0, "a broken promise was not reported");
    const char *r2 = replay_one(replay_selftest_crash, "/dev/null", why, sizeof why);
    CHECK(r2[0] != 0, "a crash was not reported");
    printf("    (expected) broken -> %s; crash -> %s\n", r1, r2);
    static const uint8_t session[] = "for i = 1, 2 do\n\x18\nprint(1 +)\n=1+1\n";
    CHECK(fuzz_repl_one(session, sizeof session - 1) == 0, "a plain REPL session broke a promise");
    static const uint8_t spec[] = "\x02\x0a\xff";
    CHECK(fuzz_spec_one(spec, sizeof spec - 1) == 0, "a plain task spec broke a promise");
    static const uint8_t junk[] = "\x08\0\0\0\0\0\0\0{}      ";
    CHECK(fuzz_checkpoint_one(junk, sizeof junk - 1) == 0, "an empty safetensors file broke a promise");
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    TEST_RUN(test_replay_can_fail);
    TEST_RUN(test_checkpoint_corpus);
    TEST_RUN(test_checkpoint_crashes);
    TEST_RUN(test_spec_corpus);
    TEST_RUN(test_spec_crashes);
    TEST_RUN(test_repl_corpus);
    TEST_RUN(test_repl_crashes);
    return test_finish();
}
