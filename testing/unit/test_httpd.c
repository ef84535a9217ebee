/* test_httpd.c — runtime/httpd: the server on a real socket (keep-alive,
 * pipelining, 100-continue, caps, malformed requests, read timeout,
 * deferred answers, shutdown, non-HTTP input refused at once, the memory
 * budget, the head deadline, the body rate, EMFILE, eviction at the cap). The parser's
 * tests are in test_httpd_parse.c. The server's loop runs on its own
 * thread; the test is the client.
 */
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "runtime/httpd.h"
#include "runtime/httpd_parse.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"

/* ---- server ------------------------------------------------------------ */

typedef struct srv {
    struct event_base *base;
    httpd *h;
    uint16_t port;
    pthread_t loop;
    _Atomic int handled;
    _Atomic int deferred_done;
    _Atomic int control_done;
    httpd_req *held;             /* /hold: never answered (loop thread) */
    httpd_stats st;              /* the server's counters when it stopped */
} srv;

typedef struct later {
    srv *s;
    httpd_req *req;
} later;

static void reply_later(evutil_socket_t fd, short what, void *arg)
{
    later *l = arg;
    (void)fd;
    (void)what;
    httpd_reply(l->req, 200, "text/plain", NULL, "late", 4);
    atomic_fetch_add(&l->s->deferred_done, 1);
    free(l);
}

/* /echo: the body back; /defer: answered 150 ms later; a too-large body: 413. */
static void handler(httpd_req *req, void *arg)
{
    srv *s = arg;
    atomic_fetch_add(&s->handled, 1);
    if (httpd_req_busy(req)) {
        httpd_reply(req, 503, "text/plain", "Retry-After: 1\r\n", "busy", 4);
        return;
    }
    if (httpd_req_too_large(req)) {
        httpd_reply(req, 413, "text/plain", NULL, "big", 3);
        return;
    }
    if (strcmp(httpd_req_path(req), "/hold") == 0) {
        s->held = req;
        return;
    }
    if (strcmp(httpd_req_path(req), "/defer") == 0) {
        later *l = malloc(sizeof *l);
        struct timeval tv = {0, 150000};
        if (l) *l = (later){s, req};
        if (!l || event_base_once(s->base, -1, EV_TIMEOUT, reply_later, l, &tv) != 0) {
            free(l);
            httpd_reply(req, 500, NULL, NULL, NULL, 0);
        }
        return;
    }
    size_t len = 0;
    const uint8_t *body = httpd_req_body(req, &len);
    const char *v = httpd_req_header(req, "x-tag");
    char extra[128];
    snprintf(extra, sizeof extra, "X-Tag: %s\r\n", v ? v : "-");
    httpd_reply(req, 200, "application/octet-stream", extra, body, len);
}

static void *loop_main(void *arg)
{
    srv *s = arg;
    event_base_loop(s->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void srv_start_o(srv *s, const httpd_opts *o)
{
    memset(s, 0, sizeof *s);
    s->base = event_base_new();
    TH_ASSERT(s->base);
    s->h = httpd_new(s->base, o, handler, s);
    TH_ASSERT(s->h);
    TH_ASSERT_EQ_INT(httpd_bind(s->h, "127.0.0.1", 0), 0);
    s->port = httpd_port(s->h);
    TH_ASSERT(s->port > 0);
    TH_ASSERT_EQ_INT(pthread_create(&s->loop, NULL, loop_main, s), 0);
}

static void srv_start(srv *s, size_t max_body, uint64_t timeout_ms)
{
    httpd_opts o = {.max_body = max_body, .max_head = 4096, .timeout_ms = timeout_ms};
    srv_start_o(s, &o);
}

static void break_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

static void srv_stop(srv *s)
{
    struct timeval now = {0, 0};
    if (event_base_once(s->base, -1, EV_TIMEOUT, break_cb, s->base, &now) != 0)
        event_base_loopbreak(s->base);
    pthread_join(s->loop, NULL);
    httpd_get_stats(s->h, &s->st);
    httpd_free(s->h);
    event_base_free(s->base);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits (bounded) until *flag reaches want. */
static int wait_for(_Atomic int *flag, int want, int ms)
{
    int64_t end = now_ms() + ms;
    while (atomic_load(flag) < want && now_ms() < end) {
        struct pollfd none;
        poll(&none, 0, 5);
    }
    return atomic_load(flag) >= want ? 0 : -1;
}

typedef struct cli {
    int fd;
    char buf[65536];
    size_t len;
} cli;

static int cli_connect(cli *c, uint16_t port)
{
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    c->len = 0;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) return -1;
    struct timeval tv = {5, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return connect(c->fd, (struct sockaddr *)&sa, sizeof sa);
}

static int cli_send(cli *c, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

static int cli_sends(cli *c, const char *s) { return cli_send(c, s, strlen(s)); }

typedef struct resp {
    int status;
    char head[2048];
    char body[65536];
    size_t body_len;
} resp;

static int cli_fill(cli *c)
{
    if (c->len == sizeof c->buf) return -1;
    ssize_t n = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
    if (n <= 0) return -1;
    c->len += (size_t)n;
    return 0;
}

/* Reads one response (Content-Length bodies; none when no_body). */
static int cli_read_x(cli *c, resp *r, int no_body)
{
    char *end;
    while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4)))
        if (cli_fill(c) != 0) return -1;
    size_t hl = (size_t)(end - c->buf) + 4;
    if (hl >= sizeof r->head) return -1;
    memcpy(r->head, c->buf, hl);
    r->head[hl] = '\0';
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1) return -1;
    const char *cl = strstr(r->head, "Content-Length: ");
    r->body_len = cl && !no_body ? strtoul(cl + 16, NULL, 10) : 0;
    if (r->body_len >= sizeof r->body) return -1;
    while (c->len < hl + r->body_len)
        if (cli_fill(c) != 0) return -1;
    memcpy(r->body, c->buf + hl, r->body_len);
    r->body[r->body_len] = '\0';
    memmove(c->buf, c->buf + hl + r->body_len, c->len - hl - r->body_len);
    c->len -= hl + r->body_len;
    return 0;
}

static int cli_read(cli *c, resp *r) { return cli_read_x(c, r, 0); }

/* 1 when the server closed the connection (EOF/reset) within ms. */
static int cli_closed(cli *c, int ms)
{
    int64_t end = now_ms() + ms;
    char tmp[4096];
    while (now_ms() < end) {
        struct pollfd p = {c->fd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        ssize_t n = recv(c->fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN)) return 1;
    }
    return 0;
}

static void t_keepalive_pipelining(void)
{
    srv s;
    cli c;
    resp r;
    srv_start(&s, 1024, 0);
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /echo HTTP/1.1\r\nX-Tag: one\r\nContent-Length: 3\r\n"
                                   "\r\nabc\r\n"
                                   "POST /echo HTTP/1.1\r\nX-Tag: two\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n2\r\nde\r\n1\r\nf\r\n0\r\n\r\n"
                                   "GET /echo HTTP/1.1\r\n\r\n"),
                     0);
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    TH_ASSERT_EQ_STR(r.body, "abc");
    TH_ASSERT(strstr(r.head, "X-Tag: one\r\n") && strstr(r.head, "Date: "));
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_STR(r.body, "def");
    TH_ASSERT(strstr(r.head, "X-Tag: two\r\n"));
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_INT(r.body_len, 0);
    /* HEAD gets the headers and no body; Connection: close closes */
    TH_ASSERT_EQ_INT(cli_sends(&c, "HEAD /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nxy"
                                   "POST /echo HTTP/1.1\r\nConnection: close\r\n"
                                   "Content-Length: 1\r\n\r\nz"),
                     0);
    TH_ASSERT_EQ_INT(cli_read_x(&c, &r, 1), 0);
    TH_ASSERT(strstr(r.head, "Content-Length: 2\r\n"));
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_STR(r.body, "z");
    TH_ASSERT(strstr(r.head, "Connection: close\r\n"));
    TH_ASSERT(cli_closed(&c, 3000));
    close(c.fd);
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /echo HTTP/1.0\r\nContent-Length: 1\r\n\r\nz"), 0);
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT(strstr(r.head, "Connection: close\r\n"));
    TH_ASSERT(cli_closed(&c, 3000));
    close(c.fd);
    srv_stop(&s);
}

static void t_continue_and_caps(void)
{
    srv s;
    cli c;
    resp r;
    srv_start(&s, 1024, 0);
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
                                   "Content-Length: 4\r\n\r\n"),
                     0);
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 100);
    TH_ASSERT_EQ_INT(cli_sends(&c, "wxyz"), 0);
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    TH_ASSERT_EQ_STR(r.body, "wxyz");
    /* over the cap with Expect: 413 at once, no 100, then a close */
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\n"
                                   "Content-Length: 5000\r\n\r\n"),
                     0);
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 413);
    TH_ASSERT_EQ_STR(r.body, "big");
    TH_ASSERT(strstr(r.head, "Connection: close\r\n"));
    TH_ASSERT(cli_closed(&c, 5000));
    close(c.fd);
    /* a chunked body passing the cap: 413 while the client still sends */
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
                     0);
    static char chunk[600];
    memset(chunk, 'q', sizeof chunk);
    memcpy(chunk, "200\r\n", 5);
    memcpy(chunk + 5 + 512, "\r\n", 2);
    for (int i = 0; i < 3; i++) TH_ASSERT_EQ_INT(cli_send(&c, chunk, 5 + 512 + 2), 0);
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 413);
    close(c.fd);
    srv_stop(&s);
}

static void t_malformed(void)
{
    static const struct {
        const char *req;
        int status;
    } cases[] = {
        {"GARBAGE\r\n\r\n", 400},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
        {"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n", 400},
        {"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", 400},
    };
    srv s;
    cli c;
    resp r;
    srv_start(&s, 1024, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
        TH_ASSERT_EQ_INT(cli_sends(&c, cases[i].req), 0);
        TH_ASSERT_MSG(cli_read(&c, &r) == 0, "case %zu: no answer", i);
        TH_ASSERT_MSG(r.status == cases[i].status, "case %zu: %d", i, r.status);
        TH_ASSERT(cli_closed(&c, 5000));
        close(c.fd);
    }
    /* a head over max_head (4096) */
    static char big[6000];
    memset(big, 'a', sizeof big - 1);
    memcpy(big, "GET / HTTP/1.1\r\nX: ", 19);
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, big), 0);
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 431);
    close(c.fd);
    TH_ASSERT_EQ_INT(atomic_load(&s.handled), 0);
    srv_stop(&s);
}

static void t_slow_client_timeout(void)
{
    srv s;
    cli c, d;
    resp r;
    srv_start(&s, 1024, 200);
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /echo HTTP/1.1\r\nContent-Le"), 0);
    TH_ASSERT_EQ_INT(cli_connect(&d, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&d, "POST /echo HTTP/1.1\r\nContent-Length: 1\r\n\r\nk"), 0);
    TH_ASSERT_EQ_INT(cli_read(&d, &r), 0);
    TH_ASSERT_EQ_STR(r.body, "k");
    TH_ASSERT_MSG(cli_closed(&c, 5000), "stalled client still connected");
    TH_ASSERT_MSG(cli_closed(&d, 5000), "idle keep-alive connection still open");
    close(c.fd);
    close(d.fd);
    srv_stop(&s);
}

static void t_deferred(void)
{
    srv s;
    cli c;
    resp r;
    srv_start(&s, 1024, 0);
    /* answered later, in order before a pipelined request */
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /defer HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
                                   "POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"),
                     0);
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_STR(r.body, "late");
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_STR(r.body, "ok");
    close(c.fd);
    /* the client goes away before the answer: it is dropped */
    for (int i = 0; i < 3; i++) {
        TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
        TH_ASSERT_EQ_INT(cli_sends(&c, "POST /defer HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 0);
        TH_ASSERT_EQ_INT(wait_for(&s.handled, 3 + i, 3000), 0);
        close(c.fd);
    }
    TH_ASSERT_EQ_INT(wait_for(&s.deferred_done, 4, 3000), 0);
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "GET /echo HTTP/1.1\r\n\r\n"), 0);
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    close(c.fd);
    srv_stop(&s);
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    srv *s = arg;
    (void)fd;
    (void)what;
    httpd_stop_accepting(s->h);
    httpd_close_idle(s->h);
    atomic_store(&s->control_done, 1);
}

static void t_shutdown(void)
{
    srv s;
    cli c, idle;
    resp r;
    srv_start(&s, 1024, 0);
    TH_ASSERT_EQ_INT(cli_connect(&idle, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&idle, "GET /echo HTTP/1.1\r\n\r\n"), 0);
    TH_ASSERT_EQ_INT(cli_read(&idle, &r), 0);
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /defer HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 0);
    TH_ASSERT_EQ_INT(wait_for(&s.handled, 2, 3000), 0);
    struct timeval now = {0, 0};
    TH_ASSERT_EQ_INT(event_base_once(s.base, -1, EV_TIMEOUT, stop_cb, &s, &now), 0);
    TH_ASSERT_EQ_INT(wait_for(&s.control_done, 1, 3000), 0);
    TH_ASSERT_MSG(cli_closed(&idle, 3000), "idle connection not closed");
    cli n;
    TH_ASSERT(cli_connect(&n, s.port) != 0);
    close(n.fd);
    /* the request in progress is answered, with a close */
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_STR(r.body, "late");
    TH_ASSERT(strstr(r.head, "Connection: close\r\n"));
    TH_ASSERT(cli_closed(&c, 3000));
    close(c.fd);
    close(idle.fd);
    srv_stop(&s);
}

/* An unanswered request when the server is freed: freed with it. */
static void t_free_with_pending(void)
{
    srv s;
    cli c;
    srv_start(&s, 1024, 0);
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /hold HTTP/1.1\r\nContent-Length: 0\r\n\r\n"), 0);
    TH_ASSERT_EQ_INT(wait_for(&s.handled, 1, 3000), 0);
    srv_stop(&s);
    TH_ASSERT(s.held != NULL);
    TH_ASSERT(cli_closed(&c, 3000));
    close(c.fd);
}

/* Input that cannot be HTTP/1.x is answered at once, not after a timeout
 * (the server here has none). */
static void t_junk_at_once(void)
{
    static const struct {
        const char *req;
        size_t len;
        int status;
    } cases[] = {
        {"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11, 400}, /* TLS ClientHello */
        {"\x89PNG\r\n\x1a\n", 8, 400},
        {"GET /\r\n", 7, 400},                               /* HTTP/0.9 */
        {"PRI * HTTP/2.0\r\n", 16, 505},                     /* preface, first line */
        {"GET / HTTP/1.2\r\n", 16, 505},
    };
    srv s;
    cli c;
    resp r;
    srv_start(&s, 1024, 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
        TH_ASSERT_EQ_INT(cli_send(&c, cases[i].req, cases[i].len), 0);
        TH_ASSERT_MSG(cli_read(&c, &r) == 0, "case %zu: no answer", i);
        TH_ASSERT_MSG(r.status == cases[i].status, "case %zu: %d", i, r.status);
        TH_ASSERT_MSG(cli_closed(&c, 3000), "case %zu: still open", i);
        close(c.fd);
    }
    srv_stop(&s);
    TH_ASSERT_EQ_INT(s.st.junk_refused, sizeof cases / sizeof cases[0]);
    TH_ASSERT_EQ_INT(atomic_load(&s.handled), 0);
}

/* Bodies are charged as they arrive; one that does not fit the budget gets
 * 503 + Retry-After and a close, and frees the budget for the next. */
static void t_memory_budget(void)
{
    srv s;
    cli c;
    resp r;
    httpd_opts o = {.max_body = 1 << 20, .max_head = 4096, .max_mem = 128 * 1024};
    srv_start_o(&s, &o);
    static char body[300 * 1024];
    memset(body, 'b', sizeof body);
    char head[128];
    snprintf(head, sizeof head, "POST /echo HTTP/1.1\r\nContent-Length: %zu\r\n\r\n",
             sizeof body);
    for (int round = 0; round < 2; round++) {
        TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
        TH_ASSERT_EQ_INT(cli_sends(&c, head), 0);
        (void)cli_send(&c, body, sizeof body); /* may be cut short by the close */
        TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
        TH_ASSERT_EQ_INT(r.status, 503);
        TH_ASSERT(strstr(r.head, "Retry-After: 1\r\n"));
        TH_ASSERT(cli_closed(&c, 5000));
        close(c.fd);
        /* a body that fits is served */
        TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
        TH_ASSERT_EQ_INT(cli_sends(&c, "POST /echo HTTP/1.1\r\nContent-Length: 5\r\n\r\nsmall"), 0);
        TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
        TH_ASSERT_EQ_INT(r.status, 200);
        TH_ASSERT_EQ_STR(r.body, "small");
        close(c.fd);
    }
    /* an announced Content-Length is not reserved: announcing 1 MiB and
     * sending 10 bytes does not hit the 128 KiB budget */
    cli d[4];
    for (int i = 0; i < 4; i++) {
        TH_ASSERT_EQ_INT(cli_connect(&d[i], s.port), 0);
        TH_ASSERT_EQ_INT(cli_sends(&d[i], "POST /echo HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n0123456789"), 0);
    }
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /echo HTTP/1.1\r\nContent-Length: 2\r\n\r\nok"), 0);
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    close(c.fd);
    for (int i = 0; i < 4; i++) close(d[i].fd);
    srv_stop(&s);
    TH_ASSERT_EQ_INT(s.st.busy_refused, 2);
}

/* A head trickled a byte at a time is cut at the head deadline, although
 * every byte comes well within the inactivity timeout. */
static void t_head_deadline(void)
{
    srv s;
    cli c;
    httpd_opts o = {.max_body = 1024, .max_head = 4096, .timeout_ms = 5000,
                    .head_timeout_ms = 300};
    srv_start_o(&s, &o);
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    static const char head[] = "POST /echo HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    int64_t t0 = now_ms();
    int closed = 0;
    for (size_t i = 0; i < sizeof head - 1 && !closed; i++) {
        if (cli_send(&c, head + i, 1) != 0) break;
        closed = cli_closed(&c, 50);
    }
    if (!closed) closed = cli_closed(&c, 2000);
    int64_t took = now_ms() - t0;
    TH_ASSERT_MSG(closed, "trickling head still connected after %lld ms", (long long)took);
    printf("# head deadline 300 ms: closed after %lld ms\n", (long long)took);
    close(c.fd);
    srv_stop(&s);
    TH_ASSERT_EQ_INT(s.st.head_timeouts, 1);
}

/* A body trickled below min_body_rate is cut once the head deadline's
 * grace and the time its bytes bought are used up, although every byte
 * comes well within the inactivity timeout; a body above the rate passes
 * although the whole request takes several times the grace. */
static void t_body_rate(void)
{
    srv s;
    cli c;
    resp r;
    httpd_opts o = {.max_body = 4096, .max_head = 4096, .timeout_ms = 5000,
                    .head_timeout_ms = 300, .min_body_rate = 50};
    srv_start_o(&s, &o);

    /* 5 bytes a second against 50 required */
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /echo HTTP/1.1\r\nContent-Length: 1000\r\n\r\n"), 0);
    int64_t t0 = now_ms();
    int closed = 0;
    for (int i = 0; i < 100 && !closed; i++) {
        if (cli_send(&c, "x", 1) != 0) break;
        closed = cli_closed(&c, 200);
    }
    int64_t took = now_ms() - t0;
    TH_ASSERT_MSG(closed, "trickling body still connected after %lld ms", (long long)took);
    printf("# body at 5 B/s, min_body_rate 50 B/s, grace 300 ms: closed after %lld ms\n",
           (long long)took);
    close(c.fd);

    /* 250 bytes a second: 400 bytes take 1.6 s, five times the grace */
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /echo HTTP/1.1\r\nContent-Length: 400\r\n\r\n"), 0);
    char part[25];
    memset(part, 'y', sizeof part);
    t0 = now_ms();
    for (int i = 0; i < 16; i++) {
        TH_ASSERT_EQ_INT(cli_send(&c, part, sizeof part), 0);
        if (i < 15) th_nap_ms(100);
    }
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    TH_ASSERT_EQ_INT(r.body_len, 400);
    printf("# body at 250 B/s: answered after %lld ms\n", (long long)(now_ms() - t0));
    close(c.fd);
    srv_stop(&s);
    TH_ASSERT_EQ_INT(s.st.body_timeouts, 1);
    TH_ASSERT_EQ_INT(s.st.head_timeouts, 0);
}

/* accept(2) failing with EMFILE pauses accepting (counted) instead of
 * spinning, and accepting resumes once descriptors are free. */
static void t_emfile_pause(void)
{
    srv s;
    cli c;
    resp r;
    struct rlimit old, low;
    srv_start(&s, 1024, 0);
    TH_ASSERT_EQ_INT(getrlimit(RLIMIT_NOFILE, &old), 0);
    int probe = dup(0);
    TH_ASSERT(probe >= 0);
    close(probe);
    low = old;
    low.rlim_cur = (rlim_t)probe + 24;
    TH_ASSERT_EQ_INT(setrlimit(RLIMIT_NOFILE, &low), 0);
    int fds[64], n = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(s.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    while (n < 64) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0) break;
        fds[n++] = fd;
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) break;
    }
    TH_ASSERT(n > 0 && n < 64);
    struct pollfd none;
    poll(&none, 0, 600); /* the server meets EMFILE meanwhile */
    for (int i = 0; i < n; i++) close(fds[i]);
    TH_ASSERT_EQ_INT(setrlimit(RLIMIT_NOFILE, &old), 0);
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "GET /echo HTTP/1.1\r\n\r\n"), 0);
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    close(c.fd);
    srv_stop(&s);
    printf("# EMFILE: %llu accept pauses in ~600 ms\n", (unsigned long long)s.st.accept_pauses);
    TH_ASSERT(s.st.accept_pauses >= 1);
    TH_ASSERT(s.st.accept_pauses <= 20); /* 100 ms pauses, not a spin */
}

/* At the cap a new client evicts an idle connection; connections holding
 * part of a request are never evicted (the head deadline deals with them). */
static void t_evict_idle_at_cap(void)
{
    srv s;
    cli idle1, idle2, busy, c;
    resp r;
    httpd_opts o = {.max_body = 1024, .max_head = 4096, .max_conns = 2};
    srv_start_o(&s, &o);
    TH_ASSERT_EQ_INT(cli_connect(&idle1, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&idle1, "GET /echo HTTP/1.1\r\n\r\n"), 0);
    TH_ASSERT_EQ_INT(cli_read(&idle1, &r), 0); /* now idle between requests */
    TH_ASSERT_EQ_INT(cli_connect(&busy, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&busy, "POST /echo HTTP/1.1\r\nContent-Le"), 0);
    TH_ASSERT_EQ_INT(wait_for(&s.handled, 1, 1000), 0);
    struct pollfd none;
    poll(&none, 0, 100);
    TH_ASSERT_EQ_INT(cli_connect(&c, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "GET /echo HTTP/1.1\r\nX-Tag: new\r\n\r\n"), 0);
    TH_ASSERT_EQ_INT(cli_read(&c, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    TH_ASSERT_MSG(cli_closed(&idle1, 2000), "the idle connection was not evicted");
    close(idle1.fd);
    /* the slot went to c; the partial request still holds the other */
    TH_ASSERT_EQ_INT(cli_sends(&busy, "ngth: 1\r\n\r\nb"), 0);
    TH_ASSERT_EQ_INT(cli_read(&busy, &r), 0);
    TH_ASSERT_EQ_STR(r.body, "b");
    /* both busy in a request now: a third client waits in the backlog */
    TH_ASSERT_EQ_INT(cli_sends(&busy, "POST /echo HTTP/1.1\r\n"), 0);
    TH_ASSERT_EQ_INT(cli_sends(&c, "POST /echo HTTP/1.1\r\n"), 0);
    poll(&none, 0, 100);
    TH_ASSERT_EQ_INT(cli_connect(&idle2, s.port), 0);
    TH_ASSERT_EQ_INT(cli_sends(&idle2, "GET /echo HTTP/1.1\r\n\r\n"), 0);
    struct pollfd p = {idle2.fd, POLLIN, 0};
    TH_ASSERT_EQ_INT(poll(&p, 1, 400), 0); /* not served while both are busy */
    close(c.fd);                           /* a slot frees: served */
    TH_ASSERT_EQ_INT(cli_read(&idle2, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    close(idle2.fd);
    close(busy.fd);
    srv_stop(&s);
    TH_ASSERT_EQ_INT(s.st.evicted, 1);
}

int main(void)
{
    if (evthread_use_pthreads() != 0) return 1;
    TH_RUN(t_keepalive_pipelining);
    TH_RUN(t_continue_and_caps);
    TH_RUN(t_malformed);
    TH_RUN(t_slow_client_timeout);
    TH_RUN(t_deferred);
    TH_RUN(t_shutdown);
    TH_RUN(t_free_with_pending);
    TH_RUN(t_junk_at_once);
    TH_RUN(t_memory_budget);
    TH_RUN(t_head_deadline);
    TH_RUN(t_body_rate);
    TH_RUN(t_emfile_pause);
    TH_RUN(t_evict_idle_at_cap);
    return th_done();
}
