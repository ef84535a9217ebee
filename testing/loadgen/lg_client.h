/* lg_client.h — open-loop OTLP/HTTP sender of the load generator.
 *
 * lg_run() owns one event_base on the calling thread and a fixed set of
 * keep-alive evhttp connections, each with at most one request in flight.
 * Request i is scheduled at start + i * batch / rate (open loop). When it is
 * due and every connection is busy it waits in a backlog (counted as late)
 * and goes out as soon as a connection frees; its latency is measured from
 * its scheduled time, so a slow server shows up as latency, not as a lower
 * offered rate. rate 0 means closed loop: each connection sends its next
 * request as soon as the previous one is answered. SIGINT ends the send
 * phase early; in-flight requests are then awaited up to the timeout.
 */
#ifndef SW_LG_CLIENT_H
#define SW_LG_CLIENT_H

#include <stdint.h>

#include "testing/loadgen/lg_gen.h"
#include "testing/loadgen/lg_hist.h"

typedef struct lg_run_opts {
    const char *host;             /* borrowed */
    uint16_t port;
    const char *path;             /* e.g. "/v1/traces"; borrowed */
    const char *content_type;     /* borrowed */
    const char *content_encoding; /* NULL for none; borrowed */
    double rate;                  /* items/s; 0 = closed loop */
    uint32_t batch;               /* items per request */
    uint32_t connections;         /* >= 1 */
    double duration_s;            /* send window when count == 0 */
    uint64_t count;               /* requests to send; 0 = use duration_s */
    double timeout_s;             /* per request, and for the final drain */
    int progress;                 /* live line on stderr every second */
} lg_run_opts;

#define LG_MAX_STATUS 600

typedef struct lg_result {
    uint64_t planned;      /* requests the schedule asked for (0 = unbounded) */
    uint64_t sent, ok, refused, conn_errors, unanswered;
    uint64_t late;         /* requests that found every connection busy when due */
    uint64_t unsent;       /* due requests still in the backlog when sending stopped */
    uint64_t items_sent, items_ok, bytes_sent;
    uint64_t by_status[LG_MAX_STATUS]; /* answered requests by HTTP status */
    double send_s;         /* length of the send window actually used */
    double elapsed_s;      /* start to the last answer */
    lg_hist lat;           /* answered requests: scheduled time -> response */
} lg_result;

/* Runs the load against o->host:o->port with bodies from pool (borrowed).
 * Fills *res (zeroed first). 0, SW_EINVAL or SW_ENOMEM / SW_EIO when the
 * event loop or connections cannot be set up; the run's own failures
 * (refusals, connection errors) are counted in *res, not returned. */
int lg_run(const lg_run_opts *o, const lg_pool *pool, lg_result *res);

#endif
