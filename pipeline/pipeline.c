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

/* Memory: the request's items, all or none. 0 (queued), SW_EFULL (does not
 * fit below the spill threshold: nothing queued), or another negative code.
 * Items not taken release their tracker reference (as failed unless the
 * request may still go to the DLQ: dlq_next) and are freed. */
static int admit_memory(pipeline *p, const pl_wait *w, const uint8_t *pb, size_t len,
                        const prio_result *pr, int64_t recv_ns, int dlq_next)
{
    item *its[CLASS_COUNT] = {0};
    size_t n = 0, taken = 0;
    int rc;
    if (pr->single) {
        its[0] = item_new(w->sig, pr->klass, w->items, recv_ns, pb, len);
        n = its[0] ? 1 : 0;
        rc = its[0] ? 0 : SW_ENOMEM;
    } else {
        item *per[CLASS_COUNT];
        rc = prio_split(p->prio, w->sig, pb, len, pr, recv_ns, per);
        for (int k = 0; rc == 0 && k < CLASS_COUNT; k++)
            if (per[k]) its[n++] = per[k];
    }
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
    if (p->m) metrics_add(&p->m->queue_spilled[klass], 1);
    return 0;
}

/* Classifies and admits pb (what goes on after the limiter); runs cb. */
static void admit(pipeline *p, pl_wait *w, const uint8_t *pb, size_t len, int64_t recv_ns)
{
    prio_result pr;
    int rc = prio_classify(p->prio, w->sig, pb, len, &pr);
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
    if (d && open_port(p) != 0) {
        LOG_ERROR("cannot create the pipeline's DLQ port");
        goto fail;
    }
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
    return p->pending;
}

void pl_free(pipeline *p)
{
    if (!p) return;
    if (p->port_ev) event_free(p->port_ev);
    dlq_port_free(p->port);
    card_free(p->card);
    prio_free(p->prio);
    free(p);
}
