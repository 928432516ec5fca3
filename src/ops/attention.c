/* src/ops/attention.c: flash-style multi-head attention (see attention.h for the contract).
 *
 * One task = one block of QB queries of one (batch, head). With the queries across the lanes of
 * QV vectors (QB = QV * VL), the task runs:
 *
 *   qt[d][QB]  = q[block]^T * log2(e)/sqrt(d)          (packed once per task; zero-padded lanes)
 *   ot[dv][QB] = 0;  m[QB] = -inf;  l[QB] = 0
 *   for each tile of KT keys j0..j0+kt:
 *     s[kt][QB] = k[tile] . qt                         score_tile: KR keys x QV vectors in
 *                                                      registers, k[j][e] broadcast, + tile max
 *     m' = max(m, tile max);  a = exp2(m - m');  s = exp2(s - m');  l = a*l + sum_j s[j]
 *     ot = a*ot + v[tile]^T . s                        out_tile: OR rows of ot x QV vectors in
 *                                                      registers, v[j][e] broadcast
 *   o[block] = (ot / l)^T
 *
 * Every step is a lane-wise vector operation: no horizontal sums or maxima, no [Nq, Nk] or
 * [QB, Nk] buffer; per thread qt, ot and s stay in L1/L2 for SD's head sizes. k and v are only
 * read a row at a time (broadcasts), never transposed. With several heads a head's rows are d
 * floats among heads*d, too sparse for the caches and prefetchers: each thread copies the k and
 * v rows of its current (batch, head) together once (consecutive tasks share the head), which
 * made the 8-head UNet shapes ~1.5x faster. A task then costs its FMAs plus one exp2 per score;
 * measured on one AVX-512 core (d = 40): ~40% in each FMA loop, ~15% softmax.
 *
 * The vector code uses GNU C vector extensions, so one source serves every target: AVX-512
 * (16 lanes, 4 query vectors), AVX/AVX2 (8 lanes, 2 vectors: 16 registers), AArch64 NEON (4
 * lanes, 4 vectors: 32 registers) and anything else (4 lanes, 2 vectors; plain scalar code where
 * the target has no SIMD). Only the lane-wise maximum uses an intrinsic, where one exists.
 * The tile shapes were measured on the AVX-512 machine: 4 x 16 queries per block over 2 x 16,
 * score tiles of 60 keys over 48 and 96 (s[60][64] + qt + ot fit in the 48 KB L1); a k layout
 * interleaved by register tile gave nothing over plain rows.
 *
 * Masked scores (causal) are -inf; exp2 clamps its argument at -127, where the built exponent is
 * 0, so they contribute exactly 0. (Scores 126 to 127 below the maximum give denormal weights,
 * ~2^-126: harmless, and rare enough that their slow path costs nothing.) */
#include "ops/attention.h"

#include "core/error.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX__) || defined(__SSE__)
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

/* ---------------------------------------------------------------------------------------------- */
/* Tile shape per target                                                                           */

#if defined(__AVX512F__)
#define VL 16 /* f32 lanes per vector */
#define QV 4  /* query vectors per block */
#elif defined(__AVX__)
#define VL 8
#define QV 2
#elif defined(__aarch64__)
#define VL 4
#define QV 4
#else
#define VL 4
#define QV 2
#endif
#define QB (VL * QV) /* queries per block (task) */
#define KR 6         /* keys per score register tile: KR x QV accumulators */
#define OR 6         /* output rows (of dv) per output register tile: OR x QV accumulators */
#define KT (KR * 10) /* keys per softmax tile: s[KT][QB] stays in L1 */

/* Below this many multiply-adds a call runs on the calling thread: waking the pool costs more. */
#define MIN_THREADED_MACS (1 << 17)

typedef float vf __attribute__((vector_size(VL * 4)));
typedef int32_t vi __attribute__((vector_size(VL * 4)));
typedef uint32_t vu __attribute__((vector_size(VL * 4)));

#define ALWAYS_INLINE static inline __attribute__((always_inline))

ALWAYS_INLINE vf splat(float x) { return (vf){0} + x; }

ALWAYS_INLINE vf vmax(vf a, vf b) {
#if VL == 16
    return _mm512_max_ps(a, b);
#elif VL == 8
    return _mm256_max_ps(a, b);
#elif defined(__SSE__)
    return _mm_max_ps(a, b);
#elif defined(__aarch64__)
    return (vf)vmaxq_f32((float32x4_t)a, (float32x4_t)b);
#else
    vi m = a > b;
    return (vf)((m & (vi)a) | (~m & (vi)b));
#endif
}

/* 2^x for x <= 0, to 2e-7 relative: x = k + r with k = round(x), |r| <= 1/2, 2^r by a degree-5
 * Chebyshev fit; 2^k built in the exponent bits. Adding 1.5 * 2^23 + 127 rounds x to an integer
 * and leaves k + 127 in the low mantissa bits, so one shift makes 2^k. x is clamped at -127,
 * where those bits are 0: the result is then exactly 0 (this is how -inf, the causal mask, turns
 * into a 0 weight). 11 vector operations, 5 of them FMAs. */
ALWAYS_INLINE vf exp2_nonpos(vf x) {
    x = vmax(x, splat(-127.0f));
    const vf magic = splat(0x1.8p23f + 127.0f);
    vf y = x + magic;
    vf r = x - (y - magic);
    vf p = splat(1.3390863314270973e-3f);
    p = p * r + 9.676031768321991e-3f;
    p = p * r + 5.5503569543361664e-2f;
    p = p * r + 2.402210682630539e-1f;
    p = p * r + 6.931471824645996e-1f;
    p = p * r + 1.0000001192092896f;
    return p * (vf)((vu)y << 23);
}

/* ---------------------------------------------------------------------------------------------- */
/* Micro-kernels                                                                                   */

/* The register tiles are spelled out as named variables, t<row>_<vector>, rather than arrays:
 * clang keeps such arrays in memory, GCC and clang both keep named variables in registers (as
 * in gemm.c). Rows past the tile's count and vectors past QV are compiled out. */
#define TILE_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
_Static_assert(KR == 6 && OR == 6 && QV <= 4, "TILE_ROWS lists 6 rows of up to 4 vectors");
#define TILE_DECL(j) vf t##j##_0 = {0}, t##j##_1 = {0}, t##j##_2 = {0}, t##j##_3 = {0};
/* t<j>_<u> += x<u> * c for the QV vectors of row j */
#define TILE_FMA(j, c)                                                                             \
    {                                                                                              \
        float c_ = (c);                                                                            \
        t##j##_0 += x0 * c_;                                                                       \
        if (QV > 1) t##j##_1 += x1 * c_;                                                           \
        if (QV > 2) t##j##_2 += x2 * c_;                                                           \
        if (QV > 3) t##j##_3 += x3 * c_;                                                           \
    }
/* x<u> = the QV vectors at p */
#define LOAD_X(p)                                                                                  \
    vf x0 = *(const vf *)(p), x1 = {0}, x2 = {0}, x3 = {0};                                        \
    if (QV > 1) x1 = *(const vf *)((p) + VL);                                                      \
    if (QV > 2) x2 = *(const vf *)((p) + 2 * VL);                                                  \
    if (QV > 3) x3 = *(const vf *)((p) + 3 * VL);                                                  \
    (void)x1, (void)x2, (void)x3;

/* s[j][0..QB) = sum_e qt[e][0..QB) * kp[j*ldk + e] for the kr (<= KR) keys of this register tile,
 * and mx = max(mx, s[j]) lane-wise. With mask (causal), lane i of vector u (query i + u*VL of the
 * block) sees key j only if j + kq <= i + u*VL, kq = (first key) - (first query); hidden scores
 * are -inf. Inlined with a constant kr so that the accumulators live in registers. */
ALWAYS_INLINE void score_tile(const int kr, const float *restrict qt, int64_t d,
                              const float *restrict kp, ptrdiff_t ldk, float *restrict s, vf *mx,
                              int mask, int64_t kq) {
    TILE_ROWS(TILE_DECL)
    for (int64_t e = 0; e < d; e++) {
        LOAD_X(qt + e * QB)
#define STEP(j) if (j < kr) TILE_FMA(j, kp[j * ldk + e])
        TILE_ROWS(STEP)
#undef STEP
    }
    const vi neg_inf = (vi)splat(-INFINITY);
    vf lane;
    for (int i = 0; i < VL; i++) lane[i] = (float)i;
    /* row j out: causal mask, store, running maximum */
#define OUT(j)                                                                                     \
    if (j < kr) {                                                                                  \
        vf row[4] = {t##j##_0, t##j##_1, t##j##_2, t##j##_3};                                      \
        for (int u = 0; u < QV; u++) {                                                             \
            if (mask) {                                                                            \
                vi hide = splat((float)(j + kq - u * VL)) > lane;                                  \
                row[u] = (vf)((hide & neg_inf) | (~hide & (vi)row[u]));                            \
            }                                                                                      \
            *(vf *)(s + j * QB + u * VL) = row[u];                                                 \
            mx[u] = vmax(mx[u], row[u]);                                                           \
        }                                                                                          \
    }
    TILE_ROWS(OUT)
#undef OUT
}

/* ot[r][0..QB) = alpha * ot[r][0..QB) + sum_{j < kt} p[j][0..QB) * vp[j*ldv + r] for the
 * or_ (<= OR) output rows r of this register tile. */
ALWAYS_INLINE void out_tile(const int or_, int kt, const float *restrict p,
                            const float *restrict vp, ptrdiff_t ldv, float *restrict ot,
                            const vf *alpha) {
    TILE_ROWS(TILE_DECL)
#define IN(r)                                                                                      \
    if (r < or_) {                                                                                 \
        t##r##_0 = *(const vf *)(ot + r * QB) * alpha[0];                                          \
        if (QV > 1) t##r##_1 = *(const vf *)(ot + r * QB + VL) * alpha[1];                         \
        if (QV > 2) t##r##_2 = *(const vf *)(ot + r * QB + 2 * VL) * alpha[2];                     \
        if (QV > 3) t##r##_3 = *(const vf *)(ot + r * QB + 3 * VL) * alpha[3];                     \
    }
    TILE_ROWS(IN)
#undef IN
    for (int j = 0; j < kt; j++) {
        LOAD_X(p + j * QB)
#define STEP(r) if (r < or_) TILE_FMA(r, vp[j * ldv + r])
        TILE_ROWS(STEP)
#undef STEP
    }
#define OUT(r)                                                                                     \
    if (r < or_) {                                                                                 \
        *(vf *)(ot + r * QB) = t##r##_0;                                                           \
        if (QV > 1) *(vf *)(ot + r * QB + VL) = t##r##_1;                                          \
        if (QV > 2) *(vf *)(ot + r * QB + 2 * VL) = t##r##_2;                                      \
        if (QV > 3) *(vf *)(ot + r * QB + 3 * VL) = t##r##_3;                                      \
    }
    TILE_ROWS(OUT)
#undef OUT
}

/* The same with kr / or_ known only at run time: one inlined copy per value. */
#define CASES_1_TO_6(CALL) \
    case 6: CALL(6); break; \
    case 5: CALL(5); break; \
    case 4: CALL(4); break; \
    case 3: CALL(3); break; \
    case 2: CALL(2); break; \
    default: CALL(1); break;

static void score_any(int kr, const float *qt, int64_t d, const float *kp, ptrdiff_t ldk, float *s,
                      vf *mx, int mask, int64_t kq) {
#define CALL(n) score_tile(n, qt, d, kp, ldk, s, mx, mask, kq)
    switch (kr) { CASES_1_TO_6(CALL) }
#undef CALL
}

static void out_any(int or_, int kt, const float *p, const float *vp, ptrdiff_t ldv, float *ot,
                    const vf *alpha) {
#define CALL(n) out_tile(n, kt, p, vp, ldv, ot, alpha)
    switch (or_) { CASES_1_TO_6(CALL) }
#undef CALL
}

/* ---------------------------------------------------------------------------------------------- */
/* Tasks                                                                                           */

typedef struct {
    const float *q, *k, *v;
    float *o;
    int64_t B, Nq, Nk, d, dv;
    int heads, causal;
    int pack;           /* copy each head's k and v rows together (heads > 1) */
    float *scratch;     /* 64-byte aligned, per_thread floats for each thread */
    size_t per_thread;
    int64_t *next_task; /* shared counter: tasks are handed out dynamically */
} attn_ctx;

/* n rounded up to a multiple of 16 floats (64 bytes); 0 on overflow */
static size_t round16(size_t n) { return n + 15 < n ? 0 : (n + 15) & ~(size_t)15; }

/* Per-thread scratch, in floats: qt [d][QB], ot [dv][QB], s [KT][QB], then with pack the head's
 * k [Nk][d] and v [Nk][dv]. 0 when it does not fit in size_t. */
static size_t per_thread_floats(int64_t Nk, int pack, int64_t d, int64_t dv) {
    size_t rows = (size_t)d + (size_t)dv; /* d, dv < 2^63: no overflow */
    size_t n = sdc_mul_size(rows + KT, QB); /* a multiple of 16 */
    if (!n) return 0;
    if (pack) {
        size_t kv = round16(sdc_mul_size((size_t)Nk, rows));
        if (!kv || n + kv < n) return 0;
        n += kv;
    }
    return n;
}

/* One block of queries [q0, q0 + rows) of one (batch b, head h); the head's keys and values are
 * at kp [Nk, d] and vp [Nk, dv] with row strides ldk and ldv. */
static void attn_block(const attn_ctx *c, float *qt, float *ot, float *s, int64_t b, int h,
                       int64_t q0, const float *kp, ptrdiff_t ldk, const float *vp, ptrdiff_t ldv,
                       const float *q_next) {
    const int64_t d = c->d, dv = c->dv;
    const ptrdiff_t ldq = (ptrdiff_t)c->heads * d, ldo = (ptrdiff_t)c->heads * dv;
    const int64_t rows = c->Nq - q0 < QB ? c->Nq - q0 : QB;
    const float *qp = c->q + (b * c->Nq + q0) * ldq + h * d;    // [rows, d] of ldq
    float *op = c->o + (b * c->Nq + q0) * ldo + h * dv;         // [rows, dv] of ldo

    // qt[d][QB] = q^T scaled by log2(e)/sqrt(d): the scores come out in base-2 units
    const float qscale = (float)(1.4426950408889634 / sqrt((double)d));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t e = 0; e < d; e++) qt[e * QB + i] = qp[i * ldq + e] * qscale;
    for (int64_t i = rows; i < QB; i++)
        for (int64_t e = 0; e < d; e++) qt[e * QB + i] = 0.0f;
    memset(ot, 0, (size_t)dv * QB * sizeof(float));

    vf m[QV], l[QV];
    for (int u = 0; u < QV; u++) m[u] = splat(-INFINITY), l[u] = (vf){0};
    /* causal: the block's last query sees keys up to q0 + rows - 1 */
    const int64_t nk = c->causal ? q0 + rows : c->Nk;
    /* q and o rows are d and dv floats apart by heads*d: too sparse for the hardware prefetcher,
     * and far out of cache. The rows this block will write and those of the next block (likely
     * task + nth) are prefetched a few per key tile, spread over the block. */
    const int64_t n_tiles = (nk + KT - 1) / KT, pf_rows = (QB + n_tiles - 1) / n_tiles;
    for (int64_t j0 = 0, pf = 0; j0 < nk; j0 += KT, pf += pf_rows) {
        const int kt = (int)(nk - j0 < KT ? nk - j0 : KT);
        for (int64_t i = pf; i < pf + pf_rows && i < QB; i++) {
            if (i < rows)
                for (int64_t e = 0; e < dv + 15; e += 16) __builtin_prefetch(op + i * ldo + (e < dv ? e : dv - 1), 1);
            if (q_next)
                for (int64_t e = 0; e < d + 15; e += 16) __builtin_prefetch(q_next + i * ldq + (e < d ? e : d - 1));
        }
        // s[kt][QB] = scores of the tile, mx = their lane-wise maximum
        vf mx[QV];
        for (int u = 0; u < QV; u++) mx[u] = splat(-INFINITY);
        for (int jj = 0; jj < kt; jj += KR) {
            int kr = kt - jj < KR ? kt - jj : KR;
            int64_t kq = j0 + jj - q0; /* a key past a lane's query needs the mask */
            int mask = c->causal && kq + kr - 1 > 0;
            score_any(kr, qt, d, kp + (j0 + jj) * ldk, ldk, s + (size_t)jj * QB, mx, mask, kq);
        }
        // online softmax: rescale what the earlier tiles summed, weights of this tile
        vf alpha[QV], sum[QV];
        for (int u = 0; u < QV; u++) {
            vf mnew = vmax(m[u], mx[u]);
            alpha[u] = exp2_nonpos(m[u] - mnew);
            m[u] = mnew;
            sum[u] = (vf){0};
        }
        for (int j = 0; j < kt; j++)
#pragma GCC unroll 4
            for (int u = 0; u < QV; u++) {
                vf *sp = (vf *)(s + (size_t)j * QB + u * VL);
                vf w = exp2_nonpos(*sp - m[u]);
                *sp = w;
                sum[u] += w;
            }
        for (int u = 0; u < QV; u++) l[u] = l[u] * alpha[u] + sum[u];
        // ot[dv][QB] = alpha * ot + v[tile]^T . s
        for (int64_t e0 = 0; e0 < dv; e0 += OR) {
            int or_ = dv - e0 < OR ? (int)(dv - e0) : OR;
            out_any(or_, kt, s, vp + j0 * ldv + e0, ldv, ot + e0 * QB, alpha);
        }
    }
    // o[rows][dv] = (ot / l)^T
    float inv[QB] __attribute__((aligned(64)));
    for (int u = 0; u < QV; u++) *(vf *)(inv + u * VL) = 1.0f / l[u];
    for (int64_t i = 0; i < rows; i++)
        for (int64_t e = 0; e < dv; e++) op[i * ldo + e] = ot[e * QB + i] * inv[i];
}

static void attn_task(void *p, int ith, int nth) {
    const attn_ctx *c = p;
    const int64_t d = c->d, dv = c->dv, Nk = c->Nk;
    float *qt = c->scratch + (size_t)ith * c->per_thread;
    float *ot = qt + (size_t)d * QB, *s = ot + (size_t)dv * QB;
    float *kpack = s + (size_t)KT * QB, *vpack = kpack + (size_t)Nk * d;
    const ptrdiff_t ldq = (ptrdiff_t)c->heads * d, ldv = (ptrdiff_t)c->heads * dv;
    const int64_t qblocks = (c->Nq + QB - 1) / QB;
    const int64_t n_tasks = c->B * c->heads * qblocks;
    int64_t packed = -1; /* the (batch, head) whose k and v are in kpack and vpack */
    for (;;) {
        int64_t t = __atomic_fetch_add(c->next_task, 1, __ATOMIC_RELAXED);
        if (t >= n_tasks) break;
        int64_t bh = t / qblocks, b = bh / c->heads;
        int h = (int)(bh % c->heads);
        const float *q_next = NULL; /* the first rows of the block of task t + nth */
        if (t + nth < n_tasks && (t + nth) % qblocks != qblocks - 1) { /* a full block */
            int64_t tn = t + nth, bhn = tn / qblocks;
            q_next = c->q + ((bhn / c->heads) * c->Nq + (tn % qblocks) * QB) * ldq + (bhn % c->heads) * d;
        }
        const float *kp = c->k + b * Nk * ldq + h * d;  // [Nk, d] of ldq
        const float *vp = c->v + b * Nk * ldv + h * dv; // [Nk, dv] of ldv
        if (!c->pack) {
            attn_block(c, qt, ot, s, b, h, (t % qblocks) * QB, kp, ldq, vp, ldv, q_next);
            continue;
        }
        /* a head's rows are d floats among heads*d: gathered, they stream through the caches */
        if (bh != packed) {
            for (int64_t j = 0; j < Nk; j++) {
                memcpy(kpack + j * d, kp + j * ldq, (size_t)d * sizeof(float));
                memcpy(vpack + j * dv, vp + j * ldv, (size_t)dv * sizeof(float));
            }
            packed = bh;
        }
        attn_block(c, qt, ot, s, b, h, (t % qblocks) * QB, kpack, d, vpack, dv, q_next);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Entry points                                                                                    */

size_t sdc_attention_scratch_floats(int nth, int64_t Nk, int heads, int64_t d, int64_t dv) {
    if (nth < 1 || Nk < 1 || heads < 1 || d < 1 || dv < 1) return 0;
    size_t per = per_thread_floats(Nk, heads > 1, d, dv);
    size_t all = sdc_mul_size(per, (size_t)nth);
    if (!per || !all || all + 16 < all) return 0;
    return all + 16; /* + room to align the start to 64 bytes */
}

int sdc_attention(sdc_pool *pool, const float *q, const float *k, const float *v, float *o,
                  int64_t B, int64_t Nq, int64_t Nk, int heads, int64_t d, int64_t dv, int causal,
                  float *scratch, size_t scratch_floats) {
    if (B < 1 || Nq < 1 || Nk < 1 || heads < 1 || d < 1 || dv < 1 || (causal && Nq != Nk))
        return -1;
    /* multiply-adds of the whole call, in double: only a threshold */
    double macs = (double)B * heads * (double)Nq * (double)Nk * (double)(d + dv);
    if (macs < MIN_THREADED_MACS) pool = NULL;
    int nth = sdc_pool_size(pool);
    size_t need = sdc_attention_scratch_floats(nth, Nk, heads, d, dv);
    if (!need) return -1;
    float *owned = NULL;
    if (!scratch) {
        scratch = owned = malloc(need * sizeof(float));
        if (!owned) return -1;
    } else if (scratch_floats < need)
        return -1;
    float *aligned = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    int64_t next = 0;
    attn_ctx c = {q, k, v, o, B, Nq, Nk, d, dv, heads, causal, heads > 1, aligned,
                  per_thread_floats(Nk, heads > 1, d, dv), &next};
    sdc_pool_run(pool, attn_task, &c);
    free(owned);
    return 0;
}

int sdc_attention_ref(const float *q, const float *k, const float *v, float *o, int64_t B,
                      int64_t Nq, int64_t Nk, int heads, int64_t d, int64_t dv, int causal) {
    int64_t ldq = (int64_t)heads * d, ldv = (int64_t)heads * dv;
    double *p = malloc((size_t)Nk * sizeof(double));
    if (!p) return -1;
    for (int64_t b = 0; b < B; b++)
        for (int h = 0; h < heads; h++)
            for (int64_t i = 0; i < Nq; i++) {
                int64_t n = causal ? i + 1 : Nk;
                double mx = -INFINITY, sum = 0.0;
                for (int64_t j = 0; j < n; j++) {
                    double dot = 0.0;
                    for (int64_t e = 0; e < d; e++)
                        dot += (double)q[(b * Nq + i) * ldq + h * d + e] * k[(b * Nk + j) * ldq + h * d + e];
                    p[j] = dot / sqrt((double)d);
                    if (p[j] > mx) mx = p[j];
                }
                for (int64_t j = 0; j < n; j++) sum += (p[j] = exp(p[j] - mx));
                for (int64_t e = 0; e < dv; e++) {
                    double acc = 0.0;
                    for (int64_t j = 0; j < n; j++) acc += p[j] * v[(b * Nk + j) * ldv + h * dv + e];
                    o[(b * Nq + i) * ldv + h * dv + e] = (float)(acc / sum);
                }
            }
    free(p);
    return 0;
}
