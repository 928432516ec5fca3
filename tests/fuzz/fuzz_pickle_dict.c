/* tests/fuzz/fuzz_pickle_dict.c: libFuzzer target for the restricted pickle reader.
 *
 * Each input is read twice: as a bare pickle (sdc_pickle_dict_parse) and, when it looks like
 * one, as an object .npy (sdc_npy_object_parse). A refusal must leave an empty dict and a
 * one-line message; an accepted dict must keep the reader's promises, else the target aborts:
 *   - at most SDC_PICKLE_MAX_ITEMS entries, each with a NUL-terminated name, 0..8 dimensions,
 *     numel = the product of the shape, and no more float bytes in total than the input holds;
 *   - every value readable (ASan sees an overread) and the dict freed without leaks.
 * Built as a real fuzzer with clang -DSDC_FUZZ_LIBFUZZER=ON; otherwise tests/fuzz/replay_main.c
 * replays tests/fuzz/corpus/fuzz_pickle_dict (Python's pickles of numpy-style dicts in
 * protocols 2-5, a real Axera calibration member, and refused ones). */
#include "io/pickle_dict.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void require(int cond) {
    if (!cond) abort();
}

static void check(sdc_status st, const sdc_pickle_dict *d, const sdc_error *err, size_t size) {
    if (st != SDC_OK) {
        require(d->n == 0 && d->items == NULL && err->msg[0] && !strchr(err->msg, '\n'));
        return;
    }
    require(d->n >= 0 && d->n <= SDC_PICKLE_MAX_ITEMS);
    size_t bytes = 0;
    float sink = 0;
    for (int i = 0; i < d->n; i++) {
        const sdc_pickle_array *a = &d->items[i];
        require(a->name && strlen(a->name) < size + 1);
        require(a->ndim >= 0 && a->ndim <= SDC_NPY_MAX_DIMS);
        int64_t n = 1;
        for (int k = 0; k < a->ndim; k++) n *= a->shape[k];
        require(n == a->numel);
        bytes += (size_t)n * sizeof(float);
        for (int64_t k = 0; k < n; k++) sink += a->data[k];
        require(sdc_pickle_dict_get(d, a->name) != NULL);
    }
    require(bytes <= size);
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    sdc_pickle_dict d;
    sdc_error err = {0};
    sdc_status st = sdc_pickle_dict_parse(data, size, "fuzz", &d, &err);
    check(st, &d, &err, size);
    sdc_pickle_dict_free(&d);
    if (sdc_npy_is_object(data, size)) {
        sdc_error err2 = {0};
        st = sdc_npy_object_parse(data, size, "fuzz.npy", &d, &err2);
        check(st, &d, &err2, size);
        sdc_pickle_dict_free(&d);
    }
    return 0;
}
