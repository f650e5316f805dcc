/*
 * tui_output.c - the output panel's scrollback: everything the REPL shows
 * (print, results, errors with tracebacks), Lua's io.write and io.stdout,
 * and whatever reaches file descriptors 1 and 2 (screen.c moves them onto
 * pipes), kept as a ring of lines and drawn wrapped at the panel's width.
 *
 * Text arrives in pieces; a line is complete at "\n". Tabs become spaces
 * (stops every 8 columns), "\r" starts the line over (a progress line
 * overwrites itself, as on a terminal), escape sequences and other control
 * characters are dropped, so nothing here can move the terminal's cursor.
 * Each line has one colour role: errors in the error role, echoed input in
 * the prompt role, the rest as text.
 *
 * Not here: curses (the screen copies the canvas), where the text comes
 * from (repl.h's sink, screen.c's pipes).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "tui/screen.h"

#define PART_MAX 8192 /* a longer line is cut into pieces */
#define IO_KEY "icl.tui.io" /* registry: the originals io.write, io.output, io.stdout and the proxy */

icl_status tui_output_init(tui_output *o, int max_lines) {
    memset(o, 0, sizeof *o);
    if (max_lines < 16) max_lines = 16;
    o->lines = calloc((size_t)max_lines, sizeof *o->lines);
    o->part = malloc(256);
    if (!o->lines || !o->part) {
        free(o->lines);
        free(o->part);
        memset(o, 0, sizeof *o);
        return icl_fail(ICL_ERR_NOMEM, "tui output: out of memory");
    }
    o->cap = max_lines;
    o->src_out = o->src_err = -1;
    o->part_cap = 256;
    o->part[0] = '\0';
    o->part_role = TUI_ROLE_TEXT;
    return ICL_OK;
}

void tui_output_free(tui_output *o) {
    for (int i = 0; o->lines && i < o->n; i++) free(o->lines[(o->head + i) % o->cap].text);
    free(o->lines);
    free(o->part);
    memset(o, 0, sizeof *o);
}

/* ---- writing ---------------------------------------------------------------------------------- */

static void commit(tui_output *o) {
    char *text = malloc(o->part_len + 1);
    if (!text) { /* out of memory: the line is lost, the buffer stays usable */
        o->part_len = 0;
        return;
    }
    memcpy(text, o->part, o->part_len);
    text[o->part_len] = '\0';
    int slot;
    if (o->n < o->cap) {
        slot = (o->head + o->n) % o->cap;
        o->n++;
    } else { /* full: drop the oldest */
        slot = o->head;
        free(o->lines[slot].text);
        o->head = (o->head + 1) % o->cap;
    }
    o->lines[slot].text = text;
    o->lines[slot].role = (unsigned char)o->part_role;
    o->part_len = 0;
    o->part[0] = '\0';
    o->part_role = TUI_ROLE_TEXT;
    if (o->scroll > 0) o->scroll++; /* a reader scrolled back keeps their place */
}

static void put_byte(tui_output *o, char ch) {
    if (o->part_len + 2 > o->part_cap) {
        size_t cap = o->part_cap * 2;
        char *p = realloc(o->part, cap);
        if (!p) return;
        o->part = p;
        o->part_cap = cap;
    }
    o->part[o->part_len++] = ch;
    o->part[o->part_len] = '\0';
}

/* Columns of the line being built (UTF-8 continuation bytes take none). */
static int part_columns(const tui_output *o) {
    int n = 0;
    for (size_t i = 0; i < o->part_len; i++) n += ((unsigned char)o->part[i] & 0xC0) != 0x80;
    return n;
}

void tui_output_write(tui_output *o, int role, const char *text, size_t len) {
    if (!o->lines || !text) return;
    o->dirty = 1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (o->esc) { /* skip an escape sequence: ESC [ ... final, ESC ] ... BEL/ST, ESC x */
            if (o->esc == 1) o->esc = ch == '[' ? 2 : ch == ']' ? 3 : 0;
            else if (o->esc == 2) { if (ch >= 0x40 && ch <= 0x7e) o->esc = 0; }
            else if (ch == 7 || ch == '\\') o->esc = 0;
            continue;
        }
        if (ch == 27) {
            o->esc = 1;
            continue;
        }
        if (o->part_len == 0) o->part_role = role;
        else if (role == TUI_ROLE_ERROR) o->part_role = role; /* an error joining a line colours it */
        if (ch == '\n') {
            o->part_role = o->part_len ? o->part_role : role;
            commit(o);
        } else if (ch == '\r') {
            if (i + 1 < len && text[i + 1] == '\n') continue;
            o->part_len = 0;
            o->part[0] = '\0';
        } else if (ch == '\t') {
            int sp = 8 - part_columns(o) % 8;
            while (sp--) put_byte(o, ' ');
        } else if (ch >= 0x20 && ch != 0x7f) {
            put_byte(o, (char)ch);
            if (o->part_len >= PART_MAX && (ch & 0xC0) != 0xC0) commit(o);
        }
    }
}

void tui_output_printf(tui_output *o, int role, const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    tui_output_write(o, role, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

void tui_output_sink(void *ctx, repl_stream s, const char *text, size_t len) {
    tui_output *o = ctx;
    tui_output_drain(o, o->src_out, o->src_err);
    tui_output_write(o, s == REPL_ERR ? TUI_ROLE_ERROR : TUI_ROLE_TEXT, text, len);
}

void tui_output_scroll(tui_output *o, int rows) {
    o->scroll += rows;
    if (o->scroll < 0) o->scroll = 0;
    o->dirty = 1;
}

static void drain_fd(tui_output *o, int fd, int role) {
    if (fd < 0) return;
    char buf[4096];
    for (int k = 0; k < 64; k++) { /* at most 256 KiB per call: the loop goes on */
        ssize_t n = read(fd, buf, sizeof buf);
        if (n <= 0) break;
        tui_output_write(o, role, buf, (size_t)n);
    }
}

void tui_output_drain(tui_output *o, int out_fd, int err_fd) {
    fflush(stdout);
    clearerr(stdout); /* a full pipe (EAGAIN) must not stop stdout for good */
    drain_fd(o, out_fd, TUI_ROLE_TEXT);
    drain_fd(o, err_fd, TUI_ROLE_ERROR);
}

/* ---- drawing ------------------------------------------------------------------------------------ */

/* Byte offset of column `col` of s (one column per character). */
static size_t offset_of_col(const char *s, int col) {
    size_t i = 0;
    unsigned cp;
    while (col > 0 && s[i]) {
        i += (size_t)tui_utf8_next(s + i, &cp);
        col--;
    }
    return i;
}

static int rows_of(const char *s, int w) {
    int cols = tui_text_width(s);
    return cols <= w ? 1 : (cols + w - 1) / w;
}

/* Row `r` (0-based) of the wrapped line s into c at y. */
static void draw_row(canvas *c, int y, const char *s, int r, tui_role role) {
    size_t a = offset_of_col(s, r * c->w), b = a + offset_of_col(s + a, c->w);
    char buf[2048];
    size_t n = b - a < sizeof buf - 1 ? b - a : sizeof buf - 1;
    memcpy(buf, s + a, n);
    buf[n] = '\0';
    canvas_text(c, 0, y, buf, role, 0);
}

void tui_output_draw(tui_output *o, canvas *c) {
    o->dirty = 0;
    o->last_rows = c->h;
    if (c->w <= 0 || c->h <= 0) return;
    const int total_lines = o->n + (o->part_len > 0);
    /* clamp the scroll to what there is */
    if (o->scroll > 0) {
        int rows = 0;
        for (int i = total_lines - 1; i >= 0 && rows < o->scroll + c->h; i--)
            rows += rows_of(i < o->n ? o->lines[(o->head + i) % o->cap].text : o->part, c->w);
        if (o->scroll > rows - c->h) o->scroll = rows - c->h > 0 ? rows - c->h : 0;
    }
    int skip = o->scroll, y = c->h - 1;
    for (int i = total_lines - 1; i >= 0 && y >= 0; i--) {
        const char *s = i < o->n ? o->lines[(o->head + i) % o->cap].text : o->part;
        tui_role role = i < o->n ? (tui_role)o->lines[(o->head + i) % o->cap].role : (tui_role)o->part_role;
        for (int r = rows_of(s, c->w) - 1; r >= 0 && y >= 0; r--) {
            if (skip > 0) {
                skip--;
                continue;
            }
            draw_row(c, y--, s, r, role);
        }
    }
    if (o->scroll > 0) {
        char mark[64];
        snprintf(mark, sizeof mark, " scrolled back %d rows: PgDn ", o->scroll);
        int w = tui_text_width(mark);
        canvas_text(c, c->w > w ? c->w - w : 0, 0, mark, TUI_ROLE_STATUS, 0);
    }
}

/* ---- Lua: io.write, io.stdout, io.output ------------------------------------------------------- */

/* The registry table of the originals; pushes it. */
static tui_output *io_state(lua_State *L) {
    lua_getfield(L, LUA_REGISTRYINDEX, IO_KEY);
    lua_getfield(L, -1, "out");
    tui_output *o = lua_touserdata(L, -1);
    lua_pop(L, 1);
    return o;
}

/* Write arguments first..top as io.write does: strings, and numbers in
 * Lua's own formats. */
static void write_args(lua_State *L, tui_output *o, int first, int top) {
    tui_output_drain(o, o->src_out, o->src_err);
    for (int i = first; i <= top; i++) {
        char num[64];
        size_t len;
        const char *s;
        if (lua_type(L, i) == LUA_TNUMBER) {
            if (lua_isinteger(L, i)) len = (size_t)snprintf(num, sizeof num, LUA_INTEGER_FMT, lua_tointeger(L, i));
            else len = (size_t)snprintf(num, sizeof num, LUA_NUMBER_FMT, lua_tonumber(L, i));
            s = num;
        } else {
            s = luaL_checklstring(L, i, &len);
        }
        tui_output_write(o, TUI_ROLE_TEXT, s, len);
    }
}

/* Forward the call to the original function `name` of the table at idx. */
static int forward(lua_State *L, int tab, const char *name, int first, int top) {
    int base = lua_gettop(L);
    lua_getfield(L, tab, name);
    for (int i = first; i <= top; i++) lua_pushvalue(L, i);
    lua_call(L, top - first + 1, LUA_MULTRET);
    return lua_gettop(L) - base;
}

/* Is the current default output (the original io.output()) the terminal? */
static int output_is_terminal(lua_State *L, int tab) {
    lua_getfield(L, tab, "output");
    lua_call(L, 0, 1);
    lua_getfield(L, tab, "stdout");
    int yes = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return yes;
}

static int l_io_write(lua_State *L) {
    int top = lua_gettop(L);
    tui_output *o = io_state(L);
    int tab = lua_gettop(L);
    if (o && output_is_terminal(L, tab)) {
        write_args(L, o, 1, top);
        lua_getfield(L, tab, "proxy");
        return 1;
    }
    return forward(L, tab, "write", 1, top);
}

static int l_io_output(lua_State *L) {
    int top = lua_gettop(L);
    io_state(L);
    int tab = lua_gettop(L);
    lua_getfield(L, tab, "proxy");
    if (top >= 1 && lua_rawequal(L, 1, -1)) { /* io.output(io.stdout): the terminal again */
        lua_getfield(L, tab, "output");
        lua_getfield(L, tab, "stdout");
        lua_call(L, 1, 0);
        return 1;
    }
    lua_pop(L, 1);
    int n = forward(L, tab, "output", 1, top);
    if (n >= 1) {
        lua_getfield(L, tab, "stdout");
        if (lua_rawequal(L, -1, -2)) {
            lua_getfield(L, tab, "proxy");
            return 1;
        }
        lua_pop(L, 1);
    }
    return n;
}

/* Methods of the io.stdout stand-in. */
static int l_proxy_write(lua_State *L) {
    int top = lua_gettop(L);
    tui_output *o = io_state(L);
    int tab = lua_gettop(L);
    if (o) {
        write_args(L, o, 2, top);
        lua_pushvalue(L, 1);
        return 1;
    }
    /* after the TUI: the real stdout */
    lua_getfield(L, tab, "stdout");
    lua_replace(L, 1);
    lua_getfield(L, 1, "write");
    lua_insert(L, 1);
    lua_settop(L, top + 1);
    lua_call(L, top, LUA_MULTRET);
    return lua_gettop(L);
}

static int l_proxy_flush(lua_State *L) {
    lua_settop(L, 1);
    return 1;
}

static int l_proxy_close(lua_State *L) {
    lua_pushnil(L);
    lua_pushliteral(L, "cannot close standard file");
    return 2;
}

static int l_proxy_setvbuf(lua_State *L) {
    lua_pushboolean(L, 1);
    return 1;
}

static int l_proxy_seek(lua_State *L) {
    lua_pushnil(L);
    lua_pushliteral(L, "Illegal seek");
    lua_pushinteger(L, ESPIPE);
    return 3;
}

static int l_proxy_read(lua_State *L) {
    return luaL_error(L, "io.stdout is the output panel of the TUI: it cannot be read");
}

static int l_proxy_tostring(lua_State *L) {
    lua_pushliteral(L, "file (the TUI's output panel)");
    return 1;
}

void tui_output_install_lua(lua_State *L, tui_output *o) {
    luaL_checkstack(L, 8, "tui_output_install_lua");
    if (lua_getfield(L, LUA_REGISTRYINDEX, IO_KEY) == LUA_TTABLE) { /* installed: just (un)point it */
        if (o) lua_pushlightuserdata(L, o);
        else lua_pushboolean(L, 0);
        lua_setfield(L, -2, "out");
        lua_pop(L, 1);
        return;
    }
    lua_pop(L, 1);
    if (!o) return;
    lua_getglobal(L, "io");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return;
    }
    int io = lua_gettop(L);
    lua_newtable(L);
    int tab = lua_gettop(L);
    lua_pushlightuserdata(L, o);
    lua_setfield(L, tab, "out");
    lua_getfield(L, io, "write");
    lua_setfield(L, tab, "write");
    lua_getfield(L, io, "output");
    lua_setfield(L, tab, "output");
    lua_getfield(L, io, "stdout");
    lua_setfield(L, tab, "stdout");
    /* the io.stdout stand-in: a table with the file methods that make sense */
    static const luaL_Reg methods[] = {
        {"write", l_proxy_write}, {"flush", l_proxy_flush}, {"close", l_proxy_close}, {"setvbuf", l_proxy_setvbuf},
        {"seek", l_proxy_seek},   {"read", l_proxy_read},   {"lines", l_proxy_read},  {NULL, NULL},
    };
    lua_newtable(L);
    lua_createtable(L, 0, 2);
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_proxy_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_setmetatable(L, -2);
    lua_pushvalue(L, -1);
    lua_setfield(L, tab, "proxy");
    lua_setfield(L, io, "stdout");
    lua_pushvalue(L, tab);
    lua_setfield(L, LUA_REGISTRYINDEX, IO_KEY);
    lua_pushcfunction(L, l_io_write);
    lua_setfield(L, io, "write");
    lua_pushcfunction(L, l_io_output);
    lua_setfield(L, io, "output");
    lua_settop(L, io - 1);
}
