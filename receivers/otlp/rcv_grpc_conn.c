/* rcv_grpc_conn.c — sockets and TLS of the OTLP/gRPC receiver.
 *
 * An evconnlistener accepts connections (at most max_conns open; more are
 * closed at once); each gets a bufferevent (plain, or OpenSSL accepting with
 * ALPN h2) and an rg_session. Input is handed to the session as it comes;
 * the session's output goes into the bufferevent. Output backpressure: when
 * more than RG_OUT_HIGH bytes wait to be written, the connection stops
 * reading until they drain below RG_OUT_LOW, so a client that does not read
 * its answers cannot make the receiver queue them without bound. Idle
 * connections (no open stream, no input for idle_ms) get GOAWAY and close;
 * a connection whose output cannot be written for idle_ms (the peer stopped
 * reading) is closed.
 * A connection is freed once the session wants neither to read nor to
 * write and its output is flushed. Ingest thread only.
 */
#include "receivers/otlp/rcv_grpc_int.h"

#define LOG_COMPONENT "receiver"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "runtime/err.h"
#include "runtime/log.h"

#define RG_OUT_HIGH (256 * 1024)
#define RG_OUT_LOW (64 * 1024)
#define RG_BACKLOG 128

typedef struct rg_conn rg_conn;

struct rg_net {
    rg_server *srv;              /* borrowed */
    rg_net_opts o;
    struct evconnlistener *lev;  /* owned; NULL once stopped */
    uint16_t port;
    rg_conn *conns;              /* owned, doubly linked */
    unsigned n_conns;
    int stopping;
};

struct rg_conn {
    rg_net *net;
    rg_conn *prev, *next;
    struct bufferevent *bev;     /* owned */
    rg_session *sess;            /* owned */
    rg_io io;
    int closing;                 /* free once the output is flushed */
    int throttled;               /* reading paused for output backpressure */
    int in_read;                 /* inside on_read: free at its end */
    int dead;                    /* free requested while in_read */
};

static void conn_free(rg_conn *c)
{
    rg_net *n = c->net;
    if (c->prev) c->prev->next = c->next;
    else n->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    n->n_conns--;
    rg_session_free(c->sess);
    if (c->bev) bufferevent_free(c->bev);
    free(c);
}

/* Frees now, or at the end of on_read when inside it. */
static void conn_drop(rg_conn *c)
{
    if (c->in_read) c->dead = 1;
    else conn_free(c);
}

static size_t out_len(const rg_conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev));
}

/* Stops reading; frees once the output is written. */
static void conn_close_soon(rg_conn *c)
{
    c->closing = 1;
    bufferevent_disable(c->bev, EV_READ);
    if (out_len(c) == 0) conn_drop(c);
}

static int io_write(void *arg, const uint8_t *data, size_t len)
{
    rg_conn *c = arg;
    return evbuffer_add(bufferevent_get_output(c->bev), data, len) == 0 ? 0 : -1;
}

/* Writes what the session queued; applies output backpressure; closes a
 * finished session. */
static void conn_pump(rg_conn *c)
{
    if (rg_session_flush(c->sess) != 0) {
        conn_drop(c);
        return;
    }
    if (rg_session_done(c->sess)) {
        conn_close_soon(c);
        return;
    }
    if (!c->throttled && out_len(c) > RG_OUT_HIGH) {
        c->throttled = 1;
        bufferevent_disable(c->bev, EV_READ);
    }
}

static void io_kick(void *arg)
{
    rg_conn *c = arg;
    if (!c->closing) conn_pump(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    rg_conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    struct evbuffer_iovec v[8];
    c->in_read = 1;
    while (!c->closing && !c->dead && !c->throttled && evbuffer_get_length(in) > 0) {
        int nv = evbuffer_peek(in, -1, NULL, v, 8);
        size_t took = 0;
        int bad = 0;
        for (int i = 0; i < nv && i < 8 && !bad; i++) {
            bad = rg_session_recv(c->sess, v[i].iov_base, v[i].iov_len) != 0;
            took += v[i].iov_len;
        }
        evbuffer_drain(in, took);
        if (bad) { /* connection error: send what nghttp2 queued (GOAWAY), close */
            rg_session_flush(c->sess);
            conn_close_soon(c);
            break;
        }
        conn_pump(c);
    }
    c->in_read = 0;
    if (c->dead) conn_free(c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    rg_conn *c = arg;
    if (c->closing) {
        if (out_len(c) == 0) conn_free(c);
        return;
    }
    if (c->throttled && out_len(c) <= RG_OUT_LOW) {
        c->throttled = 0;
        bufferevent_enable(c->bev, EV_READ);
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) on_read(c->bev, c);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    rg_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) return; /* TLS handshake done */
    if ((what & BEV_EVENT_TIMEOUT) && (what & BEV_EVENT_WRITING)) {
        LOG_WARN_RL(10, "closing a gRPC connection that does not read its answers");
        conn_free(c);
        return;
    }
    if ((what & BEV_EVENT_TIMEOUT) && !c->closing) {
        if (rg_session_streams(c->sess) > 0) { /* streams waiting: not idle */
            bufferevent_enable(c->bev, EV_READ);
            return;
        }
        LOG_DEBUG("closing an idle gRPC connection");
        rg_session_goaway(c->sess);
        rg_session_flush(c->sess);
        conn_close_soon(c);
        return;
    }
    conn_free(c); /* EOF or error */
}

static struct bufferevent *make_bev(rg_net *n, evutil_socket_t fd)
{
    struct event_base *base = n->srv->base;
    int opts = BEV_OPT_CLOSE_ON_FREE;
    if (!n->o.tls) return bufferevent_socket_new(base, fd, opts);
    SSL *ssl = SSL_new(n->o.tls);
    if (!ssl) return NULL;
    struct bufferevent *bev =
        bufferevent_openssl_socket_new(base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING, opts);
    if (!bev) SSL_free(ssl);
    else bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
    return bev;
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    rg_net *n = arg;
    if (n->n_conns >= n->o.max_conns || n->stopping) {
        LOG_WARN_RL(10, "gRPC connection limit (%u) reached: closing a new connection",
                    n->o.max_conns);
        evutil_closesocket(fd);
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    rg_conn *c = calloc(1, sizeof *c);
    struct bufferevent *bev = c ? make_bev(n, fd) : NULL;
    if (!bev) {
        free(c);
        evutil_closesocket(fd);
        return;
    }
    c->net = n;
    c->bev = bev;
    c->io = (rg_io){io_write, io_kick, c};
    c->next = n->conns;
    if (n->conns) n->conns->prev = c;
    n->conns = c;
    n->n_conns++;
    c->sess = rg_session_new(n->srv, &c->io);
    if (!c->sess) {
        conn_free(c);
        return;
    }
    struct timeval idle = {(time_t)(n->o.idle_ms / 1000), (suseconds_t)(n->o.idle_ms % 1000 * 1000)};
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    bufferevent_setwatermark(bev, EV_WRITE, RG_OUT_LOW, 0);
    bufferevent_set_timeouts(bev, &idle, &idle); /* write: a peer that stops reading */
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    conn_pump(c); /* the server SETTINGS */
}

static uint16_t bound_port(evutil_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0) return 0;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

int rg_net_start(rg_server *srv, const char *host, uint16_t port, const rg_net_opts *o,
                 rg_net **out)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char ps[8];
    int rc = SW_ENOMEM;
    rg_net *n = calloc(1, sizeof *n);
    if (!n) goto out;
    n->srv = srv;
    n->o = *o;
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    rc = SW_EIO;
    int gai = getaddrinfo(host && *host ? host : NULL, ps, &hints, &res);
    if (gai != 0) {
        LOG_ERROR("cannot resolve \"%s\": %s", host ? host : "", gai_strerror(gai));
        goto out;
    }
    for (const struct addrinfo *ai = res; ai && !n->lev; ai = ai->ai_next)
        n->lev = evconnlistener_new_bind(srv->base, on_accept, n,
                                         LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE |
                                             LEV_OPT_CLOSE_ON_EXEC,
                                         RG_BACKLOG, ai->ai_addr, (int)ai->ai_addrlen);
    if (!n->lev) {
        LOG_ERROR("cannot listen on %s:%u: %s", host ? host : "", (unsigned)port,
                  strerror(errno));
        goto out;
    }
    n->port = bound_port(evconnlistener_get_fd(n->lev));
    *out = n;
    n = NULL;
    rc = 0;
out:
    if (res) freeaddrinfo(res);
    rg_net_free(n);
    return rc;
}

uint16_t rg_net_port(const rg_net *n) { return n ? n->port : 0; }
unsigned rg_net_conns(const rg_net *n) { return n ? n->n_conns : 0; }

void rg_net_stop(rg_net *n)
{
    if (!n) return;
    n->stopping = 1;
    if (n->lev) evconnlistener_free(n->lev);
    n->lev = NULL;
    for (rg_conn *c = n->conns, *next; c; c = next) {
        next = c->next;
        if (c->closing) continue;
        rg_session_goaway(c->sess);
        conn_pump(c);
    }
}

void rg_net_free(rg_net *n)
{
    if (!n) return;
    if (n->lev) evconnlistener_free(n->lev);
    while (n->conns) conn_free(n->conns);
    free(n);
}

/* ALPN: the server picks h2 or refuses the handshake. */
static int select_h2(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                     const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned i = 0; i < inlen; i += 1u + in[i]) {
        if (in[i] == 2 && i + 3 <= inlen && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

SSL_CTX *rg_tls_ctx_new(const char *cert_file, const char *key_file)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
        LOG_ERROR("receivers.otlp.grpc.tls.cert_file %s: cannot load the certificate", cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        LOG_ERROR("receivers.otlp.grpc.tls.key_file %s: cannot load the key or it does not "
                  "match the certificate", key_file);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, select_h2, NULL);
    return ctx;
fail:
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return NULL;
}
