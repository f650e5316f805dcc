/*
 * panel_loss.c - the loss panel: the training loss (the trainer's
 * loss_history) and the history of evaluations over training steps, log or
 * linear y, with a cursor and an exact readout.
 *
 * The two are different quantities (the training loss is the raw MSE, BCE
 * or CE of the batch; an evaluation is the task's metric: normalised
 * squared error, or an accuracy), so they never share a y axis: when both
 * exist and the panel has room, the eval curve gets its own plot below the
 * train curve, over the same steps; else the panel shows the train curve
 * and the readout gives both values.
 *
 *   ╭─ loss (train / eval, log y) ─────────╮
 *   │  1┤⠑⠢⡀                    train loss │
 *   │0.1┤   ⠈⠑⠒⠤⠤⣀⣀⣀│                      │
 *   │0.5┤⠑⠢⡀        │   eval: norm. sq. err│
 *   │0.1┤   ⠈⠑⠒⠤⠤⣀⣀⣀│                      │
 *   │     0      500  1k                   │
 *   │step 812  train 0.231442  eval 0.2511 │
 *   ╰───────────────────────────────────────╯
 *
 * Keys: l toggles log/linear y; <- and -> move the cursor by about one
 * column, Home jumps to the first point, End (or -> past the last point)
 * returns to following the newest point. The cursor is kept as a step
 * number, not an index, so it stays on the same step when the history
 * halves its resolution (trainer.h).
 *
 * Not here: the plot itself (plot.c), where the numbers come from (the
 * screen fills tui_source).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/panel.h"
#include "tui/plot.h"
#include "train/evaluate.h"

#define LOSS_EVAL_MAX 1024

typedef struct {
    panel base;
    int has_trainer;
    int n;                            /* train points */
    double step[TRAINER_HIST];        /* (n) step of each history entry */
    double loss[TRAINER_HIST];        /* (n) its mean loss */
    int stride;                       /* steps per entry */
    long cur_step;
    double cur_loss;
    int n_eval;                       /* the newest LOSS_EVAL_MAX evaluations */
    double eval_step[LOSS_EVAL_MAX], eval_val[LOSS_EVAL_MAX];
    char eval_label[48];              /* what the evaluations measure */
    int log_y;
    double cursor;                    /* step under the cursor; NaN = follow the newest point */
    int plot_cols;                    /* dot columns of the last draw (cursor speed) */
} loss_panel;

static void loss_update(panel *p, const tui_source *src) {
    loss_panel *lp = (loss_panel *)p;
    lp->has_trainer = src->tr != NULL;
    lp->n = 0;
    if (src->tr) {
        const loss_history *h = &src->tr->hist;
        int n = h->n < 0 ? 0 : h->n > TRAINER_HIST ? TRAINER_HIST : h->n;
        for (int i = 0; i < n; i++) {
            lp->step[i] = (double)h->step[i];
            lp->loss[i] = h->loss[i];
        }
        lp->n = n;
        lp->stride = h->stride;
        lp->cur_step = src->tr->step;
        lp->cur_loss = src->tr->loss;
    }
    int ne = src->eval_hist_step && src->eval_hist_value ? src->n_eval_hist : 0, first = 0;
    if (ne > LOSS_EVAL_MAX) {
        first = ne - LOSS_EVAL_MAX;
        ne = LOSS_EVAL_MAX;
    }
    for (int i = 0; i < ne; i++) {
        lp->eval_step[i] = (double)src->eval_hist_step[first + i];
        lp->eval_val[i] = src->eval_hist_value[first + i];
    }
    lp->n_eval = ne < 0 ? 0 : ne;
    snprintf(lp->eval_label, sizeof lp->eval_label, "eval: %s",
             src->eval ? eval_metric_label(src->eval->metric) : "task metric");
}

/* The series: train, then eval (drawn on top). */
static int series(const loss_panel *lp, plot_series *s) {
    int k = 0;
    memset(s, 0, 2 * sizeof *s);
    if (lp->n > 0) s[k++] = (plot_series){"train", lp->step, lp->loss, NULL, NULL, lp->n, TUI_ROLE_LOSS_TRAIN, 0};
    if (lp->n_eval > 0)
        s[k++] = (plot_series){"eval", lp->eval_step, lp->eval_val, NULL, NULL, lp->n_eval, TUI_ROLE_LOSS_EVAL, 0};
    return k;
}

/* "step 812  train 0.231442  eval 0.2511", each value in its series' role. */
static void draw_readout(canvas *c, int y, const plot_series *s, int ns, double x) {
    char v[32];
    int col = 0, k0 = 0;
    int i = -1;
    for (; k0 < ns && (i = plot_nearest(&s[k0], x)) < 0; k0++) {}
    if (i < 0) return;
    plot_format_value(s[k0].x[i], v, sizeof v);
    col += canvas_text(c, col, y, "step ", TUI_ROLE_DIM, 0);
    col += canvas_text(c, col, y, v, TUI_ROLE_CURSOR, 0);
    for (int k = 0; k < ns; k++) {
        int j = plot_nearest(&s[k], x);
        plot_format_value(j >= 0 ? s[k].y[j] : NAN, v, sizeof v);
        col += canvas_text(c, col, y, "  ", TUI_ROLE_DIM, 0);
        col += canvas_text(c, col, y, s[k].name, s[k].role, 0);
        col += canvas_text(c, col, y, " ", TUI_ROLE_DIM, 0);
        col += canvas_text(c, col, y, v, TUI_ROLE_TEXT, TUI_ATTR_BOLD);
        /* a point far from the cursor (an eval between two steps) says where it is */
        if (j >= 0 && k > 0 && s[k].x[j] != s[k0].x[i]) {
            char at[40];
            plot_format_value(s[k].x[j], v, sizeof v);
            snprintf(at, sizeof at, " @%s", v);
            col += canvas_text(c, col, y, at, TUI_ROLE_DIM, 0);
        }
    }
}

/* 1 if cells [x, x + n) of row y hold nothing (blank or an empty braille cell). */
static int row_free(const canvas *c, int x, int y, int n) {
    for (int i = x; i < x + n; i++) {
        const tui_cell *cl = canvas_cell_const(c, i, y);
        if (cl && cl->glyph[0] && strcmp(cl->glyph, " ") && strcmp(cl->glyph, "\xe2\xa0\x80")) return 0;
    }
    return 1;
}

/* The name of a plot's quantity, right-aligned on its top row, or on its
 * lowest dot row if the curve passes the top; never over the data. */
static void label(canvas *c, const char *text, tui_role role) {
    int n = tui_text_width(text);
    if (c->h < 3 || c->w < n + 12) return;
    const int rows[2] = {0, c->h - 2};
    for (int k = 0; k < 2; k++)
        if (row_free(c, c->w - n - 1, rows[k], n + 1)) {
            canvas_text(c, c->w - n, rows[k], text, role, 0);
            return;
        }
}

static void loss_draw(panel *p, canvas *c, int focused) {
    loss_panel *lp = (loss_panel *)p;
    canvas in = panel_frame(c, lp->log_y ? "loss (train / eval, log y)" : "loss (train / eval)", focused);
    plot_series s[2];
    int ns = series(lp, s);
    if (ns == 0) {
        panel_message(&in, lp->has_trainer ? "no data: no step yet" : "no data");
        return;
    }
    double newest = lp->n > 0 ? lp->step[lp->n - 1] : lp->eval_step[lp->n_eval - 1];
    double x = isnan(lp->cursor) ? newest : lp->cursor;
    if (in.h < 3 || in.w < 16) { /* too small for a plot: the readout alone */
        draw_readout(&in, 0, s, ns, x);
        return;
    }
    plot_opts o;
    plot_opts_default(&o);
    o.log_y = lp->log_y;
    o.cursor_x = lp->cursor;
    o.x_step_min = 1; /* steps are integers */
    plot_frame f;
    if (ns == 2 && in.h >= 9) { /* train above, eval below: own y axes, the same steps */
        o.x_min = fmin(s[0].x[0], s[1].x[0]);
        o.x_max = fmax(s[0].x[s[0].n - 1], s[1].x[s[1].n - 1]);
        int top_h = (in.h - 1) / 2;
        canvas top = canvas_view(&in, 0, 0, in.w, top_h), bottom = canvas_view(&in, 0, top_h, in.w, in.h - 1 - top_h);
        plot_frame fb;
        plot_lines(&top, &o, &s[0], 1, &f);
        plot_lines(&bottom, &o, &s[1], 1, &fb);
        label(&top, "train loss", s[0].role);
        label(&bottom, lp->eval_label, s[1].role);
        if (fb.w == 0) panel_message(&bottom, lp->log_y ? "no eval > 0 for a log axis" : "no finite eval");
    } else {
        canvas area = canvas_view(&in, 0, 0, in.w, in.h - 1);
        plot_lines(&area, &o, s, ns == 2 ? 1 : ns, &f); /* one axis: the train curve alone (or the eval alone) */
        if (f.w == 0) panel_message(&area, lp->log_y ? "no data > 0 for a log axis" : "no finite data");
    }
    lp->plot_cols = f.w * (in.ascii ? 1 : 2);
    draw_readout(&in, in.h - 1, s, ns, x);
}

static int loss_key(panel *p, int key) {
    loss_panel *lp = (loss_panel *)p;
    if (key == 'l') {
        lp->log_y = !lp->log_y;
        return PANEL_HANDLED | PANEL_REDRAW;
    }
    if (key != PANEL_KEY_LEFT && key != PANEL_KEY_RIGHT && key != PANEL_KEY_HOME && key != PANEL_KEY_END) return 0;
    if (lp->n == 0) return PANEL_HANDLED;
    if (key == PANEL_KEY_END) {
        lp->cursor = NAN;
        return PANEL_HANDLED | PANEL_REDRAW;
    }
    if (key == PANEL_KEY_HOME) {
        lp->cursor = lp->step[0];
        return PANEL_HANDLED | PANEL_REDRAW;
    }
    /* move by about one dot column's worth of points, at least one point */
    int stride = lp->plot_cols > 0 ? lp->n / lp->plot_cols : 1;
    if (stride < 1) stride = 1;
    plot_series s = {"train", lp->step, lp->loss, NULL, NULL, lp->n, TUI_ROLE_LOSS_TRAIN, 0};
    int i = isnan(lp->cursor) ? lp->n - 1 + (key == PANEL_KEY_LEFT ? 1 : 0) : plot_nearest(&s, lp->cursor);
    if (i < 0) i = lp->n - 1;
    i += key == PANEL_KEY_LEFT ? -stride : stride;
    if (i >= lp->n) lp->cursor = NAN; /* past the newest: follow again */
    else lp->cursor = lp->step[i < 0 ? 0 : i];
    return PANEL_HANDLED | PANEL_REDRAW;
}

static const panel_class loss_class = {
    "loss", "l log/linear  <- -> cursor  Home first  End newest", 20, 5, loss_update, loss_draw, loss_key, NULL,
};

panel *panel_loss_new(void) {
    loss_panel *lp = calloc(1, sizeof *lp);
    if (!lp) {
        icl_fail(ICL_ERR_NOMEM, "panel loss: out of memory");
        return NULL;
    }
    lp->base.cls = &loss_class;
    lp->log_y = 1; /* losses span decades */
    lp->cursor = NAN;
    return &lp->base;
}
