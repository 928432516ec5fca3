/* src/model/detect.h: what kind of model file is this, and may sdc run it?
 *
 * Two steps, in this order:
 *
 *   SDC_TRY(sdc_detect_file_kind(path, NULL, err));   // refuses pickles, GGUF, empty files, dirs
 *   SDC_TRY(sdc_st_open(path, &st, err));              // validates the safetensors container
 *   sdc_family_info fi;
 *   SDC_TRY(sdc_detect_family(st, &fi, err));          // refuses everything but SD1.5
 *
 * sdc_detect_family classifies by key names (and two shapes), the way A1111 / ComfyUI tell
 * model files apart:
 *   SD1.5       model.diffusion_model.*, first_stage_model.*, cond_stage_model.transformer.*
 *               (CLIP ViT-L text encoder), UNet cross-attention width not 1024 / 2048
 *   SD 2.x      cond_stage_model.model.* (OpenCLIP text encoder), or UNet context 1024
 *   SDXL        conditioner.embedders.*, or model.diffusion_model.label_emb.*, or context 2048
 *   LoRA        lora_unet_* / lora_te* (kohya), *.lora_down.* / *.lora_up.*, *.lora_A.* /
 *               *.lora_B.* (PEFT), *.hada_* / *.lokr_* (LyCORIS)
 *   embedding   emb_params (A1111), string_to_param.* (.pt converted), clip_l / clip_g (SDXL),
 *               or one small tensor (at most 75 vectors of at most 1280)
 *   diffusers   unet.* / text_model.* / text_encoder.* / down_blocks.* / time_embedding.* ...
 *   VAE only    encoder.* / decoder.* / quant_conv.* / post_quant_conv.* without a prefix
 *   unknown     anything else
 * The first rule that matches wins, in the order above (an SD1.5 file with stray extra keys is
 * still SD1.5; an SDXL file is never mistaken for SD1.5 because it also has the SD1.5 prefix).
 *
 * Every refusal is one line naming the file, the family and the evidence, e.g.
 *   "x.safetensors: an SDXL checkpoint (conditioner.embedders.*); sdc runs SD1.5 only"
 * and *out is filled in either way, so a caller can still report what it found.
 */
#ifndef SDC_MODEL_DETECT_H
#define SDC_MODEL_DETECT_H

#include "core/error.h"
#include "io/safetensors.h"
#include "model/sd15_layout.h"

#include <stddef.h>
#include <stdint.h>

/* ---- before parsing: the container ---- */

typedef enum sdc_file_kind {
    SDC_FILE_SAFETENSORS = 0, /* plausibly safetensors: header length fits, JSON starts with '{' */
    SDC_FILE_PICKLE,          /* a PyTorch .ckpt/.pt: zip ("PK\3\4") or raw pickle (0x80 0x02..0x05) */
    SDC_FILE_GGUF,            /* "GGUF" magic (stable-diffusion.cpp's quantized files) */
    SDC_FILE_OTHER            /* empty, too short, or not safetensors */
} sdc_file_kind;

/* Reads the first bytes of `path`. SDC_OK (kind SAFETENSORS) when the file may be parsed as
 * safetensors; otherwise a one-line refusal: SDC_E_UNSUPPORTED for a pickle ("FILE: a
 * .ckpt/pickle checkpoint; sdc reads .safetensors only (convert it first)") or GGUF,
 * SDC_E_FORMAT for an empty / short / non-safetensors file, SDC_E_IO for a missing file or a
 * directory. `kind` may be NULL. */
sdc_status sdc_detect_file_kind(const char *path, sdc_file_kind *kind, sdc_error *err);

/* ---- after parsing: the model family ---- */

typedef enum sdc_family {
    SDC_FAMILY_UNKNOWN = 0,
    SDC_FAMILY_SD15,
    SDC_FAMILY_SD2,
    SDC_FAMILY_SDXL,
    SDC_FAMILY_LORA,
    SDC_FAMILY_EMBEDDING,
    SDC_FAMILY_VAE,
    SDC_FAMILY_DIFFUSERS,
    SDC_FAMILY_COUNT
} sdc_family;

/* Short id for machine output: "sd15", "sd2", "sdxl", "lora", "embedding", "vae", "diffusers",
 * "unknown". */
const char *sdc_family_id(sdc_family f);
/* Phrase for messages: "an SD1.5 checkpoint", "an SDXL checkpoint", "a LoRA", ... */
const char *sdc_family_desc(sdc_family f);

typedef struct sdc_component_info {
    int present;
    size_t n_tensors;   /* parameter tensors */
    int64_t n_params;   /* elements of those tensors */
    uint32_t dtypes;    /* bit (1u << dtype) for each sdc_dtype among its parameters */
} sdc_component_info;

typedef struct sdc_family_info {
    sdc_family family;
    char evidence[160];                 /* the keys that decided, e.g. "conditioner.embedders.*" */
    int context_dim;                    /* UNet cross-attention input width; 0 without a UNet */
    int unet_in_channels;               /* 4; 9 = inpainting, 8 = instruct-pix2pix; 0 if absent */
    sdc_component_info comp[SDC_SD15_N_COMPONENTS]; /* by sdc_sd15_component */
    size_t n_tensors;                   /* all keys of the file */
    size_t n_buffers;                   /* DDPM schedule buffers and position_ids */
    size_t n_ignored;                   /* anything else (model_ema.*, extras): not loaded */
    char first_ignored[SDC_SD15_NAME_MAX]; /* one of them, "" if none (cut to fit) */
    int64_t total_params;               /* sum over the three components */
} sdc_family_info;

/* Classifies the open file `f`. SDC_OK when it is an SD1.5 checkpoint (whatever components it
 * holds: the loader decides what it needs); otherwise the refusal described above
 * (SDC_E_UNSUPPORTED for a recognised family, SDC_E_FORMAT for unknown). *out is always filled. */
sdc_status sdc_detect_family(const sdc_st_file *f, sdc_family_info *out, sdc_error *err);

/* Writes the dtype names of `mask` ("F16,F32"; "-" when empty) into buf. */
void sdc_dtype_mask_str(uint32_t mask, char *buf, size_t len);

#endif
