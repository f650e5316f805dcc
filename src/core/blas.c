/*
 * blas.c - the single GEMM entry point of iclplay, its naive twin, and the
 * thread-count knob of the GEMMs and our OpenMP kernels.
 *
 * Conventions (see blas.h): row-major storage, C (M, N) = alpha op(A) op(B)
 * + beta C, with op(A) (M, K) and op(B) (K, N). With ta = 1, A is stored as
 * (K, M); with tb = 1, B is stored as (N, K). lda/ldb/ldc are row strides.
 *
 * What this file adds on top of cblas_sgemm:
 *   - degenerate shapes: M or N of 0 is a no-op; K = 0 (or alpha = 0) means
 *     C = beta C without reading A or B, and beta = 0 writes exact zeros even
 *     over NaN/Inf garbage (the BLAS rule "beta = 0: C need not be set");
 *   - leading dimensions: a stored matrix with a single row never reads its
 *     stride, so a caller-given 0 or 1 there is harmless and is raised to the
 *     row length to keep cblas's argument checker quiet. A stride that is
 *     really too short (more than one row, ld < row length) cannot come from
 *     a plain tensor; rather than let cblas print through xerbla (which would
 *     scribble over the TUI), such calls are served by the naive loop, which
 *     gives the same strided-read meaning.
 *
 *   - threads: a large product is split over OpenMP's threads here, and
 *     OpenBLAS itself runs single-threaded (why: above gemm_split_ways).
 *
 * What it is not: a general BLAS layer. There is no argument check that can
 * fail (kernels own their shapes); blas_gemm never allocates. Called inside
 * an OpenMP parallel region it runs whole on the calling thread.
 */
#include "blas.h"
#include "core/prof.h"

#include <cblas.h>
#include <omp.h>
#include <stddef.h>

/* ------------------------------------------------------------------------ */
/* helpers                                                                  */
/* ------------------------------------------------------------------------ */

/* C (M, N) <- beta * C; beta == 0 stores zeros (never 0 * NaN). */
static void scale_c(int M, int N, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * (size_t)ldc;
        if (beta == 0.0f)
            for (int j = 0; j < N; j++) c[j] = 0.0f;
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
}

/* The stride of a stored (rows, cols) matrix as cblas wants it: at least
 * max(1, cols). Returns -1 when the stride is genuinely too short. */
static int fix_ld(int rows, int cols, int ld) {
    int need = cols > 1 ? cols : 1;
    if (ld >= need) return ld;
    if (rows <= 1) return need; /* one row: the stride is never used */
    return -1;
}

/* ------------------------------------------------------------------------ */
/* GEMM                                                                     */
/* ------------------------------------------------------------------------ */

/* Threads. OpenBLAS's own pool is kept at one thread; blas_gemm spreads a
 * product over OpenMP's threads itself: each thread runs a single-threaded
 * sgemm on its own band of C's rows (or of its columns, when N is the longer
 * side), bands a multiple of GEMM_BAND long. Why, measured on this 2-core
 * machine (OpenBLAS 0.3.21's OpenMP build, see the Makefile; quiet machine):
 * narrow products do not speed up when OpenBLAS threads them, some slow
 * down: Mamba's x_proj (5120 x 40 x 256 and its two backward products) ran
 * at 0.8-1.1x of one thread, dt_proj (one side = dt_rank = 8) at
 * 0.35-0.76x, where square-ish products reach 1.6-1.8x. Against OpenBLAS's
 * threading, splitting every product here made the 2-thread
 * step faster in three alternating rounds of tests/bench/bench_step: at
 * `small` Transformer 1.15-1.21x, Mamba 1.11-1.17x, hybrid 1.10-1.17x; at
 * `medium` Mamba 1.11-1.21x, MambaFormer 1.11-1.20x, S4-Mamba 1.03-1.07x,
 * the Transformer level (0.88-1.11x). Splitting only the narrow products
 * gained about half as much.
 * Bands partition C, so there is no reduction; the split is fixed by the
 * shape and the thread count, so a thread count gives the same bits on
 * every run (across thread counts the rounding may differ, as it did inside
 * OpenBLAS). Products under gemm_split_min FLOPs stay whole on the calling
 * thread: a parallel region costs more than it saves there. */
#define GEMM_BAND 64
static double gemm_split_min = 2e6;
static long gemm_split_calls; /* products served by gemm_split (tests look) */

void blas_set_split_min(double flops) { gemm_split_min = flops; }
long blas_split_count(void) { return gemm_split_calls; }

/* How many bands (threads) the product gets: 1 = one sgemm call here. */
static int gemm_split_ways(int M, int N, int K) {
    if (omp_in_parallel()) return 1;
    int nt = omp_get_max_threads();
    if (nt < 2) return 1;
    if (2.0 * M * N * K < gemm_split_min) return 1;
    int len = M >= N ? M : N; /* the side that is cut into bands */
    int bands = (len + GEMM_BAND - 1) / GEMM_BAND;
    return bands < nt ? bands : nt;
}

/* The product in `ways` bands (from gemm_split_ways), one per thread. */
static void gemm_split(int ways, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                       const float *B, int ldb, float beta, float *C, int ldc) {
    const int rows = M >= N, len = rows ? M : N;
    /* band length: an equal share rounded up to GEMM_BAND */
    const int band = ((len + ways - 1) / ways + GEMM_BAND - 1) / GEMM_BAND * GEMM_BAND;
    gemm_split_calls++;
#pragma omp parallel for schedule(static) num_threads(ways)
    for (int w = 0; w < ways; w++) {
        int a0 = w * band, a1 = a0 + band < len ? a0 + band : len;
        if (a0 >= a1) continue;
        if (rows) /* rows a0..a1 of op(A) and of C */
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, a1 - a0, N,
                        K, alpha, ta ? A + a0 : A + (size_t)a0 * (size_t)lda, lda, B, ldb, beta,
                        C + (size_t)a0 * (size_t)ldc, ldc);
        else /* columns a0..a1 of op(B) and of C */
            cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, a1 - a0,
                        K, alpha, A, lda, tb ? B + (size_t)a0 * (size_t)ldb : B + a0, ldb, beta, C + a0, ldc);
    }
}

static void blas_gemm_impl(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        /* op(A) op(B) is empty or scaled away: only beta acts, A and B unread. */
        scale_c(M, N, beta, C, ldc);
        return;
    }
    /* stored shapes: A is (M, K) or (K, M); B is (K, N) or (N, K); C is (M, N) */
    int la = ta ? fix_ld(K, M, lda) : fix_ld(M, K, lda);
    int lb = tb ? fix_ld(N, K, ldb) : fix_ld(K, N, ldb);
    int lc = fix_ld(M, N, ldc);
    if (la < 0 || lb < 0 || lc < 0) {
        gemm_naive(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
    int ways = gemm_split_ways(M, N, K);
    if (ways > 1) {
        gemm_split(ways, ta, tb, M, N, K, alpha, A, la, B, lb, beta, C, lc);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha,
                A, la, B, lb, beta, C, lc);
}

void blas_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc) {
    uint64_t t0 = prof_start();
    blas_gemm_impl(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    prof_stop(PROF_GEMM, t0);
}

void gemm_naive(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    if (K <= 0 || alpha == 0.0f) {
        scale_c(M, N, beta, C, ldc);
        return;
    }
    for (int i = 0; i < M; i++) {
        for (int j = 0; j < N; j++) {
            double acc = 0.0;
            for (int k = 0; k < K; k++) {
                /* op(A)[i][k] and op(B)[k][j] through the stored layouts */
                float a = ta ? A[(size_t)k * (size_t)lda + (size_t)i] : A[(size_t)i * (size_t)lda + (size_t)k];
                float b = tb ? B[(size_t)j * (size_t)ldb + (size_t)k] : B[(size_t)k * (size_t)ldb + (size_t)j];
                acc += (double)a * (double)b;
            }
            float *c = C + (size_t)i * (size_t)ldc + (size_t)j;
            double prev = beta == 0.0f ? 0.0 : (double)beta * (double)*c;
            *c = (float)((double)alpha * acc + prev);
        }
    }
}

/* ------------------------------------------------------------------------ */
/* threads                                                                  */
/* ------------------------------------------------------------------------ */

/* One thread count for everything: OpenMP's. OpenBLAS itself is set to one
 * thread here, once, at load time, and nothing sets it again (blas_gemm
 * spreads products over OpenMP's threads itself, see gemm_split; with its
 * count at 1, OpenBLAS's OpenMP build never follows OpenMP's count). */
__attribute__((constructor)) static void blas_pool_single(void) {
    /* OpenBLAS's OpenMP build sets OpenMP's count too: keep the default */
    int n = omp_get_max_threads();
    openblas_set_num_threads(1);
    omp_set_num_threads(n);
}

void blas_set_threads(int n) { omp_set_num_threads(n < 1 ? 1 : n); }

/* The OpenMP count: what our kernels and GEMMs will use. */
int blas_get_threads(void) { return omp_get_max_threads(); }

/* OpenBLAS picks its kernels per CPU when it loads, and OPENBLAS_CORETYPE
 * overrides the pick (this machine's environment sets Haswell, the AVX2
 * kernels, although OpenBLAS would choose its AVX-512 Cooperlake ones). */
const char *blas_kernels(void) {
    const char *n = openblas_get_corename();
    return n ? n : "unknown";
}
