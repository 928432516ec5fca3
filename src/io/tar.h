/* src/io/tar.h: a small, bounds-checked tar reader and a ustar writer.
 *
 * Reading (calibration sets such as text_encoder_calibration.tar, pulsar2's inputs):
 *
 *     sdc_tar tar;
 *     SDC_TRY(sdc_tar_open(path, &tar, err));          // or sdc_tar_open_memory(&tar, buf, len, label)
 *     sdc_tar_member m;
 *     bool has;
 *     while ((st = sdc_tar_next(&tar, &m, &has, err)) == SDC_OK && has)
 *         if (m.type == '0') use(m.name, m.data, m.size);
 *     sdc_tar_close(&tar);
 *
 * Accepted: POSIX ustar ("ustar\0" "00", with the 155-byte name prefix), GNU tar ("ustar  \0",
 * base-256 numbers, 'L' long names) and old v7 headers; pax 'x' headers are honoured for "path"
 * and "size", 'g' global headers are skipped. Every header's checksum is verified (the unsigned
 * sum, or the signed one that old tars wrote). The archive ends at a zero block or exactly at the
 * end of the data. A header that runs past the end, a bad checksum, a bad number field, or member
 * data that runs past the end is an SDC_E_FORMAT naming the archive, the member and the offset.
 * Member data is never copied: m.data points into the buffer (the file is memory-mapped).
 *
 * Writing: members go to a FILE* as 512-byte blocks, each behind a POSIX ustar header (mode 0644,
 * uid/gid 0, mtime 0 so the same content gives the same bytes), and sdc_tar_writer_finish adds the
 * two zero blocks. Names longer than 100 bytes are split into prefix/name at a '/' (255 at most).
 */
#ifndef SDC_IO_TAR_H
#define SDC_IO_TAR_H

#include "core/error.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define SDC_TAR_BLOCK 512
#define SDC_TAR_MAX_NAME 4096 /* longest member name accepted from 'L' or pax headers */

typedef struct sdc_tar_member {
    const char *name;           /* NUL-terminated; valid until the next sdc_tar_next or close */
    char type;                  /* '0' regular file ('\0' and '7' are reported as '0'), '5' directory, ... */
    uint64_t size;              /* bytes of data */
    const unsigned char *data;  /* `size` bytes inside the archive */
    uint32_t mode;
    int64_t mtime;
    uint64_t offset;            /* byte offset of the member's header in the archive */
} sdc_tar_member;

typedef struct sdc_tar {
    const unsigned char *buf;
    size_t len, pos;
    bool done;
    sdc_status failed;          /* the error that stopped the reader, or SDC_OK */
    void *map;                  /* non-NULL when sdc_tar_open mapped a file */
    size_t map_len;
    char label[256];            /* the path or label, for messages */
    char name[SDC_TAR_MAX_NAME + 1];
} sdc_tar;

/* Maps `path` read-only. On failure nothing needs closing. */
sdc_status sdc_tar_open(const char *path, sdc_tar *t, sdc_error *err);
/* Reads an archive held in memory; `buf` must outlive the reader. `label` names it in messages. */
void sdc_tar_open_memory(sdc_tar *t, const void *buf, size_t len, const char *label);
/* The next member: SDC_OK with *has = true and *m filled, or *has = false at the end. After an
 * error, further calls return the same kind of error. */
sdc_status sdc_tar_next(sdc_tar *t, sdc_tar_member *m, bool *has, sdc_error *err);
/* Unmaps a file opened by sdc_tar_open; harmless on a memory reader or twice. */
void sdc_tar_close(sdc_tar *t);

typedef struct sdc_tar_writer {
    FILE *f;                    /* borrowed; the caller opens and closes it */
    const char *label;          /* names the archive in messages */
    uint64_t bytes;             /* written so far */
} sdc_tar_writer;

void sdc_tar_writer_init(sdc_tar_writer *w, FILE *f, const char *label);
/* Appends one regular file. */
sdc_status sdc_tar_write_member(sdc_tar_writer *w, const char *name, const void *data, size_t size,
                                sdc_error *err);
/* Writes the two zero blocks that end the archive and flushes the stream. */
sdc_status sdc_tar_writer_finish(sdc_tar_writer *w, sdc_error *err);

#endif
