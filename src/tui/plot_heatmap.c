/*
 * plot_heatmap.c - half-block heatmaps and colour bars (plot.h).
 *
 * A rows x cols matrix becomes a grid of pixels: in colour mode each cell
 * is two pixels stacked ("▀", foreground = upper pixel, background = lower
 * pixel), so a w x h canvas holds w x 2h pixels, nearly square on a
 * terminal whose cells are twice as tall as wide; in glyph mode (fewer than
 * 16 colours) one pixel per cell, drawn as a shade, and in ASCII mode with
 * colours one pixel per cell as a coloured space. Each axis is scaled on
 * its own: an integer upscale when the matrix is smaller than the room
 * (every entry a block of f x f pixels), or a partition of the entries into
 * as many runs as there are pixels, pooled by mean or max, when it is
 * larger. keep_aspect gives both axes the smaller of the two scales.
 *
 * Markers: a column marker row under the image shows, per pixel column, the
 * mark of the matrix columns it covers ('·' if they differ); the 2-column
 * row gutter shows the marks of the upper and lower pixel of each cell row.
 *
 * Not here: line plots (plot.c), the ramps' colours (theme.c).
 */
#include <math.h>
#include <string.h>

#include "tui/plot.h"

#define G_UPPER_HALF "\xe2\x96\x80" /* U+2580 */
#define G_LOWER_HALF "\xe2\x96\x84" /* U+2584 */
#define G_MIXED "\xc2\xb7"          /* U+00B7 middle dot */

void plot_heatmap_opts_default(plot_heatmap_opts *o) {
    memset(o, 0, sizeof *o);
    o->ramp = TUI_RAMP_VIRIDIS;
    o->lo = o->hi = NAN;
    o->keep_aspect = 1;
}

const char *plot_ramp_glyph(const canvas *c, tui_ramp ramp, double t, int *color) {
    static const char *const shades[5] = {" ", "\xe2\x96\x91", "\xe2\x96\x92", "\xe2\x96\x93", "\xe2\x96\x88"};
    static const char *const ascii[10] = {" ", ".", ":", "-", "=", "+", "*", "#", "%", "@"};
    if (!(t > 0)) t = 0; /* also NaN */
    if (t > 1) t = 1;
    if (theme_ramp_levels(ramp, c->colors) > 0) {
        *color = theme_ramp_color(ramp, c->colors, theme_ramp_level(ramp, c->colors, t));
        return " "; /* the colour is the background */
    }
    *color = -1;
    /* glyph mode shows magnitude; on a diverging ramp, the distance from the centre */
    if (ramp == TUI_RAMP_DIVERGING) t = fabs(2 * t - 1);
    if (c->ascii) {
        int i = (int)(t * 10);
        return ascii[i > 9 ? 9 : i];
    }
    int i = (int)(t * 5);
    return shades[i > 4 ? 4 : i];
}

/* Entries [*s0, *s1) of an axis of `src` entries that pixel p of n_pix covers. */
static void cover(int p, int n_pix, int src, int *s0, int *s1) {
    *s0 = (int)((long long)p * src / n_pix);
    *s1 = (int)((long long)(p + 1) * src / n_pix);
    if (*s1 <= *s0) *s1 = *s0 + 1;
    if (*s1 > src) *s1 = src;
}

/* Pixels along an axis of `src` entries with `avail` pixels of room, at
 * scale s (<= 0: fit on its own). */
static int pixels(int src, int avail, double s) {
    if (avail <= 0 || src <= 0) return 0;
    if (s <= 0) s = (double)avail / src;
    if (s >= 1) s = floor(s);
    int n = (int)lround(src * s);
    return n < 1 ? 1 : n > avail ? avail : n;
}

/* The pooled value of the block rows [r0, r1) x cols [c0, c1); NaN if it
 * holds no finite entry. */
static double pool(const float *m, int cols, int r0, int r1, int c0, int c1, int use_max) {
    double acc = use_max ? -INFINITY : 0;
    int n = 0;
    for (int r = r0; r < r1; r++)
        for (int c = c0; c < c1; c++) {
            double v = m[(size_t)r * cols + c];
            if (!isfinite(v)) continue;
            acc = use_max ? fmax(acc, v) : acc + v;
            n++;
        }
    return n == 0 ? NAN : use_max ? acc : acc / n;
}

/* The mark of entries [s0, s1): their common char, or 0 if they differ. */
static char common_mark(const char *marks, int s0, int s1) {
    for (int i = s0 + 1; i < s1; i++)
        if (marks[i] != marks[s0]) return 0;
    return marks[s0];
}

static void put_mark(canvas *c, int x, int y, char mark) {
    char s[2] = {mark, '\0'};
    if (mark == 0) canvas_put(c, x, y, G_MIXED, TUI_ROLE_DIM, 0);
    else canvas_put(c, x, y, s, TUI_ROLE_TEXT, 0);
}

void plot_heatmap(canvas *c, const float *m, int rows, int cols, const plot_heatmap_opts *o,
                  plot_heatmap_frame *frame) {
    plot_heatmap_frame f = {0, 0, 0, 0, 0, 0, NAN, NAN};
    if (frame) *frame = f;
    if (!m || rows <= 0 || cols <= 0 || c->w <= 0 || c->h <= 0) return;
    /* three modes: half blocks (colours, UTF-8), one coloured space per
     * pixel (colours, ASCII), one shade glyph per pixel (no colours) */
    int colour = theme_ramp_levels(o->ramp, c->colors) > 0, half = colour && !c->ascii;

    /* value range */
    double lo = o->lo, hi = o->hi;
    if (!isfinite(lo) || !isfinite(hi)) {
        double mn = INFINITY, mx = -INFINITY;
        for (size_t i = 0; i < (size_t)rows * cols; i++)
            if (isfinite(m[i])) {
                mn = fmin(mn, m[i]);
                mx = fmax(mx, m[i]);
            }
        if (!(mn <= mx)) mn = mx = 0; /* nothing finite */
        if (o->ramp == TUI_RAMP_DIVERGING) {
            double a = fmax(fabs(mn), fabs(mx));
            mn = -a;
            mx = a;
        }
        if (!isfinite(lo)) lo = mn;
        if (!isfinite(hi)) hi = mx;
    }
    if (!(hi > lo)) hi = lo + 1; /* constant: everything at the bottom of the ramp */

    /* geometry: gutter for row marks, a row for column marks */
    int gx = o->row_marks ? 2 : 0, gy = o->col_marks ? 1 : 0;
    int avail_x = c->w - gx, avail_y = (c->h - gy) * (half ? 2 : 1);
    double s = 0;
    if (o->keep_aspect && half && avail_x > 0 && avail_y > 0) s = fmin((double)avail_x / cols, (double)avail_y / rows);
    int pw = pixels(cols, avail_x, s), ph = pixels(rows, avail_y, s);
    if (pw <= 0 || ph <= 0) return;
    int ch = half ? (ph + 1) / 2 : ph;

    for (int cy = 0; cy < ch; cy++) {
        int pu = half ? 2 * cy : cy, pl = pu + 1; /* upper and lower pixel rows */
        int ru0, ru1, rl0 = 0, rl1 = 0;
        cover(pu, ph, rows, &ru0, &ru1);
        int has_lower = half && pl < ph;
        if (has_lower) cover(pl, ph, rows, &rl0, &rl1);
        for (int px = 0; px < pw; px++) {
            int c0, c1;
            cover(px, pw, cols, &c0, &c1);
            double vu = pool(m, cols, ru0, ru1, c0, c1, o->pool_max);
            double vl = has_lower ? pool(m, cols, rl0, rl1, c0, c1, o->pool_max) : NAN;
            int x = gx + px, y = cy;
            int cu = -1, cl = -1;
            const char *gu = plot_ramp_glyph(c, o->ramp, (vu - lo) / (hi - lo), &cu);
            if (!colour) {
                canvas_put(c, x, y, isfinite(vu) ? gu : " ", TUI_ROLE_TEXT, 0);
                continue;
            }
            if (!half) {
                canvas_put_rgb(c, x, y, " ", -1, isfinite(vu) ? cu : -1);
                continue;
            }
            plot_ramp_glyph(c, o->ramp, (vl - lo) / (hi - lo), &cl);
            if (isfinite(vu)) canvas_put_rgb(c, x, y, G_UPPER_HALF, cu, isfinite(vl) ? cl : -1);
            else if (isfinite(vl)) canvas_put_rgb(c, x, y, G_LOWER_HALF, cl, -1);
            else canvas_put(c, x, y, " ", TUI_ROLE_DEFAULT, 0);
        }
        if (o->row_marks) {
            if (half) put_mark(c, 0, cy, common_mark(o->row_marks, ru0, ru1));
            else canvas_put(c, 0, cy, " ", TUI_ROLE_DEFAULT, 0);
            if (!half) put_mark(c, 1, cy, common_mark(o->row_marks, ru0, ru1));
            else if (has_lower) put_mark(c, 1, cy, common_mark(o->row_marks, rl0, rl1));
            else canvas_put(c, 1, cy, " ", TUI_ROLE_DEFAULT, 0);
        }
    }
    if (o->col_marks && ch < c->h)
        for (int px = 0; px < pw; px++) {
            int c0, c1;
            cover(px, pw, cols, &c0, &c1);
            put_mark(c, gx + px, ch, common_mark(o->col_marks, c0, c1));
        }

    f.x = gx;
    f.y = 0;
    f.w = pw;
    f.h = ch;
    f.pix_w = pw;
    f.pix_h = ph;
    f.lo = lo;
    f.hi = hi;
    if (frame) *frame = f;
}

void plot_colorbar(canvas *c, int x, int y, int w, tui_ramp ramp, double lo, double hi) {
    char a[24], b[24];
    plot_format_tick(lo, 0, a, sizeof a);
    plot_format_tick(hi, 0, b, sizeof b);
    int la = tui_text_width(a), lb = tui_text_width(b);
    int bw = w - la - lb - 2, bx = x + la + 1;
    if (bw < 3) { /* no room for labels */
        bw = w;
        bx = x;
    } else {
        canvas_text(c, x, y, a, TUI_ROLE_DIM, 0);
        canvas_text(c, bx + bw + 1, y, b, TUI_ROLE_DIM, 0);
    }
    for (int i = 0; i < bw; i++) {
        int col = -1;
        const char *g = plot_ramp_glyph(c, ramp, (i + 0.5) / bw, &col);
        if (col >= 0) canvas_put_rgb(c, bx + i, y, g, -1, col);
        else canvas_put(c, bx + i, y, g, TUI_ROLE_TEXT, 0);
    }
}
