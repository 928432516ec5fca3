/* src/deploy/pickle_write.h: .npy files for calibration sets, plain and pickled (NumpyObject).
 *
 * pulsar2 reads calibration data in two .npy-based formats:
 *   Numpy        one tar per model input, each member a plain .npy array;
 *   NumpyObject  one tar per model, each member an .npy holding a 0-d object array whose element
 *                is a dict {input name: array}: what `np.save(f, {"x": a})` writes.
 *
 * sdc_npy_encode writes a plain .npy (format 1.0, '<f4' or '<i8', C order, data at a multiple of
 * 64 bytes as numpy aligns it). sdc_npy_object_encode writes what numpy 1.x's
 * np.save(f, dict, allow_pickle=True) writes, opcode for opcode but without the memo: the header
 * {'descr': '|O', 'fortran_order': False, 'shape': ()} and a protocol 3 pickle of
 *     numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b'b')
 *     .__setstate__((1, (), dtype('O8'), False, [dict]))
 * where each dict value is the same _reconstruct of a C-order array whose state carries its raw
 * little-endian bytes. np.load(f, allow_pickle=True).item() gives the dict back; src/io/pickle_dict.h
 * reads the float32 ones. Only GLOBAL, REDUCE, BUILD and plain constants are used: no memo, no
 * framing, nothing a restricted unpickler would refuse.
 *
 * Limits: names up to 4096 bytes, up to SDC_NPY_MAX_DIMS dimensions, and array data up to
 * 4 GiB - 1 (BINBYTES' 32-bit length); anything else is SDC_E_INVALID_ARG naming the array. */
#ifndef SDC_DEPLOY_PICKLE_WRITE_H
#define SDC_DEPLOY_PICKLE_WRITE_H

#include "core/error.h"
#include "io/npy.h"

#include <stddef.h>
#include <stdint.h>

typedef enum sdc_npy_dtype {
    SDC_NPY_F32 = 0, /* '<f4' */
    SDC_NPY_I64,     /* '<i8' (token ids in calibration files, as the contract wants) */
} sdc_npy_dtype;

/* One named array, borrowed. */
typedef struct sdc_npy_entry {
    const char *name;
    sdc_npy_dtype dtype;
    int ndim;
    const int64_t *shape;
    const void *data; /* C order, numel * 4 or 8 bytes */
} sdc_npy_entry;

/* A plain .npy image of `a` (its name is not stored). *out is malloc'd (free()), *len its size. */
sdc_status sdc_npy_encode(const sdc_npy_entry *a, void **out, size_t *len, sdc_error *err);

/* An .npy image of the dict {items[i].name: items[i]} (insertion order kept). */
sdc_status sdc_npy_object_encode(const sdc_npy_entry *items, int n, void **out, size_t *len,
                                 sdc_error *err);

#endif
