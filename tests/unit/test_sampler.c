/* tests/unit/test_sampler.c: every stored sampling loop (testdata/a1111 loop.*, testdata/tiny
 * loop.*) replayed with the reference's own UNet outputs, checked step by step; then guidance
 * with AND prompts, batches, the article's sigma_min variant, cancellation and bad arguments on
 * a synthetic model. */
#include "golden_loop.h"

/* ------------------------------------------------------------------------------------------ */
/* Golden loops                                                                                */
/* ------------------------------------------------------------------------------------------ */

static void check_loop(const sdc_st_file *f, const char *set, const char *name) {
    golden_loop gl;
    golden_loop_load(f, set, name, &gl);
    golden_loop_result r;
    sdc_error e = {0};
    sdc_status st = golden_loop_run(&gl, golden_loop_replay, &gl, &r, &e);
    CHECK(st == SDC_OK, "%s/%s: %s", set, name, e.msg);
    printf("%s/%s (%s, %d steps):\n", set, name, sdc_sampler_name(gl.spec->kind), gl.steps);
    char what[128];
#define LOOP_CLOSE(val, tol, label)                                                           \
    do {                                                                                      \
        snprintf(what, sizeof what, "  %s", label);                                           \
        CHECK_CLOSE(val, tol, what);                                                          \
    } while (0)
    /* the initial noise comes from our RNG and must be the reference's to the bit */
    LOOP_CLOSE(r.noise_err, 0.0, "x_noise from the seed (bit-exact)");
    LOOP_CLOSE(r.x_T_err, 1e-6, "x_T = x_noise * noise_scale");
    if (gl.ref_sigmas) LOOP_CLOSE(r.sigma_err, 2e-6, "schedule sigmas");
    LOOP_CLOSE(r.t_err, gl.compat == SDC_COMPAT_DIFFUSERS || gl.spec->kind == SDC_SAMPLER_DDIM
                            ? 0.0 : 5e-4, "UNet timesteps (abs)");
    LOOP_CLOSE(r.unet_in_err, 1e-5, "UNet input, worst step");
    LOOP_CLOSE(r.step_x_err, 1e-5, "x at each step, worst");
    if (gl.ref_den) LOOP_CLOSE(r.den_err, 1e-5, "denoised at each step, worst");
    LOOP_CLOSE(r.final_err, 1e-5, "final latent");

    if (gl.ref_noises) { /* Euler a: the generator continues with the stored ancestral noise */
        sdc_rng rng;
        float *x0 = malloc(gl.n * sizeof(float)), *nz = malloc(gl.n * sizeof(float));
        sdc_initial_noise(SDC_COMPAT_A1111, gl.spec->rng, &gl.spec->seed, 1, gl.spec->ensd, gl.n,
                          &rng, x0);
        int exact = 1;
        for (int i = 0; i < gl.steps - 1; i++) {
            sdc_rng_randn(&rng, nz, gl.n);
            exact &= !memcmp(nz, gl.ref_noises + (size_t)i * gl.n, gl.n * sizeof(float));
        }
        CHECK(exact, "%s: ancestral noises differ from the stored ones", name);
        printf("    ancestral noises (%d draws) bit-exact: %s\n", gl.steps - 1, exact ? "yes" : "no");
        double worst = 0.0;
        for (int i = 0; i < gl.steps; i++) {
            float down, up;
            sdc_ancestral_step(gl.sched.sigmas[i], gl.sched.sigmas[i + 1], 1.0f, &down, &up);
            float ref[2] = {gl.ref_down_up[2 * i], gl.ref_down_up[2 * i + 1]}, got[2] = {down, up};
            double d = golden_err(got, ref, 2);
            if (d > worst) worst = d;
        }
        LOOP_CLOSE(worst, 2e-6, "sigma_down / sigma_up");
        free(x0);
        free(nz);
    }
#undef LOOP_CLOSE
    golden_loop_free(&gl);
}

/* ------------------------------------------------------------------------------------------ */
/* A synthetic model: eps_r = a_r * x_in + b_r * t/1000, deterministic and cheap               */
/* ------------------------------------------------------------------------------------------ */

typedef struct toy_model {
    int calls, fail_at;
    int last_rows;
    const float *a, *b; /* per row */
} toy_model;

static sdc_status toy_eps(void *user, const float *x_in, size_t n, float t, int step, float *eps,
                          int rows, sdc_error *err) {
    toy_model *m = user;
    m->calls++;
    m->last_rows = rows;
    if (step == m->fail_at) return sdc_fail(err, SDC_E_BACKEND, "toy model: failing at step %d", step);
    for (int r = 0; r < rows; r++)
        for (size_t i = 0; i < n; i++)
            eps[(size_t)r * n + i] = m->a[r] * x_in[i] + m->b[r] * (t / 1000.0f) * (float)(i % 7);
    return SDC_OK;
}

static sdc_status cancel_at_3(void *user, const sdc_step_info *info) {
    (void)user;
    return info->step == 3 ? SDC_E_CANCELLED : SDC_OK;
}

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

static void test_guidance_and_batches(void) {
    sdc_noise_table nt;
    sdc_noise_table_init(&nt, SDC_COMPAT_A1111);
    sdc_sched sch;
    sdc_error e = {0};
    sdc_sched_params sp = {.kind = SDC_SCHEDULE_KARRAS, .steps = 1};
    CHECK(sdc_schedule_make(&nt, &sp, &sch, &e) == SDC_OK, "schedule: %s", e.msg);

    /* AND prompts: one DPM++ 2M step into sigma 0 returns den itself; compare with the formula */
    enum { N = 32 };
    float x[N], x0[N];
    for (int i = 0; i < N; i++) x0[i] = x[i] = (float)(i - 16) * 0.37f;
    const float a[3] = {0.10f, -0.20f, 0.05f}, b[3] = {1.0f, 2.0f, -1.0f}, w[2] = {0.7f, 1.3f};
    toy_model m = {.fail_at = -1, .a = a, .b = b};
    sdc_sampler_params p = sdc_sampler_defaults(SDC_SAMPLER_DPMPP_2M);
    p.sched = &sch;
    p.model = toy_eps;
    p.model_user = &m;
    p.cfg.n_cond = 2;
    p.cfg.weights = w;
    CHECK(sdc_sample(&p, x, N, NULL, &e) == SDC_OK, "AND prompts: %s", e.msg);
    CHECK(m.last_rows == 3, "AND prompts asked for %d rows", m.last_rows);
    float s = sch.sigmas[0], c_in = 1.0f / sqrtf(s * s + 1.0f);
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        float xi = x0[i] * c_in, tt = sch.t[0] / 1000.0f * (float)(i % 7);
        float d[3];
        for (int r = 0; r < 3; r++) d[r] = x0[i] + (a[r] * xi + b[r] * tt) * -s;
        float den = d[2] + (d[0] - d[2]) * (w[0] * 7.5f) + (d[1] - d[2]) * (w[1] * 7.5f);
        double err = fabs(x[i] - den) / (fabs(den) > 1 ? fabs(den) : 1);
        if (err > worst) worst = err;
    }
    CHECK_CLOSE(worst, 1e-6, "AND prompts: den = D_u + sum (D_k - D_u) w_k s");

    /* no uncond: one row, den = D_c */
    memcpy(x, x0, sizeof x);
    p.cfg = (sdc_guidance){.scale = 7.5f, .n_cond = 1, .no_uncond = 1};
    CHECK(sdc_sample(&p, x, N, NULL, &e) == SDC_OK && m.last_rows == 1, "no uncond: %s", e.msg);
    worst = 0.0;
    for (int i = 0; i < N; i++) {
        float den = x0[i] + (a[0] * (x0[i] * c_in) + b[0] * (sch.t[0] / 1000.0f * (float)(i % 7))) * -s;
        double err = fabs(x[i] - den) / (fabs(den) > 1 ? fabs(den) : 1);
        if (err > worst) worst = err;
    }
    CHECK_CLOSE(worst, 1e-6, "no uncond: den = D_c");

    /* a batch of two Euler a images equals the two images sampled alone (per-image noise) */
    sp = (sdc_sched_params){.kind = SDC_SCHEDULE_AUTOMATIC, .steps = 8};
    CHECK(sdc_schedule_make(&nt, &sp, &sch, &e) == SDC_OK, "schedule: %s", e.msg);
    enum { PER = 56 }; /* a multiple of 7: the toy model's eps repeats every 7 values */
    const uint64_t seeds[2] = {77, 78};
    float both[2 * PER], one[PER], other[PER];
    sdc_rng rngs[2], r1;
    const float a2[2] = {0.3f, 0.1f}, b2[2] = {0.5f, -0.5f};
    toy_model m2 = {.fail_at = -1, .a = a2, .b = b2};
    p = sdc_sampler_defaults(SDC_SAMPLER_EULER_A);
    p.sched = &sch;
    p.model = toy_eps;
    p.model_user = &m2;
    p.batch = 2;
    p.rngs = rngs;
    sdc_initial_noise(SDC_COMPAT_A1111, SDC_RNG_TORCH_CPU, seeds, 2, 0, PER, rngs, both);
    for (int i = 0; i < 2 * PER; i++) both[i] *= sdc_sampler_noise_scale(&p);
    CHECK(sdc_sample(&p, both, 2 * PER, NULL, &e) == SDC_OK, "batch 2: %s", e.msg);
    p.batch = 1;
    p.rngs = &r1;
    int same = 1;
    for (int k = 0; k < 2; k++) {
        float *img = k ? other : one;
        sdc_initial_noise(SDC_COMPAT_A1111, SDC_RNG_TORCH_CPU, &seeds[k], 1, 0, PER, &r1, img);
        for (int i = 0; i < PER; i++) img[i] *= sdc_sampler_noise_scale(&p);
        CHECK(sdc_sample(&p, img, PER, NULL, &e) == SDC_OK, "batch 1: %s", e.msg);
        same &= !memcmp(img, both + k * PER, sizeof one);
    }
    /* the toy model is elementwise, so batching must not change a bit */
    CHECK(same, "Euler a batch of 2 differs from the images sampled one by one");

    /* the same with a caller-provided workspace gives the same bits */
    float ws[PER * 5], again[PER];
    size_t need = sdc_sampler_workspace_floats(&p, PER);
    CHECK(need == PER * 5, "workspace %zu floats for 2 rows", need);
    sdc_initial_noise(SDC_COMPAT_A1111, SDC_RNG_TORCH_CPU, &seeds[1], 1, 0, PER, &r1, again);
    for (int i = 0; i < PER; i++) again[i] *= sdc_sampler_noise_scale(&p);
    CHECK(sdc_sample(&p, again, PER, ws, &e) == SDC_OK && !memcmp(again, other, sizeof again),
          "caller workspace changes the result");
}

static void test_diffusers_sigma_min(void) {
    /* The article's scheduler: karras + final sigma_min. Its last step goes from sigma_min to
     * sigma_min (h = 0) and must leave x as it is, without inf/NaN. */
    sdc_noise_table nt;
    sdc_noise_table_init(&nt, SDC_COMPAT_DIFFUSERS);
    sdc_sched sch;
    sdc_error e = {0};
    sdc_sched_params sp = {.kind = SDC_SCHEDULE_KARRAS, .steps = 20, .final_sigma_min = 1};
    CHECK(sdc_schedule_make(&nt, &sp, &sch, &e) == SDC_OK, "schedule: %s", e.msg);
    enum { N = 48 };
    float x[N], before_last[N];
    sdc_rng rng;
    const uint64_t seed = 5;
    sdc_initial_noise(SDC_COMPAT_DIFFUSERS, SDC_RNG_TORCH_CPU, &seed, 1, 0, N, &rng, x);
    const float a[2] = {0.2f, 0.4f}, b[2] = {0.3f, 0.1f};
    toy_model m = {.fail_at = -1, .a = a, .b = b};
    sdc_sampler_params p = sdc_sampler_defaults(SDC_SAMPLER_DPMPP_2M);
    p.sched = &sch;
    p.model = toy_eps;
    p.model_user = &m;
    CHECK(sdc_sampler_noise_scale(&p) == 1.0f, "diffusers init_noise_sigma is 1");
    sch.steps = 19; /* run 19 steps, keep x, then the full 20 from the same start */
    float start[N];
    memcpy(start, x, sizeof x);
    CHECK(sdc_sample(&p, x, N, NULL, &e) == SDC_OK, "19 steps: %s", e.msg);
    memcpy(before_last, x, sizeof x);
    sch.steps = 20;
    memcpy(x, start, sizeof x);
    CHECK(sdc_sample(&p, x, N, NULL, &e) == SDC_OK, "20 steps: %s", e.msg);
    CHECK(all_finite(x, N) && !memcmp(x, before_last, sizeof x),
          "sigma_min final step changed x or produced non-finite values");
    CHECK(m.calls == 39, "model calls %d, expected 19 + 20", m.calls);
}

static void test_errors(void) {
    sdc_noise_table nt, nd;
    sdc_noise_table_init(&nt, SDC_COMPAT_A1111);
    sdc_noise_table_init(&nd, SDC_COMPAT_DIFFUSERS);
    sdc_sched sch, ddim, dsch;
    sdc_error e = {0};
    sdc_sched_params sp = {.kind = SDC_SCHEDULE_AUTOMATIC, .steps = 10};
    CHECK(sdc_schedule_make(&nt, &sp, &sch, &e) == SDC_OK, "schedule: %s", e.msg);
    CHECK(sdc_schedule_make(&nd, &sp, &dsch, &e) == SDC_OK, "schedule: %s", e.msg);
    CHECK(sdc_schedule_ddim(&nt, 10, &ddim, &e) == SDC_OK, "ddim: %s", e.msg);
    enum { N = 16 };
    float x[N] = {0};
    const float a[2] = {0.1f, 0.2f}, b[2] = {0, 0};
    toy_model m = {.fail_at = -1, .a = a, .b = b};
    sdc_sampler_params p = sdc_sampler_defaults(SDC_SAMPLER_EULER);
    p.sched = &sch;
    p.model = toy_eps;
    p.model_user = &m;

    /* cancel from the step callback after 4 model calls */
    p.on_step = cancel_at_3;
    CHECK(sdc_sample(&p, x, N, NULL, &e) == SDC_E_CANCELLED && m.calls == 4 &&
              strstr(e.msg, "step 4 of 10"), "cancel: %d calls, %s", m.calls, e.msg);
    p.on_step = NULL;

    /* a failing model stops the loop and its message comes back unchanged */
    m.fail_at = 2;
    m.calls = 0;
    CHECK(sdc_sample(&p, x, N, NULL, &e) == SDC_E_BACKEND && m.calls == 3 &&
              !strcmp(e.msg, "toy model: failing at step 2"), "model failure: %s", e.msg);
    m.fail_at = -1;

    sdc_sampler_params q = p;
    q.model = NULL;
    CHECK(sdc_sample(&q, x, N, NULL, &e) == SDC_E_INVALID_ARG, "NULL model accepted");
    CHECK(sdc_sample(NULL, x, N, NULL, &e) == SDC_E_INVALID_ARG, "NULL params accepted");
    CHECK(sdc_sample(&p, NULL, N, NULL, &e) == SDC_E_INVALID_ARG, "NULL latent accepted");
    CHECK(sdc_sample(&p, x, 0, NULL, &e) == SDC_E_INVALID_ARG, "empty latent accepted");
    q = p;
    q.batch = 3;
    CHECK(sdc_sample(&q, x, N, NULL, &e) == SDC_E_INVALID_ARG && strstr(e.msg, "3 images"),
          "16 values in 3 images: %s", e.msg);
    q = p;
    q.cfg.n_cond = 0;
    CHECK(sdc_sample(&q, x, N, NULL, &e) == SDC_E_INVALID_ARG, "0 cond rows accepted");
    q.cfg.n_cond = 2;
    q.cfg.no_uncond = 1;
    CHECK(sdc_sample(&q, x, N, NULL, &e) == SDC_E_INVALID_ARG, "2 conds without uncond accepted");
    q = p;
    q.cfg.scale = NAN;
    CHECK(sdc_sample(&q, x, N, NULL, &e) == SDC_E_INVALID_ARG, "NaN scale accepted");
    q = p;
    q.kind = SDC_SAMPLER_DDIM;
    CHECK(sdc_sample(&q, x, N, NULL, &e) == SDC_E_INVALID_ARG && strstr(e.msg, "sdc_schedule_ddim"),
          "DDIM on sigmas: %s", e.msg);
    q = p;
    q.sched = &ddim;
    CHECK(sdc_sample(&q, x, N, NULL, &e) == SDC_E_INVALID_ARG, "Euler on DDIM timesteps accepted");
    q = p;
    q.kind = SDC_SAMPLER_EULER_A;
    CHECK(sdc_sample(&q, x, N, NULL, &e) == SDC_E_INVALID_ARG && strstr(e.msg, "generators"),
          "Euler a without generators: %s", e.msg);
    q = p;
    q.sched = &dsch;
    CHECK(sdc_sample(&q, x, N, NULL, &e) == SDC_E_UNSUPPORTED && strstr(e.msg, "diffusers"),
          "diffusers Euler: %s", e.msg);
    q.kind = (sdc_sampler_kind)SDC_SAMPLER_COUNT;
    CHECK(sdc_sample(&q, x, N, NULL, &e) == SDC_E_INVALID_ARG, "unknown sampler accepted");
    sdc_sched bad = sch;
    bad.sigmas[3] = -1.0f;
    q = p;
    q.sched = &bad;
    CHECK(sdc_sample(&q, x, N, NULL, &e) == SDC_E_INVALID_ARG && strstr(e.msg, "sigmas[3]"),
          "negative sigma: %s", e.msg);
    CHECK(sdc_sampler_workspace_floats(&p, SIZE_MAX / 2) == 0, "workspace size overflow not caught");
    CHECK(sdc_sample(&p, x, SIZE_MAX / 2, NULL, &e) == SDC_E_LIMIT, "huge latent accepted");

    for (int k = 0; k < SDC_SAMPLER_COUNT; k++)
        CHECK(sdc_sampler_from_name(sdc_sampler_name(k)) == k, "sampler name round trip %d", k);
    CHECK(sdc_sampler_from_name("euler_ancestral") == SDC_SAMPLER_EULER_A &&
              sdc_sampler_from_name("DPMPP_2M") == SDC_SAMPLER_DPMPP_2M &&
              sdc_sampler_from_name("lms") == -1 && sdc_sampler_from_name(NULL) == -1,
          "sampler names");
    CHECK(sdc_sampler_default_schedule(SDC_SAMPLER_DPMPP_2M) == SDC_SCHEDULE_KARRAS &&
              sdc_sampler_default_schedule(SDC_SAMPLER_EULER_A) == SDC_SCHEDULE_UNIFORM,
          "webui's Automatic schedule per sampler");
}

int main(void) {
    sdc_st_file *ga = golden_open(A1111_DIR "/a1111.safetensors");
    sdc_st_file *gt = golden_open(TINY_DIR "/golden.safetensors");
    for (size_t i = 0; i < GOLDEN_LOOP_COUNT; i++) {
        const golden_loop_spec *s = &golden_loop_specs[i];
        check_loop(strcmp(s->set, "tiny") ? ga : gt, s->set, s->name);
    }
    test_guidance_and_batches();
    test_diffusers_sigma_min();
    test_errors();
    sdc_st_close(ga);
    sdc_st_close(gt);
    TEST_MAIN_END();
}
