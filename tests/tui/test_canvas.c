/*
 * test_canvas.c - the drawing layer of the TUI without any panel: the cell
 * buffer (clipping, views, UTF-8, boxes, ASCII mode), the themes and ramps,
 * and the plots (braille lines, log axes, cursor readout, heatmaps, colour
 * bars). Everything is checked by reading the cells back; no terminal.
 *
 * The clipping tests draw into a view inside a larger canvas whose cells
 * all hold a sentinel glyph, with coordinates from a seeded generator
 * (--seed), and check that no cell outside the view changed.
 */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "testlib.h"
#include "tui/canvas.h"
#include "tui/plot.h"
#include "tui/theme.h"

/* ---- helpers ------------------------------------------------------------------ */

static void fill_sentinel(canvas *c) { canvas_fill(c, 0, 0, c->w, c->h, "@", TUI_ROLE_ERROR, 0); }

/* Cells of `big` outside the rectangle (x, y, w, h) that are no longer the
 * sentinel; prints the first. */
static int changed_outside(const canvas *big, int x, int y, int w, int h) {
    int bad = 0;
    for (int yy = 0; yy < big->h; yy++)
        for (int xx = 0; xx < big->w; xx++) {
            if (xx >= x && xx < x + w && yy >= y && yy < y + h) continue;
            const tui_cell *cell = canvas_cell_const(big, xx, yy);
            if (strcmp(cell->glyph, "@") || cell->role != TUI_ROLE_ERROR) {
                if (!bad) printf("    first change outside at (%d, %d): '%s'\n", xx, yy, cell->glyph);
                bad++;
            }
        }
    return bad;
}

/* Cells with a byte >= 0x80 anywhere in the canvas. */
static int non_ascii_cells(const canvas *c) {
    int bad = 0;
    for (int y = 0; y < c->h; y++)
        for (int x = 0; x < c->w; x++)
            for (const unsigned char *g = (const unsigned char *)canvas_cell_const(c, x, y)->glyph; *g; g++)
                if (*g >= 0x80) bad++;
    return bad;
}

static int is_braille(const tui_cell *cell) {
    const unsigned char *u = (const unsigned char *)cell->glyph;
    return u[0] == 0xE2 && (u[1] & 0xFC) == 0xA0 && u[1] != 0 && !(u[1] == 0xA0 && u[2] == 0x80);
}

static int dump_contains(const canvas *c, const char *needle) {
    static char buf[1 << 16];
    canvas_dump(c, buf, sizeof buf);
    return strstr(buf, needle) != NULL;
}

/* ---- canvas -------------------------------------------------------------------- */

static void test_text_and_clipping(void) {
    canvas c;
    CHECK(canvas_init(&c, 10, 3) == ICL_OK, "init: %s", icl_error());
    int w = canvas_text(&c, 7, 1, "hello", TUI_ROLE_TEXT, 0);
    CHECK(w == 5, "width %d", w);
    char row[64];
    canvas_row_text(&c, 1, row, sizeof row);
    CHECK(!strcmp(row, "       hel"), "row '%s'", row);
    canvas_text(&c, -2, 0, "abcdef", TUI_ROLE_TEXT, 0);
    canvas_row_text(&c, 0, row, sizeof row);
    CHECK(!strncmp(row, "cdef ", 5), "negative x: '%s'", row);
    canvas_text(&c, 0, 5, "nothing", TUI_ROLE_TEXT, 0); /* below: no effect, no crash */
    canvas_text(&c, 0, -1, "nothing", TUI_ROLE_TEXT, 0);
    CHECK(canvas_cell(&c, 10, 0) == NULL && canvas_cell(&c, -1, 0) == NULL && canvas_cell(&c, 0, 3) == NULL,
          "cells outside are NULL");
    /* ellipsis */
    canvas_clear(&c, TUI_ROLE_DEFAULT);
    int n = canvas_text_max(&c, 0, 2, 4, "abcdefgh", TUI_ROLE_TEXT, 0);
    canvas_row_text(&c, 2, row, sizeof row);
    CHECK(n == 4 && !strncmp(row, "abc\xe2\x80\xa6", 6), "text_max: %d '%s'", n, row);
    canvas_free(&c);
}

static void test_utf8(void) {
    canvas c;
    canvas_init(&c, 12, 1);
    /* valid 2-, 3-byte chars; a wide CJK char, an invalid byte, a control char */
    canvas_text(&c, 0, 0, "\xce\x94t \xe2\x96\x80\xe4\xb8\xad\xff\x01z", TUI_ROLE_TEXT, 0);
    const char *want[] = {"\xce\x94", "t", " ", "\xe2\x96\x80", "?", "?", "?", "z"};
    for (int i = 0; i < 8; i++)
        CHECK(!strcmp(canvas_cell(&c, i, 0)->glyph, want[i]), "cell %d '%s' want '%s'", i, canvas_cell(&c, i, 0)->glyph,
              want[i]);
    CHECK(tui_text_width("\xce\x94t\xe2\x96\x80") == 3, "width of 3 chars");
    unsigned cp;
    CHECK(tui_utf8_next("\xe2\x96", &cp) == 1 && cp == 0xFFFD, "truncated sequence");
    CHECK(tui_utf8_next("\xc0\xaf", &cp) == 1 && cp == 0xFFFD, "overlong");
    canvas_free(&c);
}

static void test_box_and_title(void) {
    canvas c;
    canvas_init(&c, 20, 5);
    canvas_box(&c, "loss", TUI_ROLE_FRAME, TUI_ROLE_TITLE);
    CHECK(!strcmp(canvas_cell(&c, 0, 0)->glyph, "\xe2\x95\xad") &&
              !strcmp(canvas_cell(&c, 19, 4)->glyph, "\xe2\x95\xaf"),
          "corners");
    CHECK(dump_contains(&c, " loss "), "title");
    CHECK(canvas_cell(&c, 3, 0)->role == TUI_ROLE_TITLE && canvas_cell(&c, 1, 0)->role == TUI_ROLE_FRAME, "roles");
    /* a long title is cut and the right corner survives */
    canvas_clear(&c, TUI_ROLE_DEFAULT);
    canvas_box(&c, "a very long title indeed", TUI_ROLE_FRAME, TUI_ROLE_TITLE);
    CHECK(!strcmp(canvas_cell(&c, 19, 0)->glyph, "\xe2\x95\xae"), "right corner kept");
    CHECK(dump_contains(&c, "\xe2\x80\xa6"), "ellipsis");
    canvas_free(&c);
    /* tiny canvases: no crash, nothing outside */
    canvas big;
    canvas_init(&big, 12, 6);
    for (int w = 0; w <= 4; w++)
        for (int h = 0; h <= 3; h++) {
            fill_sentinel(&big);
            canvas v = canvas_view(&big, 4, 2, w, h);
            canvas_box(&v, "title", TUI_ROLE_FRAME, TUI_ROLE_TITLE);
            CHECK(changed_outside(&big, 4, 2, w, h) == 0, "box %dx%d wrote outside", w, h);
        }
    canvas_free(&big);
}

/* Random draws at random places, some far outside: the view holds them. */
static void test_view_clipping_fuzz(void) {
    test_rng r = {test_seed()};
    canvas big;
    canvas_init(&big, 50, 20);
    const char *glyphs[] = {"x", "\xe2\x96\x80", "\xe2\xa0\x81", "\xce\x94"};
    for (int trial = 0; trial < 200; trial++) {
        fill_sentinel(&big);
        int vx = (int)(test_rng_u64(&r) % 40), vy = (int)(test_rng_u64(&r) % 16);
        int vw = (int)(test_rng_u64(&r) % 20), vh = (int)(test_rng_u64(&r) % 8);
        canvas v = canvas_view(&big, vx, vy, vw, vh);
        int ew = v.w, eh = v.h; /* the view as clipped to the parent */
        for (int k = 0; k < 20; k++) {
            int x = (int)(test_rng_u64(&r) % 80) - 30, y = (int)(test_rng_u64(&r) % 40) - 15;
            int w = (int)(test_rng_u64(&r) % 60) - 5, h = (int)(test_rng_u64(&r) % 30) - 5;
            switch (test_rng_u64(&r) % 6) {
            case 0: canvas_text(&v, x, y, "some text \xce\x94 here", TUI_ROLE_TEXT, 0); break;
            case 1: canvas_fill(&v, x, y, w, h, glyphs[k % 4], TUI_ROLE_DIM, 0); break;
            case 2: canvas_hline(&v, x, y, w, TUI_ROLE_FRAME); break;
            case 3: canvas_vline(&v, x, y, h, TUI_ROLE_FRAME); break;
            case 4: canvas_put_rgb(&v, x, y, "\xe2\x96\x80", 30, 200); break;
            default: canvas_text_max(&v, x, y, w, "ellipsis text", TUI_ROLE_TEXT, 0); break;
            }
        }
        canvas_box(&v, "fuzz", TUI_ROLE_FRAME, TUI_ROLE_TITLE);
        int bad = changed_outside(&big, vx, vy, ew, eh);
        CHECK(bad == 0, "trial %d: view (%d,%d,%d,%d): %d cells changed outside", trial, vx, vy, vw, vh, bad);
        if (bad) break;
    }
    canvas_free(&big);
}

static void test_ascii_mode(void) {
    canvas c;
    canvas_init(&c, 40, 12);
    c.ascii = 1;
    canvas_box(&c, "\xce\x94 title \xe2\x80\xa6", TUI_ROLE_FRAME, TUI_ROLE_TITLE);
    canvas_text(&c, 1, 1, "braille \xe2\xa3\xbf blocks \xe2\x96\x80\xe2\x96\x91 arrows \xe2\x86\x90", TUI_ROLE_TEXT, 0);
    canvas_put(&c, 2, 2, "\xe2\x94\xbc", TUI_ROLE_FRAME, 0);
    canvas_text_max(&c, 1, 3, 5, "truncated text", TUI_ROLE_TEXT, 0);
    CHECK(non_ascii_cells(&c) == 0, "%d non-ASCII bytes", non_ascii_cells(&c));
    CHECK(!strcmp(canvas_cell(&c, 0, 0)->glyph, "+") && !strcmp(canvas_cell(&c, 2, 2)->glyph, "+"), "box corners -> +");
    CHECK(!strcmp(canvas_ascii_of("\xe2\xa3\xbf"), ":") && !strcmp(canvas_ascii_of("\xe2\xa0\x81"), "'") &&
              !strcmp(canvas_ascii_of("\xe2\xa1\x80"), "."),
          "braille -> : ' .");
    canvas_free(&c);
}

/* The screen decides ASCII mode from the locale. */
static void test_locale(void) {
    setlocale(LC_CTYPE, "C");
    CHECK(!canvas_locale_is_utf8(), "the C locale is not UTF-8");
    if (setlocale(LC_CTYPE, "C.UTF-8")) CHECK(canvas_locale_is_utf8(), "C.UTF-8 is UTF-8");
    else printf("    (no C.UTF-8 locale here: only the C case checked)\n");
    setlocale(LC_CTYPE, "C");
}

/* ---- themes and ramps ------------------------------------------------------------- */

static void test_themes(void) {
    int n;
    const char *const *names = theme_names(&n);
    CHECK(n == 3, "3 themes");
    for (int i = 0; i < n; i++) CHECK(theme_find(names[i]) != NULL, "find %s", names[i]);
    CHECK(theme_find("neon") == NULL && strstr(icl_error(), "mono"), "unknown theme: %s", icl_error());
    const tui_theme *mono = theme_find("mono"), *def = theme_find("default"), *cb = theme_find("cb");
    CHECK(!theme_has_colors(mono) && theme_has_colors(def), "colour flags");
    for (int r = 0; r < TUI_ROLE_COUNT; r++) {
        tui_style m = theme_style(mono, (tui_role)r, 256), d8 = theme_style(def, (tui_role)r, 8);
        tui_style c256 = theme_style(cb, (tui_role)r, 256), d0 = theme_style(def, (tui_role)r, 0);
        CHECK(m.fg == -1 && m.bg == -1, "mono role %s has colours", theme_role_name((tui_role)r));
        CHECK(d0.fg == -1 && d0.bg == -1, "no-colour terminal role %s has colours", theme_role_name((tui_role)r));
        CHECK(d8.fg < 8 && d8.bg < 8, "8-colour role %s uses %d/%d", theme_role_name((tui_role)r), d8.fg, d8.bg);
        CHECK(c256.fg < 256 && c256.bg < 256, "range");
    }
    /* curves of one chart differ from each other in every colour theme */
    tui_role curves[] = {TUI_ROLE_MODEL_CURVE, TUI_ROLE_BASELINE_1, TUI_ROLE_BASELINE_2, TUI_ROLE_BASELINE_3,
                         TUI_ROLE_BASELINE_4};
    for (int a = 0; a < 5; a++)
        for (int b = a + 1; b < 5; b++) {
            CHECK(theme_style(def, curves[a], 256).fg != theme_style(def, curves[b], 256).fg, "default %d=%d", a, b);
            CHECK(theme_style(cb, curves[a], 256).fg != theme_style(cb, curves[b], 256).fg, "cb %d=%d", a, b);
        }
    CHECK(theme_style(mono, TUI_ROLE_STATUS, 0).attr & TUI_ATTR_REVERSE, "mono status is reversed");
}

/* Sequential ramps get lighter at every level; the diverging one rises to
 * white at its centre and falls after. */
static void test_ramps(void) {
    const tui_ramp seq[] = {TUI_RAMP_VIRIDIS, TUI_RAMP_GREY};
    for (int k = 0; k < 2; k++) {
        int n = theme_ramp_levels(seq[k], 256);
        CHECK(n >= 8 && n <= TUI_RAMP_MAX_LEVELS, "levels %d", n);
        double worst = 1e9;
        for (int i = 1; i < n; i++) {
            double d = theme_xterm_lightness(theme_ramp_color(seq[k], 256, i)) -
                       theme_xterm_lightness(theme_ramp_color(seq[k], 256, i - 1));
            if (d < worst) worst = d;
        }
        printf("    ramp %d: %d levels, smallest L* step %.2f\n", k, n, worst);
        CHECK(worst > 0.5, "ramp %d not monotone in L* (step %.2f)", k, worst);
    }
    int n = theme_ramp_levels(TUI_RAMP_DIVERGING, 256), mid = n / 2;
    CHECK(n % 2 == 1 && theme_ramp_color(TUI_RAMP_DIVERGING, 256, mid) == 231, "white centre");
    for (int i = 1; i < n; i++) {
        double d = theme_xterm_lightness(theme_ramp_color(TUI_RAMP_DIVERGING, 256, i)) -
                   theme_xterm_lightness(theme_ramp_color(TUI_RAMP_DIVERGING, 256, i - 1));
        CHECK(i <= mid ? d > 0 : d < 0, "diverging L* at level %d: step %.2f", i, d);
    }
    unsigned char lo[3], hi[3];
    theme_xterm_rgb(theme_ramp_color(TUI_RAMP_DIVERGING, 256, 0), lo);
    theme_xterm_rgb(theme_ramp_color(TUI_RAMP_DIVERGING, 256, n - 1), hi);
    CHECK(lo[2] > lo[0] && hi[0] > hi[2], "blue end (%d,%d,%d), red end (%d,%d,%d)", lo[0], lo[1], lo[2], hi[0], hi[1],
          hi[2]);
    CHECK(theme_ramp_levels(TUI_RAMP_VIRIDIS, 16) == 4 && theme_ramp_color(TUI_RAMP_VIRIDIS, 16, 3) == 15,
          "16-colour grey");
    CHECK(theme_ramp_levels(TUI_RAMP_VIRIDIS, 8) == 0 && theme_ramp_color(TUI_RAMP_VIRIDIS, 8, 0) == -1, "8: glyphs");
    CHECK(theme_ramp_level(TUI_RAMP_VIRIDIS, 256, 1.0) == theme_ramp_levels(TUI_RAMP_VIRIDIS, 256) - 1 &&
              theme_ramp_level(TUI_RAMP_VIRIDIS, 256, NAN) == 0 && theme_ramp_level(TUI_RAMP_VIRIDIS, 256, -3) == 0,
          "level clamps");
}

/* ---- line plots ------------------------------------------------------------------- */

static void test_tick_format(void) {
    struct { double v, step; const char *want; } cases[] = {
        {0, 0.5, "0"},       {0.25, 0.05, "0.25"}, {1500, 500, "1500"}, {20000, 5000, "20k"},
        {25000, 5000, "25k"}, {2.5e6, 5e5, "2.5M"}, {1e-4, 0, "1e-4"},   {3e-5, 0, "3e-5"},
        {0.1, 0, "0.1"},      {-0.5, 0.25, "-0.50"}, {1e-5, 1e-5, "1e-5"}, {100, 0, "100"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char buf[32];
        plot_format_tick(cases[i].v, cases[i].step, buf, sizeof buf);
        CHECK(!strcmp(buf, cases[i].want), "tick(%g, %g) = '%s', want '%s'", cases[i].v, cases[i].step, buf,
              cases[i].want);
    }
}

/* Mean row of the braille cells in each column of the plot area: -1 if none. */
static void column_rows(const canvas *c, const plot_frame *f, double *rows) {
    for (int x = 0; x < f->w; x++) {
        double s = 0;
        int n = 0;
        for (int y = 0; y < f->h; y++)
            if (is_braille(canvas_cell_const(c, f->x + x, f->y + y))) {
                s += y;
                n++;
            }
        rows[x] = n ? s / n : -1;
    }
}

static void test_lines_rising_falling(void) {
    canvas c;
    canvas_init(&c, 60, 16);
    double x[50], up[50], down[50];
    for (int i = 0; i < 50; i++) {
        x[i] = 10 * i;
        up[i] = i * i;
        down[i] = exp(-0.1 * i);
    }
    for (int dir = 0; dir < 2; dir++) {
        plot_series s = {"s", x, dir ? down : up, NULL, NULL, 50, TUI_ROLE_LOSS_TRAIN, 0};
        plot_opts o;
        plot_opts_default(&o);
        plot_frame f;
        plot_lines(&c, &o, &s, 1, &f);
        CHECK(f.w > 40 && f.h >= 12 && f.points == 50, "frame %d x %d, %d points", f.w, f.h, f.points);
        double rows[64];
        column_rows(&c, &f, rows);
        int cols = 0;
        for (int i = 0; i < f.w; i++) cols += rows[i] >= 0;
        CHECK(cols == f.w, "a connected line puts dots in every column (%d of %d)", cols, f.w);
        /* rising: the line climbs (rows go up the screen) left to right */
        double first = rows[0], last = rows[f.w - 1];
        CHECK(dir ? last > first + 5 : first > last + 5, "%s: first column row %.1f, last %.1f",
              dir ? "falling" : "rising", first, last);
        CHECK(canvas_cell(&c, f.x + f.w / 2, f.y + (int)rows[f.w / 2])->role == TUI_ROLE_LOSS_TRAIN, "series role");
        /* tick labels: 0 on the x axis; the y range covers the data */
        CHECK(dump_contains(&c, "0"), "labels");
        CHECK(f.y_lo <= (dir ? down[49] : 0) && f.y_hi >= (dir ? 1 : up[49]), "y range [%g, %g]", f.y_lo, f.y_hi);
    }
    canvas_free(&c);
}

static void test_log_scale_skips_nonpositive(void) {
    canvas c;
    canvas_init(&c, 40, 10);
    double y[8] = {1, 0, -1, 0.1, 0.01, NAN, 10, INFINITY};
    plot_series s = {"loss", NULL, y, NULL, NULL, 8, TUI_ROLE_LOSS_TRAIN, 0};
    plot_opts o;
    plot_opts_default(&o);
    o.log_y = 1;
    plot_frame f;
    plot_lines(&c, &o, &s, 1, &f);
    CHECK(f.points == 4, "usable points %d (want 4: 1, 0.1, 0.01, 10)", f.points);
    CHECK(fabs(f.y_lo - 0.01) < 1e-9 && fabs(f.y_hi - 10) < 1e-9, "log range [%g, %g]", f.y_lo, f.y_hi);
    CHECK(dump_contains(&c, "0.01") && dump_contains(&c, "10"), "decade labels");
    int dots = 0;
    for (int yy = 0; yy < c.h; yy++)
        for (int xx = 0; xx < c.w; xx++) dots += is_braille(canvas_cell(&c, xx, yy));
    CHECK(dots > 5, "dots drawn: %d", dots);
    /* nothing positive: nothing drawn, no crash */
    double neg[3] = {0, -1, -2};
    plot_series s2 = {"neg", NULL, neg, NULL, NULL, 3, TUI_ROLE_LOSS_TRAIN, 0};
    plot_lines(&c, &o, &s2, 1, &f);
    CHECK(f.w == 0 && f.points == 0, "all non-positive on a log axis: frame w %d", f.w);
    /* linear axis with the same data: zeros and negatives are plotted */
    o.log_y = 0;
    plot_lines(&c, &o, &s, 1, &f);
    CHECK(f.points == 6 && f.y_lo <= -1, "linear: %d points, y_lo %g", f.points, f.y_lo);
    canvas_free(&c);
}

static void test_cursor_readout(void) {
    canvas c;
    canvas_init(&c, 50, 12);
    double x[5] = {100, 200, 300, 400, 500}, a[5] = {0.5, 0.25, 0.123456, 0.0625, 0.03125};
    double xb[2] = {250, 450}, b[2] = {0.3141592, 0.2718281};
    plot_series s[2] = {{"train", x, a, NULL, NULL, 5, TUI_ROLE_LOSS_TRAIN, 0},
                        {"eval", xb, b, NULL, NULL, 2, TUI_ROLE_LOSS_EVAL, 0}};
    plot_opts o;
    plot_opts_default(&o);
    o.cursor_x = 300;
    plot_frame f;
    plot_lines(&c, &o, s, 2, &f);
    CHECK(f.cursor_col >= f.x && f.cursor_col < f.x + f.w, "cursor column %d in [%d, %d)", f.cursor_col, f.x,
          f.x + f.w);
    int bars = 0;
    for (int y = f.y; y < f.y + f.h; y++) {
        const tui_cell *cell = canvas_cell(&c, f.cursor_col, y);
        bars += !strcmp(cell->glyph, "\xe2\x94\x82") && cell->role == TUI_ROLE_CURSOR;
    }
    CHECK(bars > 0, "cursor line drawn");
    char buf[160];
    plot_readout(buf, sizeof buf, s, 2, 300, "step");
    CHECK(strstr(buf, "step 300") && strstr(buf, "train 0.123456") && strstr(buf, "eval 0.314159"), "readout '%s'",
          buf);
    CHECK(plot_nearest(&s[0], 349) == 2 && plot_nearest(&s[0], 351) == 3 && plot_nearest(&s[0], -5) == 0, "nearest");
    /* a cursor outside the x range draws no line */
    o.cursor_x = 1e9;
    plot_lines(&c, &o, s, 2, &f);
    CHECK(f.cursor_col == -1, "cursor off-range");
    canvas_free(&c);
}

static void test_band_and_reference(void) {
    canvas c;
    canvas_init(&c, 40, 12);
    double y[10], lo[10], hi[10];
    for (int i = 0; i < 10; i++) {
        y[i] = 1.0 / (i + 1);
        lo[i] = y[i] * 0.5;
        hi[i] = y[i] * 1.5;
    }
    plot_series s = {"model", NULL, y, lo, hi, 10, TUI_ROLE_MODEL_CURVE, 0};
    plot_opts o;
    plot_opts_default(&o);
    o.ref_y = 1.0;
    plot_frame f;
    plot_lines(&c, &o, &s, 1, &f);
    int band = 0, ref = 0;
    for (int yy = 0; yy < c.h; yy++)
        for (int xx = 0; xx < c.w; xx++) {
            band += canvas_cell(&c, xx, yy)->bg_role == TUI_ROLE_BAND;
            ref += !strcmp(canvas_cell(&c, xx, yy)->glyph, "\xe2\x95\x8c");
        }
    CHECK(band > 10 && ref > 5, "band cells %d, reference cells %d", band, ref);
    CHECK(f.y_hi >= 1.5, "range includes the band top (%g)", f.y_hi);
    /* without colours the band is stippled so it shows */
    c.colors = 0;
    plot_lines(&c, &o, &s, 1, &f);
    CHECK(dump_contains(&c, "\xe2\x96\x91"), "stipple");
    canvas_free(&c);
}

static void test_plot_tiny_and_ascii(void) {
    double y[6] = {3, 1, 4, 1, 5, 9};
    plot_series s = {"s", NULL, y, y, y, 6, TUI_ROLE_LOSS_TRAIN, 2};
    plot_opts o;
    plot_opts_default(&o);
    o.cursor_x = 2;
    o.ref_y = 2;
    canvas big;
    canvas_init(&big, 30, 12);
    const int sizes[][2] = {{80, 24}, {10, 3}, {1, 1}, {0, 0}, {3, 2}, {12, 4}, {30, 12}};
    for (int ascii = 0; ascii < 2; ascii++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            fill_sentinel(&big);
            big.ascii = ascii;
            canvas v = canvas_view(&big, 2, 1, sizes[k][0], sizes[k][1]);
            plot_frame f;
            plot_lines(&v, &o, &s, 1, &f);
            CHECK(changed_outside(&big, 2, 1, v.w, v.h) == 0, "plot %dx%d wrote outside", sizes[k][0], sizes[k][1]);
            if (ascii)
                CHECK(non_ascii_cells(&big) == 0, "ASCII plot %dx%d has non-ASCII bytes", sizes[k][0], sizes[k][1]);
        }
    /* ASCII dots use . : ' */
    canvas_free(&big);
    canvas_init(&big, 30, 8);
    big.ascii = 1;
    plot_opts_default(&o);
    plot_lines(&big, &o, &s, 1, NULL);
    CHECK(dump_contains(&big, ":") || dump_contains(&big, ".") || dump_contains(&big, "'"), "ASCII dots");
    canvas_free(&big);
}

/* ---- heatmaps -------------------------------------------------------------------- */

/* Identity matrices: the hottest ramp colour exactly where a pixel covers a
 * diagonal entry. Up-scaled (8 x 8 in 40 x 10) and pooled by max (64 x 64 in
 * 20 x 5). */
static void test_heatmap_identity(void) {
    const int sizes[2][3] = {{8, 40, 10}, {64, 20, 5}};
    for (int k = 0; k < 2; k++) {
        int n = sizes[k][0];
        float m[64 * 64];
        for (int i = 0; i < n * n; i++) m[i] = (i / n == i % n) ? 1.0f : 0.0f;
        canvas c;
        canvas_init(&c, sizes[k][1], sizes[k][2]);
        plot_heatmap_opts o;
        plot_heatmap_opts_default(&o);
        o.pool_max = 1;
        plot_heatmap_frame f;
        plot_heatmap(&c, m, n, n, &o, &f);
        int levels = theme_ramp_levels(TUI_RAMP_VIRIDIS, 256);
        int hot = theme_ramp_color(TUI_RAMP_VIRIDIS, 256, levels - 1),
            cold = theme_ramp_color(TUI_RAMP_VIRIDIS, 256, 0);
        CHECK(f.w > 0 && f.pix_w == f.pix_h, "square image: %d x %d pixels", f.pix_w, f.pix_h);
        int bad = 0, hot_seen = 0;
        for (int py = 0; py < f.pix_h; py++)
            for (int px = 0; px < f.pix_w; px++) {
                const tui_cell *cell = canvas_cell(&c, f.x + px, f.y + py / 2);
                int color = py % 2 ? cell->bg : cell->fg;
                /* the rows and columns this pixel covers overlap iff it holds a diagonal entry */
                int r0 = py * n / f.pix_h, r1 = (py + 1) * n / f.pix_h, c0 = px * n / f.pix_w,
                    c1 = (px + 1) * n / f.pix_w;
                if (r1 <= r0) r1 = r0 + 1;
                if (c1 <= c0) c1 = c0 + 1;
                int diag = r0 < c1 && c0 < r1;
                hot_seen += diag;
                if (color != (diag ? hot : cold) || strcmp(cell->glyph, "\xe2\x96\x80")) bad++;
            }
        CHECK(bad == 0 && hot_seen >= f.pix_w, "identity %d: %d wrong pixels", n, bad);
        canvas_free(&c);
    }
}

static void test_heatmap_modes_and_marks(void) {
    float m[6 * 6];
    for (int i = 0; i < 36; i++) m[i] = (i / 6 == i % 6) ? 2.0f : (i % 7 == 3 ? NAN : -1.0f);
    const char marks[] = "xyxyxy";
    canvas big;
    canvas_init(&big, 40, 16);
    for (int mode = 0; mode < 4; mode++) { /* 256 / 16 / none / ASCII none */
        fill_sentinel(&big);
        big.colors = mode == 0 ? 256 : mode == 1 ? 16 : 0;
        big.ascii = mode == 3;
        canvas v = canvas_view(&big, 3, 2, 30, 10);
        canvas_clear(&v, TUI_ROLE_DEFAULT);
        plot_heatmap_opts o;
        plot_heatmap_opts_default(&o);
        o.row_marks = marks;
        o.col_marks = marks;
        plot_heatmap_frame f;
        plot_heatmap(&v, m, 6, 6, &o, &f);
        CHECK(changed_outside(&big, 3, 2, 30, 10) == 0, "mode %d wrote outside", mode);
        CHECK(f.lo == -1 && f.hi == 2, "auto range [%g, %g]", f.lo, f.hi);
        CHECK(dump_contains(&v, "x") && dump_contains(&v, "y"), "marks shown in mode %d", mode);
        if (mode >= 2) {
            const char *full = mode == 3 ? "@" : "\xe2\x96\x88";
            CHECK(!strcmp(canvas_cell(&v, f.x, f.y)->glyph, full), "glyph mode: diagonal '%s'",
                  canvas_cell(&v, f.x, f.y)->glyph);
        }
        if (mode == 3) CHECK(non_ascii_cells(&big) == 0, "ASCII heatmap is ASCII");
        plot_colorbar(&v, 0, 9, 30, TUI_RAMP_DIVERGING, -1, 2);
        CHECK(changed_outside(&big, 3, 2, 30, 10) == 0, "colour bar wrote outside");
    }
    /* colour bar: backgrounds get lighter along a sequential ramp */
    canvas c;
    canvas_init(&c, 30, 1);
    plot_colorbar(&c, 0, 0, 30, TUI_RAMP_GREY, 0, 1);
    double last = -1;
    int ok = 1;
    for (int x = 0; x < 30; x++)
        if (canvas_cell(&c, x, 0)->bg >= 0) {
            double l = theme_xterm_lightness(canvas_cell(&c, x, 0)->bg);
            ok &= l >= last;
            last = l;
        }
    CHECK(ok && last > 90, "colour bar lightness rises to %.1f", last);
    CHECK(dump_contains(&c, "0") && dump_contains(&c, "1"), "colour bar labels");
    canvas_free(&c);
    canvas_free(&big);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    TEST_RUN(test_text_and_clipping);
    TEST_RUN(test_utf8);
    TEST_RUN(test_box_and_title);
    TEST_RUN(test_view_clipping_fuzz);
    TEST_RUN(test_ascii_mode);
    TEST_RUN(test_locale);
    TEST_RUN(test_themes);
    TEST_RUN(test_ramps);
    TEST_RUN(test_tick_format);
    TEST_RUN(test_lines_rising_falling);
    TEST_RUN(test_log_scale_skips_nonpositive);
    TEST_RUN(test_cursor_readout);
    TEST_RUN(test_band_and_reference);
    TEST_RUN(test_plot_tiny_and_ascii);
    TEST_RUN(test_heatmap_identity);
    TEST_RUN(test_heatmap_modes_and_marks);
    return test_finish();
}
