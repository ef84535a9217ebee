/* pipeline.c — the stage between the receivers and the queue.
 *
 * pl_submit() runs, on the ingest thread: the cardinality limiter (metrics),
 * the priority classifier, and admission, then reports the outcome once.
 *
 * ADMISSION, all or nothing per request. The decision is taken once, for
 * the whole request, before anything is handed on:
 *   memory  the request's items (one, or one per class of a mixed request)
 *           all fit in the queue below queue.spill_threshold:
 *           apq_push_all() takes all of them or none (no spill interface
 *           is installed on the queue, so it never hands part of a request
 *           elsewhere). Accepted at once.
 *   DLQ     otherwise the request goes to the DLQ as ONE record: its bytes
 *           (after the limiter) unsplit, with the most critical class among
 *           its resources (nothing is demoted; replay does not order by
 *           class). One record is atomic: the writer either completes it
 *           (status 0: written, fsync'd per dlq.fsync) or cuts what it wrote
 *           and fails it, and a record is replayed only once whole and
 *           verified. The request is accepted when that append completes
 *           with 0, refused (503, retry) when dlq_append refuses it or the
 *           completion fails — then nothing of it was queued anywhere and
 *           nothing of it is ever replayed, so the client's retry is the
 *           only copy that arrives.
 * So no request is ever split between memory and the DLQ, and no part of a
 * refused request is forwarded.
 *
 * TRACKING (rq->trk). Every item made from a tracked request gets a
 * reference before it is handed on: the memory items (settled by the
 * exporter), or the one DLQ record (settled by the DLQ when stored). Items
 * memory did not take release theirs at once — without failing the tracker
 * when the request goes on to the DLQ, as failed when it is refused — so a
 * refused request holds no reference when its callback runs.
 */
#include "pipeline/pipeline.h"

#define LOG_COMPONENT "pipeline"

#include <event2/event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "dlq/dlq.h"
#include "dlq/dlq_journal.h"
#include "processors/card_proc.h"
#include "processors/prio.h"
#include "queue/apq.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/item_track.h"
#include "runtime/log.h"
#include "runtime/metrics.h"

#define PL_RETRY_AFTER_S 1

struct pipeline {
    struct event_base *base;   /* borrowed: the ingest thread's */
    const cfg *c;              /* borrowed */
    apq *q;                    /* borrowed */
    dlq *d;                    /* borrowed, may be NULL */
    sw_metrics *m;             /* borrowed, may be NULL */
    prio *prio;                /* owned: the priority classifier */
    card *card;                /* owned: cardinality limiter, or NULL */
    dlq_port *port;            /* owned: appends of whole requests, or NULL */
    struct event *port_ev;     /* owned: dispatches port completions */
    unsigned pending;          /* requests waiting for a DLQ completion */
    _Atomic int accepting;     /* written on the ingest thread only */
    /* queue.mode durable (pipeline_durable.c) */
    int durable;
    dlq_journal *jnl;          /* owned: the journal's acknowledgement store */
    track_box *box;            /* owned: trackers of journaled requests */
    struct event *flush_ev;    /* owned: writes acknowledgements after a loop pass */
};

/* A request handed to the DLQ, until its completion. */
typedef struct pl_wait {
    pipeline *p;
    pl_done_fn cb;
    void *arg;
    sw_signal sig;
    uint32_t items;
    int64_t rejected;
    struct item_tracker *trk;  /* the request's tracker, or NULL (borrowed) */
    char msg[CARD_MSG_MAX];
} pl_wait;

/* ---- outcomes ------------------------------------------------------------ */

static void accept_done(pipeline *p, sw_signal sig, uint32_t items, int64_t rejected,
                        const char *msg, pl_done_fn cb, void *arg)
{
    (void)p;
    LOG_DEBUG("accepted %s request: %u items", sw_signal_name(sig), items);
    pl_outcome o = {PL_ACCEPTED, items, rejected, rejected && msg && *msg ? msg : NULL, 0};
    cb(arg, &o);
}

static void refuse_done(pipeline *p, sw_signal sig, pl_status st, uint32_t items,
                        pl_done_fn cb, void *arg)
{
    static const char *const msgs[] = {"", "queue full", "shutting down", "out of memory",
                                       "malformed request"};
    (void)p;
    LOG_WARN_RL(10, "refused %s request (%u items): %s", sw_signal_name(sig), items, msgs[st]);
    pl_outcome o = {st, items, 0, msgs[st], st == PL_REFUSED_DECODE ? 0 : PL_RETRY_AFTER_S};
    cb(arg, &o);
}

static pl_status status_of(int rc)
{
    return rc == SW_ECLOSED   ? PL_REFUSED_SHUTDOWN
         : rc == SW_ENOMEM    ? PL_REFUSED_NOMEM
         : rc == SW_EDECODE   ? PL_REFUSED_DECODE
                              : PL_REFUSED_FULL;
}

/* ---- admission ----------------------------------------------------------- */

/* The request's memory items: one, or one per class of a mixed request.
 * 0 with its[0..*n) owned by the caller, or a negative code (none made). */
static int make_items(pipeline *p, const pl_wait *w, const uint8_t *pb, size_t len,
                      const prio_result *pr, int64_t recv_ns, item *its[CLASS_COUNT], size_t *n)
{
    *n = 0;
    if (pr->single) {
        its[0] = item_new(w->sig, pr->klass, w->items, recv_ns, pb, len);
        *n = its[0] ? 1 : 0;
        return its[0] ? 0 : SW_ENOMEM;
    }
    item *per[CLASS_COUNT];
    int rc = prio_split(p->prio, w->sig, pb, len, pr, recv_ns, per);
    for (int k = 0; rc == 0 && k < CLASS_COUNT; k++)
        if (per[k]) its[(*n)++] = per[k];
    return rc;
}

/* Memory: the request's items, all or none. 0 (queued), SW_EFULL (does not
 * fit below the spill threshold: nothing queued), or another negative code.
 * Items not taken release their tracker reference (as failed unless the
 * request may still go to the DLQ: dlq_next) and are freed. */
static int admit_memory(pipeline *p, const pl_wait *w, const uint8_t *pb, size_t len,
                        const prio_result *pr, int64_t recv_ns, int dlq_next)
{
    item *its[CLASS_COUNT] = {0};
    size_t n = 0, taken = 0;
    int rc = make_items(p, w, pb, len, pr, recv_ns, its, &n);
    for (size_t i = 0; w->trk && i < n; i++) item_track_attach(its[i], w->trk);
    if (rc == 0) rc = apq_push_all(p->q, its, n, &taken);
    for (size_t i = taken; i < n; i++) {
        item_settle(its[i], !(rc == SW_EFULL && dlq_next));
        item_free(its[i]);
    }
    return rc < 0 ? rc : 0;
}

static void on_stored(void *arg, item *it, int status)
{
    pl_wait *w = arg;
    pipeline *p = w->p;
    p->pending--;
    if (status == 0) {
        accept_done(p, w->sig, w->items, w->rejected, w->msg, w->cb, w->arg);
    } else {
        LOG_WARN_RL(10, "DLQ could not store a %s request: %s", sw_signal_name(w->sig),
                    sw_strerror(status));
        item_free(it); /* settles its reference as failed */
        refuse_done(p, w->sig, PL_REFUSED_FULL, w->items, w->cb, w->arg);
    }
    free(w);
}

/* DLQ: the whole request as one record of its most critical class. 0 when
 * the append is under way (w is then owned by it), or a negative code with
 * nothing handed on. */
static int admit_dlq(pipeline *p, pl_wait *w, const uint8_t *pb, size_t len,
                     sw_class klass, int64_t recv_ns)
{
    if (!p->port) return SW_EFULL;
    item *it = item_new(w->sig, klass, w->items, recv_ns, pb, len);
    if (!it) return SW_ENOMEM;
    if (w->trk) item_track_attach(it, w->trk);
    int rc = dlq_append(p->port, it, on_stored, w);
    if (rc != 0) {
        item_free(it); /* settles its reference as failed */
        return rc == SW_ETOOBIG ? SW_EFULL : rc;
    }
    p->pending++;
    apq_count_spilled(p->q, klass);
    return 0;
}

/* ---- durable admission (queue.mode durable) -----------------------------
 *
 * While memory has room (fill below queue.spill_threshold), the request is
 * appended to the DLQ's journal as ONE record (its bytes after the limiter,
 * its most critical class) and its memory items are made at once but held
 * until that append completes; only then are they queued, all carrying one
 * tracker whose callback acknowledges the journal record (here, on the
 * ingest thread) once every item was delivered upstream or stored in the
 * DLQ's main area. The client's answer comes with the completion: 2xx
 * when the record is written (per dlq.fsync), 503 + Retry-After when the
 * journal refused it or the write failed (then nothing of it is queued).
 * Memory full by then: the held items go to the main area (spill) with the
 * same tracker; if even that fails they are dropped from memory and the
 * journal record stays unacknowledged: delivered after the next start.
 * When memory is already at its threshold, the request takes the memory
 * mode's DLQ path (one main-area record, 2xx once stored): it is durable
 * there and needs no journal record. A receiver's own tracker (rq->trk) is
 * settled when the journal record is stored. Acknowledgements are written
 * by flush_ev, after the loop pass that produced them. */

typedef struct pl_jwait {
    pl_wait w;
    item *its[CLASS_COUNT];  /* owned: the held memory items */
    size_t n;
    dlq_jpos pos;            /* set by the DLQ before the completion */
} pl_jwait;

typedef struct pl_jack {
    pipeline *p;
    dlq_jpos pos;
} pl_jack;

static void free_items(item **its, size_t n)
{
    for (size_t i = 0; i < n; i++) item_free(its[i]);
}

static void on_delivered(void *arg, int failed)
{
    pl_jack *a = arg;
    pipeline *p = a->p;
    if (!failed && p->jnl && dlq_journal_ack(p->jnl, &a->pos) == 0)
        event_active(p->flush_ev, EV_TIMEOUT, 0);
    free(a);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    pipeline *p = arg;
    (void)fd;
    (void)what;
    dlq_journal_flush(p->jnl);
}

static void on_spilled(void *arg, item *it, int status)
{
    pipeline *p = arg;
    p->pending--;
    if (status != 0) {
        LOG_WARN_RL(10, "DLQ could not store a journaled item: %s (delivered after a restart)",
                    sw_strerror(status));
        item_free(it); /* settles as failed: the journal record stays */
    }
}

/* The journal record is written: its items go to memory, or to the main
 * area when memory filled meanwhile. */
static void go_live(pipeline *p, pl_jwait *jw)
{
    size_t taken = 0;
    /* Counted first: a segment is deleted only once its count of stored
     * records is acknowledged, so one that never is keeps its segment. */
    int counted = dlq_journal_stored(p->jnl, &jw->pos) == 0;
    pl_jack *a = counted ? malloc(sizeof *a) : NULL;
    item_tracker *t = a ? item_tracker_new(p->box, on_delivered, a) : NULL;
    if (!t) {
        LOG_WARN_RL(10, "out of memory: a journaled request is delivered after a restart");
        free(a);
        free_items(jw->its, jw->n);
        return;
    }
    *a = (pl_jack){p, jw->pos};
    for (size_t i = 0; i < jw->n; i++) item_track_attach(jw->its[i], t);
    (void)apq_push_all(p->q, jw->its, jw->n, &taken);
    for (size_t i = taken; i < jw->n; i++) {
        item *it = jw->its[i];
        sw_class k = (sw_class)it->klass;
        if (dlq_append(p->port, it, on_spilled, p) != 0) {
            item_free(it); /* settles as failed: the journal record stays */
            continue;
        }
        p->pending++;
        apq_count_spilled(p->q, k);
    }
    item_tracker_release(t, 0);
}

static void on_journaled(void *arg, item *it, int status)
{
    pl_jwait *jw = arg;
    pipeline *p = jw->w.p;
    p->pending--;
    if (status != 0) {
        LOG_WARN_RL(10, "journal could not store a %s request: %s", sw_signal_name(jw->w.sig),
                    sw_strerror(status));
        item_free(it);
        free_items(jw->its, jw->n);
        if (jw->w.trk) item_tracker_release(jw->w.trk, 1);
        refuse_done(p, jw->w.sig, PL_REFUSED_FULL, jw->w.items, jw->w.cb, jw->w.arg);
    } else {
        if (jw->w.trk) item_tracker_release(jw->w.trk, 0); /* stored */
        go_live(p, jw);
        accept_done(p, jw->w.sig, jw->w.items, jw->w.rejected, jw->w.msg, jw->w.cb, jw->w.arg);
    }
    free(jw);
}

/* 0 when the journal append is under way (the callback answers), or a
 * negative code with nothing handed on. */
static int admit_journal(pipeline *p, const pl_wait *w, const uint8_t *pb, size_t len,
                         const prio_result *pr, int64_t recv_ns)
{
    pl_jwait *jw = calloc(1, sizeof *jw);
    if (!jw) return SW_ENOMEM;
    jw->w = *w;
    int rc = make_items(p, w, pb, len, pr, recv_ns, jw->its, &jw->n);
    item *rec = rc == 0 ? item_new(w->sig, pr->klass, w->items, recv_ns, pb, len) : NULL;
    if (rc == 0 && !rec) rc = SW_ENOMEM;
    if (rc == 0 && (rc = dlq_append_journal(p->port, rec, &jw->pos, on_journaled, jw)) != 0)
        item_free(rec);
    if (rc) {
        free_items(jw->its, jw->n);
        free(jw);
        return rc == SW_ETOOBIG ? SW_EFULL : rc;
    }
    if (w->trk) item_tracker_ref(w->trk); /* released by the completion */
    p->pending++;
    return 0;
}

/* Classifies and admits pb (what goes on after the limiter); runs cb. */
static void admit(pipeline *p, pl_wait *w, const uint8_t *pb, size_t len, int64_t recv_ns)
{
    prio_result pr;
    int rc = prio_classify(p->prio, w->sig, pb, len, &pr);
    if (rc == 0 && p->durable && apq_fill_ratio(p->q) < p->c->queue.spill_threshold) {
        rc = admit_journal(p, w, pb, len, &pr, recv_ns);
        if (rc == 0) return;
        refuse_done(p, w->sig, status_of(rc), w->items, w->cb, w->arg);
        return;
    }
    if (rc == 0) rc = admit_memory(p, w, pb, len, &pr, recv_ns, p->port != NULL);
    if (rc == 0) {
        LOG_DEBUG("accepted %s request: %u items, %zu bytes", sw_signal_name(w->sig), w->items,
                  len);
        accept_done(p, w->sig, w->items, w->rejected, w->msg, w->cb, w->arg);
        return;
    }
    if (rc == SW_EFULL) {
        pl_wait *hold = malloc(sizeof *hold);
        if (hold) {
            *hold = *w;
            rc = admit_dlq(p, hold, pb, len, pr.klass, recv_ns);
            if (rc == 0) return;
            free(hold);
        } else {
            rc = SW_ENOMEM;
        }
    }
    refuse_done(p, w->sig, status_of(rc), w->items, w->cb, w->arg);
}

/* Metrics only: runs the limiter. Sets pb, len and w->items to what goes on
 * and records drops in w. Fails open: on an internal error the original
 * request goes on unchanged. */
static void limit_cardinality(pipeline *p, card_result *cr, pl_wait *w, const uint8_t **pb,
                              size_t *len)
{
    if (card_process(p->card, *pb, *len, clock_mono_ns(), cr) != 0) {
        LOG_WARN_RL(10, "cardinality limiter failed on a request; forwarding it unchanged");
        card_result_destroy(cr);
        return;
    }
    if (cr->rejected_points) {
        w->rejected = (int64_t)cr->rejected_points;
        snprintf(w->msg, sizeof w->msg, "%s", cr->message);
    }
    if (cr->unchanged) return;
    *pb = cr->out.data;
    *len = cr->out.len;
    w->items = cr->points_out;
}

void pl_submit(pipeline *p, const pl_request *rq, pl_done_fn cb, void *arg)
{
    pl_wait w = {p, cb, arg, rq->sig, rq->items, 0, rq->trk, ""};
    card_result cr = {0};
    const uint8_t *pb = rq->pb;
    size_t len = rq->len;
    if (rq->sig >= SIG_COUNT) {
        refuse_done(p, SIG_TRACES, PL_REFUSED_DECODE, 0, cb, arg);
        return;
    }
    if (!atomic_load(&p->accepting)) {
        refuse_done(p, rq->sig, PL_REFUSED_SHUTDOWN, rq->items, cb, arg);
        return;
    }
    if (rq->sig == SIG_METRICS && p->card && rq->items > 0)
        limit_cardinality(p, &cr, &w, &pb, &len);
    if (w.items == 0) /* empty, or every point dropped: nothing to forward */
        accept_done(p, w.sig, 0, w.rejected, w.msg, cb, arg);
    else
        admit(p, &w, pb, len, rq->recv_ns);
    card_result_destroy(&cr);
}

/* ---- lifecycle ----------------------------------------------------------- */

int pl_ready(const pipeline *p)
{
    if (!p || !atomic_load(&p->accepting)) return 0;
    if (p->durable && !dlq_available(p->d)) return 0; /* durable intake needs the journal */
    /* memory at its spill threshold and the DLQ at max_size: refusing */
    if (p->d && apq_fill_ratio(p->q) >= p->c->queue.spill_threshold)
        return dlq_used_bytes(p->d) < p->c->dlq.max_size;
    return 1;
}

static card *make_card(const cfg *c, sw_metrics *m)
{
    card_config cc;
    card_config_default(&cc);
    cc.max_keys = c->cardinality.max_keys;
    cc.aggregate_threshold = c->cardinality.aggregate_threshold;
    cc.drop_threshold = c->cardinality.drop_threshold;
    cc.key_ttl_ns = (int64_t)c->cardinality.key_ttl_ms * 1000000;
    return card_new(&cc, m);
}

static void on_port(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dlq_port_dispatch(arg);
}

static int open_port(pipeline *p)
{
    p->port = dlq_port_new(p->d);
    if (!p->port) return SW_ENOMEM;
    p->port_ev = event_new(p->base, dlq_port_fd(p->port), EV_READ | EV_PERSIST, on_port,
                           p->port);
    if (!p->port_ev || event_add(p->port_ev, NULL) != 0) return SW_ENOMEM;
    return 0;
}

/* Moves what an earlier run left in the journal into the main area (in
 * either mode), then, in durable mode, sets up the acknowledgement store. */
static int open_journal(pipeline *p)
{
    dlq_jrecov st;
    int rc = dlq_journal_recover(p->d, &st);
    if (rc != 0 && rc != SW_EFULL && rc != SW_EUNAVAIL) {
        LOG_ERROR("journal recovery failed: %s", sw_strerror(rc));
        return rc;
    }
    if (p->c->queue.mode != CFG_QUEUE_DURABLE) return 0;
    p->durable = 1;
    p->jnl = dlq_journal_new(p->d);
    p->box = track_box_new(p->base);
    p->flush_ev = event_new(p->base, -1, 0, on_flush, p);
    if (!p->jnl || !p->box || !p->flush_ev) {
        LOG_ERROR("cannot set up the durable queue");
        return SW_ENOMEM;
    }
    LOG_INFO("queue.mode durable: every accepted request is journaled before its answer");
    return 0;
}

pipeline *pl_new(struct event_base *ingest, const cfg *c, apq *q, dlq *d, sw_metrics *m)
{
    char err[256];
    if (!ingest || !c || !q) return NULL;
    pipeline *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->base = ingest;
    p->c = c;
    p->q = q;
    p->d = d;
    p->m = m;
    p->prio = prio_from_cfg(c, err, sizeof err);
    if (!p->prio) {
        LOG_ERROR("priority rules: %s", err);
        goto fail;
    }
    if (c->cardinality.enabled && !(p->card = make_card(c, m))) {
        LOG_ERROR("cannot create the cardinality limiter");
        goto fail;
    }
    if (c->queue.mode == CFG_QUEUE_DURABLE && !d) {
        LOG_ERROR("queue.mode durable needs the DLQ");
        goto fail;
    }
    if (d && open_port(p) != 0) {
        LOG_ERROR("cannot create the pipeline's DLQ port");
        goto fail;
    }
    if (d && open_journal(p) != 0) goto fail;
    apq_set_spill(q, NULL); /* memory or DLQ is decided here, per request */
    atomic_init(&p->accepting, 1);
    return p;
fail:
    pl_free(p);
    return NULL;
}

int pl_reconfigure(pipeline *p, const cfg *c, char *err, size_t errlen)
{
    char why[256];
    if (errlen) err[0] = '\0';
    prio *next = prio_from_cfg(c, why, sizeof why);
    if (!next) {
        if (errlen) snprintf(err, errlen, "priority rules: %s", why);
        return SW_EINVAL;
    }
    if (p->card && card_reconfigure(p->card, c->cardinality.aggregate_threshold,
                                    c->cardinality.drop_threshold,
                                    (int64_t)c->cardinality.key_ttl_ms * 1000000) != 0) {
        if (errlen) snprintf(err, errlen, "cardinality thresholds out of range");
        prio_free(next);
        return SW_EINVAL;
    }
    prio_free(p->prio);
    p->prio = next;
    LOG_INFO("reconfigured: %zu priority rules, cardinality %s", prio_rule_count(next),
             p->card ? "thresholds updated" : "off");
    return 0;
}

void pl_stop_intake(pipeline *p)
{
    if (p && atomic_exchange(&p->accepting, 0))
        LOG_INFO("pipeline stopped taking requests (%u waiting for the DLQ)", p->pending);
}

unsigned pl_pending(const pipeline *p) { return p ? p->pending : 0; }

unsigned pl_flush(pipeline *p, uint64_t timeout_ms)
{
    if (!p || !p->port) return 0;
    int64_t deadline = clock_mono_ns() + (int64_t)timeout_ms * 1000000;
    dlq_port_dispatch(p->port);
    while (p->pending && clock_mono_ns() < deadline) dlq_port_wait(p->port, 50);
    if (p->pending) LOG_WARN("%u requests still wait for the DLQ at shutdown", p->pending);
    if (p->box) track_box_dispatch(p->box);
    dlq_journal_detach(p->jnl); /* the DLQ may close now: acks still go to their files */
    return p->pending;
}

void pl_free(pipeline *p)
{
    if (!p) return;
    if (p->box) track_box_dispatch(p->box); /* items settled since pl_flush */
    dlq_journal_free(p->jnl);
    track_box_free(p->box);
    if (p->flush_ev) event_free(p->flush_ev);
    if (p->port_ev) event_free(p->port_ev);
    dlq_port_free(p->port);
    card_free(p->card);
    prio_free(p->prio);
    free(p);
}
