/* exp_metrics.c — see exp_metrics.h. */
#include "exporters/otlp/exp_metrics.h"

#include <stddef.h>

const int64_t exp_latency_bounds_ns[EXP_LAT_BUCKETS] = {
    100000,   250000,    500000,    1000000,    2500000,    5000000,    10000000,
    25000000, 50000000,  100000000, 250000000,  1000000000, 2500000000, 10000000000,
};

static const char *const result_names[EXP_RESULT_COUNT] = {"sent", "rejected", "dropped"};

const char *exp_result_name(exp_result r)
{
    return (unsigned)r < EXP_RESULT_COUNT ? result_names[r] : "unknown";
}

static int exp_metrics_init(sw_metrics *m, void *block)
{
    exp_metrics *b = block;
    metrics_dim result = {.label = "result", .n = EXP_RESULT_COUNT, .values = result_names};
    metrics_source s = {.kind = METRICS_SRC_U64, .cells = b->exp_requests, .skip_zero = 1,
                        .dims = {metrics_dim_signal(), metrics_dim_http_code()}};
    int rc = metrics_register(m, "spillway_exporter_requests_total", METRICS_COUNTER,
                              "Upstream export requests, by signal and HTTP status code "
                              "(\"error\" = no response).", &s);
    s = (metrics_source){.kind = METRICS_SRC_U64, .cells = b->exp_items,
                         .dims = {metrics_dim_signal(), result}};
    if (!rc) rc = metrics_register(m, "spillway_exporter_items_total", METRICS_COUNTER,
                                   "Items the exporter finished with, by signal and result "
                                   "(sent, rejected, dropped).", &s);
    if (!rc) rc = metrics_register_u64(m, "spillway_exporter_retries_total", METRICS_COUNTER,
                                       "Upstream requests retried after a retryable failure.",
                                       &b->exp_retries);
    s = (metrics_source){.kind = METRICS_SRC_U64, .cells = b->exp_partial_rejected,
                         .dims = {metrics_dim_signal()}};
    if (!rc) rc = metrics_register(m, "spillway_exporter_partial_rejected_items_total",
                                   METRICS_COUNTER,
                                   "Items the upstream reported as rejected in partial_success.", &s);
    if (!rc) rc = metrics_register_i64(m, "spillway_exporter_in_flight_requests",
                                       "Upstream requests sent and not yet answered.",
                                       &b->exp_in_flight);
    if (!rc) rc = metrics_register_i64(m, "spillway_exporter_circuit_state",
                                       "Exporter circuit breaker: 0 closed, 1 half-open, 2 open.",
                                       &b->exp_circuit_state);
    if (!rc) rc = metrics_register_u64(m, "spillway_exporter_dlq_failed_items_total",
                                       METRICS_COUNTER,
                                       "Items the DLQ could not store when the exporter spilled "
                                       "them; kept in memory.", &b->exp_dlq_failed_items);
    b->latency.bounds_ns = exp_latency_bounds_ns;
    b->latency.n = EXP_LAT_BUCKETS;
    s = (metrics_source){.kind = METRICS_SRC_HIST, .cells = &b->latency};
    if (!rc) rc = metrics_register(m, "spillway_pipeline_latency_seconds", METRICS_HISTOGRAM,
                                   "Time from receipt of a request to the upstream's "
                                   "acknowledgement.", &s);
    return rc;
}

exp_metrics *exp_metrics_get(sw_metrics *m)
{
    return m ? metrics_block(m, "exporter_otlphttp", sizeof(exp_metrics), exp_metrics_init) : NULL;
}
