/*
 * train_cli.c - the `iclplay train` driver (see train_cli.h).
 *
 *   iclplay train --arch mambaformer --task linear_regression --n-dims 5
 *                 --points 20 --steps 2000 --lr 1e-3 --save run.safetensors
 *
 * Every 100 steps (or --every N) it prints step, loss normalised by the
 * task's metric normaliser where that applies, steps/s and the ETA.
 */
#include "train/train_cli.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/blas.h"
#include "nn/checkpoint.h"
#include "train/trainer.h"

void train_cli_usage(void) {
    printf("usage: iclplay train [options]\n"
           "  --arch NAME       transformer | mamba | s4mamba | hybrid | mambaformer (mambaformer)\n"
           "  --task NAME       any task name (linear_regression)\n"
           "  --n-dims N        token width d (5)\n"
           "  --points N        in-context examples (20)\n"
           "  --d-model N       model width (64)\n"
           "  --n-layer N       layers, counted as the paper does (4)\n"
           "  --n-head N        attention heads (4)\n"
           "  --batch N         prompts per step (64)\n"
           "  --steps N         training steps (1000)\n"
           "  --lr X            Adam learning rate (1e-3)\n"
           "  --clip X          gradient-norm clip, 0 = off (10)\n"
           "  --seed N          model and data seed (1)\n"
           "  --threads N       threads for BLAS and kernels (2)\n"
           "  --every N         print every N steps (100)\n"
           "  --save PATH       write a checkpoint (safetensors) at the end\n");
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

int train_cli_main(int argc, char **argv) {
    const char *arch = "mambaformer", *task_name = "linear_regression", *save = NULL;
    int d = 5, points = 20, D = 64, L = 4, H = 4, B = 64, every = 100, threads = 2;
    long steps = 1000;
    double lr = 1e-3, clip = 10;
    unsigned long long seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { train_cli_usage(); return 0; }
        if (!v) { fprintf(stderr, "iclplay train: %s needs a value (see --help)\n", a); return 2; }
        i++;
        if (!strcmp(a, "--arch")) arch = v;
        else if (!strcmp(a, "--task")) task_name = v;
        else if (!strcmp(a, "--save")) save = v;
        else if (!strcmp(a, "--n-dims")) d = atoi(v);
        else if (!strcmp(a, "--points")) points = atoi(v);
        else if (!strcmp(a, "--d-model")) D = atoi(v);
        else if (!strcmp(a, "--n-layer")) L = atoi(v);
        else if (!strcmp(a, "--n-head")) H = atoi(v);
        else if (!strcmp(a, "--batch")) B = atoi(v);
        else if (!strcmp(a, "--steps")) steps = atol(v);
        else if (!strcmp(a, "--every")) every = atoi(v);
        else if (!strcmp(a, "--threads")) threads = atoi(v);
        else if (!strcmp(a, "--lr")) lr = atof(v);
        else if (!strcmp(a, "--clip")) clip = atof(v);
        else if (!strcmp(a, "--seed")) seed = strtoull(v, NULL, 10);
        else { fprintf(stderr, "iclplay train: unknown option %s (see --help)\n", a); return 2; }
    }
    if (threads < 1 || every < 1 || steps < 0) {
        fprintf(stderr, "iclplay train: --threads and --every must be >= 1, --steps >= 0\n");
        return 2;
    }
    blas_set_threads(threads);
    task_spec ts;
    task_spec_default(&ts, task_name);
    icl_status st = ICL_OK;
    if (ts.kind == TASK_LINEAR_REGRESSION || ts.kind == TASK_SPARSE_LINEAR_REGRESSION ||
        ts.kind == TASK_RELU2NN_REGRESSION || ts.kind == TASK_DECISION_TREE ||
        ts.kind == TASK_ORTHO_OUTLIER_REGRESSION || ts.kind == TASK_MANY_OUTLIER_REGRESSION ||
        ts.kind == TASK_SPARSE_PARITY || ts.kind == TASK_COT_IO) {
        if (!st) st = task_spec_set(&ts, "n_dims", d);
        if (!st) st = task_spec_set(&ts, "n_points", points);
    }
    task *t = NULL;
    if (!st) st = task_create(&t, &ts);
    if (st) { fprintf(stderr, "iclplay train: %s\n", icl_error()); return 1; }
    model_spec ms;
    st = model_spec_default(&ms, arch);
    if (!st) st = model_spec_set(&ms, "d_model", D);
    if (!st) st = model_spec_set(&ms, "n_layer", L);
    if (!st) st = model_spec_set(&ms, "n_head", H);
    if (!st) st = model_spec_fit_task(&ms, t);
    ms.seed = seed;
    model *m = NULL;
    if (!st) st = model_create(&m, &ms);
    if (st) { fprintf(stderr, "iclplay train: %s\n", icl_error()); task_free(t); return 1; }
    optim_config oc;
    optim_config_default(&oc);
    oc.lr = (float)lr;
    oc.clip = (float)clip;
    trainer tr;
    st = trainer_init(&tr, m, t, &oc, B, seed);
    if (st) { fprintf(stderr, "iclplay train: %s\n", icl_error()); model_free(m); task_free(t); return 1; }
    char desc[2048];
    model_describe(m, desc, sizeof desc);
    printf("%s\n", desc);
    task_describe(t, desc, sizeof desc);
    double norm = task_loss(t) == LOSS_MSE ? task_metric_norm(t) : 1.0;
    printf("task %s, batch %d, Adam lr %g, clip %g, %d thread(s)\n", desc, B, lr, clip, threads);
    double t0 = now_s(), tl = t0, acc = 0;
    int n_acc = 0, rc = 0;
    for (long s = 0; s < steps; s++) {
        st = trainer_step(&tr);
        if (st) { fprintf(stderr, "iclplay train: %s\n", icl_error()); rc = 1; break; }
        acc += tr.loss;
        n_acc++;
        if (tr.step % every == 0 || s == steps - 1) {
            double tn = now_s(), rate = n_acc / (tn - tl);
            double eta = (steps - s - 1) / (tr.step / (tn - t0));
            printf("step %6ld  loss %.4f  (%.4f of zero)  |g| %.3g  %.1f steps/s  ETA %.0fs\n", tr.step,
                   acc / n_acc, acc / n_acc / (task_loss(t) == LOSS_MSE ? norm * task_out(t) / task_metric_out(t) : 1.0),
                   tr.grad_norm, rate, eta);
            fflush(stdout);
            acc = 0;
            n_acc = 0;
            tl = tn;
        }
    }
    if (!rc && save) {
        st = checkpoint_save(save, m, &tr.opt, NULL, NULL, 0);
        if (st) { fprintf(stderr, "iclplay train: %s\n", icl_error()); rc = 1; }
        else printf("saved %s\n", save);
    }
    trainer_free(&tr);
    model_free(m);
    task_free(t);
    return rc;
}
