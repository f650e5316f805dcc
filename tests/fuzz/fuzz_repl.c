/*
 * fuzz_repl.c - fuzz target: the REPL's line handling (lua/repl.h) on a real
 * Lua state with the `icl` module and lua/init.lua loaded.
 *
 * One input is a session: its lines (split at '\n', a trailing '\r'
 * dropped, cut at a NUL as getline + repl_feed would) are fed one by one to
 * repl_feed, then repl_finish. A line that starts with a control byte is a
 * key instead of text:
 *   0x18 (Ctrl-X)     repl_cancel, as Ctrl-C at the prompt
 *   0x04 (Ctrl-D)     repl_finish, as end of input
 *   0x1A k rest       a huge line: `rest` repeated to 2^(k % 23) bytes (at
 *                     most RP_HUGE_MAX, and RP_HUGE_TOTAL per input), so
 *                     long lines cost the fuzzer nothing
 *   text ending '\t'  Tab: repl_complete(L, text) instead of a feed
 * The feeding runs inside one protected call, as iclplay's pmain runs the
 * REPL: a Lua error that escapes repl_feed would end a user's session, so
 * it counts as a failure here.
 *
 * Checked after every line: repl_feed answers MORE exactly when the chunk
 * so far ends in an incomplete statement (the target compiles the chunk
 * itself the way repl.h says: `=expr`, then `return <chunk>;`, then the
 * chunk); the Lua stack is as it was; repl_pending agrees; the last chunk
 * is the lines as typed, joined by "\n"; a chunk that does not compile gets
 * an error message through the sink, and every error message ends in "\n";
 * a pending chunk ended by repl_finish is reported; the prompt is _PROMPT /
 * _PROMPT2 (raw, at most 63 bytes) or the default; completion lists are
 * sorted and well formed.
 *
 * Bounds, so that the fuzzer explores instead of hanging or swapping:
 *  - Lua memory: the state comes from iclplay's own allocator
 *    (lalloc_newstate, lua/lalloc.h), limited to RP_LUA_MEM (64 MiB) above
 *    what the set-up used, so its limit and reserve are fuzzed as well;
 *  - C memory: the core's budget (core/budget.h) is RP_BUDGET (256 MiB);
 *  - Lua instructions: a count hook raises an error once a line ran
 *    RP_INSTR_CHUNK instructions or the input RP_INSTR_TOTAL (and then at
 *    every instruction, so `pcall` cannot keep a loop alive);
 *  - training steps: the trainers' tick hook (lbind_set_tick) asks for an
 *    interrupt after RP_MAX_STEPS steps;
 *  - C allocations: icl constructors and methods are wrapped (rp_guard_lua)
 *    to refuse sizes above small caps (models, tasks, batches, prompts),
 *    since those allocate outside the Lua allocator, and fuzzed code may
 *    read but not set icl.memory_limit / icl.memory_budget;
 *  - finalizers: Lua runs __gc with hooks off, so a looping finalizer
 *    cannot be stopped (nor by Ctrl-C in iclplay); setmetatable refuses
 *    metatables with __gc here;
 *  - files: m:save, tr:save, tr:run{log=}, e:csv, e:svg, io, os.remove,
 *    os.rename, os.execute, os.exit, dofile, loadfile, package.loadlib and
 *    the debug library are removed, so fuzzed code cannot write files, run
 *    programs or take the hook away. Reading (icl.load) stays.
 * A fresh state per input keeps every input reproducible on its own.
 *
 * Not here: the TUI and Readline (they call repl_feed like this target).
 */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "core/budget.h"
#include "core/interrupt.h"
#include "lua/lalloc.h"
#include "lua/lbind.h"
#include "lua/repl.h"

#define RP_LUA_MEM ((size_t)64 << 20)
#define RP_BUDGET ((size_t)256 << 20)
#define RP_INSTR_PERIOD 1000
#define RP_INSTR_CHUNK 1000000L  /* per fed line */
#define RP_INSTR_TOTAL 5000000L /* per input */
#define RP_MAX_STEPS 16
#define RP_HUGE_MAX ((size_t)1 << 20)   /* one huge line */
#define RP_HUGE_TOTAL ((size_t)2 << 20) /* all huge lines of an input (time) */
#define RP_MAX_LINES 4096
#define RP_INIT_PATH "lua/init.lua"

/* Lua code run before lua/init.lua: size caps on what allocates in C, and
 * no file writes through icl objects. Wrappers look fields up at call time,
 * so presets (icl.build) go through them too. */
static const char rp_guard_lua[] =
    "local icl = require('icl')\n"
    "local reg = debug.getregistry()\n"
    "local function copy(t) local c = {} for k, v in next, t do c[k] = v end return c end\n"
    "local function cap(where, t, caps)\n"
    "  if type(t) ~= 'table' then return t end\n"
    "  local c = copy(t)\n"
    "  for k, hi in pairs(caps) do\n"
    "    local v = c[k]\n"
    "    if type(v) == 'string' then v = tonumber(v) end\n"
    "    if type(v) == 'number' and v > hi then\n"
    "      error(where .. ': ' .. k .. ' above the fuzzer cap ' .. hi, 3)\n"
    "    end\n"
    "  end\n"
    "  return c\n"
    "end\n"
    "local function refuse(what) return function() error(what .. ': disabled in the fuzzer (writes files)', 2) end end\n"
    "local function methods(name) local mt = reg[name] return type(mt) == 'table' and rawget(mt, '__methods') or nil end\n"
    "local function bt(x)\n"
    "  if type(x) == 'table' then x = rawget(x, 'x') or rawget(x, 'tok') end\n"
    "  local ok, s = pcall(function() return x:shape() end)\n"
    "  if ok and type(s) == 'table' then return (tonumber(s[1]) or 1) * (tonumber(s[2]) or 1) end\n"
    "  return 0\n"
    "end\n"
    "local model, task, trainer, eval, threads = icl.model, icl.task, icl.trainer, icl.eval, icl.threads\n"
    "icl.model = function(o, ...)\n"
    "  o = cap('icl.model', o, {d_model = 128, n_layer = 8, n_dims = 64, n_out = 256, vocab = 512,\n"
    "         n_positions = 512, d_state = 32, d_conv = 8, expand = 4, dt_rank = 32, n_head = 64})\n"
    "  if type(o) == 'table' and type(o.blocks) == 'table' and #o.blocks > 8 then error('icl.model: blocks above the fuzzer cap', 2) end\n"
    "  return model(o, ...)\n"
    "end\n"
    "icl.task = function(o, ...)\n"
    "  return task(cap('icl.task', o, {n_dims = 32, n_points = 64, kappa = 64, queries = 64, vocab = 512,\n"
    "         seq_len = 256, hidden = 64, depth = 8, k = 32}), ...)\n"
    "end\n"
    "icl.trainer = function(o, ...)\n"
    "  o = cap('icl.trainer', o, {batch = 8})\n"
    "  if type(o) == 'table' and o.batch == nil then o.batch = 4 end\n"
    "  return trainer(o, ...)\n"
    "end\n"
    "icl.eval = function(m, t, o, ...)\n"
    "  o = cap('icl.eval', o, {prompts = 64, batch = 16})\n"
    "  if o == nil then o = {prompts = 16} elseif type(o) == 'table' and o.prompts == nil then o.prompts = 16 end\n"
    "  return eval(m, t, o, ...)\n"
    "end\n"
    "for _, name in ipairs{'memory_limit', 'memory_budget'} do\n"
    "  local f = icl[name]\n"
    "  if f then\n"
    "    icl[name] = function(...)\n"
    "      if select('#', ...) > 0 then error('icl.' .. name .. ': setting it is disabled in the fuzzer (its bounds)', 2) end\n"
    "      return f()\n"
    "    end\n"
    "  end\n"
    "end\n"
    "icl.threads = function(n, ...)\n"
    "  if type(n) == 'number' and n > 2 then n = 2 end\n"
    "  return threads(n, ...)\n"
    "end\n"
    "local mm = methods('icl.model')\n"
    "if mm then\n"
    "  mm.save = refuse('m:save')\n"
    "  local forward = mm.forward\n"
    "  mm.forward = function(self, x, ...)\n"
    "    if bt(x) > 4096 then error('m:forward: B*T above the fuzzer cap', 2) end\n"
    "    return forward(self, x, ...)\n"
    "  end\n"
    "end\n"
    "local tm = methods('icl.task')\n"
    "if tm then\n"
    "  local sample = tm.sample\n"
    "  tm.sample = function(self, n, ...)\n"
    "    if type(n) == 'number' and n > 16 then error('t:sample: n above the fuzzer cap', 2) end\n"
    "    return sample(self, n, ...)\n"
    "  end\n"
    "end\n"
    "local rm = methods('icl.trainer')\n"
    "if rm then\n"
    "  rm.save = refuse('tr:save')\n"
    "  local run, ev = rm.run, rm.eval\n"
    "  rm.run = function(self, o, ...)\n"
    "    if type(o) == 'table' then\n"
    "      o = copy(o)\n"
    "      if o.log ~= nil then error('tr:run: log disabled in the fuzzer (writes files)', 2) end\n"
    "    end\n"
    "    return run(self, o, ...)\n"
    "  end\n"
    "  rm.eval = function(self, o, ...)\n"
    "    o = cap('tr:eval', o, {prompts = 64, batch = 16})\n"
    "    if o == nil then o = {prompts = 16} elseif type(o) == 'table' and o.prompts == nil then o.prompts = 16 end\n"
    "    return ev(self, o, ...)\n"
    "  end\n"
    "end\n"
    "local setmt = setmetatable\n"
    "setmetatable = function(t, mt)\n"
    "  if type(mt) == 'table' and rawget(mt, '__gc') ~= nil then error('setmetatable: __gc disabled in the fuzzer', 2) end\n"
    "  return setmt(t, mt)\n"
    "end\n"
    "local em = methods('icl.evalresult')\n"
    "if em then em.csv = refuse('e:csv') em.svg = refuse('e:svg') end\n";

/* Run after lua/init.lua: what could write files, run programs or remove
 * the instruction hook goes. */
static const char rp_sandbox_lua[] =
    "io = nil package.loaded.io = nil\n"
    "os = {clock = os.clock, time = os.time, date = os.date, difftime = os.difftime}\n"
    "package.loaded.os = os\n"
    "debug = nil package.loaded.debug = nil\n"
    "dofile = nil loadfile = nil\n"
    "package.loadlib = nil package.cpath = '' package.searchers[3] = nil package.searchers[4] = nil\n"
    "package.path = 'lua/?.lua;lua/?/init.lua'\n";

/* ---- one session ------------------------------------------------------------ */

typedef struct {
    lbind_tick tick; /* first: the tick callback gets this pointer */
    long instr;      /* instructions run for this input (counted in RP_INSTR_PERIOD steps) */
    long instr_line; /* ... since the current line was fed */
    int steps;       /* training steps seen by the tick */
    repl *r;
    size_t out_bytes, err_bytes;
    int err_last_nl; /* the last error text ended in "\n" */
    int dropped;     /* "input dropped" was reported during this feed */
    char *pend;      /* the pending chunk as the target tracks it: lines joined by "\n" */
    size_t pend_len, pend_cap;
    int pend_lines;  /* lines in it (0: the next line starts a chunk) */
    const uint8_t *data;
    size_t size;
    int bad;
} rp_session;

static rp_session *rp_cur; /* the hooks' way back to the session (one thread) */

/* Counts instructions; over budget it raises, and from then on fires at
 * every instruction until the next line: with a fixed period the error
 * would always land at the same point of a loop, which
 * `while true do pcall(f) end` (f looping) catches forever. */
static void rp_count_hook(lua_State *L, lua_Debug *ar) {
    (void)ar;
    rp_session *s = rp_cur;
    if (!s) return;
    s->instr += RP_INSTR_PERIOD;
    s->instr_line += RP_INSTR_PERIOD;
    if (s->instr > RP_INSTR_TOTAL || s->instr_line > RP_INSTR_CHUNK) {
        lua_sethook(L, rp_count_hook, LUA_MASKCOUNT, 1);
        luaL_error(L, "fuzz: instruction budget exhausted (%s)", s->instr_line > RP_INSTR_CHUNK ? "line" : "input");
    }
}

/* A new line gets a fresh per-line budget (and the normal period back). */
static void rp_budget_line(rp_session *s, lua_State *L) {
    s->instr_line = 0;
    lua_sethook(L, rp_count_hook, LUA_MASKCOUNT, RP_INSTR_PERIOD);
}

static void rp_tick(lbind_tick *t, lua_State *L, const lbind_trainer *ut, long target) {
    (void)L;
    (void)ut;
    (void)target;
    rp_session *s = (rp_session *)t;
    if (++s->steps > RP_MAX_STEPS) icl_interrupt_request();
}

static void rp_sink(void *ctx, repl_stream stream, const char *text, size_t len) {
    rp_session *s = ctx;
    static int verbose = -1; /* FUZZ_VERBOSE=1: show the session's output on stderr (triage) */
    if (verbose < 0) verbose = getenv("FUZZ_VERBOSE") && atoi(getenv("FUZZ_VERBOSE")) > 0;
    if (verbose && text) fprintf(stderr, "%s%.*s", stream == REPL_ERR ? "[err] " : "", (int)(len > 2000 ? 2000 : len), text);
    if (!text && len) {
        s->bad |= fuzz_fail("repl", "sink got NULL text of length %zu", len);
        return;
    }
    if (stream == REPL_ERR) {
        s->err_bytes += len;
        if (len) s->err_last_nl = text[len - 1] == '\n';
        static const char drop[] = "input dropped";
        if (len >= sizeof drop - 1) {
            for (size_t i = 0; i + sizeof drop - 1 <= len; i++)
                if (!memcmp(text + i, drop, sizeof drop - 1)) s->dropped = 1;
        }
    } else if (stream == REPL_OUT) {
        s->out_bytes += len;
    } else {
        s->bad |= fuzz_fail("repl", "sink got stream %d", (int)stream);
    }
}

static int rp_pend_add(rp_session *s, const char *line, size_t n) {
    size_t need = s->pend_len + n + 2;
    if (need > s->pend_cap) {
        size_t cap = s->pend_cap ? s->pend_cap : 256;
        while (cap < need) cap *= 2;
        char *p = realloc(s->pend, cap);
        if (!p) return 0;
        s->pend = p;
        s->pend_cap = cap;
    }
    if (s->pend_lines++) s->pend[s->pend_len++] = '\n';
    memcpy(s->pend + s->pend_len, line, n);
    s->pend_len += n;
    s->pend[s->pend_len] = 0;
    return 1;
}

static void rp_pend_clear(rp_session *s) {
    s->pend_len = 0;
    s->pend_lines = 0;
    if (s->pend) s->pend[0] = 0;
}

/* ---- the reference compile -------------------------------------------------- */

typedef enum { RP_COMPILES, RP_INCOMPLETE, RP_SYNTAX, RP_NOMEM } rp_verdict;

static rp_verdict rp_load(lua_State *L, const char *code, size_t n) {
    int st = luaL_loadbuffer(L, code, n, "=ref");
    rp_verdict v = RP_COMPILES;
    if (st == LUA_ERRMEM) v = RP_NOMEM;
    else if (st != LUA_OK) {
        size_t lm = 0;
        const char *msg = lua_tolstring(L, -1, &lm);
        v = msg && lm >= 5 && !memcmp(msg + lm - 5, "<eof>", 5) ? RP_INCOMPLETE : RP_SYNTAX;
    }
    lua_pop(L, 1);
    return v;
}

/* How repl.h says a chunk is compiled: "=expr" as `return expr`, else
 * `return <chunk>;` and then the chunk itself. */
static rp_verdict rp_reference(lua_State *L, const char *chunk, size_t n) {
    char *tmp = malloc(n + 16);
    if (!tmp) return RP_NOMEM;
    rp_verdict v;
    if (n > 0 && chunk[0] == '=') {
        memcpy(tmp, "return ", 7);
        memcpy(tmp + 7, chunk + 1, n - 1);
        v = rp_load(L, tmp, n + 6);
    } else {
        memcpy(tmp, "return ", 7);
        memcpy(tmp + 7, chunk, n);
        tmp[7 + n] = ';';
        v = rp_load(L, tmp, n + 8);
        if (v != RP_COMPILES && v != RP_NOMEM) v = rp_load(L, chunk, n);
    }
    free(tmp);
    return v;
}

/* ---- lines ----------------------------------------------------------------- */

static void rp_check_prompt(rp_session *s, lua_State *L) {
    int pending = repl_pending(s->r);
    const char *p = repl_prompt(s->r);
    if (!p) {
        s->bad |= fuzz_fail("repl", "repl_prompt returned NULL");
        return;
    }
    char want[64];
    snprintf(want, sizeof want, "%s", pending ? ">> " : "> ");
    lua_pushglobaltable(L);
    lua_pushstring(L, pending ? "_PROMPT2" : "_PROMPT");
    lua_rawget(L, -2);
    if (lua_type(L, -1) == LUA_TSTRING) snprintf(want, sizeof want, "%s", lua_tostring(L, -1));
    lua_pop(L, 2);
    if (strcmp(p, want)) s->bad |= fuzz_fail("repl", "prompt is \"%s\", want \"%s\"", p, want);
}

static void rp_complete(rp_session *s, lua_State *L, const char *word) {
    int top = lua_gettop(L);
    char **list = (char **)&list;
    int n = repl_complete(L, word, &list);
    if (lua_gettop(L) != top) s->bad |= fuzz_fail("repl", "repl_complete(\"%.40s\") moved the stack", word);
    if (n < 0 || (n == 0) != (list == NULL)) {
        s->bad |= fuzz_fail("repl", "repl_complete(\"%.40s\") = %d with list %p", word, n, (void *)list);
        return;
    }
    for (int i = 0; i < n; i++) {
        if (!list[i]) s->bad |= fuzz_fail("repl", "completion %d of \"%.40s\" is NULL", i, word);
        else if (i > 0 && list[i - 1] && strcmp(list[i - 1], list[i]) > 0)
            s->bad |= fuzz_fail("repl", "completions of \"%.40s\" not sorted: %s > %s", word, list[i - 1], list[i]);
    }
    repl_complete_free(list, n);
}

static void rp_feed_line(rp_session *s, lua_State *L, const char *line) {
    size_t n = strlen(line);
    int top = lua_gettop(L);
    rp_budget_line(s, L);
    size_t err0 = s->err_bytes;
    s->dropped = 0;
    repl_result res = repl_feed(s->r, line);
    if (lua_gettop(L) != top) s->bad |= fuzz_fail("repl", "repl_feed moved the Lua stack by %d", lua_gettop(L) - top);
    if (res != REPL_DONE && res != REPL_MORE) {
        s->bad |= fuzz_fail("repl", "repl_feed returned %d", (int)res);
        return;
    }
    if (repl_pending(s->r) != (res == REPL_MORE))
        s->bad |= fuzz_fail("repl", "repl_feed said %s but repl_pending is %d", res == REPL_MORE ? "MORE" : "DONE",
                            repl_pending(s->r));
    if (s->dropped) { /* out of memory or stack: the chunk is gone, as reported */
        rp_pend_clear(s);
        return;
    }
    if (!rp_pend_add(s, line, n)) return;
    rp_verdict v = rp_reference(L, s->pend, s->pend_len);
    if (v == RP_NOMEM) {
        /* the reference could not compile; nothing to compare */
    } else if (res == REPL_MORE && v != RP_INCOMPLETE) {
        s->bad |= fuzz_fail("repl", "repl_feed asks for more, but the chunk %s:\n%.200s",
                            v == RP_COMPILES ? "compiles" : "has a syntax error not at <eof>", s->pend);
    } else if (res == REPL_DONE && v == RP_INCOMPLETE) {
        s->bad |= fuzz_fail("repl", "repl_feed ran an incomplete chunk:\n%.200s", s->pend);
    } else if (res == REPL_DONE && v == RP_SYNTAX && s->err_bytes == err0) {
        s->bad |= fuzz_fail("repl", "a chunk with a syntax error got no message:\n%.200s", s->pend);
    }
    if (res == REPL_DONE) {
        const char *last = repl_last_chunk(s->r);
        if (!last || strlen(last) != s->pend_len || memcmp(last, s->pend, s->pend_len))
            s->bad |= fuzz_fail("repl", "repl_last_chunk is \"%.80s\", want \"%.80s\"", last ? last : "(null)", s->pend);
        rp_pend_clear(s);
    }
    if (s->err_bytes > err0 && !s->err_last_nl) s->bad |= fuzz_fail("repl", "an error message does not end in \\n");
}

/* Protected: every line of the input, then repl_finish. */
static int rp_session_run(lua_State *L) {
    rp_session *s = lua_touserdata(L, 1);
    lua_settop(L, 0);
    const uint8_t *p = s->data, *end = s->data + s->size;
    char *line = NULL;
    int lines = 0;
    size_t huge_left = RP_HUGE_TOTAL;
    while (p < end && lines++ < RP_MAX_LINES) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        const uint8_t *next = nl ? nl + 1 : end;
        if (n > 0 && p[n - 1] == '\r') n--;
        free(line);
        line = NULL;
        if (n >= 1 && p[0] == 0x18) {
            repl_cancel(s->r);
            rp_pend_clear(s);
            if (repl_pending(s->r)) s->bad |= fuzz_fail("repl", "repl_cancel left a pending chunk");
        } else if (n >= 1 && p[0] == 0x04) {
            size_t err0 = s->err_bytes;
            int was = repl_pending(s->r);
            int top = lua_gettop(L);
            rp_budget_line(s, L);
            repl_finish(s->r);
            if (lua_gettop(L) != top) s->bad |= fuzz_fail("repl", "repl_finish moved the Lua stack");
            if (repl_pending(s->r)) s->bad |= fuzz_fail("repl", "repl_finish left a pending chunk");
            if (was && s->err_bytes == err0) s->bad |= fuzz_fail("repl", "repl_finish dropped a pending chunk silently");
            rp_pend_clear(s);
        } else if (n >= 2 && p[0] == 0x1a) {
            size_t want = (size_t)1 << (p[1] % 23), k = n - 2;
            if (want > RP_HUGE_MAX) want = RP_HUGE_MAX;
            if (want > huge_left) want = huge_left;
            huge_left -= want;
            const uint8_t *rest = k ? p + 2 : (const uint8_t *)"x";
            if (!k) k = 1;
            line = malloc(want + 1);
            if (!line) break;
            for (size_t i = 0; i < want; i++) line[i] = (char)rest[i % k];
            line[want] = 0;
            rp_feed_line(s, L, line);
        } else {
            line = malloc(n + 1);
            if (!line) break;
            memcpy(line, p, n);
            line[n] = 0;
            size_t len = strlen(line);
            if (len > 0 && line[len - 1] == '\t') {
                line[len - 1] = 0;
                rp_complete(s, L, line);
            } else {
                rp_feed_line(s, L, line);
            }
        }
        free(line);
        line = NULL;
        rp_check_prompt(s, L);
        p = next;
    }
    free(line);
    repl_finish(s->r);
    if (repl_pending(s->r)) s->bad |= fuzz_fail("repl", "repl_finish left a pending chunk");
    return 0;
}

/* ---- state set-up ------------------------------------------------------------ */

static char *rp_init_src;
static size_t rp_init_len;
static int rp_init_tried;

static void rp_read_init(void) {
    if (rp_init_tried) return;
    rp_init_tried = 1;
    FILE *f = fopen(RP_INIT_PATH, "rb");
    if (!f) {
        fprintf(stderr, "fuzz repl: no %s here (run from the repository root); going on without it\n", RP_INIT_PATH);
        return;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (n < cap) break;
        char *nb = realloc(buf, cap *= 2);
        if (!nb) {
            free(buf);
            buf = NULL;
        }
        buf = nb;
    }
    fclose(f);
    rp_init_src = buf;
    rp_init_len = buf ? n : 0;
}

/* Protected: libraries, icl, the guard, init.lua, the sandbox, the REPL. */
static int rp_setup(lua_State *L) {
    rp_session *s = lua_touserdata(L, 1);
    luaL_openlibs(L);
    luaL_requiref(L, "icl", luaopen_icl, 1);
    lua_pop(L, 1);
    if (luaL_loadbuffer(L, rp_guard_lua, sizeof rp_guard_lua - 1, "=fuzz_guard")) return lua_error(L);
    lua_call(L, 0, 0);
    if (rp_init_src) {
        if (luaL_loadbuffer(L, rp_init_src, rp_init_len, "@" RP_INIT_PATH)) return lua_error(L);
        lua_pushliteral(L, "lua");
        lua_call(L, 1, 0);
    }
    if (luaL_loadbuffer(L, rp_sandbox_lua, sizeof rp_sandbox_lua - 1, "=fuzz_sandbox")) return lua_error(L);
    lua_call(L, 0, 0);
    if (repl_new(&s->r, L, rp_sink, s) != ICL_OK) return luaL_error(L, "repl_new: %s", icl_error());
#ifdef FUZZ_SKIP_PRINT_UAF
    /* Known bug, kept in tests/fuzz/crashes/repl/ (print-reassigned-uaf): once
     * `print` is reassigned and collected, repl_free writes into the freed
     * box of the REPL's print. Holding the closure keeps the box alive while
     * the fix is pending. */
    lua_getglobal(L, "print");
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.keep_print");
#endif
    return 0;
}

int fuzz_repl_one(const uint8_t *data, size_t size) {
    rp_read_init();
    icl_budget_set(RP_BUDGET);
    rp_session *s = calloc(1, sizeof *s);
    if (!s) return 0;
    s->data = data;
    s->size = size;
    s->tick.fn = rp_tick;
    s->tick.period = 0;
    lua_State *L = lalloc_newstate(SIZE_MAX); /* set-up unbounded; the session bounded */
    if (!L) {
        free(s);
        return 0;
    }
    int bad = 0;
    lua_pushcfunction(L, rp_setup);
    lua_pushlightuserdata(L, s);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        bad |= fuzz_fail("repl", "harness set-up failed: %s", lua_tostring(L, -1));
        lua_pop(L, 1);
    } else {
        size_t limit = 0, used = 0;
        lalloc_get(L, &limit, &used);
        if (lalloc_set_limit(L, used + RP_LUA_MEM) != ICL_OK)
            bad |= fuzz_fail("repl", "lalloc_set_limit(%zu) with %zu in use: %s", used + RP_LUA_MEM, used, icl_error());
        rp_cur = s;
        lbind_set_tick(L, &s->tick);
        lua_sethook(L, rp_count_hook, LUA_MASKCOUNT, RP_INSTR_PERIOD);
        lua_pushcfunction(L, rp_session_run);
        lua_pushlightuserdata(L, s);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
            const char *msg = lua_tostring(L, -1);
            bad |= fuzz_fail("repl", "a Lua error escaped the REPL core (it would end the session): %s",
                             msg ? msg : "(not a string)");
            lua_pop(L, 1);
        }
        /* tear down without limits: nothing here may fail */
        lua_sethook(L, NULL, 0, 0);
        lalloc_set_limit(L, SIZE_MAX);
        lbind_set_tick(L, NULL);
        icl_interrupt_clear();
        rp_cur = NULL;
    }
    if (s->r) repl_free(s->r);
    lalloc_close(L);
    bad |= s->bad;
    free(s->pend);
    free(s);
    return bad;
}

#ifdef FUZZ_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fuzz_repl_one(data, size)) abort();
    return 0;
}
#endif
