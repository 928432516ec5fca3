/* tests/unit/test_layout.c: the SD1.5 tensor table (src/model/sd15_layout.h) and the
 * random-weight generator that writes it (src/model/mkmodel.h).
 *
 *  - tiny preset == the shared tiny checkpoint: every name, shape and dtype, nothing extra or
 *    missing; its 12 DDPM buffers equal ours bit for bit after rounding to f32;
 *  - full preset parameter counts: UNet 859,520,964, VAE 83,653,863, text 123,060,480;
 *  - mkmodel: the file holds exactly the layout, every value equals sdc_mkmodel_values() in the
 *    file dtype, the same seed gives the same bytes whatever the thread count, the
 *    initialisation statistics are those documented, and failures leave no file behind.
 */
#include "core/sha256.h"
#include "io/safetensors.h"
#include "model/mkmodel.h"
#include "model/sd15_layout.h"
#include "test.h"

#include <inttypes.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#define TINY SDC_SHARED_DIR "/testdata/tiny/sd15-tiny-f32.safetensors"

static char tmp_path[256];

static const char *tmpfile_named(const char *what) {
    snprintf(tmp_path, sizeof tmp_path, "/tmp/sdc_test_layout_%d_%s.safetensors", (int)getpid(), what);
    return tmp_path;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

static sdc_dtype expected_dtype(const sdc_sd15_tensor *t, sdc_dtype float_dt) {
    return t->init == SDC_INIT_POSITION_IDS ? SDC_I64 : float_dt;
}

/* Every layout tensor is in f with the same shape and dtype, and f has nothing else. */
static void check_file_matches_layout(const sdc_st_file *f, const sdc_sd15_layout *l,
                                      sdc_dtype float_dt, const char *label) {
    size_t missing = 0, bad_shape = 0, bad_dtype = 0;
    for (size_t i = 0; i < l->n; i++) {
        const sdc_sd15_tensor *t = &l->t[i];
        const sdc_st_tensor *x = sdc_st_find(f, t->name);
        if (!x) {
            if (missing++ < 5) fprintf(stderr, "  %s: missing %s\n", label, t->name);
            continue;
        }
        int same = x->ndim == t->ndim;
        for (int d = 0; same && d < t->ndim; d++) same = x->shape[d] == t->shape[d];
        if (!same && bad_shape++ < 5) fprintf(stderr, "  %s: shape of %s differs\n", label, t->name);
        if (x->dtype != expected_dtype(t, float_dt) && bad_dtype++ < 5)
            fprintf(stderr, "  %s: dtype of %s is %s\n", label, t->name, sdc_dtype_table[x->dtype].name);
    }
    CHECK(missing == 0, "%s: %zu layout tensors missing from the file", label, missing);
    CHECK(bad_shape == 0, "%s: %zu shapes differ", label, bad_shape);
    CHECK(bad_dtype == 0, "%s: %zu dtypes differ", label, bad_dtype);
    /* all layout names are found and distinct (checked below), so equal counts = no extras */
    CHECK(sdc_st_count(f) == l->n, "%s: file has %zu tensors, layout %zu", label,
          sdc_st_count(f), l->n);
}

/* ------------------------------------------------------------------------------------------ */

static void test_tiny_matches_shared_checkpoint(void) {
    sdc_error err;
    sdc_sd15_config c = sdc_sd15_config_tiny();
    sdc_sd15_layout l;
    CHECK(sdc_sd15_layout_build(&c, &l, &err) == SDC_OK, "tiny layout: %s", err.msg);

    /* names are unique */
    size_t dups = 0;
    for (size_t i = 0; i < l.n; i++)
        for (size_t j = i + 1; j < l.n; j++) dups += !strcmp(l.t[i].name, l.t[j].name);
    CHECK(dups == 0, "tiny layout has %zu duplicate names", dups);

    sdc_st_file *f = NULL;
    sdc_status st = sdc_st_open(TINY, &f, &err);
    CHECK(st == SDC_OK, "open %s: %s", TINY, err.msg);
    if (st == SDC_OK) {
        check_file_matches_layout(f, &l, SDC_F32, "shared tiny");
        printf("  tiny: %zu tensors in the layout, %zu in the shared checkpoint\n", l.n,
               sdc_st_count(f));

        /* DDPM buffers: ours rounded to f32 == the checkpoint's (LDM computes them in f64) */
        double v[1000];
        size_t bad = 0, checked = 0;
        for (int s = 0; s < SDC_SD15_N_SCHEDULE; s++) {
            const sdc_st_tensor *x = sdc_st_find(f, sdc_sd15_schedule_names[s]);
            if (!x || x->dtype != SDC_F32 || x->numel != 1000) {
                bad++;
                continue;
            }
            CHECK(sdc_sd15_schedule(&c, s, v, &err) == SDC_OK, "schedule %d: %s", s, err.msg);
            const float *ref = x->data;
            for (int i = 0; i < 1000; i++, checked++) {
                float a;
                memcpy(&a, &ref[i], sizeof a);
                bad += (float)v[i] != a;
            }
        }
        CHECK(checked == 12000 && bad == 0, "DDPM buffers: %zu of %zu values differ", bad, checked);
        printf("  DDPM buffers: %zu values, %zu differ from the shared checkpoint\n", checked, bad);

        const sdc_st_tensor *pid = sdc_st_find(f, SDC_SD15_TEXT_MODEL_PREFIX "embeddings.position_ids");
        int ok = pid && pid->dtype == SDC_I64 && pid->numel == 77;
        for (int i = 0; ok && i < 77; i++) {
            int64_t x;
            memcpy(&x, (const char *)pid->data + 8 * i, 8);
            ok = x == i;
        }
        CHECK(ok, "position_ids are not 0..76 int64");
        sdc_st_close(f);
    }

    /* every layout entry classifies as what it is */
    size_t wrong = 0;
    for (size_t i = 0; i < l.n; i++) {
        int comp;
        sdc_sd15_key_class k = sdc_sd15_classify_key(l.t[i].name, &comp);
        int want = sdc_sd15_is_param(&l.t[i]) ? SDC_KEY_PARAM : SDC_KEY_BUFFER;
        wrong += (int)k != want || (k == SDC_KEY_PARAM && comp != l.t[i].comp);
    }
    CHECK(wrong == 0, "%zu layout entries classify wrongly", wrong);
    CHECK(sdc_sd15_classify_key("model_ema.decay", NULL) == SDC_KEY_OTHER, "model_ema.decay");
    CHECK(sdc_sd15_classify_key("cond_stage_model.transformer.embeddings.position_ids", NULL) ==
              SDC_KEY_BUFFER, "old-style position_ids");
    sdc_sd15_layout_free(&l);
}

static void test_full_counts(void) {
    sdc_error err;
    sdc_sd15_config c = sdc_sd15_config_full();
    sdc_sd15_layout l;
    CHECK(sdc_sd15_layout_build(&c, &l, &err) == SDC_OK, "full layout: %s", err.msg);
    int64_t unet = sdc_sd15_param_count(&l, SDC_SD15_UNET);
    int64_t vae = sdc_sd15_param_count(&l, SDC_SD15_VAE);
    int64_t text = sdc_sd15_param_count(&l, SDC_SD15_TEXT);
    printf("  full: UNet %" PRId64 ", VAE %" PRId64 ", text %" PRId64 ", total %" PRId64
           ", %zu tensors\n", unet, vae, text, unet + vae + text, l.n);
    CHECK(unet == 859520964, "UNet parameters %" PRId64 ", want 859520964", unet);
    CHECK(vae == 83653863, "VAE parameters %" PRId64 ", want 83653863", vae);
    CHECK(text == 123060480, "text encoder parameters %" PRId64 ", want 123060480", text);
    /* the tiny file's 983 keys, plus 10 more CLIP layers of 16 tensors */
    CHECK(l.n == 983 + 160, "full layout has %zu tensors, want 1143", l.n);
    long k = sdc_sd15_find(&l, "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight");
    CHECK(k >= 0 && l.t[k].shape[0] == 320 && l.t[k].shape[1] == 768, "attn2.to_k is [320, 768]");
    k = sdc_sd15_find(&l, "first_stage_model.encoder.conv_out.weight");
    CHECK(k >= 0 && l.t[k].shape[0] == 8 && l.t[k].shape[1] == 512, "VAE encoder.conv_out is [8, 512, 3, 3]");
    sdc_sd15_layout_free(&l);

    /* bad configs are refused with the field named */
    c.num_heads = 7;
    CHECK(sdc_sd15_layout_build(&c, &l, &err) == SDC_E_INVALID_ARG && strstr(err.msg, "num_heads"),
          "num_heads 7: '%s'", err.msg);
    c = sdc_sd15_config_full();
    c.model_channels = 48;
    CHECK(sdc_sd15_layout_build(&c, &l, &err) == SDC_E_INVALID_ARG && strstr(err.msg, "32"),
          "model_channels 48: '%s'", err.msg);
    c = sdc_sd15_config_full();
    c.n_levels = 0;
    CHECK(sdc_sd15_layout_build(&c, &l, &err) == SDC_E_INVALID_ARG && strstr(err.msg, "n_levels"),
          "n_levels 0: '%s'", err.msg);
    CHECK(l.n == 0 && l.t == NULL, "failed build leaves an empty layout");
}

/* ------------------------------------------------------------------------------------------ */
/* mkmodel                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static sdc_status make_tiny(const char *path, sdc_dtype dt, uint64_t seed, int threads, sdc_error *err) {
    sdc_mkmodel_params p = sdc_mkmodel_params_default();
    p.path = path;
    p.variant = "tiny";
    p.config = sdc_sd15_config_tiny();
    p.dtype = dt;
    p.seed = seed;
    p.norm_jitter = 1;
    p.n_threads = threads;
    return sdc_mkmodel(&p, err);
}

static void digest_of(const char *path, char hex[SDC_SHA256_HEX]) {
    uint8_t d[32];
    sdc_error err;
    if (sdc_sha256_file(path, d, &err) != SDC_OK) {
        strcpy(hex, "error");
        return;
    }
    sdc_sha256_hex(d, hex);
}

static float elem_f32(const sdc_st_tensor *x, int64_t i) {
    float v;
    if (x->dtype == SDC_F16) {
        uint16_t h;
        memcpy(&h, (const char *)x->data + 2 * i, 2);
        return sdc_f16_to_f32(h);
    }
    memcpy(&v, (const char *)x->data + 4 * i, 4);
    return v;
}

/* Mean and standard deviation of a tensor's elements. */
static void stats(const sdc_st_tensor *x, double *mean, double *sd, double *maxabs) {
    double s = 0, s2 = 0, m = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        double v = elem_f32(x, i);
        s += v;
        s2 += v * v;
        if (fabs(v) > m) m = fabs(v);
    }
    *mean = s / (double)x->numel;
    *sd = sqrt(fmax(s2 / (double)x->numel - *mean * *mean, 0));
    *maxabs = m;
}

static void test_mkmodel_tiny(void) {
    sdc_error err;
    char a[SDC_SHA256_HEX], b[SDC_SHA256_HEX], c3[SDC_SHA256_HEX];
    char p1[256], p2[256], p3[256];
    snprintf(p1, sizeof p1, "%s", tmpfile_named("t1"));
    snprintf(p2, sizeof p2, "%s", tmpfile_named("t3"));
    snprintf(p3, sizeof p3, "%s", tmpfile_named("s2"));

    CHECK(make_tiny(p1, SDC_F16, 1, 1, &err) == SDC_OK, "mkmodel tiny f16 (1 thread): %s", err.msg);
    CHECK(make_tiny(p2, SDC_F16, 1, 3, &err) == SDC_OK, "mkmodel tiny f16 (3 threads): %s", err.msg);
    CHECK(make_tiny(p3, SDC_F16, 2, 2, &err) == SDC_OK, "mkmodel tiny f16 seed 2: %s", err.msg);
    digest_of(p1, a);
    digest_of(p2, b);
    digest_of(p3, c3);
    CHECK(!strcmp(a, b), "1 and 3 threads give different files (%s vs %s)", a, b);
    CHECK(strcmp(a, c3) != 0, "seeds 1 and 2 give the same file");
    printf("  tiny f16 seed 1: sha256 %.16s... (1 and 3 threads), seed 2: %.16s...\n", a, c3);
    CHECK(!file_exists(strcat(strcpy(tmp_path, p1), ".tmp")), "a .tmp file was left behind");

    sdc_sd15_config cfg = sdc_sd15_config_tiny();
    sdc_sd15_layout l;
    sdc_st_file *f = NULL;
    CHECK(sdc_sd15_layout_build(&cfg, &l, &err) == SDC_OK, "layout: %s", err.msg);
    sdc_status st = sdc_st_open(p1, &f, &err);
    CHECK(st == SDC_OK, "open generated tiny: %s", err.msg);
    if (st == SDC_OK) {
        check_file_matches_layout(f, &l, SDC_F16, "mkmodel tiny f16");
        const char *note = sdc_st_meta_find(f, "sdc.note");
        const char *fmt = sdc_st_meta_find(f, "format");
        CHECK(fmt && !strcmp(fmt, "pt"), "metadata format is not pt");
        CHECK(note && strstr(note, "random weights"), "metadata has no random-weights note");

        /* every value equals the generator's, rounded to f16 */
        size_t nbad = 0, nvals = 0, cap = 0;
        float *v = NULL;
        for (size_t i = 0; i < l.n; i++) {
            const sdc_sd15_tensor *t = &l.t[i];
            const sdc_st_tensor *x = sdc_st_find(f, t->name);
            if (!x || t->init == SDC_INIT_POSITION_IDS) continue;
            size_t n = (size_t)x->numel;
            if (n > cap) {
                free(v);
                v = malloc(n * sizeof *v);
                cap = v ? n : 0;
            }
            if (!v || sdc_mkmodel_values(&cfg, t, 1, 1, 0, x->numel, v, &err) != SDC_OK) {
                nbad++;
                continue;
            }
            const uint16_t *h = x->data;
            for (size_t j = 0; j < n; j++, nvals++) {
                uint16_t hj;
                memcpy(&hj, &h[j], 2);
                nbad += hj != sdc_f32_to_f16(v[j]);
            }
        }
        free(v);
        CHECK(nbad == 0 && nvals > 17000000, "%zu of %zu values differ from sdc_mkmodel_values",
              nbad, nvals);
        printf("  mkmodel tiny f16: %zu values checked against the generator, %zu differ\n", nvals, nbad);

        /* initialisation statistics */
        double mean, sd, mx;
        const sdc_st_tensor *x = sdc_st_find(f, SDC_SD15_TEXT_MODEL_PREFIX "encoder.layers.0.mlp.fc1.weight");
        stats(x, &mean, &sd, &mx);
        double bound = 1.0 / 8.0; /* fan_in 64 */
        printf("  fc1.weight U(+-%.4f): mean %.5f sd %.5f max %.5f (uniform sd %.5f)\n", bound, mean,
               sd, mx, bound / sqrt(3.0));
        CHECK(mx <= bound * 1.001 && mx > 0.99 * bound, "fc1 max |w| %.5f vs bound %.5f", mx, bound);
        CHECK(fabs(sd - bound / sqrt(3.0)) < 0.02 * bound, "fc1 sd %.5f", sd);
        x = sdc_st_find(f, SDC_SD15_TEXT_MODEL_PREFIX "embeddings.token_embedding.weight");
        stats(x, &mean, &sd, &mx);
        printf("  token_embedding N(0, 0.02^2): mean %.6f sd %.6f\n", mean, sd);
        CHECK(fabs(mean) < 1e-4 && fabs(sd - 0.02) < 2e-4, "token embedding mean %.6f sd %.6f", mean, sd);
        x = sdc_st_find(f, "model.diffusion_model.input_blocks.7.1.norm.weight"); /* 128 values */
        stats(x, &mean, &sd, &mx);
        printf("  jittered GroupNorm weight 1+0.2N: mean %.4f sd %.4f\n", mean, sd);
        CHECK(fabs(mean - 1) < 0.07 && fabs(sd - 0.2) < 0.05, "norm weight mean %.4f sd %.4f", mean, sd);
        x = sdc_st_find(f, "model.diffusion_model.out.2.weight"); /* fan_in 32*9 */
        stats(x, &mean, &sd, &mx);
        CHECK(mx <= 1.0 / sqrt(288.0) * 1.001 && mx > 0.9 / sqrt(288.0), "out.2 max %.5f", mx);
        sdc_st_close(f);
    }

    /* without jitter the norms are exactly 1 and 0; partial ranges match whole-tensor values */
    long k = sdc_sd15_find(&l, "first_stage_model.decoder.norm_out.weight");
    long e = sdc_sd15_find(&l, SDC_SD15_TEXT_MODEL_PREFIX "embeddings.token_embedding.weight");
    if (k >= 0 && e >= 0) {
        float w[32], big[140000], part[20];
        CHECK(sdc_mkmodel_values(&cfg, &l.t[k], 5, 0, 0, 32, w, &err) == SDC_OK, "%s", err.msg);
        int ones = 1;
        for (int i = 0; i < 32; i++) ones &= w[i] == 1.0f;
        CHECK(ones, "norm weights without jitter are not all 1");
        CHECK(sdc_mkmodel_values(&cfg, &l.t[e], 5, 0, 0, 140000, big, &err) == SDC_OK, "%s", err.msg);
        CHECK(sdc_mkmodel_values(&cfg, &l.t[e], 5, 0, 65531, 20, part, &err) == SDC_OK, "%s", err.msg);
        CHECK(!memcmp(part, big + 65531, sizeof part), "a range across a stream boundary differs");
        CHECK(sdc_mkmodel_values(&cfg, &l.t[e], 5, 0, 3162100, 100, part, &err) == SDC_E_INVALID_ARG,
              "a range past the end is accepted");
    }
    sdc_sd15_layout_free(&l);
    unlink(p1);
    unlink(p2);
    unlink(p3);
}

static void test_mkmodel_f32_buffers_and_failures(void) {
    sdc_error err;
    char p[256];
    snprintf(p, sizeof p, "%s", tmpfile_named("f32"));
    CHECK(make_tiny(p, SDC_F32, 0, 2, &err) == SDC_OK, "mkmodel tiny f32: %s", err.msg);
    sdc_st_file *f = NULL, *ref = NULL;
    if (sdc_st_open(p, &f, &err) == SDC_OK && sdc_st_open(TINY, &ref, &err) == SDC_OK) {
        size_t bad = 0;
        for (int s = 0; s < SDC_SD15_N_SCHEDULE; s++) {
            const sdc_st_tensor *x = sdc_st_find(f, sdc_sd15_schedule_names[s]);
            const sdc_st_tensor *y = sdc_st_find(ref, sdc_sd15_schedule_names[s]);
            bad += !x || !y || x->nbytes != y->nbytes || memcmp(x->data, y->data, x->nbytes);
        }
        CHECK(bad == 0, "%zu f32 DDPM buffers differ from the shared checkpoint's bytes", bad);
        const char *pid = SDC_SD15_TEXT_MODEL_PREFIX "embeddings.position_ids";
        const sdc_st_tensor *x = sdc_st_find(f, pid), *y = sdc_st_find(ref, pid);
        CHECK(x && y && x->nbytes == 616 && !memcmp(x->data, y->data, 616), "position_ids bytes differ");
    } else {
        CHECK(0, "open: %s", err.msg);
    }
    sdc_st_close(f);
    sdc_st_close(ref);
    unlink(p);

    /* refusals leave nothing behind */
    const char *nodir = "/tmp/sdc_no_such_dir_for_test/x.safetensors";
    CHECK(make_tiny(nodir, SDC_F16, 0, 1, &err) == SDC_E_IO && strstr(err.msg, nodir),
          "missing directory: '%s'", err.msg);
    CHECK(!file_exists(nodir), "a file appeared in a missing directory");
    CHECK(make_tiny("/tmp", SDC_F16, 0, 1, &err) == SDC_E_IO && strstr(err.msg, "directory"),
          "output is a directory: '%s'", err.msg);
    CHECK(make_tiny(p, SDC_I64, 0, 1, &err) == SDC_E_INVALID_ARG, "dtype i64 accepted");
    CHECK(make_tiny(p, SDC_F16, 0, 0, &err) == SDC_E_INVALID_ARG, "0 threads accepted");
    CHECK(!file_exists(p), "a refused run left %s", p);
}

int main(void) {
    test_tiny_matches_shared_checkpoint();
    test_full_counts();
    test_mkmodel_tiny();
    test_mkmodel_f32_buffers_and_failures();
    TEST_MAIN_END();
}
