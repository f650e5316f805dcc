/*
 * lua_model.c - icl.model{...}, icl.load(path) and the model methods: fields
 * of the spec, parameter and gradient views, forward on a sampled batch, the
 * probes of the last forward (attention maps, SSM states, Delta/B/C), init,
 * save and close.
 *
 * Ownership: the userdata owns the C model (freed by __gc or m:close()); it
 * is created empty (m = NULL) before model_create runs, so an error at any
 * point leaves nothing unowned. User value 1 holds the input of the last
 * m:forward (the core keeps a pointer to it for a later backward). Views
 * returned by m:param / m:grad hold the userdata alive and raise once the
 * model is closed (lua_tensor.c). Probes and forward outputs are copies.
 * Every model userdata is also a key of a weak registry table, so the TUI
 * can count the models with unsaved training before quitting
 * (lbind_count_dirty_models).
 *
 * Layer numbers of the probes count blocks of one kind, 1-based: attention
 * layer 2 is the second attn block, Mamba layer 1 the first mamba block.
 * What it is not: training (lua_trainer.c) or evaluation (lua_eval.c).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "lua/lbind.h"
#include "nn/checkpoint.h"

/* ---- the userdata ----------------------------------------------------------- */

#define MODELS_KEY "icl.models" /* registry: weak-keyed set of every model userdata */

lbind_model *lbind_push_model(lua_State *L, model *m) {
    luaL_checkstack(L, 5, "lbind_push_model");
    lbind_model *lm = lua_newuserdatauv(L, sizeof *lm, 1);
    lm->m = m;
    lm->dirty = 0;
    lm->busy = 0;
    luaL_setmetatable(L, LBIND_MODEL_MT);
    /* remember it weakly, so the TUI can find unsaved models before quitting */
    if (lua_getfield(L, LUA_REGISTRYINDEX, MODELS_KEY) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_createtable(L, 0, 1);
        lua_pushliteral(L, "k");
        lua_setfield(L, -2, "__mode");
        lua_setmetatable(L, -2);
        lua_pushvalue(L, -1);
        lua_setfield(L, LUA_REGISTRYINDEX, MODELS_KEY);
    }
    lua_pushvalue(L, -2);
    lua_pushboolean(L, 1);
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return lm;
}

int lbind_each_dirty_model(lua_State *L, int (*fn)(lbind_model *lm, void *ud), void *ud) {
    int n = 0;
    luaL_checkstack(L, 4, "lbind_each_dirty_model");
    if (lua_getfield(L, LUA_REGISTRYINDEX, MODELS_KEY) == LUA_TTABLE) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            lua_pop(L, 1);
            lbind_model *lm = luaL_testudata(L, -1, LBIND_MODEL_MT);
            if (lm && lm->m && lm->dirty) {
                n++;
                if (fn && fn(lm, ud)) {
                    lua_pop(L, 1); /* the key */
                    break;
                }
            }
        }
    }
    lua_pop(L, 1);
    return n;
}

int lbind_count_dirty_models(lua_State *L) { return lbind_each_dirty_model(L, NULL, NULL); }

lbind_model *lbind_checkmodel(lua_State *L, int idx) {
    lbind_model *lm = luaL_checkudata(L, idx, LBIND_MODEL_MT);
    if (!lm->m) luaL_argerror(L, idx, "model was closed");
    return lm;
}

int lbind_fail(lua_State *L, const char *where) { return luaL_error(L, "%s: %s", where, icl_error()); }

/* The core's messages start with "model: " or "model <arch>: "; the Lua
 * message already names icl.model, so drop the word "model". */
static int fail_spec(lua_State *L, const char *where) {
    const char *e = icl_error();
    if (!strncmp(e, "model: ", 7)) e += 7;
    else if (!strncmp(e, "model ", 6)) e += 6;
    return luaL_error(L, "%s: %s", where, e);
}

/* ---- icl.model{...} ------------------------------------------------------------ */

static int is_integral(lua_State *L, int idx, lua_Integer *out) {
    int ok = 0;
    *out = lua_tointegerx(L, idx, &ok);
    return ok && lua_type(L, idx) == LUA_TNUMBER;
}

/* blocks = { "mamba", "attn", ... } into kinds; returns the count. */
static int read_blocks(lua_State *L, int idx, block_kind *kinds) {
    if (!lua_istable(L, idx))
        return luaL_error(L, "icl.model: blocks must be a list of block names (got %s)", luaL_typename(L, idx));
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    if (n < 1 || n > MODEL_MAX_BLOCKS)
        return luaL_error(L, "icl.model: blocks must list 1 to %d blocks (got %d)", MODEL_MAX_BLOCKS, (int)n);
    for (int i = 0; i < (int)n; i++) {
        lua_rawgeti(L, idx, i + 1);
        const char *nm = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int k = nm ? block_kind_from_name(nm) : -1;
        if (k < 0)
            return luaL_error(L, "icl.model: blocks[%d] must be one of attn, mlp, mamba, s4mamba (got %s)", i + 1,
                              luaL_tolstring(L, -1, NULL));
        kinds[i] = (block_kind)k;
        lua_pop(L, 1);
    }
    return (int)n;
}

static int l_model_new(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    /* the architecture first: it sets the defaults every other key changes */
    lua_getfield(L, 1, "arch");
    lua_rawgeti(L, 1, 1);
    if (!lua_isnil(L, -1) && !lua_isnil(L, -2) && !lua_rawequal(L, -1, -2))
        return luaL_error(L, "icl.model: give the architecture once (arch = or the first element)");
    if (lua_isnil(L, -2)) lua_replace(L, -2);
    else lua_pop(L, 1);
    lua_getfield(L, 1, "blocks");
    int has_blocks = !lua_isnil(L, -1);
    lua_pop(L, 1);
    const char *arch = NULL;
    if (lua_isnil(L, -1)) {
        if (!has_blocks)
            return luaL_error(L, "icl.model: arch is required (transformer, mamba, s4mamba, hybrid, mambaformer, or "
                                 "custom with blocks = {...})");
        arch = "custom";
    } else if (lua_type(L, -1) != LUA_TSTRING) {
        return luaL_error(L, "icl.model: arch must be a string (got %s)", luaL_typename(L, -1));
    } else {
        arch = lua_tostring(L, -1);
    }
    model_spec s;
    if (model_spec_default(&s, arch)) return luaL_error(L, "icl.model: %s", icl_error());
    lua_pop(L, 1);

    /* every other key, checked by the core (which names it and its range) */
    int set_dims = 0, set_out = 0, set_vocab = 0, set_pos = 0;
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            lua_Integer i;
            if (is_integral(L, -2, &i) && i == 1) { lua_pop(L, 1); continue; }
            return luaL_error(L, "icl.model: unexpected positional value %s (give fields as key = value)",
                              luaL_tolstring(L, -2, NULL));
        }
        const char *k = lua_tostring(L, -2);
        if (!strcmp(k, "arch") || !strcmp(k, "task") || !strcmp(k, "blocks")) { lua_pop(L, 1); continue; }
        double v;
        if (!strcmp(k, "init") && lua_type(L, -1) == LUA_TSTRING) {
            const char *f = lua_tostring(L, -1);
            if (!strcmp(f, "gpt2")) v = INIT_GPT2;
            else if (!strcmp(f, "mixer")) v = INIT_MIXER;
            else return luaL_error(L, "icl.model: init must be \"gpt2\" or \"mixer\" (got \"%s\")", f);
        } else if (lua_type(L, -1) == LUA_TNUMBER) {
            v = lua_tonumber(L, -1);
        } else {
            /* an unknown key is reported as unknown before its type */
            model_spec probe = s;
            if (model_spec_set(&probe, k, 0) && strstr(icl_error(), "unknown field")) return fail_spec(L, "icl.model");
            return luaL_error(L, "icl.model: %s must be a number (got %s)", k, luaL_typename(L, -1));
        }
        if (model_spec_set(&s, k, v)) return fail_spec(L, "icl.model");
        set_dims |= !strcmp(k, "n_dims");
        set_out |= !strcmp(k, "n_out");
        set_vocab |= !strcmp(k, "vocab");
        set_pos |= !strcmp(k, "n_positions");
        lua_pop(L, 1);
    }

    /* blocks: the list of a custom model, or a check of a named one */
    lua_getfield(L, 1, "blocks");
    if (has_blocks) {
        block_kind kinds[MODEL_MAX_BLOCKS];
        int n = read_blocks(L, lua_gettop(L), kinds);
        if (!strcmp(s.arch, "custom")) {
            if (model_spec_set_blocks(&s, kinds, n)) return fail_spec(L, "icl.model");
        } else {
            int same = n == s.n_blocks;
            for (int i = 0; same && i < n; i++) same = kinds[i] == s.blocks[i];
            if (!same)
                return luaL_error(L, "icl.model: blocks does not match arch '%s' with n_layer %d (use arch = "
                                     "\"custom\" for your own list)",
                                  s.arch, s.n_layer);
        }
    } else if (!strcmp(s.arch, "custom")) {
        return luaL_error(L, "icl.model: arch \"custom\" needs blocks = { \"mamba\", \"attn\", ... }");
    }
    lua_pop(L, 1);

    /* task = t: the input width, output width, vocabulary and positions */
    lua_getfield(L, 1, "task");
    if (!lua_isnil(L, -1)) {
        lbind_task *lt = luaL_testudata(L, -1, LBIND_TASK_MT);
        if (!lt) return luaL_error(L, "icl.model: task must be an icl.task (got %s)", luaL_typename(L, -1));
        if (!lt->t) return luaL_error(L, "icl.model: task was closed");
        const task *t = lt->t;
        int d = task_d(t), O = task_out(t), V = task_vocab(t), Tm = task_T_max(t);
        if (V > 0) {
            if (set_vocab && s.vocab != V)
                return luaL_error(L, "icl.model: vocab = %d but the task has a vocabulary of %d", s.vocab, V);
            s.vocab = V;
        } else {
            if (set_vocab && s.vocab != 0)
                return luaL_error(L, "icl.model: vocab = %d but the task has continuous tokens (vocab 0)", s.vocab);
            if (set_dims && s.n_dims != d)
                return luaL_error(L, "icl.model: n_dims = %d but the task's tokens have width %d", s.n_dims, d);
            s.n_dims = d;
        }
        if (set_out && s.n_out != O)
            return luaL_error(L, "icl.model: n_out = %d but the task predicts %d numbers per token", s.n_out, O);
        s.n_out = O;
        if (s.n_positions > 0 && s.n_positions < Tm) {
            if (set_pos)
                return luaL_error(L, "icl.model: n_positions = %d is fewer than the task's longest prompt (%d tokens)",
                                  s.n_positions, Tm);
            s.n_positions = Tm;
        }
    }
    lua_pop(L, 1);

    if (model_spec_validate(&s)) return fail_spec(L, "icl.model");
    lbind_model *lm = lbind_push_model(L, NULL);
    if (model_create(&lm->m, &s)) return fail_spec(L, "icl.model");
    return 1;
}

static int l_load(lua_State *L) {
    const char *path = luaL_checkstring(L, 1);
    lbind_model *lm = lbind_push_model(L, NULL);
    st_file *f = NULL;
    if (checkpoint_open(path, &f)) return lbind_fail(L, "icl.load");
    icl_status st = checkpoint_read_model(f, path, &lm->m);
    st_close(f);
    if (st) return lbind_fail(L, "icl.load");
    return 1;
}

/* ---- fields ------------------------------------------------------------------------ */

static void push_spec(lua_State *L, const model_spec *s) {
    lua_createtable(L, 0, 16);
    lua_pushstring(L, s->arch);
    lua_setfield(L, -2, "arch");
    struct { const char *k; int v; } f[] = {
        {"n_dims", s->n_dims}, {"n_out", s->n_out}, {"vocab", s->vocab}, {"d_model", s->d_model},
        {"n_layer", s->n_layer}, {"n_head", s->n_head}, {"d_state", s->d_state}, {"d_conv", s->d_conv},
        {"expand", s->expand}, {"dt_rank", s->dt_rank}, {"n_positions", s->n_positions}, {"init", (int)s->init},
    };
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        lua_pushinteger(L, f[i].v);
        lua_setfield(L, -2, f[i].k);
    }
    lua_pushnumber(L, s->pos_std);
    lua_setfield(L, -2, "pos_std");
    lua_pushinteger(L, (lua_Integer)s->seed);
    lua_setfield(L, -2, "seed");
    lua_createtable(L, s->n_blocks, 0);
    for (int i = 0; i < s->n_blocks; i++) {
        lua_pushstring(L, block_kind_name(s->blocks[i]));
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, -2, "blocks");
}

static const char *const model_fields[] = {"arch", "n_params", "d_model", "n_layer", "n_blocks", "n_dims", "n_out",
                                           "vocab", "n_head", "d_state", "expand", "n_positions", "spec", "dirty",
                                           NULL};

/* Push field k of m; 0 if k is not a field. */
static int push_field(lua_State *L, const lbind_model *lm, const char *k) {
    const model *m = lm->m;
    const model_spec *s = &m->spec;
    if (!strcmp(k, "arch")) lua_pushstring(L, s->arch);
    else if (!strcmp(k, "n_params")) lua_pushinteger(L, (lua_Integer)m->n_params);
    else if (!strcmp(k, "d_model")) lua_pushinteger(L, s->d_model);
    else if (!strcmp(k, "n_layer")) lua_pushinteger(L, s->n_layer);
    else if (!strcmp(k, "n_blocks")) lua_pushinteger(L, s->n_blocks);
    else if (!strcmp(k, "n_dims")) lua_pushinteger(L, s->n_dims);
    else if (!strcmp(k, "n_out")) lua_pushinteger(L, s->n_out);
    else if (!strcmp(k, "vocab")) lua_pushinteger(L, s->vocab);
    else if (!strcmp(k, "n_head")) lua_pushinteger(L, s->n_head);
    else if (!strcmp(k, "d_state")) lua_pushinteger(L, s->d_state);
    else if (!strcmp(k, "expand")) lua_pushinteger(L, s->expand);
    else if (!strcmp(k, "n_positions")) lua_pushinteger(L, s->n_positions);
    else if (!strcmp(k, "spec")) push_spec(L, s);
    else if (!strcmp(k, "dirty")) lua_pushboolean(L, lm->dirty);
    else return 0;
    return 1;
}

static int l_model_index(lua_State *L) {
    lbind_model *lm = luaL_checkudata(L, 1, LBIND_MODEL_MT);
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1)); /* methods work on closed models (they raise themselves) */
    if (!lua_isnil(L, -1) || lua_type(L, 2) != LUA_TSTRING) return 1;
    const char *k = lua_tostring(L, 2);
    for (int i = 0; model_fields[i]; i++) {
        if (strcmp(k, model_fields[i])) continue;
        if (!lm->m) return luaL_error(L, "icl.model: model was closed (reading m.%s)", k);
        push_field(L, lm, k);
        return 1;
    }
    return 1; /* nil */
}

static int l_model_newindex(lua_State *L) {
    return luaL_error(L, "icl.model: fields are read-only (m.%s = ...); build a new model or use m:param(name)",
                      luaL_tolstring(L, 2, NULL));
}

static int l_model_tostring(lua_State *L) {
    lbind_model *lm = luaL_checkudata(L, 1, LBIND_MODEL_MT);
    if (!lm->m) {
        lua_pushliteral(L, "icl.model (closed)");
        return 1;
    }
    const model *m = lm->m;
    const model_spec *s = &m->spec;
    char probe[1];
    size_t n = (size_t)model_describe(m, probe, sizeof probe); /* the length it needs */
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, n + 1);
    model_describe(m, p, n + 1);
    luaL_addsize(&b, n);
    char tail[256];
    snprintf(tail, sizeof tail, "\n  n_dims %d, n_out %d, vocab %d, n_head %d, d_state %d, d_conv %d, expand %d, "
                                "n_positions %d, seed %llu%s",
             s->n_dims, s->n_out, s->vocab, s->n_head, s->d_state, s->d_conv, s->expand, s->n_positions,
             (unsigned long long)s->seed, lm->dirty ? " (unsaved changes)" : "");
    luaL_addstring(&b, tail);
    luaL_pushresult(&b);
    return 1;
}

static int l_model_gc(lua_State *L) {
    lbind_model *lm = luaL_checkudata(L, 1, LBIND_MODEL_MT);
    model_free(lm->m); /* idempotent: m is NULL after the first call */
    lm->m = NULL;
    return 0;
}

static int l_model_close(lua_State *L) {
    lbind_model *lm = luaL_checkudata(L, 1, LBIND_MODEL_MT);
    if (lm->busy) return luaL_error(L, "m:close: the model is in use by a running step (close it afterwards)");
    model_free(lm->m);
    lm->m = NULL;
    lua_pushnil(L); /* drop the last input too */
    lua_setiuservalue(L, 1, 1);
    return 0;
}

/* ---- methods ------------------------------------------------------------------------ */

static int l_blocks(lua_State *L) {
    const model *m = lbind_checkmodel(L, 1)->m;
    int count[BLOCK_KIND_COUNT] = {0};
    lua_createtable(L, m->spec.n_blocks, 0);
    for (int i = 0; i < m->spec.n_blocks; i++) {
        block_kind k = m->spec.blocks[i];
        lua_createtable(L, 0, 4);
        lua_pushstring(L, block_kind_name(k));
        lua_setfield(L, -2, "kind");
        lua_pushinteger(L, (lua_Integer)model_block_params(m, i));
        lua_setfield(L, -2, "params");
        lua_pushinteger(L, i + 1);
        lua_setfield(L, -2, "index");
        lua_pushinteger(L, ++count[k]);
        lua_setfield(L, -2, "layer"); /* the probes' layer number of this block */
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int l_param_names(lua_State *L) {
    const model *m = lbind_checkmodel(L, 1)->m;
    lua_createtable(L, m->n_tensors, 0);
    for (int i = 0; i < m->n_tensors; i++) {
        lua_pushstring(L, m->table[i].name);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

static int push_param_view(lua_State *L, int grads, const char *where) {
    const model *m = lbind_checkmodel(L, 1)->m;
    const char *name = luaL_checkstring(L, 2);
    const param_tensor *p = model_find_tensor(m, name);
    if (!p) return luaL_error(L, "%s: no parameter named '%s' (see m:param_names())", where, name);
    float *base = grads ? m->grads : m->params;
    lbind_push_tensor_view(L, 1, base + p->offset, p->ndim, p->shape);
    return 1;
}

static int l_param(lua_State *L) { return push_param_view(L, 0, "m:param"); }
static int l_grad(lua_State *L) { return push_param_view(L, 1, "m:grad"); }

static int l_grad_norms(lua_State *L) {
    const model *m = lbind_checkmodel(L, 1)->m;
    double norms[MODEL_MAX_BLOCKS + 1];
    model_grad_norms(m, norms);
    lua_createtable(L, m->spec.n_blocks + 1, 0);
    for (int i = 0; i <= m->spec.n_blocks; i++) {
        lua_pushnumber(L, norms[i]);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* Input of m:forward: a batch table (x or tok) or a tensor. Leaves the input
 * tensor (or the int buffer of token ids) on top, as the user value. */
static int l_forward(lua_State *L) {
    lbind_model *lm = lbind_checkmodel(L, 1);
    model *m = lm->m;
    const model_spec *s = &m->spec;
    int vocab = s->vocab > 0;
    /* a custom task's fill may run while a trainer or evaluation holds the
     * model mid-step: a forward here could move the activations under it */
    if (lm->busy)
        return luaL_error(L, "m:forward: the model is in use by a running step (called from a task's fill?)");
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, vocab ? "tok" : "x");
        if (lua_isnil(L, -1))
            return luaL_error(L,
                              "m:forward: the batch has no %s (this model reads %s; pass t:sample(n) of a matching "
                              "task)",
                              vocab ? "tok" : "x", vocab ? "token ids" : "continuous tokens");
    } else if (luaL_testudata(L, 2, LBIND_TENSOR_MT)) {
        lua_pushvalue(L, 2);
    } else {
        return luaL_error(L, "m:forward: expects a batch from t:sample() or a tensor (got %s)", luaL_typename(L, 2));
    }
    int in = lua_gettop(L);
    if (!luaL_testudata(L, in, LBIND_TENSOR_MT))
        return luaL_error(L, "m:forward: batch.%s must be a tensor (got %s)", vocab ? "tok" : "x",
                          luaL_typename(L, in));
    lbind_tensor *x = lbind_checktensor(L, in);
    int B, T;
    const float *xf = NULL;
    const int *tok = NULL;
    if (vocab) {
        if (x->ndim != 2)
            return luaL_error(L, "m:forward: token ids must be a (B, T) tensor (got %d dimensions)", x->ndim);
        B = x->shape[0];
        T = x->shape[1];
        int *ids = lua_newuserdatauv(L, x->numel * sizeof(int), 0); /* Lua-owned scratch */
        for (size_t i = 0; i < x->numel; i++) {
            float v = x->data[i];
            if (!(v >= 0 && v < (float)s->vocab) || v != floorf(v))
                return luaL_error(L, "m:forward: token id %f at position %d is not an integer in [0, %d)", (double)v,
                                  (int)i + 1, s->vocab);
            ids[i] = (int)v;
        }
        tok = ids;
        in = lua_gettop(L);
    } else {
        if (x->ndim != 3) return luaL_error(L, "m:forward: x must be a (B, T, d) tensor (got %d dimensions)", x->ndim);
        if (x->shape[2] != s->n_dims)
            return luaL_error(L, "m:forward: x has token width %d but the model reads n_dims = %d", x->shape[2],
                              s->n_dims);
        B = x->shape[0];
        T = x->shape[1];
        xf = x->data;
    }
    if (s->n_positions > 0 && T > s->n_positions)
        return luaL_error(L, "m:forward: %d tokens per prompt exceed the model's %d learned positions (n_positions)",
                          T, s->n_positions);
    if (model_reserve(m, B, T)) return lbind_fail(L, "m:forward");
    /* the core keeps a pointer to its input for backward: keep it alive */
    lua_pushvalue(L, in);
    lua_setiuservalue(L, 1, 1);
    if (model_forward(m, xf, tok, B, T)) return lbind_fail(L, "m:forward");
    int shape[3] = {B, T, s->n_out};
    lbind_push_tensor_copy(L, m->out, 3, shape);
    return 1;
}

/* Optional 1-based integer argument in [1, hi] (default def). */
static int opt_index(lua_State *L, int arg, int def, int hi, const char *where, const char *what,
                     const char *range_note) {
    if (lua_isnoneornil(L, arg)) return def;
    lua_Integer v;
    if (!is_integral(L, arg, &v))
        return luaL_error(L, "%s: %s must be an integer (got %s)", where, what, luaL_tolstring(L, arg, NULL));
    if (v < 1 || v > hi)
        return luaL_error(L, "%s: %s %I out of range (%s)", where, what, v, range_note);
    return (int)v;
}

/* The block index of the layer-th block of kind k (argument arg). */
static int find_layer(lua_State *L, const model *m, int arg, block_kind k, const char *where) {
    int count = 0;
    for (int i = 0; i < m->spec.n_blocks; i++) count += m->spec.blocks[i] == k;
    char note[96];
    snprintf(note, sizeof note, "this model has %d %s layer%s", count, k == BLOCK_ATTN ? "attention" : "mamba",
             count == 1 ? "" : "s");
    if (lua_isnoneornil(L, arg)) return luaL_error(L, "%s: layer is required (%s)", where, note);
    int layer = opt_index(L, arg, 1, count, where, "layer", note);
    for (int i = 0, c = 0; i < m->spec.n_blocks; i++)
        if (m->spec.blocks[i] == k && ++c == layer) return i;
    return -1; /* not reached */
}

static int check_prompt(lua_State *L, const model *m, int arg, const char *where) {
    if (m->B == 0) return luaL_error(L, "%s: no forward pass yet (run m:forward(batch) first)", where);
    char note[80];
    snprintf(note, sizeof note, "the last forward had %d prompt%s", m->B, m->B == 1 ? "" : "s");
    return opt_index(L, arg, 1, m->B, where, "prompt", note) - 1;
}

static int l_attention(lua_State *L) {
    const model *m = lbind_checkmodel(L, 1)->m;
    int blk = find_layer(L, m, 2, BLOCK_ATTN, "m:attention");
    char note[48];
    snprintf(note, sizeof note, "this model has %d heads", m->NH);
    if (lua_isnoneornil(L, 3)) return luaL_error(L, "m:attention: head is required (%s)", note);
    int head = opt_index(L, 3, 1, m->NH, "m:attention", "head", note) - 1;
    int b = check_prompt(L, m, 4, "m:attention");
    int shape[2] = {m->T, m->T};
    lbind_tensor *t = lbind_push_tensor_copy(L, NULL, 2, shape);
    if (model_attention(m, blk, head, b, t->data)) return lbind_fail(L, "m:attention");
    return 1;
}

static int l_ssm_state(lua_State *L) {
    const model *m = lbind_checkmodel(L, 1)->m;
    int blk = find_layer(L, m, 2, BLOCK_MAMBA, "m:ssm_state");
    int b = check_prompt(L, m, 3, "m:ssm_state");
    int shape[3] = {m->T, m->E, m->N};
    lbind_tensor *t = lbind_push_tensor_copy(L, NULL, 3, shape);
    if (model_ssm_states(m, blk, b, t->data)) return lbind_fail(L, "m:ssm_state");
    return 1;
}

static int l_ssm_params(lua_State *L) {
    const model *m = lbind_checkmodel(L, 1)->m;
    int blk = find_layer(L, m, 2, BLOCK_MAMBA, "m:ssm_params");
    int b = check_prompt(L, m, 3, "m:ssm_params");
    int sd[2] = {m->T, m->E}, sn[2] = {m->T, m->N};
    lua_createtable(L, 0, 3);
    lbind_tensor *delta = lbind_push_tensor_copy(L, NULL, 2, sd);
    lua_setfield(L, -2, "delta");
    lbind_tensor *Bm = lbind_push_tensor_copy(L, NULL, 2, sn);
    lua_setfield(L, -2, "B");
    lbind_tensor *Cm = lbind_push_tensor_copy(L, NULL, 2, sn);
    lua_setfield(L, -2, "C");
    if (model_ssm_params(m, blk, b, delta->data, Bm->data, Cm->data)) return lbind_fail(L, "m:ssm_params");
    return 1;
}

static int l_init(lua_State *L) {
    lbind_model *lm = lbind_checkmodel(L, 1);
    if (!lua_isnoneornil(L, 2)) {
        lua_Integer seed;
        if (!is_integral(L, 2, &seed) || seed < 0)
            return luaL_error(L, "m:init: seed must be a non-negative integer (got %s)", luaL_tolstring(L, 2, NULL));
        lm->m->spec.seed = (uint64_t)seed;
    }
    model_init_params(lm->m);
    model_zero_grad(lm->m);
    lm->dirty = 1;
    return 0;
}

static int l_save(lua_State *L) {
    lbind_model *lm = lbind_checkmodel(L, 1);
    const char *path = luaL_checkstring(L, 2);
    if (checkpoint_save(path, lm->m, NULL, NULL, NULL, 0)) return lbind_fail(L, "m:save");
    lm->dirty = 0;
    return 0;
}

/* ---- registration --------------------------------------------------------------------- */

typedef struct {
    const char *name;
    lua_CFunction fn;
    const char *doc;
} doc_reg;

static const doc_reg methods[] = {
    {"blocks", l_blocks,
     "m:blocks() -> { {kind = \"mamba\", params = n, index = i, layer = k}, ... }: every block in order; `layer` is\n"
     "its number among blocks of its kind (what m:attention / m:ssm_state take)."},
    {"param_names", l_param_names, "m:param_names() -> the names of every parameter tensor, in storage order."},
    {"param", l_param,
     "m:param(name) -> a tensor VIEW of that parameter: writing to it changes the model; it keeps the model alive."},
    {"grad", l_grad, "m:grad(name) -> a view of that parameter's gradient (as left by the last training step)."},
    {"grad_norms", l_grad_norms,
     "m:grad_norms() -> { block 1, ..., block n, rest }: L2 norm of each block's gradient; the last entry covers\n"
     "read-in, positions, final norm and read-out."},
    {"forward", l_forward,
     "m:forward(batch) -> tensor (B, T, O) of predictions for batch = t:sample(n) (or an x (B, T, d) tensor).\n"
     "Reserves activations as needed; the probes then read this forward."},
    {"attention", l_attention,
     "m:attention(layer, head, prompt = 1) -> (T, T) attention probabilities of the layer-th attention block\n"
     "for the last forward (rows sum to 1)."},
    {"ssm_state", l_ssm_state,
     "m:ssm_state(layer, prompt = 1) -> (T, E, N) hidden states h_t of the layer-th Mamba block (last forward)."},
    {"ssm_params", l_ssm_params,
     "m:ssm_params(layer, prompt = 1) -> { delta = (T, E), B = (T, N), C = (T, N) } of the layer-th Mamba block\n"
     "for the last forward."},
    {"init", l_init, "m:init([seed]) re-draws every parameter (from seed, or the model's seed) and zeroes gradients."},
    {"save", l_save, "m:save(path) writes the weights (and spec) to a safetensors file; icl.load(path) reads it."},
    {"close", l_model_close,
     "m:close() frees the model now; any later use (and any view of it) raises \"model was closed\"."},
    {NULL, NULL, NULL},
};

void lbind_open_model(lua_State *L) {
    int icl = lua_gettop(L);
    luaL_newmetatable(L, LBIND_MODEL_MT);
    int mt = lua_gettop(L);
    lua_newtable(L);
    int meth = lua_gettop(L);
    char name[64];
    for (const doc_reg *r = methods; r->name; r++) {
        lua_pushcfunction(L, r->fn);
        snprintf(name, sizeof name, "icl.model:%s", r->name);
        lbind_setdoc(L, lua_gettop(L), name, r->doc);
        lua_setfield(L, meth, r->name);
    }
    lua_pushvalue(L, meth);
    lua_setfield(L, mt, "__methods");
    lua_newtable(L);
    for (int i = 0; model_fields[i]; i++) {
        lua_pushstring(L, model_fields[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, mt, "__fields");
    lua_pushvalue(L, meth);
    lua_pushcclosure(L, l_model_index, 1);
    lua_setfield(L, mt, "__index");
    lua_pushcfunction(L, l_model_newindex);
    lua_setfield(L, mt, "__newindex");
    lua_pushcfunction(L, l_model_tostring);
    lua_setfield(L, mt, "__tostring");
    lua_pushcfunction(L, l_model_gc);
    lua_setfield(L, mt, "__gc");
    lua_pushcfunction(L, l_model_close);
    lua_setfield(L, mt, "__close");
    lua_settop(L, icl);

    lua_pushcfunction(L, l_model_new);
    lbind_setdoc(L, lua_gettop(L), "icl.model",
                 "icl.model{ arch = \"mambaformer\", d_model = 64, n_layer = 4, n_head = 4, task = t, ... } -> model.\n"
                 "Archs: transformer, mamba, s4mamba, hybrid, mambaformer, custom (blocks = {\"mamba\",\n"
                 "\"attn\", ...}). Keys: n_dims n_out vocab d_model n_layer n_head d_state d_conv expand dt_rank\n"
                 "n_positions pos_std init seed; task = t fills n_dims, n_out, vocab and n_positions.\n"
                 "Fields: arch n_params d_model n_layer n_blocks n_dims n_out spec. print(m) lists the blocks.");
    lua_setfield(L, icl, "model");
    lua_pushcfunction(L, l_load);
    lbind_setdoc(L, lua_gettop(L), "icl.load",
                 "icl.load(path) -> model read from a safetensors file written by m:save or tr:save (weights only).");
    lua_setfield(L, icl, "load");
}
