/*
 * trainer_io.c - trainer checkpoints (see trainer_io.h for the metadata).
 *
 * Saving adds the trainer's metadata to checkpoint_save; loading is the
 * reverse in an order that never half-builds anything: read and check every
 * metadata field, rebuild the model (checkpoint_read_model) and the task
 * (task_spec_default + task_spec_set of each saved option), trainer_init,
 * overwrite the fresh optimiser with the saved one, seek to the saved step.
 */
#include "train/trainer_io.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "nn/checkpoint.h"

#define TASK_KEYS_MAX 64
#define TASK_JSON_MAX 4096

int trainer_io_task_json(const task_spec *s, char *buf, size_t n) {
    const char *keys[TASK_KEYS_MAX];
    int nk = task_spec_keys(s, keys, TASK_KEYS_MAX);
    if (nk > TASK_KEYS_MAX) nk = TASK_KEYS_MAX;
    char name[2 * TASK_NAME_MAX + 8];
    json_write_string(name, sizeof name, s->name, strlen(s->name));
    size_t used = 0;
    /* snprintf semantics: keep counting past the end of buf */
#define EMIT(...)                                                                              \
    do {                                                                                       \
        int w_ = snprintf(used < n ? buf + used : NULL, used < n ? n - used : 0, __VA_ARGS__); \
        if (w_ > 0) used += (size_t)w_;                                                        \
    } while (0)
    EMIT("{\"name\":%s", name);
    for (int i = 0; i < nk; i++) {
        double v = 0;
        task_spec_get(s, keys[i], &v);
        /* %.17g: every double (and every int) reads back exactly */
        EMIT(",\"%s\":%.17g", keys[i], v);
    }
    EMIT("}");
#undef EMIT
    return (int)used;
}

/* ---- save -------------------------------------------------------------- */

icl_status trainer_io_save(const trainer *tr, const char *path) {
    char step[32], seed[32], bsz[32], loss[40], gnorm[40], taskj[TASK_JSON_MAX];
    snprintf(step, sizeof step, "%ld", tr->step);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)tr->seed);
    snprintf(bsz, sizeof bsz, "%d", tr->B);
    snprintf(loss, sizeof loss, "%.17g", tr->loss);
    snprintf(gnorm, sizeof gnorm, "%.17g", tr->grad_norm);
    if (trainer_io_task_json(task_get_spec(tr->t), taskj, sizeof taskj) >= (int)sizeof taskj)
        return icl_fail(ICL_ERR_ARG, "save %s: the task spec does not fit in %d bytes of JSON", path, TASK_JSON_MAX);
    const char *keys[7] = {"trainer", "step", "seed", "batch", "task"};
    const char *vals[7] = {TRAINER_IO_FORMAT, step, seed, bsz, taskj};
    size_t n = 5;
    if (tr->step > 0 && isfinite(tr->loss)) {
        keys[n] = "loss";
        vals[n++] = loss;
        keys[n] = "grad_norm";
        vals[n++] = gnorm;
    }
    return checkpoint_save(path, tr->m, &tr->opt, keys, vals, n);
}

/* ---- metadata ------------------------------------------------------------ */

/* A decimal integer made of digits only (no sign, no spaces) in [0, hi]. */
static int parse_uint(const char *s, unsigned long long hi, unsigned long long *out) {
    if (!s || !*s) return 0;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p)) return 0;
    errno = 0;
    unsigned long long v = strtoull(s, NULL, 10);
    if (errno || v > hi) return 0;
    *out = v;
    return 1;
}

static icl_status parse_task(const char *js, const char *label, task_spec *s) {
    json_doc *doc = NULL;
    if (json_parse(js, strlen(js), &doc))
        return icl_fail(ICL_ERR_FORMAT, "%s: task metadata: %s", label, icl_error());
    const json_value *r = json_root(doc);
    const char *name = json_as_string(json_get(r, "name"));
    icl_status st = ICL_OK;
    if (!name) {
        st = icl_fail(ICL_ERR_FORMAT, "%s: task metadata has no \"name\" string", label);
    } else {
        task_spec_default(s, name);
        if (s->kind == TASK_KIND_COUNT) st = icl_fail(ICL_ERR_FORMAT, "%s: unknown task '%s' in the metadata", label, name);
    }
    for (size_t i = 0; !st && i < json_len(r); i++) {
        const char *key = json_key_at(r, i);
        if (!strcmp(key, "name")) continue;
        double v;
        if (json_as_double(json_at(r, i), &v))
            st = icl_fail(ICL_ERR_FORMAT, "%s: task option '%s' is not a number", label, key);
        else if (task_spec_set(s, key, v))
            st = icl_fail(ICL_ERR_FORMAT, "%s: task metadata: %s", label, icl_error());
    }
    /* a file we wrote holds every option: a missing one means it was edited */
    const char *keys[TASK_KEYS_MAX];
    int nk = st ? 0 : task_spec_keys(s, keys, TASK_KEYS_MAX);
    for (int i = 0; !st && i < nk && i < TASK_KEYS_MAX; i++)
        if (!json_get(r, keys[i]))
            st = icl_fail(ICL_ERR_FORMAT, "%s: task metadata lacks option '%s' of %s", label, keys[i], s->name);
    json_free(doc);
    return st;
}

icl_status trainer_io_read_meta(const st_file *f, const char *label, trainer_meta *meta) {
    memset(meta, 0, sizeof *meta);
    const char *fmt = st_meta(f, "trainer");
    if (!fmt)
        return icl_fail(ICL_ERR_FORMAT,
                        "%s: not a trainer checkpoint (no trainer metadata): it holds a model only; load it as a model",
                        label);
    if (strcmp(fmt, TRAINER_IO_FORMAT))
        return icl_fail(ICL_ERR_FORMAT, "%s: trainer format is \"%s\", this program reads \"%s\"", label, fmt,
                        TRAINER_IO_FORMAT);
    const char *step = st_meta(f, "step"), *seed = st_meta(f, "seed"), *bsz = st_meta(f, "batch");
    unsigned long long v;
    if (!parse_uint(step, LONG_MAX / 2, &v))
        return icl_fail(ICL_ERR_FORMAT, "%s: metadata step is %s%s%s, want a count of steps", label,
                        step ? "'" : "", step ? step : "missing", step ? "'" : "");
    meta->step = (long)v;
    if (!parse_uint(seed, ULLONG_MAX, &v))
        return icl_fail(ICL_ERR_FORMAT, "%s: metadata seed is %s%s%s, want an unsigned 64-bit integer", label,
                        seed ? "'" : "", seed ? seed : "missing", seed ? "'" : "");
    meta->seed = (uint64_t)v;
    if (!parse_uint(bsz, INT_MAX, &v) || v < 1)
        return icl_fail(ICL_ERR_FORMAT, "%s: metadata batch is %s%s%s, want an integer >= 1", label,
                        bsz ? "'" : "", bsz ? bsz : "missing", bsz ? "'" : "");
    meta->batch = (int)v;
    const char *loss = st_meta(f, "loss"), *gn = st_meta(f, "grad_norm");
    meta->loss = loss ? strtod(loss, NULL) : NAN;
    meta->grad_norm = gn ? strtod(gn, NULL) : NAN;
    const char *tj = st_meta(f, "task");
    if (!tj) return icl_fail(ICL_ERR_FORMAT, "%s: trainer checkpoint without task metadata", label);
    return parse_task(tj, label, &meta->task);
}

/* ---- restore --------------------------------------------------------------- */

icl_status trainer_io_check_task(const task *t, const trainer_meta *meta, const char *label) {
    const task_spec *have = task_get_spec(t), *want = &meta->task;
    char desc[512];
    task_describe(t, desc, sizeof desc);
    if (strcmp(have->name, want->name))
        return icl_fail(ICL_ERR_ARG, "%s was trained on task %s, not on the task given (%s)", label, want->name, desc);
    const char *keys[TASK_KEYS_MAX];
    int nk = task_spec_keys(want, keys, TASK_KEYS_MAX);
    for (int i = 0; i < nk && i < TASK_KEYS_MAX; i++) {
        double a = 0, b = 0;
        task_spec_get(want, keys[i], &a);
        task_spec_get(have, keys[i], &b);
        if (a != b)
            return icl_fail(ICL_ERR_ARG, "%s was trained with %s %s = %.17g, the task given has %.17g (%s)", label,
                            want->name, keys[i], a, b, desc);
    }
    return ICL_OK;
}

icl_status trainer_io_restore(trainer *tr, const st_file *f, const char *label, model *m, task *t,
                              const trainer_meta *meta) {
    memset(tr, 0, sizeof *tr);
    icl_status st = trainer_io_check_task(t, meta, label);
    if (st) return st;
    optim_config oc;
    optim_config_default(&oc); /* replaced by the saved config below */
    st = trainer_init(tr, m, t, &oc, meta->batch, meta->seed);
    if (st) {
        /* trainer_init's messages start with "trainer: " */
        char msg[1024];
        const char *e = icl_error();
        snprintf(msg, sizeof msg, "%s", strncmp(e, "trainer: ", 9) ? e : e + 9);
        return icl_fail(st, "%s: %s", label, msg);
    }
    st = checkpoint_read_optim(f, label, m, &tr->opt);
    if (st) {
        trainer_free(tr);
        memset(tr, 0, sizeof *tr);
        return st;
    }
    trainer_seek(tr, meta->step);
    tr->loss = meta->loss;
    tr->grad_norm = meta->grad_norm;
    tr->lr = tr->opt.t > 0 ? optim_lr_at(&tr->opt.cfg, tr->opt.t - 1) : 0.0;
    tr->opt.last_grad_norm = meta->grad_norm;
    tr->opt.last_lr = tr->lr;
    return ICL_OK;
}

icl_status trainer_io_load(const char *path, model **m, task **t, trainer *tr) {
    *m = NULL;
    *t = NULL;
    memset(tr, 0, sizeof *tr);
    st_file *f = NULL;
    icl_status st = checkpoint_open(path, &f);
    if (st) return st;
    trainer_meta meta;
    st = trainer_io_read_meta(f, path, &meta);
    if (!st && meta.task.kind == TASK_CUSTOM)
        st = icl_fail(ICL_ERR_ARG,
                      "%s was trained on a custom task, whose prompts come from code (a Lua fill function) that a "
                      "file cannot hold: rebuild the task and pass it (icl.resume(path, task))",
                      path);
    if (!st && (st = task_create(t, &meta.task))) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", icl_error());
        st = icl_fail(ICL_ERR_FORMAT, "%s: the saved task does not build: %s", path, msg);
    }
    if (!st) st = checkpoint_read_model(f, path, m);
    if (!st) st = trainer_io_restore(tr, f, path, *m, *t, &meta);
    st_close(f);
    if (st) {
        model_free(*m);
        task_free(*t);
        *m = NULL;
        *t = NULL;
    }
    return st;
}
