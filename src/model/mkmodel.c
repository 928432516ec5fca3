/* src/model/mkmodel.c: the random-weight checkpoint writer (contract in mkmodel.h).
 *
 * Flow: build the layout, declare every tensor to the safetensors writer, then for each tensor
 * generate its values batch by batch (a batch is up to BATCH_BLOCKS random streams of
 * SDC_MKMODEL_BLOCK elements, split over the threads by stream) and append them. A full f16
 * model is ~1.07e9 values: the generator costs ~1 ns per value per thread, the rest is the
 * write itself. Values are stored in host byte order: sdc targets little-endian hosts only,
 * as safetensors is little-endian. */
#include "model/mkmodel.h"
#include "io/safetensors.h"
#include "io/torch_zip.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define BATCH_BLOCKS 64 /* 4M elements: 8 MiB of f16 per write */
#define MAX_THREADS 64

/* ------------------------------------------------------------------------------------------ */
/* Random streams: splitmix64 for seeding, xoshiro256** for values (Blackman & Vigna)          */
/* ------------------------------------------------------------------------------------------ */

typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t rng_next(rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

static uint64_t name_hash(const char *name) { /* FNV-1a */
    uint64_t h = 0xcbf29ce484222325ULL;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) h = (h ^ *p) * 0x100000001b3ULL;
    return h;
}

/* The stream of block `block` of the tensor whose name hashes to `nh`. */
static void rng_for_block(rng *r, uint64_t seed, uint64_t nh, uint64_t block) {
    uint64_t x = seed;
    x = splitmix64(&x) ^ nh;
    x = splitmix64(&x) ^ (block * 0xD1B54A32D192ED03ULL);
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&x);
}

/* ------------------------------------------------------------------------------------------ */
/* Values of one block                                                                         */
/* ------------------------------------------------------------------------------------------ */

/* What a float tensor's elements are drawn from: lo + scale * X with X uniform on [-1, 1) or
 * standard normal, or the constant lo when scale is 0. */
typedef struct dist {
    int normal;
    double lo, scale;
} dist;

static dist dist_of(const sdc_sd15_tensor *t, int norm_jitter) {
    switch (t->init) {
    case SDC_INIT_FAN_IN: return (dist){0, 0.0, 1.0 / sqrt((double)t->fan_in)};
    case SDC_INIT_NORM_WEIGHT: return (dist){1, 1.0, norm_jitter ? 0.2 : 0.0};
    case SDC_INIT_NORM_BIAS: return (dist){1, 0.0, norm_jitter ? 0.1 : 0.0};
    case SDC_INIT_EMBEDDING: return (dist){1, 0.0, 0.02};
    default: return (dist){0, 0.0, 0.0}; /* buffers are not drawn */
    }
}

/* Writes elements [first, first + n) of one block (first + n <= SDC_MKMODEL_BLOCK). Each 64-bit
 * draw yields two uniforms (24 bits each); each pair of draws yields two normals. */
static void gen_block(dist d, uint64_t seed, uint64_t nh, uint64_t block, int first, int n,
                      float *out) {
    if (d.scale == 0.0) {
        for (int i = 0; i < n; i++) out[i] = (float)d.lo;
        return;
    }
    rng r;
    rng_for_block(&r, seed, nh, block);
    int end = first + n;
    if (!d.normal) {
        float s = (float)(d.scale / 8388608.0); /* 2^23: centred 24-bit integers to [-1, 1) */
        for (int j = 0; j < first / 2; j++) rng_next(&r);
        for (int j = first & ~1; j < end; j += 2) {
            uint64_t x = rng_next(&r);
            float a = (float)((int32_t)(x >> 40) - 8388608) * s;
            float b = (float)((int32_t)((x >> 8) & 0xFFFFFF) - 8388608) * s;
            if (j >= first) out[j - first] = a;
            if (j + 1 < end) out[j + 1 - first] = b;
        }
        return;
    }
    for (int j = 0; j < first / 2; j++) {
        rng_next(&r);
        rng_next(&r);
    }
    for (int j = first & ~1; j < end; j += 2) {
        double u1 = (double)((rng_next(&r) >> 11) + 1) * 0x1p-53; /* (0, 1]: log is finite */
        double u2 = (double)(rng_next(&r) >> 11) * 0x1p-53;
        double rad = sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
        if (j >= first) out[j - first] = (float)(d.lo + d.scale * rad * cos(th));
        if (j + 1 < end) out[j + 1 - first] = (float)(d.lo + d.scale * rad * sin(th));
    }
}

sdc_status sdc_mkmodel_values(const sdc_sd15_config *c, const sdc_sd15_tensor *t, uint64_t seed,
                              int norm_jitter, int64_t begin, int64_t n, float *out,
                              sdc_error *err) {
    int64_t numel = sdc_sd15_numel(t);
    if (t->init == SDC_INIT_POSITION_IDS)
        return sdc_fail(err, SDC_E_INVALID_ARG, "mkmodel: %s is an integer tensor", t->name);
    if (begin < 0 || n < 0 || begin > numel || n > numel - begin)
        return sdc_fail(err, SDC_E_INVALID_ARG, "mkmodel: range [%" PRId64 ", +%" PRId64
                        ") outside %s (%" PRId64 " elements)", begin, n, t->name, numel);
    if (t->init == SDC_INIT_SCHEDULE) {
        double *v = malloc((size_t)numel * sizeof *v);
        if (!v) return sdc_fail(err, SDC_E_NOMEM, "mkmodel: out of memory");
        sdc_status st = sdc_sd15_schedule(c, t->schedule, v, err);
        if (st == SDC_OK && numel != c->timesteps)
            st = sdc_fail(err, SDC_E_INVALID_ARG, "mkmodel: %s has %" PRId64 " elements, the "
                          "config %d timesteps", t->name, numel, c->timesteps);
        for (int64_t i = 0; st == SDC_OK && i < n; i++) out[i] = (float)v[begin + i];
        free(v);
        return st;
    }
    dist d = dist_of(t, norm_jitter);
    uint64_t nh = name_hash(t->name);
    while (n > 0) {
        int64_t block = begin / SDC_MKMODEL_BLOCK;
        int first = (int)(begin % SDC_MKMODEL_BLOCK);
        int take = (int)(n < SDC_MKMODEL_BLOCK - first ? n : SDC_MKMODEL_BLOCK - first);
        gen_block(d, seed, nh, (uint64_t)block, first, take, out);
        out += take;
        begin += take;
        n -= take;
    }
    return SDC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Batches: threads fill whole blocks of one tensor and convert them to the file dtype         */
/* ------------------------------------------------------------------------------------------ */

static void store(sdc_dtype dt, void *dst, const float *src, size_t n) {
    switch (dt) {
    case SDC_F32: memcpy(dst, src, n * sizeof *src); break;
    case SDC_F16: {
        uint16_t *h = dst;
        for (size_t i = 0; i < n; i++) h[i] = sdc_f32_to_f16(src[i]);
        break;
    }
    default: { /* SDC_BF16, the only other dtype sdc_mkmodel accepts */
        uint16_t *h = dst;
        for (size_t i = 0; i < n; i++) h[i] = sdc_f32_to_bf16(src[i]);
        break;
    }
    }
}

typedef struct batch {
    dist d;
    uint64_t seed, nh;
    sdc_dtype dt;
    int64_t block0, nblocks, numel; /* blocks [block0, block0 + nblocks) of a numel tensor */
    unsigned char *out;             /* the batch's bytes, element block0 * BLOCK first */
    float *scratch;                 /* nth x SDC_MKMODEL_BLOCK floats */
    int nth;
} batch;

typedef struct worker_arg {
    batch *b;
    int ith;
} worker_arg;

static void *batch_worker(void *p) {
    worker_arg *a = p;
    batch *b = a->b;
    size_t esz = sdc_dtype_table[b->dt].size;
    float *tmp = b->scratch + (size_t)a->ith * SDC_MKMODEL_BLOCK;
    for (int64_t k = a->ith; k < b->nblocks; k += b->nth) {
        int64_t blk = b->block0 + k, start = blk * SDC_MKMODEL_BLOCK;
        int n = (int)(b->numel - start < SDC_MKMODEL_BLOCK ? b->numel - start : SDC_MKMODEL_BLOCK);
        gen_block(b->d, b->seed, b->nh, (uint64_t)blk, 0, n, tmp);
        store(b->dt, b->out + (size_t)k * SDC_MKMODEL_BLOCK * esz, tmp, (size_t)n);
    }
    return NULL;
}

/* Fills the batch with up to b->nth threads (the caller is thread 0). A thread that cannot be
 * created has its share run by the caller: the bytes are the same either way. */
static void run_batch(batch *b) {
    int nth = b->nth < b->nblocks ? b->nth : (int)b->nblocks;
    pthread_t tid[MAX_THREADS];
    worker_arg args[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    b->nth = nth;
    for (int i = 0; i < nth; i++) args[i] = (worker_arg){b, i};
    for (int i = 1; i < nth; i++) started[i] = pthread_create(&tid[i], NULL, batch_worker, &args[i]) == 0;
    batch_worker(&args[0]);
    for (int i = 1; i < nth; i++) {
        if (started[i]) pthread_join(tid[i], NULL);
        else batch_worker(&args[i]);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The file                                                                                    */
/* ------------------------------------------------------------------------------------------ */

sdc_mkmodel_params sdc_mkmodel_params_default(void) {
    sdc_mkmodel_params p = {
        .path = NULL, .variant = "full", .config = sdc_sd15_config_full(), .dtype = SDC_F16,
        .seed = 0, .norm_jitter = 0, .n_threads = 2,
    };
    return p;
}

/* The output must name a file in an existing, writable directory. */
static sdc_status check_out_path(const char *path, sdc_error *err) {
    if (!path || !*path) return sdc_fail(err, SDC_E_INVALID_ARG, "mkmodel: no output path");
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return sdc_fail(err, SDC_E_IO, "%s: is a directory", path);
    size_t n = strlen(path);
    char *dir = malloc(n + 2);
    if (!dir) return sdc_fail(err, SDC_E_NOMEM, "mkmodel: out of memory");
    const char *slash = strrchr(path, '/');
    if (!slash) strcpy(dir, ".");
    else if (slash == path) strcpy(dir, "/");
    else {
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    sdc_status rc = SDC_OK;
    if (stat(dir, &st) != 0)
        rc = sdc_fail(err, SDC_E_IO, "%s: directory %s: %s", path, dir, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        rc = sdc_fail(err, SDC_E_IO, "%s: %s is not a directory", path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        rc = sdc_fail(err, SDC_E_IO, "%s: directory %s is not writable: %s", path, dir,
                      strerror(errno));
    free(dir);
    return rc;
}

static const char *dtype_word(sdc_dtype dt) {
    return dt == SDC_F32 ? "f32" : dt == SDC_F16 ? "f16" : "bf16";
}

static sdc_status write_metadata(sdc_st_writer *w, const sdc_mkmodel_params *p, sdc_error *err) {
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, p->seed);
    SDC_TRY(sdc_st_writer_meta(w, "format", "pt", err));
    SDC_TRY(sdc_st_writer_meta(w, "generator", "sdc mkmodel", err));
    SDC_TRY(sdc_st_writer_meta(w, "sdc.variant", p->variant ? p->variant : "custom", err));
    SDC_TRY(sdc_st_writer_meta(w, "sdc.seed", seed, err));
    SDC_TRY(sdc_st_writer_meta(w, "sdc.dtype", dtype_word(p->dtype), err));
    SDC_TRY(sdc_st_writer_meta(w, "sdc.note",
                               "random weights, SD1.5 architecture, not a trained model", err));
    SDC_TRY(sdc_st_writer_meta(w, "sdc.init",
                               "conv/linear U(+-1/sqrt(fan_in)); norms 1, 0; embeddings N(0, 0.02^2)",
                               err));
    if (p->norm_jitter)
        SDC_TRY(sdc_st_writer_meta(w, "sdc.norm_jitter", "1+0.2N weights, 0.1N biases", err));
    return SDC_OK;
}

/* Generates and appends one tensor's data. buf holds BATCH_BLOCKS blocks of the file dtype
 * (and of int64 for position_ids); scratch holds nth blocks of floats. */
static sdc_status write_tensor(sdc_st_writer *w, const sdc_mkmodel_params *p,
                               const sdc_sd15_tensor *t, unsigned char *buf, float *scratch,
                               sdc_error *err) {
    int64_t numel = sdc_sd15_numel(t);
    size_t esz = sdc_dtype_table[p->dtype].size;
    if (t->init == SDC_INIT_POSITION_IDS) {
        if (numel > (int64_t)BATCH_BLOCKS * SDC_MKMODEL_BLOCK / 4)
            return sdc_fail(err, SDC_E_LIMIT, "mkmodel: %s too large", t->name);
        int64_t *ids = (int64_t *)buf;
        for (int64_t i = 0; i < numel; i++) ids[i] = i;
        return sdc_st_writer_write(w, ids, (size_t)numel * sizeof *ids, err);
    }
    if (t->init == SDC_INIT_SCHEDULE) {
        if (numel > SDC_MKMODEL_BLOCK)
            return sdc_fail(err, SDC_E_LIMIT, "mkmodel: %s too large", t->name);
        SDC_TRY(sdc_mkmodel_values(&p->config, t, p->seed, p->norm_jitter, 0, numel, scratch, err));
        store(p->dtype, buf, scratch, (size_t)numel);
        return sdc_st_writer_write(w, buf, (size_t)numel * esz, err);
    }
    batch b = {
        .d = dist_of(t, p->norm_jitter), .seed = p->seed, .nh = name_hash(t->name),
        .dt = p->dtype, .numel = numel, .out = buf, .scratch = scratch,
    };
    int64_t nblocks = (numel + SDC_MKMODEL_BLOCK - 1) / SDC_MKMODEL_BLOCK;
    for (int64_t b0 = 0; b0 < nblocks; b0 += BATCH_BLOCKS) {
        b.block0 = b0;
        b.nblocks = nblocks - b0 < BATCH_BLOCKS ? nblocks - b0 : BATCH_BLOCKS;
        b.nth = p->n_threads;
        run_batch(&b);
        int64_t first = b0 * SDC_MKMODEL_BLOCK;
        int64_t count = numel - first < b.nblocks * SDC_MKMODEL_BLOCK ? numel - first
                                                                       : b.nblocks * SDC_MKMODEL_BLOCK;
        SDC_TRY(sdc_st_writer_write(w, buf, (size_t)count * esz, err));
    }
    return SDC_OK;
}

sdc_status sdc_mkmodel(const sdc_mkmodel_params *p, sdc_error *err) {
    if (p->dtype != SDC_F32 && p->dtype != SDC_F16 && p->dtype != SDC_BF16)
        return sdc_fail(err, SDC_E_INVALID_ARG, "mkmodel: dtype must be f32, f16 or bf16");
    if (p->n_threads < 1 || p->n_threads > MAX_THREADS)
        return sdc_fail(err, SDC_E_INVALID_ARG, "mkmodel: threads %d outside [1, %d]",
                        p->n_threads, MAX_THREADS);
    SDC_TRY(check_out_path(p->path, err));

    sdc_sd15_layout lay;
    SDC_TRY(sdc_sd15_layout_build(&p->config, &lay, err));

    sdc_status rc = SDC_OK;
    sdc_st_writer *w = NULL;
    size_t bufsize = (size_t)BATCH_BLOCKS * SDC_MKMODEL_BLOCK * 4; /* f32 worst case */
    unsigned char *buf = malloc(bufsize);
    float *scratch = malloc((size_t)p->n_threads * SDC_MKMODEL_BLOCK * sizeof *scratch);
    if (!buf || !scratch) {
        rc = sdc_fail(err, SDC_E_NOMEM, "mkmodel: out of memory for the write buffers");
        goto cleanup;
    }

    if ((rc = sdc_st_writer_new(p->path, &w, err)) != SDC_OK) goto cleanup;
    if ((rc = write_metadata(w, p, err)) != SDC_OK) goto cleanup;
    for (size_t i = 0; i < lay.n; i++) {
        const sdc_sd15_tensor *t = &lay.t[i];
        sdc_dtype dt = t->init == SDC_INIT_POSITION_IDS ? SDC_I64 : p->dtype;
        if ((rc = sdc_st_writer_declare(w, t->name, dt, t->ndim, t->shape, err)) != SDC_OK)
            goto cleanup;
    }
    if ((rc = sdc_st_writer_begin_data(w, err)) != SDC_OK) goto cleanup;
    for (size_t i = 0; i < lay.n; i++)
        if ((rc = write_tensor(w, p, &lay.t[i], buf, scratch, err)) != SDC_OK) goto cleanup;
    rc = sdc_st_writer_finish(w, err);

cleanup:
    sdc_st_writer_free(w); /* after a failure this removes the temporary file */
    free(scratch);
    free(buf);
    sdc_sd15_layout_free(&lay);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Random textual-inversion embeddings                                                         */
/* ------------------------------------------------------------------------------------------ */

sdc_status sdc_mkmodel_embedding_values(int vectors, int width, uint64_t seed, float *out, sdc_error *err) {
    if (vectors < 0 || vectors > SDC_MKMODEL_MAX_VECTORS || width < 1 || width > 65536)
        return sdc_fail(err, SDC_E_INVALID_ARG, "mkmodel: embedding [%d, %d]: vectors must be 0..%d, width 1..65536",
                        vectors, width, SDC_MKMODEL_MAX_VECTORS);
    dist d = {1, 0.0, 0.02}; /* as the token table it stands in for */
    uint64_t nh = name_hash("emb_params");
    int64_t numel = (int64_t)vectors * width;
    for (int64_t b = 0; b * SDC_MKMODEL_BLOCK < numel; b++) {
        int64_t first = b * SDC_MKMODEL_BLOCK, n = numel - first < SDC_MKMODEL_BLOCK ? numel - first : SDC_MKMODEL_BLOCK;
        gen_block(d, seed, nh, (uint64_t)b, 0, (int)n, out + first);
    }
    return SDC_OK;
}

sdc_status sdc_mkmodel_embedding(const char *path, int vectors, int width, sdc_dtype dt, uint64_t seed,
                                 sdc_error *err) {
    const char *base = path ? strrchr(path, '/') : NULL, *dot;
    base = base ? base + 1 : path;
    if (!path || !(dot = strrchr(base, '.')) || dot == base)
        return sdc_fail(err, SDC_E_INVALID_ARG, "mkmodel: embedding file '%s' needs a name and an extension "
                        "(.safetensors, .pt or .bin)", path ? path : "(null)");
    int st = !strcasecmp(dot, ".safetensors"), pt = !strcasecmp(dot, ".pt"), bin = !strcasecmp(dot, ".bin");
    if (!st && !pt && !bin)
        return sdc_fail(err, SDC_E_INVALID_ARG, "mkmodel: %s: an embedding is .safetensors, .pt or .bin", path);
    if (dt != SDC_F32 && dt != SDC_F16)
        return sdc_fail(err, SDC_E_INVALID_ARG, "mkmodel: an embedding's dtype is f32 or f16");
    SDC_TRY(check_out_path(path, err));
    size_t numel = (size_t)(vectors > 0 ? vectors : 0) * (size_t)(width > 0 ? width : 0);
    float *v = malloc((numel ? numel : 1) * sizeof *v);
    if (!v) return sdc_fail(err, SDC_E_NOMEM, "mkmodel: out of memory");
    sdc_status rc = sdc_mkmodel_embedding_values(vectors, width, seed, v, err);
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(dot - base), base);
    if (rc == SDC_OK && st) { /* webui's "Save embedding as safetensors": one tensor, emb_params */
        sdc_st_writer *w = NULL;
        int64_t shape[2] = {vectors, width};
        void *raw = malloc((numel ? numel : 1) * 4);
        if (!raw) rc = sdc_fail(err, SDC_E_NOMEM, "mkmodel: out of memory");
        else store(dt, raw, v, numel);
        if (rc == SDC_OK && (rc = sdc_st_writer_new(path, &w, err)) == SDC_OK &&
            (rc = sdc_st_writer_meta(w, "sdc.note", "random textual-inversion embedding (sdc mkmodel)", err)) == SDC_OK &&
            (rc = sdc_st_writer_declare(w, "emb_params", dt, 2, shape, err)) == SDC_OK &&
            (rc = sdc_st_writer_begin_data(w, err)) == SDC_OK &&
            (rc = sdc_st_writer_write(w, raw, numel * sdc_dtype_table[dt].size, err)) == SDC_OK)
            rc = sdc_st_writer_finish(w, err);
        sdc_st_writer_free(w);
        free(raw);
    } else if (rc == SDC_OK) {
        rc = sdc_torch_write_embedding(path, name, pt, dt, v, vectors, width, err);
    }
    free(v);
    return rc;
}
