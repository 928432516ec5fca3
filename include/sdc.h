/* sdc.h: Stable Diffusion 1.5 in C, the public interface of libsdc.
 *
 * Usage, the whole pipeline in a few calls:
 *
 *     sdc_model_params mp = sdc_model_params_default();
 *     mp.path = "model.safetensors";
 *     sdc_model *model;
 *     if (sdc_model_load(&mp, &model, errbuf, sizeof errbuf) != SDC_OK) { puts(errbuf); return 1; }
 *     ... stage calls (sdc_tokenize, sdc_encode_text, ...) ...
 *     sdc_model_free(model);
 *
 * Conventions
 *  - Every fallible call returns an sdc_status. On failure the call writes one line naming the
 *    file, tensor or argument at fault into the caller's `errbuf` (when not NULL), and any output
 *    handle is set to NULL. The library never prints and never exits.
 *  - Tensors cross the API as float32, C order (row-major), with the shape spelled out in the
 *    comment of each call ([B, C, H, W] for images and latents).
 *  - Whoever creates frees; every _free accepts NULL.
 *  - A loaded sdc_model is immutable: several threads may run stages on one model at once.
 *  - Strings and params structs are borrowed for the duration of a call.
 */
#ifndef SDC_H
#define SDC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Status codes. Values are pinned: new codes are added at the end only. */
typedef enum sdc_status {
    SDC_OK = 0,
    SDC_E_INVALID_ARG,  /* a bad argument or option value */
    SDC_E_NOMEM,        /* an allocation failed */
    SDC_E_IO,           /* a file could not be opened, read or written */
    SDC_E_FORMAT,       /* a file is malformed, truncated or not what it claims */
    SDC_E_UNSUPPORTED,  /* a recognised but unsupported kind of file or feature */
    SDC_E_BACKEND,      /* a compute backend failed */
    SDC_E_CANCELLED,    /* the caller cancelled a run */
    SDC_E_LIMIT,        /* a size or count limit was exceeded */
    SDC_STATUS_COUNT
} sdc_status;

/* A short English name for a status; never NULL. */
const char *sdc_status_str(sdc_status s);

/* ------------------------------------------------------------------------------------------ */
/* Models                                                                                      */
/* ------------------------------------------------------------------------------------------ */

typedef struct sdc_model sdc_model;

typedef struct sdc_model_params {
    const char *path; /* single-file .safetensors checkpoint (original LDM key names) */
    int n_threads;    /* threads for compute; 0 = all online CPUs */
} sdc_model_params;

sdc_model_params sdc_model_params_default(void);

/* Memory-maps and indexes a checkpoint, checks that it is an SD1.5 model, and reads every
 * hyperparameter from the tensor shapes. Nothing is copied: the model costs its mapping.
 * Refuses other model families (SD 2.x, SDXL, LoRA, embeddings, VAE-only files, .ckpt pickles)
 * with a one-line reason. *out is NULL on failure. */
sdc_status sdc_model_load(const sdc_model_params *p, sdc_model **out, char *errbuf, size_t errlen);
void sdc_model_free(sdc_model *m);

/* What a loaded model holds (filled from tensor shapes). */
typedef struct sdc_model_desc {
    int has_text_encoder, has_unet, has_vae;
    int text_width, text_layers;       /* CLIP: 768 and 12 for SD1.5 */
    int unet_model_ch, unet_time_dim;  /* 320 and 1280 for SD1.5 */
    int unet_ctx_dim;                  /* 768 */
    int latent_channels;               /* 4 */
} sdc_model_desc;

void sdc_model_describe(const sdc_model *m, sdc_model_desc *out);
const char *sdc_model_path(const sdc_model *m);

/* ------------------------------------------------------------------------------------------ */
/* Stages. Each builds the network for the given size, runs it once and frees its activations;   */
/* the pipeline (sdc_txt2img) keeps them across steps instead.                                   */
/* ------------------------------------------------------------------------------------------ */

/* Text encoder: ids [B, 77] -> out [B, 77, text_width]. clip_skip >= 1 (A1111: 1 = last layer,
 * 2 = penultimate layer; the final layer norm is applied either way). */
sdc_status sdc_encode_ids(const sdc_model *m, const int32_t *ids, int batch, int clip_skip,
                          float *out, char *errbuf, size_t errlen);

/* UNet: x [B, 4, h, w], t [B] (0..999, fractional allowed), ctx [B, T, ctx_dim] -> eps [B, 4, h, w]. */
sdc_status sdc_unet_eval(const sdc_model *m, const float *x, int batch, int h, int w, const float *t,
                         const float *ctx, int T, float *eps, char *errbuf, size_t errlen);

/* UNet time MLP: t [B] -> SiLU(time_embed(timestep_embedding(t))) [B, unet_time_dim], the third
 * input of the deployed UNet. */
sdc_status sdc_unet_time_embedding(const sdc_model *m, const float *t, int batch, float *out,
                                   char *errbuf, size_t errlen);

/* VAE decoder: z [B, 4, h, w] ALREADY divided by 0.18215 -> image [B, 3, 8h, 8w], unclamped. */
sdc_status sdc_vae_decode(const sdc_model *m, const float *z_scaled, int batch, int h, int w,
                          float *image, char *errbuf, size_t errlen);

/* ------------------------------------------------------------------------------------------ */
/* txt2img                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Progress: called after each sampling step; return non-zero to cancel (SDC_E_CANCELLED). */
typedef int (*sdc_progress_fn)(void *user, int step, int steps, double step_seconds);

typedef struct sdc_txt2img_params {
    const char *prompt;           /* UTF-8, in A1111 syntax: (weights), [less], BREAK, AND,
                                     prompt editing [a:b:when] and alternation [a|b] */
    int raw_prompt;               /* 1: feed prompt and negative to CLIP literally (one 77-token
                                     chunk each, no syntax), as diffusers pipelines do */
    const char *negative;         /* NULL or "" = the empty prompt (still encoded, as A1111 does) */
    int width, height;            /* pixels, multiples of 8 in 8..2048 (512 x 512 default) */
    int steps;                    /* 1..1000 (20) */
    float cfg;                    /* classifier-free guidance scale (7) */
    uint64_t seed;                /* noise seed */
    uint64_t ensd;                /* A1111's "Eta noise seed delta" (0 = off): after the initial
                                     noise the generator is re-seeded with seed + ensd, which
                                     changes the ancestral samplers' noise draws */
    int clip_skip;                /* 1 = last layer (default), 2 = penultimate, ... */
    const char *sampler;          /* "dpm++2m" (default), "euler", "euler_a", "ddim" */
    const char *schedule;         /* NULL/"automatic" (karras for DPM++ 2M, else uniform), "normal",
                                     "karras", "exponential", and the other webui names */
    const char *scheduler_compat; /* "a1111" (default: k-diffusion) or "diffusers" (DPMSolver) */
    int final_sigma_min;          /* diffusers: final_sigmas_type "sigma_min" instead of "zero" */
    const char *rng;              /* "gpu" (default: A1111's NV/philox) or "cpu" (torch CPU randn) */
    const float *init_latent;     /* optional [1, 4, H/8, W/8] x_noise replacing the seeded noise */
    const float *cond, *uncond;   /* optional [1, T, D] conditioning: skips the text encoder */
    int cond_len, uncond_len;     /* T of each (a multiple of 77) */
    int n_threads;                /* 0 = the model's setting */
    const char *preview;          /* live previews with the vaelight decoder: a FILE.png rewritten
                                     each time, or a directory that gets step_NNN.png; NULL = none */
    int preview_every;            /* a preview every N steps (1) */
    const char *preview_decoder;  /* VAEpreview.onnx; NULL = the shipped copy (see README) */
    int final_vaelight;           /* decode the final picture with vaelight instead of the VAE */
    sdc_progress_fn progress;
    void *progress_user;
} sdc_txt2img_params;

sdc_txt2img_params sdc_txt2img_params_default(void);

typedef struct sdc_timings {
    double load_hash;     /* hashing the model file for the PNG metadata */
    double text_encoder;  /* tokenizer + text encoder, cond and uncond */
    double unet_total;    /* all sampling steps (UNet calls + sampler updates) */
    double vae;           /* VAE decoder (or the vaelight decoder with final_vaelight) */
    double preview;       /* all previews together (decode + PNG) */
    int n_previews;
    double total;
    int steps;
    size_t peak_arena_bytes; /* largest activation arena in use */
} sdc_timings;

typedef struct sdc_image {
    int width, height;
    uint8_t *rgb;         /* [H, W, 3] */
    float *latent;        /* [1, 4, H/8, W/8] the final latent, before the VAE */
    char *parameters;     /* the A1111 infotext written into the PNG */
    sdc_timings timings;
} sdc_image;

/* Generates one image. out is filled on success and must be released with sdc_image_free. */
sdc_status sdc_txt2img(const sdc_model *m, const sdc_txt2img_params *p, sdc_image *out,
                       char *errbuf, size_t errlen);
void sdc_image_free(sdc_image *img); /* frees the buffers; accepts NULL */

/* ------------------------------------------------------------------------------------------ */
/* Tokenizer (CLIP BPE, as the SD1.5 reference pipeline calls it)                              */
/* ------------------------------------------------------------------------------------------ */

#define SDC_CLIP_CTX 77
#define SDC_CLIP_BOS 49406
#define SDC_CLIP_EOS 49407

typedef struct sdc_tokenizer sdc_tokenizer;

/* Loads the vocabulary embedded in the library. */
sdc_status sdc_tokenizer_new(sdc_tokenizer **out, char *errbuf, size_t errlen);
void sdc_tokenizer_free(sdc_tokenizer *t);

/* Tokenizes `text` (UTF-8) into exactly 77 ids: BOS, at most 75 tokens, EOS, then EOS padding. */
sdc_status sdc_tokenize(const sdc_tokenizer *t, const char *text, int32_t ids[SDC_CLIP_CTX],
                        char *errbuf, size_t errlen);

/* Tokenizes `text` without BOS/EOS, padding or truncation. Writes at most `cap` ids and stores the
 * full count in *n (which may exceed cap). */
sdc_status sdc_tokenize_raw(const sdc_tokenizer *t, const char *text, int32_t *ids, size_t cap,
                            size_t *n, char *errbuf, size_t errlen);

/* Decodes ids back to text (special tokens and padding dropped). Returns a malloc'd string the
 * caller frees with free(), or NULL on failure. */
char *sdc_detokenize(const sdc_tokenizer *t, const int32_t *ids, size_t n);

/* ------------------------------------------------------------------------------------------ */
/* A1111 (stable-diffusion-webui) prompt conditioning                                           */
/* ------------------------------------------------------------------------------------------ */

/* What webui's text encoder wrapper (FrozenCLIPEmbedderWithCustomWords, emphasis "Original")
 * makes of one prompt text: (weights), [de-emphasis] and BREAK parsed, the fragments tokenized
 * into chunks of 75 tokens (comma backtrack 20), each chunk encoded with `clip_skip`, weighted
 * and mean-restored, the chunks concatenated. *out is malloc'd [1, *n_tokens, text_width] with
 * *n_tokens = 77 * chunks (free() it). The text is taken as is: AND and prompt editing
 * ([a:b:when], [a|b]) are resolved before this step in webui (src/prompt/conditioning.h). */
sdc_status sdc_encode_a1111(const sdc_model *m, const sdc_tokenizer *tok, const char *prompt, int clip_skip,
                            float **out, int *n_tokens, char *errbuf, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* SDC_H */
