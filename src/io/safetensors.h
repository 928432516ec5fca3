/* src/io/safetensors.h: a memory-mapped, validating reader (and a streaming writer) for the
 * safetensors format.
 *
 * Format: an 8-byte little-endian u64 N, then N bytes of UTF-8 JSON, then the data section.
 * The JSON is one object; each key is a tensor name mapping to
 *     {"dtype": "F16", "shape": [320, 4, 3, 3], "data_offsets": [begin, end]}
 * with offsets relative to the start of the data section; the optional key "__metadata__" maps
 * to an object of string -> string.
 *
 * The reader checks everything before any tensor is used: header length within the file and
 * under SDC_ST_MAX_HEADER, well-formed JSON, known dtypes, shapes whose byte size matches the
 * offsets, offsets inside the data section, no inversion, no overlap, no duplicate names.
 * Any violation is an SDC_E_FORMAT with a one-line message naming the file and the problem.
 * Tensor data is never copied: each tensor points into the read-only mapping.
 */
#ifndef SDC_IO_SAFETENSORS_H
#define SDC_IO_SAFETENSORS_H

#include "core/dtype.h"
#include "core/error.h"

#define SDC_ST_MAX_HEADER (100u * 1024u * 1024u) /* 100 MB, as the reference implementation */
#define SDC_ST_MAX_DIMS 8

typedef struct sdc_st_tensor {
    const char *name;                 /* NUL-terminated, owned by the file */
    sdc_dtype dtype;
    int ndim;
    int64_t shape[SDC_ST_MAX_DIMS];
    int64_t numel;
    const void *data;                 /* points into the mapping */
    size_t nbytes;
} sdc_st_tensor;

typedef struct sdc_st_meta {
    const char *key, *value;
} sdc_st_meta;

typedef struct sdc_st_file sdc_st_file;

/* Opens and validates `path`. *out is NULL on failure. */
sdc_status sdc_st_open(const char *path, sdc_st_file **out, sdc_error *err);

/* Validates an in-memory image of a whole file (used by tests and the fuzzer). The buffer must
 * outlive the returned handle. `label` names it in error messages. */
sdc_status sdc_st_open_memory(const void *buf, size_t len, const char *label, sdc_st_file **out,
                              sdc_error *err);

void sdc_st_close(sdc_st_file *f);

size_t sdc_st_count(const sdc_st_file *f);
const sdc_st_tensor *sdc_st_get(const sdc_st_file *f, size_t i); /* in file order of offsets */
const sdc_st_tensor *sdc_st_find(const sdc_st_file *f, const char *name); /* NULL if absent */
const char *sdc_st_path(const sdc_st_file *f);
size_t sdc_st_file_size(const sdc_st_file *f);
const void *sdc_st_file_bytes(const sdc_st_file *f); /* the whole mapping (for hashing) */
size_t sdc_st_meta_count(const sdc_st_file *f);
const sdc_st_meta *sdc_st_meta_get(const sdc_st_file *f, size_t i);
const char *sdc_st_meta_find(const sdc_st_file *f, const char *key); /* NULL if absent */

/* ---- writer ----
 * Streaming writer: declare every tensor first (name, dtype, shape), then write the data of each
 * in declaration order. The file is written to `path.tmp` and renamed on sdc_st_writer_finish,
 * so a failed run never leaves a partial file behind. */
typedef struct sdc_st_writer sdc_st_writer;

sdc_status sdc_st_writer_new(const char *path, sdc_st_writer **out, sdc_error *err);
sdc_status sdc_st_writer_meta(sdc_st_writer *w, const char *key, const char *value, sdc_error *err);
sdc_status sdc_st_writer_declare(sdc_st_writer *w, const char *name, sdc_dtype dt, int ndim,
                                 const int64_t *shape, sdc_error *err);
/* Writes the header; call once after all declarations. */
sdc_status sdc_st_writer_begin_data(sdc_st_writer *w, sdc_error *err);
/* Appends raw bytes of the current tensor(s), in declaration order. */
sdc_status sdc_st_writer_write(sdc_st_writer *w, const void *data, size_t nbytes, sdc_error *err);
/* Checks that every declared byte was written, then renames into place. */
sdc_status sdc_st_writer_finish(sdc_st_writer *w, sdc_error *err);
/* Abandons the file (removes the temporary). Accepts NULL. */
void sdc_st_writer_free(sdc_st_writer *w);

#endif
