/* cli/cmd_decode.c: `sdc decode -m MODEL --latent Z.npy -o OUT.npy|OUT.png [--latent-scaled]`
 * The VAE decoder stage. Z is the sampler's latent [B, 4, h, w]: decode divides it by 0.18215
 * itself, unless --latent-scaled says that was done already (the exported VAE decoder's input).
 * .npy output: the raw decoder output [B, 3, 8h, 8w] before clamping; .png: batch row 0 as
 * 8-bit RGB, round(clamp(x/2 + 0.5, 0, 1) * 255). */
#include "cli.h"
#include "io/npy.h"
#include "io/png.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: sdc decode -m MODEL --latent Z.npy [--latent-scaled] [-t THREADS] -o OUT.npy|OUT.png\n"
           "  Z [B, 4, h, w] float32 in UNet space (divided by 0.18215 here unless --latent-scaled)\n"
           "  OUT.npy: raw decoder output [B, 3, 8h, 8w], unclamped; OUT.png: 8-bit RGB of row 0\n");
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

int cmd_decode(int argc, char **argv) {
    const char *C = "decode", *model_path = NULL, *latent_path = NULL, *out_path = NULL;
    int threads = 0, scaled = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},  {"latent", required_argument, 0, 'x'},
        {"latent-scaled", no_argument, 0, 's'}, {"threads", required_argument, 0, 't'},
        {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    CLI_GETOPT_RESET();
    for (int c; (c = getopt_long(argc, argv, ":m:t:o:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'x': latent_path = optarg; break;
        case 's': scaled = 1; break;
        case 'o': out_path = optarg; break;
        case 't': if (cli_int_arg(C, "--threads", optarg, 1, 256, &threads)) return 1; break;
        case 'h': usage(); return 0;
        case ':': return cli_fail(C, "option %s needs a value", argv[optind - 1]);
        default: return cli_fail(C, "unknown option %s (see sdc decode --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_fail(C, "unexpected argument '%s'", argv[optind]);
    if (!latent_path) return cli_fail(C, "no latent given (--latent Z.npy)");
    if (!out_path) return cli_fail(C, "no output given (-o OUT.npy or OUT.png)");
    int png = ends_with(out_path, ".png");
    if (!png && !ends_with(out_path, ".npy")) return cli_fail(C, "%s: output must end in .npy or .png", out_path);

    sdc_error e = {0};
    sdc_npy z = {0};
    sdc_model *m = NULL;
    float *img = NULL;
    uint8_t *rgb = NULL;
    int rc = 1;
    if (sdc_npy_read_f32(latent_path, &z, &e)) { cli_fail(C, "%s", e.msg); goto done; }
    if (z.ndim != 4 || z.shape[1] != 4) {
        cli_fail(C, "%s: latent must be [B, 4, h, w]", latent_path);
        goto done;
    }
    if (cli_load_model(C, model_path, threads, &m)) goto done;
    if (!scaled)
        for (int64_t i = 0; i < z.numel; i++) z.data[i] /= 0.18215f;
    int B = (int)z.shape[0], h = (int)z.shape[2], w = (int)z.shape[3];
    size_t n_img = (size_t)B * 3 * (size_t)h * 8 * (size_t)w * 8;
    if (!(img = malloc(n_img * sizeof(float)))) { cli_fail(C, "out of memory"); goto done; }
    char err[512];
    if (sdc_vae_decode(m, z.data, B, h, w, img, err, sizeof err) != SDC_OK) { cli_fail(C, "%s", err); goto done; }
    if (png) {
        if (!(rgb = malloc((size_t)h * 8 * (size_t)w * 8 * 3))) { cli_fail(C, "out of memory"); goto done; }
        sdc_image_to_u8(img, h * 8, w * 8, rgb);
        if (sdc_png_write(out_path, rgb, w * 8, h * 8, NULL, &e) != SDC_OK) { cli_fail(C, "%s", e.msg); goto done; }
    } else {
        int64_t shape[4] = {B, 3, (int64_t)h * 8, (int64_t)w * 8};
        if (sdc_npy_write_f32(out_path, img, 4, shape, &e) != SDC_OK) { cli_fail(C, "%s", e.msg); goto done; }
    }
    rc = 0;
done:
    free(img);
    free(rgb);
    sdc_npy_free(&z);
    sdc_model_free(m);
    return rc;
}
