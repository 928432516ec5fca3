/* src/ops/attention.h: multi-head scaled dot-product attention on the CPU.
 *
 *   q[B, Nq, H*d], k[B, Nk, H*d], v[B, Nk, H*dv]  ->  o[B, Nq, H*dv]
 *   o_i = sum_j softmax_j(q_i . k_j / sqrt(d)) v_j     (per batch and head; head h owns the
 *                                                      channels [h*d, (h+1)*d) of q and k)
 *   causal: query i attends to keys 0..i only (the CLIP text encoder; needs Nq == Nk).
 *
 * sdc_attention is a flash-style kernel: it never forms an [Nq, Nk] (or [rows, Nk]) matrix.
 * Each task is one block of queries of one (batch, head); it walks the keys in tiles, keeps a
 * running maximum and sum per query (online softmax) and rescales its output accumulator when the
 * maximum grows. The block of queries lies across the vector lanes (q^T is packed, already
 * multiplied by log2(e)/sqrt(d), so the softmax is a plain exp2), which makes the maximum, the
 * sum and the rescaling lane-wise vector operations with no horizontal reductions; k and v are
 * read a row at a time (broadcast), from a per-thread copy of the head's rows when heads > 1.
 *
 * Determinism: a task is computed by one thread, in a fixed order, whatever the thread count;
 * tasks are handed out dynamically, which balances the load but cannot change a result, so the
 * output is bit-identical for any pool size.
 *
 * Scratch: sdc_attention_scratch_floats(nth, Nk, heads, d, dv) floats; per thread, q^T and the
 * output accumulator of one query block, one score tile and, when heads > 1, a copy of one
 * head's k and v rows (Nk * (d + dv) floats): 1.4 MB per thread for SD 1.5 at 512x512. The
 * caller passes it (the CPU backend reserves it once per plan) or passes NULL to have it
 * allocated for the call.
 *
 * sdc_attention_ref is the plain double-precision oracle the tests compare against. */
#ifndef SDC_OPS_ATTENTION_H
#define SDC_OPS_ATTENTION_H

#include "core/threadpool.h"
#include <stddef.h>
#include <stdint.h>

/* Floats of scratch sdc_attention needs on nth threads for Nk keys, `heads` heads of sizes d
 * (q, k) and dv (v); 0 when an argument is < 1 or the size does not fit in size_t. */
size_t sdc_attention_scratch_floats(int nth, int64_t Nk, int heads, int64_t d, int64_t dv);

/* The kernel above, threaded over the pool (NULL = calling thread). scratch: at least
 * sdc_attention_scratch_floats(sdc_pool_size(pool), Nk, heads, d, dv) floats (any alignment), or NULL to
 * allocate it inside. Returns 0, or -1 when the sizes are invalid (any < 1, causal with
 * Nq != Nk), the scratch is too small or cannot be allocated; o is then untouched. */
int sdc_attention(sdc_pool *pool, const float *q, const float *k, const float *v, float *o,
                  int64_t B, int64_t Nq, int64_t Nk, int heads, int64_t d, int64_t dv, int causal,
                  float *scratch, size_t scratch_floats);

/* The oracle: scores, softmax and products in double, straight from the definition. Returns 0,
 * or -1 when its [Nk] row buffer cannot be allocated (o untouched). */
int sdc_attention_ref(const float *q, const float *k, const float *v, float *o, int64_t B,
                      int64_t Nq, int64_t Nk, int heads, int64_t d, int64_t dv, int causal);

#endif
