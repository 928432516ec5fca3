/* bench/bench_model.c: load time, resident memory after load, and per-stage times of a checkpoint.
 *
 *   bench_model MODEL [THREADS]
 *
 * Prints one row per measurement: load (mmap + index + checks), RSS after load (the mapping is
 * not touched, so this is what loading costs), text encoder for one prompt (tokenize + CLIP,
 * batch 1), the UNet time MLP, one UNet call at batch 2 (CFG) on a 64x64 latent (512 px), and
 * RSS after those runs (weights paged in). */
#include "sdc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static long status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t k = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, k)) v = strtol(line + k + 1, NULL, 10);
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_model MODEL [THREADS] [LATENT_H LATENT_W]\n");
        return 2;
    }
    int threads = argc > 2 ? atoi(argv[2]) : 0;
    int lh = argc > 4 ? atoi(argv[3]) : 64, lw = argc > 4 ? atoi(argv[4]) : 64;
    char err[512];
    sdc_model_params mp = sdc_model_params_default();
    mp.path = argv[1];
    mp.n_threads = threads;
    sdc_model *m;
    double t0 = now_s();
    if (sdc_model_load(&mp, &m, err, sizeof err) != SDC_OK) {
        fprintf(stderr, "load: %s\n", err);
        return 1;
    }
    double t_load = now_s() - t0;
    printf("%-40s %10.3f s\n", "load (mmap, index, checks)", t_load);
    printf("%-40s %10.1f MB\n", "RSS after load", status_kb("VmRSS:") / 1024.0);

    sdc_model_desc d;
    sdc_model_describe(m, &d);
    sdc_tokenizer *tok;
    if (sdc_tokenizer_new(&tok, err, sizeof err) != SDC_OK) return 1;
    int32_t ids[77];
    float *ctx = malloc(sizeof(float) * 2 * 77 * (size_t)d.text_width);
    for (int rep = 0; rep < 2; rep++) {
        t0 = now_s();
        sdc_tokenize(tok, "a photo of an astronaut riding a horse on mars, highly detailed", ids, err, sizeof err);
        if (sdc_encode_ids(m, ids, 1, 1, ctx, err, sizeof err) != SDC_OK) {
            fprintf(stderr, "encode: %s\n", err);
            return 1;
        }
        printf("%-40s %10.3f s\n", rep ? "text encoder, one prompt (warm)" : "text encoder, one prompt (cold)", now_s() - t0);
    }
    memcpy(ctx + 77 * d.text_width, ctx, sizeof(float) * 77 * (size_t)d.text_width);
    float t[2] = {999.0f, 999.0f}, *temb = malloc(sizeof(float) * 2 * (size_t)d.unet_time_dim);
    t0 = now_s();
    if (sdc_unet_time_embedding(m, t, 2, temb, err, sizeof err) != SDC_OK) return 1;
    printf("%-40s %10.3f s\n", "UNet time MLP (batch 2)", now_s() - t0);
    size_t n = (size_t)2 * 4 * (size_t)lh * (size_t)lw;
    float *x = malloc(n * sizeof(float)), *eps = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 2654435761u) % 1000) / 500.0f - 1.0f;
    t0 = now_s();
    if (sdc_unet_eval(m, x, 2, lh, lw, t, ctx, 77, eps, err, sizeof err) != SDC_OK) {
        fprintf(stderr, "unet: %s\n", err);
        return 1;
    }
    char label[64];
    snprintf(label, sizeof label, "UNet call, batch 2, latent %dx%d", lw, lh);
    printf("%-40s %10.3f s\n", label, now_s() - t0);
    printf("%-40s %10.1f MB\n", "peak RSS (VmHWM)", status_kb("VmHWM:") / 1024.0);
    free(x);
    free(eps);
    free(temb);
    free(ctx);
    sdc_tokenizer_free(tok);
    sdc_model_free(m);
    return 0;
}
