/* card_metrics.h — the cardinality limiter's self-metrics.
 *
 * One block per process in the metrics registry (runtime/metrics.h): slots
 * in use and configured, points aggregated or dropped, and the processing
 * time per metrics request (histogram over card_latency_bounds_ns). Counted
 * on the ingest thread; relaxed atomics. Registered even when the limiter
 * is off (max_keys then reads 0).
 */
#ifndef SW_CARD_METRICS_H
#define SW_CARD_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/metrics.h"

typedef struct card_metrics {
    _Atomic int64_t cl_keys_used;            /* occupied series slots */
    _Atomic uint64_t cl_aggregated_samples;  /* points admitted after label removal */
    _Atomic uint64_t cl_dropped_samples;     /* points of new series dropped */
    _Atomic int64_t cl_max_keys;             /* processors.cardinality.max_keys (0: off) */
    metrics_hist cl_proc;                    /* time per metrics request */
} card_metrics;

/* The limiter's block in m (borrowed), registering its families on first
 * use; owned by m. NULL if m is NULL or out of memory. */
card_metrics *card_metrics_get(sw_metrics *m);

#endif
