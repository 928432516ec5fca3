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

#define TEST_MAIN_END()                                                         \
    do {                                                                        \
        printf("%d passed, %d failed\n", test_passed_, test_failed_);          \
        return test_failed_ ? 1 : 0;                                            \
    } while (0)

#endif
