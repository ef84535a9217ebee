/* exp_replay.c — the export loop's second source (exp_replay.h).
 *
 * DESIGN. The DLQ's consumer side (dlq/dlq_consumer.h) owns the reader and
 * the replay thread, paces records through the token bucket and hands
 * them over through a ring whose eventfd wakes the export thread. The
 * replay source is paused while the circuit breaker is not closed.
 *
 * The export thread takes records of one signal from the ring into one
 * replay batch (up to batch.max_bytes), sealed at once (the records are
 * already paced), and sends it like any batch (breaker ticket, retries).
 * At most one replay batch exists at a time (a 413 may split it into
 * pieces), so acknowledgements follow the reader's order: once every
 * piece is settled, dlq_replay_ack() with the batch's last position (the
 * dlq module adds the bytes to dlq_replayed_bytes). A piece given up
 * (retries exhausted) is appended to the main area again (at its end); a
 * piece the upstream refused for good goes to the rejected area with its
 * status and message — never back to the main area, so a poison record
 * cannot loop. The ack waits until those appends completed (the owner's
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
#include "exporters/otlp/exp_replay.h"

#include <event2/event.h>
#include <stdlib.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

struct exp_replay {
    dlq_replay *src;           /* owned: the DLQ's replay source */
    struct event *ev;          /* owned: watches its eventfd */
    exp_batcher *bt;           /* borrowed */
    dlq_sink *sink;            /* borrowed */
    exp_replay_cbs cbs;
    void *arg;
    uint64_t rate, interleave_ms; /* for the log line */
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

static void rp_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    exp_replay *rp = arg;
    (void)fd;
    (void)what;
    dlq_replay_clear(rp->src);
    rp->cbs.wake(rp->arg);
}

exp_replay *exp_replay_new(dlq *d, const cfg *c, struct event_base *base, exp_batcher *bt,
                           dlq_sink *sink, const exp_replay_cbs *cbs, void *arg)
{
    exp_replay *rp = calloc(1, sizeof *rp);
    if (!rp) return NULL;
    rp->bt = bt;
    rp->sink = sink;
    rp->cbs = *cbs;
    rp->arg = arg;
    rp->rate = c->dlq.replay_rate;
    rp->interleave_ms = c->dlq.replay_interleave_ms;
    rp->interleave_ns = (int64_t)c->dlq.replay_interleave_ms * 1000000LL;
    if (!(rp->src = dlq_replay_new(d, c->dlq.replay_rate))) goto fail;
    rp->ev = event_new(base, dlq_replay_fd(rp->src), EV_READ | EV_PERSIST, rp_ev_cb, rp);
    if (!rp->ev || event_add(rp->ev, NULL) != 0) goto fail;
    return rp;
fail:
    exp_replay_free(rp);
    return NULL;
}

int exp_replay_start(exp_replay *rp)
{
    int rc = dlq_replay_start(rp->src);
    if (rc == 0)
        LOG_INFO("DLQ replay: %llu bytes/s, interleaved with live traffic every %llu ms",
                 (unsigned long long)rp->rate, (unsigned long long)rp->interleave_ms);
    return rc;
}

void exp_replay_stop(exp_replay *rp)
{
    if (rp) dlq_replay_stop(rp->src);
}

void exp_replay_drain(exp_replay *rp)
{
    if (rp) dlq_replay_drain(rp->src);
}

void exp_replay_close(exp_replay *rp)
{
    if (rp) dlq_replay_close(rp->src);
}

void exp_replay_free(exp_replay *rp)
{
    if (!rp) return;
    dlq_replay_free(rp->src);
    if (rp->ev) event_free(rp->ev);
    free(rp);
}

void exp_replay_pause(exp_replay *rp, int paused)
{
    dlq_replay_pause(rp->src, paused);
}

/* ---- export thread ---------------------------------------------------------- */

/* Acks the replay batch once every piece is settled and every append of
 * its items completed. */
static void settle(exp_replay *rp)
{
    if (!rp->ack_owed || rp->batch_out > 0 || rp->reappend_pending > 0) return;
    if (!rp->let_go) dlq_replay_ack(rp->src, &rp->ack_after);
    rp->ack_owed = 0;
    rp->cbs.wake(rp->arg);
}

static void reappend_done(void *arg, item *it, int status)
{
    exp_replay *rp = arg;
    rp->cbs.reappended(rp->arg, it, status);
    rp->reappend_pending--;
    settle(rp);
}

static void rejected_done(void *arg, item *it, int status)
{
    exp_replay *rp = arg;
    rp->cbs.rejected(rp->arg, it, status);
    rp->reappend_pending--;
    settle(rp);
}

int exp_replay_turn(exp_replay *rp, int live_waiting, int slot_idle)
{
    if (rp->batch_out || rp->ack_owed || !dlq_replay_peek(rp->src)) return 0;
    if (!live_waiting) return 1;
    int64_t now = clock_mono_ns();
    if (now >= rp->phase_end_ns) {
        rp->phase_replay = !rp->phase_replay;
        rp->phase_end_ns = now + rp->interleave_ns;
    }
    return rp->phase_replay || slot_idle;
}

int exp_replay_take(exp_replay *rp)
{
    const item *next = dlq_replay_peek(rp->src);
    exp_batch *b = exp_batch_new(rp->bt, (sw_signal)next->signal);
    if (!b) return SW_ENOMEM;
    b->replay = 1;
    uint64_t max = exp_batcher_max_bytes(rp->bt);
    while ((next = dlq_replay_peek(rp->src)) != NULL && next->signal == b->sig &&
           (b->n_items == 0 || b->raw_len + next->len <= max))
        exp_batch_append(b, dlq_replay_take(rp->src, &b->rp_last));
    rp->batch_out = 1;
    rp->ack_owed = 1;
    rp->let_go = 0;
    rp->ack_after = b->rp_last;
    exp_batch_seal(b, rp->phase_replay);
    return 0;
}

void exp_replay_acked(exp_replay *rp)
{
    rp->batch_out--; /* every piece carries the batch's position: acked once all settle */
    settle(rp);
}

void exp_replay_repiece(exp_replay *rp, int delta)
{
    rp->batch_out += delta;
    settle(rp);
}

static uint32_t chain_len(const item *chain)
{
    uint32_t n = 0;
    for (; chain; chain = chain->next) n++;
    return n;
}

/* Stopping: the piece is let go; the batch stays in the DLQ, unacked. */
static int let_go(exp_replay *rp, exp_batch *b, const char *why, int stopping)
{
    if (!stopping) return 0;
    LOG_INFO("stop: a replay batch of %u items (%s) stays in the DLQ", b->n_items, why);
    rp->let_go = 1;
    rp->batch_out--;
    exp_batch_done(b);
    settle(rp);
    return 1;
}

void exp_replay_failed(exp_replay *rp, exp_batch *b, const char *why, int stopping)
{
    if (let_go(rp, b, why, stopping)) return;
    uint32_t n = b->n_items;
    sw_signal sig = b->sig;
    item *chain = exp_batch_take_items(b);
    exp_batch_done(b);
    rp->batch_out--;
    LOG_WARN_RL(1, "replay: a %s batch of %u items failed (%s): appended to the DLQ again",
                sw_signal_name(sig), n, why);
    rp->reappend_pending += chain_len(chain); /* each completion takes one off */
    for (item *it = chain, *next; it; it = next) {
        next = it->next;
        int rc = dlq_sink_put(rp->sink, it, reappend_done, rp);
        if (rc != 0) reappend_done(rp, it, rc);
    }
    settle(rp);
}

void exp_replay_rejected(exp_replay *rp, exp_batch *b, int code, const char *msg, int stopping)
{
    if (let_go(rp, b, "refused by the upstream", stopping)) return;
    item *chain = exp_batch_take_items(b);
    exp_batch_done(b);
    rp->batch_out--;
    rp->reappend_pending += chain_len(chain);
    for (item *it = chain, *next; it; it = next) {
        next = it->next;
        it->next = NULL;
        int rc = dlq_sink_put_rejected(rp->sink, it, code, msg, rejected_done, rp);
        if (rc != 0) rejected_done(rp, it, rc);
    }
    settle(rp);
}
