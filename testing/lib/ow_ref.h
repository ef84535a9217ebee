/* ow_ref.h — reference wire walk for differential tests of ow_validate().
 *
 * The descriptor-driven walk that runtime/otlp_wire.c used before it moved
 * to precomputed tables: slower, but simple enough to trust. Tests and the
 * fuzz target compare owref_validate() with ow_validate() on every input:
 * same verdict, same reason, same item count. Static functions only, so a
 * test includes it without a build rule. Pure; any thread.
 */
#ifndef SW_OW_REF_H
#define SW_OW_REF_H

#include <limits.h>
#include <protobuf-c/protobuf-c.h>
#include <stdint.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "runtime/err.h"
#include "runtime/otlp_wire.h"

enum { REF_WT_VARINT = 0, REF_WT_I64 = 1, REF_WT_LEN = 2, REF_WT_I32 = 5, REF_WT_NONE = 8 };
#define REF_MAX_ONEOFS 4

/* The wire type each protobuf-c field type is encoded with (unpacked). */
static const uint8_t ref_wire_of[] = {
    [PROTOBUF_C_TYPE_INT32] = REF_WT_VARINT,   [PROTOBUF_C_TYPE_SINT32] = REF_WT_VARINT,
    [PROTOBUF_C_TYPE_SFIXED32] = REF_WT_I32,   [PROTOBUF_C_TYPE_INT64] = REF_WT_VARINT,
    [PROTOBUF_C_TYPE_SINT64] = REF_WT_VARINT,  [PROTOBUF_C_TYPE_SFIXED64] = REF_WT_I64,
    [PROTOBUF_C_TYPE_UINT32] = REF_WT_VARINT,  [PROTOBUF_C_TYPE_FIXED32] = REF_WT_I32,
    [PROTOBUF_C_TYPE_UINT64] = REF_WT_VARINT,  [PROTOBUF_C_TYPE_FIXED64] = REF_WT_I64,
    [PROTOBUF_C_TYPE_FLOAT] = REF_WT_I32,      [PROTOBUF_C_TYPE_DOUBLE] = REF_WT_I64,
    [PROTOBUF_C_TYPE_BOOL] = REF_WT_VARINT,    [PROTOBUF_C_TYPE_ENUM] = REF_WT_VARINT,
    [PROTOBUF_C_TYPE_STRING] = REF_WT_LEN,     [PROTOBUF_C_TYPE_BYTES] = REF_WT_LEN,
    [PROTOBUF_C_TYPE_MESSAGE] = REF_WT_LEN,
};

typedef struct ref_walk {
    const ProtobufCMessageDescriptor *items[4]; /* what counts as one item */
    unsigned n_items;
    const char *why;
} ref_walk;

/* Per-message record of the items each oneof contributed: only the last
 * member given of a oneof survives unpacking. */
typedef struct ref_oneofs {
    unsigned qoff[REF_MAX_ONEOFS];
    uint32_t n[REF_MAX_ONEOFS];
    unsigned used;
} ref_oneofs;

static int ref_fail(ref_walk *w, const char *why)
{
    w->why = why;
    return -1;
}

static void ref_walk_init(ref_walk *w, sw_signal sig)
{
    w->why = NULL;
    w->n_items = 0;
    for (unsigned i = 0; i < 4; i++) w->items[i] = NULL;
    switch (sig) {
    case SIG_TRACES:
        w->items[w->n_items++] = &opentelemetry__proto__trace__v1__span__descriptor;
        break;
    case SIG_METRICS:
        w->items[w->n_items++] = &opentelemetry__proto__metrics__v1__number_data_point__descriptor;
        w->items[w->n_items++] = &opentelemetry__proto__metrics__v1__histogram_data_point__descriptor;
        w->items[w->n_items++] =
            &opentelemetry__proto__metrics__v1__exponential_histogram_data_point__descriptor;
        w->items[w->n_items++] = &opentelemetry__proto__metrics__v1__summary_data_point__descriptor;
        break;
    case SIG_LOGS:
        w->items[w->n_items++] = &opentelemetry__proto__logs__v1__log_record__descriptor;
        break;
    default:
        break;
    }
}

/* Unused slots of items[] are NULL, never a descriptor: four compares, no
 * loop. */
static int ref_is_item(const ref_walk *w, const ProtobufCMessageDescriptor *d)
{
    return (w->items[0] == d) | (w->items[1] == d) | (w->items[2] == d) | (w->items[3] == d);
}

/* Field of number num in d, or NULL. field_ranges is sorted and ends with
 * a sentinel whose orig_index is n_fields. */
static const ProtobufCFieldDescriptor *ref_field_of(const ProtobufCMessageDescriptor *d,
                                                       uint32_t num)
{
    const ProtobufCIntRange *r = d->field_ranges;
    if (d->n_field_ranges == 1) { /* the usual case: one contiguous range */
        uint32_t off = num - (uint32_t)r[0].start_value;
        if (num < (uint32_t)r[0].start_value ||
            off >= (uint32_t)(r[1].orig_index - r[0].orig_index))
            return NULL;
        return &d->fields[r[0].orig_index + (int)off];
    }
    for (unsigned i = 0; i < d->n_field_ranges; i++) {
        if (num < (uint32_t)r[i].start_value) return NULL;
        uint32_t off = num - (uint32_t)r[i].start_value;
        if (off < (uint32_t)(r[i + 1].orig_index - r[i].orig_index))
            return &d->fields[r[i].orig_index + (int)off];
    }
    return NULL;
}

/* A tag or length: at most 5 bytes, value within 32 bits. */
static int ref_rd_u32(const uint8_t **pp, const uint8_t *end, uint32_t *out)
{
    const uint8_t *p = *pp;
    if (p < end && *p < 0x80) {
        *out = *p;
        *pp = p + 1;
        return 0;
    }
    uint64_t v = 0;
    for (unsigned i = 0; i < 5 && p + i < end; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (p[i] < 0x80) {
            if (v > UINT32_MAX) return -1;
            *out = (uint32_t)v;
            *pp = p + i + 1;
            return 0;
        }
    }
    return -1;
}

/* A value varint: at most 10 bytes, not overflowing 64 bits. */
static int ref_skip_varint(const uint8_t **pp, const uint8_t *end)
{
    const uint8_t *p = *pp;
    for (unsigned i = 0; i < 10 && p + i < end; i++) {
        if (p[i] < 0x80) {
            if (i == 9 && p[i] > 1) return -1;
            *pp = p + i + 1;
            return 0;
        }
    }
    return -1;
}

static int ref_skip_fixed(const uint8_t **pp, const uint8_t *end, size_t n)
{
    if ((size_t)(end - *pp) < n) return -1;
    *pp += n;
    return 0;
}

/* Reads a length prefix and returns the payload bounds. */
static int ref_rd_len(const uint8_t **pp, const uint8_t *end, const uint8_t **sub,
                         size_t *n)
{
    uint32_t l;
    if (ref_rd_u32(pp, end, &l) != 0 || l > INT_MAX || l > (size_t)(end - *pp)) return -1;
    *sub = *pp;
    *n = l;
    *pp += l;
    return 0;
}

/* A varint, fixed64 or fixed32 value. */
static int ref_skip_scalar(ref_walk *w, uint32_t wt, const uint8_t **pp, const uint8_t *end)
{
    if (wt == REF_WT_VARINT) {
        if (*pp < end && **pp < 0x80) { /* one byte: most enums, bools, small ints */
            (*pp)++;
            return 0;
        }
        return ref_skip_varint(pp, end) ? ref_fail(w, "malformed varint") : 0;
    }
    if (wt == REF_WT_I64) return ref_skip_fixed(pp, end, 8) ? ref_fail(w, "truncated fixed64") : 0;
    return ref_skip_fixed(pp, end, 4) ? ref_fail(w, "truncated fixed32") : 0;
}

/* A group of field num (start tag read), nested in a message at depth:
 * through its matching end tag; groups inside count as one more level. */
static int ref_skip_group(const uint8_t **pp, const uint8_t *end, uint32_t num, unsigned depth)
{
    const uint8_t *sub;
    size_t n;
    if (depth >= OW_MAX_DEPTH) return -1;
    while (*pp < end) {
        uint32_t key;
        if (ref_rd_u32(pp, end, &key) || (key >> 3) == 0) return -1;
        switch (key & 7) {
        case REF_WT_VARINT: if (ref_skip_varint(pp, end)) return -1; break;
        case REF_WT_I64: if (ref_skip_fixed(pp, end, 8)) return -1; break;
        case REF_WT_I32: if (ref_skip_fixed(pp, end, 4)) return -1; break;
        case REF_WT_LEN: if (ref_rd_len(pp, end, &sub, &n)) return -1; break;
        case 3: if (ref_skip_group(pp, end, key >> 3, depth + 1)) return -1; break;
        case 4: return (key >> 3) == num ? 0 : -1;
        default: return -1;
        }
    }
    return -1;
}

/* A field number the schema does not know: skip it if well formed. */
static int ref_skip_unknown(ref_walk *w, uint32_t key, const uint8_t **pp, const uint8_t *end,
                            unsigned depth)
{
    const uint8_t *sub;
    size_t n;
    switch (key & 7) {
    case REF_WT_VARINT:
        return ref_skip_varint(pp, end) ? ref_fail(w, "malformed varint") : 0;
    case REF_WT_I64:
        return ref_skip_fixed(pp, end, 8) ? ref_fail(w, "truncated fixed64") : 0;
    case REF_WT_I32:
        return ref_skip_fixed(pp, end, 4) ? ref_fail(w, "truncated fixed32") : 0;
    case REF_WT_LEN:
        return ref_rd_len(pp, end, &sub, &n) ? ref_fail(w, "length out of bounds") : 0;
    case 3:
        return ref_skip_group(pp, end, key >> 3, depth) ? ref_fail(w, "malformed group") : 0;
    case 4:
        return ref_fail(w, "end of a group never started");
    default:
        return ref_fail(w, "invalid wire type");
    }
}

/* Payload of a packed repeated scalar field. */
static int ref_walk_packed(ref_walk *w, const ProtobufCFieldDescriptor *f, const uint8_t *p,
                       size_t n)
{
    const uint8_t *end = p + n;
    switch (ref_wire_of[f->type]) {
    case REF_WT_I32:
        return n % 4 ? ref_fail(w, "packed fixed32 length not a multiple of 4") : 0;
    case REF_WT_I64:
        return n % 8 ? ref_fail(w, "packed fixed64 length not a multiple of 8") : 0;
    default:
        break;
    }
    if (f->type == PROTOBUF_C_TYPE_BOOL) {
        for (; p < end; p++)
            if (*p > 1) return ref_fail(w, "packed bool not 0 or 1");
        return 0;
    }
    while (p < end)
        if (ref_skip_varint(&p, end)) return ref_fail(w, "malformed packed varint");
    return 0;
}

static int ref_walk_msg(ref_walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                    const uint8_t *end, unsigned depth, uint32_t *count);

/* One occurrence of a known field; *n gets the items inside it. */
static int ref_walk_field(ref_walk *w, const ProtobufCFieldDescriptor *f, uint32_t wt,
                      const uint8_t **pp, const uint8_t *end, unsigned depth, uint32_t *n)
{
    unsigned want = ref_wire_of[f->type];
    const uint8_t *sub;
    size_t len;
    *n = 0;
    if (wt == want) {
        if (wt != REF_WT_LEN) return ref_skip_scalar(w, wt, pp, end);
        if (ref_rd_len(pp, end, &sub, &len)) return ref_fail(w, "length out of bounds");
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) return 0;
        if (depth >= OW_MAX_DEPTH) return ref_fail(w, "nesting too deep");
        const ProtobufCMessageDescriptor *cd = f->descriptor;
        if (ref_walk_msg(w, cd, sub, sub + len, depth + 1, n)) return -1;
        *n += (uint32_t)ref_is_item(w, cd);
        return 0;
    }
    if (wt == REF_WT_LEN && f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (ref_rd_len(pp, end, &sub, &len)) return ref_fail(w, "length out of bounds");
        return ref_walk_packed(w, f, sub, len);
    }
    if (wt == 3 || wt == 4) return ref_fail(w, "group wire type");
    return ref_fail(w, "wrong wire type for a known field");
}

/* Items of a oneof member: they replace what an earlier member of the same
 * oneof contributed. */
static int ref_oneof_count(ref_walk *w, ref_oneofs *o, const ProtobufCFieldDescriptor *f,
                           uint32_t n, uint32_t *total)
{
    for (unsigned i = 0; i < o->used; i++) {
        if (o->qoff[i] == f->quantifier_offset) {
            *total = *total - o->n[i] + n;
            o->n[i] = n;
            return 0;
        }
    }
    if (n == 0) return 0;
    if (o->used == REF_MAX_ONEOFS) return ref_fail(w, "too many ref_oneofs");
    o->qoff[o->used] = f->quantifier_offset;
    o->n[o->used++] = n;
    *total += n;
    return 0;
}

/* Refuses a second occurrence of a singular, non-oneof message field. */
static int ref_once(ref_walk *w, const ProtobufCMessageDescriptor *d,
                const ProtobufCFieldDescriptor *f, uint64_t *seen)
{
    if (f->type != PROTOBUF_C_TYPE_MESSAGE || f->label == PROTOBUF_C_LABEL_REPEATED ||
        (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        return 0;
    size_t idx = (size_t)(f - d->fields);
    if (idx >= 64) return 0;
    if (*seen & (1ull << idx)) return ref_fail(w, "message field given twice");
    *seen |= 1ull << idx;
    return 0;
}

static int ref_walk_msg(ref_walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                    const uint8_t *end, unsigned depth, uint32_t *count)
{
    ref_oneofs o;
    uint64_t seen = 0;
    uint32_t total = 0;
    o.used = 0;
    while (p < end) {
        uint32_t key, n;
        if (ref_rd_u32(&p, end, &key)) return ref_fail(w, "malformed tag");
        if ((key >> 3) == 0) return ref_fail(w, "field number 0");
        const ProtobufCFieldDescriptor *f = ref_field_of(d, key >> 3);
        if (!f) {
            if (ref_skip_unknown(w, key, &p, end, depth)) return -1;
            continue;
        }
        if (ref_walk_field(w, f, key & 7, &p, end, depth, &n)) return -1;
        /* Scalars, strings and bytes outside a oneof: nothing to count. */
        if (f->type != PROTOBUF_C_TYPE_MESSAGE && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
            continue;
        if (ref_once(w, d, f, &seen)) return -1;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (ref_oneof_count(w, &o, f, n, &total)) return -1;
        } else {
            total += n;
        }
    }
    *count = total;
    return 0;
}

static int owref_validate(sw_signal sig, const uint8_t *data, size_t len, uint32_t *items,
                const char **why)
{
    ref_walk w;
    const ProtobufCMessageDescriptor *d = ow_descriptor(sig);
    uint32_t n = 0;
    *items = 0;
    if (!d) {
        if (why) *why = "unknown signal";
        return SW_EDECODE;
    }
    if (len > INT_MAX) {
        if (why) *why = "request too large";
        return SW_EDECODE;
    }
    ref_walk_init(&w, sig);
    if (len && ref_walk_msg(&w, d, data, data + len, 1, &n) != 0) {
        if (why) *why = w.why;
        return SW_EDECODE;
    }
    *items = n;
    if (why) *why = NULL;
    return 0;
}

#endif
