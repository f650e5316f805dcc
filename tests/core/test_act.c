/*
 * test_act.c - activations (GELU, SiLU, softplus and the scalar helpers) and
 * LayerNorm, against double-precision twins written here and against central
 * finite differences of the float kernels.
 *
 * For every function:
 *   - forward vs the double twin, on random inputs plus edge points (0, the
 *     GELU saturation at |x| = 10, softplus's switch at 20, large negative
 *     inputs down to -1e4, huge inputs up to 1e20);
 *   - backward vs the twin's exact derivative, and backward ACCUMULATES (+=);
 *   - finite differences of L = sum r * out (test_dot) against backward;
 *   - in-place forward (out == inp) and the OpenMP path (n >= 2^15) equal
 *     bit for bit to the serial path with 1 and 2 threads.
 * Tolerances are stated at each check; every check prints its worst error.
 */
#include "core/act.h"
#include "core/layernorm.h"
#include "core/parallel.h"
#include "testlib.h"

#include <omp.h>

/* ------------------------------------------------------------------------ */
/* double twins                                                             */
/* ------------------------------------------------------------------------ */

static const double SQ2PI = 0.79788456080286535588; /* sqrt(2/pi) */

static double gelu_d(double x) { return 0.5 * x * (1.0 + tanh(SQ2PI * (x + 0.044715 * x * x * x))); }
static double gelu_grad_d(double x) {
    double t = tanh(SQ2PI * (x + 0.044715 * x * x * x));
    if (fabs(x) > 1e30) return x > 0 ? 1.0 : 0.0; /* x^3 overflows double */
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQ2PI * (1.0 + 3.0 * 0.044715 * x * x);
}
static double sigmoid_d(double x) { return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x)); }
static double silu_d(double x) { return x * sigmoid_d(x); }
static double silu_grad_d(double x) {
    double s = sigmoid_d(x);
    return s * (1.0 + x * (1.0 - s));
}
/* log(1 + e^x) without the branch at 20: exact formula in double */
static double softplus_d(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }
static double softplus_grad_d(double x) { return sigmoid_d(x); }

typedef struct {
    const char *name;
    void (*fwd)(float *, const float *, size_t);
    void (*bwd)(float *, const float *, const float *, size_t);
    double (*f)(double);
    double (*df)(double);
    float (*scalar)(float); /* the act_* helper with the same value, or NULL */
} act_fn;

static const act_fn acts[3] = {
    {"gelu", gelu_forward, gelu_backward, gelu_d, gelu_grad_d, NULL},
    {"silu", silu_forward, silu_backward, silu_d, silu_grad_d, act_silu},
    {"softplus", softplus_forward, softplus_backward, softplus_d, softplus_grad_d, act_softplus},
};

/* Edge points appended to the random inputs. */
static const float edges[] = {0.0f,   1e-3f,  -1e-3f, 1.0f,   -1.0f,  5.0f,    -5.0f,   9.9f,    -9.9f,
                              10.1f,  -10.1f, 19.5f,  19.99f, 20.0f,  20.01f,  20.5f,   25.0f,   -20.0f,
                              -30.0f, -50.0f, -80.0f, -87.0f, -88.0f, -100.0f, -1e4f,   1e4f,    1e20f,
                              -1e20f, 3e38f,  -3e38f};
#define NEDGE (sizeof edges / sizeof edges[0])

/* Compare got[i] with the double want[i]: |got - want| <= atol + rtol |want|.
 * Prints the worst ratio err / limit; returns 1 when all are within. */
static int close_d(const char *what, const float *got, const double *want, size_t n, double rtol, double atol,
                   const float *inp) {
    double worst = 0;
    size_t wi = 0, bad = 0;
    for (size_t i = 0; i < n; i++) {
        double lim = atol + rtol * fabs(want[i]);
        double err = fabs((double)got[i] - want[i]);
        double ratio = err / lim;
        if (!(ratio <= 1.0)) {
            if (bad < 3)
                printf("    %s[%zu] (x=%.9g): got %.9g want %.9g\n", what, i, inp ? inp[i] : NAN, got[i], want[i]);
            bad++;
            if (isnan(ratio)) ratio = INFINITY;
        }
        if (ratio > worst) worst = ratio, wi = i;
    }
    printf("    %-34s worst err/limit %.3g at [%zu] (rtol %g, atol %g)\n", what, worst, wi, rtol, atol);
    return bad == 0;
}

/* ------------------------------------------------------------------------ */
/* activations: values and exact derivatives                                */
/* ------------------------------------------------------------------------ */

static void check_act_vs_twin(const act_fn *a) {
    test_rng r = {test_seed() ^ 0xAC7};
    size_t nr = 2000, n = nr + NEDGE;
    float *x = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float));
    float *dout = malloc(n * sizeof(float)), *dinp = malloc(n * sizeof(float));
    double *want = malloc(n * sizeof(double)), *dwant = malloc(n * sizeof(double));
    test_fill_normal(&r, x, nr, 3.0f);
    memcpy(x + nr, edges, sizeof edges);
    test_fill_normal(&r, dout, n, 1.0f);
    for (size_t i = 0; i < n; i++) {
        want[i] = a->f(x[i]);
        dwant[i] = 0.5 + (double)dout[i] * a->df(x[i]); /* dinp starts at 0.5 */
        dinp[i] = 0.5f;
    }
    char what[64];
    a->fwd(out, x, n);
    /* forward: float transcendental + rounding of intermediate terms; GELU's
     * 1 + tanh cancels for negative x, hence the absolute part */
    snprintf(what, sizeof what, "%s forward vs double", a->name);
    CHECK(close_d(what, out, want, n, 1e-5, 1e-6, x), "%s forward", a->name);
    /* large-negative softplus keeps relative accuracy (not flushed to 0):
     * e^-30 ... e^-80 are normal floats */
    if (a->fwd == softplus_forward) {
        int ok = 1;
        for (size_t i = nr; i < n; i++)
            if (x[i] <= -20.0f && x[i] >= -80.0f) ok &= fabs(out[i] - want[i]) <= 1e-5 * want[i];
        CHECK(ok, "softplus must be relatively accurate down to -80");
    }
    a->bwd(dinp, dout, x, n);
    snprintf(what, sizeof what, "%s backward (+= 0.5) vs double", a->name);
    CHECK(close_d(what, dinp, dwant, n, 1e-5, 1e-6, x), "%s backward", a->name);
    int finite = 1;
    for (size_t i = 0; i < n; i++) finite &= isfinite(out[i]) && isfinite(dinp[i]);
    CHECK(finite, "%s: a finite input gave a non-finite output or gradient", a->name);

    /* the scalar helper agrees with the array kernel bit for bit */
    if (a->scalar) {
        int same = 1;
        for (size_t i = 0; i < n; i++) same &= a->scalar(x[i]) == out[i];
        CHECK(same, "act_%s differs from %s_forward", a->name, a->name);
    }
    /* in place */
    float *y = malloc(n * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    a->fwd(y, y, n);
    CHECK(!memcmp(y, out, n * sizeof(float)), "%s in-place forward differs", a->name);
    free(x), free(out), free(dout), free(dinp), free(want), free(dwant), free(y);
}

static void test_act_vs_twin(void) {
    for (int k = 0; k < 3; k++) check_act_vs_twin(&acts[k]);
}

static void test_sigmoid_helper(void) {
    const float xs[] = {0.0f, 1.0f, -1.0f, 20.0f, -20.0f, 88.0f, -88.0f, 100.0f, -100.0f, 1e4f, -1e4f, 3e38f, -3e38f};
    size_t n = sizeof xs / sizeof xs[0];
    float got[16];
    double want[16];
    for (size_t i = 0; i < n; i++) got[i] = act_sigmoid(xs[i]), want[i] = sigmoid_d(xs[i]);
    /* e^-88 and e^-100 are subnormal in float; the polynomial exp behind
     * act_sigmoid (core/fastmath.h) flushes subnormal results to 0, so
     * atol is FLT_MIN (1.2e-38): relative accuracy is checked everywhere
     * the result is a normal float. */
    CHECK(close_d("act_sigmoid vs double", got, want, n, 2e-7, 1.18e-38, xs), "act_sigmoid");
    CHECK(act_sigmoid(-1e4f) == 0.0f && act_sigmoid(1e4f) == 1.0f, "sigmoid saturates without NaN");
    CHECK(act_softplus(1e4f) == 1e4f && act_softplus(-1e4f) == 0.0f, "softplus(+-1e4)");
}

/* gelu_forward_keep / gelu_backward_kept (the MLP block's pair): the bits of
 * gelu_forward, and of gelu_backward into zeros (a -0 product included),
 * with the derivative kept in a buffer of its own and in place of the input;
 * gelu_backward_kept writes, so old values in dinp do not matter. Points
 * from -12 to 12 (both sides of the |x| > 10 saturation) and the edges. */
static void test_gelu_kept(void) {
    test_rng r = {test_seed() ^ 0x6E1};
    enum { N = 70000 }; /* above ACT_PAR_MIN: the parallel loop */
    float *x = malloc(N * sizeof(float)), *dout = malloc(N * sizeof(float)), *out0 = malloc(N * sizeof(float));
    float *out1 = malloc(N * sizeof(float)), *dg = malloc(N * sizeof(float)), *xi = malloc(N * sizeof(float));
    float *din0 = calloc(N, sizeof(float)), *din1 = malloc(N * sizeof(float)), *din2 = malloc(N * sizeof(float));
    for (size_t i = 0; i < N; i++) x[i] = 24.0f * test_rng_uniform(&r) - 12.0f;
    const float ends[] = {0.0f, -0.0f, 10.0f, -10.0f, 10.5f, -10.5f, 1e-30f, -1e-30f, 1e4f, -1e4f};
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) x[i] = ends[i];
    test_fill_normal(&r, dout, N, 1.0f);
    dout[N - 1] = -0.0f;
    for (size_t i = 0; i < N; i++) din1[i] = din2[i] = 7.0f; /* old values: written over */
    memcpy(xi, x, N * sizeof(float));

    gelu_forward(out0, x, N);
    gelu_backward(din0, dout, x, N);
    gelu_forward_keep(out1, dg, x, N);
    gelu_backward_kept(din1, dout, dg, N);
    CHECK(memcmp(out0, out1, N * sizeof(float)) == 0, "gelu_forward_keep: not the bits of gelu_forward");
    CHECK(memcmp(din0, din1, N * sizeof(float)) == 0, "gelu_backward_kept: not the bits of gelu_backward into 0");
    gelu_forward_keep(out1, xi, xi, N); /* in place: xi becomes GELU'(x) */
    gelu_backward_kept(din2, dout, xi, N);
    CHECK(memcmp(out0, out1, N * sizeof(float)) == 0, "gelu_forward_keep in place: out differs");
    CHECK(memcmp(dg, xi, N * sizeof(float)) == 0, "gelu_forward_keep in place: derivative differs");
    CHECK(memcmp(din0, din2, N * sizeof(float)) == 0, "gelu_backward_kept after in place: differs");
    free(x), free(dout), free(out0), free(out1), free(dg), free(xi), free(din0), free(din1), free(din2);
}

/* ------------------------------------------------------------------------ */
/* activations: finite differences                                          */
/* ------------------------------------------------------------------------ */

typedef struct {
    const act_fn *a;
    float *x, *out;
    const float *r;
    size_t n;
} act_ctx;

static double act_loss(void *p) {
    act_ctx *c = p;
    c->a->fwd(c->out, c->x, c->n);
    return test_dot(c->r, c->out, c->n);
}

/* FD tolerance per element, h = 1e-2:
 *   rounding: |r_i| 2^-22 |out_i| / (2h)   (two float outputs, half ulp each,
 *             with a factor 2 of slack)
 *   truncation: |r_i| h^2                    (h^2 f'''/6 with |f'''| <= 6)
 *   plus 2e-3 relative. */
static void check_act_fd(const act_fn *a, const float *pts, size_t n, int relative_only) {
    test_rng rr = {test_seed() ^ 0xFD};
    const double h = 1e-2;
    float *x = malloc(n * sizeof(float)), *out = malloc(n * sizeof(float)), *r = malloc(n * sizeof(float));
    float *num = malloc(n * sizeof(float)), *an = calloc(n, sizeof(float));
    memcpy(x, pts, n * sizeof(float));
    test_fill_normal(&rr, r, n, 1.0f);
    act_ctx c = {a, x, out, r, n};
    test_fd_grad(act_loss, &c, x, n, h, num);
    a->fwd(out, x, n);
    a->bwd(an, r, x, n); /* dL/dout = r */
    double worst = 0;
    size_t wi = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double tol = 2e-3 * fabs(an[i]);
        if (!relative_only) tol += fabs(r[i]) * (0x1.0p-22 * fabs(out[i]) / (2 * h) + h * h);
        double err = fabs((double)num[i] - an[i]), ratio = err / (tol > 0 ? tol : 1e-300);
        if (!(ratio <= 1.0)) {
            if (ok) printf("    %s x=%.9g: fd %.9g analytic %.9g\n", a->name, x[i], num[i], an[i]);
            ok = 0;
        }
        if (ratio > worst) worst = ratio, wi = i;
    }
    printf("    %-10s fd vs backward (%s, n=%zu): worst err/tol %.3g at x=%.6g\n", a->name,
           relative_only ? "relative 2e-3" : "mixed", n, worst, x[wi]);
    CHECK(ok, "%s finite differences", a->name);
    free(x), free(out), free(r), free(num), free(an);
}

static void test_act_fd(void) {
    test_rng r = {test_seed() ^ 0xF0};
    enum { NR = 300 };
    const float extra[] = {0.0f, 0.5f, -0.5f, 9.9f, -9.9f, 10.1f, -10.1f, 19.5f, 19.99f,
                           20.0f, 20.01f, 20.5f, -20.0f, -30.0f};
    float pts[NR + sizeof extra / sizeof extra[0]];
    size_t n = NR + sizeof extra / sizeof extra[0];
    test_fill_normal(&r, pts, NR, 3.0f);
    memcpy(pts + NR, extra, sizeof extra);
    for (int k = 0; k < 3; k++) check_act_fd(&acts[k], pts, n, 0);
    /* softplus far left: the gradient e^x is tiny but must be right to 0.2%.
     * One point per loss, or the double sum L could not resolve e^-80 next
     * to the other terms. */
    const float neg[] = {-20.0f, -25.0f, -30.0f, -40.0f, -50.0f, -60.0f, -70.0f, -80.0f};
    for (size_t i = 0; i < sizeof neg / sizeof neg[0]; i++) check_act_fd(&acts[2], neg + i, 1, 1);
}

/* The OpenMP path (n >= 2^15) gives the same bits as serial, for 1 and 2
 * threads, and still matches the twin. */
static void test_act_parallel(void) {
    test_rng r = {test_seed() ^ 0x9A};
    size_t n = ((size_t)1 << 16) + 3;
    float *x = malloc(n * sizeof(float)), *dout = malloc(n * sizeof(float));
    float *o1 = malloc(n * sizeof(float)), *o2 = malloc(n * sizeof(float));
    float *g1 = malloc(n * sizeof(float)), *g2 = malloc(n * sizeof(float));
    double *want = malloc(n * sizeof(double));
    test_fill_normal(&r, x, n, 4.0f);
    test_fill_normal(&r, dout, n, 1.0f);
    int saved = omp_get_max_threads();
    for (int k = 0; k < 3; k++) {
        const act_fn *a = &acts[k];
        omp_set_num_threads(1);
        a->fwd(o1, x, n);
        memset(g1, 0, n * sizeof(float));
        a->bwd(g1, dout, x, n);
        omp_set_num_threads(2);
        a->fwd(o2, x, n);
        memset(g2, 0, n * sizeof(float));
        a->bwd(g2, dout, x, n);
        CHECK(!memcmp(o1, o2, n * sizeof(float)) && !memcmp(g1, g2, n * sizeof(float)),
              "%s: 1 and 2 threads differ", a->name);
        for (size_t i = 0; i < n; i++) want[i] = a->f(x[i]);
        char what[64];
        snprintf(what, sizeof what, "%s forward n=2^16+3", a->name);
        CHECK(close_d(what, o2, want, n, 1e-5, 1e-6, x), "%s parallel forward", a->name);
    }
    omp_set_num_threads(saved);
    free(x), free(dout), free(o1), free(o2), free(g1), free(g2), free(want);
}

/* ------------------------------------------------------------------------ */
/* LayerNorm                                                                */
/* ------------------------------------------------------------------------ */

/* The double twin: forward (out, mean, rstd) and backward (overwrite). */
static void ln_twin(double *out, double *mean, double *rstd, const float *x, const float *w, const float *b, int N,
                    int C) {
    for (int i = 0; i < N; i++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[i * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[i * C + c] - m) * (x[i * C + c] - m);
        v /= C;
        double rs = 1.0 / sqrt(v + 1e-5);
        for (int c = 0; c < C; c++) out[i * C + c] = (x[i * C + c] - m) * rs * w[c] + b[c];
        mean[i] = m, rstd[i] = rs;
    }
}

static void ln_twin_backward(double *dx, double *dw, double *db, const float *dy, const float *x, const float *w,
                             int N, int C) {
    for (int c = 0; c < C; c++) dw[c] = db[c] = 0;
    for (int i = 0; i < N; i++) {
        double m = 0, v = 0;
        for (int c = 0; c < C; c++) m += x[i * C + c];
        m /= C;
        for (int c = 0; c < C; c++) v += (x[i * C + c] - m) * (x[i * C + c] - m);
        v /= C;
        double rs = 1.0 / sqrt(v + 1e-5), sg = 0, sgx = 0;
        for (int c = 0; c < C; c++) {
            double xh = (x[i * C + c] - m) * rs, g = (double)dy[i * C + c] * w[c];
            sg += g, sgx += g * xh;
            dw[c] += (double)dy[i * C + c] * xh;
            db[c] += dy[i * C + c];
        }
        for (int c = 0; c < C; c++) {
            double xh = (x[i * C + c] - m) * rs, g = (double)dy[i * C + c] * w[c];
            dx[i * C + c] = rs * (g - sg / C - xh * sgx / C);
        }
    }
}

static const int ln_shapes[][2] = {{1, 1}, {1, 7}, {5, 1}, {3, 8}, {4, 33}, {2, 64}, {17, 65}};
#define NLN (sizeof ln_shapes / sizeof ln_shapes[0])

static void test_layernorm_vs_twin(void) {
    test_rng r = {test_seed() ^ 0x1A};
    for (size_t s = 0; s < NLN; s++) {
        for (int offset = 0; offset < 2; offset++) {
            int N = ln_shapes[s][0], C = ln_shapes[s][1];
            size_t NC = (size_t)N * C;
            float *x = malloc(NC * sizeof(float)), *out = malloc(NC * sizeof(float));
            float *dy = malloc(NC * sizeof(float)), *dx = malloc(NC * sizeof(float));
            float *w = malloc(C * sizeof(float)), *b = malloc(C * sizeof(float));
            float *dw = malloc(C * sizeof(float)), *db = malloc(C * sizeof(float));
            float *mean = malloc(N * sizeof(float)), *rstd = malloc(N * sizeof(float));
            double *o_d = malloc(NC * sizeof(double)), *m_d = malloc(N * sizeof(double));
            double *r_d = malloc(N * sizeof(double)), *dx_d = malloc(NC * sizeof(double));
            double *dw_d = malloc(C * sizeof(double)), *db_d = malloc(C * sizeof(double));
            test_fill_normal(&r, x, NC, 1.0f);
            /* a large common offset: two-pass statistics must not lose the
             * variance (x itself is exact float; the twin sees the same x) */
            if (offset)
                for (size_t i = 0; i < NC; i++) x[i] += 300.0f;
            test_fill_normal(&r, w, C, 1.0f);
            test_fill_normal(&r, b, C, 1.0f);
            test_fill_normal(&r, dy, NC, 1.0f);
            for (size_t i = 0; i < NC; i++) dx[i] = 0.25f;
            for (int c = 0; c < C; c++) dw[c] = db[c] = 0.25f;
            layernorm_forward(out, mean, rstd, x, w, b, N, C);
            layernorm_backward(dx, dw, db, dy, x, w, mean, rstd, N, C);
            ln_twin(o_d, m_d, r_d, x, w, b, N, C);
            ln_twin_backward(dx_d, dw_d, db_d, dy, x, w, N, C);
            /* the += check: compare against twin + 0.25 */
            for (size_t i = 0; i < NC; i++) dx_d[i] += 0.25;
            for (int c = 0; c < C; c++) dw_d[c] += 0.25, db_d[c] += 0.25;
            char tag[64];
            snprintf(tag, sizeof tag, "N=%d C=%d%s", N, C, offset ? " +300" : "");
            printf("    %s\n", tag);
            /* float xhat: ~1e-6 relative of |x - mean| rstd; with offset 300,
             * x - mean loses log2(300) bits, hence the looser atol */
            double at = offset ? 2e-4 : 2e-5;
            CHECK(close_d("  out", out, o_d, NC, 1e-5, at, NULL), "%s out", tag);
            CHECK(close_d("  mean", mean, m_d, (size_t)N, 1e-6, 1e-6, NULL), "%s mean", tag);
            /* C = 1: var = 0 and rstd = 1/sqrt(eps) exactly */
            CHECK(close_d("  rstd", rstd, r_d, (size_t)N, 1e-5, 0, NULL), "%s rstd", tag);
            CHECK(close_d("  dinp (+= 0.25)", dx, dx_d, NC, 1e-4, at, NULL), "%s dinp", tag);
            CHECK(close_d("  dweight (+= 0.25)", dw, dw_d, (size_t)C, 1e-4, at * sqrt(N), NULL), "%s dweight", tag);
            CHECK(close_d("  dbias (+= 0.25)", db, db_d, (size_t)C, 1e-5, 1e-5, NULL), "%s dbias", tag);
            free(x), free(out), free(dy), free(dx), free(w), free(b), free(dw), free(db), free(mean), free(rstd);
            free(o_d), free(m_d), free(r_d), free(dx_d), free(dw_d), free(db_d);
        }
    }
}

typedef struct {
    float *x, *w, *b, *out, *mean, *rstd;
    const float *r;
    int N, C;
} ln_ctx;

static double ln_loss(void *p) {
    ln_ctx *c = p;
    layernorm_forward(c->out, c->mean, c->rstd, c->x, c->w, c->b, c->N, c->C);
    return test_dot(c->r, c->out, (size_t)c->N * c->C);
}

/* FD with h = 1e-3 (inputs ~ N(0,1)); tolerance |fd - an| <= 2e-3 + 1e-2 |an|:
 * rounding of the C outputs of a row is ~ sqrt(C) 6e-8 / 2e-3 ~ 2e-4. */
static void test_layernorm_fd(void) {
    test_rng r = {test_seed() ^ 0x1F};
    const int shapes[][2] = {{1, 1}, {1, 7}, {5, 1}, {3, 8}, {2, 33}, {4, 5}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int N = shapes[s][0], C = shapes[s][1];
        size_t NC = (size_t)N * C;
        float *x = malloc(NC * sizeof(float)), *out = malloc(NC * sizeof(float)), *rr = malloc(NC * sizeof(float));
        float *w = malloc(C * sizeof(float)), *b = malloc(C * sizeof(float));
        float *mean = malloc(N * sizeof(float)), *rstd = malloc(N * sizeof(float));
        float *dx = calloc(NC, sizeof(float)), *dw = calloc(C, sizeof(float)), *db = calloc(C, sizeof(float));
        float *num = malloc(NC * sizeof(float));
        test_fill_normal(&r, x, NC, 1.0f);
        test_fill_normal(&r, w, C, 1.0f);
        test_fill_normal(&r, b, C, 1.0f);
        test_fill_normal(&r, rr, NC, 1.0f);
        ln_ctx c = {x, w, b, out, mean, rstd, rr, N, C};
        layernorm_forward(out, mean, rstd, x, w, b, N, C);
        layernorm_backward(dx, dw, db, rr, x, w, mean, rstd, N, C);
        char what[64];
        snprintf(what, sizeof what, "N=%d C=%d dinp", N, C);
        test_fd_grad(ln_loss, &c, x, NC, 1e-3, num);
        CHECK(test_allclose(what, num, dx, NC, 1e-2, 2e-3), "%s fd", what);
        double worst = 0;
        for (size_t i = 0; i < NC; i++) worst = fmax(worst, fabs(num[i] - dx[i]));
        printf("    %-20s fd max |err| %.3g\n", what, worst);
        snprintf(what, sizeof what, "N=%d C=%d dweight", N, C);
        test_fd_grad(ln_loss, &c, w, (size_t)C, 1e-3, num);
        CHECK(test_allclose(what, num, dw, (size_t)C, 1e-2, 2e-3), "%s fd", what);
        worst = 0;
        for (int i = 0; i < C; i++) worst = fmax(worst, fabs(num[i] - dw[i]));
        printf("    %-20s fd max |err| %.3g\n", what, worst);
        snprintf(what, sizeof what, "N=%d C=%d dbias", N, C);
        test_fd_grad(ln_loss, &c, b, (size_t)C, 1e-3, num);
        CHECK(test_allclose(what, num, db, (size_t)C, 1e-2, 2e-3), "%s fd", what);
        worst = 0;
        for (int i = 0; i < C; i++) worst = fmax(worst, fabs(num[i] - db[i]));
        printf("    %-20s fd max |err| %.3g\n", what, worst);
        if (C == 1) {
            int zero = 1;
            for (size_t i = 0; i < NC; i++) zero &= dx[i] == 0.0f;
            CHECK(zero, "C = 1: out = bias, so dinp must be exactly 0");
        }
        free(x), free(out), free(rr), free(w), free(b), free(mean), free(rstd), free(dx), free(dw), free(db);
        free(num);
    }
}

/* Bit-identical results with 1 and 2 threads (sizes above the parallel
 * threshold, C not a multiple of the channel block), and NULL gradients
 * skip just that output. */
static void test_layernorm_threads(void) {
    test_rng r = {test_seed() ^ 0x27};
    int N = 300, C = 203;
    size_t NC = (size_t)N * C;
    float *x = malloc(NC * sizeof(float)), *dy = malloc(NC * sizeof(float)), *w = malloc(C * sizeof(float));
    float *b = malloc(C * sizeof(float));
    float *out[2], *mean[2], *rstd[2], *dx[2], *dw[2], *db[2];
    test_fill_normal(&r, x, NC, 2.0f);
    test_fill_normal(&r, dy, NC, 1.0f);
    test_fill_normal(&r, w, C, 1.0f);
    test_fill_normal(&r, b, C, 1.0f);
    int saved = omp_get_max_threads();
    for (int t = 0; t < 2; t++) {
        out[t] = malloc(NC * sizeof(float)), mean[t] = malloc(N * sizeof(float)), rstd[t] = malloc(N * sizeof(float));
        dx[t] = calloc(NC, sizeof(float)), dw[t] = calloc(C, sizeof(float)), db[t] = calloc(C, sizeof(float));
        omp_set_num_threads(t + 1);
        layernorm_forward(out[t], mean[t], rstd[t], x, w, b, N, C);
        layernorm_backward(dx[t], dw[t], db[t], dy, x, w, mean[t], rstd[t], N, C);
    }
    omp_set_num_threads(saved);
    CHECK(!memcmp(out[0], out[1], NC * sizeof(float)) && !memcmp(mean[0], mean[1], N * sizeof(float)) &&
              !memcmp(rstd[0], rstd[1], N * sizeof(float)),
          "forward differs between 1 and 2 threads");
    CHECK(!memcmp(dx[0], dx[1], NC * sizeof(float)), "dinp differs between 1 and 2 threads");
    CHECK(!memcmp(dw[0], dw[1], C * sizeof(float)), "dweight differs between 1 and 2 threads");
    CHECK(!memcmp(db[0], db[1], C * sizeof(float)), "dbias differs between 1 and 2 threads");

    /* NULL dinp: weight/bias gradients unchanged; NULL dweight/dbias: dinp unchanged */
    float *dw2 = calloc(C, sizeof(float)), *db2 = calloc(C, sizeof(float)), *dx2 = calloc(NC, sizeof(float));
    layernorm_backward(NULL, dw2, db2, dy, x, w, mean[0], rstd[0], N, C);
    layernorm_backward(dx2, NULL, NULL, dy, x, w, mean[0], rstd[0], N, C);
    CHECK(!memcmp(dw2, dw[0], C * sizeof(float)) && !memcmp(db2, db[0], C * sizeof(float)) &&
              !memcmp(dx2, dx[0], NC * sizeof(float)),
          "NULL gradient pointers must only skip that gradient");
    for (int t = 0; t < 2; t++) free(out[t]), free(mean[t]), free(rstd[t]), free(dx[t]), free(dw[t]), free(db[t]);
    free(x), free(dy), free(w), free(b), free(dw2), free(db2), free(dx2);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    par_set_min_work(0); /* small shapes must really run on 2 threads */
    TEST_RUN(test_act_vs_twin);
    TEST_RUN(test_sigmoid_helper);
    TEST_RUN(test_gelu_kept);
    TEST_RUN(test_act_fd);
    TEST_RUN(test_act_parallel);
    TEST_RUN(test_layernorm_vs_twin);
    TEST_RUN(test_layernorm_fd);
    TEST_RUN(test_layernorm_threads);
    return test_finish();
}
