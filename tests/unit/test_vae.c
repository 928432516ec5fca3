/* VAE decoder vs diffusers AutoencoderKL.decode (golden vae.* of the tiny checkpoint):
 * image = decode(latent / 0.18215) for 64x64 and 96x64, within 1e-4 * max(1, max|ref|),
 * plus the block outputs of the 64x64 case. */
#include "golden.h"
#include "pipeline/runner.h"
#include "sdc.h"

int main(void) {
    char err[512];
    sdc_model *m = golden_load_tiny();
    sdc_st_file *gold = golden_open(TINY_DIR "/golden.safetensors");
    const char *sizes[2] = {"64x64", "96x64"};
    const int hw[2][2] = {{8, 8}, {8, 12}};
    for (int s = 0; s < 2; s++) {
        char name[96];
        snprintf(name, sizeof name, "vae.%s.latent", sizes[s]);
        int64_t nz, ni;
        float *z = golden_f32(gold, name, &nz);
        for (int64_t i = 0; i < nz; i++) z[i] /= 0.18215f;
        snprintf(name, sizeof name, "vae.%s.image", sizes[s]);
        float *ref = golden_f32(gold, name, &ni);
        float *img = malloc((size_t)ni * sizeof(float));
        CHECK(sdc_vae_decode(m, z, 1, hw[s][0], hw[s][1], img, err, sizeof err) == SDC_OK, "decode: %s", err);
        CHECK_CLOSE(golden_err(img, ref, ni), 1e-4, name);
        free(img);
        free(ref);
        free(z);
    }
    /* intermediates of the 64x64 case */
    {
        static const char *pairs[][2] = {
            {"vae.post_quant_conv", "post_quant_conv"},
            {"vae.decoder.conv_in", "decoder.conv_in"},
            {"vae.decoder.mid_block", "decoder.mid_block"},
            {"vae.decoder.up_blocks.0", "decoder.up_blocks.0"},
            {"vae.decoder.up_blocks.1", "decoder.up_blocks.1"},
            {"vae.decoder.up_blocks.2", "decoder.up_blocks.2"},
            {"vae.decoder.up_blocks.3", "decoder.up_blocks.3"},
            {"vae.decoder.norm_out_silu", "decoder.conv_norm_out"},
        };
        sdc_runner r;
        sdc_error e = {0};
        CHECK(sdc_runner_vae(&r, m, 1, 8, 8, SDC_RUNNER_KEEP_LABELLED, &e) == SDC_OK, "runner: %s", e.msg);
        float *z = golden_f32(gold, "vae.64x64.latent", NULL);
        for (int i = 0; i < 256; i++) sdc_runner_input(&r, 0)[i] = z[i] / 0.18215f;
        CHECK(sdc_runner_run(&r, NULL, &e) == SDC_OK, "run: %s", e.msg);
        for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
            char name[128];
            snprintf(name, sizeof name, "vae.64x64.dbg.%s", pairs[i][1]);
            int64_t n;
            float *ref = golden_f32(gold, name, &n);
            if (i == sizeof pairs / sizeof pairs[0] - 1) /* diffusers' conv_norm_out is before SiLU */
                for (int64_t j = 0; j < n; j++) ref[j] = ref[j] / (1.0f + expf(-ref[j]));
            const sdc_node *node = NULL;
            float *got = sdc_runner_labelled(&r, pairs[i][0], &node);
            CHECK(got && sdc_node_numel(node) == n, "intermediate %s missing or of another size", pairs[i][0]);
            if (got) CHECK_CLOSE(golden_err(got, ref, n), 1e-4, name);
            free(ref);
        }
        free(z);
        sdc_runner_free(&r);
    }
    /* bad sizes */
    float z[4], img[3 * 64];
    CHECK(sdc_vae_decode(m, z, 1, 0, 1, img, err, sizeof err) == SDC_E_INVALID_ARG, "zero size refused");
    sdc_st_close(gold);
    sdc_model_free(m);
    TEST_MAIN_END();
}
