/* test_receiver.c — the OTLP/HTTP receiver over real loopback sockets.
 *
 * Each case starts an event_base with a receiver on 127.0.0.1:0 and a real
 * queue, runs the loop in a second thread (the ingest thread), and talks
 * HTTP/1.1 to it from the main thread through a small blocking client whose
 * sockets time out after a few seconds, so nothing can hang. Assertions stay
 * on the main thread.
 */
#include "testing/lib/th.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "google/rpc/status.pb-c.h"
#include "pipeline/pipeline.h"
#include "queue/apq.h"
#include "receivers/otlp/receiver.h"
#include "runtime/buf.h"
#include "runtime/codec.h"
#include "runtime/metrics.h"
#include "receivers/otlp/rcv_metrics.h"

/* A priority queue that refuses only when an item does not fit (no spill
 * threshold), like a plain bounded queue. */
static apq *test_apq_new(uint64_t max_bytes, sw_metrics *m)
{
    apq_opts o;
    apq_opts_default(&o);
    o.max_bytes = max_bytes;
    o.spill_threshold = 1.0;
    o.m = m;
    return apq_new(&o);
}


#define MiB (1024u * 1024u)

typedef struct fixture {
    struct event_base *base;
    cfg c;
    sw_metrics *m;
    apq *q;
    pipeline *pl;
    receiver *r;
    pthread_t loop;
    uint16_t port;
} fixture;

static void *loop_main(void *arg)
{
    fixture *f = arg;
    event_base_loop(f->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

static void fx_start(fixture *f, uint64_t max_body, uint64_t queue_bytes)
{
    memset(f, 0, sizeof *f);
    f->base = event_base_new();
    TH_ASSERT(f->base != NULL);
    f->c.receiver.http_endpoint = "127.0.0.1:0";
    f->c.receiver.http_max_request_body_size = max_body;
    f->c.receiver.http_read_timeout_ms = 5000;
    f->m = metrics_new();
    f->q = test_apq_new(queue_bytes, f->m);
    f->pl = f->q ? pl_new(f->base, &f->c, f->q, NULL, f->m) : NULL;
    f->r = f->pl ? rcv_new(f->base, &f->c, f->pl, f->m) : NULL;
    TH_ASSERT(f->m && f->q && f->pl && f->r);
    TH_ASSERT_EQ_INT(rcv_ready(f->r), 0);
    TH_ASSERT_EQ_INT(rcv_start(f->r), 0);
    TH_ASSERT_EQ_INT(rcv_ready(f->r), 1);
    f->port = rcv_http_port(f->r);
    TH_ASSERT(f->port != 0);
    TH_ASSERT_EQ_INT(pthread_create(&f->loop, NULL, loop_main, f), 0);
}

static void break_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopbreak(arg);
}

/* The break is queued as an event, so it also works when the loop thread
 * has not entered its loop yet (a bare loopbreak would then be lost). */
static void fx_stop(fixture *f)
{
    struct timeval now = {0, 0};
    if (event_base_once(f->base, -1, EV_TIMEOUT, break_cb, f->base, &now) != 0)
        event_base_loopbreak(f->base);
    pthread_join(f->loop, NULL);
    rcv_free(f->r);
    pl_free(f->pl);
    apq_free(f->q);
    metrics_free(f->m);
    event_base_free(f->base);
}

/* Runs rcv_stop_intake on the loop thread and waits for it. */
typedef struct on_loop {
    fixture *f;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
} on_loop;

static void stop_intake_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    on_loop *o = arg;
    rcv_stop_intake(o->f->r);
    pthread_mutex_lock(&o->mu);
    o->done = 1;
    pthread_cond_signal(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

static int stop_intake_on_loop(fixture *f)
{
    on_loop o = {f, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct timeval now = {0, 0};
    if (event_base_once(f->base, -1, EV_TIMEOUT, stop_intake_cb, &o, &now) != 0) return -1;
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 10;
    pthread_mutex_lock(&o.mu);
    while (!o.done)
        if (pthread_cond_timedwait(&o.cv, &o.mu, &dl) != 0) break;
    int done = o.done;
    pthread_mutex_unlock(&o.mu);
    return done ? 0 : -1;
}

/* ---- a tiny blocking HTTP/1.1 client ---- */

typedef struct http_resp {
    int status;
    char head[4096];          /* status line and headers, NUL-terminated */
    uint8_t body[64 * 1024];
    size_t body_len;
} http_resp;

static int cl_connect(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0) return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Sends one request. ctype/cenc may be NULL (header left out). When
 * content_length is not (size_t)-1 it is announced instead of len. */
static int cl_send(int fd, const char *method, const char *path, const char *ctype,
                   const char *cenc, const void *body, size_t len, size_t content_length)
{
    char head[1024];
    int n = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s%s%s%sContent-Length: %zu\r\n\r\n",
                     method, path, ctype ? "Content-Type: " : "", ctype ? ctype : "",
                     ctype ? "\r\n" : "", cenc ? "Content-Encoding: " : "", cenc ? cenc : "",
                     cenc ? "\r\n" : "", content_length != (size_t)-1 ? content_length : len);
    if (write_all(fd, head, (size_t)n) != 0) return -1;
    return len ? write_all(fd, body, len) : 0;
}

/* Returns a pointer to the value of header name in r->head, or NULL. */
static const char *resp_header(const http_resp *r, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *l = strstr(r->head, "\r\n"); l && l[2]; l = strstr(l + 2, "\r\n")) {
        const char *h = l + 2;
        if (strncasecmp(h, name, nl) == 0 && h[nl] == ':') {
            h += nl + 1;
            while (*h == ' ') h++;
            const char *e = strstr(h, "\r\n");
            *vlen = e ? (size_t)(e - h) : strlen(h);
            return h;
        }
    }
    return NULL;
}

static int resp_header_is(const http_resp *r, const char *name, const char *want)
{
    size_t n;
    const char *v = resp_header(r, name, &n);
    return v && n == strlen(want) && strncasecmp(v, want, n) == 0;
}

/* Reads one response (Content-Length framed). 0 or -1. */
static int cl_read(int fd, http_resp *r)
{
    size_t have = 0;
    char *end = NULL;
    memset(r, 0, sizeof *r);
    while (!end) {
        if (have + 1 >= sizeof r->head) return -1;
        ssize_t n = recv(fd, r->head + have, 1, 0);
        if (n <= 0) return -1;
        have += (size_t)n;
        r->head[have] = '\0';
        end = strstr(r->head, "\r\n\r\n");
    }
    if (sscanf(r->head, "HTTP/1.%*d %d", &r->status) != 1) return -1;
    size_t vl;
    const char *cl = resp_header(r, "Content-Length", &vl);
    r->body_len = cl ? strtoul(cl, NULL, 10) : 0;
    if (r->body_len > sizeof r->body) return -1;
    for (size_t got = 0; got < r->body_len;) {
        ssize_t n = recv(fd, r->body + got, r->body_len - got, 0);
        if (n <= 0) return -1;
        got += (size_t)n;
    }
    return 0;
}

/* One request on a fresh connection. */
static int cl_request(uint16_t port, const char *method, const char *path, const char *ctype,
                      const char *cenc, const void *body, size_t len, http_resp *r)
{
    int fd = cl_connect(port);
    if (fd < 0) return -1;
    int rc = cl_send(fd, method, path, ctype, cenc, body, len, (size_t)-1);
    if (rc == 0) rc = cl_read(fd, r);
    close(fd);
    return rc;
}

/* ---- request bodies ---- */

static void put_varint(uint8_t *b, size_t *n, uint64_t v)
{
    while (v >= 0x80) {
        b[(*n)++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[(*n)++] = (uint8_t)v;
}

/* Appends a length-delimited field. */
static void put_bytes(uint8_t *b, size_t *n, unsigned field, const void *p, size_t len)
{
    put_varint(b, n, (uint64_t)field << 3 | 2);
    put_varint(b, n, len);
    memcpy(b + *n, p, len);
    *n += len;
}

/* Writes an ExportTraceServiceRequest with nspans spans by hand, plus an
 * unknown varint field 999 at the top level and an unknown field 77 inside
 * each span: bytes protobuf-c would not reproduce, so they must pass
 * through untouched. out must hold 32 KiB; nspans <= 500. Returns the
 * length. */
static size_t make_traces(uint8_t *out, size_t nspans)
{
    static uint8_t span[128], scope[32 * 1024], res[32 * 1024];
    size_t sn = 0, cn = 0, rn = 0, n = 0;
    static const uint8_t tid[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
    static const uint8_t sid[8] = {1, 1, 2, 3, 5, 8, 13, 21};
    put_bytes(span, &sn, 1, tid, sizeof tid);
    put_bytes(span, &sn, 2, sid, sizeof sid);
    put_bytes(span, &sn, 5, "GET /cart", 9);
    put_varint(span, &sn, 77u << 3 | 0);
    put_varint(span, &sn, 12345);
    for (size_t i = 0; i < nspans; i++) put_bytes(scope, &cn, 2, span, sn);
    put_bytes(res, &rn, 2, scope, cn);
    put_bytes(out, &n, 1, res, rn);
    put_varint(out, &n, 999u << 3 | 0);
    put_varint(out, &n, 42);
    return n;
}

static const char k_json_logs[] =
    "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
    "\"value\":{\"stringValue\":\"cart\"}}]},\"scopeLogs\":[{\"logRecords\":["
    "{\"timeUnixNano\":\"1544712660300000000\",\"severityNumber\":9,"
    "\"body\":{\"stringValue\":\"hello\"}},{\"severityText\":\"WARN\"},"
    "{\"body\":{\"intValue\":\"7\"}}]}]}]}";

static Google__Rpc__Status *unpack_status(const http_resp *r)
{
    return google__rpc__status__unpack(NULL, r->body_len, r->body);
}

static uint64_t requests(const fixture *f, sw_signal s, int code)
{
    return atomic_load(&rcv_http_metrics_get(f->m)->rcv_requests[s][code]);
}

/* ---- cases ---- */

static void t_protobuf_passthrough(void)
{
    fixture f;
    fx_start(&f, MiB, 64 * MiB);
    static uint8_t body[8192];
    size_t len = make_traces(body, 3);
    http_resp r;
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/traces?tenant=a", "application/x-protobuf",
                                NULL, body, len, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    TH_ASSERT(resp_header_is(&r, "Content-Type", "application/x-protobuf"));
    TH_ASSERT_EQ_INT(r.body_len, 0);
    item *it = apq_pop(f.q);
    TH_ASSERT(it != NULL);
    TH_ASSERT_EQ_INT(it->signal, SIG_TRACES);
    TH_ASSERT_EQ_INT(it->klass, CLASS_NORMAL);
    TH_ASSERT_EQ_INT(it->count, 3);
    TH_ASSERT_EQ_INT(it->len, len);
    TH_ASSERT_MEM_EQ(it->data, body, len);
    item_free(it);
    TH_ASSERT(apq_pop(f.q) == NULL);
    TH_ASSERT_EQ_INT(requests(&f, SIG_TRACES, 200), 1);
    TH_ASSERT_EQ_INT(atomic_load(&rcv_http_metrics_get(f.m)->rcv_items[SIG_TRACES]), 3);
    TH_ASSERT_EQ_INT(atomic_load(&rcv_http_metrics_get(f.m)->rcv_bytes[SIG_TRACES]), len);
    fx_stop(&f);
}

static void t_json_and_gzip(void)
{
    fixture f;
    fx_start(&f, MiB, 64 * MiB);
    http_resp r;
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/logs", "application/json; charset=utf-8",
                                NULL, k_json_logs, strlen(k_json_logs), &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    TH_ASSERT(resp_header_is(&r, "Content-Type", "application/json"));
    TH_ASSERT_EQ_INT(r.body_len, 2);
    TH_ASSERT_MEM_EQ(r.body, "{}", 2);
    item *it = apq_pop(f.q);
    TH_ASSERT(it != NULL);
    TH_ASSERT_EQ_INT(it->signal, SIG_LOGS);
    TH_ASSERT_EQ_INT(it->count, 3);
    item_free(it);

    static uint8_t body[8192];
    size_t len = make_traces(body, 20);
    buf z;
    buf_init(&z, MiB);
    TH_ASSERT_EQ_INT(codec_gzip(body, len, &z, 6), 0);
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/traces", "application/x-protobuf", "gzip",
                                z.data, z.len, &r), 0);
    buf_destroy(&z);
    TH_ASSERT_EQ_INT(r.status, 200);
    it = apq_pop(f.q);
    TH_ASSERT(it != NULL);
    TH_ASSERT_EQ_INT(it->count, 20);
    TH_ASSERT_EQ_INT(it->len, len);
    TH_ASSERT_MEM_EQ(it->data, body, len);
    item_free(it);
    fx_stop(&f);
}

static void t_not_found_404(void)
{
    fixture f;
    fx_start(&f, MiB, 64 * MiB);
    http_resp r;
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/spans", "application/x-protobuf", NULL,
                                "", 0, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 404);
    Google__Rpc__Status *st = unpack_status(&r);
    TH_ASSERT(st != NULL);
    TH_ASSERT_EQ_INT(st->code, 5);
    google__rpc__status__free_unpacked(st, NULL);
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/traces/", "application/json", NULL, "{}", 2,
                                &r), 0);
    TH_ASSERT_EQ_INT(r.status, 404);
    TH_ASSERT(resp_header_is(&r, "Content-Type", "application/json"));
    TH_ASSERT(r.body_len > 0 && r.body[0] == '{');
    TH_ASSERT(apq_pop(f.q) == NULL);
    fx_stop(&f);
}

static void t_method_405(void)
{
    fixture f;
    fx_start(&f, MiB, 64 * MiB);
    static const char *methods[] = {"GET", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        http_resp r;
        TH_ASSERT_EQ_INT(cl_request(f.port, methods[i], "/v1/metrics", NULL, NULL, "", 0, &r), 0);
        TH_ASSERT_MSG(r.status == 405, "%s: %d", methods[i], r.status);
        TH_ASSERT(resp_header_is(&r, "Allow", "POST"));
    }
    TH_ASSERT_EQ_INT(requests(&f, SIG_METRICS, 405), 5);
    fx_stop(&f);
}

static void t_unsupported_415(void)
{
    fixture f;
    fx_start(&f, MiB, 64 * MiB);
    static uint8_t body[8192];
    size_t len = make_traces(body, 1);
    http_resp r;
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/traces", "text/plain", NULL, body, len, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 415);
    TH_ASSERT(resp_header_is(&r, "Content-Type", "application/x-protobuf"));
    Google__Rpc__Status *st = unpack_status(&r);
    TH_ASSERT(st != NULL && st->code != 0 && st->message[0] != '\0');
    google__rpc__status__free_unpacked(st, NULL);
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/traces", NULL, NULL, body, len, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 415);
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/traces", "application/x-protobuf", "br",
                                body, len, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 415);
    TH_ASSERT(apq_pop(f.q) == NULL);
    TH_ASSERT_EQ_INT(requests(&f, SIG_TRACES, 415), 3);
    fx_stop(&f);
}

static void t_bad_request_400(void)
{
    fixture f;
    fx_start(&f, MiB, 64 * MiB);
    static const uint8_t garbage[] = {0x0a, 0x50, 0x01, 0x02};
    http_resp r;
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/traces", "application/x-protobuf", NULL,
                                garbage, sizeof garbage, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 400);
    Google__Rpc__Status *st = unpack_status(&r);
    TH_ASSERT(st != NULL);
    TH_ASSERT_EQ_INT(st->code, 3);
    google__rpc__status__free_unpacked(st, NULL);
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/traces", "application/json", NULL,
                                "{oops", 5, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 400);
    TH_ASSERT(resp_header_is(&r, "Content-Type", "application/json"));
    TH_ASSERT(r.body_len > 10 && memcmp(r.body, "{\"code\":3,", 10) == 0);
    TH_ASSERT(apq_pop(f.q) == NULL);
    TH_ASSERT_EQ_INT(requests(&f, SIG_TRACES, 400), 2);
    fx_stop(&f);
}

static void t_too_large_413(void)
{
    fixture f;
    fx_start(&f, 4096, 64 * MiB);
    /* announced by Content-Length: libevent refuses before reading */
    int fd = cl_connect(f.port);
    TH_ASSERT(fd >= 0);
    TH_ASSERT_EQ_INT(cl_send(fd, "POST", "/v1/traces", "application/x-protobuf", NULL, NULL, 0,
                             100000), 0);
    http_resp r;
    TH_ASSERT_EQ_INT(cl_read(fd, &r), 0);
    close(fd);
    TH_ASSERT_EQ_INT(r.status, 413);
    /* over the cap only once decompressed: our own Status body */
    static uint8_t body[32 * 1024];
    size_t len = make_traces(body, 300);
    TH_ASSERT(len > 4096);
    buf z;
    buf_init(&z, MiB);
    TH_ASSERT_EQ_INT(codec_gzip(body, len, &z, 9), 0);
    TH_ASSERT(z.len < 4096);
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/traces", "application/x-protobuf", "gzip",
                                z.data, z.len, &r), 0);
    buf_destroy(&z);
    TH_ASSERT_EQ_INT(r.status, 413);
    Google__Rpc__Status *st = unpack_status(&r);
    TH_ASSERT(st != NULL && st->message[0] != '\0');
    google__rpc__status__free_unpacked(st, NULL);
    TH_ASSERT(apq_pop(f.q) == NULL);
    fx_stop(&f);
}

/* A chunked body growing past the cap is refused by libevent as well. */
static void t_too_large_chunked_413(void)
{
    fixture f;
    fx_start(&f, 4096, 64 * MiB);
    int fd = cl_connect(f.port);
    TH_ASSERT(fd >= 0);
    static const char head[] = "POST /v1/logs HTTP/1.1\r\nHost: x\r\n"
                               "Content-Type: application/x-protobuf\r\n"
                               "Transfer-Encoding: chunked\r\n\r\n";
    TH_ASSERT_EQ_INT(write_all(fd, head, sizeof head - 1), 0);
    static char chunk[2048 + 16];
    int n = snprintf(chunk, sizeof chunk, "800\r\n");
    memset(chunk + n, 'x', 2048);
    memcpy(chunk + n + 2048, "\r\n", 2);
    http_resp r;
    int sent = 0, rc = 0;
    for (int i = 0; i < 4 && rc == 0; i++, sent++)
        rc = write_all(fd, chunk, (size_t)n + 2050);
    TH_ASSERT(sent >= 2);
    TH_ASSERT_EQ_INT(cl_read(fd, &r), 0);
    close(fd);
    TH_ASSERT_EQ_INT(r.status, 413);
    TH_ASSERT(apq_pop(f.q) == NULL);
    fx_stop(&f);
}

/* A client that stops half-way through its headers is disconnected. */
static void t_read_timeout(void)
{
    fixture f;
    memset(&f, 0, sizeof f);
    f.base = event_base_new();
    f.c.receiver.http_endpoint = "127.0.0.1:0";
    f.c.receiver.http_max_request_body_size = MiB;
    f.c.receiver.http_read_timeout_ms = 100;
    f.m = metrics_new();
    f.q = test_apq_new(MiB, f.m);
    f.pl = f.q ? pl_new(f.base, &f.c, f.q, NULL, f.m) : NULL;
    f.r = f.pl ? rcv_new(f.base, &f.c, f.pl, f.m) : NULL;
    TH_ASSERT(f.base && f.m && f.q && f.pl && f.r);
    TH_ASSERT_EQ_INT(rcv_start(f.r), 0);
    f.port = rcv_http_port(f.r);
    TH_ASSERT_EQ_INT(pthread_create(&f.loop, NULL, loop_main, &f), 0);
    int fd = cl_connect(f.port);
    TH_ASSERT(fd >= 0);
    static const char part[] = "POST /v1/traces HTTP/1.1\r\nHost: x\r\n";
    TH_ASSERT_EQ_INT(write_all(fd, part, sizeof part - 1), 0);
    char c;
    ssize_t got = recv(fd, &c, 1, 0);   /* 5 s client timeout would give -1 */
    close(fd);
    TH_ASSERT_MSG(got == 0, "connection not closed by the server (recv %zd)", got);
    fx_stop(&f);
}

static void t_queue_full_503(void)
{
    static uint8_t body[8192];
    size_t len = make_traces(body, 4);
    fixture f;
    /* room for one item, not two */
    fx_start(&f, MiB, sizeof(item) + len + len / 2);
    http_resp r;
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/traces", "application/x-protobuf", NULL,
                                body, len, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    TH_ASSERT_EQ_INT(cl_request(f.port, "POST", "/v1/traces", "application/x-protobuf", NULL,
                                body, len, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 503);
    TH_ASSERT(resp_header_is(&r, "Retry-After", "1"));
    Google__Rpc__Status *st = unpack_status(&r);
    TH_ASSERT(st != NULL);
    TH_ASSERT_EQ_INT(st->code, 14);
    google__rpc__status__free_unpacked(st, NULL);
    TH_ASSERT_EQ_INT(atomic_load(&rcv_http_metrics_get(f.m)->rcv_refused_items[SIG_TRACES][RCV_REFUSE_QUEUE_FULL]), 4);
    TH_ASSERT_EQ_INT(atomic_load(&rcv_http_metrics_get(f.m)->rcv_items[SIG_TRACES]), 4);
    TH_ASSERT_EQ_INT(apq_items(f.q), 1);
    fx_stop(&f);
}

static void t_keep_alive_and_empty(void)
{
    fixture f;
    fx_start(&f, MiB, 64 * MiB);
    static uint8_t body[8192];
    size_t len = make_traces(body, 2);
    int fd = cl_connect(f.port);
    TH_ASSERT(fd >= 0);
    http_resp r;
    for (int i = 0; i < 2; i++) {
        TH_ASSERT_EQ_INT(cl_send(fd, "POST", "/v1/traces", "application/x-protobuf", NULL, body,
                                 len, (size_t)-1), 0);
        TH_ASSERT_EQ_INT(cl_read(fd, &r), 0);
        TH_ASSERT_EQ_INT(r.status, 200);
    }
    /* an empty request succeeds and queues nothing */
    TH_ASSERT_EQ_INT(cl_send(fd, "POST", "/v1/metrics", "application/x-protobuf", NULL, NULL, 0,
                             (size_t)-1), 0);
    TH_ASSERT_EQ_INT(cl_read(fd, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    close(fd);
    TH_ASSERT_EQ_INT(apq_items(f.q), 2);
    TH_ASSERT_EQ_INT(requests(&f, SIG_METRICS, 200), 1);
    TH_ASSERT_EQ_INT(atomic_load(&rcv_http_metrics_get(f.m)->rcv_items[SIG_METRICS]), 0);
    fx_stop(&f);
}

static void t_stop_intake(void)
{
    fixture f;
    fx_start(&f, MiB, 64 * MiB);
    static uint8_t body[8192];
    size_t len = make_traces(body, 1);
    int fd = cl_connect(f.port);
    TH_ASSERT(fd >= 0);
    http_resp r;
    TH_ASSERT_EQ_INT(cl_send(fd, "POST", "/v1/traces", "application/x-protobuf", NULL, body, len,
                             (size_t)-1), 0);
    TH_ASSERT_EQ_INT(cl_read(fd, &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);

    TH_ASSERT_EQ_INT(stop_intake_on_loop(&f), 0);
    TH_ASSERT_EQ_INT(rcv_ready(f.r), 0);
    int fd2 = cl_connect(f.port);
    int err = errno;
    if (fd2 >= 0) close(fd2);
    TH_ASSERT_MSG(fd2 < 0 && err == ECONNREFUSED, "new connection not refused");
    /* the open connection is answered 503 and closed */
    TH_ASSERT_EQ_INT(cl_send(fd, "POST", "/v1/traces", "application/x-protobuf", NULL, body, len,
                             (size_t)-1), 0);
    TH_ASSERT_EQ_INT(cl_read(fd, &r), 0);
    close(fd);
    TH_ASSERT_EQ_INT(r.status, 503);
    TH_ASSERT(resp_header_is(&r, "Retry-After", "1"));
    TH_ASSERT_EQ_INT(atomic_load(&rcv_http_metrics_get(f.m)->rcv_refused_items[SIG_TRACES][RCV_REFUSE_SHUTDOWN]), 1);
    TH_ASSERT_EQ_INT(apq_items(f.q), 1);
    fx_stop(&f);
}

static void t_bad_endpoint(void)
{
    struct event_base *base = event_base_new();
    cfg c;
    memset(&c, 0, sizeof c);
    c.receiver.http_endpoint = "no-port-here";
    c.receiver.http_max_request_body_size = MiB;
    apq *q = test_apq_new(MiB, NULL);
    pipeline *pl = pl_new(base, &c, q, NULL, NULL);
    TH_ASSERT(pl != NULL);
    TH_ASSERT(rcv_new(base, &c, NULL, NULL) == NULL);
    receiver *r = rcv_new(base, &c, pl, NULL);
    TH_ASSERT(r != NULL);
    TH_ASSERT(rcv_start(r) != 0);
    TH_ASSERT_EQ_INT(rcv_ready(r), 0);
    rcv_stop_intake(r);
    rcv_free(r);
    rcv_free(NULL);
    pl_free(pl);
    pl_free(NULL);
    apq_free(q);
    event_base_free(base);
}

int main(void)
{
    if (evthread_use_pthreads() != 0) return 1;
    TH_RUN(t_protobuf_passthrough);
    TH_RUN(t_json_and_gzip);
    TH_RUN(t_not_found_404);
    TH_RUN(t_method_405);
    TH_RUN(t_unsupported_415);
    TH_RUN(t_bad_request_400);
    TH_RUN(t_too_large_413);
    TH_RUN(t_too_large_chunked_413);
    TH_RUN(t_read_timeout);
    TH_RUN(t_queue_full_503);
    TH_RUN(t_keep_alive_and_empty);
    TH_RUN(t_stop_intake);
    TH_RUN(t_bad_endpoint);
    libevent_global_shutdown();
    return th_done();
}
