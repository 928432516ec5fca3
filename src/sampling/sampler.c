/* src/sampling/sampler.c: Euler, Euler a, DPM++ 2M and DDIM loops; the contract is in sampler.h.
 *
 * Each loop follows its reference line by line, in float32 like the reference, and in the same
 * order of operations, so that replaying the reference's own UNet outputs reproduces its
 * latents to a few ulps (tests/unit/test_sampler.c). Scalars that torch keeps as 0-dim float32
 * tensors are floats here; Python floats are doubles rounded to float where torch rounds them.
 */
#include "sampling/sampler.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Round every product before it is added, as torch's separate kernels do: no fused multiply-add. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

/* ------------------------------------------------------------------------------------------ */
/* Names and defaults                                                                          */
/* ------------------------------------------------------------------------------------------ */

static const char *const sampler_labels[SDC_SAMPLER_COUNT] = {
    [SDC_SAMPLER_EULER] = "Euler",
    [SDC_SAMPLER_EULER_A] = "Euler a",
    [SDC_SAMPLER_DPMPP_2M] = "DPM++ 2M",
    [SDC_SAMPLER_DDIM] = "DDIM",
};
static const char *const sampler_ids[SDC_SAMPLER_COUNT] = {
    [SDC_SAMPLER_EULER] = "euler",
    [SDC_SAMPLER_EULER_A] = "euler_a",
    [SDC_SAMPLER_DPMPP_2M] = "dpmpp_2m",
    [SDC_SAMPLER_DDIM] = "ddim",
};
_Static_assert(SDC_SAMPLER_COUNT == 4, "update the sampler name tables");

int sdc_sampler_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < SDC_SAMPLER_COUNT; i++)
        if (!strcasecmp(name, sampler_labels[i]) || !strcasecmp(name, sampler_ids[i])) return i;
    if (!strcasecmp(name, "euler_ancestral")) return SDC_SAMPLER_EULER_A;
    return -1;
}

const char *sdc_sampler_name(sdc_sampler_kind kind) {
    if ((int)kind < 0 || kind >= SDC_SAMPLER_COUNT) return "unknown";
    return sampler_labels[kind];
}

sdc_schedule sdc_sampler_default_schedule(sdc_sampler_kind kind) {
    return kind == SDC_SAMPLER_DPMPP_2M ? SDC_SCHEDULE_KARRAS : SDC_SCHEDULE_UNIFORM;
}

sdc_sampler_params sdc_sampler_defaults(sdc_sampler_kind kind) {
    sdc_sampler_params p;
    memset(&p, 0, sizeof p);
    p.kind = kind;
    p.cfg.scale = 7.5f;
    p.cfg.n_cond = 1;
    p.eta = 1.0f;
    p.s_noise = 1.0f;
    p.batch = 1;
    return p;
}

float sdc_sampler_noise_scale(const sdc_sampler_params *p) {
    if (!p || !p->sched || p->kind == SDC_SAMPLER_DDIM || p->sched->compat == SDC_COMPAT_DIFFUSERS)
        return 1.0f;
    return p->sched->sigmas[0]; /* KDiffusionSampler.sample: x = x * sigmas[0] */
}

void sdc_initial_noise(sdc_compat compat, sdc_rng_kind kind, const uint64_t *seeds, int batch,
                       uint64_t ensd, size_t per_image, sdc_rng *rngs, float *x_noise) {
    if (compat == SDC_COMPAT_DIFFUSERS) { /* randn_tensor(shape, generator): one call */
        sdc_rng_init(&rngs[0], kind, seeds[0]);
        sdc_rng_randn(&rngs[0], x_noise, (size_t)batch * per_image);
        return;
    }
    for (int b = 0; b < batch; b++) { /* webui ImageRNG.first() */
        sdc_rng_init(&rngs[b], kind, seeds[b]);
        sdc_rng_randn(&rngs[b], x_noise + (size_t)b * per_image, per_image);
        if (ensd != 0) sdc_rng_init(&rngs[b], kind, seeds[b] + ensd);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The shared per-step work                                                                    */
/* ------------------------------------------------------------------------------------------ */

typedef struct loop_ctx {
    const sdc_sampler_params *p;
    const sdc_sched *s;
    size_t n;
    int rows;                    /* eps rows the model writes */
    float mult[SDC_MAX_CONDS];   /* (float)(w_k * scale), as torch rounds the Python product */
    float *x_in, *eps, *den, *aux; /* workspace: [n], [rows * n], [n], [n] */
} loop_ctx;

static sdc_status call_model(loop_ctx *c, const float *x_in, int step, sdc_error *err) {
    return c->p->model(c->p->model_user, x_in, c->n, c->s->t[step], step, c->eps, c->rows, err);
}

/* Row r of the model's output as the combination sees it: base + eps_r * scale (k-diffusion's
 * D_r = x + eps_r * c_out with scale = c_out = -sigma), or eps_r itself when base is NULL. */
static inline float guided_row(const loop_ctx *c, const float *base, float scale, int r, size_t i) {
    float e = c->eps[(size_t)r * c->n + i];
    return base ? base[i] + e * scale : e;
}

/* webui CFGDenoiser.combine_denoised: out = R_u + sum_k (R_k - R_u) * mult_k (or R_0 alone
 * without an uncond row). */
static void combine_rows(const loop_ctx *c, const float *base, float scale, float *out) {
    const int k = c->p->cfg.n_cond;
    for (size_t i = 0; i < c->n; i++) {
        if (c->p->cfg.no_uncond) {
            out[i] = guided_row(c, base, scale, 0, i);
            continue;
        }
        float u = guided_row(c, base, scale, k, i), acc = u;
        for (int r = 0; r < k; r++) acc += (guided_row(c, base, scale, r, i) - u) * c->mult[r];
        out[i] = acc;
    }
}

/* k-diffusion CompVisDenoiser + webui CFG: den = guided D(x, sigma_i) */
static sdc_status kdiff_denoise(loop_ctx *c, const float *x, int step, sdc_error *err) {
    const float sigma = c->s->sigmas[step];
    const float c_in = 1.0f / sqrtf(sigma * sigma + 1.0f);
    for (size_t i = 0; i < c->n; i++) c->x_in[i] = x[i] * c_in;
    SDC_TRY(call_model(c, c->x_in, step, err));
    combine_rows(c, x, -sigma, c->den);
    return SDC_OK;
}

static sdc_status report(loop_ctx *c, int step, const float *x, const float *den, sdc_error *err) {
    if (!c->p->on_step) return SDC_OK;
    sdc_step_info info = {.step = step, .steps = c->s->steps, .sigma = c->s->sigmas[step],
                          .t = c->s->t[step], .n = c->n, .x = x, .denoised = den};
    sdc_status st = c->p->on_step(c->p->step_user, &info);
    if (st != SDC_OK)
        return sdc_fail(err, st, "sampler %s: stopped by the step callback at step %d of %d (%s)",
                        sdc_sampler_name(c->p->kind), step + 1, c->s->steps, sdc_status_str(st));
    return SDC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* k-diffusion samplers (A1111)                                                                */
/* ------------------------------------------------------------------------------------------ */

/* k-diffusion sample_euler with s_churn = 0: d = (x - den) / s; x += d * (s_next - s).
 * (k-diffusion also draws an unused randn_like per step; nothing after sampling reads those
 * generators, so they are not drawn here.) */
static sdc_status sample_euler(loop_ctx *c, float *x, sdc_error *err) {
    const float *sig = c->s->sigmas;
    for (int i = 0; i < c->s->steps; i++) {
        SDC_TRY(kdiff_denoise(c, x, i, err));
        SDC_TRY(report(c, i, x, c->den, err));
        const float s = sig[i], dt = sig[i + 1] - s;
        for (size_t j = 0; j < c->n; j++) {
            float d = (x[j] - c->den[j]) / s;
            x[j] = x[j] + d * dt;
        }
    }
    return SDC_OK;
}

/* k-diffusion get_ancestral_step(sigma_from, sigma_to, eta), float32 like its 0-dim tensors */
void sdc_ancestral_step(float from, float to, float eta, float *down, float *up) {
    if (eta == 0.0f) {
        *down = to;
        *up = 0.0f;
        return;
    }
    float u = eta * sqrtf(to * to * (from * from - to * to) / (from * from));
    *up = u < to ? u : to; /* Python min(sigma_to, u) */
    *down = sqrtf(to * to - *up * *up);
}

/* k-diffusion sample_euler_ancestral: Euler to sigma_down, then noise * s_noise * sigma_up from
 * each image's generator (webui: p.rng.next()). */
static sdc_status sample_euler_a(loop_ctx *c, float *x, sdc_error *err) {
    const float *sig = c->s->sigmas;
    const size_t per_image = c->n / (size_t)c->p->batch;
    for (int i = 0; i < c->s->steps; i++) {
        SDC_TRY(kdiff_denoise(c, x, i, err));
        float down, up;
        sdc_ancestral_step(sig[i], sig[i + 1], c->p->eta, &down, &up);
        SDC_TRY(report(c, i, x, c->den, err));
        const float s = sig[i], dt = down - s;
        for (size_t j = 0; j < c->n; j++) {
            float d = (x[j] - c->den[j]) / s;
            x[j] = x[j] + d * dt;
        }
        if (sig[i + 1] > 0.0f) {
            for (int b = 0; b < c->p->batch; b++)
                sdc_rng_randn(&c->p->rngs[b], c->aux + (size_t)b * per_image, per_image);
            for (size_t j = 0; j < c->n; j++) x[j] = x[j] + c->aux[j] * c->p->s_noise * up;
        }
    }
    return SDC_OK;
}

/* k-diffusion sample_dpmpp_2m: t = -log(sigma); first order on the first step and into sigma 0,
 * else the second-order combination of this and the previous denoised. */
static sdc_status sample_dpmpp_2m(loop_ctx *c, float *x, sdc_error *err) {
    const float *sig = c->s->sigmas;
    float *old = c->aux;
    for (int i = 0; i < c->s->steps; i++) {
        SDC_TRY(kdiff_denoise(c, x, i, err));
        SDC_TRY(report(c, i, x, c->den, err));
        const float s = sig[i], s_next = sig[i + 1];
        if (s_next == 0.0f) {
            /* t_next = inf: sigma_fn(t_next) = 0 and expm1(-h) = -1, so x = den exactly */
            memcpy(x, c->den, c->n * sizeof *x);
        } else if (s_next != s) { /* equal sigmas: h = 0 leaves x unchanged */
            const float t = -logf(s), t_next = -logf(s_next), h = t_next - t;
            const float ratio = expf(-t_next) / expf(-t), em = expm1f(-h);
            if (i == 0) {
                for (size_t j = 0; j < c->n; j++) x[j] = ratio * x[j] - em * c->den[j];
            } else {
                const float h_last = t - (-logf(sig[i - 1]));
                const float r = h_last / h, q = 1.0f / (2.0f * r), a = 1.0f + q;
                for (size_t j = 0; j < c->n; j++) {
                    float dd = a * c->den[j] - q * old[j];
                    x[j] = ratio * x[j] - em * dd;
                }
            }
        }
        memcpy(old, c->den, c->n * sizeof *old);
    }
    return SDC_OK;
}

/* webui sd_samplers_timesteps_impl.ddim with eta 0: eps-space CFG, then
 * pred_x0 = (x - sqrt(1 - a_t) e) / sqrt(a_t); x = sqrt(a_prev) pred_x0 + sqrt(1 - a_prev) e. */
static sdc_status sample_ddim(loop_ctx *c, float *x, sdc_error *err) {
    float *e = c->aux, *pred = c->den;
    for (int i = 0; i < c->s->steps; i++) {
        SDC_TRY(call_model(c, x, i, err));
        combine_rows(c, NULL, 0.0f, e);
        const float a_t = c->s->alphas_cumprod[i], a_prev = c->s->alphas_cumprod[i + 1];
        const float sq1m_at = sqrtf(1.0f - a_t), sq_at = sqrtf(a_t);
        const float sq_prev = sqrtf(a_prev), dir = sqrtf(1.0f - a_prev);
        for (size_t j = 0; j < c->n; j++) pred[j] = (x[j] - sq1m_at * e[j]) / sq_at;
        SDC_TRY(report(c, i, x, pred, err));
        for (size_t j = 0; j < c->n; j++) x[j] = sq_prev * pred[j] + dir * e[j];
    }
    return SDC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* diffusers DPMSolverMultistepScheduler (dpmsolver++, order 2, midpoint)                     */
/* ------------------------------------------------------------------------------------------ */

typedef struct dpm_coef {
    float alpha, sigma, lambda;
} dpm_coef;

static dpm_coef dpm_coef_of(float s) { /* _sigma_to_alpha_sigma_t, then lambda = log a - log s */
    dpm_coef k;
    k.alpha = 1.0f / sqrtf(s * s + 1.0f);
    k.sigma = s * k.alpha;
    k.lambda = logf(k.alpha) - logf(k.sigma);
    return k;
}

static sdc_status sample_diffusers_dpmpp_2m(loop_ctx *c, float *x, sdc_error *err) {
    const float *sig = c->s->sigmas;
    const int steps = c->s->steps;
    float *x0 = c->den, *prev_x0 = c->aux;
    for (int i = 0; i < steps; i++) {
        SDC_TRY(call_model(c, x, i, err));
        /* eps = e_u + scale * (e_c - e_u) */
        const size_t n = c->n;
        const float g = c->p->cfg.scale;
        const float *ec = c->eps, *eu = c->eps + n;
        dpm_coef k0 = dpm_coef_of(sig[i]);
        for (size_t j = 0; j < n; j++) {
            float e = c->p->cfg.no_uncond ? ec[j] : eu[j] + g * (ec[j] - eu[j]);
            x0[j] = (x[j] - k0.sigma * e) / k0.alpha; /* convert_model_output */
        }
        SDC_TRY(report(c, i, x, x0, err));

        /* lower_order_final: the last step is first order for short runs or a final sigma 0 */
        const int lower_final = i == steps - 1 && (steps < 15 || sig[steps] == 0.0f);
        if (sig[i + 1] == 0.0f) {
            memcpy(x, x0, n * sizeof *x); /* alpha_t = 1, exp(-h) - 1 = -1: x = x0 exactly */
        } else if (sig[i + 1] != sig[i]) { /* equal sigmas (sigma_min final): h = 0, x unchanged */
            dpm_coef kt = dpm_coef_of(sig[i + 1]);
            const float h = kt.lambda - k0.lambda;
            const float ratio = kt.sigma / k0.sigma, am = kt.alpha * (expf(-h) - 1.0f);
            if (i == 0 || lower_final) {
                for (size_t j = 0; j < n; j++) x[j] = ratio * x[j] - am * x0[j];
            } else {
                dpm_coef k1 = dpm_coef_of(sig[i - 1]);
                const float r0 = (k0.lambda - k1.lambda) / h, inv_r0 = 1.0f / r0, half = 0.5f * am;
                for (size_t j = 0; j < n; j++) {
                    float d1 = inv_r0 * (x0[j] - prev_x0[j]);
                    x[j] = ratio * x[j] - am * x0[j] - half * d1;
                }
            }
        }
        memcpy(prev_x0, x0, n * sizeof *prev_x0);
    }
    return SDC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Entry                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static int guidance_rows(const sdc_guidance *g) {
    return g->n_cond + (g->no_uncond ? 0 : 1);
}

static sdc_status check_params(const sdc_sampler_params *p, size_t n, sdc_error *err) {
    if (!p || !p->sched || !p->model)
        return sdc_fail(err, SDC_E_INVALID_ARG, "sampler: params, schedule or model callback is NULL");
    const char *name = sdc_sampler_name(p->kind);
    if ((int)p->kind < 0 || p->kind >= SDC_SAMPLER_COUNT)
        return sdc_fail(err, SDC_E_INVALID_ARG, "sampler: unknown kind %d", (int)p->kind);
    const sdc_sched *s = p->sched;
    if (s->steps < 0 || s->steps > SDC_SCHED_MAX_STEPS)
        return sdc_fail(err, SDC_E_INVALID_ARG, "sampler %s: schedule has %d steps", name, s->steps);
    if (p->batch < 1 || n == 0 || n % (size_t)p->batch != 0)
        return sdc_fail(err, SDC_E_INVALID_ARG,
                        "sampler %s: latent of %zu values does not split into %d images", name, n,
                        p->batch);
    const sdc_guidance *g = &p->cfg;
    if (g->n_cond < 1 || g->n_cond > SDC_MAX_CONDS || (g->no_uncond && g->n_cond != 1))
        return sdc_fail(err, SDC_E_INVALID_ARG,
                        "sampler %s: %d cond rows%s (1..%d, exactly 1 without an uncond row)", name,
                        g->n_cond, g->no_uncond ? " without uncond" : "", SDC_MAX_CONDS);
    if (!isfinite(g->scale))
        return sdc_fail(err, SDC_E_INVALID_ARG, "sampler %s: cfg scale is not finite", name);
    if ((p->kind == SDC_SAMPLER_DDIM) != (s->ddim != 0))
        return sdc_fail(err, SDC_E_INVALID_ARG,
                        "sampler %s: %s", name,
                        s->ddim ? "the schedule is DDIM's timesteps (sdc_schedule_ddim)"
                                : "DDIM needs its timesteps from sdc_schedule_ddim");
    if (s->compat == SDC_COMPAT_DIFFUSERS) {
        if (p->kind != SDC_SAMPLER_DPMPP_2M)
            return sdc_fail(err, SDC_E_UNSUPPORTED,
                            "sampler %s: only DPM++ 2M has diffusers semantics here", name);
        if (g->n_cond != 1)
            return sdc_fail(err, SDC_E_UNSUPPORTED, "sampler %s: diffusers has no AND prompts", name);
    }
    if (p->kind == SDC_SAMPLER_EULER_A) {
        if (!p->rngs)
            return sdc_fail(err, SDC_E_INVALID_ARG, "sampler %s: no generators for the noise", name);
        if (!(p->eta >= 0.0f && p->eta <= 100.0f) || !isfinite(p->s_noise))
            return sdc_fail(err, SDC_E_INVALID_ARG, "sampler %s: eta %g / s_noise %g out of range",
                            name, p->eta, p->s_noise);
    }
    for (int i = 0; i <= s->steps; i++) /* every step divides by its sigma; the end may be 0 */
        if (!isfinite(s->sigmas[i]) || !(s->sigmas[i] > 0.0f || (i == s->steps && s->sigmas[i] == 0.0f)))
            return sdc_fail(err, SDC_E_INVALID_ARG, "sampler %s: schedule sigmas[%d] = %g", name, i,
                            s->sigmas[i]);
    return SDC_OK;
}

size_t sdc_sampler_workspace_floats(const sdc_sampler_params *p, size_t n) {
    if (!p || p->cfg.n_cond < 1 || p->cfg.n_cond > SDC_MAX_CONDS) return 0;
    return sdc_mul_size(n, (size_t)(3 + guidance_rows(&p->cfg))); /* x_in, eps rows, den, aux */
}

sdc_status sdc_sample(const sdc_sampler_params *p, float *x, size_t n, float *work, sdc_error *err) {
    SDC_TRY(check_params(p, n, err));
    if (!x) return sdc_fail(err, SDC_E_INVALID_ARG, "sampler: latent is NULL");
    size_t floats = sdc_sampler_workspace_floats(p, n);
    if (floats == 0 || floats > SIZE_MAX / sizeof(float))
        return sdc_fail(err, SDC_E_LIMIT, "sampler: workspace for %zu values overflows", n);
    float *owned = NULL;
    if (!work) {
        owned = malloc(floats * sizeof(float));
        if (!owned)
            return sdc_fail(err, SDC_E_NOMEM, "sampler: cannot allocate %zu bytes of workspace",
                            floats * sizeof(float));
        work = owned;
    }

    loop_ctx c = {.p = p, .s = p->sched, .n = n, .rows = guidance_rows(&p->cfg)};
    for (int k = 0; k < p->cfg.n_cond; k++) {
        double w = p->cfg.weights ? (double)p->cfg.weights[k] : 1.0;
        c.mult[k] = (float)(w * (double)p->cfg.scale); /* Python: weight * cond_scale */
    }
    c.x_in = work;
    c.eps = c.x_in + n;
    c.den = c.eps + (size_t)c.rows * n;
    c.aux = c.den + n;

    sdc_status st;
    if (c.s->compat == SDC_COMPAT_DIFFUSERS) st = sample_diffusers_dpmpp_2m(&c, x, err);
    else if (p->kind == SDC_SAMPLER_EULER) st = sample_euler(&c, x, err);
    else if (p->kind == SDC_SAMPLER_EULER_A) st = sample_euler_a(&c, x, err);
    else if (p->kind == SDC_SAMPLER_DPMPP_2M) st = sample_dpmpp_2m(&c, x, err);
    else st = sample_ddim(&c, x, err);
    free(owned);
    return st;
}
