/* src/model/clip_tokenizer.c: the CLIP BPE tokenizer of SD1.5 (sdc_tokenizer_* in include/sdc.h),
 * id for id the same as the reference: transformers' slow CLIPTokenizer with ftfy 6.1.1 installed,
 * as StableDiffusionPipeline calls it.
 *
 * What the reference does, and where it happens here:
 *   1. the text is split at literal "<|startoftext|>" / "<|endoftext|>" (the added-token trie,
 *      case-sensitive); those become ids 49406 / 49407 ............................. tokenize_all()
 *   2. every other chunk: ftfy.fix_text(chunk) ......................................... fix_text()
 *   3. whitespace_clean (runs of regex \s -> one space, str.strip()) ........... whitespace_clean()
 *   4. str.lower(), final sigma included ............................................... lower()
 *   5. regex findall  <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|
 *      [^\s\p{L}\p{N}]+  (IGNORECASE) ...................................... next_piece()
 *   6. each piece's UTF-8 bytes through GPT-2's bytes_to_unicode, then BPE with the merge ranks of
 *      the vocabulary; a piece that is exactly a special token string is that token ........ bpe()
 * sdc_tokenize then keeps at most 75 ids between BOS and EOS and pads with EOS to 77.
 *
 * ftfy.fix_text, which steps are here: every fixer ftfy 6.1.1 applies by default except
 * fix_encoding (mojibake repair such as "cafÃ©" -> "café": a heuristic over many codecs, not a
 * table; text that ftfy would judge to be mojibake tokenizes as written). Implemented, in ftfy's
 * order and repeated until nothing changes, per line segment: HTML entities (all of
 * html.entities.html5 ending in ';', ftfy's all-caps variants, numeric references as
 * html.unescape does them; skipped from the first segment containing '<' on, as ftfy's "auto"),
 * C1 controls read as windows-1252, Latin ligatures, fullwidth/halfwidth forms, curly quotes,
 * line breaks, terminal escapes, control characters, and a full NFC (tables in unicode_tables.c).
 * fix_surrogates has nothing to do: the decoded text never holds surrogates.
 *
 * Input is UTF-8. Invalid sequences decode as Python's bytes.decode("utf-8", "replace") does: each
 * maximal ill-formed subpart becomes one U+FFFD (which the vocabulary then encodes as its bytes
 * EF BF BD). Text longer than SDC_TOKENIZER_MAX_TEXT bytes is refused with SDC_E_LIMIT.
 *
 * The tokenizer is immutable after sdc_tokenizer_new, so threads may share one; each call
 * allocates its own scratch.
 */
#include "sdc.h"

#include "core/error.h"
#include "model/unicode_tables.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

extern const unsigned char sdc_vocab_gz[];
extern const size_t sdc_vocab_gz_len;

#define SDC_TOKENIZER_MAX_TEXT (1u << 20) /* bytes of prompt text accepted by one call */
#define VOCAB_SIZE 49408
#define N_MERGES (49152 - 256 - 2)   /* lines 2..48895 of the vocabulary file */
#define FIRST_MERGE_ID 512           /* 256 byte tokens, then the same with </w> */
#define MAX_FIX_PASSES 64            /* ftfy loops until a fixed point; real text needs 1-3 */
#define FTFY_MAX_SEGMENT 1000000     /* ftfy's max_decode_length */

/* ============================================================================================ */
/* Growable arrays                                                                             */
/* ============================================================================================ */

typedef struct cpbuf {
    uint32_t *v;
    size_t n, cap;
} cpbuf;

static bool cp_reserve(cpbuf *b, size_t extra) {
    if (b->n + extra <= b->cap) return true;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + extra) cap *= 2;
    uint32_t *v = realloc(b->v, sdc_mul_size(cap, sizeof *v));
    if (!v) return false;
    b->v = v;
    b->cap = cap;
    return true;
}

static bool cp_push(cpbuf *b, uint32_t c) {
    if (b->n == b->cap && !cp_reserve(b, 1)) return false;
    b->v[b->n++] = c;
    return true;
}

static bool cp_append(cpbuf *b, const uint32_t *s, size_t n) {
    if (!cp_reserve(b, n)) return false;
    if (n) memcpy(b->v + b->n, s, n * sizeof *s);
    b->n += n;
    return true;
}

typedef struct idbuf {
    int32_t *v;
    size_t n, cap;
} idbuf;

static bool id_push(idbuf *b, int32_t id) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 128;
        int32_t *v = realloc(b->v, sdc_mul_size(cap, sizeof *v));
        if (!v) return false;
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = id;
    return true;
}

/* ============================================================================================ */
/* Unicode lookups over the generated tables                                                   */
/* ============================================================================================ */

static bool in_ranges(const sdc_uc_range *r, size_t n, uint32_t c) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid].lo) hi = mid;
        else if (c > r[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

static bool is_letter(uint32_t c) {
    if (c < 0x80) return (c | 0x20) - 'a' < 26;
    return in_ranges(sdc_uc_letter, sdc_uc_letter_count, c);
}
static bool is_number(uint32_t c) {
    if (c < 0x80) return c - '0' < 10;
    return in_ranges(sdc_uc_number, sdc_uc_number_count, c);
}
/* \s of the regex module (whitespace_clean and the pre-token pattern). */
static bool is_rx_space(uint32_t c) { return in_ranges(sdc_uc_space, sdc_uc_space_count, c); }
/* str.isspace(): the same plus U+001C..U+001F (str.strip()). */
static bool is_py_space(uint32_t c) { return (c >= 0x1C && c <= 0x1F) || is_rx_space(c); }
static bool is_decimal(uint32_t c) {
    if (c < 0x80) return c - '0' < 10;
    return in_ranges(sdc_uc_decimal, sdc_uc_decimal_count, c);
}
static bool is_ascii_alnum(uint32_t c) { return c < 0x80 && (c - '0' < 10 || (c | 0x20) - 'a' < 26); }

/* str.lower() of one character other than U+03A3; writes 1 or 2 code points, returns the count. */
static int lower_char(uint32_t c, uint32_t out[3]) {
    if (c < 0x80) {
        out[0] = c - 'A' < 26 ? c + 32 : c;
        return 1;
    }
    for (size_t i = 0; i < sdc_uc_lower_special_count; i++) {
        if (sdc_uc_lower_special[i].cp == c) {
            int k = 0;
            while (k < 3 && sdc_uc_lower_special[i].to[k]) { out[k] = sdc_uc_lower_special[i].to[k]; k++; }
            return k;
        }
    }
    size_t lo = 0, hi = sdc_uc_lower_count; /* last run with start <= c */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sdc_uc_lower[mid].start <= c) lo = mid + 1;
        else hi = mid;
    }
    out[0] = c;
    if (lo) {
        const sdc_uc_lower_run *r = &sdc_uc_lower[lo - 1];
        uint32_t off = c - r->start;
        if (off % r->stride == 0 && off / r->stride < r->count) out[0] = (uint32_t)((int32_t)c + r->delta);
    }
    return 1;
}

static uint8_t ccc_of(uint32_t c) {
    if (c < 0x300) return 0;
    size_t lo = 0, hi = sdc_uc_ccc_table_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < sdc_uc_ccc_table[mid].lo) hi = mid;
        else if (c > sdc_uc_ccc_table[mid].hi) lo = mid + 1;
        else return sdc_uc_ccc_table[mid].ccc;
    }
    return 0;
}

static const sdc_uc_decomp *decomp_of(uint32_t c) {
    size_t lo = 0, hi = sdc_uc_decomp_table_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (sdc_uc_decomp_table[mid].cp < c) lo = mid + 1;
        else hi = mid;
    }
    return lo < sdc_uc_decomp_table_count && sdc_uc_decomp_table[lo].cp == c ? &sdc_uc_decomp_table[lo] : NULL;
}

/* Hangul syllables (de)compose algorithmically (Unicode 3.12). */
enum { SBASE = 0xAC00, LBASE = 0x1100, VBASE = 0x1161, TBASE = 0x11A7, LCOUNT = 19, VCOUNT = 21,
       TCOUNT = 28, NCOUNT = VCOUNT * TCOUNT, SCOUNT = LCOUNT * NCOUNT };

/* The primary composite of (a, b), or 0. */
static uint32_t compose_pair(uint32_t a, uint32_t b) {
    if (a - LBASE < LCOUNT && b - VBASE < VCOUNT) return SBASE + ((a - LBASE) * VCOUNT + (b - VBASE)) * TCOUNT;
    if (a - SBASE < SCOUNT && (a - SBASE) % TCOUNT == 0 && b - TBASE - 1 < TCOUNT - 1) return a + (b - TBASE);
    size_t lo = 0, hi = sdc_uc_comp_table_count;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const sdc_uc_comp *e = &sdc_uc_comp_table[mid];
        if (e->a < a || (e->a == a && e->b < b)) lo = mid + 1;
        else hi = mid;
    }
    if (lo < sdc_uc_comp_table_count && sdc_uc_comp_table[lo].a == a && sdc_uc_comp_table[lo].b == b)
        return sdc_uc_comp_table[lo].cp;
    return 0;
}

static bool decompose_into(uint32_t c, cpbuf *out, int depth) {
    if (c - SBASE < SCOUNT) {
        uint32_t s = c - SBASE;
        if (!cp_push(out, LBASE + s / NCOUNT) || !cp_push(out, VBASE + (s % NCOUNT) / TCOUNT)) return false;
        return s % TCOUNT == 0 || cp_push(out, TBASE + s % TCOUNT);
    }
    const sdc_uc_decomp *d = c >= 0xC0 && depth < 8 ? decomp_of(c) : NULL;
    if (!d) return cp_push(out, c);
    if (!decompose_into(d->a, out, depth + 1)) return false;
    return d->b == 0 || decompose_into(d->b, out, depth + 1);
}

/* Canonical ordering of one run of non-starters: a stable sort by combining class (insertion
 * sort for short runs, counting sort for long ones, so that hostile text cannot make it slow). */
static bool sort_marks(uint32_t *s, size_t k) {
    if (k < 32) {
        for (size_t i = 1; i < k; i++) {
            uint32_t c = s[i];
            uint8_t cc = ccc_of(c);
            size_t j = i;
            for (; j > 0 && ccc_of(s[j - 1]) > cc; j--) s[j] = s[j - 1];
            s[j] = c;
        }
        return true;
    }
    uint32_t *tmp = malloc(k * sizeof *tmp);
    size_t start[257] = {0};
    if (!tmp) return false;
    for (size_t i = 0; i < k; i++) start[ccc_of(s[i]) + 1]++;
    for (int c = 1; c < 257; c++) start[c] += start[c - 1];
    for (size_t i = 0; i < k; i++) tmp[start[ccc_of(s[i])]++] = s[i];
    memcpy(s, tmp, k * sizeof *tmp);
    free(tmp);
    return true;
}

/* unicodedata.normalize("NFC", in): canonical decomposition, canonical ordering, then the
 * composition algorithm of UAX #15 (the generator checks these steps against Python). */
static bool nfc(const cpbuf *in, cpbuf *out) {
    out->n = 0;
    for (size_t i = 0; i < in->n; i++)
        if (!decompose_into(in->v[i], out, 0)) return false;
    uint32_t *s = out->v;
    size_t n = out->n;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && ccc_of(s[j])) j++;
        if (j - i > 1 && !sort_marks(s + i, j - i)) return false;
        i = j + 1;
    }
    if (n == 0) return true;
    size_t starter = 0, w = 1;
    int last = ccc_of(s[0]) ? 256 : 0; /* a leading mark never composes */
    for (size_t i = 1; i < n; i++) {
        int c = ccc_of(s[i]);
        uint32_t comp = compose_pair(s[starter], s[i]);
        if (comp && (last < c || last == 0)) {
            s[starter] = comp;
            continue;
        }
        if (c == 0) starter = w;
        last = c;
        s[w++] = s[i];
    }
    out->n = w;
    return true;
}

/* ============================================================================================ */
/* UTF-8                                                                                       */
/* ============================================================================================ */

/* bytes.decode("utf-8", "replace"): one U+FFFD per maximal ill-formed subpart. */
static bool utf8_decode(const unsigned char *s, size_t n, cpbuf *out) {
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            if (!cp_push(out, c)) return false;
            i++;
            continue;
        }
        int need; /* continuation bytes; the first one's range is narrower after E0, ED, F0, F4 */
        unsigned lo = 0x80, hi = 0xBF;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            need = 1, cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            need = 2, cp = c & 0x0F;
            lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3, cp = c & 0x07;
            lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
        } else {
            if (!cp_push(out, 0xFFFD)) return false;
            i++;
            continue;
        }
        size_t j = i + 1;
        int k = 0;
        for (; k < need && j < n; k++, j++) {
            unsigned b = s[j];
            if (b < (k ? 0x80u : lo) || b > (k ? 0xBFu : hi)) break;
            cp = cp << 6 | (b & 0x3F);
        }
        if (!cp_push(out, k == need ? cp : 0xFFFD)) return false;
        i = j;
    }
    return true;
}

/* Appends the UTF-8 of valid scalar values (the pipeline never makes surrogates). */
static bool utf8_encode(const uint32_t *s, size_t n, unsigned char **buf, size_t *len, size_t *cap) {
    size_t need = *len + 4 * n + 1;
    if (need > *cap) {
        unsigned char *b = realloc(*buf, need);
        if (!b) return false;
        *buf = b;
        *cap = need;
    }
    unsigned char *p = *buf + *len;
    for (size_t i = 0; i < n; i++) {
        uint32_t c = s[i];
        if (c < 0x80) {
            *p++ = (unsigned char)c;
        } else if (c < 0x800) {
            *p++ = 0xC0 | c >> 6;
        } else if (c < 0x10000) {
            *p++ = 0xE0 | c >> 12;
            *p++ = 0x80 | (c >> 6 & 0x3F);
        } else {
            *p++ = 0xF0 | c >> 18;
            *p++ = 0x80 | (c >> 12 & 0x3F);
            *p++ = 0x80 | (c >> 6 & 0x3F);
        }
        if (c >= 0x80) *p++ = 0x80 | (c & 0x3F);
    }
    *len = (size_t)(p - *buf);
    return true;
}

/* ============================================================================================ */
/* ftfy.fix_text (6.1.1 defaults, without fix_encoding)                                       */
/* ============================================================================================ */

static bool push_utf8_str(cpbuf *out, const char *s) {
    cpbuf tmp = {0};
    bool ok = utf8_decode((const unsigned char *)s, strlen(s), &tmp) && cp_append(out, tmp.v, tmp.n);
    free(tmp.v);
    return ok;
}

static const sdc_uc_entity *find_entity(const char *name, size_t len) {
    size_t lo = 0, hi = sdc_uc_entities_count;
    while (lo < hi) { /* bytewise order, a prefix first (as Python sorts bytes) */
        size_t mid = (lo + hi) / 2;
        const char *e = sdc_uc_entities[mid].name;
        size_t elen = strlen(e);
        int c = memcmp(e, name, elen < len ? elen : len);
        if (c == 0) c = elen < len ? -1 : elen > len ? 1 : 0;
        if (c == 0) return &sdc_uc_entities[mid];
        if (c < 0) lo = mid + 1;
        else hi = mid;
    }
    return NULL;
}

/* html.unescape of "&#...;" as ftfy uses it: the code point to emit, -1 for nothing (an invalid
 * code point), or -2 to keep the reference as written (not fully numeric, or it yields ';'). */
static long numeric_charref(const char *body, size_t len) {
    bool hex = body[0] == 'x' || body[0] == 'X';
    size_t i = hex ? 1 : 0;
    if (i == len) return -2;
    uint32_t v = 0;
    for (; i < len; i++) {
        int ch = body[i], d;
        if (ch >= '0' && ch <= '9') d = ch - '0';
        else if (hex && (ch | 0x20) >= 'a' && (ch | 0x20) <= 'f') d = (ch | 0x20) - 'a' + 10;
        else return -2;
        if (v <= 0x10FFFF) v = v * (hex ? 16 : 10) + (uint32_t)d; /* saturates above the range */
    }
    long r = -3;
    for (size_t k = 0; k < sdc_uc_html_charrefs_count; k++)
        if (sdc_uc_html_charrefs[k].num == v) r = sdc_uc_html_charrefs[k].to;
    if (r == -3) {
        if ((v >= 0xD800 && v <= 0xDFFF) || v > 0x10FFFF) r = 0xFFFD;
        else {
            r = v;
            for (size_t k = 0; k < sdc_uc_html_bad_cps_count; k++)
                if (sdc_uc_html_bad_cps[k] == v) r = -1;
        }
    }
    return r == ';' ? -2 : r;
}

/* fixes.unescape_html: the regex &#?[0-9A-Za-z]{1,24}; with ftfy's entity table. */
static bool fix_html(const cpbuf *in, cpbuf *out) {
    const uint32_t *s = in->v;
    size_t n = in->n;
    for (size_t i = 0; i < n;) {
        if (s[i] != '&') {
            if (!cp_push(out, s[i++])) return false;
            continue;
        }
        size_t j = i + 1;
        bool num = j < n && s[j] == '#';
        j += num;
        size_t k = j;
        while (k < n && k - j <= 24 && is_ascii_alnum(s[k])) k++;
        if (k == j || k - j > 24 || k >= n || s[k] != ';') {
            if (!cp_push(out, s[i++])) return false;
            continue;
        }
        char body[25];
        size_t len = k - j;
        for (size_t q = 0; q < len; q++) body[q] = (char)s[j + q];
        body[len] = '\0';
        bool ok = true, kept = false;
        if (!num) {
            const sdc_uc_entity *e = find_entity(body, len);
            if (e) ok = push_utf8_str(out, e->utf8);
            else kept = true;
        } else {
            long r = numeric_charref(body, len);
            if (r >= 0) ok = cp_push(out, (uint32_t)r);
            else kept = r == -2;
        }
        if (kept) ok = cp_append(out, s + i, k + 1 - i);
        if (!ok) return false;
        i = k + 1;
    }
    return true;
}

/* fix_latin_ligatures: ftfy's chardata.LIGATURES. */
static const struct { uint32_t cp, to[3]; } ligatures[] = {
    {0x0132, {'I', 'J'}}, {0x0133, {'i', 'j'}}, {0x0149, {0x02BC, 'n'}}, {0x01F1, {'D', 'Z'}},
    {0x01F2, {'D', 'z'}}, {0x01F3, {'d', 'z'}}, {0x01C4, {'D', 0x017D}}, {0x01C5, {'D', 0x017E}},
    {0x01C6, {'d', 0x017E}}, {0x01C7, {'L', 'J'}}, {0x01C8, {'L', 'j'}}, {0x01C9, {'l', 'j'}},
    {0x01CA, {'N', 'J'}}, {0x01CB, {'N', 'j'}}, {0x01CC, {'n', 'j'}}, {0xFB00, {'f', 'f'}},
    {0xFB01, {'f', 'i'}}, {0xFB02, {'f', 'l'}}, {0xFB03, {'f', 'f', 'i'}}, {0xFB04, {'f', 'f', 'l'}},
    {0xFB05, {0x017F, 't'}}, {0xFB06, {'s', 't'}},
};

/* The per-character fixers, in ftfy's order: fix_c1_controls, fix_latin_ligatures,
 * fix_character_width, uncurl_quotes. */
static bool fix_chars(const cpbuf *in, cpbuf *out) {
    for (size_t i = 0; i < in->n; i++) {
        uint32_t c = in->v[i], buf[3] = {c}, tmp[4];
        int n = 1;
        if (c >= 0x80 && c <= 0x9F) buf[0] = sdc_uc_c1_cp1252[c - 0x80];
        if (buf[0] >= 0x132) { /* ligatures */
            for (size_t k = 0; k < sizeof ligatures / sizeof ligatures[0]; k++) {
                if (ligatures[k].cp != buf[0]) continue;
                for (n = 0; n < 3 && ligatures[k].to[n]; n++) buf[n] = ligatures[k].to[n];
                break;
            }
        }
        int m = 0; /* width, then quotes, over each character so far */
        for (int q = 0; q < n; q++) {
            uint32_t d = buf[q];
            if (d == 0x3000 || (d >= 0xFF01 && d <= 0xFFEF)) {
                size_t lo = 0, hi = sdc_uc_width_table_count;
                while (lo < hi) {
                    size_t mid = (lo + hi) / 2;
                    if (sdc_uc_width_table[mid].cp < d) lo = mid + 1;
                    else hi = mid;
                }
                if (lo < sdc_uc_width_table_count && sdc_uc_width_table[lo].cp == d) {
                    tmp[m++] = sdc_uc_width_table[lo].to[0];
                    if (sdc_uc_width_table[lo].to[1]) tmp[m++] = sdc_uc_width_table[lo].to[1];
                    continue;
                }
            }
            tmp[m++] = d; /* (a ligature yields no width forms, so m <= 3) */
        }
        for (int q = 0; q < m; q++) {
            uint32_t d = tmp[q];
            if (d == 0x02BC || (d >= 0x2018 && d <= 0x201B)) d = '\'';
            else if (d >= 0x201C && d <= 0x201F) d = '"';
            if (!cp_push(out, d)) return false;
        }
    }
    return true;
}

/* fix_line_breaks, remove_terminal_escapes (\033\[(\d|;)*[a-zA-Z]), remove_control_chars. */
static bool fix_breaks_controls(const cpbuf *in, cpbuf *out) {
    const uint32_t *s = in->v;
    size_t n = in->n;
    cpbuf mid = {0};
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++) {
        uint32_t c = s[i];
        if (c == '\r' && i + 1 < n && s[i + 1] == '\n') i++, c = '\n';
        if (c == '\r' || c == 0x2028 || c == 0x2029 || c == 0x85) c = '\n';
        ok = cp_push(&mid, c);
    }
    for (size_t i = 0; i < mid.n && ok; i++) {
        uint32_t c = mid.v[i];
        if (c == 0x1B && i + 1 < mid.n && mid.v[i + 1] == '[') {
            size_t j = i + 2;
            while (j < mid.n && (mid.v[j] == ';' || is_decimal(mid.v[j]))) j++;
            if (j < mid.n && mid.v[j] < 0x80 && (mid.v[j] | 0x20) - 'a' < 26) {
                i = j;
                continue;
            }
        }
        if (c <= 0x08 || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F || (c >= 0x206A && c <= 0x206F) ||
            c == 0xFEFF || (c >= 0xFFF9 && c <= 0xFFFC))
            continue;
        ok = cp_push(out, c);
    }
    free(mid.v);
    return ok;
}

/* fix_and_explain on one segment: the fixers in order, repeated until the text stops changing. */
static bool fix_segment(const uint32_t *s, size_t n, bool unescape, cpbuf *out) {
    cpbuf cur = {0}, a = {0}, b = {0};
    bool ok = cp_append(&cur, s, n);
    for (int pass = 0; ok && pass < MAX_FIX_PASSES; pass++) {
        a.n = b.n = 0;
        const cpbuf *src = &cur;
        if (unescape) {
            ok = fix_html(src, &a);
            src = &a;
        }
        ok = ok && fix_chars(src, &b) && (a.n = 0, fix_breaks_controls(&b, &a)) && nfc(&a, &b);
        if (!ok) break;
        bool same = b.n == cur.n && (b.n == 0 || !memcmp(b.v, cur.v, b.n * sizeof *b.v));
        cpbuf t = cur;
        cur = b;
        b = t;
        if (same) break;
    }
    ok = ok && cp_append(out, cur.v, cur.n);
    free(cur.v);
    free(a.v);
    free(b.v);
    return ok;
}

/* ftfy.fix_text: segments end after each '\n'; HTML unescaping stops for good at the first
 * segment that contains '<' (unescape_html="auto"). */
static bool fix_text(const uint32_t *s, size_t n, cpbuf *out) {
    bool unescape = true;
    for (size_t pos = 0; pos < n;) {
        size_t end = pos;
        while (end < n && s[end] != '\n') end++;
        end = end < n ? end + 1 : n;
        if (end - pos > FTFY_MAX_SEGMENT) end = pos + FTFY_MAX_SEGMENT;
        for (size_t i = pos; i < end && unescape; i++)
            if (s[i] == '<') unescape = false;
        if (!fix_segment(s + pos, end - pos, unescape, out)) return false;
        pos = end;
    }
    return true;
}

/* ============================================================================================ */
/* whitespace_clean and str.lower()                                                            */
/* ============================================================================================ */

static bool whitespace_clean(const cpbuf *in, cpbuf *out) {
    for (size_t i = 0; i < in->n;) {
        if (is_rx_space(in->v[i])) {
            while (i < in->n && is_rx_space(in->v[i])) i++;
            if (!cp_push(out, ' ')) return false;
        } else if (!cp_push(out, in->v[i++])) {
            return false;
        }
    }
    size_t lo = 0, hi = out->n;
    while (lo < hi && is_py_space(out->v[lo])) lo++;
    while (hi > lo && is_py_space(out->v[hi - 1])) hi--;
    if (lo) memmove(out->v, out->v + lo, (hi - lo) * sizeof *out->v);
    out->n = hi - lo;
    return true;
}

static bool is_case_ignorable(uint32_t c) {
    return in_ranges(sdc_uc_case_ignorable, sdc_uc_case_ignorable_count, c);
}
static bool is_cased(uint32_t c) { return in_ranges(sdc_uc_cased, sdc_uc_cased_count, c); }

/* CPython's handle_capital_sigma: final form after a cased letter unless one follows. */
static uint32_t lower_sigma(const uint32_t *s, size_t n, size_t i) {
    size_t j = i;
    while (j > 0 && is_case_ignorable(s[j - 1])) j--;
    bool final = j > 0 && is_cased(s[j - 1]);
    if (final) {
        j = i + 1;
        while (j < n && is_case_ignorable(s[j])) j++;
        final = j == n || !is_cased(s[j]);
    }
    return final ? 0x3C2 : 0x3C3;
}

static bool lower(const cpbuf *in, cpbuf *out) {
    for (size_t i = 0; i < in->n; i++) {
        uint32_t buf[3];
        int k = 1;
        if (in->v[i] == 0x3A3) buf[0] = lower_sigma(in->v, in->n, i);
        else k = lower_char(in->v[i], buf);
        if (!cp_append(out, buf, (size_t)k)) return false;
    }
    return true;
}

/* ============================================================================================ */
/* Vocabulary                                                                                  */
/* ============================================================================================ */

struct sdc_tokenizer {
    uint16_t byte_id[256];  /* id of the one-byte token; + 256 for the same with </w> */
    uint32_t *tok_off;      /* [VOCAB_SIZE + 1] offsets into tok_bytes */
    unsigned char *tok_bytes; /* each token's bytes, "</w>" written out */
    uint32_t *pair_key;     /* open addressing: left << 16 | right, UINT32_MAX = empty */
    int32_t *pair_rank, *pair_merged;
    size_t pair_mask;
};

static uint32_t mix32(uint32_t x) {
    x ^= x >> 16;
    x *= 0x7feb352dU;
    x ^= x >> 15;
    x *= 0x846ca68bU;
    return x ^ (x >> 16);
}

/* The merge of (left, right): its rank, or -1; *merged receives the id of the joined token. */
static int32_t pair_lookup(const sdc_tokenizer *t, int32_t left, int32_t right, int32_t *merged) {
    uint32_t key = (uint32_t)left << 16 | (uint32_t)right;
    for (size_t h = mix32(key) & t->pair_mask;; h = (h + 1) & t->pair_mask) {
        if (t->pair_key[h] == UINT32_MAX) return -1;
        if (t->pair_key[h] == key) {
            *merged = t->pair_merged[h];
            return t->pair_rank[h];
        }
    }
}

/* The string -> id map used while loading: ids in a table keyed by the token bytes (equal bytes
 * mean equal strings, as bytes_to_unicode is one-to-one). */
typedef struct strmap {
    int32_t *slot;
    size_t mask;
    const sdc_tokenizer *t;
} strmap;

static uint32_t hash_bytes(const unsigned char *p, size_t n) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static int32_t *strmap_find(strmap *m, const unsigned char *p, size_t n) {
    for (size_t h = hash_bytes(p, n) & m->mask;; h = (h + 1) & m->mask) {
        int32_t id = m->slot[h];
        if (id < 0) return &m->slot[h];
        uint32_t off = m->t->tok_off[id], len = m->t->tok_off[id + 1] - off;
        if (len == n && !memcmp(m->t->tok_bytes + off, p, n)) return &m->slot[h];
    }
}

/* Inflates the embedded vocabulary far enough to hold the header and every merge line. */
static sdc_status inflate_vocab(char **out, size_t *out_len, sdc_error *err) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return sdc_fail(err, SDC_E_NOMEM, "tokenizer: inflateInit2 failed");
    size_t cap = 1 << 20, len = 0, lines = 0;
    char *buf = malloc(cap);
    int rc = Z_OK;
    bool nomem = buf == NULL;
    z.next_in = (Bytef *)sdc_vocab_gz;
    z.avail_in = (uInt)sdc_vocab_gz_len;
    while (buf && lines <= N_MERGES && rc != Z_STREAM_END) {
        if (len == cap) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                nomem = true;
                break;
            }
            buf = b;
            cap *= 2;
        }
        z.next_out = (Bytef *)buf + len;
        z.avail_out = (uInt)(cap - len);
        rc = inflate(&z, Z_NO_FLUSH);
        if (rc != Z_OK && rc != Z_STREAM_END) break;
        size_t got = cap - len - z.avail_out;
        for (size_t i = len; i < len + got; i++) lines += buf[i] == '\n';
        len += got;
    }
    inflateEnd(&z);
    if (nomem || (rc != Z_OK && rc != Z_STREAM_END)) {
        free(buf);
        return nomem ? sdc_fail(err, SDC_E_NOMEM, "tokenizer: out of memory inflating the vocabulary")
                     : sdc_fail(err, SDC_E_FORMAT, "tokenizer: embedded vocabulary: inflate failed (%d)", rc);
    }
    if (lines <= N_MERGES) {
        free(buf);
        return sdc_fail(err, SDC_E_FORMAT, "tokenizer: embedded vocabulary has %zu lines, expected %d merges",
                        lines, N_MERGES);
    }
    *out = buf;
    *out_len = len;
    return SDC_OK;
}

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the other 68 bytes to
 * U+0100.. in byte order. Token ids 0..255 follow the order of that dict (printable bytes first). */
static void byte_tables(uint16_t byte_id[256], int16_t cp_to_byte[324]) {
    int order = 0, extra = 0;
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (printable) byte_id[b] = (uint16_t)order++, cp_to_byte[b] = (int16_t)b;
    }
    for (int b = 0; b < 256; b++) {
        bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        if (!printable) byte_id[b] = (uint16_t)order++, cp_to_byte[256 + extra++] = (int16_t)b;
    }
}

/* One side of a merge line (bytes_to_unicode text, optionally ending in "</w>") -> raw bytes. */
static bool unmap_token(const char *s, size_t n, const int16_t cp_to_byte[324], unsigned char *dst, size_t *dlen) {
    cpbuf cps = {0};
    bool ok = utf8_decode((const unsigned char *)s, n, &cps);
    *dlen = 0;
    for (size_t i = 0; ok && i < cps.n; i++) {
        ok = cps.v[i] < 324 && cp_to_byte[cps.v[i]] >= 0;
        if (ok) dst[(*dlen)++] = (unsigned char)cp_to_byte[cps.v[i]];
    }
    free(cps.v);
    return ok && *dlen > 0;
}

static sdc_status build(sdc_tokenizer *t, const char *text, size_t len, sdc_error *err) {
    int16_t cp_to_byte[324];
    byte_tables(t->byte_id, cp_to_byte);
    size_t cap = len + 4096; /* token bytes never outnumber the merge text's */
    t->tok_off = malloc((VOCAB_SIZE + 1) * sizeof *t->tok_off);
    t->tok_bytes = malloc(cap);
    strmap m = {.slot = malloc((1u << 17) * sizeof(int32_t)), .mask = (1u << 17) - 1, .t = t};
    t->pair_mask = (1u << 17) - 1;
    t->pair_key = malloc((t->pair_mask + 1) * sizeof *t->pair_key);
    t->pair_rank = malloc((t->pair_mask + 1) * sizeof *t->pair_rank);
    t->pair_merged = malloc((t->pair_mask + 1) * sizeof *t->pair_merged);
    int32_t(*parts)[2] = malloc(N_MERGES * sizeof *parts);
    sdc_status st = SDC_OK;
    if (!t->tok_off || !t->tok_bytes || !m.slot || !t->pair_key || !t->pair_rank || !t->pair_merged || !parts) {
        st = sdc_fail(err, SDC_E_NOMEM, "tokenizer: out of memory");
        goto done;
    }
    memset(m.slot, 0xFF, (m.mask + 1) * sizeof(int32_t));
    memset(t->pair_key, 0xFF, (t->pair_mask + 1) * sizeof *t->pair_key);

    /* ids 0..511: the byte tokens, then with </w> */
    size_t used = 0;
    for (int id = 0; id < FIRST_MERGE_ID; id++) {
        int b = 0;
        while (t->byte_id[b] != id % 256) b++;
        t->tok_off[id] = (uint32_t)used;
        t->tok_bytes[used++] = (unsigned char)b;
        if (id >= 256) memcpy(t->tok_bytes + used, "</w>", 4), used += 4;
    }
    /* ids 512..49405: one per merge line, the two sides joined */
    const char *p = memchr(text, '\n', len) + 1, *end = text + len;
    unsigned char left[256], right[256];
    for (int r = 0; r < N_MERGES; r++) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *sp = eol ? memchr(p, ' ', (size_t)(eol - p)) : NULL;
        size_t ll = 0, rl = 0;
        if (!sp || (size_t)(sp - p) > 255 || (size_t)(eol - sp - 1) > 255 ||
            memchr(sp + 1, ' ', (size_t)(eol - sp - 1)) || !unmap_token(p, (size_t)(sp - p), cp_to_byte, left, &ll) ||
            !unmap_token(sp + 1, (size_t)(eol - sp - 1), cp_to_byte, right, &rl) || used + ll + rl > cap) {
            st = sdc_fail(err, SDC_E_FORMAT, "tokenizer: embedded vocabulary: bad merge on line %d", r + 2);
            goto done;
        }
        int id = FIRST_MERGE_ID + r;
        t->tok_off[id] = (uint32_t)used;
        memcpy(t->tok_bytes + used, left, ll);
        memcpy(t->tok_bytes + used + ll, right, rl);
        used += ll + rl;
        /* the sides' ids can only be looked up once every token exists: keep their lengths */
        parts[r][0] = (int32_t)ll;
        parts[r][1] = (int32_t)rl;
        p = eol + 1;
    }
    static const char *const specials[2] = {"<|startoftext|>", "<|endoftext|>"};
    for (int k = 0; k < 2; k++) {
        t->tok_off[SDC_CLIP_BOS + k] = (uint32_t)used;
        memcpy(t->tok_bytes + used, specials[k], strlen(specials[k]));
        used += strlen(specials[k]);
    }
    t->tok_off[VOCAB_SIZE] = (uint32_t)used;
    unsigned char *shrunk = realloc(t->tok_bytes, used);
    if (shrunk) t->tok_bytes = shrunk;
    for (int32_t id = 0; id < VOCAB_SIZE; id++) /* a repeated string keeps its last id, as a dict */
        *strmap_find(&m, t->tok_bytes + t->tok_off[id], t->tok_off[id + 1] - t->tok_off[id]) = id;

    for (int r = 0; r < N_MERGES; r++) {
        const unsigned char *tok = t->tok_bytes + t->tok_off[FIRST_MERGE_ID + r];
        int32_t a = *strmap_find(&m, tok, (size_t)parts[r][0]);
        int32_t b = *strmap_find(&m, tok + parts[r][0], (size_t)parts[r][1]);
        int32_t joined = *strmap_find(&m, tok, (size_t)(parts[r][0] + parts[r][1]));
        if (a < 0 || b < 0) continue; /* a side that is no token can never be adjacent in a word */
        uint32_t key = (uint32_t)a << 16 | (uint32_t)b;
        size_t h = mix32(key) & t->pair_mask;
        while (t->pair_key[h] != UINT32_MAX && t->pair_key[h] != key) h = (h + 1) & t->pair_mask;
        t->pair_key[h] = key; /* a repeated pair keeps its last rank, as dict(zip(merges, range)) */
        t->pair_rank[h] = r;
        t->pair_merged[h] = joined;
    }
done:
    free(m.slot);
    free(parts);
    return st;
}

sdc_status sdc_tokenizer_new(sdc_tokenizer **out, char *errbuf, size_t errlen) {
    sdc_error e = {0};
    if (!out) {
        if (errbuf && errlen) snprintf(errbuf, errlen, "sdc_tokenizer_new: out is NULL");
        return SDC_E_INVALID_ARG;
    }
    *out = NULL;
    sdc_tokenizer *t = calloc(1, sizeof *t);
    char *text = NULL;
    size_t len = 0;
    sdc_status st = t ? inflate_vocab(&text, &len, &e) : sdc_fail(&e, SDC_E_NOMEM, "tokenizer: out of memory");
    if (st == SDC_OK) st = build(t, text, len, &e);
    free(text);
    if (st != SDC_OK) {
        sdc_tokenizer_free(t);
        if (errbuf && errlen) snprintf(errbuf, errlen, "%s", e.msg);
        return st;
    }
    *out = t;
    return SDC_OK;
}

void sdc_tokenizer_free(sdc_tokenizer *t) {
    if (!t) return;
    free(t->tok_off);
    free(t->tok_bytes);
    free(t->pair_key);
    free(t->pair_rank);
    free(t->pair_merged);
    free(t);
}

/* ============================================================================================ */
/* BPE                                                                                         */
/* ============================================================================================ */

typedef struct merge_cand {
    int32_t rank, pos, left, right, merged;
} merge_cand;

static bool cand_less(const merge_cand *a, const merge_cand *b) {
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

typedef struct heap {
    merge_cand *v;
    size_t n, cap;
} heap;

static bool heap_push(heap *h, merge_cand c) {
    if (h->n == h->cap) {
        size_t cap = h->cap ? 2 * h->cap : 64;
        merge_cand *v = realloc(h->v, sdc_mul_size(cap, sizeof *v));
        if (!v) return false;
        h->v = v;
        h->cap = cap;
    }
    size_t i = h->n++;
    for (; i > 0 && cand_less(&c, &h->v[(i - 1) / 2]); i = (i - 1) / 2) h->v[i] = h->v[(i - 1) / 2];
    h->v[i] = c;
    return true;
}

static merge_cand heap_pop(heap *h) {
    merge_cand top = h->v[0], last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n) break;
        if (c + 1 < h->n && cand_less(&h->v[c + 1], &h->v[c])) c++;
        if (!cand_less(&h->v[c], &last)) break;
        h->v[i] = h->v[c];
        i = c;
    }
    if (h->n) h->v[i] = last;
    return top;
}

typedef struct bpe_word {
    int32_t *sym, *next, *prev; /* sym < 0: merged away */
} bpe_word;

static bool push_pair(const sdc_tokenizer *t, heap *h, const bpe_word *w, int32_t pos) {
    if (pos < 0 || w->next[pos] < 0) return true;
    int32_t merged, rank = pair_lookup(t, w->sym[pos], w->sym[w->next[pos]], &merged);
    if (rank < 0) return true;
    return heap_push(h, (merge_cand){rank, pos, w->sym[pos], w->sym[w->next[pos]], merged});
}

static bool cand_valid(const bpe_word *w, const merge_cand *c) {
    return w->sym[c->pos] == c->left && w->next[c->pos] >= 0 && w->sym[w->next[c->pos]] == c->right;
}

/* CLIPTokenizer.bpe on the bytes of one piece, appending token ids. The reference repeatedly takes
 * the lowest-ranked adjacent pair and merges all its occurrences left to right; the heap finds
 * that pair, and all its candidates are taken out before any is merged, so that pairs formed in
 * the meantime wait for the next round exactly as they do there. */
static bool bpe(const sdc_tokenizer *t, const unsigned char *b, size_t n, idbuf *out) {
    if (n == 1) return id_push(out, t->byte_id[b[0]] + 256);
    if (n > INT32_MAX / 2) return false;
    bpe_word w = {malloc(n * sizeof(int32_t)), malloc(n * sizeof(int32_t)), malloc(n * sizeof(int32_t))};
    heap h = {0}, batch = {0};
    bool ok = w.sym && w.next && w.prev;
    for (size_t i = 0; ok && i < n; i++) {
        w.sym[i] = t->byte_id[b[i]] + (i + 1 == n ? 256 : 0);
        w.next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
        w.prev[i] = (int32_t)i - 1;
    }
    for (size_t i = 0; ok && i + 1 < n; i++) ok = push_pair(t, &h, &w, (int32_t)i);
    while (ok && h.n) {
        merge_cand c = heap_pop(&h);
        if (!cand_valid(&w, &c)) continue;
        batch.n = 0;
        ok = heap_push(&batch, c);
        while (ok && h.n && h.v[0].rank == c.rank) ok = heap_push(&batch, heap_pop(&h));
        while (ok && batch.n) {
            merge_cand d = heap_pop(&batch); /* leftmost first */
            if (!cand_valid(&w, &d)) continue;
            int32_t q = w.next[d.pos];
            w.sym[d.pos] = d.merged;
            w.sym[q] = -1;
            w.next[d.pos] = w.next[q];
            if (w.next[q] >= 0) w.prev[w.next[q]] = d.pos;
            ok = push_pair(t, &h, &w, w.prev[d.pos]) && push_pair(t, &h, &w, d.pos);
        }
    }
    for (int32_t i = 0; ok && i >= 0; i = w.next[i]) ok = id_push(out, w.sym[i]);
    free(w.sym);
    free(w.next);
    free(w.prev);
    free(h.v);
    free(batch.v);
    return ok;
}

/* ============================================================================================ */
/* Pre-tokenizer and the whole pipeline                                                        */
/* ============================================================================================ */

/* The simple case folding that IGNORECASE applies to the pattern's literals (after lower(), only
 * U+017F LONG S -> 's' still matters; U+0130 and U+212A are listed for completeness). */
static uint32_t fold(uint32_t c) {
    if (c - 'A' < 26) return c + 32;
    if (c == 0x17F) return 's';
    if (c == 0x212A) return 'k';
    if (c == 0x130) return 'i';
    return c;
}

static size_t match_literal(const uint32_t *s, size_t n, const char *lit) {
    size_t k = 0;
    for (; lit[k]; k++)
        if (k >= n || fold(s[k]) != (uint32_t)(unsigned char)lit[k]) return 0;
    return k;
}

static bool is_skipped(uint32_t c) {
    return is_rx_space(c) || in_ranges(sdc_uc_regex_skip, sdc_uc_regex_skip_count, c);
}

/* The next findall match at or after *pos: [*start, *end), or false at the end of the text. */
static bool next_piece(const uint32_t *s, size_t n, size_t *pos, size_t *start, size_t *end) {
    static const char *const literals[] = {"<|startoftext|>", "<|endoftext|>", "'s", "'t", "'re", "'ve", "'m",
                                           "'ll", "'d"};
    size_t i = *pos;
    while (i < n) {
        size_t len = 0;
        for (size_t k = 0; !len && k < sizeof literals / sizeof literals[0]; k++)
            len = match_literal(s + i, n - i, literals[k]);
        if (!len) {
            uint32_t c = s[i];
            if (is_letter(c)) {
                while (i + len < n && is_letter(s[i + len])) len++;
            } else if (is_number(c)) {
                len = 1;
            } else if (!is_skipped(c)) {
                while (i + len < n && !is_letter(s[i + len]) && !is_number(s[i + len]) && !is_skipped(s[i + len]))
                    len++;
            }
        }
        if (len) {
            *start = i;
            *end = *pos = i + len;
            return true;
        }
        i++;
    }
    *pos = n;
    return false;
}

/* CLIPTokenizer._tokenize on one chunk between special tokens. */
static sdc_status tokenize_chunk(const sdc_tokenizer *t, const uint32_t *s, size_t n, idbuf *ids, sdc_error *err) {
    cpbuf fixed = {0}, clean = {0}, low = {0};
    unsigned char *bytes = NULL;
    size_t cap = 0;
    bool ok = fix_text(s, n, &fixed) && whitespace_clean(&fixed, &clean) && lower(&clean, &low);
    size_t pos = 0, a, b;
    while (ok && next_piece(low.v, low.n, &pos, &a, &b)) {
        size_t len = 0;
        ok = utf8_encode(low.v + a, b - a, &bytes, &len, &cap);
        if (!ok) break;
        if (len == 15 && !memcmp(bytes, "<|startoftext|>", 15)) ok = id_push(ids, SDC_CLIP_BOS);
        else if (len == 13 && !memcmp(bytes, "<|endoftext|>", 13)) ok = id_push(ids, SDC_CLIP_EOS);
        else ok = bpe(t, bytes, len, ids);
    }
    free(fixed.v);
    free(clean.v);
    free(low.v);
    free(bytes);
    return ok ? SDC_OK : sdc_fail(err, SDC_E_NOMEM, "tokenizer: out of memory");
}

/* PreTrainedTokenizer.tokenize: split at the added tokens, tokenize the rest chunk by chunk. */
static sdc_status tokenize_all(const sdc_tokenizer *t, const char *text, idbuf *ids, sdc_error *err) {
    if (!t || !text) return sdc_fail(err, SDC_E_INVALID_ARG, "tokenizer: %s is NULL", t ? "text" : "tokenizer");
    size_t len = strlen(text);
    if (len > SDC_TOKENIZER_MAX_TEXT)
        return sdc_fail(err, SDC_E_LIMIT, "tokenizer: text of %zu bytes exceeds the limit of %u", len,
                        SDC_TOKENIZER_MAX_TEXT);
    cpbuf cps = {0};
    if (!utf8_decode((const unsigned char *)text, len, &cps)) {
        free(cps.v);
        return sdc_fail(err, SDC_E_NOMEM, "tokenizer: out of memory");
    }
    static const char *const specials[2] = {"<|startoftext|>", "<|endoftext|>"};
    sdc_status st = SDC_OK;
    size_t chunk = 0;
    for (size_t i = 0; st == SDC_OK && i <= cps.n; i++) {
        int which = -1;
        size_t slen = 0;
        for (int k = 0; i < cps.n && cps.v[i] == '<' && which < 0 && k < 2; k++) {
            slen = strlen(specials[k]);
            size_t q = 0;
            while (q < slen && i + q < cps.n && cps.v[i + q] == (uint32_t)specials[k][q]) q++;
            if (q == slen) which = k;
        }
        if (which < 0 && i < cps.n) continue;
        if (i > chunk) st = tokenize_chunk(t, cps.v + chunk, i - chunk, ids, err);
        if (st == SDC_OK && which >= 0) {
            if (!id_push(ids, SDC_CLIP_BOS + which)) st = sdc_fail(err, SDC_E_NOMEM, "tokenizer: out of memory");
            i += slen - 1;
        }
        chunk = i + 1;
    }
    free(cps.v);
    return st;
}

static sdc_status report(sdc_status st, const sdc_error *e, char *errbuf, size_t errlen) {
    if (st != SDC_OK && errbuf && errlen) snprintf(errbuf, errlen, "%s", e->msg);
    return st;
}

sdc_status sdc_tokenize(const sdc_tokenizer *t, const char *text, int32_t ids[SDC_CLIP_CTX], char *errbuf,
                        size_t errlen) {
    sdc_error e = {0};
    idbuf b = {0};
    if (!ids) return report(sdc_fail(&e, SDC_E_INVALID_ARG, "sdc_tokenize: ids is NULL"), &e, errbuf, errlen);
    sdc_status st = tokenize_all(t, text, &b, &e);
    if (st == SDC_OK) {
        size_t n = b.n < SDC_CLIP_CTX - 2 ? b.n : SDC_CLIP_CTX - 2;
        ids[0] = SDC_CLIP_BOS;
        if (n) memcpy(ids + 1, b.v, n * sizeof *ids);
        for (size_t i = n + 1; i < SDC_CLIP_CTX; i++) ids[i] = SDC_CLIP_EOS;
    }
    free(b.v);
    return report(st, &e, errbuf, errlen);
}

sdc_status sdc_tokenize_raw(const sdc_tokenizer *t, const char *text, int32_t *ids, size_t cap, size_t *n,
                            char *errbuf, size_t errlen) {
    sdc_error e = {0};
    idbuf b = {0};
    if (!n || (cap && !ids))
        return report(sdc_fail(&e, SDC_E_INVALID_ARG, "sdc_tokenize_raw: %s is NULL", n ? "ids" : "n"), &e, errbuf,
                      errlen);
    sdc_status st = tokenize_all(t, text, &b, &e);
    if (st == SDC_OK) {
        if (b.n && cap) memcpy(ids, b.v, (b.n < cap ? b.n : cap) * sizeof *ids);
        *n = b.n;
    }
    free(b.v);
    return report(st, &e, errbuf, errlen);
}

/* CLIPTokenizer.convert_tokens_to_string without the special tokens: the tokens' bytes decoded
 * as UTF-8 with replacement, "</w>" -> " ", then str.strip(). NULL for an id outside the vocabulary. */
char *sdc_detokenize(const sdc_tokenizer *t, const int32_t *ids, size_t n) {
    if (!t || (n && !ids)) return NULL;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= VOCAB_SIZE) return NULL;
        if (ids[i] != SDC_CLIP_BOS && ids[i] != SDC_CLIP_EOS) total += t->tok_off[ids[i] + 1] - t->tok_off[ids[i]];
    }
    unsigned char *raw = malloc(total + 1), *text = NULL;
    cpbuf cps = {0};
    size_t len = 0, cap = 0;
    bool ok = raw != NULL;
    for (size_t i = 0; ok && i < n; i++) {
        if (ids[i] == SDC_CLIP_BOS || ids[i] == SDC_CLIP_EOS) continue;
        uint32_t off = t->tok_off[ids[i]], l = t->tok_off[ids[i] + 1] - off;
        memcpy(raw + len, t->tok_bytes + off, l);
        len += l;
    }
    ok = ok && utf8_decode(raw, len, &cps);
    size_t w = 0;
    for (size_t i = 0; ok && i < cps.n; i++) {
        if (i + 3 < cps.n && cps.v[i] == '<' && cps.v[i + 1] == '/' && cps.v[i + 2] == 'w' && cps.v[i + 3] == '>') {
            cps.v[w++] = ' ';
            i += 3;
        } else {
            cps.v[w++] = cps.v[i];
        }
    }
    size_t lo = 0;
    while (ok && lo < w && is_py_space(cps.v[lo])) lo++;
    while (ok && w > lo && is_py_space(cps.v[w - 1])) w--;
    len = 0;
    ok = ok && utf8_encode(w ? cps.v + lo : NULL, w - lo, &text, &len, &cap);
    if (ok && !text) ok = (text = malloc(1)) != NULL;
    if (ok) text[len] = '\0';
    free(raw);
    free(cps.v);
    if (!ok) {
        free(text);
        return NULL;
    }
    return (char *)text;
}
