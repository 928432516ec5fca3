/* src/sampling/schedule.c: noise tables and schedules; the contract is in schedule.h.
 *
 * The references compute these tables with a mix of torch float32 ops, torch float64 ops and
 * numpy float64 ops. Each formula below keeps the precision and the order of its reference
 * (named in the comment above it), so that the tables agree to the last bit or two:
 * torch's float32 exp/log/pow use SLEEF (<= 1 ulp) where this file uses libm.
 */
#include "sampling/schedule.h"

/* Round every product before it is added, as torch and numpy do: no fused multiply-add. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

#include <math.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------------------------ */
/* linspace as torch and numpy round it                                                        */
/* ------------------------------------------------------------------------------------------ */

/* torch.linspace on the CPU (RangeFactoriesKernel.cpp): element i is start + step*i in the first
 * half and end - step*(n-1-i) in the second, so both ends are exact. The AVX2 build fills runs of
 * 16 floats (8 doubles) with Vectorized::arange(base, step) = base + k*step, deciding the half by
 * the first index of each 8-float (4-double) vector; the remainder is done element by element.
 * That kernel is compiled with FMA contraction, so each multiply-add is fused (fmaf below): only
 * then do diffusers' 1000 betas, and so its alphas_cumprod, come out bit-identical. */
static float torch_lin_f32(float start, float end, float step, int n, int i, int halfway) {
    return i < halfway ? fmaf(step, (float)i, start) : fmaf(-step, (float)(n - i - 1), end);
}

static void torch_linspace_f32(float start, float end, int n, float *out) {
    if (n == 1) {
        out[0] = start;
        return;
    }
    const float step = (end - start) / (float)(n - 1);
    const int halfway = n / 2, vec = 8;
    int i = 0;
    for (; i + 2 * vec <= n; i += vec) {
        float base = torch_lin_f32(start, end, step, n, i, halfway);
        for (int k = 0; k < vec; k++) out[i + k] = fmaf((float)k, step, base);
    }
    for (; i < n; i++) out[i] = torch_lin_f32(start, end, step, n, i, halfway);
}

static double torch_lin_f64(double start, double end, double step, int n, int i, int halfway) {
    return i < halfway ? fma(step, (double)i, start) : fma(-step, (double)(n - i - 1), end);
}

static void torch_linspace_f64(double start, double end, int n, double *out) {
    if (n == 1) {
        out[0] = start;
        return;
    }
    const double step = (end - start) / (double)(n - 1);
    const int halfway = n / 2, vec = 4;
    int i = 0;
    for (; i + 2 * vec <= n; i += vec) {
        double base = torch_lin_f64(start, end, step, n, i, halfway);
        for (int k = 0; k < vec; k++) out[i + k] = fma((double)k, step, base);
    }
    for (; i < n; i++) out[i] = torch_lin_f64(start, end, step, n, i, halfway);
}

/* numpy.linspace(start, stop, n): i * step + start, the last element set to stop. */
static void np_linspace(double start, double stop, int n, double *out) {
    if (n == 1) {
        out[0] = start;
        return;
    }
    const double step = (stop - start) / (double)(n - 1);
    for (int i = 0; i < n; i++) out[i] = (double)i * step + start;
    out[n - 1] = stop;
}

/* ------------------------------------------------------------------------------------------ */
/* Noise tables                                                                                */
/* ------------------------------------------------------------------------------------------ */

void sdc_noise_table_init(sdc_noise_table *nt, sdc_compat compat) {
    const double b0 = sqrt(0.00085), b1 = sqrt(0.012);
    nt->compat = compat;
    if (compat == SDC_COMPAT_DIFFUSERS) {
        /* diffusers scaled_linear: torch.linspace(b0, b1, 1000, float32) ** 2; the cumprod
         * accumulates in double (torch's CPU acc_type) and rounds each output to float. */
        float betas[SDC_TRAIN_STEPS];
        torch_linspace_f32((float)b0, (float)b1, SDC_TRAIN_STEPS, betas);
        double acc = 1.0;
        for (int i = 0; i < SDC_TRAIN_STEPS; i++) {
            float alpha = 1.0f - betas[i] * betas[i];
            acc *= (double)alpha;
            nt->alphas_cumprod[i] = (float)acc;
        }
    } else {
        /* LDM make_beta_schedule('linear'): torch float64 linspace squared, numpy float64 cumprod,
         * stored in the checkpoint as float32. */
        double betas[SDC_TRAIN_STEPS];
        torch_linspace_f64(b0, b1, SDC_TRAIN_STEPS, betas);
        double acc = 1.0;
        for (int i = 0; i < SDC_TRAIN_STEPS; i++) {
            acc *= 1.0 - betas[i] * betas[i];
            nt->alphas_cumprod[i] = (float)acc;
        }
    }
    /* k-diffusion CompVisDenoiser / diffusers set_timesteps: float32 ((1 - ac) / ac) ** 0.5 */
    for (int i = 0; i < SDC_TRAIN_STEPS; i++) {
        float ac = nt->alphas_cumprod[i];
        nt->sigmas[i] = sqrtf((1.0f - ac) / ac);
        nt->log_sigmas[i] = logf(nt->sigmas[i]);
    }
}

/* The interval [lo, lo+1] of log_sigmas around log_sigma, as the argmax of the cumsum of
 * (log_sigma >= log_sigmas) finds it: the last index at or below, 0 when none, at most 998. */
static int log_sigma_interval(const sdc_noise_table *nt, double log_sigma) {
    int count = 0;
    for (int i = 0; i < SDC_TRAIN_STEPS; i++) count += log_sigma >= (double)nt->log_sigmas[i];
    int lo = count > 0 ? count - 1 : 0;
    return lo < SDC_TRAIN_STEPS - 2 ? lo : SDC_TRAIN_STEPS - 2;
}

float sdc_sigma_to_t(const sdc_noise_table *nt, float sigma) {
    float log_sigma = logf(sigma);
    int lo = log_sigma_interval(nt, log_sigma);
    float low = nt->log_sigmas[lo], high = nt->log_sigmas[lo + 1];
    float w = (low - log_sigma) / (low - high);
    w = w < 0.0f ? 0.0f : w > 1.0f ? 1.0f : w; /* (NaN stays NaN, as torch.clamp) */
    return (1.0f - w) * (float)lo + w * (float)(lo + 1);
}

float sdc_t_to_sigma(const sdc_noise_table *nt, float t) {
    if (!(t >= 0.0f)) t = 0.0f; /* also NaN */
    if (t > (float)(SDC_TRAIN_STEPS - 1)) t = (float)(SDC_TRAIN_STEPS - 1);
    int lo = (int)floorf(t), hi = (int)ceilf(t);
    float w = t - truncf(t);
    return expf((1.0f - w) * nt->log_sigmas[lo] + w * nt->log_sigmas[hi]);
}

/* diffusers _sigma_to_t: the same interpolation in float64 (float32 log_sigmas promoted). */
static double sigma_to_t_f64(const sdc_noise_table *nt, double sigma) {
    double log_sigma = log(sigma > 1e-10 ? sigma : 1e-10);
    int lo = log_sigma_interval(nt, log_sigma);
    double low = nt->log_sigmas[lo], high = nt->log_sigmas[lo + 1];
    double w = (low - log_sigma) / (low - high);
    w = w < 0.0 ? 0.0 : w > 1.0 ? 1.0 : w;
    return (1.0 - w) * lo + w * (lo + 1);
}

/* ------------------------------------------------------------------------------------------ */
/* Schedules                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static const char *const schedule_names[SDC_SCHEDULE_COUNT] = {
    [SDC_SCHEDULE_AUTOMATIC] = "automatic",
    [SDC_SCHEDULE_UNIFORM] = "uniform",
    [SDC_SCHEDULE_NORMAL] = "normal",
    [SDC_SCHEDULE_KARRAS] = "karras",
    [SDC_SCHEDULE_EXPONENTIAL] = "exponential",
    [SDC_SCHEDULE_POLYEXPONENTIAL] = "polyexponential",
    [SDC_SCHEDULE_SGM_UNIFORM] = "sgm_uniform",
    [SDC_SCHEDULE_SIMPLE] = "simple",
    [SDC_SCHEDULE_DDIM_UNIFORM] = "ddim",
    [SDC_SCHEDULE_KL_OPTIMAL] = "kl_optimal",
    [SDC_SCHEDULE_ALIGN_YOUR_STEPS] = "align_your_steps",
};
_Static_assert(SDC_SCHEDULE_COUNT == 11, "update schedule_names");

/* the labels webui shows in its UI and writes into the infotext ("Schedule type: Karras") */
static const char *const schedule_labels[SDC_SCHEDULE_COUNT] = {
    [SDC_SCHEDULE_AUTOMATIC] = "Automatic",
    [SDC_SCHEDULE_UNIFORM] = "Uniform",
    [SDC_SCHEDULE_NORMAL] = "Normal",
    [SDC_SCHEDULE_KARRAS] = "Karras",
    [SDC_SCHEDULE_EXPONENTIAL] = "Exponential",
    [SDC_SCHEDULE_POLYEXPONENTIAL] = "Polyexponential",
    [SDC_SCHEDULE_SGM_UNIFORM] = "SGM Uniform",
    [SDC_SCHEDULE_SIMPLE] = "Simple",
    [SDC_SCHEDULE_DDIM_UNIFORM] = "DDIM",
    [SDC_SCHEDULE_KL_OPTIMAL] = "KL Optimal",
    [SDC_SCHEDULE_ALIGN_YOUR_STEPS] = "Align Your Steps",
};

const char *sdc_schedule_label(sdc_schedule kind) {
    if ((int)kind < 0 || kind >= SDC_SCHEDULE_COUNT) return "Automatic";
    return schedule_labels[kind];
}

int sdc_schedule_from_name(const char *name) {
    if (!name) return -1;
    for (int i = 0; i < SDC_SCHEDULE_COUNT; i++)
        if (!strcasecmp(name, schedule_names[i])) return i;
    return -1;
}

const char *sdc_schedule_name(sdc_schedule kind) {
    if ((int)kind < 0 || kind >= SDC_SCHEDULE_COUNT) return "unknown";
    return schedule_names[kind];
}

/* webui's fixed SD1.5 "Align Your Steps" sigmas (modules/sd_schedulers.py) */
static const double ays_sd15[11] = {14.615, 6.475, 3.861, 2.697, 1.886, 1.396,
                                    0.963,  0.652, 0.399, 0.152, 0.029};

/* numpy.interp(x, xp, fp) for ascending xp with x inside [xp[0], xp[m-1]] */
static double np_interp(double x, const double *xp, const double *fp, int m) {
    if (x >= xp[m - 1]) return fp[m - 1];
    int j = 0;
    while (j + 1 < m && xp[j + 1] <= x) j++;
    if (xp[j] == x) return fp[j];
    double slope = (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j]);
    return slope * (x - xp[j]) + fp[j];
}

/* A1111 (webui sd_schedulers.py + k-diffusion): n sigmas of `kind` into sig, plus the final 0
 * except for kl_optimal. Returns the number of values written (n + 1, or fewer for "ddim"). */
static int a1111_sigmas(const sdc_noise_table *nt, sdc_schedule kind, int n, float rho, float *sig) {
    /* webui passes model_wrap.sigmas[0] / [-1] as Python floats */
    const double s_min = nt->sigmas[0], s_max = nt->sigmas[SDC_TRAIN_STEPS - 1];
    float lin[SDC_SCHED_MAX_STEPS + 2];
    switch (kind) {
    case SDC_SCHEDULE_AUTOMATIC:
    case SDC_SCHEDULE_UNIFORM: /* CompVisDenoiser.get_sigmas(n) */
        torch_linspace_f32((float)(SDC_TRAIN_STEPS - 1), 0.0f, n, lin);
        for (int i = 0; i < n; i++) sig[i] = sdc_t_to_sigma(nt, lin[i]);
        break;
    case SDC_SCHEDULE_NORMAL:      /* normal_scheduler(sgm=False) */
    case SDC_SCHEDULE_SGM_UNIFORM: /* normal_scheduler(sgm=True): n + 1 points, the last dropped */
        torch_linspace_f32(sdc_sigma_to_t(nt, (float)s_max), sdc_sigma_to_t(nt, (float)s_min),
                           kind == SDC_SCHEDULE_NORMAL ? n : n + 1, lin);
        for (int i = 0; i < n; i++) sig[i] = sdc_t_to_sigma(nt, lin[i]);
        break;
    case SDC_SCHEDULE_KARRAS: { /* get_sigmas_karras: float32 ramp, float64 inverse-rho ends */
        double r = rho > 0 ? rho : 7.0;
        double min_inv = pow(s_min, 1.0 / r), max_inv = pow(s_max, 1.0 / r);
        torch_linspace_f32(0.0f, 1.0f, n, lin);
        for (int i = 0; i < n; i++)
            sig[i] = powf(lin[i] * (float)(min_inv - max_inv) + (float)max_inv, (float)r);
        break;
    }
    case SDC_SCHEDULE_EXPONENTIAL: /* get_sigmas_exponential */
        torch_linspace_f32((float)log(s_max), (float)log(s_min), n, lin);
        for (int i = 0; i < n; i++) sig[i] = expf(lin[i]);
        break;
    case SDC_SCHEDULE_POLYEXPONENTIAL: { /* get_sigmas_polyexponential */
        float r = rho > 0 ? rho : 1.0f;
        torch_linspace_f32(1.0f, 0.0f, n, lin);
        for (int i = 0; i < n; i++) {
            float ramp = r == 1.0f ? lin[i] : powf(lin[i], r); /* torch copies for ** 1 */
            sig[i] = expf(ramp * (float)(log(s_max) - log(s_min)) + (float)log(s_min));
        }
        break;
    }
    case SDC_SCHEDULE_SIMPLE: { /* simple_scheduler: sigmas[-(1 + int(x * ss))], ss = 1000 / n */
        double ss = (double)SDC_TRAIN_STEPS / n;
        for (int x = 0; x < n; x++) sig[x] = nt->sigmas[SDC_TRAIN_STEPS - 1 - (int)(x * ss)];
        break;
    }
    case SDC_SCHEDULE_DDIM_UNIFORM: { /* ddim_scheduler: sigmas[1::ss] reversed */
        int ss = SDC_TRAIN_STEPS / n > 1 ? SDC_TRAIN_STEPS / n : 1, m = 0;
        for (int x = 1; x < SDC_TRAIN_STEPS; x += ss) m++;
        for (int k = 0; k < m; k++) sig[k] = nt->sigmas[1 + (m - 1 - k) * ss];
        sig[m] = 0.0f;
        return m + 1;
    }
    case SDC_SCHEDULE_KL_OPTIMAL: { /* kl_optimal: float32 throughout, no trailing zero */
        float a_min = atanf((float)s_min), a_max = atanf((float)s_max);
        for (int i = 0; i <= n; i++) {
            float f = (float)i / (float)n;
            sig[i] = tanf(f * a_min + (1.0f - f) * a_max);
        }
        return n + 1;
    }
    case SDC_SCHEDULE_ALIGN_YOUR_STEPS: /* get_align_your_steps_sigmas, numpy float64 */
        if (n == 11) {
            for (int i = 0; i < 11; i++) sig[i] = (float)ays_sd15[i];
        } else {
            double xs[11], ys[11], nx[SDC_SCHED_MAX_STEPS + 1];
            np_linspace(0.0, 1.0, 11, xs);
            for (int i = 0; i < 11; i++) ys[i] = log(ays_sd15[10 - i]); /* ascending sigmas */
            np_linspace(0.0, 1.0, n, nx);
            for (int i = 0; i < n; i++) sig[n - 1 - i] = (float)exp(np_interp(nx[i], xs, ys, 11));
        }
        break;
    default:
        return 0;
    }
    sig[n] = 0.0f;
    return n + 1;
}

static sdc_status make_a1111(const sdc_noise_table *nt, const sdc_sched_params *p, sdc_sched *out,
                             sdc_error *err) {
    int n = p->steps + (p->discard_penultimate ? 1 : 0);
    if (n > SDC_SCHED_MAX_STEPS)
        return sdc_fail(err, SDC_E_LIMIT, "schedule: %d steps (with the discarded sigma) exceed %d",
                        n, SDC_SCHED_MAX_STEPS);
    float sig[SDC_SCHED_MAX_STEPS + 2];
    int m = a1111_sigmas(nt, p->kind, n, p->rho, sig);
    if (m < 2) return sdc_fail(err, SDC_E_INVALID_ARG, "schedule: unknown kind %d", (int)p->kind);
    if (p->discard_penultimate) { /* torch.cat([sigmas[:-2], sigmas[-1:]]) */
        sig[m - 2] = sig[m - 1];
        m--;
    }
    out->steps = m - 1;
    for (int i = 0; i < m; i++) out->sigmas[i] = sig[i];
    for (int i = 0; i < out->steps; i++) out->t[i] = sdc_sigma_to_t(nt, sig[i]);
    out->t[out->steps] = sig[m - 1] > 0.0f ? sdc_sigma_to_t(nt, sig[m - 1]) : 0.0f;
    return SDC_OK;
}

/* diffusers DPMSolverMultistepScheduler.set_timesteps, timestep_spacing "linspace" */
static sdc_status make_diffusers(const sdc_noise_table *nt, const sdc_sched_params *p,
                                 sdc_sched *out, sdc_error *err) {
    const int n = p->steps;
    if (p->discard_penultimate)
        return sdc_fail(err, SDC_E_UNSUPPORTED, "schedule: discard_penultimate is an A1111 option");
    if (p->kind == SDC_SCHEDULE_AUTOMATIC || p->kind == SDC_SCHEDULE_UNIFORM) {
        /* timesteps = round(linspace(0, 999, n + 1))[::-1][:-1]; sigmas at those timesteps */
        double lin[SDC_SCHED_MAX_STEPS + 1];
        np_linspace(0.0, SDC_TRAIN_STEPS - 1, n + 1, lin);
        for (int i = 0; i < n; i++) {
            int ts = (int)nearbyint(lin[n - i]); /* numpy rounds half to even, as nearbyint */
            out->t[i] = (float)ts;
            out->sigmas[i] = nt->sigmas[ts];
        }
    } else if (p->kind == SDC_SCHEDULE_KARRAS) {
        /* _convert_to_karras in float64 from the float32 table ends, rounded timesteps */
        double rho = p->rho > 0 ? p->rho : 7.0, ramp[SDC_SCHED_MAX_STEPS];
        double min_inv = pow((double)nt->sigmas[0], 1.0 / rho);
        double max_inv = pow((double)nt->sigmas[SDC_TRAIN_STEPS - 1], 1.0 / rho);
        np_linspace(0.0, 1.0, n, ramp);
        for (int i = 0; i < n; i++) {
            double s = pow(max_inv + ramp[i] * (min_inv - max_inv), rho);
            out->t[i] = (float)nearbyint(sigma_to_t_f64(nt, s));
            out->sigmas[i] = (float)s;
        }
    } else {
        return sdc_fail(err, SDC_E_UNSUPPORTED,
                        "schedule: diffusers' DPMSolverMultistepScheduler has no '%s' schedule "
                        "(only uniform and karras)", sdc_schedule_name(p->kind));
    }
    /* final_sigmas_type: "sigma_min" = ((1 - ac[0]) / ac[0]) ** 0.5 in float32, or "zero" */
    out->sigmas[n] = p->final_sigma_min ? nt->sigmas[0] : 0.0f;
    out->t[n] = 0.0f;
    out->steps = n;
    return SDC_OK;
}

sdc_status sdc_schedule_make(const sdc_noise_table *nt, const sdc_sched_params *p, sdc_sched *out,
                             sdc_error *err) {
    if (!nt || !p || !out) return sdc_fail(err, SDC_E_INVALID_ARG, "schedule: NULL argument");
    if (p->steps < 1 || p->steps > SDC_SCHED_MAX_STEPS)
        return sdc_fail(err, SDC_E_INVALID_ARG, "schedule: steps %d outside 1..%d", p->steps,
                        SDC_SCHED_MAX_STEPS);
    if ((int)p->kind < 0 || p->kind >= SDC_SCHEDULE_COUNT)
        return sdc_fail(err, SDC_E_INVALID_ARG, "schedule: unknown kind %d", (int)p->kind);
    if (!(p->rho >= 0.0f) || p->rho > 1000.0f)
        return sdc_fail(err, SDC_E_INVALID_ARG, "schedule: rho %g outside [0, 1000]", p->rho);
    memset(out, 0, sizeof *out);
    out->compat = nt->compat;
    if (nt->compat == SDC_COMPAT_DIFFUSERS) return make_diffusers(nt, p, out, err);
    return make_a1111(nt, p, out, err);
}

sdc_status sdc_schedule_ddim(const sdc_noise_table *nt, int steps, sdc_sched *out, sdc_error *err) {
    if (!nt || !out) return sdc_fail(err, SDC_E_INVALID_ARG, "ddim schedule: NULL argument");
    if (steps < 1 || steps > SDC_SCHED_MAX_STEPS)
        return sdc_fail(err, SDC_E_INVALID_ARG, "ddim schedule: steps %d outside 1..%d", steps,
                        SDC_SCHED_MAX_STEPS);
    if (nt->compat != SDC_COMPAT_A1111)
        return sdc_fail(err, SDC_E_UNSUPPORTED,
                        "ddim schedule: only webui's DDIM sampler is implemented (A1111 tables)");
    memset(out, 0, sizeof *out);
    out->compat = nt->compat;
    out->ddim = 1;
    int ss = SDC_TRAIN_STEPS / steps, m = 0, ts[SDC_TRAIN_STEPS];
    for (int x = 0; x < SDC_TRAIN_STEPS; x += ss) ts[m++] = x + 1 < SDC_TRAIN_STEPS ? x + 1 : SDC_TRAIN_STEPS - 1;
    out->steps = m - 1;
    for (int i = 0; i < m; i++) {
        int t = ts[m - 1 - i];
        out->t[i] = (float)t;
        out->sigmas[i] = nt->sigmas[t];
        out->alphas_cumprod[i] = nt->alphas_cumprod[t];
    }
    return SDC_OK;
}
