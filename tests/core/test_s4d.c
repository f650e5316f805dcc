/*
 * test_s4d.c - tests of the S4D kernel and its causal convolution
 * (src/core/s4d.c).
 *
 *   - the kernel against a naive twin: the formula of s4d.h in double with
 *     <complex.h> and exp(dt A l) taken directly for every l, up to L = 300;
 *   - the convolution against a literal double loop, on odd shapes (E not a
 *     multiple of the 16-channel tile, T past the 256 rows copied, T < L);
 *   - the fused S4-Mamba gate against the convolution and the gate written
 *     out, bit for bit;
 *   - kernel + convolution against the equivalent recurrence: a complex
 *     diagonal state x_t = exp(dt A) x_{t-1} + u_t read out with
 *     y_t = 2 Re sum_n Ct_n x_t + D u_t, Ct = C (exp(dt A) - 1) / A;
 *   - central finite differences of log_dt, log_A_re, A_im, C (kernel) and
 *     u, K, D (convolution), loss L = sum r * out;
 *   - bitwise identical results for 1 and 2 OpenMP threads; the backward
 *     adds to the parameter gradients and dD, and writes du and dK.
 * Parameters are initialisation-like (S4D-Lin): log_A_re = log 0.5 (+ small
 * noise), A_im = pi n, C ~ N(0, 1) (re and im), log_dt log-uniform on
 * [log 1e-3, log 0.1], D ~ N(0, 1).
 */
#include "core/s4d.h"
#include "core/parallel.h"
#include "testlib.h"

#include <complex.h>
#include <omp.h>

static const double PI = 3.14159265358979323846;

typedef struct {
    int E, Nh, L;
    float *log_dt, *log_A_re, *A_im, *C; /* (E), (E, Nh), (E, Nh), (E, Nh, 2) */
    float *K, *r;                        /* (L, E) kernel and loss projection */
    double *rd;                          /* r in double: dK as the backward takes it */
} kparams;

static kparams kparams_new(int E, int Nh, int L, uint64_t seed) {
    kparams k = {E, Nh, L, 0, 0, 0, 0, 0, 0, 0};
    test_rng rng = {seed};
    size_t EN = (size_t)E * Nh;
    k.log_dt = malloc((size_t)E * sizeof(float));
    k.log_A_re = malloc(EN * sizeof(float));
    k.A_im = malloc(EN * sizeof(float));
    k.C = malloc(2 * EN * sizeof(float));
    k.K = malloc((size_t)E * L * sizeof(float));
    k.r = malloc((size_t)E * L * sizeof(float));
    test_fill_uniform(&rng, k.log_dt, (size_t)E, (float)log(1e-3), (float)log(0.1));
    for (int c = 0; c < E; c++)
        for (int n = 0; n < Nh; n++) {
            size_t i = (size_t)c * Nh + n;
            k.log_A_re[i] = (float)log(0.5) + 0.1f * test_rng_normal(&rng);
            k.A_im[i] = (float)(PI * n);
        }
    test_fill_normal(&rng, k.C, 2 * EN, 1.0f);
    test_fill_normal(&rng, k.r, (size_t)E * L, 1.0f);
    k.rd = malloc((size_t)E * L * sizeof(double));
    for (size_t i = 0; i < (size_t)E * L; i++) k.rd[i] = k.r[i];
    return k;
}

static void kparams_free(kparams *k) {
    free(k->log_dt); free(k->log_A_re); free(k->A_im); free(k->C); free(k->K); free(k->r); free(k->rd);
}

static void kernel_forward(kparams *k) {
    s4d_kernel_forward(k->K, k->log_dt, k->log_A_re, k->A_im, k->C, k->E, k->Nh, k->L);
}

/* Mode n of channel c in double: A, w = exp(dt A), Ct = C (w - 1) / A. */
static void naive_mode(const kparams *k, int c, int n, double complex *dtA, double complex *Ct) {
    size_t i = (size_t)c * k->Nh + n;
    double dt = exp((double)k->log_dt[c]);
    double complex A = -exp((double)k->log_A_re[i]) + I * (double)k->A_im[i];
    double complex C = (double)k->C[2 * i] + I * (double)k->C[2 * i + 1];
    *dtA = dt * A;
    *Ct = C * (cexp(*dtA) - 1.0) / A;
}

/* The kernel formula of s4d.h, literally, with exp(dt A l) taken directly. */
static void naive_kernel(double *K, const kparams *k) {
    for (int c = 0; c < k->E; c++)
        for (int l = 0; l < k->L; l++) {
            double complex s = 0;
            for (int n = 0; n < k->Nh; n++) {
                double complex dtA, Ct;
                naive_mode(k, c, n, &dtA, &Ct);
                s += Ct * cexp(dtA * (double)l);
            }
            K[(size_t)l * k->E + c] = 2.0 * creal(s);
        }
}

/* y[b,t,c] = sum_{l<=t} K[l,c] u[b,t-l,c] + D[c] u[b,t,c], literally. */
static void naive_conv(double *y, const float *u, const float *K, const float *D, int B, int T, int E) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < E; c++) {
                double s = (double)D[c] * u[((size_t)b * T + t) * E + c];
                for (int l = 0; l <= t; l++) s += (double)K[(size_t)l * E + c] * u[((size_t)b * T + t - l) * E + c];
                y[((size_t)b * T + t) * E + c] = s;
            }
}

/* The convolution's backward, literally (y is linear in u, K, D):
 *   du[b,s,c] = D[c] dy[b,s,c] + sum_{l <= T-1-s} K[l,c] dy[b,s+l,c]
 *   dK[l,c]   = sum_b sum_{t >= l} dy[b,t,c] u[b,t-l,c]   (l < T)
 *   dD[c]     = sum_{b,t} dy[b,t,c] u[b,t,c] */
static void naive_conv_backward(double *du, double *dK, double *dD, const float *dy, const float *u, const float *K,
                                const float *D, int B, int T, int E) {
    for (size_t i = 0; i < (size_t)E * T; i++) dK[i] = 0.0;
    for (int c = 0; c < E; c++) dD[c] = 0.0;
    for (int b = 0; b < B; b++)
        for (int s = 0; s < T; s++)
            for (int c = 0; c < E; c++) {
                size_t o = ((size_t)b * T + s) * E + c;
                double a = (double)D[c] * dy[o];
                for (int l = 0; s + l < T; l++) a += (double)K[(size_t)l * E + c] * dy[o + (size_t)l * E];
                du[o] = a;
                dD[c] += (double)dy[o] * u[o];
                for (int l = 0; l <= s; l++) dK[(size_t)l * E + c] += (double)dy[o] * u[o - (size_t)l * E];
            }
}

static float *to_float(const double *x, size_t n) {
    float *f = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) f[i] = (float)x[i];
    return f;
}

/* ---- naive twins ---- */

static void test_kernel_matches_naive(void) {
    const int cases[][3] = {{1, 1, 1}, {3, 8, 300}, {5, 3, 17}, {2, 8, 129}};
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
        int E = cases[s][0], Nh = cases[s][1], L = cases[s][2];
        kparams k = kparams_new(E, Nh, L, test_seed() + s);
        if (s == 1) { k.log_dt[0] = (float)log(1e-3); k.log_dt[1] = (float)log(0.1); } /* both ends */
        size_t n = (size_t)E * L;
        double *Kd = malloc(n * sizeof(double));
        kernel_forward(&k);
        naive_kernel(Kd, &k);
        float *Kf = to_float(Kd, n);
        double worst = 0, scale = 0;
        for (size_t i = 0; i < n; i++) {
            worst = fmax(worst, fabs(Kd[i] - k.K[i]));
            scale = fmax(scale, fabs(Kd[i]));
        }
        printf("  E%d Nh%d L%d: worst |K - naive| = %.3g (max |K| %.3g)\n", E, Nh, L, worst, scale);
        /* K is double rounded to float: 1e-6 relative plus 1e-6 of the
         * largest kernel value (the closed form and the power chain differ
         * only by double rounding) */
        CHECK(test_allclose("K", k.K, Kf, n, 1e-6, 1e-6 * scale), "E%d Nh%d L%d", E, Nh, L);
        free(Kd); free(Kf);
        kparams_free(&k);
    }
}

typedef struct {
    int B, T, E, L;
    float *u, *K, *D, *y, *r;
} cparams;

static cparams cparams_new(int B, int T, int E, int L, uint64_t seed) {
    cparams p = {B, T, E, L, 0, 0, 0, 0, 0};
    test_rng rng = {seed};
    size_t BTE = (size_t)B * T * E;
    p.u = malloc(BTE * sizeof(float));
    p.K = malloc((size_t)E * L * sizeof(float));
    p.D = malloc((size_t)E * sizeof(float));
    p.y = malloc(BTE * sizeof(float));
    p.r = malloc(BTE * sizeof(float));
    test_fill_normal(&rng, p.u, BTE, 1.0f);
    test_fill_normal(&rng, p.K, (size_t)E * L, 0.3f);
    test_fill_normal(&rng, p.D, (size_t)E, 1.0f);
    test_fill_normal(&rng, p.r, BTE, 1.0f);
    return p;
}
static void cparams_free(cparams *p) { free(p->u); free(p->K); free(p->D); free(p->y); free(p->r); }
static void conv_forward(cparams *p) { s4d_conv_forward(p->y, NULL, p->u, NULL, 0, p->K, p->D, p->B, p->T, p->E); }

static const int conv_cases[][4] = {
    {1, 1, 1, 1},      /* degenerate */
    {1, 5, 1, 9},      /* one channel, T < L */
    {2, 70, 19, 75},   /* a full 16-channel tile (copied) and a partial one (in place) */
    {3, 130, 33, 130}, /* three blocks, T not a multiple of the eight rows */
    {2, 81, 32, 81},   /* full tiles only, copied contiguous (T <= 256) */
    {1, 300, 18, 300}  /* T > 256: a full tile read in place, and a partial one */
};
#define NCONV (sizeof conv_cases / sizeof conv_cases[0])

static void test_conv_matches_naive(void) {
    for (size_t s = 0; s < NCONV; s++) {
        int B = conv_cases[s][0], T = conv_cases[s][1], E = conv_cases[s][2], L = conv_cases[s][3];
        cparams p = cparams_new(B, T, E, L, test_seed() + 10 + s);
        size_t n = (size_t)B * T * E;
        double *yd = malloc(n * sizeof(double));
        conv_forward(&p);
        naive_conv(yd, p.u, p.K, p.D, B, T, E);
        float *yf = to_float(yd, n);
        double worst = 0;
        for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(yd[i] - p.y[i]));
        printf("  B%d T%d E%d L%d: worst |y - naive| = %.3g\n", B, T, E, L, worst);
        /* float sums of up to 130 terms of size ~0.3: 1e-5 relative + 1e-5 */
        CHECK(test_allclose("y", p.y, yf, n, 1e-5, 1e-5), "B%d T%d E%d L%d", B, T, E, L);
        free(yd); free(yf);
        cparams_free(&p);
    }
}

/* The backward against its twin, for every shape of the forward's test (the
 * copied and the in-place tiles): du sums up to T products of a dy ~1 and a
 * K ~0.3, dK and dD up to B T products of two ~1 values, all in float
 * (dK, dD per sequence, then in double): 1e-5 relative to the sum of the
 * magnitudes, which sqrt(T) bounds here, plus 1e-4. */
static void test_conv_backward_matches_naive(void) {
    for (size_t s = 0; s < NCONV; s++) {
        int B = conv_cases[s][0], T = conv_cases[s][1], E = conv_cases[s][2], L = conv_cases[s][3];
        cparams p = cparams_new(B, T, E, L, test_seed() + 20 + s);
        size_t n = (size_t)B * T * E, nk = (size_t)E * T; /* dK: lags l < T */
        float *du = malloc(n * sizeof(float)), *dD = calloc((size_t)E, sizeof(float));
        double *dK = malloc(nk * sizeof(double));
        double *rdu = malloc(n * sizeof(double)), *rdK = malloc(nk * sizeof(double)), *rdD = malloc(E * sizeof(double));
        for (size_t i = 0; i < n; i++) du[i] = NAN; /* written, not added to */
        for (size_t i = 0; i < nk; i++) dK[i] = NAN;
        s4d_conv_backward(du, NULL, dK, dD, NULL, p.r, NULL, 0, NULL, p.u, p.K, p.D, B, T, E);
        naive_conv_backward(rdu, rdK, rdD, p.r, p.u, p.K, p.D, B, T, E);
        float *fdu = to_float(rdu, n), *fdK = to_float(rdK, nk), *fdD = to_float(rdD, (size_t)E), *gdK = to_float(dK, nk);
        double atol = 1e-4 + 1e-5 * sqrt((double)B * T);
        printf("  B%d T%d E%d L%d\n", B, T, E, L);
        CHECK(test_allclose("du", du, fdu, n, 1e-5, atol), "B%d T%d E%d L%d: du", B, T, E, L);
        CHECK(test_allclose("dK", gdK, fdK, nk, 1e-5, atol), "B%d T%d E%d L%d: dK", B, T, E, L);
        CHECK(test_allclose("dD", dD, fdD, (size_t)E, 1e-5, atol), "B%d T%d E%d L%d: dD", B, T, E, L);
        free(du), free(dK), free(dD), free(rdu), free(rdK), free(rdD), free(fdu), free(fdK), free(fdD), free(gdK);
        cparams_free(&p);
    }
}

/* The fused gate against the convolution alone plus the gate written out,
 * bit for bit, on every shape of the forward's test (copied tiles, tiles
 * read in place, partial tiles; dy through the scratch): yg = y z and, for
 * dyg, dy = dyg z, dz = dyg y, then du, dK, dD of the plain backward of dy.
 * z and dz are the z half of (B, T, 2E) rows whose x half must stay as it
 * was, and dz is written, not added to. */
static void test_conv_gate_matches_composition(void) {
    for (size_t s = 0; s < NCONV; s++) {
        int B = conv_cases[s][0], T = conv_cases[s][1], E = conv_cases[s][2], L = conv_cases[s][3];
        cparams p = cparams_new(B, T, E, L, test_seed() + 70 + s);
        test_rng rng = {test_seed() + 80 + s};
        size_t n = (size_t)B * T * E, nk = (size_t)E * T;
        float *xz = malloc(2 * n * sizeof(float)), *dxz = malloc(2 * n * sizeof(float));
        float *yg = malloc(n * sizeof(float)), *dyg = malloc(n * sizeof(float)), *dy = malloc(n * sizeof(float));
        float *y0 = malloc(n * sizeof(float)), *want = malloc(n * sizeof(float));
        float *du = malloc(n * sizeof(float)), *du0 = malloc(n * sizeof(float));
        float *dD = calloc((size_t)E, sizeof(float)), *dD0 = calloc((size_t)E, sizeof(float));
        double *dK = malloc(nk * sizeof(double)), *dK0 = malloc(nk * sizeof(double));
        test_fill_normal(&rng, xz, 2 * n, 1.0f);
        test_fill_normal(&rng, dyg, n, 1.0f);
        for (size_t i = 0; i < 2 * n; i++) dxz[i] = (i / E) % 2 ? NAN : -7.0f; /* z half NaN, x half -7 */
        const float *z = xz + E;
        /* forward: the plain convolution, then the gate by hand */
        s4d_conv_forward(y0, NULL, p.u, NULL, 0, p.K, p.D, B, T, E);
        s4d_conv_forward(p.y, yg, p.u, z, 2 * E, p.K, p.D, B, T, E);
        for (size_t i = 0; i < n; i++) want[i] = y0[i] * z[(i / E) * 2 * E + i % E];
        printf("  B%d T%d E%d\n", B, T, E);
        CHECK(!memcmp(p.y, y0, n * sizeof(float)), "B%d T%d E%d: y differs from the plain convolution's", B, T, E);
        CHECK(!memcmp(yg, want, n * sizeof(float)), "B%d T%d E%d: yg != y z", B, T, E);
        /* backward: dy = dyg z by hand into the plain backward */
        for (size_t i = 0; i < n; i++) want[i] = dyg[i] * z[(i / E) * 2 * E + i % E];
        s4d_conv_backward(du0, NULL, dK0, dD0, NULL, want, NULL, 0, NULL, p.u, p.K, p.D, B, T, E);
        s4d_conv_backward(du, dxz + E, dK, dD, dy, dyg, z, 2 * E, p.y, p.u, p.K, p.D, B, T, E);
        int dz_ok = 1, x_kept = 1;
        for (size_t i = 0; i < n; i++) {
            size_t r = i / E, c = i % E;
            dz_ok &= dxz[r * 2 * E + E + c] == dyg[i] * p.y[i];
            x_kept &= dxz[r * 2 * E + c] == -7.0f;
        }
        CHECK(dz_ok, "B%d T%d E%d: dz != dyg y (or not written)", B, T, E);
        CHECK(x_kept, "B%d T%d E%d: the x half of dxz was touched", B, T, E);
        CHECK(!memcmp(du, du0, n * sizeof(float)), "B%d T%d E%d: du differs", B, T, E);
        CHECK(!memcmp(dK, dK0, nk * sizeof(double)), "B%d T%d E%d: dK differs", B, T, E);
        CHECK(!memcmp(dD, dD0, (size_t)E * sizeof(float)), "B%d T%d E%d: dD differs", B, T, E);
        free(xz), free(dxz), free(yg), free(dyg), free(dy), free(y0), free(want), free(du), free(du0);
        free(dD), free(dD0), free(dK), free(dK0);
        cparams_free(&p);
    }
}

/* kernel + convolution == the complex diagonal recurrence (in double). */
static void test_kernel_equals_recurrence(void) {
    const int B = 2, T = 200, E = 5, Nh = 8;
    kparams k = kparams_new(E, Nh, T, test_seed() + 20);
    cparams p = cparams_new(B, T, E, T, test_seed() + 21);
    kernel_forward(&k);
    memcpy(p.K, k.K, (size_t)E * T * sizeof(float));
    conv_forward(&p);
    size_t n = (size_t)B * T * E;
    double *yr = malloc(n * sizeof(double));
    double complex *x = malloc((size_t)Nh * sizeof(double complex));
    double scale = 0;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < E; c++) {
            for (int m = 0; m < Nh; m++) x[m] = 0;
            for (int t = 0; t < T; t++) {
                size_t o = ((size_t)b * T + t) * E + c;
                double s = 0;
                for (int m = 0; m < Nh; m++) {
                    double complex dtA, Ct;
                    naive_mode(&k, c, m, &dtA, &Ct);
                    x[m] = cexp(dtA) * x[m] + (double)p.u[o];
                    s += 2.0 * creal(Ct * x[m]);
                }
                yr[o] = s + (double)p.D[c] * p.u[o];
                scale = fmax(scale, fabs(yr[o]));
            }
        }
    float *yf = to_float(yr, n);
    double worst = 0;
    for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs(yr[i] - p.y[i]));
    printf("  B%d T%d E%d Nh%d: worst |conv(K) - recurrence| = %.3g (max |y| %.3g)\n", B, T, E, Nh, worst, scale);
    /* float kernel and float sums over 200 lags: 1e-5 relative + 1e-5 max|y| */
    CHECK(test_allclose("y", p.y, yf, n, 1e-5, 1e-5 * scale), "kernel + conv differ from the recurrence");
    free(yr); free(yf); free(x);
    kparams_free(&k);
    cparams_free(&p);
}

/* ---- finite differences ---- */

static double kernel_loss(void *ctx) {
    kparams *k = ctx;
    kernel_forward(k);
    return test_dot(k->r, k->K, (size_t)k->E * k->L);
}

static double conv_loss(void *ctx) {
    cparams *p = ctx;
    conv_forward(p);
    return test_dot(p->r, p->y, (size_t)p->B * p->T * p->E);
}

static int fd_check(const char *what, test_loss_fn f, void *ctx, float *param, size_t n, const float *analytic,
                    double eps, double rtol, double atol) {
    float *num = malloc(n * sizeof(float));
    test_fd_grad(f, ctx, param, n, eps, num);
    double worst = 0, ratio = 0; /* ratio: worst error / its tolerance */
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)num[i] - analytic[i]);
        worst = fmax(worst, err);
        ratio = fmax(ratio, err / (atol + rtol * fabs((double)analytic[i])));
    }
    printf("    d%-8s worst |fd - analytic| = %.3g (eps %g), %.2f of tolerance\n", what, worst, eps, ratio);
    int ok = test_allclose(what, num, analytic, n, rtol, atol);
    free(num);
    return ok;
}

/* The kernel is smooth and K is float, so eps = 1e-3 in every parameter:
 * truncation O(eps^2 (dt l |A|)^3) stays ~1e-5 at L = 40, and float rounding
 * of L (~1e-7 |K| per term) divided by 2 eps is ~1e-5. Tolerance
 * 1e-3 |ana| + 1e-4. */
static void test_kernel_gradients_fd(void) {
    const int cases[][3] = {{1, 1, 1}, {2, 3, 40}, {3, 8, 24}};
    int saved = omp_get_max_threads();
    omp_set_num_threads(1); /* thousands of tiny calls: avoid thread wake-ups */
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
        int E = cases[s][0], Nh = cases[s][1], L = cases[s][2];
        kparams k = kparams_new(E, Nh, L, test_seed() + 30 + s);
        printf("  E%d Nh%d L%d\n", E, Nh, L);
        size_t EN = (size_t)E * Nh;
        float *g_dt = calloc((size_t)E, sizeof(float)), *g_re = calloc(EN, sizeof(float));
        float *g_im = calloc(EN, sizeof(float)), *g_C = calloc(2 * EN, sizeof(float));
        s4d_kernel_backward(g_dt, g_re, g_im, g_C, k.rd, k.log_dt, k.log_A_re, k.A_im, k.C, E, Nh, L);
        CHECK(fd_check("log_dt", kernel_loss, &k, k.log_dt, (size_t)E, g_dt, 1e-3, 1e-3, 1e-4), "case %zu", s);
        CHECK(fd_check("log_A_re", kernel_loss, &k, k.log_A_re, EN, g_re, 1e-3, 1e-3, 1e-4), "case %zu", s);
        CHECK(fd_check("A_im", kernel_loss, &k, k.A_im, EN, g_im, 1e-3, 1e-3, 1e-4), "case %zu", s);
        CHECK(fd_check("C", kernel_loss, &k, k.C, 2 * EN, g_C, 1e-3, 1e-3, 1e-4), "case %zu", s);
        free(g_dt); free(g_re); free(g_im); free(g_C);
        kparams_free(&k);
    }
    omp_set_num_threads(saved);
}

/* y is linear in u, K and D separately, so the differences have no
 * truncation error: eps = 0.1 and tolerance 1e-3 |ana| + 1e-4 (float
 * rounding of L ~1e-6, divided by 0.2). */
static void test_conv_gradients_fd(void) {
    const int cases[][4] = {{1, 1, 1, 1}, {2, 9, 3, 11}, {1, 70, 17, 70}};
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    for (size_t s = 0; s < sizeof cases / sizeof cases[0]; s++) {
        int B = cases[s][0], T = cases[s][1], E = cases[s][2], L = cases[s][3];
        cparams p = cparams_new(B, T, E, L, test_seed() + 40 + s);
        printf("  B%d T%d E%d L%d\n", B, T, E, L);
        size_t n = (size_t)B * T * E;
        float *g_u = calloc(n, sizeof(float)), *g_D = calloc((size_t)E, sizeof(float));
        double *g_Kd = calloc((size_t)E * L, sizeof(double)); /* lags >= T: 0, as their differences */
        s4d_conv_backward(g_u, NULL, g_Kd, g_D, NULL, p.r, NULL, 0, NULL, p.u, p.K, p.D, B, T, E);
        float *g_K = to_float(g_Kd, (size_t)E * L);
        CHECK(fd_check("u", conv_loss, &p, p.u, n, g_u, 0.1, 1e-3, 1e-4), "case %zu", s);
        CHECK(fd_check("K", conv_loss, &p, p.K, (size_t)E * L, g_K, 0.1, 1e-3, 1e-4), "case %zu", s);
        CHECK(fd_check("D", conv_loss, &p, p.D, (size_t)E, g_D, 0.1, 1e-3, 1e-4), "case %zu", s);
        free(g_u); free(g_K); free(g_Kd); free(g_D);
        cparams_free(&p);
    }
    omp_set_num_threads(saved);
}

/* ---- determinism and accumulation ---- */

typedef struct {
    float *K, *dt, *re, *im, *C; /* kernel outputs and gradients */
    float *y, *du, *dD;          /* conv outputs and gradients */
    double *dK;                  /* (T, E) */
} s4d_run;

static s4d_run run_all(kparams *k, cparams *p, const s4d_run *init) {
    size_t EN = (size_t)k->E * k->Nh, EL = (size_t)k->E * k->L, n = (size_t)p->B * p->T * p->E;
    size_t nk = (size_t)p->E * p->T;
    s4d_run o = {malloc(EL * 4), calloc((size_t)k->E, 4), calloc(EN, 4), calloc(EN, 4), calloc(2 * EN, 4),
                 malloc(n * 4), calloc(n, 4), calloc((size_t)p->E, 4), calloc(nk, 8)};
    if (init) {
        memcpy(o.dt, init->dt, (size_t)k->E * 4); memcpy(o.re, init->re, EN * 4); memcpy(o.im, init->im, EN * 4);
        memcpy(o.C, init->C, 2 * EN * 4); memcpy(o.du, init->du, n * 4);
        memcpy(o.dK, init->dK, nk * 8); memcpy(o.dD, init->dD, (size_t)p->E * 4);
    }
    s4d_kernel_forward(o.K, k->log_dt, k->log_A_re, k->A_im, k->C, k->E, k->Nh, k->L);
    s4d_kernel_backward(o.dt, o.re, o.im, o.C, k->rd, k->log_dt, k->log_A_re, k->A_im, k->C, k->E, k->Nh, k->L);
    s4d_conv_forward(o.y, NULL, p->u, NULL, 0, p->K, p->D, p->B, p->T, p->E);
    s4d_conv_backward(o.du, NULL, o.dK, o.dD, NULL, p->r, NULL, 0, NULL, p->u, p->K, p->D, p->B, p->T, p->E);
    return o;
}
static void run_free(s4d_run *o) {
    free(o->K); free(o->dt); free(o->re); free(o->im); free(o->C); free(o->y); free(o->du); free(o->dK); free(o->dD);
}

static void test_threads_bitwise(void) {
    const int B = 3, T = 150, E = 37, Nh = 8;
    kparams k = kparams_new(E, Nh, T, test_seed() + 50);
    cparams p = cparams_new(B, T, E, T, test_seed() + 51);
    size_t EN = (size_t)E * Nh, EL = (size_t)E * T, n = (size_t)B * T * E;
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    s4d_run a = run_all(&k, &p, NULL);
    omp_set_num_threads(2);
    s4d_run b = run_all(&k, &p, NULL);
    omp_set_num_threads(saved);
    CHECK(!memcmp(a.K, b.K, EL * 4), "K differs between 1 and 2 threads");
    CHECK(!memcmp(a.dt, b.dt, (size_t)E * 4), "dlog_dt differs");
    CHECK(!memcmp(a.re, b.re, EN * 4), "dlog_A_re differs");
    CHECK(!memcmp(a.im, b.im, EN * 4), "dA_im differs");
    CHECK(!memcmp(a.C, b.C, 2 * EN * 4), "dC differs");
    CHECK(!memcmp(a.y, b.y, n * 4), "conv y differs");
    CHECK(!memcmp(a.du, b.du, n * 4), "du differs");
    CHECK(!memcmp(a.dK, b.dK, EL * 8), "dK differs");
    CHECK(!memcmp(a.dD, b.dD, (size_t)E * 4), "dD differs");
    run_free(&a); run_free(&b);
    kparams_free(&k);
    cparams_free(&p);
}

static int accum_ok(const char *what, const float *got, const float *init, const float *fresh, size_t n) {
    float *want = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) want[i] = init[i] + fresh[i];
    int ok = test_allclose(what, got, want, n, 1e-5, 1e-5);
    free(want);
    return ok;
}

/* Into buffers of other values: every parameter gradient and dD add to
 * them; du and dK are written (the same bits as into zeros). */
static void test_backward_accumulates(void) {
    const int B = 2, T = 90, E = 19, Nh = 4; /* a full tile and a partial one */
    kparams k = kparams_new(E, Nh, T, test_seed() + 60);
    cparams p = cparams_new(B, T, E, T, test_seed() + 61);
    size_t EN = (size_t)E * Nh, n = (size_t)B * T * E;
    test_rng rng = {test_seed() + 62};
    s4d_run init = run_all(&k, &p, NULL); /* just for the buffers; refilled below */
    test_fill_normal(&rng, init.dt, (size_t)E, 1.0f);
    test_fill_normal(&rng, init.re, EN, 1.0f);
    test_fill_normal(&rng, init.im, EN, 1.0f);
    test_fill_normal(&rng, init.C, 2 * EN, 1.0f);
    test_fill_normal(&rng, init.du, n, 1.0f);
    for (size_t i = 0; i < (size_t)E * T; i++) init.dK[i] = test_rng_normal(&rng);
    test_fill_normal(&rng, init.dD, (size_t)E, 1.0f);
    s4d_run fresh = run_all(&k, &p, NULL), acc = run_all(&k, &p, &init);
    CHECK(accum_ok("dlog_dt", acc.dt, init.dt, fresh.dt, (size_t)E), "dlog_dt not accumulated");
    CHECK(accum_ok("dlog_A_re", acc.re, init.re, fresh.re, EN), "dlog_A_re not accumulated");
    CHECK(accum_ok("dA_im", acc.im, init.im, fresh.im, EN), "dA_im not accumulated");
    CHECK(accum_ok("dC", acc.C, init.C, fresh.C, 2 * EN), "dC not accumulated");
    CHECK(!memcmp(acc.du, fresh.du, n * sizeof(float)), "du not written: it depends on the buffer's old values");
    CHECK(!memcmp(acc.dK, fresh.dK, (size_t)E * T * sizeof(double)), "dK not written: it depends on old values");
    CHECK(accum_ok("dD", acc.dD, init.dD, fresh.dD, (size_t)E), "dD not accumulated");
    run_free(&init); run_free(&fresh); run_free(&acc);
    kparams_free(&k);
    cparams_free(&p);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    par_set_min_work(0); /* small shapes must really run on 2 threads */
    TEST_RUN(test_kernel_matches_naive);
    TEST_RUN(test_conv_matches_naive);
    TEST_RUN(test_conv_backward_matches_naive);
    TEST_RUN(test_conv_gate_matches_composition);
    TEST_RUN(test_kernel_equals_recurrence);
    TEST_RUN(test_kernel_gradients_fd);
    TEST_RUN(test_conv_gradients_fd);
    TEST_RUN(test_threads_bitwise);
    TEST_RUN(test_backward_accumulates);
    return test_finish();
}
