/* card_sketch.c — bounded per-metric, per-label distinct-value sketches.
 *
 * K-minimum-values (KMV): a label keeps the K smallest distinct 32-bit
 * hashes of its values. With fewer than K held the count is exact (up to
 * 32-bit hash collisions); otherwise the estimate is (K - 1) / u_K where
 * u_K is the K-th smallest hash as a fraction of 2^32 — unbiased, relative
 * standard error about 1 / sqrt(K - 2) (18 % for K = 32). The limiter
 * scores a label by log2 of this estimate, the Shannon entropy of a
 * uniformly distributed label and an upper bound otherwise.
 *
 * Metric entries live in a set-associative cache (CARD_SK_SETS sets of
 * CARD_SK_WAYS ways); a new metric name evicts the least recently used
 * entry of its set. Memory is fixed at card_new().
 */
#include <stdlib.h>
#include <string.h>

#include "processors/card_int.h"
#include "runtime/err.h"

int card_sketches_init(card_sketches *s)
{
    s->tick = 0;
    s->m = calloc(CARD_SK_METRICS, sizeof *s->m);
    return s->m ? 0 : SW_ENOMEM;
}

void card_sketches_destroy(card_sketches *s)
{
    free(s->m);
    s->m = NULL;
}

card_metric_sk *card_sketch_metric(card_sketches *s, uint64_t name_hash)
{
    if (name_hash == 0) name_hash = 1;
    card_metric_sk *set = &s->m[(name_hash >> 7) % CARD_SK_SETS * CARD_SK_WAYS];
    card_metric_sk *victim = &set[0];
    s->tick++;
    for (int w = 0; w < CARD_SK_WAYS; w++) {
        if (set[w].name_hash == name_hash) {
            set[w].last_use = s->tick;
            return &set[w];
        }
        if (set[w].last_use < victim->last_use) victim = &set[w];
    }
    memset(victim, 0, sizeof *victim);
    victim->name_hash = name_hash;
    victim->last_use = s->tick;
    return victim;
}

static card_label_sk *find_label(const card_metric_sk *ms, uint64_t key_hash)
{
    for (uint32_t i = 0; i < ms->n_labels; i++)
        if (ms->labels[i].key_hash == key_hash) return (card_label_sk *)&ms->labels[i];
    return NULL;
}

/* Inserts v into the ascending set l->mins unless present; keeps K. */
static void kmv_add(card_label_sk *l, uint32_t v)
{
    if (l->n == CARD_KMV_K && v >= l->mins[CARD_KMV_K - 1]) return;
    uint32_t lo = 0, hi = l->n;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (l->mins[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    if (lo < l->n && l->mins[lo] == v) return;
    uint32_t last = l->n < CARD_KMV_K ? l->n : CARD_KMV_K - 1;
    memmove(&l->mins[lo + 1], &l->mins[lo], (last - lo) * sizeof l->mins[0]);
    l->mins[lo] = v;
    if (l->n < CARD_KMV_K) l->n++;
}

void card_sketch_add(card_metric_sk *ms, uint64_t key_hash, uint64_t value_hash)
{
    card_label_sk *l = find_label(ms, key_hash);
    if (!l) {
        if (ms->n_labels == CARD_SK_LABELS) return;
        l = &ms->labels[ms->n_labels++];
        l->key_hash = key_hash;
        l->n = 0;
    }
    /* FNV's high bits mix poorly for short inputs: finish with a mixer */
    uint64_t x = value_hash;
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    kmv_add(l, (uint32_t)(x >> 32));
}

double card_kmv_estimate(const card_label_sk *l)
{
    if (l->n < CARD_KMV_K) return l->n;
    double u = ((double)l->mins[CARD_KMV_K - 1] + 1.0) / 4294967296.0;
    return (CARD_KMV_K - 1) / u;
}

double card_sketch_distinct(const card_metric_sk *ms, uint64_t key_hash)
{
    const card_label_sk *l = find_label(ms, key_hash);
    return l ? card_kmv_estimate(l) : 0;
}
