/*
 * panel_model.c - the model panel: the block list with each block's
 * parameter count and the L2 norm of its gradient from the last step as a
 * bar (relative to the largest), plus the sizes that matter for memory: the
 * recurrent state of a Mamba layer and the key-value cache of an attention
 * layer at the last forward's length.
 *
 *   ╭─ model  mambaformer  0.23M params ─────────╮
 *   │D 64  E 128  N 16  heads 4                   │
 *   │state/layer: mamba 2.43k  attn KV 10.2k @T=80│
 *   │ #  block      params  grad norm             │
 *   │ 0  mamba       24.6k  ██████▍       0.0123  │
 *   │ 1  attn        16.6k  ██▏           0.0041  │
 *   │ -  rest         4.6k  █             0.0019  │
 *   ╰─────────────────────────────────────────────╯
 *
 * "rest" is read-in, positions, final norm and read-out together (as
 * model_grad_norms reports them). Gradient norms show "-" until a step has
 * been taken. Keys: up / down, PgUp / PgDn scroll a long block list.
 *
 * Not here: the numbers (model_block_params, model_grad_norms in model.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/panel.h"

typedef struct {
    panel base;
    int has_model, has_grads;
    char arch[24];
    int n_blocks;
    block_kind kind[MODEL_MAX_BLOCKS];
    double params[MODEL_MAX_BLOCKS + 1];  /* per block, then the rest */
    double norms[MODEL_MAX_BLOCKS + 1];   /* gradient L2 norms, same order */
    double total;
    int D, E, N, NH, K, T;
    int top;                              /* first block row shown (scrolling) */
    int rows_shown;                       /* block rows that fit in the last draw */
} model_panel;

static void model_update(panel *p, const tui_source *src) {
    model_panel *mp = (model_panel *)p;
    const model *m = src->m;
    mp->has_model = m != NULL;
    if (!m) return;
    snprintf(mp->arch, sizeof mp->arch, "%s", m->spec.arch);
    mp->n_blocks = m->spec.n_blocks;
    for (int i = 0; i < mp->n_blocks; i++) mp->kind[i] = m->spec.blocks[i];
    for (int i = 0; i <= mp->n_blocks; i++) mp->params[i] = (double)model_block_params(m, i);
    mp->total = (double)m->n_params;
    mp->has_grads = src->tr && src->tr->step > 0;
    if (mp->has_grads) model_grad_norms(m, mp->norms);
    mp->D = m->D;
    mp->E = m->E;
    mp->N = m->N;
    mp->NH = m->NH;
    mp->K = m->K;
    mp->T = m->T;
}

/* A bar of `frac` (0..1) of w cells in eighths ("█▌"), '#' in ASCII mode. */
static void draw_bar(canvas *c, int x, int y, int w, double frac, tui_role role) {
    static const char *const eighths[8] = {"", "\xe2\x96\x8f", "\xe2\x96\x8e", "\xe2\x96\x8d",
                                           "\xe2\x96\x8c", "\xe2\x96\x8b", "\xe2\x96\x8a", "\xe2\x96\x89"};
    if (!(frac > 0) || w <= 0) return;
    if (frac > 1) frac = 1;
    int units = c->ascii ? (int)lround(frac * w) * 8 : (int)lround(frac * w * 8);
    if (units == 0) units = 1; /* a non-zero norm always shows */
    int full = units / 8, rest = units % 8, i = 0;
    for (; i < full; i++) canvas_put(c, x + i, y, c->ascii ? "#" : "\xe2\x96\x88", role, 0);
    if (rest) canvas_put(c, x + i, y, c->ascii ? "#" : eighths[rest], role, 0);
}

static void model_draw(panel *p, canvas *c, int focused) {
    model_panel *mp = (model_panel *)p;
    char title[96], num[32];
    if (mp->has_model) {
        panel_format_count(mp->total, num, sizeof num);
        snprintf(title, sizeof title, "model  %s  %s params", mp->arch, num);
    } else snprintf(title, sizeof title, "model");
    canvas in = panel_frame(c, title, focused);
    if (!mp->has_model) {
        panel_message(&in, "no data: no model");
        return;
    }
    int y = 0;
    int has_mamba = 0, has_attn = 0;
    for (int i = 0; i < mp->n_blocks; i++) {
        has_mamba |= mp->kind[i] == BLOCK_MAMBA || mp->kind[i] == BLOCK_S4MAMBA;
        has_attn |= mp->kind[i] == BLOCK_ATTN;
    }
    if (in.h >= 6) {
        canvas_textf(&in, 0, y++, TUI_ROLE_TEXT, 0, "D %d  E %d  N %d  heads %d  blocks %d", mp->D, mp->E, mp->N,
                     mp->NH, mp->n_blocks);
        /* recurrent state: E x N scan state + E x (K-1) conv window; KV cache: 2 x D per token */
        char st[128] = "state/layer:";
        size_t len = strlen(st);
        if (has_mamba) {
            panel_format_count((double)mp->E * mp->N + (double)mp->E * (mp->K - 1), num, sizeof num);
            len += (size_t)snprintf(st + len, sizeof st - len, " mamba %s", num);
        }
        if (has_attn && mp->T > 0 && len < sizeof st) {
            panel_format_count(2.0 * mp->D * mp->T, num, sizeof num);
            snprintf(st + len, sizeof st - len, "  attn KV %s @T=%d", num, mp->T);
        }
        if (has_mamba || (has_attn && mp->T > 0)) canvas_text_max(&in, 0, y++, in.w, st, TUI_ROLE_DIM, 0);
    }
    /* columns: index, kind, params, bar, norm */
    const int name_w = 8, par_w = 7, norm_w = 9;
    int bar_x = 4 + name_w + par_w + 2, bar_w = in.w - bar_x - norm_w - 1;
    if (y < in.h && in.h >= 4) {
        canvas_text(&in, 0, y, " #", TUI_ROLE_DIM, 0);
        canvas_text(&in, 4, y, "block", TUI_ROLE_DIM, 0);
        canvas_text(&in, 4 + name_w + par_w - 6, y, "params", TUI_ROLE_DIM, 0);
        if (bar_w > 0 || in.w >= bar_x + 9) canvas_text(&in, bar_x, y, "grad norm", TUI_ROLE_DIM, 0);
        y++;
    }
    double mx = 0;
    for (int i = 0; mp->has_grads && i <= mp->n_blocks; i++)
        if (isfinite(mp->norms[i])) mx = fmax(mx, mp->norms[i]);
    int rows = mp->n_blocks + 1, room = in.h - y;
    mp->rows_shown = room;
    if (mp->top > rows - room) mp->top = rows - room > 0 ? rows - room : 0;
    for (int r = mp->top; r < rows && y < in.h; r++, y++) {
        int rest = r == mp->n_blocks;
        if (rest) canvas_text(&in, 0, y, " -", TUI_ROLE_DIM, 0);
        else canvas_textf(&in, 0, y, TUI_ROLE_DIM, 0, "%2d", r);
        canvas_text_max(&in, 4, y, name_w, rest ? "rest" : block_kind_name(mp->kind[r]), TUI_ROLE_TEXT, 0);
        panel_format_count(mp->params[r], num, sizeof num);
        int nw = tui_text_width(num);
        canvas_text(&in, 4 + name_w + par_w - nw, y, num, TUI_ROLE_TEXT, 0);
        if (!mp->has_grads) {
            if (bar_w > 0) canvas_text(&in, bar_x, y, "-", TUI_ROLE_DIM, 0);
            continue;
        }
        double g = mp->norms[r];
        if (bar_w > 0)
            draw_bar(&in, bar_x, y, bar_w, mx > 0 ? g / mx : 0, isfinite(g) ? TUI_ROLE_LOSS_TRAIN : TUI_ROLE_ERROR);
        snprintf(num, sizeof num, "%.3g", g);
        if (bar_w > 0) canvas_text(&in, in.w - norm_w, y, num, isfinite(g) ? TUI_ROLE_TEXT : TUI_ROLE_ERROR, 0);
    }
    /* more rows below or above: say so in the frame's corner */
    if (rows > room && room > 0 && c->h >= 3 && c->w >= 8)
        canvas_textf(c, c->w - 7, c->h - 1, TUI_ROLE_DIM, 0, "%d/%d", mp->top + 1, rows);
}

static int model_key(panel *p, int key) {
    model_panel *mp = (model_panel *)p;
    int page = mp->rows_shown > 1 ? mp->rows_shown - 1 : 1;
    switch (key) {
    case PANEL_KEY_UP: mp->top--; break;
    case PANEL_KEY_DOWN: mp->top++; break;
    case PANEL_KEY_PGUP: mp->top -= page; break;
    case PANEL_KEY_PGDN: mp->top += page; break;
    case PANEL_KEY_HOME: mp->top = 0; break;
    default: return 0;
    }
    int max_top = mp->n_blocks + 1 - mp->rows_shown;
    if (mp->top > max_top) mp->top = max_top;
    if (mp->top < 0) mp->top = 0;
    return PANEL_HANDLED | PANEL_REDRAW;
}

static const panel_class model_class = {
    "model", "up/down PgUp/PgDn scroll the blocks", 30, 5, model_update, model_draw, model_key, NULL,
};

panel *panel_model_new(void) {
    model_panel *mp = calloc(1, sizeof *mp);
    if (!mp) {
        icl_fail(ICL_ERR_NOMEM, "panel model: out of memory");
        return NULL;
    }
    mp->base.cls = &model_class;
    return &mp->base;
}
