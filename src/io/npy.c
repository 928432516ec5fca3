/* src/io/npy.c: the NumPy .npy reader and writers declared in npy.h.
 *
 * Format (numpy/lib/format.py): the 6 magic bytes "\x93NUMPY", a major and a minor version byte,
 * a little-endian header length (u16 for 1.0, u32 for 2.0 and 3.0), then that many bytes of a
 * Python dict literal, e.g.
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }     ... spaces ... '\n'
 * and then the raw array data. Version 3.0 only changes the header encoding to UTF-8, which
 * matters to nothing we accept (every accepted value is ASCII).
 *
 * Reading trusts nothing: the header length is bounded (NPY_MAX_HEADER, numpy's own limit), the
 * dict is parsed by a small bounded scanner (numpy uses ast.literal_eval; we accept the literal
 * syntax numpy and other writers produce: either quote style, any key order, trailing commas,
 * Python 2 'L' suffixes), the element count is overflow-checked, and the data must hold every
 * byte the shape needs before anything is allocated, so a hostile header can neither crash nor
 * make us allocate more than the file's size allows. Data past the end of the array is ignored,
 * as np.load ignores it.
 *
 * Writing follows numpy's current writer byte for byte: version 1.0, keys sorted, repr(shape),
 * 21 - len(repr(shape[0])) spare spaces (GROWTH_AXIS_MAX_DIGITS, so the header can grow in place),
 * then padded with spaces and a '\n' so the data starts at a multiple of 64 bytes (ARRAY_ALIGN;
 * an already aligned header still gets 64 spaces, as in numpy's _wrap_header).
 */
#include "io/npy.h"

#include "core/dtype.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c assumes a little-endian host (the data is copied as is)"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LEN 6
#define NPY_MAX_HEADER 10000 /* numpy's _MAX_HEADER_SIZE: longer headers are refused */
#define NPY_ALIGN 64         /* numpy's ARRAY_ALIGN */
#define NPY_GROWTH_DIGITS 21 /* numpy's GROWTH_AXIS_MAX_DIGITS */
#define NPY_MAX_PREFIX 12    /* magic + version + u32 header length */

/* ---------------------------------------------------------------------------------------------- */
/* Dtypes                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

typedef enum npy_kind { K_F4, K_F2, K_F8, K_I8, K_I4, K_U1, K_B1, K_I1, K_COUNT } npy_kind;

static const struct {
    char code[3];     /* numpy kind + size: "f4" */
    const char *name; /* numpy's name, for messages */
    size_t size;
} kinds[K_COUNT] = {
    [K_F4] = {"f4", "float32", 4}, [K_F2] = {"f2", "float16", 2}, [K_F8] = {"f8", "float64", 8},
    [K_I8] = {"i8", "int64", 8},   [K_I4] = {"i4", "int32", 4},   [K_U1] = {"u1", "uint8", 1},
    [K_B1] = {"b1", "bool", 1},    [K_I1] = {"i1", "int8", 1},
};
_Static_assert(K_COUNT == 8, "update kinds[]");

/* Converts n elements of kind k (little-endian, possibly unaligned) to float32. */
static void convert_to_f32(float *dst, const unsigned char *src, npy_kind k, size_t n) {
    switch (k) {
    case K_F4: memcpy(dst, src, n * 4); break;
    case K_F2:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = sdc_f16_to_f32(h);
        }
        break;
    case K_F8:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    case K_I8:
        for (size_t i = 0; i < n; i++) {
            int64_t v;
            memcpy(&v, src + 8 * i, 8);
            dst[i] = (float)v;
        }
        break;
    case K_I4:
        for (size_t i = 0; i < n; i++) {
            int32_t v;
            memcpy(&v, src + 4 * i, 4);
            dst[i] = (float)v;
        }
        break;
    case K_U1:
        for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
        break;
    case K_B1: /* numpy treats any non-zero byte as True */
        for (size_t i = 0; i < n; i++) dst[i] = src[i] ? 1.0f : 0.0f;
        break;
    case K_I1:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int8_t)src[i];
        break;
    case K_COUNT: break;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Header parsing                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

typedef struct npy_header {
    size_t data_off; /* where the array data starts */
    npy_kind kind;
    int ndim;
    int64_t shape[SDC_NPY_MAX_DIMS];
    int64_t numel;
    size_t nbytes; /* numel * element size */
} npy_header;

typedef struct scanner {
    const char *p, *end;
    const char *label;
    sdc_error *err;
} scanner;

static void skip_ws(scanner *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static sdc_status bad_header(scanner *s, const char *what) {
    return sdc_fail(s->err, SDC_E_FORMAT, "%s: malformed .npy header: %s", s->label, what);
}

static sdc_status expect(scanner *s, char c, const char *what) {
    skip_ws(s);
    if (s->p >= s->end || *s->p != c) return bad_header(s, what);
    s->p++;
    return SDC_OK;
}

/* A quoted Python string without escapes; str and len point into the header. */
static sdc_status scan_string(scanner *s, const char **str, size_t *len) {
    skip_ws(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"')) return bad_header(s, "expected a string");
    char q = *s->p++;
    const char *b = s->p;
    while (s->p < s->end && *s->p != q) {
        if (*s->p == '\\') return bad_header(s, "escape sequences in strings are not supported");
        if (*s->p == '\n') return bad_header(s, "unterminated string");
        s->p++;
    }
    if (s->p >= s->end) return bad_header(s, "unterminated string");
    *str = b;
    *len = (size_t)(s->p - b);
    s->p++;
    return SDC_OK;
}

static int scan_word(scanner *s, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) return 0;
    const char *q = s->p + n; /* the word must end here: "Falsey" is not False */
    if (q < s->end && (*q == '_' || (*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z') ||
                       (*q >= '0' && *q <= '9')))
        return 0;
    s->p = q;
    return 1;
}

/* 'descr': a simple dtype string such as '<f4'. */
static sdc_status parse_descr(scanner *s, npy_header *h) {
    skip_ws(s);
    if (s->p < s->end && (*s->p == '[' || *s->p == '{'))
        return sdc_fail(s->err, SDC_E_UNSUPPORTED, "%s: structured dtypes are not supported",
                        s->label);
    const char *d;
    size_t n;
    SDC_TRY(scan_string(s, &d, &n));
    const char *whole = d; /* for the message */
    int whole_len = n > 32 ? 32 : (int)n;
    char order = '=';
    if (n == 3 && d[0] && strchr("<>|=", d[0])) {
        order = d[0];
        d++;
        n--;
    }
    for (int k = 0; k < K_COUNT && n == 2; k++) {
        if (memcmp(d, kinds[k].code, 2) != 0) continue;
        /* '<' little-endian, '=' native (little-endian here), '|' not applicable; a '>' only
         * matters for multi-byte types. */
        if (order == '>' && kinds[k].size > 1)
            return sdc_fail(s->err, SDC_E_UNSUPPORTED,
                            "%s: big-endian data ('>%s') is not supported; save it with "
                            "a.astype('<%s')",
                            s->label, kinds[k].code, kinds[k].code);
        h->kind = (npy_kind)k;
        return SDC_OK;
    }
    return sdc_fail(s->err, SDC_E_UNSUPPORTED,
                    "%s: dtype '%.*s' is not supported (float32, float16, float64, int64, "
                    "int32, int8, uint8, bool)",
                    s->label, whole_len, whole);
}

/* 'shape': a tuple of non-negative integers: (), (5,), (2, 3). */
static sdc_status parse_shape(scanner *s, npy_header *h) {
    SDC_TRY(expect(s, '(', "'shape' is not a tuple"));
    int nd = 0, trailing_comma = 0;
    for (;;) {
        skip_ws(s);
        if (s->p < s->end && *s->p == ')') break;
        if (s->p < s->end && *s->p == '-')
            return bad_header(s, "negative dimension in 'shape'");
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return bad_header(s, "'shape' holds something that is not an integer");
        if (nd == SDC_NPY_MAX_DIMS)
            return sdc_fail(s->err, SDC_E_LIMIT, "%s: more than %d dimensions", s->label,
                            SDC_NPY_MAX_DIMS);
        int64_t v = 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s->p - '0', &v))
                return sdc_fail(s->err, SDC_E_LIMIT, "%s: dimension %d of 'shape' is too large",
                                s->label, nd);
            s->p++;
        }
        if (s->p < s->end && (*s->p == 'L' || *s->p == 'l')) s->p++; /* Python 2 long */
        h->shape[nd++] = v;
        skip_ws(s);
        trailing_comma = 0;
        if (s->p < s->end && *s->p == ',') {
            s->p++;
            trailing_comma = 1;
        } else if (s->p >= s->end || *s->p != ')') {
            return bad_header(s, "expected ',' or ')' in 'shape'");
        }
    }
    s->p++; /* ')' */
    /* (5) is the integer 5 in Python, not a tuple; numpy refuses it too. */
    if (nd == 1 && !trailing_comma) return bad_header(s, "'shape' is not a tuple");
    h->ndim = nd;
    return SDC_OK;
}

static void format_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
}

/* Parses the magic, version and header dict from `buf` (buflen bytes available: at least the
 * whole header when the file has it) and checks the data against `total` bytes of file. */
static sdc_status parse_header(const unsigned char *buf, size_t buflen, size_t total,
                               const char *label, npy_header *h, sdc_error *err) {
    memset(h, 0, sizeof *h);
    if (buflen < 8 || memcmp(buf, NPY_MAGIC, NPY_MAGIC_LEN) != 0)
        return sdc_fail(err, SDC_E_FORMAT, "%s: not an .npy file (no \\x93NUMPY magic)", label);
    int major = buf[6], minor = buf[7];
    size_t prefix, hlen;
    if (major == 1 && minor == 0) {
        prefix = 10;
        if (buflen < prefix) goto truncated;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    } else if ((major == 2 || major == 3) && minor == 0) {
        prefix = 12;
        if (buflen < prefix) goto truncated;
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 |
               (size_t)buf[11] << 24;
    } else {
        return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: .npy format version %d.%d is not supported",
                        label, major, minor);
    }
    if (hlen > NPY_MAX_HEADER)
        return sdc_fail(err, SDC_E_LIMIT, "%s: .npy header of %zu bytes exceeds the %d-byte limit",
                        label, hlen, NPY_MAX_HEADER);
    if (buflen < prefix + hlen) goto truncated;

    scanner s = {(const char *)buf + prefix, (const char *)buf + prefix + hlen, label, err};
    int seen_descr = 0, seen_fortran = 0, seen_shape = 0, fortran = 0;
    SDC_TRY(expect(&s, '{', "expected '{'"));
    for (;;) {
        skip_ws(&s);
        if (s.p < s.end && *s.p == '}') break;
        const char *key;
        size_t klen;
        SDC_TRY(scan_string(&s, &key, &klen));
        SDC_TRY(expect(&s, ':', "expected ':' after a key"));
        int *seen;
        if (klen == 5 && memcmp(key, "descr", 5) == 0) {
            seen = &seen_descr;
            SDC_TRY(parse_descr(&s, h));
        } else if (klen == 13 && memcmp(key, "fortran_order", 13) == 0) {
            seen = &seen_fortran;
            skip_ws(&s);
            if (scan_word(&s, "True")) fortran = 1;
            else if (scan_word(&s, "False")) fortran = 0;
            else return bad_header(&s, "'fortran_order' is not True or False");
        } else if (klen == 5 && memcmp(key, "shape", 5) == 0) {
            seen = &seen_shape;
            SDC_TRY(parse_shape(&s, h));
        } else {
            int shown = klen > 32 ? 32 : (int)klen;
            return sdc_fail(err, SDC_E_FORMAT, "%s: malformed .npy header: unexpected key '%.*s'",
                            label, shown, key);
        }
        if (*seen) return bad_header(&s, "duplicate key");
        *seen = 1;
        skip_ws(&s);
        if (s.p < s.end && *s.p == ',') s.p++;
        else if (s.p >= s.end || *s.p != '}') return bad_header(&s, "expected ',' or '}'");
    }
    s.p++; /* '}' */
    skip_ws(&s);
    if (s.p != s.end) return bad_header(&s, "trailing characters after the dict");
    if (!seen_descr || !seen_fortran || !seen_shape)
        return bad_header(&s, !seen_descr     ? "no 'descr' key"
                              : !seen_fortran ? "no 'fortran_order' key"
                                              : "no 'shape' key");

    int64_t numel = 1;
    int big_dims = 0;
    for (int i = 0; i < h->ndim; i++) {
        if (__builtin_mul_overflow(numel, h->shape[i], &numel))
            return sdc_fail(err, SDC_E_LIMIT, "%s: shape has too many elements", label);
        big_dims += h->shape[i] > 1;
    }
    /* Fortran order is the same layout as C order when at most one dimension exceeds 1. */
    if (fortran && big_dims > 1)
        return sdc_fail(err, SDC_E_UNSUPPORTED,
                        "%s: Fortran-order arrays are not supported; save it with "
                        "np.ascontiguousarray(a)",
                        label);
    size_t esize = kinds[h->kind].size;
    if ((uint64_t)numel > SIZE_MAX / esize || (uint64_t)numel > SIZE_MAX / sizeof(float))
        return sdc_fail(err, SDC_E_LIMIT, "%s: shape has too many elements", label);
    h->numel = numel;
    h->nbytes = (size_t)numel * esize;
    h->data_off = prefix + hlen;
    size_t avail = total > h->data_off ? total - h->data_off : 0;
    if (avail < h->nbytes) {
        char shp[SDC_NPY_MAX_DIMS * 22 + 4];
        format_shape(shp, sizeof shp, h->ndim, h->shape);
        return sdc_fail(err, SDC_E_FORMAT, "%s: data holds %zu bytes but %s %s needs %zu", label,
                        avail, kinds[h->kind].name, shp, h->nbytes);
    }
    return SDC_OK;

truncated:
    return sdc_fail(err, SDC_E_FORMAT, "%s: truncated .npy header (%zu bytes)", label, buflen);
}

static sdc_status alloc_out(const npy_header *h, const char *label, sdc_npy *out,
                            sdc_error *err) {
    out->ndim = h->ndim;
    memcpy(out->shape, h->shape, sizeof h->shape);
    out->numel = h->numel;
    /* Never malloc(0): callers may rely on data != NULL after success. */
    out->data = malloc((h->numel ? (size_t)h->numel : 1) * sizeof(float));
    if (!out->data)
        return sdc_fail(err, SDC_E_NOMEM, "%s: cannot allocate %" PRId64 " floats", label,
                        h->numel);
    return SDC_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Reading                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

sdc_status sdc_npy_parse_f32(const void *buf, size_t len, const char *label, sdc_npy *out,
                             sdc_error *err) {
    memset(out, 0, sizeof *out);
    if (!label) label = "<memory>";
    if (!buf && len) return sdc_fail(err, SDC_E_INVALID_ARG, "%s: NULL buffer", label);
    npy_header h;
    SDC_TRY(parse_header(buf ? buf : "", len, len, label, &h, err));
    SDC_TRY(alloc_out(&h, label, out, err));
    convert_to_f32(out->data, (const unsigned char *)buf + h.data_off, h.kind, (size_t)h.numel);
    return SDC_OK;
}

sdc_status sdc_npy_read_f32(const char *path, sdc_npy *out, sdc_error *err) {
    memset(out, 0, sizeof *out);
    if (!path) return sdc_fail(err, SDC_E_INVALID_ARG, "npy: NULL path");
    sdc_status st = SDC_OK;
    unsigned char *head = NULL, *chunk = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return sdc_fail(err, SDC_E_IO, "%s: cannot open: %s", path, strerror(errno));

    struct stat sb;
    if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = sdc_fail(err, SDC_E_IO, "%s: not a regular file", path);
        goto cleanup;
    }
    size_t total = (size_t)sb.st_size;
    size_t want = NPY_MAX_PREFIX + NPY_MAX_HEADER;
    if (want > total) want = total;
    head = malloc(want ? want : 1);
    if (!head) {
        st = sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", path);
        goto cleanup;
    }
    if (fread(head, 1, want, f) != want) {
        st = sdc_fail(err, SDC_E_IO, "%s: read error", path);
        goto cleanup;
    }
    npy_header h;
    if ((st = parse_header(head, want, total, path, &h, err)) != SDC_OK) goto cleanup;
    if ((st = alloc_out(&h, path, out, err)) != SDC_OK) goto cleanup;
    if (fseeko(f, (off_t)h.data_off, SEEK_SET) != 0) {
        st = sdc_fail(err, SDC_E_IO, "%s: seek error", path);
        goto cleanup;
    }
    size_t esize = kinds[h.kind].size, n = (size_t)h.numel;
    if (h.kind == K_F4) { /* straight into the output */
        if (fread(out->data, 4, n, f) != n) goto short_read;
    } else { /* convert in chunks: no second full-size buffer */
        enum { CHUNK = 1 << 16 };
        chunk = malloc(CHUNK);
        if (!chunk) {
            st = sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", path);
            goto cleanup;
        }
        size_t per = CHUNK / esize;
        for (size_t i = 0; i < n; i += per) {
            size_t m = n - i < per ? n - i : per;
            if (fread(chunk, esize, m, f) != m) goto short_read;
            convert_to_f32(out->data + i, chunk, h.kind, m);
        }
    }
    goto cleanup;

short_read: /* the file shrank after fstat */
    st = sdc_fail(err, SDC_E_IO, "%s: short read (file changed while reading?)", path);
cleanup:
    free(head);
    free(chunk);
    fclose(f);
    if (st != SDC_OK) sdc_npy_free(out);
    return st;
}

void sdc_npy_free(sdc_npy *a) {
    if (!a) return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

/* ---------------------------------------------------------------------------------------------- */
/* Writing                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

/* Room for the dict with 8 dims of 20 digits, the growth spaces and up to 64 bytes of padding. */
#define NPY_HEADER_CAP 512

/* Builds numpy's version 1.0 header for `descr` and the shape into out[NPY_HEADER_CAP]: *hlen
 * receives its length (a multiple of 64), *nbytes the data size numel * esize. */
static sdc_status make_header(const char *label, const char *descr, size_t esize, int ndim,
                              const int64_t *shape, const void *data, unsigned char *out,
                              size_t *hlen_out, size_t *nbytes, sdc_error *err) {
    if (ndim < 0 || ndim > SDC_NPY_MAX_DIMS || (ndim > 0 && !shape))
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: ndim %d is not in 0..%d", label, ndim,
                        SDC_NPY_MAX_DIMS);
    size_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return sdc_fail(err, SDC_E_INVALID_ARG, "%s: dimension %d is negative (%" PRId64 ")",
                            label, i, shape[i]);
        if (__builtin_mul_overflow(numel, (uint64_t)shape[i], &numel) || numel > SIZE_MAX / esize)
            return sdc_fail(err, SDC_E_LIMIT, "%s: shape has too many elements", label);
    }
    if (numel && !data)
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: NULL data for %zu elements", label, numel);
    *nbytes = numel * esize;

    char *h = (char *)out + 10;
    size_t cap = NPY_HEADER_CAP - 10, n = 0;
    n += (size_t)snprintf(h + n, cap - n, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                          descr);
    for (int i = 0; i < ndim; i++)
        n += (size_t)snprintf(h + n, cap - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    n += (size_t)snprintf(h + n, cap - n, "%s), }", ndim == 1 ? "," : "");
    if (ndim > 0) { /* spare room so the first axis can grow in place */
        int digits = snprintf(NULL, 0, "%" PRId64, shape[0]);
        for (int i = digits; i < NPY_GROWTH_DIGITS; i++) h[n++] = ' ';
    }
    size_t hlen = n + 1; /* with the final '\n' */
    size_t pad = NPY_ALIGN - (10 + hlen) % NPY_ALIGN;
    memset(h + n, ' ', pad);
    n += pad;
    h[n++] = '\n';
    memcpy(out, NPY_MAGIC, NPY_MAGIC_LEN);
    out[6] = 1;
    out[7] = 0;
    out[8] = (unsigned char)(n & 0xff);
    out[9] = (unsigned char)(n >> 8);
    *hlen_out = 10 + n;
    return SDC_OK;
}

/* Writes header + data to PATH.tmp, then renames it over PATH; the temporary is removed on any
 * failure, so PATH is either the old file or the complete new one. */
static sdc_status write_atomic(const char *path, const void *hdr, size_t hlen, const void *data,
                               size_t nbytes, sdc_error *err) {
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);
    sdc_status st = SDC_OK;
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        st = sdc_fail(err, SDC_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    int ok = fwrite(hdr, 1, hlen, f) == hlen && (nbytes == 0 || fwrite(data, 1, nbytes, f) == nbytes);
    int saved = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        saved = errno;
    }
    if (!ok) {
        st = sdc_fail(err, SDC_E_IO, "%s: write failed: %s", tmp, strerror(saved));
    } else if (rename(tmp, path) != 0) {
        st = sdc_fail(err, SDC_E_IO, "%s: cannot rename %s into place: %s", path, tmp,
                      strerror(errno));
    }
    if (st != SDC_OK) remove(tmp);
    free(tmp);
    return st;
}

static sdc_status write_npy(const char *path, const char *descr, size_t esize, const void *data,
                            int ndim, const int64_t *shape, sdc_error *err) {
    if (!path) return sdc_fail(err, SDC_E_INVALID_ARG, "npy: NULL path");
    unsigned char hdr[NPY_HEADER_CAP];
    size_t hlen = 0, nbytes = 0;
    SDC_TRY(make_header(path, descr, esize, ndim, shape, data, hdr, &hlen, &nbytes, err));
    return write_atomic(path, hdr, hlen, data, nbytes, err);
}

sdc_status sdc_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape,
                             sdc_error *err) {
    return write_npy(path, "<f4", 4, data, ndim, shape, err);
}

sdc_status sdc_npy_write_i64(const char *path, const int64_t *data, int ndim, const int64_t *shape,
                             sdc_error *err) {
    return write_npy(path, "<i8", 8, data, ndim, shape, err);
}

sdc_status sdc_npy_encode_f32(const float *data, int ndim, const int64_t *shape, void **out,
                              size_t *out_len, sdc_error *err) {
    *out = NULL;
    *out_len = 0;
    unsigned char hdr[NPY_HEADER_CAP];
    size_t hlen = 0, nbytes = 0;
    SDC_TRY(make_header("npy encode", "<f4", 4, ndim, shape, data, hdr, &hlen, &nbytes, err));
    if (nbytes > SIZE_MAX - hlen) return sdc_fail(err, SDC_E_LIMIT, "npy encode: too large");
    unsigned char *buf = malloc(hlen + nbytes);
    if (!buf) return sdc_fail(err, SDC_E_NOMEM, "npy encode: cannot allocate %zu bytes", hlen + nbytes);
    memcpy(buf, hdr, hlen);
    if (nbytes) memcpy(buf + hlen, data, nbytes);
    *out = buf;
    *out_len = hlen + nbytes;
    return SDC_OK;
}
