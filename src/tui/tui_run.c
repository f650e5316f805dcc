/*
 * tui_run.c - the TUI's event loop and its training: tui_main, F5 slices,
 * F10 steps, periodic evaluations, the tick hook that keeps the screen live
 * inside a blocking tr:run{...}, and the Lua functions only the TUI has
 * (icl.theme, icl.tui).
 *
 * One loop (STYLE.md rule 18): poll keys with a short timeout, train one
 * slice if F5 is on, drain fds 1 and 2 into the output, then update the
 * visible panels' data and draw (tui_compose keeps the two apart) when a
 * key asked for it or the frame period has passed (up to 20 frames/s while
 * training, 2/s idle). A slice is tr:step(n) with n chosen so that it takes
 * about 30 ms, called through repl_docall, so Ctrl-C, a failing step, the
 * model's unsaved mark and a custom task's Lua code all behave as at the
 * prompt. Every eval_every steps a slice also runs tr:eval{}, so the ICL
 * panel follows the training.
 *
 * A command typed at the prompt runs to its end; if it trains, lua_trainer.c
 * calls the tick hook between steps (at most every 50 ms): it reads keys
 * (tui_input_key_busy), drains the output and draws. F5 there holds the run
 * inside the hook until F5 again or Ctrl-C.
 *
 * Inside one step (a medium model's takes 0.5-1 s), the model calls
 * icl_tick() between blocks and around the scan (core/tick.h); on_mid_step
 * then draws a frozen frame (the panels keep their last data, the status
 * line and the prompt are live) every FRAME_TRAIN, so the screen keeps its
 * frame rate whatever one step costs. Keys typed meanwhile edit the prompt;
 * those that would run Lua or a step wait for the step's end.
 *
 * Not here: the keys themselves (tui_input.c), drawing (screen.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>

#include "core/interrupt.h"
#include "core/tick.h"
#include "tui/screen.h"

#define SLICE_SEC 0.03     /* training time between two key polls */
#define FRAME_TRAIN 0.05   /* seconds between frames while training (20/s at most) */
#define FRAME_IDLE 0.5     /* ... when idle (messages expire, stray output shows) */
#define TICK_PERIOD 0.05   /* the tick hook's period inside blocking runs */
#define TICK_POLL 0.02     /* the core tick's period inside a step (on_mid_step draws every FRAME_TRAIN) */
#define EVAL_EVERY 200     /* default icl.tui.eval_every */
#define EVAL_PROMPTS 128   /* default icl.tui.eval_prompts */
#define SELF_KEY "icl.tui.self" /* registry: the running tui (a light userdata) */

double tui_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void tui_message(tui *t, double sec, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->message, sizeof t->message, fmt, ap);
    va_end(ap);
    t->message_until = tui_now() + sec;
    t->need_draw = 1;
}

/* ---- calling the trainer from C ------------------------------------------------------------------ */

/* Push tr.<method> and tr for the trainer the panels follow; 0 (nothing
 * pushed) if there is none. */
static int push_method(lua_State *L, const char *method) {
    if (!lbind_current_trainer(L)) return 0;
    int top = lua_gettop(L);
    lbind_push_icl(L);
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "show");
        if (lua_pcall(L, 0, 1, 0) == LUA_OK && !lua_isnil(L, -1)) {
            lua_getfield(L, -1, method);
            lua_insert(L, -2);
            lua_remove(L, -3);
            return 1;
        }
    }
    lua_settop(L, top);
    return 0;
}

/* The first line of the error on top of the stack into the output; pops it. */
static void report_error(tui *t) {
    const char *msg = lua_tostring(t->L, -1);
    if (!msg) msg = "(error object is not a string)";
    size_t n = strcspn(msg, "\n");
    tui_output_write(&t->out, TUI_ROLE_ERROR, msg, n);
    tui_output_write(&t->out, TUI_ROLE_ERROR, "\n", 1);
    lua_pop(t->L, 1);
}

/* An integer field of icl.tui, within [lo, hi]; def if absent or invalid. */
static long setting(lua_State *L, const char *key, long def, long lo, long hi) {
    long v = def;
    int top = lua_gettop(L);
    lbind_push_icl(L);
    if (lua_istable(L, -1) && lua_getfield(L, -1, "tui") == LUA_TTABLE) {
        lua_getfield(L, -1, key);
        int ok = 0;
        lua_Integer x = lua_tointegerx(L, -1, &ok);
        if (ok && x >= lo && x <= hi) v = (long)x;
    }
    lua_settop(L, top);
    return v;
}

/* tr:<method>(arg) for the followed trainer, quietly for the tick hook;
 * arg < 0: tr:eval{ prompts = -arg }. 1 on success, 0 on error (reported),
 * -1 without a trainer. */
static int call_trainer(tui *t, const char *method, long arg) {
    lua_State *L = t->L;
    int top = lua_gettop(L);
    if (!push_method(L, method)) return -1;
    if (arg >= 0) {
        lua_pushinteger(L, arg);
    } else {
        lua_createtable(L, 0, 1);
        lua_pushinteger(L, -arg);
        lua_setfield(L, -2, "prompts");
    }
    t->in_slice = 1;
    int st = repl_docall(L, 2, 0);
    t->in_slice = 0;
    if (st != LUA_OK) report_error(t);
    lua_settop(L, top);
    t->gen++;
    return st == LUA_OK;
}

/* Evaluate when eval_every steps have passed since the last evaluation. */
static void maybe_eval(tui *t) {
    long every = setting(t->L, "eval_every", EVAL_EVERY, 0, 1L << 40);
    lbind_trainer *ut = lbind_current_trainer(t->L);
    if (every <= 0 || !ut) return;
    if (ut->tr.step - (ut->has_eval ? ut->eval_step : 0) < every) return;
    long prompts = setting(t->L, "eval_prompts", EVAL_PROMPTS, 1, 1 << 20);
    if (call_trainer(t, "eval", -prompts) == 0) {
        t->training = 0;
        tui_message(t, 5, "evaluation failed: training paused (icl.tui.eval_every = 0 turns it off)");
    }
}

/* One F5 slice: about SLICE_SEC of steps. */
static void run_slice(tui *t) {
    long n = t->step_sec > 0 ? (long)(SLICE_SEC / t->step_sec) : 1;
    if (n < 1) n = 1;
    if (n > 10000) n = 10000;
    double t0 = tui_now();
    int r = call_trainer(t, "step", n);
    if (r < 0) {
        t->training = 0;
        tui_message(t, 6, "no trainer: build one, e.g. m, t, tr = icl.build(icl.presets.linear{})");
        return;
    }
    if (r == 0) {
        t->training = 0;
        tui_message(t, 4, "training stopped");
        return;
    }
    double per = (tui_now() - t0) / (double)n;
    t->step_sec = t->step_sec > 0 ? 0.7 * t->step_sec + 0.3 * per : per;
    maybe_eval(t);
}

void tui_toggle_training(tui *t) {
    if (t->training) {
        t->training = 0; /* the status line says "paused" */
    } else if (!lbind_current_trainer(t->L)) {
        tui_message(t, 6, "no trainer: build one, e.g. m, t, tr = icl.build(icl.presets.linear{})");
    } else {
        t->training = 1;
        t->message[0] = '\0';
    }
    t->need_draw = 1;
}

void tui_step_once(tui *t) {
    t->training = 0;
    if (call_trainer(t, "step", 1) < 0)
        tui_message(t, 6, "no trainer: build one, e.g. m, t, tr = icl.build(icl.presets.linear{})");
    t->need_draw = 1;
}

void tui_request_quit(tui *t) {
    lua_gc(t->L, LUA_GCCOLLECT); /* unreachable models cannot be saved: do not ask about them */
    if (lbind_count_dirty_models(t->L) > 0) {
        t->quit_ask = 1;
        t->training = 0;
    } else {
        t->quit = 1;
    }
    t->need_draw = 1;
}

/* ---- frames --------------------------------------------------------------------------------------- */

void tui_fill_source(tui *t, tui_source *src, char *focus_buf, size_t focus_n) {
    memset(src, 0, sizeof *src);
    lua_State *L = t->Lrun ? t->Lrun : t->L;
    lbind_trainer *ut = L ? lbind_current_trainer(L) : NULL;
    if (ut) {
        src->tr = &ut->tr;
        src->m = ut->tr.m;
        src->t = ut->tr.t;
        if (ut->has_eval) {
            src->eval = &ut->last_eval;
            src->eval_step = ut->eval_step;
        }
        src->eval_hist_step = ut->eval_hist_step;
        src->eval_hist_value = ut->eval_hist_value;
        src->n_eval_hist = ut->n_eval_hist;
    }
    /* a step that F5 paused mid-way still runs to its end: "paused" only after it */
    src->running = t->busy ? t->run_active && !t->run_paused : t->training || t->in_slice;
    src->target_steps = t->busy ? t->run_target : 0;
    src->eta_sec = -1;
    src->focus = tui_input_focus_name(t, focus_buf, focus_n);
    src->hints = tui_input_hints(t);
    src->message = t->message[0] && tui_now() < t->message_until ? t->message : NULL;
}

/* Steps per second over windows of about a second while training runs. */
static void update_rate(tui *t, tui_source *src) {
    double now = tui_now();
    long step = src->tr ? src->tr->step : 0;
    if (src->tr != t->rate_tr) t->sps = 0;
    if (!src->running || src->tr != t->rate_tr || step < t->rate_step0) {
        t->rate_tr = src->tr;
        t->rate_t0 = now;
        t->rate_step0 = step;
    } else if (now - t->rate_t0 >= 1.0) {
        double r = (double)(step - t->rate_step0) / (now - t->rate_t0);
        t->sps = t->sps > 0 ? 0.5 * t->sps + 0.5 * r : r;
        t->rate_t0 = now;
        t->rate_step0 = step;
    }
    if (t->sps <= 0 && src->running && t->training && t->step_sec > 0) t->sps = 1.0 / t->step_sec;
    src->steps_per_sec = t->sps;
    if (src->target_steps > step && t->sps > 0) src->eta_sec = (double)(src->target_steps - step) / t->sps;
}

void tui_frame(tui *t, int force_update) {
    if (!t->scr.active || t->in_frame) return;
    t->in_frame = 1;
    tui_source src;
    char focus[64];
    tui_fill_source(t, &src, focus, sizeof focus);
    update_rate(t, &src);
    int cx, cy;
    tui_compose(t, &src, force_update, &cx, &cy);
    screen_flush(&t->scr, cx, cy);
    double now = tui_now();
    if (src.running && t->last_running && now - t->last_frame > t->max_gap) t->max_gap = now - t->last_frame;
    t->last_running = src.running;
    t->drew_frozen = t->frozen; /* the next frame between steps must read the panels' data again */
    t->last_frame = now;
    t->frames++;
    t->need_draw = 0;
    t->in_frame = 0;
}

/* ---- the core tick: live frames inside one long step ------------------------------------------------ */

/* Called by icl_tick() between the blocks of a forward or backward pass
 * (core/tick.h), at most every FRAME_TRAIN, whenever a slice or a command
 * runs. A medium model's step takes up to a second; without this the screen
 * would freeze for that long. The model is half updated, so the frame is
 * frozen (the panels draw their last data; the status line and the prompt
 * are live), and keys that would run Lua or a step wait for the step's end
 * (tui_input_poll_mid_step). */
static void on_mid_step(void *ud) {
    tui *t = ud;
    if (!t->scr.active || t->in_frame || t->mid_step || !(t->in_slice || t->busy)) return;
    if (tui_now() - t->last_frame < FRAME_TRAIN && !t->need_draw) return;
    t->mid_step = 1;
    if (t->busy && !t->in_slice) tui_input_poll_busy(t, 0);
    else tui_input_poll_mid_step(t);
    tui_output_drain(&t->out, t->scr.out_fd, t->scr.err_fd);
    t->frozen = 1;
    tui_frame(t, 0);
    t->frozen = 0;
    t->mid_step = 0;
}

/* ---- the tick hook: live panels inside a blocking command ---------------------------------------- */

static void on_tick(lbind_tick *k, lua_State *L, const lbind_trainer *ut, long target) {
    tui *t = (tui *)(void *)((char *)k - offsetof(tui, tick));
    (void)ut;
    if (t->in_slice || !t->busy || !t->scr.active) return;
    t->Lrun = L;
    t->run_target = target;
    t->run_active = 1;
    tui_input_poll_busy(t, 0);
    tui_output_drain(&t->out, t->scr.out_fd, t->scr.err_fd);
    if (t->need_draw || t->drew_frozen || tui_now() - t->last_frame >= FRAME_TRAIN) tui_frame(t, 0);
    while (t->run_paused && !icl_interrupt_pending()) { /* F5: hold the run here */
        tui_input_poll_busy(t, 50);
        tui_output_drain(&t->out, t->scr.out_fd, t->scr.err_fd);
        if (t->need_draw || t->out.dirty || tui_now() - t->last_frame >= FRAME_IDLE) tui_frame(t, 0);
    }
    t->run_paused = 0;
    t->Lrun = NULL;
}

/* ---- Lua: icl.theme, icl.tui ------------------------------------------------------------------------ */

static tui *self(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, SELF_KEY);
    tui *t = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return t;
}

static int l_theme(lua_State *L) {
    tui *t = self(L);
    if (!t) return luaL_error(L, "icl.theme: there is no screen (themes are for the TUI)");
    if (!lua_isnoneornil(L, 1)) {
        const char *name = luaL_checkstring(L, 1);
        if (screen_set_theme(&t->scr, name) != ICL_OK) return luaL_error(L, "icl.theme: %s", icl_error());
        t->need_draw = 1;
    }
    lua_pushstring(L, theme_name(t->scr.theme));
    return 1;
}

/* icl.tui.stats([reset]) -> { frames =, max_gap = seconds }: how live the
 * screen was; max_gap is the longest time between two frames drawn while
 * training (a step in progress included). */
static int l_stats(lua_State *L) {
    tui *t = self(L);
    if (!t) return luaL_error(L, "icl.tui.stats: there is no screen");
    lua_createtable(L, 0, 2);
    lua_pushinteger(L, t->frames);
    lua_setfield(L, -2, "frames");
    lua_pushnumber(L, t->max_gap);
    lua_setfield(L, -2, "max_gap");
    if (lua_toboolean(L, 1)) {
        t->frames = 0;
        t->max_gap = 0;
    }
    return 1;
}

static void install_api(tui *t) {
    lua_State *L = t->L;
    lua_pushlightuserdata(L, t);
    lua_setfield(L, LUA_REGISTRYINDEX, SELF_KEY);
    lbind_push_icl(L);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    lua_pushcfunction(L, l_theme);
    lbind_setdoc(L, lua_gettop(L), "icl.theme",
                 "icl.theme([name]) -> name: the TUI's colours: \"default\" (dark terminals), \"cb\" (colour-blind\n"
                 "safe, Okabe-Ito) or \"mono\" (no colours: bold, dim, reverse). $ICLPLAY_THEME picks one at start;\n"
                 "NO_COLOR=1 starts in mono.");
    lua_setfield(L, -2, "theme");
    lua_createtable(L, 0, 3);
    lua_pushinteger(L, EVAL_EVERY);
    lua_setfield(L, -2, "eval_every");
    lua_pushinteger(L, EVAL_PROMPTS);
    lua_setfield(L, -2, "eval_prompts");
    lua_pushcfunction(L, l_stats);
    lbind_setdoc(L, lua_gettop(L), "icl.tui.stats",
                 "icl.tui.stats([reset]) -> { frames =, max_gap = }: frames drawn so far and the longest time in\n"
                 "seconds between two frames while training (one long step included); reset = true starts over.");
    lua_setfield(L, -2, "stats");
    lbind_setdoc(L, lua_gettop(L), "icl.tui",
                 "icl.tui: settings of the TUI's F5 training: eval_every = 200 (steps between the evaluations that\n"
                 "feed the ICL panel; 0 turns them off), eval_prompts = 128 (prompts per evaluation);\n"
                 "icl.tui.stats() says how live the screen was.");
    lua_setfield(L, -2, "tui");
    lua_pop(L, 1);
}

/* lua/tui_start.lua (or $ICLPLAY_START): the experiment the screen opens with. */
static void run_start(tui *t) {
    lua_State *L = t->L;
    int top = lua_gettop(L);
    const char *env = getenv("ICLPLAY_START");
    if (env && *env) {
        lua_pushstring(L, env);
    } else {
        lbind_push_icl(L);
        if (lua_istable(L, -1)) lua_getfield(L, -1, "lua_dir");
        else lua_pushnil(L);
        if (lua_type(L, -1) != LUA_TSTRING) {
            tui_output_printf(&t->out, TUI_ROLE_WARN, "no lua/ folder (set ICLPLAY_LUA): no experiment loaded\n");
            lua_settop(L, top);
            return;
        }
        lua_pushfstring(L, "%s/tui_start.lua", lua_tostring(L, -1));
    }
    const char *path = lua_tostring(L, -1);
    snprintf(t->running, sizeof t->running, "%s", path);
    if (luaL_loadfile(L, path) != LUA_OK) {
        tui_output_printf(&t->out, TUI_ROLE_ERROR, "%s\n", lua_tostring(L, -1));
    } else {
        t->busy = 1;
        tui_frame(t, 1);
        if (repl_docall(L, 0, 0) != LUA_OK) tui_output_printf(&t->out, TUI_ROLE_ERROR, "%s\n", lua_tostring(L, -1));
        t->busy = 0;
        t->run_active = 0;
    }
    t->running[0] = '\0';
    lua_settop(L, top);
    t->gen++;
}

/* ---- the loop ------------------------------------------------------------------------------------------ */

static void loop(tui *t) {
    while (!t->quit && !icl_terminate_pending()) { /* SIGTERM, SIGHUP: leave; main writes the recovery */
        tui_input_poll(t, t->training ? 0 : 40);
        if (t->quit) break;
        t->run_active = 0;
        if (t->training && !t->quit_ask) run_slice(t);
        tui_output_drain(&t->out, t->scr.out_fd, t->scr.err_fd);
        double period = t->training ? FRAME_TRAIN : FRAME_IDLE;
        if (t->need_draw || t->out.dirty || t->drew_frozen || screen_repaint_due(&t->scr) ||
            tui_now() - t->last_frame >= period)
            tui_frame(t, 0);
    }
}

static void destroy(tui *t) {
    for (int i = 0; i < TUI_NPANELS; i++) panel_free(t->p[i]);
    panel_free(t->status);
    tui_output_free(&t->out);
    free(t);
}

int tui_main(lua_State *L) {
    static const char *const names[TUI_NPANELS] = {"loss", "icl", "attention", "ssm", "model"};
    tui *t = calloc(1, sizeof *t);
    if (!t) return -1;
    t->L = L;
    t->zoom = -1;
    t->focused = TUI_PANEL_LOSS;
    int ok = tui_output_init(&t->out, 5000) == ICL_OK;
    for (int i = 0; i < TUI_NPANELS; i++) ok = (t->p[i] = panel_new(names[i])) != NULL && ok;
    ok = (t->status = panel_status_new()) != NULL && ok;
    if (!ok || screen_open(&t->scr, NULL) != ICL_OK) {
        fprintf(stderr, "iclplay: %s\n", icl_error());
        destroy(t);
        return -1;
    }
    if (repl_new(&t->r, L, tui_output_sink, &t->out) != ICL_OK) {
        screen_close(&t->scr);
        fprintf(stderr, "iclplay: %s\n", icl_error());
        destroy(t);
        return -1;
    }
    t->out.src_out = t->scr.out_fd;
    t->out.src_err = t->scr.err_fd;
    tui_output_install_lua(L, &t->out);
    install_api(t);
    t->tick = (lbind_tick){on_tick, TICK_PERIOD, 0};
    lbind_set_tick(L, &t->tick);
    icl_tick_set(on_mid_step, t, TICK_POLL);
    tui_input_open(t);
    tui_output_printf(&t->out, TUI_ROLE_DIM, "iclplay %s (%s): F1 keys, help() Lua help, Ctrl-D quits\n",
                      ICLPLAY_VERSION, LUA_RELEASE);
    run_start(t);
    char notice[4600];
    if (lbind_recovery_notice(notice, sizeof notice)) tui_output_printf(&t->out, TUI_ROLE_WARN, "%s\n", notice);
    tui_frame(t, 1);
    loop(t);

    lbind_set_tick(L, NULL);
    icl_tick_set(NULL, NULL, 0);
    tui_input_close(t);
    lua_pushnil(L);
    lua_setfield(L, LUA_REGISTRYINDEX, SELF_KEY);
    tui_output_install_lua(L, NULL);
    repl_free(t->r);
    t->out.src_out = t->out.src_err = -1;
    screen_close(&t->scr);
    destroy(t);
    return 0;
}
