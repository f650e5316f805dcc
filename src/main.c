/*
 * main.c - iclplay's entry point: parse the first argument, pick the mode.
 * Only this file may end the process.
 *
 *   iclplay                        the playground: the TUI (panels around a Lua prompt) when stdin and
 *                                  stdout are terminals and TERM is not "dumb", else the plain REPL
 *   iclplay --plain                the Lua REPL with GNU Readline and no panels
 *   iclplay run script.lua [args]  run a script headless; `arg` as lua.c sets it
 *   iclplay -e 'code' [-e ...]     run code
 *   iclplay train [options]        the C training driver (no Lua)
 *   iclplay --help | --version
 *
 * Every Lua mode opens the standard libraries and `icl`, then runs
 * lua/init.lua from the folder next to the executable (or $ICLPLAY_LUA),
 * which sets package.path, help() and the presets.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "core/blas.h"
#include "core/interrupt.h"
#include "lua/lalloc.h"
#include "lua/lbind.h"
#include "lua/repl.h"
#include "train/train_cli.h"
#include "tui/screen.h"

typedef enum { MODE_REPL, MODE_TUI, MODE_RUN, MODE_EXEC } run_mode;

typedef struct {
    int argc;
    char **argv;
    run_mode mode;
    int script; /* index in argv of the script (MODE_RUN) */
    int status; /* the process exit status */
} main_ctx;

static void usage(void) {
    printf("iclplay %s - an interactive terminal playground for in-context learning\n\n"
           "usage:\n"
           "  iclplay                        start the playground: live panels around a Lua prompt (F1 lists the keys)\n"
           "  iclplay --plain                the Lua REPL without panels (also used when stdin is not a terminal)\n"
           "  iclplay run script.lua [args]  run a Lua script headless; its arguments are in `arg` and `...`\n"
           "  iclplay run - [args]           run a script read from stdin\n"
           "  iclplay -e 'code' [-e ...]     run Lua code\n"
           "  iclplay train [options]        train a model with the C driver (iclplay train --help)\n"
           "  iclplay --version\n"
           "  iclplay --help\n\n"
           "options (before the mode):\n"
           "  --lua-mem SIZE   cap Lua's own memory (default min(2G, RAM/4); $ICLPLAY_LUA_MEM)\n"
           "  --budget SIZE    largest model/batch footprint (default RAM/2; $ICLPLAY_BUDGET)\n\n"
           "In Lua: help() lists the topics, help(icl.model) explains a function, help(m) an object.\n"
           "The Lua library is loaded from lua/ next to the executable, or from $ICLPLAY_LUA.\n",
           ICLPLAY_VERSION);
}

/* The lua/ folder: $ICLPLAY_LUA, else lua/ next to the executable, else
 * ../share/iclplay/lua (an installed layout). Pushes it, or nil. */
static void push_lua_dir(lua_State *L) {
    const char *env = getenv("ICLPLAY_LUA");
    if (env && *env) {
        lua_pushstring(L, env);
        return;
    }
    char exe[4096], path[4200];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            static const char *const rel[] = {"lua", "../share/iclplay/lua"};
            for (size_t i = 0; i < sizeof rel / sizeof *rel; i++) {
                snprintf(path, sizeof path, "%s/%s/init.lua", exe, rel[i]);
                if (access(path, R_OK) == 0) {
                    lua_pushfstring(L, "%s/%s", exe, rel[i]);
                    return;
                }
            }
        }
    }
    lua_pushnil(L);
}

/* Runs lua/init.lua with the folder as its argument. A missing folder or a
 * failing start-up script is reported and the program goes on: the C
 * module still works without it. */
static void run_init(lua_State *L) {
    push_lua_dir(L);
    if (lua_isnil(L, -1)) {
        fprintf(stderr, "iclplay: warning: no lua/ folder next to the executable (set ICLPLAY_LUA); "
                        "help() and the presets are unavailable\n");
        lua_pop(L, 1);
        return;
    }
    const char *dir = lua_tostring(L, -1);
    lua_pushfstring(L, "%s/init.lua", dir);
    int st = luaL_loadfile(L, lua_tostring(L, -1));
    lua_remove(L, -2); /* the path */
    if (st == LUA_OK) {
        lua_insert(L, -2); /* the chunk below its argument, the folder */
        st = repl_docall(L, 1, 0);
    } else {
        lua_remove(L, -2); /* the folder */
    }
    if (st != LUA_OK) {
        fprintf(stderr, "iclplay: warning: start-up script failed: %s\n", lua_tostring(L, -1));
        lua_pop(L, 1);
    }
}

/* lua.c's createargtable: arg[0] is the script (or the program when there
 * is none), arg[1..] what follows it, negative indices what precedes it. */
static void create_arg_table(lua_State *L, const main_ctx *c) {
    int script = c->mode == MODE_RUN ? c->script : 0;
    lua_createtable(L, c->argc - script - 1, script + 1);
    for (int i = 0; i < c->argc; i++) {
        lua_pushstring(L, c->argv[i]);
        lua_rawseti(L, -2, i - script);
    }
    lua_setglobal(L, "arg");
}

static void report(lua_State *L) {
    fflush(stdout);
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "iclplay: %s\n", msg ? msg : "(error object is not a string)");
    fflush(stderr);
    lua_pop(L, 1);
}

static int run_script(lua_State *L, const main_ctx *c) {
    const char *path = c->argv[c->script];
    if (luaL_loadfile(L, strcmp(path, "-") ? path : NULL) != LUA_OK) {
        report(L);
        return 1;
    }
    int narg = c->argc - c->script - 1;
    luaL_checkstack(L, narg + 1, "too many arguments to the script");
    for (int i = c->script + 1; i < c->argc; i++) lua_pushstring(L, c->argv[i]);
    if (repl_docall(L, narg, 0) != LUA_OK) {
        report(L);
        return 1;
    }
    return 0;
}

static int run_exec(lua_State *L, const main_ctx *c) {
    for (int i = 1; i + 1 < c->argc; i += 2) {
        const char *code = c->argv[i + 1];
        if (luaL_loadbuffer(L, code, strlen(code), "=(command line)") != LUA_OK ||
            repl_docall(L, 0, 0) != LUA_OK) {
            report(L);
            return 1;
        }
    }
    return 0;
}

/* Everything Lua runs inside this protected call (as lua.c's pmain). */
static int pmain(lua_State *L) {
    main_ctx *c = lua_touserdata(L, 1);
    luaL_checkversion(L);
    luaL_openlibs(L);
    luaL_requiref(L, "icl", luaopen_icl, 1);
    lua_pop(L, 1);
    lbind_open_recovery(L);
    create_arg_table(L, c);
    run_init(L);
    switch (c->mode) {
    case MODE_RUN: c->status = run_script(L, c); break;
    case MODE_EXEC: c->status = run_exec(L, c); break;
    case MODE_TUI:
        c->status = tui_main(L);
        if (c->status >= 0) break;
        fprintf(stderr, "iclplay: no panels on this terminal: the plain REPL instead\n");
        /* fall through */
    case MODE_REPL:
        if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO))
            printf("iclplay %s (%s) - help() for help, Tab completes, Ctrl-C stops, Ctrl-D quits\n",
                   ICLPLAY_VERSION, LUA_RELEASE);
        char notice[4600]; /* the offer, to a person only (piped output stays the script's) */
        if (isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && lbind_recovery_notice(notice, sizeof notice))
            printf("%s\n", notice);
        c->status = repl_run_plain(L);
        break;
    }
    /* Ended by a signal: SIGTERM or SIGHUP anywhere, or a Ctrl-C that ended a
     * headless script. Unsaved training goes to the recovery folder. */
    int sig = icl_terminate_pending();
    if (!sig && (c->mode == MODE_RUN || c->mode == MODE_EXEC) && c->status != 0 && repl_last_call_interrupted())
        sig = SIGINT;
    if (sig) {
        fflush(stdout);
        lbind_write_recovery(L, sig, stderr);
        c->status = 128 + sig;
    }
    fflush(stdout);
    return 0;
}

/* Parses the mode; returns -1 to go on into Lua, else an exit status. */
static int parse_mode(main_ctx *c) {
    int argc = c->argc;
    char **argv = c->argv;
    if (argc < 2) { /* the TUI needs a real terminal on both ends */
        const char *term = getenv("TERM");
        int full = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO) && term && *term && strcmp(term, "dumb") != 0;
        c->mode = full ? MODE_TUI : MODE_REPL;
        return -1;
    }
    if (!strcmp(argv[1], "--plain")) {
        if (argc > 2) {
            fprintf(stderr, "iclplay: --plain takes no arguments (try iclplay --help)\n");
            return 2;
        }
        c->mode = MODE_REPL;
        return -1;
    }
    const char *a = argv[1];
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
        usage();
        return 0;
    }
    if (!strcmp(a, "--version") || !strcmp(a, "-v")) {
        printf("iclplay %s (%s, OpenBLAS with %s kernels)\n", ICLPLAY_VERSION, LUA_RELEASE, blas_kernels());
        return 0;
    }
    if (!strcmp(a, "train")) return train_cli_main(argc - 1, argv + 1);
    if (!strcmp(a, "run")) {
        if (argc < 3) {
            fprintf(stderr, "iclplay: run needs a script (iclplay run script.lua [args...])\n");
            return 2;
        }
        c->mode = MODE_RUN;
        c->script = 2;
        return -1;
    }
    if (!strcmp(a, "-e")) {
        for (int i = 1; i < argc; i += 2) {
            if (strcmp(argv[i], "-e") || i + 1 >= argc) {
                fprintf(stderr, "iclplay: expected -e 'code' pairs (got '%s'; try iclplay --help)\n", argv[i]);
                return 2;
            }
        }
        c->mode = MODE_EXEC;
        return -1;
    }
    fprintf(stderr, "iclplay: unknown mode '%s' (try iclplay --help)\n", a);
    return 2;
}

/* OpenMP threads that wait for work spin by default. On two cores shared
 * with anything else (a browser, a build) that is ruinous: a training step
 * measured 64 ms with passive waiting and 664 ms with spinning on a busy
 * machine. A short spin is no middle way: GOMP_SPINCOUNT=10000 made a small
 * Mamba step 11% faster with 2 threads on a quiet machine (53 -> 47 ms) and
 * twice as slow on a busy one (62 -> 117 ms; 100000: 588 ms). libgomp
 * reads OMP_WAIT_POLICY when it is loaded, before main, so when the user
 * has not chosen, set it and start the program once more. */
static void prefer_passive_openmp(char **argv) {
    if (getenv("OMP_WAIT_POLICY") || getenv("ICLPLAY_NO_REEXEC")) return;
    if (setenv("OMP_WAIT_POLICY", "PASSIVE", 1) || setenv("ICLPLAY_NO_REEXEC", "1", 1)) return;
    /* exec the file /proc/self/exe points to, not the link: the process
     * name (top, ps, pkill) comes from the executed path, and would read
     * "exe" */
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0 || (size_t)n >= sizeof self - 1) return;
    self[n] = '\0';
    execv(self, argv); /* returns only on failure: then go on as we are */
}

int main(int argc, char **argv) {
    prefer_passive_openmp(argv);
    icl_terminate_install(); /* SIGTERM, SIGHUP: leave cleanly (core/interrupt.h) */
    size_t lua_limit; /* --lua-mem, --budget, $ICLPLAY_LUA_MEM, $ICLPLAY_BUDGET (lua/lalloc.h) */
    if (lalloc_take_options(&argc, argv, &lua_limit) != ICL_OK) {
        fprintf(stderr, "iclplay: %s (try iclplay --help)\n", icl_error());
        return 2;
    }
    main_ctx c = {argc, argv, MODE_REPL, 0, 0};
    int early = parse_mode(&c);
    if (early >= 0) return early;
    if (c.mode == MODE_RUN || c.mode == MODE_EXEC) icl_interrupt_install(); /* Ctrl-C between calls is kept */
    lua_State *L = lalloc_newstate(lua_limit);
    if (!L) {
        fprintf(stderr, "iclplay: cannot create the Lua state (out of memory)\n");
        return 1;
    }
    lua_pushcfunction(L, pmain);
    lua_pushlightuserdata(L, &c);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        report(L);
        c.status = 1;
    }
    lalloc_close(L);
    return c.status;
}
