/* cli/cmd_export.c: `sdc export -m MODEL -W 320 -H 480 -o DIR [--parts text,unet,vae]
 * [--unet-timestep-input] [--external-data] [--force]`
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
 * existing non-empty DIR needs --force. */
#include "cli.h"
#include "export/onnx_export.h"
#include "model/model.h"

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define TEMB_NAME "/down_blocks.0/resnets.0/act_1/Mul_output_0"

static void usage(void) {
    printf("usage: sdc export -m MODEL [-W N] [-H N] -o DIR [--parts text,unet,vae] [--unet-timestep-input]\n"
           "                  [--external-data] [--force]\n"
           "  -W, -H N               image width and height, multiples of 8 in 8..2048 (512)\n"
           "  --parts LIST           which of text, unet, vae to write (all)\n"
           "  --unet-timestep-input  the UNet takes a float32 timestep [1], not the time embedding\n"
           "  --external-data        weights in NAME.onnx.data even under 2 GB\n"
           "  --force                write into a non-empty DIR\n");
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

/* Builds one network's graph with `build`, exports it, reports one line. */
static int export_one(const char *C, const sdc_model *m, const char *dir, const char *file, int part, int H, int W,
                      int timestep_input, int external) {
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, file) >= (int)sizeof path) return cli_fail(C, "%s: path too long", dir);
    double t0 = now_s();
    sdc_graph g;
    sdc_onnx_port in[3], out;
    int n_in = 0;
    const char *prefix = part == 0 ? SDC_CLIP_PREFIX : part == 1 ? SDC_UNET_PREFIX : SDC_VAE_PREFIX;
    sdc_graph_init(&g, m->st, prefix);
    int h = H / 8, w = W / 8;
    if (part == 0) {
        int64_t s[2] = {1, SDC_CLIP_CTX};
        in[n_in++] = (sdc_onnx_port){sdc_g_input(&g, "input_ids", 2, s), "input_ids", 1};
        out = (sdc_onnx_port){sdc_clip_build(&g, &m->clip, in[0].value, 1), "last_hidden_state", 0};
    } else if (part == 1) {
        int64_t xs[4] = {1, m->unet.in_ch, h, w}, ts[1] = {1}, es[2] = {1, m->unet.time_dim},
                cs[3] = {1, SDC_CLIP_CTX, m->unet.ctx_dim};
        in[n_in++] = (sdc_onnx_port){sdc_g_input(&g, "sample", 4, xs), "sample", 0};
        in[n_in++] = (sdc_onnx_port){sdc_g_input(&g, "encoder_hidden_states", 3, cs), "encoder_hidden_states", 0};
        if (timestep_input) in[n_in++] = (sdc_onnx_port){sdc_g_input(&g, "timestep", 1, ts), "timestep", 0};
        else in[n_in++] = (sdc_onnx_port){sdc_g_input(&g, "temb", 2, es), TEMB_NAME, 0};
        int v = sdc_unet_build(&g, &m->unet, in[0].value, timestep_input ? in[2].value : -1, in[1].value,
                               timestep_input ? -1 : in[2].value);
        out = (sdc_onnx_port){v, "out_sample", 0};
    } else {
        int64_t zs[4] = {1, m->vae.z_ch, h, w};
        in[n_in++] = (sdc_onnx_port){sdc_g_input(&g, "latent", 4, zs), "latent", 0};
        out = (sdc_onnx_port){sdc_vae_decoder_build(&g, &m->vae, in[0].value), "sample", 0};
    }
    if (!sdc_graph_ok(&g) || out.value < 0) {
        int r = cli_fail(C, "%s: %s", file, g.err.msg[0] ? g.err.msg : "cannot build the graph");
        sdc_graph_free(&g);
        return r;
    }
    sdc_error err = {0};
    int used_ext = 0;
    sdc_status s = sdc_onnx_export(&g, in, n_in, out, path, external, &used_ext, &err);
    sdc_graph_free(&g);
    if (s != SDC_OK) return cli_fail(C, "%s", err.msg);
    struct stat st;
    long long bytes = stat(path, &st) == 0 ? (long long)st.st_size : 0;
    printf("%s: %lld bytes%s, %.1f s\n", path, bytes, used_ext ? " + external data (.data)" : "", now_s() - t0);
    return 0;
}

int cmd_export(int argc, char **argv) {
    const char *C = "export", *model_path = NULL, *dir = NULL;
    int W = 512, H = 512, text = 1, unet = 1, vae = 1, timestep_input = 0, external = 0, force = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'}, {"width", required_argument, 0, 'W'},
        {"height", required_argument, 0, 'H'}, {"output", required_argument, 0, 'o'},
        {"parts", required_argument, 0, 'p'}, {"unet-timestep-input", no_argument, 0, 'T'},
        {"external-data", no_argument, 0, 'e'}, {"force", no_argument, 0, 'f'},
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
    if (cli_load_model(C, model_path, 1, &m)) return 1;
    int rc = 1;
    if ((text && !m->has_clip) || (unet && !m->has_unet) || (vae && !m->has_vae)) {
        cli_fail(C, "%s: the checkpoint lacks the %s", model_path,
                 text && !m->has_clip ? "text encoder" : unet && !m->has_unet ? "UNet" : "VAE decoder");
        goto done;
    }
    if (prepare_dir(C, dir, force)) goto done;
    int ext = external ? SDC_ONNX_EXTERNAL_ALWAYS : SDC_ONNX_EXTERNAL_AUTO;
    if (text && export_one(C, m, dir, "text_encoder.onnx", 0, H, W, 0, ext)) goto done;
    if (unet && export_one(C, m, dir, "unet.onnx", 1, H, W, timestep_input, ext)) goto done;
    if (vae && export_one(C, m, dir, "vae_decoder.onnx", 2, H, W, 0, ext)) goto done;
    rc = 0;
done:
    sdc_model_free(m);
    return rc;
}
