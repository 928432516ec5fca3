/* src/ops/gemm.c: the optimized GEMM, C[M,N] (+)= A[M,K] . B[K,N] (+ bias), after GotoBLAS/BLIS.
 *
 * Loop nest, per thread (the thread owns a band of C rows or of C columns, see below):
 *
 *   for jc in N step NC                       B block:  KC x NC, packed in NR-wide panels
 *     for pc in K step KC                     (converted to f32 here: F16/BF16 weights stay in
 *       pack B[pc:pc+KC, jc:jc+NC]             their checkpoint dtype until this point)
 *       for ic in M step MC                   A block:  MC x KC, packed in MR-tall panels
 *         pack A[ic:ic+MC, pc:pc+KC]
 *         for ir in MC step MR                A panel (MR x KC, broadcast by the kernel) in L1
 *           for jr in NC step NR              B panels (KC x NR, vector loads) stream from L2
 *             kernel(A panel, B panel) -> C   micro-kernel: an MR x NR tile of C in registers,
 *                                             KC rank-1 updates, then one write-back
 *
 * As in BLIS, the operand the kernel broadcasts (here A) stays in L1 and the one it loads as
 * vectors streams from L2: the packed B block (KC x NC, 960 KB) fits the 2 MB L2 with room to spare.
 * The former order (B panel of 40 KB kept in the 48 KB L1 across the ir loop, B block of 2.6 MB)
 * overflowed both caches: 1.1-1.25x slower on the SD linears with N >= 2560. Each B block (the
 * weights of a linear, widened from f16) is packed once per thread and call; A is packed
 * ceil(N / NC) times, O(M*K) each, against O(M*K*NC) flops.
 *
 * Panels are zero-padded to full MR/NR, so edge tiles run the same kernel and only the write-back
 * is partial. The write-back adds the tile to C (or overwrites it in the first K block when not
 * accumulating) and, in the last K block, adds bias_col then bias_row.
 *
 * Determinism: every element of C is computed by the same instruction sequence (an FMA chain over
 * one KC block, then adds across blocks in increasing k) whatever tile, thread or edge it falls in,
 * so results are bit-identical for any thread count and any partition.
 *
 * Threading: the larger of M and N (counted in MR/NR tiles) is split into one contiguous band per
 * thread. Each thread packs its own A and B blocks (the shared operand is packed once per thread:
 * a cost of O(K*N) against O(M*K*N/nth) flops), so there are no barriers inside a call.
 *
 * Memory: per thread one A block (MC x KC) and one B block (KC x NC) of f32, allocated once per
 * call (under 1.5 MB per thread). If that allocation fails, sdc_gemm falls back to sdc_gemm_ref and
 * sdc_gemm_ex returns -1.
 *
 * Portability: the micro-kernel is written with GNU C vector extensions. The vector width and
 * the tile shape follow the target: AVX-512 (16 lanes, 14 x 32 tile), AVX/AVX2 (8 lanes, 6 x 16),
 * AArch64 NEON (4 lanes, 8 x 12, with fmla by element: see kernel_nv), and plain SSE2 or anything
 * else (4 lanes, 6 x 8). On AArch64, f16 weights are widened with NEON (vcvt_f32_f16) as they
 * are packed. */
#include "ops/gemm.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__F16C__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

/* ---------------------------------------------------------------------------------------------- */
/* Blocking parameters                                                                             */

#if defined(__AVX512F__)
#define VL 16 /* f32 lanes per vector */
#define MR 14 /* rows of the register tile */
#define NV 2  /* vectors per row of the register tile */
#elif defined(__AVX__)
#define VL 8
#define MR 6
#define NV 2
#elif defined(__aarch64__)
#define VL 4
#define MR 8
#define NV 3
#else
#define VL 4
#define MR 6
#define NV 2
#endif
#define NR (VL * NV) /* columns of the register tile */

/* Cache blocking, measured on the AVX-512 target (Xeon, 48 KB L1d, 2 MB L2) with the loop order
 * above: KC 256..384 and MC within 2x land within a few percent; NC = 24 panels (768 columns:
 * KC x NC = 960 KB) beat 64 panels (2.6 MB, more than L2) by 1.1-1.25x where N >= 2560, and
 * 16 or 32 panels by a few percent. K is cut into equal blocks of at most KC (K = 768 runs as
 * 3 x 256, not 320 + 320 + 128). */
#define KC 320       /* max depth of a packed block: an MR-tall A panel (MR x KC) stays in L1 */
#define MC (MR * 24) /* rows of a packed A block */
#define NC (NR * 24) /* columns of a packed B block, which stays in L2 */

/* Below this many multiply-adds a call runs on the calling thread: waking the pool costs more. */
#define MIN_THREADED_MACS (1 << 17)

typedef float vf __attribute__((vector_size(VL * 4)));

static inline vf vload(const float *p) { /* unaligned */
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}
static inline void vstore(float *p, vf v) { memcpy(p, &v, sizeof v); }
static inline vf vload_bytes(const unsigned char *p) { /* f32 data at any byte address */
    vf v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* ---------------------------------------------------------------------------------------------- */
/* Packing                                                                                         */

/* dst[0..n) = src[0..n) converted from dt to f32; src is a contiguous run, possibly unaligned. */
static void cvt_run(float *restrict dst, const unsigned char *restrict src, sdc_dtype dt, int n) {
    int i = 0;
    switch (dt) {
    case SDC_F32: /* an inline loop: runs are short (a panel row), a memcpy call costs more */
        for (; i < n; i++) memcpy(dst + i, src + 4 * i, 4);
        return;
    case SDC_F16:
#if defined(__F16C__)
        for (; i + 8 <= n; i += 8)
            _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * i))));
#elif defined(__aarch64__)
        for (; i + 4 <= n; i += 4) {
            float16x4_t h;
            memcpy(&h, src + 2 * i, 8);
            vst1q_f32(dst + i, vcvt_f32_f16(h));
        }
#endif
        for (; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            dst[i] = sdc_f16_to_f32(h);
        }
        return;
    case SDC_BF16:
        for (; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            uint32_t u = (uint32_t)h << 16;
            memcpy(dst + i, &u, 4);
        }
        return;
    default: /* not a float dtype: reads as zeros (gemm.h) */
        memset(dst, 0, (size_t)n * 4);
        return;
    }
}

static inline float load_one(const unsigned char *p, sdc_dtype dt) {
    uint16_t h;
    float f;
    switch (dt) {
    case SDC_F32: memcpy(&f, p, 4); return f;
    case SDC_F16: memcpy(&h, p, 2); return sdc_f16_to_f32(h);
    case SDC_BF16: memcpy(&h, p, 2); return sdc_bf16_to_f32(h);
    default: return 0.0f;
    }
}

#if defined(__AVX512F__)
/* 16 rows of 16 floats -> 16 columns, in place (unpack, then in-lane and cross-lane shuffles). */
static inline void transpose16(__m512 r[16]) {
    __m512 t[16], u[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int q = 0; q < 4; q++) { /* rows 4q..4q+3: u[4q + j] holds column j (+4, +8, +12 by lane) */
        u[4 * q + 0] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * q + 1] = _mm512_shuffle_ps(t[4 * q], t[4 * q + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[4 * q + 2] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[4 * q + 3] = _mm512_shuffle_ps(t[4 * q + 1], t[4 * q + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int j = 0; j < 4; j++) {
        t[j] = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88);          /* cols j, j+8; rows 0-7 */
        t[4 + j] = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);      /* cols j+4, j+12 */
        t[8 + j] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88); /* rows 8-15 */
        t[12 + j] = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xdd);
        r[j + 4] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
        r[j + 12] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xdd);
    }
}

static inline __m512 load16(const unsigned char *p, sdc_dtype dt) {
    switch (dt) {
    case SDC_F16: return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
    case SDC_BF16:
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
    default: return _mm512_loadu_ps(p);
    }
}

/* The sk == 1 case of pack_panel for whole 16-column steps of k, by 16 x 16 transposes of groups
 * of 16 panel rows. Returns how many k it packed (a multiple of 16; the caller does the rest). */
static int pack_transposed_simd(float *restrict dst, int w, int n, int kc, const unsigned char *src,
                                sdc_dtype dt, ptrdiff_t sp) {
    if (dt != SDC_F32 && dt != SDC_F16 && dt != SDC_BF16) return 0;
    ptrdiff_t es = (ptrdiff_t)sdc_dtype_table[dt].size;
    int k0 = 0;
    for (; k0 + 16 <= kc; k0 += 16)
        for (int g = 0; g < w; g += 16) {
            int rows = w - g < 16 ? w - g : 16; /* panel rows in this group (w = 14 or 32) */
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = g + i < n ? load16(src + ((g + i) * sp + k0) * es, dt) : _mm512_setzero_ps();
            transpose16(r);
            __mmask16 mask = (__mmask16)((1u << rows) - 1);
            for (int j = 0; j < 16; j++) _mm512_mask_storeu_ps(dst + (size_t)(k0 + j) * w + g, mask, r[j]);
        }
    return k0;
}
#else
static int pack_transposed_simd(float *restrict dst, int w, int n, int kc, const unsigned char *src,
                                sdc_dtype dt, ptrdiff_t sp) {
    (void)dst, (void)w, (void)n, (void)kc, (void)src, (void)dt, (void)sp;
    return 0; /* no SIMD transpose for this target: pack_panel scatters element by element */
}
#endif

/* One panel: dst[k*w + r] = src(r, k) for r < n, 0 for n <= r < w, k < kc; src(r, k) is the
 * element at src + (r*sp + k*sk) elements of dtype dt. For A panels r is the row (sp = rs,
 * sk = cs); for B panels r is the column (sp = cs, sk = rs). */
static void pack_panel(float *restrict dst, int w, int n, int kc, const unsigned char *src,
                       sdc_dtype dt, ptrdiff_t sp, ptrdiff_t sk) {
    ptrdiff_t es = (ptrdiff_t)sdc_dtype_table[dt].size;
    if (sp == 1) { /* rows of the panel are contiguous in memory */
        for (int k = 0; k < kc; k++) {
            if (k + 8 < kc) { /* rows far apart: too sparse for the hardware prefetcher */
                const unsigned char *q = src + (k + 8) * sk * es;
                __builtin_prefetch(q);
                __builtin_prefetch(q + n * es - 1);
            }
            if (dt == SDC_F32 && n == w && w == NR) { /* the common full panel, without memcpy */
#pragma GCC unroll 4
                for (int v = 0; v < NV; v++)
                    vstore(dst + (size_t)k * w + v * VL, vload_bytes(src + k * sk * es + v * VL * 4));
                continue;
            }
            cvt_run(dst + (size_t)k * w, src + k * sk * es, dt, n);
            for (int r = n; r < w; r++) dst[(size_t)k * w + r] = 0.0f;
        }
    } else if (sk == 1) { /* columns of the panel are contiguous: transpose */
        int k0 = pack_transposed_simd(dst, w, n, kc, src, dt, sp);
        if (k0 == kc) return;
        dst += k0 * w; /* the remaining columns, by converting a run and scattering it */
        src += k0 * es;
        kc -= k0;
        float tmp[KC];
        for (int r = 0; r < n; r++) {
            cvt_run(tmp, src + r * sp * es, dt, kc);
            for (int k = 0; k < kc; k++) dst[(size_t)k * w + r] = tmp[k];
        }
        if (n < w)
            for (int k = 0; k < kc; k++)
                for (int r = n; r < w; r++) dst[(size_t)k * w + r] = 0.0f;
    } else {
        for (int k = 0; k < kc; k++)
            for (int r = 0; r < w; r++)
                dst[(size_t)k * w + r] = r < n ? load_one(src + (r * sp + k * sk) * es, dt) : 0.0f;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Micro-kernel                                                                                    */

typedef struct writeback {
    int overwrite;         /* C = tile (first K block, not accumulating); else C += tile */
    const float *bias_col; /* at the tile's first column; only in the last K block; or NULL */
    const float *bias_row; /* at the tile's first row; likewise */
} writeback;

/* The register tile is spelled out row by row (ROWS below) rather than as an array with unrolled
 * loops: clang keeps such arrays in memory, GCC and clang both keep named variables in registers. */
#if MR == 14
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13)
#elif MR == 8
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#elif MR == 6
#define ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#else
#error "no ROWS list for this MR"
#endif
_Static_assert(NV >= 1 && NV <= 3, "the kernel spells out up to 3 vectors per row");
#if defined(__aarch64__)
_Static_assert(MR == 8 && VL == 4, "the NEON kernel reads a column of A as two 4-lane vectors");
#endif

/* Write-back of one full row of the tile (nv vectors) at ci; row i of the tile. */
static inline __attribute__((always_inline)) void
store_row(float *ci, int nv, vf r0, vf r1, vf r2, const writeback *wb, int i) {
    vf r[3] = {r0, r1, r2};
    for (int v = 0; v < nv; v++) {
        vf x = r[v];
        if (!wb->overwrite) x = vload(ci + v * VL) + x;
        if (wb->bias_col) x += vload(wb->bias_col + v * VL);
        if (wb->bias_row) x += wb->bias_row[i];
        vstore(ci + v * VL, x);
    }
}

/* C[0..m, 0..n) (+)= pa[kc][MR] . pb[kc][nv*VL] (+ biases), for m <= MR, n <= nv*VL. Inlined
 * with a constant nv: NV vectors for full panels, 1 for a narrow last panel (N = 40 = 32 + 8 runs
 * a 14 x 32 and a 14 x 16 tile, not two 14 x 32 ones). Both compute an element the same way. */
static inline __attribute__((always_inline)) void
kernel_nv(const int nv, int kc, const float *restrict pa, const float *restrict pb,
          float *restrict c, ptrdiff_t ldc, int m, int n, const writeback *wb) {
    /* the C tile is read (or written) after KC rank-1 updates: fetch its lines meanwhile */
    for (int i = 0; i < m; i++) {
        __builtin_prefetch(c + (ptrdiff_t)i * ldc, 1);
        __builtin_prefetch(c + (ptrdiff_t)i * ldc + nv * VL - 1, 1);
    }
#define DECL(i) vf c##i##_0 = {0}, c##i##_1 = {0}, c##i##_2 = {0};
    ROWS(DECL)
#undef DECL
    for (int k = 0; k < kc; k++) {
        vf b0 = *(const vf *)pb, b1 = {0}, b2 = {0};
        if (nv > 1) b1 = *(const vf *)(pb + VL);
        if (nv > 2) b2 = *(const vf *)(pb + 2 * VL);
#if defined(__aarch64__)
        /* NEON: the 8 values of A come in two vectors and each update is one fmla by element
         * (24 accumulators + 3 B + 2 A = 29 of the 32 registers). Spelled with scalars as below,
         * GCC holds A in 8 registers and spills 4 accumulators to the stack on every k. */
        float32x4_t a_lo = vld1q_f32(pa), a_hi = vld1q_f32(pa + 4);
#define FMA(i)                                                                                     \
    {                                                                                              \
        float32x4_t a4 = (i) < 4 ? a_lo : a_hi;                                                    \
        c##i##_0 = vfmaq_laneq_f32(c##i##_0, b0, a4, (i) & 3);                                     \
        if (nv > 1) c##i##_1 = vfmaq_laneq_f32(c##i##_1, b1, a4, (i) & 3);                         \
        if (nv > 2) c##i##_2 = vfmaq_laneq_f32(c##i##_2, b2, a4, (i) & 3);                         \
    }
#else
#define FMA(i)                                                                                     \
    {                                                                                              \
        float a = pa[i];                                                                           \
        c##i##_0 += a * b0;                                                                        \
        if (nv > 1) c##i##_1 += a * b1;                                                            \
        if (nv > 2) c##i##_2 += a * b2;                                                            \
    }
#endif
        ROWS(FMA)
#undef FMA
        pa += MR;
        pb += nv * VL;
    }

    if (m == MR && n == nv * VL) {
#define STORE(i) store_row(c + (ptrdiff_t)(i) * ldc, nv, c##i##_0, c##i##_1, c##i##_2, wb, i);
        ROWS(STORE)
#undef STORE
        return;
    }
    /* edge tile: the same operations, element by element */
    float t[MR][NR] __attribute__((aligned(64)));
#define SPILL(i)                                                                                   \
    *(vf *)&t[i][0] = c##i##_0;                                                                    \
    if (nv > 1) *(vf *)&t[i][VL] = c##i##_1;                                                       \
    if (nv > 2) *(vf *)&t[i][2 * VL] = c##i##_2;
    ROWS(SPILL)
#undef SPILL
    for (int i = 0; i < m; i++) {
        float *ci = c + (ptrdiff_t)i * ldc;
        for (int j = 0; j < n; j++) {
            float r = t[i][j];
            if (!wb->overwrite) r = ci[j] + r;
            if (wb->bias_col) r += wb->bias_col[j];
            if (wb->bias_row) r += wb->bias_row[i];
            ci[j] = r;
        }
    }
}

static void kernel_wide(int kc, const float *pa, const float *pb, float *c, ptrdiff_t ldc, int m,
                        int n, const writeback *wb) {
    kernel_nv(NV, kc, pa, pb, c, ldc, m, n, wb);
}

static void kernel_narrow(int kc, const float *pa, const float *pb, float *c, ptrdiff_t ldc, int m,
                          int n, const writeback *wb) {
    kernel_nv(1, kc, pa, pb, c, ldc, m, n, wb);
}

void sdc_gemm_tile_shape(int *mr, int *nr) {
    *mr = MR;
    *nr = NR;
}

void sdc_gemm_microkernel(int kc, const float *pa, const float *pb, float *c, ptrdiff_t ldc,
                          int accumulate) {
    writeback wb = {.overwrite = !accumulate};
    kernel_wide(kc, pa, pb, c, ldc, MR, NR, &wb);
}

/* Width of the packed B panel that starts n columns before the block's end. */
static inline int panel_width(int n) { return n <= VL ? VL : NR; }

/* ---------------------------------------------------------------------------------------------- */
/* Blocked product over one band of C                                                              */

typedef struct gemm_ctx {
    const sdc_gemm_args *g;
    sdc_gemm_bfill_fn bfill;
    const void *bctx;
    int split_m;        /* 1: each thread owns a band of rows; 0: a band of columns */
    int64_t tiles;      /* MR (or NR) tiles along the split dimension */
    int kc;             /* depth of the K blocks: a function of K alone (determinism) */
    int nth;            /* bands (at most the pool's thread count; buffers exist for these) */
    float *buf;         /* per thread: [a_floats | b_floats] */
    size_t a_floats, b_floats;
} gemm_ctx;

/* A panel whose rows are contiguous in memory (sk == 1) reads n short runs (KC elements) far apart,
 * which the hardware prefetcher misses: the block packers ask for the next panel's runs while the
 * current one is converted. */
static void prefetch_runs(const unsigned char *src, int n, ptrdiff_t stride_bytes, size_t run_bytes) {
    for (int r = 0; r < n; r++)
        for (size_t off = 0; off < run_bytes; off += 64) __builtin_prefetch(src + r * stride_bytes + off);
}

static void pack_b_block(const gemm_ctx *c, float *pb, int pc, int kc, int jc, int nc) {
    const sdc_gemm_args *g = c->g;
    for (int jr = 0; jr < nc; jr += NR) {
        int n = nc - jr < NR ? nc - jr : NR, w = panel_width(nc - jr);
        float *dst = pb + (size_t)jr * kc; /* all panels before this one are NR wide */
        if (c->bfill) {
            c->bfill(c->bctx, pc, kc, jc + jr, n, dst, w);
            if (n < w)
                for (int k = 0; k < kc; k++)
                    for (int r = n; r < w; r++) dst[(size_t)k * w + r] = 0.0f;
        } else {
            size_t es = sdc_dtype_table[g->B.dtype].size;
            const unsigned char *src = (const unsigned char *)g->B.data +
                                       ((ptrdiff_t)pc * g->B.rs + (ptrdiff_t)(jc + jr) * g->B.cs) * (ptrdiff_t)es;
            if (g->B.rs == 1 && jr + NR < nc)
                prefetch_runs(src + (ptrdiff_t)NR * g->B.cs * (ptrdiff_t)es,
                              nc - jr - NR < NR ? nc - jr - NR : NR, g->B.cs * (ptrdiff_t)es, (size_t)kc * es);
            pack_panel(dst, w, n, kc, src, g->B.dtype, g->B.cs, g->B.rs);
        }
    }
}

static void pack_a_block(const sdc_gemm_args *g, float *pa, int ic, int mc, int pc, int kc) {
    size_t es = sdc_dtype_table[g->A.dtype].size;
    for (int ir = 0; ir < mc; ir += MR) {
        int m = mc - ir < MR ? mc - ir : MR;
        const unsigned char *src = (const unsigned char *)g->A.data +
                                   ((ptrdiff_t)(ic + ir) * g->A.rs + (ptrdiff_t)pc * g->A.cs) * (ptrdiff_t)es;
        if (g->A.cs == 1 && ir + MR < mc)
            prefetch_runs(src + (ptrdiff_t)MR * g->A.rs * (ptrdiff_t)es,
                          mc - ir - MR < MR ? mc - ir - MR : MR, g->A.rs * (ptrdiff_t)es, (size_t)kc * es);
        pack_panel(pa + (size_t)ir * kc, MR, m, kc, src, g->A.dtype, g->A.rs, g->A.cs);
    }
}

static void gemm_band(const gemm_ctx *c, int m0, int m1, int n0, int n1, float *pa, float *pb) {
    const sdc_gemm_args *g = c->g;
    for (int jc = n0; jc < n1; jc += NC) {
        int nc = n1 - jc < NC ? n1 - jc : NC;
        for (int pc = 0; pc < g->K; pc += c->kc) {
            int kc = g->K - pc < c->kc ? g->K - pc : c->kc;
            int last = pc + kc == g->K;
            pack_b_block(c, pb, pc, kc, jc, nc);
            for (int ic = m0; ic < m1; ic += MC) {
                int mc = m1 - ic < MC ? m1 - ic : MC;
                pack_a_block(g, pa, ic, mc, pc, kc);
                for (int ir = 0; ir < mc; ir += MR) {
                    int m = mc - ir < MR ? mc - ir : MR;
                    for (int jr = 0; jr < nc; jr += NR) {
                        int n = nc - jr < NR ? nc - jr : NR;
                        int i = ic + ir, j = jc + jr;
                        writeback wb = {
                            .overwrite = pc == 0 && !g->accumulate,
                            .bias_col = last && g->bias_col ? g->bias_col + j : NULL,
                            .bias_row = last && g->bias_row ? g->bias_row + i : NULL,
                        };
                        (panel_width(nc - jr) == NR ? kernel_wide : kernel_narrow)(
                            kc, pa + (size_t)ir * kc, pb + (size_t)jr * kc,
                            g->C + (ptrdiff_t)i * g->ldc + j, g->ldc, m, n, &wb);
                    }
                }
            }
        }
    }
}

static void gemm_task(void *p, int ith, int nth) {
    const gemm_ctx *c = p;
    const sdc_gemm_args *g = c->g;
    if (nth > c->nth) nth = c->nth; /* fewer bands than pool threads: the rest idle */
    if (ith >= nth) return;
    int64_t t0 = c->tiles * ith / nth, t1 = c->tiles * (ith + 1) / nth;
    int m0 = 0, m1 = g->M, n0 = 0, n1 = g->N;
    if (c->split_m) {
        m0 = (int)(t0 * MR);
        m1 = t1 * MR < g->M ? (int)(t1 * MR) : g->M;
    } else {
        n0 = (int)(t0 * NR);
        n1 = t1 * NR < g->N ? (int)(t1 * NR) : g->N;
    }
    if (m0 >= m1 || n0 >= n1) return;
    float *pa = c->buf + (size_t)ith * (c->a_floats + c->b_floats);
    gemm_band(c, m0, m1, n0, n1, pa, pa + c->a_floats);
}

/* ---------------------------------------------------------------------------------------------- */
/* Entry points                                                                                    */

static size_t round_up(size_t x, size_t to) { return (x + to - 1) / to * to; }

/* K == 0: the product is empty, C = bias (+ C). */
static void gemm_k0(const sdc_gemm_args *g) {
    for (int i = 0; i < g->M; i++) {
        float *ci = g->C + (ptrdiff_t)i * g->ldc;
        for (int j = 0; j < g->N; j++) {
            float r = g->accumulate ? ci[j] : 0.0f;
            if (g->bias_col) r += g->bias_col[j];
            if (g->bias_row) r += g->bias_row[i];
            ci[j] = r;
        }
    }
}

int sdc_gemm_ex(sdc_pool *pool, const sdc_gemm_args *g, sdc_gemm_bfill_fn bfill, const void *bfill_ctx) {
    if (g->M <= 0 || g->N <= 0) return 0;
    if (g->K <= 0) {
        gemm_k0(g);
        return 0;
    }
    int64_t tiles_m = ((int64_t)g->M + MR - 1) / MR, tiles_n = ((int64_t)g->N + NR - 1) / NR;
    int nth = sdc_pool_size(pool);
    if ((double)g->M * g->N * g->K < MIN_THREADED_MACS) nth = 1;
    gemm_ctx c = {.g = g, .bfill = bfill, .bctx = bfill_ctx, .split_m = tiles_m >= tiles_n};
    c.tiles = c.split_m ? tiles_m : tiles_n;
    if (nth > c.tiles) nth = (int)c.tiles;
    c.nth = nth;
    /* blocks as large as any band may need (a band can be the whole matrix when a nested
     * sdc_pool_run runs the task on one thread) */
    size_t rows = round_up((size_t)g->M, MR), cols = round_up((size_t)g->N, NR);
    /* K in equal blocks of at most KC: K = 640 runs as 2 x 320 rather than 384 + 256 */
    int64_t kblocks = ((int64_t)g->K + KC - 1) / KC;
    c.kc = (int)(((int64_t)g->K + kblocks - 1) / kblocks);
    size_t kc = (size_t)c.kc;
    c.a_floats = round_up((rows < MC ? rows : MC) * kc, 16);
    c.b_floats = round_up((cols < NC ? cols : NC) * kc, 16);
    size_t bytes = (c.a_floats + c.b_floats) * (size_t)nth * sizeof(float);
    c.buf = aligned_alloc(64, bytes); /* bytes is a multiple of 64 */
    if (!c.buf) return -1;
    if (nth == 1) gemm_task(&c, 0, 1);
    else sdc_pool_run(pool, gemm_task, &c); /* the pool hands out (ith, nth) with its own nth */
    free(c.buf);
    return 0;
}

void sdc_gemm(sdc_pool *pool, const sdc_gemm_args *g) {
    if (sdc_gemm_ex(pool, g, NULL, NULL) != 0) sdc_gemm_ref(g);
}
