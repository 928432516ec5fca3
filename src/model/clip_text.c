/* src/model/clip_text.c: the CLIP ViT-L/14 text transformer of SD1.5 (transformers CLIPTextModel).
 *
 *   h = token_embedding(ids) + position_embedding            // [B, 77, D]
 *       (sdc_clip_build_embeds starts from given token-embedding rows instead of ids: webui's
 *       textual-inversion vectors replace rows of token_embedding(ids); sdc_clip_gather makes
 *       the rows of plain ids on the host, exactly as the graph's embedding op does)
 *   for each layer: h += out_proj(attn_causal(ln1(h)));  h += fc2(quick_gelu(fc1(ln2(h))))
 *   out = final_layer_norm(h after layer L - clip_skip + 1)
 *
 * SD1.5 attends to padding tokens too (no padding mask), only the causal mask applies. */
#include "model/model.h"

#include "core/dtype.h"

#include <stdio.h>

#define LN_EPS 1e-5f

static int lin(sdc_graph *g, int x, const char *fmt, int layer, int n_out, int n_in) {
    char w[128], b[128];
    snprintf(w, sizeof w, fmt, layer, "weight");
    snprintf(b, sizeof b, fmt, layer, "bias");
    int64_t ws[2] = {n_out, n_in}, bs[1] = {n_out};
    return sdc_g_linear(g, x, sdc_g_weight(g, w, 2, ws), sdc_g_weight_f32(g, b, 1, bs));
}

static int ln(sdc_graph *g, int x, const char *fmt, int layer, int d) {
    char w[128], b[128];
    snprintf(w, sizeof w, fmt, layer, "weight");
    snprintf(b, sizeof b, fmt, layer, "bias");
    int64_t s[1] = {d};
    return sdc_g_layer_norm(g, x, sdc_g_weight_f32(g, w, 1, s), sdc_g_weight_f32(g, b, 1, s), LN_EPS);
}

int sdc_clip_build(sdc_graph *g, const sdc_clip_config *c, int ids, int clip_skip) {
    int64_t tok_shape[2] = {c->vocab, c->width};
    int tok = sdc_g_weight(g, "embeddings.token_embedding.weight", 2, tok_shape);
    return sdc_clip_build_embeds(g, c, sdc_g_embedding(g, ids, tok), clip_skip); // [B, 77, D]
}

sdc_status sdc_clip_gather(const sdc_model *m, const int32_t *ids, size_t n, float *out, sdc_error *err) {
    /* the checkpoint's table: merged LoRAs change Linear/Conv weights, never this Embedding */
    const sdc_st_tensor *t = sdc_st_find(m->st, SDC_CLIP_PREFIX "embeddings.token_embedding.weight");
    if (!t || t->ndim != 2 || t->shape[1] != m->clip.width || !sdc_dtype_table[t->dtype].is_float)
        return sdc_fail(err, SDC_E_FORMAT, "%s: no usable token embedding table", m->path);
    size_t D = (size_t)t->shape[1], es = sdc_dtype_table[t->dtype].size;
    for (size_t r = 0; r < n; r++) {
        if (ids[r] < 0 || ids[r] >= t->shape[0])
            return sdc_fail(err, SDC_E_INVALID_ARG, "token id %d outside 0..%lld", (int)ids[r], (long long)(t->shape[0] - 1));
        sdc_convert_to_f32(out + r * D, (const char *)t->data + (size_t)ids[r] * D * es, t->dtype, D);
    }
    return SDC_OK;
}

int sdc_clip_build_embeds(sdc_graph *g, const sdc_clip_config *c, int h, int clip_skip) {
    int D = c->width;
    int n_layers = c->layers - (clip_skip > 1 ? clip_skip - 1 : 0);
    int64_t pos_shape[2] = {c->n_pos, D};
    int pos = sdc_g_weight_f32(g, "embeddings.position_embedding.weight", 2, pos_shape);
    h = sdc_g_add(g, h, pos);                          // [B, 77, D] + [77, D]
    for (int l = 0; l < n_layers; l++) {
        int x = ln(g, h, "encoder.layers.%d.layer_norm1.%s", l, D);
        int q = lin(g, x, "encoder.layers.%d.self_attn.q_proj.%s", l, D, D);
        int k = lin(g, x, "encoder.layers.%d.self_attn.k_proj.%s", l, D, D);
        int v = lin(g, x, "encoder.layers.%d.self_attn.v_proj.%s", l, D, D);
        int a = sdc_g_attention(g, q, k, v, c->heads, 1);   // [B, 77, D], causal
        a = lin(g, a, "encoder.layers.%d.self_attn.out_proj.%s", l, D, D);
        h = sdc_g_add(g, h, a);
        x = ln(g, h, "encoder.layers.%d.layer_norm2.%s", l, D);
        x = lin(g, x, "encoder.layers.%d.mlp.fc1.%s", l, c->mlp, D);  // [B, 77, mlp]
        x = sdc_g_quick_gelu(g, x);
        x = lin(g, x, "encoder.layers.%d.mlp.fc2.%s", l, D, c->mlp);  // [B, 77, D]
        h = sdc_g_add(g, h, x);
        sdc_g_label(g, h, "clip.layer.%d", l);
    }
    int64_t s[1] = {D};
    int out = sdc_g_layer_norm(g, h, sdc_g_weight_f32(g, "final_layer_norm.weight", 1, s),
                               sdc_g_weight_f32(g, "final_layer_norm.bias", 1, s), LN_EPS);
    return out;
}
