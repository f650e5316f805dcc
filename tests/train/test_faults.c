/*
 * test_faults.c - what training and saving do when things go wrong.
 *
 * Non-finite numbers: a step whose loss, gradient or update is NaN/Inf is
 * refused and leaves the trainer bit for bit as before it (parameters, both
 * Adam moments, Adam's update count and last lr, step counter, history,
 * loss); the message names the step and where the NaN appeared. Provoked
 * by: a NaN written into each block's LayerNorm weight in turn (the message
 * must name that block), NaN in the read-in / final norm / read-out
 * weights, an input holding Inf (a custom task), a mamba A_log so large
 * that exp overflows (finite forward, NaN gradient), a read-out bias so
 * large that the squared gradient overflows float (the update check), a NaN
 * in a weight the forward never reads (a position row past the prompt), and
 * a huge learning rate. optim_step itself is checked never to write part of
 * an update when the gradient holds a NaN/Inf.
 *
 * Files: trainer_io_save under a file-size limit (RLIMIT_FSIZE with SIGXFSZ
 * ignored: EFBIG), into a missing folder (ENOENT), into /sys (EACCES even
 * for root), and, when mount(2) works (root in a container that allows
 * it), into a tmpfs that is full (ENOSPC) or remounted read-only (EROFS).
 * After each: the error is ICL_ERR_IO naming the path and the reason, the
 * previous file is byte-identical, no temp file is left, and the trainer
 * still steps and saves. A temp file left by a killed process is removed
 * by the next save; one of a live process is not. Cases that cannot be
 * provoked here print a "# note:" line instead of passing.
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nn/model_check.h"
#include "train/trainer.h"
#include "train/trainer_io.h"
#include "testlib.h"
#include "train_testutil.h"

static char tmpdir[256];

/* ---- fixtures ------------------------------------------------------------------ */

typedef struct {
    model *m;
    task *t;
    trainer tr;
} rig;

/* A tiny trainer (d 3, 6 points, batch 4) after `steps` good steps. */
static int rig_make(rig *r, const char *arch, int D, int L, float lr, float clip, int steps) {
    memset(r, 0, sizeof *r);
    r->t = tu_task("linear_regression", 3, 6);
    r->m = tu_model(arch, 3, D, L, 2, test_seed());
    if (!r->t || !r->m) return 0;
    optim_config oc;
    optim_config_default(&oc);
    oc.lr = lr;
    oc.clip = clip;
    icl_status st = trainer_init(&r->tr, r->m, r->t, &oc, 4, test_seed() + 1);
    CHECK(st == ICL_OK, "trainer_init: %s", icl_error());
    if (st) return 0;
    for (int i = 0; i < steps; i++) {
        st = trainer_step(&r->tr);
        CHECK(st == ICL_OK, "warm-up step %d: %s", i + 1, icl_error());
    }
    return 1;
}

static void rig_free(rig *r) {
    trainer_free(&r->tr);
    model_free(r->m);
    task_free(r->t);
}

/* Everything a refused step must leave alone. */
typedef struct {
    size_t n;
    float *p, *m, *v;
    long opt_t, step;
    double last_lr, loss, grad_norm, lr;
    loss_history hist;
} snap;

static void snap_take(snap *s, const trainer *tr) {
    const size_t n = tr->m->n_params;
    s->n = n;
    s->p = malloc(n * sizeof(float));
    s->m = malloc(n * sizeof(float));
    s->v = malloc(n * sizeof(float));
    memcpy(s->p, tr->m->params, n * sizeof(float));
    memcpy(s->m, tr->opt.m, n * sizeof(float));
    memcpy(s->v, tr->opt.v, n * sizeof(float));
    s->opt_t = tr->opt.t;
    s->step = tr->step;
    s->last_lr = tr->opt.last_lr;
    s->loss = tr->loss;
    s->grad_norm = tr->grad_norm;
    s->lr = tr->lr;
    s->hist = tr->hist;
}

/* Bit-for-bit comparison (memcmp: a NaN equals the same NaN). */
static int snap_same(const snap *s, const trainer *tr, const char *what) {
    const size_t n = s->n;
    int ok = 1;
    size_t first = n;
    for (size_t i = 0; i < n && first == n; i++)
        if (memcmp(&s->p[i], &tr->m->params[i], sizeof(float))) first = i;
    if (first < n) {
        printf("    %s: parameter %zu changed: %.9g -> %.9g\n", what, first, s->p[first], tr->m->params[first]);
        ok = 0;
    }
    if (memcmp(s->m, tr->opt.m, n * sizeof(float))) { printf("    %s: Adam m changed\n", what); ok = 0; }
    if (memcmp(s->v, tr->opt.v, n * sizeof(float))) { printf("    %s: Adam v changed\n", what); ok = 0; }
    if (s->opt_t != tr->opt.t) { printf("    %s: Adam t %ld -> %ld\n", what, s->opt_t, tr->opt.t); ok = 0; }
    if (s->step != tr->step) { printf("    %s: step %ld -> %ld\n", what, s->step, tr->step); ok = 0; }
    if (memcmp(&s->last_lr, &tr->opt.last_lr, sizeof(double)) || memcmp(&s->loss, &tr->loss, sizeof(double)) ||
        memcmp(&s->grad_norm, &tr->grad_norm, sizeof(double)) || memcmp(&s->lr, &tr->lr, sizeof(double))) {
        printf("    %s: loss / grad_norm / lr fields changed\n", what);
        ok = 0;
    }
    if (memcmp(&s->hist, &tr->hist, sizeof s->hist)) { printf("    %s: loss history changed\n", what); ok = 0; }
    return ok;
}

static void snap_free(snap *s) {
    free(s->p);
    free(s->m);
    free(s->v);
}

/* Poison element 0 of tensor `name` with v; returns the old value. */
static float poison(model *m, const char *name, float v) {
    const param_tensor *p = model_find_tensor(m, name);
    CHECK(p != NULL, "no tensor %s", name);
    if (!p) return 0;
    float old = m->params[p->offset];
    m->params[p->offset] = v;
    return old;
}

/* Expect the next step to be refused with a message holding every needle,
 * the trainer unchanged; then undo the poison and expect a good step. */
static void expect_refused(rig *r, const char *what, const char *const *needles, int nn) {
    snap s;
    snap_take(&s, &r->tr);
    icl_status st = trainer_step(&r->tr);
    CHECK(st == ICL_ERR_NUMERIC, "%s: the step must be refused (got %s)", what, icl_status_name(st));
    const char *msg = icl_error();
    printf("    %-26s -> %s\n", what, msg);
    for (int i = 0; i < nn; i++) CHECK(strstr(msg, needles[i]) != NULL, "%s: message lacks '%s'", what, needles[i]);
    CHECK(snap_same(&s, &r->tr, what), "%s: the trainer changed", what);
    snap_free(&s);
}

/* ---- optim_step never writes part of an update ---------------------------------- */

static void test_optim_never_partial(void) {
    test_rng rng = {test_seed()};
    const size_t sizes[2] = {1000, 200000}; /* the second runs the parallel loop */
    for (int si = 0; si < 2; si++) {
        const size_t n = sizes[si];
        optim o;
        optim_config c;
        optim_config_default(&c);
        c.lr = 1e-2f;
        c.clip = 1.0f;
        c.weight_decay = 0.01f;
        CHECK(optim_create(&o, &c, n) == ICL_OK, "optim_create");
        float *p = malloc(n * sizeof(float)), *g = malloc(n * sizeof(float));
        float *p0 = malloc(n * sizeof(float)), *m0 = malloc(n * sizeof(float)), *v0 = malloc(n * sizeof(float));
        test_fill_normal(&rng, p, n, 1.0f);
        for (int k = 0; k < 3; k++) { /* a few real updates so the moments are not zero */
            test_fill_normal(&rng, g, n, 1.0f);
            optim_step(&o, p, g);
        }
        const size_t where[3] = {0, n / 2, n - 1};
        const float bad[2] = {NAN, INFINITY};
        for (int w = 0; w < 3; w++)
            for (int b = 0; b < 2; b++) {
                test_fill_normal(&rng, g, n, 1.0f);
                g[where[w]] = bad[b];
                memcpy(p0, p, n * sizeof(float));
                memcpy(m0, o.m, n * sizeof(float));
                memcpy(v0, o.v, n * sizeof(float));
                long t0 = o.t;
                double lr0 = o.last_lr;
                icl_status st = optim_step(&o, p, g);
                CHECK(st == ICL_ERR_NUMERIC, "n %zu: %s at %zu must fail", n, b ? "Inf" : "NaN", where[w]);
                CHECK(!memcmp(p0, p, n * sizeof(float)) && !memcmp(m0, o.m, n * sizeof(float)) &&
                          !memcmp(v0, o.v, n * sizeof(float)),
                      "n %zu: %s at %zu: params or moments written", n, b ? "Inf" : "NaN", where[w]);
                CHECK(o.t == t0 && lr0 == o.last_lr, "n %zu: update count or last lr changed", n);
                /* the gradient too: clipping must not have scaled it in place */
                CHECK(isnan(g[where[w]]) == (b == 0), "gradient element kept");
            }
        printf("    n %7zu: NaN and Inf at first/middle/last element: nothing written (only last_grad_norm, a "
               "report, is set)\n",
               n);
        free(p); free(g); free(p0); free(m0); free(v0);
        optim_free(&o);
    }
}

/* ---- a NaN weight in each block: the message names that block --------------------- */

static void nan_in_each_block(const char *arch) {
    rig r0;
    if (!rig_make(&r0, arch, 16, 2, 1e-3f, 10.0f, 0)) return;
    const int nb = r0.m->spec.n_blocks;
    rig_free(&r0);
    for (int i = 0; i < nb; i++) {
        rig r;
        if (!rig_make(&r, arch, 16, 2, 1e-3f, 10.0f, 2)) return;
        const char *kind = block_kind_name(r.m->spec.blocks[i]);
        char name[64], what[96], blk[48];
        snprintf(name, sizeof name, "blocks.%d.%s.ln.weight", i, kind);
        snprintf(what, sizeof what, "%s: NaN in %s", arch, name);
        snprintf(blk, sizeof blk, "block %d (%s)", i, kind);
        float old = poison(r.m, name, NAN);
        const char *needles[] = {"step 3:", "the loss is NaN", "nothing was updated", blk};
        expect_refused(&r, what, needles, 4);
        poison(r.m, name, old);
        CHECK(trainer_step(&r.tr) == ICL_OK && r.tr.step == 3, "%s: training goes on once the NaN is gone: %s", what,
              icl_error());
        rig_free(&r);
    }
}

static void test_nan_weight_each_block(void) {
    nan_in_each_block("mambaformer"); /* mamba, attn, mamba */
    nan_in_each_block("transformer"); /* attn, mlp */
    nan_in_each_block("s4mamba");
}

static void test_nan_outside_blocks(void) {
    static const struct { const char *tensor, *place; } cases[] = {
        {"read_in.weight", "the read-in: its output is NaN"},
        {"norm_f.weight", "the final norm"},
        {"read_out.bias", "the read-out"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        rig r;
        if (!rig_make(&r, "mambaformer", 16, 2, 1e-3f, 10.0f, 1)) return;
        float old = poison(r.m, cases[k].tensor, NAN);
        const char *needles[] = {"step 2:", cases[k].place};
        char what[64];
        snprintf(what, sizeof what, "NaN in %s", cases[k].tensor);
        expect_refused(&r, what, needles, 2);
        poison(r.m, cases[k].tensor, old);
        CHECK(trainer_step(&r.tr) == ICL_OK, "%s: goes on after: %s", what, icl_error());
        rig_free(&r);
    }
}

/* ---- an input holding Inf: a custom task ------------------------------------------- */

typedef struct {
    int armed;
    int prompt, point;
} inf_ctx;

static icl_status inf_fill(void *ctx, int prompt, rng_t *rng, int n_points, int d, int d_cur, float *x, float *y) {
    (void)rng;
    (void)d_cur;
    inf_ctx *c = ctx;
    for (int i = 0; i < n_points; i++) {
        for (int j = 0; j < d; j++) x[i * d + j] = 0.1f * (float)((i + j + prompt) % 7) - 0.3f;
        y[i] = x[i * d];
    }
    if (c->armed && prompt == c->prompt) x[c->point * d + 1] = INFINITY;
    return ICL_OK;
}

static void test_inf_input(void) {
    task_spec ts;
    task_spec_default(&ts, "custom");
    task_spec_set(&ts, "n_dims", 3);
    task_spec_set(&ts, "n_points", 6);
    inf_ctx c = {0, 2, 1};
    task *t = NULL;
    icl_status st = task_create_custom(&t, &ts, inf_fill, &c);
    CHECK(st == ICL_OK, "task_create_custom: %s", icl_error());
    if (st) return;
    rig r;
    memset(&r, 0, sizeof r);
    r.t = t;
    r.m = tu_model("mambaformer", 3, 16, 2, 2, test_seed());
    optim_config oc;
    optim_config_default(&oc);
    oc.lr = 1e-3f;
    st = trainer_init(&r.tr, r.m, r.t, &oc, 4, 9);
    CHECK(st == ICL_OK, "trainer_init: %s", icl_error());
    if (st) return;
    CHECK(trainer_step(&r.tr) == ICL_OK, "a clean step first: %s", icl_error());
    c.armed = 1;
    /* x_i sits at slot 2i of the interleaved layout: point 1 of prompt 2 is position 2 */
    const char *needles[] = {"step 2:", "the loss is", "the read-in: the input itself holds Inf (prompt 2, position 2)"};
    expect_refused(&r, "Inf in the input x", needles, 3);
    c.armed = 0;
    CHECK(trainer_step(&r.tr) == ICL_OK && r.tr.step == 2, "goes on with clean inputs: %s", icl_error());
    rig_free(&r);
}

/* ---- a NaN gradient under a finite loss ------------------------------------------- */

/* A_log = 100 makes A = -exp(100) = -Inf in float: exp(delta A) = 0 keeps
 * the forward finite, but dA_log = dA * A = 0 * -Inf = NaN in backward. */
static void test_nan_gradient(void) {
    rig r;
    if (!rig_make(&r, "mambaformer", 16, 2, 1e-3f, 10.0f, 1)) return;
    float old = poison(r.m, "blocks.2.mamba.A_log", 100.0f);
    const char *needles[] = {"step 2:", "the gradient became non-finite", "block 2 (mamba)", "blocks.2.mamba"};
    expect_refused(&r, "A_log = 100 in block 2", needles, 4);
    poison(r.m, "blocks.2.mamba.A_log", old);
    CHECK(trainer_step(&r.tr) == ICL_OK, "goes on after: %s", icl_error());
    rig_free(&r);
}

/* ---- an update that would overflow: the squared gradient ---------------------------- */

static void test_update_overflow(void) {
    rig r;
    /* clip 0: no clipping, so the read-out's gradient (~ 2 x 3e21) reaches
     * Adam, whose (1 - beta2) g^2 overflows float (above ~5.8e20); the loss
     * (~1e43) is a finite double. (At 3e19 v stays finite and only
     * v / (1 - beta2^t) overflows, which makes that update 0, not NaN.) */
    if (!rig_make(&r, "mambaformer", 16, 2, 1e-3f, 0.0f, 1)) return;
    float old = poison(r.m, "read_out.bias", 3e21f);
    const char *needles[] = {"step 2:", "the update would make", "non-finite", "lower the learning rate"};
    expect_refused(&r, "read_out.bias = 3e21, clip 0", needles, 4);
    /* with clipping the same step is fine: the moments stay finite */
    r.tr.opt.cfg.clip = 1.0f;
    icl_status st = trainer_step(&r.tr);
    CHECK(st == ICL_OK, "clipped, the same step goes through: %s", icl_error());
    CHECK(!model_first_nonfinite(r.m, r.tr.opt.v, 0, NULL) && !model_first_nonfinite(r.m, r.m->params, 0, NULL),
          "moments and parameters finite after the clipped step");
    poison(r.m, "read_out.bias", old);
    rig_free(&r);
}

/* A NaN where the forward never reads it (a position row past the prompt
 * length): loss and gradient are finite, the update check still refuses. */
static void test_nan_unused_weight(void) {
    rig r;
    if (!rig_make(&r, "transformer", 16, 2, 1e-3f, 10.0f, 1)) return;
    const param_tensor *pos = model_find_tensor(r.m, "pos.weight");
    CHECK(pos && pos->shape[0] > 20, "the transformer has learned positions beyond the prompt");
    if (!pos) return;
    const size_t at = pos->offset + (size_t)20 * pos->shape[1]; /* row 20: prompts have 12 tokens */
    float old = r.m->params[at];
    r.m->params[at] = NAN;
    const char *needles[] = {"step 2:", "pos.weight[320] in the positions is already a non-finite parameter"};
    expect_refused(&r, "NaN in an unused position", needles, 2);
    r.m->params[at] = old;
    CHECK(trainer_step(&r.tr) == ICL_OK, "goes on after: %s", icl_error());
    rig_free(&r);
}

/* ---- a huge learning rate ------------------------------------------------------------------- */

static void test_huge_lr(void) {
    const float lrs[2] = {1e30f, 1e36f};
    for (int k = 0; k < 2; k++) {
        rig r;
        if (!rig_make(&r, "mambaformer", 16, 2, lrs[k], 10.0f, 0)) return;
        int refused = 0;
        for (int i = 0; i < 10 && !refused; i++) {
            snap s;
            snap_take(&s, &r.tr);
            icl_status st = trainer_step(&r.tr);
            if (st == ICL_OK) {
                snap_free(&s);
                continue;
            }
            refused = 1;
            char want[32];
            snprintf(want, sizeof want, "step %ld:", s.step + 1);
            printf("    lr %g: refused -> %s\n", (double)lrs[k], icl_error());
            CHECK(st == ICL_ERR_NUMERIC, "lr %g: numeric error expected, got %s", (double)lrs[k], icl_status_name(st));
            CHECK(strstr(icl_error(), want) && strstr(icl_error(), "nothing was updated"),
                  "lr %g: message names the step", (double)lrs[k]);
            CHECK(strstr(icl_error(), "block ") || strstr(icl_error(), "the read-") ||
                      strstr(icl_error(), "the final norm") || strstr(icl_error(), "the update would make"),
                  "lr %g: message says where", (double)lrs[k]);
            CHECK(snap_same(&s, &r.tr, "huge lr"), "lr %g: the refused step changed the trainer", (double)lrs[k]);
            CHECK(!model_first_nonfinite(r.m, r.m->params, 0, NULL), "lr %g: parameters stay finite",
                  (double)lrs[k]);
            snap_free(&s);
        }
        CHECK(refused, "lr %g: 10 steps went through without a refusal (weights ~lr)", (double)lrs[k]);
        rig_free(&r);
    }
}

/* ---- files ---------------------------------------------------------------------------------- */

/* Names in dir containing ".tmp." (leftover temp files); prints them. */
static int count_temps(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) {
            printf("    left behind: %s/%s\n", dir, e->d_name);
            n++;
        }
    closedir(d);
    return n;
}

/* After a failed save of r to path (in dir; old = the previous file's
 * bytes, or NULL): the message, the old file, no temp files, and the
 * trainer still steps and saves elsewhere. */
static void after_failed_save(rig *r, icl_status st, const char *what, const char *path, const char *dir,
                              const char *reason, const unsigned char *old, size_t old_n) {
    const char *msg = icl_error();
    printf("    %-22s -> %s\n", what, msg);
    CHECK(st == ICL_ERR_IO, "%s: ICL_ERR_IO expected, got %s", what, icl_status_name(st));
    CHECK(strstr(msg, path) != NULL, "%s: message names the path", what);
    CHECK(strstr(msg, reason) != NULL, "%s: message gives the reason '%s'", what, reason);
    if (old) {
        unsigned char *now = NULL;
        size_t n = tu_read_file(path, &now);
        CHECK(n == old_n && now && !memcmp(now, old, n), "%s: the previous file changed (%zu vs %zu bytes)", what, n,
              old_n);
        free(now);
    }
    if (dir) CHECK(count_temps(dir) == 0, "%s: temp files left behind", what);
    long s0 = r->tr.step;
    CHECK(trainer_step(&r->tr) == ICL_OK && r->tr.step == s0 + 1, "%s: the model still trains: %s", what,
          icl_error());
    char elsewhere[320];
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere.safetensors", tmpdir);
    CHECK(trainer_io_save(&r->tr, elsewhere) == ICL_OK, "%s: and saves elsewhere: %s", what, icl_error());
    unlink(elsewhere);
}

static void test_save_file_size_limit(void) {
    rig r;
    if (!rig_make(&r, "mambaformer", 16, 2, 1e-3f, 10.0f, 2)) return;
    char path[320];
    snprintf(path, sizeof path, "%s/limit.safetensors", tmpdir);
    CHECK(trainer_io_save(&r.tr, path) == ICL_OK, "first save: %s", icl_error());
    unsigned char *old;
    size_t old_n = tu_read_file(path, &old);
    CHECK(trainer_step(&r.tr) == ICL_OK, "step");
    struct rlimit saved, lim;
    getrlimit(RLIMIT_FSIZE, &saved);
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = saved;
    lim.rlim_cur = old_n / 2; /* the header fits, the tensors do not */
    if (setrlimit(RLIMIT_FSIZE, &lim) != 0) {
        printf("# note: setrlimit(RLIMIT_FSIZE) failed (%s): the full-disk case was not provoked\n", strerror(errno));
    } else {
        icl_status st = trainer_io_save(&r.tr, path);
        setrlimit(RLIMIT_FSIZE, &saved);
        after_failed_save(&r, st, "file size limit", path, tmpdir, "File too large", old, old_n);
        /* the limit lifted, the same save works and loads */
        CHECK(trainer_io_save(&r.tr, path) == ICL_OK, "save after the limit: %s", icl_error());
        model *m2 = NULL;
        task *t2 = NULL;
        trainer tr2;
        CHECK(trainer_io_load(path, &m2, &t2, &tr2) == ICL_OK && tr2.step == r.tr.step, "reloads: %s", icl_error());
        if (m2) {
            trainer_free(&tr2);
            model_free(m2);
            task_free(t2);
        }
    }
    signal(SIGXFSZ, prev);
    free(old);
    unlink(path);
    rig_free(&r);
}

static void test_save_missing_folder(void) {
    rig r;
    if (!rig_make(&r, "mambaformer", 16, 2, 1e-3f, 10.0f, 1)) return;
    char path[320];
    snprintf(path, sizeof path, "%s/no/such/folder/run.safetensors", tmpdir);
    icl_status st = trainer_io_save(&r.tr, path);
    after_failed_save(&r, st, "missing folder", path, tmpdir, "No such file or directory", NULL, 0);
    rig_free(&r);
}

static void test_save_sys(void) {
    rig r;
    if (!rig_make(&r, "mambaformer", 16, 2, 1e-3f, 10.0f, 1)) return;
    const char *path = "/sys/iclplay-test-faults.safetensors";
    icl_status st = trainer_io_save(&r.tr, path);
    after_failed_save(&r, st, "/sys (no writes)", path, "/sys", "Permission denied", NULL, 0);
    rig_free(&r);
}

/* A tmpfs of `kib` KiB at a new folder; 0 and a note if mount(2) fails. */
static int mount_tmpfs(char *dir, size_t n, size_t kib) {
    snprintf(dir, n, "%s/mnt-XXXXXX", tmpdir);
    if (!mkdtemp(dir)) return 0;
    char opts[64];
    snprintf(opts, sizeof opts, "size=%zuk,mode=0755", kib);
    if (mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
        printf("# note: mount tmpfs failed (%s)\n", strerror(errno));
        rmdir(dir);
        return 0;
    }
    return 1;
}

static void unmount_tmpfs(const char *dir) {
    if (umount2(dir, MNT_DETACH) != 0) printf("# note: umount %s failed: %s\n", dir, strerror(errno));
    rmdir(dir);
}

static int ran_readonly = 0, ran_enospc = 0;

static void test_save_readonly_mount(void) {
    rig r;
    if (!rig_make(&r, "mambaformer", 16, 2, 1e-3f, 10.0f, 1)) return;
    char dir[320], path[400];
    if (!mount_tmpfs(dir, sizeof dir, 1024)) {
        printf("# note: the read-only folder case (EROFS) was NOT provoked (needs mount(2)); /sys stands in\n");
        rig_free(&r);
        return;
    }
    ran_readonly = 1;
    snprintf(path, sizeof path, "%s/ro.safetensors", dir);
    CHECK(trainer_io_save(&r.tr, path) == ICL_OK, "first save: %s", icl_error());
    unsigned char *old;
    size_t old_n = tu_read_file(path, &old);
    if (mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY, NULL) != 0) {
        printf("# note: remount read-only failed (%s): EROFS NOT provoked\n", strerror(errno));
        ran_readonly = 0;
    } else {
        CHECK(trainer_step(&r.tr) == ICL_OK, "step");
        icl_status st = trainer_io_save(&r.tr, path);
        after_failed_save(&r, st, "read-only folder", path, dir, "Read-only file system", old, old_n);
    }
    free(old);
    unmount_tmpfs(dir);
    rig_free(&r);
}

static void test_save_enospc(void) {
    rig r;
    if (!rig_make(&r, "mambaformer", 16, 2, 1e-3f, 10.0f, 1)) return;
    /* size the file system to hold one checkpoint but not a second beside it */
    char probe[320];
    snprintf(probe, sizeof probe, "%s/probe.safetensors", tmpdir);
    CHECK(trainer_io_save(&r.tr, probe) == ICL_OK, "probe save");
    struct stat sb;
    stat(probe, &sb);
    unlink(probe);
    size_t kib = ((size_t)sb.st_size * 3 / 2 + 4095) / 4096 * 4;
    char dir[320], path[400];
    if (!mount_tmpfs(dir, sizeof dir, kib)) {
        printf("# note: the full-disk case with a real ENOSPC was NOT provoked (needs mount(2)); the file-size "
               "limit stands in\n");
        rig_free(&r);
        return;
    }
    ran_enospc = 1;
    snprintf(path, sizeof path, "%s/full.safetensors", dir);
    CHECK(trainer_io_save(&r.tr, path) == ICL_OK, "first save fits (%zu KiB fs, %lld-byte file): %s", kib,
          (long long)sb.st_size, icl_error());
    unsigned char *old;
    size_t old_n = tu_read_file(path, &old);
    CHECK(trainer_step(&r.tr) == ICL_OK, "step");
    icl_status st = trainer_io_save(&r.tr, path);
    after_failed_save(&r, st, "full file system", path, dir, "No space left on device", old, old_n);
    free(old);
    unmount_tmpfs(dir);
    rig_free(&r);
}

/* A save removes the temp file a killed process left, not a live one's. */
static void test_stale_temp_removed(void) {
    rig r;
    if (!rig_make(&r, "mambaformer", 16, 2, 1e-3f, 10.0f, 1)) return;
    pid_t child = fork();
    if (child == 0) _exit(0);
    waitpid(child, NULL, 0); /* a pid that is gone */
    char path[320], dead[400], live[400];
    snprintf(path, sizeof path, "%s/stale.safetensors", tmpdir);
    snprintf(dead, sizeof dead, "%s.tmp.%ld", path, (long)child);
    snprintf(live, sizeof live, "%s.tmp.%ld", path, (long)getppid());
    FILE *f = fopen(dead, "w");
    if (f) { fputs("half a checkpoint", f); fclose(f); }
    f = fopen(live, "w");
    if (f) { fputs("someone else saving", f); fclose(f); }
    CHECK(trainer_io_save(&r.tr, path) == ICL_OK, "save: %s", icl_error());
    CHECK(access(dead, F_OK) != 0, "the dead process's temp file %s was removed", dead);
    CHECK(access(live, F_OK) == 0, "the live process's temp file %s was kept", live);
    unlink(live);
    unlink(dead);
    unlink(path);
    rig_free(&r);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/iclplay-test-faults-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        printf("cannot make a temp folder: %s\n", strerror(errno));
        return 1;
    }
    TEST_RUN(test_optim_never_partial);
    TEST_RUN(test_nan_weight_each_block);
    TEST_RUN(test_nan_outside_blocks);
    TEST_RUN(test_inf_input);
    TEST_RUN(test_nan_gradient);
    TEST_RUN(test_update_overflow);
    TEST_RUN(test_nan_unused_weight);
    TEST_RUN(test_huge_lr);
    TEST_RUN(test_save_file_size_limit);
    TEST_RUN(test_save_missing_folder);
    struct stat sb;
    if (stat("/sys/kernel", &sb) == 0) TEST_RUN(test_save_sys);
    else printf("# note: no /sys here: saving into an unwritable folder (EACCES) was NOT tested (skipped, not passed)\n");
    char dir[320];
    if (mount_tmpfs(dir, sizeof dir, 64)) {
        unmount_tmpfs(dir);
        TEST_RUN(test_save_readonly_mount);
        TEST_RUN(test_save_enospc);
        if (!ran_readonly && !test_only) printf("# note: EROFS (read-only folder) was NOT provoked on this machine\n");
        if (!ran_enospc && !test_only) printf("# note: ENOSPC (a really full disk) was NOT provoked on this machine\n");
    } else {
        printf("# note: mount(2) is not allowed here: a read-only folder (EROFS) and a really full disk (ENOSPC) "
               "were NOT tested (skipped, not passed); the file-size limit and /sys stand in\n");
    }
    TEST_RUN(test_stale_temp_removed);
    rmdir(tmpdir);
    return test_finish();
}
