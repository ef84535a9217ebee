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
 *
 * Several streams (one pool and path per signal) share the schedule: the
 * requests are interleaved by their weights (lg_mix), request seq being
 * request `sub` of its stream, so the bytes of every request depend only on
 * the pools and seq. With record_ok, the sequence numbers of the requests
 * answered 2xx are kept (for --verify). With grpc, each connection is an
 * HTTP/2 connection with one unary call in flight (lg_h2.h).
 */
#ifndef SW_LG_CLIENT_H
#define SW_LG_CLIENT_H

#include <stdint.h>

#include "testing/loadgen/lg_gen.h"
#include "testing/loadgen/lg_hist.h"

typedef struct lg_run_opts {
    const char *host;             /* borrowed */
    uint16_t port;
    const char *content_type;     /* borrowed */
    const char *content_encoding; /* NULL for none; borrowed */
    double rate;                  /* items/s; 0 = closed loop */
    uint32_t batch;               /* items per request */
    uint32_t connections;         /* >= 1 */
    double duration_s;            /* send window when count == 0 */
    uint64_t count;               /* requests to send; 0 = use duration_s */
    double timeout_s;             /* per request, and for the final drain */
    int progress;                 /* live line on stderr every second */
    int record_ok;                /* keep the seq of every 2xx request in lg_result */
    int grpc;                     /* OTLP/gRPC (h2c, lg_h2.h) instead of HTTP/1.1: stream
                                   * paths are gRPC methods, content_encoding becomes
                                   * grpc-encoding; status OK counts as 200, others as
                                   * 400 / 413 / 503 / 500 in by_status */
} lg_run_opts;

typedef struct lg_stream {
    const lg_pool *pool;          /* borrowed */
    const char *path;             /* e.g. "/v1/traces"; borrowed */
    uint32_t weight;              /* requests per round, 1..1000 */
} lg_stream;

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
    uint64_t stream_items_sent[SIG_COUNT], stream_items_ok[SIG_COUNT]; /* per stream */
    uint64_t *ok_seq;      /* record_ok: seq of each 2xx request, in answer order; owned */
    int64_t *ok_ms;        /* record_ok: wall-clock time (Unix ms) of each of those answers,
                            * parallel to ok_seq; owned */
    size_t n_ok_seq, cap_ok_seq;
    int ok_seq_incomplete; /* record_ok: out of memory, some were not kept */
} lg_result;

/* Runs the load against o->host:o->port with the requests of streams[0..n)
 * (borrowed; n <= SIG_COUNT, all pools with o->batch items per request).
 * Fills *res (zeroed first; release with lg_result_destroy). 0, SW_EINVAL
 * or SW_ENOMEM / SW_EIO when the event loop or connections cannot be set
 * up; the run's own failures (refusals, connection errors) are counted in
 * *res, not returned. */
int lg_run(const lg_run_opts *o, const lg_stream *streams, uint32_t n, lg_result *res);
/* Frees what *res owns (ok_seq, ok_ms). */
void lg_result_destroy(lg_result *res);

#endif
