/* test_rcv_decode.c — the receiver's pure body decoder and response encoders. */
#include "testing/lib/th.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "google/rpc/status.pb-c.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "receivers/otlp/rcv_decode.h"
#include "receivers/otlp/rcv_respond.h"
#include "runtime/buf.h"
#include "runtime/budget.h"
#include "runtime/codec.h"
#include "runtime/err.h"
#include "receivers/otlp/rcv_metrics.h"

#define MiB (1024u * 1024u)

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest trace_req;

static const char k_json_traces[] =
    "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
    "\"value\":{\"stringValue\":\"checkout\"}}]},\"scopeSpans\":[{\"scope\":{\"name\":"
    "\"t\"},\"spans\":[{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":"
    "\"eee19b7ec3c1b174\",\"name\":\"a\",\"kind\":2,\"startTimeUnixNano\":"
    "\"1544712660000000000\",\"endTimeUnixNano\":\"1544712661000000000\"},"
    "{\"traceId\":\"5b8efff798038103d269b633813fc60c\",\"spanId\":\"eee19b7ec3c1b175\","
    "\"name\":\"b\",\"startTimeUnixNano\":1544712660000000000}]}]}]}";

/* Returns an owned ExportTraceServiceRequest with n spans in one scope. */
static uint8_t *make_traces(size_t n, size_t *len)
{
    Opentelemetry__Proto__Trace__V1__Span *spans = calloc(n, sizeof *spans);
    Opentelemetry__Proto__Trace__V1__Span **sp = calloc(n, sizeof *sp);
    uint8_t tid[16], sid[8];
    memset(tid, 0xab, sizeof tid);
    memset(sid, 0xcd, sizeof sid);
    for (size_t i = 0; i < n; i++) {
        opentelemetry__proto__trace__v1__span__init(&spans[i]);
        spans[i].trace_id = (ProtobufCBinaryData){sizeof tid, tid};
        spans[i].span_id = (ProtobufCBinaryData){sizeof sid, sid};
        spans[i].name = "operation";
        spans[i].start_time_unix_nano = 1700000000000000000ull;
        spans[i].end_time_unix_nano = 1700000000000001000ull;
        sp[i] = &spans[i];
    }
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss;
    opentelemetry__proto__trace__v1__scope_spans__init(&ss);
    ss.n_spans = n;
    ss.spans = sp;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs;
    opentelemetry__proto__trace__v1__resource_spans__init(&rs);
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
    trace_req req;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    *len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
    uint8_t *out = malloc(*len ? *len : 1);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, out);
    free(sp);
    free(spans);
    return out;
}

static int decode(sw_signal sig, rcv_content_type ct, rcv_encoding ce, const void *body,
                  size_t len, size_t cap, rcv_result *res)
{
    rcv_request_info info = {sig, ct, ce};
    return rcv_decode(&info, body, len, cap, res);
}

static void expect_fail(int rc, const rcv_result *res, int http, int reason)
{
    TH_ASSERT(rc != 0);
    TH_ASSERT_EQ_INT(res->http_status, http);
    TH_ASSERT_EQ_INT(res->reason, reason);
    TH_ASSERT(res->pb == NULL && res->owned == NULL && res->pb_len == 0);
    TH_ASSERT(res->message[0] != '\0');
}

static void t_pb_ok_borrowed(void)
{
    size_t len;
    uint8_t *pb = make_traces(7, &len);
    rcv_result res;
    TH_ASSERT_EQ_INT(decode(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_IDENTITY, pb, len, MiB, &res), 0);
    TH_ASSERT_EQ_INT(res.http_status, 200);
    TH_ASSERT_EQ_INT(res.items, 7);
    TH_ASSERT(res.pb == pb && res.owned == NULL);
    TH_ASSERT_EQ_INT(res.pb_len, len);
    rcv_result_destroy(&res);
    free(pb);
}

static void t_json_ok(void)
{
    rcv_result res;
    int rc = decode(SIG_TRACES, RCV_CT_JSON, RCV_CE_IDENTITY, k_json_traces,
                    strlen(k_json_traces), MiB, &res);
    TH_ASSERT_MSG(rc == 0, "rc %d: %s", rc, res.message);
    TH_ASSERT_EQ_INT(res.items, 2);
    TH_ASSERT(res.owned != NULL && res.pb == res.owned);
    trace_req *req = opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
        NULL, res.pb_len, res.pb);
    TH_ASSERT(req != NULL);
    TH_ASSERT_EQ_INT(req->n_resource_spans, 1);
    TH_ASSERT_EQ_INT(req->resource_spans[0]->scope_spans[0]->n_spans, 2);
    Opentelemetry__Proto__Trace__V1__Span *s = req->resource_spans[0]->scope_spans[0]->spans[0];
    TH_ASSERT_EQ_INT(s->trace_id.len, 16);
    TH_ASSERT_EQ_INT(s->trace_id.data[0], 0x5b);
    TH_ASSERT_EQ_INT(s->span_id.len, 8);
    TH_ASSERT_EQ_INT(s->kind, 2);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(req, NULL);
    rcv_result_destroy(&res);
}

/* The official OTLP/JSON examples, when present beside the repository. */
static void t_json_examples(void)
{
    static const struct { const char *file; sw_signal sig; } ex[] = {
        {"../shared/otlp-examples/trace.json", SIG_TRACES},
        {"../shared/otlp-examples/metrics.json", SIG_METRICS},
        {"../shared/otlp-examples/logs.json", SIG_LOGS},
    };
    for (size_t i = 0; i < sizeof ex / sizeof ex[0]; i++) {
        FILE *f = fopen(ex[i].file, "rb");
        if (!f) th_skip("%s not present", ex[i].file);
        static char text[1 << 16];
        size_t n = fread(text, 1, sizeof text, f);
        fclose(f);
        rcv_result res;
        int rc = decode(ex[i].sig, RCV_CT_JSON, RCV_CE_IDENTITY, text, n, MiB, &res);
        TH_ASSERT_MSG(rc == 0, "%s: %s", ex[i].file, res.message);
        TH_ASSERT_MSG(res.items > 0, "%s: no items", ex[i].file);
        rcv_result_destroy(&res);
    }
}

static void t_gzip_pb(void)
{
    size_t len;
    uint8_t *pb = make_traces(50, &len);
    buf z;
    buf_init(&z, 4 * MiB);
    TH_ASSERT_EQ_INT(codec_gzip(pb, len, &z, 6), 0);
    rcv_result res;
    TH_ASSERT_EQ_INT(decode(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_GZIP, z.data, z.len, MiB, &res), 0);
    TH_ASSERT_EQ_INT(res.items, 50);
    TH_ASSERT_EQ_INT(res.pb_len, len);
    TH_ASSERT_MEM_EQ(res.pb, pb, len);
    TH_ASSERT(res.owned != NULL);
    rcv_result_destroy(&res);
    buf_destroy(&z);
    free(pb);
}

static void t_zstd_json(void)
{
    buf z;
    buf_init(&z, MiB);
    TH_ASSERT_EQ_INT(codec_zstd_compress((const uint8_t *)k_json_traces, strlen(k_json_traces),
                                         &z, 3), 0);
    rcv_result res;
    int rc = decode(SIG_TRACES, RCV_CT_JSON, RCV_CE_ZSTD, z.data, z.len, MiB, &res);
    TH_ASSERT_MSG(rc == 0, "%s", res.message);
    TH_ASSERT_EQ_INT(res.items, 2);
    rcv_result_destroy(&res);
    buf_destroy(&z);
}

static void t_garbage_pb(void)
{
    static const uint8_t garbage[] = {0x0f, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03};
    rcv_result res;
    int rc = decode(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_IDENTITY, garbage, sizeof garbage,
                    MiB, &res);
    expect_fail(rc, &res, 400, RCV_REFUSE_DECODE);
    TH_ASSERT_EQ_INT(res.grpc_code, RCV_GRPC_INVALID_ARGUMENT);
    /* not gzip, not zstd */
    rc = decode(SIG_METRICS, RCV_CT_PROTOBUF, RCV_CE_GZIP, garbage, sizeof garbage, MiB, &res);
    expect_fail(rc, &res, 400, RCV_REFUSE_DECODE);
    rc = decode(SIG_LOGS, RCV_CT_PROTOBUF, RCV_CE_ZSTD, garbage, sizeof garbage, MiB, &res);
    expect_fail(rc, &res, 400, RCV_REFUSE_DECODE);
}

static void t_truncated_pb(void)
{
    size_t len;
    uint8_t *pb = make_traces(3, &len);
    rcv_result res;
    for (size_t cut = 1; cut < 4; cut++) {
        int rc = decode(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_IDENTITY, pb, len - cut, MiB, &res);
        expect_fail(rc, &res, 400, RCV_REFUSE_DECODE);
    }
    free(pb);
}

static void t_bad_json(void)
{
    static const char *bad[] = {"{not json", "{\"resourceSpans\":5}", "[1,2,3]", "\"x\""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rcv_result res;
        int rc = decode(SIG_TRACES, RCV_CT_JSON, RCV_CE_IDENTITY, bad[i], strlen(bad[i]),
                        MiB, &res);
        TH_ASSERT_MSG(rc != 0, "accepted %s", bad[i]);
        expect_fail(rc, &res, 400, RCV_REFUSE_DECODE);
    }
}

static void t_content_type_parse(void)
{
    TH_ASSERT_EQ_INT(rcv_parse_content_type("application/x-protobuf"), RCV_CT_PROTOBUF);
    TH_ASSERT_EQ_INT(rcv_parse_content_type("Application/X-Protobuf"), RCV_CT_PROTOBUF);
    TH_ASSERT_EQ_INT(rcv_parse_content_type("application/json; charset=utf-8"), RCV_CT_JSON);
    TH_ASSERT_EQ_INT(rcv_parse_content_type(" application/json;charset=UTF-8"), RCV_CT_JSON);
    TH_ASSERT_EQ_INT(rcv_parse_content_type("application/jsonx"), RCV_CT_UNKNOWN);
    TH_ASSERT_EQ_INT(rcv_parse_content_type("text/plain"), RCV_CT_UNKNOWN);
    TH_ASSERT_EQ_INT(rcv_parse_content_type(""), RCV_CT_UNKNOWN);
    TH_ASSERT_EQ_INT(rcv_parse_content_type(NULL), RCV_CT_UNKNOWN);
    TH_ASSERT_EQ_STR(rcv_content_type_str(RCV_CT_JSON), "application/json");
    TH_ASSERT_EQ_STR(rcv_content_type_str(RCV_CT_UNKNOWN), "application/x-protobuf");
}

static void t_encoding_parse(void)
{
    TH_ASSERT_EQ_INT(rcv_parse_encoding(NULL), RCV_CE_IDENTITY);
    TH_ASSERT_EQ_INT(rcv_parse_encoding(""), RCV_CE_IDENTITY);
    TH_ASSERT_EQ_INT(rcv_parse_encoding("identity"), RCV_CE_IDENTITY);
    TH_ASSERT_EQ_INT(rcv_parse_encoding(" GZIP "), RCV_CE_GZIP);
    TH_ASSERT_EQ_INT(rcv_parse_encoding("x-gzip"), RCV_CE_GZIP);
    TH_ASSERT_EQ_INT(rcv_parse_encoding("zstd"), RCV_CE_ZSTD);
    TH_ASSERT_EQ_INT(rcv_parse_encoding("br"), RCV_CE_UNKNOWN);
    TH_ASSERT_EQ_INT(rcv_parse_encoding("gzip, zstd"), RCV_CE_UNKNOWN);
    TH_ASSERT_EQ_INT(rcv_parse_encoding("deflate"), RCV_CE_UNKNOWN);
}

static void t_unsupported_415(void)
{
    size_t len;
    uint8_t *pb = make_traces(1, &len);
    rcv_result res;
    int rc = decode(SIG_TRACES, RCV_CT_UNKNOWN, RCV_CE_IDENTITY, pb, len, MiB, &res);
    expect_fail(rc, &res, 415, RCV_REFUSE_UNSUPPORTED);
    rc = decode(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_UNKNOWN, pb, len, MiB, &res);
    expect_fail(rc, &res, 415, RCV_REFUSE_UNSUPPORTED);
    /* even an empty body needs a supported media type */
    rc = decode(SIG_TRACES, RCV_CT_UNKNOWN, RCV_CE_IDENTITY, NULL, 0, MiB, &res);
    expect_fail(rc, &res, 415, RCV_REFUSE_UNSUPPORTED);
    free(pb);
}

/* A gzip stream of 1 GiB of zeros, about 1 MiB long. One 1 MiB segment is
 * deflated with Z_FULL_FLUSH (no back-reference before it, byte-aligned
 * end), so repeating its bytes 1024 times is a valid deflate stream. */
static uint8_t *make_gzip_bomb(size_t *outlen)
{
    enum { SEG = 1 << 20, REPS = 1024 };
    uint8_t *zeros = calloc(1, SEG), seg[8192], fin[64];
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    if (!zeros || deflateInit2(&zs, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) != Z_OK)
        return NULL;
    zs.next_in = zeros;
    zs.avail_in = SEG;
    zs.next_out = seg;
    zs.avail_out = sizeof seg;
    int ok = deflate(&zs, Z_FULL_FLUSH) == Z_OK && zs.avail_in == 0 && zs.avail_out > 0;
    size_t slen = sizeof seg - zs.avail_out;
    zs.next_out = fin;
    zs.avail_out = sizeof fin;
    ok = ok && deflate(&zs, Z_FINISH) == Z_STREAM_END;
    size_t flen = sizeof fin - zs.avail_out;
    deflateEnd(&zs);
    uLong c1 = crc32(0, zeros, SEG), crc = crc32(0, Z_NULL, 0);
    free(zeros);
    uint8_t *out = malloc(10 + (size_t)REPS * slen + flen + 8);
    if (!ok || !out) {
        free(out);
        return NULL;
    }
    static const uint8_t hdr[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
    memcpy(out, hdr, sizeof hdr);
    size_t n = sizeof hdr;
    for (int i = 0; i < REPS; i++, n += slen) {
        memcpy(out + n, seg, slen);
        crc = crc32_combine(crc, c1, SEG);
    }
    memcpy(out + n, fin, flen);
    n += flen;
    uint32_t isize = (uint32_t)((uint64_t)SEG * REPS);
    for (int i = 0; i < 4; i++) out[n + i] = (uint8_t)(crc >> (8 * i));
    for (int i = 0; i < 4; i++) out[n + 4 + i] = (uint8_t)(isize >> (8 * i));
    *outlen = n + 8;
    return out;
}

static void t_gzip_bomb_413(void)
{
    size_t len = 0;
    uint8_t *bomb = make_gzip_bomb(&len);
    TH_ASSERT(bomb != NULL);
    TH_ASSERT(len < 2 * MiB);
    rcv_result res;
    int rc = decode(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_GZIP, bomb, len, 2 * MiB, &res);
    expect_fail(rc, &res, 413, RCV_REFUSE_TOO_LARGE);
    TH_ASSERT(strstr(res.message, "decompressed") != NULL);
    free(bomb);
}

static void t_zstd_bomb_413(void)
{
    size_t n = 16 * MiB;
    uint8_t *zeros = calloc(1, n);
    size_t bound = ZSTD_compressBound(n);
    uint8_t *z = malloc(bound);
    TH_ASSERT(zeros && z);
    size_t zl = ZSTD_compress(z, bound, zeros, n, 1);
    TH_ASSERT(!ZSTD_isError(zl));
    free(zeros);
    rcv_result res;
    int rc = decode(SIG_METRICS, RCV_CT_PROTOBUF, RCV_CE_ZSTD, z, zl, MiB, &res);
    expect_fail(rc, &res, 413, RCV_REFUSE_TOO_LARGE);
    free(z);
}

/* A small bomb stops at RCV_MAX_RATIO times its size (floor 1 MiB), far
 * below a 16 MiB cap: it costs little CPU. */
static void t_ratio_limit(void)
{
    TH_ASSERT_EQ_INT(rcv_decompress_limit(1000, 16 * MiB), RCV_RATIO_FLOOR);
    TH_ASSERT_EQ_INT(rcv_decompress_limit(8000, 16 * MiB), 8000 * RCV_MAX_RATIO);
    TH_ASSERT_EQ_INT(rcv_decompress_limit(1 * MiB, 16 * MiB), 16 * MiB);
    TH_ASSERT_EQ_INT(rcv_decompress_limit(100, 64 * 1024), 64 * 1024);
    size_t n = 16 * MiB;
    uint8_t *zeros = calloc(1, n);
    size_t bound = ZSTD_compressBound(n);
    uint8_t *z = malloc(bound);
    TH_ASSERT(zeros && z);
    size_t zl = ZSTD_compress(z, bound, zeros, n, 19);
    TH_ASSERT(!ZSTD_isError(zl));
    free(zeros);
    rcv_result res;
    int rc = decode(SIG_METRICS, RCV_CT_PROTOBUF, RCV_CE_ZSTD, z, zl, 16 * MiB, &res);
    expect_fail(rc, &res, 413, RCV_REFUSE_TOO_LARGE);
    TH_ASSERT_MSG(strstr(res.message, "times its compressed size") != NULL, "%s", res.message);
    printf("# zstd bomb of %zu bytes (16 MiB of zeros): %s\n", zl, res.message);
    free(z);
}

/* JSON conversion is charged to the intake budget: too large for it is
 * 413, no room now is 503, and the charge is given back afterwards. */
static void t_json_budget(void)
{
    size_t n = strlen(k_json_traces);
    budget *b = budget_new(n * RCV_JSON_MEM_FACTOR + 100);
    TH_ASSERT(b);
    rcv_request_info info = {SIG_TRACES, RCV_CT_JSON, RCV_CE_IDENTITY, b};
    rcv_result res;
    TH_ASSERT_EQ_INT(rcv_decode(&info, (const uint8_t *)k_json_traces, n, MiB, &res), 0);
    TH_ASSERT(res.items > 0);
    rcv_result_destroy(&res);
    TH_ASSERT_EQ_INT(budget_used(b), 0);
    TH_ASSERT_EQ_INT(budget_peak(b), n * RCV_JSON_MEM_FACTOR);
    TH_ASSERT_EQ_INT(budget_reserve(b, 200), 0); /* others hold some */
    int rc = rcv_decode(&info, (const uint8_t *)k_json_traces, n, MiB, &res);
    expect_fail(rc, &res, 503, RCV_REFUSE_QUEUE_FULL);
    budget_release(b, 200);
    budget_free(b);
    b = budget_new(n * RCV_JSON_MEM_FACTOR - 1);
    info.mem = b;
    rc = rcv_decode(&info, (const uint8_t *)k_json_traces, n, MiB, &res);
    expect_fail(rc, &res, 413, RCV_REFUSE_TOO_LARGE);
    TH_ASSERT(strstr(res.message, "JSON body larger than") != NULL);
    TH_ASSERT_EQ_INT(budget_used(b), 0);
    budget_free(b);
}

/* The decompression limit is charged to the budget until the result is
 * destroyed; no room for it now is 503. */
static void t_decompress_budget(void)
{
    size_t n = strlen(k_json_traces);
    buf z;
    buf_init(&z, MiB);
    TH_ASSERT_EQ_INT(codec_gzip((const uint8_t *)k_json_traces, n, &z, 6), 0);
    size_t lim = rcv_decompress_limit(z.len, MiB);
    budget *b = budget_new(lim + n * RCV_JSON_MEM_FACTOR);
    TH_ASSERT(b);
    rcv_request_info info = {SIG_TRACES, RCV_CT_JSON, RCV_CE_GZIP, b};
    rcv_result res;
    TH_ASSERT_EQ_INT(rcv_decode(&info, z.data, z.len, MiB, &res), 0);
    TH_ASSERT_EQ_INT(budget_used(b), lim);
    rcv_result_destroy(&res);
    TH_ASSERT_EQ_INT(budget_used(b), 0);
    TH_ASSERT_EQ_INT(budget_reserve(b, n * RCV_JSON_MEM_FACTOR + 1), 0);
    int rc = rcv_decode(&info, z.data, z.len, MiB, &res);
    expect_fail(rc, &res, 503, RCV_REFUSE_QUEUE_FULL);
    TH_ASSERT_EQ_INT(budget_used(b), n * RCV_JSON_MEM_FACTOR + 1);
    budget_free(b);
    buf_destroy(&z);
}

static void t_cap_boundaries(void)
{
    size_t len;
    uint8_t *pb = make_traces(100, &len);
    rcv_result res;
    /* identity: the body itself is capped */
    TH_ASSERT_EQ_INT(decode(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_IDENTITY, pb, len, len, &res), 0);
    rcv_result_destroy(&res);
    int rc = decode(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_IDENTITY, pb, len, len - 1, &res);
    expect_fail(rc, &res, 413, RCV_REFUSE_TOO_LARGE);
    /* gzip: the decompressed size is capped */
    buf z;
    buf_init(&z, 4 * MiB);
    TH_ASSERT_EQ_INT(codec_gzip(pb, len, &z, 9), 0);
    TH_ASSERT(z.len < len / 2);
    rc = decode(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_GZIP, z.data, z.len, len, &res);
    TH_ASSERT_MSG(rc == 0, "%s", res.message);
    TH_ASSERT_EQ_INT(res.items, 100);
    rcv_result_destroy(&res);
    rc = decode(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_GZIP, z.data, z.len, len - 1, &res);
    expect_fail(rc, &res, 413, RCV_REFUSE_TOO_LARGE);
    buf_destroy(&z);
    free(pb);
}

static void t_empty_body(void)
{
    rcv_result res;
    for (int ct = RCV_CT_PROTOBUF; ct <= RCV_CT_JSON; ct++) {
        for (int ce = RCV_CE_IDENTITY; ce <= RCV_CE_ZSTD; ce++) {
            TH_ASSERT_EQ_INT(decode(SIG_LOGS, (rcv_content_type)ct, (rcv_encoding)ce, "", 0,
                                    MiB, &res), 0);
            TH_ASSERT_EQ_INT(res.http_status, 200);
            TH_ASSERT_EQ_INT(res.items, 0);
            TH_ASSERT_EQ_INT(res.pb_len, 0);
            rcv_result_destroy(&res);
        }
    }
    /* "{}" is the empty request in JSON */
    TH_ASSERT_EQ_INT(decode(SIG_METRICS, RCV_CT_JSON, RCV_CE_IDENTITY, "{}", 2, MiB, &res), 0);
    TH_ASSERT_EQ_INT(res.items, 0);
    TH_ASSERT_EQ_INT(res.pb_len, 0);
    rcv_result_destroy(&res);
}

static void t_rsp_empty(void)
{
    buf b;
    buf_init(&b, 4096);
    for (int s = 0; s < SIG_COUNT; s++) {
        buf_reset(&b);
        TH_ASSERT_EQ_INT(rcv_encode_response((sw_signal)s, 0, 0, NULL, &b), 0);
        TH_ASSERT_EQ_INT(b.len, 0);
        TH_ASSERT_EQ_INT(rcv_encode_response((sw_signal)s, 1, 0, "", &b), 0);
        TH_ASSERT_EQ_INT(b.len, 2);
        TH_ASSERT_MEM_EQ(b.data, "{}", 2);
    }
    buf_destroy(&b);
}

static void t_rsp_partial_pb(void)
{
    buf b;
    buf_init(&b, 4096);
    TH_ASSERT_EQ_INT(rcv_encode_response(SIG_TRACES, 0, 5, "limit", &b), 0);
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse *tr =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, b.len, b.data);
    TH_ASSERT(tr && tr->partial_success);
    TH_ASSERT_EQ_INT(tr->partial_success->rejected_spans, 5);
    TH_ASSERT_EQ_STR(tr->partial_success->error_message, "limit");
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(tr, NULL);

    buf_reset(&b);
    TH_ASSERT_EQ_INT(rcv_encode_response(SIG_METRICS, 0, 300000, NULL, &b), 0);
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *mr =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(NULL, b.len, b.data);
    TH_ASSERT(mr && mr->partial_success);
    TH_ASSERT_EQ_INT(mr->partial_success->rejected_data_points, 300000);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(mr, NULL);

    buf_reset(&b);
    TH_ASSERT_EQ_INT(rcv_encode_response(SIG_LOGS, 0, 0, "warning only", &b), 0);
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse *lr =
        opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(NULL, b.len, b.data);
    TH_ASSERT(lr && lr->partial_success);
    TH_ASSERT_EQ_INT(lr->partial_success->rejected_log_records, 0);
    TH_ASSERT_EQ_STR(lr->partial_success->error_message, "warning only");
    opentelemetry__proto__collector__logs__v1__export_logs_service_response__free_unpacked(lr, NULL);
    buf_destroy(&b);
}

static json_object *parse_json(const buf *b)
{
    json_tokener *tok = json_tokener_new();
    json_object *o = json_tokener_parse_ex(tok, (const char *)b->data, (int)b->len);
    int ok = json_tokener_get_error(tok) == json_tokener_success;
    json_tokener_free(tok);
    if (!ok) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

static void t_rsp_partial_json(void)
{
    static const char *key[] = {"rejectedSpans", "rejectedDataPoints", "rejectedLogRecords"};
    buf b;
    buf_init(&b, 4096);
    for (int s = 0; s < SIG_COUNT; s++) {
        buf_reset(&b);
        TH_ASSERT_EQ_INT(rcv_encode_response((sw_signal)s, 1, 42, "too \"many\"\n", &b), 0);
        json_object *o = parse_json(&b), *ps, *v;
        TH_ASSERT_MSG(o != NULL, "invalid JSON %.*s", (int)b.len, (const char *)b.data);
        TH_ASSERT(json_object_object_get_ex(o, "partialSuccess", &ps));
        TH_ASSERT(json_object_object_get_ex(ps, key[s], &v));
        TH_ASSERT_EQ_INT(json_object_get_int64(v), 42);
        TH_ASSERT(json_object_object_get_ex(ps, "errorMessage", &v));
        TH_ASSERT_EQ_STR(json_object_get_string(v), "too \"many\"?");
        json_object_put(o);
    }
    buf_destroy(&b);
}

static void t_status_pb(void)
{
    buf b;
    buf_init(&b, 4096);
    TH_ASSERT_EQ_INT(rcv_encode_status(0, 3, "invalid protobuf: bad", &b), 0);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, b.len, b.data);
    TH_ASSERT(st != NULL);
    TH_ASSERT_EQ_INT(st->code, 3);
    TH_ASSERT_EQ_STR(st->message, "invalid protobuf: bad");
    TH_ASSERT_EQ_INT(st->n_details, 0);
    google__rpc__status__free_unpacked(st, NULL);
    buf_destroy(&b);
}

static void t_status_json(void)
{
    buf b;
    buf_init(&b, 4096);
    TH_ASSERT_EQ_INT(rcv_encode_status(1, 14, "queue \\ \"full\"\t\xc3\xa9", &b), 0);
    json_object *o = parse_json(&b), *v;
    TH_ASSERT_MSG(o != NULL, "invalid JSON %.*s", (int)b.len, (const char *)b.data);
    TH_ASSERT(json_object_object_get_ex(o, "code", &v));
    TH_ASSERT_EQ_INT(json_object_get_int(v), 14);
    TH_ASSERT(json_object_object_get_ex(o, "message", &v));
    TH_ASSERT_EQ_STR(json_object_get_string(v), "queue \\ \"full\"???");
    json_object_put(o);
    /* a full buffer leaves it as it was */
    buf small;
    buf_init(&small, 8);
    TH_ASSERT_EQ_INT(rcv_encode_status(1, 3, "a long message", &small), SW_ETOOBIG);
    TH_ASSERT_EQ_INT(small.len, 0);
    buf_destroy(&small);
    buf_destroy(&b);
}

int main(void)
{
    TH_RUN(t_pb_ok_borrowed);
    TH_RUN(t_json_ok);
    TH_RUN(t_json_examples);
    TH_RUN(t_gzip_pb);
    TH_RUN(t_zstd_json);
    TH_RUN(t_garbage_pb);
    TH_RUN(t_truncated_pb);
    TH_RUN(t_bad_json);
    TH_RUN(t_content_type_parse);
    TH_RUN(t_encoding_parse);
    TH_RUN(t_unsupported_415);
    TH_RUN(t_gzip_bomb_413);
    TH_RUN(t_zstd_bomb_413);
    TH_RUN(t_ratio_limit);
    TH_RUN(t_json_budget);
    TH_RUN(t_decompress_budget);
    TH_RUN(t_cap_boundaries);
    TH_RUN(t_empty_body);
    TH_RUN(t_rsp_empty);
    TH_RUN(t_rsp_partial_pb);
    TH_RUN(t_rsp_partial_json);
    TH_RUN(t_status_pb);
    TH_RUN(t_status_json);
    return th_done();
}
