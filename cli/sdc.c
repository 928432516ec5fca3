/* cli/sdc.c: the `sdc` command: dispatches to the subcommands in cli/cmd_*.c. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* One line per subcommand; keep in the order `sdc --help` shows them. */
#define SDC_COMMANDS(X)                                                                            \
    X(tokenize, "print the 77 CLIP token ids of a prompt as JSON")                                 \
    X(info, "describe a checkpoint: family, hashes, components, parameter counts")                 \
    X(mkmodel, "write a random-weight SD1.5 checkpoint (--tiny or --full)")                        \
    X(txt2img, "generate a picture from a prompt (PNG with A1111 parameters)")                     \
    X(encode, "text encoder stage: prompt -> [1, 77, D] hidden states (.npy)")                     \
    X(unet, "UNet stage: latent, timestep, context -> noise prediction (.npy)")                    \
    X(decode, "VAE decoder stage: latent -> image (.npy or .png)")                                 \
    X(parse_prompt, "A1111 prompt syntax: (weights), BREAK, [a:b:N] editing, AND (--json)")        \
    X(export, "write the text encoder, UNet and VAE decoder as ONNX for one image size")           \
    X(calib, "record NPU calibration sets while sampling; pulsar2 configs and manifest")          \
    X(deploy, "export + calib into one folder: the whole NPU deploy kit from one checkpoint")     \
    X(bench, "time whole generations: per-stage seconds, GFLOP/s vs the FMA peak, peak RSS")     \

#define DECLARE(name, summary) int cmd_##name(int argc, char **argv);
SDC_COMMANDS(DECLARE)
#undef DECLARE

static const sdc_cli_command commands[] = {
#define ENTRY(name, summary) {#name, summary, cmd_##name},
    SDC_COMMANDS(ENTRY)
#undef ENTRY
};

int cli_fail(const char *cmd, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "sdc %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int cli_parse_int(const char *s, long long *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *out = v;
    return 0;
}

int cli_parse_float(const char *s, double *out) {
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || v != v) return -1;
    *out = v;
    return 0;
}

static void usage(FILE *f) {
    fprintf(f, "sdc: Stable Diffusion 1.5 in C\n\nusage: sdc COMMAND [options]   (sdc COMMAND --help)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        char name[32]; /* listed as typed: parse_prompt is `sdc parse-prompt` */
        snprintf(name, sizeof name, "%s", commands[i].name);
        for (char *c = name; *c; c++) *c = *c == '_' ? '-' : *c;
        fprintf(f, "  %-12s %s\n", name, commands[i].summary);
    }
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (char *c = argv[1]; *c; c++) *c = *c == '-' ? '_' : *c; /* `sdc parse-prompt` is cmd_parse_prompt */
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "sdc: unknown command '%s' (see sdc --help)\n", argv[1]);
    return 2;
}
