/*
 * plot.h - charts drawn into a canvas: braille line plots with axes and a
 * cursor, half-block heatmaps with row and column markers, colour bars.
 *
 * Line plots. Several series share the axes; x is a training step or a
 * position, y is linear or log10. Each terminal cell holds a 2 x 4 braille
 * dot matrix (U+2800 + dot bits), so a plot of w x h cells has 2w x 4h dots;
 * consecutive points are joined by straight dot lines. In ASCII mode a cell
 * holds 1 x 2 dots drawn with ' (upper), . (lower) and : (both). A cell
 * takes the role of the last series that put a dot in it, so later series
 * are drawn on top. Non-finite y, and y <= 0 on a log axis, are gaps: the
 * line breaks there. Bands (lo, hi) become a background role behind the
 * lines (plus a stipple on terminals with fewer than 16 colours, where a
 * background alone would not show).
 *
 *   plot_opts o;  plot_opts_default(&o);  o.log_y = 1;  o.cursor_x = 800;
 *   plot_series s = {.name = "train", .x = steps, .y = loss, .n = n, .role = TUI_ROLE_LOSS_TRAIN};
 *   plot_frame f;  plot_lines(&view, &o, &s, 1, &f);
 *   char line[128];  plot_readout(line, sizeof line, &s, 1, o.cursor_x, "step");
 *
 * Heatmaps. A rows x cols matrix is scaled into the canvas (integer
 * upscaling, or pooling by mean or max when it is larger than the canvas)
 * and drawn with "▀": the foreground is the upper pixel's colour, the
 * background the lower one's, so a cell shows two pixels. Colours come from
 * a ramp of theme.h. In ASCII mode with colours a cell is one pixel, a
 * space on a coloured background; below 16 colours a cell is one pixel
 * drawn as a shade glyph (" ░▒▓█", or " .:-=+*#%@" in ASCII mode).
 *
 * Nothing here allocates: the braille dots live in the canvas cells.
 *
 * Not here: which data (the panels), colours of roles (theme.h), curses.
 */
#ifndef ICL_TUI_PLOT_H
#define ICL_TUI_PLOT_H

#include <stddef.h>

#include "tui/canvas.h"

#define PLOT_MAX_SERIES 20

typedef struct {
    const char *name;
    const double *x;       /* n increasing x values; NULL means 0, 1, ..., n-1 */
    const double *y;       /* n values; gaps where not finite (or <= 0 on a log axis) */
    const double *lo, *hi; /* optional band (both or neither), drawn behind the lines */
    int n;
    tui_role role;
    int dash;              /* 0 solid; k > 0: k dots on, k dots off */
} plot_series;

typedef struct {
    int log_y;             /* log10 y axis */
    double y_min, y_max;   /* fixed y range; NaN = from the data (and bands, and ref_y) */
    double x_min, x_max;   /* fixed x range; NaN = from the data */
    double ref_y;          /* a dashed horizontal reference line; NaN = none */
    double cursor_x;       /* a vertical cursor at this x; NaN = none */
    double x_step_min;     /* smallest x tick spacing (1 for steps and positions); 0 = none */
    int axes;              /* 1 (default): tick labels left and below; 0: dots only */
} plot_opts;

/* [out] of plot_lines: where the data went, for mapping keys to x. */
typedef struct {
    int x, y, w, h;        /* the dot area in cells, canvas coordinates; w = 0 if nothing drawn */
    double x_lo, x_hi;     /* x at the first and at the last dot column */
    double y_lo, y_hi;     /* y at the bottom and the top (log axis: actual values, not log10) */
    int cursor_col;        /* column of the cursor in the canvas, -1 if none */
    int points;            /* points plotted (usable, inside the range) */
} plot_frame;

/* Defaults: linear y, automatic ranges, no reference line, no cursor, axes. */
void plot_opts_default(plot_opts *o);
/* Draw the series into the whole canvas (clear it first yourself). frame may be NULL. */
void plot_lines(canvas *c, const plot_opts *o, const plot_series *s, int n_series, plot_frame *frame);
/* Index of the point of s with x nearest to x (ties: the earlier), among
 * points with a finite y; -1 if none. */
int plot_nearest(const plot_series *s, double x);
/* "x_name 812  train 0.231442  eval 0.25" - the exact value (%.6g) of each
 * series at its point nearest to x (x_name and that x from the first series
 * with a point; a series without one shows "-"). Returns the length. */
int plot_readout(char *buf, size_t n, const plot_series *s, int n_series, double x, const char *x_name);
/* Compact tick label: 0, 0.25, 1.5k, 20k, 3M, 1e-04. `step` is the tick
 * spacing (0 for log axes), which sets the decimals. */
void plot_format_tick(double v, double step, char *buf, size_t n);
/* Numbers as people read them in a readout: %.6g, and "-" for NaN. */
void plot_format_value(double v, char *buf, size_t n);

/* ---- heatmaps --------------------------------------------------------------------- */

typedef struct {
    tui_ramp ramp;
    double lo, hi;         /* range mapped onto the ramp; NaN = from the data (diverging:
                              symmetric around 0) */
    int pool_max;          /* when shrinking: 1 = the max of the covered entries, 0 = the mean */
    int keep_aspect;       /* the same scale on both axes (colour mode) */
    const char *row_marks; /* optional: one char per row, e.g. 'x' / 'y', shown in a 2-column
                              gutter on the left (upper and lower pixel of each cell) */
    const char *col_marks; /* optional: one char per column, shown in a row below */
} plot_heatmap_opts;

/* [out] of plot_heatmap. */
typedef struct {
    int x, y, w, h;        /* the image in cells, canvas coordinates (w = 0: nothing drawn) */
    int pix_w, pix_h;      /* pixels: w, and 2h with half blocks (the last row may be half) or h */
    double lo, hi;         /* the value range used */
} plot_heatmap_frame;

void plot_heatmap_opts_default(plot_heatmap_opts *o);
/* Draw m (rows, cols), row-major, into the canvas from its top-left corner.
 * Non-finite entries are left blank. frame may be NULL. */
void plot_heatmap(canvas *c, const float *m, int rows, int cols, const plot_heatmap_opts *o, plot_heatmap_frame *frame);
/* A horizontal colour bar at (x, y), w cells: "lo ▒▒▒▒ hi", the labels
 * (plot_format_tick, 3 significant digits) inside w when they fit. */
void plot_colorbar(canvas *c, int x, int y, int w, tui_ramp ramp, double lo, double hi);
/* The glyph and colour of value t in [0, 1] on this canvas: with colours a
 * space and the xterm index to use as its background, without a shade
 * glyph and -1. [out] *color. */
const char *plot_ramp_glyph(const canvas *c, tui_ramp ramp, double t, int *color);

#endif
