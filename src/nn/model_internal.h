/*
 * model_internal.h - what the model's pieces share and nobody else needs:
 * the per-block parameter views, the saved activations, and the
 * forward/backward of each block kind. Not a public API.
 *
 * Every block is pre-norm residual: res_out = res_in + mixer(LN(res_in)).
 * A block's forward reads res_in (B,T,D) and writes res_out (B,T,D);
 * its backward reads dres (B,T,D) = dL/dres_out, ADDS the gradients of its
 * parameters, and ADDS its contribution to dres in place, so that on return
 * dres = dL/dres_in (the residual path carries dres through unchanged).
 */
#ifndef ICL_MODEL_INTERNAL_H
#define ICL_MODEL_INTERNAL_H

#include "nn/model.h"

/* Parameter slots per block kind, in storage order (names in model.c). */
enum { AT_LN_W, AT_LN_B, AT_QKV_W, AT_QKV_B, AT_PROJ_W, AT_PROJ_B, AT_COUNT };
enum { ML_LN_W, ML_LN_B, ML_FC_W, ML_FC_B, ML_PROJ_W, ML_PROJ_B, ML_COUNT };
enum { MB_LN_W, MB_LN_B, MB_IN_W, MB_CONV_W, MB_CONV_B, MB_XPROJ_W, MB_DT_W, MB_DT_B, MB_A_LOG, MB_D, MB_OUT_W,
       MB_COUNT };
enum { S4_LN_W, S4_LN_B, S4_IN_W, S4_CONV_W, S4_CONV_B, S4_LOG_DT, S4_LOG_A_RE, S4_A_IM, S4_C, S4_D, S4_OUT_W,
       S4_COUNT };
#define BLOCK_MAX_PARAMS 11

struct block {
    block_kind kind;
    int n_param;
    float *p[BLOCK_MAX_PARAMS]; /* parameter views into m->params */
    float *g[BLOCK_MAX_PARAMS]; /* the same tensors in m->grads */
    size_t param_begin, param_end; /* this block's range in the flat block */
    /* saved activations, for the reserved (cap_B, cap_T); shapes for (B, T).
     * Each is sliced per sequence for the model's shards: a new one needs its
     * line in model_shard.c's bind (test_model's shard tests catch a miss). */
    float *ln_out;   /* (B,T,D)  LayerNorm output = the mixer's input u       */
    float *ln_mean;  /* (B,T)                                                  */
    float *ln_rstd;  /* (B,T)                                                  */
    float *qkv;      /* attn (B,T,3D)                                          */
    float *att;      /* attn (B,NH,T,T) softmax probabilities                  */
    float *atty;     /* attn (B,T,D) attention output before c_proj            */
    float *fc;       /* mlp (B,T,4D) pre-GELU; after the forward GELU'(fc)     */
    float *fcg;      /* mlp (B,T,4D) GELU(fc)                                  */
    float *xz;       /* mamba, s4mamba (B,T,2E): [x | z] = u W_in^T; mamba's    */
                     /* forward leaves SiLU(z) in z's place                      */
    float *xc;       /* (B,T,E) SiLU'(conv1d(x)), kept for the backward         */
    float *xs;       /* (B,T,E) SiLU(xc), the SSM input                         */
    float *dbc;      /* mamba (B,T,R+2N): [delta_low | B | C] = xs W_x^T        */
    float *dt_pre;   /* mamba (B,T,E) W_dt delta_low + b_dt                     */
    float *delta;    /* mamba (B,T,E) softplus(dt_pre)                          */
    float *hck;      /* mamba (B,ceil(T/L)-1,N,E) scan checkpoints (core/scan.h) */
    float *kern;     /* s4mamba (T,E) the S4D convolution kernel, formed once per
                      * forward by model_forward (shard views share it)          */
    double *dkern;   /* s4mamba (T,E) its gradient over this shard's sequences;
                      * model_backward turns the shards' sum into the kernel
                      * parameters' gradients (one kernel backward per step)    */
    float *y;        /* (B,T,E) SSM output; mamba's forward leaves y SiLU'(z)   */
    float *yg;       /* (B,T,E) gated: y * SiLU(z) (mamba) or y * z (s4mamba)   */
};

/* The scratch gradients a backward pass may use (owned by the model). */
typedef struct {
    float *dln;   /* (B,T,D)   dL/d(LN output)                      */
    float *d1;    /* (B,T,W1)  W1 = max(3D, 4D, 2E): dqkv, dfc, dxz  */
    float *d2;    /* (B,T,W2)  W2 = max(D, 4D, R+2N): datty, dfcg, ddbc */
    float *e[5];  /* (B,T,E)   mamba: dxc, dxs, ddelta, dy, dyg; s4: dxc, dxs, -, dy, dyg */
} block_scratch;

/* One shard's view of the model (model_shard.c): a copy of the model struct
 * whose activation and scratch pointers address sequences [b0, b0 + nb) of
 * the batch and whose gradient pointers address the shard's own gradient
 * block, added into m->grads after the backward. */
typedef struct model_shard {
    model v;       /* v.grads, v.scan_scratch, v.delta_scratch and v.att_scratch
                    * are the shard's own, carved by carve_all */
    block *blocks; /* v.blocks (n_blocks); an S4-Mamba block's dkern is the shard's own */
    float **res;   /* v.res (n_blocks + 1) */
    int b0, nb;    /* its sequences in the last bind */
} model_shard;

/* Bytes of the shard views model_reserve allocates for nthreads (model_mem.h counts them). */
size_t model_shard_table_bytes(const model_spec *s, int nthreads);
/* Points each view's tables into the one allocation `table` (nshards - 1 views). */
void model_shard_table_init(model *m, void *table);
/* Copies the model into each view (after the arena is carved). */
void model_shard_views_init(model *m);
/* Shards a model reserved for nthreads threads has room for; layouts use
 * at most MODEL_SHARD_THREADS_MAX threads, so at most MODEL_SHARDS_MAX
 * shards (a bound for the callers' start arrays). */
#define MODEL_SHARD_THREADS_MAX 256
#define MODEL_SHARDS_MAX (3 * MODEL_SHARD_THREADS_MAX)
int model_shard_max(int nthreads);
/* The shards of B sequences on nt threads: shard k is sequences [start[k],
 * start[k + 1]); returns their count ns (<= model_shard_max(nt)), start
 * needs ns + 1 entries. */
int model_shard_layout(int B, int nt, int *start);
/* The layout for a batch of B sequences now (1: run unsharded). */
int model_shard_plan(const model *m, int B, int *start);
/* Threads for a region of ns shards: the pool's, at most ns. */
int model_shard_threads(int ns);
/* Forward and backward of the shards of `start` on nt threads; each thread
 * claims the next shard when it is free. The results do not depend on nt
 * or on which thread ran which shard. model_forward forms the S4D kernels
 * before (model_s4_kernels_forward) and model_backward takes the shards'
 * dK to their parameters after (model_s4_kernels_backward). */
void model_shard_forward(model *m, const float *x, const int *tok, int T, const int *start, int ns, int nt);
void model_shard_backward(model *m, const float *dout, int ns, int nt);
/* The forward and backward of sequences [0, B) of a model or a view
 * (model.c): what model_forward/model_backward run after their checks. */
void model_rows_forward(model *v, const float *x, const int *tok, int B, int T);
/* The S4D kernel of every S4-Mamba block from its parameters, before the
 * rows' forward; after the rows' backward, the kernel parameters' gradients
 * from the ns shards' dkern (model.c). */
void model_s4_kernels_forward(model *m, int T);
void model_s4_kernels_backward(model *m, int ns);
void model_rows_backward(model *v, const float *dout, int B, int T);

void attn_block_forward(const model *m, block *bl, float *res_out, const float *res_in, int B, int T);
void attn_block_backward(const model *m, block *bl, float *dres, const float *res_in, const block_scratch *s,
                         int B, int T);
void mlp_block_forward(const model *m, block *bl, float *res_out, const float *res_in, int B, int T);
void mlp_block_backward(const model *m, block *bl, float *dres, const float *res_in, const block_scratch *s,
                        int B, int T);
void mamba_block_forward(const model *m, block *bl, float *res_out, const float *res_in, int B, int T);
void mamba_block_backward(const model *m, block *bl, float *dres, const float *res_in, const block_scratch *s,
                          int B, int T);
void s4mamba_block_forward(const model *m, block *bl, float *res_out, const float *res_in, int B, int T);
void s4mamba_block_backward(const model *m, block *bl, float *dres, const float *res_in, const block_scratch *s,
                            int B, int T);

/* Small shared helpers (model.c). */
/* out (rows, cols) = inp (rows, in) W^T (+ b), W (cols, in): a Linear. */
void linear_forward(float *out, const float *inp, const float *w, const float *b, int rows, int in, int cols);
/* out = res + inp W^T (+ b): a Linear onto the residual stream res (rows,
 * cols), which must not overlap out. */
void linear_forward_residual(float *out, const float *inp, const float *w, const float *b, const float *res,
                             int rows, int in, int cols);
/* dinp (=, overwritten; may be NULL), dw (+=), db (+=, may be NULL) of a
 * Linear. dinp is written, not accumulated: every caller wants the fresh
 * gradient, and the GEMM writing it (beta 0) saves zeroing it first. */
void linear_backward(float *dinp, float *dw, float *db, const float *dout, const float *inp, const float *w,
                     int rows, int in, int cols);
/* db[j] += sum_i d[i, j] for d (rows, cols) with row stride ld. */
void colsum_accumulate(float *db, const float *d, int rows, int cols, int ld);

#endif
