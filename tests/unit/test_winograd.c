/* tests/unit/test_winograd.c: Winograd F(4x4, 3x3) convolution against the direct convolution.
 *
 *  - accuracy: sdc_conv2d_winograd and the direct sdc_conv2d_ref, both against a float64
 *    convolution, on awkward shapes (H, W = 1, 2, 3, 5, 7, 9, 13 and 64x40: partial tiles, images
 *    smaller than one tile, widths of 29..130 for the AVX-512 row gathers; C, O = 1, 3, 4, 17,
 *    33, 320; batch 1 and 2; f32, f16 and bf16 weights; bias, accumulate; both schedules).
 *    Error = max |y - y64| / max |y64| over the output.
 *    Measured over these cases: Winograd worst 7.5e-6 (AVX-512, AVX2 and NEON builds; 9.0e-6
 *    with SSE2 only) against the direct conv's 1.6e-6; bounded here at 2e-5. (The golden tests
 *    run through Winograd with SDC_CONV=winograd: UNet 8.3e-6, VAE 8.2e-6, tolerance 1e-4.);
 *  - thread-count invariance: 1, 2 and 3 threads give bit-identical outputs;
 *  - dispatch: sdc_conv2d on a shape where Winograd is preferred gives exactly the Winograd
 *    result, and sdc_conv2d_direct stays within the direct conv's tolerance;
 *  - unsupported shapes (stride 2, 1x1, pad 0) and bad arguments are refused with -1. */
#include "ops/winograd.h"
#include "test.h"

#include <stdint.h>

/* Weights as dtype dt, and the same values as f32 in *w32 (the exact values the kernels see). */
static void *rand_weights(size_t n, sdc_dtype dt, float **w32) {
    *w32 = malloc(n * sizeof(float));
    if (dt == SDC_F32) {
        float *p = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) (*w32)[i] = p[i] = test_frand();
        return p;
    }
    uint16_t *h = malloc(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) {
        h[i] = dt == SDC_F16 ? sdc_f32_to_f16(test_frand()) : sdc_f32_to_bf16(test_frand());
        (*w32)[i] = dt == SDC_F16 ? sdc_f16_to_f32(h[i]) : sdc_bf16_to_f32(h[i]);
    }
    return h;
}

/* y64[B, O, H, W] = conv3x3 pad 1 (x) + bias (+ y0), in double. */
static void conv_f64(const float *x, const float *w, const float *bias, const float *y0, int B, int C,
                     int H, int W, int O, double *y64) {
    for (int b = 0; b < B; b++)
        for (int o = 0; o < O; o++)
            for (int i = 0; i < H; i++)
                for (int j = 0; j < W; j++) {
                    double s = bias ? bias[o] : 0.0;
                    for (int c = 0; c < C; c++)
                        for (int ki = 0; ki < 3; ki++) {
                            int ih = i + ki - 1;
                            if (ih < 0 || ih >= H) continue;
                            for (int kj = 0; kj < 3; kj++) {
                                int iw = j + kj - 1;
                                if (iw < 0 || iw >= W) continue;
                                s += (double)w[((o * C + c) * 3 + ki) * 3 + kj] *
                                     x[(((size_t)b * C + c) * H + ih) * W + iw];
                            }
                        }
                    size_t k = (((size_t)b * O + o) * H + i) * W + j;
                    y64[k] = y0 ? y0[k] + s : s;
                }
}

static double max_err(const float *y, const double *r, size_t n) {
    double maxd = 0, maxr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(y[i] - r[i]);
        if (!(d <= maxd)) maxd = d; /* NaN propagates */
        if (fabs(r[i]) > maxr) maxr = fabs(r[i]);
    }
    return maxr > 0 ? maxd / maxr : maxd;
}

typedef struct wcase {
    int B, C, H, W, O;
    sdc_dtype wdt;
    int bias, accumulate;
} wcase;

static double worst_wino, worst_direct;

static void run_case(sdc_pool **pools, const wcase *t) {
    size_t xn = (size_t)t->B * t->C * t->H * t->W, yn = (size_t)t->B * t->O * t->H * t->W;
    size_t wn = (size_t)t->O * t->C * 9;
    float *w32, *x = test_rand_buf(xn, 1.0f), *bias = test_rand_buf((size_t)t->O, 1.0f), *y0 = test_rand_buf(yn, 1.0f);
    void *w = rand_weights(wn, t->wdt, &w32);
    double *y64 = malloc(yn * sizeof(double));
    conv_f64(x, w32, t->bias ? bias : NULL, t->accumulate ? y0 : NULL, t->B, t->C, t->H, t->W, t->O, y64);
    float *y[3], *yd = malloc(yn * 4);
    sdc_conv2d_args a = {.x = x, .C = t->C, .H = t->H, .W = t->W, .w = w, .wdtype = t->wdt, .O = t->O,
                         .kh = 3, .kw = 3, .bias = t->bias ? bias : NULL, .stride = 1, .pad = 1,
                         .accumulate = t->accumulate, .batch = t->B};
    int rc = 0;
    for (int p = 0; p < 3; p++) {
        y[p] = malloc(yn * 4);
        memcpy(y[p], y0, yn * 4);
        a.y = y[p];
        rc |= sdc_conv2d_winograd(pools[p], &a);
    }
    memcpy(yd, y0, yn * 4);
    a.y = yd;
    sdc_conv2d_ref(&a);
    double ew = max_err(y[0], y64, yn), ed = max_err(yd, y64, yn);
    CHECK(rc == 0 && ew <= 2e-5,
          "winograd B=%d C=%d %dx%d O=%d %s bias %d acc %d: rc %d, error %.3e (direct %.3e)", t->B,
          t->C, t->H, t->W, t->O, sdc_dtype_table[t->wdt].name, t->bias, t->accumulate, rc, ew, ed);
    CHECK(!memcmp(y[0], y[1], yn * 4) && !memcmp(y[0], y[2], yn * 4),
          "winograd B=%d C=%d %dx%d O=%d: thread counts 1, 2, 3 differ", t->B, t->C, t->H, t->W, t->O);
    if (!(ew <= worst_wino)) worst_wino = ew;
    if (!(ed <= worst_direct)) worst_direct = ed;
    for (int p = 0; p < 3; p++) free(y[p]);
    free(yd), free(y64), free(w), free(w32), free(x), free(bias), free(y0);
}

static void test_accuracy(sdc_pool **pools) {
    printf("winograd vs float64 (and the direct conv's own error)\n");
    static const int sizes[][2] = {{1, 1}, {2, 2}, {3, 3}, {5, 5}, {7, 7}, {9, 9}, {13, 13},
                                   {1, 7}, {9, 2}, {5, 13}, {4, 8}, {3, 17}};
    static const int chans[][2] = {{1, 1}, {3, 4}, {4, 3}, {17, 33}, {33, 17}, {4, 1}};
    int n = 0;
    for (int s = 0; s < (int)(sizeof sizes / sizeof sizes[0]); s++)
        for (int c = 0; c < (int)(sizeof chans / sizeof chans[0]); c++) {
            int v = s + c;
            wcase t = {1 + v % 2, chans[c][0], sizes[s][0], sizes[s][1], chans[c][1],
                       v % 3 == 0 ? SDC_F32 : v % 3 == 1 ? SDC_F16 : SDC_BF16, v & 1, (v >> 1) & 1};
            run_case(pools, &t);
            n++;
        }
    /* many channels (several K blocks, several output blocks) and a wide image (several tile
     * blocks, rows and columns that are not multiples of 4 or of a tile panel) */
    static const wcase big[] = {
        {2, 320, 9, 13, 33, SDC_F16, 1, 0},  {1, 17, 13, 9, 320, SDC_F32, 1, 1},
        {2, 33, 64, 40, 17, SDC_F16, 1, 0},  {1, 4, 64, 40, 320, SDC_F16, 0, 1},
        {2, 320, 7, 5, 320, SDC_BF16, 1, 0}, {2, 40, 30, 26, 40, SDC_F32, 1, 1},
        {2, 17, 40, 64, 5, SDC_F16, 1, 0},   {1, 5, 9, 126, 6, SDC_F32, 0, 1},
        {1, 3, 5, 130, 4, SDC_F16, 1, 1},    {2, 5, 4, 32, 3, SDC_F32, 1, 0},
        {1, 6, 11, 29, 5, SDC_BF16, 1, 1},   {2, 7, 33, 31, 2, SDC_F16, 0, 0},
        /* a block's transformed weights over 3 MB on one thread: made per K block */
        {1, 400, 8, 8, 120, SDC_F16, 1, 0},
        /* transformed input over 16 MB: the chunked schedule */
        {1, 16, 336, 336, 4, SDC_F16, 1, 1},
    };
    for (size_t i = 0; i < sizeof big / sizeof big[0]; i++, n++) run_case(pools, &big[i]);
    printf("  %d cases\n", n);
    CHECK_CLOSE(worst_wino, 2e-5, "winograd worst max error / max |y|");
    CHECK_CLOSE(worst_direct, 2e-5, "direct conv worst max error / max |y|");
}

static void test_dispatch(sdc_pool *pool) {
    printf("sdc_conv2d dispatch\n");
    const int B = 2, C = 24, H = 20, W = 36, O = 20; /* 2 x 5 x 9 = 90 tiles: Winograd */
    size_t yn = (size_t)B * O * H * W;
    float *w32, *x = test_rand_buf((size_t)B * C * H * W, 1.0f), *bias = test_rand_buf(O, 1.0f);
    void *w = rand_weights((size_t)O * C * 9, SDC_F16, &w32);
    float *y1 = malloc(yn * 4), *y2 = malloc(yn * 4), *y3 = malloc(yn * 4);
    double *y64 = malloc(yn * sizeof(double));
    sdc_conv2d_args a = {.x = x, .C = C, .H = H, .W = W, .w = w, .wdtype = SDC_F16, .O = O, .kh = 3,
                         .kw = 3, .bias = bias, .stride = 1, .pad = 1, .batch = B};
    CHECK(sdc_winograd_preferred(&a), "Winograd is preferred for %dx%dx%d at %dx%d", B, C, O, H, W);
    a.y = y1;
    int rc1 = sdc_conv2d(pool, &a);
    a.y = y2;
    int rc2 = sdc_conv2d_winograd(pool, &a);
    a.y = y3;
    int rc3 = sdc_conv2d_direct(pool, &a);
    conv_f64(x, w32, bias, NULL, B, C, H, W, O, y64);
    CHECK(rc1 == 0 && rc2 == 0 && rc3 == 0 && !memcmp(y1, y2, yn * 4), "sdc_conv2d takes the Winograd path");
    CHECK_CLOSE(max_err(y3, y64, yn), 1e-5, "sdc_conv2d_direct (batch 2) error");
    a.H = a.W = 2; /* one tile per image: direct */
    CHECK(!sdc_winograd_preferred(&a), "a 2x2 image is left to the direct conv");
    free(x), free(bias), free(w), free(w32), free(y1), free(y2), free(y3), free(y64);

    float z[64] = {0}, out[64];
    sdc_conv2d_args u = {.x = z, .C = 1, .H = 4, .W = 4, .w = z, .wdtype = SDC_F32, .O = 1, .kh = 3,
                         .kw = 3, .stride = 2, .pad = 1, .y = out};
    CHECK(sdc_conv2d_winograd(pool, &u) == -1, "stride 2 is refused");
    u.stride = 1, u.pad = 0;
    CHECK(sdc_conv2d_winograd(pool, &u) == -1, "pad 0 is refused");
    u.pad = 1, u.kh = u.kw = 1;
    CHECK(sdc_conv2d_winograd(pool, &u) == -1, "1x1 is refused");
    u.kh = u.kw = 3, u.wdtype = SDC_I8;
    CHECK(sdc_conv2d_winograd(pool, &u) == -1, "integer weights are refused");
    u.wdtype = SDC_F32, u.batch = -1;
    CHECK(sdc_conv2d_winograd(pool, &u) == -1 && sdc_conv2d(pool, &u) == -1, "batch -1 is refused");
}

int main(void) {
    test_rand_seed(0x2545f4914f6cdd1dull);
    sdc_pool *pools[3] = {NULL, sdc_pool_new(2), sdc_pool_new(3)};
    test_accuracy(pools);
    test_dispatch(pools[1]);
    for (int p = 0; p < 3; p++) sdc_pool_free(pools[p]);
    TEST_MAIN_END();
}
