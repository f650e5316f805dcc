/*
 * json.c - strict JSON parser into an arena-backed tree (see json.h).
 *
 * A recursive-descent parser over a byte span. Recursion depth is bounded by
 * JSON_MAX_DEPTH, so a "[[[[..." bomb costs 64 frames, not a stack overflow.
 * Children of the array/object being parsed are collected on one growable
 * scratch stack (nested containers push above their parent's children) and
 * copied into the arena as one contiguous block when the container closes.
 * Strings are scanned once to find their end, then decoded into an arena block
 * of that size (unescaping only ever shrinks: "\u00e9" -> 2 bytes, a surrogate
 * pair of 12 characters -> 4 bytes).
 *
 * Not here: pretty printing, number formatting, editing the tree.
 */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* newlocale, uselocale (POSIX 2008) */
#endif
#include "json.h"

#include <errno.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------ */
/* arena: a list of chunks, each handing out 16-byte aligned blocks          */

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;   /* bytes of data[] */
    max_align_t data[]; /* max_align_t so every block can hold any type */
} arena_chunk;

#define ARENA_ALIGN (sizeof(max_align_t))
#define ARENA_CHUNK ((size_t)64 << 10)

struct json_doc {
    json_value root;
    arena_chunk *chunks; /* newest first */
};

static void *arena_alloc(json_doc *d, size_t size) {
    if (size == 0) size = 1;
    if (size > SIZE_MAX - ARENA_ALIGN) return NULL;
    size = (size + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    arena_chunk *c = d->chunks;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        c = malloc(sizeof(arena_chunk) + cap);
        if (!c) return NULL;
        c->used = 0;
        c->cap = cap;
        c->next = d->chunks;
        d->chunks = c;
    }
    void *p = (char *)c->data + c->used;
    c->used += size;
    return p;
}

void json_free(json_doc *d) {
    if (!d) return;
    arena_chunk *c = d->chunks;
    while (c) {
        arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(d);
}

const json_value *json_root(const json_doc *d) { return d ? &d->root : NULL; }

/* ------------------------------------------------------------------------ */
/* UTF-8                                                                     */

/* Length of the well-formed UTF-8 sequence at s[0..n), or 0 if it is not one
 * (bad lead byte, bad continuation, truncated, overlong, surrogate, > 10FFFF). */
static size_t utf8_seq(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    uint32_t cp;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[k] & 0x3F);
    }
    if (len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) return 0;
    if (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) return 0;
    return len;
}

int json_utf8_valid(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t k = utf8_seq(u + i, len - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

static size_t utf8_put(unsigned char *o, uint32_t cp) {
    if (cp < 0x80) { o[0] = (unsigned char)cp; return 1; }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

/* ------------------------------------------------------------------------ */
/* parser state and errors                                                   */

typedef struct {
    const unsigned char *s;
    size_t n, pos;
    int depth;
    json_doc *doc;
    json_member *stack; /* scratch for children of open containers */
    size_t sp, cap;
    locale_t cloc;      /* "C" numeric locale for strtod, made on first use */
} parser;

static icl_status perr(size_t at, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static icl_status perr(size_t at, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return icl_fail(ICL_ERR_FORMAT, "json: %s at byte %zu", what, at);
}

static icl_status oom(void) { return icl_fail(ICL_ERR_NOMEM, "json: out of memory"); }

/* A printable rendering of byte c for messages: 'x' or 0xNN. */
static const char *show(unsigned c, char buf[8]) {
    if (c > 0x20 && c < 0x7F) snprintf(buf, 8, "'%c'", (char)c);
    else snprintf(buf, 8, "0x%02X", c & 0xFF);
    return buf;
}

static void skip_ws(parser *p) {
    while (p->pos < p->n) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static icl_status push(parser *p, const json_member *m) {
    if (p->sp == p->cap) {
        size_t cap = p->cap ? 2 * p->cap : 64;
        json_member *s = realloc(p->stack, cap * sizeof *s);
        if (!s) return oom();
        p->stack = s;
        p->cap = cap;
    }
    p->stack[p->sp++] = *m;
    return ICL_OK;
}

static icl_status parse_value(parser *p, json_value *out);

/* ------------------------------------------------------------------------ */
/* strings                                                                   */

static int hex4(const unsigned char *s, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return 0;
    }
    *out = v;
    return 1;
}

/* p->pos is at the opening quote; on success it is just past the closing one. */
static icl_status parse_string(parser *p, const char **out, size_t *out_len) {
    const unsigned char *s = p->s;
    size_t open = p->pos, i = open + 1, end;
    char cb[8];
    /* pass 1: find the closing quote, reject raw control characters */
    for (;;) {
        if (i >= p->n) return perr(open, "unterminated string starting");
        unsigned c = s[i];
        if (c == '"') { end = i; break; }
        if (c < 0x20) return perr(i, "control character %s in string", show(c, cb));
        i += (c == '\\') ? 2 : 1;
    }
    unsigned char *o = arena_alloc(p->doc, end - open);
    if (!o) return oom();
    size_t k = 0;
    /* pass 2: unescape and validate UTF-8 */
    for (i = open + 1; i < end;) {
        unsigned c = s[i];
        if (c != '\\') {
            size_t q = utf8_seq(s + i, end - i);
            if (!q) return perr(i, "invalid UTF-8 byte %s in string", show(c, cb));
            memcpy(o + k, s + i, q);
            k += q;
            i += q;
            continue;
        }
        unsigned e = s[i + 1]; /* exists: pass 1 stepped over it */
        switch (e) {
        case '"': o[k++] = '"'; break;
        case '\\': o[k++] = '\\'; break;
        case '/': o[k++] = '/'; break;
        case 'b': o[k++] = '\b'; break;
        case 'f': o[k++] = '\f'; break;
        case 'n': o[k++] = '\n'; break;
        case 'r': o[k++] = '\r'; break;
        case 't': o[k++] = '\t'; break;
        case 'u': {
            uint32_t cp, lo;
            if (end - i < 6 || !hex4(s + i + 2, &cp)) return perr(i, "bad \\u escape (need 4 hex digits)");
            if (cp >= 0xDC00 && cp <= 0xDFFF) return perr(i, "lone low surrogate \\u%04X", (unsigned)cp);
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                if (end - i < 12 || s[i + 6] != '\\' || s[i + 7] != 'u' || !hex4(s + i + 8, &lo) ||
                    lo < 0xDC00 || lo > 0xDFFF)
                    return perr(i, "lone high surrogate \\u%04X (not followed by \\uDC00-\\uDFFF)", (unsigned)cp);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            k += utf8_put(o + k, cp);
            i += 6;
            continue;
        }
        default: return perr(i, "bad escape '\\%s'", show(e, cb));
        }
        i += 2;
    }
    o[k] = 0;
    *out = (const char *)o;
    *out_len = k;
    p->pos = end + 1;
    return ICL_OK;
}

/* ------------------------------------------------------------------------ */
/* numbers and literals                                                      */

static int is_digit(unsigned c) { return c >= '0' && c <= '9'; }

static icl_status parse_number(parser *p, json_value *v) {
    const unsigned char *s = p->s;
    size_t start = p->pos, i = start, n = p->n;
    int frac = 0;
    if (i < n && s[i] == '-') i++;
    if (i < n && s[i] == '0') {
        i++;
        if (i < n && is_digit(s[i])) return perr(start, "leading zero in number");
    } else if (i < n && is_digit(s[i])) {
        while (i < n && is_digit(s[i])) i++;
    } else {
        return perr(i, "expected a digit in number");
    }
    if (i < n && s[i] == '.') {
        i++;
        frac = 1;
        if (!(i < n && is_digit(s[i]))) return perr(i, "expected a digit after '.'");
        while (i < n && is_digit(s[i])) i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-')) i++;
        if (!(i < n && is_digit(s[i]))) return perr(i, "expected a digit in exponent");
        while (i < n && is_digit(s[i])) i++;
    }
    char *raw = arena_alloc(p->doc, i - start + 1);
    if (!raw) return oom();
    memcpy(raw, s + start, i - start);
    raw[i - start] = 0;
    /* strtod honours LC_NUMERIC's decimal point; parse '.' in the "C" locale. */
    locale_t old = (locale_t)0;
    if (frac) {
        if (!p->cloc) p->cloc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
        if (p->cloc) old = uselocale(p->cloc);
    }
    errno = 0;
    double d = strtod(raw, NULL);
    int range = (errno == ERANGE);
    if (old) uselocale(old);
    if (range && isinf(d)) return perr(start, "number %s out of double range", raw);
    v->type = JSON_NUMBER;
    v->number = d;
    v->raw = raw;
    p->pos = i;
    return ICL_OK;
}

static icl_status parse_literal(parser *p, json_value *v) {
    static const char *const words[3] = {"true", "false", "null"};
    for (int w = 0; w < 3; w++) {
        size_t L = strlen(words[w]);
        if (p->n - p->pos >= L && !memcmp(p->s + p->pos, words[w], L)) {
            v->type = (w == 2) ? JSON_NULL : JSON_BOOL;
            v->boolean = (w == 0);
            p->pos += L;
            return ICL_OK;
        }
    }
    return perr(p->pos, "invalid literal (expected true, false or null)");
}

/* ------------------------------------------------------------------------ */
/* containers                                                                */

static int key_cmp(const void *a, const void *b) {
    const json_member *x = *(const json_member *const *)a, *y = *(const json_member *const *)b;
    size_t m = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, m);
    if (c) return c;
    if (x->key_len != y->key_len) return x->key_len < y->key_len ? -1 : 1;
    return (x < y) ? -1 : (x > y); /* ties in document order */
}

static int same_key(const json_member *a, const json_member *b) {
    return a->key_len == b->key_len && !memcmp(a->key, b->key, a->key_len);
}

/* The first (in document order) member whose key repeats an earlier one. */
static icl_status check_duplicates(const json_member *m, size_t count) {
    const json_member *dup = NULL;
    if (count <= 16) {
        for (size_t i = 1; i < count && !dup; i++)
            for (size_t j = 0; j < i; j++)
                if (same_key(&m[i], &m[j])) { dup = &m[i]; break; }
    } else {
        const json_member **idx = malloc(count * sizeof *idx);
        if (!idx) return oom();
        for (size_t i = 0; i < count; i++) idx[i] = &m[i];
        qsort(idx, count, sizeof *idx, key_cmp);
        for (size_t i = 1; i < count; i++)
            if (same_key(idx[i], idx[i - 1]) && (!dup || idx[i] < dup)) dup = idx[i];
        free(idx);
    }
    if (dup) return perr(dup->key_offset, "duplicate key \"%.80s\" in object", dup->key);
    return ICL_OK;
}

/* Move the children above `base` on the scratch stack into the arena. */
static icl_status close_container(parser *p, json_value *v, size_t base) {
    size_t count = p->sp - base;
    v->count = count;
    if (count == 0) return ICL_OK;
    if (v->type == JSON_OBJECT) {
        icl_status st = check_duplicates(p->stack + base, count);
        if (st) return st;
        json_member *m = arena_alloc(p->doc, count * sizeof *m);
        if (!m) return oom();
        memcpy(m, p->stack + base, count * sizeof *m);
        v->members = m;
    } else {
        json_value *items = arena_alloc(p->doc, count * sizeof *items);
        if (!items) return oom();
        for (size_t i = 0; i < count; i++) items[i] = p->stack[base + i].value;
        v->items = items;
    }
    p->sp = base;
    return ICL_OK;
}

static icl_status parse_container(parser *p, json_value *v) {
    int is_obj = (p->s[p->pos] == '{');
    char close = is_obj ? '}' : ']';
    char cb[8];
    if (++p->depth > JSON_MAX_DEPTH) return perr(p->pos, "nesting deeper than %d levels", JSON_MAX_DEPTH);
    v->type = is_obj ? JSON_OBJECT : JSON_ARRAY;
    size_t base = p->sp;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
        p->depth--;
        return close_container(p, v, base);
    }
    for (;;) {
        json_member m;
        memset(&m, 0, sizeof m);
        icl_status st;
        if (is_obj) {
            skip_ws(p);
            if (p->pos >= p->n) return perr(p->pos, "unexpected end of input, expected a string key");
            if (p->s[p->pos] != '"') {
                if (p->s[p->pos] == '}') return perr(p->pos, "trailing comma before '}'");
                return perr(p->pos, "expected a string key, found %s", show(p->s[p->pos], cb));
            }
            m.key_offset = p->pos;
            if ((st = parse_string(p, &m.key, &m.key_len))) return st;
            skip_ws(p);
            if (p->pos >= p->n || p->s[p->pos] != ':') return perr(p->pos, "expected ':' after object key");
            p->pos++;
        } else {
            skip_ws(p);
            if (p->pos < p->n && p->s[p->pos] == ']') return perr(p->pos, "trailing comma before ']'");
        }
        if ((st = parse_value(p, &m.value))) return st;
        if ((st = push(p, &m))) return st;
        skip_ws(p);
        if (p->pos >= p->n) return perr(p->pos, "unexpected end of input, expected ',' or '%c'", close);
        unsigned char c = p->s[p->pos++];
        if (c == (unsigned char)close) break;
        if (c != ',') return perr(p->pos - 1, "expected ',' or '%c', found %s", close, show(c, cb));
    }
    p->depth--;
    return close_container(p, v, base);
}

static icl_status parse_value(parser *p, json_value *v) {
    char cb[8];
    memset(v, 0, sizeof *v);
    skip_ws(p);
    if (p->pos >= p->n) return perr(p->pos, "unexpected end of input, expected a value");
    v->offset = p->pos;
    unsigned c = p->s[p->pos];
    if (c == '{' || c == '[') return parse_container(p, v);
    if (c == '"') {
        v->type = JSON_STRING;
        return parse_string(p, &v->str, &v->len);
    }
    if (c == '-' || is_digit(c)) return parse_number(p, v);
    if (c == 't' || c == 'f' || c == 'n') return parse_literal(p, v);
    return perr(p->pos, "unexpected character %s, expected a value", show(c, cb));
}

icl_status json_parse(const char *text, size_t len, json_doc **out) {
    *out = NULL;
    if (len > JSON_MAX_BYTES)
        return perr(JSON_MAX_BYTES, "input of %zu bytes exceeds the limit of %zu bytes", len, JSON_MAX_BYTES);
    if (len && !text) return icl_fail(ICL_ERR_ARG, "json: NULL text");
    json_doc *d = calloc(1, sizeof *d);
    if (!d) return oom();
    parser p;
    memset(&p, 0, sizeof p);
    p.s = (const unsigned char *)text;
    p.n = len;
    p.doc = d;
    icl_status st;
    skip_ws(&p);
    if (p.pos == p.n) st = perr(p.pos, "empty input (no value)");
    else st = parse_value(&p, &d->root);
    if (!st) {
        skip_ws(&p);
        char cb[8];
        if (p.pos < p.n) st = perr(p.pos, "trailing characters after the value, starting with %s", show(p.s[p.pos], cb));
    }
    free(p.stack);
    if (p.cloc) freelocale(p.cloc);
    if (st) {
        json_free(d);
        return st;
    }
    *out = d;
    return ICL_OK;
}

/* ------------------------------------------------------------------------ */
/* lookups                                                                   */

const char *json_type_name(json_type t) {
    switch (t) {
    case JSON_NULL: return "null";
    case JSON_BOOL: return "bool";
    case JSON_NUMBER: return "number";
    case JSON_STRING: return "string";
    case JSON_ARRAY: return "array";
    case JSON_OBJECT: return "object";
    }
    return "?";
}

const json_value *json_get(const json_value *obj, const char *key) {
    if (!obj || obj->type != JSON_OBJECT || !key) return NULL;
    size_t L = strlen(key);
    for (size_t i = 0; i < obj->count; i++) {
        const json_member *m = &obj->members[i];
        if (m->key_len == L && !memcmp(m->key, key, L)) return &m->value;
    }
    return NULL;
}

size_t json_len(const json_value *v) {
    return (v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT)) ? v->count : 0;
}

const json_value *json_at(const json_value *v, size_t i) {
    if (!v || i >= json_len(v)) return NULL;
    return v->type == JSON_ARRAY ? &v->items[i] : &v->members[i].value;
}

const char *json_key_at(const json_value *obj, size_t i) {
    if (!obj || obj->type != JSON_OBJECT || i >= obj->count) return NULL;
    return obj->members[i].key;
}

const char *json_as_string(const json_value *v) { return (v && v->type == JSON_STRING) ? v->str : NULL; }

icl_status json_as_int64(const json_value *v, int64_t lo, int64_t hi, int64_t *out) {
    if (!v) return icl_fail(ICL_ERR_FORMAT, "json: expected an integer, found nothing");
    if (v->type != JSON_NUMBER)
        return perr(v->offset, "expected an integer in [%lld, %lld], found %s", (long long)lo, (long long)hi,
                    json_type_name(v->type));
    const char *r = v->raw;
    if (strpbrk(r, ".eE"))
        return perr(v->offset, "expected an integer in [%lld, %lld], found %s (no fraction or exponent allowed)",
                    (long long)lo, (long long)hi, r);
    int neg = (*r == '-');
    if (neg) r++;
    /* magnitude limit: 2^63 for negatives, 2^63 - 1 otherwise */
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, mag = 0;
    for (; *r; r++) {
        uint64_t d = (uint64_t)(*r - '0');
        if (mag > (limit - d) / 10)
            return perr(v->offset, "integer %s does not fit in 64 bits (expected [%lld, %lld])", v->raw,
                        (long long)lo, (long long)hi);
        mag = mag * 10 + d;
    }
    int64_t x = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    if (x < lo || x > hi)
        return perr(v->offset, "expected an integer in [%lld, %lld] (got %s)", (long long)lo, (long long)hi, v->raw);
    *out = x;
    return ICL_OK;
}

icl_status json_as_double(const json_value *v, double *out) {
    if (!v) return icl_fail(ICL_ERR_FORMAT, "json: expected a number, found nothing");
    if (v->type != JSON_NUMBER) return perr(v->offset, "expected a number, found %s", json_type_name(v->type));
    *out = v->number;
    return ICL_OK;
}

/* ------------------------------------------------------------------------ */
/* writing                                                                   */

typedef struct {
    char *buf;
    size_t cap, n;
} wbuf;

static void wput(wbuf *w, const char *s, size_t len) {
    for (size_t i = 0; i < len; i++, w->n++)
        if (w->n + 1 < w->cap) w->buf[w->n] = s[i];
}

size_t json_write_string(char *buf, size_t cap, const char *s, size_t len) {
    wbuf w = {buf, cap, 0};
    const unsigned char *u = (const unsigned char *)s;
    wput(&w, "\"", 1);
    for (size_t i = 0; i < len;) {
        unsigned c = u[i];
        char esc[8];
        if (c == '"') { wput(&w, "\\\"", 2); i++; }
        else if (c == '\\') { wput(&w, "\\\\", 2); i++; }
        else if (c == '\n') { wput(&w, "\\n", 2); i++; }
        else if (c == '\r') { wput(&w, "\\r", 2); i++; }
        else if (c == '\t') { wput(&w, "\\t", 2); i++; }
        else if (c < 0x20 || c == 0x7F) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            wput(&w, esc, 6);
            i++;
        } else {
            size_t q = utf8_seq(u + i, len - i);
            if (q) { wput(&w, (const char *)u + i, q); i += q; }
            else { wput(&w, "\xEF\xBF\xBD", 3); i++; } /* U+FFFD for an invalid byte */
        }
    }
    wput(&w, "\"", 1);
    if (cap) buf[w.n < cap ? w.n : cap - 1] = 0;
    return w.n;
}
