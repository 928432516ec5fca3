/* src/io/torch_zip.c: torch.save zip archives and their restricted pickle (contract in
 * torch_zip.h).
 *
 * Layout of this file: zip directory; the pickle hooks for the shared machine in pickle_vm.h (the
 * allowed globals, REDUCE, BINPERSID, NEWOBJ, BUILD) and the object tree made from its result;
 * tensors out; writer. The tree's objects live in one list owned by the file and are freed
 * together; strings and tensor data point into the file image. */
#include "io/torch_zip.h"

#include "io/pickle_out.h"
#include "io/pickle_vm.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ============================================================================================ */
/* CRC-32                                                                                       */
/* ============================================================================================ */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t sdc_crc32(const void *buf, size_t n) {
    pthread_once(&crc_once, crc_init);
    const uint32_t *table = crc_table;
    const uint8_t *p = buf;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

/* ============================================================================================ */
/* Zip directory                                                                                */
/* ============================================================================================ */

typedef struct zentry {
    const char *name; /* into the image, not NUL-terminated */
    size_t name_len;
    const uint8_t *data;
    size_t size;
    uint32_t crc;
    int crc_checked;
} zentry;

struct sdc_torch_file {
    const uint8_t *b;
    size_t len;
    uint8_t *owned; /* the image when read from a file */
    char label[256];
    zentry *entries;
    size_t n_entries;
    const char *prefix; /* "archive/" */
    size_t prefix_len;
    sdc_torch_obj **objs; /* every object, for freeing */
    size_t n_objs, cap_objs;
    sdc_torch_obj *root;
};

static uint32_t rd16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | rd16(p + 2) << 16; }

static const uint8_t legacy_magic[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

static sdc_status zip_parse(sdc_torch_file *f, sdc_error *err) {
    const uint8_t *b = f->b;
    size_t len = f->len;
    const char *L = f->label;
    if (len >= sizeof legacy_magic && memcmp(b, legacy_magic, sizeof legacy_magic) == 0)
        return sdc_fail(err, SDC_E_UNSUPPORTED,
                        "%s: a legacy (torch < 1.6, not zip) torch.save file; load and re-save it with a newer torch", L);
    if (len < 22 || rd32(b) != 0x04034b50)
        return sdc_fail(err, SDC_E_FORMAT, "%s: not a torch.save zip archive (no zip signature)", L);
    /* the end-of-central-directory record: within the last 22 + 65535 bytes */
    size_t eocd = 0;
    int found = 0;
    for (size_t back = 22; back <= len && back <= 22 + 65535; back++) {
        size_t at = len - back;
        if (rd32(b + at) == 0x06054b50 && at + 22 + rd16(b + at + 20) == len) {
            eocd = at;
            found = 1;
            break;
        }
    }
    if (!found) return sdc_fail(err, SDC_E_FORMAT, "%s: zip end record missing (truncated file?)", L);
    uint32_t n = rd16(b + eocd + 10), cd_size = rd32(b + eocd + 12), cd_off = rd32(b + eocd + 16);
    if (n == 0xFFFF || cd_off == 0xFFFFFFFFu || cd_size == 0xFFFFFFFFu)
        return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: a zip64 archive; an embedding file is never that large", L);
    if (n > SDC_TORCH_MAX_ENTRIES)
        return sdc_fail(err, SDC_E_LIMIT, "%s: %u zip entries, more than %d", L, n, SDC_TORCH_MAX_ENTRIES);
    if ((size_t)cd_off > eocd || (size_t)cd_size > eocd - cd_off)
        return sdc_fail(err, SDC_E_FORMAT, "%s: zip central directory outside the file", L);
    f->entries = calloc(n ? n : 1, sizeof *f->entries);
    if (!f->entries) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", L);
    size_t p = cd_off, end = (size_t)cd_off + cd_size;
    for (uint32_t i = 0; i < n; i++) {
        if (end - p < 46 || rd32(b + p) != 0x02014b50)
            return sdc_fail(err, SDC_E_FORMAT, "%s: zip central directory entry %u is malformed", L, i);
        uint32_t flags = rd16(b + p + 8), method = rd16(b + p + 10), crc = rd32(b + p + 16);
        uint32_t csize = rd32(b + p + 20), usize = rd32(b + p + 24);
        size_t nl = rd16(b + p + 28), xl = rd16(b + p + 30), cl = rd16(b + p + 32);
        uint32_t loff = rd32(b + p + 42);
        if (end - p - 46 < nl + xl + cl)
            return sdc_fail(err, SDC_E_FORMAT, "%s: zip central directory entry %u runs past the directory", L, i);
        zentry *z = &f->entries[f->n_entries++];
        z->name = (const char *)b + p + 46;
        z->name_len = nl;
        int nn = nl > 80 ? 80 : (int)nl;
        if (flags & 1) return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: zip entry '%.*s' is encrypted", L, nn, z->name);
        if (method != 0)
            return sdc_fail(err, SDC_E_UNSUPPORTED, "%s: zip entry '%.*s' is compressed (method %u); torch.save stores entries",
                            L, nn, z->name, method);
        if (csize != usize || csize == 0xFFFFFFFFu)
            return sdc_fail(err, SDC_E_FORMAT, "%s: zip entry '%.*s' has inconsistent sizes", L, nn, z->name);
        if ((size_t)loff > cd_off || cd_off - loff < 30 || rd32(b + loff) != 0x04034b50)
            return sdc_fail(err, SDC_E_FORMAT, "%s: zip entry '%.*s': local header outside the file", L, nn, z->name);
        size_t data = (size_t)loff + 30 + rd16(b + loff + 26) + rd16(b + loff + 28);
        if (data > cd_off || (size_t)csize > cd_off - data)
            return sdc_fail(err, SDC_E_FORMAT, "%s: zip entry '%.*s': data runs past the archive", L, nn, z->name);
        z->data = b + data;
        z->size = csize;
        z->crc = crc;
        p += 46 + nl + xl + cl;
    }
    /* the archive's folder: the one holding data.pkl ("archive/" or the saved file's stem) */
    for (size_t i = 0; i < f->n_entries; i++) {
        const zentry *z = &f->entries[i];
        if (z->name_len > 9 && memcmp(z->name + z->name_len - 9, "/data.pkl", 9) == 0 &&
            memchr(z->name, '/', z->name_len - 9) == NULL) {
            f->prefix = z->name;
            f->prefix_len = z->name_len - 8;
            return SDC_OK;
        }
    }
    return sdc_fail(err, SDC_E_FORMAT, "%s: a zip without ARCHIVE/data.pkl, so not a torch.save file", L);
}

/* The entry ARCHIVE/<rest>, CRC-checked; NULL with err set when absent or corrupt. */
static const zentry *zip_get(sdc_torch_file *f, const char *rest, size_t rest_len, sdc_error *err) {
    for (size_t i = 0; i < f->n_entries; i++) {
        zentry *z = &f->entries[i];
        if (z->name_len == f->prefix_len + rest_len && memcmp(z->name, f->prefix, f->prefix_len) == 0 &&
            memcmp(z->name + f->prefix_len, rest, rest_len) == 0) {
            if (!z->crc_checked) {
                if (sdc_crc32(z->data, z->size) != z->crc) {
                    sdc_fail(err, SDC_E_FORMAT, "%s: zip entry '%.*s' fails its CRC-32 check", f->label,
                             (int)(z->name_len > 80 ? 80 : z->name_len), z->name);
                    return NULL;
                }
                z->crc_checked = 1;
            }
            return z;
        }
    }
    int rl = rest_len > 80 ? 80 : (int)rest_len;
    sdc_fail(err, SDC_E_FORMAT, "%s: zip entry '%.*s%.*s' is missing", f->label, (int)f->prefix_len, f->prefix, rl, rest);
    return NULL;
}

/* ============================================================================================ */
/* Pickle hooks: the allowed globals and what REDUCE, BINPERSID, NEWOBJ and BUILD make of them  */
/* ============================================================================================ */

typedef enum {
    G_ORDERED_DICT, G_SET, G_REBUILD_TENSOR, G_REBUILD_PARAM, G_REBUILD_PARAM_STATE, G_PARAMETER_DICT, G_STORAGE
} gkind;

static const struct {
    const char *mod, *name;
    gkind g;
    sdc_dtype dt;
} allowed[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, SDC_F32},
    {"builtins", "set", G_SET, SDC_F32},
    {"__builtin__", "set", G_SET, SDC_F32},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR, SDC_F32},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAM, SDC_F32},
    {"torch._utils", "_rebuild_parameter_with_state", G_REBUILD_PARAM_STATE, SDC_F32},
    {"torch.nn.modules.container", "ParameterDict", G_PARAMETER_DICT, SDC_F32},
    {"torch", "FloatStorage", G_STORAGE, SDC_F32},
    {"torch", "HalfStorage", G_STORAGE, SDC_F16},
    {"torch", "BFloat16Storage", G_STORAGE, SDC_BF16},
    {"torch", "DoubleStorage", G_STORAGE, SDC_F64},
    {"torch", "LongStorage", G_STORAGE, SDC_I64},
    {"torch", "IntStorage", G_STORAGE, SDC_I32},
    {"torch", "ShortStorage", G_STORAGE, SDC_I16},
    {"torch", "CharStorage", G_STORAGE, SDC_I8},
    {"torch", "ByteStorage", G_STORAGE, SDC_U8},
    {"torch", "BoolStorage", G_STORAGE, SDC_BOOL},
};

/* Tensors, storages and ParameterDict objects are the machine's EXT objects, tagged with their
 * sdc_torch_kind; their payload is already the sdc_torch_obj they become (plus an OBJECT's state,
 * a machine object until tree() translates it). */
typedef struct {
    sdc_torch_obj t;
    sdc_pv_obj *state;
} ext_obj;

static sdc_torch_obj *ext_of(const sdc_pv_obj *o, sdc_torch_kind k) {
    return o->kind == SDC_PV_EXT && o->i == (int64_t)k ? &((ext_obj *)o->ext)->t : NULL;
}

static sdc_torch_obj *new_ext(sdc_pv *m, sdc_torch_kind k, sdc_pv_obj **o) {
    *o = sdc_pv_new_ext(m, (int)k, sizeof(ext_obj));
    if (!*o) return NULL;
    sdc_torch_obj *t = &((ext_obj *)(*o)->ext)->t;
    t->kind = k;
    return t;
}

static int find_global(void *ctx, const uint8_t *mod, size_t nm, const uint8_t *name, size_t nn) {
    (void)ctx;
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        if (sdc_pv_mem_is(mod, nm, allowed[i].mod) && sdc_pv_mem_is(name, nn, allowed[i].name)) return (int)i;
    return -1;
}

static int is_global(const sdc_pv_obj *o, gkind g) { return o->kind == SDC_PV_GLOBAL && allowed[o->i].g == g; }

int sdc_torch_str_is(const sdc_torch_obj *o, const char *s) {
    return o && o->kind == SDC_TORCH_STR && sdc_pv_mem_is(o->s, o->n, s);
}

/* A tuple of non-negative ints, at most SDC_TORCH_MAX_DIMS long. */
static int int_tuple(const sdc_pv_obj *t, int *n, int64_t *v) {
    if (t->kind != SDC_PV_TUPLE || t->n_items > SDC_TORCH_MAX_DIMS) return 0;
    for (size_t i = 0; i < t->n_items; i++) {
        if (t->items[i]->kind != SDC_PV_INT || t->items[i]->i < 0) return 0;
        v[i] = t->items[i]->i;
    }
    *n = (int)t->n_items;
    return 1;
}

/* _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata]) */
static sdc_status rebuild_tensor(sdc_pv *m, sdc_pv_obj **a, size_t na, sdc_pv_obj **out) {
    const sdc_torch_file *f = m->cfg->ctx;
    const sdc_torch_obj *s = na >= 1 ? ext_of(a[0], SDC_TORCH_STORAGE) : NULL;
    if (na < 4 || na > 7 || !s || a[1]->kind != SDC_PV_INT || a[1]->i < 0)
        return sdc_pv_fail(m, SDC_E_FORMAT, "_rebuild_tensor_v2 with unexpected arguments");
    sdc_torch_obj *t = new_ext(m, SDC_TORCH_TENSOR, out);
    if (!t) return m->err->code;
    int ns = 0, nt = 0;
    if (!int_tuple(a[2], &ns, t->shape) || !int_tuple(a[3], &nt, t->stride) || ns != nt)
        return sdc_pv_fail(m, SDC_E_FORMAT, "_rebuild_tensor_v2: size and stride are not matching tuples of at most %d ints",
                           SDC_TORCH_MAX_DIMS);
    t->ndim = ns;
    t->dtype = s->dtype;
    t->data = s->data;
    t->storage_numel = s->storage_numel;
    t->offset = a[1]->i;
    /* the last element it addresses must lie inside the storage */
    int64_t last = t->offset, numel = 1;
    for (int d = 0; d < ns; d++) {
        if (__builtin_mul_overflow(numel, t->shape[d], &numel)) return sdc_pv_fail(m, SDC_E_FORMAT, "tensor size overflows");
        if (t->shape[d] == 0) continue;
        int64_t span;
        if (__builtin_mul_overflow(t->shape[d] - 1, t->stride[d], &span) || __builtin_add_overflow(last, span, &last))
            return sdc_pv_fail(m, SDC_E_FORMAT, "tensor strides overflow");
    }
    if (numel > (int64_t)f->len) /* bounds what a reader allocates, even for stride-0 views */
        return sdc_pv_fail(m, SDC_E_LIMIT, "a tensor of %lld elements in a file of %zu bytes", (long long)numel, f->len);
    if (numel > 0 && last >= t->storage_numel)
        return sdc_pv_fail(m, SDC_E_FORMAT, "a tensor reaches element %lld of a storage of %lld", (long long)last,
                           (long long)t->storage_numel);
    return SDC_OK;
}

/* REDUCE: callable(*args), for the allowed callables. */
static sdc_status reduce(sdc_pv *m, const sdc_pv_obj *fn, sdc_pv_obj **a, size_t na, sdc_pv_obj **out) {
    switch (allowed[fn->i].g) {
    case G_ORDERED_DICT:
        if (na != 0) return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "OrderedDict with arguments");
        *out = sdc_pv_new(m, SDC_PV_DICT);
        return *out ? SDC_OK : m->err->code;
    case G_SET: {
        if (na != 1 || a[0]->kind != SDC_PV_LIST) return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "set() of something other than a list");
        sdc_pv_obj *l = sdc_pv_new(m, SDC_PV_LIST);
        if (!l) return m->err->code;
        for (size_t i = 0; i < a[0]->n_items; i++) SDC_TRY(sdc_pv_add_item(m, l, a[0]->items[i]));
        *out = l;
        return SDC_OK;
    }
    case G_REBUILD_TENSOR:
        return rebuild_tensor(m, a, na, out);
    case G_REBUILD_PARAM:
    case G_REBUILD_PARAM_STATE:
        if (na < 1 || !ext_of(a[0], SDC_TORCH_TENSOR)) return sdc_pv_fail(m, SDC_E_FORMAT, "_rebuild_parameter of a non-tensor");
        *out = a[0];
        return SDC_OK;
    case G_PARAMETER_DICT:
    case G_STORAGE:
        break;
    }
    return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "REDUCE of %s is not allowed", allowed[fn->i].name);
}

/* BINPERSID: ('storage', torch.XStorage, key, location, numel) -> the storage's bytes. */
static sdc_status persistent_load(sdc_pv *m, sdc_pv_obj *pid, sdc_pv_obj **out) {
    sdc_torch_file *f = m->cfg->ctx;
    sdc_pv_obj **a = pid->items;
    if (pid->kind != SDC_PV_TUPLE || pid->n_items != 5 || !sdc_pv_str_is(a[0], "storage") || !is_global(a[1], G_STORAGE) ||
        a[2]->kind != SDC_PV_STR || a[4]->kind != SDC_PV_INT || a[4]->i < 0)
        return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "a persistent id that is not ('storage', torch.*Storage, key, location, numel)");
    char rest[96];
    const char *key = (const char *)a[2]->p;
    if (a[2]->n > 64) return sdc_pv_fail(m, SDC_E_FORMAT, "storage key longer than 64 bytes");
    int rl = snprintf(rest, sizeof rest, "data/%.*s", (int)a[2]->n, key);
    const zentry *z = zip_get(f, rest, (size_t)rl, m->err);
    if (!z) return m->err->code;
    sdc_dtype dt = allowed[a[1]->i].dt;
    size_t es = sdc_dtype_table[dt].size;
    if ((uint64_t)a[4]->i > z->size / es)
        return sdc_pv_fail(m, SDC_E_FORMAT, "storage %.*s claims %lld elements, its entry holds %zu bytes", (int)a[2]->n, key,
                           (long long)a[4]->i, z->size);
    sdc_torch_obj *s = new_ext(m, SDC_TORCH_STORAGE, out);
    if (!s) return m->err->code;
    s->dtype = dt;
    s->data = z->data;
    s->storage_numel = a[4]->i;
    return SDC_OK;
}

/* NEWOBJ: cls.__new__(cls, *args), for ParameterDict only. */
static sdc_status newobj(sdc_pv *m, sdc_pv_obj *cls, sdc_pv_obj *args, sdc_pv_obj **out) {
    if (!is_global(cls, G_PARAMETER_DICT) || args->kind != SDC_PV_TUPLE)
        return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "NEWOBJ of something other than torch.nn.ParameterDict");
    sdc_torch_obj *o = new_ext(m, SDC_TORCH_OBJECT, out);
    if (!o) return m->err->code;
    o->cls = "torch.nn.modules.container.ParameterDict";
    return SDC_OK;
}

/* BUILD: a new ParameterDict's state, a dict (or (dict, slots)). */
static sdc_status build(sdc_pv *m, sdc_pv_obj *o, sdc_pv_obj *st) {
    if (!ext_of(o, SDC_TORCH_OBJECT) || ((ext_obj *)o->ext)->state)
        return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "BUILD on something other than a new ParameterDict");
    if (st->kind == SDC_PV_TUPLE && st->n_items == 2) st = st->items[0];
    if (st->kind != SDC_PV_DICT) return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "BUILD with a state that is not a dict");
    ((ext_obj *)o->ext)->state = st;
    return SDC_OK;
}

/* Turns the machine's objects into the file's sdc_torch_obj tree, one for one (f->objs[k] is
 * m->objs[k]), without recursion: first every object, then the pointers between them. */
static sdc_status tree(sdc_torch_file *f, const sdc_pv *m, sdc_error *err) {
    static const sdc_torch_kind kinds[] = {
        [SDC_PV_NONE] = SDC_TORCH_NONE,   [SDC_PV_BOOL] = SDC_TORCH_BOOL,   [SDC_PV_INT] = SDC_TORCH_INT,
        [SDC_PV_FLOAT] = SDC_TORCH_FLOAT, [SDC_PV_STR] = SDC_TORCH_STR,     [SDC_PV_BYTES] = SDC_TORCH_BYTES,
        [SDC_PV_TUPLE] = SDC_TORCH_TUPLE, [SDC_PV_LIST] = SDC_TORCH_LIST,   [SDC_PV_DICT] = SDC_TORCH_DICT,
        [SDC_PV_GLOBAL] = SDC_TORCH_GLOBAL,
    };
    if (!(f->objs = calloc(m->n_objs ? m->n_objs : 1, sizeof *f->objs))) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", f->label);
    f->cap_objs = m->n_objs;
    for (size_t k = 0; k < m->n_objs; k++) {
        const sdc_pv_obj *o = m->objs[k];
        sdc_torch_obj *t = calloc(1, sizeof *t);
        if (!t) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", f->label);
        f->objs[f->n_objs++] = t;
        if (o->n_items && !(t->items = malloc(o->n_items * sizeof *t->items)))
            return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", f->label);
        if (o->kind == SDC_PV_EXT) {
            sdc_torch_obj **items = t->items;
            *t = ((const ext_obj *)o->ext)->t;
            t->items = items;
            continue;
        }
        t->kind = kinds[o->kind];
        t->i = o->i;
        t->f = o->f;
        t->s = (const char *)o->p;
        t->n = o->n;
        t->n_items = t->cap = o->n_items;
        if (o->kind == SDC_PV_GLOBAL) {
            t->i = allowed[o->i].g;
            t->dtype = allowed[o->i].dt;
            t->cls = allowed[o->i].name;
        }
    }
    for (size_t k = 0; k < m->n_objs; k++) {
        const sdc_pv_obj *o = m->objs[k];
        for (size_t j = 0; j < o->n_items; j++) f->objs[k]->items[j] = f->objs[o->items[j]->id];
        if (o->kind == SDC_PV_EXT && ((const ext_obj *)o->ext)->state)
            f->objs[k]->state = f->objs[((const ext_obj *)o->ext)->state->id];
    }
    return SDC_OK;
}

/* ============================================================================================ */
/* Open, query, close                                                                           */
/* ============================================================================================ */

void sdc_torch_close(sdc_torch_file *f) {
    if (!f) return;
    for (size_t i = 0; i < f->n_objs; i++) {
        free(f->objs[i]->items);
        free(f->objs[i]);
    }
    free(f->objs);
    free(f->entries);
    free(f->owned);
    free(f);
}

sdc_status sdc_torch_open_memory(const void *buf, size_t len, const char *label, sdc_torch_file **out,
                                 sdc_error *err) {
    *out = NULL;
    sdc_error local = {0};
    if (!err) err = &local;
    sdc_torch_file *f = calloc(1, sizeof *f);
    if (!f) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", label);
    f->b = buf;
    f->len = len;
    snprintf(f->label, sizeof f->label, "%s", label ? label : "torch file");
    if (len > SDC_TORCH_MAX_BYTES) {
        sdc_torch_close(f);
        return sdc_fail(err, SDC_E_LIMIT, "%s: %zu bytes, more than the %zu MiB read", label, len, SDC_TORCH_MAX_BYTES >> 20);
    }
    sdc_status st = zip_parse(f, err);
    const zentry *pkl = st == SDC_OK ? zip_get(f, "data.pkl", 8, err) : NULL;
    if (st == SDC_OK && !pkl) st = err->code;
    if (st == SDC_OK) {
        const sdc_pv_config cfg = {
            .label = f->label,
            .where = "data.pkl",
            .reads = "only tensors in dicts are read",
            .refused = ", which is not a tensor container",
            .min_proto = 0,
            .opcodes = SDC_PV_OP_BINFLOAT | SDC_PV_OP_BINSTRING,
            .max_objects = SDC_TORCH_MAX_OBJECTS,
            .max_stack = SDC_TORCH_MAX_STACK,
            .max_memo = SDC_TORCH_MAX_MEMO,
            .hooks = {.global = find_global, .reduce = reduce, .build = build, .newobj = newobj,
                      .persistent_load = persistent_load},
            .ctx = f,
        };
        sdc_pv m;
        sdc_pv_obj *root = NULL;
        sdc_pv_init(&m, &cfg, pkl->data, pkl->size, err);
        st = sdc_pv_run(&m, &root);
        if (st == SDC_OK) st = tree(f, &m, err);
        if (st == SDC_OK) f->root = f->objs[root->id];
        sdc_pv_free(&m);
    }
    if (st != SDC_OK) {
        sdc_torch_close(f);
        return st;
    }
    *out = f;
    return SDC_OK;
}

sdc_status sdc_torch_open(const char *path, sdc_torch_file **out, sdc_error *err) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return sdc_fail(err, SDC_E_IO, "%s: cannot open", path);
    struct stat sb;
    if (fstat(fileno(fp), &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fclose(fp);
        return sdc_fail(err, SDC_E_IO, "%s: not a regular file", path);
    }
    if ((uint64_t)sb.st_size > SDC_TORCH_MAX_BYTES) {
        fclose(fp);
        return sdc_fail(err, SDC_E_LIMIT, "%s: %lld bytes, more than the %zu MiB read", path, (long long)sb.st_size,
                        SDC_TORCH_MAX_BYTES >> 20);
    }
    size_t len = (size_t)sb.st_size;
    uint8_t *buf = malloc(len ? len : 1);
    if (!buf) {
        fclose(fp);
        return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory for %zu bytes", path, len);
    }
    size_t got = fread(buf, 1, len, fp);
    fclose(fp);
    if (got != len) {
        free(buf);
        return sdc_fail(err, SDC_E_IO, "%s: read %zu of %zu bytes", path, got, len);
    }
    sdc_status st = sdc_torch_open_memory(buf, len, path, out, err);
    if (st != SDC_OK) {
        free(buf);
        return st;
    }
    (*out)->owned = buf;
    return SDC_OK;
}

const sdc_torch_obj *sdc_torch_root(const sdc_torch_file *f) { return f->root; }

const uint8_t *sdc_torch_bytes(const sdc_torch_file *f, size_t *len) {
    *len = f->len;
    return f->b;
}

const sdc_torch_obj *sdc_torch_dict_get(const sdc_torch_obj *d, const char *key) {
    if (!d || d->kind != SDC_TORCH_DICT) return NULL;
    for (size_t i = 0; i + 1 < d->n_items; i += 2)
        if (sdc_torch_str_is(d->items[i], key)) return d->items[i + 1];
    return NULL;
}

int64_t sdc_torch_numel(const sdc_torch_obj *t) {
    int64_t n = 1;
    for (int d = 0; d < t->ndim; d++) n *= t->shape[d]; /* checked when the tensor was built */
    return n;
}

sdc_status sdc_torch_tensor_f32(const sdc_torch_obj *t, float *out, sdc_error *err) {
    if (t->kind != SDC_TORCH_TENSOR) return sdc_fail(err, SDC_E_INVALID_ARG, "sdc_torch_tensor_f32: not a tensor");
    if (!sdc_dtype_table[t->dtype].is_float)
        return sdc_fail(err, SDC_E_UNSUPPORTED, "a %s tensor where floats are expected", sdc_dtype_table[t->dtype].name);
    int64_t numel = sdc_torch_numel(t), idx[SDC_TORCH_MAX_DIMS] = {0};
    size_t es = sdc_dtype_table[t->dtype].size;
    for (int64_t c = 0; c < numel; c++) { /* c: C-order position; idx: its multi-index */
        int64_t e = t->offset;
        for (int d = 0; d < t->ndim; d++) e += idx[d] * t->stride[d];
        sdc_convert_to_f32(out + c, t->data + (size_t)e * es, t->dtype, 1);
        for (int d = t->ndim - 1; d >= 0; d--) {
            if (++idx[d] < t->shape[d]) break;
            idx[d] = 0;
        }
    }
    return SDC_OK;
}

/* ============================================================================================ */
/* Writer                                                                                       */
/* ============================================================================================ */

/* torch._utils._rebuild_tensor_v2(storage '0', 0, (n, w), (w, 1), False, OrderedDict()) */
static void pk_tensor(sdc_bytes *b, sdc_dtype dt, int n, int width) {
    sdc_pickle_global(b, "torch._utils", "_rebuild_tensor_v2");
    sdc_bytes_u8(b, SDC_P_MARK);
    sdc_bytes_u8(b, SDC_P_MARK); /* the persistent id ('storage', class, key, location, numel) */
    sdc_pickle_str(b, "storage");
    sdc_pickle_global(b, "torch", dt == SDC_F16 ? "HalfStorage" : "FloatStorage");
    sdc_pickle_str(b, "0");
    sdc_pickle_str(b, "cpu");
    sdc_pickle_int(b, (int64_t)n * width);
    sdc_bytes_u8(b, SDC_P_TUPLE);
    sdc_bytes_u8(b, SDC_P_BINPERSID);
    sdc_pickle_int(b, 0);
    sdc_pickle_int(b, n), sdc_pickle_int(b, width), sdc_bytes_u8(b, SDC_P_TUPLE2);
    sdc_pickle_int(b, width), sdc_pickle_int(b, 1), sdc_bytes_u8(b, SDC_P_TUPLE2);
    sdc_bytes_u8(b, SDC_P_NEWFALSE);
    sdc_pickle_global(b, "collections", "OrderedDict");
    sdc_bytes_u8(b, SDC_P_EMPTY_TUPLE);
    sdc_bytes_u8(b, SDC_P_REDUCE);
    sdc_bytes_u8(b, SDC_P_TUPLE);
    sdc_bytes_u8(b, SDC_P_REDUCE);
}

uint8_t *sdc_torch_zip_image(const char *const *names, const void *const *data, const size_t *sizes, int nf,
                             size_t *len) {
    sdc_bytes bb = {0}, *b = &bb;
    uint32_t *crc = calloc((size_t)(nf > 0 ? nf : 1), sizeof *crc), *local = calloc((size_t)(nf > 0 ? nf : 1), sizeof *local);
    if (!crc || !local) b->oom = 1;
    for (int i = 0; i < nf && !b->oom; i++) {
        crc[i] = sdc_crc32(data[i], sizes[i]);
        local[i] = (uint32_t)b->n;
        size_t nl = strlen(names[i]), head = b->n + 30 + nl + 4, pad = (64 - head % 64) % 64;
        sdc_bytes_u32(b, 0x04034b50);
        sdc_bytes_u16(b, 20), sdc_bytes_u16(b, 0), sdc_bytes_u16(b, 0); /* version, flags, method: stored */
        sdc_bytes_u16(b, 0), sdc_bytes_u16(b, 0x21);              /* time, date: 1980-01-01 */
        sdc_bytes_u32(b, crc[i]), sdc_bytes_u32(b, (uint32_t)sizes[i]), sdc_bytes_u32(b, (uint32_t)sizes[i]);
        sdc_bytes_u16(b, (uint32_t)nl), sdc_bytes_u16(b, (uint32_t)(4 + pad));
        sdc_bytes_put(b, names[i], nl);
        sdc_bytes_u16(b, 0x4246), sdc_bytes_u16(b, (uint32_t)pad); /* "FB" padding field, as torch writes */
        for (size_t k = 0; k < pad; k++) sdc_bytes_u8(b, 'Z');
        sdc_bytes_put(b, data[i], sizes[i]);
    }
    size_t cd = b->n;
    for (int i = 0; i < nf && !b->oom; i++) {
        size_t nl = strlen(names[i]);
        sdc_bytes_u32(b, 0x02014b50);
        sdc_bytes_u16(b, 20), sdc_bytes_u16(b, 20), sdc_bytes_u16(b, 0), sdc_bytes_u16(b, 0);
        sdc_bytes_u16(b, 0), sdc_bytes_u16(b, 0x21);
        sdc_bytes_u32(b, crc[i]), sdc_bytes_u32(b, (uint32_t)sizes[i]), sdc_bytes_u32(b, (uint32_t)sizes[i]);
        sdc_bytes_u16(b, (uint32_t)nl), sdc_bytes_u16(b, 0), sdc_bytes_u16(b, 0); /* name, extra, comment lengths */
        sdc_bytes_u16(b, 0), sdc_bytes_u16(b, 0), sdc_bytes_u32(b, 0);            /* disk, internal and external attributes */
        sdc_bytes_u32(b, local[i]);
        sdc_bytes_put(b, names[i], nl);
    }
    size_t cd_size = b->n - cd;
    sdc_bytes_u32(b, 0x06054b50);
    sdc_bytes_u16(b, 0), sdc_bytes_u16(b, 0), sdc_bytes_u16(b, (uint32_t)nf), sdc_bytes_u16(b, (uint32_t)nf);
    sdc_bytes_u32(b, (uint32_t)cd_size), sdc_bytes_u32(b, (uint32_t)cd), sdc_bytes_u16(b, 0);
    free(crc);
    free(local);
    if (b->oom) {
        free(b->p);
        return NULL;
    }
    *len = b->n;
    return b->p;
}

sdc_status sdc_torch_write_embedding(const char *path, const char *name, int a1111, sdc_dtype dt, const float *vec,
                                     int n, int width, sdc_error *err) {
    if (!path || !name || !vec || n < 0 || n > 4096 || width < 1 || width > 65536 || (dt != SDC_F32 && dt != SDC_F16))
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: embedding [%d, %d] %s cannot be written", path ? path : "(null)", n,
                        width, sdc_dtype_table[dt].name);
    size_t numel = (size_t)n * (size_t)width, es = dt == SDC_F16 ? 2 : 4;
    uint8_t *raw = malloc(numel * es + 1);
    if (!raw) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", path);
    for (size_t i = 0; i < numel; i++) {
        if (dt == SDC_F16) {
            uint16_t h = sdc_f32_to_f16(vec[i]);
            memcpy(raw + 2 * i, &h, 2);
        } else {
            memcpy(raw + 4 * i, &vec[i], 4);
        }
    }
    sdc_bytes pk = {0};
    sdc_bytes_u8(&pk, SDC_P_PROTO), sdc_bytes_u8(&pk, 2);
    sdc_bytes_u8(&pk, SDC_P_EMPTY_DICT);
    sdc_bytes_u8(&pk, SDC_P_MARK);
    if (a1111) {
        sdc_pickle_str(&pk, "string_to_token");
        sdc_bytes_u8(&pk, SDC_P_EMPTY_DICT), sdc_pickle_str(&pk, "*"), sdc_pickle_int(&pk, 265),
            sdc_bytes_u8(&pk, SDC_P_SETITEM);
        sdc_pickle_str(&pk, "string_to_param");
        sdc_bytes_u8(&pk, SDC_P_EMPTY_DICT), sdc_pickle_str(&pk, "*"), pk_tensor(&pk, dt, n, width),
            sdc_bytes_u8(&pk, SDC_P_SETITEM);
        sdc_pickle_str(&pk, "name"), sdc_pickle_str(&pk, name);
        sdc_pickle_str(&pk, "step"), sdc_pickle_int(&pk, 0);
        sdc_pickle_str(&pk, "sd_checkpoint"), sdc_bytes_u8(&pk, SDC_P_NONE);
        sdc_pickle_str(&pk, "sd_checkpoint_name"), sdc_bytes_u8(&pk, SDC_P_NONE);
    } else {
        char key[300];
        snprintf(key, sizeof key, "<%s>", name);
        sdc_pickle_str(&pk, key);
        pk_tensor(&pk, dt, n, width);
    }
    sdc_bytes_u8(&pk, SDC_P_SETITEMS);
    sdc_bytes_u8(&pk, SDC_P_STOP);
    const char *names[] = {"archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/version"};
    const void *data[] = {pk.p, "little", raw, "3\n"};
    size_t sizes[] = {pk.n, 6, numel * es, 2}, zlen = 0;
    uint8_t *zb = pk.oom ? NULL : sdc_torch_zip_image(names, data, sizes, 4, &zlen);
    free(raw);
    free(pk.p);
    if (!zb) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", path);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "wb");
    int ok = fp && fwrite(zb, 1, zlen, fp) == zlen;
    if (fp && fclose(fp) != 0) ok = 0;
    free(zb);
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return sdc_fail(err, SDC_E_IO, "%s: cannot write", path);
    }
    return SDC_OK;
}
