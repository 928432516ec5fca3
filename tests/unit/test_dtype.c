/* tests/unit/test_dtype.c: the f16/bf16 <-> f32 conversions of src/core/dtype.h against plain C
 * references written here, so that the hardware paths (F16C on x86, the AArch64 half-precision
 * fcvt and NEON vcvt_f32_f16) are checked on whichever target the test is built for.
 *
 *  - f16 -> f32: all 65,536 halves, bit-exact (NaNs: NaN of the same sign);
 *  - f32 -> f16, round to nearest even: every finite half, the midpoints between neighbouring
 *    halves (ties go to the even one) and the f32 values one ulp either side of each midpoint,
 *    both signs; overflow to inf from 65520 up, inf, NaN;
 *  - sdc_convert_to_f32 on F16/BF16/F32/F64 runs of every length 0..40 at aligned and odd byte
 *    offsets (the vector loop's whole groups plus its scalar tail), nothing written past n;
 *  - bf16 round trip: round to nearest even, NaN stays NaN. */
#include "core/dtype.h"
#include "test.h"

#include <stdint.h>

/* f16 bits -> f32 by arithmetic on the fields (no bit tricks shared with dtype.h). */
static float ref_f16_to_f32(uint16_t h) {
    int sign = h >> 15, e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v;
    if (e == 0) v = ldexpf((float)m, -24);                 /* zero, subnormal */
    else if (e == 31) v = m ? NAN : INFINITY;              /* inf, NaN */
    else v = ldexpf((float)(m | 0x400), e - 25);           /* normal: 1.m * 2^(e-15) */
    return sign ? -v : v;
}

static uint32_t bits_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float float_of(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void test_f16_to_f32_exhaustive(void) {
    int bad = 0, nan_bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float got = sdc_f16_to_f32((uint16_t)h), want = ref_f16_to_f32((uint16_t)h);
        if (want != want) nan_bad += !(got != got) || (bits_of(got) >> 31) != (h >> 15);
        else bad += bits_of(got) != bits_of(want); /* also tells -0 from +0 */
    }
    CHECK(bad == 0, "f16 -> f32: %d of 65536 halves differ from the reference", bad);
    CHECK(nan_bad == 0, "f16 -> f32: %d NaN halves not NaN of the same sign", nan_bad);
}

static void test_f32_to_f16_rounding(void) {
    int bad = 0, checked = 0;
    for (int sign = 0; sign < 2; sign++)
        for (uint32_t h = 0; h < 0x7c00; h++) { /* every finite half of this sign */
            uint16_t s = (uint16_t)(sign << 15), hh = (uint16_t)(s | h);
            float v = ref_f16_to_f32(hh);
            bad += sdc_f32_to_f16(v) != hh;
            checked++;
            if (h == 0x7bff) continue; /* above the largest half: see the overflow checks */
            float next = ref_f16_to_f32((uint16_t)(hh + 1));
            float mid = (v + next) / 2; /* exact: halves have 11 significant bits */
            uint16_t even = (h & 1) ? (uint16_t)(hh + 1) : hh;
            bad += sdc_f32_to_f16(mid) != even;
            /* one f32 ulp towards zero / away from zero from the midpoint */
            bad += sdc_f32_to_f16(float_of(bits_of(mid) - 1)) != hh;
            bad += sdc_f32_to_f16(float_of(bits_of(mid) + 1)) != (uint16_t)(hh + 1);
            checked += 3;
        }
    CHECK(bad == 0, "f32 -> f16: %d of %d roundings differ from nearest-even", bad, checked);
    CHECK(sdc_f32_to_f16(65504.0f) == 0x7bff, "65504 -> largest half");
    CHECK(sdc_f32_to_f16(65519.99f) == 0x7bff, "65519.99 rounds down to 65504");
    CHECK(sdc_f32_to_f16(65520.0f) == 0x7c00, "65520 (the midpoint to 65536) -> inf");
    CHECK(sdc_f32_to_f16(-1e9f) == 0xfc00, "-1e9 -> -inf");
    CHECK(sdc_f32_to_f16(INFINITY) == 0x7c00 && sdc_f32_to_f16(-INFINITY) == 0xfc00, "+-inf kept");
    uint16_t qn = sdc_f32_to_f16(NAN);
    CHECK((qn & 0x7c00) == 0x7c00 && (qn & 0x3ff) != 0, "NaN -> a NaN half (got 0x%04x)", qn);
    CHECK(sdc_f32_to_f16(ldexpf(1.0f, -25)) == 0, "2^-25 (half the smallest subnormal) ties to 0");
    CHECK(sdc_f32_to_f16(ldexpf(1.5f, -25)) == 1, "1.5 * 2^-25 rounds up to the smallest subnormal");
}

/* sdc_convert_to_f32 for every length 0..40 at byte offset 0 and 1, with a canary after n. */
static void test_convert_runs(void) {
    enum { MAXN = 40 };
    unsigned char raw[8 * MAXN + 16];
    uint64_t st = 0x2545f4914f6cdd1dull;
    int bad = 0, overrun = 0;
    const sdc_dtype dts[] = {SDC_F16, SDC_BF16, SDC_F32, SDC_F64};
    for (int d = 0; d < 4; d++) {
        sdc_dtype dt = dts[d];
        size_t es = sdc_dtype_table[dt].size;
        for (int off = 0; off < 2; off++)
            for (int n = 0; n <= MAXN; n++) {
                float want[MAXN];
                for (int i = 0; i < n; i++) {
                    st ^= st << 13, st ^= st >> 7, st ^= st << 17;
                    unsigned char *p = raw + off + (size_t)i * es;
                    if (dt == SDC_F16 || dt == SDC_BF16) {
                        uint16_t h = (uint16_t)(st >> 20);
                        if (dt == SDC_F16 && (h & 0x7c00) == 0x7c00) h &= 0xbfff; /* no inf/NaN */
                        if (dt == SDC_BF16 && (h & 0x7f80) == 0x7f80) h &= 0xbfff;
                        memcpy(p, &h, 2);
                        want[i] = dt == SDC_F16 ? ref_f16_to_f32(h) : float_of((uint32_t)h << 16);
                    } else if (dt == SDC_F32) {
                        float f = (float)((int64_t)(st >> 11) - (1ll << 52)) * 0x1p-40f;
                        memcpy(p, &f, 4);
                        want[i] = f;
                    } else {
                        double x = (double)((int64_t)(st >> 11) - (1ll << 52)) * 0x1p-40;
                        memcpy(p, &x, 8);
                        want[i] = (float)x;
                    }
                }
                float out[MAXN + 1];
                out[n] = 12345.0f;
                sdc_convert_to_f32(out, raw + off, dt, (size_t)n);
                for (int i = 0; i < n; i++) bad += bits_of(out[i]) != bits_of(want[i]);
                overrun += out[n] != 12345.0f;
            }
    }
    CHECK(bad == 0, "sdc_convert_to_f32: %d elements differ over lengths 0..%d", bad, MAXN);
    CHECK(overrun == 0, "sdc_convert_to_f32 wrote past n %d times", overrun);
}

static void test_bf16(void) {
    CHECK(sdc_f32_to_bf16(1.0f) == 0x3f80 && sdc_bf16_to_f32(0x3f80) == 1.0f, "bf16 1.0");
    /* 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0); a bit more rounds up */
    CHECK(sdc_f32_to_bf16(1.0f + 0x1p-8f) == 0x3f80, "bf16 tie to even, down");
    CHECK(sdc_f32_to_bf16(1.0f + 0x1p-8f + 0x1p-20f) == 0x3f81, "bf16 above the tie rounds up");
    CHECK(sdc_f32_to_bf16(1.0f + 3 * 0x1p-8f) == 0x3f82, "bf16 tie to even, up");
    float back = sdc_bf16_to_f32(sdc_f32_to_bf16(NAN));
    CHECK(back != back, "bf16 NaN stays NaN");
}

int main(void) {
#if defined(__F16C__)
    printf("dtype: f16 conversions by F16C\n");
#elif defined(__aarch64__)
    printf("dtype: f16 conversions by AArch64 fcvt / NEON vcvt_f32_f16\n");
#else
    printf("dtype: f16 conversions in portable C\n");
#endif
    test_f16_to_f32_exhaustive();
    test_f32_to_f16_rounding();
    test_convert_runs();
    test_bf16();
    TEST_MAIN_END();
}
