/* apq_metrics.h — the priority queue's self-metrics.
 *
 * One block per process in the metrics registry (runtime/metrics.h):
 * items and bytes queued per class (gauges moved by the producer and the
 * consumer), dequeued and spilled items per class, the capacity. The fill
 * ratio is computed at render time from the bytes and the capacity.
 * Relaxed atomics; any thread.
 */
#ifndef SW_APQ_METRICS_H
#define SW_APQ_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/item.h"
#include "runtime/metrics.h"

typedef struct apq_metrics {
    _Atomic int64_t queue_items[CLASS_COUNT];
    _Atomic int64_t queue_bytes[CLASS_COUNT];
    _Atomic uint64_t queue_max_bytes;
    _Atomic uint64_t queue_dequeued[CLASS_COUNT];
    _Atomic uint64_t queue_spilled[CLASS_COUNT];  /* by the queue or past it (pipeline) */
} apq_metrics;

/* The queue's block in m (borrowed), registering its families on first
 * use; owned by m. NULL if m is NULL or out of memory. */
apq_metrics *apq_metrics_get(sw_metrics *m);

#endif
