/* httpd_metrics.c — see httpd_metrics.h. */
#include "runtime/httpd_metrics.h"

#include <stdio.h>

static const char *const refuse_names[HTTPD_REFUSE_COUNT] = {"busy", "not_http"};

static int register_server(sw_metrics *m, httpd_metrics *b)
{
    metrics_source s = {.kind = METRICS_SRC_I64, .cells = &b->connections,
                        .const_labels = b->labels};
    int rc = metrics_register(m, "spillway_http_connections", METRICS_GAUGE,
                              "Connections open on spillway's HTTP servers, by server.", &s);
    s.kind = METRICS_SRC_U64;
    s.cells = &b->evicted;
    if (!rc) rc = metrics_register(m, "spillway_http_connections_evicted_total", METRICS_COUNTER,
                                   "Idle connections closed to make room for a new client at "
                                   "the connection cap, by server.", &s);
    s.cells = &b->cap_pauses;
    if (!rc) rc = metrics_register(m, "spillway_http_connection_cap_pauses_total",
                                   METRICS_COUNTER,
                                   "Accept pauses at the connection cap with no idle connection "
                                   "to evict (new clients wait in the kernel's backlog), by "
                                   "server.", &s);
    s.cells = &b->accept_pauses;
    if (!rc) rc = metrics_register(m, "spillway_http_accept_pauses_total", METRICS_COUNTER,
                                   "Accepting paused because accept(2) ran out of file "
                                   "descriptors or memory, by server.", &s);
    s.cells = &b->head_timeouts;
    if (!rc) rc = metrics_register(m, "spillway_http_head_timeouts_total", METRICS_COUNTER,
                                   "Connections closed because a request head did not arrive "
                                   "in time (slow or stalled clients), by server.", &s);
    s.cells = &b->body_timeouts;
    if (!rc) rc = metrics_register(m, "spillway_http_body_timeouts_total", METRICS_COUNTER,
                                   "Connections closed because a request body arrived slower "
                                   "than min_body_rate (slow POST), by server.", &s);
    s.cells = b->refused;
    s.dims[0] = (metrics_dim){.label = "reason", .n = HTTPD_REFUSE_COUNT, .values = refuse_names};
    if (!rc) rc = metrics_register(m, "spillway_http_refused_requests_total", METRICS_COUNTER,
                                   "Requests the HTTP server refused on its own, by server and "
                                   "reason (busy: over the memory budget, 503; not_http: not "
                                   "HTTP/1.x, 400/505).", &s);
    return rc;
}

httpd_metrics *httpd_metrics_get(sw_metrics *m, const char *server)
{
    if (!m || !server) return NULL;
    httpd_metrics *b = metrics_block(m, server, sizeof *b, NULL);
    if (!b) return NULL;
    if (!b->registered) {
        int n = snprintf(b->labels, sizeof b->labels, "server=\"%s\"", server);
        int ok = n > 0 && (size_t)n < sizeof b->labels && register_server(m, b) == 0;
        b->registered = ok ? 1 : -1;
    }
    return b->registered > 0 ? b : NULL;
}
