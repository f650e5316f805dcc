/*
 * screen.h - the TUI: the screen manager (curses, colours, layout), the
 * output scrollback, the Readline prompt, the help overlay and the event
 * loop that trains in slices between key polls.
 *
 *   +- loss ---------------++- ICL error -----------+
 *   |                      ||                       |   the panels: a 2x2 grid
 *   +----------------------++-----------------------+   (loss, ICL error,
 *   +- attention ----------++- SSM -----------------+    attention, SSM; the
 *   |                      ||                       |    model panel takes a
 *   +----------------------++-----------------------+    slot when it is focused
 *    output scrollback                                   or a slot is empty)
 *   > tr:run{ max_steps = 2000 }                         the prompt (Readline)
 *   step 812/2000  loss 0.231 ...  [F1 help] ...         the status line
 *
 * One `tui` value holds everything; its parts live in five files:
 *   screen.c      the terminal: curses set-up and teardown (restored on
 *                 every exit path: normal return, atexit, fatal signals),
 *                 colour pairs from the theme's roles, the layout computed
 *                 from the size, composing every part into one canvas and
 *                 copying that canvas to curses
 *   tui_input.c   keys: GNU Readline in callback mode fed from curses, the
 *                 focus (prompt or panels) and what each key does there
 *   tui_output.c  the scrollback fed by the REPL's sink, Lua's io.write and
 *                 io.stdout, and whatever reaches file descriptors 1 and 2
 *   tui_help.c    the F1 / ? overlay listing every key
 *   tui_run.c     the event loop, training slices (F5), single steps (F10),
 *                 the tick hook that keeps the panels live during a blocking
 *                 tr:run{...}, and tui_main
 * Panels never see curses (panel.h); only screen.c and tui_input.c include
 * it. Layout and composing need no terminal, so benchmarks and tests can
 * draw a whole screen into a canvas.
 *
 * Process-wide state, because C and terminals force it: the terminal
 * restore record that signal handlers read (screen.c), and Readline's own
 * globals with the one `tui` they call back into (tui_input.c). Hence one
 * TUI per process.
 *
 * Not here: the panels (panel.h), the REPL core (lua/repl.h), drawing
 * primitives (canvas.h, plot.h).
 */
#ifndef ICL_TUI_SCREEN_H
#define ICL_TUI_SCREEN_H

#include <stddef.h>

#include <lua.h>

#include "lua/lbind.h"
#include "lua/repl.h"
#include "tui/canvas.h"
#include "tui/panel.h"
#include "tui/theme.h"

/* The smallest terminal the layout supports. */
#define TUI_MIN_COLS 80
#define TUI_MIN_LINES 24

/* ---- keys ------------------------------------------------------------------------------------
 * Keys inside the TUI are ints: a character is its code point; a curses
 * key code k (KEY_F(1), KEY_PPAGE, ...) is TUI_KEY_CURSES + k; Alt+c is
 * TUI_KEY_META + c. */
#define TUI_KEY_CURSES 0x200000
#define TUI_KEY_META 0x400000

/* ---- layout (no curses) ------------------------------------------------------------------------ */

typedef struct {
    int x, y, w, h;
} tui_rect;

/* The panels, in Tab order; the first four fill the grid's slots. */
enum { TUI_PANEL_LOSS = 0, TUI_PANEL_ICL, TUI_PANEL_ATTN, TUI_PANEL_SSM, TUI_PANEL_MODEL, TUI_NPANELS };
#define TUI_SLOTS 4

typedef struct {
    int cols, lines;
    int too_small;           /* below TUI_MIN_COLS x TUI_MIN_LINES: nothing but a message */
    tui_rect slot[TUI_SLOTS]; /* the 2x2 grid: top-left, top-right, bottom-left, bottom-right */
    tui_rect zoom;           /* a zoomed panel: the grid and the output together */
    tui_rect output;         /* the scrollback */
    tui_rect prompt;         /* one row */
    tui_rect status;         /* one row */
} tui_layout;

/* The layout of a cols x lines screen: the status line at the bottom, the
 * prompt above it, the output above that (a quarter of the rows, 4 to 12),
 * and the panels in the rest, split in two columns and two rows. */
void tui_layout_compute(tui_layout *l, int cols, int lines);

/* ---- the output scrollback (tui_output.c) ---------------------------------------------------- */

typedef struct {
    char *text;          /* UTF-8, no control characters (tabs expanded) */
    unsigned char role;  /* tui_role of the whole line */
} tui_line;

typedef struct {
    tui_line *lines;     /* a ring of `cap` lines; the newest is lines[(head + n - 1) % cap] */
    int cap, n, head;
    char *part;          /* the line being built (text after the last "\n") */
    size_t part_len, part_cap;
    int part_role;
    int esc;             /* inside an escape sequence: 0 no, 1 after ESC, 2 CSI, 3 OSC */
    int scroll;          /* rows scrolled back from the newest (0: follow the output) */
    int last_rows;       /* rows of the last draw (PgUp / PgDn move by half of it) */
    int src_out, src_err; /* pipes drained before each sink write, so a child's or C's output
                            keeps its place among the results (-1: none) */
    int dirty;           /* changed since the last draw */
} tui_output;

icl_status tui_output_init(tui_output *o, int max_lines);
void tui_output_free(tui_output *o);
/* Append text in `role` (TUI_ROLE_TEXT, TUI_ROLE_ERROR, ...): split at
 * "\n", tabs to spaces, "\r" restarts the line, escape sequences and other
 * control characters dropped. */
void tui_output_write(tui_output *o, int role, const char *text, size_t len);
/* printf into tui_output_write. */
void tui_output_printf(tui_output *o, int role, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Scroll by `rows` (> 0 back in time); clamped when drawn. */
void tui_output_scroll(tui_output *o, int rows);
/* The newest lines that fit, wrapped at the canvas width, bottom-aligned;
 * a "scrolled back" mark when not following. */
void tui_output_draw(tui_output *o, canvas *c);
/* The repl_sink_fn of the TUI's REPL: ctx is the tui_output. Drains
 * src_out and src_err first. */
void tui_output_sink(void *ctx, repl_stream s, const char *text, size_t len);
/* In L: io.write and io.stdout:write (and io.output() while it is the
 * terminal) write into o instead of the terminal. o = NULL: they write to
 * the real stdout again (before o is freed). */
void tui_output_install_lua(lua_State *L, tui_output *o);
/* Read what reached the pipes on fds 1 and 2 (-1: none) into o. */
void tui_output_drain(tui_output *o, int out_fd, int err_fd);

/* ---- the screen (screen.c) -------------------------------------------------------------------- */

typedef struct {
    int active;              /* curses is up */
    void *term;              /* the curses SCREEN */
    void *term_out;          /* its FILE: a private copy of the terminal */
    int colors;              /* what heatmaps may use: 0, 8, 16 or 256 (canvas.colors) */
    int term_colors;         /* what the terminal has: 0 if no colours */
    int ascii;               /* the locale is not UTF-8 */
    const tui_theme *theme;
    tui_style style[TUI_ROLE_COUNT]; /* theme_style of every role at term_colors */
    int *pairs;              /* (257 x 257) colour pair of (fg + 1, bg + 1), 0 = not allocated yet */
    canvas cv;               /* the whole screen, composed each frame */
    tui_layout lay;
    int out_fd, err_fd;      /* read ends of the pipes now on fds 1 and 2; -1 if none */
    double repaint_at;       /* tui_now() when the terminal has settled after a resize: paint it all
                                once more then (0: not due) */
} screen;

/* Take the terminal: LC_CTYPE from the environment, fds 1 and 2 onto pipes
 * (curses writes to a private copy of the terminal), curses in cbreak mode
 * with keypad keys, colours from theme `theme_name` (NULL: $ICLPLAY_THEME,
 * mono if $NO_COLOR is set, else "default"), the restore hooks installed.
 * Fails (ICL_ERR_IO, the terminal left as it was) if curses cannot start. */
icl_status screen_open(screen *s, const char *theme_name);
/* Give the terminal back as it was; idempotent. */
void screen_close(screen *s);
/* Switch theme (colours of every role); ICL_ERR_ARG if unknown. */
icl_status screen_set_theme(screen *s, const char *name);
/* Re-read the size after KEY_RESIZE and lay out again; the next flush
 * paints the whole screen, and so does the first flush after the resizes
 * have settled (screen_repaint_due). */
void screen_resize(screen *s);
/* 1 when that settled repaint is due: the caller should draw a frame. */
int screen_repaint_due(const screen *s);
/* Copy s->cv to the terminal and show the cursor at (cx, cy), or hide it if cx < 0. */
void screen_flush(screen *s, int cx, int cy);

/* ---- the TUI -------------------------------------------------------------------------------- */

typedef enum { TUI_FOCUS_PROMPT = 0, TUI_FOCUS_PANELS } tui_focus;

#define TUI_KEYQ 256     /* keys typed while a command runs, replayed after it */
#define TUI_BYTEQ 64     /* bytes waiting for Readline */

typedef struct tui {
    lua_State *L;
    repl *r;
    screen scr;
    tui_output out;
    panel *p[TUI_NPANELS];
    panel *status;
    int slot_panel[TUI_SLOTS]; /* which panel each grid slot shows this frame */

    /* focus and view */
    tui_focus focus;
    int focused;             /* the panel with the keys (TUI_PANEL_*) */
    int zoom;                /* zoomed panel, or -1 */
    int help;                /* the overlay is open */
    int help_scroll;
    int quit_ask;            /* waiting for y/n */
    int quit;                /* leave the loop */
    char message[160];       /* a transient status message */
    double message_until;

    /* input */
    int keyq[TUI_KEYQ];      /* typeahead while busy */
    int keyq_n;
    unsigned char bytes[TUI_BYTEQ]; /* bytes for Readline's getc */
    int bytes_head, bytes_n;
    char *line;              /* a line Readline accepted, waiting to run */
    char running[160];       /* the command running now, for the prompt row */
    int line_ready;
    int use_hist;
    char hist_path[4096];

    /* training */
    int busy;                /* a command (or a slice) is running */
    int in_slice;            /* inside an F5 slice or an F10 step: the tick hook stays quiet */
    int training;            /* F5: continuous training is on */
    int run_active;          /* the running command is training (the tick hook was called) */
    int run_paused;          /* a blocking run is held by F5 inside the tick hook */
    lua_State *Lrun;         /* the thread that trains, while inside the tick hook */
    long run_target;         /* the step a blocking run stops at (0 if none) */
    double step_sec;         /* moving average of the time of one step */
    double sps;              /* steps per second (measured), 0 if unknown */
    double rate_t0;          /* start of the rate window */
    long rate_step0;
    const void *rate_tr;     /* the trainer the window measures */
    lbind_tick tick;

    /* frames */
    int input_open;          /* Readline is installed (not in benchmarks) */
    int need_draw;
    double last_frame;
    int in_frame;            /* inside tui_frame: a tick must not start another frame */
    int mid_step;            /* inside a step (the core tick callback): actions wait, see tui_input.c */
    int frozen;              /* draw only: a step is half done, so the panels keep their last data */
    int drew_frozen;         /* the last frame was frozen: draw again as soon as the step ends */
    long frames;             /* frames drawn (icl.tui.stats) */
    double max_gap;          /* the longest time between two frames while training (icl.tui.stats) */
    int last_running;        /* the previous frame was drawn while training */
    long gen;                /* bumped whenever the panels' data may have changed */
    long panel_gen[TUI_NPANELS]; /* the gen each panel last read */
    const void *seen_tr;     /* what gen was last bumped for */
    long seen_step;
    int seen_evals;
    long seen_eval_step;
} tui;

/* tui_input.c */
/* Readline in callback mode on top of curses; history from
 * ~/.iclplay_history, completion from repl_complete. */
void tui_input_open(tui *t);
void tui_input_close(tui *t);
/* Read the keys that are waiting (waiting up to timeout_ms for the first)
 * and act on each; returns the number read. */
int tui_input_poll(tui *t, int timeout_ms);
/* Act on one key (idle: nothing running). */
void tui_input_key(tui *t, int key);
/* Act on one key while a command runs (from the tick hook): Ctrl-C, F5,
 * help, scrolling, resizing and panel keys act; typing is kept for later. */
void tui_input_key_busy(tui *t, int key);
/* Read keys while busy (non-blocking) and act with tui_input_key_busy. */
int tui_input_poll_busy(tui *t, int timeout_ms);
/* Read the keys that are waiting, inside a step (tui->mid_step): editing
 * and view keys act now; keys that would run Lua or a step (Enter, Tab,
 * F10, n, Ctrl-D) wait in the typeahead until the step is over. */
int tui_input_poll_mid_step(tui *t);
/* The prompt row: the prompt and line with Readline's cursor, scrolled to
 * keep the cursor visible; or the quit question, or the panel keys while
 * the panels have the focus. [out] *cursor_x (-1: no cursor). */
void tui_input_draw_prompt(tui *t, canvas *c, int *cursor_x);
/* Who has the keys and the hints for the status line. */
const char *tui_input_focus_name(const tui *t, char *buf, size_t n);
const char *tui_input_hints(const tui *t);
/* Run the line Readline accepted (if any): echo, history, repl_feed. */
void tui_input_run_line(tui *t);

/* tui_help.c */
/* The overlay over the whole canvas: every key, by where it works. */
void tui_help_draw(tui *t, canvas *c);
/* A key while the overlay is open; returns 1 if it closed. */
int tui_help_key(tui *t, int key);

/* tui_run.c */
/* The TUI on L (icl loaded, init.lua run): loads lua/tui_start.lua, then
 * runs until Ctrl-D. Returns the exit status, or -1 if the terminal could
 * not be taken (the caller falls back to the plain REPL). */
int tui_main(lua_State *L);
/* Ask for a message in the status line for `sec` seconds. */
void tui_message(tui *t, double sec, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* F5: start or pause continuous training; F10 / n: one step. */
void tui_toggle_training(tui *t);
void tui_step_once(tui *t);
/* Ctrl-D: quit, asking first if a model has unsaved training. */
void tui_request_quit(tui *t);
/* Fill src for the panels from the trainer they follow. */
void tui_fill_source(tui *t, tui_source *src, char *focus_buf, size_t focus_n);
/* Update the visible panels' data from src (those that have not read it
 * since it last changed, all of them if `force_update`), then compose the
 * whole screen into t->scr.cv (sized to t->scr.lay); [out] the cursor
 * position (*cx < 0: hidden). No curses and no Lua: benchmarks call it. */
void tui_compose(tui *t, const tui_source *src, int force_update, int *cx, int *cy);
/* Compose and copy to the terminal. */
void tui_frame(tui *t, int force_update);
/* Seconds on a monotonic clock. */
double tui_now(void);

/* screen.c: which panel each slot shows for the model in src (the model
 * panel replaces attention or SSM when the model has none of them, and the
 * bottom-right slot while it has the focus). */
void tui_assign_slots(tui *t, const tui_source *src);

#endif
