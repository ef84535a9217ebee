/* lg_hist.h — latency histogram of the load generator (HDR-style).
 *
 * Log-linear buckets over nanoseconds: values below 256 ns are exact, larger
 * ones fall into one of 128 sub-buckets per power of two, so a reported
 * percentile is within 0.4 % of the true sample value. Memory is fixed
 * (about 36 KB) whatever the run length. Exact minimum and maximum are kept
 * beside the buckets. Pure; single-threaded; embedded by its owner.
 */
#ifndef SW_LG_HIST_H
#define SW_LG_HIST_H

#include <stdint.h>

#define LG_HIST_EXACT 256u      /* values below this are stored exactly */
#define LG_HIST_SUB 128u        /* sub-buckets per power of two above it */
#define LG_HIST_MAX_EXP 41u     /* values at or above 2^41 ns (~37 min) clamp */
#define LG_HIST_BUCKETS (LG_HIST_EXACT + (LG_HIST_MAX_EXP - 8u) * LG_HIST_SUB)

typedef struct lg_hist {
    uint64_t count;
    int64_t min, max;                  /* exact; 0 while empty */
    uint64_t bucket[LG_HIST_BUCKETS];
} lg_hist;

void lg_hist_init(lg_hist *h);
/* Records one value in ns (negative values count as 0). */
void lg_hist_add(lg_hist *h, int64_t ns);
/* Adds every sample of src to dst. */
void lg_hist_merge(lg_hist *dst, const lg_hist *src);
/* The p-th percentile (0 < p <= 100) by nearest rank: the smallest recorded
 * value v such that at least p % of the samples are <= v, reported as the
 * middle of v's bucket (clamped to [min, max]). 0 when empty. */
int64_t lg_hist_pct(const lg_hist *h, double p);

/* Bucket index of a value and the range [lo, hi] a bucket covers; exposed
 * for tests. */
uint32_t lg_hist_index(int64_t ns);
void lg_hist_range(uint32_t idx, int64_t *lo, int64_t *hi);

#endif
