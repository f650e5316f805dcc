/*
 * model.h - an in-context learner: read-in, optional learned positions, a
 * list of pre-norm residual blocks, final LayerNorm, read-out.
 *
 *   x (B, T, d) --read-in--> res (B, T, D) [+ pos[t]]
 *       for each block i:  res += block_i(LayerNorm_i(res))
 *   hf = LayerNorm_f(res);  out (B, T, O) = hf W_ro^T + b_ro
 *
 * Blocks: attn (causal multi-head attention, fused QKV with bias), mlp
 * (GELU, 4D hidden), mamba (the Mamba-1 mixer, SPEC.md 6), s4mamba (Mamba
 * with its selective scan replaced by S4D-Lin, SPEC.md 3.3). Named
 * architectures are block lists (SPEC.md 3, n_layer counted as the paper's
 * code does):
 *   transformer  positions, [attn, mlp] x n_layer/2          (GPT-2)
 *   mamba        [mamba] x n_layer
 *   s4mamba      [s4mamba] x n_layer
 *   hybrid       positions, [attn, mamba] x n_layer/2        (Standard Hybrid)
 *   mambaformer  mamba, then [attn, mamba] x n_layer/2
 *   custom       any user list (model_spec_set_blocks)
 *
 * Memory: all parameters live in one float block (m->params, m->n_params),
 * carved into named tensors (m->table); the gradients (m->grads) mirror it
 * exactly, and so do the optimiser moments (optim.h). Activations are carved
 * from one arena allocated by model_reserve(B, T); forward/backward never
 * allocate, and a call with more than the reserved B or T fails with
 * ICL_ERR_SHAPE instead of silently reallocating.
 */
#ifndef ICL_MODEL_H
#define ICL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum { BLOCK_ATTN = 0, BLOCK_MLP, BLOCK_MAMBA, BLOCK_S4MAMBA, BLOCK_KIND_COUNT } block_kind;
typedef enum { INIT_GPT2 = 0, INIT_MIXER = 1 } init_family;

#define MODEL_MAX_BLOCKS 128
#define MODEL_MAX_TENSORS (8 + 16 * MODEL_MAX_BLOCKS)

typedef struct {
    char arch[24];       /* transformer | mamba | s4mamba | hybrid | mambaformer | custom */
    int n_dims;          /* d: width of continuous input tokens */
    int n_out;           /* O: read-out width (1 scalar, d vector, V logits) */
    int vocab;           /* > 0: token ids go through an embedding table (V, D) */
    int d_model;         /* D */
    int n_layer;         /* the paper's counting (SPEC.md 3.2) */
    int n_head;          /* attention heads, D % n_head == 0 */
    int d_state;         /* N (Mamba: 16; S4-Mamba: 2 * complex modes) */
    int d_conv;          /* K = 4 */
    int expand;          /* E = expand * D */
    int dt_rank;         /* R; 0 = ceil(D / 16) */
    int n_positions;     /* rows of the learned position table; 0 = none */
    float pos_std;       /* init std of positions: 0.02 (GPT-2) or 1 (hybrid) */
    init_family init;
    int n_blocks;
    block_kind blocks[MODEL_MAX_BLOCKS];
    uint64_t seed;       /* initialisation seed */
} model_spec;

/* One named parameter tensor inside the flat block. */
typedef struct {
    char name[48];       /* e.g. "blocks.3.mamba.A_log" (the safetensors name) */
    int ndim;
    int shape[3];
    size_t offset;       /* in floats, into params / grads / moments */
    size_t numel;
    int block;           /* owning block index, -1 for read-in/out/positions/final norm */
} param_tensor;

typedef struct block block; /* per-block views and saved activations (model_internal.h) */

typedef struct model {
    model_spec spec;
    int D, E, N, R, K, NH, Nh; /* resolved dims (Nh = complex modes of S4D) */
    /* parameters, gradients: one contiguous block each */
    float *params, *grads;
    size_t n_params;
    param_tensor table[MODEL_MAX_TENSORS];
    int n_tensors;
    /* read-in (d -> D) or embedding (V, D), positions (P, D), final norm, read-out (O, D) */
    float *ri_w, *ri_b, *emb, *pos, *lnf_w, *lnf_b, *ro_w, *ro_b;
    float *g_ri_w, *g_ri_b, *g_emb, *g_pos, *g_lnf_w, *g_lnf_b, *g_ro_w, *g_ro_b;
    block *blocks;
    /* activations, valid for the last forward of (B, T) */
    int cap_B, cap_T, B, T;
    float *arena;
    size_t arena_floats;
    float **res;             /* n_blocks + 1 residual streams (B, T, D) */
    float *lnf_out, *lnf_mean, *lnf_rstd; /* (B,T,D), (B,T), (B,T) */
    float *out;              /* (B, T, O) predictions of the last forward */
    const float *last_x;     /* the input of the last forward (not owned) */
    const int *last_tok;
    /* backward scratch */
    float *dres, *dln, *dout_scratch;
    float *d_big1, *d_big2, *d_e[5];
    float *scan_scratch;     /* core/scan.h's, when there is a Mamba block */
    float *delta_scratch;    /* core/delta.h's, when there is a Mamba block */
    float *att_scratch;      /* core/attention.h's, when there is an attention block */
    size_t w1, w2;           /* floats per token of d_big1 and d_big2 */
    int nthreads;            /* OpenMP threads the scratch was sized for */
    /* Data-parallel training over sequences (model_shard.c): with more than
     * one thread a batch's forward and backward run as shards of whole
     * sequences, which the threads claim as they come free, each through a
     * view of the model. Shard 0 is the model itself; shards[k - 1] is the
     * view of shard k. */
    int nshards;                /* shards reserved (3 per thread, 1: none) */
    int shard_cap;              /* sequences a shard's own scratch holds */
    int last_shards;            /* shards the last forward ran in; the backward runs the same */
    struct model_shard *shards; /* nshards - 1 views, one allocation */
} model;

/* ---- specs ---------------------------------------------------------------- */
/* Defaults for an architecture name (d_model 64, n_layer 4, n_head 4,
 * n_dims 5, n_out 1, d_state 16, d_conv 4, expand 2, positions 256 rows for
 * transformer and hybrid). Unknown name -> ICL_ERR_ARG listing the names. */
icl_status model_spec_default(model_spec *s, const char *arch);
/* Set a numeric field by name ("d_model", "n_layer", ...); unknown key or
 * out-of-range value -> ICL_ERR_ARG naming it. Rebuilds the block list of a
 * named architecture when n_layer changes. */
icl_status model_spec_set(model_spec *s, const char *key, double value);
icl_status model_spec_set_blocks(model_spec *s, const block_kind *kinds, int n);
icl_status model_spec_validate(const model_spec *s);
const char *block_kind_name(block_kind k);
int block_kind_from_name(const char *name); /* -1 if unknown */
const char *const *model_arch_names(int *n);
/* JSON object of the spec (for checkpoints); parse it back. */
int model_spec_to_json(const model_spec *s, char *buf, size_t n);
icl_status model_spec_from_json(model_spec *s, const char *json);
/* Bytes of parameters (x4 with grads and Adam) and of activations at (B, T). */
size_t model_param_count(const model_spec *s);
size_t model_activation_bytes(const model_spec *s, int B, int T);

/* ---- life cycle ---------------------------------------------------------- */
icl_status model_create(model **out, const model_spec *spec); /* allocates and initialises */
void model_free(model *m);
/* Re-draw all parameters from spec.seed (SPEC.md 3 and 6 initialisation). */
void model_init_params(model *m);
/* Allocate activations for up to (B, T); cheap if already large enough. */
icl_status model_reserve(model *m, int B, int T);

/* ---- compute ------------------------------------------------------------- */
/* x (B, T, d) for continuous read-in, or tok (B, T) for the embedding. */
icl_status model_forward(model *m, const float *x, const int *tok, int B, int T);
/* dout (B, T, O) = dL/dout; gradients ACCUMULATE into m->grads. Uses the
 * activations of the last forward. */
icl_status model_backward(model *m, const float *dout);
void model_zero_grad(model *m);

/* ---- probes (for the last forward) --------------------------------------- */
/* Attention probabilities of block `blk` (must be attn), head h, prompt b:
 * dst (T, T). */
icl_status model_attention(const model *m, int blk, int head, int b, float *dst);
/* SSM states of Mamba block `blk` for prompt b: dst (T, E, N). */
icl_status model_ssm_states(const model *m, int blk, int b, float *dst);
/* Saved per-token tensors of a Mamba block for prompt b: delta (T, E),
 * B and C (T, N). Any of the outputs may be NULL. */
icl_status model_ssm_params(const model *m, int blk, int b, float *delta, float *Bm, float *Cm);

/* L2 norm of the gradient of each block (n_blocks + 1 entries: the last is
 * read-in, positions, final norm and read-out together). */
void model_grad_norms(const model *m, double *norms);
/* Parameter count of block i (or of the rest, for i = n_blocks). */
size_t model_block_params(const model *m, int i);
int model_describe(const model *m, char *buf, size_t n);
const param_tensor *model_find_tensor(const model *m, const char *name);

#endif
