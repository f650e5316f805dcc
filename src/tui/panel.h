/*
 * panel.h - the panels of the TUI: small objects with a vtable (htop's
 * Panel and Meter, STYLE.md rule 18).
 *
 * Each tick the screen manager calls, for every panel:
 *   panel_update(p, &src)    copy the numbers it shows from the engine into
 *                            the panel's own memory (tui_source.h); nothing
 *                            from src is kept after it returns
 *   panel_draw(p, &view, f)  render from that copy only into a canvas view
 *                            of the panel's rectangle (f: it has the focus)
 * and, while the panels have the keys, panel_on_key(p, key) for the
 * focused one, which returns PANEL_* flags for the loop to act on. Panels
 * never touch layout, the terminal or each other; the loop updates first
 * and draws second, so a panel can draw any number of times per update.
 * A key that asks for other data (another layer, head or prompt) is seen
 * by the next update(): after PANEL_REDRAW the loop should update the
 * focused panel before drawing it (the probe panels say "loading..." until
 * then; they skip re-reading a forward pass they already hold).
 *
 *   panel *p = panel_new("attention");      // or panel_attention_new()
 *   panel_update(p, &src);  panel_draw(p, &view, 1);
 *   if (panel_on_key(p, ']') & PANEL_REDRAW) ...;
 *   panel_free(p);
 *
 * Keys are characters (ASCII, as typed) or the PANEL_KEY_* codes below; the
 * screen translates curses' KEY_LEFT etc. into these, so no panel includes
 * curses.
 *
 * Not here: the screen manager and its event loop, the output panel (the
 * REPL's scrollback belongs to the screen), curses.
 */
#ifndef ICL_TUI_PANEL_H
#define ICL_TUI_PANEL_H

#include <stdint.h>

#include "tui/canvas.h"
#include "tui/tui_source.h"

/* Flags returned by on_key. */
#define PANEL_HANDLED 1 /* the key meant something here */
#define PANEL_REDRAW 2  /* the panel's look changed: draw it again */
#define PANEL_ZOOM 4    /* toggle this panel full screen */

/* Non-character keys (beyond Unicode, so they never clash with a char). */
enum {
    PANEL_KEY_LEFT = 0x110000,
    PANEL_KEY_RIGHT,
    PANEL_KEY_UP,
    PANEL_KEY_DOWN,
    PANEL_KEY_HOME,
    PANEL_KEY_END,
    PANEL_KEY_PGUP,
    PANEL_KEY_PGDN
};

typedef struct panel panel;

/* The class of a panel: its name, its keys, and its methods. */
typedef struct {
    const char *name;  /* "loss", "icl", "attention", "ssm", "model", "status" */
    const char *help;  /* one line: the keys it understands, e.g. "l log/linear  <- -> cursor" */
    int min_w, min_h;  /* a layout hint: smaller, it draws a summary or a message (it is safe at any size) */
    void (*update)(panel *p, const tui_source *src);
    void (*draw)(panel *p, canvas *c, int focused);
    int (*on_key)(panel *p, int key);      /* NULL: no keys */
    void (*destroy)(panel *p);             /* NULL: free(p) */
} panel_class;

/* Every panel struct starts with this (a panel_loss is { panel base; ... }). */
struct panel {
    const panel_class *cls;
};

/* ---- using panels ------------------------------------------------------------ */

/* A panel by class name; NULL (ICL_ERR_ARG listing the names, or
 * ICL_ERR_NOMEM) on failure. */
panel *panel_new(const char *name);
/* The class names in the registry's order. [out] *n. */
const char *const *panel_names(int *n);
void panel_update(panel *p, const tui_source *src);
void panel_draw(panel *p, canvas *c, int focused);
/* PANEL_* flags; 0 if the key means nothing to this panel. 'z' gives
 * PANEL_ZOOM unless the panel uses it. */
int panel_on_key(panel *p, int key);
void panel_free(panel *p);
const char *panel_name(const panel *p);
const char *panel_help(const panel *p);

/* The constructors (NULL with ICL_ERR_NOMEM if out of memory). */
panel *panel_loss_new(void);      /* train loss and eval history; l log/linear, <- -> cursor */
panel *panel_icl_new(void);       /* ICL error vs #examples: model, band, baselines */
panel *panel_attention_new(void); /* attention heatmap of one layer and head */
panel *panel_ssm_new(void);       /* Mamba |h_t|, Delta, B, C of one layer */
panel *panel_model_new(void);     /* blocks, parameter counts, gradient norms */
panel *panel_status_new(void);    /* the one-line status */

/* ---- for panel implementations ---------------------------------------------- */

/* Draw the panel frame with `title` over the whole canvas (the focus role
 * when focused) and return the view inside it. A canvas under 4 x 3 gets
 * no frame: the view is the canvas itself. */
canvas panel_frame(canvas *c, const char *title, int focused);
/* A dim message centred in c (the first row if it is one row high). */
void panel_message(canvas *c, const char *msg);
/* Counts as people read them: 812, 24.6k, 1.20M. */
void panel_format_count(double v, char *buf, size_t n);
/* Seconds as m:ss, or h:mm:ss from an hour; "-" if unknown. */
void panel_format_duration(double sec, char *buf, size_t n);
/* What each of the T token positions of task t holds, as one char (task.h
 * layouts): 'x' / 'y' interleaved, 'x' 's' 'y' for cot_io, 'k' / 'v' then
 * 'q' for vector_mqar, 'k' / 'v' then '-' (the query region) for
 * token_mqar. [out] marks (T + 1, NUL-terminated). Returns 0 (marks = "")
 * if t is NULL. */
int panel_token_marks(const task *t, int T, char *marks);
/* A fingerprint of the model's last forward pass (its address, B, T and up
 * to 256 evenly spaced outputs): probe panels skip re-reading the model
 * while it is unchanged, e.g. when training is paused. 0 if no forward. */
uint64_t panel_forward_id(const model *m);

#endif
