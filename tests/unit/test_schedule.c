/* tests/unit/test_schedule.c: noise tables and sigma schedules against the goldens of
 * testdata/a1111 (webui + k-diffusion) and testdata/tiny (diffusers DPMSolverMultistepScheduler),
 * the seed article's 20-step Karras timesteps, and the argument checks. */
#include "golden.h"
#include "sampling/schedule.h"

/* max |a - ref| / |ref| over the nonzero refs (absolute where ref is 0): the per-element relative
 * error, stricter than golden_err for the small sigmas at the end of a schedule. */
static double elem_rel_err(const float *a, const float *ref, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (ref[i] != 0.0f) d /= fabs((double)ref[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

static double max_abs_diff(const float *a, const float *ref, int64_t n) {
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (d > m || d != d) m = d != d ? INFINITY : d;
    }
    return m;
}

static int count_equal(const float *a, const float *b, int64_t n) {
    int c = 0;
    for (int64_t i = 0; i < n; i++) c += a[i] == b[i];
    return c;
}

static void test_a1111_tables(const sdc_st_file *g, const sdc_noise_table *nt) {
    int64_t n;
    float *ac = golden_f32(g, "sched.alphas_cumprod", &n);
    CHECK(n == SDC_TRAIN_STEPS, "alphas_cumprod numel %lld", (long long)n);
    int eq = count_equal(nt->alphas_cumprod, ac, SDC_TRAIN_STEPS);
    printf("  a1111 alphas_cumprod bit-exact: %d / %d\n", eq, SDC_TRAIN_STEPS);
    CHECK(eq == SDC_TRAIN_STEPS, "a1111 alphas_cumprod: %d of 1000 bit-exact", eq);
    free(ac);

    float *sig = golden_f32(g, "sched.model_sigmas", NULL);
    eq = count_equal(nt->sigmas, sig, SDC_TRAIN_STEPS);
    printf("  a1111 model_sigmas bit-exact: %d / %d\n", eq, SDC_TRAIN_STEPS);
    CHECK(eq == SDC_TRAIN_STEPS, "a1111 model_sigmas: %d of 1000 bit-exact", eq);
    free(sig);

    float *ls = golden_f32(g, "sched.model_log_sigmas", NULL);
    eq = count_equal(nt->log_sigmas, ls, SDC_TRAIN_STEPS);
    printf("  a1111 model_log_sigmas bit-exact: %d / %d (torch uses SLEEF logf)\n", eq,
           SDC_TRAIN_STEPS);
    CHECK_CLOSE(elem_rel_err(nt->log_sigmas, ls, SDC_TRAIN_STEPS), 2e-7, "a1111 model_log_sigmas");
    free(ls);
}

/* One webui schedule table: sigmas (per-element relative) and the fractional timesteps (abs). */
static void check_a1111_schedule(const sdc_st_file *g, const sdc_noise_table *nt, const char *name,
                                 const char *golden, int steps, int discard, double tol) {
    sdc_sched_params sp = {.kind = sdc_schedule_from_name(name), .steps = steps,
                           .discard_penultimate = discard};
    sdc_sched s;
    sdc_error e = {0};
    char key[128], what[192];
    CHECK((int)sp.kind >= 0, "schedule name %s unknown", name);
    CHECK(sdc_schedule_make(nt, &sp, &s, &e) == SDC_OK, "%s.%d: %s", golden, steps, e.msg);

    snprintf(key, sizeof key, "sched.%s.%d", golden, steps);
    int64_t n;
    float *ref = golden_f32(g, key, &n);
    CHECK(n == s.steps + 1, "%s: %lld sigmas, made %d", key, (long long)n, s.steps + 1);
    if (n == s.steps + 1) {
        snprintf(what, sizeof what, "%s sigmas (elem rel)", key);
        CHECK_CLOSE(elem_rel_err(s.sigmas, ref, n), tol, what);
    }
    free(ref);

    if (discard) return; /* no .t stored for the discarded variant */
    snprintf(key, sizeof key, "sched.%s.%d.t", golden, steps);
    float *t = golden_f32(g, key, &n);
    /* .t covers every nonzero sigma: steps values, steps + 1 for kl_optimal (no final 0) */
    float mine[SDC_SCHED_MAX_STEPS + 1];
    for (int64_t i = 0; i < n; i++) mine[i] = sdc_sigma_to_t(nt, s.sigmas[i]);
    for (int i = 0; i < s.steps && i < n; i++)
        CHECK(mine[i] == s.t[i], "%s: sched.t[%d] %g != sigma_to_t %g", key, i, s.t[i], mine[i]);
    snprintf(what, sizeof what, "%s (abs)", key);
    CHECK_CLOSE(max_abs_diff(mine, t, n), 5e-4, what); /* README: 2e-3 */
    free(t);
}

static void test_a1111_schedules(const sdc_st_file *g, const sdc_noise_table *nt) {
    static const char *names[] = {"automatic", "uniform", "normal", "karras", "exponential",
                                  "polyexponential", "sgm_uniform", "simple", "ddim",
                                  "kl_optimal", "align_your_steps"};
    static const int steps[] = {20, 10};
    for (size_t k = 0; k < sizeof steps / sizeof steps[0]; k++) {
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            int loose = !strcmp(names[i], "kl_optimal") || !strcmp(names[i], "align_your_steps");
            check_a1111_schedule(g, nt, names[i], names[i], steps[k], 0, loose ? 1e-5 : 2e-6);
        }
        check_a1111_schedule(g, nt, "karras", "karras_discard_penultimate", steps[k], 1, 2e-6);

        /* webui's own DDIM sampler timesteps */
        char key[64];
        snprintf(key, sizeof key, "sched.ddim_timesteps.%d", steps[k]);
        int64_t n;
        float *ts = golden_f32(g, key, &n);
        sdc_sched s;
        sdc_error e = {0};
        CHECK(sdc_schedule_ddim(nt, steps[k], &s, &e) == SDC_OK, "ddim %d: %s", steps[k], e.msg);
        CHECK(s.steps + 1 == n, "%s: %lld timesteps, made %d", key, (long long)n, s.steps + 1);
        int ok = s.steps + 1 == n;
        for (int64_t i = 0; ok && i < n; i++) ok = s.t[n - 1 - i] == ts[i];
        CHECK(ok, "%s differs", key);
        for (int i = 0; ok && i <= s.steps; i++)
            ok = s.alphas_cumprod[i] == nt->alphas_cumprod[(int)s.t[i]];
        CHECK(ok, "%s: alphas_cumprod not taken at the timesteps", key);
        free(ts);
    }

    /* webui's DDIM with 15 steps: 1000 // 15 = 66 gives 16 timesteps and 15 UNet calls */
    sdc_sched s;
    sdc_error e = {0};
    CHECK(sdc_schedule_ddim(nt, 15, &s, &e) == SDC_OK && s.steps == 15 && s.t[0] == 991.0f &&
              s.t[15] == 1.0f, "ddim 15: %d steps, t[0] %g", s.steps, s.t[0]);
    /* schedule type "ddim" has as many steps as it has timesteps: 16 for 15 */
    sdc_sched_params sp = {.kind = SDC_SCHEDULE_DDIM_UNIFORM, .steps = 15};
    CHECK(sdc_schedule_make(nt, &sp, &s, &e) == SDC_OK && s.steps == 16 &&
              s.sigmas[0] == nt->sigmas[991] && s.sigmas[16] == 0.0f,
          "schedule ddim 15: %d steps", s.steps);

    /* sigma_to_t inverts t_to_sigma on the table's own points and between them */
    double worst = 0.0;
    for (int i = 0; i < 4000; i++) {
        float t = (float)i * 0.24975f;
        double d = fabs(sdc_sigma_to_t(nt, sdc_t_to_sigma(nt, t)) - t);
        if (d > worst) worst = d;
    }
    CHECK_CLOSE(worst, 2e-3, "sigma_to_t(t_to_sigma(t)) - t, t in [0, 999]");
    CHECK(sdc_sigma_to_t(nt, 100.0f) == 999.0f && sdc_sigma_to_t(nt, 1e-3f) == 0.0f,
          "sigma_to_t clamps outside the table");
}

static void test_diffusers(const sdc_st_file *g) {
    sdc_noise_table nt;
    sdc_noise_table_init(&nt, SDC_COMPAT_DIFFUSERS);
    float *ac = golden_f32(g, "sched.alphas_cumprod", NULL);
    int eq = count_equal(nt.alphas_cumprod, ac, SDC_TRAIN_STEPS);
    printf("  diffusers alphas_cumprod bit-exact: %d / %d\n", eq, SDC_TRAIN_STEPS);
    CHECK(eq == SDC_TRAIN_STEPS, "diffusers alphas_cumprod: %d of 1000 bit-exact", eq);
    free(ac);

    static const char *kinds[] = {"default", "karras"};
    static const int steps[] = {20, 10};
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < 2; j++) {
            sdc_sched_params sp = {.kind = k ? SDC_SCHEDULE_KARRAS : SDC_SCHEDULE_UNIFORM,
                                   .steps = steps[j]};
            sdc_sched s;
            sdc_error e = {0};
            CHECK(sdc_schedule_make(&nt, &sp, &s, &e) == SDC_OK, "diffusers: %s", e.msg);
            char key[64], what[96];
            int64_t n;
            snprintf(key, sizeof key, "sched.%s.%d.timesteps", kinds[k], steps[j]);
            float *ts = golden_f32(g, key, &n);
            CHECK(n == s.steps && count_equal(s.t, ts, n) == n, "%s: timesteps differ", key);
            free(ts);
            snprintf(key, sizeof key, "sched.%s.%d.sigmas", kinds[k], steps[j]);
            float *sig = golden_f32(g, key, &n);
            CHECK(n == s.steps + 1, "%s: %lld sigmas", key, (long long)n);
            eq = count_equal(s.sigmas, sig, n);
            printf("  %s bit-exact: %d / %lld\n", key, eq, (long long)n);
            snprintf(what, sizeof what, "%s (elem rel)", key);
            CHECK_CLOSE(elem_rel_err(s.sigmas, sig, n), 2e-7, what);
            free(sig);
        }
    }

    /* The seed article's scheduler: use_karras_sigmas=True, final_sigmas_type="sigma_min". */
    static const float article_ts[20] = {999, 962, 921, 876, 827, 772, 710, 640, 561, 474,
                                         380, 285, 197, 123, 69,  35,  15,  6,   2,   0};
    sdc_sched_params sp = {.kind = SDC_SCHEDULE_KARRAS, .steps = 20, .final_sigma_min = 1};
    sdc_sched s;
    sdc_error e = {0};
    CHECK(sdc_schedule_make(&nt, &sp, &s, &e) == SDC_OK, "article schedule: %s", e.msg);
    CHECK(count_equal(s.t, article_ts, 20) == 20, "article 20-step karras timesteps differ");
    CHECK(s.sigmas[20] == nt.sigmas[0] && s.sigmas[19] == nt.sigmas[0],
          "sigma_min final: sigmas[19] %g sigmas[20] %g, sigma_min %g", s.sigmas[19], s.sigmas[20],
          nt.sigmas[0]);
}

static void test_arguments(void) {
    sdc_noise_table a, d;
    sdc_noise_table_init(&a, SDC_COMPAT_A1111);
    sdc_noise_table_init(&d, SDC_COMPAT_DIFFUSERS);
    sdc_sched s;
    sdc_error e = {0};
    sdc_sched_params sp = {.kind = SDC_SCHEDULE_KARRAS, .steps = 0};
    CHECK(sdc_schedule_make(&a, &sp, &s, &e) == SDC_E_INVALID_ARG && strstr(e.msg, "steps"),
          "steps 0: %s", e.msg);
    sp.steps = SDC_SCHED_MAX_STEPS + 1;
    CHECK(sdc_schedule_make(&a, &sp, &s, &e) == SDC_E_INVALID_ARG, "steps 1001 accepted");
    sp.steps = SDC_SCHED_MAX_STEPS;
    sp.discard_penultimate = 1;
    CHECK(sdc_schedule_make(&a, &sp, &s, &e) == SDC_E_LIMIT, "1000 + discarded sigma accepted");
    sp = (sdc_sched_params){.kind = SDC_SCHEDULE_COUNT, .steps = 20};
    CHECK(sdc_schedule_make(&a, &sp, &s, &e) == SDC_E_INVALID_ARG, "kind COUNT accepted");
    sp = (sdc_sched_params){.kind = SDC_SCHEDULE_KARRAS, .steps = 20, .rho = -1.0f};
    CHECK(sdc_schedule_make(&a, &sp, &s, &e) == SDC_E_INVALID_ARG, "rho -1 accepted");
    sp = (sdc_sched_params){.kind = SDC_SCHEDULE_EXPONENTIAL, .steps = 20};
    CHECK(sdc_schedule_make(&d, &sp, &s, &e) == SDC_E_UNSUPPORTED && strstr(e.msg, "exponential"),
          "diffusers exponential: %s", e.msg);
    CHECK(sdc_schedule_ddim(&d, 20, &s, &e) == SDC_E_UNSUPPORTED, "diffusers ddim accepted");
    CHECK(sdc_schedule_ddim(&a, 0, &s, &e) == SDC_E_INVALID_ARG, "ddim 0 steps accepted");
    CHECK(sdc_schedule_make(NULL, &sp, &s, &e) == SDC_E_INVALID_ARG, "NULL table accepted");

    /* every length works and stays finite and decreasing, extreme ones included */
    static const int lens[] = {1, 2, 3, 7, 15, 16, 17, 33, 150, 999, 1000};
    int bad = 0;
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        for (int kind = 0; kind < SDC_SCHEDULE_COUNT; kind++) {
            sp = (sdc_sched_params){.kind = (sdc_schedule)kind, .steps = lens[k]};
            if (sdc_schedule_make(&a, &sp, &s, &e) != SDC_OK) { bad++; continue; }
            for (int i = 0; i < s.steps; i++)
                if (!(s.sigmas[i] > 0.0f && s.sigmas[i] < 15.0f && s.sigmas[i + 1] <= s.sigmas[i] &&
                      s.t[i] >= 0.0f && s.t[i] <= 999.0f)) {
                    if (!bad) printf("  bad: %s %d step %d sigma %g\n", sdc_schedule_name(kind),
                                     lens[k], i, s.sigmas[i]);
                    bad++;
                }
        }
        sp = (sdc_sched_params){.kind = SDC_SCHEDULE_KARRAS, .steps = lens[k]};
        if (sdc_schedule_make(&d, &sp, &s, &e) != SDC_OK) bad++;
    }
    CHECK(bad == 0, "%d bad schedules over all kinds and lengths", bad);

    for (int k = 0; k < SDC_SCHEDULE_COUNT; k++)
        CHECK(sdc_schedule_from_name(sdc_schedule_name(k)) == k, "name round trip %d", k);
    CHECK(sdc_schedule_from_name("Karras") == SDC_SCHEDULE_KARRAS, "names are case-insensitive");
    CHECK(sdc_schedule_from_name("bogus") == -1 && sdc_schedule_from_name(NULL) == -1,
          "unknown names are -1");
}

int main(void) {
    sdc_st_file *ga = golden_open(A1111_DIR "/a1111.safetensors");
    sdc_st_file *gt = golden_open(TINY_DIR "/golden.safetensors");
    sdc_noise_table nt;
    sdc_noise_table_init(&nt, SDC_COMPAT_A1111);

    test_a1111_tables(ga, &nt);
    test_a1111_schedules(ga, &nt);
    test_diffusers(gt);
    test_arguments();

    sdc_st_close(ga);
    sdc_st_close(gt);
    TEST_MAIN_END();
}
