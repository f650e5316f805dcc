/*
 * task.c - task specs (defaults, options, validation), the task object
 * (geometry, curriculum, batch allocation, dispatch to the family samplers)
 * and the metrics of SPEC.md 1.4.
 *
 * What it is not: a sampler. The prompts themselves are drawn in
 * task_regression.c, task_parity.c, task_cot.c and task_mqar.c; the custom
 * task's prompts come from a callback (task_create_custom). The option table
 * below is the single list of every key, its range and the tasks that read
 * it, so set/get/keys/describe/help never disagree.
 *
 * Memory: task_create and task_batch_alloc check the memory budget
 * (core/budget.h) before allocating and refuse with the estimate; the fixed
 * TASK_MAX_BYTES guard of task_spec_validate still applies on top.
 */
#include "tasks/task.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/budget.h"

/* ------------------------------------------------------------------------ */
/* the registry                                                             */
/* ------------------------------------------------------------------------ */

static const char *const task_name_list[TASK_KIND_COUNT] = {
    "linear_regression", "sparse_linear_regression", "relu2nn_regression", "decision_tree",
    "ortho_outlier_regression", "many_outlier_regression", "sparse_parity", "cot_io",
    "vector_mqar", "token_mqar", "custom",
};

static const char *const task_help_list[TASK_KIND_COUNT] = {
    "y = w.x, w ~ N(0, I_d) per prompt, x ~ N(0, I_d) (SPEC 2.1); metric sq. error / d",
    "y = w.x with k non-zero coordinates of w among the first d_cur (SPEC 2.2); metric sq. error / k",
    "y = sqrt(2/h) sum_j W2_j ReLU(W1_j.x), hidden width h (SPEC 2.3); metric sq. error / d",
    "full binary tree of `depth`, split on x[c] > 0, leaves N(0, 1) (SPEC 2.4); metric sq. error",
    "linear regression, pairs replaced with prob. p by vectors orthogonal to w (SPEC 2.5); loss on clean pairs",
    "linear regression, pairs replaced with prob. p by x = all ones, y = 1 (SPEC 2.6); loss on clean pairs",
    "y = product of x over a hidden k-subset, x in {-1,+1}^d (SPEC 2.7); BCE, metric sign accuracy",
    "2-layer ReLU net with its hidden activation s_i as an intermediate token x, s, y (SPEC 2.8)",
    "kappa key-value pairs of random vectors (norm sqrt d), then queries: output the paired value (SPEC 2.9)",
    "Zoology multi-query associative recall over a vocabulary, power-law query gaps (SPEC 2.10); CE",
    "a task whose prompts come from a callback (Lua); interleaved regression layout",
};

const char *const *task_names(int *n) {
    if (n) *n = TASK_CUSTOM; /* the built-ins: every kind before TASK_CUSTOM */
    return task_name_list;
}

static task_kind kind_of(const char *name) {
    for (int k = 0; k < TASK_KIND_COUNT; k++)
        if (name && !strcmp(name, task_name_list[k])) return (task_kind)k;
    return TASK_KIND_COUNT;
}

const char *task_help(const char *name) {
    task_kind k = kind_of(name);
    return k < TASK_KIND_COUNT ? task_help_list[k] : NULL;
}

/* ------------------------------------------------------------------------ */
/* options                                                                  */
/* ------------------------------------------------------------------------ */

#define BIT(k) (1u << (k))
/* the tasks that share the interleaved scalar-regression sampler */
#define REG                                                                                                    \
    (BIT(TASK_LINEAR_REGRESSION) | BIT(TASK_SPARSE_LINEAR_REGRESSION) | BIT(TASK_RELU2NN_REGRESSION) |         \
     BIT(TASK_DECISION_TREE) | BIT(TASK_ORTHO_OUTLIER_REGRESSION) | BIT(TASK_MANY_OUTLIER_REGRESSION))
/* the tasks with a curriculum on dimensions and points */
#define CURR (REG | BIT(TASK_SPARSE_PARITY) | BIT(TASK_COT_IO) | BIT(TASK_CUSTOM))
#define ALL_BUT_TOKENS ((BIT(TASK_KIND_COUNT) - 1u) & ~BIT(TASK_TOKEN_MQAR))

typedef struct {
    const char *key;
    int is_int;       /* 1: an int field, value must be integral */
    int lo_open;      /* 1: the range excludes lo */
    double lo, hi;    /* allowed range (static; cross-field checks are in validate) */
    unsigned tasks;   /* BIT(kind) of the tasks that read it */
    size_t offset;    /* into task_spec */
} opt_info;

#define OPT_I(name, lo, hi, tasks) {#name, 1, 0, lo, hi, tasks, offsetof(task_spec, name)}
#define OPT_D(name, open, lo, hi, tasks) {#name, 0, open, lo, hi, tasks, offsetof(task_spec, name)}
#define BIGI 2147483647.0

static const opt_info opts[] = {
    OPT_I(n_dims, 1, 65536, ALL_BUT_TOKENS),
    OPT_I(n_points, 1, 1 << 20, CURR),
    OPT_I(k, 1, 65536, BIT(TASK_SPARSE_LINEAR_REGRESSION) | BIT(TASK_SPARSE_PARITY)),
    OPT_I(hidden, 1, 65536, BIT(TASK_RELU2NN_REGRESSION) | BIT(TASK_COT_IO)),
    OPT_I(depth, 1, 20, BIT(TASK_DECISION_TREE)),
    OPT_D(p, 0, 0, 1, BIT(TASK_ORTHO_OUTLIER_REGRESSION) | BIT(TASK_MANY_OUTLIER_REGRESSION)),
    OPT_D(noise, 0, 0, 1e6, REG | BIT(TASK_CUSTOM) | BIT(TASK_VECTOR_MQAR)),
    OPT_I(noise_renorm, 0, 1, REG | BIT(TASK_CUSTOM)),
    OPT_D(x_scale, 1, 0, 1e6, REG),
    OPT_D(y_scale, 1, 0, 1e6, REG),
    OPT_I(ood, 0, 2, BIT(TASK_LINEAR_REGRESSION)),
    OPT_I(ortho_to_own_w, 0, 1, BIT(TASK_ORTHO_OUTLIER_REGRESSION)),
    OPT_I(ortho_code_coeffs, 0, 1, BIT(TASK_ORTHO_OUTLIER_REGRESSION)),
    OPT_I(subset_per_batch, 0, 1, BIT(TASK_SPARSE_PARITY)),
    OPT_I(kappa, 1, 1 << 20, BIT(TASK_VECTOR_MQAR) | BIT(TASK_TOKEN_MQAR)),
    OPT_I(queries, 1, 1 << 20, BIT(TASK_VECTOR_MQAR)),
    OPT_I(vocab, 4, 1 << 24, BIT(TASK_TOKEN_MQAR)),
    OPT_I(seq_len, 4, 1 << 20, BIT(TASK_TOKEN_MQAR)),
    OPT_D(power_a, 1, 0, 100, BIT(TASK_TOKEN_MQAR)),
    OPT_I(random_non_queries, 0, 1, BIT(TASK_TOKEN_MQAR)),
    OPT_D(norm, 0, 1e-12, 1e12, BIT(TASK_CUSTOM)), /* scores are error / norm in float */
    OPT_I(dims_start, 0, 65536, CURR), /* 0 = n_dims */
    OPT_I(dims_end, 0, 65536, CURR),
    OPT_I(dims_inc, 1, 65536, CURR),
    OPT_I(dims_interval, 1, BIGI, CURR),
    OPT_I(points_start, 0, 1 << 20, CURR), /* 0 = n_points */
    OPT_I(points_end, 0, 1 << 20, CURR),
    OPT_I(points_inc, 1, 1 << 20, CURR),
    OPT_I(points_interval, 1, BIGI, CURR),
};
#define N_OPTS ((int)(sizeof opts / sizeof opts[0]))

static const opt_info *find_opt(const char *key) {
    for (int i = 0; i < N_OPTS; i++)
        if (key && !strcmp(key, opts[i].key)) return &opts[i];
    return NULL;
}

static double opt_value(const task_spec *s, const opt_info *o) {
    const char *base = (const char *)s + o->offset;
    if (o->is_int) {
        int v;
        memcpy(&v, base, sizeof v);
        return v;
    }
    double v;
    memcpy(&v, base, sizeof v);
    return v;
}

static const char *spec_name(const task_spec *s) { return s->name[0] ? s->name : "(unnamed)"; }

/* Appends the keys of task kind k, comma-separated, to buf (for messages). */
static void list_keys(task_kind k, char *buf, size_t n) {
    size_t used = 0;
    buf[0] = 0;
    for (int i = 0; i < N_OPTS && used < n; i++) {
        if (!(opts[i].tasks & BIT(k))) continue;
        int w = snprintf(buf + used, n - used, "%s%s", used ? ", " : "", opts[i].key);
        if (w < 0) break;
        used += (size_t)w;
    }
}

void task_spec_default(task_spec *s, const char *name) {
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name ? name : "");
    s->kind = kind_of(name);
    /* shared defaults (only the options a task reads matter) */
    s->n_dims = 20;
    s->n_points = 41;
    s->k = 3;
    s->hidden = 100;
    s->depth = 4;
    s->p = 0.0;
    s->noise = 0.0;
    s->x_scale = 1.0;
    s->y_scale = 1.0;
    s->ood = TASK_OOD_NONE;
    s->ortho_to_own_w = 1;
    s->kappa = 16;
    s->queries = 16;
    s->vocab = 8192;
    s->seq_len = 64;
    s->power_a = 0.01;
    s->random_non_queries = 1;
    s->norm = 1.0;
    /* Garg et al.'s schedule steps, used once start/end are set (0 = follow
     * n_dims / n_points, i.e. no curriculum). */
    s->dims_inc = 1;
    s->dims_interval = 2000;
    s->points_inc = 2;
    s->points_interval = 2000;
    switch (s->kind) {
    case TASK_SPARSE_LINEAR_REGRESSION: s->k = 3; break;
    case TASK_RELU2NN_REGRESSION:
    case TASK_DECISION_TREE:
        s->n_points = 101;
        s->points_inc = 5;
        break;
    case TASK_ORTHO_OUTLIER_REGRESSION:
        s->n_points = 101;
        s->points_inc = 5;
        s->p = 0.5;
        break;
    case TASK_MANY_OUTLIER_REGRESSION:
        s->n_points = 512;
        s->p = 0.9;
        s->points_interval = 200;
        break;
    case TASK_SPARSE_PARITY:
        s->n_dims = 10;
        s->n_points = 140;
        s->k = 2;
        break;
    case TASK_COT_IO: /* SPEC 2.8: [R?] d = 10 with a small hidden width */
        s->n_dims = 10;
        s->hidden = 8;
        s->n_points = 40;
        break;
    case TASK_VECTOR_MQAR: /* SPEC 2.9: counts are [R?]; d as the released retrieval task */
        s->n_dims = 20;
        s->kappa = 16;
        s->queries = 16;
        break;
    case TASK_TOKEN_MQAR: /* Zoology Figure 2, smallest setting (L, kappa) = (64, 4) */
        s->n_dims = 0;
        s->vocab = 8192;
        s->seq_len = 64;
        s->kappa = 4;
        break;
    case TASK_CUSTOM:
        s->n_dims = 5;
        s->n_points = 20;
        break;
    default: break;
    }
}

icl_status task_spec_set(task_spec *s, const char *key, double value) {
    const opt_info *o = find_opt(key);
    char keys[512];
    if (!o) {
        if (s->kind < TASK_KIND_COUNT) {
            list_keys(s->kind, keys, sizeof keys);
            return icl_fail(ICL_ERR_ARG, "task %s: unknown option '%s' (options: %s)", spec_name(s),
                            key ? key : "(null)", keys);
        }
        return icl_fail(ICL_ERR_ARG, "task %s: unknown option '%s'", spec_name(s), key ? key : "(null)");
    }
    if (s->kind < TASK_KIND_COUNT && !(o->tasks & BIT(s->kind))) {
        list_keys(s->kind, keys, sizeof keys);
        return icl_fail(ICL_ERR_ARG, "task %s has no option '%s' (options: %s)", spec_name(s), key, keys);
    }
    int below = o->lo_open ? !(value > o->lo) : !(value >= o->lo);
    if (isnan(value) || below || value > o->hi) {
        if (o->is_int)
            return icl_fail(ICL_ERR_ARG, "task %s: %s must be an integer in [%.0f, %.0f] (got %g)", spec_name(s),
                            key, o->lo, o->hi, value);
        return icl_fail(ICL_ERR_ARG, "task %s: %s must be in %c%g, %g] (got %g)", spec_name(s), key,
                        o->lo_open ? '(' : '[', o->lo, o->hi, value);
    }
    char *base = (char *)s + o->offset;
    if (o->is_int) {
        if (value != floor(value))
            return icl_fail(ICL_ERR_ARG, "task %s: %s must be an integer in [%.0f, %.0f] (got %g)", spec_name(s),
                            key, o->lo, o->hi, value);
        int v = (int)value;
        memcpy(base, &v, sizeof v);
    } else {
        memcpy(base, &value, sizeof value);
    }
    return ICL_OK;
}

icl_status task_spec_get(const task_spec *s, const char *key, double *value) {
    const opt_info *o = find_opt(key);
    if (!o) return icl_fail(ICL_ERR_ARG, "task %s: unknown option '%s'", spec_name(s), key ? key : "(null)");
    *value = opt_value(s, o);
    return ICL_OK;
}

int task_spec_keys(const task_spec *s, const char **keys, int max) {
    int n = 0;
    for (int i = 0; i < N_OPTS; i++) {
        if (s->kind >= TASK_KIND_COUNT || !(opts[i].tasks & BIT(s->kind))) continue;
        if (n < max && keys) keys[n] = opts[i].key;
        n++;
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* geometry of a spec (shared by validate and the task object)              */
/* ------------------------------------------------------------------------ */

typedef struct {
    int start, end, inc, interval;
} sched;

static sched dims_sched(const task_spec *s) {
    sched c = {s->dims_start ? s->dims_start : s->n_dims, s->dims_end ? s->dims_end : s->n_dims, s->dims_inc,
               s->dims_interval};
    return c;
}

static sched points_sched(const task_spec *s) {
    sched c = {s->points_start ? s->points_start : s->n_points, s->points_end ? s->points_end : s->n_points,
               s->points_inc, s->points_interval};
    return c;
}

static int has_curriculum(const task_spec *s) { return (CURR & BIT(s->kind)) != 0; }

/* Tokens per prompt with n points (for tasks without a points curriculum, n is ignored). */
static int spec_T(const task_spec *s, int n) {
    switch (s->kind) {
    case TASK_COT_IO: return 3 * n;
    case TASK_VECTOR_MQAR: return 2 * s->kappa + s->queries;
    case TASK_TOKEN_MQAR: return s->seq_len;
    default: return 2 * n;
    }
}

static int spec_d(const task_spec *s) { return s->kind == TASK_TOKEN_MQAR ? 0 : s->n_dims; }

static int spec_O(const task_spec *s) {
    switch (s->kind) {
    case TASK_COT_IO: return s->hidden;
    case TASK_VECTOR_MQAR: return s->n_dims;
    case TASK_TOKEN_MQAR: return s->vocab;
    default: return 1;
    }
}

static loss_kind spec_loss(const task_spec *s) {
    if (s->kind == TASK_SPARSE_PARITY) return LOSS_BCE;
    if (s->kind == TASK_TOKEN_MQAR) return LOSS_CE;
    return LOSS_MSE;
}

static int spec_T_max(const task_spec *s) { return spec_T(s, points_sched(s).end); }

/* ------------------------------------------------------------------------ */
/* validation                                                               */
/* ------------------------------------------------------------------------ */

static icl_status check_sched(const task_spec *s, const char *what, sched c, int limit, const char *limit_name) {
    if (c.start < 1 || c.end < 1)
        return icl_fail(ICL_ERR_ARG, "task %s: %s_start (%d) and %s_end (%d) must be >= 1", s->name, what, c.start,
                        what, c.end);
    if (c.start > c.end)
        return icl_fail(ICL_ERR_ARG, "task %s: %s_start (%d) must be <= %s_end (%d)", s->name, what, c.start, what,
                        c.end);
    if (c.end > limit)
        return icl_fail(ICL_ERR_ARG, "task %s: %s_end (%d) must be <= %s (%d)", s->name, what, c.end, limit_name,
                        limit);
    if (c.inc < 1 || c.interval < 1)
        return icl_fail(ICL_ERR_ARG, "task %s: %s_inc (%d) and %s_interval (%d) must be >= 1", s->name, what,
                        c.inc, what, c.interval);
    return ICL_OK;
}

/* k must fit in the smallest curriculum dimension (the support is drawn among the first d_cur). */
static icl_status check_k(const task_spec *s, sched dc) {
    if (s->k < 1) return icl_fail(ICL_ERR_ARG, "task %s: k (%d) must be >= 1", s->name, s->k);
    if (dc.start == s->n_dims && s->k > s->n_dims)
        return icl_fail(ICL_ERR_ARG, "task %s: k (%d) must be <= n_dims (%d)", s->name, s->k, s->n_dims);
    if (s->k > dc.start)
        return icl_fail(ICL_ERR_ARG,
                        "task %s: k (%d) must be <= dims_start (%d), the smallest curriculum dimension", s->name,
                        s->k, dc.start);
    return ICL_OK;
}

/* Bytes of a batch of 64 prompts at T_max plus the (64, T_max, O) predictions. */
static double spec_bytes(const task_spec *s) {
    double B = 64, T = spec_T_max(s), d = spec_d(s), O = spec_O(s);
    double per_slot = d * 4 + 3 * 4; /* x, mask, metric, example */
    if (spec_loss(s) == LOSS_CE) per_slot += 4 + 4; /* tok, ycls */
    else per_slot += O * 4;                         /* y */
    per_slot += O * 4;                              /* the model's predictions */
    double scratch = 0;
    if (s->kind == TASK_RELU2NN_REGRESSION || s->kind == TASK_COT_IO) scratch = (double)s->hidden * (d + 2) * 4;
    if (s->kind == TASK_DECISION_TREE) scratch = ldexp(1.0, s->depth + 1) * 8;
    if (s->kind == TASK_TOKEN_MQAR) scratch = (double)s->vocab * 4 + (double)s->seq_len * 8;
    return B * T * per_slot + B * scratch;
}

icl_status task_spec_validate(const task_spec *s) {
    if (s->kind >= TASK_KIND_COUNT || kind_of(s->name) != s->kind) {
        char known[512];
        size_t used = 0;
        known[0] = 0;
        for (int k = 0; k < TASK_CUSTOM; k++) {
            int w = snprintf(known + used, sizeof known - used, "%s%s", k ? ", " : "", task_name_list[k]);
            if (w < 0 || (size_t)w >= sizeof known - used) break;
            used += (size_t)w;
        }
        return icl_fail(ICL_ERR_ARG, "unknown task '%s' (known: %s)", s->name, known);
    }
    const char *nm = s->name;
    if (s->kind != TASK_TOKEN_MQAR && (s->n_dims < 1 || s->n_dims > 65536))
        return icl_fail(ICL_ERR_ARG, "task %s: n_dims (%d) must be in [1, 65536]", nm, s->n_dims);
    if (has_curriculum(s)) {
        if (s->n_points < 1) return icl_fail(ICL_ERR_ARG, "task %s: n_points (%d) must be >= 1", nm, s->n_points);
        if (s->n_points > (1 << 20))
            return icl_fail(ICL_ERR_ARG, "task %s: n_points (%d) must be <= %d", nm, s->n_points, 1 << 20);
        icl_status st = check_sched(s, "dims", dims_sched(s), s->n_dims, "n_dims");
        if (st) return st;
        st = check_sched(s, "points", points_sched(s), s->n_points, "n_points");
        if (st) return st;
    }
    if (s->kind <= TASK_MANY_OUTLIER_REGRESSION || s->kind == TASK_CUSTOM) { /* the REG tasks (enum order) */
        if (!(s->noise >= 0 && s->noise <= 1e6))
            return icl_fail(ICL_ERR_ARG, "task %s: noise (%g) must be in [0, 1e6]", nm, s->noise);
        if (!(s->x_scale > 0 && s->x_scale <= 1e6) || !(s->y_scale > 0 && s->y_scale <= 1e6))
            return icl_fail(ICL_ERR_ARG, "task %s: x_scale (%g) and y_scale (%g) must be in (0, 1e6]", nm,
                            s->x_scale, s->y_scale);
    }
    sched dc = dims_sched(s);
    icl_status st = ICL_OK;
    switch (s->kind) {
    case TASK_LINEAR_REGRESSION:
        if (s->ood < TASK_OOD_NONE || s->ood > TASK_OOD_HALF_SUBSPACE)
            return icl_fail(ICL_ERR_ARG, "task %s: ood (%d) must be 0 (none), 1 (skewed) or 2 (half_subspace)", nm,
                            s->ood);
        if (s->ood == TASK_OOD_HALF_SUBSPACE && s->n_dims < 2)
            return icl_fail(ICL_ERR_ARG, "task %s: ood = half_subspace needs n_dims >= 2 (got %d)", nm, s->n_dims);
        /* every task_sample of an ood task builds a random d x d rotation
         * (task_regression.c): O(d^3), 20 ms at 256, hours at 65536 */
        if (s->ood != TASK_OOD_NONE && s->n_dims > TASK_OOD_MAX_DIMS)
            return icl_fail(ICL_ERR_ARG, "task %s: ood needs n_dims <= %d (got %d): each batch builds a random "
                            "n_dims x n_dims rotation", nm, TASK_OOD_MAX_DIMS, s->n_dims);
        break;
    case TASK_SPARSE_LINEAR_REGRESSION:
    case TASK_SPARSE_PARITY: st = check_k(s, dc); break;
    case TASK_RELU2NN_REGRESSION:
        if (s->hidden < 1) return icl_fail(ICL_ERR_ARG, "task %s: hidden (%d) must be >= 1", nm, s->hidden);
        break;
    case TASK_DECISION_TREE:
        if (s->depth < 1 || s->depth > 20)
            return icl_fail(ICL_ERR_ARG, "task %s: depth (%d) must be in [1, 20]", nm, s->depth);
        break;
    case TASK_ORTHO_OUTLIER_REGRESSION:
        if (s->n_dims < 3)
            return icl_fail(ICL_ERR_ARG,
                            "task %s: n_dims (%d) must be >= 3 (outliers span two directions orthogonal to w)", nm,
                            s->n_dims);
        if (s->ortho_to_own_w && dc.start < 3)
            return icl_fail(ICL_ERR_ARG,
                            "task %s: dims_start (%d) must be >= 3 when ortho_to_own_w = 1 (outliers live in the "
                            "first d_cur coordinates)",
                            nm, dc.start);
        /* fall through */
    case TASK_MANY_OUTLIER_REGRESSION:
        if (!(s->p >= 0 && s->p <= 1)) return icl_fail(ICL_ERR_ARG, "task %s: p (%g) must be in [0, 1]", nm, s->p);
        break;
    case TASK_COT_IO:
        if (s->hidden < 1 || s->hidden > s->n_dims)
            return icl_fail(ICL_ERR_ARG,
                            "task %s: hidden (%d) must be in [1, n_dims] (n_dims = %d): s_i is written into a "
                            "d-wide token",
                            nm, s->hidden, s->n_dims);
        break;
    case TASK_VECTOR_MQAR:
        if (s->kappa < 1) return icl_fail(ICL_ERR_ARG, "task %s: kappa (%d) must be >= 1", nm, s->kappa);
        if (s->queries < 1 || s->queries > s->kappa)
            return icl_fail(ICL_ERR_ARG, "task %s: queries (%d) must be in [1, kappa] (kappa = %d): each query is a "
                            "distinct key", nm, s->queries, s->kappa);
        if (!(s->noise >= 0 && s->noise <= 1e6))
            return icl_fail(ICL_ERR_ARG, "task %s: noise (%g) must be in [0, 1e6]", nm, s->noise);
        break;
    case TASK_TOKEN_MQAR:
        if (s->seq_len < 4 || s->seq_len % 2)
            return icl_fail(ICL_ERR_ARG, "task %s: seq_len (%d) must be even and >= 4", nm, s->seq_len);
        if (s->vocab <= s->seq_len)
            return icl_fail(ICL_ERR_ARG, "task %s: vocab (%d) must be > seq_len (%d)", nm, s->vocab, s->seq_len);
        if (s->kappa < 1 || 4 * s->kappa > s->seq_len)
            return icl_fail(ICL_ERR_ARG, "task %s: kappa (%d) must be in [1, seq_len/4] (seq_len = %d)", nm,
                            s->kappa, s->seq_len);
        if (s->kappa > s->vocab / 2 - 1)
            return icl_fail(ICL_ERR_ARG, "task %s: kappa (%d) must be <= vocab/2 - 1 (%d) distinct keys", nm,
                            s->kappa, s->vocab / 2 - 1);
        if (!(s->power_a > 0 && s->power_a <= 100))
            return icl_fail(ICL_ERR_ARG, "task %s: power_a (%g) must be in (0, 100]", nm, s->power_a);
        break;
    case TASK_CUSTOM:
        /* not too small either: scores are error / norm in float (fuzzing found 1e-307 giving inf) */
        if (!(s->norm >= 1e-12 && s->norm <= 1e12))
            return icl_fail(ICL_ERR_ARG, "task %s: norm (%g) must be in [1e-12, 1e12]", nm, s->norm);
        break;
    default: break;
    }
    if (st) return st;
    double bytes = spec_bytes(s);
    if (bytes > (double)TASK_MAX_BYTES)
        return icl_fail(ICL_ERR_NOMEM,
                        "task %s: a batch of 64 prompts (T = %d tokens, d = %d, O = %d) and its predictions would need "
                        "about %.2f GiB, over the %.0f GiB limit; reduce n_points/seq_len, n_dims, hidden or vocab",
                        nm, spec_T_max(s), spec_d(s), spec_O(s), bytes / 1073741824.0,
                        (double)TASK_MAX_BYTES / 1073741824.0);
    return ICL_OK;
}

/* ------------------------------------------------------------------------ */
/* the task object                                                          */
/* ------------------------------------------------------------------------ */

/* The memory budget (core/budget.h), checked before a task or a batch is
 * allocated: task_create counts what spec_bytes counts (a batch of 64 prompts
 * at the longest curriculum stage and the model's predictions for it). */
static icl_status check_spec_budget(const task_spec *s) {
    double bytes = spec_bytes(s);
    size_t need = bytes >= 1.8e19 ? SIZE_MAX : (size_t)bytes;
    char who[160];
    snprintf(who, sizeof who, "task %s: a batch of 64 prompts (T = %d tokens, d = %d, O = %d)", s->name,
             spec_T_max(s), spec_d(s), spec_O(s));
    return icl_budget_check(need, who, "its buffers and the model's predictions");
}

struct task {
    task_spec spec;
    sched dims, points; /* resolved schedules */
    int d_cur, n_cur;   /* current curriculum values */
    long long steps;    /* task_curriculum_step calls so far */
    task_fill_fn fill;  /* TASK_CUSTOM only */
    void *fill_ctx;
};

icl_status task_create(task **out, const task_spec *s) {
    *out = NULL;
    icl_status st = task_spec_validate(s);
    if (!st) st = check_spec_budget(s);
    if (st) return st;
    if (s->kind == TASK_CUSTOM)
        return icl_fail(ICL_ERR_ARG, "task custom: needs a fill function (create it with task_create_custom)");
    task *t = calloc(1, sizeof *t);
    if (!t) return icl_fail(ICL_ERR_NOMEM, "task %s: out of memory", s->name);
    t->spec = *s;
    t->dims = dims_sched(s);
    t->points = points_sched(s);
    task_curriculum_seek(t, 0);
    *out = t;
    return ICL_OK;
}

icl_status task_create_custom(task **out, const task_spec *s, task_fill_fn fill, void *ctx) {
    *out = NULL;
    if (s->kind != TASK_CUSTOM)
        return icl_fail(ICL_ERR_ARG, "task_create_custom: the spec must come from task_spec_default(s, \"custom\")");
    if (!fill) return icl_fail(ICL_ERR_ARG, "task custom: fill function is NULL");
    icl_status st = task_spec_validate(s);
    if (!st) st = check_spec_budget(s);
    if (st) return st;
    task *t = calloc(1, sizeof *t);
    if (!t) return icl_fail(ICL_ERR_NOMEM, "task custom: out of memory");
    t->spec = *s;
    t->dims = dims_sched(s);
    t->points = points_sched(s);
    t->fill = fill;
    t->fill_ctx = ctx;
    task_curriculum_seek(t, 0);
    *out = t;
    return ICL_OK;
}

void task_free(task *t) { free(t); }

const task_spec *task_get_spec(const task *t) { return &t->spec; }
task_kind task_get_kind(const task *t) { return t->spec.kind; }

int task_d(const task *t) { return spec_d(&t->spec); }
int task_out(const task *t) { return spec_O(&t->spec); }
int task_T(const task *t) { return spec_T(&t->spec, t->n_cur); }
int task_T_max(const task *t) { return spec_T_max(&t->spec); }
int task_vocab(const task *t) { return t->spec.kind == TASK_TOKEN_MQAR ? t->spec.vocab : 0; }
loss_kind task_loss(const task *t) { return spec_loss(&t->spec); }

int task_examples(const task *t) {
    switch (t->spec.kind) {
    case TASK_VECTOR_MQAR: return t->spec.queries;
    case TASK_TOKEN_MQAR: return t->spec.kappa;
    default: return t->n_cur;
    }
}

/* ------------------------------------------------------------------------ */
/* curriculum                                                               */
/* ------------------------------------------------------------------------ */

/* After `steps` updates: each multiple of interval adds inc, capped at end
 * (min(min(v + inc, end) + inc, end) = min(v + 2 inc, end), so a closed form). */
/* start + inc * (steps / interval), capped at end; inc >= 1 (validated).
 * Saturates before multiplying: a resumed step count can be as large as a
 * checkpoint says (fuzzing found inc * k overflowing into a negative d_cur). */
static int sched_at(sched c, long long steps) {
    long long k = steps / c.interval, room = (long long)c.end - c.start;
    if (room <= 0 || k >= room / c.inc + 1) return c.end;
    long long v = (long long)c.start + (long long)c.inc * k;
    return v > c.end ? c.end : (int)v;
}

void task_curriculum_seek(task *t, long long steps) {
    if (steps < 0) steps = 0;
    t->steps = steps;
    if (has_curriculum(&t->spec)) {
        t->d_cur = sched_at(t->dims, steps);
        t->n_cur = sched_at(t->points, steps);
    } else { /* the MQAR tasks: fixed geometry; "points" are the key-value pairs */
        t->d_cur = t->spec.n_dims;
        t->n_cur = t->spec.kappa;
    }
}

void task_curriculum_step(task *t) { task_curriculum_seek(t, t->steps + 1); }
long long task_curriculum_steps(const task *t) { return t->steps; }
int task_cur_dims(const task *t) { return t->d_cur; }
int task_cur_points(const task *t) { return t->n_cur; }

/* ------------------------------------------------------------------------ */
/* batches                                                                  */
/* ------------------------------------------------------------------------ */

icl_status task_batch_alloc(batch *b, const task *t, int cap_B) {
    memset(b, 0, sizeof *b);
    if (cap_B < 1) return icl_fail(ICL_ERR_ARG, "task_batch_alloc: cap_B (%d) must be >= 1", cap_B);
    int T = task_T_max(t), d = task_d(t), O = task_out(t);
    size_t slots = (size_t)cap_B * (size_t)T;
    /* x, y (or tok and ycls), mask, metric, example: checked before any malloc */
    size_t per_slot = (size_t)d * sizeof(float) + 2 * sizeof(float) + sizeof(int) +
                      (task_loss(t) == LOSS_CE ? 2 * sizeof(int) : (size_t)O * sizeof(float));
    char who[160];
    snprintf(who, sizeof who, "task %s: a batch of %d prompts x %d tokens", t->spec.name, cap_B, T);
    icl_status st = icl_budget_check(per_slot > SIZE_MAX / slots ? SIZE_MAX : per_slot * slots, who, "its buffers");
    if (st) return st;
    b->d = d;
    b->O = O;
    b->cap_B = cap_B;
    b->cap_T = T;
    b->loss = task_loss(t);
    int fail = 0;
    if (d > 0) fail |= !(b->x = malloc(slots * (size_t)d * sizeof(float)));
    if (b->loss == LOSS_CE) {
        fail |= !(b->tok = malloc(slots * sizeof(int)));
        fail |= !(b->ycls = malloc(slots * sizeof(int)));
    } else {
        fail |= !(b->y = malloc(slots * (size_t)O * sizeof(float)));
    }
    fail |= !(b->mask = malloc(slots * sizeof(float)));
    fail |= !(b->metric = malloc(slots * sizeof(float)));
    fail |= !(b->example = malloc(slots * sizeof(int)));
    if (fail) {
        task_batch_free(b);
        return icl_fail(ICL_ERR_NOMEM, "task %s: cannot allocate a batch of %d prompts x %d tokens", t->spec.name,
                        cap_B, T);
    }
    return ICL_OK;
}

void *task_batch_scratch(batch *b, size_t bytes) {
    if (bytes <= b->scratch_bytes && b->scratch) return b->scratch;
    void *p = realloc(b->scratch, bytes ? bytes : 1);
    if (!p) return NULL;
    b->scratch = p;
    b->scratch_bytes = bytes;
    return p;
}

void task_batch_free(batch *b) {
    free(b->scratch);
    free(b->x);
    free(b->tok);
    free(b->y);
    free(b->ycls);
    free(b->mask);
    free(b->metric);
    free(b->example);
    memset(b, 0, sizeof *b);
}

/* The custom task: serial callback per prompt, then the interleaved layout. */
static icl_status custom_fill(const task *t, batch *b, uint64_t seed, uint64_t stream0) {
    const task_spec *s = &t->spec;
    int d = s->n_dims, n = t->n_cur, T = b->T;
    float *x = malloc((size_t)n * (size_t)d * sizeof(float));
    float *y = malloc((size_t)n * sizeof(float));
    if (!x || !y) {
        free(x);
        free(y);
        return icl_fail(ICL_ERR_NOMEM, "task custom: out of memory for one prompt");
    }
    double renorm = s->noise_renorm ? sqrt(s->norm / (s->norm + s->noise * s->noise)) : 1.0;
    icl_status st = ICL_OK;
    for (int i = 0; i < b->B && st == ICL_OK; i++) {
        rng_t r = rng_make(seed, stream0 + (uint64_t)i);
        memset(x, 0, (size_t)n * (size_t)d * sizeof(float));
        memset(y, 0, (size_t)n * sizeof(float));
        st = t->fill(t->fill_ctx, i, &r, n, d, t->d_cur, x, y);
        if (st) break;
        for (int j = 0; j < n; j++) {
            size_t slot = (size_t)i * T + 2 * (size_t)j; /* x_j; y_j's token is slot + 1 */
            float *xt = b->x + slot * d;
            for (int c = 0; c < d; c++) xt[c] = c < t->d_cur ? x[(size_t)j * d + c] : 0.0f;
            float yj = y[j];
            /* noise continues the prompt's own generator after the callback's draws */
            if (s->noise > 0) yj = (float)((yj + s->noise * rng_normal(&r)) * renorm);
            if (!isfinite(yj) || !isfinite(xt[0])) {
                st = icl_fail(ICL_ERR_NUMERIC, "task custom: prompt %d example %d: x or y is not finite", i, j);
                break;
            }
            b->x[(slot + 1) * d] = yj;
            b->y[slot] = yj;
            b->mask[slot] = b->metric[slot] = 1.0f;
            b->example[slot] = j;
        }
    }
    free(x);
    free(y);
    return st;
}

icl_status task_sample(const task *t, batch *b, int B, uint64_t seed, uint64_t stream0) {
    const task_spec *s = &t->spec;
    int T = task_T(t), d = task_d(t), O = task_out(t);
    if (B < 1 || B > b->cap_B)
        return icl_fail(ICL_ERR_SHAPE, "task %s: B (%d) must be in [1, cap_B] (cap_B = %d)", s->name, B, b->cap_B);
    if (b->d != d || b->O != O || b->loss != task_loss(t) || T > b->cap_T || !b->mask)
        return icl_fail(ICL_ERR_SHAPE,
                        "task %s: batch was allocated for d = %d, O = %d, T <= %d, but the task needs d = %d, O = %d, "
                        "T = %d (allocate it with task_batch_alloc for this task)",
                        s->name, b->d, b->O, b->cap_T, d, O, T);
    b->B = B;
    b->T = T;
    size_t slots = (size_t)B * (size_t)T;
    if (b->x) memset(b->x, 0, slots * (size_t)d * sizeof(float));
    if (b->y) memset(b->y, 0, slots * (size_t)O * sizeof(float));
    if (b->tok) memset(b->tok, 0, slots * sizeof(int));
    memset(b->mask, 0, slots * sizeof(float));
    memset(b->metric, 0, slots * sizeof(float));
    for (size_t i = 0; i < slots; i++) {
        b->example[i] = -1;
        if (b->ycls) b->ycls[i] = -1;
    }
    switch (s->kind) {
    case TASK_SPARSE_PARITY: return task_parity_fill(s, t->d_cur, t->n_cur, b, seed, stream0);
    case TASK_COT_IO: return task_cot_fill(s, t->d_cur, t->n_cur, b, seed, stream0);
    case TASK_VECTOR_MQAR: return task_vector_mqar_fill(s, b, seed, stream0);
    case TASK_TOKEN_MQAR: return task_token_mqar_fill(s, b, seed, stream0);
    case TASK_CUSTOM: return custom_fill(t, b, seed, stream0);
    case TASK_KIND_COUNT: return icl_fail(ICL_ERR_ARG, "task %s: unknown kind", s->name);
    default: return task_regression_fill(s, t->d_cur, t->n_cur, b, seed, stream0);
    }
}

/* ------------------------------------------------------------------------ */
/* metrics                                                                  */
/* ------------------------------------------------------------------------ */

task_metric_kind task_metric(const task *t) {
    switch (t->spec.kind) {
    case TASK_SPARSE_PARITY: return TASK_METRIC_SIGN_ACC;
    case TASK_VECTOR_MQAR: return TASK_METRIC_NEAREST_ACC;
    case TASK_TOKEN_MQAR: return TASK_METRIC_TOKEN_ACC;
    default: return TASK_METRIC_SQERR;
    }
}

int task_metric_kinds(const task *t, task_metric_kind kinds[4]) {
    kinds[0] = task_metric(t);
    if (t->spec.kind == TASK_VECTOR_MQAR) {
        kinds[1] = TASK_METRIC_SQERR; /* the normalised MSE as well */
        return 2;
    }
    return 1;
}

double task_metric_norm(const task *t) {
    const task_spec *s = &t->spec;
    switch (s->kind) {
    case TASK_LINEAR_REGRESSION:
    case TASK_RELU2NN_REGRESSION:
    case TASK_ORTHO_OUTLIER_REGRESSION:
    case TASK_MANY_OUTLIER_REGRESSION:
    case TASK_VECTOR_MQAR: return s->n_dims;
    case TASK_SPARSE_LINEAR_REGRESSION: return s->k;
    case TASK_CUSTOM: return s->norm;
    default: return 1.0;
    }
}

int task_metric_out(const task *t) { return t->spec.kind == TASK_COT_IO ? 1 : task_out(t); }

icl_status task_score(const task *t, task_metric_kind kind, const batch *b, const float *pred, float *score) {
    task_metric_kind ok[4];
    int nk = task_metric_kinds(t, ok), allowed = 0;
    for (int i = 0; i < nk; i++) allowed |= ok[i] == kind;
    if (!allowed) return icl_fail(ICL_ERR_ARG, "task %s: metric kind %d does not apply", t->spec.name, (int)kind);
    int B = b->B, T = b->T, O = b->O, d = b->d, mo = task_metric_out(t);
    double inv_norm = 1.0 / task_metric_norm(t);
    int kappa = t->spec.kappa;
    size_t work = (size_t)B * T * (kind == TASK_METRIC_NEAREST_ACC ? (size_t)kappa * d : (size_t)O);
#pragma omp parallel for schedule(static) if (work >= TASK_PAR_MIN_WORK)
    for (int bi = 0; bi < B; bi++) {
        for (int tt = 0; tt < T; tt++) {
            size_t slot = (size_t)bi * T + tt;
            score[slot] = 0.0f;
            if (b->metric[slot] == 0.0f) continue;
            const float *p = pred + slot * (size_t)O;
            if (kind == TASK_METRIC_SQERR) {
                const float *y = b->y + slot * (size_t)O;
                double e = 0;
                for (int o = 0; o < mo; o++) e += ((double)p[o] - y[o]) * ((double)p[o] - y[o]);
                score[slot] = (float)(e * inv_norm);
            } else if (kind == TASK_METRIC_SIGN_ACC) {
                score[slot] = (p[0] > 0.0f) == (b->y[slot] > 0.5f) ? 1.0f : 0.0f;
            } else if (kind == TASK_METRIC_TOKEN_ACC) {
                int best = 0;
                for (int o = 1; o < O; o++)
                    if (p[o] > p[best]) best = o;
                score[slot] = best == b->ycls[slot] ? 1.0f : 0.0f;
            } else { /* TASK_METRIC_NEAREST_ACC: among the prompt's kappa values (slots 2j+1) */
                const float *y = b->y + slot * (size_t)O;
                int best_p = 0, best_y = 0;
                double top_p = -DBL_MAX, top_y = -DBL_MAX;
                for (int j = 0; j < kappa; j++) {
                    const float *v = b->x + ((size_t)bi * T + 2 * (size_t)j + 1) * d;
                    double ip = 0, iy = 0;
                    for (int c = 0; c < d; c++) {
                        ip += (double)p[c] * v[c];
                        iy += (double)y[c] * v[c];
                    }
                    if (ip > top_p) {
                        top_p = ip;
                        best_p = j;
                    }
                    if (iy > top_y) {
                        top_y = iy;
                        best_y = j;
                    }
                }
                score[slot] = best_p == best_y ? 1.0f : 0.0f;
            }
        }
    }
    return ICL_OK;
}

/* ------------------------------------------------------------------------ */
/* description                                                              */
/* ------------------------------------------------------------------------ */

int task_describe(const task *t, char *buf, size_t n) {
    const task_spec *s = &t->spec;
    char tmp[1024];
    size_t used = 0;
    int w = snprintf(tmp, sizeof tmp, "%s(", s->name);
    used = w > 0 ? (size_t)w : 0;
    int first = 1;
    for (int i = 0; i < N_OPTS && used < sizeof tmp; i++) {
        if (!(opts[i].tasks & BIT(s->kind))) continue;
        if (!strncmp(opts[i].key, "dims_", 5) || !strncmp(opts[i].key, "points_", 7)) continue;
        double v = opt_value(s, &opts[i]);
        if (!strcmp(opts[i].key, "ood")) {
            static const char *const ood_names[] = {"none", "skewed", "half_subspace"};
            w = snprintf(tmp + used, sizeof tmp - used, "%sood=%s", first ? "" : ", ", ood_names[(int)v % 3]);
        } else {
            w = snprintf(tmp + used, sizeof tmp - used, "%s%s=%g", first ? "" : ", ", opts[i].key, v);
        }
        if (w < 0) break;
        used += (size_t)w;
        first = 0;
    }
    if (has_curriculum(s) && used < sizeof tmp) {
        if (t->dims.start != t->dims.end || t->points.start != t->points.end)
            w = snprintf(tmp + used, sizeof tmp - used,
                         "; curriculum dims %d->%d +%d/%d, points %d->%d +%d/%d, at step %lld: d=%d, points=%d",
                         t->dims.start, t->dims.end, t->dims.inc, t->dims.interval, t->points.start, t->points.end,
                         t->points.inc, t->points.interval, t->steps, t->d_cur, t->n_cur);
        else
            w = 0;
        if (w > 0) used += (size_t)w;
    }
    if (used < sizeof tmp) snprintf(tmp + used, sizeof tmp - used, ")");
    return snprintf(buf, n, "%s", tmp);
}
