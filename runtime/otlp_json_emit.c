/* otlp_json_emit.c — protobuf to OTLP/JSON (see otlp_json.h).
 *
 * The request is checked with ow_validate() first (which bounds the
 * nesting depth), unpacked with protobuf-c, and written field by field from
 * the descriptors: lowerCamelCase keys, ids as hex, other bytes base64,
 * 64-bit integers as decimal strings, enums as integers, non-finite doubles
 * as "NaN"/"Infinity"/"-Infinity". Fields at their default value are
 * omitted, exactly as protobuf-c omits them when packing, so JSON made here
 * converts back to the same bytes (unknown fields are not carried).
 */
#include "runtime/otlp_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/otlp_wire.h"

static int emit_msg(buf *b, const ProtobufCMessage *m);

static int emit_double(buf *b, double d, int max_digits)
{
    char tmp[40];
    if (isnan(d)) return buf_append_str(b, "\"NaN\"");
    if (isinf(d)) return buf_append_str(b, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
    if (d == 0) return buf_append_str(b, signbit(d) ? "-0.0" : "0");
    for (int prec = max_digits - 2; prec <= max_digits; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, d);
        if (strtod(tmp, NULL) == d) break;
    }
    return buf_append_str(b, tmp);
}

static int emit_bytes(buf *b, const ProtobufCFieldDescriptor *f, const ProtobufCBinaryData *bd)
{
    int rc = buf_append(b, "\"", 1);
    if (rc == 0)
        rc = oj_id_len(f) ? oj_append_hex(b, bd->data, bd->len)
                          : oj_append_b64(b, bd->data, bd->len);
    if (rc == 0) rc = buf_append(b, "\"", 1);
    return rc;
}

/* One value of field f stored at p. */
static int emit_value(buf *b, const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return buf_printf(b, "%d", *(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return buf_printf(b, "%u", *(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return buf_printf(b, "\"%lld\"", (long long)*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return buf_printf(b, "\"%llu\"", (unsigned long long)*(const uint64_t *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return buf_append_str(b, *(const protobuf_c_boolean *)p ? "true" : "false");
    case PROTOBUF_C_TYPE_FLOAT:
        return emit_double(b, *(const float *)p, 9);
    case PROTOBUF_C_TYPE_DOUBLE:
        return emit_double(b, *(const double *)p, 17);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        return oj_append_jstring(b, s ? s : "", s ? strlen(s) : 0);
    }
    case PROTOBUF_C_TYPE_BYTES:
        return emit_bytes(b, f, p);
    case PROTOBUF_C_TYPE_MESSAGE:
        return emit_msg(b, *(ProtobufCMessage *const *)p);
    }
    return SW_EDECODE;
}

/* 1 if protobuf-c would pack field f of m. */
static int present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *base = (const char *)m, *p = base + f->offset;
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *)(base + f->quantifier_offset) > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)(base + f->quantifier_offset) == f->id;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const void *const *)p != NULL;
    case PROTOBUF_C_TYPE_STRING:
        return *(const char *const *)p != NULL && **(const char *const *)p != '\0';
    case PROTOBUF_C_TYPE_BYTES:
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
            return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
        return ((const ProtobufCBinaryData *)p)->len > 0;
    default:
        break;
    }
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset)
        return *(const protobuf_c_boolean *)(base + f->quantifier_offset);
    switch (oj_elem_size(f->type)) {
    case 8:
        if (f->type == PROTOBUF_C_TYPE_DOUBLE) return *(const double *)p != 0;
        return *(const uint64_t *)p != 0;
    default:
        if (f->type == PROTOBUF_C_TYPE_FLOAT) return *(const float *)p != 0;
        return *(const uint32_t *)p != 0;
    }
}

static int emit_field(buf *b, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *p = (const char *)m + f->offset;
    int rc = oj_append_name(b, f->name);
    if (rc == 0) rc = buf_append(b, ":", 1);
    if (rc || f->label != PROTOBUF_C_LABEL_REPEATED) return rc ? rc : emit_value(b, f, p);
    size_t n = *(const size_t *)((const char *)m + f->quantifier_offset), es = oj_elem_size(f->type);
    const char *arr = *(const char *const *)p;
    rc = buf_append(b, "[", 1);
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i) rc = buf_append(b, ",", 1);
        if (rc == 0) rc = emit_value(b, f, arr + i * es);
    }
    return rc ? rc : buf_append(b, "]", 1);
}

static int emit_msg(buf *b, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int rc = buf_append(b, "{", 1), first = 1;
    for (unsigned i = 0; i < d->n_fields && rc == 0; i++) {
        if (!present(m, &d->fields[i])) continue;
        if (!first) rc = buf_append(b, ",", 1);
        if (rc == 0) rc = emit_field(b, m, &d->fields[i]);
        first = 0;
    }
    return rc ? rc : buf_append(b, "}", 1);
}

int oj_pb_to_json(sw_signal sig, const uint8_t *pb, size_t len, buf *out)
{
    const ProtobufCMessageDescriptor *d = ow_descriptor(sig);
    ProtobufCMessage *m = NULL;
    size_t mark = out->len;
    uint32_t items;
    int rc = SW_EDECODE;
    if (!d || ow_validate(sig, pb, len, &items, NULL) != 0) goto cleanup;
    m = protobuf_c_message_unpack(d, NULL, len, pb);
    if (!m) { /* protobuf-c refuses unknown groups: unpack the request without them */
        buf plain;
        buf_init(&plain, len + 5 * OW_MAX_DEPTH);
        if (ow_strip_groups(sig, pb, len, &plain) == 0)
            m = protobuf_c_message_unpack(d, NULL, plain.len, plain.data);
        buf_destroy(&plain);
    }
    if (!m) {
        rc = SW_ENOMEM; /* ow_validate accepted it: allocation failed */
        goto cleanup;
    }
    rc = emit_msg(out, m);
cleanup:
    if (rc) out->len = mark;
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
}
