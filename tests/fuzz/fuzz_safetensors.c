/* tests/fuzz/fuzz_safetensors.c: libFuzzer target for the safetensors reader and the JSON parser.
 *
 * Each input is tried three ways:
 *   1. as a whole file (sdc_st_open_memory); when it is accepted, every tensor is walked and the
 *      reader's promises are checked: data inside the buffer, nbytes = numel x dtype size,
 *      sdc_st_find(name) returns the same tensor, offsets ascending;
 *   2. as a header: the input becomes the JSON of a file whose data section is 64 bytes, so that
 *      mutations of the JSON reach the tensor checks without having to fix the length prefix;
 *   3. as a JSON document (sdc_json_parse), walked completely.
 * Any crash, sanitizer report or broken promise (abort) is a finding. Built as a real fuzzer with
 * clang -DSDC_FUZZ_LIBFUZZER=ON; otherwise tests/fuzz/replay_main.c replays the corpus. */
#include "io/json.h"
#include "io/safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEADER_DATA 64

static void require(int cond) {
    if (!cond) abort();
}

static void walk_file(const uint8_t *data, size_t size) {
    sdc_st_file *f = NULL;
    sdc_error err = {0};
    if (sdc_st_open_memory(data, size, "fuzz", &f, &err) != SDC_OK) {
        require(f == NULL && err.msg[0] && strchr(err.msg, '\n') == NULL);
        return;
    }
    const uint8_t *end = data + size, *prev = data;
    unsigned sum = 0;
    for (size_t i = 0; i < sdc_st_count(f); i++) {
        const sdc_st_tensor *t = sdc_st_get(f, i);
        const uint8_t *p = t->data;
        require(p >= prev && p <= end && t->nbytes <= (size_t)(end - p));
        require(t->ndim >= 0 && t->ndim <= SDC_ST_MAX_DIMS);
        require((uint64_t)t->numel * sdc_dtype_table[t->dtype].size == t->nbytes);
        require(sdc_st_find(f, t->name) == t);
        if (t->nbytes) sum += p[0] + p[t->nbytes - 1]; /* touch both ends for ASan */
        prev = p;
    }
    for (size_t i = 0; i < sdc_st_meta_count(f); i++) {
        const sdc_st_meta *m = sdc_st_meta_get(f, i);
        require(sdc_st_meta_find(f, m->key) != NULL);
        sum += (unsigned)strlen(m->value);
    }
    (void)sum;
    sdc_st_close(f);
}

/* Visits every node without recursion (the depth is bounded, but keep the fuzzer honest). */
static void walk_json(const uint8_t *data, size_t size) {
    sdc_json *root = NULL;
    sdc_error err = {0};
    if (sdc_json_parse((const char *)data, size, &root, &err) != SDC_OK) {
        require(root == NULL && strchr(err.msg, '\n') == NULL);
        return;
    }
    const sdc_json *stack[SDC_JSON_MAX_DEPTH + 1];
    size_t idx[SDC_JSON_MAX_DEPTH + 1], depth = 0;
    stack[0] = root;
    idx[0] = 0;
    for (;;) {
        const sdc_json *v = stack[depth];
        if (v->type == SDC_JSON_STRING) require(strlen(v->u.str.s) <= v->u.str.len);
        if (idx[depth] < sdc_json_len(v)) {
            const sdc_json *c = sdc_json_at(v, idx[depth]++);
            if (v->type ==
                SDC_JSON_OBJECT) { /* a key with \u0000 cannot be looked up by C string */
                require(c->key != NULL);
                if (strlen(c->key) == c->key_len) require(sdc_json_get(v, c->key) != NULL);
            }
            require(depth < SDC_JSON_MAX_DEPTH);
            stack[++depth] = c;
            idx[depth] = 0;
        } else if (depth == 0) {
            break;
        } else {
            depth--;
        }
    }
    sdc_json_free(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    walk_file(data, size);

    uint8_t *img = malloc(8 + size + HEADER_DATA);
    if (img) {
        for (int i = 0; i < 8; i++) img[i] = (uint8_t)((uint64_t)size >> (8 * i));
        if (size) memcpy(img + 8, data, size);
        for (int i = 0; i < HEADER_DATA; i++) img[8 + size + i] = (uint8_t)i;
        walk_file(img, 8 + size + HEADER_DATA);
        free(img);
    }

    walk_json(data, size);
    return 0;
}
