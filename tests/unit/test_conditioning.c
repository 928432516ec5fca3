/* A1111 conditioning (src/prompt/conditioning.h) against webui 1.10 on the tiny checkpoint
 * (testdata/a1111: manifest "conditioning" and cond.<key>.*, loop.*.cond / uncond):
 *  - tokenize_line of all 12 prompts: chunk tokens, multipliers (double and float32), token_count;
 *  - emphasis "Original" applied to webui's own z_raw, vs webui's cond (rel 1e-5 of max|ref|);
 *  - the whole path (sdc_encode_a1111) with clip skip 1 and 2: z_raw and cond vs golden within the
 *    README's tolerances (1e-5, 1e-4 for comma_backtrack clip skip 2);
 *  - a batch of texts (empty-chunk padding, batch-wide means, duplicates);
 *  - sdc_a1111_cond (AND, prompt editing, stacking) vs webui's loop conditioning and by construction;
 *  - cond/uncond padding and bad input. */
#include "golden.h"
#include "io/json.h"
#include "io/npy.h"
#include "prompt/conditioning.h"
#include "prompt/prompt_parse.h"

#include <math.h>
#include <sys/wait.h>
#include <unistd.h>

#define D 64

static sdc_model *model;
static sdc_tokenizer *tok;
static sdc_st_file *gold;

/* max|a - b| / max(1, max|b|) over n values, like golden_err */
static double rel_err(const float *a, const float *b, size_t n) { return golden_err(a, b, (int64_t)n); }

static void check_prompt(const sdc_json *p) {
    const char *key = sdc_json_string(sdc_json_get(p, "key"));
    const char *prompt = sdc_json_string(sdc_json_get(p, "prompt"));
    int64_t n_chunks = 0, token_count = 0;
    sdc_json_int(sdc_json_get(p, "n_chunks"), &n_chunks);
    sdc_json_int(sdc_json_get(p, "token_count"), &token_count);
    const sdc_json *jt = sdc_json_get(p, "chunk_tokens"), *jm = sdc_json_get(p, "chunk_multipliers");
    char name[128], what[160];

    /* ---- tokenize_line ---- */
    sdc_a1111_chunks ch;
    sdc_error e = {0};
    sdc_a1111_opts o = sdc_a1111_opts_default();
    CHECK(sdc_a1111_tokenize_line(tok, prompt, &o, &ch, &e) == SDC_OK, "%s: %s", key, e.msg);
    CHECK(ch.n == n_chunks && ch.token_count == token_count, "%s: %d chunks / %d tokens, golden %lld / %lld", key, ch.n,
          ch.token_count, (long long)n_chunks, (long long)token_count);
    snprintf(name, sizeof name, "cond.%s.tokens", key);
    float *gt = golden_f32(gold, name, NULL);
    snprintf(name, sizeof name, "cond.%s.multipliers", key);
    const sdc_st_tensor *gm = golden_tensor(gold, name);
    int tok_bad = 0, mult_bad = 0, mult32_bad = 0;
    for (int c = 0; c < ch.n && c < n_chunks; c++)
        for (int t = 0; t < 77; t++) {
            int64_t id = -1;
            double w = 0;
            sdc_json_int(sdc_json_at(sdc_json_at(jt, (size_t)c), (size_t)t), &id);
            sdc_json_number(sdc_json_at(sdc_json_at(jm, (size_t)c), (size_t)t), &w);
            int32_t mine = ch.tokens[c * 77 + t];
            tok_bad += mine != id || mine != (int32_t)gt[c * 77 + t];
            mult_bad += ch.mult[c * 77 + t] != w;
            float m32 = (float)ch.mult[c * 77 + t], g32;
            memcpy(&g32, (const char *)gm->data + 4 * (size_t)(c * 77 + t), 4);
            mult32_bad += memcmp(&m32, &g32, 4) != 0;
        }
    CHECK(tok_bad == 0 && mult_bad == 0 && mult32_bad == 0,
          "%s: %d token ids, %d multipliers (%d as float32) differ from webui", key, tok_bad, mult_bad, mult32_bad);
    free(gt);

    for (int cs = 1; cs <= 2; cs++) {
        int64_t nref;
        snprintf(name, sizeof name, "cond.%s.cs%d.z_raw", key, cs);
        float *zraw = golden_f32(gold, name, &nref);
        snprintf(name, sizeof name, "cond.%s.cs%d.cond", key, cs);
        float *cref = golden_f32(gold, name, NULL);
        size_t per = 77 * D;
        /* ---- emphasis on webui's own text-encoder output ---- */
        float *z = malloc((size_t)nref * sizeof *z), mult[77];
        memcpy(z, zraw, (size_t)nref * sizeof *z);
        snprintf(name, sizeof name, "cs%d_chunk_means", cs);
        const sdc_json *jmeans = sdc_json_get(p, name);
        int means_bad = 0;
        for (int c = 0; c < ch.n && (int64_t)((c + 1) * per) <= nref; c++) {
            float means[2];
            for (int t = 0; t < 77; t++) mult[t] = (float)ch.mult[c * 77 + t];
            sdc_a1111_emphasis(z + c * per, mult, 1, D, NULL, 1, SDC_EMPHASIS_ORIGINAL, means);
            for (int k = 0; k < 2; k++) {
                double g = NAN;
                sdc_json_number(sdc_json_at(sdc_json_at(jmeans, (size_t)c), (size_t)k), &g);
                if (means[k] != (float)g || (double)(float)g != g) {
                    means_bad++;
                    printf("  %s cs%d chunk %d mean %d: %.9g, webui %.9g\n", key, cs, c, k, means[k], g);
                }
            }
        }
        CHECK(means_bad == 0, "%s cs%d: %d chunk means differ from torch's float32 means", key, cs, means_bad);
        snprintf(what, sizeof what, "%s cs%d: emphasis of golden z_raw", key, cs);
        CHECK_CLOSE(rel_err(z, cref, (size_t)nref), 0.0, what); /* bit-exact: torch's sum order */

        /* ---- the text encoder per chunk (emphasis ignored = z_raw) ---- */
        sdc_a1111_opts raw = o;
        raw.clip_skip = cs;
        raw.emphasis = SDC_EMPHASIS_IGNORE;
        float *zr = NULL;
        int k = 0;
        CHECK(sdc_a1111_encode_texts(model, tok, &prompt, 1, &raw, &zr, &k, &e) == SDC_OK, "%s: %s", key, e.msg);
        snprintf(what, sizeof what, "%s cs%d: z_raw (text encoder per chunk)", key, cs);
        if (zr && k * (int64_t)per == nref)
            CHECK_CLOSE(rel_err(zr, zraw, (size_t)nref), 1e-5, what);
        else
            CHECK(0, "%s: %d chunks encoded", what, k);

        /* ---- end to end, the public call ---- */
        float *out = NULL;
        int n_tokens = 0;
        char eb[256];
        CHECK(sdc_encode_a1111(model, tok, prompt, cs, &out, &n_tokens, eb, sizeof eb) == SDC_OK, "%s: %s", key, eb);
        double tol = !strcmp(key, "comma_backtrack") && cs == 2 ? 1e-4 : 1e-5;
        snprintf(what, sizeof what, "%s cs%d: cond [1, %d, 64]", key, cs, n_tokens);
        if (out && n_tokens * (int64_t)D == nref)
            CHECK_CLOSE(rel_err(out, cref, (size_t)nref), tol, what);
        else
            CHECK(0, "%s: %d tokens", what, n_tokens);
        free(out);
        free(zr);
        free(z);
        free(zraw);
        free(cref);
    }
    sdc_a1111_chunks_free(&ch);
}

static const char *manifest_prompt(const sdc_json *prompts, const char *key) {
    for (size_t i = 0; i < sdc_json_len(prompts); i++)
        if (!strcmp(sdc_json_string(sdc_json_get(sdc_json_at(prompts, i), "key")), key))
            return sdc_json_string(sdc_json_get(sdc_json_at(prompts, i), "prompt"));
    return NULL;
}

/* forward() of a batch: webui pads short texts with the empty chunk and takes the emphasis means
 * over the whole chunk batch. Built here from webui's z_raw of each text and of "". */
static void check_batch(const sdc_json *prompts) {
    const char *texts[3] = {manifest_prompt(prompts, "long_2chunks"), manifest_prompt(prompts, "short_weighted"),
                            manifest_prompt(prompts, "long_2chunks")};
    float *out = NULL;
    int k = 0;
    sdc_error e = {0};
    CHECK(sdc_a1111_encode_texts(model, tok, texts, 3, NULL, &out, &k, &e) == SDC_OK && k == 2, "batch: %s", e.msg);
    if (!out) return;
    float *zl = golden_f32(gold, "cond.long_2chunks.cs1.z_raw", NULL),
          *zs = golden_f32(gold, "cond.short_weighted.cs1.z_raw", NULL);
    float *ze = golden_f32(gold, "cond.empty.cs1.z_raw", NULL);
    sdc_a1111_chunks cl, cs;
    sdc_a1111_tokenize_line(tok, texts[0], NULL, &cl, &e);
    sdc_a1111_tokenize_line(tok, texts[1], NULL, &cs, &e);
    size_t per = 77 * D;
    float *z = malloc(3 * per * sizeof *z), *mult = malloc(3 * 77 * sizeof *mult);
    double err = 0;
    for (int c = 0; c < 2; c++) { /* rows: long chunk c, short chunk c or the empty chunk, long again */
        memcpy(z, zl + c * per, per * sizeof *z);
        memcpy(z + per, c == 0 ? zs : ze, per * sizeof *z);
        memcpy(z + 2 * per, zl + c * per, per * sizeof *z);
        for (int t = 0; t < 77; t++) {
            mult[t] = mult[154 + t] = (float)cl.mult[c * 77 + t];
            mult[77 + t] = c == 0 ? (float)cs.mult[t] : 1.0f;
        }
        static const int order[3] = {0, 1, 2};
        sdc_a1111_emphasis(z, mult, 3, D, order, 3, SDC_EMPHASIS_ORIGINAL, NULL);
        for (int b = 0; b < 3; b++) {
            double r = rel_err(out + (size_t)b * 2 * per + c * per, z + b * per, per);
            if (r > err) err = r;
        }
    }
    CHECK_CLOSE(err, 1e-5, "batch of 3 (padding, shared means) vs webui z_raw");
    /* the batch means differ from single-text means: the batch is not three single encodes */
    float *single = NULL;
    int n_tokens;
    sdc_encode_a1111(model, tok, texts[1], 1, &single, &n_tokens, NULL, 0);
    double diff = single ? rel_err(out + 2 * per, single, per) : 0;
    printf("  short_weighted in the batch vs alone: %.3e (the shared mean)\n", diff);
    CHECK(diff > 1e-4, "batch-wide emphasis means");
    CHECK(memcmp(out, out + 4 * per, 2 * per * sizeof *out) == 0, "duplicate texts give identical rows");
    free(single);
    free(z), free(mult), free(zl), free(zs), free(ze), free(out);
    sdc_a1111_chunks_free(&cl);
    sdc_a1111_chunks_free(&cs);
}

/* The sampler's conditioning vs webui's loop goldens, then schedules and AND by construction. */
static void check_cond(const sdc_json *prompts) {
    sdc_error e = {0};
    static const struct {
        const char *loop, *tensor;
        const char *prompt_key;
        int negative;
    } runs[] = {{"euler.20", "cond", "seed_prompt", 0},
                {"euler.20", "uncond", "seed_negative", 1},
                {"dpmpp_2m_karras_long.20", "cond", "long_2chunks", 0}};
    for (size_t i = 0; i < 3; i++) {
        sdc_a1111_cond *c = NULL;
        const char *p = manifest_prompt(prompts, runs[i].prompt_key);
        CHECK(sdc_a1111_cond_new(model, tok, p, 20, 0, runs[i].negative, NULL, &c, &e) == SDC_OK, "cond: %s", e.msg);
        if (!c) continue;
        char name[96], what[192];
        snprintf(name, sizeof name, "loop.%s.%s", runs[i].loop, runs[i].tensor);
        int64_t n;
        float *ref = golden_f32(gold, name, &n);
        int T = sdc_a1111_cond_tokens(c);
        float *rows = malloc((size_t)T * D * sizeof *rows);
        CHECK(sdc_a1111_cond_parts(c) == 1 && T * D == n, "%s: 1 part of %d tokens", name, T);
        double err = 0;
        for (int step = 0; step < 20 && T * D == n; step++) {
            int changed = sdc_a1111_cond_rows(c, step, rows);
            CHECK(changed == (step == 0), "%s: rows change only at step 0", name);
            double r = rel_err(rows, ref, (size_t)n);
            if (r > err) err = r;
        }
        snprintf(what, sizeof what, "%s (webui's sampler input), all steps", name);
        CHECK_CLOSE(err, 1e-5, what);
        free(rows), free(ref);
        sdc_a1111_cond_free(c);
    }

    /* prompt editing: [cat:dog:10] at 20 steps = "a cat" up to step index 10, then "a dog" */
    sdc_a1111_cond *c = NULL;
    CHECK(sdc_a1111_cond_new(model, tok, "a [cat:dog:10] sitting", 20, 0, 0, NULL, &c, &e) == SDC_OK, "%s", e.msg);
    float *cat = NULL, *dog = NULL, rows[77 * D];
    int nt;
    sdc_encode_a1111(model, tok, "a cat sitting", 1, &cat, &nt, NULL, 0);
    sdc_encode_a1111(model, tok, "a dog sitting", 1, &dog, &nt, NULL, 0);
    int ok = c && cat && dog && sdc_a1111_cond_tokens(c) == 77;
    for (int step = 0; ok && step < 20; step++) {
        int changed = sdc_a1111_cond_rows(c, step, rows);
        ok &= changed == (step == 0 || step == 11);
        ok &= rel_err(rows, step <= 10 ? cat : dog, 77 * D) < 1e-6;
    }
    CHECK(ok, "[cat:dog:10]: 'a cat sitting' for steps 0..10, 'a dog sitting' for 11..19");
    sdc_a1111_cond_free(c);

    /* the texts of one schedule share the emphasis means (one batch in webui) */
    const char *texts[2] = {"a (cat:1.5) sitting", "a dog sitting"};
    float *both = NULL;
    int k;
    sdc_a1111_encode_texts(model, tok, texts, 2, NULL, &both, &k, &e);
    CHECK(sdc_a1111_cond_new(model, tok, "a [(cat:1.5):dog:0.5] sitting", 20, 0, 0, NULL, &c, &e) == SDC_OK, "%s",
          e.msg);
    if (c && both) {
        sdc_a1111_cond_rows(c, 3, rows);
        double r0 = rel_err(rows, both, 77 * D);
        sdc_a1111_cond_rows(c, 15, rows);
        double r1 = rel_err(rows, both + 77 * D, 77 * D);
        CHECK(r0 < 1e-6 && r1 < 1e-6 && rel_err(both + 77 * D, dog, 77 * D) > 1e-5,
              "schedule texts encoded as one batch (%.2e %.2e)", r0, r1);
    }
    sdc_a1111_cond_free(c);
    free(both);

    /* AND: parts, weights, stacking a 77-token part to 154 by repeating its last vector */
    const char *lp = manifest_prompt(prompts, "long_2chunks");
    char *andp = malloc(strlen(lp) + 64);
    sprintf(andp, "%s AND a dog sitting :0.5", lp);
    CHECK(sdc_a1111_cond_new(model, tok, andp, 20, 0, 0, NULL, &c, &e) == SDC_OK, "%s", e.msg);
    if (c) {
        int T = sdc_a1111_cond_tokens(c);
        float *r2 = malloc(2 * (size_t)T * D * sizeof *r2), *ref = golden_f32(gold, "cond.long_2chunks.cs1.cond", NULL);
        sdc_a1111_cond_rows(c, 0, r2);
        float *p1 = r2 + (size_t)T * D;
        int stacked = 1;
        for (int t = 77; t < T; t++) stacked &= !memcmp(p1 + t * D, p1 + 76 * D, D * sizeof *p1);
        CHECK(sdc_a1111_cond_parts(c) == 2 && T == 154 && sdc_a1111_cond_weight(c, 0) == 1.0 &&
                  sdc_a1111_cond_weight(c, 1) == 0.5,
              "AND: 2 parts, T %d", T);
        CHECK(rel_err(r2, ref, 154 * D) < 1e-5 && rel_err(p1, dog, 77 * D) < 1e-6 && stacked,
              "AND: part 0 = long prompt, part 1 = 'a dog sitting' padded with its last vector");
        free(r2), free(ref);
    }
    sdc_a1111_cond_free(c);
    free(andp);
    free(cat), free(dog);

    /* the negative prompt is not split at AND; alternation encodes its texts once */
    CHECK(sdc_a1111_cond_new(model, tok, "a AND b", 20, 0, 1, NULL, &c, &e) == SDC_OK && sdc_a1111_cond_parts(c) == 1,
          "negative prompt: AND is text");
    sdc_a1111_cond_free(c);
    CHECK(sdc_a1111_cond_new(model, tok, "[cat|dog]", 6, 0, 0, NULL, &c, &e) == SDC_OK, "%s", e.msg);
    if (c) {
        /* entries end at steps 1..6: cat, dog, cat, ...; sampler steps 0 and 1 both use the first */
        static float rc[77 * D], rd[77 * D];
        sdc_a1111_cond_rows(c, 0, rc);
        sdc_a1111_cond_rows(c, 2, rd);
        int same = memcmp(rc, rd, sizeof rc) != 0, changes = 0;
        for (int s = 0; s < 6; s++) {
            changes += sdc_a1111_cond_rows(c, s, rows);
            same &= !memcmp(rows, s == 0 || s % 2 ? rc : rd, sizeof rows);
        }
        CHECK(same && changes == 5, "[cat|dog]: cat, cat, dog, cat, dog, cat (%d changes)", changes);
    }
    sdc_a1111_cond_free(c);
}

static void check_pad_and_errors(void) {
    float in[2 * 77 * 2], empty[77 * 2], out[3 * 77 * 2];
    for (int i = 0; i < 2 * 77 * 2; i++) in[i] = (float)i;
    for (int i = 0; i < 77 * 2; i++) empty[i] = -1.0f - (float)i;
    sdc_a1111_pad(in, 154, 2, empty, 231, out);
    CHECK(!memcmp(out, in, sizeof in) && !memcmp(out + 308, empty, sizeof empty),
          "pad_cond_uncond: empty chunk appended");
    sdc_a1111_pad(in, 77, 2, NULL, 154, out);
    int ok = !memcmp(out, in, 154 * sizeof *in);
    for (int t = 77; t < 154; t++) ok &= out[2 * t] == in[152] && out[2 * t + 1] == in[153];
    CHECK(ok, "pad_cond_uncond_v0: last vector repeated");
    sdc_a1111_pad(in, 154, 2, NULL, 77, out);
    CHECK(!memcmp(out, in, 154 * sizeof *in), "pad_cond_uncond_v0: truncation");

    char eb[256];
    float *o = NULL;
    int n = 0;
    CHECK(sdc_encode_a1111(model, tok, "a cat", 3, &o, &n, eb, sizeof eb) == SDC_E_INVALID_ARG && !o,
          "clip skip 3 of 2 layers refused: %s", eb);
    CHECK(sdc_encode_a1111(model, tok, "(a:1.2.3)", 1, &o, &n, eb, sizeof eb) == SDC_E_INVALID_ARG &&
              strstr(eb, "1.2.3"),
          "bad weight refused: %s", eb);
    CHECK(sdc_encode_a1111(model, NULL, "a", 1, &o, &n, eb, sizeof eb) == SDC_E_INVALID_ARG, "no tokenizer refused");
    /* a 10,000-token prompt runs (134 chunks, as webui would); past 200 chunks one clear refusal */
    enum { WORDS = 15100 };
    char *big = malloc(4 * WORDS + 1);
    for (int i = 0; i < WORDS; i++) memcpy(big + 4 * i, "cat ", 4);
    big[4 * WORDS] = 0;
    CHECK(sdc_encode_a1111(model, tok, big, 1, &o, &n, eb, sizeof eb) == SDC_E_LIMIT && strstr(eb, "200 chunks"),
          "202 chunks refused: %s", eb);
    big[4 * 10000] = 0;
    CHECK(sdc_encode_a1111(model, tok, big, 1, &o, &n, eb, sizeof eb) == SDC_OK && n == 77 * 134,
          "10,000 tokens: %d = 77 x 134 expected (%s)", n, eb);
    int finite = o != NULL;
    for (size_t i = 0; o && i < (size_t)n * 64; i++) finite &= isfinite(o[i]);
    CHECK(finite, "10,000 tokens: finite conditioning");
    free(o);
    free(big);
    sdc_a1111_chunks ch;
    sdc_error e = {0};
    sdc_a1111_opts none = sdc_a1111_opts_default();
    none.emphasis = SDC_EMPHASIS_NONE;
    CHECK(sdc_a1111_tokenize_line(tok, "(cat:1.5) BREAK dog", &none, &ch, &e) == SDC_OK && ch.n == 1 &&
              ch.mult[2] == 1.0,
          "emphasis None: brackets are text, no BREAK");
    sdc_a1111_chunks_free(&ch);
    CHECK(sdc_a1111_tokenize_line(tok, "BREAK BREAK", NULL, &ch, &e) == SDC_OK && ch.n == 2 && ch.token_count == 150,
          "two BREAKs: two empty chunks (%d)", ch.n);
    sdc_a1111_chunks_free(&ch);
}

/* `sdc encode --a1111` writes [1, 77 k, D]: the long prompt with clip skip 2 vs webui's cond. */
static void check_cli(const sdc_json *prompts) {
    const char *out_path = SDC_BINARY_DIR "/test_conditioning_encode.npy";
    char *argv[] = {"sdc",
                    "encode",
                    "--a1111",
                    "-m",
                    TINY_CKPT,
                    "-p",
                    (char *)manifest_prompt(prompts, "long_2chunks"),
                    "--clip-skip",
                    "2",
                    "-o",
                    (char *)out_path,
                    NULL};
    pid_t pid = fork();
    if (pid == 0) {
        execv(SDC_EXE, argv);
        _exit(127);
    }
    int st = -1;
    waitpid(pid, &st, 0);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "sdc encode --a1111 exit status");
    sdc_npy a = {0};
    sdc_error e = {0};
    CHECK(sdc_npy_read_f32(out_path, &a, &e) == SDC_OK, "read %s: %s", out_path, e.msg);
    float *ref = golden_f32(gold, "cond.long_2chunks.cs2.cond", NULL);
    if (a.data && a.ndim == 3 && a.shape[0] == 1 && a.shape[1] == 154 && a.shape[2] == D)
        CHECK_CLOSE(rel_err(a.data, ref, 154 * D), 1e-5, "sdc encode --a1111 --clip-skip 2: [1, 154, 64]");
    else
        CHECK(0, "sdc encode --a1111 wrote shape [%lld, %lld, %lld]", (long long)a.shape[0], (long long)a.shape[1],
              (long long)a.shape[2]);
    free(ref);
    sdc_npy_free(&a);
    remove(out_path);
}

int main(void) {
    char err[512];
    sdc_model_params mp = sdc_model_params_default();
    mp.path = TINY_CKPT;
    mp.n_threads = 2;
    if (sdc_model_load(&mp, &model, err, sizeof err) != SDC_OK || sdc_tokenizer_new(&tok, err, sizeof err) != SDC_OK) {
        fprintf(stderr, "setup: %s\n", err);
        return 1;
    }
    gold = golden_open(A1111_DIR "/a1111.safetensors");
    sdc_json *man = NULL;
    sdc_error e = {0};
    if (sdc_json_load_file(A1111_DIR "/manifest.json", &man, &e) != SDC_OK) {
        fprintf(stderr, "%s\n", e.msg);
        return 1;
    }
    const sdc_json *prompts = sdc_json_path(man, "conditioning", "prompts", NULL);
    CHECK(sdc_json_len(prompts) == 12, "12 conditioning prompts in the manifest");
    for (size_t i = 0; i < sdc_json_len(prompts); i++) check_prompt(sdc_json_at(prompts, i));
    check_batch(prompts);
    check_cond(prompts);
    check_pad_and_errors();
    check_cli(prompts);
    sdc_json_free(man);
    sdc_st_close(gold);
    sdc_tokenizer_free(tok);
    sdc_model_free(model);
    /* a chunk whose mean is exactly 0 (untrained weights: the empty prompt of a random model)
     * keeps its values: webui's m0 / m1 would be 0 / 0 = NaN */
    {
        static float zz[77 * 8], mm[77];
        for (int i = 0; i < 77; i++) mm[i] = 1.0f;
        for (int i = 0; i < 77 * 8; i++) zz[i] = (i % 2) ? 0.5f : -0.5f;
        sdc_a1111_emphasis(zz, mm, 1, 8, NULL, 1, SDC_EMPHASIS_ORIGINAL, NULL);
        int finite = 1;
        for (int i = 0; i < 77 * 8; i++) finite &= zz[i] == ((i % 2) ? 0.5f : -0.5f);
        CHECK(finite, "zero-mean chunk stays unchanged (no NaN)");
    }
    TEST_MAIN_END();
}
