/*
 * task_testutil.h - helpers shared by the task sampler tests (test_tasks.c,
 * test_tasks_seq.c): building tasks from key/value lists, sampling into a
 * fresh batch, token and slot indexing, least squares in double.
 */
#ifndef ICL_TASK_TESTUTIL_H
#define ICL_TASK_TESTUTIL_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tasks/task.h"
#include "testlib.h"


/* Build a task from a name and key/value pairs; NULL (and a FAIL) on error. */
static inline task *make_task(const char *name, int nkv, const char *const *keys, const double *vals) {
    task_spec s;
    task_spec_default(&s, name);
    for (int i = 0; i < nkv; i++) {
        icl_status st = task_spec_set(&s, keys[i], vals[i]);
        CHECK(st == ICL_OK, "set %s=%g: %s", keys[i], vals[i], icl_error());
    }
    task *t = NULL;
    icl_status st = task_create(&t, &s);
    CHECK(st == ICL_OK, "create %s: %s", name, icl_error());
    return st == ICL_OK ? t : NULL;
}
/* key/value helper: keys and values given as two arrays */
#define KV(name, keys, vals) make_task(name, (int)(sizeof(keys) / sizeof(keys[0])), keys, vals)

/* Sample B prompts into a fresh batch (caller frees). */
static inline int sample_new(batch *b, const task *t, int B, uint64_t seed, uint64_t stream0) {
    icl_status st = task_batch_alloc(b, t, B);
    CHECK(st == ICL_OK, "alloc: %s", icl_error());
    if (st) return 0;
    st = task_sample(t, b, B, seed, stream0);
    CHECK(st == ICL_OK, "sample: %s", icl_error());
    return st == ICL_OK;
}

static inline const float *tokx(const batch *b, int bi, int t) { return b->x + ((size_t)bi * b->T + t) * b->d; }
static inline size_t slot_of(const batch *b, int bi, int t) { return (size_t)bi * b->T + t; }

/* Least squares by the normal equations with partial-pivot elimination, in
 * double (X (n, d), n >= d, well conditioned in these tests). Returns 0 on success. */
static inline int lstsq(const double *X, const double *y, int n, int d, double *w) {
    double *A = calloc((size_t)d * (d + 1), sizeof(double));
    for (int i = 0; i < n; i++)
        for (int a = 0; a < d; a++) {
            for (int c = 0; c < d; c++) A[a * (d + 1) + c] += X[i * d + a] * X[i * d + c];
            A[a * (d + 1) + d] += X[i * d + a] * y[i];
        }
    int ok = 0;
    for (int col = 0; col < d; col++) {
        int piv = col;
        for (int r = col + 1; r < d; r++)
            if (fabs(A[r * (d + 1) + col]) > fabs(A[piv * (d + 1) + col])) piv = r;
        if (fabs(A[piv * (d + 1) + col]) < 1e-12) {
            ok = -1;
            break;
        }
        for (int c = 0; c <= d; c++) {
            double tmp = A[col * (d + 1) + c];
            A[col * (d + 1) + c] = A[piv * (d + 1) + c];
            A[piv * (d + 1) + c] = tmp;
        }
        for (int r = 0; r < d; r++) {
            if (r == col) continue;
            double f = A[r * (d + 1) + col] / A[col * (d + 1) + col];
            for (int c = col; c <= d; c++) A[r * (d + 1) + c] -= f * A[col * (d + 1) + c];
        }
    }
    if (!ok)
        for (int a = 0; a < d; a++) w[a] = A[a * (d + 1) + d] / A[a * (d + 1) + a];
    free(A);
    return ok;
}

/* Collect the examples (x_i, y_i) of prompt bi of an interleaved batch, the
 * first `dd` coordinates of x, only slots with mask = 1 if clean_only. */
static inline int collect(const batch *b, int bi, int dd, int clean_only, double *X, double *y) {
    int n = 0;
    for (int t = 0; t + 1 < b->T; t += 2) {
        if (clean_only && b->mask[slot_of(b, bi, t)] == 0.0f) continue;
        for (int c = 0; c < dd; c++) X[n * dd + c] = tokx(b, bi, t)[c];
        y[n] = tokx(b, bi, t + 1)[0];
        n++;
    }
    return n;
}

static inline uint64_t S(void) { return test_seed(); }

#endif
