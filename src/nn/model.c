/*
 * model.c - building a model from its spec (the flat parameter block and its
 * named views), reserving activations, and the whole-model forward and
 * backward that run the blocks in order. The blocks themselves live in
 * block_*.c, initialisation in model_init.c, probes in model_probe.c.
 *
 * Memory budget (core/budget.h, model_mem.h): before allocating,
 * model_create refuses a spec whose weights, gradients and Adam state would
 * exceed the budget, and model_reserve refuses a (B, T) whose weights,
 * gradients, Adam state AND activations would (trainer_init reserves before
 * it creates the optimiser, so this is the whole footprint of training).
 * Both count exactly what is allocated here and in optim_create, from the
 * spec alone; the messages carry the estimate.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/attention.h"
#include "core/blas.h"
#include "core/budget.h"
#include "core/delta.h"
#include "core/layernorm.h"
#include "core/parallel.h"
#include "core/s4d.h"
#include "core/scan.h"
#include "core/tick.h"
#include "nn/model_internal.h"
#include "nn/model_mem.h"

/* ---- Linear helpers shared by the blocks -------------------------------- */

/* The GEMM accumulates onto out already holding the bias (and the residual
 * stream): one parallel pass over out instead of the GEMM's own zeroing
 * pass (beta 0), a serial bias pass and a residual pass. */
static void linear_init_out(float *out, const float *b, const float *res, int rows, int cols) {
#pragma omp parallel for schedule(static) if ((size_t)rows * cols >= PAR_MIN_WORK)
    for (int i = 0; i < rows; i++) {
        float *o = out + (size_t)i * cols;
        const float *r = res ? res + (size_t)i * cols : NULL;
        if (r && b) {
#pragma omp simd
            for (int j = 0; j < cols; j++) o[j] = r[j] + b[j];
        } else if (r) {
            memcpy(o, r, sizeof(float) * (size_t)cols);
        } else {
            memcpy(o, b, sizeof(float) * (size_t)cols);
        }
    }
}

void linear_forward(float *out, const float *inp, const float *w, const float *b, int rows, int in, int cols) {
    if (b) linear_init_out(out, b, NULL, rows, cols);
    blas_gemm(0, 1, rows, cols, in, 1.0f, inp, in, w, in, b ? 1.0f : 0.0f, out, cols);
}

void linear_forward_residual(float *out, const float *inp, const float *w, const float *b, const float *res,
                             int rows, int in, int cols) {
    linear_init_out(out, b, res, rows, cols);
    blas_gemm(0, 1, rows, cols, in, 1.0f, inp, in, w, in, 1.0f, out, cols);
}

/* Columns per chunk of colsum_accumulate: its double accumulators (2 KiB)
 * stay in registers and L1 while the rows stream past. */
#define COLSUM_CHUNK 256

void colsum_accumulate(float *db, const float *d, int rows, int cols, int ld) {
    /* Each column is summed in double over rows 0..rows-1 in order, so the
     * result does not depend on the thread count or the chunking. The rows
     * are read in order, a chunk of contiguous columns at a time, with the
     * column loop vectorised (reading a whole column at stride ld, as the
     * first version did, cost 9% of a Transformer step at d_model 128). */
    int nth = (size_t)rows * cols > ((size_t)1 << 16) ? par_max_threads() : 1;
    int chunk = (cols + nth - 1) / nth;
    chunk = (chunk + 15) / 16 * 16;
    if (chunk > COLSUM_CHUNK) chunk = COLSUM_CHUNK;
    if (chunk < 1) chunk = 1;
    int n_chunks = (cols + chunk - 1) / chunk;
#pragma omp parallel for schedule(static) if (nth > 1 && n_chunks > 1)
    for (int c = 0; c < n_chunks; c++) {
        const int j0 = c * chunk, nj = cols - j0 < chunk ? cols - j0 : chunk;
        double acc[COLSUM_CHUNK];
        for (int j = 0; j < nj; j++) acc[j] = 0.0;
        for (size_t i = 0; i < (size_t)rows; i++) {
            const float *row = d + i * ld + j0;
#pragma omp simd
            for (int j = 0; j < nj; j++) acc[j] += row[j];
        }
        for (int j = 0; j < nj; j++) db[j0 + j] += (float)acc[j];
    }
}

void linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                     int rows, int in, int cols) {
    if (dinp) blas_gemm(0, 0, rows, in, cols, 1.0f, dout, cols, w, in, 0.0f, dinp, in);
    blas_gemm(1, 0, cols, in, rows, 1.0f, dout, cols, inp, in, 1.0f, dw, in);
    if (db) colsum_accumulate(db, dout, rows, cols, cols);
}

/* ---- the parameter table ------------------------------------------------ */

typedef struct { const char *name; int ndim; int s0, s1, s2; } tdesc;

/* The tensors of one block, in storage order (matches the enums). */
static int block_tensors(const model *m, block_kind k, tdesc *t) {
    const int D = m->D, E = m->E, N = m->N, R = m->R, K = m->K, Nh = m->Nh;
    int n = 0;
    t[n++] = (tdesc){"ln.weight", 1, D, 0, 0};
    t[n++] = (tdesc){"ln.bias", 1, D, 0, 0};
    switch (k) {
    case BLOCK_ATTN:
        t[n++] = (tdesc){"qkv.weight", 2, 3 * D, D, 0};
        t[n++] = (tdesc){"qkv.bias", 1, 3 * D, 0, 0};
        t[n++] = (tdesc){"proj.weight", 2, D, D, 0};
        t[n++] = (tdesc){"proj.bias", 1, D, 0, 0};
        break;
    case BLOCK_MLP:
        t[n++] = (tdesc){"fc.weight", 2, 4 * D, D, 0};
        t[n++] = (tdesc){"fc.bias", 1, 4 * D, 0, 0};
        t[n++] = (tdesc){"proj.weight", 2, D, 4 * D, 0};
        t[n++] = (tdesc){"proj.bias", 1, D, 0, 0};
        break;
    case BLOCK_MAMBA:
        t[n++] = (tdesc){"in_proj.weight", 2, 2 * E, D, 0};
        t[n++] = (tdesc){"conv.weight", 2, E, K, 0};
        t[n++] = (tdesc){"conv.bias", 1, E, 0, 0};
        t[n++] = (tdesc){"x_proj.weight", 2, R + 2 * N, E, 0};
        t[n++] = (tdesc){"dt_proj.weight", 2, E, R, 0};
        t[n++] = (tdesc){"dt_proj.bias", 1, E, 0, 0};
        t[n++] = (tdesc){"A_log", 2, E, N, 0};
        t[n++] = (tdesc){"D", 1, E, 0, 0};
        t[n++] = (tdesc){"out_proj.weight", 2, D, E, 0};
        break;
    case BLOCK_S4MAMBA:
        t[n++] = (tdesc){"in_proj.weight", 2, 2 * E, D, 0};
        t[n++] = (tdesc){"conv.weight", 2, E, K, 0};
        t[n++] = (tdesc){"conv.bias", 1, E, 0, 0};
        t[n++] = (tdesc){"log_dt", 1, E, 0, 0};
        t[n++] = (tdesc){"log_A_real", 2, E, Nh, 0};
        t[n++] = (tdesc){"A_imag", 2, E, Nh, 0};
        t[n++] = (tdesc){"C", 3, E, Nh, 2};
        t[n++] = (tdesc){"D", 1, E, 0, 0};
        t[n++] = (tdesc){"out_proj.weight", 2, D, E, 0};
        break;
    default: break;
    }
    return n;
}

static size_t add_tensor(model *m, const char *name, int ndim, int s0, int s1, int s2, int blk, size_t off) {
    param_tensor *t = &m->table[m->n_tensors++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = s0;
    t->shape[1] = s1;
    t->shape[2] = s2;
    t->numel = (size_t)s0 * (ndim > 1 ? (size_t)s1 : 1) * (ndim > 2 ? (size_t)s2 : 1);
    t->offset = off;
    t->block = blk;
    return off + t->numel;
}

/* Lay out every tensor (names, shapes, offsets) without touching memory. */
static size_t layout(model *m) {
    const model_spec *s = &m->spec;
    const int D = m->D;
    size_t off = 0;
    char name[48];
    m->n_tensors = 0;
    if (s->vocab > 0) off = add_tensor(m, "embed.weight", 2, s->vocab, D, 0, -1, off);
    else {
        off = add_tensor(m, "read_in.weight", 2, D, s->n_dims, 0, -1, off);
        off = add_tensor(m, "read_in.bias", 1, D, 0, 0, -1, off);
    }
    if (s->n_positions > 0) off = add_tensor(m, "pos.weight", 2, s->n_positions, D, 0, -1, off);
    for (int i = 0; i < s->n_blocks; i++) {
        tdesc t[BLOCK_MAX_PARAMS];
        int n = block_tensors(m, s->blocks[i], t);
        for (int j = 0; j < n; j++) {
            snprintf(name, sizeof name, "blocks.%d.%s.%s", i, block_kind_name(s->blocks[i]), t[j].name);
            off = add_tensor(m, name, t[j].ndim, t[j].s0, t[j].s1, t[j].s2, i, off);
        }
    }
    off = add_tensor(m, "norm_f.weight", 1, D, 0, 0, -1, off);
    off = add_tensor(m, "norm_f.bias", 1, D, 0, 0, -1, off);
    off = add_tensor(m, "read_out.weight", 2, s->n_out, D, 0, -1, off);
    off = add_tensor(m, "read_out.bias", 1, s->n_out, 0, 0, -1, off);
    return off;
}

/* Point every named view at its tensor in params and grads. */
static void bind_views(model *m) {
    int ti = 0;
    const model_spec *s = &m->spec;
#define NEXT(p, g)                                      \
    do {                                                \
        (p) = m->params + m->table[ti].offset;          \
        (g) = m->grads + m->table[ti].offset;           \
        ti++;                                           \
    } while (0)
    m->ri_w = m->ri_b = m->emb = m->pos = NULL;
    m->g_ri_w = m->g_ri_b = m->g_emb = m->g_pos = NULL;
    if (s->vocab > 0) NEXT(m->emb, m->g_emb);
    else { NEXT(m->ri_w, m->g_ri_w); NEXT(m->ri_b, m->g_ri_b); }
    if (s->n_positions > 0) NEXT(m->pos, m->g_pos);
    for (int i = 0; i < s->n_blocks; i++) {
        block *bl = &m->blocks[i];
        tdesc t[BLOCK_MAX_PARAMS];
        bl->kind = s->blocks[i];
        bl->n_param = block_tensors(m, bl->kind, t);
        bl->param_begin = m->table[ti].offset;
        for (int j = 0; j < bl->n_param; j++) NEXT(bl->p[j], bl->g[j]);
        bl->param_end = m->table[ti - 1].offset + m->table[ti - 1].numel;
    }
    NEXT(m->lnf_w, m->g_lnf_w);
    NEXT(m->lnf_b, m->g_lnf_b);
    NEXT(m->ro_w, m->g_ro_w);
    NEXT(m->ro_b, m->g_ro_b);
#undef NEXT
}

/* ---- sizes ----------------------------------------------------------------
 * Every byte model_create and model_reserve allocate is counted here from
 * the spec alone (model_mem.h), so the budget checks run before anything is
 * allocated and test_budget.c can compare the counts with the allocations. */

static size_t add_sat(size_t a, size_t b) { return b > SIZE_MAX - a ? SIZE_MAX : a + b; }
static size_t mul_sat(size_t a, size_t b) { return a && b > SIZE_MAX / a ? SIZE_MAX : a * b; }

/* Bytes alloc_floats(n) asks for: whole 64-byte lines, at least one. */
static size_t float_block_bytes(size_t n) {
    size_t b = mul_sat(n, sizeof(float));
    if (b == 0) return 64;
    return b > SIZE_MAX - 63 ? SIZE_MAX : (b + 63) / 64 * 64;
}

static void *alloc_floats(size_t n) {
    size_t bytes = float_block_bytes(n);
    if (bytes == SIZE_MAX) return NULL;
    void *p = aligned_alloc(64, bytes);
    if (p) memset(p, 0, bytes);
    return p;
}

size_t model_spec_param_bytes(const model_spec *s) { return float_block_bytes(model_param_count(s)); }

size_t model_spec_create_bytes(const model_spec *s) {
    size_t p = model_spec_param_bytes(s);
    return add_sat(sizeof(model) + (size_t)s->n_blocks * sizeof(block), add_sat(p, p));
}

size_t model_spec_adam_bytes(const model_spec *s) { return mul_sat(model_param_count(s), 2 * sizeof(float)); }

/* "8412", "1.3M", "12.08B" parameters, for messages. */
static void format_count(char *buf, size_t n, size_t v) {
    if (v < 1000000) snprintf(buf, n, "%zu", v);
    else if (v < 1000000000) snprintf(buf, n, "%.1fM", v / 1e6);
    else snprintf(buf, n, "%.2fB", v / 1e9);
}

/* model_create's check: the model and the Adam state a trainer adds next. */
static icl_status check_create_budget(const model_spec *s) {
    size_t need = add_sat(model_spec_create_bytes(s), model_spec_adam_bytes(s));
    char who[192], count[32];
    format_count(count, sizeof count, model_param_count(s));
    snprintf(who, sizeof who, "model: %s with d_model %d and %d blocks (%s parameters)", s->arch, s->d_model,
             s->n_blocks, count);
    return icl_budget_check(need, who, "weights, gradients and Adam state");
}

icl_status model_create(model **out, const model_spec *spec) {
    *out = NULL;
    icl_status st = model_spec_validate(spec);
    if (st) return st;
    if ((st = check_create_budget(spec))) return st; /* before any allocation */
    model *m = calloc(1, sizeof *m);
    if (!m) return icl_fail(ICL_ERR_NOMEM, "model: out of memory");
    m->spec = *spec;
    m->D = spec->d_model;
    m->E = spec->expand * spec->d_model;
    m->N = spec->d_state;
    m->R = spec->dt_rank > 0 ? spec->dt_rank : (spec->d_model + 15) / 16;
    m->K = spec->d_conv;
    m->NH = spec->n_head > 0 ? spec->n_head : 1;
    m->Nh = spec->d_state / 2;
    m->n_params = layout(m);
    m->blocks = calloc((size_t)spec->n_blocks, sizeof *m->blocks);
    m->params = alloc_floats(m->n_params);
    m->grads = alloc_floats(m->n_params);
    if (!m->blocks || !m->params || !m->grads) {
        size_t mb = m->n_params * 8 / (1u << 20);
        model_free(m);
        return icl_fail(ICL_ERR_NOMEM, "model: cannot allocate %zu parameters (%zu MiB with gradients)",
                        model_param_count(spec), mb);
    }
    bind_views(m);
    model_init_params(m);
    *out = m;
    return ICL_OK;
}

void model_free(model *m) {
    if (!m) return;
    free(m->params);
    free(m->grads);
    free(m->arena);
    free(m->res);
    free(m->shards);
    free(m->blocks);
    free(m);
}

void model_zero_grad(model *m) { memset(m->grads, 0, sizeof(float) * m->n_params); }

/* ---- activations -------------------------------------------------------- */

typedef struct { float *base; size_t used; } carver;

/* Hand out n floats, 16-float (64-byte) aligned. With base NULL, only count
 * (saturating: an absurd (B, T) counts as SIZE_MAX, never wraps around). */
static float *carve(carver *c, size_t n) {
    float *p = c->base ? c->base + c->used : NULL;
    c->used = add_sat(c->used, n > SIZE_MAX - 15 ? SIZE_MAX : (n + 15) & ~(size_t)15);
    return p;
}

/* n doubles, carved as 2 n floats (every carve starts 64-byte aligned). */
static double *carve_doubles(carver *c, size_t n) { return (double *)(void *)carve(c, mul_sat(2, n)); }

/* Lays out the activations of (B, T) for `nthreads` threads: with m NULL it
 * only counts (c->base NULL); with m it points m's views into c->base. */
static void carve_all(const model_spec *s, model *m, carver *c, int B, int T, int nthreads) {
    const size_t BT = (size_t)B * (size_t)T, D = (size_t)s->d_model, E = (size_t)s->expand * D, N = s->d_state;
    const size_t R = s->dt_rank > 0 ? (size_t)s->dt_rank : (D + 15) / 16, W = R + 2 * N;
    const size_t NH = s->n_head > 0 ? (size_t)s->n_head : 1;
    block counting; /* where the block views go when only counting */
    memset(&counting, 0, sizeof counting);
    for (int i = 0; i <= s->n_blocks; i++) {
        float *p = carve(c, mul_sat(BT, D));
        if (m) m->res[i] = p;
    }
    float *lnf_out = carve(c, mul_sat(BT, D));
    float *lnf_mean = carve(c, BT);
    float *lnf_rstd = carve(c, BT);
    float *out = carve(c, mul_sat(BT, (size_t)s->n_out));
    size_t w1 = 0, w2 = 0;
    int any_ssm = 0, any_mamba = 0, any_attn = 0;
    for (int i = 0; i < s->n_blocks; i++) {
        block *bl = m ? &m->blocks[i] : &counting;
        bl->ln_out = carve(c, mul_sat(BT, D));
        bl->ln_mean = carve(c, BT);
        bl->ln_rstd = carve(c, BT);
        switch (s->blocks[i]) {
        case BLOCK_ATTN:
            bl->qkv = carve(c, mul_sat(BT, 3 * D));
            bl->att = carve(c, mul_sat(mul_sat(mul_sat((size_t)B, NH), (size_t)T), (size_t)T)); /* (B,NH,T,T) */
            bl->atty = carve(c, mul_sat(BT, D));
            if (3 * D > w1) w1 = 3 * D;
            if (D > w2) w2 = D;
            any_attn = 1;
            break;
        case BLOCK_MLP:
            bl->fc = carve(c, mul_sat(BT, 4 * D));
            bl->fcg = carve(c, mul_sat(BT, 4 * D));
            if (4 * D > w1) w1 = 4 * D;
            if (4 * D > w2) w2 = 4 * D;
            break;
        case BLOCK_MAMBA:
        case BLOCK_S4MAMBA:
            bl->xz = carve(c, mul_sat(BT, 2 * E));
            bl->xc = carve(c, mul_sat(BT, E));
            bl->xs = carve(c, mul_sat(BT, E));
            bl->y = carve(c, mul_sat(BT, E));
            bl->yg = carve(c, mul_sat(BT, E));
            if (s->blocks[i] == BLOCK_MAMBA) {
                bl->dbc = carve(c, mul_sat(BT, W));
                bl->dt_pre = carve(c, mul_sat(BT, E));
                bl->delta = carve(c, mul_sat(BT, E));
                bl->hck = carve(c, scan_ckpt_floats(B, T, (int)E, (int)N));
                if (W > w2) w2 = W;
                any_mamba = 1;
            } else {
                bl->kern = carve(c, mul_sat(E, (size_t)T));
                bl->dkern = carve_doubles(c, mul_sat(E, (size_t)T));
            }
            if (2 * E > w1) w1 = 2 * E;
            any_ssm = 1;
            break;
        default: break;
        }
    }
    float *dres = carve(c, mul_sat(BT, D));
    float *dln = carve(c, mul_sat(BT, D));
    float *dout_scratch = carve(c, mul_sat(BT, (size_t)s->n_out));
    float *d_big1 = carve(c, mul_sat(BT, w1));
    float *d_big2 = carve(c, mul_sat(BT, w2));
    float *d_e[5] = {NULL};
    if (any_ssm)
        for (int k = 0; k < 5; k++) d_e[k] = carve(c, mul_sat(BT, E));
    float *scan_scratch = any_mamba ? carve(c, scan_scratch_floats(B, T, (int)E, (int)N, nthreads)) : NULL;
    float *delta_scratch = any_mamba ? carve(c, delta_scratch_floats((int)BT, (int)E, (int)R)) : NULL;
    float *att_scratch = any_attn ? carve(c, attention_scratch_floats(T, (int)D, (int)NH, nthreads)) : NULL;
    /* What shards 1.. do not share with shard 0 (model_shard.c): gradients
     * and the scratch that kernels index by thread or by call, each for one
     * thread and the largest share of the batch a shard can get (half of it:
     * fewer threads than reserved for make fewer, larger shards) */
    const size_t Bs = ((size_t)B + 1) / 2;
    for (int k = 1; k < model_shard_max(nthreads); k++) {
        model_shard *sh = m ? &m->shards[k - 1] : NULL;
        float *g = carve(c, model_param_count(s));
        float *ss = any_mamba ? carve(c, scan_scratch_floats((int)Bs, T, (int)E, (int)N, 1)) : NULL;
        float *ds = any_mamba ? carve(c, delta_scratch_floats((int)(Bs * (size_t)T), (int)E, (int)R)) : NULL;
        float *as = any_attn ? carve(c, attention_scratch_floats(T, (int)D, (int)NH, 1)) : NULL;
        for (int i = 0; i < s->n_blocks; i++) {
            double *dkern = s->blocks[i] == BLOCK_S4MAMBA ? carve_doubles(c, mul_sat(E, (size_t)T)) : NULL;
            if (sh) sh->blocks[i].dkern = dkern;
        }
        if (sh) { /* model_shard_views_init keeps these when it copies the model in */
            sh->v.grads = g;
            sh->v.scan_scratch = ss;
            sh->v.delta_scratch = ds;
            sh->v.att_scratch = as;
        }
    }
    if (!m) return;
    m->shard_cap = (int)Bs;
    m->lnf_out = lnf_out;
    m->lnf_mean = lnf_mean;
    m->lnf_rstd = lnf_rstd;
    m->out = out;
    m->dres = dres;
    m->dln = dln;
    m->dout_scratch = dout_scratch;
    m->d_big1 = d_big1;
    m->d_big2 = d_big2;
    for (int k = 0; k < 5; k++) m->d_e[k] = d_e[k];
    m->scan_scratch = scan_scratch;
    m->delta_scratch = delta_scratch;
    m->att_scratch = att_scratch;
    m->w1 = w1;
    m->w2 = w2;
}

/* Floats of the arena for (B, T) and nthreads. */
static size_t arena_floats(const model_spec *s, int B, int T, int nthreads) {
    carver c = {NULL, 0};
    carve_all(s, NULL, &c, B, T, nthreads);
    return c.used;
}

size_t model_spec_reserve_bytes(const model_spec *s, int B, int T, int nthreads) {
    if (B < 1 || T < 1) return 0;
    size_t tables = add_sat(((size_t)s->n_blocks + 1) * sizeof(float *), model_shard_table_bytes(s, nthreads));
    return add_sat(float_block_bytes(arena_floats(s, B, T, nthreads)), tables);
}

size_t model_activation_bytes(const model_spec *s, int B, int T) {
    return model_spec_reserve_bytes(s, B, T, omp_get_max_threads());
}

/* model_reserve's check: the whole footprint of training at (B, T). */
static icl_status check_reserve_budget(const model_spec *s, int B, int T, int nthreads) {
    size_t fixed = add_sat(model_spec_create_bytes(s), model_spec_adam_bytes(s));
    size_t act = model_spec_reserve_bytes(s, B, T, nthreads);
    char who[192], what[160], fb[32], ab[32];
    snprintf(who, sizeof who, "model: %s (d_model %d, %d blocks) at batch %d x %d tokens", s->arch, s->d_model,
             s->n_blocks, B, T);
    icl_format_bytes(fb, sizeof fb, fixed);
    icl_format_bytes(ab, sizeof ab, act);
    snprintf(what, sizeof what, "weights, gradients and Adam state (%s) and activations (%s)", fb, ab);
    return icl_budget_check(add_sat(fixed, act), who, what);
}

icl_status model_reserve(model *m, int B, int T) {
    if (B < 1 || T < 1) return icl_fail(ICL_ERR_ARG, "model_reserve: batch (%d) and length (%d) must be >= 1", B, T);
    int nthreads = omp_get_max_threads();
    if (B <= m->cap_B && T <= m->cap_T && nthreads <= m->nthreads) return ICL_OK;
    if (B < m->cap_B) B = m->cap_B;
    if (T < m->cap_T) T = m->cap_T;
    if (nthreads < m->nthreads) nthreads = m->nthreads;
    icl_status st = check_reserve_budget(&m->spec, B, T, nthreads); /* before any allocation */
    if (st) return st;
    size_t used = arena_floats(&m->spec, B, T, nthreads), shard_bytes = model_shard_table_bytes(&m->spec, nthreads);
    float **res = calloc((size_t)m->spec.n_blocks + 1, sizeof *res);
    float *arena = alloc_floats(used);
    void *shards = shard_bytes ? calloc(1, shard_bytes) : NULL;
    if (!res || !arena || (shard_bytes && !shards)) { /* the old arena and its views stay as they were */
        free(res);
        free(arena);
        free(shards);
        return icl_fail(ICL_ERR_NOMEM, "model_reserve: cannot allocate %.1f MiB of activations for batch %d x %d",
                        used * 4.0 / (1 << 20), B, T);
    }
    free(m->arena);
    free(m->res);
    free(m->shards);
    m->arena = arena;
    m->arena_floats = used;
    m->res = res;
    m->nthreads = nthreads;
    m->nshards = model_shard_max(nthreads);
    model_shard_table_init(m, shards);
    carver real = {arena, 0};
    carve_all(&m->spec, m, &real, B, T, nthreads);
    m->cap_B = B;
    m->cap_T = T;
    m->B = m->T = 0;
    m->last_shards = 1;
    model_shard_views_init(m);
    return ICL_OK;
}

/* ---- forward and backward ----------------------------------------------- */

/* The S4D kernel of every S4-Mamba block, from its parameters: once per
 * forward, before the shards, which all read it. */
void model_s4_kernels_forward(model *m, int T) {
    for (int i = 0; i < m->spec.n_blocks; i++) {
        block *bl = &m->blocks[i];
        float *const *P = bl->p;
        if (bl->kind == BLOCK_S4MAMBA)
            s4d_kernel_forward(bl->kern, P[S4_LOG_DT], P[S4_LOG_A_RE], P[S4_A_IM], P[S4_C], m->E, m->Nh, T);
    }
}

/* The kernel parameters' gradients from dK: the shards' dkern added in
 * shard order into the model's (shard 0's), then one kernel backward per
 * block. A kernel backward per shard made a small S4-Mamba step with six
 * shards 1.2x slower (it is as costly as the kernel itself). */
void model_s4_kernels_backward(model *m, int ns) {
    const size_t n = (size_t)m->E * m->T;
    for (int i = 0; i < m->spec.n_blocks; i++) {
        block *bl = &m->blocks[i];
        if (bl->kind != BLOCK_S4MAMBA) continue;
        for (int k = 1; k < ns; k++) {
            const double *restrict d = m->shards[k - 1].blocks[i].dkern;
            double *restrict acc = bl->dkern;
#pragma omp simd
            for (size_t j = 0; j < n; j++) acc[j] += d[j];
        }
        float *const *P = bl->p, *const *G = bl->g;
        s4d_kernel_backward(G[S4_LOG_DT], G[S4_LOG_A_RE], G[S4_A_IM], G[S4_C], bl->dkern, P[S4_LOG_DT],
                            P[S4_LOG_A_RE], P[S4_A_IM], P[S4_C], m->E, m->Nh, m->T);
    }
}

void model_rows_forward(model *v, const float *x, const int *tok, int B, int T) {
    const model_spec *s = &v->spec;
    const int D = v->D;
    const size_t BT = (size_t)B * T;
    float *r0 = v->res[0];
    if (s->vocab > 0) {
        for (size_t i = 0; i < BT; i++) memcpy(r0 + i * D, v->emb + (size_t)tok[i] * D, sizeof(float) * D);
    } else {
        linear_forward(r0, x, v->ri_w, v->ri_b, (int)BT, s->n_dims, D);
    }
    if (v->pos) {
#pragma omp parallel for schedule(static) if (BT * D >= PAR_MIN_WORK)
        for (int i = 0; i < (int)BT; i++) {
            float *r = r0 + (size_t)i * D;
            const float *p = v->pos + (size_t)(i % T) * D;
#pragma omp simd
            for (int c = 0; c < D; c++) r[c] += p[c];
        }
    }
    for (int i = 0; i < s->n_blocks; i++) {
        block *bl = &v->blocks[i];
        switch (bl->kind) {
        case BLOCK_ATTN: attn_block_forward(v, bl, v->res[i + 1], v->res[i], B, T); break;
        case BLOCK_MLP: mlp_block_forward(v, bl, v->res[i + 1], v->res[i], B, T); break;
        case BLOCK_MAMBA: mamba_block_forward(v, bl, v->res[i + 1], v->res[i], B, T); break;
        case BLOCK_S4MAMBA: s4mamba_block_forward(v, bl, v->res[i + 1], v->res[i], B, T); break;
        default: break;
        }
        icl_tick(); /* a screen stays live during a long step (core/tick.h) */
    }
    layernorm_forward(v->lnf_out, v->lnf_mean, v->lnf_rstd, v->res[s->n_blocks], v->lnf_w, v->lnf_b, (int)BT, D);
    linear_forward(v->out, v->lnf_out, v->ro_w, v->ro_b, (int)BT, D, s->n_out);
    v->B = B;
    v->T = T;
    v->last_x = x;
    v->last_tok = tok;
}

icl_status model_forward(model *m, const float *x, const int *tok, int B, int T) {
    const model_spec *s = &m->spec;
    const size_t BT = (size_t)B * T;
    if (B < 1 || T < 1) return icl_fail(ICL_ERR_ARG, "forward: batch (%d) and length (%d) must be >= 1", B, T);
    if (B > m->cap_B || T > m->cap_T || omp_get_max_threads() > m->nthreads)
        return icl_fail(ICL_ERR_SHAPE,
                        "forward: batch %d x length %d exceeds the reserved %d x %d (call model_reserve first)", B, T,
                        m->cap_B, m->cap_T);
    if (s->n_positions > 0 && T > s->n_positions)
        return icl_fail(ICL_ERR_SHAPE, "forward: length %d exceeds the model's %d learned positions (n_positions)", T,
                        s->n_positions);
    if (s->vocab > 0) {
        if (!tok) return icl_fail(ICL_ERR_ARG, "forward: this model embeds token ids, but none were given");
        for (size_t i = 0; i < BT; i++)
            if (tok[i] < 0 || tok[i] >= s->vocab)
                return icl_fail(ICL_ERR_ARG, "forward: token id %d at position %zu is outside [0, %d)", tok[i], i,
                                s->vocab);
    } else if (!x) {
        return icl_fail(ICL_ERR_ARG, "forward: this model reads continuous tokens, but none were given");
    }
    int start[MODEL_SHARDS_MAX + 1];
    int ns = model_shard_plan(m, B, start);
    model_s4_kernels_forward(m, T); /* once, for all shards */
    if (ns > 1) model_shard_forward(m, x, tok, T, start, ns, model_shard_threads(ns));
    else model_rows_forward(m, x, tok, B, T);
    m->B = B;
    m->T = T;
    m->last_x = x;
    m->last_tok = tok;
    m->last_shards = ns;
    return ICL_OK;
}

void model_rows_backward(model *v, const float *dout, int B, int T) {
    const model_spec *s = &v->spec;
    const int D = v->D;
    const size_t BT = (size_t)B * T;
    block_scratch sc = {v->dln, v->d_big1, v->d_big2, {v->d_e[0], v->d_e[1], v->d_e[2], v->d_e[3], v->d_e[4]}};
    /* read-out and final norm */
    linear_backward(v->dln, v->g_ro_w, v->g_ro_b, dout, v->lnf_out, v->ro_w, (int)BT, D, s->n_out);
    memset(v->dres, 0, sizeof(float) * BT * D);
    layernorm_backward(v->dres, v->g_lnf_w, v->g_lnf_b, v->dln, v->res[s->n_blocks], v->lnf_w, v->lnf_mean,
                       v->lnf_rstd, (int)BT, D);
    for (int i = s->n_blocks - 1; i >= 0; i--) {
        block *bl = &v->blocks[i];
        switch (bl->kind) {
        case BLOCK_ATTN: attn_block_backward(v, bl, v->dres, v->res[i], &sc, B, T); break;
        case BLOCK_MLP: mlp_block_backward(v, bl, v->dres, v->res[i], &sc, B, T); break;
        case BLOCK_MAMBA: mamba_block_backward(v, bl, v->dres, v->res[i], &sc, B, T); break;
        case BLOCK_S4MAMBA: s4mamba_block_backward(v, bl, v->dres, v->res[i], &sc, B, T); break;
        default: break;
        }
        icl_tick();
    }
    if (v->pos) { /* g_pos[t] += sum_b dres[b, t]: per (t, c) in b order, each t on one thread */
#pragma omp parallel for schedule(static) if (BT * D >= PAR_MIN_WORK)
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++) {
                const float *d = v->dres + ((size_t)b * T + t) * D;
                float *g = v->g_pos + (size_t)t * D;
#pragma omp simd
                for (int c = 0; c < D; c++) g[c] += d[c];
            }
    }
    if (s->vocab > 0) {
        for (size_t i = 0; i < BT; i++) {
            float *g = v->g_emb + (size_t)v->last_tok[i] * D;
            const float *d = v->dres + i * D;
            for (int c = 0; c < D; c++) g[c] += d[c];
        }
    } else {
        linear_backward(NULL, v->g_ri_w, v->g_ri_b, v->dres, v->last_x, v->ri_w, (int)BT, s->n_dims, D);
    }
}

icl_status model_backward(model *m, const float *dout) {
    if (m->B == 0) return icl_fail(ICL_ERR_ARG, "backward: no forward pass to go back through");
    if (m->last_shards > 1) model_shard_backward(m, dout, m->last_shards, model_shard_threads(m->last_shards));
    else model_rows_backward(m, dout, m->B, m->T);
    model_s4_kernels_backward(m, m->last_shards); /* once, from the shards' dK */
    return ICL_OK;
}

/* ---- queries -------------------------------------------------------------- */

const param_tensor *model_find_tensor(const model *m, const char *name) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->table[i].name, name)) return &m->table[i];
    return NULL;
}

size_t model_block_params(const model *m, int i) {
    size_t n = 0;
    for (int k = 0; k < m->n_tensors; k++)
        if (m->table[k].block == (i == m->spec.n_blocks ? -1 : i)) n += m->table[k].numel;
    return n;
}

void model_grad_norms(const model *m, double *norms) {
    for (int i = 0; i <= m->spec.n_blocks; i++) norms[i] = 0;
    for (int k = 0; k < m->n_tensors; k++) {
        const param_tensor *t = &m->table[k];
        int slot = t->block < 0 ? m->spec.n_blocks : t->block;
        double s = 0;
        for (size_t j = 0; j < t->numel; j++) s += (double)m->grads[t->offset + j] * m->grads[t->offset + j];
        norms[slot] += s;
    }
    for (int i = 0; i <= m->spec.n_blocks; i++) norms[i] = sqrt(norms[i]);
}

int model_describe(const model *m, char *buf, size_t n) {
    const model_spec *s = &m->spec;
    size_t k = 0;
#define PUT(...) k += (size_t)snprintf(buf + (k < n ? k : n), k < n ? n - k : 0, __VA_ARGS__)
    PUT("model %s: d_model %d, n_layer %d, %d blocks, %zu parameters\n", s->arch, s->d_model, s->n_layer,
        s->n_blocks, m->n_params);
    if (s->vocab > 0) PUT("  embed       %d x %d\n", s->vocab, s->d_model);
    else PUT("  read_in     %d -> %d\n", s->n_dims, s->d_model);
    if (s->n_positions > 0) PUT("  positions   %d rows\n", s->n_positions);
    for (int i = 0; i < s->n_blocks; i++)
        PUT("  [%d] %-8s %zu params\n", i, block_kind_name(s->blocks[i]), model_block_params(m, i));
    PUT("  read_out    %d -> %d", s->d_model, s->n_out);
#undef PUT
    return (int)k;
}
