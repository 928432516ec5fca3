/* tests/fuzz/fuzz_lora.c: libFuzzer target for applying a LoRA .safetensors file to a model
 * (sdc_model_apply_lora, src/model/lora.h): name mapping, shape checks and the merge.
 *
 * The tiny test model (SHARED/testdata/tiny/sd15-tiny-f32.safetensors; SHARED is $SDC_SHARED_DIR,
 * else the shared/ folder next to this checkout, as CMake's default) is loaded once with one
 * thread. Each input is written to a memfd and applied through its /proc/self/fd path; afterwards
 * the model's overlay is freed and reset, so runs do not accumulate. Promises checked (abort):
 *   - a refusal has a one-line message and merges nothing (the overlay holds no weight);
 *   - an accepted LoRA: n_applied + n_skipped = n_tensors, each skipped entry a one-line string,
 *     a 12-digit lower-case hex hash, one LoRA recorded, between 1 and n_weights merged weights,
 *     each one a weight of the checkpoint with its dtype and shape (its bytes are read: ASan).
 * Without the model (no shared/ folder) every input is skipped with one note on stderr. Built as
 * a real fuzzer with clang -DSDC_FUZZ_LIBFUZZER=ON; otherwise tests/fuzz/replay_main.c replays
 * tests/fuzz/corpus/fuzz_lora (small kohya, LoCon and PEFT LoRAs cut from `sdc mkmodel --lora`
 * files for the tiny model, and refused variants). */
#define _GNU_SOURCE
#include "sdc.h"

#include "model/lora.h"
#include "model/model.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void require(int cond) {
    if (!cond) abort();
}

static sdc_model *g_model;
static int g_fd = -1, g_tried;
static char g_path[64];

static void setup(void) {
    g_tried = 1;
    char model[4096];
    const char *shared = getenv("SDC_SHARED_DIR");
    if (shared && *shared) {
        snprintf(model, sizeof model, "%s/testdata/tiny/sd15-tiny-f32.safetensors", shared);
    } else { /* __FILE__ = SRC/tests/fuzz/fuzz_lora.c -> SRC/../shared */
        snprintf(model, sizeof model, "%s", __FILE__);
        char *cut = strstr(model, "/tests/fuzz/fuzz_lora.c");
        if (!cut) cut = model, *cut = '\0';
        snprintf(cut, sizeof model - (size_t)(cut - model), "%s../shared/testdata/tiny/sd15-tiny-f32.safetensors",
                 cut == model ? "" : "/");
    }
    sdc_model_params mp = sdc_model_params_default();
    mp.path = model;
    mp.n_threads = 1;
    char eb[512];
    if (sdc_model_load(&mp, &g_model, eb, sizeof eb) != SDC_OK) {
        fprintf(stderr, "fuzz_lora: no tiny model (%s); inputs are skipped\n", eb);
        g_model = NULL;
        return;
    }
    g_fd = memfd_create("fuzz_lora.safetensors", MFD_CLOEXEC);
    require(g_fd >= 0);
    snprintf(g_path, sizeof g_path, "/proc/self/fd/%d", g_fd);
}

static int one_line(const char *s) { return s && s[0] && !strchr(s, '\n'); }

static void check_merged(const sdc_model *m, const sdc_lora_report *rep) {
    const sdc_weight_overlay *ov = m->overlay;
    size_t merged = sdc_overlay_count(ov), found = 0;
    require(merged >= 1 && merged <= (size_t)rep->n_weights);
    require(sdc_overlay_lora_count(ov) == 1 && sdc_overlay_lora_get(ov, 0)->name);
    unsigned sum = 0;
    for (size_t i = 0; i < sdc_st_count(m->st); i++) {
        const sdc_st_tensor *w = sdc_st_get(m->st, i), *o = sdc_overlay_find(ov, w->name);
        if (!o || o == w) continue;
        found++;
        require(o->dtype == w->dtype && o->ndim == w->ndim && o->numel == w->numel && o->nbytes == w->nbytes);
        for (int d = 0; d < w->ndim; d++) require(o->shape[d] == w->shape[d]);
        const uint8_t *p = o->data;
        sum += p[0] + p[o->nbytes - 1];
    }
    require(found == merged);
    (void)sum;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!g_tried) setup();
    if (!g_model) return 0;
    require(ftruncate(g_fd, 0) == 0);
    for (size_t off = 0; off < size;) {
        ssize_t w = pwrite(g_fd, data + off, size - off, (off_t)off);
        require(w > 0);
        off += (size_t)w;
    }
    sdc_lora_report rep;
    char eb[1024] = "";
    sdc_status st = sdc_model_apply_lora(g_model, g_path, "fuzz", 0.75f, 1.0f, &rep, eb, sizeof eb);
    if (st != SDC_OK) {
        require(one_line(eb));
        if (st != SDC_E_NOMEM) require(sdc_overlay_count(g_model->overlay) == 0);
    } else {
        require(rep.n_tensors >= 0 && rep.n_applied >= 1 && rep.n_skipped >= 0);
        require(rep.n_applied + rep.n_skipped == rep.n_tensors);
        for (int i = 0; i < rep.n_skipped; i++) require(one_line(rep.skipped[i]));
        require(strlen(rep.hash) == 12 && strspn(rep.hash, "0123456789abcdef") == 12);
        check_merged(g_model, &rep);
        char *text = sdc_lora_report_text("fuzz", &rep);
        require(text != NULL);
        free(text);
    }
    sdc_lora_report_free(&rep);
    sdc_overlay_free(g_model->overlay); /* undo: the next input starts from the checkpoint */
    g_model->overlay = NULL;
    return 0;
}
