/* src/io/tar.c: the tar reader and ustar writer of tar.h. The header layout (POSIX.1-1988 ustar,
 * with GNU's and pax's extensions for long names and sizes) is:
 *
 *   offset  size  field          offset  size  field
 *        0   100  name              257     6  magic ("ustar\0", GNU "ustar ")
 *      100     8  mode              263     2  version ("00", GNU " \0")
 *      108     8  uid               265    32  uname
 *      116     8  gid               297    32  gname
 *      124    12  size              329     8  devmajor
 *      136    12  mtime             337     8  devminor
 *      148     8  chksum            345   155  prefix (POSIX only; GNU keeps times there)
 *      156     1  typeflag          500    12  padding
 *      157   100  linkname
 *
 * Numbers are octal text (NUL or space terminated) or, in GNU archives, base-256 big-endian with
 * the top bit of the first byte set. The checksum is the sum of the header's bytes with the chksum
 * field read as eight spaces.
 */
#include "io/tar.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- reader ------------------------------------------------------------------------------- */

void sdc_tar_open_memory(sdc_tar *t, const void *buf, size_t len, const char *label) {
    memset(t, 0, sizeof *t);
    t->buf = buf;
    t->len = len;
    snprintf(t->label, sizeof t->label, "%s", label ? label : "tar");
}

sdc_status sdc_tar_open(const char *path, sdc_tar *t, sdc_error *err) {
    memset(t, 0, sizeof *t);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return sdc_fail(err, SDC_E_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return sdc_fail(err, SDC_E_IO, "%s: not a regular file", path);
    }
    if (sb.st_size == 0) {
        close(fd);
        return sdc_fail(err, SDC_E_FORMAT, "%s: empty file, not a tar archive", path);
    }
    void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return sdc_fail(err, SDC_E_IO, "%s: cannot map: %s", path, strerror(errno));
    sdc_tar_open_memory(t, map, (size_t)sb.st_size, path);
    t->map = map;
    t->map_len = (size_t)sb.st_size;
    return SDC_OK;
}

void sdc_tar_close(sdc_tar *t) {
    if (t && t->map) munmap(t->map, t->map_len);
    if (t) t->map = NULL, t->buf = NULL, t->len = 0, t->done = true;
}

/* Parses a numeric field; false when it is neither clean octal nor positive base-256. */
static bool parse_number(const unsigned char *f, size_t n, uint64_t *out) {
    uint64_t v = 0;
    if (f[0] & 0x80) {
        if (f[0] != 0x80) return false; /* 0xFF: negative */
        for (size_t i = 1; i < n; i++) {
            if (v >> 56) return false;
            v = v << 8 | f[i];
        }
        *out = v;
        return true;
    }
    size_t i = 0, end = 0;
    while (end < n && f[end]) end++;          /* up to the first NUL */
    while (i < end && f[i] == ' ') i++;       /* then strip spaces, as Python's tarfile */
    while (end > i && f[end - 1] == ' ') end--;
    for (; i < end; i++) {
        if (f[i] < '0' || f[i] > '7' || (v >> 60)) return false;
        v = v * 8 + (uint64_t)(f[i] - '0');
    }
    *out = v;
    return true;
}

static bool checksum_ok(const unsigned char *h) {
    uint64_t want;
    if (!parse_number(h + 148, 8, &want)) return false;
    int64_t usum = 0, ssum = 0;
    for (int i = 0; i < SDC_TAR_BLOCK; i++) {
        unsigned char c = i >= 148 && i < 156 ? ' ' : h[i];
        usum += c;
        ssum += (signed char)c;
    }
    return (int64_t)want == usum || (int64_t)want == ssum;
}

/* Stops the reader: the message is "ARCHIVE: offset N: ..." and later calls fail alike. */
static sdc_status stop(sdc_tar *t, sdc_error *err, sdc_status code, uint64_t off, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;
static sdc_status stop(sdc_tar *t, sdc_error *err, sdc_status code, uint64_t off, const char *fmt, ...) {
    char msg[SDC_ERRMSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    t->done = true;
    t->failed = code;
    return sdc_fail(err, code, "%s: header at offset %llu: %s", t->label, (unsigned long long)off, msg);
}

/* Reads the pax records "LEN key=value\n" of an 'x' header for path and size. */
static sdc_status read_pax(sdc_tar *t, const unsigned char *p, size_t n, uint64_t off, bool *has_name,
                           bool *has_size, uint64_t *size, sdc_error *err) {
    size_t i = 0;
    while (i < n) {
        size_t len = 0, j = i;
        while (j < n && p[j] >= '0' && p[j] <= '9' && len < n) len = len * 10 + (size_t)(p[j++] - '0');
        if (j == i || j >= n || p[j] != ' ' || len > n - i || j + 2 > i + len || p[i + len - 1] != '\n') {
            if (p[i] == '\0') break; /* NUL padding after the last record */
            return stop(t, err, SDC_E_FORMAT, off, "malformed pax record");
        }
        const unsigned char *key = p + j + 1, *eq = memchr(key, '=', (size_t)(p + i + len - 1 - key));
        if (!eq) return stop(t, err, SDC_E_FORMAT, off, "pax record without '='");
        const unsigned char *val = eq + 1;
        size_t vlen = (size_t)(p + i + len - 1 - val);
        if ((size_t)(eq - key) == 4 && !memcmp(key, "path", 4)) {
            if (vlen > SDC_TAR_MAX_NAME || memchr(val, '\0', vlen))
                return stop(t, err, SDC_E_FORMAT, off, "pax path too long or not text");
            memcpy(t->name, val, vlen);
            t->name[vlen] = '\0';
            *has_name = true;
        } else if ((size_t)(eq - key) == 4 && !memcmp(key, "size", 4)) {
            uint64_t v = 0;
            for (size_t k = 0; k < vlen; k++) {
                if (val[k] < '0' || val[k] > '9' || v > UINT64_MAX / 10 - 1)
                    return stop(t, err, SDC_E_FORMAT, off, "bad pax size");
                v = v * 10 + (uint64_t)(val[k] - '0');
            }
            if (vlen == 0) return stop(t, err, SDC_E_FORMAT, off, "bad pax size");
            *size = v;
            *has_size = true;
        }
        i += len;
    }
    return SDC_OK;
}

sdc_status sdc_tar_next(sdc_tar *t, sdc_tar_member *m, bool *has, sdc_error *err) {
    *has = false;
    memset(m, 0, sizeof *m);
    if (t->failed) return sdc_fail(err, t->failed, "%s: reading stopped at an earlier error", t->label);
    bool has_name = false, has_size = false;
    uint64_t pax_size = 0;
    while (!t->done) {
        uint64_t off = t->pos;
        if (t->pos == t->len) { /* the end, without zero blocks: accepted as tar and GNU tar do */
            if (has_name || has_size)
                return stop(t, err, SDC_E_FORMAT, off, "archive ends after an extended header");
            t->done = true;
            break;
        }
        if (t->len - t->pos < SDC_TAR_BLOCK)
            return stop(t, err, SDC_E_FORMAT, off, "truncated (less than 512 bytes left)");
        const unsigned char *h = t->buf + t->pos;
        size_t z = 0;
        while (z < SDC_TAR_BLOCK && h[z] == 0) z++;
        if (z == SDC_TAR_BLOCK) { /* a zero block ends the archive */
            if (has_name || has_size) return stop(t, err, SDC_E_FORMAT, off, "extended header without a member");
            t->done = true;
            break;
        }
        if (!checksum_ok(h))
            return stop(t, err, SDC_E_FORMAT, off, "bad checksum (not a tar archive, or corrupt)");
        uint64_t size, mode, mtime;
        if (!parse_number(h + 124, 12, &size) || !parse_number(h + 100, 8, &mode) ||
            !parse_number(h + 136, 12, &mtime))
            return stop(t, err, SDC_E_FORMAT, off, "bad number in the size, mode or mtime field");
        char type = (char)h[156];
        if (type == '\0' || type == '7') type = '0';
        if (has_size && !strchr("LxgK", type)) size = pax_size;
        /* links, devices, directories and fifos carry no data whatever their size field says */
        if (type >= '1' && type <= '6') size = 0;
        size_t avail = t->len - t->pos - SDC_TAR_BLOCK;
        if (size > avail)
            return stop(t, err, SDC_E_FORMAT, off, "member '%.100s': %llu bytes of data run past the end (truncated)",
                        (const char *)h, (unsigned long long)size);
        const unsigned char *data = h + SDC_TAR_BLOCK;
        size_t padded = (size_t)size + (SDC_TAR_BLOCK - (size_t)size % SDC_TAR_BLOCK) % SDC_TAR_BLOCK;
        t->pos += SDC_TAR_BLOCK + (padded <= avail ? padded : avail); /* the last member's padding may be cut */

        if (type == 'L') { /* GNU long name of the next member */
            if (size > SDC_TAR_MAX_NAME)
                return stop(t, err, SDC_E_LIMIT, off, "long name over 4096 bytes");
            memcpy(t->name, data, (size_t)size);
            t->name[size] = '\0';
            has_name = true;
            continue;
        }
        if (type == 'x') {
            SDC_TRY(read_pax(t, data, (size_t)size, off, &has_name, &has_size, &pax_size, err));
            continue;
        }
        if (type == 'g' || type == 'K') continue; /* global pax header, GNU long link name */

        if (!has_name) {
            const char *prefix = "";
            size_t plen = 0, nlen = 0;
            if (!memcmp(h + 257, "ustar\0", 6)) { /* POSIX: the prefix field holds leading directories */
                prefix = (const char *)h + 345;
                while (plen < 155 && prefix[plen]) plen++;
            }
            while (nlen < 100 && h[nlen]) nlen++;
            memcpy(t->name, prefix, plen);
            if (plen) t->name[plen++] = '/';
            memcpy(t->name + plen, h, nlen);
            t->name[plen + nlen] = '\0';
        }
        m->name = t->name;
        m->type = type;
        m->size = size;
        m->data = data;
        m->mode = (uint32_t)(mode & 07777);
        m->mtime = (int64_t)(mtime >> 63 ? 0 : mtime);
        m->offset = off;
        *has = true;
        return SDC_OK;
    }
    return SDC_OK;
}

/* ---- writer ------------------------------------------------------------------------------- */

void sdc_tar_writer_init(sdc_tar_writer *w, FILE *f, const char *label) {
    w->f = f;
    w->label = label ? label : "tar";
    w->bytes = 0;
}

static sdc_status put(sdc_tar_writer *w, const void *p, size_t n, sdc_error *err) {
    if (n && fwrite(p, 1, n, w->f) != n)
        return sdc_fail(err, SDC_E_IO, "%s: write failed: %s", w->label, strerror(errno));
    w->bytes += n;
    return SDC_OK;
}

sdc_status sdc_tar_write_member(sdc_tar_writer *w, const char *name, const void *data, size_t size, sdc_error *err) {
    if (!w || !w->f || !name || (size && !data))
        return sdc_fail(err, SDC_E_INVALID_ARG, "sdc_tar_write_member: NULL argument");
    size_t len = strlen(name), split = 0; /* name[split..] goes to the name field, the rest to prefix */
    if (len == 0) return sdc_fail(err, SDC_E_INVALID_ARG, "%s: empty member name", w->label);
    if (len > 100) {
        split = len; /* the rightmost '/' that leaves at most 100 bytes of name and 155 of prefix */
        for (size_t i = len - 1; i > 0; i--) {
            if (name[i] != '/') continue;
            if (len - i - 1 > 100) break;
            if (i <= 155 && len - i - 1 > 0) split = i + 1;
        }
        if (split == len)
            return sdc_fail(err, SDC_E_LIMIT, "%s: member name '%.60s...' too long for a ustar header", w->label,
                            name);
    }
    unsigned char h[SDC_TAR_BLOCK] = {0};
    memcpy(h, name + split, len - split);
    if (split) memcpy(h + 345, name, split - 1);
    memcpy(h + 100, "0000644", 7);
    memcpy(h + 108, "0000000", 7);
    memcpy(h + 116, "0000000", 7);
    if ((uint64_t)size < (1ull << 33)) {
        snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    } else { /* GNU base-256 for 8 GiB and over */
        h[124] = 0x80;
        for (int i = 0; i < 8; i++) h[135 - i] = (unsigned char)((uint64_t)size >> (8 * i));
    }
    memcpy(h + 136, "00000000000", 11);
    memset(h + 148, ' ', 8);
    h[156] = '0';
    memcpy(h + 257, "ustar\0" "00", 8);
    unsigned sum = 0;
    for (int i = 0; i < SDC_TAR_BLOCK; i++) sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum); /* six digits, NUL, then the space already there */
    h[155] = ' ';
    static const unsigned char zeros[SDC_TAR_BLOCK];
    SDC_TRY(put(w, h, sizeof h, err));
    SDC_TRY(put(w, data, size, err));
    return put(w, zeros, (SDC_TAR_BLOCK - size % SDC_TAR_BLOCK) % SDC_TAR_BLOCK, err);
}

sdc_status sdc_tar_writer_finish(sdc_tar_writer *w, sdc_error *err) {
    static const unsigned char zeros[2 * SDC_TAR_BLOCK];
    SDC_TRY(put(w, zeros, sizeof zeros, err));
    if (fflush(w->f) != 0) return sdc_fail(err, SDC_E_IO, "%s: write failed: %s", w->label, strerror(errno));
    return SDC_OK;
}
