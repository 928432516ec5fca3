/* src/core/rss.c: VmRSS / VmHWM from /proc/self/status, and the VmHWM reset (see rss.h). */
#include "core/rss.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Reads "Key:   1234 kB" from /proc/self/status; 0 when absent. */
static size_t status_kb(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return 0;
    char line[256];
    size_t kb = 0, klen = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, klen) && line[klen] == ':') {
            unsigned long long v = 0;
            if (sscanf(line + klen + 1, "%llu", &v) == 1) kb = (size_t)v;
            break;
        }
    fclose(f);
    return kb;
}

size_t sdc_rss_current(void) { return status_kb("VmRSS") * 1024; }
size_t sdc_rss_peak(void) { return status_kb("VmHWM") * 1024; }

int sdc_rss_peak_reset(void) {
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (!f) return -1;
    int ok = fputs("5", f) >= 0;
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

void sdc_pages_release(const void *p, size_t n) {
    if (!p || !n) return;
    long ps = sysconf(_SC_PAGESIZE);
    uintptr_t page = ps > 0 ? (uintptr_t)ps : 4096;
    uintptr_t lo = (uintptr_t)p & ~(page - 1), hi = ((uintptr_t)p + n + page - 1) & ~(page - 1);
    madvise((void *)lo, hi - lo, MADV_DONTNEED); /* advisory: a failure only leaves RSS higher */
}

int sdc_is_file_mapping(const void *p, size_t n) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f || !p) {
        if (f) fclose(f);
        return 0;
    }
    uintptr_t a = (uintptr_t)p, b = a + n;
    char line[4352];
    int ok = 0;
    while (fgets(line, sizeof line, f)) {
        /* "start-end perms offset dev inode  path" */
        unsigned long long lo, hi, inode;
        char perms[8];
        if (sscanf(line, "%llx-%llx %7s %*s %*s %llu", &lo, &hi, perms, &inode) != 4) continue;
        if (a < lo || a >= hi) continue;
        ok = b <= hi && inode != 0 && perms[0] == 'r' && perms[1] == '-';
        break;
    }
    fclose(f);
    return ok;
}
