/* torch.save zip reader and writer (src/io/torch_zip.h):
 *  - the embedding writer's files read back: dict layout, tensor shape/dtype, values (f32 exact,
 *    f16 rounded), the zip's 64-byte data alignment and CRC;
 *  - hand-built archives: an old nn.ParameterDict embedding (NEWOBJ + BUILD + _rebuild_parameter),
 *    a transposed (strided) f16 tensor with an offset, BINFLOAT / LONG1 / memo;
 *  - hostile input: legacy pickle files, foreign globals (os.system), storages and strides past
 *    their data, CRC and method errors, memo and MARK limits, every truncation of a valid file
 *    and 3000 random byte mutations: each returns an error status with a message, never a crash
 *    (the ASan/UBSan build runs the same). */
#include "io/torch_zip.h"
#include "test.h"

#include <stdint.h>

/* ---- a tiny pickle builder (protocol 2) ---- */
typedef struct pk {
    uint8_t b[8192];
    size_t n;
} pk;

static void op(pk *p, int c) { p->b[p->n++] = (uint8_t)c; }
static void raw(pk *p, const void *s, size_t n) { memcpy(p->b + p->n, s, n), p->n += n; }
static void u32(pk *p, uint32_t v) {
    for (int i = 0; i < 4; i++) op(p, (int)(v >> (8 * i) & 0xFF));
}
static void str(pk *p, const char *s) { op(p, 'X'), u32(p, (uint32_t)strlen(s)), raw(p, s, strlen(s)); }
static void bint(pk *p, int32_t v) { op(p, 'J'), u32(p, (uint32_t)v); }
static void glob(pk *p, const char *mod, const char *name) {
    op(p, 'c'), raw(p, mod, strlen(mod)), op(p, '\n'), raw(p, name, strlen(name)), op(p, '\n');
}
/* _rebuild_tensor_v2(('storage', torch.<st>, key, 'cpu', numel), offset, (a, b), (sa, sb), False, OrderedDict()) */
static void tensor2(pk *p, const char *st, const char *key, int numel, int offset, int a, int b, int sa, int sb) {
    glob(p, "torch._utils", "_rebuild_tensor_v2");
    op(p, '('), op(p, '('), str(p, "storage"), glob(p, "torch", st), str(p, key), str(p, "cpu"), bint(p, numel);
    op(p, 't'), op(p, 'Q');
    bint(p, offset);
    bint(p, a), bint(p, b), op(p, 0x86);
    bint(p, sa), bint(p, sb), op(p, 0x86);
    op(p, 0x89);
    glob(p, "collections", "OrderedDict"), op(p, ')'), op(p, 'R');
    op(p, 't'), op(p, 'R');
}

/* A zip of data.pkl = pickle and data/0 = storage bytes, parsed from memory. */
static sdc_status open_pk(const pk *p, const void *storage, size_t ssize, uint8_t **img, sdc_torch_file **f,
                          sdc_error *e) {
    const char *names[] = {"archive/data.pkl", "archive/data/0", "archive/version"};
    const void *data[] = {p->b, storage, "3\n"};
    size_t sizes[] = {p->n, ssize, 2}, len = 0;
    *img = sdc_torch_zip_image(names, data, sizes, 3, &len);
    return sdc_torch_open_memory(*img, len, "test.pt", f, e);
}

static uint32_t lcg(uint32_t *s) { return *s = *s * 1664525u + 1013904223u; }

int main(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/test_torch_zip.pt", SDC_BINARY_DIR);
    float vec[3 * 8];
    for (int i = 0; i < 24; i++) vec[i] = (float)(i - 10) * 0.37f + 1e-3f * (float)(i * i);
    sdc_error e = {0};

    /* ---- the writer, read back ---- */
    for (int layout = 1; layout >= 0; layout--)
        for (int half = 0; half < 2; half++) {
            sdc_dtype dt = half ? SDC_F16 : SDC_F32;
            CHECK(sdc_torch_write_embedding(path, "my,name", layout, dt, vec, 3, 8, &e) == SDC_OK, "write: %s", e.msg);
            sdc_torch_file *f = NULL;
            CHECK(sdc_torch_open(path, &f, &e) == SDC_OK, "read back: %s", e.msg);
            if (!f) continue;
            const sdc_torch_obj *root = sdc_torch_root(f), *t;
            if (layout) {
                const sdc_torch_obj *stt = sdc_torch_dict_get(root, "string_to_token");
                CHECK(stt && sdc_torch_dict_get(stt, "*") && sdc_torch_dict_get(stt, "*")->i == 265, "string_to_token");
                CHECK(sdc_torch_str_is(sdc_torch_dict_get(root, "name"), "my,name"), "name");
                CHECK(sdc_torch_dict_get(root, "sd_checkpoint")->kind == SDC_TORCH_NONE, "sd_checkpoint None");
                t = sdc_torch_dict_get(sdc_torch_dict_get(root, "string_to_param"), "*");
            } else {
                CHECK(root->kind == SDC_TORCH_DICT && root->n_items == 2, "diffusers concept: one entry");
                t = sdc_torch_dict_get(root, "<my,name>");
            }
            CHECK(t && t->kind == SDC_TORCH_TENSOR && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 8 &&
                      t->dtype == dt,
                  "layout %d half %d: tensor [3, 8]", layout, half);
            if (t && t->kind == SDC_TORCH_TENSOR) {
                float got[24];
                CHECK(sdc_torch_tensor_f32(t, got, &e) == SDC_OK, "%s", e.msg);
                double err = 0;
                for (int i = 0; i < 24; i++) {
                    float want = half ? sdc_f16_to_f32(sdc_f32_to_f16(vec[i])) : vec[i];
                    err = fmax(err, fabs(got[i] - want));
                }
                CHECK_CLOSE(err, 0.0, half ? "f16 embedding round trip (after rounding)" : "f32 embedding round trip");
                size_t len;
                const uint8_t *b = sdc_torch_bytes(f, &len);
                CHECK((size_t)(t->data - b) % 64 == 0, "storage data aligned to 64 bytes (offset %zu)", (size_t)(t->data - b));
            }
            sdc_torch_close(f);
        }
    remove(path);

    /* ---- an old embedding: string_to_param pickled as an nn.ParameterDict ---- */
    float store[12];
    for (int i = 0; i < 12; i++) store[i] = (float)i;
    pk p = {.n = 0};
    p.n = 0;
    op(&p, 0x80), op(&p, 2), op(&p, '}'), op(&p, 'q'), op(&p, 0), op(&p, '(');
    str(&p, "string_to_param");
    glob(&p, "torch.nn.modules.container", "ParameterDict"), op(&p, ')'), op(&p, 0x81);
    op(&p, '}'), op(&p, '(');
    str(&p, "training"), op(&p, 0x88);
    str(&p, "_parameters"), glob(&p, "collections", "OrderedDict"), op(&p, ')'), op(&p, 'R');
    op(&p, '('), str(&p, "*");
    glob(&p, "torch._utils", "_rebuild_parameter");
    tensor2(&p, "FloatStorage", "0", 12, 0, 2, 6, 6, 1);
    op(&p, 0x88), glob(&p, "collections", "OrderedDict"), op(&p, ')'), op(&p, 'R'), op(&p, 0x87), op(&p, 'R');
    op(&p, 'u');
    str(&p, "_non_persistent_buffers_set"), glob(&p, "builtins", "set"), op(&p, ']'), op(&p, 0x85), op(&p, 'R');
    op(&p, 'u'), op(&p, 'b');
    str(&p, "step"), op(&p, 0x8a), op(&p, 2), op(&p, 0xff), op(&p, 0xff); /* LONG1 -1 */
    str(&p, "lr"), op(&p, 'G');
    {
        double lr = 0.005;
        uint64_t bits;
        memcpy(&bits, &lr, 8);
        for (int i = 7; i >= 0; i--) op(&p, (int)(bits >> (8 * i) & 0xFF));
    }
    str(&p, "again"), op(&p, 'h'), op(&p, 0); /* BINGET of the root dict: a cycle, harmless */
    op(&p, 'u'), op(&p, '.');
    uint8_t *img = NULL;
    sdc_torch_file *f = NULL;
    CHECK(open_pk(&p, store, sizeof store, &img, &f, &e) == SDC_OK, "ParameterDict pickle: %s", e.msg);
    if (f) {
        const sdc_torch_obj *root = sdc_torch_root(f), *pd = sdc_torch_dict_get(root, "string_to_param");
        CHECK(pd && pd->kind == SDC_TORCH_OBJECT && pd->state, "ParameterDict object with state");
        const sdc_torch_obj *t = pd ? sdc_torch_dict_get(sdc_torch_dict_get(pd->state, "_parameters"), "*") : NULL;
        CHECK(t && t->kind == SDC_TORCH_TENSOR && t->shape[0] == 2 && t->shape[1] == 6, "its tensor [2, 6]");
        CHECK(sdc_torch_dict_get(root, "step")->i == -1, "LONG1 -1");
        CHECK(sdc_torch_dict_get(root, "lr")->f == 0.005, "BINFLOAT");
        CHECK(sdc_torch_dict_get(root, "again") == root, "memo cycle");
        const sdc_torch_obj *set = pd ? sdc_torch_dict_get(pd->state, "_non_persistent_buffers_set") : NULL;
        CHECK(set && set->kind == SDC_TORCH_LIST && set->n_items == 0, "builtins.set([]) as an empty list");
    }
    sdc_torch_close(f);
    free(img);

    /* ---- a transposed f16 view with an offset: element [i][j] = storage[1 + j * 3 + i] ---- */
    uint16_t h[16];
    for (int i = 0; i < 16; i++) h[i] = sdc_f32_to_f16((float)i * 0.5f);
    p.n = 0;
    op(&p, 0x80), op(&p, 2), op(&p, '}'), str(&p, "w");
    tensor2(&p, "HalfStorage", "0", 16, 1, 3, 4, 1, 3);
    op(&p, 's'), op(&p, '.');
    CHECK(open_pk(&p, h, sizeof h, &img, &f, &e) == SDC_OK, "strided f16: %s", e.msg);
    if (f) {
        float got[12];
        const sdc_torch_obj *t = sdc_torch_dict_get(sdc_torch_root(f), "w");
        CHECK(t && sdc_torch_tensor_f32(t, got, &e) == SDC_OK, "strided read: %s", e.msg);
        int bad = 0;
        for (int i = 0; t && i < 3; i++)
            for (int j = 0; j < 4; j++) bad += got[i * 4 + j] != (float)(1 + j * 3 + i) * 0.5f;
        CHECK(bad == 0, "strided values: %d wrong", bad);
    }
    sdc_torch_close(f);
    free(img);

    /* ---- refusals ---- */
    struct {
        const char *what, *needle;
        sdc_status want;
    } cases[] = {
        {"os.system", "os.system", SDC_E_UNSUPPORTED},
        {"storage too short", "storage 0 claims", SDC_E_FORMAT},
        {"stride past the storage", "reaches element", SDC_E_FORMAT},
        {"memo key", "memo key", SDC_E_LIMIT},
        {"marks", "MARKs", SDC_E_LIMIT},
        {"opcode", "opcode", SDC_E_UNSUPPORTED},
        {"missing storage entry", "data/7", SDC_E_FORMAT},
        {"foreign persistent id", "persistent id", SDC_E_UNSUPPORTED},
        {"huge stride-0 view", "elements in a file", SDC_E_LIMIT},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        p.n = 0;
        op(&p, 0x80), op(&p, 2);
        switch (c) {
        case 0: glob(&p, "os", "system"), str(&p, "echo hi"), op(&p, 0x85), op(&p, 'R'); break;
        case 1: tensor2(&p, "FloatStorage", "0", 100, 0, 2, 6, 6, 1); break;
        case 2: tensor2(&p, "FloatStorage", "0", 12, 0, 2, 6, 7, 1); break;
        case 3: op(&p, 'N'), op(&p, 'r'), u32(&p, 1u << 30); break;
        case 4: for (int i = 0; i < 300; i++) op(&p, '('); break;
        case 5: op(&p, 'i'); break; /* INST: would import and call */
        case 6: glob(&p, "torch._utils", "_rebuild_tensor_v2"), op(&p, '('), op(&p, '('), str(&p, "storage");
                glob(&p, "torch", "FloatStorage"), str(&p, "7"), str(&p, "cpu"), bint(&p, 1), op(&p, 't'), op(&p, 'Q');
                break;
        case 7: str(&p, "module"), op(&p, 'Q'); break;
        case 8: tensor2(&p, "FloatStorage", "0", 12, 0, 1 << 30, 1 << 30, 0, 0); break;
        }
        op(&p, '.');
        e = (sdc_error){0};
        sdc_status s = open_pk(&p, store, sizeof store, &img, &f, &e);
        CHECK(s == cases[c].want && strstr(e.msg, cases[c].needle) && strstr(e.msg, "test.pt") && !f,
              "%s: status %d, message '%s'", cases[c].what, (int)s, e.msg);
        sdc_torch_close(f);
        free(img);
    }

    /* ---- zip-level damage on a valid archive ---- */
    CHECK(sdc_torch_write_embedding(path, "x", 1, SDC_F32, vec, 3, 8, &e) == SDC_OK, "%s", e.msg);
    FILE *fp = fopen(path, "rb");
    uint8_t good[4096];
    size_t glen = fp ? fread(good, 1, sizeof good, fp) : 0;
    if (fp) fclose(fp);
    remove(path);
    CHECK(glen > 600 && glen < sizeof good, "test archive of %zu bytes", glen);
    uint8_t bad[4096];
    /* 1. legacy (pre-1.6) pickle files */
    static const uint8_t legacy[] = {0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e};
    e = (sdc_error){0};
    CHECK(sdc_torch_open_memory(legacy, sizeof legacy, "old.pt", &f, &e) == SDC_E_UNSUPPORTED && strstr(e.msg, "legacy"),
          "legacy file: %s", e.msg);
    /* 2. a flipped data byte: the CRC catches it */
    memcpy(bad, good, glen);
    bad[520] ^= 0x40; /* inside data/0, which starts at 512 */
    e = (sdc_error){0};
    CHECK(sdc_torch_open_memory(bad, glen, "crc.pt", &f, &e) == SDC_E_FORMAT && strstr(e.msg, "CRC"), "CRC: %s", e.msg);
    /* 3. a compressed entry (method 8 in the central directory) */
    memcpy(bad, good, glen);
    size_t cd = 0;
    for (size_t i = 0; i + 4 <= glen; i++)
        if (bad[i] == 0x50 && bad[i + 1] == 0x4b && bad[i + 2] == 1 && bad[i + 3] == 2) {
            cd = i;
            break;
        }
    bad[cd + 10] = 8;
    e = (sdc_error){0};
    CHECK(sdc_torch_open_memory(bad, glen, "deflate.pt", &f, &e) == SDC_E_UNSUPPORTED && strstr(e.msg, "compressed"),
          "deflate: %s", e.msg);
    /* 4. not a zip at all */
    e = (sdc_error){0};
    CHECK(sdc_torch_open_memory("hello world, this is text", 25, "t.pt", &f, &e) == SDC_E_FORMAT, "text: %s", e.msg);
    /* 5. every truncation fails cleanly */
    int trunc_ok = 0;
    for (size_t n = 0; n < glen; n++) {
        e = (sdc_error){0};
        sdc_status s = sdc_torch_open_memory(good, n, "cut.pt", &f, &e);
        trunc_ok += s != SDC_OK && f == NULL && e.msg[0];
        sdc_torch_close(f);
    }
    CHECK(trunc_ok == (int)glen, "truncations: %d of %zu refused with a message", trunc_ok, glen);
    /* 6. random mutations: 1-4 bytes changed each; any status, no crash, a message on failure */
    uint32_t seed = 12345;
    int mutated = 0, refused = 0, msg_ok = 0;
    for (int it = 0; it < 3000; it++) {
        memcpy(bad, good, glen);
        int k = 1 + (int)(lcg(&seed) % 4);
        for (int j = 0; j < k; j++) bad[lcg(&seed) % glen] = (uint8_t)(lcg(&seed) >> 24);
        e = (sdc_error){0};
        sdc_status s = sdc_torch_open_memory(bad, glen, "fuzz.pt", &f, &e);
        mutated++;
        if (s != SDC_OK) refused++, msg_ok += e.msg[0] != 0 && f == NULL;
        else {
            const sdc_torch_obj *t = sdc_torch_dict_get(sdc_torch_dict_get(sdc_torch_root(f), "string_to_param"), "*");
            if (t && t->kind == SDC_TORCH_TENSOR && sdc_dtype_table[t->dtype].is_float && sdc_torch_numel(t) <= 4096) {
                float out[4096];
                sdc_torch_tensor_f32(t, out, &e);
            }
        }
        sdc_torch_close(f);
    }
    printf("  mutations: %d tried, %d refused (the rest hit unchecked bytes: zip padding, names)\n", mutated, refused);
    CHECK(msg_ok == refused && refused > 2000, "mutations: %d refused, %d with a message", refused, msg_ok);
    TEST_MAIN_END();
}
