/* cfg_reload_metrics.h — self-metrics of configuration reloads (SIGHUP).
 *
 * One block per process in the metrics registry (runtime/metrics.h),
 * counted by main's reload handler: spillway_config_reloads_total{result}.
 * Relaxed atomics.
 */
#ifndef SW_CFG_RELOAD_METRICS_H
#define SW_CFG_RELOAD_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/metrics.h"

typedef enum {
    CFG_RELOAD_SUCCESS = 0,  /* the new configuration runs */
    CFG_RELOAD_FAILURE,      /* refused: the old one stays */
    CFG_RELOAD_RESULTS
} cfg_reload_result;

typedef struct cfg_reload_metrics {
    _Atomic uint64_t config_reloads[CFG_RELOAD_RESULTS];
} cfg_reload_metrics;

/* The block in m (borrowed), registering its family on first use; owned
 * by m. NULL if m is NULL or out of memory. */
cfg_reload_metrics *cfg_reload_metrics_get(sw_metrics *m);

#endif
