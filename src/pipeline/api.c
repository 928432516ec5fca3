/* src/pipeline/api.c: the public model and stage calls of include/sdc.h. */
#include "sdc.h"

#include "core/error.h"
#include "core/threadpool.h"
#include "model/lora.h"
#include "model/model.h"
#include "pipeline/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies an internal error into the caller's buffer and returns its code. */
static sdc_status report(const sdc_error *e, char *errbuf, size_t errlen) {
    if (errbuf && errlen) snprintf(errbuf, errlen, "%s", e->msg);
    return e->code;
}

sdc_model_params sdc_model_params_default(void) {
    sdc_model_params p = {.path = NULL, .n_threads = 0};
    return p;
}

sdc_status sdc_model_load(const sdc_model_params *p, sdc_model **out, char *errbuf, size_t errlen) {
    sdc_error e = {0};
    *out = NULL;
    if (!p || !p->path) {
        sdc_fail(&e, SDC_E_INVALID_ARG, "no model path given");
        return report(&e, errbuf, errlen);
    }
    sdc_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = strdup(p->path))) {
        free(m);
        sdc_fail(&e, SDC_E_NOMEM, "out of memory");
        return report(&e, errbuf, errlen);
    }
    m->n_threads = p->n_threads;
    if (sdc_model_check_file(p->path, &e) != SDC_OK || sdc_st_open(p->path, &m->st, &e) != SDC_OK ||
        sdc_model_check_family(m->st, &e) != SDC_OK || sdc_model_configure(m, &e) != SDC_OK) {
        sdc_model_free(m);
        return report(&e, errbuf, errlen);
    }
    *out = m;
    return SDC_OK;
}

void sdc_model_free(sdc_model *m) {
    if (!m) return;
    sdc_overlay_free(m->overlay);
    sdc_st_close(m->st);
    free(m->path);
    free(m);
}

const char *sdc_model_path(const sdc_model *m) { return m ? m->path : NULL; }

void sdc_model_describe(const sdc_model *m, sdc_model_desc *d) {
    memset(d, 0, sizeof *d);
    d->has_text_encoder = m->has_clip;
    d->has_unet = m->has_unet;
    d->has_vae = m->has_vae;
    d->text_width = m->clip.width;
    d->text_layers = m->clip.layers;
    d->unet_model_ch = m->unet.model_ch;
    d->unet_time_dim = m->unet.time_dim;
    d->unet_ctx_dim = m->unet.ctx_dim;
    d->latent_channels = m->has_unet ? m->unet.in_ch : m->vae.z_ch;
}

/* Runs one network once on a fresh pool. `fill` copies the inputs in. */
static sdc_status run_once(sdc_runner *r, const sdc_model *m, const float *const *inputs,
                           const size_t *counts, float *out, size_t out_count, sdc_error *e) {
    for (int k = 0; k < r->n_in; k++) memcpy(sdc_runner_input(r, k), inputs[k], counts[k] * sizeof(float));
    sdc_pool *pool = sdc_pool_new(m->n_threads);
    if (!pool) return sdc_fail(e, SDC_E_BACKEND, "cannot start %d threads", m->n_threads);
    sdc_status s = sdc_runner_run(r, pool, e);
    sdc_pool_free(pool);
    if (s == SDC_OK) memcpy(out, sdc_runner_output(r), out_count * sizeof(float));
    return s;
}

static sdc_status check_batch(int batch, sdc_error *e) {
    if (batch < 1 || batch > 64) return sdc_fail(e, SDC_E_INVALID_ARG, "batch %d is outside 1..64", batch);
    return SDC_OK;
}

sdc_status sdc_encode_ids(const sdc_model *m, const int32_t *ids, int batch, int clip_skip,
                          float *out, char *errbuf, size_t errlen) {
    sdc_error e = {0};
    sdc_runner r = {0};
    float *fids = NULL;
    if (check_batch(batch, &e) || sdc_runner_clip(&r, m, batch, clip_skip, 0, &e)) goto done;
    size_t n = (size_t)batch * SDC_CLIP_CTX;
    if (!(fids = malloc(n * sizeof(float)))) {
        sdc_fail(&e, SDC_E_NOMEM, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < n; i++) fids[i] = (float)ids[i];
    const float *in[1] = {fids};
    size_t counts[1] = {n};
    run_once(&r, m, in, counts, out, n * (size_t)m->clip.width, &e);
done:
    free(fids);
    sdc_runner_free(&r);
    return report(&e, errbuf, errlen);
}

static sdc_status check_latent_size(int h, int w, sdc_error *e) {
    if (h < 1 || w < 1 || h > 256 || w > 256)
        return sdc_fail(e, SDC_E_INVALID_ARG, "latent size %dx%d is outside 1..256 (8..2048 pixels)", w, h);
    return SDC_OK;
}

sdc_status sdc_unet_eval(const sdc_model *m, const float *x, int batch, int h, int w, const float *t,
                         const float *ctx, int T, float *eps, char *errbuf, size_t errlen) {
    sdc_error e = {0};
    sdc_runner r = {0};
    if (check_batch(batch, &e) || check_latent_size(h, w, &e)) goto done;
    if (T < 1 || T > SDC_CLIP_CTX * SDC_MAX_CONTEXT_CHUNKS) {
        sdc_fail(&e, SDC_E_INVALID_ARG, "context length %d is outside 1..%d", T, SDC_CLIP_CTX * SDC_MAX_CONTEXT_CHUNKS);
        goto done;
    }
    if (sdc_runner_unet(&r, m, batch, h, w, T, 0, 0, &e)) goto done;
    size_t nx = (size_t)batch * (size_t)m->unet.in_ch * (size_t)h * (size_t)w;
    const float *in[3] = {x, t, ctx};
    size_t counts[3] = {nx, (size_t)batch, (size_t)batch * (size_t)T * (size_t)m->unet.ctx_dim};
    run_once(&r, m, in, counts, eps, (size_t)batch * (size_t)m->unet.out_ch * (size_t)h * (size_t)w, &e);
done:
    sdc_runner_free(&r);
    return report(&e, errbuf, errlen);
}

sdc_status sdc_unet_time_embedding(const sdc_model *m, const float *t, int batch, float *out,
                                   char *errbuf, size_t errlen) {
    sdc_error e = {0};
    sdc_runner r = {0};
    if (check_batch(batch, &e) || sdc_runner_temb(&r, m, batch, &e)) goto done;
    const float *in[1] = {t};
    size_t counts[1] = {(size_t)batch};
    run_once(&r, m, in, counts, out, (size_t)batch * (size_t)m->unet.time_dim, &e);
done:
    sdc_runner_free(&r);
    return report(&e, errbuf, errlen);
}

sdc_status sdc_vae_decode(const sdc_model *m, const float *z_scaled, int batch, int h, int w,
                          float *image, char *errbuf, size_t errlen) {
    sdc_error e = {0};
    sdc_runner r = {0};
    if (check_batch(batch, &e) || check_latent_size(h, w, &e) || sdc_runner_vae(&r, m, batch, h, w, 0, &e))
        goto done;
    const float *in[1] = {z_scaled};
    size_t counts[1] = {(size_t)batch * (size_t)m->vae.z_ch * (size_t)h * (size_t)w};
    run_once(&r, m, in, counts, image, (size_t)batch * 3 * (size_t)h * 8 * (size_t)w * 8, &e);
done:
    sdc_runner_free(&r);
    return report(&e, errbuf, errlen);
}
