/* tests/unit/test_npy.c: the .npy reader and writers (src/io/npy.h).
 *
 * - the writers' bytes are numpy's own (header text, 64-byte alignment, growth spaces) for 0-d,
 *   1-d, 2-d and 4-d arrays, and they round-trip exactly through the reader;
 * - every accepted dtype and format version converts to the right float32 values, also through
 *   the file reader's chunked conversion path;
 * - hostile files (truncated, huge or overflowing shapes, long or broken headers, big-endian,
 *   Fortran order, unknown keys and dtypes) fail with the right status and a one-line message,
 *   and every truncation and many random corruptions of a valid file are refused or parsed
 *   without a crash (run under ASan+UBSan);
 * - writes are atomic: a failed write leaves neither the target nor PATH.tmp behind.
 */
#include "io/npy.h"

#include "core/dtype.h"
#include "test.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmpdir[64];

static char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

static unsigned char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    *len = fread(b, 1, (size_t)n, f);
    fclose(f);
    return b;
}

static int write_all(const char *path, const void *b, size_t len) {
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(b, 1, len, f) == len;
    return fclose(f) == 0 && ok;
}

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Builds an .npy image by hand: version major.0, the dict text + '\n' as header, then data. */
static unsigned char *make_npy(int major, const char *dict, const void *data, size_t ndata,
                               size_t *len) {
    size_t hl = strlen(dict) + 1, pre = major == 1 ? 10 : 12;
    unsigned char *b = malloc(pre + hl + ndata + 1);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    b[8] = (unsigned char)(hl & 0xff);
    b[9] = (unsigned char)(hl >> 8);
    if (major != 1) b[10] = b[11] = 0;
    memcpy(b + pre, dict, hl - 1);
    b[pre + hl - 1] = '\n';
    if (ndata) memcpy(b + pre + hl, data, ndata);
    *len = pre + hl + ndata;
    return b;
}

/* Parses `dict` + data and expects status `want`; on failure, that the message contains `msg`. */
static void expect_parse(const char *dict, const void *data, size_t ndata, sdc_status want,
                         const char *msg, const char *what) {
    size_t len;
    unsigned char *b = make_npy(1, dict, data, ndata, &len);
    sdc_npy a;
    sdc_error err = {0};
    sdc_status st = sdc_npy_parse_f32(b, len, "t.npy", &a, &err);
    CHECK(st == want, "%s: status %d, want %d (%s)", what, st, want, err.msg);
    if (st != SDC_OK && msg)
        CHECK(strstr(err.msg, msg) != NULL, "%s: message '%s' lacks '%s'", what, err.msg, msg);
    if (st != SDC_OK) CHECK(a.data == NULL && !strchr(err.msg, '\n'), "%s: output/message", what);
    sdc_npy_free(&a);
    free(b);
}

/* ---- the writers produce numpy's bytes ---- */
static void test_writer_bytes(void) {
    static const struct {
        int ndim;
        int64_t shape[4];
        const char *dict;
    } cases[] = {
        {0, {0}, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"},
        {1, {5}, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }"},
        {2, {2, 3}, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"},
        {4, {1, 4, 8, 12}, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 4, 8, 12), }"},
        {1, {0}, "{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int64_t numel = 1;
        for (int i = 0; i < cases[c].ndim; i++) numel *= cases[c].shape[i];
        float *x = malloc(sizeof(float) * (size_t)(numel ? numel : 1));
        for (int64_t i = 0; i < numel; i++) x[i] = (float)i * 0.25f - 3.0f;
        sdc_error err = {0};
        const char *path = tmp_path("w.npy");
        CHECK(sdc_npy_write_f32(path, x, cases[c].ndim, cases[c].shape, &err) == SDC_OK,
              "write: %s", err.msg);
        CHECK(!exists(tmp_path("w.npy.tmp")), "temporary left behind");
        size_t len = 0;
        unsigned char *b = read_all(path, &len);
        /* numpy: dict, 21 - len(repr(shape[0])) spaces, then spaces up to 64k - 1, then '\n' */
        char want[256];
        size_t n = (size_t)snprintf(want, sizeof want, "%s", cases[c].dict);
        if (cases[c].ndim) {
            int digits = snprintf(NULL, 0, "%lld", (long long)cases[c].shape[0]);
            for (int i = digits; i < 21; i++) want[n++] = ' ';
        }
        size_t pad = 64 - (10 + n + 1) % 64;
        memset(want + n, ' ', pad);
        n += pad;
        want[n++] = '\n';
        size_t hdr = 10 + n;
        /* a literal check from numpy itself: np.save of a float32 (2, 3) array has a 128-byte
         * header whose length field is 118 ('v') */
        if (c == 2) CHECK(hdr == 128 && b && b[8] == 'v' && b[9] == 0, "(2, 3): numpy's 128 bytes");
        CHECK(hdr % 64 == 0, "case %zu: data offset %zu is not a multiple of 64", c, hdr);
        CHECK(b && len == hdr + 4 * (size_t)numel, "case %zu: file is %zu bytes, want %zu", c, len,
              hdr + 4 * (size_t)numel);
        if (b && len == hdr + 4 * (size_t)numel) {
            CHECK(memcmp(b, "\x93NUMPY\x01\x00", 8) == 0, "case %zu: magic", c);
            CHECK(b[8] + 256 * b[9] == (int)n, "case %zu: header length %d, want %zu", c,
                  b[8] + 256 * b[9], n);
            CHECK(memcmp(b + 10, want, n) == 0, "case %zu: header text '%.*s'", c, (int)n, b + 10);
            CHECK(memcmp(b + hdr, x, 4 * (size_t)numel) == 0, "case %zu: data bytes", c);
        }
        /* the in-memory encoder writes the same bytes */
        void *enc = NULL;
        size_t enc_len = 0;
        CHECK(sdc_npy_encode_f32(x, cases[c].ndim, cases[c].shape, &enc, &enc_len, &err) == SDC_OK,
              "encode: %s", err.msg);
        CHECK(b && enc_len == len && memcmp(enc, b, len) == 0, "case %zu: encode != file", c);
        /* and the reader gives back the same shape and values */
        sdc_npy a;
        CHECK(sdc_npy_read_f32(path, &a, &err) == SDC_OK, "read: %s", err.msg);
        CHECK(a.ndim == cases[c].ndim && a.numel == numel, "case %zu: ndim %d numel %lld", c,
              a.ndim, (long long)a.numel);
        for (int i = 0; i < a.ndim && i < 4; i++)
            CHECK(a.shape[i] == cases[c].shape[i], "case %zu: dim %d", c, i);
        CHECK(a.data && memcmp(a.data, x, 4 * (size_t)numel) == 0, "case %zu: values", c);
        sdc_npy_free(&a);
        free(enc);
        free(b);
        free(x);
    }
    printf("  writer bytes: 0-d, 1-d, 2-d, 4-d and empty arrays match numpy's layout\n");
}

static void test_write_i64(void) {
    int64_t ids[6] = {49406, 320, 1125, 49407, -1, (int64_t)1 << 40};
    int64_t shape[2] = {2, 3};
    sdc_error err = {0};
    const char *path = tmp_path("ids.npy");
    CHECK(sdc_npy_write_i64(path, ids, 2, shape, &err) == SDC_OK, "write i64: %s", err.msg);
    size_t len = 0;
    unsigned char *b = read_all(path, &len);
    CHECK(b && len == 128 + 48, "i64 file is %zu bytes", len);
    if (b && len == 128 + 48) {
        CHECK(memcmp(b + 10, "{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", 59) == 0,
              "i64 header");
        CHECK(memcmp(b + 128, ids, 48) == 0, "i64 data");
    }
    free(b);
    sdc_npy a;
    CHECK(sdc_npy_read_f32(path, &a, &err) == SDC_OK, "read i64: %s", err.msg);
    for (int i = 0; i < 6 && a.data; i++)
        CHECK(a.data[i] == (float)ids[i], "i64 value %d: %g", i, a.data[i]);
    sdc_npy_free(&a);
}

/* ---- every accepted dtype and version ---- */
static void test_dtypes(void) {
    float want[6] = {0.0f, 1.0f, -2.5f, 3.0f, 100.0f, -7.0f};
    float f4[6];
    uint16_t f2[6];
    double f8[6];
    int64_t i8[6];
    int32_t i4[6];
    int8_t i1[6];
    for (int i = 0; i < 6; i++) {
        f4[i] = want[i];
        f2[i] = sdc_f32_to_f16(want[i]);
        f8[i] = want[i];
        i8[i] = (int64_t)want[i];
        i4[i] = (int32_t)want[i];
        i1[i] = (int8_t)want[i];
    }
    uint8_t u1[6] = {0, 1, 2, 128, 255, 7};
    uint8_t b1[6] = {0, 1, 0, 1, 2, 0}; /* numpy reads any non-zero byte as True */
    float want_u1[6] = {0, 1, 2, 128, 255, 7}, want_b1[6] = {0, 1, 0, 1, 1, 0};
    float want_int[6] = {0, 1, -2, 3, 100, -7};
    static const char *const tail = "'fortran_order': False, 'shape': (2, 3), }";
    const struct {
        const char *descr;
        const void *data;
        size_t size;
        const float *want;
    } cases[] = {
        {"'<f4'", f4, 4, want},      {"'|f4'", f4, 4, want},      {"'=f4'", f4, 4, want},
        {"'f4'", f4, 4, want},       {"'<f2'", f2, 2, want},      {"'<f8'", f8, 8, want},
        {"'<i8'", i8, 8, want_int},  {"'<i4'", i4, 4, want_int},  {"'|i1'", i1, 1, want_int},
        {"'|u1'", u1, 1, want_u1},   {"'>u1'", u1, 1, want_u1},   {"'|b1'", b1, 1, want_b1},
        {"\"<f4\"", f4, 4, want},
    };
    for (int major = 1; major <= 3; major++) {
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            char dict[160];
            snprintf(dict, sizeof dict, "{'descr': %s, %s", cases[c].descr, tail);
            size_t len;
            unsigned char *b = make_npy(major, dict, cases[c].data, 6 * cases[c].size, &len);
            sdc_npy a;
            sdc_error err = {0};
            sdc_status st = sdc_npy_parse_f32(b, len, "t.npy", &a, &err);
            CHECK(st == SDC_OK, "v%d.0 %s: %s", major, cases[c].descr, err.msg);
            if (st == SDC_OK) {
                CHECK(a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 3 && a.numel == 6,
                      "v%d.0 %s: shape", major, cases[c].descr);
                CHECK(memcmp(a.data, cases[c].want, sizeof want) == 0, "v%d.0 %s: values", major,
                      cases[c].descr);
            }
            sdc_npy_free(&a);
            free(b);
        }
    }
    /* other spellings numpy's literal_eval accepts: key order, quotes, spacing, 'L' suffixes */
    expect_parse("{\"shape\":(2,3),\"fortran_order\":False,\"descr\":\"<f4\"}", f4, 24, SDC_OK,
                 NULL, "reordered keys, double quotes, no spaces");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 3L), }", f4, 24, SDC_OK,
                 NULL, "Python 2 long suffixes");
    expect_parse("{'descr': '<f4', 'fortran_order': True, 'shape': (6,), }", f4, 24, SDC_OK, NULL,
                 "Fortran order of a 1-d array");
    expect_parse("{'descr': '<f4', 'fortran_order': True, 'shape': (1, 6, 1), }", f4, 24, SDC_OK,
                 NULL, "Fortran order with one non-unit dimension");
    float seven[7] = {0};
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", seven, 28, SDC_OK,
                 NULL, "trailing data is ignored, as np.load does");

    /* the file reader converts in 64 KiB chunks: cross several chunk boundaries */
    enum { N = 100003 };
    uint16_t *big = malloc(N * 2);
    for (int i = 0; i < N; i++) big[i] = sdc_f32_to_f16((float)(i % 2048) - 1024.0f);
    size_t len;
    unsigned char *b = make_npy(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (100003,), }",
                                big, N * 2, &len);
    const char *path = tmp_path("big_f2.npy");
    CHECK(write_all(path, b, len), "write %s", path);
    sdc_npy a;
    sdc_error err = {0};
    CHECK(sdc_npy_read_f32(path, &a, &err) == SDC_OK, "read big f2: %s", err.msg);
    int bad = 0;
    for (int i = 0; i < N && a.data; i++) bad += a.data[i] != (float)(i % 2048) - 1024.0f;
    CHECK(a.numel == N && bad == 0, "big f2: %d wrong values", bad);
    sdc_npy_free(&a);
    free(b);
    free(big);
    printf("  dtypes: f4 f2 f8 i8 i4 i1 u1 b1 in versions 1.0, 2.0, 3.0 convert exactly\n");
}

/* ---- hostile input ---- */
static void test_hostile(void) {
    float d[8] = {0};
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", d, 20,
                 SDC_E_FORMAT, "t.npy: data holds 20 bytes but float32 [2, 3] needs 24",
                 "truncated data");
    expect_parse("{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }", d, 0, SDC_E_FORMAT,
                 "t.npy: data holds 0 bytes but float16 [4] needs 8", "no data");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (1099511627776,), }", d, 8,
                 SDC_E_FORMAT, "needs 4398046511104", "huge shape, short file");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }",
                 d, 8, SDC_E_LIMIT, "too many elements", "shape product overflows");
    expect_parse("{'descr': '<f8', 'fortran_order': False, 'shape': (2305843009213693952,), }", d,
                 8, SDC_E_LIMIT, "too many elements", "byte size overflows");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", d,
                 8, SDC_E_LIMIT, "too large", "dimension overflows int64");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", d,
                 8, SDC_E_LIMIT, "more than 8 dimensions", "9 dimensions");
    expect_parse("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", d, 8,
                 SDC_E_UNSUPPORTED, "big-endian", "big-endian");
    expect_parse("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", d, 24,
                 SDC_E_UNSUPPORTED, "Fortran-order", "Fortran order");
    expect_parse("{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", d, 16,
                 SDC_E_UNSUPPORTED, "dtype '<c8' is not supported", "complex dtype");
    expect_parse("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", d, 8,
                 SDC_E_UNSUPPORTED, "structured", "structured dtype");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (2), }", d, 8, SDC_E_FORMAT,
                 "not a tuple", "shape (2) is an int");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': [2], }", d, 8, SDC_E_FORMAT,
                 "not a tuple", "shape as a list");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (-2,), }", d, 8, SDC_E_FORMAT,
                 "negative", "negative dimension");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (2.5,), }", d, 8, SDC_E_FORMAT,
                 "expected ',' or ')'", "float dimension");
    expect_parse("{'descr': '<f4', 'fortran_order': False, }", d, 8, SDC_E_FORMAT, "no 'shape'",
                 "missing shape");
    expect_parse("{'descr': '<f4', 'shape': (2,), }", d, 8, SDC_E_FORMAT, "no 'fortran_order'",
                 "missing fortran_order");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", d, 8,
                 SDC_E_FORMAT, "unexpected key 'x'", "extra key");
    expect_parse("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", d, 8,
                 SDC_E_FORMAT, "duplicate", "duplicate key");
    expect_parse("{'descr': '<f4', 'fortran_order': Falsey, 'shape': (2,)}", d, 8, SDC_E_FORMAT,
                 "True or False", "bad boolean");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape: (2,)}", d, 8, SDC_E_FORMAT,
                 "unterminated string", "broken quotes");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", d, 8, SDC_E_FORMAT,
                 "trailing", "garbage after the dict");
    expect_parse("{'descr': '<f4', 'fortran_order': False, 'shape': (2,", d, 8, SDC_E_FORMAT,
                 NULL, "unterminated dict");
    expect_parse("", d, 8, SDC_E_FORMAT, "expected '{'", "empty header");

    /* broken prefixes */
    sdc_npy a;
    sdc_error err = {0};
    CHECK(sdc_npy_parse_f32("", 0, "e.npy", &a, &err) == SDC_E_FORMAT, "empty buffer");
    CHECK(sdc_npy_parse_f32("\x93NUMPZ\x01\x00\x10\x00", 10, "m.npy", &a, &err) == SDC_E_FORMAT &&
              strstr(err.msg, "m.npy: not an .npy file"),
          "bad magic: %s", err.msg);
    CHECK(sdc_npy_parse_f32("\x93NUMPY\x04\x00\x10\x00", 10, "v.npy", &a, &err) ==
                  SDC_E_UNSUPPORTED &&
              strstr(err.msg, "version 4.0"),
          "version 4.0: %s", err.msg);
    CHECK(sdc_npy_parse_f32("\x93NUMPY\x01\x00\x50\x00{'descr'", 17, "t.npy", &a, &err) ==
              SDC_E_FORMAT && strstr(err.msg, "truncated"),
          "header beyond the end: %s", err.msg);
    CHECK(sdc_npy_parse_f32("\x93NUMPY\x02\x00\xff\xff\xff\x7f{", 13, "t.npy", &a, &err) ==
              SDC_E_LIMIT && strstr(err.msg, "exceeds the 10000-byte limit"),
          "2 GB header: %s", err.msg);
    CHECK(sdc_npy_parse_f32("\x93NUMPY\x02\x00\x10", 9, "t.npy", &a, &err) == SDC_E_FORMAT,
          "truncated v2 length");
    CHECK(sdc_npy_read_f32(tmp_path("absent.npy"), &a, &err) == SDC_E_IO &&
              strstr(err.msg, "absent.npy: cannot open"),
          "missing file: %s", err.msg);
    CHECK(sdc_npy_read_f32(tmpdir, &a, &err) == SDC_E_IO, "directory: %s", err.msg);

    /* the same truncated-data error through the file reader */
    size_t len;
    unsigned char *b = make_npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                                d, 20, &len);
    const char *path = tmp_path("short.npy");
    write_all(path, b, len);
    char want[300];
    snprintf(want, sizeof want, "%s: data holds 20 bytes but float32 [2, 3] needs 24", path);
    CHECK(sdc_npy_read_f32(path, &a, &err) == SDC_E_FORMAT && strcmp(err.msg, want) == 0,
          "file reader message: '%s'", err.msg);
    free(b);

    /* every truncation of a valid file fails cleanly; random corruptions never crash */
    float x[6] = {1, 2, 3, 4, 5, 6};
    int64_t shape[2] = {2, 3};
    void *enc;
    CHECK(sdc_npy_encode_f32(x, 2, shape, &enc, &len, &err) == SDC_OK, "encode");
    int truncation_ok = 1;
    for (size_t n = 0; n < len; n++) {
        if (sdc_npy_parse_f32(enc, n, "cut", &a, &err) == SDC_OK) truncation_ok = 0;
        sdc_npy_free(&a);
    }
    CHECK(truncation_ok, "a truncated file was accepted");
    unsigned char *mut = malloc(len);
    uint32_t rng = 12345;
    int accepted = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(mut, enc, len);
        int flips = 1 + it % 4;
        for (int k = 0; k < flips; k++) {
            rng = rng * 1664525u + 1013904223u;
            size_t pos = (rng >> 8) % 128; /* the header */
            rng = rng * 1664525u + 1013904223u;
            mut[pos] = (unsigned char)(rng >> 24);
        }
        if (sdc_npy_parse_f32(mut, len, "mut", &a, &err) == SDC_OK) {
            accepted++;
            CHECK(a.numel <= (int64_t)len, "accepted more elements than bytes");
        }
        sdc_npy_free(&a);
    }
    printf("  hostile: %zu truncations refused; %d of 20000 header corruptions still parse\n", len,
           accepted);
    free(mut);
    free(enc);
}

/* ---- bad arguments and atomic writes ---- */
static void test_write_errors(void) {
    float x[4] = {1, 2, 3, 4};
    int64_t shape[2] = {2, 2}, neg[1] = {-1};
    sdc_error err = {0};
    const char *p = tmp_path("bad.npy");
    CHECK(sdc_npy_write_f32(p, x, 9, shape, &err) == SDC_E_INVALID_ARG, "ndim 9");
    CHECK(sdc_npy_write_f32(p, x, 1, neg, &err) == SDC_E_INVALID_ARG, "negative dim");
    CHECK(sdc_npy_write_f32(p, NULL, 2, shape, &err) == SDC_E_INVALID_ARG, "NULL data");
    CHECK(!exists(p), "a refused write created the file");

    /* missing directory: nothing created */
    p = tmp_path("nodir/x.npy");
    CHECK(sdc_npy_write_f32(p, x, 2, shape, &err) == SDC_E_IO && strstr(err.msg, "cannot create"),
          "missing dir: %s", err.msg);
    /* the target is a directory: the rename fails and the temporary is removed */
    p = tmp_path("isdir.npy");
    mkdir(p, 0700);
    CHECK(sdc_npy_write_f32(p, x, 2, shape, &err) == SDC_E_IO && strstr(err.msg, "rename"),
          "rename onto a directory: %s", err.msg);
    CHECK(!exists(tmp_path("isdir.npy.tmp")), "temporary left after a failed rename");
    rmdir(p);
    /* overwriting an existing file replaces it whole */
    p = tmp_path("over.npy");
    write_all(p, "old contents", 12);
    CHECK(sdc_npy_write_f32(p, x, 2, shape, &err) == SDC_OK, "overwrite: %s", err.msg);
    sdc_npy a;
    CHECK(sdc_npy_read_f32(p, &a, &err) == SDC_OK && a.numel == 4 && a.data[3] == 4.0f,
          "overwritten file reads back");
    sdc_npy_free(&a);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sdc_test_npy_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_writer_bytes();
    test_write_i64();
    test_dtypes();
    test_hostile();
    test_write_errors();
    const char *names[] = {"w.npy", "ids.npy", "big_f2.npy", "short.npy", "over.npy"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) remove(tmp_path(names[i]));
    rmdir(tmpdir);
    TEST_MAIN_END();
}
