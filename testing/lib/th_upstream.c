/* th_upstream.c — see th_upstream.h. */
#include "testing/lib/th_upstream.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

#include "runtime/buf.h"
#include "runtime/codec.h"
#include "runtime/tls.h"
#include "testing/lib/th.h"

#define UP_MAX_BODY (64u << 20)

typedef struct up_later up_later;

struct th_upstream {
    struct event_base *base;
    struct evhttp *http;
    struct event *quit;
    SSL_CTX *ssl;        /* https, or NULL */
    pthread_t th;
    uint16_t port;
    th_up_fn decide;
    th_up_observe_fn observe;
    void *arg;
    pthread_mutex_t mu; /* protects requests, conns, later and the callbacks' state */
    int requests;
    int conns;
    up_later *later;     /* delayed answers not sent yet */
};

/* An answer sent delay_ms later. */
struct up_later {
    up_later *next;
    th_upstream *u;
    struct evhttp_request *req;
    th_up_reply r;
};

static int decode(const char *enc, const uint8_t *p, size_t n, buf *out)
{
    if (enc && !strcmp(enc, "gzip")) return codec_gunzip(p, n, out);
    if (enc && !strcmp(enc, "zstd")) return codec_zstd_decompress(p, n, out);
    return n ? buf_append(out, p, n) : 0;
}

static void hdr(struct evkeyvalq *h, const char *name, const char **out)
{
    const char *v = evhttp_find_header(h, name);
    *out = v ? v : "";
}

static void reply(struct evhttp_request *req, const th_up_reply *r)
{
    struct evkeyvalq *oh = evhttp_request_get_output_headers(req);
    if (r->ctype) evhttp_add_header(oh, "Content-Type", r->ctype);
    if (r->retry_after) evhttp_add_header(oh, "Retry-After", r->retry_after);
    struct evbuffer *out = evbuffer_new();
    if (out && r->body_len)
        evbuffer_add(out, r->body, r->body_len < sizeof r->body ? r->body_len : sizeof r->body);
    evhttp_send_reply(req, r->code, "X", out);
    if (out) evbuffer_free(out);
}

static void later_cb(evutil_socket_t fd, short what, void *arg)
{
    up_later *l = arg;
    th_upstream *u = l->u;
    (void)fd;
    (void)what;
    pthread_mutex_lock(&u->mu);
    for (up_later **p = &u->later; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            break;
        }
    pthread_mutex_unlock(&u->mu);
    reply(l->req, &l->r);
    free(l);
}

static void observe(th_upstream *u, struct evhttp_request *req, size_t n, int ok)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    th_up_req q = {.path = evhttp_request_get_uri(req), .decoded = ok, .raw_len = n};
    hdr(h, "Content-Type", &q.content_type);
    hdr(h, "Content-Encoding", &q.content_encoding);
    hdr(h, "Host", &q.host);
    hdr(h, "api-key", &q.api_key);
    for (struct evkeyval *kv = h->tqh_first; kv; kv = kv->next.tqe_next)
        if (!strcasecmp(kv->key, "Host")) q.host_headers++;
    u->observe(u->arg, &q);
}

static void handle(struct evhttp_request *req, void *arg)
{
    th_upstream *u = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    const uint8_t *p = n ? evbuffer_pullup(in, -1) : NULL;
    const char *enc = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Encoding");
    th_up_reply r = {.code = 200};
    buf plain;
    buf_init(&plain, UP_MAX_BODY);
    int ok = decode(enc, p, n, &plain) == 0;
    pthread_mutex_lock(&u->mu);
    u->requests++;
    if (u->observe) observe(u, req, n, ok);
    u->decide(u->arg, evhttp_request_get_uri(req), ok && plain.len ? plain.data : NULL,
              ok ? plain.len : 0, &r);
    pthread_mutex_unlock(&u->mu);
    buf_destroy(&plain);
    if (r.delay_ms <= 0) {
        reply(req, &r);
        return;
    }
    up_later *l = malloc(sizeof *l);
    TH_ASSERT(l);
    *l = (up_later){.u = u, .req = req, .r = r};
    pthread_mutex_lock(&u->mu);
    l->next = u->later;
    u->later = l;
    pthread_mutex_unlock(&u->mu);
    struct timeval tv = {r.delay_ms / 1000, (r.delay_ms % 1000) * 1000};
    event_base_once(u->base, -1, EV_TIMEOUT, later_cb, l, &tv);
}

/* Every accepted connection comes through here (counted). */
static struct bufferevent *bevcb(struct event_base *base, void *arg)
{
    th_upstream *u = arg;
    pthread_mutex_lock(&u->mu);
    u->conns++;
    pthread_mutex_unlock(&u->mu);
    return u->ssl ? tls_server_bufferevent(base, u->ssl)
                  : bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
}

/* A loopbreak before the loop starts would be lost; an activated event is not. */
static void quit_cb(evutil_socket_t fd, short what, void *arg)
{
    th_upstream *u = arg;
    (void)fd;
    (void)what;
    evhttp_free(u->http);
    u->http = NULL;
    event_base_loopbreak(u->base);
}

static void *up_main(void *arg)
{
    th_upstream *u = arg;
    event_base_dispatch(u->base);
    for (int i = 0; i < 64 && event_base_get_num_events(u->base, EVENT_BASE_COUNT_ACTIVE) > 0; i++)
        event_base_loop(u->base, EVLOOP_NONBLOCK);
    return NULL;
}

th_upstream *th_upstream_start_opts(const th_up_opts *o)
{
    th_upstream *u = calloc(1, sizeof *u);
    TH_ASSERT(u);
    pthread_mutex_init(&u->mu, NULL);
    u->decide = o->decide;
    u->observe = o->observe;
    u->arg = o->arg;
    if (o->tls_cert && o->tls_key) TH_ASSERT(u->ssl = tls_server_ctx_new(o->tls_cert, o->tls_key));
    evthread_use_pthreads(); /* th_upstream_stop wakes the loop from another thread */
    u->base = event_base_new();
    u->http = u->base ? evhttp_new(u->base) : NULL;
    u->quit = u->base ? event_new(u->base, -1, 0, quit_cb, u) : NULL;
    TH_ASSERT(u->base && u->http && u->quit);
    evhttp_set_bevcb(u->http, bevcb, u);
    evhttp_set_gencb(u->http, handle, u);
    evhttp_set_max_body_size(u->http, UP_MAX_BODY);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(u->http, "127.0.0.1", 0);
    TH_ASSERT(bs);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    TH_ASSERT(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) == 0);
    u->port = ntohs(sa.sin_port);
    TH_ASSERT(pthread_create(&u->th, NULL, up_main, u) == 0);
    return u;
}

th_upstream *th_upstream_start(th_up_fn decide, void *arg)
{
    th_up_opts o = {.decide = decide, .arg = arg};
    return th_upstream_start_opts(&o);
}

int th_upstream_conns(th_upstream *u)
{
    pthread_mutex_lock(&u->mu);
    int n = u->conns;
    pthread_mutex_unlock(&u->mu);
    return n;
}

uint16_t th_upstream_port(const th_upstream *u) { return u->port; }

int th_upstream_requests(th_upstream *u)
{
    pthread_mutex_lock(&u->mu);
    int n = u->requests;
    pthread_mutex_unlock(&u->mu);
    return n;
}

void th_upstream_lock(th_upstream *u) { pthread_mutex_lock(&u->mu); }
void th_upstream_unlock(th_upstream *u) { pthread_mutex_unlock(&u->mu); }

void th_upstream_stop(th_upstream *u)
{
    if (!u) return;
    event_active(u->quit, EV_READ, 0);
    pthread_join(u->th, NULL);
    while (u->later) { /* their timers die with the base */
        up_later *l = u->later;
        u->later = l->next;
        free(l);
    }
    event_free(u->quit);
    event_base_free(u->base);
    if (u->ssl) SSL_CTX_free(u->ssl);
    pthread_mutex_destroy(&u->mu);
    free(u);
}
