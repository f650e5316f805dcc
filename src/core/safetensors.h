/*
 * safetensors.h - read and write safetensors files (F32 tensors + string metadata).
 *
 * The format (https://github.com/huggingface/safetensors):
 *     u64 little-endian N | N bytes of UTF-8 JSON header | data section
 * The header is one JSON object: each key is a tensor name mapping to
 *     {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}
 * (offsets in bytes, relative to the start of the data section, end exclusive),
 * plus an optional "__metadata__" object of string -> string. Data is raw,
 * row-major, little-endian.
 *
 * Writing (st_write) is atomic: the file appears complete or not at all, and a
 * failed write leaves any previous file at `path` untouched. Files we write
 * load in Python's safetensors (header padded with spaces to a multiple of 8,
 * tensors contiguous in the order given, "__metadata__" first).
 *
 * Reading (st_open) loads the whole file and validates every byte of the
 * header before returning: sizes, JSON, dtypes, shapes, offsets (in bounds,
 * sized to match the shape, no overlaps), metadata types. Any problem is an
 * ICL_ERR_FORMAT naming the file and the tensor or field. Only F32 tensors are
 * supported; a file holding F16/BF16/F64/I64/... tensors is rejected with an
 * "unsupported dtype" error naming the tensor. Gaps between tensors and bytes
 * after the last one are tolerated; unknown fields inside a tensor entry are
 * ignored (as Python's reader does).
 *
 * Not here: memory mapping, lazy loading, other dtypes, big-endian hosts
 * (safetensors.c refuses to compile on one rather than write wrong bytes).
 */
#ifndef ICL_SAFETENSORS_H
#define ICL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define ST_MAX_DIMS 8
#define ST_MAX_HEADER ((uint64_t)100000000) /* header bytes, as Python's reader limits it */

/* A tensor to write: shape[0..ndim) (ndim 0 = scalar, 1 element) and
 * prod(shape) floats at data (data may be NULL when a dimension is 0). */
typedef struct {
    const char *name; /* UTF-8, unique, not "__metadata__" */
    int ndim;         /* 0..ST_MAX_DIMS */
    int64_t shape[ST_MAX_DIMS];
    const float *data;
} st_tensor;

typedef enum { ST_F32 = 0 } st_dtype;

/* A tensor of an open file. All pointers stay valid until st_close. */
typedef struct {
    const char *name;
    st_dtype dtype;     /* always ST_F32 for now */
    int ndim;
    int64_t shape[ST_MAX_DIMS];
    size_t nelem;       /* prod(shape); 1 for a scalar, 0 if a dimension is 0 */
    const float *data;  /* nelem floats, float-aligned (copied if the file's offset was not) */
} st_entry;

/* An open, validated file (opaque). */
typedef struct st_file st_file;

/* Write n tensors and n_meta metadata pairs (keys and values UTF-8 strings)
 * to path, atomically: a temp file "<path>.tmp.<pid>" in the same directory
 * is written, flushed, fsynced and renamed over path, then the directory is
 * fsynced (best effort). Stale temp files of the same path left by processes
 * that died mid-save are removed first. Errors: ICL_ERR_ARG for bad tensors / names /
 * duplicate keys / invalid UTF-8, ICL_ERR_IO naming the path and the system
 * error (the temp file is removed and an old file at path is left as it was),
 * ICL_ERR_NOMEM. */
icl_status st_write(const char *path, const st_tensor *tensors, size_t n, const char *const *meta_keys,
                    const char *const *meta_vals, size_t n_meta);

/* Read and validate the file at path into [out] *file (NULL on failure). */
icl_status st_open(const char *path, st_file **file);
/* Same, from a copy of the len bytes at buf; `label` names it in messages. */
icl_status st_open_memory(const void *buf, size_t len, const char *label, st_file **file);
/* Free everything of an open file. NULL is fine. */
void st_close(st_file *file);

/* Number of tensors, and tensor i in header order (NULL if i is out of range). */
size_t st_count(const st_file *file);
const st_entry *st_entry_at(const st_file *file, size_t i);
/* The tensor called name, or NULL. */
const st_entry *st_find(const st_file *file, const char *name);

/* The metadata value of key, or NULL if absent. */
const char *st_meta(const st_file *file, const char *key);
/* Number of metadata pairs, and pair i in header order ([out] key/value; 0 if out of range). */
size_t st_meta_count(const st_file *file);
int st_meta_at(const st_file *file, size_t i, const char **key, const char **value);

#endif
