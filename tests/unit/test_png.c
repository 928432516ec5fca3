/* tests/unit/test_png.c: the PNG writer and the float -> uint8 conversion (src/io/png.h).
 *
 * - PNGs written by sdc_png_write read back with libpng to the exact pixels, 8-bit RGB;
 * - the "parameters" chunk is tEXt with Latin-1 bytes when the text fits Latin-1 and an
 *   uncompressed iTXt with the UTF-8 otherwise, byte for byte, and comes before the image data
 *   (checked by walking the raw chunks, not only through libpng);
 * - sdc_png_write_to_func produces the same bytes; a refusing callback, invalid UTF-8, bad sizes
 *   and unwritable paths fail cleanly, and no PATH.tmp is left behind;
 * - sdc_image_to_u8 equals diffusers' uint8 output for the golden VAE images exactly, and rounds
 *   half to even, clamps and maps NaN to 0.
 */
#include "io/png.h"
#include "io/safetensors.h"

#include "test.h"

#include <png.h>
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

static int exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

typedef struct membuf {
    unsigned char *p;
    size_t len, cap, pos;
    size_t fail_after; /* the callback refuses once this many bytes were taken (0 = never) */
} membuf;

static int mem_write(void *ctx, const void *data, size_t len) {
    membuf *m = ctx;
    if (m->fail_after && m->len + len > m->fail_after) return -1;
    if (m->len + len > m->cap) {
        m->cap = (m->len + len) * 2;
        m->p = realloc(m->p, m->cap);
    }
    memcpy(m->p + m->len, data, len);
    m->len += len;
    return 0;
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

/* ---- a libpng reader for the checks ---- */

typedef struct decoded {
    int ok, width, height, bit_depth, color_type;
    unsigned char *pixels; /* [H, W, 3] */
    int n_text;
    char key[80];
    char *text;
    size_t text_len;
    int compression; /* -1 tEXt, 0 zTXt, 1 iTXt uncompressed, 2 iTXt compressed */
} decoded;

static void rd(png_structp png, png_bytep out, size_t n) {
    membuf *m = png_get_io_ptr(png);
    if (m->pos + n > m->len) png_error(png, "read past the end");
    memcpy(out, m->p + m->pos, n);
    m->pos += n;
}

static void quiet(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static decoded decode(const unsigned char *bytes, size_t len) {
    decoded d;
    memset(&d, 0, sizeof d);
    membuf m = {(unsigned char *)bytes, len, len, 0, 0};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, quiet);
    png_infop info = png_create_info_struct(png);
    png_infop end = png_create_info_struct(png);
    unsigned char *volatile pixels = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, &end);
        free(pixels);
        d.pixels = NULL;
        d.ok = 0;
        return d;
    }
    png_set_read_fn(png, &m, rd);
    png_read_info(png, info);
    d.width = (int)png_get_image_width(png, info);
    d.height = (int)png_get_image_height(png, info);
    d.bit_depth = png_get_bit_depth(png, info);
    d.color_type = png_get_color_type(png, info);
    if (d.width <= 0 || d.height <= 0 || d.width > 4096 || d.height > 4096 ||
        png_get_rowbytes(png, info) != (size_t)d.width * 3)
        png_error(png, "unexpected layout");
    pixels = malloc((size_t)d.width * d.height * 3);
    for (int y = 0; y < d.height; y++) png_read_row(png, pixels + (size_t)y * d.width * 3, NULL);
    png_read_end(png, end);
    png_textp t;
    int n = 0;
    png_get_text(png, info, &t, &n);
    d.n_text = n;
    if (n >= 1) {
        snprintf(d.key, sizeof d.key, "%s", t[0].key);
        d.compression = t[0].compression;
        d.text_len = t[0].compression >= 1 ? t[0].itxt_length : t[0].text_length;
        d.text = malloc(d.text_len + 1);
        memcpy(d.text, t[0].text, d.text_len);
        d.text[d.text_len] = '\0';
    }
    png_destroy_read_struct(&png, &info, &end);
    d.pixels = pixels;
    d.ok = 1;
    return d;
}

static void decoded_free(decoded *d) {
    free(d->pixels);
    free(d->text);
}

/* Walks the chunks: returns the data of the first text chunk (tEXt or iTXt) in *chunk, and
 * checks the order IHDR, ..., text, ..., IDAT..., IEND. */
static int walk_chunks(const unsigned char *b, size_t len, char type[5], const unsigned char **data,
                       size_t *dlen) {
    if (len < 8 || memcmp(b, "\x89PNG\r\n\x1a\n", 8) != 0) return 0;
    size_t p = 8;
    int idx = 0, seen_idat = 0, text_before_idat = 1, seen_end = 0;
    type[0] = 0;
    while (p + 12 <= len) {
        size_t n = (size_t)b[p] << 24 | (size_t)b[p + 1] << 16 | (size_t)b[p + 2] << 8 | b[p + 3];
        const unsigned char *t = b + p + 4;
        if (p + 12 + n > len) return 0;
        if (idx == 0 && memcmp(t, "IHDR", 4) != 0) return 0;
        if (!memcmp(t, "IDAT", 4)) seen_idat = 1;
        if (!memcmp(t, "tEXt", 4) || !memcmp(t, "iTXt", 4) || !memcmp(t, "zTXt", 4)) {
            if (seen_idat) text_before_idat = 0;
            if (!type[0]) {
                memcpy(type, t, 4);
                type[4] = 0;
                *data = t + 4;
                *dlen = n;
            }
        }
        if (!memcmp(t, "IEND", 4)) {
            seen_end = p + 12 + n == len;
            break;
        }
        p += 12 + n;
        idx++;
    }
    return seen_end && text_before_idat;
}

static unsigned char *test_image(int w, int h) {
    unsigned char *rgb = malloc((size_t)w * h * 3);
    for (int i = 0; i < w * h * 3; i++) rgb[i] = (unsigned char)(i * 7 + i / 13);
    return rgb;
}

/* Writes w x h with `text` to a file and checks everything that comes back. */
static void roundtrip(const char *what, int w, int h, const char *text, const char *want_type,
                      const char *want_bytes, size_t want_len) {
    unsigned char *rgb = test_image(w, h);
    const char *path = tmp_path("rt.png");
    sdc_error err = {0};
    CHECK(sdc_png_write(path, rgb, w, h, text, &err) == SDC_OK, "%s: write: %s", what, err.msg);
    CHECK(!exists(tmp_path("rt.png.tmp")), "%s: temporary left behind", what);
    size_t len = 0;
    unsigned char *b = read_all(path, &len);
    decoded d = decode(b, len);
    CHECK(d.ok && d.width == w && d.height == h && d.bit_depth == 8 &&
              d.color_type == PNG_COLOR_TYPE_RGB,
          "%s: header %dx%d depth %d type %d", what, d.width, d.height, d.bit_depth, d.color_type);
    CHECK(d.ok && memcmp(d.pixels, rgb, (size_t)w * h * 3) == 0, "%s: pixels differ", what);

    char type[5];
    const unsigned char *cd = NULL;
    size_t cl = 0;
    CHECK(walk_chunks(b, len, type, &cd, &cl), "%s: chunk order", what);
    if (!text) {
        CHECK(d.n_text == 0 && type[0] == 0, "%s: unexpected text chunk", what);
    } else {
        CHECK(d.n_text == 1 && strcmp(d.key, "parameters") == 0, "%s: %d text chunks, key '%s'",
              what, d.n_text, d.key);
        CHECK(strcmp(type, want_type) == 0, "%s: chunk %s, want %s", what, type, want_type);
        /* tEXt: keyword NUL text; iTXt: keyword NUL flag method lang NUL tkey NUL text */
        size_t pre = strcmp(want_type, "tEXt") == 0 ? 11 : 15;
        CHECK(cd && cl == pre + want_len && memcmp(cd, "parameters\0", 11) == 0 &&
                  (pre == 11 || memcmp(cd + 11, "\0\0\0\0", 4) == 0) &&
                  memcmp(cd + pre, want_bytes, want_len) == 0,
              "%s: raw chunk data", what);
        CHECK(d.text_len == want_len && memcmp(d.text, want_bytes, want_len) == 0,
              "%s: libpng reads back different text", what);
    }
    /* the callback variant writes the very same bytes */
    membuf m = {0};
    CHECK(sdc_png_write_to_func(mem_write, &m, rgb, w, h, text, &err) == SDC_OK, "%s: func: %s",
          what, err.msg);
    CHECK(m.len == len && memcmp(m.p, b, len) == 0, "%s: func bytes differ from the file", what);
    free(m.p);
    decoded_free(&d);
    free(b);
    free(rgb);
    remove(path);
}

static void test_roundtrips(void) {
    const char *a1111 = "1girl, upper body\nNegative prompt: easynegative\nSteps: 20, Sampler: "
                        "DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234, Size: 64x48";
    roundtrip("ascii", 64, 48, a1111, "tEXt", a1111, strlen(a1111));
    /* U+00E9 and U+00A0 fit Latin-1: tEXt with the single bytes 0xE9 0xA0 */
    roundtrip("latin-1", 5, 3, "caf\xc3\xa9\xc2\xa0x", "tEXt", "caf\xe9\xa0x", 6);
    /* CJK and emoji do not: iTXt with the UTF-8 unchanged */
    const char *cjk = "\xe5\xa5\xb3\xe5\xad\xa9, smile \xf0\x9f\x98\x80, caf\xc3\xa9";
    roundtrip("utf-8", 7, 9, cjk, "iTXt", cjk, strlen(cjk));
    roundtrip("no text", 1, 1, NULL, "", "", 0);
    roundtrip("empty text", 3, 2, "", "tEXt", "", 0);
    char *big = malloc(20001);
    for (int i = 0; i < 20000; i++) big[i] = "abc, (x:1.2)\n"[i % 13];
    big[20000] = 0;
    roundtrip("20000-byte text", 320, 480, big, "tEXt", big, 20000);
    free(big);
    printf("  round trips: pixels exact; tEXt (ASCII, Latin-1) and iTXt (UTF-8) chunks exact\n");
}

static void test_errors(void) {
    unsigned char *rgb = test_image(8, 8);
    sdc_error err = {0};
    const char *p = tmp_path("e.png");
    CHECK(sdc_png_write(p, rgb, 0, 8, NULL, &err) == SDC_E_INVALID_ARG, "width 0");
    CHECK(sdc_png_write(p, rgb, 8, -1, NULL, &err) == SDC_E_INVALID_ARG, "height -1");
    CHECK(sdc_png_write(p, rgb, SDC_PNG_MAX_DIM + 1, 1, NULL, &err) == SDC_E_INVALID_ARG,
          "width too large");
    CHECK(sdc_png_write(p, NULL, 8, 8, NULL, &err) == SDC_E_INVALID_ARG, "NULL pixels");
    /* invalid UTF-8: stray continuation, overlong '/', surrogate, truncated sequence */
    const char *bad[] = {"a\x80", "\xc0\xaf", "\xed\xa0\x80", "ab\xe5\xa5"};
    for (int i = 0; i < 4; i++) {
        CHECK(sdc_png_write(p, rgb, 8, 8, bad[i], &err) == SDC_E_INVALID_ARG &&
                  strstr(err.msg, "not valid UTF-8"),
              "bad UTF-8 %d: %s", i, err.msg);
    }
    CHECK(!exists(p) && !exists(tmp_path("e.png.tmp")), "a refused write left a file");

    /* a callback that gives up part way: SDC_E_IO, nothing leaked (ASan) */
    membuf whole = {0};
    CHECK(sdc_png_write_to_func(mem_write, &whole, rgb, 8, 8, "x", &err) == SDC_OK, "8x8 write");
    free(whole.p);
    for (size_t after = 1; after < whole.len; after += 7) {
        membuf m = {0};
        m.fail_after = after;
        CHECK(sdc_png_write_to_func(mem_write, &m, rgb, 8, 8, "x", &err) == SDC_E_IO,
              "refusing callback after %zu bytes: %s", after, err.msg);
        free(m.p);
    }
    CHECK(sdc_png_write_to_func(NULL, NULL, rgb, 8, 8, NULL, &err) == SDC_E_INVALID_ARG, "NULL fn");

    p = tmp_path("nodir/x.png");
    CHECK(sdc_png_write(p, rgb, 8, 8, "x", &err) == SDC_E_IO && strstr(err.msg, "cannot create"),
          "missing directory: %s", err.msg);
    p = tmp_path("isdir.png");
    mkdir(p, 0700);
    CHECK(sdc_png_write(p, rgb, 8, 8, "x", &err) == SDC_E_IO && strstr(err.msg, "rename"),
          "rename onto a directory: %s", err.msg);
    CHECK(!exists(tmp_path("isdir.png.tmp")), "temporary left after a failed rename");
    rmdir(p);
    free(rgb);
    printf("  errors: bad sizes, invalid UTF-8, refusing callback, unwritable paths\n");
}

/* ---- float -> uint8 ---- */

static void test_to_u8_golden(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/testdata/tiny/golden.safetensors", SDC_SHARED_DIR);
    sdc_st_file *st = NULL;
    sdc_error err = {0};
    CHECK(sdc_st_open(path, &st, &err) == SDC_OK, "open golden: %s", err.msg);
    if (!st) return;
    const char *sizes[] = {"64x64", "96x64"};
    for (int s = 0; s < 2; s++) {
        char name[64], name_u8[64];
        snprintf(name, sizeof name, "vae.%s.image", sizes[s]);
        snprintf(name_u8, sizeof name_u8, "vae.%s.image_u8", sizes[s]);
        const sdc_st_tensor *img = sdc_st_find(st, name), *u8 = sdc_st_find(st, name_u8);
        CHECK(img && u8, "tensors %s / %s present", name, name_u8);
        if (!img || !u8) continue;
        CHECK(img->dtype == SDC_F32 && img->ndim == 4 && img->shape[0] == 1 && img->shape[1] == 3,
              "%s layout", name);
        int h = (int)img->shape[2], w = (int)img->shape[3];
        CHECK(u8->dtype == SDC_U8 && u8->ndim == 3 && u8->shape[0] == h && u8->shape[1] == w &&
                  u8->shape[2] == 3,
              "%s layout", name_u8);
        if (u8->nbytes != (size_t)h * w * 3 || img->nbytes != (size_t)h * w * 12) continue;
        unsigned char *out = malloc((size_t)h * w * 3);
        sdc_image_to_u8(img->data, h, w, out);
        int diff = 0, clipped = 0;
        const unsigned char *ref = u8->data;
        for (int i = 0; i < h * w * 3; i++) {
            diff += out[i] != ref[i];
            clipped += out[i] == 0 || out[i] == 255;
        }
        printf("  %-48s %d of %d bytes differ (%d at 0 or 255)\n", name_u8, diff, h * w * 3,
               clipped);
        CHECK(diff == 0, "%s: %d bytes differ from diffusers", name_u8, diff);
        free(out);
    }
    sdc_st_close(st);
}

static void test_to_u8_rules(void) {
    /* [1, 3, 1, 4]: channel-major in, pixel-major out */
    float img[12] = {-1.0f, 1.0f, 0.0f, -2.0f, /* R of pixels 0..3 */
                     5.0f,  NAN,  -0.5f, 0.5f, /* G */
                     INFINITY, -INFINITY, 1e-8f, -1e-8f};
    unsigned char out[12];
    sdc_image_to_u8(img, 1, 4, out);
    /* 0 -> 127.5 -> 128 (half to even); 0.5 -> 0.75*255 = 191.25 -> 191; -0.5 -> 63.75 -> 64 */
    const unsigned char want[12] = {0, 255, 255, 255, 0, 0, 128, 64, 128, 0, 191, 128};
    CHECK(memcmp(out, want, 12) == 0,
          "rules: got %d %d %d  %d %d %d  %d %d %d  %d %d %d", out[0], out[1], out[2], out[3],
          out[4], out[5], out[6], out[7], out[8], out[9], out[10], out[11]);

    /* a tie at an even integer + 0.5 must round down (round-half-away would give 127) */
    float v = 126.5f / 255.0f, x = 0.0f;
    int found = 0;
    for (int i = 0; i < 64 && !found; i++, v = nextafterf(v, 1.0f)) {
        float cand = (v - 0.5f) * 2.0f; /* exact for v in [0.25, 1] */
        if (v * 255.0f == 126.5f && cand / 2.0f + 0.5f == v) {
            x = cand;
            found = 1;
        }
    }
    v = 126.5f / 255.0f;
    for (int i = 0; i < 64 && !found; i++, v = nextafterf(v, 0.0f)) {
        float cand = (v - 0.5f) * 2.0f;
        if (v * 255.0f == 126.5f && cand / 2.0f + 0.5f == v) {
            x = cand;
            found = 1;
        }
    }
    CHECK(found, "no float32 input gives exactly 126.5");
    if (found) {
        float t[3] = {x, x, x};
        unsigned char o[3];
        sdc_image_to_u8(t, 1, 1, o);
        CHECK(o[0] == 126, "tie 126.5 rounds to %d, want 126 (half to even)", o[0]);
    }
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sdc_test_png_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_roundtrips();
    test_errors();
    test_to_u8_rules();
    test_to_u8_golden();
    rmdir(tmpdir);
    TEST_MAIN_END();
}
