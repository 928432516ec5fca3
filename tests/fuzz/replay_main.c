/* tests/fuzz/replay_main.c: runs fuzz inputs through LLVMFuzzerTestOneInput without libFuzzer.
 *
 *   fuzz_X_replay DIR_OR_FILE...
 *
 * Every regular file named (or found directly inside a named directory, in name order) is read
 * and passed to the target once. This is how each corpus in tests/fuzz/corpus/ replays as a plain
 * ctest with gcc; a crash, sanitizer report or abort in the target fails the test. Exits non-zero
 * when an argument cannot be read or no input was found. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads the file into a malloc'd buffer of exactly its size (so ASan sees overreads). */
static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 0;
    }
    size_t cap = 1 << 16, n = 0;
    uint8_t *buf = malloc(cap);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    fclose(f);
    if (!buf) {
        fprintf(stderr, "%s: out of memory\n", path);
        return 0;
    }
    uint8_t *exact = malloc(n ? n : 1);
    memcpy(exact, buf, n);
    free(buf);
    LLVMFuzzerTestOneInput(exact, n);
    free(exact);
    return 1;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int main(int argc, char **argv) {
    int runs = 0, errors = 0;
    for (int i = 1; i < argc; i++) {
        struct stat sb;
        if (stat(argv[i], &sb) != 0) {
            perror(argv[i]);
            errors++;
        } else if (S_ISDIR(sb.st_mode)) {
            DIR *d = opendir(argv[i]);
            if (!d) {
                perror(argv[i]);
                errors++;
                continue;
            }
            char **names = NULL;
            size_t n = 0, cap = 0;
            struct dirent *de;
            while ((de = readdir(d)) != NULL) {
                char path[4096];
                snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name);
                if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode)) continue;
                if (n == cap) names = realloc(names, (cap = cap ? 2 * cap : 64) * sizeof *names);
                names[n++] = strdup(path);
            }
            closedir(d);
            if (n) qsort(names, n, sizeof *names, cmp_str);
            for (size_t k = 0; k < n; k++) {
                if (run_file(names[k]))
                    runs++;
                else
                    errors++;
                free(names[k]);
            }
            free(names);
        } else {
            if (run_file(argv[i]))
                runs++;
            else
                errors++;
        }
    }
    printf("%d inputs replayed, %d errors\n", runs, errors);
    return errors || runs == 0 ? 1 : 0;
}
