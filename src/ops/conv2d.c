/* src/ops/conv2d.c: 2-D convolution as a GEMM (or Winograd), and its direct reference.
 *
 *   y[O, P] = W[O, K] . col[K, P] (+ bias[O]) (+ y),  K = C*kh*kw,  P = Ho*Wo
 *   col[(c*kh + ki)*kw + kj, oh*Wo + ow] = x[c, oh*stride - pad + ki, ow*stride - pad + kj]
 *                                          (0 outside the image: symmetric zero padding, as torch)
 *
 * The im2col matrix is never stored, not even a tile of it: the GEMM packs its B operand through a
 * callback (sdc_gemm_ex), and im2col_fill below writes each KC x NR panel straight from the image
 * into the GEMM's pack buffer. So the scratch is the GEMM's own pack buffers (a few MB per thread)
 * whatever the image size, the VAE's 512 x 512 x 128 layers included, and each col element is
 * written once instead of twice (store, then pack).
 *
 * A 1x1 stride-1 unpadded convolution is already a GEMM on the image as it lies in memory
 * (B = x[C, H*W]); it takes the plain strided path.
 *
 * 3x3 stride-1 pad-1 convolutions over enough 4x4 output tiles go to Winograd F(4x4, 3x3)
 * (winograd.c, about 4x fewer multiply-adds); sdc_conv2d_direct never does. A batch is run image
 * by image here (Winograd takes it whole).
 *
 * sdc_conv2d_ref is the seven-loop oracle the tests compare against. */
#include "ops/gemm.h"
#include "ops/winograd.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* im2col panels                                                                                   */

typedef struct im2col {
    const float *x; /* [C, H, W] */
    int C, H, W, kh, kw, stride, pad, Wo;
} im2col;

static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); } /* b > 0 */

/* One output row's stretch of the panel: pixels ow0 .. ow0+len-1 of output row oh. */
typedef struct segment {
    int oh, ow0, len;
} segment;

#define SEG_PIXELS 64 /* pixels handled per pass (a GEMM panel is at most NR <= 64 wide) */

/* The sdc_gemm_bfill_fn: dst[(k - k0)*ld + (p - j0)] = col[k, p] for k0 <= k < k0+kc and
 * j0 <= p < j0+n. Walks k incrementally as (c, ki, kj), and the pixels as segments of output
 * rows, so the inner loop is a (strided) copy between two zero-filled margins. */
static void im2col_fill(const void *ctx, int k0, int kc, int j0, int n, float *dst, int ld) {
    const im2col *a = ctx;
    for (int p0 = 0; p0 < n; p0 += SEG_PIXELS) {
        int np = n - p0 < SEG_PIXELS ? n - p0 : SEG_PIXELS;
        segment seg[SEG_PIXELS];
        int nseg = 0;
        for (int j = 0, p = j0 + p0; j < np; nseg++) {
            int oh = p / a->Wo, ow = p % a->Wo;
            int len = a->Wo - ow < np - j ? a->Wo - ow : np - j;
            seg[nseg] = (segment){oh, ow, len};
            j += len;
            p += len;
        }
        int c = k0 / (a->kh * a->kw), rem = k0 % (a->kh * a->kw);
        int ki = rem / a->kw, kj = rem % a->kw;
        for (int kk = 0; kk < kc; kk++) {
            float *d = dst + (size_t)kk * ld + p0;
            const float *plane = a->x + (size_t)c * a->H * a->W;
            int off = kj - a->pad, s = a->stride;
            for (int q = 0; q < nseg; q++) {
                const segment *sg = &seg[q];
                int ih = sg->oh * s - a->pad + ki;
                if (ih < 0 || ih >= a->H) {
                    memset(d, 0, (size_t)sg->len * sizeof(float));
                } else {
                    /* pixel t of the segment reads iw = (ow0 + t)*s + off, valid for lo <= t < hi */
                    const float *row = plane + (size_t)ih * a->W;
                    int lo = -floor_div(off, s) - sg->ow0; /* ceil(-off / s) - ow0 */
                    if (lo < 0) lo = 0;
                    if (lo > sg->len) lo = sg->len;
                    int hi = floor_div(a->W - 1 - off, s) - sg->ow0 + 1;
                    if (hi > sg->len) hi = sg->len;
                    if (hi < lo) hi = lo;
                    for (int t = 0; t < lo; t++) d[t] = 0.0f;
                    if (hi > lo) {
                        const float *src = row + (sg->ow0 + lo) * s + off;
                        if (s == 1) memcpy(d + lo, src, (size_t)(hi - lo) * sizeof(float));
                        else
                            for (int t = lo; t < hi; t++) d[t] = src[(t - lo) * s];
                    }
                    for (int t = hi; t < sg->len; t++) d[t] = 0.0f;
                }
                d += sg->len;
            }
            if (++kj == a->kw) { /* next k: (c, ki, kj) in row-major order */
                kj = 0;
                if (++ki == a->kh) {
                    ki = 0;
                    c++;
                }
            }
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Entry points                                                                                    */

/* Output size, or 0 when the arguments are out of range (then nothing is computed). */
static int conv_shape(const sdc_conv2d_args *a, int *Ho, int *Wo, int *K) {
    if (!a->x || !a->w || !a->y || a->C <= 0 || a->H <= 0 || a->W <= 0 || a->O <= 0 ||
        a->kh <= 0 || a->kw <= 0 || a->stride <= 0 || a->pad < 0 || a->pad > INT_MAX / 4 ||
        a->H > INT_MAX / 4 || a->W > INT_MAX / 4 || a->batch < 0)
        return 0;
    if (a->wdtype != SDC_F32 && a->wdtype != SDC_F16 && a->wdtype != SDC_BF16) return 0;
    int h = a->H + 2 * a->pad - a->kh, w = a->W + 2 * a->pad - a->kw;
    if (h < 0 || w < 0) return 0;
    *Ho = h / a->stride + 1;
    *Wo = w / a->stride + 1;
    long long k = (long long)a->C * a->kh * a->kw, p = (long long)*Ho * *Wo;
    if (k > INT_MAX || p > INT_MAX) return 0;
    *K = (int)k;
    return 1;
}

int sdc_conv2d_direct(sdc_pool *pool, const sdc_conv2d_args *a) {
    int Ho, Wo, K;
    if (!conv_shape(a, &Ho, &Wo, &K)) return -1;
    int P = Ho * Wo;
    for (int b = 0; b < (a->batch > 0 ? a->batch : 1); b++) {
        const float *x = a->x + (size_t)b * a->C * a->H * a->W; // x[b]: [C, H, W]
        sdc_gemm_args g = {
            .M = a->O, .N = P, .K = K,
            .A = {a->w, a->wdtype, K, 1},             // W[O, K]
            .C = a->y + (size_t)b * a->O * P, .ldc = P, // y[b]: [O, P]
            .bias_row = a->bias, .accumulate = a->accumulate,
        };
        int rc;
        if (a->kh == 1 && a->kw == 1 && a->stride == 1 && a->pad == 0) {
            g.B = (sdc_mat){x, SDC_F32, (ptrdiff_t)a->H * a->W, 1}; // x[C, H*W]
            rc = sdc_gemm_ex(pool, &g, NULL, NULL);
        } else {
            im2col ic = {x, a->C, a->H, a->W, a->kh, a->kw, a->stride, a->pad, Wo};
            rc = sdc_gemm_ex(pool, &g, im2col_fill, &ic); // col[K, P], packed on the fly
        }
        if (rc != 0) return rc; /* only the first image can fail: the scratch is the same */
    }
    return 0;
}

/* SDC_CONV=direct turns Winograd off, SDC_CONV=winograd uses it for every supported shape (to
 * compare paths and to run the golden tests through it); unset or anything else: by the rule. */
static int conv_mode(void) {
    static _Atomic int mode = -1; /* 0 auto, 1 direct, 2 winograd */
    int m = mode;
    if (m < 0) {
        const char *e = getenv("SDC_CONV");
        m = e && !strcmp(e, "direct") ? 1 : e && !strcmp(e, "winograd") ? 2 : 0;
        mode = m;
    }
    return m;
}

int sdc_conv2d(sdc_pool *pool, const sdc_conv2d_args *a) {
    int Ho, Wo, K;
    if (!conv_shape(a, &Ho, &Wo, &K)) return -1;
    /* Winograd where it wins (winograd.c); if its scratch cannot be had, the direct conv's
     * smaller scratch may still be */
    int m = conv_mode();
    int wino = m == 2 ? sdc_winograd_supported(a) : m == 0 && sdc_winograd_preferred(a);
    if (wino && sdc_conv2d_winograd(pool, a) == 0) return 0;
    return sdc_conv2d_direct(pool, a);
}

static float weight_at(const sdc_conv2d_args *a, size_t idx) {
    const unsigned char *p = a->w;
    uint16_t h;
    float f;
    switch (a->wdtype) {
    case SDC_F16: memcpy(&h, p + 2 * idx, 2); return sdc_f16_to_f32(h);
    case SDC_BF16: memcpy(&h, p + 2 * idx, 2); return sdc_bf16_to_f32(h);
    default: memcpy(&f, p + 4 * idx, 4); return f;
    }
}

/* The seven loops; zero padding by bounds checks; f32 accumulation in (c, ki, kj) order. */
void sdc_conv2d_ref(const sdc_conv2d_args *a) {
    int Ho, Wo, K;
    if (!conv_shape(a, &Ho, &Wo, &K)) return;
    if (a->batch > 1) { /* image by image */
        sdc_conv2d_args one = *a;
        one.batch = 1;
        for (int b = 0; b < a->batch; b++) {
            one.x = a->x + (size_t)b * a->C * a->H * a->W;
            one.y = a->y + (size_t)b * a->O * Ho * Wo;
            sdc_conv2d_ref(&one);
        }
        return;
    }
    for (int o = 0; o < a->O; o++)
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                float s = 0.0f;
                for (int c = 0; c < a->C; c++)
                    for (int ki = 0; ki < a->kh; ki++) {
                        int ih = oh * a->stride - a->pad + ki;
                        if (ih < 0 || ih >= a->H) continue;
                        for (int kj = 0; kj < a->kw; kj++) {
                            int iw = ow * a->stride - a->pad + kj;
                            if (iw < 0 || iw >= a->W) continue;
                            size_t widx = (((size_t)o * a->C + c) * a->kh + ki) * a->kw + kj;
                            s += weight_at(a, widx) * a->x[((size_t)c * a->H + ih) * a->W + iw];
                        }
                    }
                if (a->bias) s += a->bias[o];
                float *y = a->y + ((size_t)o * Ho + oh) * Wo + ow;
                *y = a->accumulate ? *y + s : s;
            }
}
