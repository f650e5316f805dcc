/*
 * panels.c - the panel registry, the dispatch of panel.h, and the helpers
 * every panel draws with (frame, message, number formats).
 *
 * The registry is a constant table of (name, constructor): the screen
 * manager builds its panels by name, and Lua can list them. Dispatch
 * checks for NULL so a half-built screen never crashes on a missing panel.
 *
 * Not here: any particular panel (panel_*.c), layout or curses.
 */
#include "tui/panel.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *name;
    panel *(*make)(void);
} panel_entry;

static const panel_entry registry[] = {
    {"loss", panel_loss_new},   {"icl", panel_icl_new},     {"attention", panel_attention_new},
    {"ssm", panel_ssm_new},     {"model", panel_model_new}, {"status", panel_status_new},
};
#define N_PANELS ((int)(sizeof registry / sizeof registry[0]))

static const char *const names[N_PANELS] = {"loss", "icl", "attention", "ssm", "model", "status"};

const char *const *panel_names(int *n) {
    if (n) *n = N_PANELS;
    return names;
}

panel *panel_new(const char *name) {
    for (int i = 0; name && i < N_PANELS; i++)
        if (!strcmp(registry[i].name, name)) return registry[i].make();
    icl_fail(ICL_ERR_ARG, "panel: unknown panel '%s' (panels: loss, icl, attention, ssm, model, status)",
             name ? name : "(null)");
    return NULL;
}

void panel_update(panel *p, const tui_source *src) {
    static const tui_source empty;
    if (p && p->cls->update) p->cls->update(p, src ? src : &empty);
}

void panel_draw(panel *p, canvas *c, int focused) {
    if (p && c && c->w > 0 && c->h > 0 && p->cls->draw) p->cls->draw(p, c, focused);
}

/* 'z' zooms every panel that does not use it itself. */
int panel_on_key(panel *p, int key) {
    if (!p) return 0;
    int r = p->cls->on_key ? p->cls->on_key(p, key) : 0;
    if (!(r & PANEL_HANDLED) && key == 'z') r = PANEL_HANDLED | PANEL_ZOOM;
    return r;
}

void panel_free(panel *p) {
    if (!p) return;
    if (p->cls->destroy) p->cls->destroy(p);
    else free(p);
}

const char *panel_name(const panel *p) { return p ? p->cls->name : ""; }
const char *panel_help(const panel *p) { return p ? p->cls->help : ""; }

/* ---- helpers --------------------------------------------------------------------- */

canvas panel_frame(canvas *c, const char *title, int focused) {
    if (c->w < 4 || c->h < 3) return canvas_view(c, 0, 0, c->w, c->h);
    canvas_box(c, title, focused ? TUI_ROLE_FOCUS : TUI_ROLE_FRAME, focused ? TUI_ROLE_FOCUS : TUI_ROLE_TITLE);
    return canvas_view(c, 1, 1, c->w - 2, c->h - 2);
}

void panel_message(canvas *c, const char *msg) {
    if (c->w <= 0 || c->h <= 0 || !msg) return;
    int w = tui_text_width(msg);
    int x = w < c->w ? (c->w - w) / 2 : 0, y = (c->h - 1) / 2;
    canvas_text_max(c, x, y, c->w - x, msg, TUI_ROLE_DIM, 0);
}

void panel_format_count(double v, char *buf, size_t n) {
    double a = fabs(v);
    if (!isfinite(v)) snprintf(buf, n, "-");
    else if (a < 1e3) snprintf(buf, n, "%.0f", v);
    else if (a < 1e6) snprintf(buf, n, "%.*fk", a < 1e4 ? 2 : a < 1e5 ? 1 : 0, v / 1e3);
    else if (a < 1e9) snprintf(buf, n, "%.*fM", a < 1e7 ? 2 : a < 1e8 ? 1 : 0, v / 1e6);
    else snprintf(buf, n, "%.2fG", v / 1e9);
}

void panel_format_duration(double sec, char *buf, size_t n) {
    if (!(sec >= 0) || !isfinite(sec) || sec > 1e8) {
        snprintf(buf, n, "-");
        return;
    }
    long s = (long)(sec + 0.5);
    if (s < 3600) snprintf(buf, n, "%ld:%02ld", s / 60, s % 60);
    else snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, (s / 60) % 60, s % 60);
}

int panel_token_marks(const task *t, int T, char *marks) {
    marks[0] = '\0';
    if (!t || T <= 0) return 0;
    const task_spec *s = task_get_spec(t);
    int kv = 2 * s->kappa;
    for (int i = 0; i < T; i++) {
        switch (task_get_kind(t)) {
        case TASK_COT_IO: marks[i] = "xsy"[i % 3]; break;
        case TASK_VECTOR_MQAR: marks[i] = i < kv ? "kv"[i % 2] : 'q'; break;
        case TASK_TOKEN_MQAR: marks[i] = i < kv ? "kv"[i % 2] : '-'; break;
        default: marks[i] = "xy"[i % 2]; break; /* the interleaved regression layout */
        }
    }
    marks[T] = '\0';
    return 1;
}

/* FNV-1a over a few words: cheap, and any new batch changes the outputs. */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *u = p;
    for (size_t i = 0; i < n; i++) h = (h ^ u[i]) * 0x100000001b3ull;
    return h;
}

uint64_t panel_forward_id(const model *m) {
    if (!m || m->B <= 0 || m->T <= 0 || !m->out) return 0;
    uint64_t h = 0xcbf29ce484222325ull;
    h = fnv(h, &m, sizeof m);
    h = fnv(h, &m->B, sizeof m->B);
    h = fnv(h, &m->T, sizeof m->T);
    size_t n = (size_t)m->B * m->T * (size_t)m->spec.n_out, stride = n > 256 ? n / 256 : 1;
    for (size_t i = 0; i < n; i += stride) h = fnv(h, &m->out[i], sizeof(float));
    return h ? h : 1;
}
