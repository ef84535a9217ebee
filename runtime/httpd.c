/* httpd.c — see httpd.h: the listening socket, accepting, shutdown, the
 * request view and the answer. Connections live in httpd_conn.c.
 */
#define LOG_COMPONENT "httpd"
#include "runtime/httpd_int.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "runtime/budget.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define HTTPD_DEF_BODY (1u << 20)
#define HTTPD_DEF_HEAD (64 * 1024)
#define HTTPD_BACKLOG 1024
#define HTTPD_ACCEPTS_PER_EVENT 64
#define HTTPD_EVICT_SCAN 64

const char *httpd_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return status < 400 ? "OK" : status < 500 ? "Bad Request" : "Internal Server Error";
    }
}

/* ---- lifecycle --------------------------------------------------------- */

static void on_pause_over(evutil_socket_t fd, short what, void *arg);
static void on_trim(evutil_socket_t fd, short what, void *arg);

static void ms_to_tv(uint64_t ms, struct timeval *tv)
{
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)(ms % 1000) * 1000;
}

httpd *httpd_new(struct event_base *base, const httpd_opts *o, httpd_handler fn, void *arg)
{
    if (!base || !fn) return NULL;
    httpd *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->base = base;
    h->fn = fn;
    h->arg = arg;
    h->lfd = -1;
    if (o) h->o = *o;
    h->bud = h->o.budget;
    if (!h->bud) {
        h->bud = budget_new(h->o.max_mem);
        h->own_bud = 1;
        if (h->bud && budget_attach(h->bud, base) != 0) {
            httpd_free(h);
            return NULL;
        }
    }
    h->scratch = malloc(HTTPD_READ_SZ);
    h->pause_ev = evtimer_new(base, on_pause_over, h);
    h->trim_ev = evtimer_new(base, on_trim, h);
    if (h->o.metrics && !(h->mb = httpd_metrics_get(h->o.metrics, h->o.metrics_server))) {
        httpd_free(h);
        return NULL;
    }
    if (!h->bud || !h->scratch || !h->pause_ev || !h->trim_ev) {
        httpd_free(h);
        return NULL;
    }
    if (!h->o.max_body) h->o.max_body = HTTPD_DEF_BODY;
    if (!h->o.max_head) h->o.max_head = HTTPD_DEF_HEAD;
    if (!h->o.max_conns) h->o.max_conns = HTTPD_MAX_CONNS;
    if (h->o.max_body > SIZE_MAX / 4) h->o.max_body = SIZE_MAX / 4;
    if (h->o.max_head > SIZE_MAX / 8) h->o.max_head = SIZE_MAX / 8;
    /* head + body + trailers + one read of the next request */
    h->in_limit = 2 * h->o.max_head + h->o.max_body + HTTPD_READ_SZ;
    ms_to_tv(h->o.timeout_ms, &h->tv);
    uint64_t lms = h->o.timeout_ms && h->o.timeout_ms < HTTPD_LINGER_MS ? h->o.timeout_ms
                                                                       : HTTPD_LINGER_MS;
    ms_to_tv(lms, &h->linger_tv);
    return h;
}

static void lev_set(httpd *h, int on)
{
    if (!h->lev || h->lev_on == on) return;
    if (on ? event_add(h->lev, NULL) : event_del(h->lev)) return;
    h->lev_on = on;
}

/* The listening socket is watched unless draining or paused (also at the
 * cap: a waiting client then makes room by evicting an idle connection). */
static void lev_update(httpd *h)
{
    lev_set(h, !h->draining && !h->paused);
}

static void on_pause_over(evutil_socket_t fd, short what, void *arg)
{
    httpd *h = arg;
    (void)fd;
    (void)what;
    h->paused = 0;
    lev_update(h);
}

/* accept(2) ran out of descriptors or memory: the listening socket stays
 * readable, so stop watching it for a while instead of spinning. */
static void pause_listener(httpd *h)
{
    static const struct timeval tv = {0, HTTPD_ACCEPT_PAUSE_MS * 1000};
    h->paused = 1;
    lev_set(h, 0);
    if (evtimer_add(h->pause_ev, &tv) != 0) h->paused = 0;
}

static void pause_accepting(httpd *h, int err)
{
    HTTPD_COUNT(h, accept_pauses, accept_pauses);
    LOG_WARN_RL(10, "accept: %s; pausing accepting for %d ms (%llu pauses so far, %u open)",
                strerror(err), HTTPD_ACCEPT_PAUSE_MS, (unsigned long long)h->st.accept_pauses,
                h->nconns);
    pause_listener(h);
}

/* Nothing of a request held or being answered: between two requests of a
 * keep-alive connection, or connected and silent. */
static int conn_idle(const hconn *c)
{
    return c->fd >= 0 && c->state == HC_HEAD && c->in_len == c->off &&
           c->out_off == c->out_len && !c->closing && !c->in_handler;
}

/* At the cap with a client waiting: closes one idle connection, looking
 * at up to HTTPD_EVICT_SCAN from where the last look stopped. 1 if one
 * was closed. */
static int evict_idle(httpd *h)
{
    hconn *c = h->evict_at ? h->evict_at : h->conns;
    for (int i = 0; i < HTTPD_EVICT_SCAN && c; i++) {
        hconn *next = c->next ? c->next : h->conns;
        if (conn_idle(c)) {
            h->evict_at = next != c ? next : NULL;
            HTTPD_COUNT(h, evicted, evicted);
            httpd_conn_close(c);
            return 1;
        }
        c = next;
    }
    h->evict_at = c;
    return 0;
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    httpd *h = arg;
    (void)what;
    for (int i = 0; i < HTTPD_ACCEPTS_PER_EVENT; i++) {
        if (h->nconns >= h->o.max_conns) {
            /* the socket was readable, so a client waits: make room for it
             * (once per event; the next event makes room for the next) */
            if (i > 0) return;
            if (!evict_idle(h)) {
                HTTPD_COUNT(h, cap_pauses, cap_pauses);
                LOG_WARN_RL(10, "%u connections open, none idle: new clients wait",
                            h->nconns);
                pause_listener(h);
                return;
            }
        }
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                pause_accepting(h, errno);
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
                       errno != ECONNABORTED) {
                LOG_WARN_RL(10, "accept: %s", strerror(errno));
            }
            return;
        }
        if (!httpd_conn_new(h, fd)) {
            LOG_WARN_RL(10, "out of memory for a new connection");
            close(fd);
        }
    }
}

/* After a crowd of at least HTTPD_TRIM_CONNS connections shrank to a
 * quarter, the heap their structs used is given back to the kernel a
 * second later (closes in between coalesce). */
#define HTTPD_TRIM_CONNS 256

static void on_trim(evutil_socket_t fd, short what, void *arg)
{
    httpd *h = arg;
    (void)fd;
    (void)what;
    h->trim_pending = 0;
    h->conns_high = h->nconns;
    budget_trim(h->bud);
}

void httpd_conn_gone(httpd *h)
{
    static const struct timeval later = {1, 0};
    h->nconns--;
    httpd_note_conns(h);
    if (!h->trim_pending && h->conns_high >= HTTPD_TRIM_CONNS &&
        h->nconns <= h->conns_high / 4 && h->trim_ev && evtimer_add(h->trim_ev, &later) == 0)
        h->trim_pending = 1;
    lev_update(h);
}

static int listen_on(const struct addrinfo *ai)
{
    int one = 1;
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0) return -1;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, HTTPD_BACKLOG) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static uint16_t local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) return 0;
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int httpd_bind(httpd *h, const char *host, uint16_t port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char ps[8];
    int fd = -1, rc = 0;
    if (h->lfd >= 0 || h->draining) return SW_EINVAL;
    snprintf(ps, sizeof ps, "%u", (unsigned)port);
    int gai = getaddrinfo(host && *host ? host : NULL, ps, &hints, &res);
    if (gai != 0) {
        LOG_ERROR("cannot resolve \"%s\": %s", host ? host : "", gai_strerror(gai));
        return SW_EIO;
    }
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) fd = listen_on(ai);
    if (fd < 0) {
        LOG_ERROR("cannot listen on %s:%u: %s", host ? host : "", (unsigned)port,
                  strerror(errno));
        rc = SW_EIO;
        goto out;
    }
    h->lev = event_new(h->base, fd, EV_READ | EV_PERSIST, on_accept, h);
    if (!h->lev) {
        close(fd);
        rc = SW_ENOMEM;
        goto out;
    }
    h->lfd = fd;
    h->port = local_port(fd);
    lev_update(h);
out:
    freeaddrinfo(res);
    return rc;
}

uint16_t httpd_port(const httpd *h) { return h ? h->port : 0; }

void httpd_get_stats(const httpd *h, httpd_stats *s)
{
    *s = h->st;
    s->conns = h->nconns;
}

static void close_listener(httpd *h)
{
    if (h->lev) {
        lev_set(h, 0);
        event_free(h->lev);
        h->lev = NULL;
    }
    if (h->lfd >= 0) close(h->lfd);
    h->lfd = -1;
}

void httpd_stop_accepting(httpd *h)
{
    if (!h || h->draining) return;
    h->draining = 1;
    close_listener(h);
}

void httpd_close_idle(httpd *h)
{
    if (!h) return;
    hconn *next;
    for (hconn *c = h->conns; c; c = next) {
        next = c->next;
        if (c->fd < 0 || c->state != HC_HEAD || c->in_len > c->off ||
            c->out_off < c->out_len || c->closing)
            continue;
        char ch;
        if (recv(c->fd, &ch, 1, MSG_PEEK | MSG_DONTWAIT) > 0) continue; /* served, then closed */
        httpd_conn_close(c);
    }
}

void httpd_free(httpd *h)
{
    if (!h) return;
    close_listener(h);
    while (h->conns) httpd_conn_free(h->conns);
    h->nconns = 0;
    httpd_note_conns(h);
    httpd_slab_free_all(h);
    if (h->pause_ev) event_free(h->pause_ev);
    if (h->trim_ev) event_free(h->trim_ev);
    if (h->own_bud) budget_free(h->bud);
    free(h->scratch);
    free(h);
}

/* ---- the request view -------------------------------------------------- */

const char *httpd_req_method(const httpd_req *r) { return r->head.method; }
const char *httpd_req_path(const httpd_req *r) { return r->head.path; }

const char *httpd_req_header(const httpd_req *r, const char *name)
{
    return httpd_head_field(&r->head, name);
}

const uint8_t *httpd_req_body(const httpd_req *r, size_t *len)
{
    if (len) *len = r->body_len;
    return r->body;
}

int httpd_req_too_large(const httpd_req *r) { return r->too_large; }
int httpd_req_busy(const httpd_req *r) { return r->busy; }

size_t httpd_req_header_count(const httpd_req *r, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < r->head.nfields; i++)
        if (strcasecmp(r->head.fields[i].name, name) == 0) n++;
    return n;
}
void httpd_req_close(httpd_req *r) { r->close = 1; }

/* ---- answers ----------------------------------------------------------- */

const char *httpd_date(httpd *h)
{
    time_t now = time(NULL);
    if (now != h->date_sec) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(h->date, sizeof h->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        h->date_sec = now;
    }
    return h->date;
}

typedef struct hb {
    char b[HTTPD_MAX_REPLY_HEAD];
    size_t n;
    int over;
} hb;

static void put(hb *o, const char *s)
{
    size_t n = strlen(s);
    if (o->over || n > sizeof o->b - o->n) {
        o->over = 1;
        return;
    }
    memcpy(o->b + o->n, s, n);
    o->n += n;
}

static void put_u64(hb *o, uint64_t v)
{
    char d[24];
    int i = (int)sizeof d - 1;
    d[i] = '\0';
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(o, d + i);
}

int httpd_send_response(hconn *c, int status, const char *ctype, const char *headers,
                        const void *body, size_t len, int close, int is_head)
{
    hb o = {.n = 0, .over = 0};
    put(&o, "HTTP/1.1 ");
    put_u64(&o, status >= 100 && status <= 999 ? (uint64_t)status : 500);
    put(&o, " ");
    put(&o, httpd_reason(status));
    put(&o, "\r\nDate: ");
    put(&o, httpd_date(c->h));
    if (ctype) {
        put(&o, "\r\nContent-Type: ");
        put(&o, ctype);
    }
    put(&o, "\r\nContent-Length: ");
    put_u64(&o, len);
    put(&o, "\r\n");
    if (headers) put(&o, headers);
    if (close) put(&o, "Connection: close\r\n");
    else if (c->req.head.minor == 0) put(&o, "Connection: keep-alive\r\n");
    put(&o, "\r\n");
    if (o.over) return SW_EINVAL;
    struct iovec iov[2] = {{o.b, o.n}, {(void *)body, len}};
    (void)httpd_conn_send(c, iov, is_head || !len ? 1 : 2);
    return 0;
}

int httpd_reply(httpd_req *r, int status, const char *ctype, const char *headers,
                const void *body, size_t len)
{
    hconn *c = r->c;
    int rc = 0;
    int close = r->close || r->too_large || r->busy || c->h->draining;
    if (close) c->closing = 1;
    if (r->too_large || r->busy) c->linger = 1;
    if (c->fd >= 0) {
        rc = httpd_send_response(c, status, ctype, headers, body, len, close, r->is_head);
        if (rc != 0) {
            static const char msg[] = "reply headers too long\n";
            LOG_ERROR_RL(10, "%s", "reply headers too long; answering 500");
            (void)httpd_send_response(c, 500, "text/plain", NULL, msg, sizeof msg - 1, close,
                                      r->is_head);
        }
    }
    httpd_conn_answered(c);
    return rc;
}
