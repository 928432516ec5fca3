/* src/core/sha256.c: SHA-256 as FIPS 180-4 specifies it, with a portable block function and an
 * x86 SHA-extensions one (the Intel white paper's schedule, as in Linux and OpenSSL). */
#include "core/sha256.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define SDC_SHA_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

/* ------------------------------------------------------------------------------------------ */
/* Portable block function                                                                     */
/* ------------------------------------------------------------------------------------------ */

static inline uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

static void blocks_portable(uint32_t h[8], const uint8_t *p, size_t nblocks) {
    for (; nblocks--; p += 64) {
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
                   (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++) {
            uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
        for (int i = 0; i < 64; i++) {
            uint32_t t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
            uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            k = g; g = f; f = e; e = d + t1;
            d = c; c = b; b = a; a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d;
        h[4] += e; h[5] += f; h[6] += g; h[7] += k;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* x86 SHA extensions: two rounds per sha256rnds2, four message words per step                 */
/* ------------------------------------------------------------------------------------------ */

#ifdef SDC_SHA_X86
__attribute__((target("sha,sse4.1"))) static void blocks_shani(uint32_t h[8], const uint8_t *p,
                                                                size_t nblocks) {
    const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    /* state as the instructions want it: ABEF and CDGH */
    __m128i t = _mm_loadu_si128((const __m128i *)&h[0]);      /* D C B A */
    __m128i s1 = _mm_loadu_si128((const __m128i *)&h[4]);     /* H G F E */
    t = _mm_shuffle_epi32(t, 0xB1);                            /* C D A B */
    s1 = _mm_shuffle_epi32(s1, 0x1B);                          /* E F G H */
    __m128i s0 = _mm_alignr_epi8(t, s1, 8);                    /* A B E F */
    s1 = _mm_blend_epi16(s1, t, 0xF0);                         /* C D G H */

    for (; nblocks--; p += 64) {
        __m128i a0 = s0, c0 = s1, msg, m[4];
        for (int i = 0; i < 4; i++)
            m[i] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)), bswap);
        for (int r = 0; r < 16; r++) {
            __m128i *cur = &m[r & 3];
            if (r >= 4) {
                /* W[t..t+3] from the four previous groups (message schedule) */
                __m128i prev = m[(r + 3) & 3], pprev = m[(r + 2) & 3];
                __m128i x = _mm_sha256msg1_epu32(*cur, m[(r + 1) & 3]);
                x = _mm_add_epi32(x, _mm_alignr_epi8(prev, pprev, 4));
                *cur = _mm_sha256msg2_epu32(x, prev);
            }
            msg = _mm_add_epi32(*cur, _mm_loadu_si128((const __m128i *)&K[4 * r]));
            s1 = _mm_sha256rnds2_epu32(s1, s0, msg);
            msg = _mm_shuffle_epi32(msg, 0x0E);
            s0 = _mm_sha256rnds2_epu32(s0, s1, msg);
        }
        s0 = _mm_add_epi32(s0, a0);
        s1 = _mm_add_epi32(s1, c0);
    }

    t = _mm_shuffle_epi32(s0, 0x1B);                           /* F E B A */
    s1 = _mm_shuffle_epi32(s1, 0xB1);                          /* D C H G */
    s0 = _mm_blend_epi16(t, s1, 0xF0);                         /* D C B A */
    s1 = _mm_alignr_epi8(s1, t, 8);                            /* H G F E */
    _mm_storeu_si128((__m128i *)&h[0], s0);
    _mm_storeu_si128((__m128i *)&h[4], s1);
}
#endif

int sdc_sha256_has_hw(void) {
#ifdef SDC_SHA_X86
    static int cached = -1;  /* a benign race: every thread computes the same value */
    if (cached < 0) {
        unsigned a, b, c, d, sse41 = 0, sha = 0;
        if (__get_cpuid(1, &a, &b, &c, &d)) sse41 = (c >> 19) & 1;
        if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) sha = (b >> 29) & 1;
        cached = (int)(sse41 && sha);
    }
    return cached;
#else
    return 0;
#endif
}

static void blocks(sdc_sha256_ctx *s, const uint8_t *p, size_t nblocks) {
#ifdef SDC_SHA_X86
    if (!s->portable && sdc_sha256_has_hw()) {
#ifdef __AVX__
        /* The SHA instructions exist only in legacy-SSE encoding, while an AVX build (e.g.
         * -march=native) encodes the rest of this loop with VEX. Entered with dirty upper vector
         * state (left by AVX-512 code elsewhere in the process), every switch between the two
         * costs a state transition: measured 11 MB/s instead of 1.5 GB/s. Clean it first. */
        _mm256_zeroupper();
#endif
        blocks_shani(s->h, p, nblocks);
        return;
    }
#endif
    blocks_portable(s->h, p, nblocks);
}

/* ------------------------------------------------------------------------------------------ */
/* Streaming interface                                                                         */
/* ------------------------------------------------------------------------------------------ */

void sdc_sha256_init(sdc_sha256_ctx *s) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(s->h, iv, sizeof iv);
    s->nbytes = 0;
    s->nbuf = 0;
    s->portable = 0;
}

void sdc_sha256_update(sdc_sha256_ctx *s, const void *data, size_t n) {
    const uint8_t *p = data;
    s->nbytes += n;
    if (s->nbuf) {
        size_t take = 64 - s->nbuf < n ? 64 - s->nbuf : n;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take;
        p += take;
        n -= take;
        if (s->nbuf < 64) return;
        blocks(s, s->buf, 1);
        s->nbuf = 0;
    }
    if (n >= 64) {
        blocks(s, p, n / 64);
        p += n / 64 * 64;
        n %= 64;
    }
    memcpy(s->buf, p, n);
    s->nbuf = n;
}

void sdc_sha256_final(sdc_sha256_ctx *s, uint8_t digest[32]) {
    uint64_t bits = s->nbytes * 8;
    /* pad: 0x80, zeros to 56 mod 64, then the bit length big-endian */
    s->buf[s->nbuf++] = 0x80;
    if (s->nbuf > 56) {
        memset(s->buf + s->nbuf, 0, 64 - s->nbuf);
        blocks(s, s->buf, 1);
        s->nbuf = 0;
    }
    memset(s->buf + s->nbuf, 0, 56 - s->nbuf);
    for (int i = 0; i < 8; i++) s->buf[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    blocks(s, s->buf, 1);
    for (int i = 0; i < 8; i++) {
        digest[4 * i] = (uint8_t)(s->h[i] >> 24);
        digest[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        digest[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        digest[4 * i + 3] = (uint8_t)s->h[i];
    }
}

void sdc_sha256(const void *data, size_t n, uint8_t digest[32]) {
    sdc_sha256_ctx s;
    sdc_sha256_init(&s);
    sdc_sha256_update(&s, data, n);
    sdc_sha256_final(&s, digest);
}

void sdc_sha256_hex(const uint8_t digest[32], char hex[SDC_SHA256_HEX]) {
    static const char d[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = d[digest[i] >> 4];
        hex[2 * i + 1] = d[digest[i] & 15];
    }
    hex[64] = '\0';
}

void sdc_autov2_hex(const uint8_t digest[32], char hex[SDC_AUTOV2_HEX]) {
    char full[SDC_SHA256_HEX];
    sdc_sha256_hex(digest, full);
    memcpy(hex, full, 10);
    hex[10] = '\0';
}

sdc_status sdc_sha256_file(const char *path, uint8_t digest[32], sdc_error *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sdc_fail(err, SDC_E_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return sdc_fail(err, SDC_E_IO, "%s: not a regular file", path);
    }
    enum { CHUNK = 4 << 20 };
    uint8_t *buf = malloc(CHUNK);
    if (!buf) {
        close(fd);
        return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory for a read buffer", path);
    }
    sdc_sha256_ctx s;
    sdc_sha256_init(&s);
    sdc_status rc = SDC_OK;
    for (;;) {
        ssize_t n = read(fd, buf, CHUNK);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            rc = sdc_fail(err, SDC_E_IO, "%s: read failed: %s", path, strerror(errno));
            break;
        }
        if (n == 0) break;
        sdc_sha256_update(&s, buf, (size_t)n);
    }
    free(buf);
    close(fd);
    if (rc == SDC_OK) sdc_sha256_final(&s, digest);
    return rc;
}
