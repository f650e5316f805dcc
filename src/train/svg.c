/*
 * svg.c - the line-chart writer of svg.h.
 *
 * Layout (pixels): the title on top, the plot area in the middle with the
 * y axis on its left and the x axis below, and the legend in a column on the
 * right. Drawing order, back to front: grid, bands, reference lines, series,
 * axes, legend, so the curves stay visible over the shaded intervals. Data
 * are mapped to pixels once and printed with two decimals; the plot area is
 * a clipPath, so values outside a fixed y range are cut at its edge.
 *
 * Not here: any statistics (eval.c) or what a chart shows (evaluate.c).
 */
#include "train/svg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Okabe & Ito (2008), the colour-blind-safe palette; yellow (#F0E442) is
 * left out because it is unreadable as a thin line on white. */
static const char *const palette[] = {"#0072B2", "#D55E00", "#009E73", "#E69F00",
                                      "#CC79A7", "#56B4E9", "#000000", "#999999"};
#define N_PALETTE ((int)(sizeof palette / sizeof palette[0]))
/* After each round of the palette the lines get a dash pattern. */
static const char *const dashes[] = {NULL, "7,3", "2,2"};

#define MARGIN_LEFT 72
#define MARGIN_TOP 44
#define MARGIN_BOTTOM 56
#define LEGEND_WIDTH 210
#define MAX_TICKS 16

/* Copy text, cut to SVG_TEXT_MAX - 1 bytes without splitting a UTF-8
 * sequence. */
static void set_text(char *dst, const char *src) {
    size_t n = src ? strlen(src) : 0;
    if (n > SVG_TEXT_MAX - 1) {
        n = SVG_TEXT_MAX - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) n--;
    }
    if (n) memcpy(dst, src, n);
    dst[n] = '\0';
}

void svg_chart_init(svg_chart *c, const char *title, const char *x_label, const char *y_label) {
    memset(c, 0, sizeof *c);
    set_text(c->title, title);
    set_text(c->x_label, x_label);
    set_text(c->y_label, y_label);
    c->y_min = c->y_max = NAN;
    c->width = 820;
    c->height = 480;
}

void svg_chart_free(svg_chart *c) {
    if (!c) return;
    for (int i = 0; i < c->n_series; i++) {
        svg_series *s = &c->series[i];
        free(s->x);
        free(s->y);
        free(s->lo);
        free(s->hi);
    }
    c->n_series = c->n_hlines = 0;
}

void svg_chart_set_scale(svg_chart *c, svg_scale x_scale, svg_scale y_scale) {
    c->x_scale = x_scale;
    c->y_scale = y_scale;
}

void svg_chart_set_y_range(svg_chart *c, double y_min, double y_max) {
    c->y_min = y_min;
    c->y_max = y_max;
}

static double *dup_doubles(const double *v, int n) {
    double *d = malloc((n > 0 ? (size_t)n : 1) * sizeof *d);
    if (d && n > 0) memcpy(d, v, (size_t)n * sizeof *d);
    return d;
}

icl_status svg_chart_add_series(svg_chart *c, const char *name, const double *x, const double *y, const double *lo,
                                const double *hi, int n) {
    if (c->n_series >= SVG_MAX_SERIES)
        return icl_fail(ICL_ERR_ARG, "svg: a chart holds at most %d series", SVG_MAX_SERIES);
    if (n < 0 || (n > 0 && (!x || !y)))
        return icl_fail(ICL_ERR_ARG, "svg: series '%s' needs x and y arrays of n >= 0 points (n = %d)",
                        name ? name : "", n);
    if ((lo == NULL) != (hi == NULL))
        return icl_fail(ICL_ERR_ARG, "svg: series '%s': give both band arrays (lo and hi) or neither",
                        name ? name : "");
    svg_series *s = &c->series[c->n_series];
    memset(s, 0, sizeof *s);
    set_text(s->name, name);
    s->n = n;
    s->x = dup_doubles(x, n);
    s->y = dup_doubles(y, n);
    if (lo) {
        s->lo = dup_doubles(lo, n);
        s->hi = dup_doubles(hi, n);
    }
    if (!s->x || !s->y || (lo && (!s->lo || !s->hi))) {
        free(s->x);
        free(s->y);
        free(s->lo);
        free(s->hi);
        memset(s, 0, sizeof *s);
        return icl_fail(ICL_ERR_NOMEM, "svg: out of memory for series '%s' of %d points", name ? name : "", n);
    }
    c->n_series++;
    return ICL_OK;
}

icl_status svg_chart_add_hline(svg_chart *c, const char *label, double y) {
    if (c->n_hlines >= SVG_MAX_HLINES)
        return icl_fail(ICL_ERR_ARG, "svg: a chart holds at most %d reference lines", SVG_MAX_HLINES);
    if (!isfinite(y)) return icl_fail(ICL_ERR_ARG, "svg: reference line '%s' at a non-finite y", label ? label : "");
    set_text(c->hlines[c->n_hlines].label, label);
    c->hlines[c->n_hlines].y = y;
    c->n_hlines++;
    return ICL_OK;
}

/* ---- axes ------------------------------------------------------------------ */

typedef struct {
    svg_scale scale;
    double lo, hi;        /* data range shown (log: > 0) */
    double pix0, pix1;    /* pixels of lo and hi */
    int n_ticks;
    double ticks[MAX_TICKS];
    double step;          /* linear tick step (for label precision) */
} axis;

static int usable(double v, svg_scale s) { return isfinite(v) && (s == SVG_SCALE_LINEAR || v > 0.0); }

static double tv(const axis *a, double v) { return a->scale == SVG_SCALE_LOG ? log10(v) : v; }

static double to_pix(const axis *a, double v) {
    double t0 = tv(a, a->lo), t1 = tv(a, a->hi);
    double p = a->pix0 + (tv(a, v) - t0) / (t1 - t0) * (a->pix1 - a->pix0);
    /* Far outside a fixed range: keep the number printable; the clip hides it. */
    if (p > 1e6) p = 1e6;
    if (p < -1e6) p = -1e6;
    return p;
}

/* 1, 2 or 5 times a power of ten, close to span / target. */
static double nice_step(double span, int target) {
    double raw = span / target, mag = pow(10.0, floor(log10(raw))), f = raw / mag;
    return (f < 1.5 ? 1.0 : f < 3.0 ? 2.0 : f < 7.0 ? 5.0 : 10.0) * mag;
}

/* Settle the range [lo, hi] of an axis from the data range [dlo, dhi]; ends
 * given as fixed (not NaN) stay, automatic ends are rounded outwards to a
 * tick when `round_out`. Then place the ticks. */
static void axis_setup(axis *a, svg_scale scale, double dlo, double dhi, double fix_lo, double fix_hi, int round_out) {
    a->scale = scale;
    int have = isfinite(dlo) && isfinite(dhi);
    double lo = usable(fix_lo, scale) ? fix_lo : (have ? dlo : (scale == SVG_SCALE_LOG ? 0.1 : 0.0));
    double hi = usable(fix_hi, scale) ? fix_hi : (have ? dhi : 1.0);
    if (usable(fix_lo, scale) && !usable(fix_hi, scale) && hi <= lo) hi = scale == SVG_SCALE_LOG ? lo * 10 : lo + 1;
    if (usable(fix_hi, scale) && !usable(fix_lo, scale) && lo >= hi) lo = scale == SVG_SCALE_LOG ? hi / 10 : hi - 1;
    if (hi < lo) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    if (hi == lo) { /* a flat curve: give it room */
        if (scale == SVG_SCALE_LOG) {
            lo /= 3.0;
            hi *= 3.0;
        } else {
            double pad = lo != 0.0 ? 0.5 * fabs(lo) : 0.5;
            lo -= pad;
            hi += pad;
        }
    }
    a->n_ticks = 0;
    if (scale == SVG_SCALE_LOG) {
        double e0 = floor(log10(lo)), e1 = ceil(log10(hi));
        if (round_out && !usable(fix_lo, scale)) lo = pow(10.0, e0);
        if (round_out && !usable(fix_hi, scale)) hi = pow(10.0, e1);
        int per = (e1 - e0) <= 2 ? 3 : 1; /* few decades: 1, 2, 5 per decade */
        int stride = (int)ceil((e1 - e0 + 1) / (double)(MAX_TICKS - 1));
        if (stride < 1) stride = 1;
        const double mult[3] = {1, 2, 5};
        for (double e = e0; e <= e1 && a->n_ticks < MAX_TICKS; e += stride) {
            for (int k = 0; k < per && a->n_ticks < MAX_TICKS; k++) {
                double v = mult[k] * pow(10.0, e);
                if (v >= lo * (1 - 1e-9) && v <= hi * (1 + 1e-9)) a->ticks[a->n_ticks++] = v;
            }
        }
        a->step = 0;
    } else {
        double step = nice_step(hi - lo, 6);
        if (round_out && !isfinite(fix_lo)) lo = floor(lo / step + 1e-9) * step;
        if (round_out && !isfinite(fix_hi)) hi = ceil(hi / step - 1e-9) * step;
        a->step = step;
        for (double k = ceil(lo / step - 1e-9); a->n_ticks < MAX_TICKS; k++) {
            double v = k * step;
            if (v > hi + 1e-9 * step) break;
            a->ticks[a->n_ticks++] = fabs(v) < 1e-12 * step ? 0.0 : v;
        }
    }
    a->lo = lo;
    a->hi = hi;
}

static void tick_label(const axis *a, double v, char *buf, size_t n) {
    if (a->scale == SVG_SCALE_LINEAR && a->step > 0 && fabs(v) < 1e6 && a->step >= 1e-6) {
        int dec = (int)ceil(-log10(a->step) - 1e-9);
        if (dec < 0) dec = 0;
        snprintf(buf, n, "%.*f", dec, v);
    } else {
        snprintf(buf, n, "%g", v);
    }
}

/* ---- writing ----------------------------------------------------------------- */

/* XML text: escape the five special characters and replace the control
 * characters XML 1.0 forbids. */
static void put_text(FILE *f, const char *s) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        switch (ch) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&apos;", f); break;
        default: fputc(ch < 0x20 && ch != '\t' ? '?' : ch, f);
        }
    }
}

static const char *series_colour(int i) { return palette[i % N_PALETTE]; }
static const char *series_dash(int i) { return dashes[(i / N_PALETTE) % 3]; }

static int point_ok(const svg_series *s, int i, const axis *ax, const axis *ay) {
    return usable(s->x[i], ax->scale) && usable(s->y[i], ay->scale);
}
static int band_ok(const svg_series *s, int i, const axis *ax, const axis *ay) {
    return usable(s->x[i], ax->scale) && usable(s->lo[i], ay->scale) && usable(s->hi[i], ay->scale);
}

static void draw_band(FILE *f, const svg_series *s, int idx, const axis *ax, const axis *ay) {
    int i = 0;
    while (i < s->n) {
        if (!band_ok(s, i, ax, ay)) {
            i++;
            continue;
        }
        int j = i;
        while (j < s->n && band_ok(s, j, ax, ay)) j++;
        /* [i, j): hi from left to right, then lo back. */
        fprintf(f, "<polygon fill=\"%s\" fill-opacity=\"0.18\" stroke=\"none\" points=\"", series_colour(idx));
        for (int k = i; k < j; k++) fprintf(f, "%.2f,%.2f ", to_pix(ax, s->x[k]), to_pix(ay, s->hi[k]));
        for (int k = j - 1; k >= i; k--) fprintf(f, "%.2f,%.2f ", to_pix(ax, s->x[k]), to_pix(ay, s->lo[k]));
        fputs("\"/>\n", f);
        i = j;
    }
}

static void draw_line(FILE *f, const svg_series *s, int idx, const axis *ax, const axis *ay) {
    const char *dash = series_dash(idx);
    int i = 0;
    while (i < s->n) {
        if (!point_ok(s, i, ax, ay)) {
            i++;
            continue;
        }
        int j = i;
        while (j < s->n && point_ok(s, j, ax, ay)) j++;
        if (j - i == 1) { /* an isolated point: a dot */
            fprintf(f, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"2.5\" fill=\"%s\"/>\n", to_pix(ax, s->x[i]),
                    to_pix(ay, s->y[i]), series_colour(idx));
        } else {
            fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" stroke-linejoin=\"round\"",
                    series_colour(idx));
            if (dash) fprintf(f, " stroke-dasharray=\"%s\"", dash);
            fputs(" points=\"", f);
            for (int k = i; k < j; k++) fprintf(f, "%.2f,%.2f ", to_pix(ax, s->x[k]), to_pix(ay, s->y[k]));
            fputs("\"/>\n", f);
        }
        i = j;
    }
}

static void render(FILE *f, const svg_chart *c) {
    const int W = c->width > 200 ? c->width : 820, H = c->height > 150 ? c->height : 480;
    const double px0 = MARGIN_LEFT, px1 = W - LEGEND_WIDTH - 16, py0 = MARGIN_TOP, py1 = H - MARGIN_BOTTOM;

    /* Data ranges over everything drawable. */
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int si = 0; si < c->n_series; si++) {
        const svg_series *s = &c->series[si];
        for (int i = 0; i < s->n; i++) {
            if (!usable(s->x[i], c->x_scale)) continue;
            double v[3] = {s->y[i], s->lo ? s->lo[i] : NAN, s->hi ? s->hi[i] : NAN};
            int any = 0;
            for (int k = 0; k < 3; k++) {
                if (!usable(v[k], c->y_scale)) continue;
                any = 1;
                ylo = fmin(ylo, v[k]);
                yhi = fmax(yhi, v[k]);
            }
            if (any) {
                xlo = fmin(xlo, s->x[i]);
                xhi = fmax(xhi, s->x[i]);
            }
        }
    }
    for (int h = 0; h < c->n_hlines; h++) {
        if (!usable(c->hlines[h].y, c->y_scale)) continue;
        ylo = fmin(ylo, c->hlines[h].y);
        yhi = fmax(yhi, c->hlines[h].y);
    }
    axis ax, ay;
    axis_setup(&ax, c->x_scale, xlo, xhi, NAN, NAN, 0);
    axis_setup(&ay, c->y_scale, ylo, yhi, c->y_min, c->y_max, 1);
    ax.pix0 = px0;
    ax.pix1 = px1;
    ay.pix0 = py1; /* y grows upwards */
    ay.pix1 = py0;

    fprintf(f,
            "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n"
            "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
            W, H, W, H);
    fputs("<title>", f);
    put_text(f, c->title);
    fputs("</title>\n", f);
    fprintf(f,
            "<defs><clipPath id=\"plot-area\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>"
            "</clipPath></defs>\n",
            px0, py0, px1 - px0, py1 - py0);
    fprintf(f, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, H);
    fprintf(f, "<text x=\"%.2f\" y=\"26\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">",
            (px0 + px1) / 2);
    put_text(f, c->title);
    fputs("</text>\n", f);

    /* Grid and tick labels. */
    char lab[64];
    fputs("<g stroke=\"#e4e4e4\" stroke-width=\"1\">\n", f);
    for (int k = 0; k < ay.n_ticks; k++)
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", px0, to_pix(&ay, ay.ticks[k]), px1,
                to_pix(&ay, ay.ticks[k]));
    for (int k = 0; k < ax.n_ticks; k++)
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", to_pix(&ax, ax.ticks[k]), py0,
                to_pix(&ax, ax.ticks[k]), py1);
    fputs("</g>\n", f);

    /* Bands, reference lines, series: clipped to the plot area. */
    fputs("<g clip-path=\"url(#plot-area)\">\n", f);
    for (int si = 0; si < c->n_series; si++)
        if (c->series[si].lo) draw_band(f, &c->series[si], si, &ax, &ay);
    for (int h = 0; h < c->n_hlines; h++) {
        if (!usable(c->hlines[h].y, ay.scale)) continue;
        double y = to_pix(&ay, c->hlines[h].y);
        fprintf(f,
                "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#555555\" stroke-width=\"1.5\" "
                "stroke-dasharray=\"6,4\"/>\n",
                px0, y, px1, y);
    }
    for (int si = 0; si < c->n_series; si++) draw_line(f, &c->series[si], si, &ax, &ay);
    fputs("</g>\n", f);

    /* Axes, ticks and labels. */
    fprintf(f, "<g stroke=\"#333333\" stroke-width=\"1\" fill=\"none\">\n");
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", px0, py1, px1, py1);
    fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", px0, py0, px0, py1);
    for (int k = 0; k < ax.n_ticks; k++)
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", to_pix(&ax, ax.ticks[k]), py1,
                to_pix(&ax, ax.ticks[k]), py1 + 5);
    for (int k = 0; k < ay.n_ticks; k++)
        fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", px0 - 5, to_pix(&ay, ay.ticks[k]),
                px0, to_pix(&ay, ay.ticks[k]));
    fputs("</g>\n", f);
    fputs("<g fill=\"#333333\">\n", f);
    for (int k = 0; k < ax.n_ticks; k++) {
        tick_label(&ax, ax.ticks[k], lab, sizeof lab);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n", to_pix(&ax, ax.ticks[k]),
                py1 + 19, lab);
    }
    for (int k = 0; k < ay.n_ticks; k++) {
        tick_label(&ay, ay.ticks[k], lab, sizeof lab);
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n", px0 - 8,
                to_pix(&ay, ay.ticks[k]) + 4, lab);
    }
    fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"13\">", (px0 + px1) / 2, H - 14.0);
    put_text(f, c->x_label);
    fputs("</text>\n", f);
    fprintf(f, "<text transform=\"translate(18,%.2f) rotate(-90)\" text-anchor=\"middle\" font-size=\"13\">",
            (py0 + py1) / 2);
    put_text(f, c->y_label);
    fputs("</text>\n</g>\n", f);

    /* Legend: one row per series, then the reference lines. */
    int rows = c->n_series + c->n_hlines;
    double row_h = rows > 0 ? fmin(20.0, (py1 - py0) / rows) : 20.0;
    double lx = px1 + 18, ly = py0 + 6;
    fputs("<g>\n", f);
    for (int r = 0; r < rows; r++) {
        double y = ly + r * row_h + row_h / 2;
        if (r < c->n_series) {
            const char *dash = series_dash(r);
            if (c->series[r].lo)
                fprintf(f,
                        "<rect x=\"%.2f\" y=\"%.2f\" width=\"26\" height=\"10\" fill=\"%s\" fill-opacity=\"0.18\"/>\n",
                        lx, y - 5, series_colour(r));
            fprintf(f, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" stroke-width=\"2\"", lx, y,
                    lx + 26, y, series_colour(r));
            if (dash) fprintf(f, " stroke-dasharray=\"%s\"", dash);
            fputs("/>\n", f);
        } else {
            fprintf(f,
                    "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"#555555\" stroke-width=\"1.5\" "
                    "stroke-dasharray=\"6,4\"/>\n",
                    lx, y, lx + 26, y);
        }
        fprintf(f, "<text x=\"%.2f\" y=\"%.2f\" fill=\"#222222\">", lx + 34, y + 4);
        put_text(f, r < c->n_series ? c->series[r].name : c->hlines[r - c->n_series].label);
        fputs("</text>\n", f);
    }
    fputs("</g>\n</svg>\n", f);
}

icl_status svg_chart_write(const svg_chart *c, const char *path) {
    if (!path || !*path) return icl_fail(ICL_ERR_ARG, "svg_chart_write: empty path");
    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) return icl_fail(ICL_ERR_NOMEM, "cannot write '%s': out of memory", path);
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) {
        int e = errno;
        free(tmp);
        return icl_fail(ICL_ERR_IO, "cannot write '%s': %s", path, strerror(e));
    }
    render(f, c);
    int bad = ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0;
    int e = errno;
    if (fclose(f) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (bad) {
        remove(tmp);
        free(tmp);
        return icl_fail(ICL_ERR_IO, "cannot write '%s': %s", path, strerror(e ? e : EIO));
    }
    if (rename(tmp, path) != 0) {
        e = errno;
        remove(tmp);
        free(tmp);
        return icl_fail(ICL_ERR_IO, "cannot write '%s' (rename from temporary file failed): %s", path, strerror(e));
    }
    free(tmp);
    return ICL_OK;
}
