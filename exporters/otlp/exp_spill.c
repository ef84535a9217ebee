/* exp_spill.c — the exporter's side of the dead-letter queue: its
 * dlq_port, spills, append completions, the backlog and the stop wait.
 *
 * Three spill paths, all keeping each item's class and signal:
 *   breaker open   exp_spill_item / exp_spill_batch: what the DLQ refuses
 *                  (max_size reached, ring full) stays here and popping
 *                  stops, exactly as without a DLQ (the queue fills and the
 *                  receiver pushes back) — nothing is dropped;
 *   give-up        exp_spill_chain (retries exhausted, stop deadline): an
 *                  item refused because the DLQ's ring is momentarily full
 *                  waits in the backlog and is appended as completions free
 *                  room; refused otherwise it is counted DROPPED and logged;
 *   completion     an append that fails (SW_EIO: a write error) hands the
 *                  item back.
 * A storage failure never drops an item: an append the DLQ fails (or
 * refuses for a reason other than room) puts the item back in memory (its
 * signal's open batch: sent upstream once the breaker lets it, or spilled
 * again) and marks the DLQ failing. While it fails, nothing else is tried:
 * the breaker-open path keeps its batches and stops popping from the queue,
 * so the queue fills and intake answers 503 + Retry-After. After
 * EXP_DLQ_RETRY_MIN_MS one append is tried as a probe; its success ends
 * the failure, its failure doubles the wait (up to EXP_DLQ_RETRY_MAX_MS).
 * Logged (rate-limited) and counted in exp_dlq_failed_items. Only while
 * stopping is a failed append counted DROPPED (nothing can hold it).
 * At the stop, appends still unconfirmed after the wait are neither
 * counted nor reported as lost: the DLQ writes them before it closes.
 * (Items the upstream refused for good go to the rejected area through the
 * same port: exp_reject.c; its backlog is flushed and waited for here.)
 * Export thread only (the port's completions run here through port_ev or
 * dlq_port_wait); exp_spill_destroy runs on the main thread at exp_free.
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_int.h"

#include <event2/event.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define EXP_DLQ_RETRY_MIN_MS 1000
#define EXP_DLQ_RETRY_MAX_MS 30000

/* ---- the DLQ failing: hold in memory, retry with backoff -------------------- */

/* libevent measures timeouts from its cached loop time, so the timer may
 * fire slightly before dlq_retry_ns: it is then armed again for the rest
 * (plus a millisecond), or the retry would wait for an unrelated event. */
static void dlq_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    exporter *e = arg;
    (void)fd;
    (void)what;
    int64_t left = e->dlq_retry_ns - clock_mono_ns();
    if (e->dlq_down && left > 0) {
        struct timeval tv = clock_ms_to_tv((uint64_t)(left / 1000000) + 1);
        evtimer_add(e->dlq_retry_ev, &tv);
        return;
    }
    exp_schedule_pump(e);
}

/* An append failed (or was refused) for a reason other than room. */
static void dlq_failed(exporter *e, int status)
{
    if (e->dlq_down && !e->dlq_probe_out) return; /* an older append: already known */
    uint64_t ms = !e->dlq_down ? EXP_DLQ_RETRY_MIN_MS
                  : e->dlq_backoff_ms * 2 > EXP_DLQ_RETRY_MAX_MS ? EXP_DLQ_RETRY_MAX_MS
                                                                : e->dlq_backoff_ms * 2;
    if (!e->dlq_down)
        LOG_ERROR("the DLQ cannot store items (%s): keeping them in memory and taking no "
                  "more from the queue while the breaker is open; trying again in %llu ms",
                  sw_strerror(status), (unsigned long long)ms);
    e->dlq_down = 1;
    e->dlq_probe_out = 0;
    e->dlq_backoff_ms = ms;
    e->dlq_retry_ns = clock_mono_ns() + (int64_t)ms * 1000000LL;
    struct timeval tv = clock_ms_to_tv(ms);
    evtimer_add(e->dlq_retry_ev, &tv);
}

static void dlq_stored(exporter *e)
{
    if (!e->dlq_down) return;
    LOG_INFO("the DLQ stores items again");
    e->dlq_down = 0;
    e->dlq_probe_out = 0;
    e->dlq_backoff_ms = 0;
    evtimer_del(e->dlq_retry_ev);
    exp_schedule_pump(e);
}

/* 0 when an append may be tried now: always while the DLQ works or the
 * exporter stops; while it fails, one probe once its retry time came. */
static int dlq_gate(exporter *e)
{
    if (!e->dlq_down || e->draining) return 0;
    if (e->dlq_probe_out || clock_mono_ns() < e->dlq_retry_ns) return SW_EIO;
    e->dlq_probe_out = 1;
    return 0;
}

int exp_spill_blocked(const exporter *e)
{
    return e->dlq_down && !e->draining &&
           (e->dlq_probe_out || clock_mono_ns() < e->dlq_retry_ns);
}

int exp_spill_hold(exporter *e, item *it, int status)
{
    if (e->draining) return SW_ECLOSED;
    if (status != SW_EFULL && status != SW_ETOOBIG) dlq_failed(e, status);
    metrics_add(&e->m->exp_dlq_failed_items, 1);
    LOG_WARN_RL(10, "the DLQ did not take a %s item (%s): kept in memory",
                sw_signal_name((sw_signal)it->signal), sw_strerror(status));
    exp_batch_add(e, it);
    return 0;
}

/* Completion of an exporter spill (and the end of a refused one). */
static void spill_done(void *arg, item *it, int status)
{
    exporter *e = arg;
    if (status == 0) {
        e->spilled_items_total++;
        dlq_stored(e);
        return;
    }
    if (exp_spill_hold(e, it, status) == 0) return;
    exp_count_dropped(e, (sw_signal)it->signal, 1, it->count);
    e->spill_failed_items_total++;
    LOG_ERROR_RL(1, "the DLQ could not store a %s item (%u records, class %s): %s; dropped "
                 "(%llu items lost to DLQ errors so far)", sw_signal_name((sw_signal)it->signal),
                 it->count, sw_class_name((sw_class)it->klass), sw_strerror(status),
                 (unsigned long long)e->spill_failed_items_total);
    item_free(it);
}

static void backlog_push(exp_backlog *bl, item *it, int front)
{
    if (front) sw_fifo_push_front(&bl->items, it);
    else sw_fifo_push(&bl->items, it);
}

static item *backlog_pop(exp_backlog *bl)
{
    return sw_fifo_pop(&bl->items);
}

/* SW_EFULL while completions are pending means the ring is full for now. */
static int ring_full_for_now(exporter *e, int rc)
{
    return rc == SW_EFULL && dlq_port_pending(e->port) > 0;
}

/* dlq_append through the gate; a refused probe is given back. */
static int gated_append(exporter *e, item *it, dlq_done_fn cb, void *arg)
{
    int rc = dlq_gate(e);
    if (rc != 0) return rc;
    int probe = e->dlq_probe_out;
    rc = dlq_append(e->port, it, cb, arg);
    if (rc != 0 && probe) e->dlq_probe_out = 0;
    return rc;
}

int exp_spill_via(exporter *e, exp_backlog *bl, item *it)
{
    if (sw_fifo_peek(&bl->items)) {
        backlog_push(bl, it, 0);
        return 0;
    }
    int rc = gated_append(e, it, bl->cb, bl->arg);
    if (rc != 0 && ring_full_for_now(e, rc)) {
        backlog_push(bl, it, 0);
        return 0;
    }
    return rc;
}

void exp_backlog_flush(exporter *e, exp_backlog *bl)
{
    item *it;
    while ((it = backlog_pop(bl)) != NULL) {
        int rc = dlq_append(e->port, it, bl->cb, bl->arg);
        if (rc == 0) continue;
        if (ring_full_for_now(e, rc)) {
            backlog_push(bl, it, 1);
            return;
        }
        bl->cb(bl->arg, it, rc); /* refused for good */
    }
}

static void flush_all(exporter *e)
{
    exp_reject_flush(e);
    exp_backlog_flush(e, &e->backlog);
    exp_backlog *rb = exp_replay_backlog(e);
    if (rb) exp_backlog_flush(e, rb);
}

static void port_cb(evutil_socket_t fd, short what, void *arg)
{
    exporter *e = arg;
    (void)fd;
    (void)what;
    dlq_port_dispatch(e->port);
    flush_all(e);
    exp_schedule_pump(e); /* room in the DLQ: spills may go on */
}

int exp_spill_start(exporter *e)
{
    e->backlog.items = SW_FIFO_INIT(item, next);
    e->backlog.cb = spill_done;
    e->backlog.arg = e;
    e->port = dlq_port_new(e->dlq);
    if (!e->port) return SW_ENOMEM;
    e->port_ev = event_new(e->base, dlq_port_fd(e->port), EV_READ | EV_PERSIST, port_cb, e);
    if (!e->port_ev || event_add(e->port_ev, NULL) != 0) return SW_ENOMEM;
    e->dlq_retry_ev = evtimer_new(e->base, dlq_retry_cb, e);
    if (!e->dlq_retry_ev) return SW_ENOMEM;
    return 0;
}

int exp_spill_item(exporter *e, item *it)
{
    if (sw_fifo_peek(&e->backlog.items)) return SW_EFULL;
    return gated_append(e, it, spill_done, e);
}

int exp_spill_batch(exporter *e, exp_batch *b)
{
    /* A replay batch is already on disk: hand it back to the replay side
     * (re-append and ack), or replay stops for good. */
    if (b->replay) {
        exp_replay_failed(e, b, "circuit open");
        return 0;
    }
    sw_signal sig = b->sig;
    uint32_t n = b->n_items, taken = 0;
    item *chain = exp_batch_take_items(e, b);
    exp_batch_done(e, b);
    while (chain) {
        item *next = chain->next;
        if (exp_spill_item(e, chain) != 0) break;
        chain = next;
        taken++;
    }
    if (taken)
        LOG_INFO_RL(10, "circuit open: %u of %u %s items of a batch moved to the DLQ", taken, n,
                    sw_signal_name(sig));
    if (!chain) return 0;
    exp_batch *nb = exp_batch_new(e, sig);
    for (item *it = chain, *next; it; it = next) {
        next = it->next;
        if (nb) exp_batch_append(nb, it);
        else spill_done(e, it, SW_ENOMEM);
    }
    if (nb) exp_batch_seal_at(e, nb, 1); /* waits first in line */
    return SW_EFULL;
}

void exp_spill_chain(exporter *e, item *chain, const char *why)
{
    uint64_t refused = 0;
    for (item *it = chain, *next; it; it = next) {
        next = it->next;
        int rc = exp_spill_via(e, &e->backlog, it);
        if (rc == 0 || exp_spill_hold(e, it, rc) == 0) continue;
        refused++;
        spill_done(e, it, rc);
    }
    if (refused)
        LOG_WARN_RL(1, "the DLQ refused %llu items given up (%s): dropped",
                    (unsigned long long)refused, why);
}

static size_t backlog_len(const exp_backlog *bl)
{
    return bl ? sw_fifo_len(&bl->items) : 0;
}

/* Refuses what is still in a backlog (each counted through its callback). */
static void backlog_abandon(exp_backlog *bl)
{
    item *it;
    while (bl && (it = backlog_pop(bl)) != NULL) bl->cb(bl->arg, it, SW_ECLOSED);
}

void exp_spill_finish(exporter *e, uint64_t ms)
{
    int64_t end = clock_mono_ns() + (int64_t)ms * 1000000LL;
    exp_backlog *rb = exp_replay_backlog(e);
    for (;;) {
        dlq_port_dispatch(e->port);
        flush_all(e);
        int64_t left = end - clock_mono_ns();
        if ((dlq_port_pending(e->port) == 0 && !backlog_len(&e->backlog) &&
             !backlog_len(rb) && !exp_reject_backlog_len(e)) || left <= 0)
            break;
        int wait_ms = left > 100000000LL ? 100 : (int)(left / 1000000) + 1;
        dlq_port_wait(e->port, wait_ms);
    }
    size_t waiting = backlog_len(&e->backlog) + backlog_len(rb) + exp_reject_backlog_len(e);
    size_t pending = dlq_port_pending(e->port);
    if (waiting)
        LOG_ERROR("stop: %zu items the DLQ had no room for within %llu ms: not stored",
                  waiting, (unsigned long long)ms);
    /* Appends the writer has not confirmed yet are not lost: dlq_close()
     * writes every pending append before it returns, and exp_free()
     * dispatches their completions (a failure is counted and logged
     * there). */
    if (pending)
        LOG_WARN("stop: %zu appends to the DLQ not confirmed within %llu ms; the DLQ "
                 "completes them when it closes", pending, (unsigned long long)ms);
    e->spill_unconfirmed = pending;
    backlog_abandon(&e->backlog);
    backlog_abandon(rb);
    exp_reject_abandon(e);
}

void exp_spill_destroy(exporter *e)
{
    if (!e->port) return;
    /* Completions still owed run here (the DLQ open or already closed);
     * the port cannot be freed while the writer may still post to it. */
    for (int i = 0; i < 100 && dlq_port_pending(e->port) > 0; i++) dlq_port_wait(e->port, 100);
    dlq_port_dispatch(e->port);
    backlog_abandon(&e->backlog);
    backlog_abandon(exp_replay_backlog(e));
    exp_reject_abandon(e);
    if (e->port_ev) event_free(e->port_ev);
    e->port_ev = NULL;
    if (e->dlq_retry_ev) event_free(e->dlq_retry_ev);
    e->dlq_retry_ev = NULL;
    if (dlq_port_pending(e->port) > 0) {
        LOG_ERROR("the DLQ did not complete %zu appends within 10 s; leaving its port",
                  dlq_port_pending(e->port));
        e->port = NULL;
        return;
    }
    dlq_port_free(e->port);
    e->port = NULL;
}
