/* src/io/pickle_dict.h: a restricted pickle reader for one shape of data only: a dict of
 * str -> numpy float32 array, as numpy and Python pickle it. Nothing is executed.
 *
 * This is pulsar2's `NumpyObject` calibration format (Axera's calib_data_vae_*.tar and the deploy
 * kit's): each tar member is an .npy file whose descr is '|O' and shape (), i.e. a 0-d object
 * array, followed by a pickle (np.save uses protocol 3) of that array, whose single element is
 * the dict, e.g. {'x': float32 [1, 4, 64, 64]}.
 *
 *     sdc_pickle_dict d;
 *     SDC_TRY(sdc_npy_object_parse(member.data, member.size, member.name, &d, err));
 *     const sdc_pickle_array *x = sdc_pickle_dict_get(&d, "x");
 *     ... x->data, x->shape ...
 *     sdc_pickle_dict_free(&d);
 *
 * The pickle is run by a small stack machine that knows protocols 2 to 5 and only these
 * opcodes: PROTO FRAME STOP MARK, memo (BINPUT LONG_BINPUT MEMOIZE BINGET LONG_BINGET), constants
 * (NONE NEWTRUE NEWFALSE BININT1 BININT2 BININT LONG1, the BINUNICODE and BINBYTES forms,
 * BYTEARRAY8), containers (tuples, EMPTY_LIST APPEND(S), EMPTY_DICT SETITEM(S)), and GLOBAL /
 * STACK_GLOBAL + REDUCE + BUILD for exactly these callables, emulated here:
 *   numpy.core.multiarray._reconstruct (also numpy._core...) and numpy.ndarray: a new array,
 *       filled by BUILD with (version, shape, dtype, is_fortran, raw bytes | object list);
 *   numpy.dtype('f4' | 'O8', False, True), its byte order set by BUILD's state;
 *   numpy.core.numeric._frombuffer(bytes, dtype, shape, order) (also numpy._core...): protocol 5;
 *   _codecs.encode(str, 'latin1') and bytes(): how protocol 2 spells bytes.
 * Any other opcode or global (os.system, builtins.eval, ...) is refused with one line that names
 * it and its offset; so is anything that is not, in the end, a dict of str keys and little-endian
 * float32 arrays (Fortran-order arrays are reordered to C order). Bounded: at most
 * SDC_PICKLE_MAX_OBJECTS objects, a stack of SDC_PICKLE_MAX_STACK, memo keys below
 * SDC_PICKLE_MAX_MEMO, SDC_NPY_MAX_DIMS dimensions, and no more array data out than bytes in.
 */
#ifndef SDC_IO_PICKLE_DICT_H
#define SDC_IO_PICKLE_DICT_H

#include "core/error.h"
#include "io/npy.h"

#include <stddef.h>
#include <stdint.h>

#define SDC_PICKLE_MAX_OBJECTS (1 << 17)
#define SDC_PICKLE_MAX_STACK (1 << 16)
#define SDC_PICKLE_MAX_MEMO (1 << 16)
#define SDC_PICKLE_MAX_ITEMS 4096 /* entries in the dict */

typedef struct sdc_pickle_array {
    char *name;                      /* the dict key, UTF-8, NUL-terminated */
    int ndim;
    int64_t shape[SDC_NPY_MAX_DIMS];
    int64_t numel;
    float *data;                     /* malloc'd, C order */
} sdc_pickle_array;

typedef struct sdc_pickle_dict {
    int n;
    sdc_pickle_array *items;         /* in the dict's insertion order */
} sdc_pickle_dict;

/* Runs a pickle stream (`len` bytes) that must produce a dict of float32 arrays, or a 0-d object
 * ndarray holding one. On failure *out is empty (nothing to free). */
sdc_status sdc_pickle_dict_parse(const void *buf, size_t len, const char *label,
                                 sdc_pickle_dict *out, sdc_error *err);

/* 1 when buf is an .npy file whose header says descr '|O' (an object array, i.e. a pickle). */
int sdc_npy_is_object(const void *buf, size_t len);

/* Parses an .npy holding a 0-d object array (descr '|O', shape ()) whose pickle is read as above. */
sdc_status sdc_npy_object_parse(const void *buf, size_t len, const char *label,
                                sdc_pickle_dict *out, sdc_error *err);

/* The array under `name`, or NULL. */
const sdc_pickle_array *sdc_pickle_dict_get(const sdc_pickle_dict *d, const char *name);
void sdc_pickle_dict_free(sdc_pickle_dict *d);

#endif
