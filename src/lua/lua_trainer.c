/*
 * lua_trainer.c - icl.trainer{...}: the trainer object from Lua: its
 * construction, fields, tr:step, tr:eval, tr:save / icl.resume
 * (checkpoints), tr:history; the trainer the panels follow (icl.show,
 * lbind_current_trainer); icl.interrupt; and the table-field helpers the
 * other binding files share. tr:run (its loop, stopping rules, logs and
 * progress line) is in lua_trainer_run.c; what the two share is in
 * lua_trainer_internal.h.
 *
 *   local tr = icl.trainer{ model = m, task = t, lr = 1e-3, batch = 64 }
 *   tr:step(10)                                  -- loss of the last step
 *   tr:run{ max_steps = 5000, until_loss = 0.05, log = "run.csv", eval_every = 500 }
 *   tr.lr = 3e-4                                  -- takes effect at the next step
 *   tr:save("run.safetensors");  local tr2 = icl.resume("run.safetensors")
 *
 * Ownership: the trainer userdata owns the C trainer (optimiser moments,
 * batch, history) and its last evaluation report; its model and task
 * userdata are its user values 1 and 2, so they live as long as it does.
 * They can still be closed explicitly: every method first checks that both
 * are open (and raises "... model was closed" otherwise). While a step or an
 * evaluation runs, the model's and task's `busy` counters are raised, so
 * Lua code running inside a custom task's fill cannot close them or start a
 * nested step on the same model. Steps mark the model dirty; tr:save
 * clears it. The trainer the panels follow is held in the registry (a
 * strong reference: it stays alive until another one replaces it).
 *
 * Between steps, tr:step(n) and tr:run call the TUI's tick hook when one
 * is installed (lbind_set_tick), at most every hook->period seconds, so the
 * panels stay live and F5 / Ctrl-C act during a blocking call.
 *
 * A step that fails (a NaN/Inf loss, gradient or update: trainer.h) raises
 * the core's message, which names the step and where the NaN appeared; the
 * trainer is left as it was before that step and can go on (after, say,
 * lowering tr.lr). A failed tr:save leaves the previous file (st_write is
 * atomic) and the trainer as they were.
 *
 * tr:step(n) is the method and tr.steps the counter of completed steps (one
 * name cannot be both in Lua: tr:step(n) looks up tr.step).
 *
 * Not here: the training step itself (trainer.c), the file format
 * (trainer_io.c), evaluation (evaluate.c, lua_eval.c), tr:run
 * (lua_trainer_run.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/interrupt.h"
#include "lua/lbind.h"
#include "lua/lua_trainer_internal.h"
#include "nn/checkpoint.h"
#include "train/trainer_io.h"

#define CURRENT_KEY "icl.current_trainer" /* registry: the trainer the panels follow */
#define TICK_KEY "icl.tick"    /* registry: the TUI's lbind_tick (a light userdata), or nil */

/* ---- table fields (shared with the other binding files) ------------------ */

void lbind_check_fields(lua_State *L, int idx, const char *where, const char *const *known) {
    idx = lua_absindex(L, idx);
    lua_pushnil(L);
    while (lua_next(L, idx)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *k = lua_tostring(L, -1);
            int ok = 0;
            for (int i = 0; known[i] && !ok; i++) ok = !strcmp(k, known[i]);
            if (ok) continue;
        }
        char list[512];
        size_t used = 0;
        list[0] = 0;
        for (int i = 0; known[i] && used < sizeof list; i++)
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", known[i]);
        if (lua_type(L, -1) == LUA_TSTRING)
            luaL_error(L, "%s: unknown field '%s' (fields: %s)", where, lua_tostring(L, -1), list);
        const char *kind = luaL_typename(L, -1);
        luaL_error(L, "%s: unexpected %s key %s (fields are named: %s)", where, kind, luaL_tolstring(L, -1, NULL),
                   list);
    }
}

/* The type of the value at idx for messages: "icl.task" for our objects
 * (their metatable's __name), else Lua's type name. */
const char *lbind_typename(lua_State *L, int idx) {
    if (lua_type(L, idx) == LUA_TUSERDATA && luaL_getmetafield(L, idx, "__name") == LUA_TSTRING) {
        const char *n = lua_tostring(L, -1);
        lua_pop(L, 1); /* the name stays alive in the metatable */
        return n;
    }
    return luaL_typename(L, idx);
}

/* "(got 3.5)", "(got 'abc')", "(got table)". */
static const char *got(lua_State *L, int idx) {
    idx = lua_absindex(L, idx);
    switch (lua_type(L, idx)) {
    case LUA_TNUMBER: return luaL_tolstring(L, idx, NULL);
    case LUA_TSTRING: return lua_pushfstring(L, "'%s'", lua_tostring(L, idx));
    default: return lbind_typename(L, idx);
    }
}

lua_Integer lbind_field_int(lua_State *L, int idx, const char *where, const char *key, lua_Integer def,
                            lua_Integer lo, lua_Integer hi) {
    lua_getfield(L, idx, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    int ok = 0;
    lua_Integer v = lua_type(L, -1) == LUA_TNUMBER ? lua_tointegerx(L, -1, &ok) : 0;
    if (!ok || v < lo || v > hi) {
        if (hi == LUA_MAXINTEGER)
            luaL_error(L, "%s: %s must be an integer >= %I (got %s)", where, key, lo, got(L, -1));
        luaL_error(L, "%s: %s must be an integer in [%I, %I] (got %s)", where, key, lo, hi, got(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

double lbind_field_num(lua_State *L, int idx, const char *where, const char *key, double def, double lo, double hi) {
    lua_getfield(L, idx, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    double v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : NAN;
    if (!isfinite(v) || v < lo || v > hi) {
        if (isinf(hi) && isinf(lo)) luaL_error(L, "%s: %s must be a finite number (got %s)", where, key, got(L, -1));
        if (isinf(hi)) luaL_error(L, "%s: %s must be a number >= %f (got %s)", where, key, lo, got(L, -1));
        luaL_error(L, "%s: %s must be a number in [%f, %f] (got %s)", where, key, lo, hi, got(L, -1));
    }
    lua_pop(L, 1);
    return v;
}

/* A string field that must be one of `names` (NULL-terminated); def if nil.
 * Returns the index into names. */
static int field_choice(lua_State *L, int idx, const char *where, const char *key, int def,
                        const char *const *names) {
    lua_getfield(L, idx, key);
    if (lua_isnil(L, -1)) {
        lua_pop(L, 1);
        return def;
    }
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    for (int i = 0; s && names[i]; i++)
        if (!strcmp(s, names[i])) {
            lua_pop(L, 1);
            return i;
        }
    char list[256];
    size_t used = 0;
    list[0] = 0;
    for (int i = 0; names[i] && used < sizeof list; i++)
        used += (size_t)snprintf(list + used, sizeof list - used, "%s\"%s\"", i ? " | " : "", names[i]);
    return luaL_error(L, "%s: %s must be %s (got %s)", where, key, list, got(L, -1));
}

/* ---- the trainer object ---------------------------------------------------- */

/* The trainer at idx, open, with its model and task open: [out] *plm, *plt. */
lbind_trainer *ltrainer_check(lua_State *L, int idx, const char *where, lbind_model **plm, lbind_task **plt) {
    lbind_trainer *ut = luaL_testudata(L, idx, LBIND_TRAINER_MT);
    if (!ut) luaL_error(L, "%s: expected an icl.trainer (got %s)", where, lbind_typename(L, idx));
    if (!ut->live) luaL_error(L, "%s: trainer was closed", where);
    lua_getiuservalue(L, idx, 1);
    lbind_model *lm = luaL_testudata(L, -1, LBIND_MODEL_MT);
    lua_getiuservalue(L, idx, 2);
    lbind_task *lt = luaL_testudata(L, -1, LBIND_TASK_MT);
    lua_pop(L, 2); /* both stay alive: they are user values of the trainer */
    if (!lm || !lm->m || lm->m != ut->tr.m) luaL_error(L, "%s: the trainer's model was closed", where);
    if (!lt || !lt->t || lt->t != ut->tr.t) luaL_error(L, "%s: the trainer's task was closed", where);
    if (plm) *plm = lm;
    if (plt) *plt = lt;
    return ut;
}

lbind_trainer *lbind_checktrainer(lua_State *L, int idx) { return ltrainer_check(L, idx, "icl.trainer", NULL, NULL); }

/* No step or evaluation may start while one is running on this model or
 * task (Lua code inside a custom task's fill runs in the middle of one). */
void ltrainer_check_idle(lua_State *L, const lbind_model *lm, const lbind_task *lt, const char *where) {
    if (lm->busy || lt->busy)
        luaL_error(L, "%s: the %s is in use by a running step or evaluation (called from a task's fill?)", where,
                   lm->busy ? "model" : "task");
}

ltrainer_busy ltrainer_enter_busy(lua_State *L, lbind_model *lm, lbind_task *lt) {
    ltrainer_busy g = {lm, lt, lt->L};
    lm->busy++;
    lt->busy++;
    lt->L = L;
    return g;
}

void ltrainer_leave_busy(ltrainer_busy g) {
    g.lm->busy--;
    g.lt->busy--;
    g.lt->L = g.saved_L;
}

icl_status ltrainer_step_once(lua_State *L, lbind_trainer *ut, lbind_model *lm, lbind_task *lt) {
    ltrainer_busy g = ltrainer_enter_busy(L, lm, lt);
    icl_status st = trainer_step(&ut->tr);
    ltrainer_leave_busy(g);
    if (st == ICL_OK) lm->dirty = 1;
    return st;
}

/* Raise for a failed step (or a run's evaluation): a Ctrl-C that reached
 * the core (through a custom task's fill or an evaluation) reads as one
 * caught between steps, "interrupted at step N". */
int ltrainer_fail_step(lua_State *L, const char *where, icl_status st, const lbind_trainer *ut) {
    if (st != ICL_ERR_INTERRUPT) return lbind_fail_core(L, where, st);
    icl_interrupt_clear();
    return luaL_error(L, "%s: interrupted at step %I", where, (lua_Integer)ut->tr.step);
}

/* Take ownership of *r as the trainer's last evaluation and add it to the
 * eval history (the oldest entry is dropped when the history is full). */
void ltrainer_remember_eval(lbind_trainer *ut, eval_report *r) {
    if (ut->has_eval) eval_report_free(&ut->last_eval);
    ut->last_eval = *r;
    memset(r, 0, sizeof *r);
    ut->has_eval = 1;
    ut->eval_step = ut->tr.step;
    if (ut->n_eval_hist == LBIND_EVAL_HIST) {
        memmove(ut->eval_hist_step, ut->eval_hist_step + 1, sizeof(long) * (LBIND_EVAL_HIST - 1));
        memmove(ut->eval_hist_value, ut->eval_hist_value + 1, sizeof(double) * (LBIND_EVAL_HIST - 1));
        ut->n_eval_hist--;
    }
    ut->eval_hist_step[ut->n_eval_hist] = ut->tr.step;
    ut->eval_hist_value[ut->n_eval_hist] = lbind_eval_summary(&ut->last_eval);
    ut->n_eval_hist++;
}

static void release(lbind_trainer *ut) {
    if (ut->live) trainer_free(&ut->tr);
    if (ut->has_eval) eval_report_free(&ut->last_eval);
    ut->live = 0;
    ut->has_eval = 0;
}

/* ---- the trainer the panels follow ------------------------------------------ */

lbind_trainer *lbind_current_trainer(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, CURRENT_KEY);
    lbind_trainer *ut = luaL_testudata(L, -1, LBIND_TRAINER_MT);
    lbind_model *lm = NULL;
    lbind_task *lt = NULL;
    if (ut && ut->live) {
        lua_getiuservalue(L, -1, 1);
        lm = luaL_testudata(L, -1, LBIND_MODEL_MT);
        lua_getiuservalue(L, -2, 2);
        lt = luaL_testudata(L, -1, LBIND_TASK_MT);
        lua_pop(L, 2);
    }
    lua_pop(L, 1);
    if (!ut || !ut->live || !lm || lm->m != ut->tr.m || !lt || lt->t != ut->tr.t) return NULL;
    return ut;
}

void lbind_set_current_trainer(lua_State *L, int idx) {
    lua_pushvalue(L, idx);
    lua_setfield(L, LUA_REGISTRYINDEX, CURRENT_KEY);
}

double ltrainer_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the TUI's tick hook --------------------------------------------------------- */

void lbind_set_tick(lua_State *L, lbind_tick *t) {
    if (t) lua_pushlightuserdata(L, t);
    else lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, TICK_KEY);
}

/* Between two steps of tr:step / tr:run: the hook, if one is installed
 * and its period has passed (a registry lookup and a clock read otherwise). */
void ltrainer_tick(lua_State *L, const lbind_trainer *ut, long target) {
    lua_getfield(L, LUA_REGISTRYINDEX, TICK_KEY);
    lbind_tick *k = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!k || !k->fn || ltrainer_now() - k->last < k->period) return;
    k->fn(k, L, ut, target);
    k->last = ltrainer_now();
}

/* ---- icl.trainer{...} ----------------------------------------------------------- */

static const char *const trainer_fields[] = {"model", "task", "lr", "batch", "seed", "optimizer", "weight_decay",
                                             "clip", "schedule", "warmup", "total", "min_lr", "beta1", "beta2",
                                             "eps", NULL};
static const char *const optimizer_names[] = {"adam", "adamw", NULL};
static const char *const schedule_names[] = {"constant", "warmup", "cosine", NULL};

/* Field `key` of the table at idx as an open model or task userdata. */
static void *field_object(lua_State *L, int idx, const char *key, const char *mt, const char *what) {
    lua_getfield(L, idx, key);
    if (lua_isnil(L, -1)) luaL_error(L, "icl.trainer: %s is required (an %s)", key, what);
    void *p = luaL_testudata(L, -1, mt);
    if (!p) luaL_error(L, "icl.trainer: %s must be an %s (got %s)", key, what, lbind_typename(L, -1));
    return p; /* left on the stack */
}

/* Push a new trainer userdata, not yet live, holding the values at
 * model_idx and task_idx as user values 1 and 2. */
static lbind_trainer *push_trainer(lua_State *L, int model_idx, int task_idx) {
    model_idx = lua_absindex(L, model_idx);
    task_idx = lua_absindex(L, task_idx);
    lbind_trainer *ut = lua_newuserdatauv(L, sizeof *ut, 2);
    memset(ut, 0, sizeof *ut);
    luaL_setmetatable(L, LBIND_TRAINER_MT);
    lua_pushvalue(L, model_idx);
    lua_setiuservalue(L, -2, 1);
    lua_pushvalue(L, task_idx);
    lua_setiuservalue(L, -2, 2);
    return ut;
}

static int l_trainer_new(lua_State *L) {
    const char *W = "icl.trainer";
    if (!lua_istable(L, 1))
        return luaL_error(L, "%s: expects a table of fields, e.g. icl.trainer{ model = m, task = t } (got %s)", W,
                          lbind_typename(L, 1));
    lua_settop(L, 1);
    lbind_check_fields(L, 1, W, trainer_fields);
    lbind_model *lm = field_object(L, 1, "model", LBIND_MODEL_MT, "icl.model"); /* 2 */
    lbind_task *lt = field_object(L, 1, "task", LBIND_TASK_MT, "icl.task");     /* 3 */
    if (!lm->m) return luaL_error(L, "%s: model was closed", W);
    if (!lt->t) return luaL_error(L, "%s: task was closed", W);
    optim_config oc;
    optim_config_default(&oc);
    oc.lr = (float)lbind_field_num(L, 1, W, "lr", 1e-3, 0, HUGE_VAL);
    int B = (int)lbind_field_int(L, 1, W, "batch", 64, 1, 65536);
    lua_Integer seed = lbind_field_int(L, 1, W, "seed", 1, 0, LUA_MAXINTEGER);
    oc.decoupled = field_choice(L, 1, W, "optimizer", 0, optimizer_names);
    oc.weight_decay = (float)lbind_field_num(L, 1, W, "weight_decay", 0, 0, HUGE_VAL);
    oc.clip = (float)lbind_field_num(L, 1, W, "clip", 10, 0, HUGE_VAL);
    oc.schedule = (lr_schedule)field_choice(L, 1, W, "schedule", 0, schedule_names);
    oc.warmup = (long)lbind_field_int(L, 1, W, "warmup", 0, 0, LUA_MAXINTEGER);
    oc.total = (long)lbind_field_int(L, 1, W, "total", 0, 0, LUA_MAXINTEGER);
    oc.min_lr = (float)lbind_field_num(L, 1, W, "min_lr", 0, 0, HUGE_VAL);
    double b1 = lbind_field_num(L, 1, W, "beta1", 0.9, 0, 1), b2 = lbind_field_num(L, 1, W, "beta2", 0.999, 0, 1);
    if (b1 >= 1) return luaL_error(L, "%s: beta1 must be in [0, 1) (got %f)", W, b1);
    if (b2 >= 1) return luaL_error(L, "%s: beta2 must be in [0, 1) (got %f)", W, b2);
    double eps = lbind_field_num(L, 1, W, "eps", 1e-8, 0, HUGE_VAL);
    if (!(eps > 0)) return luaL_error(L, "%s: eps must be a number > 0 (got %f)", W, eps);
    oc.beta1 = (float)b1;
    oc.beta2 = (float)b2;
    oc.eps = (float)eps;
    icl_status st = optim_config_validate(&oc);
    if (st) return lbind_fail_core(L, W, st);
    ltrainer_check_idle(L, lm, lt, W);
    lbind_trainer *ut = push_trainer(L, 2, 3);
    st = trainer_init(&ut->tr, lm->m, lt->t, &oc, B, (uint64_t)seed);
    if (st) return lbind_fail_core(L, W, st); /* ut holds nothing: collected */
    ut->live = 1;
    lbind_set_current_trainer(L, -1);
    return 1;
}

/* ---- tr:step ----------------------------------------------------------------------- */

static int l_step(lua_State *L) {
    lbind_model *lm;
    lbind_task *lt;
    lbind_trainer *ut = ltrainer_check(L, 1, "tr:step", &lm, &lt);
    lua_Integer n = 1;
    if (!lua_isnoneornil(L, 2)) {
        int ok = 0;
        n = lua_type(L, 2) == LUA_TNUMBER ? lua_tointegerx(L, 2, &ok) : 0;
        if (!ok || n < 1) return luaL_error(L, "tr:step: n must be an integer >= 1 (got %s)", got(L, 2));
    }
    ltrainer_check_idle(L, lm, lt, "tr:step");
    for (lua_Integer i = 0; i < n; i++) {
        if (icl_interrupt_pending()) {
            icl_interrupt_clear();
            return luaL_error(L, "tr:step: interrupted at step %I", (lua_Integer)ut->tr.step);
        }
        icl_status st = ltrainer_step_once(L, ut, lm, lt);
        if (st) return ltrainer_fail_step(L, "tr:step", st, ut);
        if (i + 1 < n) ltrainer_tick(L, ut, ut->tr.step + (long)(n - 1 - i));
    }
    lua_pushnumber(L, ut->tr.loss);
    return 1;
}

/* ---- tr:eval, tr:save, icl.resume ------------------------------------------------- */

static int l_eval(lua_State *L) {
    lbind_model *lm;
    lbind_task *lt;
    lbind_trainer *ut = ltrainer_check(L, 1, "tr:eval", &lm, &lt);
    ltrainer_check_idle(L, lm, lt, "tr:eval");
    lbind_eval_request req;
    lbind_eval_options(L, 2, "tr:eval", lt->t, &req);
    char desc[160];
    task_describe(lt->t, desc, sizeof desc);
    eval_report *r = lbind_push_evalresult(L, desc);
    ltrainer_busy g = ltrainer_enter_busy(L, lm, lt);
    icl_status st = evaluate(lm->m, lt->t, &req.o, r);
    ltrainer_leave_busy(g);
    if (st) return lbind_fail_core(L, "tr:eval", st);
    eval_report copy;
    if ((st = lbind_eval_report_copy(&copy, r))) return lbind_fail_core(L, "tr:eval", st);
    ltrainer_remember_eval(ut, &copy);
    return 1;
}

static int l_save(lua_State *L) {
    lbind_model *lm;
    lbind_trainer *ut = ltrainer_check(L, 1, "tr:save", &lm, NULL);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "tr:save: path must be a string (got %s)", lbind_typename(L, 2));
    icl_status st = trainer_io_save(&ut->tr, lua_tostring(L, 2));
    if (st) return lbind_fail_core(L, "tr:save", st);
    lm->dirty = 0;
    lua_pushvalue(L, 2);
    return 1;
}

/* Push icl.task{ name, option = value, ... } for a saved spec (the task
 * binding builds it, so it is an ordinary task object). */
static void push_task_from_spec(lua_State *L, const task_spec *s) {
    lua_getfield(L, lua_upvalueindex(1), "task");
    if (!lua_isfunction(L, -1)) luaL_error(L, "icl.resume: icl.task is missing");
    const char *keys[64];
    int nk = task_spec_keys(s, keys, 64);
    lua_createtable(L, 1, nk);
    lua_pushstring(L, s->name);
    lua_rawseti(L, -2, 1);
    for (int i = 0; i < nk && i < 64; i++) {
        double v = 0;
        task_spec_get(s, keys[i], &v);
        if (v == floor(v) && fabs(v) < 9007199254740992.0) lua_pushinteger(L, (lua_Integer)v);
        else lua_pushnumber(L, v);
        lua_setfield(L, -2, keys[i]);
    }
    lua_call(L, 1, 1);
}

static int l_resume(lua_State *L) {
    const char *W = "icl.resume";
    if (lua_type(L, 1) != LUA_TSTRING)
        return luaL_error(L, "%s: path must be a string (got %s)", W, lbind_typename(L, 1));
    const char *path = lua_tostring(L, 1);
    lua_settop(L, 2);
    if (!lua_isnil(L, 2)) {
        lbind_task *given = luaL_testudata(L, 2, LBIND_TASK_MT);
        if (!given) return luaL_error(L, "%s: argument 2 must be an icl.task or nil (got %s)", W, lbind_typename(L, 2));
        if (!given->t) return luaL_error(L, "%s: task was closed", W);
    }
    /* the metadata first: nothing is built for a file that is not a trainer */
    st_file *f = NULL;
    trainer_meta meta;
    icl_status st = checkpoint_open(path, &f);
    if (!st) st = trainer_io_read_meta(f, path, &meta);
    st_close(f);
    f = NULL;
    if (st) return lbind_fail_core(L, W, st);
    if (lua_isnil(L, 2)) {
        if (meta.task.kind == TASK_CUSTOM)
            return luaL_error(L,
                              "%s: %s was trained on a custom task; its prompts come from a Lua fill function, which "
                              "a file cannot hold: build the task again and pass it, icl.resume(path, task)",
                              W, path);
        push_task_from_spec(L, &meta.task);
        lua_replace(L, 2);
    }
    lbind_task *lt = luaL_testudata(L, 2, LBIND_TASK_MT);
    if (!lt || !lt->t) return luaL_error(L, "%s: icl.task did not return a task", W);
    lbind_model *lm = lbind_push_model(L, NULL); /* 3 */
    lbind_trainer *ut = push_trainer(L, 3, 2); /* 4 */
    /* from here to the end of the C calls nothing raises: f is freed on every path */
    st = checkpoint_open(path, &f);
    if (!st) st = checkpoint_read_model(f, path, &lm->m); /* owned by the model object from here */
    if (!st) st = trainer_io_restore(&ut->tr, f, path, lm->m, lt->t, &meta);
    st_close(f);
    if (st) return lbind_fail_core(L, W, st);
    ut->live = 1;
    lbind_set_current_trainer(L, 4);
    return 1;
}

/* ---- other methods ------------------------------------------------------------------ */

static void push_longs(lua_State *L, const long *v, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushinteger(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static void push_doubles(lua_State *L, const double *v, int n) {
    lua_createtable(L, n, 0);
    for (int i = 0; i < n; i++) {
        lua_pushnumber(L, v[i]);
        lua_rawseti(L, -2, i + 1);
    }
}

static int l_history(lua_State *L) {
    lbind_trainer *ut = ltrainer_check(L, 1, "tr:history", NULL, NULL);
    const loss_history *h = &ut->tr.hist;
    lua_createtable(L, 0, 4);
    push_longs(L, h->step, h->n);
    lua_setfield(L, -2, "step");
    push_doubles(L, h->loss, h->n);
    lua_setfield(L, -2, "loss");
    lua_pushinteger(L, h->stride);
    lua_setfield(L, -2, "stride");
    lua_createtable(L, 0, 2);
    push_longs(L, ut->eval_hist_step, ut->n_eval_hist);
    lua_setfield(L, -2, "step");
    push_doubles(L, ut->eval_hist_value, ut->n_eval_hist);
    lua_setfield(L, -2, "value");
    lua_setfield(L, -2, "eval");
    return 1;
}

static int l_close(lua_State *L) {
    lbind_trainer *ut = luaL_checkudata(L, 1, LBIND_TRAINER_MT);
    if (ut->live) {
        lua_getiuservalue(L, 1, 1);
        lbind_model *lm = luaL_testudata(L, -1, LBIND_MODEL_MT);
        lua_pop(L, 1);
        if (lm && lm->busy && lm->m == ut->tr.m)
            return luaL_error(L, "tr:close: the trainer is running a step (close it after the call returns)");
    }
    release(ut);
    return 0;
}

static int l_gc(lua_State *L) {
    release(luaL_checkudata(L, 1, LBIND_TRAINER_MT));
    return 0;
}

static const char *const field_names[] = {"steps", "loss", "grad_norm", "lr", "current_lr", "batch", "seed",
                                          "model", "task", "optimizer", "schedule", "clip", "weight_decay",
                                          "last_eval", "eval_step", "closed", NULL};

static int l_index(lua_State *L) {
    lbind_trainer *ut = luaL_checkudata(L, 1, LBIND_TRAINER_MT);
    if (lua_type(L, 2) != LUA_TSTRING) return 0;
    const char *k = lua_tostring(L, 2);
    lua_getfield(L, lua_upvalueindex(1), k); /* a method? */
    if (!lua_isnil(L, -1)) return 1;
    lua_pop(L, 1);
    if (!strcmp(k, "closed")) {
        lua_pushboolean(L, !ut->live);
        return 1;
    }
    int known = 0;
    for (int i = 0; field_names[i] && !known; i++) known = !strcmp(k, field_names[i]);
    if (!known) return 0; /* nil, as for any absent field */
    char where[48];
    snprintf(where, sizeof where, "tr.%s", k);
    ltrainer_check(L, 1, where, NULL, NULL);
    const trainer *tr = &ut->tr;
    if (!strcmp(k, "steps")) lua_pushinteger(L, tr->step);
    else if (!strcmp(k, "loss")) lua_pushnumber(L, tr->loss);
    else if (!strcmp(k, "grad_norm")) lua_pushnumber(L, tr->grad_norm);
    else if (!strcmp(k, "lr")) lua_pushnumber(L, tr->opt.cfg.lr);
    else if (!strcmp(k, "current_lr")) lua_pushnumber(L, tr->lr);
    else if (!strcmp(k, "batch")) lua_pushinteger(L, tr->B);
    else if (!strcmp(k, "seed")) lua_pushinteger(L, (lua_Integer)tr->seed);
    else if (!strcmp(k, "model")) lua_getiuservalue(L, 1, 1);
    else if (!strcmp(k, "task")) lua_getiuservalue(L, 1, 2);
    else if (!strcmp(k, "optimizer")) lua_pushstring(L, optimizer_names[tr->opt.cfg.decoupled ? 1 : 0]);
    else if (!strcmp(k, "schedule")) lua_pushstring(L, schedule_names[tr->opt.cfg.schedule]);
    else if (!strcmp(k, "clip")) lua_pushnumber(L, tr->opt.cfg.clip);
    else if (!strcmp(k, "weight_decay")) lua_pushnumber(L, tr->opt.cfg.weight_decay);
    else if (!strcmp(k, "eval_step")) {
        if (ut->has_eval) lua_pushinteger(L, ut->eval_step);
        else lua_pushnil(L);
    } else if (!strcmp(k, "last_eval")) {
        if (!ut->has_eval) {
            lua_pushnil(L);
            return 1;
        }
        char desc[160];
        task_describe(tr->t, desc, sizeof desc);
        eval_report *r = lbind_push_evalresult(L, desc);
        icl_status st = lbind_eval_report_copy(r, &ut->last_eval);
        if (st) return lbind_fail_core(L, "tr.last_eval", st);
    }
    return 1;
}

static int l_newindex(lua_State *L) {
    const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : "?";
    int settable = !strcmp(k, "lr") || !strcmp(k, "clip");
    if (!settable) {
        for (int i = 0; field_names[i]; i++)
            if (!strcmp(k, field_names[i])) return luaL_error(L, "tr.%s is read-only (settable: tr.lr, tr.clip)", k);
        return luaL_error(L, "icl.trainer has no field '%s' (settable: tr.lr, tr.clip)", k);
    }
    char where[16];
    snprintf(where, sizeof where, "tr.%s", k);
    lbind_trainer *ut = ltrainer_check(L, 1, where, NULL, NULL);
    double v = lua_type(L, 3) == LUA_TNUMBER ? lua_tonumber(L, 3) : NAN;
    if (!isfinite(v) || v < 0) return luaL_error(L, "%s must be a number >= 0 (got %s)", where, got(L, 3));
    optim_config c = ut->tr.opt.cfg;
    if (!strcmp(k, "lr")) c.lr = (float)v;
    else c.clip = (float)v;
    icl_status st = optim_config_validate(&c);
    if (st) return lbind_fail_core(L, where, st);
    ut->tr.opt.cfg = c; /* read by the next step's update */
    return 0;
}

static int l_tostring(lua_State *L) {
    lbind_trainer *ut = luaL_checkudata(L, 1, LBIND_TRAINER_MT);
    if (!ut->live) {
        lua_pushstring(L, "icl.trainer (closed)");
        return 1;
    }
    lua_getiuservalue(L, 1, 1);
    lbind_model *lm = luaL_testudata(L, -1, LBIND_MODEL_MT);
    lua_getiuservalue(L, 1, 2);
    lbind_task *lt = luaL_testudata(L, -1, LBIND_TASK_MT);
    const trainer *tr = &ut->tr;
    const optim_config *c = &tr->opt.cfg;
    char model_s[96] = "model closed", task_s[200] = "task closed";
    if (lm && lm->m == tr->m)
        snprintf(model_s, sizeof model_s, "%s, d_model %d, %d blocks, %zu parameters%s", tr->m->spec.arch,
                 tr->m->spec.d_model, tr->m->spec.n_blocks, tr->m->n_params, lm->dirty ? " (unsaved)" : "");
    if (lt && lt->t == tr->t) task_describe(tr->t, task_s, sizeof task_s);
    char buf[640];
    snprintf(buf, sizeof buf,
             "icl.trainer: step %ld, loss %.6g, grad_norm %.4g\n  %s lr %g (%s), clip %g, batch %d, seed %llu\n"
             "  model %s\n  task  %s",
             tr->step, tr->loss, tr->grad_norm, optimizer_names[c->decoupled ? 1 : 0], (double)c->lr,
             schedule_names[c->schedule], (double)c->clip, tr->B, (unsigned long long)tr->seed, model_s, task_s);
    lua_pushstring(L, buf);
    return 1;
}

/* ---- module functions ------------------------------------------------------------------ */

static int l_show(lua_State *L) {
    if (lua_isnoneornil(L, 1)) {
        lbind_trainer *ut = lbind_current_trainer(L);
        if (ut) lua_getfield(L, LUA_REGISTRYINDEX, CURRENT_KEY);
        else lua_pushnil(L);
        return 1;
    }
    ltrainer_check(L, 1, "icl.show", NULL, NULL);
    lbind_set_current_trainer(L, 1);
    lua_settop(L, 1);
    return 1;
}

static int l_interrupt(lua_State *L) {
    (void)L;
    icl_interrupt_request();
    return 0;
}

/* ---- registration ------------------------------------------------------------------------ */

typedef struct {
    const char *name;
    lua_CFunction fn;
    const char *doc;
} doc_reg;

static const doc_reg methods[] = {
    {"step", l_step,
     "tr:step(n = 1) -> loss of the last step: n optimiser steps, each on a fresh batch (prompts drawn from the\n"
     "trainer's seed and the step number, so a run is reproducible). Ctrl-C stops at the next step boundary\n"
     "(\"interrupted at step N\"); a step whose loss or gradient is not finite (or whose update would make a\n"
     "weight NaN/Inf) raises, naming the step and the first block where it appeared, and changes nothing."},
    {"run", ltrainer_run, ltrainer_run_doc},
    {"eval", l_eval,
     "tr:eval{ prompts =, seed =, baselines =, metric = } -> e: icl.eval(tr.model, tr.task, opts), also kept as\n"
     "tr.last_eval for the panels and added to tr:history().eval."},
    {"save", l_save,
     "tr:save(path) -> path: a checkpoint (safetensors) with the weights, the optimizer's moments and config, the\n"
     "step, seed, batch and task spec; icl.resume(path) continues it bit for bit. Clears the model's unsaved mark.\n"
     "Atomic: a failed save (disk full, missing or read-only folder) or a kill leaves any previous file at path\n"
     "as it was; the error names the path and the reason, and the trainer is unchanged."},
    {"history", l_history,
     "tr:history() -> { step = {...}, loss = {...}, stride =, eval = { step = {...}, value = {...} } }: the loss\n"
     "history (entries average `stride` steps once a long run filled it) and the mean model metric of each\n"
     "evaluation."},
    {"close", l_close, "tr:close(): free the trainer's optimizer state and buffers now (the model and task stay)."},
    {NULL, NULL, NULL},
};

void lbind_open_trainer(lua_State *L) {
    int icl = lua_gettop(L);
    ltrainer_open_run(L);

    luaL_newmetatable(L, LBIND_TRAINER_MT);
    int mt = lua_gettop(L);
    lua_newtable(L);
    int meth = lua_gettop(L);
    char name[64];
    for (const doc_reg *r = methods; r->name; r++) {
        lua_pushcfunction(L, r->fn);
        snprintf(name, sizeof name, "icl.trainer:%s", r->name);
        lbind_setdoc(L, lua_gettop(L), name, r->doc);
        lua_setfield(L, meth, r->name);
    }
    lua_pushvalue(L, meth);
    lua_setfield(L, mt, "__methods");
    lua_pushvalue(L, meth);
    lua_pushcclosure(L, l_index, 1);
    lua_setfield(L, mt, "__index");
    lua_pushcfunction(L, l_newindex);
    lua_setfield(L, mt, "__newindex");
    lua_pushcfunction(L, l_gc);
    lua_setfield(L, mt, "__gc");
    lua_pushcfunction(L, l_close);
    lua_setfield(L, mt, "__close");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, mt, "__tostring");
    lua_newtable(L);
    for (int i = 0; field_names[i]; i++) {
        lua_pushstring(L, field_names[i]);
        lua_rawseti(L, -2, i + 1);
    }
    lua_setfield(L, mt, "__fields");
    lua_settop(L, icl);


    lua_pushcfunction(L, l_trainer_new);
    lbind_setdoc(L, lua_gettop(L), "icl.trainer",
                 "icl.trainer{ model = m, task = t, lr = 1e-3, batch = 64, seed = 1, optimizer = \"adam\" | \"adamw\",\n"
                 "  weight_decay = 0, clip = 10, schedule = \"constant\" | \"warmup\" | \"cosine\", warmup = 0, total = 0,\n"
                 "  min_lr = 0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8 } -> tr (the values shown are the defaults)\n"
                 "Trains m on fresh prompts of t (they must fit: n_dims, n_out, vocab, positions). It becomes the\n"
                 "trainer the panels follow. Fields: tr.steps (completed), tr.loss, tr.grad_norm, tr.lr (peak learning rate,\n"
                 "assignable live: tr.lr = 3e-4), tr.current_lr (used by the last step), tr.clip (assignable), tr.batch,\n"
                 "tr.seed, tr.model, tr.task, tr.optimizer, tr.schedule, tr.weight_decay, tr.last_eval, tr.eval_step,\n"
                 "tr.closed. Methods: tr:step(n), tr:run{...}, tr:eval{...}, tr:save(path), tr:history(), tr:close().");
    lua_setfield(L, icl, "trainer");
    lua_pushvalue(L, icl);
    lua_pushcclosure(L, l_resume, 1);
    lbind_setdoc(L, lua_gettop(L), "icl.resume",
                 "icl.resume(path [, task]) -> tr: a new trainer continuing a checkpoint of tr:save bit for bit (its\n"
                 "model is loaded and its task rebuilt from the file). A custom (Lua) task cannot be rebuilt from a\n"
                 "file: build it again and pass it; it must have the same options (its curriculum is moved to\n"
                 "the saved step).");
    lua_setfield(L, icl, "resume");
    lua_pushcfunction(L, l_show);
    lbind_setdoc(L, lua_gettop(L), "icl.show",
                 "icl.show(tr) -> tr: make tr the trainer the panels follow (the last created or resumed one\n"
                 "otherwise). icl.show() returns the trainer followed now, or nil.");
    lua_setfield(L, icl, "show");
    lua_pushcfunction(L, l_interrupt);
    lbind_setdoc(L, lua_gettop(L), "icl.interrupt",
                 "icl.interrupt(): ask a running tr:step/tr:run/evaluation to stop at the next step boundary, as\n"
                 "Ctrl-C does (it raises \"interrupted at step N\"; the trainer stays usable). For scripts and\n"
                 "callbacks; a run's callback can also return false to stop it normally.");
    lua_setfield(L, icl, "interrupt");
}
