/* tests/unit/test_extra_networks.c: webui's <TYPE:ARGS> tag extraction (src/prompt/extra_networks.h).
 * Expected values are what re.sub(r"<(\w+):([^>]+)>", ...) and ExtraNetworkParams give in
 * Python 3 for the same strings (worked out by hand from the regex; each case says why). */
#include "test.h"

#include "prompt/extra_networks.h"

typedef struct tcase {
    const char *in, *prompt;
    int n;                  /* tags found */
    const char *type0;      /* first tag's type and its items joined with '|' */
    const char *items0;
} tcase;

static void join(const sdc_extra_network *n, char *buf, size_t cap) {
    buf[0] = '\0';
    for (size_t i = 0; i < n->n_items; i++) {
        if (i) strncat(buf, "|", cap - strlen(buf) - 1);
        strncat(buf, n->items[i], cap - strlen(buf) - 1);
    }
}

static void test_parse(void) {
    static const tcase cases[] = {
        {"a cat <lora:film:0.8>, night", "a cat , night", 1, "lora", "film|0.8"},
        {"<lora:foo>", "", 1, "lora", "foo"},                         /* one argument */
        {"<lora:>", "<lora:>", 0, NULL, NULL},                        /* [^>]+ needs a character */
        {"<:x>", "<:x>", 0, NULL, NULL},                              /* \w+ needs a character */
        {"<lo ra:x>", "<lo ra:x>", 0, NULL, NULL},                    /* a space is not \w */
        {"<hypernet:x:1><lora:a:1:0.5>", "", 2, "hypernet", "x|1"},
        {"(<lora:a:1>:1.2)", "(:1.2)", 1, "lora", "a|1"},
        {"<lora:a<b:1>", "", 1, "lora", "a<b|1"},                     /* '<' is allowed in the arguments */
        {"<<lora:a:1>>", "<>", 1, "lora", "a|1"},                     /* the first '<' fails, the second matches */
        {"x <lora:a:1", "x <lora:a:1", 0, NULL, NULL},                /* no closing '>' */
        {"<lora:a\nb:1>", "", 1, "lora", "a\nb|1"},                   /* [^>] spans newlines */
        {"<l\xc3\xb6ra_2:x>", "", 1, "l\xc3\xb6ra_2", "x"},          /* Unicode \w: o-umlaut */
        {"<a\xe2\x80\x94" "b:x>", "<a\xe2\x80\x94" "b:x>", 0, NULL, NULL},  /* an em dash is not \w */
        {"<lora:a::b:>", "", 1, "lora", "a||b|"},                     /* empty items kept */
        {"<lora:a:te=0.2:unet=0.9> BREAK b", " BREAK b", 1, "lora", "a|te=0.2|unet=0.9"},
        {"no tags [a:b:0.5] (c:1.1)", "no tags [a:b:0.5] (c:1.1)", 0, NULL, NULL},
        {"<\xff:x>", "<\xff:x>", 0, NULL, NULL},                       /* invalid UTF-8 is not \w */
        {"", "", 0, NULL, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const tcase *c = &cases[i];
        sdc_extra_networks x;
        sdc_error e = {0};
        CHECK(sdc_extra_networks_parse(c->in, &x, &e) == SDC_OK, "case %zu: %s", i, e.msg);
        CHECK(!strcmp(x.prompt, c->prompt), "case %zu: prompt '%s', expected '%s'", i, x.prompt, c->prompt);
        CHECK((int)x.n == c->n, "case %zu: %zu tags, expected %d", i, x.n, c->n);
        if (c->n && x.n) {
            char items[256];
            join(&x.v[0], items, sizeof items);
            CHECK(!strcmp(x.v[0].type, c->type0) && !strcmp(items, c->items0), "case %zu: <%s:%s>, expected <%s:%s>", i,
                  x.v[0].type, items, c->type0, c->items0);
        }
        sdc_extra_networks_free(&x);
    }
}

typedef struct lcase {
    const char *tag;
    const char *name;
    float te, unet;
    int ok;
} lcase;

static void test_lora_args(void) {
    static const lcase cases[] = {
        {"<lora:film>", "film", 1.0f, 1.0f, 1},
        {"<lora:film:0.8>", "film", 0.8f, 0.8f, 1},
        {"<lora:film:0.5:1.5>", "film", 0.5f, 1.5f, 1},
        {"<lora:film:te=0.2>", "film", 0.2f, 0.2f, 1},          /* UNET defaults to TE after te= */
        {"<lora:film:1:unet=0>", "film", 1.0f, 0.0f, 1},
        {"<lora:film:unet=0.3:0.7>", "film", 0.7f, 0.3f, 1},    /* named items do not count as positions */
        {"<lora:film: 0.25 >", "film", 0.25f, 0.25f, 1},        /* float() strips whitespace */
        {"<lora:film:-1e-1>", "film", -0.1f, -0.1f, 1},
        {"<lora:film:0.5:1:8>", "film", 0.5f, 1.0f, 1},         /* dyn (4th) is not used */
        {"<lora:film:abc>", NULL, 0, 0, 0},
        {"<lora:film:nan>", NULL, 0, 0, 0},
        {"<lora:film:1:inf>", NULL, 0, 0, 0},
        {"<lora:film:0x10>", NULL, 0, 0, 0},
        {"<lora:film:>", NULL, 0, 0, 0},                         /* float('') fails */
        {"<lora::1>", NULL, 0, 0, 0},                            /* no name */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const lcase *c = &cases[i];
        sdc_extra_networks x;
        sdc_error e = {0};
        if (sdc_extra_networks_parse(c->tag, &x, &e) != SDC_OK || x.n != 1) {
            CHECK(0, "%s: not one tag", c->tag);
            sdc_extra_networks_free(&x);
            continue;
        }
        sdc_lora_tag t;
        sdc_status s = sdc_extra_network_lora(&x.v[0], &t, &e);
        if (c->ok)
            CHECK(s == SDC_OK && !strcmp(t.name, c->name) && t.te == c->te && t.unet == c->unet,
                  "%s -> %s %g %g (%s)", c->tag, s == SDC_OK ? t.name : "?", (double)t.te, (double)t.unet, e.msg);
        else
            CHECK(s == SDC_E_INVALID_ARG && e.msg[0] && !strchr(e.msg, '\n'), "%s should be refused (%s)", c->tag, e.msg);
        sdc_extra_networks_free(&x);
    }
    sdc_extra_networks x;
    sdc_error e = {0};
    CHECK(sdc_extra_networks_parse("<lora:a:te=1:te=2>", &x, &e) == SDC_OK && x.n == 1 &&
              !strcmp(sdc_extra_network_named(&x.v[0], "te"), "2") && !sdc_extra_network_positional(&x.v[0], 1),
          "a repeated named argument: the last wins");
    sdc_extra_networks_free(&x);
    sdc_extra_networks_free(NULL);
}

static void test_limits(void) {
    size_t n = (1u << 20) + 1;
    char *big = malloc(n + 1);
    memset(big, '<', n);
    big[n] = '\0';
    sdc_extra_networks x;
    sdc_error e = {0};
    CHECK(sdc_extra_networks_parse(big, &x, &e) == SDC_E_LIMIT && !x.prompt, "an oversized prompt is refused: %s", e.msg);
    big[n - 1] = '\0'; /* 1 MB of '<': no match anywhere, linear time */
    CHECK(sdc_extra_networks_parse(big, &x, &e) == SDC_OK && x.n == 0 && strlen(x.prompt) == n - 1, "many '<'");
    sdc_extra_networks_free(&x);
    for (size_t i = 0; i + 3 <= n - 1; i += 3) memcpy(big + i, "<a:", 3); /* unterminated tags: linear too */
    CHECK(sdc_extra_networks_parse(big, &x, &e) == SDC_OK && x.n == 0, "many unterminated tags");
    sdc_extra_networks_free(&x);
    free(big);
}

int main(void) {
    test_parse();
    test_lora_args();
    test_limits();
    TEST_MAIN_END();
}
