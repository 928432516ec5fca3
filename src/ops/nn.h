/* src/ops/nn.h: the non-GEMM kernels of the CPU backend (norms, attention, activations, layout).
 *
 * All take float32 contiguous C-order buffers and a thread pool (NULL = calling thread). Each
 * kernel splits its outer loop by (ith, nth) so that every output element is computed by one
 * thread in a fixed order: results do not depend on the thread count. Reductions (norm
 * statistics) accumulate in double over a fixed order, for accuracy.
 *
 * Attention has its own file: ops/attention.h. */
#ifndef SDC_OPS_NN_H
#define SDC_OPS_NN_H

#include "core/threadpool.h"
#include <stddef.h>
#include <stdint.h>

/* y[B, C, S] = group_norm(x) * gamma[C] + beta[C], optionally followed by SiLU. In-place allowed. */
void sdc_group_norm(sdc_pool *pool, const float *x, float *y, int64_t B, int64_t C, int64_t S,
                    int groups, float eps, const float *gamma, const float *beta, int silu);

/* y[R, D] = layer_norm(x[R, D]) * gamma + beta over the last axis. In-place allowed. */
void sdc_layer_norm(sdc_pool *pool, const float *x, float *y, int64_t R, int64_t D, float eps,
                    const float *gamma, const float *beta);

/* Elementwise, n values (in-place allowed where x == y). */
void sdc_silu(sdc_pool *pool, const float *x, float *y, int64_t n);
void sdc_quick_gelu(sdc_pool *pool, const float *x, float *y, int64_t n);
void sdc_scale(sdc_pool *pool, const float *x, float *y, int64_t n, float s);
/* y[n] = a[n] + b[n % nb] (b broadcast as a trailing suffix). */
void sdc_add(sdc_pool *pool, const float *a, const float *b, float *y, int64_t n, int64_t nb);
/* y[n] = erf(x[n]), max error about 1 ulp (vectorized, branch-free). */
void sdc_erf(sdc_pool *pool, const float *x, float *y, int64_t n);
/* y[R, F] = x[R, :F] * gelu_erf(x[R, F:]) from x[R, 2F], gelu_erf(g) = g/2 (1 + erf(g/sqrt 2)). */
void sdc_geglu(sdc_pool *pool, const float *x, float *y, int64_t R, int64_t F);
/* y[B, C, S] = x + v[B, C] broadcast over S. */
void sdc_add_channel(sdc_pool *pool, const float *x, const float *v, float *y, int64_t B,
                     int64_t C, int64_t S);

/* Layout */
void sdc_concat_c(sdc_pool *pool, const float *a, const float *b, float *y, int64_t B, int64_t Ca,
                  int64_t Cb, int64_t S);
/* Nearest neighbour as torch: src = min(floor(dst * in/out), in-1), scale computed in float. */
void sdc_upsample_nearest(sdc_pool *pool, const float *x, float *y, int64_t B, int64_t C,
                          int64_t H, int64_t W, int64_t Ho, int64_t Wo);
/* [B, C, S] <-> [B, S, C] */
void sdc_transpose_cs(sdc_pool *pool, const float *x, float *y, int64_t B, int64_t C, int64_t S);

/* out[B, dim] = [cos(t f_k) | sin(t f_k)], f_k = exp(-ln(10000) k / half), k < half, as diffusers
 * Timesteps(flip_sin_to_cos=True, downscale_freq_shift=0) = LDM timestep_embedding. */
void sdc_timestep_embedding(const float *t, float *out, int64_t B, int64_t dim);

#endif
