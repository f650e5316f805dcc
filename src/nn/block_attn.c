/*
 * block_attn.c - the pre-norm causal self-attention block (GPT-2's attention
 * sub-layer, and nanoGPT's CausalSelfAttention used by the hybrids):
 *
 *   u    = LN(res)                       (B,T,D)
 *   qkv  = u W_qkv^T + b_qkv             (B,T,3D)  fused projection
 *   atty = causal_softmax_attention(qkv) (B,T,D)   NH heads
 *   res' = res + atty W_proj^T + b_proj
 *
 * No dropout (the paper's configs use 0). The attention core, with its
 * saved probabilities that the attention panel shows, is core/attention.c.
 */
#include <string.h>

#include "core/attention.h"
#include "core/layernorm.h"
#include "core/tick.h"
#include "nn/model_internal.h"

void attn_block_forward(const model *m, block *bl, float *res_out, const float *res_in, int B, int T) {
    const int D = m->D, BT = B * T;
    float *const *P = bl->p;
    layernorm_forward(bl->ln_out, bl->ln_mean, bl->ln_rstd, res_in, P[AT_LN_W], P[AT_LN_B], BT, D);
    linear_forward(bl->qkv, bl->ln_out, P[AT_QKV_W], P[AT_QKV_B], BT, D, 3 * D);
    attention_forward(bl->atty, bl->att, bl->qkv, B, T, D, m->NH, m->att_scratch);
    icl_tick(); /* a screen may redraw mid-block (core/tick.h) */
    /* res' = res + atty W_proj^T + b_proj */
    linear_forward_residual(res_out, bl->atty, P[AT_PROJ_W], P[AT_PROJ_B], res_in, BT, D, D);
}

void attn_block_backward(const model *m, block *bl, float *dres, const float *res_in, const block_scratch *s,
                         int B, int T) {
    const int D = m->D, BT = B * T;
    float *const *P = bl->p, *const *G = bl->g;
    float *datty = s->d2, *dqkv = s->d1;
    /* output projection: d(atty) = dres W_proj; dW_proj += dres^T atty */
    linear_backward(datty, G[AT_PROJ_W], G[AT_PROJ_B], dres, bl->atty, P[AT_PROJ_W], BT, D, D);
    /* attention core */
    memset(dqkv, 0, sizeof(float) * (size_t)BT * 3 * D);
    attention_backward(dqkv, datty, bl->qkv, bl->att, B, T, D, m->NH, m->att_scratch);
    icl_tick();
    /* fused QKV projection */
    linear_backward(s->dln, G[AT_QKV_W], G[AT_QKV_B], dqkv, bl->ln_out, P[AT_QKV_W], BT, D, 3 * D);
    /* pre-norm: the LN gradient joins the residual gradient */
    layernorm_backward(dres, G[AT_LN_W], G[AT_LN_B], s->dln, res_in, P[AT_LN_W], bl->ln_mean, bl->ln_rstd, BT, D);
}
