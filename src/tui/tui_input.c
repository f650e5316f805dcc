/*
 * tui_input.c - keys: GNU Readline in callback mode inside the curses loop,
 * and what every key does with the prompt or the panels in focus.
 *
 * Curses reads the keys (keypad on, so F1, F5, PgUp arrive decoded); each
 * key is dispatched here. Keys for the prompt are turned back into the
 * bytes Readline expects (arrows as ANSI sequences, characters as UTF-8 of
 * the locale) and queued; Readline gets them one at a time through
 * rl_getc_function with rl_callback_read_char. Readline never touches the
 * terminal: no prep/deprep, no signals, no SIGWINCH, output to /dev/null;
 * its redisplay hook only asks for a frame, and the prompt row is drawn
 * from rl_display_prompt, rl_line_buffer and rl_point (ulfalizer's
 * readline-and-ncurses shows the idea). A completed line is run by the loop,
 * never inside Readline's callback.
 *
 * Focus: typing goes to the prompt. F1, F5, F10, PgUp/PgDn and Ctrl-C work
 * everywhere; Esc gives the keys to the panels (Tab cycles, arrows and
 * [ ] { } go to the focused panel, z zooms, space runs or pauses, n steps,
 * ? helps) and Esc or i gives them back. While a command runs, the tick
 * hook reads keys through tui_input_key_busy: Ctrl-C, F5 (pause), help,
 * scrolling and the panels act at once, typing waits in a queue.
 *
 * Readline's state is global, so is the tui it calls back into (g_tui).
 *
 * Not here: running training (tui_run.c), drawing panels (screen.c).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <wchar.h>

#include <ncursesw/curses.h>
#include <readline/history.h>
#include <readline/readline.h>

#include "core/interrupt.h"
#include "tui/screen.h"

#define HISTORY_FILE ".iclplay_history"
#define HISTORY_MAX 1000
#define K(c) (TUI_KEY_CURSES + (c))

static tui *g_tui;                      /* the TUI Readline's hooks serve */
static volatile sig_atomic_t g_sigint;  /* Ctrl-C at the prompt (outside commands) */
static struct sigaction g_old_sigint;
static int g_have_old_sigint;
static int g_key_cleft = -1, g_key_cright = -1; /* Ctrl+arrows, if the terminal has them */
static FILE *g_devnull;

static void on_sigint(int sig) {
    (void)sig;
    g_sigint = 1;
}

/* ---- keys from curses ----------------------------------------------------------------------------- */

/* One key, waiting up to timeout_ms (0: do not wait). Alt+c arrives as Esc
 * then c at once; a lone Esc is a key of its own. */
static int read_key(int timeout_ms, int *key) {
    wint_t wc;
    wtimeout(stdscr, timeout_ms);
    int r = wget_wch(stdscr, &wc);
    if (r == ERR) return 0;
    if (r == KEY_CODE_YES) {
        *key = K((int)wc);
        return 1;
    }
    if (wc == 27) {
        wint_t w2;
        wtimeout(stdscr, 0);
        int r2 = wget_wch(stdscr, &w2);
        if (r2 == OK && w2 != 27 && w2 >= 32) {
            *key = TUI_KEY_META + (int)w2;
            return 1;
        }
        if (r2 == OK) unget_wch(w2);
        else if (r2 == KEY_CODE_YES) ungetch((int)w2);
    }
    *key = (int)wc;
    return 1;
}

/* The bytes Readline expects for a key; 0 if it has none. */
static int key_bytes(int key, char *out) {
    if (key >= TUI_KEY_META) {
        out[0] = 27;
        return 1 + key_bytes(key - TUI_KEY_META, out + 1);
    }
    if (key < TUI_KEY_CURSES) {
        if (key < 0x80) {
            out[0] = (char)key;
            return 1;
        }
        mbstate_t ps;
        memset(&ps, 0, sizeof ps);
        size_t n = wcrtomb(out, (wchar_t)key, &ps);
        return n == (size_t)-1 ? 0 : (int)n;
    }
    const char *seq = NULL;
    int k = key - TUI_KEY_CURSES;
    switch (k) {
    case KEY_UP: seq = "\033[A"; break;
    case KEY_DOWN: seq = "\033[B"; break;
    case KEY_RIGHT: seq = "\033[C"; break;
    case KEY_LEFT: seq = "\033[D"; break;
    case KEY_HOME: seq = "\033[H"; break;
    case KEY_END: seq = "\033[F"; break;
    case KEY_DC: seq = "\033[3~"; break;
    case KEY_BACKSPACE: seq = "\177"; break;
    case KEY_ENTER: seq = "\r"; break;
    default:
        if (k == g_key_cleft) seq = "\033b"; /* backward-word */
        else if (k == g_key_cright) seq = "\033f";
    }
    if (!seq) return 0;
    size_t n = strlen(seq);
    memcpy(out, seq, n);
    return (int)n;
}

/* ---- Readline's hooks -------------------------------------------------------------------------------- */

static void queue_bytes(tui *t, const char *b, int n) {
    for (int i = 0; i < n && t->bytes_n < TUI_BYTEQ; i++) {
        t->bytes[(t->bytes_head + t->bytes_n) % TUI_BYTEQ] = (unsigned char)b[i];
        t->bytes_n++;
    }
}

static void queue_key(tui *t, int key) {
    if (t->keyq_n < TUI_KEYQ) t->keyq[t->keyq_n++] = key;
    else tui_message(t, 3, "too much typeahead: keys dropped");
}

static int rl_getc_hook(FILE *f) {
    (void)f;
    tui *t = g_tui;
    if (t->bytes_n == 0) {
        /* Readline wants more than we queued (it should not): wait a
         * moment for a key; else Ctrl-G ends whatever it waits for. */
        int key;
        char b[16];
        if (read_key(1000, &key)) {
            int n = key_bytes(key, b);
            if (n > 0) queue_bytes(t, b, n);
            else queue_key(t, key);
        }
        if (t->bytes_n == 0) return 7;
    }
    int c = t->bytes[t->bytes_head];
    t->bytes_head = (t->bytes_head + 1) % TUI_BYTEQ;
    t->bytes_n--;
    return c;
}

static int rl_avail_hook(void) { return g_tui && g_tui->bytes_n > 0; }

static void rl_redisplay_hook(void) {
    if (g_tui) g_tui->need_draw = 1;
}

/* A line is complete (NULL: end of input). Keep it for the loop. */
static void on_line(char *line) {
    tui *t = g_tui;
    if (!line) {
        tui_request_quit(t);
        return;
    }
    free(t->line);
    t->line = line;
    t->line_ready = 1;
    /* no new prompt until the command has run */
    rl_callback_handler_remove();
}

/* Tab found several matches: list them in the output, as a terminal would. */
static void display_matches(char **matches, int n, int max_len) {
    tui *t = g_tui;
    int width = t->scr.lay.output.w > 20 ? t->scr.lay.output.w : 80;
    int colw = max_len + 2, per_row = width / colw > 0 ? width / colw : 1;
    char row[1024];
    size_t used = 0;
    int shown = n < 200 ? n : 200;
    for (int i = 1; i <= shown; i++) {
        used += (size_t)snprintf(row + used, sizeof row - used, "%-*s", colw, matches[i]);
        if (used >= sizeof row) used = sizeof row - 1;
        if (i % per_row == 0 || i == shown) {
            tui_output_printf(&t->out, TUI_ROLE_DIM, "%s\n", row);
            used = 0;
        }
    }
    if (n > shown) tui_output_printf(&t->out, TUI_ROLE_DIM, "... and %d more\n", n - shown);
    t->out.scroll = 0;
    t->need_draw = 1;
}

static void install_handler(tui *t) { rl_callback_handler_install(repl_prompt(t->r), on_line); }

/* Feed queued bytes to Readline; run each line it completes. */
static void feed(tui *t) {
    while (t->bytes_n > 0 && !t->quit) {
        rl_callback_read_char();
        if (t->line_ready) tui_input_run_line(t);
    }
}

/* ---- open and close ---------------------------------------------------------------------------------- */

/* The curses key code of terminfo capability `cap` (e.g. "kLFT5"), or -1. */
static int key_code_of(const char *cap) {
    char *s = tigetstr((char *)cap);
    if (!s || s == (char *)-1) return -1;
    int k = key_defined(s);
    return k > 0 ? k : -1;
}

void tui_input_open(tui *t) {
    g_tui = t;
    g_key_cleft = key_code_of("kLFT5");
    g_key_cright = key_code_of("kRIT5");
    g_devnull = fopen("/dev/null", "w");
    rl_readline_name = "iclplay";
    rl_catch_signals = 0;       /* Ctrl-C is ours (and repl_docall's) */
    rl_catch_sigwinch = 0;      /* curses reports resizes as KEY_RESIZE */
    rl_change_environment = 0;  /* LINES and COLUMNS would freeze curses' size */
    rl_prep_term_function = NULL;
    rl_deprep_term_function = NULL;
    rl_getc_function = rl_getc_hook;
    rl_input_available_hook = rl_avail_hook;
    rl_redisplay_function = rl_redisplay_hook;
    rl_instream = stdin;
    rl_outstream = g_devnull ? g_devnull : stderr; /* nothing Readline prints reaches the screen */
    rl_initialize();
    set_term(t->scr.term); /* Readline's tgetent may have changed the current terminal */
    rl_variable_bind("bell-style", "none");
    rl_variable_bind("enable-bracketed-paste", "off");
    repl_complete_install(t->L);
    rl_completion_display_matches_hook = display_matches;
    using_history();
    const char *home = getenv("HOME");
    t->use_hist = home && *home &&
                  snprintf(t->hist_path, sizeof t->hist_path, "%s/%s", home, HISTORY_FILE) < (int)sizeof t->hist_path;
    if (t->use_hist) read_history(t->hist_path); /* no file yet is fine */
    install_handler(t);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: waiting for a key returns */
    g_have_old_sigint = sigaction(SIGINT, &sa, &g_old_sigint) == 0;
    t->input_open = 1;
}

void tui_input_close(tui *t) {
    if (!t->input_open) return;
    rl_callback_handler_remove();
    if (t->use_hist) history_truncate_file(t->hist_path, HISTORY_MAX);
    if (g_have_old_sigint) sigaction(SIGINT, &g_old_sigint, NULL);
    rl_getc_function = rl_getc;
    rl_input_available_hook = NULL;
    rl_redisplay_function = rl_redisplay;
    rl_completion_display_matches_hook = NULL;
    rl_outstream = NULL;
    if (g_devnull) fclose(g_devnull);
    g_devnull = NULL;
    free(t->line);
    t->line = NULL;
    t->input_open = 0;
    g_tui = NULL;
}

/* ---- running a line ---------------------------------------------------------------------------------- */

void tui_input_run_line(tui *t) {
    if (!t->line_ready) return;
    char *line = t->line;
    t->line = NULL;
    t->line_ready = 0;
    /* echo it as a terminal would, and follow the output again */
    tui_output_printf(&t->out, TUI_ROLE_PROMPT, "%s%s\n", repl_prompt(t->r), line);
    t->out.scroll = 0;
    snprintf(t->running, sizeof t->running, "%s", line);
    t->busy = 1;
    t->run_target = 0;
    tui_frame(t, 0); /* the echo and "running" show before the command starts */
    repl_result res = repl_feed(t->r, line);
    t->busy = 0;
    t->run_paused = 0;
    t->run_target = 0;
    t->running[0] = '\0';
    const char *chunk = repl_last_chunk(t->r);
    if (res == REPL_DONE && chunk && chunk[strspn(chunk, " \t\n")]) {
        add_history(chunk);
        if (t->use_hist && append_history(1, t->hist_path) != 0) write_history(t->hist_path);
    }
    free(line);
    install_handler(t);
    t->gen++; /* the command may have changed anything the panels show */
    t->need_draw = 1;
}

/* Ctrl-C at the prompt: drop the line and a pending chunk, pause training. */
static void prompt_sigint(tui *t) {
    g_sigint = 0;
    t->need_draw = 1;
    if (t->quit_ask) {
        t->quit_ask = 0;
        return;
    }
    t->help = 0;
    if ((rl_line_buffer && rl_line_buffer[0]) || repl_pending(t->r))
        tui_output_printf(&t->out, TUI_ROLE_DIM, "%s%s^C\n", repl_prompt(t->r), rl_line_buffer ? rl_line_buffer : "");
    repl_cancel(t->r);
    rl_replace_line("", 0);
    rl_point = 0;
    rl_callback_handler_remove();
    install_handler(t);
    if (t->training) {
        t->training = 0;
        tui_message(t, 3, "training paused");
    }
}

/* ---- what keys do --------------------------------------------------------------------------------- */

static void scroll_output(tui *t, int dir) {
    int page = t->out.last_rows > 2 ? t->out.last_rows / 2 : 1;
    tui_output_scroll(&t->out, dir * page);
}

static int panel_key_of(int key) {
    switch (key - TUI_KEY_CURSES) {
    case KEY_LEFT: return PANEL_KEY_LEFT;
    case KEY_RIGHT: return PANEL_KEY_RIGHT;
    case KEY_UP: return PANEL_KEY_UP;
    case KEY_DOWN: return PANEL_KEY_DOWN;
    case KEY_HOME: return PANEL_KEY_HOME;
    case KEY_END: return PANEL_KEY_END;
    case KEY_PPAGE: return PANEL_KEY_PGUP;
    case KEY_NPAGE: return PANEL_KEY_PGDN;
    default: return key > 0 && key < TUI_KEY_CURSES ? key : 0;
    }
}

static void cycle_focus(tui *t, int dir) {
    t->focused = (t->focused + dir + TUI_NPANELS) % TUI_NPANELS;
    if (t->zoom >= 0) t->zoom = t->focused;
}

/* Keys for the focused panel, idle or busy (space and n differ). */
static void panel_key(tui *t, int key, int busy) {
    if (key == 27 || key == 'i') {
        t->focus = TUI_FOCUS_PROMPT;
        return;
    }
    if (key == '\t' || key == K(KEY_BTAB)) {
        cycle_focus(t, key == '\t' ? 1 : -1);
        return;
    }
    if (key == '?') {
        t->help = 1;
        t->help_scroll = 0;
        return;
    }
    if (key == ' ') {
        if (busy) t->run_paused = !t->run_paused;
        else tui_toggle_training(t);
        return;
    }
    if (key == 'n') {
        if (busy) tui_message(t, 3, "a command is running (Ctrl-C stops it)");
        else tui_step_once(t);
        return;
    }
    int pk = panel_key_of(key);
    if (!pk) return;
    int r = panel_on_key(t->p[t->focused], pk);
    if (r & PANEL_ZOOM) t->zoom = t->zoom == t->focused ? -1 : t->focused;
    if (r & PANEL_REDRAW) t->panel_gen[t->focused] = -1; /* read the new layer / head at the next frame */
    if (!(r & PANEL_HANDLED) && (pk == PANEL_KEY_PGUP || pk == PANEL_KEY_PGDN))
        scroll_output(t, pk == PANEL_KEY_PGUP ? 1 : -1);
}

/* Keys that mean the same everywhere; returns 1 if it was one. */
static int global_key(tui *t, int key, int busy) {
    switch (key) {
    case K(KEY_RESIZE): screen_resize(&t->scr); return 1;
    case K(KEY_F(1)):
        t->help = 1;
        t->help_scroll = 0;
        return 1;
    case K(KEY_F(5)):
        if (busy) t->run_paused = !t->run_paused;
        else tui_toggle_training(t);
        return 1;
    case K(KEY_F(10)):
        if (busy) tui_message(t, 3, "a command is running (Ctrl-C stops it)");
        else tui_step_once(t);
        return 1;
    case K(KEY_PPAGE):
    case K(KEY_NPAGE):
        if (t->focus == TUI_FOCUS_PANELS) return 0; /* the panel may scroll itself first */
        scroll_output(t, key == K(KEY_PPAGE) ? 1 : -1);
        return 1;
    case 12: /* Ctrl-L: paint the whole screen again */
        if (t->scr.active) clearok(curscr, TRUE);
        return 1;
    default: return 0;
    }
}

void tui_input_key(tui *t, int key) {
    t->need_draw = 1;
    if (key == K(KEY_RESIZE)) {
        screen_resize(&t->scr);
        return;
    }
    if (t->quit_ask) {
        t->quit_ask = 0;
        if (key == 'y' || key == 'Y') t->quit = 1;
        else tui_message(t, 3, "not quitting");
        return;
    }
    if (t->help) {
        tui_help_key(t, key);
        return;
    }
    if (global_key(t, key, 0)) return;
    if (t->focus == TUI_FOCUS_PANELS) {
        panel_key(t, key, 0);
        return;
    }
    if (key == 27) {
        t->focus = TUI_FOCUS_PANELS;
        return;
    }
    if (key == 4 && rl_end == 0) { /* Ctrl-D on an empty line */
        tui_request_quit(t);
        return;
    }
    char b[16];
    int n = key_bytes(key, b);
    if (n <= 0 || !t->input_open) return;
    queue_bytes(t, b, n);
    feed(t);
}

void tui_input_key_busy(tui *t, int key) {
    t->need_draw = 1;
    if (key == 3) { /* Ctrl-C as a key (it is normally a signal) */
        icl_interrupt_request();
        return;
    }
    if (t->help && key != K(KEY_RESIZE)) {
        tui_help_key(t, key);
        return;
    }
    if (global_key(t, key, 1)) return;
    if (t->focus == TUI_FOCUS_PANELS) {
        panel_key(t, key, 1);
        return;
    }
    if (key == 27) t->focus = TUI_FOCUS_PANELS;
    else queue_key(t, key); /* typed ahead: the prompt gets it when the command ends */
}

int tui_input_poll(tui *t, int timeout_ms) {
    int n = 0, key;
    if (g_sigint) prompt_sigint(t);
    /* keys typed while a command ran come first */
    while (t->keyq_n > 0 && !t->busy && !t->quit) {
        key = t->keyq[0];
        memmove(t->keyq, t->keyq + 1, sizeof(int) * (size_t)(--t->keyq_n));
        tui_input_key(t, key);
        n++;
    }
    if (n || !t->scr.active) return n;
    if (read_key(timeout_ms, &key)) {
        do {
            tui_input_key(t, key);
            n++;
        } while (n < 64 && !t->quit && !g_sigint && read_key(0, &key));
    }
    if (g_sigint) prompt_sigint(t);
    return n;
}

/* Keys that must not act in the middle of a step: they run Lua (Enter,
 * Tab's completion, Ctrl-D's collection), start a step (F10, n), or answer
 * a question. They wait in the typeahead, in order, for the step's end. */
static int waits_for_step_end(const tui *t, int key) {
    if (t->quit_ask || key == '\n' || key == '\r' || key == '\t' || key == 4 || key == K(KEY_ENTER) ||
        key == K(KEY_F(10)))
        return 1;
    return t->focus == TUI_FOCUS_PANELS && !t->help && key == 'n';
}

int tui_input_poll_mid_step(tui *t) {
    int n = 0, key;
    if (!t->scr.active) return 0;
    while (n < 64 && read_key(0, &key)) {
        n++;
        if (t->keyq_n > 0 || waits_for_step_end(t, key)) queue_key(t, key); /* keep the order */
        else tui_input_key(t, key);
    }
    return n;
}

int tui_input_poll_busy(tui *t, int timeout_ms) {
    int n = 0, key;
    if (!t->scr.active) return 0;
    if (read_key(timeout_ms, &key)) {
        do {
            tui_input_key_busy(t, key);
            n++;
        } while (n < 64 && read_key(0, &key));
    }
    return n;
}

/* ---- the prompt row and the status hints ------------------------------------------------------------- */

/* Columns of the first `bytes` bytes of s. */
static int width_of(const char *s, size_t bytes) {
    int n = 0;
    for (size_t i = 0; i < bytes && s[i]; i++) n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

void tui_input_draw_prompt(tui *t, canvas *c, int *cursor_x) {
    *cursor_x = -1;
    if (c->w <= 0) return;
    if (t->quit_ask) {
        int x = canvas_text(c, 0, 0, "unsaved trained model(s); quit anyway? (y/n) ", TUI_ROLE_WARN, TUI_ATTR_BOLD);
        *cursor_x = x < c->w ? x : c->w - 1;
        return;
    }
    if (t->busy) {
        int x = canvas_text(c, 0, 0, t->run_paused ? "paused: " : "running: ", TUI_ROLE_PROMPT, 0);
        const char *tail = t->run_paused ? "   F5 resumes  Ctrl-C stops" : "   Ctrl-C stops  F5 pauses";
        int room = c->w - x - tui_text_width(tail);
        if (room > 8) x += canvas_text_max(c, x, 0, room, t->running, TUI_ROLE_TEXT, 0);
        canvas_text(c, x, 0, tail, TUI_ROLE_DIM, 0);
        if (t->keyq_n) canvas_textf(c, c->w - 16, 0, TUI_ROLE_DIM, 0, "%3d keys waiting", t->keyq_n);
        return;
    }
    if (t->focus == TUI_FOCUS_PANELS) {
        int x = canvas_text(c, 0, 0, panel_name(t->p[t->focused]), TUI_ROLE_FOCUS, 0);
        x += canvas_text(c, x, 0, " keys: ", TUI_ROLE_DIM, 0);
        canvas_text_max(c, x, 0, c->w - x, panel_help(t->p[t->focused]), TUI_ROLE_TEXT, 0);
        return;
    }
    if (!t->input_open || !rl_line_buffer) {
        *cursor_x = canvas_text(c, 0, 0, t->r ? repl_prompt(t->r) : "> ", TUI_ROLE_PROMPT, TUI_ATTR_BOLD);
        return;
    }
    const char *prompt = rl_display_prompt ? rl_display_prompt : "";
    const char *line = rl_line_buffer;
    int pw = tui_text_width(prompt);
    int cw = width_of(line, rl_point > 0 ? (size_t)rl_point : 0);
    if (pw > c->w / 2) pw = c->w / 2;
    canvas_text_max(c, 0, 0, pw, prompt, TUI_ROLE_PROMPT, TUI_ATTR_BOLD);
    /* scroll the line sideways so the cursor stays in view */
    int room = c->w - pw - 1, skip = cw > room ? cw - room : 0;
    size_t off = 0;
    unsigned cp;
    for (int k = 0; k < skip && line[off]; k++) off += (size_t)tui_utf8_next(line + off, &cp);
    canvas_text(c, pw, 0, line + off, TUI_ROLE_TEXT, 0);
    if (skip) canvas_put(c, pw, 0, "<", TUI_ROLE_DIM, 0);
    *cursor_x = pw + cw - skip;
}

const char *tui_input_focus_name(const tui *t, char *buf, size_t n) {
    if (t->help) snprintf(buf, n, "help");
    else if (t->quit_ask) snprintf(buf, n, "quit?");
    else if (t->focus == TUI_FOCUS_PANELS) snprintf(buf, n, "panels: %s", panel_name(t->p[t->focused]));
    else if (t->busy) snprintf(buf, n, "command");
    else snprintf(buf, n, "prompt");
    return buf;
}

const char *tui_input_hints(const tui *t) {
    if (t->help) return "[Esc close] [up/down scroll]";
    if (t->quit_ask) return "[y quit] [n stay]";
    if (t->focus == TUI_FOCUS_PANELS) {
        if (!t->busy) return "[Tab next] [z zoom] [space run/pause] [n step] [? help] [Esc prompt]";
        return t->run_paused ? "[Tab next] [z zoom] [space resume] [Esc prompt] [^C stop] [F1 help]"
                             : "[Tab next] [z zoom] [space pause] [Esc prompt] [^C stop] [F1 help]";
    }
    if (t->busy)
        return t->run_paused ? "[F5 resume] [^C stop] [F1 help] [Esc panels] [PgUp/PgDn scroll]"
                             : "[^C stop] [F5 pause] [F1 help] [Esc panels] [PgUp/PgDn scroll]";
    return "[F1 help] [F5 run/pause] [F10 step] [Esc panels] [PgUp/PgDn scroll] [^D quit]";
}
