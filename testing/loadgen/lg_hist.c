/* lg_hist.c — see lg_hist.h. */
#include "testing/loadgen/lg_hist.h"

#include <math.h>
#include <string.h>

void lg_hist_init(lg_hist *h) { memset(h, 0, sizeof *h); }

uint32_t lg_hist_index(int64_t ns)
{
    if (ns < 0) ns = 0;
    uint64_t v = (uint64_t)ns;
    if (v < LG_HIST_EXACT) return (uint32_t)v;
    uint32_t e = 63u - (uint32_t)__builtin_clzll(v);      /* >= 8 */
    if (e >= LG_HIST_MAX_EXP) return LG_HIST_BUCKETS - 1;
    uint32_t sub = (uint32_t)(v >> (e - 7u)) - LG_HIST_SUB; /* 0..127 */
    return LG_HIST_EXACT + (e - 8u) * LG_HIST_SUB + sub;
}

void lg_hist_range(uint32_t idx, int64_t *lo, int64_t *hi)
{
    if (idx < LG_HIST_EXACT) {
        *lo = *hi = idx;
        return;
    }
    uint32_t e = (idx - LG_HIST_EXACT) / LG_HIST_SUB + 8u;
    uint32_t sub = (idx - LG_HIST_EXACT) % LG_HIST_SUB + LG_HIST_SUB;
    *lo = (int64_t)sub << (e - 7u);
    *hi = *lo + ((int64_t)1 << (e - 7u)) - 1;
}

void lg_hist_add(lg_hist *h, int64_t ns)
{
    if (ns < 0) ns = 0;
    if (h->count == 0 || ns < h->min) h->min = ns;
    if (h->count == 0 || ns > h->max) h->max = ns;
    h->count++;
    h->bucket[lg_hist_index(ns)]++;
}

void lg_hist_merge(lg_hist *dst, const lg_hist *src)
{
    if (src->count == 0) return;
    if (dst->count == 0 || src->min < dst->min) dst->min = src->min;
    if (dst->count == 0 || src->max > dst->max) dst->max = src->max;
    dst->count += src->count;
    for (uint32_t i = 0; i < LG_HIST_BUCKETS; i++) dst->bucket[i] += src->bucket[i];
}

int64_t lg_hist_pct(const lg_hist *h, double p)
{
    if (h->count == 0) return 0;
    if (p <= 0) return h->min;
    if (p >= 100) return h->max;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1) rank = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->bucket[i];
        if (seen < rank) continue;
        int64_t lo, hi;
        lg_hist_range(i, &lo, &hi);
        int64_t mid = lo + (hi - lo) / 2;
        if (mid < h->min) mid = h->min;
        if (mid > h->max) mid = h->max;
        return mid;
    }
    return h->max;
}
