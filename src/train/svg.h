/*
 * svg.h - a tiny standalone SVG 1.1 line-chart writer: evaluation curves
 * against the number of in-context examples, loss against training steps.
 *
 *   svg_chart c;  svg_chart_init(&c, "title", "in-context examples", "squared error / d");
 *   svg_chart_add_series(&c, "model", x, y, lo, hi, n);  // lo/hi NULL: no band
 *   svg_chart_add_hline(&c, "zero predictor", 1.0);      // dashed reference line
 *   svg_chart_write(&c, "err.svg");  svg_chart_free(&c);
 *
 * Series are copied, so the caller's arrays may be freed after the call.
 * Points whose x or y is not finite (or y <= 0 on a log axis) are left out
 * and break the line (and its band) there. Colours come from the Okabe-Ito
 * palette (colour-blind safe), in the order the series were added; after 8
 * series the colours repeat with a dash pattern. Text is XML-escaped. The
 * file is written to "<path>.tmp.<pid>", flushed and renamed over path; on
 * failure nothing is left behind and the message names the path.
 *
 * Not here: what is plotted (evaluate.c, the trainer) or any other chart type.
 */
#ifndef ICL_SVG_H
#define ICL_SVG_H

#include "core/status.h"

#define SVG_MAX_SERIES 24
#define SVG_MAX_HLINES 4
#define SVG_TEXT_MAX 128 /* longer titles, labels and names are cut */

typedef enum { SVG_SCALE_LINEAR = 0, SVG_SCALE_LOG = 1 } svg_scale;

typedef struct {
    char name[SVG_TEXT_MAX];
    int n;
    double *x, *y;   /* (n) owned copies */
    double *lo, *hi; /* (n) owned copies, or NULL: no band */
} svg_series;

typedef struct {
    char label[SVG_TEXT_MAX];
    double y;
} svg_hline;

typedef struct {
    char title[SVG_TEXT_MAX], x_label[SVG_TEXT_MAX], y_label[SVG_TEXT_MAX];
    svg_scale x_scale, y_scale;
    double y_min, y_max;  /* fixed y range; NaN = from the data */
    int width, height;    /* pixels (default 820 x 480) */
    int n_series, n_hlines;
    svg_series series[SVG_MAX_SERIES];
    svg_hline hlines[SVG_MAX_HLINES];
} svg_chart;

/* An empty chart with linear axes and an automatic y range. Any text may be NULL. */
void svg_chart_init(svg_chart *c, const char *title, const char *x_label, const char *y_label);
void svg_chart_free(svg_chart *c);
/* Linear or log axes (log: only points > 0 are drawn). */
void svg_chart_set_scale(svg_chart *c, svg_scale x_scale, svg_scale y_scale);
/* Fix the y range (e.g. [0, 1] for accuracies); NaN for either end keeps it
 * automatic. Data outside the range are clipped at the plot's edge. */
void svg_chart_set_y_range(svg_chart *c, double y_min, double y_max);
/* Copy a series of n points (x, y), with an optional shaded band [lo, hi]
 * (both or neither). ICL_ERR_ARG when full, n < 0 or arrays are missing;
 * ICL_ERR_NOMEM. */
icl_status svg_chart_add_series(svg_chart *c, const char *name, const double *x, const double *y, const double *lo,
                                const double *hi, int n);
/* A dashed horizontal reference line across the plot, named in the legend. */
icl_status svg_chart_add_hline(svg_chart *c, const char *label, double y);
/* Render and write atomically. ICL_ERR_IO naming the path on failure. */
icl_status svg_chart_write(const svg_chart *c, const char *path);

#endif
