/* exp_http.c — the exporter's HTTP client: endpoint, connection pool,
 * requests with their deadline, answers. See exp_http.h.
 *
 * A pool of max_in_flight keep-alive connections, each carrying at most
 * one request at a time. A connection is a bufferevent for connecting
 * (DNS through evdns, TLS through runtime/tls.h); HTTP/1.1 is written and
 * read here, with the server's parser (runtime/httpd_parse.h) for the
 * answer's head and chunked body. On plain http the socket is then used
 * directly: a request goes out in one writev(2) when nothing is queued
 * before it, and answers are read with one recv(2) into the connection's
 * buffer — per request one write, one read and the two waits, where a
 * buffered client adds write-event registration and a readable-bytes query
 * each time. On https the bufferevent carries both directions. A
 * connection that failed, was closed by the peer or sent more than one
 * answer is marked dead and replaced before its next use. The deadline
 * timer per connection ends a request with no complete answer within the
 * timeout.
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_http.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/util.h>
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
#include "runtime/httpd_parse.h"
#include "runtime/log.h"
#include "runtime/tls.h"

#ifndef SW_VERSION
#define SW_VERSION "0.0.0"
#endif

#define EXP_MAX_RESPONSE_HEAD (64u * 1024)  /* larger heads fail the request */
#define EXP_MAX_TRAILER 8192u
/* Raw bytes one answer may take (head, chunk framing, body). */
#define EXP_MAX_RESPONSE_RAW (EXP_MAX_RESPONSE_HEAD + 2 * EXP_MAX_RESPONSE_BODY)
#define EXP_READ_MIN 16384u                  /* room asked for before each read */
#define EXP_KEEP_IN 65536u                   /* a larger buffer is freed after use */

typedef struct exp_http exp_http;

typedef enum {
    RS_HEAD = 0,   /* reading the head (also after a 1xx) */
    RS_LEN,        /* body of Content-Length bytes */
    RS_CHUNKED,    /* chunked body */
    RS_EOF,        /* body until the upstream closes */
} resp_state;

typedef struct pool_conn {
    exp_http *p;
    struct bufferevent *bev;         /* NULL: not open */
    struct event *rd;                /* plain http, connected: reads on the socket */
    evutil_socket_t fd;              /* plain http, connected: the socket; else -1 */
    int connected;
    unsigned gen;                    /* bumped each time the slot's connection is freed */
    int busy;                        /* a request of ours is in flight */
    exp_request r;                   /* that request */
    struct event *deadline;          /* timeout for the whole request */
    int dead;                        /* closed or failed: replace before reuse */
    const char *why;                 /* why the request got no answer */
    struct evbuffer *out;            /* the request being written */
    /* the answer being read */
    char *in;
    size_t in_len, in_cap;
    size_t scan;                     /* httpd_head_end resume offset */
    size_t body_at;                  /* offset of the body in `in` */
    resp_state st;
    int status, keep_alive;
    int64_t length;                  /* RS_LEN */
    long ra_off, ct_off;             /* Retry-After, Content-Type values in `in`, or -1 */
    httpd_chunked ch;
} pool_conn;

struct exp_http {
    const cfg *c;              /* borrowed */
    exp_metrics *m;            /* owned by the metrics registry */
    struct event_base *base;   /* borrowed */
    exp_endpoint ep;
    struct ssl_ctx_st *ssl;    /* https only */
    struct evdns_base *dns;    /* may be NULL: blocking resolution */
    char *fixed;               /* header lines every request carries */
    size_t fixed_len;
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
static void bev_event_cb(struct bufferevent *bev, short what, void *arg);
static void bev_read_cb(struct bufferevent *bev, void *arg);
static void sock_read_cb(evutil_socket_t fd, short what, void *arg);

static void answer_reset(pool_conn *cn)
{
    cn->in_len = 0;
    cn->scan = 0;
    cn->body_at = 0;
    cn->st = RS_HEAD;
    cn->status = 0;
    cn->keep_alive = 1;
    cn->length = -1;
    cn->ra_off = cn->ct_off = -1;
    httpd_chunked_init(&cn->ch);
}

/* Stops all I/O on a connection that is not to be used again; it is freed
 * by conn_free (not from inside its own callbacks). */
static void conn_kill(pool_conn *cn)
{
    cn->dead = 1;
    if (cn->rd) event_del(cn->rd);
    if (cn->bev) bufferevent_disable(cn->bev, EV_READ | EV_WRITE);
}

static void conn_free(pool_conn *cn)
{
    cn->gen++; /* a callback still running for it stops (see below) */
    if (cn->rd) event_free(cn->rd);
    cn->rd = NULL;
    if (cn->bev) bufferevent_free(cn->bev);
    cn->bev = NULL;
    cn->fd = -1;
    cn->connected = 0;
    cn->dead = 0;
    answer_reset(cn);
}

static int conn_open(exp_http *p, pool_conn *cn)
{
    struct bufferevent *bev =
        p->ep.tls ? tls_client_bufferevent(p->base, p->ssl, p->ep.host,
                                           p->c->exporter.tls_insecure_skip_verify)
                  : bufferevent_socket_new(p->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) return SW_ENOMEM;
    bufferevent_setcb(bev, p->ep.tls ? bev_read_cb : NULL, NULL, bev_event_cb, cn);
    bufferevent_setwatermark(bev, EV_READ, 0, EXP_MAX_RESPONSE_RAW);
    if (p->ep.tls && bufferevent_enable(bev, EV_READ) != 0) {
        bufferevent_free(bev);
        return SW_ENOMEM;
    }
    cn->bev = bev;
    cn->fd = -1;
    cn->connected = 0;
    cn->dead = 0;
    answer_reset(cn);
    return 0;
}

/* An idle open connection, else a new one in a free slot; NULL if none. */
static pool_conn *conn_pick(exp_http *p)
{
    pool_conn *spare = NULL;
    for (uint32_t i = 0; i < p->n; i++) {
        pool_conn *cn = &p->conns[i];
        if (cn->busy) continue;
        if (cn->bev && !cn->dead) return cn;
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
        if (cn->busy) {
            cn->busy = 0;
            metrics_gauge_add(&p->m->exp_in_flight, -1);
            if (abandoned) abandoned(ctx, cn->r.arg);
        }
        conn_free(cn);
        if (cn->out) evbuffer_drain(cn->out, evbuffer_get_length(cn->out));
    }
}

uint32_t exp_http_size(const exp_http *p) { return p->n; }

/* The header lines every request carries, after the request line. */
static int fixed_headers(exp_http *p)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) return SW_ENOMEM;
    int rc = evbuffer_add_printf(b, "Host: %s\r\nUser-Agent: spillway/" SW_VERSION
                                    "\r\nContent-Type: application/x-protobuf\r\n",
                                 p->ep.host_header) < 0;
    for (size_t i = 0; i < p->c->exporter.n_headers && !rc; i++) {
        const cfg_header *ch = &p->c->exporter.headers[i];
        if (exp_header_reserved(ch->name)) continue;
        if (strpbrk(ch->name, "\r\n:") || strpbrk(ch->value, "\r\n")) {
            LOG_ERROR("exporters.otlphttp.headers: \"%s\" cannot be sent", ch->name);
            rc = 1;
            break;
        }
        rc = evbuffer_add_printf(b, "%s: %s\r\n", ch->name, ch->value) < 0;
    }
    p->fixed_len = evbuffer_get_length(b);
    p->fixed = rc ? NULL : malloc(p->fixed_len + 1);
    if (p->fixed) evbuffer_remove(b, p->fixed, p->fixed_len);
    evbuffer_free(b);
    return p->fixed ? 0 : SW_EINVAL;
}

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
    if (fixed_headers(p) != 0) goto fail;
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
        pool_conn *cn = &p->conns[i];
        cn->p = p;
        cn->fd = -1;
        answer_reset(cn);
        cn->deadline = evtimer_new(base, deadline_cb, cn);
        cn->out = evbuffer_new();
        if (!cn->deadline || !cn->out) goto fail;
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
    for (uint32_t i = 0; p->conns && i < p->n; i++) {
        if (p->conns[i].deadline) event_free(p->conns[i].deadline);
        if (p->conns[i].out) evbuffer_free(p->conns[i].out);
        free(p->conns[i].in);
    }
    free(p->conns);
    if (p->dns) evdns_base_free(p->dns, 0);
    if (p->ssl) SSL_CTX_free(p->ssl);
    free(p->fixed);
    exp_endpoint_destroy(&p->ep);
    free(p);
}

/* ---- answers --------------------------------------------------------------- */

#define WHY_DEADLINE "no complete answer within exporters.otlphttp.timeout"
#define WHY_EOF "connection closed by the upstream"
#define WHY_MALFORMED "malformed response"
#define WHY_TOO_LARGE "response body too large"
#define WHY_IO "connection error"
#define WHY_CONNECT "connection refused or unreachable"

static void log_no_response(exp_http *p, pool_conn *cn)
{
    char why[200];
    SSL *ssl = (p->ep.tls && cn->bev) ? bufferevent_openssl_get_ssl(cn->bev) : NULL;
    unsigned long oe = ssl ? bufferevent_get_openssl_error(cn->bev) : 0;
    long vr = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
    int dns = cn->bev ? bufferevent_socket_get_dns_error(cn->bev) : 0;
    if (vr != X509_V_OK)
        snprintf(why, sizeof why, "TLS certificate verification failed: %s",
                 X509_verify_cert_error_string(vr));
    else if (oe)
        ERR_error_string_n(oe, why, sizeof why);
    else if (dns)
        snprintf(why, sizeof why, "cannot resolve: %s", evutil_gai_strerror(dns));
    else
        snprintf(why, sizeof why, "%s", cn->why ? cn->why : WHY_IO);
    LOG_WARN_RL(10, "no response from %s:%u (%s); will retry", p->ep.host,
                (unsigned)p->ep.port, why);
}

/* The request in flight on cn gets no answer (why); the connection is not
 * used again. */
static void fail(pool_conn *cn, const char *why)
{
    exp_http *p = cn->p;
    conn_kill(cn);
    if (!cn->busy) return;
    evtimer_del(cn->deadline);
    cn->busy = 0;
    cn->why = why;
    metrics_gauge_add(&p->m->exp_in_flight, -1);
    log_no_response(p, cn);
    exp_request r = cn->r;
    exp_answer a = {.code = 0, .type = EXP_BODY_TEXT};
    r.done(r.arg, &a);
}

/* The answer is complete: body at in + body_at, body_len bytes; `used`
 * bytes of `in` belong to it. */
static void complete(pool_conn *cn, size_t body_len, size_t used)
{
    exp_http *p = cn->p;
    evtimer_del(cn->deadline);
    cn->busy = 0;
    metrics_gauge_add(&p->m->exp_in_flight, -1);
    if (!cn->keep_alive || used != cn->in_len) conn_kill(cn); /* closing, or a second answer */
    /* The buffer goes with the answer: done may send the next request on
     * this connection, which reads into a buffer of its own. */
    char *in = cn->in;
    size_t cap = cn->in_cap;
    exp_answer a = {.code = cn->status, .type = EXP_BODY_TEXT};
    if (cn->ra_off >= 0) a.retry_after = in + cn->ra_off;
    a.type = exp_body_type_of(cn->ct_off >= 0 ? in + cn->ct_off : NULL);
    a.body_len = body_len;
    a.body = body_len ? (const uint8_t *)in + cn->body_at : NULL;
    cn->in = NULL;
    cn->in_cap = 0;
    answer_reset(cn);
    exp_request r = cn->r;
    r.done(r.arg, &a);
    if (!cn->in && cap <= EXP_KEEP_IN) {
        cn->in = in;
        cn->in_cap = cap;
    } else {
        free(in);
    }
}

/* A head is complete at in[0..end): what frames the body. 0, or -1 (the
 * request failed). */
static int take_head(pool_conn *cn, size_t end)
{
    httpd_head h;
    if (httpd_parse_response_head(cn->in, end, &h) != 0) {
        fail(cn, WHY_MALFORMED);
        return -1;
    }
    if (h.status < 200) {
        if (h.status == 101) {
            fail(cn, WHY_MALFORMED);
            return -1;
        }
        /* 1xx: interim; the final answer follows. */
        memmove(cn->in, cn->in + end, cn->in_len - end);
        cn->in_len -= end;
        cn->scan = 0;
        return 0;
    }
    const char *ra = httpd_head_field(&h, "Retry-After");
    const char *ct = httpd_head_field(&h, "Content-Type");
    cn->ra_off = ra ? ra - cn->in : -1;
    cn->ct_off = ct ? ct - cn->in : -1;
    cn->status = h.status;
    cn->keep_alive = h.keep_alive;
    cn->body_at = end;
    if (h.status == 204 || h.status == 304) {
        cn->st = RS_LEN;
        cn->length = 0;
    } else if (h.chunked) {
        cn->st = RS_CHUNKED;
        httpd_chunked_init(&cn->ch);
    } else if (h.content_length >= 0) {
        if (h.content_length > (int64_t)EXP_MAX_RESPONSE_BODY) {
            fail(cn, WHY_TOO_LARGE);
            return -1;
        }
        cn->st = RS_LEN;
        cn->length = h.content_length;
    } else {
        cn->st = RS_EOF;
        cn->keep_alive = 0;
    }
    return 0;
}

/* Parses what arrived; eof: the upstream closed after it. */
static void parse(pool_conn *cn, int eof)
{
    if (!cn->busy) { /* nothing asked: an idle connection closed or babbled */
        conn_kill(cn);
        return;
    }
    while (cn->busy) {
        if (cn->st == RS_HEAD) {
            size_t end = httpd_head_end(cn->in, cn->in_len, &cn->scan);
            if (end == 0) {
                if (cn->in_len > EXP_MAX_RESPONSE_HEAD) fail(cn, WHY_MALFORMED);
                else if (eof) fail(cn, WHY_EOF);
                return;
            }
            if (end > EXP_MAX_RESPONSE_HEAD) {
                fail(cn, WHY_MALFORMED);
                return;
            }
            if (take_head(cn, end) != 0) return;
            continue;
        }
        size_t have = cn->in_len - cn->body_at;
        if (cn->st == RS_LEN) {
            if (have >= (uint64_t)cn->length) {
                complete(cn, (size_t)cn->length, cn->body_at + (size_t)cn->length);
                return;
            }
        } else if (cn->st == RS_CHUNKED) {
            int rc = httpd_chunked_step(&cn->ch, (uint8_t *)cn->in + cn->body_at, have,
                                        EXP_MAX_RESPONSE_BODY, EXP_MAX_TRAILER);
            if (rc == 1) {
                complete(cn, cn->ch.out, cn->body_at + cn->ch.in);
                return;
            }
            if (rc < 0) {
                fail(cn, rc == -413 ? WHY_TOO_LARGE : WHY_MALFORMED);
                return;
            }
        } else if (have > EXP_MAX_RESPONSE_BODY) {
            fail(cn, WHY_TOO_LARGE);
            return;
        } else if (eof) {
            complete(cn, have, cn->in_len);
            return;
        }
        if (eof) fail(cn, WHY_EOF);
        return;
    }
}

/* Room for at least EXP_READ_MIN more bytes (up to the raw cap). 0, or -1
 * (the answer is too large, or no memory: the request failed). */
static int reserve(pool_conn *cn)
{
    if (cn->in_cap - cn->in_len >= EXP_READ_MIN) return 0;
    if (cn->in_len >= EXP_MAX_RESPONSE_RAW) {
        fail(cn, cn->st == RS_HEAD ? WHY_MALFORMED : WHY_TOO_LARGE);
        return -1;
    }
    size_t cap = cn->in_cap ? cn->in_cap * 2 : EXP_READ_MIN;
    while (cap - cn->in_len < EXP_READ_MIN) cap *= 2;
    if (cap > EXP_MAX_RESPONSE_RAW + EXP_READ_MIN) cap = EXP_MAX_RESPONSE_RAW + EXP_READ_MIN;
    char *in = realloc(cn->in, cap + 1);
    if (!in) {
        fail(cn, "out of memory for the answer");
        return -1;
    }
    cn->in = in;
    cn->in_cap = cap;
    return 0;
}

/* Callbacks below may hand an answer to done, which may send the next
 * request at once — on this slot, after replacing a connection that is not
 * to be reused. Each compares the slot's generation after handing over and
 * stops when the connection it ran for is gone. */

/* Plain http: the socket is readable. */
static void sock_read_cb(evutil_socket_t fd, short what, void *arg)
{
    pool_conn *cn = arg;
    unsigned g = cn->gen;
    (void)what;
    for (int i = 0; i < 8 && !cn->dead && cn->gen == g; i++) {
        if (reserve(cn) != 0) return;
        size_t room = cn->in_cap - cn->in_len;
        ssize_t n = recv(fd, cn->in + cn->in_len, room, 0);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
            fail(cn, WHY_IO);
            return;
        }
        if (n == 0) {
            parse(cn, 1);
            if (cn->gen == g) conn_kill(cn);
            return;
        }
        cn->in_len += (size_t)n;
        parse(cn, 0);
        if ((size_t)n < room) return;
    }
}

/* https: the bufferevent has decrypted bytes. */
static void bev_read_cb(struct bufferevent *bev, void *arg)
{
    pool_conn *cn = arg;
    unsigned g = cn->gen;
    struct evbuffer *src = bufferevent_get_input(bev);
    while (!cn->dead && cn->gen == g && evbuffer_get_length(src) > 0) {
        if (reserve(cn) != 0) return;
        int n = evbuffer_remove(src, cn->in + cn->in_len, cn->in_cap - cn->in_len);
        if (n <= 0) break;
        cn->in_len += (size_t)n;
        parse(cn, 0);
    }
}

/* Requests are written in one go and answered before the next: Nagle's
 * algorithm would only hold the tail of a body until the peer's delayed
 * ACK, 40 ms on Linux. */
static void conn_connected(pool_conn *cn)
{
    exp_http *p = cn->p;
    evutil_socket_t fd = bufferevent_getfd(cn->bev);
    int one = 1;
    cn->connected = 1;
    if (fd >= 0) (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (p->ep.tls || fd < 0) return;
    /* Plain http: reads go straight to the socket from now on. */
    bufferevent_disable(cn->bev, EV_READ);
    cn->rd = event_new(p->base, fd, EV_READ | EV_PERSIST, sock_read_cb, cn);
    if (!cn->rd || event_add(cn->rd, NULL) != 0) {
        fail(cn, "out of memory for a connection");
        return;
    }
    cn->fd = fd;
}

static void bev_event_cb(struct bufferevent *bev, short what, void *arg)
{
    pool_conn *cn = arg;
    unsigned g = cn->gen;
    if (what & BEV_EVENT_CONNECTED) {
        conn_connected(cn);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        if (cn->p->ep.tls) bev_read_cb(bev, cn); /* what came before the close */
        if (cn->gen != g) return;
        parse(cn, 1);
        if (cn->gen == g) conn_kill(cn);
        return;
    }
    fail(cn, cn->connected ? WHY_IO : WHY_CONNECT);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    pool_conn *cn = arg;
    (void)fd;
    (void)what;
    if (cn->busy) fail(cn, WHY_DEADLINE);
}

/* ---- requests -------------------------------------------------------------- */

/* Request line and headers in front of the body already in cn->out. */
static int add_head(exp_http *p, const exp_request *r, pool_conn *cn)
{
    static const char *const enc[] = {[CFG_COMP_GZIP] = "Content-Encoding: gzip\r\n",
                                      [CFG_COMP_ZSTD] = "Content-Encoding: zstd\r\n"};
    const char *ce = (r->encoding == CFG_COMP_GZIP || r->encoding == CFG_COMP_ZSTD)
                         ? enc[r->encoding] : "";
    const char *path = p->ep.path[r->sig];
    size_t plen = strlen(path), celen = strlen(ce);
    size_t body = evbuffer_get_length(cn->out);
    char tail[64];
    int tl = snprintf(tail, sizeof tail, "Content-Length: %zu\r\n\r\n", body);
    size_t n = 5 + plen + 11 + p->fixed_len + celen + (size_t)tl;
    char small[2048];
    char *h = n <= sizeof small ? small : malloc(n); /* custom headers may be long */
    if (!h) return -1;
    char *w = h;
    memcpy(w, "POST ", 5), w += 5;
    memcpy(w, path, plen), w += plen;
    memcpy(w, " HTTP/1.1\r\n", 11), w += 11;
    memcpy(w, p->fixed, p->fixed_len), w += p->fixed_len;
    memcpy(w, ce, celen), w += celen;
    memcpy(w, tail, (size_t)tl);
    int rc = evbuffer_prepend(cn->out, h, n);
    if (h != small) free(h);
    return rc;
}

/* Hands cn->out to the connection: on plain http with nothing queued
 * before it, written to the socket now (one writev); the rest, and https,
 * through the bufferevent. */
static int send_out(pool_conn *cn)
{
    struct evbuffer *queued = bufferevent_get_output(cn->bev);
    if (cn->fd >= 0 && evbuffer_get_length(queued) == 0) {
        int w = evbuffer_write(cn->out, cn->fd);
        if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return -1;
        if (evbuffer_get_length(cn->out) == 0) return 0;
    }
    return bufferevent_write_buffer(cn->bev, cn->out);
}

void exp_http_send(exp_http *p, const exp_request *r)
{
    pool_conn *cn = conn_pick(p);
    if (!cn || r->attach(r->arg, cn->out) != 0 || add_head(p, r, cn) != 0) {
        if (cn) evbuffer_drain(cn->out, evbuffer_get_length(cn->out));
        LOG_ERROR_RL(10, "cannot create a request to %s:%u (out of memory)", p->ep.host,
                     (unsigned)p->ep.port);
        exp_answer a = {.code = 0, .type = EXP_BODY_TEXT};
        r->done(r->arg, &a);
        return;
    }
    cn->busy = 1;
    cn->r = *r;
    cn->why = NULL;
    answer_reset(cn);
    metrics_gauge_add(&p->m->exp_in_flight, 1);
    struct timeval tv = clock_ms_to_tv(p->c->exporter.timeout_ms);
    evtimer_add(cn->deadline, &tv);
    if (send_out(cn) != 0) {
        evbuffer_drain(cn->out, evbuffer_get_length(cn->out));
        fail(cn, WHY_IO);
        return;
    }
    if (cn->connected) return;
    /* A new connection: the request waits in the bufferevent until it is
     * connected. A failure may be reported before this returns. */
    if (bufferevent_socket_connect_hostname(cn->bev, p->dns, AF_UNSPEC, p->ep.host,
                                            p->ep.port) != 0)
        fail(cn, WHY_CONNECT);
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
