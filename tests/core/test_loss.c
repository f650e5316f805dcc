/*
 * test_loss.c - masked MSE, BCE-on-logits and cross-entropy against
 * textbook double-precision twins written here, and against central finite
 * differences of the loss itself (the forward returns a double, so the FD
 * is precise: tolerance rtol 1e-3, atol 1e-7, h = 1e-3).
 *
 * Also: mask semantics (rows with mask 0 are never read, get no gradient and
 * do not change the loss; an all-zero mask gives loss 0 and no gradient;
 * fractional weights; NULL = all ones), backward accumulating (+=) and
 * scaling by dloss, stability of BCE for |z| up to 1e4 and of CE for logits
 * of size 1e4, invalid CE targets, and bit-identical results with 1 and 2
 * OpenMP threads.
 */
#include "core/loss.h"
#include "core/parallel.h"
#include "testlib.h"

#include <omp.h>

enum { MSE, BCE, CE };
static const char *names[3] = {"mse", "bce", "ce"};

/* ------------------------------------------------------------------------ */
/* twins (textbook formulas, double)                                        */
/* ------------------------------------------------------------------------ */

static double sig(double z) { return 1.0 / (1.0 + exp(-z)); }

/* per-row loss and its gradient (grad may be NULL); valid for moderate
 * inputs only (|z| < 15, |logit| < 50), which is where they are used */
static double row_twin(int kind, const float *p, const float *t, int tc, int K, double *grad) {
    double l = 0;
    if (kind == MSE) {
        for (int o = 0; o < K; o++) {
            l += (p[o] - (double)t[o]) * (p[o] - (double)t[o]) / K;
            if (grad) grad[o] = 2.0 * (p[o] - (double)t[o]) / K;
        }
    } else if (kind == BCE) {
        double s = sig(p[0]);
        l = -t[0] * log(s) - (1.0 - t[0]) * log(1.0 - s);
        if (grad) grad[0] = s - t[0];
    } else {
        double z = 0;
        for (int v = 0; v < K; v++) z += exp((double)p[v]);
        l = log(z) - p[tc];
        if (grad)
            for (int v = 0; v < K; v++) grad[v] = exp((double)p[v]) / z - (v == tc);
    }
    return l;
}

/* A loss problem: N rows of K = O (mse), 1 (bce) or V (ce) values. */
typedef struct {
    int kind, N, K;
    float *pred, *target, *mask; /* target unused for ce */
    int *cls;                    /* ce targets */
} prob;

static double fwd(const prob *q) {
    if (q->kind == MSE) return loss_mse_forward(q->pred, q->target, q->mask, q->N, q->K);
    if (q->kind == BCE) return loss_bce_forward(q->pred, q->target, q->mask, q->N);
    return loss_ce_forward(q->pred, q->cls, q->mask, q->N, q->K);
}
static void bwd(const prob *q, float *d, float dloss) {
    if (q->kind == MSE) loss_mse_backward(d, dloss, q->pred, q->target, q->mask, q->N, q->K);
    else if (q->kind == BCE) loss_bce_backward(d, dloss, q->pred, q->target, q->mask, q->N);
    else loss_ce_backward(d, dloss, q->pred, q->cls, q->mask, q->N, q->K);
}

/* The twin loss and dL/dpred (times dloss) over the whole problem. */
static double twin(const prob *q, double dloss, double *grad) {
    double msum = 0, s = 0;
    for (int i = 0; i < q->N; i++) msum += q->mask ? q->mask[i] : 1.0;
    double *g = malloc(sizeof(double) * (size_t)q->K);
    for (int i = 0; i < q->N; i++) {
        double m = q->mask ? q->mask[i] : 1.0;
        size_t off = (size_t)i * q->K;
        for (int k = 0; k < q->K; k++) if (grad) grad[off + k] = 0;
        if (m == 0 || msum <= 0) continue;
        s += m * row_twin(q->kind, q->pred + off, q->target ? q->target + off : NULL, q->cls ? q->cls[i] : 0,
                          q->K, g);
        if (grad)
            for (int k = 0; k < q->K; k++) grad[off + k] = dloss * m / msum * g[k];
    }
    free(g);
    return msum > 0 ? s / msum : 0.0;
}

static prob make(int kind, int N, int K, int mask_kind, test_rng *r) {
    prob q = {kind, N, K, NULL, NULL, NULL, NULL};
    size_t n = (size_t)N * K;
    q.pred = malloc(sizeof(float) * n);
    test_fill_normal(r, q.pred, n, kind == CE ? 2.0f : 1.5f);
    if (kind == MSE) {
        q.target = malloc(sizeof(float) * n);
        test_fill_normal(r, q.target, n, 1.0f);
    } else if (kind == BCE) {
        q.target = malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) q.target[i] = (i % 3 == 2) ? 0.3f : (float)(test_rng_u64(r) & 1);
    } else {
        q.cls = malloc(sizeof(int) * (size_t)N);
        for (int i = 0; i < N; i++) q.cls[i] = (int)(test_rng_u64(r) % (uint64_t)K);
    }
    if (mask_kind) {
        /* 1: 0/1 mask with at least one 1; 2: fractional weights and zeros */
        q.mask = malloc(sizeof(float) * (size_t)N);
        for (int i = 0; i < N; i++) {
            uint64_t u = test_rng_u64(r) % 4;
            q.mask[i] = mask_kind == 1 ? (u != 0 ? 1.0f : 0.0f) : (u == 0 ? 0.0f : 0.25f * (float)u);
        }
        q.mask[N - 1] = mask_kind == 1 ? 1.0f : 0.5f;
    }
    return q;
}

static void drop(prob *q) { free(q->pred), free(q->target), free(q->mask), free(q->cls); }

static const int shapes[][3] = {
    /* kind, N, K */
    {MSE, 1, 1}, {MSE, 7, 3}, {MSE, 41, 20}, {MSE, 64, 1},
    {BCE, 1, 1}, {BCE, 9, 1}, {BCE, 200, 1},
    {CE, 1, 1},  {CE, 1, 5},  {CE, 13, 7},   {CE, 40, 33},
};
#define NSHAPE (sizeof shapes / sizeof shapes[0])

/* ------------------------------------------------------------------------ */
/* value and gradient vs twin, accumulation, dloss                          */
/* ------------------------------------------------------------------------ */

static void test_vs_twin(void) {
    test_rng r = {test_seed() ^ 0x1055};
    for (size_t s = 0; s < NSHAPE; s++)
        for (int mk = 0; mk < 3; mk++) {
            prob q = make(shapes[s][0], shapes[s][1], shapes[s][2], mk, &r);
            size_t n = (size_t)q.N * q.K;
            double *gt = malloc(sizeof(double) * n);
            float *d = malloc(sizeof(float) * n), *want = malloc(sizeof(float) * n);
            const float dloss = 0.7f;
            double L = fwd(&q), Lt = twin(&q, dloss, gt);
            for (size_t i = 0; i < n; i++) d[i] = 0.25f, want[i] = (float)(0.25 + gt[i]);
            bwd(&q, d, dloss);
            char tag[96];
            snprintf(tag, sizeof tag, "%s N=%d K=%d mask=%s", names[q.kind], q.N, q.K,
                     mk == 0 ? "NULL" : mk == 1 ? "0/1" : "weights");
            /* loss: double sums in a different order, rel 1e-12 */
            CHECK(fabs(L - Lt) <= 1e-12 * fabs(Lt) + 1e-15, "%s loss %.17g vs twin %.17g", tag, L, Lt);
            /* gradient: one float rounding of a double value (+0.25) */
            CHECK(test_allclose(tag, d, want, n, 1e-6, 1e-7), "%s gradient (+= 0.25, dloss 0.7)", tag);
            drop(&q), free(gt), free(d), free(want);
        }
    printf("    %zu shapes x 3 masks: loss within 1e-12 relative, gradient within 1e-6\n", NSHAPE);
}

/* ------------------------------------------------------------------------ */
/* finite differences of the loss                                           */
/* ------------------------------------------------------------------------ */

static double fd_loss(void *p) { return fwd(p); }

static void test_fd(void) {
    test_rng r = {test_seed() ^ 0xFD};
    for (size_t s = 0; s < NSHAPE; s++) {
        if (shapes[s][1] * shapes[s][2] > 400) continue; /* keep it fast */
        prob q = make(shapes[s][0], shapes[s][1], shapes[s][2], 2, &r);
        size_t n = (size_t)q.N * q.K;
        float *num = malloc(sizeof(float) * n), *an = calloc(n, sizeof(float));
        test_fd_grad(fd_loss, &q, q.pred, n, 1e-3, num);
        bwd(&q, an, 1.0f);
        double worst = 0;
        for (size_t i = 0; i < n; i++) worst = fmax(worst, fabs((double)num[i] - an[i]));
        char tag[64];
        snprintf(tag, sizeof tag, "%s N=%d K=%d", names[q.kind], q.N, q.K);
        printf("    %-18s fd max |err| %.3g\n", tag, worst);
        CHECK(test_allclose(tag, num, an, n, 1e-3, 1e-7), "%s finite differences", tag);
        drop(&q), free(num), free(an);
    }
}

/* ------------------------------------------------------------------------ */
/* masks                                                                    */
/* ------------------------------------------------------------------------ */

/* Rows with mask 0 may hold garbage (NaN, ce target -1): the loss equals
 * that of the problem without those rows, and their gradient stays as it was. */
static void test_masked_rows(void) {
    test_rng r = {test_seed() ^ 0x3A5};
    for (int kind = 0; kind < 3; kind++) {
        prob q = make(kind, 12, kind == BCE ? 1 : 5, 1, &r);
        q.mask[0] = 0, q.mask[5] = 0, q.mask[11] = 1;
        size_t n = (size_t)q.N * q.K;
        double L0 = fwd(&q);
        float *d0 = calloc(n, sizeof(float));
        bwd(&q, d0, 1.0f);
        /* poison the masked rows */
        for (int i = 0; i < q.N; i++) {
            if (q.mask[i] != 0) continue;
            for (int k = 0; k < q.K; k++) {
                q.pred[(size_t)i * q.K + k] = NAN;
                if (q.target) q.target[(size_t)i * q.K + k] = NAN;
            }
            if (q.cls) q.cls[i] = -1;
        }
        double L1 = fwd(&q);
        float *d1 = malloc(sizeof(float) * n);
        for (size_t i = 0; i < n; i++) d1[i] = 0.125f;
        bwd(&q, d1, 1.0f);
        CHECK(L0 == L1, "%s: masked rows changed the loss (%.17g vs %.17g)", names[kind], L0, L1);
        int ok = 1;
        for (int i = 0; i < q.N; i++)
            for (int k = 0; k < q.K; k++) {
                float g = d1[(size_t)i * q.K + k];
                ok &= q.mask[i] == 0 ? g == 0.125f : g == (float)(0.125f + d0[(size_t)i * q.K + k]);
            }
        CHECK(ok, "%s: masked rows must get no gradient, others the same gradient", names[kind]);
        /* and the same as the loss computed on the unmasked rows alone */
        prob sub = {kind, 0, q.K, malloc(sizeof(float) * n), q.target ? malloc(sizeof(float) * n) : NULL, NULL,
                    q.cls ? malloc(sizeof(int) * (size_t)q.N) : NULL};
        for (int i = 0; i < q.N; i++) {
            if (q.mask[i] == 0) continue;
            memcpy(sub.pred + (size_t)sub.N * q.K, q.pred + (size_t)i * q.K, sizeof(float) * q.K);
            if (q.target) memcpy(sub.target + (size_t)sub.N * q.K, q.target + (size_t)i * q.K, sizeof(float) * q.K);
            if (q.cls) sub.cls[sub.N] = q.cls[i];
            sub.N++;
        }
        double Ls = fwd(&sub);
        CHECK(fabs(Ls - L1) <= 1e-14 * fabs(Ls), "%s: masked loss %.17g vs loss of kept rows %.17g", names[kind], L1,
              Ls);
        printf("    %s: loss with poisoned masked rows %.9g, on kept rows alone %.9g\n", names[kind], L1, Ls);
        drop(&q), drop(&sub), free(d0), free(d1);
    }
}

/* All-zero mask: loss exactly 0 and no gradient, whatever the inputs. */
static void test_zero_mask(void) {
    for (int kind = 0; kind < 3; kind++) {
        int N = 6, K = kind == BCE ? 1 : 4;
        float pred[24], target[24], mask[6] = {0}, d[24];
        int cls[6];
        for (int i = 0; i < 24; i++) pred[i] = NAN, target[i] = NAN, d[i] = 3.0f;
        for (int i = 0; i < 6; i++) cls[i] = -1;
        prob q = {kind, N, K, pred, kind == CE ? NULL : target, mask, kind == CE ? cls : NULL};
        double L = fwd(&q);
        bwd(&q, d, 1.0f);
        int ok = 1;
        for (int i = 0; i < N * K; i++) ok &= d[i] == 3.0f;
        CHECK(L == 0.0, "%s: all-zero mask must give loss 0 (got %g)", names[kind], L);
        CHECK(ok, "%s: all-zero mask must leave the gradient untouched", names[kind]);
    }
}

/* Mask weights: doubling every weight changes nothing (it is a weighted
 * mean); a NULL mask equals a mask of ones. */
static void test_mask_scale(void) {
    test_rng r = {test_seed() ^ 0x5CA};
    for (int kind = 0; kind < 3; kind++) {
        prob q = make(kind, 10, kind == BCE ? 1 : 3, 2, &r);
        double L = fwd(&q);
        for (int i = 0; i < q.N; i++) q.mask[i] *= 2.0f;
        double L2 = fwd(&q);
        CHECK(fabs(L - L2) <= 1e-15 * fabs(L), "%s: scaling the mask changed the loss", names[kind]);
        for (int i = 0; i < q.N; i++) q.mask[i] = 1.0f;
        double L1 = fwd(&q);
        float *m = q.mask;
        q.mask = NULL;
        double Ln = fwd(&q);
        CHECK(L1 == Ln, "%s: NULL mask %.17g vs ones %.17g", names[kind], Ln, L1);
        q.mask = m;
        drop(&q);
    }
}

/* ------------------------------------------------------------------------ */
/* stability and bad input                                                  */
/* ------------------------------------------------------------------------ */

static void test_bce_extreme(void) {
    const float zs[] = {1e4f, -1e4f, 1e3f, -1e3f, 100.0f, -100.0f, 40.0f, -40.0f};
    const float ts[] = {0.0f, 1.0f, 0.3f};
    int ok = 1;
    double worst = 0;
    for (size_t a = 0; a < sizeof zs / sizeof zs[0]; a++)
        for (size_t b = 0; b < 3; b++) {
            float z = zs[a], t = ts[b], d = 0.0f, one = 1.0f;
            double L = loss_bce_forward(&z, &t, &one, 1);
            loss_bce_backward(&d, 1.0f, &z, &t, &one, 1);
            /* for |z| >= 40, log1p(e^-|z|) < 5e-18: the loss is max(z,0) - z t */
            double want = fmax(z, 0.0) - (double)z * t + log1p(exp(-fabs((double)z)));
            double gwant = (z > 0 ? 1.0 : 0.0) - t; /* sigmoid(z) - t, saturated */
            double err = fabs(L - want) / fmax(fabs(want), 1e-300);
            if (want == 0) err = fabs(L);
            worst = fmax(worst, err);
            if (!(isfinite(L) && err <= 1e-15 && fabs(d - gwant) <= 1e-7)) {
                if (ok) printf("    z=%g t=%g: loss %.17g (want %.17g), grad %.9g (want %.9g)\n", z, t, L, want, d,
                               gwant);
                ok = 0;
            }
        }
    printf("    bce |z| in [40, 1e4]: worst relative loss error %.3g\n", worst);
    CHECK(ok, "bce must be exact and finite for large |z|");
}

static void test_ce_extreme(void) {
    /* logits of size 1e4: no overflow; the result is exact */
    float x[6] = {1e4f, 0.0f, -1e4f, 5000.0f, 5000.0f, 5000.0f};
    float one[2] = {1.0f, 1.0f};
    int t0[2] = {0, 1}, t1[2] = {1, 2};
    double L0 = loss_ce_forward(x, t0, one, 2, 3);  /* rows: (1e4 vs target 0) -> 0; equal logits -> log 3 */
    double L1 = loss_ce_forward(x, t1, one, 2, 3);  /* row 0 target 1 -> 1e4 */
    CHECK(fabs(L0 - 0.5 * log(3.0)) <= 1e-12, "ce big logits: %.17g vs %.17g", L0, 0.5 * log(3.0));
    CHECK(fabs(L1 - 0.5 * (1e4 + log(3.0))) <= 1e-9, "ce big logits: %.17g vs %.17g", L1, 0.5 * (1e4 + log(3.0)));
    float d[6] = {0};
    loss_ce_backward(d, 1.0f, x, t1, one, 2, 3);
    /* row 0: softmax = (1, 0, 0), target 1 -> (1, -1, 0) / 2; row 1: (1/3, 1/3, -2/3) / 2 */
    float want[6] = {0.5f, -0.5f, 0.0f, 1.0f / 6, 1.0f / 6, -1.0f / 3};
    CHECK(test_allclose("ce big-logit grad", d, want, 6, 1e-6, 1e-7), "ce gradient with logits of 1e4");

    /* V = 1: loss 0, gradient 0 */
    float y = 3.0f, dy = 0.0f;
    int c0 = 0;
    CHECK(loss_ce_forward(&y, &c0, one, 1, 1) == 0.0, "ce with one class must be 0");
    loss_ce_backward(&dy, 1.0f, &y, &c0, one, 1, 1);
    CHECK(dy == 0.0f, "ce with one class: gradient %g", dy);

    /* an invalid target on a row that is read: NaN loss, no gradient there */
    float z[4] = {0.1f, 0.2f, 0.3f, 0.4f}, dz[4] = {0};
    int bad[2] = {0, 7};
    double Lb = loss_ce_forward(z, bad, one, 2, 2);
    loss_ce_backward(dz, 1.0f, z, bad, one, 2, 2);
    CHECK(isnan(Lb), "ce with target 7 >= V on a read row must be NaN (got %g)", Lb);
    CHECK(dz[2] == 0.0f && dz[3] == 0.0f && dz[0] != 0.0f, "invalid-target row gets no gradient");
}

/* ------------------------------------------------------------------------ */
/* threads                                                                  */
/* ------------------------------------------------------------------------ */

static void test_threads(void) {
    test_rng r = {test_seed() ^ 0x7D};
    const int big[3][2] = {{4096, 20}, {70000, 1}, {1000, 50}}; /* all above the parallel threshold */
    int saved = omp_get_max_threads();
    for (int kind = 0; kind < 3; kind++) {
        prob q = make(kind, big[kind][0], big[kind][1], 2, &r);
        size_t n = (size_t)q.N * q.K;
        float *d1 = calloc(n, sizeof(float)), *d2 = calloc(n, sizeof(float));
        omp_set_num_threads(1);
        double L1 = fwd(&q);
        bwd(&q, d1, 1.0f);
        omp_set_num_threads(2);
        double L2 = fwd(&q);
        bwd(&q, d2, 1.0f);
        double Lt = twin(&q, 1.0, NULL);
        printf("    %s N=%d K=%d: loss 1 thread %.17g, 2 threads %.17g, twin %.17g\n", names[kind], q.N, q.K, L1, L2,
               Lt);
        CHECK(L1 == L2, "%s: loss differs between 1 and 2 threads", names[kind]);
        CHECK(!memcmp(d1, d2, n * sizeof(float)), "%s: gradient differs between 1 and 2 threads", names[kind]);
        CHECK(fabs(L1 - Lt) <= 1e-12 * fabs(Lt), "%s: large problem vs twin", names[kind]);
        drop(&q), free(d1), free(d2);
    }
    omp_set_num_threads(saved);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    par_set_min_work(0); /* small shapes must really run on 2 threads */
    TEST_RUN(test_vs_twin);
    TEST_RUN(test_fd);
    TEST_RUN(test_masked_rows);
    TEST_RUN(test_zero_mask);
    TEST_RUN(test_mask_scale);
    TEST_RUN(test_bce_extreme);
    TEST_RUN(test_ce_extreme);
    TEST_RUN(test_threads);
    return test_finish();
}
