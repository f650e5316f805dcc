/*
 * complete.c - Tab completion of Lua expressions for GNU Readline (see
 * repl.h): globals and keywords, table fields, and methods of objects
 * through their metatables, e.g. "m:for" -> "m:forward", "icl.pre" ->
 * "icl.presets", "tr.lo" -> "tr.loss".
 *
 * How a prefix "a.b:c" is resolved: the path "a.b" is looked up from the
 * globals with raw gets, following __index tables; an __index function is
 * only called for the module's own userdata (metatable __name "icl.*"),
 * whose getters have no side effects, so Tab never runs user code. The
 * candidates are the string keys of the value, of its __index chain, and,
 * when __index is a getter function, the metatable's __methods table and
 * __fields list (the bindings' convention), its own function keys, and the help
 * registry's "<__name>:<method>" / "<__name>.<field>" names (REPL_DOCS_KEY),
 * which is how a binding with a getter function exposes its methods. After
 * ':' only functions are offered. Everything Lua-side runs in protected mode.
 *
 * The one global is the state Readline completes in (Readline's callback
 * has no user pointer). Not here: the REPL loop (repl.c).
 */
#include "lua/repl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <readline/readline.h>

#define COMPLETE_MAX_DEPTH 8 /* __index chains followed */
#define COMPLETE_WORD_MAX 512

static lua_State *complete_L;

static const char *const lua_keywords[] = {"and",   "break", "do",   "else", "elseif", "end",    "false", "for",
                                           "function", "goto", "if", "in",   "local",  "nil",    "not",   "or",
                                           "repeat", "return", "then", "true", "until",  "while"};

static int is_ident_char(char c) {
    return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int is_ident(const char *s, size_t n) {
    if (n == 0 || (s[0] >= '0' && s[0] <= '9')) return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_ident_char(s[i])) return 0;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* protected Lua side                                                       */
/* ------------------------------------------------------------------------ */

/* set[key] = kind ("f" function, "t" table, "" other) when key matches. */
static void add_candidate(lua_State *L, int set, const char *key, size_t klen, const char *partial, const char *kind) {
    size_t pl = strlen(partial);
    if (!is_ident(key, klen) || klen < pl || memcmp(key, partial, pl)) return;
    lua_pushlstring(L, key, klen);
    lua_rawget(L, set);
    int have = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (have && !*kind) return; /* keep a known kind */
    lua_pushlstring(L, key, klen);
    lua_pushstring(L, kind);
    lua_rawset(L, set);
}

static const char *kind_of(lua_State *L, int idx) {
    int t = lua_type(L, idx);
    return t == LUA_TFUNCTION ? "f" : t == LUA_TTABLE ? "t" : "";
}

/* Names "<type><sep><member>" of the help registry, as members. */
static void collect_docs(lua_State *L, const char *type, char sep, int set, const char *partial) {
    char pre[128];
    int pl = snprintf(pre, sizeof pre, "%s%c", type, sep);
    if (pl <= 0 || (size_t)pl >= sizeof pre) return;
    lua_getfield(L, LUA_REGISTRYINDEX, REPL_DOCS_KEY);
    if (lua_istable(L, -1)) {
        lua_getfield(L, -1, "names");
        if (lua_istable(L, -1)) {
            int names = lua_gettop(L);
            lua_pushnil(L);
            while (lua_next(L, names)) {
                lua_pop(L, 1);
                if (lua_type(L, -1) == LUA_TSTRING) {
                    size_t n;
                    const char *k = lua_tolstring(L, -1, &n);
                    if (n > (size_t)pl && !memcmp(k, pre, (size_t)pl))
                        add_candidate(L, set, k + pl, n - (size_t)pl, partial, sep == ':' ? "f" : "");
                }
            }
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* The candidates of the value at v (fields, or methods only). */
static void collect(lua_State *L, int v, int set, const char *partial, int methods, int depth) {
    if (depth > COMPLETE_MAX_DEPTH || !lua_checkstack(L, 8)) return;
    v = lua_absindex(L, v);
    if (lua_istable(L, v)) {
        lua_pushnil(L);
        while (lua_next(L, v)) {
            if (lua_type(L, -2) == LUA_TSTRING && (!methods || lua_isfunction(L, -1))) {
                size_t n;
                const char *k = lua_tolstring(L, -2, &n);
                add_candidate(L, set, k, n, partial, kind_of(L, -1));
            }
            lua_pop(L, 1);
        }
    }
    if (!lua_getmetatable(L, v)) return;
    int mt = lua_gettop(L);
    lua_pushliteral(L, "__index");
    lua_rawget(L, mt);
    if (lua_istable(L, -1)) {
        collect(L, -1, set, partial, methods, depth + 1);
    } else if (lua_isfunction(L, -1)) {
        /* a getter: the bindings list their methods in __methods and their
         * fields in __fields; methods may also sit in the metatable itself,
         * or be known only to the help registry under the type's name */
        lua_pushliteral(L, "__methods");
        lua_rawget(L, mt);
        if (lua_istable(L, -1)) collect(L, -1, set, partial, 1, depth + 1);
        lua_pop(L, 1);
        if (!methods) {
            lua_pushliteral(L, "__fields");
            lua_rawget(L, mt);
            if (lua_istable(L, -1)) {
                lua_Integer nf = (lua_Integer)lua_rawlen(L, -1);
                for (lua_Integer i = 1; i <= nf; i++) {
                    if (lua_rawgeti(L, -1, i) == LUA_TSTRING) {
                        size_t n;
                        const char *k = lua_tolstring(L, -1, &n);
                        add_candidate(L, set, k, n, partial, "");
                    }
                    lua_pop(L, 1);
                }
            }
            lua_pop(L, 1);
        }
        lua_pushnil(L);
        while (lua_next(L, mt)) {
            if (lua_type(L, -2) == LUA_TSTRING && lua_isfunction(L, -1)) {
                size_t n;
                const char *k = lua_tolstring(L, -2, &n);
                if (n < 2 || k[0] != '_' || k[1] != '_') add_candidate(L, set, k, n, partial, "f");
            }
            lua_pop(L, 1);
        }
        lua_pushliteral(L, "__name");
        lua_rawget(L, mt);
        if (lua_type(L, -1) == LUA_TSTRING) {
            const char *type = lua_tostring(L, -1);
            collect_docs(L, type, ':', set, partial);
            if (!methods) collect_docs(L, type, '.', set, partial);
        }
        lua_pop(L, 1);
    }
    lua_settop(L, mt - 1);
}

/* Pushes v[key] without running user code (see the file comment). */
static void safe_get(lua_State *L, int v, const char *key, int depth) {
    v = lua_absindex(L, v);
    if (depth > COMPLETE_MAX_DEPTH) {
        lua_pushnil(L);
        return;
    }
    if (lua_istable(L, v)) {
        lua_pushstring(L, key);
        lua_rawget(L, v);
        if (!lua_isnil(L, -1)) return;
        lua_pop(L, 1);
    }
    if (!lua_getmetatable(L, v)) {
        lua_pushnil(L);
        return;
    }
    int mt = lua_gettop(L);
    lua_pushliteral(L, "__index");
    lua_rawget(L, mt);
    if (lua_istable(L, -1)) {
        safe_get(L, -1, key, depth + 1);
    } else if (lua_isfunction(L, -1)) {
        lua_pushliteral(L, "__name");
        lua_rawget(L, mt);
        const char *name = lua_tostring(L, -1);
        int ours = lua_type(L, -1) == LUA_TSTRING && !strncmp(name, "icl.", 4);
        lua_pop(L, 1);
        if (ours) {
            lua_pushvalue(L, v);
            lua_pushstring(L, key);
            lua_call(L, 2, 1); /* errors are caught by complete_p's pcall */
        } else {
            lua_pushnil(L);
        }
    } else {
        lua_pushnil(L);
    }
    lua_replace(L, mt);
    lua_settop(L, mt);
}

/* complete_p(word) -> { [full word] = kind }. */
static int complete_p(lua_State *L) {
    const char *word = luaL_checkstring(L, 1);
    lua_newtable(L);
    int set = lua_gettop(L);
    const char *sep = NULL; /* the last '.' or ':' */
    for (const char *p = word; *p; p++)
        if (*p == '.' || *p == ':') sep = p;
    if (!sep) {
        lua_pushglobaltable(L);
        collect(L, -1, set, word, 0, 0);
        lua_pop(L, 1);
        for (size_t i = 0; i < sizeof lua_keywords / sizeof *lua_keywords; i++)
            add_candidate(L, set, lua_keywords[i], strlen(lua_keywords[i]), word, "");
        return 1;
    }
    /* resolve the path before sep: identifiers joined by '.' */
    size_t plen = (size_t)(sep - word);
    lua_pushglobaltable(L);
    size_t i = 0;
    while (i < plen) {
        size_t j = i;
        while (j < plen && word[j] != '.') j++;
        if (!is_ident(word + i, j - i)) {
            lua_newtable(L); /* a path we cannot follow (":" inside, "a..b"): no candidates */
            return 1;
        }
        lua_pushlstring(L, word + i, j - i);
        const char *seg = lua_tostring(L, -1);
        safe_get(L, -2, seg, 0);
        lua_remove(L, -2); /* the segment string */
        lua_remove(L, -2); /* the parent */
        i = j + 1;
    }
    if (plen == 0 || lua_isnil(L, -1)) {
        lua_newtable(L);
        return 1;
    }
    int target = lua_gettop(L);
    lua_newtable(L);
    int members = lua_gettop(L);
    collect(L, target, members, sep + 1, *sep == ':', 0);
    /* prefix the members with the path and separator */
    lua_pushnil(L);
    while (lua_next(L, members)) { /* key, kind */
        lua_pushlstring(L, word, plen + 1);
        lua_pushvalue(L, -3);
        lua_concat(L, 2);
        lua_pushvalue(L, -2);
        lua_rawset(L, set);
        lua_pop(L, 1);
    }
    lua_pushvalue(L, set);
    return 1;
}

/* ------------------------------------------------------------------------ */
/* C side                                                                   */
/* ------------------------------------------------------------------------ */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* [out] *out words, *kinds (malloc'd string of one char per word: 'f', 't'
 * or ' '); returns the count. */
static int complete_words(lua_State *L, const char *word, char ***out, char **kinds) {
    *out = NULL;
    if (kinds) *kinds = NULL;
    if (!L || !word || !lua_checkstack(L, 8)) return 0;
    int top = lua_gettop(L);
    lua_pushcfunction(L, complete_p);
    lua_pushstring(L, word);
    if (lua_pcall(L, 1, 1, 0) != LUA_OK || !lua_istable(L, -1)) {
        lua_settop(L, top);
        return 0;
    }
    int n = 0;
    lua_pushnil(L);
    while (lua_next(L, -2)) {
        n++;
        lua_pop(L, 1);
    }
    char **list = n ? calloc((size_t)n, sizeof *list) : NULL;
    int k = 0;
    if (list) {
        lua_pushnil(L);
        while (lua_next(L, -2)) {
            const char *w = lua_tostring(L, -2);
            const char *kind = lua_tostring(L, -1);
            size_t wl = strlen(w);
            char *s = malloc(wl + 2); /* word, NUL, then its kind after the NUL */
            if (s && k < n) {
                memcpy(s, w, wl + 1);
                s[wl + 1] = kind && *kind ? kind[0] : ' ';
                list[k++] = s;
            } else {
                free(s);
            }
            lua_pop(L, 1);
        }
    }
    lua_settop(L, top);
    if (!k) {
        free(list);
        return 0;
    }
    qsort(list, (size_t)k, sizeof *list, cmp_str);
    if (kinds) {
        *kinds = malloc((size_t)k + 1);
        if (*kinds) {
            for (int i = 0; i < k; i++) (*kinds)[i] = list[i][strlen(list[i]) + 1];
            (*kinds)[k] = 0;
        }
    }
    *out = list;
    return k;
}

int repl_complete(lua_State *L, const char *word, char ***out) { return complete_words(L, word, out, NULL); }

void repl_complete_free(char **list, int n) {
    if (!list) return;
    for (int i = 0; i < n; i++) free(list[i]);
    free(list);
}

/* Readline: text is the word before the cursor (split at the break
 * characters below, which exclude '.', ':' and '_'). Returns Readline's
 * matches array: the common prefix first, then every match; a single match
 * that is a function gets "(" so the call can be typed straight on. */
static char **attempted_completion(const char *text, int start, int end) {
    (void)start;
    (void)end;
    rl_attempted_completion_over = 1; /* never fall back to file names */
    rl_completion_append_character = '\0';
    char **list = NULL, *kinds = NULL;
    int n = complete_words(complete_L, text, &list, &kinds);
    if (n == 0) {
        free(kinds);
        return NULL;
    }
    char **m = malloc((size_t)(n + 2) * sizeof *m);
    if (!m) {
        repl_complete_free(list, n);
        free(kinds);
        return NULL;
    }
    if (n == 1) {
        size_t l = strlen(list[0]);
        m[0] = malloc(l + 2);
        if (m[0]) {
            memcpy(m[0], list[0], l + 1);
            if (kinds && kinds[0] == 'f') memcpy(m[0] + l, "(", 2);
        }
        m[1] = NULL;
        free(list[0]);
    } else {
        size_t common = strlen(list[0]);
        for (int i = 1; i < n; i++) {
            size_t c = 0;
            while (c < common && list[i][c] == list[0][c]) c++;
            common = c;
        }
        m[0] = malloc(common + 1);
        if (m[0]) {
            memcpy(m[0], list[0], common);
            m[0][common] = 0;
        }
        for (int i = 0; i < n; i++) m[i + 1] = list[i];
        m[n + 1] = NULL;
    }
    free(list);
    free(kinds);
    if (!m[0]) { /* out of memory: give up cleanly */
        for (int i = 1; m[i]; i++) free(m[i]);
        free(m);
        return NULL;
    }
    return m;
}

void repl_complete_install(lua_State *L) {
    complete_L = L;
    rl_attempted_completion_function = attempted_completion;
    rl_completer_word_break_characters = " \t\n\"\\'`@$><=;|&{(}[],+-*/%^#~";
    rl_basic_word_break_characters = rl_completer_word_break_characters;
}
