/* cli/cmd_decode.c: the VAE decoder stage, with the full SD1.5 decoder or the vaelight preview.
 *
 *   sdc decode -m MODEL --latent Z [--latent-scaled] [-t THREADS] -o OUT.npy|OUT.png
 *   sdc decode --decoder vaelight [--decoder-path FILE] --latent Z [--latent-scaled] -o OUT
 *
 * Z is the sampler's latent [B, 4, h, w]: decode divides it by 0.18215 itself, unless
 * --latent-scaled says that was done already (the exported VAE decoder's input, and Axera's
 * calibration files). Z may be a float .npy; an .npy holding a pickled dict of arrays (pulsar2's
 * NumpyObject: its 'x', or its only array); or a .tar of such members, of which --member NAME or
 * --index N picks one (default the first), or --all DIR decodes every one to DIR/NAME.png.
 * Full decoder: .npy output is the raw decoder output [B, 3, 8h, 8w] before clamping. vaelight
 * (needs no -m; VAEpreview.onnx is found by sdc_vaelight_find): .npy output is the final image
 * [B, 3, 8h, 8w], clipped to [-1, 1]. .png: batch row 0 as 8-bit RGB,
 * round(clamp(x/2 + 0.5, 0, 1) * 255). */
#include "cli.h"
#include "core/threadpool.h"
#include "io/npy.h"
#include "io/pickle_dict.h"
#include "io/png.h"
#include "io/tar.h"
#include "model/vaelight.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(void) {
    printf("usage: sdc decode -m MODEL --latent Z [--latent-scaled] [-t THREADS] -o OUT.npy|OUT.png\n"
           "       sdc decode --decoder vaelight [--decoder-path FILE] --latent Z [--latent-scaled]\n"
           "                  [-t THREADS] -o OUT.npy|OUT.png\n"
           "  Z [B, 4, h, w] float32 in UNet space (divided by 0.18215 here unless --latent-scaled):\n"
           "    a .npy; an .npy holding a pickled dict (pulsar2 NumpyObject; its 'x' or only array);\n"
           "    or a .tar of those: --member NAME or --index N picks one (default: the first),\n"
           "    --all DIR decodes every member to DIR/NAME.png (instead of -o)\n"
           "  --decoder vae (default: the checkpoint's VAE, needs -m) or vaelight (the tiny preview\n"
           "    decoder VAEpreview.onnx; --decoder-path FILE, else $SDC_VAELIGHT, else data/vaelight/)\n"
           "  OUT.npy: vae: raw decoder output [B, 3, 8h, 8w], unclamped; vaelight: the image in\n"
           "    [-1, 1]; OUT.png: 8-bit RGB of row 0\n");
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Turns an .npy image (plain, or an object .npy holding a pickled dict) into z. */
static int latent_from_npy(const char *C, const void *buf, size_t len, const char *label,
                           sdc_npy *z) {
    sdc_error e = {0};
    if (!sdc_npy_is_object(buf, len)) {
        if (sdc_npy_parse_f32(buf, len, label, z, &e) != SDC_OK) return cli_fail(C, "%s", e.msg);
        return 0;
    }
    sdc_pickle_dict d;
    if (sdc_npy_object_parse(buf, len, label, &d, &e) != SDC_OK) return cli_fail(C, "%s", e.msg);
    const sdc_pickle_array *a = d.n == 1 ? &d.items[0] : sdc_pickle_dict_get(&d, "x");
    if (!a) {
        cli_fail(C, "%s: the pickled dict has %d arrays and none named 'x'", label, d.n);
        sdc_pickle_dict_free(&d);
        return 1;
    }
    memset(z, 0, sizeof *z);
    z->ndim = a->ndim;
    memcpy(z->shape, a->shape, sizeof(int64_t) * (size_t)a->ndim);
    z->numel = a->numel;
    z->data = a->data;
    d.items[a - d.items].data = NULL; /* z owns it now */
    sdc_pickle_dict_free(&d);
    return 0;
}

/* Reads a whole file (for .npy latents; bounded by npy's own checks after). */
static int read_file(const char *C, const char *path, unsigned char **buf, size_t *len) {
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f) return cli_fail(C, "%s: cannot open", path);
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return cli_fail(C, "%s: not a regular file", path);
    }
    *len = (size_t)st.st_size;
    *buf = malloc(*len ? *len : 1);
    if (!*buf) {
        fclose(f);
        return cli_fail(C, "%s: out of memory", path);
    }
    size_t got = fread(*buf, 1, *len, f);
    fclose(f);
    if (got != *len) {
        free(*buf);
        return cli_fail(C, "%s: read error", path);
    }
    return 0;
}

typedef struct decoder {
    const char *C;
    int scaled, png;
    sdc_model *m;       /* full VAE, or */
    sdc_vaelight *vl;   /* the preview decoder */
    sdc_pool *pool;
} decoder;

/* Decodes z (scaled in place unless already) and writes out_path. */
static int decode_to(decoder *dc, sdc_npy *z, const char *label, const char *out_path) {
    const char *C = dc->C;
    if (z->ndim != 4 || z->shape[1] != 4) return cli_fail(C, "%s: latent must be [B, 4, h, w]", label);
    if (dc->vl && (z->shape[0] < 1 || z->shape[2] < 1 || z->shape[3] < 1 ||
                   z->shape[2] > SDC_VAELIGHT_MAX_LATENT || z->shape[3] > SDC_VAELIGHT_MAX_LATENT))
        return cli_fail(C, "%s: latent size out of range for vaelight (h, w in 1..%d)", label,
                        SDC_VAELIGHT_MAX_LATENT);
    if (!dc->scaled)
        for (int64_t i = 0; i < z->numel; i++) z->data[i] /= 0.18215f;
    int B = (int)z->shape[0], h = (int)z->shape[2], w = (int)z->shape[3];
    size_t per = (size_t)3 * (size_t)h * 8 * (size_t)w * 8;
    float *img = malloc((size_t)B * per * sizeof(float));
    uint8_t *rgb = NULL;
    int rc = 1;
    sdc_error e = {0};
    if (!img) { cli_fail(C, "out of memory"); goto done; }
    if (dc->vl) {
        for (int b = 0; b < B; b++)
            if (sdc_vaelight_decode(dc->vl, z->data + (size_t)b * 4 * h * w, h, w, img + b * per,
                                    dc->pool, &e) != SDC_OK) {
                cli_fail(C, "%s", e.msg);
                goto done;
            }
    } else {
        char err[512];
        if (sdc_vae_decode(dc->m, z->data, B, h, w, img, err, sizeof err) != SDC_OK) { cli_fail(C, "%s", err); goto done; }
    }
    if (dc->png) {
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
    return rc;
}

/* A tar of latents: decodes the picked member, or every member into all_dir. */
static int decode_tar(decoder *dc, const char *path, const char *member, long long index,
                      const char *all_dir, const char *out_path) {
    const char *C = dc->C;
    sdc_error e = {0};
    sdc_tar t;
    if (sdc_tar_open(path, &t, &e) != SDC_OK) return cli_fail(C, "%s", e.msg);
    sdc_tar_member m;
    bool has;
    sdc_status st;
    long long k = 0;
    int found = 0, rc = 0;
    while ((st = sdc_tar_next(&t, &m, &has, &e)) == SDC_OK && has) {
        if (m.type != '0') continue;
        int pick = all_dir ? 1 : member ? strcmp(m.name, member) == 0 : k == index;
        k++;
        if (!pick) continue;
        found++;
        char label[4200], out[4200];
        snprintf(label, sizeof label, "%s:%s", path, m.name);
        if (all_dir) {
            const char *base = strrchr(m.name, '/');
            base = base ? base + 1 : m.name;
            size_t bl = strlen(base);
            if (bl > 4 && strcmp(base + bl - 4, ".npy") == 0) bl -= 4;
            if (bl == 0 || base[0] == '.') { rc = cli_fail(C, "%s: member has no usable file name", label); break; }
            snprintf(out, sizeof out, "%s/%.*s.png", all_dir, (int)bl, base);
        }
        sdc_npy z = {0};
        rc = latent_from_npy(C, m.data, (size_t)m.size, label, &z);
        if (!rc) rc = decode_to(dc, &z, label, all_dir ? out : out_path);
        sdc_npy_free(&z);
        if (rc || !all_dir) break;
        printf("%s -> %s\n", m.name, out);
    }
    if (!rc && st != SDC_OK) rc = cli_fail(C, "%s", e.msg);
    else if (!rc && !found) {
        if (member) rc = cli_fail(C, "%s: no member named '%s'", path, member);
        else if (all_dir) rc = cli_fail(C, "%s: no file members", path);
        else rc = cli_fail(C, "%s: --index %lld, but the archive has %lld file members", path, index, k);
    }
    sdc_tar_close(&t);
    return rc;
}

int cmd_decode(int argc, char **argv) {
    const char *C = "decode", *model_path = NULL, *latent_path = NULL, *out_path = NULL;
    const char *decoder_name = "vae", *decoder_path = NULL, *member = NULL, *all_dir = NULL;
    int threads = 0, scaled = 0, index = -1;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},  {"latent", required_argument, 0, 'x'},
        {"latent-scaled", no_argument, 0, 's'}, {"threads", required_argument, 0, 't'},
        {"output", required_argument, 0, 'o'}, {"help", no_argument, 0, 'h'},
        {"decoder", required_argument, 0, 'D'}, {"decoder-path", required_argument, 0, 'P'},
        {"member", required_argument, 0, 'M'}, {"index", required_argument, 0, 'I'},
        {"all", required_argument, 0, 'A'},
        {0, 0, 0, 0}};
    CLI_GETOPT_RESET();
    for (int c; (c = getopt_long(argc, argv, ":m:t:o:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'x': latent_path = optarg; break;
        case 's': scaled = 1; break;
        case 'o': out_path = optarg; break;
        case 't': if (cli_int_arg(C, "--threads", optarg, 1, 256, &threads)) return 1; break;
        case 'D': decoder_name = optarg; break;
        case 'P': decoder_path = optarg; break;
        case 'M': member = optarg; break;
        case 'I': if (cli_int_arg(C, "--index", optarg, 0, 1000000, &index)) return 1; break;
        case 'A': all_dir = optarg; break;
        case 'h': usage(); return 0;
        case ':': return cli_fail(C, "option %s needs a value", argv[optind - 1]);
        default: return cli_fail(C, "unknown option %s (see sdc decode --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_fail(C, "unexpected argument '%s'", argv[optind]);
    int light = strcmp(decoder_name, "vaelight") == 0;
    if (!light && strcmp(decoder_name, "vae") != 0)
        return cli_fail(C, "--decoder %s: expected vae or vaelight", decoder_name);
    if (decoder_path && !light) return cli_fail(C, "--decoder-path is for --decoder vaelight");
    if (light && model_path) return cli_fail(C, "-m is not used with --decoder vaelight");
    if (!latent_path) return cli_fail(C, "no latent given (--latent Z.npy)");
    int is_tar = ends_with(latent_path, ".tar");
    if ((member || index >= 0 || all_dir) && !is_tar)
        return cli_fail(C, "--member, --index and --all are for a .tar of latents");
    if ((member != NULL) + (index >= 0) + (all_dir != NULL) > 1)
        return cli_fail(C, "give one of --member, --index and --all");
    if (all_dir && out_path) return cli_fail(C, "--all DIR writes DIR/NAME.png; no -o with it");
    if (!all_dir && !out_path) return cli_fail(C, "no output given (-o OUT.npy or OUT.png)");
    int png = all_dir || ends_with(out_path, ".png");
    if (!png && !ends_with(out_path, ".npy")) return cli_fail(C, "%s: output must end in .npy or .png", out_path);
    if (all_dir) {
        struct stat st;
        if (stat(all_dir, &st) != 0 || !S_ISDIR(st.st_mode)) return cli_fail(C, "--all %s: not a directory", all_dir);
    }

    decoder dc = {C, scaled, png, NULL, NULL, NULL};
    sdc_npy z = {0};
    unsigned char *buf = NULL;
    size_t len = 0;
    int rc = 1;
    sdc_error e = {0};
    /* read a plain latent first: a bad latent is reported before a model is loaded */
    if (!is_tar) {
        if (read_file(C, latent_path, &buf, &len)) goto done;
        if (latent_from_npy(C, buf, len, latent_path, &z)) goto done;
        if (z.ndim != 4 || z.shape[1] != 4) { cli_fail(C, "%s: latent must be [B, 4, h, w]", latent_path); goto done; }
    }
    if (light) {
        char path[4096];
        if (sdc_vaelight_find(decoder_path, path, sizeof path, &e) != SDC_OK ||
            sdc_vaelight_load(path, &dc.vl, &e) != SDC_OK) {
            cli_fail(C, "%s", e.msg);
            goto done;
        }
        if (!(dc.pool = sdc_pool_new(threads))) { cli_fail(C, "cannot start %d threads", threads); goto done; }
    } else if (cli_load_model(C, model_path, threads, &dc.m)) {
        goto done;
    }
    rc = is_tar ? decode_tar(&dc, latent_path, member, index < 0 ? 0 : index, all_dir, out_path)
                : decode_to(&dc, &z, latent_path, out_path);
done:
    free(buf);
    sdc_npy_free(&z);
    sdc_model_free(dc.m);
    sdc_vaelight_free(dc.vl);
    sdc_pool_free(dc.pool);
    return rc;
}
