/* src/ops/nn_extra.h: the kernels of the vaelight preview decoder that nn.h and gemm.h lack:
 * transposed convolution with kernel 2 and stride 2, LeakyReLU, bilinear resize with half-pixel
 * centres, and clipping.
 *
 * Same conventions as nn.h: float32 contiguous C-order buffers, a thread pool (NULL = calling
 * thread), outer loops split by (ith, nth) so that every output element is computed by one thread
 * in a fixed order (results do not depend on the thread count). Each kernel that is more than an
 * elementwise loop has a plain `_ref` oracle that the tests compare it with.
 */
#ifndef SDC_OPS_NN_EXTRA_H
#define SDC_OPS_NN_EXTRA_H

#include "core/threadpool.h"
#include <stdint.h>

/* ONNX ConvTranspose / torch ConvTranspose2d with kernel 2x2, stride 2, no padding, group 1:
 *   y[o, 2i+a, 2j+b] = bias[o] + sum_c x[c, i, j] * w[c, o, a, b]
 * x [C, H, W], w [C, O, 2, 2] (the ONNX/torch layout: input channels first), bias [O] or NULL,
 * y [O, 2H, 2W]. One GEMM per band of input rows ([4O, C] . [C, rows*W]) into bounded scratch,
 * then a scatter. Returns 0, or -1 when the scratch cannot be allocated (y is then unspecified). */
int sdc_conv_transpose_k2s2(sdc_pool *pool, const float *x, int C, int H, int W, const float *w,
                            int O, const float *bias, float *y);
void sdc_conv_transpose_k2s2_ref(const float *x, int C, int H, int W, const float *w, int O,
                                 const float *bias, float *y);

/* y[n] = x >= 0 ? x : alpha * x (in-place allowed). */
void sdc_leaky_relu(sdc_pool *pool, const float *x, float *y, int64_t n, float alpha);

/* y[n] = min(max(x, lo), hi) (in-place allowed; NaN stays NaN, as ONNX Clip). */
void sdc_clip(sdc_pool *pool, const float *x, float *y, int64_t n, float lo, float hi);

/* Bilinear resize of x [C, H, W] to [C, Ho, Wo] with half-pixel centres: ONNX Resize(mode=linear,
 * coordinate_transformation_mode=half_pixel) and torch's interpolate(mode='bilinear',
 * align_corners=False). For each axis, src = (dst + 0.5) * in/out - 0.5, clamped below at 0;
 * i0 = floor(src), i1 = min(i0 + 1, in - 1), weight of i1 = src - i0. accumulate: y += resized
 * (how the decoder sums its four branches without a temporary); else y = resized. x and y must
 * not overlap. */
void sdc_resize_bilinear(sdc_pool *pool, const float *x, float *y, int64_t C, int64_t H, int64_t W,
                         int64_t Ho, int64_t Wo, int accumulate);
void sdc_resize_bilinear_ref(const float *x, float *y, int64_t C, int64_t H, int64_t W, int64_t Ho,
                             int64_t Wo, int accumulate);

#endif
