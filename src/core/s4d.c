/*
 * s4d.c - the S4D-Lin kernel of S4-Mamba and its long causal convolution,
 * forward and backward (SPEC.md 3.3; the contract and shapes are in s4d.h).
 *
 * Two independent pieces:
 *   - the kernel K (L, E) from the per-channel parameters (log_dt, log_A_re,
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
 * convolution is parallel over contiguous ranges of CBLK-channel tiles, one
 * range per thread. Every output element,
 * including the weight gradients dK and dD (reduced over b and t of its own
 * channel), is computed by one thread in a fixed order, so results are
 * bitwise independent of the thread count.
 */
#include "s4d.h"
#include "core/prof.h"
#include "core/parallel.h"
#include "core/vec16.h"
#include "core/fastmath.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

enum {
    LCHUNK = 64, /* kernel: lags per re-seed of the power chain */
    CBLK = 16,   /* channels per conv tile: one 64-byte line of a row */
    TCOPY = 256  /* conv: longest sequence whose tiles are copied (16 KiB each) */
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

/* The kernel runs KLANES channels at a time, one per lane of a v8d: the
 * power chains of one channel's modes are a chain of dependent complex
 * multiplies (latency-bound, one step at a time), eight channels are eight
 * chains side by side. Each lane does the scalar code's operations in its
 * order (no contraction under -std=c11), so the bits are the one-channel
 * loop's; the transcendental set-up of a mode stays scalar, per lane. */
typedef double v8d __attribute__((vector_size(64)));
enum { KLANES = 8 };

/* Mode n of the group's channels c0 + j (j < nc; lanes past them repeat
 * channel c0, computed and never stored). */
static void modes_setup(s4d_mode m[KLANES], const double dt[KLANES], const float *log_A_re, const float *A_im,
                        const float *C, int Nh, int c0, int nc, int n) {
    for (int j = 0; j < KLANES; j++) {
        size_t i = (size_t)(c0 + (j < nc ? j : 0)) * Nh + n;
        m[j] = mode_setup(dt[j], log_A_re[i], A_im[i], C[2 * i], C[2 * i + 1]);
    }
}

/* The group's time steps dt = exp(log_dt), lanes past E repeating channel
 * c0 as modes_setup's do. */
static void lanes_dt(double dt[KLANES], const float *log_dt, int c0, int nc) {
    for (int j = 0; j < KLANES; j++) dt[j] = exp((double)log_dt[c0 + (j < nc ? j : 0)]);
}

/* p <- p w, a complex multiply per lane: one step of the power chain. */
static inline void powers_step(v8d *pr, v8d *pi, v8d wr, v8d wi) {
    const v8d tr = *pr * wr - *pi * wi;
    *pi = *pr * wi + *pi * wr;
    *pr = tr;
}

/* The lanes' p = w^l at l, from the closed form. */
static void powers_seed(v8d *pr, v8d *pi, const s4d_mode m[KLANES], int l) {
    for (int j = 0; j < KLANES; j++) {
        double r, im;
        cexp_scaled(m[j].zr, m[j].zi, (double)l, &r, &im);
        (*pr)[j] = r;
        (*pi)[j] = im;
    }
}

/* K[l,c] = 2 Re sum_n Ct_n w_n^l, accumulated over modes in double per tile
 * of LCHUNK lags (a channel's lags land E floats apart: the convolution
 * reads a lag's channels together). */
static void s4d_kernel_forward_impl(float *K, const float *log_dt, const float *log_A_re, const float *A_im, const float *C,
                        int E, int Nh, int L) {
    if (E <= 0 || L <= 0) return;
    const int ng = (E + KLANES - 1) / KLANES;
#pragma omp parallel for schedule(static) if ((size_t)E * Nh * L >= PAR_MIN_WORK)
    for (int gi = 0; gi < ng; gi++) {
        const int c0 = gi * KLANES, nc = E - c0 < KLANES ? E - c0 : KLANES;
        double dt[KLANES];
        lanes_dt(dt, log_dt, c0, nc);
        v8d acc[LCHUNK];
        for (int l0 = 0; l0 < L; l0 += LCHUNK) {
            int nl = L - l0 < LCHUNK ? L - l0 : LCHUNK;
            for (int l = 0; l < nl; l++) acc[l] = (v8d){0};
            for (int n = 0; n < Nh; n++) {
                s4d_mode m[KLANES];
                modes_setup(m, dt, log_A_re, A_im, C, Nh, c0, nc, n);
                v8d Ctr, Cti, wr, wi, pr, pi; /* p = w^l, starting at l = l0 */
                for (int j = 0; j < KLANES; j++) Ctr[j] = m[j].Ctr, Cti[j] = m[j].Cti, wr[j] = m[j].wr, wi[j] = m[j].wi;
                powers_seed(&pr, &pi, m, l0);
                for (int l = 0; l < nl; l++) {
                    acc[l] += Ctr * pr - Cti * pi;
                    powers_step(&pr, &pi, wr, wi);
                }
            }
            for (int l = 0; l < nl; l++)
                for (int j = 0; j < nc; j++) K[(size_t)(l0 + l) * E + c0 + j] = (float)(2.0 * acc[l][j]);
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
static void s4d_kernel_backward_impl(float *dlog_dt, float *dlog_A_re, float *dA_im, float *dC, const double *dK,
                         const float *log_dt, const float *log_A_re, const float *A_im, const float *C, int E,
                         int Nh, int L) {
    if (E <= 0 || L <= 0) return;
    const int ng = (E + KLANES - 1) / KLANES;
#pragma omp parallel for schedule(static) if ((size_t)E * Nh * L >= PAR_MIN_WORK)
    for (int gi = 0; gi < ng; gi++) {
        const int c0 = gi * KLANES, nc = E - c0 < KLANES ? E - c0 : KLANES;
        double dt[KLANES], ddt[KLANES] = {0};
        lanes_dt(dt, log_dt, c0, nc);
        for (int n = 0; n < Nh; n++) {
            s4d_mode ms[KLANES];
            modes_setup(ms, dt, log_A_re, A_im, C, Nh, c0, nc, n);
            v8d wr, wi, pr = {0}, pi = {0}, Gr = {0}, Gi = {0}, Hr = {0}, Hi = {0};
            for (int j = 0; j < KLANES; j++) wr[j] = ms[j].wr, wi[j] = ms[j].wi;
            for (int l = 0; l < L; l++) {
                if (l % LCHUNK == 0) powers_seed(&pr, &pi, ms, l);
                v8d g = {0};
                memcpy(&g, dK + (size_t)l * E + c0, sizeof(double) * (size_t)nc); /* lanes past E: 0 */
                Gr += g * pr;
                Gi += g * pi;
                Hr += (double)l * g * pr;
                Hi += (double)l * g * pi;
                powers_step(&pr, &pi, wr, wi);
            }
            for (int j = 0; j < nc; j++) { /* per channel, as the one-channel loop */
                const s4d_mode *m = &ms[j];
                const size_t i = (size_t)(c0 + j) * Nh + n;
                const double Cr = C[2 * i], Ci = C[2 * i + 1];
                /* dF/dC = q G */
                double qGr = m->qr * Gr[j] - m->qi * Gi[j], qGi = m->qr * Gi[j] + m->qi * Gr[j];
                dC[2 * i] += (float)(2.0 * qGr);
                dC[2 * i + 1] += (float)(-2.0 * qGi);
                /* dF/dA = C G (dt w - q) / A + Ct dt H */
                double sr = dt[j] * m->wr - m->qr, si = dt[j] * m->wi - m->qi; /* dt w - q */
                double den = m->Ar * m->Ar + m->Ai * m->Ai;
                double vr = (sr * m->Ar + si * m->Ai) / den, vi = (si * m->Ar - sr * m->Ai) / den; /* / A */
                double CGr = Cr * Gr[j] - Ci * Gi[j], CGi = Cr * Gi[j] + Ci * Gr[j];
                double CtHr = m->Ctr * Hr[j] - m->Cti * Hi[j], CtHi = m->Ctr * Hi[j] + m->Cti * Hr[j];
                double dAr = CGr * vr - CGi * vi + dt[j] * CtHr;
                double dAi = CGr * vi + CGi * vr + dt[j] * CtHi;
                dlog_A_re[i] += (float)(2.0 * dAr * m->Ar);
                dA_im[i] += (float)(-2.0 * dAi);
                /* dF/ddt = C w G + Ct A H (real part only) */
                double CwGr = CGr * m->wr - CGi * m->wi;
                double CtAHr = CtHr * m->Ar - CtHi * m->Ai;
                ddt[j] += 2.0 * (CwGr + CtAHr);
            }
        }
        for (int j = 0; j < nc; j++) dlog_dt[c0 + j] += (float)(ddt[j] * dt[j]);
    }
}

void s4d_kernel_backward(float *dlog_dt, float *dlog_A_re, float *dA_im, float *dC, const double *dK,
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
 * Tiles: a block of cb <= CBLK adjacent channels, one 64-byte line of every
 * row of u, y, du, dy and of K (L, E), whose lag-major layout gives a tile
 * its lags without a transposed copy of the kernel.
 *
 * Loop order: each thread owns a contiguous range of channel blocks and
 * walks the sequences in the outer loop, its blocks in the inner one. A
 * sequence's rows (T E floats, contiguous) stay in L2 while the blocks take
 * their lines in turn, and the next sequence streams in in address order.
 * The block-outer order this replaced met every tile line of u, y and dy once
 * per sequence at 1 KiB strides (E = 256), from beyond L2: a new 4 KiB page
 * every fourth line, which the prefetchers do not follow (~1.25 ns per
 * 16-lane multiply-add at B 24-32, T 81, E 256 on an AVX-512 Xeon).
 *
 * Copies: a full tile's rows of K, u (and dy) are copied contiguous first
 * when T <= TCOPY. In place they are E floats apart, and at E = 256 all the
 * rows of a tile fall into 4 of the 64 L1 sets, so K, u and y evict one
 * another at every row group (0.78 ns per multiply-add in place, 0.47
 * copied, the same Xeon and shape). Longer sequences and partial tiles are
 * read in place by the same code (rows_forward / rows_backward, inlined
 * once per case so the copies' steps are constants).
 *
 * Full tiles run eight output rows (rot8_forward, rot8_backward) or eight
 * lags (rot8_corr) at a time in vector registers: one row's sum is a chain
 * of dependent multiply-adds that waits on their latency at every lag, eight
 * are independent. And eight sums at one lag read rows x[t - l .. t + 7 -
 * l] of the moving operand, at the next lag all but one of them again: the
 * kernels keep those eight rows in registers as a sliding window, so one new
 * row and one shared row feed eight multiply-adds (nine loads did before;
 * the forward alone 1.14x, the backward 1.32x, Xeon, B 32, T 80, E 256).
 * The window rotates by renaming: the loop is unrolled over eight steps,
 * each shifting the registers' roles by one (ROT8_STEP's arguments). The
 * eight lags (rows) where only some of the sums have a term form a triangle
 * done apart, its conditions constant once unrolled (TRI_FMA).
 *
 * Each sum keeps its order (D u first, then lags 0, 1, ... for y and du; t
 * increasing for dK within a sequence, then sequences in order in double),
 * whatever the tile, the loop order or the thread count. The multiply-adds
 * are fused where the target has FMA (vl_fma, that is v16_fma or v8_fma, in
 * the vector code, FM_FMA in the row-by-row loops, so the two round alike):
 * 1.15-1.2x on the Xeon.
 *
 * The S4-Mamba gate rides along (z non-NULL): yg = y z over a sequence's
 * rows right after its tiles, while y is in cache, and dy = dyg z, dz =
 * dyg y over a sequence's rows before its tiles, so the tiles read dy back
 * from L2 (a pass of its own over (B, T, E) made a round trip through
 * memory; done tile by tile instead, with rows E floats apart from memory,
 * the step was 13% slower).
 */

/* out[j] = d[j] x[j] + sum_{l < nl} Kt[l kstep + j] x[l xstep + j]
 * (j < cb), the lags summed in increasing order. A full tile is unrolled
 * over its CBLK channels so the row lives in registers. */
static inline void lag_dot(float *restrict out, const float *restrict d, const float *restrict Kt, ptrdiff_t kstep,
                           const float *restrict x, ptrdiff_t xstep, int nl, int cb) {
    float acc[CBLK];
    for (int j = 0; j < cb; j++) acc[j] = d[j] * x[j];
    if (cb == CBLK) {
        for (int l = 0; l < nl; l++) {
            const float *xl = x + l * xstep, *kl = Kt + l * kstep;
#pragma GCC unroll 16
            for (int j = 0; j < CBLK; j++) acc[j] = FM_FMA(kl[j], xl[j], acc[j]);
        }
    } else {
        for (int l = 0; l < nl; l++) {
            const float *xl = x + l * xstep, *kl = Kt + l * kstep;
#pragma omp simd
            for (int j = 0; j < cb; j++) acc[j] = FM_FMA(kl[j], xl[j], acc[j]);
        }
    }
    for (int j = 0; j < cb; j++) out[j] = acc[j];
}

/* The rot8 kernels' vector: a tile's 16 channels on AVX-512, half of
 * them without it (they run once per half). Sixteen 16-lane values in
 * flight are 32 registers of an AVX2 target, which has 16: GCC kept them
 * on the stack (the S4D convolution was 45% of a small S4-Mamba step built
 * for AVX2, 17% for AVX-512). Lane by lane the same operations: the same
 * bits on both. */
#if defined(__AVX512F__)
enum { VL = 16 };
typedef v16 vl;
#define vl_load v16_load
#define vl_store v16_store
#define vl_fma v16_fma
#else
enum { VL = 8 };
typedef v8 vl;
#define vl_load v8_load
#define vl_store v8_store
#define vl_fma v8_fma
#endif

/* One step: w = the window's new row from wsrc; then a_k += s r_k for
 * the eight accumulators a0..a7 of the enclosing function, s read at sp. */
#define ROT8_STEP(w, wsrc, sp, r0, r1, r2, r3, r4, r5, r6, r7)                                                 \
    do {                                                                                                       \
        w = vl_load(wsrc);                                                                                     \
        const vl s_ = vl_load(sp);                                                                             \
        a0 = vl_fma(s_, r0, a0);                                                                               \
        a1 = vl_fma(s_, r1, a1);                                                                               \
        a2 = vl_fma(s_, r2, a2);                                                                               \
        a3 = vl_fma(s_, r3, a3);                                                                               \
        a4 = vl_fma(s_, r4, a4);                                                                               \
        a5 = vl_fma(s_, r5, a5);                                                                               \
        a6 = vl_fma(s_, r6, a6);                                                                               \
        a7 = vl_fma(s_, r7, a7);                                                                               \
    } while (0)

/* Eight steps of a window whose new rows are xstep floats apart (negative:
 * towards earlier rows), v_m the sum m's row at the first step, and whose
 * shared rows are sstep apart from sp. */
#define ROT8_RIGHT(x, xstep, sp, sstep)                                                                        \
    do {                                                                                                       \
        ROT8_STEP(v0, (x), (sp), v0, v1, v2, v3, v4, v5, v6, v7);                                              \
        ROT8_STEP(v7, (x) + (xstep), (sp) + (sstep), v7, v0, v1, v2, v3, v4, v5, v6);                          \
        ROT8_STEP(v6, (x) + 2 * (xstep), (sp) + 2 * (sstep), v6, v7, v0, v1, v2, v3, v4, v5);                  \
        ROT8_STEP(v5, (x) + 3 * (xstep), (sp) + 3 * (sstep), v5, v6, v7, v0, v1, v2, v3, v4);                  \
        ROT8_STEP(v4, (x) + 4 * (xstep), (sp) + 4 * (sstep), v4, v5, v6, v7, v0, v1, v2, v3);                  \
        ROT8_STEP(v3, (x) + 5 * (xstep), (sp) + 5 * (sstep), v3, v4, v5, v6, v7, v0, v1, v2);                  \
        ROT8_STEP(v2, (x) + 6 * (xstep), (sp) + 6 * (sstep), v2, v3, v4, v5, v6, v7, v0, v1);                  \
        ROT8_STEP(v1, (x) + 7 * (xstep), (sp) + 7 * (sstep), v1, v2, v3, v4, v5, v6, v7, v0);                  \
    } while (0)

/* a_k += s_ * (row at p) where the sum k has a term at this step. */
#define TRI_FMA(cond, k, p)                                                                                    \
    do {                                                                                                       \
        if (cond) a##k = vl_fma(s_, vl_load(p), a##k);                                                         \
    } while (0)

/* All eight: a_k += s_ * (row at x + k xstep). */
#define FMA8(x, xstep)                                                                                         \
    do {                                                                                                       \
        TRI_FMA(1, 0, (x));                                                                                    \
        TRI_FMA(1, 1, (x) + (xstep));                                                                          \
        TRI_FMA(1, 2, (x) + 2 * (xstep));                                                                      \
        TRI_FMA(1, 3, (x) + 3 * (xstep));                                                                      \
        TRI_FMA(1, 4, (x) + 4 * (xstep));                                                                      \
        TRI_FMA(1, 5, (x) + 5 * (xstep));                                                                      \
        TRI_FMA(1, 6, (x) + 6 * (xstep));                                                                      \
        TRI_FMA(1, 7, (x) + 7 * (xstep));                                                                      \
    } while (0)

/* The eight sums' first terms d x_k (x_k = x + k xstep), which are also
 * the window's first rows v_k = x_k. */
#define ROT8_START(x, xstep, d)                                                                                \
    vl v0 = vl_load(x), v1 = vl_load((x) + (xstep)), v2 = vl_load((x) + 2 * (xstep)),                          \
        v3 = vl_load((x) + 3 * (xstep)), v4 = vl_load((x) + 4 * (xstep)), v5 = vl_load((x) + 5 * (xstep)),     \
        v6 = vl_load((x) + 6 * (xstep)), v7 = vl_load((x) + 7 * (xstep));                                      \
    vl a0 = (d) * v0, a1 = (d) * v1, a2 = (d) * v2, a3 = (d) * v3, a4 = (d) * v4, a5 = (d) * v5,               \
        a6 = (d) * v6, a7 = (d) * v7

#define STORE8(out, ostep)                                                                                     \
    do {                                                                                                       \
        vl_store((out), a0);                                                                                   \
        vl_store((out) + (ostep), a1);                                                                         \
        vl_store((out) + 2 * (ostep), a2);                                                                     \
        vl_store((out) + 3 * (ostep), a3);                                                                     \
        vl_store((out) + 4 * (ostep), a4);                                                                     \
        vl_store((out) + 5 * (ostep), a5);                                                                     \
        vl_store((out) + 6 * (ostep), a6);                                                                     \
        vl_store((out) + 7 * (ostep), a7);                                                                     \
    } while (0)

/* Forward rows t..t+7 of a full tile (t a multiple of 8, t + 8 <= T): out
 * row k (ostep floats apart) = d u[t+k] + sum_{l <= t+k} K[l] u[t+k-l] in
 * increasing l (lag_dot's sums), K's rows ks and u's us floats apart. */
static inline void rot8_forward(float *out, ptrdiff_t ostep, const float *Kt, ptrdiff_t ks, vl d, const float *u,
                                ptrdiff_t us, int t) {
    const float *ut = u + t * us;
    ROT8_START(ut, us, d);
    for (int l = 0; l < t; l += 8) /* every sum has lags l..l+7; v_m holds u[t + m - l] */
        ROT8_RIGHT(ut - l * us, -us, Kt + l * ks, ks);
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) { /* lag t + j: the sums k >= j, of u[k - j] */
        const vl s_ = vl_load(Kt + (t + j) * ks);
        TRI_FMA(j <= 0, 0, u - j * us);
        TRI_FMA(j <= 1, 1, u + (1 - j) * us);
        TRI_FMA(j <= 2, 2, u + (2 - j) * us);
        TRI_FMA(j <= 3, 3, u + (3 - j) * us);
        TRI_FMA(j <= 4, 4, u + (4 - j) * us);
        TRI_FMA(j <= 5, 5, u + (5 - j) * us);
        TRI_FMA(j <= 6, 6, u + (6 - j) * us);
        TRI_FMA(j <= 7, 7, u + (7 - j) * us);
    }
    STORE8(out, ostep);
}

/* Backward rows s..s+7 of a full tile (s + 8 <= T): out row k = d dy[s+k]
 * + sum_{l < T-s-k} K[l] dy[s+k+l] in increasing l (lag_dot's sums), K's
 * rows ks and dy's ys floats apart. */
static inline void rot8_backward(float *out, ptrdiff_t ostep, const float *Kt, ptrdiff_t ks, vl d,
                                 const float *dy, ptrdiff_t ys, int s, int T) {
    const float *ds = dy + s * ys;
    ROT8_START(ds, ys, d);
    const int nl = T - s - 8; /* the lags every sum has */
    int l = 0;
    for (; l + 8 <= nl; l += 8) { /* v_m holds dy[s + m + l]; the new rows are later ones */
        const float *x = ds + (l + 7) * ys, *k = Kt + l * ks;
        ROT8_STEP(v7, x, k, v0, v1, v2, v3, v4, v5, v6, v7);
        ROT8_STEP(v0, x + ys, k + ks, v1, v2, v3, v4, v5, v6, v7, v0);
        ROT8_STEP(v1, x + 2 * ys, k + 2 * ks, v2, v3, v4, v5, v6, v7, v0, v1);
        ROT8_STEP(v2, x + 3 * ys, k + 3 * ks, v3, v4, v5, v6, v7, v0, v1, v2);
        ROT8_STEP(v3, x + 4 * ys, k + 4 * ks, v4, v5, v6, v7, v0, v1, v2, v3);
        ROT8_STEP(v4, x + 5 * ys, k + 5 * ks, v5, v6, v7, v0, v1, v2, v3, v4);
        ROT8_STEP(v5, x + 6 * ys, k + 6 * ks, v6, v7, v0, v1, v2, v3, v4, v5);
        ROT8_STEP(v6, x + 7 * ys, k + 7 * ks, v7, v0, v1, v2, v3, v4, v5, v6);
    }
    for (; l < nl; l++) { /* the last nl % 8 of them, each row loaded */
        const vl s_ = vl_load(Kt + l * ks);
        FMA8(ds + l * ys, ys);
    }
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) { /* lag nl + j: the sums k <= 7 - j, of dy[T - 8 + j + k] */
        const vl s_ = vl_load(Kt + (nl + j) * ks);
        const int r = T - 8 + j;
        TRI_FMA(j <= 7, 0, dy + r * ys);
        TRI_FMA(j <= 6, 1, dy + (r + 1) * ys);
        TRI_FMA(j <= 5, 2, dy + (r + 2) * ys);
        TRI_FMA(j <= 4, 3, dy + (r + 3) * ys);
        TRI_FMA(j <= 3, 4, dy + (r + 4) * ys);
        TRI_FMA(j <= 2, 5, dy + (r + 5) * ys);
        TRI_FMA(j <= 1, 6, dy + (r + 6) * ys);
        TRI_FMA(j <= 0, 7, dy + (r + 7) * ys);
    }
    STORE8(out, ostep);
}

/* r[j] += f[j] in double (j < CBLK): a sequence's float sum joins the
 * channel's double sum over sequences. */
static inline void dk_add(double *restrict r, vl f) {
    float a[VL];
    vl_store(a, f);
#pragma omp simd
    for (int j = 0; j < VL; j++) r[j] += a[j];
}

/* A full tile's lag correlations of one sequence, added to dK:
 * dK[l E + j] += sum_{t = l}^{T-1} dy[t ys + j] u[(t - l) us + j] for l < T,
 * with dy and u at row 0 of the sequence and the tile's channels (rows ys
 * and us apart). Eight lags at a time, each a register summed over t in
 * increasing order (the same sums, term for term, as one lag at a time),
 * with the window of u rows in registers (ROT8_RIGHT). */
static void rot8_corr(double *dK, ptrdiff_t E, const float *dy, ptrdiff_t ys, const float *u, ptrdiff_t us, int T) {
    int L = 0;
    for (; L + 8 <= T; L += 8) {
        vl a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, a4 = {0}, a5 = {0}, a6 = {0}, a7 = {0};
#pragma GCC unroll 8
        for (int j = 0; j < 8; j++) { /* t = L + j: the lags L + k, k <= j, of u[j - k] */
            const vl s_ = vl_load(dy + (L + j) * ys);
            TRI_FMA(j >= 0, 0, u + j * us);
            TRI_FMA(j >= 1, 1, u + (j - 1) * us);
            TRI_FMA(j >= 2, 2, u + (j - 2) * us);
            TRI_FMA(j >= 3, 3, u + (j - 3) * us);
            TRI_FMA(j >= 4, 4, u + (j - 4) * us);
            TRI_FMA(j >= 5, 5, u + (j - 5) * us);
            TRI_FMA(j >= 6, 6, u + (j - 6) * us);
            TRI_FMA(j >= 7, 7, u + (j - 7) * us);
        }
        /* from t = L + 8 every lag has a term; v_m holds u[t - L - m] (the first step loads v0) */
        vl v0 = {0}, v1 = vl_load(u + 7 * us), v2 = vl_load(u + 6 * us), v3 = vl_load(u + 5 * us),
            v4 = vl_load(u + 4 * us), v5 = vl_load(u + 3 * us), v6 = vl_load(u + 2 * us), v7 = vl_load(u + us);
        int t = L + 8;
        for (; t + 8 <= T; t += 8) ROT8_RIGHT(u + (t - L) * us, us, dy + t * ys, ys);
        for (; t < T; t++) { /* the last (T - L) % 8 rows, each window row loaded */
            const vl s_ = vl_load(dy + t * ys);
            FMA8(u + (t - L) * us, -us);
        }
        dk_add(dK + L * E, a0);
        dk_add(dK + (L + 1) * E, a1);
        dk_add(dK + (L + 2) * E, a2);
        dk_add(dK + (L + 3) * E, a3);
        dk_add(dK + (L + 4) * E, a4);
        dk_add(dK + (L + 5) * E, a5);
        dk_add(dK + (L + 6) * E, a6);
        dk_add(dK + (L + 7) * E, a7);
    }
    for (; L < T; L++) { /* the last T % 8 lags one at a time */
        vl f0 = {0};
        for (int t = L; t < T; t++) f0 = vl_fma(vl_load(dy + t * ys), vl_load(u + (t - L) * us), f0);
        dk_add(dK + L * E, f0);
    }
}

/* rot8_corr for a partial tile of cb < CBLK channels, one lag at a time. */
static void lag_corr_part(double *dK, const float *dy, const float *u, ptrdiff_t E, int T, int cb) {
    for (int l = 0; l < T; l++)
        for (int j = 0; j < cb; j++) {
            float f = 0.0f;
            for (int t = l; t < T; t++) f = FM_FMA(dy[t * E + j], u[(t - l) * E + j], f);
            dK[l * E + j] += f;
        }
}

/* The calling thread's share of the E channels: tiles [lo, hi) of
 * CBLK channels in a contiguous range, channels [c_lo, c_hi). */
typedef struct {
    int lo, hi, c_lo, c_hi;
} thread_tiles;

static thread_tiles my_tiles(int E) {
    const int nblk = (E + CBLK - 1) / CBLK, id = par_thread_id(), nt = par_team_size();
    thread_tiles r;
    r.lo = (int)((long long)nblk * id / nt);
    r.hi = (int)((long long)nblk * (id + 1) / nt);
    r.c_lo = r.lo * CBLK;
    r.c_hi = r.hi * CBLK < E ? r.hi * CBLK : E;
    return r;
}

/* The width of tile blk: CBLK, or what is left of E for the last. */
static int tile_width(int blk, int E) { return E - blk * CBLK < CBLK ? E - blk * CBLK : CBLK; }

/* Copies rows r < T of a full tile, rows `step` floats apart, into t. */
static void tile_copy(float (*restrict t)[CBLK], const float *restrict x, ptrdiff_t step, int T) {
    for (int r = 0; r < T; r++) v16_store(t[r], v16_load(x + r * step));
}

/* One sequence's rows of a tile of cb channels: y[t] = D u[t] + lags
 * 0..t, the tile's K and u rows ks and us floats apart, y's E. Inlined per
 * call site, so the copies' constant steps become immediate offsets. */
static inline void rows_forward(float *y, ptrdiff_t E, const float *Kt, ptrdiff_t ks, const float *u, ptrdiff_t us,
                                const float *D, int T, int cb) {
    const int t8 = cb == CBLK ? T / 8 * 8 : 0; /* rows in whole groups of eight */
    for (int h = 0; h < CBLK && t8 > 0; h += VL) { /* VL channels at a time */
        const vl d = vl_load(D + h);
        for (int t = 0; t < t8; t += 8) rot8_forward(y + t * E + h, E, Kt + h, ks, d, u + h, us, t);
    }
    for (int t = t8; t < T; t++) lag_dot(y + t * E, D, Kt, ks, u + t * us, -us, t + 1, cb);
}

/* The gate of one sequence's rows, while its y is still in cache:
 * g[t] = y[t] z[t] (cb channels; rows of y and g E apart, of z ldz). */
static void rows_gate(float *restrict g, const float *restrict y, const float *restrict z, ptrdiff_t E, ptrdiff_t ldz,
                      int T, int cb) {
    for (int t = 0; t < T; t++)
#pragma omp simd
        for (int j = 0; j < cb; j++) g[t * E + j] = y[t * E + j] * z[t * ldz + j];
}

/* y[b,t] = D u[b,t], then lags 0, 1, ..., t in increasing order; then the
 * gate yg = y z. */
static void s4d_conv_forward_impl(float *y, float *yg, const float *u, const float *z, int ldz, const float *K,
                                  const float *D, int B, int T, int E) {
    if (B <= 0 || T <= 0 || E <= 0) return;
    const ptrdiff_t sE = E;
#pragma omp parallel if ((size_t)B * T * T * E / 2 >= PAR_MIN_WORK)
    {
        float kt[TCOPY][CBLK], ut[TCOPY][CBLK]; /* a full tile's K and u, T <= TCOPY */
        const thread_tiles my = my_tiles(E);
        for (int b = 0; b < B; b++) {
            for (int blk = my.lo; blk < my.hi; blk++) {
                const int c0 = blk * CBLK, cb = tile_width(blk, E);
                const size_t o = (size_t)b * T * E + c0;
                if (cb == CBLK && T <= TCOPY) {
                    tile_copy(kt, K + c0, sE, T);
                    tile_copy(ut, u + o, sE, T);
                    rows_forward(y + o, sE, kt[0], CBLK, ut[0], CBLK, D + c0, T, CBLK);
                } else {
                    rows_forward(y + o, sE, K + c0, sE, u + o, sE, D + c0, T, cb);
                }
            }
            if (z) { /* the sequence's rows of this thread's channels, in address order */
                const size_t o = (size_t)b * T * E + my.c_lo;
                rows_gate(yg + o, y + o, z + (size_t)b * T * ldz + my.c_lo, sE, ldz, T, my.c_hi - my.c_lo);
            }
        }
    }
}

void s4d_conv_forward(float *y, float *yg, const float *u, const float *z, int ldz, const float *K, const float *D,
                      int B, int T, int E) {
    uint64_t t0 = prof_start();
    s4d_conv_forward_impl(y, yg, u, z, ldz, K, D, B, T, E);
    prof_stop(PROF_S4D, t0);
}

/* One sequence's du rows and dK lags of a tile of cb channels (the
 * steps as in rows_forward; du's rows E apart, dK's lags E apart). */
static inline void rows_backward(float *du, double *dK, ptrdiff_t E, const float *Kt, ptrdiff_t ks, const float *dy,
                                 ptrdiff_t ys, const float *u, ptrdiff_t us, const float *D, int T, int cb) {
    /* du at s gathers lag l from dy[s + l] */
    const int s8 = cb == CBLK ? T / 8 * 8 : 0; /* rows in whole groups of eight */
    for (int h = 0; h < CBLK && s8 > 0; h += VL) { /* VL channels at a time */
        const vl d = vl_load(D + h);
        for (int s = 0; s < s8; s += 8) rot8_backward(du + s * E + h, E, Kt + h, ks, d, dy + h, ys, s, T);
    }
    for (int s = s8; s < T; s++) lag_dot(du + s * E, D, Kt, ks, dy + s * ys, ys, T - s, cb);
    /* the tile's lag correlations: dy[t] against u[t - l] */
    if (cb == CBLK)
        for (int h = 0; h < CBLK; h += VL) rot8_corr(dK + h, E, dy + h, ys, u + h, us, T);
    else
        lag_corr_part(dK, dy, u, E, T, cb);
}

/* The gate's backward for one sequence's rows: dy[t] = dyg[t] z[t] into
 * rows ys apart, and dz[t] = dyg[t] y[t] (cb channels; rows of dyg and y E
 * apart, of z and dz ldz). */
static void rows_dgate(float *restrict dy, ptrdiff_t ys, float *restrict dz, const float *restrict dyg,
                       const float *restrict z, const float *restrict y, ptrdiff_t E, ptrdiff_t ldz, int T, int cb) {
    for (int t = 0; t < T; t++)
#pragma omp simd
        for (int j = 0; j < cb; j++) {
            dy[t * ys + j] = dyg[t * E + j] * z[t * ldz + j];
            dz[t * ldz + j] = dyg[t * E + j] * y[t * E + j];
        }
}

/*
 *   dy[b,t,c]  = dyg[b,t,c] z[b,t,c]     dz[b,t,c] = dyg[b,t,c] y[b,t,c]
 *   du[b,s,c]  = D[c] dy[b,s,c] + sum_{l=0}^{T-1-s} K[l,c] dy[b,s+l,c]
 *   dK[l,c]    = sum_b sum_{t=l}^{T-1} dy[b,t,c] u[b,t-l,c]      (l < T)
 *   dD[c]     += sum_{b,t} dy[b,t,c] u[b,t,c]                   (= dK lag 0)
 * (without the gate, dy = dyg). dK and dD of a channel are reduced by the
 * one thread that owns its tile, in a fixed order: in float over t within a
 * sequence, then in double over the sequences b = 0..B-1.
 */
static void s4d_conv_backward_impl(float *du, float *dz, double *dK, float *dD, float *dy, const float *dyg,
                                   const float *z, int ldz, const float *y, const float *u, const float *K,
                                   const float *D, int B, int T, int E) {
    if (B <= 0 || T <= 0 || E <= 0) return;
    const ptrdiff_t sE = E;
#pragma omp parallel if ((size_t)B * T * T * E / 2 >= PAR_MIN_WORK)
    {
        float kt[TCOPY][CBLK], dyt[TCOPY][CBLK], ut[TCOPY][CBLK]; /* a full tile's K, dy, u */
        const thread_tiles my = my_tiles(E);
        for (int l = 0; l < T; l++) /* written: this thread's channels of every lag */
            for (int c = my.c_lo; c < my.c_hi; c++) dK[(size_t)l * E + c] = 0.0;
        for (int b = 0; b < B; b++) {
            const float *dyb = dyg; /* dy, (B, T, E) */
            if (z) { /* the gate's backward over the sequence's rows of this thread's channels, in
                      * address order; dy stays in cache for the tiles */
                const size_t o = (size_t)b * T * E + my.c_lo, oz = (size_t)b * T * ldz + my.c_lo;
                rows_dgate(dy + o, sE, dz + oz, dyg + o, z + oz, y + o, sE, ldz, T, my.c_hi - my.c_lo);
                dyb = dy;
            }
            for (int blk = my.lo; blk < my.hi; blk++) {
                const int c0 = blk * CBLK, cb = tile_width(blk, E);
                const size_t o = (size_t)b * T * E + c0;
                if (cb == CBLK && T <= TCOPY) {
                    tile_copy(kt, K + c0, sE, T);
                    tile_copy(dyt, dyb + o, sE, T);
                    tile_copy(ut, u + o, sE, T);
                    rows_backward(du + o, dK + c0, sE, kt[0], CBLK, dyt[0], CBLK, ut[0], CBLK, D + c0, T, CBLK);
                } else {
                    rows_backward(du + o, dK + c0, sE, K + c0, sE, dyb + o, sE, u + o, sE, D + c0, T, cb);
                }
            }
        }
        for (int c = my.c_lo; c < my.c_hi; c++) dD[c] += (float)dK[c];
    }
}

void s4d_conv_backward(float *du, float *dz, double *dK, float *dD, float *dy, const float *dyg, const float *z,
                       int ldz, const float *y, const float *u, const float *K, const float *D, int B, int T, int E) {
    uint64_t t0 = prof_start();
    s4d_conv_backward_impl(du, dz, dK, dD, dy, dyg, z, ldz, y, u, K, D, B, T, E);
    prof_stop(PROF_S4D, t0);
}
