/*
 * lbind.h - what the Lua binding files share: metatable names, the userdata
 * layouts, argument checkers and the error helper.
 *
 * One binding file per exposed type, each with its own opener that adds its
 * constructor(s) to the `icl` table on top of the stack:
 *   lua_tensor.c   tensors (copies and views into model memory)
 *   lua_model.c    icl.model{...}, icl.load(path) for weights
 *   lua_task.c     icl.task{...}, Lua-defined custom tasks
 *   lua_trainer.c  icl.trainer{...}, step/save/resume, fields, history
 *   lua_trainer_run.c  tr:run{...}: its loop, stop rules and CSV/JSONL logs
 *   lua_recovery.c icl.recover and the recovery checkpoint written on SIGTERM/SIGHUP
 *   lua_eval.c     icl.eval(model, task, opts) and its result object
 *   lua_icl.c      luaopen_icl: builds the table, help(), version, threads
 *
 * Rules (STYLE.md): only this layer raises Lua errors, and only after every
 * C temporary is freed or owned by a userdata. Every error names the
 * argument ("icl.model: d_model must be ..."). Objects that reference others
 * keep them alive through user values (a trainer holds its model and task;
 * a tensor view holds its owner), never through bare pointers. Closed or
 * freed objects raise "... was closed" instead of crashing.
 */
#ifndef ICL_LBIND_H
#define ICL_LBIND_H

#include <stdio.h>

#include <lauxlib.h>
#include <lua.h>

#include "core/status.h"
#include "nn/model.h"
#include "tasks/task.h"
#include "train/evaluate.h"
#include "train/trainer.h"

#define LBIND_MODEL_MT "icl.model"
#define LBIND_TASK_MT "icl.task"
#define LBIND_TRAINER_MT "icl.trainer"
#define LBIND_TENSOR_MT "icl.tensor"
#define LBIND_EVAL_MT "icl.evalresult"

/* A model userdata. m is NULL after m:close(). `dirty` is set by training
 * and cleared by a save (the REPL asks before quitting with unsaved work). */
typedef struct {
    model *m;
    int dirty;
    int busy;   /* > 0 while a core call that may run Lua code (a custom
                   task's fill) uses the model: m:close() refuses then. A
                   binding that runs such a call increments it around it. */
} lbind_model;

/* A task userdata; for a Lua-defined task, `fill_ref` is the registry ref of
 * the Lua fill function (LUA_NOREF otherwise) and L the state that owns it. */
typedef struct {
    task *t;
    int fill_ref;
    lua_State *L;   /* the main thread (lives as long as the state); t:sample
                       points it at the calling coroutine for its own call */
    int busy;       /* > 0 while fill runs: t:close() refuses then */
} lbind_task;

/* A trainer userdata; its model and task userdata are its user values 1, 2.
 * It keeps what the panels show besides the loss history (trainer.hist):
 * the report of its last evaluation and the eval-loss history. */
#define LBIND_EVAL_HIST 1024
typedef struct {
    trainer tr;
    int live;               /* 0 after close */
    eval_report last_eval;  /* valid when has_eval */
    int has_eval;
    long eval_step;         /* trainer step of last_eval */
    int n_eval_hist;        /* (step, mean metric over positions) of each evaluation */
    long eval_hist_step[LBIND_EVAL_HIST];
    double eval_hist_value[LBIND_EVAL_HIST];
} lbind_trainer;

/* Tensors: a shape and floats that are either owned (a copy) or a view into
 * another object's memory (the owner is user value 1 and stays alive). */
#define LBIND_TENSOR_MAXDIM 4
typedef struct {
    int ndim;
    int shape[LBIND_TENSOR_MAXDIM];
    size_t numel;
    float *data;
    int owned;
} lbind_tensor;

/* Checkers: raise a Lua error naming the argument if idx is not a live one. */
lbind_model *lbind_checkmodel(lua_State *L, int idx);
lbind_task *lbind_checktask(lua_State *L, int idx);
lbind_trainer *lbind_checktrainer(lua_State *L, int idx);
lbind_tensor *lbind_checktensor(lua_State *L, int idx);

/* Push a new tensor holding a copy of data (ndim <= 4; zeros if data is
 * NULL). The floats live inside the userdata, so Lua owns them. */
lbind_tensor *lbind_push_tensor_copy(lua_State *L, const float *data, int ndim, const int *shape);
/* Push a view of data; the value at owner_idx is kept alive by the view.
 * lbind_checktensor raises instead of reading freed memory when the owner
 * is a closed model (or trainer), so check a view before each use. */
lbind_tensor *lbind_push_tensor_view(lua_State *L, int owner_idx, float *data, int ndim, const int *shape);

/* Push a new model userdata owning m (may be NULL and set later); every
 * model userdata should come from here (it reserves the user value that
 * keeps the input of the last m:forward alive). lua_model.c. */
lbind_model *lbind_push_model(lua_State *L, model *m);

/* The trainer the panels follow (the last created or resumed, or the one
 * given to icl.show(tr)); NULL if none or closed. lua_trainer.c. */
lbind_trainer *lbind_current_trainer(lua_State *L);
void lbind_set_current_trainer(lua_State *L, int idx);

/* The number of open models with unsaved training (lbind_model.dirty),
 * found through a weak registry of every model userdata, so the TUI can
 * ask before quitting. Run a full GC first to skip unreachable ones.
 * lua_model.c. */
int lbind_count_dirty_models(lua_State *L);
/* Calls fn for every open model with unsaved training (the same weak
 * registry), stopping early when fn returns non-zero; returns the number
 * of models visited. For the recovery checkpoint (lua_recovery.c). */
int lbind_each_dirty_model(lua_State *L, int (*fn)(lbind_model *lm, void *ud), void *ud);

/* ---- the recovery checkpoint (lua_recovery.c) ----
 * lbind_write_recovery saves every model with unsaved training to the
 * recovery folder because signal `sig` ends the process, saying so on
 * `report`; returns the number saved (0: nothing to save), -1 on failure.
 * lbind_recovery_notice writes the start-up offer into buf (1 if there is
 * a recovery, else 0). lbind_open_recovery adds icl.recover to `icl`. */
int lbind_write_recovery(lua_State *L, int sig, FILE *report);
int lbind_recovery_notice(char *buf, size_t n);
void lbind_open_recovery(lua_State *L);

/* ---- the TUI's tick hook (lua_trainer.c) ----
 * While tr:step(n) or tr:run{...} trains, it calls t->fn between steps, at
 * most every t->period seconds, so a screen can poll keys and redraw. The
 * hook must not run Lua code or close objects; it may request an interrupt
 * (icl_interrupt_request) to stop the run at the next step, or hold the run
 * (pause) by not returning. L is the running thread, ut the trainer that
 * steps, target the step the call stops at (0 if it has no step limit).
 * lbind_set_tick(L, NULL) removes it. */
typedef struct lbind_tick lbind_tick;
struct lbind_tick {
    void (*fn)(lbind_tick *t, lua_State *L, const lbind_trainer *ut, long target);
    double period; /* seconds between calls */
    double last;   /* when it last returned (kept by lua_trainer.c) */
};
void lbind_set_tick(lua_State *L, lbind_tick *t);

/* Push package.loaded.icl (nil when the module is not loaded) and return
 * its Lua type. lua_icl.c. */
int lbind_push_icl(lua_State *L);

/* Documentation for help(): attach `doc` to the function (or any value) at
 * fn_idx and to `name` ("icl.model", "icl.model:forward"). lua_icl.c. */
void lbind_setdoc(lua_State *L, int fn_idx, const char *name, const char *doc);

/* Raise a Lua error "<where>: <icl_error()>" for a failed core call. */
int lbind_fail(lua_State *L, const char *where);

/* ---- table fields (lua_trainer.c) ----
 * For constructors and option tables; every error starts with `where` and
 * names the field, e.g. "icl.trainer: batch must be an integer in [1, 65536]
 * (got 0)". */
/* Raise "<where>: unknown field 'x'" for a key of the table at idx that is
 * not in the NULL-terminated list `known` (or not a string). */
void lbind_check_fields(lua_State *L, int idx, const char *where, const char *const *known);
/* The type of the value at idx for messages: the __name of our objects
 * ("icl.task"), else Lua's type name. */
const char *lbind_typename(lua_State *L, int idx);
/* Field `key` of the table at idx: def if nil, else an integer in [lo, hi]. */
lua_Integer lbind_field_int(lua_State *L, int idx, const char *where, const char *key, lua_Integer def,
                            lua_Integer lo, lua_Integer hi);
/* Field `key`: def if nil, else a finite number in [lo, hi]. */
double lbind_field_num(lua_State *L, int idx, const char *where, const char *key, double def, double lo, double hi);

/* ---- evaluation (lua_eval.c), shared with lua_trainer.c ---- */
/* eval_options plus storage for the baseline names it points to. */
typedef struct {
    eval_options o;
    char names[EVAL_MAX_CURVES - 1][64];
} lbind_eval_request;
/* Read the icl.eval options table at idx (none or nil: the task's defaults)
 * for task t into [out] *req; raises "<where>: ..." naming the field. */
void lbind_eval_options(lua_State *L, int idx, const char *where, const task *t, lbind_eval_request *req);
/* Push a new, empty icl.evalresult (desc: the task, for print and the chart
 * title) and return its report for evaluate() to fill; __gc frees it. */
eval_report *lbind_push_evalresult(lua_State *L, const char *desc);
/* Deep copy of src into [out] *dst (ICL_ERR_NOMEM and dst empty on failure). */
icl_status lbind_eval_report_copy(eval_report *dst, const eval_report *src);
/* Mean over positions of curve 0 (the model), NaN if none: the number the
 * eval history of a trainer keeps. */
double lbind_eval_summary(const eval_report *r);
/* "sqerr", "sign_acc", "nearest_acc", "token_acc" (t.metric, e.metric). */
const char *lbind_metric_name(task_metric_kind k);
/* Like lbind_fail for a core call that returned st, minus a redundant
 * "trainer: " / "evaluate: " / "optimizer: " prefix of the message; clears
 * the Ctrl-C flag when st is ICL_ERR_INTERRUPT (the reporter clears it). */
int lbind_fail_core(lua_State *L, const char *where, icl_status st);

/* Openers: each adds its functions to the table at the top of the stack. */
void lbind_open_tensor(lua_State *L);
void lbind_open_model(lua_State *L);
void lbind_open_task(lua_State *L);
void lbind_open_trainer(lua_State *L);
void lbind_open_eval(lua_State *L);

/* The whole module (registers `icl` in package.loaded). */
int luaopen_icl(lua_State *L);

#endif
