/* src/sampling/schedule.h: SD1.5 noise tables and sampling schedules (sigmas and model timesteps),
 * as A1111 (k-diffusion) and as diffusers compute them, down to their float32/float64 roundings.
 *
 * Two compatibility targets, because the same words mean different numbers in each:
 *
 *   SDC_COMPAT_A1111     stable-diffusion-webui 1.10 + k-diffusion 0.0.16. The model's
 *                        alphas_cumprod come from LDM's float64 beta schedule rounded to float32;
 *                        sigmas are continuous and the UNet gets the fractional timestep
 *                        sigma_to_t(sigma). Every webui schedule type is available.
 *   SDC_COMPAT_DIFFUSERS diffusers 0.27 DPMSolverMultistepScheduler from the SD1.5 config:
 *                        alphas_cumprod from torch float32 betas; integer timesteps with
 *                        "linspace" spacing, or the rounded timesteps of Karras sigmas; final
 *                        sigma 0 ("zero") or sigma_min ("sigma_min", the deployment article's).
 *
 * Usage:
 *     sdc_noise_table nt;  sdc_noise_table_init(&nt, SDC_COMPAT_A1111);
 *     sdc_sched_params sp = {.kind = SDC_SCHEDULE_KARRAS, .steps = 20};
 *     sdc_sched sch;       sdc_schedule_make(&nt, &sp, &sch, &err);
 *     // sch.steps model calls; call i runs at sigma sch.sigmas[i], timestep sch.t[i],
 *     // and moves the latent to sch.sigmas[i + 1].
 *
 * All functions are pure: no allocation, no global state. Values are checked against the golden
 * tables of testdata/a1111 and testdata/tiny in tests/unit/test_schedule.c.
 */
#ifndef SDC_SAMPLING_SCHEDULE_H
#define SDC_SAMPLING_SCHEDULE_H

#include "core/error.h"

#define SDC_TRAIN_STEPS 1000      /* SD1.5's DDPM timesteps */
#define SDC_SCHED_MAX_STEPS 1000  /* most model calls one schedule may hold */

typedef enum sdc_compat {
    SDC_COMPAT_A1111 = 0,
    SDC_COMPAT_DIFFUSERS,
    SDC_COMPAT_COUNT
} sdc_compat;

/* ---- the model's noise table (scaled_linear betas 0.00085..0.012, 1000 steps) ---- */

typedef struct sdc_noise_table {
    sdc_compat compat;
    float alphas_cumprod[SDC_TRAIN_STEPS];
    float sigmas[SDC_TRAIN_STEPS];     /* sqrt((1 - ac) / ac), index = DDPM timestep */
    float log_sigmas[SDC_TRAIN_STEPS];
} sdc_noise_table;

void sdc_noise_table_init(sdc_noise_table *nt, sdc_compat compat);

/* k-diffusion CompVisDenoiser.sigma_to_t (quantize=False): the fractional timestep of a sigma by
 * log-sigma interpolation, clamped to [0, 999]. float32 arithmetic, as webui feeds the UNet. */
float sdc_sigma_to_t(const sdc_noise_table *nt, float sigma);

/* k-diffusion t_to_sigma: exp of the linear interpolation of log_sigmas at t in [0, 999]. */
float sdc_t_to_sigma(const sdc_noise_table *nt, float t);

/* ---- schedules ---- */

typedef enum sdc_schedule {
    SDC_SCHEDULE_AUTOMATIC = 0, /* webui "Automatic" for samplers without their own default (Euler,
                                   Euler a, DDIM): = uniform. Resolve it per sampler first with
                                   sdc_sampler_default_schedule (DPM++ 2M -> karras). */
    SDC_SCHEDULE_UNIFORM,       /* t = linspace(999, 0, n); diffusers: "linspace" timestep spacing */
    SDC_SCHEDULE_NORMAL,        /* t = linspace(sigma_to_t(s_max), sigma_to_t(s_min), n) */
    SDC_SCHEDULE_KARRAS,        /* rho = 7 ramp from s_max to s_min (diffusers: use_karras_sigmas) */
    SDC_SCHEDULE_EXPONENTIAL,   /* log-linear from s_max to s_min */
    SDC_SCHEDULE_POLYEXPONENTIAL, /* exp(ramp^rho * (log s_max - log s_min) + log s_min), rho = 1 */
    SDC_SCHEDULE_SGM_UNIFORM,   /* t = linspace(t(s_max), t(s_min), n + 1) without the last */
    SDC_SCHEDULE_SIMPLE,        /* sigmas[999 - int(i * 1000 / n)] */
    SDC_SCHEDULE_DDIM_UNIFORM,  /* webui schedule type "DDIM": sigmas[1, 1+s, 1+2s, ...] reversed,
                                   s = 1000 // n: 1000 // (1000 // n) steps, not always n */
    SDC_SCHEDULE_KL_OPTIMAL,    /* tan of a linear ramp in atan(sigma); ends at s_min, no final 0 */
    SDC_SCHEDULE_ALIGN_YOUR_STEPS, /* NVIDIA's 11 SD1.5 sigmas, log-linearly resampled to n */
    SDC_SCHEDULE_COUNT
} sdc_schedule;

typedef struct sdc_sched_params {
    sdc_schedule kind;
    int steps;               /* requested model calls, 1..SDC_SCHED_MAX_STEPS */
    float rho;               /* karras / polyexponential; 0 = the default (7 / 1) */
    int discard_penultimate; /* A1111: compute steps+1 sigmas and drop the next-to-last (what webui
                                gives DPM2 / DPM2 a, or all samplers with that option set) */
    int final_sigma_min;     /* diffusers: final_sigmas_type "sigma_min" instead of "zero" */
} sdc_sched_params;

typedef struct sdc_sched {
    sdc_compat compat;
    int steps;                                   /* model calls */
    int ddim;                                    /* 1: made by sdc_schedule_ddim (walks t, not sigma) */
    float sigmas[SDC_SCHED_MAX_STEPS + 1];       /* noise level before call i; [steps] = the end */
    float t[SDC_SCHED_MAX_STEPS + 1];            /* UNet timestep of call i: fractional for A1111,
                                                    integer-valued for diffusers and DDIM;
                                                    [steps]: the timestep DDIM's last call targets */
    float alphas_cumprod[SDC_SCHED_MAX_STEPS + 1]; /* DDIM only: alphas_cumprod[t[i]] */
} sdc_sched;

/* Fills *out for nt's compatibility target. Fails with SDC_E_INVALID_ARG on a bad step count or
 * kind, SDC_E_UNSUPPORTED for a kind diffusers' DPMSolverMultistepScheduler does not have
 * (diffusers knows uniform/automatic and karras). */
sdc_status sdc_schedule_make(const sdc_noise_table *nt, const sdc_sched_params *p, sdc_sched *out,
                             sdc_error *err);

/* webui's DDIM sampler timesteps (its own, whatever the schedule type):
 * ts = clip(range(0, 1000, 1000 // steps) + 1, 0, 999), ascending (1, 51, ..., 951 for 20 steps).
 * The sampler walks them from the top and makes len(ts) - 1 model calls, the last one landing on
 * ts[0] = 1, not on a clean image: out->steps = len(ts) - 1, out->t[i] = ts[len - 1 - i]. */
sdc_status sdc_schedule_ddim(const sdc_noise_table *nt, int steps, sdc_sched *out, sdc_error *err);

/* Schedule names as webui spells them in infotext/API, lower case with '_' ("karras",
 * "sgm_uniform", "align_your_steps"; also "ddim" for DDIM_UNIFORM). -1 when unknown. */
int sdc_schedule_from_name(const char *name);
const char *sdc_schedule_name(sdc_schedule kind); /* never NULL */
/* webui's label of a schedule, as its infotext writes it ("Karras", "SGM Uniform"); never NULL. */
const char *sdc_schedule_label(sdc_schedule kind);

#endif
