/* dlq_metrics.h — the dead-letter queue's self-metrics.
 *
 * One block per process in the metrics registry (runtime/metrics.h): disk
 * usage, segments, the oldest unacknowledged record (its age computed at
 * render time), bytes and items written and replayed, quarantined
 * segments, storage errors and availability. Counted by the writer thread,
 * the reader and the replay path; relaxed atomics.
 */
#ifndef SW_DLQ_METRICS_H
#define SW_DLQ_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/item.h"
#include "runtime/metrics.h"

typedef struct dlq_metrics {
    _Atomic int64_t dlq_bytes;               /* bytes of segment files on disk */
    _Atomic int64_t dlq_segments;            /* segment files (open + sealed) */
    _Atomic int64_t dlq_oldest_wall_ns;      /* receive time (clock_wall_ns) of the
                                                oldest unacknowledged record; 0 = empty */
    _Atomic uint64_t dlq_written_bytes;      /* request bytes spilled into the DLQ */
    _Atomic uint64_t dlq_replayed_bytes;     /* request bytes replayed and acknowledged */
    _Atomic uint64_t dlq_corrupt_segments;   /* segments moved to quarantine/ */
    _Atomic uint64_t dlq_write_errors;       /* failed creates, writes, fsyncs, seals, probes */
    _Atomic int64_t dlq_available;           /* 1 the DLQ takes appends, 0 unavailable */
    _Atomic int64_t dlq_max_bytes;           /* dlq.max_size: appends refused past it */
    _Atomic uint64_t dlq_written_items[CLASS_COUNT];  /* items (spans, points, records) of
                                                         records stored in the main area */
    _Atomic uint64_t dlq_replayed_items[CLASS_COUNT]; /* of records replayed and acknowledged */
} dlq_metrics;

/* The DLQ's block in m (borrowed), registering its families on first use;
 * owned by m. NULL if m is NULL or out of memory. */
dlq_metrics *dlq_metrics_get(sw_metrics *m);

#endif
