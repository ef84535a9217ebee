/* exp_int.h — internals shared by the exporter's files (not for other modules).
 *
 *   exp_main.c      lifecycle, export thread, pump (pop -> batch -> send), drain
 *   exp_batch.c     batches: build, seal (compress), acknowledge, give up
 *   exp_http.c      endpoint, TLS context, connection pool, request/response
 *   exp_circuit.c   the circuit breaker wired in: tickets, outcomes, probe timer
 *   exp_spill.c     the DLQ port: spills, completions, the backlog, stop wait
 *   exp_reject.c    permanent refusals: 413 splitting, the DLQ's rejected area
 *   exp_replay.c    the replay thread and its hand-off to the export thread
 *   exp_oneshot.c   exp_send_blocking (offline replay; its own event_base)
 *   exp_retry.c     pure retry policy          exp_response.c  pure body parsing
 *   exp_breaker.c   pure circuit breaker state machine
 *
 * Everything here runs on the export thread, except exp_new/exp_free/
 * exp_start/exp_stop (main thread, while the export thread is not running
 * or through its events) and the replay thread's own loop (exp_replay.c).
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

#include "dlq/dlq.h"
#include "exporters/otlp/exp_breaker.h"
#include "exporters/otlp/exp_retry.h"
#include "exporters/otlp/exporter.h"
#include "runtime/buf.h"
#include "runtime/codec.h"
#include "runtime/fifo.h"
#include "runtime/item.h"

struct event;
struct event_base;
struct evdns_base;
struct evhttp_connection;
struct ssl_ctx_st;
struct bufferevent;
typedef struct exp_replay exp_replay;
typedef struct exp_rej exp_rej;

/* Items waiting to be appended to the DLQ because its ring was full, in
 * order; appended again as completions free room (export thread). */
typedef struct exp_backlog {
    sw_fifo items;             /* item, linked through item->next */
    dlq_done_fn cb;            /* completion of each append; also called with
                                  the error when an item is finally refused */
    void *arg;
} exp_backlog;

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
    brk_ticket ticket;        /* of the attempt in flight (BRK_DENIED: none) */
    int replay;               /* items come from the DLQ (exp_replay.c) */
    dlq_pos rp_last;          /* replay: position of the last item */
};

typedef struct exp_conn {
    exporter *e;
    struct evhttp_connection *evcon; /* NULL: not created yet */
    exp_batch *batch;                /* request in flight, or NULL (idle) */
    struct evhttp_request *req;      /* its request (libevent's), or NULL */
    struct event *deadline;          /* timeout for the whole request */
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
    codec_cctx *cctx;          /* owned: one compression context, reused per batch */
    struct event_base *base;
    struct evdns_base *dns;    /* may be NULL: blocking resolution */
    struct ssl_ctx_st *ssl;    /* https only */
    exp_conn *conns;           /* max_in_flight slots */
    uint32_t n_conns;

    exp_batch *open[SIG_COUNT];
    sw_fifo ready;             /* sealed batches waiting for a slot (exp_batch.next) */
    exp_batch *live;           /* every batch not DONE */
    exp_batch *zombies;        /* DONE batches still referenced */
    uint32_t active;           /* batches in FLIGHT or BACKOFF */

    struct event *wake_ev, *pump_ev, *stop_ev, *deadline_ev;
    pthread_t thread;
    int started;               /* thread created */
    int failed;                /* exp_start failed: only exp_free is left */
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

    /* circuit breaker (exp_circuit.c) */
    brk_circuit brk;
    struct event *brk_ev;      /* OPEN: fires when the probe may go */
    _Atomic int circuit;       /* brk_state, published for the replay thread */

    /* dead-letter queue (exp_spill.c); all NULL without exp_set_dlq() */
    dlq *dlq;                  /* borrowed */
    dlq_port *port;            /* owned; appends and completions of this thread */
    struct event *port_ev;
    exp_backlog backlog;       /* give-ups waiting for room in the DLQ ring */
    uint64_t spilled_items_total;      /* appends completed (stored) */
    uint64_t spill_failed_items_total; /* refused or failed: dropped */
    size_t spill_unconfirmed;  /* stop: appends still pending after the wait */
    int dlq_down;              /* an append failed: hold items, retry later */
    int dlq_probe_out;         /* the retry's one append is pending */
    uint64_t dlq_backoff_ms;   /* current retry interval */
    int64_t dlq_retry_ns;      /* when the next probe may go */
    struct event *dlq_retry_ev;
    int abandon;               /* stop deadline: replay batches are let go */
    sw_fifo rej;               /* exp_rej: refused items waiting for ring room */
    uint64_t rejected_kept_total;      /* refused items stored in rejected/ */
    uint64_t rejected_lost_total;      /* refused items it could not keep */
    exp_replay *rp;            /* owned; NULL without a DLQ */
};

/* exp_main.c */
void exp_schedule_pump(exporter *e);
/* Counts items that are neither delivered nor stored (drop counters, the
 * stop's undelivered count); the caller logs. */
void exp_count_dropped(exporter *e, sw_signal sig, uint64_t items, uint64_t records);
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
/* Takes the items out of b as an owned chain (it->next links) and leaves b
 * empty. Items whose bytes a request body still references are copied
 * instead (the copies are returned; the originals stay with b). A copy
 * that cannot be made is counted dropped. */
item *exp_batch_take_items(exporter *e, exp_batch *b);
/* Counts nothing; leaves every list; frees b now or when libevent lets go. */
void exp_batch_done(exporter *e, exp_batch *b);
/* Adds a popped item to its signal's open batch, sealing as needed. Takes
 * ownership of it. 0 or SW_ENOMEM (it is then given up). */
int exp_batch_add(exporter *e, item *it);
/* OPEN -> READY: compresses and appends to the ready list (front: put
 * first in line). */
void exp_batch_seal(exporter *e, exp_batch *b);
void exp_batch_seal_at(exporter *e, exp_batch *b, int front);
void exp_batch_set_state(exporter *e, exp_batch *b, exp_batch_state st);
/* Adds references to the body into out (a struct evbuffer). 0 or -1. */
int exp_batch_attach_body(exp_batch *b, void *out);
/* 2xx: observes latencies, counts SENT, done. */
void exp_batch_ack(exporter *e, exp_batch *b);

/* Retryable failure: schedules the retry, or gives up. */
void exp_batch_retry(exporter *e, exp_batch *b, const char *retry_after);
/* The give-up hook: with a DLQ the items are appended to it (counted
 * DROPPED only if the DLQ refuses them too), without one they are counted
 * DROPPED; logged; done. Replay batches go to exp_replay_failed(). */
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

/* exp_circuit.c */
int exp_circuit_init(exporter *e);      /* exp_new: config, timer */
/* May a request go now? The ticket goes into the batch. */
brk_ticket exp_circuit_allow(exporter *e);
/* Records the answer of b's attempt (code 0: none). */
void exp_circuit_record(exporter *e, exp_batch *b, int code);
/* Gives back the ticket of an attempt abandoned without an answer. */
void exp_circuit_forget(exporter *e, exp_batch *b);
/* 1 while nothing may be sent: OPEN before open_duration passed, or
 * HALF_OPEN with the probe out. */
int exp_circuit_blocked(exporter *e);
/* OPEN, open_duration passed, nothing to send and a DLQ waiting to be
 * replayed: sends an empty request of its own as the probe. */
void exp_circuit_probe_idle(exporter *e);

/* exp_spill.c (only with a DLQ) */
int exp_spill_start(exporter *e);       /* exp_start: port and its event */
/* Breaker open: hands it to the DLQ (0, taken) or refuses (the DLQ or its
 * ring is full: the caller keeps it). */
int exp_spill_item(exporter *e, item *it);
/* Breaker open: moves the items of an OPEN or READY batch to the DLQ; what
 * the DLQ refuses goes back to a new batch of the same state. 0 when all
 * were taken, SW_EFULL otherwise. b is done either way. */
int exp_spill_batch(exporter *e, exp_batch *b);
/* Give-up: every item of the chain goes to the DLQ, or to the backlog when
 * its ring is full; what it refuses otherwise is kept in memory (counted
 * dropped only while stopping). */
void exp_spill_chain(exporter *e, item *chain, const char *why);
/* Appends it through bl (kept in order behind earlier backlogged items).
 * 0: taken; bl->cb will run once for it. Otherwise the caller keeps it. */
int exp_spill_via(exporter *e, exp_backlog *bl, item *it);
/* Appends backlogged items while the DLQ takes them. */
void exp_backlog_flush(exporter *e, exp_backlog *bl);
/* The DLQ could not take it (status: the refusal or the failed append):
 * puts it back in memory (its signal's open batch), marks the DLQ failing
 * unless it was only out of room, counts. 0, or SW_ECLOSED while stopping
 * (the caller still owns it). */
int exp_spill_hold(exporter *e, item *it, int status);
/* 1 while the DLQ is failing and its next try is not due: the
 * breaker-open path keeps what it has and pops nothing. */
int exp_spill_blocked(const exporter *e);
/* After the loop: waits up to ms for every pending append, then counts
 * what is still pending as undelivered. */
void exp_spill_finish(exporter *e, uint64_t ms);
/* exp_free: dispatches late completions, frees the port. */
void exp_spill_destroy(exporter *e);

/* exp_reject.c */
void exp_reject_init(exporter *e);      /* exp_new: the backlog */
/* Permanent refusal (code, msg: the start of the upstream's message,
 * borrowed): 413 for several items splits b in two halves; otherwise
 * counts REJECTED, logs, and with a DLQ appends the items to its rejected
 * area (replay batches: exp_replay_rejected). b is done or split. */
void exp_batch_reject(exporter *e, exp_batch *b, int code, const char *msg);
/* Appends every item of the chain (owned) to the rejected area, or to the
 * backlog while the DLQ's ring is full; cb(e, item, status) runs once per
 * item (NULL: exp_reject_item_done). */
void exp_reject_chain(exporter *e, item *chain, int code, const char *msg, dlq_done_fn cb);
/* Completion of a rejected-area append: counts it kept, or dropped (logged). */
void exp_reject_item_done(exporter *e, item *it, int status);
/* Appends backlogged items while the DLQ takes them. */
void exp_reject_flush(exporter *e);
size_t exp_reject_backlog_len(const exporter *e);
/* Refuses what is still backlogged (each through its callback). */
void exp_reject_abandon(exporter *e);

/* exp_replay.c (only with a DLQ) */
int exp_replay_start(exporter *e);      /* exp_start: reader, ring, thread */
/* 1 when the pump should take a replay batch now (see the interleave rule
 * in exp_replay.c); live_waiting: the queue has items. */
int exp_replay_turn(exporter *e, int live_waiting);
/* Takes items of one signal from the ring into a sealed replay batch.
 * 0, or SW_ENOMEM (nothing taken). */
int exp_replay_take(exporter *e);
/* The replay batch was acknowledged: acks its position. */
void exp_replay_acked(exporter *e, exp_batch *b);
/* A replay batch (or piece) was given up: re-appends its items to the
 * main area; once every piece is settled and those appends completed, the
 * position is acked. While stopping it is let go (still in the DLQ). */
void exp_replay_failed(exporter *e, exp_batch *b, const char *why);
/* A replay batch (or piece) was refused for good: its items go to the
 * rejected area (never back to the main area: no poison loop), then as
 * above. */
void exp_replay_rejected(exporter *e, exp_batch *b, int code, const char *msg);
/* A replay batch was split: pieces outstanding change by delta. */
void exp_replay_repiece(exporter *e, int delta);
/* The breaker changed: replay runs only while it is closed. */
void exp_replay_circuit(exporter *e, int closed);
/* Stops the replay thread (main thread, before the export thread stops). */
void exp_replay_stop_thread(exporter *e);
/* Export thread, after the loop: frees what is left in the ring. */
void exp_replay_drain_ring(exporter *e);
/* The replay re-append backlog, or NULL. */
exp_backlog *exp_replay_backlog(exporter *e);
/* Main thread after both threads ended: persists the cursor and frees the
 * reader (idempotent). */
void exp_replay_close_reader(exporter *e);
/* exp_free, after exp_spill_destroy: frees the rest. */
void exp_replay_free(exporter *e);

#endif
