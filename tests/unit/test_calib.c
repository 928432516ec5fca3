/* sdc_calib_run (src/deploy/calib.h) on the tiny checkpoint, read back with the project's own
 * readers (tar, npy, pickle_dict, json):
 *  - 2 prompts (the second with prompt editing [a dog:a cat:2] and its own negative), 4 steps,
 *    64x48: 16 UNet samples (2 prompts x 4 steps x cond/uncond), 5 text rows (cat, "", dog, cat
 *    edit, "blurry"), 2 VAE samples; NumpyObject and Numpy members pair by name and hold the same
 *    bits; shapes and names as the contract says;
 *  - each recorded input is what the pipeline fed: the time embedding equals
 *    sdc_unet_time_embedding at the manifest's timestep, the context equals the A1111 encoding of
 *    the prompt (its two prompt-editing texts as one batch, switching at step 3) and of the
 *    negative, bit for bit, cond and uncond rows of a step share the
 *    sample, the ids equal sdc_tokenize of the scheduled texts, the VAE latent equals sdc_txt2img's
 *    final latent / 0.18215 for the same seed;
 *  - manifest.json and the pulsar2 configs parse, with the sample counts and U16/NPU3/MinMax;
 *  - --max-samples 6: 3 UNet samples per prompt, both branches, distinct steps; 1: one of each;
 *  - no staging folder is left, and a missing output folder is an SDC_E_IO with nothing created. */
#define _GNU_SOURCE
#include "deploy/calib.h"
#include "golden.h"
#include "io/json.h"
#include "io/npy.h"
#include "io/pickle_dict.h"
#include "io/tar.h"
#include "prompt/conditioning.h"

#include <sys/stat.h>
#include <unistd.h>

#define TEMB SDC_TEMB_NAME

static sdc_model *model;
static char root[256];

typedef struct member {
    char name[64];
    sdc_pickle_dict d; /* NumpyObject members */
    sdc_npy a;         /* plain members */
} member;

/* Reads every member of a tar (NumpyObject when obj). Returns the count (at most cap). */
static int read_tar(const char *path, int obj, member *out, int cap) {
    sdc_tar t;
    sdc_error err = {0};
    if (sdc_tar_open(path, &t, &err) != SDC_OK) {
        CHECK(0, "%s", err.msg);
        return 0;
    }
    sdc_tar_member m;
    bool has;
    int n = 0;
    while (sdc_tar_next(&t, &m, &has, &err) == SDC_OK && has && n < cap) {
        member *x = &out[n++];
        memset(x, 0, sizeof *x);
        snprintf(x->name, sizeof x->name, "%s", m.name);
        sdc_status s = obj ? sdc_npy_object_parse(m.data, m.size, m.name, &x->d, &err)
                           : sdc_npy_parse_f32(m.data, m.size, m.name, &x->a, &err);
        CHECK(s == SDC_OK, "%s: %s", path, err.msg);
    }
    CHECK(err.code == SDC_OK, "%s: %s", path, err.msg);
    sdc_tar_close(&t);
    return n;
}

static void free_members(member *m, int n) {
    for (int i = 0; i < n; i++) {
        sdc_pickle_dict_free(&m[i].d);
        sdc_npy_free(&m[i].a);
    }
}

static int same_f(const float *a, const float *b, int64_t n) { return n > 0 && !memcmp(a, b, (size_t)n * sizeof *a); }

static double max_diff(const float *a, const float *b, int64_t n) {
    double d = 0;
    for (int64_t i = 0; i < n; i++) d = fmax(d, fabs((double)a[i] - (double)b[i]));
    return d;
}

static sdc_calib_params base_params(const char *dir, const sdc_calib_prompt *pr, int n) {
    sdc_calib_params p = {0};
    p.dir = dir;
    p.prompts = pr;
    p.n_prompts = n;
    p.gen = sdc_txt2img_params_default();
    p.gen.width = 64;
    p.gen.height = 48;
    p.gen.steps = 4;
    p.gen.seed = 11;
    p.gen.negative = "";
    return p;
}

static const sdc_calib_prompt prompts[2] = {{"a photo of a cat", NULL}, {"[a dog:a cat:2], (red:1.3)", "blurry"}};

static void check_full_run(void) {
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/all", root);
    mkdir(dir, 0777);
    sdc_calib_params p = base_params(dir, prompts, 2);
    sdc_calib_summary sum;
    sdc_error err = {0};
    sdc_status s = sdc_calib_run(model, &p, &sum, &err);
    CHECK(s == SDC_OK, "calib: %s", err.msg);
    if (s != SDC_OK) return;
    CHECK(sum.unet.recorded == 16 && sum.unet.written == 16, "unet %d/%d", sum.unet.recorded, sum.unet.written);
    CHECK(sum.text.recorded == 5 && sum.text.written == 5, "text %d/%d", sum.text.recorded, sum.text.written);
    CHECK(sum.vae.recorded == 2 && sum.vae.written == 2, "vae %d/%d", sum.vae.recorded, sum.vae.written);
    snprintf(path, sizeof path, "%s/.sdc-calib.tmp", dir);
    CHECK(access(path, F_OK) != 0, "the staging folder is left");

    /* the manifest: timesteps, counts, names */
    sdc_json *man = NULL;
    snprintf(path, sizeof path, "%s/manifest.json", dir);
    CHECK(sdc_json_load_file(path, &man, &err) == SDC_OK, "manifest: %s", err.msg);
    double ts[4] = {0};
    size_t nts = 0;
    int64_t v = 0;
    CHECK(sdc_json_doubles(sdc_json_path(man, "scheduler", "timesteps", NULL), ts, 4, &nts) && nts == 4, "timesteps");
    CHECK(sdc_json_int(sdc_json_path(man, "calibration", "unet", "samples", NULL), &v) && v == 16, "manifest unet samples");
    CHECK(sdc_json_int(sdc_json_path(man, "tokenizer", "bos_id", NULL), &v) && v == 49406, "bos");
    CHECK(sdc_json_int(sdc_json_path(man, "tokenizer", "pad_id", NULL), &v) && v == 49407, "pad");
    const char *tn = sdc_json_string(sdc_json_get(sdc_json_at(sdc_json_path(man, "models", "unet", "inputs", NULL), 2), "name"));
    CHECK(tn && !strcmp(tn, TEMB), "unet input 2 is %s", tn ? tn : "(none)");
    double vs = 0;
    CHECK(sdc_json_number(sdc_json_path(man, "latent", "vae_scale_factor", NULL), &vs) && vs == 0.18215, "0.18215");
    sdc_json_free(man);
    for (int k = 0; k < 6; k++) { /* the pulsar2 configs */
        static const char *cfg[6] = {"text_encoder", "unet", "vae_decoder", "text_encoder_numpy", "unet_numpy", "vae_decoder_numpy"};
        static const int want[3] = {5, 16, 2};
        sdc_json *c = NULL;
        snprintf(path, sizeof path, "%s/pulsar2/%s.json", dir, cfg[k]);
        CHECK(sdc_json_load_file(path, &c, &err) == SDC_OK, "%s: %s", cfg[k], err.msg);
        const sdc_json *q = sdc_json_get(c, "quant"), *ic = sdc_json_get(q, "input_configs");
        CHECK(sdc_json_len(ic) == (k == 4 ? 3u : 1u), "%s: %zu input configs", cfg[k], sdc_json_len(ic));
        CHECK(sdc_json_int(sdc_json_get(sdc_json_at(ic, 0), "calibration_size"), &v) && v == want[k % 3], "%s size", cfg[k]);
        const char *dt = sdc_json_string(sdc_json_get(sdc_json_at(sdc_json_get(q, "layer_configs"), 0), "data_type"));
        const char *npu = sdc_json_string(sdc_json_get(c, "npu_mode"));
        const char *meth = sdc_json_string(sdc_json_get(q, "calibration_method"));
        CHECK(dt && !strcmp(dt, "U16") && npu && !strcmp(npu, "NPU3") && meth && !strcmp(meth, "MinMax"), "%s fields", cfg[k]);
        sdc_json_free(c);
    }

    /* the UNet set */
    static member obj[16], xs[16], cs[16], es[16];
    snprintf(path, sizeof path, "%s/calib/unet_numpyobject.tar", dir);
    int n = read_tar(path, 1, obj, 16);
    snprintf(path, sizeof path, "%s/calib/unet/sample.tar", dir);
    int n1 = read_tar(path, 0, xs, 16);
    snprintf(path, sizeof path, "%s/calib/unet/encoder_hidden_states.tar", dir);
    int n2 = read_tar(path, 0, cs, 16);
    snprintf(path, sizeof path, "%s/calib/unet/time_embedding.tar", dir);
    int n3 = read_tar(path, 0, es, 16);
    CHECK(n == 16 && n1 == 16 && n2 == 16 && n3 == 16, "unet members %d %d %d %d", n, n1, n2, n3);
    CHECK(!strcmp(obj[0].name, "p000_s000_cond.npy") && !strcmp(obj[15].name, "p001_s003_uncond.npy"), "names %s %s",
          obj[0].name, obj[15].name);
    float *cond0 = NULL, *uncond0 = NULL, *cond1 = NULL, *uncond1 = NULL;
    int T = 0;
    char eb[256];
    sdc_tokenizer *tok = NULL;
    CHECK(sdc_tokenizer_new(&tok, eb, sizeof eb) == SDC_OK, "tokenizer");
    sdc_encode_a1111(model, tok, "a photo of a cat", 1, &cond0, &T, eb, sizeof eb);
    sdc_encode_a1111(model, tok, "", 1, &uncond0, &T, eb, sizeof eb);
    /* prompt 1's schedule texts are encoded as one batch (shared emphasis means): rows 0 (steps 0..2), 1 (step 3) */
    const char *sched[2] = {"a dog, (red:1.3)", "a cat, (red:1.3)"};
    int K = 0;
    CHECK(sdc_a1111_encode_texts(model, tok, sched, 2, NULL, &cond1, &K, &err) == SDC_OK && K == 1, "encode: %s", err.msg);
    sdc_encode_a1111(model, tok, "blurry", 1, &uncond1, &T, eb, sizeof eb);
    double ctx_err = 0, temb_err = 0;
    int paired = 1, shapes = 1, shared = 1;
    for (int i = 0; i < n && i < n1 && i < n2 && i < n3; i++) {
        const sdc_pickle_array *x = sdc_pickle_dict_get(&obj[i].d, "sample"),
                               *c = sdc_pickle_dict_get(&obj[i].d, "encoder_hidden_states"),
                               *e = sdc_pickle_dict_get(&obj[i].d, TEMB);
        if (!x || !c || !e || obj[i].d.n != 3) {
            CHECK(0, "%s: dict entries", obj[i].name);
            continue;
        }
        shapes &= x->ndim == 4 && x->shape[0] == 1 && x->shape[1] == 4 && x->shape[2] == 6 && x->shape[3] == 8 &&
                  c->ndim == 3 && c->shape[1] == 77 && c->shape[2] == 64 && e->ndim == 2 && e->shape[1] == 128;
        paired &= !strcmp(obj[i].name, xs[i].name) && !strcmp(obj[i].name, cs[i].name) && !strcmp(obj[i].name, es[i].name) &&
                  same_f(x->data, xs[i].a.data, x->numel) && same_f(c->data, cs[i].a.data, c->numel) &&
                  same_f(e->data, es[i].a.data, e->numel);
        int prompt = i / 8, step = (i % 8) / 2, uncond = i % 2;
        const float *want = prompt == 0 ? (uncond ? uncond0 : cond0) : uncond ? uncond1 : cond1 ? cond1 + (step == 3) * 77 * 64 : NULL;
        if (want) ctx_err = fmax(ctx_err, max_diff(c->data, want, c->numel));
        else CHECK(0, "no reference conditioning");
        if (uncond) shared &= same_f(x->data, sdc_pickle_dict_get(&obj[i - 1].d, "sample")->data, x->numel);
        float t = (float)ts[step], temb[128];
        CHECK(sdc_unet_time_embedding(model, &t, 1, temb, eb, sizeof eb) == SDC_OK, "temb: %s", eb);
        temb_err = fmax(temb_err, max_diff(e->data, temb, 128));
    }
    CHECK(shapes, "UNet sample shapes");
    CHECK(paired, "NumpyObject and Numpy members differ");
    CHECK(shared, "cond and uncond rows of a step have different samples");
    CHECK(n >= 8 && !same_f(sdc_pickle_dict_get(&obj[0].d, "sample")->data, sdc_pickle_dict_get(&obj[2].d, "sample")->data, 192),
          "steps 0 and 1 have the same sample");
    CHECK_CLOSE(ctx_err, 0.0, "context vs sdc_encode_a1111 (bitwise)");
    CHECK_CLOSE(temb_err, 1e-6, "time embedding vs sdc_unet_time_embedding");
    free(cond0), free(uncond0), free(cond1), free(uncond1);
    free_members(obj, n), free_members(xs, n1), free_members(cs, n2), free_members(es, n3);

    /* the text encoder set (int64 ids) */
    static member tp[8];
    snprintf(path, sizeof path, "%s/calib/text_encoder/input_ids.tar", dir);
    int nt = read_tar(path, 0, tp, 8);
    static const char *texts[5] = {"a photo of a cat", "", "a dog, red", "a cat, red", "blurry"};
    static const char *names[5] = {"p000_cond_00.npy", "p000_uncond_00.npy", "p001_cond_00.npy", "p001_cond_01.npy",
                                   "p001_uncond_00.npy"};
    CHECK(nt == 5, "%d text members", nt);
    for (int i = 0; i < nt && i < 5; i++) {
        int32_t ids[77];
        sdc_tokenize(tok, texts[i], ids, eb, sizeof eb);
        int same = tp[i].a.numel == 77 && tp[i].a.ndim == 2 && !strcmp(tp[i].name, names[i]);
        for (int k = 0; same && k < 77; k++) same = tp[i].a.data[k] == (float)ids[k];
        CHECK(same, "text member %d (%s) is not the ids of '%s'", i, tp[i].name, texts[i]);
    }
    /* NumpyObject ids: int64 arrays, which src/io/pickle_dict.h does not read (float32 only), so
     * the pickle is checked for the key and the exact little-endian bytes of each row */
    sdc_tar t;
    snprintf(path, sizeof path, "%s/calib/text_encoder_numpyobject.tar", dir);
    int no = 0;
    if (sdc_tar_open(path, &t, &err) == SDC_OK) {
        sdc_tar_member m;
        bool has;
        while (sdc_tar_next(&t, &m, &has, &err) == SDC_OK && has && no < nt) {
            int64_t raw[77];
            for (int k = 0; k < 77; k++) raw[k] = (int64_t)tp[no].a.data[k];
            CHECK(!strcmp(m.name, tp[no].name) && sdc_npy_is_object(m.data, m.size) &&
                      memmem(m.data, m.size, "\x58\x09\x00\x00\x00input_ids", 14) &&
                      memmem(m.data, m.size, "\x42\x68\x02\x00\x00", 5) && memmem(m.data, m.size, raw, sizeof raw),
                  "text NumpyObject member %s", m.name);
            no++;
        }
        sdc_tar_close(&t);
    }
    CHECK(no == nt, "%d text NumpyObject members", no);
    free_members(tp, nt);
    sdc_tokenizer_free(tok);

    /* the VAE set: the final latents / 0.18215 */
    static member va[2];
    snprintf(path, sizeof path, "%s/calib/vae_decoder_numpyobject.tar", dir);
    int nv = read_tar(path, 1, va, 2);
    CHECK(nv == 2, "%d vae members", nv);
    for (int i = 0; i < nv; i++) {
        sdc_txt2img_params g = p.gen;
        g.prompt = prompts[i].prompt;
        if (prompts[i].negative) g.negative = prompts[i].negative;
        g.seed = p.gen.seed + (uint64_t)i;
        sdc_image img;
        if (sdc_txt2img(model, &g, &img, eb, sizeof eb) != SDC_OK) {
            CHECK(0, "txt2img: %s", eb);
            continue;
        }
        float z[192];
        for (int k = 0; k < 192; k++) z[k] = img.latent[k] / 0.18215f;
        const sdc_pickle_array *l = sdc_pickle_dict_get(&va[i].d, "latent");
        CHECK(l && l->numel == 192 && same_f(l->data, z, 192), "vae member %d is not the final latent / 0.18215", i);
        sdc_image_free(&img);
    }
    free_members(va, nv);
}

/* The names of a --max-samples run's UNet members. */
static int selected(int max, char names[][64], int cap, sdc_calib_summary *sum) {
    char dir[300], path[400];
    snprintf(dir, sizeof dir, "%s/max%d", root, max);
    mkdir(dir, 0777);
    sdc_calib_params p = base_params(dir, prompts, 2);
    p.max_samples = max;
    sdc_error err = {0};
    if (sdc_calib_run(model, &p, sum, &err) != SDC_OK) {
        CHECK(0, "max %d: %s", max, err.msg);
        return 0;
    }
    snprintf(path, sizeof path, "%s/calib/unet/sample.tar", dir);
    static member m[16];
    int n = read_tar(path, 0, m, cap);
    for (int i = 0; i < n; i++) snprintf(names[i], 64, "%.63s", m[i].name);
    free_members(m, n);
    return n;
}

static void check_max_samples(void) {
    char names[16][64];
    sdc_calib_summary sum;
    int n = selected(6, names, 16, &sum);
    CHECK(n == 6 && sum.unet.written == 6 && sum.unet.recorded == 16, "max 6: %d written", n);
    CHECK(sum.text.written == 5 && sum.vae.written == 2, "max 6: text %d, vae %d", sum.text.written, sum.vae.written);
    int per_prompt[2] = {0}, cond = 0, uncond = 0, steps[2][4] = {{0}};
    for (int i = 0; i < n; i++) {
        int p = -1, s = -1;
        char br[16] = "";
        sscanf(names[i], "p%3d_s%3d_%15[a-z]", &p, &s, br);
        if (p < 0 || p > 1 || s < 0 || s > 3) continue;
        per_prompt[p]++;
        steps[p][s]++;
        cond += !strcmp(br, "cond");
        uncond += !strcmp(br, "uncond");
        printf("  max 6: %s\n", names[i]);
    }
    CHECK(per_prompt[0] == 3 && per_prompt[1] == 3, "per prompt %d %d", per_prompt[0], per_prompt[1]);
    CHECK(cond >= 2 && uncond >= 2, "branches %d cond, %d uncond", cond, uncond);
    for (int p = 0; p < 2; p++) {
        int distinct = 0;
        for (int s = 0; s < 4; s++) distinct += steps[p][s] > 0;
        CHECK(distinct == 3, "prompt %d: %d distinct steps of 3 picks", p, distinct);
    }
    n = selected(1, names, 16, &sum);
    CHECK(n == 1 && sum.text.written == 1 && sum.vae.written == 1, "max 1: %d unet, %d text, %d vae", n,
          sum.text.written, sum.vae.written);
}

static void check_missing_dir(void) {
    char dir[300];
    snprintf(dir, sizeof dir, "%s/absent/deeper", root);
    sdc_calib_params p = base_params(dir, prompts, 1);
    sdc_calib_summary sum;
    sdc_error err = {0};
    sdc_status s = sdc_calib_run(model, &p, &sum, &err);
    CHECK(s == SDC_E_IO && strstr(err.msg, "cannot create"), "missing dir: %d %s", (int)s, err.msg);
    snprintf(dir, sizeof dir, "%s/absent", root);
    CHECK(access(dir, F_OK) != 0, "a failed run created %s", dir);
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/sdc_test_calib_XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    model = golden_load_tiny();
    check_full_run();
    check_max_samples();
    check_missing_dir();
    sdc_model_free(model);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", root);
    TEST_MAIN_END();
}
