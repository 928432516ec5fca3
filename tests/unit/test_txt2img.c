/* Whole sampling loops through sdc_txt2img against the reference pipelines:
 *  - diffusers StableDiffusionPipeline, DPM++ 2M (DPMSolverMultistep), 20 steps, CFG 7.5
 *    (testdata/tiny loop.64x64 and loop.96x64), noise from torch.manual_seed on the CPU;
 *  - A1111 webui + k-diffusion loops (testdata/a1111 loop.*): Euler, Euler a (CPU and NV
 *    generators), DPM++ 2M normal/karras at 10 and 20 steps, a 154-token prompt against a
 *    77-token negative (two UNet calls per step), and webui's DDIM; noise from the seed.
 * The conditioning is passed in (--cond/--uncond), the seed drives the noise: the final latent
 * must match within 1e-3 * max(1, max|ref|). Also the decoded picture of the diffusers loops. */
#include "golden.h"
#include "io/json.h"
#include "sdc.h"

static sdc_model *model;

static void run_loop(const sdc_st_file *gold, const char *what, const char *cond_name,
                     const char *uncond_name, const float *ctx2, int T, sdc_txt2img_params *p,
                     const char *final_name, const char *image_u8_name) {
    char err[512];
    float *cond = NULL, *uncond = NULL;
    int64_t nc = 0, nu = 0;
    if (cond_name) {
        cond = golden_f32(gold, cond_name, &nc);
        uncond = golden_f32(gold, uncond_name, &nu);
        p->cond = cond;
        p->uncond = uncond;
        p->cond_len = (int)(nc / 64);
        p->uncond_len = (int)(nu / 64);
    } else if (ctx2) {
        /* diffusers order: row 0 negative, row 1 prompt */
        p->uncond = ctx2;
        p->cond = ctx2 + T * 64;
        p->cond_len = p->uncond_len = T;
    }
    sdc_image img;
    sdc_status s = sdc_txt2img(model, p, &img, err, sizeof err);
    CHECK(s == SDC_OK, "%s: %s", what, err);
    if (s == SDC_OK) {
        int64_t n;
        float *ref = golden_f32(gold, final_name, &n);
        CHECK_CLOSE(golden_err(img.latent, ref, n), 1e-3, what);
        free(ref);
        if (image_u8_name) {
            float *ref8 = golden_f32(gold, image_u8_name, &n);
            int maxd = 0;
            for (int64_t i = 0; i < n; i++) {
                int d = abs((int)img.rgb[i] - (int)ref8[i]);
                if (d > maxd) maxd = d;
            }
            printf("  %-48s max |u8 diff| %d\n", "  picture", maxd);
            CHECK(maxd <= 1, "%s: picture differs by %d levels", what, maxd);
            free(ref8);
        }
        sdc_image_free(&img);
    }
    free(cond);
    free(uncond);
}

int main(void) {
    char err[512];
    model = golden_load_tiny();

    /* diffusers loops of testdata/tiny */
    sdc_st_file *tiny = golden_open(TINY_DIR "/golden.safetensors");
    const char *sizes[2] = {"64x64", "96x64"};
    const int wh[2][2] = {{64, 64}, {96, 64}};
    const uint64_t seeds[2] = {1003, 1004}; /* x_T = torch.randn(manual_seed(seed)) (manifest) */
    for (int s = 0; s < 2; s++) {
        char name[96], fin[96], u8[96];
        snprintf(name, sizeof name, "loop.%s.context", sizes[s]);
        float *ctx = golden_f32(tiny, name, NULL);
        sdc_txt2img_params p = sdc_txt2img_params_default();
        p.width = wh[s][0];
        p.height = wh[s][1];
        p.steps = 20;
        p.cfg = 7.5f;
        p.seed = seeds[s];
        p.rng = "cpu";
        p.sampler = "dpm++2m";
        p.schedule = "uniform";
        p.scheduler_compat = "diffusers";
        snprintf(fin, sizeof fin, "loop.%s.final_latent", sizes[s]);
        snprintf(u8, sizeof u8, "loop.%s.image_u8", sizes[s]);
        char what[96];
        snprintf(what, sizeof what, "diffusers DPM++ 2M %s (seeded noise)", sizes[s]);
        run_loop(tiny, what, NULL, NULL, ctx, 77, &p, fin, u8);
        /* the same from the stored initial latent */
        snprintf(name, sizeof name, "loop.%s.init_latent", sizes[s]);
        float *x0 = golden_f32(tiny, name, NULL);
        p.init_latent = x0;
        p.seed = 12345;
        snprintf(what, sizeof what, "diffusers DPM++ 2M %s (--init-latent)", sizes[s]);
        run_loop(tiny, what, NULL, NULL, ctx, 77, &p, fin, NULL);
        free(x0);
        free(ctx);
    }
    sdc_st_close(tiny);

    /* A1111 / k-diffusion loops of testdata/a1111 */
    sdc_st_file *a = golden_open(A1111_DIR "/a1111.safetensors");
    static const struct {
        const char *name, *sampler, *schedule, *rng;
        int steps;
        uint64_t seed, ensd;
    } loops[] = {
        {"euler.20", "euler", "automatic", "cpu", 20, 1001, 0},
        {"euler_a.20", "euler_a", "automatic", "cpu", 20, 1002, 0},
        {"euler_a_nv.20", "euler_a", "automatic", "gpu", 20, 1002, 0},
        {"euler_a_ensd31337.20", "euler_a", "automatic", "cpu", 20, 1002, 31337},
        {"dpmpp_2m_normal.20", "dpm++2m", "normal", "cpu", 20, 1003, 0},
        {"dpmpp_2m_karras.20", "dpm++2m", "automatic", "cpu", 20, 1003, 0},
        {"dpmpp_2m_normal.10", "dpm++2m", "normal", "cpu", 10, 1004, 0},
        {"dpmpp_2m_karras.10", "dpm++2m", "karras", "cpu", 10, 1004, 0},
        {"dpmpp_2m_karras_long.20", "dpm++2m", "karras", "cpu", 20, 1005, 0},
        {"ddim.20", "ddim", "automatic", "cpu", 20, 1006, 0},
    };
    for (size_t i = 0; i < sizeof loops / sizeof loops[0]; i++) {
        char c[96], u[96], f[96], what[96];
        snprintf(c, sizeof c, "loop.%s.cond", loops[i].name);
        snprintf(u, sizeof u, "loop.%s.uncond", loops[i].name);
        snprintf(f, sizeof f, "loop.%s.final", loops[i].name);
        snprintf(what, sizeof what, "A1111 %s (seed %llu, %s rng)", loops[i].name,
                 (unsigned long long)loops[i].seed, loops[i].rng);
        sdc_txt2img_params p = sdc_txt2img_params_default();
        p.width = p.height = 64;
        p.steps = loops[i].steps;
        p.cfg = 7.5f;
        p.seed = loops[i].seed;
        p.ensd = loops[i].ensd;
        p.rng = loops[i].rng;
        p.sampler = loops[i].sampler;
        p.schedule = loops[i].schedule;
        run_loop(a, what, c, u, NULL, 0, &p, f, NULL);
    }
    /* Same seed, same latent as A1111 from the prompt TEXT: sdc parses the A1111 syntax and builds
     * the conditioning itself (weights, 2-chunk long prompt); no textual inversion is loaded, as
     * in the golden runs, so "easynegative" is plain words on both sides. */
    {
        sdc_json *man = NULL;
        sdc_error je = {0};
        if (sdc_json_load_file(A1111_DIR "/manifest.json", &man, &je) != SDC_OK) {
            CHECK(0, "manifest: %s", je.msg);
        } else {
            const sdc_json *runs = sdc_json_path(man, "loops", "runs", NULL);
            for (size_t i = 0; i < sdc_json_len(runs); i++) {
                const sdc_json *run = sdc_json_at(runs, i);
                const char *name = sdc_json_string(sdc_json_get(run, "name"));
                if (!name || (strcmp(name, "dpmpp_2m_karras.20") && strcmp(name, "dpmpp_2m_karras_long.20") &&
                              strcmp(name, "euler_a_nv.20")))
                    continue;
                int64_t seed = 0, steps = 0;
                sdc_json_int(sdc_json_get(run, "seed"), &seed);
                sdc_json_int(sdc_json_get(run, "steps"), &steps);
                sdc_txt2img_params p = sdc_txt2img_params_default();
                p.prompt = sdc_json_string(sdc_json_get(run, "prompt"));
                p.negative = sdc_json_string(sdc_json_get(run, "negative_prompt"));
                p.width = p.height = 64;
                p.steps = (int)steps;
                p.cfg = 7.5f;
                p.seed = (uint64_t)seed;
                p.rng = strstr(name, "_nv") ? "gpu" : "cpu";
                p.sampler = strstr(name, "euler_a") ? "euler_a" : "dpm++2m";
                char f[96], what[128];
                snprintf(f, sizeof f, "loop.%s.final", name);
                snprintf(what, sizeof what, "A1111 %s from the prompt text", name);
                run_loop(a, what, NULL, NULL, NULL, 0, &p, f, NULL);
            }
            sdc_json_free(man);
        }
    }
    sdc_st_close(a);

    /* argument errors are refused before any work */
    sdc_txt2img_params p = sdc_txt2img_params_default();
    sdc_image img;
    p.width = 100;
    CHECK(sdc_txt2img(model, &p, &img, err, sizeof err) == SDC_E_INVALID_ARG, "width 100 refused");
    p.width = 64;
    p.sampler = "plms";
    CHECK(sdc_txt2img(model, &p, &img, err, sizeof err) == SDC_E_INVALID_ARG && strstr(err, "plms"),
          "unknown sampler refused: %s", err);
    p.sampler = "euler";
    p.scheduler_compat = "diffusers";
    CHECK(sdc_txt2img(model, &p, &img, err, sizeof err) == SDC_E_UNSUPPORTED, "diffusers euler refused: %s", err);
    sdc_model_free(model);
    TEST_MAIN_END();
}
