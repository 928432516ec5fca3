/* src/core/sha256.h: streaming SHA-256 (FIPS 180-4) and the AutoV2 model hash.
 *
 *   sdc_sha256_ctx h;
 *   sdc_sha256_init(&h);
 *   sdc_sha256_update(&h, data, n);      // any number of times, any sizes
 *   uint8_t digest[32];
 *   sdc_sha256_final(&h, digest);
 *
 * AutoV2 is the short model hash of A1111 and Civitai: the first 10 hex digits (lower case) of the
 * SHA-256 of the whole file. sdc_sha256_file() hashes a file in large reads without mapping it.
 *
 * On x86-64 CPUs with the SHA extensions the block function uses them (chosen once, at first
 * use; about 1.5-2 GB/s instead of ~0.3 GB/s); the result is the same either way and
 * tests/unit/test_sha256.c checks both paths.
 */
#ifndef SDC_CORE_SHA256_H
#define SDC_CORE_SHA256_H

#include "core/error.h"

#include <stddef.h>
#include <stdint.h>

#define SDC_SHA256_HEX 65  /* 64 hex digits and the NUL */
#define SDC_AUTOV2_HEX 11  /* 10 hex digits and the NUL */

typedef struct sdc_sha256_ctx {
    uint32_t h[8];
    uint64_t nbytes;      /* total bytes fed so far */
    uint8_t buf[64];      /* a partial block */
    size_t nbuf;
    int portable;         /* 1: never use the CPU's SHA instructions (tests) */
} sdc_sha256_ctx;

void sdc_sha256_init(sdc_sha256_ctx *s);
void sdc_sha256_update(sdc_sha256_ctx *s, const void *data, size_t n);
/* Writes the 32-byte digest; the state must be re-initialised before reuse. */
void sdc_sha256_final(sdc_sha256_ctx *s, uint8_t digest[32]);

/* One-shot convenience. */
void sdc_sha256(const void *data, size_t n, uint8_t digest[32]);

/* Lower-case hex of a digest, NUL-terminated. */
void sdc_sha256_hex(const uint8_t digest[32], char hex[SDC_SHA256_HEX]);
/* The first 10 hex digits of the digest (AutoV2). */
void sdc_autov2_hex(const uint8_t digest[32], char hex[SDC_AUTOV2_HEX]);

/* Hashes the file at `path` (reads it in 4 MiB pieces). SDC_E_IO naming the file on failure. */
sdc_status sdc_sha256_file(const char *path, uint8_t digest[32], sdc_error *err);

/* 1 when the SHA-extension path is available on this CPU (for tests and reports). */
int sdc_sha256_has_hw(void);

#endif
