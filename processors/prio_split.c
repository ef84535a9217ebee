/* prio_split.c — see prio.h: classifying a whole request, splitting a mixed one.
 *
 * A request is a sequence of top-level fields; field 1 is one resource
 * (Resource{Spans,Metrics,Logs}). Classification walks that sequence,
 * decides each resource's class and adds its encoded size (tag + length +
 * payload) to the class. Splitting walks it again and copies each field's
 * bytes, unchanged, to the end of its class's request; classes of the first
 * PRIO_CACHE resources come from the classification, later ones are decided
 * again (same rules, same bytes, same answer).
 */
#include "processors/prio.h"

#include <limits.h>
#include <string.h>

#include "processors/prio_int.h"
#include "processors/prio_wire.h"
#include "runtime/err.h"

static unsigned first_class(unsigned mask)
{
    for (unsigned k = 0; k < CLASS_COUNT; k++)
        if (mask & (1u << k)) return k;
    return CLASS_NORMAL;
}

static int add_entry(const prio *p, sw_signal sig, const pbw_field *f, prio_result *out)
{
    if (f->wt != PBW_LEN) return SW_EDECODE;
    int k = prio_entry_class(p, sig, f->sub, f->n);
    if (k < 0) return k;
    out->bytes[k] += (size_t)(f->end - f->start);
    out->resources[k]++;
    out->mask |= 1u << k;
    if (out->n_entries < PRIO_CACHE) out->cls[out->n_entries] = (uint8_t)k;
    out->n_entries++;
    return 0;
}

int prio_classify(const prio *p, sw_signal sig, const uint8_t *pb, size_t len,
                  prio_result *out)
{
    size_t extra = 0;
    memset(out, 0, offsetof(prio_result, cls));
    out->klass = CLASS_NORMAL;
    if ((unsigned)sig >= SIG_COUNT) return SW_EINVAL;
    if (len > INT_MAX) return SW_EDECODE;
    if (!prio_has_rules(p) || len == 0) {   /* nothing to decide: all normal */
        out->single = 1;
        out->mask = 1u << CLASS_NORMAL;
        out->bytes[CLASS_NORMAL] = len;
        return 0;
    }
    const uint8_t *q = pb, *end = pb + len;
    while (q < end) {
        pbw_field f;
        if (pbw_next(&q, end, &f) != 0) return SW_EDECODE;
        if (f.num != 1) {
            extra += (size_t)(f.end - f.start);   /* unknown top-level field */
            continue;
        }
        int rc = add_entry(p, sig, &f, out);
        if (rc != 0) return rc;
    }
    if (!out->mask) out->mask = 1u << CLASS_NORMAL;
    out->klass = (sw_class)first_class(out->mask);
    out->bytes[out->klass] += extra;
    out->single = (out->mask & (out->mask - 1)) == 0;
    return 0;
}

/* Copies every top-level field of pb into its class's item. */
static int fill(const prio *p, sw_signal sig, const uint8_t *pb, size_t len,
                const prio_result *r, item *out[CLASS_COUNT], size_t pos[CLASS_COUNT])
{
    const uint8_t *q = pb, *end = pb + len;
    uint32_t idx = 0;
    while (q < end) {
        pbw_field f;
        int k = (int)r->klass;
        if (pbw_next(&q, end, &f) != 0) return SW_EDECODE;
        size_t sz = (size_t)(f.end - f.start);
        if (f.num == 1) {
            uint32_t n;
            if (f.wt != PBW_LEN) return SW_EDECODE;
            k = idx < r->n_entries && idx < PRIO_CACHE ? r->cls[idx]
                                                       : prio_entry_class(p, sig, f.sub, f.n);
            idx++;
            if (k < 0) return k;
            if (!out[k]) return SW_EINVAL;
            if (pw_count_items(sig, f.sub, f.n, &n) != 0) return SW_EDECODE;
            out[k]->count += n;
        }
        if (!out[k] || sz > r->bytes[k] - pos[k]) return SW_EINVAL; /* r is not pb's */
        memcpy(out[k]->data + pos[k], f.start, sz);
        pos[k] += sz;
    }
    return 0;
}

int prio_split(const prio *p, sw_signal sig, const uint8_t *pb, size_t len,
               const prio_result *r, int64_t recv_ns, item *out[CLASS_COUNT])
{
    size_t pos[CLASS_COUNT] = {0};
    int rc = SW_EINVAL;
    for (int k = 0; k < CLASS_COUNT; k++) out[k] = NULL;
    if ((unsigned)sig >= SIG_COUNT || len > INT_MAX || !(r->mask & (1u << r->klass))) goto fail;
    for (int k = 0; k < CLASS_COUNT; k++) {
        if (!(r->mask & (1u << k))) continue;
        if (r->bytes[k] > len) goto fail;
        /* sized right away; fill() writes its bytes */
        out[k] = item_alloc(sig, (sw_class)k, 0, recv_ns, r->bytes[k]);
        if (!out[k]) {
            rc = SW_ENOMEM;
            goto fail;
        }
    }
    if (len && (rc = fill(p, sig, pb, len, r, out, pos)) != 0) goto fail;
    rc = SW_EINVAL;
    for (int k = 0; k < CLASS_COUNT; k++)
        if (out[k] && pos[k] != r->bytes[k]) goto fail;
    return 0;
fail:
    for (int k = 0; k < CLASS_COUNT; k++) {
        item_free(out[k]);
        out[k] = NULL;
    }
    return rc;
}

int prio_items(const prio *p, sw_signal sig, const uint8_t *pb, size_t len, uint32_t count,
               int64_t recv_ns, item *out[CLASS_COUNT], size_t *n)
{
    prio_result r;
    item *by[CLASS_COUNT];
    *n = 0;
    int rc = prio_classify(p, sig, pb, len, &r);
    if (rc != 0) return rc;
    if (r.single) {
        out[0] = item_new(sig, r.klass, count, recv_ns, pb, len);
        if (!out[0]) return SW_ENOMEM;
        *n = 1;
        return 0;
    }
    rc = prio_split(p, sig, pb, len, &r, recv_ns, by);
    if (rc != 0) return rc;
    for (int k = 0; k < CLASS_COUNT; k++)
        if (by[k]) out[(*n)++] = by[k];
    return 0;
}
