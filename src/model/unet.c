/* src/model/unet.c: the SD1.5 UNet (LDM openaimodel.UNetModel, diffusers UNet2DConditionModel).
 *
 *   emb = SiLU(time_embed(timestep_embedding(t)))                 // [B, 4*model_ch]
 *   h = conv_in(x); skips = [h]
 *   input_blocks 1..: ResBlock(h, emb) [+ SpatialTransformer(h, ctx)] or Downsample; push h
 *   middle_block: ResBlock, SpatialTransformer, ResBlock
 *   output_blocks: h = cat(h, skips.pop()); ResBlock [+ SpatialTransformer] [+ Upsample]
 *   eps = conv_out(SiLU(GroupNorm(h)))
 *
 * The block structure is read from which keys exist (input_blocks.N.1.* present = attention at
 * that block), so the builder needs no table of levels. Odd latent sizes: a stride-2 conv rounds
 * up, and each upsampler resizes to the exact size of the skip it is concatenated with next, as
 * diffusers does (nearest, torch index rule). */
#include "model/model.h"

#include <stdio.h>
#include <string.h>

#define GN_GROUPS 32
#define RES_EPS 1e-5f  /* ResBlock and output GroupNorm */
#define ST_EPS 1e-6f   /* SpatialTransformer GroupNorm */
#define LN_EPS 1e-5f
#define MAX_SKIPS 64

/* ---------------------------------------------------------------- small helpers */

static int w_any(sdc_graph *g, const char *pre, const char *name) {
    char full[320];
    snprintf(full, sizeof full, "%s%s", pre, name);
    return sdc_g_weight(g, full, 0, NULL);
}

static int w_f32(sdc_graph *g, const char *pre, const char *name) {
    char full[320];
    snprintf(full, sizeof full, "%s%s", pre, name);
    return sdc_g_weight_f32(g, full, 0, NULL);
}

static int has(sdc_graph *g, const char *pre, const char *name) {
    char full[320];
    snprintf(full, sizeof full, "%s%s", pre, name);
    return sdc_g_has(g, full);
}

/* conv with "<pre><name>.weight" / ".bias" */
static int conv(sdc_graph *g, int x, const char *pre, const char *name, int stride, int pad) {
    char w[160], b[160];
    snprintf(w, sizeof w, "%s.weight", name);
    snprintf(b, sizeof b, "%s.bias", name);
    return sdc_g_conv2d(g, x, w_any(g, pre, w), w_f32(g, pre, b), stride, pad);
}

static int linear(sdc_graph *g, int x, const char *pre, const char *name, int with_bias) {
    char w[160], b[160];
    snprintf(w, sizeof w, "%s.weight", name);
    snprintf(b, sizeof b, "%s.bias", name);
    return sdc_g_linear(g, x, w_any(g, pre, w), with_bias ? w_f32(g, pre, b) : -1);
}

static int gnorm(sdc_graph *g, int x, const char *pre, const char *name, float eps, int silu) {
    char w[160], b[160];
    snprintf(w, sizeof w, "%s.weight", name);
    snprintf(b, sizeof b, "%s.bias", name);
    return sdc_g_group_norm(g, x, w_f32(g, pre, w), w_f32(g, pre, b), GN_GROUPS, eps, silu);
}

static int lnorm(sdc_graph *g, int x, const char *pre, const char *name) {
    char w[160], b[160];
    snprintf(w, sizeof w, "%s.weight", name);
    snprintf(b, sizeof b, "%s.bias", name);
    return sdc_g_layer_norm(g, x, w_f32(g, pre, w), w_f32(g, pre, b), LN_EPS);
}

/* ---------------------------------------------------------------- blocks */

/* ResBlock: x [B, Ci, H, W], emb_act [B, E] (already SiLU'd) -> [B, Co, H, W] */
static int res_block(sdc_graph *g, int x, int emb_act, const char *pre) {
    int h = gnorm(g, x, pre, "in_layers.0", RES_EPS, 1);        // [B, Ci, H, W]
    h = conv(g, h, pre, "in_layers.2", 1, 1);                   // [B, Co, H, W]
    int e = linear(g, emb_act, pre, "emb_layers.1", 1);         // [B, Co]
    h = sdc_g_add_channel(g, h, e);
    h = gnorm(g, h, pre, "out_layers.0", RES_EPS, 1);
    h = conv(g, h, pre, "out_layers.3", 1, 1);                  // [B, Co, H, W]
    int skip = has(g, pre, "skip_connection.weight") ? conv(g, x, pre, "skip_connection", 1, 0) : x;
    return sdc_g_add(g, skip, h);
}

/* CrossAttention: x [B, N, C], ctx [B, T, Cc] (ctx = x for self-attention) -> [B, N, C] */
static int cross_attention(sdc_graph *g, int x, int ctx, const char *pre, int heads) {
    int q = linear(g, x, pre, "to_q", 0);                       // [B, N, C]
    int k = linear(g, ctx, pre, "to_k", 0);                     // [B, T, C]
    int v = linear(g, ctx, pre, "to_v", 0);                     // [B, T, C]
    int a = sdc_g_attention(g, q, k, v, heads, 0);              // [B, N, C]
    return linear(g, a, pre, "to_out.0", 1);
}

/* SpatialTransformer (1x1-conv projections): x [B, C, H, W], ctx [B, T, Cc] */
static int spatial_transformer(sdc_graph *g, int x, int ctx, const char *pre, int heads) {
    if (x < 0) return -1;
    const sdc_node *X = &g->nodes[x];
    int64_t H = X->shape[2], W = X->shape[3];
    int h = gnorm(g, x, pre, "norm", ST_EPS, 0);
    h = conv(g, h, pre, "proj_in", 1, 0);                       // [B, C, H, W]
    h = sdc_g_nchw_to_nlc(g, h);                                // [B, HW, C]
    char blk[128], attn[160];
    for (int d = 0;; d++) {
        snprintf(blk, sizeof blk, "%stransformer_blocks.%d.", pre, d);
        if (!has(g, blk, "norm1.weight")) break;
        int a = lnorm(g, h, blk, "norm1");
        snprintf(attn, sizeof attn, "%sattn1.", blk);
        h = sdc_g_add(g, h, cross_attention(g, a, a, attn, heads));   // self-attention
        a = lnorm(g, h, blk, "norm2");
        snprintf(attn, sizeof attn, "%sattn2.", blk);
        h = sdc_g_add(g, h, cross_attention(g, a, ctx, attn, heads)); // cross-attention on ctx
        a = lnorm(g, h, blk, "norm3");
        a = linear(g, a, blk, "ff.net.0.proj", 1);              // [B, HW, 8C]
        a = sdc_g_geglu(g, a);                                  // [B, HW, 4C]
        a = linear(g, a, blk, "ff.net.2", 1);                   // [B, HW, C]
        h = sdc_g_add(g, h, a);
    }
    h = sdc_g_nlc_to_nchw(g, h, H, W);                          // [B, C, H, W]
    h = conv(g, h, pre, "proj_out", 1, 0);
    return sdc_g_add(g, h, x);
}

static int shape_dim(const sdc_graph *g, int v, int d) { return v >= 0 ? (int)g->nodes[v].shape[d] : 1; }

/* ---------------------------------------------------------------- the network */

int sdc_unet_build_temb(sdc_graph *g, const sdc_unet_config *c, int t) {
    const char *pre = "";
    int e = sdc_g_timestep_embed(g, t, c->model_ch);            // [B, model_ch]
    e = linear(g, e, pre, "time_embed.0", 1);                   // [B, time_dim]
    e = sdc_g_silu(g, e);
    e = linear(g, e, pre, "time_embed.2", 1);                   // [B, time_dim]
    e = sdc_g_silu(g, e);                                       // what every ResBlock consumes
    sdc_g_label(g, e, "unet.temb");
    return e;
}

int sdc_unet_build(sdc_graph *g, const sdc_unet_config *c, int x, int t, int ctx, int temb_override) {
    int emb = temb_override >= 0 ? temb_override : sdc_unet_build_temb(g, c, t);
    int skips[MAX_SKIPS], n_skips = 0;
    char pre[96];

    int h = conv(g, x, "", "input_blocks.0.0", 1, 1);           // [B, model_ch, h, w]
    sdc_g_label(g, h, "unet.conv_in");
    skips[n_skips++] = h;
    for (int i = 1; n_skips < MAX_SKIPS; i++) {
        snprintf(pre, sizeof pre, "input_blocks.%d.0.", i);
        if (has(g, pre, "op.weight")) {
            h = conv(g, h, pre, "op", 2, 1);                    // [B, C, ceil(h/2), ceil(w/2)]
        } else if (has(g, pre, "in_layers.2.weight")) {
            h = res_block(g, h, emb, pre);
            snprintf(pre, sizeof pre, "input_blocks.%d.1.", i);
            if (has(g, pre, "norm.weight")) h = spatial_transformer(g, h, ctx, pre, c->heads);
        } else
            break;
        sdc_g_label(g, h, "unet.input_blocks.%d", i);
        skips[n_skips++] = h;
    }

    h = res_block(g, h, emb, "middle_block.0.");
    h = spatial_transformer(g, h, ctx, "middle_block.1.", c->heads);
    h = res_block(g, h, emb, "middle_block.2.");
    sdc_g_label(g, h, "unet.mid_block");

    for (int i = 0; n_skips > 0; i++) {
        snprintf(pre, sizeof pre, "output_blocks.%d.", i);
        if (!has(g, pre, "0.in_layers.2.weight"))
            return sdc_g_fail(g, SDC_E_FORMAT, "unet: missing %s0.* (output blocks do not mirror the input blocks)", pre);
        h = sdc_g_concat_c(g, h, skips[--n_skips]);             // [B, C + Cskip, H, W]
        snprintf(pre, sizeof pre, "output_blocks.%d.0.", i);
        h = res_block(g, h, emb, pre);
        for (int j = 1; j <= 2; j++) {
            snprintf(pre, sizeof pre, "output_blocks.%d.%d.", i, j);
            if (has(g, pre, "norm.weight")) {
                h = spatial_transformer(g, h, ctx, pre, c->heads);
            } else if (has(g, pre, "conv.weight")) {
                /* resize to the skip this feeds next (2x unless the input size was odd) */
                int next = n_skips > 0 ? skips[n_skips - 1] : -1;
                int64_t oh = next >= 0 ? shape_dim(g, next, 2) : 2 * shape_dim(g, h, 2);
                int64_t ow = next >= 0 ? shape_dim(g, next, 3) : 2 * shape_dim(g, h, 3);
                h = sdc_g_upsample(g, h, oh, ow);
                h = conv(g, h, pre, "conv", 1, 1);
            }
        }
        sdc_g_label(g, h, "unet.output_blocks.%d", i);
    }
    h = gnorm(g, h, "", "out.0", RES_EPS, 1);
    h = conv(g, h, "", "out.2", 1, 1);                          // [B, 4, h, w]
    return h;
}
