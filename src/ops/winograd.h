/* src/ops/winograd.h: 3x3 stride-1 pad-1 convolution by Winograd's minimal filtering F(4x4, 3x3).
 *
 * Each 4x4 block of outputs ("tile") is computed from the 6x6 input patch around it as
 *   Y = A^T [ (G g G^T) (.) (B^T d B) ] A        ((.) = elementwise over the 36 points)
 * so the 36 elementwise products summed over input channels become 36 independent GEMMs,
 * U[xi][O x C] . V[xi][C x tiles], run on the packed GEMM's micro-kernel (gemm.h). That is
 * 36 multiply-adds per tile and channel pair instead of 16 x 9 = 144: 4x fewer than the direct
 * convolution, plus the transforms.
 *
 * Accuracy: f32 throughout; the transforms add a few f32 roundings with coefficients up to 8, so
 * the result differs from the direct convolution by a few 1e-6 of the output's scale (the tests
 * measure and bound it, tests/unit/test_winograd.c).
 *
 * Memory: the weights are transformed per call (from their checkpoint dtype, never cached): per
 * block of output channels, or in chunks of at most 24 MB; the transformed input of the batch
 * (at most 28 MB) or of one tile block per thread; each allocation stays under 32 MB. Threads
 * split blocks of output channels and of tiles; every output is computed by the same
 * instructions whatever the split, so results are bit-identical for any thread count.
 *
 * The batch matters: the weight transform is paid once per call, so x[B, C, H, W] with B = 2 (a
 * CFG step) is faster than two calls, and 16x16 images win only at B = 2 (sdc_winograd_preferred). */
#ifndef SDC_OPS_WINOGRAD_H
#define SDC_OPS_WINOGRAD_H

#include "ops/gemm.h"

/* 1 when a (assumed valid, see sdc_conv2d) is a 3x3, stride-1, pad-1 convolution. */
int sdc_winograd_supported(const sdc_conv2d_args *a);
/* 1 when it is supported and, by the measured rule in winograd.c, faster than the direct conv. */
int sdc_winograd_preferred(const sdc_conv2d_args *a);
/* y = conv(x) (+ bias) (+ y) as sdc_conv2d. Returns 0, or -1 when the shape is not supported or
 * scratch cannot be allocated (y is then untouched). */
int sdc_conv2d_winograd(sdc_pool *pool, const sdc_conv2d_args *a);

#endif
