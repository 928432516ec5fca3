/* src/model/model.c: loading a checkpoint and reading every hyperparameter from tensor shapes. */
#include "model/model.h"

#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const sdc_st_tensor *find(const sdc_model *m, const char *prefix, const char *name) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    return sdc_st_find(m->st, full);
}

/* Requires a tensor of the given rank; stores it in *t. */
static sdc_status need(const sdc_model *m, const char *prefix, const char *name, int ndim,
                       const sdc_st_tensor **t, sdc_error *err) {
    *t = find(m, prefix, name);
    if (!*t) return sdc_fail(err, SDC_E_FORMAT, "%s: missing tensor '%s%s'", m->path, prefix, name);
    if ((*t)->ndim != ndim)
        return sdc_fail(err, SDC_E_FORMAT, "%s: tensor '%s%s' has %d dimensions, expected %d", m->path,
                        prefix, name, (*t)->ndim, ndim);
    return SDC_OK;
}

static sdc_status configure_clip(sdc_model *m, sdc_error *err) {
    const sdc_st_tensor *tok, *pos, *fc1;
    const char *P = SDC_CLIP_PREFIX;
    SDC_TRY(need(m, P, "embeddings.token_embedding.weight", 2, &tok, err));
    SDC_TRY(need(m, P, "embeddings.position_embedding.weight", 2, &pos, err));
    SDC_TRY(need(m, P, "encoder.layers.0.mlp.fc1.weight", 2, &fc1, err));
    sdc_clip_config *c = &m->clip;
    c->vocab = (int)tok->shape[0];
    c->width = (int)tok->shape[1];
    c->n_pos = (int)pos->shape[0];
    c->mlp = (int)fc1->shape[0];
    for (c->layers = 0; c->layers < 1000; c->layers++) {
        char name[96];
        snprintf(name, sizeof name, "encoder.layers.%d.mlp.fc1.weight", c->layers);
        if (!find(m, P, name)) break;
    }
    /* The head count is in no tensor shape. Every real CLIP text tower uses 64-wide heads
     * (ViT-L/14: 768 = 12 x 64); the narrow test models (width < 256) use 4 heads, as the
     * project's tiny reference model does. */
    c->heads = c->width >= 256 ? c->width / 64 : 4;
    if (c->n_pos != SDC_CLIP_CTX || pos->shape[1] != c->width || c->width % c->heads)
        return sdc_fail(err, SDC_E_FORMAT, "%s: text encoder position embedding [%lld, %lld] does not fit width %d",
                        m->path, (long long)pos->shape[0], (long long)pos->shape[1], c->width);
    if (c->vocab != 49408)
        return sdc_fail(err, SDC_E_FORMAT, "%s: text encoder vocabulary has %d entries, CLIP's has 49408",
                        m->path, c->vocab);
    return SDC_OK;
}

static sdc_status configure_unet(sdc_model *m, sdc_error *err) {
    const sdc_st_tensor *cin, *te0, *out, *k;
    const char *P = SDC_UNET_PREFIX;
    SDC_TRY(need(m, P, "input_blocks.0.0.weight", 4, &cin, err));
    SDC_TRY(need(m, P, "time_embed.0.weight", 2, &te0, err));
    SDC_TRY(need(m, P, "out.2.weight", 4, &out, err));
    SDC_TRY(need(m, P, "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", 2, &k, err));
    sdc_unet_config *c = &m->unet;
    c->model_ch = (int)cin->shape[0];
    c->in_ch = (int)cin->shape[1];
    c->out_ch = (int)out->shape[0];
    c->time_dim = (int)te0->shape[0];
    c->ctx_dim = (int)k->shape[1];
    c->heads = 8; /* SD1.x: num_heads = 8 at every level (not recorded in any shape) */
    if (c->in_ch != 4 || c->out_ch != 4)
        return sdc_fail(err, SDC_E_UNSUPPORTED,
                        "%s: UNet takes %d input channels (SD1.5 txt2img takes 4; 9 is an inpainting model)",
                        m->path, c->in_ch);
    if (te0->shape[1] != c->model_ch)
        return sdc_fail(err, SDC_E_FORMAT, "%s: time_embed.0 expects %lld inputs, conv_in gives %d",
                        m->path, (long long)te0->shape[1], c->model_ch);
    return SDC_OK;
}

static sdc_status configure_vae(sdc_model *m, sdc_error *err) {
    const sdc_st_tensor *pq, *cin, *cout;
    const char *P = SDC_VAE_PREFIX;
    SDC_TRY(need(m, P, "post_quant_conv.weight", 4, &pq, err));
    SDC_TRY(need(m, P, "decoder.conv_in.weight", 4, &cin, err));
    SDC_TRY(need(m, P, "decoder.conv_out.weight", 4, &cout, err));
    m->vae.z_ch = (int)pq->shape[1];
    m->vae.ch_top = (int)cin->shape[0];
    m->vae.out_ch = (int)cout->shape[0];
    if (m->vae.z_ch != 4 || m->vae.out_ch != 3)
        return sdc_fail(err, SDC_E_FORMAT, "%s: VAE decoder maps %d latent channels to %d image channels, expected 4 -> 3",
                        m->path, m->vae.z_ch, m->vae.out_ch);
    return SDC_OK;
}

static int has_prefix(const sdc_st_file *st, const char *prefix) {
    size_t n = strlen(prefix);
    for (size_t i = 0; i < sdc_st_count(st); i++)
        if (!strncmp(sdc_st_get(st, i)->name, prefix, n)) return 1;
    return 0;
}

sdc_status sdc_model_configure(sdc_model *m, sdc_error *err) {
    m->has_clip = has_prefix(m->st, SDC_CLIP_PREFIX);
    m->has_unet = has_prefix(m->st, SDC_UNET_PREFIX);
    m->has_vae = has_prefix(m->st, SDC_VAE_PREFIX "decoder.");
    if (!m->has_clip && !m->has_unet && !m->has_vae)
        return sdc_fail(err, SDC_E_FORMAT, "%s: no SD1.5 component found (expected %s*, %s*, %s*)", m->path,
                        SDC_UNET_PREFIX, SDC_VAE_PREFIX, SDC_CLIP_PREFIX);
    if (m->has_clip) SDC_TRY(configure_clip(m, err));
    if (m->has_unet) SDC_TRY(configure_unet(m, err));
    if (m->has_vae) SDC_TRY(configure_vae(m, err));
    if (m->has_clip && m->has_unet && m->clip.width != m->unet.ctx_dim)
        return sdc_fail(err, SDC_E_FORMAT, "%s: text encoder width %d does not match the UNet's context %d",
                        m->path, m->clip.width, m->unet.ctx_dim);
    return SDC_OK;
}

/* ---------------------------------------------------------------- what may be loaded */

#include "model/detect.h"

sdc_status sdc_model_check_file(const char *path, sdc_error *err) {
    return sdc_detect_file_kind(path, NULL, err);
}

sdc_status sdc_model_check_family(const sdc_st_file *st, sdc_error *err) {
    sdc_family_info fi;
    return sdc_detect_family(st, &fi, err);
}
