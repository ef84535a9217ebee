/* test_exp_replay.c — the exporter replaying a DLQ to a live upstream.
 *
 * Records are written to a DLQ in a temporary directory with dlq_append(),
 * then an exporter with that DLQ and an in-process evhttp upstream (its own
 * thread, always 200) replays them: all of them, in order, acknowledged
 * (the DLQ empties), paced by dlq.replay.rate, and interleaved with live
 * items pushed meanwhile.
 */
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/cfg.h"
#include "dlq/dlq.h"
#include "exporters/otlp/exporter.h"
#include "queue/apq.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "testing/lib/th.h"
#include "testing/lib/th_wait.h"

#define MAX_REQS 1024
#define REC_LEN 4096

/* ---- upstream: records every request, answers 200 ------------------------- */

typedef struct up {
    struct event_base *base;
    struct evhttp *http;
    struct event *quit;
    pthread_t th;
    uint16_t port;
    pthread_mutex_t mu; /* protects everything below */
    int n;
    int sig[MAX_REQS];
    int64_t at[MAX_REQS];
    size_t len[MAX_REQS];
    buf got[SIG_COUNT]; /* bodies per signal, concatenated */
} up;

static void up_handle(struct evhttp_request *req, void *arg)
{
    up *u = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    const uint8_t *p = n ? evbuffer_pullup(in, -1) : NULL;
    const char *uri = evhttp_request_get_uri(req);
    int sig = strstr(uri, "/v1/logs") ? SIG_LOGS : strstr(uri, "/v1/metrics") ? SIG_METRICS
                                                                               : SIG_TRACES;
    pthread_mutex_lock(&u->mu);
    if (u->n < MAX_REQS) {
        u->sig[u->n] = sig;
        u->at[u->n] = clock_mono_ns();
        u->len[u->n] = n;
    }
    u->n++;
    if (n) buf_append(&u->got[sig], p, n);
    pthread_mutex_unlock(&u->mu);
    evhttp_send_reply(req, 200, "OK", NULL);
}

static void up_quit_cb(evutil_socket_t fd, short what, void *arg)
{
    up *u = arg;
    (void)fd;
    (void)what;
    evhttp_free(u->http);
    u->http = NULL;
    event_base_loopbreak(u->base);
}

static void *up_main(void *arg)
{
    up *u = arg;
    event_base_dispatch(u->base);
    for (int i = 0; i < 64 && event_base_get_num_events(u->base, EVENT_BASE_COUNT_ACTIVE) > 0; i++)
        event_base_loop(u->base, EVLOOP_NONBLOCK);
    return NULL;
}

static up *up_start(void)
{
    up *u = calloc(1, sizeof *u);
    TH_ASSERT(u);
    pthread_mutex_init(&u->mu, NULL);
    for (int s = 0; s < SIG_COUNT; s++) buf_init(&u->got[s], 64u << 20);
    u->base = event_base_new();
    u->http = evhttp_new(u->base);
    u->quit = event_new(u->base, -1, 0, up_quit_cb, u);
    TH_ASSERT(u->base && u->http && u->quit);
    evhttp_set_gencb(u->http, up_handle, u);
    struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(u->http, "127.0.0.1", 0);
    TH_ASSERT(bs);
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    TH_ASSERT(getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl) == 0);
    u->port = ntohs(sa.sin_port);
    TH_ASSERT(pthread_create(&u->th, NULL, up_main, u) == 0);
    return u;
}

static void up_stop(up *u)
{
    if (!u) return;
    event_active(u->quit, EV_READ, 0);
    pthread_join(u->th, NULL);
    event_free(u->quit);
    event_base_free(u->base);
    for (int s = 0; s < SIG_COUNT; s++) buf_destroy(&u->got[s]);
    pthread_mutex_destroy(&u->mu);
    free(u);
}

/* ---- fixture --------------------------------------------------------------- */

typedef struct fx {
    up *u;
    cfg *c;
    sw_metrics *m;
    apq *q;
    dlq *d;
    exporter *e;
    char dir[64];
    buf written;      /* every DLQ record's bytes, in order */
    buf live;         /* every live item's bytes, in order */
    int appended;     /* completions with status 0 */
} fx;

static fx F;


static void fx_begin(uint64_t rate)
{
    memset(&F, 0, sizeof F);
    F.u = up_start();
    F.c = cfg_defaults();
    F.m = metrics_new();
    TH_ASSERT(F.c && F.m);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)F.u->port);
    free(F.c->exporter.endpoint);
    F.c->exporter.endpoint = strdup(url);
    F.c->exporter.compression = CFG_COMP_NONE;
    F.c->exporter.max_in_flight = 2;
    F.c->exporter.batch_timeout_ms = 20;
    F.c->dlq.replay_rate = rate;
    F.c->dlq.replay_interleave_ms = 500;
    apq_opts o;
    apq_opts_default(&o);
    o.max_bytes = 64u << 20;
    o.spill_threshold = 1.0;
    o.m = F.m;
    F.q = apq_new(&o);
    TH_ASSERT(F.q);
    snprintf(F.dir, sizeof F.dir, "/tmp/sw-expreplay-XXXXXX");
    TH_ASSERT(mkdtemp(F.dir));
    dlq_opts d = {.dir = F.dir, .segment_size = 256u << 10, .max_size = 256u << 20,
                  .compression_level = 3, .fsync = CFG_FSYNC_NEVER};
    TH_ASSERT_EQ_INT(dlq_open(&d, F.m, &F.d), 0);
    dlq_wait_recovered(F.d);
    buf_init(&F.written, 64u << 20);
    buf_init(&F.live, 64u << 20);
}

static void fx_done(void)
{
    char cmd[128];
    exp_free(F.e);
    dlq_close(F.d);
    apq_free(F.q);
    up_stop(F.u);
    metrics_free(F.m);
    cfg_free(F.c);
    buf_destroy(&F.written);
    buf_destroy(&F.live);
    snprintf(cmd, sizeof cmd, "rm -rf %s", F.dir);
    TH_ASSERT_EQ_INT(system(cmd), 0);
    memset(&F, 0, sizeof F);
}

static void appended(void *arg, item *it, int status)
{
    (void)arg;
    if (status == 0) F.appended++;
    else item_free(it);
}

static void fill(uint8_t *p, size_t len, uint32_t seq)
{
    for (size_t i = 0; i < len; i++) p[i] = (uint8_t)(seq * 131 + i);
    memcpy(p, &seq, sizeof seq); /* order is visible in the bytes */
}

/* Writes n records of REC_LEN bytes (signal sig, classes in turn) to the
 * DLQ before the exporter starts. */
static void prewrite(int n, sw_signal sig)
{
    static uint8_t data[REC_LEN];
    dlq_port *p = dlq_port_new(F.d);
    TH_ASSERT(p);
    for (int i = 0; i < n; i++) {
        fill(data, sizeof data, (uint32_t)i);
        item *it = item_new(sig, (sw_class)(i % CLASS_COUNT), 2, clock_mono_ns(), data,
                            sizeof data);
        TH_ASSERT(it);
        while (dlq_append(p, it, appended, NULL) != 0) dlq_port_wait(p, 100);
        TH_ASSERT_EQ_INT(buf_append(&F.written, data, sizeof data), 0);
    }
    while (dlq_port_pending(p) > 0) dlq_port_wait(p, 100);
    dlq_port_free(p);
    TH_ASSERT_EQ_INT(F.appended, n);
}

static void push_live(uint32_t seq)
{
    uint8_t data[300];
    fill(data, sizeof data, 0x10000u + seq);
    item *it = item_new(SIG_TRACES, CLASS_HIGH, 1, clock_mono_ns(), data, sizeof data);
    TH_ASSERT(it);
    TH_ASSERT_EQ_INT(apq_push(F.q, it), 0);
    TH_ASSERT_EQ_INT(buf_append(&F.live, data, sizeof data), 0);
}

static void start_exporter(void)
{
    F.e = exp_new(F.c, F.q, F.m);
    TH_ASSERT(F.e);
    exp_set_dlq(F.e, F.d);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
}

static int got_equals(sw_signal sig, const buf *want)
{
    pthread_mutex_lock(&F.u->mu);
    const buf *g = &F.u->got[sig];
    int same = g->len == want->len && memcmp(g->data, want->data, want->len) == 0;
    pthread_mutex_unlock(&F.u->mu);
    return same;
}

/* A fresh reader finds nothing: every record was acknowledged. */
static void assert_dlq_empty(void)
{
    dlq_reader *r = dlq_reader_new(F.d, 0, 0);
    TH_ASSERT(r);
    item *it = NULL;
    dlq_pos pos;
    int64_t end = clock_mono_ns() + 300000000LL;
    while (!it && clock_mono_ns() < end) {
        TH_ASSERT_EQ_INT(dlq_reader_next(r, &it, &pos), 0);
        if (!it) {
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
        }
    }
    int empty = it == NULL;
    item_free(it);
    dlq_reader_free(r);
    TH_ASSERT_MSG(empty, "a record is still in the DLQ after replay");
}

/* ---- cases ----------------------------------------------------------------- */

/* 256 records (1 MiB) at 256 KiB/s: all arrive, in order, byte for byte;
 * acknowledged (dlq_replayed_bytes, the DLQ empties); the rate measured at
 * the upstream is printed and must be within 10 % of the configured one. */
static void t_replay_all_in_order_at_rate(void)
{
    const uint64_t rate = 256u << 10;
    const int n = 256;
    fx_begin(rate);
    prewrite(n, SIG_LOGS);
    start_exporter();
    WAIT_FOR(atomic_load(&F.m->dlq_replayed_bytes) == (uint64_t)n * REC_LEN, 15000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    TH_ASSERT_MSG(got_equals(SIG_LOGS, &F.written), "replayed bytes differ or out of order");
    TH_ASSERT_EQ_INT(atomic_load(&F.m->exp_items[SIG_LOGS][EXP_RESULT_SENT]), 2 * n);
    /* rate: from the request completing the first 64 KiB (past the token
     * bucket's initial burst) to the last one */
    pthread_mutex_lock(&F.u->mu);
    int reqs = F.u->n < MAX_REQS ? F.u->n : MAX_REQS, first = -1;
    size_t sum = 0, span = 0;
    for (int i = 0; i < reqs; i++) {
        sum += F.u->len[i];
        if (first < 0 && sum >= (64u << 10)) first = i;
        else if (first >= 0) span += F.u->len[i];
    }
    double secs = first >= 0 ? (double)(F.u->at[reqs - 1] - F.u->at[first]) / 1e9 : 0;
    pthread_mutex_unlock(&F.u->mu);
    TH_ASSERT(first >= 0 && secs > 0);
    double measured = (double)span / secs;
    double err = (measured - (double)rate) / (double)rate * 100.0;
    printf("# replay rate: %.0f B/s measured over %.2f s in %d requests, configured %llu B/s "
           "(%+.2f %%)\n", measured, secs, reqs, (unsigned long long)rate, err);
    TH_ASSERT_MSG(err > -10.0 && err < 10.0, "replay rate off by %.1f %%", err);
    assert_dlq_empty();
    fx_done();
}

/* Live items pushed while the DLQ replays: both make progress — live items
 * are delivered long before the replay ends, and replay requests keep
 * arriving while live traffic flows. */
static void t_replay_interleaves_with_live(void)
{
    const int n = 128; /* 512 KiB at 256 KiB/s: about 2 s */
    fx_begin(256u << 10);
    prewrite(n, SIG_LOGS);
    start_exporter();
    for (uint32_t i = 0; i < 50; i++) {
        push_live(i);
        struct timespec ts = {0, 20000000};
        nanosleep(&ts, NULL);
    }
    WAIT_FOR(atomic_load(&F.m->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == 50, 5000);
    WAIT_FOR(atomic_load(&F.m->dlq_replayed_bytes) == (uint64_t)n * REC_LEN, 15000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    TH_ASSERT(got_equals(SIG_LOGS, &F.written));
    TH_ASSERT(got_equals(SIG_TRACES, &F.live));
    pthread_mutex_lock(&F.u->mu);
    int reqs = F.u->n < MAX_REQS ? F.u->n : MAX_REQS, last_live = -1, first_live = -1;
    int last_replay = -1, replay_during_live = 0;
    for (int i = 0; i < reqs; i++) {
        if (F.u->sig[i] == SIG_TRACES) {
            if (first_live < 0) first_live = i;
            last_live = i;
        } else {
            last_replay = i;
        }
    }
    for (int i = first_live; i >= 0 && i < last_live; i++)
        replay_during_live += F.u->sig[i] == SIG_LOGS;
    pthread_mutex_unlock(&F.u->mu);
    printf("# interleave: %d requests, live in [%d, %d], %d replay requests among them, "
           "last replay %d\n", reqs, first_live, last_live, replay_during_live, last_replay);
    TH_ASSERT(first_live >= 0 && last_live < last_replay);
    TH_ASSERT(replay_during_live > 0);
    assert_dlq_empty();
    fx_done();
}

/* No DLQ records, no live data: the replay thread idles and the exporter
 * stops at once. */
static void t_replay_idle_stop(void)
{
    fx_begin(256u << 10);
    start_exporter();
    struct timespec ts = {0, 100000000};
    nanosleep(&ts, NULL);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 1000), 0);
    fx_done();
}

/* The offline sender: one blocking POST per call; 2xx is 0, no upstream
 * or a bad URL is an error. */
static void t_send_blocking(void)
{
    up *u = up_start();
    char url[64];
    static const uint8_t body[] = {0x0a, 0x00};
    snprintf(url, sizeof url, "http://127.0.0.1:%u/p", (unsigned)u->port);
    TH_ASSERT_EQ_INT(exp_send_blocking(url, SIG_METRICS, body, sizeof body, 2000), 0);
    pthread_mutex_lock(&u->mu);
    int ok = u->n == 1 && u->sig[0] == SIG_METRICS && u->got[SIG_METRICS].len == sizeof body;
    pthread_mutex_unlock(&u->mu);
    TH_ASSERT(ok);
    up_stop(u);
    int fd = socket(AF_INET, SOCK_STREAM, 0); /* bound, never listening */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    TH_ASSERT(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sl) == 0);
    TH_ASSERT(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    TH_ASSERT(exp_send_blocking(url, SIG_TRACES, body, sizeof body, 2000) != 0);
    close(fd);
    TH_ASSERT(exp_send_blocking("ftp://x", SIG_TRACES, body, sizeof body, 2000) != 0);
}

int main(void)
{
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    log_setup(LOG_LVL_WARN, 0);
    TH_RUN(t_replay_all_in_order_at_rate);
    TH_RUN(t_replay_interleaves_with_live);
    TH_RUN(t_replay_idle_stop);
    TH_RUN(t_send_blocking);
    return th_done();
}
