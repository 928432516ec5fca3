/* cli/cmd_unet.c: `sdc unet -m MODEL --latent X.npy --timestep T --context C.npy -o EPS.npy
 * [--save-temb TEMB.npy]`
 * One UNet call: X [B, 4, h, w], C [B, 77*k, D] (a batch-1 context is used for every row),
 * T in 0..999 (fractional allowed, as k-diffusion passes it). Writes eps [B, 4, h, w]; with
 * --save-temb also the post-SiLU time embedding [1, time_dim] of T (what an exported UNet takes). */
#include "cli.h"
#include "io/npy.h"
#include "pipeline/runner.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(void) {
    printf("usage: sdc unet -m MODEL --latent X.npy --timestep T --context C.npy [-t THREADS] -o EPS.npy\n"
           "                [--save-temb TEMB.npy] [--lora FILE.safetensors[:WEIGHT]]...\n"
           "  X [B, 4, h, w] float32, C [B or 1, 77*k, D] float32, T in 0..999 (fractional allowed)\n");
}

int cmd_unet(int argc, char **argv) {
    const char *C = "unet", *model_path = NULL, *latent_path = NULL, *ctx_path = NULL, *out_path = NULL,
               *temb_path = NULL;
    double timestep = -1.0;
    int threads = 0, have_t = 0;
    static const struct option opts[] = {
        {"model", required_argument, 0, 'm'},   {"latent", required_argument, 0, 'x'},
        {"timestep", required_argument, 0, 'T'}, {"context", required_argument, 0, 'c'},
        {"threads", required_argument, 0, 't'}, {"output", required_argument, 0, 'o'},
        {"save-temb", required_argument, 0, 'S'}, {"lora", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0}};
    CLI_GETOPT_RESET();
    for (int c; (c = getopt_long(argc, argv, ":m:t:o:h", opts, NULL)) != -1;) {
        switch (c) {
        case 'm': model_path = optarg; break;
        case 'x': latent_path = optarg; break;
        case 'c': ctx_path = optarg; break;
        case 'o': out_path = optarg; break;
        case 'S': temb_path = optarg; break;
        case 'L': if (cli_lora_option(C, optarg)) return 1; break;
        case 'T': if (cli_float_arg(C, "--timestep", optarg, 0.0, 999.0, &timestep)) return 1; have_t = 1; break;
        case 't': if (cli_int_arg(C, "--threads", optarg, 1, 256, &threads)) return 1; break;
        case 'h': usage(); return 0;
        case ':': return cli_fail(C, "option %s needs a value", argv[optind - 1]);
        default: return cli_fail(C, "unknown option %s (see sdc unet --help)", argv[optind - 1]);
        }
    }
    if (optind < argc) return cli_fail(C, "unexpected argument '%s'", argv[optind]);
    if (!latent_path) return cli_fail(C, "no latent given (--latent X.npy)");
    if (!ctx_path) return cli_fail(C, "no context given (--context C.npy)");
    if (!have_t) return cli_fail(C, "no timestep given (--timestep T)");
    if (!out_path) return cli_fail(C, "no output given (-o EPS.npy)");

    sdc_error e = {0};
    sdc_npy x = {0}, ctx = {0};
    sdc_model *m = NULL;
    float *ctxb = NULL, *eps = NULL, *t = NULL;
    int rc = 1;
    if (sdc_npy_read_f32(latent_path, &x, &e) || sdc_npy_read_f32(ctx_path, &ctx, &e)) {
        cli_fail(C, "%s", e.msg);
        goto done;
    }
    if (cli_load_model(C, model_path, threads, &m)) goto done;
    sdc_model_desc d;
    sdc_model_describe(m, &d);
    if (x.ndim != 4 || x.shape[1] != d.latent_channels) {
        cli_fail(C, "%s: latent must be [B, %d, h, w]", latent_path, d.latent_channels);
        goto done;
    }
    int64_t B = x.shape[0];
    int ctx_batch = ctx.ndim == 3 ? (int)ctx.shape[0] : 1;
    int64_t T = ctx.ndim == 3 ? ctx.shape[1] : ctx.ndim == 2 ? ctx.shape[0] : 0;
    int64_t D = ctx.ndim >= 2 ? ctx.shape[ctx.ndim - 1] : 0;
    if ((ctx.ndim != 2 && ctx.ndim != 3) || D != d.unet_ctx_dim || T % 77 != 0 || T == 0 ||
        (ctx_batch != B && ctx_batch != 1)) {
        cli_fail(C, "%s: context must be [%lld or 1, 77*k, %d]", ctx_path, (long long)B, d.unet_ctx_dim);
        goto done;
    }
    size_t per_row = (size_t)(T * D);
    ctxb = malloc((size_t)B * per_row * sizeof(float));
    eps = malloc((size_t)x.numel * sizeof(float));
    t = malloc((size_t)B * sizeof(float));
    if (!ctxb || !eps || !t) { cli_fail(C, "out of memory"); goto done; }
    for (int64_t b = 0; b < B; b++) {
        memcpy(ctxb + b * per_row, ctx.data + (ctx_batch == 1 ? 0 : b) * per_row, per_row * sizeof(float));
        t[b] = (float)timestep;
    }
    char err[512];
    if (sdc_unet_eval(m, x.data, (int)B, (int)x.shape[2], (int)x.shape[3], t, ctxb, (int)T, eps, err,
                      sizeof err) != SDC_OK) {
        cli_fail(C, "%s", err);
        goto done;
    }
    if (sdc_npy_write_f32(out_path, eps, 4, x.shape, &e) != SDC_OK) { cli_fail(C, "%s", e.msg); goto done; }
    if (temb_path) { // the UNet's time MLP alone: SiLU(time_embed(t)) [1, time_dim]
        sdc_runner r;
        if (sdc_runner_temb(&r, m, 1, &e) != SDC_OK) { cli_fail(C, "%s", e.msg); goto done; }
        sdc_runner_input(&r, 0)[0] = (float)timestep;
        int64_t ts[2] = {1, r.g.nodes[r.out].shape[1]};
        if (sdc_runner_run(&r, NULL, &e) != SDC_OK ||
            sdc_npy_write_f32(temb_path, sdc_runner_output(&r), 2, ts, &e) != SDC_OK) {
            sdc_runner_free(&r);
            cli_fail(C, "%s", e.msg);
            goto done;
        }
        sdc_runner_free(&r);
    }
    rc = 0;
done:
    free(ctxb);
    free(eps);
    free(t);
    sdc_npy_free(&x);
    sdc_npy_free(&ctx);
    sdc_model_free(m);
    return rc;
}
