/* src/prompt/conditioning.h: AUTOMATIC1111's text conditioning, as stable-diffusion-webui 1.10
 * computes it for SD1.5 (modules/sd_hijack_clip.py, sd_emphasis.py, prompt_parser.py).
 *
 * Levels, bottom up:
 *   sdc_a1111_tokenize_line   FrozenCLIPEmbedderWithCustomWords.tokenize_line: the prompt's
 *                             attention fragments tokenized one by one, packed into chunks of 75
 *                             tokens (comma backtrack, BREAK), each framed [BOS, 75, EOS], with
 *                             per-token multipliers.
 *   sdc_a1111_emphasis        emphasis "Original": z *= mult, then z *= mean(z_before)/mean(z),
 *                             means over the whole [B, 77, D] batch in float32 as torch takes them.
 *   sdc_a1111_encode_texts    FrozenCLIPEmbedderWithCustomWords(texts), i.e. forward(): per chunk
 *                             index one text-encoder batch over all texts (a text with fewer chunks
 *                             gets the empty chunk [BOS, EOS x 76]), emphasis per chunk batch,
 *                             chunks concatenated: [B, 77 k, D].
 *   sdc_a1111_cond_new        what processing.py hands the sampler: the prompt split at AND
 *                             (positive prompts only), each subprompt's prompt-editing schedule
 *                             encoded as one batch (get_learned_conditioning), and
 *                             sdc_a1111_cond_rows picking each part's conditioning for a step
 *                             (reconstruct_multicond_batch / reconstruct_cond_batch).
 *
 * Cond and uncond of different lengths (webui's CFGDenoiser): with the default options
 * (pad_cond_uncond and pad_cond_uncond_v0 off) webui pads nothing and runs cond and uncond as
 * separate UNet calls; sdc_a1111_pad does what either option does when a caller turns it on.
 *
 * Textual-inversion embeddings (opts.embeddings, src/prompt/embeddings.h): tokenize_line matches
 * embedding names on each fragment's token ids (find_embedding_at_position) and puts the
 * embedding's N vectors in place of the name: N token slots (id 0, the fragment's weight) and a
 * fix {chunk, offset, embedding}. An embedding that does not fit the rest of the chunk starts the
 * next one. As in webui, a comma backtrack moves the tokens after the comma to the next chunk but
 * leaves the fixes where they were (the moved slots read token 0 there, and the old chunk's fix
 * writes its vectors over the padding). The text encoder then runs on token-embedding rows with
 * rows offset+1 .. offset+N replaced by the vectors (EmbeddingsWithFixes; cut at row 77).
 *
 * Not here: extra-network tags such as <lora:x:1> (webui removes them before this point).
 */
#ifndef SDC_PROMPT_CONDITIONING_H
#define SDC_PROMPT_CONDITIONING_H

#include "core/error.h"
#include "prompt/embeddings.h"
#include "sdc.h"

#include <stdint.h>

#define SDC_A1111_CHUNK 75      /* tokens per chunk between BOS and EOS */
#define SDC_A1111_COMMA 267     /* ",</w>" */
#define SDC_A1111_MAX_CHUNKS SDC_MAX_CONTEXT_CHUNKS /* 15,000 tokens, the UNet's context limit */

typedef enum sdc_emphasis {
    SDC_EMPHASIS_ORIGINAL = 0, /* webui's default */
    SDC_EMPHASIS_NONE,         /* no attention parsing: brackets are text */
    SDC_EMPHASIS_IGNORE,       /* parsed, multipliers ignored */
    SDC_EMPHASIS_NO_NORM,      /* z *= mult without restoring the mean */
} sdc_emphasis;

typedef struct sdc_a1111_opts {
    int clip_skip;               /* CLIP_stop_at_last_layers: 1 = last layer */
    int comma_padding_backtrack; /* 20; 0 turns it off */
    sdc_emphasis emphasis;
    const sdc_embeddings *embeddings; /* textual-inversion embeddings; NULL = none */
    char **ti_hashes;                 /* not NULL: receives webui's "TI hashes" value, each encode
                                         prepending its embeddings (sdc_ti_hashes_prepend) */
} sdc_a1111_opts;

/* webui's defaults: clip skip 1, backtrack 20, "Original", no embeddings. */
sdc_a1111_opts sdc_a1111_opts_default(void);

/* ---- tokenize_line ---- */

/* webui's PromptChunkFix: an embedding's vectors go to rows offset+1 .. offset+N of the chunk. */
typedef struct sdc_a1111_fix {
    int chunk;
    int offset; /* among the chunk's 75 tokens (row offset + 1 of the 77, after BOS) */
    const sdc_embedding *emb;
} sdc_a1111_fix;

typedef struct sdc_a1111_chunks {
    int n;           /* chunks (>= 1) */
    int32_t *tokens; /* [n, 77]: BOS, 75 tokens or EOS padding, EOS; 0 where an embedding goes */
    double *mult;    /* [n, 77]: each token's fragment weight (Python float); 1.0 at BOS/EOS/padding */
    int token_count; /* what webui's UI shows: 75 per closed chunk + the last chunk's tokens */
    int n_fixes;
    sdc_a1111_fix *fixes; /* [n_fixes] in order of chunk, then position */
} sdc_a1111_chunks;

sdc_status sdc_a1111_tokenize_line(const sdc_tokenizer *tok, const char *line, const sdc_a1111_opts *o,
                                   sdc_a1111_chunks *out, sdc_error *err);
void sdc_a1111_chunks_free(sdc_a1111_chunks *c); /* NULL-safe */

/* ---- emphasis ----
 * z [R, 77, D] distinct rows, in place; mult [R, 77] float32 (torch.asarray of the Python floats).
 * order [B]: the row of each element of the batch webui builds (duplicates included), whose
 * means are taken, in torch's float32 summation order; NULL: one row (R == 1). means, when not
 * NULL, receives the two means [before, after the multipliers]. */
void sdc_a1111_emphasis(float *z, const float *mult, int R, int D, const int *order, int B, sdc_emphasis e,
                        float means[2]);

/* ---- forward(texts) ----
 * texts [B] -> *out malloc'd [B, 77 * *n_chunks, D] (free()). Identical texts are encoded once. */
sdc_status sdc_a1111_encode_texts(const sdc_model *m, const sdc_tokenizer *tok, const char *const *texts, int B,
                                  const sdc_a1111_opts *o, float **out, int *n_chunks, sdc_error *err);

/* ---- the sampler's conditioning ---- */

typedef struct sdc_a1111_cond sdc_a1111_cond;

/* Encodes `prompt` for a run of `steps` sampling steps (hires_steps 0: no hires pass; see
 * sdc_prompt_schedule_get). is_negative: webui's uncond, which is not split at AND. */
sdc_status sdc_a1111_cond_new(const sdc_model *m, const sdc_tokenizer *tok, const char *prompt, int steps,
                              int hires_steps, int is_negative, const sdc_a1111_opts *o, sdc_a1111_cond **out,
                              sdc_error *err);
void sdc_a1111_cond_free(sdc_a1111_cond *c); /* NULL-safe */

/* AND parts (1 for a negative prompt), their weights, and the row length T (a multiple of 77:
 * the longest part's; every part's rows are this long) and width D. */
int sdc_a1111_cond_parts(const sdc_a1111_cond *c);
double sdc_a1111_cond_weight(const sdc_a1111_cond *c, int part);
int sdc_a1111_cond_tokens(const sdc_a1111_cond *c);
int sdc_a1111_cond_width(const sdc_a1111_cond *c);

/* out [parts, T, D]: each part's conditioning at sampler step `step` (0-based: webui's
 * CFGDenoiser.step, which counts model calls), i.e. its first schedule entry with
 * step <= end_at_step; past the last entry webui falls back to the first, and so does this. A part
 * shorter than T repeats its last token vector (webui's stack_conds). Returns 1 if some part uses
 * another entry than at step - 1 (always 1 at step 0): a caller may skip unchanged rows. */
int sdc_a1111_cond_rows(const sdc_a1111_cond *c, int step, float *out);

/* ---- cond / uncond padding (webui's options; both default off) ----
 * in [T_in, D] -> out [T_out, D] with T_out >= T_in:
 *   empty != NULL (pad_cond_uncond): in, then copies of the empty prompt's [77, D] conditioning
 *                                    (webui pads whichever of cond / uncond is shorter);
 *   empty == NULL (pad_cond_uncond_v0, uncond only): in, then its last vector repeated.
 * pad_cond_uncond_v0 also truncates an uncond longer than cond: copy its first T_out rows. */
void sdc_a1111_pad(const float *in, int T_in, int D, const float *empty, int T_out, float *out);

#endif
