/*
 * model_check.c - find the first NaN/Inf in a model's activations or in a
 * parameter-shaped array (see model_check.h).
 *
 * The forward scan follows the residual stream, which is where every block
 * hands its result to the next: res[0] (B,T,D) after the read-in, res[i+1]
 * after block i, then the final norm's output (B,T,D) and the predictions
 * (B,T,O). A NaN never disappears along that path by itself, so the first
 * stage that holds one is where it was made (or where an input or weight
 * holding one was first used). It is not a debugger: it names the block,
 * not the operation inside it.
 */
#include "nn/model_check.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* The first non-finite element of x (B,T,W), as prompt b and position t. */
static int scan_btw(const float *x, int B, int T, int W, model_fault *f) {
    const size_t n = (size_t)B * T * W;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            size_t row = i / (size_t)W;
            f->b = (int)(row / (size_t)T);
            f->t = (int)(row % (size_t)T);
            f->value = x[i];
            return 1;
        }
    return 0;
}

int model_check_forward(const model *m, model_fault *f) {
    memset(f, 0, sizeof *f);
    f->stage = MODEL_FAULT_NONE;
    f->block = -1;
    const int B = m->B, T = m->T, D = m->D;
    if (B < 1 || T < 1) return 0; /* no forward yet */
    if (m->spec.vocab <= 0 && m->last_x) {
        if (scan_btw(m->last_x, B, T, m->spec.n_dims, f)) {
            f->stage = MODEL_FAULT_INPUT;
            return 1;
        }
        const size_t n = (size_t)B * T * m->spec.n_dims;
        for (size_t i = 0; i < n; i++)
            if (fabsf(m->last_x[i]) > f->input_max) f->input_max = fabsf(m->last_x[i]);
    }
    if (scan_btw(m->res[0], B, T, D, f)) {
        f->stage = MODEL_FAULT_READ_IN;
        return 1;
    }
    for (int i = 0; i < m->spec.n_blocks; i++)
        if (scan_btw(m->res[i + 1], B, T, D, f)) {
            f->stage = MODEL_FAULT_BLOCK;
            f->block = i;
            return 1;
        }
    if (scan_btw(m->lnf_out, B, T, D, f)) {
        f->stage = MODEL_FAULT_NORM_F;
        return 1;
    }
    if (scan_btw(m->out, B, T, m->spec.n_out, f)) {
        f->stage = MODEL_FAULT_READ_OUT;
        return 1;
    }
    memset(f, 0, sizeof *f);
    f->block = -1;
    return 0;
}

static const char *value_name(float v) {
    if (isnan(v)) return "NaN";
    return v > 0 ? "Inf" : "-Inf";
}

/* Inputs this large overflow float on their own: their square does (a
 * LayerNorm's variance), or a sum of a few of them times weights of size ~1
 * does (the read-in). Worth saying next to wherever the NaN showed up. */
#define HUGE_INPUT 1e18f

static int describe_stage(const model *m, const model_fault *f, int huge, char *buf, size_t n) {
    const char *v = value_name(f->value);
    switch (f->stage) {
    case MODEL_FAULT_INPUT:
        return snprintf(buf, n, "the read-in: the input itself holds %s (prompt %d, position %d)", v, f->b, f->t);
    case MODEL_FAULT_READ_IN:
        return snprintf(buf, n, "the read-in: its output is %s at prompt %d, position %d%s", v, f->b, f->t,
                        huge ? "" : m->pos ? " (its weights or the positions)" : " (its weights)");
    case MODEL_FAULT_BLOCK:
        return snprintf(buf, n, "block %d (%s): its output is %s at prompt %d, position %d", f->block,
                        block_kind_name(m->spec.blocks[f->block]), v, f->b, f->t);
    case MODEL_FAULT_NORM_F:
        return snprintf(buf, n, "the final norm: its output is %s at prompt %d, position %d", v, f->b, f->t);
    case MODEL_FAULT_READ_OUT:
        return snprintf(buf, n, "the read-out: the prediction is %s at prompt %d, position %d", v, f->b, f->t);
    case MODEL_FAULT_NONE:
    default: return snprintf(buf, n, "no activation (all are finite)");
    }
}

int model_fault_describe(const model *m, const model_fault *f, char *buf, size_t n) {
    const int huge = f->stage != MODEL_FAULT_NONE && f->stage != MODEL_FAULT_INPUT && f->input_max > HUGE_INPUT;
    int k = describe_stage(m, f, huge, buf, n);
    if (!huge || k < 0) return k;
    size_t used = (size_t)k < n ? (size_t)k : (n ? n - 1 : 0);
    int k2 = snprintf(n ? buf + used : NULL, n ? n - used : 0,
                      "; the input reaches |x| = %.3g, beyond what float arithmetic survives", (double)f->input_max);
    return k + (k2 > 0 ? k2 : 0);
}

const param_tensor *model_first_nonfinite(const model *m, const float *flat, int backward, size_t *index) {
    for (int j = 0; j < m->n_tensors; j++) {
        const param_tensor *p = &m->table[backward ? m->n_tensors - 1 - j : j];
        for (size_t i = 0; i < p->numel; i++)
            if (!isfinite(flat[p->offset + i])) {
                if (index) *index = p->offset + i;
                return p;
            }
    }
    return NULL;
}

const param_tensor *model_tensor_at(const model *m, size_t i) {
    /* the table is in storage order: the last tensor starting at or before i */
    for (int j = m->n_tensors - 1; j >= 0; j--)
        if (m->table[j].offset <= i) return i < m->table[j].offset + m->table[j].numel ? &m->table[j] : NULL;
    return NULL;
}

int model_tensor_place(const model *m, const param_tensor *p, char *buf, size_t n) {
    if (p->block >= 0 && p->block < m->spec.n_blocks)
        return snprintf(buf, n, "block %d (%s)", p->block, block_kind_name(m->spec.blocks[p->block]));
    static const struct { const char *prefix, *place; } places[] = {
        {"embed.", "the embedding"}, {"read_in.", "the read-in"}, {"pos.", "the positions"},
        {"norm_f.", "the final norm"}, {"read_out.", "the read-out"}};
    for (size_t k = 0; k < sizeof places / sizeof *places; k++)
        if (!strncmp(p->name, places[k].prefix, strlen(places[k].prefix))) return snprintf(buf, n, "%s", places[k].place);
    return snprintf(buf, n, "%s", p->name);
}
