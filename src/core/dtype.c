/* src/core/dtype.c: the dtype table and bulk conversion to f32 (contract in dtype.h). On AArch64
 * the f16 run is widened four at a time with NEON; elsewhere element by element (F16C or the
 * portable bit manipulation of sdc_f16_to_f32). */
#include "core/dtype.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

const sdc_dtype_traits sdc_dtype_table[SDC_DTYPE_COUNT] = {
    [SDC_F32] = {"F32", 4, 1},  [SDC_F16] = {"F16", 2, 1}, [SDC_BF16] = {"BF16", 2, 1},
    [SDC_F64] = {"F64", 8, 1},  [SDC_I64] = {"I64", 8, 0}, [SDC_I32] = {"I32", 4, 0},
    [SDC_I16] = {"I16", 2, 0},  [SDC_I8] = {"I8", 1, 0},   [SDC_U8] = {"U8", 1, 0},
    [SDC_BOOL] = {"BOOL", 1, 0},
};
_Static_assert(SDC_DTYPE_COUNT == 10, "update sdc_dtype_table");

int sdc_dtype_from_name(const char *name, size_t len) {
    for (int i = 0; i < SDC_DTYPE_COUNT; i++) {
        const char *n = sdc_dtype_table[i].name;
        if (strlen(n) == len && memcmp(n, name, len) == 0) return i;
    }
    return -1;
}

void sdc_convert_to_f32(float *dst, const void *src, sdc_dtype dt, size_t n) {
    switch (dt) {
    case SDC_F32: memcpy(dst, src, n * 4); break;
    case SDC_F16: { /* memcpy loads: tensor data in a safetensors file need not be aligned */
        const unsigned char *s = src;
        size_t i = 0;
#if defined(__aarch64__)
        for (; i + 4 <= n; i += 4) { /* NEON: 4 halves widened by one fcvtl */
            float16x4_t h;
            memcpy(&h, s + 2 * i, 8);
            vst1q_f32(dst + i, vcvt_f32_f16(h));
        }
#endif
        for (; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = sdc_f16_to_f32(h);
        }
        break;
    }
    case SDC_BF16: {
        const unsigned char *s = src;
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, s + 2 * i, 2);
            dst[i] = sdc_bf16_to_f32(h);
        }
        break;
    }
    case SDC_F64: {
        const unsigned char *s = src;
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, s + 8 * i, 8);
            dst[i] = (float)d;
        }
        break;
    }
    default:
        for (size_t i = 0; i < n; i++) dst[i] = 0.0f; /* callers check is_float first */
        break;
    }
}
