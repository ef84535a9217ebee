/* card_int.h — internals of the cardinality limiter, shared by
 * processors/card_*.c and the unit tests. Not for other modules.
 *
 * DESIGN
 * Series table: max_keys slots {key, last seen}, key 0 = empty (a computed
 * key of 0 is stored as 1). Linear probing from key & mask; deletion shifts
 * the following cluster back (no tombstones), so a table that runs near
 * full keeps short probes and a lookup stops at the first empty slot or
 * after max_keys probes (a full table never loops). key_ttl expiry walks a
 * cursor over a bounded number of slots per request.
 *
 * Keys: FNV-1a 64 over a canonical encoding: 'R' + resource hash (8 bytes,
 * itself FNV-1a over the resource attributes sorted by key), 'M' + length +
 * metric name, then the point attributes sorted by key, each 'K' + length +
 * key + the value with a type tag ('S' len bytes, 'B' byte, 'I' 8 bytes,
 * 'D' 8 bytes, 'Y' len bytes, 'A' count values, 'L' count key/values, 'N'
 * unset). Lengths and counts are LEB128 varints.
 *
 * Sketches: per metric name (a set-associative cache of CARD_SK_METRICS
 * entries, LRU within a set), per label key (first CARD_SK_LABELS keys) a
 * KMV sketch: the CARD_KMV_K smallest distinct 32-bit value hashes. Updated
 * only for points of series the table does not hold: a new label value
 * always makes a new series, so the distinct counts are the same as if
 * every point were fed, at a fraction of the cost.
 *
 * Paths: card_wire.c computes the same keys from the encoded bytes and
 * settles requests that need no rewrite; otherwise protobuf-c unpacks into
 * a per-card arena (bump allocation, reset after every request, so no
 * malloc per field), card_policy.c decides and card_proc.c re-encodes.
 */
#ifndef SW_CARD_INT_H
#define SW_CARD_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "processors/card_metrics.h"
#include "processors/card_proc.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue card_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue card_any;
typedef Opentelemetry__Proto__Metrics__V1__Metric card_metric;

#define CARD_FNV_OFFSET 0xcbf29ce484222325ULL
#define CARD_FNV_PRIME 0x100000001b3ULL

static inline uint64_t card_fnv_bytes(uint64_t h, const void *p, size_t n)
{
    const uint8_t *s = p;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= CARD_FNV_PRIME;
    }
    return h;
}
static inline uint64_t card_fnv_byte(uint64_t h, uint8_t b)
{
    return (h ^ b) * CARD_FNV_PRIME;
}
/* FNV-1a 64 of p[0..n). */
uint64_t card_fnv1a64(const void *p, size_t n);

/* Canonical encoding pieces, shared by the struct (card_key.c) and wire
 * (card_wire.c) paths so both produce the same keys. Lengths and counts
 * are LEB128 varints. */
enum {
    CARD_T_NONE = 'N', CARD_T_STR = 'S', CARD_T_BOOL = 'B', CARD_T_INT = 'I',
    CARD_T_DBL = 'D', CARD_T_BYTES = 'Y', CARD_T_ARRAY = 'A', CARD_T_KVLIST = 'L',
    CARD_T_DEEP = 'X', CARD_T_KEY = 'K'
};

static inline uint64_t card_h_len(uint64_t h, uint64_t n)
{
    while (n >= 0x80) {
        h = card_fnv_byte(h, (uint8_t)(n | 0x80));
        n >>= 7;
    }
    return card_fnv_byte(h, (uint8_t)n);
}
static inline uint64_t card_h_u64(uint64_t h, uint64_t v)
{
    for (int i = 0; i < 8; i++) h = card_fnv_byte(h, (uint8_t)(v >> (8 * i)));
    return h;
}
/* A tagged, length-prefixed string (keys: CARD_T_KEY, values: S or Y). */
static inline uint64_t card_h_lstr(uint64_t h, uint8_t tag, const void *p, size_t n)
{
    return card_fnv_bytes(card_h_len(card_fnv_byte(h, tag), n), p, n);
}
static inline uint64_t card_h_bool(uint64_t h, int b)
{
    return card_fnv_byte(card_fnv_byte(h, CARD_T_BOOL), b ? 1 : 0);
}
static inline uint64_t card_h_int(uint64_t h, int64_t v)
{
    return card_h_u64(card_fnv_byte(h, CARD_T_INT), (uint64_t)v);
}
static inline uint64_t card_h_dbl(uint64_t h, double d)
{
    uint64_t u;
    if (d == 0) d = 0;                         /* -0.0 and 0.0 are one value */
    if (d != d) u = 0x7ff8000000000000ULL;     /* one NaN */
    else memcpy(&u, &d, sizeof u);
    return card_h_u64(card_fnv_byte(h, CARD_T_DBL), u);
}

/* ---- series table (card_table.c) ---- */
typedef struct card_slot {
    uint64_t key;      /* 0 = empty */
    int64_t seen_ns;   /* last time a point of the series passed */
} card_slot;

typedef struct card_table {
    card_slot *slots;  /* owned, max_keys */
    uint32_t mask;     /* max_keys - 1 */
    uint32_t used;
    uint32_t cursor;   /* next slot the expiry walk looks at */
} card_table;

/* 0, SW_EINVAL (not a power of two >= 16) or SW_ENOMEM. */
int card_table_init(card_table *t, uint32_t max_keys);
void card_table_destroy(card_table *t);
/* Slot index holding key, or -1. At most max_keys probes. */
int64_t card_table_find(const card_table *t, uint64_t key);
/* Inserts key seen at now. 0 (inserted), 1 (was there, refreshed) or
 * SW_EFULL (every slot used). */
int card_table_insert(card_table *t, uint64_t key, int64_t now_ns);
/* Removes key: 0, or SW_ENOTFOUND. */
int card_table_remove(card_table *t, uint64_t key);
/* Looks at up to budget slots from the cursor and removes those idle for
 * more than ttl_ns. Returns how many it removed. */
uint32_t card_table_expire(card_table *t, int64_t now_ns, int64_t ttl_ns, uint32_t budget);
static inline uint32_t card_table_home(const card_table *t, uint64_t key)
{
    return (uint32_t)(key ^ (key >> 32)) & t->mask;
}

/* ---- canonical keys (card_key.c) ---- */
#define CARD_MAX_ATTRS 64  /* attributes sorted in scratch; more: see card_key.c */
#define CARD_MAX_DEPTH 16  /* nested values hashed to this depth */

/* Sorts pointers to attrs[0..n) by key into out (room for CARD_MAX_ATTRS).
 * Returns n, or 0 with nothing written if n > CARD_MAX_ATTRS. */
size_t card_sort_attrs(card_kv *const *attrs, size_t n, const card_kv **out);
/* Continues h over one key/value in canonical form. */
uint64_t card_hash_kv(uint64_t h, const card_kv *kv);
/* Continues h over the canonical form of a value (kv->value may be NULL). */
uint64_t card_hash_value(uint64_t h, const card_any *v, int depth);
/* Continues h over attrs[0..n) in sorted key order (order-independent
 * fallback above CARD_MAX_ATTRS). scratch: CARD_MAX_ATTRS pointers. */
uint64_t card_hash_attrs(uint64_t h, card_kv *const *attrs, size_t n, const card_kv **scratch);
/* Hash of a resource's identity (its attributes sorted by key); NULL ok. */
uint64_t card_resource_hash(const Opentelemetry__Proto__Resource__V1__Resource *r,
                            const card_kv **scratch);
/* FNV state after 'R' + resource hash + 'M' + metric name. */
uint64_t card_metric_prefix(uint64_t res_hash, const char *name);
uint64_t card_metric_prefix_n(uint64_t res_hash, const char *name, size_t n);
/* Full series key of a point. */
static inline uint64_t card_series_key(uint64_t prefix, card_kv *const *attrs, size_t n,
                                       const card_kv **scratch)
{
    return card_hash_attrs(prefix, attrs, n, scratch);
}
/* 1 if kv's key is CARD_MARKER_KEY. */
int card_is_marker(const card_kv *kv);

/* ---- entropy sketches (card_sketch.c) ---- */
#define CARD_KMV_K 32
#define CARD_SK_LABELS 16
#define CARD_SK_WAYS 4
#define CARD_SK_SETS 32
#define CARD_SK_METRICS (CARD_SK_WAYS * CARD_SK_SETS)

typedef struct card_label_sk {
    uint64_t key_hash;
    uint32_t n;                  /* hashes held (<= K) */
    uint32_t mins[CARD_KMV_K];   /* ascending */
} card_label_sk;

typedef struct card_metric_sk {
    uint64_t name_hash;          /* 0 = free */
    uint64_t last_use;
    uint32_t n_labels;
    card_label_sk labels[CARD_SK_LABELS];
} card_metric_sk;

typedef struct card_sketches {
    card_metric_sk *m;           /* owned, CARD_SK_METRICS */
    uint64_t tick;
} card_sketches;

int card_sketches_init(card_sketches *s);
void card_sketches_destroy(card_sketches *s);
/* The entry of a metric name, claimed (LRU in its set) if absent. */
card_metric_sk *card_sketch_metric(card_sketches *s, uint64_t name_hash);
/* Records one value of a label; an untracked key (table of the metric
 * full) is ignored. */
void card_sketch_add(card_metric_sk *ms, uint64_t key_hash, uint64_t value_hash);
/* Estimated distinct values of a label; 0 if untracked. */
double card_sketch_distinct(const card_metric_sk *ms, uint64_t key_hash);
/* The estimate from a KMV state (exact below K). */
double card_kmv_estimate(const card_label_sk *l);

/* ---- protobuf-c arena (card_arena.c) ---- */
typedef struct card_chunk card_chunk;
typedef struct card_arena {
    card_chunk *head;            /* owned chain, newest first */
    size_t held;                 /* bytes in all chunks */
    size_t keep;                 /* bytes kept across resets */
    ProtobufCAllocator pa;       /* allocator handed to protobuf-c */
} card_arena;

void card_arena_init(card_arena *a, size_t keep);
void card_arena_destroy(card_arena *a);
/* Aligned memory until the next reset, or NULL. */
void *card_arena_alloc(card_arena *a, size_t n);
/* Forgets every allocation; keeps up to `keep` bytes of chunks. */
void card_arena_reset(card_arena *a);

/* ---- per-type merges (card_merge.c) ---- */
/* Data point arrays of a metric, generically. NULL if none. */
void **card_points(card_metric *m, size_t **n);
/* The attributes of one point of a metric of this data case. */
card_kv ***card_point_attrs(int data_case, void *pt, size_t **n);
/* Merges point src into dst (same metric, same reduced series). 1 merged,
 * 0 incompatible (keep apart), SW_ENOMEM. Arena for grown buckets. */
int card_merge_point(const card_metric *m, void *dst, const void *src, card_arena *a);

/* ---- the processor (card_proc.c lifecycle, card_policy.c decisions) ---- */
struct card {
    card_config cfg;
    card_metrics *m;              /* owned by the metrics registry, or NULL */
    card_table t;
    card_sketches sk;
    card_arena arena;
    uint32_t agg_limit;           /* used < agg_limit: admit */
    uint32_t drop_limit;          /* used < drop_limit: aggregate; else drop */
    double volatile_n;            /* distinct values that make a label volatile */
    card_kv marker;               /* CARD_MARKER_KEY = true */
    card_any marker_val;
    const card_kv *sorted[CARD_MAX_ATTRS]; /* scratch: attributes by key */
    card_stats st;
    int slow_only;                /* tests: skip the wire fast path */
};

/* Per-request state of card_process(). */
typedef struct card_req {
    int64_t now_ns;
    uint64_t points_in;
    uint64_t dropped;
    uint64_t aggregated;
    uint64_t merged;
    int changed;                  /* something was dropped or rewritten */
} card_req;

/* Runs the policy over one metric's points; compacts its point array.
 * Returns 0 or SW_ENOMEM. */
int card_policy_metric(card *c, card_req *rq, card_metric *m, uint64_t res_hash);

/* The fast path over the encoded request (card_wire.c): 0 when every
 * point was a known series or admitted unchanged (the request passes as
 * is), CARD_WIRE_SLOW when the struct path must run over the request. */
#define CARD_WIRE_SLOW 1
int card_wire_run(card *c, card_req *rq, const uint8_t *pb, size_t len);

#endif
