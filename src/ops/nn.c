/* src/ops/nn.c: norms, attention, activations and layout kernels (see nn.h for the contract). */
#include "ops/nn.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* Splits [0, n) into nth nearly equal contiguous ranges; returns thread ith's range. */
static inline void split_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t per = n / nth, rem = n % nth;
    *lo = ith * per + (ith < rem ? ith : rem);
    *hi = *lo + per + (ith < rem);
}

/* ================================================================ vector math
 *
 * exp and erf on GNU C vectors of VL floats (16 lanes with AVX-512, 8 with AVX, 4 elsewhere;
 * plain scalar code where the target has no SIMD), for the activations below. Everything is
 * lane-wise: a value's result does not depend on its position, so the partial vector at the end
 * of a run (computed in a zero-padded copy) and any thread split give the same bits. */

#if defined(__AVX512F__)
#define VL 16
#elif defined(__AVX__)
#define VL 8
#else
#define VL 4
#endif
typedef float vf __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));
typedef uint32_t vu __attribute__((vector_size(VL * 4)));

static inline vf splat(float x) { return (vf){0} + x; } /* (not for -0.0f: 0 + -0 = +0) */
static inline vf vload(const float *p) { /* any alignment */
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf vselect(vi m, vf a, vf b) { return (vf)((m & (vi)a) | (~m & (vi)b)); }
/* min/max with a NaN in the first operand giving the second (as x86 minps/maxps) */
static inline vf vmin(vf a, vf b) { return vselect(a < b, a, b); }
static inline vf vmax(vf a, vf b) { return vselect(a > b, a, b); }

/* e^x, about 1 ulp: x clamped to [-87, 88] (no overflow, no denormals); x = k ln2 + r,
 * |r| <= ln2/2, with ln2 split in two for an exact reduction; e^r by Cephes' expf polynomial;
 * 2^k built in the exponent bits: adding 1.5 * 2^23 + 127 rounds x log2(e) to an integer k and
 * leaves k + 127 in the low mantissa bits, which one shift moves into the exponent. */
static inline vf vexp(vf x) {
    x = vmin(vmax(x, splat(-87.0f)), splat(88.0f));
    const vf magic = splat(0x1.8p23f + 127.0f);
    vf y = x * 1.44269504088896341f + magic;
    vf k = y - magic;
    vf r = x - k * 0.693359375f;
    r = r - k * -2.12194440e-4f;
    vf p = splat(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    return p * (vf)((vu)y << 23);
}

/* erf(a), max error about 1 ulp (N. Juffa's erff, branch-free): for |a| <= 0.927734375 an odd
 * polynomial, a + a p(a^2); above, 1 - e^(q(|a|)) with the sign of a, where q(t) ~ -t^2. |a| is
 * clamped at 4, where erf rounds to 1 in float. */
static inline vf verf(vf a) {
    const vi sign = (vi){0} + INT32_MIN;
    vf t = vmin(splat(4.0f), (vf)((vi)a & ~sign)); /* NaN stays NaN */
    vf s = t * t;
    vf r = t * -1.72853470e-5f + 3.83197126e-4f;
    vf u = t * -3.88396438e-3f + 2.42546219e-2f;
    r = r * s + u;
    r = r * t + -1.06777877e-1f;
    r = r * t + -6.34846687e-1f;
    r = r * t + -1.28717512e-1f;
    r = r * t - t;
    vf big = 1.0f - vexp(r);
    vf q = splat(-5.96761703e-4f);
    q = q * s + 4.99119423e-3f;
    q = q * s + -2.67681349e-2f;
    q = q * s + 1.12819925e-1f;
    q = q * s + -3.76125336e-1f;
    q = q * s + 1.28379166e-1f;
    vf small = q * t + t;
    vf e = vselect(t > 0.927734375f, big, small);
    return (vf)((vi)e | ((vi)a & sign));
}

/* x * sigmoid(c x) */
static inline vf vsilu(vf x, float c) { return x / (1.0f + vexp(x * -c)); }

/* y[n] = silu_c(x[n] * a + b), c = 1 (SiLU) or 1.702 (quick GELU); in-place allowed */
static void silu_run(const float *x, float *y, int64_t n, float c, float a, float b) {
    int64_t i = 0;
    for (; i + VL <= n; i += VL) vstore(y + i, vsilu(vload(x + i) * a + b, c));
    if (i < n) {
        float t[VL] = {0};
        memcpy(t, x + i, (size_t)(n - i) * sizeof(float));
        vstore(t, vsilu(vload(t) * a + b, c));
        memcpy(y + i, t, (size_t)(n - i) * sizeof(float));
    }
}
/* 0.5 x (1 + erf(x / sqrt 2)), torch's exact GELU */
static inline vf vgelu(vf x) { return 0.5f * x * (1.0f + verf(x * 0.70710678118654752f)); }

/* sum of x[i] - m (squared with sq) over n values: lane-wise float sums over blocks of 64
 * values, each block's lanes then added in double in a fixed order (norm statistics: accurate
 * and independent of the thread count). */
static double sum_dev(const float *x, int64_t n, float m, int sq) {
    double total = 0.0;
    for (int64_t i0 = 0; i0 < n; i0 += 64) {
        int64_t i1 = i0 + 64 < n ? i0 + 64 : n, i = i0;
        vf acc = {0};
        for (; i + VL <= i1; i += VL) {
            vf d = vload(x + i) - m;
            acc += sq ? d * d : d;
        }
        for (; i < i1; i++) {
            float d = x[i] - m;
            acc[0] += sq ? d * d : d;
        }
        for (int l = 0; l < VL; l++) total += acc[l];
    }
    return total;
}

/* ================================================================ group norm */

typedef struct {
    const float *x;
    float *y;
    int64_t B, C, S;
    int groups, silu;
    float eps;
    const float *gamma, *beta;
} gn_ctx;

static void gn_task(void *p, int ith, int nth) {
    const gn_ctx *c = p;
    int64_t n_tasks = c->B * c->groups, lo, hi;
    split_range(n_tasks, ith, nth, &lo, &hi);
    int64_t cpg = c->C / c->groups;
    for (int64_t task = lo; task < hi; task++) {
        int64_t b = task / c->groups, grp = task % c->groups;
        const float *x = c->x + (b * c->C + grp * cpg) * c->S;
        float *y = c->y + (b * c->C + grp * cpg) * c->S;
        int64_t n = cpg * c->S;
        double mean = sum_dev(x, n, 0.0f, 0) / (double)n;
        float fmean = (float)mean;
        double var = sum_dev(x, n, fmean, 1) / (double)n;
        float rstd = (float)(1.0 / sqrt(var + (double)c->eps));
        for (int64_t ch = 0; ch < cpg; ch++) {
            float a = c->gamma[grp * cpg + ch] * rstd;
            float bb = c->beta[grp * cpg + ch] - fmean * a;
            const float *xs = x + ch * c->S;
            float *ys = y + ch * c->S;
            if (c->silu)
                silu_run(xs, ys, c->S, 1.0f, a, bb);
            else
                for (int64_t i = 0; i < c->S; i++) ys[i] = xs[i] * a + bb;
        }
    }
}

void sdc_group_norm(sdc_pool *pool, const float *x, float *y, int64_t B, int64_t C, int64_t S,
                    int groups, float eps, const float *gamma, const float *beta, int silu) {
    gn_ctx c = {x, y, B, C, S, groups, silu, eps, gamma, beta};
    sdc_pool_run(pool, gn_task, &c);
}

/* ================================================================ layer norm */

typedef struct {
    const float *x;
    float *y;
    int64_t R, D;
    float eps;
    const float *gamma, *beta;
} ln_ctx;

static void ln_task(void *p, int ith, int nth) {
    const ln_ctx *c = p;
    int64_t lo, hi;
    split_range(c->R, ith, nth, &lo, &hi);
    for (int64_t r = lo; r < hi; r++) {
        const float *x = c->x + r * c->D;
        float *y = c->y + r * c->D;
        float fmean = (float)(sum_dev(x, c->D, 0.0f, 0) / (double)c->D);
        double var = sum_dev(x, c->D, fmean, 1);
        float rstd = (float)(1.0 / sqrt(var / (double)c->D + (double)c->eps));
        for (int64_t i = 0; i < c->D; i++) y[i] = (x[i] - fmean) * rstd * c->gamma[i] + c->beta[i];
    }
}

void sdc_layer_norm(sdc_pool *pool, const float *x, float *y, int64_t R, int64_t D, float eps,
                    const float *gamma, const float *beta) {
    ln_ctx c = {x, y, R, D, eps, gamma, beta};
    sdc_pool_run(pool, ln_task, &c);
}

/* ================================================================ elementwise */

typedef struct {
    const float *a, *b;
    float *y;
    int64_t n, nb, F;
    float s;
    int kind;
} ew_ctx;

enum { EW_SILU, EW_QUICK_GELU, EW_SCALE, EW_ADD, EW_GEGLU, EW_ERF };

static void ew_task(void *p, int ith, int nth) {
    const ew_ctx *c = p;
    int64_t lo, hi;
    split_range(c->n, ith, nth, &lo, &hi);
    const float *a = c->a;
    float *y = c->y;
    switch (c->kind) {
    case EW_SILU:
    case EW_QUICK_GELU:
        silu_run(a + lo, y + lo, hi - lo, c->kind == EW_SILU ? 1.0f : 1.702f, 1.0f, 0.0f);
        break;
    case EW_SCALE:
        for (int64_t i = lo; i < hi; i++) y[i] = a[i] * c->s;
        break;
    case EW_ADD:
        if (c->nb == c->n)
            for (int64_t i = lo; i < hi; i++) y[i] = a[i] + c->b[i];
        else
            for (int64_t i = lo; i < hi; i++) y[i] = a[i] + c->b[i % c->nb];
        break;
    case EW_ERF: {
        int64_t i = lo;
        for (; i + VL <= hi; i += VL) vstore(y + i, verf(vload(a + i)));
        if (i < hi) {
            float t[VL] = {0};
            memcpy(t, a + i, (size_t)(hi - i) * sizeof(float));
            vstore(t, verf(vload(t)));
            memcpy(y + i, t, (size_t)(hi - i) * sizeof(float));
        }
        break;
    }
    case EW_GEGLU: { /* here n counts output values, rows of F; the split is by rows */
        const int64_t F = c->F;
        split_range(c->n / F, ith, nth, &lo, &hi);
        for (int64_t r = lo; r < hi; r++) {
            const float *h = a + r * 2 * F, *gate = h + F; // [F] each
            float *yr = y + r * F;
            int64_t f = 0;
            for (; f + VL <= F; f += VL) vstore(yr + f, vload(h + f) * vgelu(vload(gate + f)));
            if (f < F) { /* the same in a zero-padded vector */
                float th[VL] = {0}, tg[VL] = {0};
                memcpy(th, h + f, (size_t)(F - f) * sizeof(float));
                memcpy(tg, gate + f, (size_t)(F - f) * sizeof(float));
                vstore(th, vload(th) * vgelu(vload(tg)));
                memcpy(yr + f, th, (size_t)(F - f) * sizeof(float));
            }
        }
        break;
    }
    }
}

static void ew_run(sdc_pool *pool, ew_ctx *c) {
    /* small tensors are not worth waking the pool for */
    sdc_pool_run(c->n < 4096 ? NULL : pool, ew_task, c);
}

void sdc_silu(sdc_pool *pool, const float *x, float *y, int64_t n) {
    ew_run(pool, &(ew_ctx){.a = x, .y = y, .n = n, .kind = EW_SILU});
}
void sdc_quick_gelu(sdc_pool *pool, const float *x, float *y, int64_t n) {
    ew_run(pool, &(ew_ctx){.a = x, .y = y, .n = n, .kind = EW_QUICK_GELU});
}
void sdc_scale(sdc_pool *pool, const float *x, float *y, int64_t n, float s) {
    ew_run(pool, &(ew_ctx){.a = x, .y = y, .n = n, .s = s, .kind = EW_SCALE});
}
void sdc_add(sdc_pool *pool, const float *a, const float *b, float *y, int64_t n, int64_t nb) {
    ew_run(pool, &(ew_ctx){.a = a, .b = b, .y = y, .n = n, .nb = nb, .kind = EW_ADD});
}
void sdc_erf(sdc_pool *pool, const float *x, float *y, int64_t n) {
    ew_run(pool, &(ew_ctx){.a = x, .y = y, .n = n, .kind = EW_ERF});
}
void sdc_geglu(sdc_pool *pool, const float *x, float *y, int64_t R, int64_t F) {
    ew_run(pool, &(ew_ctx){.a = x, .y = y, .n = R * F, .F = F, .kind = EW_GEGLU});
}

typedef struct {
    const float *x, *v;
    float *y;
    int64_t B, C, S;
} ac_ctx;

static void add_channel_task(void *p, int ith, int nth) {
    const ac_ctx *c = p;
    int64_t lo, hi;
    split_range(c->B * c->C, ith, nth, &lo, &hi);
    for (int64_t bc = lo; bc < hi; bc++) {
        float v = c->v[bc];
        for (int64_t i = 0; i < c->S; i++) c->y[bc * c->S + i] = c->x[bc * c->S + i] + v;
    }
}

void sdc_add_channel(sdc_pool *pool, const float *x, const float *v, float *y, int64_t B,
                     int64_t C, int64_t S) {
    ac_ctx c = {x, v, y, B, C, S};
    sdc_pool_run(pool, add_channel_task, &c);
}

/* ================================================================ layout */

void sdc_concat_c(sdc_pool *pool, const float *a, const float *b, float *y, int64_t B, int64_t Ca,
                  int64_t Cb, int64_t S) {
    (void)pool; /* memory-bound copies: one thread saturates bandwidth here */
    for (int64_t n = 0; n < B; n++) {
        memcpy(y + n * (Ca + Cb) * S, a + n * Ca * S, (size_t)(Ca * S) * sizeof(float));
        memcpy(y + (n * (Ca + Cb) + Ca) * S, b + n * Cb * S, (size_t)(Cb * S) * sizeof(float));
    }
}

typedef struct {
    const float *x;
    float *y;
    int64_t B, C, H, W, Ho, Wo;
} up_ctx;

static void up_task(void *p, int ith, int nth) {
    const up_ctx *c = p;
    int64_t lo, hi;
    split_range(c->B * c->C, ith, nth, &lo, &hi);
    float sh = (float)c->H / (float)c->Ho, sw = (float)c->W / (float)c->Wo;
    for (int64_t bc = lo; bc < hi; bc++)
        for (int64_t i = 0; i < c->Ho; i++) {
            int64_t si = (int64_t)floorf((float)i * sh);
            if (si > c->H - 1) si = c->H - 1;
            const float *xr = c->x + (bc * c->H + si) * c->W;
            float *yr = c->y + (bc * c->Ho + i) * c->Wo;
            for (int64_t j = 0; j < c->Wo; j++) {
                int64_t sj = (int64_t)floorf((float)j * sw);
                if (sj > c->W - 1) sj = c->W - 1;
                yr[j] = xr[sj];
            }
        }
}

void sdc_upsample_nearest(sdc_pool *pool, const float *x, float *y, int64_t B, int64_t C,
                          int64_t H, int64_t W, int64_t Ho, int64_t Wo) {
    up_ctx c = {x, y, B, C, H, W, Ho, Wo};
    sdc_pool_run(pool, up_task, &c);
}

typedef struct {
    const float *x;
    float *y;
    int64_t B, C, S;
} tr_ctx;

static void transpose_task(void *p, int ith, int nth) {
    const tr_ctx *c = p;
    int64_t lo, hi;
    split_range(c->B * c->S, ith, nth, &lo, &hi);
    /* output rows (b, s) of C values each; reads stride S: cache-blocked by 16 output rows */
    for (int64_t r0 = lo; r0 < hi; r0 += 16) {
        int64_t r1 = r0 + 16 < hi ? r0 + 16 : hi;
        for (int64_t ch = 0; ch < c->C; ch++)
            for (int64_t r = r0; r < r1; r++) {
                int64_t b = r / c->S, s = r % c->S;
                c->y[r * c->C + ch] = c->x[(b * c->C + ch) * c->S + s];
            }
    }
}

void sdc_transpose_cs(sdc_pool *pool, const float *x, float *y, int64_t B, int64_t C, int64_t S) {
    tr_ctx c = {x, y, B, C, S};
    sdc_pool_run(pool, transpose_task, &c);
}

void sdc_timestep_embedding(const float *t, float *out, int64_t B, int64_t dim) {
    int64_t half = dim / 2;
    for (int64_t b = 0; b < B; b++)
        for (int64_t k = 0; k < half; k++) {
            /* float32 as torch computes it: exponent, exp, then the product; sin/cos of that float */
            float expo = -logf(10000.0f) * (float)k / (float)half;
            float arg = t[b] * expf(expo);
            out[b * dim + k] = (float)cos((double)arg);
            out[b * dim + half + k] = (float)sin((double)arg);
        }
}
