/* tests/unit/test_flops.c: the FLOP counter of src/graph (sdc_node_flops, sdc_graph_flops).
 *
 * Hand-computed counts for one conv, one linear and one attention graph (a multiply-add is 2
 * FLOPs, memory-bound ops 0), the per-kind split, and on the tiny model the UNet's count doubles
 * with the batch and equals the sum of its nodes. Built from inputs only: counting needs shapes,
 * not weights. */
#include "graph/graph.h"
#include "pipeline/runner.h"
#include "test.h"

static void test_conv(void) {
    sdc_graph g;
    sdc_graph_init(&g, NULL, "");
    int64_t xs[4] = {2, 3, 8, 8}, ws[4] = {5, 3, 3, 3}, bs[1] = {5};
    int x = sdc_g_input(&g, "x", 4, xs), w = sdc_g_input(&g, "w", 4, ws), b = sdc_g_input(&g, "b", 1, bs);
    int y = sdc_g_conv2d(&g, x, w, b, 1, 1);   // [2, 5, 8, 8]
    int y2 = sdc_g_conv2d(&g, y, sdc_g_input(&g, "w2", 4, (int64_t[4]){7, 5, 3, 3}), -1, 2, 1); // [2, 7, 4, 4]
    int s = sdc_g_silu(&g, y2);
    CHECK(sdc_graph_ok(&g) && s >= 0, "conv graph builds: %s", g.err.msg);
    /* 2 * B * O * Ho * Wo * C * kh * kw */
    double f1 = 2.0 * 2 * 5 * 8 * 8 * 3 * 3 * 3, f2 = 2.0 * 2 * 7 * 4 * 4 * 5 * 3 * 3;
    CHECK(sdc_node_flops(&g, y) == f1, "conv 3x3 pad 1: %g FLOPs, expected %g", sdc_node_flops(&g, y), f1);
    CHECK(sdc_node_flops(&g, y2) == f2, "conv stride 2: %g FLOPs, expected %g", sdc_node_flops(&g, y2), f2);
    CHECK(sdc_node_flops(&g, s) == 0.0 && sdc_node_flops(&g, x) == 0.0, "silu and inputs count 0");
    double k[SDC_KIND_COUNT];
    double total = sdc_graph_flops(&g, k);
    CHECK(total == f1 + f2 && k[SDC_KIND_CONV] == total && k[SDC_KIND_LINEAR] == 0.0 &&
              k[SDC_KIND_ATTENTION] == 0.0 && k[SDC_KIND_OTHER] == 0.0,
          "conv graph: total %g (expected %g), conv %g", total, f1 + f2, k[SDC_KIND_CONV]);
    CHECK(sdc_node_flops(&g, -1) == 0.0 && sdc_node_flops(&g, g.n_nodes) == 0.0, "out-of-range node counts 0");
    sdc_graph_free(&g);
}

static void test_linear(void) {
    sdc_graph g;
    sdc_graph_init(&g, NULL, "");
    int64_t xs[3] = {2, 7, 16}, ws[2] = {10, 16}, w1[4] = {12, 10, 1, 1};
    int x = sdc_g_input(&g, "x", 3, xs), w = sdc_g_input(&g, "w", 2, ws);
    int y = sdc_g_linear(&g, x, w, -1);        // [2, 7, 10]
    int z = sdc_g_linear(&g, y, sdc_g_input(&g, "w1", 4, w1), -1); // 1x1-conv weight [12, 10, 1, 1]
    int a = sdc_g_add(&g, z, z);
    CHECK(sdc_graph_ok(&g) && a >= 0, "linear graph builds: %s", g.err.msg);
    double f1 = 2.0 * 14 * 10 * 16, f2 = 2.0 * 14 * 12 * 10; /* 2 * M * N * K */
    CHECK(sdc_node_flops(&g, y) == f1, "linear: %g FLOPs, expected %g", sdc_node_flops(&g, y), f1);
    CHECK(sdc_node_flops(&g, z) == f2, "linear with a 1x1 weight: %g, expected %g", sdc_node_flops(&g, z), f2);
    double k[SDC_KIND_COUNT];
    CHECK(sdc_graph_flops(&g, k) == f1 + f2 && k[SDC_KIND_LINEAR] == f1 + f2 && k[SDC_KIND_CONV] == 0.0,
          "linear graph: %g FLOPs, expected %g", sdc_graph_flops(&g, NULL), f1 + f2);
    CHECK(sdc_op_kind_of(SDC_OP_ADD) == SDC_KIND_OTHER && sdc_op_kind_of(SDC_OP_LINEAR) == SDC_KIND_LINEAR,
          "op kinds");
    sdc_graph_free(&g);
}

static void test_attention(void) {
    sdc_graph g;
    sdc_graph_init(&g, NULL, "");
    /* q [2, 6, 8], k [2, 5, 8], v [2, 5, 12], 2 heads: d = 4, dv = 6 */
    int q = sdc_g_input(&g, "q", 3, (int64_t[3]){2, 6, 8});
    int k = sdc_g_input(&g, "k", 3, (int64_t[3]){2, 5, 8});
    int v = sdc_g_input(&g, "v", 3, (int64_t[3]){2, 5, 12});
    int o = sdc_g_attention(&g, q, k, v, 2, 0);
    int sq = sdc_g_input(&g, "s", 3, (int64_t[3]){1, 9, 8});
    int oc = sdc_g_attention(&g, sq, sq, sq, 4, 1); /* causal: counted as the full matmuls */
    CHECK(sdc_graph_ok(&g) && o >= 0 && oc >= 0, "attention graph builds: %s", g.err.msg);
    /* Q.K^T: B * heads * Nq * Nk * d MACs; P.V: B * heads * Nq * Nk * dv */
    double f = 2.0 * 2 * 2 * 6 * 5 * 4 + 2.0 * 2 * 2 * 6 * 5 * 6; /* 960 + 1440 */
    double fc = 2.0 * 1 * 4 * 9 * 9 * 2 * 2;                      /* d = dv = 2 */
    CHECK(sdc_node_flops(&g, o) == 2400.0 && f == 2400.0, "attention: %g FLOPs, expected 2400",
          sdc_node_flops(&g, o));
    CHECK(sdc_node_flops(&g, oc) == fc, "causal attention: %g FLOPs, expected %g", sdc_node_flops(&g, oc), fc);
    double kk[SDC_KIND_COUNT];
    CHECK(sdc_graph_flops(&g, kk) == f + fc && kk[SDC_KIND_ATTENTION] == f + fc, "attention graph total");
    sdc_graph_free(&g);
}

/* The UNet of the tiny model: batch 2 is twice batch 1, and the kinds add up to the total. */
static void test_tiny_unet(void) {
    char eb[512];
    sdc_model_params mp = sdc_model_params_default();
    mp.path = SDC_SHARED_DIR "/testdata/tiny/sd15-tiny-f32.safetensors";
    sdc_model *m = NULL;
    CHECK(sdc_model_load(&mp, &m, eb, sizeof eb) == SDC_OK, "load tiny model: %s", eb);
    if (!m) return;
    sdc_runner r1, r2;
    sdc_error e = {0};
    CHECK(sdc_runner_unet(&r1, m, 1, 8, 8, 77, 0, 0, &e) == SDC_OK, "tiny UNet b1: %s", e.msg);
    CHECK(sdc_runner_unet(&r2, m, 2, 8, 8, 77, 0, 0, &e) == SDC_OK, "tiny UNet b2: %s", e.msg);
    double k1[SDC_KIND_COUNT], k2[SDC_KIND_COUNT];
    double f1 = sdc_graph_flops(&r1.g, k1), f2 = sdc_graph_flops(&r2.g, k2);
    printf("  tiny UNet 8x8 latent: %.0f FLOPs (conv %.0f, linear %.0f, attention %.0f)\n", f1,
           k1[SDC_KIND_CONV], k1[SDC_KIND_LINEAR], k1[SDC_KIND_ATTENTION]);
    /* the time MLP runs on [B, 320]-like rows too, so everything scales with B */
    CHECK(f1 > 0.0 && f2 == 2.0 * f1, "batch 2 doubles the FLOPs: %g vs %g", f2, f1);
    CHECK(k1[SDC_KIND_CONV] > 0 && k1[SDC_KIND_LINEAR] > 0 && k1[SDC_KIND_ATTENTION] > 0 &&
              k1[SDC_KIND_CONV] + k1[SDC_KIND_LINEAR] + k1[SDC_KIND_ATTENTION] == f1 && k1[SDC_KIND_OTHER] == 0.0,
          "every kind present, kinds sum to the total");
    double sum = 0.0;
    for (int i = 0; i < r1.g.n_nodes; i++) sum += sdc_node_flops(&r1.g, i);
    CHECK(sum == f1, "node sum %g equals the graph count %g", sum, f1);
    sdc_runner_free(&r1);
    sdc_runner_free(&r2);
    sdc_model_free(m);
}

int main(void) {
    test_conv();
    test_linear();
    test_attention();
    test_tiny_unet();
    TEST_MAIN_END();
}
