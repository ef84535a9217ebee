/* metrics.h — spillway's self-metrics registry.
 *
 * One sw_metrics per process, created by main and passed down (no global).
 * Every field is atomic: the ingest thread, the export thread and the
 * telemetry server touch it concurrently without locks (relaxed order; the
 * numbers are monitoring figures, not synchronisation). Components count at
 * the line that decides; metrics_render() writes the Prometheus text format.
 */
#ifndef SW_METRICS_H
#define SW_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/item.h"

#define MET_CODES 600   /* HTTP status codes 0..599; 0 = no response (connection error) */
#define MET_GRPC_CODES 17 /* gRPC status codes 0 (OK) .. 16 (UNAUTHENTICATED) */

typedef enum {
    RCV_REFUSE_DECODE = 0,   /* undecodable body (400) */
    RCV_REFUSE_TOO_LARGE,    /* body or decompressed size over the cap (413) */
    RCV_REFUSE_QUEUE_FULL,   /* backpressure (429/503) */
    RCV_REFUSE_UNSUPPORTED,  /* content type / encoding (415) */
    RCV_REFUSE_SHUTDOWN,     /* refused while stopping (503) */
    RCV_REFUSE_COUNT
} rcv_refuse_reason;

typedef enum {
    EXP_RESULT_SENT = 0,     /* acknowledged by the upstream (2xx) */
    EXP_RESULT_REJECTED,     /* permanent error from the upstream, not retried */
    EXP_RESULT_DROPPED,      /* retries exhausted or shutdown timeout */
    EXP_RESULT_COUNT
} exp_result;

/* Pipeline latency histogram bucket upper bounds, in seconds. */
#define MET_LAT_BUCKETS 14
extern const double metrics_latency_bounds[MET_LAT_BUCKETS];
/* Cardinality limiter per-request processing time bucket bounds, seconds. */
#define MET_CL_BUCKETS 12
extern const double metrics_cl_bounds[MET_CL_BUCKETS];

typedef struct sw_metrics {
    _Atomic uint64_t rcv_requests[SIG_COUNT][MET_CODES];
    _Atomic uint64_t rcv_items[SIG_COUNT];
    _Atomic uint64_t rcv_refused_items[SIG_COUNT][RCV_REFUSE_COUNT];
    _Atomic uint64_t rcv_bytes[SIG_COUNT];
    /* The same receiver families for OTLP/gRPC (label transport="grpc"; the
     * fields above are transport="http"); code is the gRPC status. */
    _Atomic uint64_t rcv_grpc_requests[SIG_COUNT][MET_GRPC_CODES];
    _Atomic uint64_t rcv_grpc_items[SIG_COUNT];
    _Atomic uint64_t rcv_grpc_refused_items[SIG_COUNT][RCV_REFUSE_COUNT];
    _Atomic uint64_t rcv_grpc_bytes[SIG_COUNT];

    _Atomic int64_t queue_items[CLASS_COUNT];
    _Atomic int64_t queue_bytes[CLASS_COUNT];
    _Atomic uint64_t queue_max_bytes;
    _Atomic uint64_t queue_dequeued[CLASS_COUNT];
    _Atomic uint64_t queue_spilled[CLASS_COUNT];

    _Atomic uint64_t exp_requests[SIG_COUNT][MET_CODES];
    _Atomic uint64_t exp_items[SIG_COUNT][EXP_RESULT_COUNT];
    _Atomic uint64_t exp_retries;
    _Atomic uint64_t exp_partial_rejected[SIG_COUNT];
    _Atomic int64_t exp_circuit_state;   /* 0 closed, 1 half-open, 2 open */
    _Atomic int64_t exp_in_flight;
    _Atomic uint64_t exp_dlq_failed_items; /* appends the DLQ refused or failed: kept in memory */

    /* receive -> upstream ack, per item (request of the client) */
    _Atomic uint64_t lat_buckets[MET_LAT_BUCKETS + 1]; /* last = +Inf */
    _Atomic uint64_t lat_sum_ns;
    _Atomic uint64_t lat_count;

    /* cardinality limiter time per metrics request */
    _Atomic uint64_t cl_proc_buckets[MET_CL_BUCKETS + 1]; /* last = +Inf */
    _Atomic uint64_t cl_proc_sum_ns;

    /* cardinality limiter (metrics processor) */
    _Atomic int64_t cl_keys_used;            /* occupied series slots */
    _Atomic uint64_t cl_aggregated_samples;  /* points admitted after label removal */
    _Atomic uint64_t cl_dropped_samples;     /* points of new series dropped */
    _Atomic int64_t cl_max_keys;             /* processors.cardinality.max_keys (0: off) */

    /* dead-letter queue */
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

    /* filelog receiver (receivers/filelog) */
    _Atomic int64_t fl_files_watched;        /* files open now */
    _Atomic uint64_t fl_bytes_read;
    _Atomic uint64_t fl_lines_read;
    _Atomic uint64_t fl_records;             /* log records handed to the pipeline */
    _Atomic uint64_t fl_parse_errors;        /* malformed lines kept as raw text */
    _Atomic uint64_t fl_truncated_records;   /* records cut at max_record_size */
    _Atomic uint64_t fl_rotations;
    _Atomic uint64_t fl_truncations;
    _Atomic uint64_t fl_position_saves;
    _Atomic int64_t fl_save_lag_ns;          /* first unsaved commit -> save, last save */
    _Atomic uint64_t fl_checkpoint_fallbacks;/* corrupt position generations at start */
    _Atomic uint64_t fl_backpressure_pauses;
    _Atomic uint64_t fl_delivery_failures;   /* requests settled as dropped downstream */

    /* SIGHUP configuration reloads (cmd/spillway.c): [0] success, [1] failure */
    _Atomic uint64_t config_reloads[2];

    int64_t start_wall_ns;
} sw_metrics;

/* Returns an owned, zeroed registry, or NULL. */
sw_metrics *metrics_new(void);
void metrics_free(sw_metrics *m);

static inline void metrics_add(_Atomic uint64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}
static inline void metrics_gauge_add(_Atomic int64_t *g, int64_t n)
{
    atomic_fetch_add_explicit(g, n, memory_order_relaxed);
}
static inline void metrics_gauge_set(_Atomic int64_t *g, int64_t v)
{
    atomic_store_explicit(g, v, memory_order_relaxed);
}
static inline int metrics_code_index(int code)
{
    return (code >= 0 && code < MET_CODES) ? code : 0;
}
/* Label values: "decode", "too_large", ...; "sent", "rejected", "dropped". */
const char *metrics_refuse_reason_name(rcv_refuse_reason r);
const char *metrics_exp_result_name(exp_result r);
/* gRPC status names: "OK", "INVALID_ARGUMENT", ... ("UNKNOWN" out of range). */
const char *metrics_grpc_code_name(int code);
/* Records one receive->ack latency observation. */
void metrics_observe_latency(sw_metrics *m, int64_t ns);
/* Records one cardinality limiter processing time (per request). */
void metrics_observe_cl(sw_metrics *m, int64_t ns);

/* Appends the Prometheus text exposition (format 0.0.4) of every family,
 * plus process_* metrics read from /proc, to out (borrowed). 0, or
 * SW_ETOOBIG / SW_ENOMEM from out (which then holds a partial page). */
int metrics_render(const sw_metrics *m, buf *out);

#endif
