/* tests/unit/test_pickle_vm.c: the shared restricted pickle machine (src/io/pickle_vm.h) on its
 * own, for what test_pickle_dict and test_torch_zip do not reach through their readers: the
 * caller's switches (opted-in opcodes, hooks left NULL, the lowest protocol, str-only keys, the
 * dict entry limit), the message format, memo sharing and the object limit. */
#include "io/pickle_vm.h"

#include "test.h"

#define VEC(s) (s), sizeof(s) - 1

/* One allowed global, m.f; REDUCE of it makes an EXT object tagged 7 whose payload is its arity. */
static int global(void *ctx, const uint8_t *mod, size_t nm, const uint8_t *name, size_t nn) {
    (void)ctx;
    return sdc_pv_mem_is(mod, nm, "m") && sdc_pv_mem_is(name, nn, "f") ? 0 : -1;
}

static sdc_status reduce(sdc_pv *m, const sdc_pv_obj *fn, sdc_pv_obj **a, size_t na, sdc_pv_obj **out) {
    (void)fn, (void)a;
    if (!(*out = sdc_pv_new_ext(m, 7, sizeof(size_t)))) return m->err->code;
    *(size_t *)(*out)->ext = na;
    return SDC_OK;
}

static sdc_status build(sdc_pv *m, sdc_pv_obj *o, sdc_pv_obj *st) {
    (void)o, (void)st;
    return sdc_pv_fail(m, SDC_E_UNSUPPORTED, "no BUILD here");
}

static sdc_pv_config config(void) {
    return (sdc_pv_config){.label = "t.pkl", .where = "pk", .reads = "test", .refused = ", not m.f",
                           .min_proto = 2, .max_objects = 64, .max_stack = 16, .max_memo = 8,
                           .hooks = {.global = global, .reduce = reduce, .build = build}};
}

/* Runs buf; on success *kind, *i are the result's; the message when it fails. */
static sdc_status run(const sdc_pv_config *c, const char *buf, size_t len, sdc_pv_obj *copy, sdc_error *e) {
    sdc_pv m;
    sdc_pv_obj *r = NULL;
    *e = (sdc_error){0};
    sdc_pv_init(&m, c, buf, len, e);
    sdc_status st = sdc_pv_run(&m, &r);
    if (st == SDC_OK) {
        *copy = *r;
        if (r->kind == SDC_PV_DICT && r->n_items == 2) copy->i = r->items[1]->i;                  /* the one value */
        if (r->kind == SDC_PV_TUPLE && r->n_items == 2) copy->i = r->items[0] == r->items[1];     /* shared? */
        if (r->kind == SDC_PV_EXT) copy->n = *(size_t *)r->ext;
        copy->items = NULL, copy->ext = NULL;
    }
    sdc_pv_free(&m);
    return st;
}

static void refused(const char *what, const sdc_pv_config *c, const char *buf, size_t len, sdc_status want,
                    const char *needle) {
    sdc_pv_obj r;
    sdc_error e;
    sdc_status st = run(c, buf, len, &r, &e);
    CHECK(st == want && strstr(e.msg, needle) && !strchr(e.msg, '\n'), "%s: status %d, message '%s' lacks '%s'", what,
          (int)st, e.msg, needle);
}

int main(void) {
    sdc_pv_config c = config();
    sdc_pv_obj r;
    sdc_error e;

    /* a repeated str key replaces the value; memo entries are shared, not copied; REDUCE via the hook */
    CHECK(run(&c, VEC("\x80\x02}(X\x01\0\0\0aK\x05X\x01\0\0\0aK\x06u."), &r, &e) == SDC_OK && r.kind == SDC_PV_DICT &&
              r.n_items == 2 && r.i == 6, "repeated key: %s", e.msg);
    CHECK(run(&c, VEC("\x80\x02]q\x00h\x00\x86."), &r, &e) == SDC_OK && r.kind == SDC_PV_TUPLE && r.i == 1,
          "memo: %s", e.msg);
    CHECK(run(&c, VEC("\x80\x02\x63m\nf\nK\x01K\x02\x86R."), &r, &e) == SDC_OK && r.kind == SDC_PV_EXT && r.i == 7 && r.n == 2,
          "reduce: %s", e.msg);

    /* refusals, with the caller's words and "label: where offset N:" */
    refused("global", &c, VEC("\x80\x02\x63os\nsystem\n."), SDC_E_UNSUPPORTED, "t.pkl: pk offset 2: refers to 'os.system', not m.f");
    refused("build", &c, VEC("\x80\x02NNb."), SDC_E_UNSUPPORTED, "pk offset 4: no BUILD here");
    refused("binfloat off", &c, VEC("\x80\x02G\x3f\xf0\0\0\0\0\0\0."), SDC_E_UNSUPPORTED, "opcode 0x47 ('G') is not allowed (test)");
    refused("py2 string off", &c, VEC("\x80\x02U\x01a."), SDC_E_UNSUPPORTED, "opcode 0x55");
    refused("bytearray8 off", &c, VEC("\x80\x02\x96\x00\0\0\0\0\0\0\0."), SDC_E_UNSUPPORTED, "opcode 0x96 is not allowed");
    refused("no persistent_load", &c, VEC("\x80\x02NQ."), SDC_E_UNSUPPORTED, "opcode 0x51");
    refused("no newobj", &c, VEC("\x80\x02N)\x81."), SDC_E_UNSUPPORTED, "opcode 0x81");
    refused("protocol 1", &c, VEC("\x80\x01N."), SDC_E_UNSUPPORTED, "protocol 1");
    refused("objects", &c, VEC("\x80\x02]" "NaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNa"
                               "NaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNaNa."), SDC_E_LIMIT, "more than 64 objects");
    refused("stack", &c, VEC("\x80\x02NNNNNNNNNNNNNNNNN."), SDC_E_LIMIT, "stack deeper than 16");
    refused("memo", &c, VEC("\x80\x02Nq\x08."), SDC_E_LIMIT, "memo key 8");
    refused("non-str key", &(sdc_pv_config){.label = "t.pkl", .where = "pk", .reads = "test", .refused = "",
                                            .min_proto = 2, .max_objects = 64, .max_stack = 16, .max_memo = 8,
                                            .str_keys_only = true, .hooks = c.hooks},
            VEC("\x80\x02}K\x01Ns."), SDC_E_UNSUPPORTED, "not a str");

    /* the same files with the switches on */
    c.opcodes = SDC_PV_OP_BINFLOAT | SDC_PV_OP_BINSTRING | SDC_PV_OP_BYTEARRAY8;
    c.min_proto = 0;
    CHECK(run(&c, VEC("\x80\x02G\x3f\xf8\0\0\0\0\0\0."), &r, &e) == SDC_OK && r.kind == SDC_PV_FLOAT && r.f == 1.5,
          "BINFLOAT: %s", e.msg);
    CHECK(run(&c, VEC("\x80\x02U\x02hi."), &r, &e) == SDC_OK && r.kind == SDC_PV_STR && r.n == 2, "SHORT_BINSTRING: %s", e.msg);
    CHECK(run(&c, VEC("\x80\x02\x96\x01\0\0\0\0\0\0\0z."), &r, &e) == SDC_OK && r.kind == SDC_PV_BYTES && r.n == 1,
          "BYTEARRAY8: %s", e.msg);
    CHECK(run(&c, VEC("\x80\x01N."), &r, &e) == SDC_OK && r.kind == SDC_PV_NONE, "protocol 1: %s", e.msg);
    CHECK(run(&c, VEC("\x80\x02}K\x01Ns."), &r, &e) == SDC_OK && r.n_items == 2, "int key: %s", e.msg);
    c.max_dict_items = 1;
    refused("dict entries", &c, VEC("\x80\x02}(K\x01NK\x02Nu."), SDC_E_LIMIT, "more than 1 entries");
    TEST_MAIN_END();
}
