/* src/io/pickle_vm.c: the restricted pickle machine (contract in pickle_vm.h).
 *
 * Layout: messages, objects and the stack, memo and marks, containers, the opcode loop. Every
 * allocation is bounded by a limit in the caller's config; no function recurses. */
#include "io/pickle_vm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sdc_status sdc_pv_fail(sdc_pv *m, sdc_status code, const char *fmt, ...) {
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sdc_fail(m->err, code, "%s: %s offset %zu: %s", m->cfg->label, m->cfg->where, m->op_at, msg);
}

sdc_status sdc_pv_status(const sdc_pv *m) { return m->err->code != SDC_OK ? m->err->code : SDC_E_NOMEM; }

bool sdc_pv_mem_is(const void *p, size_t n, const char *s) { return n == strlen(s) && memcmp(p, s, n) == 0; }

bool sdc_pv_str_is(const sdc_pv_obj *o, const char *s) { return o && o->kind == SDC_PV_STR && sdc_pv_mem_is(o->p, o->n, s); }

void sdc_pv_init(sdc_pv *m, const sdc_pv_config *cfg, const void *buf, size_t len, sdc_error *err) {
    memset(m, 0, sizeof *m);
    m->cfg = cfg;
    m->b = buf;
    m->len = len;
    m->err = err ? err : &m->local;
}

void sdc_pv_free(sdc_pv *m) {
    for (size_t i = 0; i < m->n_objs; i++) {
        free(m->objs[i]->items);
        free(m->objs[i]->ext);
        free(m->objs[i]);
    }
    free(m->objs);
    free(m->stack);
    free(m->memo);
    m->objs = m->stack = m->memo = NULL;
    m->n_objs = m->cap_objs = m->sp = m->cap_stack = m->cap_memo = 0;
}

/* ------------------------------------------------------------------ objects and the stack */

/* Room for one more pointer in *arr, which holds n of *cap: the capacity doubles from `first`. */
static sdc_status room(sdc_pv *m, sdc_pv_obj ***arr, size_t *cap, size_t n, size_t first) {
    if (n < *cap) return SDC_OK;
    size_t c = *cap ? 2 * *cap : first;
    sdc_pv_obj **a = realloc(*arr, c * sizeof *a);
    if (!a) return sdc_pv_fail(m, SDC_E_NOMEM, "out of memory");
    *arr = a;
    *cap = c;
    return SDC_OK;
}

sdc_pv_obj *sdc_pv_new(sdc_pv *m, sdc_pv_kind kind) {
    if (m->n_objs == m->cfg->max_objects) {
        sdc_pv_fail(m, SDC_E_LIMIT, "more than %zu objects", m->cfg->max_objects);
        return NULL;
    }
    if (room(m, &m->objs, &m->cap_objs, m->n_objs, 64) != SDC_OK) return NULL;
    sdc_pv_obj *o = calloc(1, sizeof *o);
    if (!o) {
        sdc_pv_fail(m, SDC_E_NOMEM, "out of memory");
        return NULL;
    }
    o->kind = kind;
    o->id = m->n_objs;
    m->objs[m->n_objs++] = o;
    return o;
}

sdc_pv_obj *sdc_pv_new_ext(sdc_pv *m, int tag, size_t size) {
    sdc_pv_obj *o = sdc_pv_new(m, SDC_PV_EXT);
    if (!o) return NULL;
    o->i = tag;
    if (!(o->ext = calloc(1, size ? size : 1))) {
        sdc_pv_fail(m, SDC_E_NOMEM, "out of memory");
        return NULL;
    }
    return o;
}

/* Pushes o; a NULL o (a failed sdc_pv_new) passes its failure on. */
static sdc_status push(sdc_pv *m, sdc_pv_obj *o) {
    if (!o) return sdc_pv_status(m);
    if (m->sp == m->cfg->max_stack) return sdc_pv_fail(m, SDC_E_LIMIT, "stack deeper than %zu", m->cfg->max_stack);
    SDC_TRY(room(m, &m->stack, &m->cap_stack, m->sp, 64));
    m->stack[m->sp++] = o;
    return SDC_OK;
}

/* The stack height below which the innermost MARK's items may not pop. */
static size_t floor_of(const sdc_pv *m) { return m->n_marks ? m->marks[m->n_marks - 1] : 0; }

/* The object just below stack height `from` (from == sp: the top), or NULL on underflow. */
static sdc_pv_obj *below(sdc_pv *m, size_t from) {
    if (from <= floor_of(m)) {
        sdc_pv_fail(m, SDC_E_FORMAT, "stack underflow");
        return NULL;
    }
    return m->stack[from - 1];
}

static sdc_pv_obj *top(sdc_pv *m) { return below(m, m->sp); }

static sdc_pv_obj *pop(sdc_pv *m) {
    sdc_pv_obj *o = top(m);
    if (o) m->sp--;
    return o;
}

/* ------------------------------------------------------------------ input, memo, marks */

static sdc_status take(sdc_pv *m, size_t n, const uint8_t **p) {
    if (m->len - m->pos < n) return sdc_pv_fail(m, SDC_E_FORMAT, "truncated");
    *p = m->b + m->pos;
    m->pos += n;
    return SDC_OK;
}

/* Reads n little-endian bytes as an unsigned number. */
static sdc_status take_uint(sdc_pv *m, size_t n, uint64_t *v) {
    const uint8_t *p = NULL;
    SDC_TRY(take(m, n, &p));
    uint64_t r = 0;
    for (size_t i = 0; i < n; i++) r |= (uint64_t)p[i] << (8 * i);
    *v = r;
    return SDC_OK;
}

static sdc_status memo_put(sdc_pv *m, uint64_t key) {
    sdc_pv_obj *o = top(m);
    if (!o) return m->err->code;
    if (key >= m->cfg->max_memo) return sdc_pv_fail(m, SDC_E_LIMIT, "memo key %llu too large", (unsigned long long)key);
    if (key >= m->cap_memo) {
        size_t cap = m->cap_memo ? m->cap_memo : 64;
        while (cap <= key) cap *= 2;
        sdc_pv_obj **nm = realloc(m->memo, cap * sizeof *nm);
        if (!nm) return sdc_pv_fail(m, SDC_E_NOMEM, "out of memory");
        memset(nm + m->cap_memo, 0, (cap - m->cap_memo) * sizeof *nm);
        m->memo = nm;
        m->cap_memo = cap;
    }
    m->memo[key] = o;
    return SDC_OK;
}

static sdc_status memo_get(sdc_pv *m, uint64_t key) {
    if (key >= m->cap_memo || !m->memo[key])
        return sdc_pv_fail(m, SDC_E_FORMAT, "memo key %llu not set", (unsigned long long)key);
    return push(m, m->memo[key]);
}

/* Pops back to the last MARK; the popped items are m->stack[*from .. m->sp). */
static sdc_status pop_mark(sdc_pv *m, size_t *from) {
    if (m->n_marks == 0) return sdc_pv_fail(m, SDC_E_FORMAT, "no MARK");
    *from = m->marks[--m->n_marks];
    return SDC_OK;
}

/* ------------------------------------------------------------------ containers */

sdc_status sdc_pv_add_item(sdc_pv *m, sdc_pv_obj *c, sdc_pv_obj *x) {
    if (m->n_slots >= m->cfg->max_objects * 8) return sdc_pv_fail(m, SDC_E_LIMIT, "containers hold too many items");
    SDC_TRY(room(m, &c->items, &c->cap, c->n_items, 4));
    c->items[c->n_items++] = x;
    m->n_slots++;
    return SDC_OK;
}

/* Replaces the stack from height `from` up with one tuple of those items. */
static sdc_status tuple_from(sdc_pv *m, size_t from) {
    sdc_pv_obj *t = sdc_pv_new(m, SDC_PV_TUPLE);
    if (!t) return m->err->code;
    for (size_t i = from; i < m->sp; i++) SDC_TRY(sdc_pv_add_item(m, t, m->stack[i]));
    m->sp = from;
    return push(m, t);
}

/* Appends the n objects at x to the list l; `op` names the opcode in a refusal. */
static sdc_status append_items(sdc_pv *m, sdc_pv_obj *l, sdc_pv_obj **x, size_t n, const char *op) {
    if (l->kind != SDC_PV_LIST) return sdc_pv_fail(m, SDC_E_FORMAT, "%s to something that is not a list", op);
    for (size_t i = 0; i < n; i++) SDC_TRY(sdc_pv_add_item(m, l, x[i]));
    return SDC_OK;
}

/* d[k] = v for the n/2 pairs at kv; a repeated str key replaces the value, as in Python. */
static sdc_status set_items(sdc_pv *m, sdc_pv_obj *d, sdc_pv_obj **kv, size_t n) {
    if (d->kind != SDC_PV_DICT) return sdc_pv_fail(m, SDC_E_FORMAT, "SETITEM on something that is not a dict");
    if (n % 2) return sdc_pv_fail(m, SDC_E_FORMAT, "SETITEMS with an odd number of items");
    for (size_t i = 0; i < n; i += 2) {
        sdc_pv_obj *k = kv[i];
        if (k->kind != SDC_PV_STR && m->cfg->str_keys_only)
            return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "a dict key that is not a str");
        size_t j = 0;
        if (k->kind == SDC_PV_STR)
            for (; j < d->n_items; j += 2)
                if (d->items[j]->kind == SDC_PV_STR && d->items[j]->n == k->n && memcmp(d->items[j]->p, k->p, k->n) == 0)
                    break;
        if (k->kind == SDC_PV_STR && j < d->n_items) {
            d->items[j + 1] = kv[i + 1];
        } else {
            if (m->cfg->max_dict_items && d->n_items / 2 >= m->cfg->max_dict_items)
                return sdc_pv_fail(m, SDC_E_LIMIT, "dict has more than %zu entries", m->cfg->max_dict_items);
            SDC_TRY(sdc_pv_add_item(m, d, k));
            SDC_TRY(sdc_pv_add_item(m, d, kv[i + 1]));
        }
    }
    return SDC_OK;
}

/* ------------------------------------------------------------------ globals and calls */

/* Pushes the allowed global module.name, or refuses it by name. */
static sdc_status find_global(sdc_pv *m, const uint8_t *mod, size_t nm, const uint8_t *name, size_t nn) {
    int g = m->cfg->hooks.global(m->cfg->ctx, mod, nm, name, nn);
    if (g >= 0) {
        sdc_pv_obj *o = sdc_pv_new(m, SDC_PV_GLOBAL);
        if (o) o->i = g;
        return push(m, o);
    }
    for (size_t i = 0; i < nm + nn; i++) {
        uint8_t c = i < nm ? mod[i] : name[i - nm];
        if (c < 0x20 || c >= 0x7f) return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "refers to a non-ASCII global (nothing is executed)");
    }
    return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "refers to '%.*s.%.*s'%s (nothing is executed)", nm > 60 ? 60 : (int)nm,
                       (const char *)mod, nn > 60 ? 60 : (int)nn, (const char *)name, m->cfg->refused);
}

static sdc_status reduce(sdc_pv *m) {
    sdc_pv_obj *args = pop(m), *fn = pop(m), *out = NULL;
    if (!args || !fn) return m->err->code;
    if (fn->kind != SDC_PV_GLOBAL || args->kind != SDC_PV_TUPLE)
        return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "REDUCE of something that is not an allowed global");
    SDC_TRY(m->cfg->hooks.reduce(m, fn, args->items, args->n_items, &out));
    return push(m, out);
}

static sdc_status build(sdc_pv *m) {
    sdc_pv_obj *st = pop(m), *o = top(m);
    if (!st || !o) return m->err->code;
    return m->cfg->hooks.build(m, o, st);
}

static sdc_status newobj(sdc_pv *m) {
    sdc_pv_obj *args = pop(m), *cls = pop(m), *out = NULL;
    if (!args || !cls) return m->err->code;
    SDC_TRY(m->cfg->hooks.newobj(m, cls, args, &out));
    return push(m, out);
}

static sdc_status persistent_load(sdc_pv *m) {
    sdc_pv_obj *pid = pop(m), *out = NULL;
    if (!pid) return m->err->code;
    SDC_TRY(m->cfg->hooks.persistent_load(m, pid, &out));
    return push(m, out);
}

/* ------------------------------------------------------------------ the opcode loop */

/* Whether op is one of the opcodes the caller opted into (see sdc_pv_config.opcodes). */
static bool opted_in(const sdc_pv *m, uint8_t op) {
    const sdc_pv_config *c = m->cfg;
    switch (op) {
    case 'G': return c->opcodes & SDC_PV_OP_BINFLOAT;
    case 'U': case 'T': return c->opcodes & SDC_PV_OP_BINSTRING;
    case 0x96: return c->opcodes & SDC_PV_OP_BYTEARRAY8;
    case 'Q': return c->hooks.persistent_load != NULL;
    case 0x81: return c->hooks.newobj != NULL;
    default: return true;
    }
}

static sdc_status refuse_opcode(sdc_pv *m, uint8_t op) {
    if (op >= 0x20 && op < 0x7f)
        return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "opcode 0x%02x ('%c') is not allowed (%s)", op, op, m->cfg->reads);
    return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "opcode 0x%02x is not allowed (%s)", op, m->cfg->reads);
}

/* A str or bytes opcode: its length field, its bytes, one object. */
static sdc_status string_op(sdc_pv *m, uint8_t op) {
    size_t w = op == 0x8c || op == 'C' || op == 'U' ? 1 : op == 'X' || op == 'B' || op == 'T' ? 4 : 8;
    uint64_t v;
    const uint8_t *p = NULL;
    SDC_TRY(take_uint(m, w, &v));
    if (v > m->len - m->pos) return sdc_pv_fail(m, SDC_E_FORMAT, "string or bytes run past the end");
    SDC_TRY(take(m, (size_t)v, &p));
    bool str = op == 'X' || op == 0x8c || op == 0x8d || op == 'U' || op == 'T';
    sdc_pv_obj *o = sdc_pv_new(m, str ? SDC_PV_STR : SDC_PV_BYTES);
    if (o) {
        o->p = p;
        o->n = (size_t)v;
    }
    return push(m, o);
}

sdc_status sdc_pv_run(sdc_pv *m, sdc_pv_obj **result) {
    for (;;) {
        m->op_at = m->pos;
        const uint8_t *p = NULL;
        uint64_t v;
        SDC_TRY(take(m, 1, &p));
        uint8_t op = *p;
        if (!opted_in(m, op)) return refuse_opcode(m, op);
        switch (op) {
        case 0x80: /* PROTO */
            SDC_TRY(take_uint(m, 1, &v));
            if (v < (uint64_t)m->cfg->min_proto || v > 5)
                return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "pickle protocol %llu (%d to 5 are read)", (unsigned long long)v,
                                   m->cfg->min_proto);
            break;
        case 0x95: SDC_TRY(take_uint(m, 8, &v)); break; /* FRAME: a length hint only */
        case '.': {                                     /* STOP */
            sdc_pv_obj *r = pop(m);
            if (!r) return m->err->code;
            *result = r;
            return SDC_OK;
        }
        case '(': /* MARK */
            if (m->n_marks == (int)(sizeof m->marks / sizeof m->marks[0]))
                return sdc_pv_fail(m, SDC_E_LIMIT, "MARKs nested too deeply");
            m->marks[m->n_marks++] = m->sp;
            break;
        case 'q': SDC_TRY(take_uint(m, 1, &v)); SDC_TRY(memo_put(m, v)); break; /* BINPUT */
        case 'r': SDC_TRY(take_uint(m, 4, &v)); SDC_TRY(memo_put(m, v)); break; /* LONG_BINPUT */
        case 0x94: SDC_TRY(memo_put(m, m->n_memo)); m->n_memo++; break;          /* MEMOIZE */
        case 'h': SDC_TRY(take_uint(m, 1, &v)); SDC_TRY(memo_get(m, v)); break; /* BINGET */
        case 'j': SDC_TRY(take_uint(m, 4, &v)); SDC_TRY(memo_get(m, v)); break; /* LONG_BINGET */
        case 'N': SDC_TRY(push(m, sdc_pv_new(m, SDC_PV_NONE))); break;
        case 0x88: case 0x89: { /* NEWTRUE, NEWFALSE */
            sdc_pv_obj *o = sdc_pv_new(m, SDC_PV_BOOL);
            if (o) o->i = op == 0x88;
            SDC_TRY(push(m, o));
            break;
        }
        case 'K': case 'M': case 'J': { /* BININT1, BININT2, BININT (signed 32-bit) */
            SDC_TRY(take_uint(m, op == 'K' ? 1 : op == 'M' ? 2 : 4, &v));
            sdc_pv_obj *o = sdc_pv_new(m, SDC_PV_INT);
            if (o) o->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)v : (int64_t)v;
            SDC_TRY(push(m, o));
            break;
        }
        case 0x8a: { /* LONG1: n-byte little-endian two's complement */
            uint64_t n;
            SDC_TRY(take_uint(m, 1, &n));
            if (n > 8) return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "integer wider than 64 bits");
            SDC_TRY(take_uint(m, (size_t)n, &v));
            if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~(uint64_t)0 << (8 * n);
            sdc_pv_obj *o = sdc_pv_new(m, SDC_PV_INT);
            if (o) o->i = (int64_t)v;
            SDC_TRY(push(m, o));
            break;
        }
        case 'G': { /* BINFLOAT: big-endian double */
            SDC_TRY(take(m, 8, &p));
            uint64_t bits = 0;
            for (int i = 0; i < 8; i++) bits = bits << 8 | p[i];
            sdc_pv_obj *o = sdc_pv_new(m, SDC_PV_FLOAT);
            if (o) memcpy(&o->f, &bits, 8);
            SDC_TRY(push(m, o));
            break;
        }
        case 'X': case 0x8c: case 0x8d: case 'U': case 'T': /* BINUNICODE, SHORT_BINUNICODE, BINUNICODE8, py2 */
        case 'C': case 'B': case 0x8e: case 0x96:           /* SHORT_BINBYTES, BINBYTES, BINBYTES8, BYTEARRAY8 */
            SDC_TRY(string_op(m, op));
            break;
        case ')': SDC_TRY(push(m, sdc_pv_new(m, SDC_PV_TUPLE))); break; /* EMPTY_TUPLE */
        case 0x85: case 0x86: case 0x87: {                              /* TUPLE1, TUPLE2, TUPLE3 */
            size_t n = (size_t)(op - 0x84);
            if (m->sp - floor_of(m) < n) return sdc_pv_fail(m, SDC_E_FORMAT, "stack underflow");
            SDC_TRY(tuple_from(m, m->sp - n));
            break;
        }
        case 't': { /* TUPLE */
            size_t from = 0;
            SDC_TRY(pop_mark(m, &from));
            SDC_TRY(tuple_from(m, from));
            break;
        }
        case ']': SDC_TRY(push(m, sdc_pv_new(m, SDC_PV_LIST))); break; /* EMPTY_LIST */
        case '}': SDC_TRY(push(m, sdc_pv_new(m, SDC_PV_DICT))); break; /* EMPTY_DICT */
        case 'a': { /* APPEND */
            sdc_pv_obj *x = pop(m), *l = top(m);
            if (!x || !l) return m->err->code;
            SDC_TRY(append_items(m, l, &x, 1, "APPEND"));
            break;
        }
        case 's': { /* SETITEM */
            sdc_pv_obj *val = pop(m), *key = pop(m), *d = top(m);
            if (!val || !key || !d) return m->err->code;
            sdc_pv_obj *kv[2] = {key, val};
            SDC_TRY(set_items(m, d, kv, 2));
            break;
        }
        case 'e': case 'u': { /* APPENDS, SETITEMS: the items since MARK into the object under them */
            size_t from = 0;
            SDC_TRY(pop_mark(m, &from));
            sdc_pv_obj *c = below(m, from);
            if (!c) return m->err->code;
            if (op == 'e') SDC_TRY(append_items(m, c, m->stack + from, m->sp - from, "APPENDS"));
            else SDC_TRY(set_items(m, c, m->stack + from, m->sp - from));
            m->sp = from;
            break;
        }
        case 'c': { /* GLOBAL "module\nname\n" */
            const uint8_t *s = m->b + m->pos, *end = m->b + m->len;
            const uint8_t *nl1 = memchr(s, '\n', (size_t)(end - s));
            const uint8_t *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(end - nl1 - 1)) : NULL;
            if (!nl2) return sdc_pv_fail(m, SDC_E_FORMAT, "truncated GLOBAL");
            m->pos = (size_t)(nl2 + 1 - m->b);
            SDC_TRY(find_global(m, s, (size_t)(nl1 - s), nl1 + 1, (size_t)(nl2 - nl1 - 1)));
            break;
        }
        case 0x93: { /* STACK_GLOBAL */
            sdc_pv_obj *name = pop(m), *mod = pop(m);
            if (!name || !mod) return m->err->code;
            if (mod->kind != SDC_PV_STR || name->kind != SDC_PV_STR)
                return sdc_pv_fail(m, SDC_E_FORMAT, "STACK_GLOBAL of non-strings");
            SDC_TRY(find_global(m, mod->p, mod->n, name->p, name->n));
            break;
        }
        case 'R': SDC_TRY(reduce(m)); break;
        case 'b': SDC_TRY(build(m)); break;
        case 'Q': SDC_TRY(persistent_load(m)); break; /* BINPERSID */
        case 0x81: SDC_TRY(newobj(m)); break;         /* NEWOBJ */
        default: return refuse_opcode(m, op);
        }
    }
}
