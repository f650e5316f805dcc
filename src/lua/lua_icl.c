/*
 * lua_icl.c - luaopen_icl: the `icl` table, its small module functions
 * (version, threads, the name lists, help registry, completion) and the
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>

#include "core/blas.h"
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

/* icl.complete(word) -> sorted list of completions (what Tab offers) */
static int l_complete(lua_State *L) {
    const char *word = luaL_checkstring(L, 1);
    char **list = NULL;
    int n = repl_complete(L, word, &list);
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushstring(L, list[i]); /* cannot fail short of memory; the list leaks then */
        lua_rawseti(L, -2, i + 1);
    }
    repl_complete_free(list, n);
    return 1;
}

typedef struct {
    const char *name;
    lua_CFunction fn;
    const char *doc;
} doc_reg;

static const doc_reg icl_funcs[] = {
    {"threads", l_threads,
     "icl.threads([n]) -> n: get, or set to n, the threads of OpenBLAS and of the kernels\n"
     "Results never depend on the thread count; 2 suits a two-core machine."},
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
