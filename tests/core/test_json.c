/*
 * test_json.c - the strict JSON parser and string writer (src/core/json.c).
 *
 * Valid documents must parse to the expected tree and re-serialise to the same
 * bytes (a compact serialiser lives here, writing numbers by their raw text);
 * malformed inputs must each fail with ICL_ERR_FORMAT and a message naming the
 * exact byte offset we expect; the writer's output must parse back to the
 * original string for tricky and random inputs.
 */
#include <locale.h>

#include "core/json.h"
#include "testlib.h"

/* ---- a compact serialiser for round trips ------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} buf_t;

static void bput(buf_t *b, const char *s, size_t len) {
    if (b->n + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + len + 1) cap *= 2;
        b->p = realloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->n, s, len);
    b->n += len;
    b->p[b->n] = 0;
}
static void bstr(buf_t *b, const char *s, size_t len) {
    size_t need = json_write_string(NULL, 0, s, len);
    char *tmp = malloc(need + 1);
    json_write_string(tmp, need + 1, s, len);
    bput(b, tmp, need);
    free(tmp);
}
static void serialise(buf_t *b, const json_value *v) {
    switch (v->type) {
    case JSON_NULL: bput(b, "null", 4); break;
    case JSON_BOOL: v->boolean ? bput(b, "true", 4) : bput(b, "false", 5); break;
    case JSON_NUMBER: bput(b, v->raw, strlen(v->raw)); break;
    case JSON_STRING: bstr(b, v->str, v->len); break;
    case JSON_ARRAY:
        bput(b, "[", 1);
        for (size_t i = 0; i < v->count; i++) {
            if (i) bput(b, ",", 1);
            serialise(b, &v->items[i]);
        }
        bput(b, "]", 1);
        break;
    case JSON_OBJECT:
        bput(b, "{", 1);
        for (size_t i = 0; i < v->count; i++) {
            if (i) bput(b, ",", 1);
            bstr(b, v->members[i].key, v->members[i].key_len);
            bput(b, ":", 1);
            serialise(b, &v->members[i].value);
        }
        bput(b, "}", 1);
        break;
    }
}

static json_doc *parse_ok(const char *text) {
    json_doc *d = NULL;
    icl_status st = json_parse(text, strlen(text), &d);
    CHECK(st == ICL_OK && d, "parse of %.60s failed: %s", text, icl_error());
    return d;
}

/* ---- valid documents ---------------------------------------------------- */

static void test_nested_document(void) {
    const char *text = " {\"a\": [1, 2.5, -3e2, true, false, null, \"x\"],\n"
                       "  \"b\": {\"c\": {\"d\": []}, \"e\": {}},\t\"z\": \"last\", \"m\": -0} \r\n";
    json_doc *d = parse_ok(text);
    if (!d) return;
    const json_value *r = json_root(d);
    CHECK(r->type == JSON_OBJECT && r->count == 4, "root type %d count %zu", r->type, r->count);
    /* key order is document order, not sorted */
    CHECK(!strcmp(json_key_at(r, 0), "a") && !strcmp(json_key_at(r, 1), "b") && !strcmp(json_key_at(r, 2), "z") &&
              !strcmp(json_key_at(r, 3), "m"),
          "key order");
    const json_value *a = json_get(r, "a");
    CHECK(a && a->type == JSON_ARRAY && json_len(a) == 7, "a");
    CHECK(json_at(a, 0)->number == 1.0 && json_at(a, 1)->number == 2.5 && json_at(a, 2)->number == -300.0, "numbers");
    CHECK(json_at(a, 3)->type == JSON_BOOL && json_at(a, 3)->boolean == 1, "true");
    CHECK(json_at(a, 4)->type == JSON_BOOL && json_at(a, 4)->boolean == 0, "false");
    CHECK(json_at(a, 5)->type == JSON_NULL, "null");
    CHECK(json_as_string(json_at(a, 6)) && !strcmp(json_as_string(json_at(a, 6)), "x"), "string");
    CHECK(json_at(a, 7) == NULL, "out of range index must give NULL");
    CHECK(json_at(a, 1)->offset == 11, "offset of 2.5 is %zu, expected 11", json_at(a, 1)->offset);
    const json_value *dd = json_get(json_get(json_get(r, "b"), "c"), "d");
    CHECK(dd && dd->type == JSON_ARRAY && dd->count == 0, "nested empty array");
    CHECK(json_len(json_get(json_get(r, "b"), "e")) == 0, "empty object");
    CHECK(json_get(r, "missing") == NULL && json_get(a, "a") == NULL && json_get(NULL, "a") == NULL, "lookups");
    CHECK(json_key_at(a, 0) == NULL && json_key_at(r, 4) == NULL, "json_key_at out of range");
    CHECK(json_as_string(a) == NULL, "as_string of an array");

    buf_t b = {0};
    serialise(&b, r);
    const char *canon = "{\"a\":[1,2.5,-3e2,true,false,null,\"x\"],\"b\":{\"c\":{\"d\":[]},\"e\":{}},\"z\":\"last\",\"m\":-0}";
    CHECK(b.p && !strcmp(b.p, canon), "serialised %s", b.p);
    json_free(d);
    /* the canonical form re-parses to itself */
    d = parse_ok(canon);
    buf_t b2 = {0};
    if (d) serialise(&b2, json_root(d));
    CHECK(b2.p && !strcmp(b2.p, canon), "second round trip %s", b2.p);
    json_free(d);
    free(b.p);
    free(b2.p);

    /* scalars at the top level are documents too */
    const char *scalars[] = {"0", "\"s\"", "true", "null", " 7 "};
    for (size_t i = 0; i < sizeof scalars / sizeof *scalars; i++) json_free(parse_ok(scalars[i]));
}

static void test_escapes_and_unicode(void) {
    /* every escape, BMP \u, a surrogate pair, raw UTF-8, and \u0000 */
    const char *text = "\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t \\u00e9\\u20AC \\ud83d\\ude00 raw:\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 "
                       "nul:\\u0000.\"";
    const char expect[] = "q\" b\\ s/ \b\f\n\r\t \xc3\xa9\xe2\x82\xac \xf0\x9f\x98\x80 raw:\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80 "
                          "nul:\0.";
    json_doc *d = parse_ok(text);
    if (!d) return;
    const json_value *v = json_root(d);
    CHECK(v->type == JSON_STRING, "type");
    CHECK(v->len == sizeof expect - 1, "len %zu, expected %zu", v->len, sizeof expect - 1);
    CHECK(v->len == sizeof expect - 1 && !memcmp(v->str, expect, v->len), "unescaped bytes differ");
    CHECK(v->str[v->len] == 0, "NUL-terminated");
    json_free(d);

    /* keys are unescaped too, and lookups use the unescaped key */
    d = parse_ok("{\"\\u0041b\\n\": 1, \"\xe2\x82\xac\": 2}");
    if (d) {
        CHECK(json_get(json_root(d), "Ab\n") && json_get(json_root(d), "Ab\n")->number == 1, "escaped key");
        CHECK(json_get(json_root(d), "\xe2\x82\xac") != NULL, "UTF-8 key");
    }
    json_free(d);
}

static void test_numbers(void) {
    struct { const char *text; double value; } cases[] = {
        {"0", 0.0}, {"-0", -0.0}, {"1.5", 1.5}, {"-2.5e-3", -2.5e-3}, {"1E+2", 100.0}, {"1e2", 100.0},
        {"6.02214076e23", 6.02214076e23}, {"0.1", 0.1}, {"123456789012", 123456789012.0},
        {"1e-400", 0.0} /* underflow to zero is a representable approximation, accepted */,
        {"1.7976931348623157e308", 1.7976931348623157e308}, {"4.9e-324", 4.9e-324},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_doc *d = parse_ok(cases[i].text);
        if (!d) continue;
        const json_value *v = json_root(d);
        CHECK(v->type == JSON_NUMBER && v->number == cases[i].value && signbit(v->number) == signbit(cases[i].value),
              "%s parsed to %.17g", cases[i].text, v->number);
        CHECK(!strcmp(v->raw, cases[i].text), "raw text %s", v->raw);
        json_free(d);
    }
    /* int64 read exactly from the raw text, beyond double's 2^53 */
    struct { const char *text; int64_t value; } ints[] = {
        {"9223372036854775807", INT64_MAX}, {"-9223372036854775808", INT64_MIN},
        {"9007199254740993", 9007199254740993LL}, {"-0", 0}, {"42", 42},
    };
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++) {
        json_doc *d = parse_ok(ints[i].text);
        if (!d) continue;
        int64_t x = -1;
        icl_status st = json_as_int64(json_root(d), INT64_MIN, INT64_MAX, &x);
        CHECK(st == ICL_OK && x == ints[i].value, "%s -> %lld (%s)", ints[i].text, (long long)x, icl_error());
        json_free(d);
    }
    /* integers that do not fit, or are not integers, or are out of the range asked for */
    struct { const char *text; int64_t lo, hi; } bad[] = {
        {"9223372036854775808", INT64_MIN, INT64_MAX}, {"-9223372036854775809", INT64_MIN, INT64_MAX},
        {"99999999999999999999999", 0, INT64_MAX}, {"1.0", 0, 10}, {"1e3", 0, 10000}, {"11", 0, 10},
        {"-1", 0, 10}, {"\"5\"", 0, 10}, {"null", 0, 10},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_doc *d = parse_ok(bad[i].text);
        if (!d) continue;
        int64_t x = 77;
        icl_status st = json_as_int64(json_root(d), bad[i].lo, bad[i].hi, &x);
        CHECK(st == ICL_ERR_FORMAT && x == 77 && strstr(icl_error(), "at byte 0"),
              "%s accepted as int64 in range (st %d, msg %s)", bad[i].text, st, icl_error());
        json_free(d);
    }
    double dv = 0;
    json_doc *d = parse_ok("[2.25, \"x\"]");
    if (d) {
        CHECK(json_as_double(json_at(json_root(d), 0), &dv) == ICL_OK && dv == 2.25, "as_double");
        CHECK(json_as_double(json_at(json_root(d), 1), &dv) == ICL_ERR_FORMAT, "as_double of a string");
    }
    json_free(d);

    /* a locale whose decimal point is ',' must not change how "0.5" parses */
    const char *locs[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "de_DE", NULL};
    const char *got = NULL;
    for (int i = 0; locs[i] && !got; i++) got = setlocale(LC_NUMERIC, locs[i]);
    if (got) {
        d = parse_ok("0.5");
        CHECK(d && json_root(d)->number == 0.5, "in locale %s, 0.5 parsed as %g", got, d ? json_root(d)->number : -1);
        json_free(d);
        setlocale(LC_NUMERIC, "C");
    } else {
        printf("  (no comma-decimal locale installed; locale check skipped)\n");
    }
}

/* ---- malformed inputs --------------------------------------------------- */

typedef struct {
    const char *what;
    const char *text;
    size_t len;    /* 0: strlen(text) */
    long offset;   /* expected "at byte N"; -1: any */
} bad_case;

static void check_bad(const char *what, const char *text, size_t len, long offset) {
    json_doc *d = (json_doc *)1;
    icl_status st = json_parse(text, len, &d);
    const char *msg = icl_error();
    char want[64];
    snprintf(want, sizeof want, "at byte %ld", offset);
    CHECK(st == ICL_ERR_FORMAT, "%s: accepted (status %d)", what, st);
    CHECK(d == NULL, "%s: doc not NULL on failure", what);
    CHECK(!strncmp(msg, "json: ", 6) && strstr(msg, "at byte "), "%s: message without offset: %s", what, msg);
    if (offset >= 0) CHECK(strstr(msg, want) != NULL, "%s: expected '%s' in: %s", what, want, msg);
    if (st == ICL_OK) json_free(d);
}

static void test_malformed(void) {
    static const bad_case cases[] = {
        {"empty input", "", 0, 0},
        {"whitespace only", "  \n\t ", 0, 5},
        {"trailing comma in array", "[1,2,]", 0, 5},
        {"trailing comma in object", "{\"a\":1,}", 0, 7},
        {"unterminated string", "\"abc", 0, 0},
        {"unterminated string in array", "[\"abc]", 0, 1},
        {"bad escape", "\"a\\x\"", 0, 2},
        {"short \\u escape", "\"\\u12\"", 0, 1},
        {"lone high surrogate", "\"\\ud800x\"", 0, 1},
        {"high surrogate + non-low", "\"\\ud800\\u0041\"", 0, 1},
        {"lone low surrogate", "\"ab\\udc00\"", 0, 3},
        {"leading zero", "[01]", 0, 1},
        {"leading zero negative", "-012", 0, 0},
        {"NaN literal", "NaN", 0, 0},
        {"Infinity literal", "[Infinity]", 0, 1},
        {"negative Infinity", "-Infinity", 0, 1},
        {"trailing garbage", "{} x", 0, 3},
        {"two values", "1 2", 0, 2},
        {"raw newline in string", "\"a\nb\"", 0, 2},
        {"raw tab in string", "[\"\t\"]", 0, 2},
        {"missing colon", "{\"a\" 1}", 0, 5},
        {"unquoted key", "{a:1}", 0, 1},
        {"single quotes", "['a']", 0, 1},
        {"missing comma", "[1 2]", 0, 3},
        {"unclosed array", "[1,2", 0, 4},
        {"unclosed object", "{\"a\":1", 0, 6},
        {"dot without digits", "1.", 0, 2},
        {"dot first", ".5", 0, 0},
        {"plus sign", "+1", 0, 0},
        {"bare minus", "-", 0, 1},
        {"exponent without digits", "1e+", 0, 3},
        {"hex number", "0x10", 0, 1},
        {"truncated literal", "tru", 0, 0},
        {"capitalised literal", "True", 0, 0},
        {"comment", "[1] // c", 0, 4},
        {"number out of range", "[1e400]", 0, 1},
        {"duplicate key", "{\"k\":1,\"j\":2,\"k\":3}", 0, 13},
        {"invalid UTF-8 (overlong)", "\"\xc0\xaf\"", 0, 1},
        {"invalid UTF-8 (encoded surrogate)", "\"a\xed\xa0\x80\"", 0, 2},
        {"invalid UTF-8 (truncated)", "\"\xe2\x82\"", 0, 1},
        {"invalid UTF-8 (> U+10FFFF)", "\"\xf4\x90\x80\x80\"", 0, 1},
        {"NUL byte outside strings", "[1,\0 2]", 7, 3},
        {"NUL byte inside a string", "\"a\0b\"", 5, 2},
        {"byte order mark", "\xef\xbb\xbf{}", 0, 0},
        {"colon in array", "[1:2]", 0, 2},
    };
    size_t n = sizeof cases / sizeof *cases;
    for (size_t i = 0; i < n; i++)
        check_bad(cases[i].what, cases[i].text, cases[i].len ? cases[i].len : strlen(cases[i].text), cases[i].offset);
    printf("  %zu malformed inputs checked\n", n);
}

static void test_depth_limit(void) {
    /* a 10000-deep bomb fails at the first bracket past the limit */
    size_t n = 10000;
    char *s = malloc(n);
    memset(s, '[', n);
    check_bad("depth bomb [", s, n, JSON_MAX_DEPTH);
    memset(s, '{', n);
    check_bad("depth bomb {", s, n, -1);
    /* exactly JSON_MAX_DEPTH levels is fine, one more is not */
    char ok[2 * JSON_MAX_DEPTH + 3];
    for (int k = 0; k < JSON_MAX_DEPTH; k++) { ok[k] = '['; ok[2 * JSON_MAX_DEPTH - 1 - k] = ']'; }
    json_doc *d = NULL;
    icl_status st = json_parse(ok, 2 * JSON_MAX_DEPTH, &d);
    CHECK(st == ICL_OK, "depth %d rejected: %s", JSON_MAX_DEPTH, icl_error());
    json_free(d);
    for (int k = 0; k <= JSON_MAX_DEPTH; k++) { ok[k] = '['; ok[2 * JSON_MAX_DEPTH + 1 - k] = ']'; }
    check_bad("depth 65", ok, 2 * JSON_MAX_DEPTH + 2, JSON_MAX_DEPTH);
    /* mixed nesting with objects counts too */
    buf_t b = {0};
    for (int k = 0; k < 40; k++) bput(&b, "{\"a\":[", 6);
    for (int k = 0; k < 40; k++) bput(&b, "]}", 2);
    check_bad("mixed depth 80", b.p, b.n, -1);
    free(b.p);
    free(s);
}

static void test_size_limit(void) {
    /* the limit is checked before the text is touched, so a NULL-free fake length is safe to test with a real buffer */
    size_t n = JSON_MAX_BYTES + 1;
    char *s = malloc(n);
    if (!s) { printf("  (could not allocate %zu bytes; size limit check skipped)\n", n); return; }
    memset(s, ' ', n);
    s[0] = '0';
    json_doc *d = NULL;
    icl_status st = json_parse(s, n, &d);
    CHECK(st == ICL_ERR_FORMAT && strstr(icl_error(), "exceeds the limit"), "oversize input: %d %s", st, icl_error());
    free(s);
}

/* ---- big inputs --------------------------------------------------------- */

static void test_large_containers(void) {
    /* 3000 distinct keys (duplicate check by sorting) and a 100000-element array */
    buf_t b = {0};
    char tmp[64];
    bput(&b, "{", 1);
    for (int i = 0; i < 3000; i++) {
        int k = snprintf(tmp, sizeof tmp, "%s\"key%d\":[%d]", i ? "," : "", (i * 7919) % 3000, i);
        bput(&b, tmp, (size_t)k);
    }
    bput(&b, "}", 1);
    json_doc *d = NULL;
    icl_status st = json_parse(b.p, b.n, &d);
    CHECK(st == ICL_OK && json_len(json_root(d)) == 3000, "3000 keys: %s", icl_error());
    if (!st) {
        const json_value *v = json_get(json_root(d), "key1234");
        int64_t x = -1;
        /* key1234 was written at i with i*7919 % 3000 == 1234 */
        int want = -1;
        for (int i = 0; i < 3000; i++)
            if ((i * 7919) % 3000 == 1234) want = i;
        CHECK(v && json_as_int64(json_at(v, 0), 0, 3000, &x) == ICL_OK && x == want, "key1234 -> %lld want %d",
              (long long)x, want);
    }
    json_free(d);
    /* the same with one duplicate near the end: the sort-based check must find it */
    b.n = b.n - 1;
    bput(&b, ",\"key17\":0}", 11);
    size_t dup_at = b.n - 11 + 1;
    snprintf(tmp, sizeof tmp, "%zu", dup_at);
    check_bad("duplicate among 3001 keys", b.p, b.n, (long)dup_at);
    CHECK(strstr(icl_error(), "key17") != NULL, "message names the key: %s", icl_error());
    free(b.p);

    buf_t a = {0};
    bput(&a, "[", 1);
    for (int i = 0; i < 100000; i++) {
        int k = snprintf(tmp, sizeof tmp, "%s%d", i ? "," : "", i);
        bput(&a, tmp, (size_t)k);
    }
    bput(&a, "]", 1);
    d = NULL;
    st = json_parse(a.p, a.n, &d);
    CHECK(st == ICL_OK && json_len(json_root(d)) == 100000 && json_at(json_root(d), 99999)->number == 99999.0,
          "100000-element array: %s", icl_error());
    json_free(d);
    free(a.p);
}

/* ---- writer ------------------------------------------------------------- */

static void roundtrip_string(const char *s, size_t len, int expect_exact) {
    size_t need = json_write_string(NULL, 0, s, len);
    char *out = malloc(need + 1);
    size_t got = json_write_string(out, need + 1, s, len);
    CHECK(got == need && strlen(out) == need, "length %zu vs %zu", got, need);
    json_doc *d = NULL;
    icl_status st = json_parse(out, need, &d);
    CHECK(st == ICL_OK, "writer output does not parse: %s (%s)", out, icl_error());
    if (!st) {
        const json_value *v = json_root(d);
        CHECK(v->type == JSON_STRING, "not a string");
        if (expect_exact) CHECK(v->len == len && !memcmp(v->str, s, len), "round trip differs for %s", out);
        else CHECK(json_utf8_valid(v->str, v->len), "replacement output is not valid UTF-8");
    }
    json_free(d);
    free(out);
}

static void test_writer(void) {
    const char *tricky[] = {"", "plain", "quote\" backslash\\ slash/", "ctl \x01\x02\x1f\x7f tab\t nl\n cr\r",
                            "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "{\"json\": [1, 2]}"};
    for (size_t i = 0; i < sizeof tricky / sizeof *tricky; i++) roundtrip_string(tricky[i], strlen(tricky[i]), 1);
    roundtrip_string("a\0b", 3, 1); /* embedded NUL survives as \u0000 */

    /* exact escaping of a known string */
    char out[64];
    size_t k = json_write_string(out, sizeof out, "a\"b\\c\n\x01", 7);
    CHECK(!strcmp(out, "\"a\\\"b\\\\c\\n\\u0001\"") && k == strlen(out), "escaped as %s", out);
    /* snprintf-like truncation: result is the full length, buffer NUL-terminated */
    char small[5];
    k = json_write_string(small, sizeof small, "abcdef", 6);
    CHECK(k == 8 && !strcmp(small, "\"abc"), "truncated to %s, k=%zu", small, k);
    /* invalid UTF-8 becomes U+FFFD, and the output is valid JSON */
    k = json_write_string(out, sizeof out, "x\xff" "y\xc3", 4);
    CHECK(!strcmp(out, "\"x\xef\xbf\xbdy\xef\xbf\xbd\""), "replacement: %s", out);
    CHECK(json_utf8_valid("\xe2\x82\xac", 3) && !json_utf8_valid("\xe2\x82", 2) && !json_utf8_valid("\xed\xa0\x80", 3),
          "json_utf8_valid");

    /* random byte strings: valid UTF-8 ones round-trip exactly, others still give valid JSON */
    test_rng r = {test_seed() ^ 0x5157};
    int exact = 0;
    for (int it = 0; it < 2000; it++) {
        char s[40];
        size_t len = test_rng_u64(&r) % sizeof s;
        for (size_t i = 0; i < len; i++) {
            uint64_t u = test_rng_u64(&r);
            /* mostly ASCII incl. controls, sometimes high bytes */
            s[i] = (char)((u & 3) ? (u >> 8) % 128 : (u >> 8) % 256);
        }
        int valid = json_utf8_valid(s, len);
        exact += valid;
        roundtrip_string(s, len, valid);
    }
    printf("  2000 random strings, %d valid UTF-8 round-tripped exactly\n", exact);
}

/* ---- random mutations never crash --------------------------------------- */

static void test_fuzz(void) {
    const char *base = "{\"a\":[1,-2.5e3,true,null,{\"b\":\"\\u00e9\\ud83d\\ude00x\"}],\"c\":\"\xc3\xa9\",\"d\":{}}";
    size_t n = strlen(base);
    test_rng r = {test_seed() ^ 0xF022};
    int ok = 0, bad = 0;
    char s[128];
    static const char alphabet[] = "{}[]\",:\\u0123456789eE.-+ tfnl\x80\xc3\xed";
    for (int it = 0; it < 20000; it++) {
        memcpy(s, base, n);
        size_t len = n;
        int muts = 1 + (int)(test_rng_u64(&r) % 3);
        for (int m = 0; m < muts; m++) {
            uint64_t u = test_rng_u64(&r);
            size_t at = (u >> 8) % len;
            switch (u % 4) {
            case 0: s[at] = alphabet[(u >> 32) % (sizeof alphabet - 1)]; break;
            case 1: s[at] ^= (char)(1u << ((u >> 32) % 8)); break;
            case 2: len = at; break;
            default: memmove(s + at, s + at + 1, len - at - 1); len--; break;
            }
            if (len == 0) break;
        }
        json_doc *d = NULL;
        icl_status st = json_parse(s, len, &d);
        if (st == ICL_OK) {
            ok++;
            buf_t b = {0};
            serialise(&b, json_root(d));
            json_doc *d2 = NULL;
            CHECK(json_parse(b.p, b.n, &d2) == ICL_OK, "re-serialised mutation does not parse: %s", b.p);
            json_free(d2);
            free(b.p);
        } else {
            bad++;
            CHECK(st == ICL_ERR_FORMAT && strstr(icl_error(), "at byte"), "status %d message %s", st, icl_error());
        }
        json_free(d);
    }
    printf("  20000 mutations: %d parsed, %d rejected with an offset\n", ok, bad);
}

int main(int argc, char **argv) {
    test_init(argc, argv);
    TEST_RUN(test_nested_document);
    TEST_RUN(test_escapes_and_unicode);
    TEST_RUN(test_numbers);
    TEST_RUN(test_malformed);
    TEST_RUN(test_depth_limit);
    TEST_RUN(test_size_limit);
    TEST_RUN(test_large_containers);
    TEST_RUN(test_writer);
    TEST_RUN(test_fuzz);
    return test_finish();
}
