/*
 * test_attention.c - causal multi-head attention (src/core/attention.c)
 * against a naive double-precision twin, finite differences, and the
 * properties the model and the attention panel rely on: causality, rows of
 * att summing to 1 with exact zeros above the diagonal, accumulation,
 * results independent of the OpenMP thread count.
 *
 *   test_attention [--seed N] [--only NAME]
 */
#include "core/attention.h"
#include "core/parallel.h"
#include "testlib.h"

#include <omp.h>

/* ---- helpers ----------------------------------------------------------- */

/* Scratch for the kernels at (T, C, NH) for up to the test's thread count,
 * kept across calls (freed at exit by the OS, like the test's other state). */
static float *scr(int T, int C, int NH) {
    static float *buf;
    static size_t have;
    size_t need = attention_scratch_floats(T, C, NH, omp_get_max_threads() > 2 ? omp_get_max_threads() : 2);
    if (need > have) {
        free(buf);
        buf = test_falloc(need);
        have = need;
    }
    return buf;
}

/* |got - ref| <= atol + rtol*|ref| everywhere; prints the worst error. */
static int close_to_ref(const char *what, const float *got, const double *ref, size_t n, double rtol, double atol) {
    double worst = 0, worst_excess = 0;
    size_t bad = 0, wi = 0;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - ref[i]);
        double lim = atol + rtol * fabs(ref[i]);
        if (!(err <= lim)) {
            if (bad < 3) printf("    %s[%zu]: %.8g vs ref %.8g\n", what, i, got[i], ref[i]);
            bad++;
        }
        if (err > worst || isnan(err)) worst = err, wi = i;
        if (err / lim > worst_excess) worst_excess = err / lim;
    }
    printf("    %-28s max|err| %.3g at [%zu] (%.2f of tolerance)\n", what, worst, wi, worst_excess);
    return bad == 0;
}

/* ---- the naive twin (double) ------------------------------------------- */

static double qkv_at(const float *qkv, int T, int C, int b, int t, int part, int col) {
    return qkv[((size_t)b * T + t) * 3 * C + (size_t)part * C + col];
}

/* out (B,T,C), att (B,NH,T,T), straight from the definition */
static void naive_forward(double *out, double *att, const float *qkv, int B, int T, int C, int NH) {
    int hs = C / NH;
    double scale = 1.0 / sqrt((double)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t1 = 0; t1 < T; t1++) {
                double *a = att + (((size_t)b * NH + h) * T + t1) * T;
                double mx = -INFINITY, sum = 0;
                for (int t2 = 0; t2 < T; t2++) {
                    a[t2] = 0;
                    if (t2 > t1) continue;
                    double s = 0;
                    for (int i = 0; i < hs; i++)
                        s += qkv_at(qkv, T, C, b, t1, 0, h * hs + i) * qkv_at(qkv, T, C, b, t2, 1, h * hs + i);
                    a[t2] = s * scale;
                    if (a[t2] > mx) mx = a[t2];
                }
                for (int t2 = 0; t2 <= t1; t2++) sum += (a[t2] = exp(a[t2] - mx));
                for (int t2 = 0; t2 <= t1; t2++) a[t2] /= sum;
                for (int i = 0; i < hs; i++) {
                    double o = 0;
                    for (int t2 = 0; t2 <= t1; t2++) o += a[t2] * qkv_at(qkv, T, C, b, t2, 2, h * hs + i);
                    out[((size_t)b * T + t1) * C + h * hs + i] = o;
                }
            }
}

/* dqkv (B,T,3C) += gradient of sum(dout * out), softmax backward in full */
static void naive_backward(double *dqkv, const float *dout, const float *qkv, int B, int T, int C, int NH) {
    int hs = C / NH;
    double scale = 1.0 / sqrt((double)hs);
    double *out = test_dalloc((size_t)B * T * C), *att = test_dalloc((size_t)B * NH * T * T);
    double *dp = test_dalloc((size_t)T), *ds = test_dalloc((size_t)T);
    naive_forward(out, att, qkv, B, T, C, NH);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++)
            for (int t1 = 0; t1 < T; t1++) {
                const double *a = att + (((size_t)b * NH + h) * T + t1) * T;
                const float *g = dout + ((size_t)b * T + t1) * C + h * hs;
                double sum = 0;
                for (int t2 = 0; t2 < T; t2++) {
                    dp[t2] = 0;
                    for (int i = 0; i < hs; i++) dp[t2] += g[i] * qkv_at(qkv, T, C, b, t2, 2, h * hs + i);
                    sum += a[t2] * dp[t2];
                }
                for (int t2 = 0; t2 < T; t2++) ds[t2] = a[t2] * (dp[t2] - sum);
                for (int t2 = 0; t2 < T; t2++)
                    for (int i = 0; i < hs; i++) {
                        size_t r1 = ((size_t)b * T + t1) * 3 * C, r2 = ((size_t)b * T + t2) * 3 * C;
                        int col = h * hs + i;
                        dqkv[r1 + col] += scale * ds[t2] * qkv_at(qkv, T, C, b, t2, 1, col);
                        dqkv[r2 + C + col] += scale * ds[t2] * qkv_at(qkv, T, C, b, t1, 0, col);
                        dqkv[r2 + 2 * C + col] += a[t2] * g[i];
                    }
            }
    free(out), free(att), free(dp), free(ds);
}

/* ---- tests --------------------------------------------------------------- */

typedef struct { int B, T, C, NH; } shape;

/* Kernel vs twin on odd and degenerate shapes. T = 600 goes past the
 * backward's 512-entry dP cache, so the recompute path is covered too.
 * Tolerances: float vs double, scores O(1): out/att 2e-6 abs + 1e-5 rel,
 * dqkv 1e-5 abs + 1e-4 rel (sums of up to T terms). */
static void test_matches_naive(void) {
    const shape shapes[] = {
        {1, 1, 8, 2},   /* B = 1, T = 1 */
        {2, 5, 6, 1},   /* NH = 1 */
        {2, 7, 4, 4},   /* hs = 1 */
        {2, 37, 12, 3}, /* odd T, hs = 4 */
        {3, 20, 20, 5}, /* C not a multiple of 8 */
        {1, 13, 10, 2}, /* hs = 5 */
        {2, 9, 64, 1},  /* hs = 64 */
        {2, 41, 64, 4}, /* hs = 16, T = 41: the small Transformer's head, rows across 16-key vectors */
        {1, 83, 64, 2}, /* hs = 32, T = 83: two 16-wide column blocks, rows past a 64-key block */
        {1, 600, 8, 2}, /* T beyond the dP cache */
    };
    test_rng rng = {test_seed() ^ 0xA77};
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
        shape s = shapes[si];
        size_t nq = (size_t)s.B * s.T * 3 * s.C, no = (size_t)s.B * s.T * s.C, na = (size_t)s.B * s.NH * s.T * s.T;
        float *qkv = test_falloc(nq), *out = test_falloc(no), *att = test_falloc(na), *dout = test_falloc(no), *dqkv = test_falloc(nq);
        double *rout = test_dalloc(no), *ratt = test_dalloc(na), *rdqkv = test_dalloc(nq);
        test_fill_normal(&rng, qkv, nq, 1.0f);
        test_fill_normal(&rng, dout, no, 1.0f);
        printf("  B=%d T=%d C=%d NH=%d\n", s.B, s.T, s.C, s.NH);
        attention_forward(out, att, qkv, s.B, s.T, s.C, s.NH, scr(s.T, s.C, s.NH));
        attention_backward(dqkv, dout, qkv, att, s.B, s.T, s.C, s.NH, scr(s.T, s.C, s.NH));
        naive_forward(rout, ratt, qkv, s.B, s.T, s.C, s.NH);
        naive_backward(rdqkv, dout, qkv, s.B, s.T, s.C, s.NH);
        CHECK(close_to_ref("out", out, rout, no, 1e-5, 2e-6), "shape %zu", si);
        CHECK(close_to_ref("att", att, ratt, na, 1e-5, 2e-6), "shape %zu", si);
        CHECK(close_to_ref("dqkv", dqkv, rdqkv, nq, 1e-4, 1e-5), "shape %zu", si);
        free(qkv), free(out), free(att), free(dout), free(dqkv), free(rout), free(ratt), free(rdqkv);
    }
}

typedef struct {
    float *qkv, *out, *att, *r;
    int B, T, C, NH;
} fd_ctx;

static double fd_loss(void *p) {
    fd_ctx *c = p;
    attention_forward(c->out, c->att, c->qkv, c->B, c->T, c->C, c->NH, scr(c->T, c->C, c->NH));
    return test_dot(c->r, c->out, (size_t)c->B * c->T * c->C);
}

/* Every element of dqkv against central differences of L = sum r*out.
 * eps = 1e-2: the float forward's rounding noise is ~1e-6 in L, i.e. ~5e-5
 * after dividing by 2 eps, and the O(eps^2) truncation is of the same order.
 * Tolerance 5e-4 abs + 1e-2 rel. */
static void test_fd_dqkv(void) {
    const shape shapes[] = {{2, 5, 6, 2}, {1, 4, 3, 3}};
    test_rng rng = {test_seed() ^ 0xFD};
    for (size_t si = 0; si < 2; si++) {
        shape s = shapes[si];
        size_t nq = (size_t)s.B * s.T * 3 * s.C, no = (size_t)s.B * s.T * s.C, na = (size_t)s.B * s.NH * s.T * s.T;
        fd_ctx c = {test_falloc(nq), test_falloc(no), test_falloc(na), test_falloc(no), s.B, s.T, s.C, s.NH};
        float *dqkv = test_falloc(nq), *num = test_falloc(nq);
        test_fill_normal(&rng, c.qkv, nq, 1.0f);
        test_fill_normal(&rng, c.r, no, 1.0f);
        attention_forward(c.out, c.att, c.qkv, s.B, s.T, s.C, s.NH, scr(s.T, s.C, s.NH));
        attention_backward(dqkv, c.r, c.qkv, c.att, s.B, s.T, s.C, s.NH, scr(s.T, s.C, s.NH));
        test_fd_grad(fd_loss, &c, c.qkv, nq, 1e-2, num);
        double worst = 0;
        for (size_t i = 0; i < nq; i++) worst = fmax(worst, fabs((double)dqkv[i] - num[i]));
        printf("  B=%d T=%d C=%d NH=%d: max|analytic - numeric| = %.3g over %zu elements\n", s.B, s.T, s.C, s.NH,
               worst, nq);
        CHECK(test_allclose("dqkv vs fd", dqkv, num, nq, 1e-2, 5e-4), "shape %zu", si);
        free(c.qkv), free(c.out), free(c.att), free(c.r), free(dqkv), free(num);
    }
}

/* Changing q, k, v of tokens after t0 must leave out[t <= t0] and
 * att[t <= t0] bit-identical; and a dout that is zero after t0 must give
 * exactly zero dqkv after t0 (no gradient flows backward in time). */
static void test_causality(void) {
    const int B = 2, T = 11, C = 12, NH = 3, t0 = 4;
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    test_rng rng = {test_seed() ^ 0xCA5};
    float *qkv = test_falloc(nq), *out1 = test_falloc(no), *att1 = test_falloc(na), *out2 = test_falloc(no), *att2 = test_falloc(na);
    float *dout = test_falloc(no), *dqkv = test_falloc(nq);
    test_fill_normal(&rng, qkv, nq, 1.0f);
    attention_forward(out1, att1, qkv, B, T, C, NH, scr(T, C, NH));
    for (int b = 0; b < B; b++)
        for (int t = t0 + 1; t < T; t++)
            for (int j = 0; j < 3 * C; j++) qkv[((size_t)b * T + t) * 3 * C + j] += 5.0f * test_rng_normal(&rng);
    attention_forward(out2, att2, qkv, B, T, C, NH, scr(T, C, NH));
    int out_same = 1, att_same = 1, out_changed = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t o = ((size_t)b * T + t) * C;
            int same = !memcmp(out1 + o, out2 + o, C * sizeof(float));
            if (t <= t0) out_same &= same;
            else out_changed |= !same;
        }
    for (int bh = 0; bh < B * NH; bh++)
        for (int t = 0; t <= t0; t++) {
            size_t o = ((size_t)bh * T + t) * T;
            att_same &= !memcmp(att1 + o, att2 + o, T * sizeof(float));
        }
    CHECK(out_same, "out[t <= %d] changed when only tokens after t0 changed", t0);
    CHECK(att_same, "att[t <= %d] changed when only tokens after t0 changed", t0);
    CHECK(out_changed, "out after t0 did not change at all (the test would be vacuous)");

    for (int b = 0; b < B; b++)
        for (int t = 0; t <= t0; t++)
            for (int j = 0; j < C; j++) dout[((size_t)b * T + t) * C + j] = test_rng_normal(&rng);
    attention_backward(dqkv, dout, qkv, att2, B, T, C, NH, scr(T, C, NH));
    float maxfuture = 0, maxpast = 0;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            for (int j = 0; j < 3 * C; j++) {
                float g = fabsf(dqkv[((size_t)b * T + t) * 3 * C + j]);
                if (t > t0) maxfuture = fmaxf(maxfuture, g);
                else maxpast = fmaxf(maxpast, g);
            }
    printf("  max|dqkv| after t0 = %g (must be 0), before = %g\n", maxfuture, maxpast);
    CHECK(maxfuture == 0.0f, "gradient leaked to future tokens: %g", maxfuture);
    CHECK(maxpast > 0.0f, "no gradient at all before t0");
    free(qkv), free(out1), free(att1), free(out2), free(att2), free(dout), free(dqkv);
}

/* Rows of att sum to 1 (|sum - 1| <= 1e-5), entries are in [0, 1], and the
 * upper triangle is exactly 0. Also at a large score scale (qkv ~ 30 N(0,1),
 * scores in the thousands), where a softmax without the max subtracted
 * overflows: everything must stay finite. */
static void test_att_rows(void) {
    const int B = 2, T = 37, C = 12, NH = 3;
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    test_rng rng = {test_seed() ^ 0x50F};
    float *qkv = test_falloc(nq), *out = test_falloc(no), *att = test_falloc(na);
    const float scales[] = {1.0f, 30.0f};
    for (int si = 0; si < 2; si++) {
        test_fill_normal(&rng, qkv, nq, scales[si]);
        for (size_t i = 0; i < na; i++) att[i] = NAN; /* the kernel must write every entry */
        attention_forward(out, att, qkv, B, T, C, NH, scr(T, C, NH));
        double worst_sum = 0;
        int upper_ok = 1, range_ok = 1, finite = 1;
        for (int bh = 0; bh < B * NH; bh++)
            for (int t1 = 0; t1 < T; t1++) {
                const float *a = att + ((size_t)bh * T + t1) * T;
                double sum = 0;
                for (int t2 = 0; t2 < T; t2++) {
                    if (t2 > t1) upper_ok &= (a[t2] == 0.0f);
                    else {
                        range_ok &= (a[t2] >= 0.0f && a[t2] <= 1.0f);
                        sum += a[t2];
                    }
                }
                worst_sum = fmax(worst_sum, fabs(sum - 1.0));
            }
        for (size_t i = 0; i < no; i++) finite &= isfinite(out[i]) != 0;
        printf("  scale %g: max|row sum - 1| = %.3g\n", scales[si], worst_sum);
        CHECK(worst_sum <= 1e-5, "scale %g: row sums off by %g", scales[si], worst_sum);
        CHECK(upper_ok, "scale %g: a future entry is not exactly 0", scales[si]);
        CHECK(range_ok, "scale %g: a probability outside [0, 1]", scales[si]);
        CHECK(finite, "scale %g: non-finite output", scales[si]);
    }
    free(qkv), free(out), free(att);
}

/* backward adds: twice from zero gives 2x the gradient (rel 1e-5), and from
 * a non-zero start gives start + gradient (abs 1e-5). */
static void test_accumulates(void) {
    const int B = 2, T = 9, C = 10, NH = 2;
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    test_rng rng = {test_seed() ^ 0xACC};
    float *qkv = test_falloc(nq), *out = test_falloc(no), *att = test_falloc(na), *dout = test_falloc(no);
    float *g1 = test_falloc(nq), *g2 = test_falloc(nq), *g3 = test_falloc(nq), *start = test_falloc(nq), *expect = test_falloc(nq);
    test_fill_normal(&rng, qkv, nq, 1.0f);
    test_fill_normal(&rng, dout, no, 1.0f);
    test_fill_normal(&rng, start, nq, 1.0f);
    attention_forward(out, att, qkv, B, T, C, NH, scr(T, C, NH));
    attention_backward(g1, dout, qkv, att, B, T, C, NH, scr(T, C, NH));
    attention_backward(g2, dout, qkv, att, B, T, C, NH, scr(T, C, NH));
    attention_backward(g2, dout, qkv, att, B, T, C, NH, scr(T, C, NH));
    memcpy(g3, start, nq * sizeof(float));
    attention_backward(g3, dout, qkv, att, B, T, C, NH, scr(T, C, NH));
    for (size_t i = 0; i < nq; i++) {
        expect[i] = start[i] + g1[i];
        g1[i] *= 2.0f;
    }
    CHECK(test_allclose("twice vs 2x once", g2, g1, nq, 1e-5, 1e-6), "backward does not accumulate");
    CHECK(test_allclose("start + grad", g3, expect, nq, 1e-5, 1e-5), "backward overwrote its start value");
    free(qkv), free(out), free(att), free(dout), free(g1), free(g2), free(g3), free(start), free(expect);
}

/* 1 thread and 2 threads give bit-identical out, att and dqkv. B*NH = 6 so
 * both threads get pairs. */
static void test_thread_invariance(void) {
    const int B = 3, T = 23, C = 16, NH = 2;
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    test_rng rng = {test_seed() ^ 0x7E};
    float *qkv = test_falloc(nq), *dout = test_falloc(no);
    float *out[2], *att[2], *dqkv[2];
    test_fill_normal(&rng, qkv, nq, 1.0f);
    test_fill_normal(&rng, dout, no, 1.0f);
    int saved = omp_get_max_threads();
    for (int r = 0; r < 2; r++) {
        out[r] = test_falloc(no), att[r] = test_falloc(na), dqkv[r] = test_falloc(nq);
        omp_set_num_threads(r + 1);
        attention_forward(out[r], att[r], qkv, B, T, C, NH, scr(T, C, NH));
        attention_backward(dqkv[r], dout, qkv, att[r], B, T, C, NH, scr(T, C, NH));
    }
    omp_set_num_threads(saved);
    CHECK(!memcmp(out[0], out[1], no * sizeof(float)), "out differs between 1 and 2 threads");
    CHECK(!memcmp(att[0], att[1], na * sizeof(float)), "att differs between 1 and 2 threads");
    CHECK(!memcmp(dqkv[0], dqkv[1], nq * sizeof(float)), "dqkv differs between 1 and 2 threads");
    for (int r = 0; r < 2; r++) free(out[r]), free(att[r]), free(dqkv[r]);
    free(qkv), free(dout);
}

/* The kernels stay inside attention_scratch_floats(...) floats: the scratch
 * sits between guard values that must survive forward and backward on two
 * threads, at a T longer than any earlier test's. */
static void test_scratch_bounds(void) {
    const int B = 3, T = 37, C = 12, NH = 3, GUARD = 64;
    test_rng rng = {test_seed() + 900};
    size_t nq = (size_t)B * T * 3 * C, no = (size_t)B * T * C, na = (size_t)B * NH * T * T;
    float *qkv = test_falloc(nq), *dout = test_falloc(no), *out = test_falloc(no), *att = test_falloc(na), *dqkv = test_falloc(nq);
    for (size_t i = 0; i < nq; i++) qkv[i] = (float)test_rng_normal(&rng);
    for (size_t i = 0; i < no; i++) dout[i] = (float)test_rng_normal(&rng);
    int saved = omp_get_max_threads();
    omp_set_num_threads(2);
    size_t n = attention_scratch_floats(T, C, NH, 2);
    CHECK(n >= (size_t)2 * T * (C / NH), "scratch holds one transposed head per thread");
    CHECK(attention_scratch_floats(0, C, NH, 2) == 0 && attention_scratch_floats(T, C, 0, 2) == 0,
          "degenerate shapes need no scratch");
    float *buf = test_falloc(n + 2 * GUARD);
    for (int i = 0; i < GUARD; i++) buf[i] = buf[GUARD + n + i] = 12345.0f;
    attention_forward(out, att, qkv, B, T, C, NH, buf + GUARD);
    attention_backward(dqkv, dout, qkv, att, B, T, C, NH, buf + GUARD);
    omp_set_num_threads(saved);
    int intact = 1;
    for (int i = 0; i < GUARD; i++) intact &= buf[i] == 12345.0f && buf[GUARD + n + i] == 12345.0f;
    CHECK(intact, "guards around the scratch were overwritten");
    free(buf), free(qkv), free(dout), free(out), free(att), free(dqkv);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    par_set_min_work(0); /* small shapes must really run on 2 threads */
    TEST_RUN(test_matches_naive);
    TEST_RUN(test_fd_dqkv);
    TEST_RUN(test_causality);
    TEST_RUN(test_att_rows);
    TEST_RUN(test_accumulates);
    TEST_RUN(test_thread_invariance);
    TEST_RUN(test_scratch_bounds);
    return test_finish();
}
