/*
 * panel_ssm.c - the SSM panel: what one Mamba layer's selective scan did on
 * one prompt of the model's last forward pass, as a heatmap with time along
 * the x axis (token kinds marked below) and channels or states down the y
 * axis. Four views, cycled with v:
 *   |h_t|   sum over the N states of |h[t, e, n]|, per time t and channel e
 *   Delta   the step size Delta[t, e] (softplus output, > 0)
 *   B, C    the input and output projections B[t, n], C[t, n] (signed:
 *           a blue-white-red ramp centred on 0)
 * With more channels than pixel rows, evenly spaced channels are shown
 * (every k-th), not averaged, so each row is one real channel.
 *
 *   ╭─ SSM  layer 1/3  |h_t| ─────────────────────╮
 *   │▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀   rows: channel     │
 *   │▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀   (every 8th of 128)│
 *   │xyxyxyxyxyxyxyxyxyxyxyxy   cols: t           │
 *   │0.01 ▒▒▒▒▒▒▒▒▒▒▒▒▒▒▒ 3.2                     │
 *   ╰─────────────────────────────────────────────╯
 *
 * update() copies the four views of the chosen Mamba layer. The states are
 * recomputed from saved activations (model_ssm_states: one scan of T x E x
 * N, nothing during training), so only the chosen layer is probed, and only
 * when the forward pass, layer or prompt changed (panel_forward_id); after
 * a layer key the panel says "loading" until the next update. Only Mamba
 * blocks count as layers; S4-Mamba blocks have no selective scan to show.
 *
 * Keys: v next view, { } (or up / down) layer, p prompt.
 *
 * Not here: the probes (model_probe.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/panel.h"
#include "tui/plot.h"

#define SSM_STATE_BUDGET ((size_t)1 << 24) /* floats of (T, E, N) states probed per layer */

enum { VIEW_H = 0, VIEW_DELTA, VIEW_B, VIEW_C, VIEW_COUNT };
static const char *const view_names[VIEW_COUNT] = {"|h_t|", "Delta", "B", "C"};

typedef struct {
    panel base;
    int has_model, has_forward;
    int n_mamba;                     /* Mamba blocks */
    int blk[MODEL_MAX_BLOCKS];       /* block index of each Mamba layer */
    int B, T, E, N;                  /* last forward's prompts and tokens; channels; states */
    int layer, view, prompt;
    int data_layer, data_prompt;     /* what `data` holds */
    uint64_t data_id;                /* panel_forward_id of the forward it came from */
    float *data;                     /* |h| (E, T), Delta (E, T), B (N, T), C (N, T) */
    size_t cap;
    float *states;                   /* (T, E, N) probe scratch */
    size_t states_cap;
    float *tmp;                      /* (T, max(E, N)) probe output, then the shown rows */
    size_t tmp_cap;
    char *marks;                     /* (T + 1) token kinds */
    int marks_cap;
    char err[160];
} ssm_panel;

static int grow_floats(float **p, size_t *cap, size_t n) {
    if (n <= *cap) return 1;
    float *q = realloc(*p, n * sizeof *q);
    if (!q) return 0;
    *p = q;
    *cap = n;
    return 1;
}

static size_t layer_floats(const ssm_panel *sp) { return (size_t)(2 * sp->E + 2 * sp->N) * sp->T; }

/* The (rows, T) matrix of view v; [out] *rows. */
static const float *view_data(const ssm_panel *sp, int v, int *rows) {
    const float *base = sp->data;
    size_t ET = (size_t)sp->E * sp->T, NT = (size_t)sp->N * sp->T;
    *rows = v <= VIEW_DELTA ? sp->E : sp->N;
    return base + (v == VIEW_H ? 0 : v == VIEW_DELTA ? ET : v == VIEW_B ? 2 * ET : 2 * ET + NT);
}

/* dst (rows, T) = src (T, rows) transposed: time goes along the x axis. */
static void transpose(float *dst, const float *src, int T, int rows) {
    for (int t = 0; t < T; t++)
        for (int r = 0; r < rows; r++) dst[(size_t)r * T + t] = src[(size_t)t * rows + r];
}

/* Probe layer l into sp->data. */
static icl_status probe_layer(ssm_panel *sp, const model *m, int l) {
    const int T = sp->T, E = sp->E, N = sp->N;
    float *out = sp->data;
    icl_status st = model_ssm_states(m, sp->blk[l], sp->prompt, sp->states);
    if (st) return st;
    for (int t = 0; t < T; t++) /* |h_t| summed over states, as (T, E) */
        for (int e = 0; e < E; e++) {
            const float *h = sp->states + ((size_t)t * E + e) * N;
            double s = 0;
            for (int n = 0; n < N; n++) s += fabsf(h[n]);
            sp->tmp[(size_t)t * E + e] = (float)s;
        }
    transpose(out, sp->tmp, T, E);
    st = model_ssm_params(m, sp->blk[l], sp->prompt, sp->tmp, NULL, NULL);
    if (st) return st;
    transpose(out + (size_t)E * T, sp->tmp, T, E);
    st = model_ssm_params(m, sp->blk[l], sp->prompt, NULL, sp->tmp, NULL);
    if (st) return st;
    transpose(out + (size_t)2 * E * T, sp->tmp, T, N);
    st = model_ssm_params(m, sp->blk[l], sp->prompt, NULL, NULL, sp->tmp);
    if (st) return st;
    transpose(out + (size_t)2 * E * T + (size_t)N * T, sp->tmp, T, N);
    return ICL_OK;
}

static void ssm_update(panel *p, const tui_source *src) {
    ssm_panel *sp = (ssm_panel *)p;
    const model *m = src->m;
    uint64_t id = panel_forward_id(m);
    if (id && sp->has_forward && id == sp->data_id && sp->layer == sp->data_layer && sp->prompt == sp->data_prompt)
        return; /* nothing new to show */
    sp->has_model = m != NULL;
    sp->has_forward = 0;
    sp->err[0] = '\0';
    if (!m) return;
    sp->n_mamba = 0;
    for (int i = 0; i < m->spec.n_blocks; i++)
        if (m->spec.blocks[i] == BLOCK_MAMBA) sp->blk[sp->n_mamba++] = i;
    if (sp->layer >= sp->n_mamba) sp->layer = sp->n_mamba > 0 ? sp->n_mamba - 1 : 0;
    sp->B = m->B;
    if (sp->prompt >= sp->B) sp->prompt = 0;
    if (sp->n_mamba == 0 || m->B == 0 || m->T == 0) return;
    sp->T = m->T;
    sp->E = m->E;
    sp->N = m->N;
    size_t states = (size_t)sp->T * sp->E * sp->N;
    if (states > SSM_STATE_BUDGET) {
        snprintf(sp->err, sizeof sp->err, "T x E x N = %zu states: too many to probe each tick", states);
        return;
    }
    int wide = sp->E > sp->N ? sp->E : sp->N;
    if (!grow_floats(&sp->data, &sp->cap, layer_floats(sp)) ||
        !grow_floats(&sp->states, &sp->states_cap, states) ||
        !grow_floats(&sp->tmp, &sp->tmp_cap, (size_t)sp->T * wide)) {
        snprintf(sp->err, sizeof sp->err, "out of memory for the SSM probes");
        return;
    }
    if (sp->T + 1 > sp->marks_cap) {
        char *mk = realloc(sp->marks, (size_t)sp->T + 1);
        if (!mk) {
            snprintf(sp->err, sizeof sp->err, "out of memory for the SSM probes");
            return;
        }
        sp->marks = mk;
        sp->marks_cap = sp->T + 1;
    }
    if (probe_layer(sp, m, sp->layer) != ICL_OK) {
        snprintf(sp->err, sizeof sp->err, "%s", icl_error());
        return;
    }
    panel_token_marks(src->t, sp->T, sp->marks);
    sp->data_layer = sp->layer;
    sp->data_prompt = sp->prompt;
    sp->data_id = id;
    sp->has_forward = 1;
}

static void ssm_draw(panel *p, canvas *c, int focused) {
    ssm_panel *sp = (ssm_panel *)p;
    char title[96];
    if (sp->has_model && sp->n_mamba > 0)
        snprintf(title, sizeof title, "SSM  layer %d/%d  %s  prompt %d", sp->layer + 1, sp->n_mamba,
                 view_names[sp->view], sp->prompt + 1);
    else snprintf(title, sizeof title, "SSM state");
    canvas in = panel_frame(c, title, focused);
    const char *msg = !sp->has_model                   ? "no data: no model"
                      : sp->n_mamba == 0                ? "no Mamba layers"
                      : sp->err[0]                      ? sp->err
                      : !sp->has_forward                ? "no data: no forward pass yet"
                      : sp->prompt != sp->data_prompt || sp->layer != sp->data_layer ? "loading..."
                                                                                      : NULL;
    if (msg) {
        panel_message(&in, msg);
        return;
    }
    int rows;
    const float *mat = view_data(sp, sp->view, &rows);

    int bar = in.h >= 4;
    int info_w = in.w >= 44 ? 20 : 0; /* axis names on the right when there is room */
    canvas area = canvas_view(&in, 0, 0, in.w - info_w, in.h - bar);
    int marks = sp->marks[0] && area.h >= 3;
    /* pixel rows available: two per cell with half blocks, one otherwise */
    int half = !in.ascii && theme_ramp_levels(TUI_RAMP_VIRIDIS, in.colors) > 0;
    int avail = (area.h - (marks ? 1 : 0)) * (half ? 2 : 1);
    int shown = rows, every = 1;
    if (avail > 0 && rows > avail) { /* subsample channels: every k-th */
        every = (rows + avail - 1) / avail;
        shown = (rows + every - 1) / every;
    }
    for (int r = 0; r < shown; r++)
        memcpy(sp->tmp + (size_t)r * sp->T, mat + (size_t)r * every * sp->T, sizeof(float) * sp->T);
    plot_heatmap_opts o;
    plot_heatmap_opts_default(&o);
    o.ramp = sp->view >= VIEW_B ? TUI_RAMP_DIVERGING : TUI_RAMP_VIRIDIS;
    o.keep_aspect = 0;
    o.col_marks = marks ? sp->marks : NULL;
    plot_heatmap_frame f;
    plot_heatmap(&area, sp->tmp, shown, sp->T, &o, &f);
    if (info_w) {
        canvas info = canvas_view(&in, in.w - info_w + 1, 0, info_w - 1, in.h - bar);
        const char *what = sp->view <= VIEW_DELTA ? "channel" : "state";
        canvas_textf(&info, 0, 0, TUI_ROLE_DIM, 0, "rows: %s", what);
        if (every > 1) canvas_textf(&info, 0, 1, TUI_ROLE_DIM, 0, "(every %d of %d)", every, rows);
        else canvas_textf(&info, 0, 1, TUI_ROLE_DIM, 0, "(%d)", rows);
        canvas_textf(&info, 0, 2, TUI_ROLE_DIM, 0, "cols: t (T = %d)", sp->T);
    }
    if (bar) plot_colorbar(&in, 0, in.h - 1, in.w < 30 ? in.w : 30, o.ramp, f.lo, f.hi);
}

static int ssm_key(panel *p, int key) {
    ssm_panel *sp = (ssm_panel *)p;
    switch (key) {
    case 'v': sp->view = (sp->view + 1) % VIEW_COUNT; break;
    case '{': case PANEL_KEY_UP: if (sp->layer > 0) sp->layer--; break;
    case '}': case PANEL_KEY_DOWN: if (sp->layer + 1 < sp->n_mamba) sp->layer++; break;
    case 'p': sp->prompt = sp->B > 0 ? (sp->prompt + 1) % sp->B : 0; break;
    default: return 0;
    }
    return PANEL_HANDLED | PANEL_REDRAW;
}

static void ssm_destroy(panel *p) {
    ssm_panel *sp = (ssm_panel *)p;
    free(sp->data);
    free(sp->states);
    free(sp->tmp);
    free(sp->marks);
    free(sp);
}

static const panel_class ssm_class = {
    "ssm", "v view (|h_t|, Delta, B, C)  { } or up/down layer  p prompt", 20, 6,
    ssm_update, ssm_draw, ssm_key, ssm_destroy,
};

panel *panel_ssm_new(void) {
    ssm_panel *sp = calloc(1, sizeof *sp);
    if (!sp) {
        icl_fail(ICL_ERR_NOMEM, "panel ssm: out of memory");
        return NULL;
    }
    sp->base.cls = &ssm_class;
    return &sp->base;
}
