/* tests/unit/test_json.c: the strict JSON parser (src/io/json.h).
 *
 * Checks: values of every type and exact int64s; DOM structure by re-serialising canonical
 * documents; \u escapes and surrogate pairs; a list of malformed inputs that must each give
 * SDC_E_FORMAT (or SDC_E_LIMIT) with a one-line message; depth and memory limits; line/column
 * in messages; random mutations (no crash); and the two golden manifests from ../shared. */
#include "io/json.h"
#include "test.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static sdc_json *parse_ok(const char *s) {
    sdc_json *root = NULL;
    sdc_error err = {0};
    sdc_status st = sdc_json_parse(s, strlen(s), &root, &err);
    CHECK(st == SDC_OK && root, "parse '%s': %s", s, err.msg);
    return root;
}

/* Re-serialises v compactly (numbers as their int64 or %.17g), for structure checks. */
static void dump(const sdc_json *v, char *out, size_t cap, size_t *n) {
#define OUT(...) (*n += (size_t)snprintf(out + *n, *n < cap ? cap - *n : 0, __VA_ARGS__))
    switch (v->type) {
    case SDC_JSON_NULL: OUT("null"); break;
    case SDC_JSON_BOOL: OUT(v->boolean ? "true" : "false"); break;
    case SDC_JSON_NUMBER:
        if (v->is_int)
            OUT("%lld", (long long)v->u.num.i);
        else
            OUT("%.17g", v->u.num.d);
        break;
    case SDC_JSON_STRING: OUT("\"%s\"", v->u.str.s); break;
    case SDC_JSON_ARRAY:
    case SDC_JSON_OBJECT:
        OUT(v->type == SDC_JSON_ARRAY ? "[" : "{");
        for (size_t i = 0; i < sdc_json_len(v); i++) {
            const sdc_json *c = sdc_json_at(v, i);
            if (i) OUT(",");
            if (v->type == SDC_JSON_OBJECT) OUT("\"%s\":", c->key);
            dump(c, out, cap, n);
        }
        OUT(v->type == SDC_JSON_ARRAY ? "]" : "}");
        break;
    }
#undef OUT
}

static void test_roundtrip(void) {
    static const char *const docs[] = {
        "null",
        "true",
        "false",
        "0",
        "-7",
        "\"\"",
        "\"abc\"",
        "[]",
        "{}",
        "[[]]",
        "[{}]",
        "{\"a\":[]}",
        "[1,2,3]",
        "{\"b\":1,\"a\":2,\"b\":3}",
        "{\"x\":{\"y\":{\"z\":[1,[2,[3,{}]],{\"w\":null}]}},\"v\":[true,false]}",
        "[[1,2],[3,4],[],[[5]],{\"k\":[6,{\"j\":7}]},8]",
        "{\"tensors\":{\"t.a\":{\"dtype\":\"F32\",\"shape\":[30,77]}},\"n\":983}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++) {
        sdc_json *r = parse_ok(docs[i]);
        if (!r) continue;
        char out[512];
        size_t n = 0;
        dump(r, out, sizeof out, &n);
        CHECK(strcmp(out, docs[i]) == 0, "round trip: '%s' became '%s'", docs[i], out);
        sdc_json_free(r);
    }
    /* whitespace of all four kinds is ignored */
    sdc_json *r = parse_ok(" \t\r\n{ \"a\" : [ 1 , 2 ] ,\n\"b\":{ } } \n");
    char out[128];
    size_t n = 0;
    if (r) dump(r, out, sizeof out, &n);
    CHECK(r && strcmp(out, "{\"a\":[1,2],\"b\":{}}") == 0, "whitespace: '%s'", r ? out : "");
    sdc_json_free(r);
}

static void test_values(void) {
    sdc_json *r = parse_ok("{\"i\":9223372036854775807,\"m\":-9223372036854775808,"
                           "\"big\":9223372036854775808,\"f\":1.5e3,\"g\":-0.25,\"e\":2E-2,"
                           "\"z\":-0,\"t\":true,\"n\":null,\"s\":\"x\",\"a\":[1,2,3]}");
    if (!r) return;
    int64_t i;
    double d;
    CHECK(sdc_json_int(sdc_json_get(r, "i"), &i) && i == INT64_MAX, "int64 max");
    CHECK(sdc_json_int(sdc_json_get(r, "m"), &i) && i == INT64_MIN, "int64 min");
    CHECK(!sdc_json_int(sdc_json_get(r, "big"), &i), "2^63 is not an exact int64");
    CHECK(sdc_json_number(sdc_json_get(r, "big"), &d) && d == 9223372036854775808.0, "2^63 double");
    CHECK(!sdc_json_int(sdc_json_get(r, "f"), NULL), "1.5e3 is not an integer literal");
    CHECK(sdc_json_number(sdc_json_get(r, "f"), &d) && d == 1500.0, "1.5e3 = %g", d);
    CHECK(sdc_json_number(sdc_json_get(r, "g"), &d) && d == -0.25, "-0.25 = %g", d);
    CHECK(sdc_json_number(sdc_json_get(r, "e"), &d) && d == 0.02, "2E-2 = %g", d);
    CHECK(sdc_json_int(sdc_json_get(r, "z"), &i) && i == 0, "-0 is the integer 0");
    CHECK(sdc_json_is(sdc_json_get(r, "t"), SDC_JSON_BOOL) && sdc_json_get(r, "t")->boolean,
          "true");
    CHECK(sdc_json_is(sdc_json_get(r, "n"), SDC_JSON_NULL), "null");
    CHECK(sdc_json_string(sdc_json_get(r, "s")) &&
              !strcmp(sdc_json_string(sdc_json_get(r, "s")), "x"),
          "string");
    CHECK(sdc_json_get(r, "missing") == NULL && sdc_json_get(NULL, "a") == NULL, "absent key");
    CHECK(sdc_json_string(sdc_json_get(r, "i")) == NULL, "number is not a string");
    int64_t v[4];
    size_t nv = 0;
    CHECK(sdc_json_ints(sdc_json_get(r, "a"), v, 4, &nv) && nv == 3 && v[2] == 3, "ints");
    CHECK(!sdc_json_ints(sdc_json_get(r, "a"), v, 2, &nv), "ints over capacity");
    CHECK(sdc_json_len(r) == 11 && !strcmp(sdc_json_at(r, 3)->key, "f"), "members in order");
    CHECK(sdc_json_at(r, 11) == NULL && sdc_json_len(sdc_json_get(r, "s")) == 0, "bounds");
    CHECK(!strcmp(sdc_json_type_name(sdc_json_get(r, "a")), "array"), "type name");
    sdc_json_free(r);
}

/* NaN/Infinity only with allow_nonfinite (as Python's json.dump writes them) */
static void test_nonfinite(void) {
    const char *s = "[NaN,Infinity,-Infinity,-1]";
    sdc_json *r = NULL;
    sdc_error err = {0};
    CHECK(sdc_json_parse(s, strlen(s), &r, &err) == SDC_E_FORMAT && !r, "strict refuses NaN");
    sdc_json_opts o = sdc_json_opts_default();
    o.allow_nonfinite = 1;
    CHECK(sdc_json_parse_ex(s, strlen(s), &o, &r, &err) == SDC_OK, "nonfinite: %s", err.msg);
    double d[4];
    size_t n = 0;
    CHECK(sdc_json_doubles(r, d, 4, &n) && n == 4 && isnan(d[0]) && d[1] == INFINITY &&
              d[2] == -INFINITY && d[3] == -1 && !sdc_json_int(sdc_json_at(r, 0), NULL),
          "NaN, Infinity, -Infinity values");
    sdc_json_free(r);
    CHECK(sdc_json_parse_ex("-Inf", 4, &o, &r, &err) == SDC_E_FORMAT, "-Inf is not a literal");
}

static void test_strings(void) {
    /* escapes, a BMP character, a surrogate pair (U+1F600) and raw UTF-8 (é) */
    const char *s =
        "[\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\", \"\\u00e9\\u20AC\\ud83d\\ude00\", \"\xc3\xa9\","
        " \"x\\u0000y\"]";
    sdc_json *r = parse_ok(s);
    if (!r) return;
    CHECK(!strcmp(sdc_json_string(sdc_json_at(r, 0)), "a\"\\/\b\f\n\r\t"), "simple escapes");
    CHECK(!strcmp(sdc_json_string(sdc_json_at(r, 1)), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
          "\\u escapes to UTF-8");
    CHECK(!strcmp(sdc_json_string(sdc_json_at(r, 2)), "\xc3\xa9"), "raw UTF-8 kept");
    const sdc_json *nul = sdc_json_at(r, 3);
    CHECK(nul->u.str.len == 3 && !memcmp(nul->u.str.s, "x\0y", 4), "\\u0000 keeps its length");
    sdc_json_free(r);

    /* sdc_json_escape output parses back to the same bytes */
    const char raw[] = "q\"b\\s\x01\x1f\n\xe2\x82\xac";
    char esc[128];
    size_t n = sdc_json_escape(esc, raw, sizeof raw - 1);
    CHECK(n == sdc_json_escape(NULL, raw, sizeof raw - 1), "escape measures what it writes");
    sdc_json *e = NULL;
    sdc_error err = {0};
    CHECK(sdc_json_parse(esc, n, &e, &err) == SDC_OK && e->u.str.len == sizeof raw - 1 &&
              !memcmp(e->u.str.s, raw, sizeof raw - 1),
          "escape round trip: %s", err.msg);
    sdc_json_free(e);
    CHECK(sdc_json_utf8_valid("\xf0\x9f\x98\x80", 4) && !sdc_json_utf8_valid("\xed\xa0\x80", 3) &&
              !sdc_json_utf8_valid("\xc0\xaf", 2) && !sdc_json_utf8_valid("\xe2\x82", 2),
          "utf8_valid");
}

/* Each input must fail with `code`; the message must be one line and contain `want`. */
static void expect_fail(const char *s, size_t len, sdc_status code, const char *want) {
    sdc_json *r = (sdc_json *)1;
    sdc_error err = {0};
    sdc_status st = sdc_json_parse(s, len, &r, &err);
    CHECK(st == code && r == NULL, "'%.*s' gave status %d (want %d), root %p", (int)len, s, st,
          code, (void *)r);
    CHECK(err.code == st && !strchr(err.msg, '\n') && err.msg[0], "one-line message: '%s'",
          err.msg);
    CHECK(!want || strstr(err.msg, want), "'%.*s': message '%s' lacks '%s'", (int)len, s, err.msg,
          want);
}
#define BAD(lit, want) expect_fail(lit, sizeof lit - 1, SDC_E_FORMAT, want)

static void test_malformed(void) {
    BAD("", "end of input");
    BAD("   ", "end of input");
    BAD("[1,]", "expected a value");
    BAD("{\"a\":1,}", "expected a string key");
    BAD("[1 2]", "expected ',' or ']'");
    BAD("{\"a\" 1}", "expected ':'");
    BAD("{1:2}", "string key");
    BAD("{\"a\":1", "expected ',' or '}'");
    BAD("[", "end of input");
    BAD("01", "leading zero");
    BAD("-", "expected a digit");
    BAD("1.", "decimal point");
    BAD(".5", "expected a value");
    BAD("+1", "expected a value");
    BAD("1e", "exponent");
    BAD("1e400", "out of the range");
    BAD("NaN", NULL);
    BAD("Infinity", NULL);
    BAD("tru", NULL);
    BAD("nul", NULL);
    BAD("'a'", NULL);
    BAD("[1] x", "after the value");
    BAD("{} {}", "after the value");
    BAD("// c\n1", NULL);
    BAD("\xef\xbb\xbf{}", "byte 0xef"); /* byte-order mark */
    BAD("\"abc", "unterminated");
    BAD("\"a\nb\"", "control character");
    BAD("\"a\tb\"", "control character");
    BAD("\"\\x\"", "invalid escape");
    BAD("\"\\u12\"", "4 hex digits");
    BAD("\"\\ud800\"", "high surrogate");
    BAD("\"\\ud800\\u0041\"", "high surrogate");
    BAD("\"\\udc00\"", "lone low surrogate");
    BAD("\"\xc0\xaf\"", "invalid UTF-8");         /* overlong '/' */
    BAD("\"\xed\xa0\x80\"", "invalid UTF-8");     /* encoded surrogate */
    BAD("\"\xf4\x90\x80\x80\"", "invalid UTF-8"); /* past U+10FFFF */
    BAD("\"\xe2\x82\"", "invalid UTF-8");         /* truncated */
    BAD("\"\xff\"", "invalid UTF-8");
    expect_fail("[1,\0]", 5, SDC_E_FORMAT, "byte 0x00");

    /* line and column of the failure */
    BAD("{\n  \"a\": x}", "line 2, column 8");

    /* a too-long number literal is a limit, not a crash */
    char num[700];
    memset(num, '1', sizeof num);
    expect_fail(num, sizeof num, SDC_E_LIMIT, "longer than");
}

static void test_limits(void) {
    /* depth: 64 nested arrays parse, 65 do not; 100000 fail fast without recursion */
    static char deep[100000 * 2];
    for (int i = 0; i < 64; i++) deep[i] = '[', deep[64 + i] = ']';
    sdc_json *r = NULL;
    sdc_error err = {0};
    CHECK(sdc_json_parse(deep, 128, &r, &err) == SDC_OK, "depth 64: %s", err.msg);
    const sdc_json *v = r;
    int depth = 0;
    while (sdc_json_len(v)) v = sdc_json_at(v, 0), depth++;
    CHECK(depth == 63, "depth walked %d", depth);
    sdc_json_free(r);
    memset(deep, '[', 100000);
    memset(deep + 100000, ']', 100000);
    expect_fail(deep, 130, SDC_E_LIMIT, "deeper than 64");
    expect_fail(deep, sizeof deep, SDC_E_LIMIT, "deeper than 64");
    sdc_json_opts lim = {.max_depth = 3};
    CHECK(sdc_json_parse_ex("[[[1]]]", 7, &lim, &r, &err) == SDC_OK, "depth 3 with limit 3");
    sdc_json_free(r);
    CHECK(sdc_json_parse_ex("[[[[1]]]]", 9, &lim, &r, &err) == SDC_E_LIMIT && !r, "depth 4 > 3");
    lim.max_depth = 0;
    CHECK(sdc_json_parse_ex("1", 1, &lim, &r, &err) == SDC_E_INVALID_ARG, "bad max_depth");

    /* memory: [0,0,...] of 10000 values needs 10001 nodes; a 64 KB limit refuses it */
    size_t n = 10000;
    char *arr = malloc(2 * n + 1);
    arr[0] = '[';
    for (size_t i = 0; i < n; i++) arr[1 + 2 * i] = '0', arr[2 + 2 * i] = ',';
    arr[2 * n] = ']';
    lim = (sdc_json_opts){.max_depth = 8, .max_memory = 64 << 10};
    CHECK(sdc_json_parse_ex(arr, 2 * n + 1, &lim, &r, &err) == SDC_E_LIMIT && !r &&
              strstr(err.msg, "10001 values"),
          "memory limit: %s", err.msg);
    lim.max_memory = 10001 * sizeof(sdc_json);
    CHECK(sdc_json_parse_ex(arr, 2 * n + 1, &lim, &r, &err) == SDC_OK && sdc_json_len(r) == n,
          "exact memory limit: %s", err.msg);
    sdc_json_free(r);
    free(arr);
}

/* A big nested document: every element must land in the right place (the held/placed layout). */
static void test_large(void) {
    size_t cap = 4 << 20, n = 0;
    char *s = malloc(cap);
    n += (size_t)snprintf(s + n, cap - n, "{");
    for (int i = 0; i < 3000; i++)
        n += (size_t)snprintf(s + n, cap - n, "%s\"k%d\":[%d,{\"v\":[%d,%d]},[],\"s%d\"]",
                              i ? "," : "", i, i, 2 * i, 3 * i, i);
    n += (size_t)snprintf(s + n, cap - n, "}");
    sdc_json *r = NULL;
    sdc_error err = {0};
    CHECK(sdc_json_parse(s, n, &r, &err) == SDC_OK, "large: %s", err.msg);
    int bad = 0;
    for (int i = 0; r && i < 3000; i++) {
        char key[32], str[32];
        snprintf(key, sizeof key, "k%d", i);
        snprintf(str, sizeof str, "s%d", i);
        const sdc_json *m = sdc_json_at(r, (size_t)i);
        int64_t a, b, c;
        const sdc_json *vv = sdc_json_get(sdc_json_at(m, 1), "v");
        if (strcmp(m->key, key) || !sdc_json_int(sdc_json_at(m, 0), &a) || a != i ||
            !sdc_json_int(sdc_json_at(vv, 0), &b) || b != 2 * i ||
            !sdc_json_int(sdc_json_at(vv, 1), &c) || c != 3 * i ||
            sdc_json_len(sdc_json_at(m, 2)) != 0 || strcmp(sdc_json_string(sdc_json_at(m, 3)), str))
            bad++;
    }
    CHECK(r && sdc_json_len(r) == 3000 && bad == 0, "large document: %d members wrong", bad);
    sdc_json_free(r);
    free(s);
}

/* Random byte mutations of a valid document: any outcome but a crash (run under ASan). */
static void test_mutations(void) {
    const char base[] =
        "{\"a\":[1,-2.5e3,true,null,\"\\u00e9\\ud83d\\ude00\"],\"b\":{\"c\":[[],{}]}}";
    char buf[sizeof base + 8];
    uint64_t x = 0x9e3779b97f4a7c15ull;
    int ok = 0, bad = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(buf, base, sizeof base);
        size_t len = sizeof base - 1;
        for (int k = 0; k < 3; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[x % len] = (char)(x >> 32);
        }
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (x % 4 == 0) len = (x >> 8) % len; /* truncate sometimes */
        sdc_json *r = NULL;
        sdc_error err = {0};
        if (sdc_json_parse(buf, len, &r, &err) == SDC_OK)
            ok++;
        else if (!r && !strchr(err.msg, '\n'))
            bad++;
        sdc_json_free(r);
    }
    printf("  mutations: %d parsed, %d refused\n", ok, bad);
    CHECK(ok + bad == 20000, "every mutation parsed or refused cleanly");
}

static void test_files(void) {
    sdc_json *m = NULL;
    sdc_error err = {0};
    CHECK(sdc_json_load_file(SDC_SHARED_DIR "/testdata/tiny/manifest.json", &m, &err) == SDC_OK,
          "tiny manifest: %s", err.msg);
    int64_t n = 0, dims[8];
    size_t nd = 0;
    CHECK(sdc_json_int(sdc_json_path(m, "model", "n_tensors", NULL), &n) && n == 983,
          "model.n_tensors = %lld", (long long)n);
    CHECK(
        sdc_json_ints(sdc_json_path(m, "tensors", "tokenizer.ids", "shape", NULL), dims, 8, &nd) &&
            nd == 2 && dims[0] == 30 && dims[1] == 77,
        "tokenizer.ids shape");
    CHECK(sdc_json_len(sdc_json_get(m, "tensors")) == 82, "82 tiny golden tensors");
    sdc_json_free(m);

    CHECK(sdc_json_load_file(SDC_SHARED_DIR "/testdata/a1111/manifest.json", &m, &err) == SDC_OK,
          "a1111 manifest: %s", err.msg);
    CHECK(sdc_json_len(sdc_json_get(m, "tensors")) == 369, "369 a1111 golden tensors");
    sdc_json_free(m);

    CHECK(sdc_json_load_file("/nonexistent/x.json", &m, &err) == SDC_E_IO && !m &&
              strstr(err.msg, "/nonexistent/x.json"),
          "missing file: %s", err.msg);
    CHECK(sdc_json_load_file("/tmp", &m, &err) == SDC_E_IO && strstr(err.msg, "directory"),
          "directory: %s", err.msg);
    char dir[] = "/tmp/sdc_json_XXXXXX", path[64];
    if (mkdtemp(dir)) {
        snprintf(path, sizeof path, "%s/bad.json", dir);
        FILE *f = fopen(path, "w");
        fputs("{\"a\":\n[1,2,]}", f);
        fclose(f);
        CHECK(sdc_json_load_file(path, &m, &err) == SDC_E_FORMAT && strstr(err.msg, path) &&
                  strstr(err.msg, "line 2, column 6"),
              "bad file: %s", err.msg);
        unlink(path);
        rmdir(dir);
    }
}

int main(void) {
    test_roundtrip();
    test_values();
    test_strings();
    test_nonfinite();
    test_malformed();
    test_limits();
    test_large();
    test_mutations();
    test_files();
    TEST_MAIN_END();
}
