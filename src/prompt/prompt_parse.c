/* src/prompt/prompt_parse.c: webui's prompt_parser.py in C (contract in prompt_parse.h).
 *
 * Reference: AUTOMATIC1111/stable-diffusion-webui 1.10.1, modules/prompt_parser.py, with lark 1.1.2
 * for the schedule grammar. Each section below quotes what it reproduces.
 *
 * The schedule grammar is a lark Earley grammar; here it is a recursive-descent parser with the
 * same language and the same choice where the grammar is ambiguous (see "Schedules").
 */
#include "prompt/prompt_parse.h"

#include "model/unicode_tables.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ============================================================================================ */
/* UTF-8 and Python's Unicode character classes                                                */
/* ============================================================================================ */

enum { CH_OTHER = 0, CH_SPACE = 1, CH_WORD = 2 };

static int in_ranges(const sdc_uc_range *r, size_t n, uint32_t cp) {
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (cp < r[mid].lo)
            hi = mid;
        else if (cp > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

/* str.isspace(), which is \s of Python's re for str patterns. */
static int py_isspace(uint32_t cp) {
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
           (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
           cp == 0x3000;
}

/* \w of Python's re: str.isalnum() or '_' (letters L*, numbers N*). */
static int py_isword(uint32_t cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_';
    return in_ranges(sdc_uc_letter, sdc_uc_letter_count, cp) || in_ranges(sdc_uc_number, sdc_uc_number_count, cp);
}

/* \d of Python's re (str.isdecimal()); *val = the digit's value, as float() reads it. Unicode
 * decimal digits come in runs of ten starting at a zero. */
static int py_isdecimal(uint32_t cp, int *val) {
    for (size_t i = 0; i < sdc_uc_decimal_count; i++)
        if (cp >= sdc_uc_decimal[i].lo && cp <= sdc_uc_decimal[i].hi) {
            *val = (int)((cp - sdc_uc_decimal[i].lo) % 10);
            return 1;
        }
    return 0;
}

/* Decodes the code point at s[i] (i < n). An ill-formed sequence gives U+FFFD for its maximal
 * subpart, as Python's decode("utf-8", "replace"). Returns the bytes consumed (>= 1). */
static size_t utf8_next(const unsigned char *s, size_t n, size_t i, uint32_t *cp) {
    unsigned b = s[i];
    if (b < 0x80) {
        *cp = b;
        return 1;
    }
    int need;
    unsigned lo = 0x80, hi = 0xBF;
    uint32_t v;
    if (b >= 0xC2 && b <= 0xDF)
        need = 1, v = b & 0x1F;
    else if (b >= 0xE0 && b <= 0xEF)
        need = 2, v = b & 0x0F, lo = b == 0xE0 ? 0xA0 : 0x80, hi = b == 0xED ? 0x9F : 0xBF;
    else if (b >= 0xF0 && b <= 0xF4)
        need = 3, v = b & 0x07, lo = b == 0xF0 ? 0x90 : 0x80, hi = b == 0xF4 ? 0x8F : 0xBF;
    else {
        *cp = 0xFFFD;
        return 1;
    }
    size_t k = 1;
    for (; k <= (size_t)need; k++) {
        if (i + k >= n || s[i + k] < lo || s[i + k] > hi) {
            *cp = 0xFFFD;
            return k;
        }
        v = (v << 6) | (s[i + k] & 0x3F);
        lo = 0x80, hi = 0xBF;
    }
    *cp = v;
    return k;
}

/* cls[i] = the class of the code point that byte i belongs to; cls[n] = CH_OTHER. */
static uint8_t *classify(const char *s, size_t n) {
    uint8_t *cls = malloc(n + 1);
    if (!cls) return NULL;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t k = utf8_next((const unsigned char *)s, n, i, &cp);
        uint8_t c = py_isspace(cp) ? CH_SPACE : py_isword(cp) ? CH_WORD : CH_OTHER;
        memset(cls + i, c, k);
        i += k;
    }
    cls[n] = CH_OTHER;
    return cls;
}

static sdc_status check_text(const char *text, size_t *n, sdc_error *err) {
    if (!text) return sdc_fail(err, SDC_E_INVALID_ARG, "prompt is NULL");
    *n = strlen(text);
    if (*n > SDC_PROMPT_MAX_BYTES)
        return sdc_fail(err, SDC_E_LIMIT, "prompt is %zu bytes, more than the %u accepted", *n,
                        (unsigned)SDC_PROMPT_MAX_BYTES);
    return SDC_OK;
}

/* float() of a string that matched [+-]?[.\d]+ with Unicode \d: at least one digit and at most
 * one '.', else Python raises ValueError. */
static sdc_status py_float(const char *s, size_t len, double *out, sdc_error *err) {
    char *ascii = malloc(len + 1);
    if (!ascii) return sdc_fail(err, SDC_E_NOMEM, "out of memory reading a prompt weight");
    size_t w = 0;
    int digits = 0, dots = 0;
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        int val;
        size_t k = utf8_next((const unsigned char *)s, len, i, &cp);
        if (cp == '+' || cp == '-')
            ascii[w++] = (char)cp;
        else if (cp == '.')
            ascii[w++] = '.', dots++;
        else if (py_isdecimal(cp, &val))
            ascii[w++] = (char)('0' + val), digits++;
        i += k;
    }
    ascii[w] = 0;
    if (digits == 0 || dots > 1) {
        free(ascii);
        return sdc_fail(err, SDC_E_INVALID_ARG,
                        "prompt weight '%.*s' is not a number (webui: ValueError: could not convert string to float)",
                        (int)(len > 64 ? 64 : len), s);
    }
    *out = strtod(ascii, NULL); /* correctly rounded, +-inf on overflow: as Python's float() */
    free(ascii);
    return SDC_OK;
}

/* ============================================================================================ */
/* parse_prompt_attention                                                                      */
/* ============================================================================================ */
/*
 * re_attention = \\\( | \\\) | \\\[ | \\] | \\\\ | \\ | \( | \[ | :\s*([+-]?[.\d]+)\s*\) | \) | ] |
 *                [^\\()\[\]:]+ | :
 * for each match: '\x' -> text x (a lone '\' -> ""); '(' / '[' push len(res); a weight with a '('
 * open -> multiply_range(pop, float(w)); ')' / ']' with one open -> multiply_range(pop, 1.1 or
 * 1/1.1); anything else is text, split at re_break = \s*\bBREAK\b\s* with ["BREAK", -1] between.
 * Then unclosed '(' (in push order) x1.1, unclosed '[' x1/1.1, [] -> [["", 1.0]], and runs of
 * equal weights merge (the first entry's weight is kept).
 */

typedef struct attn_entry {
    size_t off, len; /* into the text buffer */
    double w;
    int is_int;
} attn_entry;

typedef struct attn_state {
    attn_entry *e;
    size_t n, cap;
    char *tb;
    size_t tn, tcap;
    size_t *round, *square; /* open bracket stacks: positions in e */
    size_t nround, nsquare;
} attn_state;

static int attn_push(attn_state *A, const char *text, size_t len, double w, int is_int) {
    if (A->n == A->cap) {
        size_t c = A->cap ? 2 * A->cap : 16;
        attn_entry *e = realloc(A->e, c * sizeof *e);
        if (!e) return -1;
        A->e = e, A->cap = c;
    }
    if (A->tn + len > A->tcap) {
        size_t c = A->tcap ? 2 * A->tcap : 256;
        while (c < A->tn + len) c *= 2;
        char *t = realloc(A->tb, c);
        if (!t) return -1;
        A->tb = t, A->tcap = c;
    }
    if (len) memcpy(A->tb + A->tn, text, len);
    A->e[A->n++] = (attn_entry){A->tn, len, w, is_int};
    A->tn += len;
    return 0;
}

static void multiply_range(attn_state *A, size_t start, double m) {
    for (size_t p = start; p < A->n; p++) {
        A->e[p].w *= m;
        A->e[p].is_int = 0;
    }
}

/* Appends the text s[a, b) split at re_break (the match is searched in s[a, b) alone). */
static int attn_text(attn_state *A, const char *s, const uint8_t *cls, size_t a, size_t b) {
    size_t part = a, search = a;
    for (size_t k = a; k + 5 <= b; k++) {
        if (k < search || memcmp(s + k, "BREAK", 5) != 0) continue;
        if ((k > a && cls[k - 1] == CH_WORD) || (k + 5 < b && cls[k + 5] == CH_WORD)) continue;
        size_t st = k, en = k + 5;
        while (st > search && cls[st - 1] == CH_SPACE) st--;
        while (en < b && cls[en] == CH_SPACE) en++;
        if (attn_push(A, s + part, st - part, 1.0, 0) || attn_push(A, "BREAK", 5, -1.0, 1)) return -1;
        part = search = en;
        k = en - 1;
    }
    return attn_push(A, s + part, b - part, 1.0, 0);
}

/* Matches :\s*([+-]?[.\d]+)\s*\) at s[p] == ':'. Returns the end, or 0; [*wa, *wb) = group 1. */
static size_t match_weight(const char *s, size_t n, const uint8_t *cls, size_t p, size_t *wa, size_t *wb) {
    size_t q = p + 1;
    while (q < n && cls[q] == CH_SPACE) q++;
    *wa = q;
    if (q < n && (s[q] == '+' || s[q] == '-')) q++;
    size_t run = q;
    while (q < n) {
        uint32_t cp;
        int val;
        size_t k = utf8_next((const unsigned char *)s, n, q, &cp);
        if (cp != '.' && !py_isdecimal(cp, &val)) break;
        q += k;
    }
    if (q == run) return 0;
    *wb = q;
    while (q < n && cls[q] == CH_SPACE) q++;
    return q < n && s[q] == ')' ? q + 1 : 0;
}

static int is_special(char c) { return c == '\\' || c == '(' || c == ')' || c == '[' || c == ']' || c == ':'; }

sdc_status sdc_prompt_parse_attention(const char *text, sdc_prompt_frags *out, sdc_error *err) {
    memset(out, 0, sizeof *out);
    size_t n = 0;
    SDC_TRY(check_text(text, &n, err));
    attn_state A = {0};
    uint8_t *cls = classify(text, n);
    A.round = malloc((n + 1) * sizeof *A.round);
    A.square = malloc((n + 1) * sizeof *A.square);
    sdc_status st = SDC_OK;
    if (!cls || !A.round || !A.square) goto nomem;

    const char *s = text;
    for (size_t p = 0; p < n;) {
        char c = s[p];
        size_t wa, wb, e;
        if (c == '\\') {
            /* \( \) \[ \] \\ take two bytes; a lone '\' (before anything else) yields "" */
            int two = p + 1 < n && strchr("()[]\\", s[p + 1]) != NULL;
            if (attn_push(&A, s + p + 1, two ? 1 : 0, 1.0, 0)) goto nomem;
            p += two ? 2 : 1;
        } else if (c == '(') {
            A.round[A.nround++] = A.n;
            p++;
        } else if (c == '[') {
            A.square[A.nsquare++] = A.n;
            p++;
        } else if (c == ':' && (e = match_weight(s, n, cls, p, &wa, &wb)) != 0) {
            if (A.nround) {
                double w;
                if ((st = py_float(s + wa, wb - wa, &w, err)) != SDC_OK) goto done;
                multiply_range(&A, A.round[--A.nround], w);
            } else if (attn_text(&A, s, cls, p, e)) {
                goto nomem;
            }
            p = e;
        } else if (c == ')' && A.nround) {
            multiply_range(&A, A.round[--A.nround], 1.1);
            p++;
        } else if (c == ']' && A.nsquare) {
            multiply_range(&A, A.square[--A.nsquare], 1 / 1.1);
            p++;
        } else {
            /* [^\\()\[\]:]+, or a single unmatched ')' / ']' / ':' */
            size_t q = p + 1;
            if (!is_special(c))
                while (q < n && !is_special(s[q])) q++;
            if (attn_text(&A, s, cls, p, q)) goto nomem;
            p = q;
        }
    }
    for (size_t i = 0; i < A.nround; i++) multiply_range(&A, A.round[i], 1.1);
    for (size_t i = 0; i < A.nsquare; i++) multiply_range(&A, A.square[i], 1 / 1.1);
    if (A.n == 0 && attn_push(&A, "", 0, 1.0, 0)) goto nomem;

    /* merge runs of identical weights into the output */
    size_t groups = 0;
    for (size_t i = 0; i < A.n; i++)
        if (i == 0 || !(A.e[i].w == A.e[i - 1].w)) groups++;
    /* (consecutive equal weights chain: equality is transitive, NaN never merges) */
    out->v = calloc(groups, sizeof *out->v);
    out->buf_ = malloc(A.tn + groups);
    if (!out->v || !out->buf_) goto nomem;
    size_t w = 0;
    for (size_t i = 0; i < A.n;) {
        size_t j = i + 1;
        while (j < A.n && A.e[j].w == A.e[i].w) j++;
        sdc_prompt_frag *f = &out->v[out->n++];
        f->text = out->buf_ + w;
        f->weight = A.e[i].w;
        f->weight_is_int = A.e[i].is_int;
        for (size_t k = i; k < j; k++) {
            if (A.e[k].len) memcpy(out->buf_ + w, A.tb + A.e[k].off, A.e[k].len);
            w += A.e[k].len;
        }
        f->len = (size_t)(out->buf_ + w - f->text);
        out->buf_[w++] = 0;
        i = j;
    }
    goto done;
nomem:
    st = sdc_fail(err, SDC_E_NOMEM, "out of memory parsing a prompt of %zu bytes", n);
done:
    if (st != SDC_OK) sdc_prompt_frags_free(out);
    free(A.e);
    free(A.tb);
    free(A.round);
    free(A.square);
    free(cls);
    return st;
}

void sdc_prompt_frags_free(sdc_prompt_frags *f) {
    if (!f) return;
    free(f->v);
    free(f->buf_);
    memset(f, 0, sizeof *f);
}

int sdc_prompt_frag_is_break(const sdc_prompt_frag *f) {
    return f->len == 5 && memcmp(f->text, "BREAK", 5) == 0 && f->weight == -1.0;
}

/* ============================================================================================ */
/* Schedules: get_learned_conditioning_prompt_schedules                                        */
/* ============================================================================================ */
/*
 * webui's lark grammar (Earley, dynamic lexer):
 *   !start: (prompt | /[][():]/+)*
 *   prompt: (emphasized | scheduled | alternate | plain | WHITESPACE)*
 *   !emphasized: "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"
 *   scheduled: "[" [prompt ":"] prompt ":" [WHITESPACE] NUMBER [WHITESPACE] "]"
 *   alternate: "[" prompt ("|" [prompt])+ "]"
 *   WHITESPACE: /\s+/      plain: /([^\\\[\]():|]|\\.)+/      NUMBER: lark's SIGNED_NUMBER
 * A parse error (LarkError) gives [[steps, prompt]].
 *
 * How the descent reproduces it:
 *  - Inside brackets the grammar is deterministic: a nested prompt runs to the first ')' ']' ':'
 *    '|', lone '\' or bracket that does not parse, and what follows decides the construct. The
 *    one choice, "[a:3]" ([to:when], NUMBER after the first ':') versus "[a:b:3]" (a second
 *    prompt), is settled by trying the first and falling back to the second; both cannot match.
 *  - At the top level a bracket may also be a stray character. The top level tries each '(' / '['
 *    as an element first and takes it literally only when that fails (webui's doctest
 *    "a[b:[c:d:2]:1]e" -> [[1, 'abe'], [2, 'ace'], [10, 'ade']]). Where stray brackets sit next to
 *    well-formed ones ("3a[a:2][:b:0.3]]"), lark's choice varies with Python's hash seed: webui
 *    gives the structured reading in some processes and a literal one in others. Fuzzed against
 *    webui's code with lark (6000 prompts, 8 to 48 hash seeds), this parser's result was always
 *    one of webui's, and equal to it wherever webui is deterministic.
 *    A '|' or a lone '\' outside any element is a parse error.
 *  - Element results depend only on their position, so they are memoized: linear time. A bracket
 *    without a properly nested partner cannot start an element and fails at once, so recursion
 *    depth is the nesting of well-formed brackets (capped at SDC_PROMPT_MAX_DEPTH).
 * The text of a step is the tree with each scheduled part replaced by `before` (step <= when) or
 * `after`, and each alternate by option (step - 1) % count; emphasis and stray brackets stay.
 */

enum { SN_TEXT, SN_SEQ, SN_SCHED, SN_ALT };

typedef struct snode {
    int type;
    int32_t a, b; /* TEXT: the bytes; SCHED: the NUMBER */
    int32_t kid;  /* SEQ: first child; ALT: first option (a SEQ) */
    int32_t next; /* next sibling */
    int32_t x, y; /* SCHED: before (SEQ or -1), after (SEQ) */
    int64_t when; /* SCHED: resolved step */
} snode;

typedef struct sparser {
    const char *s;
    int32_t n;
    const uint8_t *cls;
    snode *nodes;
    int32_t nn, cap;
    int32_t *partner;              /* per byte: the matching close of a '(' / '[', or -1 */
    int32_t *memo_end, *memo_node; /* per byte: element end (0 unknown, -1 fails), node */
    int depth;
    sdc_status st;
    sdc_error *err;
} sparser;

typedef struct slist {
    int32_t head, tail;
} slist;

static int32_t new_node(sparser *P, int type) {
    if (P->nn == P->cap) {
        int32_t c = P->cap ? 2 * P->cap : 64;
        snode *v = realloc(P->nodes, (size_t)c * sizeof *v);
        if (!v) {
            P->st = sdc_fail(P->err, SDC_E_NOMEM, "out of memory parsing a prompt schedule");
            return -1;
        }
        P->nodes = v, P->cap = c;
    }
    P->nodes[P->nn] = (snode){type, 0, 0, -1, -1, -1, -1, 0};
    return P->nn++;
}

/* Starts a SEQ node; returns -1 on failure. */
static int32_t seq_begin(sparser *P, slist *L) {
    int32_t s = new_node(P, SN_SEQ);
    L->head = s, L->tail = -1;
    return s;
}

static void seq_append(sparser *P, slist *L, int32_t node) {
    P->nodes[node].next = -1;
    if (L->tail < 0)
        P->nodes[L->head].kid = node;
    else
        P->nodes[L->tail].next = node;
    L->tail = node;
}

/* Appends bytes [a, b), extending the last child when it is adjacent text. */
static int seq_text(sparser *P, slist *L, int32_t a, int32_t b) {
    if (L->tail >= 0 && P->nodes[L->tail].type == SN_TEXT && P->nodes[L->tail].b == a) {
        P->nodes[L->tail].b = b;
        return 0;
    }
    int32_t t = new_node(P, SN_TEXT);
    if (t < 0) return -1;
    P->nodes[t].a = a, P->nodes[t].b = b;
    seq_append(P, L, t);
    return 0;
}

static char at(const sparser *P, int32_t p) { return p < P->n ? P->s[p] : 0; }

static int32_t parse_element(sparser *P, int32_t p, int32_t *node);

/* prompt: runs to the first character it cannot take. Returns the end, or -2 on a hard error. */
static int32_t parse_prompt(sparser *P, int32_t p, int32_t *out) {
    slist L;
    if ((*out = seq_begin(P, &L)) < 0) return -2;
    while (p < P->n) {
        char c = P->s[p];
        if (c == '(' || c == '[') {
            int32_t node, e = parse_element(P, p, &node);
            if (e == -2) return -2;
            if (e < 0) break;
            seq_append(P, &L, node);
            p = e;
        } else if (c == ')' || c == ']' || c == ':' || c == '|') {
            break;
        } else if (c == '\\') {
            if (p + 1 >= P->n || P->s[p + 1] == '\n') break; /* \\. needs a character other than \n */
            if (seq_text(P, &L, p, p + 2)) return -2;
            p += 2;
        } else {
            if (seq_text(P, &L, p, p + 1)) return -2;
            p++;
        }
    }
    return p;
}

/* [WHITESPACE] NUMBER [WHITESPACE] "]" at p; returns the end after ']' or -1; [*na, *nb) = NUMBER.
 * NUMBER is lark's SIGNED_NUMBER, tried as Python's re does its alternation:
 * [+-]? (INT [eE][+-]?INT | (INT "." INT? | "." INT) ([eE][+-]?INT)? | INT), INT = [0-9]+. */
static int32_t match_when(const sparser *P, int32_t p, int32_t *na, int32_t *nb) {
#define DIG(q) (at(P, q) >= '0' && at(P, q) <= '9')
    while (p < P->n && P->cls[p] == CH_SPACE) p++;
    int32_t i = p, end = -1;
    if (at(P, i) == '+' || at(P, i) == '-') i++;
    int32_t d0 = i;
    while (DIG(i)) i++;
    int nd = i - d0;
    if (nd && (at(P, i) == 'e' || at(P, i) == 'E')) {
        int32_t j = i + 1, k;
        if (at(P, j) == '+' || at(P, j) == '-') j++;
        for (k = j; DIG(k);) k++;
        if (k > j) end = k;
    }
    if (end < 0 && at(P, i) == '.') {
        int32_t j = i + 1, k;
        for (k = j; DIG(k);) k++;
        if (nd || k > j) {
            end = k;
            if (at(P, k) == 'e' || at(P, k) == 'E') {
                int32_t j2 = k + 1, k2;
                if (at(P, j2) == '+' || at(P, j2) == '-') j2++;
                for (k2 = j2; DIG(k2);) k2++;
                if (k2 > j2) end = k2;
            }
        }
    }
    if (end < 0 && nd) end = i;
    if (end < 0) return -1;
#undef DIG
    *na = p, *nb = end;
    while (end < P->n && P->cls[end] == CH_SPACE) end++;
    return at(P, end) == ']' ? end + 1 : -1;
}

static int32_t parse_element_uncached(sparser *P, int32_t p, int32_t *node) {
    slist L;
    int32_t inner, q, r, na, nb, e;
    if (P->s[p] == '(') {
        if ((*node = seq_begin(P, &L)) < 0 || seq_text(P, &L, p, p + 1)) return -2;
        if ((q = parse_prompt(P, p + 1, &inner)) == -2) return -2;
        seq_append(P, &L, inner);
        if (at(P, q) == ':') {
            if (seq_text(P, &L, q, q + 1) || (q = parse_prompt(P, q + 1, &inner)) == -2) return -2;
            seq_append(P, &L, inner);
        }
        if (at(P, q) != ')') return -1;
        return seq_text(P, &L, q, q + 1) ? -2 : q + 1;
    }
    int32_t first;
    if ((q = parse_prompt(P, p + 1, &first)) == -2) return -2;
    if (at(P, q) == ']') { /* emphasized "[" prompt "]" */
        if ((*node = seq_begin(P, &L)) < 0 || seq_text(P, &L, p, p + 1)) return -2;
        seq_append(P, &L, first);
        return seq_text(P, &L, q, q + 1) ? -2 : q + 1;
    }
    if (at(P, q) == '|') { /* alternate */
        if ((*node = new_node(P, SN_ALT)) < 0) return -2;
        slist opts = {*node, -1};
        seq_append(P, &opts, first);
        while (at(P, q) == '|') {
            if ((q = parse_prompt(P, q + 1, &inner)) == -2) return -2;
            seq_append(P, &opts, inner);
        }
        return at(P, q) == ']' ? q + 1 : -1;
    }
    if (at(P, q) != ':') return -1;
    int32_t before = -1, after = first;
    if ((e = match_when(P, q + 1, &na, &nb)) < 0) { /* not [to:when]: try [from:to:when] */
        if ((r = parse_prompt(P, q + 1, &inner)) == -2) return -2;
        if (at(P, r) != ':' || (e = match_when(P, r + 1, &na, &nb)) < 0) return -1;
        before = first, after = inner;
    }
    if ((*node = new_node(P, SN_SCHED)) < 0) return -2;
    snode *sn = &P->nodes[*node];
    sn->x = before, sn->y = after, sn->a = na, sn->b = nb;
    return e;
}

/* An element at p ('(' or '['): its end, -1 if none starts there, -2 on a hard error. */
static int32_t parse_element(sparser *P, int32_t p, int32_t *node) {
    if (P->memo_end[p] != 0) {
        *node = P->memo_node[p];
        return P->memo_end[p];
    }
    int32_t e = -1;
    *node = -1;
    if (P->partner[p] >= 0) {
        if (++P->depth > SDC_PROMPT_MAX_DEPTH) {
            P->st = sdc_fail(P->err, SDC_E_LIMIT, "prompt nests brackets more than %d deep", SDC_PROMPT_MAX_DEPTH);
            return -2;
        }
        e = parse_element_uncached(P, p, node);
        P->depth--;
        if (e == -2) return -2;
    }
    P->memo_end[p] = e < 0 ? -1 : e;
    P->memo_node[p] = *node;
    return e;
}

/* The partner prefilter: an element is balanced, with no stray ')' ']' or lone '\' inside. */
static void find_partners(sparser *P, int32_t *stack) {
    int32_t sp = 0;
    for (int32_t i = 0; i < P->n; i++) {
        char c = P->s[i];
        P->partner[i] = -1;
        if (c == '\\') {
            if (i + 1 < P->n && P->s[i + 1] != '\n')
                P->partner[++i] = -1;
            else
                sp = 0;
        } else if (c == '(' || c == '[') {
            stack[sp++] = i;
        } else if (c == ')' || c == ']') {
            if (sp && P->s[stack[sp - 1]] == (c == ')' ? '(' : '['))
                P->partner[stack[--sp]] = i;
            else
                sp = 0;
        }
    }
}

/* The whole prompt: 1 parsed (*root set), 0 a parse error, -2 a hard error. */
static int parse_start(sparser *P, int32_t *root) {
    slist L;
    if ((*root = seq_begin(P, &L)) < 0) return -2;
    for (int32_t p = 0; p < P->n;) {
        char c = P->s[p];
        if (c == '(' || c == '[') {
            int32_t node, e = parse_element(P, p, &node);
            if (e == -2) return -2;
            if (e >= 0) {
                seq_append(P, &L, node);
                p = e;
                continue;
            }
        } else if (c == '|') {
            return 0;
        } else if (c == '\\') {
            if (p + 1 >= P->n || P->s[p + 1] == '\n') return 0;
            if (seq_text(P, &L, p, p + 2)) return -2;
            p += 2;
            continue;
        }
        if (seq_text(P, &L, p, p + 1)) return -2; /* plain text or a stray [ ] ( ) : */
        p++;
    }
    return 1;
}

typedef struct sched_cfg {
    int steps, int_offset, use_old;
    double flt_offset;
    int has_alt;
    int *whens; /* collected steps >= 1 */
    int nwhens;
} sched_cfg;

/* CollectSteps: resolves every scheduled "when" of the tree and notes alternates. */
static sdc_status collect(sparser *P, int32_t k, sched_cfg *C) {
    for (; k >= 0; k = P->nodes[k].next) {
        snode *nd = &P->nodes[k];
        if (nd->type == SN_SEQ || nd->type == SN_ALT) {
            if (nd->type == SN_ALT) C->has_alt = 1;
            SDC_TRY(collect(P, nd->kid, C));
        } else if (nd->type == SN_SCHED) {
            char num[64];
            int32_t len = nd->b - nd->a;
            if (len >= (int32_t)sizeof num)
                return sdc_fail(P->err, SDC_E_INVALID_ARG, "prompt editing step '%.20s...' is too long", P->s + nd->a);
            memcpy(num, P->s + nd->a, (size_t)len);
            num[len] = 0;
            double v = strtod(num, NULL);
            if (C->use_old)
                v = v < 1 ? v * C->steps : v;
            else if (memchr(num, '.', (size_t)len))
                v = (v - C->flt_offset) * C->steps;
            else
                v = v - C->int_offset;
            if (!isfinite(v)) /* webui: int(inf) raises OverflowError */
                return sdc_fail(P->err, SDC_E_INVALID_ARG, "prompt editing step '%s' is out of range", num);
            double t = trunc(v); /* Python int(): toward zero; min(steps, .) below */
            nd->when = t >= C->steps ? C->steps : t < 0 ? 0 : (int64_t)t;
            if (nd->when >= 1) C->whens[C->nwhens++] = (int)nd->when;
            if (nd->x >= 0) SDC_TRY(collect(P, nd->x, C));
            SDC_TRY(collect(P, nd->y, C));
        }
    }
    return SDC_OK;
}

/* AtStep: appends the text of node list k at `step` to buf. */
static void render(const sparser *P, int32_t k, int step, char *buf, size_t *len) {
    for (; k >= 0; k = P->nodes[k].next) {
        const snode *nd = &P->nodes[k];
        if (nd->type == SN_TEXT) {
            memcpy(buf + *len, P->s + nd->a, (size_t)(nd->b - nd->a));
            *len += (size_t)(nd->b - nd->a);
        } else if (nd->type == SN_SEQ) {
            render(P, nd->kid, step, buf, len);
        } else if (nd->type == SN_SCHED) {
            int32_t part = step <= nd->when ? nd->x : nd->y;
            if (part >= 0) render(P, P->nodes[part].kid, step, buf, len);
        } else {
            int count = 0, i = 0;
            for (int32_t o = nd->kid; o >= 0; o = P->nodes[o].next) count++;
            int32_t o = nd->kid;
            for (; i < (step - 1) % count; i++) o = P->nodes[o].next;
            render(P, P->nodes[o].kid, step, buf, len);
        }
    }
}

static int cmp_int(const void *a, const void *b) {
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

sdc_status sdc_prompt_schedule_get(const char *prompt, int steps, int hires_steps, int use_old_scheduling,
                                   sdc_prompt_schedule *out, sdc_error *err) {
    memset(out, 0, sizeof *out);
    size_t n = 0;
    SDC_TRY(check_text(prompt, &n, err));
    if (steps < 1 || steps > SDC_PROMPT_MAX_STEPS || hires_steps < 0 || hires_steps > SDC_PROMPT_MAX_STEPS)
        return sdc_fail(err, SDC_E_INVALID_ARG, "schedule steps %d (hires %d) outside 1..%d", steps, hires_steps,
                        SDC_PROMPT_MAX_STEPS);
    sched_cfg C = {steps, 0, use_old_scheduling != 0, 0.0, 0, NULL, 0};
    if (hires_steps && !use_old_scheduling) C.steps = hires_steps, C.int_offset = steps, C.flt_offset = 1.0;

    sparser P = {.s = prompt, .n = (int32_t)n, .st = SDC_OK, .err = err};
    int32_t *stack = malloc((n + 1) * sizeof *stack);
    P.cls = classify(prompt, n);
    P.partner = malloc((n + 1) * sizeof *P.partner);
    P.memo_end = calloc(n + 1, sizeof *P.memo_end);
    P.memo_node = malloc((n + 1) * sizeof *P.memo_node);
    int *steps_list = NULL;
    sdc_status st = SDC_OK;
    if (!stack || !P.cls || !P.partner || !P.memo_end || !P.memo_node) goto nomem;
    find_partners(&P, stack);

    int32_t root;
    int parsed = parse_start(&P, &root);
    if (parsed == -2) {
        st = P.st;
        goto done;
    }
    size_t nsched = 0;
    for (int32_t i = 0; i < P.nn; i++) nsched += P.nodes[i].type == SN_SCHED;
    if (!(C.whens = malloc((nsched + 1) * sizeof *C.whens))) goto nomem;
    if (parsed && (st = collect(&P, root, &C)) != SDC_OK) goto done;

    /* sorted(set([steps] + whens + (range(1, steps + 1) if any alternate))) */
    size_t cap = (size_t)C.nwhens + 1 + (C.has_alt ? (size_t)C.steps : 0), m = 0;
    if (!(steps_list = malloc(cap * sizeof *steps_list))) goto nomem;
    steps_list[m++] = C.steps;
    for (int i = 0; i < C.nwhens; i++) steps_list[m++] = C.whens[i];
    for (int i = 1; C.has_alt && i <= C.steps; i++) steps_list[m++] = i;
    qsort(steps_list, m, sizeof *steps_list, cmp_int);
    size_t u = 0;
    for (size_t i = 0; i < m; i++)
        if (u == 0 || steps_list[i] != steps_list[u - 1]) steps_list[u++] = steps_list[i];
    if (!parsed) u = 1, steps_list[0] = C.steps; /* LarkError: [[steps, prompt]] */
    if (sdc_mul_size(u, n + 1) > (size_t)64 << 20) {
        st = sdc_fail(err, SDC_E_LIMIT, "prompt schedule of %zu texts of up to %zu bytes is too large", u, n);
        goto done;
    }
    if (!(out->v = calloc(u, sizeof *out->v))) goto nomem;
    for (size_t i = 0; i < u; i++) {
        char *t = malloc(n + 1);
        if (!t) goto nomem;
        size_t len = 0;
        if (parsed)
            render(&P, root, steps_list[i], t, &len);
        else
            memcpy(t, prompt, len = n);
        t[len] = 0;
        out->v[out->n++] = (sdc_prompt_sched_entry){steps_list[i], t};
    }
    goto done;
nomem:
    st = sdc_fail(err, SDC_E_NOMEM, "out of memory parsing a prompt schedule");
done:
    if (st != SDC_OK) sdc_prompt_schedule_free(out);
    free(steps_list);
    free(C.whens);
    free(stack);
    free((void *)P.cls);
    free(P.partner);
    free(P.memo_end);
    free(P.memo_node);
    free(P.nodes);
    return st;
}

void sdc_prompt_schedule_free(sdc_prompt_schedule *s) {
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) free(s->v[i].text);
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* ============================================================================================ */
/* AND: get_multicond_prompt_list                                                              */
/* ============================================================================================ */
/*
 * subprompts = re.split(r"\bAND\b", prompt); each goes through
 *   re_weight = ^((?:\s|.)*?)(?:\s*:\s*([-+]?(?:\d+\.?|\d*\.\d+)))?\s*$
 * The lazy text group takes the shortest prefix after which the rest is whitespace, or
 * whitespace ':' whitespace NUMBER whitespace. NUMBER and \s hold no ':', so the weight (if any)
 * follows the last ':', and the text is what precedes that ':' with trailing whitespace removed
 * (or the whole part with trailing whitespace removed). Texts are deduplicated in order.
 */

/* Splits part s[a, b): text [a, *te), weight *w (1.0 without a suffix). */
static sdc_status and_weight(const char *s, const uint8_t *cls, size_t a, size_t b, size_t *te, double *w,
                             sdc_error *err) {
    size_t end = b;
    while (end > a && cls[end - 1] == CH_SPACE) end--;
    *te = end, *w = 1.0;
    const char *colon = NULL;
    for (size_t i = a; i < end; i++)
        if (s[i] == ':') colon = s + i;
    if (!colon) return SDC_OK;
    size_t c = (size_t)(colon - s), q = c + 1;
    while (q < end && cls[q] == CH_SPACE) q++;
    size_t na = q;
    if (q < end && (s[q] == '+' || s[q] == '-')) q++;
    int digits = 0, dots = 0;
    while (q < end) {
        uint32_t cp;
        int val;
        size_t k = utf8_next((const unsigned char *)s, end, q, &cp);
        if (cp == '.')
            dots++;
        else if (py_isdecimal(cp, &val))
            digits++;
        else
            break;
        q += k;
    }
    if (q != end || digits == 0 || dots > 1) return SDC_OK; /* no weight: the ':' is text */
    SDC_TRY(py_float(s + na, end - na, w, err));
    while (c > a && cls[c - 1] == CH_SPACE) c--;
    *te = c;
    return SDC_OK;
}

sdc_status sdc_prompt_split_and(const char *prompt, sdc_prompt_and *out, sdc_error *err) {
    memset(out, 0, sizeof *out);
    size_t n = 0;
    SDC_TRY(check_text(prompt, &n, err));
    const char *s = prompt;
    uint8_t *cls = classify(s, n);
    sdc_status st = SDC_OK;
    size_t maxparts = n / 3 + 1;
    if (!cls || !(out->parts = calloc(maxparts, sizeof *out->parts)) ||
        !(out->texts = calloc(maxparts, sizeof *out->texts)))
        goto nomem;
    size_t a = 0;
    for (size_t k = 0;; k++) {
        int sep =
            k + 3 <= n && memcmp(s + k, "AND", 3) == 0 && (k == 0 || cls[k - 1] != CH_WORD) && cls[k + 3] != CH_WORD;
        if (!sep && k < n) continue;
        size_t b = sep ? k : n, te;
        double w;
        if ((st = and_weight(s, cls, a, b, &te, &w, err)) != SDC_OK) goto done;
        size_t idx = 0;
        while (idx < out->n_texts && !(strlen(out->texts[idx]) == te - a && !memcmp(out->texts[idx], s + a, te - a)))
            idx++;
        if (idx == out->n_texts) {
            if (!(out->texts[idx] = strndup(s + a, te - a))) goto nomem;
            out->n_texts++;
        }
        out->parts[out->n_parts++] = (sdc_prompt_and_part){(int)idx, w};
        if (!sep) break;
        a = k + 3;
        k += 2;
    }
    goto done;
nomem:
    st = sdc_fail(err, SDC_E_NOMEM, "out of memory splitting a prompt at AND");
done:
    if (st != SDC_OK) sdc_prompt_and_free(out);
    free(cls);
    return st;
}

void sdc_prompt_and_free(sdc_prompt_and *a) {
    if (!a) return;
    for (size_t i = 0; i < a->n_texts; i++) free(a->texts[i]);
    free(a->texts);
    free(a->parts);
    memset(a, 0, sizeof *a);
}

/* ============================================================================================ */
/* Python-compatible output                                                                    */
/* ============================================================================================ */

size_t sdc_prompt_json_double(double v, char buf[32]) {
    if (isnan(v)) return (size_t)snprintf(buf, 32, "NaN");
    if (isinf(v)) return (size_t)snprintf(buf, 32, v < 0 ? "-Infinity" : "Infinity");
    if (v == 0) return (size_t)snprintf(buf, 32, signbit(v) ? "-0.0" : "0.0");
    /* the shortest digits that round-trip (repr's dtoa mode 0) */
    char e[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, v);
        if (strtod(e, NULL) == v) break;
    }
    char digits[20];
    int nd = 0, neg = e[0] == '-';
    const char *p = e + neg;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    int decpt = atoi(p + 1) + 1; /* value = 0.DIGITS * 10^decpt */
    size_t w = 0;
    if (neg) buf[w++] = '-';
    if (decpt > -4 && decpt <= 16) { /* repr's fixed notation */
        if (decpt <= 0) {
            buf[w++] = '0', buf[w++] = '.';
            for (int i = 0; i < -decpt; i++) buf[w++] = '0';
            for (int i = 0; i < nd; i++) buf[w++] = digits[i];
        } else {
            for (int i = 0; i < decpt; i++) buf[w++] = i < nd ? digits[i] : '0';
            buf[w++] = '.';
            if (nd > decpt)
                for (int i = decpt; i < nd; i++) buf[w++] = digits[i];
            else
                buf[w++] = '0';
        }
        buf[w] = 0;
        return w;
    }
    buf[w++] = digits[0];
    if (nd > 1) {
        buf[w++] = '.';
        for (int i = 1; i < nd; i++) buf[w++] = digits[i];
    }
    return w + (size_t)snprintf(buf + w, 32 - w, "e%c%02d", decpt - 1 < 0 ? '-' : '+', abs(decpt - 1));
}

static void put(char *dst, size_t *w, char c) {
    if (dst) dst[*w] = c;
    (*w)++;
}

static void put_u(char *dst, size_t *w, uint32_t u) {
    static const char hex[] = "0123456789abcdef";
    put(dst, w, '\\');
    put(dst, w, 'u');
    for (int sh = 12; sh >= 0; sh -= 4) put(dst, w, hex[u >> sh & 15]);
}

size_t sdc_prompt_json_string(char *dst, const char *s, size_t len) {
    size_t w = 0;
    put(dst, &w, '"');
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        i += utf8_next((const unsigned char *)s, len, i, &cp);
        char esc = cp == '"'    ? '"'
                   : cp == '\\' ? '\\'
                   : cp == '\n' ? 'n'
                   : cp == '\r' ? 'r'
                   : cp == '\t' ? 't'
                   : cp == '\b' ? 'b'
                   : cp == '\f' ? 'f'
                                : 0;
        if (esc) {
            put(dst, &w, '\\');
            put(dst, &w, esc);
        } else if (cp >= 0x20 && cp <= 0x7E) {
            put(dst, &w, (char)cp);
        } else if (cp < 0x10000) {
            put_u(dst, &w, cp);
        } else { /* a UTF-16 surrogate pair, as json.dumps writes it */
            put_u(dst, &w, 0xD800 + ((cp - 0x10000) >> 10));
            put_u(dst, &w, 0xDC00 + ((cp - 0x10000) & 0x3FF));
        }
    }
    put(dst, &w, '"');
    return w;
}
