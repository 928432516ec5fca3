/* src/prompt/prompt_parse.h: AUTOMATIC1111 (stable-diffusion-webui 1.10) prompt syntax.
 *
 * Three parsers, each reproducing one function of webui's modules/prompt_parser.py, result for
 * result (golden data: shared/testdata/a1111/prompt_attention.json and its README, section 1):
 *
 *   sdc_prompt_parse_attention   parse_prompt_attention(text): (emphasis) [de-emphasis] (x:1.3),
 *                                \escapes and BREAK -> [(text, weight), ...]
 *   sdc_prompt_schedule_get      get_learned_conditioning_prompt_schedules([p], steps)[0]:
 *                                prompt editing [from:to:when], [to:when], [from::when] and
 *                                alternation [a|b] -> [(end_at_step, text), ...]
 *   sdc_prompt_split_and         get_multicond_prompt_list([p]): "a :1.2 AND b" -> unique
 *                                subprompts and (index, weight) per part
 *
 * webui applies them in the order split_and -> schedule -> parse_attention (the last inside the
 * text encoder, once per scheduled text); the negative prompt skips split_and.
 *
 * Text is UTF-8 (invalid sequences are treated as U+FFFD would be, as the tokenizer does); the
 * regex classes \s, \w (for \b) and \d are Python's Unicode ones. Weights are computed in double
 * with webui's multiplication order, so they come out bit-identical to Python's floats.
 *
 * Errors: SDC_E_INVALID_ARG where webui raises (a "(a:1.2.3)" weight: float() fails), SDC_E_LIMIT
 * for a prompt over SDC_PROMPT_MAX_BYTES or brackets nested deeper than SDC_PROMPT_MAX_DEPTH (where
 * webui itself would hit Python's recursion limit), SDC_E_NOMEM.
 */
#ifndef SDC_PROMPT_PROMPT_PARSE_H
#define SDC_PROMPT_PROMPT_PARSE_H

#include "core/error.h"

#include <stddef.h>

#define SDC_PROMPT_MAX_BYTES 65536 /* bytes of one prompt (a 10,000-token prompt is about 40-60 KB) */
#define SDC_PROMPT_MAX_DEPTH 500   /* nesting of well-formed [..] / (..) for schedules */
#define SDC_PROMPT_MAX_STEPS 10000 /* steps accepted by sdc_prompt_schedule_get */

/* ---- parse_prompt_attention ---- */

typedef struct sdc_prompt_frag {
    const char *text; /* NUL-terminated, owned by the list */
    size_t len;
    double weight;
    int weight_is_int; /* Python int: the -1 of a BREAK no bracket multiplied (printed "-1") */
} sdc_prompt_frag;

typedef struct sdc_prompt_frags {
    sdc_prompt_frag *v;
    size_t n;
    char *buf_; /* the texts */
} sdc_prompt_frags;

/* parse_prompt_attention(text). Never empty: a text without content gives [("", 1.0)]. */
sdc_status sdc_prompt_parse_attention(const char *text, sdc_prompt_frags *out, sdc_error *err);
void sdc_prompt_frags_free(sdc_prompt_frags *f); /* NULL-safe; leaves *f zeroed */

/* The test webui's tokenize_line applies: text "BREAK" with weight == -1 starts a new chunk. */
int sdc_prompt_frag_is_break(const sdc_prompt_frag *f);

/* ---- get_learned_conditioning_prompt_schedules ---- */

typedef struct sdc_prompt_sched_entry {
    int end_at_step; /* this text is used while step <= end_at_step (see conditioning.h) */
    char *text;
} sdc_prompt_sched_entry;

typedef struct sdc_prompt_schedule {
    sdc_prompt_sched_entry *v;
    size_t n;
} sdc_prompt_schedule;

/* The schedule of one prompt for `steps` sampling steps (1..SDC_PROMPT_MAX_STEPS). hires_steps 0
 * is webui's None; otherwise webui's hires-pass semantics (integer "when" offset by steps, float
 * "when" by 1.0, counted in hires_steps). use_old_scheduling: webui's compatibility option (a
 * "when" below 1 is a fraction, else a step number). A prompt the grammar rejects (a stray '|', a
 * lone trailing backslash) gives [(steps, prompt)] as in webui. Entries are sorted by step; the
 * last has end_at_step == steps (or hires_steps). A prompt mixing stray and well-formed brackets
 * can parse differently from one webui process to the next (lark's Earley ambiguity resolution
 * depends on Python's hash seed); this takes the well-formed reading, one of webui's results. */
sdc_status sdc_prompt_schedule_get(const char *prompt, int steps, int hires_steps, int use_old_scheduling,
                                   sdc_prompt_schedule *out, sdc_error *err);
void sdc_prompt_schedule_free(sdc_prompt_schedule *s); /* NULL-safe */

/* ---- get_multicond_prompt_list ---- */

typedef struct sdc_prompt_and_part {
    int index;     /* into texts */
    double weight; /* the part's ":w" suffix, 1.0 without one */
} sdc_prompt_and_part;

typedef struct sdc_prompt_and {
    char **texts; /* unique subprompts in first-seen order (weight suffix removed) */
    size_t n_texts;
    sdc_prompt_and_part *parts; /* one per AND-separated part, in order */
    size_t n_parts;
} sdc_prompt_and;

sdc_status sdc_prompt_split_and(const char *prompt, sdc_prompt_and *out, sdc_error *err);
void sdc_prompt_and_free(sdc_prompt_and *a); /* NULL-safe */

/* ---- output as Python's json.dumps writes it (the `sdc parse-prompt` command, tests) ---- */

/* repr(float) as json.dumps prints it: "1.0", "1.2100000000000002", "1e-05", "-1.1e+20",
 * "NaN", "Infinity". buf needs 32 bytes. Returns the length. */
size_t sdc_prompt_json_double(double v, char buf[32]);
/* json.dumps(str) with ensure_ascii: quoted, non-ASCII as \uXXXX (surrogate pairs above U+FFFF),
 * invalid UTF-8 as \ufffd. Writes into dst when not NULL; returns the byte count (no NUL). */
size_t sdc_prompt_json_string(char *dst, const char *s, size_t len);

#endif
