/*
 * test_trainer_io.c - trainer checkpoints (train/trainer_io.h): saving at
 * step 25 and resuming through trainer_io_load gives steps 26-50 bit for bit
 * (Adam and AdamW, constant and cosine schedules, a task with a curriculum,
 * three architectures, a custom callback task resumed with
 * trainer_io_restore), the metadata round-trips exactly, and every damaged
 * or mismatched file is rejected with a message naming the file and field,
 * leaving nothing allocated.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/blas.h"
#include "nn/checkpoint.h"
#include "train/trainer_io.h"
#include "testlib.h"
#include "train_testutil.h"

static char tmpdir[256];

/* Linear regression with a curriculum on dims (2 -> 4, +1 every 10 steps)
 * and points (4 -> 8, +2 every 10 steps), so resuming must seek it. */
static task *make_task(void) {
    task_spec ts;
    task_spec_default(&ts, "linear_regression");
    task_spec_set(&ts, "n_dims", 4);
    task_spec_set(&ts, "n_points", 8);
    task_spec_set(&ts, "dims_start", 2);
    task_spec_set(&ts, "dims_end", 4);
    task_spec_set(&ts, "dims_interval", 10);
    task_spec_set(&ts, "points_start", 4);
    task_spec_set(&ts, "points_end", 8);
    task_spec_set(&ts, "points_interval", 10);
    task_spec_set(&ts, "noise", 0.1);
    task *t = NULL;
    icl_status st = task_create(&t, &ts);
    CHECK(st == ICL_OK, "task_create: %s", icl_error());
    return t;
}

static void config(optim_config *oc, int variant) {
    optim_config_default(oc);
    oc->lr = 2e-3f;
    oc->clip = 1.0f;
    if (variant == 1) { /* AdamW, warm-up then cosine */
        oc->decoupled = 1;
        oc->weight_decay = 0.05f;
        oc->schedule = SCHED_COSINE;
        oc->warmup = 10;
        oc->total = 60;
        oc->min_lr = 1e-4f;
    }
}

/* Losses of steps 1..50 and the final parameters of an uninterrupted run. */
static void reference(const char *arch, int variant, double *loss, float **params) {
    task *t = make_task();
    model *m = tu_model(arch, 4, 16, 2, 2, 7);
    optim_config oc;
    config(&oc, variant);
    trainer tr;
    icl_status st = trainer_init(&tr, m, t, &oc, 8, 99);
    CHECK(st == ICL_OK, "trainer_init: %s", icl_error());
    for (int i = 0; i < 50; i++) {
        st = trainer_step(&tr);
        CHECK(st == ICL_OK, "step %d: %s", i + 1, icl_error());
        loss[i] = tr.loss;
    }
    *params = malloc(sizeof(float) * m->n_params);
    memcpy(*params, m->params, sizeof(float) * m->n_params);
    trainer_free(&tr);
    model_free(m);
    task_free(t);
}

static void test_resume_bit_exact(void) {
    const char *archs[] = {"mambaformer", "transformer", "s4mamba"};
    char path[300];
    snprintf(path, sizeof path, "%s/tr.safetensors", tmpdir);
    for (int a = 0; a < 3; a++) {
        for (int variant = 0; variant < 2; variant++) {
            double ref[50];
            float *ref_params;
            reference(archs[a], variant, ref, &ref_params);
            task *t = make_task();
            model *m = tu_model(archs[a], 4, 16, 2, 2, 7);
            optim_config oc;
            config(&oc, variant);
            trainer tr;
            trainer_init(&tr, m, t, &oc, 8, 99);
            for (int i = 0; i < 25; i++) trainer_step(&tr);
            int cur_d = task_cur_dims(t), cur_n = task_cur_points(t);
            icl_status st = trainer_io_save(&tr, path);
            CHECK(st == ICL_OK, "save: %s", icl_error());
            trainer_free(&tr);
            model_free(m);
            task_free(t);

            model *m2;
            task *t2;
            trainer tr2;
            st = trainer_io_load(path, &m2, &t2, &tr2);
            CHECK(st == ICL_OK, "%s: load: %s", archs[a], icl_error());
            if (st) { free(ref_params); continue; }
            CHECK(tr2.step == 25 && tr2.seed == 99 && tr2.B == 8, "step %ld seed %llu batch %d", tr2.step,
                  (unsigned long long)tr2.seed, tr2.B);
            CHECK(tr2.loss == ref[24], "saved loss %.17g vs %.17g", tr2.loss, ref[24]);
            CHECK(task_cur_dims(t2) == cur_d && task_cur_points(t2) == cur_n,
                  "curriculum at d=%d n=%d, want d=%d n=%d", task_cur_dims(t2), task_cur_points(t2), cur_d, cur_n);
            CHECK(tr2.opt.t == 25 && tr2.opt.cfg.decoupled == oc.decoupled && tr2.opt.cfg.schedule == oc.schedule &&
                      tr2.opt.cfg.lr == oc.lr && tr2.opt.cfg.min_lr == oc.min_lr,
                  "optimizer config restored");
            int same = 1;
            for (int i = 25; i < 50; i++) {
                st = trainer_step(&tr2);
                if (st || tr2.loss != ref[i]) {
                    if (same) printf("    %s/%d step %d: %.17g vs %.17g\n", archs[a], variant, i + 1, tr2.loss, ref[i]);
                    same = 0;
                }
            }
            CHECK(same, "%s variant %d: resumed steps 26-50 differ from the uninterrupted run", archs[a], variant);
            CHECK(!memcmp(ref_params, m2->params, sizeof(float) * m2->n_params),
                  "%s variant %d: final parameters differ", archs[a], variant);
            printf("    %-12s %s: steps 26-50 identical: %s (loss 25 %.6f, 50 %.6f)\n", archs[a],
                   variant ? "adamw+cosine" : "adam", same ? "yes" : "no", ref[24], ref[49]);
            free(ref_params);
            trainer_free(&tr2);
            model_free(m2);
            task_free(t2);
        }
    }
    unlink(path);
}

/* ---- a custom task: a C callback, restored with the caller's task ------- */

static icl_status fill_affine(void *ctx, int prompt, rng_t *rng, int n_points, int d, int d_cur, float *x,
                              float *y) {
    (void)ctx;
    (void)prompt;
    (void)d_cur;
    float w[64];
    for (int j = 0; j < d; j++) w[j] = rng_normal(rng);
    for (int i = 0; i < n_points; i++) {
        float s = 0.5f;
        for (int j = 0; j < d; j++) {
            x[(size_t)i * d + j] = rng_normal(rng);
            s += w[j] * x[(size_t)i * d + j];
        }
        y[i] = s;
    }
    return ICL_OK;
}

static task *make_custom(int n_points) {
    task_spec ts;
    task_spec_default(&ts, "custom");
    task_spec_set(&ts, "n_dims", 4);
    task_spec_set(&ts, "n_points", n_points);
    task_spec_set(&ts, "norm", 4);
    task *t = NULL;
    icl_status st = task_create_custom(&t, &ts, fill_affine, NULL);
    CHECK(st == ICL_OK, "task_create_custom: %s", icl_error());
    return t;
}

static void test_custom_task(void) {
    char path[300];
    snprintf(path, sizeof path, "%s/custom.safetensors", tmpdir);
    double ref[40];
    optim_config oc;
    config(&oc, 0);
    for (int pass = 0; pass < 2; pass++) {
        task *t = make_custom(6);
        model *m = tu_model("mamba", 4, 16, 2, 2, 3);
        trainer tr;
        trainer_init(&tr, m, t, &oc, 8, 5);
        for (int i = 0; i < (pass ? 20 : 40); i++) {
            trainer_step(&tr);
            ref[i] = tr.loss;
        }
        if (pass) CHECK(trainer_io_save(&tr, path) == ICL_OK, "save: %s", icl_error());
        trainer_free(&tr);
        model_free(m);
        task_free(t);
    }
    /* from the path alone: refused, saying why */
    model *m2;
    task *t2;
    trainer tr2;
    icl_status st = trainer_io_load(path, &m2, &t2, &tr2);
    CHECK(st == ICL_ERR_ARG && strstr(icl_error(), "custom") && strstr(icl_error(), "custom.safetensors"),
          "a custom task cannot be rebuilt from a file: %s", icl_error());
    CHECK(m2 == NULL && t2 == NULL, "nothing is left allocated");
    printf("    custom from file  -> %s\n", icl_error());
    /* with the task supplied: bit for bit */
    st_file *f = NULL;
    CHECK(checkpoint_open(path, &f) == ICL_OK, "open: %s", icl_error());
    trainer_meta meta;
    st = trainer_io_read_meta(f, path, &meta);
    CHECK(st == ICL_OK && meta.task.kind == TASK_CUSTOM && meta.step == 20, "meta: %s", icl_error());
    model *m3 = NULL;
    CHECK(checkpoint_read_model(f, path, &m3) == ICL_OK, "model: %s", icl_error());
    task *wrong = make_custom(7);
    trainer tr3;
    st = trainer_io_restore(&tr3, f, path, m3, wrong, &meta);
    CHECK(st == ICL_ERR_ARG && strstr(icl_error(), "n_points"), "a different task is refused: %s", icl_error());
    printf("    other task given  -> %s\n", icl_error());
    task_free(wrong);
    task *t3 = make_custom(6);
    st = trainer_io_restore(&tr3, f, path, m3, t3, &meta);
    CHECK(st == ICL_OK, "restore: %s", icl_error());
    st_close(f);
    if (!st) {
        int same = 1;
        for (int i = 20; i < 40; i++) {
            trainer_step(&tr3);
            same &= tr3.loss == ref[i];
        }
        CHECK(same, "custom task: resumed steps 21-40 differ");
        trainer_free(&tr3);
    }
    model_free(m3);
    task_free(t3);
    unlink(path);
}

/* ---- rejected files ------------------------------------------------------ */

/* The metadata of a valid trainer checkpoint of a 4-dim mambaformer. */
enum { K_TRAINER, K_STEP, K_SEED, K_BATCH, K_TASK, K_COUNT };
static const char *const good_keys[K_COUNT] = {"trainer", "step", "seed", "batch", "task"};

static void test_rejects(void) {
    model *m = tu_model("mambaformer", 4, 16, 2, 2, 1);
    task *t = make_task();
    optim_config oc;
    config(&oc, 0);
    trainer tr;
    trainer_init(&tr, m, t, &oc, 8, 3);
    trainer_step(&tr);
    char taskj[4096], path[300];
    trainer_io_task_json(task_get_spec(t), taskj, sizeof taskj);
    snprintf(path, sizeof path, "%s/bad.safetensors", tmpdir);
    /* the n_dims of the task changed from 4 to 5: does not fit the model */
    char taskj_dims[4096], taskj_nokey[4096], taskj_range[4096];
    snprintf(taskj_dims, sizeof taskj_dims, "%s", taskj);
    char *p = strstr(taskj_dims, "\"n_dims\":4");
    CHECK(p != NULL, "task JSON holds n_dims: %s", taskj);
    if (p) p[9] = '5';
    snprintf(taskj_nokey, sizeof taskj_nokey, "{\"name\":\"linear_regression\",\"n_dims\":4}");
    snprintf(taskj_range, sizeof taskj_range, "%s", taskj);
    p = strstr(taskj_range, "\"n_dims\":4");
    if (p) memcpy(p, "\"n_dims\":0", 10);
    struct {
        const char *what;
        int key;          /* which key to replace (-1: none) */
        const char *val;  /* NULL: leave the key out */
        int weights_only; /* save without the optimiser */
        icl_status want;
        const char *needle; /* in the message */
    } cases[] = {
        {"weights-only model file", K_TRAINER, NULL, 0, ICL_ERR_FORMAT, "not a trainer checkpoint"},
        {"future trainer format", K_TRAINER, "iclplay-trainer-9", 0, ICL_ERR_FORMAT, "iclplay-trainer-9"},
        {"missing step", K_STEP, NULL, 0, ICL_ERR_FORMAT, "step"},
        {"negative step", K_STEP, "-1", 0, ICL_ERR_FORMAT, "step"},
        {"step not a number", K_STEP, "12x", 0, ICL_ERR_FORMAT, "step"},
        {"seed not a number", K_SEED, "0x10", 0, ICL_ERR_FORMAT, "seed"},
        {"seed beyond 64 bits", K_SEED, "18446744073709551616", 0, ICL_ERR_FORMAT, "seed"},
        {"batch 0", K_BATCH, "0", 0, ICL_ERR_FORMAT, "batch"},
        {"missing task", K_TASK, NULL, 0, ICL_ERR_FORMAT, "task"},
        {"task not JSON", K_TASK, "{\"name\":", 0, ICL_ERR_FORMAT, "task metadata"},
        {"unknown task", K_TASK, "{\"name\":\"linear_regresion\"}", 0, ICL_ERR_FORMAT, "linear_regresion"},
        {"unknown task option", K_TASK, "{\"name\":\"linear_regression\",\"n_dimz\":4}", 0, ICL_ERR_FORMAT, "n_dimz"},
        {"task option not a number", K_TASK, "{\"name\":\"linear_regression\",\"n_dims\":\"4\"}", 0, ICL_ERR_FORMAT,
         "n_dims"},
        {"task option missing", K_TASK, taskj_nokey, 0, ICL_ERR_FORMAT, "lacks option"},
        {"task option out of range", K_TASK, taskj_range, 0, ICL_ERR_FORMAT, "n_dims"},
        {"task does not fit the model", K_TASK, taskj_dims, 0, ICL_ERR_SHAPE, "n_dims is 4"},
        {"no optimizer state", -1, NULL, 1, ICL_ERR_FORMAT, "optimizer"},
    };
    char step[16];
    snprintf(step, sizeof step, "%ld", tr.step);
    int n_rej = 0;
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        const char *vals[K_COUNT] = {TRAINER_IO_FORMAT, step, "3", "8", taskj};
        const char *keys[K_COUNT];
        size_t n = 0;
        for (int k = 0; k < K_COUNT; k++) {
            const char *v = k == cases[c].key ? cases[c].val : vals[k];
            if (!v) continue;
            keys[n] = good_keys[k];
            vals[n++] = v;
        }
        icl_status st = checkpoint_save(path, m, cases[c].weights_only ? NULL : &tr.opt, keys, vals, n);
        CHECK(st == ICL_OK, "%s: save: %s", cases[c].what, icl_error());
        model *m2 = (model *)1;
        task *t2 = (task *)1;
        trainer tr2;
        st = trainer_io_load(path, &m2, &t2, &tr2);
        CHECK(st == cases[c].want, "%s: status %s, want %s (%s)", cases[c].what, icl_status_name(st),
              icl_status_name(cases[c].want), icl_error());
        CHECK(strstr(icl_error(), cases[c].needle) && strstr(icl_error(), "bad.safetensors"),
              "%s: message '%s' should name the file and '%s'", cases[c].what, icl_error(), cases[c].needle);
        CHECK(m2 == NULL && t2 == NULL, "%s: outputs must be NULL after a failure", cases[c].what);
        if (st != ICL_OK) n_rej++;
        printf("    %-28s -> %s\n", cases[c].what, icl_error());
    }
    /* the untouched metadata loads (the cases above differ only where named) */
    {
        const char *vals[K_COUNT] = {TRAINER_IO_FORMAT, step, "3", "8", taskj};
        checkpoint_save(path, m, &tr.opt, good_keys, vals, K_COUNT);
        model *m2;
        task *t2;
        trainer tr2;
        icl_status st = trainer_io_load(path, &m2, &t2, &tr2);
        CHECK(st == ICL_OK, "the unmodified metadata must load: %s", icl_error());
        if (!st) {
            CHECK(tr2.step == 1 && tr2.seed == 3 && isnan(tr2.loss), "fields: step %ld seed %llu", tr2.step,
                  (unsigned long long)tr2.seed);
            trainer_free(&tr2);
            model_free(m2);
            task_free(t2);
        }
    }
    snprintf(path, sizeof path, "%s/none.safetensors", tmpdir);
    model *m2;
    task *t2;
    trainer tr2;
    CHECK(trainer_io_load(path, &m2, &t2, &tr2) == ICL_ERR_IO && strstr(icl_error(), "none.safetensors"),
          "a missing file: %s", icl_error());
    snprintf(path, sizeof path, "%s/no/dir/x.safetensors", tmpdir);
    CHECK(trainer_io_save(&tr, path) == ICL_ERR_IO && strstr(icl_error(), "no/dir"), "save into a missing folder: %s",
          icl_error());
    printf("    %d damaged files rejected, missing file and unwritable path reported\n", n_rej);
    trainer_free(&tr);
    model_free(m);
    task_free(t);
}

/* The task JSON round-trips every option exactly (doubles included). */
static void test_task_json(void) {
    const char *names[] = {"linear_regression", "sparse_parity", "token_mqar", "many_outlier_regression", "cot_io"};
    for (int i = 0; i < 5; i++) {
        task_spec s;
        task_spec_default(&s, names[i]);
        if (s.kind == TASK_MANY_OUTLIER_REGRESSION) {
            task_spec_set(&s, "p", 0.1 + 1e-12);
            task_spec_set(&s, "noise", 1.0 / 3.0);
        }
        char js[4096];
        int n = trainer_io_task_json(&s, js, sizeof js);
        CHECK(n > 0 && n < (int)sizeof js, "%s: json length %d", names[i], n);
        /* snprintf semantics: a short buffer reports the full length */
        char small[16];
        CHECK(trainer_io_task_json(&s, small, sizeof small) == n, "%s: length with a short buffer", names[i]);
        /* read it back through a real file's metadata */
        model *m = tu_model("mamba", 4, 16, 2, 2, 1);
        optim o;
        optim_config oc;
        optim_config_default(&oc);
        optim_create(&o, &oc, m->n_params);
        char path[300];
        snprintf(path, sizeof path, "%s/json.safetensors", tmpdir);
        const char *vals[K_COUNT] = {TRAINER_IO_FORMAT, "0", "1", "4", js};
        checkpoint_save(path, m, &o, good_keys, vals, K_COUNT);
        st_file *f = NULL;
        checkpoint_open(path, &f);
        trainer_meta meta;
        icl_status st = f ? trainer_io_read_meta(f, path, &meta) : ICL_ERR_IO;
        CHECK(st == ICL_OK, "%s: %s", names[i], icl_error());
        if (!st) {
            const char *keys[64];
            int nk = task_spec_keys(&s, keys, 64), diff = 0;
            for (int k = 0; k < nk; k++) {
                double a, b;
                task_spec_get(&s, keys[k], &a);
                task_spec_get(&meta.task, keys[k], &b);
                if (a != b) {
                    diff++;
                    printf("    %s.%s: %.17g vs %.17g\n", names[i], keys[k], a, b);
                }
            }
            CHECK(!diff && !strcmp(meta.task.name, s.name) && meta.task.kind == s.kind, "%s: spec round-trip",
                  names[i]);
        }
        st_close(f);
        optim_free(&o);
        model_free(m);
        unlink(path);
    }
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/iclplay-test-trainer-io-%d", (int)getpid());
    mkdir(tmpdir, 0700);
    blas_set_threads(2);
    TEST_RUN(test_resume_bit_exact);
    TEST_RUN(test_custom_task);
    TEST_RUN(test_task_json);
    TEST_RUN(test_rejects);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd)) printf("# could not remove %s\n", tmpdir);
    return test_finish();
}
