/*
 * panel_attention.c - the attention panel: the attention probabilities of
 * one head of one attention layer, for one prompt of the model's last
 * forward pass, as a half-block heatmap (rows: query position, columns: key
 * position; causal, so the upper triangle is empty).
 *
 *   ╭─ attention  layer 2/2  head 1/4  prompt 1 ─╮
 *   │xy▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀                           │
 *   │xy▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀▀     rows: query           │
 *   │  xyxyxyxyxyxyxyxy     cols: key             │
 *   │0 ▒▒▒▒▒▒▒▒▒▒▒ 0.83                           │
 *   ╰─────────────────────────────────────────────╯
 *
 * "Layer k" is the k-th attention block of the model (so a MambaFormer's
 * first attention layer is block 1). The token kinds of the task (x and y
 * for interleaved regression, keys and values for MQAR) mark the axes.
 * update() copies every head of every layer when that fits a budget, so
 * changing head or layer shows the new map at once; larger models copy the
 * chosen head only, and the panel says "loading" until the next update.
 * Nothing is copied while the forward pass is unchanged (panel_forward_id).
 *
 * Keys: [ ] (or <- ->) change head, { } (or up / down) change layer, p
 * cycles the prompt, c switches the colour range between [0, max] and
 * [0, 1]. All stay within range.
 *
 * Not here: the probe (model_attention, model_probe.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tui/panel.h"
#include "tui/plot.h"

#define ATTN_BUDGET ((size_t)1 << 21) /* floats copied per update when taking every head */

typedef struct {
    panel base;
    int has_model, has_forward;
    int n_attn;                         /* attention blocks */
    int blk[MODEL_MAX_BLOCKS];          /* block index of each attention layer */
    int NH, B, T;                       /* heads; prompts and tokens of the last forward */
    int layer, head, prompt;            /* the chosen view */
    int l0, l1, h0, h1, data_prompt;    /* layers [l0, l1) x heads [h0, h1) of prompt data_prompt are in att */
    uint64_t data_id;                   /* panel_forward_id of the forward they came from */
    float *att;                         /* (l1-l0, h1-h0, T, T) */
    size_t cap;
    char *marks;                        /* (T + 1) token kinds, "" if none */
    int marks_cap;
    int unit_range;                     /* colour range [0, 1] instead of [0, max] */
    char err[160];                      /* a failed probe's message */
} attn_panel;

static int grow(attn_panel *ap, size_t floats, int T) {
    if (floats > ap->cap) {
        float *a = realloc(ap->att, floats * sizeof *a);
        if (!a) return 0;
        ap->att = a;
        ap->cap = floats;
    }
    if (T + 1 > ap->marks_cap) {
        char *m = realloc(ap->marks, (size_t)T + 1);
        if (!m) return 0;
        ap->marks = m;
        ap->marks_cap = T + 1;
    }
    return 1;
}

static void clamp_view(attn_panel *ap) {
    if (ap->layer >= ap->n_attn) ap->layer = ap->n_attn - 1;
    if (ap->layer < 0) ap->layer = 0;
    if (ap->head >= ap->NH) ap->head = ap->NH - 1;
    if (ap->head < 0) ap->head = 0;
    if (ap->prompt >= ap->B) ap->prompt = 0;
    if (ap->prompt < 0) ap->prompt = 0;
}

static void attn_update(panel *p, const tui_source *src) {
    attn_panel *ap = (attn_panel *)p;
    const model *m = src->m;
    uint64_t id = panel_forward_id(m);
    if (id && ap->has_forward && id == ap->data_id && ap->prompt == ap->data_prompt && ap->layer >= ap->l0 &&
        ap->layer < ap->l1 && ap->head >= ap->h0 && ap->head < ap->h1)
        return; /* the same forward pass: nothing new */
    ap->has_model = m != NULL;
    ap->has_forward = 0;
    ap->err[0] = '\0';
    if (!m) return;
    ap->n_attn = 0;
    for (int i = 0; i < m->spec.n_blocks; i++)
        if (m->spec.blocks[i] == BLOCK_ATTN) ap->blk[ap->n_attn++] = i;
    ap->NH = m->NH;
    ap->B = m->B;
    clamp_view(ap);
    if (ap->n_attn == 0 || m->B == 0 || m->T == 0) return;
    const size_t T = (size_t)m->T, tt = T * T;
    /* every head of every layer if it fits, else the chosen one */
    int all = (size_t)ap->n_attn * ap->NH * tt <= ATTN_BUDGET;
    int l0 = all ? 0 : ap->layer, l1 = all ? ap->n_attn : ap->layer + 1;
    int h0 = all ? 0 : ap->head, h1 = all ? ap->NH : ap->head + 1;
    if (!grow(ap, (size_t)(l1 - l0) * (h1 - h0) * tt, m->T)) {
        snprintf(ap->err, sizeof ap->err, "out of memory for %d x %d attention maps", m->T, m->T);
        return;
    }
    for (int l = l0; l < l1; l++)
        for (int h = h0; h < h1; h++) {
            float *dst = ap->att + ((size_t)(l - l0) * (h1 - h0) + (h - h0)) * tt;
            if (model_attention(m, ap->blk[l], h, ap->prompt, dst) != ICL_OK) {
                snprintf(ap->err, sizeof ap->err, "%s", icl_error());
                return;
            }
        }
    ap->T = m->T;
    ap->l0 = l0;
    ap->l1 = l1;
    ap->h0 = h0;
    ap->h1 = h1;
    ap->data_prompt = ap->prompt;
    ap->data_id = id;
    panel_token_marks(src->t, m->T, ap->marks);
    ap->has_forward = 1;
}

static void attn_draw(panel *p, canvas *c, int focused) {
    attn_panel *ap = (attn_panel *)p;
    char title[96];
    if (ap->has_model && ap->n_attn > 0)
        snprintf(title, sizeof title, "attention  layer %d/%d  head %d/%d  prompt %d", ap->layer + 1, ap->n_attn,
                 ap->head + 1, ap->NH, ap->prompt + 1);
    else snprintf(title, sizeof title, "attention");
    canvas in = panel_frame(c, title, focused);
    const char *msg = !ap->has_model        ? "no data: no model"
                      : ap->n_attn == 0      ? "no attention layers"
                      : ap->err[0]           ? ap->err
                      : !ap->has_forward     ? "no data: no forward pass yet"
                      : ap->layer < ap->l0 || ap->layer >= ap->l1 || ap->head < ap->h0 || ap->head >= ap->h1 ||
                              ap->prompt != ap->data_prompt
                          ? "loading..."
                          : NULL;
    if (msg) {
        panel_message(&in, msg);
        return;
    }
    const size_t tt = (size_t)ap->T * ap->T;
    const float *a = ap->att + ((size_t)(ap->layer - ap->l0) * (ap->h1 - ap->h0) + (ap->head - ap->h0)) * tt;

    int bar = in.h >= 4; /* the last row: colour bar */
    canvas area = canvas_view(&in, 0, 0, in.w, in.h - bar);
    plot_heatmap_opts o;
    plot_heatmap_opts_default(&o);
    o.lo = 0;
    o.hi = ap->unit_range ? 1.0 : NAN;
    o.pool_max = 1; /* a sharp peak must survive shrinking */
    int marks = ap->marks[0] && area.w >= 8 && area.h >= 3;
    o.row_marks = marks ? ap->marks : NULL;
    o.col_marks = marks ? ap->marks : NULL;
    plot_heatmap_frame f;
    plot_heatmap(&area, a, ap->T, ap->T, &o, &f);
    /* axis names to the right of the map, when there is room */
    int tx = f.x + f.w + 2;
    if (tx + 12 <= area.w && area.h >= 2) {
        canvas_text(&area, tx, 0, "rows: query", TUI_ROLE_DIM, 0);
        canvas_text(&area, tx, 1, "cols: key", TUI_ROLE_DIM, 0);
        if (area.h >= 3) canvas_textf(&area, tx, 2, TUI_ROLE_DIM, 0, "T = %d", ap->T);
    }
    if (bar) plot_colorbar(&in, 0, in.h - 1, in.w < 30 ? in.w : 30, o.ramp, f.lo, f.hi);
}

static int attn_key(panel *p, int key) {
    attn_panel *ap = (attn_panel *)p;
    int l = ap->layer, h = ap->head, pr = ap->prompt;
    switch (key) {
    case '[': case PANEL_KEY_LEFT: h--; break;
    case ']': case PANEL_KEY_RIGHT: h++; break;
    case '{': case PANEL_KEY_UP: l--; break;
    case '}': case PANEL_KEY_DOWN: l++; break;
    case 'p': pr = ap->B > 0 ? (pr + 1) % ap->B : 0; break;
    case 'c': ap->unit_range = !ap->unit_range; return PANEL_HANDLED | PANEL_REDRAW;
    default: return 0;
    }
    ap->layer = l;
    ap->head = h;
    ap->prompt = pr;
    clamp_view(ap);
    return PANEL_HANDLED | PANEL_REDRAW;
}

static void attn_destroy(panel *p) {
    attn_panel *ap = (attn_panel *)p;
    free(ap->att);
    free(ap->marks);
    free(ap);
}

static const panel_class attn_class = {
    "attention", "[ ] or <- -> head  { } or up/down layer  p prompt  c colour range", 20, 6,
    attn_update, attn_draw, attn_key, attn_destroy,
};

panel *panel_attention_new(void) {
    attn_panel *ap = calloc(1, sizeof *ap);
    if (!ap) {
        icl_fail(ICL_ERR_NOMEM, "panel attention: out of memory");
        return NULL;
    }
    ap->base.cls = &attn_class;
    return &ap->base;
}
