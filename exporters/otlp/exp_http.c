/* exp_http.c — the exporter's HTTP client: endpoint, TLS, connection pool,
 * requests and the reading of their answers.
 *
 * A pool of max_in_flight evhttp connections, each carrying at most one
 * request at a time and kept alive between requests. A connection that
 * failed or was closed by the peer is marked dead and replaced by a fresh
 * one before its next use (libevent 2.1 cannot reconnect a TLS bufferevent
 * it already used). https goes through bufferevent_openssl with peer and
 * host name (or IP address) verification and SNI, unless
 * tls.insecure_skip_verify. Export thread only, except init/destroy.
 *
 * exporters.otlphttp.timeout is a deadline for the whole request —
 * connecting, sending and reading the complete answer — kept by a timer
 * per connection, not only libevent's inactivity timeout: an upstream that
 * trickles its answer a byte at a time or floods interim `100 Continue`
 * lines is cut off at the deadline (the connection is reset) and the
 * attempt counts as a failure without an answer (retried, and recorded by
 * the circuit breaker).
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_int.h"

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

#include "exporters/otlp/exp_response.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/tls.h"

/* Largest piece of a request body handed to the socket in one call. */
#define EXP_MAX_SINGLE_WRITE (1 << 20)

#ifndef SW_VERSION
#define SW_VERSION "0.0.0"
#endif

/* ---- endpoint ------------------------------------------------------------ */

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
    exp_conn *cn = arg;
    (void)evcon;
    cn->dead = 1; /* never reused: replaced before the next request */
}

static void conn_free(exp_conn *cn)
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
static void conn_nodelay(exp_conn *cn)
{
    if (cn->nodelay || !cn->evcon) return;
    struct bufferevent *bev = evhttp_connection_get_bufferevent(cn->evcon);
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    int one = 1;
    if (fd >= 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0)
        cn->nodelay = 1;
}

static int conn_open(exporter *e, exp_conn *cn)
{
    struct bufferevent *bev = NULL;
    if (e->ep.tls && !(bev = tls_client_bufferevent(e->base, e->ssl, e->ep.host,
                                                  e->c->exporter.tls_insecure_skip_verify)))
        return SW_ENOMEM;
    cn->evcon = evhttp_connection_base_bufferevent_new(e->base, e->dns, bev, e->ep.host,
                                                       e->ep.port);
    if (!cn->evcon) {
        if (bev) bufferevent_free(bev);
        return SW_ENOMEM;
    }
    struct timeval tv = clock_ms_to_tv(e->c->exporter.timeout_ms);
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
static exp_conn *conn_pick(exporter *e)
{
    exp_conn *spare = NULL;
    for (uint32_t i = 0; i < e->n_conns; i++) {
        exp_conn *cn = &e->conns[i];
        if (cn->batch) continue;
        if (cn->evcon && !cn->dead) return cn;
        if (cn->dead) conn_free(cn);
        if (!spare) spare = cn;
    }
    if (!spare || conn_open(e, spare) != 0) return NULL;
    return spare;
}

void exp_http_reap(exporter *e)
{
    for (uint32_t i = 0; i < e->n_conns; i++)
        if (e->conns[i].dead && !e->conns[i].batch) conn_free(&e->conns[i]);
}

void exp_http_close_all(exporter *e)
{
    for (uint32_t i = 0; i < e->n_conns; i++) {
        exp_conn *cn = &e->conns[i];
        if (cn->deadline) evtimer_del(cn->deadline);
        cn->req = NULL;
        if (cn->batch) {
            metrics_gauge_add(&e->m->exp_in_flight, -1);
            exp_circuit_forget(e, cn->batch);
        }
        cn->batch = NULL; /* its request is freed with the connection, unanswered */
        conn_free(cn);
    }
}

int exp_http_init(exporter *e)
{
    int insecure = e->c->exporter.tls_insecure_skip_verify;
    if (e->ep.tls && !(e->ssl = tls_client_ctx_new(e->c->exporter.tls_ca_file, insecure)))
        return SW_EINVAL;
    if (e->ep.tls && insecure)
        LOG_WARN("exporters.otlphttp.tls.insecure_skip_verify is set: the upstream "
                 "certificate is not verified");
    if (!tls_is_ip_literal(e->ep.host)) {
        e->dns = evdns_base_new(e->base, EVDNS_BASE_INITIALIZE_NAMESERVERS |
                                             EVDNS_BASE_DISABLE_WHEN_INACTIVE);
        if (!e->dns) LOG_WARN("no asynchronous DNS; resolving %s blocks the export thread",
                              e->ep.host);
    }
    e->n_conns = e->c->exporter.max_in_flight ? e->c->exporter.max_in_flight : 1;
    e->conns = calloc(e->n_conns, sizeof *e->conns);
    if (!e->conns) return SW_ENOMEM;
    for (uint32_t i = 0; i < e->n_conns; i++) {
        e->conns[i].e = e;
        e->conns[i].deadline = evtimer_new(e->base, deadline_cb, &e->conns[i]);
        if (!e->conns[i].deadline) return SW_ENOMEM;
    }
    return 0;
}

void exp_http_destroy(exporter *e)
{
    if (e->conns) exp_http_close_all(e);
    for (uint32_t i = 0; e->conns && i < e->n_conns; i++)
        if (e->conns[i].deadline) event_free(e->conns[i].deadline);
    free(e->conns);
    e->conns = NULL;
    e->n_conns = 0;
    if (e->dns) evdns_base_free(e->dns, 0);
    e->dns = NULL;
}

/* ---- answers --------------------------------------------------------------- */

static const uint8_t *resp_body(struct evhttp_request *req, size_t *len)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    *len = in ? evbuffer_get_length(in) : 0;
    return *len ? evbuffer_pullup(in, -1) : NULL;
}

static exp_body_type resp_type(struct evhttp_request *req)
{
    return exp_body_type_of(
        evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type"));
}

static void read_partial(exporter *e, exp_batch *b, struct evhttp_request *req)
{
    size_t len;
    const uint8_t *body = resp_body(req, &len);
    int64_t rejected = 0;
    char msg[EXP_LOG_MSG_LEN + 1];
    if (!body || exp_resp_partial(body, len, resp_type(req), &rejected, msg, sizeof msg) != 0)
        return; /* an unreadable success body is still a success */
    if (rejected <= 0) return;
    metrics_add(&e->m->exp_partial_rejected[b->sig], (uint64_t)rejected);
    LOG_WARN_RL(10, "upstream rejected %lld of %llu %s records (partial success): %s",
                (long long)rejected, (unsigned long long)b->n_records,
                sw_signal_name(b->sig), msg[0] ? msg : "(no message)");
}

/* The start of an error answer's message (google.rpc.Status or text). */
static void reject_message(struct evhttp_request *req, char *msg, size_t len)
{
    size_t n = 0;
    const uint8_t *body = req ? resp_body(req, &n) : NULL;
    exp_resp_error_message(body, n, req ? resp_type(req) : EXP_BODY_TEXT, msg, len);
}

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

static void log_no_response(exporter *e, exp_conn *cn)
{
    char why[200];
    struct bufferevent *bev = cn->evcon ? evhttp_connection_get_bufferevent(cn->evcon) : NULL;
    SSL *ssl = (e->ep.tls && bev) ? bufferevent_openssl_get_ssl(bev) : NULL;
    unsigned long oe = ssl ? bufferevent_get_openssl_error(bev) : 0;
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    if (vr != X509_V_OK)
        snprintf(why, sizeof why, "TLS certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
    else if (oe)
        ERR_error_string_n(oe, why, sizeof why);
    else
        snprintf(why, sizeof why, "%s", req_error_text(cn->req_error));
    LOG_WARN_RL(10, "no response from %s:%u (%s); will retry", e->ep.host,
                (unsigned)e->ep.port, why);
}

/* Counts one finished attempt and acts on its outcome. req may be NULL. */
static void finish_request(exporter *e, exp_batch *b, int code, struct evhttp_request *req)
{
    metrics_add(&e->m->exp_requests[b->sig][metrics_code_index(code)], 1);
    exp_circuit_record(e, b, code);
    switch (exp_classify_status(code)) {
    case EXP_OK:
        atomic_store(&e->healthy, 1);
        if (req) read_partial(e, b, req);
        exp_batch_ack(e, b);
        break;
    case EXP_REJECT: {
        char msg[EXP_LOG_MSG_LEN + 1];
        reject_message(req, msg, sizeof msg);
        exp_batch_reject(e, b, code, msg);
        break;
    }
    case EXP_RETRY: {
        const char *ra = NULL;
        atomic_store(&e->healthy, 0);
        if (req && code) {
            ra = evhttp_find_header(evhttp_request_get_input_headers(req), "Retry-After");
            LOG_WARN_RL(10, "upstream answered HTTP %d%s%s; will retry", code,
                        ra ? ", Retry-After: " : "", ra ? ra : "");
        }
        exp_batch_retry(e, b, ra);
        break;
    }
    }
}

static void on_error(enum evhttp_request_error err, void *arg)
{
    exp_conn *cn = arg;
    cn->req_error = (int)err;
}

static void on_response(struct evhttp_request *req, void *arg)
{
    exp_conn *cn = arg;
    exporter *e = cn->e;
    exp_batch *b = cn->batch;
    int code = req ? evhttp_request_get_response_code(req) : 0;
    evtimer_del(cn->deadline);
    cn->req = NULL;
    cn->batch = NULL;
    if (code == 0) cn->dead = 1;
    else conn_nodelay(cn);
    if (!b) return; /* abandoned at shutdown */
    metrics_gauge_add(&e->m->exp_in_flight, -1);
    if (code == 0) log_no_response(e, cn);
    finish_request(e, b, code, req);
    exp_schedule_pump(e);
}

/* The whole-request deadline passed: the request is cancelled (libevent
 * resets the connection and frees the request; its callback, if libevent
 * still runs it, finds no batch) and the attempt fails without an answer. */
static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    exp_conn *cn = arg;
    exporter *e = cn->e;
    exp_batch *b = cn->batch;
    struct evhttp_request *req = cn->req;
    (void)fd;
    (void)what;
    if (!b || !req) return;
    cn->batch = NULL;
    cn->req = NULL;
    cn->dead = 1;
    evhttp_cancel_request(req);
    cn->req_error = EXP_REQ_DEADLINE; /* after the error callback the cancel ran */
    metrics_gauge_add(&e->m->exp_in_flight, -1);
    log_no_response(e, cn);
    finish_request(e, b, 0, NULL);
    exp_schedule_pump(e);
}

/* ---- requests -------------------------------------------------------------- */

static int add_headers(exporter *e, exp_batch *b, struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    int rc = 0;
    rc |= evhttp_add_header(h, "Host", e->ep.host_header);
    rc |= evhttp_add_header(h, "User-Agent", "spillway/" SW_VERSION);
    rc |= evhttp_add_header(h, "Content-Type", "application/x-protobuf");
    if (b->encoding == CFG_COMP_GZIP) rc |= evhttp_add_header(h, "Content-Encoding", "gzip");
    if (b->encoding == CFG_COMP_ZSTD) rc |= evhttp_add_header(h, "Content-Encoding", "zstd");
    for (size_t i = 0; i < e->c->exporter.n_headers; i++) {
        const cfg_header *ch = &e->c->exporter.headers[i];
        if (exp_header_reserved(ch->name)) continue;
        rc |= evhttp_add_header(h, ch->name, ch->value);
    }
    return rc ? -1 : 0;
}

void exp_http_send(exporter *e, exp_batch *b)
{
    exp_conn *cn = conn_pick(e);
    struct evhttp_request *req = cn ? evhttp_request_new(on_response, cn) : NULL;
    if (b->first_attempt_ns == 0) b->first_attempt_ns = clock_mono_ns();
    exp_batch_set_state(e, b, EXP_B_FLIGHT);
    if (!req || add_headers(e, b, req) != 0 ||
        exp_batch_attach_body(b, evhttp_request_get_output_buffer(req)) != 0) {
        if (req) evhttp_request_free(req);
        LOG_ERROR_RL(10, "cannot create a request to %s:%u (out of memory)", e->ep.host,
                     (unsigned)e->ep.port);
        finish_request(e, b, 0, NULL);
        return;
    }
    evhttp_request_set_error_cb(req, on_error);
    cn->req_error = -1;
    cn->batch = b;
    cn->req = req;
    metrics_gauge_add(&e->m->exp_in_flight, 1);
    struct timeval tv = clock_ms_to_tv(e->c->exporter.timeout_ms);
    evtimer_add(cn->deadline, &tv);
    /* The callback may run before this returns (immediate connection
     * failure); after a failure here the request is libevent's. */
    if (evhttp_make_request(cn->evcon, req, EVHTTP_REQ_POST, e->ep.path[b->sig]) != 0 &&
        cn->batch == b) {
        evtimer_del(cn->deadline);
        cn->batch = NULL;
        cn->req = NULL;
        cn->dead = 1;
        metrics_gauge_add(&e->m->exp_in_flight, -1);
        LOG_WARN_RL(10, "cannot start a request to %s:%u; will retry", e->ep.host,
                    (unsigned)e->ep.port);
        finish_request(e, b, 0, NULL);
        return;
    }
    conn_nodelay(cn);
}
