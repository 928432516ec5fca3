/* src/prompt/extra_networks.c: webui's extra-network tag extraction (see the header).
 *
 * The regex <(\w+):([^>]+)> is matched by hand, left to right as re.sub scans: at a '<', a run
 * of word characters, a ':', then one or more characters up to the next '>' (the argument part
 * may hold anything else, '<' and newlines included). \w+ cannot backtrack usefully (':' is not
 * a word character), so one pass decides each position. On no match the scan moves on by one
 * character.
 */
#include "prompt/extra_networks.h"

#include "model/unicode_tables.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PROMPT (1u << 20)

static int in_ranges(const sdc_uc_range *r, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo) hi = mid;
        else if (cp > r[mid].hi) lo = mid + 1;
        else return 1;
    }
    return 0;
}

/* Bytes of the word character (Python's \w: letters, numbers, '_') at s, or 0. An ill-formed
 * UTF-8 sequence is U+FFFD for Python, which is not a word character. */
static size_t word_at(const unsigned char *s) {
    unsigned b = s[0];
    if (b < 0x80) return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || b == '_';
    size_t need = b >= 0xC2 && b <= 0xDF ? 1 : b >= 0xE0 && b <= 0xEF ? 2 : b >= 0xF0 && b <= 0xF4 ? 3 : 0;
    if (!need) return 0;
    uint32_t cp = b & (0x3F >> need);
    for (size_t k = 1; k <= need; k++) {
        if ((s[k] & 0xC0) != 0x80) return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[need] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    int word = in_ranges(sdc_uc_letter, sdc_uc_letter_count, cp) || in_ranges(sdc_uc_number, sdc_uc_number_count, cp);
    return word ? need + 1 : 0;
}

/* Length of a match of <(\w+):([^>]+)> at s (s[0] == '<'), or 0; *type_len = length of \w+.
 * *gt caches the first '>' at or after the last search (NULL: none left), so that a prompt of
 * many unterminated "<a:" costs linear time, not quadratic. */
static size_t match_at(const char *s, size_t *type_len, const char **gt, int *gt_valid) {
    const unsigned char *p = (const unsigned char *)s + 1;
    size_t w;
    while ((w = word_at(p))) p += w;
    *type_len = (size_t)(p - (const unsigned char *)s) - 1;
    if (!*type_len || *p != ':') return 0;
    const char *args = (const char *)p + 1;
    if (!*gt_valid || (*gt && *gt < args)) {
        *gt = strchr(args, '>');
        *gt_valid = 1;
    }
    const char *end = *gt;
    if (!end || end == args) return 0;
    return (size_t)(end - s) + 1;
}

static void free_one(sdc_extra_network *n) {
    for (size_t i = 0; i < n->n_items; i++) free(n->items[i]);
    free(n->items);
    free(n->type);
}

void sdc_extra_networks_free(sdc_extra_networks *x) {
    if (!x) return;
    for (size_t i = 0; i < x->n; i++) free_one(&x->v[i]);
    free(x->v);
    free(x->prompt);
    memset(x, 0, sizeof *x);
}

/* One tag: type and the ':'-separated arguments. */
static int add_tag(sdc_extra_networks *x, const char *s, size_t type_len, size_t len) {
    sdc_extra_network *v = realloc(x->v, (x->n + 1) * sizeof *v);
    if (!v) return -1;
    x->v = v;
    sdc_extra_network *n = &v[x->n];
    memset(n, 0, sizeof *n);
    x->n++;
    const char *args = s + 1 + type_len + 1, *end = s + len - 1; /* args .. end (the '>') */
    size_t count = 1;
    for (const char *c = args; c < end; c++) count += *c == ':';
    if (!(n->type = strndup(s + 1, type_len)) || !(n->items = calloc(count, sizeof *n->items))) return -1;
    for (const char *a = args;; ) {
        const char *c = memchr(a, ':', (size_t)(end - a));
        const char *stop = c ? c : end;
        if (!(n->items[n->n_items] = strndup(a, (size_t)(stop - a)))) return -1;
        n->n_items++;
        if (!c) break;
        a = c + 1;
    }
    return 0;
}

sdc_status sdc_extra_networks_parse(const char *prompt, sdc_extra_networks *out, sdc_error *err) {
    memset(out, 0, sizeof *out);
    if (!prompt) prompt = "";
    size_t n = strlen(prompt);
    if (n > MAX_PROMPT) return sdc_fail(err, SDC_E_LIMIT, "prompt of %zu bytes is over the %u-byte limit", n, MAX_PROMPT);
    if (!(out->prompt = malloc(n + 1))) return sdc_fail(err, SDC_E_NOMEM, "out of memory parsing the prompt");
    size_t o = 0;
    const char *gt = NULL;
    int gt_valid = 0;
    for (size_t i = 0; i < n;) {
        size_t type_len, len = prompt[i] == '<' ? match_at(prompt + i, &type_len, &gt, &gt_valid) : 0;
        if (!len) {
            out->prompt[o++] = prompt[i++];
            continue;
        }
        if (add_tag(out, prompt + i, type_len, len)) {
            sdc_extra_networks_free(out);
            return sdc_fail(err, SDC_E_NOMEM, "out of memory parsing the prompt");
        }
        i += len;
    }
    out->prompt[o] = '\0';
    return SDC_OK;
}

/* item.split('=', 2) has exactly two parts: one '=' */
static int is_named(const char *item) {
    const char *eq = strchr(item, '=');
    return eq && !strchr(eq + 1, '=');
}

const char *sdc_extra_network_positional(const sdc_extra_network *n, size_t i) {
    for (size_t k = 0; k < n->n_items; k++)
        if (!is_named(n->items[k]) && i-- == 0) return n->items[k];
    return NULL;
}

const char *sdc_extra_network_named(const sdc_extra_network *n, const char *key) {
    const char *found = NULL;
    size_t kl = strlen(key);
    for (size_t k = 0; k < n->n_items; k++)
        if (is_named(n->items[k]) && !strncmp(n->items[k], key, kl) && n->items[k][kl] == '=')
            found = n->items[k] + kl + 1;
    return found;
}

/* Python's float() for plain decimal numbers: whitespace around, no hex; finite only here. */
static int py_float(const char *s, float *out) {
    while (*s == ' ' || (*s >= '\t' && *s <= '\r')) s++;
    if (!*s || strpbrk(s, "xX")) return -1;
    char *end;
    double v = strtod(s, &end);
    while (*end == ' ' || (*end >= '\t' && *end <= '\r')) end++;
    if (end == s || *end || !isfinite(v) || fabs(v) > 1e6) return -1;
    *out = (float)v;
    return 0;
}

sdc_status sdc_extra_network_lora(const sdc_extra_network *n, sdc_lora_tag *out, sdc_error *err) {
    const char *name = sdc_extra_network_positional(n, 0);
    if (!name || !name[0]) return sdc_fail(err, SDC_E_INVALID_ARG, "<%s:...>: no LoRA name", n->type);
    out->name = name;
    out->te = out->unet = 1.0f;
    const char *te = sdc_extra_network_positional(n, 1), *unet = sdc_extra_network_positional(n, 2);
    const char *nte = sdc_extra_network_named(n, "te"), *nunet = sdc_extra_network_named(n, "unet");
    if (nte) te = nte;
    if (te && py_float(te, &out->te))
        return sdc_fail(err, SDC_E_INVALID_ARG, "<%s:%s:...>: text encoder weight '%s' is not a finite number",
                        n->type, name, te);
    out->unet = out->te;
    if (nunet) unet = nunet;
    if (unet && py_float(unet, &out->unet))
        return sdc_fail(err, SDC_E_INVALID_ARG, "<%s:%s:...>: UNet weight '%s' is not a finite number", n->type,
                        name, unet);
    return SDC_OK;
}
