/*
 * test_blas.c - blas_gemm and gemm_naive against a double-precision oracle.
 *
 * The oracle below is written independently of blas.c: it forms op(A) and
 * op(B) explicitly as dense (M, K) and (K, N) double arrays and multiplies
 * them, with its own element-wise error bound
 *     |C - C_ref| <= 2 (K + 2) u (|alpha| sum_k |a_ik b_kj| + |beta c_ij|) + 1e-30,
 * u = 2^-24 (float rounding), i.e. the classic dot-product bound with a
 * factor 2 of slack. gemm_naive, which accumulates in double, must meet the
 * much tighter 1.05 u |C_ref| + 4 (K + 2) 2^-53 (...): one final rounding
 * (half an ulp is at most u |C|; 5% slack covers the oracle's own sums).
 * Every sweep prints the worst error relative to its bound.
 *
 * Covered: the four (ta, tb) cases; alpha/beta combinations including
 * beta = 0 over a NaN-filled C and alpha = 0; odd shapes (1x1x1, 7x13x5,
 * 1x64x3, 65x1x33, ...) and one big enough for OpenBLAS to thread; padded
 * leading dimensions with NaN in the padding (which must be neither read
 * into the result nor written); K = 0, M = 0, N = 0; 1 vs 2 threads.
 */
#include "core/blas.h"
#include "testlib.h"

#include <cblas.h>
#include <omp.h>

#define GEMM_U 0x1.0p-24

typedef struct {
    int ta, tb, M, N, K;
    int pa, pb, pc; /* extra floats of padding per stored row */
    float alpha, beta;
    int nan_c; /* fill C with NaN before the call (meaningful with beta == 0) */
} gemm_case;

/* stored shapes */
static int rows_a(const gemm_case *g) { return g->ta ? g->K : g->M; }
static int cols_a(const gemm_case *g) { return g->ta ? g->M : g->K; }
static int rows_b(const gemm_case *g) { return g->tb ? g->N : g->K; }
static int cols_b(const gemm_case *g) { return g->tb ? g->K : g->N; }

/* The oracle: dense op(A), op(B) in double, then the triple loop. Writes the
 * expected C into ref (M, N dense) and the error bound into bound. */
static void oracle(const gemm_case *g, const float *A, int lda, const float *B, int ldb, const float *C0, int ldc,
                   int tight, double *ref, double *bound) {
    int M = g->M, N = g->N, K = g->K;
    double *opa = malloc(sizeof(double) * (size_t)(M * K + 1));
    double *opb = malloc(sizeof(double) * (size_t)(K * N + 1));
    for (int i = 0; i < M; i++)
        for (int k = 0; k < K; k++) opa[i * K + k] = g->ta ? A[k * lda + i] : A[i * lda + k];
    for (int k = 0; k < K; k++)
        for (int j = 0; j < N; j++) opb[k * N + j] = g->tb ? B[j * ldb + k] : B[k * ldb + j];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0, sa = 0;
            for (int k = 0; k < K; k++) {
                s += opa[i * K + k] * opb[k * N + j];
                sa += fabs(opa[i * K + k] * opb[k * N + j]);
            }
            double c = g->beta == 0.0f ? 0.0 : (double)g->beta * C0[i * ldc + j];
            ref[i * N + j] = g->alpha * s + c;
            if (tight) /* double accumulation: only the final rounding to float */
                bound[i * N + j] = 1.05 * GEMM_U * fabs(ref[i * N + j]) +
                                   4.0 * (K + 2) * 0x1.0p-53 * (fabs(g->alpha) * sa + fabs(c)) + 1e-30;
            else
                bound[i * N + j] = 2.0 * (K + 2) * GEMM_U * (fabs(g->alpha) * sa + fabs(c)) + 1e-30;
        }
    free(opa);
    free(opb);
}

/* Runs one case through `fn`; returns the worst err/bound (> 1 or inf means
 * the case failed, and CHECK has already said so). */
typedef void (*gemm_fn)(int, int, int, int, int, float, const float *, int, const float *, int, float, float *,
                        int);

static double run_case(const char *name, gemm_fn fn, const gemm_case *g, test_rng *r) {
    int lda = cols_a(g) + g->pa, ldb = cols_b(g) + g->pb, ldc = g->N + g->pc;
    size_t na = (size_t)rows_a(g) * lda + 1, nb = (size_t)rows_b(g) * ldb + 1, nc = (size_t)g->M * ldc + 1;
    float *A = malloc(sizeof(float) * na), *B = malloc(sizeof(float) * nb);
    float *C = malloc(sizeof(float) * nc), *C0 = malloc(sizeof(float) * nc);
    double *ref = malloc(sizeof(double) * (size_t)(g->M * g->N + 1));
    double *bound = malloc(sizeof(double) * (size_t)(g->M * g->N + 1));
    /* NaN everywhere first, so any read of padding poisons the result */
    for (size_t i = 0; i < na; i++) A[i] = NAN;
    for (size_t i = 0; i < nb; i++) B[i] = NAN;
    for (size_t i = 0; i < nc; i++) C[i] = NAN;
    for (int i = 0; i < rows_a(g); i++) test_fill_normal(r, A + (size_t)i * lda, (size_t)cols_a(g), 1.0f);
    for (int i = 0; i < rows_b(g); i++) test_fill_normal(r, B + (size_t)i * ldb, (size_t)cols_b(g), 1.0f);
    if (!g->nan_c)
        for (int i = 0; i < g->M; i++) test_fill_normal(r, C + (size_t)i * ldc, (size_t)g->N, 1.0f);
    memcpy(C0, C, sizeof(float) * nc);
    oracle(g, A, lda, B, ldb, C0, ldc, fn == gemm_naive, ref, bound);

    fn(g->ta, g->tb, g->M, g->N, g->K, g->alpha, A, lda, B, ldb, g->beta, C, ldc);

    int ok = 1;
    double worst = 0;
    for (int i = 0; i < g->M; i++) {
        for (int j = 0; j < g->N; j++) {
            double got = C[(size_t)i * ldc + j], err = fabs(got - ref[i * g->N + j]);
            double ratio = err / bound[i * g->N + j];
            if (!(ratio <= 1.0)) {
                if (ok) printf("    %s C[%d][%d] = %.9g, expected %.9g\n", name, i, j, got, ref[i * g->N + j]);
                ok = 0;
                ratio = isnan(ratio) ? INFINITY : ratio;
            }
            if (ratio > worst) worst = ratio;
        }
        /* padding of C untouched (NaN stays NaN bit for bit) */
        for (int j = g->N; j < ldc; j++)
            if (memcmp(&C[(size_t)i * ldc + j], &C0[(size_t)i * ldc + j], sizeof(float))) {
                if (ok) printf("    %s wrote C padding at [%d][%d]\n", name, i, j);
                ok = 0;
            }
    }
    CHECK(ok, "%s ta=%d tb=%d M=%d N=%d K=%d alpha=%g beta=%g pads=%d,%d,%d nanC=%d worst err/bound %.3g", name,
          g->ta, g->tb, g->M, g->N, g->K, g->alpha, g->beta, g->pa, g->pb, g->pc, g->nan_c, worst);
    free(A), free(B), free(C), free(C0), free(ref), free(bound);
    return ok ? worst : INFINITY;
}

/* ------------------------------------------------------------------------ */

static const int shapes[][3] = {{1, 1, 1}, {7, 13, 5}, {1, 64, 3}, {65, 1, 33}, {3, 1, 1},
                                {1, 1, 17}, {16, 16, 16}, {33, 47, 70}};
static const float ab[][2] = {{1.0f, 0.0f}, {1.0f, 1.0f}, {0.5f, -2.0f}, {-1.5f, 0.25f}};

static void sweep(const char *name, gemm_fn fn) {
    test_rng r = {test_seed() ^ 0xB1A5};
    int n = 0, bad = 0;
    double worst = 0;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (size_t a = 0; a < sizeof ab / sizeof ab[0]; a++)
                for (int pad = 0; pad < 2; pad++) {
                    gemm_case g = {t >> 1, t & 1, shapes[s][0], shapes[s][1], shapes[s][2],
                                   pad * 3, pad * 5, pad * 2, ab[a][0], ab[a][1], 0};
                    n++;
                    double w = run_case(name, fn, &g, &r);
                    bad += !(w <= 1.0);
                    if (!(w <= worst)) worst = w;
                }
    printf("    %s: %d cases, %d bad, worst err/bound %.3g\n", name, n, bad, worst);
}

static void test_blas_vs_oracle(void) { sweep("blas_gemm", blas_gemm); }
static void test_naive_vs_oracle(void) { sweep("gemm_naive", gemm_naive); }

/* beta = 0 must overwrite NaN in C (not 0 * NaN); alpha = 0 scales C only. */
static void test_beta0_nan_and_alpha0(void) {
    test_rng r = {test_seed() ^ 0xBE7A};
    gemm_fn fns[2] = {blas_gemm, gemm_naive};
    const char *names[2] = {"blas_gemm", "gemm_naive"};
    for (int f = 0; f < 2; f++)
        for (int t = 0; t < 4; t++) {
            gemm_case g = {t >> 1, t & 1, 7, 13, 5, 0, 0, 0, 1.0f, 0.0f, 1};
            run_case(names[f], fns[f], &g, &r);
            gemm_case g2 = {t >> 1, t & 1, 65, 1, 33, 2, 0, 1, -0.5f, 0.0f, 1};
            run_case(names[f], fns[f], &g2, &r);
            gemm_case g3 = {t >> 1, t & 1, 5, 6, 7, 0, 0, 0, 0.0f, 0.5f, 0};
            run_case(names[f], fns[f], &g3, &r);
        }
}

/* K = 0: C = beta C (zeros when beta = 0 even over NaN); A, B never read.
 * M = 0 or N = 0: C untouched. */
static void test_degenerate(void) {
    gemm_fn fns[2] = {blas_gemm, gemm_naive};
    for (int f = 0; f < 2; f++) {
        float C[6], A[1] = {NAN}, B[1] = {NAN};
        for (int i = 0; i < 6; i++) C[i] = (float)(i + 1);
        fns[f](0, 0, 2, 3, 0, 1.0f, A, 0, B, 3, 2.0f, C, 3);
        int ok = 1;
        for (int i = 0; i < 6; i++) ok &= C[i] == 2.0f * (float)(i + 1);
        CHECK(ok, "fn %d: K=0 beta=2 must double C (C[0]=%g)", f, C[0]);

        for (int i = 0; i < 6; i++) C[i] = NAN;
        fns[f](1, 1, 2, 3, 0, 1.0f, A, 2, B, 0, 0.0f, C, 3);
        ok = 1;
        for (int i = 0; i < 6; i++) ok &= C[i] == 0.0f && !signbit(C[i]);
        CHECK(ok, "fn %d: K=0 beta=0 must zero a NaN C (C[0]=%g)", f, C[0]);

        for (int i = 0; i < 6; i++) C[i] = NAN;
        fns[f](0, 1, 2, 2, 0, 1.0f, A, 1, B, 1, 0.0f, C, 3); /* padded ldc: C[2], C[5] untouched */
        CHECK(C[0] == 0 && C[1] == 0 && isnan(C[2]) && C[3] == 0 && C[4] == 0 && isnan(C[5]),
              "fn %d: K=0 with ldc=3 > N=2 must zero only the (2,2) block", f);

        for (int i = 0; i < 6; i++) C[i] = (float)i;
        fns[f](0, 0, 0, 3, 4, 1.0f, A, 4, B, 3, 0.0f, C, 3);
        fns[f](0, 0, 2, 0, 4, 1.0f, A, 4, B, 0, 0.0f, C, 3);
        ok = 1;
        for (int i = 0; i < 6; i++) ok &= C[i] == (float)i;
        CHECK(ok, "fn %d: M=0 or N=0 must leave C untouched", f);
    }
}

/* A row vector with a nominal stride of 0 or 1: the stride is never used,
 * and blas_gemm must not complain (xerbla) or misread. */
static void test_single_row_strides(void) {
    test_rng r = {test_seed() ^ 0x51D};
    float A[9], B[9 * 4], C[4], Cn[4];
    test_fill_normal(&r, A, 9, 1.0f);
    test_fill_normal(&r, B, 36, 1.0f);
    for (int i = 0; i < 4; i++) C[i] = Cn[i] = 0;
    blas_gemm(0, 0, 1, 4, 9, 1.0f, A, 0, B, 4, 0.0f, C, 0);
    gemm_naive(0, 0, 1, 4, 9, 1.0f, A, 9, B, 4, 0.0f, Cn, 4);
    CHECK(test_allclose("row vector", C, Cn, 4, 1e-5, 1e-5), "M=1 with lda=ldc=0");
}

/* Results with 1 and 2 threads agree (within rounding; OpenBLAS may split K
 * differently, so bit equality is not promised) and thread count sticks. */
static void test_threads(void) {
    test_rng r = {test_seed() ^ 0x7E};
    int M = 96, N = 80, K = 300;
    float *A = malloc(sizeof(float) * M * K), *B = malloc(sizeof(float) * K * N);
    float *C1 = calloc((size_t)M * N, sizeof(float)), *C2 = calloc((size_t)M * N, sizeof(float));
    test_fill_normal(&r, A, (size_t)M * K, 1.0f);
    test_fill_normal(&r, B, (size_t)K * N, 1.0f);
    int saved = blas_get_threads();
    blas_set_threads(1);
    CHECK(blas_get_threads() == 1, "blas_get_threads() = %d after set(1)", blas_get_threads());
    blas_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C1, N);
    blas_set_threads(2);
    CHECK(blas_get_threads() == 2, "blas_get_threads() = %d after set(2)", blas_get_threads());
    CHECK(omp_get_max_threads() == 2, "omp threads %d", omp_get_max_threads());
    blas_gemm(0, 1, M, N, K, 1.0f, A, K, B, K, 0.0f, C2, N);
    blas_set_threads(0);
    CHECK(blas_get_threads() == 1, "set(0) must clamp to 1 (got %d)", blas_get_threads());
    blas_set_threads(saved);
    /* rtol 1e-5, atol 1e-4 (entries ~ sqrt(300) = 17) */
    CHECK(test_allclose("1 vs 2 threads", C1, C2, (size_t)M * N, 1e-5, 1e-4), "thread count changed the product");
    free(A), free(B), free(C1), free(C2);
}

/* A bigger product, large enough for OpenBLAS to use its threaded path. */
static void test_large(void) {
    test_rng r = {test_seed() ^ 0x1A6E};
    for (int t = 0; t < 4; t++) {
        gemm_case g = {t >> 1, t & 1, 130, 257, 96, 1, 2, 3, 0.75f, 0.5f, 0};
        run_case("blas_gemm large", blas_gemm, &g, &r);
    }
}

/* Products that blas_gemm splits into bands over two threads itself
 * (blas.c): narrow and wide shapes, every transposition, alpha/beta, padded
 * strides with NaN in the padding, C full of NaN under beta = 0 (a row or
 * column no band covered would stay NaN), bands that do not divide the long
 * side, the long side being M or N. The threshold is lowered so the shapes
 * can stay small. OpenBLAS's own pool stays at one thread throughout. */
static void test_split(void) {
    static const int shapes2[][3] = {{200, 8, 40}, {8, 200, 40}, {150, 130, 5}, {70, 3, 9}, {65, 1, 33},
                                     {3, 129, 64}, {300, 64, 300}, {130, 257, 96}};
    test_rng r = {test_seed() ^ 0x5B17};
    int saved = blas_get_threads();
    CHECK(openblas_get_num_threads() == 1, "OpenBLAS has %d threads at start", openblas_get_num_threads());
    blas_set_threads(2);
    blas_set_split_min(0);
    long before = blas_split_count();
    int n = 0, bad = 0;
    for (size_t s = 0; s < sizeof shapes2 / sizeof shapes2[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int v = 0; v < 3; v++) {
                gemm_case g = {t >> 1, t & 1, shapes2[s][0], shapes2[s][1], shapes2[s][2], v * 3, v * 2, v,
                               ab[v + 1][0], v == 0 ? 0.0f : ab[v + 1][1], v == 0};
                n++;
                bad += !(run_case("blas_gemm split", blas_gemm, &g, &r) <= 1.0);
            }
    long split = blas_split_count() - before;
    printf("    %d products, %ld split over 2 threads, %d bad\n", n, split, bad);
    CHECK(split == n, "only %ld of %d products took the split path", split, n);
    CHECK(openblas_get_num_threads() == 1, "OpenBLAS at %d threads", openblas_get_num_threads());
    /* one thread, a product inside a parallel region, or one below the
     * threshold: never split */
    blas_set_split_min(2e6);
    gemm_case small = {0, 1, 20, 8, 40, 0, 0, 0, 1.0f, 0.0f, 1};
    run_case("blas_gemm below the threshold", blas_gemm, &small, &r);
    blas_set_split_min(0);
    float A[6] = {1, 2, 3, 4, 5, 6}, B[6] = {1, 0, 0, 1, 1, 1}, C[2][4];
#pragma omp parallel num_threads(2)
    blas_gemm(0, 0, 2, 2, 3, 1.0f, A, 3, B, 2, 0.0f, C[omp_get_thread_num()], 2);
    for (int t = 0; t < 2; t++)
        CHECK(C[t][0] == 4 && C[t][1] == 5 && C[t][2] == 10 && C[t][3] == 11, "in a parallel region, thread %d", t);
    blas_set_threads(1);
    gemm_case one = {0, 1, 200, 8, 40, 0, 0, 0, 1.0f, 0.0f, 1};
    run_case("blas_gemm 1 thread", blas_gemm, &one, &r);
    CHECK(blas_split_count() - before == split, "a product below the threshold, in a region or on 1 thread was split");
    CHECK(openblas_get_num_threads() == 1, "OpenBLAS at %d threads after unsplit products", openblas_get_num_threads());
    blas_set_split_min(2e6);
    blas_set_threads(saved);
}

/* Keeping OpenBLAS at one thread (blas.c, at load time) must not change the
 * default thread count of everything else: OMP_NUM_THREADS, or every core
 * (OpenBLAS's OpenMP build sets OpenMP's count when its own is set). Runs
 * first, before anything sets a count. */
static void test_default_threads(void) {
    const char *env = getenv("OMP_NUM_THREADS");
    int want = env && atoi(env) > 0 ? atoi(env) : omp_get_num_procs();
    CHECK(blas_get_threads() == want, "default threads %d, expected %d", blas_get_threads(), want);
    CHECK(openblas_get_num_threads() == 1, "OpenBLAS has %d threads at start", openblas_get_num_threads());
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    TEST_RUN(test_default_threads);
    TEST_RUN(test_blas_vs_oracle);
    TEST_RUN(test_naive_vs_oracle);
    TEST_RUN(test_beta0_nan_and_alpha0);
    TEST_RUN(test_degenerate);
    TEST_RUN(test_single_row_strides);
    TEST_RUN(test_threads);
    TEST_RUN(test_large);
    TEST_RUN(test_split);
    return test_finish();
}
