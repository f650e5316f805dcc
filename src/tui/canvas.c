/*
 * canvas.c - the cell buffer of canvas.h: clipped writes, UTF-8 text, box
 * frames, and the ASCII stand-ins of every glyph the TUI draws.
 *
 * Every write goes through one function, put_cp(), which clips to the
 * canvas, replaces what a terminal cannot show in one column (control
 * characters, invalid UTF-8, wide and combining characters) by '?', and in
 * ASCII mode maps the glyph to ASCII. So the guarantees of canvas.h (nothing
 * outside the view, no byte >= 0x80 in ASCII mode) hold by construction.
 *
 * Not here: colours (theme.h), plots and heatmaps (plot.h).
 */
#include "tui/canvas.h"

#include <langinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- life cycle ------------------------------------------------------------ */

static void blank(tui_cell *cell, tui_role role) {
    cell->glyph[0] = ' ';
    cell->glyph[1] = '\0';
    cell->role = (unsigned char)role;
    cell->bg_role = TUI_ROLE_DEFAULT;
    cell->attr = 0;
    cell->fg = cell->bg = -1;
}

icl_status canvas_init(canvas *c, int w, int h) {
    memset(c, 0, sizeof *c);
    if (w < 0 || h < 0 || (long long)w * h > (1LL << 26))
        return icl_fail(ICL_ERR_ARG, "canvas: bad size %d x %d", w, h);
    size_t n = (size_t)w * (size_t)h;
    c->cells = malloc((n ? n : 1) * sizeof *c->cells);
    if (!c->cells) return icl_fail(ICL_ERR_NOMEM, "canvas: out of memory for %d x %d cells", w, h);
    c->w = w;
    c->h = h;
    c->stride = w;
    c->owner = 1;
    c->colors = 256;
    canvas_clear(c, TUI_ROLE_DEFAULT);
    return ICL_OK;
}

void canvas_free(canvas *c) {
    if (!c) return;
    if (c->owner) free(c->cells);
    c->cells = NULL;
    c->w = c->h = c->stride = 0;
    c->owner = 0;
}

icl_status canvas_resize(canvas *c, int w, int h) {
    if (!c->owner && c->cells) return icl_fail(ICL_ERR_ARG, "canvas: a view cannot be resized");
    int ascii = c->ascii, colors = c->colors;
    canvas n;
    icl_status st = canvas_init(&n, w, h);
    if (st) return st;
    canvas_free(c);
    *c = n;
    c->ascii = ascii;
    c->colors = colors;
    return ICL_OK;
}

canvas canvas_view(const canvas *parent, int x, int y, int w, int h) {
    canvas v = *parent;
    v.owner = 0;
    /* clip the rectangle to the parent */
    if (x < 0) {
        w += x;
        x = 0;
    }
    if (y < 0) {
        h += y;
        y = 0;
    }
    if ((long long)x + w > parent->w) w = parent->w - x;
    if ((long long)y + h > parent->h) h = parent->h - y;
    if (w <= 0 || h <= 0 || !parent->cells) {
        v.w = v.h = 0;
        return v;
    }
    v.w = w;
    v.h = h;
    v.cells = parent->cells + (size_t)y * parent->stride + x;
    return v;
}

/* ---- cells ------------------------------------------------------------------ */

tui_cell *canvas_cell(canvas *c, int x, int y) {
    if (!c || x < 0 || y < 0 || x >= c->w || y >= c->h) return NULL;
    return &c->cells[(size_t)y * c->stride + x];
}

const tui_cell *canvas_cell_const(const canvas *c, int x, int y) {
    if (!c || x < 0 || y < 0 || x >= c->w || y >= c->h) return NULL;
    return &c->cells[(size_t)y * c->stride + x];
}

void canvas_clear(canvas *c, tui_role role) {
    for (int y = 0; y < c->h; y++)
        for (int x = 0; x < c->w; x++) blank(&c->cells[(size_t)y * c->stride + x], role);
}

int tui_utf8_next(const char *s, unsigned *cp) {
    const unsigned char *u = (const unsigned char *)s;
    unsigned c = u[0];
    *cp = 0;
    if (c == 0) return 0;
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len = c >= 0xF0 && c < 0xF5 ? 4 : c >= 0xE0 ? (c < 0xF0 ? 3 : 0) : c >= 0xC2 ? 2 : 0;
    if (len == 0) {
        *cp = 0xFFFD;
        return 1;
    }
    unsigned v = c & (0x7F >> len);
    for (int i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) { /* truncated: also stops at the NUL */
            *cp = 0xFFFD;
            return 1;
        }
        v = (v << 6) | (u[i] & 0x3F);
    }
    /* overlong forms and surrogates are invalid */
    if ((len == 3 && (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF))) || (len == 4 && (v < 0x10000 || v > 0x10FFFF))) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = v;
    return len;
}

/* Code points that do not take exactly one column: controls, combining
 * marks, and the common wide (East Asian, emoji) ranges. */
static int one_column(unsigned cp) {
    if (cp < 0x20 || (cp >= 0x7F && cp < 0xA0) || cp == 0xFFFD) return 0;
    if ((cp >= 0x300 && cp < 0x370) || (cp >= 0x200B && cp <= 0x200F)) return 0;
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0xA4CF) || (cp >= 0xAC00 && cp <= 0xD7A3) ||
        (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
        (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1FAFF) || cp >= 0x20000)
        return 0;
    return 1;
}

static int encode(unsigned cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ASCII stand-in of a code point >= 0x80. */
static const char *ascii_of_cp(unsigned cp) {
    if (cp >= 0x2800 && cp <= 0x28FF) { /* braille: dots 1,2,4,5 on top, 3,6,7,8 below */
        unsigned bits = cp - 0x2800;
        int top = (bits & 0x1B) != 0, bottom = (bits & 0xE4) != 0;
        return top && bottom ? ":" : top ? "'" : bottom ? "." : " ";
    }
    if (cp >= 0x2500 && cp <= 0x257F) { /* box drawing */
        if (cp <= 0x2501 || cp == 0x2504 || cp == 0x2505 || cp == 0x2508 || cp == 0x2509 || cp == 0x254C ||
            cp == 0x254D || cp == 0x2574 || cp == 0x2576 || cp == 0x2578 || cp == 0x257A || cp == 0x257C ||
            cp == 0x257E)
            return "-";
        if (cp <= 0x2503 || cp == 0x2506 || cp == 0x2507 || cp == 0x250A || cp == 0x250B || cp == 0x254E ||
            cp == 0x254F || cp == 0x2551 || cp == 0x2575 || cp == 0x2577 || cp == 0x2579 || cp == 0x257B ||
            cp == 0x257D || cp == 0x257F)
            return "|";
        if (cp == 0x2550) return "=";
        if (cp == 0x2571) return "/";
        if (cp == 0x2572) return "\\";
        if (cp == 0x2573) return "X";
        return "+";
    }
    if (cp >= 0x2580 && cp <= 0x259F) { /* blocks and shades */
        switch (cp) {
        case 0x2580: case 0x2594: return "\"";
        case 0x2581: case 0x2582: case 0x2583: return "_";
        case 0x2584: return "=";
        case 0x258F: case 0x2595: return "|";
        case 0x2591: return ".";
        case 0x2592: return ":";
        default: return "#";
        }
    }
    switch (cp) {
    case 0xA0: return " ";
    case 0xB7: case 0x2026: case 0x22C5: return ".";
    case 0xB1: return "+";
    case 0xD7: return "x";
    case 0x394: return "D";
    case 0x3BC: return "u";
    case 0x2013: case 0x2014: case 0x2212: case 0x2194: return "-";
    case 0x2022: case 0x2217: return "*";
    case 0x2190: case 0x25C0: case 0x25C2: case 0x2264: return "<";
    case 0x2192: case 0x25B6: case 0x25B8: case 0x2265: return ">";
    case 0x2191: case 0x25B2: case 0x25B4: return "^";
    case 0x2193: case 0x25BC: case 0x25BE: return "v";
    case 0x2248: case 0x223C: return "~";
    case 0x25CF: case 0x25CB: case 0xB0: return "o";
    case 0x25A0: case 0x25AA: return "#";
    default: return "?";
    }
}

const char *canvas_ascii_of(const char *glyph) {
    if (!glyph) return "?";
    unsigned cp;
    int n = tui_utf8_next(glyph, &cp);
    if (n == 0) return " ";
    if (cp < 0x20 || cp == 0x7F) return "?";
    if (cp < 0x80) return glyph; /* its first character is the answer */
    return ascii_of_cp(cp);
}

/* ---- writing cells ------------------------------------------------------------ */

/* The one place a glyph is stored: clip, sanitise, ASCII-map. */
static tui_cell *put_cp(canvas *c, int x, int y, unsigned cp) {
    tui_cell *cell = canvas_cell(c, x, y);
    if (!cell) return NULL;
    if (!one_column(cp)) cp = '?';
    if (cp < 0x80) {
        cell->glyph[0] = (char)cp;
        cell->glyph[1] = '\0';
    } else if (c->ascii) {
        const char *a = ascii_of_cp(cp);
        cell->glyph[0] = a[0];
        cell->glyph[1] = '\0';
    } else {
        int n = encode(cp, cell->glyph);
        cell->glyph[n] = '\0';
    }
    return cell;
}

void canvas_put(canvas *c, int x, int y, const char *glyph, tui_role role, unsigned attr) {
    unsigned cp = ' ';
    if (glyph) tui_utf8_next(glyph, &cp);
    if (cp == 0) cp = ' ';
    tui_cell *cell = put_cp(c, x, y, cp);
    if (!cell) return;
    cell->role = (unsigned char)role;
    cell->bg_role = TUI_ROLE_DEFAULT;
    cell->attr = (unsigned char)attr;
    cell->fg = cell->bg = -1;
}

void canvas_put_rgb(canvas *c, int x, int y, const char *glyph, int fg, int bg) {
    canvas_put(c, x, y, glyph, TUI_ROLE_DEFAULT, 0);
    tui_cell *cell = canvas_cell(c, x, y);
    if (!cell) return;
    cell->fg = (short)(fg >= 0 && fg < 256 ? fg : -1);
    cell->bg = (short)(bg >= 0 && bg < 256 ? bg : -1);
}

void canvas_set_bg_role(canvas *c, int x, int y, tui_role bg_role) {
    tui_cell *cell = canvas_cell(c, x, y);
    if (cell) cell->bg_role = (unsigned char)bg_role;
}

void canvas_fill(canvas *c, int x, int y, int w, int h, const char *glyph, tui_role role, unsigned attr) {
    /* clip first, so huge rectangles cost nothing */
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = (long long)x + w > c->w ? c->w : x + w, y1 = (long long)y + h > c->h ? c->h : y + h;
    for (int yy = y0; yy < y1; yy++)
        for (int xx = x0; xx < x1; xx++) canvas_put(c, xx, yy, glyph, role, attr);
}

/* ---- text ------------------------------------------------------------------------ */

int tui_text_width(const char *s) {
    int n = 0;
    unsigned cp;
    for (int k; s && (k = tui_utf8_next(s, &cp)) > 0; s += k) n++;
    return n;
}

int canvas_text(canvas *c, int x, int y, const char *s, tui_role role, unsigned attr) {
    int col = 0;
    unsigned cp;
    if (!s) return 0;
    for (int k; (k = tui_utf8_next(s, &cp)) > 0; s += k, col++) {
        long long xc = (long long)x + col;
        if (xc < 0 || xc >= c->w || y < 0 || y >= c->h) continue; /* keep counting the width */
        tui_cell *cell = put_cp(c, (int)xc, y, cp);
        if (!cell) continue;
        cell->role = (unsigned char)role;
        cell->bg_role = TUI_ROLE_DEFAULT;
        cell->attr = (unsigned char)attr;
        cell->fg = cell->bg = -1;
    }
    return col;
}

int canvas_text_max(canvas *c, int x, int y, int maxw, const char *s, tui_role role, unsigned attr) {
    if (!s || maxw <= 0) return 0;
    int w = tui_text_width(s);
    if (w <= maxw) return canvas_text(c, x, y, s, role, attr);
    /* draw maxw - 1 characters and an ellipsis */
    unsigned cp;
    const char *p = s;
    int col = 0;
    for (int k; col < maxw - 1 && (k = tui_utf8_next(p, &cp)) > 0; p += k, col++) {
        char one[TUI_GLYPH_MAX + 1];
        memcpy(one, p, (size_t)k);
        one[k] = '\0';
        canvas_text(c, x + col, y, one, role, attr);
    }
    canvas_text(c, x + col, y, "\xe2\x80\xa6", role, attr); /* U+2026 */
    return maxw;
}

int canvas_textf(canvas *c, int x, int y, tui_role role, unsigned attr, const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return canvas_text(c, x, y, buf, role, attr);
}

/* ---- lines and boxes ------------------------------------------------------------------ */

#define G_HLINE "\xe2\x94\x80" /* U+2500 */
#define G_VLINE "\xe2\x94\x82" /* U+2502 */
#define G_TL "\xe2\x95\xad"    /* U+256D rounded corners */
#define G_TR "\xe2\x95\xae"
#define G_BR "\xe2\x95\xaf"
#define G_BL "\xe2\x95\xb0"

void canvas_hline(canvas *c, int x, int y, int w, tui_role role) {
    for (long long i = x < 0 ? -(long long)x : 0; i < w && x + i < c->w; i++)
        canvas_put(c, (int)(x + i), y, G_HLINE, role, 0);
}

void canvas_vline(canvas *c, int x, int y, int h, tui_role role) {
    for (long long i = y < 0 ? -(long long)y : 0; i < h && y + i < c->h; i++)
        canvas_put(c, x, (int)(y + i), G_VLINE, role, 0);
}

void canvas_box(canvas *c, const char *title, tui_role frame_role, tui_role title_role) {
    if (c->w < 2 || c->h < 2) return;
    int w = c->w, h = c->h;
    canvas_hline(c, 1, 0, w - 2, frame_role);
    canvas_hline(c, 1, h - 1, w - 2, frame_role);
    canvas_vline(c, 0, 1, h - 2, frame_role);
    canvas_vline(c, w - 1, 1, h - 2, frame_role);
    canvas_put(c, 0, 0, G_TL, frame_role, 0);
    canvas_put(c, w - 1, 0, G_TR, frame_role, 0);
    canvas_put(c, 0, h - 1, G_BL, frame_role, 0);
    canvas_put(c, w - 1, h - 1, G_BR, frame_role, 0);
    /* "╭─ title ──╮": the title starts at column 2, padded by one space on
     * each side, and leaves the last corner and one line cell free. */
    int room = w - 6;
    if (title && *title && room > 0) {
        canvas_put(c, 2, 0, " ", title_role, 0);
        int n = canvas_text_max(c, 3, 0, room, title, title_role, 0);
        canvas_put(c, 3 + n, 0, " ", title_role, 0);
    }
}

/* ---- locale and reading back --------------------------------------------------------------- */

int canvas_locale_is_utf8(void) {
    const char *cs = nl_langinfo(CODESET);
    return cs && (!strcasecmp(cs, "UTF-8") || !strcasecmp(cs, "utf8"));
}

size_t canvas_row_text(const canvas *c, int y, char *buf, size_t n) {
    size_t len = 0;
    if (n == 0) return 0;
    for (int x = 0; y >= 0 && y < c->h && x < c->w; x++) {
        const char *g = c->cells[(size_t)y * c->stride + x].glyph;
        size_t k = strlen(g);
        if (len + k + 1 > n) break;
        memcpy(buf + len, g, k);
        len += k;
    }
    buf[len] = '\0';
    return len;
}

size_t canvas_dump(const canvas *c, char *buf, size_t n) {
    size_t len = 0;
    if (n == 0) return 0;
    buf[0] = '\0';
    for (int y = 0; y < c->h; y++) {
        len += canvas_row_text(c, y, buf + len, n - len);
        if (len + 2 > n) break;
        buf[len++] = '\n';
        buf[len] = '\0';
    }
    return len;
}
