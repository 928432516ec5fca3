/* src/ops/gemm.h: matrix products and convolution, the kernels where SD spends its time.
 *
 *   C[M,N] = A[M,K] . B[K,N]  (+ bias)  (+ C when accumulate)
 *
 * Each operand is a strided view of any float dtype (F32, F16, BF16): element (r, c) of a view
 * lives at data + (r*rs + c*cs) * sizeof(dtype). Weights therefore stay in the checkpoint's dtype
 * and orientation; the optimized kernel converts them to f32 while packing panels.
 *   linear   y[M,N] = x[M,K] . W[N,K]^T : A = {x, F32, rs=K, cs=1},  B = {W, dt, rs=1, cs=K}
 *   conv     y[O,P] = W[O,K] . col[K,P] : A = {W, dt, rs=K, cs=1},  B = {col, F32, rs=P, cs=1}
 * C is always f32, row-major with leading dimension ldc. Accumulation order over K is fixed per
 * output element, so results do not depend on the thread count. */
#ifndef SDC_OPS_GEMM_H
#define SDC_OPS_GEMM_H

#include "core/dtype.h"
#include "core/threadpool.h"
#include <stddef.h>

typedef struct sdc_mat {
    const void *data;
    sdc_dtype dtype;     /* SDC_F32, SDC_F16 or SDC_BF16 */
    ptrdiff_t rs, cs;    /* row and column strides, in elements */
} sdc_mat;

typedef struct sdc_gemm_args {
    int M, N, K;
    sdc_mat A, B;
    float *C;
    ptrdiff_t ldc;
    const float *bias_col; /* [N] added to every row, or NULL */
    const float *bias_row; /* [M] added to every column, or NULL */
    int accumulate;        /* 1: C += A.B (+bias); 0: C = A.B (+bias) */
} sdc_gemm_args;

/* Plain triple loop in double-free f32: the oracle every optimized path is tested against.
 * (In both, an operand whose dtype is not F32/F16/BF16 reads as zeros.) */
void sdc_gemm_ref(const sdc_gemm_args *g);
/* Packed, vectorized, threaded over the pool (NULL pool = calling thread only). Pack buffers
 * (a few MB per thread at most) are allocated per call; if that fails it computes the same
 * product with sdc_gemm_ref instead (slow but correct), so it cannot fail. */
void sdc_gemm(sdc_pool *pool, const sdc_gemm_args *g);

/* The B operand produced on the fly instead of read from g->B (g->B is then ignored): the callback
 * writes B[k0 .. k0+kc-1, j0 .. j0+n-1] as f32 into dst[(k - k0)*ld + (j - j0)]. It is called
 * from any pool thread, concurrently, on disjoint or repeated blocks, so it must be pure. conv2d
 * uses it to pack im2col columns straight from the image: no column matrix is ever stored. */
typedef void (*sdc_gemm_bfill_fn)(const void *ctx, int k0, int kc, int j0, int n, float *dst,
                                  int ld);
/* sdc_gemm with an optional B callback (NULL = use g->B). Returns 0, or -1 when the pack buffers
 * cannot be allocated (C is then untouched). */
int sdc_gemm_ex(sdc_pool *pool, const sdc_gemm_args *g, sdc_gemm_bfill_fn bfill,
                const void *bfill_ctx);

/* The micro-kernel itself, for kernels that pack their own operands (winograd.c): one MR x NR
 * register tile, C[0..MR, 0..NR) (+)= pa . pb with pa packed as [kc][MR] (row i of the tile at
 * pa[k*MR + i]) and pb as [kc][NR], pb aligned to 64 bytes. accumulate 0 overwrites C. The same
 * FMA chain as sdc_gemm, so results do not depend on who calls it. */
void sdc_gemm_tile_shape(int *mr, int *nr);
void sdc_gemm_microkernel(int kc, const float *pa, const float *pb, float *c, ptrdiff_t ldc,
                          int accumulate);

/* 2-D convolution of a batch of images, weights [O, C, kh, kw] in any float dtype, optional bias [O]:
 *   y[B, O, Ho, Wo] = conv(x[B, C, H, W]),  Ho = (H + 2*pad - kh)/stride + 1  (same for Wo),
 * B = batch (0 means 1). Uses bounded scratch (im2col panels packed straight into the GEMM's pack
 * buffers, a few MB per thread whatever the image size), allocated internally per call; 1x1
 * stride-1 convs skip im2col; 3x3 stride-1 pad-1 convs on large enough images take the Winograd
 * F(4x4, 3x3) path (winograd.h), whose per-call scratch is at most ~40 MB and which serves all
 * images of the batch with one weight transform. Padding is symmetric (torch). Returns 0, or -1 when scratch cannot be allocated or the
 * arguments are invalid (sizes < 1, stride < 1, pad < 0, kernel larger than the padded image,
 * weights not F32/F16/BF16); y is then untouched. sdc_conv2d_ref ignores invalid arguments. */
typedef struct sdc_conv2d_args {
    const float *x; int C, H, W;
    const void *w; sdc_dtype wdtype; int O, kh, kw;
    const float *bias; /* [O] or NULL */
    int stride, pad;
    float *y;          /* [O, Ho, Wo] */
    int accumulate;    /* 1: y += conv(x) */
    int batch;         /* images in x and y, contiguous; 0 means 1 */
} sdc_conv2d_args;

int sdc_conv2d(sdc_pool *pool, const sdc_conv2d_args *a);
/* The same without Winograd: the im2col GEMM for every shape (tests and benchmarks). */
int sdc_conv2d_direct(sdc_pool *pool, const sdc_conv2d_args *a);
void sdc_conv2d_ref(const sdc_conv2d_args *a);

#endif
