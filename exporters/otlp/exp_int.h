/* exp_int.h — internals shared by the exporter's files (not for other modules).
 *
 *   exp_main.c      lifecycle, export thread, pump (pop -> batch -> send), drain
 *   exp_batch.c     batches: build, seal (compress), acknowledge, give up
 *   exp_http.c      the HTTP client: endpoint, connection pool, deadline (exp_http.h)
 *   exp_circuit.c   the circuit breaker wired in: tickets, outcomes, probe timer
 *   exp_spill.c     spill policy over the DLQ sink (dlq/dlq_sink.c), stop wait
 *   exp_reject.c    permanent refusals: 413 splitting, the DLQ's rejected area
 *   exp_replay.c    the loop's side of the replay source (dlq/dlq_replay.c)
 *   exp_oneshot.c   exp_send_blocking (offline replay; its own event_base)
 *   exp_retry.c     pure retry policy          exp_response.c  pure body parsing
 *   exp_breaker.c   pure circuit breaker state machine
 * Shared pieces: runtime/tls.h, runtime/fifo.h, runtime/codec.h (codec_cctx).
 *
 * Everything here runs on the export thread, except exp_new/exp_free/
 * exp_start/exp_stop (main thread, while the export thread is not running
 * or through its events); the replay thread belongs to dlq/dlq_replay.c.
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
#include "dlq/dlq_consumer.h"
#include "exporters/otlp/exp_breaker.h"
#include "exporters/otlp/exp_http.h"
#include "exporters/otlp/exp_retry.h"
#include "exporters/otlp/exporter.h"
#include "runtime/buf.h"
#include "runtime/codec.h"
#include "runtime/fifo.h"
#include "runtime/item.h"

struct event;
struct event_base;
typedef struct exp_replay exp_replay;


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


struct exporter {
    const cfg *c;              /* borrowed */
    apq *q;                    /* borrowed */
    sw_metrics *m;             /* borrowed */
    exp_http *pool;            /* owned: the HTTP client (exp_http.h) */
    exp_retry_policy retry;
    codec_cctx *cctx;          /* owned: one compression context, reused per batch */
    struct event_base *base;
    uint32_t n_conns;          /* exp_http_size: requests at once */

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

    /* dead-letter queue (exp_spill.c); NULL without exp_set_dlq() */
    dlq *dlq;                  /* borrowed */
    dlq_sink *sink;            /* owned: appends and completions of this thread */
    uint64_t spilled_items_total;      /* appends completed (stored) */
    uint64_t spill_failed_items_total; /* failed while stopping: dropped */
    size_t spill_unconfirmed;  /* stop: appends still pending after the wait */
    int abandon;               /* stop deadline: replay batches are let go */
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
/* READY -> FLIGHT: sends b through the pool; its answer is acted on
 * (ack, reject, retry) when it comes. */
void exp_batch_send(exporter *e, exp_batch *b);
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
int exp_spill_start(exporter *e);       /* exp_start: the DLQ sink */
/* Breaker open: hands it to the DLQ (0, taken) or refuses (the DLQ is
 * full, its ring is, or it is failing: the caller keeps it). */
int exp_spill_item(exporter *e, item *it);
/* Breaker open: moves the items of an OPEN or READY batch to the DLQ; what
 * the DLQ refuses goes back to a new batch of the same state. 0 when all
 * were taken, SW_EFULL otherwise. b is done either way. */
int exp_spill_batch(exporter *e, exp_batch *b);
/* Give-up: every item of the chain goes to the DLQ; what it refuses is
 * kept in memory (counted dropped only while stopping). */
void exp_spill_chain(exporter *e, item *chain, const char *why);
/* The DLQ could not take it (status: the refusal or the failed append):
 * puts it back in memory (its signal's open batch) and counts. 0, or
 * SW_ECLOSED while stopping (the caller still owns it). */
int exp_spill_hold(exporter *e, item *it, int status);
/* 1 while the DLQ is failing and its next try is not due: the
 * breaker-open path keeps what it has and pops nothing. */
int exp_spill_blocked(const exporter *e);
/* The stop began: every append is tried, failing DLQ or not. */
void exp_spill_stopping(exporter *e);
/* After the loop: waits up to ms for every pending append; what had no
 * room is counted as not stored, what is still pending is left to
 * dlq_close(). */
void exp_spill_finish(exporter *e, uint64_t ms);
/* exp_free: dispatches late completions, frees the sink. */
void exp_spill_destroy(exporter *e);

/* exp_reject.c */
/* Permanent refusal (code, msg: the start of the upstream's message,
 * borrowed): 413 for several items splits b in two halves; otherwise
 * counts REJECTED, logs, and with a DLQ appends the items to its rejected
 * area (replay batches: exp_replay_rejected). b is done or split. */
void exp_batch_reject(exporter *e, exp_batch *b, int code, const char *msg);
/* Appends every item of the chain (owned) to the rejected area;
 * cb(e, item, status) runs once per item (NULL: exp_reject_item_done). */
void exp_reject_chain(exporter *e, item *chain, int code, const char *msg, dlq_done_fn cb);
/* Completion of a rejected-area append: counts it kept, or dropped (logged). */
void exp_reject_item_done(exporter *e, item *it, int status);

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
/* Main thread after both threads ended: persists the cursor and frees the
 * reader (idempotent). */
void exp_replay_close_reader(exporter *e);
/* exp_free, after exp_spill_destroy: frees the rest. */
void exp_replay_free(exporter *e);

#endif
