/*
 * screen.c - the terminal side of the TUI: curses set-up and teardown, the
 * terminal restored on every exit path, colour pairs from the theme's
 * roles, the layout, composing panels, output, prompt and status into one
 * canvas, and copying that canvas to curses (htop's CRT.c and
 * ScreenManager.c, STYLE.md rules 18-19).
 *
 * The terminal is restored on every way out: screen_close on a normal
 * return, an atexit hook if something exits early, and handlers for the
 * fatal signals, which do only async-signal-safe things (tcsetattr, write
 * of the terminfo strings captured at start, dup2 of the saved fds) and then
 * re-raise the signal with its default action.
 *
 * What the program writes to fds 1 and 2 (a C printf, io.stderr, a Lua
 * io.output() that is still the terminal) would scribble over the screen,
 * so both go to non-blocking pipes that the loop drains into the output
 * panel; curses writes to a private duplicate of the terminal. A full pipe
 * drops text instead of blocking a long run.
 *
 * Not here: keys (tui_input.c), the loop (tui_run.c), panels (panel_*.c).
 */
#include "tui/screen.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <wchar.h>

#include <ncursesw/curses.h>

#define NPAIRKEY (257 * 257) /* (fg + 1, bg + 1) for fg, bg in -1..255 */

/* ---- the restore record (process-wide: signal handlers read it) ------------------------------ */

#define N_FATAL 6

static struct {
    volatile sig_atomic_t armed;  /* the terminal is ours and must be given back */
    int tty_fd;                   /* fd 0, whose modes we change */
    struct termios tio;           /* its modes before curses */
    int have_tio;
    int term_fd;                  /* curses' private copy of the terminal */
    int saved_out, saved_err;     /* the original fds 1 and 2 (-1 if not moved) */
    char reset[256];              /* rmkx, sgr0, cnorm, rmcup: leave keypad, colours, hidden cursor, alt screen */
    size_t reset_len;
    int handlers;                 /* the signal handlers are installed */
    struct sigaction old[N_FATAL];
} restore;

/* Not SIGTERM and SIGHUP: those end the program cleanly (core/interrupt.h:
 * the loop leaves, screen_close restores, main writes a recovery
 * checkpoint), which a handler that re-raises would prevent. */
static const int fatal_signals[N_FATAL] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGQUIT};

/* Async-signal-safe: only write, tcsetattr and dup2. */
static void restore_raw(void) {
    if (!restore.armed) return;
    restore.armed = 0;
    if (restore.term_fd >= 0 && restore.reset_len) {
        ssize_t w = write(restore.term_fd, restore.reset, restore.reset_len);
        (void)w;
    }
    if (restore.have_tio) tcsetattr(restore.tty_fd, TCSAFLUSH, &restore.tio);
    if (restore.saved_out >= 0) dup2(restore.saved_out, STDOUT_FILENO);
    if (restore.saved_err >= 0) dup2(restore.saved_err, STDERR_FILENO);
}

static void on_fatal_signal(int sig) {
    restore_raw();
    /* SA_RESETHAND put the default action back: the signal is delivered
     * again when this handler returns (it is blocked until then). */
    raise(sig);
}

static void at_exit_restore(void) {
    if (!restore.armed) return;
    if (!isendwin()) endwin();
    restore_raw();
}

/* Append a terminfo capability to the reset string. */
static void add_reset(const char *cap) {
    char *s = tigetstr((char *)cap);
    if (!s || s == (char *)-1) return;
    size_t n = strlen(s);
    if (restore.reset_len + n >= sizeof restore.reset) return;
    memcpy(restore.reset + restore.reset_len, s, n);
    restore.reset_len += n;
}

static void install_handlers(void) {
    static int at_exit_done;
    if (!at_exit_done && atexit(at_exit_restore) == 0) at_exit_done = 1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESETHAND;
    for (int i = 0; i < N_FATAL; i++) sigaction(fatal_signals[i], &sa, &restore.old[i]);
    restore.handlers = 1;
}

static void remove_handlers(void) {
    if (!restore.handlers) return;
    for (int i = 0; i < N_FATAL; i++) sigaction(fatal_signals[i], &restore.old[i], NULL);
    restore.handlers = 0;
}

/* ---- the fds 1 and 2 ------------------------------------------------------------------------- */

/* Move fd (1 or 2) onto a pipe; returns the read end (or -1, fd left alone)
 * and the saved original in *saved. */
static int capture_fd(int fd, int *saved) {
    int p[2];
    *saved = -1;
    if (pipe(p) != 0) return -1;
    int s = dup(fd);
    if (s < 0 || dup2(p[1], fd) < 0) {
        if (s >= 0) close(s);
        close(p[0]);
        close(p[1]);
        return -1;
    }
    close(p[1]);
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); /* a full pipe drops text, never blocks */
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(s, F_SETFD, FD_CLOEXEC);
    *saved = s;
    return p[0];
}

/* Put fd back; what is left in the pipe goes to the real fd. */
static void release_fd(int fd, int *saved, int *rd) {
    if (*saved < 0) return;
    dup2(*saved, fd);
    close(*saved);
    *saved = -1;
    if (*rd >= 0) {
        char buf[4096];
        ssize_t n;
        while ((n = read(*rd, buf, sizeof buf)) > 0) {
            ssize_t w = write(fd, buf, (size_t)n);
            (void)w;
        }
        close(*rd);
        *rd = -1;
    }
}

/* ---- colours --------------------------------------------------------------------------------- */

static void load_styles(screen *s) {
    int c = theme_has_colors(s->theme) ? s->term_colors : 0;
    for (int r = 0; r < TUI_ROLE_COUNT; r++) s->style[r] = theme_style(s->theme, (tui_role)r, c);
    s->colors = c >= 256 ? 256 : c >= 16 ? 16 : c >= 8 ? 8 : 0;
    s->cv.colors = s->colors;
    /* the pairs allocated so far stay valid: alloc_pair finds (fg, bg) again */
}

/* The colour pair of (fg, bg), allocated on first use (ncurses' alloc_pair
 * recycles the least recently used pair when the terminal runs out). */
static int pair_of(screen *s, int fg, int bg) {
    if (!s->term_colors) return 0;
    if (fg >= COLORS) fg = -1;
    if (bg >= COLORS) bg = -1;
    if (fg < 0 && bg < 0) return 0;
    int key = (fg + 1) * 257 + (bg + 1);
    if (s->pairs[key] == 0) {
        int p = alloc_pair(fg, bg);
        s->pairs[key] = p > 0 ? p + 1 : 1;
    }
    return s->pairs[key] - 1;
}

icl_status screen_set_theme(screen *s, const char *name) {
    const tui_theme *th = theme_find(name);
    if (!th) return ICL_ERR_ARG;
    s->theme = th;
    load_styles(s);
    if (s->active) clearok(curscr, TRUE);
    return ICL_OK;
}

/* ---- open and close -------------------------------------------------------------------------- */

icl_status screen_open(screen *s, const char *theme_name) {
    memset(s, 0, sizeof *s);
    s->out_fd = s->err_fd = -1;
    if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO))
        return icl_fail(ICL_ERR_IO, "screen: stdin and stdout must be a terminal");
    setlocale(LC_CTYPE, ""); /* only the character type: numbers keep the C locale */
    s->ascii = !canvas_locale_is_utf8();
    if (!theme_name) {
        const char *nc = getenv("NO_COLOR"), *env = getenv("ICLPLAY_THEME");
        theme_name = nc && *nc ? "mono" : env && *env ? env : "default";
    }
    s->theme = theme_find(theme_name);
    if (!s->theme) s->theme = theme_find("default");
    s->pairs = calloc(NPAIRKEY, sizeof(int));
    if (!s->pairs) return icl_fail(ICL_ERR_NOMEM, "screen: out of memory");

    restore.tty_fd = STDIN_FILENO;
    restore.saved_out = restore.saved_err = -1;
    restore.have_tio = tcgetattr(STDIN_FILENO, &restore.tio) == 0;
    fflush(stdout);
    int tfd = dup(STDOUT_FILENO);
    FILE *tout = tfd >= 0 ? fdopen(tfd, "w") : NULL;
    if (tfd >= 0) fcntl(tfd, F_SETFD, FD_CLOEXEC);
    SCREEN *scr = tout ? newterm(NULL, tout, stdin) : NULL;
    if (!scr) {
        if (tout) fclose(tout);
        else if (tfd >= 0) close(tfd);
        free(s->pairs);
        s->pairs = NULL;
        return icl_fail(ICL_ERR_IO, "screen: cannot start curses on this terminal (TERM=%s)",
                        getenv("TERM") ? getenv("TERM") : "unset");
    }
    s->term = scr;
    s->term_out = tout;
    set_term(scr);
    restore.term_fd = tfd;
    restore.reset_len = 0;
    add_reset("rmkx");
    add_reset("sgr0");
    add_reset("cnorm");
    add_reset("rmcup");
    restore.armed = 1;
    install_handlers();

    cbreak(); /* Ctrl-C stays a signal: it stops a Lua loop too (repl_docall) */
    noecho();
    nonl();
    intrflush(stdscr, FALSE);
    keypad(stdscr, TRUE);
    meta(stdscr, TRUE);
    set_escdelay(25); /* a lone Esc is a key of its own here */
    /* No flow control (Ctrl-S / Ctrl-Q reach Readline) and no literal-next
     * (Ctrl-V); ncurses keeps these modes as the program's from now on. */
    struct termios tio;
    if (tcgetattr(STDIN_FILENO, &tio) == 0) {
        tio.c_iflag &= ~(tcflag_t)IXON;
        tio.c_lflag &= ~(tcflag_t)IEXTEN;
        tcsetattr(STDIN_FILENO, TCSANOW, &tio);
        def_prog_mode();
    }
    if (has_colors() && start_color() == OK) {
        use_default_colors();
        s->term_colors = COLORS >= 256 ? 256 : COLORS >= 16 ? 16 : 8;
    }
    s->active = 1;
    load_styles(s);

    s->out_fd = capture_fd(STDOUT_FILENO, &restore.saved_out);
    s->err_fd = capture_fd(STDERR_FILENO, &restore.saved_err);
    setvbuf(stdout, NULL, _IOLBF, 0);

    if (canvas_init(&s->cv, 1, 1) != ICL_OK) {
        screen_close(s);
        return icl_fail(ICL_ERR_NOMEM, "screen: out of memory");
    }
    s->cv.ascii = s->ascii;
    s->cv.colors = s->colors;
    screen_resize(s);
    return ICL_OK;
}

void screen_close(screen *s) {
    if (s->active) {
        fflush(stdout);
        curs_set(1);
        endwin();
        if (restore.term_fd >= 0) {
            /* endwin leaves the alternate screen already; restore.reset
             * would do it twice */
            restore.term_fd = -1;
        }
        restore.armed = 0;
        if (restore.have_tio) tcsetattr(restore.tty_fd, TCSADRAIN, &restore.tio);
        fflush(stdout);
        release_fd(STDOUT_FILENO, &restore.saved_out, &s->out_fd);
        release_fd(STDERR_FILENO, &restore.saved_err, &s->err_fd);
        remove_handlers();
        SCREEN *scr = s->term;
        delscreen(scr);
        fclose(s->term_out);
        s->term = s->term_out = NULL;
        s->active = 0;
    }
    canvas_free(&s->cv);
    free(s->pairs);
    s->pairs = NULL;
}

/* ---- layout ------------------------------------------------------------------------------------ */

void tui_layout_compute(tui_layout *l, int cols, int lines) {
    memset(l, 0, sizeof *l);
    l->cols = cols;
    l->lines = lines;
    l->too_small = cols < TUI_MIN_COLS || lines < TUI_MIN_LINES;
    if (l->too_small) return;
    int out_h = (lines - 2) / 4;
    if (out_h < 4) out_h = 4;
    if (out_h > 14) out_h = 14;
    const int grid_h = lines - 2 - out_h, top_h = grid_h / 2, left_w = cols / 2;
    l->slot[0] = (tui_rect){0, 0, left_w, top_h};
    l->slot[1] = (tui_rect){left_w, 0, cols - left_w, top_h};
    l->slot[2] = (tui_rect){0, top_h, left_w, grid_h - top_h};
    l->slot[3] = (tui_rect){left_w, top_h, cols - left_w, grid_h - top_h};
    l->zoom = (tui_rect){0, 0, cols, grid_h + out_h};
    l->output = (tui_rect){0, grid_h, cols, out_h};
    l->prompt = (tui_rect){0, lines - 2, cols, 1};
    l->status = (tui_rect){0, lines - 1, cols, 1};
}

/* Seconds after the last resize at which the whole screen is painted once
 * more. A resize repaints everything, but while a window manager or tmux
 * is still resizing, the terminal can apply that paint at a size it has
 * already left, or crop it afterwards, and curses, which only sends what
 * changed, would never paint those cells again (seen once in the resize
 * storm of tests/tui/test_signals.sh: half the status line stayed blank). */
#define SCREEN_SETTLE_SEC 0.4

void screen_resize(screen *s) {
    int cols = 80, lines = 24;
    if (s->active) {
        getmaxyx(stdscr, lines, cols);
        clearok(curscr, TRUE);
        s->repaint_at = tui_now() + SCREEN_SETTLE_SEC;
    } else if (s->cv.w > 0) {
        cols = s->cv.w;
        lines = s->cv.h;
    }
    if (cols < 1) cols = 1;
    if (lines < 1) lines = 1;
    if (cols != s->cv.w || lines != s->cv.h) canvas_resize(&s->cv, cols, lines);
    tui_layout_compute(&s->lay, cols, lines);
}

/* ---- copying the canvas to curses ----------------------------------------------------------------- */

int screen_repaint_due(const screen *s) { return s->active && s->repaint_at > 0 && tui_now() >= s->repaint_at; }

void screen_flush(screen *s, int cx, int cy) {
    if (!s->active) return;
    if (screen_repaint_due(s)) {
        clearok(curscr, TRUE);
        s->repaint_at = 0;
    }
    const canvas *c = &s->cv;
    int lines, cols;
    getmaxyx(stdscr, lines, cols);
    for (int y = 0; y < c->h && y < lines; y++) {
        for (int x = 0; x < c->w && x < cols; x++) {
            const tui_cell *cell = canvas_cell_const(c, x, y);
            unsigned cp = ' ';
            if (cell->glyph[0]) tui_utf8_next(cell->glyph, &cp);
            if (cp < 0x20 || cp == 0x7f) cp = ' ';
            const tui_style *st = &s->style[cell->role < TUI_ROLE_COUNT ? cell->role : 0];
            int fg = cell->fg >= 0 ? cell->fg : st->fg;
            int bg = cell->bg >= 0                       ? cell->bg
                     : cell->bg_role != TUI_ROLE_DEFAULT ? s->style[cell->bg_role < TUI_ROLE_COUNT ? cell->bg_role : 0].bg
                                                         : st->bg;
            unsigned a = cell->attr | st->attr;
            attr_t attrs = A_NORMAL;
            if (a & TUI_ATTR_BOLD) attrs |= A_BOLD;
            if (a & TUI_ATTR_DIM) attrs |= A_DIM;
            if (a & TUI_ATTR_REVERSE) attrs |= A_REVERSE;
            if (a & TUI_ATTR_UNDERLINE) attrs |= A_UNDERLINE;
            int pair = s->colors ? pair_of(s, fg, bg) : 0;
            wchar_t wc[2] = {(wchar_t)cp, 0};
            cchar_t cc;
            setcchar(&cc, wc, attrs, (short)(pair <= 32767 ? pair : 0), &pair);
            mvwadd_wch(stdscr, y, x, &cc); /* the bottom-right cell returns ERR and is still drawn */
        }
    }
    if (cx >= 0 && cy >= 0 && cx < cols && cy < lines) {
        wmove(stdscr, cy, cx);
        curs_set(1);
    } else {
        curs_set(0);
    }
    wnoutrefresh(stdscr);
    doupdate();
}

/* ---- composing a frame --------------------------------------------------------------------------- */

static int count_blocks(const model *m, block_kind k) {
    int n = 0;
    for (int i = 0; m && i < m->spec.n_blocks; i++) n += m->spec.blocks[i] == k;
    return n;
}

void tui_assign_slots(tui *t, const tui_source *src) {
    int *s = t->slot_panel;
    for (int i = 0; i < TUI_SLOTS; i++) s[i] = i; /* loss, icl, attention, ssm */
    if (src->m && count_blocks(src->m, BLOCK_ATTN) == 0) s[2] = TUI_PANEL_MODEL;
    else if (src->m && count_blocks(src->m, BLOCK_MAMBA) == 0) s[3] = TUI_PANEL_MODEL;
    if (t->focus != TUI_FOCUS_PANELS) return;
    /* the focused panel is always on screen: it takes the slot it shares */
    int f = t->focused;
    if (f == TUI_PANEL_MODEL && s[2] != TUI_PANEL_MODEL && s[3] != TUI_PANEL_MODEL) s[3] = TUI_PANEL_MODEL;
    if (f == TUI_PANEL_ATTN && s[2] != f) s[2] = f;
    if (f == TUI_PANEL_SSM && s[3] != f) s[3] = f;
}

static canvas view_of(canvas *c, tui_rect r) { return canvas_view(c, r.x, r.y, r.w, r.h); }

static void draw_too_small(canvas *c) {
    char msg[64];
    snprintf(msg, sizeof msg, "terminal too small (need %dx%d)", TUI_MIN_COLS, TUI_MIN_LINES);
    int y = c->h / 2 - (c->h > 2);
    int w = tui_text_width(msg);
    canvas_text_max(c, w < c->w ? (c->w - w) / 2 : 0, y < 0 ? 0 : y, c->w, msg, TUI_ROLE_WARN, 0);
    if (c->h > 2) {
        snprintf(msg, sizeof msg, "now %dx%d", c->w, c->h);
        w = tui_text_width(msg);
        canvas_text_max(c, w < c->w ? (c->w - w) / 2 : 0, y + 1, c->w, msg, TUI_ROLE_DIM, 0);
    }
}

void tui_compose(tui *t, const tui_source *src, int force_update, int *cx, int *cy) {
    screen *s = &t->scr;
    canvas *cv = &s->cv;
    const tui_layout *l = &s->lay;
    *cx = *cy = -1;
    canvas_clear(cv, TUI_ROLE_DEFAULT);
    if (l->too_small) {
        draw_too_small(cv);
        return;
    }
    /* data: a new step, evaluation or trainer makes every panel read again;
     * not while frozen (mid-step: the model's buffers are half written) */
    const void *tr = src->tr;
    long step = src->tr ? src->tr->step : -1, eval_step = src->eval ? src->eval_step : -1;
    if (!t->frozen && (force_update || tr != t->seen_tr || step != t->seen_step || src->n_eval_hist != t->seen_evals ||
        eval_step != t->seen_eval_step)) {
        t->gen++;
        t->seen_tr = tr;
        t->seen_step = step;
        t->seen_evals = src->n_eval_hist;
        t->seen_eval_step = eval_step;
    }
    tui_assign_slots(t, src);
    int visible[TUI_NPANELS] = {0};
    if (t->zoom >= 0 && t->zoom < TUI_NPANELS) visible[t->zoom] = 1;
    else
        for (int i = 0; i < TUI_SLOTS; i++) visible[t->slot_panel[i]] = 1;
    for (int i = 0; i < TUI_NPANELS; i++)
        if (visible[i] && t->panel_gen[i] != t->gen && !t->frozen) {
            panel_update(t->p[i], src);
            t->panel_gen[i] = t->gen;
        }
    panel_update(t->status, src);

    /* drawing: from the panels' own copies only */
    const int pf = t->focus == TUI_FOCUS_PANELS;
    if (t->zoom >= 0 && t->zoom < TUI_NPANELS) {
        canvas v = view_of(cv, l->zoom);
        panel_draw(t->p[t->zoom], &v, pf && t->focused == t->zoom);
    } else {
        for (int i = 0; i < TUI_SLOTS; i++) {
            canvas v = view_of(cv, l->slot[i]);
            int k = t->slot_panel[i];
            panel_draw(t->p[k], &v, pf && t->focused == k);
        }
        canvas v = view_of(cv, l->output);
        tui_output_draw(&t->out, &v);
    }
    canvas pv = view_of(cv, l->prompt);
    int px = -1;
    tui_input_draw_prompt(t, &pv, &px);
    if (px >= 0) {
        *cx = l->prompt.x + px;
        *cy = l->prompt.y;
    }
    canvas sv = view_of(cv, l->status);
    panel_draw(t->status, &sv, 0);
    if (t->help) {
        tui_help_draw(t, cv);
        *cx = *cy = -1;
    }
}
