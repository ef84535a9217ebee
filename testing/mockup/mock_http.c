/* mock_http.c — the mock upstream's HTTP endpoints. See docs/mockup.md.
 *
 * POST /v1/{traces,metrics,logs}: fault decision first (admin fail count,
 * --fail-first, --rate-429, --error-rate); without a fault the body is
 * decoded and counted and the answer is --success-code, or 400/413/415.
 * Counters change when the request arrives; with --latency-ms only the
 * answer waits (an evtimer per request, never a sleep). During an outage
 * (mock_outage_loop.c) the outage decides before any of that.
 */
#define LOG_COMPONENT "mockup"

#include <errno.h>
#include <event2/buffer.h>
#include <sys/queue.h>
#include <event2/keyvalq_struct.h>
#include <stdlib.h>
#include <string.h>

#include "receivers/otlp/rcv_decode.h"
#include "receivers/otlp/rcv_respond.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "testing/mockup/mock_server_int.h"

static const char *reason_phrase(int code)
{
    switch (code) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return code < 400 ? "OK" : "Error";
    }
}

static int grpc_code(int http)
{
    switch (http) {
    case 400: case 415: return RCV_GRPC_INVALID_ARGUMENT;
    case 404: return RCV_GRPC_NOT_FOUND;
    case 413: case 429: return RCV_GRPC_RESOURCE_EXHAUSTED;
    case 502: case 503: case 504: return RCV_GRPC_UNAVAILABLE;
    default: return RCV_GRPC_INTERNAL;
    }
}

/* Sends a small text answer right away (non-export endpoints). */
static void reply_text(struct evhttp_request *req, int code, const char *ctype,
                       const void *data, size_t len)
{
    struct evbuffer *b = evbuffer_new();
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    if (b && len) evbuffer_add(b, data, len);
    evhttp_send_reply(req, code, reason_phrase(code), b);
    if (b) evbuffer_free(b);
}

static void reply_msg(struct evhttp_request *req, int code, const char *msg)
{
    reply_text(req, code, "text/plain; charset=utf-8", msg, strlen(msg));
}

/* ---- delayed replies ----------------------------------------------------- */

static void pending_unlink(mock_server *srv, mock_pending *p)
{
    if (p->prev) p->prev->next = p->next;
    else srv->pending = p->next;
    if (p->next) p->next->prev = p->prev;
}

/* Sends p's reply and frees p. evhttp frees the request itself if the
 * client went away meanwhile. */
static void pending_finish(mock_pending *p)
{
    pending_unlink(p->srv, p);
    event_free(p->timer);
    evhttp_send_reply(p->req, p->code, reason_phrase(p->code), p->body);
    evbuffer_free(p->body);
    free(p);
}

static void on_delay(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pending_finish(arg);
}

void mock_http_flush_pending(mock_server *srv)
{
    while (srv->pending) pending_finish(srv->pending);
}

void mock_http_release_req(struct evhttp_request *req)
{
    if (!evhttp_request_get_connection(req)) evhttp_request_free(req);
}

void mock_http_drop_pending(mock_server *srv)
{
    while (srv->pending) {
        mock_pending *p = srv->pending;
        pending_unlink(srv, p);
        event_free(p->timer);
        evbuffer_free(p->body);
        mock_http_release_req(p->req);
        free(p);
    }
}

/* Answers now, or after --latency-ms. Takes ownership of body. */
static void send_export_reply(mock_server *srv, struct evhttp_request *req, int code,
                              struct evbuffer *body)
{
    int ms = srv->latency_ms;
    mock_pending *p = ms > 0 ? calloc(1, sizeof *p) : NULL;
    if (p) p->timer = evtimer_new(srv->base, on_delay, p);
    if (p && p->timer) {
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        p->srv = srv;
        p->req = req;
        p->body = body;
        p->code = code;
        p->next = srv->pending;
        if (p->next) p->next->prev = p;
        srv->pending = p;
        evtimer_add(p->timer, &tv);
        return;
    }
    if (p) free(p);
    evhttp_send_reply(req, code, reason_phrase(code), body);
    evbuffer_free(body);
}

/* ---- POST /v1/<signal> ----------------------------------------------------- */

static void save_headers(mock_server *srv, struct evhttp_request *req)
{
    buf *h = mock_store_headers(srv->store);
    buf_reset(h);
    struct evkeyval *kv;
    TAILQ_FOREACH(kv, evhttp_request_get_input_headers(req), next)
    {
        if (buf_printf(h, "%s: %s\n", kv->key, kv->value) != 0) break;
    }
}

/* Decodes and counts the body; returns the status to answer and sets *msg
 * (static or in d) for errors. */
static int handle_body(mock_server *srv, struct evhttp_request *req, sw_signal sig, int ctype,
                       mock_decoded *d, const char **msg)
{
    struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
    int enc = rcv_parse_encoding(evhttp_find_header(ih, "Content-Encoding"));
    if (ctype == RCV_CT_UNKNOWN || enc == RCV_CE_UNKNOWN) {
        *msg = ctype == RCV_CT_UNKNOWN ? "unsupported Content-Type"
                                       : "unsupported Content-Encoding";
        return 415;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    const uint8_t *body = len ? evbuffer_pullup(in, -1) : NULL;
    if (len && !body) { *msg = "out of memory"; return 500; }
    if (mock_decode_body(sig, ctype, enc, body, len, srv->opts->fast, srv->store, d) != 0) {
        *msg = "out of memory";
        return 500;
    }
    if (d->status != 200) {
        if (d->status == 400) mock_store_count_decode_error(srv->store);
        LOG_INFO_RL(1, "%s request refused with %d: %s", sw_signal_name(sig), d->status, d->msg);
        *msg = d->msg;
        return d->status;
    }
    mock_store_count_accepted(srv->store, sig, d->items, len, d->pb_len);
    return srv->opts->success_code;
}

static struct evbuffer *export_body(sw_signal sig, int json, int code, const char *msg)
{
    struct evbuffer *eb = evbuffer_new();
    if (!eb || code == 204) return eb;
    buf b;
    buf_init(&b, 64 * 1024);
    int rc = code < 300 ? rcv_encode_response(sig, json, 0, NULL, &b)
                        : rcv_encode_status(json, grpc_code(code), msg, &b);
    if (rc == 0 && b.len) evbuffer_add(eb, b.data, b.len);
    buf_destroy(&b);
    return eb;
}

/* The answer an outage imposes: 0 none (decide normally), -1 hold the
 * request (hang), else the status. Counts requests received in an outage. */
static int outage_code(mock_server *srv, struct evhttp_request *req)
{
    int mode = mock_outage_update(srv, evhttp_request_get_connection(req));
    mock_outage_track(srv, req);
    if (mode == MOCK_OUT_NONE) return 0;
    mock_store_count_outage_request(srv->store, mock_outage_uptime_s(srv));
    switch (mode) {
    case MOCK_OUT_HANG:
    case MOCK_OUT_TRICKLE:
    case MOCK_OUT_CONTINUE: return -1;
    case MOCK_OUT_429: return 429;
    default: return 503; /* 503, or refuse on a connection kept open */
    }
}

static void on_export(mock_server *srv, struct evhttp_request *req, sw_signal sig)
{
    save_headers(srv, req);
    mock_store_count_request(srv->store, sig);
    int code = outage_code(srv, req);
    if (code < 0) {
        LOG_DEBUG("POST %s held (%s outage)", sw_signal_path(sig),
                  mock_outage_mode_name(srv->out_mode));
        mock_outage_hold(srv, req);
        return;
    }
    struct evkeyvalq *ih = evhttp_request_get_input_headers(req);
    int ctype = rcv_parse_content_type(evhttp_find_header(ih, "Content-Type"));
    int json = ctype == RCV_CT_JSON;
    const char *msg = code ? "upstream outage" : "injected failure";
    mock_decoded d;
    if (code == 0) code = mock_faults_decide(&srv->faults);
    if (code == 0) code = handle_body(srv, req, sig, ctype, &d, &msg);
    mock_store_count_response(srv->store, code);
    LOG_DEBUG("POST %s -> %d", sw_signal_path(sig), code);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    if (code != 204)
        evhttp_add_header(oh, "Content-Type", json ? "application/json" : "application/x-protobuf");
    if (code == 429) {
        char ra[24];
        snprintf(ra, sizeof ra, "%d", srv->opts->retry_after);
        evhttp_add_header(oh, "Retry-After", ra);
    }
    struct evbuffer *body = export_body(sig, json, code, msg);
    if (!body) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    send_export_reply(srv, req, code, body);
}

/* ---- other endpoints -------------------------------------------------------- */

static void on_stats(mock_server *srv, struct evhttp_request *req)
{
    buf b;
    buf_init(&b, 1024 * 1024);
    mock_outage_status os;
    mock_outage_status_get(srv, evhttp_request_get_connection(req), &os);
    if (mock_store_stats_json(srv->store, &os, &b) == 0)
        reply_text(req, 200, "application/json", b.data, b.len);
    else
        reply_msg(req, 500, "out of memory\n");
    buf_destroy(&b);
}

static void on_received(mock_server *srv, struct evhttp_request *req, sw_signal sig)
{
    const buf *l = mock_store_lines(srv->store, sig);
    reply_text(req, 200, "text/plain; charset=utf-8", l->data, l->len);
}

static void on_headers(mock_server *srv, struct evhttp_request *req)
{
    const buf *h = mock_store_headers(srv->store);
    reply_text(req, 200, "text/plain; charset=utf-8", h->data, h->len);
}

static void on_reset(mock_server *srv, struct evhttp_request *req)
{
    mock_store_reset(srv->store);
    LOG_INFO("counters and stored lines reset");
    reply_msg(req, 200, "ok\n");
}

/* Parses a decimal query value in [lo, hi]; absent keeps *out. */
static int query_long(struct evkeyvalq *q, const char *key, long lo, long hi, long *out)
{
    const char *v = evhttp_find_header(q, key);
    if (!v) return 0;
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end || n < lo || n > hi) return SW_EINVAL;
    *out = n;
    return 0;
}

static void on_admin_fail(mock_server *srv, struct evhttp_request *req)
{
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    long count = 1, code = 503;
    int bad = query && evhttp_parse_query_str(query, &q) != 0;
    if (!bad) bad = query_long(&q, "count", 0, 1000000000L, &count) != 0;
    if (!bad) bad = query_long(&q, "code", 100, 599, &code) != 0;
    evhttp_clear_headers(&q);
    if (bad) {
        reply_msg(req, 400, "usage: POST /admin/fail?count=N&code=C (N >= 0, C in 100..599)\n");
        return;
    }
    mock_faults_arm(&srv->faults, count, (int)code);
    LOG_INFO("admin: next %ld POSTs answer %ld", count, code);
    reply_msg(req, 200, "ok\n");
}

/* Parses the query of req into q; 0, or SW_EINVAL (q is then empty). */
static int parse_query(struct evhttp_request *req, struct evkeyvalq *q)
{
    TAILQ_INIT(q);
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    return query && evhttp_parse_query_str(query, q) != 0 ? SW_EINVAL : 0;
}

static void on_admin_outage(mock_server *srv, struct evhttp_request *req)
{
    struct evkeyvalq q;
    int64_t ms = -1;
    int bad = parse_query(req, &q) != 0;
    const char *secs = evhttp_find_header(&q, "seconds");
    const char *m = evhttp_find_header(&q, "mode");
    int mode = m ? mock_outage_mode_parse(m) : MOCK_OUT_REFUSE;
    if (!bad) bad = !secs || mock_parse_seconds(secs, &ms) != 0 || mode < 0;
    evhttp_clear_headers(&q);
    if (bad) {
        reply_msg(req, 400, "usage: POST /admin/outage?seconds=N"
                            "[&mode=refuse|503|429|hang|trickle|continue] "
                            "(N >= 0, decimals allowed; 0 ends it)\n");
        return;
    }
    if (ms > 0)
        LOG_INFO("admin: outage %s for %lld ms", mock_outage_mode_name(mode), (long long)ms);
    else
        LOG_INFO("admin: outage ended");
    /* A refuse outage drops every export connection but this one. */
    mock_outage_admin(srv, mode, ms, evhttp_request_get_connection(req));
    reply_msg(req, 200, "ok\n");
}

static void on_admin_latency(mock_server *srv, struct evhttp_request *req)
{
    struct evkeyvalq q;
    long ms = -1;
    int bad = parse_query(req, &q) != 0;
    if (!bad) bad = query_long(&q, "ms", 0, 3600000, &ms) != 0 || ms < 0;
    evhttp_clear_headers(&q);
    if (bad) {
        reply_msg(req, 400, "usage: POST /admin/latency?ms=N (0..3600000)\n");
        return;
    }
    srv->latency_ms = (int)ms;
    LOG_INFO("admin: latency %ld ms", ms);
    reply_msg(req, 200, "ok\n");
}

/* POST /admin/release: every answer waiting out its latency goes now. */
static void on_admin_release(mock_server *srv, struct evhttp_request *req)
{
    char msg[48];
    int n = 0;
    for (mock_pending *p = srv->pending; p; p = p->next) n++;
    mock_http_flush_pending(srv);
    LOG_INFO("admin: released %d delayed answers", n);
    snprintf(msg, sizeof msg, "released %d\n", n);
    reply_msg(req, 200, msg);
}

/* ---- routing ------------------------------------------------------------------ */

enum route_kind {
    R_EXPORT, R_STATS, R_RECEIVED, R_HEADERS, R_RESET, R_FAIL, R_OUTAGE, R_LATENCY, R_RELEASE,
    R_HEALTH
};

static const struct route {
    const char *path;
    int post;           /* 1: POST, 0: GET (and HEAD) */
    enum route_kind kind;
    sw_signal sig;
} routes[] = {
    {"/v1/traces", 1, R_EXPORT, SIG_TRACES},
    {"/v1/metrics", 1, R_EXPORT, SIG_METRICS},
    {"/v1/logs", 1, R_EXPORT, SIG_LOGS},
    {"/stats", 0, R_STATS, SIG_TRACES},
    {"/received/traces", 0, R_RECEIVED, SIG_TRACES},
    {"/received/metrics", 0, R_RECEIVED, SIG_METRICS},
    {"/received/logs", 0, R_RECEIVED, SIG_LOGS},
    {"/received/headers", 0, R_HEADERS, SIG_TRACES},
    {"/reset", 1, R_RESET, SIG_TRACES},
    {"/admin/fail", 1, R_FAIL, SIG_TRACES},
    {"/admin/outage", 1, R_OUTAGE, SIG_TRACES},
    {"/admin/latency", 1, R_LATENCY, SIG_TRACES},
    {"/admin/release", 1, R_RELEASE, SIG_TRACES},
    {"/healthz", 0, R_HEALTH, SIG_TRACES},
};

static void dispatch(mock_server *srv, struct evhttp_request *req, const struct route *r)
{
    switch (r->kind) {
    case R_EXPORT: on_export(srv, req, r->sig); break;
    case R_STATS: on_stats(srv, req); break;
    case R_RECEIVED: on_received(srv, req, r->sig); break;
    case R_HEADERS: on_headers(srv, req); break;
    case R_RESET: on_reset(srv, req); break;
    case R_FAIL: on_admin_fail(srv, req); break;
    case R_OUTAGE: on_admin_outage(srv, req); break;
    case R_LATENCY: on_admin_latency(srv, req); break;
    case R_RELEASE: on_admin_release(srv, req); break;
    case R_HEALTH: reply_msg(req, 200, "ok\n"); break;
    }
}

static void on_request(struct evhttp_request *req, void *arg)
{
    mock_server *srv = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (!path || !*path) path = "/";
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        const struct route *r = &routes[i];
        if (strcmp(path, r->path) != 0) continue;
        int ok = r->post ? m == EVHTTP_REQ_POST : (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD);
        if (ok) {
            dispatch(srv, req, r);
        } else {
            evhttp_add_header(evhttp_request_get_output_headers(req), "Allow",
                              r->post ? "POST" : "GET, HEAD");
            reply_msg(req, 405, "method not allowed\n");
        }
        return;
    }
    reply_msg(req, 404, "not found\n");
}

void mock_http_setup(mock_server *srv, struct evhttp *h) { evhttp_set_gencb(h, on_request, srv); }
