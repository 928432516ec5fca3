/* cli/cmd_parse_prompt.c: `sdc parse-prompt [--json] [--schedule STEPS | --and] TEXT`, what
 * AUTOMATIC1111's webui makes of a prompt's syntax (src/prompt/prompt_parse.h).
 *
 * Default: parse_prompt_attention(TEXT), the weighted fragments the text encoder sees.
 * --schedule STEPS: get_learned_conditioning_prompt_schedules([TEXT], STEPS)[0], the text used
 *                   up to each step ([from:to:when], [to:when], [from::when], [a|b]).
 * --and: get_multicond_prompt_list([TEXT]): the AND parts, their texts and weights.
 * --json prints what json.dumps prints for webui's return value, on one line:
 *   [["a ", 1.0], ["cat", 1.3]]      [[10, "a "], [20, "a b"]]
 *   {"subprompts": ["a", " b"], "indexes_weights": [[0, 1.2], [1, 1.0]]}
 * (floats as Python's repr, non-ASCII as \uXXXX); otherwise one line per item, tab-separated,
 * with the text quoted the same way. A prompt webui rejects ("(a:1.2.3)": ValueError) is one line
 * on stderr and exit status 1. */
#include "cli.h"
#include "prompt/prompt_parse.h"

#include <stdlib.h>
#include <string.h>

static const char *const usage_text =
    "usage: sdc parse-prompt [--json] [--schedule STEPS | --and] [--] TEXT\n"
    "\n"
    "Shows how AUTOMATIC1111's webui reads the prompt TEXT:\n"
    "  (default)         the weighted fragments: (x) x1.1, [x] /1.1, (x:1.3), \\( escapes, BREAK\n"
    "  --schedule STEPS  the prompt-editing schedule for STEPS steps: [from:to:when], [a|b]\n"
    "  --and             the AND-separated parts and their :weight suffixes\n"
    "  --json            one line of JSON, as Python's json.dumps prints webui's result\n";

/* Prints a string quoted as json.dumps does. */
static int print_str(const char *s, size_t len) {
    size_t n = sdc_prompt_json_string(NULL, s, len);
    char *b = malloc(n);
    if (!b) return -1;
    sdc_prompt_json_string(b, s, len);
    fwrite(b, 1, n, stdout);
    free(b);
    return 0;
}

static void print_num(double v, int is_int) {
    char b[32];
    if (is_int)
        printf("%d", (int)v); /* the int -1 of a BREAK */
    else
        fputs((sdc_prompt_json_double(v, b), b), stdout);
}

static int show_attention(const char *text, int json, sdc_error *e) {
    sdc_prompt_frags f;
    if (sdc_prompt_parse_attention(text, &f, e) != SDC_OK) return -1;
    int rc = 0;
    if (json) putchar('[');
    for (size_t i = 0; i < f.n && rc == 0; i++) {
        const sdc_prompt_frag *x = &f.v[i];
        if (json) {
            fputs(i ? ", [" : "[", stdout);
            rc = print_str(x->text, x->len);
            fputs(", ", stdout);
            print_num(x->weight, x->weight_is_int);
            putchar(']');
        } else {
            print_num(x->weight, x->weight_is_int);
            putchar('\t');
            rc = print_str(x->text, x->len);
            putchar('\n');
        }
    }
    if (json) puts("]");
    sdc_prompt_frags_free(&f);
    return rc;
}

static int show_schedule(const char *text, int steps, int json, sdc_error *e) {
    sdc_prompt_schedule s;
    if (sdc_prompt_schedule_get(text, steps, 0, 0, &s, e) != SDC_OK) return -1;
    int rc = 0;
    if (json) putchar('[');
    for (size_t i = 0; i < s.n && rc == 0; i++) {
        printf(json ? (i ? ", [%d, " : "[%d, ") : "%d\t", s.v[i].end_at_step);
        rc = print_str(s.v[i].text, strlen(s.v[i].text));
        fputs(json ? "]" : "\n", stdout);
    }
    if (json) puts("]");
    sdc_prompt_schedule_free(&s);
    return rc;
}

static int show_and(const char *text, int json, sdc_error *e) {
    sdc_prompt_and a;
    if (sdc_prompt_split_and(text, &a, e) != SDC_OK) return -1;
    int rc = 0;
    if (json) {
        fputs("{\"subprompts\": [", stdout);
        for (size_t i = 0; i < a.n_texts && rc == 0; i++) {
            if (i) fputs(", ", stdout);
            rc = print_str(a.texts[i], strlen(a.texts[i]));
        }
        fputs("], \"indexes_weights\": [", stdout);
        for (size_t i = 0; i < a.n_parts; i++) {
            printf(i ? ", [%d, " : "[%d, ", a.parts[i].index);
            print_num(a.parts[i].weight, 0);
            putchar(']');
        }
        puts("]}");
    } else {
        for (size_t i = 0; i < a.n_parts && rc == 0; i++) {
            print_num(a.parts[i].weight, 0);
            putchar('\t');
            const char *t = a.texts[a.parts[i].index];
            rc = print_str(t, strlen(t));
            putchar('\n');
        }
    }
    sdc_prompt_and_free(&a);
    return rc;
}

int cmd_parse_prompt(int argc, char **argv) {
    static const char *const C = "parse-prompt";
    const char *text = NULL;
    int json = 0, and_mode = 0, steps = 0, options = 1;
    for (int i = 1; i < argc; i++) {
        if (options && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
            fputs(usage_text, stdout);
            return 0;
        } else if (options && !strcmp(argv[i], "--json")) {
            json = 1;
        } else if (options && !strcmp(argv[i], "--and")) {
            and_mode = 1;
        } else if (options && !strcmp(argv[i], "--schedule")) {
            if (i + 1 >= argc) return cli_fail(C, "option --schedule needs a value (STEPS)");
            if (cli_int_arg(C, "--schedule", argv[++i], 1, SDC_PROMPT_MAX_STEPS, &steps)) return 1;
        } else if (options && !strcmp(argv[i], "--")) {
            options = 0;
        } else if (options && argv[i][0] == '-' && argv[i][1]) {
            return cli_fail(C, "unknown option '%s' (see sdc parse-prompt --help)", argv[i]);
        } else if (text) {
            return cli_fail(C, "more than one TEXT argument (quote the prompt)");
        } else {
            text = argv[i];
        }
    }
    if (!text) return cli_fail(C, "no TEXT given (usage: sdc parse-prompt [--json] [--schedule STEPS | --and] TEXT)");
    if (steps && and_mode) return cli_fail(C, "--schedule and --and are separate views: give one");

    sdc_error e = {0};
    int rc = steps      ? show_schedule(text, steps, json, &e)
             : and_mode ? show_and(text, json, &e)
                        : show_attention(text, json, &e);
    if (rc) return cli_fail(C, "%s", e.code != SDC_OK ? e.msg : "out of memory");
    if (fflush(stdout) != 0 || ferror(stdout)) return cli_fail(C, "cannot write the output");
    return 0;
}
