/* src/io/pickle_out.h: a growing byte buffer and the pickle opcodes sdc writes.
 *
 * Both pickle writers of the project build on it: the NumpyObject .npy images of the calibration
 * sets (src/deploy/pickle_write.c) and the torch.save zips of `sdc mkmodel --embedding`
 * (src/io/torch_zip.c). Every put is a no-op once an allocation failed: the caller checks `oom`
 * once at the end and frees `p`. Multi-byte integers are little-endian, as pickle and zip want. */
#ifndef SDC_IO_PICKLE_OUT_H
#define SDC_IO_PICKLE_OUT_H

#include <stddef.h>
#include <stdint.h>

typedef struct sdc_bytes {
    uint8_t *p;
    size_t n, cap;
    int oom; /* an allocation failed: nothing more is written */
} sdc_bytes;

void sdc_bytes_put(sdc_bytes *b, const void *src, size_t n);
void sdc_bytes_u8(sdc_bytes *b, unsigned v);
void sdc_bytes_u16(sdc_bytes *b, uint32_t v);
void sdc_bytes_u32(sdc_bytes *b, uint32_t v);

/* Pickle opcodes (protocol 2 unless noted). */
enum {
    SDC_P_MARK = '(', SDC_P_STOP = '.', SDC_P_BININT = 'J', SDC_P_BININT1 = 'K', SDC_P_BININT2 = 'M',
    SDC_P_NONE = 'N', SDC_P_BINPERSID = 'Q', SDC_P_REDUCE = 'R', SDC_P_BINUNICODE = 'X',
    SDC_P_EMPTY_DICT = '}', SDC_P_APPEND = 'a', SDC_P_BUILD = 'b', SDC_P_GLOBAL = 'c',
    SDC_P_EMPTY_LIST = ']', SDC_P_SETITEM = 's', SDC_P_SETITEMS = 'u', SDC_P_TUPLE = 't', SDC_P_EMPTY_TUPLE = ')',
    SDC_P_PROTO = 0x80, SDC_P_TUPLE1 = 0x85, SDC_P_TUPLE2 = 0x86, SDC_P_TUPLE3 = 0x87,
    SDC_P_NEWTRUE = 0x88, SDC_P_NEWFALSE = 0x89, SDC_P_BINBYTES = 'B' /* protocol 3 */,
    SDC_P_SHORT_BINBYTES = 'C' /* protocol 3 */,
};

void sdc_pickle_global(sdc_bytes *b, const char *module, const char *name); /* GLOBAL module\nname\n */
void sdc_pickle_int(sdc_bytes *b, int64_t v);    /* smallest of BININT1/BININT2/BININT; v in [-2^31, 2^31) */
void sdc_pickle_str(sdc_bytes *b, const char *s); /* BINUNICODE */
void sdc_pickle_bytes(sdc_bytes *b, const void *data, size_t n); /* SHORT_BINBYTES / BINBYTES */

#endif
