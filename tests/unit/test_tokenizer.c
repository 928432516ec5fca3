/* tests/unit/test_tokenizer.c: the CLIP tokenizer (sdc_tokenize*, sdc_detokenize) and the tar
 * reader/writer (src/io/tar.h).
 *
 * - golden: all 30 prompts of testdata/tiny give exactly the ids of `tokenizer.ids` (transformers'
 *   slow CLIPTokenizer with ftfy: ASCII, accents, emoji, CJK, Korean, Cyrillic, fullwidth forms,
 *   curly quotes, HTML entities, ligatures, special tokens, zero-width space, truncation);
 * - A1111: every prompt fragment of testdata/a1111 tokenized raw gives the token sequence of
 *   webui's conditioning chunks (BOS/EOS/padding removed);
 * - more reference cases (ids from the same reference run in Python): HTML "auto" mode, entity
 *   loops, final sigma, NFC of decomposed text, Hangul jamo, ligatures, halfwidth katakana,
 *   terminal escapes, C1 controls, special tokens split or lowercased, U+0345, invalid UTF-8;
 * - round trip: the 73 id rows of Axera's text_encoder_calibration.tar (made by the HF tokenizer)
 *   decode to text that tokenizes back to the same 77 ids;
 * - edges: empty and blank prompts, truncation keeping EOS, raw counts beyond the cap, NULL and
 *   oversized arguments, detokenize of bad ids; the vocabulary loads in well under 100 ms;
 * - tar: writer -> reader round trip (long names split into prefix/name, empty member), and bad
 *   checksums, truncations at every length and random corruptions refused without a crash;
 * - the CLI: `sdc tokenize` prints the 77 ids as one JSON line, --raw the bare ids, and fails
 *   with one line without TEXT.
 */
#include "golden.h"
#include "io/json.h"
#include "io/npy.h"
#include "io/tar.h"
#include "sdc.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

static sdc_tokenizer *tok;

static size_t unhex(const char *hex, char *out, size_t cap) {
    size_t n = 0;
    for (; hex[0] && hex[1] && n + 1 < cap; hex += 2) {
        char b[3] = {hex[0], hex[1], 0};
        out[n++] = (char)strtoul(b, NULL, 16);
    }
    out[n] = '\0';
    return n;
}

static bool ids_equal(const int32_t *a, const int32_t *b, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

static void print_ids(const char *what, const int32_t *ids, size_t n) {
    fprintf(stderr, "  %s:", what);
    for (size_t i = 0; i < n; i++) fprintf(stderr, " %d", ids[i]);
    fprintf(stderr, "\n");
}

/* ---- golden prompts of testdata/tiny ---------------------------------------------------- */

static void test_golden(void) {
    sdc_json *man = NULL;
    sdc_error e = {0};
    CHECK(sdc_json_load_file(TINY_DIR "/manifest.json", &man, &e) == SDC_OK, "manifest: %s", e.msg);
    const sdc_json *prompts = sdc_json_path(man, "tokenizer", "prompts", NULL);
    sdc_st_file *g = golden_open(TINY_DIR "/golden.safetensors");
    const sdc_st_tensor *ref = golden_tensor(g, "tokenizer.ids");
    size_t n = sdc_json_len(prompts), matched = 0;
    CHECK(ref->dtype == SDC_I64 && ref->ndim == 2 && ref->shape[1] == 77 && (size_t)ref->shape[0] == n && n == 30,
          "tokenizer.ids is not [30, 77] int64 matching the manifest's %zu prompts", n);
    for (size_t i = 0; i < n && (int64_t)i < ref->shape[0]; i++) {
        const sdc_json *p = sdc_json_at(prompts, i);
        char text[4096];
        unhex(sdc_json_string(sdc_json_get(p, "prompt_utf8_hex")), text, sizeof text);
        int32_t ids[77], want[77], json_ids[77];
        int64_t v, untrunc = -1;
        for (int k = 0; k < 77; k++) {
            memcpy(&v, (const unsigned char *)ref->data + 8 * (i * 77 + (size_t)k), 8);
            want[k] = (int32_t)v;
            sdc_json_int(sdc_json_at(sdc_json_get(p, "ids"), (size_t)k), &v);
            json_ids[k] = (int32_t)v;
        }
        sdc_json_int(sdc_json_get(p, "n_tokens_untruncated"), &untrunc);
        char err[256] = "";
        size_t raw_n = 0;
        bool ok = sdc_tokenize(tok, text, ids, err, sizeof err) == SDC_OK && ids_equal(ids, want, 77) &&
                  ids_equal(want, json_ids, 77) &&
                  sdc_tokenize_raw(tok, text, NULL, 0, &raw_n, err, sizeof err) == SDC_OK &&
                  (int64_t)raw_n + 2 == untrunc;
        matched += ok;
        CHECK(ok, "golden prompt %zu \"%s\" differs (%s; raw count %zu, reference %lld)", i, text, err, raw_n,
              (long long)untrunc);
        if (!ok) print_ids("got ", ids, 77), print_ids("want", want, 77);
    }
    printf("  tokenizer golden: %zu/%zu prompts match tokenizer.ids exactly\n", matched, n);
    sdc_st_close(g);
    sdc_json_free(man);
}

/* ---- A1111 conditioning: fragments tokenized raw, as webui's tokenize_line does ---------- */

static void test_a1111(void) {
    sdc_json *man = NULL;
    sdc_error e = {0};
    CHECK(sdc_json_load_file(A1111_DIR "/manifest.json", &man, &e) == SDC_OK, "a1111 manifest: %s", e.msg);
    const sdc_json *prompts = sdc_json_path(man, "conditioning", "prompts", NULL);
    size_t n = sdc_json_len(prompts), matched = 0;
    CHECK(n >= 10, "a1111 manifest: %zu conditioning prompts", n);
    for (size_t i = 0; i < n; i++) {
        const sdc_json *p = sdc_json_at(prompts, i), *parsed = sdc_json_get(p, "parsed");
        int32_t got[2048], want[2048];
        size_t ng = 0, nw = 0;
        bool ok = sdc_json_len(parsed) > 0;
        for (size_t f = 0; ok && f < sdc_json_len(parsed); f++) {
            const char *frag = sdc_json_string(sdc_json_at(sdc_json_at(parsed, f), 0));
            double w = 0;
            sdc_json_number(sdc_json_at(sdc_json_at(parsed, f), 1), &w);
            if (!frag) ok = false;
            else if (w == -1 && !strcmp(frag, "BREAK")) continue; /* a chunk break, not text */
            size_t k = 0;
            size_t room = sizeof got / sizeof got[0] - ng;
            ok = ok && sdc_tokenize_raw(tok, frag, got + ng, room, &k, NULL, 0) == SDC_OK && k <= room;
            ng += k;
        }
        const sdc_json *chunks = sdc_json_get(p, "chunk_tokens");
        for (size_t c = 0; c < sdc_json_len(chunks); c++) {
            const sdc_json *row = sdc_json_at(chunks, c);
            for (size_t k = 0; k < sdc_json_len(row) && nw < sizeof want / sizeof want[0]; k++) {
                int64_t v = 0;
                sdc_json_int(sdc_json_at(row, k), &v);
                if (v != SDC_CLIP_BOS && v != SDC_CLIP_EOS) want[nw++] = (int32_t)v;
            }
        }
        ok = ok && ng == nw && ids_equal(got, want, nw);
        matched += ok;
        CHECK(ok, "a1111 prompt '%s': %zu tokens, webui has %zu", sdc_json_string(sdc_json_get(p, "key")), ng, nw);
    }
    printf("  a1111 conditioning: %zu/%zu prompts give webui's tokens\n", matched, n);
    sdc_json_free(man);
}

/* ---- more cases, ids from the Python reference (ftfy 6.1.1 + CLIPTokenizer's code) ---------- */

static void test_reference_cases(void) {
    static const struct {
        const char *text;
        int32_t ids[32];
        int n;
    } cases[] = {
        /* a literal '<' turns HTML unescaping off for the segment ("auto"); &#59; would give ';' */
        {"<b>&amp;</b> &amp;amp; &#x41;&#59;",
         {283, 321, 29, 261, 6259, 26, 34308, 321, 285, 261, 6259, 282, 6259, 282, 5, 258, 343, 275, 272, 26, 5, 258,
          276, 280, 282}, 25},
        /* without '<': unescaped until nothing changes; "&#59;" stays as written; &nbsp; is a space */
        {"&amp;amp; &#x41;&#59; &nbsp;x", {261, 320, 5, 258, 276, 280, 282, 343}, 8},
        /* str.lower(): final sigma */
        {"\xce\x9f\xce\x94\xce\x9f\xce\xa3 \xce\xa3\xce\x91\xce\xa3 \xce\xa3",
         {138, 123, 138, 112, 138, 123, 139, 480, 139, 225, 138, 109, 139, 480, 139, 481}, 16},
        /* NFC of "cafe\u0301", Hangul jamo, U+0130 lowercased to "i\u0307" */
        {"cafe\xcc\x81 \xe1\x84\x80\xe1\x85\xa1\xe1\x86\xa8 \xc4\xb0stanbul",
         {15304, 21122, 479, 328, 16384, 11231}, 6},
        /* ligatures, halfwidth katakana with voiced mark, curly quotes, U+02BC */
        {"\xef\xac\x83 \xc4\xb2 \xef\xbd\xb6\xef\xbe\x9e \xe2\x80\x9cq\xe2\x80\x9d \xca\xbcn",
         {1021, 328, 72, 329, 3909, 361, 257, 336, 257, 262, 333}, 11},
        /* terminal escapes removed, C1 controls as windows-1252 (U+0085 -> ellipsis, U+0091/2 -> quotes) */
        {"\x1b[31mred\x1b[0m \xc2\x85x \xc2\x91y\xc2\x92", {736, 959, 343, 262, 344, 262}, 6},
        /* special tokens: split first, and matched again after lower() */
        {"!<|endoftext|>x <|ENDOFTEXT|> &lt;|endoftext|&gt;",
         {256, 49407, 343, 49407, 261, 3333, 26, 347, 40786, 4160, 91, 261, 4725, 282}, 14},
        /* IGNORECASE: 'ſ matches 's; U+0345 is in no class of the pattern and is skipped */
        {"'\xc5\xbf 'S x\xcd\x85y", {6, 129, 379, 568, 343, 344}, 6},
        /* canonical reordering, singletons (U+212B, U+2126) */
        {"e\xcc\x81\xcc\xa3 \xe2\x84\xab \xe2\x84\xa6", {157, 118, 373, 136, 479, 127, 354, 38065}, 8},
        /* invalid UTF-8: one U+FFFD per maximal ill-formed subpart, as bytes.decode(errors="replace") */
        {"\xff\xfe abc \xe4\xb8 \xed\xa0\x80", {47356, 39802, 5334, 39802, 47356, 47356, 39802}, 7},
    };
    int matched = 0, total = (int)(sizeof cases / sizeof cases[0]);
    for (int i = 0; i < total; i++) {
        int32_t ids[64];
        size_t n = 0;
        char err[256] = "";
        bool ok = sdc_tokenize_raw(tok, cases[i].text, ids, 64, &n, err, sizeof err) == SDC_OK &&
                  n == (size_t)cases[i].n && ids_equal(ids, cases[i].ids, n);
        matched += ok;
        CHECK(ok, "reference case %d differs (%s)", i, err);
        if (!ok) print_ids("got ", ids, n < 64 ? n : 64), print_ids("want", cases[i].ids, (size_t)cases[i].n);
    }
    printf("  reference edge cases: %d/%d match\n", matched, total);
}

/* Texts that must tokenize alike (each rule checked against a plain spelling). */
static void test_equivalences(void) {
    static const char *const pairs[][2] = {
        {"&amp;amp;", "&"},                   /* the fix loop unescapes until nothing changes */
        {"caf\xc3\xa9", "cafe\xcc\x81"},      /* NFC */
        {"\xef\xbd\x86\xef\xbd\x95\xef\xbd\x8c\xef\xbd\x8c", "full"}, /* fullwidth */
        {"\xef\xac\x81ne", "fine"},           /* ligature */
        {"\xe2\x80\x98q\xe2\x80\x99", "'q'"}, /* curly quotes */
        {"a\xe3\x80\x80" "b\t\n c", "a b c"}, /* ideographic space, whitespace runs */
        {"\xce\xbf\xce\xb4\xce\xbf\xcf\x82", "\xce\x9f\xce\x94\xce\x9f\xce\xa3"}, /* final sigma */
        {"\xff", "\xef\xbf\xbd"},             /* invalid byte -> U+FFFD */
        {"a\x01\x7f" "b", "ab"},              /* control characters removed */
    };
    /* canonical ordering of a long run of marks (the counting-sort path): U+0316 (class 220)
     * moves before U+0301 (230), whichever order they were typed in */
    static char mixed[400], sorted[400];
    strcpy(mixed, "a");
    strcpy(sorted, "a");
    for (int k = 0; k < 40; k++) strcat(mixed, "\xcc\x81\xcc\x96");
    for (int k = 0; k < 40; k++) strcat(sorted, "\xcc\x96");
    for (int k = 0; k < 40; k++) strcat(sorted, "\xcc\x81");
    int32_t x[77], y[77];
    CHECK(sdc_tokenize(tok, mixed, x, NULL, 0) == SDC_OK && sdc_tokenize(tok, sorted, y, NULL, 0) == SDC_OK &&
              ids_equal(x, y, 77),
          "80 combining marks in two orders tokenize differently");
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        int32_t a[77], b[77];
        CHECK(sdc_tokenize(tok, pairs[i][0], a, NULL, 0) == SDC_OK &&
                  sdc_tokenize(tok, pairs[i][1], b, NULL, 0) == SDC_OK && ids_equal(a, b, 77),
              "equivalence %zu: \"%s\" and \"%s\" tokenize differently", i, pairs[i][0], pairs[i][1]);
    }
}

/* ---- edge cases --------------------------------------------------------------------------- */

static void test_edges(void) {
    int32_t ids[77];
    char err[256];
    const char *blanks[] = {"", "   ", "\t\n\r \xe3\x80\x80", "\x01\x02"};
    for (size_t b = 0; b < sizeof blanks / sizeof blanks[0]; b++) {
        CHECK(sdc_tokenize(tok, blanks[b], ids, err, sizeof err) == SDC_OK, "blank %zu: %s", b, err);
        bool ok = ids[0] == SDC_CLIP_BOS;
        for (int k = 1; k < 77; k++) ok = ok && ids[k] == SDC_CLIP_EOS;
        CHECK(ok, "blank prompt %zu is not BOS then EOS x76", b);
    }

    char longtext[1000] = "";
    for (int k = 0; k < 100; k++) strcat(longtext, "cat ");
    CHECK(sdc_tokenize(tok, longtext, ids, err, sizeof err) == SDC_OK, "100 cats: %s", err);
    bool ok = ids[0] == SDC_CLIP_BOS && ids[76] == SDC_CLIP_EOS;
    for (int k = 1; k <= 75; k++) ok = ok && ids[k] == 2368;
    CHECK(ok, "100 cats: not BOS, 75 x cat, EOS");

    int32_t raw[10];
    size_t n = 0;
    CHECK(sdc_tokenize_raw(tok, longtext, raw, 10, &n, err, sizeof err) == SDC_OK && n == 100, "raw count %zu", n);
    ok = true;
    for (int k = 0; k < 10; k++) ok = ok && raw[k] == 2368;
    CHECK(ok, "raw ids beyond the cap were not cut at 10");
    CHECK(sdc_tokenize_raw(tok, "a photo of a cat", NULL, 0, &n, NULL, 0) == SDC_OK && n == 5, "count only: %zu", n);

    CHECK(sdc_tokenize(tok, NULL, ids, err, sizeof err) == SDC_E_INVALID_ARG && strstr(err, "NULL"), "NULL: %s", err);
    CHECK(sdc_tokenize(NULL, "x", ids, err, sizeof err) == SDC_E_INVALID_ARG, "NULL tokenizer accepted");
    CHECK(sdc_tokenize_raw(tok, "x", NULL, 4, &n, err, sizeof err) == SDC_E_INVALID_ARG, "NULL ids, cap 4 accepted");
    CHECK(sdc_tokenize_raw(tok, "x", raw, 4, NULL, err, sizeof err) == SDC_E_INVALID_ARG, "NULL n accepted");
    size_t big = (1u << 20) + 1;
    char *huge = malloc(big + 1);
    memset(huge, 'a', big);
    huge[big] = '\0';
    CHECK(sdc_tokenize(tok, huge, ids, err, sizeof err) == SDC_E_LIMIT && strstr(err, "limit"), "1 MiB + 1: %s", err);
    huge[big - 1] = '\0'; /* exactly at the limit: one long word, accepted */
    CHECK(sdc_tokenize_raw(tok, huge, NULL, 0, &n, err, sizeof err) == SDC_OK && n > 0, "1 MiB text: %s", err);
    free(huge);

    int32_t cat[] = {SDC_CLIP_BOS, 320, 1125, 539, 320, 2368, SDC_CLIP_EOS, SDC_CLIP_EOS};
    char *s = sdc_detokenize(tok, cat, 8);
    CHECK(s && !strcmp(s, "a photo of a cat"), "detokenize: '%s'", s ? s : "(null)");
    free(s);
    s = sdc_detokenize(tok, NULL, 0);
    CHECK(s && !strcmp(s, ""), "detokenize of nothing is not an empty string");
    free(s);
    int32_t bad[] = {320, 49408};
    CHECK(sdc_detokenize(tok, bad, 2) == NULL, "an id past the vocabulary decoded");
    bad[1] = -1;
    CHECK(sdc_detokenize(tok, bad, 2) == NULL, "a negative id decoded");
    int32_t half[] = {19759}; /* "ä¸": the first two bytes of a CJK character */
    s = sdc_detokenize(tok, half, 1);
    CHECK(s && !strcmp(s, "\xef\xbf\xbd"), "a cut UTF-8 sequence does not decode to U+FFFD: '%s'", s ? s : "(null)");
    free(s);
}

/* ---- the calibration tar: decode, re-tokenize -------------------------------------------- */

static void test_roundtrip(void) {
    sdc_tar tar;
    sdc_error e = {0};
    const char *path = SDC_SHARED_DIR "/models/axera-sd15-lcm-calib/text_encoder_calibration.tar";
    CHECK(sdc_tar_open(path, &tar, &e) == SDC_OK, "%s", e.msg);
    sdc_tar_member m;
    bool has;
    int rows = 0, same = 0;
    sdc_status st;
    while ((st = sdc_tar_next(&tar, &m, &has, &e)) == SDC_OK && has) {
        if (m.type != '0') continue;
        sdc_npy a;
        CHECK(sdc_npy_parse_f32(m.data, (size_t)m.size, m.name, &a, &e) == SDC_OK, "%s", e.msg);
        if (e.code) continue;
        rows++;
        int32_t ids[77], back[77];
        bool ok = a.numel == 77;
        for (int k = 0; ok && k < 77; k++) ids[k] = (int32_t)a.data[k];
        sdc_npy_free(&a);
        char *text = ok ? sdc_detokenize(tok, ids, 77) : NULL;
        ok = text && sdc_tokenize(tok, text, back, NULL, 0) == SDC_OK && ids_equal(ids, back, 77);
        same += ok;
        CHECK(ok, "%s: '%s' does not tokenize back to its ids", m.name, text ? text : "(null)");
        if (rows == 1) printf("  %s decodes to \"%s\"\n", m.name, text ? text : "(null)");
        free(text);
    }
    CHECK(st == SDC_OK, "%s", e.msg);
    sdc_tar_close(&tar);
    printf("  calibration tar round trip: %d/%d rows decode and re-tokenize to the same 77 ids\n", same, rows);
    CHECK(rows == 73 && same == 73, "expected 73/73, got %d/%d", same, rows);
}

/* ---- tar ---------------------------------------------------------------------------------- */

static unsigned char *make_archive(size_t *len) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    sdc_tar_writer w;
    sdc_tar_writer_init(&w, f, "mem.tar");
    sdc_error e = {0};
    char longname[200];
    memset(longname, 'd', 120);
    strcpy(longname + 120, "/input_0.npy");
    CHECK(sdc_tar_write_member(&w, "a.bin", "hello", 5, &e) == SDC_OK, "%s", e.msg);
    CHECK(sdc_tar_write_member(&w, "empty", NULL, 0, &e) == SDC_OK, "%s", e.msg);
    CHECK(sdc_tar_write_member(&w, longname, "0123456789", 10, &e) == SDC_OK, "%s", e.msg);
    char toolong[300];
    memset(toolong, 'x', 299);
    toolong[299] = '\0';
    CHECK(sdc_tar_write_member(&w, toolong, "x", 1, &e) == SDC_E_LIMIT, "a 299-byte name without '/' was written");
    CHECK(sdc_tar_writer_finish(&w, &e) == SDC_OK, "%s", e.msg);
    fclose(f);
    *len = n;
    return (unsigned char *)buf;
}

/* Reads every member; returns the status and counts the members. */
static sdc_status read_all_members(const unsigned char *buf, size_t len, int *count, sdc_error *e) {
    sdc_tar t;
    sdc_tar_open_memory(&t, buf, len, "mem.tar");
    sdc_tar_member m;
    bool has;
    sdc_status st;
    *count = 0;
    while ((st = sdc_tar_next(&t, &m, &has, e)) == SDC_OK && has) {
        (*count)++;
        if (m.size) CHECK(m.data >= buf && m.data + m.size <= buf + len, "member data outside the buffer");
    }
    return st;
}

/* A header block as old and other tar writers make them: GNU magic, or a pax/'L' extension. */
static void raw_header(unsigned char *h, const char *name, char type, size_t size, bool gnu) {
    memset(h, 0, 512);
    memcpy(h, name, strlen(name));
    memcpy(h + 100, "0000644", 7);
    snprintf((char *)h + 124, 12, "%011o", (unsigned)size);
    h[156] = (unsigned char)type;
    memcpy(h + 257, gnu ? "ustar  " : "ustar\0" "00", 8);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
}

static void test_tar_extensions(void) {
    static unsigned char a[512 * 8];
    const char *pax = "31 path=dir/very/long/name.npy\n", *longname = "gnu/long/name.npy";
    raw_header(a, "PaxHeader", 'x', strlen(pax), false);
    memcpy(a + 512, pax, strlen(pax));
    raw_header(a + 1024, "short", '0', 3, false);
    memcpy(a + 1536, "abc", 3);
    raw_header(a + 2048, "././@LongLink", 'L', strlen(longname) + 1, true);
    memcpy(a + 2560, longname, strlen(longname) + 1);
    raw_header(a + 3072, "gnu/long/na", '0', 0, true);
    sdc_tar t;
    sdc_tar_open_memory(&t, a, sizeof a, "ext.tar");
    sdc_tar_member m;
    bool has;
    sdc_error e = {0};
    CHECK(sdc_tar_next(&t, &m, &has, &e) == SDC_OK && has && !strcmp(m.name, "dir/very/long/name.npy") &&
              m.size == 3 && !memcmp(m.data, "abc", 3),
          "pax path: '%s' %s", has ? m.name : "", e.msg);
    CHECK(sdc_tar_next(&t, &m, &has, &e) == SDC_OK && has && !strcmp(m.name, longname) && m.size == 0,
          "GNU long name: '%s' %s", has ? m.name : "", e.msg);
    CHECK(sdc_tar_next(&t, &m, &has, &e) == SDC_OK && !has, "no end after two members: %s", e.msg);
    raw_header(a + 1024, "short", '0', 3, false);
    memcpy(a + 512, "32", 2); /* a pax record whose length is wrong */
    sdc_tar_open_memory(&t, a, sizeof a, "ext.tar");
    CHECK(sdc_tar_next(&t, &m, &has, &e) == SDC_E_FORMAT && strstr(e.msg, "pax"), "bad pax record: %s", e.msg);
    CHECK(sdc_tar_next(&t, &m, &has, &e) == SDC_E_FORMAT, "reading went on after an error");
}

static void test_tar(void) {
    size_t len;
    unsigned char *buf = make_archive(&len);
    CHECK(len == 512 * 7, "archive of 3 members is %zu bytes, expected 3584", len);
    sdc_tar t;
    sdc_tar_open_memory(&t, buf, len, "mem.tar");
    sdc_tar_member m;
    bool has;
    sdc_error e = {0};
    const char *names[3] = {"a.bin", "empty", NULL};
    size_t sizes[3] = {5, 0, 10};
    int k = 0;
    while (sdc_tar_next(&t, &m, &has, &e) == SDC_OK && has && k < 3) {
        bool ok = m.type == '0' && m.size == sizes[k] && m.mode == 0644;
        if (names[k]) ok = ok && !strcmp(m.name, names[k]);
        else ok = ok && strlen(m.name) == 132 && !strcmp(m.name + 120, "/input_0.npy") &&
                  !memcmp(m.data, "0123456789", 10);
        CHECK(ok, "member %d read back wrong ('%s', %llu bytes)", k, m.name, (unsigned long long)m.size);
        k++;
    }
    CHECK(k == 3 && !has, "read %d members", k);

    unsigned char *c = malloc(len);
    memcpy(c, buf, len);
    c[0] ^= 1; /* name byte: checksum no longer matches */
    int count;
    sdc_status st = read_all_members(c, len, &count, &e);
    CHECK(st == SDC_E_FORMAT && strstr(e.msg, "checksum") && strstr(e.msg, "mem.tar"), "corrupt header: %s", e.msg);
    memcpy(c, buf, len);
    memcpy(c + 124, "0000000999x", 11); /* size field not octal */
    CHECK(read_all_members(c, len, &count, &e) == SDC_E_FORMAT, "bad size field accepted");
    CHECK(read_all_members(buf, 512 + 3, &count, &e) == SDC_E_FORMAT && strstr(e.msg, "truncated"),
          "truncated data: %s", e.msg);
    CHECK(read_all_members((const unsigned char *)"not a tar archive at all", 24, &count, &e) == SDC_E_FORMAT,
          "garbage accepted");
    /* every truncation: either the members before the cut, or a clean format error */
    int refused = 0;
    for (size_t cut = 0; cut <= len; cut++) {
        st = read_all_members(buf, cut, &count, &e);
        CHECK(st == SDC_OK || st == SDC_E_FORMAT, "cut at %zu: status %d", cut, st);
        refused += st != SDC_OK;
    }
    printf("  tar: %d of %zu truncations refused, the rest read as shorter archives\n", refused, len + 1);
    /* random corruptions never crash and never point outside the buffer */
    uint32_t rng = 12345;
    for (int trial = 0; trial < 2000; trial++) {
        memcpy(c, buf, len);
        for (int f = 0; f < 4; f++) {
            rng = rng * 1664525u + 1013904223u;
            c[(rng >> 8) % len] = (unsigned char)(rng >> 24);
        }
        st = read_all_members(c, len, &count, &e);
        CHECK(st == SDC_OK || st == SDC_E_FORMAT || st == SDC_E_LIMIT, "corruption %d: status %d", trial, st);
    }
    free(c);
    free(buf);
}

/* ---- the CLI: sdc tokenize -------------------------------------------------------------- */

static void test_cli(void) {
    char out[4096] = "", want[1024] = "[49406, 320, 1125, 539, 320, 2368";
    for (int k = 6; k < 77; k++) strcat(want, ", 49407");
    strcat(want, "]\n");
    FILE *p = popen("'" SDC_EXE "' tokenize 'A photo of a CAT'", "r");
    size_t n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = '\0';
    CHECK(p && pclose(p) == 0 && !strcmp(out, want), "sdc tokenize printed '%s'", out);
    p = popen("'" SDC_EXE "' tokenize --raw 'a photo of a cat'", "r");
    n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = '\0';
    CHECK(p && pclose(p) == 0 && !strcmp(out, "[320, 1125, 539, 320, 2368]\n"), "--raw printed '%s'", out);
    p = popen("'" SDC_EXE "' tokenize 2>&1", "r");
    n = p ? fread(out, 1, sizeof out - 1, p) : 0;
    out[n] = '\0';
    int rc = p ? pclose(p) : -1, lines = 0;
    for (char *c = out; *c; c++) lines += *c == '\n';
    CHECK(rc != 0 && strstr(out, "sdc tokenize: no TEXT") && lines == 1, "sdc tokenize without TEXT: status %d, '%s'",
          rc, out);
}

int main(void) {
    char err[256];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    sdc_status st = sdc_tokenizer_new(&tok, err, sizeof err);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
    CHECK(st == SDC_OK, "sdc_tokenizer_new: %s", err);
    if (st != SDC_OK) TEST_MAIN_END();
    printf("  tokenizer init (inflate + hash tables): %.1f ms\n", ms);
    CHECK(ms < 500, "tokenizer init took %.1f ms", ms); /* ~11 ms optimised; sanitizers are slower */

    test_golden();
    test_a1111();
    test_reference_cases();
    test_equivalences();
    test_edges();
    test_roundtrip();
    test_tar();
    test_tar_extensions();
    test_cli();
    sdc_tokenizer_free(tok);
    sdc_tokenizer_free(NULL);
    TEST_MAIN_END();
}
