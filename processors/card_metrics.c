/* card_metrics.c — see card_metrics.h. */
#include "processors/card_metrics.h"

#include <stddef.h>

#include "processors/card_proc.h"

static int card_metrics_init(sw_metrics *m, void *block)
{
    card_metrics *b = block;
    int rc = metrics_register_i64(m, "spillway_cl_keys_used",
                                  "Series slots in use in the cardinality limiter's table.",
                                  &b->cl_keys_used);
    if (!rc) rc = metrics_register_u64(m, "spillway_cl_aggregated_samples_total", METRICS_COUNTER,
                                       "Data points of new series admitted after high-entropy "
                                       "labels were removed.", &b->cl_aggregated_samples);
    if (!rc) rc = metrics_register_u64(m, "spillway_cl_dropped_samples_total", METRICS_COUNTER,
                                       "Data points of new series dropped by the cardinality "
                                       "limiter.", &b->cl_dropped_samples);
    if (!rc) rc = metrics_register_i64(m, "spillway_cl_max_keys",
                                       "Series slots of the cardinality limiter's table "
                                       "(processors.cardinality.max_keys; 0 when it is off).",
                                       &b->cl_max_keys);
    b->cl_proc.bounds_ns = card_latency_bounds_ns;
    b->cl_proc.n = CARD_LAT_BUCKETS;
    metrics_source s = {.kind = METRICS_SRC_HIST, .cells = &b->cl_proc};
    if (!rc) rc = metrics_register(m, "spillway_cl_processing_seconds", METRICS_HISTOGRAM,
                                   "Cardinality limiter processing time per metrics request.", &s);
    return rc;
}

card_metrics *card_metrics_get(sw_metrics *m)
{
    return m ? metrics_block(m, "processor_cardinality", sizeof(card_metrics), card_metrics_init)
             : NULL;
}
