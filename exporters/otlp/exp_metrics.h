/* exp_metrics.h — the OTLP/HTTP exporter's self-metrics.
 *
 * One block per process in the metrics registry (runtime/metrics.h), shared
 * by the exporter, its connection pool (exp_http: requests in flight) and
 * its circuit breaker (exp_circuit: state). Counted on the export thread,
 * read by the telemetry server; relaxed atomics. The pipeline latency
 * histogram (receive to upstream acknowledgement) is observed here, where
 * the acknowledgement arrives.
 */
#ifndef SW_EXP_METRICS_H
#define SW_EXP_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/item.h"
#include "runtime/metrics.h"

/* What became of items the exporter finished with (label result). */
typedef enum {
    EXP_RESULT_SENT = 0,     /* acknowledged by the upstream (2xx) */
    EXP_RESULT_REJECTED,     /* permanent error from the upstream, not retried */
    EXP_RESULT_DROPPED,      /* retries exhausted or shutdown timeout */
    EXP_RESULT_COUNT
} exp_result;

/* Pipeline latency histogram: 100 µs .. 10 s, dense around 1-25 ms. */
#define EXP_LAT_BUCKETS 14
extern const int64_t exp_latency_bounds_ns[EXP_LAT_BUCKETS];

typedef struct exp_metrics {
    _Atomic uint64_t exp_requests[SIG_COUNT][MET_CODES]; /* by HTTP status; 0 = no answer */
    _Atomic uint64_t exp_items[SIG_COUNT][EXP_RESULT_COUNT];
    _Atomic uint64_t exp_retries;
    _Atomic uint64_t exp_partial_rejected[SIG_COUNT];
    _Atomic int64_t exp_circuit_state;   /* 0 closed, 1 half-open, 2 open */
    _Atomic int64_t exp_in_flight;
    _Atomic uint64_t exp_dlq_failed_items; /* appends the DLQ refused or failed: kept in memory */
    metrics_hist latency;                /* receive -> upstream ack, per item */
} exp_metrics;

/* The exporter's block in m (borrowed), registering its families on first
 * use; owned by m. NULL if m is NULL or out of memory. */
exp_metrics *exp_metrics_get(sw_metrics *m);

/* Label values "sent", "rejected", "dropped" ("unknown" out of range). */
const char *exp_result_name(exp_result r);

#endif
