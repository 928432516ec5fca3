/* A1111 prompt syntax (src/prompt/prompt_parse.h) against webui 1.10:
 *  - the 48 golden prompts of testdata/a1111/prompt_attention.json: parse_prompt_attention texts
 *    and weights bit for bit, the ValueError entries, the 20-step schedules, the AND split;
 *  - webui's own doctests of get_learned_conditioning_prompt_schedules (10 steps, hires, old);
 *  - Unicode classes, BREAK/AND corner cases, limits, pathological inputs (expected values from
 *    webui's Python functions run with lark);
 *  - the json.dumps formatting of floats against every float literal of the golden file;
 *  - the `sdc parse-prompt` command on every golden prompt. */
#include "golden.h"
#include "io/json.h"
#include "prompt/prompt_parse.h"

#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- JSON text of the results, as the reference script printed them ---- */

typedef struct sbuf {
    char *s;
    size_t n, cap;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->n + n + 1 > b->cap) {
        b->cap = (b->n + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}
static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_json_str(sbuf *b, const char *s, size_t len) {
    size_t n = sdc_prompt_json_string(NULL, s, len);
    char *t = malloc(n);
    sdc_prompt_json_string(t, s, len);
    sb_put(b, t, n);
    free(t);
}
static void sb_num(sbuf *b, double v, int is_int) {
    char t[32];
    if (is_int)
        snprintf(t, sizeof t, "%d", (int)v);
    else
        sdc_prompt_json_double(v, t);
    sb_str(b, t);
}

/* parse_prompt_attention as JSON, or "ERR" */
static char *parsed_json(const char *p) {
    sbuf b = {0};
    sdc_prompt_frags f;
    sdc_error e = {0};
    if (sdc_prompt_parse_attention(p, &f, &e) != SDC_OK) {
        sb_str(&b, "ERR");
        return b.s;
    }
    sb_str(&b, "[");
    for (size_t i = 0; i < f.n; i++) {
        sb_str(&b, i ? ", [" : "[");
        sb_json_str(&b, f.v[i].text, f.v[i].len);
        sb_str(&b, ", ");
        sb_num(&b, f.v[i].weight, f.v[i].weight_is_int);
        sb_str(&b, "]");
    }
    sb_str(&b, "]");
    sdc_prompt_frags_free(&f);
    return b.s;
}

static char *sched_json(const char *p, int steps, int hires, int old) {
    sbuf b = {0};
    sdc_prompt_schedule s;
    sdc_error e = {0};
    if (sdc_prompt_schedule_get(p, steps, hires, old, &s, &e) != SDC_OK) {
        sb_str(&b, "ERR");
        return b.s;
    }
    sb_str(&b, "[");
    for (size_t i = 0; i < s.n; i++) {
        char t[32];
        snprintf(t, sizeof t, "%s[%d, ", i ? ", " : "", s.v[i].end_at_step);
        sb_str(&b, t);
        sb_json_str(&b, s.v[i].text, strlen(s.v[i].text));
        sb_str(&b, "]");
    }
    sb_str(&b, "]");
    sdc_prompt_schedule_free(&s);
    return b.s;
}

static char *and_json(const char *p) {
    sbuf b = {0};
    sdc_prompt_and a;
    sdc_error e = {0};
    if (sdc_prompt_split_and(p, &a, &e) != SDC_OK) {
        sb_str(&b, "ERR");
        return b.s;
    }
    sb_str(&b, "{\"subprompts\": [");
    for (size_t i = 0; i < a.n_texts; i++) {
        if (i) sb_str(&b, ", ");
        sb_json_str(&b, a.texts[i], strlen(a.texts[i]));
    }
    sb_str(&b, "], \"indexes_weights\": [");
    for (size_t i = 0; i < a.n_parts; i++) {
        char t[32];
        snprintf(t, sizeof t, "%s[%d, ", i ? ", " : "", a.parts[i].index);
        sb_str(&b, t);
        sb_num(&b, a.parts[i].weight, 0);
        sb_str(&b, "]");
    }
    sb_str(&b, "]}");
    sdc_prompt_and_free(&a);
    return b.s;
}

#define EXPECT_JSON(got_expr, want, what)                                                                              \
    do {                                                                                                               \
        char *g_ = (got_expr);                                                                                         \
        CHECK(g_ &&strcmp(g_, (want)) == 0, "%s: got %s\n    want %s", (what), g_, (want));                            \
        free(g_);                                                                                                      \
    } while (0)

/* ---- golden prompts ---- */

static void check_golden(const sdc_json *g, int *n_err) {
    const char *p = sdc_json_string(sdc_json_get(g, "prompt"));
    const sdc_json *parsed = sdc_json_get(g, "parsed");
    sdc_prompt_frags f;
    sdc_error e = {0};
    sdc_status s = sdc_prompt_parse_attention(p, &f, &e);
    if (sdc_json_is(parsed, SDC_JSON_NULL)) {
        (*n_err)++;
        CHECK(s == SDC_E_INVALID_ARG && strstr(e.msg, "1.2.3") && !strchr(e.msg, '\n'),
              "%s: webui raises ValueError; got status %d '%s'", p, s, e.msg);
        if (s == SDC_OK) sdc_prompt_frags_free(&f);
    } else {
        CHECK(s == SDC_OK, "%s: %s", p, e.msg);
        if (s == SDC_OK) {
            size_t n = sdc_json_len(parsed);
            CHECK(f.n == n, "%s: %zu fragments, golden %zu", p, f.n, n);
            for (size_t i = 0; i < n && i < f.n; i++) {
                const sdc_json *pair = sdc_json_at(parsed, i);
                const sdc_json *w = sdc_json_at(pair, 1);
                const char *t = sdc_json_string(sdc_json_at(pair, 0));
                double wd = 0;
                sdc_json_number(w, &wd);
                CHECK(t && strlen(t) == f.v[i].len && !memcmp(t, f.v[i].text, f.v[i].len),
                      "%s: fragment %zu text '%s' vs '%s'", p, i, f.v[i].text, t);
                CHECK(memcmp(&wd, &f.v[i].weight, sizeof wd) == 0, "%s: fragment %zu weight %.17g vs golden %.17g", p,
                      i, f.v[i].weight, wd);
                CHECK(f.v[i].weight_is_int == w->is_int, "%s: fragment %zu int-ness", p, i);
            }
            sdc_prompt_frags_free(&f);
        }
    }
    /* schedules for 20 steps */
    const sdc_json *sch = sdc_json_get(g, "schedules_steps20");
    sdc_prompt_schedule sc;
    CHECK(sdc_prompt_schedule_get(p, 20, 0, 0, &sc, &e) == SDC_OK, "%s: schedule: %s", p, e.msg);
    CHECK(sc.n == sdc_json_len(sch), "%s: %zu schedule entries, golden %zu", p, sc.n, sdc_json_len(sch));
    for (size_t i = 0; i < sc.n && i < sdc_json_len(sch); i++) {
        int64_t step = -1;
        sdc_json_int(sdc_json_at(sdc_json_at(sch, i), 0), &step);
        const char *t = sdc_json_string(sdc_json_at(sdc_json_at(sch, i), 1));
        CHECK(sc.v[i].end_at_step == step && t && !strcmp(t, sc.v[i].text),
              "%s: schedule %zu: [%d, '%s'] vs [%lld, '%s']", p, i, sc.v[i].end_at_step, sc.v[i].text, (long long)step,
              t);
    }
    sdc_prompt_schedule_free(&sc);
    /* AND split */
    const sdc_json *as = sdc_json_get(g, "and_split");
    const sdc_json *subs = sdc_json_get(as, "subprompts"), *iw = sdc_json_get(as, "indexes_weights");
    sdc_prompt_and a;
    CHECK(sdc_prompt_split_and(p, &a, &e) == SDC_OK, "%s: AND: %s", p, e.msg);
    CHECK(a.n_texts == sdc_json_len(subs) && a.n_parts == sdc_json_len(iw), "%s: AND counts %zu/%zu", p, a.n_texts,
          a.n_parts);
    for (size_t i = 0; i < a.n_texts && i < sdc_json_len(subs); i++)
        CHECK(!strcmp(a.texts[i], sdc_json_string(sdc_json_at(subs, i))), "%s: AND text %zu '%s'", p, i, a.texts[i]);
    for (size_t i = 0; i < a.n_parts && i < sdc_json_len(iw); i++) {
        int64_t idx;
        double w;
        sdc_json_int(sdc_json_at(sdc_json_at(iw, i), 0), &idx);
        sdc_json_number(sdc_json_at(sdc_json_at(iw, i), 1), &w);
        CHECK(a.parts[i].index == idx && a.parts[i].weight == w, "%s: AND part %zu", p, i);
    }
    sdc_prompt_and_free(&a);
}

/* Every float literal of the golden file (Python's json.dumps output) printed back the same. */
static void check_float_literals(void) {
    FILE *fp = fopen(A1111_DIR "/prompt_attention.json", "r");
    CHECK(fp != NULL, "open prompt_attention.json");
    if (!fp) return;
    char line[4096];
    int n = 0, bad = 0;
    while (fgets(line, sizeof line, fp)) {
        char *s = line;
        while (*s == ' ') s++;
        size_t len = strcspn(s, ",\n");
        s[len] = 0;
        char *end;
        double v = strtod(s, &end);
        if (!len || *end || (!strchr(s, '.') && !strchr(s, 'e'))) continue; /* not a float literal */
        char buf[32];
        sdc_prompt_json_double(v, buf);
        n++;
        if (strcmp(buf, s)) bad++, fprintf(stderr, "  float %s printed as %s\n", s, buf);
    }
    fclose(fp);
    printf("  %d float literals of the golden file re-printed, %d differ\n", n, bad);
    CHECK(n > 50 && bad == 0, "float formatting");
}

static void check_float_format(void) {
    static const struct {
        double v;
        const char *s;
    } cases[] = {{1.0, "1.0"},
                 {2.0, "2.0"},
                 {-1.0, "-1.0"},
                 {1.1, "1.1"},
                 {1.3310000000000004, "1.3310000000000004"},
                 {0.9090909090909091, "0.9090909090909091"},
                 {0.1 + 0.2, "0.30000000000000004"},
                 {0.0001, "0.0001"},
                 {0.00001, "1e-05"},
                 {1.5e-05, "1.5e-05"},
                 {1e16, "1e+16"},
                 {1234567890123456.0, "1234567890123456.0"},
                 {12345678901234567.0, "1.2345678901234568e+16"},
                 {1e22, "1e+22"},
                 {5e-324, "5e-324"},
                 {-0.0, "-0.0"},
                 {0.0, "0.0"},
                 {123.456, "123.456"},
                 {100.0, "100.0"},
                 {1e100, "1e+100"},
                 {-2.5e-300, "-2.5e-300"},
                 {INFINITY, "Infinity"},
                 {-INFINITY, "-Infinity"},
                 {NAN, "NaN"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char b[32];
        sdc_prompt_json_double(cases[i].v, b);
        CHECK(!strcmp(b, cases[i].s), "repr(%.17g): got %s, want %s", cases[i].v, b, cases[i].s);
    }
    const char in[] = "a\"b\\c\n\t\x01\x7f\xc3\xa9\xf0\x9f\x98\x80\xff/";
    char out[128];
    size_t n = sdc_prompt_json_string(out, in, sizeof in - 1);
    out[n] = 0;
    CHECK(!strcmp(out, "\"a\\\"b\\\\c\\n\\t\\u0001\\u007f\\u00e9\\ud83d\\ude00\\ufffd/\""), "json string: %s", out);
}

/* ---- webui's doctests and further cases checked against webui's Python ---- */

static void check_schedules(void) {
    static const struct {
        const char *p;
        int steps, hires, old;
        const char *want;
    } cases[] = {
        {"test", 10, 0, 0, "[[10, \"test\"]]"},
        {"a [b:3]", 10, 0, 0, "[[3, \"a \"], [10, \"a b\"]]"},
        {"a [b: 3]", 10, 0, 0, "[[3, \"a \"], [10, \"a b\"]]"},
        {"a [[[b]]:2]", 10, 0, 0, "[[2, \"a \"], [10, \"a [[b]]\"]]"},
        {"[(a:2):3]", 10, 0, 0, "[[3, \"\"], [10, \"(a:2)\"]]"},
        {"a [b : c : 1] d", 10, 0, 0, "[[1, \"a b  d\"], [10, \"a  c  d\"]]"},
        {"a[b:[c:d:2]:1]e", 10, 0, 0, "[[1, \"abe\"], [2, \"ace\"], [10, \"ade\"]]"},
        {"a [unbalanced", 10, 0, 0, "[[10, \"a [unbalanced\"]]"},
        {"a [b:.5] c", 10, 0, 0, "[[5, \"a  c\"], [10, \"a b c\"]]"},
        {"((a][:b:c [d:3]", 10, 0, 0, "[[3, \"((a][:b:c \"], [10, \"((a][:b:c d\"]]"},
        {"[a|(b:1.1)]", 4, 0, 0, "[[1, \"a\"], [2, \"(b:1.1)\"], [3, \"a\"], [4, \"(b:1.1)\"]]"},
        {"[fe|]male", 4, 0, 0, "[[1, \"female\"], [2, \"male\"], [3, \"female\"], [4, \"male\"]]"},
        {"[fe|||]male", 5, 0, 0, "[[1, \"female\"], [2, \"male\"], [3, \"male\"], [4, \"male\"], [5, \"female\"]]"},
        {"a [b:.5] c", 10, 10, 0, "[[10, \"a b c\"]]"},
        {"a [b:1.5] c", 10, 10, 0, "[[5, \"a  c\"], [10, \"a b c\"]]"},
        {"a [b:3.0] c", 10, 0, 1, "[[3, \"a  c\"], [10, \"a b c\"]]"},
        {"a [b:3.0] c", 10, 0, 0, "[[10, \"a  c\"]]"},
        {"a [b:0.5] c", 10, 0, 1, "[[5, \"a  c\"], [10, \"a b c\"]]"},
        /* the example of webui's source comment, 100 steps */
        {"fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75][ in foreground::0.6]"
         "[ in background:0.25] [shoddy:masterful:0.5]",
         100, 0, 0,
         "[[25, \"fantasy landscape with a mountain and an oak in foreground shoddy\"], "
         "[50, \"fantasy landscape with a lake and an oak in foreground in background shoddy\"], "
         "[60, \"fantasy landscape with a lake and an oak in foreground in background masterful\"], "
         "[75, \"fantasy landscape with a lake and an oak in background masterful\"], "
         "[100, \"fantasy landscape with a lake and a christmas tree in background masterful\"]]"},
        /* parse errors (LarkError): the prompt as is */
        {"a|b [c:2]", 10, 0, 0, "[[10, \"a|b [c:2]\"]]"},
        {"a [c:2] \\", 10, 0, 0, "[[10, \"a [c:2] \\\\\"]]"},
        {"[a:b:1e300]", 10, 0, 0, "[[10, \"a\"]]"},
        {"[a:b:-5] [c:d:5e-1]", 10, 0, 0, "[[10, \"b d\"]]"},
        {"\\[a:3] [b\\]:4]", 10, 0, 0, "[[4, \"\\\\[a:3] \"], [10, \"\\\\[a:3] b\\\\]\"]]"},
        {"[a: +2e0 ] [b:c:1.e-1]", 10, 0, 0, "[[1, \" b\"], [2, \" c\"], [10, \"a c\"]]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[160];
        snprintf(what, sizeof what, "schedule '%s' steps %d hires %d old %d", cases[i].p, cases[i].steps,
                 cases[i].hires, cases[i].old);
        EXPECT_JSON(sched_json(cases[i].p, cases[i].steps, cases[i].hires, cases[i].old), cases[i].want, what);
    }
    sdc_prompt_schedule s;
    sdc_error e = {0};
    CHECK(sdc_prompt_schedule_get("[a:b:1e999]", 10, 0, 0, &s, &e) == SDC_E_INVALID_ARG && strstr(e.msg, "1e999"),
          "webui's int(inf) OverflowError is an error: %s", e.msg);
    CHECK(sdc_prompt_schedule_get("a", 0, 0, 0, &s, &e) == SDC_E_INVALID_ARG, "0 steps refused");
    CHECK(s.n == 0 && s.v == NULL, "failed schedule is empty");
}

static void check_extras(void) {
    static const struct {
        const char *p, *parsed, *and_split;
    } cases[] = {
        {"(BREAK)", "[[\"\", 1.1], [\"BREAK\", -1.1], [\"\", 1.1]]", NULL},
        {"(a:-1)BREAK", "[[\"a\", -1.0], [\"\", 1.0], [\"BREAK\", -1], [\"\", 1.0]]", NULL},
        {"a BREAK\n\nBREAK b", "[[\"a\", 1.0], [\"BREAK\", -1], [\"\", 1.0], [\"BREAK\", -1], [\"b\", 1.0]]", NULL},
        {"\\(BREAK\\)", "[[\"(\", 1.0], [\"BREAK\", -1], [\")\", 1.0]]", NULL},
        {"(a:+)", "[[\"a:+\", 1.1]]", NULL},
        {"(a:abc)", "[[\"a:abc\", 1.1]]", NULL}, /* not a number: the colon is text (issue 5 item 7) */
        {"a:1.2.3) b", "[[\"a:1.2.3) b\", 1.0]]", NULL},
        {"(a: \xd9\xa1.\xd9\xa5 )", "[[\"a\", 1.5]]", NULL}, /* Arabic-Indic digits are \d for Python */
        {"(a:\xd9\xa1.\xd9\xa5) \xc3\xa9"
         "BREAK a\xe3\x80\x80"
         "BREAK\xe3\x80\x80"
         "b",
         "[[\"a\", 1.5], [\" \\u00e9BREAK a\", 1.0], [\"BREAK\", -1], [\"b\", 1.0]]", NULL},
        {"a\x1c"
         "BREAK\x1c"
         "b",
         "[[\"a\", 1.0], [\"BREAK\", -1], [\"b\", 1.0]]", NULL},
        {"a:1.5 AND b : -.5 AND c:1.2.3 AND d:", NULL,
         "{\"subprompts\": [\"a\", \" b\", \" c:1.2.3\", \" d:\"], \"indexes_weights\": [[0, 1.5], [1, -0.5], [2, "
         "1.0], [3, 1.0]]}"},
        {"aANDb AND c", NULL, "{\"subprompts\": [\"aANDb\", \" c\"], \"indexes_weights\": [[0, 1.0], [1, 1.0]]}"},
        {"\xc3\xa9"
         "AND b ANDx",
         NULL, "{\"subprompts\": [\"\\u00e9AND b ANDx\"], \"indexes_weights\": [[0, 1.0]]}"},
        {"[a:b:5]:0.5 AND c", NULL,
         "{\"subprompts\": [\"[a:b:5]\", \" c\"], \"indexes_weights\": [[0, 0.5], [1, 1.0]]}"},
        {"x AND y AND x:2", NULL,
         "{\"subprompts\": [\"x\", \" y\", \" x\"], \"indexes_weights\": [[0, 1.0], [1, 1.0], [2, 2.0]]}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char what[160];
        snprintf(what, sizeof what, "'%s'", cases[i].p);
        if (cases[i].parsed) EXPECT_JSON(parsed_json(cases[i].p), cases[i].parsed, what);
        if (cases[i].and_split) EXPECT_JSON(and_json(cases[i].p), cases[i].and_split, what);
    }
    /* ValueError cases, and where there is none */
    const char *bad[] = {"(a:1.2.3)", "(a:.)", "x ((a:1..5) b)", "(a:+.)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) EXPECT_JSON(parsed_json(bad[i]), "ERR", bad[i]);
    sdc_prompt_frags f;
    sdc_error e = {0};
    CHECK(sdc_prompt_parse_attention(NULL, &f, &e) == SDC_E_INVALID_ARG, "NULL prompt refused");
}

/* Size limits and inputs that would be slow or deep for a naive parser. */
static void check_limits(void) {
    size_t n = SDC_PROMPT_MAX_BYTES;
    char *p = malloc(n + 2);
    sdc_error e = {0};
    sdc_prompt_frags f;
    sdc_prompt_schedule s;
    sdc_prompt_and a;
    memset(p, 'a', n + 1);
    p[n + 1] = 0;
    CHECK(sdc_prompt_parse_attention(p, &f, &e) == SDC_E_LIMIT, "oversized prompt: parse");
    CHECK(sdc_prompt_schedule_get(p, 20, 0, 0, &s, &e) == SDC_E_LIMIT, "oversized prompt: schedule");
    CHECK(sdc_prompt_split_and(p, &a, &e) == SDC_E_LIMIT, "oversized prompt: AND");
    p[n] = 0;
    CHECK(sdc_prompt_parse_attention(p, &f, &e) == SDC_OK && f.n == 1 && f.v[0].len == n, "largest prompt parses");
    sdc_prompt_frags_free(&f);

    /* pathological shapes at the size limit: each must finish quickly */
    const char *units[] = {"(", "[", "(a)", "[a:", "[a|", "a AND ", "(a:1.1)[", "\\"};
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        size_t ul = strlen(units[u]), k = 0;
        for (; k + ul <= n; k += ul) memcpy(p + k, units[u], ul);
        p[k] = 0;
        clock_t t0 = clock();
        sdc_status s1 = sdc_prompt_parse_attention(p, &f, &e);
        if (s1 == SDC_OK) sdc_prompt_frags_free(&f);
        sdc_status s2 = sdc_prompt_schedule_get(p, 20, 0, 0, &s, &e);
        if (s2 == SDC_OK) sdc_prompt_schedule_free(&s);
        sdc_status s3 = sdc_prompt_split_and(p, &a, &e);
        if (s3 == SDC_OK) sdc_prompt_and_free(&a);
        double sec = (double)(clock() - t0) / CLOCKS_PER_SEC;
        printf("  %zu x '%s': parse %d, schedule %d, AND %d in %.3f s\n", k / ul, units[u], s1, s2, s3, sec);
        CHECK(s1 == SDC_OK && s2 == SDC_OK && s3 == SDC_OK && sec < 20, "pathological '%s'", units[u]);
    }
    /* well-formed nesting deeper than the limit: webui dies of RecursionError; here an error */
    size_t d = SDC_PROMPT_MAX_DEPTH + 10, k = 0;
    for (size_t i = 0; i < d; i++) p[k++] = '[';
    p[k++] = 'x';
    for (size_t i = 0; i < d; i++) p[k++] = ']';
    p[k] = 0;
    CHECK(sdc_prompt_schedule_get(p, 20, 0, 0, &s, &e) == SDC_E_LIMIT, "deep nesting: %s", e.msg);
    p[SDC_PROMPT_MAX_DEPTH - 10] = 0; /* 490 '[' only: literal, no recursion */
    CHECK(sdc_prompt_schedule_get(p, 20, 0, 0, &s, &e) == SDC_OK && s.n == 1, "unclosed brackets");
    sdc_prompt_schedule_free(&s);
    free(p);
}

/* ---- the command ---- */

/* Runs SDC_EXE with argv; captures stdout (and stderr). Returns the exit status. */
static int run_sdc(char *const argv[], sbuf *out, sbuf *err) {
    int po[2], pe[2];
    if (pipe(po) || pipe(pe)) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]), close(pe[0]), close(po[1]), close(pe[1]);
        execv(SDC_EXE, argv);
        _exit(127);
    }
    close(po[1]), close(pe[1]);
    char buf[4096];
    ssize_t r;
    while ((r = read(po[0], buf, sizeof buf)) > 0) sb_put(out, buf, (size_t)r);
    while ((r = read(pe[0], buf, sizeof buf)) > 0) sb_put(err, buf, (size_t)r);
    close(po[0]), close(pe[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void check_cli(const sdc_json *all) {
    int n_ok = 0;
    for (size_t i = 0; i < sdc_json_len(all); i++) {
        const char *p = sdc_json_string(sdc_json_get(sdc_json_at(all, i), "prompt"));
        char *want = parsed_json(p), *want_s = sched_json(p, 20, 0, 0), *want_a = and_json(p);
        char *a1[] = {"sdc", "parse-prompt", "--json", "--", (char *)p, NULL};
        char *a2[] = {"sdc", "parse-prompt", "--json", "--schedule", "20", "--", (char *)p, NULL};
        char *a3[] = {"sdc", "parse-prompt", "--and", "--json", "--", (char *)p, NULL};
        sbuf o1 = {0}, e1 = {0}, o2 = {0}, e2 = {0}, o3 = {0}, e3 = {0};
        int r1 = run_sdc(a1, &o1, &e1), r2 = run_sdc(a2, &o2, &e2), r3 = run_sdc(a3, &o3, &e3);
        if (!strcmp(want, "ERR")) {
            CHECK(r1 == 1 && !o1.s && e1.s && strchr(e1.s, '\n') == e1.s + e1.n - 1, "'%s': one error line, exit 1", p);
        } else {
            sb_put(&o1, "", 0), sb_put(&o2, "", 0), sb_put(&o3, "", 0);
            size_t wl = strlen(want);
            CHECK(r1 == 0 && o1.n == wl + 1 && !strncmp(o1.s, want, wl), "'%s': parse-prompt printed %s", p, o1.s);
            n_ok += r1 == 0;
        }
        CHECK(r2 == 0 && o2.s && !strncmp(o2.s, want_s, strlen(want_s)), "'%s': --schedule printed %s", p, o2.s);
        CHECK(r3 == 0 && o3.s && !strncmp(o3.s, want_a, strlen(want_a)), "'%s': --and printed %s", p, o3.s);
        free(want), free(want_s), free(want_a);
        free(o1.s), free(e1.s), free(o2.s), free(e2.s), free(o3.s), free(e3.s);
    }
    printf("  sdc parse-prompt --json: %d golden prompts printed as json.dumps does\n", n_ok);
    char *bad[] = {"sdc", "parse-prompt", "--schedule", "0", "a", NULL};
    sbuf o = {0}, e = {0};
    CHECK(run_sdc(bad, &o, &e) == 1 && e.s && strstr(e.s, "--schedule"), "bad --schedule refused");
    free(o.s), free(e.s);
}

int main(void) {
    sdc_json *root = NULL;
    sdc_error e = {0};
    if (sdc_json_load_file(A1111_DIR "/prompt_attention.json", &root, &e) != SDC_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    int n_err = 0;
    size_t n = sdc_json_len(root);
    for (size_t i = 0; i < n; i++) check_golden(sdc_json_at(root, i), &n_err);
    printf("  %zu golden prompts (%d ValueError) checked: parse, 20-step schedule, AND split\n", n, n_err);
    CHECK(n == 48 && n_err == 1, "golden file has 48 prompts, 1 error case");
    check_float_literals();
    check_float_format();
    check_schedules();
    check_extras();
    check_limits();
    check_cli(root);
    sdc_json_free(root);
    TEST_MAIN_END();
}
