/*
 * panel_status.c - the status line: one row, no frame.
 *
 *   step 812/2000  loss 0.2314  1480 steps/s  ETA 0:01  running │ prompt  F1 help  F5 run/pause ...
 *
 * The screen passes who has the keys ("prompt", "panels: loss") and the key
 * hints for that focus as "[F1 help] [F5 run/pause]": each bracketed hint
 * is drawn with its key in the key role and its words in the status role,
 * htop's function bar style. A transient message (an error, "saved"),
 * when there is one, replaces the training numbers. Everything is cut at
 * the right edge, so the most important fields come first.
 *
 * Not here: what the keys do (the screen manager).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/panel.h"
#include "tui/plot.h"

typedef struct {
    panel base;
    int has_trainer, running;
    long step, target;
    double loss, sps, eta;
    char focus[48];
    char hints[256];
    char message[160];
} status_panel;

static void status_update(panel *p, const tui_source *src) {
    status_panel *sp = (status_panel *)p;
    sp->has_trainer = src->tr != NULL;
    if (src->tr) {
        sp->step = src->tr->step;
        sp->loss = src->tr->step > 0 ? src->tr->loss : NAN;
    }
    sp->target = src->target_steps;
    sp->running = src->running;
    sp->sps = src->steps_per_sec;
    sp->eta = src->eta_sec;
    snprintf(sp->focus, sizeof sp->focus, "%s", src->focus ? src->focus : "");
    snprintf(sp->hints, sizeof sp->hints, "%s", src->hints ? src->hints : "");
    snprintf(sp->message, sizeof sp->message, "%s", src->message ? src->message : "");
}

/* "[F1 help] [F5 run/pause]": keys in the key role. Returns the new column. */
static int draw_hints(canvas *c, int x, const char *h) {
    char item[96];
    while (*h) {
        while (*h == ' ') h++;
        if (!*h) break;
        if (*h != '[') { /* plain text up to the next bracket */
            size_t n = strcspn(h, "[");
            snprintf(item, sizeof item, "%.*s", (int)(n < sizeof item ? n : sizeof item - 1), h);
            x += canvas_text(c, x, 0, item, TUI_ROLE_STATUS, 0) + 1;
            h += n;
            continue;
        }
        h++;
        size_t n = strcspn(h, "]");
        size_t k = strcspn(h, " ]"); /* the key is the first word */
        snprintf(item, sizeof item, "%.*s", (int)(k < sizeof item ? k : sizeof item - 1), h);
        x += canvas_text(c, x, 0, item, TUI_ROLE_STATUS_KEY, 0);
        if (n > k) {
            snprintf(item, sizeof item, "%.*s", (int)(n - k < sizeof item ? n - k : sizeof item - 1), h + k);
            x += canvas_text(c, x, 0, item, TUI_ROLE_STATUS, 0);
        }
        x++;
        h += n;
        if (*h == ']') h++;
    }
    return x;
}

static void status_draw(panel *p, canvas *c, int focused) {
    status_panel *sp = (status_panel *)p;
    (void)focused;
    char buf[96], v[32];
    canvas_fill(c, 0, 0, c->w, 1, " ", TUI_ROLE_STATUS, 0);
    int x = 0;
    if (sp->message[0]) {
        x += canvas_text(c, x, 0, sp->message, TUI_ROLE_WARN, 0) + 2;
    } else if (!sp->has_trainer) {
        x += canvas_text(c, x, 0, "no trainer", TUI_ROLE_STATUS, 0) + 2;
    } else {
        if (sp->target > 0) snprintf(buf, sizeof buf, "step %ld/%ld", sp->step, sp->target);
        else snprintf(buf, sizeof buf, "step %ld", sp->step);
        x += canvas_text(c, x, 0, buf, TUI_ROLE_STATUS, TUI_ATTR_BOLD) + 2;
        plot_format_value(sp->loss, v, sizeof v);
        if (!isnan(sp->loss)) snprintf(v, sizeof v, "%.4g", sp->loss);
        snprintf(buf, sizeof buf, "loss %s", v);
        x += canvas_text(c, x, 0, buf, TUI_ROLE_STATUS, 0) + 2;
        if (sp->sps > 0 && isfinite(sp->sps)) {
            snprintf(buf, sizeof buf, sp->sps >= 100 ? "%.0f steps/s" : "%.3g steps/s", sp->sps);
            x += canvas_text(c, x, 0, buf, TUI_ROLE_STATUS, 0) + 2;
        }
        if (sp->eta >= 0 && isfinite(sp->eta) && sp->running) {
            panel_format_duration(sp->eta, v, sizeof v);
            snprintf(buf, sizeof buf, "ETA %s", v);
            x += canvas_text(c, x, 0, buf, TUI_ROLE_STATUS, 0) + 2;
        }
        x += canvas_text(c, x, 0, sp->running ? "running" : "paused", sp->running ? TUI_ROLE_PROMPT : TUI_ROLE_STATUS,
                         TUI_ATTR_BOLD) + 1;
    }
    if (sp->focus[0]) {
        x += canvas_text(c, x, 0, "\xe2\x94\x82 ", TUI_ROLE_STATUS, 0); /* U+2502 */
        x += canvas_text(c, x, 0, sp->focus, TUI_ROLE_STATUS, TUI_ATTR_BOLD) + 2;
    }
    draw_hints(c, x, sp->hints);
}

static const panel_class status_class = {
    "status", "", 20, 1, status_update, status_draw, NULL, NULL,
};

panel *panel_status_new(void) {
    status_panel *sp = calloc(1, sizeof *sp);
    if (!sp) {
        icl_fail(ICL_ERR_NOMEM, "panel status: out of memory");
        return NULL;
    }
    sp->base.cls = &status_class;
    sp->loss = NAN;
    return &sp->base;
}
