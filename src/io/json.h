/* src/io/json.h: a small, strict JSON (RFC 8259) parser producing a read-only DOM.
 *
 * Used by the safetensors reader for its header and by tests to read the golden manifests:
 *
 *     sdc_json *root;
 *     sdc_error err;
 *     if (sdc_json_load_file(SDC_SHARED_DIR "/testdata/tiny/manifest.json", &root, &err)) ...
 *     const sdc_json *shape = sdc_json_path(root, "tensors", "tokenizer.ids", "shape", NULL);
 *     int64_t dims[8];
 *     size_t nd;
 *     if (sdc_json_ints(shape, dims, 8, &nd)) ...            // dims = {30, 77}, nd = 2
 *     const char *what = sdc_json_string(sdc_json_get(root, "profile"));   // NULL if absent
 *     sdc_json_free(root);
 *
 * Every accessor accepts NULL and returns NULL / 0 for a missing or wrong-typed value, so lookups
 * chain without checks in between.
 *
 * Strictness: exactly one value with optional whitespace (space, tab, CR, LF) around it; no
 * comments, trailing commas, NaN/Infinity (unless opts.allow_nonfinite), leading zeros, byte-order
 * mark or control characters in strings; strings must be valid UTF-8 (no overlong forms, no encoded
 * surrogates) and \u escapes must pair surrogates correctly. \u0000 is accepted: such a string
 * keeps its true length in str.len and its C string stops early. Duplicate object keys are kept, in
 * document order (sdc_json_get returns the first); callers that care check for them.
 *
 * Safety: the parser is iterative (an explicit stack, no recursion), refuses nesting deeper than
 * the depth limit, and makes one allocation whose size is computed by a first, allocation-free
 * pass over the input and checked against the memory limit before it is made. That size is at
 * most 17 bytes per input byte (2 bytes of "0," make one 32-byte node) and usually 2-4.
 *
 * Errors: SDC_E_FORMAT for malformed input, SDC_E_LIMIT for a limit exceeded, SDC_E_NOMEM, and
 * SDC_E_IO from sdc_json_load_file. sdc_json_parse's message is "JSON line L, column C: problem"
 * (callers prefix the file name); sdc_json_load_file's starts with the path.
 */
#ifndef SDC_IO_JSON_H
#define SDC_IO_JSON_H

#include "core/error.h"

#include <stddef.h>
#include <stdint.h>

#define SDC_JSON_MAX_DEPTH 128                   /* hard cap on sdc_json_opts.max_depth */
#define SDC_JSON_MAX_FILE (256u * 1024u * 1024u) /* sdc_json_load_file refuses larger files */

typedef enum sdc_json_type {
    SDC_JSON_NULL = 0,
    SDC_JSON_BOOL,
    SDC_JSON_NUMBER,
    SDC_JSON_STRING,
    SDC_JSON_ARRAY,
    SDC_JSON_OBJECT,
} sdc_json_type;

/* One value. All fields are read-only; everything lives in the root's single allocation. */
typedef struct sdc_json {
    uint8_t type;    /* sdc_json_type */
    uint8_t boolean; /* SDC_JSON_BOOL: 0 or 1 */
    uint8_t is_int;  /* SDC_JSON_NUMBER: written without fraction/exponent and fits int64 */
    uint8_t reserved_;
    uint32_t key_len; /* object members: length of key in bytes */
    const char *key;  /* object members: the key, NUL-terminated; NULL for array elements */
    union {
        struct {
            double d;  /* always set (nearest double) */
            int64_t i; /* exact value when is_int, else 0 */
        } num;
        struct {
            const char *s; /* NUL-terminated UTF-8 */
            size_t len;    /* bytes, excluding the terminator (may include \0 from \u0000) */
        } str;
        struct {
            const struct sdc_json *items; /* array elements or object members, in document order */
            size_t n;
        } list;
    } u;
} sdc_json;

typedef struct sdc_json_opts {
    int max_depth;       /* nesting of arrays/objects, 1..SDC_JSON_MAX_DEPTH */
    size_t max_memory;   /* bytes the DOM may take; 0 = no limit beyond the 17x bound above */
    int allow_nonfinite; /* accept NaN, Infinity and -Infinity as numbers (Python's json module
                            writes them; the golden manifests contain them) */
} sdc_json_opts;

/* Depth 64, no memory limit, strict numbers. */
sdc_json_opts sdc_json_opts_default(void);

/* Parses buf[0, len) (need not be NUL-terminated). *root is NULL on failure; free it with
 * sdc_json_free. The DOM copies what it needs: buf may be freed afterwards. */
sdc_status sdc_json_parse(const char *buf, size_t len, sdc_json **root, sdc_error *err);
sdc_status sdc_json_parse_ex(const char *buf, size_t len, const sdc_json_opts *opts,
                             sdc_json **root, sdc_error *err);

/* Reads and parses a whole file (at most SDC_JSON_MAX_FILE bytes) with the default options plus
 * allow_nonfinite, so that files written by Python's json.dump load. */
sdc_status sdc_json_load_file(const char *path, sdc_json **root, sdc_error *err);

/* Frees a root returned by the functions above (never an inner node). Accepts NULL. */
void sdc_json_free(sdc_json *root);

/* ---- accessors: all accept NULL ---- */

int sdc_json_is(const sdc_json *v, sdc_json_type t);
/* "null", "boolean", "number", "string", "array", "object"; for messages. */
const char *sdc_json_type_name(const sdc_json *v);
/* First member named key of an object; NULL if v is not an object or has no such member. */
const sdc_json *sdc_json_get(const sdc_json *v, const char *key);
/* Follows a NULL-terminated chain of object keys: sdc_json_path(root, "a", "b", NULL). */
const sdc_json *sdc_json_path(const sdc_json *v, ...);
/* Elements of an array or members of an object (member i's name is ->key); 0 / NULL otherwise. */
size_t sdc_json_len(const sdc_json *v);
const sdc_json *sdc_json_at(const sdc_json *v, size_t i);
/* The string, or NULL if v is not a string. */
const char *sdc_json_string(const sdc_json *v);
/* 1 and *out set if v is a number (any number for _number, an exact int64 for _int); else 0. */
int sdc_json_number(const sdc_json *v, double *out);
int sdc_json_int(const sdc_json *v, int64_t *out);
/* 1 if v is an array of at most cap exact integers (numbers), copied to out with *n set. */
int sdc_json_ints(const sdc_json *v, int64_t *out, size_t cap, size_t *n);
int sdc_json_doubles(const sdc_json *v, double *out, size_t cap, size_t *n);

/* ---- writing helpers (used by the safetensors writer) ---- */

/* 1 if s[0, len) is valid UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
int sdc_json_utf8_valid(const char *s, size_t len);
/* Writes s[0, len) as a quoted JSON string into dst (when not NULL) and returns the byte count
 * (no NUL is written). Escapes '"', '\\' and control characters; other bytes are copied. */
size_t sdc_json_escape(char *dst, const char *s, size_t len);

#endif
