/*
 * bench_tui.c - `make bench`: what the live panels cost the training.
 *
 * The TUI's default experiment (lua/tui_start.lua: a MambaFormer, d_model
 * 64, n_layer 4, 4 heads, on linear regression with d = 5 and 20 examples,
 * batch 64, Adam 1e-3) is trained in alternating blocks of 1.5 s:
 * headless (trainer_step only), and with the screen live, i.e. every 100 ms
 * (10 frames/s, the floor; the TUI itself draws at 12.5/s) the
 * visible panels read the trainer, the whole 100x32 screen (four panels,
 * output, prompt, status) is composed into a canvas by tui_compose, and
 * screen_flush copies it to curses, whose output goes to /dev/null as an
 * xterm-256color (so no terminal is needed; without that terminfo entry the
 * copy is skipped and the line says so). That is the TUI's whole frame.
 * Printed side by side: the median steps/s of each mode over the blocks,
 * the overhead in percent (the median over block pairs of 1 - live /
 * headless, which drifting load on a shared machine disturbs less than a
 * ratio of medians, but still disturbs), and the cost of one frame measured
 * directly, whose share of the training time is the overhead without that
 * noise. The budget is 5%.
 * Not a test: it prints, it does not judge.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ncursesw/curses.h>

#include "core/blas.h"
#include "tui/screen.h"

#define BLOCK_SEC 1.5
#define BLOCKS 6
#define FRAME_SEC 0.1

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int die(const char *what) {
    fprintf(stderr, "bench_tui: %s: %s\n", what, icl_error());
    return 1;
}

typedef struct {
    double steps_per_s;
    double frame_s;  /* total time in frames */
    int frames;
    double worst;    /* the slowest frame */
} block_result;

/* Train for BLOCK_SEC; with t, compose a frame every FRAME_SEC. */
static icl_status run_block(trainer *tr, tui *t, const eval_report *r, block_result *out) {
    memset(out, 0, sizeof *out);
    long steps = 0;
    double t0 = now_s(), next = t0;
    while (now_s() - t0 < BLOCK_SEC) {
        icl_status st = trainer_step(tr);
        if (st) return st;
        steps++;
        if (t && now_s() >= next) {
            double f0 = now_s();
            long hs[1] = {0};
            double hv[1] = {r ? lbind_eval_summary(r) : NAN};
            tui_source src = {.tr = tr, .m = tr->m, .t = tr->t, .eval = r, .eval_step = 0, .eval_hist_step = hs,
                              .eval_hist_value = hv, .n_eval_hist = r ? 1 : 0, .running = 1,
                              .steps_per_sec = steps / (f0 - t0), .eta_sec = -1, .focus = "prompt",
                              .hints = "[F1 help] [F5 run/pause] [F10 step] [Esc panels] [PgUp/PgDn scroll]"};
            int cx, cy;
            tui_compose(t, &src, 0, &cx, &cy);
            screen_flush(&t->scr, cx, cy);
            double dt = now_s() - f0;
            out->frame_s += dt;
            out->frames++;
            if (dt > out->worst) out->worst = dt;
            next = f0 + FRAME_SEC;
        }
    }
    out->steps_per_s = steps / (now_s() - t0);
    return ICL_OK;
}

/* A screen without a terminal: the panels, an output with some text. */
static tui *make_screen(int cols, int lines) {
    static const char *const names[TUI_NPANELS] = {"loss", "icl", "attention", "ssm", "model"};
    tui *t = calloc(1, sizeof *t);
    if (!t || tui_output_init(&t->out, 1000) != ICL_OK) return NULL;
    t->zoom = -1;
    for (int i = 0; i < TUI_NPANELS; i++)
        if (!(t->p[i] = panel_new(names[i]))) return NULL;
    if (!(t->status = panel_status_new())) return NULL;
    if (canvas_init(&t->scr.cv, cols, lines) != ICL_OK) return NULL;
    t->scr.cv.colors = t->scr.colors = 256;
    tui_layout_compute(&t->scr.lay, cols, lines);
    for (int i = 0; i < 40; i++) tui_output_printf(&t->out, TUI_ROLE_TEXT, "line %d of the output: tr:step(%d)\n", i, i);
    return t;
}

/* Curses on /dev/null as an xterm-256color, for screen_flush; 0 if that
 * terminal type is unknown. */
static int attach_null_terminal(tui *t) {
    FILE *out = fopen("/dev/null", "w"), *in = fopen("/dev/null", "r");
    SCREEN *scr = out && in ? newterm("xterm-256color", out, in) : NULL;
    if (!scr) return 0;
    set_term(scr);
    start_color();
    use_default_colors();
    screen *s = &t->scr;
    s->term = scr;
    s->term_out = out;
    s->active = 1;
    s->term_colors = 256;
    s->theme = theme_find("default");
    for (int r = 0; r < TUI_ROLE_COUNT; r++) s->style[r] = theme_style(s->theme, (tui_role)r, 256);
    s->pairs = calloc(257 * 257, sizeof(int));
    return s->pairs != NULL;
}

static void free_screen(tui *t) {
    if (!t) return;
    if (t->scr.active) {
        endwin();
        delscreen(t->scr.term);
        fclose(t->scr.term_out);
        free(t->scr.pairs);
    }
    for (int i = 0; i < TUI_NPANELS; i++) panel_free(t->p[i]);
    panel_free(t->status);
    tui_output_free(&t->out);
    canvas_free(&t->scr.cv);
    free(t);
}

int main(void) {
    task_spec ts;
    task_spec_default(&ts, "linear_regression");
    task_spec_set(&ts, "n_dims", 5);
    task_spec_set(&ts, "n_points", 20);
    task *tk = NULL;
    if (task_create(&tk, &ts)) return die("task");
    model_spec ms;
    model_spec_default(&ms, "mambaformer");
    model_spec_set(&ms, "n_dims", 5);
    model_spec_set(&ms, "d_model", 64);
    model_spec_set(&ms, "n_layer", 4);
    model_spec_set(&ms, "n_head", 4);
    ms.seed = 1;
    model *m = NULL;
    if (model_create(&m, &ms)) return die("model");
    optim_config oc;
    optim_config_default(&oc);
    oc.lr = 1e-3f;
    oc.clip = 10;
    trainer tr;
    if (trainer_init(&tr, m, tk, &oc, 64, 1)) return die("trainer");
    eval_options eo;
    eval_options_default(&eo, tk);
    eo.n_prompts = 128;
    eval_report rep;
    if (evaluate(m, tk, &eo, &rep)) return die("evaluate");
    tui *t = make_screen(100, 32);
    if (!t) return die("screen");
    int curses = attach_null_terminal(t);

    printf("iclplay TUI benchmark: the default experiment (mambaformer, d_model 64, n_layer 4, 4 heads;\n"
           "linear regression d = 5, 20 examples; batch 64), %d threads, %d blocks of %.1f s per mode\n\n",
           blas_get_threads(), BLOCKS, BLOCK_SEC);
    for (int i = 0; i < 3; i++) /* warm-up */
        if (trainer_step(&tr)) return die("step");
    double hs[BLOCKS], ps[BLOCKS], ratio[BLOCKS], frame_total = 0, worst = 0, time_total = 0;
    int frames = 0;
    for (int b = 0; b < BLOCKS; b++) { /* alternate, so drifting machine load hits both modes */
        block_result h, p;
        if (run_block(&tr, NULL, NULL, &h)) return die("step");
        if (run_block(&tr, t, &rep, &p)) return die("step");
        hs[b] = h.steps_per_s;
        ps[b] = p.steps_per_s;
        ratio[b] = 1.0 - p.steps_per_s / h.steps_per_s;
        frame_total += p.frame_s;
        frames += p.frames;
        time_total += BLOCK_SEC;
        if (p.worst > worst) worst = p.worst;
    }
    double h = median(hs, BLOCKS), p = median(ps, BLOCKS), over = median(ratio, BLOCKS);
    double frame_ms = frames ? 1e3 * frame_total / frames : NAN;
    printf("%-34s %10s\n", "mode", "steps/s");
    printf("%-34s %10.2f\n", "headless", h);
    printf("%-34s %10.2f   overhead %+.1f%% (median over block pairs; %.1f%% .. %.1f%%)\n",
           "all panels live, 10 frames/s", p, 100.0 * over, 100.0 * ratio[0], 100.0 * ratio[BLOCKS - 1]);
    printf("\none frame (update visible panels + compose 100x32%s): %.2f ms mean, %.2f ms worst, %d frames\n",
           curses ? " + copy to curses" : "; no xterm-256color terminfo: no copy to curses", frame_ms, 1e3 * worst,
           frames);
    printf("time in frames while training: %.2f%% (budget 5%%)\n", 100.0 * frame_total / time_total);

    /* the frame alone at other sizes (no training in between: the probes
     * see the same forward pass, as when paused; force a full update) */
    printf("\n%-12s %14s\n", "screen", "ms per frame");
    const int sizes[3][2] = {{80, 24}, {100, 32}, {200, 60}};
    for (int s = 0; s < 3; s++) {
        tui *u = make_screen(sizes[s][0], sizes[s][1]);
        if (!u) return die("screen");
        tui_source src = {.tr = &tr, .m = m, .t = tk, .eval = &rep, .running = 1, .focus = "prompt", .hints = ""};
        int cx, cy, n = 20;
        double t0 = now_s();
        for (int i = 0; i < n; i++) tui_compose(u, &src, 1, &cx, &cy);
        printf("%3dx%-8d %14.2f\n", sizes[s][0], sizes[s][1], 1e3 * (now_s() - t0) / n);
        free_screen(u);
    }
    free_screen(t);
    eval_report_free(&rep);
    trainer_free(&tr);
    model_free(m);
    task_free(tk);
    return 0;
}
