/* dlq_sink.c — a producer's side of the DLQ on an event loop (see
 * dlq_consumer.h): port, completions, the ordered backlog, failure and
 * retry. */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_consumer.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlq/dlq_fmt.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/fifo.h"
#include "runtime/log.h"

/* One append: its caller's callback, and while backlogged what to append. */
typedef struct sink_req {
    struct sink_req *next;     /* backlog link */
    dlq_sink *s;
    item *it;                  /* while backlogged */
    dlq_done_fn cb;
    void *cb_arg;
    int rejected;              /* into the rejected area */
    int code;
    int probe;                 /* the failing sink's one try */
    char msg[DLQ_NOTE_MAX + 1];
} sink_req;

struct dlq_sink {
    dlq_port *port;            /* owned */
    struct event *port_ev;     /* owned */
    struct event *retry_ev;    /* owned */
    void (*on_room)(void *arg);
    void *arg;
    sw_fifo backlog;           /* sink_req, in order */
    int failing;
    int probe_out;
    int stopping;
    uint64_t backoff_ms;
    int64_t retry_ns;
};

static void failed(dlq_sink *s, int status, int probe)
{
    if (s->failing && !probe) return; /* an older append: already known */
    uint64_t ms = !s->failing ? DLQ_SINK_RETRY_MIN_MS
                  : s->backoff_ms * 2 > DLQ_SINK_RETRY_MAX_MS ? DLQ_SINK_RETRY_MAX_MS
                                                             : s->backoff_ms * 2;
    if (!s->failing)
        LOG_ERROR("the DLQ cannot store records (%s): appends refused, next try in %llu ms",
                  sw_strerror(status), (unsigned long long)ms);
    s->failing = 1;
    s->probe_out = 0;
    s->backoff_ms = ms;
    s->retry_ns = clock_mono_ns() + (int64_t)ms * 1000000LL;
    struct timeval tv = clock_ms_to_tv(ms);
    evtimer_add(s->retry_ev, &tv);
}

static void stored(dlq_sink *s)
{
    if (!s->failing) return;
    LOG_INFO("the DLQ stores records again");
    s->failing = 0;
    s->probe_out = 0;
    s->backoff_ms = 0;
    evtimer_del(s->retry_ev);
}

/* The writer's completion: health first, then the caller's callback. */
static void req_done(void *arg, item *it, int status)
{
    sink_req *r = arg;
    dlq_sink *s = r->s;
    if (status == 0) stored(s);
    else if (status != SW_ECLOSED) failed(s, status, r->probe);
    else if (r->probe) s->probe_out = 0;
    r->cb(r->cb_arg, it, status);
    free(r);
}

/* libevent measures timeouts from its cached loop time, so the timer may
 * fire slightly early: it is armed again for the rest (plus 1 ms). */
static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    dlq_sink *s = arg;
    (void)fd;
    (void)what;
    int64_t left = s->retry_ns - clock_mono_ns();
    if (s->failing && left > 0) {
        struct timeval tv = clock_ms_to_tv((uint64_t)(left / 1000000) + 1);
        evtimer_add(s->retry_ev, &tv);
        return;
    }
    s->on_room(s->arg);
}

int dlq_sink_blocked(const dlq_sink *s)
{
    return s->failing && !s->stopping && (s->probe_out || clock_mono_ns() < s->retry_ns);
}

int dlq_sink_backlogged(const dlq_sink *s)
{
    return sw_fifo_peek(&s->backlog) != NULL;
}

void dlq_sink_stopping(dlq_sink *s)
{
    s->stopping = 1;
}

/* One append through the port; r is the writer's callback argument. */
static int append(dlq_sink *s, sink_req *r)
{
    item *it = r->it;
    r->it = NULL;
    int rc = r->rejected ? dlq_append_rejected(s->port, it, r->code, r->msg, req_done, r)
                         : dlq_append(s->port, it, req_done, r);
    if (rc != 0) r->it = it;
    return rc;
}

/* SW_EFULL while completions are pending: the ring is full for now. */
static int full_for_now(const dlq_sink *s, int rc)
{
    return rc == SW_EFULL && dlq_port_pending(s->port) > 0;
}

static int put(dlq_sink *s, sink_req *r)
{
    if (sw_fifo_peek(&s->backlog)) { /* keep the order */
        sw_fifo_push(&s->backlog, r);
        return 0;
    }
    int rc = 0;
    if (s->failing && !s->stopping) {
        if (dlq_sink_blocked(s)) rc = SW_EIO;
        else r->probe = s->probe_out = 1;
    }
    int tried = rc == 0;
    if (rc == 0) rc = append(s, r);
    if (rc == 0) return 0;
    /* a refusal that is not about room (e.g. the DLQ reports its disk
     * failing) counts as a failed write */
    if (tried && rc != SW_EFULL && rc != SW_ETOOBIG && rc != SW_ECLOSED && rc != SW_ENOMEM)
        failed(s, rc, r->probe);
    if (r->probe) r->probe = s->probe_out = 0;
    if (full_for_now(s, rc)) {
        sw_fifo_push(&s->backlog, r);
        return 0;
    }
    free(r);
    return rc;
}

static sink_req *req_new(dlq_sink *s, item *it, dlq_done_fn cb, void *cb_arg)
{
    sink_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->s = s;
    r->it = it;
    r->cb = cb;
    r->cb_arg = cb_arg;
    return r;
}

int dlq_sink_put(dlq_sink *s, item *it, dlq_done_fn cb, void *cb_arg)
{
    sink_req *r = req_new(s, it, cb, cb_arg);
    return r ? put(s, r) : SW_ENOMEM;
}

int dlq_sink_put_rejected(dlq_sink *s, item *it, int code, const char *msg, dlq_done_fn cb,
                          void *cb_arg)
{
    sink_req *r = req_new(s, it, cb, cb_arg);
    if (!r) return SW_ENOMEM;
    r->rejected = 1;
    r->code = code;
    snprintf(r->msg, sizeof r->msg, "%s", msg ? msg : "");
    return put(s, r);
}

/* Appends backlogged requests while the DLQ takes them; a final refusal
 * is reported through the request's callback. */
static void flush(dlq_sink *s)
{
    sink_req *r;
    while ((r = sw_fifo_peek(&s->backlog)) != NULL) {
        int rc = dlq_sink_blocked(s) ? SW_EIO : append(s, r);
        if (rc != 0 && (full_for_now(s, rc) || rc == SW_EIO)) return; /* later */
        sw_fifo_pop(&s->backlog);
        if (rc != 0) {
            r->cb(r->cb_arg, r->it, rc);
            free(r);
        }
    }
}

static void port_cb(evutil_socket_t fd, short what, void *arg)
{
    dlq_sink *s = arg;
    (void)fd;
    (void)what;
    dlq_port_dispatch(s->port);
    flush(s);
    s->on_room(s->arg);
}

dlq_sink *dlq_sink_new(dlq *d, struct event_base *base, void (*on_room)(void *arg), void *arg)
{
    dlq_sink *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->on_room = on_room;
    s->arg = arg;
    s->backlog = SW_FIFO_INIT(sink_req, next);
    s->port = dlq_port_new(d);
    if (!s->port) goto fail;
    s->port_ev = event_new(base, dlq_port_fd(s->port), EV_READ | EV_PERSIST, port_cb, s);
    s->retry_ev = evtimer_new(base, retry_cb, s);
    if (!s->port_ev || !s->retry_ev || event_add(s->port_ev, NULL) != 0) goto fail;
    return s;
fail:
    dlq_sink_free(s);
    return NULL;
}

/* Refuses every backlogged request (SW_ECLOSED); returns how many. */
static size_t abandon(dlq_sink *s)
{
    size_t n = 0;
    sink_req *r;
    while ((r = sw_fifo_pop(&s->backlog)) != NULL) {
        r->cb(r->cb_arg, r->it, SW_ECLOSED);
        free(r);
        n++;
    }
    return n;
}

size_t dlq_sink_drain(dlq_sink *s, uint64_t ms, size_t *backlogged)
{
    int64_t end = clock_mono_ns() + (int64_t)ms * 1000000LL;
    s->stopping = 1;
    for (;;) {
        dlq_port_dispatch(s->port);
        flush(s);
        int64_t left = end - clock_mono_ns();
        if ((dlq_port_pending(s->port) == 0 && !dlq_sink_backlogged(s)) || left <= 0) break;
        dlq_port_wait(s->port, left > 100000000LL ? 100 : (int)(left / 1000000) + 1);
    }
    size_t n = abandon(s);
    if (backlogged) *backlogged = n;
    return dlq_port_pending(s->port);
}

void dlq_sink_free(dlq_sink *s)
{
    if (!s) return;
    if (s->port) {
        /* Completions still owed run here (the DLQ open or already
         * closed); the port cannot be freed while the writer may post. */
        for (int i = 0; i < 100 && dlq_port_pending(s->port) > 0; i++)
            dlq_port_wait(s->port, 100);
        dlq_port_dispatch(s->port);
    }
    abandon(s);
    if (s->port_ev) event_free(s->port_ev);
    if (s->retry_ev) event_free(s->retry_ev);
    if (s->port && dlq_port_pending(s->port) > 0)
        LOG_ERROR("the DLQ did not complete %zu appends within 10 s; leaving its port",
                  dlq_port_pending(s->port));
    else
        dlq_port_free(s->port);
    free(s);
}
