/* tests/unit/test_pickle_dict.c: the restricted pickle reader (src/io/pickle_dict.h).
 *
 * - real data: every member of Axera's three calib_data_vae_*.tar (pulsar2 NumpyObject .npy,
 *   np.save protocol 3) gives {'x': float32 [1, 4, h, w]} whose values are the bytes of the
 *   pickle's BINBYTES payload;
 * - pickles made by Python's own pickler with numpy's reduce output (protocol 2 with
 *   _codecs.encode bytes, 4 with STACK_GLOBAL/MEMOIZE/FRAME, 5 with _frombuffer + BYTEARRAY8,
 *   Fortran-order arrays in protocols 3 and 5) read as the same dict;
 * - refused with a one-line message and the right status: os/posix.system, int64 and
 *   big-endian arrays, short data, a list instead of a dict, stack/memo/MARK/object bombs;
 * - every truncation and every one-byte corruption of the vectors fails cleanly or parses
 *   (run under ASan+UBSan).
 *
 * The vectors below were made by python3's pickle module dumping stand-in numpy classes whose
 * __reduce_ex__ returns exactly what numpy's ndarray/dtype return (numpy itself is not needed):
 *   a = float32 [[1, 2, 3], [4, 5, 6]]; b = float32 [-1.5, 0.25, 1e30]
 *   pk_protoN = pickle.dumps({'x': a, 'bias': b}, protocol=N)
 */
#include "io/pickle_dict.h"

#include "io/tar.h"
#include "test.h"

#include <stdint.h>

static const char pk_proto2[] =
    "\200\002}q\000(X\001\000\000\000xq\001cnumpy.core.multiarray\012_reconstruct\012q\002cnu"
    "mpy\012ndarray\012q\003K\000\205q\004c_codecs\012encode\012q\005X\001\000\000\000bq\006X"
    "\006\000\000\000latin1q\007\206q\010Rq\011\207q\012Rq\013(K\001K\002K\003\206q\014cnumpy"
    "\012dtype\012q\015X\002\000\000\000f4q\016\211\210\207q\017Rq\020(K\003X\001\000\000\000"
    "<q\021NNNJ\377\377\377\377J\377\377\377\377K\000tq\022b\211h\005X\034\000\000\000\000"
    "\000\302\200\077\000\000\000@\000\000@@\000\000\302\200@\000\000\302\240@\000\000\303"
    "\200@q\023h\007\206q\024Rq\025tq\026bX\004\000\000\000biasq\027h\002h\003h\004h\011\207q"
    "\030Rq\031(K\001K\003\205q\032h\015h\016\211\210\207q\033Rq\034(K\003h\021NNNJ\377\377"
    "\377\377J\377\377\377\377K\000tq\035b\211h\005X\021\000\000\000\000\000\303\200\302\277"
    "\000\000\302\200>\303\212\303\262Iqq\036h\007\206q\037Rq tq!bu."
    ;
static const char pk_proto4[] =
    "\200\004\225\370\000\000\000\000\000\000\000}\224(\214\001x\224\214\025numpy.core.multia"
    "rray\224\214\014_reconstruct\224\223\224\214\005numpy\224\214\007ndarray\224\223\224K"
    "\000\205\224C\001b\224\207\224R\224(K\001K\002K\003\206\224h\005\214\005dtype\224\223"
    "\224\214\002f4\224\211\210\207\224R\224(K\003\214\001<\224NNNJ\377\377\377\377J\377\377"
    "\377\377K\000t\224b\211C\030\000\000\200\077\000\000\000@\000\000@@\000\000\200@\000\000"
    "\240@\000\000\300@\224t\224b\214\004bias\224h\004h\007h\010h\011\207\224R\224(K\001K\003"
    "\205\224h\016h\017\211\210\207\224R\224(K\003h\022NNNJ\377\377\377\377J\377\377\377\377K"
    "\000t\224b\211C\014\000\000\300\277\000\000\200>\312\362Iq\224t\224bu."
    ;
static const char pk_proto5[] =
    "\200\005\225\340\000\000\000\000\000\000\000}\224(\214\001x\224\214\022numpy.core.numeri"
    "c\224\214\013_frombuffer\224\223\224(\226\030\000\000\000\000\000\000\000\000\000\200"
    "\077\000\000\000@\000\000@@\000\000\200@\000\000\240@\000\000\300@\224\214\005numpy\224"
    "\214\005dtype\224\223\224\214\002f4\224\211\210\207\224R\224(K\003\214\001<\224NNNJ\377"
    "\377\377\377J\377\377\377\377K\000t\224bK\002K\003\206\224\214\001C\224t\224R\224\214"
    "\004bias\224h\004(\226\014\000\000\000\000\000\000\000\000\000\300\277\000\000\200>\312"
    "\362Iq\224h\010h\011\211\210\207\224R\224(K\003h\014NNNJ\377\377\377\377J\377\377\377"
    "\377K\000t\224bK\003\205\224h\017t\224R\224u."
    ;
static const char pk_fortran[] =
    "\200\003}q\000X\001\000\000\000xq\001cnumpy.core.multiarray\012_reconstruct\012q\002cnum"
    "py\012ndarray\012q\003K\000\205q\004C\001bq\005\207q\006Rq\007(K\001K\002K\003\206q\010c"
    "numpy\012dtype\012q\011X\002\000\000\000f4q\012\211\210\207q\013Rq\014(K\003X\001\000"
    "\000\000<q\015NNNJ\377\377\377\377J\377\377\377\377K\000tq\016b\210C\030\000\000\200\077"
    "\000\000\200@\000\000\000@\000\000\240@\000\000@@\000\000\300@q\017tq\020bs."
    ;
static const char pk_fortran5[] =
    "\200\005\225\224\000\000\000\000\000\000\000}\224\214\001x\224\214\022numpy.core.numeric"
    "\224\214\013_frombuffer\224\223\224(\226\030\000\000\000\000\000\000\000\000\000\200\077"
    "\000\000\200@\000\000\000@\000\000\240@\000\000@@\000\000\300@\224\214\005numpy\224\214"
    "\005dtype\224\223\224\214\002f4\224\211\210\207\224R\224(K\003\214\001<\224NNNJ\377\377"
    "\377\377J\377\377\377\377K\000t\224bK\002K\003\206\224\214\001F\224t\224R\224s."
    ;
static const char pk_int64[] =
    "\200\003}q\000X\001\000\000\000xq\001cnumpy.core.multiarray\012_reconstruct\012q\002cnum"
    "py\012ndarray\012q\003K\000\205q\004C\001bq\005\207q\006Rq\007(K\001K\002\205q\010cnumpy"
    "\012dtype\012q\011X\002\000\000\000i8q\012\211\210\207q\013Rq\014(K\003X\001\000\000\000"
    "<q\015NNNJ\377\377\377\377J\377\377\377\377K\000tq\016b\211C\020\001\000\000\000\000\000"
    "\000\000\002\000\000\000\000\000\000\000q\017tq\020bs."
    ;
static const char pk_bigendian[] =
    "\200\003}q\000X\001\000\000\000xq\001cnumpy.core.multiarray\012_reconstruct\012q\002cnum"
    "py\012ndarray\012q\003K\000\205q\004C\001bq\005\207q\006Rq\007(K\001K\002\205q\010cnumpy"
    "\012dtype\012q\011X\002\000\000\000f4q\012\211\210\207q\013Rq\014(K\003X\001\000\000\000"
    ">q\015NNNJ\377\377\377\377J\377\377\377\377K\000tq\016b\211C\010\077\200\000\000@\000"
    "\000\000q\017tq\020bs."
    ;
static const char pk_short[] =
    "\200\003}q\000X\001\000\000\000xq\001cnumpy.core.multiarray\012_reconstruct\012q\002cnum"
    "py\012ndarray\012q\003K\000\205q\004C\001bq\005\207q\006Rq\007(K\001K\002K\003\206q\010c"
    "numpy\012dtype\012q\011X\002\000\000\000f4q\012\211\210\207q\013Rq\014(K\003X\001\000"
    "\000\000<q\015NNNJ\377\377\377\377J\377\377\377\377K\000tq\016b\211C\024\000\000\200\077"
    "\000\000\000@\000\000@@\000\000\200@\000\000\240@q\017tq\020bs."
    ;
static const char pk_list[] =
    "\200\003]q\000cnumpy.core.multiarray\012_reconstruct\012q\001cnumpy\012ndarray\012q\002K"
    "\000\205q\003C\001bq\004\207q\005Rq\006(K\001K\002K\003\206q\007cnumpy\012dtype\012q\010"
    "X\002\000\000\000f4q\011\211\210\207q\012Rq\013(K\003X\001\000\000\000<q\014NNNJ\377\377"
    "\377\377J\377\377\377\377K\000tq\015b\211C\030\000\000\200\077\000\000\000@\000\000@@"
    "\000\000\200@\000\000\240@\000\000\300@q\016tq\017ba."
    ;
static const char pk_evil[] =
    "\200\002}q\000X\001\000\000\000xq\001cposix\012system\012q\002X\012\000\000\000echo pwne"
    "dq\003\205q\004Rq\005s."
    ;

#define VEC(name) name, sizeof name - 1

static int msg_ok(const sdc_error *e) { return e->msg[0] && !strchr(e->msg, '\n'); }

static void check_xb(const char *what, const char *buf, size_t len) {
    sdc_pickle_dict d;
    sdc_error e = {0};
    sdc_status st = sdc_pickle_dict_parse(buf, len, what, &d, &e);
    CHECK(st == SDC_OK, "%s: %s", what, e.msg);
    if (st != SDC_OK) return;
    CHECK(d.n == 2 && strcmp(d.items[0].name, "x") == 0 && strcmp(d.items[1].name, "bias") == 0,
          "%s: keys", what);
    const sdc_pickle_array *x = sdc_pickle_dict_get(&d, "x"), *b = sdc_pickle_dict_get(&d, "bias");
    CHECK(x && x->ndim == 2 && x->shape[0] == 2 && x->shape[1] == 3 && x->numel == 6, "%s: x shape", what);
    CHECK(b && b->ndim == 1 && b->shape[0] == 3, "%s: bias shape", what);
    if (x && b && x->numel == 6 && b->numel == 3) {
        int ok = 1;
        for (int i = 0; i < 6; i++) ok &= x->data[i] == (float)(i + 1);
        CHECK(ok, "%s: x values", what);
        CHECK(b->data[0] == -1.5f && b->data[1] == 0.25f && b->data[2] == 1e30f, "%s: bias values", what);
    }
    CHECK(sdc_pickle_dict_get(&d, "y") == NULL, "%s: absent key", what);
    sdc_pickle_dict_free(&d);
}

static void check_fortran(const char *what, const char *buf, size_t len) {
    sdc_pickle_dict d;
    sdc_error e = {0};
    CHECK(sdc_pickle_dict_parse(buf, len, what, &d, &e) == SDC_OK, "%s: %s", what, e.msg);
    if (d.n != 1) return;
    int ok = d.items[0].ndim == 2 && d.items[0].shape[0] == 2 && d.items[0].shape[1] == 3;
    for (int i = 0; ok && i < 6; i++) ok &= d.items[0].data[i] == (float)(i + 1);
    CHECK(ok, "%s: reordered to C order", what);
    sdc_pickle_dict_free(&d);
}

static void check_refused(const char *what, const void *buf, size_t len, sdc_status want,
                          const char *needle) {
    sdc_pickle_dict d;
    sdc_error e = {0};
    sdc_status st = sdc_pickle_dict_parse(buf, len, what, &d, &e);
    CHECK(st == want, "%s: status %d, want %d (%s)", what, st, want, e.msg);
    CHECK(msg_ok(&e) && strstr(e.msg, needle), "%s: message '%s' lacks '%s'", what, e.msg, needle);
    CHECK(d.n == 0 && d.items == NULL, "%s: output not empty", what);
    printf("  %-14s -> %s\n", what, e.msg);
}

/* Every prefix and every one-byte corruption: no crash, and a clean result either way. */
static void mangle(const char *what, const char *vec, size_t len) {
    unsigned char *b = malloc(len);
    int bad = 0;
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(b, vec, cut);
        sdc_pickle_dict d;
        sdc_error e = {0};
        if (sdc_pickle_dict_parse(b, cut, what, &d, &e) == SDC_OK) sdc_pickle_dict_free(&d);
        else bad += !msg_ok(&e);
    }
    static const unsigned char flips[] = {0xff, 0x01, 0x80, 0x7f};
    for (size_t i = 0; i < len; i++)
        for (size_t f = 0; f < sizeof flips; f++) {
            memcpy(b, vec, len);
            b[i] ^= flips[f];
            sdc_pickle_dict d;
            sdc_error e = {0};
            if (sdc_pickle_dict_parse(b, len, what, &d, &e) == SDC_OK) sdc_pickle_dict_free(&d);
            else bad += !msg_ok(&e);
        }
    CHECK(bad == 0, "%s: %d corruptions failed without a one-line message", what, bad);
    free(b);
}

static void bombs(void) {
    size_t n = 2 + 70000 + 1;
    char *b = malloc(2 * 140000 + 8);
    memcpy(b, "\200\002", 2); /* 70000 NONEs: the stack limit */
    memset(b + 2, 'N', 70000);
    b[n - 1] = '.';
    check_refused("stack bomb", b, n, SDC_E_LIMIT, "stack");
    memcpy(b, "\200\002]", 3); /* a list of 140000 NONEs: the object limit */
    for (int i = 0; i < 140000; i++) memcpy(b + 3 + 2 * i, "Na", 2);
    b[3 + 2 * 140000] = '.';
    check_refused("object bomb", b, 4 + 2 * 140000, SDC_E_LIMIT, "objects");
    memcpy(b, "\200\002", 2); /* 300 nested MARKs */
    memset(b + 2, '(', 300);
    check_refused("mark bomb", b, 302, SDC_E_LIMIT, "MARK");
    free(b);
    check_refused("memo key", VEC("\200\002Nr\377\377\377\177."), SDC_E_LIMIT, "memo");
    check_refused("memo unset", VEC("\200\002h\007."), SDC_E_FORMAT, "memo");
    check_refused("protocol 0", VEC("(dp0\n."), SDC_E_UNSUPPORTED, "opcode");
    check_refused("protocol 6", VEC("\200\006}."), SDC_E_UNSUPPORTED, "protocol");
    check_refused("empty", "", 0, SDC_E_FORMAT, "truncated");
    check_refused("no STOP", VEC("\200\002}"), SDC_E_FORMAT, "truncated");
    check_refused("underflow", VEC("\200\002s."), SDC_E_FORMAT, "underflow");
    check_refused("builtins.eval", VEC("\200\004\214\010builtins\224\214\004eval\224\223."),
                  SDC_E_UNSUPPORTED, "'builtins.eval'");
    check_refused("huge bytes", VEC("\200\004\216\377\377\377\377\377\377\377\177."), SDC_E_FORMAT,
                  "past the end");
    check_refused("int key", VEC("\200\002}K\001Ns."), SDC_E_UNSUPPORTED, "key");
    check_refused("none value", VEC("\200\002}X\001\000\000\000xNs."), SDC_E_UNSUPPORTED, "not a numpy array");
}

/* Every member of a shared calibration tar: {'x': [1, 4, h, w]}, values = the BINBYTES payload. */
static void real_tar(const char *name, int h, int w) {
    char path[512];
    snprintf(path, sizeof path, "%s/models/axera-sd15-lcm-calib/%s", SDC_SHARED_DIR, name);
    sdc_tar t;
    sdc_error e = {0};
    if (sdc_tar_open(path, &t, &e) != SDC_OK) {
        CHECK(0, "%s", e.msg);
        return;
    }
    sdc_tar_member m;
    bool has;
    int n = 0, good = 0;
    size_t nbytes = (size_t)4 * h * w * 4;
    while (sdc_tar_next(&t, &m, &has, &e) == SDC_OK && has) {
        if (m.type != '0') continue;
        n++;
        sdc_pickle_dict d;
        if (!sdc_npy_is_object(m.data, m.size) ||
            sdc_npy_object_parse(m.data, m.size, m.name, &d, &e) != SDC_OK) {
            CHECK(0, "%s: %s", m.name, e.msg);
            continue;
        }
        const sdc_pickle_array *x = sdc_pickle_dict_get(&d, "x");
        /* the payload is the last nbytes before BINPUT n, TUPLE, BINPUT n, BUILD, SETITEM,
         * APPEND, TUPLE, BINPUT n, BUILD, STOP (13 bytes) at the end of the member */
        const unsigned char *payload = m.data + m.size - 13 - nbytes;
        if (d.n == 1 && x && x->ndim == 4 && x->shape[0] == 1 && x->shape[1] == 4 &&
            x->shape[2] == h && x->shape[3] == w && memcmp(x->data, payload, nbytes) == 0)
            good++;
        sdc_pickle_dict_free(&d);
    }
    sdc_tar_close(&t);
    CHECK(n == 20 && good == 20, "%s: %d of %d members read as {'x': [1, 4, %d, %d]}", name, good, n, h, w);
    printf("  %-28s %d members {'x': [1, 4, %d, %d]}\n", name, good, h, w);
}

static void npy_wrapper(void) {
    /* a plain float .npy is not an object array */
    float one = 1.0f;
    int64_t shape1[1] = {1};
    void *plain = NULL;
    size_t plain_len = 0;
    sdc_pickle_dict d;
    sdc_error e = {0};
    CHECK(sdc_npy_encode_f32(&one, 1, shape1, &plain, &plain_len, &e) == SDC_OK, "%s", e.msg);
    CHECK(!sdc_npy_is_object(plain, plain_len), "plain npy taken for an object array");
    CHECK(sdc_npy_object_parse(plain, plain_len, "plain.npy", &d, &e) == SDC_E_FORMAT &&
              strstr(e.msg, "not an object .npy"), "plain npy: %s", e.msg);
    free(plain);
    CHECK(sdc_npy_object_parse("junk", 4, "junk.npy", &d, &e) == SDC_E_FORMAT, "junk npy");
    const char obj2d[] = "\223NUMPY\001\000\071\000{'descr': '|O', 'fortran_order': False, 'shape': (2,), }\n";
    CHECK(sdc_npy_object_parse(obj2d, sizeof obj2d - 1, "o.npy", &d, &e) == SDC_E_UNSUPPORTED &&
              strstr(e.msg, "not 0-d"), "1-d object npy: %s", e.msg);
}

int main(void) {
    check_xb("protocol 2", VEC(pk_proto2));
    check_xb("protocol 4", VEC(pk_proto4));
    check_xb("protocol 5", VEC(pk_proto5));
    check_fortran("fortran p3", VEC(pk_fortran));
    check_fortran("fortran p5", VEC(pk_fortran5));
    check_refused("int64", VEC(pk_int64), SDC_E_UNSUPPORTED, "dtype 'i8'");
    check_refused("big-endian", VEC(pk_bigendian), SDC_E_UNSUPPORTED, "big-endian");
    check_refused("short data", VEC(pk_short), SDC_E_FORMAT, "20 data bytes, its shape needs 24");
    check_refused("list", VEC(pk_list), SDC_E_UNSUPPORTED, "no dict");
    check_refused("posix.system", VEC(pk_evil), SDC_E_UNSUPPORTED, "'posix.system'");
    bombs();
    mangle("protocol 2", VEC(pk_proto2));
    mangle("protocol 4", VEC(pk_proto4));
    mangle("protocol 5", VEC(pk_proto5));
    mangle("fortran p3", VEC(pk_fortran));
    npy_wrapper();
    real_tar("calib_data_vae_256.tar", 32, 32);
    real_tar("calib_data_vae_512.tar", 64, 64);
    real_tar("calib_data_vae_1024x768.tar", 128, 96);
    TEST_MAIN_END();
}
