/*
 * tui_source.h - what the panels may read, once per tick.
 *
 * The screen manager fills one tui_source before each redraw and hands it
 * to every panel's update(), which copies the numbers it needs into the
 * panel's own memory. Panels never keep these pointers: the trainer may be
 * closed, the model replaced, or the report freed between two ticks, and
 * draw() must not see any of that. Every pointer may be NULL (nothing
 * loaded yet), and every panel then shows "no data".
 *
 * Not here: the panels (panel.h), the engine (trainer.h, model.h).
 */
#ifndef ICL_TUI_SOURCE_H
#define ICL_TUI_SOURCE_H

#include "nn/model.h"
#include "tasks/task.h"
#include "train/evaluate.h"
#include "train/trainer.h"

typedef struct {
    const trainer *tr;         /* the trainer the panels follow (loss history, step), or NULL */
    model *m;                  /* its model (probes read the last forward), or NULL */
    const task *t;             /* its task (layout of the tokens, metric), or NULL */

    const eval_report *eval;   /* the last evaluation (ICL error curves), or NULL */
    long eval_step;            /* the trainer step it was made at */
    const long *eval_hist_step;    /* (n_eval_hist) steps of past evaluations */
    const double *eval_hist_value; /* (n_eval_hist) their summary (mean model metric) */
    int n_eval_hist;

    int running;               /* 1 while training runs, 0 when paused or idle */
    double steps_per_sec;      /* measured rate; <= 0 or NaN if unknown */
    double eta_sec;            /* time to target_steps; < 0 or NaN if unknown */
    long target_steps;         /* the step the run stops at; 0 if none */

    const char *focus;         /* who has the keys, e.g. "prompt" or "panels: loss" */
    const char *hints;         /* key hints for that focus, e.g. "[F1 help] [F5 run/pause]" */
    const char *message;       /* a transient message for the status line, or NULL */
} tui_source;

#endif
