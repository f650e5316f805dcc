/*
 * test_panels.c - every panel of the TUI drawn from a real, tiny model: a
 * MambaFormer (mamba, attn, mamba, attn, mamba; d_model 16, 2 heads) trained
 * a few steps on linear regression (d = 3, 6 points, T = 12) and evaluated
 * on 64 prompts with the task's baselines. Panels are drawn into views of
 * 80x24, 40x10 and 10x3 inside a larger canvas of sentinel cells, in UTF-8
 * and ASCII, with 256, 16 and no colours, and read back.
 *
 * What is checked: nothing is written outside a panel's view; frames and
 * titles are there; no data draws "no data" (and no crash); the loss
 * panel's cursor readout shows the exact stored loss; keys change layer and
 * head only within range; the attention map is the causal probe of the
 * chosen head (nothing above the diagonal, query 0 attends to itself); the
 * SSM panel's Delta view shows model_ssm_params' values pixel by pixel; the
 * model panel lists the blocks with their parameter counts; panels keep no
 * engine pointer (the model is freed between update and draw). The cost of
 * a tick (update + draw of every panel at 80x24) is measured and printed.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "testlib.h"
#include "tui/panel.h"
#include "tui/plot.h"

/* ---- the engine under the panels ---------------------------------------------------- */

typedef struct {
    task *t;
    model *m;
    trainer tr;
    eval_report r;
    long eval_step[3];
    double eval_val[3];
    tui_source src;
} world;

static int make_world(world *w, const char *arch, int steps, int with_eval) {
    memset(w, 0, sizeof *w);
    task_spec ts;
    task_spec_default(&ts, "linear_regression");
    task_spec_set(&ts, "n_dims", 3);
    task_spec_set(&ts, "n_points", 6);
    icl_status st = task_create(&w->t, &ts);
    CHECK(st == ICL_OK, "task: %s", icl_error());
    model_spec s;
    model_spec_default(&s, arch);
    model_spec_set(&s, "n_dims", 3);
    model_spec_set(&s, "d_model", 16);
    model_spec_set(&s, "n_layer", 4);
    model_spec_set(&s, "n_head", 2);
    s.seed = test_seed();
    if (st == ICL_OK) st = model_create(&w->m, &s);
    CHECK(st == ICL_OK, "model: %s", icl_error());
    optim_config oc;
    optim_config_default(&oc);
    if (st == ICL_OK) st = trainer_init(&w->tr, w->m, w->t, &oc, 4, test_seed());
    CHECK(st == ICL_OK, "trainer: %s", icl_error());
    for (int i = 0; st == ICL_OK && i < steps; i++) st = trainer_step(&w->tr);
    CHECK(st == ICL_OK, "step: %s", icl_error());
    if (st == ICL_OK && with_eval) {
        eval_options o;
        eval_options_default(&o, w->t);
        o.n_prompts = 64;
        st = evaluate(w->m, w->t, &o, &w->r);
        CHECK(st == ICL_OK, "evaluate: %s", icl_error());
        /* evaluation forwards 64 prompts; put the training batch back as the last forward */
        if (st == ICL_OK) st = trainer_step(&w->tr);
    }
    for (int i = 0; i < 3; i++) {
        w->eval_step[i] = 2 * (i + 1);
        w->eval_val[i] = 1.0 / (i + 2);
    }
    w->src = (tui_source){.tr = &w->tr, .m = w->m, .t = w->t, .eval = with_eval ? &w->r : NULL,
                          .eval_step = w->tr.step, .eval_hist_step = w->eval_step, .eval_hist_value = w->eval_val,
                          .n_eval_hist = 3, .running = 1, .steps_per_sec = 1480, .eta_sec = 61, .target_steps = 100,
                          .focus = "panels: loss", .hints = "[F1 help] [F5 run/pause] [Esc prompt]"};
    return st == ICL_OK;
}

static void free_world(world *w) {
    if (w->r.n_curves) eval_report_free(&w->r);
    if (w->m) trainer_free(&w->tr);
    model_free(w->m);
    task_free(w->t);
    memset(w, 0, sizeof *w);
}

/* ---- canvas helpers ------------------------------------------------------------------ */

static char dump_buf[1 << 17];

static const char *dump(const canvas *c) {
    canvas_dump(c, dump_buf, sizeof dump_buf);
    return dump_buf;
}

static void fill_sentinel(canvas *c) { canvas_fill(c, 0, 0, c->w, c->h, "@", TUI_ROLE_ERROR, 0); }

static int changed_outside(const canvas *big, int x, int y, int w, int h) {
    int bad = 0;
    for (int yy = 0; yy < big->h; yy++)
        for (int xx = 0; xx < big->w; xx++) {
            if (xx >= x && xx < x + w && yy >= y && yy < y + h) continue;
            const tui_cell *cell = canvas_cell_const(big, xx, yy);
            bad += strcmp(cell->glyph, "@") || cell->role != TUI_ROLE_ERROR;
        }
    return bad;
}

static int non_ascii(const canvas *c) {
    int bad = 0;
    for (int y = 0; y < c->h; y++)
        for (int x = 0; x < c->w; x++)
            for (const unsigned char *g = (const unsigned char *)canvas_cell_const(c, x, y)->glyph; *g; g++)
                bad += *g >= 0x80;
    return bad;
}

/* Draw p at w x h into a fresh canvas c (replaced). */
static void draw_at(canvas *c, panel *p, int w, int h, int focused) {
    canvas_free(c);
    canvas_init(c, w, h);
    panel_draw(p, c, focused);
}

/* The text of row y. */
static const char *row(const canvas *c, int y) {
    static char buf[4096];
    canvas_row_text(c, y, buf, sizeof buf);
    return buf;
}

static const char *titles[] = {"loss", "ICL", "attention", "SSM", "model", NULL};

/* ---- tests ----------------------------------------------------------------------------- */

static void test_registry(void) {
    int n;
    const char *const *names = panel_names(&n);
    CHECK(n == 6, "6 panels (%d)", n);
    for (int i = 0; i < n; i++) {
        panel *p = panel_new(names[i]);
        CHECK(p && !strcmp(panel_name(p), names[i]), "panel_new(%s)", names[i]);
        CHECK(panel_help(p) != NULL, "help of %s", names[i]);
        panel_free(p);
    }
    CHECK(panel_new("tetris") == NULL && strstr(icl_error(), "attention"), "unknown: %s", icl_error());
    panel_free(NULL);
    CHECK(panel_on_key(NULL, 'z') == 0, "NULL panel");
}

/* Empty source: every panel says so, at every size, and writes nowhere else. */
static void test_no_data(void) {
    int n;
    const char *const *names = panel_names(&n);
    const int sizes[3][2] = {{80, 24}, {40, 10}, {10, 3}};
    canvas big;
    canvas_init(&big, 90, 30);
    tui_source empty = {0};
    for (int i = 0; i < n; i++) {
        panel *p = panel_new(names[i]);
        panel_update(p, &empty);
        panel_update(p, NULL);
        for (int k = 0; k < 3; k++) {
            fill_sentinel(&big);
            canvas v = canvas_view(&big, 5, 3, sizes[k][0], sizes[k][1]);
            canvas_clear(&v, TUI_ROLE_DEFAULT);
            panel_draw(p, &v, k == 0);
            CHECK(changed_outside(&big, 5, 3, sizes[k][0], sizes[k][1]) == 0, "%s at %dx%d wrote outside", names[i],
                  sizes[k][0], sizes[k][1]);
            const char *want = strcmp(names[i], "status") ? "no data" : "no trainer";
            CHECK(strstr(dump(&v), want), "%s at %dx%d: no '%s' in\n%s", names[i], sizes[k][0], sizes[k][1], want,
                  dump(&v));
        }
        /* keys on an empty panel are safe */
        const int keys[] = {PANEL_KEY_LEFT, PANEL_KEY_RIGHT, PANEL_KEY_UP, PANEL_KEY_DOWN, PANEL_KEY_HOME, PANEL_KEY_END,
                            PANEL_KEY_PGUP, PANEL_KEY_PGDN, '[', ']', '{', '}', 'v', 'l', 'b', 'p', 'c'};
        for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) panel_on_key(p, keys[k]);
        canvas v = canvas_view(&big, 0, 0, 40, 10);
        panel_draw(p, &v, 0);
        panel_free(p);
    }
    canvas_free(&big);
}

/* Full data, every size and capability: clipping, frames, titles, ASCII. */
static void test_render_everywhere(void) {
    world w;
    if (!make_world(&w, "mambaformer", 6, 1)) {
        free_world(&w);
        return;
    }
    int n;
    const char *const *names = panel_names(&n);
    const int sizes[3][2] = {{80, 24}, {40, 10}, {10, 3}};
    const int colors[3] = {256, 16, 0};
    canvas big;
    canvas_init(&big, 90, 30);
    for (int i = 0; i < n; i++) {
        panel *p = panel_new(names[i]);
        panel_update(p, &w.src);
        for (int k = 0; k < 3; k++)
            for (int mode = 0; mode < 4; mode++) {
                fill_sentinel(&big);
                big.ascii = mode == 3;
                big.colors = colors[mode % 3];
                canvas v = canvas_view(&big, 4, 2, sizes[k][0], sizes[k][1]);
                canvas_clear(&v, TUI_ROLE_DEFAULT);
                panel_draw(p, &v, mode == 1);
                int bad = changed_outside(&big, 4, 2, sizes[k][0], sizes[k][1]);
                CHECK(bad == 0, "%s %dx%d mode %d: %d cells outside", names[i], sizes[k][0], sizes[k][1], mode, bad);
                if (mode == 3) CHECK(non_ascii(&big) == 0, "%s %dx%d ASCII: %d non-ASCII bytes", names[i], sizes[k][0],
                                     sizes[k][1], non_ascii(&big));
                if (i < 5 && k < 2) {
                    const char *corner = mode == 3 ? "+" : "\xe2\x95\xad";
                    CHECK(!strcmp(canvas_cell(&v, 0, 0)->glyph, corner), "%s frame corner '%s'", names[i],
                          canvas_cell(&v, 0, 0)->glyph);
                    CHECK(strstr(row(&v, 0), titles[i]), "%s %dx%d title: '%s'", names[i], sizes[k][0], sizes[k][1],
                          row(&v, 0));
                    CHECK(!strstr(dump(&v), "no data"), "%s has data", names[i]);
                }
                if (i < 5 && k == 2) CHECK(canvas_cell(&v, 0, 0)->glyph[0] != '@', "%s drew at 10x3", names[i]);
            }
        panel_free(p);
    }
    canvas_free(&big);
    free_world(&w);
}

static void test_loss_panel(void) {
    world w;
    if (!make_world(&w, "mamba", 9, 0)) {
        free_world(&w);
        return;
    }
    panel *p = panel_loss_new();
    panel_update(p, &w.src);
    canvas c = {0};
    draw_at(&c, p, 80, 24, 1);
    int braille = 0;
    for (int y = 1; y < 21; y++)
        for (int x = 1; x < 79; x++) {
            const unsigned char *g = (const unsigned char *)canvas_cell(&c, x, y)->glyph;
            braille += g[0] == 0xE2 && (g[1] & 0xFC) == 0xA0;
        }
    CHECK(braille > 10, "braille cells %d", braille);
    CHECK(strstr(row(&c, 0), "log y"), "log by default: '%s'", row(&c, 0));
    const loss_history *h = &w.tr.hist;
    char want[64], v[32];
    /* following: the readout shows the newest entry */
    plot_format_value(h->loss[h->n - 1], v, sizeof v);
    snprintf(want, sizeof want, "train %s", v);
    CHECK(strstr(row(&c, 22), want), "newest readout '%s' lacks '%s'", row(&c, 22), want);
    /* Home: the first entry, exactly */
    int r = panel_on_key(p, PANEL_KEY_HOME);
    CHECK(r == (PANEL_HANDLED | PANEL_REDRAW), "flags %d", r);
    draw_at(&c, p, 80, 24, 1);
    plot_format_value(h->loss[0], v, sizeof v);
    snprintf(want, sizeof want, "step %ld  train %s", h->step[0], v);
    CHECK(strstr(row(&c, 22), want), "Home readout '%s' lacks '%s'", row(&c, 22), want);
    int cursor = 0;
    for (int y = 1; y < 22; y++)
        for (int x = 0; x < 80; x++) cursor += canvas_cell(&c, x, y)->role == TUI_ROLE_CURSOR;
    CHECK(cursor > 0, "cursor line");
    /* -> moves one entry at a time here (9 entries, many columns) */
    for (int i = 0; i < 3; i++) panel_on_key(p, PANEL_KEY_RIGHT);
    draw_at(&c, p, 80, 24, 1);
    plot_format_value(h->loss[3], v, sizeof v);
    snprintf(want, sizeof want, "step %ld  train %s", h->step[3], v);
    CHECK(strstr(row(&c, 22), want), "readout after 3 x -> '%s' lacks '%s'", row(&c, 22), want);
    /* the eval history is in the readout: at step 4 exactly (1/3), at step 3
     * the nearest evaluation (step 2, the earlier of a tie) and its step */
    CHECK(h->step[3] == 4 && strstr(row(&c, 22), "eval 0.333333") && !strstr(row(&c, 22), "@"), "eval readout '%s'",
          row(&c, 22));
    panel_on_key(p, PANEL_KEY_LEFT);
    draw_at(&c, p, 80, 24, 1);
    CHECK(strstr(row(&c, 22), "eval 0.5 @2"), "eval readout between evaluations '%s'", row(&c, 22));
    /* l: linear */
    panel_on_key(p, 'l');
    draw_at(&c, p, 80, 24, 1);
    CHECK(!strstr(row(&c, 0), "log"), "linear title '%s'", row(&c, 0));
    /* End follows the newest again: no cursor line */
    panel_on_key(p, PANEL_KEY_END);
    draw_at(&c, p, 80, 24, 1);
    cursor = 0;
    for (int y = 1; y < 21; y++)
        for (int x = 0; x < 80; x++)
            cursor +=
                !strcmp(canvas_cell(&c, x, y)->glyph, "\xe2\x94\x82") && canvas_cell(&c, x, y)->role == TUI_ROLE_CURSOR;
    CHECK(cursor == 0, "no cursor line when following (%d)", cursor);
    CHECK(panel_on_key(p, 'z') == (PANEL_HANDLED | PANEL_ZOOM), "z zooms");
    CHECK(panel_on_key(p, 'q') == 0, "q is not the panel's");
    canvas_free(&c);
    panel_free(p);
    free_world(&w);
}

static void test_icl_panel(void) {
    world w;
    if (!make_world(&w, "mambaformer", 3, 1)) {
        free_world(&w);
        return;
    }
    panel *p = panel_icl_new();
    panel_update(p, &w.src);
    canvas c = {0};
    draw_at(&c, p, 80, 24, 0);
    const char *d = dump(&c);
    for (int k = 0; k < w.r.n_curves; k++) CHECK(strstr(d, w.r.names[k]), "legend lacks %s", w.r.names[k]);
    char v[32], want[64];
    int P = w.r.positions;
    plot_format_value(w.r.curves[0].mean[P - 1], v, sizeof v);
    snprintf(want, sizeof want, "model %s", v);
    CHECK(strstr(d, want), "value at the last position '%s' missing:\n%s", want, d);
    /* the band is drawn (the reference line is tested in test_canvas: here the
     * curves may cover its row) */
    int band = 0;
    for (int y = 0; y < c.h; y++)
        for (int x = 0; x < c.w; x++) band += canvas_cell(&c, x, y)->bg_role == TUI_ROLE_BAND;
    CHECK(band > 0, "band %d", band);
    CHECK(strstr(dump(&c), " 1 ") || strstr(dump(&c), "1\xe2\x94\xa4"), "y tick at the reference 1");
    panel_on_key(p, PANEL_KEY_HOME);
    draw_at(&c, p, 80, 24, 0);
    plot_format_value(w.r.curves[1].mean[0], v, sizeof v);
    snprintf(want, sizeof want, "%s %s", w.r.names[1], v);
    CHECK(strstr(dump(&c), "k 0") && strstr(dump(&c), want), "Home readout lacks 'k 0' / '%s'", want);
    panel_on_key(p, 'b');
    draw_at(&c, p, 80, 24, 0);
    band = 0;
    for (int y = 0; y < c.h; y++)
        for (int x = 0; x < c.w; x++) band += canvas_cell(&c, x, y)->bg_role == TUI_ROLE_BAND;
    CHECK(band == 0, "b hides the band (%d)", band);
    canvas_free(&c);
    panel_free(p);
    free_world(&w);
}

static void test_attention_panel(void) {
    world w;
    if (!make_world(&w, "mambaformer", 3, 0)) {
        free_world(&w);
        return;
    }
    panel *p = panel_attention_new();
    panel_update(p, &w.src);
    canvas c = {0};
    draw_at(&c, p, 80, 24, 1);
    CHECK(strstr(row(&c, 0), "layer 1/2  head 1/2"), "title '%s'", row(&c, 0));
    /* keys within range: heads 1..2, layers 1..2 */
    const struct { int key; const char *want; } seq[] = {
        {']', "layer 1/2  head 2/2"}, {']', "layer 1/2  head 2/2"}, {'}', "layer 2/2  head 2/2"},
        {'}', "layer 2/2  head 2/2"}, {'[', "layer 2/2  head 1/2"}, {'[', "layer 2/2  head 1/2"},
        {PANEL_KEY_UP, "layer 1/2  head 1/2"}, {PANEL_KEY_RIGHT, "layer 1/2  head 2/2"},
        {PANEL_KEY_DOWN, "layer 2/2  head 2/2"}, {'{', "layer 1/2  head 2/2"}, {PANEL_KEY_LEFT, "layer 1/2  head 1/2"},
    };
    for (size_t i = 0; i < sizeof seq / sizeof seq[0]; i++) {
        int r = panel_on_key(p, seq[i].key);
        CHECK(r & PANEL_HANDLED, "key %d handled", seq[i].key);
        draw_at(&c, p, 80, 24, 1);
        CHECK(strstr(row(&c, 0), seq[i].want), "after key %zu: '%s', want '%s'", i, row(&c, 0), seq[i].want);
    }
    /* the map: every layer and head is causal (nothing above the diagonal: the
     * coldest colour) and query 0 attends only to itself (the hottest) */
    const int T = w.m->T;
    int cold = theme_ramp_color(TUI_RAMP_VIRIDIS, 256, 0);
    int hot = theme_ramp_color(TUI_RAMP_VIRIDIS, 256, theme_ramp_levels(TUI_RAMP_VIRIDIS, 256) - 1);
    for (int view = 0; view < 4; view++) {
        if (view == 1 || view == 3) panel_on_key(p, ']');
        if (view == 2) {
            panel_on_key(p, '}');
            panel_on_key(p, '[');
        }
        draw_at(&c, p, 80, 24, 1);
        /* find the image: the first half-block cell of row 1 */
        int x0 = -1;
        for (int x = 0; x < 80 && x0 < 0; x++)
            if (!strcmp(canvas_cell(&c, x, 1)->glyph, "\xe2\x96\x80")) x0 = x;
        int px_w = 0;
        while (x0 + px_w < 80 && !strcmp(canvas_cell(&c, x0 + px_w, 1)->glyph, "\xe2\x96\x80")) px_w++;
        CHECK(x0 > 0 && px_w % T == 0, "image at %d, %d pixels wide for T = %d", x0, px_w, T);
        if (x0 <= 0 || px_w % T) break;
        int f = px_w / T, bad = 0;
        CHECK(canvas_cell(&c, x0, 1)->fg == hot, "query 0 -> key 0 is hot (%d, want %d)", canvas_cell(&c, x0, 1)->fg,
              hot);
        for (int py = 0; py < px_w; py++)
            for (int px = 0; px < px_w; px++) {
                if (px / f <= py / f) continue; /* key <= query */
                const tui_cell *cell = canvas_cell(&c, x0 + px, 1 + py / 2);
                bad += (py % 2 ? cell->bg : cell->fg) != cold;
            }
        CHECK(bad == 0, "view %d: %d pixels above the diagonal are not cold", view, bad);
    }
    /* token kinds under the key axis: x then y, f pixels each */
    char marks[64] = "";
    int fm = 0;
    for (int x = 0; x < 80 && !fm; x++)
        if (!strcmp(canvas_cell(&c, x, 1)->glyph, "\xe2\x96\x80"))
            while (!strcmp(canvas_cell(&c, x + fm, 1)->glyph, "\xe2\x96\x80")) fm++;
    fm /= T;
    for (int i = 0; i < 4 * fm && fm > 0; i++) marks[i] = (i / fm) % 2 ? 'y' : 'x';
    CHECK(fm > 0 && strstr(dump(&c), marks), "token marks '%s' on the key axis", marks);
    /* prompts cycle within the last forward's batch */
    for (int i = 0; i < w.m->B + 1; i++) panel_on_key(p, 'p');
    panel_update(p, &w.src);
    draw_at(&c, p, 80, 24, 1);
    CHECK(strstr(row(&c, 0), "prompt 2"), "prompt wraps: '%s'", row(&c, 0));
    panel_free(p);
    free_world(&w);
    /* a model without attention says so */
    if (make_world(&w, "mamba", 1, 0)) {
        p = panel_attention_new();
        panel_update(p, &w.src);
        draw_at(&c, p, 40, 10, 0);
        CHECK(strstr(dump(&c), "no attention layers"), "mamba: %s", dump(&c));
        panel_free(p);
    }
    free_world(&w);
    canvas_free(&c);
}

/* The SSM panel's Delta image in c (half blocks from row 1, starting at the
 * first "▀" there) against the probe delta (T, E): pixel row r is channel
 * r * every, pixel column px token px / (pixels per token), coloured on the
 * range of the shown channels. Returns the wrong pixels; [out] *checked. */
static int delta_pixels_wrong(const canvas *c, const float *delta, int T, int E, int every, int *checked) {
    int x0 = -1, px_w = 0, bad = 0, shown = (E + every - 1) / every;
    *checked = 0;
    for (int x = 0; x < c->w && x0 < 0; x++)
        if (!strcmp(canvas_cell_const(c, x, 1)->glyph, "\xe2\x96\x80")) x0 = x;
    while (x0 >= 0 && x0 + px_w < c->w && !strcmp(canvas_cell_const(c, x0 + px_w, 1)->glyph, "\xe2\x96\x80")) px_w++;
    CHECK(x0 >= 0 && px_w > 0 && px_w % T == 0, "image at %d, %d pixels wide", x0, px_w);
    if (x0 < 0 || px_w == 0 || px_w % T) return -1;
    double lo = INFINITY, hi = -INFINITY;
    for (int t = 0; t < T; t++)
        for (int r = 0; r < shown; r++) {
            lo = fmin(lo, delta[t * E + r * every]);
            hi = fmax(hi, delta[t * E + r * every]);
        }
    for (int r = 0; r < shown; r++)
        for (int px = 0; px < px_w; px++) {
            const tui_cell *cell = canvas_cell_const(c, x0 + px, 1 + r / 2);
            double v = delta[(px / (px_w / T)) * E + r * every];
            int want = theme_ramp_color(TUI_RAMP_VIRIDIS, 256,
                                        theme_ramp_level(TUI_RAMP_VIRIDIS, 256, (v - lo) / (hi - lo)));
            bad += (r % 2 ? cell->bg : cell->fg) != want;
            (*checked)++;
        }
    return bad;
}

static void test_ssm_panel(void) {
    world w;
    if (!make_world(&w, "mambaformer", 3, 0)) {
        free_world(&w);
        return;
    }
    panel *p = panel_ssm_new();
    panel_update(p, &w.src);
    canvas c = {0};
    draw_at(&c, p, 80, 24, 0);
    CHECK(strstr(row(&c, 0), "layer 1/3  |h_t|"), "title '%s'", row(&c, 0));
    const char *views[] = {"Delta", "B", "C", "|h_t|"};
    for (int i = 0; i < 4; i++) {
        CHECK(panel_on_key(p, 'v') & PANEL_REDRAW, "v");
        draw_at(&c, p, 80, 24, 0);
        CHECK(strstr(row(&c, 0), views[i]), "view %d: '%s'", i, row(&c, 0));
    }
    for (int i = 0; i < 4; i++) panel_on_key(p, '}');
    draw_at(&c, p, 80, 24, 0);
    CHECK(strstr(row(&c, 0), "layer 3/3"), "layers clamp: '%s'", row(&c, 0));
    for (int i = 0; i < 4; i++) panel_on_key(p, '{');
    panel_on_key(p, 'v'); /* Delta of layer 1 */
    draw_at(&c, p, 80, 24, 0);
    CHECK(strstr(row(&c, 0), "layer 1/3  Delta"), "title '%s'", row(&c, 0));
    /* pixel by pixel: row e, column t (4 pixels per token here) is Delta[t, e] of prompt 1 */
    const int T = w.m->T, E = w.m->E;
    float delta[64 * 64];
    icl_status st = model_ssm_params(w.m, 0, 0, delta, NULL, NULL);
    CHECK(st == ICL_OK && T * E <= 64 * 64, "probe: %s", icl_error());
    int checked = 0, bad = delta_pixels_wrong(&c, delta, T, E, 1, &checked);
    CHECK(checked == E * 4 * T && bad == 0, "%d of %d Delta pixels differ from the probe", bad, checked);
    CHECK(strstr(dump(&c), "rows: channel") && strstr(dump(&c), "cols: t"), "axis names");
    /* few rows: every k-th channel, each row a real channel */
    draw_at(&c, p, 60, 8, 0);
    CHECK(strstr(dump(&c), "(every 4 of 32)"), "subsampling note:\n%s", dump(&c));
    bad = delta_pixels_wrong(&c, delta, T, E, 4, &checked);
    CHECK(checked == (E / 4) * 3 * T && bad == 0, "subsampled: %d of %d Delta pixels differ", bad, checked);
    /* layer 2 is block 2 (mamba, attn, mamba, ...): "loading" until the next update, then its Delta */
    panel_on_key(p, '}');
    draw_at(&c, p, 80, 24, 0);
    CHECK(strstr(dump(&c), "loading"), "loading after a layer key");
    panel_update(p, &w.src);
    draw_at(&c, p, 80, 24, 0);
    st = model_ssm_params(w.m, 2, 0, delta, NULL, NULL);
    bad = delta_pixels_wrong(&c, delta, T, E, 1, &checked);
    CHECK(st == ICL_OK && strstr(row(&c, 0), "layer 2/3  Delta") && checked == E * 4 * T && bad == 0,
          "layer 2: %d of %d Delta pixels differ from block 2's probe", bad, checked);
    panel_free(p);
    free_world(&w);
    if (make_world(&w, "transformer", 1, 0)) {
        p = panel_ssm_new();
        panel_update(p, &w.src);
        draw_at(&c, p, 40, 10, 0);
        CHECK(strstr(dump(&c), "no Mamba layers"), "transformer: %s", dump(&c));
        panel_free(p);
    }
    free_world(&w);
    canvas_free(&c);
}

static void test_model_panel(void) {
    world w;
    if (!make_world(&w, "mambaformer", 2, 0)) {
        free_world(&w);
        return;
    }
    panel *p = panel_model_new();
    panel_update(p, &w.src);
    canvas c = {0};
    draw_at(&c, p, 80, 24, 0);
    const char *d = dump(&c);
    char num[32];
    panel_format_count((double)w.m->n_params, num, sizeof num);
    CHECK(strstr(row(&c, 0), "mambaformer") && strstr(row(&c, 0), num), "title '%s' (params %s)", row(&c, 0), num);
    for (int i = 0; i <= w.m->spec.n_blocks; i++) {
        panel_format_count((double)model_block_params(w.m, i), num, sizeof num);
        char line[64];
        snprintf(line, sizeof line, "%s", i < w.m->spec.n_blocks ? block_kind_name(w.m->spec.blocks[i]) : "rest");
        CHECK(strstr(d, line) && strstr(d, num), "block %d: %s %s", i, line, num);
    }
    int bars = 0;
    for (int y = 0; y < c.h; y++)
        for (int x = 0; x < c.w; x++) bars += !strcmp(canvas_cell(&c, x, y)->glyph, "\xe2\x96\x88");
    CHECK(bars > 0, "gradient bars");
    CHECK(strstr(d, "state/layer: mamba"), "state size line");
    /* a short panel scrolls */
    draw_at(&c, p, 40, 7, 1);
    static char first[1 << 17];
    memcpy(first, dump(&c), sizeof first);
    CHECK(panel_on_key(p, PANEL_KEY_DOWN) & PANEL_REDRAW, "down");
    draw_at(&c, p, 40, 7, 1);
    CHECK(strcmp(first, dump(&c)) != 0, "scrolled");
    panel_free(p);
    free_world(&w);
    canvas_free(&c);
}

static void test_status_panel(void) {
    world w;
    if (!make_world(&w, "mamba", 5, 0)) {
        free_world(&w);
        return;
    }
    panel *p = panel_status_new();
    panel_update(p, &w.src);
    canvas c = {0};
    draw_at(&c, p, 120, 1, 0);
    const char *r = row(&c, 0);
    char loss[32];
    snprintf(loss, sizeof loss, "loss %.4g", w.tr.loss);
    CHECK(strstr(r, "step 5/100") && strstr(r, loss) && strstr(r, "1480 steps/s") && strstr(r, "ETA 1:01") &&
              strstr(r, "running") && strstr(r, "panels: loss") && strstr(r, "F1 help"),
          "status '%s'", r);
    int keys = 0;
    for (int x = 0; x < c.w; x++) keys += canvas_cell(&c, x, 0)->role == TUI_ROLE_STATUS_KEY;
    CHECK(keys == 2 + 2 + 3, "key cells %d (F1 F5 Esc)", keys);
    w.src.running = 0;
    w.src.message = "saved run.safetensors";
    panel_update(p, &w.src);
    draw_at(&c, p, 80, 1, 0);
    CHECK(strstr(row(&c, 0), "saved run.safetensors") && !strstr(row(&c, 0), "running"), "message '%s'", row(&c, 0));
    w.src.message = NULL;
    panel_update(p, &w.src);
    draw_at(&c, p, 80, 1, 0);
    CHECK(strstr(row(&c, 0), "paused") && !strstr(row(&c, 0), "ETA"), "paused '%s'", row(&c, 0));
    char buf[16];
    panel_format_duration(3725, buf, sizeof buf);
    CHECK(!strcmp(buf, "1:02:05"), "duration %s", buf);
    panel_format_duration(NAN, buf, sizeof buf);
    CHECK(!strcmp(buf, "-"), "unknown duration %s", buf);
    panel_format_count(24600, buf, sizeof buf);
    CHECK(!strcmp(buf, "24.6k"), "count %s", buf);
    panel_free(p);
    free_world(&w);
    canvas_free(&c);
}

/* Panels copy what they show: freeing the engine between update and draw
 * is safe (run under `make asan` to make this test bite). */
static void test_no_engine_pointers_kept(void) {
    world w;
    if (!make_world(&w, "mambaformer", 3, 1)) {
        free_world(&w);
        return;
    }
    int n;
    const char *const *names = panel_names(&n);
    panel *ps[8];
    for (int i = 0; i < n; i++) {
        ps[i] = panel_new(names[i]);
        panel_update(ps[i], &w.src);
    }
    canvas ref = {0}, after = {0};
    static char before[6][1 << 17];
    for (int i = 0; i < n; i++) {
        draw_at(&ref, ps[i], 60, 16, 0);
        memcpy(before[i], dump(&ref), sizeof before[i]);
    }
    free_world(&w); /* everything the source pointed to is gone */
    for (int i = 0; i < n; i++) {
        draw_at(&after, ps[i], 60, 16, 0);
        CHECK(!strcmp(before[i], dump(&after)), "%s drew differently after the engine was freed", names[i]);
        panel_free(ps[i]);
    }
    canvas_free(&ref);
    canvas_free(&after);
}

/* What a tick costs: update + draw of all five panels and the status line at
 * 80x24 after every training step (so the probes always read a new forward
 * pass), for the default MambaFormer (d_model 64, 4 layers, 4 heads) on
 * linear regression with d = 5 and 20 points (T = 40), batch 16. The screen
 * ticks 10 times a second, so 10 x tick time is the share of a second spent
 * drawing. Printed, and checked loosely (a tick under 20 ms) so that a slow
 * or busy machine does not fail. */
static void test_draw_cost(void) {
    task_spec ts;
    task_spec_default(&ts, "linear_regression");
    task_spec_set(&ts, "n_dims", 5);
    task_spec_set(&ts, "n_points", 20);
    task *t = NULL;
    model *m = NULL;
    model_spec s;
    model_spec_default(&s, "mambaformer");
    optim_config oc;
    optim_config_default(&oc);
    trainer tr;
    int ok = task_create(&t, &ts) == ICL_OK && model_create(&m, &s) == ICL_OK &&
             trainer_init(&tr, m, t, &oc, 16, test_seed()) == ICL_OK;
    CHECK(ok, "setup: %s", icl_error());
    if (!ok) {
        model_free(m);
        task_free(t);
        return;
    }
    tui_source src = {.tr = &tr, .m = m, .t = t, .running = 1, .focus = "prompt", .hints = "[F1 help]"};
    int n;
    const char *const *names = panel_names(&n);
    panel *ps[8];
    for (int i = 0; i < n; i++) ps[i] = panel_new(names[i]);
    canvas screen;
    canvas_init(&screen, 80, 24);
    const int rounds = 30;
    double tick_us = 0, step_us = 0, idle_us = 0;
    for (int k = 0; k < rounds; k++) {
        struct timespec t0, t1, t2, t3;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        trainer_step(&tr);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        for (int rep = 0; rep < 2; rep++) { /* a tick on the new forward, then one on the same */
            canvas_clear(&screen, TUI_ROLE_DEFAULT);
            for (int i = 0; i < n; i++) {
                panel_update(ps[i], &src);
                canvas v = i == n - 1 ? canvas_view(&screen, 0, 23, 80, 1)
                                      : canvas_view(&screen, (i % 2) * 40, (i / 2) * 8, 40, 8);
                panel_draw(ps[i], &v, i == 0);
            }
            clock_gettime(CLOCK_MONOTONIC, rep ? &t3 : &t2);
        }
        step_us += ((t1.tv_sec - t0.tv_sec) * 1e6 + (t1.tv_nsec - t0.tv_nsec) / 1e3) / rounds;
        tick_us += ((t2.tv_sec - t1.tv_sec) * 1e6 + (t2.tv_nsec - t1.tv_nsec) / 1e3) / rounds;
        idle_us += ((t3.tv_sec - t2.tv_sec) * 1e6 + (t3.tv_nsec - t2.tv_nsec) / 1e3) / rounds;
    }
    printf("    tick after a step (update + draw of %d panels, 80x24): %.0f us; tick with nothing new: %.0f us\n", n,
           tick_us, idle_us);
    printf("    training step (mambaformer d_model 64, B 16, T 40): %.0f us; 10 ticks/s = %.2f%% of the time\n",
           step_us, tick_us * 10 / 1e4);
    CHECK(tick_us < 20000, "a tick takes %.0f us", tick_us);
    for (int i = 0; i < n; i++) panel_free(ps[i]);
    canvas_free(&screen);
    trainer_free(&tr);
    model_free(m);
    task_free(t);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
#ifdef _OPENMP
    /* The engine's results do not depend on the thread count; one thread
     * keeps its tiny steps fast when the two cores are shared (with OpenMP
     * threads spinning on a loaded machine a step took 150 ms, not 0.6). */
    omp_set_num_threads(1);
#endif
    TEST_RUN(test_registry);
    TEST_RUN(test_no_data);
    TEST_RUN(test_render_everywhere);
    TEST_RUN(test_loss_panel);
    TEST_RUN(test_icl_panel);
    TEST_RUN(test_attention_panel);
    TEST_RUN(test_ssm_panel);
    TEST_RUN(test_model_panel);
    TEST_RUN(test_status_panel);
    TEST_RUN(test_no_engine_pointers_kept);
    TEST_RUN(test_draw_cost);
    return test_finish();
}
