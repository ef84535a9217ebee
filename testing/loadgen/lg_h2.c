/* lg_h2.c — see lg_h2.h. */
#include "testing/loadgen/lg_h2.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "runtime/item.h"

struct lg_h2 {
    struct event_base *base;     /* borrowed */
    char host[256];
    uint16_t port;
    struct timeval timeout;
    lg_h2_done_fn done;
    void *arg;
    struct bufferevent *bev;     /* owned; NULL when not connected */
    nghttp2_session *ng;         /* owned */
    uint8_t *body;               /* the call's framed body, owned */
    size_t body_len, body_off;
    int32_t stream;              /* in flight, or 0 */
    int status;                  /* grpc-status seen */
};

static const char *const methods[SIG_COUNT] = {
    "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
    "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
    "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
};

const char *lg_h2_method(int signal)
{
    return signal >= 0 && signal < SIG_COUNT ? methods[signal] : NULL;
}

static void disconnect(lg_h2 *c)
{
    if (c->ng) nghttp2_session_del(c->ng);
    if (c->bev) bufferevent_free(c->bev);
    c->ng = NULL;
    c->bev = NULL;
}

/* Ends the call in flight with status (once). */
static void finish(lg_h2 *c, int status)
{
    if (!c->stream) return;
    c->stream = 0;
    free(c->body);
    c->body = NULL;
    c->done(c->arg, status);
}

static void fail(lg_h2 *c)
{
    disconnect(c);
    finish(c, -1);
}

static void flush(lg_h2 *c)
{
    const uint8_t *data;
    ssize_t n;
    while (c->ng && (n = nghttp2_session_mem_send(c->ng, &data)) > 0)
        if (evbuffer_add(bufferevent_get_output(c->bev), data, (size_t)n) != 0) break;
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user)
{
    (void)ng;
    (void)flags;
    lg_h2 *c = user;
    if (f->hd.stream_id == c->stream && nlen == 11 && memcmp(name, "grpc-status", 11) == 0)
        c->status = vlen > 0 && vlen < 4 ? atoi((const char *)value) : -1;
    return 0;
}

static int on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *user)
{
    (void)ng;
    lg_h2 *c = user;
    if (id == c->stream) finish(c, code == NGHTTP2_NO_ERROR || c->status >= 0 ? c->status : -1);
    return 0;
}

static ssize_t read_body(nghttp2_session *ng, int32_t id, uint8_t *out, size_t len,
                         uint32_t *flags, nghttp2_data_source *src, void *user)
{
    (void)ng;
    (void)id;
    (void)src;
    lg_h2 *c = user;
    size_t k = c->body_len - c->body_off;
    if (k > len) k = len;
    memcpy(out, c->body + c->body_off, k);
    c->body_off += k;
    if (c->body_off == c->body_len) *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)k;
}

static void on_read(struct bufferevent *bev, void *arg)
{
    lg_h2 *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n = evbuffer_get_length(in);
    const uint8_t *data = evbuffer_pullup(in, (ev_ssize_t)n);
    if (nghttp2_session_mem_recv(c->ng, data, n) < 0) {
        fail(c);
        return;
    }
    evbuffer_drain(in, n);
    flush(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    lg_h2 *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        setsockopt(bufferevent_getfd(c->bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        return;
    }
    fail(c); /* EOF, error or timeout */
}

static int connect_now(lg_h2 *c)
{
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb) != 0) return -1;
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_close);
    int rc = nghttp2_session_client_new(&c->ng, cb, c);
    nghttp2_session_callbacks_del(cb);
    if (rc != 0) return -1;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
    nghttp2_submit_settings(c->ng, NGHTTP2_FLAG_NONE, iv, 1);
    c->bev = bufferevent_socket_new(c->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) return -1;
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_set_timeouts(c->bev, &c->timeout, &c->timeout);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect_hostname(c->bev, NULL, AF_UNSPEC, c->host, c->port) != 0)
        return -1;
    return 0;
}

lg_h2 *lg_h2_new(struct event_base *base, const char *host, uint16_t port, double timeout_s,
                 lg_h2_done_fn done, void *arg)
{
    lg_h2 *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->base = base;
    snprintf(c->host, sizeof c->host, "%s", host);
    c->port = port;
    c->timeout.tv_sec = (time_t)timeout_s;
    c->timeout.tv_usec = (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6);
    c->done = done;
    c->arg = arg;
    return c;
}

#define NVS(n, v) { (uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE }

int lg_h2_call(lg_h2 *c, const char *path, const char *encoding, const uint8_t *body,
               size_t len)
{
    if (c->stream) return -1;
    if (!c->ng && connect_now(c) != 0) {
        disconnect(c);
        return -1;
    }
    c->body = malloc(len + 5);
    if (!c->body) return -1;
    c->body[0] = encoding ? 1 : 0;
    c->body[1] = (uint8_t)(len >> 24);
    c->body[2] = (uint8_t)(len >> 16);
    c->body[3] = (uint8_t)(len >> 8);
    c->body[4] = (uint8_t)len;
    memcpy(c->body + 5, body, len);
    c->body_len = len + 5;
    c->body_off = 0;
    c->status = -1;
    nghttp2_nv nv[8] = {NVS(":method", "POST"), NVS(":scheme", "http"),
                        NVS(":authority", c->host), NVS(":path", path),
                        NVS("content-type", "application/grpc"), NVS("te", "trailers")};
    size_t n = 6;
    if (encoding) nv[n++] = (nghttp2_nv)NVS("grpc-encoding", encoding);
    nghttp2_data_provider prd = {.read_callback = read_body};
    int32_t id = nghttp2_submit_request(c->ng, NULL, nv, n, &prd, NULL);
    if (id < 0) {
        free(c->body);
        c->body = NULL;
        return -1;
    }
    c->stream = id;
    flush(c);
    return 0;
}

void lg_h2_free(lg_h2 *c)
{
    if (!c) return;
    disconnect(c);
    free(c->body);
    free(c);
}
