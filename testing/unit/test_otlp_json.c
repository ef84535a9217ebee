/* test_otlp_json.c — OTLP/JSON <-> protobuf: the official examples, the
 * mapping rules, round trips and error reporting. */
#include "runtime/otlp_json.h"

#include <json-c/json.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "runtime/err.h"
#include "runtime/otlp_wire.h"
#include "testing/lib/th.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsReq;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;

#define EXAMPLES "../shared/otlp-examples/"

static char *read_example(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, EXAMPLES "%s", name);
    FILE *f = fopen(path, "rb");
    if (!f) th_skip("%s not found", path);
    char *p = malloc(1 << 20);
    TH_ASSERT(p != NULL);
    *len = fread(p, 1, (1 << 20) - 1, f);
    p[*len] = '\0';
    fclose(f);
    return p;
}

/* The signal of an example, from its top-level key. */
static sw_signal signal_of(const char *json)
{
    if (strstr(json, "\"resourceSpans\"")) return SIG_TRACES;
    if (strstr(json, "\"resourceMetrics\"")) return SIG_METRICS;
    TH_ASSERT(strstr(json, "\"resourceLogs\"") != NULL);
    return SIG_LOGS;
}

/* Converts JSON and checks the output with ow_validate. */
static int conv(sw_signal sig, const char *json, buf *out, char *err, size_t errlen)
{
    buf_reset(out);
    int rc = oj_json_to_pb(sig, json, strlen(json), out, err, errlen);
    if (rc == 0) {
        uint32_t items;
        const char *why = NULL;
        TH_ASSERT_MSG(ow_validate(sig, out->data, out->len, &items, &why) == 0,
                      "converted output refused: %s", why);
    } else {
        TH_ASSERT(err[0] != '\0');
    }
    return rc;
}

static ProtobufCMessage *unpack(sw_signal sig, const buf *b)
{
    ProtobufCMessage *m = protobuf_c_message_unpack(ow_descriptor(sig), NULL, b->len, b->data);
    TH_ASSERT(m != NULL);
    return m;
}

static json_object *jpath(json_object *o, const char *const *keys)
{
    for (; *keys; keys++) {
        if (json_object_is_type(o, json_type_array)) o = json_object_array_get_idx(o, 0);
        TH_ASSERT(json_object_object_get_ex(o, *keys, &o));
    }
    return o;
}

static void t_examples_convert(void)
{
    static const char *files[] = {"trace.json", "metrics.json", "logs.json", "events.json"};
    static const sw_signal want[] = {SIG_TRACES, SIG_METRICS, SIG_LOGS, SIG_LOGS};
    char err[256];
    buf out;
    buf_init(&out, 1 << 20);
    for (size_t i = 0; i < 4; i++) {
        size_t len;
        char *json = read_example(files[i], &len);
        sw_signal sig = signal_of(json);
        TH_ASSERT_EQ_INT(sig, want[i]);
        buf_reset(&out);
        TH_ASSERT_MSG(oj_json_to_pb(sig, json, len, &out, err, sizeof err) == 0, "%s: %s",
                      files[i], err);
        uint32_t items = 0;
        TH_ASSERT_EQ_INT(ow_validate(sig, out.data, out.len, &items, NULL), 0);
        TH_ASSERT(items > 0);
        ProtobufCMessage *m = unpack(sig, &out);
        TH_ASSERT_EQ_INT(ow_count_items(sig, m), items);
        protobuf_c_message_free_unpacked(m, NULL);
        free(json);
    }
    buf_destroy(&out);
}

static void t_trace_fields(void)
{
    size_t len;
    char err[256];
    char *json = read_example("trace.json", &len);
    json_object *doc = json_tokener_parse(json);
    static const char *const span_path[] = {"resourceSpans", "scopeSpans", "spans", NULL};
    json_object *js = jpath(doc, span_path);
    js = json_object_array_get_idx(js, 0);
    json_object *v;
    buf out;
    buf_init(&out, 1 << 20);
    TH_ASSERT_EQ_INT(oj_json_to_pb(SIG_TRACES, json, len, &out, err, sizeof err), 0);
    TraceReq *r = (TraceReq *)unpack(SIG_TRACES, &out);
    Span *s = r->resource_spans[0]->scope_spans[0]->spans[0];
    uint8_t id[16];
    TH_ASSERT(json_object_object_get_ex(js, "traceId", &v));
    TH_ASSERT_EQ_INT(oj_hex_decode(json_object_get_string(v), 32, id), 0);
    TH_ASSERT_EQ_INT(s->trace_id.len, 16);
    TH_ASSERT_MEM_EQ(s->trace_id.data, id, 16);
    TH_ASSERT(json_object_object_get_ex(js, "parentSpanId", &v));
    TH_ASSERT_EQ_INT(oj_hex_decode(json_object_get_string(v), 16, id), 0);
    TH_ASSERT_EQ_INT(s->parent_span_id.len, 8);
    TH_ASSERT_MEM_EQ(s->parent_span_id.data, id, 8);
    TH_ASSERT(json_object_object_get_ex(js, "name", &v));
    TH_ASSERT_EQ_STR(s->name, json_object_get_string(v));
    TH_ASSERT(json_object_object_get_ex(js, "startTimeUnixNano", &v));
    TH_ASSERT_EQ_INT(s->start_time_unix_nano, strtoull(json_object_get_string(v), NULL, 10));
    TH_ASSERT(json_object_object_get_ex(js, "kind", &v));
    TH_ASSERT_EQ_INT(s->kind, json_object_get_int(v));
    TH_ASSERT_EQ_STR(r->resource_spans[0]->resource->attributes[0]->value->string_value,
                     "my.service");
    protobuf_c_message_free_unpacked(&r->base, NULL);
    json_object_put(doc);
    buf_destroy(&out);
    free(json);
}

static void t_metrics_fields(void)
{
    size_t len;
    char err[256];
    char *json = read_example("metrics.json", &len);
    buf out;
    buf_init(&out, 1 << 20);
    TH_ASSERT_EQ_INT(oj_json_to_pb(SIG_METRICS, json, len, &out, err, sizeof err), 0);
    MetricsReq *r = (MetricsReq *)unpack(SIG_METRICS, &out);
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = r->resource_metrics[0]->scope_metrics[0];
    int seen_sum = 0, seen_hist = 0;
    for (size_t i = 0; i < sm->n_metrics; i++) {
        Metric *m = sm->metrics[i];
        if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM && !seen_sum++) {
            TH_ASSERT(m->sum->n_data_points > 0);
            TH_ASSERT_EQ_INT(m->sum->data_points[0]->value_case,
                             OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
            TH_ASSERT(m->sum->data_points[0]->as_double == 5.0);
        }
        if (m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM && !seen_hist++) {
            Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p = m->histogram->data_points[0];
            TH_ASSERT_EQ_INT(p->count, 2);
            TH_ASSERT_EQ_INT(p->n_bucket_counts, 2);
            TH_ASSERT_EQ_INT(p->bucket_counts[0], 1);
            TH_ASSERT_EQ_INT(p->_sum_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM);
            TH_ASSERT(p->sum == 2.0);
            /* "min": 0 is present: the oneof is set even though the value is 0. */
            TH_ASSERT_EQ_INT(p->_min_case, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN);
            TH_ASSERT(p->min == 0.0 && p->max == 2.0);
        }
    }
    TH_ASSERT(seen_sum && seen_hist);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    buf_destroy(&out);
    free(json);
}

static void t_logs_fields(void)
{
    size_t len;
    char err[256];
    char *json = read_example("events.json", &len);
    buf out;
    buf_init(&out, 1 << 20);
    TH_ASSERT_EQ_INT(oj_json_to_pb(SIG_LOGS, json, len, &out, err, sizeof err), 0);
    LogsReq *r = (LogsReq *)unpack(SIG_LOGS, &out);
    LogRecord *lr = r->resource_logs[0]->scope_logs[0]->log_records[0];
    TH_ASSERT_EQ_STR(lr->event_name, "browser.page_view");
    TH_ASSERT_EQ_INT(lr->time_unix_nano, 1544712660300000000ull);
    TH_ASSERT_EQ_INT(lr->severity_number, 9);
    TH_ASSERT_EQ_INT(lr->body->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE);
    AnyValue *iv = lr->body->kvlist_value->values[0]->value;
    TH_ASSERT_EQ_INT(iv->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    TH_ASSERT_EQ_INT(iv->int_value, 0);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    buf_destroy(&out);
    free(json);
}

static void t_round_trip(void)
{
    static const char *files[] = {"trace.json", "metrics.json", "logs.json", "events.json"};
    char err[256];
    buf pb1, js, pb2, js2;
    buf_init(&pb1, 1 << 20); buf_init(&js, 1 << 20); buf_init(&pb2, 1 << 20); buf_init(&js2, 1 << 20);
    for (size_t i = 0; i < 4; i++) {
        size_t len;
        char *json = read_example(files[i], &len);
        sw_signal sig = signal_of(json);
        buf_reset(&pb1); buf_reset(&js); buf_reset(&pb2); buf_reset(&js2);
        TH_ASSERT_EQ_INT(oj_json_to_pb(sig, json, len, &pb1, err, sizeof err), 0);
        TH_ASSERT_EQ_INT(oj_pb_to_json(sig, pb1.data, pb1.len, &js), 0);
        TH_ASSERT_MSG(oj_json_to_pb(sig, (char *)js.data, js.len, &pb2, err, sizeof err) == 0,
                      "%s: %s", files[i], err);
        TH_ASSERT_EQ_INT(pb2.len, pb1.len);
        TH_ASSERT_MEM_EQ(pb2.data, pb1.data, pb1.len);
        TH_ASSERT_EQ_INT(oj_pb_to_json(sig, pb2.data, pb2.len, &js2), 0);
        TH_ASSERT_EQ_INT(js2.len, js.len);
        TH_ASSERT_MEM_EQ(js2.data, js.data, js.len);
        free(json);
    }
    buf_destroy(&pb1); buf_destroy(&js); buf_destroy(&pb2); buf_destroy(&js2);
}

/* Expects SW_EDECODE with err containing want. */
static void expect_error(sw_signal sig, const char *json, const char *want)
{
    char err[256];
    buf out;
    buf_init(&out, 1 << 20);
    int rc = conv(sig, json, &out, err, sizeof err);
    TH_ASSERT_MSG(rc == SW_EDECODE, "accepted: %s", json);
    TH_ASSERT_MSG(strstr(err, want) != NULL, "error \"%s\" lacks \"%s\"", err, want);
    TH_ASSERT_EQ_INT(out.len, 0);
    buf_destroy(&out);
}

#define SPAN_DOC(x) "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{" x "}]}]}]}"
#define SPAN_PATH "resourceSpans[0].scopeSpans[0].spans[0]."

static void t_errors(void)
{
    expect_error(SIG_TRACES, "{\"resourceSpans\":[", "incomplete");
    expect_error(SIG_TRACES, "{\"resourceSpans\":[}", "invalid JSON");
    expect_error(SIG_TRACES, "{} x", "invalid JSON");
    expect_error(SIG_TRACES, "", "incomplete");
    expect_error(SIG_TRACES, "[]", "top-level value must be an object");
    expect_error(SIG_TRACES, "null", "top-level value must be an object");
    expect_error(SIG_TRACES, "\"x\"", "top-level value must be an object");
    expect_error(SIG_TRACES, SPAN_DOC("\"traceId\":\"zz8EFFF798038103D269B633813FC60C\""),
                 SPAN_PATH "traceId: invalid hex");
    expect_error(SIG_TRACES, SPAN_DOC("\"spanId\":\"EEE19B7EC3C1B1\""), SPAN_PATH "spanId: expected 16 hex");
    expect_error(SIG_TRACES, SPAN_DOC("\"traceId\":5"), SPAN_PATH "traceId: expected a string");
    expect_error(SIG_TRACES, "{\"resourceSpans\":\"x\"}", "resourceSpans: expected an array");
    expect_error(SIG_TRACES, "{\"resourceSpans\":[\"x\"]}", "resourceSpans[0]: expected an object");
    expect_error(SIG_TRACES, SPAN_DOC("\"kind\":{}"), SPAN_PATH "kind: expected an integer");
    expect_error(SIG_TRACES, SPAN_DOC("\"kind\":4294967296"), SPAN_PATH "kind: integer out of range");
    expect_error(SIG_TRACES, SPAN_DOC("\"kind\":\"SPAN_KIND_NOPE\""), "unknown enum value");
    expect_error(SIG_TRACES, SPAN_DOC("\"droppedAttributesCount\":-1"), "out of range");
    expect_error(SIG_TRACES, SPAN_DOC("\"droppedAttributesCount\":4294967296"), "out of range");
    expect_error(SIG_TRACES, SPAN_DOC("\"droppedAttributesCount\":1.5"), "expected an integer");
    expect_error(SIG_TRACES, SPAN_DOC("\"startTimeUnixNano\":\"12x\""), "expected an integer");
    expect_error(SIG_TRACES, SPAN_DOC("\"startTimeUnixNano\":\"-1\""), "out of range");
    expect_error(SIG_TRACES, SPAN_DOC("\"startTimeUnixNano\":\"18446744073709551616\""), "out of range");
    expect_error(SIG_TRACES, SPAN_DOC("\"name\":7"), SPAN_PATH "name: expected a string");
    expect_error(SIG_TRACES, SPAN_DOC("\"name\":\"a\\ud83db\""), "lone UTF-16 surrogate");
    expect_error(SIG_TRACES, SPAN_DOC("\"name\":\"\\ude00\""), "lone UTF-16 surrogate");
    expect_error(SIG_TRACES, SPAN_DOC("\"name\":\"\\ud83d\\u0041\""), "lone UTF-16 surrogate");
    expect_error(SIG_TRACES, SPAN_DOC("\"name\":\"\\uD83D\""), "lone UTF-16 surrogate");
    expect_error(SIG_TRACES, SPAN_DOC("\"attributes\":[null]"), "null array element");
    expect_error(SIG_TRACES, SPAN_DOC("\"attributes\":[{\"value\":{\"intValue\":\"9223372036854775808\"}}]"),
                 SPAN_PATH "attributes[0].value.intValue: integer out of range");
    expect_error(SIG_TRACES, SPAN_DOC("\"attributes\":[{\"value\":{\"boolValue\":1}}]"), "expected true or false");
    expect_error(SIG_TRACES, SPAN_DOC("\"attributes\":[{\"value\":{\"doubleValue\":\"x\"}}]"),
                 "expected a number");
    expect_error(SIG_TRACES, SPAN_DOC("\"attributes\":[{\"value\":{\"bytesValue\":\"a$==\"}}]"), "invalid base64");
    expect_error(SIG_TRACES, SPAN_DOC("\"attributes\":[{\"value\":{\"stringValue\":\"a\",\"intValue\":1}}]"),
                 "more than one member of a oneof");
    expect_error(SIG_TRACES, SPAN_DOC("\"name\":\"a\",\"name\":\"b\",\"trace_id\":\"\",\"traceId\":\"\""),
                 "given twice");
    expect_error(SIG_LOGS, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":\"x\"}]}]}]}",
                 "resourceLogs[0].scopeLogs[0].logRecords[0].body: expected an object");
    char bad_utf8[] = "{\"resourceSpans\":[{\"schemaUrl\":\"\xff\"}]}";
    expect_error(SIG_TRACES, bad_utf8, "invalid JSON");
    char surrogate[] = "{\"resourceSpans\":[{\"schemaUrl\":\"\xed\xa0\x80\"}]}";
    expect_error(SIG_TRACES, surrogate, "resourceSpans[0].schemaUrl: string is not valid UTF-8");
    /* A NUL byte inside the length given is not the end of the document. */
    char err[128];
    buf out;
    buf_init(&out, 1024);
    TH_ASSERT_EQ_INT(oj_json_to_pb(SIG_TRACES, "{}\0{}", 5, &out, err, sizeof err), SW_EDECODE);
    TH_ASSERT_EQ_INT(oj_json_to_pb(SIG_COUNT, "{}", 2, &out, err, sizeof err), SW_EDECODE);
    TH_ASSERT_EQ_INT(oj_json_to_pb(SIG_TRACES, "[]", 2, &out, NULL, 0), SW_EDECODE);
    buf_destroy(&out);
}

static uint64_t first_point_time(const buf *pb)
{
    MetricsReq *r = (MetricsReq *)unpack(SIG_METRICS, pb);
    uint64_t t = r->resource_metrics[0]->scope_metrics[0]->metrics[0]->gauge->data_points[0]->time_unix_nano;
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return t;
}

#define GAUGE_DOC(t) \
    "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"gauge\":{\"dataPoints\":[{\"timeUnixNano\":" t "}]}}]}]}]}"

static void t_uint64_extremes(void)
{
    char err[256];
    buf out, js;
    buf_init(&out, 1 << 20);
    buf_init(&js, 1 << 20);
    TH_ASSERT_EQ_INT(conv(SIG_METRICS, GAUGE_DOC("\"18446744073709551615\""), &out, err, sizeof err), 0);
    TH_ASSERT_EQ_INT(first_point_time(&out), UINT64_MAX);
    TH_ASSERT_EQ_INT(oj_pb_to_json(SIG_METRICS, out.data, out.len, &js), 0);
    TH_ASSERT(memmem(js.data, js.len, "\"timeUnixNano\":\"18446744073709551615\"", 37) != NULL);
    TH_ASSERT_EQ_INT(conv(SIG_METRICS, GAUGE_DOC("18446744073709551615"), &out, err, sizeof err), 0);
    TH_ASSERT_EQ_INT(first_point_time(&out), UINT64_MAX);
    TH_ASSERT_EQ_INT(conv(SIG_METRICS, GAUGE_DOC("9223372036854775808"), &out, err, sizeof err), 0);
    TH_ASSERT_EQ_INT(first_point_time(&out), 9223372036854775808ull);
    TH_ASSERT_EQ_INT(conv(SIG_METRICS, GAUGE_DOC("1e3"), &out, err, sizeof err), 0);
    TH_ASSERT_EQ_INT(first_point_time(&out), 1000);
    /* int64 extremes in AnyValue.intValue, as strings and numbers. */
    static const char *ok[] = {"\"-9223372036854775808\"", "-9223372036854775808",
                               "\"9223372036854775807\"", "9223372036854775807"};
    static const int64_t want[] = {INT64_MIN, INT64_MIN, INT64_MAX, INT64_MAX};
    for (int i = 0; i < 4; i++) {
        char doc[256];
        snprintf(doc, sizeof doc, SPAN_DOC("\"attributes\":[{\"key\":\"k\",\"value\":{\"intValue\":%s}}]"), ok[i]);
        TH_ASSERT_MSG(conv(SIG_TRACES, doc, &out, err, sizeof err) == 0, "%s", err);
        TraceReq *r = (TraceReq *)unpack(SIG_TRACES, &out);
        TH_ASSERT(r->resource_spans[0]->scope_spans[0]->spans[0]->attributes[0]->value->int_value == want[i]);
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    buf_destroy(&out);
    buf_destroy(&js);
}

static void t_mapping_variants(void)
{
    char err[256];
    buf a, b;
    buf_init(&a, 1 << 20);
    buf_init(&b, 1 << 20);
    /* snake_case keys, enum names, uppercase hex, numbers as strings and
     * unknown keys at every level all give the same bytes. */
    TH_ASSERT_EQ_INT(conv(SIG_TRACES,
        "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"5b8efff798038103d269b633813fc60c\","
        "\"spanId\":\"eee19b7ec3c1b174\",\"kind\":2,\"droppedAttributesCount\":3,\"name\":\"n\","
        "\"status\":{\"code\":2},\"startTimeUnixNano\":\"100\"}]}]}]}", &a, err, sizeof err), 0);
    TH_ASSERT_MSG(conv(SIG_TRACES,
        "{\"x\":{\"y\":[1,2]},\"resource_spans\":[{\"scope_spans\":[{\"zz\":null,\"spans\":[{"
        "\"trace_id\":\"5B8EFFF798038103D269B633813FC60C\",\"span_id\":\"EEE19B7EC3C1B174\","
        "\"kind\":\"SPAN_KIND_SERVER\",\"dropped_attributes_count\":\"3\",\"name\":\"n\",\"unknown\":[{}],"
        "\"status\":{\"code\":\"STATUS_CODE_ERROR\",\"extra\":true},\"start_time_unix_nano\":100.0,"
        "\"parentSpanId\":\"\",\"links\":null,\"traceState\":null}]}]}]}", &b, err, sizeof err) == 0, "%s", err);
    TH_ASSERT_EQ_INT(a.len, b.len);
    TH_ASSERT_MEM_EQ(a.data, b.data, a.len);
    /* Empty object: empty request. */
    TH_ASSERT_EQ_INT(conv(SIG_LOGS, " { } \n", &a, err, sizeof err), 0);
    TH_ASSERT_EQ_INT(a.len, 0);
    /* Doubles: specials as strings; bytes: standard and URL-safe base64. */
    TH_ASSERT_EQ_INT(conv(SIG_TRACES, SPAN_DOC("\"attributes\":["
        "{\"key\":\"a\",\"value\":{\"doubleValue\":\"NaN\"}},{\"key\":\"b\",\"value\":{\"doubleValue\":\"Infinity\"}},"
        "{\"key\":\"c\",\"value\":{\"doubleValue\":\"-Infinity\"}},{\"key\":\"d\",\"value\":{\"doubleValue\":-0.0}},"
        "{\"key\":\"e\",\"value\":{\"bytesValue\":\"+/8=\"}},{\"key\":\"f\",\"value\":{\"bytesValue\":\"-_8\"}},"
        "{\"key\":\"g\",\"value\":{\"doubleValue\":0.1}},{\"key\":\"h\",\"value\":{\"intValue\":0}}]"),
        &a, err, sizeof err), 0);
    TraceReq *r = (TraceReq *)unpack(SIG_TRACES, &a);
    Opentelemetry__Proto__Common__V1__KeyValue **kv = r->resource_spans[0]->scope_spans[0]->spans[0]->attributes;
    TH_ASSERT(isnan(kv[0]->value->double_value));
    TH_ASSERT(isinf(kv[1]->value->double_value) && kv[1]->value->double_value > 0);
    TH_ASSERT(isinf(kv[2]->value->double_value) && kv[2]->value->double_value < 0);
    TH_ASSERT(kv[3]->value->double_value == 0 && signbit(kv[3]->value->double_value));
    TH_ASSERT_EQ_INT(kv[4]->value->bytes_value.len, 2);
    TH_ASSERT_MEM_EQ(kv[4]->value->bytes_value.data, "\xfb\xff", 2);
    TH_ASSERT_MEM_EQ(kv[5]->value->bytes_value.data, "\xfb\xff", 2);
    TH_ASSERT_EQ_INT(kv[7]->value->value_case, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    /* ...and they survive pb -> JSON -> pb. */
    buf_reset(&b);
    TH_ASSERT_EQ_INT(oj_pb_to_json(SIG_TRACES, a.data, a.len, &b), 0);
    TH_ASSERT(memmem(b.data, b.len, "\"NaN\"", 5) && memmem(b.data, b.len, "\"-Infinity\"", 11));
    TH_ASSERT(memmem(b.data, b.len, "\"bytesValue\":\"+/8=\"", 19) && memmem(b.data, b.len, "0.1}", 4));
    buf c;
    buf_init(&c, 1 << 20);
    TH_ASSERT_MSG(oj_json_to_pb(SIG_TRACES, (char *)b.data, b.len, &c, err, sizeof err) == 0,
                  "%s: %.*s", err, (int)b.len, (char *)b.data);
    TH_ASSERT_EQ_INT(c.len, a.len);
    TH_ASSERT_MEM_EQ(c.data, a.data, a.len);
    buf_destroy(&a);
    buf_destroy(&b);
    buf_destroy(&c);
}

static void t_strings(void)
{
    /* Escapes and non-ASCII survive; invalid UTF-8 in protobuf becomes U+FFFD. */
    char err[256];
    buf a, js, b;
    buf_init(&a, 1 << 20); buf_init(&js, 1 << 20); buf_init(&b, 1 << 20);
    TH_ASSERT_EQ_INT(conv(SIG_TRACES, SPAN_DOC("\"name\":\"q\\\"b\\\\n\\n\\u0001\\t\\u00e9\\u20ac\\ud83d\\ude00/\""),
                          &a, err, sizeof err), 0);
    TH_ASSERT_EQ_INT(oj_pb_to_json(SIG_TRACES, a.data, a.len, &js), 0);
    TH_ASSERT_EQ_INT(oj_json_to_pb(SIG_TRACES, (char *)js.data, js.len, &b, err, sizeof err), 0);
    TH_ASSERT_EQ_INT(b.len, a.len);
    TH_ASSERT_MEM_EQ(b.data, a.data, a.len);
    /* Span{name: "a\xffb"} by hand. */
    static const uint8_t raw[] = {0x0a, 0x0b, 0x12, 0x09, 0x12, 0x07, 0x2a, 0x05, 'a', 0xff, 'b', 0xc3, 'x'};
    buf_reset(&js);
    TH_ASSERT_EQ_INT(oj_pb_to_json(SIG_TRACES, raw, sizeof raw, &js), 0);
    TH_ASSERT(memmem(js.data, js.len, "\"a\\ufffdb\\ufffdx\"", 17) != NULL);
    buf_reset(&b);
    TH_ASSERT_EQ_INT(oj_json_to_pb(SIG_TRACES, (char *)js.data, js.len, &b, err, sizeof err), 0);
    buf_destroy(&a); buf_destroy(&js); buf_destroy(&b);
}

/* The protobuf string a span name converts to: exactly want[0..n). */
static void expect_name(const char *json_name, const char *want, size_t n)
{
    char err[256], doc[512];
    buf pb;
    buf_init(&pb, 1 << 20);
    snprintf(doc, sizeof doc, SPAN_DOC("\"name\":\"%s\",\"kind\":1"), json_name);
    TH_ASSERT_MSG(conv(SIG_TRACES, doc, &pb, err, sizeof err) == 0, "%s: %s", json_name, err);
    /* Span: name (field 5) then kind (field 6) */
    uint8_t field[64];
    TH_ASSERT(n + 4 < sizeof field);
    field[0] = 0x2a;
    field[1] = (uint8_t)n;
    memcpy(field + 2, want, n);
    field[2 + n] = 0x30;
    field[3 + n] = 0x01;
    TH_ASSERT_MSG(memmem(pb.data, pb.len, field, n + 4) != NULL, "%s: bytes differ", json_name);
    buf_destroy(&pb);
}

/* \u escapes decoded exactly: NUL inside a string, surrogate pairs as one
 * 4-byte code point, short escapes, raw multi-byte UTF-8. */
static void t_escapes_exact(void)
{
    expect_name("a\\u0000b", "a\0b", 3);
    expect_name("\\u0000", "\0", 1);
    expect_name("x\\u0000\\u0000", "x\0\0", 3);
    expect_name("\\ud83d\\ude00", "\xf0\x9f\x98\x80", 4);
    expect_name("\\uD83D\\uDE00!", "\xf0\x9f\x98\x80!", 5);
    expect_name("\\\"\\\\\\/\\b\\f\\n\\r\\t", "\"\\/\b\f\n\r\t", 8);
    expect_name("h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "h\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 10);
    expect_name("\\u00e9\\u20ac", "\xc3\xa9\xe2\x82\xac", 5);
    expect_name("\\\\ud83d", "\\ud83d", 6); /* an escaped backslash, not an escape */
    /* a NUL in an attribute key and value, and in two strings of one request */
    char err[256];
    buf pb;
    buf_init(&pb, 1 << 20);
    static const char doc[] = "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"k\\u0000\","
                              "\"value\":{\"stringValue\":\"v\\u0000w\"}}]},\"scopeLogs\":[{\"logRecords\":"
                              "[{\"body\":{\"stringValue\":\"\\u0000\"}}]}]}]}";
    TH_ASSERT_MSG(conv(SIG_LOGS, doc, &pb, err, sizeof err) == 0, "%s", err);
    TH_ASSERT(memmem(pb.data, pb.len, "\x0a\x02k\0", 4) != NULL);
    TH_ASSERT(memmem(pb.data, pb.len, "\x0a\x03v\0w", 5) != NULL);
    TH_ASSERT(memmem(pb.data, pb.len, "\x0a\x01\0", 3) != NULL);
    uint32_t items = 0;
    TH_ASSERT_EQ_INT(ow_validate(SIG_LOGS, pb.data, pb.len, &items, NULL), 0);
    TH_ASSERT_EQ_INT(items, 1);
    buf_destroy(&pb);
}

static void nested_json(unsigned levels, buf *doc)
{
    buf_reset(doc);
    TH_ASSERT(buf_append_str(doc, "{\"resourceLogs\":[{\"scopeLogs\":[{\"logRecords\":[{\"body\":") == 0);
    for (unsigned i = 1; i < levels; i++)
        TH_ASSERT(buf_append_str(doc, "{\"arrayValue\":{\"values\":[") == 0);
    TH_ASSERT(buf_append_str(doc, "{\"intValue\":7}") == 0);
    for (unsigned i = 1; i < levels; i++) TH_ASSERT(buf_append_str(doc, "]}}") == 0);
    TH_ASSERT(buf_append_str(doc, "}]}]}]}") == 0);
    TH_ASSERT(buf_append(doc, "", 1) == 0);
}

static void t_depth(void)
{
    char err[256];
    buf doc, out;
    buf_init(&doc, 1 << 20);
    buf_init(&out, 1 << 20);
    nested_json(28, &doc);
    TH_ASSERT_MSG(conv(SIG_LOGS, (char *)doc.data, &out, err, sizeof err) == 0, "%s", err);
    nested_json(40, &doc);
    TH_ASSERT_EQ_INT(conv(SIG_LOGS, (char *)doc.data, &out, err, sizeof err), SW_EDECODE);
    TH_ASSERT_MSG(strstr(err, "nesting deeper than 64") != NULL, "%s", err);
    nested_json(100, &doc);
    TH_ASSERT_EQ_INT(conv(SIG_LOGS, (char *)doc.data, &out, err, sizeof err), SW_EDECODE);
    buf_destroy(&doc);
    buf_destroy(&out);
}

static void t_limits_and_bad_pb(void)
{
    char err[256];
    buf small;
    buf_init(&small, 8);
    TH_ASSERT_EQ_INT(oj_json_to_pb(SIG_TRACES, SPAN_DOC("\"name\":\"a fairly long span name\""),
                                   strlen(SPAN_DOC("\"name\":\"a fairly long span name\"")), &small,
                                   err, sizeof err), SW_ETOOBIG);
    TH_ASSERT_EQ_INT(small.len, 0);
    static const uint8_t junk[] = {0x0a, 0x05, 0x12};
    TH_ASSERT_EQ_INT(oj_pb_to_json(SIG_TRACES, junk, sizeof junk, &small), SW_EDECODE);
    TH_ASSERT_EQ_INT(small.len, 0);
    TH_ASSERT_EQ_INT(oj_pb_to_json(SIG_TRACES, NULL, 0, &small), 0);
    TH_ASSERT_EQ_INT(small.len, 2);
    TH_ASSERT_MEM_EQ(small.data, "{}", 2);
    buf_reset(&small);
    static const uint8_t one[] = {0x0a, 0x02, 0x12, 0x00};
    TH_ASSERT_EQ_INT(oj_pb_to_json(SIG_TRACES, one, sizeof one, &small), SW_ETOOBIG);
    TH_ASSERT_EQ_INT(small.len, 0);
    buf_destroy(&small);
}

int main(void)
{
    TH_RUN(t_examples_convert);
    TH_RUN(t_trace_fields);
    TH_RUN(t_metrics_fields);
    TH_RUN(t_logs_fields);
    TH_RUN(t_round_trip);
    TH_RUN(t_errors);
    TH_RUN(t_uint64_extremes);
    TH_RUN(t_mapping_variants);
    TH_RUN(t_strings);
    TH_RUN(t_escapes_exact);
    TH_RUN(t_depth);
    TH_RUN(t_limits_and_bad_pb);
    return th_done();
}
