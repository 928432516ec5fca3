/* src/prompt/conditioning.c: A1111's FrozenCLIPEmbedderWithCustomWords and the sampler's
 * conditioning schedule (contract in conditioning.h; golden data and the formulas quoted below:
 * shared/testdata/a1111/README.md, section 2). */
#include "prompt/conditioning.h"

#include "core/threadpool.h"
#include "model/model.h"
#include "pipeline/runner.h"
#include "prompt/prompt_parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CTX SDC_CLIP_CTX         /* 77 */
#define ENCODE_BATCH 8           /* text-encoder rows per run; the result does not depend on it */
#define MAX_COND_BYTES (1 << 30) /* conditioning of one call (e.g. a schedule's distinct texts) */

sdc_a1111_opts sdc_a1111_opts_default(void) {
    sdc_a1111_opts o = {.clip_skip = 1, .comma_padding_backtrack = 20, .emphasis = SDC_EMPHASIS_ORIGINAL,
                        .embeddings = NULL, .ti_hashes = NULL};
    return o;
}

/* ============================================================================================ */
/* tokenize_line                                                                               */
/* ============================================================================================ */
/*
 * for tokens, (text, weight) in zip(tokenized, parsed):
 *     if text == 'BREAK' and weight == -1: next_chunk(); continue
 *     position = 0
 *     while position < len(tokens):
 *         if token == comma: last_comma = len(chunk)
 *         elif backtrack and len(chunk) == 75 and last_comma != -1 and 75 - last_comma <= backtrack:
 *             move chunk[last_comma + 1:] into a new chunk after next_chunk()   (fixes stay)
 *         if len(chunk) == 75: next_chunk()
 *         embedding, n_ids = find_embedding_at_position(tokens, position)
 *         if none: chunk.append(token, weight); position += 1; continue
 *         if len(chunk) + N > 75: next_chunk()
 *         chunk.fixes.append((len(chunk), embedding)); chunk.append([0] * N, [weight] * N)
 *         position += n_ids
 * if chunk or not chunks: next_chunk(is_last=True)
 * next_chunk pads to 75 with EOS (multiplier 1.0), frames with BOS/EOS and resets last_comma.
 */

typedef struct line_state {
    sdc_a1111_chunks *out;
    int32_t cur[SDC_A1111_CHUNK];
    double cur_w[SDC_A1111_CHUNK];
    int n, last_comma;
    int pending, cap_fixes; /* out->fixes[pending ..] belong to the chunk being filled */
} line_state;

static sdc_status next_chunk(line_state *L, int is_last, sdc_error *err) {
    sdc_a1111_chunks *o = L->out;
    if (o->n == SDC_A1111_MAX_CHUNKS)
        return sdc_fail(err, SDC_E_LIMIT, "prompt needs more than %d chunks of %d tokens", SDC_A1111_MAX_CHUNKS,
                        SDC_A1111_CHUNK);
    o->token_count += is_last ? L->n : SDC_A1111_CHUNK;
    int32_t *t = o->tokens + (size_t)o->n * CTX;
    double *w = o->mult + (size_t)o->n * CTX;
    t[0] = SDC_CLIP_BOS, w[0] = 1.0;
    for (int i = 0; i < SDC_A1111_CHUNK; i++) {
        t[1 + i] = i < L->n ? L->cur[i] : SDC_CLIP_EOS;
        w[1 + i] = i < L->n ? L->cur_w[i] : 1.0;
    }
    t[CTX - 1] = SDC_CLIP_EOS, w[CTX - 1] = 1.0;
    for (; L->pending < o->n_fixes; L->pending++) o->fixes[L->pending].chunk = o->n;
    o->n++;
    L->n = 0;
    L->last_comma = -1;
    return SDC_OK;
}

/* Places an embedding's N token slots (and its fix) in the current chunk, which has room. */
static sdc_status add_embedding(line_state *L, const sdc_embedding *e, double weight, sdc_error *err) {
    sdc_a1111_chunks *o = L->out;
    enum { MAX_FIXES = 1 << 14 }; /* > 200 chunks x 75 slots: only empty embeddings get there */
    if (o->n_fixes == MAX_FIXES) return sdc_fail(err, SDC_E_LIMIT, "prompt uses embeddings more than %d times", MAX_FIXES);
    if (o->n_fixes == L->cap_fixes) {
        int cap = L->cap_fixes ? 2 * L->cap_fixes : 8;
        sdc_a1111_fix *f = realloc(o->fixes, (size_t)cap * sizeof *f);
        if (!f) return sdc_fail(err, SDC_E_NOMEM, "out of memory for embeddings");
        o->fixes = f;
        L->cap_fixes = cap;
    }
    o->fixes[o->n_fixes++] = (sdc_a1111_fix){-1, L->n, e};
    for (int i = 0; i < e->vectors; i++) L->cur[L->n] = 0, L->cur_w[L->n++] = weight;
    return SDC_OK;
}

/* sdc_tokenize_raw into a growable buffer. */
static sdc_status tokenize_raw(const sdc_tokenizer *tok, const char *text, int32_t **buf, size_t *cap, size_t *n,
                               sdc_error *err) {
    char eb[SDC_ERRMSG_MAX];
    for (int pass = 0; pass < 2; pass++) {
        sdc_status s = sdc_tokenize_raw(tok, text, *buf, *cap, n, eb, sizeof eb);
        if (s != SDC_OK) return sdc_fail(err, s, "%s", eb);
        if (*n <= *cap) return SDC_OK;
        int32_t *b = realloc(*buf, *n * sizeof *b);
        if (!b) return sdc_fail(err, SDC_E_NOMEM, "out of memory for %zu token ids", *n);
        *buf = b, *cap = *n;
    }
    return SDC_OK;
}

sdc_status sdc_a1111_tokenize_line(const sdc_tokenizer *tok, const char *line, const sdc_a1111_opts *o,
                                   sdc_a1111_chunks *out, sdc_error *err) {
    memset(out, 0, sizeof *out);
    sdc_a1111_opts def = sdc_a1111_opts_default();
    if (!o) o = &def;
    if (!tok || !line)
        return sdc_fail(err, SDC_E_INVALID_ARG, "sdc_a1111_tokenize_line: %s is NULL", tok ? "line" : "tokenizer");
    sdc_prompt_frags frags = {0};
    sdc_prompt_frag one;
    sdc_status st;
    if (o->emphasis == SDC_EMPHASIS_NONE) { /* parsed = [[line, 1.0]] */
        size_t len = strlen(line);
        if (len > SDC_PROMPT_MAX_BYTES)
            return sdc_fail(err, SDC_E_LIMIT, "prompt is %zu bytes, more than the %u accepted", len,
                            (unsigned)SDC_PROMPT_MAX_BYTES);
        one = (sdc_prompt_frag){line, len, 1.0, 0};
        frags.v = &one, frags.n = 1;
    } else {
        SDC_TRY(sdc_prompt_parse_attention(line, &frags, err));
    }
    line_state *L = calloc(1, sizeof *L);
    int32_t *ids = NULL;
    size_t cap = 0, n;
    out->tokens = malloc((size_t)SDC_A1111_MAX_CHUNKS * CTX * sizeof *out->tokens);
    out->mult = malloc((size_t)SDC_A1111_MAX_CHUNKS * CTX * sizeof *out->mult);
    if (!L || !out->tokens || !out->mult) {
        st = sdc_fail(err, SDC_E_NOMEM, "out of memory tokenizing a prompt");
        goto done;
    }
    L->out = out;
    L->last_comma = -1;
    for (size_t f = 0; f < frags.n; f++) {
        const sdc_prompt_frag *fr = &frags.v[f];
        if (sdc_prompt_frag_is_break(fr)) {
            if ((st = next_chunk(L, 0, err)) != SDC_OK) goto done;
            continue;
        }
        if ((st = tokenize_raw(tok, fr->text, &ids, &cap, &n, err)) != SDC_OK) goto done;
        for (size_t p = 0; p < n;) {
            if (ids[p] == SDC_A1111_COMMA) {
                L->last_comma = L->n;
            } else if (o->comma_padding_backtrack != 0 && L->n == SDC_A1111_CHUNK && L->last_comma != -1 &&
                       L->n - L->last_comma <= o->comma_padding_backtrack) {
                int keep = L->last_comma + 1, moved = L->n - keep;
                int32_t rt[SDC_A1111_CHUNK];
                double rw[SDC_A1111_CHUNK];
                memcpy(rt, L->cur + keep, (size_t)moved * sizeof *rt);
                memcpy(rw, L->cur_w + keep, (size_t)moved * sizeof *rw);
                L->n = keep;
                if ((st = next_chunk(L, 0, err)) != SDC_OK) goto done;
                memcpy(L->cur, rt, (size_t)moved * sizeof *rt);
                memcpy(L->cur_w, rw, (size_t)moved * sizeof *rw);
                L->n = moved;
            }
            if (L->n == SDC_A1111_CHUNK && (st = next_chunk(L, 0, err)) != SDC_OK) goto done;
            int len = 0;
            const sdc_embedding *e = sdc_embeddings_match(o->embeddings, ids + p, n - p, &len);
            if (!e) {
                L->cur[L->n] = ids[p++];
                L->cur_w[L->n++] = fr->weight;
                continue;
            }
            if (e->error) { /* webui skips or fails on such a file: refuse it by name */
                st = sdc_fail(err, SDC_E_INVALID_ARG, "prompt word '%s' names an embedding that cannot be used: %s",
                              e->name, e->error);
                goto done;
            }
            if (L->n + e->vectors > SDC_A1111_CHUNK && (st = next_chunk(L, 0, err)) != SDC_OK) goto done;
            if ((st = add_embedding(L, e, fr->weight, err)) != SDC_OK) goto done;
            p += (size_t)len;
        }
    }
    st = L->n || out->n == 0 ? next_chunk(L, 1, err) : SDC_OK;
done:
    if (st != SDC_OK) sdc_a1111_chunks_free(out);
    if (o->emphasis != SDC_EMPHASIS_NONE) sdc_prompt_frags_free(&frags);
    free(ids);
    free(L);
    return st;
}

void sdc_a1111_chunks_free(sdc_a1111_chunks *c) {
    if (!c) return;
    free(c->tokens);
    free(c->mult);
    free(c->fixes);
    memset(c, 0, sizeof *c);
}

/* ============================================================================================ */
/* Emphasis                                                                                    */
/* ============================================================================================ */
/*
 * EmphasisOriginal.after_transformers:
 *     original_mean = z.mean(); z = z * multipliers[..., None]; new_mean = z.mean()
 *     z = z * (original_mean / new_mean)
 * all float32 tensors. torch 1.13's z.mean() on the CPU is sum(z).div_(numel), both in float32,
 * and the sum of a contiguous float32 tensor is SumKernel.cpp's cascade: 8-lane vectors (AVX2),
 * 4 interleaved accumulators, a 4-level cascade, then the scalar tail and the lanes. torch_sum
 * repeats that order, so the means come out bit-identical to webui's (the golden chunk means).
 */

/* The batch webui encodes: element i of the [B, 77, D] tensor, rows given by order[B]. */
typedef struct zview {
    const float *z;
    const int *order;
    size_t per; /* 77 * D */
} zview;

static float zget(const zview *v, size_t i) { return v->z[(size_t)v->order[i / v->per] * v->per + i % v->per]; }

static int ceil_log2(size_t x) { /* c10::utils::CeilLog2 */
    if (x <= 2) return 1;
    int k = 0;
    for (size_t y = x - 1; y; y >>= 1) k++;
    return k;
}

static float torch_sum(const zview *v, size_t n) {
    enum { L = 8, ILP = 4, LEVELS = 4 };
    size_t vec_numel = n / L, size_ilp = vec_numel / ILP;
    float acc[LEVELS][ILP][L];
    memset(acc, 0, sizeof acc);
    int power = ceil_log2(size_ilp) / LEVELS;
    if (power < 4) power = 4;
    size_t step = (size_t)1 << power, mask = step - 1, i = 0;
#define ADD_ROW(row)                                                                                                   \
    for (int k = 0; k < ILP; k++)                                                                                      \
        for (int l = 0; l < L; l++) acc[0][k][l] += zget(v, ((row)*ILP + (size_t)k) * L + (size_t)l);
    while (i + step <= size_ilp) { /* multi_row_sum */
        for (size_t j = 0; j < step; j++, i++) ADD_ROW(i)
        for (int j = 1; j < LEVELS; j++) {
            for (int k = 0; k < ILP; k++)
                for (int l = 0; l < L; l++) acc[j][k][l] += acc[j - 1][k][l], acc[j - 1][k][l] = 0;
            if (i & (mask << (j * power))) break;
        }
    }
    for (; i < size_ilp; i++) ADD_ROW(i)
#undef ADD_ROW
    for (int j = 1; j < LEVELS; j++)
        for (int k = 0; k < ILP; k++)
            for (int l = 0; l < L; l++) acc[0][k][l] += acc[j][k][l];
    for (size_t r = size_ilp * ILP; r < vec_numel; r++) /* row_sum: leftover vectors, then the ILP rows */
        for (int l = 0; l < L; l++) acc[0][0][l] += zget(v, r * L + (size_t)l);
    for (int k = 1; k < ILP; k++)
        for (int l = 0; l < L; l++) acc[0][0][l] += acc[0][k][l];
    float total = 0.0f; /* vectorized_inner_sum: scalar tail, then the lanes */
    for (size_t t = vec_numel * L; t < n; t++) total += zget(v, t);
    for (int l = 0; l < L; l++) total += acc[0][0][l];
    return total;
}

static float torch_mean(const zview *v, size_t n) { return torch_sum(v, n) / (float)n; }

void sdc_a1111_emphasis(float *z, const float *mult, int R, int D, const int *order, int B, sdc_emphasis e,
                        float means[2]) {
    if (means) means[0] = means[1] = 0.0f;
    if (e == SDC_EMPHASIS_NONE || e == SDC_EMPHASIS_IGNORE) return;
    int ident[1] = {0};
    if (!order) order = ident, B = 1; /* callers without duplicates pass R == 1 or an order */
    zview v = {z, order, (size_t)CTX * (size_t)D};
    size_t n = (size_t)B * v.per;
    float m0 = torch_mean(&v, n);
    for (int r = 0; r < R; r++)
        for (int t = 0; t < CTX; t++) {
            float w = mult[r * CTX + t], *row = z + ((size_t)r * CTX + (size_t)t) * (size_t)D;
            for (int d = 0; d < D; d++) row[d] *= w;
        }
    float m1 = torch_mean(&v, n);
    if (means) means[0] = m0, means[1] = m1;
    if (e != SDC_EMPHASIS_ORIGINAL) return;
    /* webui divides as is; with m1 == m0 (all multipliers 1) that is exactly 1, except 0/0: a
     * chunk whose mean is exactly 0 (possible with untrained weights) would turn into NaN, so
     * equal means and a zero m1 keep the values unscaled. */
    float ratio = (m1 == m0 || m1 == 0.0f) ? 1.0f : m0 / m1;
    for (size_t i = 0; i < (size_t)R * v.per; i++) z[i] *= ratio;
}

/* ============================================================================================ */
/* forward(texts)                                                                              */
/* ============================================================================================ */

/* The batch of one call, with identical texts encoded once: zu [U, 77 K, D], uidx [B] -> row. */
typedef struct enc_batch {
    int U, K, D;
    float *zu;
    int *uidx;
} enc_batch;

static void enc_batch_free(enc_batch *e) {
    free(e->zu);
    free(e->uidx);
    memset(e, 0, sizeof *e);
}

/* Runs the text encoder on rows [R, 77] of ids, or (emb not NULL, a runner built with
 * SDC_RUNNER_CLIP_EMBEDS) on their token-embedding rows emb [R, 77, D], -> z [R, 77, D],
 * ENCODE_BATCH rows at a time (unused rows of the last run repeat the first row). */
static sdc_status run_clip(sdc_runner *r, sdc_pool *pool, int RB, const int32_t *ids, const float *emb, int R, int D,
                           float *z, sdc_error *err) {
    size_t row_floats = (size_t)CTX * (size_t)D;
    for (int r0 = 0; r0 < R; r0 += RB) {
        float *in = sdc_runner_input(r, 0);
        for (int k = 0; k < RB; k++) {
            int src_row = r0 + k < R ? r0 + k : 0;
            const int32_t *src = ids + (size_t)src_row * CTX;
            if (emb) memcpy(in + (size_t)k * row_floats, emb + (size_t)src_row * row_floats, row_floats * sizeof *in);
            else
                for (int t = 0; t < CTX; t++) in[k * CTX + t] = (float)src[t];
        }
        SDC_TRY(sdc_runner_run(r, pool, err));
        int rows = R - r0 < RB ? R - r0 : RB;
        memcpy(z + (size_t)r0 * CTX * D, sdc_runner_output(r), (size_t)rows * CTX * (size_t)D * sizeof *z);
    }
    return SDC_OK;
}

/* EmbeddingsWithFixes: token-embedding rows of ids [R, 77] -> emb [R, 77, D], then each fix of
 * chunk i of text u writes its vectors over rows offset+1 .. of row urow[u] (cut at row 77). */
static sdc_status embed_rows(const sdc_model *m, const sdc_a1111_chunks *ch, int U, const int *urow, int i,
                             const int32_t *ids, int R, int D, float *emb, sdc_error *err) {
    SDC_TRY(sdc_clip_gather(m, ids, (size_t)R * CTX, emb, err));
    for (int u = 0; u < U; u++) {
        if (i >= ch[u].n) continue;
        for (int f = 0; f < ch[u].n_fixes; f++) {
            const sdc_a1111_fix *x = &ch[u].fixes[f];
            if (x->chunk != i) continue;
            int rows = CTX - x->offset - 1 < x->emb->vectors ? CTX - x->offset - 1 : x->emb->vectors;
            memcpy(emb + ((size_t)urow[u] * CTX + (size_t)x->offset + 1) * (size_t)D, x->emb->vec,
                   (size_t)rows * (size_t)D * sizeof *emb);
        }
    }
    return SDC_OK;
}

/* webui's "TI hashes" of one forward(): the embeddings in order of chunk, batch row, position. */
static sdc_status record_ti_hashes(const sdc_a1111_chunks *ch, const int *uidx, int B, int K, char **ti_hashes,
                                   sdc_error *err) {
    int cap = 0, n = 0;
    for (int b = 0; b < B; b++) cap += ch[uidx[b]].n_fixes;
    if (!ti_hashes || cap == 0) return SDC_OK;
    const sdc_embedding **used = malloc((size_t)cap * sizeof *used);
    if (!used) return sdc_fail(err, SDC_E_NOMEM, "out of memory");
    for (int i = 0; i < K; i++)
        for (int b = 0; b < B; b++)
            for (int f = 0; f < ch[uidx[b]].n_fixes; f++) {
                const sdc_a1111_fix *x = &ch[uidx[b]].fixes[f];
                int seen = x->chunk != i;
                for (int j = 0; j < n && !seen; j++) seen = used[j] == x->emb;
                if (!seen) used[n++] = x->emb;
            }
    sdc_status st = sdc_ti_hashes_prepend(ti_hashes, used, n, err);
    free(used);
    return st;
}

static sdc_status encode_batch(const sdc_model *m, const sdc_tokenizer *tok, const char *const *texts, int B,
                               const sdc_a1111_opts *o, enc_batch *E, sdc_error *err) {
    memset(E, 0, sizeof *E);
    if (!m || !tok || !texts || B < 1)
        return sdc_fail(err, SDC_E_INVALID_ARG, "A1111 encode: %s",
                        !m     ? "no model"
                        : !tok ? "no tokenizer"
                               : "no texts");
    for (int b = 0; b < B; b++)
        if (!texts[b]) return sdc_fail(err, SDC_E_INVALID_ARG, "A1111 encode: text %d is NULL", b);
    sdc_status st = SDC_OK;
    sdc_a1111_chunks *ch = calloc((size_t)B, sizeof *ch);
    int *first = calloc((size_t)B, sizeof *first);
    int32_t *ids = NULL;
    float *mult = NULL, *z = NULL, *emb = NULL;
    int *order = NULL, *urow = NULL;
    sdc_runner r = {0};
    sdc_pool *pool = NULL;
    if (!ch || !first || !(E->uidx = malloc((size_t)B * sizeof *E->uidx))) goto nomem;

    /* process_texts: unique lines, tokenized once */
    for (int b = 0; b < B; b++) {
        int u = 0;
        while (u < E->U && strcmp(texts[first[u]], texts[b]) != 0) u++;
        if (u == E->U) {
            first[E->U++] = b;
            if ((st = sdc_a1111_tokenize_line(tok, texts[b], o, &ch[u], err)) != SDC_OK) goto done;
            if (ch[u].n > E->K) E->K = ch[u].n;
        }
        E->uidx[b] = u;
    }
    int U = E->U, K = E->K, R_max = 0;
    for (int i = 0; i < K; i++) { /* rows of the chunk-i batch: the texts that have chunk i, + 1 empty */
        int R = 0, shorter = 0;
        for (int u = 0; u < U; u++) R += i < ch[u].n, shorter |= i >= ch[u].n;
        if (R + shorter > R_max) R_max = R + shorter;
    }
    int RB = R_max < ENCODE_BATCH ? R_max : ENCODE_BATCH, n_fixes = 0;
    for (int u = 0; u < U; u++) n_fixes += ch[u].n_fixes;
    /* chunks with embeddings run from token-embedding rows; without, from ids as always */
    unsigned flags = n_fixes ? SDC_RUNNER_CLIP_EMBEDS : 0;
    if ((st = sdc_runner_clip(&r, m, RB, o->clip_skip, flags, err)) != SDC_OK) goto done;
    int D = E->D = m->clip.width;
    size_t T = (size_t)K * CTX, row_floats = (size_t)CTX * (size_t)D;
    if (sdc_mul_size(sdc_mul_size((size_t)U, T * (size_t)D), sizeof(float)) > MAX_COND_BYTES) {
        st = sdc_fail(err, SDC_E_LIMIT, "%d distinct prompt texts of %d chunks need more than %d MiB of conditioning",
                      U, K, MAX_COND_BYTES >> 20);
        goto done;
    }
    if (!(E->zu = malloc((size_t)U * T * (size_t)D * sizeof *E->zu)) ||
        !(ids = malloc((size_t)(U + 1) * CTX * sizeof *ids)) ||
        !(mult = malloc((size_t)(U + 1) * CTX * sizeof *mult)) || !(order = malloc((size_t)B * sizeof *order)) ||
        !(urow = malloc((size_t)U * sizeof *urow)) || !(z = malloc((size_t)(U + 1) * row_floats * sizeof *z)) ||
        (n_fixes && !(emb = malloc((size_t)(U + 1) * row_floats * sizeof *emb))))
        goto nomem;
    if (!(pool = sdc_pool_new(m->n_threads))) {
        st = sdc_fail(err, SDC_E_BACKEND, "cannot start %d threads", m->n_threads);
        goto done;
    }
    for (int i = 0; i < K; i++) {
        /* the chunk-i batch: each text's chunk i, or the empty chunk [BOS, EOS x 76] */
        int R = 0, empty_row = -1;
        for (int u = 0; u < U; u++) {
            if (i < ch[u].n) {
                memcpy(ids + (size_t)R * CTX, ch[u].tokens + (size_t)i * CTX, CTX * sizeof *ids);
                for (int t = 0; t < CTX; t++) mult[R * CTX + t] = (float)ch[u].mult[(size_t)i * CTX + t];
                urow[u] = R++;
            } else {
                if (empty_row < 0) {
                    empty_row = R++;
                    for (int t = 0; t < CTX; t++) {
                        ids[empty_row * CTX + t] = t ? SDC_CLIP_EOS : SDC_CLIP_BOS;
                        mult[empty_row * CTX + t] = 1.0f;
                    }
                }
                urow[u] = empty_row;
            }
        }
        if (emb && (st = embed_rows(m, ch, U, urow, i, ids, R, D, emb, err)) != SDC_OK) goto done;
        if ((st = run_clip(&r, pool, RB, ids, emb, R, D, z, err)) != SDC_OK) goto done;
        for (int b = 0; b < B; b++) order[b] = urow[E->uidx[b]]; /* webui's batch, duplicates included */
        sdc_a1111_emphasis(z, mult, R, D, order, B, o->emphasis, NULL);
        for (int u = 0; u < U; u++)
            memcpy(E->zu + (size_t)u * T * D + (size_t)i * row_floats, z + (size_t)urow[u] * row_floats,
                   row_floats * sizeof *z);
    }
    st = record_ti_hashes(ch, E->uidx, B, K, o->ti_hashes, err);
    goto done;
nomem:
    st = sdc_fail(err, SDC_E_NOMEM, "out of memory encoding %d prompt texts", B);
done:
    if (st != SDC_OK) enc_batch_free(E);
    for (int u = 0; ch && u < B; u++) sdc_a1111_chunks_free(&ch[u]);
    free(ch);
    free(first);
    free(ids);
    free(mult);
    free(z);
    free(emb);
    free(order);
    free(urow);
    sdc_pool_free(pool);
    sdc_runner_free(&r);
    return st;
}

sdc_status sdc_a1111_encode_texts(const sdc_model *m, const sdc_tokenizer *tok, const char *const *texts, int B,
                                  const sdc_a1111_opts *o, float **out, int *n_chunks, sdc_error *err) {
    *out = NULL;
    sdc_a1111_opts def = sdc_a1111_opts_default();
    enc_batch E;
    SDC_TRY(encode_batch(m, tok, texts, B, o ? o : &def, &E, err));
    size_t row = (size_t)E.K * CTX * (size_t)E.D;
    if (sdc_mul_size(sdc_mul_size((size_t)B, row), sizeof **out) > MAX_COND_BYTES) {
        enc_batch_free(&E);
        return sdc_fail(err, SDC_E_LIMIT, "a [%d, %d, %d] conditioning is more than %d MiB", B, E.K * CTX, E.D,
                        MAX_COND_BYTES >> 20);
    }
    if (!(*out = malloc((size_t)B * row * sizeof **out))) {
        enc_batch_free(&E);
        return sdc_fail(err, SDC_E_NOMEM, "out of memory for a [%d, %d, %d] conditioning", B, E.K * CTX, E.D);
    }
    for (int b = 0; b < B; b++) memcpy(*out + (size_t)b * row, E.zu + (size_t)E.uidx[b] * row, row * sizeof **out);
    *n_chunks = E.K;
    enc_batch_free(&E);
    return SDC_OK;
}

sdc_status sdc_encode_a1111_ti(const sdc_model *m, const sdc_tokenizer *tok, const sdc_embeddings *emb,
                               const char *prompt, int clip_skip, float **out, int *n_tokens, char **ti_hashes,
                               char *errbuf, size_t errlen) {
    sdc_error e = {0};
    sdc_a1111_opts o = sdc_a1111_opts_default();
    o.clip_skip = clip_skip;
    o.embeddings = emb;
    o.ti_hashes = ti_hashes;
    int k = 0;
    if (out) *out = NULL;
    if (ti_hashes) *ti_hashes = NULL;
    if (!out || !n_tokens)
        sdc_fail(&e, SDC_E_INVALID_ARG, "sdc_encode_a1111: %s is NULL", out ? "n_tokens" : "out");
    else if (sdc_a1111_encode_texts(m, tok, &prompt, 1, &o, out, &k, &e) == SDC_OK)
        *n_tokens = k * CTX;
    if (e.code != SDC_OK && ti_hashes) {
        free(*ti_hashes);
        *ti_hashes = NULL;
    }
    if (e.code != SDC_OK && errbuf && errlen) snprintf(errbuf, errlen, "%s", e.msg);
    return e.code;
}

sdc_status sdc_encode_a1111(const sdc_model *m, const sdc_tokenizer *tok, const char *prompt, int clip_skip,
                            float **out, int *n_tokens, char *errbuf, size_t errlen) {
    return sdc_encode_a1111_ti(m, tok, NULL, prompt, clip_skip, out, n_tokens, NULL, errbuf, errlen);
}

/* ============================================================================================ */
/* The sampler's conditioning: AND parts x prompt-editing schedules                            */
/* ============================================================================================ */
/*
 * get_multicond_learned_conditioning (positive) / get_learned_conditioning (negative): per unique
 * subprompt, its schedule texts are encoded as ONE batch (so the emphasis means, and the chunk
 * count, are shared by the schedule's texts). At each model call:
 *     target_index = 0
 *     for current, entry in enumerate(schedule): if step <= entry.end_at_step: target = current; break
 * and stack_conds pads the parts to the longest by repeating each one's last token vector.
 */

typedef struct sub_cond {
    int n_entries;
    int *end_at_step; /* [n_entries] */
    int *entry_row;   /* [n_entries] -> row of z */
    int T;            /* 77 x chunks */
    float *z;         /* [unique texts, T, D] */
} sub_cond;

struct sdc_a1111_cond {
    int D, T;
    int n_subs;
    sub_cond *subs;
    int n_parts;
    int *part_sub;
    double *weight;
};

void sdc_a1111_cond_free(sdc_a1111_cond *c) {
    if (!c) return;
    for (int i = 0; i < c->n_subs; i++) {
        free(c->subs[i].end_at_step);
        free(c->subs[i].entry_row);
        free(c->subs[i].z);
    }
    free(c->subs);
    free(c->part_sub);
    free(c->weight);
    free(c);
}

static sdc_status encode_sub(const sdc_model *m, const sdc_tokenizer *tok, const char *text, int steps, int hires_steps,
                             const sdc_a1111_opts *o, sub_cond *s, sdc_error *err) {
    sdc_prompt_schedule sch;
    SDC_TRY(sdc_prompt_schedule_get(text, steps, hires_steps, 0, &sch, err));
    sdc_status st = SDC_OK;
    const char **texts = malloc(sch.n * sizeof *texts);
    s->n_entries = (int)sch.n;
    s->end_at_step = malloc(sch.n * sizeof *s->end_at_step);
    s->entry_row = malloc(sch.n * sizeof *s->entry_row);
    if (!texts || !s->end_at_step || !s->entry_row) {
        st = sdc_fail(err, SDC_E_NOMEM, "out of memory for a prompt schedule");
    } else {
        for (size_t i = 0; i < sch.n; i++) texts[i] = sch.v[i].text, s->end_at_step[i] = sch.v[i].end_at_step;
        enc_batch E;
        if ((st = encode_batch(m, tok, texts, (int)sch.n, o, &E, err)) == SDC_OK) {
            memcpy(s->entry_row, E.uidx, sch.n * sizeof *s->entry_row);
            s->T = E.K * CTX;
            s->z = E.zu; /* ownership moves */
            E.zu = NULL;
            enc_batch_free(&E);
        }
    }
    free(texts);
    sdc_prompt_schedule_free(&sch);
    if (st != SDC_OK) { /* the caller frees only the subs that succeeded */
        free(s->end_at_step);
        free(s->entry_row);
        memset(s, 0, sizeof *s);
    }
    return st;
}

sdc_status sdc_a1111_cond_new(const sdc_model *m, const sdc_tokenizer *tok, const char *prompt, int steps,
                              int hires_steps, int is_negative, const sdc_a1111_opts *o, sdc_a1111_cond **out,
                              sdc_error *err) {
    *out = NULL;
    sdc_a1111_opts def = sdc_a1111_opts_default();
    if (!o) o = &def;
    if (!m || !tok || !prompt)
        return sdc_fail(err, SDC_E_INVALID_ARG, "A1111 conditioning: %s is NULL",
                        !m     ? "model"
                        : !tok ? "tokenizer"
                               : "prompt");
    sdc_prompt_and and_split = {0};
    char *single[1] = {(char *)prompt};
    sdc_prompt_and_part one = {0, 1.0};
    if (is_negative) {
        and_split.texts = single, and_split.n_texts = 1, and_split.parts = &one, and_split.n_parts = 1;
    } else {
        SDC_TRY(sdc_prompt_split_and(prompt, &and_split, err));
    }
    sdc_status st = SDC_OK;
    sdc_a1111_cond *c = calloc(1, sizeof *c);
    if (!c || !(c->subs = calloc(and_split.n_texts, sizeof *c->subs)) ||
        !(c->part_sub = malloc(and_split.n_parts * sizeof *c->part_sub)) ||
        !(c->weight = malloc(and_split.n_parts * sizeof *c->weight))) {
        st = sdc_fail(err, SDC_E_NOMEM, "out of memory for a prompt's conditioning");
        goto done;
    }
    for (size_t i = 0; i < and_split.n_texts; i++) {
        if ((st = encode_sub(m, tok, and_split.texts[i], steps, hires_steps, o, &c->subs[i], err)) != SDC_OK) goto done;
        c->n_subs++;
        if (c->subs[i].T > c->T) c->T = c->subs[i].T;
    }
    c->D = m->clip.width;
    c->n_parts = (int)and_split.n_parts;
    for (int j = 0; j < c->n_parts; j++)
        c->part_sub[j] = and_split.parts[j].index, c->weight[j] = and_split.parts[j].weight;
done:
    if (!is_negative) sdc_prompt_and_free(&and_split);
    if (st != SDC_OK)
        sdc_a1111_cond_free(c);
    else
        *out = c;
    return st;
}

int sdc_a1111_cond_parts(const sdc_a1111_cond *c) { return c->n_parts; }
double sdc_a1111_cond_weight(const sdc_a1111_cond *c, int part) { return c->weight[part]; }
int sdc_a1111_cond_tokens(const sdc_a1111_cond *c) { return c->T; }
int sdc_a1111_cond_width(const sdc_a1111_cond *c) { return c->D; }

/* reconstruct_cond_batch's choice of schedule entry. */
static int entry_at(const sub_cond *s, int step) {
    for (int e = 0; e < s->n_entries; e++)
        if (step <= s->end_at_step[e]) return e;
    return 0;
}

int sdc_a1111_cond_rows(const sdc_a1111_cond *c, int step, float *out) {
    int changed = step == 0;
    size_t D = (size_t)c->D;
    for (int j = 0; j < c->n_parts; j++) {
        const sub_cond *s = &c->subs[c->part_sub[j]];
        int e = entry_at(s, step);
        if (step > 0 && e != entry_at(s, step - 1)) changed = 1;
        const float *src = s->z + (size_t)s->entry_row[e] * (size_t)s->T * D;
        float *dst = out + (size_t)j * (size_t)c->T * D;
        memcpy(dst, src, (size_t)s->T * D * sizeof *dst);
        for (int t = s->T; t < c->T; t++) memcpy(dst + (size_t)t * D, src + (size_t)(s->T - 1) * D, D * sizeof *dst);
    }
    return changed;
}

void sdc_a1111_pad(const float *in, int T_in, int D, const float *empty, int T_out, float *out) {
    size_t row = (size_t)D;
    int keep = T_in < T_out ? T_in : T_out;
    memmove(out, in, (size_t)keep * row * sizeof *out);
    for (int t = keep; t < T_out; t++) {
        const float *src = empty ? empty + (size_t)((t - keep) % CTX) * row : in + (size_t)(T_in - 1) * row;
        memcpy(out + (size_t)t * row, src, row * sizeof *out);
    }
}
