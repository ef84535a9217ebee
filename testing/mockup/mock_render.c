/* mock_render.c — one text line per received item. See mock.h.
 *
 * traces:  <trace_id_hex> <span_id_hex> <span name>
 * logs:    <trace_id_hex or -> <severity_number> <body>
 * metrics: <name> <gauge|sum|histogram|exphistogram|summary> <k=v,... or -> <value>
 *
 * Ids are lowercase hex ("-" when empty). Strings are written as they are,
 * except that '\n', '\r' and '\\' are escaped so one item stays one line.
 * Non-string values: integers and doubles as text (doubles in the shortest
 * form that reads back exactly; NaN, Inf, -Inf), booleans true/false, bytes
 * as hex, arrays and maps JSON-like: [1,"a"] and {"k":"v"}; a missing value
 * is empty at the top level and null inside arrays and maps.
 */
#include "testing/mockup/mock.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "runtime/err.h"

typedef Opentelemetry__Proto__Common__V1__AnyValue any_value;
typedef Opentelemetry__Proto__Common__V1__KeyValue key_value;
typedef Opentelemetry__Proto__Metrics__V1__Metric metric;

/* Where lines go: a buf, a line budget and the count written. */
typedef struct sink {
    buf *lines;
    size_t max_lines;
    size_t *nlines;
    buf line; /* the line being built */
} sink;

static int sink_open(sink *k) { return *k->nlines < k->max_lines; }

static int sink_emit(sink *k)
{
    int rc = buf_append(&k->line, "\n", 1);
    if (rc == 0) rc = buf_append(k->lines, k->line.data, k->line.len);
    if (rc == 0) (*k->nlines)++;
    buf_reset(&k->line);
    return rc;
}

/* ---- scalar formatting ---------------------------------------------------- */

static int put_hex(buf *b, const uint8_t *p, size_t n)
{
    static const char hx[] = "0123456789abcdef";
    int rc = buf_reserve(b, 2 * n);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        b->data[b->len++] = (uint8_t)hx[p[i] >> 4];
        b->data[b->len++] = (uint8_t)hx[p[i] & 15];
    }
    return rc;
}

static int put_id(buf *b, ProtobufCBinaryData id)
{
    return id.len ? put_hex(b, id.data, id.len) : buf_append(b, "-", 1);
}

static int put_double(buf *b, double v)
{
    if (isnan(v)) return buf_append_str(b, "NaN");
    if (isinf(v)) return buf_append_str(b, v > 0 ? "Inf" : "-Inf");
    char tmp[40];
    snprintf(tmp, sizeof tmp, "%.15g", v);
    if (strtod(tmp, NULL) != v) snprintf(tmp, sizeof tmp, "%.17g", v);
    return buf_append_str(b, tmp);
}

/* A string kept on one line: newline, CR and backslash escaped. */
static int put_raw_str(buf *b, const char *s)
{
    int rc = 0;
    for (; rc == 0 && *s; s++) {
        if (*s == '\n') rc = buf_append(b, "\\n", 2);
        else if (*s == '\r') rc = buf_append(b, "\\r", 2);
        else if (*s == '\\') rc = buf_append(b, "\\\\", 2);
        else rc = buf_append(b, s, 1);
    }
    return rc;
}

static int put_json_str(buf *b, const char *s)
{
    int rc = buf_append(b, "\"", 1);
    for (; rc == 0 && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') rc = buf_printf(b, "\\%c", c);
        else if (c == '\n') rc = buf_append(b, "\\n", 2);
        else if (c < 0x20) rc = buf_printf(b, "\\u%04x", c);
        else rc = buf_append(b, s, 1);
    }
    if (rc == 0) rc = buf_append(b, "\"", 1);
    return rc;
}

/* ---- AnyValue -------------------------------------------------------------- */

static int put_value(buf *b, const any_value *v, int top, int depth);

static int put_array(buf *b, const Opentelemetry__Proto__Common__V1__ArrayValue *a, int depth)
{
    int rc = buf_append(b, "[", 1);
    for (size_t i = 0; a && rc == 0 && i < a->n_values; i++) {
        if (i) rc = buf_append(b, ",", 1);
        if (rc == 0) rc = put_value(b, a->values[i], 0, depth + 1);
    }
    return rc ? rc : buf_append(b, "]", 1);
}

static int put_kvlist(buf *b, const Opentelemetry__Proto__Common__V1__KeyValueList *l,
                      int depth)
{
    int rc = buf_append(b, "{", 1);
    for (size_t i = 0; l && rc == 0 && i < l->n_values; i++) {
        if (i) rc = buf_append(b, ",", 1);
        if (rc == 0) rc = put_json_str(b, l->values[i]->key);
        if (rc == 0) rc = buf_append(b, ":", 1);
        if (rc == 0) rc = put_value(b, l->values[i]->value, 0, depth + 1);
    }
    return rc ? rc : buf_append(b, "}", 1);
}

static int put_value(buf *b, const any_value *v, int top, int depth)
{
    if (depth > 64) return buf_append_str(b, "...");
    switch (v ? v->value_case : OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE__NOT_SET) {
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
        return top ? put_raw_str(b, v->string_value) : put_json_str(b, v->string_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
        return buf_append_str(b, v->bool_value ? "true" : "false");
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
        return buf_printf(b, "%" PRId64, v->int_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
        return put_double(b, v->double_value);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
        return put_array(b, v->array_value, depth);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
        return put_kvlist(b, v->kvlist_value, depth);
    case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE: {
        int rc = top ? 0 : buf_append(b, "\"", 1);
        if (rc == 0) rc = put_hex(b, v->bytes_value.data, v->bytes_value.len);
        if (rc == 0 && !top) rc = buf_append(b, "\"", 1);
        return rc;
    }
    default:
        return top ? 0 : buf_append_str(b, "null");
    }
}

/* ---- traces and logs ---------------------------------------------------- */

static int render_traces(const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r,
                         sink *k, uint64_t *items)
{
    int rc = 0;
    for (size_t i = 0; i < r->n_resource_spans; i++) {
        const Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = r->resource_spans[i];
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = rs->scope_spans[j];
            *items += ss->n_spans;
            for (size_t s = 0; rc == 0 && s < ss->n_spans && sink_open(k); s++) {
                const Opentelemetry__Proto__Trace__V1__Span *sp = ss->spans[s];
                rc = put_id(&k->line, sp->trace_id);
                if (rc == 0) rc = buf_append(&k->line, " ", 1);
                if (rc == 0) rc = put_id(&k->line, sp->span_id);
                if (rc == 0) rc = buf_append(&k->line, " ", 1);
                if (rc == 0) rc = put_raw_str(&k->line, sp->name);
                if (rc == 0) rc = sink_emit(k);
            }
        }
    }
    return rc;
}

static int render_logs(const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *r,
                       sink *k, uint64_t *items)
{
    int rc = 0;
    for (size_t i = 0; i < r->n_resource_logs; i++) {
        const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = r->resource_logs[i];
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            *items += sl->n_log_records;
            for (size_t s = 0; rc == 0 && s < sl->n_log_records && sink_open(k); s++) {
                const Opentelemetry__Proto__Logs__V1__LogRecord *lr = sl->log_records[s];
                rc = put_id(&k->line, lr->trace_id);
                if (rc == 0) rc = buf_printf(&k->line, " %d ", (int)lr->severity_number);
                if (rc == 0) rc = put_value(&k->line, lr->body, 1, 0);
                if (rc == 0) rc = sink_emit(k);
            }
        }
    }
    return rc;
}

/* ---- metrics --------------------------------------------------------------- */

static int cmp_kv(const void *a, const void *b)
{
    const key_value *x = *(const key_value *const *)a, *y = *(const key_value *const *)b;
    return strcmp(x->key, y->key);
}

/* k=v,k=v sorted by key, or "-" when there are none. */
static int put_attrs(buf *b, key_value **kv, size_t n)
{
    if (n == 0) return buf_append(b, "-", 1);
    key_value *small[16], **sorted = n <= 16 ? small : malloc(n * sizeof *sorted);
    if (!sorted) return SW_ENOMEM;
    memcpy(sorted, kv, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_kv);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i) rc = buf_append(b, ",", 1);
        if (rc == 0) rc = put_raw_str(b, sorted[i]->key);
        if (rc == 0) rc = buf_append(b, "=", 1);
        if (rc == 0) rc = put_value(b, sorted[i]->value, 1, 0);
    }
    if (sorted != small) free(sorted);
    return rc;
}

/* One data point: name, type, attributes; the value is added by the caller. */
static int put_point_head(buf *b, const metric *m, const char *type, key_value **kv, size_t n)
{
    int rc = put_raw_str(b, m->name);
    if (rc == 0) rc = buf_printf(b, " %s ", type);
    if (rc == 0) rc = put_attrs(b, kv, n);
    if (rc == 0) rc = buf_append(b, " ", 1);
    return rc;
}

static int put_number_point(buf *b, const Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p)
{
    switch (p->value_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE:
        return put_double(b, p->as_double);
    case OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT:
        return buf_printf(b, "%" PRId64, p->as_int);
    default:
        return buf_append(b, "-", 1);
    }
}

static int put_count_sum(buf *b, uint64_t count, int has_sum, double sum)
{
    int rc = buf_printf(b, "count=%" PRIu64 " sum=", count);
    if (rc == 0) rc = has_sum ? put_double(b, sum) : buf_append(b, "-", 1);
    return rc;
}

/* Renders point i of metric m into k->line. */
static int render_point(const metric *m, size_t i, sink *k)
{
    buf *b = &k->line;
    int rc;
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: {
        int gauge = m->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        const Opentelemetry__Proto__Metrics__V1__NumberDataPoint *p =
            gauge ? m->gauge->data_points[i] : m->sum->data_points[i];
        rc = put_point_head(b, m, gauge ? "gauge" : "sum", p->attributes, p->n_attributes);
        return rc ? rc : put_number_point(b, p);
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: {
        const Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *p = m->histogram->data_points[i];
        rc = put_point_head(b, m, "histogram", p->attributes, p->n_attributes);
        return rc ? rc : put_count_sum(b, p->count, p->_sum_case != 0, p->sum);
    }
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM: {
        const Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *p =
            m->exponential_histogram->data_points[i];
        rc = put_point_head(b, m, "exphistogram", p->attributes, p->n_attributes);
        return rc ? rc : put_count_sum(b, p->count, p->_sum_case != 0, p->sum);
    }
    default: {
        const Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *p = m->summary->data_points[i];
        rc = put_point_head(b, m, "summary", p->attributes, p->n_attributes);
        return rc ? rc : put_count_sum(b, p->count, 1, p->sum);
    }
    }
}

static size_t metric_points(const metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE:
        return m->gauge ? m->gauge->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM:
        return m->sum ? m->sum->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return m->histogram ? m->histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram ? m->exponential_histogram->n_data_points : 0;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY:
        return m->summary ? m->summary->n_data_points : 0;
    default:
        return 0;
    }
}

static int render_metrics(const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *r,
                          sink *k, uint64_t *items)
{
    int rc = 0;
    for (size_t i = 0; i < r->n_resource_metrics; i++) {
        const Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = r->resource_metrics[i];
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = rm->scope_metrics[j];
            for (size_t mi = 0; mi < sm->n_metrics; mi++) {
                size_t n = metric_points(sm->metrics[mi]);
                *items += n;
                for (size_t p = 0; rc == 0 && p < n && sink_open(k); p++) {
                    rc = render_point(sm->metrics[mi], p, k);
                    if (rc == 0) rc = sink_emit(k);
                }
            }
        }
    }
    return rc;
}

/* ---- entry ----------------------------------------------------------------- */

int mock_render_request(sw_signal sig, const uint8_t *pb, size_t len, buf *lines,
                        size_t max_lines, size_t *nlines, uint64_t *items)
{
    const ProtobufCMessageDescriptor *d =
        sig == SIG_TRACES ? &opentelemetry__proto__collector__trace__v1__export_trace_service_request__descriptor
        : sig == SIG_METRICS ? &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor
        : &opentelemetry__proto__collector__logs__v1__export_logs_service_request__descriptor;
    *items = 0;
    ProtobufCMessage *msg = protobuf_c_message_unpack(d, NULL, len, pb);
    if (!msg) return SW_EDECODE;
    sink k = {lines, max_lines, nlines, {0}};
    buf_init(&k.line, lines->max);
    int rc;
    if (sig == SIG_TRACES) rc = render_traces((void *)msg, &k, items);
    else if (sig == SIG_METRICS) rc = render_metrics((void *)msg, &k, items);
    else rc = render_logs((void *)msg, &k, items);
    buf_destroy(&k.line);
    protobuf_c_message_free_unpacked(msg, NULL);
    return rc;
}
