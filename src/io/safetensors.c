/* src/io/safetensors.c: the safetensors reader and writer declared in safetensors.h.
 *
 * Reader: the file is mapped read-only (MAP_PRIVATE) and never copied. The 8-byte header length
 * is checked against the file size and SDC_ST_MAX_HEADER before anything is allocated for the
 * header; the header JSON is parsed with a memory limit proportional to its length; then every
 * entry is validated, the tensors are sorted by data offset (sdc_st_get order, and the overlap
 * check) and indexed by name in an open-addressing hash table (sdc_st_find). The JSON DOM is
 * freed once the names and metadata strings are copied into one pool.
 *
 * Leniencies, on purpose and like the reference reader: unknown fields inside a tensor entry are
 * ignored, and gaps between tensors (or after the last one) are allowed.
 *
 * Writer: the header is built from the declarations, padded with spaces to a multiple of 8 bytes
 * (as the reference writer does, so the data section starts 8-aligned), and written with the
 * data through one large buffer; tensors are packed in declaration order. The file is written to
 * PATH.tmp and renamed over PATH after an fsync, so PATH is either complete or untouched.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* ssize_t, fsync, strdup under -std=c11 */
#endif
#include "io/safetensors.h"

#include "io/json.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* Messages                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* Copies s[0, len) into dst[cap] for a one-line message: control bytes become \xNN, and a long
 * string keeps its head (keep_tail = 0, tensor names) or its tail (keep_tail = 1, paths, whose
 * file name is the useful part) around "...". */
static void printable(char *dst, size_t cap, const char *s, size_t len, int keep_tail) {
    size_t budget = cap - 1, n = 0;
    const size_t show = budget > 16 ? budget - 16 : budget; /* room left for escapes and "..." */
    size_t from = 0, to = len;
    int cut = len > show;
    if (cut && keep_tail) from = len - show;
    if (cut && !keep_tail) to = show;
    if (cut && keep_tail) n += (size_t)snprintf(dst, cap, "...");
    for (size_t i = from; i < to && n + 5 < budget; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f)
            n += (size_t)snprintf(dst + n, cap - n, "\\x%02x", c);
        else
            dst[n++] = (char)c;
    }
    if (cut && !keep_tail && n + 3 < budget) n += (size_t)snprintf(dst + n, cap - n, "...");
    dst[n] = '\0';
}

typedef struct name_buf {
    char s[128];
} name_buf;

static const char *show_name(name_buf *b, const char *s, size_t len) {
    printable(b->s, sizeof b->s, s, len, 0);
    return b->s;
}

/* "an array", "a string", ... for messages */
static const char *a_type(const sdc_json *v) {
    static const char *const names[] = {
        [SDC_JSON_NULL] = "null",       [SDC_JSON_BOOL] = "a boolean",
        [SDC_JSON_NUMBER] = "a number", [SDC_JSON_STRING] = "a string",
        [SDC_JSON_ARRAY] = "an array",  [SDC_JSON_OBJECT] = "an object",
    };
    return names[v->type];
}

/* "[3, 2]" */
static const char *show_shape(char *buf, size_t cap, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* Reader                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct entry {
    sdc_st_tensor t;     /* first member: sdc_st_get returns &entry.t */
    uint64_t begin, end; /* data_offsets, relative to the data section */
} entry;

struct sdc_st_file {
    char *path;                /* as given (sdc_st_path) */
    char label[200];           /* path made printable and short, for messages */
    const unsigned char *base; /* whole file */
    size_t size;
    int mapped; /* base is our mapping (munmap on close) */
    entry *e;   /* sorted by data offset */
    size_t n;
    uint32_t *slot; /* hash table: index + 1, 0 = empty; slot_mask + 1 slots (a
                       100 MB header holds under 2^32 tensors, so 32 bits do) */
    size_t slot_mask;
    sdc_st_meta *meta; /* in header order */
    size_t n_meta;
    char *pool; /* names, metadata keys and values */
};

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static uint64_t le64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Copies a JSON string into the pool; returns the copy. */
static const char *pool_add(char **pool, const char *s, size_t len) {
    char *d = *pool;
    memcpy(d, s, len);
    d[len] = '\0';
    *pool += len + 1;
    return d;
}

/* Reads one non-negative exact integer (shape dim or offset). */
static int get_u64(const sdc_json *v, uint64_t *out) {
    int64_t i;
    if (!sdc_json_int(v, &i) || i < 0) return 0;
    *out = (uint64_t)i;
    return 1;
}

/* Validates one tensor entry `m` (an object member: m->key is the name) into e. */
static sdc_status parse_entry(const sdc_st_file *f, const sdc_json *m, uint64_t data_len, entry *e,
                              sdc_error *err) {
    name_buf nb;
    const char *name = show_name(&nb, m->key, m->key_len);
    if (strlen(m->key) != m->key_len)
        return sdc_fail(err, SDC_E_FORMAT, "%s: tensor '%s': name contains a NUL character",
                        f->label, name);
    if (m->type != SDC_JSON_OBJECT)
        return sdc_fail(err, SDC_E_FORMAT, "%s: tensor '%s': entry is %s, not an object", f->label,
                        name, a_type(m));

    /* The three fields, each exactly once. */
    static const char *const field_names[3] = {"dtype", "shape", "data_offsets"};
    const sdc_json *field[3] = {NULL, NULL, NULL};
    for (size_t i = 0; i < sdc_json_len(m); i++) {
        const sdc_json *x = sdc_json_at(m, i);
        for (int k = 0; k < 3; k++) {
            if (x->key_len != strlen(field_names[k]) || memcmp(x->key, field_names[k], x->key_len))
                continue;
            if (field[k])
                return sdc_fail(err, SDC_E_FORMAT, "%s: tensor '%s': duplicate field '%s'",
                                f->label, name, field_names[k]);
            field[k] = x;
        }
    }
    for (int k = 0; k < 3; k++)
        if (!field[k])
            return sdc_fail(err, SDC_E_FORMAT, "%s: tensor '%s': missing '%s'", f->label, name,
                            field_names[k]);

    /* dtype */
    const sdc_json *dt = field[0];
    if (dt->type != SDC_JSON_STRING)
        return sdc_fail(err, SDC_E_FORMAT, "%s: tensor '%s': dtype is %s, not a string", f->label,
                        name, a_type(dt));
    int d = sdc_dtype_from_name(dt->u.str.s, dt->u.str.len);
    if (d < 0) {
        name_buf db;
        return sdc_fail(err, SDC_E_FORMAT, "%s: tensor '%s': unknown or unsupported dtype '%s'",
                        f->label, name, show_name(&db, dt->u.str.s, dt->u.str.len));
    }
    e->t.dtype = (sdc_dtype)d;

    /* shape: at most SDC_ST_MAX_DIMS non-negative integers; numel overflow-checked */
    const sdc_json *sh = field[1];
    if (sh->type != SDC_JSON_ARRAY)
        return sdc_fail(err, SDC_E_FORMAT, "%s: tensor '%s': shape is %s, not an array", f->label,
                        name, a_type(sh));
    if (sdc_json_len(sh) > SDC_ST_MAX_DIMS)
        return sdc_fail(err, SDC_E_FORMAT, "%s: tensor '%s': shape has %zu dims, more than %d",
                        f->label, name, sdc_json_len(sh), SDC_ST_MAX_DIMS);
    e->t.ndim = (int)sdc_json_len(sh);
    int64_t numel = 1;
    int too_big = 0;
    for (int i = 0; i < e->t.ndim; i++) {
        uint64_t dim;
        if (!get_u64(sdc_json_at(sh, (size_t)i), &dim))
            return sdc_fail(err, SDC_E_FORMAT,
                            "%s: tensor '%s': shape[%d] is not a non-negative integer", f->label,
                            name, i);
        e->t.shape[i] = (int64_t)dim;
        too_big |= __builtin_mul_overflow(numel, (int64_t)dim, &numel);
    }
    char sbuf[200];
    show_shape(sbuf, sizeof sbuf, e->t.ndim, e->t.shape);
    uint64_t nbytes = 0;
    if (too_big ||
        __builtin_mul_overflow((uint64_t)numel, (uint64_t)sdc_dtype_table[d].size, &nbytes))
        return sdc_fail(err, SDC_E_FORMAT, "%s: tensor '%s': shape %s is too large", f->label, name,
                        sbuf);
    e->t.numel = numel;

    /* data_offsets: [begin, end) inside the data section, holding exactly nbytes */
    const sdc_json *off = field[2];
    if (off->type != SDC_JSON_ARRAY || sdc_json_len(off) != 2 ||
        !get_u64(sdc_json_at(off, 0), &e->begin) || !get_u64(sdc_json_at(off, 1), &e->end))
        return sdc_fail(err, SDC_E_FORMAT,
                        "%s: tensor '%s': data_offsets is not an array of 2 non-negative integers",
                        f->label, name);
    if (e->begin > e->end)
        return sdc_fail(err, SDC_E_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu) are inverted", f->label, name,
                        (unsigned long long)e->begin, (unsigned long long)e->end);
    if (e->end > data_len)
        return sdc_fail(err, SDC_E_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu) run past the data section "
                        "(%llu bytes)",
                        f->label, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                        (unsigned long long)data_len);
    if (e->end - e->begin != nbytes)
        return sdc_fail(err, SDC_E_FORMAT,
                        "%s: tensor '%s': data_offsets [%llu, %llu) hold %llu bytes but %s %s "
                        "needs %llu",
                        f->label, name, (unsigned long long)e->begin, (unsigned long long)e->end,
                        (unsigned long long)(e->end - e->begin), sdc_dtype_table[d].name, sbuf,
                        (unsigned long long)nbytes);
    e->t.nbytes = (size_t)nbytes;
    return SDC_OK;
}

/* Validates "__metadata__" (an object of strings) into f->meta, copying strings to the pool. */
static sdc_status parse_meta(sdc_st_file *f, const sdc_json *m, char **pool, sdc_error *err) {
    if (m->type != SDC_JSON_OBJECT)
        return sdc_fail(err, SDC_E_FORMAT, "%s: __metadata__ is %s, not an object", f->label,
                        a_type(m));
    for (size_t i = 0; i < sdc_json_len(m); i++) {
        const sdc_json *kv = sdc_json_at(m, i);
        name_buf nb;
        const char *key = show_name(&nb, kv->key, kv->key_len);
        if (kv->type != SDC_JSON_STRING)
            return sdc_fail(err, SDC_E_FORMAT, "%s: __metadata__ '%s': value is %s, not a string",
                            f->label, key, a_type(kv));
        if (strlen(kv->key) != kv->key_len || strlen(kv->u.str.s) != kv->u.str.len)
            return sdc_fail(err, SDC_E_FORMAT, "%s: __metadata__ '%s': contains a NUL character",
                            f->label, key);
        f->meta[i].key = pool_add(pool, kv->key, kv->key_len);
        f->meta[i].value = pool_add(pool, kv->u.str.s, kv->u.str.len);
    }
    f->n_meta = sdc_json_len(m);
    return SDC_OK;
}

static int cmp_meta_key(const void *a, const void *b) {
    return strcmp(((const sdc_st_meta *)a)->key, ((const sdc_st_meta *)b)->key);
}

static int cmp_entry(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->t.name, y->t.name);
}

/* Index by name; a second insertion of a name is a duplicate. */
static sdc_status build_index(sdc_st_file *f, sdc_error *err) {
    size_t cap = 8;
    while (cap < 2 * f->n) cap *= 2;
    f->slot = calloc(cap, sizeof *f->slot);
    if (!f->slot)
        return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory for the tensor index", f->label);
    f->slot_mask = cap - 1;
    for (size_t i = 0; i < f->n; i++) {
        const char *name = f->e[i].t.name;
        size_t s = (size_t)hash_name(name) & f->slot_mask;
        for (; f->slot[s]; s = (s + 1) & f->slot_mask) {
            if (strcmp(f->e[f->slot[s] - 1].t.name, name) == 0) {
                name_buf nb;
                return sdc_fail(err, SDC_E_FORMAT, "%s: duplicate tensor name '%s'", f->label,
                                show_name(&nb, name, strlen(name)));
            }
        }
        f->slot[s] = (uint32_t)(i + 1);
    }
    return SDC_OK;
}

/* Everything after the file is in memory: f->base, f->size and f->label are set. */
static sdc_status validate(sdc_st_file *f, sdc_error *err) {
    if (f->size == 0) return sdc_fail(err, SDC_E_FORMAT, "%s: file is empty", f->label);
    if (f->size < 8)
        return sdc_fail(err, SDC_E_FORMAT,
                        "%s: file is %zu bytes, shorter than the 8-byte header length", f->label,
                        f->size);

    /* The header length is checked before anything is allocated for it. */
    uint64_t hlen = le64(f->base);
    if (hlen > f->size - 8)
        return sdc_fail(err, SDC_E_FORMAT,
                        "%s: header length %llu runs past the end of the file (%zu bytes)",
                        f->label, (unsigned long long)hlen, f->size);
    if (hlen > SDC_ST_MAX_HEADER)
        return sdc_fail(err, SDC_E_FORMAT, "%s: header length %llu is over the %u-byte limit",
                        f->label, (unsigned long long)hlen, SDC_ST_MAX_HEADER);
    uint64_t data_len = f->size - 8 - hlen;

    /* A valid header needs well under 12 bytes of DOM per byte (about 3 for real checkpoints);
     * the limit stops a dense hostile header from taking 17. Depth 3 suffices; 8 gives clearer
     * messages for nested junk. */
    sdc_json_opts lim = {.max_depth = 8, .max_memory = 12 * (size_t)hlen + (1u << 20)};
    sdc_json *root = NULL;
    sdc_error je = {0};
    sdc_status st = sdc_json_parse_ex((const char *)f->base + 8, (size_t)hlen, &lim, &root, &je);
    if (st != SDC_OK)
        return sdc_fail(err, st == SDC_E_NOMEM ? SDC_E_NOMEM : SDC_E_FORMAT, "%s: header: %s",
                        f->label, je.msg);
    if (root->type != SDC_JSON_OBJECT) {
        st = sdc_fail(err, SDC_E_FORMAT, "%s: header is %s, not a JSON object", f->label,
                      a_type(root));
        goto done;
    }

    /* Find __metadata__ and size the pool (every name and string, with NULs). */
    const sdc_json *meta = NULL;
    size_t pool_bytes = 1;
    for (size_t i = 0; i < sdc_json_len(root); i++) {
        const sdc_json *m = sdc_json_at(root, i);
        if (m->key_len == 12 && memcmp(m->key, "__metadata__", 12) == 0) {
            if (meta) {
                st = sdc_fail(err, SDC_E_FORMAT, "%s: duplicate __metadata__", f->label);
                goto done;
            }
            meta = m;
            for (size_t j = 0; j < sdc_json_len(m); j++) {
                const sdc_json *kv = sdc_json_at(m, j);
                pool_bytes +=
                    kv->key_len + 1 + (kv->type == SDC_JSON_STRING ? kv->u.str.len + 1 : 0);
            }
        } else {
            pool_bytes += m->key_len + 1;
        }
    }
    f->n = sdc_json_len(root) - (meta != NULL);
    f->e = calloc(f->n ? f->n : 1, sizeof *f->e);
    f->meta = calloc(meta ? sdc_json_len(meta) + 1 : 1, sizeof *f->meta);
    f->pool = malloc(pool_bytes);
    if (!f->e || !f->meta || !f->pool) {
        st = sdc_fail(err, SDC_E_NOMEM, "%s: out of memory for %zu tensors", f->label, f->n);
        goto done;
    }
    char *pool = f->pool;
    if (meta && (st = parse_meta(f, meta, &pool, err)) != SDC_OK) goto done;

    /* Metadata keys must be unique: sort a copy and compare neighbours (O(n log n)). */
    if (f->n_meta > 1) {
        sdc_st_meta *sorted = malloc(f->n_meta * sizeof *sorted);
        if (!sorted) {
            st = sdc_fail(err, SDC_E_NOMEM, "%s: out of memory for the metadata", f->label);
            goto done;
        }
        memcpy(sorted, f->meta, f->n_meta * sizeof *sorted);
        qsort(sorted, f->n_meta, sizeof *sorted, cmp_meta_key);
        for (size_t i = 1; i < f->n_meta && st == SDC_OK; i++)
            if (strcmp(sorted[i - 1].key, sorted[i].key) == 0) {
                name_buf nb;
                st = sdc_fail(err, SDC_E_FORMAT, "%s: duplicate __metadata__ key '%s'", f->label,
                              show_name(&nb, sorted[i].key, strlen(sorted[i].key)));
            }
        free(sorted);
        if (st != SDC_OK) goto done;
    }

    /* Tensor entries. */
    const unsigned char *data = f->base + 8 + hlen;
    for (size_t i = 0, k = 0; i < sdc_json_len(root); i++) {
        const sdc_json *m = sdc_json_at(root, i);
        if (m == meta) continue;
        entry *e = &f->e[k++];
        if ((st = parse_entry(f, m, data_len, e, err)) != SDC_OK) goto done;
        e->t.name = pool_add(&pool, m->key, m->key_len);
        e->t.data = data + e->begin;
    }

    /* Sort by offset, index by name (rejecting duplicates), then check for overlap: a non-empty
     * range must start at or after the end of every earlier one. */
    qsort(f->e, f->n, sizeof *f->e, cmp_entry);
    if ((st = build_index(f, err)) != SDC_OK) goto done;
    const entry *reach = NULL; /* the earlier range that ends last */
    for (size_t i = 0; i < f->n; i++) {
        const entry *e = &f->e[i];
        if (e->end == e->begin) continue; /* empty ranges overlap nothing */
        if (reach && e->begin < reach->end) {
            name_buf a, b;
            st = sdc_fail(
                err, SDC_E_FORMAT,
                "%s: tensor '%s': data_offsets [%llu, %llu) overlap tensor '%s' [%llu, %llu)",
                f->label, show_name(&a, e->t.name, strlen(e->t.name)), (unsigned long long)e->begin,
                (unsigned long long)e->end, show_name(&b, reach->t.name, strlen(reach->t.name)),
                (unsigned long long)reach->begin, (unsigned long long)reach->end);
            goto done;
        }
        if (!reach || e->end > reach->end) reach = e;
    }
    st = SDC_OK;
done:
    sdc_json_free(root);
    return st;
}

static sdc_st_file *file_new(const char *path) {
    sdc_st_file *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->path = strdup(path);
    if (!f->path) {
        free(f);
        return NULL;
    }
    printable(f->label, sizeof f->label, path, strlen(path), 1);
    return f;
}

sdc_status sdc_st_open_memory(const void *buf, size_t len, const char *label, sdc_st_file **out,
                              sdc_error *err) {
    *out = NULL;
    if (!buf && len) return sdc_fail(err, SDC_E_INVALID_ARG, "safetensors: NULL buffer");
    sdc_st_file *f = file_new(label ? label : "memory");
    if (!f) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", label ? label : "memory");
    f->base = buf;
    f->size = len;
    sdc_status st = validate(f, err);
    if (st != SDC_OK) {
        sdc_st_close(f);
        return st;
    }
    *out = f;
    return SDC_OK;
}

sdc_status sdc_st_open(const char *path, sdc_st_file **out, sdc_error *err) {
    *out = NULL;
    if (!path) return sdc_fail(err, SDC_E_INVALID_ARG, "safetensors: NULL path");
    sdc_st_file *f = file_new(path);
    if (!f) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", path);
    sdc_status st;
    /* O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0) {
        st = sdc_fail(err, SDC_E_IO, "%s: cannot open: %s", f->label, strerror(errno));
    } else if (fstat(fd, &sb) != 0) {
        st = sdc_fail(err, SDC_E_IO, "%s: cannot stat: %s", f->label, strerror(errno));
    } else if (S_ISDIR(sb.st_mode)) {
        st = sdc_fail(err, SDC_E_IO, "%s: is a directory", f->label);
    } else if (!S_ISREG(sb.st_mode)) {
        st = sdc_fail(err, SDC_E_IO, "%s: not a regular file", f->label);
    } else if ((uint64_t)sb.st_size > SIZE_MAX) {
        st = sdc_fail(err, SDC_E_FORMAT, "%s: file too large for this machine", f->label);
    } else {
        f->size = (size_t)sb.st_size;
        if (f->size > 0) { /* mmap refuses length 0; validate() reports the empty file */
            void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, fd, 0);
            if (m == MAP_FAILED) {
                st = sdc_fail(err, SDC_E_IO, "%s: cannot map: %s", f->label, strerror(errno));
                goto out;
            }
            f->base = m;
            f->mapped = 1;
        }
        st = validate(f, err);
    }
out:
    if (fd >= 0) close(fd); /* the mapping stays valid */
    if (st != SDC_OK) {
        sdc_st_close(f);
        return st;
    }
    *out = f;
    return SDC_OK;
}

void sdc_st_close(sdc_st_file *f) {
    if (!f) return;
    if (f->mapped) munmap((void *)f->base, f->size);
    free(f->e);
    free(f->slot);
    free(f->meta);
    free(f->pool);
    free(f->path);
    free(f);
}

size_t sdc_st_count(const sdc_st_file *f) {
    return f->n;
}

const sdc_st_tensor *sdc_st_get(const sdc_st_file *f, size_t i) {
    return i < f->n ? &f->e[i].t : NULL;
}

const sdc_st_tensor *sdc_st_find(const sdc_st_file *f, const char *name) {
    if (!name || !f->slot) return NULL;
    for (size_t s = (size_t)hash_name(name) & f->slot_mask; f->slot[s]; s = (s + 1) & f->slot_mask)
        if (strcmp(f->e[f->slot[s] - 1].t.name, name) == 0) return &f->e[f->slot[s] - 1].t;
    return NULL;
}

const char *sdc_st_path(const sdc_st_file *f) {
    return f->path;
}

size_t sdc_st_file_size(const sdc_st_file *f) {
    return f->size;
}

const void *sdc_st_file_bytes(const sdc_st_file *f) {
    return f->base;
}

size_t sdc_st_meta_count(const sdc_st_file *f) {
    return f->n_meta;
}

const sdc_st_meta *sdc_st_meta_get(const sdc_st_file *f, size_t i) {
    return i < f->n_meta ? &f->meta[i] : NULL;
}

const char *sdc_st_meta_find(const sdc_st_file *f, const char *key) {
    if (!key) return NULL;
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[i].key, key) == 0) return f->meta[i].value;
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Writer                                                                                      */
/* ------------------------------------------------------------------------------------------ */

#define WBUF_SIZE (8u << 20) /* writes gather into 8 MB; larger ones go straight through */

typedef struct decl {
    char *name;
    sdc_dtype dt;
    int ndim;
    int64_t shape[SDC_ST_MAX_DIMS];
    uint64_t begin, nbytes;
} decl;

enum { W_DECLARE, W_DATA, W_DONE, W_FAILED };

struct sdc_st_writer {
    char *path, *tmp;
    int fd;
    int state;
    decl *d;
    size_t n, cap;
    sdc_st_meta *meta; /* owned copies */
    size_t n_meta, cap_meta;
    uint64_t total, written; /* declared and written data bytes */
    unsigned char *buf;      /* WBUF_SIZE */
    size_t buf_len;
};

/* Grows *arr (of elem bytes each) so that one more fits. */
static int grow(void **arr, size_t *cap, size_t n, size_t elem) {
    if (n < *cap) return 1;
    size_t nc = *cap ? 2 * *cap : 16;
    size_t bytes = sdc_mul_size(nc, elem);
    void *p = bytes ? realloc(*arr, bytes) : NULL;
    if (!p) return 0;
    *arr = p;
    *cap = nc;
    return 1;
}

static sdc_status w_fail_io(sdc_st_writer *w, const char *what, sdc_error *err) {
    int e = errno;
    w->state = W_FAILED;
    return sdc_fail(err, SDC_E_IO, "%s: %s failed: %s", w->tmp, what, strerror(e));
}

static sdc_status write_all(sdc_st_writer *w, const void *p, size_t n, sdc_error *err) {
    const unsigned char *s = p;
    while (n) {
        ssize_t r = write(w->fd, s, n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            if (r == 0) errno = ENOSPC;
            return w_fail_io(w, "write", err);
        }
        s += r;
        n -= (size_t)r;
    }
    return SDC_OK;
}

static sdc_status flush(sdc_st_writer *w, sdc_error *err) {
    sdc_status st = write_all(w, w->buf, w->buf_len, err);
    w->buf_len = 0;
    return st;
}

/* Appends to the output through the buffer. */
static sdc_status emit(sdc_st_writer *w, const void *p, size_t n, sdc_error *err) {
    if (w->buf_len + n <= WBUF_SIZE) {
        memcpy(w->buf + w->buf_len, p, n);
        w->buf_len += n;
        return w->buf_len == WBUF_SIZE ? flush(w, err) : SDC_OK;
    }
    SDC_TRY(flush(w, err));
    if (n >= WBUF_SIZE) return write_all(w, p, n, err);
    memcpy(w->buf, p, n);
    w->buf_len = n;
    return SDC_OK;
}

static sdc_status check_state(const sdc_st_writer *w, int want, const char *call, sdc_error *err) {
    if (w->state == want) return SDC_OK;
    if (w->state == W_FAILED)
        return sdc_fail(err, SDC_E_IO, "%s: %s after an earlier failure", w->path, call);
    return sdc_fail(err, SDC_E_INVALID_ARG, "%s: %s called out of order", w->path, call);
}

sdc_status sdc_st_writer_new(const char *path, sdc_st_writer **out, sdc_error *err) {
    *out = NULL;
    if (!path || !*path) return sdc_fail(err, SDC_E_INVALID_ARG, "safetensors writer: empty path");
    sdc_st_writer *w = calloc(1, sizeof *w);
    if (!w) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", path);
    w->fd = -1;
    size_t len = strlen(path);
    w->path = strdup(path);
    w->tmp = malloc(len + 5);
    w->buf = malloc(WBUF_SIZE);
    if (!w->path || !w->tmp || !w->buf) {
        sdc_st_writer_free(w);
        return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory for the writer", path);
    }
    memcpy(w->tmp, path, len);
    memcpy(w->tmp + len, ".tmp", 5);
    w->fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (w->fd < 0) {
        sdc_status st = sdc_fail(err, SDC_E_IO, "%s: cannot create: %s", w->tmp, strerror(errno));
        free(w->tmp); /* nothing to remove: keep sdc_st_writer_free from unlinking it */
        w->tmp = NULL;
        sdc_st_writer_free(w);
        return st;
    }
    *out = w;
    return SDC_OK;
}

sdc_status sdc_st_writer_meta(sdc_st_writer *w, const char *key, const char *value,
                              sdc_error *err) {
    SDC_TRY(check_state(w, W_DECLARE, "sdc_st_writer_meta", err));
    if (!key || !value || !sdc_json_utf8_valid(key, strlen(key)) ||
        !sdc_json_utf8_valid(value, strlen(value)))
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: metadata key and value must be UTF-8 strings",
                        w->path);
    for (size_t i = 0; i < w->n_meta; i++) /* metadata is small: a linear check will do */
        if (strcmp(w->meta[i].key, key) == 0)
            return sdc_fail(err, SDC_E_INVALID_ARG, "%s: metadata key '%s' given twice", w->path,
                            key);
    if (!grow((void **)&w->meta, &w->cap_meta, w->n_meta, sizeof *w->meta))
        return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", w->path);
    char *k = strdup(key), *v = strdup(value);
    if (!k || !v) {
        free(k);
        free(v);
        return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", w->path);
    }
    w->meta[w->n_meta++] = (sdc_st_meta){k, v};
    return SDC_OK;
}

sdc_status sdc_st_writer_declare(sdc_st_writer *w, const char *name, sdc_dtype dt, int ndim,
                                 const int64_t *shape, sdc_error *err) {
    SDC_TRY(check_state(w, W_DECLARE, "sdc_st_writer_declare", err));
    if (!name || !*name || !strcmp(name, "__metadata__") ||
        !sdc_json_utf8_valid(name, strlen(name)))
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: invalid tensor name", w->path);
    if ((int)dt < 0 || dt >= SDC_DTYPE_COUNT)
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: tensor '%s': invalid dtype %d", w->path, name,
                        (int)dt);
    if (ndim < 0 || ndim > SDC_ST_MAX_DIMS || (ndim && !shape))
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: tensor '%s': %d dims (at most %d)", w->path,
                        name, ndim, SDC_ST_MAX_DIMS);
    decl d = {.dt = dt, .ndim = ndim, .begin = w->total};
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || __builtin_mul_overflow(numel, (uint64_t)shape[i], &numel))
            return sdc_fail(err, SDC_E_INVALID_ARG, "%s: tensor '%s': bad shape", w->path, name);
        d.shape[i] = shape[i];
    }
    if (numel > INT64_MAX || __builtin_mul_overflow(numel, sdc_dtype_table[dt].size, &d.nbytes) ||
        d.nbytes > INT64_MAX - w->total)
        return sdc_fail(err, SDC_E_INVALID_ARG, "%s: tensor '%s': too large", w->path, name);
    if (!grow((void **)&w->d, &w->cap, w->n, sizeof *w->d) || !(d.name = strdup(name)))
        return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", w->path);
    w->d[w->n++] = d;
    w->total += d.nbytes;
    return SDC_OK;
}

/* A growable string for the header. */
typedef struct strbuf {
    char *s;
    size_t len, cap;
    int oom;
} strbuf;

static void sb_put(strbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->len + n + 1) nc *= 2;
        char *p = realloc(b->s, nc);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = nc;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
}

static void sb_str(strbuf *b, const char *s) {
    sb_put(b, s, strlen(s));
}

static void sb_json_string(strbuf *b, const char *s) {
    size_t n = strlen(s);
    char small[256];
    size_t need = sdc_json_escape(NULL, s, n);
    char *tmp = need <= sizeof small ? small : malloc(need);
    if (!tmp) {
        b->oom = 1;
        return;
    }
    sdc_json_escape(tmp, s, n);
    sb_put(b, tmp, need);
    if (tmp != small) free(tmp);
}

static int cmp_name_ptr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

sdc_status sdc_st_writer_begin_data(sdc_st_writer *w, sdc_error *err) {
    SDC_TRY(check_state(w, W_DECLARE, "sdc_st_writer_begin_data", err));

    /* Duplicate names: sort pointers and compare neighbours. */
    if (w->n > 1) {
        char **names = malloc(w->n * sizeof *names);
        if (!names) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", w->path);
        for (size_t i = 0; i < w->n; i++) names[i] = w->d[i].name;
        qsort(names, w->n, sizeof *names, cmp_name_ptr);
        for (size_t i = 1; i < w->n; i++)
            if (strcmp(names[i - 1], names[i]) == 0) {
                sdc_status st = sdc_fail(err, SDC_E_INVALID_ARG, "%s: tensor '%s' declared twice",
                                         w->path, names[i]);
                free(names);
                return st;
            }
        free(names);
    }

    /* {"__metadata__":{...},"name":{"dtype":"F32","shape":[..],"data_offsets":[b,e]},...} */
    strbuf b = {0};
    char num[64];
    sb_str(&b, "{");
    if (w->n_meta) {
        sb_str(&b, "\"__metadata__\":{");
        for (size_t i = 0; i < w->n_meta; i++) {
            if (i) sb_str(&b, ",");
            sb_json_string(&b, w->meta[i].key);
            sb_str(&b, ":");
            sb_json_string(&b, w->meta[i].value);
        }
        sb_str(&b, "}");
    }
    for (size_t i = 0; i < w->n; i++) {
        const decl *d = &w->d[i];
        if (i || w->n_meta) sb_str(&b, ",");
        sb_json_string(&b, d->name);
        sb_str(&b, ":{\"dtype\":\"");
        sb_str(&b, sdc_dtype_table[d->dt].name);
        sb_str(&b, "\",\"shape\":[");
        for (int k = 0; k < d->ndim; k++) {
            snprintf(num, sizeof num, "%s%lld", k ? "," : "", (long long)d->shape[k]);
            sb_str(&b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)d->begin,
                 (unsigned long long)(d->begin + d->nbytes));
        sb_str(&b, num);
    }
    sb_str(&b, "}");
    while (!b.oom && b.len % 8) sb_str(&b, " "); /* pad: the data section starts 8-aligned */
    if (b.oom) {
        free(b.s);
        return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory for the header", w->path);
    }
    if (b.len > SDC_ST_MAX_HEADER) {
        free(b.s);
        return sdc_fail(err, SDC_E_LIMIT, "%s: header would be %zu bytes, over the %u-byte limit",
                        w->path, b.len, SDC_ST_MAX_HEADER);
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)b.len >> (8 * i));
    sdc_status st = emit(w, len8, 8, err);
    if (st == SDC_OK) st = emit(w, b.s, b.len, err);
    free(b.s);
    if (st == SDC_OK) w->state = W_DATA;
    return st;
}

sdc_status sdc_st_writer_write(sdc_st_writer *w, const void *data, size_t nbytes, sdc_error *err) {
    SDC_TRY(check_state(w, W_DATA, "sdc_st_writer_write", err));
    if (nbytes > w->total - w->written)
        return sdc_fail(err, SDC_E_INVALID_ARG,
                        "%s: writing %zu bytes would pass the %llu declared data bytes", w->path,
                        nbytes, (unsigned long long)w->total);
    if (!nbytes) return SDC_OK;
    SDC_TRY(emit(w, data, nbytes, err));
    w->written += nbytes;
    return SDC_OK;
}

sdc_status sdc_st_writer_finish(sdc_st_writer *w, sdc_error *err) {
    SDC_TRY(check_state(w, W_DATA, "sdc_st_writer_finish", err));
    if (w->written != w->total) {
        /* Name the first tensor that is short, as the caller thinks in tensors. */
        const decl *d = w->d;
        while (d->begin + d->nbytes <= w->written) d++;
        return sdc_fail(err, SDC_E_INVALID_ARG,
                        "%s: tensor '%s' got %llu of its %llu bytes (%llu of %llu in all)", w->path,
                        d->name, (unsigned long long)(w->written - d->begin),
                        (unsigned long long)d->nbytes, (unsigned long long)w->written,
                        (unsigned long long)w->total);
    }
    SDC_TRY(flush(w, err));
    if (fsync(w->fd) != 0) return w_fail_io(w, "fsync", err);
    int fd = w->fd;
    w->fd = -1;
    if (close(fd) != 0) return w_fail_io(w, "close", err);
    if (rename(w->tmp, w->path) != 0) {
        int e = errno;
        w->state = W_FAILED;
        return sdc_fail(err, SDC_E_IO, "%s: cannot rename %s into place: %s", w->path, w->tmp,
                        strerror(e));
    }
    w->state = W_DONE;
    return SDC_OK;
}

void sdc_st_writer_free(sdc_st_writer *w) {
    if (!w) return;
    if (w->fd >= 0) close(w->fd);
    if (w->state != W_DONE && w->tmp) unlink(w->tmp);
    for (size_t i = 0; i < w->n; i++) free(w->d[i].name);
    for (size_t i = 0; i < w->n_meta; i++) {
        free((char *)w->meta[i].key);
        free((char *)w->meta[i].value);
    }
    free(w->d);
    free(w->meta);
    free(w->buf);
    free(w->tmp);
    free(w->path);
    free(w);
}
