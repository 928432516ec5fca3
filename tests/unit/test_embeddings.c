/* Textual-inversion embeddings (src/prompt/embeddings.h, conditioning.c) on the tiny model
 * (text width 64), with embedding files written by sdc_mkmodel_embedding into a scratch folder:
 *  - the database: which files count (extensions, empty files, subfolders), usable or not and
 *    why, vectors equal to the generator's values, shorthash = sha256 of the file;
 *  - tokenize_line: the N slots (id 0, the fragment weight) at the name's place, the fix offset,
 *    longest match, a move to the next chunk when the vectors do not fit, 75 vectors in a chunk of
 *    their own, webui's comma backtrack that leaves the fix behind;
 *  - the text encoder: from-rows input equals from-ids input; the conditioning equals the encoder
 *    run on hand-built rows (token rows with the vectors at rows 2..4); rows before the embedding
 *    equal those of the prompt without it (causal attention), a misplaced vector is detected;
 *  - refusals by name (768-wide, 80 vectors, a broken file) only when a prompt uses them;
 *  - webui's "TI hashes" string: first-use order, one forward's de-duplication, ':'/',' dropped,
 *    negative prompt first then each AND part prepending. */
#include "core/sha256.h"
#include "golden.h"
#include "model/mkmodel.h"
#include "pipeline/runner.h"
#include "prompt/conditioning.h"
#include "prompt/embeddings.h"

#include <sys/stat.h>
#include <unistd.h>

#define D 64

static sdc_model *model;
static sdc_tokenizer *tok;
static char dir[512];

static void mk(const char *name, int n, int width, sdc_dtype dt, uint64_t seed) {
    char p[700];
    sdc_error e = {0};
    snprintf(p, sizeof p, "%s/%s", dir, name);
    CHECK(sdc_mkmodel_embedding(p, n, width, dt, seed, &e) == SDC_OK, "write %s: %s", name, e.msg);
}

static void write_file(const char *name, const void *data, size_t n) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (f) fwrite(data, 1, n, f), fclose(f);
}

static int n_ids(const char *text, int32_t *ids) {
    size_t n = 0;
    char eb[256];
    sdc_tokenize_raw(tok, text, ids, 300, &n, eb, sizeof eb);
    return (int)n;
}

static const sdc_embedding *find(const sdc_embeddings *db, const char *name) {
    for (int i = 0; i < db->n; i++)
        if (!strcmp(db->v[i].name, name)) return &db->v[i];
    return NULL;
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}

/* Runs the text encoder (clip skip 1) on rows [1, 77, D]. */
static void encode_rows(const float *rows, float *z) {
    sdc_runner r;
    sdc_error e = {0};
    sdc_pool *pool = sdc_pool_new(2);
    CHECK(sdc_runner_clip(&r, model, 1, 1, SDC_RUNNER_CLIP_EMBEDS, &e) == SDC_OK, "embeds runner: %s", e.msg);
    memcpy(sdc_runner_input(&r, 0), rows, 77 * D * sizeof *rows);
    CHECK(sdc_runner_run(&r, pool, &e) == SDC_OK, "run: %s", e.msg);
    memcpy(z, sdc_runner_output(&r), 77 * D * sizeof *z);
    sdc_runner_free(&r);
    sdc_pool_free(pool);
}

static char *repeat_a(int n, const char *tail) {
    char *s = malloc((size_t)n * 2 + strlen(tail) + 1), *p = s;
    for (int i = 0; i < n; i++) *p++ = 'a', *p++ = ' ';
    strcpy(p, tail);
    return s;
}

int main(void) {
    model = golden_load_tiny();
    char eb[512];
    if (sdc_tokenizer_new(&tok, eb, sizeof eb) != SDC_OK) return fprintf(stderr, "%s\n", eb), 1;
    snprintf(dir, sizeof dir, "%s/test_embeddings.tmp", SDC_BINARY_DIR);
    const char *files[] = {"mystyle.pt", "concept.bin", "safe.safetensors", "wide.pt", "big.safetensors", "cat dog.pt",
                           "cat.safetensors", "a,b:c.pt", "sub/deep.PT", "broken.pt", "long75.pt", "empty.pt", "notes.txt"};
    char p[700];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) snprintf(p, sizeof p, "%s/%s", dir, files[i]), remove(p);
    snprintf(p, sizeof p, "%s/sub", dir);
    rmdir(p);
    rmdir(dir);
    mkdir(dir, 0777);
    mkdir(p, 0777);
    mk("mystyle.pt", 3, D, SDC_F32, 1);
    mk("concept.bin", 2, D, SDC_F32, 2);
    mk("safe.safetensors", 4, D, SDC_F16, 3);
    mk("wide.pt", 2, 768, SDC_F32, 4);
    mk("big.safetensors", 80, D, SDC_F32, 5);
    mk("cat dog.pt", 1, D, SDC_F32, 6);
    mk("cat.safetensors", 2, D, SDC_F32, 7);
    mk("a,b:c.pt", 1, D, SDC_F32, 8);
    mk("sub/deep.PT", 1, D, SDC_F16, 9);
    mk("long75.pt", 75, D, SDC_F32, 10);
    write_file("broken.pt", "PK\003\004 not really a zip", 22);
    write_file("empty.pt", "", 0);
    write_file("notes.txt", "mystyle: a style", 16);

    /* ---- the database ---- */
    sdc_error e = {0};
    sdc_embeddings *db = NULL;
    CHECK(sdc_embeddings_load(model, tok, dir, &db, eb, sizeof eb) == SDC_OK, "load: %s", eb);
    if (!db) return 1;
    CHECK(sdc_embeddings_count(db, 0) == 11 && sdc_embeddings_count(db, 1) == 8,
          "%d embeddings, %d usable (want 11 and 8)", sdc_embeddings_count(db, 0), sdc_embeddings_count(db, 1));
    const char *usable[] = {"mystyle", "concept", "safe", "cat dog", "cat", "a,b:c", "deep", "long75"};
    for (size_t i = 0; i < 8; i++) {
        const sdc_embedding *x = find(db, usable[i]);
        CHECK(x && !x->error && x->vec && x->width == D, "%s usable: %s", usable[i], x && x->error ? x->error : "absent");
    }
    const char *bad[][2] = {{"wide", "768 wide"}, {"big", "80 vectors"}, {"broken", "broken.pt"}};
    for (int i = 0; i < 3; i++) {
        const sdc_embedding *x = find(db, bad[i][0]);
        CHECK(x && x->error && strstr(x->error, bad[i][1]), "%s unusable: %s", bad[i][0], x && x->error ? x->error : "?");
    }
    {
        float want[4 * D];
        const sdc_embedding *ms = find(db, "mystyle"), *sf = find(db, "safe"), *cd = find(db, "concept");
        sdc_mkmodel_embedding_values(3, D, 1, want, &e);
        CHECK(ms && ms->vectors == 3 && max_abs_diff(ms->vec, want, 3 * D) == 0, "mystyle.pt vectors (string_to_param)");
        sdc_mkmodel_embedding_values(2, D, 2, want, &e);
        CHECK(cd && cd->vectors == 2 && max_abs_diff(cd->vec, want, 2 * D) == 0, "concept.bin vectors (diffusers)");
        sdc_mkmodel_embedding_values(4, D, 3, want, &e);
        for (int i = 0; i < 4 * D; i++) want[i] = sdc_f16_to_f32(sdc_f32_to_f16(want[i]));
        CHECK(sf && sf->vectors == 4 && max_abs_diff(sf->vec, want, 4 * D) == 0, "safe.safetensors vectors (f16)");
        uint8_t dg[32];
        char hex[SDC_SHA256_HEX];
        snprintf(p, sizeof p, "%s/mystyle.pt", dir);
        sdc_sha256_file(p, dg, &e);
        sdc_sha256_hex(dg, hex);
        CHECK(ms && !strncmp(ms->shorthash, hex, 12) && strlen(ms->shorthash) == 12, "shorthash %s vs sha256 %s",
              ms ? ms->shorthash : "?", hex);
    }
    e = (sdc_error){0};
    sdc_embeddings *none = NULL;
    snprintf(p, sizeof p, "%s/no-such-dir", dir);
    CHECK(sdc_embeddings_load(model, tok, p, &none, eb, sizeof eb) != SDC_OK && !none && strstr(eb, "no-such-dir"),
          "missing directory: %s", eb);

    /* ---- tokenize_line ---- */
    sdc_a1111_opts o = sdc_a1111_opts_default();
    o.embeddings = db;
    sdc_a1111_chunks ch;
    int32_t a[8], photo[8], b1[8], c1[8], cat[8], dog[8];
    n_ids("a", a), n_ids("photo", photo), n_ids("b", b1), n_ids("c", c1), n_ids("cat", cat), n_ids("dog", dog);

    CHECK(sdc_a1111_tokenize_line(tok, "a (mystyle:1.5) photo", &o, &ch, &e) == SDC_OK, "%s", e.msg);
    CHECK(ch.n == 1 && ch.token_count == 5 && ch.n_fixes == 1 && ch.fixes[0].chunk == 0 && ch.fixes[0].offset == 1 &&
              ch.fixes[0].emb == find(db, "mystyle"),
          "one fix at offset 1 (%d fixes, count %d)", ch.n_fixes, ch.token_count);
    CHECK(ch.tokens[1] == a[0] && ch.tokens[2] == 0 && ch.tokens[3] == 0 && ch.tokens[4] == 0 && ch.tokens[5] == photo[0] &&
              ch.tokens[6] == SDC_CLIP_EOS,
          "tokens: a 0 0 0 photo EOS");
    CHECK(ch.mult[1] == 1.0 && ch.mult[2] == 1.5 && ch.mult[3] == 1.5 && ch.mult[4] == 1.5 && ch.mult[5] == 1.0,
          "the fragment weight 1.5 on the 3 vector slots");
    sdc_a1111_chunks_free(&ch);

    CHECK(sdc_a1111_tokenize_line(tok, "a cat dog, a cat", &o, &ch, &e) == SDC_OK, "%s", e.msg);
    CHECK(ch.n_fixes == 2 && ch.fixes[0].emb == find(db, "cat dog") && ch.fixes[0].offset == 1 &&
              ch.fixes[1].emb == find(db, "cat") && ch.fixes[1].offset == 4 && ch.tokens[3] == 267 && ch.token_count == 6,
          "longest match: 'cat dog' (1 vector), then 'cat' (2 vectors)");
    sdc_a1111_chunks_free(&ch);

    char *s = repeat_a(73, "mystyle");
    CHECK(sdc_a1111_tokenize_line(tok, s, &o, &ch, &e) == SDC_OK, "%s", e.msg);
    CHECK(ch.n == 2 && ch.n_fixes == 1 && ch.fixes[0].chunk == 1 && ch.fixes[0].offset == 0 && ch.tokens[73] == a[0] &&
              ch.tokens[74] == SDC_CLIP_EOS && ch.tokens[77 + 1] == 0 && ch.tokens[77 + 4] == SDC_CLIP_EOS &&
              ch.token_count == 78,
          "73 tokens + 3 vectors: the embedding moves to chunk 2 (%d chunks, count %d)", ch.n, ch.token_count);
    sdc_a1111_chunks_free(&ch);
    free(s);
    s = repeat_a(72, "mystyle");
    CHECK(sdc_a1111_tokenize_line(tok, s, &o, &ch, &e) == SDC_OK, "%s", e.msg);
    CHECK(ch.n == 1 && ch.fixes[0].offset == 72 && ch.tokens[75] == 0 && ch.token_count == 75, "72 + 3 fit one chunk");
    sdc_a1111_chunks_free(&ch);
    free(s);
    CHECK(sdc_a1111_tokenize_line(tok, "a long75", &o, &ch, &e) == SDC_OK, "%s", e.msg);
    CHECK(ch.n == 2 && ch.fixes[0].chunk == 1 && ch.fixes[0].offset == 0 && ch.tokens[77 + 75] == 0 &&
              ch.token_count == 150,
          "75 vectors after one token: a chunk of their own");
    sdc_a1111_chunks_free(&ch);
    /* webui's backtrack: 70 a, ',' (71), mystyle (74), b (75); at c the tail after the comma moves
     * to chunk 2 as [0 0 0 b], but the fix stays in chunk 1 at offset 71 (over the padding) */
    s = repeat_a(70, ", mystyle b c");
    CHECK(sdc_a1111_tokenize_line(tok, s, &o, &ch, &e) == SDC_OK, "%s", e.msg);
    CHECK(ch.n == 2 && ch.n_fixes == 1 && ch.fixes[0].chunk == 0 && ch.fixes[0].offset == 71 &&
              ch.tokens[71] == 267 && ch.tokens[72] == SDC_CLIP_EOS && ch.tokens[77 + 1] == 0 &&
              ch.tokens[77 + 3] == 0 && ch.tokens[77 + 4] == b1[0] && ch.tokens[77 + 5] == c1[0],
          "comma backtrack leaves the fix in chunk 1 (%d chunks, fix chunk %d offset %d)", ch.n,
          ch.n_fixes ? ch.fixes[0].chunk : -1, ch.n_fixes ? ch.fixes[0].offset : -1);
    sdc_a1111_chunks_free(&ch);
    free(s);

    /* refusals, only when used */
    const char *refuse[][3] = {{"a wide photo", "wide.pt", "768"}, {"a big photo", "big.safetensors", "80 vectors"},
                               {"(broken:0.5)", "broken.pt", "broken"}};
    for (int i = 0; i < 3; i++) {
        e = (sdc_error){0};
        CHECK(sdc_a1111_tokenize_line(tok, refuse[i][0], &o, &ch, &e) == SDC_E_INVALID_ARG &&
                  strstr(e.msg, refuse[i][1]) && strstr(e.msg, refuse[i][2]) && strstr(e.msg, "cannot be used"),
              "'%s' refused: %s", refuse[i][0], e.msg);
    }
    CHECK(sdc_a1111_tokenize_line(tok, "a photo, cat", &o, &ch, &e) == SDC_OK, "unused unusable files cost nothing");
    sdc_a1111_chunks_free(&ch);
    CHECK(sdc_a1111_tokenize_line(tok, "a photograph of an unknownword", &o, &ch, &e) == SDC_OK && ch.n_fixes == 0,
          "unknown words stay text");
    sdc_a1111_chunks_free(&ch);

    /* ---- the text encoder ---- */
    int32_t ids[77];
    float rows[77 * D], z_ids[77 * D], z_rows[77 * D], *z = NULL, *z_plain = NULL;
    sdc_tokenize(tok, "a photo", ids, eb, sizeof eb);
    CHECK(sdc_clip_gather(model, ids, 77, rows, &e) == SDC_OK, "%s", e.msg);
    CHECK(sdc_encode_ids(model, ids, 1, 1, z_ids, eb, sizeof eb) == SDC_OK, "%s", eb);
    encode_rows(rows, z_rows);
    CHECK_CLOSE(max_abs_diff(z_ids, z_rows, 77 * D), 0.0, "from rows == from ids ('a photo')");

    int nc = 0;
    const char *texts[1] = {"a mystyle photo"};
    CHECK(sdc_a1111_encode_texts(model, tok, texts, 1, &o, &z, &nc, &e) == SDC_OK && nc == 1, "encode: %s", e.msg);
    /* hand-built input: token rows of [BOS a ! ! ! photo EOS ...], rows 2..4 = mystyle's vectors */
    const sdc_embedding *ms = find(db, "mystyle");
    int32_t hand[77];
    for (int t = 0; t < 77; t++) hand[t] = SDC_CLIP_EOS;
    hand[0] = SDC_CLIP_BOS, hand[1] = a[0], hand[2] = hand[3] = hand[4] = 0, hand[5] = photo[0];
    sdc_clip_gather(model, hand, 77, rows, &e);
    float rows_bang[77 * D], z_bang[77 * D];
    memcpy(rows_bang, rows, sizeof rows);
    memcpy(rows + 2 * D, ms->vec, 3 * D * sizeof *rows);
    encode_rows(rows, z_rows);
    if (z) CHECK_CLOSE(max_abs_diff(z, z_rows, 77 * D), 0.0, "conditioning == encoder on hand-built rows");
    encode_rows(rows_bang, z_bang); /* without the substitution: the '!' token rows */
    if (z) CHECK(max_abs_diff(z + 2 * D, z_bang + 2 * D, D) > 1e-3, "row 2 differs from the unsubstituted '!' row");
    memcpy(rows + 1 * D, ms->vec, 3 * D * sizeof *rows); /* one row too early */
    memcpy(rows + 4 * D, rows_bang + 4 * D, D * sizeof *rows);
    encode_rows(rows, z_rows);
    if (z) CHECK(max_abs_diff(z, z_rows, 77 * D) > 1e-3, "vectors one row early give another conditioning");
    const char *plain[1] = {"a photo"};
    CHECK(sdc_a1111_encode_texts(model, tok, plain, 1, &o, &z_plain, &nc, &e) == SDC_OK, "%s", e.msg);
    if (z && z_plain) {
        /* causal attention: rows 0..1 see only BOS and 'a'; the whole-batch mean restore is 1 here */
        CHECK_CLOSE(max_abs_diff(z, z_plain, 2 * D), 1e-6, "rows 0-1 as without the embedding (causal)");
        CHECK(max_abs_diff(z + 2 * D, z_plain + 2 * D, D) > 1e-3, "row 2 carries the embedding");
    }
    free(z), free(z_plain);
    z = NULL;
    /* the backtrack case encoded: chunk 1 gets the vectors over its padding rows 72..74, chunk 2
     * reads token 0 where they would have been */
    s = repeat_a(70, ", mystyle b c");
    const char *bt[1] = {s};
    CHECK(sdc_a1111_encode_texts(model, tok, bt, 1, &o, &z, &nc, &e) == SDC_OK && nc == 2, "%s", e.msg);
    CHECK(sdc_a1111_tokenize_line(tok, s, &o, &ch, &e) == SDC_OK, "%s", e.msg);
    if (z) {
        sdc_clip_gather(model, ch.tokens, 77, rows, &e);
        memcpy(rows + 72 * D, ms->vec, 3 * D * sizeof *rows);
        encode_rows(rows, z_rows);
        CHECK_CLOSE(max_abs_diff(z, z_rows, 77 * D), 0.0, "backtrack: chunk 1 = rows with vectors at 72-74");
        sdc_clip_gather(model, ch.tokens + 77, 77, rows, &e);
        encode_rows(rows, z_rows);
        CHECK_CLOSE(max_abs_diff(z + 77 * D, z_rows, 77 * D), 0.0, "backtrack: chunk 2 = plain token rows");
    }
    sdc_a1111_chunks_free(&ch);
    free(s), free(z);
    z = NULL;

    /* ---- TI hashes ---- */
    char *h = NULL;
    int ntok = 0;
    const sdc_embedding *cd = find(db, "concept"), *sf = find(db, "safe"), *abc = find(db, "a,b:c");
    char want[512];
    CHECK(sdc_encode_a1111_ti(model, tok, db, "mystyle, concept, (mystyle:0.8)", 1, &z, &ntok, &h, eb, sizeof eb) == SDC_OK,
          "%s", eb);
    snprintf(want, sizeof want, "mystyle: %s, concept: %s", ms->shorthash, cd->shorthash);
    CHECK(h && !strcmp(h, want), "TI hashes '%s', want '%s'", h ? h : "(null)", want);
    free(h), free(z);
    h = NULL, z = NULL;
    CHECK(sdc_encode_a1111_ti(model, tok, db, "x a,b:c y", 1, &z, &ntok, &h, eb, sizeof eb) == SDC_OK, "%s", eb);
    snprintf(want, sizeof want, "abc: %s", abc->shorthash);
    CHECK(h && !strcmp(h, want), "':' and ',' dropped from the name: '%s'", h ? h : "(null)");
    free(h), free(z);
    h = NULL, z = NULL;
    CHECK(sdc_encode_a1111_ti(model, tok, db, "a photo", 1, &z, &ntok, &h, eb, sizeof eb) == SDC_OK && !h,
          "no embedding used: no TI hashes");
    free(z);
    /* txt2img's order: the negative first, then the prompt's AND parts, each prepending */
    sdc_a1111_cond *neg = NULL, *pos = NULL;
    o.ti_hashes = &h;
    CHECK(sdc_a1111_cond_new(model, tok, "safe", 4, 0, 1, &o, &neg, &e) == SDC_OK, "%s", e.msg);
    CHECK(sdc_a1111_cond_new(model, tok, "mystyle AND concept photo", 4, 0, 0, &o, &pos, &e) == SDC_OK, "%s", e.msg);
    snprintf(want, sizeof want, "concept: %s, mystyle: %s, safe: %s", cd->shorthash, ms->shorthash, sf->shorthash);
    CHECK(h && !strcmp(h, want), "TI hashes over cond_new calls '%s', want '%s'", h ? h : "(null)", want);
    free(h);
    sdc_a1111_cond_free(neg), sdc_a1111_cond_free(pos);

    /* clean up the scratch folder */
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) snprintf(p, sizeof p, "%s/%s", dir, files[i]), remove(p);
    snprintf(p, sizeof p, "%s/sub", dir);
    rmdir(p);
    rmdir(dir);
    sdc_embeddings_free(db);
    sdc_tokenizer_free(tok);
    sdc_model_free(model);
    TEST_MAIN_END();
}
