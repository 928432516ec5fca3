/* src/io/npy.h: NumPy .npy files (format versions 1.0-3.0), float32/other dtypes, C order.
 *
 * The stage commands exchange tensors as little-endian float32 .npy in C order. The reader also
 * accepts <f2, <f8, <i8, <i4, |i1, |u1 and |b1 and converts to float32 (sdc_npy_read_f32) so users
 * may pass what numpy gives them; Fortran order (of arrays where it differs from C order),
 * big-endian and structured data are refused with a clear message. Headers are bounded (10000
 * bytes, as numpy), the shape is overflow-checked, and a file whose data is shorter than its
 * shape says is an SDC_E_FORMAT ("FILE: data holds N bytes but float32 [2, 3] needs M") before
 * anything is allocated. The writers produce numpy's own version 1.0 layout (data at a multiple
 * of 64 bytes). */
#ifndef SDC_IO_NPY_H
#define SDC_IO_NPY_H

#include "core/error.h"
#include <stdint.h>

#define SDC_NPY_MAX_DIMS 8

typedef struct sdc_npy {
    int ndim;
    int64_t shape[SDC_NPY_MAX_DIMS];
    int64_t numel;
    float *data; /* malloc'd, numel floats; freed by sdc_npy_free */
} sdc_npy;

/* Reads an .npy file into float32. On failure *out is zeroed (nothing to free). */
sdc_status sdc_npy_read_f32(const char *path, sdc_npy *out, sdc_error *err);
/* Parses an in-memory .npy image (e.g. a tar member). */
sdc_status sdc_npy_parse_f32(const void *buf, size_t len, const char *label, sdc_npy *out,
                             sdc_error *err);
void sdc_npy_free(sdc_npy *a);

/* Writes float32 C-order data atomically (temporary file, then rename). */
sdc_status sdc_npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape,
                             sdc_error *err);
/* Same for int64 ('<i8', e.g. token ids). */
sdc_status sdc_npy_write_i64(const char *path, const int64_t *data, int ndim, const int64_t *shape,
                             sdc_error *err);
/* Serialises to a malloc'd buffer (for tar members); *out_len receives the size. */
sdc_status sdc_npy_encode_f32(const float *data, int ndim, const int64_t *shape, void **out,
                              size_t *out_len, sdc_error *err);

#endif
