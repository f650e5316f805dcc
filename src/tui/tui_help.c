/*
 * tui_help.c - the help overlay (F1 anywhere, ? in the panels): every key
 * of the TUI, grouped by where it works, and each panel's own keys taken
 * from its class (panel_help), so the list cannot drift from the code.
 *
 * The overlay is a framed box in the middle of the screen; lines longer
 * than the box wrap under their description column; up / down / PgUp /
 * PgDn scroll when the terminal is too short; Esc, F1, ?, q or Enter close.
 *
 * Not here: what the keys do (tui_input.c).
 */
#include <stdio.h>
#include <string.h>

#include <ncursesw/curses.h>

#include "tui/screen.h"

#define KEY_COL 16 /* width of the key column */

typedef struct {
    const char *key;  /* NULL: a section title in `text` */
    const char *text;
} help_line;

static const help_line fixed[] = {
    {NULL, "Everywhere"},
    {"F1", "this help (Esc closes it)"},
    {"F5", "start / pause training the trainer the panels show; pauses a running tr:run{...} too"},
    {"F10", "one training step"},
    {"PgUp PgDn", "scroll the output"},
    {"Ctrl-C", "stop the running command (training stops at a step boundary, everything intact); at the prompt, drop the line"},
    {"Ctrl-L", "paint the screen again"},
    {NULL, "At the prompt (GNU Readline)"},
    {"Enter", "run the line; an unfinished statement continues on the next line (prompt >>)"},
    {"Tab", "complete globals, fields and methods: icl.pre<Tab>, tr:ru<Tab>"},
    {"Up Down", "history (kept in ~/.iclplay_history); Ctrl-R searches it"},
    {"Ctrl-A Ctrl-E", "start / end of the line; Alt-B Alt-F a word back / forward"},
    {"Ctrl-K Ctrl-U", "delete to the end / start of the line; Ctrl-W a word; Ctrl-Y pastes it back"},
    {"Esc", "give the keys to the panels"},
    {"Ctrl-D", "quit (on an empty line; asks first if a trained model is not saved)"},
    {NULL, "In the panels (after Esc)"},
    {"Tab Shift-Tab", "next / previous panel (the model panel takes a slot while it has the keys)"},
    {"z", "zoom the panel to the whole screen, z again to go back"},
    {"space", "start / pause training"},
    {"n", "one training step"},
    {"?", "this help"},
    {"Esc or i", "back to the prompt"},
};

static const help_line lua_lines[] = {
    {NULL, "From Lua"},
    {"icl.show(tr)", "the trainer the panels follow (the last one created, otherwise)"},
    {"icl.theme(name)", "colours: \"default\", \"cb\" (colour-blind safe) or \"mono\""},
    {"icl.tui", "settings of F5 training: eval_every (steps between evaluations, 0: none), eval_prompts"},
    {"help()", "the help topics; help(tr), help(icl.trainer) ..."},
};

/* Panel names as the help shows them. */
static const char *panel_title(int i) {
    static const char *const titles[TUI_NPANELS] = {"loss panel", "ICL panel", "attention", "SSM panel",
                                                    "model panel"};
    return titles[i];
}

/* All lines, in order; [out] up to cap. Returns the count. */
static int collect(const tui *t, help_line *out, int cap) {
    int n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed && n < cap; i++) out[n++] = fixed[i];
    for (int i = 0; i < TUI_NPANELS && n < cap; i++)
        if (t->p[i]) out[n++] = (help_line){panel_title(i), panel_help(t->p[i])};
    for (size_t i = 0; i < sizeof lua_lines / sizeof *lua_lines && n < cap; i++) out[n++] = lua_lines[i];
    return n;
}

/* Rows a line takes at text width w (the description wraps at spaces). */
static int wrap(const char *s, int w, const char **starts, int max_rows) {
    int rows = 0;
    while (*s && rows < max_rows) {
        starts[rows++] = s;
        int len = tui_text_width(s);
        if (len <= w) break;
        /* the last space within w columns, else a hard cut */
        const char *cut = NULL, *p = s;
        unsigned cp;
        for (int col = 0; *p && col <= w; col++) {
            if (*p == ' ') cut = p;
            p += tui_utf8_next(p, &cp);
        }
        if (!cut || cut == s) {
            p = s;
            for (int col = 0; *p && col < w; col++) p += tui_utf8_next(p, &cp);
            cut = p;
        }
        s = cut;
        while (*s == ' ') s++;
    }
    if (rows == 0) starts[rows++] = s;
    return rows;
}

void tui_help_draw(tui *t, canvas *c) {
    help_line lines[64];
    int n = collect(t, lines, 64);
    int bw = c->w - 4 < 96 ? c->w - 4 : 96, bh = c->h - 2;
    if (bw < 20 || bh < 5) return;
    const int tw = bw - 2 - 2 - KEY_COL; /* description width inside the frame */
    /* lay every line out in rows */
    typedef struct {
        const char *key, *text;
        int len, section;
    } row;
    row rows[256];
    int nr = 0;
    for (int i = 0; i < n && nr < 256; i++) {
        if (!lines[i].key) {
            if (nr > 0 && nr < 256) rows[nr++] = (row){NULL, "", 0, 0};
            if (nr < 256) rows[nr++] = (row){NULL, lines[i].text, -1, 1};
            continue;
        }
        const char *starts[16];
        int k = wrap(lines[i].text, tw, starts, 16);
        for (int j = 0; j < k && nr < 256; j++) {
            const char *end = j + 1 < k ? starts[j + 1] : starts[j] + strlen(starts[j]);
            while (end > starts[j] && end[-1] == ' ') end--;
            rows[nr++] = (row){j == 0 ? lines[i].key : NULL, starts[j], (int)(end - starts[j]), 0};
        }
    }
    int inner = bh - 2;
    if (bh > nr + 2) {
        bh = nr + 2;
        inner = nr;
    }
    int max_scroll = nr - inner > 0 ? nr - inner : 0;
    int scroll = t->help_scroll < 0 ? 0 : t->help_scroll > max_scroll ? max_scroll : t->help_scroll;
    t->help_scroll = scroll; /* keys scroll from what is shown */
    canvas box = canvas_view(c, (c->w - bw) / 2, (c->h - bh) / 2, bw, bh);
    canvas_fill(&box, 0, 0, box.w, box.h, " ", TUI_ROLE_TEXT, 0);
    canvas_box(&box, max_scroll ? "iclplay keys (up/down scroll, Esc closes)" : "iclplay keys (Esc closes)",
               TUI_ROLE_FOCUS, TUI_ROLE_TITLE);
    canvas in = canvas_view(&box, 2, 1, box.w - 4, box.h - 2);
    for (int y = 0; y < inner && scroll + y < nr; y++) {
        const row *r = &rows[scroll + y];
        if (r->section) {
            canvas_text(&in, 0, y, r->text, TUI_ROLE_TITLE, TUI_ATTR_BOLD);
            continue;
        }
        if (r->key) canvas_text_max(&in, 0, y, KEY_COL - 1, r->key, TUI_ROLE_STATUS_KEY, 0);
        char buf[512];
        int len = r->len < (int)sizeof buf - 1 ? r->len : (int)sizeof buf - 1;
        memcpy(buf, r->text, (size_t)(len > 0 ? len : 0));
        buf[len > 0 ? len : 0] = '\0';
        canvas_text_max(&in, KEY_COL, y, in.w - KEY_COL, buf, TUI_ROLE_TEXT, 0);
    }
}

int tui_help_key(tui *t, int key) {
    t->need_draw = 1;
    switch (key) {
    case 27:
    case '?':
    case 'q':
    case '\r':
    case '\n':
    case TUI_KEY_CURSES + KEY_F(1):
        t->help = 0;
        return 1;
    case TUI_KEY_CURSES + KEY_UP: t->help_scroll -= t->help_scroll > 0; return 0;
    case TUI_KEY_CURSES + KEY_DOWN: t->help_scroll++; return 0;
    case TUI_KEY_CURSES + KEY_PPAGE: t->help_scroll = t->help_scroll > 10 ? t->help_scroll - 10 : 0; return 0;
    case TUI_KEY_CURSES + KEY_NPAGE: t->help_scroll += 10; return 0;
    case TUI_KEY_CURSES + KEY_HOME: t->help_scroll = 0; return 0;
    case TUI_KEY_CURSES + KEY_RESIZE: screen_resize(&t->scr); return 0;
    default: return 0;
    }
}
