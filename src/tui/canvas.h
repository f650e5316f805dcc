/*
 * canvas.h - a cell buffer that panels draw into, with no curses in it.
 *
 * A canvas is width x height cells. Each cell holds one glyph (a UTF-8
 * sequence of 1-4 bytes that occupies one terminal column), a colour role
 * (theme.h) for its foreground, an optional background role, TUI_ATTR_*
 * attributes, and optionally raw xterm-256 colours that override the roles
 * (heatmaps). The screen manager owns the terminal: it gives each panel a
 * view of its rectangle, lets the panel draw, and copies the cells to
 * curses. Tests draw into canvases and read the cells back.
 *
 *   canvas c;  canvas_init(&c, 80, 24);           // owns its cells
 *   canvas v = canvas_view(&c, 40, 0, 40, 12);    // a window into c
 *   canvas_box(&v, "loss", TUI_ROLE_FRAME, TUI_ROLE_TITLE);
 *   canvas_text(&v, 2, 1, "hello", TUI_ROLE_TEXT, 0);
 *   canvas_free(&c);
 *
 * Coordinates are relative to the canvas (a view's (0, 0) is its top-left
 * corner) and every write is clipped to it: drawing never touches a cell
 * outside the view, whatever the arguments.
 *
 * Two capability fields, set by the screen and inherited by views, say how
 * to draw: `ascii` (the locale is not UTF-8: every glyph written becomes
 * ASCII through canvas_ascii_of, so no byte >= 0x80 is ever stored) and
 * `colors` (0 for no colours or the mono theme, else 8, 16 or 256: which raw
 * colour indices heatmaps may use).
 *
 * Copying a cell to the terminal: the foreground is fg if >= 0, else the
 * fg of theme_style(role); the background is bg if >= 0, else the bg of
 * theme_style(bg_role) when bg_role is set, else that of the role; the
 * attributes are attr | theme_style(role).attr.
 *
 * Not here: curses, layout, what is drawn (plot.h, the panels).
 */
#ifndef ICL_TUI_CANVAS_H
#define ICL_TUI_CANVAS_H

#include <stddef.h>

#include "core/status.h"
#include "tui/theme.h"

#define TUI_GLYPH_MAX 4

typedef struct {
    char glyph[TUI_GLYPH_MAX + 1]; /* NUL-terminated UTF-8, one column wide */
    unsigned char role;            /* tui_role of the foreground */
    unsigned char bg_role;         /* tui_role of the background; TUI_ROLE_DEFAULT = the role's own */
    unsigned char attr;            /* TUI_ATTR_* */
    short fg, bg;                  /* raw xterm-256 colours, -1 = from the roles */
} tui_cell;

typedef struct {
    int w, h;          /* size in cells (a view: clipped to its parent) */
    int stride;        /* cells per row of the underlying buffer */
    tui_cell *cells;   /* cell (x, y) is cells[y * stride + x] */
    int owner;         /* 1 if canvas_free releases cells (not for views) */
    int ascii;         /* draw ASCII only */
    int colors;        /* 0, 8, 16 or 256 */
} canvas;

/* A canvas of w x h blank cells (w, h >= 0), UTF-8, 256 colours. */
icl_status canvas_init(canvas *c, int w, int h);
void canvas_free(canvas *c);
/* Change the size (contents are cleared); not for views. */
icl_status canvas_resize(canvas *c, int w, int h);
/* A window of `parent` at (x, y) of size w x h, clipped to the parent (an
 * empty view if nothing is left). It shares the parent's cells and
 * capabilities; never free it. */
canvas canvas_view(const canvas *parent, int x, int y, int w, int h);

/* ---- cells ----------------------------------------------------------------- */

/* The cell at (x, y), or NULL outside. */
tui_cell *canvas_cell(canvas *c, int x, int y);
const tui_cell *canvas_cell_const(const canvas *c, int x, int y);
/* Every cell to a space in `role`, no attributes, no raw colours. */
void canvas_clear(canvas *c, tui_role role);
/* Write one glyph (the first UTF-8 character of `glyph`) at (x, y). */
void canvas_put(canvas *c, int x, int y, const char *glyph, tui_role role, unsigned attr);
/* Write one glyph with raw xterm colours fg, bg (-1 = from the role). */
void canvas_put_rgb(canvas *c, int x, int y, const char *glyph, int fg, int bg);
/* Set the background role of the cell at (x, y), keeping its glyph. */
void canvas_set_bg_role(canvas *c, int x, int y, tui_role bg_role);
/* Fill a rectangle with one glyph. */
void canvas_fill(canvas *c, int x, int y, int w, int h, const char *glyph, tui_role role, unsigned attr);

/* ---- text ------------------------------------------------------------------ */

/* Draw UTF-8 text from (x, y) along the row, one column per character,
 * clipped to the canvas (and control characters shown as '?'). Returns the
 * number of columns the text takes (drawn or not). */
int canvas_text(canvas *c, int x, int y, const char *s, tui_role role, unsigned attr);
/* As canvas_text, but at most `maxw` columns; longer text ends in an
 * ellipsis. Returns the columns drawn. */
int canvas_text_max(canvas *c, int x, int y, int maxw, const char *s, tui_role role, unsigned attr);
/* printf into canvas_text. */
int canvas_textf(canvas *c, int x, int y, tui_role role, unsigned attr, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* Columns a UTF-8 string takes (its number of characters). */
int tui_text_width(const char *s);

/* ---- lines and boxes -------------------------------------------------------- */

void canvas_hline(canvas *c, int x, int y, int w, tui_role role);
void canvas_vline(canvas *c, int x, int y, int h, tui_role role);
/* A frame around the whole canvas with `title` in its top edge (" title ",
 * cut to fit; NULL or "" for none). Canvases smaller than 2 x 2 get none. */
void canvas_box(canvas *c, const char *title, tui_role frame_role, tui_role title_role);

/* ---- UTF-8 and ASCII ----------------------------------------------------------- */

/* Length in bytes of the UTF-8 character starting at s (1 for an invalid
 * byte, 0 at the terminating NUL); [out] *cp its code point (U+FFFD if
 * invalid). */
int tui_utf8_next(const char *s, unsigned *cp);
/* The ASCII stand-in of a glyph: box drawing -> + - |, blocks and shades ->
 * # and friends, braille -> . : ', arrows -> < > ^ v, others -> '?'; an
 * ASCII glyph is returned as itself. Read the first character of the
 * result; never NULL. */
const char *canvas_ascii_of(const char *glyph);
/* 1 if the current locale (LC_CTYPE, after setlocale) encodes UTF-8; the
 * screen sets canvas.ascii = !canvas_locale_is_utf8(). */
int canvas_locale_is_utf8(void);

/* ---- reading back (tests, screenshots) ------------------------------------------- */

/* Row y as UTF-8 text (glyphs only) into buf, NUL-terminated, cut to fit n.
 * Returns the bytes written. */
size_t canvas_row_text(const canvas *c, int y, char *buf, size_t n);
/* The whole canvas, rows separated by '\n'. */
size_t canvas_dump(const canvas *c, char *buf, size_t n);

#endif
