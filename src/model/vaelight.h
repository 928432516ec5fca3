/* src/model/vaelight.h: the vaelight preview decoder, a real trained tiny SD-latent decoder.
 *
 * VAEpreview.onnx (Apache-2.0, 266,780 parameters; shipped in data/vaelight/ with its LICENSE) maps a
 * latent that is already divided by 0.18215 ([1, 4, h, w], the VAE decoder's own input) to an
 * RGB image [1, 3, 8h, 8w] in [-1, 1]. It is four independent chains of Conv 3x3 (pad 1),
 * LeakyReLU(0.01) and ConvTranspose 2x2 stride 2, each ending in a 3-channel conv, at 1x, 2x, 4x
 * and 8x the latent size. The image is
 *
 *     clip(up8(b1) + up4(b2) + up2(b4) + b8, -1, 1)
 *
 * where upK is a bilinear resize with half-pixel centres (ONNX Resize linear/half_pixel, torch
 * align_corners=False) to 8h x 8w. The ONNX graph holds the branches only; the resize, sum and
 * clip are the consumer's, done here.
 *
 * Loading reads the graph and its initializers with the protobuf-c code of src/onnx/onnx_io.h
 * and accepts only this architecture: one float input [N, 4, H, W]; every node a Conv (3x3,
 * stride 1, same padding, group 1, dilation 1), a ConvTranspose (2x2, stride 2, no padding,
 * group 1) or a LeakyRelu following one of them; the nodes forming exactly four unbranched chains
 * from the input to the four graph outputs, each with 3 output channels, with 0, 1, 2 and 3
 * transposed convs (scales 1, 2, 4, 8). Anything else (another network, an extra op, a chain
 * that forks) is refused with one line naming the file and the node at fault. The weights are
 * copied once into the decoder (about 1 MB).
 *
 * Running is a sequential executor over those layers with direct kernel calls (sdc_conv2d of
 * ops/gemm.h, ops/nn_extra.h): the network is too small and too regular to need the graph
 * planner. Two ping-pong activation buffers of the largest layer output are allocated per call
 * (sdc_vaelight_workspace_bytes; 2 x 64 x 512 x 512 floats = 128 MiB for a 512x512 image).
 *
 * A loaded decoder is immutable: threads may decode with one decoder at once (one pool each).
 */
#ifndef SDC_MODEL_VAELIGHT_H
#define SDC_MODEL_VAELIGHT_H

#include "core/error.h"
#include "core/threadpool.h"

#include <stddef.h>
#include <stdint.h>

#define SDC_VAELIGHT_FILE "VAEpreview.onnx"
#define SDC_VAELIGHT_MAX_FILE_BYTES ((size_t)16 << 20)
#define SDC_VAELIGHT_MAX_LATENT 1024 /* h and w at most this (an 8192x8192 image) */

typedef struct sdc_vaelight sdc_vaelight;

/* Loads and checks the decoder from an ONNX file. *out is NULL on failure. */
sdc_status sdc_vaelight_load(const char *path, sdc_vaelight **out, sdc_error *err);
void sdc_vaelight_free(sdc_vaelight *d); /* NULL is a no-op */

/* Number of parameters (266,780 for VAEpreview.onnx) and of layers (convs, transposed convs). */
int64_t sdc_vaelight_params(const sdc_vaelight *d);
int sdc_vaelight_layers(const sdc_vaelight *d);

/* Bytes of activation scratch one decode of an h x w latent allocates (0 on overflow). */
size_t sdc_vaelight_workspace_bytes(const sdc_vaelight *d, int h, int w);

/* Decodes one latent:
 *   latent_scaled [1, 4, h, w] (the sampler's latent divided by 0.18215)
 *   image         [1, 3, 8h, 8w], written: the clipped sum described above, in [-1, 1]
 * pool: threads for the kernels (NULL = the calling thread). Results do not depend on the
 * thread count. Fails only on bad sizes (SDC_E_INVALID_ARG) or memory (SDC_E_NOMEM). */
sdc_status sdc_vaelight_decode(const sdc_vaelight *d, const float *latent_scaled, int h, int w,
                               float *image, sdc_pool *pool, sdc_error *err);

/* Same, also returning each branch before the resize: branch[k], when not NULL, receives the
 * output at scale 2^k, [1, 3, 2^k h, 2^k w] (k = 0..3). image may be NULL. For tests and
 * debugging against ONNX Runtime's four outputs. */
sdc_status sdc_vaelight_decode_branches(const sdc_vaelight *d, const float *latent_scaled, int h,
                                        int w, float *image, float *branch[4], sdc_pool *pool,
                                        sdc_error *err);

/* A preview in one call, for a sampler's step callback: decodes one latent [1, 4, h, w] (the
 * sampler's own, divided by 0.18215 here unless `scaled`) and writes it to `path` as an 8-bit
 * RGB PNG of 8w x 8h (atomically, io/png.h). Allocates and frees its buffers. */
sdc_status sdc_vaelight_write_png(const sdc_vaelight *d, const float *latent, int h, int w,
                                  int scaled, const char *path, sdc_pool *pool, sdc_error *err);

/* Where VAEpreview.onnx is: `path` itself when not NULL; else $SDC_VAELIGHT when set; else the
 * first that exists of EXE_DIR/../data/vaelight/, EXE_DIR/../share/sdc/vaelight/ and
 * EXE_DIR/data/vaelight/ (EXE_DIR: the running program's folder, so a build folder inside the
 * source tree finds the shipped copy). Writes the path into out[outlen]; fails with a line that
 * says what was tried. */
sdc_status sdc_vaelight_find(const char *path, char *out, size_t outlen, sdc_error *err);

#endif
