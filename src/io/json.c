/* src/io/json.c: the strict JSON parser declared in json.h.
 *
 * How it works: one grammar routine, run twice over the input.
 *   pass 1 (count)  checks everything and counts the values (N) and the bytes of the decoded
 *                   strings (S, each with its NUL). Nothing is allocated.
 *   pass 2 (build)  with one block of N nodes + S string bytes, fills in the DOM.
 * The grammar is walked iteratively with an explicit stack of open containers (one frame per
 * nesting level, capped by max_depth), so hostile nesting cannot overflow the C stack.
 *
 * Children of a container must end up contiguous (sdc_json_at is O(1)) but their number is only
 * known when the container closes. Completed values therefore wait on a "held" stack that grows
 * down from the end of the node block, while the children of closed containers are "placed"
 * upwards from index 1 (index 0 is the root). Every value is counted once, held or placed, and
 * the root's slot is separate, so the two regions never meet: no second buffer is needed.
 * A closing container moves its children (newest first on the held stack) to the placed region
 * with memmove and reverses them into document order.
 */
#include "io/json.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_NUMBER_CHARS 512 /* longer number literals are refused (SDC_E_LIMIT) */

/* json.h promises at most 17 bytes of DOM per input byte: one node per 2 bytes, plus strings. */
_Static_assert(sizeof(void *) != 8 || sizeof(sdc_json) == 32, "sdc_json should stay 32 bytes");

/* ------------------------------------------------------------------------------------------ */
/* UTF-8                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* Length of the valid UTF-8 sequence at s (s < end), or 0 if it is not valid (RFC 3629 table:
 * no overlong forms, no surrogates D800-DFFF, nothing past U+10FFFF). */
static size_t utf8_seq_len(const unsigned char *s, const unsigned char *end) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c == 0xe0)
        n = 3, lo = 0xa0;
    else if (c >= 0xe1 && c <= 0xec)
        n = 3;
    else if (c == 0xed)
        n = 3, hi = 0x9f;
    else if (c >= 0xee && c <= 0xef)
        n = 3;
    else if (c == 0xf0)
        n = 4, lo = 0x90;
    else if (c >= 0xf1 && c <= 0xf3)
        n = 4;
    else if (c == 0xf4)
        n = 4, hi = 0x8f;
    else
        return 0;
    if ((size_t)(end - s) < n || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    return n;
}

int sdc_json_utf8_valid(const char *s, size_t len) {
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        size_t n = utf8_seq_len(p, end);
        if (!n) return 0;
        p += n;
    }
    return 1;
}

static size_t utf8_encode(unsigned char *dst, uint32_t cp) {
    if (cp < 0x80) {
        if (dst) dst[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        if (dst)
            dst[0] = (unsigned char)(0xc0 | cp >> 6), dst[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        if (dst) {
            dst[0] = (unsigned char)(0xe0 | cp >> 12);
            dst[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
            dst[2] = (unsigned char)(0x80 | (cp & 0x3f));
        }
        return 3;
    }
    if (dst) {
        dst[0] = (unsigned char)(0xf0 | cp >> 18);
        dst[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        dst[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        dst[3] = (unsigned char)(0x80 | (cp & 0x3f));
    }
    return 4;
}

size_t sdc_json_escape(char *dst, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;
#define PUT(ch)                                                                                    \
    do {                                                                                           \
        if (dst) dst[n] = (ch);                                                                    \
        n++;                                                                                       \
    } while (0)
    PUT('"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *short_form = NULL;
        switch (c) {
        case '"': short_form = "\\\""; break;
        case '\\': short_form = "\\\\"; break;
        case '\n': short_form = "\\n"; break;
        case '\r': short_form = "\\r"; break;
        case '\t': short_form = "\\t"; break;
        case '\b': short_form = "\\b"; break;
        case '\f': short_form = "\\f"; break;
        default: break;
        }
        if (short_form) {
            PUT(short_form[0]);
            PUT(short_form[1]);
        } else if (c < 0x20) {
            PUT('\\');
            PUT('u');
            PUT('0');
            PUT('0');
            PUT(hex[c >> 4]);
            PUT(hex[c & 15]);
        } else {
            PUT((char)c);
        }
    }
    PUT('"');
#undef PUT
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* The parser                                                                                  */
/* ------------------------------------------------------------------------------------------ */

typedef struct frame {
    uint8_t type;     /* SDC_JSON_ARRAY or SDC_JSON_OBJECT */
    uint32_t key_len; /* build: key of the member now being parsed (objects) */
    const char *key;
    size_t count; /* children completed so far */
} frame;

typedef struct parser {
    const unsigned char *start, *p, *end;
    int build; /* 0: counting pass, 1: building pass */
    int max_depth, depth;
    int nonfinite; /* accept NaN, Infinity, -Infinity */
    frame stack[SDC_JSON_MAX_DEPTH];
    size_t nodes, str_bytes; /* pass 1 results */
    sdc_json *node;          /* pass 2: block of `nodes` nodes */
    size_t placed, held;     /* pass 2: see the file comment */
    char *strs;              /* pass 2: next free string byte */
    sdc_error *err;
} parser;

/* Records a failure at `at` as "JSON line L, column C: ..." and returns 0. */
static int fail(parser *ps, const unsigned char *at, sdc_status code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(parser *ps, const unsigned char *at, sdc_status code, const char *fmt, ...) {
    size_t line = 1, col = 1;
    for (const unsigned char *q = ps->start; q < at; q++) {
        if (*q == '\n')
            line++, col = 1;
        else
            col++;
    }
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    sdc_fail(ps->err, code, "JSON line %zu, column %zu: %s", line, col, what);
    return 0;
}

/* Describes the byte at p for messages: 'x', byte 0xNN, or end of input. */
static const char *describe(const parser *ps, const unsigned char *p, char buf[16]) {
    if (p >= ps->end) return "end of input";
    if (*p >= 0x20 && *p < 0x7f)
        snprintf(buf, 16, "'%c'", *p);
    else
        snprintf(buf, 16, "byte 0x%02x", *p);
    return buf;
}

static void skip_ws(parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t'))
        ps->p++;
}

static int hex4(const unsigned char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

/* Parses the string at ps->p (which is '"'), decoding into dst when not NULL; *len gets the
 * decoded length. */
static int parse_string(parser *ps, unsigned char *dst, size_t *len) {
    const unsigned char *p = ps->p + 1, *end = ps->end;
    size_t n = 0;
    for (;;) {
        if (p >= end) return fail(ps, ps->p, SDC_E_FORMAT, "unterminated string");
        unsigned c = *p;
        if (c == '"') break;
        if (c < 0x20) return fail(ps, p, SDC_E_FORMAT, "control character 0x%02x in string", c);
        if (c == '\\') {
            if (end - p < 2) return fail(ps, ps->p, SDC_E_FORMAT, "unterminated string");
            unsigned e = p[1], out;
            switch (e) {
            case '"': out = '"'; break;
            case '\\': out = '\\'; break;
            case '/': out = '/'; break;
            case 'b': out = '\b'; break;
            case 'f': out = '\f'; break;
            case 'n': out = '\n'; break;
            case 'r': out = '\r'; break;
            case 't': out = '\t'; break;
            case 'u': out = 0x100; break; /* handled below */
            default: {
                char b[16];
                return fail(ps, p, SDC_E_FORMAT, "invalid escape \\%s", describe(ps, p + 1, b));
            }
            }
            if (out < 0x100) {
                if (dst) dst[n] = (unsigned char)out;
                n++;
                p += 2;
                continue;
            }
            uint32_t cp;
            if (end - p < 6 || !hex4(p + 2, &cp))
                return fail(ps, p, SDC_E_FORMAT, "\\u must be followed by 4 hex digits");
            p += 6;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return fail(ps, p - 6, SDC_E_FORMAT, "lone low surrogate \\u%04x", (unsigned)cp);
            if (cp >= 0xd800 && cp <= 0xdbff) { /* a high surrogate needs its low half next */
                uint32_t lo;
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || !hex4(p + 2, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return fail(ps, p - 6, SDC_E_FORMAT,
                                "high surrogate \\u%04x not followed by a low surrogate",
                                (unsigned)cp);
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                p += 6;
            }
            n += utf8_encode(dst ? dst + n : NULL, cp);
            continue;
        }
        size_t k = utf8_seq_len(p, end);
        if (!k) return fail(ps, p, SDC_E_FORMAT, "invalid UTF-8 in string");
        if (dst) memcpy(dst + n, p, k);
        n += k;
        p += k;
    }
    ps->p = p + 1;
    *len = n;
    return 1;
}

/* Parses a string into the DOM's string area (pass 2) or counts it (pass 1). */
static int take_string(parser *ps, const char **s, size_t *len) {
    unsigned char *dst = ps->build ? (unsigned char *)ps->strs : NULL;
    if (!parse_string(ps, dst, len)) return 0;
    if (ps->build) {
        dst[*len] = '\0';
        *s = ps->strs;
        ps->strs += *len + 1;
    } else {
        ps->str_bytes += *len + 1;
    }
    return 1;
}

/* Parses a number literal (RFC 8259 grammar) into v. */
static int parse_number(parser *ps, sdc_json *v) {
    const unsigned char *s = ps->p, *p = s, *end = ps->end;
    int is_int = 1;
    if (p < end && *p == '-') p++;
    if (p >= end || *p < '0' || *p > '9') {
        char b[16];
        return fail(ps, p, SDC_E_FORMAT, "expected a digit, found %s", describe(ps, p, b));
    }
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9')
            return fail(ps, s, SDC_E_FORMAT, "number with a leading zero");
    } else {
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && *p == '.') {
        is_int = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return fail(ps, p, SDC_E_FORMAT, "expected a digit after the decimal point");
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        is_int = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p >= end || *p < '0' || *p > '9')
            return fail(ps, p, SDC_E_FORMAT, "expected a digit in the exponent");
        while (p < end && *p >= '0' && *p <= '9') p++;
    }
    size_t n = (size_t)(p - s);
    if (n > MAX_NUMBER_CHARS)
        return fail(ps, s, SDC_E_LIMIT, "number literal longer than %d characters",
                    MAX_NUMBER_CHARS);

    /* strtod needs a NUL-terminated copy, and the C library's decimal point for the current
     * locale (a host program may have called setlocale). */
    char buf[MAX_NUMBER_CHARS + 1];
    memcpy(buf, s, n);
    buf[n] = '\0';
    char point = localeconv()->decimal_point[0];
    if (point != '.')
        for (size_t i = 0; i < n; i++)
            if (buf[i] == '.') buf[i] = point;
    double d = strtod(buf, NULL);
    if (isinf(d))
        return fail(ps, s, SDC_E_FORMAT, "number %s is out of the range of a double", buf);

    /* Exact int64 for integer literals: accumulate as unsigned with an overflow check. */
    int64_t iv = 0;
    if (is_int) {
        int neg = s[0] == '-';
        uint64_t mag = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
        for (const unsigned char *q = s + neg; q < p; q++) {
            unsigned dgt = *q - '0';
            if (mag > (lim - dgt) / 10) {
                is_int = 0; /* does not fit: only the double is kept */
                break;
            }
            mag = mag * 10 + dgt;
        }
        if (is_int) iv = neg ? (int64_t)(0 - mag) : (int64_t)mag;
    }
    v->type = SDC_JSON_NUMBER;
    v->is_int = (uint8_t)is_int;
    v->u.num.d = d;
    v->u.num.i = is_int ? iv : 0;
    ps->p = p;
    return 1;
}

/* Python's extension: NaN, Infinity, -Infinity. Returns 1 and advances if one is at ps->p. */
static int nonfinite_literal(parser *ps, sdc_json *v) {
    static const struct {
        const char *word;
        double value;
    } lits[3] = {{"NaN", NAN}, {"Infinity", INFINITY}, {"-Infinity", -INFINITY}};
    size_t rem = (size_t)(ps->end - ps->p);
    for (int i = 0; i < 3; i++) {
        size_t n = strlen(lits[i].word);
        if (rem >= n && !memcmp(ps->p, lits[i].word, n)) {
            v->type = SDC_JSON_NUMBER;
            v->u.num.d = lits[i].value;
            ps->p += n;
            return 1;
        }
    }
    return 0;
}

/* A value is complete: count it, or in pass 2 give it its key and hold it (or make it the root). */
static void complete(parser *ps, sdc_json *v) {
    if (!ps->build) {
        ps->nodes++;
        return;
    }
    if (ps->depth == 0) {
        ps->node[0] = *v;
        return;
    }
    frame *parent = &ps->stack[ps->depth - 1];
    if (parent->type == SDC_JSON_OBJECT) {
        v->key = parent->key;
        v->key_len = parent->key_len;
    }
    ps->held++;
    ps->node[ps->nodes - ps->held] = *v;
}

/* Pops the innermost container and completes it (pass 2: moves its children into place). */
static void close_container(parser *ps) {
    frame *f = &ps->stack[--ps->depth];
    sdc_json v = {.type = f->type};
    v.u.list.n = f->count;
    if (ps->build && f->count) {
        size_t c = f->count;
        sdc_json *src = ps->node + (ps->nodes - ps->held), *dst = ps->node + 1 + ps->placed;
        memmove(dst, src, c * sizeof *dst);
        for (size_t i = 0, j = c - 1; i < j; i++, j--) { /* newest-first -> document order */
            sdc_json t = dst[i];
            dst[i] = dst[j];
            dst[j] = t;
        }
        ps->held -= c;
        ps->placed += c;
        v.u.list.items = dst;
    }
    complete(ps, &v);
}

/* Parses `"key" :` inside an object. */
static int parse_key(parser *ps) {
    frame *f = &ps->stack[ps->depth - 1];
    char b[16];
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '"')
        return fail(ps, ps->p, SDC_E_FORMAT, "expected a string key, found %s",
                    describe(ps, ps->p, b));
    const unsigned char *at = ps->p;
    size_t len;
    if (!take_string(ps, &f->key, &len)) return 0;
    if (len > UINT32_MAX) return fail(ps, at, SDC_E_LIMIT, "object key longer than 4 GB");
    f->key_len = (uint32_t)len;
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != ':')
        return fail(ps, ps->p, SDC_E_FORMAT, "expected ':' after an object key, found %s",
                    describe(ps, ps->p, b));
    ps->p++;
    return 1;
}

/* The grammar, iteratively: parse a value; then, while inside containers, take ',' (and the next
 * key) or the closing bracket. */
static int parse_document(parser *ps) {
    char b[16];
    for (;;) {
        /* --- a value starts here --- */
        skip_ws(ps);
        if (ps->p >= ps->end) return fail(ps, ps->p, SDC_E_FORMAT, "unexpected end of input");
        unsigned c = *ps->p;
        if (c == '{' || c == '[') {
            if (ps->depth >= ps->max_depth)
                return fail(ps, ps->p, SDC_E_LIMIT, "nesting deeper than %d", ps->max_depth);
            frame *f = &ps->stack[ps->depth++];
            *f = (frame){.type = c == '{' ? SDC_JSON_OBJECT : SDC_JSON_ARRAY};
            ps->p++;
            skip_ws(ps);
            if (ps->p < ps->end && *ps->p == (c == '{' ? '}' : ']')) { /* empty */
                ps->p++;
                close_container(ps);
            } else {
                if (c == '{' && !parse_key(ps)) return 0;
                continue; /* parse the first child */
            }
        } else {
            sdc_json v = {0};
            size_t rem = (size_t)(ps->end - ps->p);
            if (c == '"') {
                v.type = SDC_JSON_STRING;
                if (!take_string(ps, &v.u.str.s, &v.u.str.len)) return 0;
            } else if (ps->nonfinite && nonfinite_literal(ps, &v)) {
                /* NaN, Infinity or -Infinity, taken */
            } else if (c == '-' || (c >= '0' && c <= '9')) {
                if (!parse_number(ps, &v)) return 0;
            } else if (rem >= 4 && !memcmp(ps->p, "true", 4)) {
                v.type = SDC_JSON_BOOL, v.boolean = 1, ps->p += 4;
            } else if (rem >= 5 && !memcmp(ps->p, "false", 5)) {
                v.type = SDC_JSON_BOOL, ps->p += 5;
            } else if (rem >= 4 && !memcmp(ps->p, "null", 4)) {
                v.type = SDC_JSON_NULL, ps->p += 4;
            } else {
                return fail(ps, ps->p, SDC_E_FORMAT, "expected a value, found %s",
                            describe(ps, ps->p, b));
            }
            complete(ps, &v);
        }

        /* --- after a value: ',' or a closing bracket, as often as containers close --- */
        for (;;) {
            skip_ws(ps);
            if (ps->depth == 0) {
                if (ps->p < ps->end)
                    return fail(ps, ps->p, SDC_E_FORMAT, "unexpected %s after the value",
                                describe(ps, ps->p, b));
                return 1;
            }
            frame *f = &ps->stack[ps->depth - 1];
            f->count++;
            char closer = f->type == SDC_JSON_OBJECT ? '}' : ']';
            if (ps->p < ps->end && *ps->p == ',') {
                ps->p++;
                if (f->type == SDC_JSON_OBJECT && !parse_key(ps)) return 0;
                break; /* parse the next child */
            }
            if (ps->p < ps->end && *ps->p == closer) {
                ps->p++;
                close_container(ps);
                continue;
            }
            return fail(ps, ps->p, SDC_E_FORMAT, "expected ',' or '%c', found %s", closer,
                        describe(ps, ps->p, b));
        }
    }
}

sdc_json_opts sdc_json_opts_default(void) {
    return (sdc_json_opts){.max_depth = 64, .max_memory = 0, .allow_nonfinite = 0};
}

sdc_status sdc_json_parse_ex(const char *buf, size_t len, const sdc_json_opts *opts,
                             sdc_json **root, sdc_error *err) {
    *root = NULL;
    sdc_json_opts l = opts ? *opts : sdc_json_opts_default();
    if (l.max_depth < 1 || l.max_depth > SDC_JSON_MAX_DEPTH)
        return sdc_fail(err, SDC_E_INVALID_ARG, "JSON: max_depth %d outside [1, %d]", l.max_depth,
                        SDC_JSON_MAX_DEPTH);
    if (!buf && len) return sdc_fail(err, SDC_E_INVALID_ARG, "JSON: NULL buffer");

    parser *ps = malloc(sizeof *ps); /* the frame stack is a few KB: keep it off the C stack */
    if (!ps) return sdc_fail(err, SDC_E_NOMEM, "JSON: out of memory");
    *ps = (parser){.start = (const unsigned char *)buf,
                   .end = (const unsigned char *)buf + len,
                   .max_depth = l.max_depth,
                   .nonfinite = l.allow_nonfinite,
                   .err = err};
    ps->p = ps->start;

    /* Pass 1: validate and measure. */
    if (!parse_document(ps)) {
        sdc_status code = err ? err->code : SDC_E_FORMAT;
        free(ps);
        return code;
    }
    size_t node_bytes = sdc_mul_size(ps->nodes, sizeof(sdc_json));
    size_t total = node_bytes + ps->str_bytes;
    if (!node_bytes || total < node_bytes || (l.max_memory && total > l.max_memory)) {
        size_t nodes = ps->nodes;
        free(ps);
        return sdc_fail(err, SDC_E_LIMIT, "JSON: %zu values need %zu bytes, over the limit of %zu",
                        nodes, total, l.max_memory);
    }
    sdc_json *block = malloc(total);
    if (!block) {
        free(ps);
        return sdc_fail(err, SDC_E_NOMEM, "JSON: out of memory for %zu bytes", total);
    }

    /* Pass 2: build. It walks the same input with the same code, so it cannot fail. */
    size_t nodes = ps->nodes;
    *ps = (parser){.start = (const unsigned char *)buf,
                   .end = (const unsigned char *)buf + len,
                   .max_depth = l.max_depth,
                   .nonfinite = l.allow_nonfinite,
                   .err = err,
                   .build = 1,
                   .nodes = nodes,
                   .node = block,
                   .strs = (char *)block + node_bytes};
    ps->p = ps->start;
    int ok = parse_document(ps) && ps->placed + 1 == nodes && ps->held == 0;
    free(ps);
    if (!ok) {
        free(block);
        return sdc_fail(err, SDC_E_FORMAT, "JSON: internal error: second pass disagrees");
    }
    *root = block;
    return SDC_OK;
}

sdc_status sdc_json_parse(const char *buf, size_t len, sdc_json **root, sdc_error *err) {
    return sdc_json_parse_ex(buf, len, NULL, root, err);
}

void sdc_json_free(sdc_json *root) {
    free(root); /* the root is the start of the single block */
}

sdc_status sdc_json_load_file(const char *path, sdc_json **root, sdc_error *err) {
    *root = NULL;
    /* O_NONBLOCK: opening a FIFO must not hang; it is refused below as not a regular file. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return sdc_fail(err, SDC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return sdc_fail(err, SDC_E_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return sdc_fail(err, SDC_E_IO, "%s: %s", path,
                        S_ISDIR(sb.st_mode) ? "is a directory" : "not a regular file");
    }
    if ((uint64_t)sb.st_size > SDC_JSON_MAX_FILE) {
        close(fd);
        return sdc_fail(err, SDC_E_LIMIT, "%s: %lld bytes, over the %u-byte limit for JSON files",
                        path, (long long)sb.st_size, SDC_JSON_MAX_FILE);
    }
    size_t size = (size_t)sb.st_size, got = 0;
    char *buf = malloc(size ? size : 1);
    if (!buf) {
        close(fd);
        return sdc_fail(err, SDC_E_NOMEM, "%s: out of memory for %zu bytes", path, size);
    }
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            int e = r < 0 ? errno : 0;
            close(fd);
            free(buf);
            return sdc_fail(err, SDC_E_IO, "%s: read failed: %s", path,
                            e ? strerror(e) : "file shrank while reading");
        }
        got += (size_t)r;
    }
    close(fd);
    sdc_error e = {0};
    sdc_json_opts opts = sdc_json_opts_default();
    opts.allow_nonfinite = 1;
    sdc_status st = sdc_json_parse_ex(buf, size, &opts, root, &e);
    free(buf);
    if (st != SDC_OK) return sdc_fail(err, st, "%s: %s", path, e.msg);
    return SDC_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Accessors                                                                                   */
/* ------------------------------------------------------------------------------------------ */

int sdc_json_is(const sdc_json *v, sdc_json_type t) {
    return v && v->type == t;
}

const char *sdc_json_type_name(const sdc_json *v) {
    static const char *const names[] = {"null", "boolean", "number", "string", "array", "object"};
    if (!v) return "missing";
    return v->type <= SDC_JSON_OBJECT ? names[v->type] : "invalid";
}

const sdc_json *sdc_json_get(const sdc_json *v, const char *key) {
    if (!v || v->type != SDC_JSON_OBJECT || !key) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < v->u.list.n; i++) {
        const sdc_json *m = &v->u.list.items[i];
        if (m->key_len == n && memcmp(m->key, key, n) == 0) return m;
    }
    return NULL;
}

const sdc_json *sdc_json_path(const sdc_json *v, ...) {
    va_list ap;
    va_start(ap, v);
    const char *key;
    while (v && (key = va_arg(ap, const char *)) != NULL) v = sdc_json_get(v, key);
    va_end(ap);
    return v;
}

size_t sdc_json_len(const sdc_json *v) {
    return v && (v->type == SDC_JSON_ARRAY || v->type == SDC_JSON_OBJECT) ? v->u.list.n : 0;
}

const sdc_json *sdc_json_at(const sdc_json *v, size_t i) {
    return i < sdc_json_len(v) ? &v->u.list.items[i] : NULL;
}

const char *sdc_json_string(const sdc_json *v) {
    return v && v->type == SDC_JSON_STRING ? v->u.str.s : NULL;
}

int sdc_json_number(const sdc_json *v, double *out) {
    if (!v || v->type != SDC_JSON_NUMBER) return 0;
    if (out) *out = v->u.num.d;
    return 1;
}

int sdc_json_int(const sdc_json *v, int64_t *out) {
    if (!v || v->type != SDC_JSON_NUMBER || !v->is_int) return 0;
    if (out) *out = v->u.num.i;
    return 1;
}

int sdc_json_ints(const sdc_json *v, int64_t *out, size_t cap, size_t *n) {
    if (!v || v->type != SDC_JSON_ARRAY || v->u.list.n > cap) return 0;
    for (size_t i = 0; i < v->u.list.n; i++)
        if (!sdc_json_int(&v->u.list.items[i], out ? &out[i] : NULL)) return 0;
    if (n) *n = v->u.list.n;
    return 1;
}

int sdc_json_doubles(const sdc_json *v, double *out, size_t cap, size_t *n) {
    if (!v || v->type != SDC_JSON_ARRAY || v->u.list.n > cap) return 0;
    for (size_t i = 0; i < v->u.list.n; i++)
        if (!sdc_json_number(&v->u.list.items[i], out ? &out[i] : NULL)) return 0;
    if (n) *n = v->u.list.n;
    return 1;
}
