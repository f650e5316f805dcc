/*
 * scan.c - the selective scan (S6) of Mamba on the CPU, forward and backward
 * (SPEC.md 6.1 steps 5-8; the contract and the maths are in scan.h).
 *
 * This is the hot kernel of Mamba training. What it does:
 *   - forward: one pass over t per sequence, the state h (N, E) in per-thread
 *     scratch, y written densely. It saves the state at the end of every
 *     chunk of L steps (the checkpoints hck, (B, ceil(T/L) - 1, N, E)):
 *     memory O(B T E N / L), a few MB per layer.
 *   - backward: chunk by chunk from the last, recompute the chunk's states
 *     AND the decays a = exp(delta A) from its checkpoint into per-thread
 *     scratch small enough to stay in L2 (2 L N E floats <= 512 KiB), then
 *     run the adjoint recurrence backwards through the chunk with those a.
 *     One exp per (t, c, n) in the backward instead of two (recompute the
 *     whole sequence's states, then a again in the adjoint step): storing a
 *     for the whole sequence instead was no faster (2 T N E floats spill L2),
 *     the chunks are what make it pay: a Mamba training step 1.08x (d_model
 *     64, 4 blocks, 41 tokens, batch 64, one thread: 86 -> 80 ms). Without
 *     checkpoints (hck NULL) the backward makes them itself per sequence
 *     (one more exp pass).
 * What it is not: the input projection, conv1d, dt_proj/softplus and the SiLU
 * gate around it (the Mamba block does those), nor a chunked/parallel-in-time
 * scan: with B sequences and small T, splitting over b is enough.
 *
 * Layout choices, all for speed:
 *   - Channel-major: the state of one sequence is h (N, E), and every inner
 *     loop runs along the E channels for one state n (`omp simd`, E = 128 at
 *     d_model 64: eight AVX-512 registers). y = sum_n C[n] h[n, :] then
 *     accumulates along channels too, so the forward has no horizontal sum
 *     at all, and the backward only two per (t, n) (dB_t[n], dC_t[n]). The
 *     first version ran the N = 16 states of one channel in one register and
 *     paid a horizontal sum per (t, c) for y and three in the backward:
 *     this layout made a Mamba training step 1.48x faster (d_model 64, 4
 *     blocks, 81 tokens, batch 64, one thread: 4.33 -> 6.40 steps/s).
 *   - Register-blocked where the CPU has AVX-512 and N = 16 (Mamba's), E a
 *     multiple of 16: the same channel-major maths, but one vector of 16
 *     channels runs through time with its 16 states (forward) or adjoints
 *     (backward) in 16 registers. The channel-major loops stream h and g
 *     through (N, E) arrays that spill L1 at E = 128; blocked, the scan ran
 *     1.4x (forward) and 2.1x (backward) faster. See the section below;
 *     other shapes, and targets without AVX-512, run the channel-major code.
 *   - exp(delta A) is computed as 2^(delta * A log2 e) by fm_exp2f_nonpos
 *     (core/fastmath.h: a polynomial that vectorises; glibc's scalar expf
 *     was about 60% of the instructions, and its vector variant needs
 *     -ffast-math, which the project forbids). In base 2 the range reduction
 *     is exact and nearly free: 15 vector operations per exp instead of
 *     fm_expf's 24, and the exp is still most of the scan (one per (t, c, n)
 *     in the forward, one in the backward's chunk recompute). The _nonpos
 *     variant drops the clamps and selects that delta A <= 0 never needs
 *     (forward 1.12x, backward 1.03x at d_model 64, 41 tokens). Rounding
 *     A log2 e adds one rounding to the exponent, the same size as the
 *     rounding of delta * A itself.
 *   - A = -exp(A_log) and A log2 e are computed once per call, transposed
 *     (N, E), into shared scratch.
 *   - No allocation: the caller provides scan_scratch_floats(...) floats.
 *   - Threads index scratch by omp_get_thread_num(). Called from inside an
 *     enclosing parallel region the loop runs on the calling thread alone
 *     (slot 0), so concurrent callers each pass their own scratch, sized
 *     for one thread (the model's shards do, nn/model_shard.c).
 *
 * Scratch layout (floats), nthreads = the caller's omp_get_max_threads():
 *   AT, A2T, Z (N, E) each               shared, filled before the parallel loop
 *                                        (Z: zeros, the state before t = 0)
 *   forward : per thread  h (N, E) + d*u (E) + y accumulator (E)
 *   backward: partials    B x [dA (N, E) + dD (E)]   one slot per SEQUENCE
 *             per thread  chunk states and decays (L, N, E) each, adjoint g
 *                         (N, E), own checkpoints (ceil(T/L) - 1, N, E) for
 *                         hck NULL, d*u, sum_n g B, ddelta sum (E each);
 *                         blocked: g (N, E), own checkpoints, then decays,
 *                         states, dB and dC lanes (L, 16, 16) each
 * Determinism: every output row of y, du, ddelta, dBm, dCm belongs to one
 * sequence and is computed by one thread in a fixed order. The parameter
 * gradients dA_log and dD are first accumulated per sequence into their own
 * slot, and after the parallel loop the slots are summed in sequence order
 * b = 0..B-1 (parallel over channels, each element summed serially). So
 * every result is bitwise independent of the number of threads.
 */
#include "scan.h"
#include "core/prof.h"
#include "core/parallel.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/fastmath.h"

/* The per-sequence bodies are instantiated twice, for N == 16 (Mamba's
 * d_state, a constant trip count: the n loops unroll into four SSE
 * operations) and for any other N; this forces the inlining that makes the
 * constant visible. */
#if defined(__GNUC__)
#define SCAN_INLINE static inline __attribute__((always_inline))
#else
#define SCAN_INLINE static inline
#endif

static int max_chunk = 32;
static int blocked_off = 0;

void scan_set_max_chunk(int L) { max_chunk = L > 0 ? L : 32; }
void scan_set_channel_major(int on) { blocked_off = on; }

int scan_chunk_len(int E, int N) {
    /* the chunk's states and decays, 2 L N E floats, within 512 KiB (half of
     * this machine's L2, which also holds g, dA and the streams of u, delta,
     * dy); at most 32 steps, which bounds the checkpoints' memory */
    if (E <= 0 || N <= 0) return 1;
    size_t L = (size_t)65536 / ((size_t)N * E);
    return L < 1 ? 1 : L > (size_t)max_chunk ? max_chunk : (int)L;
}

/* Checkpoints per sequence: the states at the ends of all chunks but the last. */
static int ckpt_count(int T, int L) { return (T - 1) / L; }

size_t scan_ckpt_floats(int B, int T, int E, int N) {
    if (B <= 0 || T <= 0 || E <= 0 || N <= 0) return 0;
    return (size_t)B * ckpt_count(T, scan_chunk_len(E, N)) * N * E;
}

/* Floats of per-thread scratch for the forward and the backward. */
static size_t fwd_thread_floats(int E, int N) { return (size_t)N * E + 2 * (size_t)E; }
static size_t bwd_thread_floats(int T, int E, int N) {
    size_t NE = (size_t)N * E, L = (size_t)scan_chunk_len(E, N);
    /* channel-major: chunk states and decays (L, N, E) each, 3 E-vectors;
     * blocked: decays, states, dB and dC lanes (L, 16, 16) each, + alignment */
    size_t chan = 2 * L * NE + 3 * (size_t)E, blk = 4 * L * 16 * 16 + 16;
    return (chan > blk ? chan : blk) + NE + (size_t)ckpt_count(T, (int)L) * NE;
}

size_t scan_scratch_floats(int B, int T, int E, int N, int nthreads) {
    if (B <= 0 || T <= 0 || E <= 0 || N <= 0) return 0;
    if (nthreads < 1) nthreads = 1;
    size_t NE = (size_t)N * E;
    size_t fwd = 3 * NE + (size_t)nthreads * fwd_thread_floats(E, N);
    size_t bwd = 3 * NE + (size_t)B * (NE + (size_t)E) + (size_t)nthreads * bwd_thread_floats(T, E, N);
    return fwd > bwd ? fwd : bwd;
}

#define SCAN_LOG2E 1.44269504088896341f

/* Where (n, c) of an (N, E) array of the scan's lives: channel-major
 * n E + c, or for the register-blocked kernels block-major (E / 16, N, 16),
 * so that a block's 16 rows are contiguous and each is at a constant offset
 * from the block's base (with a stride of E the kernels ran out of registers
 * for the 16 row addresses). Used for A, A log2 e, the adjoint g and the dA
 * partials; the checkpoints stay (N, E). */
static size_t nc_index(int n, int c, int E, int N, int blk) {
    return blk ? (size_t)(c & ~15) * N + (size_t)n * 16 + (c & 15) : (size_t)n * E + c;
}

/* AT[n,c] = A[c,n] = -exp(A_log[c,n]) and A2T = AT log2 e (exp(delta A) =
 * 2^(delta A2)): computed once per call, stored transposed (nc_index) so
 * that the kernels read them along channels. scan_states forms the same
 * values with the same expressions. */
static void fill_AT(float *AT, float *A2T, const float *A_log, int E, int N, int blk) {
    for (int c = 0; c < E; c++)
        for (int n = 0; n < N; n++) {
            size_t i = nc_index(n, c, E, N, blk);
            AT[i] = -expf(A_log[(size_t)c * N + n]);
            A2T[i] = AT[i] * SCAN_LOG2E;
        }
}

/* One time step of one channel in the (E, N) layout of the probe:
 * a[n] = exp(d A[n]) = 2^(d A2[n]), then h[n] = a[n] h[n] + (d u) B[n]. The
 * same expressions, operand for operand, as the channel-major kernels below,
 * so scan_states gives bitwise the states the forward and backward use. */
static inline void step_channel(float *restrict h, float *restrict a, const float *restrict A2c,
                                const float *restrict Bt, float d, float u, int N) {
    for (int n = 0; n < N; n++) a[n] = fm_exp2f_nonpos(d * A2c[n]);
    float du = d * u;
    for (int n = 0; n < N; n++) h[n] = FM_FMA(a[n], h[n], du * Bt[n]);
}

/* States and decays of sequence b over the chunk t0 .. t0+len-1, from hp =
 * h_{t0-1}: hs[i] = h_{t0+i} and as[i] = a_{t0+i}, (len, N, E) each, with
 * a[n,c] = exp(d[c] A[c,n]) = 2^(d[c] A2T[n,c]) and h[n,c] = a h_{t-1}[n,c]
 * + (d u)[c] B[n]: the forward's expressions, so the same bits. du: scratch
 * (E). */
SCAN_INLINE void chunk_states(float *restrict hs, float *restrict as, const float *hp, float *restrict du,
                              const float *u, const float *delta, const float *restrict A2T, const float *Bm,
                              int ldbc, int b, int T, int t0, int len, int E, int N) {
    size_t NE = (size_t)N * E;
    for (int i = 0; i < len; i++) {
        size_t row = (size_t)b * T + t0 + i;
        const float *restrict ut = u + row * E, *restrict dt = delta + row * E, *Bt = Bm + row * (size_t)ldbc;
        const float *hpi = i > 0 ? hs + (size_t)(i - 1) * NE : hp;
        float *ht = hs + (size_t)i * NE, *at = as + (size_t)i * NE;
#pragma omp simd
        for (int c = 0; c < E; c++) du[c] = dt[c] * ut[c];
        for (int n = 0; n < N; n++) {
            const float *restrict A2n = A2T + (size_t)n * E, *restrict hpn = hpi + (size_t)n * E;
            float *restrict hn = ht + (size_t)n * E, *restrict an = at + (size_t)n * E;
            float Bn = Bt[n];
#pragma omp simd
            for (int c = 0; c < E; c++) {
                float a = fm_exp2f_nonpos(dt[c] * A2n[c]);
                an[c] = a;
                hn[c] = FM_FMA(a, hpn[c], du[c] * Bn);
            }
        }
    }
}

/* ------------------------------------------------------------------------ */
/* forward, channel-major                                                    */
/* ------------------------------------------------------------------------ */

/* Sequence b; ws: per-thread scratch, state h (N, E), then d*u (E) and the
 * output accumulator (E). hck: this sequence's checkpoints (NULL: none). */
SCAN_INLINE void forward_seq(float *y, float *hck, float *ws, const float *u, const float *delta,
                             const float *A2T, const float *Bm, const float *Cm, int ldbc, const float *D, int L,
                             int b, int T, int E, int N) {
    size_t NE = (size_t)N * E;
    float *restrict h = ws, *restrict du = h + NE, *restrict acc = du + E;
    memset(h, 0, NE * sizeof(float));
    for (int t = 0; t < T; t++) {
        size_t row = (size_t)b * T + t;
        const float *restrict ut = u + row * E, *restrict dt = delta + row * E;
        const float *Bt = Bm + row * (size_t)ldbc, *Ct = Cm + row * (size_t)ldbc;
        float *restrict yt = y + row * E;
#pragma omp simd
        for (int c = 0; c < E; c++) {
            du[c] = dt[c] * ut[c];
            acc[c] = 0.0f;
        }
        /* h = a h + du B (in place) and y += C[n] h, one state n at a time:
         * every operation runs along the E channels, no horizontal sums */
        for (int n = 0; n < N; n++) {
            const float *restrict A2n = A2T + (size_t)n * E;
            float *restrict hn = h + (size_t)n * E;
            float Bn = Bt[n], Cn = Ct[n];
#pragma omp simd
            for (int c = 0; c < E; c++) {
                float a = fm_exp2f_nonpos(dt[c] * A2n[c]);
                hn[c] = FM_FMA(a, hn[c], du[c] * Bn);
                acc[c] = FM_FMA(Cn, hn[c], acc[c]);
            }
        }
#pragma omp simd
        for (int c = 0; c < E; c++) yt[c] = acc[c] + D[c] * ut[c];
        if (hck && (t + 1) % L == 0 && t + 1 < T) /* the end of a chunk, not the last: checkpoint */
            memcpy(hck + (size_t)((t + 1) / L - 1) * NE, h, NE * sizeof(float));
    }
}

/* ------------------------------------------------------------------------ */
/* backward, channel-major                                                   */
/* ------------------------------------------------------------------------ */
/*
 * With g_t = dL/dh_t (the total adjoint of the state at t):
 *   g_t        = C_t dy_t + a_{t+1} g_{t+1},        a_t = exp(delta_t A)
 *   dC_t[n]    = sum_c dy_t[c] h_t[c,n]
 *   dD[c]     += sum_t dy_t[c] u_t[c]
 *   du_t[c]    = D[c] dy_t[c] + delta_t[c] sum_n g_t[c,n] B_t[n]
 *   ddelta_t   = sum_n g_t[c,n] (A[c,n] a_t[c,n] h_{t-1}[c,n] + B_t[n] u_t[c])
 *   dA[c,n]   += sum_t g_t[c,n] delta_t[c] a_t[c,n] h_{t-1}[c,n]
 *   dB_t[n]    = sum_c g_t[c,n] delta_t[c] u_t[c]
 *   dA_log     = dA * A                              (A = -exp(A_log))
 * The carry a_t g_t for step t-1 is formed at step t, with a_t from the
 * chunk recompute (so each (t, c, n) costs one exp, as in the forward).
 * Channel-major like the forward: the sums over n (du, ddelta) accumulate
 * along channels in E-vectors; only dB_t[n] and dC_t[n] are sums over c,
 * one horizontal sum each per (t, n).
 */
/* One step t of the adjoint recurrence of sequence b: g (N, E) holds
 * a_{t+1} g_{t+1} on entry and a_t g_t on exit; ht = h_t, hp = h_{t-1} (NULL
 * at t = 0, where h_{-1} = 0: no dA or A-part of ddelta, and g is not needed
 * after), at = a_t (all (N, E)). dub, gB, gdd: scratch (E each). */
SCAN_INLINE void adjoint_step(float *du, float *ddelta, float *restrict dAp, float *restrict dDp, float *dBm,
                              float *dCm, float *restrict g, float *restrict dub, float *restrict gB,
                              float *restrict gdd, const float *ht, const float *hp, const float *at,
                              const float *dy, const float *u, const float *delta, const float *restrict AT,
                              const float *Bm, const float *Cm, int ldbc, const float *D, int b, int T, int t,
                              int E, int N) {
    size_t row = (size_t)b * T + t;
    const float *restrict ut = u + row * E, *restrict dt = delta + row * E, *restrict dyt = dy + row * E;
    const float *Bt = Bm + row * (size_t)ldbc, *Ct = Cm + row * (size_t)ldbc;
    float *dBt = dBm + row * (size_t)ldbc, *dCt = dCm + row * (size_t)ldbc;
#pragma omp simd
    for (int c = 0; c < E; c++) {
        dub[c] = dt[c] * ut[c];
        gB[c] = 0.0f;
        gdd[c] = 0.0f;
    }
    for (int n = 0; n < N; n++) {
        size_t o = (size_t)n * E;
        const float *restrict An = AT + o, *restrict hn = ht + o;
        float *restrict gn = g + o, *restrict dAn = dAp + o;
        float Bn = Bt[n], Cn = Ct[n], dB = 0.0f, dC = 0.0f;
        if (hp) {
            const float *restrict hpn = hp + o, *restrict an = at + o;
#pragma omp simd reduction(+ : dB, dC)
            for (int c = 0; c < E; c++) {
                float a = an[c];
                float gc = FM_FMA(Cn, dyt[c], gn[c]); /* now g_t */
                float gah = gc * a * hpn[c];
                dC = FM_FMA(dyt[c], hn[c], dC);
                gB[c] = FM_FMA(gc, Bn, gB[c]);
                gdd[c] = FM_FMA(An[c], gah, gdd[c]);
                dAn[c] = FM_FMA(dt[c], gah, dAn[c]);
                dB = FM_FMA(gc, dub[c], dB);
                gn[c] = gc * a; /* carry a_t g_t to step t-1 */
            }
        } else {
#pragma omp simd reduction(+ : dB, dC)
            for (int c = 0; c < E; c++) {
                float gc = FM_FMA(Cn, dyt[c], gn[c]);
                dC = FM_FMA(dyt[c], hn[c], dC);
                gB[c] = FM_FMA(gc, Bn, gB[c]);
                dB = FM_FMA(gc, dub[c], dB);
            }
        }
        dBt[n] = dB;
        dCt[n] = dC;
    }
    /* sum_n g B u is the B-bar part of ddelta; gB serves both */
    float *ddt = ddelta + row * E, *dut = du + row * E;
#pragma omp simd
    for (int c = 0; c < E; c++) {
        ddt[c] = gdd[c] + gB[c] * ut[c];
        dut[c] = D[c] * dyt[c] + dt[c] * gB[c];
        dDp[c] += dyt[c] * ut[c];
    }
}

/* Sequence b, chunk by chunk from the last. hck: its checkpoints (the
 * forward's), or NULL: then they are made here first, into ws. ws:
 * per-thread scratch, chunk states hs and decays as (L, N, E) each, adjoint
 * g (N, E), own checkpoints (nck, N, E), then d*u, sum_n g B and the ddelta
 * sum (E each). Z: zeros (N, E), the state before t = 0. dAp (N, E) and dDp
 * (E): this sequence's own partials of dA and dD. */
SCAN_INLINE void backward_seq(float *du, float *ddelta, float *dAp, float *dDp, float *dBm, float *dCm,
                              float *ws, const float *hck, const float *dy, const float *u, const float *delta,
                              const float *AT, const float *A2T, const float *Z, const float *Bm, const float *Cm,
                              int ldbc, const float *D, int L, int b, int T, int E, int N) {
    size_t NE = (size_t)N * E;
    const int nck = ckpt_count(T, L);
    float *hs = ws, *as = hs + (size_t)L * NE, *g = as + (size_t)L * NE, *own = g + NE;
    float *dub = own + (size_t)nck * NE, *gB = dub + E, *gdd = gB + E;
    memset(dAp, 0, NE * sizeof(float));
    memset(dDp, 0, (size_t)E * sizeof(float));
    memset(g, 0, NE * sizeof(float));
    if (!hck) { /* no checkpoints from the forward: the states at the chunk ends */
        for (int k = 0; k < nck; k++) {
            chunk_states(hs, as, k > 0 ? own + (size_t)(k - 1) * NE : Z, dub, u, delta, A2T, Bm, ldbc, b, T, k * L,
                         L, E, N);
            memcpy(own + (size_t)k * NE, hs + (size_t)(L - 1) * NE, NE * sizeof(float));
        }
        hck = own;
    }
    for (int k = nck; k >= 0; k--) {
        int t0 = k * L, len = T - t0 < L ? T - t0 : L;
        const float *hp0 = k > 0 ? hck + (size_t)(k - 1) * NE : Z;
        chunk_states(hs, as, hp0, dub, u, delta, A2T, Bm, ldbc, b, T, t0, len, E, N);
        for (int i = len - 1; i >= 0; i--) {
            int t = t0 + i;
            const float *hp = i > 0 ? hs + (size_t)(i - 1) * NE : t > 0 ? hp0 : NULL;
            adjoint_step(du, ddelta, dAp, dDp, dBm, dCm, g, dub, gB, gdd, hs + (size_t)i * NE, hp,
                         as + (size_t)i * NE, dy, u, delta, AT, Bm, Cm, ldbc, D, b, T, t, E, N);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* register-blocked kernels (AVX-512, N = 16, E % 16 == 0)                   */
/* ------------------------------------------------------------------------ */
/*
 * The same recurrences as the channel-major kernels, reordered so that one
 * block of 16 channels (one AVX-512 vector) runs through time with its 16
 * states, or in the backward its 16 adjoints g[n], held in 16 registers.
 * The channel-major loops keep h and g in (N, E) arrays: at E = 128 those
 * are 8 KiB each, and with the chunk's states, decays, dA and A the adjoint
 * step's working set (~48 KiB) spills this machine's 32 KiB L1, so each
 * (t, n, vector) cost eleven loads and four stores. Blocked, the adjoint
 * step loads a_t, h_{t-1}, A and dA and stores dA and the dB lanes; the
 * forward loads only A log2 e. A, A log2 e, g and the dA partials are
 * stored block-major (nc_index) and the n loops fully unrolled, so that
 * every row is a constant offset from one base pointer: with a stride of E,
 * the 16 row addresses spilled and the backward was 1.2x slower. Measured
 * on the kernel alone (B 32, T 40, E 128, one thread, pinned, 3 alternating
 * runs): forward 472-479 -> 331-333 us (1.4x), backward 1659-1706 ->
 * 791-810 us (2.1x).
 *
 * Every value is the channel-major expression, operand for operand
 * (fm_exp2f_nonpos_v16 is the scalar exp's bits), so y, du, ddelta, dA_log,
 * dD and the checkpoints are bit for bit the channel-major ones
 * (tests/core/test_scan.c checks this). dB_t[n] and dC_t[n] are sums over
 * all E channels: each block adds its 16 lanes into per-chunk vectors dBv,
 * dCv (L, N, 16), and those are summed across lanes once per (t, n) when
 * the chunk's blocks are done, in an order that differs from the compiler's
 * reduction (last-bit differences, covered by tolerance there).
 * dC_t[n] = sum_c dy_t h_t needs no adjoint, so it is taken in the state
 * recompute, where h_t is in a register.
 */
#if defined(FM_HAVE_V16)
#define SCAN_BLOCKED 1
enum { BLK_C = 16, BLK_N = 16 }; /* channels per block (one vector), states */

/* the n loops fully unrolled, so that h[n] and g[n] are registers */
#define BLK_UNROLL _Pragma("GCC unroll 16")

static inline __m512 v_at(const float *p) { return _mm512_loadu_ps(p); }
static inline __m512 v_bc(float x) { return _mm512_set1_ps(x); }

/* Forward of channels c0 .. c0+15 of sequence b over all T steps, h in
 * registers. Writes y (y NULL: no output, only the checkpoints: the
 * backward's own) and the checkpoints hck (NULL: none), both at their
 * (B, T, E) and (nck, N, E) places. */
static void blk_forward(float *y, float *hck, const float *u, const float *delta, const float *A2T, const float *Bm,
                        const float *Cm, int ldbc, const float *D, int L, int b, int T, int E, int c0) {
    size_t NE = (size_t)BLK_N * E;
    const float *A2b = A2T + (size_t)c0 * BLK_N; /* this block's (N, 16) */
    __m512 h[BLK_N];
    BLK_UNROLL
    for (int n = 0; n < BLK_N; n++) h[n] = _mm512_setzero_ps();
    for (int t = 0; t < T; t++) {
        size_t row = (size_t)b * T + t;
        __m512 dt = v_at(delta + row * E + c0), ut = v_at(u + row * E + c0);
        __m512 du = _mm512_mul_ps(dt, ut), acc = _mm512_setzero_ps();
        const float *Bt = Bm + row * (size_t)ldbc, *Ct = Cm + row * (size_t)ldbc;
        BLK_UNROLL
        for (int n = 0; n < BLK_N; n++) {
            __m512 a = fm_exp2f_nonpos_v16(_mm512_mul_ps(dt, v_at(A2b + n * BLK_C)));
            h[n] = _mm512_fmadd_ps(a, h[n], _mm512_mul_ps(du, v_bc(Bt[n])));
            if (y) acc = _mm512_fmadd_ps(v_bc(Ct[n]), h[n], acc);
        }
        if (y) _mm512_storeu_ps(y + row * E + c0, _mm512_add_ps(acc, _mm512_mul_ps(v_at(D + c0), ut)));
        if (hck && (t + 1) % L == 0 && t + 1 < T) { /* the end of a chunk, not the last */
            float *ck = hck + (size_t)((t + 1) / L - 1) * NE + c0;
            BLK_UNROLL
            for (int n = 0; n < BLK_N; n++) _mm512_storeu_ps(ck + (size_t)n * E, h[n]);
        }
    }
}

/* Channels c0 .. c0+15 of sequence b through the chunk t0 .. t0+len-1 from
 * the state hp ((N, E), this block's columns): stores a_t and h_{t-1} of
 * each step (as, hs: (len, N, 16)) and adds dy_t h_t into the dC lanes dCv
 * (len, N, 16) (the chunk's first block stores them). */
static void blk_states(float *restrict as, float *restrict hs, float *restrict dCv, const float *hp, const float *u,
                       const float *delta, const float *dy, const float *A2T, const float *Bm, int ldbc, int b,
                       int T, int t0, int len, int E, int c0, int first) {
    const float *A2b = A2T + (size_t)c0 * BLK_N;
    __m512 h[BLK_N];
    BLK_UNROLL
    for (int n = 0; n < BLK_N; n++) h[n] = v_at(hp + (size_t)n * E + c0);
    for (int i = 0; i < len; i++) {
        size_t row = (size_t)b * T + t0 + i, o = (size_t)i * BLK_N * BLK_C;
        __m512 dt = v_at(delta + row * E + c0), dyt = v_at(dy + row * E + c0);
        __m512 du = _mm512_mul_ps(dt, v_at(u + row * E + c0));
        const float *Bt = Bm + row * (size_t)ldbc;
        BLK_UNROLL
        for (int n = 0; n < BLK_N; n++, o += BLK_C) {
            __m512 a = fm_exp2f_nonpos_v16(_mm512_mul_ps(dt, v_at(A2b + n * BLK_C)));
            _mm512_store_ps(as + o, a);
            _mm512_store_ps(hs + o, h[n]);
            h[n] = _mm512_fmadd_ps(a, h[n], _mm512_mul_ps(du, v_bc(Bt[n])));
            __m512 dc = first ? _mm512_setzero_ps() : _mm512_load_ps(dCv + o);
            _mm512_store_ps(dCv + o, _mm512_fmadd_ps(dyt, h[n], dc));
        }
    }
}

/* The adjoint of channels c0 .. c0+15 back through the chunk (adjoint_step's
 * maths): g (N, E) in memory between chunks, in registers within one; dB
 * lanes into dBv (len, N, 16) (the chunk's first block stores them). */
static void blk_adjoint(float *du, float *ddelta, float *dAp, float *dDp, float *restrict dBv, float *g,
                        const float *restrict as, const float *restrict hs, const float *dy, const float *u,
                        const float *delta, const float *AT, const float *Bm, const float *Cm, int ldbc,
                        const float *D, int b, int T, int t0, int len, int E, int c0, int first) {
    float *gb = g + (size_t)c0 * BLK_N, *dAb = dAp + (size_t)c0 * BLK_N; /* this block's (N, 16) */
    const float *Ab = AT + (size_t)c0 * BLK_N;
    __m512 gr[BLK_N];
    BLK_UNROLL
    for (int n = 0; n < BLK_N; n++) gr[n] = v_at(gb + n * BLK_C);
    __m512 dD = v_at(dDp + c0);
    for (int i = len - 1; i >= 0; i--) {
        int t = t0 + i;
        size_t row = (size_t)b * T + t, o = (size_t)i * BLK_N * BLK_C;
        __m512 dt = v_at(delta + row * E + c0), ut = v_at(u + row * E + c0), dyt = v_at(dy + row * E + c0);
        __m512 dub = _mm512_mul_ps(dt, ut), gB = _mm512_setzero_ps(), gdd = _mm512_setzero_ps();
        const float *Bt = Bm + row * (size_t)ldbc, *Ct = Cm + row * (size_t)ldbc;
        BLK_UNROLL
        for (int n = 0; n < BLK_N; n++, o += BLK_C) {
            __m512 gc = _mm512_fmadd_ps(v_bc(Ct[n]), dyt, gr[n]); /* now g_t */
            gB = _mm512_fmadd_ps(gc, v_bc(Bt[n]), gB);
            __m512 db = first ? _mm512_setzero_ps() : _mm512_load_ps(dBv + o);
            _mm512_store_ps(dBv + o, _mm512_fmadd_ps(gc, dub, db));
            if (t > 0) { /* h_{-1} = 0: no dA, no A-part of ddelta, no carry */
                __m512 ga = _mm512_mul_ps(gc, _mm512_load_ps(as + o)); /* carry a_t g_t to step t-1 */
                __m512 gah = _mm512_mul_ps(ga, _mm512_load_ps(hs + o));
                float *dAn = dAb + n * BLK_C;
                gdd = _mm512_fmadd_ps(v_at(Ab + n * BLK_C), gah, gdd);
                _mm512_storeu_ps(dAn, _mm512_fmadd_ps(dt, gah, v_at(dAn)));
                gr[n] = ga;
            }
        }
        float *ddt = ddelta + row * E + c0, *dut = du + row * E + c0;
        _mm512_storeu_ps(ddt, _mm512_add_ps(gdd, _mm512_mul_ps(gB, ut)));
        _mm512_storeu_ps(dut, _mm512_add_ps(_mm512_mul_ps(v_at(D + c0), dyt), _mm512_mul_ps(dt, gB)));
        dD = _mm512_add_ps(dD, _mm512_mul_ps(dyt, ut));
    }
    _mm512_storeu_ps(dDp + c0, dD);
    BLK_UNROLL
    for (int n = 0; n < BLK_N; n++) _mm512_storeu_ps(gb + n * BLK_C, gr[n]);
}

/* backward_seq for N = 16 and E % 16 == 0, chunk by chunk from the last and
 * block by block within a chunk. ws: g (N, E), own checkpoints (nck, N, E),
 * then as, hs, dBv, dCv (L, N, 16) each, 64-byte aligned. */
static void backward_seq_blk(float *du, float *ddelta, float *dAp, float *dDp, float *dBm, float *dCm, float *ws,
                             const float *hck, const float *dy, const float *u, const float *delta, const float *AT,
                             const float *A2T, const float *Z, const float *Bm, const float *Cm, int ldbc,
                             const float *D, int L, int b, int T, int E) {
    size_t NE = (size_t)BLK_N * E, LV = (size_t)L * BLK_N * BLK_C;
    const int nck = ckpt_count(T, L);
    float *g = ws, *own = g + NE, *as = own + (size_t)nck * NE;
    as += (64 - ((uintptr_t)as & 63)) / sizeof(float) & 15; /* to 64 bytes: whole-vector loads and stores */
    float *hs = as + LV, *dBv = hs + LV, *dCv = dBv + LV;
    memset(dAp, 0, NE * sizeof(float));
    memset(dDp, 0, (size_t)E * sizeof(float));
    memset(g, 0, NE * sizeof(float));
    if (!hck) { /* no checkpoints from the forward: the states at the chunk ends */
        for (int c0 = 0; c0 < E; c0 += BLK_C) blk_forward(NULL, own, u, delta, A2T, Bm, Cm, ldbc, D, L, b, T, E, c0);
        hck = own;
    }
    for (int k = nck; k >= 0; k--) {
        int t0 = k * L, len = T - t0 < L ? T - t0 : L;
        const float *hp0 = k > 0 ? hck + (size_t)(k - 1) * NE : Z;
        for (int c0 = 0; c0 < E; c0 += BLK_C) {
            blk_states(as, hs, dCv, hp0, u, delta, dy, A2T, Bm, ldbc, b, T, t0, len, E, c0, c0 == 0);
            blk_adjoint(du, ddelta, dAp, dDp, dBv, g, as, hs, dy, u, delta, AT, Bm, Cm, ldbc, D, b, T, t0, len, E, c0,
                        c0 == 0);
        }
        for (int i = 0; i < len; i++) {
            size_t row = (size_t)b * T + t0 + i, o = (size_t)i * BLK_N * BLK_C;
            float *dBt = dBm + row * (size_t)ldbc, *dCt = dCm + row * (size_t)ldbc;
            for (int n = 0; n < BLK_N; n++, o += BLK_C) {
                dBt[n] = _mm512_reduce_add_ps(_mm512_load_ps(dBv + o));
                dCt[n] = _mm512_reduce_add_ps(_mm512_load_ps(dCv + o));
            }
        }
    }
}
#endif

/* Whether the blocked kernels take this shape (and are compiled). */
static int blocked(int E, int N) {
#ifdef SCAN_BLOCKED
    return N == BLK_N && E % BLK_C == 0 && !blocked_off;
#else
    (void)E, (void)N;
    return 0;
#endif
}

int scan_blocked(int E, int N) { return blocked(E, N); }

/* ------------------------------------------------------------------------ */
/* entry points                                                              */
/* ------------------------------------------------------------------------ */

static void scan_forward_impl(float *y, float *hck, const float *u, const float *delta, const float *A_log,
                              const float *Bm, const float *Cm, int ldbc, const float *D, int B, int T, int E,
                              int N, float *scratch) {
    if (B <= 0 || T <= 0 || E <= 0 || N <= 0) return;
    size_t NE = (size_t)N * E;
    const int L = scan_chunk_len(E, N);
    const size_t ck_stride = (size_t)ckpt_count(T, L) * NE;
    float *AT = scratch, *A2T = AT + NE;
    const int blk = blocked(E, N);
    fill_AT(AT, A2T, A_log, E, N, blk);
    float *per_thread = A2T + 2 * NE; /* after Z, unused here */

#pragma omp parallel for schedule(static) if ((size_t)B * T * E * N >= PAR_MIN_WORK)
    for (int b = 0; b < B; b++) {
        float *ws = per_thread + (size_t)par_thread_id() * fwd_thread_floats(E, N);
        float *ck = hck ? hck + (size_t)b * ck_stride : NULL;
#ifdef SCAN_BLOCKED
        if (blk) {
            for (int c0 = 0; c0 < E; c0 += BLK_C) blk_forward(y, ck, u, delta, A2T, Bm, Cm, ldbc, D, L, b, T, E, c0);
            continue;
        }
#endif
        if (N == 16) forward_seq(y, ck, ws, u, delta, A2T, Bm, Cm, ldbc, D, L, b, T, E, 16);
        else forward_seq(y, ck, ws, u, delta, A2T, Bm, Cm, ldbc, D, L, b, T, E, N);
    }
}

void scan_forward(float *y, float *hck, const float *u, const float *delta, const float *A_log, const float *Bm,
                  const float *Cm, int ldbc, const float *D, int B, int T, int E, int N, float *scratch) {
    uint64_t t0 = prof_start();
    scan_forward_impl(y, hck, u, delta, A_log, Bm, Cm, ldbc, D, B, T, E, N, scratch);
    prof_stop(PROF_SCAN, t0);
}

static void scan_backward_impl(float *du, float *ddelta, float *dA_log, float *dBm, float *dCm, float *dD,
                               const float *dy, const float *hck, const float *u, const float *delta,
                               const float *A_log, const float *Bm, const float *Cm, int ldbc, const float *D, int B,
                               int T, int E, int N, float *scratch) {
    if (B <= 0 || T <= 0 || E <= 0 || N <= 0) return;
    size_t NE = (size_t)N * E;
    const int L = scan_chunk_len(E, N);
    const size_t ck_stride = (size_t)ckpt_count(T, L) * NE;
    float *AT = scratch, *A2T = AT + NE, *Z = A2T + NE;
    const int blk = blocked(E, N);
    fill_AT(AT, A2T, A_log, E, N, blk);
    memset(Z, 0, NE * sizeof(float));
    float *partials = Z + NE; /* B x [dA (N, E), dD (E)] */
    size_t part_stride = NE + (size_t)E;
    float *per_thread = partials + (size_t)B * part_stride;

#pragma omp parallel for schedule(static) if ((size_t)B * T * E * N >= PAR_MIN_WORK)
    for (int b = 0; b < B; b++) {
        float *ws = per_thread + (size_t)par_thread_id() * bwd_thread_floats(T, E, N);
        float *dAp = partials + (size_t)b * part_stride, *dDp = dAp + NE;
        const float *ck = hck ? hck + (size_t)b * ck_stride : NULL;
#ifdef SCAN_BLOCKED
        if (blk) {
            backward_seq_blk(du, ddelta, dAp, dDp, dBm, dCm, ws, ck, dy, u, delta, AT, A2T, Z, Bm, Cm, ldbc, D, L, b,
                             T, E);
            continue;
        }
#endif
        if (N == 16)
            backward_seq(du, ddelta, dAp, dDp, dBm, dCm, ws, ck, dy, u, delta, AT, A2T, Z, Bm, Cm, ldbc, D, L, b, T,
                         E, 16);
        else
            backward_seq(du, ddelta, dAp, dDp, dBm, dCm, ws, ck, dy, u, delta, AT, A2T, Z, Bm, Cm, ldbc, D, L, b, T,
                         E, N);
    }

    /* Reduce the per-sequence partials in sequence order (deterministic). */
#pragma omp parallel for schedule(static) if ((size_t)B * E * N >= PAR_MIN_WORK)
    for (int c = 0; c < E; c++) {
        for (int n = 0; n < N; n++) {
            size_t i = nc_index(n, c, E, N, blk);
            float s = 0.0f;
            for (int b = 0; b < B; b++) s += partials[(size_t)b * part_stride + i];
            dA_log[(size_t)c * N + n] += s * AT[i];
        }
        float s = 0.0f;
        for (int b = 0; b < B; b++) s += partials[(size_t)b * part_stride + NE + c];
        dD[c] += s;
    }
}

void scan_backward(float *du, float *ddelta, float *dA_log, float *dBm, float *dCm, float *dD, const float *dy,
                   const float *hck, const float *u, const float *delta, const float *A_log, const float *Bm,
                   const float *Cm, int ldbc, const float *D, int B, int T, int E, int N, float *scratch) {
    uint64_t t0 = prof_start();
    scan_backward_impl(du, ddelta, dA_log, dBm, dCm, dD, dy, hck, u, delta, A_log, Bm, Cm, ldbc, D, B, T, E, N,
                       scratch);
    prof_stop(PROF_SCAN, t0);
}

/* ------------------------------------------------------------------------ */
/* probe                                                                     */
/* ------------------------------------------------------------------------ */

void scan_states(float *h, const float *u, const float *delta, const float *A_log, const float *Bm,
                 const float *Cm, int ldbc, int b, int T, int E, int N) {
    (void)Cm; /* the states do not depend on C; kept for a uniform signature */
    if (T <= 0 || E <= 0 || N <= 0) return;
    size_t EN = (size_t)E * N;
    /* No scratch here: A log2 e and the exp buffer are formed per channel on
     * the stack in chunks of 64 states (the same values as fill_AT). */
    enum { CHUNK = 64 };
    float A2c[CHUNK], a[CHUNK];
    for (int t = 0; t < T; t++) {
        size_t row = (size_t)b * T + t;
        const float *ut = u + row * E, *dt = delta + row * E, *Bt = Bm + row * (size_t)ldbc;
        float *ht = h + (size_t)t * EN;
        if (t == 0) memset(ht, 0, EN * sizeof(float));
        else memcpy(ht, ht - EN, EN * sizeof(float));
        for (int c = 0; c < E; c++) {
            for (int n0 = 0; n0 < N; n0 += CHUNK) {
                int nn = N - n0 < CHUNK ? N - n0 : CHUNK;
                for (int n = 0; n < nn; n++) {
                    float A = -expf(A_log[(size_t)c * N + n0 + n]);
                    A2c[n] = A * SCAN_LOG2E;
                }
                step_channel(ht + (size_t)c * N + n0, a, A2c, Bt + n0, dt[c], ut[c], nn);
            }
        }
    }
}
