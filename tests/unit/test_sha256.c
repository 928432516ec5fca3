/* tests/unit/test_sha256.c: SHA-256 against the FIPS 180 examples, the streaming interface
 * against one-shot hashing at every split, the SHA-extension path against the portable one, and
 * the file hash / AutoV2 of the shared tiny checkpoint against the sha256 in its manifest. */
#include "core/sha256.h"
#include "test.h"

#include <stdint.h>

static void hex_of(const void *data, size_t n, int portable, char hex[SDC_SHA256_HEX]) {
    sdc_sha256_ctx s;
    uint8_t d[32];
    sdc_sha256_init(&s);
    s.portable = portable;
    sdc_sha256_update(&s, data, n);
    sdc_sha256_final(&s, d);
    sdc_sha256_hex(d, hex);
}

static void test_fips_vectors(void) {
    static const struct { const char *msg, *hex; } v[] = {
        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqr"
         "lmnopqrsmnopqrstnopqrstu",
         "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1"},
    };
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        for (int portable = 0; portable <= 1; portable++) {
            char hex[SDC_SHA256_HEX];
            hex_of(v[i].msg, strlen(v[i].msg), portable, hex);
            CHECK(!strcmp(hex, v[i].hex), "sha256(\"%.20s...\") portable=%d: %s, want %s",
                  v[i].msg, portable, hex, v[i].hex);
        }

    /* one million 'a', fed in uneven pieces */
    for (int portable = 0; portable <= 1; portable++) {
        char chunk[1024]; /* steps below are at most 1009 bytes */
        memset(chunk, 'a', sizeof chunk);
        sdc_sha256_ctx s;
        sdc_sha256_init(&s);
        s.portable = portable;
        size_t left = 1000000, step = 1;
        while (left) {
            size_t n = step < left ? step : left;
            sdc_sha256_update(&s, chunk, n);
            left -= n;
            step = step % 997 + 13;
        }
        uint8_t d[32];
        char hex[SDC_SHA256_HEX];
        sdc_sha256_final(&s, d);
        sdc_sha256_hex(d, hex);
        CHECK(!strcmp(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
              "sha256(1e6 x 'a') portable=%d: %s", portable, hex);
    }
}

/* Every length 0..300 (all padding cases), split at every point, both block functions. */
static void test_streaming_and_paths(void) {
    uint8_t data[300];
    uint64_t x = 0x9E3779B97F4A7C15ULL;
    for (size_t i = 0; i < sizeof data; i++) {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17;
        data[i] = (uint8_t)x;
    }
    int mismatches = 0, split_mismatches = 0;
    for (size_t n = 0; n <= sizeof data; n++) {
        char a[SDC_SHA256_HEX], b[SDC_SHA256_HEX];
        hex_of(data, n, 1, a);
        hex_of(data, n, 0, b);
        mismatches += strcmp(a, b) != 0;
        for (size_t cut = 0; cut <= n; cut += 7) {
            sdc_sha256_ctx s;
            uint8_t d[32];
            char c[SDC_SHA256_HEX];
            sdc_sha256_init(&s);
            sdc_sha256_update(&s, data, cut);
            sdc_sha256_update(&s, data + cut, n - cut);
            sdc_sha256_final(&s, d);
            sdc_sha256_hex(d, c);
            split_mismatches += strcmp(a, c) != 0;
        }
    }
    printf("  SHA extensions on this CPU: %s\n", sdc_sha256_has_hw() ? "yes" : "no");
    CHECK(mismatches == 0, "hardware and portable SHA-256 differ for %d lengths", mismatches);
    CHECK(split_mismatches == 0, "split updates differ from one-shot in %d cases", split_mismatches);
}

static void test_file_and_autov2(void) {
    const char *path = SDC_SHARED_DIR "/testdata/tiny/sd15-tiny-f32.safetensors";
    uint8_t d[32];
    sdc_error err;
    sdc_status st = sdc_sha256_file(path, d, &err);
    CHECK(st == SDC_OK, "sha256 of %s: %s", path, err.msg);
    if (st == SDC_OK) {
        char hex[SDC_SHA256_HEX], v2[SDC_AUTOV2_HEX];
        sdc_sha256_hex(d, hex);
        sdc_autov2_hex(d, v2);
        CHECK(!strcmp(hex, "91767171baf2adcd9f3e3d799641f4e3b14804337ad7226c478e3e7a506e51c2"),
              "tiny checkpoint sha256 %s differs from the manifest", hex);
        CHECK(!strcmp(v2, "91767171ba"), "AutoV2 %s, want 91767171ba", v2);
    }

    st = sdc_sha256_file("/nonexistent/sdc/x.safetensors", d, &err);
    CHECK(st == SDC_E_IO && strstr(err.msg, "/nonexistent/sdc/x.safetensors"),
          "missing file: status %d, message '%s'", st, err.msg);
    st = sdc_sha256_file("/tmp", d, &err);
    CHECK(st == SDC_E_IO && strstr(err.msg, "not a regular file"), "directory: status %d, '%s'",
          st, err.msg);
}

int main(void) {
    test_fips_vectors();
    test_streaming_and_paths();
    test_file_and_autov2();
    TEST_MAIN_END();
}
