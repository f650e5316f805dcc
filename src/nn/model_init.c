/*
 * model_init.c - parameter initialisation, exactly as the paper's code does
 * it (SPEC.md 3.1, 3.2, 3.3, 3.4 and 6.2), so results are comparable:
 *
 *   read-in, read-out       PyTorch Linear default: W, b ~ U(+-1/sqrt(fan_in))
 *   LayerNorms              weight 1, bias 0
 *   GPT-2 family            Linear W ~ N(0, 0.02), b = 0; the residual output
 *   (transformer)           projections (attn proj, mlp proj) ~ N(0, 0.02/sqrt(n_layer)),
 *                           i.e. 0.02/sqrt(2 * GPT-2 layers); positions N(0, pos_std)
 *   Mixer family            Linear W ~ U(+-1/sqrt(fan_in)) (PyTorch default), Linear
 *   (mamba, hybrids)        biases 0; out_proj and the MLP's proj re-drawn the
 *                           same way and divided by sqrt(n_layer)
 *   Mamba                   conv1d W, b ~ U(+-1/sqrt(K)); dt_proj W ~ U(+-R^-1/2);
 *                           dt bias = softplus^-1(dt), dt ~ logU[1e-3, 0.1] clamped
 *                           at 1e-4; A_log[c, n] = log(n + 1); D = 1
 *   S4-Mamba (S4D-Lin)      log_dt ~ U(log 1e-3, log 0.1); log_A_real = log 0.5;
 *                           A_imag[n] = pi n; C complex normal (each part var 1/2);
 *                           D ~ N(0, 1)
 *
 * Every tensor draws from its own RNG stream, rng_make(seed, tensor index + 1),
 * so adding a block does not shift the numbers of the others.
 */
#include <math.h>
#include <string.h>

#include "core/rng.h"
#include "nn/model_internal.h"

static void fill_const(float *p, size_t n, float v) {
    for (size_t i = 0; i < n; i++) p[i] = v;
}

/* PyTorch's kaiming_uniform_(a = sqrt 5) and default bias: U(+-1/sqrt(fan_in)). */
static void fill_fanin(rng_t *r, float *p, size_t n, int fan_in, float scale) {
    float bound = 1.0f / sqrtf((float)fan_in);
    rng_fill_uniform(r, p, n, -bound, bound);
    if (scale != 1.0f)
        for (size_t i = 0; i < n; i++) p[i] *= scale;
}

void model_init_params(model *m) {
    const model_spec *s = &m->spec;
    const int D = m->D, E = m->E, N = m->N, R = m->R, K = m->K, Nh = m->Nh;
    const int gpt2 = s->init == INIT_GPT2;
    const float resid_scale = 1.0f / sqrtf((float)(s->n_layer > 0 ? s->n_layer : 1));
    for (int ti = 0; ti < m->n_tensors; ti++) {
        const param_tensor *t = &m->table[ti];
        float *p = m->params + t->offset;
        const size_t n = t->numel;
        rng_t r = rng_make(s->seed, (uint64_t)ti + 1);
        const char *name = t->name;
        if (t->block < 0) {
            if (!strcmp(name, "read_in.weight") || !strcmp(name, "read_in.bias")) fill_fanin(&r, p, n, s->n_dims, 1);
            else if (!strcmp(name, "read_out.weight") || !strcmp(name, "read_out.bias")) fill_fanin(&r, p, n, D, 1);
            else if (!strcmp(name, "embed.weight")) rng_fill_normal(&r, p, n, 0.0f, 0.02f);
            else if (!strcmp(name, "pos.weight")) rng_fill_normal(&r, p, n, 0.0f, s->pos_std);
            else if (!strcmp(name, "norm_f.weight")) fill_const(p, n, 1.0f);
            else fill_const(p, n, 0.0f); /* norm_f.bias */
            continue;
        }
        /* the part after "blocks.<i>.<kind>." */
        const char *leaf = strchr(strchr(name + 7, '.') + 1, '.') + 1;
        block_kind kind = s->blocks[t->block];
        if (!strcmp(leaf, "ln.weight")) { fill_const(p, n, 1.0f); continue; }
        if (!strcmp(leaf, "ln.bias")) { fill_const(p, n, 0.0f); continue; }
        if (kind == BLOCK_ATTN || kind == BLOCK_MLP) {
            int is_bias = strstr(leaf, ".bias") != NULL;
            int is_resid = !strcmp(leaf, "proj.weight");
            int fan_in = (kind == BLOCK_MLP && is_resid) ? 4 * D : D;
            if (is_bias) fill_const(p, n, 0.0f);
            else if (gpt2) rng_fill_normal(&r, p, n, 0.0f, is_resid ? 0.02f * resid_scale : 0.02f);
            else fill_fanin(&r, p, n, fan_in, (is_resid && kind == BLOCK_MLP) ? resid_scale : 1.0f);
            continue;
        }
        /* mamba and s4mamba share in_proj, conv and out_proj */
        if (!strcmp(leaf, "in_proj.weight")) fill_fanin(&r, p, n, D, 1);
        else if (!strcmp(leaf, "conv.weight") || !strcmp(leaf, "conv.bias")) fill_fanin(&r, p, n, K, 1);
        else if (!strcmp(leaf, "out_proj.weight")) fill_fanin(&r, p, n, E, resid_scale);
        else if (!strcmp(leaf, "x_proj.weight")) fill_fanin(&r, p, n, E, 1);
        else if (!strcmp(leaf, "dt_proj.weight")) rng_fill_uniform(&r, p, n, -1.0f / sqrtf((float)R), 1.0f / sqrtf((float)R));
        else if (!strcmp(leaf, "dt_proj.bias")) {
            const double lo = log(1e-3), hi = log(0.1);
            for (size_t i = 0; i < n; i++) {
                double dt = exp(lo + (hi - lo) * rng_uniform(&r));
                if (dt < 1e-4) dt = 1e-4;
                p[i] = (float)(dt + log(-expm1(-dt))); /* softplus^-1(dt) */
            }
        } else if (!strcmp(leaf, "A_log")) {
            for (int c = 0; c < E; c++)
                for (int k = 0; k < N; k++) p[(size_t)c * N + k] = logf((float)(k + 1));
        } else if (!strcmp(leaf, "D")) {
            if (kind == BLOCK_MAMBA) fill_const(p, n, 1.0f);
            else rng_fill_normal(&r, p, n, 0.0f, 1.0f);
        } else if (!strcmp(leaf, "log_dt")) {
            rng_fill_uniform(&r, p, n, (float)log(1e-3), (float)log(0.1));
        } else if (!strcmp(leaf, "log_A_real")) {
            fill_const(p, n, logf(0.5f));
        } else if (!strcmp(leaf, "A_imag")) {
            for (int c = 0; c < E; c++)
                for (int k = 0; k < Nh; k++) p[(size_t)c * Nh + k] = (float)(M_PI * k);
        } else if (!strcmp(leaf, "C")) {
            rng_fill_normal(&r, p, n, 0.0f, (float)sqrt(0.5));
        }
    }
}
