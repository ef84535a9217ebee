/* card_proc.h — the cardinality limiter, processor of metrics requests.
 *
 * Protects the metrics backend from series explosions while every series
 * it already knows passes unchanged. A series is (metric name, resource
 * attributes, data point attributes); its identity is a 64-bit FNV-1a key
 * in a fixed open-address table of max_keys slots that never grows. With
 * fill = used slots / max_keys:
 *   fill <  aggregate_threshold   a new series is admitted;
 *   fill <  drop_threshold        a new series is admitted only after its
 *                                 highest-entropy labels are removed (the
 *                                 points get the attribute
 *                                 CARD_MARKER_KEY = true, and points that
 *                                 collapse onto one series in a request are
 *                                 merged per metric type);
 *   otherwise                     points of new series are dropped.
 * Idle series expire after key_ttl, a few slots per request.
 * docs/cardinality.md describes the policy, the estimator and the merges.
 *
 * Thread: one card belongs to one thread (the ingest thread). It owns its
 * table, sketches and scratch memory; the metrics registry is borrowed.
 */
#ifndef SW_CARD_PROC_H
#define SW_CARD_PROC_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/metrics.h"

/* The attribute added to data points whose labels were removed. */
#define CARD_MARKER_KEY "otel.cardinality.aggregated"
#define CARD_MSG_MAX 128
/* Per-request processing time histogram: upper bounds in nanoseconds. */
#define CARD_LAT_BUCKETS 12
extern const int64_t card_latency_bounds_ns[CARD_LAT_BUCKETS];

typedef struct card_config {
    uint32_t max_keys;            /* table slots, a power of two >= 16 */
    double aggregate_threshold;   /* 0 < a <= d <= 1 */
    double drop_threshold;
    int64_t key_ttl_ns;           /* idle series expire; 0 = never */
    uint32_t volatile_distinct;   /* a label with at least this many distinct
                                     values (estimated) is removed in the
                                     aggregate band; 0 = automatic */
} card_config;

typedef struct card card;

typedef struct card_result {
    int unchanged;                /* 1: forward the input bytes as they are */
    buf out;                      /* the rewritten request when !unchanged */
    uint32_t points_in;           /* data points in the input */
    uint32_t points_out;          /* data points in what goes on */
    uint64_t rejected_points;     /* dropped: partial_success.rejected_data_points */
    uint64_t aggregated_points;   /* admitted after label removal (merged ones too) */
    uint64_t merged_points;       /* folded into another point of the request */
    char message[CARD_MSG_MAX];   /* partial_success.error_message; "" if none */
} card_result;

/* The defaults of the config schema (config/cfg_schema.c, read through
 * cfg_defaults(): 65,536 keys, 0.75, 0.90, 10 minutes), volatile_distinct
 * automatic. 0, or SW_ENOMEM with *out zeroed (which card_new refuses). */
int card_config_default(card_config *out);

/* Returns an owned limiter, or NULL (invalid config or no memory).
 * cfg is copied; m is borrowed (may be NULL) and must outlive the card. */
card *card_new(const card_config *cfg, sw_metrics *m);
/* NULL-safe; frees everything the card owns. */
void card_free(card *c);
/* Changes the thresholds and key_ttl of a running limiter (max_keys and
 * volatile_distinct stay: the table is fixed). Series already in the table
 * stay; the new limits decide from the next request on. 0, or SW_EINVAL
 * (0 < aggregate <= drop <= 1 and key_ttl_ns >= 0 do not hold): nothing
 * changed. The card's thread. */
int card_reconfigure(card *c, double aggregate_threshold, double drop_threshold,
                     int64_t key_ttl_ns);

/* Runs one encoded ExportMetricsServiceRequest pb[0..len) (borrowed; it
 * must have passed ow_validate(), as the receiver's decode ensures)
 * through the limiter at time now_ns (monotonic). Always initialises
 * *out. Returns 0 with the outcome in *out: if out->unchanged, the caller
 * forwards its own bytes; otherwise out->out holds the re-encoded request
 * (possibly with no points left: forward nothing). SW_EDECODE if pb does
 * not unpack, SW_ENOMEM / SW_ETOOBIG on exhaustion: then nothing in the
 * table changed for the points not yet seen and the caller decides (the
 * receiver forwards the original: failing open). Release with
 * card_result_destroy(). */
int card_process(card *c, const uint8_t *pb, size_t len, int64_t now_ns,
                 card_result *out);
/* Frees what the result owns; NULL-safe; leaves it empty. */
void card_result_destroy(card_result *r);

/* Introspection (tests, benchmarks, telemetry). */
typedef struct card_stats {
    uint32_t keys_used;           /* occupied slots */
    uint32_t max_keys;
    uint64_t expired;             /* series removed by key_ttl */
    uint64_t admitted;            /* new series admitted unchanged */
    uint64_t aggregated;          /* points admitted after label removal */
    uint64_t dropped;             /* points of new series dropped */
    uint64_t requests;
    uint64_t lat_buckets[CARD_LAT_BUCKETS + 1]; /* last = +Inf */
    uint64_t lat_sum_ns;
    size_t table_bytes;           /* memory of the series table */
    size_t sketch_bytes;          /* memory of the entropy sketches */
    size_t scratch_bytes;         /* decode arena and scratch currently held */
} card_stats;

void card_get_stats(const card *c, card_stats *st);

#endif
