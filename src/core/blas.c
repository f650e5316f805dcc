/*
 * blas.c - the single GEMM entry point of iclplay, its naive twin, and the
 * thread-count knob shared by OpenBLAS and our OpenMP kernels.
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
 * What it is not: a general BLAS layer. There is no argument check that can
 * fail (kernels own their shapes); blas_gemm never allocates, and must never
 * be called inside an OpenMP parallel region (OpenBLAS has its own threads).
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

/* One number for both pools: OpenBLAS's pthreads for GEMMs, OpenMP's for our
 * elementwise/normalisation kernels. They never run at the same time (no
 * GEMM inside a parallel region), so they do not oversubscribe. */
void blas_set_threads(int n) {
    if (n < 1) n = 1;
    openblas_set_num_threads(n);
    omp_set_num_threads(n);
}

/* The OpenMP count: what our kernels will use; equal to OpenBLAS's once
 * blas_set_threads has been called. */
int blas_get_threads(void) { return omp_get_max_threads(); }

/* OpenBLAS picks its kernels per CPU when it loads, and OPENBLAS_CORETYPE
 * overrides the pick (this machine's environment sets Haswell, the AVX2
 * kernels, although OpenBLAS would choose its AVX-512 Cooperlake ones). */
const char *blas_kernels(void) {
    const char *n = openblas_get_corename();
    return n ? n : "unknown";
}
