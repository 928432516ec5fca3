#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

sdc_status sdc_fail(sdc_error *err, sdc_status code, const char *fmt, ...) {
    if (!err) return code;
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* A message is one line whatever a file put into it (tensor names, zip entry names, pickle
     * strings): control characters become '?'. */
    for (char *c = err->msg; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
    return code;
}

void sdc_error_clear(sdc_error *err) {
    if (!err) return;
    err->code = SDC_OK;
    err->msg[0] = '\0';
}

static const char *const status_names[SDC_STATUS_COUNT] = {
    [SDC_OK] = "ok",
    [SDC_E_INVALID_ARG] = "invalid argument",
    [SDC_E_NOMEM] = "out of memory",
    [SDC_E_IO] = "input/output error",
    [SDC_E_FORMAT] = "malformed or unrecognised file",
    [SDC_E_UNSUPPORTED] = "unsupported",
    [SDC_E_BACKEND] = "backend failure",
    [SDC_E_CANCELLED] = "cancelled",
    [SDC_E_LIMIT] = "limit exceeded",
};
_Static_assert(SDC_STATUS_COUNT == 9, "update status_names");

const char *sdc_status_str(sdc_status s) {
    if ((int)s < 0 || s >= SDC_STATUS_COUNT) return "unknown status";
    return status_names[s];
}
