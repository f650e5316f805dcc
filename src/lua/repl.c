/*
 * repl.c - the line-driven Lua REPL core, docall with Ctrl-C handling, and
 * the blocking plain REPL (see repl.h).
 *
 * The core (repl_new / repl_feed) never touches the terminal: output goes to
 * the sink. The plain REPL at the bottom is one user of it; the TUI is
 * another. This file holds two of the process-wide globals C forces on us
 * (STYLE.md rule 12): the state the SIGINT handler hooks, and the line that
 * Readline's callback hands over.
 *
 * Not here: completion (complete.c), the icl module (lua_icl.c), startup
 * and modes (main.c).
 */
#include "lua/lalloc.h"
#include "lua/repl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <readline/history.h>
#include <readline/readline.h>

#include "core/interrupt.h"

#define REPL_CHUNKNAME "=input"
#define REPL_HISTORY_FILE ".iclplay_history"
#define REPL_HISTORY_MAX 1000

/* print()'s link back to its REPL; r is NULL after repl_free, and print then
 * falls back to stdout (a script may have kept a reference to it). */
typedef struct {
    repl *r;
} print_box;

struct repl {
    lua_State *L;
    repl_sink_fn sink;
    void *ctx;
    char *buf; /* the pending chunk as typed, lines joined by "\n" */
    size_t len, cap;
    int pending;
    char *last; /* the last complete chunk (history) */
    int has_last;
    print_box *box;
    int box_ref;          /* registry reference that keeps box alive until repl_free */
    int old_print_ref; /* registry ref of the print we replaced */
    char prompt[64];
};

/* ------------------------------------------------------------------------ */
/* docall: protected calls with a traceback and Ctrl-C                       */
/* ------------------------------------------------------------------------ */

/* The state the SIGINT handler hooks while repl_docall runs (lua.c's
 * globalL). Only the handler and repl_docall touch it. */
static lua_State *volatile sig_L;

/* Raises "interrupted!" at the next Lua instruction after a Ctrl-C, unless
 * someone already reported it (a trainer stopping at a step boundary clears
 * the flag and raises its own "interrupted at step N"): then it just goes. */
static void interrupt_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    lua_sethook(L, NULL, 0, 0);
    if (icl_interrupt_pending()) {
        icl_interrupt_clear();
        luaL_error(L, "interrupted!");
    }
}

/* Only the flag and the hook: both are async-signal-safe (lua_sethook is
 * documented as safe to call from a signal handler). */
static volatile sig_atomic_t call_interrupted; /* a signal stopped the last repl_docall */

/* Stop the running call at its next Lua instruction. */
static void arm_interrupt(void) {
    call_interrupted = 1;
    lua_State *L = sig_L;
    if (L) lua_sethook(L, interrupt_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

static void on_sigint_running(int sig) {
    if (sig != SIGINT) icl_terminate_signal(sig); /* SIGTERM, SIGHUP: the process ends after this call */
    icl_interrupt_request();
    arm_interrupt();
}

int repl_last_call_interrupted(void) { return call_interrupted != 0; }

/* lua.c's msghandler: the message (or the error object's __tostring) plus
 * a traceback. */
static int msghandler(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    if (msg == NULL) {
        if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) return 1;
        msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
    }
    luaL_traceback(L, L, msg, 1);
    return 1;
}

int repl_docall(lua_State *L, int narg, int nres) {
    int base = lua_gettop(L) - narg; /* the function's index */
    lua_pushcfunction(L, msghandler);
    lua_insert(L, base);
    struct sigaction sa, old[3];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint_running;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a blocking read in the command returns */
    lua_State *prev = sig_L;
    sig_L = L;
    call_interrupted = 0;
    /* SIGTERM and SIGHUP stop the command too (and then the process: see
     * core/interrupt.h); outside commands main's handlers only flag them. */
    static const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    int have_old[3];
    for (int i = 0; i < 3; i++) have_old[i] = sigaction(sigs[i], &sa, &old[i]) == 0;
    /* a signal that came between two calls (main's flag-only handlers) stops
     * this one at its first instruction */
    if (icl_interrupt_pending()) arm_interrupt();
    int status;
    if (icl_terminate_pending()) { /* no new command once the process is ending */
        lua_settop(L, base);
        lua_pushliteral(L, "interrupted: the process is ending");
        status = LUA_ERRRUN;
    } else {
        status = lua_pcall(L, narg, nres, base);
    }
    for (int i = 0; i < 3; i++)
        if (have_old[i]) sigaction(sigs[i], &old[i], NULL);
    sig_L = prev;
    /* A Ctrl-C that arrived as the call ended must not leak into the next. */
    if (lua_gethook(L) == interrupt_hook) lua_sethook(L, NULL, 0, 0);
    icl_interrupt_clear();
    lua_remove(L, base);
    return status;
}

/* ------------------------------------------------------------------------ */
/* output                                                                   */
/* ------------------------------------------------------------------------ */

static void emit(repl *r, repl_stream s, const char *text, size_t len) {
    if (r->sink) r->sink(r->ctx, s, text, len);
}

static void emits(repl *r, repl_stream s, const char *text) { emit(r, s, text, strlen(text)); }

/* print(...) through the sink: tostring of each argument, tabs, newline. */
static int repl_print(lua_State *L) {
    print_box *box = lua_touserdata(L, lua_upvalueindex(1));
    int n = lua_gettop(L);
    luaL_checkstack(L, 2 * n + 2, "too many arguments to print");
    for (int i = 1; i <= n; i++) {
        if (i > 1) lua_pushliteral(L, "\t");
        luaL_tolstring(L, i, NULL);
    }
    lua_pushliteral(L, "\n");
    lua_concat(L, n > 0 ? 2 * n : 1);
    size_t len;
    const char *s = lua_tolstring(L, -1, &len);
    if (box && box->r) {
        emit(box->r, REPL_OUT, s, len);
    } else {
        fwrite(s, 1, len, stdout);
        fflush(stdout);
    }
    return 0;
}

/* Protected: formats the values on the stack as one line, each through
 * icl.pretty (lua/init.lua) when it is a function, else tostring. */
static int format_values(lua_State *L) {
    int n = lua_gettop(L);
    luaL_checkstack(L, 2 * n + 8, "too many results to print");
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "icl");
    int have_pretty = 0;
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "pretty");
        have_pretty = lua_isfunction(L, -1);
    } else {
        lua_pushnil(L);
    }
    lua_replace(L, n + 1); /* the formatter (or nil) at n + 1 */
    lua_settop(L, n + 1);
    for (int i = 1; i <= n; i++) {
        if (i > 1) lua_pushliteral(L, "\t");
        if (have_pretty) {
            lua_pushvalue(L, n + 1);
            lua_pushvalue(L, i);
            lua_call(L, 1, 1);
            if (lua_type(L, -1) != LUA_TSTRING) {
                luaL_tolstring(L, -1, NULL);
                lua_remove(L, -2);
            }
        } else {
            luaL_tolstring(L, i, NULL);
        }
    }
    lua_pushliteral(L, "\n");
    lua_concat(L, 2 * n);
    return 1;
}

/* Shows the values at [first, top] and pops them. */
static void show_results(repl *r, int first) {
    lua_State *L = r->L;
    int n = lua_gettop(L) - first + 1;
    if (n <= 0) return;
    lua_pushcfunction(L, format_values);
    lua_insert(L, first);
    size_t len;
    if (lua_pcall(L, n, 1, 0) == LUA_OK) {
        const char *s = lua_tolstring(L, -1, &len);
        emit(r, REPL_OUT, s, len);
    } else {
        lua_pushfstring(L, "error printing the result: %s\n", lua_tostring(L, -1));
        const char *s = lua_tolstring(L, -1, &len);
        emit(r, REPL_ERR, s, len);
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Reports the error message on top of the stack and pops it. */
static void report_top(repl *r) {
    lua_State *L = r->L;
    size_t len;
    const char *msg = lua_tolstring(L, -1, &len);
    if (!msg) {
        msg = "(error object is not a string)";
        len = strlen(msg);
    }
    emit(r, REPL_ERR, msg, len);
    if (len == 0 || msg[len - 1] != '\n') emits(r, REPL_ERR, "\n");
    lua_pop(L, 1);
}

/* ------------------------------------------------------------------------ */
/* the core                                                                 */
/* ------------------------------------------------------------------------ */

icl_status repl_new(repl **out, lua_State *L, repl_sink_fn sink, void *ctx) {
    *out = NULL;
    repl *r = calloc(1, sizeof *r);
    if (!r) return icl_fail(ICL_ERR_NOMEM, "repl_new: out of memory");
    r->L = L;
    r->sink = sink;
    r->ctx = ctx;
    r->old_print_ref = LUA_NOREF;
    r->box_ref = LUA_NOREF;
    /* print -> sink. The box is a userdata so the closure stays safe after
     * repl_free; the old print is kept for repl_free to restore. */
    if (!lua_checkstack(L, 4)) {
        free(r);
        return icl_fail(ICL_ERR_NOMEM, "repl_new: Lua stack exhausted");
    }
    lua_getglobal(L, "print");
    r->old_print_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    r->box = lua_newuserdatauv(L, sizeof(print_box), 0);
    r->box->r = r;
    /* the registry keeps the box alive as long as r: after `print = nil` and
     * a collection, repl_free must still be able to write into it (fuzzing
     * found the use after free) */
    lua_pushvalue(L, -1);
    r->box_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_pushcclosure(L, repl_print, 1);
    lua_setglobal(L, "print");
    *out = r;
    return ICL_OK;
}

void repl_free(repl *r) {
    if (!r) return;
    r->box->r = NULL;
    luaL_unref(r->L, LUA_REGISTRYINDEX, r->box_ref);
    lua_rawgeti(r->L, LUA_REGISTRYINDEX, r->old_print_ref);
    lua_setglobal(r->L, "print");
    luaL_unref(r->L, LUA_REGISTRYINDEX, r->old_print_ref);
    free(r->buf);
    free(r->last);
    free(r);
}

static int buf_append(repl *r, const char *s, size_t n) {
    if (r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap : 256;
        while (cap < r->len + n + 1) cap *= 2;
        char *nb = realloc(r->buf, cap);
        if (!nb) return 0;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, s, n);
    r->len += n;
    r->buf[r->len] = 0;
    return 1;
}

/* lua.c's `incomplete`: a syntax error at <eof> means "keep reading". Pops
 * the message when it returns 1. */
static int is_incomplete(lua_State *L, int status) {
    static const char mark[] = "<eof>";
    const size_t ml = sizeof mark - 1;
    if (status != LUA_ERRSYNTAX) return 0;
    size_t lmsg;
    const char *msg = lua_tolstring(L, -1, &lmsg);
    if (msg && lmsg >= ml && !strcmp(msg + lmsg - ml, mark)) {
        lua_pop(L, 1);
        return 1;
    }
    return 0;
}

/* Compiles the pending chunk: "=expr" as `return expr`; otherwise
 * `return <chunk>;` first so expressions print, then the chunk as
 * statements. Pushes the function (LUA_OK), nothing (incomplete: returns
 * -1), or the error message. */
static int compile_pending(repl *r) {
    lua_State *L = r->L;
    const char *code = r->buf;
    if (code[0] == '=') {
        lua_pushfstring(L, "return %s", code + 1);
        size_t n;
        const char *s = lua_tolstring(L, -1, &n);
        int st = luaL_loadbuffer(L, s, n, REPL_CHUNKNAME);
        lua_remove(L, -2);
        if (is_incomplete(L, st)) return -1;
        return st;
    }
    lua_pushfstring(L, "return %s;", code);
    size_t n;
    const char *s = lua_tolstring(L, -1, &n);
    int st = luaL_loadbuffer(L, s, n, REPL_CHUNKNAME);
    lua_remove(L, -2);
    if (st == LUA_OK) return LUA_OK;
    lua_pop(L, 1);
    st = luaL_loadbuffer(L, code, r->len, REPL_CHUNKNAME);
    if (is_incomplete(L, st)) return -1;
    return st;
}

/* lua.c's checklocal: locals die with their chunk. */
static void check_local(repl *r) {
    const char *p = r->buf + strspn(r->buf, " \t");
    if (!strncmp(p, "local", 5) && (p[5] == ' ' || p[5] == '\t'))
        emits(r, REPL_ERR, "warning: locals do not survive across lines in interactive mode\n");
}

/* The chunk is complete: remember it for history and clear the buffer. */
static void end_chunk(repl *r) {
    free(r->last);
    r->last = malloc(r->len + 1);
    r->has_last = r->last != NULL;
    if (r->last) memcpy(r->last, r->buf, r->len + 1);
    r->len = 0;
    if (r->buf) r->buf[0] = 0;
    r->pending = 0;
}

repl_result repl_feed(repl *r, const char *line) {
    lua_State *L = r->L;
    if (!line) line = "";
    if ((r->pending && !buf_append(r, "\n", 1)) || !buf_append(r, line, strlen(line))) {
        emits(r, REPL_ERR, "out of memory: input dropped\n");
        repl_cancel(r);
        return REPL_DONE;
    }
    if (!lua_checkstack(L, 8)) {
        emits(r, REPL_ERR, "Lua stack exhausted: input dropped\n");
        repl_cancel(r);
        return REPL_DONE;
    }
    int top = lua_gettop(L);
    int st = compile_pending(r);
    if (st == -1) {
        r->pending = 1;
        return REPL_MORE;
    }
    check_local(r);
    end_chunk(r);
    if (st != LUA_OK) {
        report_top(r);
    } else {
        st = repl_docall(L, 0, LUA_MULTRET);
        if (st == LUA_OK) show_results(r, top + 1);
        else report_top(r);
    }
    if (st == LUA_ERRMEM) { /* Lua only says "not enough memory": say which limit and how to raise it */
        char why[256];
        if (lalloc_explain(L, why, sizeof why)) {
            emits(r, REPL_ERR, why);
            emits(r, REPL_ERR, "\n");
        }
    }
    lua_settop(L, top);
    return REPL_DONE;
}

void repl_finish(repl *r) {
    if (!r->pending) return;
    lua_State *L = r->L;
    int top = lua_gettop(L);
    int st = luaL_loadbuffer(L, r->buf, r->len, REPL_CHUNKNAME);
    if (st != LUA_OK) report_top(r);
    lua_settop(L, top);
    end_chunk(r);
}

void repl_cancel(repl *r) {
    r->len = 0;
    if (r->buf) r->buf[0] = 0;
    r->pending = 0;
}

int repl_pending(const repl *r) { return r->pending; }

const char *repl_last_chunk(const repl *r) { return r->has_last ? r->last : NULL; }

const char *repl_prompt(repl *r) {
    lua_State *L = r->L;
    const char *name = r->pending ? "_PROMPT2" : "_PROMPT";
    const char *dflt = r->pending ? ">> " : "> ";
    snprintf(r->prompt, sizeof r->prompt, "%s", dflt);
    if (!lua_checkstack(L, 2)) return r->prompt;
    lua_pushglobaltable(L);
    lua_pushstring(L, name);
    lua_rawget(L, -2); /* rawget: a prompt must not run code */
    if (lua_type(L, -1) == LUA_TSTRING) snprintf(r->prompt, sizeof r->prompt, "%s", lua_tostring(L, -1));
    lua_pop(L, 2);
    return r->prompt;
}

/* ------------------------------------------------------------------------ */
/* the plain REPL                                                           */
/* ------------------------------------------------------------------------ */

static void plain_sink(void *ctx, repl_stream s, const char *text, size_t len) {
    (void)ctx;
    if (s == REPL_ERR) {
        fflush(stdout);
        fwrite(text, 1, len, stderr);
        fflush(stderr);
    } else {
        fwrite(text, 1, len, stdout);
        fflush(stdout);
    }
}

/* Set by the SIGINT handler installed while waiting for input. */
static volatile sig_atomic_t prompt_sigint;

static void on_sigint_prompt(int sig) {
    (void)sig;
    prompt_sigint = 1;
}

static int install_prompt_sigint(struct sigaction *old) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint_prompt;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: the blocking read returns EINTR */
    return sigaction(SIGINT, &sa, old) == 0;
}

/* Reads lines without prompts (stdin is not a terminal, e.g. piped input). */
static void run_lines(repl *r) {
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        errno = 0;
        ssize_t n = getline(&line, &cap, stdin);
        if (icl_terminate_pending()) break;
        if (n < 0) {
            if (prompt_sigint || errno == EINTR) {
                prompt_sigint = 0;
                clearerr(stdin);
                repl_cancel(r);
                continue;
            }
            break;
        }
        if (n > 0 && line[n - 1] == '\n') line[--n] = 0;
        if (n > 0 && line[n - 1] == '\r') line[--n] = 0;
        repl_feed(r, line);
    }
    repl_finish(r);
    free(line);
}

/* The line Readline's callback handed over (NULL at end of input). */
static char *cb_line;
static int cb_line_ready;

static void on_rl_line(char *line) {
    cb_line = line;
    cb_line_ready = 1;
    /* Remove the handler now so Readline does not print the next prompt
     * before the command has run (and run with the terminal as it found it). */
    rl_callback_handler_remove();
}

static int history_path(char *path, size_t n) {
    const char *home = getenv("HOME");
    if (!home || !*home) return 0;
    int w = snprintf(path, n, "%s/%s", home, REPL_HISTORY_FILE);
    return w > 0 && (size_t)w < n;
}

/* Ctrl-C at the prompt: show ^C, drop the line and any pending chunk, and
 * start over on a fresh line. */
static void rl_clear_after_sigint(repl *r) {
    rl_free_line_state();
    rl_callback_sigcleanup();
    rl_echo_signal_char(SIGINT);
    rl_replace_line("", 0);
    rl_crlf();
    rl_callback_handler_remove();
    repl_cancel(r);
    rl_callback_handler_install(repl_prompt(r), on_rl_line);
}

static void run_readline(repl *r) {
    char hist[4096];
    int use_hist = history_path(hist, sizeof hist);
    rl_readline_name = "iclplay";
    rl_catch_signals = 0; /* SIGINT is ours: see install_prompt_sigint */
    repl_complete_install(r->L);
    using_history();
    if (use_hist) read_history(hist); /* failures (no file yet) are fine */
    for (;;) {
        cb_line = NULL;
        cb_line_ready = 0;
        rl_callback_handler_install(repl_prompt(r), on_rl_line);
        while (!cb_line_ready) {
            struct pollfd p = {.fd = fileno(rl_instream ? rl_instream : stdin), .events = POLLIN};
            int k = poll(&p, 1, -1);
            if (icl_terminate_pending()) { /* SIGTERM or SIGHUP at the prompt: leave, restoring the terminal */
                rl_callback_handler_remove();
                rl_crlf();
                break;
            }
            if (prompt_sigint) {
                prompt_sigint = 0;
                rl_clear_after_sigint(r);
                continue;
            }
            if (k < 0) {
                if (errno == EINTR) continue;
                rl_callback_handler_remove();
                cb_line_ready = 1; /* unreadable input: stop as at EOF */
                break;
            }
            rl_callback_read_char();
        }
        if (!cb_line) break; /* Ctrl-D (or a terminating signal): Readline has already moved to a new line */
        repl_result res = repl_feed(r, cb_line);
        free(cb_line);
        cb_line = NULL;
        const char *chunk = repl_last_chunk(r);
        if (res == REPL_DONE && chunk && chunk[strspn(chunk, " \t\n")]) {
            add_history(chunk);
            /* Failures to write history are ignored (read-only home, ...). */
            if (use_hist && append_history(1, hist) != 0) write_history(hist);
        }
    }
    repl_finish(r);
    if (use_hist) history_truncate_file(hist, REPL_HISTORY_MAX);
}

int repl_run_plain(lua_State *L) {
    repl *r = NULL;
    if (repl_new(&r, L, plain_sink, NULL) != ICL_OK) {
        fprintf(stderr, "iclplay: %s\n", icl_error());
        return 1;
    }
    struct sigaction old;
    int have_old = install_prompt_sigint(&old);
    if (isatty(STDIN_FILENO)) run_readline(r);
    else run_lines(r);
    if (have_old) sigaction(SIGINT, &old, NULL);
    repl_free(r);
    fflush(stdout);
    return 0;
}
