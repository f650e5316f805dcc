/*
 * test_train.c - the training engine end to end on linear regression:
 * every architecture learns (loss clearly below the zero predictor's within
 * a stated budget), the same seed gives an identical loss trajectory,
 * 1 and 2 threads give identical trajectories, saving at step 25 and
 * resuming gives steps 26-50 bit for bit, a non-finite step changes
 * nothing, and the checkpoint loader rejects corrupted and mismatched files.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/blas.h"
#include "nn/checkpoint.h"
#include "train/trainer.h"
#include "testlib.h"
#include "train_testutil.h"

static char tmpdir[256];

/* Learning. Linear regression, d_model 32, n_layer 2, batch 32, Adam lr 3e-3,
 * clipping 10. The zero predictor scores E[y^2] = d (normalised 1); the mean
 * over positions of the best possible error is about 0.2 (the first d
 * positions cannot be solved). Each architecture must bring the mean loss
 * of its last 50 steps below `bar` x the zero predictor's within `steps`.
 * Mamba-style models: d = 3, 10 points, 400 steps, bar 0.6 (they reach
 * about 0.5 by then). The Transformer sits on a plateau near 1 first (the
 * reference runs saw ~2,500 steps at d = 5), so it gets d = 2, 8 points,
 * 2,000 steps, bar 0.8 (it reaches about 0.68 by 1,500); the hybrid gets
 * 600 steps. Measured with `iclplay train` at these settings. */
/* Under AddressSanitizer (make test's second pass) training runs ~10x
 * slower and these 4,000 steps took 6 minutes: there the same code runs for
 * 100 steps per architecture, for the memory checks, and the learning bar is
 * left to the release pass of the same `make test`, which says so. */
#if defined(__SANITIZE_ADDRESS__)
#define LEARN_SANITIZED 1
#else
#define LEARN_SANITIZED 0
#endif

static void learn(const char *arch, int d, int points, int steps, double bar) {
    if (LEARN_SANITIZED) steps = 100;
    task *t = tu_task("linear_regression", d, points);
    model *m = tu_model(arch, d, 32, 2, 4, test_seed());
    optim_config oc;
    optim_config_default(&oc);
    oc.lr = 3e-3f;
    oc.clip = 10.0f;
    trainer tr;
    icl_status st = trainer_init(&tr, m, t, &oc, 32, test_seed());
    CHECK(st == ICL_OK, "trainer_init: %s", icl_error());
    if (st) return;
    double tail = 0, first = 0;
    for (int i = 0; i < steps; i++) {
        st = trainer_step(&tr);
        if (st) { CHECK(0, "step %d: %s", i, icl_error()); break; }
        if (i < 50) first += tr.loss / 50;
        if (i >= steps - 50) tail += tr.loss / 50;
    }
    double zero = d;
    printf("    %-12s d=%d: first 50 steps %.3f, last 50 of %d steps %.3f (normalised %.3f, bar %.2f)\n", arch, d,
           first / zero, steps, tail, tail / zero, bar);
    if (LEARN_SANITIZED)
        printf("    (sanitizer build: %d steps for the memory checks; the release pass checks the bar)\n", steps);
    else
        CHECK(tail < bar * zero, "%s: normalised loss %.3f after %d steps is not below %.2f", arch, tail / zero, steps,
              bar);
    trainer_free(&tr);
    model_free(m);
    task_free(t);
}

static void test_learn_transformer(void) { learn("transformer", 2, 8, 2000, 0.8); }
static void test_learn_mamba(void) { learn("mamba", 3, 10, 400, 0.6); }
static void test_learn_s4mamba(void) { learn("s4mamba", 3, 10, 400, 0.6); }
static void test_learn_hybrid(void) { learn("hybrid", 3, 10, 600, 0.6); }
static void test_learn_mambaformer(void) { learn("mambaformer", 3, 10, 400, 0.6); }

/* 50 losses of a fresh run. */
static void trajectory(const char *arch, int threads, double *loss, float **final_params, size_t *np) {
    blas_set_threads(threads);
    task *t = tu_task("linear_regression", 4, 8);
    model *m = tu_model(arch, 4, 16, 2, 4, 7);
    optim_config oc;
    optim_config_default(&oc);
    oc.lr = 1e-3f;
    oc.clip = 1.0f;
    trainer tr;
    trainer_init(&tr, m, t, &oc, 8, 99);
    for (int i = 0; i < 50; i++) {
        trainer_step(&tr);
        loss[i] = tr.loss;
    }
    if (final_params) {
        *final_params = malloc(sizeof(float) * m->n_params);
        memcpy(*final_params, m->params, sizeof(float) * m->n_params);
        *np = m->n_params;
    }
    trainer_free(&tr);
    model_free(m);
    task_free(t);
    blas_set_threads(2);
}

static void test_determinism(void) {
    const char *archs[] = {"transformer", "mambaformer", "s4mamba"};
    for (int a = 0; a < 3; a++) {
        double l1[50], l2[50], l3[50];
        trajectory(archs[a], 2, l1, NULL, NULL);
        trajectory(archs[a], 2, l2, NULL, NULL);
        trajectory(archs[a], 1, l3, NULL, NULL);
        CHECK(!memcmp(l1, l2, sizeof l1), "%s: the same seed gave a different trajectory", archs[a]);
        /* Our kernels are thread-count independent, but OpenBLAS's sgemm may
         * round differently when it splits a product over 2 threads, so
         * across thread counts the trajectories agree numerically, not bit
         * for bit (bit-exactness holds at a fixed thread count). */
        double worst = 0;
        for (int i = 0; i < 50; i++) worst = fmax(worst, fabs(l1[i] - l3[i]) / fmax(fabs(l1[i]), 1e-12));
        CHECK(worst < 1e-3, "%s: 1 and 2 threads differ by %.3g relative", archs[a], worst);
        CHECK(isfinite(l1[49]) && l1[49] != l1[0], "%s: the loss did not move", archs[a]);
    }
}

/* Save at 25, resume in a fresh process-like state, steps 26-50 bit for bit. */
static void test_resume(void) {
    const char *archs[] = {"mambaformer", "transformer", "s4mamba"};
    for (int a = 0; a < 3; a++) {
        double ref[50];
        float *ref_params;
        size_t np;
        trajectory(archs[a], 2, ref, &ref_params, &np);
        task *t = tu_task("linear_regression", 4, 8);
        model *m = tu_model(archs[a], 4, 16, 2, 4, 7);
        optim_config oc;
        optim_config_default(&oc);
        oc.lr = 1e-3f;
        oc.clip = 1.0f;
        trainer tr;
        trainer_init(&tr, m, t, &oc, 8, 99);
        for (int i = 0; i < 25; i++) trainer_step(&tr);
        char path[300];
        snprintf(path, sizeof path, "%s/resume.safetensors", tmpdir);
        if (getenv("KEEP")) snprintf(path, sizeof path, "/tmp/resume-%d.safetensors", a);
        icl_status st = checkpoint_save(path, m, &tr.opt, NULL, NULL, 0);
        CHECK(st == ICL_OK, "save: %s", icl_error());
        trainer_free(&tr);
        model_free(m);
        task_free(t);
        /* resume */
        st_file *f = NULL;
        st = checkpoint_open(path, &f);
        CHECK(st == ICL_OK, "open: %s", icl_error());
        if (st) continue;
        model *m2 = NULL;
        st = checkpoint_read_model(f, path, &m2);
        CHECK(st == ICL_OK, "read model: %s", icl_error());
        if (st) { st_close(f); continue; }
        task *t2 = tu_task("linear_regression", 4, 8);
        trainer tr2;
        optim_config oc2;
        optim_config_default(&oc2);
        trainer_init(&tr2, m2, t2, &oc2, 8, 99);
        st = checkpoint_read_optim(f, path, m2, &tr2.opt);
        CHECK(st == ICL_OK, "read optim: %s", icl_error());
        CHECK(tr2.opt.t == 25 && tr2.opt.cfg.clip == 1.0f && tr2.opt.cfg.lr == 1e-3f, "optimizer state restored");
        st_close(f);
        trainer_seek(&tr2, 25);
        int same = 1;
        for (int i = 25; i < 50; i++) {
            trainer_step(&tr2);
            if (tr2.loss != ref[i]) {
                if (same) printf("    %s step %d: %.17g vs %.17g\n", archs[a], i + 1, tr2.loss, ref[i]);
                same = 0;
            }
        }
        CHECK(same, "%s: resumed steps 26-50 differ from the uninterrupted run", archs[a]);
        CHECK(np == m2->n_params && !memcmp(ref_params, m2->params, sizeof(float) * np),
              "%s: final parameters differ after resume", archs[a]);
        free(ref_params);
        trainer_free(&tr2);
        model_free(m2);
        task_free(t2);
        unlink(path);
    }
}

/* A step whose loss is not finite changes nothing and names the step. */
static void test_nonfinite_step(void) {
    task *t = tu_task("linear_regression", 3, 6);
    model *m = tu_model("mambaformer", 3, 16, 2, 4, 3);
    optim_config oc;
    optim_config_default(&oc);
    trainer tr;
    trainer_init(&tr, m, t, &oc, 4, 5);
    trainer_step(&tr);
    float *before = malloc(sizeof(float) * m->n_params), *mom = malloc(sizeof(float) * m->n_params);
    memcpy(before, m->params, sizeof(float) * m->n_params);
    memcpy(mom, tr.opt.m, sizeof(float) * m->n_params);
    const param_tensor *ro = model_find_tensor(m, "read_out.bias");
    float saved = m->params[ro->offset];
    m->params[ro->offset] = NAN;
    before[ro->offset] = NAN;
    icl_status st = trainer_step(&tr);
    CHECK(st == ICL_ERR_NUMERIC, "a NaN loss must fail the step");
    CHECK(strstr(icl_error(), "step 2") != NULL, "message names the step: %s", icl_error());
    CHECK(tr.step == 1, "the step counter must not advance");
    m->params[ro->offset] = saved;
    before[ro->offset] = saved;
    CHECK(!memcmp(before, m->params, sizeof(float) * m->n_params), "parameters unchanged");
    CHECK(!memcmp(mom, tr.opt.m, sizeof(float) * m->n_params), "moments unchanged");
    /* a NaN in a block's weight gives a NaN loss too: name comes from the loss */
    st = trainer_step(&tr);
    CHECK(st == ICL_OK && tr.step == 2, "training continues after the bad step: %s", icl_error());
    free(before);
    free(mom);
    trainer_free(&tr);
    model_free(m);
    task_free(t);
}

/* ---- checkpoint corruption -------------------------------------------- */

static void write_all(const char *path, const void *buf, size_t n) {
    FILE *f = fopen(path, "wb");
    fwrite(buf, 1, n, f);
    fclose(f);
}

/* Load path as a model (and optimiser); return the status. */
static icl_status try_load(const char *path) {
    st_file *f = NULL;
    icl_status st = checkpoint_open(path, &f);
    if (st) return st;
    model *m = NULL;
    st = checkpoint_read_model(f, path, &m);
    if (!st) {
        optim o;
        optim_config oc;
        optim_config_default(&oc);
        optim_create(&o, &oc, m->n_params);
        st = checkpoint_read_optim(f, path, m, &o);
        optim_free(&o);
        model_free(m);
    }
    st_close(f);
    return st;
}

/* Rewrite the JSON header of a valid file with one substitution. */
static void patch_header(const unsigned char *good, size_t n, const char *from, const char *to, const char *out) {
    uint64_t hl;
    memcpy(&hl, good, 8);
    char *h = malloc(hl + 1);
    memcpy(h, good + 8, hl);
    h[hl] = 0;
    char *p = strstr(h, from);
    CHECK(p != NULL, "header contains %s", from);
    if (!p) { free(h); return; }
    size_t nh = hl - strlen(from) + strlen(to);
    char *h2 = malloc(nh + 8);
    size_t pre = (size_t)(p - h);
    memcpy(h2, h, pre);
    memcpy(h2 + pre, to, strlen(to));
    memcpy(h2 + pre + strlen(to), p + strlen(from), hl - pre - strlen(from));
    while (nh % 8) h2[nh++] = ' ';
    unsigned char *buf = malloc(8 + nh + (n - 8 - hl));
    uint64_t nl = nh;
    memcpy(buf, &nl, 8);
    memcpy(buf + 8, h2, nh);
    memcpy(buf + 8 + nh, good + 8 + hl, n - 8 - hl);
    write_all(out, buf, 8 + nh + (n - 8 - hl));
    free(h); free(h2); free(buf);
}

static void test_checkpoint_rejects(void) {
    model *m = tu_model("mambaformer", 3, 16, 2, 4, 1);
    optim o;
    optim_config oc;
    optim_config_default(&oc);
    optim_create(&o, &oc, m->n_params);
    char good[300], bad[300];
    snprintf(good, sizeof good, "%s/good.safetensors", tmpdir);
    snprintf(bad, sizeof bad, "%s/bad.safetensors", tmpdir);
    CHECK(checkpoint_save(good, m, &o, NULL, NULL, 0) == ICL_OK, "save: %s", icl_error());
    CHECK(try_load(good) == ICL_OK, "the good file loads: %s", icl_error());
    unsigned char *g;
    size_t n = tu_read_file(good, &g);
    CHECK(n > 0, "read back %s", good);
    if (!n) {
        optim_free(&o);
        model_free(m);
        return;
    }
    struct { const char *what, *from, *to; } patches[] = {
        {"wrong format tag", "iclplay-checkpoint-1", "iclplay-checkpoint-9"},
        {"unknown architecture", "\\\"arch\\\":\\\"mambaformer\\\"", "\\\"arch\\\":\\\"gpt9\\\""},
        {"spec d_model mismatch", "\\\"d_model\\\":16", "\\\"d_model\\\":24"},
        {"spec missing field", "\\\"n_head\\\":4,", ""},
        {"n_params mismatch", "\"n_params\":\"", "\"n_params\":\"9"},
        {"block list mismatch", "\\\"mamba\\\",\\\"attn\\\",\\\"mamba\\\"", "\\\"mamba\\\",\\\"mlp\\\",\\\"mamba\\\""},
        {"renamed tensor", "\"blocks.0.mamba.A_log\"", "\"blocks.0.mamba.A_lug\""},
        {"optim metadata garbage", "\"optim\":\"{", "\"optim\":\"{{"},
        {"optimizer beta out of range", "\\\"beta1\\\":0.899999976", "\\\"beta1\\\":1.5"},
        {"renamed moment", "\"optim.m.read_out.bias\"", "\"optim.q.read_out.bias\""},
        {"wrong dtype", "\"dtype\":\"F32\"", "\"dtype\":\"F16\""},
    };
    int nrej = 0;
    for (size_t i = 0; i < sizeof patches / sizeof *patches; i++) {
        patch_header(g, n, patches[i].from, patches[i].to, bad);
        icl_status st = try_load(bad);
        CHECK(st != ICL_OK, "%s: loaded a corrupt file", patches[i].what);
        if (st != ICL_OK) {
            nrej++;
            CHECK(strlen(icl_error()) > 10, "%s: message '%s'", patches[i].what, icl_error());
            printf("    %-28s -> %s\n", patches[i].what, icl_error());
        }
    }
    /* truncations and byte damage */
    write_all(bad, g, n - 5);
    CHECK(try_load(bad) != ICL_OK, "truncated data must be rejected");
    write_all(bad, g, 3);
    CHECK(try_load(bad) != ICL_OK, "a 3-byte file must be rejected");
    write_all(bad, "", 0);
    CHECK(try_load(bad) != ICL_OK, "an empty file must be rejected");
    unsigned char *c = malloc(n);
    memcpy(c, g, n);
    c[0] ^= 0x40;
    write_all(bad, c, n);
    CHECK(try_load(bad) != ICL_OK, "a wrong header length must be rejected");
    free(c);
    snprintf(bad, sizeof bad, "%s/missing.safetensors", tmpdir);
    CHECK(try_load(bad) == ICL_ERR_IO && strstr(icl_error(), "missing.safetensors"), "missing file: %s", icl_error());
    /* weights-only checkpoint: model loads, optimiser request fails clearly */
    snprintf(bad, sizeof bad, "%s/weights.safetensors", tmpdir);
    checkpoint_save(bad, m, NULL, NULL, NULL, 0);
    CHECK(try_load(bad) == ICL_ERR_FORMAT && strstr(icl_error(), "optimizer"), "weights only: %s", icl_error());
    printf("    %d header corruptions + 4 byte-level + missing + weights-only rejected\n", nrej);
    /* saving into a missing folder fails, keeps nothing half written */
    snprintf(bad, sizeof bad, "%s/no/such/dir/x.safetensors", tmpdir);
    CHECK(checkpoint_save(bad, m, &o, NULL, NULL, 0) == ICL_ERR_IO, "save into a missing folder must fail");
    free(g);
    optim_free(&o);
    model_free(m);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/iclplay-test-train-%d", (int)getpid());
    mkdir(tmpdir, 0700);
    blas_set_threads(2);
    TEST_RUN(test_learn_transformer);
    TEST_RUN(test_learn_mamba);
    TEST_RUN(test_learn_s4mamba);
    TEST_RUN(test_learn_hybrid);
    TEST_RUN(test_learn_mambaformer);
    TEST_RUN(test_determinism);
    TEST_RUN(test_resume);
    TEST_RUN(test_nonfinite_step);
    TEST_RUN(test_checkpoint_rejects);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) printf("# could not remove %s\n", tmpdir);
    return test_finish();
}
