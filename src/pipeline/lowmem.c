/* src/pipeline/lowmem.c: component release, weight streaming and the tiled VAE decode. */
#include "pipeline/lowmem.h"

#include "core/rss.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The model's tensors may be dropped only when they live in a read-only file mapping (a model
 * built in memory, from a converted .ckpt say, would be zeroed by MADV_DONTNEED). */
static int model_is_mapped(const sdc_model *m) {
    const void *base = m && m->st ? sdc_st_file_bytes(m->st) : NULL;
    return base && sdc_is_file_mapping(base, sdc_st_file_size(m->st));
}

void sdc_model_release(const sdc_model *m, const char *prefix) {
    if (!prefix || !model_is_mapped(m)) return;
    size_t plen = strlen(prefix), n = sdc_st_count(m->st);
    for (size_t i = 0; i < n; i++) {
        const sdc_st_tensor *t = sdc_st_get(m->st, i);
        if (t && !strncmp(t->name, prefix, plen)) sdc_pages_release(t->data, t->nbytes);
    }
}

void sdc_runner_stream_weights(sdc_runner *r, const sdc_model *m) {
    if (!model_is_mapped(m)) return; /* weights then stay resident: correct, only larger */
    const char *base = sdc_st_file_bytes(m->st);
    r->plan.release_lo = base;
    r->plan.release_hi = base ? base + sdc_st_file_size(m->st) : NULL;
}

int sdc_tile_starts(int L, int T, int O, int *starts, int cap) {
    if (L < 1 || T < 1 || T > L || O < 0 || (T < L && O >= T) || cap < 1) return -1;
    if (T == L) {
        starts[0] = 0;
        return 1;
    }
    int n = (L - O + (T - O) - 1) / (T - O); /* ceil((L - O) / (T - O)) >= 2 */
    if (n > cap) return -1;
    for (int i = 0; i < n; i++) /* round(i * (L - T) / (n - 1)): steps <= T - O */
        starts[i] = (int)(((int64_t)i * (L - T) * 2 + (n - 1)) / (2 * (n - 1)));
    return n;
}

/* The smallest tile length <= T that covers L with as few tiles as T does (overlap O < T). */
static int shrink_tile(int L, int T, int O) {
    if (T >= L) return L;
    int n = (L - O + (T - O) - 1) / (T - O);
    int t = (L - O + n - 1) / n + O; /* n tiles of t cover n (t - O) + O >= L */
    return t < T ? t : T;
}

void sdc_vae_tile_size(int h, int w, long budget, int overlap, int *tile_h, int *tile_w) {
    if (budget < 1) budget = 1;
    if (h < 1 || w < 1 || (long)h * w <= budget) { /* (empty latents are refused by the decoder) */
        *tile_h = h;
        *tile_w = w;
    } else if (budget / w > overlap) { /* full-width strips: no vertical seams */
        long t = budget / w;
        *tile_w = w;
        *tile_h = shrink_tile(h, t < h ? (int)t : h, overlap);
    } else { /* square tiles */
        int t = (int)sqrt((double)budget);
        if (t <= overlap) t = overlap + 1;
        *tile_h = shrink_tile(h, t < h ? t : h, overlap);
        *tile_w = shrink_tile(w, t < w ? t : w, overlap);
    }
}

/* Blend weights of one tile along one axis, in output pixels: 1 inside, ramping linearly to near 0
 * across the part shared with the previous (ov_lo pixels) and the next tile (ov_hi pixels). */
static void ramp(float *wt, int len, int ov_lo, int ov_hi) {
    for (int x = 0; x < len; x++) {
        float v = 1.0f;
        if (x < ov_lo) v = ((float)x + 0.5f) / (float)ov_lo;
        if (x >= len - ov_hi) {
            float d = ((float)(len - x) - 0.5f) / (float)ov_hi;
            if (d < v) v = d;
        }
        wt[x] = v;
    }
}

sdc_status sdc_vae_decode_tiled(const sdc_model *m, const float *z, int h, int w, int tile_h, int tile_w, int overlap,
                                int stream, sdc_pool *pool, float *image, double *flops,
                                size_t *arena_bytes, sdc_error *err) {
    if (h < 1 || w < 1 || h > 4096 || w > 4096 || tile_h < 1 || tile_w < 1 || overlap < 0 ||
        (tile_h < h && overlap >= tile_h) || (tile_w < w && overlap >= tile_w))
        return sdc_fail(err, SDC_E_INVALID_ARG,
                        "tiled VAE decode: latent %dx%d, tile %dx%d, overlap %d (0 <= overlap < tile)", h, w, tile_h,
                        tile_w, overlap);
    const int th = tile_h < h ? tile_h : h, tw = tile_w < w ? tile_w : w;
    const int C = m->vae.z_ch, OC = m->vae.out_ch, H = 8 * h, W = 8 * w, TH = 8 * th, TW = 8 * tw;
    int *ys = malloc((size_t)(h + w + 2) * sizeof(int)), *xs = ys ? ys + h + 1 : NULL;
    float *wsum = malloc((size_t)H * W * sizeof(float));
    float *wy = malloc((size_t)(TH + TW) * sizeof(float)), *wx = wy ? wy + TH : NULL;
    sdc_runner r = {0};
    sdc_status s = SDC_OK;
    if (!ys || !wsum || !wy) {
        s = sdc_fail(err, SDC_E_NOMEM, "tiled VAE decode: out of memory");
        goto done;
    }
    int ny = sdc_tile_starts(h, th, overlap, ys, h + 1), nx = sdc_tile_starts(w, tw, overlap, xs, w + 1);
    if (ny < 1 || nx < 1) {
        s = sdc_fail(err, SDC_E_INVALID_ARG, "tiled VAE decode: cannot tile %dx%d by %dx%d", h, w, th, tw);
        goto done;
    }
    if ((s = sdc_runner_vae(&r, m, 1, th, tw, 0, err)) != SDC_OK) goto done;
    if (stream) sdc_runner_stream_weights(&r, m);
    if (flops) *flops = sdc_graph_flops(&r.g, NULL) * nx * ny;
    if (arena_bytes) *arena_bytes = r.plan.arena_floats * sizeof(float);
    memset(image, 0, (size_t)OC * H * W * sizeof(float));
    memset(wsum, 0, (size_t)H * W * sizeof(float));
    for (int iy = 0; iy < ny; iy++)
        for (int ix = 0; ix < nx; ix++) {
            int y0 = ys[iy], x0 = xs[ix];
            // tile input [1, C, th, tw] cut from z [1, C, h, w]
            float *in = sdc_runner_input(&r, 0);
            for (int c = 0; c < C; c++)
                for (int y = 0; y < th; y++)
                    memcpy(in + ((size_t)c * th + y) * tw, z + ((size_t)c * h + y0 + y) * w + x0,
                           (size_t)tw * sizeof(float));
            if ((s = sdc_runner_run(&r, pool, err)) != SDC_OK) goto done;
            const float *out = sdc_runner_output(&r); // [1, OC, TH, TW]
            if (nx * ny == 1) {
                memcpy(image, out, (size_t)OC * H * W * sizeof(float));
                goto done;
            }
            ramp(wy, TH, iy > 0 ? 8 * (ys[iy - 1] + th - y0) : 0, iy + 1 < ny ? 8 * (y0 + th - ys[iy + 1]) : 0);
            ramp(wx, TW, ix > 0 ? 8 * (xs[ix - 1] + tw - x0) : 0, ix + 1 < nx ? 8 * (x0 + tw - xs[ix + 1]) : 0);
            for (int y = 0; y < TH; y++) {
                size_t row = (size_t)(8 * y0 + y) * W + 8 * x0;
                for (int x = 0; x < TW; x++) wsum[row + x] += wy[y] * wx[x];
                for (int c = 0; c < OC; c++) {
                    float *dst = image + (size_t)c * H * W + row;
                    const float *src = out + ((size_t)c * TH + y) * TW;
                    for (int x = 0; x < TW; x++) dst[x] += wy[y] * wx[x] * src[x];
                }
            }
        }
    for (int c = 0; c < OC; c++)
        for (size_t i = 0; i < (size_t)H * W; i++) image[(size_t)c * H * W + i] /= wsum[i];
done:
    sdc_runner_free(&r);
    free(ys);
    free(wsum);
    free(wy);
    return s;
}
