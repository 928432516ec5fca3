/* tests/golden_loop.h: runs one stored sampling loop of the goldens through sdc_sample and
 * measures it against the reference, step by step. Shared by test_sampler.c (which replays the
 * stored UNet outputs) and the end-to-end tests (which pass the real UNet as the model).
 *
 *   golden_loop gl;
 *   golden_loop_load(file, "a1111", "euler_a.20", &gl);    // or ("tiny", "64x64")
 *   golden_loop_result r;
 *   golden_loop_run(&gl, my_eps_fn, my_ctx, &r, &err);   // golden_loop_replay: the stored eps
 *   ... r.final_err, r.step_x_err, ...
 *   golden_loop_free(&gl);
 *
 * The loop is set up from our own code, as a pipeline would: the schedule from
 * sdc_schedule_make/_ddim (compared with the stored sigmas/timesteps), the initial noise from
 * sdc_initial_noise with the run's seed, RNG source and ENSD (compared with the stored x_noise),
 * x_T = x_noise * sdc_sampler_noise_scale. A model callback gets the golden's conditioning from
 * gl->cond / gl->uncond (A1111: [1, 77k, 64] each) or gl->context (tiny: [2, 77, 64], row 0 =
 * negative), and must write rows [cond, uncond].
 * Errors are golden_err: max|a - ref| / max(1, max|ref|), the maximum over the steps.
 */
#ifndef SDC_TESTS_GOLDEN_LOOP_H
#define SDC_TESTS_GOLDEN_LOOP_H

#include "golden.h"
#include "sampling/sampler.h"

/* The runs of testdata/a1111 (README section 4) and testdata/tiny (manifest "loop"). */
typedef struct golden_loop_spec {
    const char *set, *name;
    sdc_sampler_kind kind;
    sdc_schedule schedule;
    int steps;
    uint64_t seed;
    sdc_rng_kind rng;
    uint64_t ensd;
} golden_loop_spec;

static const golden_loop_spec golden_loop_specs[] = {
    {"a1111", "euler.20", SDC_SAMPLER_EULER, SDC_SCHEDULE_AUTOMATIC, 20, 1001, SDC_RNG_TORCH_CPU, 0},
    {"a1111", "euler_a.20", SDC_SAMPLER_EULER_A, SDC_SCHEDULE_AUTOMATIC, 20, 1002, SDC_RNG_TORCH_CPU, 0},
    {"a1111", "euler_a_nv.20", SDC_SAMPLER_EULER_A, SDC_SCHEDULE_AUTOMATIC, 20, 1002, SDC_RNG_PHILOX, 0},
    {"a1111", "euler_a_ensd31337.20", SDC_SAMPLER_EULER_A, SDC_SCHEDULE_AUTOMATIC, 20, 1002,
     SDC_RNG_TORCH_CPU, 31337},
    {"a1111", "dpmpp_2m_normal.20", SDC_SAMPLER_DPMPP_2M, SDC_SCHEDULE_NORMAL, 20, 1003, SDC_RNG_TORCH_CPU, 0},
    {"a1111", "dpmpp_2m_normal.10", SDC_SAMPLER_DPMPP_2M, SDC_SCHEDULE_NORMAL, 10, 1004, SDC_RNG_TORCH_CPU, 0},
    {"a1111", "dpmpp_2m_karras.20", SDC_SAMPLER_DPMPP_2M, SDC_SCHEDULE_AUTOMATIC, 20, 1003, SDC_RNG_TORCH_CPU, 0},
    {"a1111", "dpmpp_2m_karras.10", SDC_SAMPLER_DPMPP_2M, SDC_SCHEDULE_AUTOMATIC, 10, 1004, SDC_RNG_TORCH_CPU, 0},
    {"a1111", "dpmpp_2m_karras_long.20", SDC_SAMPLER_DPMPP_2M, SDC_SCHEDULE_KARRAS, 20, 1005,
     SDC_RNG_TORCH_CPU, 0},
    {"a1111", "ddim.20", SDC_SAMPLER_DDIM, SDC_SCHEDULE_AUTOMATIC, 20, 1006, SDC_RNG_TORCH_CPU, 0},
    {"tiny", "64x64", SDC_SAMPLER_DPMPP_2M, SDC_SCHEDULE_UNIFORM, 20, 1003, SDC_RNG_TORCH_CPU, 0},
    {"tiny", "96x64", SDC_SAMPLER_DPMPP_2M, SDC_SCHEDULE_UNIFORM, 20, 1004, SDC_RNG_TORCH_CPU, 0},
};
#define GOLDEN_LOOP_COUNT (sizeof golden_loop_specs / sizeof golden_loop_specs[0])

typedef struct golden_loop {
    const golden_loop_spec *spec;
    sdc_compat compat;
    sdc_noise_table nt;
    sdc_sched sched;
    sdc_rng rng;
    sdc_sampler_params params; /* model left NULL: golden_loop_run sets it */
    size_t n;                  /* latent values (batch 1) */
    int steps;
    float *x_noise;            /* ours, from the seed */
    float *x;                  /* the latent being sampled: x_T, then the result */
    /* the reference */
    float *ref_noise, *ref_x_T, *ref_final;
    float *ref_x_start;        /* [steps][n] x at the start of each step (DDIM's step_x shifted) */
    float *ref_den;            /* [steps][n] guided denoised / pred_x0; NULL for tiny */
    float *ref_eps;            /* [steps][2][n] stored UNet outputs as rows [cond, uncond] */
    float *ref_unet_in;        /* [steps][n]; NULL for tiny (the input is the latent itself) */
    float *ref_t;              /* [steps] */
    float *ref_sigmas;         /* [steps + 1]; NULL for DDIM and tiny */
    float *ref_noises;         /* [steps - 1][n] Euler a ancestral noise; else NULL */
    float *ref_down_up;        /* [steps][2] Euler a (sigma_down, sigma_up); else NULL */
    /* conditioning for a real model */
    float *cond, *uncond, *context;
    int64_t cond_numel, uncond_numel;
    /* measured while running */
    float *got_x_start, *got_den; /* [steps][n] */
    double unet_in_err, t_err;    /* what the model saw vs unet_in / unet_t */
} golden_loop;

typedef struct golden_loop_result {
    double noise_err, x_T_err;  /* our x_noise / x_T vs the stored ones */
    double sigma_err, t_err;    /* our schedule vs the stored sigmas and UNet timesteps */
    double step_x_err, den_err; /* per step, the worst */
    double final_err;
    double unet_in_err;         /* what the model was given vs unet_in (replay only) */
} golden_loop_result;

static inline const golden_loop_spec *golden_loop_find(const char *set, const char *name) {
    for (size_t i = 0; i < GOLDEN_LOOP_COUNT; i++)
        if (!strcmp(golden_loop_specs[i].set, set) && !strcmp(golden_loop_specs[i].name, name))
            return &golden_loop_specs[i];
    return NULL;
}

static inline float *golden_loop_tensor(const sdc_st_file *f, const golden_loop_spec *s,
                                        const char *field, int64_t expect) {
    char key[160];
    snprintf(key, sizeof key, "loop.%s.%s", s->name, field);
    int64_t n;
    float *v = golden_f32(f, key, &n);
    if (expect >= 0 && n != expect) {
        fprintf(stderr, "golden %s: %lld values, expected %lld\n", key, (long long)n,
                (long long)expect);
        exit(1);
    }
    return v;
}

static inline int64_t golden_loop_numel(const sdc_st_file *f, const golden_loop_spec *s,
                                        const char *field) {
    char key[160];
    snprintf(key, sizeof key, "loop.%s.%s", s->name, field);
    return golden_tensor(f, key)->numel;
}

static inline int golden_loop_has(const sdc_st_file *f, const golden_loop_spec *s, const char *field) {
    char key[160];
    snprintf(key, sizeof key, "loop.%s.%s", s->name, field);
    return sdc_st_find(f, key) != NULL;
}

/* Loads the run `name` of `set` ("a1111" with a1111.safetensors, "tiny" with golden.safetensors)
 * and prepares schedule, noise and params. Exits on a missing tensor (test setup error). */
static inline void golden_loop_load(const sdc_st_file *f, const char *set, const char *name,
                                    golden_loop *gl) {
    memset(gl, 0, sizeof *gl);
    const golden_loop_spec *s = golden_loop_find(set, name);
    if (!s) {
        fprintf(stderr, "no golden loop %s/%s\n", set, name);
        exit(1);
    }
    gl->spec = s;
    const int tiny = !strcmp(set, "tiny");
    gl->compat = tiny ? SDC_COMPAT_DIFFUSERS : SDC_COMPAT_A1111;
    sdc_noise_table_init(&gl->nt, gl->compat);

    sdc_error e = {0};
    sdc_status st;
    if (s->kind == SDC_SAMPLER_DDIM) {
        st = sdc_schedule_ddim(&gl->nt, s->steps, &gl->sched, &e);
    } else {
        sdc_schedule kind = s->schedule == SDC_SCHEDULE_AUTOMATIC
                                ? sdc_sampler_default_schedule(s->kind) : s->schedule;
        sdc_sched_params sp = {.kind = kind, .steps = s->steps};
        st = sdc_schedule_make(&gl->nt, &sp, &gl->sched, &e);
    }
    if (st != SDC_OK) {
        fprintf(stderr, "golden loop %s: %s\n", name, e.msg);
        exit(1);
    }
    gl->steps = gl->sched.steps;
    const int64_t steps = gl->steps;

    if (tiny) {
        const int64_t n = golden_loop_numel(f, s, "init_latent");
        gl->n = (size_t)n;
        gl->ref_noise = golden_loop_tensor(f, s, "init_latent", n);
        gl->ref_x_T = golden_loop_tensor(f, s, "init_latent", n); /* init_noise_sigma = 1 */
        float *lat = golden_loop_tensor(f, s, "latents", (steps + 1) * n);
        gl->ref_x_start = malloc((size_t)(steps * n) * sizeof(float));
        memcpy(gl->ref_x_start, lat, (size_t)(steps * n) * sizeof(float));
        free(lat);
        gl->ref_final = golden_loop_tensor(f, s, "final_latent", n);
        float *out = golden_loop_tensor(f, s, "unet_out", steps * 2 * n);
        gl->ref_eps = malloc((size_t)(steps * 2 * n) * sizeof(float));
        for (int64_t i = 0; i < steps; i++) { /* stored rows [uncond, cond] -> [cond, uncond] */
            memcpy(gl->ref_eps + (i * 2 + 0) * n, out + (i * 2 + 1) * n, (size_t)n * sizeof(float));
            memcpy(gl->ref_eps + (i * 2 + 1) * n, out + (i * 2 + 0) * n, (size_t)n * sizeof(float));
        }
        free(out);
        gl->ref_t = golden_loop_tensor(f, s, "timesteps", steps);
        gl->context = golden_loop_tensor(f, s, "context", -1);
    } else {
        const int64_t n = golden_loop_numel(f, s, "x_noise");
        gl->n = (size_t)n;
        gl->ref_noise = golden_loop_tensor(f, s, "x_noise", n);
        gl->ref_x_T = golden_loop_tensor(f, s, "x_T", n);
        gl->ref_final = golden_loop_tensor(f, s, "final", n);
        float *sx = golden_loop_tensor(f, s, "step_x", steps * n);
        if (s->kind == SDC_SAMPLER_DDIM) { /* stored after each step: shift to step starts */
            gl->ref_x_start = malloc((size_t)(steps * n) * sizeof(float));
            memcpy(gl->ref_x_start, gl->ref_x_T, (size_t)n * sizeof(float));
            memcpy(gl->ref_x_start + n, sx, (size_t)((steps - 1) * n) * sizeof(float));
            free(sx);
        } else {
            gl->ref_x_start = sx;
        }
        gl->ref_den = golden_loop_tensor(f, s, "step_denoised", steps * n);
        float *ec = golden_loop_tensor(f, s, "eps_cond", steps * n);
        float *eu = golden_loop_tensor(f, s, "eps_uncond", steps * n);
        gl->ref_eps = malloc((size_t)(steps * 2 * n) * sizeof(float));
        for (int64_t i = 0; i < steps; i++) {
            memcpy(gl->ref_eps + (i * 2 + 0) * n, ec + i * n, (size_t)n * sizeof(float));
            memcpy(gl->ref_eps + (i * 2 + 1) * n, eu + i * n, (size_t)n * sizeof(float));
        }
        free(ec);
        free(eu);
        gl->ref_unet_in = golden_loop_tensor(f, s, "unet_in", steps * n);
        gl->ref_t = golden_loop_tensor(f, s, "unet_t", steps);
        if (s->kind == SDC_SAMPLER_DDIM) {
            float *ts = golden_loop_tensor(f, s, "timesteps", steps + 1);
            free(ts); /* the same as sched.ddim_timesteps: checked in test_schedule */
        } else {
            gl->ref_sigmas = golden_loop_tensor(f, s, "sigmas", steps + 1);
        }
        if (golden_loop_has(f, s, "noises")) {
            gl->ref_noises = golden_loop_tensor(f, s, "noises", (steps - 1) * n);
            gl->ref_down_up = golden_loop_tensor(f, s, "sigma_down_up", steps * 2);
        }
        gl->cond = golden_loop_tensor(f, s, "cond", -1);
        gl->uncond = golden_loop_tensor(f, s, "uncond", -1);
        gl->cond_numel = golden_loop_numel(f, s, "cond");
        gl->uncond_numel = golden_loop_numel(f, s, "uncond");
    }

    /* the initial noise and x_T, from the seed */
    gl->x_noise = malloc(gl->n * sizeof(float));
    gl->x = malloc(gl->n * sizeof(float));
    sdc_initial_noise(gl->compat, s->rng, &s->seed, 1, s->ensd, gl->n, &gl->rng, gl->x_noise);
    gl->params = sdc_sampler_defaults(s->kind);
    gl->params.sched = &gl->sched;
    gl->params.rngs = &gl->rng;
    float scale = sdc_sampler_noise_scale(&gl->params);
    for (size_t i = 0; i < gl->n; i++) gl->x[i] = gl->x_noise[i] * scale;
    gl->got_x_start = calloc((size_t)steps * gl->n, sizeof(float));
    gl->got_den = calloc((size_t)steps * gl->n, sizeof(float));
}

static inline void golden_loop_free(golden_loop *gl) {
    float *bufs[] = {gl->x_noise, gl->x, gl->ref_noise, gl->ref_x_T, gl->ref_final,
                     gl->ref_x_start, gl->ref_den, gl->ref_eps, gl->ref_unet_in, gl->ref_t,
                     gl->ref_sigmas, gl->ref_noises, gl->ref_down_up, gl->cond, gl->uncond,
                     gl->context, gl->got_x_start, gl->got_den};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    memset(gl, 0, sizeof *gl);
}

/* The model callback that replays the stored UNet outputs (user = the golden_loop). It also
 * measures what it was given against the stored UNet input and timestep. */
static inline sdc_status golden_loop_replay(void *user, const float *x_in, size_t n, float t,
                                            int step, float *eps, int rows, sdc_error *err) {
    golden_loop *gl = user;
    if (n != gl->n || rows != 2 || step < 0 || step >= gl->steps)
        return sdc_fail(err, SDC_E_INVALID_ARG, "replay %s: n %zu rows %d step %d",
                        gl->spec->name, n, rows, step);
    memcpy(eps, gl->ref_eps + (size_t)step * 2 * n, 2 * n * sizeof(float));
    const float *ref_in = gl->ref_unet_in ? gl->ref_unet_in + (size_t)step * n
                                          : gl->ref_x_start + (size_t)step * n;
    double e = golden_err(x_in, ref_in, (int64_t)n);
    if (e > gl->unet_in_err) gl->unet_in_err = e;
    double dt = fabs((double)t - gl->ref_t[step]);
    if (dt > gl->t_err) gl->t_err = dt;
    return SDC_OK;
}

static inline sdc_status golden_loop_on_step(void *user, const sdc_step_info *info) {
    golden_loop *gl = user;
    memcpy(gl->got_x_start + (size_t)info->step * gl->n, info->x, gl->n * sizeof(float));
    memcpy(gl->got_den + (size_t)info->step * gl->n, info->denoised, gl->n * sizeof(float));
    return SDC_OK;
}

static inline double golden_loop_steps_err(const float *got, const float *ref, int steps, size_t n) {
    double worst = 0.0;
    for (int i = 0; i < steps; i++) {
        double e = golden_err(got + (size_t)i * n, ref + (size_t)i * n, (int64_t)n);
        if (e > worst || e != e) worst = e;
    }
    return worst;
}

/* Samples gl->x with `model` and fills *r. Returns sdc_sample's status. */
static inline sdc_status golden_loop_run(golden_loop *gl, sdc_eps_fn model, void *user,
                                         golden_loop_result *r, sdc_error *err) {
    memset(r, 0, sizeof *r);
    const size_t n = gl->n;
    const int steps = gl->steps;
    r->noise_err = golden_err(gl->x_noise, gl->ref_noise, (int64_t)n);
    r->x_T_err = golden_err(gl->x, gl->ref_x_T, (int64_t)n);
    if (gl->ref_sigmas) r->sigma_err = golden_err(gl->sched.sigmas, gl->ref_sigmas, steps + 1);
    for (int i = 0; i < steps; i++) {
        double d = fabs((double)gl->sched.t[i] - gl->ref_t[i]);
        if (d > r->t_err) r->t_err = d;
    }
    gl->params.model = model;
    gl->params.model_user = user;
    gl->params.on_step = golden_loop_on_step;
    gl->params.step_user = gl;
    gl->unet_in_err = gl->t_err = 0.0;
    sdc_status st = sdc_sample(&gl->params, gl->x, n, NULL, err);
    if (st != SDC_OK) return st;
    r->step_x_err = golden_loop_steps_err(gl->got_x_start, gl->ref_x_start, steps, n);
    if (gl->ref_den) r->den_err = golden_loop_steps_err(gl->got_den, gl->ref_den, steps, n);
    r->final_err = golden_err(gl->x, gl->ref_final, (int64_t)n);
    r->unet_in_err = gl->unet_in_err;
    return SDC_OK;
}

#endif
