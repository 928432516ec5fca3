/* src/pipeline/infotext.h: the A1111 "parameters" text (webui's infotext) for a txt2img image.
 *
 * The string is what stable-diffusion-webui v1.10.1 (commit 82a973c0, the version the a1111
 * golden data comes from) builds in modules/processing.py create_infotext():
 *
 *     PROMPT
 *     Negative prompt: NEGATIVE                      (the line is omitted when NEGATIVE is empty)
 *     Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: ...
 *
 * where the fields line goes on ", Size: 320x480, Model hash: abcdef1234, Model:
 * xxmix9realistic_v40, Version: sdc 0.1" on the same line; the whole text is then stripped of
 * leading and trailing whitespace (Python str.strip()). Its rules, followed here exactly:
 *  - fields come in webui's fixed order: Steps, Sampler, Schedule type, CFG scale, Seed, Size,
 *    Model hash, Model, VAE hash, VAE, Clip skip, RNG, then the extra fields in the caller's
 *    order, then Version; a field whose value is NULL is left out;
 *  - extra fields are merged like webui's `{**base, **p.extra_generation_params, "Version": ...}`
 *    dict: an extra key that names a webui field (e.g. "Denoising strength", or "Schedule type")
 *    takes that field's place in the order, a repeated key keeps its first place and its last
 *    value, and a value equal to its key is written as the key alone;
 *  - a value containing ',', ':' or a newline is written as a JSON string (webui's quote() is
 *    json.dumps(v, ensure_ascii=False)): "a, b" -> "\"a, b\""; the prompts are never quoted;
 *  - numbers print as Python prints them: CFG scale 7 -> "7" (the webui UI passes a whole
 *    number as a Python int), 7.5 -> "7.5" (Python's shortest repr of the float);
 *  - Clip skip appears only when > 1; RNG only when set and not "GPU" (webui's default).
 * Sampler and schedule names are webui's labels: "Euler", "Euler a", "DPM++ 2M", "DDIM";
 * "Automatic", "Uniform", "Karras", "Exponential", ... (for DPM++ 2M with the schedule left on
 * Automatic webui writes the schedule it used, "Karras").
 */
#ifndef SDC_PIPELINE_INFOTEXT_H
#define SDC_PIPELINE_INFOTEXT_H

#include <stddef.h>
#include <stdint.h>

typedef struct sdc_infotext_field {
    const char *key;   /* e.g. "Hires upscale"; NULL entries are skipped */
    const char *value; /* NULL = absent (webui's None) */
} sdc_infotext_field;

/* Every string is UTF-8 and borrowed for the call; NULL leaves the field out. */
typedef struct sdc_infotext_params {
    const char *prompt;        /* the prompt as the user typed it (NULL = "") */
    const char *negative;      /* NULL or "" omits the "Negative prompt:" line */
    int steps;                 /* always written */
    const char *sampler_name;  /* "DPM++ 2M" */
    const char *schedule_name; /* "Karras" */
    double cfg;                /* CFG scale */
    int64_t seed;              /* always written */
    int width, height;         /* "Size: WxH", always written */
    const char *model_hash;    /* webui's short hash: the first 10 hex digits of the file's sha256 */
    const char *model_name;    /* the checkpoint file name without extension */
    const char *vae_hash;      /* only with a separate VAE file */
    const char *vae_name;
    int clip_skip;             /* written when > 1 */
    const char *rng;           /* "CPU" or "NV"; NULL or "GPU" is not written */
    const sdc_infotext_field *extra; /* n_extra fields, in order */
    size_t n_extra;
    const char *version;       /* "Version: ..." at the end, e.g. "sdc 0.1" */
} sdc_infotext_params;

/* Builds the infotext. Returns a malloc'd string the caller frees with free(), or NULL when
 * p is NULL or memory runs out. */
char *sdc_infotext(const sdc_infotext_params *p);

#endif
