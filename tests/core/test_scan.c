/*
 * test_scan.c - tests of the selective scan (src/core/scan.c).
 *
 *   - forward and scan_states against a naive twin: the literal recurrence of
 *     scan.h in double, on several shapes (all-ones, odd sizes, and Bm/Cm as
 *     column slices of a wider x_proj row (B, T, R + 2N [+ pad]));
 *   - central finite differences of every input and parameter (u, delta,
 *     A_log, Bm, Cm via the whole x_proj buffer, D), loss L = sum r * y;
 *   - bitwise identical results for 1 and 2 OpenMP threads;
 *   - backward writes du, ddelta, dBm, dCm and accumulates (+=) dA_log
 *     and dD, and never writes past scan_scratch_floats or scan_ckpt_floats,
 *     or outside the Bm/Cm columns of the x_proj gradient;
 *   - the backward without the forward's checkpoints (hck NULL) gives the
 *     same bits as with them;
 *   - the register-blocked kernels (N = 16, E a multiple of 16, AVX-512)
 *     against the channel-major ones: the same bits but for dBm/dCm, and an
 *     FD check of their own; the other tests run blocked shapes too.
 * All of it twice: with the default chunk length (no chunk boundary in these
 * small shapes) and with chunks of 3 steps (scan_set_max_chunk), so every
 * shape with T > 3 crosses checkpoints, and most end in a shorter chunk.
 * Inputs are initialisation-like: A_log = log n (+ small noise so channels
 * differ), delta in [0.01, 0.5], u, B, C ~ N(0, 1), D ~ N(0, 1).
 */
#include "core/scan.h"
#include "core/parallel.h"
#include "testlib.h"

#include <omp.h>

/* One test problem. Bm and Cm live inside xp (B, T, ldx) at columns R and
 * R + N, exactly like the real x_proj output; ldx >= R + 2N. */
typedef struct {
    int B, T, E, N, R, ldx;
    float *u, *delta, *A_log, *xp, *D, *r; /* r: the loss projection, (B, T, E) */
    float *y, *hck, *scratch; /* hck: the forward's checkpoints */
    size_t nscratch, nck;
} problem;

static int max_threads(void) { return omp_get_max_threads() > 2 ? omp_get_max_threads() : 2; }

static problem problem_new(int B, int T, int E, int N, int R, int pad, uint64_t seed) {
    problem p = {B, T, E, N, R, R + 2 * N + pad, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    test_rng rng = {seed};
    size_t BTE = (size_t)B * T * E, EN = (size_t)E * N;
    p.u = malloc(BTE * sizeof(float));
    p.delta = malloc(BTE * sizeof(float));
    p.A_log = malloc(EN * sizeof(float));
    p.xp = malloc((size_t)B * T * p.ldx * sizeof(float));
    p.D = malloc((size_t)E * sizeof(float));
    p.r = malloc(BTE * sizeof(float));
    p.y = malloc(BTE * sizeof(float));
    test_fill_normal(&rng, p.u, BTE, 1.0f);
    test_fill_uniform(&rng, p.delta, BTE, 0.01f, 0.5f);
    for (int c = 0; c < E; c++)
        for (int n = 0; n < N; n++) p.A_log[(size_t)c * N + n] = logf((float)(n + 1)) + 0.1f * test_rng_normal(&rng);
    test_fill_normal(&rng, p.xp, (size_t)B * T * p.ldx, 1.0f);
    test_fill_normal(&rng, p.D, (size_t)E, 1.0f);
    test_fill_normal(&rng, p.r, BTE, 1.0f);
    p.nscratch = scan_scratch_floats(B, T, E, N, max_threads());
    p.scratch = malloc((p.nscratch + 1) * sizeof(float));
    p.nck = scan_ckpt_floats(B, T, E, N);
    p.hck = malloc((p.nck + 1) * sizeof(float));
    return p;
}

static void problem_free(problem *p) {
    free(p->u); free(p->delta); free(p->A_log); free(p->xp); free(p->D); free(p->r); free(p->y);
    free(p->hck); free(p->scratch);
}

static const float *Bm_of(const problem *p) { return p->xp + p->R; }
static const float *Cm_of(const problem *p) { return p->xp + p->R + p->N; }

static void run_forward(problem *p) {
    scan_forward(p->y, p->hck, p->u, p->delta, p->A_log, Bm_of(p), Cm_of(p), p->ldx, p->D, p->B, p->T, p->E, p->N,
                 p->scratch);
}

/* Gradients of one backward call; dxp has the x_proj layout (B, T, ldx). */
typedef struct {
    float *du, *ddelta, *dA_log, *dxp, *dD;
} grads;

static grads grads_new(const problem *p) {
    size_t BTE = (size_t)p->B * p->T * p->E;
    grads g = {calloc(BTE, sizeof(float)), calloc(BTE, sizeof(float)),
               calloc((size_t)p->E * p->N, sizeof(float)), calloc((size_t)p->B * p->T * p->ldx, sizeof(float)),
               calloc((size_t)p->E, sizeof(float))};
    return g;
}
static void grads_free(grads *g) { free(g->du); free(g->ddelta); free(g->dA_log); free(g->dxp); free(g->dD); }

/* The forward (for its checkpoints), then the backward. */
static void run_backward(problem *p, grads *g) {
    run_forward(p);
    scan_backward(g->du, g->ddelta, g->dA_log, g->dxp + p->R, g->dxp + p->R + p->N, g->dD, p->r, p->hck, p->u,
                  p->delta, p->A_log, Bm_of(p), Cm_of(p), p->ldx, p->D, p->B, p->T, p->E, p->N, p->scratch);
}

/* ---- the naive twin: the recurrence of scan.h, literally, in double ---- */

/* y (B, T, E); hs, if not NULL, receives the states of sequence hs_b (T, E, N). */
static void naive_scan(double *y, double *hs, int hs_b, const problem *p) {
    int B = p->B, T = p->T, E = p->E, N = p->N;
    double *h = calloc((size_t)E * N, sizeof(double));
    for (int b = 0; b < B; b++) {
        memset(h, 0, (size_t)E * N * sizeof(double));
        for (int t = 0; t < T; t++) {
            size_t row = (size_t)b * T + t;
            for (int c = 0; c < E; c++) {
                double d = p->delta[row * E + c], u = p->u[row * E + c], acc = 0;
                for (int n = 0; n < N; n++) {
                    double A = -exp((double)p->A_log[(size_t)c * N + n]);
                    double Bn = p->xp[row * p->ldx + p->R + n], Cn = p->xp[row * p->ldx + p->R + N + n];
                    double *hn = &h[(size_t)c * N + n];
                    *hn = exp(d * A) * *hn + d * Bn * u;
                    acc += Cn * *hn;
                    if (hs && b == hs_b) hs[((size_t)t * E + c) * N + n] = *hn;
                }
                y[row * E + c] = acc + p->D[c] * u;
            }
        }
    }
    free(h);
}

typedef struct { int B, T, E, N, R, pad; } shape;
static const shape shapes[] = {
    {1, 1, 1, 1, 0, 0},   /* everything degenerate */
    {1, 7, 1, 1, 0, 0},   /* one channel, one state */
    {2, 1, 3, 2, 0, 0},   /* T = 1 */
    {3, 11, 5, 3, 0, 0},  /* odd sizes, dense Bm/Cm (ldbc = N) */
    {2, 13, 7, 16, 2, 0}, /* N = 16 as in Mamba, x_proj row R + 2N */
    {3, 9, 6, 5, 3, 2},   /* slices of a wider, padded row */
    {2, 9, 16, 2, 1, 0},  /* E = 16: whole vectors, no remainder */
    {3, 7, 16, 4, 0, 2},  /* the same, N = 4, padded */
    {2, 11, 32, 16, 2, 1} /* E = 32, N = 16 */
};
#define NSHAPES (sizeof shapes / sizeof shapes[0])

static void test_forward_matches_naive(void) {
    for (size_t s = 0; s < NSHAPES; s++) {
        shape sh = shapes[s];
        problem p = problem_new(sh.B, sh.T, sh.E, sh.N, sh.R, sh.pad, test_seed() + s);
        size_t BTE = (size_t)sh.B * sh.T * sh.E;
        double *yd = malloc(BTE * sizeof(double));
        float *yf = malloc(BTE * sizeof(float));
        run_forward(&p);
        naive_scan(yd, NULL, 0, &p);
        double worst = 0;
        for (size_t i = 0; i < BTE; i++) {
            yf[i] = (float)yd[i];
            worst = fmax(worst, fabs(yd[i] - p.y[i]));
        }
        printf("  shape B%d T%d E%d N%d R%d pad%d: worst |y - naive| = %.3g\n", sh.B, sh.T, sh.E, sh.N, sh.R,
               sh.pad, worst);
        /* float kernel vs double twin: a few float ulps of |y| ~ 1..10 */
        CHECK(test_allclose("y", p.y, yf, BTE, 1e-5, 1e-5), "shape %zu", s);
        free(yd); free(yf);
        problem_free(&p);
    }
}

static void test_states_match_naive(void) {
    for (size_t s = 0; s < NSHAPES; s++) {
        shape sh = shapes[s];
        problem p = problem_new(sh.B, sh.T, sh.E, sh.N, sh.R, sh.pad, test_seed() + 100 + s);
        size_t TEN = (size_t)sh.T * sh.E * sh.N, BTE = (size_t)sh.B * sh.T * sh.E;
        double *yd = malloc(BTE * sizeof(double)), *hd = malloc(TEN * sizeof(double));
        float *hf = malloc(TEN * sizeof(float)), *hn = malloc(TEN * sizeof(float));
        int b = sh.B - 1; /* the last sequence, so the offset of b matters */
        scan_states(hf, p.u, p.delta, p.A_log, Bm_of(&p), Cm_of(&p), p.ldx, b, sh.T, sh.E, sh.N);
        naive_scan(yd, hd, b, &p);
        for (size_t i = 0; i < TEN; i++) hn[i] = (float)hd[i];
        CHECK(test_allclose("h", hf, hn, TEN, 1e-5, 1e-6), "shape %zu", s);
        free(yd); free(hd); free(hf); free(hn);
        problem_free(&p);
    }
}

/* ---- finite differences ---- */

static double loss_of(void *ctx) {
    problem *p = ctx;
    run_forward(p);
    return test_dot(p->r, p->y, (size_t)p->B * p->T * p->E);
}

/* Central differences in double over the float forward. y is linear in each
 * of u, Bm, Cm and D on its own, so their differences have no truncation
 * error and a large step (0.1) keeps the float rounding of L (~1e-6,
 * divided by 2 eps) small: tolerance 1e-3 |ana| + 1e-4. delta and A_log
 * enter through exp(delta A): step 1e-3 and tolerance 1e-2 |ana| + 2e-3
 * cover the O(eps^2) truncation (|A| up to ~20) and the rounding / 2e-3. */
static int fd_check(const char *what, problem *p, float *param, size_t n, const float *analytic, double eps,
                    double rtol, double atol) {
    float *num = malloc(n * sizeof(float));
    test_fd_grad(loss_of, p, param, n, eps, num);
    double worst = 0, ratio = 0; /* ratio: worst error / its tolerance */
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)num[i] - analytic[i]);
        worst = fmax(worst, err);
        ratio = fmax(ratio, err / (atol + rtol * fabs((double)analytic[i])));
    }
    printf("    d%-6s worst |fd - analytic| = %.3g (eps %g), %.2f of tolerance\n", what, worst, eps, ratio);
    int ok = test_allclose(what, num, analytic, n, rtol, atol);
    free(num);
    return ok;
}

static void test_gradients_fd(void) {
    /* one thread: FD runs thousands of tiny forwards, and thread wake-ups on a
     * busy machine would dominate; test_threads_bitwise covers 2 threads */
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    for (size_t s = 0; s < NSHAPES; s++) {
        shape sh = shapes[s];
        if (sh.E * sh.N > 64) sh.E = 3; /* keep the FD loop small */
        problem p = problem_new(sh.B, sh.T, sh.E, sh.N, sh.R, sh.pad, test_seed() + 200 + s);
        printf("  shape B%d T%d E%d N%d R%d pad%d\n", sh.B, sh.T, sh.E, sh.N, sh.R, sh.pad);
        grads g = grads_new(&p);
        run_backward(&p, &g);
        size_t BTE = (size_t)sh.B * sh.T * sh.E;
        CHECK(fd_check("u", &p, p.u, BTE, g.du, 0.1, 1e-3, 1e-4), "shape %zu", s);
        CHECK(fd_check("delta", &p, p.delta, BTE, g.ddelta, 1e-3, 1e-2, 2e-3), "shape %zu", s);
        CHECK(fd_check("A_log", &p, p.A_log, (size_t)sh.E * sh.N, g.dA_log, 1e-3, 1e-2, 2e-3), "shape %zu", s);
        /* the whole x_proj row: Bm, Cm, and columns the scan must not touch */
        CHECK(fd_check("xproj", &p, p.xp, (size_t)sh.B * sh.T * p.ldx, g.dxp, 0.1, 1e-3, 1e-4), "shape %zu", s);
        CHECK(fd_check("D", &p, p.D, (size_t)sh.E, g.dD, 0.1, 1e-3, 1e-4), "shape %zu", s);
        grads_free(&g);
        problem_free(&p);
    }
    /* one shape that runs the register-blocked kernels (N 16, E 16), kept
     * short so that the 16 x 16 A_log entries stay cheap to difference */
    problem p = problem_new(1, 6, 16, 16, 1, 1, test_seed() + 250);
    printf("  shape B1 T6 E16 N16 R1 pad1%s\n", scan_blocked(16, 16) ? " (register-blocked kernels)" : "");
    grads g = grads_new(&p);
    run_backward(&p, &g);
    CHECK(fd_check("u", &p, p.u, 96, g.du, 0.1, 1e-3, 1e-4), "blocked shape");
    CHECK(fd_check("delta", &p, p.delta, 96, g.ddelta, 1e-3, 1e-2, 2e-3), "blocked shape");
    CHECK(fd_check("A_log", &p, p.A_log, 256, g.dA_log, 1e-3, 1e-2, 2e-3), "blocked shape");
    CHECK(fd_check("xproj", &p, p.xp, (size_t)6 * p.ldx, g.dxp, 0.1, 1e-3, 1e-4), "blocked shape");
    CHECK(fd_check("D", &p, p.D, 16, g.dD, 0.1, 1e-3, 1e-4), "blocked shape");
    grads_free(&g);
    problem_free(&p);
    omp_set_num_threads(saved);
}

/* Columns of the x_proj gradient outside Bm/Cm stay exactly as they were. */
static void test_backward_touches_only_bc(void) {
    problem p = problem_new(3, 6, 4, 5, 3, 2, test_seed() + 300);
    grads g = grads_new(&p);
    size_t nx = (size_t)p.B * p.T * p.ldx;
    for (size_t i = 0; i < nx; i++) g.dxp[i] = 7.0f;
    run_backward(&p, &g);
    int bad = 0;
    for (size_t i = 0; i < nx; i++) {
        int col = (int)(i % (size_t)p.ldx);
        int inside = col >= p.R && col < p.R + 2 * p.N;
        if (!inside && g.dxp[i] != 7.0f) bad++;
        if (inside && g.dxp[i] == 7.0f) bad++; /* every B/C entry gets a gradient */
    }
    CHECK(bad == 0, "%d x_proj gradient entries wrong (outside written or inside untouched)", bad);
    grads_free(&g);
    problem_free(&p);
}

/* ---- determinism, writes and accumulation, scratch bounds ---- */

/* 1 when every gradient of a and b has the same bits; says which differ. */
static int same_grads(const problem *p, const grads *a, const grads *b) {
    size_t BTE = (size_t)p->B * p->T * p->E, EN = (size_t)p->E * p->N, nx = (size_t)p->B * p->T * p->ldx;
    const struct { const char *name; const float *x, *y; size_t n; } all[] = {
        {"du", a->du, b->du, BTE}, {"ddelta", a->ddelta, b->ddelta, BTE}, {"dA_log", a->dA_log, b->dA_log, EN},
        {"dBm/dCm", a->dxp, b->dxp, nx}, {"dD", a->dD, b->dD, (size_t)p->E}};
    int same = 1;
    for (size_t k = 0; k < sizeof all / sizeof all[0]; k++)
        if (memcmp(all[k].x, all[k].y, all[k].n * sizeof(float))) {
            printf("    %s differs\n", all[k].name);
            same = 0;
        }
    return same;
}

static void threads_bitwise(int E) {
    /* B = 5 sequences over 2 threads: uneven split */
    problem p = problem_new(5, 17, E, 16, 3, 1, test_seed() + 400);
    size_t BTE = (size_t)p.B * p.T * p.E;
    float *y1 = malloc(BTE * sizeof(float));
    grads g1 = grads_new(&p), g2 = grads_new(&p);
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    run_forward(&p);
    memcpy(y1, p.y, BTE * sizeof(float));
    run_backward(&p, &g1);
    omp_set_num_threads(2);
    run_forward(&p);
    run_backward(&p, &g2);
    omp_set_num_threads(saved);
    CHECK(!memcmp(y1, p.y, BTE * sizeof(float)), "E %d: y differs between 1 and 2 threads", E);
    CHECK(same_grads(&p, &g1, &g2), "E %d: gradients differ between 1 and 2 threads", E);
    free(y1);
    grads_free(&g1); grads_free(&g2);
    problem_free(&p);
}

/* E = 23 (a vector remainder) and E = 32 (none). */
static void test_threads_bitwise(void) {
    threads_bitwise(23);
    threads_bitwise(32);
}

static int accum_ok(const char *what, const float *got, const float *init, const float *fresh, size_t n) {
    float *want = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) want[i] = init[i] + fresh[i];
    int ok = test_allclose(what, got, want, n, 1e-6, 1e-6);
    free(want);
    return ok;
}

/* Into buffers full of other values, the backward writes du, ddelta and
 * the Bm, Cm columns of dxproj (the same bits as into zeros), leaves the
 * other x_proj columns as they were, and adds to dA_log and dD. */
static void backward_writes(int E, int N) {
    printf("    E %d N %d%s\n", E, N, scan_blocked(E, N) ? " (register-blocked kernels)" : "");
    problem p = problem_new(2, 8, E, N, 2, 1, test_seed() + 500);
    size_t BTE = (size_t)p.B * p.T * p.E, EN = (size_t)p.E * p.N, nx = (size_t)p.B * p.T * p.ldx;
    grads fresh = grads_new(&p), acc = grads_new(&p), init = grads_new(&p);
    test_rng rng = {test_seed() + 501};
    test_fill_normal(&rng, init.du, BTE, 1.0f);
    test_fill_normal(&rng, init.ddelta, BTE, 1.0f);
    test_fill_normal(&rng, init.dA_log, EN, 1.0f);
    test_fill_normal(&rng, init.dxp, nx, 1.0f);
    test_fill_normal(&rng, init.dD, (size_t)p.E, 1.0f);
    memcpy(acc.du, init.du, BTE * sizeof(float));
    memcpy(acc.ddelta, init.ddelta, BTE * sizeof(float));
    memcpy(acc.dA_log, init.dA_log, EN * sizeof(float));
    memcpy(acc.dxp, init.dxp, nx * sizeof(float));
    memcpy(acc.dD, init.dD, (size_t)p.E * sizeof(float));
    run_backward(&p, &fresh);
    run_backward(&p, &acc);
    CHECK(!memcmp(acc.du, fresh.du, BTE * sizeof(float)), "du not overwritten");
    CHECK(!memcmp(acc.ddelta, fresh.ddelta, BTE * sizeof(float)), "ddelta not overwritten");
    int bc_bad = 0, other_bad = 0;
    for (size_t i = 0; i < nx; i++) {
        int col = (int)(i % (size_t)p.ldx), bc = col >= p.R && col < p.R + 2 * p.N;
        if (bc) bc_bad += memcmp(&acc.dxp[i], &fresh.dxp[i], sizeof(float)) != 0;
        else other_bad += memcmp(&acc.dxp[i], &init.dxp[i], sizeof(float)) != 0;
    }
    CHECK(bc_bad == 0, "%d dBm/dCm entries not overwritten", bc_bad);
    CHECK(other_bad == 0, "%d x_proj entries outside Bm/Cm changed", other_bad);
    CHECK(accum_ok("dA_log", acc.dA_log, init.dA_log, fresh.dA_log, EN), "dA_log not accumulated");
    CHECK(accum_ok("dD", acc.dD, init.dD, fresh.dD, (size_t)p.E), "dD not accumulated");
    grads_free(&fresh); grads_free(&acc); grads_free(&init);
    problem_free(&p);
}

/* A small shape (channel-major kernels) and N = 16, E = 32 (blocked). */
static void test_backward_writes(void) {
    backward_writes(5, 4);
    backward_writes(32, 16);
}

/* The kernels stay inside scan_scratch_floats(..., omp_get_max_threads()). */
static void scratch_bounds(int E, int N) {
    printf("    E %d N %d%s\n", E, N, scan_blocked(E, N) ? " (register-blocked kernels)" : "");
    problem p = problem_new(4, 10, E, N, 1, 0, test_seed() + 600);
    const float sentinel = -12345.0f;
    /* size the scratch for exactly the threads that will run */
    int nt = omp_get_max_threads();
    size_t need = scan_scratch_floats(p.B, p.T, p.E, p.N, nt);
    CHECK(need > 0 && need <= p.nscratch, "scratch size %zu (allocated %zu)", need, p.nscratch);
    CHECK(scan_scratch_floats(p.B, p.T, p.E, p.N, nt + 1) > need, "scratch does not grow with threads");
    CHECK(scan_scratch_floats(0, p.T, p.E, p.N, nt) == 0, "empty batch needs no scratch");
    float *scratch = malloc((need + 64) * sizeof(float)), *hck = malloc((p.nck + 64) * sizeof(float));
    for (size_t i = 0; i < need + 64; i++) scratch[i] = sentinel;
    for (size_t i = 0; i < p.nck + 64; i++) hck[i] = sentinel;
    grads g = grads_new(&p);
    scan_forward(p.y, hck, p.u, p.delta, p.A_log, Bm_of(&p), Cm_of(&p), p.ldx, p.D, p.B, p.T, p.E, p.N, scratch);
    scan_backward(g.du, g.ddelta, g.dA_log, g.dxp + p.R, g.dxp + p.R + p.N, g.dD, p.r, hck, p.u, p.delta, p.A_log,
                  Bm_of(&p), Cm_of(&p), p.ldx, p.D, p.B, p.T, p.E, p.N, scratch);
    int touched = 0, ck_touched = 0, ck_unset = 0;
    for (size_t i = need; i < need + 64; i++) touched += scratch[i] != sentinel;
    for (size_t i = p.nck; i < p.nck + 64; i++) ck_touched += hck[i] != sentinel;
    for (size_t i = 0; i < p.nck; i++) ck_unset += hck[i] == sentinel;
    CHECK(touched == 0, "%d floats written past the scratch size", touched);
    CHECK(ck_touched == 0, "%d floats written past the checkpoints (%zu)", ck_touched, p.nck);
    CHECK(ck_unset == 0, "%d of %zu checkpoint floats never written", ck_unset, p.nck);
    free(scratch);
    free(hck);
    grads_free(&g);
    problem_free(&p);
}

static void test_scratch_bounds(void) {
    scratch_bounds(6, 7);
    scratch_bounds(16, 16); /* E 16: the blocked scratch is the larger */
}

/* Forward and backward without checkpoints (the backward makes its own)
 * against with them: the same bits. */
static void without_checkpoints(int E) {
    printf("    E %d%s\n", E, scan_blocked(E, 16) ? " (register-blocked kernels)" : "");
    problem p = problem_new(3, 41, E, 16, 2, 1, test_seed() + 700);
    size_t BTE = (size_t)p.B * p.T * p.E;
    float *y1 = malloc(BTE * sizeof(float));
    grads g1 = grads_new(&p), g2 = grads_new(&p);
    printf("    chunk length %d, %zu checkpoint floats\n", scan_chunk_len(p.E, p.N), p.nck);
    run_forward(&p);
    memcpy(y1, p.y, BTE * sizeof(float));
    run_backward(&p, &g1);
    scan_forward(p.y, NULL, p.u, p.delta, p.A_log, Bm_of(&p), Cm_of(&p), p.ldx, p.D, p.B, p.T, p.E, p.N,
                 p.scratch);
    scan_backward(g2.du, g2.ddelta, g2.dA_log, g2.dxp + p.R, g2.dxp + p.R + p.N, g2.dD, p.r, NULL, p.u, p.delta,
                  p.A_log, Bm_of(&p), Cm_of(&p), p.ldx, p.D, p.B, p.T, p.E, p.N, p.scratch);
    CHECK(!memcmp(y1, p.y, BTE * sizeof(float)), "y differs without checkpoints");
    CHECK(same_grads(&p, &g1, &g2), "gradients differ without checkpoints");
    free(y1);
    grads_free(&g1); grads_free(&g2);
    problem_free(&p);
}

static void test_without_checkpoints(void) {
    without_checkpoints(9);
    without_checkpoints(32);
}

/* The register-blocked kernels against the channel-major ones (the hook
 * scan_set_channel_major), with and without the forward's checkpoints, over
 * several chunks and a partial last one: y, the checkpoints, du, ddelta,
 * dA_log and dD the same bits (the same expressions); dBm and dCm sum their
 * E channels in another order, so to float rounding. */
static void blocked_vs_channel_major(int B, int T, int E, int with_ck) {
    problem p = problem_new(B, T, E, 16, 3, 1, test_seed() + 800 + E);
    size_t BTE = (size_t)B * T * E, nx = (size_t)B * T * p.ldx;
    float *y = malloc(BTE * sizeof(float)), *ck = malloc((p.nck + 1) * sizeof(float));
    float *hck = with_ck ? p.hck : NULL;
    grads gb = grads_new(&p), gc = grads_new(&p);
    for (int pass = 0; pass < 2; pass++) { /* 0: blocked, 1: channel-major */
        grads *g = pass ? &gc : &gb;
        scan_set_channel_major(pass);
        scan_forward(p.y, hck, p.u, p.delta, p.A_log, Bm_of(&p), Cm_of(&p), p.ldx, p.D, B, T, E, 16, p.scratch);
        scan_backward(g->du, g->ddelta, g->dA_log, g->dxp + p.R, g->dxp + p.R + p.N, g->dD, p.r, hck, p.u, p.delta,
                      p.A_log, Bm_of(&p), Cm_of(&p), p.ldx, p.D, B, T, E, 16, p.scratch);
        if (pass == 0) {
            memcpy(y, p.y, BTE * sizeof(float));
            memcpy(ck, p.hck, p.nck * sizeof(float));
        }
    }
    scan_set_channel_major(0);
    const char *how = with_ck ? "with checkpoints" : "without";
    CHECK(!memcmp(y, p.y, BTE * sizeof(float)), "E %d %s: y differs", E, how);
    CHECK(!with_ck || !memcmp(ck, p.hck, p.nck * sizeof(float)), "E %d: checkpoints differ", E);
    CHECK(!memcmp(gb.du, gc.du, BTE * sizeof(float)), "E %d %s: du differs", E, how);
    CHECK(!memcmp(gb.ddelta, gc.ddelta, BTE * sizeof(float)), "E %d %s: ddelta differs", E, how);
    CHECK(!memcmp(gb.dA_log, gc.dA_log, (size_t)E * 16 * sizeof(float)), "E %d %s: dA_log differs", E, how);
    CHECK(!memcmp(gb.dD, gc.dD, (size_t)E * sizeof(float)), "E %d %s: dD differs", E, how);
    CHECK(test_allclose("dBm/dCm", gb.dxp, gc.dxp, nx, 1e-5, 1e-5), "E %d %s: dBm/dCm", E, how);
    free(y); free(ck);
    grads_free(&gb); grads_free(&gc);
    problem_free(&p);
}

static void test_blocked_matches_channel_major(void) {
    if (!scan_blocked(16, 16)) {
        printf("    the register-blocked kernels are not compiled for this target (no AVX-512 with FMA):\n"
               "    every shape runs the channel-major kernels, which the other tests cover\n");
        return;
    }
    const int Es[] = {16, 32, 128};
    for (int k = 0; k < 3; k++) {
        printf("    B 3 T 41 E %d N 16, chunk length %d\n", Es[k], scan_chunk_len(Es[k], 16));
        blocked_vs_channel_major(3, 41, Es[k], 1);
        blocked_vs_channel_major(3, 41, Es[k], 0);
    }
}

static void run_all(void) {
    TEST_RUN(test_forward_matches_naive);
    TEST_RUN(test_states_match_naive);
    TEST_RUN(test_gradients_fd);
    TEST_RUN(test_backward_touches_only_bc);
    TEST_RUN(test_threads_bitwise);
    TEST_RUN(test_backward_writes);
    TEST_RUN(test_scratch_bounds);
    TEST_RUN(test_without_checkpoints);
    TEST_RUN(test_blocked_matches_channel_major);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    par_set_min_work(0); /* small shapes must really run on 2 threads */
    printf("# default chunk length (at most 32 steps)\n");
    run_all();
    printf("# chunks of at most 3 steps\n");
    scan_set_max_chunk(3);
    run_all();
    scan_set_max_chunk(0);
    return test_finish();
}
