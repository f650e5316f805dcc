/*
 * bench_step.c - iclplay's side of `make bench-torch` (scripts/bench_torch.sh,
 * issue 6): times training steps of one architecture in its own process, and
 * dumps one forward + backward for the PyTorch cross-check
 * (scripts/bench_torch.py check).
 *
 *   bench_step time ARCH CONFIG THREADS WARM REPS
 *       WARM + REPS training steps (sample + forward + loss + backward + clip
 *       10 + Adam lr 1e-3, src/train/trainer.h, as tests/bench/bench_engine.c
 *       does) on linear regression; prints one JSON line: the median, min and
 *       mean step time of the REPS timed steps, the peak resident memory of
 *       the process (getrusage ru_maxrss) and its resident memory before the
 *       model was built (VmRSS), so the model's own share can be read.
 *   bench_step dump ARCH CONFIG OUT.safetensors
 *       For model seed 1 and data seed 1 (stream 0): every parameter under
 *       its checkpoint name, the batch (batch.x (B,T,d) as the model reads
 *       it, batch.y (B,T,1), batch.mask (B,T)), the predictions out (B,T,1),
 *       the loss (shape (1); also as metadata "loss" with 17 digits) and
 *       grad.<name> for every parameter after one forward + backward of the
 *       masked MSE (no clipping, no optimiser step).
 *   bench_step            (no arguments, as `make bench` runs it) prints
 *       its usage and exits 0.
 *
 * ARCH: transformer | mamba | s4mamba | hybrid | mambaformer.
 * CONFIG (exactly tests/bench/bench_engine.c's, plus the paper's size):
 *   small   d_model 64,  n_layer 4,  4 heads, n_dims 5,  20 points, batch 64
 *   medium  d_model 128, n_layer 8,  8 heads, n_dims 10, 40 points, batch 64
 *   paper   d_model 256, n_layer 12, 8 heads, n_dims 20, 41 points, batch 64
 * (n_layer counted as iclplay's model_spec counts it, src/nn/model.h).
 *
 * Not a test and not a judge: it measures or writes, nothing else.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "core/blas.h"
#include "core/loss.h"
#include "core/safetensors.h"
#include "train/trainer.h"
#include "bench_util.h"

typedef struct { const char *name; int D, L, H, d, points, B; } config;

static const config configs[] = {
    {"small", 64, 4, 4, 5, 20, 64},
    {"medium", 128, 8, 8, 10, 40, 64},
    {"paper", 256, 12, 8, 20, 41, 64},
};

/* Resident kB from /proc/self/status ("VmRSS:" or "VmHWM:"), -1 if unknown. */
static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    if (!f) return -1;
    size_t k = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, k)) {
            v = strtol(line + k, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

static int usage(FILE *out) {
    fprintf(out,
            "bench_step: iclplay's side of `make bench-torch` (scripts/bench_torch.sh)\n"
            "  bench_step time ARCH CONFIG THREADS WARM REPS   JSON line of step times and peak RSS\n"
            "  bench_step dump ARCH CONFIG OUT.safetensors     weights, batch, loss, gradients\n"
            "  ARCH: transformer mamba s4mamba hybrid mambaformer; CONFIG: small medium paper\n");
    return 0;
}

/* Model, task and trainer of one (arch, config). */
static icl_status setup(const char *arch, const config *k, task **t, model **m, trainer *tr) {
    task_spec ts;
    model_spec ms;
    optim_config oc;
    icl_status st;
    task_spec_default(&ts, "linear_regression");
    if ((st = task_spec_set(&ts, "n_dims", k->d)) || (st = task_spec_set(&ts, "n_points", k->points))) return st;
    if ((st = model_spec_default(&ms, arch))) return st;
    if ((st = model_spec_set(&ms, "n_dims", k->d)) || (st = model_spec_set(&ms, "d_model", k->D)) ||
        (st = model_spec_set(&ms, "n_layer", k->L)) || (st = model_spec_set(&ms, "n_head", k->H)))
        return st;
    optim_config_default(&oc);
    oc.lr = 1e-3f;
    oc.clip = 10.0f;
    if ((st = task_create(t, &ts))) return st;
    if ((st = model_create(m, &ms))) return st;
    return trainer_init(tr, *m, *t, &oc, k->B, 1);
}

/* Reports the library's last error; the status for main. */
static int fail(void) {
    fprintf(stderr, "bench_step: %s\n", icl_error());
    return 1;
}

static int run_time(const char *arch, const config *k, int threads, int warm, int reps) {
    long base_kb = status_kb("VmRSS:");
    blas_set_threads(threads);
    task *t = NULL;
    model *m = NULL;
    trainer tr;
    if (setup(arch, k, &t, &m, &tr)) return fail();
    for (int i = 0; i < warm; i++)
        if (trainer_step(&tr)) return fail();
    double *times = malloc(sizeof(double) * (size_t)reps), sum = 0;
    if (!times) return 1;
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        if (trainer_step(&tr)) return fail();
        times[i] = now_s() - t0;
        sum += times[i];
    }
    double med = median(times, reps); /* sorts: times[0] is the minimum */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("{\"impl\":\"iclplay\",\"arch\":\"%s\",\"config\":\"%s\",\"threads\":%d,\"warm\":%d,\"reps\":%d,"
           "\"median_ms\":%.4f,\"min_ms\":%.4f,\"mean_ms\":%.4f,\"peak_rss_kb\":%ld,\"vmhwm_kb\":%ld,"
           "\"base_rss_kb\":%ld,\"n_params\":%zu,\"loss\":%.6g}\n",
           arch, k->name, threads, warm, reps, med * 1e3, times[0] * 1e3, sum / reps * 1e3, ru.ru_maxrss,
           status_kb("VmHWM:"), base_kb, m->n_params, tr.loss);
    free(times);
    trainer_free(&tr);
    model_free(m);
    task_free(t);
    return 0;
}

static int run_dump(const char *arch, const config *k, const char *path) {
    task *t = NULL;
    model *m = NULL;
    trainer tr;
    if (setup(arch, k, &t, &m, &tr)) return fail();
    batch *b = &tr.b;
    const int O = m->spec.n_out;
    icl_status st = task_sample(t, b, k->B, 1, 0);
    if (!st) st = model_forward(m, b->x, b->tok, k->B, b->T);
    if (st) return fail();
    const int N = k->B * b->T;
    double loss = trainer_loss_of(b, m->out, O);
    float loss_f = (float)loss;
    memset(tr.dout, 0, sizeof(float) * (size_t)N * O);
    loss_mse_backward(tr.dout, 1.0f, m->out, b->y, b->mask, N, O);
    model_zero_grad(m);
    if (model_backward(m, tr.dout)) return fail();
    /* every parameter, every gradient, then batch, predictions, loss */
    const size_t nt = (size_t)m->n_tensors, n = 2 * nt + 5;
    st_tensor *ts = calloc(n, sizeof *ts);
    char(*names)[64] = calloc(nt, sizeof *names);
    if (!ts || !names) return 1;
    for (size_t i = 0; i < nt; i++) {
        const param_tensor *p = &m->table[i];
        snprintf(names[i], sizeof names[i], "grad.%s", p->name);
        for (int g = 0; g < 2; g++) {
            st_tensor *s = &ts[g * nt + i];
            s->name = g ? names[i] : p->name;
            s->ndim = p->ndim;
            for (int j = 0; j < p->ndim; j++) s->shape[j] = p->shape[j];
            s->data = (g ? m->grads : m->params) + p->offset;
        }
    }
    const int64_t B = k->B, T = b->T, d = b->d;
    ts[2 * nt + 0] = (st_tensor){"batch.x", 3, {B, T, d}, b->x};
    ts[2 * nt + 1] = (st_tensor){"batch.y", 3, {B, T, O}, b->y};
    ts[2 * nt + 2] = (st_tensor){"batch.mask", 2, {B, T}, b->mask};
    ts[2 * nt + 3] = (st_tensor){"out", 3, {B, T, O}, m->out};
    ts[2 * nt + 4] = (st_tensor){"loss", 1, {1}, &loss_f};
    char spec[4096], loss_s[40];
    model_spec_to_json(&m->spec, spec, sizeof spec);
    snprintf(loss_s, sizeof loss_s, "%.17g", loss);
    const char *mk[] = {"format", "model_spec", "config", "loss"};
    const char *mv[] = {"iclplay-bench-dump", spec, k->name, loss_s};
    st = st_write(path, ts, n, mk, mv, 4);
    free(ts);
    free(names);
    if (st) return fail();
    printf("wrote %s: %s %s, %zu parameters, loss %.9g\n", path, arch, k->name, m->n_params, loss);
    trainer_free(&tr);
    model_free(m);
    task_free(t);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) return usage(stdout);
    const config *k = NULL;
    if (argc >= 4)
        for (size_t i = 0; i < sizeof configs / sizeof *configs; i++)
            if (!strcmp(argv[3], configs[i].name)) k = &configs[i];
    if (!strcmp(argv[1], "time") && argc == 7 && k) {
        int th = atoi(argv[4]), warm = atoi(argv[5]), reps = atoi(argv[6]);
        if (th < 1 || warm < 0 || reps < 1) return usage(stderr), 2;
        return run_time(argv[2], k, th, warm, reps);
    }
    if (!strcmp(argv[1], "dump") && argc == 5 && k) return run_dump(argv[2], k, argv[4]);
    usage(stderr);
    return 2;
}
