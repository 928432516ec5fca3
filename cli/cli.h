/* cli/cli.h: the sdc command's subcommand table and small shared helpers.
 * Each subcommand lives in its own cli/cmd_<name>.c and is listed once in cli/sdc.c. */
#ifndef SDC_CLI_H
#define SDC_CLI_H

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

#endif
