/* evbase.c — see evbase.h. */
#include "runtime/evbase.h"

#include <event2/event.h>

struct event_base *evbase_new(void)
{
    struct event_config *cfg = event_config_new();
    struct event_base *base = NULL;
    if (cfg && event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST) == 0)
        base = event_base_new_with_config(cfg);
    if (cfg) event_config_free(cfg);
    return base ? base : event_base_new();
}
