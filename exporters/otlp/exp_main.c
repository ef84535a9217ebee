/* exp_main.c — the export loop: the exporter's life cycle and export thread.
 *
 * The only file that knows `struct exporter`. It owns the modules and is
 * the only one that calls across them; each calls only down into what it
 * owns, and reports upward through the callbacks given at construction:
 *
 *   export loop (this file) ─┬─► batcher        exp_batch.h    wake, drop
 *                            ├─► HTTP client    exp_http.h     done, abandoned
 *                            ├─► breaker        exp_circuit.h  change, wake
 *                            │     └─► exp_breaker.h (pure)
 *                            ├─► retry policy   exp_retry.h    (pure)
 *                            ├─► linger policy  exp_linger.h   (pure)
 *                            ├─► answers        exp_response.h (pure)
 *                            ├─► spill policy   exp_spill.h    dropped
 *                            │     └─► batcher, DLQ sink, replay (given to it)
 *                            ├─► DLQ sink       dlq/dlq_consumer.h  room, done
 *                            └─► replay         exp_replay.h   wake, reappended, rejected
 *
 * DESIGN. One thread, one event_base. Five events drive it:
 *   wake_ev      the queue's eventfd: items were pushed
 *   pump_ev      user event, activated after anything that frees room
 *                (an answer, a retry timer, a batch timer)
 *   linger_ev    timer: an open batch's linger ended (exp_linger.h)
 *   stop_ev      user event, activated by exp_stop() from the main thread
 *   deadline_ev  the shutdown deadline
 * The pump sends sealed batches while connection slots are free, and pops
 * from the queue only while no sealed batch is waiting for a slot: when the
 * upstream is slow the queue fills up and the receiver pushes back, instead
 * of this thread hoarding memory. Once the queue is drained, open batches
 * are sent at once if a connection is idle, unless more items are likely
 * within batch.linger (exp_linger.h); batch.timeout only bounds the wait
 * while every connection is busy.
 *
 * With a DLQ two more: the sink's completions and the replay ring's
 * eventfd. Every send asks the circuit breaker first; while it blocks,
 * with a DLQ, sealed and open batches and newly popped items go to the DLQ
 * (exp_spill.h) — what the DLQ refuses waits here and popping stops —
 * and without one the ready batches wait and popping stops, so the queue
 * fills and the receiver pushes back. Replay batches are taken from the
 * replay ring when replay_turn() says so (one at a time).
 *
 * Outcomes: a 2xx settles a batch's items delivered; a retryable failure
 * backs off (exp_retry.h) or gives up; a permanent refusal splits a 413
 * batch in halves or sends the items to the DLQ's rejected area. A batch
 * given up goes to the DLQ, or is counted DROPPED without one. The spill
 * policy (exp_spill.h) decides where a batch goes that is given up,
 * refused, or cannot be sent while the breaker blocks; this file decides
 * when.
 *
 * Stopping: exp_stop() stops the replay thread, sets the timeout and
 * activates stop_ev, then joins. The thread enters draining: open batches
 * are sealed as soon as the queue is empty (even with every connection
 * busy), a retry whose backoff would end after the deadline gives up at
 * once, and the loop ends when the queue is empty and nothing is open,
 * ready, in flight or backing off — or at the deadline, when everything
 * left (queued, batched, in flight) is given up: to the DLQ, or counted
 * DROPPED without one. exp_hurry() (any thread, through hurry_ev) makes
 * the deadline now: a stop running ends as at its deadline, a stop not
 * begun yet ends at once. The thread then waits (at most
 * EXP_STOP_SPILL_WAIT_MS) for the DLQ to complete those appends.
 *
 * Threads: everything here runs on the export thread, except exp_new,
 * exp_free, exp_start and exp_stop (main thread, while the export thread
 * is not running or through its events) and exp_hurry (any thread, through
 * its event); the replay thread belongs to
 * dlq/dlq_replay.c.
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exporter.h"

#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dlq/dlq_consumer.h"
#include "exporters/otlp/exp_batch.h"
#include "exporters/otlp/exp_circuit.h"
#include "exporters/otlp/exp_http.h"
#include "exporters/otlp/exp_linger.h"
#include "exporters/otlp/exp_metrics.h"
#include "exporters/otlp/exp_replay.h"
#include "exporters/otlp/exp_response.h"
#include "exporters/otlp/exp_retry.h"
#include "exporters/otlp/exp_spill.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/evbase.h"
#include "runtime/item_track.h"
#include "runtime/log.h"

#define EXP_STOP_SPILL_WAIT_MS 5000
#define EXP_LOG_MSG_LEN 200              /* bytes of an error message logged */
#define EXP_LOG_MSG_MAX (EXP_LOG_MSG_LEN + 1)

struct exporter {
    const cfg *c;              /* borrowed */
    apq *q;                    /* borrowed */
    exp_metrics *m;            /* owned by the metrics registry */
    exp_http *pool;            /* owned: the HTTP client */
    exp_batcher *bt;           /* owned: the batcher */
    exp_circuit *k;            /* owned: the circuit breaker */
    exp_retry_policy retry;
    struct event_base *base;
    uint32_t n_conns;          /* exp_http_size: requests at once */

    struct event *wake_ev, *pump_ev, *stop_ev, *deadline_ev;
    struct event *linger_ev;   /* an open batch's linger ends (exp_linger.h) */
    exp_linger lg;
    int wake_edge;             /* wake_ev is edge-triggered: the eventfd is not read */
    struct event *hurry_ev;    /* activated by exp_hurry() from any thread */
    pthread_t thread;
    int started;               /* thread created */
    int failed;                /* exp_start failed: only exp_free is left */
    int joined;                /* thread joined by exp_stop */
    int stopped;               /* export thread: loop finished */
    _Atomic int healthy;
    _Atomic uint64_t stop_timeout_ms; /* written by exp_stop before stop_ev */
    _Atomic int hurry;                /* exp_hurry: the stop deadline has passed */
    int draining;
    int64_t deadline_ns;
    uint64_t undelivered_items;       /* dropped since the stop began */
    uint64_t undelivered_records;
    uint64_t dropped_items_total;     /* for log lines */
    uint64_t rng;

    /* dead-letter queue; NULL without exp_set_dlq() */
    dlq *dlq;                  /* borrowed */
    dlq_sink *sink;            /* owned: appends and completions of this thread */
    exp_spill *sp;             /* owned: spill, give-up and refusal policy */
    exp_replay *rp;            /* owned; NULL without a DLQ */
};

static const char *const comp_names[] = {"none", "gzip", "zstd"};


/* ---- small helpers ------------------------------------------------------------ */

/* Counts items that are neither delivered nor stored (drop counters, the
 * stop's undelivered count); the caller logs. */
static uint64_t count_dropped(exporter *e, sw_signal sig, uint64_t items, uint64_t records)
{
    metrics_add(&e->m->exp_items[sig][EXP_RESULT_DROPPED], records);
    e->dropped_items_total += items;
    if (e->draining) {
        e->undelivered_items += items;
        e->undelivered_records += records;
    }
    return e->dropped_items_total;
}

static void schedule_pump(exporter *e)
{
    if (!e->stopped) event_active(e->pump_ev, EV_READ, 0);
}

/* Uniform in [0, 1), for jitter. */
static double random01(exporter *e)
{
    /* xorshift64*: jitter only, not security */
    uint64_t x = e->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    e->rng = x;
    return (double)((x * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

/* Custom headers: no CR/LF anywhere, non-empty names; reserved names are
 * ignored with a warning. 0 or SW_EINVAL. */
static int check_headers(const cfg *c)
{
    for (size_t i = 0; i < c->exporter.n_headers; i++) {
        const cfg_header *h = &c->exporter.headers[i];
        if (!h->name || !h->name[0] || !h->value || strpbrk(h->name, "\r\n: \t") ||
            strpbrk(h->value, "\r\n")) {
            LOG_ERROR("exporters.otlphttp.headers: invalid header \"%s\"",
                      h->name ? h->name : "");
            return SW_EINVAL;
        }
        if (exp_header_reserved(h->name))
            LOG_WARN("exporters.otlphttp.headers: \"%s\" is set by the exporter; ignored",
                     h->name);
    }
    return 0;
}

/* Callbacks of the owned modules. */
static void wake_pump(void *arg)
{
    schedule_pump(arg);
}

static void batcher_dropped(void *arg, sw_signal sig, uint64_t items, uint64_t records)
{
    count_dropped(arg, sig, items, records);
}

static uint64_t spill_dropped(void *arg, sw_signal sig, uint64_t items, uint64_t records)
{
    return count_dropped(arg, sig, items, records);
}

static void circuit_changed(void *arg, brk_state to)
{
    exporter *e = arg;
    if (e->rp) exp_replay_pause(e->rp, to != BRK_CLOSED); /* replay only while closed */
}

/* ---- replay: the owner's side of exp_replay.h ------------------------------------ */

/* Completions of the replay module's appends: the spill policy's. */
static void reappended(void *arg, item *it, int status)
{
    exp_spill_reappended(((exporter *)arg)->sp, it, status);
}

static void rej_done(void *arg, item *it, int status)
{
    exp_spill_rejected(((exporter *)arg)->sp, it, status);
}

/* 1 when the pump should take a replay batch now; live_waiting: the queue
 * has items. */
static int replay_turn(exporter *e, int live_waiting)
{
    if (e->draining || exp_circuit_state(e->k) != BRK_CLOSED) return 0;
    int idle = !exp_batcher_ready_peek(e->bt) && exp_batcher_active(e->bt) < e->n_conns;
    return exp_replay_turn(e->rp, live_waiting, idle);
}

/* ---- outcomes of a batch ------------------------------------------------------ */

/* 2xx: observes latencies, settles the items delivered, counts SENT. */
static void batch_ack(exporter *e, exp_batch *b)
{
    int64_t now = clock_mono_ns();
    for (item *it = b->head; it; it = it->next) {
        metrics_hist_observe(&e->m->latency, now - it->recv_ns);
        item_settle(it, 0); /* delivered: its producer may move on */
    }
    metrics_add(&e->m->exp_items[b->sig][EXP_RESULT_SENT], b->n_records);
    if (b->replay) exp_replay_acked(e->rp);
    exp_batch_done(b);
}

/* The give-up hook: the spill policy decides (DLQ, memory or dropped). */
static void give_up(exporter *e, exp_batch *b, const char *why)
{
    exp_spill_give_up(e->sp, b, why);
}

/* Retryable failure: schedules the retry, or gives up. */
static void batch_retry(exporter *e, exp_batch *b, const char *retry_after)
{
    int64_t now = clock_mono_ns();
    int64_t now_unix = clock_wall_ns() / 1000000000LL;
    uint64_t delay = exp_retry_delay_ms(&e->retry, b->attempt, random01(e), retry_after,
                                        now_unix);
    uint64_t elapsed = (uint64_t)(now - b->first_attempt_ns) / 1000000u;
    if (exp_retry_exhausted(&e->retry, elapsed, delay)) {
        give_up(e, b, "retry.max_elapsed_time reached");
        return;
    }
    if (e->draining && now + (int64_t)delay * 1000000LL > e->deadline_ns) {
        give_up(e, b, "shutdown timeout before the next retry");
        return;
    }
    b->attempt++;
    metrics_add(&e->m->exp_retries, 1);
    exp_batch_backoff(b, delay);
}

static void read_partial(exporter *e, exp_batch *b, const exp_answer *a)
{
    int64_t rejected = 0;
    char msg[EXP_LOG_MSG_MAX];
    if (!a->body || exp_resp_partial(a->body, a->body_len, a->type, &rejected, msg, sizeof msg) != 0)
        return; /* an unreadable success body is still a success */
    if (rejected <= 0) return;
    metrics_add(&e->m->exp_partial_rejected[b->sig], (uint64_t)rejected);
    LOG_WARN_RL(10, "upstream rejected %lld of %llu %s records (partial success): %s",
                (long long)rejected, (unsigned long long)b->n_records,
                sw_signal_name(b->sig), msg[0] ? msg : "(no message)");
}

/* The HTTP client's completion: counts one finished attempt and acts on
 * its outcome. */
static void answered(void *arg, const exp_answer *a)
{
    exp_batch *b = arg;
    exporter *e = exp_batcher_arg(b->bt);
    metrics_add(&e->m->exp_requests[b->sig][metrics_code_index(a->code)], 1);
    exp_circuit_record(e->k, &b->ticket, a->code);
    switch (exp_classify_status(a->code)) {
    case EXP_OK:
        atomic_store(&e->healthy, 1);
        exp_linger_rtt(&e->lg, clock_mono_ns() - b->sent_ns);
        read_partial(e, b, a);
        batch_ack(e, b);
        break;
    case EXP_REJECT: {
        char msg[EXP_LOG_MSG_MAX];
        exp_resp_error_message(a->body, a->body_len, a->type, msg, sizeof msg);
        exp_spill_reject(e->sp, b, a->code, msg);
        break;
    }
    case EXP_RETRY:
        atomic_store(&e->healthy, 0);
        if (a->code)
            LOG_WARN_RL(10, "upstream answered HTTP %d%s%s; will retry", a->code,
                        a->retry_after ? ", Retry-After: " : "",
                        a->retry_after ? a->retry_after : "");
        batch_retry(e, b, a->retry_after);
        break;
    }
    schedule_pump(e);
}

static int attach(void *arg, void *out)
{
    return exp_batch_attach_body(arg, out);
}

/* READY -> FLIGHT with the breaker's ticket t: sends b through the pool. */
static void batch_send(exporter *e, exp_batch *b, brk_ticket t)
{
    b->ticket = t;
    b->sent_ns = clock_mono_ns();
    if (b->first_attempt_ns == 0) b->first_attempt_ns = b->sent_ns;
    exp_batch_flight(b);
    exp_request r = {.sig = b->sig, .encoding = b->encoding, .attach = attach,
                     .done = answered, .arg = b};
    exp_http_send(e->pool, &r);
}

/* ---- the pump -------------------------------------------------------------- */

static void finish_loop(exporter *e, const char *why);

/* Sends ready batches while slots are free and the breaker lets them. */
static void send_ready(exporter *e)
{
    while (exp_batcher_ready_peek(e->bt) && exp_batcher_active(e->bt) < e->n_conns) {
        brk_ticket t = exp_circuit_allow(e->k);
        if (t == BRK_DENIED) return;
        batch_send(e, exp_batcher_ready_pop(e->bt), t);
    }
}

static int nothing_left(exporter *e)
{
    return !exp_batcher_any_open(e->bt) && !exp_batcher_ready_peek(e->bt) &&
           exp_batcher_active(e->bt) == 0 && apq_peek_signal(e->q) < 0;
}

/* With the queue drained, an open batch does not wait for batch.timeout
 * while a connection is idle: it goes now, or after a linger when more
 * items are likely to come within the linger budget (exp_linger.h); the
 * linger timer then runs the pump again. Latency stays low at low load;
 * under load connections are busy and batches grow up to max_bytes or the
 * timeout. While draining every open batch goes. */
static void flush_open(exporter *e)
{
    if (exp_batcher_ready_peek(e->bt) || apq_peek_signal(e->q) >= 0) return;
    int64_t now = 0, soonest = 0;
    for (int s = 0; s < SIG_COUNT; s++) {
        exp_batch *b = exp_batcher_open(e->bt, (sw_signal)s);
        if (!b || (!e->draining && exp_batcher_active(e->bt) >= e->n_conns)) continue;
        if (!e->draining && b->head) {
            if (!now) now = clock_mono_ns();
            int64_t until = exp_linger_until(&e->lg, (sw_signal)s, b->head->recv_ns, now);
            if (until) {
                if (!soonest || until < soonest) soonest = until;
                continue;
            }
        }
        exp_batch_seal(b, 0);
        send_ready(e);
    }
    if (soonest) {
        struct timeval tv = clock_ns_to_tv(soonest - now);
        evtimer_add(e->linger_ev, &tv);
    }
}

/* With a DLQ every batch is spilled while the breaker is open, so when the
 * probe is due there is often nothing to probe with; and replay (the only
 * way the DLQ drains) waits for the breaker to close. An empty
 * Export<sig>ServiceRequest is a valid request every OTLP upstream must
 * accept: it is the probe. Without a DLQ the next real batch is the probe. */
static void probe_idle(exporter *e)
{
    if (!e->sink || e->draining || exp_batcher_ready_peek(e->bt) ||
        exp_batcher_active(e->bt) >= e->n_conns)
        return;
    if (exp_circuit_state(e->k) != BRK_OPEN || exp_circuit_blocked(e->k)) return;
    if (exp_batcher_any_open(e->bt) || apq_peek_signal(e->q) >= 0) return;
    exp_batch *b = exp_batch_new(e->bt, SIG_TRACES);
    if (!b) return; /* tried again on the next pump */
    exp_batch_seal(b, 0);
    b = exp_batcher_ready_pop(e->bt);
    brk_ticket t = exp_circuit_allow(e->k);
    if (t == BRK_DENIED) { /* cannot happen: not blocked */
        exp_batch_done(b);
        return;
    }
    LOG_INFO("circuit breaker: probing the upstream with an empty request");
    batch_send(e, b, t);
}

static void pump(exporter *e)
{
    if (e->stopped) return;
    exp_http_reap(e->pool);
    for (;;) {
        send_ready(e);
        int blocked = e->sink && exp_circuit_blocked(e->k);
        if (blocked && exp_spill_waiting(e->sp)) break;
        int live = apq_peek_signal(e->q) >= 0;
        if (e->rp && replay_turn(e, live) && exp_replay_take(e->rp) == 0) continue;
        if (exp_batcher_ready_peek(e->bt)) break; /* no free slot: leave the rest queued */
        item *it = live ? apq_pop(e->q) : NULL;
        if (!it) break;
        if (it->signal >= SIG_COUNT) {
            LOG_ERROR_RL(10, "item with unknown signal %u discarded", (unsigned)it->signal);
            item_free(it);
            continue;
        }
        if (blocked && exp_spill_item(e->sp, it) == 0) continue;
        exp_linger_arrival(&e->lg, it->signal, it->recv_ns);
        exp_batcher_add(e->bt, it);
    }
    flush_open(e);
    probe_idle(e);
    if (e->draining && nothing_left(e)) finish_loop(e, NULL);
}

static void pump_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pump(arg);
}

static void wake_cb(evutil_socket_t fd, short what, void *arg)
{
    exporter *e = arg;
    (void)fd;
    (void)what;
    if (e->wake_edge) apq_clear_wake_edge(e->q);
    else apq_clear_wake(e->q);
    pump(e);
}

/* ---- stopping -------------------------------------------------------------- */

/* Gives up everything still here: batches in any state, then the queue. */
static void give_up_all(exporter *e, const char *why)
{
    item *it;
    while ((it = apq_pop(e->q)) != NULL) {
        if (it->signal >= SIG_COUNT) {
            item_free(it);
            continue;
        }
        if (exp_batcher_add_unsealed(e->bt, it) == 0) continue;
        metrics_add(&e->m->exp_items[it->signal][EXP_RESULT_DROPPED], it->count);
        e->undelivered_items++;
        e->undelivered_records += it->count;
        item_free(it);
    }
    exp_batch *b;
    while ((b = exp_batcher_any_live(e->bt)) != NULL) give_up(e, b, why);
}

/* A request the pool closed before its answer: its breaker ticket is
 * given back; the batch stays FLIGHT and is given up with the rest. */
static void abandoned(void *ctx, void *arg)
{
    exporter *e = ctx;
    exp_batch *b = arg;
    exp_circuit_forget(e->k, &b->ticket);
}

/* Ends the loop: why == NULL after a complete drain, else the reason the
 * rest is given up. */
static void finish_loop(exporter *e, const char *why)
{
    exp_http_close_all(e->pool, abandoned, e); /* requests in flight: unanswered */
    exp_http_retired_close_all(e->base, abandoned); /* and pools a reload replaced */
    if (why) give_up_all(e, why);
    event_del(e->wake_ev);
    event_del(e->deadline_ev);
    exp_circuit_stop(e->k);
    e->stopped = 1;
    event_base_loopbreak(e->base);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    exporter *e = arg;
    (void)fd;
    (void)what;
    LOG_WARN("shutdown timeout: %llu items queued, %u batches in flight or backing off; "
             "giving them up", (unsigned long long)apq_items(e->q), exp_batcher_active(e->bt));
    finish_loop(e, "shutdown timeout");
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    exporter *e = arg;
    uint64_t ms = atomic_load(&e->stop_timeout_ms);
    (void)fd;
    (void)what;
    e->draining = 1;
    exp_spill_stopping(e->sp);
    e->deadline_ns = clock_mono_ns() + (int64_t)ms * 1000000LL;
    if (ms == 0) {
        finish_loop(e, "stopped without a drain timeout");
        return;
    }
    if (atomic_load(&e->hurry)) { /* exp_hurry came first */
        finish_loop(e, "stop cut short");
        return;
    }
    struct timeval tv = clock_ms_to_tv(ms);
    evtimer_add(e->deadline_ev, &tv);
    pump(e);
}

/* exp_hurry: while stopping, the deadline is now; before the stop,
 * stop_cb sees the flag. */
static void hurry_cb(evutil_socket_t fd, short what, void *arg)
{
    exporter *e = arg;
    (void)fd;
    (void)what;
    if (e->stopped || !e->draining) return;
    LOG_WARN("stop cut short: %llu items queued, %u batches in flight or backing off; "
             "giving them up", (unsigned long long)apq_items(e->q), exp_batcher_active(e->bt));
    finish_loop(e, "stop cut short");
}

static void *thread_main(void *arg)
{
    exporter *e = arg;
    pthread_setname_np(pthread_self(), "sw-export");
    event_base_dispatch(e->base);
    exp_replay_drain(e->rp);
    exp_spill_finish(e->sp, EXP_STOP_SPILL_WAIT_MS);
    /* Let libevent finish what closing the connections started (deferred
     * callbacks, bufferevent finalizers): a callback still pending when the
     * base is freed is cancelled, not run, and its bufferevent leaks. */
    for (int i = 0; i < 64 && event_base_get_num_events(e->base, EVENT_BASE_COUNT_ACTIVE) > 0; i++)
        event_base_loop(e->base, EVLOOP_NONBLOCK);
    return NULL;
}

/* ---- public ---------------------------------------------------------------- */

exporter *exp_new(const cfg *c, apq *q, sw_metrics *m)
{
    exporter *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->c = c;
    e->q = q;
    e->m = exp_metrics_get(m);
    atomic_init(&e->healthy, 1);
    e->retry = (exp_retry_policy){c->exporter.retry_initial_ms, c->exporter.retry_max_ms,
                                  c->exporter.retry_multiplier, c->exporter.retry_max_elapsed_ms};
    exp_linger_init(&e->lg, c->exporter.batch_linger_ms);
    e->rng = (uint64_t)clock_mono_ns() ^ ((uint64_t)(uintptr_t)e << 16) ^ 0x9E3779B97F4A7C15ULL;
    if (!e->m || check_headers(c) != 0) goto fail;
    evthread_use_pthreads(); /* idempotent; main calls it first */
    if (!(e->base = evbase_new())) goto fail;
    if (!(e->pool = exp_http_new(e->base, c, e->m))) goto fail;
    e->n_conns = exp_http_size(e->pool);
    exp_batcher_cfg bc = {c->exporter.batch_max_bytes, c->exporter.batch_timeout_ms,
                          (int)c->exporter.compression};
    if (!(e->bt = exp_batcher_new(e->base, &bc, wake_pump, batcher_dropped, e))) goto fail;
    if (!(e->k = exp_circuit_new(e->base, c, e->m, circuit_changed, wake_pump, e))) goto fail;
    if (!(e->sp = exp_spill_new(e->bt, e->m, spill_dropped, e))) goto fail;
    return e;
fail:
    exp_free(e);
    return NULL;
}

void exp_set_dlq(exporter *e, dlq *d)
{
    if (!e->started) e->dlq = d;
}

/* The export thread's own events (the queue's wake-up, pump, stop, stop
 * deadline). 0 or SW_ENOMEM / SW_EIO. */
static int start_events(exporter *e)
{
    /* Edge-triggered where the backend can (epoll): each wake-up is one
     * write, so the eventfd is never read — one system call less each. */
    e->wake_edge = (event_base_get_features(e->base) & EV_FEATURE_ET) != 0;
    e->wake_ev = event_new(e->base, apq_wake_fd(e->q),
                           EV_READ | EV_PERSIST | (e->wake_edge ? EV_ET : 0), wake_cb, e);
    e->pump_ev = event_new(e->base, -1, 0, pump_cb, e);
    e->stop_ev = event_new(e->base, -1, 0, stop_cb, e);
    e->deadline_ev = evtimer_new(e->base, deadline_cb, e);
    e->linger_ev = evtimer_new(e->base, pump_cb, e);
    e->hurry_ev = event_new(e->base, -1, 0, hurry_cb, e);
    if (!e->wake_ev || !e->pump_ev || !e->stop_ev || !e->deadline_ev || !e->hurry_ev ||
        !e->linger_ev)
        return SW_ENOMEM;
    if (event_add(e->wake_ev, NULL) != 0) {
        LOG_ERROR("cannot watch the queue's wake-up descriptor");
        return SW_EIO;
    }
    event_active(e->pump_ev, EV_READ, 0); /* items queued before the start */
    return 0;
}

static int start_thread(exporter *e)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals belong to main */
    int rc = pthread_create(&e->thread, NULL, thread_main, e);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        LOG_ERROR("cannot start the export thread: %s", strerror(rc));
        return SW_EIO;
    }
    return 0;
}

/* With a DLQ: the sink, then the replay module and its thread. */
static int start_dlq(exporter *e)
{
    if (!(e->sink = dlq_sink_new(e->dlq, e->base, wake_pump, e))) return SW_ENOMEM;
    exp_circuit_set_open_note(e->k, "items go to the DLQ");
    exp_replay_cbs cbs = {wake_pump, reappended, rej_done};
    e->rp = exp_replay_new(e->dlq, e->c, e->base, e->bt, e->sink, &cbs, e);
    if (!e->rp) return SW_ENOMEM;
    exp_spill_set_dlq(e->sp, e->sink, e->rp);
    return exp_replay_start(e->rp);
}

/* Everything that can fail is set up before the replay thread starts, and
 * a failure stops what was started: after a failed exp_start no thread of
 * the exporter runs and it holds no DLQ reader, so the caller may close
 * the DLQ (then exp_free). */
int exp_start(exporter *e)
{
    if (e->started || e->failed) return SW_EINVAL;
    int rc = start_events(e);
    if (rc == 0 && e->dlq) rc = start_dlq(e);
    if (rc == 0) rc = start_thread(e);
    if (rc != 0) goto fail;
    e->started = 1;
    LOG_INFO("exporting to %s (compression %s, %u connections, batch %llu bytes / %llu ms)",
             e->c->exporter.endpoint, comp_names[e->c->exporter.compression % 3], e->n_conns,
             (unsigned long long)e->c->exporter.batch_max_bytes,
             (unsigned long long)e->c->exporter.batch_timeout_ms);
    return 0;
fail:
    exp_replay_stop(e->rp);
    exp_replay_close(e->rp); /* the DLQ may be closed before exp_free */
    e->failed = 1;
    return rc;
}

uint64_t exp_stop(exporter *e, uint64_t timeout_ms)
{
    if (!e || !e->started || e->joined) return 0;
    exp_replay_stop(e->rp);
    atomic_store(&e->stop_timeout_ms, timeout_ms);
    event_active(e->stop_ev, EV_READ, 0);
    pthread_join(e->thread, NULL);
    e->joined = 1;
    exp_replay_close(e->rp); /* persists the replay cursor */
    if (e->undelivered_items)
        LOG_WARN("exporter stopped: %llu items (%llu records) neither delivered nor stored",
                 (unsigned long long)e->undelivered_items,
                 (unsigned long long)e->undelivered_records);
    else if (e->sink)
        LOG_INFO("exporter stopped: everything delivered or in the DLQ (%llu items stored "
                 "since start, %zu still being written)",
                 (unsigned long long)exp_spill_get_stats(e->sp).spilled,
                 exp_spill_get_stats(e->sp).unconfirmed);
    else
        LOG_INFO("exporter stopped: everything delivered");
    return e->undelivered_items;
}

void exp_hurry(exporter *e)
{
    if (!e || !e->started) return;
    atomic_store(&e->hurry, 1);
    event_active(e->hurry_ev, EV_READ, 0);
}

/* ---- reconfiguration (exp_reconfigure) ----------------------------------- */

/* A reload on its way to the export thread. Posted with event_active, so
 * reloads are applied in the order they were posted. */
typedef struct exp_reconf {
    exporter *e;
    const cfg *c;              /* borrowed: outlives the exporter */
    struct event *ev;          /* owned: runs reconf_cb on the export thread */
} exp_reconf;

/* A retired pool's requests get their answers there within the old
 * timeout; the margin lets a late answer arrive before it closes. */
#define EXP_RETIRE_MARGIN_MS 1000

/* A request a retired pool still held at its end: tried again on the
 * current pool (its breaker ticket given back). */
static void requeue(void *ctx, void *arg)
{
    exporter *e = ctx;
    exp_batch *b = arg;
    exp_circuit_forget(e->k, &b->ticket);
    batch_retry(e, b, NULL);
    schedule_pump(e);
}

/* The old pool keeps its requests in flight until it retires. 0, or
 * SW_EINVAL with the old pool still in use (logged). */
static int swap_pool(exporter *e, const cfg *c)
{
    exp_http *next = exp_http_new(e->base, c, e->m);
    uint64_t after_ms = e->c->exporter.timeout_ms + EXP_RETIRE_MARGIN_MS;
    if (!next || exp_http_retire(e->pool, after_ms, requeue, e) != 0) {
        LOG_ERROR("reload: cannot set up connections to %s; keeping the old ones",
                  c->exporter.endpoint);
        exp_http_free(next);
        return SW_EINVAL;
    }
    e->pool = next;
    e->n_conns = exp_http_size(next);
    return 0;
}

/* Everything but the pool: read through e->c from now on, or copied. */
static void apply_settings(exporter *e, const cfg *c)
{
    e->c = c;
    e->retry = (exp_retry_policy){c->exporter.retry_initial_ms, c->exporter.retry_max_ms,
                                  c->exporter.retry_multiplier, c->exporter.retry_max_elapsed_ms};
    exp_circuit_reconfigure(e->k, c);
    exp_batcher_reconfigure(e->bt, &(exp_batcher_cfg){c->exporter.batch_max_bytes,
                                                      c->exporter.batch_timeout_ms,
                                                      (int)c->exporter.compression});
    exp_linger_set_budget(&e->lg, c->exporter.batch_linger_ms);
}

static void reconf_apply(exporter *e, const cfg *c)
{
    int fresh = exp_http_cfg_differs(e->c, c) && swap_pool(e, c) == 0;
    if (!fresh && exp_http_cfg_differs(e->c, c)) return; /* logged; nothing changes */
    apply_settings(e, c);
    LOG_INFO("reconfigured: exporting to %s (compression %s, %u connections%s)",
             c->exporter.endpoint, comp_names[c->exporter.compression % 3], e->n_conns,
             fresh ? ", new connections; requests in flight finish on the old ones" : "");
}

static void reconf_cb(evutil_socket_t fd, short what, void *arg)
{
    exp_reconf *r = arg;
    exporter *e = r->e;
    (void)fd;
    (void)what;
    if (!e->stopped) reconf_apply(e, r->c);
    event_free(r->ev);
    free(r);
    schedule_pump(e);
}

int exp_reconfigure(exporter *e, const cfg *c)
{
    if (!e || !c) return SW_EINVAL;
    if (e->failed || e->joined) return SW_ECLOSED;
    int rc = check_headers(c);
    if (rc != 0) return rc;
    exp_endpoint ep;
    if ((rc = exp_endpoint_parse(c->exporter.endpoint, &ep)) != 0) {
        LOG_ERROR("exporters.otlphttp.endpoint: cannot use \"%s\"", c->exporter.endpoint);
        return rc;
    }
    exp_endpoint_destroy(&ep);
    if (!e->started) { /* no export thread yet: apply here */
        reconf_apply(e, c);
        return 0;
    }
    exp_reconf *r = calloc(1, sizeof *r);
    if (!r) return SW_ENOMEM;
    r->e = e;
    r->c = c;
    if (!(r->ev = event_new(e->base, -1, 0, reconf_cb, r))) {
        free(r);
        return SW_ENOMEM;
    }
    event_active(r->ev, EV_READ, 0);
    return 0;
}

int exp_healthy(const exporter *e)
{
    return atomic_load(&e->healthy);
}

int64_t exp_in_flight(const exporter *e)
{
    return atomic_load_explicit(&e->m->exp_in_flight, memory_order_relaxed);
}

int exp_circuit_open(const exporter *e)
{
    return atomic_load_explicit(&e->m->exp_circuit_state, memory_order_relaxed) == BRK_OPEN;
}

void exp_free(exporter *e)
{
    if (!e) return;
    if (e->started && !e->joined) exp_stop(e, 0);
    dlq_sink_free(e->sink);
    e->sink = NULL;
    exp_replay_free(e->rp);
    e->rp = NULL;
    if (e->base) exp_http_retired_close_all(e->base, abandoned); /* replaced before the start */
    exp_http_free(e->pool); /* before the base: it owns events */
    exp_batcher_free_live(e->bt); /* only if never started: they own timers */
    exp_circuit_free(e->k);
    exp_spill_free(e->sp);
    if (e->wake_ev) event_free(e->wake_ev);
    if (e->pump_ev) event_free(e->pump_ev);
    if (e->stop_ev) event_free(e->stop_ev);
    if (e->deadline_ev) event_free(e->deadline_ev);
    if (e->linger_ev) event_free(e->linger_ev);
    if (e->hurry_ev) event_free(e->hurry_ev);
    if (e->base) event_base_free(e->base); /* runs pending finalizers: releases bodies */
    exp_batcher_free(e->bt);
    free(e);
}
