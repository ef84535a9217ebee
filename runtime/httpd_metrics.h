/* httpd_metrics.h — self-metrics of an HTTP server (runtime/httpd.h).
 *
 * One block per server in the metrics registry (runtime/metrics.h), keyed
 * by the server's label value (server="otlp_http", server="telemetry"):
 * connections open, idle ones evicted at the connection cap, accept pauses
 * at the cap with none idle or out of descriptors, head deadlines, bodies
 * slower than min_body_rate, requests refused by the server itself. Every server adds its series to the same
 * spillway_http_* families. Counted on the server's thread; relaxed
 * atomics. A server built again with the same name counts on.
 */
#ifndef SW_HTTPD_METRICS_H
#define SW_HTTPD_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "runtime/metrics.h"

/* Why the server refused a request on its own (label reason). */
typedef enum {
    HTTPD_REFUSE_BUSY = 0,   /* over the memory budget: 503 */
    HTTPD_REFUSE_NOT_HTTP,   /* not HTTP/1.x (TLS, HTTP/2, junk): 400/505 */
    HTTPD_REFUSE_COUNT
} httpd_refuse_reason;

typedef struct httpd_metrics {
    _Atomic int64_t connections;          /* open now */
    _Atomic uint64_t evicted;             /* idle connections closed at the cap */
    _Atomic uint64_t cap_pauses;          /* at the cap, none idle: accepting paused */
    _Atomic uint64_t accept_pauses;       /* accept(2) out of descriptors or memory */
    _Atomic uint64_t head_timeouts;       /* connections closed by the head deadline */
    _Atomic uint64_t body_timeouts;       /* connections closed: body under min_body_rate */
    _Atomic uint64_t refused[HTTPD_REFUSE_COUNT];
    int registered;                       /* 1 series registered, -1 that failed */
    char labels[64];                      /* server="<name>" */
} httpd_metrics;

/* The block of server `server` (a static string, e.g. "otlp_http") in m
 * (borrowed), registering its series on first use; owned by m. NULL if m
 * is NULL, the name does not fit, or out of memory. Call from one thread
 * at a time per server name (start-up). */
httpd_metrics *httpd_metrics_get(sw_metrics *m, const char *server);

#endif
