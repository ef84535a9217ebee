/* rcv_http.c — the OTLP/HTTP receiver's request handling (runtime/httpd.h).
 *
 * Lifecycle (rcv_new/start/stop_intake/free) and the request handler. The
 * handler routes by path and method, hands the body to rcv_decode() (pure,
 * rcv_decode.c), pushes the protobuf as one item into the queue, and answers
 * with bodies from rcv_respond.c. Everything here runs on the ingest thread;
 * only rcv_ready() may be read from elsewhere.
 *
 * httpd enforces the HTTP limits: a body over max_request_body_size
 * (Content-Length, or a chunked body as soon as it passes the cap) is not
 * read; the handler is called without a body and answers 413 with a
 * google.rpc.Status, then the connection closes. A head over
 * RCV_MAX_HEADERS, malformed HTTP and unsupported protocol features are
 * answered by httpd itself (431/400/501/505) and are not counted in
 * rcv_requests. The read timeout closes idle keep-alive connections and
 * stalled clients.
 */
#include "receivers/otlp/receiver.h"

#define LOG_COMPONENT "receiver"

#include <event2/event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlq/dlq.h"
#include "processors/card_proc.h"
#include "processors/prio.h"
#include "receivers/otlp/rcv_decode.h"
#include "receivers/otlp/rcv_respond.h"
#include "runtime/budget.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/httpd.h"
#include "runtime/item.h"
#include "runtime/log.h"

#define RCV_MAX_HEADERS (64 * 1024)   /* request line + headers */
#define RCV_RSP_MAX (8 * 1024)        /* largest response body we write */

struct receiver {
    struct event_base *base;          /* borrowed */
    const cfg *c;                     /* borrowed */
    apq *q;                           /* borrowed */
    prio *prio;                       /* owned: the priority classifier */
    card *card;                       /* owned: cardinality limiter, or NULL */
    dlq_port *dport;                  /* owned: spill port into the DLQ, or NULL */
    struct event *port_ev;            /* owned: dispatches port completions */
    struct spill_ctx *cur;            /* the request being queued (spill hook) */
    unsigned pending;                 /* requests waiting for DLQ completions */
    sw_metrics *m;                    /* borrowed, may be NULL */
    httpd *http;                      /* owned */
    size_t cap;                       /* max_request_body_size */
    uint16_t port;
    _Atomic int accepting;            /* written on the ingest thread only */
    buf rsp;                          /* response body scratch, reused */
    budget *bud;                      /* owned: receivers.otlp.intake_memory */
    buf busy;                         /* google.rpc.Status of httpd's own 503 */
};

/* What one request gets back. */
typedef struct reply {
    int code;
    rcv_content_type ct;     /* response encoding = request's */
    int grpc_code;           /* error body; ignored for 200 */
    const char *msg;         /* error body message (borrowed) */
    int retry_after;         /* add Retry-After: 1 */
    int close;               /* add Connection: close */
    int64_t rejected;        /* 200: partial_success rejected count */
    const char *partial_msg; /* 200: partial_success error_message, or NULL */
    int allow;               /* add Allow: POST (405) */
} reply;

static void count_request(receiver *r, int sig, int code)
{
    if (r->m && sig >= 0)
        metrics_add(&r->m->rcv_requests[sig][metrics_code_index(code)], 1);
}

static void count_refused(receiver *r, int sig, int reason, uint32_t items)
{
    if (r->m && sig >= 0 && items > 0 && reason >= 0 && reason < RCV_REFUSE_COUNT)
        metrics_add(&r->m->rcv_refused_items[sig][reason], items);
}

/* Sends the reply; sig < 0 (unknown path) is not counted. */
static void send_reply(receiver *r, httpd_req *req, int sig, const reply *rp)
{
    int json = rp->ct == RCV_CT_JSON;
    buf_reset(&r->rsp);
    if (rp->code == 200) {
        if (rcv_encode_response((sw_signal)sig, json, rp->rejected, rp->partial_msg,
                                &r->rsp) != 0)
            buf_reset(&r->rsp);
    } else if (rcv_encode_status(json, rp->grpc_code, rp->msg, &r->rsp) != 0) {
        buf_reset(&r->rsp);
    }
    const char *extra = rp->retry_after ? "Retry-After: 1\r\n"
                      : rp->allow       ? "Allow: POST\r\n"
                                        : NULL;
    if (rp->close) httpd_req_close(req);
    count_request(r, sig, rp->code);
    httpd_reply(req, rp->code, rcv_content_type_str(rp->ct), extra, r->rsp.data, r->rsp.len);
}

/* The signal for an exact path (query string ignored), or -1. */
static int route(const httpd_req *req)
{
    const char *path = httpd_req_path(req);
    for (int s = 0; s < SIG_COUNT; s++)
        if (strcmp(path, sw_signal_path((sw_signal)s)) == 0) return s;
    return -1;
}

/* Answers a failed decode and counts the refusal. */
static void refuse_decode(receiver *r, httpd_req *req, int sig,
                          rcv_content_type ct, const rcv_result *res)
{
    reply rp = {res->http_status, ct, res->grpc_code, res->message, 0, 0};
    rp.retry_after = res->http_status == 503;
    count_refused(r, sig, res->reason, res->items);
    LOG_WARN_RL(10, "refused %s request: %d %s", sw_signal_name((sw_signal)sig),
                res->http_status, res->message);
    send_reply(r, req, sig, &rp);
}

/* Classifies the request into one item per priority class (the original
 * bytes when it is all one class) and queues them. 0 (queued or spilled),
 * or SW_EFULL / SW_ECLOSED / SW_ENOMEM / SW_EDECODE with nothing queued. */
static int enqueue(receiver *r, int sig, const uint8_t *pb, size_t len, uint32_t items)
{
    item *its[CLASS_COUNT];
    size_t n = 0, taken = 0;
    int rc = prio_items(r->prio, (sw_signal)sig, pb, len, items, clock_mono_ns(), its, &n);
    if (rc != 0) return rc;
    rc = apq_push_all(r->q, its, n, &taken);
    if (rc < 0)
        for (size_t i = taken; i < n; i++) item_free(its[i]);
    return rc < 0 ? rc : 0;
}

/* Metrics only: runs the cardinality limiter. Sets pb, len and items to what
 * goes on (the original bytes, or the rewritten request in cr->out) and
 * reports drops in cr. Fails open: on an internal error the original
 * request goes on unchanged. */
static void limit_cardinality(receiver *r, card_result *cr, const uint8_t **pb, size_t *len,
                              uint32_t *items)
{
    if (card_process(r->card, *pb, *len, clock_mono_ns(), cr) != 0) {
        LOG_WARN_RL(10, "cardinality limiter failed on a request; forwarding it unchanged");
        card_result_destroy(cr);
        return;
    }
    if (cr->unchanged) return;
    *pb = cr->out.data;
    *len = cr->out.len;
    *items = cr->points_out;
}

/* Refusal after a successful decode: shutdown, queue full, no memory. */
static void refuse_push(receiver *r, httpd_req *req, int sig,
                        rcv_content_type ct, uint32_t items, int err)
{
    reply rp = {503, ct, RCV_GRPC_UNAVAILABLE, "queue full", 1, 0};
    int reason = RCV_REFUSE_QUEUE_FULL;
    if (err == SW_ECLOSED) {
        rp.msg = "shutting down";
        rp.close = 1;
        reason = RCV_REFUSE_SHUTDOWN;
    } else if (err == SW_ENOMEM) {
        rp.msg = "out of memory";
    }
    count_refused(r, sig, reason, items);
    LOG_WARN_RL(10, "refused %s request (%u items): 503 %s", sw_signal_name((sw_signal)sig),
                items, rp.msg);
    send_reply(r, req, sig, &rp);
}

/* A request with items handed to the DLQ is answered only when the DLQ
 * reports them written (fsync'd with dlq.fsync: always): 200 when all were
 * stored, 503 + Retry-After when any was not. libevent keeps an unanswered
 * request alive even if its client goes away (the reply is then dropped). */
typedef struct spill_wait {
    receiver *r;
    httpd_req *req;
    int sig;
    rcv_content_type ct;
    uint32_t items;
    int64_t rejected;
    char msg[CARD_MSG_MAX];
    unsigned outstanding;    /* appends not yet completed */
    int issued;              /* every item of the request was handed on */
    int failed;              /* an item was refused or not stored */
} spill_wait;

typedef struct spill_ctx {
    httpd_req *req;
    int sig;
    rcv_content_type ct;
    spill_wait *wait;        /* created by the first spilled item */
} spill_ctx;

static void spill_finish(spill_wait *w)
{
    receiver *r = w->r;
    if (w->failed) {
        refuse_push(r, w->req, w->sig, w->ct, w->items, SW_EFULL);
    } else {
        if (r->m) metrics_add(&r->m->rcv_items[w->sig], w->items);
        reply ok = {200, w->ct, 0, NULL, 0, 0, w->rejected, w->rejected ? w->msg : NULL};
        send_reply(r, w->req, w->sig, &ok);
    }
    r->pending--;
    free(w);
}

static void spill_done(void *arg, item *it, int status)
{
    spill_wait *w = arg;
    if (status != 0) {
        LOG_WARN_RL(10, "DLQ could not store a spilled item: %s", sw_strerror(status));
        item_free(it);
        w->failed = 1;
    }
    if (--w->outstanding == 0 && w->issued) spill_finish(w);
}

/* apq spill interface: hands an item the memory queue will not take to the
 * DLQ. Runs inside apq_push_all() on the ingest thread. */
static int spill_to_dlq(void *arg, item *it)
{
    receiver *r = arg;
    spill_ctx *ctx = r->cur;
    if (!r->dport || !ctx) return SW_EFULL;
    if (!ctx->wait) {
        ctx->wait = calloc(1, sizeof *ctx->wait);
        if (!ctx->wait) return SW_ENOMEM;
        ctx->wait->r = r;
        ctx->wait->req = ctx->req;
        ctx->wait->sig = ctx->sig;
        ctx->wait->ct = ctx->ct;
        r->pending++;
    }
    int rc = dlq_append(r->dport, it, spill_done, ctx->wait);
    if (rc == 0) ctx->wait->outstanding++;
    return rc;
}

/* After enqueue: if items went to the DLQ, the answer waits for them.
 * Returns 1 when the request is now owned by the spill wait. */
static int spill_defer(receiver *r, spill_ctx *ctx, int rc, uint32_t items,
                       const card_result *cr)
{
    spill_wait *w = ctx->wait;
    if (!w) return 0;
    if (w->outstanding == 0) { /* the DLQ refused the first item */
        r->pending--;
        free(w);
        ctx->wait = NULL;
        return 0;
    }
    w->items = items;
    w->rejected = (int64_t)cr->rejected_points;
    if (cr->rejected_points) snprintf(w->msg, sizeof w->msg, "%s", cr->message);
    w->failed = rc != 0;
    w->issued = 1;
    return 1;
}

static void handle_export(receiver *r, httpd_req *req, int sig,
                          rcv_content_type ct)
{
    size_t len = 0;
    const uint8_t *body = httpd_req_body(req, &len);
    if (r->m) metrics_add(&r->m->rcv_bytes[sig], len);
    rcv_request_info info = {(sw_signal)sig, ct,
                             rcv_parse_encoding(httpd_req_header(req, "Content-Encoding"))};
    info.mem = r->bud;
    rcv_result res;
    card_result cr = {0}; /* before the first goto: destroyed at done */
    spill_ctx ctx = {req, sig, ct, NULL};
    if (rcv_decode(&info, body, len, r->cap, &res) != 0) {
        refuse_decode(r, req, sig, ct, &res);
        goto done;
    }
    int rc = atomic_load(&r->accepting) ? 0 : SW_ECLOSED;
    const uint8_t *pb = res.pb;
    size_t pb_len = res.pb_len;
    uint32_t items = res.items;
    if (rc == 0 && sig == SIG_METRICS && r->card && items > 0)
        limit_cardinality(r, &cr, &pb, &pb_len, &items);
    if (rc == 0 && items > 0) {
        r->cur = &ctx;
        rc = enqueue(r, sig, pb, pb_len, items);
        r->cur = NULL;
        if (spill_defer(r, &ctx, rc, items, &cr)) goto done;
    }
    if (rc == SW_EDECODE) {
        res.http_status = 400;
        res.grpc_code = RCV_GRPC_INVALID_ARGUMENT;
        snprintf(res.message, sizeof res.message, "malformed request");
        res.reason = RCV_REFUSE_DECODE;
        refuse_decode(r, req, sig, ct, &res);
        goto done;
    }
    if (rc != 0) {
        refuse_push(r, req, sig, ct, items, rc);
        goto done;
    }
    if (r->m) metrics_add(&r->m->rcv_items[sig], items);
    LOG_DEBUG("accepted %s request: %u items, %zu bytes", sw_signal_name((sw_signal)sig),
              items, pb_len);
    reply ok = {200, ct, 0, NULL, 0, 0, (int64_t)cr.rejected_points,
                cr.rejected_points ? cr.message : NULL};
    send_reply(r, req, sig, &ok);
done:
    card_result_destroy(&cr);
    rcv_result_destroy(&res);
}

static void on_request(httpd_req *req, void *arg)
{
    receiver *r = arg;
    rcv_content_type ct = rcv_parse_content_type(httpd_req_header(req, "Content-Type"));
    int sig = route(req);
    if (sig < 0) {
        LOG_DEBUG("404 for %s", httpd_req_path(req));
        reply rp = {404, ct, RCV_GRPC_NOT_FOUND, "not found", 0, 0};
        send_reply(r, req, -1, &rp);
        return;
    }
    if (strcmp(httpd_req_method(req), "POST") != 0) {
        LOG_DEBUG("405 for %s %s", httpd_req_method(req), httpd_req_path(req));
        reply rp = {405, ct, RCV_GRPC_UNIMPLEMENTED, "method not allowed (use POST)", 0, 0};
        rp.allow = 1;
        send_reply(r, req, sig, &rp);
        return;
    }
    if (httpd_req_busy(req)) {
        reply rp = {503, ct, RCV_GRPC_UNAVAILABLE, "intake memory exhausted", 1, 1};
        send_reply(r, req, sig, &rp);
        return;
    }
    if (httpd_req_too_large(req)) {
        LOG_WARN_RL(10, "refused %s request: 413 body over %zu bytes",
                    sw_signal_name((sw_signal)sig), r->cap);
        reply rp = {413, ct, RCV_GRPC_INVALID_ARGUMENT, "request body too large", 0, 1};
        send_reply(r, req, sig, &rp);
        return;
    }
    handle_export(r, req, sig, ct);
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

receiver *rcv_new(struct event_base *base, const cfg *c, apq *q, sw_metrics *m)
{
    char err[256];
    if (!base || !c || !q) return NULL;
    receiver *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->base = base;
    r->c = c;
    r->q = q;
    r->m = m;
    r->prio = prio_from_cfg(c, err, sizeof err);
    if (!r->prio) {
        LOG_ERROR("priority rules: %s", err);
        goto fail;
    }
    if (c->cardinality.enabled && !(r->card = make_card(c, m))) {
        LOG_ERROR("cannot create the cardinality limiter");
        goto fail;
    }
    uint64_t cap = c->receiver.http_max_request_body_size;
    r->cap = cap > (uint64_t)(SIZE_MAX / 2) ? SIZE_MAX / 2 : (size_t)cap;
    atomic_init(&r->accepting, 0);
    buf_init(&r->rsp, RCV_RSP_MAX);
    buf_init(&r->busy, RCV_RSP_MAX);
    uint64_t mem = c->receiver.intake_memory;
    r->bud = budget_new(mem > (uint64_t)(SIZE_MAX / 2) ? SIZE_MAX / 2 : (size_t)mem);
    if (!r->bud || budget_attach(r->bud, base) != 0 ||
        rcv_encode_status(0, RCV_GRPC_UNAVAILABLE, "intake memory exhausted", &r->busy) != 0)
        goto fail;
    return r;
fail:
    rcv_free(r);
    return NULL;
}

int rcv_start(receiver *r)
{
    char *host = NULL;
    uint16_t port = 0;
    int rc = 0;
    if (r->http) return SW_EINVAL;
    const char *ep = r->c->receiver.http_endpoint ? r->c->receiver.http_endpoint : "";
    rc = cfg_split_hostport(ep, &host, &port);
    if (rc != 0) {
        LOG_ERROR("invalid receivers.otlp.http.endpoint \"%s\"", ep);
        goto out;
    }
    httpd_opts o = {.max_body = r->cap, .max_head = RCV_MAX_HEADERS,
                    .timeout_ms = r->c->receiver.http_read_timeout_ms};
    o.max_conns = r->c->receiver.http_max_connections;
    o.head_timeout_ms = r->c->receiver.http_header_timeout_ms;
    o.budget = r->bud;
    o.busy_ctype = rcv_content_type_str(RCV_CT_PROTOBUF);
    o.busy_body = r->busy.data;
    o.busy_len = r->busy.len;
    r->http = httpd_new(r->base, &o, on_request, r);
    if (!r->http) {
        rc = SW_ENOMEM;
        goto out;
    }
    rc = httpd_bind(r->http, host, port);
    if (rc != 0) {
        LOG_ERROR("cannot listen on %s", ep);
        goto out;
    }
    r->port = httpd_port(r->http);
    atomic_store(&r->accepting, 1);
    LOG_INFO("OTLP/HTTP receiver listening on %s (port %u, max body %zu bytes)", ep,
             (unsigned)r->port, r->cap);
out:
    free(host);
    return rc;
}

uint16_t rcv_http_port(const receiver *r) { return r->port; }

static void on_port(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dlq_port_dispatch(arg);
}

int rcv_set_dlq(receiver *r, dlq *d)
{
    r->dport = dlq_port_new(d);
    if (!r->dport) return SW_ENOMEM;
    r->port_ev = event_new(r->base, dlq_port_fd(r->dport), EV_READ | EV_PERSIST, on_port,
                           r->dport);
    if (!r->port_ev || event_add(r->port_ev, NULL) != 0) return SW_ENOMEM;
    apq_spill sp = {spill_to_dlq, r};
    apq_set_spill(r->q, &sp);
    return 0;
}

void rcv_flush_spills(receiver *r, uint64_t timeout_ms)
{
    if (!r || !r->dport) return;
    int64_t deadline = clock_mono_ns() + (int64_t)timeout_ms * 1000000;
    dlq_port_dispatch(r->dport);
    while (r->pending && clock_mono_ns() < deadline) dlq_port_wait(r->dport, 50);
    if (r->pending)
        LOG_WARN("%u spilled requests still unanswered at shutdown", r->pending);
}

void rcv_stop_intake(receiver *r)
{
    if (!r) return;
    if (r->http && atomic_exchange(&r->accepting, 0)) {
        httpd_stop_accepting(r->http);
        LOG_INFO("OTLP/HTTP receiver stopped accepting connections");
    }
}

int rcv_ready(const receiver *r) { return r ? atomic_load(&r->accepting) : 0; }

budget *rcv_intake_budget(receiver *r) { return r->bud; }

void rcv_free(receiver *r)
{
    if (!r) return;
    if (r->dport) dlq_port_dispatch(r->dport); /* answer what the DLQ completed */
    httpd_free(r->http);
    card_free(r->card);
    prio_free(r->prio);
    if (r->port_ev) event_free(r->port_ev);
    dlq_port_free(r->dport);
    buf_destroy(&r->rsp);
    buf_destroy(&r->busy);
    budget_free(r->bud);
    free(r);
}
