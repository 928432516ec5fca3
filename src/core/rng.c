/* src/core/rng.c: torch-CPU (mt19937) and philox Gaussian noise; the contract is in rng.h.
 *
 * Every rounding step below mirrors the reference, because a seed is only worth something if it
 * gives the same image. Where the reference fuses a multiply-add (FMA), fmaf() says so; where it
 * rounds the product first, the code keeps the compiler from fusing.
 */
#include "core/rng.h"

#include <math.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------------------------ */
/* mt19937, seeded as torch's at::mt19937 (init_genrand with seed & 0xffffffff)                */
/* ------------------------------------------------------------------------------------------ */

static void mt_seed(sdc_rng *r, uint32_t seed) {
    r->mt[0] = seed;
    for (int i = 1; i < SDC_MT19937_N; i++)
        r->mt[i] = 1812433253u * (r->mt[i - 1] ^ (r->mt[i - 1] >> 30)) + (uint32_t)i;
    r->mt_index = SDC_MT19937_N;
}

static void mt_twist(sdc_rng *r) {
    for (int k = 0; k < SDC_MT19937_N; k++) {
        uint32_t y = (r->mt[k] & 0x80000000u) | (r->mt[(k + 1) % SDC_MT19937_N] & 0x7fffffffu);
        r->mt[k] = r->mt[(k + 397) % SDC_MT19937_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    r->mt_index = 0;
}

static uint32_t mt_next(sdc_rng *r) {
    if (r->mt_index >= SDC_MT19937_N) mt_twist(r);
    uint32_t y = r->mt[r->mt_index++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

/* ------------------------------------------------------------------------------------------ */
/* torch's float Box-Muller for numel >= 16 (aten normal_fill_16_AVX2)                         */
/* ------------------------------------------------------------------------------------------ */

/* torch 1.13 on an AVX2 CPU computes log and sin/cos with avx_mathfun.h (Cephes polynomials),
 * built by GCC with -mfma, which fuses some of the multiply-adds. The scalar functions below
 * perform the same operations in the same order, with fmaf() exactly where that build fuses, so
 * each result is bit-identical to torch's (checked on all torch_cpu goldens). The constants are
 * written as the double literals of the original, rounded to float. */

static float torch_avx_logf(float v) { /* v in [2^-24, 1]: no zero, negative or subnormal input */
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    int32_t expo = (int32_t)(bits >> 23) - 0x7f;
    bits = (bits & ~0x7f800000u) | 0x3f000000u; /* mantissa with the exponent of 0.5 */
    float x;
    memcpy(&x, &bits, sizeof x);
    float e = (float)expo + 1.0f; /* x in [0.5, 1) and v = x * 2^e */
    if (x < (float)0.707106781186547524) {
        e -= 1.0f;
        x = (x - 1.0f) + x;
    } else {
        x = x - 1.0f;
    }
    float z = x * x;
    float y = (float)7.0376836292E-2;
    y = fmaf(y, x, (float)-1.1514610310E-1);
    y = fmaf(y, x, (float)1.1676998740E-1);
    y = fmaf(y, x, (float)-1.2420140846E-1);
    y = fmaf(y, x, (float)1.4249322787E-1);
    y = fmaf(y, x, (float)-1.6668057665E-1);
    y = fmaf(y, x, (float)2.0000714765E-1);
    y = fmaf(y, x, (float)-2.4999993993E-1);
    y = fmaf(y, x, (float)3.3333331174E-1);
    y = y * x;
    y = fmaf(y, z, e * (float)-2.12194440e-4);
    y = fmaf(-z, 0.5f, y);
    x = x + y;
    return fmaf(e, (float)0.693359375, x);
}

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static void torch_avx_sincosf(float xin, float *s, float *c) { /* xin in [0, 2pi) here */
    uint32_t sign_sin = f2u(xin) & 0x80000000u;
    float x = fabsf(xin);
    int32_t j = (int32_t)(x * (float)1.27323954473516); /* x * 4/pi, truncated */
    j = (j + 1) & ~1;
    float y = (float)j;
    sign_sin ^= (uint32_t)(j & 4) << 29;
    uint32_t sign_cos = (uint32_t)(~(j - 2) & 4) << 29;
    int first_octant_poly = (j & 2) == 0;

    /* extended-precision range reduction x - y*pi/4 */
    x = fmaf(y, (float)-0.78515625, x);
    x = fmaf(y, (float)-2.4187564849853515625e-4, x);
    x = fmaf(y, (float)-3.77489497744594108e-8, x);

    float z = x * x;
    float yc = (float)2.443315711809948E-005; /* cos polynomial */
    yc = fmaf(yc, z, (float)-1.388731625493765E-003);
    yc = fmaf(yc, z, (float)4.166664568298827E-002);
    yc = yc * z;
    yc = fmaf(z, yc, -(z * 0.5f));
    yc = yc + 1.0f;
    float ys = (float)-1.9515295891E-4; /* sin polynomial */
    ys = fmaf(ys, z, (float)8.3321608736E-3);
    ys = fmaf(ys, z, (float)-1.6666654611E-1);
    ys = ys * z;
    ys = fmaf(ys, x, x);

    float sv = first_octant_poly ? ys : yc;
    float cv = first_octant_poly ? yc : ys;
    *s = u2f(f2u(sv) ^ sign_sin);
    *c = u2f(f2u(cv) ^ sign_cos);
}

/* data[0..16) holds 16 uniforms in [0, 1); replaces them by 16 normals. */
static void torch_normal_fill_16(float *data) {
    const float two_pi = (float)(2.0f * 3.14159265358979323846);
    for (int j = 0; j < 8; j++) {
        float u1 = 1.0f - data[j]; /* (0, 1] for the log */
        float u2 = data[j + 8];
        float radius = sqrtf(-2.0f * torch_avx_logf(u1));
        float s, c;
        torch_avx_sincosf(two_pi * u2, &s, &c);
        data[j] = radius * c;
        data[j + 8] = radius * s;
    }
}

static float torch_uniform24(sdc_rng *r) { /* at::uniform_real_distribution<float>(0, 1) */
    return (float)(mt_next(r) & 0xFFFFFFu) * (1.0f / 16777216.0f);
}

/* ------------------------------------------------------------------------------------------ */
/* torch's double Box-Muller for numel < 16 (at::normal_distribution<double>)                  */
/* ------------------------------------------------------------------------------------------ */

static double torch_uniform53(sdc_rng *r) { /* random64(): the first draw is the high word */
    uint64_t hi = mt_next(r), lo = mt_next(r);
    uint64_t v = (hi << 32) | lo;
    return (double)(v & ((UINT64_C(1) << 53) - 1)) * (1.0 / 9007199254740992.0);
}

static double torch_normal_double(sdc_rng *r) {
    if (r->has_cached_normal) { /* the second value of the last pair, kept across randn calls */
        r->has_cached_normal = 0;
        return r->cached_normal;
    }
    double u1 = torch_uniform53(r);
    double u2 = torch_uniform53(r);
    double radius = sqrt(-2.0 * log(1.0 - u2));
    double theta = 6.283185307179586 * u1; /* 2.0 * pi<double>, folded by the compiler */
    r->cached_normal = radius * sin(theta);
    r->has_cached_normal = 1;
    return radius * cos(theta);
}

static void torch_cpu_randn(sdc_rng *r, float *out, size_t n) {
    if (n < 16) {
        for (size_t i = 0; i < n; i++) out[i] = (float)torch_normal_double(r);
        return;
    }
    for (size_t i = 0; i < n; i++) out[i] = torch_uniform24(r);
    for (size_t i = 0; i + 16 <= n; i += 16) torch_normal_fill_16(out + i);
    if (n % 16 != 0) { /* torch redraws the last 16 values, overlapping the last full block */
        float *tail = out + n - 16;
        for (int i = 0; i < 16; i++) tail[i] = torch_uniform24(r);
        torch_normal_fill_16(tail);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Philox4x32-10 (A1111 modules/rng_philox.py)                                                 */
/* ------------------------------------------------------------------------------------------ */

static void philox4x32_10(uint32_t ctr[4], uint32_t k0, uint32_t k1) {
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)ctr[0] * 0xD2511F53u;
        uint64_t p1 = (uint64_t)ctr[2] * 0xCD9E8D57u;
        uint32_t c0 = (uint32_t)(p1 >> 32) ^ ctr[1] ^ k0;
        uint32_t c1 = (uint32_t)p1;
        uint32_t c2 = (uint32_t)(p0 >> 32) ^ ctr[3] ^ k1;
        uint32_t c3 = (uint32_t)p0;
        ctr[0] = c0, ctr[1] = c1, ctr[2] = c2, ctr[3] = c3;
        k0 += 0x9E3779B9u; /* the bump after the last round is never used */
        k1 += 0xBB67AE85u;
    }
}

/* a * b + c with the product rounded first, as numpy computes it: the volatile store keeps a
 * contracting compiler (GCC's default -ffp-contract=fast) from fusing it into one FMA. */
static double mul_then_add(double a, double b, double c) {
    volatile double p = a * b;
    return p + c;
}

static void philox_randn(sdc_rng *r, float *out, size_t n) {
    /* numpy float32 constants promoted to double, as in the reference */
    const double inv32 = (double)(float)2.3283064e-10;
    const double inv32_2pi = (double)(float)(2.3283064e-10 * 6.2831855);
    const double half_inv32 = (double)((float)2.3283064e-10 / 2.0f);
    const double half_inv32_2pi = (double)((float)(2.3283064e-10 * 6.2831855) / 2.0f);
    const uint32_t k0 = (uint32_t)r->seed, k1 = (uint32_t)(r->seed >> 32);
    for (size_t i = 0; i < n; i++) {
        uint32_t ctr[4] = {(uint32_t)r->offset, 0, (uint32_t)i, 0};
        philox4x32_10(ctr, k0, k1);
        double u = mul_then_add((double)ctr[0], inv32, half_inv32);
        double v = mul_then_add((double)ctr[1], inv32_2pi, half_inv32_2pi);
        out[i] = (float)(sqrt(-2.0 * log(u)) * sin(v));
    }
    r->offset++;
}

/* ------------------------------------------------------------------------------------------ */
/* Public                                                                                      */
/* ------------------------------------------------------------------------------------------ */

void sdc_rng_init(sdc_rng *r, sdc_rng_kind kind, uint64_t seed) {
    memset(r, 0, sizeof *r);
    r->kind = kind;
    r->seed = seed;
    if (kind == SDC_RNG_TORCH_CPU) mt_seed(r, (uint32_t)seed);
}

void sdc_rng_randn(sdc_rng *r, float *out, size_t n) {
    if (r->kind == SDC_RNG_PHILOX) philox_randn(r, out, n);
    else torch_cpu_randn(r, out, n);
}

int sdc_rng_kind_from_name(const char *name) {
    if (!name) return -1;
    if (!strcasecmp(name, "cpu")) return SDC_RNG_TORCH_CPU;
    if (!strcasecmp(name, "nv") || !strcasecmp(name, "gpu") || !strcasecmp(name, "philox"))
        return SDC_RNG_PHILOX;
    return -1;
}

const char *sdc_rng_kind_name(sdc_rng_kind kind) {
    return kind == SDC_RNG_PHILOX ? "nv" : "cpu";
}
