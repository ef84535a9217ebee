/* card_wire.c — the limiter's fast path over the encoded request.
 *
 * Most requests carry only series the table already holds (or, below
 * aggregate_threshold, new ones it simply admits): nothing changes and the
 * original bytes go on. This path computes the same series keys as
 * card_key.c straight from the protobuf wire format — no unpacking, no
 * allocation — refreshing known series and admitting new ones while the
 * table is below agg_limit. It gives up (CARD_WIRE_SLOW) as soon as a
 * point needs a rewrite (aggregate or drop band, full table) or the
 * encoding is anything but plain: a singular field given twice, several
 * members of a oneof, array or kvlist attribute values, more than
 * CARD_MAX_ATTRS attributes, groups. The caller then runs the struct path
 * over the whole request; points this path already handled are found in
 * the table there, so nothing is counted twice.
 *
 * Strings are cut at their first NUL byte, as protobuf-c's copies are read
 * with strlen(), so both paths hash the same bytes. The input is expected
 * to have passed ow_validate(); fields this path does not need are skipped
 * without further checks, but every read stays within the buffer.
 */
#include <string.h>

#include "processors/card_int.h"
#include "runtime/pbwire.h"

typedef struct rd {
    const uint8_t *p, *end;
} rd;

typedef struct wattr {
    const uint8_t *k;
    size_t klen;
    uint8_t type;                 /* CARD_T_* */
    const uint8_t *v;             /* string / bytes */
    size_t vlen;
    uint64_t u;                   /* bool, int, double bits */
} wattr;

typedef struct wctx {
    card *c;
    card_req *rq;
    wattr a[CARD_MAX_ATTRS];
    const wattr *s[CARD_MAX_ATTRS];
} wctx;

/* Next field with runtime/pbwire.h's readers: 1 (tag read; LEN payload in
 * *sub, VARINT value or I64 bits in *val), 0 at the end, -1 malformed or a
 * group (not plain). */
static int next(rd *r, uint32_t *field, uint32_t *wt, rd *sub, uint64_t *val)
{
    const uint8_t *p = r->p, *end = r->end;
    uint32_t key, len;
    if (p >= end) return 0;
    if (!(p = pbw_u32(p, end, &key)) || (key >> 3) == 0) return -1;
    *field = key >> 3;
    *wt = key & 7;
    switch (key & 7) {
    case PBW_VARINT:
        if (!(p = pbw_varint(p, end, 10, val))) return -1;
        break;
    case PBW_I64:
        if (end - p < 8) return -1;
        memcpy(val, p, 8);
        p += 8;
        break;
    case PBW_I32:
        if (end - p < 4) return -1;
        p += 4;
        break;
    case PBW_LEN:
        if (!(p = pbw_len(p, end, &len))) return -1;
        sub->p = p;
        sub->end = p + len;
        p += len;
        break;
    default:
        return -1;
    }
    r->p = p;
    return 1;
}

static size_t cstr_len(const uint8_t *p, size_t n)
{
    const uint8_t *z = memchr(p, 0, n);
    return z ? (size_t)(z - p) : n;
}

/* AnyValue into a. -1: not plain (fall back). */
static int any_value(rd r, wattr *a)
{
    uint32_t f, wt;
    rd sub = {0};
    uint64_t v = 0;
    int rc, set = 0;
    a->type = CARD_T_NONE;
    while ((rc = next(&r, &f, &wt, &sub, &v)) == 1) {
        if (f < 1 || f > 7) continue;
        if (set++ || f == 5 || f == 6) return -1;
        if (f == 1 && wt == PBW_LEN) {
            a->type = CARD_T_STR;
            a->v = sub.p;
            a->vlen = cstr_len(sub.p, (size_t)(sub.end - sub.p));
        } else if (f == 7 && wt == PBW_LEN) {
            a->type = CARD_T_BYTES;
            a->v = sub.p;
            a->vlen = (size_t)(sub.end - sub.p);
        } else if ((f == 2 || f == 3) && wt == PBW_VARINT) {
            a->type = f == 2 ? CARD_T_BOOL : CARD_T_INT;
            a->u = v;
        } else if (f == 4 && wt == PBW_I64) {
            a->type = CARD_T_DBL;
            a->u = v;
        } else {
            return -1;
        }
    }
    return rc;
}

/* KeyValue into a. -1: not plain. */
static int key_value(rd r, wattr *a)
{
    uint32_t f, wt;
    rd sub = {0};
    uint64_t v;
    int rc, have_k = 0, have_v = 0;
    a->k = (const uint8_t *)"";
    a->klen = 0;
    a->type = CARD_T_NONE;
    while ((rc = next(&r, &f, &wt, &sub, &v)) == 1) {
        if (f != 1 && f != 2) continue;
        if (wt != PBW_LEN || (f == 1 ? have_k++ : have_v++)) return -1;
        if (f == 1) {
            a->k = sub.p;
            a->klen = cstr_len(sub.p, (size_t)(sub.end - sub.p));
        } else if (any_value(sub, a) != 0) {
            return -1;
        }
    }
    return rc;
}

static uint64_t hash_value(uint64_t h, const wattr *a)
{
    switch (a->type) {
    case CARD_T_STR: return card_h_lstr(h, CARD_T_STR, a->v, a->vlen);
    case CARD_T_BYTES: return card_h_lstr(h, CARD_T_BYTES, a->v, a->vlen);
    case CARD_T_BOOL: return card_h_bool(h, a->u != 0);
    case CARD_T_INT: return card_h_int(h, (int64_t)a->u);
    case CARD_T_DBL: {
        double d;
        memcpy(&d, &a->u, sizeof d);
        return card_h_dbl(h, d);
    }
    default: return card_fnv_byte(h, CARD_T_NONE);
    }
}

static int wattr_cmp(const wattr *x, const wattr *y)
{
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->k, y->k, n);
    if (c) return c;
    return (x->klen > y->klen) - (x->klen < y->klen);
}

/* Hashes w->a[0..n) in key order. */
static uint64_t hash_sorted(wctx *w, uint64_t h, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const wattr *x = &w->a[i];
        size_t j = i;
        while (j > 0 && wattr_cmp(w->s[j - 1], x) > 0) {
            w->s[j] = w->s[j - 1];
            j--;
        }
        w->s[j] = x;
    }
    for (size_t i = 0; i < n; i++)
        h = hash_value(card_h_lstr(h, CARD_T_KEY, w->s[i]->k, w->s[i]->klen), w->s[i]);
    return h;
}

/* Collects the attributes (field attr_field) of message r into w->a. */
static int collect(wctx *w, rd r, uint32_t attr_field, size_t *n)
{
    uint32_t f, wt;
    rd sub = {0};
    uint64_t v;
    int rc;
    *n = 0;
    while ((rc = next(&r, &f, &wt, &sub, &v)) == 1) {
        if (f != attr_field) continue;
        if (wt != PBW_LEN || *n == CARD_MAX_ATTRS || key_value(sub, &w->a[*n]) != 0) return -1;
        (*n)++;
    }
    return rc;
}

static void learn(card_metric_sk *ms, const wattr *a, size_t n)
{
    static const size_t mlen = sizeof CARD_MARKER_KEY - 1;
    for (size_t i = 0; i < n; i++) {
        if (a[i].klen == mlen && memcmp(a[i].k, CARD_MARKER_KEY, mlen) == 0) continue;
        card_sketch_add(ms, card_fnv1a64(a[i].k, a[i].klen), hash_value(CARD_FNV_OFFSET, &a[i]));
    }
}

/* One data point. 0 handled, -1 slow path. */
static int point(wctx *w, rd r, uint32_t attr_field, uint64_t prefix, uint64_t name_hash)
{
    size_t n;
    if (collect(w, r, attr_field, &n) != 0) return -1;
    card *c = w->c;
    uint64_t key = hash_sorted(w, prefix, n);
    w->rq->points_in++;
    int64_t at = card_table_find(&c->t, key);
    if (at >= 0) {
        c->t.slots[at].seen_ns = w->rq->now_ns;
        return 0;
    }
    if (c->t.used >= c->agg_limit) return -1;
    learn(card_sketch_metric(&c->sk, name_hash), w->a, n);
    if (card_table_insert(&c->t, key, w->rq->now_ns) < 0) return -1;
    c->st.admitted++;
    return 0;
}

static uint32_t attr_field_of(uint32_t data_field)
{
    switch (data_field) {
    case 9: return 9;   /* HistogramDataPoint.attributes */
    case 10: return 1;  /* ExponentialHistogramDataPoint.attributes */
    default: return 7;  /* NumberDataPoint, SummaryDataPoint */
    }
}

static int metric(wctx *w, rd r, uint64_t res_hash)
{
    static const uint8_t empty[1];
    rd it = r, sub = {0}, name = {empty, empty}, data = {0};
    uint32_t f, wt, data_field = 0;
    uint64_t v;
    int rc, have_name = 0;
    while ((rc = next(&it, &f, &wt, &sub, &v)) == 1) {
        if (f == 1) {
            if (wt != PBW_LEN || have_name++) return -1;
            name = sub;
        } else if (f == 5 || f == 7 || f == 9 || f == 10 || f == 11) {
            if (wt != PBW_LEN || data_field) return -1;
            data_field = f;
            data = sub;
        }
    }
    if (rc != 0) return -1;
    if (!data_field) return 0;
    size_t nlen = cstr_len(name.p, (size_t)(name.end - name.p));
    uint64_t prefix = card_metric_prefix_n(res_hash, (const char *)name.p, nlen);
    uint64_t name_hash = card_fnv1a64(name.p, nlen);
    uint32_t af = attr_field_of(data_field);
    while ((rc = next(&data, &f, &wt, &sub, &v)) == 1) {
        if (f != 1) continue;
        if (wt != PBW_LEN || point(w, sub, af, prefix, name_hash) != 0) return -1;
    }
    return rc;
}

/* Visits every LEN field `field` of r with fn. */
#define EACH(r, field, call)                                                 \
    do {                                                                     \
        rd it_ = (r), sub = {0};                                             \
        uint32_t f_, wt_;                                                    \
        uint64_t v_;                                                         \
        int rc_;                                                             \
        while ((rc_ = next(&it_, &f_, &wt_, &sub, &v_)) == 1) {              \
            if (f_ != (field)) continue;                                     \
            if (wt_ != PBW_LEN || (call) != 0) return -1;                     \
        }                                                                    \
        if (rc_ != 0) return -1;                                             \
    } while (0)

static int scope(wctx *w, rd r, uint64_t res_hash)
{
    EACH(r, 2, metric(w, sub, res_hash));
    return 0;
}

static int resource_metrics(wctx *w, rd r)
{
    rd it = r, s = {0}, res = {0};
    uint32_t f, wt;
    uint64_t v;
    int rc, have_res = 0;
    while ((rc = next(&it, &f, &wt, &s, &v)) == 1) {
        if (f != 1) continue;
        if (wt != PBW_LEN || have_res++) return -1;
        res = s;
    }
    size_t n = 0;
    if (rc != 0 || (have_res && collect(w, res, 1, &n) != 0)) return -1;
    uint64_t res_hash = hash_sorted(w, CARD_FNV_OFFSET, n);
    EACH(r, 2, scope(w, sub, res_hash));
    return 0;
}

static int request(wctx *w, rd r)
{
    EACH(r, 1, resource_metrics(w, sub));
    return 0;
}

int card_wire_run(card *c, card_req *rq, const uint8_t *pb, size_t len)
{
    wctx w;
    w.c = c;
    w.rq = rq;
    rd r = {pb, pb + len};
    if (!pb) r.p = r.end = (const uint8_t *)"";
    return request(&w, r) == 0 ? 0 : CARD_WIRE_SLOW;
}
