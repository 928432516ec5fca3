/* src/core/error.h: how failures travel inside libsdc.
 *
 * Every fallible internal function returns an sdc_status and takes an `sdc_error *err` as its last
 * argument. On failure it fills err->msg with one line that names the file, tensor or argument at
 * fault (no trailing newline) and returns the same code it stored in err->code. The library never
 * prints and never exits; the CLI prints err->msg and exits non-zero.
 *
 *   return sdc_fail(err, SDC_E_FORMAT, "%s: tensor %s: shape [%d] does not match", path, name, n);
 *   SDC_TRY(sdc_st_open(path, &st, err));        // forwards a failure unchanged
 */
#ifndef SDC_CORE_ERROR_H
#define SDC_CORE_ERROR_H

#include "sdc.h"
#include <stddef.h>

#define SDC_ERRMSG_MAX 512

typedef struct sdc_error {
    sdc_status code;
    char msg[SDC_ERRMSG_MAX];
} sdc_error;

/* Records the failure (printf-style message) and returns `code`. err may be NULL. The message is
 * kept to one line: control characters (e.g. a newline inside a name read from a file) become ?. */
sdc_status sdc_fail(sdc_error *err, sdc_status code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Resets err to SDC_OK with an empty message. */
void sdc_error_clear(sdc_error *err);

#define SDC_TRY(expr)                                                                              \
    do {                                                                                           \
        sdc_status s_ = (expr);                                                                    \
        if (s_ != SDC_OK) return s_;                                                               \
    } while (0)

/* Overflow-checked size arithmetic: returns 0 on overflow (callers treat that as "too large"). */
static inline size_t sdc_mul_size(size_t a, size_t b) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) return 0;
    return r;
}

#endif
