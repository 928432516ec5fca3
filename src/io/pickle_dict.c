/* src/io/pickle_dict.c: pickle_dict.h's reader, on the shared machine in pickle_vm.h.
 *
 * Layout: the numpy objects and the hooks that make them (the allowed globals, REDUCE, BUILD),
 * then the dict's arrays out, then .npy files of an object array. The machine owns every object
 * and frees them together; arrays and dtypes are its EXT objects with the payloads below. Strings
 * and bytes point into the input buffer (only _codecs.encode's latin-1 result is an owned copy). */
#include "io/pickle_dict.h"

#include "io/pickle_vm.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* What the hooks make: EXT objects with these tags and payloads. */
enum { X_ARRAY, X_DTYPE };

typedef struct {
    char code[8];             /* 'f4', 'O8', ... */
    char order;               /* '<', '>', '|', '=' */
} np_dtype;

typedef struct {
    bool built, fortran;
    int ndim;
    int64_t shape[SDC_NPY_MAX_DIMS];
    sdc_pv_obj *dtype, *data; /* dtype: an X_DTYPE; data: bytes, or a list for object arrays */
} np_array;

typedef enum { G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_FROMBUFFER, G_ENCODE, G_BYTES } pglobal;

static bool is_ext(const sdc_pv_obj *o, int tag) { return o->kind == SDC_PV_EXT && o->i == tag; }
static np_array *array_of(const sdc_pv_obj *o) { return is_ext(o, X_ARRAY) ? o->ext : NULL; }
static np_dtype *dtype_of(const sdc_pv_obj *o) { return is_ext(o, X_DTYPE) ? o->ext : NULL; }

/* The allowed callables, by module and name: their pglobal, or -1. */
static int find_global(void *ctx, const uint8_t *mod, size_t nm, const uint8_t *name, size_t nn) {
    (void)ctx;
    static const struct { const char *mod, *name; pglobal g; } ok[] = {
        {"numpy.core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy._core.multiarray", "_reconstruct", G_RECONSTRUCT},
        {"numpy", "ndarray", G_NDARRAY},
        {"numpy", "dtype", G_DTYPE},
        {"numpy.core.numeric", "_frombuffer", G_FROMBUFFER},
        {"numpy._core.numeric", "_frombuffer", G_FROMBUFFER},
        {"_codecs", "encode", G_ENCODE},
        {"__builtin__", "bytes", G_BYTES},
        {"builtins", "bytes", G_BYTES},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (sdc_pv_mem_is(mod, nm, ok[i].mod) && sdc_pv_mem_is(name, nn, ok[i].name)) return (int)ok[i].g;
    return -1;
}

static bool valid_shape(const sdc_pv_obj *t, int *ndim, int64_t *shape) {
    if (!t || t->kind != SDC_PV_TUPLE || t->n_items > SDC_NPY_MAX_DIMS) return false;
    for (size_t i = 0; i < t->n_items; i++) {
        if (t->items[i]->kind != SDC_PV_INT || t->items[i]->i < 0) return false;
        shape[i] = t->items[i]->i;
    }
    *ndim = (int)t->n_items;
    return true;
}

/* _codecs.encode('...', 'latin1'): the str's code points are the bytes. */
static sdc_status latin1_bytes(sdc_pv *m, const sdc_pv_obj *s, sdc_pv_obj **out) {
    sdc_pv_obj *o = sdc_pv_new(m, SDC_PV_BYTES);
    if (!o) return m->err->code;
    uint8_t *b = o->ext = malloc(s->n ? s->n : 1);
    if (!b) return sdc_pv_fail(m, SDC_E_NOMEM, "out of memory");
    const uint8_t *c = s->p;
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (c[i] < 0x80) {
            b[n++] = c[i];
        } else if ((c[i] & 0xe0) == 0xc0 && c[i] <= 0xc3 && i + 1 < s->n && (c[i + 1] & 0xc0) == 0x80) {
            b[n++] = (uint8_t)(((c[i] & 0x03) << 6) | (c[i + 1] & 0x3f));
            i++;
        } else {
            return sdc_pv_fail(m, SDC_E_FORMAT, "_codecs.encode of a str that is not latin-1");
        }
    }
    o->p = b;
    o->n = n;
    *out = o;
    return SDC_OK;
}

/* REDUCE: callable(*args) for the allowed callables only. */
static sdc_status reduce(sdc_pv *m, const sdc_pv_obj *fn, sdc_pv_obj **a, size_t na, sdc_pv_obj **out) {
    switch ((pglobal)fn->i) {
    case G_RECONSTRUCT: /* _reconstruct(ndarray, (0,), b'b') */
        if (na != 3 || a[0]->kind != SDC_PV_GLOBAL || a[0]->i != G_NDARRAY)
            return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "_reconstruct of something other than numpy.ndarray");
        *out = sdc_pv_new_ext(m, X_ARRAY, sizeof(np_array));
        return *out ? SDC_OK : m->err->code;
    case G_DTYPE: { /* dtype('f4', False, True) */
        if (na < 1 || a[0]->kind != SDC_PV_STR || a[0]->n == 0 || a[0]->n >= sizeof(((np_dtype *)0)->code))
            return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "numpy.dtype with an unexpected argument");
        sdc_pv_obj *d = sdc_pv_new_ext(m, X_DTYPE, sizeof(np_dtype));
        if (!d) return m->err->code;
        np_dtype *dt = d->ext;
        memcpy(dt->code, a[0]->p, a[0]->n);
        dt->order = '=';
        *out = d;
        return SDC_OK;
    }
    case G_FROMBUFFER: { /* _frombuffer(buf, dtype, shape, order) */
        sdc_pv_obj *o = sdc_pv_new_ext(m, X_ARRAY, sizeof(np_array));
        if (!o) return m->err->code;
        np_array *arr = o->ext;
        if (na != 4 || a[0]->kind != SDC_PV_BYTES || !dtype_of(a[1]) || !valid_shape(a[2], &arr->ndim, arr->shape) ||
            !(sdc_pv_str_is(a[3], "C") || sdc_pv_str_is(a[3], "F")))
            return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "_frombuffer with unexpected arguments");
        arr->data = a[0];
        arr->dtype = a[1];
        arr->fortran = sdc_pv_str_is(a[3], "F");
        arr->built = true;
        *out = o;
        return SDC_OK;
    }
    case G_ENCODE:
        if (na != 2 || a[0]->kind != SDC_PV_STR || !(sdc_pv_str_is(a[1], "latin1") || sdc_pv_str_is(a[1], "latin-1")))
            return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "_codecs.encode with unexpected arguments");
        return latin1_bytes(m, a[0], out);
    case G_BYTES: /* bytes() */
        if (na != 0) return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "bytes() with arguments");
        if (!(*out = sdc_pv_new(m, SDC_PV_BYTES))) return m->err->code;
        (*out)->p = (const uint8_t *)"";
        return SDC_OK;
    case G_NDARRAY:
        break;
    }
    return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "REDUCE of numpy.ndarray itself");
}

/* BUILD: set the state of a dtype or an array made by _reconstruct. */
static sdc_status build(sdc_pv *m, sdc_pv_obj *o, sdc_pv_obj *st) {
    if (st->kind != SDC_PV_TUPLE) return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "BUILD with a state that is not a tuple");
    sdc_pv_obj **s = st->items;
    np_dtype *dt = dtype_of(o);
    np_array *arr = array_of(o);
    if (dt) { /* (3, '<', None, None, None, -1, -1, flags) */
        if (st->n_items < 2 || s[1]->kind != SDC_PV_STR || s[1]->n != 1)
            return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "unexpected numpy.dtype state");
        dt->order = (char)s[1]->p[0];
        return SDC_OK;
    }
    if (arr && !arr->built) { /* ([1,] shape, dtype, is_fortran, data) */
        size_t off = st->n_items == 5 ? 1 : 0;
        if ((st->n_items != 4 && st->n_items != 5) || !valid_shape(s[off], &arr->ndim, arr->shape) ||
            !dtype_of(s[off + 1]) || s[off + 2]->kind != SDC_PV_BOOL ||
            (s[off + 3]->kind != SDC_PV_BYTES && s[off + 3]->kind != SDC_PV_LIST))
            return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "unexpected numpy.ndarray state");
        arr->dtype = s[off + 1];
        arr->fortran = s[off + 2]->i != 0;
        arr->data = s[off + 3];
        arr->built = true;
        return SDC_OK;
    }
    return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "BUILD on something other than a new numpy array or dtype");
}

/* Copies one float32 array out (reordering Fortran order to C order). */
static sdc_status take_array(sdc_pv *m, const sdc_pv_obj *key, const sdc_pv_obj *o, sdc_pickle_array *out,
                             size_t *budget) {
    int kl = key->n > 60 ? 60 : (int)key->n;
    const char *kp = (const char *)key->p, *label = m->cfg->label;
    const np_array *a = array_of(o);
    if (!a || !a->built)
        return sdc_fail(m->err, SDC_E_UNSUPPORTED, "%s: dict entry '%.*s' is not a numpy array", label, kl, kp);
    const np_dtype *dt = dtype_of(a->dtype);
    if (strcmp(dt->code, "f4") != 0 || a->data->kind != SDC_PV_BYTES)
        return sdc_fail(m->err, SDC_E_UNSUPPORTED, "%s: array '%.*s' has dtype '%s'; only float32 is read", label, kl, kp, dt->code);
    if (dt->order != '<' && dt->order != '=' && dt->order != '|')
        return sdc_fail(m->err, SDC_E_UNSUPPORTED, "%s: array '%.*s' is big-endian", label, kl, kp);
    int64_t numel = 1;
    for (int i = 0; i < a->ndim; i++)
        if (__builtin_mul_overflow(numel, a->shape[i], &numel) || numel > (int64_t)(SIZE_MAX / 8))
            return sdc_fail(m->err, SDC_E_FORMAT, "%s: array '%.*s': shape too large", label, kl, kp);
    size_t bytes = (size_t)numel * sizeof(float);
    if (a->data->n != bytes)
        return sdc_fail(m->err, SDC_E_FORMAT, "%s: array '%.*s': %zu data bytes, its shape needs %zu", label, kl, kp, a->data->n, bytes);
    if (bytes > *budget)
        return sdc_fail(m->err, SDC_E_LIMIT, "%s: arrays total more bytes than the pickle holds", label);
    *budget -= bytes;
    out->name = malloc(key->n + 1);
    out->data = malloc(bytes ? bytes : 1);
    if (!out->name || !out->data) return sdc_fail(m->err, SDC_E_NOMEM, "%s: out of memory", label);
    memcpy(out->name, key->p, key->n);
    out->name[key->n] = 0;
    out->ndim = a->ndim;
    memcpy(out->shape, a->shape, sizeof out->shape);
    out->numel = numel;
    if (!a->fortran || a->ndim < 2) {
        memcpy(out->data, a->data->p, bytes);
        return SDC_OK;
    }
    /* Fortran order: the first index varies fastest in the source. */
    int64_t idx[SDC_NPY_MAX_DIMS] = {0};
    for (int64_t c = 0; c < numel; c++) { /* c: C-order position; idx: its multi-index */
        int64_t f = 0, stride = 1;
        for (int d = 0; d < a->ndim; d++) {
            f += idx[d] * stride;
            stride *= a->shape[d];
        }
        memcpy(&out->data[c], a->data->p + f * 4, 4);
        for (int d = a->ndim - 1; d >= 0; d--) {
            if (++idx[d] < a->shape[d]) break;
            idx[d] = 0;
        }
    }
    return SDC_OK;
}

void sdc_pickle_dict_free(sdc_pickle_dict *d) {
    if (!d) return;
    for (int i = 0; i < d->n; i++) {
        free(d->items[i].name);
        free(d->items[i].data);
    }
    free(d->items);
    d->items = NULL;
    d->n = 0;
}

sdc_status sdc_pickle_dict_parse(const void *buf, size_t len, const char *label,
                                 sdc_pickle_dict *out, sdc_error *err) {
    memset(out, 0, sizeof *out);
    const sdc_pv_config cfg = {
        .label = label,
        .where = "pickle",
        .reads = "only a dict of numpy float32 arrays is read",
        .refused = "; only numpy float32 arrays in a dict are read",
        .min_proto = 2,
        .opcodes = SDC_PV_OP_BYTEARRAY8,
        .max_objects = SDC_PICKLE_MAX_OBJECTS,
        .max_stack = SDC_PICKLE_MAX_STACK,
        .max_memo = SDC_PICKLE_MAX_MEMO,
        .max_dict_items = SDC_PICKLE_MAX_ITEMS,
        .str_keys_only = true,
        .hooks = {.global = find_global, .reduce = reduce, .build = build},
    };
    sdc_pv m;
    sdc_pv_init(&m, &cfg, buf, len, err);
    sdc_pv_obj *r = NULL;
    sdc_status st = sdc_pv_run(&m, &r);
    const np_array *a = st == SDC_OK ? array_of(r) : NULL;
    if (a && a->built && a->ndim == 0 && a->data->kind == SDC_PV_LIST) {
        if (a->data->n_items != 1) st = sdc_pv_fail(&m, SDC_E_UNSUPPORTED, "0-d object array without one element");
        else r = a->data->items[0]; /* np.save of a dict: the 0-d object array around it */
    }
    if (st == SDC_OK && r->kind != SDC_PV_DICT)
        st = sdc_fail(m.err, SDC_E_UNSUPPORTED, "%s: the pickle holds no dict of arrays", label);
    if (st == SDC_OK) {
        size_t n = r->n_items / 2, budget = len;
        out->items = calloc(n ? n : 1, sizeof *out->items);
        if (!out->items) st = sdc_fail(m.err, SDC_E_NOMEM, "%s: out of memory", label);
        for (size_t i = 0; st == SDC_OK && i < n; i++) {
            out->n++;
            st = take_array(&m, r->items[2 * i], r->items[2 * i + 1], &out->items[i], &budget);
        }
        if (st != SDC_OK) sdc_pickle_dict_free(out);
    }
    sdc_pv_free(&m);
    return st;
}

const sdc_pickle_array *sdc_pickle_dict_get(const sdc_pickle_dict *d, const char *name) {
    for (int i = 0; i < d->n; i++)
        if (strcmp(d->items[i].name, name) == 0) return &d->items[i];
    return NULL;
}

/* ------------------------------------------------------------------ .npy of an object array */

/* The .npy header text and where the data starts; 0, or -1 when not an .npy. */
static int npy_header(const uint8_t *b, size_t len, const char **hdr, size_t *hlen, size_t *data) {
    if (len < 10 || memcmp(b, "\x93NUMPY", 6) != 0) return -1;
    size_t n, off;
    if (b[6] == 1) {
        n = (size_t)b[8] | (size_t)b[9] << 8;
        off = 10;
    } else if (b[6] == 2 || b[6] == 3) {
        if (len < 12) return -1;
        n = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        off = 12;
    } else {
        return -1;
    }
    if (n > len - off || n > 100000) return -1;
    *hdr = (const char *)b + off;
    *hlen = n;
    *data = off + n;
    return 0;
}

/* The text after "'key':" and any spaces in the header, or NULL. */
static const char *hdr_value(const char *h, size_t n, const char *key) {
    size_t k = strlen(key);
    for (size_t i = 0; i + k + 3 <= n; i++)
        if (h[i] == '\'' && memcmp(h + i + 1, key, k) == 0 && h[i + 1 + k] == '\'') {
            size_t j = i + k + 2;
            while (j < n && h[j] == ' ') j++;
            if (j >= n || h[j] != ':') return NULL;
            j++;
            while (j < n && h[j] == ' ') j++;
            return h + j;
        }
    return NULL;
}

static int hdr_value_is(const char *h, size_t n, const char *key, const char *want) {
    const char *v = hdr_value(h, n, key);
    size_t w = strlen(want);
    return v && (size_t)(h + n - v) >= w && memcmp(v, want, w) == 0;
}

int sdc_npy_is_object(const void *buf, size_t len) {
    const char *h;
    size_t hl, data;
    if (npy_header(buf, len, &h, &hl, &data)) return 0;
    return hdr_value_is(h, hl, "descr", "'|O'");
}

sdc_status sdc_npy_object_parse(const void *buf, size_t len, const char *label,
                                sdc_pickle_dict *out, sdc_error *err) {
    memset(out, 0, sizeof *out);
    const char *h;
    size_t hl, data;
    if (npy_header(buf, len, &h, &hl, &data))
        return sdc_fail(err, SDC_E_FORMAT, "%s: not an .npy file", label);
    if (!hdr_value_is(h, hl, "descr", "'|O'"))
        return sdc_fail(err, SDC_E_FORMAT, "%s: not an object .npy (descr '|O'), so no pickled dict", label);
    if (!hdr_value_is(h, hl, "shape", "()"))
        return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: an object array that is not 0-d; expected one pickled dict", label);
    return sdc_pickle_dict_parse((const uint8_t *)buf + data, len - data, label, out, err);
}
