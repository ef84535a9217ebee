/* test_mockup.c — the pure parts of spillway-mockup: content lines rendered
 * from decoded requests, body decoding (compression, JSON, fast mode), the
 * /stats JSON, fault decisions and the outage arithmetic (modes, schedule,
 * --outage-at, admin outages and which one wins). The mockup's files are compiled into
 * this test directly (the unit-test link has no testing/mockup objects). */
#include "testing/mockup/mock_decode.c"
#include "testing/mockup/mock_fault.c"
#include "testing/mockup/mock_outage.c"
#include "testing/mockup/mock_render.c"
#include "testing/mockup/mock_store.c"

#include <stdio.h>

#include "testing/lib/th.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue AV;
typedef Opentelemetry__Proto__Common__V1__KeyValue KV;

/* Packs any protobuf-c message into an owned buf. */
static void pack(const ProtobufCMessage *m, buf *out)
{
    buf_init(out, 1 << 20);
    size_t n = protobuf_c_message_get_packed_size(m);
    TH_ASSERT_EQ_INT(buf_reserve(out, n + 1), 0);
    out->len = protobuf_c_message_pack(m, out->data);
}

/* Renders pb of sig with a budget of max lines; returns the items. */
static uint64_t render(sw_signal sig, const buf *pb, size_t max, buf *lines, size_t *n)
{
    uint64_t items = 0;
    *n = 0;
    buf_init(lines, 1 << 20);
    TH_ASSERT_EQ_INT(mock_render_request(sig, pb->data, pb->len, lines, max, n, &items), 0);
    TH_ASSERT_EQ_INT(buf_append(lines, "", 1), 0); /* NUL for string compares */
    lines->len--;
    return items;
}

static void t_traces_lines(void)
{
    uint8_t tid[16], sid[8];
    for (int i = 0; i < 16; i++) tid[i] = (uint8_t)(0xa0 + i);
    for (int i = 0; i < 8; i++) sid[i] = (uint8_t)i;
    Opentelemetry__Proto__Trace__V1__Span s1 = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT,
                                          s2 = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    s1.trace_id = (ProtobufCBinaryData){16, tid};
    s1.span_id = (ProtobufCBinaryData){8, sid};
    s1.name = "GET /checkout";
    s2.name = "two\nlines";
    Opentelemetry__Proto__Trace__V1__Span *spans[] = {&s1, &s2};
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = 2;
    ss.spans = spans;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *sss[] = {&ss};
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.n_scope_spans = 1;
    rs.scope_spans = sss;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rss[] = {&rs, &rs};
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 2;
    req.resource_spans = rss;
    buf pb, lines;
    size_t n;
    pack(&req.base, &pb);
    TH_ASSERT_EQ_INT(render(SIG_TRACES, &pb, 100, &lines, &n), 4);
    TH_ASSERT_EQ_INT(n, 4);
    const char *one = "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf 0001020304050607 GET /checkout\n"
                      "- - two\\nlines\n";
    char want[512];
    snprintf(want, sizeof want, "%s%s", one, one);
    TH_ASSERT_EQ_STR((char *)lines.data, want);
    buf_destroy(&lines);
    /* The line budget limits what is stored, never what is counted. */
    TH_ASSERT_EQ_INT(render(SIG_TRACES, &pb, 3, &lines, &n), 4);
    TH_ASSERT_EQ_INT(n, 3);
    buf_destroy(&lines);
    buf_destroy(&pb);
}

static void t_logs_lines(void)
{
    enum { N = 9 };
    AV v[N], inner[2], kvv;
    for (int i = 0; i < N; i++) opentelemetry__proto__common__v1__any_value__init(&v[i]);
    for (int i = 0; i < 2; i++) opentelemetry__proto__common__v1__any_value__init(&inner[i]);
    opentelemetry__proto__common__v1__any_value__init(&kvv);
    v[0].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v[0].string_value = "payment failed";
    v[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v[1].int_value = -42;
    v[2].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v[2].double_value = 0.1;
    v[3].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v[3].bool_value = 1;
    v[4].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE;
    v[4].bytes_value = (ProtobufCBinaryData){3, (uint8_t *)"\x01\xab\xff"};
    inner[0].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    inner[0].string_value = "a\"b";
    inner[1].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    inner[1].double_value = 2.5;
    AV *arr[] = {&inner[0], &inner[1], &kvv}; /* kvv unset: null */
    Opentelemetry__Proto__Common__V1__ArrayValue av = OPENTELEMETRY__PROTO__COMMON__V1__ARRAY_VALUE__INIT;
    av.n_values = 3;
    av.values = arr;
    v[5].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
    v[5].array_value = &av;
    KV k1 = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT, k2 = k1;
    k1.key = "z";
    k1.value = &v[1];
    k2.key = "a";
    k2.value = &v[5];
    KV *kvs[] = {&k1, &k2};
    Opentelemetry__Proto__Common__V1__KeyValueList kl = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
    kl.n_values = 2;
    kl.values = kvs;
    v[6].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    v[6].kvlist_value = &kl;
    v[7].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v[7].double_value = INFINITY;
    /* v[8] stays unset */
    Opentelemetry__Proto__Logs__V1__LogRecord lr[N + 1], *lrp[N + 1];
    uint8_t tid[16] = {0xff};
    for (int i = 0; i <= N; i++) {
        opentelemetry__proto__logs__v1__log_record__init(&lr[i]);
        lr[i].severity_number = (Opentelemetry__Proto__Logs__V1__SeverityNumber)(i + 1);
        lr[i].body = i < N ? &v[i] : NULL; /* the last has no body */
        lrp[i] = &lr[i];
    }
    lr[0].trace_id = (ProtobufCBinaryData){16, tid};
    Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    sl.n_log_records = N + 1;
    sl.log_records = lrp;
    Opentelemetry__Proto__Logs__V1__ScopeLogs *sls[] = {&sl};
    Opentelemetry__Proto__Logs__V1__ResourceLogs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    rl.n_scope_logs = 1;
    rl.scope_logs = sls;
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rls[] = {&rl};
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    req.n_resource_logs = 1;
    req.resource_logs = rls;
    buf pb, lines;
    size_t n;
    pack(&req.base, &pb);
    TH_ASSERT_EQ_INT(render(SIG_LOGS, &pb, 100, &lines, &n), N + 1);
    TH_ASSERT_EQ_STR((char *)lines.data,
                     "ff000000000000000000000000000000 1 payment failed\n"
                     "- 2 -42\n"
                     "- 3 0.1\n"
                     "- 4 true\n"
                     "- 5 01abff\n"
                     "- 6 [\"a\\\"b\",2.5,null]\n"
                     "- 7 {\"z\":-42,\"a\":[\"a\\\"b\",2.5,null]}\n"
                     "- 8 Inf\n"
                     "- 9 \n"
                     "- 10 \n");
    buf_destroy(&lines);
    buf_destroy(&pb);
}

/* Metrics: one line per point, attributes sorted, each data type. */
static void t_metrics_lines(void)
{
    AV sv = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT, iv = sv;
    sv.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    sv.string_value = "GET";
    iv.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    iv.int_value = 200;
    KV ka = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT, kb = ka;
    ka.key = "method";
    ka.value = &sv;
    kb.key = "code";
    kb.value = &iv;
    KV *attrs[] = {&ka, &kb};

    Opentelemetry__Proto__Metrics__V1__NumberDataPoint g1 =
        OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT, s1 = g1;
    g1.n_attributes = 2;
    g1.attributes = attrs;
    g1.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    g1.as_double = 12.5;
    s1.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    s1.as_int = 7;
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *gp[] = {&g1}, *sp[] = {&s1, &g1};
    Opentelemetry__Proto__Metrics__V1__Gauge gauge = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    gauge.n_data_points = 1;
    gauge.data_points = gp;
    Opentelemetry__Proto__Metrics__V1__Sum sum = OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
    sum.n_data_points = 2;
    sum.data_points = sp;

    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint h1 =
        OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT, h2 = h1;
    h1.count = 5;
    h1._sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    h1.sum = 1.25;
    h2.count = 3; /* no sum */
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *hp[] = {&h1, &h2};
    Opentelemetry__Proto__Metrics__V1__Histogram hist = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT;
    hist.n_data_points = 2;
    hist.data_points = hp;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint e1 =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT;
    e1.count = 9;
    e1._sum_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
    e1.sum = 100;
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *ep[] = {&e1};
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogram eh =
        OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM__INIT;
    eh.n_data_points = 1;
    eh.data_points = ep;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint q1 =
        OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY_DATA_POINT__INIT;
    q1.count = 2;
    q1.sum = 0.5;
    q1.n_attributes = 1;
    q1.attributes = attrs;
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *qp[] = {&q1};
    Opentelemetry__Proto__Metrics__V1__Summary summ = OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY__INIT;
    summ.n_data_points = 1;
    summ.data_points = qp;

    Opentelemetry__Proto__Metrics__V1__Metric m[6];
    const char *names[] = {"temp", "requests", "latency", "size", "rpc", "empty"};
    for (int i = 0; i < 6; i++) {
        opentelemetry__proto__metrics__v1__metric__init(&m[i]);
        m[i].name = (char *)names[i];
    }
    m[0].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m[0].gauge = &gauge;
    m[1].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m[1].sum = &sum;
    m[2].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m[2].histogram = &hist;
    m[3].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m[3].exponential_histogram = &eh;
    m[4].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    m[4].summary = &summ;
    Opentelemetry__Proto__Metrics__V1__Metric *mp[] = {&m[0], &m[1], &m[2], &m[3], &m[4], &m[5]};
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics sm = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
    sm.n_metrics = 6;
    sm.metrics = mp;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *smp[] = {&sm};
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics rm = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
    rm.n_scope_metrics = 1;
    rm.scope_metrics = smp;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rmp[] = {&rm};
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    req.n_resource_metrics = 1;
    req.resource_metrics = rmp;
    buf pb, lines;
    size_t n;
    pack(&req.base, &pb);
    TH_ASSERT_EQ_INT(render(SIG_METRICS, &pb, 100, &lines, &n), 7);
    TH_ASSERT_EQ_STR((char *)lines.data,
                     "temp gauge code=200,method=GET 12.5\n"
                     "requests sum - 7\n"
                     "requests sum code=200,method=GET 12.5\n"
                     "latency histogram - count=5 sum=1.25\n"
                     "latency histogram - count=3 sum=-\n"
                     "size exphistogram - count=9 sum=100\n"
                     "rpc summary method=GET count=2 sum=0.5\n");
    buf_destroy(&lines);
    buf_destroy(&pb);
}

static void t_render_refuses_garbage(void)
{
    static const uint8_t junk[] = {0x0a, 0x05, 0x01}; /* length past the end */
    buf lines;
    buf_init(&lines, 1024);
    size_t n = 0;
    uint64_t items = 0;
    for (int s = 0; s < SIG_COUNT; s++)
        TH_ASSERT_EQ_INT(mock_render_request((sw_signal)s, junk, sizeof junk, &lines, 10, &n,
                                             &items),
                         SW_EDECODE);
    TH_ASSERT_EQ_INT(n, 0);
    buf_destroy(&lines);
}

/* A body with one span named `name`, protobuf-encoded. */
static void one_span(const char *name, buf *pb)
{
    Opentelemetry__Proto__Trace__V1__Span s = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    s.name = (char *)name;
    Opentelemetry__Proto__Trace__V1__Span *sp[] = {&s};
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.n_spans = 1;
    ss.spans = sp;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp[] = {&ss};
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.n_scope_spans = 1;
    rs.scope_spans = ssp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp[] = {&rs};
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = rsp;
    pack(&req.base, pb);
}

static void t_decode_bodies(void)
{
    mock_store *st = mock_store_new(10);
    TH_ASSERT(st != NULL);
    buf pb, gz, zs;
    one_span("work", &pb);
    buf_init(&gz, 1 << 20);
    buf_init(&zs, 1 << 20);
    TH_ASSERT_EQ_INT(codec_gzip(pb.data, pb.len, &gz, 6), 0);
    TH_ASSERT_EQ_INT(codec_zstd_compress(pb.data, pb.len, &zs, 3), 0);
    mock_decoded d;
    TH_ASSERT_EQ_INT(mock_decode_body(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_IDENTITY, pb.data,
                                      pb.len, 0, st, &d), 0);
    TH_ASSERT_EQ_INT(d.status, 200);
    TH_ASSERT_EQ_INT(d.items, 1);
    TH_ASSERT_EQ_INT(d.lines, 1);
    TH_ASSERT_EQ_INT(mock_decode_body(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_GZIP, gz.data, gz.len,
                                      0, st, &d), 0);
    TH_ASSERT_EQ_INT(d.status, 200);
    TH_ASSERT_EQ_INT(d.pb_len, pb.len);
    TH_ASSERT_EQ_INT(mock_decode_body(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_ZSTD, zs.data, zs.len,
                                      0, st, &d), 0);
    TH_ASSERT_EQ_INT(d.items, 1);
    /* Fast mode counts without storing. */
    TH_ASSERT_EQ_INT(mock_decode_body(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_ZSTD, zs.data, zs.len,
                                      1, st, &d), 0);
    TH_ASSERT_EQ_INT(d.status, 200);
    TH_ASSERT_EQ_INT(d.items, 1);
    TH_ASSERT_EQ_INT(d.lines, 0);
    buf *l = mock_store_lines(st, SIG_TRACES);
    TH_ASSERT_EQ_INT(l->len, 3 * strlen("- - work\n"));
    /* Wrong encoding, truncated input, garbage protobuf: 400. */
    TH_ASSERT_EQ_INT(mock_decode_body(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_GZIP, zs.data, zs.len,
                                      0, st, &d), 0);
    TH_ASSERT_EQ_INT(d.status, 400);
    TH_ASSERT_EQ_INT(mock_decode_body(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_GZIP, gz.data,
                                      gz.len - 3, 0, st, &d), 0);
    TH_ASSERT_EQ_INT(d.status, 400);
    TH_ASSERT_EQ_INT(mock_decode_body(SIG_TRACES, RCV_CT_PROTOBUF, RCV_CE_IDENTITY,
                                      (const uint8_t *)"\x0a\x09", 2, 1, st, &d), 0);
    TH_ASSERT_EQ_INT(d.status, 400);
    /* Empty body: an empty request. */
    TH_ASSERT_EQ_INT(mock_decode_body(SIG_LOGS, RCV_CT_PROTOBUF, RCV_CE_GZIP, NULL, 0, 0, st,
                                      &d), 0);
    TH_ASSERT_EQ_INT(d.status, 200);
    TH_ASSERT_EQ_INT(d.items, 0);
    buf_destroy(&pb);
    buf_destroy(&gz);
    buf_destroy(&zs);
    mock_store_free(st);
}

/* Decompressed size over MOCK_MAX_DECODED: 413. */
static void t_decode_bomb(void)
{
    size_t n = MOCK_MAX_DECODED + 1;
    uint8_t *zeros = calloc(1, n);
    TH_ASSERT(zeros != NULL);
    buf zs;
    buf_init(&zs, 1 << 20);
    TH_ASSERT_EQ_INT(codec_zstd_compress(zeros, n, &zs, 1), 0);
    free(zeros);
    mock_store *st = mock_store_new(10);
    mock_decoded d;
    TH_ASSERT_EQ_INT(mock_decode_body(SIG_LOGS, RCV_CT_PROTOBUF, RCV_CE_ZSTD, zs.data, zs.len,
                                      0, st, &d), 0);
    TH_ASSERT_EQ_INT(d.status, 413);
    buf_destroy(&zs);
    mock_store_free(st);
}

/* OTLP/JSON goes through oj_json_to_pb; uses the official example. */
static void t_decode_json(void)
{
    FILE *f = fopen("../shared/otlp-examples/trace.json", "rb");
    if (!f) th_skip("../shared/otlp-examples/trace.json not present");
    char text[65536];
    size_t len = fread(text, 1, sizeof text, f);
    fclose(f);
    mock_store *st = mock_store_new(10);
    mock_decoded d;
    TH_ASSERT_EQ_INT(mock_decode_body(SIG_TRACES, RCV_CT_JSON, RCV_CE_IDENTITY,
                                      (const uint8_t *)text, len, 0, st, &d), 0);
    TH_ASSERT_MSG(d.status == 200, "status %d: %s", d.status, d.msg);
    TH_ASSERT(d.items >= 1);
    TH_ASSERT_EQ_INT(d.lines, d.items);
    TH_ASSERT_EQ_INT(mock_decode_body(SIG_TRACES, RCV_CT_JSON, RCV_CE_IDENTITY,
                                      (const uint8_t *)"{\"resourceSpans\":[", 18, 0, st, &d), 0);
    TH_ASSERT_EQ_INT(d.status, 400);
    mock_store_free(st);
}

static void t_stats_json(void)
{
    mock_store *st = mock_store_new(5);
    TH_ASSERT(st != NULL);
    mock_store_count_request(st, SIG_TRACES);
    mock_store_count_request(st, SIG_TRACES);
    mock_store_count_request(st, SIG_LOGS);
    mock_store_count_accepted(st, SIG_TRACES, 100, 3000, 5000);
    mock_store_count_decode_error(st);
    mock_store_count_response(st, 200);
    mock_store_count_response(st, 503);
    mock_store_count_response(st, 400);
    mock_store_add_kept(st, SIG_TRACES, 5);
    TH_ASSERT_EQ_INT(mock_store_room(st, SIG_TRACES), 0);
    TH_ASSERT_EQ_INT(mock_store_room(st, SIG_LOGS), 5);
    buf j;
    buf_init(&j, 4096);
    TH_ASSERT_EQ_INT(mock_store_stats_json(st, NULL, &j), 0);
    TH_ASSERT_EQ_INT(buf_append(&j, "", 1), 0);
    TH_ASSERT_EQ_STR((char *)j.data,
                     "{\"requests\":{\"traces\":2,\"metrics\":0,\"logs\":1},"
                     "\"accepted\":{\"traces\":1,\"metrics\":0,\"logs\":0},"
                     "\"items\":{\"traces\":100,\"metrics\":0,\"logs\":0},"
                     "\"bytes\":{\"traces\":3000,\"metrics\":0,\"logs\":0},"
                     "\"pb_bytes\":{\"traces\":5000,\"metrics\":0,\"logs\":0},"
                     "\"decode_errors\":1,"
                     "\"responses\":{\"200\":1,\"400\":1,\"503\":1},"
                     "\"kept\":{\"traces\":5,\"metrics\":0,\"logs\":0}}\n");
    /* with the outage object */
    mock_store_count_outage_request(st, 7);
    mock_store_count_outage_request(st, 7);
    mock_store_count_outage_request(st, 9);
    mock_outage_status os = {MOCK_OUT_429, 1500, 9400, 2};
    buf_reset(&j);
    TH_ASSERT_EQ_INT(mock_store_stats_json(st, &os, &j), 0);
    TH_ASSERT_EQ_INT(buf_append(&j, "", 1), 0);
    TH_ASSERT_MSG(strstr((char *)j.data,
                         ",\"outage\":{\"active\":true,\"mode\":\"429\",\"remaining_ms\":1500,"
                         "\"uptime_ms\":9400,\"started\":2,\"requests\":3,"
                         "\"per_second\":{\"7\":2,\"9\":1}}}\n") != NULL,
                  "stats: %s", (char *)j.data);
    mock_store_reset(st);
    buf_reset(&j);
    os.mode = MOCK_OUT_NONE;
    TH_ASSERT_EQ_INT(mock_store_stats_json(st, &os, &j), 0);
    TH_ASSERT_EQ_INT(buf_append(&j, "", 1), 0);
    TH_ASSERT(strstr((char *)j.data, "\"responses\":{},") != NULL);
    TH_ASSERT(strstr((char *)j.data, "\"decode_errors\":0,") != NULL);
    TH_ASSERT(strstr((char *)j.data, "\"active\":false,\"mode\":\"none\"") != NULL);
    TH_ASSERT(strstr((char *)j.data, "\"requests\":0,\"per_second\":{}}}") != NULL);
    TH_ASSERT_EQ_INT(mock_store_room(st, SIG_TRACES), 5);
    buf_destroy(&j);
    mock_store_free(st);
}

static void t_faults(void)
{
    mock_opts o;
    mock_opts_defaults(&o);
    o.fail_first = 2;
    o.error_code = 502;
    mock_faults f;
    mock_faults_init(&f, &o);
    TH_ASSERT_EQ_INT(mock_faults_decide(&f), 502);
    TH_ASSERT_EQ_INT(mock_faults_decide(&f), 502);
    TH_ASSERT_EQ_INT(mock_faults_decide(&f), 0);
    mock_faults_arm(&f, 2, 504);
    TH_ASSERT_EQ_INT(mock_faults_decide(&f), 504);
    TH_ASSERT_EQ_INT(mock_faults_decide(&f), 504);
    TH_ASSERT_EQ_INT(mock_faults_decide(&f), 0);
    mock_faults_arm(&f, 5, 503);
    mock_faults_arm(&f, 0, 503); /* cancels */
    TH_ASSERT_EQ_INT(mock_faults_decide(&f), 0);

    /* Rates: deterministic per seed, and roughly the asked fraction. */
    mock_opts_defaults(&o);
    o.rate_429 = 0.25;
    o.error_rate = 0.5;
    mock_faults a, b;
    mock_faults_init(&a, &o);
    mock_faults_init(&b, &o);
    int n429 = 0, nerr = 0;
    for (int i = 0; i < 4000; i++) {
        int ca = mock_faults_decide(&a);
        TH_ASSERT_EQ_INT(ca, mock_faults_decide(&b));
        n429 += ca == 429;
        nerr += ca == 503;
    }
    TH_ASSERT_MSG(n429 > 800 && n429 < 1200, "429s: %d of 4000", n429);
    TH_ASSERT_MSG(nerr > 1200 && nerr < 1800, "errors: %d of 4000", nerr); /* 0.75 * 0.5 */
    o.rate_429 = 1.0;
    mock_faults_init(&a, &o);
    for (int i = 0; i < 100; i++) TH_ASSERT_EQ_INT(mock_faults_decide(&a), 429);
}

static void t_outage_modes(void)
{
    TH_ASSERT_EQ_INT(mock_outage_mode_parse("refuse"), MOCK_OUT_REFUSE);
    TH_ASSERT_EQ_INT(mock_outage_mode_parse("503"), MOCK_OUT_503);
    TH_ASSERT_EQ_INT(mock_outage_mode_parse("429"), MOCK_OUT_429);
    TH_ASSERT_EQ_INT(mock_outage_mode_parse("hang"), MOCK_OUT_HANG);
    TH_ASSERT_EQ_INT(mock_outage_mode_parse("trickle"), MOCK_OUT_TRICKLE);
    TH_ASSERT_EQ_INT(mock_outage_mode_parse("continue"), MOCK_OUT_CONTINUE);
    TH_ASSERT_EQ_STR(mock_outage_mode_name(MOCK_OUT_CONTINUE), "continue");
    TH_ASSERT(mock_outage_mode_parse("none") < 0);
    TH_ASSERT(mock_outage_mode_parse("502") < 0);
    TH_ASSERT(mock_outage_mode_parse("") < 0);
    TH_ASSERT(mock_outage_mode_parse(NULL) < 0);
    TH_ASSERT_EQ_STR(mock_outage_mode_name(MOCK_OUT_NONE), "none");
    TH_ASSERT_EQ_STR(mock_outage_mode_name(MOCK_OUT_HANG), "hang");
    TH_ASSERT_EQ_STR(mock_outage_mode_name(99), "?");
    int64_t ms = -1;
    TH_ASSERT_EQ_INT(mock_parse_seconds("5", &ms), 0);
    TH_ASSERT_EQ_INT(ms, 5000);
    TH_ASSERT_EQ_INT(mock_parse_seconds("0.25", &ms), 0);
    TH_ASSERT_EQ_INT(ms, 250);
    TH_ASSERT_EQ_INT(mock_parse_seconds("0", &ms), 0);
    TH_ASSERT_EQ_INT(ms, 0);
    const char *bad[] = {"", "-1", "+1", " 1", "1s", "nan", "inf", "1e30", "2592001", "x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TH_ASSERT_MSG(mock_parse_seconds(bad[i], &ms) != 0, "accepted '%s'", bad[i]);
}

static void t_outage_flags(void)
{
    mock_outage_plan p;
    memset(&p, 0, sizeof p);
    TH_ASSERT_EQ_INT(mock_parse_schedule("5/10/503", &p), 0);
    TH_ASSERT_EQ_INT(p.sched_down_ms, 5000);
    TH_ASSERT_EQ_INT(p.sched_every_ms, 10000);
    TH_ASSERT_EQ_INT(p.sched_mode, MOCK_OUT_503);
    TH_ASSERT_EQ_INT(mock_parse_schedule("0.5/2", &p), 0);
    TH_ASSERT_EQ_INT(p.sched_mode, MOCK_OUT_REFUSE);
    TH_ASSERT_EQ_INT(p.sched_down_ms, 500);
    const char *bad_sched[] = {"5", "5/", "/10", "10/10", "11/10", "0/10", "5/10/", "5/10/foo",
                               "5/10/503/1", "a/b", "-1/10"};
    for (size_t i = 0; i < sizeof bad_sched / sizeof bad_sched[0]; i++)
        TH_ASSERT_MSG(mock_parse_schedule(bad_sched[i], &p) != 0, "accepted '%s'", bad_sched[i]);
    TH_ASSERT_EQ_INT(mock_parse_outage_at("3:60:hang", &p), 0);
    TH_ASSERT_EQ_INT(p.at_start_ms, 3000);
    TH_ASSERT_EQ_INT(p.at_end_ms, 63000);
    TH_ASSERT_EQ_INT(p.at_mode, MOCK_OUT_HANG);
    TH_ASSERT_EQ_INT(mock_parse_outage_at("0:1.5", &p), 0);
    TH_ASSERT_EQ_INT(p.at_mode, MOCK_OUT_REFUSE);
    TH_ASSERT_EQ_INT(p.at_end_ms, 1500);
    const char *bad_at[] = {"3", "3:0", "3:", ":3", "3:4:x", "3:4:429:1", "3/4"};
    for (size_t i = 0; i < sizeof bad_at / sizeof bad_at[0]; i++)
        TH_ASSERT_MSG(mock_parse_outage_at(bad_at[i], &p) != 0, "accepted '%s'", bad_at[i]);
    char longarg[300];
    memset(longarg, '1', sizeof longarg - 1);
    longarg[sizeof longarg - 1] = '\0';
    TH_ASSERT(mock_parse_schedule(longarg, &p) != 0);
}

static void t_outage_schedule_eval(void)
{
    mock_outage_plan p;
    memset(&p, 0, sizeof p);
    int64_t next;
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 12345, &next), MOCK_OUT_NONE);
    TH_ASSERT_EQ_INT(next, INT64_MAX);
    TH_ASSERT_EQ_INT(mock_outage_remaining_ms(&p, 12345), 0);
    TH_ASSERT_EQ_INT(mock_parse_schedule("5/10/429", &p), 0);
    /* up for 5 s, then down for 5 s, every 10 s */
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 0, &next), MOCK_OUT_NONE);
    TH_ASSERT_EQ_INT(next, 5000);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 4999, &next), MOCK_OUT_NONE);
    TH_ASSERT_EQ_INT(next, 5000);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 5000, &next), MOCK_OUT_429);
    TH_ASSERT_EQ_INT(next, 10000);
    TH_ASSERT_EQ_INT(mock_outage_remaining_ms(&p, 7500), 2500);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 10000, &next), MOCK_OUT_NONE);
    TH_ASSERT_EQ_INT(next, 15000);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 123456, &next), MOCK_OUT_NONE);
    TH_ASSERT_EQ_INT(next, 125000);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 129999, &next), MOCK_OUT_429);
    TH_ASSERT_EQ_INT(next, 130000);
    /* over 60 s a 5/10 schedule is down exactly half the time */
    int64_t down = 0;
    for (int64_t t = 0; t < 60000; t++) down += mock_outage_eval(&p, t, &next) != MOCK_OUT_NONE;
    TH_ASSERT_EQ_INT(down, 30000);
}

static void t_outage_precedence(void)
{
    mock_outage_plan p;
    memset(&p, 0, sizeof p);
    int64_t next;
    TH_ASSERT_EQ_INT(mock_parse_schedule("2/10/503", &p), 0); /* down 8..10, 18..20, ... */
    TH_ASSERT_EQ_INT(mock_parse_outage_at("9:6:hang", &p), 0); /* 9..15 */
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 1000, &next), MOCK_OUT_NONE);
    TH_ASSERT_EQ_INT(next, 8000);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 8500, &next), MOCK_OUT_503);
    TH_ASSERT_EQ_INT(next, 9000);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 9000, &next), MOCK_OUT_HANG); /* --outage-at wins */
    TH_ASSERT_EQ_INT(next, 10000);
    /* the outage lasts from 8 s to 15 s whatever its mode */
    TH_ASSERT_EQ_INT(mock_outage_remaining_ms(&p, 8500), 6500);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 14999, &next), MOCK_OUT_HANG);
    TH_ASSERT_EQ_INT(next, 15000);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 15000, &next), MOCK_OUT_NONE);
    TH_ASSERT_EQ_INT(next, 18000);
    /* an admin outage beats both, and ends on its own */
    p.admin_mode = MOCK_OUT_REFUSE;
    p.admin_start_ms = 12000;
    p.admin_end_ms = 13000;
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 11999, &next), MOCK_OUT_HANG);
    TH_ASSERT_EQ_INT(next, 12000);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 12000, &next), MOCK_OUT_REFUSE);
    TH_ASSERT_EQ_INT(next, 13000);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 13000, &next), MOCK_OUT_HANG);
    p.admin_start_ms = 30000;
    p.admin_end_ms = 40000;
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 27000, &next), MOCK_OUT_NONE);
    TH_ASSERT_EQ_INT(next, 28000);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 29000, &next), MOCK_OUT_503);
    TH_ASSERT_EQ_INT(next, 30000);
    TH_ASSERT_EQ_INT(mock_outage_remaining_ms(&p, 30000), 10000);
    TH_ASSERT_EQ_INT(mock_outage_eval(&p, 45000, &next), MOCK_OUT_NONE);
    TH_ASSERT_EQ_INT(next, 48000);
}

int main(void)
{
    TH_RUN(t_traces_lines);
    TH_RUN(t_logs_lines);
    TH_RUN(t_metrics_lines);
    TH_RUN(t_render_refuses_garbage);
    TH_RUN(t_decode_bodies);
    TH_RUN(t_decode_bomb);
    TH_RUN(t_decode_json);
    TH_RUN(t_stats_json);
    TH_RUN(t_faults);
    TH_RUN(t_outage_modes);
    TH_RUN(t_outage_flags);
    TH_RUN(t_outage_schedule_eval);
    TH_RUN(t_outage_precedence);
    return th_done();
}
