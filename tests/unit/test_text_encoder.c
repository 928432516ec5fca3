/* Text encoder vs transformers CLIPTextModel (golden te.K.* of the tiny checkpoint):
 * last layer and A1111 clip skip 2, tolerance 1e-4 * max(1, max|ref|). */
#include "golden.h"
#include "sdc.h"

int main(void) {
    char err[512];
    sdc_model *m = golden_load_tiny();
    sdc_st_file *gold = golden_open(TINY_DIR "/golden.safetensors");
    sdc_model_desc d;
    sdc_model_describe(m, &d);
    CHECK(d.text_width == 64 && d.text_layers == 2, "tiny CLIP config: width %d layers %d", d.text_width, d.text_layers);
    for (int k = 0;; k++) {
        char name[96];
        snprintf(name, sizeof name, "te.%d.ids", k);
        if (!sdc_st_find(gold, name)) {
            CHECK(k >= 2, "expected at least 2 golden prompts, found %d", k);
            break;
        }
        float *idsf = golden_f32(gold, name, NULL);
        int32_t ids[77];
        for (int i = 0; i < 77; i++) ids[i] = (int32_t)idsf[i];
        const char *variants[2][2] = {{"last_hidden_state", "1"}, {"penultimate_ln", "2"}};
        for (int v = 0; v < 2; v++) {
            float out[77 * 64];
            int skip = variants[v][1][0] - '0';
            sdc_status s = sdc_encode_ids(m, ids, 1, skip, out, err, sizeof err);
            CHECK(s == SDC_OK, "encode: %s", err);
            snprintf(name, sizeof name, "te.%d.%s", k, variants[v][0]);
            int64_t n;
            float *ref = golden_f32(gold, name, &n);
            char what[128];
            snprintf(what, sizeof what, "prompt %d, clip skip %d (%s)", k, skip, variants[v][0]);
            CHECK(n == 77 * 64, "golden size");
            CHECK_CLOSE(golden_err(out, ref, n), 1e-4, what);
            free(ref);
        }
        free(idsf);
    }
    /* batch of 2 gives the same rows as two single runs */
    {
        float *idsf = golden_f32(gold, "te.0.ids", NULL);
        int32_t ids[154];
        for (int i = 0; i < 154; i++) ids[i] = (int32_t)idsf[i % 77];
        float out[2 * 77 * 64];
        CHECK(sdc_encode_ids(m, ids, 2, 1, out, err, sizeof err) == SDC_OK, "batch 2: %s", err);
        float *ref = golden_f32(gold, "te.0.last_hidden_state", NULL);
        CHECK_CLOSE(golden_err(out + 77 * 64, ref, 77 * 64), 1e-4, "batch row 2 == single run");
        free(ref);
        free(idsf);
    }
    /* bad arguments */
    int32_t ids[77] = {0};
    float out[77 * 64];
    CHECK(sdc_encode_ids(m, ids, 1, 3, out, err, sizeof err) == SDC_E_INVALID_ARG, "clip skip 3 of 2 layers refused");
    ids[5] = 60000;
    CHECK(sdc_encode_ids(m, ids, 1, 1, out, err, sizeof err) == SDC_E_INVALID_ARG, "token id out of range refused");
    sdc_st_close(gold);
    sdc_model_free(m);
    TEST_MAIN_END();
}
