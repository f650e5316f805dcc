/*
 * bench_tui.c - `make bench`: what the live panels cost the training.
 *
 * Three models are trained in alternating blocks, headless (trainer_step
 * only) and with the screen live: the TUI's default experiment (a
 * MambaFormer, d_model 64, n_layer 4, 4 heads, linear regression d = 5, 20
 * examples, batch 64; blocks of 1.5 s) and a medium Mamba and Transformer
 * (d_model 128, n_layer 8, 8 heads, d = 10, 40 examples; blocks of 5 s),
 * whose steps take 0.5-1 s. Live means what the TUI does: at most every
 * 50 ms a frame, between steps (the visible panels read the trainer) and
 * inside a step through core/tick.h (frozen: drawn from the panels' last
 * data); a frame composes the whole 100x32 screen (four panels, output,
 * prompt, status) with tui_compose and screen_flush copies it to curses,
 * whose output goes to /dev/null as an xterm-256color (no terminal needed;
 * without that terminfo entry the copy is skipped and the header says so).
 * Printed per model: steps/s of each mode (medians over blocks), the
 * overhead (the median over block pairs of 1 - live / headless, which
 * drifting load on a shared machine disturbs), the share of training time
 * spent in frames (measured directly: the overhead without that noise; the
 * issue's budget is 5%), frames per second (the floor is 10), the
 * longest gap between two frames, and the frame's mean and worst cost.
 * Not a test: it prints, it does not judge.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ncursesw/curses.h>

#include "core/blas.h"
#include "core/tick.h"
#include "tui/screen.h"

#define FRAME_SEC 0.05 /* the TUI's FRAME_TRAIN: 20 frames/s at most */
#define TICK_POLL 0.02 /* the TUI's TICK_POLL */

#include "bench_util.h"

static int die(const char *what) {
    fprintf(stderr, "bench_tui: %s: %s\n", what, icl_error());
    return 1;
}

typedef struct {
    double steps_per_s;
    double frame_s;  /* total time in frames */
    int frames;
    double worst;    /* the slowest frame */
    double max_gap;  /* the longest time between two frames */
} block_result;

/* What a frame needs; the frame callback runs between steps and, through
 * core/tick.h, between the blocks of a step, exactly as the TUI's does
 * (tui_run.c: on_mid_step draws frozen, i.e. from the panels' last data). */
typedef struct {
    tui *t;
    trainer *tr;
    const eval_report *r;
    block_result *out;
    double t0, last;
    long steps;
} frame_ctx;

static void frame(frame_ctx *c, int mid_step) {
    double f0 = now_s();
    if (f0 - c->last < FRAME_SEC) return;
    long hs[1] = {0};
    double hv[1] = {c->r ? lbind_eval_summary(c->r) : NAN};
    tui_source src = {.tr = c->tr, .m = c->tr->m, .t = c->tr->t, .eval = c->r, .eval_step = 0,
                      .eval_hist_step = hs, .eval_hist_value = hv, .n_eval_hist = c->r ? 1 : 0, .running = 1,
                      .steps_per_sec = c->steps / (f0 - c->t0), .eta_sec = -1, .focus = "prompt",
                      .hints = "[F1 help] [F5 run/pause] [F10 step] [Esc panels] [PgUp/PgDn scroll]"};
    int cx, cy;
    c->t->frozen = mid_step;
    tui_compose(c->t, &src, 0, &cx, &cy);
    c->t->frozen = 0;
    screen_flush(&c->t->scr, cx, cy);
    double f1 = now_s(), dt = f1 - f0;
    if (f0 - c->last > c->out->max_gap) c->out->max_gap = f0 - c->last;
    c->out->frame_s += dt;
    c->out->frames++;
    if (dt > c->out->worst) c->out->worst = dt;
    c->last = f1;
}

static void on_tick(void *ud) { frame(ud, 1); }

/* Train for block_sec; with t, frames at most every FRAME_SEC. */
static icl_status run_block(trainer *tr, tui *t, const eval_report *r, double block_sec, block_result *out) {
    memset(out, 0, sizeof *out);
    frame_ctx c = {t, tr, r, out, now_s(), 0, 0};
    c.last = c.t0;
    if (t) icl_tick_set(on_tick, &c, TICK_POLL);
    while (now_s() - c.t0 < block_sec) {
        icl_status st = trainer_step(tr);
        if (st) {
            icl_tick_set(NULL, NULL, 0);
            return st;
        }
        c.steps++;
        if (t) frame(&c, 0);
    }
    icl_tick_set(NULL, NULL, 0);
    double end = now_s();
    if (t && end - c.last > out->max_gap) out->max_gap = end - c.last;
    out->steps_per_s = c.steps / (end - c.t0);
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

typedef struct { const char *name, *arch; int D, L, H, d, points; double block_sec; int blocks; } config;

/* One model: alternating headless and live blocks; prints one line. The
 * small model is kept (with its trainer and evaluation) for the frame-cost
 * table that follows. */
static int bench_config(const config *k, tui *t, FILE *o) {
    task_spec ts;
    task_spec_default(&ts, "linear_regression");
    task_spec_set(&ts, "n_dims", k->d);
    task_spec_set(&ts, "n_points", k->points);
    task *tk = NULL;
    if (task_create(&tk, &ts)) return die("task");
    model_spec ms;
    model_spec_default(&ms, k->arch);
    model_spec_set(&ms, "n_dims", k->d);
    model_spec_set(&ms, "d_model", k->D);
    model_spec_set(&ms, "n_layer", k->L);
    model_spec_set(&ms, "n_head", k->H);
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
    for (int i = 0; i < 2; i++) /* warm-up */
        if (trainer_step(&tr)) return die("step");
    double hs[16], ps[16], ratio[16], frame_total = 0, worst = 0, time_total = 0, gap = 0;
    int frames = 0;
    for (int b = 0; b < k->blocks; b++) { /* alternate, so drifting machine load hits both modes */
        block_result h, p;
        if (run_block(&tr, NULL, NULL, k->block_sec, &h)) return die("step");
        if (run_block(&tr, t, &rep, k->block_sec, &p)) return die("step");
        hs[b] = h.steps_per_s;
        ps[b] = p.steps_per_s;
        ratio[b] = 1.0 - p.steps_per_s / h.steps_per_s;
        frame_total += p.frame_s;
        frames += p.frames;
        time_total += k->block_sec;
        if (p.worst > worst) worst = p.worst;
        if (p.max_gap > gap) gap = p.max_gap;
    }
    double h = median(hs, k->blocks), p = median(ps, k->blocks), over = median(ratio, k->blocks);
    fprintf(o, "%-7s %-12s %9.2f %9.2f %+8.1f%% %9.2f%% %8.1f %8.0f %8.2f %8.2f\n", k->name, k->arch, h, p,
            100.0 * over, 100.0 * frame_total / time_total, frames / time_total, 1e3 * gap,
            frames ? 1e3 * frame_total / frames : NAN, 1e3 * worst);
    eval_report_free(&rep);
    trainer_free(&tr);
    model_free(m);
    task_free(tk);
    return 0;
}

int main(void) {
    const config cfgs[] = {
        {"small", "mambaformer", 64, 4, 4, 5, 20, 1.5, 6}, /* the TUI's default experiment */
        {"medium", "mamba", 128, 8, 8, 10, 40, 5.0, 3},    /* a step of 0.5-1 s: the tick keeps frames coming */
        {"medium", "transformer", 128, 8, 8, 10, 40, 5.0, 3},
    };
    tui *t = make_screen(100, 32);
    if (!t) return die("screen");
    int curses = attach_null_terminal(t);
    printf("iclplay TUI benchmark: training with the screen live (frames at most every %.0f ms, between steps\n"
           "and inside them through core/tick.h, as the TUI draws) against headless, alternating blocks;\n"
           "linear regression, batch 64, Adam; %d threads. A frame: update the visible panels (between steps),\n"
           "compose 100x32 and copy it to curses%s.\n\n",
           1e3 * FRAME_SEC, blas_get_threads(), curses ? "" : " (no xterm-256color terminfo: copy skipped)");
    printf("%-7s %-12s %9s %9s %9s %10s %8s %8s %8s %8s\n", "config", "arch", "headless", "live", "overhead",
           "in frames", "frames/s", "max gap", "frame ms", "worst ms");
    printf("%-7s %-12s %9s %9s %9s %10s %8s %8s %8s %8s\n", "", "", "steps/s", "steps/s", "(median)", "(budget 5%)",
           "(>=10)", "ms", "mean", "");
    for (size_t c = 0; c < sizeof cfgs / sizeof *cfgs; c++)
        if (bench_config(&cfgs[c], t, stdout)) return 1;
    printf("\noverhead: the median over block pairs of 1 - live/headless (load on a shared machine disturbs it);\n"
           "in frames: the share of training time spent in frames, measured directly (the noise-free overhead).\n");
    free_screen(t);

    /* the frame alone at other sizes (no training in between: the probes
     * see the same forward pass, as when paused; force a full update) */
    task_spec ts;
    task_spec_default(&ts, "linear_regression");
    task_spec_set(&ts, "n_dims", 5);
    task_spec_set(&ts, "n_points", 20);
    task *tk = NULL;
    model_spec ms;
    model_spec_default(&ms, "mambaformer");
    model_spec_set(&ms, "n_dims", 5);
    model *m = NULL;
    if (task_create(&tk, &ts) || model_create(&m, &ms)) return die("model");
    optim_config oc;
    optim_config_default(&oc);
    trainer tr;
    if (trainer_init(&tr, m, tk, &oc, 64, 1) || trainer_step(&tr)) return die("trainer");
    eval_options eo;
    eval_options_default(&eo, tk);
    eo.n_prompts = 128;
    eval_report rep;
    if (evaluate(m, tk, &eo, &rep)) return die("evaluate");
    printf("\n%-12s %14s   (the default experiment's model; all panels read again)\n", "screen", "ms per frame");
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
    eval_report_free(&rep);
    trainer_free(&tr);
    model_free(m);
    task_free(tk);
    return 0;
}
