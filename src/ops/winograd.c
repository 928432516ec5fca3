/* src/ops/winograd.c: Winograd F(4x4, 3x3) convolution (the contract is in winograd.h).
 *
 * Notation: x[B, C, H, W] -> y[B, O, H, W]; tiles are the 4x4 output blocks, numbered
 * t = (b*th + ty)*tw + tx with th = ceil(H/4), tw = ceil(W/4); tile t reads the 6x6 patch of
 * image b at rows 4ty-1 .. 4ty+4 and columns 4tx-1 .. 4tx+4 (zeros outside: the pad of 1), and
 * writes the part of its 4x4 block that lies inside the image. The 36 transform points are
 * xi = 6*r + s (row r, column s of the 6x6 transformed patch).
 *
 * Two schedules, both computing every output element with the same instructions:
 *
 * Resident (the transformed input of the whole batch fits V_BUDGET, 28 MB: UNet 64x64 and
 * 32x32, 16x16 at batch 2; every transform is computed exactly once):
 *   pool run 1: V[block][xi][tile panel][C][NR] = B^T d B   for every tile block
 *   pool run 2: blocks of obt output channels, split over threads; per block:
 *     U[xi][O panel][C][MR] = G g G^T                        weights converted from f16/bf16
 *     for each tile block: M = U . V (36 GEMMs), y[tile] = A^T M A + bias (+ y)
 *   The block's U (obt x C x 36 floats, ~2 MB) stays in the thread's L2 across tile blocks.
 *
 * Chunked (large images: the VAE at 128x128 and up):
 *   for each chunk of output channels            (U: at most U_BUDGET bytes)
 *     pool run 1: U[xi][O panel][C][MR] = G g G^T
 *     pool run 2: work items (tile block, block of obt channels), tile-block major:
 *       V[xi][tile panel][C][NR] = B^T d B                once per tile block and thread
 *       M = U . V, y[tile] = A^T M A + bias (+ y)
 *
 * The products, per work item: for xi, for K block, for tile panel, for O panel:
 *   M[xi][obt][tb] (+)= U panel . V panel          sdc_gemm_microkernel (MR x NR tile)
 * U and V are stored in the micro-kernel's packed layouts, so the GEMMs need no packing. The
 * transforms run on vectors of VL tiles (lanes = tiles): 6x6 patches are gathered (with AVX-512,
 * runs of 8 tiles along a row by masked loads and permutes; elsewhere lane by lane),
 * transformed with plain vector arithmetic, and stored as contiguous runs of a V panel. The
 * weight transform runs on MR output channels at once (plain loops over 16 lanes). */
#include "ops/winograd.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__AVX512F__)
#define VL 16
#elif defined(__AVX__)
#define VL 8
#else
#define VL 4
#endif
typedef float vf __attribute__((vector_size(VL * 4)));

#define KC 256                /* depth of a K block: a KC x NR panel of V stays in L1 */
#define U_BUDGET (24u << 20)  /* bytes of transformed weights per chunk of output channels */
#define OB_ROWS 112           /* chunked mode: output channels per work item (rounded to MR) */
#define V_BUDGET (48u << 20)  /* resident mode when the whole batch's V fits this many bytes */
#define V_BUDGET_SMALL_C (16u << 20) /* ... or this many when C <= 512 */
#define RES_ROWS 56           /* resident mode: output channels per block (rounded to MR) */
#define RES_U_BYTES (3u << 20) /* resident mode: a block's U up to this size is made whole */
/* Below this many multiply-adds a call runs on the calling thread: waking the pool costs more. */
#define MIN_THREADED_MACS (1 << 18)

/* ---------------------------------------------------------------------------------------------- */
/* The three transforms, on vectors of VL tiles                                                    */

/* r = B^T d for one column of 6 (d and r strided by ds and rs vectors). */
static inline __attribute__((always_inline)) void bt6(const vf *d, int ds, vf *r, int rs) {
    vf d0 = d[0], d1 = d[ds], d2 = d[2 * ds], d3 = d[3 * ds], d4 = d[4 * ds], d5 = d[5 * ds];
    vf a = d4 - 4.0f * d2, b = d3 - 4.0f * d1; /* rows 1, 2 */
    vf c = d4 - d2, e = 2.0f * (d3 - d1);      /* rows 3, 4 */
    r[0] = 4.0f * d0 - 5.0f * d2 + d4;
    r[rs] = a + b;
    r[2 * rs] = a - b;
    r[3 * rs] = c + e;
    r[4 * rs] = c - e;
    r[5 * rs] = 4.0f * d1 - 5.0f * d3 + d5;
}

/* y = A^T m for one column of 6 -> 4. */
static inline __attribute__((always_inline)) void at6(const vf *m, int ms, vf *y, int ys) {
    vf m0 = m[0], m1 = m[ms], m2 = m[2 * ms], m3 = m[3 * ms], m4 = m[4 * ms], m5 = m[5 * ms];
    vf a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4;
    y[0] = m0 + a + c;
    y[ys] = b + 2.0f * d;
    y[2 * ys] = a + 4.0f * c;
    y[3 * ys] = b + 8.0f * d + m5;
}

/* u = G g G^T for WL kernels at once (lane l of g[k] is element k of kernel l, row-major 3x3):
 * plain loops over a fixed number of lanes, which the compiler vectorizes on any target. */
#define WL 16 /* lanes of the weight transform: at least the micro-kernel's MR on every target */
static void weight_transform(float g[9][WL], float u[36][WL]) {
    float t[6][3][WL]; /* G g: rows of G times the columns of g */
    for (int j = 0; j < 3; j++)
        for (int l = 0; l < WL; l++) {
            float g0 = g[j][l], g1 = g[3 + j][l], g2 = g[6 + j][l];
            float p = g0 + g2, q = g0 * (1.0f / 24) + g2 * (1.0f / 6);
            t[0][j][l] = g0 * 0.25f;
            t[1][j][l] = (p + g1) * (-1.0f / 6);
            t[2][j][l] = (p - g1) * (-1.0f / 6);
            t[3][j][l] = q + g1 * (1.0f / 12);
            t[4][j][l] = q - g1 * (1.0f / 12);
            t[5][j][l] = g2;
        }
    for (int i = 0; i < 6; i++) /* (G g) G^T: the same on each row */
        for (int l = 0; l < WL; l++) {
            float g0 = t[i][0][l], g1 = t[i][1][l], g2 = t[i][2][l];
            float p = g0 + g2, q = g0 * (1.0f / 24) + g2 * (1.0f / 6);
            u[6 * i + 0][l] = g0 * 0.25f;
            u[6 * i + 1][l] = (p + g1) * (-1.0f / 6);
            u[6 * i + 2][l] = (p - g1) * (-1.0f / 6);
            u[6 * i + 3][l] = q + g1 * (1.0f / 12);
            u[6 * i + 4][l] = q - g1 * (1.0f / 12);
            u[6 * i + 5][l] = g2;
        }
}

/* ---------------------------------------------------------------------------------------------- */
/* Plan and work items                                                                             */

typedef struct wino {
    const sdc_conv2d_args *a;
    int B, C, H, W, O;
    int th, tw;       /* tiles per image: rows, columns */
    int64_t T;        /* tiles in the batch */
    int mr, nr;       /* micro-kernel tile */
    int tb;           /* tiles per block (a multiple of nr) */
    int kc;           /* depth of the K blocks: a function of C alone (determinism) */
    int obt;          /* output channels per work item (a multiple of mr) */
    int o0, oc;       /* the current chunk: channels o0 .. o0+oc-1 */
    int npo;          /* MR panels in the chunk */
    int n_os;         /* work items per tile block */
    int64_t items;    /* work items in the chunk */
    float *U;         /* chunked: [36][npo][C][mr]; resident: V of every tile block */
    float *scratch;   /* per thread: chunked: V [36][tb/nr][C][nr], then M [36][obt][tb];
                       * resident: U [36][obt/mr][C][mr], then M */
    size_t v_floats;  /* one tile block's V */
    size_t s_floats;  /* per thread scratch before M: V (chunked) or U (resident) */
    size_t m_floats;
    int res_whole;    /* resident mode: a block's U is transformed whole (else per K block) */
} wino;

static inline float weight_at(const void *w, sdc_dtype dt, size_t i) {
    const unsigned char *p = w;
    uint16_t h;
    float f;
    switch (dt) {
    case SDC_F16: memcpy(&h, p + 2 * i, 2); return sdc_f16_to_f32(h);
    case SDC_BF16: memcpy(&h, p + 2 * i, 2); return sdc_bf16_to_f32(h);
    default: memcpy(&f, p + 4 * i, 4); return f;
    }
}

/* dst[0..n) = the n weights at src (dtype dt) as f32. */
static void cvt_weights(float *restrict dst, const unsigned char *restrict src, sdc_dtype dt, int n) {
    int i = 0;
#if defined(__F16C__)
    if (dt == SDC_F16)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * i))));
#endif
    for (; i < n; i++) dst[i] = weight_at(src, dt, (size_t)i);
}

#define WCB 16 /* input channels converted per step of the weight transform */

/* Panels pn0 .. pn1-1 of U[xi][npo][nc][mr] = G g G^T for output channels o0 .. o0+oc-1 (rows
 * past oc are zeros) and input channels cs .. cs+nc-1, the mr output channels of a panel in the
 * lanes of one weight transform. */
static void transform_panels(const wino *w, int o0, int oc, int cs, int nc, int npo, int pn0, int pn1,
                             float *U) {
    const int C = w->C, mr = w->mr;
    const size_t plane = (size_t)npo * nc * mr; /* floats per transform point */
    const sdc_dtype dt = w->a->wdtype;
    const size_t es = sdc_dtype_table[dt].size;
    for (int pn = pn0; pn < pn1; pn++) {
        int rows = oc - pn * mr < mr ? oc - pn * mr : mr;
        const unsigned char *src = (const unsigned char *)w->a->w + ((size_t)(o0 + pn * mr) * C + cs) * 9 * es;
        float *dst = U + (size_t)pn * nc * mr;
        float g[9][WL], u[36][WL];
        memset(g, 0, sizeof g); /* lanes past the last row stay zero */
        for (int c0 = 0; c0 < nc; c0 += WCB) {
            int cb = nc - c0 < WCB ? nc - c0 : WCB;
            float wf[WL][WCB * 9]; /* rows of the panel, channels c0 .. c0+cb-1, as f32 */
            float ut[36][WCB * WL + WL]; /* U[xi][panel][c0 .. c0+cb-1][mr], staged */
            for (int l = 0; l < rows; l++) cvt_weights(wf[l], src + ((size_t)l * C + c0) * 9 * es, dt, cb * 9);
            for (int c = 0; c < cb; c++) {
                for (int l = 0; l < rows; l++)
                    for (int k = 0; k < 9; k++) g[k][l] = wf[l][c * 9 + k];
                weight_transform(g, u);
                /* WL lanes at c*mr: the WL - mr past the panel are rewritten by channel c + 1 */
                for (int xi = 0; xi < 36; xi++) memcpy(&ut[xi][c * mr], u[xi], sizeof u[xi]);
            }
            for (int xi = 0; xi < 36; xi++)
                memcpy(dst + xi * plane + (size_t)c0 * mr, ut[xi], (size_t)cb * mr * sizeof(float));
        }
    }
}

/* Chunked mode, pool run 1: the chunk's U, split by MR panels. */
static void weights_task(void *p, int ith, int nth) {
    const wino *w = p;
    transform_panels(w, w->o0, w->oc, 0, w->C, w->npo, w->npo * ith / nth, w->npo * (ith + 1) / nth, w->U);
}

#if defined(__AVX512F__)
/* Masks for gather_runs: for half h (lanes 8h .. 8h+7, a run of 8 tiles whose patches start at
 * column c0[h]), the lanes of the loads at columns c0 + j (k = 0) and c0 + j + 16 (k = 1) that
 * lie in [0, W) and are used: all 16 of the first, lanes 0, 4, 8, 12 of the second. */
static void run_masks(const int c0[2], int W, __mmask16 m[2][6][2]) {
    for (int h = 0; h < 2; h++)
        for (int j = 0; j < 6; j++)
            for (int k = 0; k < 2; k++) {
                unsigned bits = 0;
                for (int q = 0; q < 16; q++) {
                    int col = c0[h] + j + 16 * k + q;
                    if (col >= 0 && col < W && (k == 0 || q % 4 == 0)) bits |= 1u << q;
                }
                m[h][j][k] = (__mmask16)bits;
            }
}

/* d[6*i + j] for 16 tiles made of two runs of 8 tiles consecutive in a tile row (lanes 0-7 and
 * 8-15; the two may be one run of 16): row i of run h's tile l patch is row ih0[h] + i of the
 * plane xc[h] at columns c0[h] + 4l .. + 5 (zeros outside the plane). Per (i, j): two masked
 * loads per run, then every 4th element (two cross-vector permutes and a shuffle) instead of
 * 16 scalar loads. */
static inline void gather_runs(const float *const xc[2], const int ih0[2], const int c0[2], int H,
                               int W, __mmask16 m[2][6][2], vf d[36]) {
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
    for (int i = 0; i < 6; i++) {
        const float *row[2];
        __mmask16 ok[2];
        for (int h = 0; h < 2; h++) {
            int ih = ih0[h] + i;
            ok[h] = ih >= 0 && ih < H ? 0xffff : 0;
            row[h] = xc[h] + (ok[h] ? (ptrdiff_t)ih * W + c0[h] : 0); /* c0 = -1: masked off */
        }
        for (int j = 0; j < 6; j++) {
            __m512 u0 = _mm512_maskz_loadu_ps(m[0][j][0] & ok[0], row[0] + j);
            __m512 u1 = _mm512_maskz_loadu_ps(m[0][j][1] & ok[0], row[0] + j + 16);
            __m512 u2 = _mm512_maskz_loadu_ps(m[1][j][0] & ok[1], row[1] + j);
            __m512 u3 = _mm512_maskz_loadu_ps(m[1][j][1] & ok[1], row[1] + j + 16);
            __m512 lo = _mm512_permutex2var_ps(u0, idx, u1), hi = _mm512_permutex2var_ps(u2, idx, u3);
            d[6 * i + j] = (vf)_mm512_shuffle_f32x4(lo, hi, 0x44);
        }
    }
}
#endif

/* V = B^T d B for the tiles t0 .. t0+tb-1 (tiles past T read as zeros). */
static void input_transform(const wino *w, int64_t t0, float *V) {
    const int C = w->C, H = w->H, W = w->W, nr = w->nr, ntp = w->tb / nr;
    const size_t plane = (size_t)H * W, xi_stride = (size_t)ntp * C * nr;
    const float *x = w->a->x;
    for (int g = 0; g < w->tb; g += VL) {
        ptrdiff_t off[VL]; /* x index of image b's channel 0 (and, when the whole group is inside,
                            * of the patch's element (0, 0) in it), or -1: no tile */
        int ih0[VL], iw0[VL], inside = 1;
        for (int l = 0; l < VL; l++) {
            int64_t t = t0 + g + l;
            if (t >= w->T) {
                off[l] = -1, ih0[l] = iw0[l] = 0, inside = 0;
                continue;
            }
            int64_t b = t / ((int64_t)w->th * w->tw), r = t % ((int64_t)w->th * w->tw);
            ih0[l] = (int)(r / w->tw) * 4 - 1, iw0[l] = (int)(r % w->tw) * 4 - 1;
            off[l] = (ptrdiff_t)(b * C * (int64_t)plane);
            if (ih0[l] < 0 || iw0[l] < 0 || ih0[l] + 6 > H || iw0[l] + 6 > W) inside = 0;
        }
#if defined(__AVX512F__)
        /* runs: tiles 0-7 and 8-15 of the group are each consecutive in one tile row */
        int run = 1, c0[2] = {iw0[0], iw0[8]}, r0[2] = {ih0[0], ih0[8]};
        for (int h = 0; h < 2; h++)
            run &= off[8 * h] >= 0 && off[8 * h + 7] == off[8 * h] && ih0[8 * h + 7] == ih0[8 * h] &&
                   iw0[8 * h + 7] == iw0[8 * h] + 28;
        __mmask16 masks[2][6][2];
        if (run) run_masks(c0, W, masks);
        ptrdiff_t img[2] = {off[0], off[8]}; /* before off[] moves to the patch corner below */
#endif
        if (inside)
            for (int l = 0; l < VL; l++) off[l] += (ptrdiff_t)ih0[l] * W + iw0[l];
        float *vg = V + (size_t)(g / nr) * C * nr + g % nr;
        for (int c = 0; c < C; c++) {
            float d[36][VL] __attribute__((aligned(64)));
            vf dv[36], t[36];
            const float *xc = x + (size_t)c * plane;
#if defined(__AVX512F__)
            if (run) {
                const float *planes[2] = {x + img[0] + (size_t)c * plane, x + img[1] + (size_t)c * plane};
                gather_runs(planes, r0, c0, H, W, masks, dv);
                goto transform;
            }
#endif
            if (inside) { /* the common case: 36 loads per tile, no bounds */
                for (int l = 0; l < VL; l++) {
                    const float *s = xc + off[l];
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) d[6 * i + j][l] = s[(ptrdiff_t)i * W + j];
                }
            } else {
                for (int l = 0; l < VL; l++)
                    for (int i = 0; i < 6; i++)
                        for (int j = 0; j < 6; j++) {
                            int ih = ih0[l] + i, iw = iw0[l] + j;
                            d[6 * i + j][l] = off[l] >= 0 && ih >= 0 && ih < H && iw >= 0 && iw < W
                                                  ? xc[off[l] + (ptrdiff_t)ih * W + iw]
                                                  : 0.0f;
                        }
            }
            memcpy(dv, d, sizeof dv);
#if defined(__AVX512F__)
        transform:
#endif
            for (int j = 0; j < 6; j++) bt6(dv + j, 6, t + j, 6); /* columns: B^T d */
            for (int i = 0; i < 6; i++) bt6(t + 6 * i, 1, dv + 6 * i, 1); /* rows: (B^T d) B */
            float *dst = vg + (size_t)c * nr;
            for (int xi = 0; xi < 36; xi++) memcpy(dst + xi * xi_stride, &dv[xi], sizeof(vf));
        }
    }
}

#if defined(__AVX512F__)
/* One output row of 16 consecutive tiles, all inside the image: y[4l + j] = v[j] lane l (+ y),
 * 64 contiguous floats, by two rounds of interleaving permutes instead of 64 scalar stores. */
static inline void store_run16(float *y, vf v0, vf v1, vf v2, vf v3, int accumulate) {
    const __m512i lo2 = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i hi2 = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512i lo4 = _mm512_setr_epi32(0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23);
    const __m512i hi4 = _mm512_setr_epi32(8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31);
    __m512 a = (__m512)v0, b = (__m512)v1, c = (__m512)v2, d = (__m512)v3;
    __m512 ab_lo = _mm512_permutex2var_ps(a, lo2, b), ab_hi = _mm512_permutex2var_ps(a, hi2, b);
    __m512 cd_lo = _mm512_permutex2var_ps(c, lo2, d), cd_hi = _mm512_permutex2var_ps(c, hi2, d);
    __m512 out[4] = {_mm512_permutex2var_ps(ab_lo, lo4, cd_lo), _mm512_permutex2var_ps(ab_lo, hi4, cd_lo),
                     _mm512_permutex2var_ps(ab_hi, lo4, cd_hi), _mm512_permutex2var_ps(ab_hi, hi4, cd_hi)};
    for (int q = 0; q < 4; q++) {
        __m512 r = out[q];
        if (accumulate) r = _mm512_add_ps(_mm512_loadu_ps(y + 16 * q), r);
        _mm512_storeu_ps(y + 16 * q, r);
    }
}
#endif

/* y = A^T M A + bias (+ y) for output channels o .. o + nrows - 1 of tiles t0 ... */
static void output_transform(const wino *w, int64_t t0, int o, int nrows, const float *M) {
    const sdc_conv2d_args *a = w->a;
    const int H = w->H, W = w->W, tb = w->tb;
    const size_t plane = (size_t)H * W;
    for (int g = 0; g < tb && t0 + g < w->T; g += VL) {
        float *ybase[VL]; /* the tile's first output in channel o */
        int rows[VL], cols[VL];
        for (int l = 0; l < VL; l++) {
            int64_t t = t0 + g + l;
            rows[l] = cols[l] = 0;
            ybase[l] = NULL;
            if (t >= w->T) continue;
            int64_t b = t / ((int64_t)w->th * w->tw), r = t % ((int64_t)w->th * w->tw);
            int oh = (int)(r / w->tw) * 4, ow = (int)(r % w->tw) * 4;
            rows[l] = H - oh < 4 ? H - oh : 4;
            cols[l] = W - ow < 4 ? W - ow : 4;
            ybase[l] = a->y + ((size_t)b * w->O + o) * plane + (size_t)oh * W + ow;
        }
#if defined(__AVX512F__)
        /* run: 16 whole tiles side by side in one tile row (consecutive tiles in two rows or
         * images are never exactly 4 floats apart when tiles are 4 wide) */
        int run = ybase[0] != NULL;
        for (int l = 0; l < VL && run; l++)
            run = ybase[l] == ybase[0] + 4 * l && rows[l] == 4 && cols[l] == 4;
#endif
        for (int r = 0; r < nrows; r++) {
            vf m[36], t[24], yv[16];
            for (int xi = 0; xi < 36; xi++)
                memcpy(&m[xi], M + ((size_t)xi * w->obt + r) * tb + g, sizeof(vf));
            for (int j = 0; j < 6; j++) at6(m + j, 6, t + j, 6);      /* columns: A^T M, 4 x 6 */
            for (int i = 0; i < 4; i++) at6(t + 6 * i, 1, yv + 4 * i, 1); /* rows: (A^T M) A */
            float bias = a->bias ? a->bias[o + r] : 0.0f;
#if defined(__AVX512F__)
            if (run) {
                for (int i = 0; i < 4; i++)
                    store_run16(ybase[0] + (size_t)r * plane + (size_t)i * W, yv[4 * i] + bias,
                                yv[4 * i + 1] + bias, yv[4 * i + 2] + bias, yv[4 * i + 3] + bias,
                                a->accumulate);
                continue;
            }
#endif
            float ys[16][VL] __attribute__((aligned(64)));
            memcpy(ys, yv, sizeof ys);
            for (int l = 0; l < VL; l++) {
                if (!ybase[l]) continue;
                float *yp = ybase[l] + (size_t)r * plane;
                for (int i = 0; i < rows[l]; i++)
                    for (int j = 0; j < cols[l]; j++) {
                        float v = ys[4 * i + j][l] + bias;
                        yp[(size_t)i * W + j] = a->accumulate ? yp[(size_t)i * W + j] + v : v;
                    }
            }
        }
    }
}

/* One work item's products and output: output channels o .. o+nrows-1, whose U rows are panels
 * pan0 .. of U[xi][npo][C][mr], times the tile block t0 whose V is given; M is the item's
 * product buffer [36][obt][tb]. */
static void item_product(const wino *w, const float *U, int npo, int pan0, int nrows, int o,
                         const float *V, int64_t t0, float *M) {
    const int C = w->C, mr = w->mr, nr = w->nr, tb = w->tb, ntp = tb / nr;
    int ntiles = w->T - t0 < tb ? (int)(w->T - t0) : tb;
    int jps = (ntiles + nr - 1) / nr, ips = (nrows + mr - 1) / mr;
    for (int xi = 0; xi < 36; xi++)
        for (int pc = 0; pc < C; pc += w->kc) {
            int kc = C - pc < w->kc ? C - pc : w->kc;
            for (int jp = 0; jp < jps; jp++) {
                const float *pb = V + (((size_t)xi * ntp + jp) * C + pc) * nr;
                for (int ip = 0; ip < ips; ip++) {
                    const float *pa = U + (((size_t)xi * npo + pan0 + ip) * C + pc) * mr;
                    float *c = M + ((size_t)xi * w->obt + (size_t)ip * mr) * tb + (size_t)jp * nr;
                    sdc_gemm_microkernel(kc, pa, pb, c, tb, pc > 0);
                }
            }
        }
    output_transform(w, t0, o, nrows, M);
}

/* Chunked mode, pool run 2: work items [n*ith/nth, n*(ith+1)/nth), tile-block major; each
 * thread transforms the input of its tile blocks (V) once per chunk. */
static void items_task(void *p, int ith, int nth) {
    const wino *w = p;
    int64_t i0 = w->items * ith / nth, i1 = w->items * (ith + 1) / nth;
    float *V = w->scratch + (size_t)ith * (w->s_floats + w->m_floats), *M = V + w->s_floats;
    int64_t have = -1; /* the tile block whose V is computed */
    for (int64_t it = i0; it < i1; it++) {
        int64_t blk = it / w->n_os;
        int orow = (int)(it % w->n_os) * w->obt;
        int nrows = w->oc - orow < w->obt ? w->oc - orow : w->obt;
        if (blk != have) {
            input_transform(w, blk * w->tb, V);
            have = blk;
        }
        item_product(w, w->U, w->npo, orow / w->mr, nrows, w->o0 + orow, V, blk * w->tb, M);
    }
}

/* Resident mode, pool run 1: V of every tile block, split by blocks, into w->U's place. */
static void vall_task(void *p, int ith, int nth) {
    const wino *w = p;
    int64_t n_tb = (w->T + w->tb - 1) / w->tb;
    for (int64_t blk = n_tb * ith / nth; blk < n_tb * (ith + 1) / nth; blk++)
        input_transform(w, blk * w->tb, w->U + (size_t)blk * w->v_floats);
}

/* Resident mode, pool run 2: blocks of obt output channels, split over threads. When the
 * block's U fits RES_U_BYTES it is transformed once and run over each tile block in turn (M for
 * one tile block). Otherwise, per block and K block (kc input channels): the block's U for those channels (36 x obt x kc floats, which
 * stay in L2), then its products with every tile block's V, accumulated in M [blocks][36][obt][tb];
 * then the output transforms. Each M element still sums its K blocks in increasing order. */
static void resident_task(void *p, int ith, int nth) {
    const wino *w = p;
    const int C = w->C, mr = w->mr, nr = w->nr, tb = w->tb, ntp = tb / nr;
    int n_ob = (w->O + w->obt - 1) / w->obt, npo = w->obt / mr;
    int64_t n_tb = (w->T + tb - 1) / tb;
    float *U = w->scratch + (size_t)ith * (w->s_floats + w->m_floats), *Mall = U + w->s_floats;
    const size_t m_blk = (size_t)36 * w->obt * tb; /* one tile block's M */
    for (int ob = n_ob * ith / nth; ob < n_ob * (ith + 1) / nth; ob++) {
        int o = ob * w->obt, nrows = w->O - o < w->obt ? w->O - o : w->obt;
        int ips = (nrows + mr - 1) / mr;
        if (w->res_whole) { /* the block's whole U fits L2: one transform, outputs per tile block */
            transform_panels(w, o, nrows, 0, C, npo, 0, ips, U);
            for (int64_t blk = 0; blk < n_tb; blk++)
                item_product(w, U, npo, 0, nrows, o, w->U + (size_t)blk * w->v_floats, blk * tb, Mall);
            continue;
        }
        for (int pc = 0; pc < C; pc += w->kc) {
            int kc = C - pc < w->kc ? C - pc : w->kc;
            transform_panels(w, o, nrows, pc, kc, npo, 0, ips, U);
            for (int64_t blk = 0; blk < n_tb; blk++) {
                const float *V = w->U + (size_t)blk * w->v_floats;
                float *M = Mall + (size_t)blk * m_blk;
                int ntiles = w->T - blk * tb < tb ? (int)(w->T - blk * tb) : tb;
                int jps = (ntiles + nr - 1) / nr;
                for (int xi = 0; xi < 36; xi++)
                    for (int jp = 0; jp < jps; jp++) {
                        const float *pb = V + (((size_t)xi * ntp + jp) * C + pc) * nr;
                        for (int ip = 0; ip < ips; ip++) {
                            const float *pa = U + ((size_t)xi * npo + ip) * kc * mr;
                            float *c = M + ((size_t)xi * w->obt + (size_t)ip * mr) * tb + (size_t)jp * nr;
                            sdc_gemm_microkernel(kc, pa, pb, c, tb, pc > 0);
                        }
                    }
            }
        }
        for (int64_t blk = 0; blk < n_tb; blk++) output_transform(w, blk * tb, o, nrows, Mall + (size_t)blk * m_blk);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Entry points                                                                                    */

int sdc_winograd_supported(const sdc_conv2d_args *a) {
    return a->kh == 3 && a->kw == 3 && a->stride == 1 && a->pad == 1;
}

int sdc_winograd_preferred(const sdc_conv2d_args *a) {
    if (!sdc_winograd_supported(a)) return 0;
    int64_t B = a->batch > 0 ? a->batch : 1;
    int64_t tiles = B * ((a->H + 3) / 4) * ((a->W + 3) / 4);
    /* measured (bench_ops, f16 weights, 1 thread): 1280 channels at 16x16 batch 2 (32 tiles)
     * run 1.45x faster than direct, at 16x16 batch 1 (16 tiles) 0.75x, at 8x8 batch 2 0.5x:
     * the weight transform is paid once per call, the GEMMs scale with the tiles. Few
     * channels leave the GEMMs too short to pay for the input and output transforms. */
    return tiles >= 32 && a->C >= 16 && a->O >= 16;
}

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

int sdc_conv2d_winograd(sdc_pool *pool, const sdc_conv2d_args *a) {
    if (!sdc_winograd_supported(a) || !a->x || !a->w || !a->y || a->C <= 0 || a->O <= 0 ||
        a->H <= 0 || a->W <= 0 || a->batch < 0 || a->H > INT_MAX / 4 || a->W > INT_MAX / 4)
        return -1;
    if (a->wdtype != SDC_F32 && a->wdtype != SDC_F16 && a->wdtype != SDC_BF16) return -1;
    wino w = {.a = a, .B = a->batch > 0 ? a->batch : 1, .C = a->C, .H = a->H, .W = a->W, .O = a->O};
    sdc_gemm_tile_shape(&w.mr, &w.nr);
    if (w.nr % VL != 0 || w.mr > WL) return -1; /* no such build: transform lanes fit panels */
    w.th = (w.H + 3) / 4, w.tw = (w.W + 3) / 4;
    w.T = (int64_t)w.B * w.th * w.tw;
    int tb = w.C <= 512 ? 64 : 32;
    w.tb = (int)round_up((size_t)(w.T < tb ? w.T : tb), (size_t)w.nr);
    int kblocks = (w.C + KC - 1) / KC;
    w.kc = (w.C + kblocks - 1) / kblocks;

    int nth = sdc_pool_size(pool);
    if (36.0 * w.O * w.C * (double)w.T < MIN_THREADED_MACS) nth = 1;
    int64_t n_tb = (w.T + w.tb - 1) / w.tb;
    w.v_floats = round_up((size_t)36 * w.C * w.tb, 16);
    size_t u_row = (size_t)36 * w.C; /* floats of U per output channel */

    /* Resident mode when the transformed input of the whole batch fits V_BUDGET (every
     * transform is then computed exactly once), for C <= 512 only up to V_BUDGET_SMALL_C: it
     * streams V once per block of output channels, and with few input channels the chunked
     * mode's repeated input transforms cost less than that (measured at 320 x 64x64 x 2). */
    size_t v_all = (size_t)n_tb * w.v_floats * sizeof(float);
    if (v_all <= V_BUDGET_SMALL_C || (w.C > 512 && v_all <= V_BUDGET)) {
        int obt = (int)round_up(RES_ROWS, (size_t)w.mr);
        int per = (int)round_up((size_t)(w.O + 2 * nth - 1) / (2 * nth), (size_t)w.mr);
        w.obt = per < obt ? per : obt; /* at least two blocks per thread when O allows */
        w.res_whole = u_row * w.obt * sizeof(float) <= RES_U_BYTES;
        w.s_floats = round_up((size_t)36 * w.obt * (w.res_whole ? w.C : w.kc), 16);
        w.m_floats = round_up((size_t)(w.res_whole ? 1 : n_tb) * 36 * w.obt * w.tb, 16);
        w.U = aligned_alloc(64, (size_t)n_tb * w.v_floats * sizeof(float));
        w.scratch = aligned_alloc(64, (w.s_floats + w.m_floats) * (size_t)sdc_pool_size(pool) * sizeof(float));
        if (!w.U || !w.scratch) {
            free(w.U), free(w.scratch);
            return -1;
        }
        if (nth == 1) {
            vall_task(&w, 0, 1);
            resident_task(&w, 0, 1);
        } else {
            sdc_pool_run(pool, vall_task, &w);
            sdc_pool_run(pool, resident_task, &w);
        }
        free(w.U), free(w.scratch);
        return 0;
    }

    /* Chunked mode. Output channels per item: OB_ROWS, fewer when there are too few tile
     * blocks to share */
    int obt = (int)round_up(OB_ROWS, (size_t)w.mr);
    if (n_tb < 2 * nth) {
        int want = (int)((2 * nth + n_tb - 1) / n_tb); /* items per tile block */
        int per = (int)round_up((size_t)(w.O + want - 1) / want, (size_t)w.mr);
        if (per < obt) obt = per;
    }
    w.obt = obt;
    /* chunk: as many whole items as U_BUDGET allows (at least one) */
    int chunk = (int)(U_BUDGET / (u_row * sizeof(float)) / (size_t)obt) * obt;
    if (chunk < obt) chunk = obt;
    if ((size_t)chunk > round_up((size_t)w.O, (size_t)obt)) chunk = (int)round_up((size_t)w.O, (size_t)obt);

    w.s_floats = w.v_floats;
    w.m_floats = round_up((size_t)36 * obt * w.tb, 16);
    size_t u_bytes = round_up(u_row * chunk, 16) * sizeof(float);
    size_t s_bytes = (w.s_floats + w.m_floats) * (size_t)sdc_pool_size(pool) * sizeof(float);
    /* two blocks, each under glibc's largest mmap threshold (32 MB): after the first call they
     * come from the heap without page faults (multiples of 64 bytes, as aligned_alloc wants) */
    w.U = aligned_alloc(64, u_bytes);
    w.scratch = aligned_alloc(64, s_bytes);
    if (!w.U || !w.scratch) {
        free(w.U), free(w.scratch);
        return -1;
    }
    for (w.o0 = 0; w.o0 < w.O; w.o0 += chunk) {
        w.oc = w.O - w.o0 < chunk ? w.O - w.o0 : chunk;
        w.npo = (w.oc + w.mr - 1) / w.mr;
        w.n_os = (w.oc + obt - 1) / obt;
        w.items = n_tb * w.n_os;
        if (nth == 1) {
            weights_task(&w, 0, 1);
            items_task(&w, 0, 1);
        } else {
            sdc_pool_run(pool, weights_task, &w);
            sdc_pool_run(pool, items_task, &w);
        }
    }
    free(w.U), free(w.scratch);
    return 0;
}
