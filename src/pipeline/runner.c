/* src/pipeline/runner.c: builds and plans the graph of one network for one input size. */
#include "pipeline/runner.h"

#include <string.h>

/* Checks the builder's sticky error, then plans memory. */
static sdc_status finish(sdc_runner *r, const char *what, unsigned flags, sdc_error *err) {
    if (!sdc_graph_ok(&r->g) || r->out < 0) {
        sdc_status s = r->g.err.code != SDC_OK ? r->g.err.code : SDC_E_FORMAT;
        sdc_fail(err, s, "%s", r->g.err.msg[0] ? r->g.err.msg : what);
        sdc_runner_free(r);
        return s;
    }
    sdc_g_output(&r->g, r->out, NULL);
    if (flags & SDC_RUNNER_KEEP_LABELLED)
        for (int i = 0; i < r->g.n_nodes; i++)
            if (r->g.nodes[i].op != SDC_OP_WEIGHT && r->g.nodes[i].name[0]) r->g.nodes[i].is_output = 1;
    sdc_status s = sdc_cpu_plan_new(&r->g, &r->plan, err);
    if (s != SDC_OK) sdc_runner_free(r);
    return s;
}

static sdc_status need_component(int present, const sdc_model *m, const char *what, sdc_error *err) {
    if (present) return SDC_OK;
    return sdc_fail(err, SDC_E_FORMAT, "%s: the checkpoint has no %s", m->path, what);
}

sdc_status sdc_runner_clip(sdc_runner *r, const sdc_model *m, int B, int clip_skip, unsigned flags,
                           sdc_error *err) {
    memset(r, 0, sizeof *r);
    SDC_TRY(need_component(m->has_clip, m, "text encoder (" SDC_CLIP_PREFIX "*)", err));
    if (clip_skip < 1 || clip_skip > m->clip.layers)
        return sdc_fail(err, SDC_E_INVALID_ARG, "clip skip %d is outside 1..%d (the text encoder's layers)",
                        clip_skip, m->clip.layers);
    sdc_model_graph_init(&r->g, m, SDC_CLIP_PREFIX);
    int64_t s[3] = {B, SDC_CLIP_CTX, m->clip.width};
    r->n_in = 1;
    if (flags & SDC_RUNNER_CLIP_EMBEDS) {
        r->in[0] = sdc_g_input(&r->g, "inputs_embeds", 3, s);
        r->out = sdc_clip_build_embeds(&r->g, &m->clip, r->in[0], clip_skip);
    } else {
        r->in[0] = sdc_g_input(&r->g, "input_ids", 2, s);
        r->out = sdc_clip_build(&r->g, &m->clip, r->in[0], clip_skip);
    }
    return finish(r, "text encoder graph", flags, err);
}

sdc_status sdc_runner_unet(sdc_runner *r, const sdc_model *m, int B, int h, int w, int T,
                           int temb_input, unsigned flags, sdc_error *err) {
    memset(r, 0, sizeof *r);
    SDC_TRY(need_component(m->has_unet, m, "UNet (" SDC_UNET_PREFIX "*)", err));
    sdc_model_graph_init(&r->g, m, SDC_UNET_PREFIX);
    int64_t xs[4] = {B, m->unet.in_ch, h, w}, ts[2] = {B, m->unet.time_dim}, cs[3] = {B, T, m->unet.ctx_dim};
    r->in[0] = sdc_g_input(&r->g, "sample", 4, xs);
    r->in[1] = temb_input ? sdc_g_input(&r->g, "temb", 2, ts) : sdc_g_input(&r->g, "timestep", 1, ts);
    r->in[2] = sdc_g_input(&r->g, "encoder_hidden_states", 3, cs);
    r->n_in = 3;
    r->out = sdc_unet_build(&r->g, &m->unet, r->in[0], temb_input ? -1 : r->in[1], r->in[2],
                            temb_input ? r->in[1] : -1);
    return finish(r, "UNet graph", flags, err);
}

sdc_status sdc_runner_temb(sdc_runner *r, const sdc_model *m, int B, sdc_error *err) {
    unsigned flags = 0;
    memset(r, 0, sizeof *r);
    SDC_TRY(need_component(m->has_unet, m, "UNet (" SDC_UNET_PREFIX "*)", err));
    sdc_model_graph_init(&r->g, m, SDC_UNET_PREFIX);
    int64_t ts[1] = {B};
    r->in[0] = sdc_g_input(&r->g, "timestep", 1, ts);
    r->n_in = 1;
    r->out = sdc_unet_build_temb(&r->g, &m->unet, r->in[0]);
    return finish(r, "UNet time-embedding graph", flags, err);
}

sdc_status sdc_runner_vae(sdc_runner *r, const sdc_model *m, int B, int h, int w, unsigned flags,
                          sdc_error *err) {
    memset(r, 0, sizeof *r);
    SDC_TRY(need_component(m->has_vae, m, "VAE decoder (" SDC_VAE_PREFIX "decoder.*)", err));
    sdc_model_graph_init(&r->g, m, SDC_VAE_PREFIX);
    int64_t zs[4] = {B, m->vae.z_ch, h, w};
    r->in[0] = sdc_g_input(&r->g, "latent", 4, zs);
    r->n_in = 1;
    r->out = sdc_vae_decoder_build(&r->g, &m->vae, r->in[0]);
    return finish(r, "VAE decoder graph", flags, err);
}

sdc_status sdc_runner_run(sdc_runner *r, sdc_pool *pool, sdc_error *err) {
    return sdc_cpu_run(&r->plan, pool, err);
}

void sdc_runner_free(sdc_runner *r) {
    if (!r) return;
    sdc_cpu_plan_free(&r->plan);
    sdc_graph_free(&r->g);
    memset(r, 0, sizeof *r);
}

float *sdc_runner_labelled(sdc_runner *r, const char *label, const sdc_node **node) {
    int v = sdc_g_find(&r->g, label);
    if (v < 0 || !r->g.nodes[v].is_output) return NULL;
    if (node) *node = &r->g.nodes[v];
    return sdc_cpu_value(&r->plan, v);
}
