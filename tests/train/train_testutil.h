/*
 * train_testutil.h - fixtures shared by the training tests (test_train.c,
 * test_faults.c, test_evaluate.c, test_trainer_io.c, test_noalloc.c): a
 * task and a model from a few numbers, and a whole file read into memory.
 */
#ifndef ICL_TRAIN_TESTUTIL_H
#define ICL_TRAIN_TESTUTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "nn/model.h"
#include "tasks/task.h"
#include "testlib.h"

/* Task `name` with n_dims d and n_points points (0 keeps the task's default);
 * NULL (and a FAIL) when it cannot be made. */
static inline task *tu_task(const char *name, int d, int points) {
    task_spec ts;
    task_spec_default(&ts, name);
    icl_status st = ICL_OK;
    if (d > 0) st = task_spec_set(&ts, "n_dims", d);
    if (!st && points > 0) st = task_spec_set(&ts, "n_points", points);
    task *t = NULL;
    if (!st) st = task_create(&t, &ts);
    CHECK(st == ICL_OK, "task %s (d %d, %d points): %s", name, d, points, icl_error());
    return t;
}

/* Model `arch` for n_dims d: d_model D, n_layer L (the paper's counting),
 * H heads, initialised from seed; NULL (and a FAIL) when it cannot be made. */
static inline model *tu_model(const char *arch, int d, int D, int L, int H, uint64_t seed) {
    model_spec s;
    icl_status st = model_spec_default(&s, arch);
    if (!st) st = model_spec_set(&s, "n_dims", d);
    if (!st) st = model_spec_set(&s, "d_model", D);
    if (!st) st = model_spec_set(&s, "n_layer", L);
    if (!st) st = model_spec_set(&s, "n_head", H);
    s.seed = seed;
    model *m = NULL;
    if (!st) st = model_create(&m, &s);
    CHECK(st == ICL_OK, "model %s (d %d, D %d, L %d, H %d): %s", arch, d, D, L, H, icl_error());
    return m;
}

/* The whole file at path in a malloc'd *buf (caller frees); returns its size.
 * An unreadable file gives 0 and *buf NULL. */
static inline size_t tu_read_file(const char *path, unsigned char **buf) {
    *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    long n = fseek(f, 0, SEEK_END) ? -1 : ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) || !(*buf = malloc(n > 0 ? (size_t)n : 1))) {
        fclose(f);
        return 0;
    }
    size_t got = fread(*buf, 1, (size_t)n, f);
    fclose(f);
    return got;
}

#endif
