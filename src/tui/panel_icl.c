/*
 * panel_icl.c - the ICL panel: the error of the model against the number of
 * in-context examples, with its 90% bootstrap band, next to every baseline
 * of the last evaluation (eval_report, evaluate.h) and the trivial line
 * (1 for normalised squared error, chance for accuracies).
 *
 *   ╭─ ICL error vs #examples (step 2000) ──╮
 *   │  1┤╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌╌ │
 *   │0.5┤⠈⠢⡀ ⠑⠢⣀                            │
 *   │  0┤    ⠑⠒⠤⣀⣀⣀⣀⣀⣀⣀⣀⣀⣀⣀⣀               │
 *   │    0    5    10    15                 │
 *   │k 19  model 0.012  least_squares 0.0…  │
 *   ╰────────────────────────────────────────╯
 *
 * The bottom rows are both legend and readout: each curve's name in its
 * colour and its exact value at the cursor (or at the last position when the
 * cursor is off), wrapped onto at most two rows. Baselines are drawn first
 * and the model on top; on terminals without colours the baselines are
 * dashed so the curves stay apart.
 *
 * Keys: <- -> move the cursor by one position, Home / End, l log/linear,
 * b shows or hides the band.
 *
 * Not here: the evaluation (evaluate.c), which the REPL runs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/panel.h"
#include "tui/plot.h"

typedef struct {
    panel base;
    int has_eval;
    int n_curves;
    int positions;                       /* P */
    int cap;                             /* positions allocated */
    char names[EVAL_MAX_CURVES][EVAL_NAME_MAX];
    double *x;                           /* (P) 0, 1, ..., P-1 */
    double *mean[EVAL_MAX_CURVES];       /* (P) per curve */
    double *lo, *hi;                     /* (P) the model's band */
    double reference;
    task_metric_kind metric;
    long step;
    int log_y, show_band;
    double cursor;                       /* position under the cursor; NaN = off */
} icl_panel;

/* Make room for P positions; on failure the panel shows no data. */
static int reserve(icl_panel *ip, int P) {
    if (P <= ip->cap) return 1;
    double *bufs[EVAL_MAX_CURVES + 3];
    int nb = 0;
    bufs[nb++] = realloc(ip->x, sizeof(double) * P);
    if (bufs[0]) ip->x = bufs[0];
    for (int c = 0; c < EVAL_MAX_CURVES; c++) {
        double *b = realloc(ip->mean[c], sizeof(double) * P);
        if (b) ip->mean[c] = b;
        bufs[nb++] = b;
    }
    double *l = realloc(ip->lo, sizeof(double) * P);
    if (l) ip->lo = l;
    double *h = realloc(ip->hi, sizeof(double) * P);
    if (h) ip->hi = h;
    bufs[nb++] = l;
    bufs[nb++] = h;
    for (int i = 0; i < nb; i++)
        if (!bufs[i]) return 0;
    ip->cap = P;
    return 1;
}

static void icl_update(panel *p, const tui_source *src) {
    icl_panel *ip = (icl_panel *)p;
    const eval_report *r = src->eval;
    ip->has_eval = 0;
    if (!r || r->n_curves < 1 || r->positions < 1 || !reserve(ip, r->positions)) return;
    int P = r->positions;
    ip->n_curves = r->n_curves > EVAL_MAX_CURVES ? EVAL_MAX_CURVES : r->n_curves;
    ip->positions = P;
    for (int k = 0; k < P; k++) ip->x[k] = k;
    for (int c = 0; c < ip->n_curves; c++) {
        snprintf(ip->names[c], EVAL_NAME_MAX, "%s", r->names[c]);
        const eval_curve *cv = &r->curves[c];
        for (int k = 0; k < P; k++) ip->mean[c][k] = cv->mean && k < cv->positions ? cv->mean[k] : NAN;
    }
    const eval_curve *m = &r->curves[0];
    for (int k = 0; k < P; k++) {
        ip->lo[k] = m->lo && k < m->positions ? m->lo[k] : NAN;
        ip->hi[k] = m->hi && k < m->positions ? m->hi[k] : NAN;
    }
    ip->reference = r->reference;
    ip->metric = r->metric;
    ip->step = src->eval_step;
    ip->has_eval = 1;
}

/* Series in drawing order: baselines, then the model on top. [out] s. */
static int curves(const icl_panel *ip, const canvas *c, plot_series *s) {
    int n = 0;
    for (int k = 1; k < ip->n_curves; k++)
        s[n++] = (plot_series){ip->names[k], ip->x, ip->mean[k], NULL, NULL, ip->positions,
                               (tui_role)(TUI_ROLE_BASELINE_1 + (k - 1) % 4), c->colors < 16 ? 1 + (k - 1) % 3 : 0};
    s[n++] = (plot_series){ip->names[0], ip->x, ip->mean[0], ip->show_band ? ip->lo : NULL,
                           ip->show_band ? ip->hi : NULL, ip->positions, TUI_ROLE_MODEL_CURVE, 0};
    return n;
}

/* Legend and readout from row y, at most `rows` rows: "k 19  model 0.012 ...",
 * model first. Returns the rows used. */
static int draw_legend(canvas *c, int y, int rows, const plot_series *s, int ns, double x) {
    char v[32], item[96];
    int col = 0, row = 0, k = (int)lround(x);
    plot_format_value(k, v, sizeof v);
    col += canvas_text(c, 0, y, "k ", TUI_ROLE_DIM, 0);
    col += canvas_text(c, col, y, v, TUI_ROLE_CURSOR, 0);
    for (int t = 0; t < ns; t++) {
        const plot_series *cs = &s[(ns - 1 + t) % ns]; /* the model (last) first */
        double val = k >= 0 && k < cs->n ? cs->y[k] : NAN;
        plot_format_value(val, v, sizeof v);
        int w = snprintf(item, sizeof item, "%s %s", cs->name, v) + 2;
        if (col > 0 && col + w > c->w) { /* wrap */
            if (row + 1 >= rows) {
                canvas_text(c, c->w - 1, y + row, "\xe2\x80\xa6", TUI_ROLE_DIM, 0);
                break;
            }
            row++;
            col = -2;
        }
        col += 2;
        col += canvas_text(c, col, y + row, cs->name, cs->role, 0);
        col += canvas_text(c, col, y + row, " ", TUI_ROLE_DIM, 0);
        col += canvas_text(c, col, y + row, v, TUI_ROLE_TEXT, TUI_ATTR_BOLD);
    }
    return row + 1;
}

static void icl_draw(panel *p, canvas *c, int focused) {
    icl_panel *ip = (icl_panel *)p;
    char title[96];
    /* accuracies are named as such: "ICL token accuracy vs #examples" */
    const char *what = !ip->has_eval || ip->metric == TASK_METRIC_SQERR ? "error" : eval_metric_label(ip->metric);
    if (ip->has_eval) snprintf(title, sizeof title, "ICL %s vs #examples (step %ld)", what, ip->step);
    else snprintf(title, sizeof title, "ICL %s vs #examples", what);
    canvas in = panel_frame(c, title, focused);
    if (!ip->has_eval) {
        panel_message(&in, "no data: evaluate with tr:eval()");
        return;
    }
    plot_series s[EVAL_MAX_CURVES];
    int ns = curves(ip, &in, s);
    double x = isnan(ip->cursor) ? ip->positions - 1 : ip->cursor;
    if (in.h < 4 || in.w < 16) {
        draw_legend(&in, 0, in.h, s, ns, x);
        return;
    }
    int legend_rows = in.h >= 8 ? 2 : 1;
    canvas area = canvas_view(&in, 0, 0, in.w, in.h - legend_rows);
    plot_opts o;
    plot_opts_default(&o);
    o.log_y = ip->log_y;
    o.ref_y = ip->reference;
    o.cursor_x = ip->cursor;
    o.x_step_min = 1; /* numbers of examples */
    if (!ip->log_y) o.y_min = 0; /* errors and accuracies start at 0 */
    plot_frame f;
    plot_lines(&area, &o, s, ns, &f);
    if (f.w == 0) panel_message(&area, "no finite values to plot");
    draw_legend(&in, in.h - legend_rows, legend_rows, s, ns, x);
}

static int icl_key(panel *p, int key) {
    icl_panel *ip = (icl_panel *)p;
    switch (key) {
    case 'l': ip->log_y = !ip->log_y; return PANEL_HANDLED | PANEL_REDRAW;
    case 'b': ip->show_band = !ip->show_band; return PANEL_HANDLED | PANEL_REDRAW;
    case PANEL_KEY_HOME: ip->cursor = 0; return PANEL_HANDLED | PANEL_REDRAW;
    case PANEL_KEY_END: ip->cursor = NAN; return PANEL_HANDLED | PANEL_REDRAW;
    case PANEL_KEY_LEFT:
    case PANEL_KEY_RIGHT: {
        if (ip->positions < 1) return PANEL_HANDLED;
        double k = isnan(ip->cursor) ? ip->positions - 1 + (key == PANEL_KEY_LEFT) : ip->cursor;
        k += key == PANEL_KEY_LEFT ? -1 : 1;
        ip->cursor = k >= ip->positions ? NAN : k < 0 ? 0 : k;
        return PANEL_HANDLED | PANEL_REDRAW;
    }
    default: return 0;
    }
}

static void icl_destroy(panel *p) {
    icl_panel *ip = (icl_panel *)p;
    free(ip->x);
    for (int c = 0; c < EVAL_MAX_CURVES; c++) free(ip->mean[c]);
    free(ip->lo);
    free(ip->hi);
    free(ip);
}

static const panel_class icl_class = {
    "icl", "<- -> cursor  Home/End  l log/linear  b band", 24, 6, icl_update, icl_draw, icl_key, icl_destroy,
};

panel *panel_icl_new(void) {
    icl_panel *ip = calloc(1, sizeof *ip);
    if (!ip) {
        icl_fail(ICL_ERR_NOMEM, "panel icl: out of memory");
        return NULL;
    }
    ip->base.cls = &icl_class;
    ip->show_band = 1;
    ip->cursor = NAN;
    ip->reference = NAN;
    return &ip->base;
}
