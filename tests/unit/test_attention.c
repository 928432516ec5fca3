/* The flash-style attention kernel (src/ops/attention.c) against sdc_attention_ref, the plain
 * double-precision oracle, on awkward shapes: query and key counts 1, 7, 77, 100, 257, 1000
 * (below one register tile, one query block, one key tile, and ragged past each); head sizes 1,
 * 3, 5, 8, 17, 40, 64, 80, 160, 512 (SD's 40/80/160, non-multiples of the vector width, d != dv);
 * 1, 2, 8 and 12 heads; batch 2; causal and not; Nq != Nk; large logits. Every case runs on 1, 2
 * and 3 threads, which must give bit-identical outputs, and once with a caller scratch at an odd
 * address. Then the argument checks: invalid sizes and a too small scratch return -1 and leave
 * the output untouched. */
#include "core/threadpool.h"
#include "ops/attention.h"
#include "test.h"

#include <stdint.h>

typedef struct {
    int64_t B, Nq, Nk;
    int heads;
    int64_t d, dv;
    int causal;
    float scale; /* of q and k: logits grow as scale^2 * sqrt(d) */
} shape;

static const shape cases[] = {
    {2, 4096 / 64, 4096 / 64, 8, 40, 40, 0, 3.0f}, /* UNet 64x64 self-attention head size */
    {2, 1000, 77, 8, 40, 40, 0, 3.0f},             /* cross-attention on the text */
    {2, 100, 154, 8, 80, 80, 0, 3.0f},             /* 32x32 head size, two prompt chunks */
    {2, 257, 257, 8, 40, 40, 0, 2.0f},             /* one past a key tile and a query block */
    {2, 64, 77, 8, 160, 160, 0, 3.0f},             /* 8x8 / 16x16 head size */
    {1, 257, 257, 1, 160, 160, 1, 2.0f},           /* causal, ragged */
    {2, 77, 77, 12, 64, 64, 1, 3.0f},              /* CLIP text encoder, causal */
    {1, 1000, 1000, 1, 8, 8, 1, 3.0f},             /* long causal, small heads */
    {1, 1000, 1000, 2, 3, 5, 0, 3.0f},             /* d != dv, both odd */
    {2, 7, 1000, 2, 17, 3, 0, 3.0f},               /* few queries, many keys */
    {1, 1, 7, 3, 3, 17, 0, 3.0f},                  /* one query */
    {1, 7, 1, 8, 40, 40, 0, 3.0f},                 /* one key: the weights are all 1 */
    {1, 7, 7, 1, 40, 40, 1, 3.0f},                 /* causal inside one register tile */
    {2, 1, 1, 1, 1, 1, 0, 1.0f},
    {1, 100, 100, 2, 17, 17, 1, 8.0f},             /* large logits (hundreds): a peaked softmax */
    {1, 130, 130, 1, 512, 512, 0, 1.0f},           /* VAE mid-block, one head */
};

int main(void) {
    sdc_pool *pools[3] = {sdc_pool_new(1), sdc_pool_new(2), sdc_pool_new(3)};
    CHECK(pools[0] && pools[1] && pools[2], "pools started");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const shape *s = &cases[c];
        int64_t B = s->B, Nq = s->Nq, Nk = s->Nk, d = s->d, dv = s->dv;
        int H = s->heads;
        float *q = test_rand_buf((size_t)(B * Nq * H * d), s->scale);
        float *k = test_rand_buf((size_t)(B * Nk * H * d), s->scale);
        float *v = test_rand_buf((size_t)(B * Nk * H * dv), 1.0f);
        size_t no = (size_t)(B * Nq * H * dv);
        float *ref = malloc(no * 4), *out[4];
        for (int t = 0; t < 4; t++) out[t] = malloc(no * 4);
        CHECK(sdc_attention_ref(q, k, v, ref, B, Nq, Nk, H, d, dv, s->causal) == 0, "reference ran");
        for (int t = 0; t < 3; t++)
            CHECK(sdc_attention(pools[t], q, k, v, out[t], B, Nq, Nk, H, d, dv, s->causal, NULL, 0) == 0,
                  "attention ran on %d threads", t + 1);
        /* caller scratch, deliberately misaligned */
        size_t nsc = sdc_attention_scratch_floats(2, Nk, H, d, dv);
        float *sc = malloc((nsc + 1) * sizeof(float));
        CHECK(nsc > 0 && sdc_attention(pools[1], q, k, v, out[3], B, Nq, Nk, H, d, dv, s->causal,
                                       sc + 1, nsc) == 0,
              "attention ran with caller scratch");
        char what[120];
        snprintf(what, sizeof what, "B%lld Nq%lld Nk%lld H%d d%lld dv%lld%s x%g", (long long)B,
                 (long long)Nq, (long long)Nk, H, (long long)d, (long long)dv,
                 s->causal ? " causal" : "", (double)s->scale);
        /* f32 scores carry ~ulp(|logit|) into exp; 1000-term f32 sums: 1e-5 covers both */
        CHECK_CLOSE(test_rel_err(out[0], ref, no), 1e-5, what);
        CHECK(memcmp(out[0], out[1], no * 4) == 0, "%s: 1 and 2 threads differ", what);
        CHECK(memcmp(out[0], out[2], no * 4) == 0, "%s: 1 and 3 threads differ", what);
        CHECK(memcmp(out[0], out[3], no * 4) == 0, "%s: caller scratch differs", what);
        free(q), free(k), free(v), free(ref), free(sc);
        for (int t = 0; t < 4; t++) free(out[t]);
    }

    /* argument checks: -1 and the output untouched */
    {
        float q[16] = {0}, k[16] = {0}, v[16] = {0}, o[16], sc[4];
        for (int i = 0; i < 16; i++) o[i] = 42.0f;
        CHECK(sdc_attention(NULL, q, k, v, o, 1, 2, 3, 1, 2, 2, 1, NULL, 0) == -1, "causal Nq != Nk");
        CHECK(sdc_attention(NULL, q, k, v, o, 1, 0, 3, 1, 2, 2, 0, NULL, 0) == -1, "Nq = 0");
        CHECK(sdc_attention(NULL, q, k, v, o, 1, 2, 2, 0, 2, 2, 0, NULL, 0) == -1, "0 heads");
        CHECK(sdc_attention(NULL, q, k, v, o, 1, 2, 2, 1, -1, 2, 0, NULL, 0) == -1, "d < 0");
        CHECK(sdc_attention(NULL, q, k, v, o, 1, 2, 2, 1, 2, 2, 0, sc, 4) == -1, "scratch too small");
        CHECK(sdc_attention_scratch_floats(1, 2, 1, INT64_MAX / 2, 2) == 0, "huge head size: size 0");
        CHECK(sdc_attention(NULL, q, k, v, o, 1, 2, 2, 1, INT64_MAX / 2, 2, 0, NULL, 0) == -1,
              "huge head size refused");
        int untouched = 1;
        for (int i = 0; i < 16; i++) untouched &= o[i] == 42.0f;
        CHECK(untouched, "output untouched on errors");
        /* the smallest call works with its exact scratch */
        size_t n = sdc_attention_scratch_floats(1, 2, 1, 2, 2);
        float *s1 = malloc(n * sizeof(float));
        for (int i = 0; i < 8; i++) q[i] = k[i] = v[i] = (float)i;
        q[0] = q[1] = 0.0f;
        CHECK(sdc_attention(NULL, q, k, v, o, 1, 2, 2, 1, 2, 2, 0, s1, n) == 0, "exact scratch");
        /* two keys with equal scores for query 0 (q0 = 0): the mean of the two value rows */
        CHECK(fabsf(o[0] - 1.0f) < 1e-6f && fabsf(o[1] - 2.0f) < 1e-6f, "uniform weights: %g %g",
              (double)o[0], (double)o[1]);
        free(s1);
    }
    for (int t = 0; t < 3; t++) sdc_pool_free(pools[t]);
    TEST_MAIN_END();
}
