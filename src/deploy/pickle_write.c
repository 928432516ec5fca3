/* src/deploy/pickle_write.c: plain and NumpyObject .npy images (see pickle_write.h).
 *
 * The pickle is the one numpy 1.x writes for a 0-d object array holding a dict (pickletools.dis
 * of np.save's output, memo opcodes dropped), built in a growing byte buffer. */
#include "deploy/pickle_write.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 4096

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
    int oom;
} buf;

static void put(buf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n) cap *= 2;
        unsigned char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put1(buf *b, unsigned char c) { put(b, &c, 1); }

static void put_u32(buf *b, uint32_t v) {
    unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
    put(b, le, 4);
}

/* ------------------------------------------------------------------ .npy header */

/* Version 1.0 header for `descr` and `shape`, padded with spaces and a newline so the data starts
 * at a multiple of 64 bytes (numpy's layout). */
static void npy_header(buf *b, const char *descr, int ndim, const int64_t *shape) {
    char dict[512];
    int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++) k += snprintf(dict + k, sizeof dict - k, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
    if (ndim > 1) k--; // numpy writes (1, 4) but (5,)
    k += snprintf(dict + k, sizeof dict - k, "), }");
    size_t total = 10 + (size_t)k + 1, pad = (64 - total % 64) % 64;
    put(b, "\x93NUMPY\x01\x00", 8);
    size_t hlen = (size_t)k + pad + 1;
    put1(b, (unsigned char)(hlen & 0xff));
    put1(b, (unsigned char)(hlen >> 8));
    put(b, dict, (size_t)k);
    for (size_t i = 0; i < pad; i++) put1(b, ' ');
    put1(b, '\n');
}

/* ------------------------------------------------------------------ pickle opcodes */

enum {
    P_MARK = '(', P_STOP = '.', P_BININT = 'J', P_BININT1 = 'K', P_BININT2 = 'M', P_NONE = 'N',
    P_REDUCE = 'R', P_BINUNICODE = 'X', P_EMPTY_DICT = '}', P_APPEND = 'a', P_BUILD = 'b',
    P_GLOBAL = 'c', P_EMPTY_LIST = ']', P_SETITEMS = 'u', P_TUPLE = 't', P_EMPTY_TUPLE = ')',
    P_PROTO = 0x80, P_TUPLE1 = 0x85, P_TUPLE3 = 0x87, P_NEWTRUE = 0x88, P_NEWFALSE = 0x89,
    P_BINBYTES = 'B', P_SHORT_BINBYTES = 'C',
};

static void p_global(buf *b, const char *module, const char *name) {
    put1(b, P_GLOBAL);
    put(b, module, strlen(module));
    put1(b, '\n');
    put(b, name, strlen(name));
    put1(b, '\n');
}

static void p_int(buf *b, int64_t v) { // v in [-2^31, 2^31)
    if (v >= 0 && v < 256) {
        put1(b, P_BININT1);
        put1(b, (unsigned char)v);
    } else if (v >= 0 && v < 65536) {
        put1(b, P_BININT2);
        put1(b, (unsigned char)(v & 0xff));
        put1(b, (unsigned char)(v >> 8));
    } else {
        put1(b, P_BININT);
        put_u32(b, (uint32_t)(int32_t)v);
    }
}

static void p_str(buf *b, const char *s) {
    put1(b, P_BINUNICODE);
    put_u32(b, (uint32_t)strlen(s));
    put(b, s, strlen(s));
}

static void p_bytes(buf *b, const void *data, size_t n) {
    if (n < 256) {
        put1(b, P_SHORT_BINBYTES);
        put1(b, (unsigned char)n);
    } else {
        put1(b, P_BINBYTES);
        put_u32(b, (uint32_t)n);
    }
    put(b, data, n);
}

/* numpy.dtype(code, False, True) with its __setstate__ (3, order, None, None, None, -1, -1, flags). */
static void p_dtype(buf *b, const char *code, const char *order, int flags) {
    p_global(b, "numpy", "dtype");
    p_str(b, code);
    put1(b, P_NEWFALSE);
    put1(b, P_NEWTRUE);
    put1(b, P_TUPLE3);
    put1(b, P_REDUCE);
    put1(b, P_MARK);
    p_int(b, 3);
    p_str(b, order);
    put1(b, P_NONE);
    put1(b, P_NONE);
    put1(b, P_NONE);
    p_int(b, -1);
    p_int(b, -1);
    p_int(b, flags);
    put1(b, P_TUPLE);
    put1(b, P_BUILD);
}

/* _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD then fills. */
static void p_reconstruct(buf *b) {
    p_global(b, "numpy.core.multiarray", "_reconstruct");
    p_global(b, "numpy", "ndarray");
    p_int(b, 0);
    put1(b, P_TUPLE1);
    p_bytes(b, "b", 1);
    put1(b, P_TUPLE3);
    put1(b, P_REDUCE);
}

/* An array: _reconstruct + BUILD (1, shape, dtype, False, raw bytes). */
static void p_array(buf *b, const sdc_npy_entry *a, size_t nbytes) {
    p_reconstruct(b);
    put1(b, P_MARK);
    p_int(b, 1);
    if (a->ndim == 0) {
        put1(b, P_EMPTY_TUPLE);
    } else {
        put1(b, P_MARK);
        for (int i = 0; i < a->ndim; i++) p_int(b, a->shape[i]);
        put1(b, P_TUPLE);
    }
    p_dtype(b, a->dtype == SDC_NPY_I64 ? "i8" : "f4", "<", 0);
    put1(b, P_NEWFALSE);
    p_bytes(b, a->data, nbytes);
    put1(b, P_TUPLE);
    put1(b, P_BUILD);
}

/* ------------------------------------------------------------------ checks and entry points */

static sdc_status check_entry(const sdc_npy_entry *a, size_t *nbytes, sdc_error *err) {
    const char *name = a->name ? a->name : "(unnamed)";
    if (a->dtype != SDC_NPY_F32 && a->dtype != SDC_NPY_I64)
        return sdc_fail(err, SDC_E_INVALID_ARG, "npy %s: unknown dtype %d", name, (int)a->dtype);
    if (a->ndim < 0 || a->ndim > SDC_NPY_MAX_DIMS || (a->ndim && !a->shape))
        return sdc_fail(err, SDC_E_INVALID_ARG, "npy %s: %d dimensions (0..%d)", name, a->ndim, SDC_NPY_MAX_DIMS);
    if (strlen(name) > MAX_NAME) return sdc_fail(err, SDC_E_INVALID_ARG, "npy %.40s...: name over %d bytes", name, MAX_NAME);
    size_t n = a->dtype == SDC_NPY_I64 ? 8 : 4;
    for (int i = 0; i < a->ndim; i++) {
        if (a->shape[i] < 0 || a->shape[i] > INT32_MAX)
            return sdc_fail(err, SDC_E_INVALID_ARG, "npy %s: dimension %d is %lld", name, i, (long long)a->shape[i]);
        n = sdc_mul_size(n, (size_t)a->shape[i]);
        if (!n && a->shape[i]) return sdc_fail(err, SDC_E_INVALID_ARG, "npy %s: the shape overflows", name);
    }
    if (n > UINT32_MAX) return sdc_fail(err, SDC_E_INVALID_ARG, "npy %s: %zu bytes, over 4 GiB - 1", name, n);
    if (n && !a->data) return sdc_fail(err, SDC_E_INVALID_ARG, "npy %s: no data", name);
    *nbytes = n;
    return SDC_OK;
}

static sdc_status finish(buf *b, void **out, size_t *len, sdc_error *err) {
    if (b->oom) {
        free(b->p);
        return sdc_fail(err, SDC_E_NOMEM, "out of memory for an .npy image");
    }
    *out = b->p;
    *len = b->n;
    return SDC_OK;
}

sdc_status sdc_npy_encode(const sdc_npy_entry *a, void **out, size_t *len, sdc_error *err) {
    *out = NULL;
    *len = 0;
    size_t nbytes;
    SDC_TRY(check_entry(a, &nbytes, err));
    buf b = {0};
    npy_header(&b, a->dtype == SDC_NPY_I64 ? "<i8" : "<f4", a->ndim, a->shape);
    put(&b, a->data, nbytes);
    return finish(&b, out, len, err);
}

sdc_status sdc_npy_object_encode(const sdc_npy_entry *items, int n, void **out, size_t *len, sdc_error *err) {
    *out = NULL;
    *len = 0;
    if (n < 0 || (n && !items)) return sdc_fail(err, SDC_E_INVALID_ARG, "npy object: %d items", n);
    size_t nbytes[64];
    if (n > 64) return sdc_fail(err, SDC_E_INVALID_ARG, "npy object: %d items (64 at most)", n);
    for (int i = 0; i < n; i++) {
        SDC_TRY(check_entry(&items[i], &nbytes[i], err));
        for (int j = 0; j < i; j++)
            if (!strcmp(items[i].name, items[j].name))
                return sdc_fail(err, SDC_E_INVALID_ARG, "npy object: the name %s appears twice", items[i].name);
    }
    buf b = {0};
    npy_header(&b, "|O", 0, NULL);
    put1(&b, P_PROTO);
    put1(&b, 3);
    p_reconstruct(&b); // the 0-d object array
    put1(&b, P_MARK);
    p_int(&b, 1);
    put1(&b, P_EMPTY_TUPLE);
    p_dtype(&b, "O8", "|", 63);
    put1(&b, P_NEWFALSE);
    put1(&b, P_EMPTY_LIST); // its element list: [dict]
    put1(&b, P_EMPTY_DICT);
    if (n) {
        put1(&b, P_MARK);
        for (int i = 0; i < n; i++) {
            p_str(&b, items[i].name);
            p_array(&b, &items[i], nbytes[i]);
        }
        put1(&b, P_SETITEMS);
    }
    put1(&b, P_APPEND);
    put1(&b, P_TUPLE);
    put1(&b, P_BUILD);
    put1(&b, P_STOP);
    return finish(&b, out, len, err);
}
