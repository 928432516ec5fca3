/* bench/bench_ops.c: GFLOP/s of the GEMM and conv2d kernels on Stable Diffusion 1.5 shapes.
 *
 *   bench_ops [SECONDS_PER_MEASUREMENT [FILTER]]   (default 0.3 s; FILTER: a substring of the
 *                                                   row names to run, e.g. "attn" or "conv2d")
 *
 * One row per shape and weight dtype: the reference (sdc_gemm_ref, timed on the first few rows
 * only, it is slow), sdc_gemm on 1 and 2 threads, the speed-ups, and OpenBLAS cblas_sgemm (f32
 * rows) when libopenblas.so.0 can be loaded at run time (it is looked up with dlopen, so the
 * bench builds without it). Then conv2d 3x3 320->320 at 64x64 (one image), the 3x3 convs of the
 * UNet and VAE by direct conv and by Winograd ("winograd" rows), and the cost of an empty
 * sdc_pool_run. The shapes:
 *   linear   y[M,N] = x[M,K] . W[N,K]^T  (W in checkpoint layout: B = {W, rs 1, cs K})
 *   conv     y[O,P] = W[O,K] . col[K,P]  (the GEMM inside a 3x3 conv: K = 9C)
 *   QK^T     s[4096,4096] = q . k^T, K = 40, q and k strided views of [tokens, 8 heads * 40]
 *   P.V      o[4096,40] = p[4096,4096] . v, v a strided view of [tokens, 8 heads * 40]
 *            (the previous attention kernel ran them per block of 64 queries, single-threaded
 *            per block: the "64-query block" rows are the calls it made)
 * Then the "attention" rows: sdc_attention (flash-style) against that previous kernel, kept
 * below as the baseline, on SD 1.5's attention shapes. */
#define _GNU_SOURCE
#include "core/threadpool.h"
#include "core/error.h"
#include "ops/attention.h"
#include "ops/gemm.h"
#include "ops/winograd.h"

#include <math.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__linux__) || defined(__APPLE__)
#include <dlfcn.h>
#define HAVE_DLOPEN 1
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double min_seconds = 0.3;
static const char *filter = ""; /* run only the rows whose name contains this */

/* ---------------------------------------------------------------------------------------------- */
/* OpenBLAS, if present at run time                                                                */

typedef void (*sgemm_fn)(int order, int ta, int tb, int M, int N, int K, float alpha,
                         const float *A, int lda, const float *B, int ldb, float beta, float *C,
                         int ldc);
typedef void (*set_threads_fn)(int n);
static sgemm_fn blas_sgemm;
static set_threads_fn blas_set_threads;
enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };

static void load_blas(void) {
#ifdef HAVE_DLOPEN
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!h) h = dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL);
    if (!h) return;
    blas_sgemm = (sgemm_fn)dlsym(h, "cblas_sgemm");
    blas_set_threads = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
    if (!blas_set_threads) blas_sgemm = NULL; /* cannot control its threads: no fair comparison */
#endif
}

/* ---------------------------------------------------------------------------------------------- */
/* GEMM cases                                                                                      */

enum kind { LINEAR, CONV, QK, PV };

typedef struct bench_case {
    const char *name;
    enum kind kind;
    int M, N, K;
} bench_case;

static const bench_case cases[] = {
    {"linear proj_in 64x64", LINEAR, 8192, 320, 320},
    {"linear ff 64x64 (geglu)", LINEAR, 8192, 2560, 320},
    {"linear ff out 64x64", LINEAR, 8192, 320, 1280},
    {"linear 32x32", LINEAR, 2048, 640, 640},
    {"linear ff 32x32 (geglu)", LINEAR, 2048, 5120, 640},
    {"linear ff out 32x32", LINEAR, 2048, 640, 2560},
    {"linear 16x16", LINEAR, 512, 1280, 1280},
    {"linear ff 16x16 (geglu)", LINEAR, 512, 10240, 1280},
    {"linear ff out 16x16", LINEAR, 512, 1280, 5120},
    {"linear 8x8", LINEAR, 128, 1280, 1280},
    {"linear cross k/v 64x64", LINEAR, 154, 320, 768},
    {"linear cross k/v 16x16", LINEAR, 154, 1280, 768},
    {"linear text (CLIP)", LINEAR, 154, 768, 768},
    {"linear text mlp (CLIP)", LINEAR, 154, 3072, 768},
    {"conv 3x3 320 @64x64", CONV, 320, 4096, 2880},
    {"conv 3x3 640 @32x32", CONV, 640, 1024, 5760},
    {"conv 3x3 1280 @16x16", CONV, 1280, 256, 11520},
    {"conv 3x3 1280 @8x8", CONV, 1280, 64, 11520},
    {"attn QK^T 64x64, d 40", QK, 4096, 4096, 40},
    {"attn P.V 64x64, d 40", PV, 4096, 40, 4096},
    {"attn QK^T 64-query block", QK, 64, 4096, 40},
    {"attn P.V 64-query block", PV, 64, 40, 4096},
    {"attn QK^T 32x32, d 80", QK, 1024, 1024, 80},
    {"attn P.V 32x32, d 80", PV, 1024, 80, 1024},
};

typedef struct operands {
    float *A32, *B32, *C;
    uint16_t *W16; /* the weight operand in f16 */
    sdc_gemm_args g;
} operands;

static float *rand_floats(size_t n) {
    float *p = malloc(n * sizeof(float));
    if (!p) return NULL;
    uint32_t s = 12345;
    for (size_t i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        p[i] = (float)(s >> 8) / 8388608.0f - 1.0f;
    }
    return p;
}

/* Builds the operands of a case with its weight in dtype wdt; M rows (a prefix of the case). */
static int make_operands(const bench_case *c, int M, sdc_dtype wdt, operands *o) {
    int N = c->N, K = c->K;
    memset(o, 0, sizeof *o);
    const int heads = 8; /* attention views are one head of [tokens, heads * d] */
    size_t an = (size_t)M * K, bn = (size_t)K * N;
    if (c->kind == QK) an = (size_t)M * K * heads, bn = (size_t)N * K * heads;
    if (c->kind == PV) bn = (size_t)K * N * heads;
    o->A32 = rand_floats(an);
    o->B32 = rand_floats(bn);
    o->C = calloc((size_t)M * N, sizeof(float));
    if (!o->A32 || !o->B32 || !o->C) return -1;
    const float *w32 = c->kind == CONV ? o->A32 : o->B32;
    size_t wn = c->kind == CONV ? an : bn;
    const void *w = w32;
    if (wdt == SDC_F16) {
        o->W16 = malloc(wn * sizeof(uint16_t));
        if (!o->W16) return -1;
        for (size_t i = 0; i < wn; i++) o->W16[i] = sdc_f32_to_f16(w32[i]);
        w = o->W16;
    }
    sdc_gemm_args *g = &o->g;
    *g = (sdc_gemm_args){.M = M, .N = N, .K = K, .C = o->C, .ldc = N};
    switch (c->kind) {
    case LINEAR:
        g->A = (sdc_mat){o->A32, SDC_F32, K, 1};
        g->B = (sdc_mat){w, wdt, 1, K};
        break;
    case CONV:
        g->A = (sdc_mat){w, wdt, K, 1};
        g->B = (sdc_mat){o->B32, SDC_F32, N, 1};
        break;
    case QK:
        g->A = (sdc_mat){o->A32, SDC_F32, (ptrdiff_t)K * heads, 1};
        g->B = (sdc_mat){o->B32, SDC_F32, 1, (ptrdiff_t)K * heads};
        break;
    case PV:
        g->A = (sdc_mat){o->A32, SDC_F32, K, 1};
        g->B = (sdc_mat){o->B32, SDC_F32, (ptrdiff_t)N * heads, 1};
        break;
    }
    return 0;
}

static void free_operands(operands *o) {
    free(o->A32), free(o->B32), free(o->C), free(o->W16);
}

/* GFLOP/s of fn over repeated calls lasting at least min_seconds (one warm-up call first). */
#define TIME_GFLOPS(flops, call)                                                                   \
    ({                                                                                             \
        call;                                                                                      \
        int reps_ = 0;                                                                             \
        double t0_ = now_s(), dt_;                                                                 \
        do {                                                                                       \
            call;                                                                                  \
            reps_++;                                                                               \
        } while ((dt_ = now_s() - t0_) < min_seconds);                                             \
        (flops) * reps_ / dt_ * 1e-9;                                                              \
    })

static double time_ref(const bench_case *c, sdc_dtype wdt) {
    operands o;
    int M = c->kind == CONV ? 14 : 8; /* a few rows: the reference runs ~1 GFLOP/s */
    if (c->kind == PV || c->kind == QK) M = 4;
    double gf = 0;
    if (make_operands(c, M, wdt, &o) == 0) {
        double flops = 2.0 * M * c->N * c->K, t0 = now_s();
        sdc_gemm_ref(&o.g);
        gf = flops / (now_s() - t0) * 1e-9;
    }
    free_operands(&o);
    return gf;
}

static double time_blas(operands *o, const bench_case *c, int nth) {
    if (!blas_sgemm || o->g.A.dtype != SDC_F32 || o->g.B.dtype != SDC_F32) return 0;
    blas_set_threads(nth);
    const sdc_gemm_args *g = &o->g;
    int tb = g->B.rs == 1 ? CblasTrans : CblasNoTrans;
    int ldb = (int)(tb == CblasTrans ? g->B.cs : g->B.rs);
    double flops = 2.0 * g->M * g->N * g->K;
    (void)c;
    return TIME_GFLOPS(flops, blas_sgemm(CblasRowMajor, CblasNoTrans, tb, g->M, g->N, g->K, 1.0f,
                                         g->A.data, (int)g->A.rs, g->B.data, ldb, 0.0f, g->C,
                                         (int)g->ldc));
}

static void bench_gemm(sdc_pool *pool2) {
    int header = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bench_case *c = &cases[i];
        if (!strstr(c->name, filter)) continue;
        if (!header++)
            printf("%-26s %5s %5s %5s %4s | %7s %7s %7s | %7s %5s | %7s %7s %6s\n", "GEMM (GFLOP/s)",
                   "M", "N", "K", "W", "ref", "sdc 1T", "sdc 2T", "1T/ref", "2T/1T", "blas 1T",
                   "blas 2T", "1T/bl");
        int has_weight = c->kind == LINEAR || c->kind == CONV;
        for (int d = 0; d < (has_weight ? 2 : 1); d++) {
            sdc_dtype wdt = d ? SDC_F16 : SDC_F32;
            operands o;
            if (make_operands(c, c->M, wdt, &o) != 0) {
                printf("%-26s out of memory\n", c->name);
                free_operands(&o);
                continue;
            }
            double flops = 2.0 * c->M * c->N * c->K;
            double ref = time_ref(c, wdt);
            double t1 = TIME_GFLOPS(flops, sdc_gemm(NULL, &o.g));
            double t2 = TIME_GFLOPS(flops, sdc_gemm(pool2, &o.g));
            double b1 = time_blas(&o, c, 1), b2 = time_blas(&o, c, 2);
            printf("%-26s %5d %5d %5d %4s | %7.2f %7.1f %7.1f | %6.0fx %5.2f |", c->name, c->M, c->N,
                   c->K, has_weight ? sdc_dtype_table[wdt].name : "-", ref, t1, t2, t1 / ref,
                   t2 / t1);
            if (b1 > 0) printf(" %7.1f %7.1f %6.2f\n", b1, b2, t1 / b1);
            else printf(" %7s %7s %6s\n", "-", "-", "-");
            free_operands(&o);
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* conv2d and the pool                                                                             */

static void bench_conv(sdc_pool *pool2) {
    if (!strstr("conv2d 3x3 320->320", filter)) return;
    printf("\n%-26s %4s | %7s %7s %7s | %7s %5s\n", "conv2d (GFLOP/s)", "W", "ref", "sdc 1T", "sdc 2T",
           "1T/ref", "2T/1T");
    const int C = 320, O = 320, H = 64, W = 64;
    float *x = rand_floats((size_t)C * H * W), *w32 = rand_floats((size_t)O * C * 9);
    float *bias = rand_floats(O), *y = malloc((size_t)O * H * W * sizeof(float));
    uint16_t *w16 = malloc((size_t)O * C * 9 * sizeof(uint16_t));
    if (!x || !w32 || !bias || !y || !w16) {
        printf("out of memory\n");
        goto done;
    }
    for (size_t i = 0; i < (size_t)O * C * 9; i++) w16[i] = sdc_f32_to_f16(w32[i]);
    for (int d = 0; d < 2; d++) {
        sdc_conv2d_args a = {.x = x, .C = C, .H = H, .W = W, .w = d ? (void *)w16 : (void *)w32,
                             .wdtype = d ? SDC_F16 : SDC_F32, .O = O, .kh = 3, .kw = 3,
                             .bias = bias, .stride = 1, .pad = 1, .y = y};
        double flops = 2.0 * O * H * W * C * 9;
        /* the reference on an 8x8 crop of the image (same per-pixel work) */
        sdc_conv2d_args r = a;
        r.H = r.W = 8;
        double t0 = now_s();
        sdc_conv2d_ref(&r);
        double ref = 2.0 * O * 64 * C * 9 / (now_s() - t0) * 1e-9;
        double t1 = TIME_GFLOPS(flops, sdc_conv2d(NULL, &a));
        double t2 = TIME_GFLOPS(flops, sdc_conv2d(pool2, &a));
        printf("%-26s %4s | %7.2f %7.1f %7.1f | %6.0fx %5.2f\n", "3x3 320->320 @64x64 pad 1",
               sdc_dtype_table[a.wdtype].name, ref, t1, t2, t1 / ref, t2 / t1);
    }
done:
    free(x), free(w32), free(bias), free(y), free(w16);
}

/* 3x3 pad-1 convolutions of SD 1.5 (UNet at batch 2 = one CFG step, VAE decoder at batch 1):
 * the direct conv (im2col GEMM), Winograd F(4x4, 3x3) and the reference, all as GFLOP/s of the
 * direct convolution's FLOPs (2*B*O*C*9*H*W) so that the columns compare times; "*" marks the
 * path sdc_conv2d takes. */
static void bench_winograd(sdc_pool *pool2) {
    static const struct { const char *name; int B, C, O, H, W; } shapes[] = {
        {"unet 320 @64x64", 2, 320, 320, 64, 64},   {"unet 640 @32x32", 2, 640, 640, 32, 32},
        {"unet 1280 @16x16", 2, 1280, 1280, 16, 16}, {"unet 1280 @8x8", 2, 1280, 1280, 8, 8},
        {"unet 960->320 @64x64", 2, 960, 320, 64, 64}, {"unet 2560->1280 @8x8", 2, 2560, 1280, 8, 8},
        {"vae 512 @64x64", 1, 512, 512, 64, 64},    {"vae 512 @128x128", 1, 512, 512, 128, 128},
        {"vae 256 @256x256", 1, 256, 256, 256, 256}, {"vae 128 @512x512", 1, 128, 128, 512, 512},
    };
    int header = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        char name[64];
        snprintf(name, sizeof name, "winograd %s", shapes[i].name);
        if (!strstr(name, filter)) continue;
        if (!header++)
            printf("\n%-32s %2s | %7s %7s %7s %7s %7s | %6s %6s\n", "conv 3x3 f16 (GFLOP/s direct)", "B",
                   "ref", "dir 1T", "dir 2T", "wino 1T", "wino 2T", "w/d 1T", "w/d 2T");
        int B = shapes[i].B, C = shapes[i].C, O = shapes[i].O, H = shapes[i].H, W = shapes[i].W;
        size_t xn = (size_t)B * C * H * W, yn = (size_t)B * O * H * W, wn = (size_t)O * C * 9;
        float *x = rand_floats(xn), *w32 = rand_floats(wn), *bias = rand_floats((size_t)O);
        float *y = malloc(yn * sizeof(float));
        uint16_t *w16 = malloc(wn * sizeof(uint16_t));
        if (!x || !w32 || !bias || !y || !w16) {
            printf("%-32s out of memory\n", name);
            free(x), free(w32), free(bias), free(y), free(w16);
            continue;
        }
        for (size_t k = 0; k < wn; k++) w16[k] = sdc_f32_to_f16(w32[k]);
        sdc_conv2d_args a = {.x = x, .C = C, .H = H, .W = W, .w = w16, .wdtype = SDC_F16, .O = O,
                             .kh = 3, .kw = 3, .bias = bias, .stride = 1, .pad = 1, .y = y, .batch = B};
        double flops = 2.0 * B * O * C * 9 * H * W;
        sdc_conv2d_args r = a; /* the reference on a 4x4 crop of one image and 16 channels out */
        r.H = r.W = 4, r.O = 16, r.batch = 1;
        double t0 = now_s();
        sdc_conv2d_ref(&r);
        double ref = 2.0 * 16 * C * 9 * 16 / (now_s() - t0) * 1e-9;
        double d1 = TIME_GFLOPS(flops, sdc_conv2d_direct(NULL, &a));
        double d2 = TIME_GFLOPS(flops, sdc_conv2d_direct(pool2, &a));
        double w1 = TIME_GFLOPS(flops, sdc_conv2d_winograd(NULL, &a));
        double w2 = TIME_GFLOPS(flops, sdc_conv2d_winograd(pool2, &a));
        int win = sdc_winograd_preferred(&a);
        printf("%-32s %2d | %7.2f %7.1f %6.1f%s %7.1f %6.1f%s | %6.2f %6.2f\n", name, B, ref, d1, d2,
               win ? " " : "*", w1, w2, win ? "*" : " ", w1 / d1, w2 / d2);
        free(x), free(w32), free(bias), free(y), free(w16);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Attention                                                                                       */

/* The attention kernel of the previous version, kept as the baseline of the "attention" rows:
 * blocks of 64 queries, scores by sdc_gemm (which re-packs the head's k for every block) into a
 * [64, Nk] buffer, a row softmax, then P.V by sdc_gemm with N = dv; scratch malloc'd per call. */
#define OLD_QBLOCK 64

typedef struct {
    const float *q, *k, *v;
    float *o;
    int64_t B, Nq, Nk, d, dv;
    int heads, causal;
    float *scratch; /* [nth][OLD_QBLOCK * Nk] */
} old_attn_ctx;

/* exp(x) for x <= 0 (softmax arguments), branch-free so that the loops below vectorize:
 * x = k ln2 + r with |r| <= ln2/2, exp(r) by Cephes' degree-6 polynomial (about 1 ulp), times
 * 2^k built in the exponent bits. Arguments below -87 give exp(-87) ~ 1.6e-38 instead of a
 * denormal: nothing a softmax sum can see. */
static inline float old_exp_nonpos(float x) {
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
static void old_softmax_rows(float *s, int64_t rows, int64_t Nk, float scale, int causal, int64_t q0) {
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
                float e = old_exp_nonpos(row[j + l] - mx);
                row[j + l] = e;
                suml[l] += e;
            }
        double sum = 0.0;
        for (; j < n; j++) {
            row[j] = old_exp_nonpos(row[j] - mx);
            sum += row[j];
        }
        for (int l = 0; l < L; l++) sum += suml[l];
        float inv = (float)(1.0 / sum);
        for (j = 0; j < n; j++) row[j] *= inv;
        for (j = n; j < Nk; j++) row[j] = 0.0f;
    }
}

static void old_attn_task(void *p, int ith, int nth) {
    const old_attn_ctx *c = p;
    int64_t qblocks = (c->Nq + OLD_QBLOCK - 1) / OLD_QBLOCK;
    int64_t n_tasks = c->B * c->heads * qblocks;
    int64_t ldq = (int64_t)c->heads * c->d, ldv = (int64_t)c->heads * c->dv;
    float *s = c->scratch + (size_t)ith * OLD_QBLOCK * c->Nk;
    float scale = 1.0f / sqrtf((float)c->d);
    for (int64_t task = ith; task < n_tasks; task += nth) {
        int64_t b = task / (c->heads * qblocks), rem = task % (c->heads * qblocks);
        int64_t h = rem / qblocks, q0 = (rem % qblocks) * OLD_QBLOCK;
        int64_t rows = c->Nq - q0 < OLD_QBLOCK ? c->Nq - q0 : OLD_QBLOCK;
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
        old_softmax_rows(s, rows, c->Nk, scale, c->causal, q0);
        // out[rows, dv] = p[rows, nk] . v[nk, dv]
        sdc_gemm_args og = {.M = (int)rows, .N = (int)c->dv, .K = (int)nk,
                            .A = {s, SDC_F32, c->Nk, 1}, .B = {vp, SDC_F32, ldv, 1},
                            .C = op, .ldc = ldv};
        sdc_gemm(NULL, &og);
    }
}

static int old_attention(sdc_pool *pool, const float *q, const float *k, const float *v, float *o,
                  int64_t B, int64_t Nq, int64_t Nk, int heads, int64_t d, int64_t dv, int causal) {
    int nth = sdc_pool_size(pool);
    size_t n = sdc_mul_size(sdc_mul_size((size_t)nth, OLD_QBLOCK), (size_t)Nk);
    float *scratch = n ? malloc(n * sizeof(float)) : NULL;
    if (!scratch) return -1;
    old_attn_ctx c = {q, k, v, o, B, Nq, Nk, d, dv, heads, causal, scratch};
    sdc_pool_run(pool, old_attn_task, &c);
    free(scratch);
    return 0;
}


/* sdc_attention (flash-style, src/ops/attention.c) against the old kernel above and the
 * reference (timed on a few queries), on SD 1.5's shapes at batch 2 (one CFG step), as GFLOP/s
 * of 2*B*H*Nq*Nk*(d + dv) (the products; the softmax is not counted). */
static void bench_attention(sdc_pool *pool2) {
    static const struct { const char *name; int64_t Nq, Nk; int heads; int64_t d; int causal; } shapes[] = {
        {"attention self 64x64 d40", 4096, 4096, 8, 40, 0},   {"attention cross 64x64 d40", 4096, 77, 8, 40, 0},
        {"attention self 32x32 d80", 1024, 1024, 8, 80, 0},   {"attention cross 32x32 d80", 1024, 77, 8, 80, 0},
        {"attention self 16x16 d160", 256, 256, 8, 160, 0},   {"attention self 8x8 d160", 64, 64, 8, 160, 0},
        {"attention CLIP causal d64", 77, 77, 12, 64, 1},   {"attention vae 64x64 d512", 4096, 4096, 1, 512, 0},
    };
    int header = 0;
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        if (!strstr(shapes[i].name, filter)) continue;
        if (!header++)
            printf("\n%-26s %5s %5s %3s %4s | %7s %7s %7s %7s %7s | %6s %6s %5s\n",
                   "attention (GFLOP/s)", "Nq", "Nk", "H", "d", "ref", "old 1T", "old 2T", "new 1T",
                   "new 2T", "new/old", "2T", "2T/1T");
        int64_t Nq = shapes[i].Nq, Nk = shapes[i].Nk, d = shapes[i].d;
        int H = shapes[i].heads, causal = shapes[i].causal;
        int64_t B = strstr(shapes[i].name, "vae") ? 1 : 2;
        size_t nq = (size_t)(B * Nq * H * d), nk = (size_t)(B * Nk * H * d);
        float *q = rand_floats(nq), *k = rand_floats(nk), *v = rand_floats(nk);
        float *o = malloc(nq * sizeof(float));
        size_t nsc = sdc_attention_scratch_floats(2, Nk, H, d, d);
        float *sc = malloc(nsc * sizeof(float));
        if (!q || !k || !v || !o || !sc) {
            printf("%-26s out of memory\n", shapes[i].name);
            free(q), free(k), free(v), free(o), free(sc);
            continue;
        }
        double flops = 2.0 * B * H * (double)Nq * (double)Nk * (double)(2 * d);
        double fs = causal ? 0.5 * (1.0 + 1.0 / (double)Nk) : 1.0; /* causal: half the pairs */
        /* the reference on 4 queries of one head (non-causal: the same work per query) */
        double t0 = now_s();
        sdc_attention_ref(q, k, v, o, 1, 4, Nk, 1, d, d, 0);
        double ref = 2.0 * 4 * (double)Nk * (double)(2 * d) / (now_s() - t0) * 1e-9;
        double o1 = TIME_GFLOPS(flops * fs, old_attention(NULL, q, k, v, o, B, Nq, Nk, H, d, d, causal));
        double o2 = TIME_GFLOPS(flops * fs, old_attention(pool2, q, k, v, o, B, Nq, Nk, H, d, d, causal));
        double n1 = TIME_GFLOPS(flops * fs, sdc_attention(NULL, q, k, v, o, B, Nq, Nk, H, d, d, causal, sc, nsc));
        double n2 = TIME_GFLOPS(flops * fs, sdc_attention(pool2, q, k, v, o, B, Nq, Nk, H, d, d, causal, sc, nsc));
        printf("%-26s %5lld %5lld %3d %4lld | %7.2f %7.1f %7.1f %7.1f %7.1f | %6.2f %6.2f %5.2f\n",
               shapes[i].name, (long long)Nq, (long long)Nk, H, (long long)d, ref, o1, o2, n1, n2,
               n1 / o1, n2 / o2, n2 / n1);
        free(q), free(k), free(v), free(o), free(sc);
    }
}

static void empty_task(void *ctx, int ith, int nth) { (void)ctx, (void)ith, (void)nth; }

static void bench_pool(sdc_pool *pool2) {
    if (!strstr("sdc_pool_run", filter)) return;
    int reps = 0;
    double t0 = now_s(), dt;
    do {
        for (int i = 0; i < 1000; i++) sdc_pool_run(pool2, empty_task, NULL);
        reps += 1000;
    } while ((dt = now_s() - t0) < min_seconds);
    printf("\nsdc_pool_run, empty task, %d threads: %.2f us per run\n", sdc_pool_size(pool2),
           dt / reps * 1e6);
}

int main(int argc, char **argv) {
    if (argc > 1) min_seconds = atof(argv[1]);
    if (!(min_seconds > 0)) min_seconds = 0.3;
    if (argc > 2) filter = argv[2];
    load_blas();
    sdc_pool *pool2 = sdc_pool_new(2);
    if (!pool2) {
        fprintf(stderr, "bench_ops: cannot start 2 threads\n");
        return 1;
    }
    printf("bench_ops: %s\n\n", blas_sgemm ? "OpenBLAS found (libopenblas.so.0)" : "OpenBLAS not found");
    bench_gemm(pool2);
    bench_conv(pool2);
    bench_winograd(pool2);
    bench_attention(pool2);
    bench_pool(pool2);
    sdc_pool_free(pool2);
    return 0;
}
