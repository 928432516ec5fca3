/* cli/cmd_txt2img.c: `sdc txt2img -m MODEL -p PROMPT [options] -o out.png`
 * Generates one picture, writes it as 8-bit RGB PNG with the A1111 "parameters" text chunk, and
 * prints a stage timing table (text encoder, UNet per step and total, VAE decoder, total). */
#include "cli.h"
#include "io/npy.h"
#include "io/png.h"

#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(void) {
    printf(
        "usage: sdc txt2img -m MODEL -p PROMPT [options]\n"
        "  -n, --negative TEXT        negative prompt (default: empty)\n"
        "                             prompts use A1111 syntax: (a:1.2), [a], BREAK, AND, [a:b:0.5], [a|b]\n"
        "      --raw-prompt           feed the texts to CLIP literally (one chunk, no syntax), as diffusers does\n"
        "      --embeddings DIR       textual-inversion embeddings: a prompt word naming DIR/WORD.pt, .bin\n"
        "                             or .safetensors is replaced by its vectors, as A1111 does\n"
        "  -W, --width N              image width, multiple of 8 in 8..2048 (512)\n"
        "  -H, --height N             image height, multiple of 8 in 8..2048 (512)\n"
        "      --steps N              sampling steps (20)\n"
        "      --cfg X                classifier-free guidance scale (7)\n"
        "      --sampler NAME         dpm++2m (default), euler, euler_a, ddim\n"
        "      --schedule NAME        automatic (default: karras for dpm++2m, else uniform),\n"
        "                             normal, karras, exponential, uniform, sgm_uniform, simple, ...\n"
        "      --scheduler-compat X   a1111 (default: k-diffusion, continuous timesteps) or diffusers\n"
        "                             (DPMSolverMultistepScheduler, integer timesteps; dpm++2m only)\n"
        "      --final-sigmas X       diffusers only: zero (default) or sigma_min (the article's setting)\n"
        "      --seed N               noise seed (0)\n"
        "      --ensd N               A1111's Eta noise seed delta (0 = off; changes Euler a's noise)\n"
        "      --rng cpu|gpu          gpu (default): A1111's NVIDIA generator (philox);\n"
        "                             cpu: torch.randn on the CPU (ComfyUI's default)\n"
        "      --clip-skip N          1 = last CLIP layer (default), 2 = penultimate, ...\n"
        "      --lora-dir DIR         where the prompt's <lora:NAME:WEIGHT> tags find NAME.safetensors\n"
        "                             (<lora:NAME:TE:UNET> weighs the text encoder and UNet apart)\n"
        "      --lora FILE[:W]        merge a LoRA (weight W, default 1) into the model; repeatable\n"
        "      --init-latent X.npy    start from this unit-variance noise [1, 4, H/8, W/8]\n"
        "      --cond C.npy --uncond U.npy  use this conditioning [1, 77*k, D], skip the text encoder\n"
        "      --save-latent Z.npy    also write the final latent [1, 4, H/8, W/8]\n"
        "      --preview DIR|FILE.png live previews with the tiny vaelight decoder: DIR/step_NNN.png,\n"
        "                             or one FILE.png rewritten as sampling goes\n"
        "      --preview-every N      a preview every N steps (1)\n"
        "      --low-memory           peak memory under 1.2 GB at 512x512: weights read on demand,\n"
        "                             tiled VAE decode (slower; the picture differs slightly)\n"
        "      --preview-decoder vaelight  decode the final picture with vaelight too (fast, preview quality)\n"
        "      --decoder-path FILE    VAEpreview.onnx (default: the copy shipped in data/vaelight/)\n"
        "  -t, --threads N            compute threads (default: all cores)\n"
        "  -o, --output FILE.png      output picture (out.png)\n");
}

typedef struct progress_state {
    int tty;
} progress_state;

static int progress(void *user, int step, int steps, double dt) {
    progress_state *ps = user;
    if (!ps->tty) return 0;
    int width = 30, filled = steps ? step * width / steps : width;
    fprintf(stderr, "\r  [");
    for (int i = 0; i < width; i++) fputc(i < filled ? '#' : '.', stderr);
    fprintf(stderr, "] %d/%d  %.2f s/step", step, steps, dt);
    if (step == steps) fputc('\n', stderr);
    fflush(stderr);
    return 0;
}

static int read_cond(const char *C, const char *path, int D, float **data, int *len) {
    sdc_error e = {0};
    sdc_npy a = {0};
    if (sdc_npy_read_f32(path, &a, &e) != SDC_OK) return cli_fail(C, "%s", e.msg);
    int64_t T = a.ndim == 3 ? a.shape[1] : a.ndim == 2 ? a.shape[0] : 0;
    if ((a.ndim == 3 && a.shape[0] != 1) || (a.ndim != 2 && a.ndim != 3) || a.shape[a.ndim - 1] != D ||
        T % 77 || T == 0) {
        sdc_npy_free(&a);
        return cli_fail(C, "%s: conditioning must be [1, 77*k, %d]", path, D);
    }
    *data = a.data;
    *len = (int)T;
    return 0;
}

int cmd_txt2img(int argc, char **argv) {
    const char *C = "txt2img", *model_path = NULL, *out_path = "out.png", *latent_out = NULL;
    const char *init_path = NULL, *cond_path = NULL, *uncond_path = NULL;
    sdc_txt2img_params p = sdc_txt2img_params_default();
    int threads = 0, have_prompt = 0;
    double cfg = 7.0;
    long long seed = 0;
    enum { O_STEPS = 256, O_CFG, O_SAMPLER, O_SCHEDULE, O_COMPAT, O_FINAL, O_SEED, O_RNG, O_CLIPSKIP,
           O_INIT, O_COND, O_UNCOND, O_SAVE, O_PREVIEW, O_PREVIEW_EVERY, O_PREVIEW_DECODER, O_DECODER_PATH, O_RAW, O_ENSD, O_LOWMEM, O_LORA_DIR, O_LORA, O_EMBEDDINGS };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},       {"prompt", required_argument, 0, 'p'},
        {"negative", required_argument, 0, 'n'},    {"width", required_argument, 0, 'W'},
        {"height", required_argument, 0, 'H'},      {"steps", required_argument, 0, O_STEPS},
        {"cfg", required_argument, 0, O_CFG},       {"sampler", required_argument, 0, O_SAMPLER},
        {"schedule", required_argument, 0, O_SCHEDULE}, {"scheduler-compat", required_argument, 0, O_COMPAT},
        {"final-sigmas", required_argument, 0, O_FINAL}, {"seed", required_argument, 0, O_SEED},
        {"rng", required_argument, 0, O_RNG},       {"clip-skip", required_argument, 0, O_CLIPSKIP},
        {"init-latent", required_argument, 0, O_INIT}, {"cond", required_argument, 0, O_COND},
        {"uncond", required_argument, 0, O_UNCOND}, {"save-latent", required_argument, 0, O_SAVE},
        {"preview", required_argument, 0, O_PREVIEW}, {"preview-every", required_argument, 0, O_PREVIEW_EVERY},
        {"preview-decoder", required_argument, 0, O_PREVIEW_DECODER},
        {"decoder-path", required_argument, 0, O_DECODER_PATH},
        {"low-memory", no_argument, 0, O_LOWMEM},
        {"embeddings", required_argument, 0, O_EMBEDDINGS},
        {"raw-prompt", no_argument, 0, O_RAW},      {"ensd", required_argument, 0, O_ENSD},
        {"lora-dir", required_argument, 0, O_LORA_DIR}, {"lora", required_argument, 0, O_LORA},
        {"threads", required_argument, 0, 't'},     {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
    CLI_GETOPT_RESET();
    for (int c; (c = getopt_long(argc, argv, ":m:p:n:W:H:t:o:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'p': p.prompt = optarg; have_prompt = 1; break;
        case 'n': p.negative = optarg; break;
        case 'W': if (cli_int_arg(C, "--width", optarg, 8, 2048, &p.width)) return 1; break;
        case 'H': if (cli_int_arg(C, "--height", optarg, 8, 2048, &p.height)) return 1; break;
        case O_STEPS: if (cli_int_arg(C, "--steps", optarg, 1, 1000, &p.steps)) return 1; break;
        case O_CFG: if (cli_float_arg(C, "--cfg", optarg, 0.0, 100.0, &cfg)) return 1; break;
        case O_SAMPLER: p.sampler = optarg; break;
        case O_SCHEDULE: p.schedule = optarg; break;
        case O_COMPAT: p.scheduler_compat = optarg; break;
        case O_FINAL:
            if (!strcmp(optarg, "sigma_min")) p.final_sigma_min = 1;
            else if (!strcmp(optarg, "zero")) p.final_sigma_min = 0;
            else return cli_fail(C, "--final-sigmas: '%s' is not zero or sigma_min", optarg);
            break;
        case O_SEED:
            if (cli_parse_int(optarg, &seed) || seed < 0 || seed > 0xffffffffffffLL)
                return cli_fail(C, "--seed: '%s' is not an integer in 0..%lld", optarg, 0xffffffffffffLL);
            break;
        case O_RNG: p.rng = optarg; break;
        case O_ENSD: {
            long long v = 0;
            if (cli_parse_int(optarg, &v) || v < 0 || v > 0xffffffffffffLL)
                return cli_fail(C, "--ensd: '%s' is not an integer in 0..%lld", optarg, 0xffffffffffffLL);
            p.ensd = (uint64_t)v;
            break;
        }
        case O_CLIPSKIP: if (cli_int_arg(C, "--clip-skip", optarg, 1, 12, &p.clip_skip)) return 1; break;
        case O_INIT: init_path = optarg; break;
        case O_COND: cond_path = optarg; break;
        case O_UNCOND: uncond_path = optarg; break;
        case O_SAVE: latent_out = optarg; break;
        case O_PREVIEW: p.preview = optarg; break;
        case O_PREVIEW_EVERY: if (cli_int_arg(C, "--preview-every", optarg, 1, 1000, &p.preview_every)) return 1; break;
        case O_PREVIEW_DECODER:
            if (strcmp(optarg, "vaelight")) return cli_fail(C, "--preview-decoder: '%s' is not vaelight", optarg);
            p.final_vaelight = 1;
            break;
        case O_DECODER_PATH: p.preview_decoder = optarg; break;
        case O_RAW: p.raw_prompt = 1; break;
        case O_LORA_DIR: p.lora_dir = optarg; break;
        case O_LORA: if (cli_lora_option(C, optarg)) return 1; break;
        case O_LOWMEM: p.low_memory = 1; break;
        case O_EMBEDDINGS: p.embeddings_dir = optarg; break;
        case 't': if (cli_int_arg(C, "--threads", optarg, 1, 256, &threads)) return 1; break;
        case 'o': out_path = optarg; break;
        case 'h': usage(); return 0;
        case ':': return cli_fail(C, "option %s needs a value", argv[optind - 1]);
        default: return cli_fail(C, "unknown option %s (see sdc txt2img --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_fail(C, "unexpected argument '%s'", argv[optind]);
    if (!have_prompt && !cond_path) return cli_fail(C, "no prompt given (-p PROMPT)");
    if (p.width % 8 || p.height % 8)
        return cli_fail(C, "size %dx%d: width and height must be multiples of 8", p.width, p.height);
    size_t olen = strlen(out_path);
    if (olen < 4 || strcmp(out_path + olen - 4, ".png")) return cli_fail(C, "%s: output must end in .png", out_path);
    if ((cond_path != NULL) != (uncond_path != NULL)) return cli_fail(C, "--cond and --uncond go together");
    p.cfg = (float)cfg;
    p.seed = (uint64_t)seed;

    sdc_model *m = NULL;
    sdc_image img = {0};
    sdc_npy init = {0};
    float *cond = NULL, *uncond = NULL;
    int rc = 1;
    char err[512];
    sdc_error e = {0};
    if (cli_load_model(C, model_path, threads, &m)) goto done;
    sdc_model_desc d;
    sdc_model_describe(m, &d);
    if (init_path) {
        if (sdc_npy_read_f32(init_path, &init, &e) != SDC_OK) { cli_fail(C, "%s", e.msg); goto done; }
        if (init.ndim != 4 || init.shape[0] != 1 || init.shape[1] != 4 || init.shape[2] != p.height / 8 ||
            init.shape[3] != p.width / 8) {
            cli_fail(C, "%s: initial latent must be [1, 4, %d, %d] for %dx%d", init_path, p.height / 8,
                     p.width / 8, p.width, p.height);
            goto done;
        }
        p.init_latent = init.data;
    }
    if (cond_path) {
        if (read_cond(C, cond_path, d.unet_ctx_dim, &cond, &p.cond_len) ||
            read_cond(C, uncond_path, d.unet_ctx_dim, &uncond, &p.uncond_len))
            goto done;
        p.cond = cond;
        p.uncond = uncond;
    }
    progress_state ps = {isatty(2)};
    p.progress = progress;
    p.progress_user = &ps;
    if (sdc_txt2img(m, &p, &img, err, sizeof err) != SDC_OK) { cli_fail(C, "%s", err); goto done; }
    if (img.lora_report) fprintf(stderr, "%s\n", img.lora_report);
    if (sdc_png_write(out_path, img.rgb, img.width, img.height, img.parameters, &e) != SDC_OK) {
        cli_fail(C, "%s", e.msg);
        goto done;
    }
    if (latent_out) {
        int64_t shape[4] = {1, 4, img.height / 8, img.width / 8};
        if (sdc_npy_write_f32(latent_out, img.latent, 4, shape, &e) != SDC_OK) { cli_fail(C, "%s", e.msg); goto done; }
    }
    const sdc_timings *t = &img.timings;
    printf("sdc txt2img: %dx%d, %d steps -> %s\n", img.width, img.height, t->steps, out_path);
    printf("  %-22s %9s\n", "stage", "seconds");
    printf("  %-22s %9.3f\n", "model hash (AutoV2)", t->load_hash);
    printf("  %-22s %9.3f\n", cond_path ? "text encoder (skipped)" : "text encoder", t->text_encoder);
    printf("  %-22s %9.3f\n", "UNet per step", t->steps ? t->unet_total / t->steps : 0.0);
    printf("  %-22s %9.3f\n", "UNet total", t->unet_total);
    printf("  %-22s %9.3f\n", p.final_vaelight ? "vaelight decoder" : "VAE decoder", t->vae);
    if (t->n_previews) {
        char label[64];
        snprintf(label, sizeof label, "previews (%d, each)", t->n_previews);
        printf("  %-22s %9.3f\n", label, t->preview / t->n_previews);
        printf("  %-22s %9.3f\n", "previews total", t->preview);
    }
    printf("  %-22s %9.3f\n", "total", t->total);
    printf("  peak activation arena %.1f MB\n", (double)t->peak_arena_bytes / 1e6);
    rc = 0;
done:
    sdc_image_free(&img);
    sdc_npy_free(&init);
    free(cond);
    free(uncond);
    sdc_model_free(m);
    return rc;
}
