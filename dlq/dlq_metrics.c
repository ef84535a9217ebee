/* dlq_metrics.c — see dlq_metrics.h. */
#include "dlq/dlq_metrics.h"

#include <stddef.h>

#include "runtime/clock.h"

static void render_oldest_age(metrics_out *o, const char *name, const void *arg)
{
    const dlq_metrics *b = arg;
    int64_t oldest = atomic_load_explicit(&b->dlq_oldest_wall_ns, memory_order_relaxed);
    int64_t age = oldest > 0 ? clock_wall_ns() - oldest : 0;
    metrics_out_ns_seconds(o, name, NULL, age > 0 ? (uint64_t)age : 0);
}

/* The unlabelled families, in page order. */
static int register_scalars(sw_metrics *m, dlq_metrics *b)
{
    metrics_source age = {.kind = METRICS_SRC_FN, .fn = render_oldest_age, .arg = b};
    int rc = metrics_register_i64(m, "spillway_dlq_bytes", "Bytes of DLQ segment files on disk.",
                                  &b->dlq_bytes);
    if (!rc) rc = metrics_register_i64(m, "spillway_dlq_segments", "DLQ segment files on disk.",
                                       &b->dlq_segments);
    if (!rc) rc = metrics_register(m, "spillway_dlq_oldest_age_seconds", METRICS_GAUGE,
                                   "Age of the oldest unacknowledged record in the DLQ "
                                   "(0 when empty).", &age);
    if (!rc) rc = metrics_register_u64(m, "spillway_dlq_written_bytes_total", METRICS_COUNTER,
                                       "Request bytes spilled into the DLQ.",
                                       &b->dlq_written_bytes);
    if (!rc) rc = metrics_register_u64(m, "spillway_dlq_replayed_bytes_total", METRICS_COUNTER,
                                       "Request bytes replayed from the DLQ and acknowledged "
                                       "upstream.", &b->dlq_replayed_bytes);
    if (!rc) rc = metrics_register_u64(m, "spillway_dlq_corrupt_segments_total", METRICS_COUNTER,
                                       "DLQ segments that failed verification and were moved "
                                       "to quarantine/.", &b->dlq_corrupt_segments);
    if (!rc) rc = metrics_register_u64(m, "spillway_dlq_write_errors_total", METRICS_COUNTER,
                                       "DLQ storage operations that failed (segment create, "
                                       "write, fsync, seal, probe).", &b->dlq_write_errors);
    if (!rc) rc = metrics_register_i64(m, "spillway_dlq_available",
                                       "1 while the DLQ takes appends, 0 while its storage is "
                                       "unavailable.", &b->dlq_available);
    if (!rc) rc = metrics_register_i64(m, "spillway_dlq_max_bytes",
                                       "dlq.max_size in bytes: past it appends are refused and "
                                       "intake answers 429/503.", &b->dlq_max_bytes);
    return rc;
}

static int dlq_metrics_init(sw_metrics *m, void *block)
{
    dlq_metrics *b = block;
    int rc = register_scalars(m, b);
    metrics_source s = {.kind = METRICS_SRC_U64, .cells = b->dlq_written_items,
                        .dims = {metrics_dim_class()}};
    if (!rc) rc = metrics_register(m, "spillway_dlq_written_items_total", METRICS_COUNTER,
                                   "Items (spans, data points, log records) stored in the DLQ, "
                                   "by class: spilled at queue fill, by the exporter (breaker "
                                   "open, retries given up) or at shutdown.", &s);
    s.cells = b->dlq_replayed_items;
    if (!rc) rc = metrics_register(m, "spillway_dlq_replayed_items_total", METRICS_COUNTER,
                                   "Items replayed from the DLQ and acknowledged, by class.", &s);
    return rc;
}

dlq_metrics *dlq_metrics_get(sw_metrics *m)
{
    return m ? metrics_block(m, "dlq", sizeof(dlq_metrics), dlq_metrics_init) : NULL;
}
