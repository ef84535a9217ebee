/* otlp_wire_strip.c — ow_strip_groups() (see otlp_wire.h).
 *
 * protobuf-c 1.4 refuses the group wire types even in unknown fields,
 * while ow_validate() skips them as protobuf parsers do. A stage that has
 * to unpack a request (the cardinality limiter's rewrite) unpacks this
 * copy instead: the same bytes with the group fields left out, every
 * enclosing message length rewritten. Walks the schema by descriptor, with
 * the depth limit of the validation. Pure; any thread.
 */
#include "runtime/otlp_wire.h"

#include <string.h>

#include "runtime/err.h"
#include "runtime/pbwire.h"

static int strip_msg(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                     buf *out, unsigned depth);

/* A known message field: its tag [start, tag_end), then its payload
 * p[0..len) stripped, behind a rewritten length. */
static int strip_child(const ProtobufCFieldDescriptor *f, const uint8_t *start,
                       const uint8_t *tag_end, const uint8_t *p, size_t len, buf *out,
                       unsigned depth)
{
    static const uint8_t room[5] = {0};
    if (depth >= OW_MAX_DEPTH) return SW_EDECODE;
    int rc = buf_append(out, start, (size_t)(tag_end - start));
    size_t at = out->len;
    if (!rc) rc = buf_append(out, room, sizeof room);
    if (!rc) rc = strip_msg(f->descriptor, p, p + len, out, depth + 1);
    if (rc) return rc;
    size_t body = at + sizeof room, n = out->len - body;
    size_t vl = pbw_put_varint(out->data + at, n);
    memmove(out->data + at + vl, out->data + body, n);
    out->len = at + vl + n;
    return 0;
}

static int strip_msg(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                     buf *out, unsigned depth)
{
    while (p < end) {
        const uint8_t *start = p;
        uint64_t v;
        uint32_t key, len;
        if (!(p = pbw_u32(p, end, &key)) || (key >> 3) == 0) return SW_EDECODE;
        uint32_t num = (uint32_t)(key >> 3);
        const uint8_t *tag_end = p;
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, num);
        switch (key & 7) {
        case 0:
            if (!(p = pbw_varint(p, end, 10, &v))) return SW_EDECODE;
            break;
        case 1:
        case 5: {
            size_t w = (key & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < w) return SW_EDECODE;
            p += w;
            break;
        }
        case 2:
            if (!(p = pbw_len(p, end, &len))) return SW_EDECODE;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int rc = strip_child(f, start, tag_end, p, len, out, depth);
                if (rc) return rc;
                p += len;
                continue;
            }
            p += len;
            break;
        case 3:
            if (!(p = pbw_skip_group(p, end, num, depth))) return SW_EDECODE;
            continue; /* left out */
        default:
            return SW_EDECODE;
        }
        int rc = buf_append(out, start, (size_t)(p - start));
        if (rc) return rc;
    }
    return 0;
}

int ow_strip_groups(sw_signal sig, const uint8_t *in, size_t len, buf *out)
{
    const ProtobufCMessageDescriptor *d = ow_descriptor(sig);
    size_t start = out->len;
    if (!d) return SW_EDECODE;
    int rc = strip_msg(d, in, in + len, out, 1);
    if (rc) out->len = start;
    return rc;
}
