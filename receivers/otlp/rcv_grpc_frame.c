/* rcv_grpc_frame.c — see rcv_grpc_frame.h. */
#include "receivers/otlp/rcv_grpc_frame.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "receivers/otlp/rcv_respond.h"
#include "runtime/err.h"
#include "receivers/otlp/rcv_metrics.h"
#include "runtime/otlp_json.h"

const char *rg_status_name(int code) { return rcv_grpc_code_name(code); }

static const char *const paths[SIG_COUNT] = {
    [SIG_TRACES] = "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    [SIG_METRICS] = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    [SIG_LOGS] = "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

int rg_route(const char *p, size_t n)
{
    for (int s = 0; s < SIG_COUNT; s++)
        if (strlen(paths[s]) == n && memcmp(paths[s], p, n) == 0) return s;
    return -1;
}

static int prefix_ci(const char *v, size_t n, const char *want)
{
    size_t w = strlen(want);
    return n >= w && strncasecmp(v, want, w) == 0;
}

int rg_content_type_ok(const char *v, size_t n)
{
    if (!prefix_ci(v, n, "application/grpc")) return 0;
    v += 16;
    n -= 16;
    if (n == 0 || v[0] == ';') return 1;
    return prefix_ci(v, n, "+proto") && (n == 6 || v[6] == ';');
}

rcv_encoding rg_parse_encoding(const char *v, size_t n)
{
    char tmp[32];
    if (!v || n == 0) return RCV_CE_IDENTITY;
    if (n >= sizeof tmp) return RCV_CE_UNKNOWN;
    memcpy(tmp, v, n);
    tmp[n] = '\0';
    rcv_encoding e = rcv_parse_encoding(tmp);
    /* x-gzip is an HTTP alias, not a gRPC encoding name */
    return (e == RCV_CE_GZIP && strcasecmp(tmp, "gzip") != 0) ? RCV_CE_UNKNOWN : e;
}

int rg_parse_timeout(const char *v, size_t n, int64_t *ns)
{
    static const struct { char unit; int64_t ns; } units[] = {
        {'H', 3600000000000LL}, {'M', 60000000000LL}, {'S', 1000000000LL},
        {'m', 1000000LL}, {'u', 1000LL}, {'n', 1LL},
    };
    if (n < 2 || n > 9) return SW_EINVAL;
    int64_t val = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (v[i] < '0' || v[i] > '9') return SW_EINVAL;
        val = val * 10 + (v[i] - '0');
    }
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        if (units[u].unit != v[n - 1]) continue;
        *ns = val > INT64_MAX / units[u].ns ? INT64_MAX : val * units[u].ns;
        return 0;
    }
    return SW_EINVAL;
}

void rg_reader_init(rg_reader *r, size_t cap)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->body, cap);
}

void rg_reader_destroy(rg_reader *r)
{
    if (r) buf_destroy(&r->body);
}

/* Reads prefix bytes; returns how many of p[0..n) it took. */
static size_t take_prefix(rg_reader *r, const uint8_t *p, size_t n)
{
    size_t k = RG_PREFIX_LEN - r->hdr_got;
    if (k > n) k = n;
    memcpy(r->hdr + r->hdr_got, p, k);
    r->hdr_got += k;
    return k;
}

int rg_reader_feed(rg_reader *r, const uint8_t *p, size_t n)
{
    while (n > 0) {
        if (r->complete) return SW_EDECODE; /* unary: one message only */
        if (r->hdr_got < RG_PREFIX_LEN) {
            size_t k = take_prefix(r, p, n);
            p += k;
            n -= k;
            if (r->hdr_got < RG_PREFIX_LEN) return 0;
            if (r->hdr[0] > 1) return SW_EDECODE;
            r->compressed = r->hdr[0];
            r->want = (uint32_t)r->hdr[1] << 24 | (uint32_t)r->hdr[2] << 16 |
                      (uint32_t)r->hdr[3] << 8 | r->hdr[4];
            if (r->want > r->body.max) return SW_ETOOBIG;
            int rc = buf_reserve(&r->body, r->want);
            if (rc != 0) return rc;
        }
        size_t k = r->want - r->body.len;
        if (k > n) k = n;
        int rc = buf_append(&r->body, p, k);
        if (rc != 0) return rc;
        p += k;
        n -= k;
        if (r->body.len == r->want) r->complete = 1;
    }
    return 0;
}

static void set_fail(rg_decoded *out, int status, int reason, const char *msg)
{
    out->status = status;
    out->res.reason = reason;
    snprintf(out->res.message, sizeof out->res.message, "%s", msg);
}

/* The gRPC status for a failed rcv_decode(). */
static int status_of(const rcv_result *res)
{
    switch (res->http_status) {
    case 413: return RG_RESOURCE_EXHAUSTED;
    case 400: return RG_INVALID_ARGUMENT;
    case 415: return RG_UNIMPLEMENTED;
    case 503: return RG_UNAVAILABLE;
    default: return RG_INTERNAL;
    }
}

void rg_decode(rg_reader *r, sw_signal sig, rcv_encoding enc, size_t cap, struct budget *mem,
               rg_decoded *out)
{
    memset(out, 0, sizeof *out);
    if (!r->complete) {
        set_fail(out, RG_INVALID_ARGUMENT, RCV_REFUSE_DECODE,
                 r->hdr_got == 0 ? "no request message" : "truncated request message");
        return;
    }
    if (r->compressed && enc == RCV_CE_IDENTITY) {
        set_fail(out, RG_INTERNAL, RCV_REFUSE_DECODE,
                 "compressed message without grpc-encoding");
        return;
    }
    rcv_request_info info = {sig, RCV_CT_PROTOBUF, r->compressed ? enc : RCV_CE_IDENTITY, mem};
    if (rcv_decode(&info, r->body.data, r->body.len, cap, &out->res) != 0) {
        out->status = status_of(&out->res);
        if (out->status == RG_RESOURCE_EXHAUSTED)
            snprintf(out->res.message, sizeof out->res.message,
                     "message larger than %zu bytes", cap);
        return;
    }
    out->status = RG_OK;
}

void rg_decoded_destroy(rg_decoded *d)
{
    if (d) rcv_result_destroy(&d->res);
}

int rg_encode_response(sw_signal sig, int64_t rejected, const char *msg, buf *out)
{
    size_t mark = out->len;
    uint8_t hdr[RG_PREFIX_LEN] = {0};
    int rc = buf_append(out, hdr, sizeof hdr);
    if (rc == 0) rc = rcv_encode_response(sig, 0, rejected, msg, out);
    if (rc != 0) {
        out->len = mark;
        return rc;
    }
    size_t n = out->len - mark - RG_PREFIX_LEN;
    out->data[mark + 1] = (uint8_t)(n >> 24);
    out->data[mark + 2] = (uint8_t)(n >> 16);
    out->data[mark + 3] = (uint8_t)(n >> 8);
    out->data[mark + 4] = (uint8_t)n;
    return 0;
}

int rg_encode_message(const char *msg, buf *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t mark = out->len;
    int rc = 0;
    for (const unsigned char *s = (const unsigned char *)(msg ? msg : ""); *s && rc == 0; s++) {
        if (*s >= 0x20 && *s <= 0x7e && *s != '%') {
            rc = buf_append(out, s, 1);
        } else {
            char e[3] = {'%', hex[*s >> 4], hex[*s & 15]};
            rc = buf_append(out, e, 3);
        }
    }
    if (rc != 0) out->len = mark;
    return rc;
}

int rg_encode_status_details(int code, const char *msg, unsigned retry_after_s, buf *out)
{
    Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    Google__Protobuf__Any any = GOOGLE__PROTOBUF__ANY__INIT;
    Google__Protobuf__Any *anys[1] = {&any};
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    uint8_t ri_bytes[32], *packed = NULL;
    int rc = SW_ENOMEM;
    st.code = code;
    st.message = (char *)(msg ? msg : "");
    if (retry_after_s > 0) {
        delay.seconds = retry_after_s;
        ri.retry_delay = &delay;
        any.type_url = "type.googleapis.com/google.rpc.RetryInfo";
        any.value.len = google__rpc__retry_info__pack(&ri, ri_bytes);
        any.value.data = ri_bytes;
        st.n_details = 1;
        st.details = anys;
    }
    size_t n = google__rpc__status__get_packed_size(&st);
    packed = malloc(n ? n : 1);
    if (!packed) goto out;
    google__rpc__status__pack(&st, packed);
    rc = oj_append_b64(out, packed, n);
out:
    free(packed);
    return rc;
}
