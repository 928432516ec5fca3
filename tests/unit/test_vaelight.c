/* tests/unit/test_vaelight.c: the vaelight preview decoder (src/model/vaelight.h), its kernels
 * (src/ops/nn_extra.h) and the bounded ONNX reader (src/onnx/onnx_io.h).
 *
 * - kernels against their plain references: transposed conv k2 s2 (one band and several bands of
 *   rows), bilinear resize with half-pixel centres (x2, x4, x8, non-integer and shrinking
 *   factors, accumulate), LeakyReLU, clip (NaN passes); the same bits with 1 and 3 threads;
 * - VAEpreview.onnx (shared copy, and the one shipped in data/vaelight/) loads: 266,780
 *   parameters, 28 conv layers; a real SD1.5 latent (Axera's calib_data_vae_256.tar, cropped
 *   to 16x12) decodes to an image in [-1, 1] that is clip(sum of the four branches resized by the
 *   reference resize) within 1e-6, identical with 1 and 3 threads; sdc_vaelight_write_png
 *   writes a 96x128 PNG from it, scaled or not;
 * - refusals, each one line with the right status: VAEencoder.onnx, empty, random and truncated
 *   files, a directory, a missing file, protobuf nested 30 deep, a 4 MB graph of empty nodes
 *   that would decode to hundreds of MB, and VAEpreview.onnx edited with protobuf-c (a Relu, a
 *   stride-2 conv, a missing output, two chains merged, a custom opset, a bad bias shape).
 * Agreement with ONNX Runtime itself is tests/cli/vaelight.sh's job.
 */
#include "model/vaelight.h"

#include "io/pickle_dict.h"
#include "io/tar.h"
#include "onnx/onnx_io.h"
#include "ops/nn_extra.h"
#include "test.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define PREVIEW SDC_SHARED_DIR "/models/vaelight/VAEpreview.onnx"
#define ENCODER SDC_SHARED_DIR "/models/vaelight/VAEencoder.onnx"
#define SHIPPED SDC_SOURCE_DIR "/data/vaelight/VAEpreview.onnx"
#define CALIB256 SDC_SHARED_DIR "/models/axera-sd15-lcm-calib/calib_data_vae_256.tar"

static char tmpdir[64];

static uint32_t rng = 12345;
static float frand(void) { /* uniform in [-1, 1) */
    rng = rng * 1664525u + 1013904223u;
    return (float)((rng >> 8) & 0xffffff) / 8388608.0f - 1.0f;
}

static float *randv(int64_t n) {
    float *v = malloc((size_t)n * sizeof(float));
    for (int64_t i = 0; i < n; i++) v[i] = frand();
    return v;
}

static double max_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= m)) m = d;
    }
    return m;
}

/* ------------------------------------------------------------------ kernels */

static void check_convt(int C, int H, int W, int O, sdc_pool *p1, sdc_pool *p3) {
    int64_t ny = (int64_t)O * 4 * H * W;
    float *x = randv((int64_t)C * H * W), *w = randv((int64_t)C * O * 4), *b = randv(O);
    float *ref = malloc(ny * sizeof(float)), *y1 = malloc(ny * sizeof(float)), *y3 = malloc(ny * sizeof(float));
    sdc_conv_transpose_k2s2_ref(x, C, H, W, w, O, b, ref);
    CHECK(sdc_conv_transpose_k2s2(p1, x, C, H, W, w, O, b, y1) == 0, "convt failed");
    CHECK(sdc_conv_transpose_k2s2(p3, x, C, H, W, w, O, b, y3) == 0, "convt failed");
    char what[96];
    snprintf(what, sizeof what, "convT k2s2 C%d %dx%d -> O%d", C, H, W, O);
    CHECK_CLOSE(max_diff(y1, ref, ny), 1e-5, what);
    CHECK(memcmp(y1, y3, ny * sizeof(float)) == 0, "%s: 1 and 3 threads differ", what);
    sdc_conv_transpose_k2s2_ref(x, C, H, W, w, O, NULL, ref); /* no bias */
    CHECK(sdc_conv_transpose_k2s2(p3, x, C, H, W, w, O, NULL, y3) == 0, "convt failed");
    CHECK(max_diff(y3, ref, ny) <= 1e-5, "%s: without bias", what);
    free(x), free(w), free(b), free(ref), free(y1), free(y3);
}

static void check_resize(int C, int H, int W, int Ho, int Wo, sdc_pool *p1, sdc_pool *p3) {
    int64_t n = (int64_t)C * Ho * Wo;
    float *x = randv((int64_t)C * H * W), *base = randv(n);
    float *ref = malloc(n * sizeof(float)), *y1 = malloc(n * sizeof(float)), *y3 = malloc(n * sizeof(float));
    sdc_resize_bilinear_ref(x, ref, C, H, W, Ho, Wo, 0);
    sdc_resize_bilinear(p1, x, y1, C, H, W, Ho, Wo, 0);
    sdc_resize_bilinear(p3, x, y3, C, H, W, Ho, Wo, 0);
    char what[96];
    snprintf(what, sizeof what, "resize %dx%d -> %dx%d", H, W, Ho, Wo);
    CHECK_CLOSE(max_diff(y1, ref, n), 1e-6, what);
    CHECK(memcmp(y1, y3, n * sizeof(float)) == 0, "%s: 1 and 3 threads differ", what);
    memcpy(ref, base, n * sizeof(float));
    memcpy(y1, base, n * sizeof(float));
    sdc_resize_bilinear_ref(x, ref, C, H, W, Ho, Wo, 1);
    sdc_resize_bilinear(p3, x, y1, C, H, W, Ho, Wo, 1);
    CHECK(max_diff(y1, ref, n) <= 2e-6, "%s: accumulate", what);
    free(x), free(base), free(ref), free(y1), free(y3);
}

static void kernels(void) {
    sdc_pool *p1 = sdc_pool_new(1), *p3 = sdc_pool_new(3);
    CHECK(p1 && p3, "no thread pool");
    check_convt(5, 7, 9, 6, p1, p3);
    check_convt(16, 40, 1000, 16, p1, p3); /* 16-row bands: three of them, the last short */
    check_convt(3, 3, 4100, 64, p1, p3);   /* a row over the band size: one row per band */
    check_resize(3, 4, 5, 32, 40, p1, p3);  /* x8 */
    check_resize(2, 8, 6, 32, 24, p1, p3);  /* x4 */
    check_resize(3, 16, 12, 32, 24, p1, p3); /* x2 */
    check_resize(1, 5, 7, 13, 9, p1, p3);   /* non-integer */
    check_resize(2, 9, 8, 3, 5, p1, p3);    /* shrinking */
    check_resize(1, 1, 1, 4, 4, p1, p3);    /* one pixel */
    /* exact half-pixel values: 2 -> 4 samples at src -0.25 (clamped), 0.25, 0.75, 1.25 */
    float x2[2] = {0.0f, 1.0f}, y4[4];
    sdc_resize_bilinear(NULL, x2, y4, 1, 1, 2, 1, 4, 0);
    CHECK(y4[0] == 0.0f && y4[1] == 0.25f && y4[2] == 0.75f && y4[3] == 1.0f,
          "half-pixel 2->4: %g %g %g %g", y4[0], y4[1], y4[2], y4[3]);
    float v[6] = {-2.0f, -0.5f, 0.0f, 0.5f, 3.0f, NAN}, l[6], c[6];
    sdc_leaky_relu(p3, v, l, 6, 0.01f);
    CHECK(l[0] == -0.02f && l[1] == -0.005f && l[2] == 0.0f && l[3] == 0.5f && l[4] == 3.0f, "leaky relu");
    sdc_clip(p3, v, c, 6, -1.0f, 1.0f);
    CHECK(c[0] == -1.0f && c[1] == -0.5f && c[3] == 0.5f && c[4] == 1.0f && c[5] != c[5], "clip");
    sdc_pool_free(p1);
    sdc_pool_free(p3);
}

/* ------------------------------------------------------------------ the real decoder */

/* A [1, 4, h, w] crop of the first latent of the 256 calibration tar. */
static float *real_latent(int h, int w, int y0, int x0) {
    sdc_tar t;
    sdc_error e = {0};
    sdc_tar_member m;
    bool has;
    float *z = NULL;
    if (sdc_tar_open(CALIB256, &t, &e) != SDC_OK || sdc_tar_next(&t, &m, &has, &e) != SDC_OK || !has) {
        CHECK(0, "%s", e.msg);
        return NULL;
    }
    sdc_pickle_dict d;
    if (sdc_npy_object_parse(m.data, m.size, m.name, &d, &e) == SDC_OK) {
        const sdc_pickle_array *x = sdc_pickle_dict_get(&d, "x");
        if (x && x->ndim == 4 && x->shape[2] >= y0 + h && x->shape[3] >= x0 + w) {
            z = malloc(sizeof(float) * 4 * h * w);
            for (int c = 0; c < 4; c++)
                for (int i = 0; i < h; i++)
                    memcpy(z + ((size_t)c * h + i) * w,
                           x->data + ((size_t)c * x->shape[2] + y0 + i) * x->shape[3] + x0,
                           sizeof(float) * w);
        }
        sdc_pickle_dict_free(&d);
    }
    sdc_tar_close(&t);
    CHECK(z != NULL, "no latent from %s", CALIB256);
    return z;
}

static void real_decoder(void) {
    sdc_vaelight *d = NULL, *d2 = NULL;
    sdc_error e = {0};
    CHECK(sdc_vaelight_load(PREVIEW, &d, &e) == SDC_OK, "%s", e.msg);
    CHECK(sdc_vaelight_load(SHIPPED, &d2, &e) == SDC_OK, "shipped copy: %s", e.msg);
    if (!d) return;
    printf("  VAEpreview.onnx: %lld parameters, %d layers\n", (long long)sdc_vaelight_params(d),
           sdc_vaelight_layers(d));
    CHECK(sdc_vaelight_params(d) == 266780 && sdc_vaelight_layers(d) == 28, "parameter/layer count");
    CHECK(sdc_vaelight_workspace_bytes(d, 64, 64) == (size_t)2 * 64 * 512 * 512 * 4, "workspace 64x64");
    CHECK(sdc_vaelight_workspace_bytes(d, 0, 64) == 0 && sdc_vaelight_workspace_bytes(d, 2000, 8) == 0,
          "workspace of bad sizes");

    const int h = 16, w = 12, H = 8 * h, W = 8 * w;
    float *z = real_latent(h, w, 8, 10);
    if (!z) goto out;
    sdc_pool *p1 = sdc_pool_new(1), *p3 = sdc_pool_new(3);
    float *img1 = malloc(sizeof(float) * 3 * H * W), *img3 = malloc(sizeof(float) * 3 * H * W);
    float *img2 = malloc(sizeof(float) * 3 * H * W), *sum = calloc(3 * (size_t)H * W, sizeof(float));
    float *br[4];
    for (int k = 0; k < 4; k++) br[k] = malloc(sizeof(float) * 3 * (h << k) * (w << k));
    CHECK(sdc_vaelight_decode_branches(d, z, h, w, img1, br, p1, &e) == SDC_OK, "%s", e.msg);
    CHECK(sdc_vaelight_decode(d, z, h, w, img3, p3, &e) == SDC_OK, "%s", e.msg);
    CHECK(memcmp(img1, img3, sizeof(float) * 3 * H * W) == 0, "1 and 3 threads give different images");
    if (d2) {
        CHECK(sdc_vaelight_decode(d2, z, h, w, img2, p3, &e) == SDC_OK, "%s", e.msg);
        CHECK(memcmp(img1, img2, sizeof(float) * 3 * H * W) == 0, "shipped copy decodes differently");
    }
    /* the composition, with the reference resize */
    for (int k = 0; k < 4; k++) sdc_resize_bilinear_ref(br[k], sum, 3, h << k, w << k, H, W, 1);
    double lo = 1, hi = -1, mean = 0, err = 0;
    for (int64_t i = 0; i < 3 * (int64_t)H * W; i++) {
        float want = sum[i] < -1 ? -1 : sum[i] > 1 ? 1 : sum[i];
        err = fmax(err, fabs(want - img1[i]));
        lo = fmin(lo, img1[i]);
        hi = fmax(hi, img1[i]);
        mean += img1[i];
    }
    mean /= 3.0 * H * W;
    CHECK_CLOSE(err, 1e-6, "image = clip(sum of resized branches)");
    printf("  real latent crop 16x12: image in [%.3f, %.3f], mean %.3f\n", lo, hi, mean);
    CHECK(lo >= -1 && hi <= 1 && hi - lo > 0.5, "image range [%g, %g]", lo, hi);
    /* the one-call preview: an 8-bit PNG of 8w x 8h, from a scaled or an unscaled latent */
    for (int scaled = 0; scaled < 2; scaled++) {
        float *zz = malloc(sizeof(float) * 4 * h * w);
        for (int i = 0; i < 4 * h * w; i++) zz[i] = scaled ? z[i] : z[i] * 0.18215f;
        char path[128];
        snprintf(path, sizeof path, "%s/preview%d.png", tmpdir, scaled);
        CHECK(sdc_vaelight_write_png(d, zz, h, w, scaled, path, p3, &e) == SDC_OK, "%s", e.msg);
        unsigned char head[24] = {0};
        FILE *f = fopen(path, "rb");
        size_t got = f ? fread(head, 1, sizeof head, f) : 0;
        if (f) fclose(f);
        CHECK(got == 24 && memcmp(head, "\x89PNG", 4) == 0 && head[19] == W && head[23] == H,
              "preview PNG header (scaled %d)", scaled);
        free(zz);
    }
    CHECK(sdc_vaelight_write_png(d, z, h, w, 1, "/nonexistent/dir/p.png", p1, &e) == SDC_E_IO &&
              !strchr(e.msg, '\n'), "preview into a missing folder: %s", e.msg);
    CHECK(sdc_vaelight_decode(d, z, 0, w, img1, p1, &e) == SDC_E_INVALID_ARG && !strchr(e.msg, '\n'),
          "zero height accepted");
    CHECK(sdc_vaelight_decode(d, z, h, SDC_VAELIGHT_MAX_LATENT + 1, img1, p1, &e) == SDC_E_INVALID_ARG,
          "huge width accepted");
    for (int k = 0; k < 4; k++) free(br[k]);
    free(img1), free(img2), free(img3), free(sum), free(z);
    sdc_pool_free(p1);
    sdc_pool_free(p3);
out:
    sdc_vaelight_free(d);
    sdc_vaelight_free(d2);
}

/* ------------------------------------------------------------------ refusals */

static char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    char *p = buf[k++ & 3];
    snprintf(p, 256, "%s/%s", tmpdir, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    if (f) {
        fwrite(data, 1, len, f);
        fclose(f);
    }
}

static void refused(const char *what, const char *path, sdc_status want, const char *needle) {
    sdc_vaelight *d = (sdc_vaelight *)1;
    sdc_error e = {0};
    sdc_status st = sdc_vaelight_load(path, &d, &e);
    CHECK(st == want && d == NULL, "%s: status %d, want %d (%s)", what, st, want, e.msg);
    CHECK(e.msg[0] && !strchr(e.msg, '\n') && strstr(e.msg, needle), "%s: message '%s' lacks '%s'",
          what, e.msg, needle);
    printf("  %-18s -> %s\n", what, e.msg);
}

/* Turns the n bytes at buf into one length-delimited field holding them (in place). */
static size_t wrap(uint8_t *buf, int field, size_t n) {
    uint8_t head[12];
    size_t k = 0;
    head[k++] = (uint8_t)(field << 3 | 2);
    for (size_t v = n;; v >>= 7) {
        head[k++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        if (v <= 0x7f) break;
    }
    memmove(buf + k, buf, n);
    memcpy(buf, head, k);
    return k + n;
}

static void hostile_bytes(void) {
    write_file(tmp_path("empty.onnx"), "", 0);
    refused("empty file", tmp_path("empty.onnx"), SDC_E_FORMAT, "empty");
    uint8_t junk[4096];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = (uint8_t)(frand() * 127 + 128);
    write_file(tmp_path("random.onnx"), junk, sizeof junk);
    refused("random bytes", tmp_path("random.onnx"), SDC_E_FORMAT, "not an ONNX model");
    FILE *f = fopen(PREVIEW, "rb");
    uint8_t head[3000];
    size_t n = f ? fread(head, 1, sizeof head, f) : 0;
    if (f) fclose(f);
    write_file(tmp_path("truncated.onnx"), head, n);
    refused("truncated", tmp_path("truncated.onnx"), SDC_E_FORMAT, "not an ONNX model");
    refused("missing file", tmp_path("nope.onnx"), SDC_E_IO, "cannot open");
    refused("directory", tmpdir, SDC_E_IO, "not a regular file");
    refused("VAEencoder.onnx", ENCODER, SDC_E_UNSUPPORTED, "not the vaelight preview decoder");

    /* GraphProto{node: NodeProto{attribute: AttributeProto{g: GraphProto{...}}}}, 30 deep */
    uint8_t deep[512];
    size_t dn = 0;
    for (int i = 0; i < 10; i++) {
        dn = wrap(deep, 6, dn);
        dn = wrap(deep, 5, dn);
        dn = wrap(deep, 1, dn);
    }
    dn = wrap(deep, 7, dn);
    write_file(tmp_path("deep.onnx"), deep, dn);
    refused("nested 30 deep", tmp_path("deep.onnx"), SDC_E_FORMAT, "nested too deeply");

    /* 2M empty nodes: 4 MB of file, hundreds of MB of decoded structs */
    size_t bn = (size_t)4 << 20;
    uint8_t *bomb = malloc(bn + 16);
    for (size_t i = 0; i < bn; i += 2) bomb[i] = 0x0a, bomb[i + 1] = 0;
    size_t total = wrap(bomb, 7, bn);
    Onnx__ModelProto *m = NULL;
    sdc_error e = {0};
    CHECK(sdc_onnx_parse(bomb, total, "bomb.onnx", &m, &e) == SDC_E_LIMIT && m == NULL,
          "node bomb: %s", e.msg);
    printf("  %-18s -> %s\n", "2M empty nodes", e.msg);
    free(bomb);
}

/* Loads VAEpreview.onnx, applies `edit`, writes it, and expects a refusal naming `needle`. */
typedef void (*edit_fn)(Onnx__ModelProto *m, void **saved);
typedef void (*undo_fn)(Onnx__ModelProto *m, void **saved);

static Onnx__NodeProto *find_node(Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_node; i++)
        if (strcmp(g->node[i]->name, name) == 0) return g->node[i];
    return NULL;
}

static void e_relu(Onnx__ModelProto *m, void **s) {
    Onnx__NodeProto *n = find_node(m->graph, "/lrelu_3/LeakyRelu");
    s[0] = n->op_type;
    n->op_type = "Relu";
}
static void u_relu(Onnx__ModelProto *m, void **s) { find_node(m->graph, "/lrelu_3/LeakyRelu")->op_type = s[0]; }

static void e_stride(Onnx__ModelProto *m, void **s) {
    Onnx__AttributeProto *a = (Onnx__AttributeProto *)sdc_onnx_attr(find_node(m->graph, "/c2v2/Conv"), "strides");
    (void)s;
    a->ints[0] = a->ints[1] = 2;
}
static void e_output(Onnx__ModelProto *m, void **s) {
    (void)s;
    m->graph->n_output--;
}
static void u_output(Onnx__ModelProto *m, void **s) {
    (void)s;
    m->graph->n_output++;
}
static void e_merge(Onnx__ModelProto *m, void **s) { /* c2v2 reads c3v1's activation */
    Onnx__NodeProto *n = find_node(m->graph, "/c2v2/Conv"), *o = find_node(m->graph, "/lrelu_17/LeakyRelu");
    s[0] = n->input[0];
    n->input[0] = o->output[0];
}
static void u_merge(Onnx__ModelProto *m, void **s) { find_node(m->graph, "/c2v2/Conv")->input[0] = s[0]; }
static void e_opset(Onnx__ModelProto *m, void **s) {
    s[0] = m->opset_import[0]->domain;
    m->opset_import[0]->domain = "com.example";
}
static void u_opset(Onnx__ModelProto *m, void **s) { m->opset_import[0]->domain = s[0]; }
static void e_bias(Onnx__ModelProto *m, void **s) {
    const Onnx__TensorProto *t = sdc_onnx_initializer(m->graph, "cv4.bias");
    (void)s;
    ((Onnx__TensorProto *)t)->dims[0] = 31;
}

static void edited(const char *what, edit_fn edit, undo_fn undo, const char *needle) {
    Onnx__ModelProto *m = NULL;
    sdc_error e = {0};
    if (sdc_onnx_read(PREVIEW, SDC_VAELIGHT_MAX_FILE_BYTES, &m, &e) != SDC_OK) {
        CHECK(0, "%s", e.msg);
        return;
    }
    void *saved[2] = {0};
    edit(m, saved);
    size_t n = onnx__model_proto__get_packed_size(m);
    uint8_t *buf = malloc(n);
    onnx__model_proto__pack(m, buf);
    if (undo) undo(m, saved); /* put protobuf-c's own pointers back before freeing */
    sdc_onnx_free(m);
    char name[64];
    snprintf(name, sizeof name, "edit_%s.onnx", what);
    write_file(tmp_path(name), buf, n);
    free(buf);
    refused(what, tmp_path(name), SDC_E_UNSUPPORTED, needle);
}

static void edits(void) {
    /* the unedited round trip through protobuf-c's packer still loads */
    Onnx__ModelProto *m = NULL;
    sdc_error e = {0};
    CHECK(sdc_onnx_read(PREVIEW, SDC_VAELIGHT_MAX_FILE_BYTES, &m, &e) == SDC_OK, "%s", e.msg);
    if (m) {
        size_t n = onnx__model_proto__get_packed_size(m);
        uint8_t *buf = malloc(n);
        onnx__model_proto__pack(m, buf);
        sdc_onnx_free(m);
        write_file(tmp_path("repacked.onnx"), buf, n);
        free(buf);
        sdc_vaelight *d = NULL;
        CHECK(sdc_vaelight_load(tmp_path("repacked.onnx"), &d, &e) == SDC_OK, "repacked: %s", e.msg);
        sdc_vaelight_free(d);
    }
    edited("relu", e_relu, u_relu, "only Conv 3x3, ConvTranspose 2x2/2 and LeakyRelu");
    edited("stride", e_stride, NULL, "expected stride 1");
    edited("output", e_output, u_output, "3 outputs, expected 4");
    edited("merge", e_merge, u_merge, "the chain forks");
    edited("opset", e_opset, u_opset, "operator set 'com.example'");
    edited("bias", e_bias, NULL, "bias shape");
}

static void find(void) {
    char out[4096];
    sdc_error e = {0};
    CHECK(sdc_vaelight_find("/x/y.onnx", out, sizeof out, &e) == SDC_OK && strcmp(out, "/x/y.onnx") == 0,
          "explicit path");
    setenv("SDC_VAELIGHT", "/env/v.onnx", 1);
    CHECK(sdc_vaelight_find(NULL, out, sizeof out, &e) == SDC_OK && strcmp(out, "/env/v.onnx") == 0,
          "$SDC_VAELIGHT");
    CHECK(sdc_vaelight_find("/x/y.onnx", out, sizeof out, &e) == SDC_OK && strcmp(out, "/x/y.onnx") == 0,
          "explicit path before $SDC_VAELIGHT");
    CHECK(sdc_vaelight_find("/x/y.onnx", out, 4, &e) == SDC_E_INVALID_ARG, "short buffer");
    unsetenv("SDC_VAELIGHT");
    /* next to the program: found when the build folder sits in the source tree */
    sdc_status st = sdc_vaelight_find(NULL, out, sizeof out, &e);
    if (st == SDC_OK) CHECK(strstr(out, "/vaelight/VAEpreview.onnx") && access(out, R_OK) == 0, "found %s", out);
    else CHECK(!strchr(e.msg, '\n') && strstr(e.msg, "--decoder-path"), "not found: %s", e.msg);
    printf("  default location: %s\n", st == SDC_OK ? out : e.msg);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sdc_vaelight_XXXXXX");
    if (!mkdtemp(tmpdir)) return 1;
    kernels();
    real_decoder();
    hostile_bytes();
    edits();
    find();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) printf("  (could not remove %s)\n", tmpdir);
    TEST_MAIN_END();
}
