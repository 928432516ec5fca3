/* src/io/pickle_dict.c: the restricted pickle machine behind pickle_dict.h.
 *
 * Objects live in one list owned by the machine and are freed together at the end; the stack,
 * the memo, tuples, lists and dicts hold pointers to them. Strings and bytes point into the input
 * buffer (only _codecs.encode's latin-1 result is an owned copy). No opcode can recurse, so a
 * hostile pickle can cost at most the bounded object count, stack and memo. */
#include "io/pickle_dict.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    P_NONE, P_BOOL, P_INT, P_STR, P_BYTES, P_TUPLE, P_LIST, P_DICT, P_GLOBAL, P_ARRAY, P_DTYPE
} pkind;

typedef enum { G_RECONSTRUCT, G_NDARRAY, G_DTYPE, G_FROMBUFFER, G_ENCODE, G_BYTES } pglobal;

typedef struct pobj {
    pkind k;
    int64_t i;                /* P_INT, P_BOOL; P_GLOBAL: a pglobal */
    const uint8_t *p;         /* P_STR (UTF-8), P_BYTES */
    size_t n;
    struct pobj **items;      /* P_TUPLE, P_LIST; P_DICT: key, value, key, value, ... */
    size_t n_items, cap;
    uint8_t *owned;           /* P_BYTES made by _codecs.encode */
    /* P_DTYPE */
    char code[8];             /* 'f4', 'O8', ... */
    char order;               /* '<', '>', '|', '=' */
    /* P_ARRAY */
    bool built, fortran;
    int ndim;
    int64_t shape[SDC_NPY_MAX_DIMS];
    struct pobj *dtype, *data; /* data: P_BYTES, or P_LIST for object arrays */
} pobj;

typedef struct {
    const uint8_t *b;
    size_t len, pos, op_at;   /* op_at: offset of the opcode being run, for messages */
    const char *label;
    sdc_error *err;
    pobj **objs;              /* every object, for freeing */
    size_t n_objs, cap_objs;
    pobj **stack;
    size_t sp, cap_stack;
    size_t marks[256];        /* stack heights at MARK */
    int n_marks;
    pobj **memo;
    size_t cap_memo, n_memo;  /* n_memo: MEMOIZE's next key */
    size_t n_slots;           /* container items, all together */
} pm;

static sdc_status pfail(pm *m, sdc_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static sdc_status pfail(pm *m, sdc_status code, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sdc_fail(m->err, code, "%s: pickle offset %zu: %s", m->label, m->op_at, msg);
}

static pobj *new_obj(pm *m, pkind k) {
    if (m->n_objs == SDC_PICKLE_MAX_OBJECTS) {
        pfail(m, SDC_E_LIMIT, "more than %d objects", SDC_PICKLE_MAX_OBJECTS);
        return NULL;
    }
    if (m->n_objs == m->cap_objs) {
        size_t cap = m->cap_objs ? 2 * m->cap_objs : 64;
        pobj **o = realloc(m->objs, cap * sizeof *o);
        if (!o) {
            pfail(m, SDC_E_NOMEM, "out of memory");
            return NULL;
        }
        m->objs = o;
        m->cap_objs = cap;
    }
    pobj *o = calloc(1, sizeof *o);
    if (!o) {
        pfail(m, SDC_E_NOMEM, "out of memory");
        return NULL;
    }
    o->k = k;
    m->objs[m->n_objs++] = o;
    return o;
}

static sdc_status push(pm *m, pobj *o) {
    if (!o) return m->err ? m->err->code : SDC_E_NOMEM;
    if (m->sp == SDC_PICKLE_MAX_STACK) return pfail(m, SDC_E_LIMIT, "stack deeper than %d", SDC_PICKLE_MAX_STACK);
    if (m->sp == m->cap_stack) {
        size_t cap = m->cap_stack ? 2 * m->cap_stack : 64;
        pobj **s = realloc(m->stack, cap * sizeof *s);
        if (!s) return pfail(m, SDC_E_NOMEM, "out of memory");
        m->stack = s;
        m->cap_stack = cap;
    }
    m->stack[m->sp++] = o;
    return SDC_OK;
}

static pobj *pop(pm *m) {
    size_t floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
    if (m->sp <= floor) {
        pfail(m, SDC_E_FORMAT, "stack underflow");
        return NULL;
    }
    return m->stack[--m->sp];
}

static pobj *top(pm *m) {
    size_t floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
    if (m->sp <= floor) {
        pfail(m, SDC_E_FORMAT, "stack underflow");
        return NULL;
    }
    return m->stack[m->sp - 1];
}

/* The object just below stack height `from` (the list or dict under a MARK's items). */
static pobj *below(pm *m, size_t from) {
    size_t floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
    if (from <= floor) {
        pfail(m, SDC_E_FORMAT, "stack underflow");
        return NULL;
    }
    return m->stack[from - 1];
}

static sdc_status add_item(pm *m, pobj *c, pobj *x) {
    if (m->n_slots >= (size_t)SDC_PICKLE_MAX_OBJECTS * 8)
        return pfail(m, SDC_E_LIMIT, "containers hold too many items");
    if (c->n_items == c->cap) {
        size_t cap = c->cap ? 2 * c->cap : 4;
        pobj **it = realloc(c->items, cap * sizeof *it);
        if (!it) return pfail(m, SDC_E_NOMEM, "out of memory");
        c->items = it;
        c->cap = cap;
    }
    c->items[c->n_items++] = x;
    m->n_slots++;
    return SDC_OK;
}

/* Reads n little-endian bytes as an unsigned number. */
static sdc_status take(pm *m, size_t n, const uint8_t **p) {
    if (m->len - m->pos < n) return pfail(m, SDC_E_FORMAT, "truncated");
    *p = m->b + m->pos;
    m->pos += n;
    return SDC_OK;
}

static sdc_status take_uint(pm *m, size_t n, uint64_t *v) {
    const uint8_t *p = NULL;
    SDC_TRY(take(m, n, &p));
    uint64_t r = 0;
    for (size_t i = 0; i < n; i++) r |= (uint64_t)p[i] << (8 * i);
    *v = r;
    return SDC_OK;
}

static bool str_is(const pobj *o, const char *s) {
    return o && o->k == P_STR && o->n == strlen(s) && memcmp(o->p, s, o->n) == 0;
}

/* The allowed callables, by module and name. */
static sdc_status find_global(pm *m, const uint8_t *mod, size_t nm, const uint8_t *name, size_t nn) {
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
        if (strlen(ok[i].mod) == nm && memcmp(ok[i].mod, mod, nm) == 0 &&
            strlen(ok[i].name) == nn && memcmp(ok[i].name, name, nn) == 0) {
            pobj *o = new_obj(m, P_GLOBAL);
            if (o) o->i = ok[i].g;
            return push(m, o);
        }
    int pm_ = nm > 60 ? 60 : (int)nm, pn = nn > 60 ? 60 : (int)nn;
    for (size_t i = 0; i < nm + nn; i++) {
        uint8_t c = i < nm ? mod[i] : name[i - nm];
        if (c < 0x20 || c >= 0x7f) return pfail(m, SDC_E_UNSUPPORTED, "refers to a non-ASCII global; only numpy arrays are read");
    }
    return pfail(m, SDC_E_UNSUPPORTED, "refers to '%.*s.%.*s'; only numpy float32 arrays in a dict are read (nothing is executed)",
                 pm_, (const char *)mod, pn, (const char *)name);
}

static bool valid_shape(pobj *t, int *ndim, int64_t *shape) {
    if (!t || t->k != P_TUPLE || t->n_items > SDC_NPY_MAX_DIMS) return false;
    for (size_t i = 0; i < t->n_items; i++) {
        if (t->items[i]->k != P_INT || t->items[i]->i < 0) return false;
        shape[i] = t->items[i]->i;
    }
    *ndim = (int)t->n_items;
    return true;
}

/* REDUCE: callable(*args) for the allowed callables only. */
static sdc_status reduce(pm *m) {
    pobj *args = pop(m), *fn = pop(m);
    if (!args || !fn) return m->err->code;
    if (fn->k != P_GLOBAL || args->k != P_TUPLE) return pfail(m, SDC_E_UNSUPPORTED, "REDUCE of something that is not an allowed global");
    pobj **a = args->items;
    size_t na = args->n_items;
    switch ((pglobal)fn->i) {
    case G_RECONSTRUCT: /* _reconstruct(ndarray, (0,), b'b') */
        if (na != 3 || a[0]->k != P_GLOBAL || a[0]->i != G_NDARRAY)
            return pfail(m, SDC_E_UNSUPPORTED, "_reconstruct of something other than numpy.ndarray");
        return push(m, new_obj(m, P_ARRAY));
    case G_DTYPE: { /* dtype('f4', False, True) */
        if (na < 1 || a[0]->k != P_STR || a[0]->n == 0 || a[0]->n >= sizeof(((pobj *)0)->code))
            return pfail(m, SDC_E_UNSUPPORTED, "numpy.dtype with an unexpected argument");
        pobj *d = new_obj(m, P_DTYPE);
        if (d) {
            memcpy(d->code, a[0]->p, a[0]->n);
            d->order = '=';
        }
        return push(m, d);
    }
    case G_FROMBUFFER: { /* _frombuffer(buf, dtype, shape, order) */
        pobj *arr = new_obj(m, P_ARRAY);
        if (!arr) return m->err->code;
        if (na != 4 || a[0]->k != P_BYTES || a[1]->k != P_DTYPE ||
            !valid_shape(a[2], &arr->ndim, arr->shape) || !(str_is(a[3], "C") || str_is(a[3], "F")))
            return pfail(m, SDC_E_UNSUPPORTED, "_frombuffer with unexpected arguments");
        arr->data = a[0];
        arr->dtype = a[1];
        arr->fortran = str_is(a[3], "F");
        arr->built = true;
        return push(m, arr);
    }
    case G_ENCODE: { /* _codecs.encode('...', 'latin1'): the str's code points are the bytes */
        if (na != 2 || a[0]->k != P_STR || !(str_is(a[1], "latin1") || str_is(a[1], "latin-1")))
            return pfail(m, SDC_E_UNSUPPORTED, "_codecs.encode with unexpected arguments");
        pobj *o = new_obj(m, P_BYTES);
        if (!o) return m->err->code;
        if (!(o->owned = malloc(a[0]->n ? a[0]->n : 1))) return pfail(m, SDC_E_NOMEM, "out of memory");
        const uint8_t *s = a[0]->p;
        size_t n = 0;
        for (size_t i = 0; i < a[0]->n; i++) {
            if (s[i] < 0x80) {
                o->owned[n++] = s[i];
            } else if ((s[i] & 0xe0) == 0xc0 && s[i] <= 0xc3 && i + 1 < a[0]->n && (s[i + 1] & 0xc0) == 0x80) {
                o->owned[n++] = (uint8_t)(((s[i] & 0x03) << 6) | (s[i + 1] & 0x3f));
                i++;
            } else {
                return pfail(m, SDC_E_FORMAT, "_codecs.encode of a str that is not latin-1");
            }
        }
        o->p = o->owned;
        o->n = n;
        return push(m, o);
    }
    case G_BYTES: { /* bytes() */
        if (na != 0) return pfail(m, SDC_E_UNSUPPORTED, "bytes() with arguments");
        pobj *o = new_obj(m, P_BYTES);
        if (o) o->p = (const uint8_t *)"";
        return push(m, o);
    }
    case G_NDARRAY:
        break;
    }
    return pfail(m, SDC_E_UNSUPPORTED, "REDUCE of numpy.ndarray itself");
}

/* BUILD: set the state of a dtype or an array made by _reconstruct. */
static sdc_status build(pm *m) {
    pobj *st = pop(m), *o = top(m);
    if (!st || !o) return m->err->code;
    if (st->k != P_TUPLE) return pfail(m, SDC_E_UNSUPPORTED, "BUILD with a state that is not a tuple");
    pobj **s = st->items;
    if (o->k == P_DTYPE) { /* (3, '<', None, None, None, -1, -1, flags) */
        if (st->n_items < 2 || s[1]->k != P_STR || s[1]->n != 1)
            return pfail(m, SDC_E_UNSUPPORTED, "unexpected numpy.dtype state");
        o->order = (char)s[1]->p[0];
        return SDC_OK;
    }
    if (o->k == P_ARRAY && !o->built) { /* ([1,] shape, dtype, is_fortran, data) */
        size_t off = st->n_items == 5 ? 1 : 0;
        if ((st->n_items != 4 && st->n_items != 5) || !valid_shape(s[off], &o->ndim, o->shape) ||
            s[off + 1]->k != P_DTYPE || s[off + 2]->k != P_BOOL ||
            (s[off + 3]->k != P_BYTES && s[off + 3]->k != P_LIST))
            return pfail(m, SDC_E_UNSUPPORTED, "unexpected numpy.ndarray state");
        o->dtype = s[off + 1];
        o->fortran = s[off + 2]->i != 0;
        o->data = s[off + 3];
        o->built = true;
        return SDC_OK;
    }
    return pfail(m, SDC_E_UNSUPPORTED, "BUILD on something other than a new numpy array or dtype");
}

static sdc_status memo_put(pm *m, uint64_t key) {
    pobj *o = top(m);
    if (!o) return m->err->code;
    if (key >= SDC_PICKLE_MAX_MEMO) return pfail(m, SDC_E_LIMIT, "memo key %llu too large", (unsigned long long)key);
    if (key >= m->cap_memo) {
        size_t cap = m->cap_memo ? m->cap_memo : 64;
        while (cap <= key) cap *= 2;
        pobj **nm = realloc(m->memo, cap * sizeof *nm);
        if (!nm) return pfail(m, SDC_E_NOMEM, "out of memory");
        memset(nm + m->cap_memo, 0, (cap - m->cap_memo) * sizeof *nm);
        m->memo = nm;
        m->cap_memo = cap;
    }
    m->memo[key] = o;
    return SDC_OK;
}

static sdc_status memo_get(pm *m, uint64_t key) {
    if (key >= m->cap_memo || !m->memo[key]) return pfail(m, SDC_E_FORMAT, "memo key %llu not set", (unsigned long long)key);
    return push(m, m->memo[key]);
}

/* Pops back to the last MARK; the popped items are m->stack[*from .. m->sp). */
static sdc_status pop_mark(pm *m, size_t *from) {
    if (m->n_marks == 0) return pfail(m, SDC_E_FORMAT, "no MARK");
    *from = m->marks[--m->n_marks];
    return SDC_OK;
}

static sdc_status tuple_from(pm *m, size_t from) {
    size_t n = m->sp - from;
    pobj *t = new_obj(m, P_TUPLE);
    if (!t) return m->err->code;
    for (size_t i = 0; i < n; i++) SDC_TRY(add_item(m, t, m->stack[from + i]));
    m->sp = from;
    return push(m, t);
}

static sdc_status set_items(pm *m, pobj *d, pobj **kv, size_t n) {
    if (d->k != P_DICT) return pfail(m, SDC_E_FORMAT, "SETITEM on something that is not a dict");
    if (n % 2) return pfail(m, SDC_E_FORMAT, "SETITEMS with an odd number of items");
    for (size_t i = 0; i < n; i += 2) {
        if (kv[i]->k != P_STR) return pfail(m, SDC_E_UNSUPPORTED, "a dict key that is not a str");
        size_t j = 0;
        for (; j < d->n_items; j += 2) /* a repeated key replaces the value, as in Python */
            if (d->items[j]->n == kv[i]->n && memcmp(d->items[j]->p, kv[i]->p, kv[i]->n) == 0) break;
        if (j < d->n_items) {
            d->items[j + 1] = kv[i + 1];
        } else {
            if (d->n_items / 2 >= SDC_PICKLE_MAX_ITEMS) return pfail(m, SDC_E_LIMIT, "dict has more than %d entries", SDC_PICKLE_MAX_ITEMS);
            SDC_TRY(add_item(m, d, kv[i]));
            SDC_TRY(add_item(m, d, kv[i + 1]));
        }
    }
    return SDC_OK;
}

static sdc_status run(pm *m, pobj **result) {
    for (;;) {
        m->op_at = m->pos;
        const uint8_t *p = NULL;
        uint64_t v;
        SDC_TRY(take(m, 1, &p));
        uint8_t op = *p;
        switch (op) {
        case 0x80: /* PROTO */
            SDC_TRY(take_uint(m, 1, &v));
            if (v < 2 || v > 5) return pfail(m, SDC_E_UNSUPPORTED, "pickle protocol %llu (2 to 5 are read)", (unsigned long long)v);
            break;
        case 0x95: /* FRAME: a length hint only */
            SDC_TRY(take_uint(m, 8, &v));
            break;
        case '.': { /* STOP */
            pobj *r = pop(m);
            if (!r) return m->err->code;
            *result = r;
            return SDC_OK;
        }
        case '(': /* MARK */
            if (m->n_marks == (int)(sizeof m->marks / sizeof m->marks[0])) return pfail(m, SDC_E_LIMIT, "MARKs nested too deeply");
            m->marks[m->n_marks++] = m->sp;
            break;
        case 'q': SDC_TRY(take_uint(m, 1, &v)); SDC_TRY(memo_put(m, v)); break; /* BINPUT */
        case 'r': SDC_TRY(take_uint(m, 4, &v)); SDC_TRY(memo_put(m, v)); break; /* LONG_BINPUT */
        case 0x94: SDC_TRY(memo_put(m, m->n_memo)); m->n_memo++; break;          /* MEMOIZE */
        case 'h': SDC_TRY(take_uint(m, 1, &v)); SDC_TRY(memo_get(m, v)); break; /* BINGET */
        case 'j': SDC_TRY(take_uint(m, 4, &v)); SDC_TRY(memo_get(m, v)); break; /* LONG_BINGET */
        case 'N': SDC_TRY(push(m, new_obj(m, P_NONE))); break;
        case 0x88: case 0x89: { /* NEWTRUE, NEWFALSE */
            pobj *o = new_obj(m, P_BOOL);
            if (o) o->i = op == 0x88;
            SDC_TRY(push(m, o));
            break;
        }
        case 'K': case 'M': case 'J': { /* BININT1, BININT2, BININT (signed 32-bit) */
            SDC_TRY(take_uint(m, op == 'K' ? 1 : op == 'M' ? 2 : 4, &v));
            pobj *o = new_obj(m, P_INT);
            if (o) o->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
            SDC_TRY(push(m, o));
            break;
        }
        case 0x8a: { /* LONG1: n-byte little-endian two's complement */
            uint64_t n;
            SDC_TRY(take_uint(m, 1, &n));
            if (n > 8) return pfail(m, SDC_E_UNSUPPORTED, "integer wider than 64 bits");
            SDC_TRY(take_uint(m, (size_t)n, &v));
            if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~(uint64_t)0 << (8 * n);
            pobj *o = new_obj(m, P_INT);
            if (o) o->i = (int64_t)v;
            SDC_TRY(push(m, o));
            break;
        }
        case 'X': case 0x8c: case 0x8d:             /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8 */
        case 'C': case 'B': case 0x8e: case 0x96: { /* SHORT_BINBYTES, BINBYTES, BINBYTES8, BYTEARRAY8 */
            size_t w = op == 0x8c || op == 'C' ? 1 : op == 'X' || op == 'B' ? 4 : 8;
            SDC_TRY(take_uint(m, w, &v));
            if (v > m->len - m->pos) return pfail(m, SDC_E_FORMAT, "string or bytes run past the end");
            SDC_TRY(take(m, (size_t)v, &p));
            bool str = op == 'X' || op == 0x8c || op == 0x8d;
            pobj *o = new_obj(m, str ? P_STR : P_BYTES);
            if (o) {
                o->p = p;
                o->n = (size_t)v;
            }
            SDC_TRY(push(m, o));
            break;
        }
        case ')': SDC_TRY(push(m, new_obj(m, P_TUPLE))); break; /* EMPTY_TUPLE */
        case 0x85: case 0x86: case 0x87: {                      /* TUPLE1, TUPLE2, TUPLE3 */
            size_t n = (size_t)(op - 0x84), floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
            if (m->sp - floor < n) return pfail(m, SDC_E_FORMAT, "stack underflow");
            SDC_TRY(tuple_from(m, m->sp - n));
            break;
        }
        case 't': { /* TUPLE */
            size_t from = 0;
            SDC_TRY(pop_mark(m, &from));
            SDC_TRY(tuple_from(m, from));
            break;
        }
        case ']': SDC_TRY(push(m, new_obj(m, P_LIST))); break; /* EMPTY_LIST */
        case '}': SDC_TRY(push(m, new_obj(m, P_DICT))); break; /* EMPTY_DICT */
        case 'a': { /* APPEND */
            pobj *x = pop(m), *l = top(m);
            if (!x || !l) return m->err->code;
            if (l->k != P_LIST) return pfail(m, SDC_E_FORMAT, "APPEND to something that is not a list");
            SDC_TRY(add_item(m, l, x));
            break;
        }
        case 'e': { /* APPENDS */
            size_t from = 0;
            SDC_TRY(pop_mark(m, &from));
            pobj *l = below(m, from);
            if (!l) return m->err->code;
            if (l->k != P_LIST) return pfail(m, SDC_E_FORMAT, "APPENDS to something that is not a list");
            for (size_t i = from; i < m->sp; i++) SDC_TRY(add_item(m, l, m->stack[i]));
            m->sp = from;
            break;
        }
        case 's': { /* SETITEM */
            pobj *val = pop(m), *key = pop(m), *d = top(m);
            if (!val || !key || !d) return m->err->code;
            pobj *kv[2] = {key, val};
            SDC_TRY(set_items(m, d, kv, 2));
            break;
        }
        case 'u': { /* SETITEMS */
            size_t from = 0;
            SDC_TRY(pop_mark(m, &from));
            pobj *d = below(m, from);
            if (!d) return m->err->code;
            SDC_TRY(set_items(m, d, m->stack + from, m->sp - from));
            m->sp = from;
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            const uint8_t *s = m->b + m->pos, *end = m->b + m->len;
            const uint8_t *nl1 = memchr(s, '\n', (size_t)(end - s));
            const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
            if (!nl2) return pfail(m, SDC_E_FORMAT, "truncated GLOBAL");
            m->pos = (size_t)(nl2 + 1 - m->b);
            SDC_TRY(find_global(m, s, (size_t)(nl1 - s), nl1 + 1, (size_t)(nl2 - nl1 - 1)));
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            pobj *name = pop(m), *mod = pop(m);
            if (!name || !mod) return m->err->code;
            if (mod->k != P_STR || name->k != P_STR) return pfail(m, SDC_E_FORMAT, "STACK_GLOBAL of non-strings");
            SDC_TRY(find_global(m, mod->p, mod->n, name->p, name->n));
            break;
        }
        case 'R': SDC_TRY(reduce(m)); break;
        case 'b': SDC_TRY(build(m)); break;
        default:
            if (op >= 0x20 && op < 0x7f)
                return pfail(m, SDC_E_UNSUPPORTED, "opcode 0x%02x ('%c') is not allowed (only a dict of numpy float32 arrays is read)", op, op);
            return pfail(m, SDC_E_UNSUPPORTED, "opcode 0x%02x is not allowed (only a dict of numpy float32 arrays is read)", op);
        }
    }
}

/* Copies one float32 array out (reordering Fortran order to C order). */
static sdc_status take_array(pm *m, const pobj *key, const pobj *a, sdc_pickle_array *out,
                             size_t *budget) {
    int kl = key->n > 60 ? 60 : (int)key->n;
    const char *kp = (const char *)key->p;
    if (a->k != P_ARRAY || !a->built)
        return sdc_fail(m->err, SDC_E_UNSUPPORTED, "%s: dict entry '%.*s' is not a numpy array", m->label, kl, kp);
    const pobj *dt = a->dtype;
    if (strcmp(dt->code, "f4") != 0 || a->data->k != P_BYTES)
        return sdc_fail(m->err, SDC_E_UNSUPPORTED, "%s: array '%.*s' has dtype '%s'; only float32 is read", m->label, kl, kp, dt->code);
    if (dt->order != '<' && dt->order != '=' && dt->order != '|')
        return sdc_fail(m->err, SDC_E_UNSUPPORTED, "%s: array '%.*s' is big-endian", m->label, kl, kp);
    int64_t numel = 1;
    for (int i = 0; i < a->ndim; i++)
        if (__builtin_mul_overflow(numel, a->shape[i], &numel) || numel > (int64_t)(SIZE_MAX / 8))
            return sdc_fail(m->err, SDC_E_FORMAT, "%s: array '%.*s': shape too large", m->label, kl, kp);
    size_t bytes = (size_t)numel * sizeof(float);
    if (a->data->n != bytes)
        return sdc_fail(m->err, SDC_E_FORMAT, "%s: array '%.*s': %zu data bytes, its shape needs %zu", m->label, kl, kp, a->data->n, bytes);
    if (bytes > *budget)
        return sdc_fail(m->err, SDC_E_LIMIT, "%s: arrays total more bytes than the pickle holds", m->label);
    *budget -= bytes;
    out->name = malloc(key->n + 1);
    out->data = malloc(bytes ? bytes : 1);
    if (!out->name || !out->data) return sdc_fail(m->err, SDC_E_NOMEM, "%s: out of memory", m->label);
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
    pm m = {.b = buf, .len = len, .label = label, .err = err};
    sdc_error local;
    if (!err) m.err = &local;
    pobj *r = NULL;
    sdc_status st = run(&m, &r);
    if (st == SDC_OK && r->k == P_ARRAY && r->built && r->ndim == 0 && r->data->k == P_LIST) {
        if (r->data->n_items != 1) st = pfail(&m, SDC_E_UNSUPPORTED, "0-d object array without one element");
        else r = r->data->items[0]; /* np.save of a dict: the 0-d object array around it */
    }
    if (st == SDC_OK && r->k != P_DICT)
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
    for (size_t i = 0; i < m.n_objs; i++) {
        free(m.objs[i]->items);
        free(m.objs[i]->owned);
        free(m.objs[i]);
    }
    free(m.objs);
    free(m.stack);
    free(m.memo);
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
