/*
 * bench_engine.c - `make bench`: training-step speed of every architecture.
 *
 * For each architecture, configuration (small, medium of the engine issue)
 * and thread count (1, 2): the median time of a full training step
 * (sample + forward + loss + backward + clip + Adam) over several steps
 * after warm-up, tokens per second, the model's FLOPs per step (GEMMs and
 * attention counted exactly; elementwise work not counted), and the share of
 * the sgemm ceiling measured in the same run with the same thread count,
 * and where the step's time goes per kind of kernel (core/prof.h; "other"
 * is the rest: gates, bias sums, copies, residual adds).
 * Not a test: it prints, it does not judge.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/blas.h"
#include "core/prof.h"
#include "train/trainer.h"

#include "bench_util.h"

/* GFLOP/s of a square sgemm, the best a GEMM-bound step could reach. */
static double sgemm_ceiling(int threads) {
    const int n = 1024;
    float *A = malloc(sizeof(float) * n * n), *B = malloc(sizeof(float) * n * n), *C = malloc(sizeof(float) * n * n);
    for (int i = 0; i < n * n; i++) { A[i] = (float)(i % 7) * 0.1f; B[i] = (float)(i % 5) * 0.1f; }
    blas_set_threads(threads);
    blas_gemm(0, 0, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
    double t[7];
    for (int r = 0; r < 7; r++) {
        double t0 = now_s();
        blas_gemm(0, 0, n, n, n, 1.0f, A, n, B, n, 0.0f, C, n);
        t[r] = now_s() - t0;
    }
    free(A); free(B); free(C);
    return 2.0 * n * n * n / median(t, 7) / 1e9;
}

/* FLOPs of one training step: forward GEMMs x 3 (the backward does two
 * GEMMs per forward GEMM), causal attention counted over the lower triangle. */
static double step_flops(const model *m, int B, int T) {
    const double BT = (double)B * T, D = m->D, E = m->E, N = m->N, R = m->R, O = m->spec.n_out;
    double f = 2 * BT * m->spec.n_dims * D + 2 * BT * D * O;
    for (int i = 0; i < m->spec.n_blocks; i++) {
        switch (m->spec.blocks[i]) {
        case BLOCK_ATTN: f += 2 * BT * D * 3 * D + 2 * BT * D * D + 2.0 * 2 * B * (T * (T + 1) / 2.0) * D; break;
        case BLOCK_MLP: f += 2 * 2 * BT * D * 4 * D; break;
        case BLOCK_MAMBA: f += 2 * BT * D * 2 * E + 2 * BT * E * (R + 2 * N) + 2 * BT * R * E + 2 * BT * E * D; break;
        case BLOCK_S4MAMBA: f += 2 * BT * D * 2 * E + 2 * BT * E * D + 2.0 * B * (T * (T + 1) / 2.0) * E; break;
        default: break;
        }
    }
    return 3 * f;
}

typedef struct { const char *name; int D, L, H, d, points, B, warm, reps; } config;

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    const config cfgs[] = {{"small", 64, 4, 4, 5, 20, 64, 3, 15}, {"medium", 128, 8, 8, 10, 40, 64, 2, 7}};
    const char *archs[] = {"transformer", "mamba", "s4mamba", "hybrid", "mambaformer"};
    double ceil_gf[3] = {0, sgemm_ceiling(1), sgemm_ceiling(2)};
    printf("iclplay engine benchmark: training step = sample + forward + backward + clip + Adam\n");
    printf("sgemm ceiling (1024^3, OpenBLAS %s kernels): %.1f GFLOP/s with 1 thread, %.1f with 2\n\n",
           blas_kernels(), ceil_gf[1], ceil_gf[2]);
    printf("%-7s %-12s %3s %10s %12s %10s %8s %9s\n", "config", "arch", "thr", "ms/step", "tokens/s", "GFLOP/st",
           "GFLOP/s", "%ceiling");
    for (size_t c = 0; c < sizeof cfgs / sizeof *cfgs; c++) {
        const config *k = &cfgs[c];
        if (only && strcmp(only, k->name)) continue;
        for (size_t a = 0; a < sizeof archs / sizeof *archs; a++) {
            double ms1 = 0;
            for (int th = 1; th <= 2; th++) {
                blas_set_threads(th);
                task_spec ts;
                task_spec_default(&ts, "linear_regression");
                task_spec_set(&ts, "n_dims", k->d);
                task_spec_set(&ts, "n_points", k->points);
                task *t = NULL;
                model_spec ms;
                model_spec_default(&ms, archs[a]);
                model_spec_set(&ms, "n_dims", k->d);
                model_spec_set(&ms, "d_model", k->D);
                model_spec_set(&ms, "n_layer", k->L);
                model_spec_set(&ms, "n_head", k->H);
                model *m = NULL;
                trainer tr;
                optim_config oc;
                optim_config_default(&oc);
                oc.lr = 1e-3f;
                oc.clip = 10.0f;
                if (task_create(&t, &ts) || model_create(&m, &ms) || trainer_init(&tr, m, t, &oc, k->B, 1)) {
                    fprintf(stderr, "bench: %s\n", icl_error());
                    return 1;
                }
                for (int i = 0; i < k->warm; i++) trainer_step(&tr);
                double times[64];
                for (int i = 0; i < k->reps; i++) {
                    double t0 = now_s();
                    trainer_step(&tr);
                    times[i] = now_s() - t0;
                }
                double s = median(times, k->reps);
                /* where the time goes: a few more steps with the per-kernel clock on */
                prof_reset();
                prof_enable(1);
                double tp0 = now_s();
                for (int i = 0; i < 3; i++) trainer_step(&tr);
                double tp = now_s() - tp0;
                prof_enable(0);
                int T = 2 * k->points;
                double gf = step_flops(m, k->B, T) / 1e9;
                printf("%-7s %-12s %3d %10.2f %12.0f %10.3f %8.1f %8.1f%%", k->name, archs[a], th, s * 1e3,
                       k->B * T / s, gf, gf / s, 100 * gf / s / ceil_gf[th]);
                if (th == 1) ms1 = s;
                else printf("   2 threads: %.2fx", ms1 / s);
                printf("\n");
                printf("        time:");
                double acc = 0;
                for (int kk = 0; kk < PROF_COUNT; kk++) {
                    double f = prof_seconds((prof_kind)kk) / tp;
                    acc += f;
                    if (f >= 0.005) printf(" %s %.0f%%", prof_name((prof_kind)kk), 100 * f);
                }
                printf(" other %.0f%%\n", 100 * (1 - acc));
                fflush(stdout);
                trainer_free(&tr);
                model_free(m);
                task_free(t);
            }
        }
    }
    return 0;
}
