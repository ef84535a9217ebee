/* rcv_http.c — the OTLP/HTTP receiver's request handling (runtime/httpd.h).
 *
 * Lifecycle (rcv_new/start/stop_intake/free) and the request handler. The
 * handler routes by path and method, hands the body to rcv_decode() (pure,
 * rcv_decode.c), submits the protobuf to the pipeline (pipeline/pipeline.h)
 * and answers from the pipeline's outcome with bodies from rcv_respond.c —
 * inside pl_submit(), or later when the pipeline waits for the DLQ (httpd
 * keeps the request until its deferred answer). Everything here runs on the
 * ingest thread; only rcv_ready() may be read from elsewhere.
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

#include "receivers/otlp/rcv_decode.h"
#include "receivers/otlp/rcv_metrics.h"
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
    pipeline *pl;                     /* borrowed */
    rcv_http_metrics *m;              /* owned by the registry, or NULL */
    sw_metrics *reg;                  /* borrowed, may be NULL: the httpd's series */
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

/* Refusal after a successful decode: shutdown, queue full, no memory. */
static void refuse_push(receiver *r, httpd_req *req, int sig, rcv_content_type ct,
                        const pl_outcome *o)
{
    reply rp = {503, ct, RCV_GRPC_UNAVAILABLE, o->message ? o->message : "unavailable", 1, 0};
    rp.close = o->status == PL_REFUSED_SHUTDOWN;
    send_reply(r, req, sig, &rp);
}

/* A request on its way through the pipeline, until its outcome. */
typedef struct pending_req {
    receiver *r;
    httpd_req *req;
    int sig;
    rcv_content_type ct;
} pending_req;

/* pl_done_fn: counts the pipeline's outcome under transport "http" and
 * answers the request from it. */
static void on_outcome(void *arg, const pl_outcome *o)
{
    pending_req *pr = arg;
    receiver *r = pr->r;
    if (o->status == PL_ACCEPTED) {
        if (r->m) metrics_add(&r->m->rcv_items[pr->sig], o->items);
    } else {
        int reason = o->status == PL_REFUSED_SHUTDOWN ? RCV_REFUSE_SHUTDOWN
                   : o->status == PL_REFUSED_DECODE   ? RCV_REFUSE_DECODE
                                                      : RCV_REFUSE_QUEUE_FULL;
        count_refused(r, pr->sig, reason, o->items);
    }
    if (o->status == PL_ACCEPTED) {
        reply ok = {200, pr->ct, 0, NULL, 0, 0, o->rejected, o->message};
        send_reply(r, pr->req, pr->sig, &ok);
    } else if (o->status == PL_REFUSED_DECODE) {
        reply rp = {400, pr->ct, RCV_GRPC_INVALID_ARGUMENT,
                    o->message ? o->message : "malformed request", 0, 0};
        send_reply(r, pr->req, pr->sig, &rp);
    } else {
        refuse_push(r, pr->req, pr->sig, pr->ct, o);
    }
    free(pr);
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
    if (rcv_decode(&info, body, len, r->cap, &res) != 0) {
        refuse_decode(r, req, sig, ct, &res);
        goto done;
    }
    pending_req *pr = atomic_load(&r->accepting) ? malloc(sizeof *pr) : NULL;
    if (!pr) {
        int stopped = !atomic_load(&r->accepting);
        pl_outcome o = {stopped ? PL_REFUSED_SHUTDOWN : PL_REFUSED_NOMEM, res.items, 0,
                        stopped ? "shutting down" : "out of memory", 1};
        count_refused(r, sig, stopped ? RCV_REFUSE_SHUTDOWN : RCV_REFUSE_QUEUE_FULL, res.items);
        LOG_WARN_RL(10, "refused %s request (%u items): 503 %s",
                    sw_signal_name((sw_signal)sig), res.items, o.message);
        refuse_push(r, req, sig, ct, &o);
        goto done;
    }
    *pr = (pending_req){r, req, sig, ct};
    pl_request rq = {(sw_signal)sig, res.pb, res.pb_len, res.items, clock_mono_ns(), NULL};
    pl_submit(r->pl, &rq, on_outcome, pr);
done:
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

receiver *rcv_new(struct event_base *base, const cfg *c, pipeline *pl, sw_metrics *m)
{
    if (!base || !c || !pl) return NULL;
    receiver *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->base = base;
    r->c = c;
    r->pl = pl;
    r->m = rcv_http_metrics_get(m);
    r->reg = m;
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
    o.min_body_rate = r->c->receiver.http_min_body_rate;
    o.budget = r->bud;
    o.busy_ctype = rcv_content_type_str(RCV_CT_PROTOBUF);
    o.busy_body = r->busy.data;
    o.busy_len = r->busy.len;
    o.metrics = r->reg;
    o.metrics_server = "otlp_http";
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
    httpd_free(r->http);
    buf_destroy(&r->rsp);
    buf_destroy(&r->busy);
    budget_free(r->bud);
    free(r);
}
