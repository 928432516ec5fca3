/* src/model/vae.c: the SD1.5 VAE decoder (LDM autoencoder Decoder, diffusers AutoencoderKL.decode).
 *
 *   h = decoder.conv_in(post_quant_conv(z))                     // z already divided by 0.18215
 *   h = mid.block_1(h); h = mid.attn_1(h); h = mid.block_2(h)
 *   for level = last .. 0: block.0..n ResnetBlocks; upsample (nearest 2x + conv) except level 0
 *   image = conv_out(SiLU(norm_out(h)))                        // [B, 3, 8h, 8w], unclamped
 *
 * Levels and blocks per level are counted from the keys present. */
#include "model/model.h"

#include <stdio.h>

#define GN_GROUPS 32
#define VAE_EPS 1e-6f

static int wt(sdc_graph *g, const char *pre, const char *name, const char *part, int f32) {
    char full[192];
    snprintf(full, sizeof full, "%s%s.%s", pre, name, part);
    return f32 ? sdc_g_weight_f32(g, full, 0, NULL) : sdc_g_weight(g, full, 0, NULL);
}

static int conv(sdc_graph *g, int x, const char *pre, const char *name, int pad) {
    return sdc_g_conv2d(g, x, wt(g, pre, name, "weight", 0), wt(g, pre, name, "bias", 1), 1, pad);
}

static int gnorm(sdc_graph *g, int x, const char *pre, const char *name, int silu) {
    return sdc_g_group_norm(g, x, wt(g, pre, name, "weight", 1), wt(g, pre, name, "bias", 1),
                            GN_GROUPS, VAE_EPS, silu);
}

/* ResnetBlock without time embedding: x [B, Ci, H, W] -> [B, Co, H, W] */
static int resnet(sdc_graph *g, int x, const char *pre) {
    int h = gnorm(g, x, pre, "norm1", 1);
    h = conv(g, h, pre, "conv1", 1);
    h = gnorm(g, h, pre, "norm2", 1);
    h = conv(g, h, pre, "conv2", 1);
    char name[192];
    snprintf(name, sizeof name, "%snin_shortcut.weight", pre);
    int skip = sdc_g_has(g, name) ? conv(g, x, pre, "nin_shortcut", 0) : x;
    return sdc_g_add(g, skip, h);
}

/* Single-head self-attention over the H*W positions; q, k, v, proj_out are 1x1 convs. */
static int attn_block(sdc_graph *g, int x, const char *pre) {
    if (x < 0) return -1;
    int64_t H = g->nodes[x].shape[2], W = g->nodes[x].shape[3];
    int h = gnorm(g, x, pre, "norm", 0);
    h = sdc_g_nchw_to_nlc(g, h);                                    // [B, HW, C]
    int q = sdc_g_linear(g, h, wt(g, pre, "q", "weight", 0), wt(g, pre, "q", "bias", 1));
    int k = sdc_g_linear(g, h, wt(g, pre, "k", "weight", 0), wt(g, pre, "k", "bias", 1));
    int v = sdc_g_linear(g, h, wt(g, pre, "v", "weight", 0), wt(g, pre, "v", "bias", 1));
    int a = sdc_g_attention(g, q, k, v, 1, 0);                      // [B, HW, C]
    a = sdc_g_linear(g, a, wt(g, pre, "proj_out", "weight", 0), wt(g, pre, "proj_out", "bias", 1));
    a = sdc_g_nlc_to_nchw(g, a, H, W);                              // [B, C, H, W]
    return sdc_g_add(g, x, a);
}

int sdc_vae_decoder_build(sdc_graph *g, const sdc_vae_config *c, int z) {
    (void)c;
    char pre[96], name[160];
    int h = conv(g, z, "", "post_quant_conv", 0);                  // [B, 4, h, w]
    sdc_g_label(g, h, "vae.post_quant_conv");
    h = conv(g, h, "decoder.", "conv_in", 1);                      // [B, ch_top, h, w]
    sdc_g_label(g, h, "vae.decoder.conv_in");
    h = resnet(g, h, "decoder.mid.block_1.");
    h = attn_block(g, h, "decoder.mid.attn_1.");
    h = resnet(g, h, "decoder.mid.block_2.");
    sdc_g_label(g, h, "vae.decoder.mid_block");
    int levels = 0;
    for (;; levels++) {
        snprintf(name, sizeof name, "decoder.up.%d.block.0.conv1.weight", levels);
        if (!sdc_g_has(g, name)) break;
    }
    if (levels == 0) return sdc_g_fail(g, SDC_E_FORMAT, "vae: no decoder.up.* blocks");
    for (int level = levels - 1; level >= 0; level--) {
        for (int b = 0;; b++) {
            snprintf(pre, sizeof pre, "decoder.up.%d.block.%d.", level, b);
            snprintf(name, sizeof name, "%sconv1.weight", pre);
            if (!sdc_g_has(g, name)) break;
            h = resnet(g, h, pre);
        }
        snprintf(pre, sizeof pre, "decoder.up.%d.upsample.", level);
        snprintf(name, sizeof name, "%sconv.weight", pre);
        if (sdc_g_has(g, name)) {
            if (h < 0) return -1;
            h = sdc_g_upsample(g, h, 2 * g->nodes[h].shape[2], 2 * g->nodes[h].shape[3]);
            h = conv(g, h, pre, "conv", 1);
        }
        /* diffusers numbers its up blocks from the top: LDM up.L-1 is diffusers up_blocks.0 */
        sdc_g_label(g, h, "vae.decoder.up_blocks.%d", levels - 1 - level);
    }
    h = gnorm(g, h, "decoder.", "norm_out", 1);                    // GroupNorm + SiLU
    sdc_g_label(g, h, "vae.decoder.norm_out_silu");
    h = conv(g, h, "decoder.", "conv_out", 1);                     // [B, 3, 8h, 8w]
    return h;
}
