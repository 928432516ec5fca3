/* src/pipeline/infotext.c: webui's create_infotext() in C (see infotext.h for the format).
 *
 * Source of every rule: AUTOMATIC1111/stable-diffusion-webui v1.10.1, modules/processing.py
 * create_infotext() (the generation_params dict literal, the ", ".join with quote(), the
 * "\nNegative prompt: " line and the final .strip()) and modules/infotext_utils.py quote():
 *
 *     def quote(text):
 *         if ',' not in str(text) and '\n' not in str(text) and ':' not in str(text):
 *             return text
 *         return json.dumps(text, ensure_ascii=False)
 *
 * (a '"' alone does not trigger quoting). The dict is modelled as an ordered list of
 * (key, value) entries with Python's dict-literal semantics: setting an existing key replaces
 * its value in place, a new key is appended, and None values are dropped when joining. Listing
 * webui's txt2img keys that sdc never sets (with no value) keeps their slots, so an extra field
 * such as "Denoising strength" lands where webui would put it.
 *
 * CFG scale: webui's UI passes the slider value through gradio as a JSON number, so a whole
 * number arrives as a Python int and prints as "7" (API calls pass floats and print "7.0"; sdc
 * follows the UI, which is what Civitai images show). Other values print as Python's repr of the
 * float: the shortest decimal that reads back to the same double.
 */
#include "pipeline/infotext.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* A growing string                                                                               */
/* ---------------------------------------------------------------------------------------------- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_add(sbuf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* ---------------------------------------------------------------------------------------------- */
/* Python formatting                                                                              */
/* ---------------------------------------------------------------------------------------------- */

/* Python's repr(float): shortest round-trip digits; fixed notation when the decimal exponent is
 * in -4 < decpt <= 16, else d.ddde+XX with at least two exponent digits. */
static void py_float_repr(double v, char *out, size_t cap) {
    if (isnan(v)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(v)) {
        snprintf(out, cap, v > 0 ? "inf" : "-inf");
        return;
    }
    if (v == 0) {
        snprintf(out, cap, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    /* e = [-]d[.ddd]e[+-]XX */
    const char *s = e;
    int neg = *s == '-';
    if (neg) s++;
    char digits[24];
    int n = 0;
    for (; *s && *s != 'e'; s++)
        if (*s != '.') digits[n++] = *s;
    while (n > 1 && digits[n - 1] == '0') n--;
    digits[n] = '\0';
    int decpt = atoi(s + 1) + 1; /* value = 0.DIGITS * 10^decpt */

    char body[32]; /* at most 24 characters: 17 digits, "0.000", an exponent */
    size_t k = 0;
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            k += (size_t)snprintf(body + k, sizeof body - k, "0.");
            for (int i = 0; i < -decpt; i++) body[k++] = '0';
            k += (size_t)snprintf(body + k, sizeof body - k, "%s", digits);
        } else if (decpt >= n) {
            k += (size_t)snprintf(body + k, sizeof body - k, "%s", digits);
            for (int i = n; i < decpt; i++) body[k++] = '0';
            k += (size_t)snprintf(body + k, sizeof body - k, ".0");
        } else {
            k += (size_t)snprintf(body + k, sizeof body - k, "%.*s.%s", decpt, digits,
                                  digits + decpt);
        }
    } else {
        int x = decpt - 1;
        k += (size_t)snprintf(body + k, sizeof body - k, "%c", digits[0]);
        if (n > 1) k += (size_t)snprintf(body + k, sizeof body - k, ".%s", digits + 1);
        k += (size_t)snprintf(body + k, sizeof body - k, "e%c%02d", x < 0 ? '-' : '+', abs(x));
    }
    body[k] = '\0';
    snprintf(out, cap, "%s%s", neg ? "-" : "", body);
}

/* A number as the webui UI hands it to Python: whole numbers are ints, the rest floats. */
static void py_number(double v, char *out, size_t cap) {
    if (isfinite(v) && v == floor(v) && fabs(v) < 9007199254740992.0) /* 2^53 */
        snprintf(out, cap, "%.0f", v == 0 ? 0.0 : v);
    else
        py_float_repr(v, out, cap);
}

/* webui's quote(): the value as is, or json.dumps(value, ensure_ascii=False) when it holds a
 * ',', ':' or newline. */
static void add_quoted(sbuf *b, const char *v) {
    if (!strpbrk(v, ",:\n")) {
        sb_str(b, v);
        return;
    }
    sb_add(b, "\"", 1);
    for (const unsigned char *s = (const unsigned char *)v; *s; s++) {
        char esc[8];
        switch (*s) {
        case '"': sb_add(b, "\\\"", 2); break;
        case '\\': sb_add(b, "\\\\", 2); break;
        case '\n': sb_add(b, "\\n", 2); break;
        case '\r': sb_add(b, "\\r", 2); break;
        case '\t': sb_add(b, "\\t", 2); break;
        case '\b': sb_add(b, "\\b", 2); break;
        case '\f': sb_add(b, "\\f", 2); break;
        default:
            if (*s < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *s);
                sb_add(b, esc, 6);
            } else {
                sb_add(b, (const char *)s, 1);
            }
        }
    }
    sb_add(b, "\"", 1);
}

/* Length of the Python whitespace character (str.isspace) starting at s, or 0. */
static size_t space_at(const unsigned char *s, size_t n) {
    if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0d) || (s[0] >= 0x1c && s[0] <= 0x20))) return 1;
    if (n >= 2 && s[0] == 0xc2 && (s[1] == 0x85 || s[1] == 0xa0)) return 2;
    if (n >= 3) {
        unsigned c = (unsigned)s[0] << 16 | (unsigned)s[1] << 8 | s[2];
        if (c == 0xe19a80 || (c >= 0xe28080 && c <= 0xe2808a) || c == 0xe280a8 ||
            c == 0xe280a9 || c == 0xe280af || c == 0xe2819f || c == 0xe38080)
            return 3;
    }
    return 0;
}

/* Python str.strip() on UTF-8, in place. */
static void py_strip(sbuf *b) {
    const unsigned char *s = (const unsigned char *)b->p;
    size_t start = 0, end = b->len, l;
    while (start < end && (l = space_at(s + start, end - start))) start += l;
    for (;;) { /* a trailing space is 1, 2 or 3 bytes long */
        size_t m = 0;
        for (size_t w = 1; w <= 3 && !m; w++)
            if (end - start >= w && space_at(s + end - w, w) == w) m = w;
        if (!m) break;
        end -= m;
    }
    memmove(b->p, b->p + start, end - start);
    b->len = end - start;
    b->p[b->len] = '\0';
}

/* ---------------------------------------------------------------------------------------------- */
/* The generation_params dict                                                                     */
/* ---------------------------------------------------------------------------------------------- */

/* webui v1.10.1's keys in the order of its dict literal (txt2img, before the extra params). */
static const char *const webui_keys[] = {
    "Steps", "Sampler", "Schedule type", "CFG scale", "Image CFG scale", "Seed",
    "Face restoration", "Size", "Model hash", "Model", "FP8 weight",
    "Cache FP16 weight for LoRA", "VAE hash", "VAE", "Variation seed", "Variation seed strength",
    "Seed resize from", "Denoising strength", "Conditional mask weight", "Clip skip", "ENSD",
    "Token merging ratio", "Token merging ratio hr", "Init image hash", "RNG", "Tiling",
};
#define N_WEBUI_KEYS (sizeof webui_keys / sizeof webui_keys[0])

typedef struct entry {
    const char *key;
    const char *val; /* NULL = None; may point at num */
    char num[48];
} entry;

typedef struct dict {
    entry *e;
    size_t n;
} dict;

/* d[key] = val, keeping the position of an existing key. Returns the entry. */
static entry *dict_set(dict *d, const char *key, const char *val) {
    for (size_t i = 0; i < d->n; i++) {
        if (strcmp(d->e[i].key, key) == 0) {
            d->e[i].val = val;
            return &d->e[i];
        }
    }
    entry *e = &d->e[d->n++]; /* capacity is reserved up front */
    e->key = key;
    e->val = val;
    return e;
}

static void dict_set_int(dict *d, const char *key, int64_t v) {
    entry *e = dict_set(d, key, NULL);
    snprintf(e->num, sizeof e->num, "%" PRId64, v);
    e->val = e->num;
}

char *sdc_infotext(const sdc_infotext_params *p) {
    if (!p) return NULL;
    dict d = {calloc(N_WEBUI_KEYS + p->n_extra + 2, sizeof(entry)), 0};
    if (!d.e) return NULL;
    for (size_t i = 0; i < N_WEBUI_KEYS; i++) dict_set(&d, webui_keys[i], NULL);

    dict_set_int(&d, "Steps", p->steps);
    dict_set(&d, "Sampler", p->sampler_name);
    dict_set(&d, "Schedule type", p->schedule_name);
    entry *cfg = dict_set(&d, "CFG scale", NULL);
    py_number(p->cfg, cfg->num, sizeof cfg->num);
    cfg->val = cfg->num;
    dict_set_int(&d, "Seed", p->seed);
    entry *size = dict_set(&d, "Size", NULL);
    snprintf(size->num, sizeof size->num, "%dx%d", p->width, p->height);
    size->val = size->num;
    dict_set(&d, "Model hash", p->model_hash);
    dict_set(&d, "Model", p->model_name);
    dict_set(&d, "VAE hash", p->vae_hash);
    dict_set(&d, "VAE", p->vae_name);
    if (p->clip_skip > 1) dict_set_int(&d, "Clip skip", p->clip_skip);
    if (p->rng && strcmp(p->rng, "GPU") != 0) dict_set(&d, "RNG", p->rng);
    for (size_t i = 0; i < p->n_extra; i++)
        if (p->extra && p->extra[i].key) dict_set(&d, p->extra[i].key, p->extra[i].value);
    dict_set(&d, "Version", p->version);
    dict_set(&d, "User", NULL);

    sbuf b = {0};
    sb_str(&b, p->prompt ? p->prompt : "");
    if (p->negative && p->negative[0]) {
        sb_str(&b, "\nNegative prompt: ");
        sb_str(&b, p->negative);
    }
    sb_str(&b, "\n");
    int first = 1;
    for (size_t i = 0; i < d.n; i++) {
        const entry *e = &d.e[i];
        if (!e->val) continue;
        if (!first) sb_str(&b, ", ");
        first = 0;
        sb_str(&b, e->key);
        if (strcmp(e->key, e->val) == 0) continue; /* `k if k == v` */
        sb_str(&b, ": ");
        add_quoted(&b, e->val);
    }
    free(d.e);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    py_strip(&b);
    return b.p;
}
