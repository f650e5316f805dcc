/*
 * test_optim.c - Adam and AdamW against a double-precision twin of
 * torch.optim.Adam / AdamW's update rule, gradient-norm clipping, the
 * deterministic gradient norm, the learning-rate schedules, the refusal
 * of a non-finite gradient (nothing changes), and the vectorised update and
 * its check (optim_check) against a scalar float twin, bit for bit.
 */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/parallel.h"
#include "nn/optim.h"
#include "testlib.h"

/* The reference: torch's Adam(W) for one parameter vector, in double. */
static void adam_ref(double *p, double *m, double *v, const double *g, size_t n, int t, double lr, double b1,
                     double b2, double eps, double wd, int decoupled, double clip_scale) {
    double bc1 = 1 - pow(b1, t), bc2 = 1 - pow(b2, t);
    for (size_t i = 0; i < n; i++) {
        double gi = g[i] * clip_scale;
        if (wd > 0 && !decoupled) gi += wd * p[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        if (wd > 0 && decoupled) p[i] -= lr * wd * p[i];
        p[i] -= lr * (m[i] / bc1) / (sqrt(v[i] / bc2) + eps);
    }
}

static void run_case(int decoupled, double wd, double clip) {
    enum { N = 1000, STEPS = 20 };
    test_rng r = {test_seed() + (uint64_t)decoupled * 7 + (uint64_t)(clip * 3)};
    float p[N], g[N];
    double pr[N], mr[N] = {0}, vr[N] = {0}, gr[N];
    test_fill_normal(&r, p, N, 1.0f);
    for (int i = 0; i < N; i++) pr[i] = p[i];
    optim_config c;
    optim_config_default(&c);
    c.lr = 1e-2f;
    c.weight_decay = (float)wd;
    c.decoupled = decoupled;
    c.clip = (float)clip;
    optim o;
    CHECK(optim_create(&o, &c, N) == ICL_OK, "%s", icl_error());
    for (int s = 1; s <= STEPS; s++) {
        test_fill_normal(&r, g, N, 0.5f);
        double norm = 0;
        for (int i = 0; i < N; i++) { gr[i] = g[i]; norm += gr[i] * gr[i]; }
        norm = sqrt(norm);
        double scale = (clip > 0 && norm > clip) ? clip / (norm + 1e-6) : 1.0;
        CHECK(optim_step(&o, p, g) == ICL_OK, "%s", icl_error());
        CHECK(fabs(o.last_grad_norm - norm) <= 1e-9 * norm, "grad norm %.12g vs %.12g", o.last_grad_norm, norm);
        adam_ref(pr, mr, vr, gr, N, s, (float)c.lr, (float)c.beta1, (float)c.beta2, (float)c.eps, (float)wd, decoupled,
                 scale);
    }
    float prf[N];
    for (int i = 0; i < N; i++) prf[i] = (float)pr[i];
    CHECK(test_allclose("params", p, prf, N, 1e-5, 1e-6), "decoupled %d wd %g clip %g: Adam differs from the reference",
          decoupled, wd, clip);
    CHECK(o.t == STEPS, "update count %ld", o.t);
    optim_free(&o);
}

static void test_adam(void) { run_case(0, 0, 0); }
static void test_adam_l2(void) { run_case(0, 0.1, 0); }
static void test_adamw(void) { run_case(1, 0.1, 0); }
static void test_clipping(void) { run_case(0, 0, 1.0); }

static void test_norm_thread_independent(void) {
    enum { N = 300001 };
    float *g = malloc(sizeof(float) * N);
    test_rng r = {test_seed()};
    test_fill_normal(&r, g, N, 1.0f);
    omp_set_num_threads(1);
    double n1 = optim_grad_norm(g, N);
    omp_set_num_threads(2);
    double n2 = optim_grad_norm(g, N);
    double ref = 0;
    for (int i = 0; i < N; i++) ref += (double)g[i] * g[i];
    CHECK(n1 == n2, "norm differs with 1 and 2 threads: %.17g vs %.17g", n1, n2);
    CHECK(fabs(n1 - sqrt(ref)) <= 1e-12 * sqrt(ref), "norm %.17g vs %.17g", n1, sqrt(ref));
    free(g);
}

static void test_schedules(void) {
    optim_config c;
    optim_config_default(&c);
    c.lr = 1e-3f;
    CHECK(optim_lr_at(&c, 0) == (double)c.lr && optim_lr_at(&c, 99999) == (double)c.lr, "constant");
    c.schedule = SCHED_WARMUP;
    c.warmup = 10;
    CHECK(fabs(optim_lr_at(&c, 0) - 0.1 * c.lr) < 1e-12 && fabs(optim_lr_at(&c, 4) - 0.5 * c.lr) < 1e-12, "warm-up ramps linearly");
    CHECK(optim_lr_at(&c, 10) == (double)c.lr && optim_lr_at(&c, 500) == (double)c.lr, "flat after warm-up");
    c.schedule = SCHED_COSINE;
    c.total = 110;
    c.min_lr = 1e-5f;
    CHECK(optim_config_validate(&c) == ICL_OK, "%s", icl_error());
    CHECK(fabs(optim_lr_at(&c, 10) - c.lr) < 1e-12, "cosine starts at lr");
    CHECK(fabs(optim_lr_at(&c, 60) - (c.min_lr + 0.5 * (c.lr - c.min_lr))) < 1e-9, "cosine half-way");
    CHECK(fabs(optim_lr_at(&c, 110) - c.min_lr) < 1e-12 && fabs(optim_lr_at(&c, 1000) - c.min_lr) < 1e-12,
          "cosine ends at min_lr");
    c.total = 5;
    CHECK(optim_config_validate(&c) == ICL_ERR_ARG && strstr(icl_error(), "total"), "total <= warmup: %s",
          icl_error());
    optim_config_default(&c);
    c.beta2 = 1.0f;
    CHECK(optim_config_validate(&c) == ICL_ERR_ARG && strstr(icl_error(), "beta2"), "beta2 = 1: %s", icl_error());
}

static void test_nonfinite_refused(void) {
    enum { N = 50 };
    float p[N], g[N], p0[N];
    test_rng r = {test_seed()};
    test_fill_normal(&r, p, N, 1.0f);
    test_fill_normal(&r, g, N, 1.0f);
    memcpy(p0, p, sizeof p);
    optim_config c;
    optim_config_default(&c);
    optim o;
    optim_create(&o, &c, N);
    g[17] = NAN;
    CHECK(optim_step(&o, p, g) == ICL_ERR_NUMERIC, "a NaN gradient must be refused");
    CHECK(!memcmp(p, p0, sizeof p) && o.t == 0, "nothing changed");
    g[17] = INFINITY;
    CHECK(optim_step(&o, p, g) == ICL_ERR_NUMERIC && strstr(icl_error(), "Inf"), "Inf: %s", icl_error());
    optim_free(&o);
}

/* The scalar float twin of one update, the expressions of optim.c's
 * adam_elem written out again (the vectorised loop must store exactly
 * these bits: no FMA contraction, exactly rounded division and sqrt). */
static void adam_twin(float *p, float *m, float *v, const float *g, size_t n, long t, float lr, const optim_config *c,
                      double norm) {
    float gscale = c->clip > 0 && norm > c->clip ? (float)(c->clip / (norm + 1e-6)) : 1.0f;
    const float b1 = c->beta1, b2 = c->beta2, wd = c->weight_decay;
    const float bc1 = (float)(1.0 - pow(b1, (double)t)), bc2 = (float)(1.0 - pow(b2, (double)t));
    for (size_t i = 0; i < n; i++) {
        float gi = g[i] * gscale;
        if (wd > 0 && !c->decoupled) gi += wd * p[i];
        m[i] = b1 * m[i] + (1.0f - b1) * gi;
        v[i] = b2 * v[i] + (1.0f - b2) * gi * gi;
        float mhat = m[i] / bc1, vhat = v[i] / bc2;
        if (wd > 0 && c->decoupled) p[i] -= lr * wd * p[i];
        p[i] -= lr * mhat / (sqrtf(vhat) + c->eps);
    }
}

/* optim_step_norm at sizes around the vector width and the check's blocks
 * (4096), with Adam, Adam + L2, AdamW and clipping, on 1 and 2 threads:
 * parameters and moments bit for bit the twin's, three updates running. */
static void test_step_matches_twin(void) {
    static const size_t sizes[] = {1, 15, 17, 4096 + 3, 3 * 4096 + 5};
    for (int variant = 0; variant < 4; variant++)
        for (size_t si = 0; si < sizeof sizes / sizeof *sizes; si++)
            for (int th = 1; th <= 2; th++) {
                const size_t n = sizes[si];
                float *p = test_falloc(n), *g = test_falloc(n), *pt = test_falloc(n), *mt = test_falloc(n),
                      *vt = test_falloc(n);
                test_rng r = {test_seed() + 31 * si + (uint64_t)variant};
                test_fill_normal(&r, p, n, 1.0f);
                memcpy(pt, p, sizeof(float) * n);
                memset(mt, 0, sizeof(float) * n);
                memset(vt, 0, sizeof(float) * n);
                optim_config c;
                optim_config_default(&c);
                c.lr = 1e-2f;
                if (variant == 1) c.weight_decay = 0.1f;
                if (variant == 2) c.weight_decay = 0.1f, c.decoupled = 1;
                if (variant == 3) c.clip = 0.5f;
                optim o;
                CHECK(optim_create(&o, &c, n) == ICL_OK, "%s", icl_error());
                omp_set_num_threads(th);
                int same = 1;
                for (int s = 1; s <= 3; s++) {
                    test_fill_normal(&r, g, n, 2.0f);
                    double norm = optim_grad_norm(g, n);
                    float lr = (float)optim_lr_at(&c, o.t);
                    CHECK(optim_check(&o, p, g, norm) == n, "a finite update flagged");
                    CHECK(optim_step_norm(&o, p, g, norm) == ICL_OK, "%s", icl_error());
                    adam_twin(pt, mt, vt, g, n, s, lr, &c, norm);
                    same &= !memcmp(p, pt, sizeof(float) * n) && !memcmp(o.m, mt, sizeof(float) * n) &&
                            !memcmp(o.v, vt, sizeof(float) * n);
                }
                CHECK(same, "variant %d, n %zu, %d thread(s): the update differs from the scalar twin", variant, n,
                      th);
                optim_free(&o);
                free(p), free(g), free(pt), free(mt), free(vt);
            }
    omp_set_num_threads(2);
}

/* optim_check finds the FIRST index whose update would overflow, in any
 * block (4096) and at any lane, on 1 and 2 threads; the step then indeed
 * makes that element non-finite and none before it. */
static void test_check_first(void) {
    enum { N = 3 * 4096 + 100 };
    static const size_t bad_sets[][3] = {{5, 9000, 12000}, {N - 3, N - 2, N - 1}, {4095, 4096, 8191},
                                         {8200, 8199, 100}, {0, N - 1, 7}};
    float *p = test_falloc(N), *g = test_falloc(N);
    for (size_t k = 0; k < sizeof bad_sets / sizeof *bad_sets; k++)
        for (int th = 1; th <= 2; th++) {
            test_rng r = {test_seed() + k};
            test_fill_normal(&r, p, N, 1.0f);
            test_fill_normal(&r, g, N, 1.0f);
            size_t want = N;
            for (int j = 0; j < 3; j++) {
                g[bad_sets[k][j]] = 1e30f; /* (1 - beta2) g^2 overflows float: v becomes Inf */
                if (bad_sets[k][j] < want) want = bad_sets[k][j];
            }
            optim_config c;
            optim_config_default(&c); /* no clipping: the huge gradient reaches the moments */
            optim o;
            CHECK(optim_create(&o, &c, N) == ICL_OK, "%s", icl_error());
            omp_set_num_threads(th);
            double norm = 1.0; /* finite, as the trainer's check order guarantees; no clip applies */
            size_t got = optim_check(&o, p, g, norm);
            CHECK(got == want, "set %zu, %d thread(s): first bad index %zu, want %zu", k, th, got, want);
            CHECK(optim_step_norm(&o, p, g, norm) == ICL_OK, "%s", icl_error());
            size_t first = N;
            for (size_t i = 0; i < N && first == N; i++)
                if (!isfinite(p[i]) || !isfinite(o.m[i]) || !isfinite(o.v[i])) first = i;
            CHECK(first == want, "set %zu: the step made index %zu non-finite first, the check said %zu", k, first,
                  want);
            optim_free(&o);
        }
    omp_set_num_threads(2);
    free(p), free(g);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    par_set_min_work(0);
    TEST_RUN(test_adam);
    TEST_RUN(test_adam_l2);
    TEST_RUN(test_adamw);
    TEST_RUN(test_clipping);
    TEST_RUN(test_norm_thread_independent);
    TEST_RUN(test_schedules);
    TEST_RUN(test_nonfinite_refused);
    TEST_RUN(test_step_matches_twin);
    TEST_RUN(test_check_first);
    return test_finish();
}
