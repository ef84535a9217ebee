/* exp_replay.c — the export loop's second source: DLQ replay.
 *
 * DESIGN. The DLQ's consumer side (dlq/dlq_consumer.h) owns the reader and
 * the replay thread, paces records through the token bucket and hands
 * them over through a ring whose eventfd wakes the export thread; this file
 * is the export loop's side of that interface. The replay source is paused
 * while the circuit breaker is not closed.
 *
 * The export thread takes records of one signal from the ring into one
 * replay batch (up to batch.max_bytes), sealed at once (the records are
 * already paced), and sends it like any batch (breaker ticket, retries).
 * At most one replay batch exists at a time (a 413 may split it into
 * pieces: exp_reject.c), so acknowledgements follow the reader's order:
 * once every piece is settled, dlq_reader_ack() with the batch's last
 * position (the dlq module adds the bytes to dlq_replayed_bytes). A piece
 * given up (retries exhausted) is appended to the main area again (at its
 * end); a piece the upstream refused for good goes to the rejected area
 * with its status and message — never back to the main area, so a poison
 * record cannot loop. The ack waits until those appends completed (the
 * callbacks count any failure as dropped), so nothing is lost and the
 * cursor moves on. While stopping, a piece that fails is simply let go:
 * the batch is not acked, so it is replayed after the next start.
 *
 * Interleaving with live traffic (exp_replay_turn): with only one source
 * holding data, that source is taken. With both, the priority alternates
 * every dlq.replay.interleave: in a replay phase the replay batch is taken
 * first and put first in line for a connection; in a live phase it is
 * taken only when a connection is idle. Under saturation this shares the
 * connections 1:1 in time; with spare capacity both proceed at full speed
 * (replay then at exactly its token-bucket rate).
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_int.h"

#include <event2/event.h>
#include <stdlib.h>

#include "dlq/dlq_consumer.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

struct exp_replay {
    exporter *e;
    dlq_replay *src;           /* owned: the DLQ's replay source */
    struct event *ev;          /* its eventfd */
    /* export thread only */
    int batch_out;             /* pieces of the replay batch not yet settled */
    uint32_t reappend_pending; /* re-appended or rejected items not yet completed */
    int ack_owed;              /* a replay batch exists and is not acked yet */
    int let_go;                /* stopping: a piece failed, do not ack */
    dlq_pos ack_after;         /* its last position */
    int phase_replay;          /* interleave: replay has priority */
    int64_t phase_end_ns;
    int64_t interleave_ns;
};

/* ---- export thread ---------------------------------------------------------- */

static void rp_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    exporter *e = arg;
    (void)fd;
    (void)what;
    dlq_replay_clear(e->rp->src);
    exp_schedule_pump(e);
}

/* Acks the replay batch once every piece is settled and every append of
 * its items completed. */
static void rp_settle(exporter *e)
{
    exp_replay *rp = e->rp;
    if (!rp->ack_owed || rp->batch_out > 0 || rp->reappend_pending > 0) return;
    if (!rp->let_go) dlq_replay_ack(rp->src, &rp->ack_after);
    rp->ack_owed = 0;
    exp_schedule_pump(e);
}

/* Completion of a re-append of a failed replay batch's item. */
static void reappend_done(void *arg, item *it, int status)
{
    exporter *e = arg;
    exp_replay *rp = e->rp;
    if (status != 0 && exp_spill_hold(e, it, status) != 0) {
        exp_count_dropped(e, (sw_signal)it->signal, 1, it->count);
        e->spill_failed_items_total++;
        LOG_ERROR_RL(1, "replay: the DLQ could not take back a %s item (%u records): %s; "
                     "dropped", sw_signal_name((sw_signal)it->signal), it->count,
                     sw_strerror(status));
        item_free(it);
    }
    rp->reappend_pending--;
    rp_settle(e);
}

/* Completion of a rejected-area append of a refused replay item. */
static void rejected_done(void *arg, item *it, int status)
{
    exporter *e = arg;
    exp_reject_item_done(e, it, status);
    e->rp->reappend_pending--;
    rp_settle(e);
}

int exp_replay_turn(exporter *e, int live_waiting)
{
    exp_replay *rp = e->rp;
    if (e->draining || rp->batch_out || rp->ack_owed) return 0;
    if (atomic_load(&e->circuit) != BRK_CLOSED || !dlq_replay_peek(rp->src)) return 0;
    if (!live_waiting) return 1;
    int64_t now = clock_mono_ns();
    if (now >= rp->phase_end_ns) {
        rp->phase_replay = !rp->phase_replay;
        rp->phase_end_ns = now + rp->interleave_ns;
    }
    if (rp->phase_replay) return 1;
    return !sw_fifo_peek(&e->ready) && e->active < e->n_conns;
}

int exp_replay_take(exporter *e)
{
    exp_replay *rp = e->rp;
    const item *next = dlq_replay_peek(rp->src);
    exp_batch *b = exp_batch_new(e, (sw_signal)next->signal);
    if (!b) return SW_ENOMEM;
    b->replay = 1;
    uint64_t max = e->c->exporter.batch_max_bytes;
    while ((next = dlq_replay_peek(rp->src)) != NULL && next->signal == b->sig &&
           (b->n_items == 0 || b->raw_len + next->len <= max))
        exp_batch_append(b, dlq_replay_take(rp->src, &b->rp_last));
    rp->batch_out = 1;
    rp->ack_owed = 1;
    rp->let_go = 0;
    rp->ack_after = b->rp_last;
    exp_batch_seal_at(e, b, rp->phase_replay);
    return 0;
}

void exp_replay_acked(exporter *e, exp_batch *b)
{
    (void)b; /* every piece carries the batch's position: acked once all settle */
    e->rp->batch_out--;
    rp_settle(e);
}

void exp_replay_repiece(exporter *e, int delta)
{
    e->rp->batch_out += delta;
    rp_settle(e);
}

static uint32_t chain_len(const item *chain)
{
    uint32_t n = 0;
    for (; chain; chain = chain->next) n++;
    return n;
}

/* Stopping: the piece is let go; the batch stays in the DLQ, unacked. */
static int let_go(exporter *e, exp_batch *b, const char *why)
{
    exp_replay *rp = e->rp;
    if (!e->draining) return 0;
    LOG_INFO("stop: a replay batch of %u items (%s) stays in the DLQ", b->n_items, why);
    rp->let_go = 1;
    rp->batch_out--;
    exp_batch_done(e, b);
    rp_settle(e);
    return 1;
}

void exp_replay_failed(exporter *e, exp_batch *b, const char *why)
{
    exp_replay *rp = e->rp;
    if (let_go(e, b, why)) return;
    uint32_t n = b->n_items;
    sw_signal sig = b->sig;
    item *chain = exp_batch_take_items(e, b);
    exp_batch_done(e, b);
    rp->batch_out--;
    LOG_WARN_RL(1, "replay: a %s batch of %u items failed (%s): appended to the DLQ again",
                sw_signal_name(sig), n, why);
    rp->reappend_pending += chain_len(chain); /* each completion takes one off */
    for (item *it = chain, *next; it; it = next) {
        next = it->next;
        int rc = dlq_sink_put(e->sink, it, reappend_done, e);
        if (rc != 0) reappend_done(e, it, rc);
    }
    rp_settle(e);
}

void exp_replay_rejected(exporter *e, exp_batch *b, int code, const char *msg)
{
    exp_replay *rp = e->rp;
    if (let_go(e, b, "refused by the upstream")) return;
    item *chain = exp_batch_take_items(e, b);
    exp_batch_done(e, b);
    rp->batch_out--;
    rp->reappend_pending += chain_len(chain);
    exp_reject_chain(e, chain, code, msg, rejected_done);
    rp_settle(e);
}

void exp_replay_circuit(exporter *e, int closed)
{
    if (e->rp) dlq_replay_pause(e->rp->src, !closed);
}

/* ---- life cycle (main thread) ----------------------------------------------- */

int exp_replay_start(exporter *e)
{
    exp_replay *rp = calloc(1, sizeof *rp);
    if (!rp) return SW_ENOMEM;
    e->rp = rp;
    rp->e = e;
    rp->interleave_ns = (int64_t)e->c->dlq.replay_interleave_ms * 1000000LL;
    rp->src = dlq_replay_new(e->dlq, e->c->dlq.replay_rate);
    if (!rp->src) return SW_ENOMEM;
    rp->ev = event_new(e->base, dlq_replay_fd(rp->src), EV_READ | EV_PERSIST, rp_ev_cb, e);
    if (!rp->ev || event_add(rp->ev, NULL) != 0) return SW_ENOMEM;
    int rc = dlq_replay_start(rp->src);
    if (rc == 0)
        LOG_INFO("DLQ replay: %llu bytes/s, interleaved with live traffic every %llu ms",
                 (unsigned long long)e->c->dlq.replay_rate,
                 (unsigned long long)e->c->dlq.replay_interleave_ms);
    return rc;
}

void exp_replay_stop_thread(exporter *e)
{
    if (e->rp) dlq_replay_stop(e->rp->src);
}

void exp_replay_drain_ring(exporter *e)
{
    if (e->rp && e->rp->src) dlq_replay_drain(e->rp->src);
}

void exp_replay_close_reader(exporter *e)
{
    if (e->rp) dlq_replay_close(e->rp->src);
}

void exp_replay_free(exporter *e)
{
    exp_replay *rp = e->rp;
    if (!rp) return;
    dlq_replay_free(rp->src);
    if (rp->ev) event_free(rp->ev);
    free(rp);
    e->rp = NULL;
}
