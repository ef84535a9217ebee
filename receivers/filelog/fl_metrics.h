/* fl_metrics.h — the filelog receiver's self-metrics.
 *
 * One block per process in the metrics registry (runtime/metrics.h): files
 * watched, bytes and lines read, records handed on, parse errors, cut
 * records, rotations, truncations, position saves and their lag,
 * checkpoint fallbacks, backpressure pauses, delivery failures. Counted on
 * the ingest thread (the saves on the position writer thread); relaxed
 * atomics. Registered even when no file is configured (all zero).
 */
#ifndef SW_FL_METRICS_H
#define SW_FL_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/metrics.h"

typedef struct fl_metrics {
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
} fl_metrics;

/* The receiver's block in m (borrowed), registering its families on first
 * use; owned by m. NULL if m is NULL or out of memory. */
fl_metrics *fl_metrics_get(sw_metrics *m);

#endif
