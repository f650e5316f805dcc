/*
 * test_safetensors.c - safetensors writer and validating reader (src/core/safetensors.c).
 *
 *  - write then read back bit-exactly (NaN payloads, -0, Inf, denormals, a 0-d
 *    scalar, a tensor with a 0 dimension, metadata with escapes and UTF-8);
 *  - the header is space-padded JSON of a multiple of 8 bytes, and for the
 *    inputs of upstream's own tests our file is byte-identical to what Python's
 *    safetensors writes (bytes copied from its test_simple.py, I32 -> F32);
 *  - hand-built files in the other shapes readers meet (unpadded header,
 *    pretty-printed JSON, unaligned data, gaps) are read;
 *  - dozens of corruptions are each rejected with ICL_ERR_FORMAT and a message
 *    naming the file and the tensor/field;
 *  - the atomic-write promises (missing folder, file-as-folder, /proc, full
 *    disk simulated with RLIMIT_FSIZE): ICL_ERR_IO naming the path, old file
 *    byte-identical, no temp file left behind;
 *  - 2000 random mutations of a valid file load or fail cleanly, never crash.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/json.h"
#include "core/safetensors.h"
#include "testlib.h"

static char dir[64]; /* scratch folder for this run */

/* ---- helpers ------------------------------------------------------------ */

static char *path_in(const char *name) {
    static char p[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
    return p[k];
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { *len = 0; return NULL; }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static void write_all(const char *path, const void *b, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(b, 1, len, f);
    fclose(f);
}

/* 8-byte little-endian length + header + data: a file the way any writer lays it out. */
static unsigned char *make_file(const char *header, size_t hlen, const void *data, size_t dlen, size_t *len) {
    *len = 8 + hlen + dlen;
    unsigned char *b = calloc(1, *len + 1);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(b + 8, header, hlen);
    if (dlen && data) memcpy(b + 8 + hlen, data, dlen);
    return b;
}

/* number of "*.tmp.*" files left in dir */
static int temp_files_left(void) {
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".tmp.")) n++;
    if (d) closedir(d);
    return n;
}

static void remove_tree(const char *p) {
    struct stat sb;
    if (lstat(p, &sb) != 0) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(p);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[512];
            snprintf(sub, sizeof sub, "%s/%s", p, e->d_name);
            remove_tree(sub);
        }
        if (d) closedir(d);
        rmdir(p);
    } else {
        unlink(p);
    }
}

static int bits_equal(const float *a, const float *b, size_t n) { return n == 0 || !memcmp(a, b, n * sizeof(float)); }

/* ---- round trip --------------------------------------------------------- */

static void test_roundtrip(void) {
    test_rng r = {test_seed()};
    float w[12], big[7 * 11 * 13], scalar = 3.25f;
    test_fill_normal(&r, w, 12, 1.0f);
    test_fill_normal(&r, big, 7 * 11 * 13, 100.0f);
    /* values whose bits must survive: NaN with a payload, -0, +-Inf, denormal, max */
    uint32_t nan_bits = 0x7fc12345u, neg_nan = 0xffa00001u;
    memcpy(&big[0], &nan_bits, 4);
    memcpy(&big[1], &neg_nan, 4);
    big[2] = -0.0f;
    big[3] = INFINITY;
    big[4] = -INFINITY;
    big[5] = 1e-45f;
    big[6] = 3.4028235e38f;
    float b5[5] = {1, 2, 3, 4, 5};
    st_tensor t[] = {
        {"layer.0.w", 2, {3, 4}, w},
        {"b", 1, {5}, b5},
        {"scalar", 0, {0}, &scalar},
        {"empty", 3, {2, 0, 3}, NULL},
        {"big", 3, {7, 11, 13}, big},
        {"\xc3\xa9t\xc3\xa9 \"quoted\"", 1, {1}, b5},
    };
    size_t nt = sizeof t / sizeof *t;
    const char *spec = "{\"arch\": \"mambaformer\", \"d_model\": 64,\n\t\"note\": \"back\\\\slash \xe2\x82\xac\"}";
    const char *keys[] = {"spec", "step", "rng", "empty"};
    const char *vals[] = {spec, "123456789012", "9f3a00ff:17", ""};
    const char *path = path_in("model.safetensors");
    icl_status st = st_write(path, t, nt, keys, vals, 4);
    CHECK(st == ICL_OK, "st_write: %s", icl_error());
    CHECK(temp_files_left() == 0, "temp file left after a successful write");

    st_file *f = NULL;
    st = st_open(path, &f);
    CHECK(st == ICL_OK && f, "st_open: %s", icl_error());
    if (!f) return;
    CHECK(st_count(f) == nt, "count %zu", st_count(f));
    for (size_t i = 0; i < nt; i++) {
        const st_entry *e = st_entry_at(f, i);
        CHECK(e && !strcmp(e->name, t[i].name), "entry %zu name %s (header order)", i, e ? e->name : "?");
        const st_entry *g = st_find(f, t[i].name);
        CHECK(g == e, "st_find(%s)", t[i].name);
        if (!g) continue;
        CHECK(g->dtype == ST_F32 && g->ndim == t[i].ndim, "%s ndim %d", t[i].name, g->ndim);
        size_t ne = 1;
        for (int d = 0; d < t[i].ndim; d++) {
            CHECK(g->shape[d] == t[i].shape[d], "%s shape[%d] %lld", t[i].name, d, (long long)g->shape[d]);
            ne *= (size_t)t[i].shape[d];
        }
        CHECK(g->nelem == ne, "%s nelem %zu want %zu", t[i].name, g->nelem, ne);
        CHECK(g->data != NULL && (uintptr_t)g->data % 4 == 0, "%s data pointer", t[i].name);
        CHECK(bits_equal(g->data, t[i].data, ne), "%s data not bit-identical", t[i].name);
    }
    CHECK(st_find(f, "nope") == NULL && st_entry_at(f, nt) == NULL, "missing lookups");
    CHECK(st_meta(f, "spec") && !strcmp(st_meta(f, "spec"), spec), "spec metadata: %s", st_meta(f, "spec"));
    CHECK(st_meta(f, "step") && !strcmp(st_meta(f, "step"), "123456789012"), "step metadata");
    CHECK(st_meta(f, "empty") && !strcmp(st_meta(f, "empty"), ""), "empty metadata value");
    CHECK(st_meta(f, "nope") == NULL, "missing metadata");
    const char *k = NULL, *v = NULL;
    CHECK(st_meta_count(f) == 4 && st_meta_at(f, 2, &k, &v) && !strcmp(k, "rng") && !strcmp(v, "9f3a00ff:17"),
          "metadata iteration");
    CHECK(!st_meta_at(f, 4, &k, &v), "metadata index out of range");
    st_close(f);

    /* no tensors and no metadata is a valid (if useless) file too */
    st = st_write(path_in("nothing.safetensors"), NULL, 0, NULL, NULL, 0);
    CHECK(st == ICL_OK, "empty write: %s", icl_error());
    f = NULL;
    st = st_open(path_in("nothing.safetensors"), &f);
    CHECK(st == ICL_OK && st_count(f) == 0 && st_meta_count(f) == 0, "empty read: %s", icl_error());
    st_close(f);
}

/* ---- header layout ------------------------------------------------------ */

static void test_header_layout(void) {
    float a[6] = {1, 2, 3, 4, 5, 6}, b[3] = {7, 8, 9};
    st_tensor t[] = {{"a", 2, {2, 3}, a}, {"bb", 1, {3}, b}};
    const char *keys[] = {"k"}, *vals[] = {"v"};
    const char *path = path_in("layout.safetensors");
    CHECK(st_write(path, t, 2, keys, vals, 1) == ICL_OK, "write: %s", icl_error());
    size_t len;
    unsigned char *buf = read_all(path, &len);
    if (!buf || len < 8) { CHECK(0, "could not read back %s", path); free(buf); return; }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | buf[i];
    CHECK(n % 8 == 0, "header length %llu is not a multiple of 8", (unsigned long long)n);
    CHECK(len == 8 + n + 36, "file size %zu, want %llu", len, (unsigned long long)(8 + n + 36));
    json_doc *d = NULL;
    CHECK(json_parse((const char *)buf + 8, (size_t)n, &d) == ICL_OK, "header is not JSON: %s", icl_error());
    const json_value *root = json_root(d);
    CHECK(root && root->type == JSON_OBJECT && json_len(root) == 3, "header object");
    CHECK(root && !strcmp(json_key_at(root, 0), "__metadata__"), "__metadata__ comes first");
    int64_t b0 = -1, e0 = -1, b1 = -1, e1 = -1;
    json_as_int64(json_at(json_get(json_get(root, "a"), "data_offsets"), 0), 0, 1000, &b0);
    json_as_int64(json_at(json_get(json_get(root, "a"), "data_offsets"), 1), 0, 1000, &e0);
    json_as_int64(json_at(json_get(json_get(root, "bb"), "data_offsets"), 0), 0, 1000, &b1);
    json_as_int64(json_at(json_get(json_get(root, "bb"), "data_offsets"), 1), 0, 1000, &e1);
    CHECK(b0 == 0 && e0 == 24 && b1 == 24 && e1 == 36, "offsets [%lld,%lld] [%lld,%lld]", (long long)b0,
          (long long)e0, (long long)b1, (long long)e1);
    /* the padding is spaces after the closing brace, nothing else */
    size_t close = 8 + (size_t)n;
    while (close > 8 && buf[close - 1] == ' ') close--;
    CHECK(buf[close - 1] == '}' && 8 + n - close < 8, "padding: %zu spaces after the JSON", (size_t)(8 + n - close));
    CHECK(!memcmp(buf + 8 + n, a, 24) && !memcmp(buf + 8 + n + 24, b, 12), "data section bytes");
    json_free(d);
    free(buf);
}

/* ---- Python's exact format ---------------------------------------------- */

static void test_python_format(void) {
    /* huggingface/safetensors bindings/python/tests/test_simple.py,
     * test_serialization_metadata, with dtype I32 -> F32 (same length) and data 1..4 */
    static const char py_meta[] = "`\0\0\0\0\0\0\0"
                                  "{\"__metadata__\":{\"framework\":\"pt\"},\"test1\":{\"dtype\":\"F32\",\"shape\":[2,2],"
                                  "\"data_offsets\":[0,16]}} "
                                  "\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40";
    /* ... test_serialization_forces_alignment: two tensors, 6 spaces of padding, 0x80 = 128 */
    static const char py_two[] = "\x80\0\0\0\0\0\0\0"
                                 "{\"test1\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
                                 "\"test2\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,32]}}      "
                                 "\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40"
                                 "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00";
    float v[4] = {1, 2, 3, 4}, z[4] = {0, 0, 0, 0};
    const char *keys[] = {"framework"}, *vals[] = {"pt"};
    st_tensor one[] = {{"test1", 2, {2, 2}, v}};
    st_tensor two[] = {{"test1", 2, {2, 2}, v}, {"test2", 2, {2, 2}, z}};

    struct { const char *name; const char *bytes; size_t len; const st_tensor *t; size_t n; size_t nm; } cases[] = {
        {"py_meta.safetensors", py_meta, sizeof py_meta - 1, one, 1, 1},
        {"py_two.safetensors", py_two, sizeof py_two - 1, two, 2, 0},
    };
    for (size_t c = 0; c < 2; c++) {
        /* our writer produces the same bytes ... */
        const char *path = path_in(cases[c].name);
        CHECK(st_write(path, cases[c].t, cases[c].n, keys, vals, cases[c].nm) == ICL_OK, "write %s", icl_error());
        size_t len;
        unsigned char *ours = read_all(path, &len);
        CHECK(ours && len == cases[c].len && !memcmp(ours, cases[c].bytes, len),
              "%s: our bytes differ from Python's (len %zu vs %zu): %.*s", cases[c].name, len, cases[c].len,
              (int)(len > 8 ? len - 8 : 0), ours ? (const char *)ours + 8 : "");
        free(ours);
        /* ... and the reader takes Python's bytes */
        st_file *f = NULL;
        CHECK(st_open_memory(cases[c].bytes, cases[c].len, "python", &f) == ICL_OK, "read %s: %s", cases[c].name,
              icl_error());
        const st_entry *e = st_find(f, "test1");
        CHECK(e && e->nelem == 4 && bits_equal(e->data, v, 4), "test1 values");
        if (cases[c].nm) CHECK(st_meta(f, "framework") && !strcmp(st_meta(f, "framework"), "pt"), "framework");
        st_close(f);
    }

    /* older writers did not pad (test_deserialization: '<' = 60 header bytes) */
    static const char py_unpadded[] = "<\0\0\0\0\0\0\0{\"test\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}"
                                      "\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40\x00\x00\x80\x40";
    st_file *f = NULL;
    CHECK(st_open_memory(py_unpadded, sizeof py_unpadded - 1, "unpadded", &f) == ICL_OK, "%s", icl_error());
    const st_entry *e = st_find(f, "test");
    CHECK(e && bits_equal(e->data, v, 4), "unpadded values");
    st_close(f);

    /* pretty-printed header, fields in another order, an unknown field, a
     * header length that leaves the data unaligned, a gap and trailing bytes */
    const char *pretty = "{\n  \"__metadata__\": {\"format\": \"pt\"},\n"
                         "  \"b\": {\"data_offsets\": [20, 28], \"shape\": [2], \"dtype\": \"F32\", \"extra\": [1, {}]},\n"
                         "  \"a\": {\"dtype\": \"F32\", \"shape\": [1, 4], \"data_offsets\": [0, 16]}\n}\n ";
    unsigned char data[36];
    float av[4] = {0.5f, -1.5f, 2.25f, 1e-3f}, bv[2] = {-7.0f, 8.5f};
    memset(data, 0xEE, sizeof data);
    memcpy(data, av, 16);
    memcpy(data + 20, bv, 8);
    size_t hl = strlen(pretty), len;
    CHECK((8 + hl) % 4 != 0, "test setup: header length %zu should misalign the data", hl);
    unsigned char *buf = make_file(pretty, hl, data, sizeof data, &len);
    f = NULL;
    CHECK(st_open_memory(buf, len, "pretty", &f) == ICL_OK, "pretty header: %s", icl_error());
    const st_entry *ea = st_find(f, "a"), *eb = st_find(f, "b");
    CHECK(ea && eb && ea->ndim == 2 && ea->shape[1] == 4 && eb->nelem == 2, "pretty entries");
    CHECK(ea && bits_equal(ea->data, av, 4) && (uintptr_t)ea->data % 4 == 0, "unaligned a copied and aligned");
    CHECK(eb && bits_equal(eb->data, bv, 2) && (uintptr_t)eb->data % 4 == 0, "unaligned b copied and aligned");
    CHECK(st_entry_at(f, 0) == eb, "header order kept (b first)");
    st_close(f);
    free(buf);
}

/* ---- corruption --------------------------------------------------------- */

static int n_rejected;

/* The bytes must be rejected with ICL_ERR_FORMAT, and the message must name
 * the file and contain each of the given fragments (tensor, field, reason). */
static void expect_reject(const char *what, const void *buf, size_t len, const char *frag1, const char *frag2) {
    st_file *f = (st_file *)1;
    icl_status st = st_open_memory(buf, len, "corrupt.safetensors", &f);
    const char *msg = icl_error();
    CHECK(st == ICL_ERR_FORMAT, "%s: status %d (%s), expected a format error", what, st, msg);
    CHECK(f == NULL, "%s: file not NULL on failure", what);
    CHECK(strstr(msg, "'corrupt.safetensors'") != NULL, "%s: message does not name the file: %s", what, msg);
    if (frag1) CHECK(strstr(msg, frag1) != NULL, "%s: '%s' not in: %s", what, frag1, msg);
    if (frag2) CHECK(strstr(msg, frag2) != NULL, "%s: '%s' not in: %s", what, frag2, msg);
    if (st == ICL_OK) st_close(f);
    printf("    %-34s %s\n", what, msg);
    n_rejected++;
}

static void reject_header(const char *what, const char *header, size_t dlen, const char *frag1, const char *frag2) {
    unsigned char data[256] = {0};
    size_t len;
    unsigned char *b = make_file(header, strlen(header), data, dlen, &len);
    expect_reject(what, b, len, frag1, frag2);
    free(b);
}

#define T_A "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}"

static void test_corruption(void) {
    unsigned char zeros[64] = {0};
    n_rejected = 0;
    expect_reject("empty file", zeros, 0, "0 bytes", NULL);
    expect_reject("4-byte file", zeros, 4, "4 bytes", NULL);
    {
        unsigned char b[40] = {0};
        b[0] = 0xE8; b[1] = 0x03; /* 1000 */
        expect_reject("header length > file", b, sizeof b, "header length 1000", "exceeds");
        memset(b, 0, 8);
        b[7] = 0x80; /* 2^63 */
        expect_reject("header length 2^63", b, sizeof b, "9223372036854775808", NULL);
        memset(b, 0xFF, 8);
        expect_reject("header length 2^64-1", b, sizeof b, "18446744073709551615", NULL);
        memset(b, 0, 8);
        expect_reject("header length 0", b, sizeof b, "empty", NULL);
    }
    {
        /* a header longer than the 100 MB cap, in a file big enough to hold it */
        size_t hl = (size_t)ST_MAX_HEADER + 8, len = 8 + hl;
        unsigned char *b = calloc(1, len);
        if (b) {
            for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
            expect_reject("header length > 100 MB", b, len, "limit", NULL);
            free(b);
        }
    }
    reject_header("header not JSON", "this is not json", 0, "header", "json:");
    reject_header("header JSON not an object", "[1,2,3]", 0, "not an object", NULL);
    reject_header("header trailing garbage", "{" T_A "} x", 16, "trailing", NULL);
    reject_header("tensor entry not an object", "{\"a\":5}", 0, "'a'", "not an object");
    reject_header("missing dtype", "{\"a\":{\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, "'a'", "\"dtype\"");
    reject_header("missing shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,16]}}", 16, "'a'", "\"shape\"");
    reject_header("missing data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2]}}", 16, "'a'", "\"data_offsets\"");
    reject_header("dtype not a string", "{\"a\":{\"dtype\":32,\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, "'a'",
                  "not a string");
    reject_header("shape negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,-2],\"data_offsets\":[0,16]}}", 16,
                  "'a'", "shape[1]");
    reject_header("shape non-integer", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5,2],\"data_offsets\":[0,20]}}", 20,
                  "'a'", "shape[0]");
    reject_header("shape entry a string", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\",2],\"data_offsets\":[0,16]}}",
                  16, "'a'", "shape[0]");
    reject_header("shape not an array", "{\"a\":{\"dtype\":\"F32\",\"shape\":4,\"data_offsets\":[0,16]}}", 16, "'a'",
                  "not an array");
    reject_header("shape rank 9", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
                  4, "'a'", "9 dimensions");
    reject_header("shape product overflows",
                  "{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,16]}}", 16, "'a'",
                  "too many elements");
    reject_header("offsets reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[16,0]}}", 16, "'a'",
                  "reversed");
    reject_header("offsets past end", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[64,80]}}", 16,
                  "'a'", "past the end");
    reject_header("offsets not an array", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":16}}", 16, "'a'",
                  "data_offsets");
    reject_header("offsets of arity 3", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,8,16]}}", 16,
                  "'a'", "[begin, end]");
    reject_header("offset negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[-16,0]}}", 16,
                  "'a'", "data_offsets[0]");
    reject_header("offset 1e30", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,1e30]}}", 16, "'a'",
                  "data_offsets[1]");
    reject_header("size does not match shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,12]}}",
                  16, "'a'", "needs 16");
    reject_header("size larger than shape", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,20]}}",
                  20, "'a'", "hold 20 bytes");
    reject_header("overlapping tensors",
                  "{" T_A ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[8,20]}}", 20, "overlap", "'b'");
    reject_header("empty tensor inside another",
                  "{" T_A ",\"e\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}", 16, "overlap", "'e'");
    reject_header("duplicate names", "{" T_A "," T_A "}", 16, "duplicate", "\"a\"");
    reject_header("unsupported dtype F16", "{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "'h'",
                  "unsupported dtype F16");
    reject_header("unsupported dtype BF16", "{" T_A ",\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[16,20]}}",
                  20, "'h'", "unsupported dtype BF16");
    reject_header("unsupported dtype F64", "{\"d\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16, "'d'",
                  "unsupported dtype F64");
    reject_header("unsupported dtype I64", "{\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", 16, "'i'",
                  "unsupported dtype I64");
    reject_header("unknown dtype", "{\"a\":{\"dtype\":\"float32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16, "'a'",
                  "unknown dtype");
    reject_header("metadata value not a string", "{\"__metadata__\":{\"step\":12}," T_A "}", 16, "__metadata__",
                  "\"step\"");
    reject_header("metadata not an object", "{\"__metadata__\":\"x\"," T_A "}", 16, "__metadata__", "not an object");
    reject_header("metadata value with NUL", "{\"__metadata__\":{\"k\":\"a\\u0000b\"}," T_A "}", 16, "__metadata__",
                  "NUL");
    reject_header("tensor name with NUL", "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}",
                  16, "NUL", NULL);
    reject_header("invalid UTF-8 in header", "{\"\xff\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", 16,
                  "UTF-8", NULL);
    {
        /* a NUL byte inside the header (not escaped) */
        const char h[] = "{\"a\":{\"dtype\":\"F32\",\0\"shape\":[2,2],\"data_offsets\":[0,16]}}";
        size_t len;
        unsigned char *b = make_file(h, sizeof h - 1, zeros, 16, &len);
        expect_reject("header with a NUL byte", b, len, "0x00", NULL);
        free(b);
        /* NUL padding instead of spaces is not JSON whitespace either */
        const char h2[] = "{" T_A "}\0\0\0";
        b = make_file(h2, sizeof h2 - 1, zeros, 16, &len);
        expect_reject("header padded with NULs", b, len, "trailing", NULL);
        free(b);
    }
    {
        /* a valid file with its data section cut short */
        float v[6] = {1, 2, 3, 4, 5, 6};
        st_tensor t[] = {{"a", 2, {2, 3}, v}};
        const char *path = path_in("trunc.safetensors");
        CHECK(st_write(path, t, 1, NULL, NULL, 0) == ICL_OK, "%s", icl_error());
        size_t len;
        unsigned char *b = read_all(path, &len);
        expect_reject("truncated data section", b, len - 4, "'a'", "past the end");
        expect_reject("truncated header", b, 20, "exceeds", NULL);
        /* and the same through st_open on disk */
        write_all(path, b, len - 4);
        st_file *f = NULL;
        icl_status st = st_open(path, &f);
        CHECK(st == ICL_ERR_FORMAT && strstr(icl_error(), path), "on-disk truncation: %d %s", st, icl_error());
        write_all(path, b, 0);
        st = st_open(path, &f);
        CHECK(st == ICL_ERR_FORMAT && strstr(icl_error(), "0 bytes"), "on-disk empty file: %s", icl_error());
        free(b);
    }
    /* missing file / a folder are I/O errors naming the path */
    st_file *f = NULL;
    icl_status st = st_open(path_in("does-not-exist.safetensors"), &f);
    CHECK(st == ICL_ERR_IO && strstr(icl_error(), "does-not-exist") && strstr(icl_error(), "No such file"),
          "missing file: %d %s", st, icl_error());
    st = st_open(dir, &f);
    CHECK(st == ICL_ERR_IO && f == NULL, "directory: %d %s", st, icl_error());
    printf("  %d kinds of corruption rejected\n", n_rejected);
    CHECK(n_rejected >= 15, "only %d corruption kinds", n_rejected);
}

/* ---- writer arguments --------------------------------------------------- */

static void test_write_arguments(void) {
    float v[4] = {0};
    const char *path = path_in("args.safetensors");
    struct { const char *what; st_tensor t[2]; size_t n; } cases[] = {
        {"duplicate names", {{"a", 1, {4}, v}, {"a", 1, {4}, v}}, 2},
        {"reserved name", {{"__metadata__", 1, {4}, v}}, 1},
        {"NULL name", {{NULL, 1, {4}, v}}, 1},
        {"ndim 9", {{"a", 9, {1}, v}}, 1},
        {"ndim -1", {{"a", -1, {1}, v}}, 1},
        {"negative dim", {{"a", 2, {2, -2}, v}}, 1},
        {"NULL data", {{"a", 1, {4}, NULL}}, 1},
        {"invalid UTF-8 name", {{"a\xff", 1, {4}, v}}, 1},
        {"huge shape", {{"a", 3, {INT64_MAX, INT64_MAX, 2}, v}}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        icl_status st = st_write(path, cases[i].t, cases[i].n, NULL, NULL, 0);
        CHECK(st == ICL_ERR_ARG && strstr(icl_error(), path), "%s: status %d (%s)", cases[i].what, st, icl_error());
        CHECK(access(path, F_OK) != 0, "%s: a file was created", cases[i].what);
    }
    st_tensor ok[] = {{"a", 1, {4}, v}};
    const char *k2[] = {"k", "k"}, *v2[] = {"1", "2"};
    CHECK(st_write(path, ok, 1, k2, v2, 2) == ICL_ERR_ARG, "duplicate metadata keys accepted");
    const char *k1[] = {"k"}, *vbad[] = {"\xc3"};
    CHECK(st_write(path, ok, 1, k1, vbad, 1) == ICL_ERR_ARG, "invalid UTF-8 metadata accepted");
    CHECK(st_write(path, ok, 1, k1, NULL, 1) == ICL_ERR_ARG, "NULL metadata values accepted");
    CHECK(temp_files_left() == 0, "temp files left");
}

/* ---- atomic writes ------------------------------------------------------ */

static void expect_io_error(const char *what, const char *path, const char *reason) {
    float v[3] = {1, 2, 3};
    st_tensor t[] = {{"v", 1, {3}, v}};
    icl_status st = st_write(path, t, 1, NULL, NULL, 0);
    const char *msg = icl_error();
    CHECK(st == ICL_ERR_IO, "%s: status %d (%s)", what, st, msg);
    CHECK(strstr(msg, path) != NULL, "%s: message does not name %s: %s", what, path, msg);
    if (reason) CHECK(strstr(msg, reason) != NULL, "%s: '%s' not in: %s", what, reason, msg);
    printf("    %-26s %s\n", what, msg);
}

static void test_write_failures(void) {
    expect_io_error("missing folder", path_in("no/such/folder/x.safetensors"), "No such file or directory");
    write_all(path_in("plainfile"), "x", 1);
    expect_io_error("file used as folder", path_in("plainfile/x.safetensors"), "Not a directory");
    expect_io_error("inside /proc", "/proc/icl_st_test.safetensors", NULL);
    if (geteuid() != 0) {
        const char *ro = path_in("readonly");
        mkdir(ro, 0755);
        chmod(ro, 0555);
        char p[300];
        snprintf(p, sizeof p, "%s/x.safetensors", ro);
        expect_io_error("read-only folder", p, "Permission denied");
        chmod(ro, 0755);
    } else {
        printf("    (running as root: chmod cannot make a folder read-only; the file-as-folder and /proc cases "
               "stand in)\n");
    }
    CHECK(temp_files_left() == 0, "temp files left after failures");
}

/* An old file at the target must survive every failed write byte for byte. */
static void test_failed_write_keeps_old_file(void) {
    const char *path = path_in("keep.safetensors");
    float old[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    st_tensor t_old[] = {{"old", 1, {8}, old}};
    const char *keys[] = {"step"}, *vals[] = {"41"};
    CHECK(st_write(path, t_old, 1, keys, vals, 1) == ICL_OK, "%s", icl_error());
    size_t len0;
    unsigned char *before = read_all(path, &len0);

    /* 1. a full disk, simulated with a file-size limit (writes fail with EFBIG) */
    size_t nbig = 1 << 16;
    float *big = calloc(nbig, sizeof(float));
    st_tensor t_big[] = {{"big", 1, {(int64_t)nbig}, big}};
    struct rlimit saved, lim;
    getrlimit(RLIMIT_FSIZE, &saved);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = saved;
    lim.rlim_cur = 4096;
    if (setrlimit(RLIMIT_FSIZE, &lim) == 0) {
        icl_status st = st_write(path, t_big, 1, keys, vals, 1);
        setrlimit(RLIMIT_FSIZE, &saved);
        CHECK(st == ICL_ERR_IO && strstr(icl_error(), path) && strstr(icl_error(), "too large"),
              "disk-full write: %d %s", st, icl_error());
        printf("    full disk: %s\n", icl_error());
    } else {
        printf("    (setrlimit failed; full-disk case skipped)\n");
    }
    signal(SIGXFSZ, old_handler);
    size_t len1;
    unsigned char *after = read_all(path, &len1);
    CHECK(after && len1 == len0 && !memcmp(before, after, len0), "old file changed by a failed write");
    CHECK(temp_files_left() == 0, "temp file left after a failed write");
    free(after);

    /* 2. bad arguments never touch the file */
    st_tensor t_bad[] = {{"x", 1, {4}, NULL}};
    CHECK(st_write(path, t_bad, 1, NULL, NULL, 0) == ICL_ERR_ARG, "NULL data accepted");
    after = read_all(path, &len1);
    CHECK(after && len1 == len0 && !memcmp(before, after, len0), "old file changed by a rejected write");
    free(after);

    /* 3. the target is a folder: rename fails, the folder and its content stay */
    const char *dpath = path_in("target-is-dir");
    mkdir(dpath, 0755);
    char inner[300];
    snprintf(inner, sizeof inner, "%s/inside", dpath);
    write_all(inner, "keep", 4);
    expect_io_error("target is a folder", dpath, NULL);
    size_t li;
    unsigned char *ib = read_all(inner, &li);
    CHECK(ib && li == 4 && !memcmp(ib, "keep", 4), "folder content changed");
    free(ib);
    CHECK(temp_files_left() == 0, "temp file left after a failed rename");

    /* 4. a stale temp file of ours from an earlier crash does not block the next write */
    char stale[300];
    snprintf(stale, sizeof stale, "%s.tmp.%ld", path, (long)getpid());
    write_all(stale, "garbage from a crash", 20);
    CHECK(st_write(path, t_big, 1, keys, vals, 1) == ICL_OK, "write over a stale temp: %s", icl_error());
    CHECK(access(stale, F_OK) != 0, "stale temp still there");
    st_file *f = NULL;
    CHECK(st_open(path, &f) == ICL_OK && st_find(f, "big") && st_find(f, "old") == NULL, "new content in place");
    st_close(f);
    free(before);
    free(big);
}

/* ---- fuzz --------------------------------------------------------------- */

static void test_fuzz_mutations(void) {
    test_rng r = {test_seed() ^ 0xABCDEF};
    float a[12], b[5], s = 2.0f;
    test_fill_normal(&r, a, 12, 1.0f);
    test_fill_normal(&r, b, 5, 1.0f);
    st_tensor t[] = {{"w", 2, {3, 4}, a}, {"b", 1, {5}, b}, {"s", 0, {0}, &s}, {"z", 2, {0, 7}, NULL}};
    const char *keys[] = {"spec", "step"}, *vals[] = {"{\"arch\":\"mamba\",\"n\":[1,2]}", "10"};
    const char *path = path_in("fuzz.safetensors");
    CHECK(st_write(path, t, 4, keys, vals, 2) == ICL_OK, "%s", icl_error());
    size_t len;
    unsigned char *orig = read_all(path, &len);
    if (!orig) return;
    unsigned char *m = malloc(len);
    size_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = (hl << 8) | orig[i];
    int loaded = 0, rejected = 0;
    static const char alphabet[] = "{}[]\",:0123456789-.e \\uF32I64";
    for (int it = 0; it < 2000; it++) {
        memcpy(m, orig, len);
        size_t n = len;
        int muts = 1 + (int)(test_rng_u64(&r) % 4);
        for (int k = 0; k < muts && n > 0; k++) {
            uint64_t u = test_rng_u64(&r);
            /* aim most mutations at the header, where the parsing happens */
            size_t at = (u >> 3) % 4 ? 8 + (u >> 16) % (hl ? hl : 1) : (u >> 16) % n;
            if (at >= n) at = n - 1;
            switch (u % 6) {
            case 0: m[at] ^= (unsigned char)(1u << ((u >> 40) % 8)); break;
            case 1: m[at] = (unsigned char)alphabet[(u >> 40) % (sizeof alphabet - 1)]; break;
            case 2: m[at] = (unsigned char)(u >> 40); break;
            case 3: n = (u >> 40) % n; break;                  /* truncate */
            case 4: m[(u >> 40) % 8 < n ? (u >> 40) % 8 : 0] ^= (unsigned char)(u >> 48); break; /* length field */
            default: memmove(m + at, m + at + 1, n - at - 1); n--; break;                      /* delete a byte */
            }
        }
        st_file *f = NULL;
        icl_status st = st_open_memory(m, n, "fuzz", &f);
        if (st == ICL_OK) {
            loaded++;
            /* touch every byte a loaded file claims to have (ASan would catch an overrun) */
            double sum = 0;
            for (size_t i = 0; i < st_count(f); i++) {
                const st_entry *e = st_entry_at(f, i);
                size_t ne = 1;
                for (int d = 0; d < e->ndim; d++) ne *= (size_t)e->shape[d];
                CHECK(ne == e->nelem, "nelem %zu vs shape product %zu", e->nelem, ne);
                for (size_t j = 0; j < e->nelem; j++) sum += e->data[j];
                CHECK(st_find(f, e->name) == e, "st_find after fuzz");
            }
            for (size_t i = 0; i < st_meta_count(f); i++) {
                const char *k = NULL, *v = NULL;
                st_meta_at(f, i, &k, &v);
                sum += (double)strlen(k) + (double)strlen(v);
            }
            (void)sum;
            st_close(f);
        } else {
            rejected++;
            CHECK(st == ICL_ERR_FORMAT && !strncmp(icl_error(), "st: 'fuzz': ", 12), "status %d message %s", st,
                  icl_error());
        }
        if (it % 200 == 0) { /* and through a real file now and then */
            write_all(path, m, n);
            f = NULL;
            icl_status st2 = st_open(path, &f);
            CHECK(st2 == st, "st_open %d vs st_open_memory %d", st2, st);
            st_close(f);
        }
    }
    printf("  2000 mutations: %d loaded, %d rejected\n", loaded, rejected);
    CHECK(rejected > 1000, "suspiciously few rejections (%d)", rejected);
    free(m);
    free(orig);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    snprintf(dir, sizeof dir, "/tmp/icl_st_test_XXXXXX");
    if (!mkdtemp(dir)) {
        printf("cannot create a scratch folder: %s\n", strerror(errno));
        return 1;
    }
    TEST_RUN(test_roundtrip);
    TEST_RUN(test_header_layout);
    TEST_RUN(test_python_format);
    TEST_RUN(test_corruption);
    TEST_RUN(test_write_arguments);
    TEST_RUN(test_write_failures);
    TEST_RUN(test_failed_write_keeps_old_file);
    TEST_RUN(test_fuzz_mutations);
    remove_tree(dir);
    return test_finish();
}
