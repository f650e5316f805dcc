/*
 * fuzz_checkpoint.c - fuzz target: loading checkpoints (core/safetensors.h,
 * nn/checkpoint.h, train/trainer_io.h) from arbitrary bytes.
 *
 * One input is the bytes of a file. It goes through every loader a user's
 * `icl.load`, `icl.resume` or `iclplay train --resume` reaches:
 *   st_open_memory        validate the container (label "fuzz.safetensors")
 *   st_open + checkpoint_open on the same bytes as a real file (a memfd
 *                         named by /proc/self/fd/N, else /tmp/icl_fuzz_ckpt.<pid>)
 *   checkpoint_read_model the spec from the metadata, every weight
 *   checkpoint_read_optim the optimiser config and moments
 *   trainer_io_read_meta  the trainer metadata and the task spec JSON
 *   task_create, trainer_io_check_task, trainer_io_restore, then one
 *   trainer_step and a forward pass of what loaded
 * and checks what the headers promise: a failure returns a non-OK status
 * with a message (naming the file for format errors) and leaves the out
 * pointer NULL; the file and memory readers agree; every entry's shape
 * matches its element count and its data can be read; what loads reads
 * back exactly (weights and moments equal the file's floats); a failed
 * optimiser read changes nothing; a restored trainer's curriculum (from
 * the saved step) is one the task can have.
 *
 * Sizes: a spec from the file can ask for billions of parameters. The
 * memory budget (core/budget.h) is set to CK_BUDGET, so model_create must
 * refuse those before allocating (libFuzzer reports any single allocation
 * above -rss_limit_mb as an out-of-memory failure). A trainer is restored
 * and stepped only when its batch and activations are small (CK_MAX_BATCH,
 * CK_MAX_ACT_BYTES) and a forward pass runs only on tiny models
 * (CK_MAX_FORWARD), so the fuzzer spends its time in the loaders.
 *
 * Not here: writing checkpoints (tests/core/test_safetensors.c, the Lua
 * checkpoint tests).
 */
#include "fuzz.h"

#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/budget.h"
#include "core/safetensors.h"
#include "nn/checkpoint.h"
#include "nn/model.h"
#include "nn/optim.h"
#include "tasks/task.h"
#include "train/trainer.h"
#include "train/trainer_io.h"

#define CK_LABEL "fuzz.safetensors"
#define CK_BUDGET ((size_t)64 << 20)       /* bytes one model or batch may take */
#define CK_MAX_FORWARD ((size_t)1 << 15)   /* run a forward pass on models up to this many parameters */
#define CK_MAX_BATCH 4
#define CK_MAX_ACT_BYTES ((size_t)32 << 20)

/* ---- the bytes as a real file ------------------------------------------ */

/* One file per process, rewritten for every input: an anonymous memfd when
 * the kernel has them (nothing touches the disk), else a per-process path
 * under /tmp that the target removes at exit. */
static int ck_fd = -1;
static char ck_path[64];

static void ck_unlink_tmp(void) {
    if (ck_path[0] && strncmp(ck_path, "/proc/", 6)) unlink(ck_path);
}

static const char *ck_as_file(const uint8_t *data, size_t size) {
    if (ck_fd < 0) {
#ifdef SYS_memfd_create
        ck_fd = (int)syscall(SYS_memfd_create, "icl_fuzz_ckpt", 1u /* MFD_CLOEXEC */);
#endif
        if (ck_fd >= 0) {
            snprintf(ck_path, sizeof ck_path, "/proc/self/fd/%d", ck_fd);
        } else {
            snprintf(ck_path, sizeof ck_path, "/tmp/icl_fuzz_ckpt.%ld", (long)getpid());
            ck_fd = open(ck_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
            if (ck_fd < 0) return NULL;
            atexit(ck_unlink_tmp);
        }
    }
    if (ftruncate(ck_fd, 0) != 0) return NULL;
    size_t done = 0;
    while (done < size) {
        ssize_t w = pwrite(ck_fd, data + done, size - done, (off_t)done);
        if (w <= 0) return NULL;
        done += (size_t)w;
    }
    return ck_path;
}

/* ---- checks -------------------------------------------------------------- */

/* A failed call: non-OK, a message, and (for format errors) the label in it. */
static int ck_check_failure(const char *what, icl_status st, const char *label) {
    const char *msg = icl_error();
    if (st == ICL_OK) return 0;
    if (!msg || !msg[0]) return fuzz_fail("checkpoint", "%s failed (%s) without a message", what, icl_status_name(st));
    if (st == ICL_ERR_FORMAT && label && !strstr(msg, label))
        return fuzz_fail("checkpoint", "%s: format error does not name the file '%s': %s", what, label, msg);
    return 0;
}

/* Every entry: shape product = nelem, data readable, names unique (st_find
 * finds each entry itself), metadata pairs found by key. */
static int ck_check_file(const st_file *f) {
    int bad = 0;
    size_t n = st_count(f);
    volatile float sink = 0;
    for (size_t i = 0; i < n; i++) {
        const st_entry *e = st_entry_at(f, i);
        if (!e || !e->name) return fuzz_fail("checkpoint", "entry %zu of %zu is NULL", i, n);
        if (e->ndim < 0 || e->ndim > ST_MAX_DIMS)
            return fuzz_fail("checkpoint", "entry %s has ndim %d", e->name, e->ndim);
        size_t prod = 1;
        for (int k = 0; k < e->ndim; k++) {
            if (e->shape[k] < 0) return fuzz_fail("checkpoint", "entry %s has a negative dimension", e->name);
            prod *= (size_t)e->shape[k];
        }
        if (prod != e->nelem)
            bad |= fuzz_fail("checkpoint", "entry %s: nelem %zu but the shape gives %zu", e->name, e->nelem, prod);
        if (e->nelem && !e->data) bad |= fuzz_fail("checkpoint", "entry %s: %zu elements and no data", e->name, e->nelem);
        if (e->data && ((uintptr_t)e->data % sizeof(float)))
            bad |= fuzz_fail("checkpoint", "entry %s: data not float-aligned", e->name);
        /* read every float: ASan checks the bounds */
        for (size_t k = 0; e->data && k < e->nelem; k++) sink += e->data[k];
        if (st_find(f, e->name) != e)
            bad |= fuzz_fail("checkpoint", "st_find(\"%s\") does not return entry %zu", e->name, i);
    }
    if (st_entry_at(f, n) != NULL) bad |= fuzz_fail("checkpoint", "st_entry_at(count) is not NULL");
    size_t nm = st_meta_count(f);
    for (size_t i = 0; i < nm; i++) {
        const char *k = NULL, *v = NULL;
        if (!st_meta_at(f, i, &k, &v) || !k || !v)
            return fuzz_fail("checkpoint", "metadata pair %zu of %zu is missing", i, nm);
        if (st_meta(f, k) != v) bad |= fuzz_fail("checkpoint", "st_meta(\"%s\") is not pair %zu", k, i);
    }
    (void)sink;
    return bad;
}

/* A tiny forward pass on the loaded weights (they may be NaN, Inf or huge):
 * it may fail, but must not crash. */
static int ck_forward(model *m) {
    if (m->n_params > CK_MAX_FORWARD) return 0;
    const model_spec *s = &m->spec;
    int T = 3;
    if (s->n_positions > 0 && s->n_positions < T) T = s->n_positions;
    icl_status st = model_reserve(m, 1, T);
    if (st != ICL_OK) return ck_check_failure("model_reserve", st, NULL);
    float x[3 * 4096];
    int tok[3] = {0, 1, 0};
    for (int i = 0; i < T; i++) tok[i] = s->vocab > 0 ? tok[i] % s->vocab : 0;
    int d = s->n_dims;
    if (s->vocab == 0 && (size_t)T * (size_t)d > sizeof x / sizeof *x) return 0;
    for (int i = 0; i < T * (s->vocab > 0 ? 0 : d); i++) x[i] = (float)((i % 7) - 3) * 0.25f;
    st = model_forward(m, s->vocab > 0 ? NULL : x, s->vocab > 0 ? tok : NULL, 1, T);
    return ck_check_failure("model_forward", st, NULL);
}

/* checkpoint_read_optim on a fresh optimiser: on failure nothing changed,
 * on success the moments are the file's and the config validates. */
static int ck_read_optim(const st_file *f, const model *m) {
    optim o;
    optim_config c;
    optim_config_default(&c);
    if (optim_create(&o, &c, m->n_params) != ICL_OK) return 0;
    for (size_t i = 0; i < o.n; i++) {
        o.m[i] = 12345.0f;
        o.v[i] = 54321.0f;
    }
    o.t = 77;
    int bad = 0;
    icl_status st = checkpoint_read_optim(f, CK_LABEL, m, &o);
    if (st != ICL_OK) {
        bad |= ck_check_failure("checkpoint_read_optim", st, CK_LABEL);
        int changed = o.t != 77;
        for (size_t i = 0; i < o.n && !changed; i++) changed = o.m[i] != 12345.0f || o.v[i] != 54321.0f;
        if (changed) bad |= fuzz_fail("checkpoint", "checkpoint_read_optim failed but changed the optimiser");
    } else {
        if (optim_config_validate(&o.cfg) != ICL_OK)
            bad |= fuzz_fail("checkpoint", "checkpoint_read_optim loaded a config that does not validate: %s",
                             icl_error());
        char name[80];
        for (int i = 0; i < m->n_tensors; i++) {
            const param_tensor *p = &m->table[i];
            snprintf(name, sizeof name, "optim.m.%s", p->name);
            const st_entry *e = st_find(f, name);
            if (!e || memcmp(e->data, o.m + p->offset, sizeof(float) * p->numel))
                bad |= fuzz_fail("checkpoint", "moment %s does not read back", name);
        }
    }
    optim_free(&o);
    return bad;
}

/* The trainer path: metadata, the task it names, and a full restore when small. */
static int ck_trainer(const st_file *f, model *m) {
    trainer_meta meta;
    icl_status st = trainer_io_read_meta(f, CK_LABEL, &meta);
    if (st != ICL_OK) return ck_check_failure("trainer_io_read_meta", st, CK_LABEL);
    int bad = 0;
    task *t = NULL;
    st = task_create(&t, &meta.task);
    if (st != ICL_OK) return ck_check_failure("task_create (from trainer metadata)", st, NULL);
    if (t == NULL) return fuzz_fail("checkpoint", "task_create returned OK and no task");
    st = trainer_io_check_task(t, &meta, CK_LABEL);
    if (st != ICL_OK)
        bad |= fuzz_fail("checkpoint", "trainer_io_check_task rejects the task built from the file's own spec: %s",
                         icl_error());
    char js[4096];
    int need = trainer_io_task_json(&meta.task, js, sizeof js);
    if (need < 0 || (need < (int)sizeof js && (int)strlen(js) != need))
        bad |= fuzz_fail("checkpoint", "trainer_io_task_json returned %d for %zu bytes", need, strlen(js));
    int restore = m && meta.batch <= CK_MAX_BATCH &&
                  model_activation_bytes(&m->spec, meta.batch, task_T_max(t)) <= CK_MAX_ACT_BYTES;
    if (restore) {
        trainer tr;
        st = trainer_io_restore(&tr, f, CK_LABEL, m, t, &meta);
        if (st != ICL_OK) {
            bad |= ck_check_failure("trainer_io_restore", st, CK_LABEL);
        } else {
            /* the curriculum the saved step gives must be one the task can have */
            const task_spec *ts = task_get_spec(t);
            int dc = task_cur_dims(t), nc = task_cur_points(t), T = task_T(t);
            if ((ts->kind != TASK_TOKEN_MQAR && (dc < 1 || dc > ts->n_dims)) || nc < 1 || T < 1 || T > task_T_max(t))
                bad |= fuzz_fail("checkpoint", "restored at step %ld: d_cur = %d, n_cur = %d, T = %d (T_max %d)",
                                 meta.step, dc, nc, T, task_T_max(t));
            else if ((st = trainer_step(&tr)) != ICL_OK) /* training goes on from the file */
                bad |= ck_check_failure("trainer_step after restore", st, NULL);
            trainer_free(&tr);
        }
    }
    task_free(t);
    return bad;
}

/* The model path: spec, weights, optimiser, trainer. */
static int ck_model(const st_file *f) {
    model *m = (model *)f; /* must be overwritten */
    icl_status st = checkpoint_read_model(f, CK_LABEL, &m);
    if (st != ICL_OK) {
        int bad = ck_check_failure("checkpoint_read_model", st, CK_LABEL);
        if (m) bad |= fuzz_fail("checkpoint", "checkpoint_read_model failed but left a model");
        /* a weights-only failure still lets the trainer metadata be read */
        return bad | ck_trainer(f, NULL);
    }
    int bad = 0;
    if (!m) return fuzz_fail("checkpoint", "checkpoint_read_model returned OK and no model");
    if (model_spec_validate(&m->spec) != ICL_OK)
        bad |= fuzz_fail("checkpoint", "loaded a model whose spec does not validate: %s", icl_error());
    for (int i = 0; i < m->n_tensors; i++) {
        const param_tensor *p = &m->table[i];
        const st_entry *e = st_find(f, p->name);
        if (!e || e->nelem != p->numel || memcmp(e->data, m->params + p->offset, sizeof(float) * p->numel))
            bad |= fuzz_fail("checkpoint", "parameter %s does not read back", p->name);
    }
    bad |= ck_read_optim(f, m);
    bad |= ck_trainer(f, m);
    bad |= ck_forward(m);
    model_free(m);
    return bad;
}

int fuzz_checkpoint_one(const uint8_t *data, size_t size) {
    int bad = 0;
    icl_budget_set(CK_BUDGET);
    st_file *f = (st_file *)&bad; /* must be overwritten */
    icl_status st = st_open_memory(data, size, CK_LABEL, &f);
    if (st != ICL_OK) {
        bad |= ck_check_failure("st_open_memory", st, CK_LABEL);
        if (f) bad |= fuzz_fail("checkpoint", "st_open_memory failed but left a file");
        f = NULL;
    } else if (!f) {
        return fuzz_fail("checkpoint", "st_open_memory returned OK and no file");
    }

    /* The same bytes through the path readers. */
    const char *path = ck_as_file(data, size);
    if (path) {
        st_file *g = (st_file *)&bad;
        icl_status st2 = st_open(path, &g);
        if (st2 != st)
            bad |= fuzz_fail("checkpoint", "st_open says %s, st_open_memory %s", icl_status_name(st2),
                             icl_status_name(st));
        if (st2 != ICL_OK) {
            bad |= ck_check_failure("st_open", st2, path);
            if (g) bad |= fuzz_fail("checkpoint", "st_open failed but left a file");
        }
        st_close(st2 == ICL_OK ? g : NULL);
        g = (st_file *)&bad;
        st2 = checkpoint_open(path, &g);
        if (st2 != ICL_OK) {
            bad |= ck_check_failure("checkpoint_open", st2, path);
            if (g) bad |= fuzz_fail("checkpoint", "checkpoint_open failed but left a file");
        } else {
            const char *fmt = st_meta(g, "format");
            if (!fmt || strcmp(fmt, CHECKPOINT_FORMAT))
                bad |= fuzz_fail("checkpoint", "checkpoint_open accepted a file whose format is not %s",
                                 CHECKPOINT_FORMAT);
            st_close(g);
        }
    }
    if (!f) return bad;

    bad |= ck_check_file(f);
    bad |= ck_model(f);
    st_close(f);
    return bad;
}

#ifdef FUZZ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fuzz_checkpoint_one(data, size)) abort();
    return 0;
}
#endif
