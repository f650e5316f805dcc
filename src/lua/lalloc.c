/*
 * lalloc.c - the counting, capped lua_Alloc of iclplay's Lua state and its
 * start-up options (see lalloc.h).
 *
 * Lua tells the allocator the old size of every block it frees or resizes,
 * so the count of bytes in use is exact and needs no header per block: it
 * equals what collectgarbage("count") reports. The state is single-threaded
 * (OpenMP threads never call Lua), so the counters are plain integers.
 *
 * What it is not: a pool or an arena; blocks come from malloc as with
 * luaL_newstate. Not the memory budget of the C core either (core/budget.h).
 */
#include "lua/lalloc.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"

/* After a refusal, requests up to LALLOC_SMALL bytes may go this far past
 * the limit (see lalloc.h). */
#define LALLOC_RESERVE ((size_t)1 << 20)
#define LALLOC_SMALL ((size_t)64 << 10)

typedef struct {
    size_t limit;          /* SIZE_MAX: none */
    size_t in_use;         /* bytes of every live block */
    int reserve_open;      /* Lua raised "not enough memory" and usage has not fallen back since */
    int refused_by_limit;  /* the last failed request was refused by the limit, not by malloc */
    /* A refused request is retried by Lua, with the same arguments, after an
     * emergency collection; the retry is held to the limit itself, so a
     * runaway loop meets its error at the limit and the reserve is left for
     * whoever handles the error. */
    int retry_pending;
    void *retry_ptr;
    size_t retry_nsize;
    int reserve_was_open;  /* before the refusal that opened it for the retry */
} lalloc_state;

/* Close the reserve once usage is a reserve's width below the limit. */
static void settle(lalloc_state *a) {
    if (a->reserve_open && (a->limit == SIZE_MAX || a->in_use + LALLOC_RESERVE <= a->limit)) a->reserve_open = 0;
}

static int fits(const lalloc_state *a, size_t grow, int use_reserve) {
    if (a->limit == SIZE_MAX) return 1;
    size_t cap = a->limit;
    if (use_reserve && grow <= LALLOC_SMALL) cap = cap > SIZE_MAX - LALLOC_RESERVE ? SIZE_MAX : cap + LALLOC_RESERVE;
    return a->in_use <= cap && grow <= cap - a->in_use;
}

/* lua_Alloc: with ptr NULL, osize is the kind of object, not a size. */
static void *lalloc_fn(void *ud, void *ptr, size_t osize, size_t nsize) {
    lalloc_state *a = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        a->in_use -= old;
        settle(a);
        return NULL;
    }
    if (nsize > old) {
        int retry = a->retry_pending && ptr == a->retry_ptr && nsize == a->retry_nsize;
        a->retry_pending = 0;
        if (!fits(a, nsize - old, a->reserve_open && !retry)) {
            a->refused_by_limit = 1;
            if (!retry) { /* Lua collects and asks again (or raises at once, mid-collection) */
                a->retry_pending = 1;
                a->retry_ptr = ptr;
                a->retry_nsize = nsize;
                a->reserve_was_open = a->reserve_open;
            }
            a->reserve_open = 1; /* Lua raises "not enough memory" next */
            return NULL;
        }
        if (retry) { /* the collection freed enough: no error, no reserve */
            a->reserve_open = a->reserve_was_open;
            settle(a);
        }
    }
    void *p = realloc(ptr, nsize);
    if (!p) {
        a->refused_by_limit = 0;
        return NULL;
    }
    a->in_use = a->in_use - old + nsize;
    if (nsize < old) settle(a);
    return p;
}

/* ---- panic and warnings, as luaL_newstate sets them ----------------------- */

static int on_panic(lua_State *L) {
    const char *msg = lua_tostring(L, -1);
    fprintf(stderr, "PANIC: unprotected error in call to Lua API (%s)\n", msg ? msg : "error object is not a string");
    fflush(stderr);
    return 0; /* Lua aborts */
}

static void warn_on(void *ud, const char *msg, int tocont);
static void warn_off(void *ud, const char *msg, int tocont);

/* "@on" / "@off" switch warnings (they start off, as in lua.c without -W). */
static int warn_control(lua_State *L, const char *msg, int tocont) {
    if (tocont || msg[0] != '@') return 0;
    if (!strcmp(msg + 1, "off")) lua_setwarnf(L, warn_off, L);
    else if (!strcmp(msg + 1, "on")) lua_setwarnf(L, warn_on, L);
    return 1;
}

static void warn_off(void *ud, const char *msg, int tocont) { warn_control(ud, msg, tocont); }

/* The pieces of one warning after the first. */
static void warn_more(void *ud, const char *msg, int tocont) {
    lua_State *L = ud;
    fputs(msg, stderr);
    if (tocont) {
        lua_setwarnf(L, warn_more, L);
    } else {
        fputs("\n", stderr);
        fflush(stderr);
        lua_setwarnf(L, warn_on, L);
    }
}

static void warn_on(void *ud, const char *msg, int tocont) {
    if (warn_control(ud, msg, tocont)) return;
    fputs("Lua warning: ", stderr);
    warn_more(ud, msg, tocont);
}

/* ---- the state ------------------------------------------------------------- */

size_t lalloc_default_limit(void) {
    size_t cap = (size_t)2 << 30, phys = icl_phys_bytes();
    return phys && phys / 4 < cap ? phys / 4 : cap;
}

lua_State *lalloc_newstate(size_t limit) {
    lalloc_state *a = calloc(1, sizeof *a);
    if (!a) return NULL;
    a->limit = limit ? limit : SIZE_MAX;
    lua_State *L = lua_newstate(lalloc_fn, a);
    if (!L) {
        free(a); /* lua_newstate freed whatever it had allocated through a */
        return NULL;
    }
    lua_atpanic(L, on_panic);
    lua_setwarnf(L, warn_off, L);
    return L;
}

/* The counters of L, or NULL if another allocator serves it. */
static lalloc_state *state_of(lua_State *L) {
    void *ud = NULL;
    lua_Alloc f = lua_getallocf(L, &ud);
    return f == lalloc_fn ? ud : NULL;
}

void lalloc_close(lua_State *L) {
    if (!L) return;
    lalloc_state *a = state_of(L);
    lua_close(L); /* frees every block through a, which must outlive it */
    free(a);
}

int lalloc_get(lua_State *L, size_t *limit, size_t *in_use) {
    const lalloc_state *a = state_of(L);
    if (!a) return 0;
    *limit = a->limit;
    *in_use = a->in_use;
    return 1;
}

icl_status lalloc_set_limit(lua_State *L, size_t limit) {
    lalloc_state *a = state_of(L);
    if (!a)
        return icl_fail(ICL_ERR_ARG, "this Lua state was not created by lalloc_newstate, so it has no limit to set");
    if (limit == 0) limit = SIZE_MAX;
    if (limit < a->in_use) {
        char lb[32], ub[32];
        icl_format_bytes(lb, sizeof lb, limit);
        icl_format_bytes(ub, sizeof ub, a->in_use);
        return icl_fail(ICL_ERR_ARG, "a limit of %s is below the %s Lua already uses (collectgarbage() may free some)",
                        lb, ub);
    }
    a->limit = limit;
    a->reserve_open = 0; /* a fresh start: the reserve reopens at the next refusal */
    a->retry_pending = 0;
    return ICL_OK;
}

int lalloc_explain(lua_State *L, char *buf, size_t n) {
    const lalloc_state *a = state_of(L);
    if (n) buf[0] = 0;
    if (!a || a->limit == SIZE_MAX || !a->refused_by_limit) return 0;
    char lb[32];
    icl_format_bytes(lb, sizeof lb, a->limit);
    snprintf(buf, n, "Lua memory limit of %s reached (free some with `x = nil; collectgarbage()`, or raise it with "
             "icl.memory_limit or ICLPLAY_LUA_MEM)", lb);
    return 1;
}

/* ---- start-up options ---------------------------------------------------------- */

/* A size for `what` (an option or variable name) into [out] *v. */
static icl_status parse_size(const char *what, const char *text, size_t *v) {
    if (icl_parse_bytes(text, v) != ICL_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "%s", icl_error());
        return icl_fail(ICL_ERR_ARG, "%s: %s", what, msg);
    }
    if (*v == 0) return icl_fail(ICL_ERR_ARG, "%s: size must be > 0 (or \"off\"), got '%s'", what, text);
    return ICL_OK;
}

static icl_status check_start_limit(const char *what, size_t v) {
    if (v >= LALLOC_MIN_START) return ICL_OK;
    char vb[32], mb[32];
    icl_format_bytes(vb, sizeof vb, v);
    icl_format_bytes(mb, sizeof mb, LALLOC_MIN_START);
    return icl_fail(ICL_ERR_ARG, "%s: %s is too little for Lua to start (at least %s, or \"off\")", what, vb, mb);
}

icl_status lalloc_take_options(int *argc, char **argv, size_t *lua_limit) {
    size_t limit = lalloc_default_limit(), v;
    const char *env = getenv("ICLPLAY_LUA_MEM");
    icl_status st;
    if (env && *env) {
        if ((st = parse_size("ICLPLAY_LUA_MEM", env, &limit)) || (st = check_start_limit("ICLPLAY_LUA_MEM", limit)))
            return st;
    }
    env = getenv("ICLPLAY_BUDGET"); /* icl_budget_get reads it; a bad value is an error, not a silent default */
    if (env && *env && (st = parse_size("ICLPLAY_BUDGET", env, &v))) return st;
    static const char *const names[] = {"--lua-mem", "--budget"};
    while (*argc > 1) {
        const char *a = argv[1], *val = NULL;
        int which = -1, take = 1;
        for (int k = 0; k < 2; k++) {
            size_t l = strlen(names[k]);
            if (!strncmp(a, names[k], l) && (a[l] == 0 || a[l] == '=')) {
                which = k;
                val = a[l] == '=' ? a + l + 1 : NULL;
            }
        }
        if (which < 0) break; /* options come before the mode */
        if (!val) {
            if (*argc < 3) return icl_fail(ICL_ERR_ARG, "%s needs a size, e.g. %s 2G", names[which], names[which]);
            val = argv[2];
            take = 2;
        }
        if ((st = parse_size(names[which], val, &v))) return st;
        if (which == 0) {
            if ((st = check_start_limit(names[0], v))) return st;
            limit = v;
        } else {
            icl_budget_set(v);
        }
        memmove(argv + 1, argv + 1 + take, sizeof *argv * (size_t)(*argc - take)); /* with the NULL */
        *argc -= take;
    }
    *lua_limit = limit;
    return ICL_OK;
}
