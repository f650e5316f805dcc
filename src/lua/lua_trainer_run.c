/*
 * lua_trainer_run.c - tr:run{...}: train until a stopping rule fires, with
 * logs, a progress line, periodic evaluation and a callback.
 *
 *   tr:run{ max_steps = 5000, until_loss = 0.05, max_time = 60, every = 100,
 *           callback = function(tr) ... end, log = "run.csv", eval_every = 500 }
 *
 * Logs (log = path), chosen by the file's extension:
 *   .csv    one row per step: "step,loss,grad_norm,lr,time_s"; evaluations
 *           (eval_every) go to a second file next to it, <stem>.eval.csv,
 *           one row per curve: "step,curve,metric,mean,time_s" (mean over
 *           positions), so both files stay rectangular.
 *   .jsonl  one object per line in the same file: {"kind":"train","step":..,
 *           "loss":..,"grad_norm":..,"lr":..,"time_s":..} and {"kind":"eval",
 *           "step":..,"metric":..,"prompts":..,"time_s":..,"curves":{"model":
 *           {"mean":..,"by_position":[..]},..}} (null where undefined).
 * Files are opened once per run in append mode (a CSV header is written
 * only into an empty file), so repeated runs extend one log; time_s counts
 * from the start of the run. A log that cannot be opened is an error
 * before any step.
 *
 * Logs never hold half a line: each record (a row, or an evaluation's rows)
 * is formatted in memory and handed to the kernel with one write(2) as soon
 * as it is made, so a crash or a kill loses at most the record being made.
 * If the write fails or is short (disk full, file size limit, the file
 * system went read-only), the bytes it did write are cut off again, and
 * the run stops with "tr:run: writing the log '<path>' failed after step N:
 * <reason>"; the trainer and its model are as after step N, in memory.
 *
 * A failed step raises (the core's message names the step and, for a
 * NaN/Inf, where it appeared; trainer.h): the run stops there, the trainer
 * is as before that step, the logs hold every completed step.
 *
 * Not here: the trainer object and tr:step (lua_trainer.c), the training
 * step itself (trainer.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/interrupt.h"
#include "lua/lua_trainer_internal.h"

#define RUNSTATE_MT "icl.runstate"
#define RUN_WINDOW 10          /* steps averaged for until_loss and the progress line */
#define RUN_EVAL_PROMPTS 256   /* prompts of a run's periodic evaluation */
#define PROGRESS_PERIOD 0.1    /* seconds between redraws of the progress line */

/* What a run must release however it ends: a to-be-closed userdata, so a
 * Lua error (a callback's, an interrupt, a failed step) closes the logs and
 * ends the progress line too. */
typedef struct {
    int log;           /* train rows: a file descriptor, or -1 */
    int elog;          /* eval rows: a second file for CSV, == log for JSONL, or -1 */
    char *rec;         /* the record being formatted (malloc) */
    size_t len, cap;
    int rec_failed;    /* formatting ran out of memory */
    int progress_open; /* a progress line is on stderr without its newline */
} run_files;

static int runfiles_close(lua_State *L) {
    run_files *rf = luaL_checkudata(L, 1, RUNSTATE_MT);
    if (rf->elog >= 0 && rf->elog != rf->log) close(rf->elog);
    if (rf->log >= 0) close(rf->log);
    rf->log = rf->elog = -1;
    free(rf->rec);
    rf->rec = NULL;
    rf->len = rf->cap = 0;
    if (rf->progress_open) fputc('\n', stderr);
    rf->progress_open = 0;
    return 0;
}

void ltrainer_open_run(lua_State *L) {
    luaL_newmetatable(L, RUNSTATE_MT);
    lua_pushcfunction(L, runfiles_close);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, runfiles_close);
    lua_setfield(L, -2, "__gc");
    lua_pop(L, 1);
}

/* ---- records: formatted in memory, written whole ----------------------------------- */

static void rec_printf(run_files *rf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void rec_printf(run_files *rf, const char *fmt, ...) {
    if (rf->rec_failed) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int w = vsnprintf(rf->rec ? rf->rec + rf->len : NULL, rf->cap - rf->len, fmt, ap);
        va_end(ap);
        if (w < 0) {
            rf->rec_failed = 1;
            return;
        }
        if ((size_t)w < rf->cap - rf->len) {
            rf->len += (size_t)w;
            return;
        }
        size_t cap = rf->cap ? rf->cap : 256;
        while (cap - rf->len <= (size_t)w) cap *= 2;
        char *p = realloc(rf->rec, cap);
        if (!p) {
            rf->rec_failed = 1;
            return;
        }
        rf->rec = p;
        rf->cap = cap;
    }
}

/* Append the n bytes at p to fd, normally with one write(2). Returns 0, or
 * the errno of the failure, after cutting off whatever part of the record
 * did reach the file (so the file still ends with a complete line). */
static int write_record(int fd, const char *p, size_t n) {
    size_t done = 0;
    int e = 0;
    while (done < n) {
        ssize_t w = write(fd, p + done, n - done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            e = w < 0 ? errno : EIO;
            break;
        }
        done += (size_t)w; /* a short write: the next call reports why */
    }
    if (!e) return 0;
    struct stat sb;
    if (done > 0 && fstat(fd, &sb) == 0 && (size_t)sb.st_size >= done) {
        int rc = ftruncate(fd, sb.st_size - (off_t)done);
        (void)rc; /* if even that fails, the write's own error is still the one to report */
    }
    return e;
}

/* Write the record built in rf to fd (path names it) and clear it; raise
 * on failure. `step` is the last completed step. */
static void flush_record(lua_State *L, run_files *rf, int fd, const char *path, long step) {
    if (rf->rec_failed) {
        rf->rec_failed = 0;
        rf->len = 0;
        luaL_error(L, "tr:run: out of memory formatting a row of the log '%s' after step %I; the run stopped", path,
                   (lua_Integer)step);
    }
    int e = write_record(fd, rf->rec, rf->len);
    rf->len = 0;
    if (e) {
        if (rf->progress_open) fputs("\r\033[K", stderr);
        rf->progress_open = 0;
        int full = e == ENOSPC || e == EFBIG || e == EDQUOT;
        luaL_error(L,
                   "tr:run: writing the log '%s' failed after step %I: %s%s; the run stopped, the trainer and its "
                   "model are in memory (save them elsewhere if needed)",
                   path, (lua_Integer)step, strerror(e), full ? " (disk full or file size limit)" : "");
    }
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n > k && !strcasecmp(s + n - k, suffix);
}

/* Open path for appending; [out] *empty says whether it holds nothing yet. */
static int open_log(lua_State *L, const char *path, int *empty) {
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) luaL_error(L, "tr:run: cannot open the log '%s': %s", path, strerror(errno));
    struct stat sb;
    *empty = fstat(fd, &sb) == 0 && sb.st_size == 0;
    return fd;
}

/* A JSON number, or null where it is not finite. */
static void json_num(run_files *rf, double v) {
    if (isfinite(v)) rec_printf(rf, "%.9g", v);
    else rec_printf(rf, "null");
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

/* The rows of one evaluation (CSV: one per curve) or its JSONL object. */
static void format_eval(run_files *rf, int jsonl, const eval_report *r, long step, double t) {
    const char *metric = lbind_metric_name(r->metric);
    if (!jsonl) {
        for (int c = 0; c < r->n_curves; c++) {
            rec_printf(rf, "%ld,%s,%s,", step, r->names[c], metric);
            double m = curve_mean(&r->curves[c]);
            if (isfinite(m)) rec_printf(rf, "%.9g", m);
            rec_printf(rf, ",%.3f\n", t);
        }
        return;
    }
    rec_printf(rf, "{\"kind\":\"eval\",\"step\":%ld,\"metric\":\"%s\",\"prompts\":%d,\"time_s\":%.3f,\"curves\":{",
               step, metric, r->n_prompts, t);
    for (int c = 0; c < r->n_curves; c++) {
        const eval_curve *cv = &r->curves[c];
        rec_printf(rf, "%s\"%s\":{\"mean\":", c ? "," : "", r->names[c]);
        json_num(rf, curve_mean(cv));
        rec_printf(rf, ",\"by_position\":[");
        for (int p = 0; p < cv->positions; p++) {
            if (p) rec_printf(rf, ",");
            json_num(rf, cv->mean[p]);
        }
        rec_printf(rf, "]}");
    }
    rec_printf(rf, "}}\n");
}

/* ---- the progress line ------------------------------------------------------------ */

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

/* ---- tr:run ---------------------------------------------------------------------- */

static const char *const run_fields[] = {"max_steps", "until_loss", "max_time", "every", "callback",
                                         "log", "eval_every", "progress", NULL};

const char ltrainer_run_doc[] =
    "tr:run{ max_steps =, until_loss =, max_time = seconds, every = 100, callback = function(tr) ... end,\n"
    "  log = \"run.csv\" | \"run.jsonl\", eval_every = N, progress = true } -> { steps =, total =, loss =,\n"
    "  mean_loss =, reason =, time_s =, steps_per_s = }\n"
    "Trains until a rule fires (reason \"max_steps\", \"until_loss\", \"max_time\" or \"callback\"); at least one is\n"
    "needed. max_steps counts the steps of this call; until_loss compares the mean loss of the last 10 steps;\n"
    "every N steps callback(tr) runs (returning false stops). eval_every = N evaluates on 256 prompts (with the\n"
    "task's baselines) and keeps the report (tr.last_eval, tr:history().eval).\n"
    "Logs: .csv rows step,loss,grad_norm,lr,time_s (evaluations in <stem>.eval.csv: step,curve,metric,mean,\n"
    "time_s); .jsonl objects of kind \"train\" and \"eval\". Appended to, each row written whole as it is made; an\n"
    "unopenable log fails before any step, a failed write (disk full) stops the run with an error naming the file.\n"
    "A step with a NaN/Inf loss or gradient stops the run with an error naming the step and the block where it\n"
    "appeared; the trainer stays as before that step. Ctrl-C stops at a step boundary.\n"
    "A progress line (step, loss, steps/s, ETA) goes to stderr when it is a terminal and progress ~= false.";

int ltrainer_run(lua_State *L) {
    const char *W = "tr:run";
    lbind_model *lm;
    lbind_task *lt;
    lbind_trainer *ut = ltrainer_check(L, 1, W, &lm, &lt);
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
    ltrainer_check_idle(L, lm, lt, W);

    /* Everything the run must release lives in this to-be-closed slot. */
    run_files *rf = lua_newuserdatauv(L, sizeof *rf, 0); /* 6 */
    memset(rf, 0, sizeof *rf);
    rf->log = rf->elog = -1;
    luaL_setmetatable(L, RUNSTATE_MT);
    lua_toclose(L, 6);
    const char *elog_path = NULL; /* kept alive in slot 7 */
    lua_pushnil(L);               /* 7 */
    if (log_path) {
        int empty;
        rf->log = open_log(L, log_path, &empty);
        if (!jsonl && empty) {
            rec_printf(rf, "step,loss,grad_norm,lr,time_s\n");
            flush_record(L, rf, rf->log, log_path, ut->tr.step);
        }
        if (jsonl) {
            rf->elog = rf->log;
            elog_path = log_path;
        } else if (eval_every) {
            size_t n = strlen(log_path) - 4;
            lua_pushfstring(L, "%s.eval.csv", lua_pushlstring(L, log_path, n)); /* 8, 9 */
            lua_replace(L, 7);
            lua_settop(L, 7);
            elog_path = lua_tostring(L, 7);
            rf->elog = open_log(L, elog_path, &empty);
            if (empty) {
                rec_printf(rf, "step,curve,metric,mean,time_s\n");
                flush_record(L, rf, rf->elog, elog_path, ut->tr.step);
            }
        }
    }
    lbind_eval_request ereq;
    if (eval_every) {
        lbind_eval_options(L, lua_gettop(L) + 1, W, lt->t, &ereq); /* none: the task's defaults */
        ereq.o.n_prompts = RUN_EVAL_PROMPTS;
    }

    const long start = ut->tr.step, target = max_steps ? start + max_steps : 0;
    const double t0 = ltrainer_now();
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
        icl_status st = ltrainer_step_once(L, ut, lm, lt);
        if (st) {
            clear_progress(rf);
            return ltrainer_fail_step(L, W, st, ut);
        }
        done++;
        window[(done - 1) % RUN_WINDOW] = ut->tr.loss;
        if (n_window < RUN_WINDOW) n_window++;
        double mean = 0;
        for (int i = 0; i < n_window; i++) mean += window[i];
        mean /= n_window;
        const double t = ltrainer_now() - t0;
        if (rf->log >= 0) {
            if (jsonl)
                rec_printf(rf, "{\"kind\":\"train\",\"step\":%ld,\"loss\":%.9g,\"grad_norm\":%.9g,\"lr\":%.9g,"
                               "\"time_s\":%.3f}\n",
                           ut->tr.step, ut->tr.loss, ut->tr.grad_norm, ut->tr.lr, t);
            else
                rec_printf(rf, "%ld,%.9g,%.9g,%.9g,%.3f\n", ut->tr.step, ut->tr.loss, ut->tr.grad_norm, ut->tr.lr, t);
            flush_record(L, rf, rf->log, log_path, ut->tr.step);
        }
        if (eval_every && done % eval_every == 0) {
            eval_report r;
            ltrainer_busy g = ltrainer_enter_busy(L, lm, lt);
            st = evaluate(ut->tr.m, ut->tr.t, &ereq.o, &r);
            ltrainer_leave_busy(g);
            if (st) {
                clear_progress(rf);
                return ltrainer_fail_step(L, W, st, ut);
            }
            ltrainer_remember_eval(ut, &r);
            if (rf->elog >= 0) {
                format_eval(rf, jsonl, &ut->last_eval, ut->tr.step, ltrainer_now() - t0);
                flush_record(L, rf, rf->elog, elog_path, ut->tr.step);
            }
        }
        int stop = 0;
        if (done % every == 0 && has_cb) {
            clear_progress(rf); /* so what the callback prints starts on a clean line */
            lua_pushvalue(L, 3);
            lua_pushvalue(L, 1);
            lua_call(L, 1, 1);
            stop = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
            lua_pop(L, 1);
            /* the callback may have closed the trainer, its model or task */
            ut = ltrainer_check(L, 1, W, &lm, &lt);
            last_draw = -1;
        }
        const double t_now = ltrainer_now() - t0;
        if (stop) reason = "callback";
        else if (!isnan(until_loss) && n_window == RUN_WINDOW && mean <= until_loss) reason = "until_loss";
        else if (!isnan(max_time) && t_now >= max_time) reason = "max_time";
        else if (max_steps && done >= max_steps) reason = "max_steps";
        if (!reason) ltrainer_tick(L, ut, target);
        if (progress && (reason || last_draw < 0 || t_now - last_draw >= PROGRESS_PERIOD)) {
            double rate = done / (t_now > 0 ? t_now : 1e-9), eta = NAN;
            if (max_steps) eta = (target - ut->tr.step) / rate;
            if (!isnan(max_time) && (isnan(eta) || max_time - t_now < eta)) eta = max_time - t_now;
            draw_progress(rf, ut->tr.step, target, mean, rate, eta);
            last_draw = t_now;
        }
    }
    const double elapsed = ltrainer_now() - t0;
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
