/* exp_http.c — the exporter's HTTP client: endpoint, connection pool,
 * requests with their deadline, answers. See exp_http.h.
 *
 * A pool of max_in_flight evhttp connections, each carrying at most one
 * request at a time and kept alive between requests. A connection that
 * failed or was closed by the peer is marked dead and replaced by a fresh
 * one before its next use. The deadline timer per connection cancels a
 * request that has no complete answer within the timeout (libevent resets
 * the connection and frees the request; its callback, if libevent still
 * runs it, finds no request of ours).
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_http.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/tls.h"

/* Largest piece of a request body handed to the socket in one call. */
#define EXP_MAX_SINGLE_WRITE (1 << 20)

#ifndef SW_VERSION
#define SW_VERSION "0.0.0"
#endif

typedef struct exp_http exp_http;

typedef struct pool_conn {
    exp_http *p;
    struct evhttp_connection *evcon; /* NULL: not created yet */
    int busy;                        /* a request of ours is in flight */
    exp_request r;                   /* that request */
    struct evhttp_request *req;      /* its libevent request, or NULL */
    struct event *deadline;          /* timeout for the whole request */
    int dead;                        /* closed or failed: replace before reuse */
    int req_error;                   /* evhttp_request_error of the request, -1 none */
    int nodelay;                     /* TCP_NODELAY set on its socket */
} pool_conn;

struct exp_http {
    const cfg *c;              /* borrowed */
    exp_metrics *m;            /* owned by the metrics registry */
    struct event_base *base;   /* borrowed */
    exp_endpoint ep;
    struct ssl_ctx_st *ssl;    /* https only */
    struct evdns_base *dns;    /* may be NULL: blocking resolution */
    pool_conn *conns;
    uint32_t n;
};

/* ---- endpoint ------------------------------------------------------------ */

int exp_header_reserved(const char *name)
{
    static const char *const reserved[] = {"Host", "Content-Type", "Content-Length",
                                           "Content-Encoding", "Transfer-Encoding",
                                           "Connection", NULL};
    for (const char *const *r = reserved; *r; r++)
        if (strcasecmp(name, *r) == 0) return 1;
    return 0;
}

static char *str_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *str_printf(const char *fmt, ...)
{
    char *s = NULL;
    va_list ap;
    va_start(ap, fmt);
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    return n < 0 ? NULL : s;
}

void exp_endpoint_destroy(exp_endpoint *ep)
{
    free(ep->host);
    free(ep->host_header);
    for (int s = 0; s < SIG_COUNT; s++) free(ep->path[s]);
    memset(ep, 0, sizeof *ep);
}

/* Host header and per-signal paths from a parsed endpoint. */
static int endpoint_derive(exp_endpoint *ep, const char *path)
{
    int dflt = ep->port == (ep->tls ? 443 : 80);
    const char *lb = strchr(ep->host, ':') ? "[" : "", *rb = *lb ? "]" : "";
    ep->host_header = dflt ? str_printf("%s%s%s", lb, ep->host, rb)
                           : str_printf("%s%s%s:%u", lb, ep->host, rb, (unsigned)ep->port);
    if (!ep->host_header) return SW_ENOMEM;
    size_t plen = path ? strlen(path) : 0;
    while (plen > 0 && path[plen - 1] == '/') plen--;
    for (int s = 0; s < SIG_COUNT; s++) {
        ep->path[s] = str_printf("%.*s%s", (int)plen, plen ? path : "",
                                 sw_signal_path((sw_signal)s));
        if (!ep->path[s]) return SW_ENOMEM;
    }
    return 0;
}

int exp_endpoint_parse(const char *url, exp_endpoint *ep)
{
    int rc = SW_EINVAL;
    memset(ep, 0, sizeof *ep);
    struct evhttp_uri *u = url ? evhttp_uri_parse(url) : NULL;
    if (!u) goto out;
    const char *scheme = evhttp_uri_get_scheme(u), *host = evhttp_uri_get_host(u);
    if (!scheme || !host || !*host) goto out;
    if (strcasecmp(scheme, "https") == 0) ep->tls = 1;
    else if (strcasecmp(scheme, "http") != 0) goto out;
    int port = evhttp_uri_get_port(u);
    if (port < 0) port = ep->tls ? 443 : 80;
    if (port == 0 || port > 65535) goto out;
    ep->port = (uint16_t)port;
    size_t hl = strlen(host);
    if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') ep->host = strndup(host + 1, hl - 2);
    else ep->host = strdup(host);
    rc = ep->host ? endpoint_derive(ep, evhttp_uri_get_path(u)) : SW_ENOMEM;
out:
    if (u) evhttp_uri_free(u);
    if (rc != 0) exp_endpoint_destroy(ep);
    return rc;
}

/* ---- connection pool ----------------------------------------------------- */

static void deadline_cb(evutil_socket_t fd, short what, void *arg);

static void conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
    pool_conn *cn = arg;
    (void)evcon;
    cn->dead = 1; /* never reused: replaced before the next request */
}

static void conn_free(pool_conn *cn)
{
    if (cn->evcon) {
        evhttp_connection_set_closecb(cn->evcon, NULL, NULL);
        evhttp_connection_free(cn->evcon);
    }
    cn->evcon = NULL;
    cn->dead = 0;
}

/* Requests are written in one go and answered before the next: Nagle's
 * algorithm would only hold the tail of a body (libevent writes at most
 * 16 KiB per call) until the peer's delayed ACK, 40 ms on Linux. The
 * socket exists once the connect started (at once for IP literals, after
 * the DNS answer otherwise), so this is tried after each request start. */
static void conn_nodelay(pool_conn *cn)
{
    if (cn->nodelay || !cn->evcon) return;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(cn->evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    int one = 1;
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0)
        cn->nodelay = 1;
}

static int conn_open(exp_http *p, pool_conn *cn)
{
    struct bufferevent *bev = NULL;
    if (p->ep.tls && !(bev = tls_client_bufferevent(p->base, p->ssl, p->ep.host,
                                                    p->c->exporter.tls_insecure_skip_verify)))
        return SW_ENOMEM;
    cn->evcon = evhttp_connection_base_bufferevent_new(p->base, p->dns, bev, p->ep.host,
                                                       p->ep.port);
    if (!cn->evcon) {
        if (bev) bufferevent_free(bev);
        return SW_ENOMEM;
    }
    struct timeval tv = clock_ms_to_tv(p->c->exporter.timeout_ms);
    evhttp_connection_set_timeout_tv(cn->evcon, &tv);
    evhttp_connection_set_retries(cn->evcon, 0);
    evhttp_connection_set_max_body_size(cn->evcon, EXP_MAX_RESPONSE_BODY);
    evhttp_connection_set_max_headers_size(cn->evcon, 64 * 1024);
    evhttp_connection_set_closecb(cn->evcon, conn_closed_cb, cn);
    /* One write per request: by default libevent hands the socket at most
     * 16 KiB per loop iteration, so a 32 KB body took two writes and two
     * trips through epoll. */
    struct bufferevent *ev = evhttp_connection_get_bufferevent(cn->evcon);
    if (ev) bufferevent_set_max_single_write(ev, EXP_MAX_SINGLE_WRITE);
    cn->dead = 0;
    cn->nodelay = 0;
    return 0;
}

/* An idle open connection, else a new one in a free slot; NULL if none. */
static pool_conn *conn_pick(exp_http *p)
{
    pool_conn *spare = NULL;
    for (uint32_t i = 0; i < p->n; i++) {
        pool_conn *cn = &p->conns[i];
        if (cn->busy) continue;
        if (cn->evcon && !cn->dead) return cn;
        if (cn->dead) conn_free(cn);
        if (!spare) spare = cn;
    }
    if (!spare || conn_open(p, spare) != 0) return NULL;
    return spare;
}

void exp_http_reap(exp_http *p)
{
    for (uint32_t i = 0; i < p->n; i++)
        if (p->conns[i].dead && !p->conns[i].busy) conn_free(&p->conns[i]);
}

void exp_http_close_all(exp_http *p, void (*abandoned)(void *ctx, void *arg), void *ctx)
{
    for (uint32_t i = 0; i < p->n; i++) {
        pool_conn *cn = &p->conns[i];
        if (cn->deadline) evtimer_del(cn->deadline);
        cn->req = NULL;
        if (cn->busy) {
            cn->busy = 0; /* its request is freed with the connection, unanswered */
            metrics_gauge_add(&p->m->exp_in_flight, -1);
            if (abandoned) abandoned(ctx, cn->r.arg);
        }
        conn_free(cn);
    }
}

uint32_t exp_http_size(const exp_http *p) { return p->n; }

exp_http *exp_http_new(struct event_base *base, const cfg *c, exp_metrics *m)
{
    exp_http *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->c = c;
    p->m = m;
    p->base = base;
    if (exp_endpoint_parse(c->exporter.endpoint, &p->ep) != 0) {
        LOG_ERROR("exporters.otlphttp.endpoint: cannot use \"%s\" (want http[s]://host[:port][/path])",
                  c->exporter.endpoint ? c->exporter.endpoint : "");
        goto fail;
    }
    int insecure = c->exporter.tls_insecure_skip_verify;
    if (p->ep.tls && !(p->ssl = tls_client_ctx_new(c->exporter.tls_ca_file, insecure)))
        goto fail;
    if (p->ep.tls && insecure)
        LOG_WARN("exporters.otlphttp.tls.insecure_skip_verify is set: the upstream "
                 "certificate is not verified");
    if (!tls_is_ip_literal(p->ep.host)) {
        p->dns = evdns_base_new(base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                          EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (!p->dns) LOG_WARN("no asynchronous DNS; resolving %s blocks the export thread",
                              p->ep.host);
    }
    p->n = c->exporter.max_in_flight ? c->exporter.max_in_flight : 1;
    p->conns = calloc(p->n, sizeof *p->conns);
    if (!p->conns) goto fail;
    for (uint32_t i = 0; i < p->n; i++) {
        p->conns[i].p = p;
        p->conns[i].deadline = evtimer_new(base, deadline_cb, &p->conns[i]);
        if (!p->conns[i].deadline) goto fail;
    }
    return p;
fail:
    exp_http_free(p);
    return NULL;
}

void exp_http_free(exp_http *p)
{
    if (!p) return;
    if (p->conns) exp_http_close_all(p, NULL, NULL);
    for (uint32_t i = 0; p->conns && i < p->n; i++)
        if (p->conns[i].deadline) event_free(p->conns[i].deadline);
    free(p->conns);
    if (p->dns) evdns_base_free(p->dns, 0);
    if (p->ssl) SSL_CTX_free(p->ssl);
    exp_endpoint_destroy(&p->ep);
    free(p);
}

/* ---- answers --------------------------------------------------------------- */

#define EXP_REQ_DEADLINE (-2) /* req_error: our deadline cut the request */

static const char *req_error_text(int err)
{
    switch (err) {
    case EXP_REQ_DEADLINE: return "no complete answer within exporters.otlphttp.timeout";
    case EVREQ_HTTP_TIMEOUT: return "timed out (exporters.otlphttp.timeout)";
    case EVREQ_HTTP_EOF: return "connection closed by the upstream";
    case EVREQ_HTTP_INVALID_HEADER: return "malformed response";
    case EVREQ_HTTP_BUFFER_ERROR: return "connection error";
    case EVREQ_HTTP_DATA_TOO_LONG: return "response body too large";
    default: return "connection refused or unreachable";
    }
}

static void log_no_response(exp_http *p, pool_conn *cn)
{
    char why[200];
    struct bufferevent *bev = cn->evcon ? evhttp_connection_get_bufferevent(cn->evcon) : NULL;
    SSL *ssl = (p->ep.tls && bev) ? bufferevent_openssl_get_ssl(bev) : NULL;
    unsigned long oe = ssl ? bufferevent_get_openssl_error(bev) : 0;
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK)
        snprintf(why, sizeof why, "TLS certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
    else if (oe)
        ERR_error_string_n(oe, why, sizeof why);
    else
        snprintf(why, sizeof why, "%s", req_error_text(cn->req_error));
    LOG_WARN_RL(10, "no response from %s:%u (%s); will retry", p->ep.host,
                (unsigned)p->ep.port, why);
}

/* Hands the answer (req NULL: none) to the request's done. */
static void answer(const exp_request *r, int code, struct evhttp_request *req)
{
    exp_answer a = {.code = code, .type = EXP_BODY_TEXT};
    if (req && code) {
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        a.retry_after = evhttp_find_header(h, "Retry-After");
        a.type = exp_body_type_of(evhttp_find_header(h, "Content-Type"));
        a.body_len = in ? evbuffer_get_length(in) : 0;
        a.body = a.body_len ? evbuffer_pullup(in, -1) : NULL;
    }
    r->done(r->arg, &a);
}

static void on_error(enum evhttp_request_error err, void *arg)
{
    pool_conn *cn = arg;
    cn->req_error = (int)err;
}

static void on_response(struct evhttp_request *req, void *arg)
{
    pool_conn *cn = arg;
    exp_http *p = cn->p;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    int busy = cn->busy;
    evtimer_del(cn->deadline);
    cn->req = NULL;
    cn->busy = 0;
    if (code == 0) cn->dead = 1;
    else conn_nodelay(cn);
    if (!busy) return; /* abandoned, or cut by the deadline */
    metrics_gauge_add(&p->m->exp_in_flight, -1);
    if (code == 0) log_no_response(p, cn);
    exp_request r = cn->r;
    answer(&r, code, req);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    pool_conn *cn = arg;
    exp_http *p = cn->p;
    struct evhttp_request *req = cn->req;
    (void)fd;
    (void)what;
    if (!cn->busy || !req) return;
    cn->busy = 0;
    cn->req = NULL;
    cn->dead = 1;
    evhttp_cancel_request(req);
    cn->req_error = EXP_REQ_DEADLINE; /* after the error callback the cancel ran */
    metrics_gauge_add(&p->m->exp_in_flight, -1);
    log_no_response(p, cn);
    exp_request r = cn->r;
    answer(&r, 0, NULL);
}

/* ---- requests -------------------------------------------------------------- */

static int add_headers(exp_http *p, const exp_request *r, struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    int rc = 0;
    rc |= evhttp_add_header(h, "Host", p->ep.host_header);
    rc |= evhttp_add_header(h, "User-Agent", "spillway/" SW_VERSION);
    rc |= evhttp_add_header(h, "Content-Type", "application/x-protobuf");
    if (r->encoding == CFG_COMP_GZIP) rc |= evhttp_add_header(h, "Content-Encoding", "gzip");
    if (r->encoding == CFG_COMP_ZSTD) rc |= evhttp_add_header(h, "Content-Encoding", "zstd");
    for (size_t i = 0; i < p->c->exporter.n_headers; i++) {
        const cfg_header *ch = &p->c->exporter.headers[i];
        if (exp_header_reserved(ch->name)) continue;
        rc |= evhttp_add_header(h, ch->name, ch->value);
    }
    return rc ? -1 : 0;
}

void exp_http_send(exp_http *p, const exp_request *r)
{
    pool_conn *cn = conn_pick(p);
    struct evhttp_request *req = cn ? evhttp_request_new(on_response, cn) : NULL;
    if (!req || add_headers(p, r, req) != 0 ||
        r->attach(r->arg, evhttp_request_get_output_buffer(req)) != 0) {
        if (req) evhttp_request_free(req);
        LOG_ERROR_RL(10, "cannot create a request to %s:%u (out of memory)", p->ep.host,
                     (unsigned)p->ep.port);
        answer(r, 0, NULL);
        return;
    }
    evhttp_request_set_error_cb(req, on_error);
    cn->req_error = -1;
    cn->busy = 1;
    cn->r = *r;
    cn->req = req;
    metrics_gauge_add(&p->m->exp_in_flight, 1);
    struct timeval tv = clock_ms_to_tv(p->c->exporter.timeout_ms);
    evtimer_add(cn->deadline, &tv);
    /* The callback may run before this returns (immediate connection
     * failure); after a failure here the request is libevent's. */
    if (evhttp_make_request(cn->evcon, req, EVHTTP_REQ_POST, p->ep.path[r->sig]) != 0 &&
        cn->busy && cn->req == req) {
        evtimer_del(cn->deadline);
        cn->busy = 0;
        cn->req = NULL;
        cn->dead = 1;
        metrics_gauge_add(&p->m->exp_in_flight, -1);
        LOG_WARN_RL(10, "cannot start a request to %s:%u; will retry", p->ep.host,
                    (unsigned)p->ep.port);
        answer(r, 0, NULL);
        return;
    }
    conn_nodelay(cn);
}

/* ---- reloads: which keys need a new pool, retiring the old one ---------- */

static int str_same(const char *a, const char *b)
{
    return (!a || !b) ? a == b : strcmp(a, b) == 0;
}

int exp_http_cfg_differs(const cfg *a, const cfg *b)
{
    if (!str_same(a->exporter.endpoint, b->exporter.endpoint) ||
        a->exporter.timeout_ms != b->exporter.timeout_ms ||
        a->exporter.max_in_flight != b->exporter.max_in_flight ||
        !str_same(a->exporter.tls_ca_file, b->exporter.tls_ca_file) ||
        a->exporter.tls_insecure_skip_verify != b->exporter.tls_insecure_skip_verify ||
        a->exporter.n_headers != b->exporter.n_headers)
        return 1;
    for (size_t i = 0; i < a->exporter.n_headers; i++)
        if (!str_same(a->exporter.headers[i].name, b->exporter.headers[i].name) ||
            !str_same(a->exporter.headers[i].value, b->exporter.headers[i].value))
            return 1;
    return 0;
}

/* A pool replaced by a reload: its requests in flight get their answers
 * there until the timer fires; then it is closed and freed. */
typedef struct retired {
    exp_http *pool;            /* owned */
    struct event *ev;          /* owned: retire_cb */
    exp_http_leftover_fn leftover;
    void *ctx;
} retired;

static void retire_free(retired *t, exp_http_leftover_fn fn)
{
    exp_http_close_all(t->pool, fn, t->ctx);
    exp_http_free(t->pool);
    event_free(t->ev);
    free(t);
}

static void retire_cb(evutil_socket_t fd, short what, void *arg)
{
    retired *t = arg;
    (void)fd;
    (void)what;
    retire_free(t, t->leftover);
}

int exp_http_retire(exp_http *p, uint64_t after_ms, exp_http_leftover_fn leftover, void *ctx)
{
    retired *t = calloc(1, sizeof *t);
    if (!t) return SW_ENOMEM;
    if (!(t->ev = evtimer_new(p->base, retire_cb, t))) {
        free(t);
        return SW_ENOMEM;
    }
    t->pool = p;
    t->leftover = leftover;
    t->ctx = ctx;
    struct timeval tv = clock_ms_to_tv(after_ms);
    evtimer_add(t->ev, &tv);
    return 0;
}

#define EXP_MAX_RETIRED 64

typedef struct retired_list {
    retired *t[EXP_MAX_RETIRED];
    size_t n;
} retired_list;

static int find_retired(const struct event_base *base, const struct event *ev, void *arg)
{
    retired_list *l = arg;
    (void)base;
    if (event_get_callback(ev) == retire_cb && l->n < EXP_MAX_RETIRED)
        l->t[l->n++] = event_get_callback_arg(ev);
    return 0;
}

void exp_http_retired_close_all(struct event_base *base, exp_http_leftover_fn abandoned)
{
    retired_list l = {.n = 0};
    event_base_foreach_event(base, find_retired, &l);
    for (size_t i = 0; i < l.n; i++) retire_free(l.t[i], abandoned);
}
