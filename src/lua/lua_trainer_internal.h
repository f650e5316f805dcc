/*
 * lua_trainer_internal.h - what the two halves of the trainer binding share:
 * lua_trainer.c (the object: construction, fields, tr:step, tr:eval,
 * tr:save, icl.resume, tr:history) and lua_trainer_run.c (tr:run: its loop,
 * stopping rules, logs and progress line). Not a public API: the other
 * binding files use lbind.h.
 */
#ifndef ICL_LUA_TRAINER_INTERNAL_H
#define ICL_LUA_TRAINER_INTERNAL_H

#include "lua/lbind.h"

/* ---- lua_trainer.c ---- */

/* The trainer at idx, open, with its model and task open: [out] *plm, *plt
 * (either may be NULL). Raises "<where>: ... was closed" otherwise. */
lbind_trainer *ltrainer_check(lua_State *L, int idx, const char *where, lbind_model **plm, lbind_task **plt);
/* Raise if a step or evaluation is already running on the model or task. */
void ltrainer_check_idle(lua_State *L, const lbind_model *lm, const lbind_task *lt, const char *where);

/* Brackets a core call that may run Lua code (a custom task's fill): the
 * model and task are busy, and the fill runs on the calling thread. */
typedef struct {
    lbind_model *lm;
    lbind_task *lt;
    lua_State *saved_L;
} ltrainer_busy;
ltrainer_busy ltrainer_enter_busy(lua_State *L, lbind_model *lm, lbind_task *lt);
void ltrainer_leave_busy(ltrainer_busy g);

/* One trainer_step inside the busy bracket; marks the model dirty on success. */
icl_status ltrainer_step_once(lua_State *L, lbind_trainer *ut, lbind_model *lm, lbind_task *lt);
/* Raise for a failed step or evaluation ("<where>: <message>"; an interrupt
 * reads "<where>: interrupted at step N"). Never returns. */
int ltrainer_fail_step(lua_State *L, const char *where, icl_status st, const lbind_trainer *ut);
/* Take ownership of *r as the trainer's last evaluation (and history entry). */
void ltrainer_remember_eval(lbind_trainer *ut, eval_report *r);
/* Between two steps: the TUI's tick hook, if installed and due. */
void ltrainer_tick(lua_State *L, const lbind_trainer *ut, long target);
/* Seconds on the monotonic clock. */
double ltrainer_now(void);

/* ---- lua_trainer_run.c ---- */

/* tr:run{...} and its help text. */
int ltrainer_run(lua_State *L);
extern const char ltrainer_run_doc[];
/* Register the metatable of a run's to-be-closed state (once, at open). */
void ltrainer_open_run(lua_State *L);

#endif
