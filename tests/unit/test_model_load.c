/* Checkpoint loading: hyperparameters from shapes, f16/bf16 weights, missing tensors.
 *  - the tiny checkpoint loads with the configs read from its shapes;
 *  - the same weights rewritten as F16 and BF16 (with the safetensors writer) give the UNet,
 *    text encoder and VAE outputs of the F32 file within the rounding of those dtypes;
 *  - a checkpoint without a tensor the loader needs is refused by name; one without a tensor
 *    only the graph needs fails at that stage, naming the tensor. */
#include "golden.h"
#include "sdc.h"

#include <unistd.h>

/* Copies `src` into `dst` converting float tensors to `dt` and leaving out `skip` (may be NULL). */
static void rewrite(const char *src, const char *dst, sdc_dtype dt, const char *skip) {
    sdc_error e = {0};
    sdc_st_file *f = golden_open(src);
    sdc_st_writer *w;
    if (sdc_st_writer_new(dst, &w, &e)) goto fail;
    for (size_t i = 0; i < sdc_st_count(f); i++) {
        const sdc_st_tensor *t = sdc_st_get(f, i);
        if (skip && !strcmp(t->name, skip)) continue;
        sdc_dtype out = t->dtype == SDC_F32 ? dt : t->dtype;
        if (sdc_st_writer_declare(w, t->name, out, t->ndim, t->shape, &e)) goto fail;
    }
    if (sdc_st_writer_begin_data(w, &e)) goto fail;
    for (size_t i = 0; i < sdc_st_count(f); i++) {
        const sdc_st_tensor *t = sdc_st_get(f, i);
        if (skip && !strcmp(t->name, skip)) continue;
        if (t->dtype != SDC_F32 || dt == SDC_F32) {
            if (sdc_st_writer_write(w, t->data, t->nbytes, &e)) goto fail;
            continue;
        }
        float *v = malloc((size_t)t->numel * 4 + 4);
        uint16_t *h = malloc((size_t)t->numel * 2 + 2);
        sdc_convert_to_f32(v, t->data, SDC_F32, (size_t)t->numel);
        for (int64_t k = 0; k < t->numel; k++) h[k] = dt == SDC_F16 ? sdc_f32_to_f16(v[k]) : sdc_f32_to_bf16(v[k]);
        sdc_status s = sdc_st_writer_write(w, h, (size_t)t->numel * 2, &e);
        free(v);
        free(h);
        if (s) goto fail;
    }
    if (sdc_st_writer_finish(w, &e)) goto fail;
    sdc_st_writer_free(w);
    sdc_st_close(f);
    return;
fail:
    fprintf(stderr, "rewrite %s: %s\n", dst, e.msg);
    exit(1);
}

static sdc_model *load(const char *path, char *err, size_t errlen) {
    sdc_model_params mp = sdc_model_params_default();
    mp.path = path;
    mp.n_threads = 2;
    sdc_model *m = NULL;
    sdc_model_load(&mp, &m, err, errlen);
    return m;
}

/* eps, text states and image of one model on the golden inputs */
typedef struct outputs {
    float eps[2 * 4 * 8 * 8], te[77 * 64], img[3 * 64 * 64];
} outputs;

static int run_all(const sdc_model *m, const sdc_st_file *gold, outputs *o, char *err, size_t errlen) {
    float *x = golden_f32(gold, "unet.64x64.x", NULL), *ctx = golden_f32(gold, "unet.context", NULL);
    float *ids_f = golden_f32(gold, "te.0.ids", NULL), *z = golden_f32(gold, "vae.64x64.latent", NULL);
    int32_t ids[77];
    for (int i = 0; i < 77; i++) ids[i] = (int32_t)ids_f[i];
    for (int i = 0; i < 256; i++) z[i] /= 0.18215f;
    float t[2] = {500, 500};
    int ok = sdc_unet_eval(m, x, 2, 8, 8, t, ctx, 77, o->eps, err, errlen) == SDC_OK &&
             sdc_encode_ids(m, ids, 1, 1, o->te, err, errlen) == SDC_OK &&
             sdc_vae_decode(m, z, 1, 8, 8, o->img, err, errlen) == SDC_OK;
    free(x);
    free(ctx);
    free(ids_f);
    free(z);
    return ok;
}

int main(void) {
    char err[512], dir[] = "/tmp/sdc_test_load_XXXXXX", path[256];
    if (!mkdtemp(dir)) return 1;
    sdc_st_file *gold = golden_open(TINY_DIR "/golden.safetensors");

    sdc_model *m = load(TINY_CKPT, err, sizeof err);
    CHECK(m != NULL, "tiny: %s", err);
    sdc_model_desc d;
    sdc_model_describe(m, &d);
    CHECK(d.has_text_encoder && d.has_unet && d.has_vae, "components");
    CHECK(d.text_width == 64 && d.text_layers == 2 && d.unet_model_ch == 32 && d.unet_time_dim == 128 &&
              d.unet_ctx_dim == 64 && d.latent_channels == 4,
          "configs from shapes: %d %d %d %d %d", d.text_width, d.text_layers, d.unet_model_ch,
          d.unet_time_dim, d.unet_ctx_dim);
    static outputs ref, got;
    CHECK(run_all(m, gold, &ref, err, sizeof err), "f32 run: %s", err);
    sdc_model_free(m);

    const sdc_dtype dts[2] = {SDC_F16, SDC_BF16};
    const double tol[2] = {5e-3, 4e-2}; /* weight rounding: 2^-11 and 2^-8 relative */
    for (int k = 0; k < 2; k++) {
        snprintf(path, sizeof path, "%s/tiny_%s.safetensors", dir, sdc_dtype_table[dts[k]].name);
        rewrite(TINY_CKPT, path, dts[k], NULL);
        m = load(path, err, sizeof err);
        CHECK(m != NULL, "%s: %s", path, err);
        if (!m) continue;
        CHECK(run_all(m, gold, &got, err, sizeof err), "%s run: %s", path, err);
        char what[64];
        snprintf(what, sizeof what, "%s weights: UNet eps vs f32", sdc_dtype_table[dts[k]].name);
        CHECK_CLOSE(golden_err(got.eps, ref.eps, 2 * 4 * 8 * 8), tol[k], what);
        snprintf(what, sizeof what, "%s weights: text states vs f32", sdc_dtype_table[dts[k]].name);
        CHECK_CLOSE(golden_err(got.te, ref.te, 77 * 64), tol[k], what);
        snprintf(what, sizeof what, "%s weights: VAE image vs f32", sdc_dtype_table[dts[k]].name);
        CHECK_CLOSE(golden_err(got.img, ref.img, 3 * 64 * 64), tol[k], what);
        sdc_model_free(m);
        unlink(path);
    }

    /* a tensor the loader needs */
    snprintf(path, sizeof path, "%s/no_time_embed.safetensors", dir);
    rewrite(TINY_CKPT, path, SDC_F32, "model.diffusion_model.time_embed.0.weight");
    m = load(path, err, sizeof err);
    CHECK(!m && strstr(err, "model.diffusion_model.time_embed.0.weight") && strstr(err, path) && !strchr(err, '\n'),
          "missing time_embed refused by name: %s", err);
    sdc_model_free(m);
    unlink(path);

    /* a tensor only the UNet graph needs: loading works, the UNet stage names it */
    snprintf(path, sizeof path, "%s/no_proj_in.safetensors", dir);
    rewrite(TINY_CKPT, path, SDC_F32, "model.diffusion_model.middle_block.1.proj_in.weight");
    m = load(path, err, sizeof err);
    CHECK(m != NULL, "load without a mid-block tensor: %s", err);
    if (m) {
        CHECK(!run_all(m, gold, &got, err, sizeof err) && strstr(err, "middle_block.1.proj_in.weight"),
              "UNet stage names the missing tensor: %s", err);
        sdc_model_free(m);
    }
    unlink(path);
    rmdir(dir);
    sdc_st_close(gold);
    TEST_MAIN_END();
}
