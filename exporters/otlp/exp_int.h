/* exp_int.h — internals shared by the exporter's files (not for other modules).
 *
 *   exp_main.c      lifecycle, export thread, pump (pop -> batch -> send), drain
 *   exp_batch.c     batches: build, seal (compress), acknowledge, give up
 *   exp_http.c      endpoint, TLS context, connection pool, request/response
 *   exp_retry.c     pure retry policy          exp_response.c  pure body parsing
 *
 * Everything here runs on the export thread, except exp_new/exp_free (main
 * thread, while the export thread is not running).
 *
 * A batch moves OPEN -> READY -> FLIGHT -> (BACKOFF -> READY -> FLIGHT)* -> DONE.
 * `active` counts batches in FLIGHT or BACKOFF and never exceeds
 * max_in_flight; the pump pops from the queue only while no sealed batch
 * waits for a free slot, so memory held here stays below about
 * (max_in_flight + 2 * SIG_COUNT) * batch.max_bytes (plus compressed copies).
 * Request bodies reference batch memory (evbuffer_add_reference) instead of
 * copying it; `refs` counts those references and a DONE batch is freed when
 * the last one is released (libevent may release them after the request
 * callback, or when a connection is freed).
 */
#ifndef SW_EXP_INT_H
#define SW_EXP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "exporters/otlp/exp_retry.h"
#include "exporters/otlp/exporter.h"
#include "runtime/buf.h"
#include "runtime/item.h"

struct event;
struct event_base;
struct evdns_base;
struct evhttp_connection;
struct ssl_ctx_st;

#define EXP_MAX_RESPONSE_BODY (1u << 20) /* larger answers fail the request */
#define EXP_LOG_MSG_LEN 200              /* bytes of an error message logged */

typedef enum {
    EXP_B_OPEN = 0, /* accepting items; batch timer pending */
    EXP_B_READY,    /* sealed, waiting for a connection slot */
    EXP_B_FLIGHT,   /* request in flight */
    EXP_B_BACKOFF,  /* retry timer pending */
    EXP_B_DONE,     /* outcome counted; freed when refs reaches 0 */
} exp_batch_state;

typedef struct exp_batch exp_batch;
struct exp_batch {
    exporter *e;
    exp_batch *next;          /* ready list */
    exp_batch *lprev, *lnext; /* live list (not DONE) or zombie list (DONE, refs > 0) */
    sw_signal sig;
    exp_batch_state state;
    item *head, *tail;        /* owned items, in arrival order */
    uint32_t n_items;
    uint64_t n_records;       /* sum of item->count */
    size_t raw_len;           /* sum of item->len */
    buf body;                 /* compressed body; empty: items are sent as they are */
    int encoding;             /* cfg_compression of body */
    int64_t first_attempt_ns; /* 0 before the first send */
    uint32_t attempt;         /* retries so far */
    struct event *timer;      /* batch timeout, then retry backoff; NULL once DONE */
    int refs;                 /* references held by libevent buffers */
};

typedef struct exp_conn {
    exporter *e;
    struct evhttp_connection *evcon; /* NULL: not created yet */
    exp_batch *batch;                /* request in flight, or NULL (idle) */
    int dead;                        /* closed or failed: replace before reuse */
    int req_error;                   /* evhttp_request_error of the request, -1 none */
    int nodelay;                     /* TCP_NODELAY set on its socket */
} exp_conn;

typedef struct exp_endpoint {
    int tls;
    char *host;                /* without brackets */
    uint16_t port;
    char *host_header;         /* "host[:port]" */
    char *path[SIG_COUNT];     /* "<prefix>/v1/traces", ... */
} exp_endpoint;

struct exporter {
    const cfg *c;              /* borrowed */
    apq *q;                    /* borrowed */
    sw_metrics *m;             /* borrowed */
    exp_endpoint ep;
    exp_retry_policy retry;
    struct event_base *base;
    struct evdns_base *dns;    /* may be NULL: blocking resolution */
    struct ssl_ctx_st *ssl;    /* https only */
    exp_conn *conns;           /* max_in_flight slots */
    uint32_t n_conns;

    exp_batch *open[SIG_COUNT];
    exp_batch *ready_head, *ready_tail;
    exp_batch *live;           /* every batch not DONE */
    exp_batch *zombies;        /* DONE batches still referenced */
    uint32_t active;           /* batches in FLIGHT or BACKOFF */

    struct event *wake_ev, *pump_ev, *stop_ev, *deadline_ev;
    pthread_t thread;
    int started;               /* thread created */
    int joined;                /* thread joined by exp_stop */
    int stopped;               /* export thread: loop finished */
    _Atomic int healthy;
    _Atomic uint64_t stop_timeout_ms; /* written by exp_stop before stop_ev */
    int draining;
    int64_t deadline_ns;
    uint64_t undelivered_items;       /* dropped since the stop began */
    uint64_t undelivered_records;
    uint64_t dropped_items_total;     /* for log lines */
    uint64_t rng;
};

/* exp_main.c */
void exp_schedule_pump(exporter *e);
/* Uniform in [0, 1), for jitter. */
double exp_random(exporter *e);
/* 1 for header names the exporter sets itself (custom values ignored). */
int exp_header_reserved(const char *name);

/* exp_batch.c */
exp_batch *exp_batch_new(exporter *e, sw_signal sig);
/* Ready list (FIFO; retries are pushed to the front). */
void exp_ready_push(exporter *e, exp_batch *b, int front);
exp_batch *exp_ready_pop(exporter *e);
/* Appends it (takes ownership). */
void exp_batch_append(exp_batch *b, item *it);
/* Adds a popped item to its signal's open batch, sealing as needed. Takes
 * ownership of it. 0 or SW_ENOMEM (it is then given up). */
int exp_batch_add(exporter *e, item *it);
/* OPEN -> READY: compresses and appends to the ready list. */
void exp_batch_seal(exporter *e, exp_batch *b);
void exp_batch_set_state(exporter *e, exp_batch *b, exp_batch_state st);
/* Adds references to the body into out (a struct evbuffer). 0 or -1. */
int exp_batch_attach_body(exp_batch *b, void *out);
/* 2xx: observes latencies, counts SENT, done. */
void exp_batch_ack(exporter *e, exp_batch *b);
/* Permanent refusal: counts REJECTED, done. */
void exp_batch_reject(exporter *e, exp_batch *b);
/* Retryable failure: schedules the retry, or gives up. */
void exp_batch_retry(exporter *e, exp_batch *b, const char *retry_after);
/* The give-up hook: counts the batch's items DROPPED, logs, done. This is
 * where a dead-letter queue takes the items instead. */
void exp_give_up(exporter *e, exp_batch *b, const char *why);
/* Frees a batch regardless of refs. */
void exp_batch_destroy(exp_batch *b);
/* exp_free only: destroys live batches (before event_base_free, they own
 * timers) or, with zombies != 0, DONE batches libevent never released. */
void exp_batch_free_all(exporter *e, int zombies);

/* exp_http.c */
int exp_endpoint_parse(const char *url, exp_endpoint *ep);
void exp_endpoint_destroy(exp_endpoint *ep);
int exp_http_init(exporter *e);     /* TLS context, DNS base, slots */
/* Frees every connection; in-flight requests are abandoned (their
 * batches must be DONE or handled by the caller). */
void exp_http_close_all(exporter *e);
void exp_http_destroy(exporter *e); /* after the loop ended */
/* Frees dead idle connections. */
void exp_http_reap(exporter *e);
/* READY -> FLIGHT. A failure to even start the request is handled as a
 * connection error (the batch goes to retry). */
void exp_http_send(exporter *e, exp_batch *b);

#endif
