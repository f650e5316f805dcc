/*
 * test_model.c - every architecture end to end: finite-difference gradient
 * checks of every parameter tensor (read-in, positions, every block's
 * weights including A_log, D, dt bias, conv and S4D parameters, final norm,
 * read-out), parameter counts against SPEC.md 3.6, initialisation
 * statistics, block lists, causality, and probes; and the data-parallel
 * shards of nn/model_shard.c: gradient checks at two threads, and sharded
 * against unsharded results.
 */
#include <math.h>
#include <omp.h>
#include <string.h>

#include "nn/model.h"
#include "nn/model_internal.h"
#include "core/scan.h"
#include "testlib.h"

typedef struct {
    model *m;
    const float *x;
    const int *tok;
    const float *r;
    int B, T;
} fd_ctx;

static double model_loss(void *vctx) {
    fd_ctx *c = vctx;
    model_forward(c->m, c->x, c->tok, c->B, c->T);
    return test_dot(c->r, c->m->out, (size_t)c->B * c->T * c->m->spec.n_out);
}

static model *tiny(const char *arch, int n_layer, uint64_t seed) {
    model_spec s;
    model_spec_default(&s, arch);
    model_spec_set(&s, "d_model", 8);
    model_spec_set(&s, "n_layer", n_layer);
    model_spec_set(&s, "n_head", 2);
    model_spec_set(&s, "d_state", 4);
    model_spec_set(&s, "n_dims", 3);
    model_spec_set(&s, "n_out", 2);
    if (s.n_positions) model_spec_set(&s, "n_positions", 8);
    s.seed = seed;
    model *m = NULL;
    icl_status st = model_create(&m, &s);
    CHECK(st == ICL_OK, "model_create(%s): %s", arch, icl_error());
    return m;
}

/* Five-point differences tensor by tensor, with a step scaled to the
 * tensor's size: 3e-2 * rms, clamped to [1e-3, 3e-2]. A fixed large step is
 * too coarse for small tensors feeding a LayerNorm (an embedding of rms 0.05
 * perturbed by 20% shows curvature), and a small step drowns small gradients
 * (x_proj's, ~1e-3) in float rounding. Steps are exact in float (powers of 2
 * are not needed: test_fd_grad4 divides by the nominal step, whose rounding
 * error is far below the tolerance). */
static void fd_by_tensor(model *m, fd_ctx *c, float *num) {
    for (int k = 0; k < m->n_tensors; k++) {
        const param_tensor *t = &m->table[k];
        double ss = 0;
        for (size_t i = 0; i < t->numel; i++) ss += (double)m->params[t->offset + i] * m->params[t->offset + i];
        double eps = 3e-2 * sqrt(ss / t->numel);
        eps = eps < 1e-3 ? 1e-3 : eps > 3e-2 ? 3e-2 : eps;
        test_fd_grad4(model_loss, c, m->params + t->offset, t->numel, eps, num + t->offset);
    }
}

/* Push Mamba's step sizes from their init range [1e-3, 0.1] up to ~1 and
 * triple x_proj (B, C and the dt input) so the selective-scan path carries
 * gradients well above float rounding; at init x_proj's gradient is ~1e-3
 * and a finite difference cannot resolve it from a float forward pass. */
static void widen_delta(model *m) {
    for (int k = 0; k < m->n_tensors; k++) {
        const param_tensor *t = &m->table[k];
        float add = 0, mul = 1;
        if (strstr(t->name, "dt_proj.bias") || strstr(t->name, "log_dt")) add = 3.0f;
        if (strstr(t->name, "x_proj.weight")) mul = 3.0f;
        for (size_t i = 0; i < t->numel; i++) m->params[t->offset + i] = m->params[t->offset + i] * mul + add;
    }
}

/* Gradient check of every tensor of m on a random batch. Tolerance: per
 * element |a - n| <= 2e-3 + 3e-2 max(|a|,|n|), and per tensor
 * ||a - n|| <= 3e-2 ||n|| + 1e-4 sqrt(numel), with five-point differences
 * (fd_by_tensor). Measured over seeds 1-20, the worst per-tensor relative
 * error is about 2%, from float rounding in the forward pass. */
static void gradcheck_model(model *m, const char *label) {
    const int B = 2, T = 5, d = m->spec.n_dims, O = m->spec.n_out;
    test_rng r = {test_seed() ^ 0xabc};
    float x[2 * 5 * 16], rr[2 * 5 * 16];
    test_fill_normal(&r, x, (size_t)B * T * d, 1.0f);
    test_fill_normal(&r, rr, (size_t)B * T * O, 1.0f);
    /* perturb parameters away from their init (e.g. LN weight 1, biases 0,
     * D = 1) so no gradient term is hidden by a special value */
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += 0.05f * test_rng_normal(&r);
    widen_delta(m);
    CHECK(model_reserve(m, B, T) == ICL_OK, "reserve: %s", icl_error());
    CHECK(model_forward(m, x, NULL, B, T) == ICL_OK, "forward: %s", icl_error());
    model_zero_grad(m);
    CHECK(model_backward(m, rr) == ICL_OK, "backward: %s", icl_error());
    float *num = malloc(sizeof(float) * m->n_params);
    fd_ctx c = {m, x, NULL, rr, B, T};
    float *analytic = malloc(sizeof(float) * m->n_params);
    memcpy(analytic, m->grads, sizeof(float) * m->n_params);
    fd_by_tensor(m, &c, num);
    for (int k = 0; k < m->n_tensors; k++) {
        const param_tensor *t = &m->table[k];
        const float *a = analytic + t->offset, *n = num + t->offset;
        double dn = 0, nn = 0;
        for (size_t i = 0; i < t->numel; i++) {
            dn += (double)(a[i] - n[i]) * (a[i] - n[i]);
            nn += (double)n[i] * n[i];
        }
        int ok = test_allclose(t->name, a, n, t->numel, 3e-2, 2e-3);
        CHECK(ok, "%s %s: elementwise gradient mismatch", label, t->name);
        CHECK(sqrt(dn) <= 3e-2 * sqrt(nn) + 1e-4 * sqrt((double)t->numel), "%s %s: relative gradient error %.3g (norm %.3g)", label, t->name,
              sqrt(dn) / (sqrt(nn) + 1e-30), sqrt(nn));
        CHECK(nn > 0 || !strcmp(t->name, "pos.weight"), "%s %s: gradient is identically zero", label, t->name);
    }
    free(num);
    free(analytic);
}

static void test_gradcheck_transformer(void) {
    model *m = tiny("transformer", 4, test_seed());
    gradcheck_model(m, "transformer");
    model_free(m);
}
static void test_gradcheck_mamba(void) {
    model *m = tiny("mamba", 2, test_seed());
    gradcheck_model(m, "mamba");
    model_free(m);
}
/* The same with the scan's backward in chunks of 2 steps: T = 5 crosses two
 * checkpoints, so the arena's checkpoint buffer and its wiring are checked
 * (the default chunk is longer than these tiny sequences). */
static void test_gradcheck_mamba_chunked(void) {
    scan_set_max_chunk(2);
    model *m = tiny("mamba", 2, test_seed());
    gradcheck_model(m, "mamba, scan chunks of 2");
    model_free(m);
    scan_set_max_chunk(0);
}
static void test_gradcheck_s4mamba(void) {
    model *m = tiny("s4mamba", 2, test_seed());
    gradcheck_model(m, "s4mamba");
    model_free(m);
}
static void test_gradcheck_hybrid(void) {
    model *m = tiny("hybrid", 2, test_seed());
    gradcheck_model(m, "hybrid");
    model_free(m);
}
static void test_gradcheck_mambaformer(void) {
    model *m = tiny("mambaformer", 2, test_seed());
    gradcheck_model(m, "mambaformer");
    model_free(m);
}

/* A user-given block list, with an embedding read-in (token tasks). */
static void test_gradcheck_custom_tokens(void) {
    model_spec s;
    model_spec_default(&s, "custom");
    block_kind kinds[] = {BLOCK_MLP, BLOCK_S4MAMBA, BLOCK_ATTN, BLOCK_MAMBA};
    CHECK(model_spec_set_blocks(&s, kinds, 4) == ICL_OK, "%s", icl_error());
    model_spec_set(&s, "d_model", 8);
    model_spec_set(&s, "n_head", 2);
    model_spec_set(&s, "d_state", 4);
    model_spec_set(&s, "vocab", 11);
    model_spec_set(&s, "n_out", 11);
    model *m = NULL;
    CHECK(model_create(&m, &s) == ICL_OK, "%s", icl_error());
    if (!m) return;
    const int B = 2, T = 5;
    int tok[10];
    test_rng r = {test_seed() + 7};
    for (int i = 0; i < B * T; i++) tok[i] = (int)(test_rng_u64(&r) % 11);
    float rr[2 * 5 * 11];
    test_fill_normal(&r, rr, sizeof rr / sizeof *rr, 1.0f);
    for (size_t i = 0; i < m->n_params; i++) m->params[i] += 0.05f * test_rng_normal(&r);
    model_reserve(m, B, T);
    model_forward(m, NULL, tok, B, T);
    model_zero_grad(m);
    model_backward(m, rr);
    float *num = malloc(sizeof(float) * m->n_params);
    fd_ctx c = {m, NULL, tok, rr, B, T};
    float *analytic = malloc(sizeof(float) * m->n_params);
    memcpy(analytic, m->grads, sizeof(float) * m->n_params);
    fd_by_tensor(m, &c, num);
    CHECK(test_allclose("custom", analytic, num, m->n_params, 3e-2, 2e-3), "custom token model gradients");
    tok[3] = 11;
    CHECK(model_forward(m, NULL, tok, B, T) == ICL_ERR_ARG, "an out-of-range token id must be refused");
    free(num);
    free(analytic);
    model_free(m);
}

/* ---- shards (nn/model_shard.c) ------------------------------------------ */

/* The gradient checks again at two threads: B = 2 runs as two shards of one
 * sequence, each through its view (its own gradient block, scan, delta and
 * attention scratch, S4D kernel), and the custom token model covers the
 * embedding's scatter-add and every block kind. */
static void test_gradcheck_sharded(void) {
    const char *archs[] = {"transformer", "mamba", "s4mamba", "hybrid", "mambaformer"};
    omp_set_num_threads(2);
    for (size_t a = 0; a < sizeof archs / sizeof *archs; a++) {
        model *m = tiny(archs[a], 2, test_seed() + 3);
        char label[64];
        snprintf(label, sizeof label, "%s, 2 shards", archs[a]);
        gradcheck_model(m, label);
        CHECK(m->last_shards == 2, "%s: the forward ran in %d shard(s), not 2", archs[a], m->last_shards);
        model_free(m);
    }
    test_gradcheck_custom_tokens();
    omp_set_num_threads(1);
}

/* Sharded (2 threads) against unsharded (1 thread) on an uneven batch
 * (B = 5: shards of 2 and 3): the same outputs and gradients up to rounding
 * (each sequence's forward runs the same single-threaded kernels; the
 * weight gradients are sums over the batch in other pieces), bit for bit
 * the same when run twice, gradients accumulating onto what m->grads held,
 * and the probes reading the same activations. B = 1 runs unsharded. */
static void shards_match(const char *arch) {
    const int B = 5, T = 7;
    model *m = tiny(arch, 2, test_seed() + 11);
    if (!m) return;
    const int d = m->spec.n_dims, O = m->spec.n_out;
    const size_t np = m->n_params, no = (size_t)B * T * O;
    test_rng r = {test_seed() ^ 0x5A4D};
    float x[5 * 7 * 3], dout[5 * 7 * 2];
    test_fill_normal(&r, x, (size_t)B * T * d, 1.0f);
    test_fill_normal(&r, dout, no, 1.0f);
    for (size_t i = 0; i < np; i++) m->params[i] += 0.05f * test_rng_normal(&r);
    float *out1 = test_falloc(no), *g1 = test_falloc(np), *out2 = test_falloc(no), *g2 = test_falloc(np);
    float *pre = test_falloc(np), *probe1 = test_falloc(4096), *probe2 = test_falloc(4096);
    int probe_blk = -1, ssm = 0;
    for (int i = 0; i < m->spec.n_blocks && probe_blk < 0; i++)
        if (m->spec.blocks[i] == BLOCK_ATTN || m->spec.blocks[i] == BLOCK_MAMBA)
            probe_blk = i, ssm = m->spec.blocks[i] == BLOCK_MAMBA;
    for (int run = 0; run < 3; run++) { /* 1 thread, then 2 threads twice */
        omp_set_num_threads(run == 0 ? 1 : 2);
        CHECK(model_reserve(m, B, T) == ICL_OK, "reserve: %s", icl_error());
        CHECK(model_forward(m, x, NULL, B, T) == ICL_OK, "forward: %s", icl_error());
        CHECK(m->last_shards == (run == 0 ? 1 : 2), "%s run %d: %d shard(s)", arch, run, m->last_shards);
        model_zero_grad(m);
        CHECK(model_backward(m, dout) == ICL_OK, "backward: %s", icl_error());
        float *po = run == 0 ? probe1 : probe2;
        if (probe_blk >= 0) /* prompt 4: in the second shard */
            CHECK((ssm ? model_ssm_states(m, probe_blk, 4, po) : model_attention(m, probe_blk, 1, 4, po)) == ICL_OK,
                  "probe: %s", icl_error());
        if (run == 0) {
            memcpy(out1, m->out, no * sizeof(float)), memcpy(g1, m->grads, np * sizeof(float));
        } else if (run == 1) {
            memcpy(out2, m->out, no * sizeof(float)), memcpy(g2, m->grads, np * sizeof(float));
            CHECK(test_allclose("out 2 vs 1 thread", out2, out1, no, 1e-5, 1e-6), "%s: outputs", arch);
            CHECK(test_allclose("grads 2 vs 1 thread", g2, g1, np, 1e-4, 1e-6), "%s: gradients", arch);
            size_t np_probe = ssm ? (size_t)T * m->E * m->N : (size_t)T * T;
            CHECK(test_allclose("probe 2 vs 1 thread", probe2, probe1, np_probe, 1e-5, 1e-6), "%s: probe", arch);
        } else {
            CHECK(!memcmp(out2, m->out, no * sizeof(float)), "%s: two sharded runs differ in out", arch);
            CHECK(!memcmp(g2, m->grads, np * sizeof(float)), "%s: two sharded runs differ in the gradients", arch);
        }
    }
    /* accumulation: the shards add onto what m->grads held */
    test_fill_normal(&r, pre, np, 1.0f);
    memcpy(m->grads, pre, np * sizeof(float));
    CHECK(model_backward(m, dout) == ICL_OK, "backward: %s", icl_error());
    for (size_t i = 0; i < np; i++) pre[i] += g2[i];
    CHECK(test_allclose("pre + grads", m->grads, pre, np, 1e-6, 1e-6), "%s: backward does not accumulate", arch);
    /* reserved for 3 threads, run on 2: two shards of 2 and 3 prompts where
     * the reservation made three of 1-2 (each shard's scratch must hold the
     * larger share; ASan sees an overrun) */
    omp_set_num_threads(3);
    CHECK(model_reserve(m, B, T) == ICL_OK && m->nshards == model_shard_max(3), "reserve at 3 threads: %s",
          icl_error());
    omp_set_num_threads(2);
    CHECK(model_forward(m, x, NULL, B, T) == ICL_OK && m->last_shards == 2, "%s: forward at 2 of 3", arch);
    model_zero_grad(m);
    CHECK(model_backward(m, dout) == ICL_OK, "backward: %s", icl_error());
    CHECK(test_allclose("out, 2 of 3 shards", m->out, out1, no, 1e-5, 1e-6), "%s: outputs at 2 of 3", arch);
    CHECK(test_allclose("grads, 2 of 3 shards", m->grads, g1, np, 1e-4, 1e-6), "%s: gradients at 2 of 3", arch);
    /* one sequence: nothing to split */
    CHECK(model_forward(m, x, NULL, 1, T) == ICL_OK && m->last_shards == 1, "%s: B = 1 ran in %d shards", arch,
          m->last_shards);
    omp_set_num_threads(1);
    free(out1), free(g1), free(out2), free(g2), free(pre), free(probe1), free(probe2);
    model_free(m);
}

static void test_shards_match(void) {
    const char *archs[] = {"transformer", "mamba", "s4mamba", "hybrid", "mambaformer"};
    for (size_t a = 0; a < sizeof archs / sizeof *archs; a++) shards_match(archs[a]);
}

/* The layout: every sequence in exactly one shard, in order, none empty, no
 * more shards than reserved and none larger than a shard's scratch holds
 * (half the batch); big batches get nt big shards first, then 2 nt small
 * ones; the README's example (B = 64 on 2 threads: 24 24 4 4 4 4). */
static void test_shard_layout(void) {
    int start[MODEL_SHARDS_MAX + 1];
    for (int nt = 1; nt <= 5; nt++)
        for (int B = 1; B <= 300; B++) {
            int ns = model_shard_layout(B, nt, start), bad = 0;
            bad |= ns < 1 || ns > model_shard_max(nt) || start[0] != 0 || start[ns] != B;
            for (int k = 0; k < ns && !bad; k++) {
                int n = start[k + 1] - start[k];
                bad |= n < 1 || (nt > 1 && n > (B + 1) / 2);
                if (k >= nt && k > 0) bad |= n > start[1] - start[0]; /* small after big */
            }
            bad |= nt > 1 && B >= 8 * nt && ns != 3 * nt;
            bad |= (nt == 1 || B == 1) && ns != 1;
            CHECK(!bad, "layout of B = %d on %d threads: %d shards, starts %d %d %d ... %d", B, nt, ns, start[0],
                  start[1], ns > 1 ? start[2] : -1, start[ns]);
        }
    int ns = model_shard_layout(64, 2, start);
    const int want[] = {0, 24, 48, 52, 56, 60, 64};
    CHECK(ns == 6 && !memcmp(start, want, sizeof want), "B = 64 on 2 threads: %d shards, %d %d %d ...", ns,
          start[0], start[1], start[2]);
}

/* Which thread runs which shard changes no bit: a step whose shards the
 * threads claimed (2 threads) against the same layout run on one thread,
 * shard after shard, for a batch big enough for small shards (B = 16 on 2
 * threads: 6 6 1 1 1 1). Both agree with the unsharded step up to rounding. */
static void shard_any_thread(const char *arch) {
    enum { B = 16, T = 7 };
    model *m = tiny(arch, 2, test_seed() + 17);
    if (!m) return;
    const size_t np = m->n_params, no = (size_t)B * T * m->spec.n_out;
    test_rng r = {test_seed() ^ 0x7A11};
    float x[B * T * 3], dout[B * T * 2];
    test_fill_normal(&r, x, (size_t)B * T * m->spec.n_dims, 1.0f);
    test_fill_normal(&r, dout, no, 1.0f);
    float *out1 = test_falloc(no), *g1 = test_falloc(np), *out2 = test_falloc(no), *g2 = test_falloc(np);
    omp_set_num_threads(1);
    CHECK(model_reserve(m, B, T) == ICL_OK && model_forward(m, x, NULL, B, T) == ICL_OK && m->last_shards == 1,
          "%s: unsharded forward: %s", arch, icl_error());
    model_zero_grad(m);
    CHECK(model_backward(m, dout) == ICL_OK, "backward: %s", icl_error());
    memcpy(out1, m->out, no * sizeof(float)), memcpy(g1, m->grads, np * sizeof(float));
    omp_set_num_threads(2);
    CHECK(model_reserve(m, B, T) == ICL_OK, "reserve: %s", icl_error());
    CHECK(model_forward(m, x, NULL, B, T) == ICL_OK && m->last_shards == 6, "%s: %d shards, not 6", arch,
          m->last_shards);
    model_zero_grad(m);
    CHECK(model_backward(m, dout) == ICL_OK, "backward: %s", icl_error());
    memcpy(out2, m->out, no * sizeof(float)), memcpy(g2, m->grads, np * sizeof(float));
    CHECK(test_allclose("out, 6 shards vs none", out2, out1, no, 1e-5, 1e-6), "%s: outputs", arch);
    CHECK(test_allclose("grads, 6 shards vs none", g2, g1, np, 1e-4, 1e-6), "%s: gradients", arch);
    int start[MODEL_SHARDS_MAX + 1];
    int ns = model_shard_plan(m, B, start);
    CHECK(ns == 6, "%s: plan of %d shards", arch, ns);
    memset(m->out, 0, no * sizeof(float));
    model_s4_kernels_forward(m, T); /* what model_forward and model_backward add around the shards */
    model_shard_forward(m, x, NULL, T, start, ns, 1);
    model_zero_grad(m);
    model_shard_backward(m, dout, ns, 1);
    model_s4_kernels_backward(m, ns);
    CHECK(!memcmp(out2, m->out, no * sizeof(float)), "%s: out differs when one thread runs the shards", arch);
    CHECK(!memcmp(g2, m->grads, np * sizeof(float)), "%s: gradients differ when one thread runs the shards", arch);
    omp_set_num_threads(1);
    free(out1), free(g1), free(out2), free(g2);
    model_free(m);
}

static void test_shard_any_thread(void) {
    const char *archs[] = {"transformer", "mamba", "s4mamba", "hybrid", "mambaformer"};
    for (size_t a = 0; a < sizeof archs / sizeof *archs; a++) shard_any_thread(archs[a]);
}

/* SPEC.md 3.6: parameter counts computed from the paper code's shapes. */
static void test_param_counts(void) {
    struct { const char *arch; int D, L, d, pos; size_t want; } cases[] = {
        {"transformer", 128, 4, 20, 202, 425473}, /* "about 425k" */
        {"mamba", 128, 4, 20, 0, 470017},          /* "about 470k" */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        model_spec s;
        model_spec_default(&s, cases[i].arch);
        model_spec_set(&s, "d_model", cases[i].D);
        model_spec_set(&s, "n_layer", cases[i].L);
        model_spec_set(&s, "n_dims", cases[i].d);
        model_spec_set(&s, "n_head", 8);
        model_spec_set(&s, "n_positions", cases[i].pos);
        model *m = NULL;
        CHECK(model_create(&m, &s) == ICL_OK, "%s", icl_error());
        if (!m) continue;
        CHECK(m->n_params == cases[i].want, "%s: %zu parameters, want %zu", cases[i].arch, m->n_params, cases[i].want);
        CHECK(m->n_params == model_param_count(&s), "model_param_count disagrees");
        /* per-block formulas of SPEC.md 3.6 */
        size_t D = 128;
        if (!strcmp(cases[i].arch, "transformer"))
            CHECK(model_block_params(m, 0) + model_block_params(m, 1) == 12 * D * D + 13 * D, "GPT-2 block");
        else
            CHECK(model_block_params(m, 0) == 6 * D * D + 4 * D * 8 + 112 * D, "Mamba block: %zu",
                  model_block_params(m, 0));
        model_free(m);
    }
    model_spec s;
    model_spec_default(&s, "hybrid");
    model_spec_set(&s, "d_model", 128);
    model_spec_set(&s, "n_head", 8);
    model *m = NULL;
    CHECK(model_create(&m, &s) == ICL_OK, "%s", icl_error());
    if (m) CHECK(model_block_params(m, 0) == 4 * 128 * 128 + 6 * 128, "hybrid attention block");
    model_free(m);
}

/* The size formula (used for budgets and checkpoint checks) agrees with the
 * layout of every architecture, at several widths. */
static void test_param_count_formula(void) {
    const char *archs[] = {"transformer", "mamba", "s4mamba", "hybrid", "mambaformer"};
    for (int a = 0; a < 5; a++)
        for (int D = 8; D <= 40; D += 16) {
            model *m = tiny(archs[a], 4, 1);
            model_spec s = m->spec;
            model_free(m);
            model_spec_set(&s, "d_model", D);
            model_spec_set(&s, "n_head", 4);
            CHECK(model_create(&m, &s) == ICL_OK, "%s", icl_error());
            if (!m) continue;
            CHECK(m->n_params == model_param_count(&s), "%s D=%d: layout %zu, formula %zu", archs[a], D, m->n_params,
                  model_param_count(&s));
            model_free(m);
        }
}

static void test_block_lists(void) {
    struct { const char *arch; const char *want; } c[] = {
        {"transformer", "attn mlp attn mlp"}, {"mamba", "mamba mamba mamba mamba"},
        {"s4mamba", "s4mamba s4mamba s4mamba s4mamba"}, {"hybrid", "attn mamba attn mamba"},
        {"mambaformer", "mamba attn mamba attn mamba"}};
    for (size_t i = 0; i < 5; i++) {
        model_spec s;
        model_spec_default(&s, c[i].arch);
        char buf[128] = "";
        for (int k = 0; k < s.n_blocks; k++) {
            if (k) strcat(buf, " ");
            strcat(buf, block_kind_name(s.blocks[k]));
        }
        CHECK(!strcmp(buf, c[i].want), "%s n_layer 4: got '%s', want '%s'", c[i].arch, buf, c[i].want);
    }
    model_spec s;
    CHECK(model_spec_default(&s, "gpt5") == ICL_ERR_ARG && strstr(icl_error(), "gpt5"), "unknown arch: %s",
          icl_error());
    model_spec_default(&s, "transformer");
    CHECK(model_spec_set(&s, "n_layer", 3) == ICL_ERR_ARG && strstr(icl_error(), "even"), "odd n_layer: %s",
          icl_error());
    CHECK(model_spec_set(&s, "d_modle", 3) == ICL_ERR_ARG && strstr(icl_error(), "d_modle"), "unknown field: %s",
          icl_error());
    model_spec_set(&s, "n_head", 5);
    CHECK(model_spec_validate(&s) == ICL_ERR_ARG && strstr(icl_error(), "n_head"), "d_model %% n_head: %s",
          icl_error());
}

/* Initialisation facts of SPEC.md 6.2 and 3.1. */
static void test_init_values(void) {
    model_spec s;
    model_spec_default(&s, "mambaformer");
    model_spec_set(&s, "d_model", 64);
    model *m = NULL;
    model_create(&m, &s);
    if (!m) return;
    const param_tensor *a = model_find_tensor(m, "blocks.0.mamba.A_log");
    const param_tensor *dt = model_find_tensor(m, "blocks.0.mamba.dt_proj.bias");
    const param_tensor *D = model_find_tensor(m, "blocks.2.mamba.D");
    CHECK(a && dt && D, "tensors by name");
    if (!a || !dt || !D) return;
    for (int c = 0; c < m->E; c += 37)
        for (int n = 0; n < m->N; n++)
            CHECK(fabsf(m->params[a->offset + (size_t)c * m->N + n] - logf(n + 1.0f)) < 1e-6, "A_log = log n");
    for (size_t i = 0; i < dt->numel; i++) {
        double b = m->params[dt->offset + i];
        double sp = b > 20 ? b : log1p(exp(b));
        CHECK(sp >= 1e-3 * 0.999 && sp <= 0.1 * 1.001, "softplus(dt bias) = %g outside [1e-3, 0.1]", sp);
    }
    for (size_t i = 0; i < D->numel; i++) CHECK(m->params[D->offset + i] == 1.0f, "D = 1");
    /* out_proj ~ U(+-1/sqrt(E)) / sqrt(n_layer) */
    const param_tensor *o = model_find_tensor(m, "blocks.1.attn.qkv.weight");
    const param_tensor *op = model_find_tensor(m, "blocks.0.mamba.out_proj.weight");
    float bound = 1.0f / sqrtf((float)m->E) / 2.0f, mx = 0;
    for (size_t i = 0; i < op->numel; i++) mx = fmaxf(mx, fabsf(m->params[op->offset + i]));
    CHECK(mx <= bound && mx > 0.9f * bound, "out_proj max |w| %g, bound %g", mx, bound);
    CHECK(o != NULL, "attention tensors are named blocks.1.attn.*");
    model_free(m);
    /* GPT-2: residual projections N(0, 0.02/sqrt(n_layer)) */
    model_spec_default(&s, "transformer");
    model_spec_set(&s, "d_model", 128);
    model_spec_set(&s, "n_layer", 8);
    model_create(&m, &s);
    const param_tensor *pw = model_find_tensor(m, "blocks.1.mlp.proj.weight");
    const param_tensor *fw = model_find_tensor(m, "blocks.1.mlp.fc.weight");
    double s2 = 0, f2 = 0;
    for (size_t i = 0; i < pw->numel; i++) s2 += (double)m->params[pw->offset + i] * m->params[pw->offset + i];
    for (size_t i = 0; i < fw->numel; i++) f2 += (double)m->params[fw->offset + i] * m->params[fw->offset + i];
    double sd = sqrt(s2 / pw->numel), fd = sqrt(f2 / fw->numel);
    CHECK(fabs(sd - 0.02 / sqrt(8)) < 0.02 / sqrt(8) * 0.03, "proj std %g, want %g", sd, 0.02 / sqrt(8));
    CHECK(fabs(fd - 0.02) < 0.02 * 0.03, "fc std %g, want 0.02", fd);
    model_free(m);
}

/* Changing a future token must not change earlier outputs, in any arch. */
static void test_causality(void) {
    const char *archs[] = {"transformer", "mamba", "s4mamba", "hybrid", "mambaformer"};
    for (int a = 0; a < 5; a++) {
        model *m = tiny(archs[a], 2 + 2 * (a == 0), test_seed() + a);
        const int B = 1, T = 7;
        float x[7 * 3], out1[7 * 2];
        test_rng r = {test_seed() + 99};
        test_fill_normal(&r, x, 21, 1.0f);
        model_reserve(m, B, T);
        model_forward(m, x, NULL, B, T);
        memcpy(out1, m->out, sizeof out1);
        x[5 * 3 + 1] += 3.0f; /* token 5 */
        model_forward(m, x, NULL, B, T);
        for (int t = 0; t < 5; t++)
            for (int o = 0; o < 2; o++)
                CHECK(m->out[t * 2 + o] == out1[t * 2 + o], "%s: output %d changed by a later token", archs[a], t);
        CHECK(m->out[5 * 2] != out1[5 * 2], "%s: output 5 must depend on token 5", archs[a]);
        model_free(m);
    }
}

static void test_probes_and_limits(void) {
    model *m = tiny("mambaformer", 2, test_seed());
    const int B = 2, T = 6;
    float x[2 * 6 * 3];
    test_rng r = {test_seed() + 5};
    test_fill_normal(&r, x, sizeof x / sizeof *x, 1.0f);
    float att[36], h[6 * 16 * 4];
    CHECK(model_attention(m, 1, 0, 0, att) == ICL_ERR_ARG, "probe before forward must fail");
    model_reserve(m, B, T);
    CHECK(model_forward(m, x, NULL, B, 8) == ICL_ERR_SHAPE, "forward beyond reserve must fail: %s", icl_error());
    model_forward(m, x, NULL, B, T);
    CHECK(model_attention(m, 1, 1, 1, att) == ICL_OK, "%s", icl_error());
    for (int t = 0; t < T; t++) {
        double s = 0;
        for (int u = 0; u < T; u++) s += att[t * T + u];
        CHECK(fabs(s - 1) < 1e-5, "attention row %d sums to %g", t, s);
    }
    CHECK(model_attention(m, 0, 0, 0, att) == ICL_ERR_ARG, "attention of a mamba block must fail");
    CHECK(model_attention(m, 1, 2, 0, att) == ICL_ERR_ARG, "head out of range must fail");
    CHECK(model_ssm_states(m, 0, 1, h) == ICL_OK, "%s", icl_error());
    CHECK(model_ssm_states(m, 1, 1, h) == ICL_ERR_ARG, "states of an attn block must fail");
    CHECK(model_ssm_states(m, 0, 2, h) == ICL_ERR_ARG, "prompt out of range must fail");
    float dl[6 * 16];
    CHECK(model_ssm_params(m, 2, 0, dl, NULL, NULL) == ICL_OK, "%s", icl_error());
    for (int i = 0; i < 6 * 16; i++) CHECK(dl[i] > 0, "delta must be positive");
    model_free(m);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    /* Gradient checks run on one thread: the shapes are tiny, and two
     * threads spend more time waking each other than computing. Thread-count
     * independence is tested kernel by kernel and in test_train. */
    omp_set_num_threads(1);
    TEST_RUN(test_gradcheck_transformer);
    TEST_RUN(test_gradcheck_mamba);
    TEST_RUN(test_gradcheck_mamba_chunked);
    TEST_RUN(test_gradcheck_s4mamba);
    TEST_RUN(test_gradcheck_hybrid);
    TEST_RUN(test_gradcheck_mambaformer);
    TEST_RUN(test_gradcheck_custom_tokens);
    TEST_RUN(test_param_counts);
    TEST_RUN(test_param_count_formula);
    TEST_RUN(test_block_lists);
    TEST_RUN(test_init_values);
    TEST_RUN(test_causality);
    TEST_RUN(test_probes_and_limits);
    TEST_RUN(test_gradcheck_sharded);
    TEST_RUN(test_shards_match);
    TEST_RUN(test_shard_layout);
    TEST_RUN(test_shard_any_thread);
    return test_finish();
}
