/* UNet vs diffusers UNet2DConditionModel (golden unet.* of the tiny checkpoint): eps for
 * 64x64 and 96x64 (odd latent width 12 -> 6 -> 3 -> 2 and back) at t = 999, 500, 1, within
 * 1e-4 * max(1, max|ref|); the block outputs of one case are compared too, so a failure
 * names the first block that differs. Also: the time-embedding stage and batch invariance. */
#include "golden.h"
#include "pipeline/runner.h"
#include "sdc.h"

/* Compares the labelled intermediates of the 64x64 t=500 run with diffusers' dbg.* tensors. */
static void check_intermediates(const sdc_model *m, const sdc_st_file *gold, const float *x,
                                const float *ctx) {
    static const char *pairs[][2] = {
        {"unet.conv_in", "conv_in"},              {"unet.input_blocks.3", "down_blocks.0"},
        {"unet.input_blocks.6", "down_blocks.1"}, {"unet.input_blocks.9", "down_blocks.2"},
        {"unet.input_blocks.11", "down_blocks.3"}, {"unet.mid_block", "mid_block"},
        {"unet.output_blocks.2", "up_blocks.0"},  {"unet.output_blocks.5", "up_blocks.1"},
        {"unet.output_blocks.8", "up_blocks.2"},  {"unet.output_blocks.11", "up_blocks.3"},
    };
    sdc_runner r;
    sdc_error e = {0};
    if (sdc_runner_unet(&r, m, 2, 8, 8, 77, 0, SDC_RUNNER_KEEP_LABELLED, &e) != SDC_OK) {
        CHECK(0, "runner: %s", e.msg);
        return;
    }
    memcpy(sdc_runner_input(&r, 0), x, 2 * 4 * 8 * 8 * sizeof(float));
    sdc_runner_input(&r, 1)[0] = sdc_runner_input(&r, 1)[1] = 500.0f;
    memcpy(sdc_runner_input(&r, 2), ctx, 2 * 77 * 64 * sizeof(float));
    CHECK(sdc_runner_run(&r, NULL, &e) == SDC_OK, "run: %s", e.msg);
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        char name[128];
        snprintf(name, sizeof name, "unet.64x64.t500.dbg.%s", pairs[i][1]);
        int64_t n;
        float *ref = golden_f32(gold, name, &n);
        const sdc_node *node = NULL;
        float *got = sdc_runner_labelled(&r, pairs[i][0], &node);
        CHECK(got && sdc_node_numel(node) == n, "intermediate %s missing or of another size", pairs[i][0]);
        if (got) CHECK_CLOSE(golden_err(got, ref, n), 1e-4, name);
        free(ref);
    }
    sdc_runner_free(&r);
}

int main(void) {
    char err[512];
    sdc_model *m = golden_load_tiny();
    sdc_st_file *gold = golden_open(TINY_DIR "/golden.safetensors");
    float *ctx = golden_f32(gold, "unet.context", NULL);
    const char *sizes[2] = {"64x64", "96x64"};
    const int hw[2][2] = {{8, 8}, {8, 12}};
    const int ts[3] = {999, 500, 1};
    for (int s = 0; s < 2; s++) {
        char name[96];
        snprintf(name, sizeof name, "unet.%s.x", sizes[s]);
        int64_t n;
        float *x = golden_f32(gold, name, &n);
        for (int k = 0; k < 3; k++) {
            float t[2] = {(float)ts[k], (float)ts[k]};
            float *eps = malloc((size_t)n * sizeof(float));
            sdc_status st = sdc_unet_eval(m, x, 2, hw[s][0], hw[s][1], t, ctx, 77, eps, err, sizeof err);
            CHECK(st == SDC_OK, "unet: %s", err);
            snprintf(name, sizeof name, "unet.%s.t%d.eps", sizes[s], ts[k]);
            float *ref = golden_f32(gold, name, NULL);
            CHECK_CLOSE(golden_err(eps, ref, n), 1e-4, name);
            free(ref);
            free(eps);
        }
        free(x);
    }
    {
        float *x = golden_f32(gold, "unet.64x64.x", NULL);
        check_intermediates(m, gold, x, ctx);
        free(x);
    }
    /* time embedding stage (the deployed UNet's third input) vs diffusers time_embedding + SiLU */
    {
        float t[2] = {500.0f, 500.0f}, out[2 * 128];
        CHECK(sdc_unet_time_embedding(m, t, 2, out, err, sizeof err) == SDC_OK, "temb: %s", err);
        int64_t n;
        float *ref = golden_f32(gold, "unet.64x64.t500.dbg.time_embedding", &n);
        for (int64_t i = 0; i < n; i++) ref[i] = ref[i] / (1.0f + expf(-ref[i]));
        CHECK_CLOSE(golden_err(out, ref, n), 1e-5, "SiLU(time_embedding(500))");
        free(ref);
    }
    free(ctx);
    sdc_st_close(gold);
    sdc_model_free(m);
    TEST_MAIN_END();
}
