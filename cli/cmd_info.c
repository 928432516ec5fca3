/* cli/cmd_info.c: `sdc info MODEL [--json]`, what a checkpoint is and what it holds.
 *
 * Checks the container (refusing .ckpt pickles, GGUF, empty files, directories), validates the
 * safetensors header, classifies the family (refusing everything but SD1.5), hashes the file
 * (SHA-256 and its AutoV2 short form, as A1111 and Civitai show), and prints the components
 * with their parameter counts and dtypes. --json prints the same as one JSON object.
 * A refusal is one line on stderr and exit status 1. */
#include "cli.h"
#include "core/sha256.h"
#include "io/safetensors.h"
#include "model/detect.h"

#include <inttypes.h>
#include <stdint.h>
#include <string.h>

static const char *const usage_text =
    "usage: sdc info MODEL [--json]\n"
    "\n"
    "Describes an SD1.5 .safetensors checkpoint: size, family, AutoV2 and SHA-256 hashes,\n"
    "components with parameter counts and dtypes, ignored extra keys, metadata.\n"
    "Other kinds of files (SDXL, SD 2.x, LoRA, embeddings, VAE-only, .ckpt) are refused\n"
    "with a one-line reason and exit status 1.\n";

/* ------------------------------------------------------------------------------------------ */
/* JSON strings: escapes, and replaces bytes that are not UTF-8 by U+FFFD so output stays valid */
/* ------------------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the bytes there are not one. */
static int utf8_len(const unsigned char *s) {
    unsigned c = s[0];
    int n;
    unsigned min;
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) n = 2, min = 0x80;
    else if ((c & 0xF0) == 0xE0) n = 3, min = 0x800;
    else if ((c & 0xF8) == 0xF0) n = 4, min = 0x10000;
    else return 0;
    unsigned cp = c & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

static void json_str(FILE *o, const char *str) {
    const unsigned char *s = (const unsigned char *)str;
    fputc('"', o);
    while (*s) {
        if (*s == '"' || *s == '\\') {
            fputc('\\', o);
            fputc(*s++, o);
        } else if (*s < 0x20 || *s == 0x7F) {
            static const char esc[] = "btn\0fr"; /* \b \t \n . \f \r for 8..13 */
            if (*s >= 8 && *s <= 13 && *s != 11) fprintf(o, "\\%c", esc[*s - 8]);
            else fprintf(o, "\\u%04x", *s);
            s++;
        } else {
            int n = utf8_len(s);
            if (n == 0) {
                fputs("\\ufffd", o);
                s++;
            } else {
                fwrite(s, 1, (size_t)n, o);
                s += n;
            }
        }
    }
    fputc('"', o);
}

/* A metadata value for the text output: one line, at most 100 bytes, control bytes as '?'. */
static void text_value(FILE *o, const char *v) {
    size_t n = strlen(v), shown = n > 100 ? 97 : n;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = (unsigned char)v[i];
        fputc(c < 0x20 || c == 0x7F ? '?' : c, o);
    }
    if (shown < n) fputs("...", o);
}

/* ------------------------------------------------------------------------------------------ */
/* Output                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void print_text(const sdc_st_file *f, const sdc_family_info *fi, const char *sha,
                       const char *autov2) {
    size_t size = sdc_st_file_size(f);
    printf("file          %s\n", sdc_st_path(f));
    printf("size          %zu bytes (%.1f MiB)\n", size, (double)size / (1024.0 * 1024.0));
    printf("family        %s (%s)\n", sdc_family_id(fi->family), sdc_family_desc(fi->family));
    printf("autov2        %s\n", autov2);
    printf("sha256        %s\n", sha);
    printf("context_dim   %d\n", fi->context_dim);
    printf("in_channels   %d%s\n", fi->unet_in_channels,
           fi->unet_in_channels == 9 ? " (inpainting)" :
           fi->unet_in_channels == 8 ? " (instruct-pix2pix)" : "");
    printf("components   ");
    for (int c = 0; c < SDC_SD15_N_COMPONENTS; c++)
        if (fi->comp[c].present) printf(" %s", sdc_sd15_component_name(c));
    printf("\n");
    for (int c = 0; c < SDC_SD15_N_COMPONENTS; c++) {
        const sdc_component_info *ci = &fi->comp[c];
        char dt[64];
        sdc_dtype_mask_str(ci->dtypes, dt, sizeof dt);
        if (ci->present)
            printf("  %-12s params %" PRId64 " (%.1fM)  tensors %zu  dtypes %s\n",
                   sdc_sd15_component_name(c), ci->n_params, (double)ci->n_params / 1e6,
                   ci->n_tensors, dt);
        else
            printf("  %-12s absent\n", sdc_sd15_component_name(c));
    }
    printf("total_params  %" PRId64 " (%.3fB)\n", fi->total_params, (double)fi->total_params / 1e9);
    printf("tensors       %zu\n", fi->n_tensors);
    printf("buffers       %zu (DDPM schedule, position_ids; not parameters)\n", fi->n_buffers);
    printf("ignored_keys  %zu", fi->n_ignored);
    if (fi->n_ignored) printf(" (e.g. %s)", fi->first_ignored);
    printf("\n");
    size_t nm = sdc_st_meta_count(f);
    printf("metadata      %zu keys\n", nm);
    for (size_t i = 0; i < nm; i++) {
        const sdc_st_meta *m = sdc_st_meta_get(f, i);
        printf("  ");
        text_value(stdout, m->key);
        printf(" = ");
        text_value(stdout, m->value);
        printf("\n");
    }
}

static void print_json(const sdc_st_file *f, const sdc_family_info *fi, const char *sha,
                       const char *autov2) {
    FILE *o = stdout;
    fputs("{\"file\":", o);
    json_str(o, sdc_st_path(f));
    fprintf(o, ",\"size\":%zu,\"family\":\"%s\",\"description\":\"%s\"", sdc_st_file_size(f),
            sdc_family_id(fi->family), sdc_family_desc(fi->family));
    fprintf(o, ",\"autov2\":\"%s\",\"sha256\":\"%s\"", autov2, sha);
    fprintf(o, ",\"context_dim\":%d,\"unet_in_channels\":%d", fi->context_dim,
            fi->unet_in_channels);
    fputs(",\"components\":{", o);
    for (int c = 0; c < SDC_SD15_N_COMPONENTS; c++) {
        const sdc_component_info *ci = &fi->comp[c];
        fprintf(o, "%s\"%s\":{\"present\":%s,\"params\":%" PRId64 ",\"tensors\":%zu,\"dtypes\":[",
                c ? "," : "", sdc_sd15_component_name(c), ci->present ? "true" : "false",
                ci->n_params, ci->n_tensors);
        int first = 1;
        for (int d = 0; d < SDC_DTYPE_COUNT; d++)
            if (ci->dtypes & (1u << d)) {
                fprintf(o, "%s\"%s\"", first ? "" : ",", sdc_dtype_table[d].name);
                first = 0;
            }
        fputs("]}", o);
    }
    fprintf(o, "},\"total_params\":%" PRId64 ",\"tensors\":%zu,\"buffers\":%zu,\"ignored_keys\":%zu",
            fi->total_params, fi->n_tensors, fi->n_buffers, fi->n_ignored);
    fputs(",\"first_ignored_key\":", o);
    if (fi->n_ignored) json_str(o, fi->first_ignored);
    else fputs("null", o);
    fputs(",\"metadata\":{", o);
    for (size_t i = 0; i < sdc_st_meta_count(f); i++) {
        const sdc_st_meta *m = sdc_st_meta_get(f, i);
        if (i) fputc(',', o);
        json_str(o, m->key);
        fputc(':', o);
        json_str(o, m->value);
    }
    fputs("}}\n", o);
}

int cmd_info(int argc, char **argv) {
    const char *C = "info", *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(argv[i], "--json")) {
            json = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_fail(C, "unknown option '%s' (see sdc info --help)", argv[i]);
        } else if (path) {
            return cli_fail(C, "one MODEL only ('%s' and '%s')", path, argv[i]);
        } else {
            path = argv[i];
        }
    }
    if (!path) return cli_fail(C, "no MODEL given (usage: sdc info MODEL [--json])");

    sdc_error err;
    sdc_error_clear(&err);
    if (sdc_detect_file_kind(path, NULL, &err) != SDC_OK) return cli_fail(C, "%s", err.msg);
    sdc_st_file *f = NULL;
    if (sdc_st_open(path, &f, &err) != SDC_OK) return cli_fail(C, "%s", err.msg);
    sdc_family_info fi;
    if (sdc_detect_family(f, &fi, &err) != SDC_OK) {
        sdc_st_close(f);
        return cli_fail(C, "%s", err.msg);
    }

    /* hash the mapping the reader already holds (the same bytes as the file) */
    uint8_t digest[32];
    const void *bytes = sdc_st_file_bytes(f);
    if (bytes) {
        sdc_sha256(bytes, sdc_st_file_size(f), digest);
    } else if (sdc_sha256_file(path, digest, &err) != SDC_OK) {
        sdc_st_close(f);
        return cli_fail(C, "%s", err.msg);
    }
    char sha[SDC_SHA256_HEX], autov2[SDC_AUTOV2_HEX];
    sdc_sha256_hex(digest, sha);
    sdc_autov2_hex(digest, autov2);

    if (json) print_json(f, &fi, sha, autov2);
    else print_text(f, &fi, sha, autov2);
    sdc_st_close(f);
    if (fflush(stdout) != 0) return cli_fail(C, "cannot write the output");
    return 0;
}
