/* card_policy.c — the limiter's decision for every data point.
 *
 * For each point: its series key; a hit in the table refreshes the slot
 * and the point passes. A miss feeds the label sketches, then by fill:
 *   used < agg_limit    insert the series, pass the point unchanged;
 *   used < drop_limit   reduce(): remove labels, highest distinct count
 *                       first, until the reduced series (remaining labels
 *                       + CARD_MARKER_KEY) exists, or no remaining label is
 *                       volatile (distinct >= volatile_n) and it can be
 *                       inserted; the point gets the reduced attributes;
 *   otherwise           drop the point.
 * Then reduced points of one metric with the same reduced key are merged
 * (card_merge.c) and the point array is compacted. All scratch memory
 * comes from the request arena.
 */
#include <string.h>

#include "processors/card_int.h"
#include "runtime/err.h"

enum { ACT_KEEP = 0, ACT_DROP, ACT_AGG, ACT_MERGED };

typedef struct metric_run {
    card *c;
    card_req *rq;
    card_metric *m;
    void **pts;
    size_t n;
    uint64_t prefix;
    card_metric_sk *ms;           /* sketches of this metric, on first miss */
    uint8_t *act;                 /* per point, ACT_* */
    uint64_t *rkey;               /* per point, reduced key (ACT_AGG) */
    size_t n_agg;
} metric_run;

static uint64_t key_hash(const card_kv *kv)
{
    const char *k = kv->key ? kv->key : "";
    return card_fnv1a64(k, strlen(k));
}

/* Feeds the label sketches with the values of a new series. */
static void learn(card_metric_sk *ms, card_kv *const *attrs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (card_is_marker(attrs[i])) continue;
        card_sketch_add(ms, key_hash(attrs[i]),
                        card_hash_value(CARD_FNV_OFFSET, attrs[i]->value, 0));
    }
}

/* Key of the sorted attributes minus removed ones, plus the marker. */
static uint64_t reduced_key(const card *c, uint64_t h, size_t n, const uint8_t *removed)
{
    int marked = 0;
    for (size_t i = 0; i < n; i++) {
        if (removed[i]) continue;
        if (!marked && strcmp(CARD_MARKER_KEY, c->sorted[i]->key ? c->sorted[i]->key : "") < 0) {
            h = card_hash_kv(h, &c->marker);
            marked = 1;
        }
        h = card_hash_kv(h, c->sorted[i]);
    }
    return marked ? h : card_hash_kv(h, &c->marker);
}

/* The reduced attribute list (sorted, marker in place) in the arena. */
static int set_reduced_attrs(card *c, int dc, void *pt, size_t n, const uint8_t *removed)
{
    size_t *na;
    card_kv ***ap = card_point_attrs(dc, pt, &na);
    card_kv **out = card_arena_alloc(&c->arena, (n + 1) * sizeof *out);
    if (!out) return SW_ENOMEM;
    size_t w = 0;
    int marked = 0;
    for (size_t i = 0; i < n; i++) {
        if (removed[i]) continue;
        if (!marked && strcmp(CARD_MARKER_KEY, c->sorted[i]->key ? c->sorted[i]->key : "") < 0) {
            out[w++] = &c->marker;
            marked = 1;
        }
        out[w++] = (card_kv *)c->sorted[i];
    }
    if (!marked) out[w++] = &c->marker;
    *ap = out;
    *na = w;
    return 0;
}

/* Removal order: indices of sorted attributes by distinct count, highest
 * first (ties: key order). Markers are pre-removed. Returns how many. */
static size_t removal_order(metric_run *r, size_t n, uint8_t *removed, uint8_t *order,
                            double *score)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (card_is_marker(r->c->sorted[i])) {
            removed[i] = 1;
            continue;
        }
        score[i] = card_sketch_distinct(r->ms, key_hash(r->c->sorted[i]));
        size_t j = k++;
        while (j > 0 && score[order[j - 1]] < score[i]) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = (uint8_t)i;
    }
    return k;
}

/* Band 2 for point i. Sets act/rkey and the reduced attributes. */
static int reduce(metric_run *r, size_t i, size_t n_attrs)
{
    card *c = r->c;
    uint8_t removed[CARD_MAX_ATTRS] = {0}, order[CARD_MAX_ATTRS];
    double score[CARD_MAX_ATTRS];
    size_t n = n_attrs > CARD_MAX_ATTRS ? 0 : n_attrs; /* too many: drop all */
    size_t k = removal_order(r, n, removed, order, score);
    for (size_t step = 0; step < k || step == 0; step++) {
        if (step < k) removed[order[step]] = 1;
        uint64_t key = reduced_key(c, r->prefix, n, removed);
        int64_t at = card_table_find(&c->t, key);
        int last = step + 1 >= k;
        if (at < 0 && !last && score[order[step + 1]] >= c->volatile_n) continue;
        if (at >= 0) c->t.slots[at].seen_ns = r->rq->now_ns;
        else if (card_table_insert(&c->t, key, r->rq->now_ns) < 0) break;
        r->act[i] = ACT_AGG;
        r->rkey[i] = key;
        r->n_agg++;
        return set_reduced_attrs(c, r->m->data_case, r->pts[i], n, removed);
    }
    r->act[i] = ACT_DROP;
    return 0;
}

/* The decision for a point of a series the table does not hold. */
static int decide_new(metric_run *r, size_t i, uint64_t key, card_kv *const *attrs, size_t n)
{
    card *c = r->c;
    if (!r->ms) {
        const char *name = r->m->name ? r->m->name : "";
        r->ms = card_sketch_metric(&c->sk, card_fnv1a64(name, strlen(name)));
    }
    learn(r->ms, attrs, n);
    if (c->t.used < c->agg_limit) {
        if (card_table_insert(&c->t, key, r->rq->now_ns) >= 0) {
            c->st.admitted++;
            return 0;
        }
        r->act[i] = ACT_DROP;
        return 0;
    }
    if (c->t.used >= c->drop_limit) {
        r->act[i] = ACT_DROP;
        return 0;
    }
    if (!r->rkey) {
        r->rkey = card_arena_alloc(&c->arena, r->n * sizeof *r->rkey);
        if (!r->rkey) return SW_ENOMEM;
    }
    return reduce(r, i, n);
}

/* Merges reduced points with equal reduced keys. */
static int merge_reduced(metric_run *r)
{
    size_t cap = 16;
    while (cap < 2 * r->n_agg) cap *= 2;
    int32_t *head = card_arena_alloc(&r->c->arena, cap * sizeof *head);
    int32_t *next = card_arena_alloc(&r->c->arena, r->n * sizeof *next);
    if (!head || !next) return SW_ENOMEM;
    memset(head, 0xff, cap * sizeof *head);
    for (size_t i = 0; i < r->n; i++) {
        if (r->act[i] != ACT_AGG) continue;
        size_t b = (size_t)(r->rkey[i] ^ (r->rkey[i] >> 29)) & (cap - 1);
        while (head[b] >= 0 && r->rkey[head[b]] != r->rkey[i]) b = (b + 1) & (cap - 1);
        int32_t *link = &head[b];
        for (; *link >= 0; link = &next[*link]) {
            int rc = card_merge_point(r->m, r->pts[*link], r->pts[i], &r->c->arena);
            if (rc < 0) return rc;
            if (rc == 1) {
                r->act[i] = ACT_MERGED;
                break;
            }
        }
        if (r->act[i] == ACT_MERGED) continue;
        *link = (int32_t)i;
        next[i] = -1;
    }
    return 0;
}

/* Drops dropped and merged points from the array; counts. */
static void compact(metric_run *r, size_t *np)
{
    size_t w = 0;
    for (size_t i = 0; i < r->n; i++) {
        switch (r->act[i]) {
        case ACT_DROP: r->rq->dropped++; continue;
        case ACT_MERGED: r->rq->merged++; r->rq->aggregated++; continue;
        case ACT_AGG: r->rq->aggregated++; break;
        default: break;
        }
        r->pts[w++] = r->pts[i];
    }
    if (w != r->n || r->n_agg) r->rq->changed = 1;
    *np = w;
}

int card_policy_metric(card *c, card_req *rq, card_metric *m, uint64_t res_hash)
{
    size_t *np = NULL;
    metric_run r = {c, rq, m, card_points(m, &np), 0, 0, NULL, NULL, NULL, 0};
    if (!r.pts || !*np) return 0;
    r.n = *np;
    rq->points_in += r.n;
    r.prefix = card_metric_prefix(res_hash, m->name);
    r.act = card_arena_alloc(&c->arena, r.n);
    if (!r.act) return SW_ENOMEM;
    memset(r.act, ACT_KEEP, r.n);
    int changed = 0;
    for (size_t i = 0; i < r.n; i++) {
        size_t *na;
        card_kv **attrs = *card_point_attrs(m->data_case, r.pts[i], &na);
        uint64_t key = card_series_key(r.prefix, attrs, *na, c->sorted);
        int64_t at = card_table_find(&c->t, key);
        if (at >= 0) {
            c->t.slots[at].seen_ns = rq->now_ns;
            continue;
        }
        int rc = decide_new(&r, i, key, attrs, *na);
        if (rc != 0) return rc;
        changed |= r.act[i] != ACT_KEEP;
    }
    if (!changed) return 0;
    if (r.n_agg > 1) {
        int rc = merge_reduced(&r);
        if (rc != 0) return rc;
    }
    compact(&r, np);
    return 0;
}
