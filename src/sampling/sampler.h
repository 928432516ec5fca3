/* src/sampling/sampler.h: the sampling loops as pure functions over a model callback.
 *
 * Samplers, with the semantics of their reference (compat = the schedule's sdc_compat):
 *   Euler     A1111: k-diffusion sample_euler (s_churn 0)
 *   Euler a   A1111: k-diffusion sample_euler_ancestral (eta, s_noise), noise from the image's
 *             own generator (webui's TorchHijack: randn_like -> p.rng.next())
 *   DPM++ 2M  A1111: k-diffusion sample_dpmpp_2m, continuous sigmas;
 *             diffusers: DPMSolverMultistepScheduler (dpmsolver++, order 2, midpoint,
 *             lower_order_final) in its (alpha_t, sigma_t, lambda) form, integer timesteps
 *   DDIM      A1111: webui's own sd_samplers_timesteps_impl.ddim (eta 0), on the timesteps of
 *             sdc_schedule_ddim
 *
 * The model: the sampler never sees a UNet. Once per step it calls
 *     model(user, x_in, n, t, step, eps, rows, err)
 * which writes the eps predictions for x_in at timestep t, row after row: eps[r * n + i] for
 * rows [cond_0, ..., cond_{k-1}, uncond] (webui's batch order; k = 1 unless AND prompts). x_in is
 * what the UNet takes: x * c_in with c_in = 1/sqrt(sigma^2 + 1) for the k-diffusion samplers, x
 * as is for DDIM and diffusers. A real pipeline runs the rows as one batch (or as several calls,
 * as webui does for prompts of different lengths); a test replays stored UNet outputs.
 *
 * Guidance (CFG), with each reference's rounding:
 *   A1111 k-diffusion: on denoised, D_r = x + eps_r * (-sigma),
 *                      den = D_u + sum_k (D_k - D_u) * (w_k * scale)
 *   A1111 DDIM:        the same combination on eps
 *   diffusers:         eps = e_u + scale * (e_c - e_u)
 * With cfg.no_uncond the negative row is not requested and the single cond row is used as is.
 *
 * Memory: sdc_sample works in a caller-provided workspace of sdc_sampler_workspace_floats()
 * floats, or allocates that much once when work is NULL. Nothing is allocated per step.
 * Latents hold `batch` images of n / batch values each; every per-element formula is applied to
 * all of them alike, only the ancestral noise is drawn per image.
 *
 * Initial noise: sdc_initial_noise draws x_noise as A1111 or diffusers do for a seed; the
 * sampler starts from x_T = x_noise * sdc_sampler_noise_scale() (sigmas[0] for k-diffusion,
 * 1 for DDIM and diffusers' DPMSolver).
 */
#ifndef SDC_SAMPLING_SAMPLER_H
#define SDC_SAMPLING_SAMPLER_H

#include "core/error.h"
#include "core/rng.h"
#include "sampling/schedule.h"

#include <stddef.h>
#include <stdint.h>

typedef enum sdc_sampler_kind {
    SDC_SAMPLER_EULER = 0,
    SDC_SAMPLER_EULER_A,
    SDC_SAMPLER_DPMPP_2M,
    SDC_SAMPLER_DDIM,
    SDC_SAMPLER_COUNT
} sdc_sampler_kind;

#define SDC_MAX_CONDS 16 /* AND-combined prompts */

/* Writes rows * n eps values (see above). Returns SDC_OK, or a failure with err filled in, which
 * sdc_sample returns unchanged. `step` is the 0-based step index. */
typedef sdc_status (*sdc_eps_fn)(void *user, const float *x_in, size_t n, float t, int step,
                                 float *eps, int rows, sdc_error *err);

typedef struct sdc_step_info {
    int step, steps;
    float sigma;           /* noise level of this step (DDIM: the model sigma at t) */
    float t;               /* the model timestep of this step */
    size_t n;
    const float *x;        /* [n] the latent at the start of this step */
    const float *denoised; /* [n] this step's guided x0 prediction (the live preview) */
} sdc_step_info;

/* Called once per step after the model call, before the update. A status other than SDC_OK
 * stops the sampler, which returns it (SDC_E_CANCELLED for a cancel). */
typedef sdc_status (*sdc_step_fn)(void *user, const sdc_step_info *info);

typedef struct sdc_guidance {
    float scale;           /* CFG scale, 7.5 in the goldens */
    int n_cond;            /* cond rows, 1..SDC_MAX_CONDS (A1111 AND prompts) */
    const float *weights;  /* [n_cond] AND weights; NULL = all 1 */
    int no_uncond;         /* 1: no negative row (needs n_cond == 1): den = D_c */
} sdc_guidance;

typedef struct sdc_sampler_params {
    sdc_sampler_kind kind;
    const sdc_sched *sched; /* from sdc_schedule_make, or sdc_schedule_ddim for DDIM */
    sdc_eps_fn model;
    void *model_user;
    sdc_guidance cfg;
    float eta;              /* Euler a: ancestral eta (webui default 1) */
    float s_noise;          /* Euler a: noise multiplier (1) */
    sdc_rng *rngs;          /* Euler a: [batch] generators, positioned by sdc_initial_noise */
    int batch;              /* images in the latent, >= 1 */
    sdc_step_fn on_step;    /* optional */
    void *step_user;
} sdc_sampler_params;

/* Defaults for `kind`: scale 7.5, one cond row with an uncond, eta 1, s_noise 1, batch 1. */
sdc_sampler_params sdc_sampler_defaults(sdc_sampler_kind kind);

/* Floats of workspace sdc_sample needs for a latent of n values; 0 if the params are unusable. */
size_t sdc_sampler_workspace_floats(const sdc_sampler_params *p, size_t n);

/* Runs the whole loop on x [n] in place: x_T in, the final latent out. work: NULL or
 * sdc_sampler_workspace_floats(p, n) floats. Fails with SDC_E_INVALID_ARG on bad params,
 * SDC_E_UNSUPPORTED for a sampler the schedule's compat target lacks, SDC_E_NOMEM, or the
 * status of a failed model/step callback. */
sdc_status sdc_sample(const sdc_sampler_params *p, float *x, size_t n, float *work, sdc_error *err);

/* x_T = x_noise * this: sched->sigmas[0] for A1111's k-diffusion samplers, 1 for DDIM and for
 * diffusers (DPMSolver's init_noise_sigma). */
float sdc_sampler_noise_scale(const sdc_sampler_params *p);

/* The initial noise x_noise [batch * per_image] for seeds[batch], drawn as the reference does,
 * and rngs[batch] left where the ancestral noise continues:
 *   A1111:     image i has its own generator seeded seeds[i] (webui uses seed, seed+1, ...);
 *              x_noise_i is its first randn(per_image) draw. With ensd != 0 (Settings "Eta noise
 *              seed delta") every generator is then re-seeded with seeds[i] + ensd.
 *   diffusers: one generator seeded seeds[0] draws randn(batch * per_image) in one call
 *              (rngs[0] only; ensd is ignored). */
void sdc_initial_noise(sdc_compat compat, sdc_rng_kind kind, const uint64_t *seeds, int batch,
                       uint64_t ensd, size_t per_image, sdc_rng *rngs, float *x_noise);

/* k-diffusion get_ancestral_step in float32: the Euler a step goes down to *down and adds noise
 * of *up (eta 0: down = to, up = 0). */
void sdc_ancestral_step(float from, float to, float eta, float *down, float *up);

/* webui's schedule for its "Automatic" choice: karras for DPM++ 2M, uniform otherwise. */
sdc_schedule sdc_sampler_default_schedule(sdc_sampler_kind kind);

/* webui labels ("Euler", "Euler a", "DPM++ 2M", "DDIM") or k-diffusion names ("euler",
 * "euler_ancestral"/"euler_a", "dpmpp_2m", "ddim"), case-insensitive. -1 when unknown. */
int sdc_sampler_from_name(const char *name);
const char *sdc_sampler_name(sdc_sampler_kind kind); /* the webui label; never NULL */

#endif
