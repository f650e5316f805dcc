/*
 * blas.h - the one GEMM entry of iclplay, its naive twin, and thread control.
 *
 * Everything is row-major, like C arrays. blas_gemm computes
 *     C = alpha * op(A) * op(B) + beta * C
 * with op(A) of shape (M, K), op(B) of shape (K, N) and C of shape (M, N).
 * ta means A is stored as (K, M) and used transposed; tb likewise for B
 * (so a PyTorch Linear, out = x W^T with W (out, in), is tb = 1).
 * lda/ldb/ldc are the row strides of the stored matrices, in floats.
 * Degenerate shapes are handled: M, N or K of 0 (K = 0 scales C by beta).
 *
 * Threads: a large product is split over OpenMP's threads by blas_gemm
 * itself (OpenBLAS runs single-threaded); inside an OpenMP parallel region
 * it runs whole on the calling thread.
 */
#ifndef ICL_BLAS_H
#define ICL_BLAS_H

void blas_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
               int ldb, float beta, float *C, int ldc);

/* The plain-loop twin (accumulates in double): the test oracle. */
void gemm_naive(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda, const float *B,
                int ldb, float beta, float *C, int ldc);

/* Threads for the GEMMs and our OpenMP kernels (n >= 1). */
void blas_set_threads(int n);
int blas_get_threads(void);
/* Products of at least this many FLOPs (2 M N K) are split over the threads
 * (blas.c says why); 2e6 by default, a test hook like par_set_min_work. */
void blas_set_split_min(double flops);
/* Products split that way so far (for tests and benchmarks). */
long blas_split_count(void);
/* The kernel set OpenBLAS runs ("Haswell", "Cooperlake", ...). */
const char *blas_kernels(void);

#endif
