/*
 * bench_tasks.c - what the data side of the playground costs: sampling one
 * batch of 64 prompts of every task at a playground-sized setting, and
 * running every baseline on one batch, side by side in one table (median
 * wall time of a few repetitions, ms). Run by `make bench`; no pass/fail.
 *
 * Sizes: the regression tasks at d = 5 (20 points for linear and sparse,
 * 40 for the others), parity at d = 10 with 140 points, CoT-I/O, vector and
 * token MQAR at their defaults. Baselines: the linear ones on linear
 * regression (d 5, 20 points), the trees on decision trees (d 5, 40 points)
 * and gd_2nn on 2NN regression (d 5, 40 points). The last row is a whole
 * default evaluation (1,280 prompts, the task's default baselines, no model).
 *
 * Each row gives the CPU time of the work on one OpenMP thread (the cost
 * itself: other processes on the machine do not change it), and the wall
 * times with 1 thread and with all of them. On a shared or busy machine
 * wall times are what a user waits, and a parallel region can cost more
 * than its work (a descheduled thread holds up the others).
 * Each cell repeats until BENCH_REPS runs or BENCH_BUDGET_S seconds, at
 * least once, so the whole program stays well under a minute even with
 * gd_2nn's ~5 s per batch. It is not a test: nothing here can fail.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "tasks/baselines.h"
#include "tasks/task.h"
#include "train/evaluate.h"

#define BENCH_B 64
#define BENCH_REPS 7
#define BENCH_BUDGET_S 3.0

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef icl_status (*bench_fn)(void *ctx, int rep);

static int max_threads = 1;
static int phase = 0; /* 0 while timing with 1 thread, 1 with all */

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Median wall and calling-thread CPU ms of fn over up to BENCH_REPS runs
 * within the budget; 0 on error. */
static int time_once(bench_fn fn, void *ctx, double *wall_ms, double *cpu_ms, int *reps) {
    double w[BENCH_REPS], c[BENCH_REPS], start = now_s();
    int n = 0;
    while (n < BENCH_REPS && (n == 0 || now_s() - start < BENCH_BUDGET_S)) {
        double t0 = now_s(), c0 = thread_cpu_s();
        if (fn(ctx, n) != ICL_OK) {
            printf("  error: %s\n", icl_error());
            return 0;
        }
        c[n] = 1e3 * (thread_cpu_s() - c0);
        w[n++] = 1e3 * (now_s() - t0);
    }
    *wall_ms = median(w, n);
    *cpu_ms = median(c, n);
    *reps = n;
    return 1;
}

/* One row: [0] the CPU time of the calling thread with 1 OpenMP thread (all
 * the work, and immune to other processes on the machine), [1] the wall
 * time with 1 thread, [2] the wall time with all threads. 0 on error. */
static int time_it(bench_fn fn, void *ctx, double ms[3], int *reps) {
    int r1 = 0, r2 = 0;
    double unused;
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    phase = 0;
    int ok = time_once(fn, ctx, &ms[1], &ms[0], &r1);
#ifdef _OPENMP
    omp_set_num_threads(max_threads);
#endif
    phase = 1;
    ok = ok && time_once(fn, ctx, &ms[2], &unused, &r2);
    *reps = r1 < r2 ? r1 : r2;
    return ok;
}

static void print_row(const char *label, const double ms[3], int reps, int per_prompt) {
    printf("  %-50s %10.3f %10.3f %10.3f %5d", label, ms[0], ms[1], ms[2], reps);
    if (per_prompt) printf(" %10.2f", 1e3 * ms[0] / BENCH_B);
    printf("\n");
}

static void print_head(const char *what, int per_prompt) {
    char tn[24];
    snprintf(tn, sizeof tn, "wall %d thr", max_threads);
    printf("  %-50s %10s %10s %10s %5s%s\n", what, "cpu 1 thr", "wall 1 thr", tn, "reps",
           per_prompt ? "  cpu us/pr" : "");
}

static task *make_task(const char *name, int d, int points) {
    task_spec s;
    task_spec_default(&s, name);
    if (d > 0 && task_spec_set(&s, "n_dims", d) != ICL_OK) return NULL;
    if (points > 0 && task_spec_set(&s, "n_points", points) != ICL_OK) return NULL;
    task *t = NULL;
    if (task_create(&t, &s) != ICL_OK) {
        printf("  cannot create %s: %s\n", name, icl_error());
        return NULL;
    }
    return t;
}

/* ---- sampling ------------------------------------------------------------- */

typedef struct {
    task *t;
    batch b;
} sample_ctx;

static icl_status run_sample(void *ctx, int rep) {
    sample_ctx *c = ctx;
    return task_sample(c->t, &c->b, BENCH_B, 42, (uint64_t)rep * BENCH_B);
}

static void bench_sampling(void) {
    static const struct {
        const char *name;
        int d, points;
    } cases[] = {
        {"linear_regression", 5, 20},        {"sparse_linear_regression", 5, 20}, {"relu2nn_regression", 5, 40},
        {"decision_tree", 5, 40},            {"ortho_outlier_regression", 5, 40}, {"many_outlier_regression", 5, 40},
        {"sparse_parity", 10, 140},          {"cot_io", 0, 0},                    {"vector_mqar", 0, 0},
        {"token_mqar", 0, 0},
    };
    printf("\nsampling one batch of %d prompts\n", BENCH_B);
    print_head("task", 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sample_ctx c;
        memset(&c, 0, sizeof c);
        c.t = make_task(cases[i].name, cases[i].d, cases[i].points);
        if (!c.t) continue;
        if (task_batch_alloc(&c.b, c.t, BENCH_B) != ICL_OK) {
            printf("  %s: %s\n", cases[i].name, icl_error());
            task_free(c.t);
            continue;
        }
        /* the row: name and the sizes that matter */
        char label[64];
        if (task_d(c.t) > 0)
            snprintf(label, sizeof label, "%s d=%d T=%d", cases[i].name, task_d(c.t), task_T(c.t));
        else
            snprintf(label, sizeof label, "%s V=%d T=%d", cases[i].name, task_vocab(c.t), task_T(c.t));
        double ms[3];
        int reps;
        if (time_it(run_sample, &c, ms, &reps)) print_row(label, ms, reps, 1);
        task_batch_free(&c.b);
        task_free(c.t);
    }
}

/* ---- baselines ---------------------------------------------------------------- */

/* A baseline workspace fixes its thread count when it is made (one slice
 * per thread), so there is one for each phase. */
typedef struct {
    const baseline_info *bl;
    baseline_ws **ws; /* [2]: made with 1 thread, with all */
    batch *b;
    float *pred;
} predict_ctx;

static icl_status run_predict(void *ctx, int rep) {
    predict_ctx *c = ctx;
    return baseline_predict(c->bl, c->ws[phase], c->b, c->pred, 7 + (uint64_t)rep);
}

static void bench_baselines_on(const char *task_name, int d, int points, const char *const *names, int n_names) {
    task *t = make_task(task_name, d, points);
    if (!t) return;
    batch b;
    baseline_ws *ws[2] = {NULL, NULL};
    float *pred = NULL;
#ifdef _OPENMP
    omp_set_num_threads(1);
#endif
    icl_status st1 = baseline_ws_new(&ws[0], BENCH_B, task_T(t), task_d(t));
#ifdef _OPENMP
    omp_set_num_threads(max_threads);
#endif
    if (st1 != ICL_OK || task_batch_alloc(&b, t, BENCH_B) != ICL_OK || task_sample(t, &b, BENCH_B, 42, 0) != ICL_OK ||
        baseline_ws_new(&ws[1], BENCH_B, task_T(t), task_d(t)) != ICL_OK ||
        !(pred = malloc((size_t)BENCH_B * task_T(t) * sizeof *pred))) {
        printf("  %s: %s\n", task_name, icl_error());
    } else {
        for (int i = 0; i < n_names; i++) {
            predict_ctx c = {baseline_by_name(names[i]), ws, &b, pred};
            if (!c.bl) {
                printf("  %s: %s\n", names[i], icl_error());
                continue;
            }
            char label[96];
            snprintf(label, sizeof label, "%s on %s d=%d N=%d", names[i], task_name, task_d(t), task_examples(t));
            double ms[3];
            int reps;
            if (time_it(run_predict, &c, ms, &reps)) print_row(label, ms, reps, 1);
        }
    }
    free(pred);
    baseline_ws_free(ws[0]);
    baseline_ws_free(ws[1]);
    task_batch_free(&b);
    task_free(t);
}

static void bench_baselines(void) {
    printf("\nbaselines on one batch of %d prompts (every position predicted)\n", BENCH_B);
    print_head("baseline", 1);
    static const char *const linear[] = {"least_squares", "knn",         "averaging",  "lasso_1",
                                         "lasso_0.1",     "lasso_0.01",  "lasso_0.001", "lasso_0.0001"};
    static const char *const trees[] = {"greedy_tree_4", "greedy_tree"};
    static const char *const nn[] = {"gd_2nn"};
    bench_baselines_on("linear_regression", 5, 20, linear, (int)(sizeof linear / sizeof linear[0]));
    bench_baselines_on("decision_tree", 5, 40, trees, 2);
    bench_baselines_on("relu2nn_regression", 5, 40, nn, 1);
}

/* ---- a whole default evaluation (baselines only) -------------------------------- */

typedef struct {
    task *t;
    eval_options o;
} eval_ctx;

static icl_status run_eval(void *ctx, int rep) {
    (void)rep;
    eval_ctx *c = ctx;
    eval_report r;
    icl_status st = evaluate(NULL, c->t, &c->o, &r);
    eval_report_free(&r);
    return st;
}

static void bench_evaluation(void) {
    printf("\nwhole evaluation, %d prompts, default baselines, no model (incl. 1,000 bootstrap resamples per curve)\n",
           EVAL_N_PROMPTS);
    print_head("task", 0);
    static const struct {
        const char *name;
        int d, points;
    } cases[] = {{"linear_regression", 5, 20}, {"sparse_linear_regression", 5, 20}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        eval_ctx c;
        c.t = make_task(cases[i].name, cases[i].d, cases[i].points);
        if (!c.t) continue;
        eval_options_default(&c.o, c.t);
        char label[96];
        snprintf(label, sizeof label, "%s d=%d N=%d (%d curves)", cases[i].name, cases[i].d, cases[i].points,
                 c.o.n_baselines);
        double ms[3];
        int reps;
        if (time_it(run_eval, &c, ms, &reps)) print_row(label, ms, reps, 0);
        task_free(c.t);
    }
}

int main(void) {
#ifdef _OPENMP
    max_threads = omp_get_max_threads();
#endif
    double t0 = now_s();
    double load[1] = {0};
    if (getloadavg(load, 1) != 1) load[0] = NAN;
    printf("bench_tasks: medians of up to %d runs (~%.0f s at most per cell), in ms; 1 and %d OpenMP thread(s);\n"
           "  load average %.2f on this machine when it started (wall times suffer when it exceeds the cores)\n",
           BENCH_REPS, BENCH_BUDGET_S, max_threads, load[0]);
    bench_sampling();
    bench_baselines();
    bench_evaluation();
    printf("\nbench_tasks: %.1f s in all\n", now_s() - t0);
    return 0;
}
