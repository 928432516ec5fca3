/* src/model/model.h: the loaded checkpoint and the graph builders of its three networks.
 *
 * Each network is written once, as a builder that appends its layers to an sdc_graph for a
 * given input size. Hyperparameters come from tensor shapes (sdc_model_load fills the configs),
 * so the full SD1.5 model and the tiny test model run the same code. Module-local names follow
 * the original LDM state-dict keys, so binding a weight is a name lookup.
 */
#ifndef SDC_MODEL_MODEL_H
#define SDC_MODEL_MODEL_H

#include "graph/graph.h"
#include "io/safetensors.h"
#include "sdc.h"

#define SDC_UNET_PREFIX "model.diffusion_model."
#define SDC_VAE_PREFIX "first_stage_model."
#define SDC_CLIP_PREFIX "cond_stage_model.transformer.text_model."
#define SDC_VAE_SCALE 0.18215f

typedef struct sdc_clip_config {
    int vocab, n_pos, width, layers, heads, mlp;
} sdc_clip_config;

typedef struct sdc_unet_config {
    int in_ch, out_ch, model_ch, time_dim, ctx_dim, heads;
} sdc_unet_config;

typedef struct sdc_vae_config {
    int z_ch, out_ch, ch_top; /* latent channels, image channels, decoder conv_in width */
} sdc_vae_config;

struct sdc_model {
    sdc_st_file *st;
    sdc_weight_overlay *overlay; /* merged LoRAs (src/model/lora.h), looked up before st; NULL: none */
    char *path;
    int n_threads;
    int has_clip, has_unet, has_vae;
    sdc_clip_config clip;
    sdc_unet_config unet;
    sdc_vae_config vae;
};

/* sdc_graph_init on the model's weights: the checkpoint, under the overlay of merged LoRAs. */
static inline void sdc_model_graph_init(sdc_graph *g, const sdc_model *m, const char *prefix) {
    sdc_graph_init(g, m->st, prefix);
    g->overlay = m->overlay;
}

/* Refuses, before parsing, what is not a safetensors file: a directory, a .ckpt/.pt pickle. */
sdc_status sdc_model_check_file(const char *path, sdc_error *err);
/* Refuses other model families (SD 2.x, SDXL, LoRA, embedding, VAE-only, ...) by name. */
sdc_status sdc_model_check_family(const sdc_st_file *st, sdc_error *err);

/* Fills the configs of whichever components are present; fails on inconsistent shapes. */
sdc_status sdc_model_configure(sdc_model *m, sdc_error *err);

/* ---- CLIP text encoder ----
 * ids: input [B, 77] (f32 holding token ids). Returns the value of the conditioning
 * [B, 77, width]: with clip_skip = 1 the last layer, with N > 1 the output of layer L-N+1
 * (A1111's "Clip skip: N"), always followed by the final layer norm. */
int sdc_clip_build(sdc_graph *g, const sdc_clip_config *c, int ids, int clip_skip);
/* The same from token-embedding rows h [B, 77, width] (an input, or computed) instead of ids. */
int sdc_clip_build_embeds(sdc_graph *g, const sdc_clip_config *c, int h, int clip_skip);
/* Token-embedding rows of ids [n] -> out [n, width] as float32, as the graph's embedding op makes
 * them (f16/bf16 converted the same way). SDC_E_INVALID_ARG for an id outside the vocabulary. */
sdc_status sdc_clip_gather(const sdc_model *m, const int32_t *ids, size_t n, float *out, sdc_error *err);

/* ---- UNet ----
 * x: [B, 4, h, w] latent input, t: [B] timesteps, ctx: [B, T, ctx_dim].
 * temb_override: -1, or a [B, time_dim] post-SiLU time embedding that replaces the
 * time MLP (the deployment layout of the exported UNet). Returns eps [B, 4, h, w].
 * sdc_unet_build_temb builds just the time MLP: t [B] -> SiLU(time_embed(t)) [B, time_dim]. */
int sdc_unet_build(sdc_graph *g, const sdc_unet_config *c, int x, int t, int ctx, int temb_override);
int sdc_unet_build_temb(sdc_graph *g, const sdc_unet_config *c, int t);

/* ---- VAE decoder ----
 * z: [B, 4, h, w] already divided by 0.18215. Returns the image [B, 3, 8h, 8w], unclamped. */
int sdc_vae_decoder_build(sdc_graph *g, const sdc_vae_config *c, int z);

#endif
