/* test_exp_http.c — the exporter's HTTP/1.1 client (exp_http.h) against a
 * raw scripted server.
 *
 * The server (its own thread, blocking sockets on 127.0.0.1:0) reads each
 * request whole, keeps its head and body length, and answers with the
 * bytes the case scripted — in one write or in small pieces, then keeping
 * the connection or closing it, or not answering at all. The client runs
 * on the test's thread: each case sends with exp_http_send and runs the
 * event loop until the answer arrives (bounded). The cases cover how an
 * answer is framed (Content-Length, chunked, until close, 204, interim
 * 1xx), connection reuse and replacement, and each way a request ends
 * without an answer (malformed, too large, cut short, refused, deadline).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/cfg.h"
#include "exporters/otlp/exp_http.h"
#include "exporters/otlp/exp_metrics.h"
#include "exporters/otlp/exporter.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "testing/lib/th.h"

/* ---- scripted server -------------------------------------------------------- */

typedef struct step {
    const char *bytes;  /* the answer; NULL: never answer (hold the connection) */
    size_t piece;       /* bytes per write (0: all at once), 2 ms apart */
    int close_after;    /* close the connection after the answer */
} step;

#define MAX_STEPS 8

typedef struct srv {
    int lfd;
    uint16_t port;
    pthread_t th;
    atomic_int stop;
    step steps[MAX_STEPS];
    int nsteps;
    atomic_int accepted;     /* connections */
    atomic_int requests;     /* complete requests read */
    char head[2048];         /* the last request's head */
    size_t body_len;         /* the last request's body length */
    unsigned char body_first[8];
} srv;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads until `want` bytes are in b or the peer closes; returns the bytes
 * read, -1 on error or stop. */
static ssize_t read_some(srv *s, int fd, char *b, size_t cap)
{
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {fd, POLLIN, 0};
        int r = poll(&p, 1, 50);
        if (r < 0 && errno != EINTR) return -1;
        if (r <= 0) continue;
        ssize_t n = recv(fd, b, cap, 0);
        if (n < 0 && errno == EINTR) continue;
        return n;
    }
    return -1;
}

/* Reads one request; 1 read, 0 peer closed, -1 error or stop. */
static int read_request(srv *s, int fd)
{
    static char rbuf[1 << 16];
    size_t len = 0, body = 0, cl = 0;
    char *end = NULL;
    while (!end) {
        if (len == sizeof rbuf - 1) return -1;
        ssize_t n = read_some(s, fd, rbuf + len, sizeof rbuf - 1 - len);
        if (n <= 0) return n == 0 && len == 0 ? 0 : -1;
        len += (size_t)n;
        rbuf[len] = '\0';
        end = strstr(rbuf, "\r\n\r\n");
    }
    size_t hl = (size_t)(end - rbuf) + 4;
    snprintf(s->head, sizeof s->head, "%.*s", (int)hl, rbuf);
    const char *c = strcasestr(s->head, "\r\nContent-Length:");
    if (c) cl = strtoul(c + 17, NULL, 10);
    body = len - hl;
    memcpy(s->body_first, rbuf + hl, body < sizeof s->body_first ? body : sizeof s->body_first);
    while (body < cl) {
        ssize_t n = read_some(s, fd, rbuf, sizeof rbuf);
        if (n <= 0) return -1;
        if (body < sizeof s->body_first)
            memcpy(s->body_first + body, rbuf,
                   (size_t)n < sizeof s->body_first - body ? (size_t)n : sizeof s->body_first - body);
        body += (size_t)n;
    }
    s->body_len = body;
    atomic_fetch_add(&s->requests, 1);
    return 1;
}

static void answer_step(srv *s, int fd, const step *st)
{
    size_t len = strlen(st->bytes), off = 0;
    while (off < len && !atomic_load(&s->stop)) {
        size_t n = st->piece && st->piece < len - off ? st->piece : len - off;
        if (send(fd, st->bytes + off, n, MSG_NOSIGNAL) < 0) return;
        off += n;
        if (st->piece) sleep_ms(2);
    }
}

static void *srv_main(void *arg)
{
    srv *s = arg;
    int nreq = 0;
    while (!atomic_load(&s->stop)) {
        struct pollfd p = {s->lfd, POLLIN, 0};
        if (poll(&p, 1, 50) <= 0) continue;
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0) continue;
        atomic_fetch_add(&s->accepted, 1);
        for (;;) {
            if (read_request(s, fd) != 1) break;
            const step *st = nreq < s->nsteps ? &s->steps[nreq] : &s->steps[s->nsteps - 1];
            nreq++;
            if (!st->bytes) { /* hold it until the client gives up */
                char b[256];
                while (read_some(s, fd, b, sizeof b) > 0) {}
                break;
            }
            answer_step(s, fd, st);
            if (st->close_after) break;
        }
        close(fd);
    }
    return NULL;
}

static srv *srv_start(const step *steps, int n)
{
    srv *s = calloc(1, sizeof *s);
    TH_ASSERT(s && n <= MAX_STEPS);
    memcpy(s->steps, steps, (size_t)n * sizeof *steps);
    s->nsteps = n;
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    TH_ASSERT(s->lfd >= 0 && bind(s->lfd, (struct sockaddr *)&a, sizeof a) == 0 &&
              listen(s->lfd, 8) == 0 && getsockname(s->lfd, (struct sockaddr *)&a, &al) == 0);
    s->port = ntohs(a.sin_port);
    TH_ASSERT(pthread_create(&s->th, NULL, srv_main, s) == 0);
    return s;
}

static void srv_stop(srv *s)
{
    atomic_store(&s->stop, 1);
    pthread_join(s->th, NULL);
    close(s->lfd);
    free(s);
}

/* ---- client ----------------------------------------------------------------- */

typedef struct outcome {
    int answered;
    int code;
    char retry_after[32];
    char body[64];
    size_t body_len;
    exp_body_type type;
    struct event_base *base;
} outcome;

static size_t g_body_len = 5; /* request body size */

static void body_free(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    free((void *)data);
}

static int attach(void *arg, void *out)
{
    (void)arg;
    if (g_body_len <= 5) return evbuffer_add(out, "hello", g_body_len);
    /* A large body by reference, in 64 KiB pieces (as batches attach theirs). */
    for (size_t off = 0; off < g_body_len; off += 65536) {
        size_t n = g_body_len - off < 65536 ? g_body_len - off : 65536;
        char *p = malloc(n);
        if (!p) return -1;
        memset(p, 'x', n);
        if (evbuffer_add_reference(out, p, n, body_free, NULL) != 0) return -1;
    }
    return 0;
}

static void done(void *arg, const exp_answer *a)
{
    outcome *o = arg;
    o->answered++;
    o->code = a->code;
    snprintf(o->retry_after, sizeof o->retry_after, "%s", a->retry_after ? a->retry_after : "");
    o->body_len = a->body_len;
    if (a->body_len) memcpy(o->body, a->body, a->body_len < sizeof o->body ? a->body_len : sizeof o->body - 1);
    o->type = a->type;
    event_base_loopbreak(o->base);
}

typedef struct client {
    cfg *c;
    sw_metrics *m;
    struct event_base *base;
    exp_http *p;
} client;

static void client_start(client *cl, uint16_t port, uint64_t timeout_ms)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/prefix/", (unsigned)port);
    cl->c = cfg_defaults();
    TH_ASSERT(cl->c);
    free(cl->c->exporter.endpoint);
    cl->c->exporter.endpoint = strdup(url);
    cl->c->exporter.timeout_ms = timeout_ms;
    cl->c->exporter.max_in_flight = 1;
    cl->c->exporter.headers = calloc(1, sizeof(cfg_header));
    TH_ASSERT(cl->c->exporter.endpoint && cl->c->exporter.headers);
    cl->c->exporter.n_headers = 1;
    cl->c->exporter.headers[0].name = strdup("api-key");
    cl->c->exporter.headers[0].value = strdup("secret-1");
    cl->m = metrics_new();
    cl->base = event_base_new();
    TH_ASSERT(cl->m && cl->base);
    cl->p = exp_http_new(cl->base, cl->c, exp_metrics_get(cl->m));
    TH_ASSERT(cl->p);
}

static void client_stop(client *cl)
{
    exp_http_free(cl->p);
    event_base_free(cl->base);
    metrics_free(cl->m);
    cfg_free(cl->c);
    g_body_len = 5;
}

/* Sends one traces request and runs the loop until its answer (at most
 * 10 s). Returns how long it took in ms. */
static int64_t roundtrip(client *cl, outcome *o)
{
    memset(o, 0, sizeof *o);
    o->base = cl->base;
    exp_request r = {.sig = SIG_TRACES, .encoding = CFG_COMP_NONE, .attach = attach,
                     .done = done, .arg = o};
    int64_t t0 = clock_mono_ns();
    exp_http_send(cl->p, &r);
    struct timeval tv = {10, 0};
    if (!o->answered) {
        event_base_loopexit(cl->base, &tv);
        event_base_dispatch(cl->base);
    }
    TH_ASSERT_EQ_INT(o->answered, 1);
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(cl->m)->exp_in_flight), 0);
    return (clock_mono_ns() - t0) / 1000000;
}

/* Runs the loop for ms (an idle connection may learn it was closed). */
static void idle(client *cl, int ms)
{
    struct timeval tv = {0, ms * 1000};
    event_base_loopexit(cl->base, &tv);
    event_base_dispatch(cl->base);
}

/* A scripted server and a client of it. */
typedef struct fx {
    srv *s;
    client cl;
    outcome o;
} fx;

static void fx_start(fx *f, const step *st, int n, uint64_t timeout_ms)
{
    f->s = srv_start(st, n);
    client_start(&f->cl, f->s->port, timeout_ms);
}

static void fx_stop(fx *f)
{
    client_stop(&f->cl);
    srv_stop(f->s);
}

/* One round trip that must end with `code` (0: no answer). */
static void expect(fx *f, int code)
{
    roundtrip(&f->cl, &f->o);
    TH_ASSERT_MSG(f->o.code == code, "answer %d, want %d", f->o.code, code);
}

/* ---- cases ------------------------------------------------------------------ */

/* Content-Length answers on one kept-alive connection; the request carries
 * the headers and the body. */
static void t_content_length_keep_alive(void)
{
    step st[] = {{"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n"
                  "Content-Length: 3\r\n\r\nabc", 0, 0}};
    fx f;
    fx_start(&f, st, 1, 2000);
    for (int i = 0; i < 3; i++) {
        expect(&f, 200);
        TH_ASSERT_EQ_INT((int)f.o.body_len, 3);
        TH_ASSERT_EQ_STR(f.o.body, "abc");
        TH_ASSERT_EQ_INT(f.o.type, EXP_BODY_PROTOBUF);
    }
    TH_ASSERT_EQ_INT(atomic_load(&f.s->accepted), 1);
    TH_ASSERT_EQ_INT(atomic_load(&f.s->requests), 3);
    char host[64];
    snprintf(host, sizeof host, "\r\nHost: 127.0.0.1:%u\r\n", (unsigned)f.s->port);
    TH_ASSERT_MSG(strncmp(f.s->head, "POST /prefix/v1/traces HTTP/1.1\r\n", 33) == 0, "%s", f.s->head);
    TH_ASSERT_MSG(strstr(f.s->head, host), "%s", f.s->head);
    TH_ASSERT_MSG(strstr(f.s->head, "\r\nContent-Type: application/x-protobuf\r\n"), "%s", f.s->head);
    TH_ASSERT_MSG(strstr(f.s->head, "\r\nContent-Length: 5\r\n"), "%s", f.s->head);
    TH_ASSERT_MSG(strstr(f.s->head, "\r\napi-key: secret-1\r\n"), "%s", f.s->head);
    TH_ASSERT_MSG(strstr(f.s->head, "\r\nUser-Agent: spillway/"), "%s", f.s->head);
    TH_ASSERT_MSG(!strcasestr(f.s->head, "Content-Encoding"), "%s", f.s->head);
    TH_ASSERT_EQ_INT((int)f.s->body_len, 5);
    TH_ASSERT(memcmp(f.s->body_first, "hello", 5) == 0);
    fx_stop(&f);
}

/* A chunked answer trickled a byte at a time; then a 204 without a body
 * on the same connection. */
static void t_chunked_and_204(void)
{
    step st[] = {{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                  "3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nTrailer-A: 1\r\n\r\n", 1, 0},
                 {"HTTP/1.1 204 No Content\r\n\r\n", 0, 0}};
    fx f;
    fx_start(&f, st, 2, 5000);
    expect(&f, 200);
    TH_ASSERT_EQ_INT((int)f.o.body_len, 5);
    TH_ASSERT_EQ_STR(f.o.body, "abcde");
    expect(&f, 204);
    TH_ASSERT_EQ_INT((int)f.o.body_len, 0);
    TH_ASSERT_EQ_INT(atomic_load(&f.s->accepted), 1);
    fx_stop(&f);
}

/* Interim 1xx answers are skipped; Retry-After reaches the caller. */
static void t_interim_and_retry_after(void)
{
    step st[] = {{"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
                  "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 7\r\n"
                  "Content-Type: text/plain\r\nContent-Length: 4\r\n\r\nbusy", 0, 0}};
    fx f;
    fx_start(&f, st, 1, 2000);
    expect(&f, 503);
    TH_ASSERT_EQ_STR(f.o.retry_after, "7");
    TH_ASSERT_EQ_STR(f.o.body, "busy");
    TH_ASSERT_EQ_INT(f.o.type, EXP_BODY_TEXT);
    fx_stop(&f);
}

/* A body without length ends when the upstream closes; HTTP/1.0 and
 * "Connection: close" are not reused; an idle connection the upstream
 * closed is replaced without failing the next request. */
static void t_close_framing_and_replacement(void)
{
    step st[] = {{"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\nxyz", 0, 1},
                 {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0, 0},
                 {"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 0, 1},
                 {"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 0}};
    fx f;
    fx_start(&f, st, 4, 2000);
    expect(&f, 200);
    TH_ASSERT_EQ_STR(f.o.body, "xyz");
    TH_ASSERT_EQ_INT(f.o.type, EXP_BODY_JSON);
    expect(&f, 200); /* on a new connection: the first ended with the body */
    expect(&f, 202); /* new again: "Connection: close" (the server did not close) */
    idle(&f.cl, 100); /* the server closed that one after answering */
    expect(&f, 200);
    TH_ASSERT_EQ_STR(f.o.body, "ok");
    TH_ASSERT_EQ_INT(atomic_load(&f.s->accepted), 4);
    fx_stop(&f);
}

/* Each of these ends the request without an answer, and the next request
 * goes on a fresh connection and is answered. */
static void no_answer_then_ok(const char *bad, size_t piece, int close_after)
{
    step st[] = {{bad, piece, close_after},
                 {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0}};
    fx f;
    fx_start(&f, st, 2, 2000);
    roundtrip(&f.cl, &f.o);
    TH_ASSERT_MSG(f.o.code == 0, "answer %d to %.40s", f.o.code, bad);
    expect(&f, 200);
    TH_ASSERT_EQ_INT(atomic_load(&f.s->accepted), 2);
    fx_stop(&f);
}

static void t_malformed(void)
{
    no_answer_then_ok("HTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0);
    no_answer_then_ok("HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n", 0, 0);
    no_answer_then_ok("HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0);
    no_answer_then_ok("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", 0, 0);
    no_answer_then_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 0);
    no_answer_then_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 0, 0);
    no_answer_then_ok("HTTP/1.1 101 Switching Protocols\r\n\r\n", 0, 0);
}

/* Bytes after a complete answer (a second answer to one request): the
 * first answer counts, the connection is not used again, so the stray
 * bytes are never taken for the next request's answer. */
static void t_stray_bytes(void)
{
    step st[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 500 Oops\r\n", 0, 0},
                 {"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 0, 0}};
    fx f;
    fx_start(&f, st, 2, 2000);
    expect(&f, 200);
    expect(&f, 202);
    TH_ASSERT_EQ_INT(atomic_load(&f.s->accepted), 2);
    fx_stop(&f);
}

/* Cut short, too large: */
static void t_cut_short_and_too_large(void)
{
    no_answer_then_ok("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", 0, 1);
    no_answer_then_ok("HTTP/1.1 200 OK\r\nContent-Le", 0, 1);
    no_answer_then_ok("HTTP/1.1 200 OK\r\nContent-Length: 2000000\r\n\r\n", 0, 0);
    no_answer_then_ok("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", 0, 0);
}

/* A head that never ends is refused once it passes 64 KiB. */
static void t_endless_head(void)
{
    static char big[80 * 1024];
    strcpy(big, "HTTP/1.1 200 OK\r\n");
    size_t n = strlen(big);
    while (n + 20 < sizeof big) {
        memcpy(big + n, "X-Pad: aaaaaaaaaa\r\n", 19);
        n += 19;
    }
    big[n] = '\0';
    no_answer_then_ok(big, 0, 0);
}

/* An upstream that never answers: no answer at the deadline, not before. */
static void t_deadline(void)
{
    step st[] = {{NULL, 0, 0}, {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0}};
    fx f;
    fx_start(&f, st, 2, 300);
    int64_t took = roundtrip(&f.cl, &f.o);
    TH_ASSERT_EQ_INT(f.o.code, 0);
    TH_ASSERT_MSG(took >= 250, "gave up after %lld ms, before the 300 ms deadline", (long long)took);
    expect(&f, 200);
    fx_stop(&f);
}

/* done sends the next request at once, as the export loop does: after an
 * answer that ends with the connection (until close, HTTP/1.0), the next
 * request goes on a new connection and is answered — not cut by the old
 * connection's end. */
static int g_chain;
static exp_http *g_chain_pool;
static void done_then_send(void *arg, const exp_answer *a)
{
    outcome *o = arg;
    done(arg, a);
    if (g_chain-- > 0) {
        exp_request r = {.sig = SIG_TRACES, .encoding = CFG_COMP_NONE, .attach = attach,
                         .done = done_then_send, .arg = o};
        exp_http_send(g_chain_pool, &r);
    }
}

static void t_send_from_done(void)
{
    step st[] = {{"HTTP/1.0 200 OK\r\n\r\nfirst", 0, 1},
                 {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", 0, 0},
                 {"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 0, 0}};
    fx f;
    fx_start(&f, st, 3, 2000);
    memset(&f.o, 0, sizeof f.o);
    f.o.base = f.cl.base;
    g_chain = 2;
    g_chain_pool = f.cl.p;
    exp_request r = {.sig = SIG_TRACES, .encoding = CFG_COMP_NONE, .attach = attach,
                     .done = done_then_send, .arg = &f.o};
    exp_http_send(f.cl.p, &r);
    int64_t end = clock_mono_ns() + 5000 * 1000000LL;
    while (f.o.answered < 3 && clock_mono_ns() < end) idle(&f.cl, 50);
    TH_ASSERT_EQ_INT(f.o.answered, 3);
    TH_ASSERT_EQ_INT(f.o.code, 202);
    TH_ASSERT_EQ_INT(atomic_load(&f.s->accepted), 3);
    fx_stop(&f);
}

/* Nothing listens: no answer, at once. */
static void t_refused(void)
{
    srv *s = srv_start((step[]){{"", 0, 0}}, 1);
    uint16_t port = s->port;
    srv_stop(s); /* the port is free again */
    client cl;
    client_start(&cl, port, 2000);
    outcome o;
    int64_t took = roundtrip(&cl, &o);
    TH_ASSERT_EQ_INT(o.code, 0);
    TH_ASSERT_MSG(took < 1500, "refusal took %lld ms", (long long)took);
    client_stop(&cl);
}

/* A body larger than the socket takes at once (the rest goes out as the
 * socket drains), twice on the same connection. */
static void t_large_body(void)
{
    step st[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0}};
    fx f;
    fx_start(&f, st, 1, 5000);
    g_body_len = 3u << 20;
    for (int i = 0; i < 2; i++) {
        expect(&f, 200);
        TH_ASSERT_EQ_INT((int)f.s->body_len, (int)(3u << 20));
        TH_ASSERT(f.s->body_first[0] == 'x');
    }
    TH_ASSERT_EQ_INT(atomic_load(&f.s->accepted), 1);
    fx_stop(&f);
}

/* exp_http_close_all hands a request in flight to `abandoned`, not done. */
static int g_abandoned;
static void on_abandoned(void *ctx, void *arg)
{
    (void)ctx;
    (void)arg;
    g_abandoned++;
}

static void t_close_all_abandons(void)
{
    step st[] = {{NULL, 0, 0}};
    fx f;
    fx_start(&f, st, 1, 5000);
    memset(&f.o, 0, sizeof f.o);
    f.o.base = f.cl.base;
    exp_request r = {.sig = SIG_LOGS, .encoding = CFG_COMP_NONE, .attach = attach,
                     .done = done, .arg = &f.o};
    exp_http_send(f.cl.p, &r);
    idle(&f.cl, 100);
    TH_ASSERT_EQ_INT(atomic_load(&f.s->requests), 1);
    TH_ASSERT_MSG(strncmp(f.s->head, "POST /prefix/v1/logs HTTP/1.1\r\n", 31) == 0, "%s", f.s->head);
    g_abandoned = 0;
    exp_http_close_all(f.cl.p, on_abandoned, NULL);
    TH_ASSERT_EQ_INT(g_abandoned, 1);
    TH_ASSERT_EQ_INT(f.o.answered, 0);
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(f.cl.m)->exp_in_flight), 0);
    fx_stop(&f);
}

/* The offline sender (exporter.h, for `spillway dlq replay --to`): POSTs
 * over one kept connection to <url>/v1/<signal>; a connection the upstream
 * closed between two sends is replaced, not written to; no upstream or a
 * bad URL is an error. */
static void t_sender(void)
{
    static const uint8_t body[] = {0x0a, 0x00};
    step st[] = {{"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0},
                 {"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n", 0, 1},
                 {"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 0, 0}};
    srv *s = srv_start(st, 3);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u/p", (unsigned)s->port);
    exp_sender *snd = exp_sender_new(url, 2000);
    TH_ASSERT(snd);
    TH_ASSERT_EQ_INT(exp_sender_send(snd, SIG_METRICS, body, sizeof body), 0);
    static const char want[] = "POST /p/v1/metrics HTTP/1.1\r\n";
    TH_ASSERT(strncmp(s->head, want, sizeof want - 1) == 0);
    TH_ASSERT_EQ_INT((int)s->body_len, (int)sizeof body);
    TH_ASSERT_EQ_INT(exp_sender_send(snd, SIG_TRACES, body, sizeof body), 0);
    TH_ASSERT_EQ_INT(atomic_load(&s->accepted), 1); /* the connection was kept */
    sleep_ms(50); /* the server closed it after the second answer */
    TH_ASSERT_EQ_INT(exp_sender_send(snd, SIG_LOGS, body, sizeof body), 0);
    TH_ASSERT(strncmp(s->head, "POST /p/v1/logs ", 16) == 0);
    TH_ASSERT_EQ_INT(atomic_load(&s->accepted), 2);
    TH_ASSERT_EQ_INT(atomic_load(&s->requests), 3);
    TH_ASSERT_EQ_INT(exp_sender_send(snd, (sw_signal)SIG_COUNT, body, sizeof body), SW_EINVAL);
    exp_sender_free(snd);
    uint16_t port = s->port;
    srv_stop(s); /* the port is free again: refused */
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)port);
    TH_ASSERT((snd = exp_sender_new(url, 2000)) != NULL);
    TH_ASSERT_EQ_INT(exp_sender_send(snd, SIG_TRACES, body, sizeof body), SW_EIO);
    exp_sender_free(snd);
    TH_ASSERT(exp_sender_new("ftp://x", 2000) == NULL);
    exp_sender_free(NULL);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_setup(LOG_LVL_ERROR, 0);
    TH_RUN(t_content_length_keep_alive);
    TH_RUN(t_chunked_and_204);
    TH_RUN(t_interim_and_retry_after);
    TH_RUN(t_close_framing_and_replacement);
    TH_RUN(t_malformed);
    TH_RUN(t_stray_bytes);
    TH_RUN(t_cut_short_and_too_large);
    TH_RUN(t_endless_head);
    TH_RUN(t_deadline);
    TH_RUN(t_send_from_done);
    TH_RUN(t_refused);
    TH_RUN(t_large_body);
    TH_RUN(t_close_all_abandons);
    TH_RUN(t_sender);
    return th_done();
}
