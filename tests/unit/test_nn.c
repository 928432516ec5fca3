/* The CPU kernels of src/ops/nn.c against plain double-precision references:
 * attention (blocked, GEMM-based, vectorized softmax) vs sdc_attention_ref for self- and
 * cross-attention shapes, causal masks, odd sizes, 1 and 3 threads (bit-identical);
 * group norm and layer norm vs double formulas; geglu, upsample and transpose vs direct loops. */
#include "core/threadpool.h"
#include "ops/nn.h"
#include "test.h"

#include <stdint.h>

static uint64_t rng_state = 88172645463325252ull;
static float frand(void) { /* xorshift64 in [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((rng_state >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
static float *rand_buf(size_t n, float scale) {
    float *p = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = frand() * scale;
    return p;
}
static double max_rel(const float *a, const float *b, size_t n) {
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (d > md || d != d) md = d != d ? INFINITY : d;
        if (fabs(b[i]) > mr) mr = fabs(b[i]);
    }
    return md / (mr > 1 ? mr : 1);
}

int main(void) {
    sdc_pool *p1 = sdc_pool_new(1), *p3 = sdc_pool_new(3);
    static const struct { int64_t B, Nq, Nk; int heads; int64_t d, dv; int causal; float scale; } cases[] = {
        {2, 77, 77, 4, 16, 16, 1, 3.0f},    /* CLIP text, causal */
        {2, 64, 64, 8, 40, 40, 0, 3.0f},    /* UNet self-attention */
        {2, 200, 77, 8, 40, 40, 0, 3.0f},   /* cross-attention on the text */
        {1, 130, 130, 1, 128, 128, 0, 1.0f},/* VAE mid-block, one head */
        {1, 65, 65, 3, 5, 7, 1, 8.0f},      /* odd everything, large logits */
        {1, 1, 1, 1, 1, 1, 0, 1.0f},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t B = cases[c].B, Nq = cases[c].Nq, Nk = cases[c].Nk, d = cases[c].d, dv = cases[c].dv;
        int H = cases[c].heads;
        float *q = rand_buf((size_t)(B * Nq * H * d), cases[c].scale);
        float *k = rand_buf((size_t)(B * Nk * H * d), cases[c].scale);
        float *v = rand_buf((size_t)(B * Nk * H * dv), 1.0f);
        size_t no = (size_t)(B * Nq * H * dv);
        float *ref = malloc(no * 4), *o1 = malloc(no * 4), *o3 = malloc(no * 4);
        sdc_attention_ref(q, k, v, ref, B, Nq, Nk, H, d, dv, cases[c].causal);
        CHECK(sdc_attention(p1, q, k, v, o1, B, Nq, Nk, H, d, dv, cases[c].causal) == 0, "attention ran");
        CHECK(sdc_attention(p3, q, k, v, o3, B, Nq, Nk, H, d, dv, cases[c].causal) == 0, "attention ran");
        char what[96];
        snprintf(what, sizeof what, "attention B%lld Nq%lld Nk%lld H%d d%lld%s", (long long)B, (long long)Nq,
                 (long long)Nk, H, (long long)d, cases[c].causal ? " causal" : "");
        /* float32 logits carry ~ulp(|logit|) error into exp: 1e-5 covers logits up to ~80 */
        CHECK_CLOSE(max_rel(o1, ref, no), 1e-5, what);
        CHECK(memcmp(o1, o3, no * 4) == 0, "%s: 1 and 3 threads differ", what);
        free(q), free(k), free(v), free(ref), free(o1), free(o3);
    }

    /* group norm (+SiLU) and layer norm vs double formulas */
    {
        int64_t B = 2, C = 64, S = 37;
        int G = 32;
        float *x = rand_buf((size_t)(B * C * S), 4.0f), *g = rand_buf((size_t)C, 1.0f), *b = rand_buf((size_t)C, 1.0f);
        float *y = malloc((size_t)(B * C * S) * 4), *r = malloc((size_t)(B * C * S) * 4);
        for (int silu = 0; silu < 2; silu++) {
            sdc_group_norm(p3, x, y, B, C, S, G, 1e-5f, g, b, silu);
            for (int64_t n = 0; n < B; n++)
                for (int gi = 0; gi < G; gi++) {
                    int64_t cpg = C / G, base = (n * C + gi * cpg) * S, cnt = cpg * S;
                    double m = 0, var = 0;
                    for (int64_t i = 0; i < cnt; i++) m += x[base + i];
                    m /= cnt;
                    for (int64_t i = 0; i < cnt; i++) var += (x[base + i] - m) * (x[base + i] - m);
                    var /= cnt;
                    for (int64_t i = 0; i < cnt; i++) {
                        int64_t ch = gi * cpg + i / S;
                        double v = (x[base + i] - m) / sqrt(var + 1e-5) * g[ch] + b[ch];
                        r[base + i] = (float)(silu ? v / (1 + exp(-v)) : v);
                    }
                }
            CHECK_CLOSE(max_rel(y, r, (size_t)(B * C * S)), 2e-6, silu ? "group norm + SiLU" : "group norm");
        }
        int64_t R = 13, D = 64;
        sdc_layer_norm(p3, x, y, R, D, 1e-5f, g, b);
        for (int64_t i = 0; i < R; i++) {
            double m = 0, var = 0;
            for (int64_t j = 0; j < D; j++) m += x[i * D + j];
            m /= D;
            for (int64_t j = 0; j < D; j++) var += (x[i * D + j] - m) * (x[i * D + j] - m);
            var /= D;
            for (int64_t j = 0; j < D; j++) r[i * D + j] = (float)((x[i * D + j] - m) / sqrt(var + 1e-5) * g[j] + b[j]);
        }
        CHECK_CLOSE(max_rel(y, r, (size_t)(R * D)), 2e-6, "layer norm");
        /* geglu */
        int64_t F = 24;
        sdc_geglu(p3, x, y, 7, F);
        for (int64_t i = 0; i < 7; i++)
            for (int64_t f = 0; f < F; f++) {
                double gate = x[i * 2 * F + F + f];
                r[i * F + f] = (float)(x[i * 2 * F + f] * 0.5 * gate * (1 + erf(gate / sqrt(2.0))));
            }
        CHECK_CLOSE(max_rel(y, r, (size_t)(7 * F)), 2e-6, "geglu");
        /* nearest upsample 3x5 -> 7x11 with torch's floor(dst * in / out) */
        sdc_upsample_nearest(p3, x, y, 1, 2, 3, 5, 7, 11);
        int ok = 1;
        for (int c = 0; c < 2; c++)
            for (int i = 0; i < 7; i++)
                for (int j = 0; j < 11; j++)
                    ok &= y[(c * 7 + i) * 11 + j] == x[(c * 3 + (int)floorf(i * (3.0f / 7))) * 5 + (int)floorf(j * (5.0f / 11))];
        CHECK(ok, "nearest upsample index rule");
        /* transpose [B, C, S] -> [B, S, C] */
        sdc_transpose_cs(p3, x, y, 2, 5, 9);
        ok = 1;
        for (int n = 0; n < 2; n++)
            for (int c = 0; c < 5; c++)
                for (int s = 0; s < 9; s++) ok &= y[(n * 9 + s) * 5 + c] == x[(n * 5 + c) * 9 + s];
        CHECK(ok, "transpose");
        free(x), free(g), free(b), free(y), free(r);
    }
    sdc_pool_free(p1);
    sdc_pool_free(p3);
    TEST_MAIN_END();
}
