/*
 * scan.c - the selective scan (S6) of Mamba on the CPU, forward and backward
 * (SPEC.md 6.1 steps 5-8; the contract and the maths are in scan.h).
 *
 * This is the hot kernel of Mamba training. What it does:
 *   - forward: one pass over t per sequence, the state h (E, N) in per-thread
 *     scratch, y written densely. Nothing is saved: memory stays O(B T E).
 *   - backward: recompute the states of the sequence (T, E, N) into per-thread
 *     scratch, then run the adjoint recurrence backwards in time.
 * What it is not: the input projection, conv1d, dt_proj/softplus and the SiLU
 * gate around it (the Mamba block does those), nor a chunked/parallel-in-time
 * scan: with B sequences and small T, splitting over b is enough.
 *
 * Layout choices, all for speed:
 *   - The n loop (N = 16 states, contiguous) is innermost everywhere. The
 *     exp(delta A) factors of one (t, c) are computed first into a small
 *     buffer with fm_expf (core/fastmath.h: a polynomial exp that vectorises;
 *     glibc's scalar expf was about 60% of the instructions, and its vector
 *     variant needs -ffast-math, which the project forbids), so the remaining
 *     n loops are plain multiply-adds. They are marked `omp simd` because
 *     GCC's -O2 cost model does not vectorise loops of unknown trip count; the
 *     n-reductions then sum in a fixed lane order that does not depend on the
 *     threads.
 *   - A = -exp(A_log) is computed once per call into shared scratch, not per t.
 *   - No allocation: the caller provides scan_scratch_floats(...) floats.
 *   - Threads index scratch by omp_get_thread_num(), so the kernels must not
 *     be called from inside an enclosing parallel region.
 *
 * Scratch layout (floats), nthreads = the caller's omp_get_max_threads():
 *   A        (E, N)                      shared, filled before the parallel loop
 *   forward : per thread  h (E, N) + a (N)
 *   backward: partials    B x [dA (E, N) + dD (E)]   one slot per SEQUENCE
 *             per thread  states (T, E, N) + dh (E, N) + a (N) + dB (N) + dC (N)
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
#include <string.h>

#include "core/fastmath.h"
#ifdef _OPENMP
#include <omp.h>
#endif

/* The per-sequence bodies are instantiated twice, for N == 16 (Mamba's
 * d_state, a constant trip count: the n loops unroll into four SSE
 * operations) and for any other N; this forces the inlining that makes the
 * constant visible. */
#if defined(__GNUC__)
#define SCAN_INLINE static inline __attribute__((always_inline))
#else
#define SCAN_INLINE static inline
#endif

static int thread_id(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Floats of per-thread scratch for the forward and the backward. */
static size_t fwd_thread_floats(int E, int N) { return (size_t)E * N + (size_t)N; }
static size_t bwd_thread_floats(int T, int E, int N) {
    return (size_t)T * E * N + (size_t)E * N + 3 * (size_t)N;
}

size_t scan_scratch_floats(int B, int T, int E, int N, int nthreads) {
    if (B <= 0 || T <= 0 || E <= 0 || N <= 0) return 0;
    if (nthreads < 1) nthreads = 1;
    size_t EN = (size_t)E * N;
    size_t fwd = EN + (size_t)nthreads * fwd_thread_floats(E, N);
    size_t bwd = EN + (size_t)B * (EN + (size_t)E) + (size_t)nthreads * bwd_thread_floats(T, E, N);
    return fwd > bwd ? fwd : bwd;
}

/* A[c,n] = -exp(A_log[c,n]), computed once per call. */
static void fill_A(float *A, const float *A_log, size_t EN) {
    for (size_t i = 0; i < EN; i++) A[i] = -expf(A_log[i]);
}

/* One time step of one channel: a[n] = exp(d A[n]), then
 * h[n] = a[n] h[n] + (d u) B[n]. Shared by the forward, the backward's state
 * recompute and scan_states, so all three produce bitwise the same states. */
SCAN_INLINE void step_channel(float *restrict h, float *restrict a, const float *restrict Ac,
                              const float *restrict Bt, float d, float u, int N) {
    #pragma omp simd
    for (int n = 0; n < N; n++) a[n] = fm_expf(d * Ac[n]);
    float du = d * u;
#pragma omp simd
    for (int n = 0; n < N; n++) h[n] = a[n] * h[n] + du * Bt[n];
}

/* States of sequence b for all t into hs (T, E, N); A precomputed (E, N). */
SCAN_INLINE void recompute_states(float *restrict hs, float *restrict a, const float *u, const float *delta,
                                  const float *A, const float *Bm, int ldbc, int b, int T, int E, int N) {
    size_t EN = (size_t)E * N;
    for (int t = 0; t < T; t++) {
        size_t row = (size_t)b * T + t;
        const float *ut = u + row * E, *dt = delta + row * E, *Bt = Bm + row * (size_t)ldbc;
        float *ht = hs + (size_t)t * EN;
        if (t == 0) memset(ht, 0, EN * sizeof(float));
        else memcpy(ht, ht - EN, EN * sizeof(float));
        for (int c = 0; c < E; c++)
            step_channel(ht + (size_t)c * N, a, A + (size_t)c * N, Bt, dt[c], ut[c], N);
    }
}

/* ------------------------------------------------------------------------ */
/* forward                                                                   */
/* ------------------------------------------------------------------------ */

/* Sequence b; h: per-thread scratch, state (E, N) then the exp buffer (N). */
SCAN_INLINE void forward_seq(float *y, float *h, const float *u, const float *delta, const float *A,
                             const float *Bm, const float *Cm, int ldbc, const float *D, int b, int T, int E,
                             int N) {
    size_t EN = (size_t)E * N;
    float *a = h + EN;
    memset(h, 0, EN * sizeof(float));
    for (int t = 0; t < T; t++) {
        size_t row = (size_t)b * T + t;
        const float *ut = u + row * E, *dt = delta + row * E;
        const float *Bt = Bm + row * (size_t)ldbc, *Ct = Cm + row * (size_t)ldbc;
        float *yt = y + row * E;
        for (int c = 0; c < E; c++) {
            float *hc = h + (size_t)c * N;
            step_channel(hc, a, A + (size_t)c * N, Bt, dt[c], ut[c], N);
            /* y = sum_n C[n] h[n] + D u */
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int n = 0; n < N; n++) acc += Ct[n] * hc[n];
            yt[c] = acc + D[c] * ut[c];
        }
    }
}

static void scan_forward_impl(float *y, const float *u, const float *delta, const float *A_log, const float *Bm,
                  const float *Cm, int ldbc, const float *D, int B, int T, int E, int N, float *scratch) {
    if (B <= 0 || T <= 0 || E <= 0 || N <= 0) return;
    size_t EN = (size_t)E * N;
    float *A = scratch;
    fill_A(A, A_log, EN);
    float *per_thread = scratch + EN;

#pragma omp parallel for schedule(static) if ((size_t)B * T * E * N >= PAR_MIN_WORK)
    for (int b = 0; b < B; b++) {
        float *h = per_thread + (size_t)thread_id() * fwd_thread_floats(E, N);
        if (N == 16) forward_seq(y, h, u, delta, A, Bm, Cm, ldbc, D, b, T, E, 16);
        else forward_seq(y, h, u, delta, A, Bm, Cm, ldbc, D, b, T, E, N);
    }
}

void scan_forward(float *y, const float *u, const float *delta, const float *A_log, const float *Bm,
                  const float *Cm, int ldbc, const float *D, int B, int T, int E, int N, float *scratch) {
    uint64_t t0 = prof_start();
    scan_forward_impl(y, u, delta, A_log, Bm, Cm, ldbc, D, B, T, E, N, scratch);
    prof_stop(PROF_SCAN, t0);
}

/* ------------------------------------------------------------------------ */
/* backward                                                                  */
/* ------------------------------------------------------------------------ */
/*
 * With g_t = dL/dh_t (the total adjoint of the state at t):
 *   g_t        = C_t dy_t + a_{t+1} g_{t+1},        a_t = exp(delta_t A)
 *   dC_t[n]   += sum_c dy_t[c] h_t[c,n]
 *   dD[c]     += sum_t dy_t[c] u_t[c]
 *   du_t[c]   += D[c] dy_t[c] + delta_t[c] sum_n g_t[c,n] B_t[n]
 *   ddelta_t  += sum_n g_t[c,n] (A[c,n] a_t[c,n] h_{t-1}[c,n] + B_t[n] u_t[c])
 *   dA[c,n]   += sum_t g_t[c,n] delta_t[c] a_t[c,n] h_{t-1}[c,n]
 *   dB_t[n]   += sum_c g_t[c,n] delta_t[c] u_t[c]
 *   dA_log     = dA * A                              (A = -exp(A_log))
 * The carry a_t g_t for step t-1 is formed at step t, where a_t is at hand,
 * so each (t, c, n) costs exactly one expf, as in the forward.
 */
/* Sequence b. ws: per-thread scratch, states hs (T, E, N), adjoint g (E, N),
 * exp buffer a (N), dB and dC row sums (N each). dAp (E, N) and dDp (E): this
 * sequence's own partials of dA and dD. */
SCAN_INLINE void backward_seq(float *du, float *ddelta, float *dAp, float *dDp, float *dBm, float *dCm,
                              float *ws, const float *dy, const float *u, const float *delta, const float *A,
                              const float *Bm, const float *Cm, int ldbc, const float *D, int b, int T, int E,
                              int N) {
    size_t EN = (size_t)E * N;
    float *hs = ws, *g = hs + (size_t)T * EN;
    float *a = g + EN, *dBacc = a + N, *dCacc = dBacc + N;
    memset(dAp, 0, EN * sizeof(float));
    memset(dDp, 0, (size_t)E * sizeof(float));
    memset(g, 0, EN * sizeof(float));

    recompute_states(hs, a, u, delta, A, Bm, ldbc, b, T, E, N);

    for (int t = T - 1; t >= 0; t--) {
        size_t row = (size_t)b * T + t;
        const float *ut = u + row * E, *dt = delta + row * E, *dyt = dy + row * E;
        const float *Bt = Bm + row * (size_t)ldbc, *Ct = Cm + row * (size_t)ldbc;
        const float *ht = hs + (size_t)t * EN;
        const float *hp = t > 0 ? ht - EN : NULL; /* h_{t-1}; NULL means 0 */
        memset(dBacc, 0, 2 * (size_t)N * sizeof(float));
        for (int c = 0; c < E; c++) {
            float dyc = dyt[c], d = dt[c], uc = ut[c];
            const float *Ac = A + (size_t)c * N, *hc = ht + (size_t)c * N;
            float *gc = g + (size_t)c * N, *dAc = dAp + (size_t)c * N;
            #pragma omp simd
    for (int n = 0; n < N; n++) a[n] = fm_expf(d * Ac[n]);
            dDp[c] += dyc * uc;
#pragma omp simd
            for (int n = 0; n < N; n++) {
                dCacc[n] += dyc * hc[n];
                gc[n] += Ct[n] * dyc; /* now g_t */
            }
            float gB = 0.0f, gdd = 0.0f;
            if (hp) {
                const float *hpc = hp + (size_t)c * N;
#pragma omp simd reduction(+ : gB, gdd)
                for (int n = 0; n < N; n++) {
                    float gah = gc[n] * a[n] * hpc[n];
                    gB += gc[n] * Bt[n];
                    gdd += Ac[n] * gah;
                    dAc[n] += d * gah;
                }
            } else {
#pragma omp simd reduction(+ : gB)
                for (int n = 0; n < N; n++) gB += gc[n] * Bt[n];
            }
            /* sum_n g B u is the B-bar part of ddelta; gB serves both. */
            ddelta[row * E + c] += gdd + gB * uc;
            du[row * E + c] += D[c] * dyc + d * gB;
            float du_c = d * uc;
#pragma omp simd
            for (int n = 0; n < N; n++) {
                dBacc[n] += gc[n] * du_c;
                gc[n] *= a[n]; /* carry a_t g_t to step t-1 */
            }
        }
        float *dBt = dBm + row * (size_t)ldbc, *dCt = dCm + row * (size_t)ldbc;
#pragma omp simd
        for (int n = 0; n < N; n++) {
            dBt[n] += dBacc[n];
            dCt[n] += dCacc[n];
        }
    }
}

static void scan_backward_impl(float *du, float *ddelta, float *dA_log, float *dBm, float *dCm, float *dD, const float *dy,
                   const float *u, const float *delta, const float *A_log, const float *Bm, const float *Cm,
                   int ldbc, const float *D, int B, int T, int E, int N, float *scratch) {
    if (B <= 0 || T <= 0 || E <= 0 || N <= 0) return;
    size_t EN = (size_t)E * N;
    float *A = scratch;
    fill_A(A, A_log, EN);
    float *partials = scratch + EN; /* B x [dA (E, N), dD (E)] */
    size_t part_stride = EN + (size_t)E;
    float *per_thread = partials + (size_t)B * part_stride;

#pragma omp parallel for schedule(static) if ((size_t)B * T * E * N >= PAR_MIN_WORK)
    for (int b = 0; b < B; b++) {
        float *ws = per_thread + (size_t)thread_id() * bwd_thread_floats(T, E, N);
        float *dAp = partials + (size_t)b * part_stride, *dDp = dAp + EN;
        if (N == 16)
            backward_seq(du, ddelta, dAp, dDp, dBm, dCm, ws, dy, u, delta, A, Bm, Cm, ldbc, D, b, T, E, 16);
        else
            backward_seq(du, ddelta, dAp, dDp, dBm, dCm, ws, dy, u, delta, A, Bm, Cm, ldbc, D, b, T, E, N);
    }

    /* Reduce the per-sequence partials in sequence order (deterministic). */
#pragma omp parallel for schedule(static) if ((size_t)B * E * N >= PAR_MIN_WORK)
    for (int c = 0; c < E; c++) {
        for (int n = 0; n < N; n++) {
            size_t i = (size_t)c * N + n;
            float s = 0.0f;
            for (int b = 0; b < B; b++) s += partials[(size_t)b * part_stride + i];
            dA_log[i] += s * A[i];
        }
        float s = 0.0f;
        for (int b = 0; b < B; b++) s += partials[(size_t)b * part_stride + EN + c];
        dD[c] += s;
    }
}

void scan_backward(float *du, float *ddelta, float *dA_log, float *dBm, float *dCm, float *dD, const float *dy,
                   const float *u, const float *delta, const float *A_log, const float *Bm, const float *Cm,
                   int ldbc, const float *D, int B, int T, int E, int N, float *scratch) {
    uint64_t t0 = prof_start();
    scan_backward_impl(du, ddelta, dA_log, dBm, dCm, dD, dy, u, delta, A_log, Bm, Cm, ldbc, D, B, T, E, N, scratch);
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
    /* No scratch here: A and the exp buffer are formed per channel on the
     * stack in chunks of 64 states (the same expf(A_log) values as fill_A). */
    enum { CHUNK = 64 };
    float Ac[CHUNK], a[CHUNK];
    for (int t = 0; t < T; t++) {
        size_t row = (size_t)b * T + t;
        const float *ut = u + row * E, *dt = delta + row * E, *Bt = Bm + row * (size_t)ldbc;
        float *ht = h + (size_t)t * EN;
        if (t == 0) memset(ht, 0, EN * sizeof(float));
        else memcpy(ht, ht - EN, EN * sizeof(float));
        for (int c = 0; c < E; c++) {
            for (int n0 = 0; n0 < N; n0 += CHUNK) {
                int nn = N - n0 < CHUNK ? N - n0 : CHUNK;
                for (int n = 0; n < nn; n++) Ac[n] = -expf(A_log[(size_t)c * N + n0 + n]);
                step_channel(ht + (size_t)c * N + n0, a, Ac, Bt + n0, dt[c], ut[c], nn);
            }
        }
    }
}
