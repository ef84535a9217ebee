/* exp_replay.c — DLQ replay: the replay thread and its hand-off to the
 * export thread.
 *
 * DESIGN. The replay thread (blocking I/O allowed: it verifies segments and
 * reads records) loops: while the breaker is CLOSED (an atomic the export
 * thread publishes) it takes the next record from the dlq_reader, waits for
 * the token bucket (dlq.replay.rate bytes of request per second; the
 * bucket paces item->len, the request bytes), and pushes {item, dlq_pos}
 * into a small SPSC ring (queue/ring.h), writing an eventfd that wakes the
 * export thread. With nothing to read, the breaker not closed or the ring
 * full, it sleeps on a condition variable for at most RP_WAIT_MS, woken
 * early when the export thread takes from the ring, the breaker closes or
 * the exporter stops. dlq_reader_next() also persists the cursor when due;
 * while idle the thread calls dlq_reader_sync(r, 0) itself.
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

#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "dlq/dlq_tb.h"
#include "queue/ring.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define RP_RING_SLOTS 64
#define RP_WAIT_MS 100     /* breaker not closed, ring full, read error */
#define RP_IDLE_MS 50      /* nothing readable in the DLQ now */

typedef struct rp_rec {
    item *it;
    dlq_pos pos;
} rp_rec;

struct exp_replay {
    exporter *e;
    dlq_reader *r;             /* owned */
    ring *ring;                /* rp_rec*: replay thread -> export thread */
    int efd;                   /* eventfd: records in the ring */
    struct event *ev;
    pthread_t th;
    int running;               /* thread created, not joined (main thread) */
    int sync_init;             /* mu and cv initialised */
    _Atomic int stop;
    pthread_mutex_t mu;        /* protects kick */
    pthread_cond_t cv;         /* signalled with kick set */
    int kick;
    /* replay thread only */
    dlq_tb tb;
    uint64_t rate;             /* 0: unpaced */
    rp_rec *held;              /* read, waiting for tokens or ring room */
    /* export thread only */
    exp_backlog bl;            /* re-appends waiting for room in the DLQ */
    int batch_out;             /* pieces of the replay batch not yet settled */
    uint32_t reappend_pending; /* re-appended or rejected items not yet completed */
    int ack_owed;              /* a replay batch exists and is not acked yet */
    int let_go;                /* stopping: a piece failed, do not ack */
    dlq_pos ack_after;         /* its last position */
    int phase_replay;          /* interleave: replay has priority */
    int64_t phase_end_ns;
    int64_t interleave_ns;
};

/* ---- replay thread ---------------------------------------------------------- */

static void rp_kick(exp_replay *rp)
{
    pthread_mutex_lock(&rp->mu);
    rp->kick = 1;
    pthread_cond_signal(&rp->cv);
    pthread_mutex_unlock(&rp->mu);
}

static void rp_sleep(exp_replay *rp, int64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ns += ts.tv_nsec;
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&rp->mu);
    while (!rp->kick && !atomic_load(&rp->stop))
        if (pthread_cond_timedwait(&rp->cv, &rp->mu, &ts) == ETIMEDOUT) break;
    rp->kick = 0;
    pthread_mutex_unlock(&rp->mu);
}

/* Reads the next record into rp->held. 0, or how long to wait. */
static int64_t rp_read(exp_replay *rp)
{
    rp_rec *rec = malloc(sizeof *rec);
    if (!rec) return RP_WAIT_MS * 1000000LL;
    int rc = dlq_reader_next(rp->r, &rec->it, &rec->pos);
    if (rc == 0 && rec->it) {
        rp->held = rec;
        return 0;
    }
    free(rec);
    if (rc) {
        LOG_ERROR_RL(10, "replay: cannot read the DLQ: %s", sw_strerror(rc));
        return RP_WAIT_MS * 1000000LL;
    }
    return RP_IDLE_MS * 1000000LL;
}

/* One step; returns how long to sleep (0: go on at once). */
static int64_t rp_step(exp_replay *rp)
{
    if (atomic_load(&rp->e->circuit) != BRK_CLOSED) {
        dlq_reader_sync(rp->r, 0);
        return RP_WAIT_MS * 1000000LL;
    }
    if (!rp->held) {
        int64_t w = rp_read(rp);
        if (w) {
            dlq_reader_sync(rp->r, 0);
            return w;
        }
    }
    int64_t now = clock_mono_ns();
    size_t len = rp->held->it->len;
    if (rp->rate) {
        int64_t w = dlq_tb_wait_ns(&rp->tb, len, now);
        if (w > 0) return w;
    }
    if (ring_full(rp->ring)) return RP_WAIT_MS * 1000000LL; /* kicked when taken */
    if (rp->rate) dlq_tb_take(&rp->tb, len, now);
    ring_push(rp->ring, rp->held);
    rp->held = NULL;
    uint64_t one = 1;
    ssize_t wr = write(rp->efd, &one, sizeof one);
    (void)wr; /* EAGAIN only when the counter is saturated: still readable */
    return 0;
}

static void *rp_main(void *arg)
{
    exp_replay *rp = arg;
    pthread_setname_np(pthread_self(), "sw-replay");
    if (rp->rate) dlq_tb_init(&rp->tb, rp->rate, 0, clock_mono_ns());
    while (!atomic_load(&rp->stop)) {
        int64_t w = rp_step(rp);
        if (w > 0) rp_sleep(rp, w);
    }
    if (rp->held) { /* read but not handed over: still in the DLQ, unacked */
        item_free(rp->held->it);
        free(rp->held);
        rp->held = NULL;
    }
    return NULL;
}

/* ---- export thread ---------------------------------------------------------- */

static void rp_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    exporter *e = arg;
    uint64_t v;
    ssize_t rd = read(fd, &v, sizeof v);
    (void)rd;
    (void)what;
    exp_schedule_pump(e);
}

static void ack(exp_replay *rp, const dlq_pos *pos)
{
    if (rp->r) dlq_reader_ack(rp->r, pos); /* no reader any more: replayed again */
}

/* Acks the replay batch once every piece is settled and every append of
 * its items completed. */
static void rp_settle(exporter *e)
{
    exp_replay *rp = e->rp;
    if (!rp->ack_owed || rp->batch_out > 0 || rp->reappend_pending > 0) return;
    if (!rp->let_go) ack(rp, &rp->ack_after);
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
    if (atomic_load(&e->circuit) != BRK_CLOSED || !ring_peek(rp->ring)) return 0;
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
    rp_rec *rec = ring_peek(rp->ring);
    exp_batch *b = exp_batch_new(e, (sw_signal)rec->it->signal);
    if (!b) return SW_ENOMEM;
    b->replay = 1;
    uint64_t max = e->c->exporter.batch_max_bytes;
    while ((rec = ring_peek(rp->ring)) != NULL && rec->it->signal == b->sig &&
           (b->n_items == 0 || b->raw_len + rec->it->len <= max)) {
        ring_pop(rp->ring);
        exp_batch_append(b, rec->it);
        b->rp_last = rec->pos;
        free(rec);
    }
    rp->batch_out = 1;
    rp->ack_owed = 1;
    rp->let_go = 0;
    rp->ack_after = b->rp_last;
    exp_batch_seal_at(e, b, rp->phase_replay);
    rp_kick(rp); /* room in the ring */
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
        int rc = exp_spill_via(e, &rp->bl, it);
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

void exp_replay_wake(exporter *e)
{
    rp_kick(e->rp);
}

exp_backlog *exp_replay_backlog(exporter *e)
{
    return e->rp ? &e->rp->bl : NULL;
}

/* ---- life cycle (main thread) ----------------------------------------------- */

static int rp_thread_start(exp_replay *rp)
{
    sigset_t all, old;
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) return SW_ENOMEM;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&rp->mu, NULL);
    pthread_cond_init(&rp->cv, &ca);
    pthread_condattr_destroy(&ca);
    rp->sync_init = 1;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals belong to main */
    int rc = pthread_create(&rp->th, NULL, rp_main, rp);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        LOG_ERROR("cannot start the replay thread: %s", strerror(rc));
        return SW_EIO;
    }
    rp->running = 1;
    return 0;
}

int exp_replay_start(exporter *e)
{
    exp_replay *rp = calloc(1, sizeof *rp);
    if (!rp) return SW_ENOMEM;
    e->rp = rp;
    rp->e = e;
    rp->efd = -1;
    rp->rate = e->c->dlq.replay_rate;
    rp->interleave_ns = (int64_t)e->c->dlq.replay_interleave_ms * 1000000LL;
    rp->bl.items = SW_FIFO_INIT(item, next);
    rp->bl.cb = reappend_done;
    rp->bl.arg = e;
    rp->r = dlq_reader_new(e->dlq, 0, 0);
    rp->ring = ring_new(RP_RING_SLOTS);
    rp->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!rp->r || !rp->ring || rp->efd < 0) return SW_ENOMEM;
    rp->ev = event_new(e->base, rp->efd, EV_READ | EV_PERSIST, rp_ev_cb, e);
    if (!rp->ev || event_add(rp->ev, NULL) != 0) return SW_ENOMEM;
    int rc = rp_thread_start(rp);
    if (rc == 0)
        LOG_INFO("DLQ replay: %llu bytes/s, interleaved with live traffic every %llu ms",
                 (unsigned long long)rp->rate,
                 (unsigned long long)e->c->dlq.replay_interleave_ms);
    return rc;
}

void exp_replay_stop_thread(exporter *e)
{
    exp_replay *rp = e->rp;
    if (!rp || !rp->running) return;
    atomic_store(&rp->stop, 1);
    rp_kick(rp);
    pthread_join(rp->th, NULL);
    rp->running = 0;
}

void exp_replay_drain_ring(exporter *e)
{
    rp_rec *rec;
    while (e->rp && e->rp->ring && (rec = ring_pop(e->rp->ring)) != NULL) {
        item_free(rec->it); /* still in the DLQ, unacked */
        free(rec);
    }
}

void exp_replay_close_reader(exporter *e)
{
    if (!e->rp || !e->rp->r) return;
    dlq_reader_free(e->rp->r);
    e->rp->r = NULL;
}

void exp_replay_free(exporter *e)
{
    exp_replay *rp = e->rp;
    if (!rp) return;
    exp_replay_stop_thread(e);
    exp_replay_drain_ring(e);
    exp_replay_close_reader(e);
    ring_free(rp->ring);
    if (rp->ev) event_free(rp->ev);
    if (rp->efd >= 0) close(rp->efd);
    if (rp->sync_init) {
        pthread_mutex_destroy(&rp->mu);
        pthread_cond_destroy(&rp->cv);
    }
    free(rp);
    e->rp = NULL;
}
