/* src/ops/gemm_ref.c: the reference GEMM, the oracle of the optimized kernel (gemm.c).
 *
 * Plain loops, one output element at a time, f32 accumulation over k in increasing order; the
 * operands are read through the same strided-view rules as the fast path (gemm.h). Slow on purpose:
 * nothing here is blocked, packed or vectorized, so it is easy to check by eye.
 *
 * Per element:  s = sum_k A(i,k) * B(k,j);  s += bias_col[j];  s += bias_row[i];
 *               C(i,j) = accumulate ? C(i,j) + s : s
 * Operands of a dtype other than F32/F16/BF16 read as 0 (callers only pass float dtypes). */
#include "ops/gemm.h"

#include <string.h>

/* Element idx of a view of dtype dt (memcpy: checkpoint data need not be aligned). */
static float load_elem(const void *data, sdc_dtype dt, ptrdiff_t idx) {
    const unsigned char *p = data;
    uint16_t h;
    float f;
    switch (dt) {
    case SDC_F32: memcpy(&f, p + idx * 4, 4); return f;
    case SDC_F16: memcpy(&h, p + idx * 2, 2); return sdc_f16_to_f32(h);
    case SDC_BF16: memcpy(&h, p + idx * 2, 2); return sdc_bf16_to_f32(h);
    default: return 0.0f;
    }
}

void sdc_gemm_ref(const sdc_gemm_args *g) {
    for (int i = 0; i < g->M; i++)
        for (int j = 0; j < g->N; j++) {
            float s = 0.0f;
            for (int k = 0; k < g->K; k++) {
                float a = load_elem(g->A.data, g->A.dtype, (ptrdiff_t)i * g->A.rs + (ptrdiff_t)k * g->A.cs);
                float b = load_elem(g->B.data, g->B.dtype, (ptrdiff_t)k * g->B.rs + (ptrdiff_t)j * g->B.cs);
                s += a * b;
            }
            if (g->bias_col) s += g->bias_col[j];
            if (g->bias_row) s += g->bias_row[i];
            float *c = g->C + (ptrdiff_t)i * g->ldc + j;
            *c = g->accumulate ? *c + s : s;
        }
}
