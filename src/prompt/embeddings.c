/* src/prompt/embeddings.c: the textual-inversion embedding database (contract in embeddings.h).
 *
 * Flow: walk the directory (sorted, bounded), read each candidate file (safetensors or torch zip)
 * into an sdc_embedding, usable or with the reason it is not, register it under its name, and
 * answer longest-match queries on token ids for the prompt tokenizer (conditioning.c). */
#include "prompt/embeddings.h"

#include "core/sha256.h"
#include "io/safetensors.h"
#include "io/torch_zip.h"
#include "model/model.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

static char *dupstr(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

void sdc_embedding_clear(sdc_embedding *e) {
    if (!e) return;
    free(e->name);
    free(e->path);
    free(e->vec);
    free(e->error);
    memset(e, 0, sizeof *e);
}

/* Marks e unusable with a one-line reason (the caller names the file in fmt). */
static sdc_status unusable(sdc_embedding *e, sdc_error *err, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static sdc_status unusable(sdc_embedding *e, sdc_error *err, const char *fmt, ...) {
    char msg[SDC_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    free(e->vec);
    e->vec = NULL;
    free(e->error);
    if (!(e->error = dupstr(msg))) return sdc_fail(err, SDC_E_NOMEM, "out of memory");
    return SDC_OK;
}

/* The extension of a file name as Python's os.path.splitext sees it (leading dots are not one),
 * or NULL. */
static const char *extension(const char *base) {
    const char *dot = strrchr(base, '.');
    if (!dot) return NULL;
    for (const char *p = base; p < dot; p++)
        if (*p != '.') return dot;
    return NULL;
}

static int is_candidate(const char *base) {
    const char *x = extension(base);
    return x && (!strcasecmp(x, ".pt") || !strcasecmp(x, ".bin") || !strcasecmp(x, ".safetensors"));
}

/* Checks a [N, W] (or, when one_d_ok, [W] = [1, W]) tensor shape and takes N and W. */
static sdc_status take_shape(sdc_embedding *e, int width, int ndim, const int64_t *shape, int one_d_ok, sdc_error *err,
                             int *ok) {
    *ok = 0;
    int64_t n, w;
    if (ndim == 1 && one_d_ok) n = 1, w = shape[0];
    else if (ndim == 2) n = shape[0], w = shape[1];
    else
        return unusable(e, err, "%s: a tensor of %d dimensions; an embedding is [vectors, width]", e->path, ndim);
    if (w != width)
        return unusable(e, err, "%s: [%lld, %lld] vectors are %lld wide; this model's text encoder takes %d", e->path,
                        (long long)n, (long long)w, (long long)w, width);
    if (n > SDC_EMB_MAX_VECTORS)
        return unusable(e, err, "%s: %lld vectors; at most %d fit in a prompt chunk (webui fails on it too)", e->path,
                        (long long)n, SDC_EMB_MAX_VECTORS);
    e->vectors = (int)n;
    e->width = (int)w;
    if (!(e->vec = malloc((size_t)(n * w > 0 ? n * w : 1) * sizeof *e->vec)))
        return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", e->path);
    *ok = 1;
    return SDC_OK;
}

static void set_hash(sdc_embedding *e, const void *bytes, size_t n) {
    uint8_t d[32];
    char hex[SDC_SHA256_HEX];
    sdc_sha256(bytes, n, d);
    sdc_sha256_hex(d, hex);
    memcpy(e->shorthash, hex, 12);
    e->shorthash[12] = 0;
}

static sdc_status read_safetensors(sdc_embedding *e, int width, sdc_error *err) {
    sdc_st_file *st = NULL;
    sdc_error fe = {0};
    if (sdc_st_open(e->path, &st, &fe) != SDC_OK)
        return fe.code == SDC_E_NOMEM ? sdc_fail(err, SDC_E_NOMEM, "%s", fe.msg) : unusable(e, err, "%s", fe.msg);
    set_hash(e, sdc_st_file_bytes(st), sdc_st_file_size(st));
    sdc_status s = SDC_OK;
    size_t n = sdc_st_count(st);
    int ok = 0;
    if (sdc_st_find(st, "clip_g") && sdc_st_find(st, "clip_l")) {
        s = unusable(e, err, "%s: an SDXL embedding (clip_g + clip_l); this model's text encoder takes %d-wide vectors",
                     e->path, width);
    } else if (n != 1) {
        s = unusable(e, err, "%s: %zu tensors; an embedding file holds exactly one", e->path, n);
    } else {
        const sdc_st_tensor *t = sdc_st_get(st, 0);
        if (!sdc_dtype_table[t->dtype].is_float)
            s = unusable(e, err, "%s: tensor %s is %s, not floating point", e->path, t->name, sdc_dtype_table[t->dtype].name);
        else if ((s = take_shape(e, width, t->ndim, t->shape, 1, err, &ok)) == SDC_OK && ok)
            sdc_convert_to_f32(e->vec, t->data, t->dtype, (size_t)e->vectors * (size_t)e->width);
    }
    sdc_st_close(st);
    return s;
}

static sdc_status read_torch(sdc_embedding *e, int width, sdc_error *err) {
    sdc_torch_file *f = NULL;
    sdc_error fe = {0};
    if (sdc_torch_open(e->path, &f, &fe) != SDC_OK)
        return fe.code == SDC_E_NOMEM ? sdc_fail(err, SDC_E_NOMEM, "%s", fe.msg) : unusable(e, err, "%s", fe.msg);
    size_t len;
    const uint8_t *bytes = sdc_torch_bytes(f, &len);
    set_hash(e, bytes, len);
    const sdc_torch_obj *root = sdc_torch_root(f), *t = NULL, *stp = sdc_torch_dict_get(root, "string_to_param");
    sdc_status s = SDC_OK;
    int one_d_ok = 0, ok = 0;
    if (root->kind != SDC_TORCH_DICT) {
        s = unusable(e, err, "%s: holds no dict, so neither a textual-inversion embedding nor a diffusers concept", e->path);
    } else if (stp) {
        if (stp->kind == SDC_TORCH_OBJECT) stp = sdc_torch_dict_get(stp->state, "_parameters"); /* nn.ParameterDict */
        if (!stp || stp->kind != SDC_TORCH_DICT)
            s = unusable(e, err, "%s: 'string_to_param' is not a dict of tensors", e->path);
        else if (stp->n_items != 2)
            s = unusable(e, err, "%s: 'string_to_param' holds %zu terms; an embedding has exactly one", e->path,
                         stp->n_items / 2);
        else
            t = stp->items[1];
    } else if (sdc_torch_dict_get(root, "clip_g") && sdc_torch_dict_get(root, "clip_l")) {
        s = unusable(e, err, "%s: an SDXL embedding (clip_g + clip_l); this model's text encoder takes %d-wide vectors",
                     e->path, width);
    } else if (root->n_items >= 2 && root->items[1]->kind == SDC_TORCH_TENSOR) { /* a diffusers concept */
        if (root->n_items != 2)
            s = unusable(e, err, "%s: %zu entries; a diffusers concept holds exactly one tensor", e->path,
                         root->n_items / 2);
        t = root->items[1];
        one_d_ok = 1;
    } else {
        s = unusable(e, err, "%s: neither 'string_to_param' nor a single tensor, so not an embedding", e->path);
    }
    if (s == SDC_OK && !e->error && t) {
        if (t->kind != SDC_TORCH_TENSOR)
            s = unusable(e, err, "%s: the embedding's value is not a tensor", e->path);
        else if (!sdc_dtype_table[t->dtype].is_float)
            s = unusable(e, err, "%s: the tensor is %s, not floating point", e->path, sdc_dtype_table[t->dtype].name);
        else if ((s = take_shape(e, width, t->ndim, t->shape, one_d_ok, err, &ok)) == SDC_OK && ok)
            s = sdc_torch_tensor_f32(t, e->vec, err);
    }
    sdc_torch_close(f);
    return s;
}

sdc_status sdc_embedding_read(const sdc_tokenizer *tok, const char *path, int width, sdc_embedding *e,
                              sdc_error *err) {
    memset(e, 0, sizeof *e);
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *ext = extension(base);
    if (!(e->path = dupstr(path)) || !(e->name = dupstr(base))) {
        sdc_embedding_clear(e);
        return sdc_fail(err, SDC_E_NOMEM, "out of memory");
    }
    if (ext) e->name[ext - base] = 0;
    char eb[SDC_ERRMSG_MAX];
    size_t n = 0;
    sdc_status s;
    if (sdc_tokenize_raw(tok, e->name, e->ids, SDC_EMB_MAX_NAME_IDS, &n, eb, sizeof eb) != SDC_OK)
        s = unusable(e, err, "%s: the name cannot be tokenized: %s", path, eb);
    else if (n > SDC_EMB_MAX_NAME_IDS)
        s = unusable(e, err, "%s: the name is %zu tokens, more than %d", path, n, SDC_EMB_MAX_NAME_IDS);
    else {
        e->n_ids = (int)n;
        struct stat sb;
        if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
            s = unusable(e, err, "%s: cannot be read", path);
        else if ((int64_t)sb.st_size > SDC_EMB_MAX_FILE_BYTES)
            s = unusable(e, err, "%s: %lld bytes; an embedding file above %lld MiB is not read", path,
                         (long long)sb.st_size, (long long)(SDC_EMB_MAX_FILE_BYTES >> 20));
        else if (ext && !strcasecmp(ext, ".safetensors"))
            s = read_safetensors(e, width, err);
        else
            s = read_torch(e, width, err);
    }
    if (s != SDC_OK) sdc_embedding_clear(e);
    return s;
}

/* ============================================================================================ */
/* The directory                                                                                */
/* ============================================================================================ */

typedef struct paths {
    char **v;
    int n, cap;
} paths;

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static sdc_status add_path(paths *p, char *s, sdc_error *err) {
    if (p->n == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        char **v = realloc(p->v, (size_t)cap * sizeof *v);
        if (!v) {
            free(s);
            return sdc_fail(err, SDC_E_NOMEM, "out of memory listing embeddings");
        }
        p->v = v, p->cap = cap;
    }
    p->v[p->n++] = s;
    return SDC_OK;
}

static void paths_free(paths *p) {
    for (int i = 0; i < p->n; i++) free(p->v[i]);
    free(p->v);
    memset(p, 0, sizeof *p);
}

/* Appends the candidate files under dir, each directory's entries in sorted order; webui walks
 * subdirectories too (os.walk, following links: the depth limit stops link cycles). */
static sdc_status walk(const char *dir, int depth, paths *files, const char *root, sdc_error *err) {
    DIR *d = opendir(dir);
    if (!d) return depth == 0 ? sdc_fail(err, SDC_E_IO, "%s: cannot open the embeddings directory", dir) : SDC_OK;
    paths names = {0};
    sdc_status s = SDC_OK;
    for (struct dirent *de; s == SDC_OK && (de = readdir(d));) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
        if (names.n >= 4 * SDC_EMB_MAX_FILES) {
            s = sdc_fail(err, SDC_E_LIMIT, "%s: more than %d entries in one embeddings directory", dir, 4 * SDC_EMB_MAX_FILES);
            break;
        }
        size_t len = strlen(dir) + strlen(de->d_name) + 2;
        char *full = malloc(len);
        if (!full) {
            s = sdc_fail(err, SDC_E_NOMEM, "out of memory listing embeddings");
            break;
        }
        snprintf(full, len, "%s/%s", dir, de->d_name);
        s = add_path(&names, full, err);
    }
    closedir(d);
    if (s == SDC_OK) qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    for (int i = 0; s == SDC_OK && i < names.n; i++) {
        struct stat sb;
        if (stat(names.v[i], &sb) != 0) continue;
        if (S_ISDIR(sb.st_mode)) {
            if (depth + 1 < SDC_EMB_MAX_DEPTH) s = walk(names.v[i], depth + 1, files, root, err);
            continue;
        }
        const char *base = strrchr(names.v[i], '/') + 1;
        if (!S_ISREG(sb.st_mode) || sb.st_size == 0 || !is_candidate(base)) continue; /* webui skips empty files */
        if (files->n == SDC_EMB_MAX_FILES) {
            s = sdc_fail(err, SDC_E_LIMIT, "%s: more than %d embedding files", root, SDC_EMB_MAX_FILES);
            break;
        }
        s = add_path(files, names.v[i], err);
        names.v[i] = NULL;
    }
    paths_free(&names);
    return s;
}

static void db_free(sdc_embeddings *db) {
    if (!db) return;
    for (int i = 0; i < db->n; i++) sdc_embedding_clear(&db->v[i]);
    free(db->v);
    free(db);
}

/* Registers e (moved in) under its name: see embeddings.h for which of two namesakes wins. */
static void db_add(sdc_embeddings *db, sdc_embedding *e) {
    for (int i = 0; i < db->n; i++) {
        if (strcmp(db->v[i].name, e->name) != 0) continue;
        if (!db->v[i].error && e->error) {
            sdc_embedding_clear(e);
            return;
        }
        sdc_embedding_clear(&db->v[i]);
        memmove(&db->v[i], &db->v[i + 1], (size_t)(db->n - i - 1) * sizeof *db->v);
        db->n--;
        break;
    }
    db->v[db->n++] = *e;
    memset(e, 0, sizeof *e);
}

sdc_status sdc_embeddings_load_dir(const sdc_tokenizer *tok, const char *dir, int width, sdc_embeddings **out,
                                   sdc_error *err) {
    *out = NULL;
    if (!tok || !dir) return sdc_fail(err, SDC_E_INVALID_ARG, "embeddings: %s is NULL", tok ? "directory" : "tokenizer");
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return sdc_fail(err, SDC_E_IO, "%s: not a directory (--embeddings expects the folder of embedding files)", dir);
    paths files = {0};
    sdc_embeddings *db = calloc(1, sizeof *db);
    sdc_status s = db ? walk(dir, 0, &files, dir, err) : sdc_fail(err, SDC_E_NOMEM, "out of memory");
    if (s == SDC_OK && !(db->v = calloc((size_t)(files.n ? files.n : 1), sizeof *db->v)))
        s = sdc_fail(err, SDC_E_NOMEM, "out of memory");
    if (db) db->width = width;
    for (int i = 0; s == SDC_OK && i < files.n; i++) {
        sdc_embedding e;
        if ((s = sdc_embedding_read(tok, files.v[i], width, &e, err)) == SDC_OK) db_add(db, &e);
    }
    paths_free(&files);
    if (s != SDC_OK) {
        db_free(db);
        return s;
    }
    *out = db;
    return SDC_OK;
}

const sdc_embedding *sdc_embeddings_match(const sdc_embeddings *db, const int32_t *ids, size_t n, int *len) {
    const sdc_embedding *best = NULL;
    *len = 0;
    if (!db) return NULL;
    for (int i = 0; i < db->n; i++) {
        const sdc_embedding *e = &db->v[i];
        if (e->n_ids > *len && (size_t)e->n_ids <= n && memcmp(e->ids, ids, (size_t)e->n_ids * sizeof *ids) == 0) {
            best = e;
            *len = e->n_ids;
        }
    }
    return best;
}

sdc_status sdc_ti_hashes_prepend(char **ti_hashes, const sdc_embedding *const *used, int n, sdc_error *err) {
    if (n == 0) return SDC_OK;
    size_t cap = (*ti_hashes ? strlen(*ti_hashes) + 2 : 0) + 1;
    for (int i = 0; i < n; i++) cap += strlen(used[i]->name) + 2 + 12 + 2;
    char *s = malloc(cap), *p = s;
    if (!s) return sdc_fail(err, SDC_E_NOMEM, "out of memory");
    for (int i = 0; i < n; i++) {
        if (!used[i]->shorthash[0]) continue;
        if (p != s) *p++ = ',', *p++ = ' ';
        for (const char *c = used[i]->name; *c; c++)
            if (*c != ':' && *c != ',') *p++ = *c;
        p += sprintf(p, ": %s", used[i]->shorthash);
    }
    if (*ti_hashes && **ti_hashes) p += sprintf(p, "%s%s", p != s ? ", " : "", *ti_hashes);
    *p = 0;
    free(*ti_hashes);
    *ti_hashes = s;
    return SDC_OK;
}

/* ============================================================================================ */
/* Public API                                                                                   */
/* ============================================================================================ */

sdc_status sdc_embeddings_load(const sdc_model *m, const sdc_tokenizer *tok, const char *dir, sdc_embeddings **out,
                               char *errbuf, size_t errlen) {
    sdc_error e = {0};
    if (out) *out = NULL;
    if (!m || !out)
        sdc_fail(&e, SDC_E_INVALID_ARG, "sdc_embeddings_load: %s is NULL", m ? "out" : "model");
    else if (!m->has_clip)
        sdc_fail(&e, SDC_E_FORMAT, "%s: no text encoder, so no textual-inversion embeddings", m->path);
    else
        sdc_embeddings_load_dir(tok, dir, m->clip.width, out, &e);
    if (e.code != SDC_OK && errbuf && errlen) snprintf(errbuf, errlen, "%s", e.msg);
    return e.code;
}

void sdc_embeddings_free(sdc_embeddings *e) { db_free(e); }

int sdc_embeddings_count(const sdc_embeddings *e, int usable) {
    int n = 0;
    for (int i = 0; e && i < e->n; i++) n += !usable || !e->v[i].error;
    return n;
}
