/*
 * checkpoint.c - model and optimiser state to and from safetensors files
 * (see checkpoint.h for the names and metadata).
 */
#include "nn/checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"

static void fill_tensor(st_tensor *t, const char *name, const param_tensor *p, const float *data) {
    t->name = name;
    t->ndim = p->ndim;
    for (int i = 0; i < p->ndim; i++) t->shape[i] = p->shape[i];
    t->data = data;
}

icl_status checkpoint_save(const char *path, const model *m, const optim *o, const char *const *keys,
                           const char *const *vals, size_t n_extra) {
    const int nt = m->n_tensors, with_opt = o != NULL;
    const size_t n_t = (size_t)nt * (with_opt ? 3 : 1);
    st_tensor *ts = calloc(n_t, sizeof *ts);
    char(*names)[64] = calloc(n_t, sizeof *names);
    const size_t n_meta = 4 + n_extra;
    const char **mk = calloc(n_meta, sizeof *mk), **mv = calloc(n_meta, sizeof *mv);
    char spec[4096], nparams[32], opt[512];
    if (!ts || !names || !mk || !mv) {
        free(ts); free(names); free(mk); free(mv);
        return icl_fail(ICL_ERR_NOMEM, "save %s: out of memory", path);
    }
    if (with_opt && o->n != m->n_params) {
        free(ts); free(names); free(mk); free(mv);
        return icl_fail(ICL_ERR_ARG, "save %s: optimizer has %zu moments, model %zu parameters", path, o->n,
                        m->n_params);
    }
    for (int i = 0; i < nt; i++) {
        const param_tensor *p = &m->table[i];
        snprintf(names[i], sizeof names[i], "%s", p->name);
        fill_tensor(&ts[i], names[i], p, m->params + p->offset);
        if (with_opt) {
            snprintf(names[nt + i], sizeof names[0], "optim.m.%s", p->name);
            fill_tensor(&ts[nt + i], names[nt + i], p, o->m + p->offset);
            snprintf(names[2 * nt + i], sizeof names[0], "optim.v.%s", p->name);
            fill_tensor(&ts[2 * nt + i], names[2 * nt + i], p, o->v + p->offset);
        }
    }
    model_spec_to_json(&m->spec, spec, sizeof spec);
    snprintf(nparams, sizeof nparams, "%zu", m->n_params);
    size_t k = 0;
    mk[k] = "format"; mv[k++] = CHECKPOINT_FORMAT;
    mk[k] = "model_spec"; mv[k++] = spec;
    mk[k] = "n_params"; mv[k++] = nparams;
    if (with_opt) {
        const optim_config *c = &o->cfg;
        /* %.9g round-trips a float exactly */
        snprintf(opt, sizeof opt,
                 "{\"lr\":%.9g,\"beta1\":%.9g,\"beta2\":%.9g,\"eps\":%.9g,\"weight_decay\":%.9g,\"decoupled\":%d,"
                 "\"clip\":%.9g,\"schedule\":%d,\"warmup\":%ld,\"total\":%ld,\"min_lr\":%.9g,\"t\":%ld}",
                 (double)c->lr, (double)c->beta1, (double)c->beta2, (double)c->eps, (double)c->weight_decay,
                 c->decoupled, (double)c->clip, (int)c->schedule, c->warmup, c->total, (double)c->min_lr, o->t);
        mk[k] = "optim"; mv[k++] = opt;
    }
    for (size_t i = 0; i < n_extra; i++) { mk[k] = keys[i]; mv[k++] = vals[i]; }
    icl_status st = st_write(path, ts, n_t, mk, mv, k);
    free(ts); free(names); free(mk); free(mv);
    return st;
}

icl_status checkpoint_open(const char *path, st_file **f) {
    icl_status st = st_open(path, f);
    if (st) return st;
    const char *fmt = st_meta(*f, "format");
    if (!fmt || strcmp(fmt, CHECKPOINT_FORMAT)) {
        /* the message reads fmt, which lives in the file: close after it */
        st = icl_fail(ICL_ERR_FORMAT, "%s: not an iclplay checkpoint (metadata \"format\" is %s%s%s, want \"%s\")",
                      path, fmt ? "\"" : "", fmt ? fmt : "missing", fmt ? "\"" : "", CHECKPOINT_FORMAT);
        st_close(*f);
        *f = NULL;
        return st;
    }
    return ICL_OK;
}

/* Check that entry e exists and has p's shape. */
static icl_status check_entry(const st_entry *e, const param_tensor *p, const char *label, const char *name) {
    if (!e) return icl_fail(ICL_ERR_FORMAT, "%s: tensor %s is missing", label, name);
    int same = e->ndim == p->ndim;
    for (int i = 0; same && i < p->ndim; i++) same = e->shape[i] == p->shape[i];
    if (!same) {
        char want[64], got[64];
        int k = snprintf(want, sizeof want, "(");
        for (int i = 0; i < p->ndim; i++) k += snprintf(want + k, sizeof want - k, "%s%d", i ? ", " : "", p->shape[i]);
        snprintf(want + k, sizeof want - k, ")");
        k = snprintf(got, sizeof got, "(");
        for (int i = 0; i < e->ndim && k < 50; i++)
            k += snprintf(got + k, sizeof got - k, "%s%lld", i ? ", " : "", (long long)e->shape[i]);
        snprintf(got + k, sizeof got - k, ")");
        return icl_fail(ICL_ERR_FORMAT, "%s: tensor %s has shape %s, the model spec needs %s", label, name, got, want);
    }
    return ICL_OK;
}

icl_status checkpoint_read_model(const st_file *f, const char *label, model **out) {
    *out = NULL;
    const char *js = st_meta(f, "model_spec");
    if (!js) return icl_fail(ICL_ERR_FORMAT, "%s: metadata has no model_spec", label);
    model_spec spec;
    icl_status st = model_spec_from_json(&spec, js);
    if (st) return icl_fail(ICL_ERR_FORMAT, "%s: %s", label, icl_error());
    const char *np = st_meta(f, "n_params");
    if (!np || strtoull(np, NULL, 10) != model_param_count(&spec))
        return icl_fail(ICL_ERR_FORMAT, "%s: n_params is %s but the model spec gives %zu", label, np ? np : "missing",
                        model_param_count(&spec));
    model *m = NULL;
    st = model_create(&m, &spec);
    if (st) return st;
    for (int i = 0; i < m->n_tensors; i++) {
        const param_tensor *p = &m->table[i];
        const st_entry *e = st_find(f, p->name);
        if ((st = check_entry(e, p, label, p->name))) { model_free(m); return st; }
        memcpy(m->params + p->offset, e->data, sizeof(float) * p->numel);
    }
    /* every tensor in the file must be a parameter or an optimiser moment */
    for (size_t i = 0; i < st_count(f); i++) {
        const char *name = st_entry_at(f, i)->name;
        const char *base = !strncmp(name, "optim.m.", 8) || !strncmp(name, "optim.v.", 8) ? name + 8 : name;
        if (!model_find_tensor(m, base)) {
            model_free(m);
            return icl_fail(ICL_ERR_FORMAT, "%s: unknown tensor %s (not a parameter of this %s model)", label, name,
                            spec.arch);
        }
    }
    *out = m;
    return ICL_OK;
}

icl_status checkpoint_read_optim(const st_file *f, const char *label, const model *m, optim *o) {
    const char *js = st_meta(f, "optim");
    if (!js) return icl_fail(ICL_ERR_FORMAT, "%s: holds no optimizer state (saved weights only)", label);
    if (o->n != m->n_params)
        return icl_fail(ICL_ERR_ARG, "%s: optimizer sized for %zu parameters, model has %zu", label, o->n,
                        m->n_params);
    json_doc *doc = NULL;
    icl_status st = json_parse(js, strlen(js), &doc);
    if (st) return icl_fail(ICL_ERR_FORMAT, "%s: optim metadata: %s", label, icl_error());
    const json_value *r = json_root(doc);
    optim_config c;
    optim_config_default(&c);
    struct { const char *k; float *f; } fl[] = {{"lr", &c.lr}, {"beta1", &c.beta1}, {"beta2", &c.beta2},
                                                {"eps", &c.eps}, {"weight_decay", &c.weight_decay},
                                                {"clip", &c.clip}, {"min_lr", &c.min_lr}};
    for (size_t i = 0; !st && i < sizeof fl / sizeof *fl; i++) {
        double v;
        if ((st = json_as_double(json_get(r, fl[i].k), &v))) st = icl_fail(ICL_ERR_FORMAT, "%s: optim.%s missing or not a number", label, fl[i].k);
        else *fl[i].f = (float)v;
    }
    int64_t dec = 0, sch = 0, wu = 0, tot = 0, t = 0;
    if (!st && (json_as_int64(json_get(r, "decoupled"), 0, 1, &dec) || json_as_int64(json_get(r, "schedule"), 0, 2, &sch) ||
                json_as_int64(json_get(r, "warmup"), 0, INT64_MAX, &wu) ||
                json_as_int64(json_get(r, "total"), 0, INT64_MAX, &tot) || json_as_int64(json_get(r, "t"), 0, INT64_MAX, &t)))
        st = icl_fail(ICL_ERR_FORMAT, "%s: optim metadata: %s", label, icl_error());
    json_free(doc);
    if (st) return st;
    c.decoupled = (int)dec;
    c.schedule = (lr_schedule)sch;
    c.warmup = (long)wu;
    c.total = (long)tot;
    if ((st = optim_config_validate(&c))) return icl_fail(ICL_ERR_FORMAT, "%s: %s", label, icl_error());
    char name[64];
    for (int i = 0; i < m->n_tensors; i++) {
        const param_tensor *p = &m->table[i];
        snprintf(name, sizeof name, "optim.m.%s", p->name);
        const st_entry *em = st_find(f, name);
        if ((st = check_entry(em, p, label, name))) return st;
        snprintf(name, sizeof name, "optim.v.%s", p->name);
        const st_entry *ev = st_find(f, name);
        if ((st = check_entry(ev, p, label, name))) return st;
    }
    /* all checks passed: only now overwrite the optimiser */
    for (int i = 0; i < m->n_tensors; i++) {
        const param_tensor *p = &m->table[i];
        snprintf(name, sizeof name, "optim.m.%s", p->name);
        memcpy(o->m + p->offset, st_find(f, name)->data, sizeof(float) * p->numel);
        snprintf(name, sizeof name, "optim.v.%s", p->name);
        memcpy(o->v + p->offset, st_find(f, name)->data, sizeof(float) * p->numel);
    }
    o->cfg = c;
    o->t = (long)t;
    return ICL_OK;
}
