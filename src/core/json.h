/*
 * json.h - a small, strict JSON (RFC 8259) parser into a read-only tree, plus
 * one writer helper that escapes a string.
 *
 * What it is: enough JSON for safetensors headers, metadata and JSONL logs.
 * The parser accepts exactly the RFC grammar: no comments, no trailing commas,
 * no NaN/Infinity, no leading zeros, no raw control characters in strings,
 * valid UTF-8 only, no lone surrogates, no duplicate keys in one object.
 * Nesting is limited to JSON_MAX_DEPTH and input to JSON_MAX_BYTES. Every
 * error is ICL_ERR_FORMAT with a message such as
 *     "json: expected ':' after object key at byte 123"
 * (byte offsets are 0-based into the input). Out of memory is ICL_ERR_NOMEM.
 *
 * What it is not: a DOM you can edit, a streaming parser, or a general writer.
 * The tree is immutable; every node, string and array of one parse lives in
 * one arena owned by the json_doc, freed by json_free(). No global state (the
 * number conversion uses a per-call "C" locale, so a program that called
 * setlocale() still reads "0.5" correctly).
 *
 * Numbers keep both their nearest double and their raw text, so integers up
 * to +-2^63 can be read exactly with json_as_int64 (doubles lose them above
 * 2^53). Objects keep their members in document order.
 */
#ifndef ICL_JSON_H
#define ICL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define JSON_MAX_DEPTH 64                  /* nested arrays/objects; 65 levels is an error */
#define JSON_MAX_BYTES ((size_t)256 << 20) /* longest input accepted (256 MiB) */

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type;

typedef struct json_value json_value;
typedef struct json_member json_member;

/* One node. Read the field(s) that belong to its type; the rest are zero. */
struct json_value {
    json_type type;
    size_t offset;         /* byte offset of the value's first character in the input */
    int boolean;           /* JSON_BOOL: 0 or 1 */
    double number;         /* JSON_NUMBER: nearest double (finite; out-of-range numbers are errors) */
    const char *raw;       /* JSON_NUMBER: the number's text as written, NUL-terminated */
    const char *str;       /* JSON_STRING: unescaped UTF-8, NUL-terminated */
    size_t len;            /* JSON_STRING: bytes in str (may be < strlen if it holds "\u0000") */
    size_t count;          /* JSON_ARRAY / JSON_OBJECT: number of elements / members */
    json_value *items;     /* JSON_ARRAY: count elements */
    json_member *members;  /* JSON_OBJECT: count members, in document order, keys unique */
};

struct json_member {
    const char *key;   /* unescaped UTF-8, NUL-terminated */
    size_t key_len;    /* bytes in key */
    size_t key_offset; /* byte offset of the key's opening quote */
    json_value value;
};

/* The owner of one parse: the root plus the arena everything lives in. */
typedef struct json_doc json_doc;

/* Parse `len` bytes of `text` (need not be NUL-terminated) into [out] *doc.
 * The whole input must be one value, optionally surrounded by whitespace.
 * On failure *doc is NULL and icl_error() says what and at which byte. */
icl_status json_parse(const char *text, size_t len, json_doc **doc);
/* The root value of a parsed document (never NULL for a doc json_parse made). */
const json_value *json_root(const json_doc *doc);
/* Free the document and every value, string and array in it. NULL is fine. */
void json_free(json_doc *doc);

/* ---- lookups: all accept NULL and wrong types and then return NULL / 0 ---- */

/* "null", "bool", "number", "string", "array", "object". */
const char *json_type_name(json_type t);
/* Member `key` of an object (exact byte match), or NULL if absent / not an object. */
const json_value *json_get(const json_value *obj, const char *key);
/* Elements of an array or members of an object; 0 for anything else. */
size_t json_len(const json_value *v);
/* Element i of an array, or the value of member i of an object; NULL if out of range. */
const json_value *json_at(const json_value *v, size_t i);
/* Key of member i of an object; NULL if out of range or not an object. */
const char *json_key_at(const json_value *obj, size_t i);
/* The string of a JSON_STRING, NULL otherwise. */
const char *json_as_string(const json_value *v);

/* An integer written without fraction or exponent ("12", "-3", not "12.0"
 * or "1e3"), read exactly from the raw text, into [out] *out, checked to lie
 * in [lo, hi]. ICL_ERR_FORMAT otherwise, e.g. "json: expected an integer in
 * [0, 8] at byte 40 (got 9)". */
icl_status json_as_int64(const json_value *v, int64_t lo, int64_t hi, int64_t *out);
/* Any number, as double, into [out] *out; ICL_ERR_FORMAT if not a number. */
icl_status json_as_double(const json_value *v, double *out);

/* ---- writing ---- */

/* Write s[0..len) as a quoted JSON string into [out] buf (capacity cap bytes,
 * always NUL-terminated when cap > 0) and return the length the full output
 * needs, excluding the NUL, like snprintf: if the result >= cap it was cut.
 * Escapes '"', '\\' and control characters; other UTF-8 is copied through.
 * Invalid UTF-8 bytes are replaced by U+FFFD so the output is always valid
 * JSON; check json_utf8_valid first if that substitution must not happen. */
size_t json_write_string(char *buf, size_t cap, const char *s, size_t len);
/* 1 if s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int json_utf8_valid(const char *s, size_t len);

#endif
