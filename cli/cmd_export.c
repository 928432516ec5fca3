/* cli/cmd_export.c: `sdc export -m MODEL -W 320 -H 480 -o DIR [--parts text,unet,vae]
 * [--unet-timestep-input] [--external-data] [--fp16] [--force]`, and `sdc export --check`
 *
 * Writes the networks sdc runs as ONNX (IR 8, opset 17, static shapes, float32; see
 * src/export/onnx_export.h) for one image size, under the deployment contract's names:
 *   DIR/text_encoder.onnx  input_ids [1, 77] int32 -> last_hidden_state [1, 77, D]
 *   DIR/unet.onnx          sample [1, 4, h, w], encoder_hidden_states [1, 77, D],
 *                          /down_blocks.0/resnets.0/act_1/Mul_output_0 [1, 1280] (post-SiLU time
 *                          embedding; with --unet-timestep-input a float32 timestep [1] instead)
 *                          -> out_sample [1, 4, h, w]
 *   DIR/vae_decoder.onnx   latent [1, 4, h, w] (already divided by 0.18215) -> sample [1, 3, H, W]
 * Weights go to NAME.onnx.data when a model passes 2 GB, or always with --external-data. Each file
 * is written under a temporary name and renamed when complete. DIR is created if absent; an
 * existing non-empty DIR needs --force. --fp16 writes float16 graphs (SDC_ONNX_FP16).
 *
 * --check: writes nothing; runs each model found in DIR (of --parts) with ONNX Runtime (node and
 * tests/ort/run_export.js, onnxruntime-node from the source tree's node_modules; see
 * sdc_export_ort_scripts) on the inputs `sdc encode` / `sdc unet` / `sdc decode` would take (a fixed
 * prompt's ids, a pseudo-random latent, t = 500), compares with sdc's own result and prints
 * max|diff| and rel = max|diff| / max(1, max|ref|) per model, then onnx.checker full_check (Debian's
 * python3-onnx, skipped with a message when absent). Exit 1 when a model is over 1e-4 (2e-2 for a
 * float16 export), fails to run, or fails the checker. -W/-H must be the export's size. */
#include "cli.h"
#include "export/onnx_export.h"
#include "io/npy.h"
#include "model/model.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- --check */

/* Appends ' s ' to cmd with single quotes escaped; 0 when it does not fit. */
static int shell_arg(char *cmd, size_t cap, const char *s) {
    size_t n = strlen(cmd);
    if (n + 3 >= cap) return 0;
    cmd[n++] = ' ';
    cmd[n++] = '\'';
    for (; *s; s++) {
        const char *piece = *s == '\'' ? "'\\''" : NULL;
        size_t k = piece ? strlen(piece) : 1;
        if (n + k + 2 >= cap) return 0;
        if (piece) memcpy(cmd + n, piece, k);
        else cmd[n] = *s;
        n += k;
    }
    cmd[n++] = '\'';
    cmd[n] = '\0';
    return 1;
}

/* Runs a shell command, echoing its output indented; returns its exit status (-1 if it could not run). */
static int run_echo(const char *cmd) {
    fflush(stdout);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    char line[1024];
    while (fgets(line, sizeof line, f)) printf("  %s", line);
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static float lcg(uint32_t *s) { // [-1, 1)
    *s = *s * 1664525u + 1013904223u;
    return (float)(*s >> 8) / 8388608.0f - 1.0f;
}

static int check_export(const char *C, const sdc_model *m, const char *dir, int W, int H, int want[3]) {
    static const char *files[3] = {"text_encoder.onnx", "unet.onnx", "vae_decoder.onnx"};
    char scripts[4096], tmp[] = "/tmp/sdc_export_check_XXXXXX", path[4200], err[512];
    if (!sdc_export_ort_scripts(scripts, sizeof scripts))
        return cli_fail(C, "--check: tests/ort/run_export.js not found (set SDC_ORT_SCRIPTS to the tests/ort folder of an sdc source tree)");
    if (system("command -v node >/dev/null 2>&1") != 0)
        return cli_fail(C, "--check: node is not installed (scripts/setup.sh installs node and onnxruntime-node)");
    int have = 0;
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        want[k] = want[k] && access(path, R_OK) == 0;
        have += want[k];
    }
    if (!have) return cli_fail(C, "--check: %s holds none of text_encoder.onnx, unet.onnx, vae_decoder.onnx", dir);
    if (!mkdtemp(tmp)) return cli_fail(C, "--check: cannot create a temporary folder (%s)", strerror(errno));
    int h = H / 8, w = W / 8, bad = 0, D = m->clip.width, time_dim = m->unet.time_dim;
    size_t nz = (size_t)4 * h * w, nimg = (size_t)3 * H * W;
    float *ids_f = malloc(77 * sizeof *ids_f), *ctx = malloc((size_t)77 * D * sizeof *ctx), *x = malloc(nz * sizeof *x),
          *eps = malloc(nz * sizeof *eps), *temb = malloc((size_t)time_dim * sizeof *temb), *img = malloc(nimg * sizeof *img);
    int32_t ids[77];
    sdc_tokenizer *tok = NULL;
    sdc_error e = {0};
    int64_t s_ids[2] = {1, 77}, s_ctx[3] = {1, 77, D}, s_z[4] = {1, 4, h, w}, s_t[1] = {1}, s_e[2] = {1, time_dim},
            s_img[4] = {1, 3, H, W};
    float t = 500.0f;
    uint32_t seed = 12345;
    if (!ids_f || !ctx || !x || !eps || !temb || !img) {
        bad = cli_fail(C, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < nz; i++) x[i] = lcg(&seed);
    printf("sdc export --check %s (%dx%d): ONNX Runtime vs sdc\n", dir, W, H);
#define WRITE(name, data, nd, shape)                                                                  \
    (snprintf(path, sizeof path, "%s/%s", tmp, name), sdc_npy_write_f32(path, data, nd, shape, &e) == SDC_OK)
    /* the inputs and sdc's results, as sdc encode / unet / decode compute them */
    if (sdc_tokenizer_new(&tok, err, sizeof err) != SDC_OK ||
        sdc_tokenize(tok, "a photograph of an astronaut riding a horse", ids, err, sizeof err) != SDC_OK ||
        (m->has_clip && sdc_encode_ids(m, ids, 1, 1, ctx, err, sizeof err) != SDC_OK)) {
        bad = cli_fail(C, "%s", err);
        goto done;
    }
    for (int i = 0; i < 77; i++) ids_f[i] = (float)ids[i];
    if (!WRITE("ids.npy", ids_f, 2, s_ids) || !WRITE("ctx.npy", ctx, 3, s_ctx) || !WRITE("x.npy", x, 4, s_z) ||
        !WRITE("t.npy", &t, 1, s_t)) {
        bad = cli_fail(C, "%s", e.msg);
        goto done;
    }
    if (want[1]) {
        if (sdc_unet_time_embedding(m, &t, 1, temb, err, sizeof err) != SDC_OK ||
            sdc_unet_eval(m, x, 1, h, w, &t, ctx, 77, eps, err, sizeof err) != SDC_OK) {
            bad = cli_fail(C, "%s", err);
            goto done;
        }
        if (!WRITE("temb.npy", temb, 2, s_e) || !WRITE("eps.npy", eps, 4, s_z)) {
            bad = cli_fail(C, "%s", e.msg);
            goto done;
        }
    }
    if (want[2]) {
        for (size_t i = 0; i < nz; i++) x[i] *= 3.0f; // a latent already divided by 0.18215
        if (sdc_vae_decode(m, x, 1, h, w, img, err, sizeof err) != SDC_OK) {
            bad = cli_fail(C, "%s", err);
            goto done;
        }
        if (!WRITE("z.npy", x, 4, s_z) || !WRITE("img.npy", img, 4, s_img)) {
            bad = cli_fail(C, "%s", e.msg);
            goto done;
        }
    }
#undef WRITE
    for (int k = 0; k < 3; k++) {
        if (!want[k]) continue;
        static const char *refs[3] = {"ctx.npy", "eps.npy", "img.npy"};
        static const char *feeds[3][3] = {{"input_ids=ids.npy"},
                                          {"sample=x.npy", "encoder_hidden_states=ctx.npy", NULL},
                                          {"latent=z.npy"}};
        char cmd[16384] = "node", arg[4400];
        snprintf(arg, sizeof arg, "%s/run_export.js", scripts);
        int fits = shell_arg(cmd, sizeof cmd, arg);
        snprintf(path, sizeof path, "%s/%s", dir, files[k]);
        fits &= shell_arg(cmd, sizeof cmd, path);
        snprintf(arg, sizeof arg, "%s/%s", tmp, refs[k]);
        fits &= shell_arg(cmd, sizeof cmd, arg);
        for (int i = 0; i < 3 && feeds[k][i]; i++) {
            snprintf(arg, sizeof arg, "%.*s%s/%s", (int)(strchr(feeds[k][i], '=') - feeds[k][i] + 1), feeds[k][i], tmp,
                     strchr(feeds[k][i], '=') + 1);
            fits &= shell_arg(cmd, sizeof cmd, arg);
        }
        if (k == 1) { // the time-embedding input, or the timestep of --unet-timestep-input
            snprintf(arg, sizeof arg, "/down_blocks.0/resnets.0/act_1/Mul_output_0?=%s/temb.npy", tmp);
            fits &= shell_arg(cmd, sizeof cmd, arg);
            snprintf(arg, sizeof arg, "timestep?=%s/t.npy", tmp);
            fits &= shell_arg(cmd, sizeof cmd, arg);
        }
        fits &= shell_arg(cmd, sizeof cmd, "--label") && shell_arg(cmd, sizeof cmd, files[k]);
        strncat(cmd, " 2>&1", sizeof cmd - strlen(cmd) - 1);
        int rc = fits ? run_echo(cmd) : -1;
        if (rc != 0) {
            bad = 1;
            if (rc != 1) printf("  %s: ONNX Runtime could not run it (exit %d)\n", files[k], rc);
        }
    }
    /* onnx.checker */
    if (system("/usr/bin/python3 -c 'import onnx' >/dev/null 2>&1") == 0) {
        for (int k = 0; k < 3; k++) {
            if (!want[k]) continue;
            char cmd[8192] = "/usr/bin/python3 -c 'import sys, onnx; onnx.checker.check_model(sys.argv[1], full_check=True); "
                             "print(sys.argv[2] + \": onnx.checker full_check ok\")'";
            snprintf(path, sizeof path, "%s/%s", dir, files[k]);
            if (!shell_arg(cmd, sizeof cmd, path) || !shell_arg(cmd, sizeof cmd, files[k])) continue;
            strncat(cmd, " 2>&1 | tail -n 3", sizeof cmd - strlen(cmd) - 1);
            char out[8300];
            snprintf(out, sizeof out, "%s", cmd);
            fflush(stdout);
            FILE *f = popen(out, "r");
            int okline = 0;
            char line[1024];
            while (f && fgets(line, sizeof line, f)) {
                printf("  %s", line);
                okline |= strstr(line, "full_check ok") != NULL;
            }
            if (f) pclose(f);
            if (!okline) {
                printf("  %s: onnx.checker FAILED\n", files[k]);
                bad = 1;
            }
        }
    } else {
        printf("  onnx.checker: Debian's python3-onnx is not installed: skipped\n");
    }
    printf("sdc export --check: %s\n", bad ? "FAILED" : "ok");
done:
    sdc_tokenizer_free(tok);
    free(ids_f), free(ctx), free(x), free(eps), free(temb), free(img);
    snprintf(path, sizeof path, "rm -rf '%s'", tmp);
    if (system(path) != 0) fprintf(stderr, "sdc export: could not remove %s\n", tmp);
    return bad ? 1 : 0;
}

static void usage(void) {
    printf("usage: sdc export -m MODEL [-W N] [-H N] -o DIR [--parts text,unet,vae] [--unet-timestep-input]\n"
           "                  [--external-data] [--fp16] [--check] [--lora FILE[:W]] [--force]\n"
           "  -W, -H N               image width and height, multiples of 8 in 8..2048 (512)\n"
           "  --parts LIST           which of text, unet, vae to write (all)\n"
           "  --unet-timestep-input  the UNet takes a float32 timestep [1], not the time embedding\n"
           "  --external-data        weights in NAME.onnx.data even under 2 GB\n"
           "  --force                write into a non-empty DIR\n"
           "  --fp16                 float16 weights, inputs/outputs (input_ids stays int32) and activations,\n"
           "                         no Cast nodes; with the time-embedding UNet only (see README)\n"
           "  --check                check the models already in DIR against sdc with ONNX Runtime and onnx.checker\n"
           "  --lora FILE[:W]        merge a LoRA (weight W, default 1) into the exported weights; repeatable\n");
}

static int parse_parts(const char *C, const char *s, int *text, int *unet, int *vae) {
    *text = *unet = *vae = 0;
    while (*s) {
        size_t n = strcspn(s, ",");
        if (n == 4 && !strncmp(s, "text", 4)) *text = 1;
        else if (n == 4 && !strncmp(s, "unet", 4)) *unet = 1;
        else if (n == 3 && !strncmp(s, "vae", 3)) *vae = 1;
        else return cli_fail(C, "--parts: unknown part '%.*s' (expected text, unet, vae)", (int)n, s);
        s += n + (s[n] == ',');
    }
    if (!*text && !*unet && !*vae) return cli_fail(C, "--parts: no part given (expected text, unet, vae)");
    return 0;
}

/* 0: DIR exists and is empty or was created; 1 (after a message) otherwise. */
static int prepare_dir(const char *C, const char *dir, int force) {
    DIR *d = opendir(dir);
    if (!d) {
        if (errno != ENOENT) return cli_fail(C, "%s: cannot open the directory (%s)", dir, strerror(errno));
        if (mkdir(dir, 0777) != 0) return cli_fail(C, "%s: cannot create the directory (%s)", dir, strerror(errno));
        return 0;
    }
    int used = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) used = 1;
    closedir(d);
    if (used && !force) return cli_fail(C, "%s: the directory is not empty (use --force to write into it)", dir);
    return 0;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Exports one network, reports one line. */
static int export_one(const char *C, const sdc_model *m, const char *dir, const char *file, int part, int H, int W,
                      int timestep_input, int external, int fp16) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path) return cli_fail(C, "%s: path too long", dir);
    double t0 = now_s();
    sdc_export_opts o = {.width = W, .height = H, .timestep_input = timestep_input, .external = external, .fp16 = fp16};
    sdc_error err = {0};
    int used_ext = 0;
    if (sdc_export_onnx(m, (sdc_export_part)part, &o, path, &used_ext, &err) != SDC_OK) return cli_fail(C, "%s", err.msg);
    struct stat st;
    long long bytes = stat(path, &st) == 0 ? (long long)st.st_size : 0;
    printf("%s: %lld bytes%s, %.1f s\n", path, bytes, used_ext ? " + external data (.data)" : "", now_s() - t0);
    return 0;
}

int cmd_export(int argc, char **argv) {
    const char *C = "export", *model_path = NULL, *dir = NULL;
    int W = 512, H = 512, text = 1, unet = 1, vae = 1, timestep_input = 0, external = 0, force = 0, check = 0, fp16 = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"width", required_argument, 0, 'W'},
        {"height", required_argument, 0, 'H'}, {"output", required_argument, 0, 'o'},
        {"parts", required_argument, 0, 'p'}, {"unet-timestep-input", no_argument, 0, 'T'},
        {"external-data", no_argument, 0, 'e'}, {"force", no_argument, 0, 'f'},
        {"lora", required_argument, 0, 'L'},  {"check", no_argument, 0, 'C'}, {"fp16", no_argument, 0, 'F'},
        {"help", no_argument, 0, 'h'},        {0, 0, 0, 0}};
    CLI_GETOPT_RESET();
    for (int c; (c = getopt_long(argc, argv, ":m:W:H:o:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'o': dir = optarg; break;
        case 'W': if (cli_int_arg(C, "--width", optarg, 8, 2048, &W)) return 1; break;
        case 'H': if (cli_int_arg(C, "--height", optarg, 8, 2048, &H)) return 1; break;
        case 'p': if (parse_parts(C, optarg, &text, &unet, &vae)) return 1; break;
        case 'T': timestep_input = 1; break;
        case 'e': external = 1; break;
        case 'f': force = 1; break;
        case 'C': check = 1; break;
        case 'F': fp16 = 1; break;
        case 'L': if (cli_lora_option(C, optarg)) return 1; break;
        case 'h': usage(); return 0;
        case ':': return cli_fail(C, "option %s needs a value", argv[optind - 1]);
        default: return cli_fail(C, "unknown option %s (see sdc export --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_fail(C, "unexpected argument '%s'", argv[optind]);
    if (W % 8 || H % 8) return cli_fail(C, "-W %d -H %d: width and height must be multiples of 8", W, H);
    if (!model_path) return cli_fail(C, "no model given (-m MODEL)");
    if (!dir) return cli_fail(C, "no output directory given (-o DIR)");
    sdc_model *m = NULL;
    if (cli_load_model(C, model_path, check ? 0 : 1, &m)) return 1;
    int rc = 1;
    if ((text && !m->has_clip) || (unet && !m->has_unet) || (vae && !m->has_vae)) {
        cli_fail(C, "%s: the checkpoint lacks the %s", model_path,
                 text && !m->has_clip ? "text encoder" : unet && !m->has_unet ? "UNet" : "VAE decoder");
        goto done;
    }
    if (check) {
        int want[3] = {text, unet, vae};
        rc = check_export(C, m, dir, W, H, want);
        goto done;
    }
    if (fp16 && timestep_input && unet) {
        cli_fail(C, "--fp16 with --unet-timestep-input: a float16 UNet takes the time embedding (float16 cannot carry "
                    "the sinusoidal embedding of t up to 999)");
        goto done;
    }
    if (prepare_dir(C, dir, force)) goto done;
    int ext = external ? SDC_ONNX_EXTERNAL_ALWAYS : SDC_ONNX_EXTERNAL_AUTO;
    if (text && export_one(C, m, dir, "text_encoder.onnx", 0, H, W, 0, ext, fp16)) goto done;
    if (unet && export_one(C, m, dir, "unet.onnx", 1, H, W, timestep_input, ext, fp16)) goto done;
    if (vae && export_one(C, m, dir, "vae_decoder.onnx", 2, H, W, 0, ext, fp16)) goto done;
    rc = 0;
done:
    sdc_model_free(m);
    return rc;
}
