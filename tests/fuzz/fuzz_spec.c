/*
 * fuzz_spec.c - fuzz target: task specs (tasks/task.h) and model specs
 * (nn/model.h) from JSON and from key/value settings, their validation,
 * and building small tasks and models from what validates.
 *
 * The first byte picks the mode; the rest is its input:
 *   0  task JSON as a trainer checkpoint stores it ({"name":..., key: number})
 *      through both readers: a plain object walk with task_spec_default +
 *      task_spec_set per member (what a caller with a JSON table does), and
 *      trainer_io_read_meta on an in-memory checkpoint whose "task" metadata
 *      is the text (the real load path)
 *   1  model JSON through model_spec_from_json (the checkpoint's model_spec)
 *   2  task key/value: a task name, then (key, value) records for
 *      task_spec_set, as the Lua binding forwards table fields
 *   3  model key/value: an architecture, then model_spec_set / _set_blocks
 * Values are small ints, raw doubles (NaN, Inf, denormals) or picks from a
 * table of boundary values. As a real caller does, settings stop at the
 * first failure.
 *
 * Checked: every failure has a message; a failed task_spec_set leaves the
 * spec as it was and a successful one reads back with task_spec_get; a spec
 * that validates builds (task_create / model_create) and has sane geometry;
 * sampled batches have masks in {0, 1}, example indices in range and finite
 * values; metrics are finite; the curriculum stays in its ranges after a
 * seek; task_describe follows snprintf semantics; JSON round trips (model
 * spec to_json -> from_json -> to_json, task spec -> trainer_io_task_json ->
 * trainer_io_read_meta) give the same spec.
 *
 * Sizes: the memory budget (core/budget.h) is set to SP_BUDGET, and every
 * spec that validates goes to task_create / model_create, which must refuse
 * what does not fit before allocating (libFuzzer reports any single
 * allocation above -rss_limit_mb). For time, this target samples a task
 * only when two prompts stay under SP_MAX_SAMPLE floats.
 *
 * Not here: the samplers' statistics (tests/tasks), checkpoint files
 * (fuzz_checkpoint.c).
 */
#include "fuzz.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"
#include "core/json.h"
#include "core/rng.h"
#include "core/safetensors.h"
#include "nn/model.h"
#include "tasks/task.h"
#include "train/trainer_io.h"

#define SP_LABEL "fuzz-spec"
#define SP_MAX_SAMPLE ((size_t)1 << 17) /* floats in a sampled batch of 2 prompts */
#define SP_BUDGET ((size_t)64 << 20)
#define SP_MAX_RECORDS 24
#define SP_JSON_MAX 8192

static int sp_failed(const char *what, icl_status st) {
    const char *msg = icl_error();
    if (st != ICL_OK && (!msg || !msg[0]))
        return fuzz_fail("spec", "%s failed (%s) without a message", what, icl_status_name(st));
    return 0;
}

/* A value for a setting: small ints, raw doubles or boundary values. */
static double sp_value(fuzz_reader *r) {
    static const double special[] = {0,     -1,       1,        0.5,          2,         3,     4,
                                     1e6,   1e6 + 1,  1e12,     1e300,        -1e300,    1e-300, 65536,
                                     65537, 1 << 20,  (1 << 20) + 1, 1 << 24, 2147483647.0, 2147483648.0,
                                     -2147483648.0, 4294967296.0, 9007199254740993.0, 1.5, 0.999999, 100,
                                     NAN, INFINITY, -INFINITY, -0.0, 20, 21, 128, 129, 8192, 8193};
    uint8_t tag = fuzz_u8(r);
    switch (tag % 4) {
    case 0: return (double)(int8_t)fuzz_u8(r);
    case 1: {
        uint32_t v = fuzz_u8(r);
        v |= (uint32_t)fuzz_u8(r) << 8;
        return (double)(int16_t)v;
    }
    case 2: {
        uint64_t bits = fuzz_u64(r);
        double d;
        memcpy(&d, &bits, sizeof d);
        return d;
    }
    default: return special[fuzz_u8(r) % (sizeof special / sizeof *special)];
    }
}

/* ---- task specs ------------------------------------------------------------ */

/* Every option key of every task, plus two that are no option. */
static const char *sp_task_keys[80];
static int sp_n_task_keys;

static void sp_init_task_keys(void) {
    if (sp_n_task_keys) return;
    int n = 0;
    const char *const *names = task_names(&n);
    const char *extra[] = {"custom"};
    for (int i = 0; i <= n; i++) {
        task_spec s;
        task_spec_default(&s, i < n ? names[i] : extra[0]);
        const char *k[64];
        int nk = task_spec_keys(&s, k, 64);
        for (int j = 0; j < nk && j < 64; j++) {
            int seen = 0;
            for (int q = 0; q < sp_n_task_keys; q++) seen |= !strcmp(sp_task_keys[q], k[j]);
            if (!seen && sp_n_task_keys < 78) sp_task_keys[sp_n_task_keys++] = k[j];
        }
    }
    sp_task_keys[sp_n_task_keys++] = "name";
    sp_task_keys[sp_n_task_keys++] = "no_such_option";
}

/* The fill function of custom tasks: deterministic values from the generator. */
static icl_status sp_fill(void *ctx, int prompt, rng_t *rng, int n_points, int d, int d_cur, float *x, float *y) {
    (void)ctx;
    (void)prompt;
    (void)d_cur;
    for (int i = 0; i < n_points; i++) {
        for (int j = 0; j < d; j++) x[(size_t)i * d + j] = rng_normal(rng);
        y[i] = x[(size_t)i * d];
    }
    return ICL_OK;
}

/* An in-memory trainer checkpoint with no tensors whose "task" metadata is
 * text[0..len) (invalid UTF-8 becomes U+FFFD; safetensors metadata is JSON). */
static st_file *sp_meta_file(const char *text, size_t len) {
    size_t cap = 6 * len + 256;
    char *hdr = malloc(cap + 8), *esc = malloc(6 * len + 3);
    if (!hdr || !esc) {
        free(hdr);
        free(esc);
        return NULL;
    }
    json_write_string(esc, 6 * len + 3, text, len);
    int n = snprintf(hdr + 8, cap,
                     "{\"__metadata__\":{\"format\":\"iclplay-checkpoint-1\",\"trainer\":\"%s\",\"step\":\"3\","
                     "\"seed\":\"7\",\"batch\":\"2\",\"task\":%s}}",
                     TRAINER_IO_FORMAT, esc);
    free(esc);
    st_file *f = NULL;
    if (n > 0 && (size_t)n < cap) {
        for (int i = 0; i < 8; i++) hdr[i] = (char)(((uint64_t)n >> (8 * i)) & 0xff);
        if (st_open_memory(hdr, (size_t)n + 8, SP_LABEL, &f) != ICL_OK) {
            fprintf(stderr, "fuzz spec: harness: the metadata file does not open: %s\n", icl_error());
            f = NULL;
        }
    }
    free(hdr);
    return f;
}

/* Save (trainer_io_task_json) and load (trainer_io_read_meta) a spec that
 * validated: the same name and the same value of every option. */
static int sp_task_roundtrip(const task_spec *s) {
    char js[SP_JSON_MAX];
    int need = trainer_io_task_json(s, js, sizeof js);
    if (need < 0 || need >= (int)sizeof js) return fuzz_fail("spec", "trainer_io_task_json needs %d bytes", need);
    if ((int)strlen(js) != need) return fuzz_fail("spec", "trainer_io_task_json: returned %d, wrote %zu", need, strlen(js));
    st_file *f = sp_meta_file(js, (size_t)need);
    if (!f) return 0;
    trainer_meta meta;
    int bad = 0;
    icl_status st = trainer_io_read_meta(f, SP_LABEL, &meta);
    if (st != ICL_OK) {
        bad |= fuzz_fail("spec", "a saved task spec does not load back: %s\n  json: %s", icl_error(), js);
    } else {
        const char *keys[64];
        int nk = task_spec_keys(s, keys, 64);
        if (strcmp(meta.task.name, s->name) || meta.task.kind != s->kind)
            bad |= fuzz_fail("spec", "task name %s loads back as %s", s->name, meta.task.name);
        for (int i = 0; i < nk && i < 64; i++) {
            double a = 0, b = 0;
            task_spec_get(s, keys[i], &a);
            task_spec_get(&meta.task, keys[i], &b);
            if (!(a == b)) bad |= fuzz_fail("spec", "task %s: %s = %.17g loads back as %.17g", s->name, keys[i], a, b);
        }
        if (task_spec_validate(&meta.task) != ICL_OK)
            bad |= fuzz_fail("spec", "task %s validates but its reloaded spec does not: %s", s->name, icl_error());
    }
    st_close(f);
    return bad;
}

/* The batch of a sample: masks 0/1, examples in range, values finite. */
static int sp_check_batch(const task *t, const batch *b, int B) {
    int bad = 0;
    int T = task_T(t), d = task_d(t), O = task_out(t), V = task_vocab(t), E = task_examples(t);
    if (b->B != B || b->T != T) return fuzz_fail("spec", "sample: batch is (%d, %d), want (%d, %d)", b->B, b->T, B, T);
    size_t BT = (size_t)B * T;
    for (size_t i = 0; i < BT && !bad; i++) {
        if (!(b->mask[i] == 0 || b->mask[i] == 1)) bad |= fuzz_fail("spec", "mask[%zu] = %g", i, b->mask[i]);
        if (!(b->metric[i] == 0 || b->metric[i] == 1)) bad |= fuzz_fail("spec", "metric[%zu] = %g", i, b->metric[i]);
        if (b->example[i] < -1 || b->example[i] >= (E > 0 ? E : 1) + 0)
            bad |= fuzz_fail("spec", "example[%zu] = %d (examples %d)", i, b->example[i], E);
        if (b->metric[i] == 1 && b->example[i] < 0) bad |= fuzz_fail("spec", "metric slot %zu has example -1", i);
        if (b->tok && (b->tok[i] < 0 || b->tok[i] >= V)) bad |= fuzz_fail("spec", "tok[%zu] = %d (vocab %d)", i, b->tok[i], V);
        if (b->ycls && (b->ycls[i] < -1 || b->ycls[i] >= V))
            bad |= fuzz_fail("spec", "ycls[%zu] = %d (vocab %d)", i, b->ycls[i], V);
    }
    for (size_t i = 0; b->x && i < BT * (size_t)d && !bad; i++)
        if (!isfinite(b->x[i])) bad |= fuzz_fail("spec", "x[%zu] = %g", i, b->x[i]);
    for (size_t i = 0; b->y && i < BT * (size_t)O && !bad; i++)
        if (!isfinite(b->y[i])) bad |= fuzz_fail("spec", "y[%zu] = %g", i, b->y[i]);
    if (bad) return bad;
    /* every metric the task offers, on zero predictions */
    float *pred = calloc(BT * (size_t)O + 1, sizeof *pred), *score = calloc(BT + 1, sizeof *score);
    task_metric_kind kinds[4];
    int nk = task_metric_kinds(t, kinds);
    if (nk < 1 || nk > 4) bad |= fuzz_fail("spec", "task_metric_kinds = %d", nk);
    for (int k = 0; pred && score && k < nk && k < 4 && !bad; k++) {
        icl_status st = task_score(t, kinds[k], b, pred, score);
        if (st != ICL_OK) bad |= fuzz_fail("spec", "task_score(kind %d) of its own metric fails: %s", kinds[k], icl_error());
        for (size_t i = 0; i < BT && !bad; i++)
            if (!isfinite(score[i]))
                bad |= fuzz_fail("spec", "score[%zu] = %g (metric %d, norm %g)", i, score[i], kinds[k], task_metric_norm(t));
    }
    free(pred);
    free(score);
    return bad;
}

static int sp_sample(const task *t, uint64_t seed, uint64_t stream0) {
    size_t T = (size_t)task_T_max(t), w = (size_t)task_d(t) + (size_t)task_out(t) + 6;
    if (2 * T * w > SP_MAX_SAMPLE) return 0;
    const task_spec *s = task_get_spec(t);
    if (s->kind == TASK_DECISION_TREE && s->depth > 12) return 0; /* 2^depth nodes per prompt */
    batch b;
    icl_status st = task_batch_alloc(&b, t, 2);
    if (st != ICL_OK) return sp_failed("task_batch_alloc", st);
    int bad = 0;
    st = task_sample(t, &b, 2, seed, stream0 & ((1ull << 61) - 1));
    if (st != ICL_OK) bad |= fuzz_fail("spec", "task_sample of a valid task fails: %s", icl_error());
    else bad |= sp_check_batch(t, &b, 2);
    task_batch_free(&b);
    return bad;
}

static int sp_task_use(const task_spec *s, fuzz_reader *r) {
    icl_status st = task_spec_validate(s);
    if (st != ICL_OK) return sp_failed("task_spec_validate", st);
    task *t = NULL;
    st = s->kind == TASK_CUSTOM ? task_create_custom(&t, s, sp_fill, NULL) : task_create(&t, s);
    /* the memory budget (SP_BUDGET) may refuse a spec that validates, with a message */
    if (st == ICL_ERR_NOMEM) return sp_failed("task_create", st);
    if (st != ICL_OK) return fuzz_fail("spec", "task %s validates but task_create fails: %s", s->name, icl_error());
    int bad = 0;
    int T = task_T(t), Tm = task_T_max(t);
    if (T < 1 || T > Tm) bad |= fuzz_fail("spec", "task %s: T = %d, T_max = %d", s->name, T, Tm);
    if (task_out(t) < 1 || task_d(t) < 0) bad |= fuzz_fail("spec", "task %s: O = %d, d = %d", s->name, task_out(t), task_d(t));
    if (!isfinite(task_metric_norm(t)) || task_metric_norm(t) <= 0)
        bad |= fuzz_fail("spec", "task %s: metric norm %g", s->name, task_metric_norm(t));
    char small[8], big[1024];
    int n1 = task_describe(t, small, sizeof small), n2 = task_describe(t, big, sizeof big);
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "fuzz spec: task %s\n", big); /* triage */
    if (n1 != n2 || (n2 < (int)sizeof big && (int)strlen(big) != n2) || strlen(small) >= sizeof small ||
        strncmp(small, big, sizeof small - 1))
        bad |= fuzz_fail("spec", "task_describe is not snprintf-like: %d / %d", n1, n2);
    uint64_t seed = fuzz_u64(r), stream0 = fuzz_u64(r);
    bad |= sp_sample(t, seed, stream0);
    /* the curriculum after a jump (and one step) */
    long long steps = (long long)(fuzz_u64(r) >> 2); /* up to 2^62, as a trainer checkpoint allows */
    task_curriculum_seek(t, steps);
    task_curriculum_step(t);
    int dc = task_cur_dims(t), nc = task_cur_points(t);
    T = task_T(t);
    if (dc < 0 || (s->kind != TASK_TOKEN_MQAR && (dc < 1 || dc > s->n_dims)))
        bad |= fuzz_fail("spec", "task %s after %lld steps: d_cur = %d (n_dims %d)", s->name, steps, dc, s->n_dims);
    if (nc < 1 || T < 1 || T > Tm)
        bad |= fuzz_fail("spec", "task %s after %lld steps: n_cur = %d, T = %d, T_max = %d", s->name, steps, nc, T, Tm);
    if (!bad) bad |= sp_sample(t, seed + 1, stream0);
    task_free(t);
    return bad | sp_task_roundtrip(s);
}

/* Mode 0, first reader: walk the object, set every number (bools as 0/1). */
static int sp_task_json(const char *text, size_t len, fuzz_reader *r) {
    json_doc *doc = NULL;
    icl_status st = json_parse(text, len, &doc);
    if (st != ICL_OK) return sp_failed("json_parse", st);
    const json_value *root = json_root(doc);
    const char *name = json_as_string(json_get(root, "name"));
    task_spec s;
    task_spec_default(&s, name ? name : "linear_regression");
    int bad = 0;
    for (size_t i = 0; i < json_len(root) && !st; i++) {
        const char *key = json_key_at(root, i);
        const json_value *v = json_at(root, i);
        if (!key || !strcmp(key, "name")) continue;
        double x;
        if (v->type == JSON_BOOL) x = v->boolean;
        else if (json_as_double(v, &x) != ICL_OK) continue;
        st = task_spec_set(&s, key, x);
        bad |= sp_failed("task_spec_set", st);
    }
    json_free(doc);
    if (!st) bad |= sp_task_use(&s, r);
    return bad;
}

/* Mode 0, second reader: the trainer checkpoint loader. */
static int sp_task_meta(const char *text, size_t len) {
    st_file *f = sp_meta_file(text, len);
    if (!f) return 0;
    trainer_meta meta;
    icl_status st = trainer_io_read_meta(f, SP_LABEL, &meta);
    int bad = sp_failed("trainer_io_read_meta", st);
    if (st == ICL_ERR_FORMAT && !strstr(icl_error(), SP_LABEL))
        bad |= fuzz_fail("spec", "trainer_io_read_meta: the message does not name the file: %s", icl_error());
    if (st == ICL_OK) {
        if (meta.step != 3 || meta.seed != 7 || meta.batch != 2) bad |= fuzz_fail("spec", "trainer metadata misread");
        task *t = NULL;
        st = task_create(&t, &meta.task);
        bad |= sp_failed("task_create", st);
        if (st == ICL_OK) {
            if (trainer_io_check_task(t, &meta, SP_LABEL) != ICL_OK)
                bad |= fuzz_fail("spec", "trainer_io_check_task rejects the task built from the metadata: %s",
                                 icl_error());
            task_free(t);
        }
    }
    st_close(f);
    return bad;
}

/* Mode 2: a task name, then settings. */
static int sp_task_kv(fuzz_reader *r) {
    sp_init_task_keys();
    int n = 0;
    const char *const *names = task_names(&n);
    uint8_t pick = fuzz_u8(r);
    char odd[TASK_NAME_MAX + 16];
    const char *name;
    if (pick % (n + 3) < n) name = names[pick % (n + 3)];
    else if (pick % (n + 3) == n) name = "custom";
    else if (pick % (n + 3) == n + 1) name = "";
    else {
        size_t k = 0;
        while (k < sizeof odd - 1 && fuzz_left(r)) {
            uint8_t c = fuzz_u8(r);
            if (c == 0) break;
            odd[k++] = (char)c;
        }
        odd[k] = 0;
        name = odd;
    }
    task_spec s;
    task_spec_default(&s, name);
    int bad = 0;
    for (int i = 0; i < SP_MAX_RECORDS && fuzz_left(r); i++) {
        uint8_t op = fuzz_u8(r);
        if (op == 0xff) break; /* end of settings, the rest feeds sampling */
        const char *key = sp_task_keys[op % sp_n_task_keys];
        double v = sp_value(r);
        task_spec before = s;
        icl_status st = task_spec_set(&s, key, v);
        if (st != ICL_OK) {
            bad |= sp_failed("task_spec_set", st);
            if (memcmp(&before, &s, sizeof s)) bad |= fuzz_fail("spec", "a failed task_spec_set(%s, %g) changed the spec", key, v);
            return bad;
        }
        double back = NAN;
        if (task_spec_get(&s, key, &back) != ICL_OK || !(back == v))
            bad |= fuzz_fail("spec", "task %s: set %s = %.17g reads back %.17g", s.name, key, v, back);
    }
    return bad | sp_task_use(&s, r);
}

/* ---- model specs --------------------------------------------------------------- */

static int sp_model_use(const model_spec *s) {
    icl_status st = model_spec_validate(s);
    if (st != ICL_OK) return sp_failed("model_spec_validate", st);
    int bad = 0;
    char js[SP_JSON_MAX], js2[SP_JSON_MAX];
    int n = model_spec_to_json(s, js, sizeof js);
    if (n < 0 || n >= (int)sizeof js) return fuzz_fail("spec", "model_spec_to_json needs %d bytes", n);
    if ((int)strlen(js) != n) bad |= fuzz_fail("spec", "model_spec_to_json returned %d, wrote %zu", n, strlen(js));
    char tiny[16];
    if (model_spec_to_json(s, tiny, sizeof tiny) != n || strncmp(tiny, js, sizeof tiny - 1))
        bad |= fuzz_fail("spec", "model_spec_to_json is not snprintf-like on a short buffer");
    model_spec back;
    st = model_spec_from_json(&back, js);
    if (st != ICL_OK) return bad | fuzz_fail("spec", "a valid model spec does not load back: %s\n  json: %s", icl_error(), js);
    model_spec_to_json(&back, js2, sizeof js2);
    if (strcmp(js, js2)) bad |= fuzz_fail("spec", "model spec round trip differs:\n  %s\n  %s", js, js2);
    size_t np = model_param_count(s);
    (void)model_activation_bytes(s, 2, 16);
    model *m = NULL;
    st = model_create(&m, s);
    if (st != ICL_OK) {
        bad |= sp_failed("model_create", st);
    } else {
        if (m->n_params != np)
            bad |= fuzz_fail("spec", "model_param_count says %zu, model_create made %zu", np, m->n_params);
        size_t sum = 0;
        for (int i = 0; i <= m->spec.n_blocks; i++) sum += model_block_params(m, i);
        if (sum != m->n_params) bad |= fuzz_fail("spec", "block parameter counts sum to %zu of %zu", sum, m->n_params);
        model_free(m);
    }
    return bad;
}

/* Mode 1. */
static int sp_model_json(const char *text) {
    model_spec s;
    icl_status st = model_spec_from_json(&s, text);
    if (st != ICL_OK) return sp_failed("model_spec_from_json", st);
    return sp_model_use(&s);
}

/* Mode 3: an architecture, then settings or block lists. */
static int sp_model_kv(fuzz_reader *r) {
    static const char *const keys[] = {"n_dims", "n_out",       "vocab",   "d_model", "n_layer", "n_head",
                                       "d_state", "d_conv",     "expand",  "dt_rank", "n_positions",
                                       "pos_std", "init",       "seed",    "blocks",  "arch"};
    int na = 0;
    const char *const *archs = model_arch_names(&na);
    uint8_t pick = fuzz_u8(r);
    const char *arch = pick % (na + 1) < na ? archs[pick % (na + 1)] : "perceptron";
    model_spec s;
    icl_status st = model_spec_default(&s, arch);
    if (st != ICL_OK) return sp_failed("model_spec_default", st);
    int bad = 0;
    for (int i = 0; i < SP_MAX_RECORDS && fuzz_left(r); i++) {
        uint8_t op = fuzz_u8(r);
        const char *key = keys[op % (sizeof keys / sizeof *keys)];
        if (!strcmp(key, "blocks")) {
            block_kind kinds[MODEL_MAX_BLOCKS + 2];
            int nb = fuzz_u8(r) % (MODEL_MAX_BLOCKS + 2);
            for (int k = 0; k < nb; k++) {
                uint8_t c = fuzz_u8(r);
                kinds[k] = (block_kind)(c < 0xf0 ? c % BLOCK_KIND_COUNT : (int)c - 0xf4); /* a few out of range */
            }
            st = model_spec_set_blocks(&s, kinds, nb);
        } else {
            st = model_spec_set(&s, key, sp_value(r));
        }
        if (st != ICL_OK) return bad | sp_failed(key, st);
    }
    return bad | sp_model_use(&s);
}

/* ---- entry ------------------------------------------------------------------------ */

int fuzz_spec_one(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    icl_budget_set(SP_BUDGET);
    uint8_t mode = data[0] % 4;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    fuzz_reader r = {data + 1, size - 1, 0};
    switch (mode) {
    case 0: {
        /* text up to a NUL; what follows feeds sampling choices */
        size_t tl = strnlen(text, len);
        char *z = malloc(tl + 1);
        if (!z) return 0;
        memcpy(z, text, tl);
        z[tl] = 0;
        fuzz_reader rest = {data + 1 + tl, tl < len ? len - tl : 0, 0};
        int bad = sp_task_json(z, tl, &rest) | sp_task_meta(z, tl);
        free(z);
        return bad;
    }
    case 1: {
        char *z = malloc(len + 1);
        if (!z) return 0;
        memcpy(z, text, len);
        z[len] = 0;
        int bad = sp_model_json(z);
        free(z);
        return bad;
    }
    case 2: return sp_task_kv(&r);
    default: return sp_model_kv(&r);
    }
}

#ifdef FUZZ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fuzz_spec_one(data, size)) abort();
    return 0;
}
#endif
