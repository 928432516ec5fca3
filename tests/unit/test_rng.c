/* tests/unit/test_rng.c: torch CPU randn and A1111's philox against every rng.* golden of
 * testdata/a1111 (5 seeds x 6 shapes, first and second call), plus seeding rules and names. */
#include "core/rng.h"
#include "golden.h"

typedef struct tally {
    long values, exact;
    double max_abs;
} tally;

/* Draws one golden entry (and its .second) and adds the comparison to *t. Returns 1 if the
 * entry was bit-exact. */
static int check_entry(const sdc_st_file *g, sdc_rng_kind kind, uint64_t seed, const char *shape,
                       int64_t numel, tally *t) {
    static const char *const kname[] = {"torch_cpu", "philox"};
    char key[128];
    float *out = malloc((size_t)numel * sizeof(float));
    sdc_rng r;
    sdc_rng_init(&r, kind, seed);
    int exact = 1;
    for (int call = 0; call < 2; call++) {
        snprintf(key, sizeof key, "rng.%s.s%llu.%s%s", kname[kind], (unsigned long long)seed, shape,
                 call ? ".second" : "");
        int64_t n;
        float *ref = golden_f32(g, key, &n);
        CHECK(n == numel, "%s: %lld values, expected %lld", key, (long long)n, (long long)numel);
        sdc_rng_randn(&r, out, (size_t)numel);
        for (int64_t i = 0; i < numel && i < n; i++) {
            double d = fabs((double)out[i] - ref[i]);
            t->values++;
            t->exact += out[i] == ref[i];
            exact &= out[i] == ref[i];
            if (d > t->max_abs || d != d) t->max_abs = d != d ? INFINITY : d;
        }
        free(ref);
    }
    free(out);
    return exact;
}

static void test_goldens(const sdc_st_file *g) {
    static const uint64_t seeds[] = {0, 1, 42, 123456789, 4294967295u};
    static const struct { const char *name; int64_t numel; } shapes[] = {
        {"1x4x64x64", 16384}, {"1x4x60x40", 9600}, {"1x4x8x8", 256},
        {"2x3", 6},           {"3x7", 21},         {"15", 15},
    };
    for (int kind = 0; kind < SDC_RNG_KIND_COUNT; kind++) {
        tally big = {0}, small = {0};
        int entries_exact = 0, entries = 0;
        for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++)
            for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
                tally *t = shapes[k].numel < 16 ? &small : &big;
                entries_exact += check_entry(g, kind, seeds[s], shapes[k].name, shapes[k].numel, t);
                entries++;
            }
        const char *kn = sdc_rng_kind_name(kind);
        printf("  %-4s numel >= 16: %ld / %ld values bit-exact, max |diff| %.3g\n", kn, big.exact,
               big.values, big.max_abs);
        printf("  %-4s numel <  16: %ld / %ld values bit-exact, max |diff| %.3g\n", kn, small.exact,
               small.values, small.max_abs);
        printf("  %-4s %d / %d golden entries (first and second call) bit-exact\n", kn,
               entries_exact, entries);
        char what[64];
        snprintf(what, sizeof what, "%s randn, numel >= 16 (abs)", kn);
        CHECK_CLOSE(big.max_abs, 1e-6, what);
        snprintf(what, sizeof what, "%s randn, numel < 16 (abs, exact)", kn);
        CHECK_CLOSE(small.max_abs, 0.0, what);
        if (kind == SDC_RNG_TORCH_CPU) /* float math only: the same bits on every IEEE machine */
            CHECK(big.exact == big.values, "torch CPU randn: %ld of %ld values bit-exact", big.exact,
                  big.values);
    }
}

static void test_seeding(const sdc_st_file *g) {
    float a[64], b[64];
    sdc_rng r;

    /* torch keeps the low 32 bits of the seed; philox keys on all 64 */
    sdc_rng_init(&r, SDC_RNG_TORCH_CPU, (UINT64_C(1) << 32) | 42);
    sdc_rng_randn(&r, a, 64);
    sdc_rng_init(&r, SDC_RNG_TORCH_CPU, 42);
    sdc_rng_randn(&r, b, 64);
    CHECK(!memcmp(a, b, sizeof a), "torch CPU seed is not taken modulo 2^32");
    sdc_rng_init(&r, SDC_RNG_PHILOX, (UINT64_C(1) << 32) | 42);
    sdc_rng_randn(&r, a, 64);
    sdc_rng_init(&r, SDC_RNG_PHILOX, 42);
    sdc_rng_randn(&r, b, 64);
    CHECK(memcmp(a, b, sizeof a) != 0, "philox ignores the high seed word");

    /* re-seeding clears torch's cached normal: the [15] draw repeats exactly */
    float *ref = golden_f32(g, "rng.torch_cpu.s42.15", NULL);
    sdc_rng_init(&r, SDC_RNG_TORCH_CPU, 7);
    sdc_rng_randn(&r, a, 15); /* leaves a cached value behind */
    sdc_rng_init(&r, SDC_RNG_TORCH_CPU, 42);
    sdc_rng_randn(&r, a, 15);
    CHECK(!memcmp(a, ref, 15 * sizeof(float)), "re-seeding keeps a stale cached normal");
    free(ref);

    /* the cache survives a numel >= 16 draw in between: the next scalar draw returns it */
    float *second = golden_f32(g, "rng.torch_cpu.s42.15.second", NULL);
    sdc_rng_init(&r, SDC_RNG_TORCH_CPU, 42);
    sdc_rng_randn(&r, a, 15);
    sdc_rng s = r;
    sdc_rng_randn(&r, b, 1);
    CHECK(b[0] == second[0], "the first value after [15] is not the cached one");
    sdc_rng_randn(&s, a, 16); /* the AVX2 block path neither uses nor clears the cache */
    sdc_rng_randn(&s, b, 1);
    CHECK(b[0] == second[0], "a numel >= 16 draw disturbed the cached normal");
    free(second);

    /* an sdc_rng is a value: a copy continues the same stream */
    sdc_rng_init(&r, SDC_RNG_PHILOX, 3);
    s = r;
    sdc_rng_randn(&r, a, 20);
    sdc_rng_randn(&s, b, 20);
    CHECK(!memcmp(a, b, 20 * sizeof(float)), "copied philox state diverges");
    sdc_rng_randn(&r, a, 20);
    CHECK(memcmp(a, b, 20 * sizeof(float)) != 0, "philox offset does not advance per call");

    /* the statistics of a long draw are those of N(0, 1) */
    enum { M = 1 << 16 };
    float *big = malloc(M * sizeof(float));
    for (int kind = 0; kind < SDC_RNG_KIND_COUNT; kind++) {
        sdc_rng_init(&r, kind, 2024);
        sdc_rng_randn(&r, big, M);
        double m1 = 0, m2 = 0;
        for (int i = 0; i < M; i++) m1 += big[i], m2 += (double)big[i] * big[i];
        m1 /= M;
        m2 = m2 / M - m1 * m1;
        CHECK(fabs(m1) < 0.02 && fabs(m2 - 1.0) < 0.02, "%s: mean %g variance %g",
              sdc_rng_kind_name(kind), m1, m2);
    }
    free(big);

    CHECK(sdc_rng_kind_from_name("CPU") == SDC_RNG_TORCH_CPU &&
              sdc_rng_kind_from_name("nv") == SDC_RNG_PHILOX &&
              sdc_rng_kind_from_name("GPU") == SDC_RNG_PHILOX &&
              sdc_rng_kind_from_name("philox") == SDC_RNG_PHILOX &&
              sdc_rng_kind_from_name("mps") == -1 && sdc_rng_kind_from_name(NULL) == -1,
          "rng source names");
    CHECK(!strcmp(sdc_rng_kind_name(SDC_RNG_TORCH_CPU), "cpu") &&
              !strcmp(sdc_rng_kind_name(SDC_RNG_PHILOX), "nv"), "rng kind names");
}

int main(void) {
    sdc_st_file *g = golden_open(A1111_DIR "/a1111.safetensors");
    test_goldens(g);
    test_seeding(g);
    sdc_st_close(g);
    TEST_MAIN_END();
}
