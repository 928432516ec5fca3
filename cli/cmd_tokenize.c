/* cli/cmd_tokenize.c: `sdc tokenize [--raw] TEXT`, the CLIP token ids of a prompt.
 *
 * Prints one line, a JSON array: the 77 ids the text encoder takes (BOS 49406, at most 75 tokens,
 * EOS 49407, EOS padding), or with --raw every token id without BOS/EOS, truncation or padding.
 * The ids are those of the SD1.5 reference tokenizer (transformers' CLIPTokenizer with ftfy).
 * Errors are one line on stderr and exit status 1. */
#include "cli.h"
#include "sdc.h"

#include <stdlib.h>
#include <string.h>

static const char *const usage_text =
    "usage: sdc tokenize [--raw] TEXT\n"
    "\n"
    "Prints the CLIP token ids of TEXT (UTF-8) as a JSON array on one line:\n"
    "  77 ids: BOS 49406, at most 75 tokens, EOS 49407, then EOS padding (what the text encoder takes)\n"
    "  --raw   all token ids of TEXT, without BOS/EOS, truncation or padding\n"
    "A literal <|startoftext|> or <|endoftext|> in TEXT becomes that special token.\n"
    "Use -- before a TEXT that starts with '-'.\n";

static void print_ids(const int32_t *ids, size_t n) {
    putchar('[');
    for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", (int)ids[i]);
    puts("]");
}

int cmd_tokenize(int argc, char **argv) {
    static const char *const C = "tokenize";
    const char *text = NULL;
    int raw = 0, options = 1;
    for (int i = 1; i < argc; i++) {
        if (options && (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))) {
            fputs(usage_text, stdout);
            return 0;
        } else if (options && !strcmp(argv[i], "--raw")) {
            raw = 1;
        } else if (options && !strcmp(argv[i], "--")) {
            options = 0;
        } else if (options && argv[i][0] == '-' && argv[i][1]) {
            return cli_fail(C, "unknown option '%s' (see sdc tokenize --help)", argv[i]);
        } else if (text) {
            return cli_fail(C, "more than one TEXT argument (quote the prompt: sdc tokenize \"a photo of a cat\")");
        } else {
            text = argv[i];
        }
    }
    if (!text) return cli_fail(C, "no TEXT given (usage: sdc tokenize [--raw] TEXT)");

    char err[512];
    sdc_tokenizer *tok;
    if (sdc_tokenizer_new(&tok, err, sizeof err) != SDC_OK) return cli_fail(C, "%s", err);
    int rc = 0;
    if (raw) {
        size_t n = 0;
        int32_t *ids = NULL;
        if (sdc_tokenize_raw(tok, text, NULL, 0, &n, err, sizeof err) != SDC_OK) {
            rc = cli_fail(C, "%s", err);
        } else if (n && !(ids = malloc(n * sizeof *ids))) {
            rc = cli_fail(C, "out of memory for %zu ids", n);
        } else if (sdc_tokenize_raw(tok, text, ids, n, &n, err, sizeof err) != SDC_OK) {
            rc = cli_fail(C, "%s", err);
        } else {
            print_ids(ids, n);
        }
        free(ids);
    } else {
        int32_t ids[SDC_CLIP_CTX];
        if (sdc_tokenize(tok, text, ids, err, sizeof err) != SDC_OK) rc = cli_fail(C, "%s", err);
        else print_ids(ids, SDC_CLIP_CTX);
    }
    sdc_tokenizer_free(tok);
    if (rc == 0 && (fflush(stdout) != 0 || ferror(stdout))) rc = cli_fail(C, "cannot write the output");
    return rc;
}
