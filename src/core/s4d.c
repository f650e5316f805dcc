/*
 * s4d.c - the S4D-Lin kernel of S4-Mamba and its long causal convolution,
 * forward and backward (SPEC.md 3.3; the contract and shapes are in s4d.h).
 *
 * Two independent pieces:
 *   - the kernel K (E, L) from the per-channel parameters (log_dt, log_A_re,
 *     A_im, C), computed in double with the complex arithmetic written out by
 *     hand as (re, im) pairs (C99 complex multiplication goes through
 *     __muldc3 for its inf/NaN rules and is slow without -fcx-limited-range);
 *   - y = K * u + D u, a direct causal convolution over time per channel.
 * What it is not: the FFT convolution of the reference S4D (direct is exact,
 * deterministic and cheap enough at ICL lengths, T ~ 80..300), nor dropout,
 * the z gate or the rest of the S4-Mamba block.
 *
 * Powers w^l = exp(dt A l) are formed by repeated multiplication in double,
 * re-seeded from the closed form exp(dt A l0) every LCHUNK steps, so the
 * relative error stays near LCHUNK double ulps (~1e-14) for any L, far below
 * float resolution (a float-only power chain would drift by ~L float ulps).
 *
 * Parallelism and determinism: the kernel is parallel over channels; the
 * convolution is parallel over blocks of CBLK channels. Every output element,
 * including the weight gradients dK and dD (reduced over b and t of its own
 * channel), is computed by one thread in a fixed order, so results are
 * bitwise independent of the thread count.
 */
#include "s4d.h"
#include "core/prof.h"
#include "core/parallel.h"
#include "core/vec16.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

enum {
    LCHUNK = 64, /* lags per tile (kernel re-seed period; conv tile length) */
    CBLK = 16    /* channels per conv tile: contiguous in u, y (B, T, E) */
};

/* exp(z * l) for z = zr + i zi, by the closed form. */
static void cexp_scaled(double zr, double zi, double l, double *re, double *im) {
    double m = exp(zr * l);
    *re = m * cos(zi * l);
    *im = m * sin(zi * l);
}

/* Per-mode constants: A, dt A, w = exp(dt A), q = (w - 1) / A and the
 * discretised Ct = C q. */
typedef struct {
    double Ar, Ai, zr, zi, wr, wi, qr, qi, Ctr, Cti;
} s4d_mode;

static s4d_mode mode_setup(double dt, float log_A_re, float A_im, float Cr, float Ci) {
    s4d_mode m;
    m.Ar = -exp((double)log_A_re);
    m.Ai = A_im;
    m.zr = dt * m.Ar;
    m.zi = dt * m.Ai;
    cexp_scaled(m.zr, m.zi, 1.0, &m.wr, &m.wi);
    /* q = (w - 1) / A: A != 0 since Re A = -exp(.) < 0 */
    double nr = m.wr - 1.0, ni = m.wi, den = m.Ar * m.Ar + m.Ai * m.Ai;
    m.qr = (nr * m.Ar + ni * m.Ai) / den;
    m.qi = (ni * m.Ar - nr * m.Ai) / den;
    m.Ctr = Cr * m.qr - Ci * m.qi;
    m.Cti = Cr * m.qi + Ci * m.qr;
    return m;
}

/* ------------------------------------------------------------------------ */
/* kernel                                                                    */
/* ------------------------------------------------------------------------ */

/* K[c,l] = 2 Re sum_n Ct_n w_n^l, accumulated over modes in double per tile
 * of LCHUNK lags. */
static void s4d_kernel_forward_impl(float *K, const float *log_dt, const float *log_A_re, const float *A_im, const float *C,
                        int E, int Nh, int L) {
    if (E <= 0 || L <= 0) return;
#pragma omp parallel for schedule(static) if ((size_t)E * Nh * L >= PAR_MIN_WORK)
    for (int c = 0; c < E; c++) {
        double dt = exp((double)log_dt[c]);
        double acc[LCHUNK];
        for (int l0 = 0; l0 < L; l0 += LCHUNK) {
            int nl = L - l0 < LCHUNK ? L - l0 : LCHUNK;
            memset(acc, 0, sizeof acc);
            for (int n = 0; n < Nh; n++) {
                size_t i = (size_t)c * Nh + n;
                s4d_mode m = mode_setup(dt, log_A_re[i], A_im[i], C[2 * i], C[2 * i + 1]);
                double pr, pi; /* p = w^l, starting at l = l0 */
                cexp_scaled(m.zr, m.zi, (double)l0, &pr, &pi);
                for (int l = 0; l < nl; l++) {
                    acc[l] += m.Ctr * pr - m.Cti * pi;
                    double tr = pr * m.wr - pi * m.wi;
                    pi = pr * m.wi + pi * m.wr;
                    pr = tr;
                }
            }
            float *Kc = K + (size_t)c * L + l0;
            for (int l = 0; l < nl; l++) Kc[l] = (float)(2.0 * acc[l]);
        }
    }
}

void s4d_kernel_forward(float *K, const float *log_dt, const float *log_A_re, const float *A_im, const float *C,
                        int E, int Nh, int L) {
    uint64_t t0 = prof_start();
    s4d_kernel_forward_impl(K, log_dt, log_A_re, A_im, C, E, Nh, L);
    prof_stop(PROF_S4D, t0);
}

/*
 * Per mode the loss is 2 Re F with F = Ct G(w), where
 *   G = sum_l dK_l w^l,   H = sum_l l dK_l w^l  (= w G'(w)),
 *   w = exp(dt A),  Ct = C q,  q = (w - 1) / A.
 * F is holomorphic in C and in A, so the gradient of 2 Re F with respect to
 * (Re z, Im z) is (2 Re F'(z), -2 Im F'(z)):
 *   dF/dC  = q G
 *   dF/dA  = C (dt w - q) / A G + Ct dt H
 *   dF/ddt = C w G + Ct A H                       (dt is real: 2 Re)
 * and the chain rule through the parametrisation:
 *   dlog_A_re = dRe(A) * Re(A)   (Re A = -exp(log_A_re)),  dlog_dt = ddt * dt.
 */
static void s4d_kernel_backward_impl(float *dlog_dt, float *dlog_A_re, float *dA_im, float *dC, const float *dK,
                         const float *log_dt, const float *log_A_re, const float *A_im, const float *C, int E,
                         int Nh, int L) {
    if (E <= 0 || L <= 0) return;
#pragma omp parallel for schedule(static) if ((size_t)E * Nh * L >= PAR_MIN_WORK)
    for (int c = 0; c < E; c++) {
        double dt = exp((double)log_dt[c]);
        const float *dKc = dK + (size_t)c * L;
        double ddt = 0.0;
        for (int n = 0; n < Nh; n++) {
            size_t i = (size_t)c * Nh + n;
            double Cr = C[2 * i], Ci = C[2 * i + 1];
            s4d_mode m = mode_setup(dt, log_A_re[i], A_im[i], C[2 * i], C[2 * i + 1]);
            double Gr = 0, Gi = 0, Hr = 0, Hi = 0, pr = 0, pi = 0;
            for (int l = 0; l < L; l++) {
                if (l % LCHUNK == 0) cexp_scaled(m.zr, m.zi, (double)l, &pr, &pi);
                double g = dKc[l];
                Gr += g * pr;
                Gi += g * pi;
                Hr += (double)l * g * pr;
                Hi += (double)l * g * pi;
                double tr = pr * m.wr - pi * m.wi;
                pi = pr * m.wi + pi * m.wr;
                pr = tr;
            }
            /* dF/dC = q G */
            double qGr = m.qr * Gr - m.qi * Gi, qGi = m.qr * Gi + m.qi * Gr;
            dC[2 * i] += (float)(2.0 * qGr);
            dC[2 * i + 1] += (float)(-2.0 * qGi);
            /* dF/dA = C G (dt w - q) / A + Ct dt H */
            double sr = dt * m.wr - m.qr, si = dt * m.wi - m.qi;          /* dt w - q */
            double den = m.Ar * m.Ar + m.Ai * m.Ai;
            double vr = (sr * m.Ar + si * m.Ai) / den, vi = (si * m.Ar - sr * m.Ai) / den; /* / A */
            double CGr = Cr * Gr - Ci * Gi, CGi = Cr * Gi + Ci * Gr;
            double CtHr = m.Ctr * Hr - m.Cti * Hi, CtHi = m.Ctr * Hi + m.Cti * Hr;
            double dAr = CGr * vr - CGi * vi + dt * CtHr;
            double dAi = CGr * vi + CGi * vr + dt * CtHi;
            dlog_A_re[i] += (float)(2.0 * dAr * m.Ar);
            dA_im[i] += (float)(-2.0 * dAi);
            /* dF/ddt = C w G + Ct A H (real part only) */
            double CwGr = CGr * m.wr - CGi * m.wi;
            double CtAHr = CtHr * m.Ar - CtHi * m.Ai;
            ddt += 2.0 * (CwGr + CtAHr);
        }
        dlog_dt[c] += (float)(ddt * dt);
    }
}

void s4d_kernel_backward(float *dlog_dt, float *dlog_A_re, float *dA_im, float *dC, const float *dK,
                         const float *log_dt, const float *log_A_re, const float *A_im, const float *C, int E,
                         int Nh, int L) {
    uint64_t t0 = prof_start();
    s4d_kernel_backward_impl(dlog_dt, dlog_A_re, dA_im, dC, dK, log_dt, log_A_re, A_im, C, E, Nh, L);
    prof_stop(PROF_S4D, t0);
}

/* ------------------------------------------------------------------------ */
/* causal convolution                                                        */
/* ------------------------------------------------------------------------ */
/*
 * Tiles: a block of cb <= CBLK adjacent channels (contiguous in u and y) and
 * LCHUNK lags; the kernel tile is transposed to Kt[lag][channel] so the inner
 * loop runs over contiguous channels and vectorises (full tiles with a
 * constant trip count; the last, partial tile with a variable one).
 * Full tiles run four output rows (lag_dot4) or four lags (lag_corr4) at a
 * time in vector registers: one row's sum is a chain of dependent adds that
 * waits on the add latency at every lag, four are independent; each sum
 * keeps its order, so the bits are those of the row-by-row loops (a small
 * S4-Mamba step 41.3 -> 34.7 ms, one thread; the gradients of a step
 * compared byte for byte).
 * Known limit: the rows of one tile are E floats apart, so when E*4 bytes is
 * a multiple of 1-2 KiB the rows of a lag tile share few L1 sets; measured
 * about 2 GMAC/s per core at E = 512 (still several times cheaper than the
 * selective scan at the same shape). Tried and dropped: copying a
 * sequence's tile into a contiguous stack array first. On an AVX-512 Xeon
 * the kernel alone ran 1.3-1.5x faster at B 2-8 (T 81, E 256), but only
 * 1.04-1.11x at B 32, where each tile line comes from beyond L2 once per
 * sequence, and the S4-Mamba step was 4-5% slower (small and medium).
 */

/* out[j] += sum_{l < nl} Kt[l][j] x[l * xstep + j]   (j < cb), the lags
 * summed in increasing order into a local copy of the row. A full tile is
 * unrolled over its CBLK channels so the copy lives in four SSE registers. */
static inline void lag_dot(float *restrict out, const float (*restrict Kt)[CBLK], const float *restrict x,
                           ptrdiff_t xstep, int nl, int cb) {
    float acc[CBLK];
    for (int j = 0; j < cb; j++) acc[j] = out[j];
    if (cb == CBLK) {
        for (int l = 0; l < nl; l++) {
            const float *xl = x + l * xstep;
#pragma GCC unroll 16
            for (int j = 0; j < CBLK; j++) acc[j] += Kt[l][j] * xl[j];
        }
    } else {
        for (int l = 0; l < nl; l++) {
            const float *xl = x + l * xstep;
#pragma omp simd
            for (int j = 0; j < cb; j++) acc[j] += Kt[l][j] * xl[j];
        }
    }
    for (int j = 0; j < cb; j++) out[j] = acc[j];
}

/* lag_dot for four rows at once, out_k = out + k ostep with x_k = x + k
 * ostep and nl_k lags (k < 4), for a full tile (cb == CBLK). One row's sum is
 * a chain of dependent adds, one lag after the other, so a single row waits
 * on the add latency at every lag; four rows are four independent chains.
 * Each row still adds its lags in increasing order: the same bits as
 * lag_dot. */
static inline void lag_dot4(float *out, ptrdiff_t ostep, const float (*restrict Kt)[CBLK], const float *x,
                            ptrdiff_t xstep, const int nl[4]) {
    v16 a0 = v16_load(out), a1 = v16_load(out + ostep), a2 = v16_load(out + 2 * ostep), a3 = v16_load(out + 3 * ostep);
    const float *x0 = x, *x1 = x + ostep, *x2 = x + 2 * ostep, *x3 = x + 3 * ostep;
    int lo = nl[0], hi = nl[0];
    for (int k = 1; k < 4; k++) {
        lo = nl[k] < lo ? nl[k] : lo;
        hi = nl[k] > hi ? nl[k] : hi;
    }
    int l = 0;
    for (; l < lo; l++) {
        const v16 k = v16_load(Kt[l]);
        const ptrdiff_t o = l * xstep;
        a0 += k * v16_load(x0 + o);
        a1 += k * v16_load(x1 + o);
        a2 += k * v16_load(x2 + o);
        a3 += k * v16_load(x3 + o);
    }
    for (; l < hi; l++) { /* the rows with more lags go on alone */
        const v16 k = v16_load(Kt[l]);
        const ptrdiff_t o = l * xstep;
        if (l < nl[0]) a0 += k * v16_load(x0 + o);
        if (l < nl[1]) a1 += k * v16_load(x1 + o);
        if (l < nl[2]) a2 += k * v16_load(x2 + o);
        if (l < nl[3]) a3 += k * v16_load(x3 + o);
    }
    v16_store(out, a0);
    v16_store(out + ostep, a1);
    v16_store(out + 2 * ostep, a2);
    v16_store(out + 3 * ostep, a3);
}

/* F[l][j] += g[j] x[l * xstep + j]   (l < nl, j < cb): one output row's
 * contribution to the lag correlations of a tile. */
static inline void lag_outer(float (*restrict F)[CBLK], const float *restrict g, const float *restrict x,
                             ptrdiff_t xstep, int nl, int cb) {
    if (cb == CBLK) {
        for (int l = 0; l < nl; l++) {
            const float *xl = x + l * xstep;
#pragma GCC unroll 16
            for (int j = 0; j < CBLK; j++) F[l][j] += g[j] * xl[j];
        }
    } else {
        for (int l = 0; l < nl; l++) {
            const float *xl = x + l * xstep;
#pragma omp simd
            for (int j = 0; j < cb; j++) F[l][j] += g[j] * xl[j];
        }
    }
}

/* The tile's lag correlations of one sequence for a full tile (cb ==
 * CBLK): F[l][j] = sum_{t = l0 + l}^{T-1} dy[t][j] u[t - l0 - l][j] for l <
 * nl, with dy and u at row 0 of the sequence and the tile's channels, rows E
 * apart. Four lags at a time, each a register summed over t in increasing
 * order: the same sums, term for term, as lag_outer row by row, without
 * loading and storing F[l] at every t. */
static void lag_corr4(float (*restrict F)[CBLK], const float *dy, const float *u, ptrdiff_t E, int T, int l0,
                      int nl) {
    int l = 0;
    for (; l + 4 <= nl; l += 4) {
        v16 f[4] = {{0}, {0}, {0}, {0}};
        int t = l0 + l;
        for (; t < T && t < l0 + l + 3; t++) { /* lags l + k start at t = l0 + l + k */
            const v16 g = v16_load(dy + t * E);
            for (int k = 0; k <= t - l0 - l; k++) f[k] += g * v16_load(u + (t - l0 - l - k) * E);
        }
        v16 f0 = f[0], f1 = f[1], f2 = f[2], f3 = f[3];
        for (; t < T; t++) {
            const v16 g = v16_load(dy + t * E);
            const float *ut = u + (t - l0 - l) * E;
            f0 += g * v16_load(ut);
            f1 += g * v16_load(ut - E);
            f2 += g * v16_load(ut - 2 * E);
            f3 += g * v16_load(ut - 3 * E);
        }
        v16_store(F[l], f0);
        v16_store(F[l + 1], f1);
        v16_store(F[l + 2], f2);
        v16_store(F[l + 3], f3);
    }
    for (; l < nl; l++) {
        v16 f0 = {0};
        for (int t = l0 + l; t < T; t++) f0 += v16_load(dy + t * E) * v16_load(u + (t - l0 - l) * E);
        v16_store(F[l], f0);
    }
}

/* y[b,t] accumulates D u, then lags 0, 1, ..., t in increasing order (lag
 * tiles are the outer loop, so each Kt tile is built once per call). */
static void s4d_conv_forward_impl(float *y, const float *u, const float *K, const float *D, int B, int T, int E, int L) {
    if (B <= 0 || T <= 0 || E <= 0) return;
    int nblk = (E + CBLK - 1) / CBLK;
#pragma omp parallel for schedule(static) if ((size_t)B * T * L * E / 2 >= PAR_MIN_WORK)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * CBLK, cb = E - c0 < CBLK ? E - c0 : CBLK;
        float Kt[LCHUNK][CBLK];
        for (int l0 = 0; l0 < T; l0 += LCHUNK) {
            int nl = T - l0 < LCHUNK ? T - l0 : LCHUNK;
            for (int l = 0; l < nl; l++)
                for (int j = 0; j < cb; j++) Kt[l][j] = K[(size_t)(c0 + j) * L + l0 + l];
            for (int b = 0; b < B; b++) {
                /* D u first, in the loop over b as the backward's D dy: a pass of
                 * its own over all B T rows of the tile's channels stalled on u
                 * (rows E floats apart, each line met once: 34% of this kernel
                 * at B 64, T 41, E 128) */
                if (l0 == 0)
                    for (int t = 0; t < T; t++) {
                        size_t o = ((size_t)b * T + t) * E + c0;
                        for (int j = 0; j < cb; j++) y[o + j] = D[c0 + j] * u[o + j];
                    }
                int t = l0;
                if (cb == CBLK) /* four rows at a time (lag_dot4) */
                    for (; t + 4 <= T; t += 4) {
                        int lm[4];
                        for (int k = 0; k < 4; k++) lm[k] = t + k - l0 + 1 < nl ? t + k - l0 + 1 : nl;
                        lag_dot4(y + ((size_t)b * T + t) * E + c0, E, (const float (*)[CBLK])Kt,
                                 u + ((size_t)b * T + (t - l0)) * E + c0, -(ptrdiff_t)E, lm);
                    }
                for (; t < T; t++) {
                    float *yt = y + ((size_t)b * T + t) * E + c0;
                    const float *ut = u + ((size_t)b * T + (t - l0)) * E + c0; /* lag l0 */
                    int lmax = t - l0 + 1 < nl ? t - l0 + 1 : nl;
                    lag_dot(yt, (const float (*)[CBLK])Kt, ut, -(ptrdiff_t)E, lmax, cb);
                }
            }
        }
    }
}

void s4d_conv_forward(float *y, const float *u, const float *K, const float *D, int B, int T, int E, int L) {
    uint64_t t0 = prof_start();
    s4d_conv_forward_impl(y, u, K, D, B, T, E, L);
    prof_stop(PROF_S4D, t0);
}

/*
 *   du[b,s,c]  = D[c] dy[b,s,c] + sum_{l=0}^{T-1-s} K[c,l] dy[b,s+l,c]
 *   dK[c,l]   += sum_b sum_{t=l}^{T-1} dy[b,t,c] u[b,t-l,c]      (l < T)
 *   dD[c]     += sum_{b,t} dy[b,t,c] u[b,t,c]                   (= dK lag 0)
 * dK and dD of a channel are reduced by the one thread that owns its tile,
 * in a fixed order: in float over t within a sequence, then in double over
 * the sequences b = 0..B-1.
 */
static void s4d_conv_backward_impl(float *du, float *dK, float *dD, const float *dy, const float *u, const float *K,
                       const float *D, int B, int T, int E, int L) {
    if (B <= 0 || T <= 0 || E <= 0) return;
    int nblk = (E + CBLK - 1) / CBLK;
#pragma omp parallel for schedule(static) if ((size_t)B * T * L * E / 2 >= PAR_MIN_WORK)
    for (int blk = 0; blk < nblk; blk++) {
        int c0 = blk * CBLK, cb = E - c0 < CBLK ? E - c0 : CBLK;
        float Kt[LCHUNK][CBLK], F[LCHUNK][CBLK];
        double dKt[LCHUNK][CBLK];
        for (int l0 = 0; l0 < T; l0 += LCHUNK) {
            int nl = T - l0 < LCHUNK ? T - l0 : LCHUNK;
            for (int l = 0; l < nl; l++)
                for (int j = 0; j < cb; j++) {
                    Kt[l][j] = K[(size_t)(c0 + j) * L + l0 + l];
                    dKt[l][j] = 0.0;
                }
            for (int b = 0; b < B; b++) {
                /* du at s gathers the tile's lags l0 + l from dy[b, s + l0 + l] */
                if (l0 == 0)
                    for (int s = 0; s < T; s++) {
                        size_t os = ((size_t)b * T + s) * E + c0;
                        for (int j = 0; j < cb; j++) du[os + j] = D[c0 + j] * dy[os + j]; /* written */
                    }
                int s = 0;
                if (cb == CBLK) /* four rows at a time (lag_dot4) */
                    for (; s + 4 + l0 <= T; s += 4) {
                        int lm[4];
                        for (int k = 0; k < 4; k++) lm[k] = T - (s + k) - l0 < nl ? T - (s + k) - l0 : nl;
                        size_t os = ((size_t)b * T + s) * E + c0;
                        lag_dot4(du + os, E, (const float (*)[CBLK])Kt, dy + os + (size_t)l0 * E, (ptrdiff_t)E, lm);
                    }
                for (; s + l0 < T; s++) {
                    size_t os = ((size_t)b * T + s) * E + c0;
                    const float *dys = dy + os + (size_t)l0 * E;
                    int lmax = T - s - l0 < nl ? T - s - l0 : nl;
                    lag_dot(du + os, (const float (*)[CBLK])Kt, dys, (ptrdiff_t)E, lmax, cb);
                }
                /* the tile's lag correlations of sequence b: dy[t] against u[t - l0 - l] */
                if (cb == CBLK) {
                    lag_corr4(F, dy + (size_t)b * T * E + c0, u + (size_t)b * T * E + c0, E, T, l0, nl);
                } else {
                    memset(F, 0, sizeof F);
                    for (int t = l0; t < T; t++) {
                        const float *dyt = dy + ((size_t)b * T + t) * E + c0;
                        const float *ut = u + ((size_t)b * T + (t - l0)) * E + c0;
                        int lmax = t - l0 + 1 < nl ? t - l0 + 1 : nl;
                        lag_outer(F, dyt, ut, -(ptrdiff_t)E, lmax, cb);
                    }
                }
                for (int l = 0; l < nl; l++)
                    for (int j = 0; j < cb; j++) dKt[l][j] += F[l][j];
            }
            for (int l = 0; l < nl; l++)
                for (int j = 0; j < cb; j++) dK[(size_t)(c0 + j) * L + l0 + l] += (float)dKt[l][j];
            if (l0 == 0)
                for (int j = 0; j < cb; j++) dD[c0 + j] += (float)dKt[0][j];
        }
    }
}

void s4d_conv_backward(float *du, float *dK, float *dD, const float *dy, const float *u, const float *K,
                       const float *D, int B, int T, int E, int L) {
    uint64_t t0 = prof_start();
    s4d_conv_backward_impl(du, dK, dD, dy, u, K, D, B, T, E, L);
    prof_stop(PROF_S4D, t0);
}
