/*
 * plot.c - braille line plots (plot.h): ranges, ticks, axes, the dot
 * lines, bands, a reference line and the cursor.
 *
 * Drawing order: the dot lines first (each dot ORed into its cell's braille
 * pattern, the cell taking the series' role), then the reference line and
 * the cursor in cells the lines left blank, then the bands as a background
 * role (which keeps every glyph). The dots are kept in the canvas cells
 * themselves, decoded from and encoded to the braille code point, so the
 * plot needs no buffer of its own.
 *
 * Coordinates: the dot area is DW x DH dots (2 x 4 per cell, 1 x 2 in ASCII
 * mode); x_lo maps to dot column 0 and x_hi to DW - 1, y_hi to dot row 0 and
 * y_lo to DH - 1 (in log10 on a log axis). Segments are clipped to the dot
 * area before they are walked, so far-away points cost nothing.
 *
 * Not here: heatmaps (plot_heatmap.c).
 */
#include "tui/plot.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_TICKS 24
#define LABEL_MAX 10 /* widest y tick label kept */

void plot_opts_default(plot_opts *o) {
    memset(o, 0, sizeof *o);
    o->y_min = o->y_max = o->x_min = o->x_max = NAN;
    o->ref_y = o->cursor_x = NAN;
    o->axes = 1;
}

/* ---- numbers ------------------------------------------------------------------- */

/* "1e-04" -> "1e-4", "2.5e+06" -> "2.5e6": exponents as people write them. */
static void compact_exponent(char *s) {
    char *e = strchr(s, 'e');
    if (!e) return;
    char *p = e + 1, *q = e + 1;
    if (*p == '+') p++;
    else if (*p == '-') *q++ = *p++;
    while (*p == '0' && p[1]) p++;
    memmove(q, p, strlen(p) + 1);
}

/* Decimals that show every multiple of `step` exactly (0.25 -> 2), at most 4. */
static int decimals_for(double step) {
    int d = 0;
    for (double s = step; d < 4 && fabs(s - round(s)) > 1e-6 * fmax(s, 1.0); s *= 10) d++;
    return d;
}

void plot_format_tick(double v, double step, char *buf, size_t n) {
    double a = fabs(v);
    if (!isfinite(v)) {
        snprintf(buf, n, "%s", isnan(v) ? "-" : v > 0 ? "inf" : "-inf");
        return;
    }
    if (a == 0 || (step > 0 && a < step * 1e-9)) {
        snprintf(buf, n, "0");
        return;
    }
    if (a >= 1e4) { /* 15k, 2.5M */
        static const char suffix[] = {'k', 'M', 'G', 'T'};
        int k = 0;
        double unit = 1e3;
        while (k < 3 && a >= unit * 1e3 * 0.9995) {
            unit *= 1e3;
            k++;
        }
        int d = step > 0 ? decimals_for(step / unit) : fmod(a / unit, 1.0) < 1e-9 ? 0 : 1;
        if (d > 3) d = 3;
        snprintf(buf, n, "%.*f%c", d, v / unit, suffix[k]);
        return;
    }
    if (a < 1e-3 || (step > 0 && step < 1e-4)) {
        double mant = v / pow(10.0, floor(log10(a)));
        snprintf(buf, n, fabs(mant - round(mant)) < 1e-6 ? "%.0e" : "%.1e", v);
        compact_exponent(buf);
        return;
    }
    if (step > 0) {
        snprintf(buf, n, "%.*f", decimals_for(step), v);
        return;
    }
    snprintf(buf, n, "%.3g", v);
    compact_exponent(buf);
}

void plot_format_value(double v, char *buf, size_t n) {
    if (isnan(v)) snprintf(buf, n, "-");
    else snprintf(buf, n, "%.6g", v);
}

/* 1, 2 or 5 times a power of ten, close to span / target. */
static double nice_step(double span, int target) {
    if (!(span > 0)) return 1;
    double raw = span / (target > 0 ? target : 1), mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
}

/* ---- data --------------------------------------------------------------------------- */

static double px(const plot_series *s, int i) { return s->x ? s->x[i] : (double)i; }
static int usable(double v, int log_y) { return isfinite(v) && (!log_y || v > 0); }
static double tf(double v, int log_y) { return log_y ? log10(v) : v; }

int plot_nearest(const plot_series *s, double x) {
    int best = -1;
    double bd = INFINITY;
    for (int i = 0; s && s->y && i < s->n; i++) {
        if (!isfinite(s->y[i]) || !isfinite(px(s, i))) continue;
        double d = fabs(px(s, i) - x);
        if (d < bd) {
            bd = d;
            best = i;
        }
    }
    return best;
}

int plot_readout(char *buf, size_t n, const plot_series *s, int n_series, double x, const char *x_name) {
    size_t len = 0;
    if (n == 0) return 0;
    buf[0] = '\0';
    char v[32];
    for (int k = 0; k < n_series; k++) { /* x of the first series that has a point */
        int i = plot_nearest(&s[k], x);
        if (i < 0) continue;
        plot_format_value(px(&s[k], i), v, sizeof v);
        len += (size_t)snprintf(buf, n, "%s %s", x_name ? x_name : "x", v);
        break;
    }
    for (int k = 0; k < n_series && len < n; k++) {
        int i = plot_nearest(&s[k], x);
        plot_format_value(i >= 0 ? s[k].y[i] : NAN, v, sizeof v);
        len += (size_t)snprintf(buf + len, n - len, "%s%s %s", len ? "  " : "", s[k].name ? s[k].name : "?", v);
    }
    return (int)(len < n ? len : n - 1);
}

/* ---- the dot grid ------------------------------------------------------------------------- */

typedef struct {
    canvas *c;
    int x0, y0, w, h; /* dot area in cells */
    int cw, ch;       /* dots per cell */
    int dw, dh;       /* dots */
    double xlo, xhi, ylo, yhi; /* ylo, yhi transformed (log10 on a log axis) */
    int log_y;
} grid;

static double dot_x(const grid *g, double x) { return (x - g->xlo) / (g->xhi - g->xlo) * (g->dw - 1); }
static double dot_y(const grid *g, double ty) { return (g->yhi - ty) / (g->yhi - g->ylo) * (g->dh - 1); }

static int cell_bits(const grid *g, const tui_cell *cell) {
    const unsigned char *u = (const unsigned char *)cell->glyph;
    if (g->c->ascii) return u[0] == '\'' ? 1 : u[0] == '.' ? 2 : u[0] == ':' ? 3 : 0;
    if (u[0] == 0xE2 && (u[1] & 0xFC) == 0xA0 && u[2]) return ((u[1] & 3) << 6) | (u[2] & 0x3F);
    return 0;
}

static void set_dot(grid *g, int dx, int dy, tui_role role) {
    if (dx < 0 || dy < 0 || dx >= g->dw || dy >= g->dh) return;
    int cx = g->x0 + dx / g->cw, cy = g->y0 + dy / g->ch;
    const tui_cell *cell = canvas_cell(g->c, cx, cy);
    if (!cell) return;
    int bits = cell_bits(g, cell);
    char glyph[4];
    if (g->c->ascii) {
        bits |= (dy % 2) ? 2 : 1;
        glyph[0] = " '.:"[bits];
        glyph[1] = '\0';
    } else {
        static const unsigned char braille[2][4] = {{0x01, 0x02, 0x04, 0x40}, {0x08, 0x10, 0x20, 0x80}};
        bits |= braille[dx % 2][dy % 4];
        glyph[0] = (char)0xE2;
        glyph[1] = (char)(0xA0 | (bits >> 6));
        glyph[2] = (char)(0x80 | (bits & 0x3F));
        glyph[3] = '\0';
    }
    canvas_put(g->c, cx, cy, glyph, role, 0);
}

/* Liang-Barsky: clip the segment to [-0.5, dw - 0.5] x [-0.5, dh - 0.5];
 * 0 if nothing is left. */
static int clip_segment(const grid *g, double *x0, double *y0, double *x1, double *y1) {
    double t0 = 0, t1 = 1, dx = *x1 - *x0, dy = *y1 - *y0;
    const double p[4] = {-dx, dx, -dy, dy};
    const double q[4] = {*x0 + 0.5, g->dw - 0.5 - *x0, *y0 + 0.5, g->dh - 0.5 - *y0};
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0) return 0;
        } else {
            double r = q[i] / p[i];
            if (p[i] < 0) {
                if (r > t1) return 0;
                if (r > t0) t0 = r;
            } else {
                if (r < t0) return 0;
                if (r < t1) t1 = r;
            }
        }
    }
    double ax = *x0 + t0 * dx, ay = *y0 + t0 * dy;
    *x1 = *x0 + t1 * dx;
    *y1 = *y0 + t1 * dy;
    *x0 = ax;
    *y0 = ay;
    return 1;
}

/* A dot line from (x0, y0) to (x1, y1) in dot coordinates (Bresenham).
 * *dash_count advances per dot so dashes run on along the series. */
static void draw_segment(grid *g, double x0, double y0, double x1, double y1, tui_role role, int dash,
                         long *dash_count) {
    if (!clip_segment(g, &x0, &y0, &x1, &y1)) return;
    int ax = (int)lround(x0), ay = (int)lround(y0), bx = (int)lround(x1), by = (int)lround(y1);
    int sx = ax < bx ? 1 : -1, sy = ay < by ? 1 : -1;
    int ddx = bx > ax ? bx - ax : ax - bx, ddy = by > ay ? ay - by : by - ay;
    int err = ddx + ddy;
    for (;;) {
        if (dash <= 0 || (*dash_count / dash) % 2 == 0) set_dot(g, ax, ay, role);
        (*dash_count)++;
        if (ax == bx && ay == by) break;
        int e2 = 2 * err;
        if (e2 >= ddy) {
            err += ddy;
            ax += sx;
        }
        if (e2 <= ddx) {
            err += ddx;
            ay += sy;
        }
    }
}

static int draw_series(grid *g, const plot_series *s) {
    int have = 0, points = 0;
    double lx = 0, ly = 0;
    long dash_count = 0;
    for (int i = 0; i < s->n; i++) {
        double x = px(s, i), y = s->y[i];
        if (!isfinite(x) || !usable(y, g->log_y)) {
            have = 0; /* a gap */
            continue;
        }
        double dx = dot_x(g, x), dy = dot_y(g, tf(y, g->log_y));
        if (dx >= -0.5 && dx <= g->dw - 0.5 && dy >= -0.5 && dy <= g->dh - 0.5) points++;
        if (have) draw_segment(g, lx, ly, dx, dy, s->role, s->dash, &dash_count);
        else draw_segment(g, dx, dy, dx, dy, s->role, s->dash, &dash_count);
        lx = dx;
        ly = dy;
        have = 1;
    }
    return points;
}

/* The band of s as a background role: per cell column, the band at the
 * column's centre x, interpolated between the points around it. */
static void draw_band(grid *g, const plot_series *s) {
    const char *stipple = g->c->ascii ? "," : "\xe2\x96\x91"; /* U+2591 light shade */
    int j = 0;
    for (int col = 0; col < g->w; col++) {
        double x = g->xlo + ((col * g->cw + 0.5 * (g->cw - 1)) / (g->dw > 1 ? g->dw - 1 : 1)) * (g->xhi - g->xlo);
        while (j + 1 < s->n && px(s, j + 1) < x) j++;
        int i0 = j, i1 = j + 1 < s->n ? j + 1 : j;
        double x0 = px(s, i0), x1 = px(s, i1);
        if (!(x >= x0 - 1e-12 && x <= x1 + 1e-12) && !(s->n == 1 && fabs(x - x0) < 1e-12)) continue;
        if (!usable(s->lo[i0], g->log_y) || !usable(s->hi[i0], g->log_y) || !usable(s->lo[i1], g->log_y) ||
            !usable(s->hi[i1], g->log_y))
            continue;
        double f = x1 > x0 ? (x - x0) / (x1 - x0) : 0;
        double lo = tf(s->lo[i0], g->log_y) * (1 - f) + tf(s->lo[i1], g->log_y) * f;
        double hi = tf(s->hi[i0], g->log_y) * (1 - f) + tf(s->hi[i1], g->log_y) * f;
        double dtop = dot_y(g, hi), dbot = dot_y(g, lo);
        if (dtop > dbot) {
            double t = dtop;
            dtop = dbot;
            dbot = t;
        }
        if (dbot < -0.5 || dtop > g->dh - 0.5) continue; /* entirely off the area */
        int r0 = (int)lround(fmax(dtop, 0)) / g->ch, r1 = (int)lround(fmin(dbot, g->dh - 1)) / g->ch;
        for (int r = r0; r <= r1; r++) {
            tui_cell *cell = canvas_cell(g->c, g->x0 + col, g->y0 + r);
            if (!cell) continue;
            if (g->c->colors < 16 && cell->glyph[0] == ' ')
                canvas_put(g->c, g->x0 + col, g->y0 + r, stipple, s->role, TUI_ATTR_DIM);
            canvas_set_bg_role(g->c, g->x0 + col, g->y0 + r, TUI_ROLE_BAND);
        }
    }
}

/* ---- ranges and ticks ---------------------------------------------------------------------- */

/* The data range of x and (transformed) y over every series, band and the
 * reference line; fixed ends of o override. Returns 0 if there is no data. */
static int ranges(const plot_opts *o, const plot_series *s, int ns, double r[4]) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    int ly = o->log_y;
    for (int k = 0; k < ns; k++) {
        for (int i = 0; s[k].y && i < s[k].n; i++) {
            double x = px(&s[k], i);
            if (!isfinite(x) || !usable(s[k].y[i], ly)) continue;
            if (isfinite(o->x_min) && x < o->x_min) continue;
            if (isfinite(o->x_max) && x > o->x_max) continue;
            xlo = fmin(xlo, x);
            xhi = fmax(xhi, x);
            double v[3] = {s[k].y[i], s[k].lo ? s[k].lo[i] : NAN, s[k].hi ? s[k].hi[i] : NAN};
            for (int j = 0; j < 3; j++)
                if (usable(v[j], ly)) {
                    ylo = fmin(ylo, tf(v[j], ly));
                    yhi = fmax(yhi, tf(v[j], ly));
                }
        }
    }
    if (!(xlo <= xhi)) return 0;
    if (usable(o->ref_y, ly)) {
        ylo = fmin(ylo, tf(o->ref_y, ly));
        yhi = fmax(yhi, tf(o->ref_y, ly));
    }
    if (isfinite(o->x_min)) xlo = o->x_min;
    if (isfinite(o->x_max)) xhi = o->x_max;
    if (usable(o->y_min, ly)) ylo = tf(o->y_min, ly);
    if (usable(o->y_max, ly)) yhi = tf(o->y_max, ly);
    if (!(xhi > xlo)) { /* one x: give it room */
        xlo -= 0.5;
        xhi += 0.5;
    }
    if (!(yhi > ylo)) { /* a flat line sits in the middle */
        double pad = ly ? 0.5 : (ylo != 0 ? 0.5 * fabs(ylo) : 0.5);
        ylo -= pad;
        yhi += pad;
    }
    r[0] = xlo;
    r[1] = xhi;
    r[2] = ylo;
    r[3] = yhi;
    return 1;
}

/* Ticks of a linear axis over [lo, hi], about `target` of them, spaced at
 * least min_step; [out] *step. Returns the count. */
static int linear_ticks(double lo, double hi, int target, double min_step, double *ticks, double *step) {
    double st = nice_step(hi - lo, target);
    if (st < min_step) st = min_step;
    int n = 0;
    for (double t = ceil(lo / st - 1e-9) * st; t <= hi + st * 1e-9 && n < MAX_TICKS; t += st)
        ticks[n++] = fabs(t) < st * 1e-9 ? 0.0 : t;
    *step = st;
    return n;
}

/* Ticks of a log axis over [lo, hi] (log10 values), as actual values:
 * decades, then 2 and 5 times them if that gives fewer than 2, then the
 * two ends. */
static int log_ticks(double lo, double hi, int target, double *ticks) {
    int n = 0;
    int stride = (int)ceil((floor(hi) - ceil(lo) + 1) / (double)(target > 1 ? target : 1));
    if (stride < 1) stride = 1;
    for (double e = ceil(lo - 1e-9); e <= hi + 1e-9 && n < MAX_TICKS; e += stride) ticks[n++] = pow(10.0, e);
    if (n < 2) {
        n = 0;
        const double mult[3] = {1, 2, 5};
        for (double e = floor(lo); e <= ceil(hi) && n < MAX_TICKS; e++)
            for (int k = 0; k < 3 && n < MAX_TICKS; k++) {
                double v = mult[k] * pow(10.0, e), lv = log10(v);
                if (lv >= lo - 1e-9 && lv <= hi + 1e-9) ticks[n++] = v;
            }
    }
    if (n < 2) {
        ticks[0] = pow(10.0, lo);
        ticks[1] = pow(10.0, hi);
        n = 2;
    }
    return n;
}

/* ---- the plot ---------------------------------------------------------------------------------- */

void plot_lines(canvas *c, const plot_opts *o, const plot_series *s, int n_series, plot_frame *frame) {
    plot_frame f = {0, 0, 0, 0, NAN, NAN, NAN, NAN, -1, 0};
    if (frame) *frame = f;
    if (n_series > PLOT_MAX_SERIES) n_series = PLOT_MAX_SERIES;
    canvas_fill(c, 0, 0, c->w, c->h, " ", TUI_ROLE_DEFAULT, 0);
    double r[4];
    if (c->w < 1 || c->h < 1 || !ranges(o, s, n_series, r)) return;
    grid g = {c, 0, 0, c->w, c->h, c->ascii ? 1 : 2, c->ascii ? 2 : 4, 0, 0, r[0], r[1], r[2], r[3], o->log_y};

    /* y ticks and labels first: their width sets the left margin */
    int axes = o->axes && c->w >= 12 && c->h >= 3;
    double yt[MAX_TICKS], ystep = 0, xt[MAX_TICKS], xstep = 0;
    char ylab[MAX_TICKS][16];
    int nyt = 0, lw = 0;
    if (axes) {
        g.h = c->h - 1;
        int target = g.h / 3 + 1;
        nyt = o->log_y ? log_ticks(r[2], r[3], target, yt) : linear_ticks(r[2], r[3], target, 0, yt, &ystep);
        for (int i = 0; i < nyt; i++) {
            plot_format_tick(yt[i], ystep, ylab[i], sizeof ylab[i]);
            int wl = tui_text_width(ylab[i]);
            if (wl > lw) lw = wl;
        }
        if (lw > LABEL_MAX) lw = LABEL_MAX;
        g.x0 = lw + 1;
        g.w = c->w - g.x0;
    }
    g.dw = g.w * g.cw;
    g.dh = g.h * g.ch;
    if (g.dw < 2 || g.dh < 2) return;

    /* lines, in order: later series on top */
    for (int k = 0; k < n_series; k++)
        if (s[k].y && s[k].n > 0) f.points += draw_series(&g, &s[k]);

    /* reference line and cursor, where the lines left room */
    if (usable(o->ref_y, o->log_y)) {
        double dy = dot_y(&g, tf(o->ref_y, o->log_y));
        int row = (int)lround(dy) / g.ch;
        if (dy >= -0.5 && dy <= g.dh - 0.5)
            for (int col = 0; col < g.w; col++) {
                const tui_cell *cell = canvas_cell(c, g.x0 + col, g.y0 + row);
                if (cell && cell->glyph[0] == ' ')
                    canvas_put(c, g.x0 + col, g.y0 + row, "\xe2\x95\x8c", TUI_ROLE_DIM, 0); /* U+254C */
            }
    }
    if (isfinite(o->cursor_x)) {
        double dx = dot_x(&g, o->cursor_x);
        if (dx >= -0.5 && dx <= g.dw - 0.5) {
            f.cursor_col = g.x0 + (int)lround(dx) / g.cw;
            for (int row = 0; row < g.h; row++) {
                const tui_cell *cell = canvas_cell(c, f.cursor_col, g.y0 + row);
                if (cell && cell->glyph[0] == ' ')
                    canvas_put(c, f.cursor_col, g.y0 + row, "\xe2\x94\x82", TUI_ROLE_CURSOR, 0); /* U+2502 */
            }
        }
    }
    for (int k = 0; k < n_series; k++)
        if (s[k].lo && s[k].hi && s[k].n > 0) draw_band(&g, &s[k]);

    if (axes) {
        /* y axis: a line with a tick mark and a right-aligned label per tick */
        int used[256] = {0};
        canvas_vline(c, lw, 0, g.h, TUI_ROLE_DIM);
        for (int i = 0; i < nyt; i++) {
            double dy = dot_y(&g, tf(yt[i], o->log_y));
            int row = (int)lround(dy) / g.ch;
            if (dy < -0.5 || dy > g.dh - 0.5 || row >= 256 || used[row]) continue;
            used[row] = 1;
            canvas_put(c, lw, row, "\xe2\x94\xa4", TUI_ROLE_DIM, 0); /* U+2524 */
            int wl = tui_text_width(ylab[i]);
            canvas_text_max(c, wl < lw ? lw - wl : 0, row, lw, ylab[i], TUI_ROLE_DIM, 0);
        }
        /* x axis: labels centred under their ticks, never overlapping */
        int nxt = linear_ticks(r[0], r[1], g.w / 10 + 1, o->x_step_min, xt, &xstep), last_end = -1;
        for (int i = 0; i < nxt; i++) {
            char lab[16];
            plot_format_tick(xt[i], xstep, lab, sizeof lab);
            int wl = tui_text_width(lab);
            int col = g.x0 + (int)lround(dot_x(&g, xt[i])) / g.cw, start = col - wl / 2;
            if (start < g.x0 - 1) start = g.x0 - 1;
            if (start + wl > c->w) start = c->w - wl;
            if (start <= last_end) continue;
            canvas_text(c, start, c->h - 1, lab, TUI_ROLE_DIM, 0);
            last_end = start + wl;
        }
    }

    f.x = g.x0;
    f.y = g.y0;
    f.w = g.w;
    f.h = g.h;
    f.x_lo = r[0];
    f.x_hi = r[1];
    f.y_lo = o->log_y ? pow(10.0, r[2]) : r[2];
    f.y_hi = o->log_y ? pow(10.0, r[3]) : r[3];
    if (frame) *frame = f;
}
