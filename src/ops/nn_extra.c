/* src/ops/nn_extra.c: transposed conv k2 s2, LeakyReLU, clip, bilinear resize (see nn_extra.h). */
#include "ops/nn_extra.h"

#include "ops/gemm.h"

#include <math.h>
#include <stdlib.h>

/* Splits [0, n) into nth nearly equal contiguous ranges; returns thread ith's range. */
static inline void split_range(int64_t n, int ith, int nth, int64_t *lo, int64_t *hi) {
    int64_t per = n / nth, rem = n % nth;
    *lo = ith * per + (ith < rem ? ith : rem);
    *hi = *lo + per + (ith < rem);
}

/* ================================================================ transposed conv, k2 s2 */

/* Scratch per band of input rows: at most this many floats (4 MiB), at least one row. */
#define CT_BAND_FLOATS (1 << 20)

typedef struct {
    const float *t;     /* [4O, rows*W]: row m = o*4 + a*2 + b */
    const float *bias;  /* [O] or NULL */
    float *y;           /* [O, 2H, 2W] */
    int O, H, W, i0, rows;
} ct_scatter_ctx;

static void ct_scatter_task(void *p, int ith, int nth) {
    const ct_scatter_ctx *c = p;
    int64_t lo, hi, P = (int64_t)c->rows * c->W, Wo = 2 * (int64_t)c->W;
    split_range(c->O, ith, nth, &lo, &hi);
    for (int64_t o = lo; o < hi; o++) {
        float bo = c->bias ? c->bias[o] : 0.0f;
        float *yo = c->y + o * (2 * (int64_t)c->H) * Wo;
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 2; b++) {
                const float *src = c->t + (o * 4 + a * 2 + b) * P;
                for (int r = 0; r < c->rows; r++) {
                    float *dst = yo + (2 * (int64_t)(c->i0 + r) + a) * Wo + b;
                    const float *s = src + (int64_t)r * c->W;
                    for (int j = 0; j < c->W; j++) dst[2 * j] = s[j] + bo;
                }
            }
    }
}

int sdc_conv_transpose_k2s2(sdc_pool *pool, const float *x, int C, int H, int W, const float *w,
                            int O, const float *bias, float *y) {
    int64_t per_row = 4 * (int64_t)O * W;
    int rows = per_row > 0 && per_row < CT_BAND_FLOATS ? (int)(CT_BAND_FLOATS / per_row) : 1;
    if (rows > H) rows = H;
    float *t = malloc((size_t)(per_row * rows) * sizeof(float));
    if (!t) return -1;
    for (int i0 = 0; i0 < H; i0 += rows) {
        int nr = H - i0 < rows ? H - i0 : rows;
        /* t[m, p] = sum_c w[c, m] * x[c, i0*W + p]: A = w^T (rs 1, cs 4O), B = x band (rs H*W) */
        sdc_gemm_args g = {
            .M = 4 * O, .N = nr * W, .K = C,
            .A = {w, SDC_F32, 1, 4 * (ptrdiff_t)O},
            .B = {x + (int64_t)i0 * W, SDC_F32, (ptrdiff_t)H * W, 1},
            .C = t, .ldc = (ptrdiff_t)nr * W,
        };
        sdc_gemm(pool, &g);
        ct_scatter_ctx c = {t, bias, y, O, H, W, i0, nr};
        sdc_pool_run(pool, ct_scatter_task, &c);
    }
    free(t);
    return 0;
}

void sdc_conv_transpose_k2s2_ref(const float *x, int C, int H, int W, const float *w, int O,
                                 const float *bias, float *y) {
    int64_t Wo = 2 * (int64_t)W, Ho = 2 * (int64_t)H;
    for (int o = 0; o < O; o++)
        for (int64_t yy = 0; yy < Ho; yy++)
            for (int64_t xx = 0; xx < Wo; xx++) {
                int64_t i = yy / 2, j = xx / 2, a = yy % 2, b = xx % 2;
                double s = bias ? bias[o] : 0.0;
                for (int c = 0; c < C; c++)
                    s += (double)x[((int64_t)c * H + i) * W + j] * w[(((int64_t)c * O + o) * 2 + a) * 2 + b];
                y[((int64_t)o * Ho + yy) * Wo + xx] = (float)s;
            }
}

/* ================================================================ elementwise */

typedef struct {
    const float *x;
    float *y;
    int64_t n;
    float a, b;
    int kind; /* 0 leaky relu (a = alpha), 1 clip (a = lo, b = hi) */
} ew_ctx;

static void ew_task(void *p, int ith, int nth) {
    const ew_ctx *c = p;
    int64_t lo, hi;
    split_range(c->n, ith, nth, &lo, &hi);
    const float *x = c->x;
    float *y = c->y;
    if (c->kind == 0) {
        float alpha = c->a;
        for (int64_t i = lo; i < hi; i++) y[i] = x[i] >= 0.0f ? x[i] : alpha * x[i];
    } else {
        float l = c->a, h = c->b;
        for (int64_t i = lo; i < hi; i++) {
            float v = x[i];
            y[i] = v < l ? l : v > h ? h : v; /* comparisons with NaN are false: NaN passes */
        }
    }
}

void sdc_leaky_relu(sdc_pool *pool, const float *x, float *y, int64_t n, float alpha) {
    ew_ctx c = {x, y, n, alpha, 0.0f, 0};
    sdc_pool_run(n < 4096 ? NULL : pool, ew_task, &c);
}

void sdc_clip(sdc_pool *pool, const float *x, float *y, int64_t n, float lo, float hi) {
    ew_ctx c = {x, y, n, lo, hi, 1};
    sdc_pool_run(n < 4096 ? NULL : pool, ew_task, &c);
}

/* ================================================================ bilinear resize */

/* One axis: source index pair and the weight of the upper one, for output index d. */
static inline void half_pixel(int64_t d, float scale, int64_t in, int64_t *i0, int64_t *i1,
                              float *l1) {
    float s = ((float)d + 0.5f) * scale - 0.5f;
    if (s < 0.0f) s = 0.0f;
    int64_t f = (int64_t)s;
    if (f > in - 1) f = in - 1;
    *i0 = f;
    *i1 = f + 1 < in ? f + 1 : in - 1;
    *l1 = s - (float)f;
}

typedef struct {
    const float *x;
    float *y;
    int64_t C, H, W, Ho, Wo;
    int accumulate;
} rs_ctx;

static void rs_task(void *p, int ith, int nth) {
    const rs_ctx *c = p;
    int64_t lo, hi;
    split_range(c->C * c->Ho, ith, nth, &lo, &hi);
    float sh = (float)c->H / (float)c->Ho, sw = (float)c->W / (float)c->Wo;
    for (int64_t row = lo; row < hi; row++) {
        int64_t ch = row / c->Ho, oy = row % c->Ho, y0, y1;
        float ly;
        half_pixel(oy, sh, c->H, &y0, &y1, &ly);
        const float *r0 = c->x + (ch * c->H + y0) * c->W, *r1 = c->x + (ch * c->H + y1) * c->W;
        float *out = c->y + row * c->Wo;
        float hy = 1.0f - ly;
        for (int64_t ox = 0; ox < c->Wo; ox++) {
            int64_t x0, x1;
            float lx;
            half_pixel(ox, sw, c->W, &x0, &x1, &lx);
            float hx = 1.0f - lx;
            float v = hy * (hx * r0[x0] + lx * r0[x1]) + ly * (hx * r1[x0] + lx * r1[x1]);
            out[ox] = c->accumulate ? out[ox] + v : v;
        }
    }
}

void sdc_resize_bilinear(sdc_pool *pool, const float *x, float *y, int64_t C, int64_t H, int64_t W,
                         int64_t Ho, int64_t Wo, int accumulate) {
    rs_ctx c = {x, y, C, H, W, Ho, Wo, accumulate};
    sdc_pool_run(C * Ho * Wo < 4096 ? NULL : pool, rs_task, &c);
}

void sdc_resize_bilinear_ref(const float *x, float *y, int64_t C, int64_t H, int64_t W, int64_t Ho,
                             int64_t Wo, int accumulate) {
    for (int64_t ch = 0; ch < C; ch++)
        for (int64_t oy = 0; oy < Ho; oy++)
            for (int64_t ox = 0; ox < Wo; ox++) {
                double sy = fmax((oy + 0.5) * (double)H / (double)Ho - 0.5, 0.0);
                double sx = fmax((ox + 0.5) * (double)W / (double)Wo - 0.5, 0.0);
                int64_t y0 = (int64_t)floor(sy), x0 = (int64_t)floor(sx);
                if (y0 > H - 1) y0 = H - 1;
                if (x0 > W - 1) x0 = W - 1;
                int64_t y1 = y0 + 1 < H ? y0 + 1 : H - 1, x1 = x0 + 1 < W ? x0 + 1 : W - 1;
                double ly = sy - y0, lx = sx - x0;
                const float *p = x + ch * H * W;
                double v = (1 - ly) * ((1 - lx) * p[y0 * W + x0] + lx * p[y0 * W + x1]) +
                           ly * ((1 - lx) * p[y1 * W + x0] + lx * p[y1 * W + x1]);
                float *o = y + (ch * Ho + oy) * Wo + ox;
                *o = accumulate ? (float)(*o + v) : (float)v;
            }
}
