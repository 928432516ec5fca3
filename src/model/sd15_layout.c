/* src/model/sd15_layout.c: the SD1.5 tensor table, built by walking the three networks the way
 * their PyTorch constructors register modules (see the header for the contract).
 *
 * References, the code whose state dict this reproduces:
 *  - UNet: ldm/modules/diffusionmodules/openaimodel.py (UNetModel, ResBlock, Downsample,
 *    Upsample) and ldm/modules/attention.py (SpatialTransformer, BasicTransformerBlock,
 *    CrossAttention, FeedForward with GEGLU);
 *  - VAE: ldm/models/autoencoder.py (AutoencoderKL) and ldm/modules/diffusionmodules/model.py
 *    (Encoder, Decoder, ResnetBlock, AttnBlock);
 *  - text: transformers CLIPTextModel (embeddings, encoder.layers.N, final_layer_norm);
 *  - schedule: ldm/models/diffusion/ddpm.py (DDPM.register_schedule).
 */
#include "model/sd15_layout.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Presets                                                                                     */
/* ------------------------------------------------------------------------------------------ */

sdc_sd15_config sdc_sd15_config_full(void) {
    sdc_sd15_config c = {
        .unet_in_channels = 4, .unet_out_channels = 4, .model_channels = 320, .n_levels = 4,
        .channel_mult = {1, 2, 4, 4}, .attn_level = {1, 1, 1, 0}, .num_res_blocks = 2,
        .num_heads = 8, .transformer_depth = 1, .context_dim = 768,
        .vae_ch = 128, .vae_n_levels = 4, .vae_ch_mult = {1, 2, 4, 4}, .vae_num_res_blocks = 2,
        .vae_in_channels = 3, .z_channels = 4, .embed_dim = 4,
        .text_width = 768, .text_layers = 12, .text_heads = 12, .text_mlp = 3072,
        .text_vocab = 49408, .text_positions = 77,
        .with_schedule = 1, .timesteps = 1000, .linear_start = 0.00085, .linear_end = 0.012,
        .with_position_ids = 1,
    };
    return c;
}

sdc_sd15_config sdc_sd15_config_tiny(void) {
    sdc_sd15_config c = sdc_sd15_config_full();
    c.model_channels = 32;
    c.context_dim = 64;
    c.vae_ch = 32;
    c.text_width = 64;
    c.text_layers = 2;
    c.text_heads = 4;
    c.text_mlp = 256;
    return c;
}

const char *sdc_sd15_component_name(int comp) {
    switch (comp) {
    case SDC_SD15_UNET: return "unet";
    case SDC_SD15_VAE: return "vae";
    case SDC_SD15_TEXT: return "text_encoder";
    default: return "none";
    }
}

const char *const sdc_sd15_schedule_names[SDC_SD15_N_SCHEDULE] = {
    "betas",
    "alphas_cumprod",
    "alphas_cumprod_prev",
    "sqrt_alphas_cumprod",
    "sqrt_one_minus_alphas_cumprod",
    "log_one_minus_alphas_cumprod",
    "sqrt_recip_alphas_cumprod",
    "sqrt_recipm1_alphas_cumprod",
    "posterior_variance",
    "posterior_log_variance_clipped",
    "posterior_mean_coef1",
    "posterior_mean_coef2",
};

/* ------------------------------------------------------------------------------------------ */
/* The builder: appends entries; the first failure sticks and later calls do nothing           */
/* ------------------------------------------------------------------------------------------ */

typedef struct builder {
    sdc_sd15_layout *l;
    sdc_error *err;
    sdc_status st;
    int comp; /* component of the entries being added */
} builder;

static void add(builder *b, sdc_sd15_init init, int64_t fan_in, int ndim, const int64_t *shape,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

static void add(builder *b, sdc_sd15_init init, int64_t fan_in, int ndim, const int64_t *shape,
                const char *fmt, ...) {
    if (b->st != SDC_OK) return;
    sdc_sd15_layout *l = b->l;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 256;
        sdc_sd15_tensor *t = realloc(l->t, cap * sizeof *t);
        if (!t) {
            b->st = sdc_fail(b->err, SDC_E_NOMEM, "sd15 layout: out of memory (%zu tensors)", cap);
            return;
        }
        l->t = t;
        l->cap = cap;
    }
    sdc_sd15_tensor *t = &l->t[l->n];
    memset(t, 0, sizeof *t);
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(t->name, sizeof t->name, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof t->name) {
        b->st = sdc_fail(b->err, SDC_E_LIMIT, "sd15 layout: tensor name too long (%s...)", t->name);
        return;
    }
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    t->comp = b->comp;
    t->init = init;
    t->fan_in = fan_in;
    l->n++;
}

/* Conv2d(in, out, k) with bias: "<p>.weight" [out, in, k, k], "<p>.bias" [out]. */
static void conv(builder *b, const char *p, int out, int in, int k) {
    int64_t fan_in = (int64_t)in * k * k;
    add(b, SDC_INIT_FAN_IN, fan_in, 4, (int64_t[]){out, in, k, k}, "%s.weight", p);
    add(b, SDC_INIT_FAN_IN, fan_in, 1, (int64_t[]){out}, "%s.bias", p);
}

/* Linear(in, out): "<p>.weight" [out, in], and "<p>.bias" [out] when `bias`. */
static void linear(builder *b, const char *p, int out, int in, int bias) {
    add(b, SDC_INIT_FAN_IN, in, 2, (int64_t[]){out, in}, "%s.weight", p);
    if (bias) add(b, SDC_INIT_FAN_IN, in, 1, (int64_t[]){out}, "%s.bias", p);
}

/* GroupNorm or LayerNorm over `ch` channels: "<p>.weight", "<p>.bias", both [ch]. */
static void norm(builder *b, const char *p, int ch) {
    add(b, SDC_INIT_NORM_WEIGHT, 0, 1, (int64_t[]){ch}, "%s.weight", p);
    add(b, SDC_INIT_NORM_BIAS, 0, 1, (int64_t[]){ch}, "%s.bias", p);
}

/* Formats a module path into buf. The buffers hold twice the longest name, so a path that had to
 * be cut short still makes add() refuse the name as too long. */
#define PATH_MAX_ (2 * SDC_SD15_NAME_MAX)
static const char *fmt_path(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static const char *fmt_path(char *buf, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, PATH_MAX_, fmt, ap);
    va_end(ap);
    return buf;
}
#define PATH(buf, ...) fmt_path(buf, __VA_ARGS__)

/* ------------------------------------------------------------------------------------------ */
/* UNet (openaimodel.UNetModel)                                                                */
/* ------------------------------------------------------------------------------------------ */

/* ResBlock: GroupNorm, SiLU, conv3x3 / SiLU, Linear(temb) / GroupNorm, SiLU, dropout, conv3x3,
 * plus a 1x1 skip conv when the width changes. */
static void unet_resblock(builder *b, const char *p, int in, int out, int temb) {
    char s[PATH_MAX_];
    norm(b, PATH(s, "%s.in_layers.0", p), in);
    conv(b, PATH(s, "%s.in_layers.2", p), out, in, 3);
    linear(b, PATH(s, "%s.emb_layers.1", p), out, temb, 1);
    norm(b, PATH(s, "%s.out_layers.0", p), out);
    conv(b, PATH(s, "%s.out_layers.3", p), out, out, 3);
    if (in != out) conv(b, PATH(s, "%s.skip_connection", p), out, in, 1);
}

/* SpatialTransformer: GroupNorm, 1x1 proj_in, `depth` BasicTransformerBlocks (self-attention,
 * GEGLU feed-forward of 4x width, cross-attention on the context; registered attn1, ff, attn2,
 * norm1..3), 1x1 proj_out. The attention width equals `ch` (heads x ch/heads). */
static void unet_transformer(builder *b, const char *p, int ch, int ctx, int depth) {
    char s[PATH_MAX_], q[PATH_MAX_];
    norm(b, PATH(s, "%s.norm", p), ch);
    conv(b, PATH(s, "%s.proj_in", p), ch, ch, 1);
    for (int d = 0; d < depth; d++) {
        PATH(q, "%s.transformer_blocks.%d", p, d);
        linear(b, PATH(s, "%s.attn1.to_q", q), ch, ch, 0);
        linear(b, PATH(s, "%s.attn1.to_k", q), ch, ch, 0);
        linear(b, PATH(s, "%s.attn1.to_v", q), ch, ch, 0);
        linear(b, PATH(s, "%s.attn1.to_out.0", q), ch, ch, 1);
        linear(b, PATH(s, "%s.ff.net.0.proj", q), 8 * ch, ch, 1); /* GEGLU: value and gate */
        linear(b, PATH(s, "%s.ff.net.2", q), ch, 4 * ch, 1);
        linear(b, PATH(s, "%s.attn2.to_q", q), ch, ch, 0);
        linear(b, PATH(s, "%s.attn2.to_k", q), ch, ctx, 0);
        linear(b, PATH(s, "%s.attn2.to_v", q), ch, ctx, 0);
        linear(b, PATH(s, "%s.attn2.to_out.0", q), ch, ch, 1);
        norm(b, PATH(s, "%s.norm1", q), ch);
        norm(b, PATH(s, "%s.norm2", q), ch);
        norm(b, PATH(s, "%s.norm3", q), ch);
    }
    conv(b, PATH(s, "%s.proj_out", p), ch, ch, 1);
}

static void build_unet(builder *b, const sdc_sd15_config *c) {
    const char *P = SDC_SD15_UNET_PREFIX;
    char s[PATH_MAX_];
    int mc = c->model_channels, temb = 4 * mc;
    b->comp = SDC_SD15_UNET;

    linear(b, PATH(s, "%stime_embed.0", P), temb, mc, 1);
    linear(b, PATH(s, "%stime_embed.2", P), temb, temb, 1);

    /* input_blocks: conv_in, then per level num_res_blocks x (ResBlock [+ transformer]), then a
     * stride-2 conv except after the last level. skip[] records each block's output width: the
     * output blocks concatenate them back in reverse order. */
    int skip[1 + SDC_SD15_MAX_LEVELS * 9], nskip = 0, blk = 0, ch = mc;
    conv(b, PATH(s, "%sinput_blocks.%d.0", P, blk++), mc, c->unet_in_channels, 3);
    skip[nskip++] = ch;
    for (int lv = 0; lv < c->n_levels; lv++) {
        int out = mc * c->channel_mult[lv];
        for (int r = 0; r < c->num_res_blocks; r++, blk++) {
            unet_resblock(b, PATH(s, "%sinput_blocks.%d.0", P, blk), ch, out, temb);
            ch = out;
            if (c->attn_level[lv])
                unet_transformer(b, PATH(s, "%sinput_blocks.%d.1", P, blk), ch, c->context_dim,
                                 c->transformer_depth);
            skip[nskip++] = ch;
        }
        if (lv != c->n_levels - 1) {
            conv(b, PATH(s, "%sinput_blocks.%d.0.op", P, blk++), ch, ch, 3);
            skip[nskip++] = ch;
        }
    }

    /* middle_block: ResBlock, transformer, ResBlock (the transformer always, as in SD1.5). */
    unet_resblock(b, PATH(s, "%smiddle_block.0", P), ch, ch, temb);
    unet_transformer(b, PATH(s, "%smiddle_block.1", P), ch, c->context_dim, c->transformer_depth);
    unet_resblock(b, PATH(s, "%smiddle_block.2", P), ch, ch, temb);

    /* output_blocks: levels in reverse, num_res_blocks + 1 ResBlocks each, fed the concatenation
     * of the running tensor and one skip; an upsampling conv closes every level but the first. */
    blk = 0;
    for (int lv = c->n_levels - 1; lv >= 0; lv--) {
        int out = mc * c->channel_mult[lv];
        for (int r = 0; r <= c->num_res_blocks; r++, blk++) {
            int in = ch + skip[--nskip];
            int sub = 0;
            unet_resblock(b, PATH(s, "%soutput_blocks.%d.%d", P, blk, sub++), in, out, temb);
            ch = out;
            if (c->attn_level[lv])
                unet_transformer(b, PATH(s, "%soutput_blocks.%d.%d", P, blk, sub++), ch,
                                 c->context_dim, c->transformer_depth);
            if (lv > 0 && r == c->num_res_blocks)
                conv(b, PATH(s, "%soutput_blocks.%d.%d.conv", P, blk, sub++), ch, ch, 3);
        }
    }

    norm(b, PATH(s, "%sout.0", P), ch);
    conv(b, PATH(s, "%sout.2", P), c->unet_out_channels, mc, 3);
}

/* ------------------------------------------------------------------------------------------ */
/* VAE (autoencoder.AutoencoderKL: encoder, decoder, quant_conv, post_quant_conv)              */
/* ------------------------------------------------------------------------------------------ */

/* ResnetBlock without time embedding: norm1, conv1, norm2, conv2 [, 1x1 nin_shortcut]. */
static void vae_resblock(builder *b, const char *p, int in, int out) {
    char s[PATH_MAX_];
    norm(b, PATH(s, "%s.norm1", p), in);
    conv(b, PATH(s, "%s.conv1", p), out, in, 3);
    norm(b, PATH(s, "%s.norm2", p), out);
    conv(b, PATH(s, "%s.conv2", p), out, out, 3);
    if (in != out) conv(b, PATH(s, "%s.nin_shortcut", p), out, in, 1);
}

/* AttnBlock: GroupNorm, then q, k, v, proj_out as 1x1 convs. */
static void vae_attn(builder *b, const char *p, int ch) {
    char s[PATH_MAX_];
    norm(b, PATH(s, "%s.norm", p), ch);
    conv(b, PATH(s, "%s.q", p), ch, ch, 1);
    conv(b, PATH(s, "%s.k", p), ch, ch, 1);
    conv(b, PATH(s, "%s.v", p), ch, ch, 1);
    conv(b, PATH(s, "%s.proj_out", p), ch, ch, 1);
}

static void vae_mid(builder *b, const char *p, int ch) {
    char s[PATH_MAX_];
    vae_resblock(b, PATH(s, "%s.mid.block_1", p), ch, ch);
    vae_attn(b, PATH(s, "%s.mid.attn_1", p), ch);
    vae_resblock(b, PATH(s, "%s.mid.block_2", p), ch, ch);
}

static void build_vae(builder *b, const sdc_sd15_config *c) {
    const char *P = SDC_SD15_VAE_PREFIX;
    char s[PATH_MAX_], e[PATH_MAX_];
    int nl = c->vae_n_levels, z = c->z_channels;
    b->comp = SDC_SD15_VAE;

    /* Encoder (double_z: it outputs mean and log-variance, 2 * z_channels). */
    PATH(e, "%sencoder", P);
    int ch = c->vae_ch;
    conv(b, PATH(s, "%s.conv_in", e), ch, c->vae_in_channels, 3);
    for (int lv = 0; lv < nl; lv++) {
        int out = c->vae_ch * c->vae_ch_mult[lv];
        for (int r = 0; r < c->vae_num_res_blocks; r++) {
            vae_resblock(b, PATH(s, "%s.down.%d.block.%d", e, lv, r), ch, out);
            ch = out;
        }
        if (lv != nl - 1) conv(b, PATH(s, "%s.down.%d.downsample.conv", e, lv), ch, ch, 3);
    }
    vae_mid(b, e, ch);
    norm(b, PATH(s, "%s.norm_out", e), ch);
    conv(b, PATH(s, "%s.conv_out", e), 2 * z, ch, 3);

    /* Decoder: levels are built from the deepest up but registered as up.0 .. up.N-1, so walk
     * them in index order, with each level's input width being the output of the level above. */
    PATH(e, "%sdecoder", P);
    int top = c->vae_ch * c->vae_ch_mult[nl - 1];
    conv(b, PATH(s, "%s.conv_in", e), top, z, 3);
    vae_mid(b, e, top);
    for (int lv = 0; lv < nl; lv++) {
        int in = lv == nl - 1 ? top : c->vae_ch * c->vae_ch_mult[lv + 1];
        int out = c->vae_ch * c->vae_ch_mult[lv];
        for (int r = 0; r <= c->vae_num_res_blocks; r++) {
            vae_resblock(b, PATH(s, "%s.up.%d.block.%d", e, lv, r), in, out);
            in = out;
        }
        if (lv != 0) conv(b, PATH(s, "%s.up.%d.upsample.conv", e, lv), out, out, 3);
    }
    norm(b, PATH(s, "%s.norm_out", e), c->vae_ch * c->vae_ch_mult[0]);
    conv(b, PATH(s, "%s.conv_out", e), c->vae_in_channels, c->vae_ch * c->vae_ch_mult[0], 3);

    conv(b, PATH(s, "%squant_conv", P), 2 * c->embed_dim, 2 * z, 1);
    conv(b, PATH(s, "%spost_quant_conv", P), z, c->embed_dim, 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Text encoder (transformers CLIPTextModel)                                                   */
/* ------------------------------------------------------------------------------------------ */

static void build_text(builder *b, const sdc_sd15_config *c) {
    const char *P = SDC_SD15_TEXT_MODEL_PREFIX;
    char s[PATH_MAX_];
    int w = c->text_width;
    b->comp = SDC_SD15_TEXT;

    /* state_dict order: the embeddings module's own buffer, then its children */
    if (c->with_position_ids)
        add(b, SDC_INIT_POSITION_IDS, 0, 2, (int64_t[]){1, c->text_positions},
            "%sembeddings.position_ids", P);
    add(b, SDC_INIT_EMBEDDING, 0, 2, (int64_t[]){c->text_vocab, w},
        "%sembeddings.token_embedding.weight", P);
    add(b, SDC_INIT_EMBEDDING, 0, 2, (int64_t[]){c->text_positions, w},
        "%sembeddings.position_embedding.weight", P);
    for (int i = 0; i < c->text_layers; i++) {
        /* CLIPEncoderLayer: self_attn (k, v, q, out as registered), layer_norm1, mlp, layer_norm2 */
        linear(b, PATH(s, "%sencoder.layers.%d.self_attn.k_proj", P, i), w, w, 1);
        linear(b, PATH(s, "%sencoder.layers.%d.self_attn.v_proj", P, i), w, w, 1);
        linear(b, PATH(s, "%sencoder.layers.%d.self_attn.q_proj", P, i), w, w, 1);
        linear(b, PATH(s, "%sencoder.layers.%d.self_attn.out_proj", P, i), w, w, 1);
        norm(b, PATH(s, "%sencoder.layers.%d.layer_norm1", P, i), w);
        linear(b, PATH(s, "%sencoder.layers.%d.mlp.fc1", P, i), c->text_mlp, w, 1);
        linear(b, PATH(s, "%sencoder.layers.%d.mlp.fc2", P, i), w, c->text_mlp, 1);
        norm(b, PATH(s, "%sencoder.layers.%d.layer_norm2", P, i), w);
    }
    norm(b, PATH(s, "%sfinal_layer_norm", P), w);
}

/* ------------------------------------------------------------------------------------------ */
/* Validation and the public calls                                                             */
/* ------------------------------------------------------------------------------------------ */

#define DIM_MAX (1 << 20) /* no SD-family width comes near; keeps every product in int64 */

static sdc_status check_range(const char *field, int v, int lo, int hi, sdc_error *err) {
    if (v < lo || v > hi)
        return sdc_fail(err, SDC_E_INVALID_ARG, "sd15 config: %s = %d is outside [%d, %d]", field,
                        v, lo, hi);
    return SDC_OK;
}

static sdc_status check_config(const sdc_sd15_config *c, sdc_error *err) {
#define RANGE(f, lo, hi) SDC_TRY(check_range(#f, c->f, lo, hi, err))
    RANGE(unet_in_channels, 1, 64);
    RANGE(unet_out_channels, 1, 64);
    RANGE(model_channels, 32, 4096);
    RANGE(n_levels, 1, SDC_SD15_MAX_LEVELS);
    RANGE(num_res_blocks, 1, 8);
    RANGE(num_heads, 1, 256);
    RANGE(transformer_depth, 1, 16);
    RANGE(context_dim, 1, 16384);
    RANGE(vae_ch, 32, 4096);
    RANGE(vae_n_levels, 1, SDC_SD15_MAX_LEVELS);
    RANGE(vae_num_res_blocks, 1, 8);
    RANGE(vae_in_channels, 1, 64);
    RANGE(z_channels, 1, 64);
    RANGE(embed_dim, 1, 64);
    RANGE(text_width, 1, 16384);
    RANGE(text_layers, 1, 64);
    RANGE(text_heads, 1, 256);
    RANGE(text_mlp, 1, 65536);
    RANGE(text_vocab, 1, 1 << 20);
    RANGE(text_positions, 1, 4096);
    if (c->with_schedule) RANGE(timesteps, 2, 10000);
#undef RANGE
    /* GroupNorm(32) needs every UNet/VAE width divisible by 32: model_channels and vae_ch are,
     * so all multiples (and the UNet's concatenations) are too. */
    if (c->model_channels % 32 || c->vae_ch % 32)
        return sdc_fail(err, SDC_E_INVALID_ARG,
                        "sd15 config: model_channels %d and vae_ch %d must be multiples of 32 "
                        "(GroupNorm with 32 groups)", c->model_channels, c->vae_ch);
    for (int lv = 0; lv < c->n_levels; lv++) {
        SDC_TRY(check_range("channel_mult", c->channel_mult[lv], 1, 64, err));
        int w = c->model_channels * c->channel_mult[lv];
        if (w > DIM_MAX)
            return sdc_fail(err, SDC_E_INVALID_ARG, "sd15 config: UNet width %d too large", w);
        if ((c->attn_level[lv] || lv == c->n_levels - 1) && w % c->num_heads)
            return sdc_fail(err, SDC_E_INVALID_ARG,
                            "sd15 config: num_heads %d does not divide the UNet width %d",
                            c->num_heads, w);
    }
    for (int lv = 0; lv < c->vae_n_levels; lv++)
        SDC_TRY(check_range("vae_ch_mult", c->vae_ch_mult[lv], 1, 64, err));
    if (c->text_width % c->text_heads)
        return sdc_fail(err, SDC_E_INVALID_ARG,
                        "sd15 config: text_heads %d does not divide text_width %d", c->text_heads,
                        c->text_width);
    if (c->with_schedule &&
        !(c->linear_start > 0 && c->linear_end > 0 && c->linear_start < 1 && c->linear_end < 1))
        return sdc_fail(err, SDC_E_INVALID_ARG,
                        "sd15 config: linear_start %g / linear_end %g must lie in (0, 1)",
                        c->linear_start, c->linear_end);
    return SDC_OK;
}

sdc_status sdc_sd15_layout_build(const sdc_sd15_config *c, sdc_sd15_layout *out, sdc_error *err) {
    memset(out, 0, sizeof *out);
    SDC_TRY(check_config(c, err));
    builder b = {.l = out, .err = err, .st = SDC_OK, .comp = SDC_SD15_NO_COMPONENT};
    if (c->with_schedule)
        for (int i = 0; i < SDC_SD15_N_SCHEDULE; i++) {
            add(&b, SDC_INIT_SCHEDULE, 0, 1, (int64_t[]){c->timesteps}, "%s",
                sdc_sd15_schedule_names[i]);
            if (b.st == SDC_OK) out->t[out->n - 1].schedule = i;
        }
    build_unet(&b, c);
    build_vae(&b, c);
    build_text(&b, c);
    if (b.st != SDC_OK) sdc_sd15_layout_free(out);
    return b.st;
}

void sdc_sd15_layout_free(sdc_sd15_layout *l) {
    if (!l) return;
    free(l->t);
    memset(l, 0, sizeof *l);
}

int64_t sdc_sd15_numel(const sdc_sd15_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

int64_t sdc_sd15_param_count(const sdc_sd15_layout *l, int comp) {
    int64_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        if (l->t[i].comp == comp && sdc_sd15_is_param(&l->t[i])) n += sdc_sd15_numel(&l->t[i]);
    return n;
}

long sdc_sd15_find(const sdc_sd15_layout *l, const char *name) {
    for (size_t i = 0; i < l->n; i++)
        if (!strcmp(l->t[i].name, name)) return (long)i;
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* DDPM schedule                                                                               */
/* ------------------------------------------------------------------------------------------ */

sdc_status sdc_sd15_schedule(const sdc_sd15_config *c, int which, double *out, sdc_error *err) {
    if (which < 0 || which >= SDC_SD15_N_SCHEDULE)
        return sdc_fail(err, SDC_E_INVALID_ARG, "sd15 schedule: no buffer number %d", which);
    if (c->timesteps < 2 || c->timesteps > 10000)
        return sdc_fail(err, SDC_E_INVALID_ARG, "sd15 schedule: timesteps %d outside [2, 10000]",
                        c->timesteps);
    int T = c->timesteps;
    double *beta = malloc(3 * (size_t)T * sizeof *beta);
    if (!beta) return sdc_fail(err, SDC_E_NOMEM, "sd15 schedule: out of memory");
    double *ac = beta + T, *acp = ac + T;

    /* torch.linspace(start, end, T, dtype=float64): the first half counts up from start, the
     * second half down from end (ATen's symmetric form), then squared. */
    double a = sqrt(c->linear_start), z = sqrt(c->linear_end), step = (z - a) / (T - 1);
    for (int i = 0; i < T; i++) {
        double v = i < T / 2 ? a + step * i : z - step * (T - i - 1);
        beta[i] = v * v;
    }
    double prod = 1.0;
    for (int i = 0; i < T; i++) {
        acp[i] = prod;
        prod *= 1.0 - beta[i];
        ac[i] = prod;
    }
    for (int i = 0; i < T; i++) {
        double b = beta[i], pv = b * (1.0 - acp[i]) / (1.0 - ac[i]);
        switch (which) {
        case 0: out[i] = b; break;
        case 1: out[i] = ac[i]; break;
        case 2: out[i] = acp[i]; break;
        case 3: out[i] = sqrt(ac[i]); break;
        case 4: out[i] = sqrt(1.0 - ac[i]); break;
        case 5: out[i] = log(1.0 - ac[i]); break;
        case 6: out[i] = sqrt(1.0 / ac[i]); break;
        case 7: out[i] = sqrt(1.0 / ac[i] - 1.0); break;
        case 8: out[i] = pv; break;
        case 9: out[i] = log(pv > 1e-20 ? pv : 1e-20); break;
        case 10: out[i] = b * sqrt(acp[i]) / (1.0 - ac[i]); break;
        case 11: out[i] = (1.0 - acp[i]) * sqrt(1.0 - b) / (1.0 - ac[i]); break;
        }
    }
    free(beta);
    return SDC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Key classification                                                                          */
/* ------------------------------------------------------------------------------------------ */

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

sdc_sd15_key_class sdc_sd15_classify_key(const char *name, int *comp) {
    int c = SDC_SD15_NO_COMPONENT;
    sdc_sd15_key_class k = SDC_KEY_OTHER;
    if (starts_with(name, SDC_SD15_UNET_PREFIX)) {
        c = SDC_SD15_UNET;
        k = SDC_KEY_PARAM;
    } else if (starts_with(name, SDC_SD15_VAE_PREFIX)) {
        c = SDC_SD15_VAE;
        k = SDC_KEY_PARAM;
    } else if (starts_with(name, SDC_SD15_TEXT_PREFIX)) {
        c = SDC_SD15_TEXT;
        const char *suffix = "embeddings.position_ids";
        size_t n = strlen(name), m = strlen(suffix);
        k = n >= m && !strcmp(name + n - m, suffix) ? SDC_KEY_BUFFER : SDC_KEY_PARAM;
    } else {
        for (int i = 0; i < SDC_SD15_N_SCHEDULE; i++)
            if (!strcmp(name, sdc_sd15_schedule_names[i])) k = SDC_KEY_BUFFER;
    }
    if (comp) *comp = c;
    return k;
}
