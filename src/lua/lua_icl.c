/*
 * lua_icl.c - luaopen_icl: the `icl` table, its small module functions
 * (version, threads, the name lists, help registry, completion, the Lua
 * memory limit of lalloc.h and the memory budget of core/budget.h) and the
 * help registry behind help(). (lbind_fail lives in lua_model.c, icl.show in
 * lua_trainer.c.)
 *
 * The help registry (layout in repl.h, REPL_DOCS_KEY) maps names such as
 * "icl.model", "icl.model:forward" or "tasks.parity" to a doc string whose
 * first line is a synopsis ("icl.threads([n]) -> n: ...") and whose other
 * lines explain; it also maps documented values (functions, tables) back to
 * their names, so help(icl.model) and help(m.forward) find their text.
 * help() itself is written in Lua on top of icl.doc / icl.docs
 * (lua/init.lua). Each binding file documents its own functions with
 * lbind_setdoc from its opener; lbind_setdoc with fn_idx 0 documents a name
 * without a value (topics, fields).
 *
 * Not here: the types (lua_tensor.c, lua_model.c, lua_task.c,
 * lua_trainer.c, lua_eval.c), the REPL (repl.c), help() (lua/init.lua).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "core/blas.h"
#include "core/budget.h"
#include "lua/lalloc.h"
#include "lua/lbind.h"
#include "lua/repl.h"
#include "nn/model.h"
#include "tasks/baselines.h"
#include "tasks/task.h"

#define ICL_MAX_THREADS 1024

/* ------------------------------------------------------------------------ */
/* the help registry                                                        */
/* ------------------------------------------------------------------------ */

/* Pushes registry[REPL_DOCS_KEY], creating it on first use. */
static void push_docs(lua_State *L) {
    luaL_checkstack(L, 6, "help registry");
    if (lua_getfield(L, LUA_REGISTRYINDEX, REPL_DOCS_KEY) == LUA_TTABLE) return;
    lua_pop(L, 1);
    lua_newtable(L);
    lua_newtable(L);
    lua_setfield(L, -2, "names");
    lua_newtable(L); /* values: weak keys, so documenting a closure keeps nothing alive */
    lua_newtable(L);
    lua_pushliteral(L, "k");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_setfield(L, -2, "values");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, REPL_DOCS_KEY);
}

int lbind_push_icl(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    int type = lua_getfield(L, -1, "icl");
    lua_remove(L, -2);
    return type;
}

void lbind_setdoc(lua_State *L, int fn_idx, const char *name, const char *doc) {
    int t = fn_idx != 0 ? lua_type(L, fn_idx) : LUA_TNONE;
    int by_value = t == LUA_TFUNCTION || t == LUA_TTABLE || t == LUA_TUSERDATA;
    if (by_value) fn_idx = lua_absindex(L, fn_idx);
    push_docs(L);
    lua_getfield(L, -1, "names");
    lua_pushstring(L, doc ? doc : "");
    lua_setfield(L, -2, name);
    lua_pop(L, 1);
    if (by_value) {
        lua_getfield(L, -1, "values");
        lua_pushvalue(L, fn_idx);
        lua_pushstring(L, name);
        lua_rawset(L, -3);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* icl.doc(x) -> doc, name | nil */
static int l_doc(lua_State *L) {
    luaL_checkany(L, 1);
    push_docs(L);
    int docs = lua_gettop(L);
    if (lua_type(L, 1) == LUA_TSTRING) {
        lua_pushvalue(L, 1);
    } else {
        lua_getfield(L, docs, "values");
        lua_pushvalue(L, 1);
        lua_rawget(L, -2);
        lua_remove(L, -2);
        if (lua_type(L, -1) != LUA_TSTRING) {
            lua_pushnil(L);
            return 1;
        }
    }
    int name = lua_gettop(L);
    lua_getfield(L, docs, "names");
    lua_pushvalue(L, name);
    lua_rawget(L, -2);
    if (lua_type(L, -1) != LUA_TSTRING) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushvalue(L, name);
    return 2;
}

static int cmp_cstr(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

/* icl.docs([prefix]) -> sorted list of documented names */
static int l_docs(lua_State *L) {
    size_t pl = 0;
    const char *prefix = luaL_optlstring(L, 1, "", &pl);
    push_docs(L);
    lua_getfield(L, -1, "names");
    int names = lua_gettop(L);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, names)) {
        n++;
        lua_pop(L, 1);
    }
    /* the name strings stay alive as keys of `names` while we sort */
    const char **v = lua_newuserdatauv(L, (n ? n : 1) * sizeof *v, 0);
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, names)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING) continue;
        const char *s = lua_tostring(L, -1);
        if (k < n && !strncmp(s, prefix, pl)) v[k++] = s;
    }
    qsort(v, k, sizeof *v, cmp_cstr);
    lua_createtable(L, (int)k, 0);
    for (size_t i = 0; i < k; i++) {
        lua_pushstring(L, v[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* icl.setdoc(value | nil, name, doc) */
static int l_setdoc(lua_State *L) {
    const char *name = luaL_checkstring(L, 2);
    const char *doc = luaL_checkstring(L, 3);
    lbind_setdoc(L, lua_isnoneornil(L, 1) ? 0 : 1, name, doc);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* module functions                                                         */
/* ------------------------------------------------------------------------ */

static int l_threads(lua_State *L) {
    if (!lua_isnoneornil(L, 1)) {
        int ok = 0;
        lua_Integer n = lua_tointegerx(L, 1, &ok);
        if (!ok || n < 1 || n > ICL_MAX_THREADS)
            return luaL_error(L, "icl.threads: n must be an integer in [1, %d] (got %s)", ICL_MAX_THREADS,
                              luaL_tolstring(L, 1, NULL));
        blas_set_threads((int)n);
    }
    lua_pushinteger(L, blas_get_threads());
    return 1;
}

static void push_names(lua_State *L, const char *const *names, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, names[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int l_archs(lua_State *L) {
    int n;
    const char *const *names = model_arch_names(&n);
    push_names(L, names, n);
    return 1;
}

static int l_tasks(lua_State *L) {
    int n;
    const char *const *names = task_names(&n);
    push_names(L, names, n);
    return 1;
}

static int l_baselines(lua_State *L) {
    int n = baseline_count();
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, baseline_at(i)->name);
        lua_rawseti(L, -2, i + 1);
    }
    return 1;
}

/* The malloc'd list of repl_complete, owned by a userdata while it is
 * copied into Lua strings: a memory error on the way frees it too. */
typedef struct {
    char **list;
    int n;
} completion_box;

static int completion_box_gc(lua_State *L) {
    completion_box *b = lua_touserdata(L, 1);
    repl_complete_free(b->list, b->n);
    b->list = NULL;
    b->n = 0;
    return 0;
}

/* icl.complete(word) -> sorted list of completions (what Tab offers) */
static int l_complete(lua_State *L) {
    const char *word = luaL_checkstring(L, 1);
    completion_box *box = lua_newuserdatauv(L, sizeof *box, 0);
    box->list = NULL;
    box->n = 0;
    if (luaL_newmetatable(L, "icl.completion_box")) {
        lua_pushcfunction(L, completion_box_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    box->n = repl_complete(L, word, &box->list);
    lua_createtable(L, box->n, 0);
    for (int i = 0; i < box->n; i++) {
        lua_pushstring(L, box->list[i]);
        lua_rawseti(L, -2, i + 1);
    }
    repl_complete_free(box->list, box->n);
    box->list = NULL;
    box->n = 0;
    return 1;
}

/* ---- memory: the Lua limit and the budget of the C core ---------------------- */

/* A size argument: a number of bytes (math.huge: none) or a string such as
 * "512M", "2G" or "off" (icl_parse_bytes). [out] *bytes. */
static void check_size_arg(lua_State *L, int idx, const char *where, size_t *bytes) {
    if (lua_type(L, idx) == LUA_TSTRING) {
        if (icl_parse_bytes(lua_tostring(L, idx), bytes) != ICL_OK) luaL_error(L, "%s: %s", where, icl_error());
        return;
    }
    if (lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "%s: expects a number of bytes or a size such as \"512M\" or \"off\" (got %s)", where,
                   luaL_typename(L, idx));
    double v = lua_tonumber(L, idx);
    if (v == HUGE_VAL) {
        *bytes = SIZE_MAX;
        return;
    }
    if (!(v >= 1) || v >= 9.0e18) luaL_error(L, "%s: bytes must be >= 1 (got %s)", where, luaL_tolstring(L, idx, NULL));
    *bytes = (size_t)v;
}

static void push_size(lua_State *L, size_t v) {
    if (v == SIZE_MAX) lua_pushnumber(L, HUGE_VAL);
    else lua_pushinteger(L, (lua_Integer)v);
}

/* icl.memory_limit([bytes]) -> limit, in_use */
static int l_memory_limit(lua_State *L) {
    size_t limit, in_use;
    if (!lalloc_get(L, &limit, &in_use))
        return luaL_error(L, "icl.memory_limit: this Lua state was not created by iclplay's allocator, so Lua "
                             "memory is not counted (no limit applies)");
    if (!lua_isnoneornil(L, 1)) {
        size_t want;
        check_size_arg(L, 1, "icl.memory_limit", &want);
        if (want == 0) return luaL_error(L, "icl.memory_limit: the limit must be > 0 (or \"off\")");
        if (lalloc_set_limit(L, want)) return lbind_fail(L, "icl.memory_limit");
        lalloc_get(L, &limit, &in_use);
    }
    push_size(L, limit);
    lua_pushinteger(L, (lua_Integer)in_use);
    return 2;
}

/* icl.memory_budget([bytes]) -> budget */
static int l_memory_budget(lua_State *L) {
    if (!lua_isnoneornil(L, 1)) {
        size_t want;
        if (lua_type(L, 1) == LUA_TSTRING && !strcmp(lua_tostring(L, 1), "default")) {
            want = 0; /* back to $ICLPLAY_BUDGET or half of the physical memory */
        } else {
            check_size_arg(L, 1, "icl.memory_budget", &want);
            if (want == 0) return luaL_error(L, "icl.memory_budget: the budget must be > 0 (or \"off\")");
        }
        icl_budget_set(want);
    }
    push_size(L, icl_budget_get());
    return 1;
}

typedef struct {
    const char *name;
    lua_CFunction fn;
    const char *doc;
} doc_reg;

static const doc_reg icl_funcs[] = {
    {"threads", l_threads,
     "icl.threads([n]) -> n: get, or set to n, the threads a training step runs on\n"
     "A batch is cut into one shard of prompts per thread. Bit for bit reproducible at a fixed count;\n"
     "across counts equal up to rounding. 2 suits two cores."},
    {"archs", l_archs,
     "icl.archs() -> list: the architecture names icl.model{ arch = ... } accepts\n"
     "help(\"archs\") explains each."},
    {"tasks", l_tasks,
     "icl.tasks() -> list: the built-in task names icl.task{ name } accepts\n"
     "help(\"tasks\") gives one line per task; icl.task{ \"custom\", fill = f } defines your own."},
    {"baselines", l_baselines,
     "icl.baselines() -> list: the baseline names icl.eval{ baselines = ... } accepts\n"
     "help(\"baselines\") describes each."},
    {"doc", l_doc,
     "icl.doc(x) -> doc, name | nil: the help text of a documented value or name\n"
     "Names look like \"icl.model\", \"icl.model:forward\", \"icl.trainer.loss\", \"tasks.parity\"."},
    {"docs", l_docs,
     "icl.docs([prefix]) -> list: every documented name starting with prefix, sorted\n"
     "e.g. icl.docs(\"icl.model:\") lists the documented model methods."},
    {"setdoc", l_setdoc,
     "icl.setdoc(value | nil, name, doc): document a value (e.g. your own function) for help()\n"
     "The first line of doc is the synopsis help() lists."},
    {"memory_limit", l_memory_limit,
     "icl.memory_limit([bytes]) -> limit, in_use: get, or set, the cap on the memory Lua itself may use\n"
     "bytes: a number or a size such as \"512M\" or \"2G\"; \"off\" or math.huge lifts the cap (limit is then\n"
     "math.huge). Past the cap an allocation fails with Lua's error \"not enough memory\": the command stops, the\n"
     "REPL and every object you made stay intact (free memory with `x = nil; collectgarbage()`). It counts Lua\n"
     "memory only: tables, strings, icl.tensor data, t:sample batches. Models, trainers' optimizer state and their\n"
     "batches are allocated in C and checked against icl.memory_budget instead. Default: 2 GiB or a quarter of\n"
     "the physical memory, whichever is smaller; at start-up ICLPLAY_LUA_MEM=512M or iclplay --lua-mem 512M."},
    {"memory_budget", l_memory_budget,
     "icl.memory_budget([bytes]) -> budget: get, or set, how much memory one model or one task batch may need\n"
     "A model whose weights, gradients and Adam state (icl.model, icl.load), or those plus the activations of a\n"
     "batch (icl.trainer, m:forward), would need more is refused BEFORE anything is allocated, with the estimate\n"
     "in the message; so is a task whose batch of 64 prompts (icl.task), or the batch a trainer or t:sample asks\n"
     "for, would. Each request is checked on its own, not their sum. bytes: a number or \"8G\"; \"off\" (or\n"
     "math.huge) lifts it, \"default\" restores ICLPLAY_BUDGET or half of the physical memory (also --budget 8G)."},
    {"complete", l_complete,
     "icl.complete(prefix) -> list: the completions Tab offers for a Lua expression prefix\n"
     "e.g. icl.complete(\"icl.pre\") -> { \"icl.presets\" }, icl.complete(\"m:for\") -> { \"m:forward\" }."},
};

/* Architectures have no help text in the core; model.h's summary. */
static const char *const arch_docs[][2] = {
    {"transformer", "GPT-2: learned positions, [attn, mlp] x n_layer/2 (SPEC 3.1)"},
    {"mamba", "Mamba: [mamba] x n_layer, no positions (SPEC 3.2)"},
    {"s4mamba", "S4-Mamba: Mamba with the selective scan replaced by S4D-Lin (SPEC 3.3)"},
    {"hybrid", "Standard Hybrid: learned positions, [attn, mamba] x n_layer/2 (SPEC 3.4)"},
    {"mambaformer", "MambaFormer: mamba, then [attn, mamba] x n_layer/2, no positions (SPEC 3.5)"},
    {"custom", "any list of blocks: icl.model{ arch = \"custom\", blocks = { \"mamba\", \"attn\", \"mlp\" } }"},
};

static void register_topics(lua_State *L) {
    char name[96];
    int n;
    const char *const *tasks = task_names(&n);
    for (int i = 0; i <= n; i++) { /* the built-ins, then "custom" */
        const char *t = i < n ? tasks[i] : "custom";
        const char *h = task_help(t);
        snprintf(name, sizeof name, "tasks.%s", t);
        if (h) lbind_setdoc(L, 0, name, h);
    }
    for (int i = 0; i < baseline_count(); i++) {
        const baseline_info *b = baseline_at(i);
        snprintf(name, sizeof name, "baselines.%s", b->name);
        lbind_setdoc(L, 0, name, b->description ? b->description : "");
    }
    for (size_t i = 0; i < sizeof arch_docs / sizeof *arch_docs; i++) {
        snprintf(name, sizeof name, "archs.%s", arch_docs[i][0]);
        lbind_setdoc(L, 0, name, arch_docs[i][1]);
    }
}

int luaopen_icl(lua_State *L) {
    int n = (int)(sizeof icl_funcs / sizeof *icl_funcs);
    lua_createtable(L, 0, n + 32);
    int icl = lua_gettop(L);
    char name[64];
    for (int i = 0; i < n; i++) {
        lua_pushcfunction(L, icl_funcs[i].fn);
        snprintf(name, sizeof name, "icl.%s", icl_funcs[i].name);
        lbind_setdoc(L, -1, name, icl_funcs[i].doc);
        lua_setfield(L, icl, icl_funcs[i].name);
    }
    lua_pushliteral(L, ICLPLAY_VERSION);
    lua_setfield(L, icl, "version");
    lbind_setdoc(L, 0, "icl.version", "icl.version: the version string of iclplay (\"" ICLPLAY_VERSION "\")");
    lbind_setdoc(L, icl, "icl",
                 "icl: the in-context-learning playground module\n"
                 "Build a model, a task and a trainer, train, evaluate against baselines, probe the model.\n"
                 "Start with help(\"quickstart\") or icl.build(icl.presets.linear{ arch = \"mamba\" }).");
    register_topics(L);
    /* each opener adds its constructors and functions to the table on top */
    lbind_open_tensor(L);
    lbind_open_model(L);
    lbind_open_task(L);
    lbind_open_trainer(L);
    lbind_open_eval(L);
    lua_settop(L, icl);
    return 1;
}
