/*
 * block_mlp.c - the pre-norm GELU MLP block of GPT-2:
 *
 *   u    = LN(res)                 (B,T,D)
 *   fc   = u W_fc^T + b_fc         (B,T,4D)
 *   fcg  = GELU_tanh(fc)           (B,T,4D)
 *   res' = res + fcg W_proj^T + b_proj
 *
 * The forward keeps GELU'(fc) in fc's place (only the backward read fc), so
 * the backward takes dfc = dfcg GELU' without evaluating GELU again.
 */
#include "core/act.h"
#include "core/layernorm.h"
#include "nn/model_internal.h"

void mlp_block_forward(const model *m, block *bl, float *res_out, const float *res_in, int B, int T) {
    const int D = m->D, H = 4 * m->D, BT = B * T;
    float *const *P = bl->p;
    layernorm_forward(bl->ln_out, bl->ln_mean, bl->ln_rstd, res_in, P[ML_LN_W], P[ML_LN_B], BT, D);
    linear_forward(bl->fc, bl->ln_out, P[ML_FC_W], P[ML_FC_B], BT, D, H);
    gelu_forward_keep(bl->fcg, bl->fc, bl->fc, (size_t)BT * H); /* fc becomes GELU'(fc) */
    linear_forward_residual(res_out, bl->fcg, P[ML_PROJ_W], P[ML_PROJ_B], res_in, BT, H, D);
}

void mlp_block_backward(const model *m, block *bl, float *dres, const float *res_in, const block_scratch *s,
                        int B, int T) {
    const int D = m->D, H = 4 * m->D, BT = B * T;
    float *const *P = bl->p, *const *G = bl->g;
    float *dfcg = s->d2, *dfc = s->d1;
    linear_backward(dfcg, G[ML_PROJ_W], G[ML_PROJ_B], dres, bl->fcg, P[ML_PROJ_W], BT, H, D);
    gelu_backward_kept(dfc, dfcg, bl->fc, (size_t)BT * H); /* fc holds GELU'(fc) */
    linear_backward(s->dln, G[ML_FC_W], G[ML_FC_B], dfc, bl->ln_out, P[ML_FC_W], BT, D, H);
    layernorm_backward(dres, G[ML_LN_W], G[ML_LN_B], s->dln, res_in, P[ML_LN_W], bl->ln_mean, bl->ln_rstd, BT, D);
}
