/* pbwire.h — the protobuf wire reader every stage uses.
 *
 * Static inline readers over encoded bytes [p, end): no allocation, never a
 * read outside the buffer, one set of framing rules for every caller
 * (runtime/otlp_wire.c's validation, the classifier's scans, the
 * cardinality limiter's fast path, the exporter's response reader):
 *
 *   - a value varint has at most 10 bytes, and its 10th byte may only be
 *     0 or 1 (anything more overflows 64 bits);
 *   - a tag or a length has at most 5 bytes and a value within 32 bits;
 *     field number 0 is refused;
 *   - a length-delimited payload lies within the buffer;
 *   - a group is one field from its start tag through the matching end
 *     tag, properly nested, at most PBW_MAX_DEPTH deep.
 *
 * Primitives return the position after what they read, or NULL when it is
 * malformed, so that a walk keeps its position in a register. Pure; any
 * thread.
 */
#ifndef SW_PBWIRE_H
#define SW_PBWIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum { PBW_VARINT = 0, PBW_I64 = 1, PBW_LEN = 2, PBW_SGROUP = 3, PBW_EGROUP = 4, PBW_I32 = 5 };

/* Nesting limit of messages and groups (runtime/otlp_wire.h's OW_MAX_DEPTH). */
#define PBW_MAX_DEPTH 64

#define PBW_LIKELY(x) __builtin_expect(!!(x), 1)

/* A varint of at most max bytes (max <= 10) into *out. With max 10 the
 * 10th byte may only be 0 or 1. Returns the position after it, or NULL. */
static inline const uint8_t *pbw_varint(const uint8_t *p, const uint8_t *end, unsigned max,
                                        uint64_t *out)
{
    uint64_t v = 0;
    if (PBW_LIKELY(p < end && p[0] < 0x80 && max > 0)) {
        *out = p[0];
        return p + 1;
    }
    for (unsigned i = 0; i < max && p + i < end; i++) {
        v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
        if (p[i] < 0x80) {
            if (i == 9 && p[i] > 1) return NULL;
            *out = v;
            return p + i + 1;
        }
    }
    return NULL;
}

/* A value varint skipped: the rules of pbw_varint(…, 10, …). */
static inline const uint8_t *pbw_skip_varint(const uint8_t *p, const uint8_t *end)
{
    if (PBW_LIKELY(p < end && p[0] < 0x80)) return p + 1;
    for (unsigned i = 1; i < 10 && p + i < end; i++) {
        if (p[i] < 0x80) {
            if (i == 9 && p[i] > 1) return NULL;
            return p + i + 1;
        }
    }
    return NULL;
}

/* A tag or length of 3 to 5 bytes, value within 32 bits (kept out of line). */
__attribute__((noinline, cold, unused)) static const uint8_t *
pbw_u32_slow(const uint8_t *p, const uint8_t *end, uint32_t *out)
{
    uint64_t v;
    p = pbw_varint(p, end, 5, &v);
    if (!p || v > UINT32_MAX) return NULL;
    *out = (uint32_t)v;
    return p;
}

/* A tag or a length: at most 5 bytes, value within 32 bits. */
static inline const uint8_t *pbw_u32(const uint8_t *p, const uint8_t *end, uint32_t *out)
{
    if (PBW_LIKELY(p < end && p[0] < 0x80)) {
        *out = p[0];
        return p + 1;
    }
    if (end - p >= 2 && p[1] < 0x80) {
        *out = (p[0] & 0x7fu) | (uint32_t)p[1] << 7;
        return p + 2;
    }
    return pbw_u32_slow(p, end, out);
}

/* A length prefix whose payload p[0..*len) fits before end. */
static inline const uint8_t *pbw_len(const uint8_t *p, const uint8_t *end, uint32_t *len)
{
    p = pbw_u32(p, end, len);
    return p && *len <= (size_t)(end - p) ? p : NULL;
}

/* Skips a group: p is just past the start tag of group field num, inside a
 * message at nesting depth `depth`. Returns the position after the
 * matching end tag, or NULL when the group is malformed, not closed before
 * end, or nests past PBW_MAX_DEPTH together with depth. */
static inline const uint8_t *pbw_skip_group(const uint8_t *p, const uint8_t *end, uint32_t num,
                                            unsigned depth)
{
    uint32_t open[PBW_MAX_DEPTH], key, len;
    unsigned d = 0;
    if (depth >= PBW_MAX_DEPTH) return NULL;
    open[d++] = num;
    while (p < end) {
        if (!(p = pbw_u32(p, end, &key)) || (key >> 3) == 0) return NULL;
        switch (key & 7) {
        case PBW_VARINT: p = pbw_skip_varint(p, end); break;
        case PBW_I64: p = end - p >= 8 ? p + 8 : NULL; break;
        case PBW_I32: p = end - p >= 4 ? p + 4 : NULL; break;
        case PBW_LEN:
            p = pbw_len(p, end, &len);
            if (p) p += len;
            break;
        case PBW_SGROUP:
            if (depth + d >= PBW_MAX_DEPTH) return NULL;
            open[d++] = key >> 3;
            break;
        case PBW_EGROUP:
            if (key >> 3 != open[d - 1]) return NULL;
            if (--d == 0) return p;
            break;
        default: return NULL;
        }
        if (!p) return NULL;
    }
    return NULL; /* not closed */
}

/* Writes v as a minimal varint at p (room for 10 bytes); returns its length. */
static inline size_t pbw_put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

/* One field as pbw_next() read it. */
typedef struct pbw_field {
    const uint8_t *start;   /* first byte of the tag */
    const uint8_t *end;     /* one past the field's last byte */
    uint32_t num;           /* field number */
    uint32_t wt;            /* wire type (PBW_*) */
    uint64_t v;             /* VARINT: the value; I64/I32: the bits, little-endian */
    const uint8_t *sub;     /* LEN: the payload; SGROUP: the group's contents */
    size_t n;               /* LEN: payload length; SGROUP: contents through the end tag */
} pbw_field;

/* Reads the field at *pp, advancing past it; a group is skipped whole.
 * 0, or -1 if malformed (an end-group tag alone, wire types 6 and 7). */
static inline int pbw_next(const uint8_t **pp, const uint8_t *end, pbw_field *f)
{
    uint32_t key, len;
    const uint8_t *p = *pp;
    f->start = p;
    if (!(p = pbw_u32(p, end, &key)) || (key >> 3) == 0) return -1;
    f->num = key >> 3;
    f->wt = key & 7;
    switch (f->wt) {
    case PBW_VARINT:
        if (!(p = pbw_varint(p, end, 10, &f->v))) return -1;
        break;
    case PBW_I64:
    case PBW_I32: {
        size_t w = f->wt == PBW_I64 ? 8 : 4;
        if ((size_t)(end - p) < w) return -1;
        uint64_t v = 0;
        memcpy(&v, p, w); /* little-endian hosts (Linux x86-64, arm64) */
        f->v = v;
        p += w;
        break;
    }
    case PBW_LEN:
        if (!(p = pbw_len(p, end, &len))) return -1;
        f->sub = p;
        f->n = len;
        p += len;
        break;
    case PBW_SGROUP: {
        const uint8_t *g = p;
        if (!(p = pbw_skip_group(p, end, f->num, 0))) return -1;
        f->sub = g;
        f->n = (size_t)(p - g);
        break;
    }
    default:
        return -1;
    }
    f->end = p;
    *pp = p;
    return 0;
}

#endif
