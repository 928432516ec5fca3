/* tests/golden.h: reading golden tensors from ../shared/testdata with the project's own reader,
 * and the error measure every golden test uses: max|a - ref| / max(1, max|ref|). */
#ifndef SDC_TESTS_GOLDEN_H
#define SDC_TESTS_GOLDEN_H

#include "io/safetensors.h"
#include "sdc.h"
#include "test.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define TINY_DIR SDC_SHARED_DIR "/testdata/tiny"
#define A1111_DIR SDC_SHARED_DIR "/testdata/a1111"
#define TINY_CKPT TINY_DIR "/sd15-tiny-f32.safetensors"

static inline sdc_st_file *golden_open(const char *path) {
    sdc_st_file *f = NULL;
    sdc_error e = {0};
    if (sdc_st_open(path, &f, &e) != SDC_OK) {
        fprintf(stderr, "cannot open golden file: %s\n", e.msg);
        exit(1);
    }
    return f;
}

/* Returns the tensor converted to a malloc'd float array (int64 too); exits when absent. */
static inline float *golden_f32(const sdc_st_file *f, const char *name, int64_t *numel) {
    const sdc_st_tensor *t = sdc_st_find(f, name);
    if (!t) {
        fprintf(stderr, "golden tensor '%s' missing\n", name);
        exit(1);
    }
    float *v = malloc((size_t)(t->numel ? t->numel : 1) * sizeof(float));
    if (t->dtype == SDC_I64) {
        const unsigned char *p = t->data;
        for (int64_t i = 0; i < t->numel; i++) {
            int64_t x;
            memcpy(&x, p + 8 * i, 8);
            v[i] = (float)x;
        }
    } else if (t->dtype == SDC_U8) {
        const unsigned char *p = t->data;
        for (int64_t i = 0; i < t->numel; i++) v[i] = p[i];
    } else
        sdc_convert_to_f32(v, t->data, t->dtype, (size_t)t->numel);
    if (numel) *numel = t->numel;
    return v;
}

static inline const sdc_st_tensor *golden_tensor(const sdc_st_file *f, const char *name) {
    const sdc_st_tensor *t = sdc_st_find(f, name);
    if (!t) {
        fprintf(stderr, "golden tensor '%s' missing\n", name);
        exit(1);
    }
    return t;
}

/* Loads the shared tiny checkpoint with 2 threads; exits when it cannot. */
static inline sdc_model *golden_load_tiny(void) {
    char err[512];
    sdc_model_params mp = sdc_model_params_default();
    mp.path = TINY_CKPT;
    mp.n_threads = 2;
    sdc_model *m = NULL;
    if (sdc_model_load(&mp, &m, err, sizeof err) != SDC_OK) {
        fprintf(stderr, "load %s: %s\n", TINY_CKPT, err);
        exit(1);
    }
    return m;
}

/* max|a - ref| / max(1, max|ref|) */
static inline double golden_err(const float *a, const float *ref, int64_t n) { return test_rel_err(a, ref, n); }

#endif
