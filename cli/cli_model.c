/* cli/cli_model.c: loading the model and the common option values of the stage commands. */
#include "cli.h"

#include <stdlib.h>
#include <string.h>

/* The --lora FILE[:WEIGHT] options of this run, merged by cli_load_model in the order given. */
#define CLI_MAX_LORAS 64
static struct {
    const char *path; /* points at buf */
    char buf[4096];
    float weight;
} cli_loras[CLI_MAX_LORAS];
static int cli_n_loras;

int cli_lora_option(const char *cmd, const char *arg) {
    if (cli_n_loras == CLI_MAX_LORAS) return cli_fail(cmd, "--lora: at most %d LoRAs", CLI_MAX_LORAS);
    if (!arg || !arg[0]) return cli_fail(cmd, "--lora: no file given (--lora FILE.safetensors[:WEIGHT])");
    if (strlen(arg) >= sizeof cli_loras[0].buf) return cli_fail(cmd, "--lora: path too long");
    char *buf = cli_loras[cli_n_loras].buf;
    snprintf(buf, sizeof cli_loras[0].buf, "%s", arg);
    double w = 1.0;
    char *colon = strrchr(buf, ':');
    if (colon && colon != buf && !strchr(colon, '/')) { /* FILE:WEIGHT; a ':' inside a path stays */
        if (cli_parse_float(colon + 1, &w) != 0 || !(w >= -100.0 && w <= 100.0))
            return cli_fail(cmd, "--lora %s: weight '%s' is not a number in -100..100", arg, colon + 1);
        *colon = '\0';
    }
    cli_loras[cli_n_loras].path = buf;
    cli_loras[cli_n_loras].weight = (float)w;
    cli_n_loras++;
    return 0;
}

int cli_load_model(const char *cmd, const char *path, int threads, sdc_model **out) {
    char err[512];
    if (!path) return cli_fail(cmd, "no model given (-m MODEL.safetensors)");
    sdc_model_params p = sdc_model_params_default();
    p.path = path;
    p.n_threads = threads;
    if (sdc_model_load(&p, out, err, sizeof err) != SDC_OK) return cli_fail(cmd, "%s", err);
    for (int i = 0; i < cli_n_loras; i++) {
        sdc_lora_report rep;
        float w = cli_loras[i].weight;
        if (sdc_model_apply_lora(*out, cli_loras[i].path, NULL, w, w, &rep, err, sizeof err) != SDC_OK) {
            sdc_model_free(*out);
            *out = NULL;
            return cli_fail(cmd, "%s", err);
        }
        fprintf(stderr, "sdc %s: lora %s: applied %d/%d tensors to %d weights (weight %g, hash %s)\n", cmd,
                cli_loras[i].path, rep.n_applied, rep.n_tensors, rep.n_weights, (double)w, rep.hash);
        for (int k = 0; k < rep.n_skipped; k++) fprintf(stderr, "  not applied: %s\n", rep.skipped[k]);
        sdc_lora_report_free(&rep);
    }
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
