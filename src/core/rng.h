/* src/core/rng.h: the seeded Gaussian noise of the SD tools, reproduced value for value.
 *
 * A seed names an image only together with the generator that turns it into noise. Two are
 * implemented, each matching its reference bit for bit (tests/unit/test_rng.c):
 *
 *   SDC_RNG_TORCH_CPU  torch.Generator('cpu').manual_seed(seed) followed by torch.randn(...):
 *                      A1111's "CPU" noise source and what diffusers draws on a CPU. mt19937,
 *                      then Box-Muller as torch 1.13 does it on an AVX2 CPU (float math with
 *                      avx_mathfun's log/sincos, rounding step for rounding step, FMAs included).
 *   SDC_RNG_PHILOX     A1111 modules/rng_philox.py Generator(seed).randn(...): the "NV" source,
 *                      which reproduces torch.randn on an NVIDIA GPU (A1111's default "GPU" source
 *                      on such a machine). Philox4x32-10 and a double-precision Box-Muller.
 *
 * One sdc_rng_randn(r, out, n) call is one torch.randn call with numel n. The call boundaries
 * matter: torch draws blocks of 16 for numel >= 16 (and redraws the last 16 when numel % 16 != 0),
 * draws pairs for numel < 16 and keeps the second value of a pair for the next such draw; philox
 * advances its offset by one per call whatever n is. Draw a [4, h, w] latent with one call per
 * image, as A1111 does, not one value at a time.
 *
 * An sdc_rng is a plain value (about 2.5 KB): no allocation, copy it to fork a stream.
 */
#ifndef SDC_CORE_RNG_H
#define SDC_CORE_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef enum sdc_rng_kind {
    SDC_RNG_TORCH_CPU = 0,
    SDC_RNG_PHILOX,
    SDC_RNG_KIND_COUNT
} sdc_rng_kind;

#define SDC_MT19937_N 624

typedef struct sdc_rng {
    sdc_rng_kind kind;
    uint64_t seed;
    /* torch CPU: mt19937 state and torch's cached second normal of the scalar (numel < 16) path */
    uint32_t mt[SDC_MT19937_N];
    int mt_index;
    int has_cached_normal;
    double cached_normal;
    /* philox: the call counter (counter word 0) */
    uint64_t offset;
} sdc_rng;

/* Seeds a generator. TORCH_CPU uses seed & 0xffffffff (torch.manual_seed on the CPU generator);
 * PHILOX uses all 64 bits as its key. */
void sdc_rng_init(sdc_rng *r, sdc_rng_kind kind, uint64_t seed);

/* out[0..n) = the next torch.randn(n) of this generator. n == 0 draws nothing. For PHILOX, n must
 * stay below 2^32 (the element index is a 32-bit counter word, as in the reference). */
void sdc_rng_randn(sdc_rng *r, float *out, size_t n);

/* "cpu" -> TORCH_CPU; "nv", "gpu", "philox" -> PHILOX (case-insensitive). -1 when unknown. */
int sdc_rng_kind_from_name(const char *name);

/* "cpu" or "nv"; never NULL. */
const char *sdc_rng_kind_name(sdc_rng_kind kind);

#endif
