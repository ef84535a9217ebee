/* apq_metrics.c — see apq_metrics.h. */
#include "queue/apq_metrics.h"

#include <stddef.h>

static void render_fill(metrics_out *o, const char *name, const void *arg)
{
    const apq_metrics *b = arg;
    int64_t used = 0;
    for (int k = 0; k < CLASS_COUNT; k++)
        used += atomic_load_explicit(&b->queue_bytes[k], memory_order_relaxed);
    uint64_t max = atomic_load_explicit(&b->queue_max_bytes, memory_order_relaxed);
    metrics_out_double(o, name, NULL, (max && used > 0) ? (double)used / (double)max : 0.0);
}

static int apq_metrics_init(sw_metrics *m, void *block)
{
    apq_metrics *b = block;
    metrics_source fill = {.kind = METRICS_SRC_FN, .fn = render_fill, .arg = b};
    metrics_source s = {.kind = METRICS_SRC_I64, .dims = {metrics_dim_class()}};
    int rc = metrics_register(m, "spillway_queue_fill_ratio", METRICS_GAUGE,
                              "Bytes in the in-memory queue divided by queue.max_bytes "
                              "(spill at 0.95).", &fill);
    s.cells = b->queue_items;
    if (!rc) rc = metrics_register(m, "spillway_queue_items", METRICS_GAUGE,
                                   "Items in the in-memory queue, by class.", &s);
    s.cells = b->queue_bytes;
    if (!rc) rc = metrics_register(m, "spillway_queue_bytes", METRICS_GAUGE,
                                   "Bytes in the in-memory queue, by class.", &s);
    s.kind = METRICS_SRC_U64;
    s.cells = b->queue_dequeued;
    if (!rc) rc = metrics_register(m, "spillway_queue_dequeued_total", METRICS_COUNTER,
                                   "Items taken from the queue by the exporter, by class.", &s);
    s.cells = b->queue_spilled;
    if (!rc) rc = metrics_register(m, "spillway_queue_spilled_total", METRICS_COUNTER,
                                   "Items sent to the DLQ instead of memory, by class.", &s);
    if (!rc) rc = metrics_register_u64(m, "spillway_queue_max_bytes", METRICS_GAUGE,
                                       "Capacity of the in-memory queue in bytes "
                                       "(queue.max_bytes).", &b->queue_max_bytes);
    return rc;
}

apq_metrics *apq_metrics_get(sw_metrics *m)
{
    return m ? metrics_block(m, "queue_apq", sizeof(apq_metrics), apq_metrics_init) : NULL;
}
