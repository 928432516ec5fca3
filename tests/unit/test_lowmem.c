/* tests/unit/test_lowmem.c: the memory levers of src/pipeline/lowmem.h, on the tiny model.
 *
 *  - tile placement: first tile at 0, last flush with the end, neighbours overlap >= O, fewest tiles;
 *  - tiled VAE decode: bit-identical to the whole decode when one tile covers the latent (with and
 *    without weight streaming); with real tiles, within a stated tolerance of it (each tile's
 *    group norms and mid-block attention see only the tile: that is the deviation measured);
 *  - weight streaming and component release are exact: the same UNet output after the pages were
 *    dropped, and the mapping's resident size shows the pages really go (/proc/self/smaps);
 *  - txt2img --low-memory gives the same latent and picture as the normal path (bit for bit: the
 *    weights' values do not change, and at 64x64 one VAE tile covers the latent).
 * No timing assertions. */
#include "core/rss.h"
#include "pipeline/lowmem.h"
#include "test.h"

#include <stdint.h>

#define TINY SDC_SHARED_DIR "/testdata/tiny/sd15-tiny-f32.safetensors"

static void test_tile_starts(void) {
    int s[64];
    CHECK(sdc_tile_starts(64, 40, 8, s, 64) == 2 && s[0] == 0 && s[1] == 24, "64 by 40: 0, 24");
    CHECK(sdc_tile_starts(64, 64, 8, s, 64) == 1 && s[0] == 0, "one tile covers 64");
    CHECK(sdc_tile_starts(60, 40, 8, s, 64) == 2 && s[0] == 0 && s[1] == 20, "60 by 40: 0, 20");
    CHECK(sdc_tile_starts(100, 40, 8, s, 64) == 3 && s[0] == 0 && s[1] == 30 && s[2] == 60, "100 by 40: 0, 30, 60");
    CHECK(sdc_tile_starts(10, 12, 2, s, 64) == -1, "tile longer than the axis refused");
    CHECK(sdc_tile_starts(20, 8, 8, s, 64) == -1, "overlap >= tile refused");
    CHECK(sdc_tile_starts(0, 8, 2, s, 64) == -1 && sdc_tile_starts(20, 8, -1, s, 64) == -1, "bad lengths refused");
    CHECK(sdc_tile_starts(200, 3, 2, s, 64) == -1, "more tiles than the caller's room refused");
    int bad = 0;
    for (int L = 1; L <= 70; L++)
        for (int T = 1; T <= L; T++)
            for (int O = 0; O < T; O++) {
                int want = T == L ? 1 : (L - O + T - O - 1) / (T - O), n = sdc_tile_starts(L, T, O, s, 64);
                if (want > 64) continue;
                if (n != want) {
                    bad++;
                    continue;
                }
                if (s[0] != 0 || s[n - 1] != L - T) bad++;
                for (int i = 1; i < n; i++)
                    if (s[i] <= s[i - 1] || s[i - 1] + T - s[i] < O) bad++;
                if (n > 1 && (n - 2) * (T - O) + T >= L) bad++; /* one tile fewer would have done */
            }
    CHECK(bad == 0, "%d tile layouts break first/last/overlap/fewest", bad);

    /* low-memory's tile shapes (budget 2560 latent pixels, overlap 8) */
    int th, tw;
    sdc_vae_tile_size(64, 64, 2560, 8, &th, &tw);
    CHECK(th == 36 && tw == 64, "512x512: strips of 36 x 64, got %d x %d", th, tw);
    sdc_vae_tile_size(40, 60, 2560, 8, &th, &tw);
    CHECK(th == 40 && tw == 60, "320x480 fits whole, got %d x %d", th, tw);
    sdc_vae_tile_size(128, 128, 2560, 8, &th, &tw);
    CHECK(th == 20 && tw == 128, "1024x1024: strips of 20 x 128, got %d x %d", th, tw);
    sdc_vae_tile_size(64, 256, 1000, 8, &th, &tw); /* a strip would be under 9 rows: square tiles */
    CHECK(th > 8 && tw > 8 && th * tw <= 1000 && tw < 256, "wide latent: square tiles, got %d x %d", th, tw);
}

static double max_abs_diff(const float *a, const float *b, size_t n, double *range) {
    double m = 0.0, lo = a[0], hi = a[0];
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
        if (a[i] < lo) lo = a[i];
        if (a[i] > hi) hi = a[i];
    }
    if (range) *range = hi - lo;
    return m;
}

static void test_tiled_vae(sdc_model *m, sdc_pool *pool) {
    const int h = 16, w = 12, C = m->vae.z_ch;
    size_t nz = (size_t)C * h * w, ni = (size_t)3 * 64 * h * w;
    float *z = malloc(nz * sizeof(float)), *ref = malloc(ni * sizeof(float)), *img = malloc(ni * sizeof(float));
    uint32_t st = 12345;
    for (size_t i = 0; i < nz; i++) { /* a smooth field plus noise, as latents look */
        st = st * 1664525u + 1013904223u;
        z[i] = (float)(sin(0.3 * (double)(i % (size_t)w)) + cos(0.2 * (double)(i / (size_t)w)) +
                       ((double)(st >> 8) / 16777216.0 - 0.5)) * 4.0f;
    }
    sdc_runner r;
    sdc_error e = {0};
    CHECK(sdc_runner_vae(&r, m, 1, h, w, 0, &e) == SDC_OK, "VAE runner: %s", e.msg);
    memcpy(sdc_runner_input(&r, 0), z, nz * sizeof(float));
    CHECK(sdc_runner_run(&r, pool, &e) == SDC_OK, "VAE run: %s", e.msg);
    memcpy(ref, sdc_runner_output(&r), ni * sizeof(float));
    size_t whole_arena = r.plan.arena_floats * sizeof(float), tile_arena = 0;
    sdc_runner_free(&r);

    double fl = 0.0;
    CHECK(sdc_vae_decode_tiled(m, z, h, w, 16, 16, 4, 0, pool, img, &fl, NULL, &e) == SDC_OK, "one tile: %s", e.msg);
    CHECK(memcmp(img, ref, ni * sizeof(float)) == 0, "one tile covering the latent is the whole decode bit for bit");
    CHECK(fl > 0.0, "FLOPs reported");
    CHECK(sdc_vae_decode_tiled(m, z, h, w, 64, 64, 0, 1, pool, img, NULL, NULL, &e) == SDC_OK, "one tile, streamed: %s", e.msg);
    CHECK(memcmp(img, ref, ni * sizeof(float)) == 0, "streamed weights: still bit for bit");

    /* real tiles: 8x8 latent tiles overlapping by >= 4 (3 x 2 tiles) */
    double fl2 = 0.0, range = 0.0;
    CHECK(sdc_vae_decode_tiled(m, z, h, w, 8, 8, 4, 1, pool, img, &fl2, &tile_arena, &e) == SDC_OK, "8x8 tiles: %s", e.msg);
    CHECK(tile_arena > 0 && tile_arena * 2 < whole_arena, "the tile's arena (%zu B) is under half the whole one (%zu B)",
          tile_arena, whole_arena);
    double err = max_abs_diff(ref, img, ni, &range), mean = 0.0;
    for (size_t i = 0; i < ni; i++) mean += fabs((double)ref[i] - (double)img[i]);
    mean /= (double)ni;
    printf("  tiled VAE (tiny model, latent 16x12, tiles 8 overlap >= 4): max |diff| %.4f, mean %.4f, "
           "output range %.3f, FLOPs x%.2f\n", err, mean, range, fl2 / fl);
    CHECK(fl2 > fl, "the overlap costs FLOPs");
    /* the tiles' own group-norm statistics move values by a fraction of the range; a wrong blend
     * (tile misplaced, weights not normalised) moves them by the whole range */
    CHECK_CLOSE(mean / range, 0.05, "tiled VAE mean |diff| / output range");
    CHECK_CLOSE(err / range, 0.5, "tiled VAE max |diff| / output range");
    /* tiles that only touch (no overlap) are accepted too */
    CHECK(sdc_vae_decode_tiled(m, z, h, w, 8, 8, 0, 0, pool, img, NULL, NULL, &e) == SDC_OK, "no overlap: %s", e.msg);
    /* full-width strips, the shape low-memory mode uses: 2 strips of 10 x 12 */
    CHECK(sdc_vae_decode_tiled(m, z, h, w, 10, w, 4, 0, pool, img, &fl2, NULL, &e) == SDC_OK, "strips: %s", e.msg);
    err = max_abs_diff(ref, img, ni, &range);
    mean = 0.0;
    for (size_t i = 0; i < ni; i++) mean += fabs((double)ref[i] - (double)img[i]);
    mean /= (double)ni;
    printf("  tiled VAE, 2 strips of 10x12 latent: max |diff| %.4f, mean %.4f, FLOPs x%.2f\n", err, mean, fl2 / fl);
    CHECK_CLOSE(mean / range, 0.05, "strips mean |diff| / output range");
    CHECK_CLOSE(err / range, 0.5, "strips max |diff| / output range");
    CHECK(sdc_vae_decode_tiled(m, z, h, w, 8, 8, 8, 0, pool, img, NULL, NULL, &e) == SDC_E_INVALID_ARG,
          "overlap >= tile refused");
    CHECK(sdc_vae_decode_tiled(m, z, 0, w, 8, 8, 2, 0, pool, img, NULL, NULL, &e) == SDC_E_INVALID_ARG,
          "empty latent refused");
    CHECK(sdc_vae_decode_tiled(m, z, h, w, 0, 8, 2, 0, pool, img, NULL, NULL, &e) == SDC_E_INVALID_ARG,
          "zero tile refused");
    free(z);
    free(ref);
    free(img);
}

/* Resident kB of the mappings of the file whose path ends in `name` (-1 when unknown). In
 * /proc/self/smaps a mapping's header line starts with its hex address range, its fields
 * ("Rss:    12 kB") with a capitalised name. */
static long mapping_rss_kb(const char *name) {
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    char line[4096];
    long rss = -1, kb;
    int in = 0;
    size_t nl = strlen(name);
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        while (l && (line[l - 1] == '\n' || line[l - 1] == ' ')) line[--l] = '\0';
        if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')) {
            in = l > nl && !strcmp(line + l - nl, name);
            if (in && rss < 0) rss = 0;
        } else if (in && sscanf(line, "Rss: %ld kB", &kb) == 1) {
            rss += kb;
        }
    }
    fclose(f);
    return rss;
}

static void test_streaming(sdc_model *m, sdc_pool *pool) {
    size_t unet_bytes = 0;
    for (size_t i = 0; i < sdc_st_count(m->st); i++) {
        const sdc_st_tensor *t = sdc_st_get(m->st, i);
        if (!strncmp(t->name, SDC_UNET_PREFIX, strlen(SDC_UNET_PREFIX))) unet_bytes += t->nbytes;
    }
    /* only a read-only file mapping may be released: heap memory would be zeroed */
    char *heap = malloc(1 << 16);
    int have_proc = sdc_is_file_mapping(sdc_st_file_bytes(m->st), sdc_st_file_size(m->st));
    CHECK(!sdc_is_file_mapping(heap, 1 << 16) && !sdc_is_file_mapping(NULL, 1), "heap memory is not a file mapping");
    CHECK(!have_proc || !sdc_is_file_mapping(sdc_st_file_bytes(m->st), sdc_st_file_size(m->st) + (1 << 20)),
          "a range past the mapping's end is refused");
    printf("  checkpoint recognised as a file mapping: %s\n", have_proc ? "yes" : "no (no /proc: nothing is released)");
    free(heap);
    sdc_runner r;
    sdc_error e = {0};
    CHECK(sdc_runner_unet(&r, m, 2, 8, 8, 77, 0, 0, &e) == SDC_OK, "UNet runner: %s", e.msg);
    size_t nx = (size_t)2 * 4 * 64, nc = (size_t)2 * 77 * m->unet.ctx_dim;
    for (size_t i = 0; i < nx; i++) sdc_runner_input(&r, 0)[i] = (float)((i * 7919) % 2000) / 1000.0f - 1.0f;
    sdc_runner_input(&r, 1)[0] = 500.0f;
    sdc_runner_input(&r, 1)[1] = 250.0f;
    for (size_t i = 0; i < nc; i++) sdc_runner_input(&r, 2)[i] = (float)((i * 104729) % 2000) / 1000.0f - 1.0f;
    CHECK(sdc_runner_run(&r, pool, &e) == SDC_OK, "UNet run: %s", e.msg);
    float *ref = malloc(nx * sizeof(float));
    memcpy(ref, sdc_runner_output(&r), nx * sizeof(float));
    long resident = mapping_rss_kb("sd15-tiny-f32.safetensors");

    sdc_model_release(m, ""); /* every tensor of the file */
    long dropped = mapping_rss_kb("sd15-tiny-f32.safetensors");
    sdc_runner_stream_weights(&r, m);
    CHECK(sdc_runner_run(&r, pool, &e) == SDC_OK, "streamed UNet run: %s", e.msg);
    CHECK(memcmp(ref, sdc_runner_output(&r), nx * sizeof(float)) == 0, "streamed weights: same output bit for bit");
    long streamed = mapping_rss_kb("sd15-tiny-f32.safetensors");
    printf("  mapping RSS: after a normal run %ld kB, released %ld kB, after a streamed run %ld kB "
           "(UNet weights %zu kB)\n", resident, dropped, streamed, unet_bytes / 1024);
    if (resident >= 0 && have_proc) {
        CHECK(resident >= (long)(unet_bytes / 1024) * 9 / 10, "a normal run leaves the UNet's weights resident");
        CHECK(dropped < resident / 4, "sdc_model_release drops the pages: %ld of %ld kB left", dropped, resident);
        CHECK(streamed < (long)(unet_bytes / 1024) / 4, "a streamed run keeps few weights resident: %ld kB", streamed);
    } else {
        printf("  (no /proc/self/smaps: residency not checked)\n");
    }
    free(ref);
    sdc_runner_free(&r);
}

static void test_txt2img(sdc_model *m) {
    sdc_txt2img_params p = sdc_txt2img_params_default();
    p.prompt = "a photo of a cat";
    p.negative = "blurry";
    p.width = p.height = 64;
    p.steps = 3;
    p.seed = 7;
    p.n_threads = 2;
    p.profile = 1;
    char eb[512];
    sdc_image a = {0}, b = {0};
    CHECK(sdc_txt2img(m, &p, &a, eb, sizeof eb) == SDC_OK, "normal txt2img: %s", eb);
    p.low_memory = 1;
    CHECK(sdc_txt2img(m, &p, &b, eb, sizeof eb) == SDC_OK, "low-memory txt2img: %s", eb);
    if (a.latent && b.latent) {
        size_t n = (size_t)4 * 8 * 8;
        CHECK(memcmp(a.latent, b.latent, n * sizeof(float)) == 0, "low-memory latent bit-identical (max diff %g)",
              max_abs_diff(a.latent, b.latent, n, NULL));
        CHECK(memcmp(a.rgb, b.rgb, (size_t)64 * 64 * 3) == 0, "low-memory picture identical (one VAE tile at 64x64)");
        const sdc_timings *t = &a.timings;
        double ks = 0.0;
        for (int k = 0; k < 4; k++) ks += t->unet_kind_seconds[k];
        CHECK(t->unet_step_flops > 0.0 && t->vae_flops > 0.0 && b.timings.vae_flops == t->vae_flops,
              "FLOPs reported: step %g, VAE %g / %g", t->unet_step_flops, t->vae_flops, b.timings.vae_flops);
        CHECK(t->unet_kind_flops[0] + t->unet_kind_flops[1] + t->unet_kind_flops[2] + t->unet_kind_flops[3] ==
                  t->unet_step_flops,
              "kind FLOPs add up");
        CHECK(ks > 0.0 && ks <= t->unet_total * 1.01 + 1e-3, "profiled op time %g within the sampling time %g", ks,
              t->unet_total);
    }
    sdc_image_free(&a);
    sdc_image_free(&b);
}

int main(void) {
    test_tile_starts();
    char eb[512];
    sdc_model_params mp = sdc_model_params_default();
    mp.path = TINY;
    sdc_model *m = NULL;
    CHECK(sdc_model_load(&mp, &m, eb, sizeof eb) == SDC_OK, "load tiny model: %s", eb);
    if (m) {
        sdc_pool *pool = sdc_pool_new(2);
        test_tiled_vae(m, pool);
        test_streaming(m, pool);
        sdc_pool_free(pool);
        test_txt2img(m);
    }
    sdc_model_free(m);
    TEST_MAIN_END();
}
