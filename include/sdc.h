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
 *  - A loaded sdc_model is immutable (sdc_model_apply_lora aside): several threads may run
 *    stages on one model at once.
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
/* LoRA: low-rank adapters merged into the weights (webui's extensions-builtin/Lora semantics)  */
/* ------------------------------------------------------------------------------------------ */

/* What one LoRA file did to a model. */
typedef struct sdc_lora_report {
    int n_tensors;   /* tensors in the file */
    int n_applied;   /* of those, merged into the model (down, up and alpha of each module) */
    int n_weights;   /* model weights changed */
    char hash[13];   /* webui's short hash for "Lora hashes" (12 hex digits) */
    int n_skipped;   /* n_tensors - n_applied: every one named in `skipped` */
    char **skipped;  /* "TENSOR (reason)" for each tensor not applied */
} sdc_lora_report;

/* Merges a LoRA .safetensors file (kohya lora_unet_* / lora_te_*, LoCon 3x3, diffusers/PEFT
 * lora_A/lora_B) into the model's weights: W += weight * alpha/rank * up @ down, in memory (the
 * checkpoint file is not touched). te_weight multiplies the text-encoder part, unet_weight the
 * UNet part (webui's <lora:NAME:TE:UNET>). LoRAs apply in call order and add up; the model's
 * stages, sdc_txt2img and the ONNX export all see the merged weights, and sdc_txt2img records
 * the LoRA in the infotext's "Lora hashes" under `name` (NULL: the file name without
 * .safetensors). Tensors that match no weight of this model are named in rep->skipped (rep may
 * be NULL; free it with sdc_lora_report_free). Refused, with nothing merged: a file that matches
 * no weight, one whose shapes disagree with the model's (an SDXL or SD2 LoRA; the message names
 * the tensor and both shapes). Not thread-safe against stages running on the same model. */
sdc_status sdc_model_apply_lora(sdc_model *m, const char *path, const char *name, float te_weight,
                                float unet_weight, sdc_lora_report *rep, char *errbuf, size_t errlen);
void sdc_lora_report_free(sdc_lora_report *rep); /* frees rep->skipped; accepts NULL */

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

/* One UNet evaluation, row by row, as the deployed batch-1 UNet takes it (the inputs of
 * `sdc export`'s unet.onnx): what calibration recording (`sdc calib`) needs. */
typedef struct sdc_unet_call {
    int step, steps;       /* 0-based sampling step */
    int row, rows;         /* guidance row: 0..rows-2 the cond rows (AND parts), rows-1 the uncond */
    float t;               /* the model timestep */
    int h, w;              /* latent size */
    const float *sample;   /* [1, 4, h, w] the scaled model input (c_in * x for k-diffusion) */
    const float *context;  /* [1, context_len, ctx_dim] this row's conditioning */
    int context_len;       /* 77 * chunks */
    const float *temb;     /* [1, time_dim] SiLU(time_embed(t)), the UNet's post-SiLU time embedding */
} sdc_unet_call;

/* Called for every row of every UNet call, before the UNet runs; the pointers are valid during the
 * call only. Return non-zero to stop the run (SDC_E_CANCELLED). */
typedef int (*sdc_unet_observer_fn)(void *user, const sdc_unet_call *call);

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
    const char *embeddings_dir;   /* textual-inversion embeddings (webui's embeddings/ folder):
                                     a prompt word naming a .pt/.bin/.safetensors file there is
                                     replaced by its vectors; NULL = none */
    const char *lora_dir;         /* where <lora:NAME:WEIGHT> tags of the prompt find NAME.safetensors;
                                     the tags are merged for this generation only (the model is
                                     left as it was) and kept in the infotext's prompt */
    int low_memory;               /* 1: bound peak memory (under 1.2 GB at 512x512 with f16 weights):
                                     each weight is dropped from memory after the op that read it
                                     and the VAE decodes in overlapping tiles (a small deviation,
                                     see README); slower by the weights' page faults and the tiles'
                                     overlap */
    int profile;                  /* 1: time the UNet per op kind (sdc_timings.unet_kind_seconds) */
    sdc_progress_fn progress;
    void *progress_user;
    sdc_unet_observer_fn unet_observer; /* NULL = none; costs one time-embedding run per step */
    void *unet_observer_user;
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
    /* FLOPs counted from the graphs as direct convolution and plain matmuls (a multiply-add is 2) */
    double unet_step_flops;  /* the UNet calls of one sampling step (all CFG rows) */
    double vae_flops;        /* the VAE decode (every tile in low-memory mode) */
    /* Per op kind, in the order conv, linear, attention, other: the FLOPs of one step's UNet calls
     * and, with params.profile, the UNet's seconds summed over all steps */
    double unet_kind_flops[4], unet_kind_seconds[4];
} sdc_timings;

typedef struct sdc_image {
    int width, height;
    uint8_t *rgb;         /* [H, W, 3] */
    float *latent;        /* [1, 4, H/8, W/8] the final latent, before the VAE */
    char *parameters;     /* the A1111 infotext written into the PNG */
    char *lora_report;    /* NULL, or what the prompt's LoRAs did, one line each plus one per
                             tensor not applied (sdc_lora_report_text), for the user to see */
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
/* The longest conditioning sdc accepts: 200 chunks of 77 (a 15,000-token prompt). */
#define SDC_MAX_CONTEXT_CHUNKS 200
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

/* Textual-inversion embeddings, as webui finds them in its embeddings/ folder: every .pt, .bin
 * and .safetensors file under `dir` (subfolders too), named by its file name without the
 * extension, read for the model's text-encoder width (src/prompt/embeddings.h). A file that
 * cannot be used (another width, SDXL, more than 75 vectors, malformed) is refused, naming it,
 * only when a prompt uses its name. Fails when dir is not a readable directory. */
typedef struct sdc_embeddings sdc_embeddings;
sdc_status sdc_embeddings_load(const sdc_model *m, const sdc_tokenizer *tok, const char *dir, sdc_embeddings **out,
                               char *errbuf, size_t errlen);
void sdc_embeddings_free(sdc_embeddings *e); /* NULL-safe */
/* How many embeddings were found: all of them, or (usable = 1) the usable ones. */
int sdc_embeddings_count(const sdc_embeddings *e, int usable);

/* sdc_encode_a1111 with embeddings (emb NULL = none): a word of the prompt that names one is
 * replaced by its vectors in the text encoder's input, as webui does. When ti_hashes is not NULL
 * it receives webui's "TI hashes" infotext value for the embeddings used ("name: 0123456789ab",
 * malloc'd, free() it), or NULL when none was used. */
sdc_status sdc_encode_a1111_ti(const sdc_model *m, const sdc_tokenizer *tok, const sdc_embeddings *emb,
                               const char *prompt, int clip_skip, float **out, int *n_tokens, char **ti_hashes,
                               char *errbuf, size_t errlen);

#ifdef __cplusplus
}
#endif
#endif /* SDC_H */
