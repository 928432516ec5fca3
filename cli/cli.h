/* cli/cli.h: the sdc command's subcommand table and small shared helpers.
 * Each subcommand lives in its own cli/cmd_<name>.c and is listed once in cli/sdc.c. */
#ifndef SDC_CLI_H
#define SDC_CLI_H

#include "sdc.h"

#include <stdio.h>

typedef struct sdc_cli_command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv); /* argv[0] is the subcommand name; returns exit status */
} sdc_cli_command;

/* Prints "sdc NAME: message" on stderr, one line; returns 1 (the exit status of a failure). */
int cli_fail(const char *cmd, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Parses a whole decimal integer or float; 0 on success, -1 when not a clean number. */
int cli_parse_int(const char *s, long long *out);
int cli_parse_float(const char *s, double *out);

/* Loads a model and merges the --lora options given so far (cli_lora_option), printing what
 * each applied on stderr; on failure prints one line and returns 1 (else 0). */
int cli_load_model(const char *cmd, const char *path, int threads, sdc_model **out);
/* Records a --lora FILE.safetensors[:WEIGHT] option (weight 1 when absent); 1 on a bad value. */
int cli_lora_option(const char *cmd, const char *arg);
/* Parses option values within bounds; on failure prints one line naming the option, returns 1. */
int cli_int_arg(const char *cmd, const char *opt, const char *val, long long lo, long long hi, int *out);
int cli_float_arg(const char *cmd, const char *opt, const char *val, double lo, double hi, double *out);

/* getopt_long setup shared by the subcommands: no getopt messages, we print our own line. */
#define CLI_GETOPT_RESET() (optind = 1, opterr = 0)

#endif
