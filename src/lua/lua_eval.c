/*
 * lua_eval.c - icl.eval(model, task, opts) and its result object
 * (metatable "icl.evalresult"): per-position curves of a model and the
 * classical baselines on the same held-out prompts (train/evaluate.h).
 *
 *   local e = icl.eval(m, t, { prompts = 1280, baselines = { "least_squares" } })
 *   print(e)                      -- a per-position table of every curve
 *   e.names, e.positions, e.metric, e.n_prompts, e.reference, e.task
 *   e:curve("model")              -- { mean =, std =, lo =, hi =, count = }
 *   e:csv("err.csv");  e:svg("err.svg", "title")
 *
 * A result owns its eval_report and frees it in __gc (a result reached
 * after that, through another object's finalizer, raises "was freed"). Lua
 * index p + 1 of a curve is position p (p in-context examples seen); NaN
 * marks a position no prompt reached. The option parser and the result
 * constructor are shared with lua_trainer.c (tr:eval and run{eval_every}),
 * which also keeps a copy of the last report for the panels
 * (lbind_eval_report_copy).
 *
 * Not here: the evaluation itself (evaluate.c) or the chart (svg.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/interrupt.h"
#include "lua/lbind.h"

/* ---- shared helpers -------------------------------------------------------- */

static const char *const metric_names[] = {"sqerr", "sign_acc", "nearest_acc", "token_acc"};
#define N_METRICS ((int)(sizeof metric_names / sizeof *metric_names))

const char *lbind_metric_name(task_metric_kind k) {
    return (int)k >= 0 && (int)k < N_METRICS ? metric_names[k] : "?";
}

int lbind_fail_core(lua_State *L, const char *where, icl_status st) {
    /* the core names its module ("trainer: ...", "evaluate: ..."); the
     * binding names the Lua function instead, so drop the module's prefix */
    static const char *const prefixes[] = {"trainer: ", "evaluate: ", "optimizer: "};
    char msg[1024];
    const char *e = icl_error();
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
        if (!strncmp(e, prefixes[i], strlen(prefixes[i]))) e += strlen(prefixes[i]);
    snprintf(msg, sizeof msg, "%s", e);
    if (st == ICL_ERR_INTERRUPT) icl_interrupt_clear(); /* whoever reports it clears it */
    return luaL_error(L, "%s: %s", where, msg);
}

/* ---- options ---------------------------------------------------------------- */

static const char *const eval_fields[] = {"prompts", "seed", "baselines", "metric", "batch", NULL};

void lbind_eval_options(lua_State *L, int idx, const char *where, const task *t, lbind_eval_request *req) {
    memset(req, 0, sizeof *req);
    eval_options_default(&req->o, t);
    for (int i = 0; i < req->o.n_baselines; i++) {
        snprintf(req->names[i], sizeof req->names[i], "%s", req->o.baselines[i]);
        req->o.baselines[i] = req->names[i];
    }
    if (lua_isnoneornil(L, idx)) return;
    idx = lua_absindex(L, idx);
    if (!lua_istable(L, idx)) luaL_error(L, "%s: options must be a table (got %s)", where, lbind_typename(L, idx));
    lbind_check_fields(L, idx, where, eval_fields);
    req->o.n_prompts = (int)lbind_field_int(L, idx, where, "prompts", req->o.n_prompts, 1, 10000000);
    req->o.batch = (int)lbind_field_int(L, idx, where, "batch", req->o.batch, 1, 4096);
    req->o.seed = (uint64_t)lbind_field_int(L, idx, where, "seed", (lua_Integer)req->o.seed, 0, LUA_MAXINTEGER);
    lua_getfield(L, idx, "metric");
    if (!lua_isnil(L, -1)) {
        const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
        int k = -1;
        for (int i = 0; s && i < N_METRICS; i++)
            if (!strcmp(s, metric_names[i])) k = i;
        if (k < 0)
            luaL_error(L, "%s: metric must be one of sqerr, sign_acc, nearest_acc, token_acc (got %s)", where,
                       s ? s : lbind_typename(L, -1));
        req->o.metric = (task_metric_kind)k;
    }
    lua_pop(L, 1);
    lua_getfield(L, idx, "baselines");
    if (!lua_isnil(L, -1)) {
        if (!lua_istable(L, -1))
            luaL_error(L, "%s: baselines must be a list of names, e.g. { \"least_squares\" } (got %s)", where,
                       lbind_typename(L, -1));
        lua_Integer n = luaL_len(L, -1);
        if (n > EVAL_MAX_CURVES - 1)
            luaL_error(L, "%s: at most %d baselines (got %d)", where, EVAL_MAX_CURVES - 1, (int)n);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, -1, i);
            if (lua_type(L, -1) != LUA_TSTRING)
                luaL_error(L, "%s: baselines[%d] must be a name (got %s)", where, (int)i, lbind_typename(L, -1));
            size_t len;
            const char *s = lua_tolstring(L, -1, &len);
            if (len >= sizeof req->names[0])
                luaL_error(L, "%s: baselines[%d] is too long to name a baseline", where, (int)i);
            memcpy(req->names[i - 1], s, len + 1);
            req->o.baselines[i - 1] = req->names[i - 1];
            lua_pop(L, 1);
        }
        req->o.n_baselines = (int)n;
    }
    lua_pop(L, 1);
}

/* ---- the result object -------------------------------------------------------- */

/* The userdata is the report itself; user value 1 is a description of the
 * task (a string), used in print(e) and as the default chart title. */
eval_report *lbind_push_evalresult(lua_State *L, const char *desc) {
    eval_report *r = lua_newuserdatauv(L, sizeof *r, 1);
    memset(r, 0, sizeof *r);
    luaL_setmetatable(L, LBIND_EVAL_MT);
    lua_pushstring(L, desc ? desc : "");
    lua_setiuservalue(L, -2, 1);
    return r;
}

static int copy_array(void **dst, const void *src, size_t bytes) {
    *dst = NULL;
    if (!src) return 1;
    *dst = malloc(bytes ? bytes : 1);
    if (!*dst) return 0;
    memcpy(*dst, src, bytes);
    return 1;
}

icl_status lbind_eval_report_copy(eval_report *dst, const eval_report *src) {
    *dst = *src;
    for (int c = 0; c < EVAL_MAX_CURVES; c++) memset(&dst->curves[c], 0, sizeof dst->curves[c]);
    for (int c = 0; c < src->n_curves; c++) {
        const eval_curve *s = &src->curves[c];
        eval_curve *d = &dst->curves[c];
        size_t P = s->positions > 0 ? (size_t)s->positions : 0;
        d->positions = s->positions;
        d->n_prompts = s->n_prompts;
        int ok = copy_array((void **)&d->mean, s->mean, P * sizeof(double)) &&
                 copy_array((void **)&d->std, s->std, P * sizeof(double)) &&
                 copy_array((void **)&d->lo, s->lo, P * sizeof(double)) &&
                 copy_array((void **)&d->hi, s->hi, P * sizeof(double)) &&
                 copy_array((void **)&d->count, s->count, P * sizeof(int));
        if (!ok) {
            eval_report_free(dst);
            return icl_fail(ICL_ERR_NOMEM, "out of memory copying an evaluation report");
        }
    }
    return ICL_OK;
}

double lbind_eval_summary(const eval_report *r) {
    if (r->n_curves < 1) return NAN;
    const eval_curve *c = &r->curves[0];
    double s = 0;
    int n = 0;
    for (int p = 0; p < c->positions; p++)
        if (isfinite(c->mean[p])) {
            s += c->mean[p];
            n++;
        }
    return n ? s / n : NAN;
}

/* The report at idx. One that __gc freed (reachable again only through
 * another object's finalizer) raises instead of reading as empty: __gc
 * replaces the description (user value 1) with false. */
static eval_report *check_result(lua_State *L, int idx) {
    eval_report *r = luaL_checkudata(L, idx, LBIND_EVAL_MT);
    int freed = lua_getiuservalue(L, idx, 1) == LUA_TBOOLEAN;
    lua_pop(L, 1);
    if (freed) luaL_error(L, "icl.evalresult: this result was freed (collected); run icl.eval again");
    return r;
}

static int find_curve(const eval_report *r, const char *name) {
    for (int c = 0; c < r->n_curves; c++)
        if (!strcmp(r->names[c], name)) return c;
    return -1;
}

static void push_names(lua_State *L, const eval_report *r) {
    lua_createtable(L, r->n_curves, 0);
    for (int c = 0; c < r->n_curves; c++) {
        lua_pushstring(L, r->names[c]);
        lua_rawseti(L, -2, c + 1);
    }
}

static void push_doubles(lua_State *L, const double *v, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushnumber(L, v ? v[i] : NAN);
        lua_rawseti(L, -2, i + 1);
    }
}

static int l_curve(lua_State *L) {
    eval_report *r = check_result(L, 1);
    const char *name = luaL_optstring(L, 2, "model");
    int c = find_curve(r, name);
    if (c < 0) {
        luaL_Buffer b;
        luaL_buffinit(L, &b);
        for (int i = 0; i < r->n_curves; i++) {
            if (i) luaL_addstring(&b, ", ");
            luaL_addstring(&b, r->names[i]);
        }
        luaL_pushresult(&b);
        return luaL_error(L, "e:curve: no curve '%s' (curves: %s)", name, lua_tostring(L, -1));
    }
    const eval_curve *cv = &r->curves[c];
    lua_createtable(L, 0, 5);
    push_doubles(L, cv->mean, cv->positions);
    lua_setfield(L, -2, "mean");
    push_doubles(L, cv->std, cv->positions);
    lua_setfield(L, -2, "std");
    push_doubles(L, cv->lo, cv->positions);
    lua_setfield(L, -2, "lo");
    push_doubles(L, cv->hi, cv->positions);
    lua_setfield(L, -2, "hi");
    lua_createtable(L, cv->positions, 0);
    for (int p = 0; p < cv->positions; p++) {
        lua_pushinteger(L, cv->count ? cv->count[p] : 0);
        lua_rawseti(L, -2, p + 1);
    }
    lua_setfield(L, -2, "count");
    return 1;
}

static int l_csv(lua_State *L) {
    eval_report *r = check_result(L, 1);
    const char *path = luaL_checkstring(L, 2);
    icl_status st = eval_report_csv(r, path);
    if (st) return lbind_fail_core(L, "e:csv", st);
    lua_pushvalue(L, 2);
    return 1;
}

static int l_svg(lua_State *L) {
    eval_report *r = check_result(L, 1);
    const char *path = luaL_checkstring(L, 2);
    lua_getiuservalue(L, 1, 1);
    const char *title = luaL_optstring(L, 3, lua_tostring(L, -1));
    icl_status st = eval_report_svg(r, path, title && *title ? title : NULL);
    if (st) return lbind_fail_core(L, "e:svg", st);
    lua_pushvalue(L, 2);
    return 1;
}

static int l_gc(lua_State *L) {
    eval_report *r = luaL_checkudata(L, 1, LBIND_EVAL_MT);
    eval_report_free(r); /* idempotent: it leaves the report empty */
    lua_pushboolean(L, 0); /* marks it freed for check_result */
    lua_setiuservalue(L, 1, 1);
    return 0;
}

/* One cell: the mean at position p of curve c, "-" where there is none. */
static void add_cell(luaL_Buffer *b, const eval_report *r, int c, int p, int width) {
    char cell[64];
    const eval_curve *cv = &r->curves[c];
    if (p < cv->positions && isfinite(cv->mean[p])) snprintf(cell, sizeof cell, "%*.4f", width, cv->mean[p]);
    else snprintf(cell, sizeof cell, "%*s", width, "-");
    luaL_addstring(b, cell);
}

#define SHOW_ROWS 12 /* positions printed in full; beyond, the first and last few */

static int l_tostring(lua_State *L) {
    eval_report *r = luaL_checkudata(L, 1, LBIND_EVAL_MT);
    if (lua_getiuservalue(L, 1, 1) == LUA_TBOOLEAN) {
        lua_pushliteral(L, "icl.evalresult (freed)");
        return 1;
    }
    const char *desc = lua_tostring(L, -1);
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    char line[512];
    if (r->n_curves < 1) {
        luaL_addstring(&b, "icl.evalresult (empty)");
        luaL_pushresult(&b);
        return 1;
    }
    snprintf(line, sizeof line, "icl.evalresult: %s%s%d prompts, metric %s (%s), mean per position\n",
             desc && *desc ? desc : "", desc && *desc ? ", " : "", r->n_prompts, lbind_metric_name(r->metric),
             eval_metric_label(r->metric));
    luaL_addstring(&b, line);
    int width[EVAL_MAX_CURVES], P = 0;
    luaL_addstring(&b, "    k");
    for (int c = 0; c < r->n_curves; c++) {
        width[c] = (int)strlen(r->names[c]) + 2;
        if (width[c] < 10) width[c] = 10;
        snprintf(line, sizeof line, "%*s", width[c], r->names[c]);
        luaL_addstring(&b, line);
        if (r->curves[c].positions > P) P = r->curves[c].positions;
    }
    luaL_addstring(&b, "\n");
    for (int p = 0; p < P; p++) {
        if (P > SHOW_ROWS && p == SHOW_ROWS / 2) {
            luaL_addstring(&b, "  ...\n");
            p = P - SHOW_ROWS / 2;
        }
        snprintf(line, sizeof line, "%5d", p);
        luaL_addstring(&b, line);
        for (int c = 0; c < r->n_curves; c++) add_cell(&b, r, c, p, width[c]);
        luaL_addstring(&b, "\n");
    }
    luaL_addstring(&b, "(e:curve(name) gives mean, std, the 90% band lo/hi and counts; e:csv(path), e:svg(path))");
    luaL_pushresult(&b);
    return 1;
}

static int l_index(lua_State *L) {
    eval_report *r = check_result(L, 1);
    const char *key = lua_tostring(L, 2);
    if (lua_type(L, 2) == LUA_TSTRING) {
        lua_getfield(L, lua_upvalueindex(1), key); /* methods */
        if (!lua_isnil(L, -1)) return 1;
        lua_pop(L, 1);
        if (!strcmp(key, "names")) push_names(L, r);
        else if (!strcmp(key, "positions")) lua_pushinteger(L, r->positions);
        else if (!strcmp(key, "metric")) lua_pushstring(L, lbind_metric_name(r->metric));
        else if (!strcmp(key, "n_prompts")) lua_pushinteger(L, r->n_prompts);
        else if (!strcmp(key, "reference")) lua_pushnumber(L, r->reference);
        else if (!strcmp(key, "task")) lua_getiuservalue(L, 1, 1);
        else lua_pushnil(L);
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

/* ---- icl.eval ------------------------------------------------------------------- */

static int l_eval(lua_State *L) {
    lbind_model *lm = NULL;
    if (!lua_isnoneornil(L, 1)) {
        lm = luaL_testudata(L, 1, LBIND_MODEL_MT);
        if (!lm) return luaL_error(L, "icl.eval: argument 1 must be an icl.model or nil (got %s)", lbind_typename(L, 1));
        if (!lm->m) return luaL_error(L, "icl.eval: model was closed");
        if (lm->busy) return luaL_error(L, "icl.eval: the model is in use by a running step (called from a task's fill?)");
    }
    lbind_task *lt = luaL_testudata(L, 2, LBIND_TASK_MT);
    if (!lt) return luaL_error(L, "icl.eval: argument 2 must be an icl.task (got %s)", lbind_typename(L, 2));
    if (!lt->t) return luaL_error(L, "icl.eval: task was closed");
    if (lt->busy) return luaL_error(L, "icl.eval: the task is in use (called from its own fill?)");
    lbind_eval_request req;
    lbind_eval_options(L, 3, "icl.eval", lt->t, &req);
    char desc[160];
    task_describe(lt->t, desc, sizeof desc);
    eval_report *r = lbind_push_evalresult(L, desc);
    /* a custom task's fill may run Lua code: model and task are busy, and
     * the fill runs on this thread (a coroutine, maybe), as in t:sample */
    lua_State *saved = lt->L;
    if (lm) lm->busy++;
    lt->busy++;
    lt->L = L;
    icl_status st = evaluate(lm ? lm->m : NULL, lt->t, &req.o, r);
    lt->L = saved;
    if (lm) lm->busy--;
    lt->busy--;
    if (st) return lbind_fail_core(L, "icl.eval", st);
    return 1;
}

/* ---- registration ------------------------------------------------------------------ */

typedef struct {
    const char *name;
    lua_CFunction fn;
    const char *doc;
} doc_reg;

static const doc_reg methods[] = {
    {"curve", l_curve,
     "e:curve(name = \"model\") -> { mean =, std =, lo =, hi =, count = }: one curve of the evaluation, index p + 1\n"
     "holding position p (p in-context examples seen). lo/hi are the 90% bootstrap interval of the mean; NaN marks\n"
     "a position no prompt reached."},
    {"csv", l_csv,
     "e:csv(path) -> path: every curve as CSV (position, <name>_mean, _std, _lo, _hi, ...), written atomically."},
    {"svg", l_svg,
     "e:svg(path [, title]) -> path: an SVG line chart of every curve against the number of in-context\n"
     "examples, with the model's 90% band and the reference level (zero predictor or chance) dashed."},
    {NULL, NULL, NULL},
};

void lbind_open_eval(lua_State *L) {
    int icl = lua_gettop(L);
    luaL_newmetatable(L, LBIND_EVAL_MT);
    int mt = lua_gettop(L);
    lua_newtable(L);
    int meth = lua_gettop(L);
    char name[64];
    for (const doc_reg *r = methods; r->name; r++) {
        lua_pushcfunction(L, r->fn);
        snprintf(name, sizeof name, "icl.evalresult:%s", r->name);
        lbind_setdoc(L, lua_gettop(L), name, r->doc);
        lua_setfield(L, meth, r->name);
    }
    lua_pushvalue(L, meth);
    lua_setfield(L, mt, "__methods");
    lua_pushvalue(L, meth);
    lua_pushcclosure(L, l_index, 1);
    lua_setfield(L, mt, "__index");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, mt, "__gc");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, mt, "__tostring");
    static const char *const fields[] = {"names", "positions", "metric", "n_prompts", "reference", "task"};
    lua_createtable(L, 6, 0);
    for (int i = 0; i < 6; i++) {
        lua_pushstring(L, fields[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, mt, "__fields");
    lua_settop(L, icl);

    lua_pushcfunction(L, l_eval);
    lbind_setdoc(L, lua_gettop(L), "icl.eval",
                 "icl.eval(m, t, { prompts = 1280, seed =, batch = 64, baselines = { \"least_squares\", \"knn\",\n"
                 "  \"averaging\" }, metric = \"sqerr\" }) -> e: the model m (or nil: baselines only) and the\n"
                 "baselines scored on the same held-out prompts of task t, per number of in-context examples.\n"
                 "Defaults: the task's baselines (icl.baselines() lists every name) and main metric (t.metric).\n"
                 "print(e) shows a per-position table; fields e.names, e.positions, e.metric, e.n_prompts,\n"
                 "e.reference, e.task; methods e:curve(name), e:csv(path), e:svg(path [, title]).");
    lua_setfield(L, icl, "eval");
}
