/*
 * test_delta.c - Mamba's time step delta = softplus(b + dl W^T)
 * (src/core/delta.c) against a naive double-precision twin written from the
 * formulas in delta.h (both softplus branches, strided dl/ddl with NaN in
 * dl's padding and sentinels in ddl's), finite differences of dl, W and b,
 * ddl written and dW, db accumulated, bitwise independence from the OpenMP
 * thread count, delta equal to act.h's softplus_forward of dt_pre, and the
 * kernels staying inside delta_scratch_floats (a guard tail after it must
 * survive).
 *
 *   test_delta [--seed N] [--only NAME]
 */
#include "core/act.h"
#include "core/delta.h"
#include "core/parallel.h"
#include "testlib.h"

#include <omp.h>

/* ---- helpers ----------------------------------------------------------- */

/* Scratch of exactly delta_scratch_floats(M, E, R) floats plus a guard tail
 * of sentinels that the kernels must never write. */
#define GUARD 64
#define GUARD_VAL -1234.5f
static float *scratch_alloc(int M, int E, int R, size_t *n) {
    *n = delta_scratch_floats(M, E, R);
    float *s = test_falloc(*n + GUARD);
    for (size_t i = 0; i < *n + GUARD; i++) s[i] = i < *n ? 0.0f : GUARD_VAL;
    return s;
}
static int guard_ok(const float *s, size_t n) {
    int ok = 1;
    for (size_t i = n; i < n + GUARD; i++) ok &= s[i] == GUARD_VAL;
    return ok;
}
/* The contract names no scratch content that carries over between calls, so
 * it is poisoned with NaN before each call: the kernel must write what it reads. */
static void scratch_poison(float *s, size_t n) {
    for (size_t i = 0; i < n; i++) s[i] = NAN;
}

static double sp_d(double x) { return x > 20.0 ? x : log1p(exp(x)); }
static double sig_d(double x) { return 1.0 / (1.0 + exp(-x)); }

/* ---- the naive twin (double), straight from the formulas in delta.h ----- */

/* pre, delta (M, E); premag = |b| + sum |dl W| (for the tolerance) */
static void naive_forward(double *pre, double *delta, double *premag, const float *dl, int ldl, const float *W,
                          const float *b, int M, int E, int R) {
    for (int i = 0; i < M; i++)
        for (int c = 0; c < E; c++) {
            double s = b[c], m = fabs((double)b[c]);
            for (int r = 0; r < R; r++) {
                double t = (double)dl[(size_t)i * ldl + r] * W[(size_t)c * R + r];
                s += t, m += fabs(t);
            }
            size_t k = (size_t)i * E + c;
            pre[k] = s, delta[k] = sp_d(s), premag[k] = m;
        }
}

/* ddl (M, R), dW (E, R), db (E) dense, and the magnitudes of their terms:
 * += gradients of sum(ddelta * delta), sigmoid taken of the kernel's own
 * (float) dt_pre, as the backward is specified. */
static void naive_backward(double *ddl, double *mddl, double *dW, double *mdW, double *db, double *mdb,
                           const float *ddelta, const float *dl, int ldl, const float *dt_pre, const float *W, int M,
                           int E, int R) {
    for (int i = 0; i < M; i++)
        for (int c = 0; c < E; c++) {
            double g = (double)ddelta[(size_t)i * E + c] * sig_d(dt_pre[(size_t)i * E + c]);
            db[c] += g, mdb[c] += fabs(g);
            for (int r = 0; r < R; r++) {
                double a = g * W[(size_t)c * R + r], d = g * dl[(size_t)i * ldl + r];
                ddl[(size_t)i * R + r] += a, mddl[(size_t)i * R + r] += fabs(a);
                dW[(size_t)c * R + r] += d, mdW[(size_t)c * R + r] += fabs(d);
            }
        }
}

/* dl (M, ldl) with NaN in the padding columns: they are another tensor's
 * (B and C of x_proj) and must not leak into anything. */
static void fill_dl(test_rng *rng, float *dl, int M, int ldl, int R, float scale) {
    test_fill_normal(rng, dl, (size_t)M * ldl, scale);
    for (size_t i = 0; i < (size_t)M * ldl; i++)
        if (i % ldl >= (size_t)R) dl[i] = NAN;
}

/* ---- tests --------------------------------------------------------------- */

typedef struct { int M, E, R, ldl, lddl; } shape;

static const shape shapes[] = {
    {1, 1, 1, 1, 1},       /* M = E = R = 1 */
    {70, 13, 4, 4, 4},     /* one full row block and a partial one; E % 16 != 0 */
    {130, 37, 8, 40, 8},   /* dl inside an (M, R + 2N) buffer, N = 16 */
    {200, 300, 16, 48, 20}, /* E > 256; four row blocks, the last partial; ddl strided */
    {70, 37, 33, 40, 35},  /* R = 33, both strided */
    {64, 16, 1, 3, 2},     /* exactly one block, R = 1 */
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

/* Kernel vs twin, from zeroed gradients. Some biases are 25 (dt_pre above 20:
 * the identity branch) and some -30 (delta ~ e^-30: the log1p branch deep in
 * its tail). Tolerances relative to |ref| + the magnitude of ref's terms (see
 * close_to_ref): dt_pre sums R+1 float terms (1e-5 rel, 1e-6 abs); delta is
 * checked the same way with mag scaled by sigmoid(dt_pre) (its sensitivity
 * to dt_pre) and atol 1e-20, so even the ~1e-13 deltas of the -30 biases must
 * be right to 1e-5 relative, not merely below 1e-6. ddl sums E products
 * (1e-5 rel, 1e-6 abs); dW and db sum M products in float (1e-5 rel + 1e-5 abs). */
static void test_matches_naive(void) {
    test_rng rng = {test_seed() ^ 0xDE1};
    for (size_t si = 0; si < NSHAPES; si++) {
        shape s = shapes[si];
        size_t ME = (size_t)s.M * s.E, nW = (size_t)s.E * s.R, ML = (size_t)s.M * s.R, nsc;
        float *dl = test_falloc((size_t)s.M * s.ldl), *W = test_falloc(nW), *b = test_falloc(s.E), *ddelta = test_falloc(ME);
        float *delta = test_falloc(ME), *pre = test_falloc(ME), *ddl = test_falloc((size_t)s.M * s.lddl), *dW = test_falloc(nW);
        float *db = test_falloc(s.E), *sc = scratch_alloc(s.M, s.E, s.R, &nsc);
        double *rpre = test_dalloc(ME), *rdelta = test_dalloc(ME), *pmag = test_dalloc(ME), *dmag = test_dalloc(ME);
        double *rddl = test_dalloc(ML), *mddl = test_dalloc(ML), *rdW = test_dalloc(nW), *mdW = test_dalloc(nW);
        double *rdb = test_dalloc(s.E), *mdb = test_dalloc(s.E);
        fill_dl(&rng, dl, s.M, s.ldl, s.R, 1.0f);
        test_fill_normal(&rng, W, nW, 0.5f);
        test_fill_normal(&rng, b, s.E, 0.5f);
        for (int c = 0; c < s.E; c++) b[c] = c % 7 == 2 ? 25.0f : c % 7 == 5 ? -30.0f : b[c];
        test_fill_normal(&rng, ddelta, ME, 1.0f);
        /* a sentinel in ddl's padding columns: the kernel must not touch them */
        for (size_t i = 0; i < (size_t)s.M * s.lddl; i++) ddl[i] = (i % s.lddl < (size_t)s.R) ? 0.0f : 7.0f;

        printf("  M=%d E=%d R=%d ldl=%d lddl=%d (scratch %zu floats)\n", s.M, s.E, s.R, s.ldl, s.lddl, nsc);
        scratch_poison(sc, nsc);
        delta_forward(delta, pre, dl, s.ldl, W, b, s.M, s.E, s.R, sc);
        CHECK(guard_ok(sc, nsc), "shape %zu: forward wrote past delta_scratch_floats", si);
        scratch_poison(sc, nsc);
        delta_backward(ddl, s.lddl, dW, db, ddelta, dl, s.ldl, pre, W, s.M, s.E, s.R, sc);
        CHECK(guard_ok(sc, nsc), "shape %zu: backward wrote past delta_scratch_floats", si);

        naive_forward(rpre, rdelta, pmag, dl, s.ldl, W, b, s.M, s.E, s.R);
        naive_backward(rddl, mddl, rdW, mdW, rdb, mdb, ddelta, dl, s.ldl, pre, W, s.M, s.E, s.R);
        int above = 0, below = 0;
        for (size_t k = 0; k < ME; k++) {
            dmag[k] = pmag[k] * sig_d(rpre[k]);
            above += rpre[k] > 20.0, below += rpre[k] < -15.0;
        }
        printf("    dt_pre > 20: %d, < -15: %d of %zu\n", above, below, ME);
        CHECK(test_close_to_ref("dt_pre", pre, s.E, rpre, pmag, s.E, s.M, s.E, 1e-5, 1e-6), "shape %zu", si);
        CHECK(test_close_to_ref("delta", delta, s.E, rdelta, dmag, s.E, s.M, s.E, 1e-5, 1e-20), "shape %zu", si);
        CHECK(test_close_to_ref("ddl", ddl, s.lddl, rddl, mddl, s.R, s.M, s.R, 1e-5, 1e-6), "shape %zu", si);
        CHECK(test_close_to_ref("dW", dW, s.R, rdW, mdW, s.R, s.E, s.R, 1e-5, 1e-5), "shape %zu", si);
        CHECK(test_close_to_ref("db", db, 1, rdb, mdb, 1, s.E, 1, 1e-5, 1e-5), "shape %zu", si);
        int pad_ok = 1;
        for (size_t i = 0; i < (size_t)s.M * s.lddl; i++)
            if (i % s.lddl >= (size_t)s.R) pad_ok &= (ddl[i] == 7.0f);
        CHECK(pad_ok, "shape %zu: ddl written outside its R columns", si);
        if (s.E >= 6) CHECK(above > 0 && below > 0, "shape %zu: a softplus branch went untested", si);
        free(dl), free(W), free(b), free(ddelta), free(delta), free(pre), free(ddl), free(dW), free(db), free(sc);
        free(rpre), free(rdelta), free(pmag), free(dmag), free(rddl), free(mddl), free(rdW), free(mdW);
        free(rdb), free(mdb);
    }
}

typedef struct {
    float *dl, *W, *b, *delta, *pre, *r, *sc;
    int ldl, M, E, R;
} fd_ctx;

static double fd_loss(void *p) {
    fd_ctx *c = p;
    delta_forward(c->delta, c->pre, c->dl, c->ldl, c->W, c->b, c->M, c->E, c->R, c->sc);
    return test_dot(c->r, c->delta, (size_t)c->M * c->E);
}

/* ddl, dW, db against central differences of L = sum r*delta, every element.
 * dl is perturbed in all ldl columns, padding included, and ddl is read with
 * lddl = ldl from zero: the padding's numeric gradient is exactly 0 (delta
 * does not depend on it) and the kernel's must stay 0 (it must not write
 * there). Inputs are small (scale 0.5: |dt_pre| < ~4, far from the switch at
 * 20), where softplus is smooth with |softplus'''| < 0.1: the truncation error
 * eps^2/6 f''' is ~1e-6 at eps = 1e-2, and float rounding of delta (~1e-7
 * relative, fastmath included) amplified by 1/(2 eps) is ~1e-5 per term
 * summed over at most M terms: tolerance 2e-4 abs + 1e-3 rel, as test_conv1d. */
static void test_fd(void) {
    const shape fs[] = {{6, 5, 3, 7, 7}, {70, 3, 2, 4, 4}};
    test_rng rng = {test_seed() ^ 0xFD1};
    for (size_t si = 0; si < 2; si++) {
        shape s = fs[si];
        size_t ME = (size_t)s.M * s.E, nl = (size_t)s.M * s.ldl, nW = (size_t)s.E * s.R, nsc;
        fd_ctx c = {test_falloc(nl), test_falloc(nW), test_falloc(s.E), test_falloc(ME), test_falloc(ME), test_falloc(ME),
                    scratch_alloc(s.M, s.E, s.R, &nsc), s.ldl, s.M, s.E, s.R};
        float *ddl = test_falloc(nl), *dW = test_falloc(nW), *db = test_falloc(s.E);
        float *nlg = test_falloc(nl), *nWg = test_falloc(nW), *nbg = test_falloc(s.E);
        test_fill_normal(&rng, c.dl, nl, 0.5f); /* finite padding: a perturbation must not make NaN */
        test_fill_normal(&rng, c.W, nW, 0.5f);
        test_fill_normal(&rng, c.b, s.E, 0.5f);
        test_fill_normal(&rng, c.r, ME, 1.0f);
        fd_loss(&c); /* dt_pre at the unperturbed point */
        delta_backward(ddl, s.ldl, dW, db, c.r, c.dl, s.ldl, c.pre, c.W, s.M, s.E, s.R, c.sc);
        test_fd_grad(fd_loss, &c, c.dl, nl, 1e-2, nlg);
        test_fd_grad(fd_loss, &c, c.W, nW, 1e-2, nWg);
        test_fd_grad(fd_loss, &c, c.b, s.E, 1e-2, nbg);
        double wl = 0, ww = 0, wb = 0;
        for (size_t i = 0; i < nl; i++) wl = fmax(wl, fabs((double)ddl[i] - nlg[i]));
        for (size_t i = 0; i < nW; i++) ww = fmax(ww, fabs((double)dW[i] - nWg[i]));
        for (size_t i = 0; i < (size_t)s.E; i++) wb = fmax(wb, fabs((double)db[i] - nbg[i]));
        printf("  M=%d E=%d R=%d ldl=%d: max|analytic - numeric| ddl %.3g, dW %.3g, db %.3g\n", s.M, s.E, s.R,
               s.ldl, wl, ww, wb);
        CHECK(test_allclose("ddl vs fd", ddl, nlg, nl, 1e-3, 2e-4), "shape %zu", si);
        CHECK(test_allclose("dW vs fd", dW, nWg, nW, 1e-3, 2e-4), "shape %zu", si);
        CHECK(test_allclose("db vs fd", db, nbg, s.E, 1e-3, 2e-4), "shape %zu", si);
        CHECK(guard_ok(c.sc, nsc), "shape %zu: scratch guard overwritten", si);
        free(c.dl), free(c.W), free(c.b), free(c.delta), free(c.pre), free(c.r), free(c.sc);
        free(ddl), free(dW), free(db), free(nlg), free(nWg), free(nbg);
    }
}

/* ddl is written: a second call, or a call into a buffer of other values,
 * gives the bits of one call into zeros, and ddl's padding columns keep
 * their values. dW and db accumulate: twice from zero gives 2x, from a
 * non-zero start, start + gradient (each added in pieces, so a second call
 * rounds differently: 1e-6 rel + 1e-6 abs, values O(1)-O(10)). */
static void test_writes_ddl_accumulates_dw(void) {
    const shape s = {3 * DELTA_ROWS + 5, 37, 8, 40, 11};
    size_t ME = (size_t)s.M * s.E, nl = (size_t)s.M * s.ldl, ndl = (size_t)s.M * s.lddl, nW = (size_t)s.E * s.R, nsc;
    test_rng rng = {test_seed() ^ 0xACC};
    float *dl = test_falloc(nl), *W = test_falloc(nW), *b = test_falloc(s.E), *ddelta = test_falloc(ME), *delta = test_falloc(ME);
    float *pre = test_falloc(ME), *sc = scratch_alloc(s.M, s.E, s.R, &nsc);
    float *ddl[3], *dW[3], *db[3];
    for (int r = 0; r < 3; r++) ddl[r] = test_falloc(ndl), dW[r] = test_falloc(nW), db[r] = test_falloc(s.E);
    fill_dl(&rng, dl, s.M, s.ldl, s.R, 1.0f);
    test_fill_normal(&rng, W, nW, 0.5f);
    test_fill_normal(&rng, b, s.E, 0.5f);
    test_fill_normal(&rng, ddelta, ME, 1.0f);
    test_fill_normal(&rng, ddl[2], ndl, 1.0f);
    test_fill_normal(&rng, dW[2], nW, 1.0f);
    test_fill_normal(&rng, db[2], s.E, 1.0f);
    float *sl = test_falloc(ndl), *sw = test_falloc(nW), *sb = test_falloc(s.E);
    memcpy(sl, ddl[2], ndl * sizeof(float)), memcpy(sw, dW[2], nW * sizeof(float)), memcpy(sb, db[2], s.E * sizeof(float));

    delta_forward(delta, pre, dl, s.ldl, W, b, s.M, s.E, s.R, sc);
    delta_backward(ddl[0], s.lddl, dW[0], db[0], ddelta, dl, s.ldl, pre, W, s.M, s.E, s.R, sc);
    for (int i = 0; i < 2; i++)
        delta_backward(ddl[1], s.lddl, dW[1], db[1], ddelta, dl, s.ldl, pre, W, s.M, s.E, s.R, sc);
    delta_backward(ddl[2], s.lddl, dW[2], db[2], ddelta, dl, s.ldl, pre, W, s.M, s.E, s.R, sc);
    /* padding columns of ddl[2] hold random start values: the kernel must leave them, so sl == ddl there */
    int bad[3]; /* after a second call, from old values, in the padding */
    test_written_strided(ddl[0], ddl[1], ddl[2], sl, ndl, (size_t)s.lddl, (size_t)s.R, bad);
    const int twice_bad = bad[0], start_bad = bad[1], pad_bad = bad[2];
    for (size_t i = 0; i < nW; i++) sw[i] += dW[0][i], dW[0][i] *= 2.0f;
    for (int i = 0; i < s.E; i++) sb[i] += db[0][i], db[0][i] *= 2.0f;
    CHECK(twice_bad == 0, "ddl: %d entries differ after a second call (it must be written, not added)", twice_bad);
    CHECK(start_bad == 0, "ddl: %d entries depend on the buffer's old values", start_bad);
    CHECK(pad_bad == 0, "ddl: %d padding entries changed", pad_bad);
    CHECK(test_allclose("dW twice", dW[1], dW[0], nW, 1e-6, 1e-6), "dW does not accumulate");
    CHECK(test_allclose("db twice", db[1], db[0], s.E, 1e-6, 1e-6), "db does not accumulate");
    CHECK(test_allclose("dW start+g", dW[2], sw, nW, 1e-6, 1e-6), "dW overwrote its start value");
    CHECK(test_allclose("db start+g", db[2], sb, s.E, 1e-6, 1e-6), "db overwrote its start value");
    CHECK(guard_ok(sc, nsc), "scratch guard overwritten");
    for (int r = 0; r < 3; r++) free(ddl[r]), free(dW[r]), free(db[r]);
    free(dl), free(W), free(b), free(ddelta), free(delta), free(pre), free(sc), free(sl), free(sw), free(sb);
}

/* 1 and 2 threads give bit-identical delta, dt_pre, ddl (padding included),
 * dW and db. Several row blocks so 2 threads really split the rows and the
 * per-block partials of dW, db; one shape below a single block. */
static void test_thread_invariance(void) {
    const shape ts[] = {{3 * DELTA_ROWS + 5, 37, 8, 40, 8},
                        {2 * DELTA_ROWS, 300, 16, 48, 20},
                        {5 * DELTA_ROWS - 1, 13, 4, 36, 4},
                        {DELTA_ROWS / 2, 29, 33, 33, 40}};
    test_rng rng = {test_seed() ^ 0x7E};
    for (size_t si = 0; si < sizeof ts / sizeof ts[0]; si++) {
        shape s = ts[si];
        size_t ME = (size_t)s.M * s.E, nl = (size_t)s.M * s.ldl, ndl = (size_t)s.M * s.lddl;
        size_t nW = (size_t)s.E * s.R, nsc;
        float *dl = test_falloc(nl), *W = test_falloc(nW), *b = test_falloc(s.E), *ddelta = test_falloc(ME);
        float *delta[2], *pre[2], *ddl[2], *dW[2], *db[2], *sc[2];
        fill_dl(&rng, dl, s.M, s.ldl, s.R, 1.0f);
        test_fill_normal(&rng, W, nW, 0.5f);
        test_fill_normal(&rng, b, s.E, 0.5f);
        for (int c = 0; c < s.E; c += 5) b[c] = 25.0f;
        test_fill_normal(&rng, ddelta, ME, 1.0f);
        int saved = omp_get_max_threads();
        for (int r = 0; r < 2; r++) {
            delta[r] = test_falloc(ME), pre[r] = test_falloc(ME), ddl[r] = test_falloc(ndl), dW[r] = test_falloc(nW);
            db[r] = test_falloc(s.E), sc[r] = scratch_alloc(s.M, s.E, s.R, &nsc);
            omp_set_num_threads(r + 1);
            delta_forward(delta[r], pre[r], dl, s.ldl, W, b, s.M, s.E, s.R, sc[r]);
            delta_backward(ddl[r], s.lddl, dW[r], db[r], ddelta, dl, s.ldl, pre[r], W, s.M, s.E, s.R, sc[r]);
            CHECK(guard_ok(sc[r], nsc), "shape %zu, %d thread(s): scratch guard overwritten", si, r + 1);
        }
        omp_set_num_threads(saved);
        CHECK(!memcmp(delta[0], delta[1], ME * sizeof(float)), "shape %zu: delta differs (1 vs 2 threads)", si);
        CHECK(!memcmp(pre[0], pre[1], ME * sizeof(float)), "shape %zu: dt_pre differs (1 vs 2 threads)", si);
        CHECK(!memcmp(ddl[0], ddl[1], ndl * sizeof(float)), "shape %zu: ddl differs (1 vs 2 threads)", si);
        CHECK(!memcmp(dW[0], dW[1], nW * sizeof(float)), "shape %zu: dW differs (1 vs 2 threads)", si);
        CHECK(!memcmp(db[0], db[1], s.E * sizeof(float)), "shape %zu: db differs (1 vs 2 threads)", si);
        for (int r = 0; r < 2; r++) free(delta[r]), free(pre[r]), free(ddl[r]), free(dW[r]), free(db[r]), free(sc[r]);
        free(dl), free(W), free(b), free(ddelta);
    }
}

/* delta is act.h's softplus of dt_pre, element for element: the fused kernel
 * must be the project's softplus (identity above 20, log1p(e^x) below), not
 * another approximation. dt_pre spans -40..40 (uniform biases, small dl W),
 * with some biases at 20 +- 1e-5 to straddle the switch. 1e-6 relative is a
 * few ulp: room for a different evaluation order of the same formula. */
static void test_forward_equals_act(void) {
    const int M = DELTA_ROWS + 9, E = 300, R = 8, ldl = 40;
    size_t ME = (size_t)M * E, nsc;
    test_rng rng = {test_seed() ^ 0xAC7};
    float *dl = test_falloc((size_t)M * ldl), *W = test_falloc((size_t)E * R), *b = test_falloc(E);
    float *delta = test_falloc(ME), *pre = test_falloc(ME), *ref = test_falloc(ME), *sc = scratch_alloc(M, E, R, &nsc);
    fill_dl(&rng, dl, M, ldl, R, 1.0f);
    test_fill_normal(&rng, W, (size_t)E * R, 0.1f);
    test_fill_uniform(&rng, b, E, -40.0f, 40.0f);
    for (int c = 0; c < E; c += 9) b[c] = 20.0f + (c % 2 ? 1e-5f : -1e-5f);
    for (int c = 1; c < E; c += 9) { b[c] = 20.0f; for (int r = 0; r < R; r++) W[(size_t)c * R + r] = 0.0f; }
    delta_forward(delta, pre, dl, ldl, W, b, M, E, R, sc);
    softplus_forward(ref, pre, ME);
    size_t same = 0;
    for (size_t k = 0; k < ME; k++) same += !memcmp(&delta[k], &ref[k], sizeof(float));
    printf("  M=%d E=%d R=%d: %zu of %zu bitwise equal to softplus_forward\n", M, E, R, same, ME);
    CHECK(test_allclose("delta vs softplus", delta, ref, ME, 1e-6, 1e-30), "delta is not act.h's softplus");
    CHECK(same == ME, "delta is not bitwise softplus_forward (both use fm_softplus_block)");
    CHECK(guard_ok(sc, nsc), "scratch guard overwritten");
    free(dl), free(W), free(b), free(delta), free(pre), free(ref), free(sc);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    par_set_min_work(0); /* small shapes must really run on 2 threads */
    TEST_RUN(test_matches_naive);
    TEST_RUN(test_fd);
    TEST_RUN(test_writes_ddl_accumulates_dw);
    TEST_RUN(test_thread_invariance);
    TEST_RUN(test_forward_equals_act);
    return test_finish();
}
