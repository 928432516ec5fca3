/* src/model/mkmodel.h: writes a random-weight SD1.5 checkpoint (`sdc mkmodel`).
 *
 * The file has every tensor of sd15_layout.h in the original LDM naming, so the whole toolchain
 * (loader, stages, exporters, benchmarks) can run on a full-size model without downloading one,
 * and tests can make models of any dtype. The weights are random, never trained: the metadata
 * says so ("sdc.note").
 *
 * Values, as a freshly constructed PyTorch model has them, so that activations stay finite
 * even in f16:
 *  - Conv2d / Linear weight and bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with
 *    a = sqrt(5) gives exactly this bound for the weight; the bias uses the same bound);
 *  - GroupNorm / LayerNorm: weight 1, bias 0; with norm_jitter, weight 1 + 0.2 N(0,1) and bias
 *    0.1 N(0,1), so that a skipped affine step shows in tests (the tiny preset of the reference
 *    generator, tools/mksd15.py, always jitters);
 *  - CLIP token and position embeddings: N(0, 0.02^2), the initialisation of Hugging Face's
 *    CLIPTextModel (_init_weights: std = initializer_factor * 0.02 for both tables; the shared
 *    tiny checkpoint measures 0.0200 and 0.0200);
 *  - DDPM schedule buffers: the exact LDM values (sd15_layout.h), in the file's float dtype;
 *  - position_ids: 0..76 as int64.
 * The UNet's zero-initialised output convolutions (zero_module in LDM) get the uniform values
 * too, as the reference generator does: an all-zero layer would hide bugs behind it.
 *
 * Determinism: element i of a tensor comes from a xoshiro256** stream keyed by (seed, tensor
 * name, i / SDC_MKMODEL_BLOCK), so the file is a function of (config, dtype, seed, norm_jitter)
 * only: not of the thread count, the batch size or the order tensors are listed in.
 * Normals use Box-Muller on pairs of 53-bit uniforms.
 *
 * The file goes through the safetensors streaming writer, which writes `path.tmp` and renames it
 * on success: a failure or interruption leaves nothing at `path`.
 */
#ifndef SDC_MODEL_MKMODEL_H
#define SDC_MODEL_MKMODEL_H

#include "core/dtype.h"
#include "core/error.h"
#include "model/sd15_layout.h"

#include <stdint.h>

#define SDC_MKMODEL_BLOCK 65536 /* elements per random stream */

typedef struct sdc_mkmodel_params {
    const char *path;        /* output file; its directory must exist */
    const char *variant;     /* recorded in the metadata: "tiny", "full", ... */
    sdc_sd15_config config;
    sdc_dtype dtype;         /* SDC_F32, SDC_F16 or SDC_BF16: parameters and schedule buffers */
    uint64_t seed;
    int norm_jitter;         /* 1: jittered normalisation weights (see above) */
    int n_threads;           /* generator threads, >= 1; the output does not depend on it */
} sdc_mkmodel_params;

/* The full SD1.5 model in f16, seed 0, no jitter, 2 threads; path NULL (the caller sets it). */
sdc_mkmodel_params sdc_mkmodel_params_default(void);

/* Writes the checkpoint. On failure nothing is left at p->path (and no .tmp). Fails with
 * SDC_E_INVALID_ARG for a bad dtype/thread count/config, SDC_E_IO when the output directory
 * does not exist or cannot be written. */
sdc_status sdc_mkmodel(const sdc_mkmodel_params *p, sdc_error *err);

/* Elements [begin, begin + n) of float tensor `t` (a parameter or schedule buffer) as float32:
 * exactly the values sdc_mkmodel writes before rounding them to the file dtype. For tests.
 * SDC_E_INVALID_ARG for an int64 tensor or a range outside it. */
sdc_status sdc_mkmodel_values(const sdc_sd15_config *c, const sdc_sd15_tensor *t, uint64_t seed,
                              int norm_jitter, int64_t begin, int64_t n, float *out,
                              sdc_error *err);

/* ---- a random textual-inversion embedding (`sdc mkmodel --embedding`) ----
 * vectors [N, width] drawn N(0, 0.02^2) like the token table, from a stream keyed by (seed,
 * "emb_params"): sdc_mkmodel_embedding_values gives exactly the float32 values before they are
 * stored in `dt` (SDC_F32 or SDC_F16). The path's extension picks the format webui reads:
 *   .safetensors  one tensor "emb_params" [N, width] (webui's safetensors export);
 *   .pt           a torch.save zip of webui's Embedding.save dict (string_to_param {'*': [N, w]});
 *   .bin          a torch.save zip of a diffusers concept {'<NAME>': [N, w]}.
 * NAME, the prompt word, is the file name without extension. Nothing is left at path on failure. */
#define SDC_MKMODEL_MAX_VECTORS 1000 /* more than a chunk's 75 on purpose: tests of the refusal */
sdc_status sdc_mkmodel_embedding_values(int vectors, int width, uint64_t seed, float *out, sdc_error *err);
sdc_status sdc_mkmodel_embedding(const char *path, int vectors, int width, sdc_dtype dt, uint64_t seed,
                                 sdc_error *err);

#endif
