/* fl_metrics.c — see fl_metrics.h. */
#include "receivers/filelog/fl_metrics.h"

#include <stddef.h>

static void render_save_lag(metrics_out *o, const char *name, const void *arg)
{
    const fl_metrics *b = arg;
    int64_t ns = atomic_load_explicit(&b->fl_save_lag_ns, memory_order_relaxed);
    metrics_out_double(o, name, NULL, (double)ns / 1e9);
}

/* The unlabelled counters, in page order, each at its offset in the block. */
static const struct {
    const char *name, *help;
    size_t off;
} counters[] = {
    {"spillway_filelog_read_bytes_total", "Bytes read from log files.",
     offsetof(fl_metrics, fl_bytes_read)},
    {"spillway_filelog_read_lines_total", "Lines read from log files.",
     offsetof(fl_metrics, fl_lines_read)},
    {"spillway_filelog_records_total", "Log records handed to the pipeline.",
     offsetof(fl_metrics, fl_records)},
    {"spillway_filelog_parse_errors_total",
     "Malformed lines, kept as raw text with a parse-error attribute.",
     offsetof(fl_metrics, fl_parse_errors)},
    {"spillway_filelog_truncated_records_total", "Records cut at max_record_size.",
     offsetof(fl_metrics, fl_truncated_records)},
    {"spillway_filelog_rotations_total", "Files rotated by rename.",
     offsetof(fl_metrics, fl_rotations)},
    {"spillway_filelog_truncations_total", "Files truncated in place (copytruncate).",
     offsetof(fl_metrics, fl_truncations)},
    {"spillway_filelog_position_saves_total", "Position files written.",
     offsetof(fl_metrics, fl_position_saves)},
};
static const struct {
    const char *name, *help;
    size_t off;
} late_counters[] = {
    {"spillway_filelog_checkpoint_fallbacks_total",
     "Corrupt position generations skipped at start (an older one was used).",
     offsetof(fl_metrics, fl_checkpoint_fallbacks)},
    {"spillway_filelog_backpressure_pauses_total",
     "Times reading paused because the pipeline refused data.",
     offsetof(fl_metrics, fl_backpressure_pauses)},
    {"spillway_filelog_delivery_failures_total",
     "Requests whose records were dropped downstream (position held).",
     offsetof(fl_metrics, fl_delivery_failures)},
};

static const _Atomic uint64_t *at(const fl_metrics *b, size_t off)
{
    return (const _Atomic uint64_t *)((const char *)b + off);
}

static int fl_metrics_init(sw_metrics *m, void *block)
{
    fl_metrics *b = block;
    int rc = metrics_register_i64(m, "spillway_filelog_files_watched",
                                  "Files the filelog receiver has open.", &b->fl_files_watched);
    for (size_t i = 0; !rc && i < sizeof counters / sizeof counters[0]; i++)
        rc = metrics_register_u64(m, counters[i].name, METRICS_COUNTER, counters[i].help,
                                  at(b, counters[i].off));
    metrics_source lag = {.kind = METRICS_SRC_FN, .fn = render_save_lag, .arg = b};
    if (!rc) rc = metrics_register(m, "spillway_filelog_position_save_lag_seconds", METRICS_GAUGE,
                                   "At the last save: time since the first position update it "
                                   "saved.", &lag);
    for (size_t i = 0; !rc && i < sizeof late_counters / sizeof late_counters[0]; i++)
        rc = metrics_register_u64(m, late_counters[i].name, METRICS_COUNTER, late_counters[i].help,
                                  at(b, late_counters[i].off));
    return rc;
}

fl_metrics *fl_metrics_get(sw_metrics *m)
{
    return m ? metrics_block(m, "receiver_filelog", sizeof(fl_metrics), fl_metrics_init) : NULL;
}
