/* src/io/png.c: PNG writing with libpng, and the float -> uint8 image conversion (see png.h).
 *
 * libpng reports errors by calling an error function that must not return; ours records the
 * message and longjmps back into write_body(), which keeps every resource it owns outside the
 * setjmp scope so nothing needs to be volatile. The caller of write_body() frees.
 */
#include "io/png.h"

#include <errno.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* Text: UTF-8 -> Latin-1 when possible (tEXt), else UTF-8 as is (iTXt)                           */
/* ---------------------------------------------------------------------------------------------- */

/* Decodes one UTF-8 sequence at s[0..n); returns its length and stores the code point, or returns
 * 0 for an invalid sequence (overlong, surrogate, beyond U+10FFFF, truncated). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
    unsigned char c = s[0];
    size_t len;
    uint32_t v, min;
    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if ((c & 0xe0) == 0xc0) {
        len = 2, v = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
        len = 3, v = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
        len = 4, v = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (n < len) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return 0;
    *cp = v;
    return len;
}

/* Validates `utf8`; when every character fits Latin-1, *latin1 receives a malloc'd Latin-1 copy
 * (tEXt), otherwise *latin1 stays NULL (iTXt with the UTF-8 as is). */
static sdc_status prepare_text(const char *utf8, char **latin1, sdc_error *err) {
    *latin1 = NULL;
    const unsigned char *s = (const unsigned char *)utf8;
    size_t n = strlen(utf8), i = 0, chars = 0;
    int fits = 1;
    while (i < n) {
        uint32_t cp = 0;
        size_t l = utf8_decode(s + i, n - i, &cp);
        if (!l)
            return sdc_fail(err, SDC_E_INVALID_ARG,
                            "PNG text 'parameters' is not valid UTF-8 (byte %zu)", i);
        if (cp > 0xff) fits = 0;
        i += l;
        chars++;
    }
    if (!fits) return SDC_OK;
    char *out = malloc(chars + 1);
    if (!out) return sdc_fail(err, SDC_E_NOMEM, "PNG text: out of memory");
    for (i = 0, chars = 0; i < n;) {
        uint32_t cp = 0;
        i += utf8_decode(s + i, n - i, &cp);
        out[chars++] = (char)(unsigned char)cp;
    }
    out[chars] = '\0';
    *latin1 = out;
    return SDC_OK;
}

/* ---------------------------------------------------------------------------------------------- */
/* Writing                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

typedef struct write_ctx {
    sdc_png_write_fn fn;
    void *user;
    int sink_failed; /* the callback refused bytes */
    char msg[160];   /* libpng's message */
} write_ctx;

static void on_error(png_structp png, png_const_charp msg) {
    write_ctx *c = png_get_error_ptr(png);
    snprintf(c->msg, sizeof c->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png; /* the library never prints */
    (void)msg;
}

static void on_write(png_structp png, png_bytep data, size_t len) {
    write_ctx *c = png_get_io_ptr(png);
    if (c->fn(c->user, data, len) != 0) {
        c->sink_failed = 1;
        png_error(png, "the output refused the data");
    }
}

static void on_flush(png_structp png) { (void)png; }

/* Everything that can longjmp happens here; returns 0 on success, 1 after a libpng error. */
static int write_body(png_structp png, png_infop info, write_ctx *c, const uint8_t *rgb, int width,
                      int height, const char *utf8, const char *latin1) {
    if (setjmp(png_jmpbuf(png))) return 1;
    png_set_write_fn(png, c, on_write, on_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (utf8) {
        png_text t;
        memset(&t, 0, sizeof t);
        t.key = "parameters";
        if (latin1) { /* Pillow's add_text: tEXt when the text encodes as Latin-1 */
            t.compression = PNG_TEXT_COMPRESSION_NONE;
            t.text = (char *)latin1;
            t.text_length = strlen(latin1);
        } else { /* ... and an uncompressed iTXt otherwise */
            t.compression = PNG_ITXT_COMPRESSION_NONE;
            t.text = (char *)utf8;
            t.itxt_length = strlen(utf8);
            t.lang = "";
            t.lang_key = "";
        }
        png_set_text(png, info, &t, 1);
    }
    png_write_info(png, info);
    for (int y = 0; y < height; y++)
        png_write_row(png, (png_const_bytep)(rgb + (size_t)y * (size_t)width * 3));
    png_write_end(png, NULL); /* the text chunk went before IDAT */
    return 0;
}

static sdc_status check_args(const uint8_t *rgb, int width, int height, sdc_error *err) {
    if (!rgb) return sdc_fail(err, SDC_E_INVALID_ARG, "PNG: NULL pixel buffer");
    if (width < 1 || width > SDC_PNG_MAX_DIM || height < 1 || height > SDC_PNG_MAX_DIM)
        return sdc_fail(err, SDC_E_INVALID_ARG, "PNG: size %dx%d is not in 1..%d", width, height,
                        SDC_PNG_MAX_DIM);
    return SDC_OK;
}

sdc_status sdc_png_write_to_func(sdc_png_write_fn fn, void *ctx, const uint8_t *rgb, int width,
                                 int height, const char *parameters, sdc_error *err) {
    if (!fn) return sdc_fail(err, SDC_E_INVALID_ARG, "PNG: NULL write function");
    SDC_TRY(check_args(rgb, width, height, err));
    char *latin1 = NULL;
    if (parameters) SDC_TRY(prepare_text(parameters, &latin1, err));

    write_ctx c = {.fn = fn, .user = ctx};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    sdc_status st = SDC_OK;
    if (!png || !info) st = sdc_fail(err, SDC_E_NOMEM, "PNG: cannot create the libpng writer");
    else if (write_body(png, info, &c, rgb, width, height, parameters, latin1) != 0)
        st = c.sink_failed ? sdc_fail(err, SDC_E_IO, "PNG: the output refused the data")
                           : sdc_fail(err, SDC_E_BACKEND, "PNG: libpng: %s", c.msg);
    png_destroy_write_struct(&png, &info); /* accepts NULLs */
    free(latin1);
    return st;
}

typedef struct file_sink {
    FILE *f;
    int err; /* errno of the failed fwrite */
} file_sink;

static int file_write(void *ctx, const void *data, size_t len) {
    file_sink *s = ctx;
    if (fwrite(data, 1, len, s->f) == len) return 0;
    s->err = errno ? errno : EIO;
    return -1;
}

sdc_status sdc_png_write(const char *path, const uint8_t *rgb, int width, int height,
                         const char *parameters, sdc_error *err) {
    if (!path) return sdc_fail(err, SDC_E_INVALID_ARG, "PNG: NULL path");
    SDC_TRY(check_args(rgb, width, height, err)); /* before creating anything */
    size_t plen = strlen(path);
    char *tmp = malloc(plen + 5);
    if (!tmp) return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory", path);
    memcpy(tmp, path, plen);
    memcpy(tmp + plen, ".tmp", 5);

    sdc_status st;
    file_sink sink = {fopen(tmp, "wb"), 0};
    if (!sink.f) {
        st = sdc_fail(err, SDC_E_IO, "%s: cannot create: %s", tmp, strerror(errno));
        free(tmp);
        return st;
    }
    st = sdc_png_write_to_func(file_write, &sink, rgb, width, height, parameters, err);
    if (st == SDC_E_IO && sink.err)
        sdc_fail(err, st, "%s: write failed: %s", tmp, strerror(sink.err));
    if (fclose(sink.f) != 0 && st == SDC_OK)
        st = sdc_fail(err, SDC_E_IO, "%s: write failed: %s", tmp, strerror(errno));
    if (st == SDC_OK && rename(tmp, path) != 0)
        st = sdc_fail(err, SDC_E_IO, "%s: cannot rename %s into place: %s", path, tmp,
                      strerror(errno));
    if (st != SDC_OK) remove(tmp);
    free(tmp);
    return st;
}

/* ---------------------------------------------------------------------------------------------- */
/* float [3, H, W] in [-1, 1] -> uint8 [H, W, 3]                                                   */
/* ---------------------------------------------------------------------------------------------- */

void sdc_image_to_u8(const float *image, int height, int width, uint8_t *rgb) {
    size_t plane = (size_t)height * (size_t)width;
    for (int c = 0; c < 3; c++) {
        const float *src = image + (size_t)c * plane; // [H, W] of channel c
        for (size_t i = 0; i < plane; i++) {
            /* diffusers VaeImageProcessor: (x / 2 + 0.5).clamp(0, 1), then numpy
             * (x * 255).round().astype(uint8), all float32; nearbyintf in the default rounding
             * mode rounds half to even like np.round. */
            float v = src[i] / 2.0f + 0.5f;
            if (!(v >= 0.0f)) v = 0.0f; /* also NaN */
            if (v > 1.0f) v = 1.0f;
            rgb[i * 3 + (size_t)c] = (uint8_t)nearbyintf(v * 255.0f);
        }
    }
}
