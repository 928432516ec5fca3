/* tests/fuzz/fuzz_tokenizer.c: libFuzzer target for the CLIP tokenizer.
 *
 * The input bytes, NUL-terminated (so an embedded NUL ends the text early, as for any C string),
 * are tokenized to 77 ids and raw ids, decoded, and the decoded text tokenized again. Invalid
 * UTF-8 is part of the contract (it reads as U+FFFD, see clip_tokenizer.c), so every input must
 * succeed; the target aborts on a failed call or on ids that break the invariants:
 *   - ids[0] is BOS, ids[1 + min(n, 75)] is EOS and so is everything after it;
 *   - the 77 ids are the raw ids cut at 75, and every id lies in the vocabulary;
 *   - the decoded text is valid UTF-8 without NUL bytes.
 * Inputs over 64 KiB are skipped to keep iterations fast (the tokenizer accepts up to 1 MiB).
 * Built as a real fuzzer with clang -DSDC_FUZZ_LIBFUZZER=ON; otherwise tests/fuzz/replay_main.c
 * replays tests/fuzz/corpus/fuzz_tokenizer. */
#include "sdc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static sdc_tokenizer *tok;

static int valid_utf8(const unsigned char *s) {
    while (*s) {
        unsigned c = *s, n; /* continuation bytes */
        if (c < 0x80) n = 0;
        else if ((c & 0xE0) == 0xC0) n = 1;
        else if ((c & 0xF0) == 0xE0) n = 2;
        else if ((c & 0xF8) == 0xF0) n = 3;
        else return 0;
        if ((n == 1 && c < 0xC2) || c > 0xF4) return 0;
        uint32_t cp = c & (0x7F >> n);
        for (unsigned i = 1; i <= n; i++) {
            if ((s[i] & 0xC0) != 0x80) return 0;
            cp = cp << 6 | (s[i] & 0x3F);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        s += n + 1;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!tok && sdc_tokenizer_new(&tok, NULL, 0) != SDC_OK) abort();
    if (size > 65536) return 0;
    char *text = malloc(size + 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    text[size] = '\0';

    int32_t ids[SDC_CLIP_CTX], raw[SDC_CLIP_CTX], again[SDC_CLIP_CTX];
    size_t n = 0;
    if (sdc_tokenize(tok, text, ids, NULL, 0) != SDC_OK) abort();
    if (sdc_tokenize_raw(tok, text, raw, SDC_CLIP_CTX, &n, NULL, 0) != SDC_OK) abort();
    size_t kept = n < SDC_CLIP_CTX - 2 ? n : SDC_CLIP_CTX - 2;
    if (ids[0] != SDC_CLIP_BOS) abort();
    for (size_t i = 0; i < kept; i++)
        if (ids[1 + i] != raw[i] || raw[i] < 0 || raw[i] >= 49408) abort();
    for (size_t i = kept + 1; i < SDC_CLIP_CTX; i++)
        if (ids[i] != SDC_CLIP_EOS) abort();

    char *back = sdc_detokenize(tok, ids, SDC_CLIP_CTX);
    if (!back || !valid_utf8((const unsigned char *)back)) abort();
    if (sdc_tokenize(tok, back, again, NULL, 0) != SDC_OK) abort();
    free(back);
    free(text);
    return 0;
}
