/* tests/unit/test_gemm.c: the thread pool, the optimized GEMM and conv2d against their references.
 *
 *  - pool: every (ith, nth) runs exactly once per sdc_pool_run, over many runs, after idle sleeps,
 *    with nested runs, for pools of 1..4 threads and the NULL pool;
 *  - gemm parity: sdc_gemm vs sdc_gemm_ref over shapes at and around the tile edges (1, MR +- 1,
 *    NR +- 1, KC +- 1), every dtype for A and for B, row-major / transposed / generic strides,
 *    bias_col, bias_row, accumulate, ldc > N (padding untouched), K = 0; by NMSE and by the max
 *    error relative to the largest output; on AArch64, the micro-kernel is the NEON 8 x 12 one;
 *  - awkward sizes: every M x N from {1, 3, 7, 15, 17, 31, 33, 63, 65, 77, 154, 257} with a rotating
 *    K from the same set, B f32/f16/bf16 in the linear (W[N,K]) layout, bias and accumulate
 *    rotating, vs the reference and 1 vs 2 threads bit-identical; and shapes spanning several
 *    A blocks (MC) and B blocks (NC = 768 on AVX-512);
 *  - thread-count invariance: 1, 2 and 3 threads (and NULL) give bit-identical C, for splits over
 *    rows and over columns, and for conv2d;
 *  - conv2d parity: 3x3 pad 1, stride 2 pad 1, 1x1, 3x3 pad 0, odd sizes (7x5), bias, accumulate,
 *    f16/bf16 weights, and invalid arguments rejected. */
#include "ops/gemm.h"
#include "test.h"

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* ---------------------------------------------------------------------------------------------- */
/* helpers                                                                                         */

/* A buffer of n random values stored as dtype dt (returned as void*, free() it). */
static void *rand_buf(size_t n, sdc_dtype dt) {
    if (dt == SDC_F32) {
        float *p = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++) p[i] = test_frand();
        return p;
    }
    uint16_t *h = malloc(n * sizeof(uint16_t));
    for (size_t i = 0; i < n; i++) h[i] = dt == SDC_F16 ? sdc_f32_to_f16(test_frand()) : sdc_f32_to_bf16(test_frand());
    return h;
}

static float *rand_f32(size_t n) { return rand_buf(n, SDC_F32); }

typedef struct errstat {
    double nmse, maxrel; /* sum (x-r)^2 / sum r^2;  max |x-r| / max |r| */
} errstat;

static errstat compare(const float *x, const float *r, int M, int N, ptrdiff_t ld) {
    double num = 0, den = 0, maxd = 0, maxr = 0;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double a = x[i * ld + j], b = r[i * ld + j], d = fabs(a - b);
            num += d * d;
            den += b * b;
            if (!(d <= maxd)) maxd = d; /* NaN propagates */
            if (fabs(b) > maxr) maxr = fabs(b);
        }
    errstat e = {den > 0 ? num / den : num, maxr > 0 ? maxd / maxr : maxd};
    return e;
}

static const char *dtname(sdc_dtype d) { return sdc_dtype_table[d].name; }

/* ---------------------------------------------------------------------------------------------- */
/* thread pool                                                                                     */

typedef struct count_ctx {
    atomic_int calls[8];
    atomic_int bad_nth;
    int expect_nth;
} count_ctx;

static void count_task(void *p, int ith, int nth) {
    count_ctx *c = p;
    if (nth != c->expect_nth || ith < 0 || ith >= nth) atomic_fetch_add(&c->bad_nth, 1);
    else atomic_fetch_add(&c->calls[ith], 1);
}

typedef struct nest_ctx {
    sdc_pool *pool;
    atomic_int inner_calls;
} nest_ctx;

static void nest_inner(void *p, int ith, int nth) {
    (void)ith, (void)nth;
    atomic_fetch_add(&((nest_ctx *)p)->inner_calls, 1);
}

static void nest_outer(void *p, int ith, int nth) {
    (void)ith, (void)nth;
    nest_ctx *c = p;
    sdc_pool_run(c->pool, nest_inner, c); /* must not deadlock: runs serially */
}

static void test_pool(void) {
    printf("thread pool\n");
    for (int n = 1; n <= 4; n++) {
        sdc_pool *p = sdc_pool_new(n);
        CHECK(p != NULL, "sdc_pool_new(%d)", n);
        if (!p) continue;
        CHECK(sdc_pool_size(p) == n, "pool size %d != %d", sdc_pool_size(p), n);
        count_ctx c = {.expect_nth = n};
        const int runs = 4000;
        for (int r = 0; r < runs; r++) {
            sdc_pool_run(p, count_task, &c);
            if (r % 1000 == 999) { /* idle past the spin window: workers go to sleep */
                struct timespec ts = {0, 2000000};
                nanosleep(&ts, NULL);
            }
        }
        int ok = atomic_load(&c.bad_nth) == 0;
        for (int i = 0; i < n; i++) ok &= atomic_load(&c.calls[i]) == runs;
        CHECK(ok, "pool of %d: each thread runs once per run (bad %d, calls[0] %d)", n,
              atomic_load(&c.bad_nth), atomic_load(&c.calls[0]));
        nest_ctx nc = {.pool = p};
        sdc_pool_run(p, nest_outer, &nc);
        CHECK(atomic_load(&nc.inner_calls) == n, "nested runs: %d inner calls, expected %d",
              atomic_load(&nc.inner_calls), n);
        sdc_pool_free(p);
    }
    count_ctx c = {.expect_nth = 1};
    sdc_pool_run(NULL, count_task, &c);
    CHECK(atomic_load(&c.calls[0]) == 1 && sdc_pool_size(NULL) == 1, "NULL pool runs on the caller");
    sdc_pool_free(NULL);
    sdc_pool *p = sdc_pool_new(0);
    CHECK(p && sdc_pool_size(p) >= 1, "sdc_pool_new(0) uses the CPU count");
    sdc_pool_free(p);
    for (int i = 0; i < 50; i++) sdc_pool_free(sdc_pool_new(3)); /* start/stop races */
    CHECK(1, "pool create/free cycles");
}

/* ---------------------------------------------------------------------------------------------- */
/* gemm parity                                                                                     */

typedef struct gemm_case {
    int M, N, K;
    sdc_dtype adt, bdt;
    int a_trans, b_trans; /* 0: row-major view, 1: column-major view, 2: generic (padded, cs 2) */
    int bias_col, bias_row, accumulate;
} gemm_case;

/* Strides of an R x C view for layout t: row-major, column-major, or cs = 2 with padded rows. */
static void view_strides(int t, int R, int Cc, ptrdiff_t *rs, ptrdiff_t *cs, size_t *n) {
    if (t == 0) *rs = Cc, *cs = 1;
    else if (t == 1) *rs = 1, *cs = R;
    else *rs = 2 * (ptrdiff_t)Cc + 3, *cs = 2;
    *n = t == 2 ? (size_t)R * (size_t)*rs : (size_t)R * Cc;
    if (*n == 0) *n = 1;
}

/* Runs one case through sdc_gemm (pool) and sdc_gemm_ref; returns the error. */
static errstat run_case(sdc_pool *pool, const gemm_case *t) {
    ptrdiff_t ars, acs, brs, bcs;
    size_t an, bn;
    view_strides(t->a_trans, t->M, t->K, &ars, &acs, &an);
    view_strides(t->b_trans, t->K, t->N, &brs, &bcs, &bn);
    void *A = rand_buf(an, t->adt), *B = rand_buf(bn, t->bdt);
    float *bc = rand_f32((size_t)t->N), *br = rand_f32((size_t)t->M);
    ptrdiff_t ldc = t->N + 5; /* padding columns must stay untouched */
    size_t cn = (size_t)t->M * ldc;
    float *C = rand_f32(cn), *R = malloc(cn * sizeof(float));
    memcpy(R, C, cn * sizeof(float));
    sdc_gemm_args g = {.M = t->M, .N = t->N, .K = t->K,
                       .A = {A, t->adt, ars, acs}, .B = {B, t->bdt, brs, bcs},
                       .C = C, .ldc = ldc,
                       .bias_col = t->bias_col ? bc : NULL, .bias_row = t->bias_row ? br : NULL,
                       .accumulate = t->accumulate};
    sdc_gemm(pool, &g);
    g.C = R;
    sdc_gemm_ref(&g);
    errstat e = compare(C, R, t->M, t->N, ldc);
    int pad_ok = 1;
    for (int i = 0; i < t->M; i++)
        for (ptrdiff_t j = t->N; j < ldc; j++) pad_ok &= C[i * ldc + j] == R[i * ldc + j];
    if (!pad_ok) e.nmse = INFINITY;
    free(A), free(B), free(bc), free(br), free(C), free(R);
    return e;
}

static void test_gemm_parity(sdc_pool *pool) {
    printf("gemm parity vs sdc_gemm_ref\n");
    /* sizes around every tile edge of every target (MR 4..14, NR 8..32, KC 320) */
    static const int sizes[][3] = {
        {1, 1, 1},     {1, 17, 5},    {3, 1, 9},     {5, 7, 1},     {6, 16, 8},    {7, 17, 33},
        {13, 31, 64},  {14, 32, 100}, {15, 33, 47},  {28, 64, 320}, {29, 65, 321}, {27, 63, 319},
        {8, 40, 257},  {64, 40, 200}, {40, 80, 41},  {64, 96, 40},  {154, 48, 77}, {33, 9, 700},
        {2, 300, 33},  {100, 3, 50},  {50, 130, 15}, {17, 12, 641},
        /* AArch64 NEON 8 x 12 tiles: exactly one tile, one row and column more, N = 12 + 4 (a wide
         * and a narrow panel), N = 4 (narrow only), 28 = 2 x 12 + 4, 25; K below the 4 lanes */
        {8, 12, 4},    {9, 13, 3},    {16, 16, 7},   {7, 4, 2},     {24, 28, 11},  {23, 25, 322},
    };
    const int nsizes = (int)(sizeof sizes / sizeof sizes[0]);
    errstat worst = {0, 0};
    int cases = 0;
    for (int s = 0; s < nsizes; s++)
        for (int v = 0; v < 6; v++) { /* a rotation of dtypes, layouts and epilogues per size */
            gemm_case t = {sizes[s][0], sizes[s][1], sizes[s][2],
                           (sdc_dtype)((s + v) % 3 == 0 ? SDC_F32 : (s + v) % 3 == 1 ? SDC_F16 : SDC_BF16),
                           (sdc_dtype)(v % 3 == 0 ? SDC_F32 : v % 3 == 1 ? SDC_F16 : SDC_BF16),
                           (s + v) % 3, (v + s / 2) % 3, v & 1, (v >> 1) & 1, (v + s) % 2};
            errstat e = run_case(v & 1 ? pool : NULL, &t);
            cases++;
            CHECK(e.nmse <= 1e-10 && e.maxrel <= 1e-5,
                  "gemm M=%d N=%d K=%d A=%s/%d B=%s/%d bc=%d br=%d acc=%d: nmse %.3e maxrel %.3e",
                  t.M, t.N, t.K, dtname(t.adt), t.a_trans, dtname(t.bdt), t.b_trans, t.bias_col,
                  t.bias_row, t.accumulate, e.nmse, e.maxrel);
            if (!(e.nmse <= worst.nmse)) worst.nmse = e.nmse;
            if (!(e.maxrel <= worst.maxrel)) worst.maxrel = e.maxrel;
        }
    /* every dtype pair and layout pair once on a multi-block, multi-tile shape, threaded */
    for (int ad = 0; ad < 3; ad++)
        for (int bd = 0; bd < 3; bd++)
            for (int l = 0; l < 9; l++) {
                gemm_case t = {45, 70, 333, (sdc_dtype)ad, (sdc_dtype)bd, l % 3, l / 3, 1, 1, l & 1};
                errstat e = run_case(pool, &t);
                cases++;
                CHECK(e.nmse <= 1e-10 && e.maxrel <= 1e-5, "gemm 45x70x333 A=%s/%d B=%s/%d: nmse %.3e",
                      dtname(t.adt), t.a_trans, dtname(t.bdt), t.b_trans, e.nmse);
                if (!(e.nmse <= worst.nmse)) worst.nmse = e.nmse;
                if (!(e.maxrel <= worst.maxrel)) worst.maxrel = e.maxrel;
            }
    printf("  %d cases\n", cases);
    CHECK_CLOSE(worst.nmse, 1e-10, "gemm worst NMSE");
    CHECK_CLOSE(worst.maxrel, 1e-5, "gemm worst max error / max |C|");

    /* K = 0: C = bias (+ C); M = 0 or N = 0: nothing written */
    float C[6] = {1, 2, 3, 4, 5, 6}, bc[3] = {10, 20, 30}, br[2] = {100, 200};
    sdc_gemm_args g = {.M = 2, .N = 3, .K = 0, .A = {C, SDC_F32, 0, 1}, .B = {C, SDC_F32, 3, 1},
                       .C = C, .ldc = 3, .bias_col = bc, .bias_row = br, .accumulate = 1};
    sdc_gemm(pool, &g);
    CHECK(C[0] == 111 && C[5] == 236, "K = 0 adds the biases to C (%g %g)", C[0], C[5]);
    g.M = 0;
    sdc_gemm(pool, &g);
    CHECK(C[0] == 111, "M = 0 writes nothing");
}

/* Awkward sizes (below one tile, around the vector widths, several M/N blocks): parity with the
 * reference, and C bit-identical between the calling thread alone and a pool of 2. */
static void test_gemm_awkward(sdc_pool *pool) {
    printf("gemm awkward sizes vs sdc_gemm_ref, 1 vs 2 threads\n");
    static const int sz[] = {1, 3, 7, 15, 17, 31, 33, 63, 65, 77, 154, 257};
    enum { NS = (int)(sizeof sz / sizeof sz[0]) };
    int shapes[NS * NS + 3][3], n = 0;
    for (int i = 0; i < NS; i++)
        for (int j = 0; j < NS; j++) shapes[n][0] = sz[i], shapes[n][1] = sz[j], shapes[n++][2] = sz[(i * 5 + j * 7) % NS];
    static const int big[3][3] = {{350, 800, 330}, {700, 1600, 65}, {29, 1537, 641}};
    for (int b = 0; b < 3; b++) shapes[n][0] = big[b][0], shapes[n][1] = big[b][1], shapes[n++][2] = big[b][2];
    errstat worst = {0, 0};
    int bad_threads = 0, bad_parity = 0;
    for (int s = 0; s < n; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        sdc_dtype bdt = (sdc_dtype)(s % 3 == 0 ? SDC_F32 : s % 3 == 1 ? SDC_F16 : SDC_BF16);
        float *A = rand_f32((size_t)M * K), *bias = rand_f32((size_t)N);
        void *B = rand_buf((size_t)N * K, bdt);
        size_t cn = (size_t)M * N;
        float *C0 = rand_f32(cn), *C1 = malloc(cn * sizeof(float)), *R = malloc(cn * sizeof(float));
        memcpy(C1, C0, cn * sizeof(float));
        memcpy(R, C0, cn * sizeof(float));
        sdc_gemm_args g = {.M = M, .N = N, .K = K, .A = {A, SDC_F32, K, 1}, .B = {B, bdt, 1, K},
                           .C = C0, .ldc = N, .bias_col = (s / 3) % 2 ? bias : NULL,
                           .accumulate = (s / 2) % 2};
        sdc_gemm(NULL, &g);
        g.C = C1;
        sdc_gemm(pool, &g);
        g.C = R;
        sdc_gemm_ref(&g);
        if (memcmp(C0, C1, cn * sizeof(float)) && bad_threads++ < 5)
            CHECK(0, "gemm %dx%dx%d B=%s: 2 threads differ from 1", M, N, K, dtname(bdt));
        errstat e = compare(C0, R, M, N, N);
        if (!(e.nmse <= 1e-10 && e.maxrel <= 1e-5) && bad_parity++ < 5)
            CHECK(0, "gemm %dx%dx%d B=%s: nmse %.3e maxrel %.3e", M, N, K, dtname(bdt), e.nmse, e.maxrel);
        if (!(e.nmse <= worst.nmse)) worst.nmse = e.nmse;
        if (!(e.maxrel <= worst.maxrel)) worst.maxrel = e.maxrel;
        free(A), free(bias), free(B), free(C0), free(C1), free(R);
    }
    printf("  %d cases\n", n);
    CHECK(bad_threads == 0, "awkward sizes: 1 and 2 threads bit-identical (%d differ)", bad_threads);
    CHECK(bad_parity == 0, "awkward sizes: parity with the reference (%d fail)", bad_parity);
    CHECK_CLOSE(worst.nmse, 1e-10, "awkward sizes worst NMSE");
    CHECK_CLOSE(worst.maxrel, 1e-5, "awkward sizes worst max error / max |C|");
}

/* ---------------------------------------------------------------------------------------------- */
/* thread-count invariance                                                                         */

static void test_gemm_threads(void) {
    printf("gemm thread-count invariance\n");
    sdc_pool *pools[4] = {NULL, sdc_pool_new(1), sdc_pool_new(2), sdc_pool_new(3)};
    /* tall (split over rows), wide (split over columns), and a linear with f16 W^T */
    static const int shapes[][3] = {{301, 45, 330}, {37, 500, 700}, {200, 77, 96}};
    for (int s = 0; s < 3; s++) {
        int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
        float *A = rand_f32((size_t)M * K), *bias = rand_f32((size_t)N);
        void *B = rand_buf((size_t)K * N, s == 2 ? SDC_F16 : SDC_F32);
        float *C[4];
        for (int p = 0; p < 4; p++) {
            C[p] = malloc((size_t)M * N * sizeof(float));
            sdc_gemm_args g = {.M = M, .N = N, .K = K, .A = {A, SDC_F32, K, 1},
                               .B = s == 2 ? (sdc_mat){B, SDC_F16, 1, K} : (sdc_mat){B, SDC_F32, N, 1},
                               .C = C[p], .ldc = N, .bias_col = bias};
            sdc_gemm(pools[p], &g);
        }
        for (int p = 1; p < 4; p++)
            CHECK(!memcmp(C[0], C[p], (size_t)M * N * sizeof(float)),
                  "gemm %dx%dx%d: %d threads differ from the calling thread alone", M, N, K,
                  sdc_pool_size(pools[p]));
        for (int p = 0; p < 4; p++) free(C[p]);
        free(A), free(B), free(bias);
    }
    for (int p = 0; p < 4; p++) sdc_pool_free(pools[p]);
}

/* ---------------------------------------------------------------------------------------------- */
/* conv2d                                                                                          */

typedef struct conv_case {
    int C, H, W, O, k, stride, pad;
    sdc_dtype wdt;
    int bias, accumulate;
} conv_case;

static void test_conv2d(void) {
    printf("conv2d parity vs sdc_conv2d_ref\n");
    static const conv_case cases[] = {
        {4, 8, 8, 6, 3, 1, 1, SDC_F32, 1, 0},   {5, 7, 5, 9, 3, 1, 1, SDC_F16, 1, 1},
        {3, 9, 9, 5, 3, 2, 1, SDC_F16, 0, 0},   {6, 8, 8, 7, 3, 2, 1, SDC_F32, 1, 0},
        {8, 7, 5, 16, 1, 1, 0, SDC_F16, 1, 1},  {16, 6, 6, 3, 1, 1, 0, SDC_F32, 0, 0},
        {4, 7, 5, 4, 3, 1, 0, SDC_BF16, 1, 0},  {40, 13, 11, 33, 3, 1, 1, SDC_F16, 1, 1},
        {2, 1, 1, 3, 3, 1, 1, SDC_F32, 1, 0},   {3, 10, 12, 4, 1, 2, 0, SDC_F32, 1, 0},
        {5, 6, 40, 15, 3, 2, 1, SDC_F16, 1, 1}, {64, 16, 16, 20, 3, 1, 1, SDC_F16, 1, 0},
        {16, 4, 4, 100, 3, 1, 1, SDC_F16, 1, 1}, {7, 33, 35, 6, 3, 2, 1, SDC_BF16, 1, 0},
    };
    sdc_pool *pool = sdc_pool_new(3);
    errstat worst = {0, 0};
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const conv_case *c = &cases[t];
        int Ho = (c->H + 2 * c->pad - c->k) / c->stride + 1, Wo = (c->W + 2 * c->pad - c->k) / c->stride + 1;
        size_t yn = (size_t)c->O * Ho * Wo;
        float *x = rand_f32((size_t)c->C * c->H * c->W), *bias = rand_f32((size_t)c->O);
        void *w = rand_buf((size_t)c->O * c->C * c->k * c->k, c->wdt);
        float *y0 = rand_f32(yn), *y1 = malloc(yn * 4), *y2 = malloc(yn * 4), *yr = malloc(yn * 4);
        memcpy(y1, y0, yn * 4), memcpy(y2, y0, yn * 4), memcpy(yr, y0, yn * 4);
        sdc_conv2d_args a = {.x = x, .C = c->C, .H = c->H, .W = c->W, .w = w, .wdtype = c->wdt,
                             .O = c->O, .kh = c->k, .kw = c->k, .bias = c->bias ? bias : NULL,
                             .stride = c->stride, .pad = c->pad, .y = y1, .accumulate = c->accumulate};
        int rc1 = sdc_conv2d(NULL, &a);
        a.y = y2;
        int rc2 = sdc_conv2d(pool, &a);
        a.y = yr;
        sdc_conv2d_ref(&a);
        errstat e = compare(y1, yr, c->O, Ho * Wo, (ptrdiff_t)Ho * Wo);
        CHECK(rc1 == 0 && rc2 == 0 && e.nmse <= 1e-10 && e.maxrel <= 1e-5,
              "conv C=%d %dx%d O=%d k=%d s=%d p=%d %s: rc %d/%d nmse %.3e maxrel %.3e", c->C, c->H,
              c->W, c->O, c->k, c->stride, c->pad, dtname(c->wdt), rc1, rc2, e.nmse, e.maxrel);
        CHECK(!memcmp(y1, y2, yn * 4), "conv case %zu: 3 threads differ from 1", t);
        if (!(e.nmse <= worst.nmse)) worst.nmse = e.nmse;
        if (!(e.maxrel <= worst.maxrel)) worst.maxrel = e.maxrel;
        free(x), free(bias), free(w), free(y0), free(y1), free(y2), free(yr);
    }
    CHECK_CLOSE(worst.nmse, 1e-10, "conv2d worst NMSE");
    CHECK_CLOSE(worst.maxrel, 1e-5, "conv2d worst max error / max |y|");

    float x[4] = {0}, w[4] = {0}, y[4] = {0};
    sdc_conv2d_args bad = {.x = x, .C = 1, .H = 2, .W = 2, .w = w, .wdtype = SDC_F32, .O = 1,
                           .kh = 3, .kw = 3, .stride = 1, .pad = 0, .y = y};
    CHECK(sdc_conv2d(pool, &bad) == -1, "kernel larger than the padded image is rejected");
    bad.kh = bad.kw = 1;
    bad.stride = 0;
    CHECK(sdc_conv2d(pool, &bad) == -1, "stride 0 is rejected");
    bad.stride = 1;
    bad.wdtype = SDC_I32;
    CHECK(sdc_conv2d(pool, &bad) == -1, "integer weights are rejected");
    sdc_pool_free(pool);
}

int main(void) {
    test_rand_seed(0x9e3779b97f4a7c15ull);
    int mr = 0, nr = 0;
    sdc_gemm_tile_shape(&mr, &nr);
    printf("gemm micro-kernel tile %d x %d\n", mr, nr);
#if defined(__aarch64__)
    CHECK(mr == 8 && nr == 12, "AArch64 runs the NEON 8 x 12 micro-kernel, not %d x %d", mr, nr);
#endif
    test_pool();
    sdc_pool *pool = sdc_pool_new(2);
    test_gemm_parity(pool);
    test_gemm_awkward(pool);
    sdc_pool_free(pool);
    test_gemm_threads();
    test_conv2d();
    TEST_MAIN_END();
}
