/* src/prompt/embeddings.h: textual-inversion embeddings as AUTOMATIC1111's webui 1.10 finds and
 * applies them (modules/textual_inversion/textual_inversion.py EmbeddingDatabase,
 * modules/sd_hijack_clip.py tokenize_line, modules/sd_hijack.py EmbeddingsWithFixes).
 *
 * The database: every file under a directory (subdirectories too) whose extension is .pt, .bin
 * or .safetensors (any case) and that is not empty. Its name is the file name without the
 * extension; its vectors [N, width] come from
 *   .safetensors   the single tensor of the file (webui's "diffuser concept" path; A1111's own
 *                  exports hold one tensor "emb_params"), [width] meaning [1, width];
 *   .pt / .bin     a torch.save zip (io/torch_zip.h) holding a dict: with 'string_to_param'
 *                  (a dict, or an old nn.ParameterDict, of exactly one [N, width] tensor), or a
 *                  dict of exactly one tensor ([width] or [N, width], diffusers' learned_embeds).
 * Two files with the same name: a usable one wins over an unusable one, else the later in sorted
 * path order (webui replaces an embedding registered again under the same name).
 *
 * Matching is on token ids, not text: each embedding's name is tokenized (no BOS/EOS), and at a
 * token position of a prompt fragment the longest name whose ids follow is taken (among equally
 * long ones the first registered). Its N vectors replace the name's tokens; the fragment's weight
 * applies to them. Unknown words stay text, as in webui.
 *
 * Files webui would skip or fail on are kept as "unusable" with the reason: vectors whose width
 * is not the text encoder's (an SDXL clip_g/clip_l file, a 768-wide one on another model), more
 * than 75 vectors (they cannot fit a chunk; webui fails on them), a malformed or unreadable
 * file. An unusable embedding is refused, by file name and reason, only when a prompt names it;
 * unused ones cost nothing. (webui prints such files at load time and then reads the word as
 * text; a clear refusal at use is kinder than a silently different picture.)
 *
 * Limits: SDC_EMB_MAX_FILES files, SDC_EMB_MAX_DEPTH directory levels, SDC_EMB_MAX_FILE_BYTES per
 * file (a bigger file is unusable, never read).
 */
#ifndef SDC_PROMPT_EMBEDDINGS_H
#define SDC_PROMPT_EMBEDDINGS_H

#include "core/error.h"
#include "sdc.h"

#include <stdint.h>

#define SDC_EMB_MAX_FILES 4096
#define SDC_EMB_MAX_DEPTH 8
#define SDC_EMB_MAX_FILE_BYTES ((int64_t)64 << 20)
#define SDC_EMB_MAX_VECTORS 75 /* a chunk's tokens */
#define SDC_EMB_MAX_NAME_IDS 64

typedef struct sdc_embedding {
    char *name;          /* file name without extension */
    char *path;
    int32_t ids[SDC_EMB_MAX_NAME_IDS]; /* the name tokenized, without BOS/EOS */
    int n_ids;
    int vectors, width;  /* N and width of vec */
    float *vec;          /* [N, width]; NULL when unusable */
    char shorthash[13];  /* webui's shorthash: the first 12 hex digits of the file's sha256 */
    char *error;         /* NULL when usable; else one line naming the file and the reason */
} sdc_embedding;

struct sdc_embeddings {
    int width;           /* the text encoder's width */
    int n;
    sdc_embedding *v;    /* in registration order (see above) */
};

/* Reads one embedding file for a text encoder of `width`. Returns SDC_OK with e->error set when
 * the file is unusable (see above), an error status only for out-of-memory. */
sdc_status sdc_embedding_read(const sdc_tokenizer *tok, const char *path, int width, sdc_embedding *e,
                              sdc_error *err);
void sdc_embedding_clear(sdc_embedding *e);

/* Loads every embedding file under `dir` (see above). Fails when dir is not a readable directory,
 * holds more than SDC_EMB_MAX_FILES candidates, or memory runs out. */
sdc_status sdc_embeddings_load_dir(const sdc_tokenizer *tok, const char *dir, int width, sdc_embeddings **out,
                                   sdc_error *err);

/* The embedding whose name's ids start ids[0 .. n) (the longest such; ties: the first), or NULL.
 * *len: how many ids it covers. The result may be unusable (->error set). */
const sdc_embedding *sdc_embeddings_match(const sdc_embeddings *db, const int32_t *ids, size_t n, int *len);

/* webui's "TI hashes" bookkeeping for one text-encoder call (FrozenCLIPEmbedderWithCustomWords
 * .forward): `used` [n] are the embeddings its chunks used, in first-use order; the call's
 * "NAME: SHORTHASH" entries (NAME without ':' and ','), then the previous value, joined with
 * ", ", become the new *ti_hashes (malloc'd; NULL = none yet). n == 0 leaves it unchanged. */
sdc_status sdc_ti_hashes_prepend(char **ti_hashes, const sdc_embedding *const *used, int n, sdc_error *err);

#endif
