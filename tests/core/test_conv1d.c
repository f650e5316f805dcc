/*
 * test_conv1d.c - Mamba's causal depthwise conv1d (src/core/conv1d.c)
 * against a naive double-precision twin, finite differences of every input
 * and weight, causality, dx written and dw accumulated, strided x/dx (ldx, lddx > C),
 * independence from the OpenMP thread count, and the fused conv + SiLU
 * pair (conv1d_silu_*) bit for bit against conv1d_* composed with act.h's
 * SiLU.
 *
 *   test_conv1d [--seed N] [--only NAME]
 */
#include "core/act.h"
#include "core/conv1d.h"
#include "core/parallel.h"
#include "testlib.h"

#include <omp.h>

/* ---- helpers ----------------------------------------------------------- */

/* ---- the naive twin (double), straight from the formula in conv1d.h ----- */

static void naive_forward(double *out, const float *x, int ldx, const float *w, const float *bias, int B, int T,
                          int C, int K) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                double s = bias ? bias[c] : 0.0;
                for (int k = 0; k < K; k++) {
                    int tt = t - K + 1 + k;
                    if (tt >= 0) s += (double)w[c * K + k] * x[((size_t)b * T + tt) * ldx + c];
                }
                out[((size_t)b * T + t) * C + c] = s;
            }
}

/* dx (B,T,C) dense, dw (C,K), dbias (C): += gradients of sum(dout * out) */
static void naive_backward(double *dx, double *dw, double *dbias, const float *dout, const float *x, int ldx,
                           const float *w, int B, int T, int C, int K) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int c = 0; c < C; c++) {
                double g = dout[((size_t)b * T + t) * C + c];
                dbias[c] += g;
                for (int k = 0; k < K; k++) {
                    int tt = t - K + 1 + k;
                    if (tt < 0) continue;
                    dx[((size_t)b * T + tt) * C + c] += g * w[c * K + k];
                    dw[c * K + k] += g * x[((size_t)b * T + tt) * ldx + c];
                }
            }
}

/* ---- tests --------------------------------------------------------------- */

typedef struct { int B, T, C, K, ldx, lddx, has_bias; } shape;

static const shape shapes[] = {
    {1, 1, 1, 4, 1, 1, 1},      /* B = T = C = 1 */
    {2, 37, 13, 4, 13, 13, 1},  /* Mamba's K, odd T, C not a multiple of 8 */
    {2, 37, 13, 4, 29, 17, 1},  /* x and dx strided (ldx, lddx > C) */
    {3, 3, 70, 6, 75, 70, 1},   /* K > T; C spans two 64-channel blocks */
    {2, 3, 20, 4, 24, 20, 1},   /* K = 4 > T: every row an edge row, both ends */
    {1, 5, 3, 1, 3, 3, 0},      /* K = 1, no bias */
    {2, 2, 5, 9, 10, 12, 0},    /* K much larger than T, no bias */
    {4, 41, 130, 4, 260, 130, 1}, /* Mamba-like: x half of (B, T, 2E) */
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

/* Kernel vs twin. Tolerances: out and dx sum at most K float products
 * (1e-6 abs + 1e-5 rel); dw and dbias sum T float products per sequence in
 * float, then the B sequences in double (1e-5 abs + 1e-5 rel). */
static void test_matches_naive(void) {
    test_rng rng = {test_seed() ^ 0xC0};
    for (size_t si = 0; si < NSHAPES; si++) {
        shape s = shapes[si];
        size_t rows = (size_t)s.B * s.T;
        float *x = test_falloc(rows * s.ldx), *out = test_falloc(rows * s.C), *w = test_falloc((size_t)s.C * s.K);
        float *bias = s.has_bias ? test_falloc(s.C) : NULL, *dout = test_falloc(rows * s.C);
        float *dx = test_falloc(rows * s.lddx), *dw = test_falloc((size_t)s.C * s.K), *dbias = test_falloc(s.C);
        double *rout = test_dalloc(rows * s.C), *rdx = test_dalloc(rows * s.C), *rdw = test_dalloc((size_t)s.C * s.K);
        double *rdbias = test_dalloc(s.C);
        test_fill_normal(&rng, x, rows * s.ldx, 1.0f);
        test_fill_normal(&rng, w, (size_t)s.C * s.K, 0.5f);
        if (bias) test_fill_normal(&rng, bias, s.C, 0.5f);
        test_fill_normal(&rng, dout, rows * s.C, 1.0f);
        /* a sentinel in dx's padding columns: the kernel must not touch them */
        for (size_t i = 0; i < rows * s.lddx; i++) dx[i] = (i % s.lddx < (size_t)s.C) ? 0.0f : 7.0f;

        printf("  B=%d T=%d C=%d K=%d ldx=%d lddx=%d bias=%s\n", s.B, s.T, s.C, s.K, s.ldx, s.lddx,
               bias ? "yes" : "NULL");
        conv1d_forward(out, x, s.ldx, w, bias, s.B, s.T, s.C, s.K);
        conv1d_backward(dx, s.lddx, dw, dbias, dout, x, s.ldx, w, s.B, s.T, s.C, s.K);
        naive_forward(rout, x, s.ldx, w, bias, s.B, s.T, s.C, s.K);
        naive_backward(rdx, rdw, rdbias, dout, x, s.ldx, w, s.B, s.T, s.C, s.K);
        CHECK(test_close_to_ref("out", out, s.C, rout, NULL, s.C, rows, s.C, 1e-5, 1e-6), "shape %zu", si);
        CHECK(test_close_to_ref("dx", dx, s.lddx, rdx, NULL, s.C, rows, s.C, 1e-5, 1e-6), "shape %zu", si);
        CHECK(test_close_to_ref("dw", dw, s.K, rdw, NULL, s.K, s.C, s.K, 1e-5, 1e-5), "shape %zu", si);
        CHECK(test_close_to_ref("dbias", dbias, 1, rdbias, NULL, 1, s.C, 1, 1e-5, 1e-5), "shape %zu", si);
        int pad_ok = 1;
        for (size_t i = 0; i < rows * s.lddx; i++)
            if (i % s.lddx >= (size_t)s.C) pad_ok &= (dx[i] == 7.0f);
        CHECK(pad_ok, "shape %zu: dx written outside its C columns", si);

        /* dbias = NULL is allowed and must leave dx and dw as before */
        float *dx2 = test_falloc(rows * s.lddx), *dw2 = test_falloc((size_t)s.C * s.K);
        for (size_t i = 0; i < rows * s.lddx; i++) dx2[i] = (i % s.lddx < (size_t)s.C) ? 0.0f : 7.0f;
        conv1d_backward(dx2, s.lddx, dw2, NULL, dout, x, s.ldx, w, s.B, s.T, s.C, s.K);
        CHECK(!memcmp(dx, dx2, rows * s.lddx * sizeof(float)) && !memcmp(dw, dw2, (size_t)s.C * s.K * sizeof(float)),
              "shape %zu: dbias = NULL changed dx or dw", si);
        free(dx2), free(dw2);
        free(x), free(out), free(w), free(bias), free(dout), free(dx), free(dw), free(dbias);
        free(rout), free(rdx), free(rdw), free(rdbias);
    }
}

typedef struct {
    float *x, *w, *bias, *out, *r;
    int ldx, B, T, C, K;
} fd_ctx;

static double fd_loss(void *p) {
    fd_ctx *c = p;
    conv1d_forward(c->out, c->x, c->ldx, c->w, c->bias, c->B, c->T, c->C, c->K);
    return test_dot(c->r, c->out, (size_t)c->B * c->T * c->C);
}

/* dx, dw, dbias against central differences of L = sum r*out (every
 * element; x includes its padding columns, whose gradient must be 0).
 * L is linear in each parameter, so the only error is float rounding of
 * out (~1e-7 relative) amplified by 1/(2 eps): eps = 1e-2, tolerance
 * 2e-4 abs + 1e-3 rel. */
static void test_fd(void) {
    const shape fs[] = {{2, 6, 5, 4, 7, 5, 1}, {1, 3, 2, 5, 2, 2, 1}};
    test_rng rng = {test_seed() ^ 0xFD1};
    for (size_t si = 0; si < 2; si++) {
        shape s = fs[si];
        size_t rows = (size_t)s.B * s.T, nx = rows * s.ldx, nw = (size_t)s.C * s.K;
        fd_ctx c = {test_falloc(nx), test_falloc(nw), test_falloc(s.C), test_falloc(rows * s.C), test_falloc(rows * s.C),
                    s.ldx, s.B, s.T, s.C, s.K};
        float *dx = test_falloc(nx), *dw = test_falloc(nw), *dbias = test_falloc(s.C);
        float *nxg = test_falloc(nx), *nwg = test_falloc(nw), *nbg = test_falloc(s.C);
        test_fill_normal(&rng, c.x, nx, 1.0f);
        test_fill_normal(&rng, c.w, nw, 0.5f);
        test_fill_normal(&rng, c.bias, s.C, 0.5f);
        test_fill_normal(&rng, c.r, rows * s.C, 1.0f);
        /* dx with lddx = ldx so it lines up with x, padding columns included */
        conv1d_backward(dx, s.ldx, dw, dbias, c.r, c.x, s.ldx, c.w, s.B, s.T, s.C, s.K);
        test_fd_grad(fd_loss, &c, c.x, nx, 1e-2, nxg);
        test_fd_grad(fd_loss, &c, c.w, nw, 1e-2, nwg);
        test_fd_grad(fd_loss, &c, c.bias, s.C, 1e-2, nbg);
        double wx = 0, ww = 0, wb = 0;
        for (size_t i = 0; i < nx; i++) wx = fmax(wx, fabs((double)dx[i] - nxg[i]));
        for (size_t i = 0; i < nw; i++) ww = fmax(ww, fabs((double)dw[i] - nwg[i]));
        for (size_t i = 0; i < (size_t)s.C; i++) wb = fmax(wb, fabs((double)dbias[i] - nbg[i]));
        printf("  B=%d T=%d C=%d K=%d ldx=%d: max|analytic - numeric| dx %.3g, dw %.3g, dbias %.3g\n", s.B, s.T,
               s.C, s.K, s.ldx, wx, ww, wb);
        CHECK(test_allclose("dx vs fd", dx, nxg, nx, 1e-3, 2e-4), "shape %zu", si);
        CHECK(test_allclose("dw vs fd", dw, nwg, nw, 1e-3, 2e-4), "shape %zu", si);
        CHECK(test_allclose("dbias vs fd", dbias, nbg, s.C, 1e-3, 2e-4), "shape %zu", si);
        free(c.x), free(c.w), free(c.bias), free(c.out), free(c.r);
        free(dx), free(dw), free(dbias), free(nxg), free(nwg), free(nbg);
    }
}

/* out[t] must not depend on x[t' > t]: changing x after t0 leaves
 * out[t <= t0] bit-identical (and does change later outputs). */
static void test_causality(void) {
    const int B = 2, T = 10, C = 9, K = 4, t0 = 3;
    size_t rows = (size_t)B * T;
    test_rng rng = {test_seed() ^ 0xCA};
    float *x = test_falloc(rows * C), *w = test_falloc((size_t)C * K), *bias = test_falloc(C);
    float *o1 = test_falloc(rows * C), *o2 = test_falloc(rows * C);
    test_fill_normal(&rng, x, rows * C, 1.0f);
    test_fill_normal(&rng, w, (size_t)C * K, 0.5f);
    test_fill_normal(&rng, bias, C, 0.5f);
    conv1d_forward(o1, x, C, w, bias, B, T, C, K);
    for (int b = 0; b < B; b++)
        for (int t = t0 + 1; t < T; t++)
            for (int c = 0; c < C; c++) x[((size_t)b * T + t) * C + c] += 3.0f;
    conv1d_forward(o2, x, C, w, bias, B, T, C, K);
    int past_same = 1, future_changed = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            int same = !memcmp(o1 + ((size_t)b * T + t) * C, o2 + ((size_t)b * T + t) * C, C * sizeof(float));
            if (t <= t0) past_same &= same;
            else future_changed |= !same;
        }
    CHECK(past_same, "out[t <= %d] changed when only x after t0 changed", t0);
    CHECK(future_changed, "out after t0 did not change (the test would be vacuous)");
    free(x), free(w), free(bias), free(o1), free(o2);
}

/* dx is written: a second call, or a call into a buffer of other values,
 * gives the same bits as one call into zeros, and the padding columns of dx
 * (lddx > C) keep their values. dw and dbias accumulate: twice from zero
 * gives 2x, and from a non-zero start, start + gradient (summed fresh and
 * added once: exact up to that one add). */
static void test_writes_dx_accumulates_dw(void) {
    const shape s = {2, 7, 11, 4, 15, 13, 1};
    size_t rows = (size_t)s.B * s.T, nx = rows * s.ldx, ndx = rows * s.lddx, nw = (size_t)s.C * s.K;
    test_rng rng = {test_seed() ^ 0xACC};
    float *x = test_falloc(nx), *w = test_falloc(nw), *dout = test_falloc(rows * s.C);
    float *dx[3], *dw[3], *db[3];
    for (int r = 0; r < 3; r++) dx[r] = test_falloc(ndx), dw[r] = test_falloc(nw), db[r] = test_falloc(s.C);
    test_fill_normal(&rng, x, nx, 1.0f);
    test_fill_normal(&rng, w, nw, 0.5f);
    test_fill_normal(&rng, dout, rows * s.C, 1.0f);
    test_fill_normal(&rng, dx[2], ndx, 1.0f);
    test_fill_normal(&rng, dw[2], nw, 1.0f);
    test_fill_normal(&rng, db[2], s.C, 1.0f);
    float *sx = test_falloc(ndx), *sw = test_falloc(nw), *sb = test_falloc(s.C);
    memcpy(sx, dx[2], ndx * sizeof(float)), memcpy(sw, dw[2], nw * sizeof(float)), memcpy(sb, db[2], s.C * sizeof(float));

    conv1d_backward(dx[0], s.lddx, dw[0], db[0], dout, x, s.ldx, w, s.B, s.T, s.C, s.K);
    for (int i = 0; i < 2; i++) conv1d_backward(dx[1], s.lddx, dw[1], db[1], dout, x, s.ldx, w, s.B, s.T, s.C, s.K);
    conv1d_backward(dx[2], s.lddx, dw[2], db[2], dout, x, s.ldx, w, s.B, s.T, s.C, s.K);
    int bad[3]; /* after a second call, from old values, in the padding */
    test_written_strided(dx[0], dx[1], dx[2], sx, ndx, (size_t)s.lddx, (size_t)s.C, bad);
    const int twice_bad = bad[0], start_bad = bad[1], pad_bad = bad[2];
    for (size_t i = 0; i < nw; i++) sw[i] += dw[0][i], dw[0][i] *= 2.0f;
    for (int i = 0; i < s.C; i++) sb[i] += db[0][i], db[0][i] *= 2.0f;
    CHECK(twice_bad == 0, "dx: %d entries differ after a second call (it must be written, not added)", twice_bad);
    CHECK(start_bad == 0, "dx: %d entries depend on the buffer's old values", start_bad);
    CHECK(pad_bad == 0, "dx: %d padding entries (columns >= C) changed", pad_bad);
    CHECK(test_allclose("dw twice", dw[1], dw[0], nw, 1e-6, 1e-6), "dw does not accumulate");
    CHECK(test_allclose("dbias twice", db[1], db[0], s.C, 1e-6, 1e-6), "dbias does not accumulate");
    CHECK(test_allclose("dw start+g", dw[2], sw, nw, 1e-6, 1e-6), "dw overwrote its start value");
    CHECK(test_allclose("dbias start+g", db[2], sb, s.C, 1e-6, 1e-6), "dbias overwrote its start value");
    for (int r = 0; r < 3; r++) free(dx[r]), free(dw[r]), free(db[r]);
    free(x), free(w), free(dout), free(sx), free(sw), free(sb);
}

/* 1 and 2 threads give bit-identical out, dx, dw, dbias. The kernel picks
 * its channel blocks from the thread count, so the two runs split the
 * channels differently: C = 200 is one block for 1 thread and two for 2
 * threads; B = 1 forces the forward and dx to split channels as well. */
static void test_thread_invariance(void) {
    const shape ts[] = {{3, 30, 200, 4, 400, 200, 1}, {1, 60, 200, 4, 200, 210, 1}, {2, 17, 37, 6, 40, 37, 0}};
    test_rng rng = {test_seed() ^ 0x7E};
    for (size_t si = 0; si < sizeof ts / sizeof ts[0]; si++) {
        shape s = ts[si];
        size_t rows = (size_t)s.B * s.T, nx = rows * s.ldx, nw = (size_t)s.C * s.K;
        float *x = test_falloc(nx), *w = test_falloc(nw), *bias = test_falloc(s.C), *dout = test_falloc(rows * s.C);
        float *out[2], *dx[2], *dw[2], *db[2];
        test_fill_normal(&rng, x, nx, 1.0f);
        test_fill_normal(&rng, w, nw, 0.5f);
        test_fill_normal(&rng, bias, s.C, 0.5f);
        test_fill_normal(&rng, dout, rows * s.C, 1.0f);
        int saved = omp_get_max_threads();
        for (int r = 0; r < 2; r++) {
            out[r] = test_falloc(rows * s.C), dx[r] = test_falloc(rows * s.lddx), dw[r] = test_falloc(nw), db[r] = test_falloc(s.C);
            omp_set_num_threads(r + 1);
            conv1d_forward(out[r], x, s.ldx, w, s.has_bias ? bias : NULL, s.B, s.T, s.C, s.K);
            conv1d_backward(dx[r], s.lddx, dw[r], db[r], dout, x, s.ldx, w, s.B, s.T, s.C, s.K);
        }
        omp_set_num_threads(saved);
        CHECK(!memcmp(out[0], out[1], rows * s.C * sizeof(float)), "shape %zu: out differs (1 vs 2 threads)", si);
        CHECK(!memcmp(dx[0], dx[1], rows * s.lddx * sizeof(float)), "shape %zu: dx differs (1 vs 2 threads)", si);
        CHECK(!memcmp(dw[0], dw[1], nw * sizeof(float)), "shape %zu: dw differs (1 vs 2 threads)", si);
        CHECK(!memcmp(db[0], db[1], s.C * sizeof(float)), "shape %zu: dbias differs (1 vs 2 threads)", si);
        for (int r = 0; r < 2; r++) free(out[r]), free(dx[r]), free(dw[r]), free(db[r]);
        free(x), free(w), free(bias), free(dout);
    }
}

/* conv1d_silu_forward == conv1d_forward + silu_forward and
 * conv1d_silu_backward == silu_backward (into zeros) + conv1d_backward, bit
 * for bit (the header promises it: the same expressions), for every shape
 * of test_matches_naive, with 1 and 2 threads, the pre-activation pushed
 * into both tails of the sigmoid; the kept derivative is the factor
 * silu_backward applies (its gradient for dout = 1); dout is scratch (filled
 * with NaN first: every element must be written before it is read), and dx's
 * padding columns stay untouched. */
static void test_silu_fused(void) {
    test_rng rng = {test_seed() ^ 0x5115};
    int saved = omp_get_max_threads();
    for (size_t si = 0; si < NSHAPES; si++) {
        shape s = shapes[si];
        size_t rows = (size_t)s.B * s.T, n = rows * s.C, nw = (size_t)s.C * s.K;
        float *x = test_falloc(rows * s.ldx), *w = test_falloc(nw), *bias = test_falloc(s.C), *dact = test_falloc(n);
        float *pre[2], *act[2], *dx[2], *dw[2], *db[2], *dpre = test_falloc(n), *scratch = test_falloc(n);
        float *ones = test_falloc(n), *dsilu = test_falloc(n);
        for (size_t i = 0; i < n; i++) ones[i] = 1.0f;
        test_fill_normal(&rng, x, rows * s.ldx, 3.0f);
        test_fill_normal(&rng, w, nw, 2.0f);
        test_fill_normal(&rng, bias, s.C, 1.0f);
        test_fill_normal(&rng, dact, n, 1.0f);
        for (int thr = 1; thr <= 2; thr++) {
            omp_set_num_threads(thr);
            for (int r = 0; r < 2; r++) {
                pre[r] = test_falloc(n), act[r] = test_falloc(n), dx[r] = test_falloc(rows * s.lddx), dw[r] = test_falloc(nw);
                db[r] = test_falloc(s.C);
                for (size_t i = 0; i < rows * s.lddx; i++) dx[r][i] = (i % s.lddx < (size_t)s.C) ? 0.5f : 7.0f;
            }
            float *b = s.has_bias ? bias : NULL;
            /* r = 0: the composition; r = 1: the fused kernels */
            conv1d_forward(pre[0], x, s.ldx, w, b, s.B, s.T, s.C, s.K);
            silu_forward(act[0], pre[0], n);
            memset(dpre, 0, n * sizeof(float));
            silu_backward(dpre, dact, pre[0], n);
            conv1d_backward(dx[0], s.lddx, dw[0], s.has_bias ? db[0] : NULL, dpre, x, s.ldx, w, s.B, s.T, s.C, s.K);
            memset(dsilu, 0, n * sizeof(float));
            silu_backward(dsilu, ones, pre[0], n); /* 0 + 1 * SiLU'(pre): the factor itself */
            conv1d_silu_forward(act[1], pre[1], x, s.ldx, w, b, s.B, s.T, s.C, s.K);
            for (size_t i = 0; i < n; i++) scratch[i] = NAN;
            conv1d_silu_backward(dx[1], s.lddx, dw[1], s.has_bias ? db[1] : NULL, scratch, dact, pre[1], x, s.ldx, w,
                                 s.B, s.T, s.C, s.K);
            size_t bad = 0; /* by value: where s is 0, s times a negative factor is -0, and 0 + 1 * -0 is +0 */
            for (size_t i = 0; i < n; i++) bad += dsilu[i] != pre[1][i];
            CHECK(bad == 0, "shape %zu, %d thr: kept SiLU' differs in %zu places", si, thr, bad);
            CHECK(!memcmp(act[0], act[1], n * sizeof(float)), "shape %zu, %d thr: act differs", si, thr);
            CHECK(!memcmp(dpre, scratch, n * sizeof(float)), "shape %zu, %d thr: dout scratch differs", si, thr);
            CHECK(!memcmp(dx[0], dx[1], rows * s.lddx * sizeof(float)), "shape %zu, %d thr: dx differs", si, thr);
            CHECK(!memcmp(dw[0], dw[1], nw * sizeof(float)), "shape %zu, %d thr: dw differs", si, thr);
            CHECK(!memcmp(db[0], db[1], s.C * sizeof(float)), "shape %zu, %d thr: dbias differs", si, thr);
            for (int r = 0; r < 2; r++) free(pre[r]), free(act[r]), free(dx[r]), free(dw[r]), free(db[r]);
        }
        printf("  B=%d T=%d C=%d K=%d ldx=%d lddx=%d: fused == composed, 1 and 2 threads\n", s.B, s.T, s.C, s.K,
               s.ldx, s.lddx);
        free(x), free(w), free(bias), free(dact), free(dpre), free(scratch), free(ones), free(dsilu);
    }
    omp_set_num_threads(saved);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    par_set_min_work(0); /* small shapes must really run on 2 threads */
    TEST_RUN(test_matches_naive);
    TEST_RUN(test_fd);
    TEST_RUN(test_causality);
    TEST_RUN(test_writes_dx_accumulates_dw);
    TEST_RUN(test_thread_invariance);
    TEST_RUN(test_silu_fused);
    return test_finish();
}
