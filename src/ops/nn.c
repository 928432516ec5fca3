/* src/ops/nn.c: norms, attention, activations and layout kernels (see nn.h for the contract). */
#include "ops/nn.h"

#include "core/error.h"
#include "ops/gemm.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Splits [0, n) into nth nearly equal contiguous ranges; returns thread ith's range. */
static inline void split_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t per = n / nth, rem = n % nth;
    *lo = ith * per + (ith < rem ? ith : rem);
    *hi = *lo + per + (ith < rem);
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
        double sum = 0.0;
        for (int64_t i = 0; i < n; i++) sum += x[i];
        double mean = sum / (double)n, var = 0.0;
        for (int64_t i = 0; i < n; i++) {
            double d = x[i] - mean;
            var += d * d;
        }
        var /= (double)n;
        float rstd = (float)(1.0 / sqrt(var + (double)c->eps));
        float fmean = (float)mean;
        for (int64_t ch = 0; ch < cpg; ch++) {
            float a = c->gamma[grp * cpg + ch] * rstd;
            float bb = c->beta[grp * cpg + ch] - fmean * a;
            const float *xs = x + ch * c->S;
            float *ys = y + ch * c->S;
            if (c->silu)
                for (int64_t i = 0; i < c->S; i++) {
                    float v = xs[i] * a + bb;
                    ys[i] = v / (1.0f + expf(-v));
                }
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
        double sum = 0.0, var = 0.0;
        for (int64_t i = 0; i < c->D; i++) sum += x[i];
        double mean = sum / (double)c->D;
        for (int64_t i = 0; i < c->D; i++) {
            double d = x[i] - mean;
            var += d * d;
        }
        float rstd = (float)(1.0 / sqrt(var / (double)c->D + (double)c->eps));
        float fmean = (float)mean;
        for (int64_t i = 0; i < c->D; i++) y[i] = (x[i] - fmean) * rstd * c->gamma[i] + c->beta[i];
    }
}

void sdc_layer_norm(sdc_pool *pool, const float *x, float *y, int64_t R, int64_t D, float eps,
                    const float *gamma, const float *beta) {
    ln_ctx c = {x, y, R, D, eps, gamma, beta};
    sdc_pool_run(pool, ln_task, &c);
}

/* ================================================================ attention */

#define ATTN_QBLOCK 64 /* query rows per task: the score buffer is [64, Nk] floats per thread */

typedef struct {
    const float *q, *k, *v;
    float *o;
    int64_t B, Nq, Nk, d, dv;
    int heads, causal;
    float *scratch; /* [nth][ATTN_QBLOCK * Nk] */
} attn_ctx;

/* exp(x) for x <= 0 (softmax arguments), branch-free so that the loops below vectorize:
 * x = k ln2 + r with |r| <= ln2/2, exp(r) by Cephes' degree-6 polynomial (about 1 ulp), times
 * 2^k built in the exponent bits. Arguments below -87 give exp(-87) ~ 1.6e-38 instead of a
 * denormal: nothing a softmax sum can see. */
static inline float exp_nonpos(float x) {
    x = x < -87.0f ? -87.0f : x;
    float k = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
    float r = x - k * 0.693359375f;  /* ln2 split in two for an exact reduction */
    r = r - k * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)k + 127) << 23;
    float scale;
    memcpy(&scale, &bits, 4);
    return p * scale;
}

/* Row-wise softmax of s[rows, Nk] scaled by `scale`; with causal, row r (global query index
 * q0 + r) sees keys 0..q0+r only and the rest are set to 0. Reductions use 16 partial lanes
 * combined in a fixed order: vectorizable and independent of the thread count. */
static void softmax_rows(float *s, int64_t rows, int64_t Nk, float scale, int causal, int64_t q0) {
    enum { L = 16 };
    for (int64_t r = 0; r < rows; r++) {
        float *row = s + r * Nk;
        int64_t n = causal ? q0 + r + 1 : Nk;
        float mxl[L];
        for (int l = 0; l < L; l++) mxl[l] = -INFINITY;
        int64_t j = 0;
        for (; j + L <= n; j += L)
            for (int l = 0; l < L; l++) {
                float v = row[j + l] * scale;
                row[j + l] = v;
                mxl[l] = v > mxl[l] ? v : mxl[l];
            }
        float mx = -INFINITY;
        for (; j < n; j++) {
            row[j] *= scale;
            mx = row[j] > mx ? row[j] : mx;
        }
        for (int l = 0; l < L; l++) mx = mxl[l] > mx ? mxl[l] : mx;
        float suml[L] = {0};
        j = 0;
        for (; j + L <= n; j += L)
            for (int l = 0; l < L; l++) {
                float e = exp_nonpos(row[j + l] - mx);
                row[j + l] = e;
                suml[l] += e;
            }
        double sum = 0.0;
        for (; j < n; j++) {
            row[j] = exp_nonpos(row[j] - mx);
            sum += row[j];
        }
        for (int l = 0; l < L; l++) sum += suml[l];
        float inv = (float)(1.0 / sum);
        for (j = 0; j < n; j++) row[j] *= inv;
        for (j = n; j < Nk; j++) row[j] = 0.0f;
    }
}

static void attn_task(void *p, int ith, int nth) {
    const attn_ctx *c = p;
    int64_t qblocks = (c->Nq + ATTN_QBLOCK - 1) / ATTN_QBLOCK;
    int64_t n_tasks = c->B * c->heads * qblocks;
    int64_t ldq = (int64_t)c->heads * c->d, ldv = (int64_t)c->heads * c->dv;
    float *s = c->scratch + (size_t)ith * ATTN_QBLOCK * c->Nk;
    float scale = 1.0f / sqrtf((float)c->d);
    for (int64_t task = ith; task < n_tasks; task += nth) {
        int64_t b = task / (c->heads * qblocks), rem = task % (c->heads * qblocks);
        int64_t h = rem / qblocks, q0 = (rem % qblocks) * ATTN_QBLOCK;
        int64_t rows = c->Nq - q0 < ATTN_QBLOCK ? c->Nq - q0 : ATTN_QBLOCK;
        int64_t nk = c->causal ? q0 + rows : c->Nk; /* keys past the block's last query are masked */
        const float *qp = c->q + (b * c->Nq + q0) * ldq + h * c->d;
        const float *kp = c->k + b * c->Nk * ldq + h * c->d;
        const float *vp = c->v + b * c->Nk * ldv + h * c->dv;
        float *op = c->o + (b * c->Nq + q0) * ldv + h * c->dv;
        // scores[rows, nk] = q[rows, d] . k[nk, d]^T
        sdc_gemm_args sg = {.M = (int)rows, .N = (int)nk, .K = (int)c->d,
                            .A = {qp, SDC_F32, ldq, 1}, .B = {kp, SDC_F32, 1, ldq},
                            .C = s, .ldc = c->Nk};
        sdc_gemm(NULL, &sg);
        softmax_rows(s, rows, c->Nk, scale, c->causal, q0);
        // out[rows, dv] = p[rows, nk] . v[nk, dv]
        sdc_gemm_args og = {.M = (int)rows, .N = (int)c->dv, .K = (int)nk,
                            .A = {s, SDC_F32, c->Nk, 1}, .B = {vp, SDC_F32, ldv, 1},
                            .C = op, .ldc = ldv};
        sdc_gemm(NULL, &og);
    }
}

int sdc_attention(sdc_pool *pool, const float *q, const float *k, const float *v, float *o,
                  int64_t B, int64_t Nq, int64_t Nk, int heads, int64_t d, int64_t dv, int causal) {
    int nth = sdc_pool_size(pool);
    size_t n = sdc_mul_size(sdc_mul_size((size_t)nth, ATTN_QBLOCK), (size_t)Nk);
    float *scratch = n ? malloc(n * sizeof(float)) : NULL;
    if (!scratch) return -1;
    attn_ctx c = {q, k, v, o, B, Nq, Nk, d, dv, heads, causal, scratch};
    sdc_pool_run(pool, attn_task, &c);
    free(scratch);
    return 0;
}

void sdc_attention_ref(const float *q, const float *k, const float *v, float *o, int64_t B,
                       int64_t Nq, int64_t Nk, int heads, int64_t d, int64_t dv, int causal) {
    int64_t ldq = (int64_t)heads * d, ldv = (int64_t)heads * dv;
    double *p = malloc((size_t)Nk * sizeof(double));
    if (!p) return;
    for (int64_t b = 0; b < B; b++)
        for (int h = 0; h < heads; h++)
            for (int64_t i = 0; i < Nq; i++) {
                int64_t n = causal ? i + 1 : Nk;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < n; j++) {
                    double dot = 0.0;
                    for (int64_t e = 0; e < d; e++)
                        dot += (double)q[(b * Nq + i) * ldq + h * d + e] * k[(b * Nk + j) * ldq + h * d + e];
                    p[j] = dot / sqrt((double)d);
                    if (p[j] > mx) mx = p[j];
                }
                for (int64_t j = 0; j < n; j++) sum += (p[j] = exp(p[j] - mx));
                for (int64_t e = 0; e < dv; e++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < n; j++) acc += p[j] * v[(b * Nk + j) * ldv + h * dv + e];
                    o[(b * Nq + i) * ldv + h * dv + e] = (float)(acc / sum);
                }
            }
    free(p);
}

/* ================================================================ elementwise */

typedef struct {
    const float *a, *b;
    float *y;
    int64_t n, nb, F;
    float s;
    int kind;
} ew_ctx;

enum { EW_SILU, EW_QUICK_GELU, EW_SCALE, EW_ADD, EW_GEGLU };

static void ew_task(void *p, int ith, int nth) {
    const ew_ctx *c = p;
    int64_t lo, hi;
    split_range(c->n, ith, nth, &lo, &hi);
    const float *a = c->a;
    float *y = c->y;
    switch (c->kind) {
    case EW_SILU:
        for (int64_t i = lo; i < hi; i++) y[i] = a[i] / (1.0f + expf(-a[i]));
        break;
    case EW_QUICK_GELU:
        for (int64_t i = lo; i < hi; i++) y[i] = a[i] / (1.0f + expf(-1.702f * a[i]));
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
    case EW_GEGLU: /* here n counts output values, rows of F */
        for (int64_t i = lo; i < hi; i++) {
            int64_t r = i / c->F, f = i % c->F;
            float h = a[r * 2 * c->F + f], gate = a[r * 2 * c->F + c->F + f];
            y[i] = h * (0.5f * gate * (1.0f + erff(gate * 0.70710678118654752f)));
        }
        break;
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
