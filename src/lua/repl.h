/*
 * repl.h - the Lua read-eval-print core that the plain REPL and the TUI
 * share, the blocking plain REPL built on it, and Tab completion.
 *
 * The core is line-driven and knows nothing about terminals: the caller
 * reads a line however it likes (GNU Readline, a curses prompt, a test) and
 * feeds it; the core answers "need more" for an incomplete statement or
 * runs the chunk. Everything the chunk prints and every result or error goes
 * through a sink callback, so the TUI can route it into its output panel:
 *
 *   repl *r;  repl_new(&r, L, my_sink, my_ctx);
 *   if (repl_feed(r, "for i = 1, 3 do") == REPL_MORE) show(repl_prompt(r));  // ">> "
 *   repl_feed(r, "print(i) end");    // runs; "1\n2\n3\n" reaches my_sink
 *   repl_free(r);
 *
 * Behaviour borrowed from Lua's own lua.c: a line is first tried as
 * `return <line>;` so that expressions print their values (`=expr` too);
 * a chunk whose syntax error ends at <eof> continues on the next line;
 * runtime errors are reported with a traceback and never end the process;
 * a chunk starting with `local` gets a warning that the local will not
 * survive to the next line. Results are shown with icl.pretty (lua/init.lua)
 * when it exists, else with tostring, separated by tabs.
 *
 * Ctrl-C: repl_docall() runs a function with a SIGINT handler that only
 * sets the core's interrupt flag (core/interrupt.h, polled by trainers
 * between steps) and a Lua hook that raises "interrupted!" at the next Lua
 * instruction, so a `while true do end` stops too; the previous handler,
 * the hook and the flag are restored or cleared when the call returns. It
 * hooks the main coroutine only: a runaway loop inside a coroutine stops
 * when it returns to the main one. SIGTERM and SIGHUP stop a command the
 * same way and also mark the process as ending (icl_terminate_pending):
 * the REPL loops then leave, and no new command starts.
 *
 * Not here: the curses screen (src/tui), the `icl` module (lua_icl.c).
 */
#ifndef ICL_REPL_H
#define ICL_REPL_H

#include <stddef.h>

#include <lua.h>

#include "core/status.h"

/* The program's version: `iclplay --version` and icl.version. */
#define ICLPLAY_VERSION "0.1.0"

typedef enum { REPL_OUT = 0, REPL_ERR = 1 } repl_stream;

/* Receives output: print() text and results on REPL_OUT, errors and warnings
 * on REPL_ERR. `text` is not NUL-terminated (it may contain NULs); complete
 * messages end with "\n". */
typedef void (*repl_sink_fn)(void *ctx, repl_stream stream, const char *text, size_t len);

typedef enum {
    REPL_DONE = 0, /* the chunk ran (or failed with a reported error) */
    REPL_MORE = 1  /* the statement is incomplete: feed the next line */
} repl_result;

typedef struct repl repl;

/* A REPL on L (which should already have `icl` loaded). Replaces the global
 * print with one that writes through the sink; repl_free puts the old one
 * back. [out] *out. */
icl_status repl_new(repl **out, lua_State *L, repl_sink_fn sink, void *ctx);
void repl_free(repl *r);

/* Feed one input line (without its newline). Runs the pending chunk when it
 * is complete and reports results or errors through the sink. */
repl_result repl_feed(repl *r, const char *line);
/* Nothing more will come (end of input): a pending incomplete chunk is
 * reported as the syntax error it is, as lua.c does. */
void repl_finish(repl *r);
/* Drop a pending incomplete chunk (Ctrl-C at the prompt). */
void repl_cancel(repl *r);
/* 1 if lines of an incomplete chunk are waiting. */
int repl_pending(const repl *r);
/* The prompt for the next line: the global _PROMPT (default "> ") or, in
 * the middle of a chunk, _PROMPT2 (default ">> "). Valid until the next call. */
const char *repl_prompt(repl *r);
/* The text of the last complete chunk as typed (lines joined by "\n"), for
 * history; NULL before the first. Valid until the next feed. */
const char *repl_last_chunk(const repl *r);

/* lua.c's docall: call the function below narg arguments on the stack in
 * protected mode with a traceback message handler and the Ctrl-C handling
 * described above. Returns the lua_pcall status; on error the message (with
 * traceback) is on the stack. */
int repl_docall(lua_State *L, int narg, int nres);
/* 1 if a signal (Ctrl-C, SIGTERM, SIGHUP) stopped the last repl_docall. */
int repl_last_call_interrupted(void);

/* The blocking plain REPL on stdin/stdout: GNU Readline with history in
 * ~/.iclplay_history and Tab completion when stdin is a terminal, plain
 * line reads without prompts otherwise. Ctrl-C at the prompt clears the
 * line (and a pending chunk); Ctrl-D or end of input returns 0. */
int repl_run_plain(lua_State *L);

/* The help registry lua_icl.c keeps (lbind_setdoc) and completion reads:
 * registry[REPL_DOCS_KEY] = { names = { [name] = doc }, values = weak-keyed
 * { [value] = name } }, with names like "icl.model", "icl.model:forward"
 * (a method), "icl.trainer.loss" (a field), "tasks.parity" (a topic entry). */
#define REPL_DOCS_KEY "icl.docs"

/* ---- completion (complete.c) ---------------------------------------------
 * Completes the Lua expression prefix `word` against L's globals: "pri" ->
 * print, "icl.pre" -> icl.presets, "m:for" -> m:forward (methods through the
 * metatable's __index table, or the help registry's "<type>:<method>" names
 * when __index is a function), "tr.lo" -> tr.loss. Keywords complete too.
 * [out] *out: a sorted malloc'd array of malloc'd full words; returns the
 * count (0 and *out = NULL if none). Free with repl_complete_free. Never
 * raises. */
int repl_complete(lua_State *L, const char *word, char ***out);
void repl_complete_free(char **list, int n);
/* Make L the state GNU Readline's Tab completion looks in (also works for
 * Readline's callback interface, as the TUI uses). */
void repl_complete_install(lua_State *L);

#endif
