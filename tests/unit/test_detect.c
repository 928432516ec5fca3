/* tests/unit/test_detect.c: model-file detection (src/model/detect.h).
 *
 * Writes small synthetic safetensors files (in /tmp, with the project's writer) for each family
 * and checks the classification, the evidence and the one-line refusal; checks the shared tiny
 * checkpoint is SD1.5 with all three components; and sniffs hostile containers (empty, short,
 * zip and raw pickles, GGUF, random bytes, a directory, a missing file, and a safetensors file
 * whose header length starts with byte 0x80, which must not be taken for a pickle).
 */
#include "io/safetensors.h"
#include "model/detect.h"
#include "test.h"

#include <stdint.h>
#include <unistd.h>

typedef struct spec {
    const char *name;
    sdc_dtype dt;
    int ndim;
    int64_t shape[4];
} spec;

static char path_buf[256];

static const char *tmp_named(const char *what) {
    snprintf(path_buf, sizeof path_buf, "/tmp/sdc_test_detect_%d_%s", (int)getpid(), what);
    return path_buf;
}

/* Writes a safetensors file holding the given tensors, all zero. */
static sdc_status write_file(const char *path, const spec *s, size_t n, sdc_error *err) {
    sdc_st_writer *w = NULL;
    size_t maxbytes = 1;
    for (size_t i = 0; i < n; i++) {
        size_t b = sdc_dtype_table[s[i].dt].size;
        for (int d = 0; d < s[i].ndim; d++) b *= (size_t)s[i].shape[d];
        if (b > maxbytes) maxbytes = b;
    }
    void *zeros = calloc(1, maxbytes);
    sdc_status rc = zeros ? sdc_st_writer_new(path, &w, err) : SDC_E_NOMEM;
    for (size_t i = 0; rc == SDC_OK && i < n; i++)
        rc = sdc_st_writer_declare(w, s[i].name, s[i].dt, s[i].ndim, s[i].shape, err);
    if (rc == SDC_OK) rc = sdc_st_writer_begin_data(w, err);
    for (size_t i = 0; rc == SDC_OK && i < n; i++) {
        size_t b = sdc_dtype_table[s[i].dt].size;
        for (int d = 0; d < s[i].ndim; d++) b *= (size_t)s[i].shape[d];
        rc = sdc_st_writer_write(w, zeros, b, err);
    }
    if (rc == SDC_OK) rc = sdc_st_writer_finish(w, err);
    sdc_st_writer_free(w);
    free(zeros);
    return rc;
}

/* Writes the specs, opens and classifies them; checks family, status, and that the message
 * names the file and contains `want` (the whole message when want_exact). */
static void check_family(const char *label, const spec *s, size_t n, sdc_family want_family,
                         const char *want, int want_exact, sdc_family_info *fi_out) {
    sdc_error err;
    sdc_error_clear(&err);
    char path[sizeof path_buf + 16];
    snprintf(path, sizeof path, "%s.safetensors", tmp_named(label));
    sdc_status st = write_file(path, s, n, &err);
    CHECK(st == SDC_OK, "%s: writing: %s", label, err.msg);
    if (st != SDC_OK) return;
    sdc_st_file *f = NULL;
    st = sdc_st_open(path, &f, &err);
    CHECK(st == SDC_OK, "%s: opening: %s", label, err.msg);
    if (st == SDC_OK) {
        sdc_family_info fi;
        sdc_error_clear(&err);
        st = sdc_detect_family(f, &fi, &err);
        CHECK(fi.family == want_family, "%s: family %s, want %s (evidence '%s')", label,
              sdc_family_id(fi.family), sdc_family_id(want_family), fi.evidence);
        if (want_family == SDC_FAMILY_SD15) {
            CHECK(st == SDC_OK, "%s: SD1.5 refused: %s", label, err.msg);
        } else {
            sdc_status want_st = want_family == SDC_FAMILY_UNKNOWN ? SDC_E_FORMAT : SDC_E_UNSUPPORTED;
            char exact[600];
            snprintf(exact, sizeof exact, "%s: %s", path, want);
            CHECK(st == want_st, "%s: status %d, want %d", label, st, want_st);
            CHECK(strstr(err.msg, path) == err.msg && !strchr(err.msg, '\n'),
                  "%s: message does not start with the path or spans lines: '%s'", label, err.msg);
            CHECK(want_exact ? !strcmp(err.msg, exact) : strstr(err.msg, want) != NULL,
                  "%s: message '%s' lacks '%s'", label, err.msg, want);
            printf("  %-14s -> %s\n", label, err.msg + strlen(path) + 2);
        }
        if (fi_out) *fi_out = fi;
        sdc_st_close(f);
    }
    unlink(path);
}

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define UNET "model.diffusion_model."
#define TEXT "cond_stage_model.transformer.text_model."

static void test_families(void) {
    sdc_family_info fi;

    const spec sd15[] = {
        {UNET "input_blocks.0.0.weight", SDC_F16, 4, {320, 4, 3, 3}},
        {UNET "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", SDC_F16, 2, {320, 768}},
        {UNET "out.2.bias", SDC_F32, 1, {4}},
        {"first_stage_model.decoder.conv_in.weight", SDC_F16, 4, {512, 4, 3, 3}},
        {TEXT "final_layer_norm.weight", SDC_F16, 1, {768}},
        {TEXT "embeddings.position_ids", SDC_I64, 2, {1, 77}},
        {"alphas_cumprod", SDC_F32, 1, {1000}},
        {"model_ema.decay", SDC_F32, 0, {0}},
        {"model_ema.num_updates", SDC_I32, 0, {0}},
    };
    check_family("sd15", sd15, N(sd15), SDC_FAMILY_SD15, "", 0, &fi);
    CHECK(fi.context_dim == 768 && fi.unet_in_channels == 4, "sd15: context %d, in %d",
          fi.context_dim, fi.unet_in_channels);
    CHECK(fi.comp[SDC_SD15_UNET].n_tensors == 3 && fi.comp[SDC_SD15_UNET].n_params == 320 * 36 + 320 * 768 + 4,
          "sd15: UNet tensors %zu params %lld", fi.comp[SDC_SD15_UNET].n_tensors,
          (long long)fi.comp[SDC_SD15_UNET].n_params);
    CHECK(fi.comp[SDC_SD15_UNET].dtypes == ((1u << SDC_F16) | (1u << SDC_F32)), "sd15: UNet dtypes");
    CHECK(fi.comp[SDC_SD15_TEXT].n_tensors == 1 && fi.comp[SDC_SD15_TEXT].dtypes == 1u << SDC_F16,
          "sd15: position_ids counted as a text parameter");
    CHECK(fi.n_buffers == 2 && fi.n_ignored == 2 && !strcmp(fi.first_ignored, "model_ema.decay"),
          "sd15: buffers %zu ignored %zu (%s)", fi.n_buffers, fi.n_ignored, fi.first_ignored);
    CHECK(fi.total_params == 320 * 36 + 320 * 768 + 4 + 512 * 36 + 768, "sd15: total %lld",
          (long long)fi.total_params);
    char dts[64];
    sdc_dtype_mask_str(fi.comp[SDC_SD15_UNET].dtypes, dts, sizeof dts);
    CHECK(!strcmp(dts, "F32,F16"), "dtype mask string '%s'", dts);
    sdc_dtype_mask_str(0, dts, sizeof dts);
    CHECK(!strcmp(dts, "-"), "empty dtype mask string '%s'", dts);

    const spec inpaint[] = {{UNET "input_blocks.0.0.weight", SDC_F16, 4, {320, 9, 3, 3}}};
    check_family("sd15-inpaint", inpaint, 1, SDC_FAMILY_SD15, "", 0, &fi);
    CHECK(fi.unet_in_channels == 9 && fi.comp[SDC_SD15_UNET].present &&
              !fi.comp[SDC_SD15_VAE].present && !fi.comp[SDC_SD15_TEXT].present,
          "inpainting UNet-only: in %d", fi.unet_in_channels);

    const spec sdxl[] = {
        {"conditioner.embedders.0.transformer.text_model.final_layer_norm.weight", SDC_F16, 1, {768}},
        {UNET "input_blocks.0.0.weight", SDC_F16, 4, {320, 4, 3, 3}},
        {"first_stage_model.decoder.conv_in.weight", SDC_F16, 4, {512, 4, 3, 3}},
    };
    check_family("sdxl", sdxl, N(sdxl), SDC_FAMILY_SDXL,
                 "an SDXL checkpoint (conditioner.embedders.*); sdc runs SD1.5 only", 1, NULL);
    const spec sdxl2[] = {{UNET "label_emb.0.0.weight", SDC_F16, 2, {1280, 2816}},
                          {UNET "input_blocks.0.0.weight", SDC_F16, 4, {320, 4, 3, 3}}};
    check_family("sdxl-unet", sdxl2, N(sdxl2), SDC_FAMILY_SDXL,
                 "an SDXL checkpoint (model.diffusion_model.label_emb.*); sdc runs SD1.5 only", 1, NULL);

    const spec sd2[] = {
        {"cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight", SDC_F16, 2, {3072, 1024}},
        {UNET "input_blocks.0.0.weight", SDC_F16, 4, {320, 4, 3, 3}},
    };
    check_family("sd2", sd2, N(sd2), SDC_FAMILY_SD2, "an SD 2.x checkpoint (cond_stage_model.model.*", 0, NULL);
    const spec sd2b[] = {
        {UNET "input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", SDC_F16, 2, {320, 1024}},
        {TEXT "final_layer_norm.weight", SDC_F16, 1, {768}},
    };
    check_family("sd2-context", sd2b, N(sd2b), SDC_FAMILY_SD2,
                 "an SD 2.x checkpoint (UNet cross-attention width 1024); sdc runs SD1.5 only", 1, NULL);

    const spec kohya[] = {
        {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", SDC_F16, 2, {4, 320}},
        {"lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", SDC_F16, 2, {320, 4}},
        {"lora_unet_down_blocks_0_attentions_0_proj_in.alpha", SDC_F16, 0, {0}},
    };
    check_family("lora-kohya", kohya, N(kohya), SDC_FAMILY_LORA,
                 "a LoRA (lora_unet_*), not a full checkpoint; sdc loads full SD1.5 checkpoints only", 1, NULL);
    const spec peft[] = {
        {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_A.weight", SDC_F32, 2, {4, 320}},
        {"unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.lora_B.weight", SDC_F32, 2, {320, 4}},
    };
    check_family("lora-peft", peft, N(peft), SDC_FAMILY_LORA, "a LoRA (*.lora_A.* / *.lora_B.*)", 0, NULL);

    const spec ti[] = {{"emb_params", SDC_F32, 2, {4, 768}}};
    check_family("embedding", ti, 1, SDC_FAMILY_EMBEDDING,
                 "a textual-inversion embedding (emb_params), not a full checkpoint", 0, NULL);
    const spec ti2[] = {{"string_to_param.*", SDC_F32, 2, {2, 768}},
                        {"string_to_token.*", SDC_I64, 1, {1}}};
    check_family("embedding-pt", ti2, N(ti2), SDC_FAMILY_EMBEDDING, "(string_to_param.*)", 0, NULL);
    const spec ti3[] = {{"my_style", SDC_F16, 2, {8, 768}}};
    check_family("embedding-1", ti3, 1, SDC_FAMILY_EMBEDDING, "(a single tensor 'my_style' [8, 768])", 0, NULL);

    const spec vae[] = {
        {"encoder.conv_in.weight", SDC_F32, 4, {128, 3, 3, 3}},
        {"decoder.conv_out.weight", SDC_F32, 4, {3, 128, 3, 3}},
        {"quant_conv.weight", SDC_F32, 4, {8, 8, 1, 1}},
    };
    check_family("vae", vae, N(vae), SDC_FAMILY_VAE, "a VAE-only file (encoder.* / decoder.*", 0, NULL);

    const spec diffusers[] = {
        {"text_model.embeddings.token_embedding.weight", SDC_F16, 2, {49408, 8}},
        {"text_model.final_layer_norm.weight", SDC_F16, 1, {768}},
    };
    check_family("diffusers", diffusers, N(diffusers), SDC_FAMILY_DIFFUSERS,
                 "diffusers-format weights (", 0, NULL);
    const spec dunet[] = {{"down_blocks.0.resnets.0.conv1.weight", SDC_F16, 4, {320, 320, 3, 3}},
                          {"conv_in.weight", SDC_F16, 4, {320, 4, 3, 3}}};
    check_family("diffusers-unet", dunet, N(dunet), SDC_FAMILY_DIFFUSERS, "diffusers-format weights", 0, NULL);

    const spec unknown[] = {{"foo.weight", SDC_F32, 2, {300, 400}}, {"bar", SDC_F32, 1, {3}}};
    check_family("unknown", unknown, N(unknown), SDC_FAMILY_UNKNOWN,
                 "not a Stable Diffusion checkpoint (no model.diffusion_model.*", 0, NULL);
    check_family("no-tensors", NULL, 0, SDC_FAMILY_UNKNOWN,
                 "not a Stable Diffusion checkpoint (no tensors)", 1, NULL);
}

static void test_tiny_checkpoint(void) {
    const char *path = SDC_SHARED_DIR "/testdata/tiny/sd15-tiny-f32.safetensors";
    sdc_error err;
    sdc_file_kind kind = SDC_FILE_OTHER;
    CHECK(sdc_detect_file_kind(path, &kind, &err) == SDC_OK && kind == SDC_FILE_SAFETENSORS,
          "tiny: file kind: %s", err.msg);
    sdc_st_file *f = NULL;
    if (sdc_st_open(path, &f, &err) != SDC_OK) {
        CHECK(0, "open tiny: %s", err.msg);
        return;
    }
    sdc_family_info fi;
    CHECK(sdc_detect_family(f, &fi, &err) == SDC_OK, "tiny refused: %s", err.msg);
    CHECK(fi.family == SDC_FAMILY_SD15, "tiny family %s", sdc_family_id(fi.family));
    for (int c = 0; c < SDC_SD15_N_COMPONENTS; c++)
        CHECK(fi.comp[c].present && fi.comp[c].dtypes == 1u << SDC_F32, "tiny: %s absent or not F32",
              sdc_sd15_component_name(c));
    CHECK(fi.comp[SDC_SD15_UNET].n_params == 8605284 && fi.comp[SDC_SD15_VAE].n_params == 5252487 &&
              fi.comp[SDC_SD15_TEXT].n_params == 3267136,
          "tiny params %lld %lld %lld", (long long)fi.comp[0].n_params,
          (long long)fi.comp[1].n_params, (long long)fi.comp[2].n_params);
    CHECK(fi.context_dim == 64 && fi.unet_in_channels == 4, "tiny context %d in %d", fi.context_dim,
          fi.unet_in_channels);
    CHECK(fi.n_tensors == 983 && fi.n_buffers == 13 && fi.n_ignored == 0,
          "tiny tensors %zu buffers %zu ignored %zu", fi.n_tensors, fi.n_buffers, fi.n_ignored);
    printf("  tiny: %s, UNet %lld, VAE %lld, text %lld parameters (%s)\n", sdc_family_id(fi.family),
           (long long)fi.comp[0].n_params, (long long)fi.comp[1].n_params,
           (long long)fi.comp[2].n_params, fi.evidence);
    sdc_st_close(f);
}

/* Writes raw bytes to a file. */
static const char *raw_file(const char *label, const void *data, size_t n) {
    const char *p = tmp_named(label);
    FILE *f = fopen(p, "wb");
    if (f) {
        if (n) fwrite(data, 1, n, f);
        fclose(f);
    }
    return p;
}

static void check_kind(const char *label, const char *path, sdc_status want_st,
                       sdc_file_kind want_kind, const char *want_msg) {
    sdc_error err;
    sdc_error_clear(&err);
    sdc_file_kind kind = SDC_FILE_SAFETENSORS;
    sdc_status st = sdc_detect_file_kind(path, &kind, &err);
    CHECK(st == want_st && kind == want_kind, "%s: status %d kind %d, want %d %d (%s)", label, st,
          kind, want_st, want_kind, err.msg);
    if (want_st != SDC_OK) {
        CHECK(strstr(err.msg, path) == err.msg && strstr(err.msg, want_msg) && !strchr(err.msg, '\n'),
              "%s: message '%s' lacks '%s'", label, err.msg, want_msg);
        printf("  %-14s -> %s\n", label, err.msg + strlen(path) + 2);
    }
}

static void test_file_kinds(void) {
    char p[256];
    snprintf(p, sizeof p, "%s", raw_file("empty", "", 0));
    check_kind("empty", p, SDC_E_FORMAT, SDC_FILE_OTHER, "empty file");
    unlink(p);
    snprintf(p, sizeof p, "%s", raw_file("short", "\x02\0\0\0\0", 5));
    check_kind("short", p, SDC_E_FORMAT, SDC_FILE_OTHER, "too short");
    unlink(p);
    snprintf(p, sizeof p, "%s", raw_file("zip", "PK\x03\x04\x14\0\0\0\0\0archive/data.pkl", 26));
    check_kind("zip-pickle", p, SDC_E_UNSUPPORTED, SDC_FILE_PICKLE,
               "a .ckpt/pickle checkpoint; sdc reads .safetensors only (convert it first)");
    unlink(p);
    /* torch's legacy format: protocol 2, then the magic number as LONG1 */
    snprintf(p, sizeof p, "%s", raw_file("pickle", "\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 14));
    check_kind("raw-pickle", p, SDC_E_UNSUPPORTED, SDC_FILE_PICKLE,
               "a .ckpt/pickle checkpoint; sdc reads .safetensors only (convert it first)");
    unlink(p);
    snprintf(p, sizeof p, "%s", raw_file("gguf", "GGUF\x03\0\0\0\0\0\0\0\0\0\0\0", 16));
    check_kind("gguf", p, SDC_E_UNSUPPORTED, SDC_FILE_GGUF, "a GGUF file");
    unlink(p);
    unsigned char rnd[4096];
    uint64_t x = 0x2545F4914F6CDD1DULL;
    for (size_t i = 0; i < sizeof rnd; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        rnd[i] = (unsigned char)(x >> 24);
    }
    rnd[0] = 0x11; /* not 0x80/'P'/'G': random bytes that claim a huge header */
    rnd[7] = 0x7f;
    snprintf(p, sizeof p, "%s", raw_file("random", rnd, sizeof rnd));
    check_kind("random", p, SDC_E_FORMAT, SDC_FILE_OTHER, "not a safetensors file");
    unlink(p);
    check_kind("directory", "/tmp", SDC_E_IO, SDC_FILE_OTHER, "is a directory");
    check_kind("missing", "/tmp/sdc_no_such_file.safetensors", SDC_E_IO, SDC_FILE_OTHER,
               "No such file");

    /* header length 0x280 = 640: the first byte is 0x80, the second 0x02, like a pickle */
    unsigned char st[8 + 640];
    memset(st, ' ', sizeof st);
    memcpy(st, "\x80\x02\0\0\0\0\0\0", 8);
    memcpy(st + 8, "{}", 2);
    snprintf(p, sizeof p, "%s", raw_file("st-0x80", st, sizeof st));
    check_kind("st-0x80", p, SDC_OK, SDC_FILE_SAFETENSORS, "");
    unlink(p);
}

int main(void) {
    test_families();
    test_tiny_checkpoint();
    test_file_kinds();
    TEST_MAIN_END();
}
