/* rcv_decode.c — see rcv_decode.h. */
#include "receivers/otlp/rcv_decode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "receivers/otlp/rcv_metrics.h"
#include "runtime/budget.h"
#include "runtime/buf.h"
#include "runtime/codec.h"
#include "runtime/err.h"
#include "runtime/otlp_json.h"
#include "runtime/otlp_wire.h"

static int is_space(char c) { return c == ' ' || c == '\t'; }

/* Isolates the first token of a header value: leading blanks skipped, ends
 * at ';', ',' or a blank. Returns its start, length in *n. */
static const char *header_token(const char *v, size_t *n)
{
    while (is_space(*v)) v++;
    size_t i = 0;
    while (v[i] && v[i] != ';' && v[i] != ',' && !is_space(v[i])) i++;
    *n = i;
    return v;
}

static int token_is(const char *t, size_t n, const char *want)
{
    return strlen(want) == n && strncasecmp(t, want, n) == 0;
}

/* Only blanks may follow the token (no list of several encodings). */
static int rest_blank(const char *t)
{
    while (is_space(*t)) t++;
    return *t == '\0';
}

rcv_content_type rcv_parse_content_type(const char *value)
{
    if (!value) return RCV_CT_UNKNOWN;
    size_t n;
    const char *t = header_token(value, &n);
    if (token_is(t, n, "application/x-protobuf")) return RCV_CT_PROTOBUF;
    if (token_is(t, n, "application/json")) return RCV_CT_JSON;
    return RCV_CT_UNKNOWN;
}

rcv_encoding rcv_parse_encoding(const char *value)
{
    if (!value) return RCV_CE_IDENTITY;
    size_t n;
    const char *t = header_token(value, &n);
    if (!rest_blank(t + n)) return RCV_CE_UNKNOWN;
    if (n == 0 || token_is(t, n, "identity")) return RCV_CE_IDENTITY;
    if (token_is(t, n, "gzip") || token_is(t, n, "x-gzip")) return RCV_CE_GZIP;
    if (token_is(t, n, "zstd")) return RCV_CE_ZSTD;
    return RCV_CE_UNKNOWN;
}

const char *rcv_content_type_str(rcv_content_type ct)
{
    return ct == RCV_CT_JSON ? "application/json" : "application/x-protobuf";
}

static int fail(rcv_result *out, int rc, int http, int grpc, int reason,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* Records a failure in out and returns rc. */
static int fail(rcv_result *out, int rc, int http, int grpc, int reason,
                const char *fmt, ...)
{
    va_list ap;
    out->http_status = http;
    out->grpc_code = grpc;
    out->reason = reason;
    va_start(ap, fmt);
    vsnprintf(out->message, sizeof out->message, fmt, ap);
    va_end(ap);
    return rc;
}

/* Maps a codec / converter error code to the response. */
static int fail_from(rcv_result *out, int rc, size_t cap, const char *what,
                     const char *detail)
{
    if (rc == SW_ETOOBIG)
        return fail(out, rc, 413, RCV_GRPC_INVALID_ARGUMENT, RCV_REFUSE_TOO_LARGE,
                    "%s larger than %zu bytes", what, cap);
    if (rc == SW_ENOMEM)
        return fail(out, rc, 503, RCV_GRPC_UNAVAILABLE, RCV_REFUSE_QUEUE_FULL,
                    "out of memory");
    return fail(out, SW_EDECODE, 400, RCV_GRPC_INVALID_ARGUMENT, RCV_REFUSE_DECODE,
                "%s%s%s", what, detail ? ": " : "", detail ? detail : "");
}

/* The decompressed-size limit of a len-byte compressed body: the cap, and
 * at most RCV_MAX_RATIO times len (but never under RCV_RATIO_FLOOR), so a
 * small bomb costs little CPU on the ingest thread. */
size_t rcv_decompress_limit(size_t len, size_t cap)
{
    size_t lim = len > SIZE_MAX / RCV_MAX_RATIO ? SIZE_MAX : len * RCV_MAX_RATIO;
    if (lim < RCV_RATIO_FLOOR) lim = RCV_RATIO_FLOOR;
    return lim < cap ? lim : cap;
}

/* Decompresses into out->owned when the body is compressed. */
static int decompress(const rcv_request_info *info, const uint8_t *body, size_t len,
                      size_t cap, rcv_result *out)
{
    if (info->cenc == RCV_CE_IDENTITY) {
        out->pb = body;
        out->pb_len = len;
        return 0;
    }
    size_t lim = rcv_decompress_limit(len, cap);
    if (info->mem) {
        if (budget_reserve(info->mem, lim) != 0)
            return fail(out, SW_ENOMEM, 503, RCV_GRPC_UNAVAILABLE, RCV_REFUSE_QUEUE_FULL,
                        "intake memory exhausted");
        out->mem = info->mem;
        out->charged = lim;
    }
    buf b;
    buf_init(&b, lim);
    int rc = info->cenc == RCV_CE_GZIP ? codec_gunzip(body, len, &b)
                                       : codec_zstd_decompress(body, len, &b);
    if (rc != 0) {
        buf_destroy(&b);
        if (rc == SW_ETOOBIG && lim < cap)
            return fail(out, rc, 413, RCV_GRPC_INVALID_ARGUMENT, RCV_REFUSE_TOO_LARGE,
                        "decompressed body larger than %zu bytes (%d times its "
                        "compressed size)", lim, RCV_MAX_RATIO);
        return fail_from(out, rc, cap,
                         rc == SW_ETOOBIG ? "decompressed body"
                         : info->cenc == RCV_CE_GZIP ? "invalid gzip body"
                                                     : "invalid zstd body",
                         NULL);
    }
    out->owned = buf_steal(&b, &out->pb_len);
    out->pb = out->owned;
    return 0;
}

/* Charges the conversion of a JSON document of len bytes to info->mem:
 * 0 (*charged set), or a failure in out (413 too large for the budget,
 * 503 not now). */
static int charge_json(const rcv_request_info *info, size_t len, rcv_result *out,
                       size_t *charged)
{
    *charged = 0;
    if (!info->mem) return 0;
    size_t max = budget_limit(info->mem) / RCV_JSON_MEM_FACTOR;
    if (len > max)
        return fail(out, SW_ETOOBIG, 413, RCV_GRPC_INVALID_ARGUMENT, RCV_REFUSE_TOO_LARGE,
                    "JSON body larger than %zu bytes (converting JSON costs up to %d times "
                    "its size; send protobuf or smaller requests)", max, RCV_JSON_MEM_FACTOR);
    if (budget_reserve(info->mem, len * RCV_JSON_MEM_FACTOR) != 0)
        return fail(out, SW_ENOMEM, 503, RCV_GRPC_UNAVAILABLE, RCV_REFUSE_QUEUE_FULL,
                    "intake memory exhausted");
    *charged = len * RCV_JSON_MEM_FACTOR;
    return 0;
}

/* Replaces the JSON in out->pb with its protobuf conversion. */
static int json_to_pb(const rcv_request_info *info, size_t cap, rcv_result *out)
{
    char why[RCV_MSG_MAX - 32];
    size_t charged;
    int rc = charge_json(info, out->pb_len, out, &charged);
    if (rc != 0) return rc;
    buf b;
    buf_init(&b, cap);
    why[0] = '\0';
    rc = oj_json_to_pb(info->signal, (const char *)out->pb, out->pb_len, &b, why, sizeof why);
    if (charged) budget_release(info->mem, charged);
    free(out->owned);
    out->owned = NULL;
    out->pb = NULL;
    out->pb_len = 0;
    if (rc != 0) {
        buf_destroy(&b);
        why[sizeof why - 1] = '\0';
        return fail_from(out, rc, cap, rc == SW_ETOOBIG ? "converted body" : "invalid JSON",
                         why[0] ? why : NULL);
    }
    out->owned = buf_steal(&b, &out->pb_len);
    out->pb = out->owned;
    return 0;
}

static int check_request(const rcv_request_info *info, size_t len, size_t cap,
                         rcv_result *out)
{
    if ((unsigned)info->signal >= SIG_COUNT)
        return fail(out, SW_EINVAL, 404, RCV_GRPC_NOT_FOUND, RCV_REFUSE_UNSUPPORTED,
                    "unknown signal");
    if (info->ctype != RCV_CT_PROTOBUF && info->ctype != RCV_CT_JSON)
        return fail(out, SW_EUNSUPPORTED, 415, RCV_GRPC_INVALID_ARGUMENT,
                    RCV_REFUSE_UNSUPPORTED,
                    "unsupported content type (want application/x-protobuf or "
                    "application/json)");
    if (info->cenc != RCV_CE_IDENTITY && info->cenc != RCV_CE_GZIP &&
        info->cenc != RCV_CE_ZSTD)
        return fail(out, SW_EUNSUPPORTED, 415, RCV_GRPC_INVALID_ARGUMENT,
                    RCV_REFUSE_UNSUPPORTED,
                    "unsupported content encoding (want gzip, zstd or identity)");
    if (len > cap)
        return fail(out, SW_ETOOBIG, 413, RCV_GRPC_INVALID_ARGUMENT, RCV_REFUSE_TOO_LARGE,
                    "body larger than %zu bytes", cap);
    return 0;
}

static void uncharge(rcv_result *r)
{
    if (r->charged) budget_release(r->mem, r->charged);
    r->charged = 0;
    r->mem = NULL;
}

int rcv_decode(const rcv_request_info *info, const uint8_t *body, size_t len,
               size_t cap, rcv_result *out)
{
    memset(out, 0, sizeof *out);
    out->http_status = 200;
    int rc = check_request(info, len, cap, out);
    if (rc != 0 || len == 0) goto done;
    rc = decompress(info, body, len, cap, out);
    if (rc != 0 || out->pb_len == 0) goto done;
    if (info->ctype == RCV_CT_JSON) {
        rc = json_to_pb(info, cap, out);
        if (rc != 0 || out->pb_len == 0) goto done;
    }
    const char *why = NULL;
    if (ow_validate(info->signal, out->pb, out->pb_len, &out->items, &why) != 0)
        rc = fail(out, SW_EDECODE, 400, RCV_GRPC_INVALID_ARGUMENT, RCV_REFUSE_DECODE,
                  "invalid protobuf: %s", why ? why : "malformed");
done:
    if (rc != 0) {
        free(out->owned);
        uncharge(out);
        out->owned = NULL;
        out->pb = NULL;
        out->pb_len = 0;
        out->items = 0;
    }
    return rc;
}

void rcv_result_destroy(rcv_result *r)
{
    if (!r) return;
    free(r->owned);
    uncharge(r);
    r->owned = NULL;
    r->pb = NULL;
    r->pb_len = 0;
    r->items = 0;
}
