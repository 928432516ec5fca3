/* tests/test.h: the project's 30-line test harness (after sds testhelp.h).
 *
 *   CHECK(cond, "fmt", ...)   counts a pass or prints the failure with file:line
 *   CHECK_CLOSE(err, tol, what)
 *   TEST_MAIN_END()           prints "N passed, N failed" and returns non-zero on failure
 */
#ifndef SDC_TESTS_TEST_H
#define SDC_TESTS_TEST_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <stdint.h>

static int test_passed_, test_failed_;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) { test_passed_++; }                                           \
        else {                                                                  \
            test_failed_++;                                                     \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);               \
            fprintf(stderr, __VA_ARGS__);                                       \
            fprintf(stderr, "\n");                                              \
        }                                                                       \
    } while (0)

/* err and tol are doubles; prints the measured error either way so logs carry the figures. */
#define CHECK_CLOSE(err, tol, what)                                             \
    do {                                                                        \
        double e_ = (err), t_ = (tol);                                          \
        printf("  %-48s err %.3e  (tol %.1e)\n", (what), e_, t_);              \
        CHECK(e_ <= t_ && e_ == e_, "%s: error %.3e > tol %.1e", (what), e_, t_); \
    } while (0)

/* max|a - ref| / max(1, max|ref|), the project's error measure (NaN anywhere -> inf) */
static inline double test_rel_err(const float *a, const float *ref, int64_t n) {
    double md = 0.0, mr = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)ref[i]);
        if (d > md || d != d) md = d != d ? INFINITY : d;
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    return md / (mr > 1.0 ? mr : 1.0);
}

/* Deterministic test data: xorshift64, uniform in [-1, 1); a test seeds it once in main. */
static uint64_t test_rng_ = 88172645463325252ull;
static inline void test_rand_seed(uint64_t seed) { test_rng_ = seed ? seed : 88172645463325252ull; }
static inline float test_frand(void) {
    test_rng_ ^= test_rng_ << 13;
    test_rng_ ^= test_rng_ >> 7;
    test_rng_ ^= test_rng_ << 17;
    return (float)((test_rng_ >> 40) & 0xffffff) / 8388608.0f - 1.0f;
}
/* n values test_frand() * scale; free() it */
static inline float *test_rand_buf(size_t n, float scale) {
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; p && i < n; i++) p[i] = test_frand() * scale;
    return p;
}

#define TEST_MAIN_END()                                                         \
    do {                                                                        \
        printf("%d passed, %d failed\n", test_passed_, test_failed_);          \
        return test_failed_ ? 1 : 0;                                            \
    } while (0)

#endif
