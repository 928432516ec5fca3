/* src/io/png.h: 8-bit RGB PNG writing with the A1111 `parameters` text chunk, and the float image
 * to uint8 conversion that comes before it.
 *
 *     uint8_t *rgb = malloc((size_t)h * w * 3);
 *     sdc_image_to_u8(image, h, w, rgb);                 // [1, 3, H, W] in [-1, 1] -> [H, W, 3]
 *     char *info = sdc_infotext(&ip);                    // pipeline/infotext.h
 *     sdc_png_write("out.png", rgb, w, h, info, &err);
 *
 * Text chunk: the keyword is "parameters", as stable-diffusion-webui writes it, so its PNG Info
 * tab, Civitai and other readers find the generation settings. Like webui (Pillow's
 * PngInfo.add_text) the chunk is a tEXt chunk holding Latin-1 when every character of the text is
 * U+0000..U+00FF, and an uncompressed iTXt chunk (UTF-8, empty language and translated keyword)
 * otherwise. The text is given as UTF-8; invalid UTF-8 is refused (SDC_E_INVALID_ARG), since
 * neither chunk type could carry it faithfully. The chunk precedes the image data.
 *
 * sdc_png_write writes PATH.tmp and renames it over PATH, so PATH is never left half-written; the
 * temporary is removed on failure. sdc_png_write_to_func streams the same bytes to a callback
 * (stb_image_write's _to_func style) for in-memory or network output.
 */
#ifndef SDC_IO_PNG_H
#define SDC_IO_PNG_H

#include "core/error.h"
#include <stddef.h>
#include <stdint.h>

/* Largest width or height accepted (libpng's default user limit). */
#define SDC_PNG_MAX_DIM 1000000

/* Receives the next `len` bytes of the PNG; returns 0 on success, non-zero to abort the write. */
typedef int (*sdc_png_write_fn)(void *ctx, const void *data, size_t len);

/* Writes `rgb` ([height, width, 3] uint8, row-major, no padding) as an 8-bit RGB PNG to `path`,
 * atomically. `parameters` (UTF-8) becomes the "parameters" text chunk; NULL writes none. */
sdc_status sdc_png_write(const char *path, const uint8_t *rgb, int width, int height,
                         const char *parameters, sdc_error *err);

/* Same bytes, handed to `fn` in pieces. A non-zero return from `fn` stops the write with
 * SDC_E_IO. */
sdc_status sdc_png_write_to_func(sdc_png_write_fn fn, void *ctx, const uint8_t *rgb, int width,
                                 int height, const char *parameters, sdc_error *err);

/* Converts one image [3, height, width] float (RGB, nominal range [-1, 1]; a [1, 3, H, W] batch
 * of one is the same memory) to [height, width, 3] uint8 exactly as diffusers' postprocess does:
 * round(clamp(x / 2 + 0.5, 0, 1) * 255), all in float32, rounding half to even (numpy's round).
 * NaN becomes 0. (webui itself truncates instead of rounding: `(255. * x).astype(np.uint8)`;
 * sdc follows diffusers, which the golden tests pin down.) */
void sdc_image_to_u8(const float *image, int height, int width, uint8_t *rgb);

#endif
