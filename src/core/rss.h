/* src/core/rss.h: resident memory of this process (Linux /proc; 0 elsewhere).
 *
 * sdc_rss_peak_reset() writes "5" to /proc/self/clear_refs, which resets the kernel's high-water
 * mark (VmHWM) to the current RSS, so the peak of one stage or one run can be measured inside a
 * long-lived process. Where that is refused (old kernels, some sandboxes) it returns -1 and the
 * peak stays the process's lifetime peak: run each measurement in a fresh process then.
 * sdc_pages_release() is how the pipeline drops weights it no longer needs from RSS. */
#ifndef SDC_CORE_RSS_H
#define SDC_CORE_RSS_H

#include <stddef.h>

/* Current resident set (VmRSS) and its high-water mark (VmHWM), in bytes; 0 when unknown. */
size_t sdc_rss_current(void);
size_t sdc_rss_peak(void);
/* Resets VmHWM to the current RSS; 0 on success, -1 when the kernel refuses. */
int sdc_rss_peak_reset(void);

/* Drops the resident pages overlapping [p, p + n) of a READ-ONLY FILE MAPPING (madvise
 * MADV_DONTNEED): the next read faults them back in from the page cache, so the data is
 * unchanged, only RSS shrinks. Never call it on heap or anonymous memory (that would zero it).
 * Pages are rounded outwards: neighbours in the same mapping may be dropped too, harmlessly. */
void sdc_pages_release(const void *p, size_t n);
/* 1 if [p, p + n) lies inside one read-only mapping of a file (from /proc/self/maps), the only
 * memory sdc_pages_release may be used on; 0 otherwise or when that cannot be told. */
int sdc_is_file_mapping(const void *p, size_t n);

#endif
