/* fuzz_otlp_pb.c — ow_validate() against protobuf-c.
 *
 * Input: one byte choosing the signal, then an encoded request. Whatever
 * ow_validate() accepts must unpack with protobuf-c (after
 * ow_strip_groups() when it holds unknown groups), with the same item
 * count as the unpacked message holds; it must also convert to JSON. The
 * reference walk (testing/lib/ow_ref.h) must agree on every input: same
 * verdict, reason and count.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "runtime/buf.h"
#include "runtime/otlp_json.h"
#include "runtime/otlp_wire.h"
#include "testing/lib/ow_ref.h"

typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;

static size_t metric_points(const Metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: return m->gauge->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: return m->sum->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM: return m->histogram->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return m->exponential_histogram->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: return m->summary->n_data_points;
    default: return 0;
    }
}

/* Items counted straight from the generated structs. */
static size_t struct_count(sw_signal sig, const ProtobufCMessage *msg)
{
    size_t n = 0;
    if (sig == SIG_TRACES) {
        const Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest *r = (const void *)msg;
        for (size_t i = 0; i < r->n_resource_spans; i++)
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
                n += r->resource_spans[i]->scope_spans[j]->n_spans;
    } else if (sig == SIG_LOGS) {
        const Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *r = (const void *)msg;
        for (size_t i = 0; i < r->n_resource_logs; i++)
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++)
                n += r->resource_logs[i]->scope_logs[j]->n_log_records;
    } else {
        const Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *r = (const void *)msg;
        for (size_t i = 0; i < r->n_resource_metrics; i++)
            for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
                const Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm =
                    r->resource_metrics[i]->scope_metrics[j];
                for (size_t k = 0; k < sm->n_metrics; k++) n += metric_points(sm->metrics[k]);
            }
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    sw_signal sig = (sw_signal)(data[0] % SIG_COUNT);
    data++;
    size--;
    uint32_t items, ref_items;
    const char *why = NULL, *ref_why = NULL;
    int rc = ow_validate(sig, data, size, &items, &why);
    if (rc != owref_validate(sig, data, size, &ref_items, &ref_why) || items != ref_items)
        abort();
    if (rc != 0) {
        if (!why || !ref_why || strcmp(why, ref_why) != 0) abort();
        return 0;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(ow_descriptor(sig), NULL, size, data);
    if (!m) { /* protobuf-c refuses unknown groups: without them it must unpack */
        buf plain;
        buf_init(&plain, size + 5 * OW_MAX_DEPTH);
        if (ow_strip_groups(sig, data, size, &plain) != 0) abort();
        m = protobuf_c_message_unpack(ow_descriptor(sig), NULL, plain.len, plain.data);
        buf_destroy(&plain);
    }
    if (!m) abort();
    if (struct_count(sig, m) != items || ow_count_items(sig, m) != items) abort();
    protobuf_c_message_free_unpacked(m, NULL);
    buf js;
    buf_init(&js, (size_t)1 << 26);
    if (oj_pb_to_json(sig, data, size, &js) != 0) abort();
    buf_destroy(&js);
    return 0;
}
