/*
 * lalloc.h - Lua's own memory, counted and capped: the allocator of
 * iclplay's Lua state.
 *
 * A runaway script (`t = {} while true do t[#t + 1] = {} end`) would
 * otherwise eat the machine and get the whole process, with every unsaved
 * model, killed by the OOM killer. Past the limit the allocator refuses (it
 * returns NULL); Lua first runs an emergency full collection and retries,
 * then raises its error "not enough memory", which the REPL reports like any
 * other error. Everything Lua had built stays intact.
 *
 * The reserve: after a refusal, allocations of up to 64 KiB may use 1 MiB
 * beyond the limit, until usage is back a reserve's width below the limit.
 * When a runaway loop filled a global table right up to the limit, the REPL
 * still has the memory to compile and run `t = nil`. Large requests (a
 * table doubling, a big string) are refused at the limit itself.
 *
 * What it counts: Lua memory only (tables, strings, closures, userdata:
 * icl.tensor data and t:sample batches live in userdata). Models, trainers'
 * optimiser state and their batches are malloc'ed by the C core and checked
 * against the memory budget instead (core/budget.h).
 *
 * Default limit: 2 GiB or a quarter of the physical memory, whichever is
 * smaller; $ICLPLAY_LUA_MEM, then `--lua-mem SIZE`, override it; in Lua,
 * icl.memory_limit([bytes]) reads and sets it (lua_icl.c).
 */
#ifndef ICL_LALLOC_H
#define ICL_LALLOC_H

#include <stddef.h>

#include <lua.h>

#include "core/status.h"

/* The smallest limit accepted at start-up ($ICLPLAY_LUA_MEM, --lua-mem):
 * the standard libraries, `icl` and lua/init.lua need a few MiB. */
#define LALLOC_MIN_START ((size_t)16 << 20)

/* min(2 GiB, physical memory / 4); 2 GiB when the physical size is unknown. */
size_t lalloc_default_limit(void);

/* A new Lua state whose every allocation goes through the counting
 * allocator, with luaL_newstate's panic and warning functions. limit in
 * bytes; SIZE_MAX (or 0) means no limit. NULL if out of memory. Close it
 * with lalloc_close. */
lua_State *lalloc_newstate(size_t limit);
/* lua_close, then free the allocator's counters. Any state is accepted (one
 * from luaL_newstate is just closed); NULL is ignored. */
void lalloc_close(lua_State *L);

/* [out] *limit (SIZE_MAX: none) and *in_use (bytes Lua holds now). Returns
 * 0, leaving them alone, when L was not made by lalloc_newstate. */
int lalloc_get(lua_State *L, size_t *limit, size_t *in_use);
/* New limit (SIZE_MAX: none). ICL_ERR_ARG if L was not made by
 * lalloc_newstate or the limit is below what Lua already uses. */
icl_status lalloc_set_limit(lua_State *L, size_t limit);
/* After Lua raised "not enough memory": if the last refusal was this
 * allocator's limit, [out] buf gets "Lua memory limit of 64.0 MiB reached
 * (...)" and 1 is returned; 0 (and buf "") when malloc itself failed or L
 * has no limit. For the REPL's error report. */
int lalloc_explain(lua_State *L, char *buf, size_t n);

/* Start-up options for main(): reads $ICLPLAY_LUA_MEM and $ICLPLAY_BUDGET
 * and takes `--lua-mem SIZE` and `--budget SIZE` (or `--x=SIZE`) from the
 * front of argv, before the mode word, removing them (argv stays
 * NULL-terminated). The budget is set with icl_budget_set; [out] *lua_limit
 * is the limit to give lalloc_newstate. ICL_ERR_ARG with a message naming
 * the option for a bad size or a Lua limit below LALLOC_MIN_START. */
icl_status lalloc_take_options(int *argc, char **argv, size_t *lua_limit);

#endif
