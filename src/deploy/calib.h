/* src/deploy/calib.h: calibration sets for an NPU compiler, recorded while sampling, and the
 * toolchain files (pulsar2 configs, build script, manifest) that go with them.
 *
 * sdc_calib_run runs the real txt2img pipeline once per prompt (A1111 prompt syntax, the given
 * sampler and schedule) and records what each deployed network receives:
 *   unet          every UNet call, both CFG branches (each AND part too), every step, as batch-1
 *                 rows: `sample` [1, 4, h, w] (the scaled model input c_in * x), the conditioning
 *                 `encoder_hidden_states` [1, 77, 768] and the post-SiLU time embedding [1, 1280]
 *                 under the deploy contract's name /down_blocks.0/resnets.0/act_1/Mul_output_0.
 *                 A prompt longer than 75 tokens gives a context of 77 * k tokens; the exported
 *                 UNet takes 77, so the first chunk is recorded (counted in summary.truncated);
 *   text_encoder  `input_ids` [1, 77] of every chunk the text encoder sees (each AND part, each
 *                 prompt-editing text, cond and uncond; padding chunks too), as int64 per the
 *                 contract; duplicates (the same negative prompt for every prompt) are kept once.
 *                 They are tokenized here exactly as src/prompt/conditioning.c does (or with
 *                 sdc_tokenize for raw prompts);
 *   vae_decoder   `latent` [1, 4, h, w]: each prompt's final latent / 0.18215.
 * With max_samples > 0 each set keeps at most that many samples, spread evenly: UNet samples over
 * the prompts (equal shares), within a prompt over the steps (a per-prompt phase, so that small
 * shares do not all land on the same step) and alternating over the guidance rows; text and VAE
 * samples evenly over their list.
 *
 * Files, relative to p->dir (member names pair the Numpy tars: p000_s00_cond.npy, ...):
 *   calib/unet_numpyobject.tar           NumpyObject: each member a pickled dict of the 3 inputs
 *   calib/text_encoder_numpyobject.tar   {'input_ids': int64 [1, 77]}
 *   calib/vae_decoder_numpyobject.tar    {'latent': float32 [1, 4, h, w]}
 *   calib/unet/{sample,encoder_hidden_states,time_embedding}.tar     Numpy: plain .npy members
 *   calib/text_encoder/input_ids.tar, calib/vae_decoder/latent.tar
 *   pulsar2/{text_encoder,unet,vae_decoder}.json        pulsar2 build configs (NumpyObject sets)
 *   pulsar2/{text_encoder,unet,vae_decoder}_numpy.json  the same on the Numpy sets
 *   pulsar2/build.sh                     the pulsar2 build commands, run from p->dir
 *   time_embedding.npy                   [steps, 1280] the time embeddings of the run's schedule
 *   manifest.json                        what a board runtime needs (see sdc_calib_write_manifest)
 * Everything is written under p->dir/.sdc-calib.tmp and moved into place at the end (replacing
 * earlier calib/ and pulsar2/ folders); on any failure the staging folder is removed and nothing
 * new is left in p->dir.
 */
#ifndef SDC_DEPLOY_CALIB_H
#define SDC_DEPLOY_CALIB_H

#include "core/error.h"
#include "sdc.h"

#include <stdint.h>

#define SDC_TEMB_NAME "/down_blocks.0/resnets.0/act_1/Mul_output_0"

typedef struct sdc_calib_prompt {
    const char *prompt;
    const char *negative; /* NULL: the run's default negative */
} sdc_calib_prompt;

typedef struct sdc_calib_params {
    const char *dir;                 /* an existing directory (see sdc_deploy_prepare_dir) */
    const sdc_calib_prompt *prompts;
    int n_prompts;
    sdc_txt2img_params gen;          /* size, steps, cfg, seed, sampler, schedule, ...; prompt i runs
                                        with seed gen.seed + i; its prompt/observer are replaced */
    int max_samples;                 /* 0: every recorded sample */
    int onnx_fp16;                   /* the manifest describes float16 model inputs/outputs */
    const char *model_label;         /* the checkpoint's name in the manifest (NULL: the path) */
    /* optional: called after each prompt's image (i is 0-based) */
    void (*on_prompt)(void *user, int i, int n, const sdc_timings *t);
    void *user;
} sdc_calib_params;

typedef struct sdc_calib_set {
    int recorded, written;           /* samples seen, samples in the tars */
    uint64_t numpyobject_bytes;      /* size of the NumpyObject tar */
    uint64_t numpy_bytes;            /* the Numpy tars together */
} sdc_calib_set;

typedef struct sdc_calib_summary {
    sdc_calib_set text, unet, vae;
    int truncated;                   /* UNet rows whose context was longer than 77 tokens */
    double seconds;
} sdc_calib_summary;

/* Creates `dir` if absent; refuses (SDC_E_INVALID_ARG, "... --force") a non-empty one unless force,
 * and anything that is not a directory or cannot be created (SDC_E_IO). */
sdc_status sdc_deploy_prepare_dir(const char *dir, int force, sdc_error *err);

/* Records the calibration sets and writes every file listed above. */
sdc_status sdc_calib_run(const sdc_model *m, const sdc_calib_params *p, sdc_calib_summary *out,
                         sdc_error *err);

/* ---- toolchain files (src/deploy/pulsar2.c), written into `dir` ---- */

typedef struct sdc_deploy_info {
    int width, height;               /* image size */
    int latent_ch, text_ctx, text_width, time_dim;
    int steps;
    float cfg;
    const char *sampler, *schedule, *compat; /* webui names / "a1111" | "diffusers" */
    int final_sigma_min;
    const float *timesteps;          /* [steps] the model timesteps of the run's schedule */
    int onnx_fp16;
    const char *model_label;
    const sdc_calib_summary *calib;
} sdc_deploy_info;

/* pulsar2/{text_encoder,unet,vae_decoder}{,_numpy}.json and pulsar2/build.sh. */
sdc_status sdc_calib_write_pulsar2(const char *dir, const sdc_deploy_info *d, sdc_error *err);
/* manifest.json: sizes, every model's input/output names, shapes and dtypes, the scheduler
 * (sampler, schedule, timesteps, betas), 0.18215, CFG order, tokenizer facts (BOS 49406, EOS and
 * padding 49407, 77 tokens), the image post-processing and the calibration sets. */
sdc_status sdc_calib_write_manifest(const char *dir, const sdc_deploy_info *d, sdc_error *err);

#endif
