/* src/io/torch_zip.h: PyTorch's torch.save files (.pt, .bin), read without Python and without
 * executing anything; and a writer for the small files the tests need.
 *
 * Since torch 1.6, torch.save writes a zip archive whose entries are "stored" (not compressed):
 *     ARCHIVE/data.pkl        the saved object, pickled (protocol 2)
 *     ARCHIVE/data/KEY        the raw little-endian bytes of each storage
 *     ARCHIVE/version, ARCHIVE/byteorder, ARCHIVE/.data/serialization_id
 * In the pickle, a tensor is torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
 * requires_grad, backward_hooks[, metadata]) and the storage a persistent id
 * ('storage', torch.FloatStorage, 'KEY', 'cpu', numel) that names ARCHIVE/data/KEY.
 *
 * Reader. The zip's end record and central directory are checked (entries inside the file, no
 * overlap with the directory, "stored" method, no encryption, CRC-32 of every entry read). The
 * pickle runs on a small stack machine that knows the opcodes torch and Python's protocol-2
 * pickler emit and exactly these globals:
 *     collections.OrderedDict                       -> a dict
 *     builtins.set                                  -> a list
 *     torch._utils._rebuild_tensor_v2               -> a tensor (a view into its storage)
 *     torch._utils._rebuild_parameter(_with_state)  -> the tensor it wraps
 *     torch.{Float,Half,BFloat16,Double,Long,Int,Short,Char,Byte,Bool}Storage
 *     torch.nn.modules.container.ParameterDict      -> an object with its BUILD state (old
 *                                                      textual-inversion files pickled one)
 * Any other global or opcode is refused with one line naming it and its offset; so are legacy
 * (pre-1.6, non-zip) files. Bounded: SDC_TORCH_MAX_BYTES of file, SDC_TORCH_MAX_OBJECTS objects,
 * a stack of SDC_TORCH_MAX_STACK, memo keys below SDC_TORCH_MAX_MEMO, SDC_TORCH_MAX_ENTRIES zip
 * entries; a tensor must lie inside its storage and have no more elements than the file has
 * bytes. Nothing is allocated in proportion to a size field that the file's length does not back.
 *
 *     sdc_torch_file *f;
 *     SDC_TRY(sdc_torch_open(path, &f, err));
 *     const sdc_torch_obj *t = sdc_torch_dict_get(sdc_torch_root(f), "weight");
 *     if (t && t->kind == SDC_TORCH_TENSOR) ... sdc_torch_tensor_f32(f, t, out, err) ...
 *     sdc_torch_close(f);
 */
#ifndef SDC_IO_TORCH_ZIP_H
#define SDC_IO_TORCH_ZIP_H

#include "core/dtype.h"
#include "core/error.h"

#include <stddef.h>
#include <stdint.h>

#define SDC_TORCH_MAX_BYTES ((size_t)256 << 20) /* a file above 256 MiB is not read */
#define SDC_TORCH_MAX_OBJECTS (1 << 16)
#define SDC_TORCH_MAX_STACK (1 << 14)
#define SDC_TORCH_MAX_MEMO (1 << 16)
#define SDC_TORCH_MAX_ENTRIES 4096
#define SDC_TORCH_MAX_DIMS 8

typedef enum sdc_torch_kind {
    SDC_TORCH_NONE,
    SDC_TORCH_BOOL,
    SDC_TORCH_INT,
    SDC_TORCH_FLOAT,
    SDC_TORCH_STR,     /* UTF-8 */
    SDC_TORCH_BYTES,
    SDC_TORCH_TUPLE,
    SDC_TORCH_LIST,
    SDC_TORCH_DICT,    /* items: key, value, key, value, ... in insertion order */
    SDC_TORCH_TENSOR,
    SDC_TORCH_OBJECT,  /* an instance of an allowed class: cls and its BUILD state */
    SDC_TORCH_GLOBAL,  /* the rest only exist while unpickling */
    SDC_TORCH_STORAGE,
} sdc_torch_kind;

typedef struct sdc_torch_obj sdc_torch_obj;
struct sdc_torch_obj {
    sdc_torch_kind kind;
    int64_t i;               /* BOOL, INT; GLOBAL: which one (torch_zip.c) */
    double f;                /* FLOAT */
    const char *s;           /* STR, BYTES: into the file image, not NUL-terminated */
    size_t n;                /* their length in bytes */
    sdc_torch_obj **items;   /* TUPLE, LIST, DICT */
    size_t n_items, cap;
    /* TENSOR (and STORAGE: dtype, data, storage_numel) */
    sdc_dtype dtype;
    int ndim;
    int64_t shape[SDC_TORCH_MAX_DIMS], stride[SDC_TORCH_MAX_DIMS];
    int64_t offset;          /* in elements, from the start of the storage */
    const uint8_t *data;     /* the storage's first byte, in the file image */
    int64_t storage_numel;
    /* OBJECT */
    const char *cls;         /* "torch.nn.modules.container.ParameterDict" */
    sdc_torch_obj *state;    /* what BUILD gave it, or NULL */
};

typedef struct sdc_torch_file sdc_torch_file;

/* Reads and parses a whole file (at most SDC_TORCH_MAX_BYTES). *out is NULL on failure. */
sdc_status sdc_torch_open(const char *path, sdc_torch_file **out, sdc_error *err);
/* The same on an image in memory, which must outlive the handle; `label` names it in messages. */
sdc_status sdc_torch_open_memory(const void *buf, size_t len, const char *label, sdc_torch_file **out,
                                 sdc_error *err);
void sdc_torch_close(sdc_torch_file *f); /* NULL-safe */

/* The unpickled object; the file's bytes (whole image) for hashing. */
const sdc_torch_obj *sdc_torch_root(const sdc_torch_file *f);
const uint8_t *sdc_torch_bytes(const sdc_torch_file *f, size_t *len);

/* A dict's value under a str key, or NULL (also when d is not a dict). */
const sdc_torch_obj *sdc_torch_dict_get(const sdc_torch_obj *d, const char *key);
/* 1 when o is a str equal to s. */
int sdc_torch_str_is(const sdc_torch_obj *o, const char *s);

/* Copies a float tensor (F32, F16, BF16, F64) into out [numel] as float32 in C order, following
 * its strides. SDC_E_UNSUPPORTED for other dtypes. */
sdc_status sdc_torch_tensor_f32(const sdc_torch_obj *t, float *out, sdc_error *err);
int64_t sdc_torch_numel(const sdc_torch_obj *t);

/* ---- writer: a textual-inversion embedding as torch.save writes it ----
 * vec [n, width] float32, stored as `dt` (SDC_F32 or SDC_F16).
 *   a1111 = 1: webui's Embedding.save layout: {'string_to_token': {'*': 265},
 *              'string_to_param': {'*': tensor}, 'name': name, 'step': 0,
 *              'sd_checkpoint': None, 'sd_checkpoint_name': None}
 *   a1111 = 0: a diffusers concept (learned_embeds.bin): {'<name>': tensor}
 * The zip is what torch writes (ARCHIVE = "archive", entries aligned to 64 bytes); the file goes
 * to path.tmp first and is renamed on success. */
sdc_status sdc_torch_write_embedding(const char *path, const char *name, int a1111, sdc_dtype dt, const float *vec,
                                     int n, int width, sdc_error *err);

/* A zip image of n entries, "stored", each entry's data aligned to 64 bytes as torch's writer
 * does (malloc'd, *len bytes; NULL when memory runs out). Used by the writer and by tests. */
uint8_t *sdc_torch_zip_image(const char *const *names, const void *const *data, const size_t *sizes, int n,
                             size_t *len);

/* CRC-32 (zip, IEEE 802.3) of a buffer. */
uint32_t sdc_crc32(const void *buf, size_t n);

#endif
