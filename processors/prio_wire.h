/* prio_wire.h — protobuf wire reading for the priority classifier (internal).
 *
 * Field-by-field reading of encoded OTLP messages, without allocation, with
 * the same framing rules as runtime/otlp_wire.c (tags and lengths at most 5
 * bytes, lengths within bounds and under 2^31, value varints at most 10
 * bytes without 64-bit overflow; a group, properly nested, is one field
 * from its start tag through its end tag). The scans below read only what
 * the classifier needs; they are meant for requests ow_validate() accepted,
 * but refuse (-1) anything they cannot walk, never read out of bounds, and
 * never crash on garbage. Pure; any thread.
 */
#ifndef SW_PRIO_WIRE_H
#define SW_PRIO_WIRE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/item.h"
#include "runtime/otlp_wire.h"

enum { PW_VARINT = 0, PW_I64 = 1, PW_LEN = 2, PW_I32 = 5 };

typedef struct pw_field {
    const uint8_t *start;   /* first byte of the tag */
    const uint8_t *end;     /* one past the field's last byte */
    uint32_t num;           /* field number */
    uint32_t wt;            /* wire type */
    uint64_t v;             /* PW_VARINT: the value */
    const uint8_t *sub;     /* PW_LEN: the payload */
    size_t n;               /* PW_LEN: payload length */
} pw_field;

/* Reads a varint of at most max bytes into *out; 0 or -1. */
static inline int pw_varint(const uint8_t **pp, const uint8_t *end, unsigned max, uint64_t *out)
{
    const uint8_t *p = *pp;
    uint64_t v = 0;
    for (unsigned i = 0; i < max && p + i < end; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (p[i] < 0x80) {
            if (i == 9 && p[i] > 1) return -1;
            *out = v;
            *pp = p + i + 1;
            return 0;
        }
    }
    return -1;
}

/* Reads the field at *pp (advancing past it); 0, or -1 if malformed. */
static inline int pw_next(const uint8_t **pp, const uint8_t *end, pw_field *f)
{
    uint64_t key, l;
    f->start = *pp;
    if (pw_varint(pp, end, 5, &key) != 0 || key > UINT32_MAX || (key >> 3) == 0) return -1;
    f->num = (uint32_t)(key >> 3);
    f->wt = (uint32_t)(key & 7);
    switch (f->wt) {
    case PW_VARINT:
        if (pw_varint(pp, end, 10, &f->v) != 0) return -1;
        break;
    case PW_I64:
    case PW_I32: {
        size_t w = f->wt == PW_I64 ? 8 : 4;
        if ((size_t)(end - *pp) < w) return -1;
        *pp += w;
        break;
    }
    case PW_LEN:
        if (pw_varint(pp, end, 5, &l) != 0 || l > INT_MAX || l > (size_t)(end - *pp)) return -1;
        f->sub = *pp;
        f->n = (size_t)l;
        *pp += l;
        break;
    case 3: /* an unknown group: skipped whole, as ow_validate() does */
        if (!(*pp = ow_skip_group(*pp, end, f->num, 0))) return -1;
        break;
    default:
        return -1;
    }
    f->end = *pp;
    return 0;
}

/* ---- scans (prio_scan.c) ---- */

/* Called for each resource attribute with a text form: key[0..klen) and
 * val[0..vlen) (string as is, bool "true"/"false", int decimal; other value
 * types are skipped). Return 0 to go on, 1 to stop early. */
typedef int (*pw_attr_fn)(void *arg, const uint8_t *key, size_t klen, const char *val,
                          size_t vlen);

/* Walks the attributes of the Resource of one encoded Resource{Spans,
 * Metrics,Logs}. 0 or -1. */
int pw_resource_attrs(const uint8_t *p, size_t n, pw_attr_fn fn, void *arg);
/* Traces: *out = 1 if any span of one encoded ResourceSpans has status
 * code ERROR. 0 or -1. */
int pw_has_error_span(const uint8_t *p, size_t n, int *out);
/* Logs: *out = the highest severity_number of the log records of one
 * encoded ResourceLogs (0 if none). 0 or -1. */
int pw_max_severity(const uint8_t *p, size_t n, int *out);
/* Items (spans, data points, log records) of one encoded Resource<sig>,
 * counted as ow_validate() counts them. 0 or -1. */
int pw_count_items(sw_signal sig, const uint8_t *p, size_t n, uint32_t *out);

#endif
