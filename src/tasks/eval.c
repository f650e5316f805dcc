/*
 * eval.c - the evaluation accumulator, its statistics and the CSV writer.
 * What is computed, and the assumptions, are in eval.h.
 *
 * Storage is one row per prompt: val (sum of the metric over the prompt's
 * metric slots at each position) and cnt (how many). Rows grow by doubling
 * as batches arrive (1280 prompts x 512 positions is ~8 MB). The bootstrap
 * draws resample r's prompt multiplicities from its own stream, so resamples
 * run in parallel and the result does not depend on the thread count; the
 * resample mean at a position sums prompts in index order.
 *
 * Not here: predicting (baselines.c, the models) and sampling prompts.
 */
#include "tasks/eval.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/rng.h"

const char *eval_metric_name(eval_metric kind) {
    switch (kind) {
    case EVAL_SQERR: return "sqerr";
    case EVAL_SIGN_ACC: return "sign_acc";
    case EVAL_NEAREST_ACC: return "nearest_acc";
    }
    return "unknown";
}

/* ---- accumulator -------------------------------------------------------------- */

icl_status eval_acc_init(eval_acc *acc, int positions) {
    memset(acc, 0, sizeof *acc);
    if (positions < 1) return icl_fail(ICL_ERR_ARG, "eval_acc_init: positions must be >= 1 (got %d)", positions);
    acc->positions = positions;
    return ICL_OK;
}

void eval_acc_free(eval_acc *acc) {
    if (!acc) return;
    free(acc->val);
    free(acc->cnt);
    memset(acc, 0, sizeof *acc);
}

static icl_status acc_reserve(eval_acc *acc, int need) {
    if (need <= acc->cap_prompts) return ICL_OK;
    size_t cap = acc->cap_prompts ? (size_t)acc->cap_prompts : 64;
    while (cap < (size_t)need) cap *= 2;
    size_t cells = cap * (size_t)acc->positions;
    double *val = realloc(acc->val, cells * sizeof *val);
    if (!val) return icl_fail(ICL_ERR_NOMEM, "eval: out of memory for %zu prompts x %d positions", cap, acc->positions);
    acc->val = val;
    int *cnt = realloc(acc->cnt, cells * sizeof *cnt);
    if (!cnt) return icl_fail(ICL_ERR_NOMEM, "eval: out of memory for %zu prompts x %d positions", cap, acc->positions);
    acc->cnt = cnt;
    acc->cap_prompts = (int)cap;
    return ICL_OK;
}

/* EVAL_NEAREST_ACC at slot t of prompt b: is the candidate target with the
 * largest inner product with the prediction equal to this slot's target? */
static double nearest_correct(const batch *bt, const float *pred, int b, int t) {
    const int O = bt->O, T = bt->T;
    const size_t row = (size_t)b * T;
    const float *p = pred + (row + t) * O;
    int best = -1;
    double best_ip = -INFINITY;
    for (int u = 0; u < T; u++) {
        if (bt->metric[row + u] == 0.0f) continue;
        const float *yu = bt->y + (row + u) * O;
        double ip = 0.0;
        for (int o = 0; o < O; o++) ip += (double)p[o] * yu[o];
        if (ip > best_ip) {
            best_ip = ip;
            best = u;
        }
    }
    if (best < 0) return 0.0;
    const float *yb = bt->y + (row + best) * O, *yt = bt->y + (row + t) * O;
    for (int o = 0; o < O; o++)
        if (yb[o] != yt[o]) return 0.0;
    return 1.0;
}

icl_status eval_acc_add_batch(eval_acc *acc, const batch *bt, const float *pred, double normaliser,
                              eval_metric kind) {
    if (!acc || acc->positions < 1) return icl_fail(ICL_ERR_ARG, "eval_acc_add_batch: accumulator not initialised");
    if (!bt || !pred) return icl_fail(ICL_ERR_ARG, "eval_acc_add_batch: NULL batch or pred");
    if (kind != EVAL_SQERR && kind != EVAL_SIGN_ACC && kind != EVAL_NEAREST_ACC)
        return icl_fail(ICL_ERR_ARG, "eval_acc_add_batch: unknown metric kind %d", (int)kind);
    if (acc->kind_set && kind != acc->kind)
        return icl_fail(ICL_ERR_ARG, "eval_acc_add_batch: metric '%s' given, but this accumulator holds '%s'",
                        eval_metric_name(kind), eval_metric_name(acc->kind));
    if (!bt->y || !bt->metric || !bt->example)
        return icl_fail(ICL_ERR_ARG, "eval_acc_add_batch: the batch has no y, metric or example");
    if (bt->B < 0 || bt->T < 0 || bt->O < 1)
        return icl_fail(ICL_ERR_ARG, "eval_acc_add_batch: bad batch sizes B=%d T=%d O=%d", bt->B, bt->T, bt->O);
    if (kind == EVAL_SQERR && !(normaliser > 0.0 && isfinite(normaliser)))
        return icl_fail(ICL_ERR_ARG, "eval_acc_add_batch: normaliser must be a finite number > 0 (got %g)", normaliser);
    if (kind == EVAL_SIGN_ACC && bt->O != 1)
        return icl_fail(ICL_ERR_ARG, "eval_acc_add_batch: sign accuracy needs scalar outputs (O = 1), got O = %d",
                        bt->O);
    const int B = bt->B, T = bt->T, O = bt->O, P = acc->positions;
    /* Check everything before touching the accumulator, so a failed call
     * leaves it as it was. */
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (bt->metric[i] == 0.0f) continue;
            if (bt->example[i] < 0 || bt->example[i] >= P)
                return icl_fail(ICL_ERR_SHAPE,
                                "eval_acc_add_batch: prompt %d slot %d has example %d, outside the %d positions "
                                "of this accumulator",
                                b, t, bt->example[i], P);
            for (int o = 0; o < O; o++)
                if (!isfinite(pred[i * O + o]))
                    return icl_fail(ICL_ERR_NUMERIC,
                                    "eval_acc_add_batch: prediction at prompt %d slot %d output %d is not finite (%g)",
                                    b, t, o, (double)pred[i * O + o]);
        }
    }
    icl_status st = acc_reserve(acc, acc->n_prompts + B);
    if (st != ICL_OK) return st;
    for (int b = 0; b < B; b++) {
        double *val = acc->val + (size_t)(acc->n_prompts + b) * P;
        int *cnt = acc->cnt + (size_t)(acc->n_prompts + b) * P;
        memset(val, 0, (size_t)P * sizeof *val);
        memset(cnt, 0, (size_t)P * sizeof *cnt);
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (bt->metric[i] == 0.0f) continue;
            double v = 0.0;
            switch (kind) {
            case EVAL_SQERR:
                for (int o = 0; o < O; o++) {
                    double e = (double)pred[i * O + o] - bt->y[i * O + o];
                    v += e * e;
                }
                v /= normaliser;
                break;
            /* {0, 1} and +-1 targets alike: positive means above 0.5 (eval.h). */
            case EVAL_SIGN_ACC: v = (pred[i] > 0.0f) == (bt->y[i] > 0.5f) ? 1.0 : 0.0; break;
            case EVAL_NEAREST_ACC: v = nearest_correct(bt, pred, b, t); break;
            }
            val[bt->example[i]] += v;
            cnt[bt->example[i]] += 1;
        }
    }
    acc->n_prompts += B;
    acc->kind = kind;
    acc->kind_set = 1;
    return ICL_OK;
}

icl_status eval_acc_add_scores(eval_acc *acc, const batch *bt, const float *score) {
    if (!acc || acc->positions < 1) return icl_fail(ICL_ERR_ARG, "eval_acc_add_scores: accumulator not initialised");
    if (!bt || !score) return icl_fail(ICL_ERR_ARG, "eval_acc_add_scores: NULL batch or score");
    if (!bt->metric || !bt->example)
        return icl_fail(ICL_ERR_ARG, "eval_acc_add_scores: the batch has no metric or example");
    if (bt->B < 0 || bt->T < 0)
        return icl_fail(ICL_ERR_ARG, "eval_acc_add_scores: bad batch sizes B=%d T=%d", bt->B, bt->T);
    const int B = bt->B, T = bt->T, P = acc->positions;
    /* All checks first: a failed call leaves the accumulator as it was. */
    for (int b = 0; b < B; b++) {
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (bt->metric[i] == 0.0f) continue;
            if (bt->example[i] < 0 || bt->example[i] >= P)
                return icl_fail(ICL_ERR_SHAPE,
                                "eval_acc_add_scores: prompt %d slot %d has example %d, outside the %d positions "
                                "of this accumulator",
                                b, t, bt->example[i], P);
            if (!isfinite(score[i]))
                return icl_fail(ICL_ERR_NUMERIC, "eval_acc_add_scores: score at prompt %d slot %d is not finite (%g)",
                                b, t, (double)score[i]);
        }
    }
    icl_status st = acc_reserve(acc, acc->n_prompts + B);
    if (st != ICL_OK) return st;
    for (int b = 0; b < B; b++) {
        double *val = acc->val + (size_t)(acc->n_prompts + b) * P;
        int *cnt = acc->cnt + (size_t)(acc->n_prompts + b) * P;
        memset(val, 0, (size_t)P * sizeof *val);
        memset(cnt, 0, (size_t)P * sizeof *cnt);
        for (int t = 0; t < T; t++) {
            size_t i = (size_t)b * T + t;
            if (bt->metric[i] == 0.0f) continue;
            val[bt->example[i]] += score[i];
            cnt[bt->example[i]] += 1;
        }
    }
    acc->n_prompts += B;
    return ICL_OK;
}

/* ---- statistics ---------------------------------------------------------------- */

void eval_curve_free(eval_curve *c) {
    if (!c) return;
    free(c->mean);
    free(c->std);
    free(c->lo);
    free(c->hi);
    free(c->count);
    memset(c, 0, sizeof *c);
}

static icl_status curve_alloc(eval_curve *c, int positions, int n_prompts) {
    memset(c, 0, sizeof *c);
    size_t P = (size_t)positions;
    c->positions = positions;
    c->n_prompts = n_prompts;
    c->mean = malloc(P * sizeof(double));
    c->std = malloc(P * sizeof(double));
    c->lo = malloc(P * sizeof(double));
    c->hi = malloc(P * sizeof(double));
    c->count = malloc(P * sizeof(int));
    if (!c->mean || !c->std || !c->lo || !c->hi || !c->count) {
        eval_curve_free(c);
        return icl_fail(ICL_ERR_NOMEM, "eval: out of memory for a curve of %d positions", positions);
    }
    return ICL_OK;
}

icl_status eval_curve_constant(eval_curve *c, int positions, double value, int n_prompts) {
    if (positions < 1) return icl_fail(ICL_ERR_ARG, "eval_curve_constant: positions must be >= 1 (got %d)", positions);
    icl_status st = curve_alloc(c, positions, n_prompts);
    if (st != ICL_OK) return st;
    for (int p = 0; p < positions; p++) {
        c->mean[p] = c->lo[p] = c->hi[p] = value;
        c->std[p] = 0.0;
        c->count[p] = n_prompts;
    }
    return ICL_OK;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

icl_status eval_acc_finish(const eval_acc *acc, uint64_t seed, eval_curve *curve) {
    memset(curve, 0, sizeof *curve);
    if (!acc || acc->positions < 1) return icl_fail(ICL_ERR_ARG, "eval_acc_finish: accumulator not initialised");
    const int P = acc->positions, N = acc->n_prompts, R = EVAL_RESAMPLES;
    if (N < 1) return icl_fail(ICL_ERR_ARG, "eval_acc_finish: no prompts were added");
    icl_status st = curve_alloc(curve, P, N);
    if (st != ICL_OK) return st;

    /* Mean and std over the prompts that have each position. */
    for (int p = 0; p < P; p++) {
        int n = 0;
        double sum = 0.0;
        for (int k = 0; k < N; k++) {
            size_t i = (size_t)k * P + p;
            if (acc->cnt[i]) {
                sum += acc->val[i] / acc->cnt[i];
                n++;
            }
        }
        curve->count[p] = n;
        double mean = n ? sum / n : NAN, ss = 0.0;
        for (int k = 0; k < N && n; k++) {
            size_t i = (size_t)k * P + p;
            if (acc->cnt[i]) ss += (acc->val[i] / acc->cnt[i] - mean) * (acc->val[i] / acc->cnt[i] - mean);
        }
        curve->mean[p] = mean;
        curve->std[p] = n >= 2 ? sqrt(ss / (n - 1)) : (n ? 0.0 : NAN);
    }

    /* Bootstrap: boot (R, P) resample means; per-thread multiplicities (N)
     * and sums (2P). */
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    double *boot = malloc((size_t)R * P * sizeof(double));
    int *mult = malloc((size_t)threads * N * sizeof(int));
    double *sums = malloc((size_t)threads * 2 * P * sizeof(double));
    double *col = malloc((size_t)R * sizeof(double));
    if (!boot || !mult || !sums || !col) {
        free(boot);
        free(mult);
        free(sums);
        free(col);
        eval_curve_free(curve);
        return icl_fail(ICL_ERR_NOMEM, "eval_acc_finish: out of memory for %d resamples x %d positions", R, P);
    }
#pragma omp parallel for schedule(static) num_threads(threads)
    for (int r = 0; r < R; r++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        int *m = mult + (size_t)tid * N;
        double *sv = sums + (size_t)tid * 2 * P, *sw = sv + P;
        memset(m, 0, (size_t)N * sizeof *m);
        rng_t g = rng_make(seed, EVAL_BOOT_STREAM + (uint64_t)r);
        for (int k = 0; k < N; k++) m[rng_below(&g, (uint32_t)N)]++;
        memset(sv, 0, (size_t)2 * P * sizeof *sv);
        for (int k = 0; k < N; k++) {
            if (!m[k]) continue;
            const double *vk = acc->val + (size_t)k * P;
            const int *ck = acc->cnt + (size_t)k * P;
            for (int p = 0; p < P; p++) {
                if (!ck[p]) continue;
                sv[p] += m[k] * (vk[p] / ck[p]);
                sw[p] += m[k];
            }
        }
        /* A resample that drew no prompt with this position (possible only
         * when few prompts have it) falls back to the full-sample mean. */
        for (int p = 0; p < P; p++) boot[(size_t)r * P + p] = sw[p] > 0 ? sv[p] / sw[p] : curve->mean[p];
    }
    const int ilo = (int)(EVAL_LOWER_Q * R), ihi = (int)(EVAL_UPPER_Q * R) < R ? (int)(EVAL_UPPER_Q * R) : R - 1;
    for (int p = 0; p < P; p++) {
        if (curve->count[p] == 0) {
            curve->lo[p] = curve->hi[p] = NAN;
            continue;
        }
        for (int r = 0; r < R; r++) col[r] = boot[(size_t)r * P + p];
        qsort(col, (size_t)R, sizeof *col, cmp_double);
        curve->lo[p] = col[ilo];
        curve->hi[p] = col[ihi];
    }
    free(boot);
    free(mult);
    free(sums);
    free(col);
    return ICL_OK;
}

/* ---- CSV ------------------------------------------------------------------------ */

static void put_num(FILE *f, double v) {
    fputc(',', f);
    if (isfinite(v)) fprintf(f, "%.10g", v);
}

icl_status eval_write_csv(const char *path, const eval_curve *curves, const char *const *names, int n_curves) {
    if (!path || !*path) return icl_fail(ICL_ERR_ARG, "eval_write_csv: empty path");
    if (n_curves < 1 || !curves || !names)
        return icl_fail(ICL_ERR_ARG, "eval_write_csv(%s): need at least one curve and its name", path);
    int P = 0;
    for (int c = 0; c < n_curves; c++) {
        if (!names[c] || !*names[c] || strpbrk(names[c], ",\"\n\r"))
            return icl_fail(ICL_ERR_ARG, "eval_write_csv(%s): curve %d needs a non-empty name without , \" or newline",
                            path, c);
        if (curves[c].positions > 0 && !curves[c].mean)
            return icl_fail(ICL_ERR_ARG, "eval_write_csv(%s): curve '%s' has no data", path, names[c]);
        if (curves[c].positions > P) P = curves[c].positions;
    }
    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) return icl_fail(ICL_ERR_NOMEM, "eval_write_csv(%s): out of memory", path);
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        int e = errno;
        free(tmp);
        return icl_fail(ICL_ERR_IO, "cannot write '%s': %s", path, strerror(e));
    }
    fputs("position", f);
    for (int c = 0; c < n_curves; c++)
        fprintf(f, ",%s_mean,%s_std,%s_lo,%s_hi", names[c], names[c], names[c], names[c]);
    fputc('\n', f);
    for (int p = 0; p < P; p++) {
        fprintf(f, "%d", p);
        for (int c = 0; c < n_curves; c++) {
            const eval_curve *cv = &curves[c];
            int have = p < cv->positions;
            put_num(f, have ? cv->mean[p] : NAN);
            put_num(f, have ? cv->std[p] : NAN);
            put_num(f, have ? cv->lo[p] : NAN);
            put_num(f, have ? cv->hi[p] : NAN);
        }
        fputc('\n', f);
    }
    int bad = ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        remove(tmp);
        free(tmp);
        return icl_fail(ICL_ERR_IO, "cannot write '%s': %s", path, strerror(e));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        remove(tmp);
        free(tmp);
        return icl_fail(ICL_ERR_IO, "cannot write '%s' (rename from temporary file failed): %s", path, strerror(e));
    }
    free(tmp);
    return ICL_OK;
}
