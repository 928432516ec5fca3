/* src/model/lora.h: LoRA files merged into a model's weights, as AUTOMATIC1111's webui
 * (extensions-builtin/Lora) applies them, and the in-memory weight overlay that holds the result.
 *
 * The overlay. A checkpoint stays mapped read-only; a merged weight is a copy in memory, in the
 * checkpoint's dtype, owned by an sdc_weight_overlay and found by its full checkpoint name
 * ("model.diffusion_model.input_blocks.1.1.proj_in.weight") before the file (graph.c's lookup).
 * Every consumer of graphs - the CPU run, the stage commands, the ONNX exporter - thus sees the
 * merged weights without a second model definition. An overlay may sit on a parent overlay
 * (lookups fall through to it): txt2img merges a prompt's <lora:...> into a child of the model's
 * overlay and frees the child afterwards, leaving the model as it was.
 *
 * The merge, for each LoRA module matched to a model weight W [out, in(, kh, kw)]:
 *     W += multiplier * scale * up @ down
 * with down [r, in(, kh, kw)] or [r, in*kh*kw], up [out, r(, 1, 1)], scale = alpha / r (1 when
 * the file has no alpha), multiplier = the text-encoder weight for CLIP weights and the UNet
 * weight for UNet weights (webui's <lora:NAME:TE:UNET>; one number sets both). The product is
 * computed in float32 and added to W in W's dtype (an f16 checkpoint stays f16, as webui's
 * `self.weight += updown`). Several LoRAs, or one applied twice, add up.
 *   - Linear layers: up [out, r] @ down [r, in].
 *   - Conv 1x1 (and the 1x1 proj_in/proj_out of SD1.5's transformers, Linear in a LoRA trained
 *     on diffusers): the same product, reshaped.
 *   - LoCon 3x3: down [r, in, 3, 3], up [out, r, 1, 1]: up @ down.reshape(r, in*9).
 *
 * Names. A LoRA tensor is "<module><part>": part is one of .lora_down.weight / .lora_up.weight /
 * .alpha (kohya), .lora_A.weight / .lora_B.weight (PEFT), .lora.down.weight / .lora.up.weight
 * and processor-style _lora.down.weight (older diffusers). A dotted diffusers module path
 * (unet.down_blocks.0..., text_encoder.text_model..., with or without base_model.model.) is
 * first written kohya-style: "lora_unet_" / "lora_te_" + the path with dots as underscores.
 * Kohya names then map to the checkpoint as webui's convert_diffusers_name_to_compvis does:
 *   lora_unet_down_blocks_{i}_{attentions|resnets}_{j}_X -> input_blocks.{1+3i+j}.{1|0}.X
 *   lora_unet_mid_block_{attentions|resnets}_{j}_X       -> middle_block.{1 | 2j}.X
 *   lora_unet_up_blocks_{i}_{attentions|resnets}_{j}_X   -> output_blocks.{3i+j}.{1|0}.X
 *   lora_unet_down_blocks_{i}_downsamplers_0_conv       -> input_blocks.{3+3i}.0.op
 *   lora_unet_up_blocks_{i}_upsamplers_0_conv           -> output_blocks.{2+3i}.{i>0 ? 2 : 1}.conv
 *   lora_unet_conv_in / conv_out / time_embedding_linear_{n} -> input_blocks.0.0 / out.2 / time_embed.{2n-2}
 *   resnet parts conv1 / conv2 / time_emb_proj / conv_shortcut -> in_layers.2 / out_layers.3 /
 *   emb_layers.1 / skip_connection; attention parts keep their names (attn1.to_q, ff.net.2 ...)
 *   lora_te_text_model_encoder_layers_{n}_X -> cond_stage_model.transformer.text_model.encoder.layers.{n}.X
 * and, when that finds nothing, LDM-style names (lora_unet_input_blocks_1_1_proj_in) by
 * replacing lora_unet with the UNet prefix, lora_te1_text_model with the text model's. The
 * underscores are matched against the checkpoint's own names, so no guessing of dots is needed.
 *
 * What is refused or reported. A tensor whose module maps to no weight of the model, or whose
 * kind is not a plain LoRA (LoHa hada_*, LoKr, lora_mid CP decomposition, DoRA dora_scale ...),
 * is not applied and is listed by name in the report: never a silent partial apply. A LoRA that
 * matches nothing, a module whose shapes disagree with the weight it maps to (an SDXL or SD2
 * LoRA: the message names the tensor and both shapes), or a file with lora_te2_* tensors (SDXL's
 * second text encoder) is refused and nothing of it is merged.
 *
 * The hash. webui's "Lora hashes" infotext field carries each LoRA's short hash: the
 * sshs_model_hash of the file's metadata when present, else kohya's "addnet" hash, the SHA-256 of
 * the file after its header (8 + N bytes), as 12 lower-case hex digits.
 */
#ifndef SDC_MODEL_LORA_H
#define SDC_MODEL_LORA_H

#include "core/threadpool.h"
#include "graph/graph.h"
#include "io/safetensors.h"
#include "model/sd15_layout.h"

#define SDC_LORA_HASH_HEX 13 /* 12 hex digits and the NUL */

/* ---- the overlay ---- */

/* A new, empty overlay on top of `parent` (NULL: directly on the checkpoint). The parent must
 * outlive it. */
sdc_status sdc_overlay_new(const sdc_weight_overlay *parent, sdc_weight_overlay **out, sdc_error *err);
/* Frees the overlay's own weights (not the parent's). Accepts NULL. */
void sdc_overlay_free(sdc_weight_overlay *o);
/* Number of weights held by this overlay itself. */
size_t sdc_overlay_count(const sdc_weight_overlay *o);
/* sdc_overlay_find (graph.h) looks through the overlay, then its parents; NULL if none has it. */

/* The LoRAs merged into an overlay and its parents, oldest first: name and short hash. */
typedef struct sdc_lora_applied {
    char *name;
    char hash[SDC_LORA_HASH_HEX];
} sdc_lora_applied;
size_t sdc_overlay_lora_count(const sdc_weight_overlay *o);
const sdc_lora_applied *sdc_overlay_lora_get(const sdc_weight_overlay *o, size_t i);

/* ---- merging ---- */

/* Merges `lora` into `ov` for a model whose checkpoint is `base`: reads the weights through the
 * overlay chain (so LoRAs add up), writes merged copies into `ov`. `name` is recorded for the
 * infotext. The arithmetic runs on `pool` (NULL: the calling thread; same result either way).
 * rep (may be NULL) receives the counts, the hash and the tensors not applied (release it with
 * sdc_lora_report_free). On failure nothing is merged (out of memory aside: then the overlay
 * may hold part of the LoRA and should be discarded). */
sdc_status sdc_lora_merge(sdc_weight_overlay *ov, const sdc_st_file *base, const sdc_st_file *lora,
                          const char *name, float te_weight, float unet_weight, sdc_pool *pool,
                          sdc_lora_report *rep, sdc_error *err);

/* The short hash webui records for a LoRA file (see above). */
void sdc_lora_hash(const sdc_st_file *lora, char hash[SDC_LORA_HASH_HEX]);

/* Maps one kohya module name (no part suffix) to the name of the weight of `base` it changes
 * ("model.diffusion_model.X.weight" or "cond_stage_model.transformer.text_model.X.weight"),
 * written into out; returns 1 if found, else 0. Exposed for tests. */
int sdc_lora_map_name(const sdc_st_file *base, const char *kohya, char *out, size_t cap);

/* ---- a random LoRA for tests (`sdc mkmodel --lora`) ----
 * Targets what kohya's sd-scripts trains by default: every Linear of the UNet's transformers
 * (attn1/attn2 to_q/k/v/out.0, ff.net.0.proj, ff.net.2) and their 1x1 proj_in/proj_out, and the
 * text encoder's self-attention (q/k/v/out_proj) and MLP (fc1, fc2); with locon also the UNet's
 * convolutions (resnet 3x3 and shortcut 1x1, down/upsamplers) as LoCon. Names are diffusers
 * paths, written kohya-style (lora_unet_down_blocks_0_attentions_0_..., with .alpha = rank / 2)
 * or PEFT-style (unet.down_blocks.0.attentions.0....lora_A.weight, no alpha). down ~ U(-1, 1) /
 * sqrt(fan_in) and up ~ U(-0.5, 0.5) so that the LoRA visibly changes a picture. */
typedef struct sdc_lora_make_params {
    const char *path;  /* output .safetensors */
    int peft;          /* 0: kohya names, 1: PEFT names */
    int rank;          /* 1..256 */
    int locon;         /* 1: also the UNet's convolutions */
    sdc_dtype dtype;   /* SDC_F32, SDC_F16 or SDC_BF16 */
    uint64_t seed;
} sdc_lora_make_params;

/* The target weights come from `model` (a checkpoint's tensors) or, when it is NULL, from the
 * layout of `config` (sd15_layout.h). The file is written via path.tmp: nothing is left on failure. */
sdc_status sdc_lora_make(const sdc_lora_make_params *p, const sdc_st_file *model, const sdc_sd15_config *config,
                         sdc_error *err);

/* The diffusers module path of an LDM UNet module ("input_blocks.1.1.proj_in" ->
 * "down_blocks.0.attentions.0.proj_in"); 0 when it has none. */
int sdc_lora_ldm_to_diffusers(const char *ldm, char *out, size_t cap);

/* One line per LoRA for people: "lora NAME: applied 24/24 tensors (12 weights)", followed by
 * "  not applied: TENSOR (reason)" lines. malloc'd; NULL when out of memory. */
char *sdc_lora_report_text(const char *name, const sdc_lora_report *rep);

#endif
