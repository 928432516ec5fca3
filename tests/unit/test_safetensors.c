/* tests/unit/test_safetensors.c: the safetensors reader and writer (src/io/safetensors.h).
 *
 * Checks: each hostile file (built in memory, or on disk in a mkdtemp directory) is refused with
 * SDC_E_FORMAT (SDC_E_IO for a directory, FIFO, unreadable or missing file) and a one-line
 * message that names the file and the problem; huge header lengths (2^63, 200 MB) are refused
 * without allocating or reading the header; legal corner cases (zero-length tensors, scalars,
 * gaps, empty header) open; the writer round-trips tensors and metadata, pads the header to 8
 * bytes and leaves no file behind on failure; and the shared checkpoint and golden files open
 * with the expected tensors (cross-checked against the manifests). */
#include "io/json.h"
#include "io/safetensors.h"
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define LABEL "x.safetensors"

static char tmpdir[64];

/* A file image: 8-byte little-endian header length, the header, then data_len bytes 0, 1, 2... */
static unsigned char *image(const char *header, size_t data_len, size_t *len) {
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    unsigned char *b = malloc(*len);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    for (size_t i = 0; i < data_len; i++) b[8 + h + i] = (unsigned char)i;
    return b;
}

/* Checks a refusal: status, NULL handle, one-line message naming `label` and containing `want`. */
static void check_refusal(sdc_status st, sdc_status want_st, const sdc_st_file *f,
                          const sdc_error *e, const char *label, const char *want,
                          const char *what) {
    CHECK(st == want_st && e->code == st, "%s: status %d, want %d (%s)", what, st, want_st, e->msg);
    CHECK(f == NULL, "%s: handle not NULL on failure", what);
    CHECK(e->msg[0] && !strchr(e->msg, '\n') && !strchr(e->msg, '\r'), "%s: not one line: '%s'",
          what, e->msg);
    CHECK(strstr(e->msg, label) != NULL, "%s: message does not name the file: '%s'", what, e->msg);
    CHECK(!want || strstr(e->msg, want), "%s: message '%s' lacks '%s'", what, e->msg, want);
    if (getenv("SDC_TEST_VERBOSE")) printf("  refused: %s\n", e->msg);
}

/* A header + data_len bytes of data must be refused with SDC_E_FORMAT and a message holding want.
 */
static void bad(const char *header, size_t data_len, const char *want) {
    size_t len;
    unsigned char *b = image(header, data_len, &len);
    sdc_st_file *f = (sdc_st_file *)1;
    sdc_error e = {0};
    sdc_status st = sdc_st_open_memory(b, len, LABEL, &f, &e);
    check_refusal(st, SDC_E_FORMAT, f, &e, LABEL, want, header);
    sdc_st_close(f == (sdc_st_file *)1 ? NULL : f);
    free(b);
}

static sdc_st_file *good(const char *header, size_t data_len, unsigned char **keep) {
    size_t len;
    unsigned char *b = image(header, data_len, &len);
    sdc_st_file *f = NULL;
    sdc_error e = {0};
    CHECK(sdc_st_open_memory(b, len, LABEL, &f, &e) == SDC_OK && f, "'%s' refused: %s", header,
          e.msg);
    *keep = b;
    return f;
}

#define T(name, body) "\"" name "\":{" body "}"

static void test_hostile_headers(void) {
    /* the length prefix */
    sdc_st_file *f = NULL;
    sdc_error e = {0};
    check_refusal(sdc_st_open_memory("", 0, LABEL, &f, &e), SDC_E_FORMAT, f, &e, LABEL, "empty",
                  "empty");
    check_refusal(sdc_st_open_memory("\x02\0\0\0\0", 5, LABEL, &f, &e), SDC_E_FORMAT, f, &e, LABEL,
                  "shorter than the 8-byte", "5 bytes");
    unsigned char pre[16] = {100, 0, 0, 0, 0, 0, 0, 0, '{', '}'};
    check_refusal(sdc_st_open_memory(pre, 10, LABEL, &f, &e), SDC_E_FORMAT, f, &e, LABEL,
                  "header length 100 runs past the end", "length past EOF");
    memset(pre, 0, 8);
    pre[7] = 0x80; /* 2^63 */
    check_refusal(sdc_st_open_memory(pre, 16, LABEL, &f, &e), SDC_E_FORMAT, f, &e, LABEL,
                  "header length 9223372036854775808", "2^63");
    memset(pre, 0xff, 8); /* 2^64 - 1: must not wrap around when 8 is added */
    check_refusal(sdc_st_open_memory(pre, 16, LABEL, &f, &e), SDC_E_FORMAT, f, &e, LABEL,
                  "runs past the end", "2^64-1");
    bad("", 0, "unexpected end of input"); /* header length 0 */

    /* the JSON */
    bad("{\"a\":", 0, "header: JSON line 1, column 6");
    bad("{\"a\":{}} x", 0, "after the value");
    bad("[1,2]", 0, "header is an array, not a JSON object");
    bad("\"abc\"", 0, "is a string, not a JSON object");
    bad("{\"a\":[[[[[[[[[[]]]]]]]]]]}", 0, "nesting deeper");
    bad("{\"a\":5}", 0, "tensor 'a': entry is a number, not an object");
    bad("{\"a\":[]}", 0, "tensor 'a': entry is an array");

    /* fields */
    bad("{" T("a", "\"shape\":[1],\"data_offsets\":[0,4]") "}", 4, "tensor 'a': missing 'dtype'");
    bad("{" T("a", "\"dtype\":\"F32\",\"data_offsets\":[0,4]") "}", 4, "missing 'shape'");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[1]") "}", 4, "missing 'data_offsets'");
    bad("{" T("a", "\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]") "}", 4,
        "dtype is a number, not a string");
    bad("{" T("a", "\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") "}",
        4, "duplicate field 'dtype'");
    bad("{" T("a", "\"dtype\":\"F8_E4M3\",\"shape\":[1],\"data_offsets\":[0,1]") "}", 4,
        "unknown or unsupported dtype 'F8_E4M3'");
    bad("{" T("a", "\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]") "}", 4, "dtype 'f32'");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]") "}", 4,
        "shape is a string, not an array");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]") "}", 4,
        "shape[0] is not a non-negative integer");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[2,1.5],\"data_offsets\":[0,4]") "}", 4,
        "shape[1] is not a non-negative integer");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]") "}", 4, "shape[0]");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]") "}", 4,
        "shape[0]");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[9223372036854775808],\"data_offsets\":[0,4]") "}",
        4, "shape[0]");
    bad("{" T("a", "\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]") "}", 4,
        "shape has 9 dims, more than 8");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{}") "}", 4,
        "data_offsets is not an array of 2 non-negative integers");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]") "}", 8,
        "data_offsets is not");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]") "}", 8,
        "data_offsets is not");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]") "}", 8,
        "data_offsets is not");

    /* sizes and offsets */
    bad("{" T("a",
              "\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,4]") "}",
        4, "shape [4294967296, 4294967296, 4] is too large");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[4611686018427387904],\"data_offsets\":[0,4]") "}",
        4, "is too large"); /* numel fits int64, bytes do not */
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,1000]") "}", 8,
        "data_offsets [0, 1000) run past the data section (8 bytes)");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]") "}", 8,
        "data_offsets [8, 4) are inverted");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[18446744073709551615,4]") "}",
        8, "data_offsets is not"); /* past int64 */
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") "," T(
            "b", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]") "}",
        16, "tensor 'b': data_offsets [4, 12) overlap tensor 'a' [0, 8)");
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]") "," T(
            "b", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]") "}",
        16, "overlap"); /* one inside another */
    bad("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") "," T(
            "a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]") "}",
        8, "duplicate tensor name 'a'");

    /* the exact message of a size mismatch */
    size_t len;
    unsigned char *b =
        image("{" T("a.weight", "\"dtype\":\"F16\",\"shape\":[3,2],\"data_offsets\":[0,10]") "}",
              16, &len);
    f = NULL;
    CHECK(sdc_st_open_memory(b, len, LABEL, &f, &e) == SDC_E_FORMAT &&
              !strcmp(e.msg, "x.safetensors: tensor 'a.weight': data_offsets [0, 10) hold 10 bytes "
                             "but F16 [3, 2] needs 12"),
          "size mismatch message: '%s'", e.msg);
    free(b);

    /* names are printed safely: a newline in a name cannot break the one-line rule */
    bad("{\"a\\nb\":5}", 0, "tensor 'a\\x0ab'");
    bad("{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
        "name contains a NUL character");

    /* metadata */
    bad("{\"__metadata__\":[]}", 0, "__metadata__ is an array, not an object");
    bad("{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ 'k': value is a number, not a string");
    bad("{\"__metadata__\":{\"k\":{}}}", 0, "value is an object");
    bad("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}}", 0, "duplicate __metadata__ key 'k'");
    bad("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "duplicate __metadata__");
}

static void test_legal_corners(void) {
    unsigned char *b;
    sdc_st_file *f = good("{}", 0, &b); /* no tensors at all */
    CHECK(f && sdc_st_count(f) == 0 && sdc_st_find(f, "a") == NULL && sdc_st_get(f, 0) == NULL,
          "empty header");
    sdc_st_close(f);
    free(b);

    /* listed out of offset order, with metadata, a zero-length tensor, a scalar, a gap, unknown
     * fields and 8 dims */
    f = good(
        "{" T("w",
              "\"dtype\":\"F32\",\"shape\":[2,1],\"data_offsets\":[8,16]") ","
                                                                           "\"__metadata__\":{"
                                                                           "\"format\":\"pt\","
                                                                           "\"note\":\"\\u00e9\"}"
                                                                           "," T("empty", "\"dtype"
                                                                                          "\":"
                                                                                          "\"F16\","
                                                                                          "\"shape"
                                                                                          "\":[0,3]"
                                                                                          ",\"data_"
                                                                                          "offsets"
                                                                                          "\":[8,"
                                                                                          "8]") "," T(
                                                                               "s", "\"dtype\":"
                                                                                    "\"I32\","
                                                                                    "\"shape\":[],"
                                                                                    "\"data_"
                                                                                    "offsets\":[0,"
                                                                                    "4],\"extra\":["
                                                                                    "1]") "," T("d"
                                                                                                "8",
                                                                                                "\""
                                                                                                "dt"
                                                                                                "yp"
                                                                                                "e"
                                                                                                "\""
                                                                                                ":"
                                                                                                "\""
                                                                                                "U8"
                                                                                                "\""
                                                                                                ","
                                                                                                "\""
                                                                                                "sh"
                                                                                                "ap"
                                                                                                "e"
                                                                                                "\""
                                                                                                ":["
                                                                                                "1,"
                                                                                                "1,"
                                                                                                "1,"
                                                                                                "1,"
                                                                                                "1,"
                                                                                                "1,"
                                                                                                "1,"
                                                                                                "2]"
                                                                                                ","
                                                                                                "\""
                                                                                                "da"
                                                                                                "ta"
                                                                                                "_o"
                                                                                                "ff"
                                                                                                "se"
                                                                                                "ts"
                                                                                                "\""
                                                                                                ":["
                                                                                                "20"
                                                                                                ",2"
                                                                                                "2"
                                                                                                "]") "}",
        24, &b);
    if (f) {
        CHECK(sdc_st_count(f) == 4, "4 tensors");
        const sdc_st_tensor *s = sdc_st_get(f, 0), *em = sdc_st_get(f, 1), *w = sdc_st_get(f, 2);
        CHECK(!strcmp(s->name, "s") && !strcmp(em->name, "empty") && !strcmp(w->name, "w") &&
                  !strcmp(sdc_st_get(f, 3)->name, "d8"),
              "sorted by offset");
        CHECK(s->ndim == 0 && s->numel == 1 && s->nbytes == 4 && s->dtype == SDC_I32, "scalar");
        CHECK(em->numel == 0 && em->nbytes == 0 && em->ndim == 2 && em->shape[0] == 0,
              "zero-length");
        const unsigned char *data =
            (const unsigned char *)sdc_st_file_bytes(f) + sdc_st_file_size(f) - 24;
        CHECK(w->data == data + 8 && ((const unsigned char *)w->data)[0] == 8,
              "data points into the buffer");
        CHECK(w->shape[0] == 2 && w->shape[1] == 1 && w->numel == 2 && w->nbytes == 8, "w shape");
        CHECK(sdc_st_find(f, "w") == w && sdc_st_find(f, "empty") == em && !sdc_st_find(f, "x") &&
                  !sdc_st_find(f, "__metadata__"),
              "find");
        CHECK(sdc_st_get(f, 3)->ndim == 8 && sdc_st_get(f, 3)->numel == 2, "8 dims");
        CHECK(sdc_st_meta_count(f) == 2 && !strcmp(sdc_st_meta_get(f, 1)->key, "note") &&
                  !strcmp(sdc_st_meta_find(f, "note"), "\xc3\xa9") &&
                  !strcmp(sdc_st_meta_find(f, "format"), "pt") && !sdc_st_meta_find(f, "x"),
              "metadata");
        CHECK(!strcmp(sdc_st_path(f), LABEL), "path is the label");
    }
    sdc_st_close(f);
    free(b);

    /* two empty tensors at the same offset, and one inside another's range, overlap nothing */
    f = good(
        "{" T("a", "\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]") "," T(
            "z1",
            "\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]") "," T("z2",
                                                                            "\"dtype\":\"F32\","
                                                                            "\"shape\":[0],\"data_"
                                                                            "offsets\":[4,4]") "}",
        8, &b);
    CHECK(f && sdc_st_count(f) == 3, "empty ranges");
    sdc_st_close(f);
    free(b);
}

/* Writes bytes to dir/name and returns the path (static buffer). */
static const char *put_file(const char *name, const void *p, size_t n) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "wb");
    if (n) fwrite(p, 1, n, fp);
    fclose(fp);
    return path;
}

static long maxrss_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void test_files(void) {
    sdc_st_file *f = NULL;
    sdc_error e = {0};
    char path[256];

    snprintf(path, sizeof path, "%s/missing.safetensors", tmpdir);
    check_refusal(sdc_st_open(path, &f, &e), SDC_E_IO, f, &e, path, "cannot open", "missing");
    check_refusal(sdc_st_open(tmpdir, &f, &e), SDC_E_IO, f, &e, tmpdir, "is a directory",
                  "directory");
    snprintf(path, sizeof path, "%s/fifo", tmpdir);
    if (mkfifo(path, 0600) == 0) /* must not block in open() */
        check_refusal(sdc_st_open(path, &f, &e), SDC_E_IO, f, &e, path, "not a regular file",
                      "fifo");
    unlink(path);

    const char *p = put_file("empty.safetensors", "", 0);
    check_refusal(sdc_st_open(p, &f, &e), SDC_E_FORMAT, f, &e, p, "file is empty", "empty file");

    size_t len;
    unsigned char *b =
        image("{" T("a", "\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]") "}", 4, &len);
    p = put_file("ok.safetensors", b, len);
    snprintf(path, sizeof path, "%s", p);
    CHECK(sdc_st_open(path, &f, &e) == SDC_OK && sdc_st_count(f) == 1 &&
              sdc_st_file_size(f) == len && !memcmp(sdc_st_file_bytes(f), b, len) &&
              !strcmp(sdc_st_path(f), path),
          "small file: %s", e.msg);
    sdc_st_close(f);
    f = NULL;
    /* unreadable: root reads anything, so as root the check runs in a child that drops to nobody */
    chmod(path, 0);
    pid_t pid = geteuid() == 0 ? fork() : 0;
    if (pid == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(2);
        check_refusal(sdc_st_open(path, &f, &e), SDC_E_IO, f, &e, path, "Permission denied",
                      "unreadable");
        if (geteuid() == 65534 && getuid() == 65534) _exit(test_failed_ ? 1 : 0);
    } else {
        int status = -1;
        waitpid(pid, &status, 0);
        CHECK(pid > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "unreadable file (checked as uid 65534): child status %d", status);
    }
    free(b);

    /* A real 200 MB header length in a 210 MB (sparse) file: refused by the limit, before the
     * header is read or anything is allocated for it. Peak RSS must not move. */
    snprintf(path, sizeof path, "%s/huge_header.safetensors", tmpdir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint64_t h = 200u << 20;
    unsigned char le[8];
    for (int i = 0; i < 8; i++) le[i] = (unsigned char)(h >> (8 * i));
    int ok =
        fd >= 0 && write(fd, le, 8) == 8 && write(fd, "{", 1) == 1 && ftruncate(fd, 210 << 20) == 0;
    if (fd >= 0) close(fd);
    CHECK(ok, "cannot build the sparse file");
    long rss0 = maxrss_kb();
    check_refusal(sdc_st_open(path, &f, &e), SDC_E_FORMAT, f, &e, path,
                  "header length 209715200 is over the 104857600-byte limit", "200 MB header");
    long grew = maxrss_kb() - rss0;
    printf("  200 MB header length: refused, peak RSS grew %ld KB\n", grew);
    CHECK(grew < 8 * 1024, "peak RSS grew %ld KB", grew);
    unlink(path);

    /* 2^63 in a small file on disk */
    unsigned char big[16] = {0, 0, 0, 0, 0, 0, 0, 0x80, '{', '}'};
    p = put_file("len63.safetensors", big, sizeof big);
    check_refusal(sdc_st_open(p, &f, &e), SDC_E_FORMAT, f, &e, p, "runs past the end",
                  "2^63 on disk");
}

static void test_writer(void) {
    char path[256], tmp[270];
    snprintf(path, sizeof path, "%s/w.safetensors", tmpdir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    sdc_st_writer *w = NULL;
    sdc_error e = {0};
    float a[6] = {1, 2, 3, 4, 5, -6};
    uint16_t h[5] = {0x3c00, 0x4000, 0x4200, 0x4400, 0x4500};
    int64_t ids[3] = {7, -8, 1ll << 40};
    const int64_t sa[2] = {2, 3}, sh[1] = {5}, sz[2] = {0, 4}, si[1] = {3};
    sdc_status st = sdc_st_writer_new(path, &w, &e);
    if (st == SDC_OK) st = sdc_st_writer_meta(w, "format", "pt", &e);
    if (st == SDC_OK) st = sdc_st_writer_meta(w, "quote\"d\n", "caf\xc3\xa9", &e);
    if (st == SDC_OK) st = sdc_st_writer_declare(w, "a.weight", SDC_F32, 2, sa, &e);
    if (st == SDC_OK) st = sdc_st_writer_declare(w, "h", SDC_F16, 1, sh, &e);
    if (st == SDC_OK) st = sdc_st_writer_declare(w, "zero", SDC_F32, 2, sz, &e);
    if (st == SDC_OK) st = sdc_st_writer_declare(w, "i\"d", SDC_I64, 1, si, &e);
    if (st == SDC_OK) st = sdc_st_writer_begin_data(w, &e);
    for (int i = 0; i < 24 && st == SDC_OK; i++) /* byte by byte through the buffer */
        st = sdc_st_writer_write(w, (const char *)a + i, 1, &e);
    if (st == SDC_OK) st = sdc_st_writer_write(w, h, sizeof h, &e);
    if (st == SDC_OK) st = sdc_st_writer_write(w, ids, sizeof ids, &e);
    CHECK(st == SDC_OK && access(tmp, F_OK) == 0 && access(path, F_OK) != 0, "writing: %s", e.msg);
    if (st == SDC_OK) st = sdc_st_writer_finish(w, &e);
    CHECK(st == SDC_OK && access(tmp, F_OK) != 0, "finish: %s", e.msg);
    sdc_st_writer_free(w);

    sdc_st_file *f = NULL;
    CHECK(sdc_st_open(path, &f, &e) == SDC_OK, "reopen: %s", e.msg);
    if (f) {
        const unsigned char *base = sdc_st_file_bytes(f);
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = hl << 8 | base[i];
        CHECK(hl % 8 == 0 && base[8 + hl - 1] != '\0', "header length %llu is a multiple of 8",
              (unsigned long long)hl);
        CHECK(sdc_st_file_size(f) == 8 + hl + sizeof a + sizeof h + sizeof ids, "file size");
        const sdc_st_tensor *ta = sdc_st_find(f, "a.weight"), *th = sdc_st_find(f, "h"),
                            *tz = sdc_st_find(f, "zero"), *ti = sdc_st_find(f, "i\"d");
        CHECK(ta && ta->dtype == SDC_F32 && ta->ndim == 2 && ta->shape[1] == 3 &&
                  !memcmp(ta->data, a, sizeof a),
              "a.weight round trip");
        CHECK(th && th->dtype == SDC_F16 && th->nbytes == 10 && !memcmp(th->data, h, sizeof h),
              "h");
        CHECK(tz && tz->numel == 0 && tz->shape[1] == 4, "zero-length tensor");
        CHECK(ti && ti->dtype == SDC_I64 && !memcmp(ti->data, ids, sizeof ids),
              "escaped name, I64");
        CHECK(sdc_st_get(f, 0) == ta && sdc_st_get(f, 3) == ti, "declaration order = offset order");
        CHECK(sdc_st_meta_count(f) == 2 &&
                  !strcmp(sdc_st_meta_find(f, "quote\"d\n"), "caf\xc3\xa9"),
              "metadata round trip");
        sdc_st_close(f);
    }

    /* misuse and failures leave nothing behind */
    unlink(path);
    CHECK(sdc_st_writer_new(path, &w, &e) == SDC_OK, "new: %s", e.msg);
    CHECK(sdc_st_writer_declare(w, "a", SDC_F32, 2, sa, &e) == SDC_OK, "declare");
    CHECK(sdc_st_writer_declare(w, "b", SDC_F32, 9, sa, &e) == SDC_E_INVALID_ARG, "9 dims");
    const int64_t neg[1] = {-1}, huge[3] = {1ll << 31, 1ll << 31, 1ll << 31};
    CHECK(sdc_st_writer_declare(w, "b", SDC_F32, 1, neg, &e) == SDC_E_INVALID_ARG, "negative dim");
    CHECK(sdc_st_writer_declare(w, "b", SDC_F32, 3, huge, &e) == SDC_E_INVALID_ARG, "overflow");
    CHECK(sdc_st_writer_declare(w, "\xff", SDC_F32, 1, sh, &e) == SDC_E_INVALID_ARG,
          "bad UTF-8 name");
    CHECK(sdc_st_writer_declare(w, "__metadata__", SDC_F32, 1, sh, &e) == SDC_E_INVALID_ARG,
          "reserved name");
    CHECK(sdc_st_writer_write(w, a, 4, &e) == SDC_E_INVALID_ARG, "write before begin_data");
    CHECK(sdc_st_writer_begin_data(w, &e) == SDC_OK, "begin: %s", e.msg);
    CHECK(sdc_st_writer_declare(w, "c", SDC_F32, 1, sh, &e) == SDC_E_INVALID_ARG, "declare late");
    CHECK(sdc_st_writer_write(w, a, 28, &e) == SDC_E_INVALID_ARG, "write past the declared bytes");
    CHECK(sdc_st_writer_write(w, a, 8, &e) == SDC_OK, "partial write");
    CHECK(sdc_st_writer_finish(w, &e) == SDC_E_INVALID_ARG &&
              strstr(e.msg, "tensor 'a' got 8 of its 24"),
          "short finish: %s", e.msg);
    sdc_st_writer_free(w);
    CHECK(access(path, F_OK) != 0 && access(tmp, F_OK) != 0, "no file left after a failed write");

    CHECK(sdc_st_writer_new(path, &w, &e) == SDC_OK, "new: %s", e.msg);
    sdc_st_writer_declare(w, "a", SDC_F32, 1, sh, &e);
    sdc_st_writer_declare(w, "a", SDC_F32, 1, sh, &e);
    CHECK(sdc_st_writer_begin_data(w, &e) == SDC_E_INVALID_ARG && strstr(e.msg, "declared twice"),
          "duplicate declaration: %s", e.msg);
    sdc_st_writer_free(w);
    CHECK(access(tmp, F_OK) != 0, "no temporary left");
    CHECK(sdc_st_writer_new("/nonexistent/dir/x.safetensors", &w, &e) == SDC_E_IO && !w &&
              strstr(e.msg, "/nonexistent/dir/x.safetensors.tmp"),
          "unwritable path: %s", e.msg);

    /* throughput: 256 MB in 1 MB pieces (figure only; disk-bound) */
    const size_t piece = 1 << 20, n = 256;
    char *buf = calloc(piece, 1);
    const int64_t s_big[2] = {(int64_t)n, (int64_t)piece / 4};
    struct timeval t0, t1;
    gettimeofday(&t0, NULL);
    st = sdc_st_writer_new(path, &w, &e);
    if (st == SDC_OK) st = sdc_st_writer_declare(w, "big", SDC_F32, 2, s_big, &e);
    if (st == SDC_OK) st = sdc_st_writer_begin_data(w, &e);
    for (size_t i = 0; i < n && st == SDC_OK; i++) st = sdc_st_writer_write(w, buf, piece, &e);
    if (st == SDC_OK) st = sdc_st_writer_finish(w, &e);
    gettimeofday(&t1, NULL);
    sdc_st_writer_free(w);
    double sec = (double)(t1.tv_sec - t0.tv_sec) + 1e-6 * (double)(t1.tv_usec - t0.tv_usec);
    printf("  writer: 256 MB in %.2f s (%.0f MB/s, with fsync)\n", sec, 256 / sec);
    CHECK(st == SDC_OK && sdc_st_open(path, &f, &e) == SDC_OK &&
              sdc_st_find(f, "big")->nbytes == n * piece,
          "256 MB file: %s", e.msg);
    sdc_st_close(f);
    unlink(path);
    free(buf);
}

/* Every tensor of a golden file matches the manifest's dtype and shape. */
static void cross_check(const char *st_path, const char *manifest, size_t want_n) {
    sdc_st_file *f = NULL;
    sdc_error e = {0};
    CHECK(sdc_st_open(st_path, &f, &e) == SDC_OK, "open %s: %s", st_path, e.msg);
    sdc_json *m = NULL;
    CHECK(sdc_json_load_file(manifest, &m, &e) == SDC_OK, "%s", e.msg);
    if (!f || !m) {
        sdc_st_close(f);
        sdc_json_free(m);
        return;
    }
    const sdc_json *tensors = sdc_json_get(m, "tensors");
    CHECK(sdc_st_count(f) == want_n && sdc_json_len(tensors) == want_n,
          "%s: %zu tensors, manifest %zu", st_path, sdc_st_count(f), sdc_json_len(tensors));
    static const char *const torch_names[][2] = {
        {"float32", "F32"}, {"int64", "I64"}, {"uint8", "U8"}};
    int mismatches = 0;
    for (size_t i = 0; i < sdc_json_len(tensors); i++) {
        const sdc_json *d = sdc_json_at(tensors, i);
        const sdc_st_tensor *t = sdc_st_find(f, d->key);
        int64_t dims[8];
        size_t nd = 0;
        const char *dt = sdc_json_string(sdc_json_get(d, "dtype")), *want = NULL;
        for (int k = 0; k < 3; k++)
            if (dt && !strcmp(dt, torch_names[k][0])) want = torch_names[k][1];
        int ok = t && sdc_json_ints(sdc_json_get(d, "shape"), dims, 8, &nd) && (int)nd == t->ndim &&
                 want && !strcmp(sdc_dtype_table[t->dtype].name, want);
        for (size_t k = 0; ok && k < nd; k++) ok = dims[k] == t->shape[k];
        if (!ok && mismatches++ < 3) fprintf(stderr, "  %s: mismatch with the manifest\n", d->key);
    }
    CHECK(mismatches == 0, "%s: %d tensors differ from the manifest", st_path, mismatches);
    sdc_json_free(m);
    sdc_st_close(f);
}

static void test_shared(void) {
    const char *ckpt = SDC_SHARED_DIR "/testdata/tiny/sd15-tiny-f32.safetensors";
    sdc_st_file *f = NULL;
    sdc_error e = {0};
    CHECK(sdc_st_open(ckpt, &f, &e) == SDC_OK, "tiny checkpoint: %s", e.msg);
    if (f) {
        CHECK(sdc_st_count(f) == 983 && sdc_st_file_size(f) == 68676732, "983 tensors, %zu",
              sdc_st_count(f));
        const sdc_st_tensor *t = sdc_st_find(f, "model.diffusion_model.input_blocks.0.0.weight");
        CHECK(t && t->dtype == SDC_F32 && t->ndim == 4 && t->shape[0] == 32 && t->shape[1] == 4 &&
                  t->shape[2] == 3 && t->shape[3] == 3 && t->nbytes == 32 * 4 * 9 * 4,
              "input_blocks.0.0.weight F32 [32, 4, 3, 3]");
        t = sdc_st_find(f, "cond_stage_model.transformer.text_model.embeddings.position_ids");
        CHECK(t && t->dtype == SDC_I64 && t->ndim == 2 && t->shape[1] == 77,
              "position_ids I64 [1, 77]");
        CHECK(!strcmp(sdc_st_meta_find(f, "mksd15.variant"), "tiny"), "metadata");
        /* offsets ascend, and find(get(i)) == get(i) */
        int bad = 0;
        for (size_t i = 0; i < sdc_st_count(f); i++) {
            const sdc_st_tensor *g = sdc_st_get(f, i);
            if (sdc_st_find(f, g->name) != g) bad++;
            if (i && (const char *)g->data < (const char *)sdc_st_get(f, i - 1)->data) bad++;
        }
        CHECK(bad == 0, "%d index/order errors", bad);
        sdc_st_close(f);
    }
    cross_check(SDC_SHARED_DIR "/testdata/tiny/golden.safetensors",
                SDC_SHARED_DIR "/testdata/tiny/manifest.json", 82);
    cross_check(SDC_SHARED_DIR "/testdata/a1111/a1111.safetensors",
                SDC_SHARED_DIR "/testdata/a1111/manifest.json", 369);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sdc_st_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_hostile_headers();
    test_legal_corners();
    test_files();
    test_writer();
    test_shared();
    /* the temp dir holds only files this test made */
    static const char *const left[] = {"empty.safetensors", "ok.safetensors", "len63.safetensors"};
    char p[300];
    for (size_t i = 0; i < sizeof left / sizeof *left; i++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, left[i]);
        unlink(p);
    }
    CHECK(rmdir(tmpdir) == 0, "temp dir not empty: %s", strerror(errno));
    TEST_MAIN_END();
}
