/* src/pipeline/lowmem.h: what keeps a generation's peak memory down.
 *
 * Weights stay in the checkpoint's read-only file mapping; what costs RSS is the pages that have
 * been read. Three levers, all exact (the numbers computed do not change, only what is resident):
 *   - sdc_model_release(m, prefix) drops a whole component's pages once it is done (the text
 *     encoder after the prompts are encoded, the UNet before the VAE runs): a later use faults
 *     them back in from the page cache;
 *   - sdc_runner_stream_weights(r, m) drops each weight right after the op that read it, so a run
 *     holds about one layer's weights at a time (low-memory mode; costs the page faults of
 *     re-reading every weight once per run);
 * and one approximate lever, the tiled VAE decode below (low-memory mode), which bounds the VAE's
 * activation arena by the tile size instead of the image size. */
#ifndef SDC_PIPELINE_LOWMEM_H
#define SDC_PIPELINE_LOWMEM_H

#include "pipeline/runner.h"

/* Low-memory mode's VAE tiles: at most this many latent pixels per tile (the decoder's arena is
 * about 164 KB per latent pixel: 420 MB), neighbours overlapping by at least 8 latent pixels
 * (64 image pixels). 320x480 (2400 latent pixels) then decodes whole, exactly; 512x512 as two
 * full-width strips of 36 x 64 (a 377 MB arena instead of 671 MB) for 1.125x the VAE's FLOPs. */
#define SDC_LOWMEM_VAE_TILE_PIXELS 2560
#define SDC_LOWMEM_VAE_OVERLAP 8

/* Drops the resident pages of every tensor whose name starts with prefix (e.g. SDC_CLIP_PREFIX).
 * Both calls do nothing unless the checkpoint is a read-only file mapping (sdc_is_file_mapping):
 * weights held in memory any other way are never touched. */
void sdc_model_release(const sdc_model *m, const char *prefix);

/* Makes r drop each mapped weight from memory after the op that used it (see sdc_cpu_plan). */
void sdc_runner_stream_weights(sdc_runner *r, const sdc_model *m);

/* The tile shape for a latent of h x w within `budget` latent pixels: the whole latent if it fits;
 * else full-width strips if a strip taller than the overlap fits, else square tiles; in each case
 * the fewest tiles, then the smallest tile that keeps that count (the least overlap work). */
void sdc_vae_tile_size(int h, int w, long budget, int overlap, int *tile_h, int *tile_w);

/* Tile origins along one axis of length L for tiles of T (<= L) that overlap by at least O
 * (0 <= O < T): the fewest tiles that do, spread evenly, the first at 0 and the last at L - T.
 * Writes at most `cap` starts; returns the count, or -1 on bad arguments. */
int sdc_tile_starts(int L, int T, int O, int *starts, int cap);

/* VAE decoder in tiles: z [1, z_ch, h, w] (already divided by 0.18215) -> image [1, 3, 8h, 8w].
 * Tiles of tile_h x tile_w latent pixels (clamped to h, w) overlapping by at least `overlap` (per
 * axis that needs more than one tile) are decoded one
 * at a time on one graph (one arena of the tile's size) and blended with weights that ramp
 * linearly across each overlap. Each tile's group norms see only that tile, so the result
 * differs slightly from the whole decode (see tests/unit/test_lowmem.c for the measured size);
 * when one tile covers the latent (tile_h >= h, tile_w >= w) the result is the untiled decode bit for
 * bit. stream: drop each weight after use (sdc_runner_stream_weights). *flops (may be NULL)
 * receives the FLOPs of all the tiles (direct-convolution count, src/graph/graph.h), *arena_bytes
 * (may be NULL) the size of the tile graph's activation arena. */
sdc_status sdc_vae_decode_tiled(const sdc_model *m, const float *z, int h, int w, int tile_h, int tile_w, int overlap,
                                int stream, sdc_pool *pool, float *image, double *flops,
                                size_t *arena_bytes, sdc_error *err);

#endif
