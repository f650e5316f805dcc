/*
 * lua_trainer.c - icl.trainer{...}: stepping and running a trainer from Lua
 * with stopping rules, logs, a progress line and periodic evaluation;
 * checkpoints (tr:save, icl.resume); the trainer the panels follow
 * (icl.show, lbind_current_trainer); icl.interrupt.
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
 * tr:step(n) is the method and tr.steps the counter of completed steps (one
 * name cannot be both in Lua: tr:step(n) looks up tr.step).
 *
 * Logs (tr:run{ log = path }), chosen by the file's extension:
 *   .csv    one row per step: "step,loss,grad_norm,lr,time_s"; evaluations
 *           (eval_every) go to a second file next to it, <stem>.eval.csv,
 *           one row per curve: "step,curve,metric,mean,time_s" (mean over
 *           positions), so both files stay rectangular.
 *   .jsonl  one object per line in the same file: {"kind":"train","step":..,
 *           "loss":..,"grad_norm":..,"lr":..,"time_s":..} and {"kind":"eval",
 *           "step":..,"metric":..,"prompts":..,"time_s":..,"curves":{"model":
 *           {"mean":..,"by_position":[..]},..}} (null where undefined).
 * Files are opened once per run in append mode (a CSV header is written
 * only into an empty file), so repeated runs extend one log; rows are
 * flushed every `every` steps and at the end; time_s counts from the start
 * of the run. A log that cannot be opened is an error before any step.
 *
 * Not here: the training step itself (trainer.c), the file format
 * (trainer_io.c), evaluation (evaluate.c, lua_eval.c).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "core/interrupt.h"
#include "lua/lbind.h"
#include "nn/checkpoint.h"
#include "train/trainer_io.h"

#define CURRENT_KEY "icl.current_trainer" /* registry: the trainer the panels follow */
#define RUNSTATE_MT "icl.runstate"
#define RUN_WINDOW 10          /* steps averaged for until_loss and the progress line */
#define RUN_EVAL_PROMPTS 256   /* prompts of a run's periodic evaluation */
#define PROGRESS_PERIOD 0.1    /* seconds between redraws of the progress line */
#define TICK_KEY "icl.tick"    /* registry: the TUI's lbind_tick (a light userdata), or nil */

static double now_s(void);

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
static lbind_trainer *check_trainer(lua_State *L, int idx, const char *where, lbind_model **plm, lbind_task **plt) {
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

lbind_trainer *lbind_checktrainer(lua_State *L, int idx) { return check_trainer(L, idx, "icl.trainer", NULL, NULL); }

/* No step or evaluation may start while one is running on this model or
 * task (Lua code inside a custom task's fill runs in the middle of one). */
static void check_idle(lua_State *L, const lbind_model *lm, const lbind_task *lt, const char *where) {
    if (lm->busy || lt->busy)
        luaL_error(L, "%s: the %s is in use by a running step or evaluation (called from a task's fill?)", where,
                   lm->busy ? "model" : "task");
}

/* Brackets a core call that may run Lua code (a custom task's fill): the
 * model and task are busy, and the fill runs on the calling thread. */
typedef struct {
    lbind_model *lm;
    lbind_task *lt;
    lua_State *saved_L;
} busy_guard;

static busy_guard enter_busy(lua_State *L, lbind_model *lm, lbind_task *lt) {
    busy_guard g = {lm, lt, lt->L};
    lm->busy++;
    lt->busy++;
    lt->L = L;
    return g;
}

static void leave_busy(busy_guard g) {
    g.lm->busy--;
    g.lt->busy--;
    g.lt->L = g.saved_L;
}

static icl_status one_step(lua_State *L, lbind_trainer *ut, lbind_model *lm, lbind_task *lt) {
    busy_guard g = enter_busy(L, lm, lt);
    icl_status st = trainer_step(&ut->tr);
    leave_busy(g);
    if (st == ICL_OK) lm->dirty = 1;
    return st;
}

/* Raise for a failed step (or a run's evaluation): a Ctrl-C that reached
 * the core (through a custom task's fill or an evaluation) reads as one
 * caught between steps, "interrupted at step N". */
static int fail_step(lua_State *L, const char *where, icl_status st, const lbind_trainer *ut) {
    if (st != ICL_ERR_INTERRUPT) return lbind_fail_core(L, where, st);
    icl_interrupt_clear();
    return luaL_error(L, "%s: interrupted at step %I", where, (lua_Integer)ut->tr.step);
}

/* Take ownership of *r as the trainer's last evaluation and add it to the
 * eval history (the oldest entry is dropped when the history is full). */
static void remember_eval(lbind_trainer *ut, eval_report *r) {
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

/* ---- the TUI's tick hook --------------------------------------------------------- */

void lbind_set_tick(lua_State *L, lbind_tick *t) {
    if (t) lua_pushlightuserdata(L, t);
    else lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, TICK_KEY);
}

/* Between two steps of tr:step / tr:run: the hook, if one is installed
 * and its period has passed (a registry lookup and a clock read otherwise). */
static void tick(lua_State *L, const lbind_trainer *ut, long target) {
    lua_getfield(L, LUA_REGISTRYINDEX, TICK_KEY);
    lbind_tick *k = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (!k || !k->fn || now_s() - k->last < k->period) return;
    k->fn(k, L, ut, target);
    k->last = now_s();
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
    check_idle(L, lm, lt, W);
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
    lbind_trainer *ut = check_trainer(L, 1, "tr:step", &lm, &lt);
    lua_Integer n = 1;
    if (!lua_isnoneornil(L, 2)) {
        int ok = 0;
        n = lua_type(L, 2) == LUA_TNUMBER ? lua_tointegerx(L, 2, &ok) : 0;
        if (!ok || n < 1) return luaL_error(L, "tr:step: n must be an integer >= 1 (got %s)", got(L, 2));
    }
    check_idle(L, lm, lt, "tr:step");
    for (lua_Integer i = 0; i < n; i++) {
        if (icl_interrupt_pending()) {
            icl_interrupt_clear();
            return luaL_error(L, "tr:step: interrupted at step %I", (lua_Integer)ut->tr.step);
        }
        icl_status st = one_step(L, ut, lm, lt);
        if (st) return fail_step(L, "tr:step", st, ut);
        if (i + 1 < n) tick(L, ut, ut->tr.step + (long)(n - 1 - i));
    }
    lua_pushnumber(L, ut->tr.loss);
    return 1;
}

/* ---- tr:run ---------------------------------------------------------------------- */

/* What a run must release however it ends: a to-be-closed userdata, so a
 * Lua error (a callback's, an interrupt, a failed step) closes the logs and
 * ends the progress line too. */
typedef struct {
    FILE *log;         /* train rows */
    FILE *elog;        /* eval rows: a second file for CSV, == log for JSONL */
    int progress_open; /* a progress line is on stderr without its newline */
} run_files;

static int runfiles_close(lua_State *L) {
    run_files *rf = luaL_checkudata(L, 1, RUNSTATE_MT);
    if (rf->elog && rf->elog != rf->log) fclose(rf->elog);
    if (rf->log) fclose(rf->log);
    rf->log = rf->elog = NULL;
    if (rf->progress_open) fputc('\n', stderr);
    rf->progress_open = 0;
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcasecmp(s + n - k, suffix);
}

/* Open path for appending; [out] *empty says whether it holds nothing yet. */
static FILE *open_log(lua_State *L, const char *path, int *empty) {
    FILE *f = fopen(path, "a");
    if (!f) luaL_error(L, "tr:run: cannot open the log '%s': %s", path, strerror(errno));
    fseek(f, 0, SEEK_END);
    *empty = ftell(f) == 0;
    return f;
}

/* A JSON number, or null where it is not finite. */
static void json_num(FILE *f, double v) {
    if (isfinite(v)) fprintf(f, "%.9g", v);
    else fputs("null", f);
}

static double curve_mean(const eval_curve *c) {
    double s = 0;
    int n = 0;
    for (int p = 0; p < c->positions; p++)
        if (isfinite(c->mean[p])) {
            s += c->mean[p];
            n++;
        }
    return n ? s / n : NAN;
}

static void log_eval(FILE *f, int jsonl, const eval_report *r, long step, double t) {
    const char *metric = lbind_metric_name(r->metric);
    if (!jsonl) {
        for (int c = 0; c < r->n_curves; c++) {
            fprintf(f, "%ld,%s,%s,", step, r->names[c], metric);
            double m = curve_mean(&r->curves[c]);
            if (isfinite(m)) fprintf(f, "%.9g", m);
            fprintf(f, ",%.3f\n", t);
        }
        return;
    }
    fprintf(f, "{\"kind\":\"eval\",\"step\":%ld,\"metric\":\"%s\",\"prompts\":%d,\"time_s\":%.3f,\"curves\":{", step,
            metric, r->n_prompts, t);
    for (int c = 0; c < r->n_curves; c++) {
        const eval_curve *cv = &r->curves[c];
        fprintf(f, "%s\"%s\":{\"mean\":", c ? "," : "", r->names[c]);
        json_num(f, curve_mean(cv));
        fputs(",\"by_position\":[", f);
        for (int p = 0; p < cv->positions; p++) {
            if (p) fputc(',', f);
            json_num(f, cv->mean[p]);
        }
        fputs("]}", f);
    }
    fputs("}}\n", f);
}

/* "\r step 1200/5000  loss 0.2312  812 steps/s  ETA 0:05" (\033[K clears
 * what a longer previous line left). */
static void draw_progress(run_files *rf, long step, long target, double loss, double rate, double eta) {
    char eta_s[32] = "";
    if (isfinite(eta) && eta >= 0) {
        long s = (long)(eta + 0.5);
        if (s >= 3600) snprintf(eta_s, sizeof eta_s, "  ETA %ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
        else snprintf(eta_s, sizeof eta_s, "  ETA %ld:%02ld", s / 60, s % 60);
    }
    char tgt[32] = "";
    if (target > 0) snprintf(tgt, sizeof tgt, "/%ld", target);
    fprintf(stderr, "\r step %ld%s  loss %.4f  %.0f steps/s%s\033[K", step, tgt, loss, rate, eta_s);
    fflush(stderr);
    rf->progress_open = 1;
}

static void clear_progress(run_files *rf) {
    if (!rf->progress_open) return;
    fputs("\r\033[K", stderr);
    fflush(stderr);
    rf->progress_open = 0;
}

static const char *const run_fields[] = {"max_steps", "until_loss", "max_time", "every", "callback",
                                         "log", "eval_every", "progress", NULL};

static int l_run(lua_State *L) {
    const char *W = "tr:run";
    lbind_model *lm;
    lbind_task *lt;
    lbind_trainer *ut = check_trainer(L, 1, W, &lm, &lt);
    if (!lua_istable(L, 2))
        return luaL_error(L, "%s: expects a table of options, e.g. tr:run{ max_steps = 1000 } (got %s)", W,
                          lbind_typename(L, 2));
    lua_settop(L, 2);
    lbind_check_fields(L, 2, W, run_fields);
    const long max_steps = (long)lbind_field_int(L, 2, W, "max_steps", 0, 1, LUA_MAXINTEGER);
    const double until_loss = lbind_field_num(L, 2, W, "until_loss", NAN, -HUGE_VAL, HUGE_VAL);
    const double max_time = lbind_field_num(L, 2, W, "max_time", NAN, 0, HUGE_VAL);
    if (max_time == 0) return luaL_error(L, "%s: max_time must be a number of seconds > 0 (got 0)", W);
    const long every = (long)lbind_field_int(L, 2, W, "every", 100, 1, LUA_MAXINTEGER);
    const long eval_every = (long)lbind_field_int(L, 2, W, "eval_every", 0, 1, LUA_MAXINTEGER);
    lua_getfield(L, 2, "callback"); /* 3 */
    if (!lua_isnil(L, 3) && !lua_isfunction(L, 3))
        return luaL_error(L, "%s: callback must be a function (got %s)", W, lbind_typename(L, 3));
    const int has_cb = lua_isfunction(L, 3);
    lua_getfield(L, 2, "log"); /* 4 */
    if (!lua_isnil(L, 4) && lua_type(L, 4) != LUA_TSTRING)
        return luaL_error(L, "%s: log must be a file name ending in .csv or .jsonl (got %s)", W, lbind_typename(L, 4));
    const char *log_path = lua_tostring(L, 4);
    lua_getfield(L, 2, "progress"); /* 5 */
    if (!lua_isnil(L, 5) && !lua_isboolean(L, 5))
        return luaL_error(L, "%s: progress must be true or false (got %s)", W, lbind_typename(L, 5));
    const int progress = (lua_isnil(L, 5) || lua_toboolean(L, 5)) && isatty(STDERR_FILENO);
    if (!max_steps && isnan(until_loss) && isnan(max_time) && !has_cb)
        return luaL_error(L, "%s: give a stopping rule: max_steps, until_loss, max_time or a callback that returns "
                          "false (Ctrl-C also stops a run)", W);
    int jsonl = 0;
    if (log_path) {
        if (ends_with(log_path, ".jsonl")) jsonl = 1;
        else if (!ends_with(log_path, ".csv"))
            return luaL_error(L, "%s: log must end in .csv or .jsonl (got '%s')", W, log_path);
    }
    check_idle(L, lm, lt, W);

    /* Everything the run must release lives in this to-be-closed slot. */
    run_files *rf = lua_newuserdatauv(L, sizeof *rf, 0); /* 6 */
    memset(rf, 0, sizeof *rf);
    luaL_setmetatable(L, RUNSTATE_MT);
    lua_toclose(L, 6);
    if (log_path) {
        int empty;
        rf->log = open_log(L, log_path, &empty);
        if (!jsonl && empty) fputs("step,loss,grad_norm,lr,time_s\n", rf->log);
        if (jsonl) {
            rf->elog = rf->log;
        } else if (eval_every) {
            size_t n = strlen(log_path) - 4;
            lua_pushfstring(L, "%s.eval.csv", lua_pushlstring(L, log_path, n)); /* 7, 8 */
            rf->elog = open_log(L, lua_tostring(L, -1), &empty);
            if (empty) fputs("step,curve,metric,mean,time_s\n", rf->elog);
            lua_settop(L, 6);
        }
    }
    lbind_eval_request ereq;
    if (eval_every) {
        lbind_eval_options(L, lua_gettop(L) + 1, W, lt->t, &ereq); /* none: the task's defaults */
        ereq.o.n_prompts = RUN_EVAL_PROMPTS;
    }

    const long start = ut->tr.step, target = max_steps ? start + max_steps : 0;
    const double t0 = now_s();
    double window[RUN_WINDOW], last_draw = -1;
    int n_window = 0;
    long done = 0;
    const char *reason = NULL;
    while (!reason) {
        if (icl_interrupt_pending()) {
            icl_interrupt_clear();
            clear_progress(rf);
            return luaL_error(L, "%s: interrupted at step %I", W, (lua_Integer)ut->tr.step);
        }
        icl_status st = one_step(L, ut, lm, lt);
        if (st) {
            clear_progress(rf);
            return fail_step(L, W, st, ut);
        }
        done++;
        window[(done - 1) % RUN_WINDOW] = ut->tr.loss;
        if (n_window < RUN_WINDOW) n_window++;
        double mean = 0;
        for (int i = 0; i < n_window; i++) mean += window[i];
        mean /= n_window;
        const double t = now_s() - t0;
        if (rf->log) {
            if (jsonl)
                fprintf(rf->log, "{\"kind\":\"train\",\"step\":%ld,\"loss\":%.9g,\"grad_norm\":%.9g,\"lr\":%.9g,"
                                 "\"time_s\":%.3f}\n",
                        ut->tr.step, ut->tr.loss, ut->tr.grad_norm, ut->tr.lr, t);
            else
                fprintf(rf->log, "%ld,%.9g,%.9g,%.9g,%.3f\n", ut->tr.step, ut->tr.loss, ut->tr.grad_norm, ut->tr.lr,
                        t);
        }
        if (eval_every && done % eval_every == 0) {
            eval_report r;
            busy_guard g = enter_busy(L, lm, lt);
            st = evaluate(ut->tr.m, ut->tr.t, &ereq.o, &r);
            leave_busy(g);
            if (st) {
                clear_progress(rf);
                return fail_step(L, W, st, ut);
            }
            remember_eval(ut, &r);
            if (rf->elog) log_eval(rf->elog, jsonl, &ut->last_eval, ut->tr.step, now_s() - t0);
        }
        int stop = 0;
        if (done % every == 0) {
            if (rf->log) fflush(rf->log);
            if (rf->elog && rf->elog != rf->log) fflush(rf->elog);
            if (has_cb) {
                clear_progress(rf); /* so what the callback prints starts on a clean line */
                lua_pushvalue(L, 3);
                lua_pushvalue(L, 1);
                lua_call(L, 1, 1);
                stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
                lua_pop(L, 1);
                /* the callback may have closed the trainer, its model or task */
                ut = check_trainer(L, 1, W, &lm, &lt);
                last_draw = -1;
            }
        }
        const double t_now = now_s() - t0;
        if (stop) reason = "callback";
        else if (!isnan(until_loss) && n_window == RUN_WINDOW && mean <= until_loss) reason = "until_loss";
        else if (!isnan(max_time) && t_now >= max_time) reason = "max_time";
        else if (max_steps && done >= max_steps) reason = "max_steps";
        if (!reason) tick(L, ut, target);
        if (progress && (reason || last_draw < 0 || t_now - last_draw >= PROGRESS_PERIOD)) {
            double rate = done / (t_now > 0 ? t_now : 1e-9), eta = NAN;
            if (max_steps) eta = (target - ut->tr.step) / rate;
            if (!isnan(max_time) && (isnan(eta) || max_time - t_now < eta)) eta = max_time - t_now;
            draw_progress(rf, ut->tr.step, target, mean, rate, eta);
            last_draw = t_now;
        }
    }
    const double elapsed = now_s() - t0;
    int bad_log = 0;
    if (rf->log) bad_log |= fflush(rf->log) != 0 || ferror(rf->log);
    if (rf->elog && rf->elog != rf->log) bad_log |= fflush(rf->elog) != 0 || ferror(rf->elog);
    if (bad_log) return luaL_error(L, "%s: writing the log '%s' failed (disk full?)", W, log_path);
    double mean = 0;
    for (int i = 0; i < n_window; i++) mean += window[i];
    lua_createtable(L, 0, 7);
    lua_pushinteger(L, done);
    lua_setfield(L, -2, "steps");
    lua_pushinteger(L, ut->tr.step);
    lua_setfield(L, -2, "total");
    lua_pushnumber(L, ut->tr.loss);
    lua_setfield(L, -2, "loss");
    lua_pushnumber(L, n_window ? mean / n_window : NAN);
    lua_setfield(L, -2, "mean_loss");
    lua_pushstring(L, reason);
    lua_setfield(L, -2, "reason");
    lua_pushnumber(L, elapsed);
    lua_setfield(L, -2, "time_s");
    lua_pushnumber(L, elapsed > 0 ? done / elapsed : 0);
    lua_setfield(L, -2, "steps_per_s");
    return 1; /* slot 6 is closed on return: logs closed, progress line ended */
}

/* ---- tr:eval, tr:save, icl.resume ------------------------------------------------- */

static int l_eval(lua_State *L) {
    lbind_model *lm;
    lbind_task *lt;
    lbind_trainer *ut = check_trainer(L, 1, "tr:eval", &lm, &lt);
    check_idle(L, lm, lt, "tr:eval");
    lbind_eval_request req;
    lbind_eval_options(L, 2, "tr:eval", lt->t, &req);
    char desc[160];
    task_describe(lt->t, desc, sizeof desc);
    eval_report *r = lbind_push_evalresult(L, desc);
    busy_guard g = enter_busy(L, lm, lt);
    icl_status st = evaluate(lm->m, lt->t, &req.o, r);
    leave_busy(g);
    if (st) return lbind_fail_core(L, "tr:eval", st);
    eval_report copy;
    if ((st = lbind_eval_report_copy(&copy, r))) return lbind_fail_core(L, "tr:eval", st);
    remember_eval(ut, &copy);
    return 1;
}

static int l_save(lua_State *L) {
    lbind_model *lm;
    lbind_trainer *ut = check_trainer(L, 1, "tr:save", &lm, NULL);
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
    lbind_trainer *ut = check_trainer(L, 1, "tr:history", NULL, NULL);
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
    check_trainer(L, 1, where, NULL, NULL);
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
    lbind_trainer *ut = check_trainer(L, 1, where, NULL, NULL);
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
    check_trainer(L, 1, "icl.show", NULL, NULL);
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
     "(\"interrupted at step N\"); a step whose loss or gradient is not finite raises and changes nothing."},
    {"run", l_run,
     "tr:run{ max_steps =, until_loss =, max_time = seconds, every = 100, callback = function(tr) ... end,\n"
     "  log = \"run.csv\" | \"run.jsonl\", eval_every = N, progress = true } -> { steps =, total =, loss =,\n"
     "  mean_loss =, reason =, time_s =, steps_per_s = }\n"
     "Trains until a rule fires (reason \"max_steps\", \"until_loss\", \"max_time\" or \"callback\"); at least one is\n"
     "needed. max_steps counts the steps of this call; until_loss compares the mean loss of the last 10 steps;\n"
     "every N steps the log is flushed and callback(tr) runs (returning false stops). eval_every = N evaluates on\n"
     "256 prompts (with the task's baselines) and keeps the report (tr.last_eval, tr:history().eval).\n"
     "Logs: .csv rows step,loss,grad_norm,lr,time_s (evaluations in <stem>.eval.csv: step,curve,metric,mean,\n"
     "time_s); .jsonl objects of kind \"train\" and \"eval\". Appended to; an unopenable log fails before any step.\n"
     "A progress line (step, loss, steps/s, ETA) goes to stderr when it is a terminal and progress ~= false."},
    {"eval", l_eval,
     "tr:eval{ prompts =, seed =, baselines =, metric = } -> e: icl.eval(tr.model, tr.task, opts), also kept as\n"
     "tr.last_eval for the panels and added to tr:history().eval."},
    {"save", l_save,
     "tr:save(path) -> path: a checkpoint (safetensors) with the weights, the optimizer's moments and config, the\n"
     "step, seed, batch and task spec; icl.resume(path) continues it bit for bit. Clears the model's unsaved mark."},
    {"history", l_history,
     "tr:history() -> { step = {...}, loss = {...}, stride =, eval = { step = {...}, value = {...} } }: the loss\n"
     "history (entries average `stride` steps once a long run filled it) and the mean model metric of each\n"
     "evaluation."},
    {"close", l_close, "tr:close(): free the trainer's optimizer state and buffers now (the model and task stay)."},
    {NULL, NULL, NULL},
};

void lbind_open_trainer(lua_State *L) {
    int icl = lua_gettop(L);
    luaL_newmetatable(L, RUNSTATE_MT);
    lua_pushcfunction(L, runfiles_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, runfiles_close);
    lua_setfield(L, -2, "__gc");
    lua_settop(L, icl);

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
