/* rcv_respond.c — see rcv_respond.h. */
#include "receivers/otlp/rcv_respond.h"

#include <inttypes.h>
#include <string.h>

#include "runtime/ascii.h"
#include "runtime/err.h"

/* Longest message written into a body; longer ones are cut. */
#define RSP_MSG_MAX 1024

static int put_varint(buf *out, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    return buf_append(out, tmp, n);
}

/* Copies msg into dst as printable ASCII; returns its length. */
static size_t clean_msg(const char *msg, char *dst, size_t cap)
{
    return ascii_copy(dst, cap, msg, msg ? strlen(msg) : 0);
}

/* Appends s as a JSON string literal (s is printable ASCII already). */
static int put_json_str(buf *out, const char *s)
{
    int rc = buf_append(out, "\"", 1);
    for (; rc == 0 && *s; s++) {
        if (*s == '"' || *s == '\\') rc = buf_append(out, "\\", 1);
        if (rc == 0) rc = buf_append(out, s, 1);
    }
    if (rc == 0) rc = buf_append(out, "\"", 1);
    return rc;
}

/* The partial_success message body: 1: rejected (int64), 2: message. */
static int put_partial_pb(buf *out, int64_t rejected, const char *m, size_t mlen)
{
    buf inner;
    buf_init(&inner, 16 + RSP_MSG_MAX);
    int rc = 0;
    if (rejected != 0) {
        rc = buf_append(&inner, "\x08", 1);
        if (rc == 0) rc = put_varint(&inner, (uint64_t)rejected);
    }
    if (rc == 0 && mlen > 0) {
        rc = buf_append(&inner, "\x12", 1);
        if (rc == 0) rc = put_varint(&inner, mlen);
        if (rc == 0) rc = buf_append(&inner, m, mlen);
    }
    if (rc == 0) rc = buf_append(out, "\x0a", 1);
    if (rc == 0) rc = put_varint(out, inner.len);
    if (rc == 0) rc = buf_append(out, inner.data, inner.len);
    buf_destroy(&inner);
    return rc;
}

static const char *rejected_key(sw_signal sig)
{
    switch (sig) {
    case SIG_METRICS: return "rejectedDataPoints";
    case SIG_LOGS: return "rejectedLogRecords";
    default: return "rejectedSpans";
    }
}

static int put_partial_json(buf *out, sw_signal sig, int64_t rejected, const char *m,
                            size_t mlen)
{
    int rc = buf_append_str(out, "{\"partialSuccess\":{");
    if (rc == 0 && rejected != 0)
        rc = buf_printf(out, "\"%s\":\"%" PRId64 "\"%s", rejected_key(sig), rejected,
                        mlen > 0 ? "," : "");
    if (rc == 0 && mlen > 0) {
        rc = buf_append_str(out, "\"errorMessage\":");
        if (rc == 0) rc = put_json_str(out, m);
    }
    if (rc == 0) rc = buf_append_str(out, "}}");
    return rc;
}

int rcv_encode_response(sw_signal sig, int json, int64_t rejected, const char *msg,
                        buf *out)
{
    char m[RSP_MSG_MAX];
    size_t mlen = clean_msg(msg, m, sizeof m);
    size_t mark = out->len;
    int rc;
    if (rejected == 0 && mlen == 0)
        rc = json ? buf_append_str(out, "{}") : 0;
    else if (json)
        rc = put_partial_json(out, sig, rejected, m, mlen);
    else
        rc = put_partial_pb(out, rejected, m, mlen);
    if (rc != 0) out->len = mark;
    return rc;
}

int rcv_encode_status(int json, int code, const char *msg, buf *out)
{
    char m[RSP_MSG_MAX];
    size_t mlen = clean_msg(msg, m, sizeof m);
    size_t mark = out->len;
    int rc = 0;
    if (json) {
        rc = buf_printf(out, "{\"code\":%d,\"message\":", code);
        if (rc == 0) rc = put_json_str(out, m);
        if (rc == 0) rc = buf_append(out, "}", 1);
    } else {
        if (code != 0) {
            rc = buf_append(out, "\x08", 1);
            /* int32 varint: negative values are sign-extended to 64 bits */
            if (rc == 0) rc = put_varint(out, (uint64_t)(int64_t)code);
        }
        if (rc == 0 && mlen > 0) {
            rc = buf_append(out, "\x12", 1);
            if (rc == 0) rc = put_varint(out, mlen);
            if (rc == 0) rc = buf_append(out, m, mlen);
        }
    }
    if (rc != 0) out->len = mark;
    return rc;
}
