/* tests/unit/test_lora.c: LoRA merging (src/model/lora.h) on LoRA files written here, against
 * the tiny SD1.5 checkpoint of shared/testdata/tiny.
 *
 * Each merged weight is compared element-wise with W + weight * (alpha / rank) * up @ down
 * computed in double here: kohya linear, Linear LoRA on a 1x1 conv (proj_in), LoCon 3x3, PEFT
 * lora_A/lora_B with the te/unet split, an f16 checkpoint, two LoRAs adding up. Then the
 * report (every tensor applied; unmappable names listed), the refusals (SDXL shapes, SDXL's
 * lora_te2_, a file matching nothing) and webui's short hash. */
#include "test.h"

#include "core/sha256.h"
#include "model/lora.h"
#include "model/model.h"
#include "sdc.h"

#include <stdint.h>
#include <unistd.h>

#define TINY SDC_SHARED_DIR "/testdata/tiny/sd15-tiny-f32.safetensors"
#define U "model.diffusion_model."
#define T "cond_stage_model.transformer.text_model."

/* ---------------------------------------------------------------- writing test files */

typedef struct tt {
    const char *name;
    sdc_dtype dt;
    int ndim;
    int64_t shape[4];
    float *data; /* numel floats, converted to dt on write */
} tt;

static int64_t numel_of(const tt *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

static uint64_t rng_state = 12345;
static float frand(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng_state >> 40) / (double)(1ull << 24)) * 2.0f - 1.0f;
}

/* A tensor of random values (alpha: pass ndim 0 and set data[0]). */
static tt mk(const char *name, sdc_dtype dt, int ndim, int64_t a, int64_t b, int64_t c, int64_t d) {
    tt t = {name, dt, ndim, {a, b, c, d}, NULL};
    int64_t n = numel_of(&t);
    t.data = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) t.data[i] = 0.1f * frand();
    return t;
}

static tt mk_alpha(const char *name, float v) {
    tt t = {name, SDC_F32, 0, {0}, malloc(sizeof(float))};
    t.data[0] = v;
    return t;
}

static char tmp_dir[256];

static const char *tmp_path(const char *file) {
    static char buf[8][512];
    static int k;
    char *p = buf[k++ % 8];
    snprintf(p, 512, "%s/%s", tmp_dir, file);
    return p;
}

static int write_st(const char *path, tt *ts, int n, const char *mk_, const char *mv) {
    sdc_error e = {0};
    sdc_st_writer *w = NULL;
    if (sdc_st_writer_new(path, &w, &e)) goto fail;
    if (mk_ && sdc_st_writer_meta(w, mk_, mv, &e)) goto fail;
    for (int i = 0; i < n; i++)
        if (sdc_st_writer_declare(w, ts[i].name, ts[i].dt, ts[i].ndim, ts[i].shape, &e)) goto fail;
    if (sdc_st_writer_begin_data(w, &e)) goto fail;
    for (int i = 0; i < n; i++) {
        int64_t m = numel_of(&ts[i]);
        if (ts[i].dt == SDC_F32) {
            if (sdc_st_writer_write(w, ts[i].data, (size_t)m * 4, &e)) goto fail;
        } else {
            uint16_t *h = malloc((size_t)m * 2);
            for (int64_t j = 0; j < m; j++)
                h[j] = ts[i].dt == SDC_F16 ? sdc_f32_to_f16(ts[i].data[j]) : sdc_f32_to_bf16(ts[i].data[j]);
            sdc_status s = sdc_st_writer_write(w, h, (size_t)m * 2, &e);
            free(h);
            if (s) goto fail;
        }
    }
    if (sdc_st_writer_finish(w, &e)) goto fail;
    sdc_st_writer_free(w);
    return 0;
fail:
    fprintf(stderr, "writing %s: %s\n", path, e.msg);
    sdc_st_writer_free(w);
    return -1;
}

static void free_tts(tt *ts, int n) {
    for (int i = 0; i < n; i++) free(ts[i].data);
}

/* ---------------------------------------------------------------- checking merged weights */

static float *weight_f32(const sdc_st_tensor *t) {
    float *f = malloc((size_t)t->numel * sizeof(float));
    sdc_convert_to_f32(f, t->data, t->dtype, (size_t)t->numel);
    return f;
}

/* max |merged - (orig + f * up @ down)| over the weight, relative to max |delta|.
 * The LoRA values are what was written: the f32 values, or their f16/bf16 roundings. */
static double merge_error(const sdc_model *m, const char *wname, const float *orig, const tt *up, const tt *down,
                          double f, double *max_delta) {
    const sdc_st_tensor *t = sdc_overlay_find(m->overlay, wname);
    if (!t) return 1e30;
    float *got = weight_f32(t);
    int64_t out = up->shape[0], r = down->shape[0], K = numel_of(down) / r;
    double err = 0, md = 0;
    for (int64_t o = 0; o < out; o++)
        for (int64_t k = 0; k < K; k++) {
            double d = 0;
            for (int64_t j = 0; j < r; j++) {
                float u = up->data[o * r + j], w = down->data[j * K + k];
                if (up->dt == SDC_F16) u = sdc_f16_to_f32(sdc_f32_to_f16(u));
                if (down->dt == SDC_F16) w = sdc_f16_to_f32(sdc_f32_to_f16(w));
                d += (double)u * w;
            }
            d *= f;
            if (fabs(d) > md) md = fabs(d);
            double e = fabs((double)got[o * K + k] - ((double)orig[o * K + k] + d));
            if (e > err) err = e;
        }
    free(got);
    if (max_delta) *max_delta = md;
    return md > 0 ? err / md : err;
}

static sdc_model *load_tiny(void) {
    sdc_model_params p = sdc_model_params_default();
    p.path = TINY;
    p.n_threads = 1;
    sdc_model *m = NULL;
    char eb[512];
    if (sdc_model_load(&p, &m, eb, sizeof eb) != SDC_OK) fprintf(stderr, "load: %s\n", eb);
    return m;
}

static float *orig_of(const sdc_model *m, const char *name) {
    const sdc_st_tensor *t = sdc_st_find(m->st, name);
    return t ? weight_f32(t) : NULL;
}

/* ---------------------------------------------------------------- tests */

static void test_names(const sdc_model *m) {
    static const char *const cases[][2] = {
        {"lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q", U "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"},
        {"lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q", U "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight"},
        {"lora_unet_down_blocks_1_resnets_0_conv1", U "input_blocks.4.0.in_layers.2.weight"},
        {"lora_unet_down_blocks_1_resnets_0_conv_shortcut", U "input_blocks.4.0.skip_connection.weight"},
        {"lora_unet_mid_block_resnets_1_time_emb_proj", U "middle_block.2.emb_layers.1.weight"},
        {"lora_unet_mid_block_attentions_0_transformer_blocks_0_ff_net_0_proj", U "middle_block.1.transformer_blocks.0.ff.net.0.proj.weight"},
        {"lora_unet_up_blocks_1_attentions_2_proj_out", U "output_blocks.5.1.proj_out.weight"},
        {"lora_unet_up_blocks_3_resnets_2_conv2", U "output_blocks.11.0.out_layers.3.weight"},
        {"lora_unet_down_blocks_0_downsamplers_0_conv", U "input_blocks.3.0.op.weight"},
        {"lora_unet_up_blocks_0_upsamplers_0_conv", U "output_blocks.2.1.conv.weight"},
        {"lora_unet_up_blocks_1_upsamplers_0_conv", U "output_blocks.5.2.conv.weight"},
        {"lora_unet_conv_in", U "input_blocks.0.0.weight"},
        {"lora_unet_conv_out", U "out.2.weight"},
        {"lora_unet_time_embedding_linear_2", U "time_embed.2.weight"},
        {"lora_unet_down_blocks_2_attentions_1_transformer_blocks_0_attn1_to_out_0", U "input_blocks.8.1.transformer_blocks.0.attn1.to_out.0.weight"},
        {"lora_te_text_model_encoder_layers_1_self_attn_q_proj", T "encoder.layers.1.self_attn.q_proj.weight"},
        {"lora_te1_text_model_encoder_layers_0_mlp_fc1", T "encoder.layers.0.mlp.fc1.weight"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char got[256] = "";
        int ok = sdc_lora_map_name(m->st, cases[i][0], got, sizeof got);
        CHECK(ok && !strcmp(got, cases[i][1]), "%s -> '%s', expected %s", cases[i][0], got, cases[i][1]);
    }
    static const char *const none[] = {
        "lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q", /* SDXL: depth 2 */
        "lora_unet_label_emb_0_0",                                    /* SDXL */
        "lora_te2_text_model_encoder_layers_0_self_attn_q_proj",      /* SDXL's second encoder */
        "lora_unet_down_blocks_0_attentions_0_norm",                  /* a GroupNorm: no LoRA */
        "lora_vae_decoder_conv_in",
    };
    for (size_t i = 0; i < sizeof none / sizeof none[0]; i++) {
        char got[256] = "";
        CHECK(!sdc_lora_map_name(m->st, none[i], got, sizeof got), "%s should map to nothing, got %s", none[i], got);
    }
}

/* kohya linear (alpha), Linear LoRA on the 1x1 proj_in, LoCon 3x3; then the same file again. */
static void test_kohya(void) {
    sdc_model *m = load_tiny();
    if (!m) return;
    const char *wq = U "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight";  /* [32, 32] */
    const char *wp = U "input_blocks.1.1.proj_in.weight";                          /* [32, 32, 1, 1] */
    const char *wc = U "input_blocks.4.0.in_layers.2.weight";                      /* [64, 32, 3, 3] */
    const sdc_st_tensor *tc = sdc_st_find(m->st, wc);
    CHECK(tc && tc->ndim == 4 && tc->shape[0] == 64 && tc->shape[1] == 32 && tc->shape[2] == 3, "tiny conv shape");
    tt ts[] = {
        mk("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_down.weight", SDC_F32, 2, 4, 32, 0, 0),
        mk("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.lora_up.weight", SDC_F32, 2, 32, 4, 0, 0),
        mk_alpha("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q.alpha", 2.0f),
        mk("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", SDC_F16, 2, 8, 32, 0, 0),
        mk("lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", SDC_F16, 2, 32, 8, 0, 0),
        mk_alpha("lora_unet_down_blocks_0_attentions_0_proj_in.alpha", 8.0f),
        mk("lora_unet_down_blocks_1_resnets_0_conv1.lora_down.weight", SDC_F32, 4, 3, 32, 3, 3),
        mk("lora_unet_down_blocks_1_resnets_0_conv1.lora_up.weight", SDC_F32, 4, 64, 3, 1, 1),
        mk_alpha("lora_unet_down_blocks_1_resnets_0_conv1.alpha", 1.0f),
    };
    int n = sizeof ts / sizeof ts[0];
    const char *path = tmp_path("kohya.safetensors");
    CHECK(write_st(path, ts, n, NULL, NULL) == 0, "write %s", path);
    float *oq = orig_of(m, wq), *op = orig_of(m, wp), *oc = orig_of(m, wc);
    sdc_lora_report rep;
    char eb[512] = "";
    sdc_status s = sdc_model_apply_lora(m, path, "kohya", 0.7f, 0.7f, &rep, eb, sizeof eb);
    CHECK(s == SDC_OK, "apply: %s", eb);
    CHECK(rep.n_tensors == 9 && rep.n_applied == 9 && rep.n_weights == 3 && rep.n_skipped == 0,
          "report %d/%d tensors, %d weights, %d skipped", rep.n_applied, rep.n_tensors, rep.n_weights, rep.n_skipped);
    double md;
    CHECK_CLOSE(merge_error(m, wq, oq, &ts[1], &ts[0], 0.7 * 2.0 / 4, &md), 1e-5, "linear to_q, rank 4, alpha 2, w 0.7");
    CHECK(md > 1e-3, "the linear delta is not negligible (%g)", md);
    CHECK_CLOSE(merge_error(m, wp, op, &ts[4], &ts[3], 0.7 * 8.0 / 8, NULL), 1e-5, "f16 linear LoRA on 1x1 conv proj_in");
    CHECK_CLOSE(merge_error(m, wc, oc, &ts[7], &ts[6], 0.7 * 1.0 / 3, NULL), 1e-5, "LoCon 3x3 conv1, rank 3");
    /* the checkpoint mapping is untouched */
    float *still = orig_of(m, wq);
    CHECK(!memcmp(still, oq, 32 * 32 * sizeof(float)), "the mapped file is not modified");
    free(still);
    /* the graph's lookup sees the overlay */
    sdc_graph g;
    sdc_model_graph_init(&g, m, SDC_UNET_PREFIX);
    int v = sdc_g_weight(&g, "input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight", 0, NULL);
    CHECK(v >= 0 && g.nodes[v].data == sdc_overlay_find(m->overlay, wq)->data, "graph binds the merged weight");
    sdc_graph_free(&g);
    /* a second application adds up: twice the delta */
    CHECK(sdc_model_apply_lora(m, path, NULL, 0.7f, 0.7f, NULL, eb, sizeof eb) == SDC_OK, "second apply: %s", eb);
    CHECK_CLOSE(merge_error(m, wq, oq, &ts[1], &ts[0], 2 * 0.7 * 2.0 / 4, NULL), 1e-5, "the same LoRA twice adds up");
    CHECK(sdc_overlay_lora_count(m->overlay) == 2, "two LoRAs recorded");
    const sdc_lora_applied *a0 = sdc_overlay_lora_get(m->overlay, 0), *a1 = sdc_overlay_lora_get(m->overlay, 1);
    CHECK(a0 && a1 && !strcmp(a0->name, "kohya") && !strcmp(a1->name, "kohya"), "names: the given one, then the file's");
    CHECK(a0 && !strcmp(a0->hash, rep.hash) && strlen(rep.hash) == 12, "hash recorded: %s", rep.hash);
    /* a child overlay (txt2img's per-generation LoRA) reads through and leaves the parent alone */
    sdc_weight_overlay *child = NULL;
    sdc_error e = {0};
    CHECK(sdc_overlay_new(m->overlay, &child, &e) == SDC_OK, "child overlay");
    sdc_st_file *lf = NULL;
    CHECK(sdc_st_open(path, &lf, &e) == SDC_OK, "open lora");
    CHECK(sdc_lora_merge(child, m->st, lf, "x", 0.7f, 0.7f, NULL, NULL, &e) == SDC_OK, "merge into child: %s", e.msg);
    sdc_model view = *m;
    view.overlay = child;
    CHECK_CLOSE(merge_error(&view, wq, oq, &ts[1], &ts[0], 3 * 0.7 * 2.0 / 4, NULL), 1e-5, "child: three times");
    CHECK_CLOSE(merge_error(m, wq, oq, &ts[1], &ts[0], 2 * 0.7 * 2.0 / 4, NULL), 1e-5, "parent unchanged by the child");
    CHECK(sdc_overlay_lora_count(child) == 3 && !strcmp(sdc_overlay_lora_get(child, 2)->name, "x"), "child lists 3");
    sdc_st_close(lf);
    sdc_overlay_free(child);
    sdc_lora_report_free(&rep);
    free(oq);
    free(op);
    free(oc);
    free_tts(ts, n);
    sdc_model_free(m);
}

/* PEFT (diffusers) names, no alpha (scale 1), te/unet multipliers apart; text encoder output
 * changes with a TE LoRA. */
static void test_peft(void) {
    sdc_model *m = load_tiny();
    if (!m) return;
    const char *wk = U "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight"; /* [32, 64] */
    const char *wv = T "encoder.layers.0.self_attn.v_proj.weight";               /* [64, 64] */
    const char *wo = U "output_blocks.3.1.transformer_blocks.0.attn1.to_out.0.weight";
    tt ts[] = {
        mk("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight", SDC_F32, 2, 2, 64, 0, 0),
        mk("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight", SDC_F32, 2, 32, 2, 0, 0),
        mk("text_encoder.text_model.encoder.layers.0.self_attn.v_proj.lora_A.weight", SDC_F32, 2, 4, 64, 0, 0),
        mk("text_encoder.text_model.encoder.layers.0.self_attn.v_proj.lora_B.weight", SDC_F32, 2, 64, 4, 0, 0),
        mk("unet.up_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.down.weight", SDC_F32, 2, 2, 128, 0, 0),
        mk("unet.up_blocks.1.attentions.0.transformer_blocks.0.attn1.processor.to_out_lora.up.weight", SDC_F32, 2, 128, 2, 0, 0),
    };
    int n = sizeof ts / sizeof ts[0];
    const char *path = tmp_path("peft.safetensors");
    CHECK(write_st(path, ts, n, NULL, NULL) == 0, "write");
    float *ok_ = orig_of(m, wk), *ov = orig_of(m, wv), *oo = orig_of(m, wo);
    const sdc_st_tensor *to = sdc_st_find(m->st, wo);
    CHECK(to && to->shape[0] == 128 && to->shape[1] == 128, "tiny output_blocks.3 attention is 128 wide");
    /* text encoder output before and after */
    int32_t ids[77];
    for (int i = 0; i < 77; i++) ids[i] = i == 0 ? SDC_CLIP_BOS : i < 5 ? 320 + i : SDC_CLIP_EOS;
    float *before = malloc(77 * 64 * sizeof(float)), *after = malloc(77 * 64 * sizeof(float));
    char eb[512] = "";
    CHECK(sdc_encode_ids(m, ids, 1, 1, before, eb, sizeof eb) == SDC_OK, "encode: %s", eb);
    sdc_lora_report rep;
    CHECK(sdc_model_apply_lora(m, path, NULL, 0.5f, 2.0f, &rep, eb, sizeof eb) == SDC_OK, "apply peft: %s", eb);
    CHECK(rep.n_applied == 6 && rep.n_tensors == 6 && rep.n_weights == 3, "peft: %d/%d", rep.n_applied, rep.n_tensors);
    CHECK_CLOSE(merge_error(m, wk, ok_, &ts[1], &ts[0], 2.0, NULL), 1e-5, "PEFT unet attn2.to_k, unet weight 2");
    CHECK_CLOSE(merge_error(m, wv, ov, &ts[3], &ts[2], 0.5, NULL), 1e-5, "PEFT text v_proj, te weight 0.5");
    CHECK_CLOSE(merge_error(m, wo, oo, &ts[5], &ts[4], 2.0, NULL), 1e-5, "diffusers processor to_out_lora -> to_out.0");
    CHECK(sdc_encode_ids(m, ids, 1, 1, after, eb, sizeof eb) == SDC_OK, "encode after: %s", eb);
    double diff = 0;
    for (int i = 0; i < 77 * 64; i++) diff = fmax(diff, fabs(after[i] - before[i]));
    CHECK(diff > 1e-4, "the text encoder output changes with a TE LoRA (max diff %g)", diff);
    printf("  text encoder output change with the PEFT LoRA: %.3e\n", diff);
    sdc_lora_report_free(&rep);
    free(before);
    free(after);
    free(ok_);
    free(ov);
    free(oo);
    free_tts(ts, n);
    sdc_model_free(m);
}

/* f16 checkpoint: the merged weight stays f16 = round_f16(W + delta). */
static void test_f16_base(void) {
    tt base[] = {
        mk(U "input_blocks.1.1.proj_in.weight", SDC_F16, 4, 16, 16, 1, 1),
        mk(U "input_blocks.1.1.transformer_blocks.0.attn1.to_v.weight", SDC_BF16, 2, 16, 16, 0, 0),
    };
    const char *bpath = tmp_path("base16.safetensors");
    CHECK(write_st(bpath, base, 2, NULL, NULL) == 0, "write base");
    tt ts[] = {
        mk("lora_unet_input_blocks_1_1_proj_in.lora_down.weight", SDC_F32, 4, 4, 16, 1, 1),
        mk("lora_unet_input_blocks_1_1_proj_in.lora_up.weight", SDC_F32, 4, 16, 4, 1, 1),
        mk_alpha("lora_unet_input_blocks_1_1_proj_in.alpha", 4.0f),
        mk("lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_v.lora_down.weight", SDC_F32, 2, 2, 16, 0, 0),
        mk("lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_v.lora_up.weight", SDC_F32, 2, 16, 2, 0, 0),
    };
    for (int i = 0; i < 16 * 4; i++) ts[1].data[i] *= 10.0f; /* deltas well above f16 resolution */
    const char *lpath = tmp_path("lora16.safetensors");
    CHECK(write_st(lpath, ts, 5, NULL, NULL) == 0, "write lora");
    sdc_st_file *bf = NULL, *lf = NULL;
    sdc_weight_overlay *ov = NULL;
    sdc_error e = {0};
    if (sdc_st_open(bpath, &bf, &e) || sdc_st_open(lpath, &lf, &e) || sdc_overlay_new(NULL, &ov, &e)) {
        CHECK(0, "open: %s", e.msg);
        goto done;
    }
    CHECK(sdc_lora_merge(ov, bf, lf, "f16", 1.5f, 1.5f, NULL, NULL, &e) == SDC_OK, "merge f16: %s", e.msg);
    for (int w = 0; w < 2; w++) {
        const sdc_st_tensor *t = sdc_overlay_find(ov, base[w].name), *b = sdc_st_find(bf, base[w].name);
        CHECK(t && t->dtype == b->dtype, "merged weight keeps dtype %s", sdc_dtype_table[b->dtype].name);
        if (!t) continue;
        float *got = weight_f32(t), *orig = weight_f32(b);
        const tt *up = &ts[w ? 4 : 1], *down = &ts[w ? 3 : 0];
        double f = w ? 1.5 : 1.5 * 4.0 / 4, worst = 0; /* in units of the dtype's rounding step */
        for (int o = 0; o < 16; o++)
            for (int k = 0; k < 16; k++) {
                double d = 0;
                for (int j = 0; j < down->shape[0]; j++) d += (double)up->data[o * down->shape[0] + j] * down->data[j * 16 + k];
                float want = (float)(orig[o * 16 + k] + f * d);
                float rounded = b->dtype == SDC_F16 ? sdc_f16_to_f32(sdc_f32_to_f16(want)) : sdc_bf16_to_f32(sdc_f32_to_bf16(want));
                double ulp = fabs(want) * (b->dtype == SDC_F16 ? 1.0 / 1024 : 1.0 / 128) + 1e-7;
                worst = fmax(worst, fabs(got[o * 16 + k] - rounded) / ulp);
            }
        CHECK_CLOSE(worst, 1.0, w ? "bf16 weight: merged vs rounded formula (ulps)" : "f16 weight: merged vs rounded formula (ulps)");
        free(got);
        free(orig);
    }
done:
    sdc_overlay_free(ov);
    sdc_st_close(bf);
    sdc_st_close(lf);
    free_tts(base, 2);
    free_tts(ts, 5);
}

static int has_skipped(const sdc_lora_report *r, const char *name) {
    for (int i = 0; i < r->n_skipped; i++)
        if (!strncmp(r->skipped[i], name, strlen(name)) && r->skipped[i][strlen(name)] == ' ') return 1;
    return 0;
}

/* Unmappable names are reported one by one, the rest applies; refusals leave nothing merged. */
static void test_reports(void) {
    sdc_model *m = load_tiny();
    if (!m) return;
    tt ts[] = {
        mk("lora_unet_down_blocks_0_attentions_0_proj_out.lora_down.weight", SDC_F32, 2, 2, 32, 0, 0),
        mk("lora_unet_down_blocks_0_attentions_0_proj_out.lora_up.weight", SDC_F32, 2, 32, 2, 0, 0),
        mk("lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q.lora_down.weight", SDC_F32, 2, 2, 64, 0, 0),
        mk("lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q.lora_up.weight", SDC_F32, 2, 64, 2, 0, 0),
        mk_alpha("lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q.alpha", 1.0f),
        mk("lora_unet_mid_block_attentions_0_proj_in.hada_w1_a", SDC_F32, 2, 128, 2, 0, 0),
        mk("lora_unet_down_blocks_0_resnets_0_conv2.lora_down.weight", SDC_F32, 4, 2, 32, 3, 3),
        mk("lora_unet_input_blocks_1_1_proj_out.lora_down.weight", SDC_F32, 2, 2, 32, 0, 0), /* same weight */
        mk("lora_unet_input_blocks_1_1_proj_out.lora_up.weight", SDC_F32, 2, 32, 2, 0, 0),
    };
    int n = sizeof ts / sizeof ts[0];
    const char *path = tmp_path("partial.safetensors");
    CHECK(write_st(path, ts, n, NULL, NULL) == 0, "write");
    sdc_lora_report rep;
    char eb[512] = "";
    CHECK(sdc_model_apply_lora(m, path, NULL, 1.0f, 1.0f, &rep, eb, sizeof eb) == SDC_OK, "partial apply: %s", eb);
    CHECK(rep.n_tensors == 9 && rep.n_applied == 2 && rep.n_weights == 1 && rep.n_skipped == 7,
          "partial: %d/%d applied, %d skipped", rep.n_applied, rep.n_tensors, rep.n_skipped);
    for (int i = 2; i < 7; i++) CHECK(has_skipped(&rep, ts[i].name), "'%s' is named in the report", ts[i].name);
    CHECK(!has_skipped(&rep, ts[7].name) && !has_skipped(&rep, ts[8].name), "the LDM-style name of proj_out applies");
    CHECK(has_skipped(&rep, ts[0].name) && has_skipped(&rep, ts[1].name), "the replaced diffusers-style name is reported");
    double md;
    float *opo = orig_of(m, U "input_blocks.1.1.proj_out.weight");
    CHECK_CLOSE(merge_error(m, U "input_blocks.1.1.proj_out.weight", opo, &ts[8], &ts[7], 1.0, &md), 1e-5,
                "two names of one module: the later replaces the earlier");
    free(opo);
    char *text = sdc_lora_report_text("partial", &rep);
    CHECK(text && strstr(text, "lora partial: applied 2/9 tensors to 1 weights") &&
              strstr(text, "not applied: lora_unet_input_blocks_4_1_transformer_blocks_1_attn1_to_q.alpha (no such weight in this model)"),
          "report text:\n%s", text ? text : "(null)");
    printf("%s\n", text ? text : "");
    free(text);
    sdc_lora_report_free(&rep);
    size_t merged = sdc_overlay_count(m->overlay);

    /* SDXL shapes: attn2.to_k takes a 2048-wide context */
    tt x[] = {
        mk("lora_unet_down_blocks_0_attentions_0_proj_out.lora_down.weight", SDC_F32, 2, 2, 32, 0, 0),
        mk("lora_unet_down_blocks_0_attentions_0_proj_out.lora_up.weight", SDC_F32, 2, 32, 2, 0, 0),
        mk("lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_k.lora_down.weight", SDC_F16, 2, 4, 2048, 0, 0),
        mk("lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_k.lora_up.weight", SDC_F16, 2, 32, 4, 0, 0),
    };
    path = tmp_path("sdxl.safetensors");
    CHECK(write_st(path, x, 4, NULL, NULL) == 0, "write");
    sdc_status s = sdc_model_apply_lora(m, path, NULL, 1.0f, 1.0f, &rep, eb, sizeof eb);
    CHECK(s == SDC_E_UNSUPPORTED && strstr(eb, "lora_unet_input_blocks_1_1_transformer_blocks_0_attn2_to_k.lora_down.weight") &&
              strstr(eb, "[4, 2048]") && strstr(eb, "[32, 64]") && strstr(eb, "SDXL") && !strchr(eb, '\n'),
          "SDXL shapes refused: %s", eb);
    printf("  SDXL-shaped: %s\n", eb);
    CHECK(sdc_overlay_count(m->overlay) == merged, "nothing of a refused LoRA is merged");
    free_tts(x, 4);

    /* SDXL's second text encoder */
    tt y[] = {
        mk("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", SDC_F32, 2, 2, 64, 0, 0),
        mk("lora_te1_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", SDC_F32, 2, 64, 2, 0, 0),
        mk("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_down.weight", SDC_F32, 2, 2, 64, 0, 0),
        mk("lora_te2_text_model_encoder_layers_0_self_attn_q_proj.lora_up.weight", SDC_F32, 2, 64, 2, 0, 0),
    };
    path = tmp_path("te2.safetensors");
    CHECK(write_st(path, y, 4, NULL, NULL) == 0, "write");
    s = sdc_model_apply_lora(m, path, NULL, 1.0f, 1.0f, NULL, eb, sizeof eb);
    CHECK(s == SDC_E_UNSUPPORTED && strstr(eb, "lora_te2_") && strstr(eb, "SDXL"), "te2 refused: %s", eb);
    CHECK(sdc_overlay_count(m->overlay) == merged, "nothing of the te2 LoRA is merged");
    free_tts(y, 4);

    /* nothing matches */
    tt z[] = {
        mk("lora_unet_label_emb_0_0.lora_down.weight", SDC_F32, 2, 2, 64, 0, 0),
        mk("lora_unet_label_emb_0_0.lora_up.weight", SDC_F32, 2, 64, 2, 0, 0),
    };
    path = tmp_path("none.safetensors");
    CHECK(write_st(path, z, 2, NULL, NULL) == 0, "write");
    s = sdc_model_apply_lora(m, path, NULL, 1.0f, 1.0f, NULL, eb, sizeof eb);
    CHECK(s == SDC_E_FORMAT && strstr(eb, "none of its 2 tensors") && strstr(eb, "lora_unet_label_emb_0_0"),
          "nothing matches: %s", eb);
    free_tts(z, 2);

    /* bad input: a missing file, a checkpoint given as a LoRA, a NaN weight */
    s = sdc_model_apply_lora(m, tmp_path("missing.safetensors"), NULL, 1.0f, 1.0f, NULL, eb, sizeof eb);
    CHECK(s == SDC_E_IO && strstr(eb, "missing.safetensors"), "missing file: %s", eb);
    s = sdc_model_apply_lora(m, TINY, NULL, 1.0f, 1.0f, NULL, eb, sizeof eb);
    CHECK(s != SDC_OK, "a checkpoint is not a LoRA: %s", eb);
    s = sdc_model_apply_lora(m, tmp_path("partial.safetensors"), NULL, NAN, 1.0f, NULL, eb, sizeof eb);
    CHECK(s == SDC_E_INVALID_ARG, "NaN weight refused: %s", eb);
    CHECK(sdc_overlay_count(m->overlay) == merged, "refusals merge nothing");
    free_tts(ts, n);
    sdc_model_free(m);
}

/* webui's short hash: sshs_model_hash from the metadata, else SHA-256 after the header. */
static void test_hash(void) {
    tt ts[] = {mk("lora_unet_conv_in.lora_down.weight", SDC_F32, 4, 1, 4, 3, 3)};
    const char *p1 = tmp_path("h1.safetensors"), *p2 = tmp_path("h2.safetensors");
    CHECK(write_st(p1, ts, 1, NULL, NULL) == 0 && write_st(p2, ts, 1, "sshs_model_hash", "0123456789abcdef0123") == 0,
          "write");
    sdc_st_file *f = NULL;
    sdc_error e = {0};
    char h[SDC_LORA_HASH_HEX];
    if (sdc_st_open(p1, &f, &e) == SDC_OK) {
        const unsigned char *b = sdc_st_file_bytes(f);
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | b[i];
        uint8_t d[32];
        char hex[SDC_SHA256_HEX];
        sdc_sha256(b + 8 + n, sdc_st_file_size(f) - 8 - n, d);
        sdc_sha256_hex(d, hex);
        sdc_lora_hash(f, h);
        CHECK(strlen(h) == 12 && !strncmp(h, hex, 12), "addnet hash %s vs %.12s", h, hex);
        CHECK(sdc_st_file_size(f) - 8 - n == 36 * 4, "the hashed part is the data section only");
        sdc_st_close(f);
    }
    if (sdc_st_open(p2, &f, &e) == SDC_OK) {
        sdc_lora_hash(f, h);
        CHECK(!strcmp(h, "0123456789ab"), "metadata hash wins: %s", h);
        sdc_st_close(f);
    }
    free_tts(ts, 1);
}

/* Every LoRA-able UNet weight: LDM name -> diffusers path -> kohya name -> webui's mapping gives
 * the weight back; random LoRAs of every format apply to every tensor. */
static void test_round_trip(void) {
    sdc_model *m = load_tiny();
    if (!m) return;
    size_t n = 0, back = 0;
    for (size_t i = 0; i < sdc_st_count(m->st); i++) {
        const sdc_st_tensor *t = sdc_st_get(m->st, i);
        size_t len = strlen(t->name), pl = strlen(U);
        if (strncmp(t->name, U, pl) || (t->ndim != 2 && t->ndim != 4) || strcmp(t->name + len - 7, ".weight")) continue;
        char ldm[200], diff[256], kohya[300], got[300] = "";
        snprintf(ldm, sizeof ldm, "%.*s", (int)(len - pl - 7), t->name + pl);
        n++;
        if (!sdc_lora_ldm_to_diffusers(ldm, diff, sizeof diff)) {
            CHECK(0, "%s has no diffusers name", ldm);
            continue;
        }
        snprintf(kohya, sizeof kohya, "lora_unet_%s", diff);
        for (char *c = kohya; *c; c++)
            if (*c == '.') *c = '_';
        if (sdc_lora_map_name(m->st, kohya, got, sizeof got) && !strcmp(got, t->name)) back++;
        else CHECK(0, "%s -> %s -> %s", t->name, kohya, got);
    }
    CHECK(n > 100 && back == n, "%zu of %zu UNet conv/linear weights map back", back, n);
    printf("  UNet weights mapped back through diffusers names: %zu/%zu\n", back, n);
    /* tiny model: 204 target linears, 192 UNet + 12 text (612 kohya tensors with alpha); LoCon adds
     * 64 convolutions:
     * 16 resnet 3x3 down, 2 + 12 shortcuts, 3 + 3 resamplers, 4 mid, 24 up */
    static const struct { int peft, locon; sdc_dtype dt; int applied; } kinds[] = {
        {0, 0, SDC_F32, 612}, {1, 0, SDC_F16, 408}, {0, 1, SDC_BF16, 612 + 3 * 64}, {1, 1, SDC_F32, 408 + 2 * 64},
    };
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        sdc_lora_make_params lp = {.path = tmp_path("made.safetensors"), .peft = kinds[k].peft, .rank = 3,
                                   .locon = kinds[k].locon, .dtype = kinds[k].dt, .seed = k};
        sdc_error e = {0};
        sdc_sd15_config cfg = sdc_sd15_config_tiny();
        CHECK(sdc_lora_make(&lp, k % 2 ? NULL : m->st, k % 2 ? &cfg : NULL, &e) == SDC_OK, "make: %s", e.msg);
        sdc_lora_report rep;
        char eb[512] = "";
        CHECK(sdc_model_apply_lora(m, lp.path, NULL, 1.0f, 1.0f, &rep, eb, sizeof eb) == SDC_OK, "apply made: %s", eb);
        CHECK(rep.n_applied == rep.n_tensors && rep.n_skipped == 0 && rep.n_tensors == kinds[k].applied,
              "made LoRA %zu (peft %d, locon %d): %d/%d applied, expected %d", k, kinds[k].peft, kinds[k].locon,
              rep.n_applied, rep.n_tensors, kinds[k].applied);
        sdc_lora_report_free(&rep);
    }
    sdc_model_free(m);
}

/* The merge splits rows over threads: 1 and 3 threads give the same bytes. */
static void test_threads(void) {
    sdc_model *m[2] = {load_tiny(), load_tiny()};
    if (!m[0] || !m[1]) return;
    m[1]->n_threads = 3;
    sdc_lora_make_params lp = {.path = tmp_path("threads.safetensors"), .rank = 5, .locon = 1, .dtype = SDC_F16, .seed = 9};
    sdc_error e = {0};
    CHECK(sdc_lora_make(&lp, m[0]->st, NULL, &e) == SDC_OK, "make: %s", e.msg);
    char eb[512];
    for (int k = 0; k < 2; k++)
        CHECK(sdc_model_apply_lora(m[k], lp.path, NULL, 0.9f, 1.1f, NULL, eb, sizeof eb) == SDC_OK, "apply: %s", eb);
    size_t same = 0, n = 0;
    for (size_t i = 0; i < sdc_st_count(m[0]->st); i++) {
        const char *name = sdc_st_get(m[0]->st, i)->name;
        const sdc_st_tensor *a = sdc_overlay_find(m[0]->overlay, name), *b = sdc_overlay_find(m[1]->overlay, name);
        if (!a && !b) continue;
        n++;
        same += a && b && a->nbytes == b->nbytes && !memcmp(a->data, b->data, a->nbytes);
    }
    CHECK(n == 268 && same == n, "1 vs 3 threads: %zu of %zu merged weights identical", same, n);
    sdc_model_free(m[0]);
    sdc_model_free(m[1]);
}

int main(void) {
    snprintf(tmp_dir, sizeof tmp_dir, "/tmp/sdc_test_lora_%d", (int)getpid());
    char cmd[300];
    snprintf(cmd, sizeof cmd, "mkdir -p %s", tmp_dir);
    if (system(cmd) != 0) return 1;
    sdc_model *m = load_tiny();
    CHECK(m != NULL, "tiny model loads");
    if (m) test_names(m);
    sdc_model_free(m);
    test_kohya();
    test_peft();
    test_f16_base();
    test_reports();
    test_hash();
    test_round_trip();
    test_threads();
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmp_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_dir);
    TEST_MAIN_END();
}
