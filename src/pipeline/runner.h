/* src/pipeline/runner.h: one network, built and planned once for an input size, run many times.
 *
 * A runner owns a graph and its CPU plan (the activation arena). The sampler builds one UNet
 * runner before the loop and calls sdc_runner_run once per step: nothing is allocated inside
 * the loop but the kernels' bounded scratch. */
#ifndef SDC_PIPELINE_RUNNER_H
#define SDC_PIPELINE_RUNNER_H

#include "backend/cpu.h"
#include "model/model.h"

enum { SDC_RUNNER_MAX_IO = 4 };

/* Runner flags */
enum {
    SDC_RUNNER_KEEP_LABELLED = 1, /* keep every labelled intermediate ("unet.mid_block", ...) alive
                                     and readable after a run (debugging, golden comparisons) */
    SDC_RUNNER_CLIP_EMBEDS = 2,   /* text encoder: in[0] is token-embedding rows [B, 77, width]
                                     instead of ids (textual inversion, sdc_clip_gather) */
};

typedef struct sdc_runner {
    sdc_graph g;
    sdc_cpu_plan plan;
    int in[SDC_RUNNER_MAX_IO]; /* input value ids, in the order the builder documents */
    int n_in;
    int out;                   /* the output value id */
} sdc_runner;

/* Text encoder: in[0] = ids [B, 77] (as floats), or with SDC_RUNNER_CLIP_EMBEDS token-embedding
 * rows [B, 77, width]; out = [B, 77, width]. */
sdc_status sdc_runner_clip(sdc_runner *r, const sdc_model *m, int B, int clip_skip, unsigned flags,
                           sdc_error *err);
/* UNet: in[0] = x [B, 4, h, w], in[1] = t [B], in[2] = ctx [B, T, ctx_dim]; out = eps.
 * With temb_input, in[1] is instead the post-SiLU time embedding [B, time_dim]. */
sdc_status sdc_runner_unet(sdc_runner *r, const sdc_model *m, int B, int h, int w, int T,
                           int temb_input, unsigned flags, sdc_error *err);
/* UNet time MLP alone: in[0] = t [B]; out = SiLU(time_embed(t)) [B, time_dim]. */
sdc_status sdc_runner_temb(sdc_runner *r, const sdc_model *m, int B, sdc_error *err);
/* VAE decoder: in[0] = z [B, 4, h, w] already divided by 0.18215; out = [B, 3, 8h, 8w]. */
sdc_status sdc_runner_vae(sdc_runner *r, const sdc_model *m, int B, int h, int w, unsigned flags,
                          sdc_error *err);

static inline float *sdc_runner_input(sdc_runner *r, int k) { return sdc_cpu_value(&r->plan, r->in[k]); }
/* A labelled intermediate kept with SDC_RUNNER_KEEP_LABELLED, or NULL. */
float *sdc_runner_labelled(sdc_runner *r, const char *label, const sdc_node **node);
static inline float *sdc_runner_output(sdc_runner *r) { return sdc_cpu_value(&r->plan, r->out); }
sdc_status sdc_runner_run(sdc_runner *r, sdc_pool *pool, sdc_error *err);
void sdc_runner_free(sdc_runner *r); /* NULL-safe; also safe on a zeroed runner */

#endif
