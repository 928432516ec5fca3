/* src/deploy/pickle_write.c: plain and NumpyObject .npy images (see pickle_write.h).
 *
 * The pickle is the one numpy 1.x writes for a 0-d object array holding a dict (pickletools.dis
 * of np.save's output, memo opcodes dropped), built in a growing byte buffer. */
#include "deploy/pickle_write.h"
#include "io/pickle_out.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_NAME 4096

/* ------------------------------------------------------------------ .npy header */

/* Version 1.0 header for `descr` and `shape`, padded with spaces and a newline so the data starts
 * at a multiple of 64 bytes (numpy's layout). */
static void npy_header(sdc_bytes *b, const char *descr, int ndim, const int64_t *shape) {
    char dict[512];
    int k = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
    for (int i = 0; i < ndim; i++) k += snprintf(dict + k, sizeof dict - k, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
    if (ndim > 1) k--; // numpy writes (1, 4) but (5,)
    k += snprintf(dict + k, sizeof dict - k, "), }");
    size_t total = 10 + (size_t)k + 1, pad = (64 - total % 64) % 64;
    sdc_bytes_put(b, "\x93NUMPY\x01\x00", 8);
    size_t hlen = (size_t)k + pad + 1;
    sdc_bytes_u16(b, (uint32_t)hlen);
    sdc_bytes_put(b, dict, (size_t)k);
    for (size_t i = 0; i < pad; i++) sdc_bytes_u8(b, ' ');
    sdc_bytes_u8(b, '\n');
}

/* numpy.dtype(code, False, True) with its __setstate__ (3, order, None, None, None, -1, -1, flags). */
static void p_dtype(sdc_bytes *b, const char *code, const char *order, int flags) {
    sdc_pickle_global(b, "numpy", "dtype");
    sdc_pickle_str(b, code);
    sdc_bytes_u8(b, SDC_P_NEWFALSE);
    sdc_bytes_u8(b, SDC_P_NEWTRUE);
    sdc_bytes_u8(b, SDC_P_TUPLE3);
    sdc_bytes_u8(b, SDC_P_REDUCE);
    sdc_bytes_u8(b, SDC_P_MARK);
    sdc_pickle_int(b, 3);
    sdc_pickle_str(b, order);
    sdc_bytes_u8(b, SDC_P_NONE);
    sdc_bytes_u8(b, SDC_P_NONE);
    sdc_bytes_u8(b, SDC_P_NONE);
    sdc_pickle_int(b, -1);
    sdc_pickle_int(b, -1);
    sdc_pickle_int(b, flags);
    sdc_bytes_u8(b, SDC_P_TUPLE);
    sdc_bytes_u8(b, SDC_P_BUILD);
}

/* _reconstruct(ndarray, (0,), b'b'): an empty array that BUILD then fills. */
static void p_reconstruct(sdc_bytes *b) {
    sdc_pickle_global(b, "numpy.core.multiarray", "_reconstruct");
    sdc_pickle_global(b, "numpy", "ndarray");
    sdc_pickle_int(b, 0);
    sdc_bytes_u8(b, SDC_P_TUPLE1);
    sdc_pickle_bytes(b, "b", 1);
    sdc_bytes_u8(b, SDC_P_TUPLE3);
    sdc_bytes_u8(b, SDC_P_REDUCE);
}

/* An array: _reconstruct + BUILD (1, shape, dtype, False, raw bytes). */
static void p_array(sdc_bytes *b, const sdc_npy_entry *a, size_t nbytes) {
    p_reconstruct(b);
    sdc_bytes_u8(b, SDC_P_MARK);
    sdc_pickle_int(b, 1);
    if (a->ndim == 0) {
        sdc_bytes_u8(b, SDC_P_EMPTY_TUPLE);
    } else {
        sdc_bytes_u8(b, SDC_P_MARK);
        for (int i = 0; i < a->ndim; i++) sdc_pickle_int(b, a->shape[i]);
        sdc_bytes_u8(b, SDC_P_TUPLE);
    }
    p_dtype(b, a->dtype == SDC_NPY_I64 ? "i8" : "f4", "<", 0);
    sdc_bytes_u8(b, SDC_P_NEWFALSE);
    sdc_pickle_bytes(b, a->data, nbytes);
    sdc_bytes_u8(b, SDC_P_TUPLE);
    sdc_bytes_u8(b, SDC_P_BUILD);
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

static sdc_status finish(sdc_bytes *b, void **out, size_t *len, sdc_error *err) {
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
    sdc_bytes b = {0};
    npy_header(&b, a->dtype == SDC_NPY_I64 ? "<i8" : "<f4", a->ndim, a->shape);
    sdc_bytes_put(&b, a->data, nbytes);
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
    sdc_bytes b = {0};
    npy_header(&b, "|O", 0, NULL);
    sdc_bytes_u8(&b, SDC_P_PROTO);
    sdc_bytes_u8(&b, 3);
    p_reconstruct(&b); // the 0-d object array
    sdc_bytes_u8(&b, SDC_P_MARK);
    sdc_pickle_int(&b, 1);
    sdc_bytes_u8(&b, SDC_P_EMPTY_TUPLE);
    p_dtype(&b, "O8", "|", 63);
    sdc_bytes_u8(&b, SDC_P_NEWFALSE);
    sdc_bytes_u8(&b, SDC_P_EMPTY_LIST); // its element list: [dict]
    sdc_bytes_u8(&b, SDC_P_EMPTY_DICT);
    if (n) {
        sdc_bytes_u8(&b, SDC_P_MARK);
        for (int i = 0; i < n; i++) {
            sdc_pickle_str(&b, items[i].name);
            p_array(&b, &items[i], nbytes[i]);
        }
        sdc_bytes_u8(&b, SDC_P_SETITEMS);
    }
    sdc_bytes_u8(&b, SDC_P_APPEND);
    sdc_bytes_u8(&b, SDC_P_TUPLE);
    sdc_bytes_u8(&b, SDC_P_BUILD);
    sdc_bytes_u8(&b, SDC_P_STOP);
    return finish(&b, out, len, err);
}
