/* cfg_reload_metrics.c — see cfg_reload_metrics.h. */
#include "config/cfg_reload_metrics.h"

#include <stddef.h>

static const char *const result_names[CFG_RELOAD_RESULTS] = {"success", "failure"};

static int reload_metrics_init(sw_metrics *m, void *block)
{
    cfg_reload_metrics *b = block;
    metrics_dim result = {.label = "result", .n = CFG_RELOAD_RESULTS, .values = result_names};
    metrics_source s = {.kind = METRICS_SRC_U64, .cells = b->config_reloads, .dims = {result}};
    return metrics_register(m, "spillway_config_reloads_total", METRICS_COUNTER,
                            "Configuration reloads on SIGHUP, by result (failure: the old one "
                            "stays).", &s);
}

cfg_reload_metrics *cfg_reload_metrics_get(sw_metrics *m)
{
    return m ? metrics_block(m, "config_reload", sizeof(cfg_reload_metrics), reload_metrics_init)
             : NULL;
}
