/*
 * model_probe.c - read-only views of the last forward pass for one prompt:
 * attention probabilities of any attention block and head, and the SSM of
 * any Mamba block (states h_t, step sizes Delta_t, and B_t, C_t). These are
 * what the attention and SSM-state panels draw and what Lua's probes return.
 * States are recomputed from saved activations (the training step does not
 * keep them, see core/scan.h), so probing costs nothing during training.
 */
#include <string.h>

#include "core/scan.h"
#include "nn/model_internal.h"

static icl_status check_probe(const model *m, int blk, int b, const char *what) {
    if (m->B == 0) return icl_fail(ICL_ERR_ARG, "%s: run a forward pass first", what);
    if (blk < 0 || blk >= m->spec.n_blocks)
        return icl_fail(ICL_ERR_ARG, "%s: block %d is out of range [0, %d)", what, blk, m->spec.n_blocks);
    if (b < 0 || b >= m->B)
        return icl_fail(ICL_ERR_ARG, "%s: prompt %d is out of range [0, %d) of the last forward", what, b, m->B);
    return ICL_OK;
}

icl_status model_attention(const model *m, int blk, int head, int b, float *dst) {
    icl_status st = check_probe(m, blk, b, "attention");
    if (st) return st;
    const block *bl = &m->blocks[blk];
    if (bl->kind != BLOCK_ATTN)
        return icl_fail(ICL_ERR_ARG, "attention: block %d is a %s block, not attn", blk, block_kind_name(bl->kind));
    if (head < 0 || head >= m->NH)
        return icl_fail(ICL_ERR_ARG, "attention: head %d is out of range [0, %d)", head, m->NH);
    const size_t T = m->T;
    memcpy(dst, bl->att + ((size_t)b * m->NH + head) * T * T, sizeof(float) * T * T);
    return ICL_OK;
}

icl_status model_ssm_states(const model *m, int blk, int b, float *dst) {
    icl_status st = check_probe(m, blk, b, "ssm_states");
    if (st) return st;
    const block *bl = &m->blocks[blk];
    if (bl->kind != BLOCK_MAMBA)
        return icl_fail(ICL_ERR_ARG, "ssm_states: block %d is a %s block, not mamba", blk, block_kind_name(bl->kind));
    const int R = m->R, N = m->N, W = R + 2 * N, T = m->T, E = m->E;
    scan_states(dst, bl->xs, bl->delta, bl->p[MB_A_LOG], bl->dbc + R, bl->dbc + R + N, W, b, T, E, N);
    return ICL_OK;
}

icl_status model_ssm_params(const model *m, int blk, int b, float *delta, float *Bm, float *Cm) {
    icl_status st = check_probe(m, blk, b, "ssm_params");
    if (st) return st;
    const block *bl = &m->blocks[blk];
    if (bl->kind != BLOCK_MAMBA)
        return icl_fail(ICL_ERR_ARG, "ssm_params: block %d is a %s block, not mamba", blk, block_kind_name(bl->kind));
    const int R = m->R, N = m->N, W = R + 2 * N, T = m->T, E = m->E;
    for (int t = 0; t < T; t++) {
        size_t row = (size_t)b * T + t;
        if (delta) memcpy(delta + (size_t)t * E, bl->delta + row * E, sizeof(float) * E);
        if (Bm) memcpy(Bm + (size_t)t * N, bl->dbc + row * W + R, sizeof(float) * N);
        if (Cm) memcpy(Cm + (size_t)t * N, bl->dbc + row * W + R + N, sizeof(float) * N);
    }
    return ICL_OK;
}
