/* fl_enc.h — protobuf wire encoding helpers for the filelog receiver's
 * requests (encoding only; the receiver builds ExportLogsServiceRequest
 * bytes directly instead of filling protobuf-c structs). Appends to a buf;
 * every function returns 0 or the buf's SW_ETOOBIG / SW_ENOMEM.
 */
#ifndef SW_FL_ENC_H
#define SW_FL_ENC_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "runtime/buf.h"

enum { FL_WT_VARINT = 0, FL_WT_I64 = 1, FL_WT_LEN = 2 };

static inline size_t fl_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) { v >>= 7; n++; }
    return n;
}

static inline int fl_put_varint(buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) { t[n++] = (uint8_t)(v | 0x80); v >>= 7; }
    t[n++] = (uint8_t)v;
    return buf_append(b, t, n);
}

static inline int fl_put_tag(buf *b, unsigned field, unsigned wt)
{
    return fl_put_varint(b, ((uint64_t)field << 3) | wt);
}

/* Field header of a length-delimited field of len bytes. */
static inline int fl_put_len(buf *b, unsigned field, size_t len)
{
    int rc = fl_put_tag(b, field, FL_WT_LEN);
    return rc ? rc : fl_put_varint(b, len);
}

static inline int fl_put_bytes(buf *b, unsigned field, const void *p, size_t n)
{
    int rc = fl_put_len(b, field, n);
    return rc ? rc : buf_append(b, p, n);
}

static inline int fl_put_fixed64(buf *b, unsigned field, uint64_t v)
{
    uint8_t t[8];
    for (int i = 0; i < 8; i++) t[i] = (uint8_t)(v >> (8 * i));
    int rc = fl_put_tag(b, field, FL_WT_I64);
    return rc ? rc : buf_append(b, t, 8);
}

/* Size of a length-delimited field of len bytes, header included. */
static inline size_t fl_len_field(unsigned field, size_t len)
{
    return fl_varint_len((uint64_t)field << 3) + fl_varint_len(len) + len;
}

/* A KeyValue {key, value: AnyValue{string_value}} as field `field`. */
static inline int fl_put_kv_str(buf *b, unsigned field, const char *key, size_t klen,
                                const char *val, size_t vlen)
{
    size_t any = fl_len_field(1, vlen);
    size_t kv = fl_len_field(1, klen) + fl_len_field(2, any);
    int rc = fl_put_len(b, field, kv);
    if (!rc) rc = fl_put_bytes(b, 1, key, klen);
    if (!rc) rc = fl_put_len(b, 2, any);
    if (!rc) rc = fl_put_bytes(b, 1, val, vlen);
    return rc;
}

/* A KeyValue {key, value: AnyValue{bool_value: true}} as field `field`. */
static inline int fl_put_kv_true(buf *b, unsigned field, const char *key)
{
    size_t klen = strlen(key);
    size_t kv = fl_len_field(1, klen) + fl_len_field(2, 2);
    int rc = fl_put_len(b, field, kv);
    if (!rc) rc = fl_put_bytes(b, 1, key, klen);
    if (!rc) rc = fl_put_len(b, 2, 2);
    if (!rc) rc = fl_put_tag(b, 2, FL_WT_VARINT);
    if (!rc) rc = fl_put_varint(b, 1);
    return rc;
}

#endif
