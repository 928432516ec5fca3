/* cli/cmd_mkmodel.c: `sdc mkmodel`, write a random-weight SD1.5 checkpoint (src/model/mkmodel.h).
 *
 *   sdc mkmodel --tiny --dtype f32 --seed 0 -o /tmp/tiny.safetensors
 *   sdc mkmodel --full --dtype f16 -o /tmp/sd15-random-f16.safetensors      (~2.1 GB)
 *   sdc mkmodel --embedding /tmp/emb/mystyle.pt --vectors 4 --width 64 --seed 1
 *
 * Prints one summary line on success; on any failure one line on stderr, exit status 1, and no
 * file left behind. */
#include "cli.h"
#include "model/lora.h"
#include "model/mkmodel.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const usage_text =
    "usage: sdc mkmodel (--tiny | --full) [--dtype f16|f32|bf16] [--seed N] [--norm-jitter]\n"
    "                   [--threads N] -o FILE\n"
    "       sdc mkmodel --embedding NAME.safetensors|NAME.pt|NAME.bin --vectors N [--width W]\n"
    "                   [--dtype f32|f16] [--seed N]\n"
    "\n"
    "Writes an SD1.5 .safetensors checkpoint with random (untrained) weights, in the original\n"
    "LDM key layout, for tests and benchmarks.\n"
    "  --tiny          the tiny test model (UNet 32, VAE 32, CLIP 64x2); implies --norm-jitter\n"
    "  --full          the real SD1.5 sizes (1.07e9 parameters; ~2.1 GB in f16)\n"
    "  --dtype T       parameter dtype (default f16)\n"
    "  --seed N        random seed, 0 <= N < 2^63 (default 0); same seed, same file\n"
    "  --norm-jitter   normalisation weights 1+0.2N(0,1), biases 0.1N(0,1) instead of 1, 0\n"
    "  --threads N     generator threads, 1..64 (default 2); the file does not depend on it\n"
    "  -o FILE         output path; its directory must exist\n"
    "\n"
    "With --embedding, writes a random textual-inversion embedding [N, W] (N(0, 0.02^2)) instead,\n"
    "in the format webui reads for the extension: .safetensors (emb_params), .pt (webui's\n"
    "string_to_param, a torch.save zip), .bin (a diffusers concept); the prompt word is NAME.\n"
    "  --vectors N     vectors, 0..1000 (more than 75 cannot be used: for tests)\n"
    "  --width W       vector width (768 for SD1.5; the tiny model's is 64); default 768\n"
    "  --dtype T       f32 (default) or f16\n"
    "\n"
    "       sdc mkmodel --lora OUT.safetensors (-m MODEL | --tiny | --full) [--format kohya|peft]\n"
    "                   [--rank R] [--locon] [--dtype f32|f16|bf16] [--seed N]\n"
    "With --lora, writes a random LoRA for the weights of MODEL (or of the tiny/full layout): the\n"
    "UNet's transformer layers and the text encoder's attention and MLP, as kohya trains them.\n"
    "  --format F      kohya (default: lora_unet_*.lora_down.weight, .alpha = R/2) or peft\n"
    "                  (unet.*.lora_A.weight / lora_B.weight, no alpha)\n"
    "  --rank R        1..256 (default 4)\n"
    "  --locon         also the UNet's convolutions (3x3 LoCon)\n"
    "  --dtype T       f32 (default), f16 or bf16\n";

int cmd_mkmodel(int argc, char **argv) {
    const char *C = "mkmodel";
    sdc_mkmodel_params p = sdc_mkmodel_params_default();
    int preset = 0; /* 1 tiny, 2 full */
    p.variant = NULL;
    const char *emb_path = NULL;
    int vectors = -1, width = 768, dtype_set = 0;
    const char *lora_path = NULL, *lora_model = NULL;
    int lora_rank = 4, lora_peft = 0, lora_locon = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--tiny") || !strcmp(a, "--full")) {
            int want = a[2] == 't' ? 1 : 2;
            if (preset && preset != want) return cli_fail(C, "choose one of --tiny and --full");
            preset = want;
        } else if (!strcmp(a, "--norm-jitter")) {
            p.norm_jitter = 1;
        } else if (!strcmp(a, "--locon")) {
            lora_locon = 1;
        } else if (!strcmp(a, "--lora") || !strcmp(a, "--format") || !strcmp(a, "--rank") || !strcmp(a, "-m") ||
                   !strcmp(a, "--model")) {
            if (!val) return cli_fail(C, "%s needs a value", a);
            i++;
            if (!strcmp(a, "--lora")) lora_path = val;
            else if (!strcmp(a, "--rank")) {
                if (cli_int_arg(C, "--rank", val, 1, 256, &lora_rank)) return 1;
            } else if (!strcmp(a, "--format")) {
                if (!strcmp(val, "kohya")) lora_peft = 0;
                else if (!strcmp(val, "peft")) lora_peft = 1;
                else return cli_fail(C, "--format '%s': expected kohya or peft", val);
            } else {
                lora_model = val;
            }
        } else if (!strcmp(a, "--dtype") || !strcmp(a, "--seed") || !strcmp(a, "--threads") ||
                   !strcmp(a, "-o") || !strcmp(a, "--out") || !strcmp(a, "--embedding") ||
                   !strcmp(a, "--vectors") || !strcmp(a, "--width")) {
            if (!val) return cli_fail(C, "%s needs a value", a);
            i++;
            long long v;
            if (!strcmp(a, "--embedding")) {
                emb_path = val;
            } else if (!strcmp(a, "--vectors")) {
                if (cli_int_arg(C, "--vectors", val, 0, SDC_MKMODEL_MAX_VECTORS, &vectors)) return 1;
            } else if (!strcmp(a, "--width")) {
                if (cli_int_arg(C, "--width", val, 1, 65536, &width)) return 1;
            } else if (!strcmp(a, "--dtype")) {
                dtype_set = 1;
                if (!strcmp(val, "f16")) p.dtype = SDC_F16;
                else if (!strcmp(val, "f32")) p.dtype = SDC_F32;
                else if (!strcmp(val, "bf16")) p.dtype = SDC_BF16;
                else return cli_fail(C, "--dtype '%s': expected f16, f32 or bf16", val);
            } else if (!strcmp(a, "--seed")) {
                if (cli_parse_int(val, &v) || v < 0)
                    return cli_fail(C, "--seed '%s': expected an integer 0 <= N < 2^63", val);
                p.seed = (uint64_t)v;
            } else if (!strcmp(a, "--threads")) {
                if (cli_parse_int(val, &v) || v < 1 || v > 64)
                    return cli_fail(C, "--threads '%s': expected an integer from 1 to 64", val);
                p.n_threads = (int)v;
            } else {
                p.path = val;
            }
        } else {
            return cli_fail(C, "unknown argument '%s' (see sdc mkmodel --help)", a);
        }
    }
    if (emb_path) {
        if (preset || p.path) return cli_fail(C, "--embedding writes its own file: no --tiny, --full or -o with it");
        if (vectors < 0) return cli_fail(C, "--embedding needs --vectors N");
        sdc_dtype dt = dtype_set ? p.dtype : SDC_F32;
        sdc_error e;
        sdc_error_clear(&e);
        if (sdc_mkmodel_embedding(emb_path, vectors, width, dt, p.seed, &e) != SDC_OK) return cli_fail(C, "%s", e.msg);
        printf("wrote %s: embedding [%d, %d] %s, seed %" PRIu64 "\n", emb_path, vectors, width,
               dt == SDC_F16 ? "f16" : "f32", p.seed);
        return 0;
    }
    if (lora_path) {
        if (p.path) return cli_fail(C, "--lora writes its own file: no -o with it");
        if (!!lora_model + !!preset != 1) return cli_fail(C, "--lora needs one of -m MODEL, --tiny, --full");
        sdc_lora_make_params lp = {.path = lora_path, .peft = lora_peft, .rank = lora_rank, .locon = lora_locon,
                                   .dtype = dtype_set ? p.dtype : SDC_F32, .seed = p.seed};
        sdc_sd15_config cfg = preset == 2 ? sdc_sd15_config_full() : sdc_sd15_config_tiny();
        sdc_st_file *mf = NULL;
        sdc_error e;
        sdc_error_clear(&e);
        if (lora_model && sdc_st_open(lora_model, &mf, &e) != SDC_OK) return cli_fail(C, "%s", e.msg);
        sdc_status s = sdc_lora_make(&lp, mf, mf ? NULL : &cfg, &e);
        sdc_st_close(mf);
        if (s != SDC_OK) return cli_fail(C, "%s", e.msg);
        printf("wrote %s: random %s LoRA, rank %d%s, seed %" PRIu64 "\n", lora_path, lora_peft ? "PEFT" : "kohya",
               lora_rank, lora_locon ? " with LoCon convolutions" : "", p.seed);
        return 0;
    }
    if (lora_model) return cli_fail(C, "-m belongs to --lora");
    if (vectors >= 0) return cli_fail(C, "--vectors belongs to --embedding");
    if (!preset) return cli_fail(C, "choose a model size: --tiny or --full (see sdc mkmodel --help)");
    if (!p.path) return cli_fail(C, "no output file: -o FILE");
    if (preset == 1) {
        p.config = sdc_sd15_config_tiny();
        p.variant = "tiny";
        p.norm_jitter = 1; /* as the reference generator: catches a skipped affine step */
    } else {
        p.config = sdc_sd15_config_full();
        p.variant = "full";
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sdc_error err;
    sdc_error_clear(&err);
    if (sdc_mkmodel(&p, &err) != SDC_OK) return cli_fail(C, "%s", err.msg);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;

    /* the summary: tensor and parameter counts from the layout that was written */
    sdc_sd15_layout lay;
    if (sdc_sd15_layout_build(&p.config, &lay, &err) != SDC_OK) return cli_fail(C, "%s", err.msg);
    int64_t params = 0;
    for (int c = 0; c < SDC_SD15_N_COMPONENTS; c++) params += sdc_sd15_param_count(&lay, c);
    printf("wrote %s: %s SD1.5, %zu tensors, %" PRId64 " parameters, seed %" PRIu64
           ", %.2f s\n", p.path, p.variant, lay.n, params, p.seed, secs);
    sdc_sd15_layout_free(&lay);
    return 0;
}
