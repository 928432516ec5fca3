/* The calibration .npy writers (src/deploy/pickle_write.h), read back with the project's readers:
 *  - NumpyObject: a dict of float32 arrays (4-D, 1-D, 0-D, a name with '/', data over 256 bytes so
 *    BINBYTES and under so SHORT_BINBYTES) round-trips through sdc_npy_object_parse with names in
 *    order and bit-identical data; the header is numpy's ('|O', shape (), data at 64 bytes);
 *  - plain .npy: float32 and int64 arrays round-trip through sdc_npy_parse_f32, header as numpy
 *    writes it ("(1, 77)", "(5,)");
 *  - refusals, one line each: 9 dimensions, a negative dimension, a duplicate dict key, NULL data.
 * That numpy itself loads these files is checked by tests/cli/calib.sh when numpy is installed. */
#include "deploy/pickle_write.h"
#include "io/npy.h"
#include "io/pickle_dict.h"
#include "test.h"

#include <stdint.h>

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }

static void test_object_round_trip(void) {
    float a[1 * 4 * 3 * 5], b[7], c[1] = {-2.5f};
    for (int i = 0; i < 60; i++) a[i] = (float)i * 0.25f - 3.0f;
    for (int i = 0; i < 7; i++) b[i] = 1e-3f * (float)(i * i);
    int64_t sa[4] = {1, 4, 3, 5}, sb[1] = {7};
    sdc_npy_entry e[3] = {{"sample", SDC_NPY_F32, 4, sa, a},
                          {"/down_blocks.0/resnets.0/act_1/Mul_output_0", SDC_NPY_F32, 1, sb, b},
                          {"scalar", SDC_NPY_F32, 0, NULL, c}};
    void *buf = NULL;
    size_t len = 0;
    sdc_error err = {0};
    CHECK(sdc_npy_object_encode(e, 3, &buf, &len, &err) == SDC_OK, "encode: %s", err.msg);
    if (!buf) return;
    const unsigned char *u = buf;
    CHECK(len > 64 && !memcmp(u, "\x93NUMPY\x01\x00", 8), "magic");
    size_t data_at = 10 + le16(u + 8);
    CHECK(data_at % 64 == 0, "header ends at %zu, not a multiple of 64", data_at);
    CHECK(strstr((const char *)u + 10, "{'descr': '|O', 'fortran_order': False, 'shape': (), }") != NULL, "header dict");
    CHECK(sdc_npy_is_object(buf, len), "sdc_npy_is_object");
    CHECK(u[data_at] == 0x80 && u[data_at + 1] == 3 && u[len - 1] == '.', "protocol 3 pickle ending in STOP");
    sdc_pickle_dict d = {0};
    sdc_status s = sdc_npy_object_parse(buf, len, "test", &d, &err);
    CHECK(s == SDC_OK, "parse: %s", err.msg);
    CHECK(d.n == 3, "%d entries", d.n);
    for (int i = 0; i < d.n && i < 3; i++) {
        const sdc_pickle_array *x = &d.items[i];
        CHECK(!strcmp(x->name, e[i].name), "entry %d is %s", i, x->name);
        CHECK(x->ndim == e[i].ndim, "%s: ndim %d", x->name, x->ndim);
        int64_t n = 1;
        for (int k = 0; k < e[i].ndim; k++) {
            CHECK(x->shape[k] == e[i].shape[k], "%s: dim %d", x->name, k);
            n *= e[i].shape[k];
        }
        CHECK(x->numel == n && !memcmp(x->data, e[i].data, (size_t)n * 4), "%s: data differ", x->name);
    }
    sdc_pickle_dict_free(&d);
    free(buf);
}

static void test_plain(void) {
    int64_t ids[77], s2[2] = {1, 77}, s1[1] = {5};
    for (int i = 0; i < 77; i++) ids[i] = i == 0 ? 49406 : i < 5 ? 320 + i : 49407;
    sdc_npy_entry e = {"input_ids", SDC_NPY_I64, 2, s2, ids};
    void *buf = NULL;
    size_t len = 0;
    sdc_error err = {0};
    CHECK(sdc_npy_encode(&e, &buf, &len, &err) == SDC_OK, "encode i64: %s", err.msg);
    if (buf) {
        CHECK(strstr((const char *)buf + 10, "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 77), }") != NULL,
              "i64 header");
        CHECK(len == (size_t)10 + le16((unsigned char *)buf + 8) + 77 * 8 && (10 + le16((unsigned char *)buf + 8)) % 64 == 0,
              "i64 layout");
        sdc_npy a = {0};
        CHECK(sdc_npy_parse_f32(buf, len, "ids", &a, &err) == SDC_OK, "parse i64: %s", err.msg);
        int same = a.numel == 77 && a.ndim == 2;
        for (int i = 0; same && i < 77; i++) same = a.data[i] == (float)ids[i];
        CHECK(same, "i64 values");
        sdc_npy_free(&a);
        free(buf);
    }
    float v[5] = {1, -2, 3.5f, 0, 1e30f};
    sdc_npy_entry f = {"v", SDC_NPY_F32, 1, s1, v};
    CHECK(sdc_npy_encode(&f, &buf, &len, &err) == SDC_OK, "encode f32: %s", err.msg);
    if (buf) {
        CHECK(strstr((const char *)buf + 10, "'shape': (5,), }") != NULL, "1-D header");
        sdc_npy a = {0};
        CHECK(sdc_npy_parse_f32(buf, len, "v", &a, &err) == SDC_OK && a.numel == 5 && !memcmp(a.data, v, sizeof v),
              "f32 round trip: %s", err.msg);
        sdc_npy_free(&a);
        free(buf);
    }
}

static void expect_refusal(const char *what, const sdc_npy_entry *e, int n, const char *needle) {
    void *buf = (void *)1;
    size_t len = 1;
    sdc_error err = {0};
    sdc_status s = n == 1 && e[0].name && !strcmp(e[0].name, "plain") ? sdc_npy_encode(e, &buf, &len, &err)
                                                                      : sdc_npy_object_encode(e, n, &buf, &len, &err);
    CHECK(s == SDC_E_INVALID_ARG && buf == NULL && len == 0, "%s: status %d", what, (int)s);
    CHECK(strstr(err.msg, needle) && !strchr(err.msg, '\n'), "%s: message '%s' lacks '%s'", what, err.msg, needle);
    printf("  %s: %s\n", what, err.msg);
}

static void test_refusals(void) {
    float x[4] = {0};
    int64_t s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, neg[2] = {2, -1}, s1[1] = {4};
    sdc_npy_entry nine = {"deep", SDC_NPY_F32, 9, s9, x};
    expect_refusal("9 dimensions", &nine, 1, "deep: 9 dimensions");
    sdc_npy_entry negative = {"plain", SDC_NPY_F32, 2, neg, x};
    expect_refusal("negative dimension", &negative, 1, "dimension 1 is -1");
    sdc_npy_entry dup[2] = {{"x", SDC_NPY_F32, 1, s1, x}, {"x", SDC_NPY_F32, 1, s1, x}};
    expect_refusal("duplicate key", dup, 2, "the name x appears twice");
    sdc_npy_entry nodata = {"empty", SDC_NPY_F32, 1, s1, NULL};
    expect_refusal("no data", &nodata, 1, "empty: no data");
}

int main(void) {
    test_object_round_trip();
    test_plain();
    test_refusals();
    TEST_MAIN_END();
}
