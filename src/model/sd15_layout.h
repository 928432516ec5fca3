/* src/model/sd15_layout.h: every tensor of an SD1.5 single-file checkpoint, by name and shape.
 *
 * Given an architecture config, sdc_sd15_layout_build() lists the tensors that the original LDM code
 * (CompVis stable-diffusion, `v1-inference.yaml`) puts in a checkpoint's state dict, in the
 * original key names, with exact shapes, in a fixed order (the state-dict order: the DDPM
 * schedule buffers, then `model.diffusion_model.*`, `first_stage_model.*`,
 * `cond_stage_model.transformer.text_model.*`, each in module registration order).
 *
 *   sdc_sd15_config cfg = sdc_sd15_config_full();
 *   sdc_sd15_layout lay;
 *   SDC_TRY(sdc_sd15_layout_build(&cfg, &lay, err));
 *   for (size_t i = 0; i < lay.n; i++) use(lay.t[i].name, lay.t[i].ndim, lay.t[i].shape);
 *   sdc_sd15_layout_free(&lay);
 *
 * Each entry also says how a freshly built PyTorch model would initialise it (`init`), which is
 * what the random-weight generator (mkmodel.h) needs, and which component it belongs to, which
 * is what checkpoint detection (detect.h) needs. The presets are the real SD1.5 (UNet 320 /
 * context 768, VAE 128, CLIP ViT-L/14 text tower) and the tiny test model of
 * shared/testdata/tiny (tests/unit/test_layout.c checks it against that file, tensor by tensor).
 *
 * Besides parameters, a checkpoint holds non-parameter keys, which the layout includes:
 *  - the 12 DDPM schedule buffers of LatentDiffusion.register_schedule (`betas`,
 *    `alphas_cumprod`, ...), float, [timesteps]; their values come from sdc_sd15_schedule();
 *  - `cond_stage_model.transformer.text_model.embeddings.position_ids`, int64 [1, 77].
 * EMA copies (`model_ema.*`) are not part of a pruned checkpoint and are not listed.
 */
#ifndef SDC_MODEL_SD15_LAYOUT_H
#define SDC_MODEL_SD15_LAYOUT_H

#include "core/error.h"

#include <stddef.h>
#include <stdint.h>

#define SDC_SD15_MAX_LEVELS 8
#define SDC_SD15_NAME_MAX 128

/* Key prefixes of the three networks in the original LDM naming. The text prefix is the part
 * common to all CLIP checkpoints: newer ones continue with "text_model.", checkpoints saved with
 * transformers < 4.22 go straight on with "embeddings." / "encoder.". */
#define SDC_SD15_UNET_PREFIX "model.diffusion_model."
#define SDC_SD15_VAE_PREFIX "first_stage_model."
#define SDC_SD15_TEXT_PREFIX "cond_stage_model.transformer."
#define SDC_SD15_TEXT_MODEL_PREFIX "cond_stage_model.transformer.text_model."

typedef enum sdc_sd15_component {
    SDC_SD15_UNET = 0,
    SDC_SD15_VAE,
    SDC_SD15_TEXT,
    SDC_SD15_N_COMPONENTS,
    SDC_SD15_NO_COMPONENT = -1 /* the DDPM schedule buffers belong to no network */
} sdc_sd15_component;

/* "unet", "vae", "text_encoder"; "none" otherwise. */
const char *sdc_sd15_component_name(int comp);

/* How PyTorch would initialise the tensor (see mkmodel.h for the values mkmodel draws). */
typedef enum sdc_sd15_init {
    SDC_INIT_FAN_IN,       /* Conv/Linear weight or bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) */
    SDC_INIT_NORM_WEIGHT,  /* GroupNorm/LayerNorm scale: 1 */
    SDC_INIT_NORM_BIAS,    /* GroupNorm/LayerNorm shift: 0 */
    SDC_INIT_EMBEDDING,    /* CLIP token/position embedding: N(0, 0.02^2) */
    SDC_INIT_SCHEDULE,     /* a DDPM schedule buffer (float, not a parameter) */
    SDC_INIT_POSITION_IDS  /* 0, 1, ..., n-1 as int64 (not a parameter) */
} sdc_sd15_init;

typedef struct sdc_sd15_tensor {
    char name[SDC_SD15_NAME_MAX];
    int ndim;
    int64_t shape[4];
    int comp;              /* sdc_sd15_component, or SDC_SD15_NO_COMPONENT */
    sdc_sd15_init init;
    int64_t fan_in;        /* SDC_INIT_FAN_IN: in_channels * kernel area of the layer */
    int schedule;          /* SDC_INIT_SCHEDULE: index into sdc_sd15_schedule_names */
} sdc_sd15_tensor;

/* 1 for model parameters; 0 for buffers (schedule, position_ids), which carry no weights. */
static inline int sdc_sd15_is_param(const sdc_sd15_tensor *t) {
    return t->init != SDC_INIT_SCHEDULE && t->init != SDC_INIT_POSITION_IDS;
}

typedef struct sdc_sd15_config {
    /* UNet: ldm openaimodel.UNetModel with SpatialTransformer (use_linear_in_transformer off). */
    int unet_in_channels;                  /* 4 */
    int unet_out_channels;                 /* 4 */
    int model_channels;                    /* 320; the time embedding is 4x this */
    int n_levels;                          /* 4 */
    int channel_mult[SDC_SD15_MAX_LEVELS]; /* 1, 2, 4, 4 */
    int attn_level[SDC_SD15_MAX_LEVELS];   /* 1 where a SpatialTransformer follows each ResBlock: 1, 1, 1, 0 */
    int num_res_blocks;                    /* 2 */
    int num_heads;                         /* 8 (no effect on shapes; must divide the widths) */
    int transformer_depth;                 /* 1 */
    int context_dim;                       /* 768: the text encoder's width */
    /* VAE: ldm AutoencoderKL, encoder and decoder. */
    int vae_ch;                            /* 128 */
    int vae_n_levels;                      /* 4 */
    int vae_ch_mult[SDC_SD15_MAX_LEVELS];  /* 1, 2, 4, 4 */
    int vae_num_res_blocks;                /* 2 */
    int vae_in_channels;                   /* 3 (RGB); also the decoder's output */
    int z_channels;                        /* 4 */
    int embed_dim;                         /* 4 */
    /* Text encoder: Hugging Face CLIPTextModel. */
    int text_width;                        /* 768 */
    int text_layers;                       /* 12 */
    int text_heads;                        /* 12 (no effect on shapes; must divide the width) */
    int text_mlp;                          /* 3072 */
    int text_vocab;                        /* 49408 */
    int text_positions;                    /* 77 */
    /* Non-parameter keys. */
    int with_schedule;                     /* 1: the DDPM buffers */
    int timesteps;                         /* 1000 */
    double linear_start, linear_end;       /* 0.00085, 0.012 (the "scaled linear" betas) */
    int with_position_ids;                 /* 1: text_model.embeddings.position_ids */
} sdc_sd15_config;

sdc_sd15_config sdc_sd15_config_full(void);
/* The model of shared/testdata/tiny/sd15-tiny-f32.safetensors: UNet 32/64/128/128, 8 heads,
 * context 64; VAE 32/64/128/128; CLIP width 64, 2 layers, 4 heads, MLP 256. */
sdc_sd15_config sdc_sd15_config_tiny(void);

typedef struct sdc_sd15_layout {
    sdc_sd15_tensor *t;
    size_t n, cap;
} sdc_sd15_layout;

/* Builds the tensor list. Refuses (SDC_E_INVALID_ARG, naming the field) a config with
 * non-positive or oversized sizes, widths the head counts do not divide, or GroupNorm widths not
 * divisible by 32. *out is empty on failure. */
sdc_status sdc_sd15_layout_build(const sdc_sd15_config *c, sdc_sd15_layout *out, sdc_error *err);
void sdc_sd15_layout_free(sdc_sd15_layout *l);

int64_t sdc_sd15_numel(const sdc_sd15_tensor *t);
/* Sum of numel over the parameters of one component (buffers excluded). */
int64_t sdc_sd15_param_count(const sdc_sd15_layout *l, int comp);
/* Index of the tensor called `name`, or -1. Linear search. */
long sdc_sd15_find(const sdc_sd15_layout *l, const char *name);

/* ---- the DDPM schedule buffers ---- */
#define SDC_SD15_N_SCHEDULE 12
/* In registration order: betas, alphas_cumprod, alphas_cumprod_prev, sqrt_alphas_cumprod, ... */
extern const char *const sdc_sd15_schedule_names[SDC_SD15_N_SCHEDULE];

/* Fills out[0..timesteps) with buffer `which` exactly as LDM computes it: betas =
 * linspace(sqrt(start), sqrt(end), T)^2 in float64 (torch's symmetric linspace), cumprod,
 * v_posterior = 0. The checkpoint holds these rounded to its float dtype. */
sdc_status sdc_sd15_schedule(const sdc_sd15_config *c, int which, double *out, sdc_error *err);

/* ---- classifying a key of any checkpoint by name ---- */
typedef enum sdc_sd15_key_class {
    SDC_KEY_PARAM,   /* a weight of one of the three networks (*comp says which) */
    SDC_KEY_BUFFER,  /* a DDPM schedule buffer or the text encoder's position_ids */
    SDC_KEY_OTHER    /* anything else: model_ema.*, unknown extras */
} sdc_sd15_key_class;

/* Classifies `name` by prefix. *comp (may be NULL) gets the component, or
 * SDC_SD15_NO_COMPONENT. */
sdc_sd15_key_class sdc_sd15_classify_key(const char *name, int *comp);

#endif
