/*
 * model_spec.c - model specs: architecture defaults, setting fields by name
 * (what the Lua binding calls), validation with messages that name the
 * field, block lists of the named architectures (SPEC.md 3), the parameter
 * count (the byte counts of model_mem.h live in model.c, by the allocations).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "nn/model.h"

static const char *const arch_names[] = {"transformer", "mamba", "s4mamba", "hybrid", "mambaformer", "custom"};
static const char *const kind_names[BLOCK_KIND_COUNT] = {"attn", "mlp", "mamba", "s4mamba"};

const char *const *model_arch_names(int *n) {
    *n = (int)(sizeof arch_names / sizeof *arch_names);
    return arch_names;
}

const char *block_kind_name(block_kind k) { return (k >= 0 && k < BLOCK_KIND_COUNT) ? kind_names[k] : "?"; }

int block_kind_from_name(const char *name) {
    for (int k = 0; k < BLOCK_KIND_COUNT; k++)
        if (!strcmp(name, kind_names[k])) return k;
    return -1;
}

/* The block list of a named architecture for its n_layer (paper counting). */
static icl_status build_blocks(model_spec *s) {
    const char *a = s->arch;
    int L = s->n_layer, n = 0;
    block_kind *b = s->blocks;
    if (!strcmp(a, "custom")) return ICL_OK;
    if (L < 1) return icl_fail(ICL_ERR_ARG, "model %s: n_layer must be >= 1 (got %d)", a, L);
    if ((!strcmp(a, "transformer") || !strcmp(a, "hybrid") || !strcmp(a, "mambaformer")) && L % 2)
        return icl_fail(ICL_ERR_ARG,
                        "model %s: n_layer counts attention and mixer blocks as the paper does, so it must be even "
                        "(got %d)",
                        a, L);
    int need = !strcmp(a, "mambaformer") ? L + 1 : L;
    if (need > MODEL_MAX_BLOCKS)
        return icl_fail(ICL_ERR_ARG, "model %s: n_layer %d gives %d blocks, more than the maximum %d", a, L, need,
                        MODEL_MAX_BLOCKS);
    if (!strcmp(a, "transformer")) {
        for (int i = 0; i < L / 2; i++) { b[n++] = BLOCK_ATTN; b[n++] = BLOCK_MLP; }
    } else if (!strcmp(a, "mamba")) {
        for (int i = 0; i < L; i++) b[n++] = BLOCK_MAMBA;
    } else if (!strcmp(a, "s4mamba")) {
        for (int i = 0; i < L; i++) b[n++] = BLOCK_S4MAMBA;
    } else if (!strcmp(a, "hybrid")) {
        for (int i = 0; i < L / 2; i++) { b[n++] = BLOCK_ATTN; b[n++] = BLOCK_MAMBA; }
    } else if (!strcmp(a, "mambaformer")) {
        b[n++] = BLOCK_MAMBA;
        for (int i = 0; i < L / 2; i++) { b[n++] = BLOCK_ATTN; b[n++] = BLOCK_MAMBA; }
    }
    s->n_blocks = n;
    return ICL_OK;
}

icl_status model_spec_default(model_spec *s, const char *arch) {
    int known = 0;
    for (size_t i = 0; i < sizeof arch_names / sizeof *arch_names; i++) known |= !strcmp(arch, arch_names[i]);
    if (!known)
        return icl_fail(ICL_ERR_ARG,
                        "unknown architecture '%s' (known: transformer, mamba, s4mamba, hybrid, mambaformer, custom)",
                        arch);
    memset(s, 0, sizeof *s);
    snprintf(s->arch, sizeof s->arch, "%s", arch);
    s->n_dims = 5;
    s->n_out = 1;
    s->d_model = 64;
    s->n_layer = 4;
    s->n_head = 4;
    s->d_state = 16;
    s->d_conv = 4;
    s->expand = 2;
    s->seed = 1;
    /* GPT-2 keeps learned positions (N(0, 0.02)); the Standard Hybrid keeps
     * them too but, living outside MixerModel, they get PyTorch's default
     * Embedding init N(0, 1) (SPEC.md 3.4). Mamba-first models have none. */
    if (!strcmp(arch, "transformer")) { s->n_positions = 256; s->pos_std = 0.02f; s->init = INIT_GPT2; }
    else if (!strcmp(arch, "hybrid")) { s->n_positions = 256; s->pos_std = 1.0f; s->init = INIT_MIXER; }
    else s->init = INIT_MIXER;
    if (!strcmp(arch, "s4mamba")) s->d_state = 16; /* 8 complex modes */
    return build_blocks(s);
}

typedef struct { const char *key; int *field; int lo, hi; } int_field;

icl_status model_spec_set(model_spec *s, const char *key, double v) {
    int_field f[] = {
        {"n_dims", &s->n_dims, 1, 4096},      {"n_out", &s->n_out, 1, 1 << 20},
        {"vocab", &s->vocab, 0, 1 << 20},     {"d_model", &s->d_model, 1, 8192},
        {"n_layer", &s->n_layer, 1, 256},     {"n_head", &s->n_head, 1, 256},
        {"d_state", &s->d_state, 1, 1024},    {"d_conv", &s->d_conv, 1, 64},
        {"expand", &s->expand, 1, 16},        {"dt_rank", &s->dt_rank, 0, 8192},
        {"n_positions", &s->n_positions, 0, 1 << 20},
    };
    if (!strcmp(key, "seed")) {
        if (!(v >= 0) || v != floor(v) || v > 9007199254740992.0)
            return icl_fail(ICL_ERR_ARG, "model: seed must be a non-negative integer (got %g)", v);
        s->seed = (uint64_t)v;
        return ICL_OK;
    }
    if (!strcmp(key, "pos_std")) {
        if (!(v >= 0) || !isfinite(v)) return icl_fail(ICL_ERR_ARG, "model: pos_std must be >= 0 (got %g)", v);
        s->pos_std = (float)v;
        return ICL_OK;
    }
    if (!strcmp(key, "init")) {
        if (v != INIT_GPT2 && v != INIT_MIXER)
            return icl_fail(ICL_ERR_ARG, "model: init must be 0 (gpt2) or 1 (mixer) (got %g)", v);
        s->init = (init_family)(int)v;
        return ICL_OK;
    }
    for (size_t i = 0; i < sizeof f / sizeof *f; i++) {
        if (strcmp(key, f[i].key)) continue;
        if (!(v == floor(v)) || v < f[i].lo || v > f[i].hi)
            return icl_fail(ICL_ERR_ARG, "model: %s must be an integer in [%d, %d] (got %g)", key, f[i].lo, f[i].hi,
                            v);
        *f[i].field = (int)v;
        if (!strcmp(key, "n_layer")) return build_blocks(s);
        return ICL_OK;
    }
    return icl_fail(ICL_ERR_ARG,
                    "model: unknown field '%s' (fields: arch, n_dims, n_out, vocab, d_model, n_layer, n_head, d_state, "
                    "d_conv, expand, dt_rank, n_positions, pos_std, init, seed, blocks)",
                    key);
}

icl_status model_spec_set_blocks(model_spec *s, const block_kind *kinds, int n) {
    if (n < 1 || n > MODEL_MAX_BLOCKS)
        return icl_fail(ICL_ERR_ARG, "model: blocks must list 1 to %d blocks (got %d)", MODEL_MAX_BLOCKS, n);
    for (int i = 0; i < n; i++) {
        if (kinds[i] < 0 || kinds[i] >= BLOCK_KIND_COUNT)
            return icl_fail(ICL_ERR_ARG, "model: blocks[%d] is not a block kind", i + 1);
        s->blocks[i] = kinds[i];
    }
    s->n_blocks = n;
    snprintf(s->arch, sizeof s->arch, "custom");
    return ICL_OK;
}

icl_status model_spec_validate(const model_spec *s) {
    const char *a = s->arch;
    if (s->n_blocks < 1) return icl_fail(ICL_ERR_ARG, "model %s: no blocks", a);
    if (s->d_model < 1) return icl_fail(ICL_ERR_ARG, "model %s: d_model must be >= 1", a);
    if (s->n_dims < 1 && s->vocab == 0) return icl_fail(ICL_ERR_ARG, "model %s: n_dims must be >= 1", a);
    if (s->n_out < 1) return icl_fail(ICL_ERR_ARG, "model %s: n_out must be >= 1", a);
    if (!(s->pos_std >= 0) || !isfinite(s->pos_std))
        return icl_fail(ICL_ERR_ARG, "model %s: pos_std must be a finite number >= 0 (got %g)", a, (double)s->pos_std);
    int has_attn = 0, has_s4 = 0;
    for (int i = 0; i < s->n_blocks; i++) {
        has_attn |= s->blocks[i] == BLOCK_ATTN;
        has_s4 |= s->blocks[i] == BLOCK_S4MAMBA;
    }
    if (has_attn && (s->n_head < 1 || s->d_model % s->n_head))
        return icl_fail(ICL_ERR_ARG, "model %s: d_model (%d) must be divisible by n_head (%d)", a, s->d_model,
                        s->n_head);
    if (has_s4 && s->d_state % 2)
        return icl_fail(ICL_ERR_ARG, "model %s: s4mamba needs an even d_state (complex modes = d_state/2), got %d", a,
                        s->d_state);
    return ICL_OK;
}

/* ---- sizes ------------------------------------------------------------- */

static int dt_rank_of(const model_spec *s) { return s->dt_rank > 0 ? s->dt_rank : (s->d_model + 15) / 16; }

size_t model_param_count(const model_spec *s) {
    size_t D = s->d_model, E = (size_t)s->expand * D, N = s->d_state, R = dt_rank_of(s), K = s->d_conv;
    size_t n = 0;
    n += s->vocab > 0 ? (size_t)s->vocab * D : (size_t)s->n_dims * D + D; /* read-in */
    n += (size_t)s->n_positions * D;
    n += 2 * D + (size_t)s->n_out * D + s->n_out; /* final norm, read-out */
    for (int i = 0; i < s->n_blocks; i++) {
        switch (s->blocks[i]) {
        case BLOCK_ATTN: n += 4 * D * D + 6 * D; break;
        case BLOCK_MLP: n += 8 * D * D + 7 * D; break;
        case BLOCK_MAMBA: n += 2 * D + 2 * E * D + E * K + E + (R + 2 * N) * E + E * R + E + E * N + E + D * E; break;
        /* S4D: log_dt (E), log_A_real and A_imag (E, N/2) each, C (E, N/2, 2), D (E) */
        case BLOCK_S4MAMBA: n += 2 * D + 2 * E * D + E * K + E + E + 2 * E * N + E + D * E; break;
        default: break;
        }
    }
    return n;
}

/* model_activation_bytes and the byte counts of model_mem.h are in model.c,
 * next to the allocations they count. */

/* ---- JSON --------------------------------------------------------------- */

int model_spec_to_json(const model_spec *s, char *buf, size_t n) {
    int k = snprintf(buf, n,
                     "{\"arch\":\"%s\",\"n_dims\":%d,\"n_out\":%d,\"vocab\":%d,\"d_model\":%d,\"n_layer\":%d,"
                     "\"n_head\":%d,\"d_state\":%d,\"d_conv\":%d,\"expand\":%d,\"dt_rank\":%d,\"n_positions\":%d,"
                     "\"pos_std\":%.9g,\"init\":%d,\"seed\":%llu,\"blocks\":[",
                     s->arch, s->n_dims, s->n_out, s->vocab, s->d_model, s->n_layer, s->n_head, s->d_state, s->d_conv,
                     s->expand, s->dt_rank, s->n_positions, (double)s->pos_std, (int)s->init,
                     (unsigned long long)s->seed);
    for (int i = 0; i < s->n_blocks; i++)
        k += snprintf(buf + (k < (int)n ? k : (int)n), k < (int)n ? n - (size_t)k : 0, "%s\"%s\"", i ? "," : "",
                      block_kind_name(s->blocks[i]));
    k += snprintf(buf + (k < (int)n ? k : (int)n), k < (int)n ? n - (size_t)k : 0, "]}");
    return k;
}

icl_status model_spec_from_json(model_spec *s, const char *text) {
    json_doc *doc = NULL;
    icl_status st = json_parse(text, strlen(text), &doc);
    if (st) return icl_fail(st, "model spec: %s", icl_error());
    const json_value *root = json_root(doc);
    const char *arch = json_as_string(json_get(root, "arch"));
    if (!arch) {
        json_free(doc);
        return icl_fail(ICL_ERR_FORMAT, "model spec: missing \"arch\" string");
    }
    st = model_spec_default(s, arch);
    static const char *const ints[] = {"n_dims", "n_out", "vocab", "d_model", "n_layer", "n_head",
                                       "d_state", "d_conv", "expand", "dt_rank", "n_positions", "init"};
    for (size_t i = 0; !st && i < sizeof ints / sizeof *ints; i++) {
        int64_t v;
        const json_value *jv = json_get(root, ints[i]);
        if (!jv) { st = icl_fail(ICL_ERR_FORMAT, "model spec: missing \"%s\"", ints[i]); break; }
        if ((st = json_as_int64(jv, 0, 1 << 20, &v))) { st = icl_fail(st, "model spec \"%s\": %s", ints[i], icl_error()); break; }
        /* n_layer of a custom model does not rebuild blocks; others do */
        st = model_spec_set(s, ints[i], (double)v);
    }
    double pos_std = 0;
    int64_t seed = 0;
    /* through model_spec_set, so a huge number (inf after parsing) is refused like any bad value */
    if (!st && (st = json_as_double(json_get(root, "pos_std"), &pos_std)) == ICL_OK)
        st = model_spec_set(s, "pos_std", pos_std);
    if (!st && (st = json_as_int64(json_get(root, "seed"), 0, INT64_MAX, &seed)) == ICL_OK) s->seed = (uint64_t)seed;
    const json_value *bl = json_get(root, "blocks");
    if (!st) {
        size_t n = json_len(bl);
        if (!bl || bl->type != JSON_ARRAY || n < 1 || n > MODEL_MAX_BLOCKS)
            st = icl_fail(ICL_ERR_FORMAT, "model spec: \"blocks\" must be an array of 1 to %d block names",
                          MODEL_MAX_BLOCKS);
        for (size_t i = 0; !st && i < n; i++) {
            const char *name = json_as_string(json_at(bl, i));
            int k = name ? block_kind_from_name(name) : -1;
            if (k < 0) st = icl_fail(ICL_ERR_FORMAT, "model spec: blocks[%zu] is not a block kind", i);
            else if (strcmp(s->arch, "custom") && i < (size_t)s->n_blocks && s->blocks[i] != (block_kind)k)
                st = icl_fail(ICL_ERR_FORMAT, "model spec: blocks[%zu] is %s, but %s with n_layer %d has %s there", i,
                              name, s->arch, s->n_layer, block_kind_name(s->blocks[i]));
            else s->blocks[i] = (block_kind)k;
        }
        if (!st) {
            if (strcmp(s->arch, "custom") && (int)n != s->n_blocks)
                st = icl_fail(ICL_ERR_FORMAT, "model spec: %s with n_layer %d has %d blocks, the file lists %zu",
                              s->arch, s->n_layer, s->n_blocks, n);
            s->n_blocks = (int)n;
        }
    }
    json_free(doc);
    if (!st) st = model_spec_validate(s);
    return st;
}
