/* tests/fuzz/fuzz_torch_zip.c: libFuzzer target for the torch.save zip reader and its restricted
 * pickle machine (src/io/torch_zip.h).
 *
 * Each input is opened as a file image (sdc_torch_open_memory). A refusal must leave *out NULL
 * and a one-line message. An accepted file must keep the reader's promises, else the target aborts:
 *   - sdc_torch_bytes gives back the input; every object reachable from the root has a known
 *     kind, STR/BYTES point inside the input, containers hold non-NULL items (a DICT an even
 *     number), an OBJECT's state is a DICT or NULL;
 *   - every tensor has 0..8 dimensions, non-negative shape and strides, numel no more than the
 *     input's length, and each element it addresses inside its storage, which lies inside the
 *     input; float tensors convert with sdc_torch_tensor_f32 (ASan sees any overread);
 *   - sdc_torch_dict_get finds every str key of a dict (the first of equal keys);
 *   - the file closes without leaks.
 * The walk is iterative and bounded (memo sharing can make the object graph a DAG, or a cycle).
 * Built as a real fuzzer with clang -DSDC_FUZZ_LIBFUZZER=ON; otherwise tests/fuzz/replay_main.c
 * replays tests/fuzz/corpus/fuzz_torch_zip (embeddings from `sdc mkmodel --embedding`: webui's
 * string_to_param .pt and a diffusers concept .bin, plus refused variants). */
#include "io/torch_zip.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VISITS 4096

static void require(int cond) {
    if (!cond) abort();
}

static const uint8_t *g_begin, *g_end;

static int inside(const void *p, size_t n) {
    const uint8_t *q = p;
    return q >= g_begin && q <= g_end && n <= (size_t)(g_end - q);
}

static void check_tensor(const sdc_torch_obj *t, size_t size) {
    require(t->ndim >= 0 && t->ndim <= SDC_TORCH_MAX_DIMS);
    require((int)t->dtype >= 0 && (int)t->dtype < SDC_DTYPE_COUNT);
    int64_t numel = 1, last = t->offset;
    require(t->offset >= 0);
    for (int d = 0; d < t->ndim; d++) {
        require(t->shape[d] >= 0 && t->stride[d] >= 0);
        numel *= t->shape[d];
        if (t->shape[d]) last += (t->shape[d] - 1) * t->stride[d];
    }
    require(numel == sdc_torch_numel(t));
    require(numel <= (int64_t)size);
    if (numel == 0) return;
    size_t es = sdc_dtype_table[t->dtype].size;
    require(t->storage_numel >= 0 && last < t->storage_numel);
    require(inside(t->data, (size_t)t->storage_numel * es));
    if (sdc_dtype_table[t->dtype].is_float) {
        float *out = malloc((size_t)numel * sizeof *out);
        require(out != NULL);
        sdc_error err = {0};
        require(sdc_torch_tensor_f32(t, out, &err) == SDC_OK);
        float sink = 0;
        for (int64_t i = 0; i < numel; i++) sink += out[i];
        (void)sink;
        free(out);
    } else {
        unsigned sum = t->data[(size_t)t->offset * es] + t->data[(size_t)last * es + es - 1];
        (void)sum;
        sdc_error err = {0};
        require(sdc_torch_tensor_f32(t, NULL, &err) != SDC_OK && err.msg[0]);
    }
}

static void check_obj(const sdc_torch_obj *o, size_t size) {
    switch (o->kind) {
    case SDC_TORCH_NONE:
    case SDC_TORCH_BOOL:
    case SDC_TORCH_INT:
    case SDC_TORCH_FLOAT:
    case SDC_TORCH_GLOBAL:
    case SDC_TORCH_STORAGE:
        break;
    case SDC_TORCH_STR:
    case SDC_TORCH_BYTES:
        require(o->n == 0 || inside(o->s, o->n));
        break;
    case SDC_TORCH_TUPLE:
    case SDC_TORCH_LIST:
    case SDC_TORCH_DICT:
        require(o->n_items <= o->cap || (o->n_items == 0 && o->items == NULL));
        for (size_t i = 0; i < o->n_items; i++) require(o->items[i] != NULL);
        if (o->kind == SDC_TORCH_DICT) {
            require(o->n_items % 2 == 0);
            for (size_t i = 0; i < o->n_items; i += 2) {
                const sdc_torch_obj *k = o->items[i];
                if (k->kind != SDC_TORCH_STR || memchr(k->s, 0, k->n) || k->n > 255) continue;
                char key[256];
                memcpy(key, k->s, k->n);
                key[k->n] = 0;
                const sdc_torch_obj *v = sdc_torch_dict_get(o, key);
                require(v != NULL);
                if (v != o->items[i + 1]) { /* an earlier equal key */
                    int earlier = 0;
                    for (size_t j = 0; j < i && !earlier; j += 2) earlier = sdc_torch_str_is(o->items[j], key);
                    require(earlier);
                }
            }
        }
        break;
    case SDC_TORCH_TENSOR:
        check_tensor(o, size);
        break;
    case SDC_TORCH_OBJECT:
        require(o->cls != NULL);
        require(o->state == NULL || o->state->kind == SDC_TORCH_DICT);
        break;
    default:
        require(0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sdc_torch_file *f = (sdc_torch_file *)1;
    sdc_error err = {0};
    if (sdc_torch_open_memory(data, size, "fuzz.pt", &f, &err) != SDC_OK) {
        require(f == NULL && err.msg[0] && !strchr(err.msg, '\n'));
        return 0;
    }
    g_begin = data;
    g_end = data + size;
    size_t len = 0;
    require(sdc_torch_bytes(f, &len) == data && len == size);
    const sdc_torch_obj *root = sdc_torch_root(f);
    require(root != NULL);

    /* depth-first over at most MAX_VISITS objects */
    const sdc_torch_obj *stack[MAX_VISITS];
    size_t sp = 0, visits = 0;
    stack[sp++] = root;
    while (sp && visits < MAX_VISITS) {
        const sdc_torch_obj *o = stack[--sp];
        visits++;
        check_obj(o, size);
        if (o->kind == SDC_TORCH_OBJECT && o->state && sp < MAX_VISITS) stack[sp++] = o->state;
        if (o->kind == SDC_TORCH_TUPLE || o->kind == SDC_TORCH_LIST || o->kind == SDC_TORCH_DICT)
            for (size_t i = 0; i < o->n_items && sp < MAX_VISITS; i++) stack[sp++] = o->items[i];
    }
    /* what the embedding reader looks up */
    const sdc_torch_obj *stp = sdc_torch_dict_get(root, "string_to_param");
    if (stp && stp->kind == SDC_TORCH_OBJECT) stp = sdc_torch_dict_get(stp->state, "_parameters");
    (void)stp;
    sdc_torch_close(f);
    return 0;
}
