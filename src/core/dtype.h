/* src/core/dtype.h: element types of weights and activations, and the f16/bf16 conversions.
 * Activations are always f32; weights keep the checkpoint's dtype and are converted where used
 * (the GEMM converts while packing), so a loaded model costs only its file mapping. */
#ifndef SDC_CORE_DTYPE_H
#define SDC_CORE_DTYPE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__F16C__)
#include <immintrin.h>
#endif

typedef enum sdc_dtype {
    SDC_F32 = 0,
    SDC_F16,
    SDC_BF16,
    SDC_F64,
    SDC_I64,
    SDC_I32,
    SDC_I16,
    SDC_I8,
    SDC_U8,
    SDC_BOOL,
    SDC_DTYPE_COUNT
} sdc_dtype;

typedef struct sdc_dtype_traits {
    const char *name;   /* safetensors spelling: "F32", "F16", ... */
    size_t size;        /* bytes per element */
    int is_float;
} sdc_dtype_traits;

extern const sdc_dtype_traits sdc_dtype_table[SDC_DTYPE_COUNT];

/* Returns the dtype for a safetensors name ("F16"), or -1 when unknown. */
int sdc_dtype_from_name(const char *name, size_t len);

static inline float sdc_f16_to_f32(uint16_t h) {
#if defined(__F16C__)
    return _cvtsh_ss(h);
#elif defined(__aarch64__)
    __fp16 v;
    memcpy(&v, &h, 2);
    return (float)v;
#else
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) bits = sign;
        else { /* subnormal: renormalise */
            int e = -1;
            do { man <<= 1; e++; } while (!(man & 0x400));
            bits = sign | (uint32_t)(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
        }
    } else if (exp == 31) bits = sign | 0x7f800000u | man << 13;
    else bits = sign | (exp + 127 - 15) << 23 | man << 13;
    float f;
    memcpy(&f, &bits, 4);
    return f;
#endif
}

/* Round-to-nearest-even f32 -> f16 (overflow to inf, NaN kept). */
static inline uint16_t sdc_f32_to_f16(float f) {
#if defined(__F16C__)
    return (uint16_t)_cvtss_sh(f, 0); /* 0 = round to nearest even */
#elif defined(__aarch64__)
    __fp16 v = (__fp16)f;
    uint16_t h;
    memcpy(&h, &v, 2);
    return h;
#else
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) return (uint16_t)(sign | 0x7c00 | (ax > 0x7f800000u ? 0x200 : 0));
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00); /* rounds to >= 65520 */
    if (ax < 0x38800000u) {                                  /* subnormal or zero in f16 */
        float a;
        memcpy(&a, &ax, 4);
        a += 0.5f; /* exponent trick: the low bits hold the rounded subnormal */
        uint32_t r;
        memcpy(&r, &a, 4);
        return (uint16_t)(sign | (r - 0x3f000000u));
    }
    uint32_t mant_odd = (ax >> 13) & 1;
    ax += 0xc8000fffu + mant_odd; /* rebias exponent and round to nearest even */
    return (uint16_t)(sign | (ax >> 13));
#endif
}

static inline float sdc_bf16_to_f32(uint16_t b) {
    uint32_t bits = (uint32_t)b << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline uint16_t sdc_f32_to_bf16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1);
    return (uint16_t)(x >> 16);
}

/* Converts n elements of a float dtype (F32/F16/BF16/F64) to f32. */
void sdc_convert_to_f32(float *dst, const void *src, sdc_dtype dt, size_t n);

#endif
