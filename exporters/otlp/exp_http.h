/* exp_http.h — the exporter's HTTP client: the endpoint and a pool of
 * keep-alive connections to it.
 *
 * A request is a signal (its path), a body encoding, a body the caller
 * attaches and a completion: exp_http_send(pool, req, done). The pool knows
 * nothing of batches, retries or the breaker: it picks an idle connection
 * (replacing one that failed or that the upstream closed; libevent 2.1
 * cannot reconnect a TLS bufferevent it already used), adds the headers
 * (Host, User-Agent, Content-Type, Content-Encoding, the configured custom
 * headers), sends, and calls done exactly once with the answer — or, when
 * the pool is closed first, abandoned instead. exporters.otlphttp.timeout
 * is a deadline for each whole request (connect, send, complete answer),
 * kept by a timer per connection: a trickled answer or a flood of
 * `100 Continue` lines ends the request at the deadline as "no answer".
 * https goes through runtime/tls.h (verification, SNI). Counts requests in
 * flight in exp_metrics.exp_in_flight (exp_metrics.h).
 *
 * Thread: the event_base's (the export thread); new/free while that loop
 * does not run. Ownership: the pool owns its connections, TLS context and
 * DNS base; cfg and metrics are borrowed; a request's body stays the
 * caller's (attached by reference) and its arg is opaque.
 */
#ifndef SW_EXP_HTTP_H
#define SW_EXP_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "config/cfg.h"
#include "exporters/otlp/exp_response.h"
#include "runtime/item.h"
#include "exporters/otlp/exp_metrics.h"

struct event_base;

#define EXP_MAX_RESPONSE_BODY (1u << 20) /* larger answers fail the request */

typedef struct exp_endpoint {
    int tls;
    char *host;                /* without brackets */
    uint16_t port;
    char *host_header;         /* "host[:port]" */
    char *path[SIG_COUNT];     /* "<prefix>/v1/traces", ... */
} exp_endpoint;

/* http[s]://host[:port][/prefix] -> ep (owned strings). 0 or SW_EINVAL /
 * SW_ENOMEM. */
int exp_endpoint_parse(const char *url, exp_endpoint *ep);
void exp_endpoint_destroy(exp_endpoint *ep);
/* 1 for header names the exporter sets itself (custom values ignored). */
int exp_header_reserved(const char *name);

/* The answer to one request; borrowed, valid during the callback. */
typedef struct exp_answer {
    int code;                  /* HTTP status; 0: no answer */
    const char *retry_after;   /* its Retry-After header, or NULL */
    const uint8_t *body;       /* NULL when empty or no answer */
    size_t body_len;
    exp_body_type type;        /* of body, from Content-Type */
} exp_answer;

typedef struct exp_request {
    sw_signal sig;
    int encoding;              /* cfg_compression of the body */
    /* Adds the body to out (a struct evbuffer), by reference or copy. 0
     * or -1. */
    int (*attach)(void *arg, void *out);
    /* The answer (exactly once, possibly before exp_http_send returns). */
    void (*done)(void *arg, const exp_answer *a);
    void *arg;
} exp_request;

typedef struct exp_http exp_http;

/* Returns an owned pool for c->exporter (endpoint, TLS, max_in_flight,
 * timeout, headers), or NULL (logged). c, m (the exporter's counters, not
 * NULL) and base are borrowed. */
exp_http *exp_http_new(struct event_base *base, const cfg *c, exp_metrics *m);
/* Closes everything (abandoning requests in flight without a callback).
 * NULL-safe. */
void exp_http_free(exp_http *p);
/* Connections (max_in_flight): at most this many requests at once. */
uint32_t exp_http_size(const exp_http *p);
/* Sends r (copied) on an idle connection; the caller keeps count of what
 * is in flight and never sends more than exp_http_size at once. A request
 * that cannot even start is answered at once as "no answer". */
void exp_http_send(exp_http *p, const exp_request *r);
/* Frees idle connections that failed. */
void exp_http_reap(exp_http *p);
/* Cancels every request in flight and closes every connection; for each
 * request abandoned(ctx, its arg) runs instead of its done. */
void exp_http_close_all(exp_http *p, void (*abandoned)(void *ctx, void *arg), void *ctx);

/* ---- reloads ---------------------------------------------------------------
 * A reload that changes what a pool depends on gets a new pool; the old one
 * is retired: its requests in flight keep their connections until after_ms
 * (their own deadline plus a margin), then it is closed and freed, and each
 * request still in flight goes to leftover(ctx, its arg) instead of done. */
typedef void (*exp_http_leftover_fn)(void *ctx, void *arg);

/* 1 when a pool built for a does not serve b: endpoint, headers, timeout,
 * max_in_flight or TLS differ. */
int exp_http_cfg_differs(const cfg *a, const cfg *b);
/* Retires p (takes ownership): see above. 0, or SW_ENOMEM with p still
 * the caller's. */
int exp_http_retire(exp_http *p, uint64_t after_ms, exp_http_leftover_fn leftover, void *ctx);
/* Closes every pool still retiring on base now (the loop ends, or before
 * the base is freed); their requests go to abandoned(ctx given to
 * exp_http_retire, arg). */
void exp_http_retired_close_all(struct event_base *base, exp_http_leftover_fn abandoned);

#endif
