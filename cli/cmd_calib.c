/* cli/cmd_calib.c: `sdc calib` (calibration sets + NPU toolchain files) and `sdc deploy` (ONNX
 * export + calib into one folder: the whole deploy kit from one checkpoint, one command).
 *
 *   sdc calib  -m MODEL --prompts FILE [-W 320 -H 480 --steps 20 --cfg 7] -o DIR [options]
 *   sdc deploy -m MODEL --prompts FILE [-W 320 -H 480 ...] -o DIR [--fp16] [options]
 *
 * The prompts file: one prompt per line (UTF-8, A1111 syntax); blank lines and lines whose first
 * non-blank character is '#' are skipped; a TAB splits a line into prompt and negative prompt
 * (without one the line gets --negative, default empty). Prompt i (0-based) runs with seed
 * --seed + i. What is recorded and written: src/deploy/calib.h. DIR is created if absent; a
 * non-empty DIR needs --force (calib then replaces its own files and leaves the others). */
#include "cli.h"
#include "deploy/calib.h"
#include "export/onnx_export.h"
#include "model/model.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define MAX_PROMPTS_FILE (16u << 20)
#define MAX_PROMPTS 100000

static void usage(int deploy) {
    printf("usage: sdc %s -m MODEL --prompts FILE -o DIR [options]\n", deploy ? "deploy" : "calib");
    if (deploy)
        printf("  Exports text_encoder.onnx, unet.onnx (time-embedding input) and vae_decoder.onnx into DIR,\n"
               "  then records the calibration sets and writes the pulsar2 configs, build script and manifest.\n");
    else
        printf("  Runs txt2img over the prompts and records the inputs of every text encoder, UNet (both CFG\n"
               "  branches, every step) and VAE decoder call as pulsar2 calibration tars (NumpyObject and\n"
               "  Numpy), with pulsar2 build configs, pulsar2/build.sh and manifest.json.\n");
    printf("  --prompts FILE           one prompt per line; '#' comments and blank lines skipped;\n"
           "                           PROMPT<TAB>NEGATIVE gives a line its own negative prompt\n"
           "  -n, --negative TEXT      negative prompt of lines without a TAB (empty)\n"
           "  -W, -H N                 image width and height, multiples of 8 (320 x 480)\n"
           "      --steps N            sampling steps (20)\n"
           "      --cfg X              guidance scale (7)\n"
           "      --seed N             seed of the first prompt; prompt i uses N + i (0)\n"
           "      --sampler NAME       dpm++2m (default), euler, euler_a, ddim\n"
           "      --schedule NAME      automatic (default), karras, normal, exponential, ...\n"
           "      --scheduler-compat X a1111 (default) or diffusers\n"
           "      --final-sigmas X     diffusers only: zero (default) or sigma_min\n"
           "      --clip-skip N        1 = last CLIP layer (default)\n"
           "      --raw-prompt         prompts go to CLIP literally (one chunk, no A1111 syntax)\n"
           "      --embeddings DIR     textual-inversion embeddings for the prompts (as txt2img)\n"
           "      --lora FILE[:W]      merge a LoRA into the model first (exported and sampled alike);\n"
           "                           repeatable. <lora:...> tags in prompts are refused here\n"
           "      --max-samples N      keep at most N samples per model, spread evenly over prompts,\n"
           "                           steps and CFG branches (default: all)\n"
           "  -t, --threads N          compute threads (all cores)\n"
           "      --force              write into a non-empty DIR\n");
    if (deploy) printf("      --fp16               float16 ONNX weights and activations (see sdc export --help)\n");
}

/* ---------------------------------------------------------------- the prompts file */

typedef struct prompt_list {
    char *text; /* the file, cut into NUL-terminated pieces */
    sdc_calib_prompt *v;
    int n;
} prompt_list;

static int read_prompts(const char *C, const char *path, const char *negative, prompt_list *pl) {
    memset(pl, 0, sizeof *pl);
    FILE *f = fopen(path, "rb");
    if (!f) return cli_fail(C, "%s: cannot open the prompts file (%s)", path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > MAX_PROMPTS_FILE) {
        fclose(f);
        return cli_fail(C, "%s: not a regular file of at most %u MiB", path, MAX_PROMPTS_FILE >> 20);
    }
    size_t len = (size_t)st.st_size;
    pl->text = malloc(len + 1);
    if (!pl->text || fread(pl->text, 1, len, f) != len) {
        fclose(f);
        free(pl->text);
        pl->text = NULL;
        return cli_fail(C, "%s: cannot read the prompts file", path);
    }
    fclose(f);
    pl->text[len] = '\0';
    if (memchr(pl->text, '\0', len)) return cli_fail(C, "%s: the prompts file holds a NUL byte", path);
    size_t lines = 1;
    for (size_t i = 0; i < len; i++) lines += pl->text[i] == '\n';
    if (!(pl->v = calloc(lines, sizeof *pl->v))) return cli_fail(C, "out of memory");
    char *s = pl->text;
    for (size_t ln = 1; s && *s; ln++) {
        char *nl = strchr(s, '\n'), *next = nl ? nl + 1 : NULL;
        if (nl) *nl = '\0';
        size_t l = strlen(s);
        if (l && s[l - 1] == '\r') s[--l] = '\0';
        char *p = s + strspn(s, " \t");
        if (*p && *p != '#') {
            if (pl->n >= MAX_PROMPTS) return cli_fail(C, "%s: more than %d prompts", path, MAX_PROMPTS);
            char *tab = strchr(s, '\t');
            pl->v[pl->n].negative = negative;
            if (tab) {
                *tab = '\0';
                pl->v[pl->n].negative = tab + 1;
            }
            pl->v[pl->n++].prompt = s;
        }
        s = next;
    }
    if (!pl->n) return cli_fail(C, "%s: no prompts (one per line; '#' starts a comment)", path);
    return 0;
}

/* ---------------------------------------------------------------- progress */

typedef struct progress_state {
    double t0;
} progress_state;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void on_prompt(void *user, int i, int n, const sdc_timings *t) {
    progress_state *ps = user;
    printf("  prompt %d/%d: %d steps, %.1f s (UNet %.2f s/step)\n", i + 1, n, t->steps, t->total,
           t->steps ? t->unet_total / t->steps : 0.0);
    fflush(stdout);
    (void)ps;
}

static void print_set(const char *name, const sdc_calib_set *s) {
    printf("  %-13s %5d recorded, %5d written: NumpyObject %.1f MB, Numpy %.1f MB\n", name, s->recorded, s->written,
           (double)s->numpyobject_bytes / 1e6, (double)s->numpy_bytes / 1e6);
}

/* ---------------------------------------------------------------- export (sdc deploy) */

static int export_all(const char *C, const sdc_model *m, const char *dir, int W, int H, int fp16) {
    static const char *files[3] = {"text_encoder.onnx", "unet.onnx", "vae_decoder.onnx"};
    sdc_export_opts o = {.width = W, .height = H, .fp16 = fp16};
    for (int part = 0; part < 3; part++) {
        char path[4200];
        if (snprintf(path, sizeof path, "%s/%s", dir, files[part]) >= (int)sizeof path)
            return cli_fail(C, "%s: path too long", dir);
        double t0 = now_s();
        int ext = 0;
        sdc_error e = {0};
        if (sdc_export_onnx(m, (sdc_export_part)part, &o, path, &ext, &e) != SDC_OK) return cli_fail(C, "%s", e.msg);
        struct stat st;
        printf("  %s: %.1f MB%s, %.1f s\n", path, stat(path, &st) == 0 ? (double)st.st_size / 1e6 : 0.0,
               ext ? " + external data" : "", now_s() - t0);
    }
    return 0;
}

/* ---------------------------------------------------------------- the commands */

static int run(int argc, char **argv, int deploy) {
    const char *C = deploy ? "deploy" : "calib", *model_path = NULL, *dir = NULL, *prompts_path = NULL;
    const char *negative = NULL;
    sdc_calib_params cp = {0};
    cp.gen = sdc_txt2img_params_default();
    cp.gen.width = 320;
    cp.gen.height = 480;
    int threads = 0, force = 0, fp16 = 0;
    double cfg = 7.0;
    long long seed = 0;
    enum { O_PROMPTS = 256, O_STEPS, O_CFG, O_SEED, O_SAMPLER, O_SCHEDULE, O_COMPAT, O_FINAL, O_CLIPSKIP, O_RAW,
           O_MAX, O_FORCE, O_FP16, O_EMB, O_LORA };
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},        {"prompts", required_argument, 0, O_PROMPTS},
        {"negative", required_argument, 0, 'n'},     {"width", required_argument, 0, 'W'},
        {"height", required_argument, 0, 'H'},       {"steps", required_argument, 0, O_STEPS},
        {"cfg", required_argument, 0, O_CFG},        {"seed", required_argument, 0, O_SEED},
        {"sampler", required_argument, 0, O_SAMPLER}, {"schedule", required_argument, 0, O_SCHEDULE},
        {"scheduler-compat", required_argument, 0, O_COMPAT}, {"final-sigmas", required_argument, 0, O_FINAL},
        {"clip-skip", required_argument, 0, O_CLIPSKIP}, {"raw-prompt", no_argument, 0, O_RAW},
        {"max-samples", required_argument, 0, O_MAX}, {"threads", required_argument, 0, 't'},
        {"output", required_argument, 0, 'o'},       {"force", no_argument, 0, O_FORCE},
        {"fp16", no_argument, 0, O_FP16},            {"help", no_argument, 0, 'h'},
        {"embeddings", required_argument, 0, O_EMB}, {"lora", required_argument, 0, O_LORA},
        {0, 0, 0, 0}};
    CLI_GETOPT_RESET();
    for (int c; (c = getopt_long(argc, argv, ":m:n:W:H:t:o:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case O_PROMPTS: prompts_path = optarg; break;
        case 'n': negative = optarg; break;
        case 'W': if (cli_int_arg(C, "--width", optarg, 8, 2048, &cp.gen.width)) return 1; break;
        case 'H': if (cli_int_arg(C, "--height", optarg, 8, 2048, &cp.gen.height)) return 1; break;
        case O_STEPS: if (cli_int_arg(C, "--steps", optarg, 1, 1000, &cp.gen.steps)) return 1; break;
        case O_CFG: if (cli_float_arg(C, "--cfg", optarg, 0.0, 100.0, &cfg)) return 1; break;
        case O_SEED:
            if (cli_parse_int(optarg, &seed) || seed < 0 || seed > 0xffffffffffffLL)
                return cli_fail(C, "--seed: '%s' is not an integer in 0..%lld", optarg, 0xffffffffffffLL);
            break;
        case O_SAMPLER: cp.gen.sampler = optarg; break;
        case O_SCHEDULE: cp.gen.schedule = optarg; break;
        case O_COMPAT: cp.gen.scheduler_compat = optarg; break;
        case O_FINAL:
            if (!strcmp(optarg, "sigma_min")) cp.gen.final_sigma_min = 1;
            else if (!strcmp(optarg, "zero")) cp.gen.final_sigma_min = 0;
            else return cli_fail(C, "--final-sigmas: '%s' is not zero or sigma_min", optarg);
            break;
        case O_CLIPSKIP: if (cli_int_arg(C, "--clip-skip", optarg, 1, 12, &cp.gen.clip_skip)) return 1; break;
        case O_RAW: cp.gen.raw_prompt = 1; break;
        case O_EMB: cp.gen.embeddings_dir = optarg; break;
        case O_LORA: if (cli_lora_option(C, optarg)) return 1; break;
        case O_MAX: if (cli_int_arg(C, "--max-samples", optarg, 1, 1000000000, &cp.max_samples)) return 1; break;
        case 't': if (cli_int_arg(C, "--threads", optarg, 1, 256, &threads)) return 1; break;
        case 'o': dir = optarg; break;
        case O_FORCE: force = 1; break;
        case O_FP16:
            if (!deploy) return cli_fail(C, "--fp16 is an export option (sdc deploy or sdc export)");
            fp16 = 1;
            break;
        case 'h': usage(deploy); return 0;
        case ':': return cli_fail(C, "option %s needs a value", argv[optind - 1]);
        default: return cli_fail(C, "unknown option %s (see sdc %s --help)", argv[optind - 1], C);
        }
    }
    if (optind < argc) return cli_fail(C, "unexpected argument '%s'", argv[optind]);
    if (cp.gen.width % 8 || cp.gen.height % 8)
        return cli_fail(C, "-W %d -H %d: width and height must be multiples of 8", cp.gen.width, cp.gen.height);
    if (!model_path) return cli_fail(C, "no model given (-m MODEL)");
    if (!prompts_path) return cli_fail(C, "no prompts given (--prompts FILE)");
    if (!dir) return cli_fail(C, "no output directory given (-o DIR)");
    cp.gen.cfg = (float)cfg;
    cp.gen.seed = (uint64_t)seed;
    cp.gen.negative = negative;
    cp.gen.n_threads = threads;

    prompt_list pl;
    sdc_model *m = NULL;
    int rc = 1;
    if (read_prompts(C, prompts_path, negative, &pl)) goto done;
    for (int i = 0; i < pl.n; i++)
        if (strstr(pl.v[i].prompt, "<lora:")) {
            cli_fail(C, "%s: prompt %d has a <lora:...> tag: merge the LoRA with --lora FILE[:W] instead, so that "
                        "the exported model and the calibration samples both carry it", prompts_path, i + 1);
            goto done;
        }
    if (cli_load_model(C, model_path, threads, &m)) goto done;
    sdc_error e = {0};
    if (sdc_deploy_prepare_dir(dir, force, &e) != SDC_OK) {
        cli_fail(C, "%s", e.msg);
        goto done;
    }
    double t0 = now_s();
    printf("sdc %s: %d prompts, %dx%d, %d steps, cfg %g -> %s\n", C, pl.n, cp.gen.width, cp.gen.height, cp.gen.steps,
           cfg, dir);
    if (deploy && export_all(C, m, dir, cp.gen.width, cp.gen.height, fp16)) goto done;
    progress_state ps = {now_s()};
    cp.dir = dir;
    cp.prompts = pl.v;
    cp.n_prompts = pl.n;
    cp.onnx_fp16 = fp16;
    cp.model_label = model_path;
    cp.on_prompt = on_prompt;
    cp.user = &ps;
    sdc_calib_summary sum;
    if (sdc_calib_run(m, &cp, &sum, &e) != SDC_OK) {
        cli_fail(C, "%s", e.msg);
        goto done;
    }
    printf("calibration sets (%.1f s):\n", sum.seconds);
    print_set("text_encoder", &sum.text);
    print_set("unet", &sum.unet);
    print_set("vae_decoder", &sum.vae);
    if (sum.truncated)
        printf("  note: %d UNet rows had a context longer than 77 tokens; their first 77 were recorded\n", sum.truncated);
    printf("wrote %s/calib, %s/pulsar2 (configs, build.sh), %s/manifest.json, %s/time_embedding.npy (%.1f s in all)\n",
           dir, dir, dir, dir, now_s() - t0);
    rc = 0;
done:
    sdc_model_free(m);
    free(pl.text);
    free(pl.v);
    return rc;
}

int cmd_calib(int argc, char **argv) { return run(argc, argv, 0); }
int cmd_deploy(int argc, char **argv) { return run(argc, argv, 1); }
