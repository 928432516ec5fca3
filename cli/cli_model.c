/* cli/cli_model.c: loading the model and the common option values of the stage commands. */
#include "cli.h"

#include <stdlib.h>

int cli_load_model(const char *cmd, const char *path, int threads, sdc_model **out) {
    char err[512];
    if (!path) return cli_fail(cmd, "no model given (-m MODEL.safetensors)");
    sdc_model_params p = sdc_model_params_default();
    p.path = path;
    p.n_threads = threads;
    if (sdc_model_load(&p, out, err, sizeof err) != SDC_OK) return cli_fail(cmd, "%s", err);
    return 0;
}

int cli_int_arg(const char *cmd, const char *opt, const char *val, long long lo, long long hi, int *out) {
    long long v;
    if (cli_parse_int(val, &v) != 0 || v < lo || v > hi)
        return cli_fail(cmd, "%s: '%s' is not an integer in %lld..%lld", opt, val ? val : "", lo, hi);
    *out = (int)v;
    return 0;
}

int cli_float_arg(const char *cmd, const char *opt, const char *val, double lo, double hi, double *out) {
    double v;
    if (cli_parse_float(val, &v) != 0 || v < lo || v > hi)
        return cli_fail(cmd, "%s: '%s' is not a number in %g..%g", opt, val ? val : "", lo, hi);
    *out = v;
    return 0;
}
