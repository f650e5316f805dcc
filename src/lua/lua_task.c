/*
 * lua_task.c - icl.task{...}: the built-in tasks and custom tasks whose
 * prompts come from a Lua function; t:sample() as a table of tensors; the
 * per-prompt random generator handed to custom fills (icl.rng).
 *
 * A custom task is the core's task_create_custom with a C callback
 * (lua_fill) that calls the Lua fill function stored in the registry. The
 * core calls it serially on the calling thread, from inside task_sample,
 * with C buffers it malloc'd, so no Lua error may escape the callback: it
 * runs the Lua function and the checks of what it returned under
 * lua_pcall and turns an error into icl_fail(ICL_ERR_ARG, "task fill: ...").
 * The binding that called the core (t:sample, a trainer step, an
 * evaluation) then raises that message.
 *
 * The callback runs on lbind_task.L: the main thread, which lives as long
 * as the state (a coroutine could be collected while the task lives on);
 * t:sample points it at its own thread for the length of its call.
 *
 * p.rng is a copy of the prompt's generator rng_make(seed, stream0 + i):
 * draws advance the copy, which is written back to the core's generator
 * when fill returns (the core adds its noise after the callback's draws),
 * and the object expires then, so a p.rng kept past the call raises instead
 * of touching a generator that no longer exists.
 *
 * What it is not: training or evaluation (they call task_sample themselves).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"
#include "core/interrupt.h"
#include "lua/lbind.h"

#define LBIND_RNG_MT "icl.rng"
#define SAMPLE_MAX_PROMPTS 65536

/* ---- icl.rng ---------------------------------------------------------------------- */

typedef struct {
    rng_t r;
    int live; /* 0 once the fill call that received it has returned */
} lbind_rng;

static lbind_rng *push_rng(lua_State *L, rng_t r) {
    lbind_rng *g = lua_newuserdatauv(L, sizeof *g, 0);
    g->r = r;
    g->live = 1;
    luaL_setmetatable(L, LBIND_RNG_MT);
    return g;
}

static lbind_rng *check_rng(lua_State *L, int idx) {
    lbind_rng *g = luaL_checkudata(L, idx, LBIND_RNG_MT);
    if (!g->live) luaL_argerror(L, idx, "this rng belonged to a fill call that has returned (use it inside fill only)");
    return g;
}

static int l_rng_new(lua_State *L) {
    lua_Integer seed = luaL_checkinteger(L, 1), stream = luaL_optinteger(L, 2, 0);
    if (seed < 0) return luaL_error(L, "icl.rng: seed must be >= 0 (got %I)", seed);
    if (stream < 0) return luaL_error(L, "icl.rng: stream must be >= 0 (got %I)", stream);
    push_rng(L, rng_make((uint64_t)seed, (uint64_t)stream));
    return 1;
}

static int l_rng_normal(lua_State *L) {
    lbind_rng *g = check_rng(L, 1);
    double mean = luaL_optnumber(L, 2, 0.0), std = luaL_optnumber(L, 3, 1.0);
    lua_pushnumber(L, mean + std * (double)rng_normal(&g->r));
    return 1;
}

static int l_rng_uniform(lua_State *L) {
    lbind_rng *g = check_rng(L, 1);
    double lo = luaL_optnumber(L, 2, 0.0), hi = luaL_optnumber(L, 3, 1.0);
    if (!(hi >= lo)) return luaL_error(L, "rng:uniform: hi (%f) must be >= lo (%f)", hi, lo);
    lua_pushnumber(L, lo + (hi - lo) * (double)rng_uniform(&g->r));
    return 1;
}

static int l_rng_below(lua_State *L) {
    lbind_rng *g = check_rng(L, 1);
    lua_Integer n = luaL_checkinteger(L, 2);
    if (n < 1 || n > (lua_Integer)UINT32_MAX)
        return luaL_error(L, "rng:below: n must be in [1, %I] (got %I)", (lua_Integer)UINT32_MAX, n);
    lua_pushinteger(L, (lua_Integer)rng_below(&g->r, (uint32_t)n));
    return 1;
}

static int l_rng_tostring(lua_State *L) {
    lbind_rng *g = luaL_checkudata(L, 1, LBIND_RNG_MT);
    lua_pushfstring(L, "icl.rng (%s, %I draws)", g->live ? "live" : "expired", (lua_Integer)g->r.counter);
    return 1;
}

/* ---- the userdata ------------------------------------------------------------------ */

lbind_task *lbind_checktask(lua_State *L, int idx) {
    lbind_task *lt = luaL_checkudata(L, idx, LBIND_TASK_MT);
    if (!lt->t) luaL_argerror(L, idx, "task was closed");
    return lt;
}

/* Drop "task " from the core's "task <name>: ..." (the message names icl.task). */
static int fail_task(lua_State *L, const char *where) {
    const char *e = icl_error();
    if (!strncmp(e, "task ", 5)) e += 5;
    return luaL_error(L, "%s: %s", where, e);
}

static void release(lua_State *L, lbind_task *lt) {
    task_free(lt->t);
    lt->t = NULL;
    if (lt->fill_ref != LUA_NOREF && lt->fill_ref != LUA_REFNIL) luaL_unref(L, LUA_REGISTRYINDEX, lt->fill_ref);
    lt->fill_ref = LUA_NOREF;
}

static int l_task_gc(lua_State *L) {
    release(L, luaL_checkudata(L, 1, LBIND_TASK_MT));
    return 0;
}

static int l_task_close(lua_State *L) {
    lbind_task *lt = luaL_checkudata(L, 1, LBIND_TASK_MT);
    if (lt->busy) return luaL_error(L, "t:close: the task is sampling (close it after the call returns)");
    release(L, lt);
    return 0;
}

/* ---- the fill callback ---------------------------------------------------------------- */

typedef struct {
    lbind_task *lt;
    int prompt, n_points, d, d_cur;
    rng_t *rng;
    float *x, *y;
} fill_call;

static int fill_protected(lua_State *L);

/* Message handler of the fill call: the message and the traceback of the
 * frames inside fill only (the caller's frames come with the error raised
 * by t:sample or the trainer, and the message must fit icl_error's buffer). */
static int fill_msgh(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (!msg) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) msg = lua_tostring(L, -1);
        else msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    int keep = -1; /* levels above fill_protected's frame */
    lua_Debug ar;
    for (int level = 1; lua_getstack(L, level, &ar); level++) {
        lua_getinfo(L, "f", &ar);
        int found = lua_tocfunction(L, -1) == fill_protected;
        lua_pop(L, 1);
        if (found) {
            keep = level - 1;
            break;
        }
    }
    luaL_traceback(L, L, msg, 1);
    if (keep < 0 || keep > 10) return 1; /* luaL_traceback abbreviates long stacks: keep it whole */
    const char *tb = lua_tostring(L, -1), *cut = strstr(tb, "\nstack traceback:");
    for (int i = 0; cut && i <= keep; i++) cut = strchr(cut + 1, '\n');
    if (cut) lua_pushlstring(L, tb, (size_t)(cut - tb));
    return 1;
}

/* One number of what fill returned, at idx: must be a finite number. */
static float fill_number(lua_State *L, int idx, const fill_call *fc, const char *what) {
    if (lua_type(L, idx) != LUA_TNUMBER)
        luaL_error(L, "prompt %d: %s is a %s, not a number", fc->prompt + 1, what, luaL_typename(L, idx));
    double v = lua_tonumber(L, idx);
    if (!isfinite(v) || fabs(v) > 3.0e38)
        luaL_error(L, "prompt %d: %s is %f, not a finite float", fc->prompt + 1, what, v);
    return (float)v;
}

static void read_x(lua_State *L, int idx, const fill_call *fc) {
    const int n = fc->n_points, d = fc->d;
    char what[64];
    lbind_tensor *tx = luaL_testudata(L, idx, LBIND_TENSOR_MT);
    if (tx) {
        tx = lbind_checktensor(L, idx);
        if (tx->ndim != 2 || tx->shape[0] != n || tx->shape[1] != d)
            luaL_error(L, "prompt %d: x must be a (%d, %d) tensor (n_points, d)", fc->prompt + 1, n, d);
        for (size_t i = 0; i < tx->numel; i++) {
            snprintf(what, sizeof what, "x[%d][%d]", (int)(i / (size_t)d) + 1, (int)(i % (size_t)d) + 1);
            lua_pushnumber(L, tx->data[i]);
            fc->x[i] = fill_number(L, -1, fc, what);
            lua_pop(L, 1);
        }
        return;
    }
    if (!lua_istable(L, idx))
        luaL_error(L, "prompt %d: fill must return x (n_points tables of d numbers) first, got %s", fc->prompt + 1,
                   luaL_typename(L, idx));
    lua_Integer rows = (lua_Integer)lua_rawlen(L, idx);
    if (rows != n)
        luaL_error(L, "prompt %d: x has %I rows, expected n_points = %d", fc->prompt + 1, rows, n);
    for (int j = 0; j < n; j++) {
        lua_rawgeti(L, idx, j + 1);
        if (!lua_istable(L, -1))
            luaL_error(L, "prompt %d: x[%d] is a %s, expected a table of %d numbers", fc->prompt + 1, j + 1,
                       luaL_typename(L, -1), d);
        lua_Integer len = (lua_Integer)lua_rawlen(L, -1);
        /* coordinates >= d_cur are zeroed by the core, so they may be left out */
        if (len < fc->d_cur || len > d)
            luaL_error(L, "prompt %d: x[%d] has %I numbers, expected d = %d%s", fc->prompt + 1, j + 1, len, d,
                       fc->d_cur < d ? " (or at least d_cur)" : "");
        for (int c = 0; c < (int)len; c++) {
            lua_rawgeti(L, -1, c + 1);
            snprintf(what, sizeof what, "x[%d][%d]", j + 1, c + 1);
            fc->x[(size_t)j * d + c] = fill_number(L, -1, fc, what);
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
}

static void read_y(lua_State *L, int idx, const fill_call *fc) {
    const int n = fc->n_points;
    char what[32];
    lbind_tensor *ty = luaL_testudata(L, idx, LBIND_TENSOR_MT);
    if (ty) {
        ty = lbind_checktensor(L, idx);
        if (ty->numel != (size_t)n)
            luaL_error(L, "prompt %d: y must have n_points = %d numbers (the tensor has %d)", fc->prompt + 1, n,
                       (int)ty->numel);
        for (int j = 0; j < n; j++) {
            snprintf(what, sizeof what, "y[%d]", j + 1);
            lua_pushnumber(L, ty->data[j]);
            fc->y[j] = fill_number(L, -1, fc, what);
            lua_pop(L, 1);
        }
        return;
    }
    if (!lua_istable(L, idx))
        luaL_error(L, "prompt %d: fill must return y (a table of n_points numbers) second, got %s", fc->prompt + 1,
                   luaL_typename(L, idx));
    lua_Integer len = (lua_Integer)lua_rawlen(L, idx);
    if (len != n) luaL_error(L, "prompt %d: y has %I numbers, expected n_points = %d", fc->prompt + 1, len, n);
    for (int j = 0; j < n; j++) {
        lua_rawgeti(L, idx, j + 1);
        snprintf(what, sizeof what, "y[%d]", j + 1);
        fc->y[j] = fill_number(L, -1, fc, what);
        lua_pop(L, 1);
    }
}

/* Runs under lua_pcall: builds p, calls fill (with a traceback handler for
 * the user's own errors), checks and copies what it returned. */
static int fill_protected(lua_State *L) {
    fill_call *fc = lua_touserdata(L, 1);
    lua_pushcfunction(L, fill_msgh); /* 2 */
    lbind_rng *g = push_rng(L, *fc->rng); /* 3: stays reachable while fill runs */
    lua_rawgeti(L, LUA_REGISTRYINDEX, fc->lt->fill_ref);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, fc->n_points);
    lua_setfield(L, -2, "n_points");
    lua_pushinteger(L, fc->d);
    lua_setfield(L, -2, "d");
    lua_pushinteger(L, fc->d_cur);
    lua_setfield(L, -2, "d_cur");
    lua_pushinteger(L, fc->prompt + 1);
    lua_setfield(L, -2, "index");
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "rng");
    int rc = lua_pcall(L, 1, 2, 2); /* results at 4, 5 */
    g->live = 0;
    if (rc != LUA_OK) return lua_error(L); /* the message already carries fill's traceback */
    *fc->rng = g->r; /* the core continues this prompt's generator after fill's draws */
    if (lua_isnil(L, 4)) luaL_error(L, "prompt %d: fill returned nothing (it must return x, y)", fc->prompt + 1);
    read_x(L, 4, fc);
    if (lua_isnil(L, 5)) luaL_error(L, "prompt %d: fill returned no y (it must return x, y)", fc->prompt + 1);
    read_y(L, 5, fc);
    return 0;
}

static icl_status lua_fill(void *ctx, int prompt, rng_t *rng, int n_points, int d, int d_cur, float *x, float *y) {
    lbind_task *lt = ctx;
    lua_State *L = lt->L;
    /* lua_checkstack reports failure instead of raising: nothing below may longjmp */
    if (!lua_checkstack(L, 8)) return icl_fail(ICL_ERR_NOMEM, "task fill: Lua stack overflow");
    fill_call fc = {lt, prompt, n_points, d, d_cur, rng, x, y};
    int top = lua_gettop(L);
    lua_pushcfunction(L, fill_protected); /* light C function and light userdata: no allocation */
    lua_pushlightuserdata(L, &fc);
    lt->busy++;
    int rc = lua_pcall(L, 1, 0, 0);
    lt->busy--;
    if (rc == LUA_OK) {
        lua_settop(L, top);
        return ICL_OK;
    }
    const char *msg = lua_tostring(L, -1);
    icl_status code = icl_interrupt_pending() ? ICL_ERR_INTERRUPT : ICL_ERR_ARG;
    icl_status st = icl_fail(code, "task fill: %s", msg ? msg : "(error object is not a string)");
    lua_settop(L, top);
    return st;
}

/* ---- icl.task{...} ------------------------------------------------------------------- */

static void set_option(lua_State *L, task_spec *s, const char *key, double v) {
    if (task_spec_set(s, key, v)) fail_task(L, "icl.task");
}

/* curriculum = { dims = {start, end, inc, interval}, points = {...} } */
static void read_curriculum(lua_State *L, int idx, task_spec *s) {
    static const char *const parts[] = {"start", "end", "inc", "interval"};
    if (!lua_istable(L, idx))
        luaL_error(L, "icl.task: curriculum must be a table { dims = {start, end, inc, interval}, points = {...} }");
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        const char *which = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
        if (strcmp(which, "dims") && strcmp(which, "points"))
            luaL_error(L, "icl.task: curriculum has unknown key %s (use dims and points)", luaL_tolstring(L, -2, NULL));
        if (!lua_istable(L, -1))
            luaL_error(L, "icl.task: curriculum.%s must be a table {start, end, inc, interval}", which);
        int sub = lua_gettop(L);
        lua_pushnil(L);
        while (lua_next(L, sub)) {
            int part = -1;
            if (lua_type(L, -2) == LUA_TNUMBER) {
                lua_Integer i = lua_tointeger(L, -2);
                if (i >= 1 && i <= 4) part = (int)i - 1;
            } else if (lua_type(L, -2) == LUA_TSTRING) {
                for (int k = 0; k < 4; k++)
                    if (!strcmp(lua_tostring(L, -2), parts[k])) part = k;
            }
            if (part < 0)
                luaL_error(L, "icl.task: curriculum.%s has unknown entry %s (use {start, end, inc, interval})", which,
                           luaL_tolstring(L, -2, NULL));
            if (lua_type(L, -1) != LUA_TNUMBER)
                luaL_error(L, "icl.task: curriculum.%s.%s must be a number (got %s)", which, parts[part],
                           luaL_typename(L, -1));
            char key[32];
            snprintf(key, sizeof key, "%s_%s", which, parts[part]);
            set_option(L, s, key, lua_tonumber(L, -1));
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
}

static int l_task_new(lua_State *L) {
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_getfield(L, 1, "name");
    lua_rawgeti(L, 1, 1);
    if (!lua_isnil(L, -1) && !lua_isnil(L, -2) && !lua_rawequal(L, -1, -2))
        return luaL_error(L, "icl.task: give the task name once (name = or the first element)");
    if (lua_isnil(L, -2)) lua_replace(L, -2);
    else lua_pop(L, 1);
    int n_names;
    const char *const *names = task_names(&n_names);
    if (lua_type(L, -1) != LUA_TSTRING) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (int i = 0; i < n_names; i++) {
            luaL_addstring(&b, names[i]);
            luaL_addstring(&b, ", ");
        }
        luaL_addstring(&b, "custom");
        luaL_pushresult(&b);
        return luaL_error(L, "icl.task: the task name is required as the first element or name = (one of %s)",
                          lua_tostring(L, -1));
    }
    const char *name = lua_tostring(L, -1);
    task_spec s;
    task_spec_default(&s, name);
    if (task_spec_validate(&s) && s.kind == TASK_KIND_COUNT) return fail_task(L, "icl.task");
    int custom = s.kind == TASK_CUSTOM;

    lua_pushnil(L);
    while (lua_next(L, 1)) {
        if (lua_type(L, -2) != LUA_TSTRING) {
            if (lua_type(L, -2) == LUA_TNUMBER && lua_tointeger(L, -2) == 1) { lua_pop(L, 1); continue; }
            return luaL_error(L, "icl.task: unexpected positional value %s (give options as key = value)",
                              luaL_tolstring(L, -2, NULL));
        }
        const char *k = lua_tostring(L, -2);
        if (!strcmp(k, "name") || !strcmp(k, "fill")) {
            lua_pop(L, 1);
            continue;
        }
        if (!strcmp(k, "curriculum")) {
            read_curriculum(L, lua_gettop(L), &s);
            lua_pop(L, 1);
            continue;
        }
        double v;
        if (!strcmp(k, "ood") && lua_type(L, -1) == LUA_TSTRING) {
            const char *o = lua_tostring(L, -1);
            if (!strcmp(o, "none")) v = TASK_OOD_NONE;
            else if (!strcmp(o, "skewed")) v = TASK_OOD_SKEWED;
            else if (!strcmp(o, "half_subspace")) v = TASK_OOD_HALF_SUBSPACE;
            else
                return luaL_error(L, "icl.task: ood must be \"none\", \"skewed\" or \"half_subspace\" (got \"%s\")",
                                  o);
        } else if (lua_type(L, -1) == LUA_TBOOLEAN) {
            v = lua_toboolean(L, -1);
        } else if (lua_type(L, -1) == LUA_TNUMBER) {
            v = lua_tonumber(L, -1);
        } else {
            double cur; /* unknown or inapplicable keys first, then the type */
            task_spec probe = s;
            if (task_spec_get(&probe, k, &cur)) {
                task_spec_set(&probe, k, 0); /* its message lists the task's options */
                return fail_task(L, "icl.task");
            }
            if (task_spec_set(&probe, k, cur)) return fail_task(L, "icl.task");
            return luaL_error(L, "icl.task: %s must be a number (got %s)", k, luaL_typename(L, -1));
        }
        set_option(L, &s, k, v);
        lua_pop(L, 1);
    }

    lua_getfield(L, 1, "fill");
    int fill = lua_gettop(L);
    if (custom && !lua_isfunction(L, fill))
        return luaL_error(L, "icl.task: custom needs fill = function(p) ... return x, y end (got %s)",
                          luaL_typename(L, fill));
    if (!custom && !lua_isnil(L, fill))
        return luaL_error(L, "icl.task: fill is only for custom tasks (this is %s)", name);
    if (task_spec_validate(&s)) return fail_task(L, "icl.task");

    lbind_task *lt = lua_newuserdatauv(L, sizeof *lt, 0);
    lt->t = NULL;
    lt->fill_ref = LUA_NOREF;
    lt->busy = 0;
    lua_rawgeti(L, LUA_REGISTRYINDEX, LUA_RIDX_MAINTHREAD);
    lt->L = lua_tothread(L, -1);
    lua_pop(L, 1);
    luaL_setmetatable(L, LBIND_TASK_MT);
    if (custom) {
        lua_pushvalue(L, fill);
        lt->fill_ref = luaL_ref(L, LUA_REGISTRYINDEX);
        if (task_create_custom(&lt->t, &s, lua_fill, lt)) return fail_task(L, "icl.task");
    } else if (task_create(&lt->t, &s)) {
        return fail_task(L, "icl.task");
    }
    return 1;
}

/* ---- t:sample ------------------------------------------------------------------------ */

static lua_Integer opt_int_field(lua_State *L, int tbl, const char *k, lua_Integer def) {
    lua_getfield(L, tbl, k);
    lua_Integer v = def;
    if (!lua_isnil(L, -1)) {
        int ok = 0;
        v = lua_tointegerx(L, -1, &ok);
        if (!ok || lua_type(L, -1) != LUA_TNUMBER || v < 0)
            luaL_error(L, "t:sample: %s must be a non-negative integer (got %s)", k, luaL_tolstring(L, -1, NULL));
    }
    lua_pop(L, 1);
    return v;
}

/* An int (n, T) buffer converted to a float tensor, set as res[name]. */
static void set_int_tensor(lua_State *L, int res, const char *name, const int *v, int n, int T) {
    int shape[2] = {n, T};
    lbind_tensor *t = lbind_push_tensor_copy(L, NULL, 2, shape);
    for (size_t i = 0; i < t->numel; i++) t->data[i] = (float)v[i];
    lua_setfield(L, res, name);
}

static int l_sample(lua_State *L) {
    lbind_task *lt = lbind_checktask(L, 1);
    const task *t = lt->t;
    lua_Integer n = 1;
    if (!lua_isnoneornil(L, 2)) {
        int ok = 0;
        n = lua_tointegerx(L, 2, &ok);
        if (!ok || lua_type(L, 2) != LUA_TNUMBER || n < 1 || n > SAMPLE_MAX_PROMPTS)
            return luaL_error(L, "t:sample: n must be an integer in [1, %d] (got %s)", SAMPLE_MAX_PROMPTS,
                              luaL_tolstring(L, 2, NULL));
    }
    lua_Integer seed = 0, stream = 0;
    if (!lua_isnoneornil(L, 3)) {
        luaL_checktype(L, 3, LUA_TTABLE);
        lua_pushnil(L);
        while (lua_next(L, 3)) {
            const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";
            if (strcmp(k, "seed") && strcmp(k, "stream"))
                return luaL_error(L, "t:sample: unknown option %s (options: seed, stream)",
                                  luaL_tolstring(L, -2, NULL));
            lua_pop(L, 1);
        }
        seed = opt_int_field(L, 3, "seed", 0);
        stream = opt_int_field(L, 3, "stream", 0);
        if (stream > ((lua_Integer)1 << 62) - 1 - n)
            return luaL_error(L, "t:sample: stream + n must stay below 2^62 (got stream %I)", stream);
    }
    const int B = (int)n, T = task_T(t), d = task_d(t), O = task_out(t);
    const loss_kind loss = task_loss(t);
    /* the buffers below (x, y or tok and ycls, mask, metric, example, and the
     * float copies of the int ones): refused with the estimate before any is
     * made, rather than by the Lua memory limit halfway */
    size_t per_slot = (size_t)d * 4 + 3 * 4 + 4 + (loss == LOSS_CE ? 2 * 4 + 2 * 4 : (size_t)O * 4);
    char who[128];
    snprintf(who, sizeof who, "t:sample: %d prompts x %d tokens", B, T);
    if (icl_budget_check(per_slot * (size_t)B * (size_t)T, who, "the batch")) return luaL_error(L, "%s", icl_error());
    /* every buffer is Lua-owned, so any error below frees it */
    lua_createtable(L, 0, 12);
    int res = lua_gettop(L);
    batch b;
    memset(&b, 0, sizeof b);
    b.d = d;
    b.O = O;
    b.cap_B = B;
    b.cap_T = T;
    b.loss = loss;
    int s3[3] = {B, T, d > 0 ? d : 1}, s2[2] = {B, T}, sy[3] = {B, T, O};
    if (d > 0) {
        b.x = lbind_push_tensor_copy(L, NULL, 3, s3)->data;
        lua_setfield(L, res, "x");
    }
    size_t slots = (size_t)B * (size_t)T;
    if (loss == LOSS_CE) {
        b.tok = lua_newuserdatauv(L, slots * sizeof(int), 0);
        b.ycls = lua_newuserdatauv(L, slots * sizeof(int), 0);
    } else {
        b.y = lbind_push_tensor_copy(L, NULL, 3, sy)->data;
        lua_setfield(L, res, "y");
    }
    b.mask = lbind_push_tensor_copy(L, NULL, 2, s2)->data;
    lua_setfield(L, res, "mask");
    b.metric = lbind_push_tensor_copy(L, NULL, 2, s2)->data;
    lua_setfield(L, res, "metric");
    b.example = lua_newuserdatauv(L, slots * sizeof(int), 0);

    lua_State *owner = lt->L;
    lt->L = L; /* a custom fill runs on this thread for this call */
    icl_status st = task_sample(t, &b, B, (uint64_t)seed, (uint64_t)stream);
    lt->L = owner;
    free(b.scratch); /* the samplers' scratch is the one buffer not owned by Lua */
    if (st) return lbind_fail(L, "t:sample");

    if (loss == LOSS_CE) {
        set_int_tensor(L, res, "tok", b.tok, B, T);
        set_int_tensor(L, res, "ycls", b.ycls, B, T);
    }
    set_int_tensor(L, res, "example", b.example, B, T);
    lua_pushinteger(L, B);
    lua_setfield(L, res, "B");
    lua_pushinteger(L, T);
    lua_setfield(L, res, "T");
    lua_pushinteger(L, seed);
    lua_setfield(L, res, "seed");
    lua_pushinteger(L, stream);
    lua_setfield(L, res, "stream");
    lua_pushvalue(L, 1);
    lua_setfield(L, res, "task");
    lua_settop(L, res);
    return 1;
}

/* ---- fields and the other methods ---------------------------------------------------- */

static const char *metric_name(task_metric_kind k) {
    switch (k) {
    case TASK_METRIC_SIGN_ACC: return "sign_acc";
    case TASK_METRIC_NEAREST_ACC: return "nearest_acc";
    case TASK_METRIC_TOKEN_ACC: return "token_acc";
    default: return "sqerr";
    }
}

static const char *const task_fields[] = {"name", "n_dims", "out", "T", "T_max", "vocab", "examples", "metric",
                                          "norm", "loss", "d_cur", "n_cur", "step", "custom", NULL};

static void push_task_field(lua_State *L, const task *t, const char *k) {
    static const char *const losses[] = {"mse", "bce", "ce"};
    if (!strcmp(k, "name")) lua_pushstring(L, task_get_spec(t)->name);
    else if (!strcmp(k, "n_dims")) lua_pushinteger(L, task_d(t));
    else if (!strcmp(k, "out")) lua_pushinteger(L, task_out(t));
    else if (!strcmp(k, "T")) lua_pushinteger(L, task_T(t));
    else if (!strcmp(k, "T_max")) lua_pushinteger(L, task_T_max(t));
    else if (!strcmp(k, "vocab")) lua_pushinteger(L, task_vocab(t));
    else if (!strcmp(k, "examples")) lua_pushinteger(L, task_examples(t));
    else if (!strcmp(k, "metric")) lua_pushstring(L, metric_name(task_metric(t)));
    else if (!strcmp(k, "norm")) lua_pushnumber(L, task_metric_norm(t));
    else if (!strcmp(k, "loss")) lua_pushstring(L, losses[task_loss(t)]);
    else if (!strcmp(k, "d_cur")) lua_pushinteger(L, task_cur_dims(t));
    else if (!strcmp(k, "n_cur")) lua_pushinteger(L, task_cur_points(t));
    else if (!strcmp(k, "step")) lua_pushinteger(L, (lua_Integer)task_curriculum_steps(t));
    else if (!strcmp(k, "custom")) lua_pushboolean(L, task_get_kind(t) == TASK_CUSTOM);
    else lua_pushnil(L);
}

static int l_task_index(lua_State *L) {
    lbind_task *lt = luaL_checkudata(L, 1, LBIND_TASK_MT);
    lua_pushvalue(L, 2);
    lua_rawget(L, lua_upvalueindex(1));
    if (!lua_isnil(L, -1) || lua_type(L, 2) != LUA_TSTRING) return 1;
    const char *k = lua_tostring(L, 2);
    for (int i = 0; task_fields[i]; i++) {
        if (strcmp(k, task_fields[i])) continue;
        if (!lt->t) return luaL_error(L, "icl.task: task was closed (reading t.%s)", k);
        push_task_field(L, lt->t, k);
        return 1;
    }
    return 1;
}

static int l_task_newindex(lua_State *L) {
    return luaL_error(L, "icl.task: fields are read-only (t.%s = ...); build a new task with icl.task{...}",
                      luaL_tolstring(L, 2, NULL));
}

static int l_task_tostring(lua_State *L) {
    lbind_task *lt = luaL_checkudata(L, 1, LBIND_TASK_MT);
    if (!lt->t) {
        lua_pushliteral(L, "icl.task (closed)");
        return 1;
    }
    char probe[1];
    size_t n = (size_t)task_describe(lt->t, probe, sizeof probe);
    luaL_Buffer b;
    char *p = luaL_buffinitsize(L, &b, n + 1);
    task_describe(lt->t, p, n + 1);
    luaL_addsize(&b, n);
    char tail[160];
    snprintf(tail, sizeof tail, "\n  T = %d tokens (max %d), d = %d, out = %d, metric %s", task_T(lt->t),
             task_T_max(lt->t), task_d(lt->t), task_out(lt->t), metric_name(task_metric(lt->t)));
    luaL_addstring(&b, tail);
    luaL_pushresult(&b);
    return 1;
}

static int l_options(lua_State *L) {
    const task *t = lbind_checktask(L, 1)->t;
    const task_spec *s = task_get_spec(t);
    const char *keys[64];
    int n = task_spec_keys(s, keys, 64);
    if (n > 64) n = 64;
    lua_createtable(L, 0, n + 1);
    lua_pushstring(L, s->name);
    lua_setfield(L, -2, "name");
    for (int i = 0; i < n; i++) {
        double v = 0;
        task_spec_get(s, keys[i], &v);
        if (v == floor(v) && fabs(v) < 9007199254740992.0) lua_pushinteger(L, (lua_Integer)v);
        else lua_pushnumber(L, v);
        lua_setfield(L, -2, keys[i]);
    }
    return 1;
}

static void push_sched(lua_State *L, int start, int end, int inc, int interval) {
    lua_createtable(L, 4, 0);
    int v[4] = {start, end, inc, interval};
    for (int i = 0; i < 4; i++) {
        lua_pushinteger(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int l_curriculum(lua_State *L) {
    const task *t = lbind_checktask(L, 1)->t;
    const task_spec *s = task_get_spec(t);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, task_cur_dims(t));
    lua_setfield(L, -2, "dims");
    lua_pushinteger(L, task_cur_points(t));
    lua_setfield(L, -2, "points");
    lua_pushinteger(L, (lua_Integer)task_curriculum_steps(t));
    lua_setfield(L, -2, "step");
    /* the schedule, in the shape icl.task's curriculum option takes */
    lua_createtable(L, 0, 2);
    push_sched(L, s->dims_start ? s->dims_start : s->n_dims, s->dims_end ? s->dims_end : s->n_dims, s->dims_inc,
               s->dims_interval);
    lua_setfield(L, -2, "dims");
    push_sched(L, s->points_start ? s->points_start : s->n_points, s->points_end ? s->points_end : s->n_points,
               s->points_inc, s->points_interval);
    lua_setfield(L, -2, "points");
    lua_setfield(L, -2, "schedule");
    return 1;
}

/* ---- registration ---------------------------------------------------------------------- */

typedef struct {
    const char *name;
    lua_CFunction fn;
    const char *doc;
} doc_reg;

static const doc_reg methods[] = {
    {"sample", l_sample,
     "t:sample(n = 1, { seed = 0, stream = 0 }) -> { x = (n, T, d) (or tok = (n, T) ids), y = (n, T, O) (ycls for\n"
     "token tasks), mask, metric, example = (n, T), B, T, task }. Prompt i uses rng_make(seed, stream + i - 1)."},
    {"options", l_options, "t:options() -> { name = ..., option = value, ... }: every option this task reads."},
    {"curriculum", l_curriculum,
     "t:curriculum() -> { dims = d_cur, points = n_cur, step = steps, schedule = { dims = {start, end, inc,\n"
     "interval}, points = {...} } }: where the curriculum is now and its schedule."},
    {"close", l_task_close, "t:close() frees the task now; later use raises \"task was closed\"."},
    {NULL, NULL, NULL},
};

static const doc_reg rng_methods[] = {
    {"normal", l_rng_normal, "rng:normal([mean = 0, std = 1]) -> a normal draw."},
    {"uniform", l_rng_uniform, "rng:uniform([lo = 0, hi = 1]) -> a uniform draw in [lo, hi)."},
    {"below", l_rng_below, "rng:below(n) -> a uniform integer in [0, n), without modulo bias."},
    {NULL, NULL, NULL},
};

static void new_meta(lua_State *L, const char *mt_name, const char *doc_prefix, const doc_reg *regs,
                     const char *const *fields, lua_CFunction index) {
    luaL_newmetatable(L, mt_name);
    int mt = lua_gettop(L);
    lua_newtable(L);
    int meth = lua_gettop(L);
    char name[64];
    for (const doc_reg *r = regs; r->name; r++) {
        lua_pushcfunction(L, r->fn);
        snprintf(name, sizeof name, "%s:%s", doc_prefix, r->name);
        lbind_setdoc(L, lua_gettop(L), name, r->doc);
        lua_setfield(L, meth, r->name);
    }
    lua_pushvalue(L, meth);
    lua_setfield(L, mt, "__methods");
    lua_newtable(L);
    for (int i = 0; fields && fields[i]; i++) {
        lua_pushstring(L, fields[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, mt, "__fields");
    if (index) {
        lua_pushvalue(L, meth);
        lua_pushcclosure(L, index, 1);
    } else {
        lua_pushvalue(L, meth);
    }
    lua_setfield(L, mt, "__index");
    lua_settop(L, mt);
}

void lbind_open_task(lua_State *L) {
    int icl = lua_gettop(L);
    new_meta(L, LBIND_TASK_MT, "icl.task", methods, task_fields, l_task_index);
    lua_pushcfunction(L, l_task_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushcfunction(L, l_task_newindex);
    lua_setfield(L, -2, "__newindex");
    lua_pushcfunction(L, l_task_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_task_close);
    lua_setfield(L, -2, "__close");
    lua_settop(L, icl);
    new_meta(L, LBIND_RNG_MT, "icl.rng", rng_methods, NULL, NULL);
    lua_pushcfunction(L, l_rng_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_settop(L, icl);

    lua_pushcfunction(L, l_task_new);
    lbind_setdoc(L, lua_gettop(L), "icl.task",
                 "icl.task{ \"linear_regression\", n_dims = 5, n_points = 20, ... } -> task (see icl.tasks()).\n"
                 "curriculum = { dims = {start, end, inc, interval}, points = {...} }. Custom: icl.task{\n"
                 "\"custom\", n_dims = 3, n_points = 10, norm = 3, fill = function(p) ... return x, y end }; p has\n"
                 "n_points, d, d_cur, index, rng; x is n_points tables of d numbers, y n_points numbers.\n"
                 "Fields: name n_dims out T T_max vocab examples metric norm loss d_cur n_cur step custom.");
    lua_setfield(L, icl, "task");
    lua_pushcfunction(L, l_rng_new);
    lbind_setdoc(L, lua_gettop(L), "icl.rng",
                 "icl.rng(seed, stream = 0) -> the generator rng_make(seed, stream); prompt i of t:sample(n, {seed =\n"
                 "s, stream = k}) fills from icl.rng(s, k + i - 1). Methods :normal(), :uniform(), :below(n).");
    lua_setfield(L, icl, "rng");
}
