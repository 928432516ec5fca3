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

#ifdef __cplusplus
}
#endif
#endif /* SDC_H */
