/*
 * safetensors.c - safetensors reader/validator and atomic writer (see safetensors.h).
 *
 * Reading loads the whole file into one buffer, parses the header with our
 * strict JSON parser (which already rejects duplicate keys, invalid UTF-8 and
 * NUL bytes), then checks every entry against the data section before any
 * entry is handed out. Tensor data pointers point into that buffer; a tensor
 * whose offset is not float-aligned gets an aligned copy.
 *
 * Writing builds the header in memory, then streams header and tensors to a
 * temp file next to the target and renames it into place (rename is atomic
 * within one file system, which is why the temp file lives in the same folder).
 * The temp file is fsynced before the rename and the folder after it, so
 * after a crash or power cut the path holds the old file or the new one,
 * whole. Any failure removes the temp file. A process killed mid-save
 * (SIGKILL, an unhandled SIGTERM) cannot do that, so each save first removes
 * the temp files "<path>.tmp.<pid>" of processes that no longer exist.
 *
 * Not here: big-endian hosts. safetensors data is little-endian; this file
 * writes and reads floats as they lie in memory and refuses to compile on a
 * big-endian host rather than silently produce byte-swapped checkpoints.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* fsync, O_CLOEXEC, O_DIRECTORY, O_NOFOLLOW, strdup */
#endif
#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "json.h"

#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__)
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "safetensors.c assumes a little-endian host: add byte swapping to write_f32_le and "
               "entry data in validate() before porting");
#else
#error "cannot tell the byte order of this host; safetensors.c needs a little-endian one"
#endif
_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24, "F32 tensors need IEEE-754 binary32 floats");

struct st_file {
    char *label;           /* path (or caller's label) for messages */
    unsigned char *buf;    /* the whole file */
    size_t size;
    json_doc *doc;         /* names and metadata strings live here */
    st_entry *entries;     /* n, header order */
    float **copies;        /* n; aligned copy of entry i's data, or NULL */
    size_t n;
    const char **mkeys, **mvals;
    size_t n_meta;
};

/* ------------------------------------------------------------------------ */
/* helpers                                                                   */

static icl_status ferr(const st_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static icl_status ferr(const st_file *f, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return icl_fail(ICL_ERR_FORMAT, "st: '%s': %s", f->label, what);
}

/* Re-raise the last (json) error with the file and a context prefixed. Its
 * "at byte N" counts from the start of the header (file byte 8), so say so. */
static icl_status wrap(const st_file *f, icl_status code, const char *ctx) {
    char inner[512];
    snprintf(inner, sizeof inner, "%s", icl_error());
    return icl_fail(code, "st: '%s': %s: %s%s", f->label, ctx, inner, strstr(inner, " at byte ") ? " of the header" : "");
}

static uint64_t le64(const unsigned char *b) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

/* dtypes other readers may write; named so the error says "unsupported", not "garbage" */
static int known_dtype(const char *s) {
    static const char *const known[] = {"BOOL", "U8",  "I8",  "I16",     "U16",     "F16",  "BF16", "I32",
                                        "U32",  "F64", "I64", "U64",     "F8_E5M2", "F8_E4M3", "F8_E8M0",
                                        "F4",   "F6_E2M3", "F6_E3M2", "C64"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (!strcmp(s, known[i])) return 1;
    return 0;
}

/* "[2, 3]" for messages */
static void shape_str(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int d = 0; d < ndim && k < cap; d++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}

/* prod(shape) into [out] *nelem; 0 on overflow of 64 bits. */
static int shape_numel(const int64_t *shape, int ndim, uint64_t *nelem) {
    uint64_t p = 1;
    for (int d = 0; d < ndim; d++) {
        uint64_t s = (uint64_t)shape[d];
        if (s && p > UINT64_MAX / s) return 0;
        p *= s;
    }
    *nelem = p;
    return 1;
}

/* ------------------------------------------------------------------------ */
/* reading                                                                   */

void st_close(st_file *f) {
    if (!f) return;
    if (f->copies)
        for (size_t i = 0; i < f->n; i++) free(f->copies[i]);
    free(f->copies);
    free(f->entries);
    free(f->mkeys);
    free(f->mvals);
    json_free(f->doc);
    free(f->buf);
    free(f->label);
    free(f);
}

static icl_status parse_metadata(st_file *f, const json_value *meta) {
    if (meta->type != JSON_OBJECT)
        return ferr(f, "\"__metadata__\" is a JSON %s, not an object of strings", json_type_name(meta->type));
    f->n_meta = meta->count;
    if (!meta->count) return ICL_OK;
    f->mkeys = malloc(meta->count * sizeof *f->mkeys);
    f->mvals = malloc(meta->count * sizeof *f->mvals);
    if (!f->mkeys || !f->mvals) return icl_fail(ICL_ERR_NOMEM, "st: '%s': out of memory", f->label);
    for (size_t i = 0; i < meta->count; i++) {
        const json_member *m = &meta->members[i];
        if (m->value.type != JSON_STRING)
            return ferr(f, "\"__metadata__\" value of \"%.80s\" is a JSON %s, not a string", m->key,
                        json_type_name(m->value.type));
        if (strlen(m->key) != m->key_len || strlen(m->value.str) != m->value.len)
            return ferr(f, "\"__metadata__\" entry \"%.80s\" contains a NUL character", m->key);
        f->mkeys[i] = m->key;
        f->mvals[i] = m->value.str;
    }
    return ICL_OK;
}

/* Fill entry e from the header entry v of tensor `name`; data_len bounds the offsets. */
static icl_status parse_entry(st_file *f, const char *name, const json_value *v, size_t data_len, st_entry *e,
                              uint64_t off[2]) {
    if (v->type != JSON_OBJECT)
        return ferr(f, "tensor '%.80s': entry is a JSON %s, not an object", name, json_type_name(v->type));
    e->name = name;
    e->dtype = ST_F32;

    const json_value *dt = json_get(v, "dtype");
    if (!dt) return ferr(f, "tensor '%.80s': missing \"dtype\"", name);
    if (dt->type != JSON_STRING)
        return ferr(f, "tensor '%.80s': \"dtype\" is a JSON %s, not a string", name, json_type_name(dt->type));
    if (strcmp(dt->str, "F32") != 0) {
        if (known_dtype(dt->str))
            return ferr(f, "tensor '%.80s': unsupported dtype %s (only F32 is supported)", name, dt->str);
        return ferr(f, "tensor '%.80s': unknown dtype \"%.40s\"", name, dt->str);
    }

    const json_value *sh = json_get(v, "shape");
    if (!sh) return ferr(f, "tensor '%.80s': missing \"shape\"", name);
    if (sh->type != JSON_ARRAY)
        return ferr(f, "tensor '%.80s': \"shape\" is a JSON %s, not an array", name, json_type_name(sh->type));
    if (sh->count > ST_MAX_DIMS)
        return ferr(f, "tensor '%.80s': shape has %zu dimensions, more than the %d supported", name, sh->count,
                    ST_MAX_DIMS);
    e->ndim = (int)sh->count;
    for (int d = 0; d < e->ndim; d++) {
        if (json_as_int64(&sh->items[d], 0, INT64_MAX, &e->shape[d])) {
            char ctx[160];
            snprintf(ctx, sizeof ctx, "tensor '%.80s': shape[%d]", name, d);
            return wrap(f, ICL_ERR_FORMAT, ctx);
        }
    }
    char shs[200];
    shape_str(shs, sizeof shs, e->shape, e->ndim);
    uint64_t nelem;
    if (!shape_numel(e->shape, e->ndim, &nelem) || nelem > UINT64_MAX / sizeof(float))
        return ferr(f, "tensor '%.80s': shape %s has too many elements", name, shs);

    const json_value *of = json_get(v, "data_offsets");
    if (!of) return ferr(f, "tensor '%.80s': missing \"data_offsets\"", name);
    if (of->type != JSON_ARRAY || of->count != 2)
        return ferr(f, "tensor '%.80s': \"data_offsets\" must be an array [begin, end]", name);
    for (int k = 0; k < 2; k++) {
        int64_t x;
        if (json_as_int64(&of->items[k], 0, INT64_MAX, &x)) {
            char ctx[160];
            snprintf(ctx, sizeof ctx, "tensor '%.80s': data_offsets[%d]", name, k);
            return wrap(f, ICL_ERR_FORMAT, ctx);
        }
        off[k] = (uint64_t)x;
    }
    if (off[0] > off[1])
        return ferr(f, "tensor '%.80s': data_offsets [%llu, %llu] are reversed (begin > end)", name,
                    (unsigned long long)off[0], (unsigned long long)off[1]);
    if (off[1] > data_len)
        return ferr(f, "tensor '%.80s': data_offsets end %llu is past the end of the data section (%zu bytes; "
                       "file truncated?)", name, (unsigned long long)off[1], data_len);
    uint64_t need = nelem * sizeof(float);
    if (off[1] - off[0] != need)
        return ferr(f, "tensor '%.80s': data_offsets [%llu, %llu] hold %llu bytes but F32 shape %s needs %llu",
                    name, (unsigned long long)off[0], (unsigned long long)off[1],
                    (unsigned long long)(off[1] - off[0]), shs, (unsigned long long)need);
    e->nelem = (size_t)nelem; /* <= data_len / 4, so it fits */
    return ICL_OK;
}

typedef struct {
    uint64_t begin, end;
    size_t i;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* Validate f->buf[0..f->size) and fill entries and metadata. */
static icl_status validate(st_file *f) {
    if (f->size < 8)
        return ferr(f, "file is %zu bytes, too short to hold the 8-byte header length (empty or truncated)", f->size);
    uint64_t hlen = le64(f->buf);
    if (hlen > f->size - 8)
        return ferr(f, "header length %llu exceeds the %zu bytes after the length field (truncated or not "
                       "a safetensors file)", (unsigned long long)hlen, f->size - 8);
    if (hlen > ST_MAX_HEADER)
        return ferr(f, "header length %llu exceeds the limit of %llu bytes", (unsigned long long)hlen,
                    (unsigned long long)ST_MAX_HEADER);
    if (hlen == 0) return ferr(f, "header is empty (length 0)");
    const char *hdr = (const char *)f->buf + 8;
    icl_status st = json_parse(hdr, (size_t)hlen, &f->doc);
    if (st) return wrap(f, st, "header");
    const json_value *root = json_root(f->doc);
    if (root->type != JSON_OBJECT) return ferr(f, "header is a JSON %s, not an object", json_type_name(root->type));

    const unsigned char *data = f->buf + 8 + hlen;
    size_t data_len = f->size - 8 - (size_t)hlen;
    size_t n = 0;
    for (size_t i = 0; i < root->count; i++)
        if (strcmp(root->members[i].key, "__metadata__") != 0 || root->members[i].key_len != 12) n++;
    f->entries = calloc(n ? n : 1, sizeof *f->entries);
    f->copies = calloc(n ? n : 1, sizeof *f->copies);
    span *sp = calloc(n ? n : 1, sizeof *sp);
    if (!f->entries || !f->copies || !sp) {
        free(sp);
        return icl_fail(ICL_ERR_NOMEM, "st: '%s': out of memory for %zu entries", f->label, n);
    }
    f->n = n;
    size_t k = 0;
    for (size_t i = 0; i < root->count && !st; i++) {
        const json_member *m = &root->members[i];
        if (m->key_len == 12 && !strcmp(m->key, "__metadata__")) {
            st = parse_metadata(f, &m->value);
            continue;
        }
        if (strlen(m->key) != m->key_len) {
            st = ferr(f, "tensor name at header byte %zu contains a NUL character", m->key_offset);
            break;
        }
        uint64_t off[2];
        st = parse_entry(f, m->key, &m->value, data_len, &f->entries[k], off);
        sp[k].begin = off[0];
        sp[k].end = off[1];
        sp[k].i = k;
        k++;
    }
    /* No two tensors may share a byte. Sorted by (begin, end), each must start
     * at or after the furthest end seen so far; an empty tensor strictly inside
     * another one counts as overlapping (Python's reader rejects it too). */
    if (!st && n > 1) {
        qsort(sp, n, sizeof *sp, span_cmp);
        size_t far = 0;
        for (size_t j = 1; j < n && !st; j++) {
            if (sp[j].begin < sp[far].end) {
                const span *a = &sp[far], *b = &sp[j];
                st = ferr(f, "tensors '%.80s' [%llu, %llu) and '%.80s' [%llu, %llu) overlap",
                          f->entries[a->i].name, (unsigned long long)a->begin, (unsigned long long)a->end,
                          f->entries[b->i].name, (unsigned long long)b->begin, (unsigned long long)b->end);
            }
            if (sp[j].end > sp[far].end) far = j;
        }
    }
    /* data pointers: in place when float-aligned, else an aligned copy */
    static const float empty[1] = {0};
    for (size_t j = 0; j < n && !st; j++) {
        st_entry *e = &f->entries[sp[j].i];
        const unsigned char *p = data + sp[j].begin;
        if (e->nelem == 0) e->data = empty;
        else if ((uintptr_t)p % _Alignof(float) == 0) e->data = (const float *)(const void *)p;
        else {
            float *c = malloc(e->nelem * sizeof(float));
            if (!c) st = icl_fail(ICL_ERR_NOMEM, "st: '%s': out of memory copying tensor '%.80s'", f->label, e->name);
            else {
                memcpy(c, p, e->nelem * sizeof(float));
                f->copies[sp[j].i] = c;
                e->data = c;
            }
        }
    }
    free(sp);
    return st;
}

/* Take ownership of buf and validate it. */
static icl_status open_buffer(unsigned char *buf, size_t len, const char *label, st_file **out) {
    st_file *f = calloc(1, sizeof *f);
    char *lab = strdup(label ? label : "(memory)");
    if (!f || !lab) {
        free(f);
        free(lab);
        free(buf);
        return icl_fail(ICL_ERR_NOMEM, "st: out of memory");
    }
    f->label = lab;
    f->buf = buf;
    f->size = len;
    icl_status st = validate(f);
    if (st) {
        st_close(f);
        return st;
    }
    *out = f;
    return ICL_OK;
}

icl_status st_open_memory(const void *buf, size_t len, const char *label, st_file **out) {
    *out = NULL;
    if (len && !buf) return icl_fail(ICL_ERR_ARG, "st: NULL buffer");
    unsigned char *copy = malloc(len ? len : 1);
    if (!copy) return icl_fail(ICL_ERR_NOMEM, "st: out of memory for a %zu-byte buffer", len);
    if (len) memcpy(copy, buf, len);
    return open_buffer(copy, len, label, out);
}

icl_status st_open(const char *path, st_file **out) {
    *out = NULL;
    if (!path) return icl_fail(ICL_ERR_ARG, "st: NULL path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return icl_fail(ICL_ERR_IO, "st: cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return icl_fail(ICL_ERR_IO, "st: cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return icl_fail(ICL_ERR_IO, "st: '%s' is not a regular file", path);
    }
    if ((uint64_t)sb.st_size > (uint64_t)SIZE_MAX / 2) {
        close(fd);
        return icl_fail(ICL_ERR_NOMEM, "st: '%s' is too large to load (%lld bytes)", path, (long long)sb.st_size);
    }
    size_t size = (size_t)sb.st_size;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return icl_fail(ICL_ERR_NOMEM, "st: out of memory reading '%s' (%zu bytes)", path, size);
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = errno;
            close(fd);
            free(buf);
            if (r == 0) return icl_fail(ICL_ERR_IO, "st: '%s' shrank while being read (%zu of %zu bytes)", path, got, size);
            return icl_fail(ICL_ERR_IO, "st: cannot read '%s': %s", path, strerror(e));
        }
        got += (size_t)r;
    }
    close(fd);
    return open_buffer(buf, size, path, out);
}

size_t st_count(const st_file *f) { return f ? f->n : 0; }

const st_entry *st_entry_at(const st_file *f, size_t i) { return (f && i < f->n) ? &f->entries[i] : NULL; }

/* Linear: checkpoints hold hundreds of tensors, not millions. */
const st_entry *st_find(const st_file *f, const char *name) {
    if (!f || !name) return NULL;
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->entries[i].name, name)) return &f->entries[i];
    return NULL;
}

const char *st_meta(const st_file *f, const char *key) {
    if (!f || !key) return NULL;
    for (size_t i = 0; i < f->n_meta; i++)
        if (!strcmp(f->mkeys[i], key)) return f->mvals[i];
    return NULL;
}

size_t st_meta_count(const st_file *f) { return f ? f->n_meta : 0; }

int st_meta_at(const st_file *f, size_t i, const char **key, const char **value) {
    if (!f || i >= f->n_meta) return 0;
    if (key) *key = f->mkeys[i];
    if (value) *value = f->mvals[i];
    return 1;
}

/* ------------------------------------------------------------------------ */
/* writing                                                                   */

typedef struct {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

static char *sb_reserve(sbuf *b, size_t extra) {
    if (b->oom) return NULL;
    if (b->cap - b->n <= extra) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n <= extra) cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) { b->oom = 1; return NULL; }
        b->p = p;
        b->cap = cap;
    }
    return b->p + b->n;
}

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap); /* only short integer pieces go through here */
    va_end(ap);
    char *o = sb_reserve(b, (size_t)k);
    if (!o) return;
    memcpy(o, tmp, (size_t)k + 1);
    b->n += (size_t)k;
}

static void sb_string(sbuf *b, const char *s) {
    size_t len = strlen(s), need = json_write_string(NULL, 0, s, len);
    char *o = sb_reserve(b, need);
    if (!o) return;
    json_write_string(o, need + 1, s, len);
    b->n += need;
}

static int str_ptr_cmp(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first string that appears twice in s[0..n), or NULL (NOMEM: *oom = 1). */
static const char *find_duplicate(const char *const *s, size_t n, int *oom) {
    if (n < 2) return NULL;
    const char **c = malloc(n * sizeof *c);
    if (!c) { *oom = 1; return NULL; }
    memcpy(c, s, n * sizeof *c);
    qsort(c, n, sizeof *c, str_ptr_cmp);
    const char *dup = NULL;
    for (size_t i = 1; i < n && !dup; i++)
        if (!strcmp(c[i], c[i - 1])) dup = c[i];
    free(c);
    return dup;
}

/* The data section is little-endian and so is this host (static assert at
 * the top), so floats go out as they lie in memory. On a big-endian host this
 * is the one place that would byte-swap each 4-byte word before writing. */
static int write_f32_le(FILE *fp, const float *x, size_t n) {
    return n == 0 || fwrite(x, sizeof(float), n, fp) == n;
}

/* Check the arguments and build the space-padded header JSON into [out] b. */
static icl_status build_header(const char *path, const st_tensor *t, size_t n, const char *const *mk,
                               const char *const *mv, size_t n_meta, sbuf *b) {
    if (n && !t) return icl_fail(ICL_ERR_ARG, "st: write '%s': NULL tensor list", path);
    if (n_meta && (!mk || !mv)) return icl_fail(ICL_ERR_ARG, "st: write '%s': NULL metadata list", path);
    for (size_t i = 0; i < n_meta; i++) {
        if (!mk[i] || !mv[i]) return icl_fail(ICL_ERR_ARG, "st: write '%s': metadata %zu has a NULL key or value", path, i);
        if (!json_utf8_valid(mk[i], strlen(mk[i])) || !json_utf8_valid(mv[i], strlen(mv[i])))
            return icl_fail(ICL_ERR_ARG, "st: write '%s': metadata \"%.80s\" is not valid UTF-8", path, mk[i]);
    }
    const char **names = malloc((n ? n : 1) * sizeof *names);
    if (!names) return icl_fail(ICL_ERR_NOMEM, "st: write '%s': out of memory", path);
    for (size_t i = 0; i < n; i++) names[i] = t[i].name;
    icl_status st = ICL_OK;
    for (size_t i = 0; i < n && !st; i++) {
        const st_tensor *x = &t[i];
        uint64_t ne = 0;
        if (!x->name) st = icl_fail(ICL_ERR_ARG, "st: write '%s': tensor %zu has no name", path, i);
        else if (!json_utf8_valid(x->name, strlen(x->name)))
            st = icl_fail(ICL_ERR_ARG, "st: write '%s': tensor name \"%.80s\" is not valid UTF-8", path, x->name);
        else if (!strcmp(x->name, "__metadata__"))
            st = icl_fail(ICL_ERR_ARG, "st: write '%s': \"__metadata__\" is reserved, not a tensor name", path);
        else if (x->ndim < 0 || x->ndim > ST_MAX_DIMS)
            st = icl_fail(ICL_ERR_ARG, "st: write '%s': tensor '%.80s' has ndim %d (0..%d)", path, x->name, x->ndim,
                          ST_MAX_DIMS);
        else {
            for (int d = 0; d < x->ndim && !st; d++)
                if (x->shape[d] < 0)
                    st = icl_fail(ICL_ERR_ARG, "st: write '%s': tensor '%.80s' has shape[%d] = %lld < 0", path,
                                  x->name, d, (long long)x->shape[d]);
            if (!st && (!shape_numel(x->shape, x->ndim, &ne) || ne > SIZE_MAX / 8))
                st = icl_fail(ICL_ERR_ARG, "st: write '%s': tensor '%.80s' is too large", path, x->name);
            if (!st && ne && !x->data)
                st = icl_fail(ICL_ERR_ARG, "st: write '%s': tensor '%.80s' has NULL data", path, x->name);
        }
    }
    int oom = 0;
    const char *dup = st ? NULL : find_duplicate(names, n, &oom);
    free(names);
    if (!st && dup) st = icl_fail(ICL_ERR_ARG, "st: write '%s': tensor name '%.80s' appears twice", path, dup);
    if (!st && !oom && (dup = find_duplicate(mk, n_meta, &oom)))
        st = icl_fail(ICL_ERR_ARG, "st: write '%s': metadata key \"%.80s\" appears twice", path, dup);
    if (!st && oom) st = icl_fail(ICL_ERR_NOMEM, "st: write '%s': out of memory", path);
    if (st) return st;

    /* {"__metadata__":{"k":"v",...},"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...} */
    uint64_t off = 0;
    sb_printf(b, "{");
    if (n_meta) {
        sb_printf(b, "\"__metadata__\":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i) sb_printf(b, ",");
            sb_string(b, mk[i]);
            sb_printf(b, ":");
            sb_string(b, mv[i]);
        }
        sb_printf(b, "}");
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t ne = 0;
        shape_numel(t[i].shape, t[i].ndim, &ne);
        if (n_meta || i) sb_printf(b, ",");
        sb_string(b, t[i].name);
        sb_printf(b, ":{\"dtype\":\"F32\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) sb_printf(b, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        if (off > UINT64_MAX / 2 - ne * 4)
            return icl_fail(ICL_ERR_ARG, "st: write '%s': tensors too large in total", path);
        sb_printf(b, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)off, (unsigned long long)(off + ne * 4));
        off += ne * 4;
    }
    sb_printf(b, "}");
    while (b->n % 8) sb_printf(b, " "); /* pad with spaces to 8 bytes, as Python's writer does */
    if (b->oom) return icl_fail(ICL_ERR_NOMEM, "st: write '%s': out of memory building the header", path);
    if (b->n > ST_MAX_HEADER)
        return icl_fail(ICL_ERR_ARG, "st: write '%s': header of %zu bytes exceeds the %llu-byte limit", path, b->n,
                        (unsigned long long)ST_MAX_HEADER);
    return ICL_OK;
}

/* Remove "<path>.tmp.<pid>" files left in path's folder by saves whose
 * process is gone (killed mid-save). A live process's temp file (another
 * iclplay saving to the same path right now) is left alone. Best effort. */
static void remove_stale_temps(const char *path) {
    char *dir = strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    const char *d = ".", *base = path;
    if (slash) {
        base = path + (slash - dir) + 1;
        if (slash == dir) d = "/";
        else { *slash = 0; d = dir; }
    }
    size_t nb = strlen(base);
    DIR *dh = opendir(d);
    if (dh) {
        int dfd = dirfd(dh);
        struct dirent *e;
        while ((e = readdir(dh)) != NULL) {
            const char *nm = e->d_name;
            if (strncmp(nm, base, nb) || strncmp(nm + nb, ".tmp.", 5)) continue;
            const char *digits = nm + nb + 5;
            char *end = NULL;
            errno = 0;
            long pid = strtol(digits, &end, 10);
            if (errno || end == digits || *end || pid <= 0 || (pid_t)pid == getpid()) continue;
            if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive (or not ours to judge) */
            (void)unlinkat(dfd, nm, 0);
        }
        closedir(dh);
    }
    free(dir);
}

/* fsync the folder holding path so the rename itself is durable (best effort). */
static void sync_dir(const char *path) {
    char *dir = strdup(path);
    if (!dir) return;
    char *slash = strrchr(dir, '/');
    const char *d = ".";
    if (slash == dir) d = "/";
    else if (slash) { *slash = 0; d = dir; }
    int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

icl_status st_write(const char *path, const st_tensor *tensors, size_t n, const char *const *meta_keys,
                    const char *const *meta_vals, size_t n_meta) {
    if (!path || !*path) return icl_fail(ICL_ERR_ARG, "st: write: empty path");
    sbuf hb = {0};
    icl_status st = build_header(path, tensors, n, meta_keys, meta_vals, n_meta, &hb);
    if (st) {
        free(hb.p);
        return st;
    }
    size_t tlen = strlen(path) + 32;
    char *tmp = malloc(tlen);
    if (!tmp) {
        free(hb.p);
        return icl_fail(ICL_ERR_NOMEM, "st: write '%s': out of memory", path);
    }
    snprintf(tmp, tlen, "%s.tmp.%ld", path, (long)getpid());
    remove_stale_temps(path);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        int e = errno;
        st = icl_fail(ICL_ERR_IO, "st: cannot write '%s': creating temp file '%s' failed: %s", path, tmp, strerror(e));
        free(tmp);
        free(hb.p);
        return st;
    }
    FILE *fp = fdopen(fd, "wb");
    const char *step = "opening";
    int e = 0;
    if (!fp) {
        e = errno;
        close(fd);
    } else {
        unsigned char len8[8];
        uint64_t h = hb.n;
        for (int i = 0; i < 8; i++) len8[i] = (unsigned char)(h >> (8 * i));
        errno = 0;
        step = "writing";
        int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(hb.p, 1, hb.n, fp) == hb.n;
        for (size_t i = 0; i < n && ok; i++) {
            uint64_t ne = 0;
            shape_numel(tensors[i].shape, tensors[i].ndim, &ne);
            ok = write_f32_le(fp, tensors[i].data, (size_t)ne);
        }
        if (ok) { step = "flushing"; ok = fflush(fp) == 0; }
        if (ok) { step = "syncing"; ok = fsync(fileno(fp)) == 0; }
        if (!ok) {
            e = errno ? errno : EIO;
            fclose(fp);
        } else {
            step = "closing";
            errno = 0;
            if (fclose(fp) != 0) e = errno ? errno : EIO;
        }
        if (!e) {
            step = "renaming";
            if (rename(tmp, path) != 0) e = errno;
        }
    }
    if (e) {
        unlink(tmp); /* never leave a half-written temp file; path itself was not touched */
        st = icl_fail(ICL_ERR_IO, "st: cannot write '%s': %s temp file '%s' failed: %s", path, step, tmp, strerror(e));
    } else {
        sync_dir(path);
    }
    free(tmp);
    free(hb.p);
    return st;
}
