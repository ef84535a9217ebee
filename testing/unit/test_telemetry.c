/* test_telemetry.c — the self-telemetry HTTP server over loopback.
 *
 * The server runs on a test-owned event_base in its own thread (as it runs
 * on the ingest thread in spillway); the cases talk to it with a small
 * blocking HTTP/1.1 client with receive timeouts, so every case is bounded.
 * The component status functions run on the server thread and read flags
 * the cases set through atomics.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/telemetry.h"
#include "testing/lib/th.h"
#include "receivers/otlp/rcv_metrics.h"

#define RESP_MAX (1u << 20)

typedef struct fixture {
    struct event_base *base;
    sw_metrics *m;
    telemetry *tel;
    pthread_t thread;
    int running;
    _Atomic int rcv_ready;
    _Atomic int exp_ready;
} fixture;

static fixture fx;

typedef struct resp {
    int status;
    char head[8192];   /* status line and headers */
    char *body;        /* owned, NUL-terminated */
    size_t body_len;
} resp;

static int rcv_status(void *arg, char *detail, size_t len)
{
    (void)arg;
    int ok = atomic_load(&fx.rcv_ready);
    snprintf(detail, len, "%s", ok ? "listening on 127.0.0.1:4318" : "stopping \"now\"\n");
    return ok;
}

static int exp_status(void *arg, char *detail, size_t len)
{
    (void)arg;
    int ok = atomic_load(&fx.exp_ready);
    snprintf(detail, len, "circuit %s", ok ? "closed" : "open");
    return ok;
}

static void *loop_main(void *arg)
{
    event_base_dispatch(arg);
    return NULL;
}

/* Reads until the server closes; returns total bytes or -1. */
static ssize_t read_all(int fd, char *dst, size_t cap)
{
    size_t len = 0;
    for (;;) {
        if (len + 1 >= cap) return -1;
        ssize_t n = recv(fd, dst + len, cap - 1 - len, 0);
        if (n < 0) return -1; /* includes the receive timeout */
        if (n == 0) break;
        len += (size_t)n;
    }
    dst[len] = '\0';
    return (ssize_t)len;
}

static int connect_local(uint16_t port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends "METHOD path" with Connection: close and parses the answer into r.
 * Returns 0, or -1 on any transport or parse failure. */
static int http_do(const char *method, const char *path, resp *r)
{
    char *raw = malloc(RESP_MAX);
    int fd = -1, rc = -1;
    memset(r, 0, sizeof *r);
    if (!raw) goto out;
    fd = connect_local(telemetry_port(fx.tel));
    if (fd < 0) goto out;
    char req[512];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Connection: close\r\n\r\n", method, path);
    if (send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) goto out;
    ssize_t len = read_all(fd, raw, RESP_MAX);
    if (len < 0) goto out;
    char *sep = strstr(raw, "\r\n\r\n");
    if (!sep || (size_t)(sep - raw) >= sizeof r->head) goto out;
    memcpy(r->head, raw, (size_t)(sep - raw));
    if (sscanf(raw, "HTTP/1.%*d %d", &r->status) != 1) goto out;
    r->body_len = (size_t)(raw + len - (sep + 4));
    r->body = strdup(sep + 4);
    if (!r->body) goto out;
    rc = 0;
out:
    if (fd >= 0) close(fd);
    free(raw);
    return rc;
}

/* Value of header name (case-insensitive) copied into dst; 0 if present. */
static int header(const resp *r, const char *name, char *dst, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = strstr(r->head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        if (strncasecmp(p + 2, name, n) == 0 && p[2 + n] == ':') {
            const char *v = p + 3 + n;
            while (*v == ' ') v++;
            size_t vl = strcspn(v, "\r");
            if (vl >= cap) return -1;
            memcpy(dst, v, vl);
            dst[vl] = '\0';
            return 0;
        }
    }
    return -1;
}

static void resp_free(resp *r) { free(r->body); r->body = NULL; }

/* ---- cases ------------------------------------------------------------ */

static void t_port_bound(void)
{
    TH_ASSERT(telemetry_port(fx.tel) != 0);
    /* The port is taken now: a second server on it must fail cleanly. */
    struct event_base *b2 = event_base_new();
    TH_ASSERT(b2);
    telemetry *t2 = telemetry_new(b2, "127.0.0.1", telemetry_port(fx.tel), fx.m);
    int failed = t2 == NULL;
    telemetry_free(t2);
    event_base_free(b2);
    TH_ASSERT(failed);
}

static void t_metrics(void)
{
    resp r;
    char ct[128];
    metrics_add(&rcv_http_metrics_get(fx.m)->rcv_requests[SIG_TRACES][200], 3);
    TH_ASSERT_EQ_INT(http_do("GET", "/metrics", &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    TH_ASSERT_EQ_INT(header(&r, "Content-Type", ct, sizeof ct), 0);
    TH_ASSERT_EQ_STR(ct, "text/plain; version=0.0.4; charset=utf-8");
    TH_ASSERT(strstr(r.body, "# TYPE spillway_receiver_requests_total counter\n"));
    TH_ASSERT(strstr(r.body, "\nspillway_receiver_requests_total{signal=\"traces\",code=\"200\",transport=\"http\"} 3\n"));
    TH_ASSERT(strstr(r.body, "\nprocess_resident_memory_bytes "));
    resp_free(&r);
    /* A query string does not change the route. */
    TH_ASSERT_EQ_INT(http_do("GET", "/metrics?name[]=x", &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    resp_free(&r);
}

static void t_healthz(void)
{
    resp r;
    char ct[128];
    TH_ASSERT_EQ_INT(http_do("GET", "/healthz", &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    TH_ASSERT_EQ_INT(header(&r, "Content-Type", ct, sizeof ct), 0);
    TH_ASSERT_EQ_STR(ct, "application/json");
    TH_ASSERT_EQ_STR(r.body, "{\"status\":\"ok\"}\n");
    resp_free(&r);
}

static void t_readyz_ready(void)
{
    resp r;
    atomic_store(&fx.rcv_ready, 1);
    atomic_store(&fx.exp_ready, 1);
    TH_ASSERT_EQ_INT(http_do("GET", "/readyz", &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    TH_ASSERT_EQ_STR(r.body, "{\"status\":\"ready\",\"components\":{"
                     "\"receiver\":{\"ready\":true,\"detail\":\"listening on 127.0.0.1:4318\"},"
                     "\"exporter\":{\"ready\":true,\"detail\":\"circuit closed\"}}}\n");
    resp_free(&r);
}

static void t_readyz_not_ready(void)
{
    resp r;
    atomic_store(&fx.rcv_ready, 0);
    atomic_store(&fx.exp_ready, 1);
    TH_ASSERT_EQ_INT(http_do("GET", "/readyz", &r), 0);
    TH_ASSERT_EQ_INT(r.status, 503);
    TH_ASSERT_EQ_STR(r.body, "{\"status\":\"not ready\",\"components\":{"
                     "\"receiver\":{\"ready\":false,\"detail\":\"stopping \\\"now\\\"\\n\"},"
                     "\"exporter\":{\"ready\":true,\"detail\":\"circuit closed\"}}}\n");
    resp_free(&r);
    atomic_store(&fx.rcv_ready, 1);
}

static void t_head(void)
{
    resp r;
    char cl[32];
    TH_ASSERT_EQ_INT(http_do("HEAD", "/healthz", &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    TH_ASSERT_EQ_INT(r.body_len, 0);
    TH_ASSERT_EQ_INT(header(&r, "Content-Length", cl, sizeof cl), 0);
    TH_ASSERT_EQ_STR(cl, "16");
    resp_free(&r);
    TH_ASSERT_EQ_INT(http_do("HEAD", "/metrics", &r), 0);
    TH_ASSERT_EQ_INT(r.status, 200);
    TH_ASSERT_EQ_INT(r.body_len, 0);
    resp_free(&r);
}

static void t_not_found(void)
{
    resp r;
    TH_ASSERT_EQ_INT(http_do("GET", "/nope", &r), 0);
    TH_ASSERT_EQ_INT(r.status, 404);
    resp_free(&r);
    TH_ASSERT_EQ_INT(http_do("GET", "/metrics/extra", &r), 0);
    TH_ASSERT_EQ_INT(r.status, 404);
    resp_free(&r);
}

static void t_method_not_allowed(void)
{
    static const char *const methods[] = {"POST", "PUT", "DELETE", "PATCH", "OPTIONS"};
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++) {
        resp r;
        char allow[64];
        TH_ASSERT_EQ_INT(http_do(methods[i], "/metrics", &r), 0);
        TH_ASSERT_MSG(r.status == 405, "%s -> %d", methods[i], r.status);
        TH_ASSERT_EQ_INT(header(&r, "Allow", allow, sizeof allow), 0);
        TH_ASSERT_EQ_STR(allow, "GET, HEAD");
        resp_free(&r);
    }
}

/* ---- fixture ---------------------------------------------------------- */

static int fixture_start(void)
{
    if (evthread_use_pthreads() != 0) return -1;
    fx.base = event_base_new();
    fx.m = metrics_new();
    if (!fx.base || !fx.m) return -1;
    fx.tel = telemetry_new(fx.base, "127.0.0.1", 0, fx.m);
    if (!fx.tel) return -1;
    if (telemetry_add_component(fx.tel, "receiver", rcv_status, NULL) != 0) return -1;
    if (telemetry_add_component(fx.tel, "exporter", exp_status, NULL) != 0) return -1;
    if (pthread_create(&fx.thread, NULL, loop_main, fx.base) != 0) return -1;
    fx.running = 1;
    return 0;
}

static void fixture_stop(void)
{
    if (fx.running) {
        event_base_loopbreak(fx.base);
        pthread_join(fx.thread, NULL);
    }
    telemetry_free(fx.tel);
    if (fx.base) event_base_free(fx.base);
    metrics_free(fx.m);
    libevent_global_shutdown();
}

int main(void)
{
    log_setup(LOG_LVL_WARN, 0);
    if (fixture_start() != 0) {
        printf("FAIL: test_telemetry/fixture: cannot start the server\n");
        fixture_stop();
        return 1;
    }
    TH_RUN(t_port_bound);
    TH_RUN(t_metrics);
    TH_RUN(t_healthz);
    TH_RUN(t_readyz_ready);
    TH_RUN(t_readyz_not_ready);
    TH_RUN(t_head);
    TH_RUN(t_not_found);
    TH_RUN(t_method_not_allowed);
    fixture_stop();
    return th_done();
}
