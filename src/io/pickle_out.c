/* src/io/pickle_out.c: byte buffer and pickle opcode writers (see pickle_out.h). */
#include "io/pickle_out.h"

#include <stdlib.h>
#include <string.h>

void sdc_bytes_put(sdc_bytes *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n) cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, src, n);
    b->n += n;
}

void sdc_bytes_u8(sdc_bytes *b, unsigned v) {
    uint8_t c = (uint8_t)v;
    sdc_bytes_put(b, &c, 1);
}

void sdc_bytes_u16(sdc_bytes *b, uint32_t v) {
    uint8_t le[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    sdc_bytes_put(b, le, 2);
}

void sdc_bytes_u32(sdc_bytes *b, uint32_t v) {
    uint8_t le[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    sdc_bytes_put(b, le, 4);
}

void sdc_pickle_global(sdc_bytes *b, const char *module, const char *name) {
    sdc_bytes_u8(b, SDC_P_GLOBAL);
    sdc_bytes_put(b, module, strlen(module));
    sdc_bytes_u8(b, '\n');
    sdc_bytes_put(b, name, strlen(name));
    sdc_bytes_u8(b, '\n');
}

void sdc_pickle_int(sdc_bytes *b, int64_t v) {
    if (v >= 0 && v < 256) {
        sdc_bytes_u8(b, SDC_P_BININT1);
        sdc_bytes_u8(b, (unsigned)v);
    } else if (v >= 0 && v < 65536) {
        sdc_bytes_u8(b, SDC_P_BININT2);
        sdc_bytes_u16(b, (uint32_t)v);
    } else {
        sdc_bytes_u8(b, SDC_P_BININT);
        sdc_bytes_u32(b, (uint32_t)(int32_t)v);
    }
}

void sdc_pickle_str(sdc_bytes *b, const char *s) {
    size_t n = strlen(s);
    sdc_bytes_u8(b, SDC_P_BINUNICODE);
    sdc_bytes_u32(b, (uint32_t)n);
    sdc_bytes_put(b, s, n);
}

void sdc_pickle_bytes(sdc_bytes *b, const void *data, size_t n) {
    if (n < 256) {
        sdc_bytes_u8(b, SDC_P_SHORT_BINBYTES);
        sdc_bytes_u8(b, (unsigned)n);
    } else {
        sdc_bytes_u8(b, SDC_P_BINBYTES);
        sdc_bytes_u32(b, (uint32_t)n);
    }
    sdc_bytes_put(b, data, n);
}
