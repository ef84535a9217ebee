/* test_exp_replay.c — the exporter replaying a DLQ to a live upstream.
 *
 * Records are written to a DLQ in a temporary directory with dlq_append(),
 * then an exporter with that DLQ and the shared in-process upstream
 * (testing/lib/th_upstream.h, recording every request, always 200) replays
 * them: all of them, in order, acknowledged
 * (the DLQ empties), paced by dlq.replay.rate, and interleaved with live
 * items pushed meanwhile.
 */
#include <arpa/inet.h>
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
#include "testing/lib/th_proc.h"
#include "testing/lib/th_thread.h"
#include "testing/lib/th_upstream.h"
#include "testing/lib/th_wait.h"
#include "dlq/dlq_metrics.h"
#include "exporters/otlp/exp_metrics.h"

#define MAX_REQS 1024
#define REC_LEN 4096

/* ---- upstream: records every request, answers 200 ------------------------- */

/* The shared in-process upstream (testing/lib/th_upstream.h) with a
 * recording decide callback; the fields are written under its lock. */
typedef struct up {
    th_upstream *srv;
    uint16_t port;
    int n;
    int sig[MAX_REQS];
    int64_t at[MAX_REQS];
    size_t len[MAX_REQS];
    buf got[SIG_COUNT]; /* bodies per signal, concatenated */
} up;

static void up_record(void *arg, const char *uri, const uint8_t *body, size_t n,
                      th_up_reply *r)
{
    up *u = arg;
    int sig = strstr(uri, "/v1/logs") ? SIG_LOGS : strstr(uri, "/v1/metrics") ? SIG_METRICS
                                                                               : SIG_TRACES;
    if (u->n < MAX_REQS) {
        u->sig[u->n] = sig;
        u->at[u->n] = clock_mono_ns();
        u->len[u->n] = n;
    }
    u->n++;
    if (n) buf_append(&u->got[sig], body, n);
    r->code = 200;
}

static up *up_start(void)
{
    up *u = calloc(1, sizeof *u);
    TH_ASSERT(u);
    for (int s = 0; s < SIG_COUNT; s++) buf_init(&u->got[s], 64u << 20);
    u->srv = th_upstream_start(up_record, u);
    u->port = th_upstream_port(u->srv);
    return u;
}

static void up_stop(up *u)
{
    if (!u) return;
    th_upstream_stop(u->srv);
    for (int s = 0; s < SIG_COUNT; s++) buf_destroy(&u->got[s]);
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
    exp_free(F.e);
    dlq_close(F.d);
    apq_free(F.q);
    up_stop(F.u);
    metrics_free(F.m);
    cfg_free(F.c);
    buf_destroy(&F.written);
    buf_destroy(&F.live);
    TH_ASSERT_EQ_INT(th_rmtree(F.dir), 0);
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
    th_upstream_lock(F.u->srv);
    const buf *g = &F.u->got[sig];
    int same = g->len == want->len && memcmp(g->data, want->data, want->len) == 0;
    th_upstream_unlock(F.u->srv);
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
    WAIT_FOR(atomic_load(&dlq_metrics_get(F.m)->dlq_replayed_bytes) == (uint64_t)n * REC_LEN, 15000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    TH_ASSERT_MSG(got_equals(SIG_LOGS, &F.written), "replayed bytes differ or out of order");
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(F.m)->exp_items[SIG_LOGS][EXP_RESULT_SENT]), 2 * n);
    for (int k = 0; k < CLASS_COUNT; k++) { /* batches of mixed classes, acked by their last */
        uint64_t want = 2u * (uint64_t)((n - k + CLASS_COUNT - 1) / CLASS_COUNT);
        TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(F.m)->dlq_written_items[k]), want);
        TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(F.m)->dlq_replayed_items[k]), want);
    }
    /* rate: from the request completing the first 64 KiB (past the token
     * bucket's initial burst) to the last one */
    th_upstream_lock(F.u->srv);
    int reqs = F.u->n < MAX_REQS ? F.u->n : MAX_REQS, first = -1;
    size_t sum = 0, span = 0;
    for (int i = 0; i < reqs; i++) {
        sum += F.u->len[i];
        if (first < 0 && sum >= (64u << 10)) first = i;
        else if (first >= 0) span += F.u->len[i];
    }
    double secs = first >= 0 ? (double)(F.u->at[reqs - 1] - F.u->at[first]) / 1e9 : 0;
    th_upstream_unlock(F.u->srv);
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
    /* each live item once the previous one was delivered and replay moved
     * on meanwhile (or finished): both sources are served at once */
    for (uint32_t i = 0; i < 50; i++) {
        uint64_t replayed = atomic_load(&dlq_metrics_get(F.m)->dlq_replayed_bytes);
        push_live(i);
        WAIT_FOR(atomic_load(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == i + 1, 5000);
        WAIT_FOR(atomic_load(&dlq_metrics_get(F.m)->dlq_replayed_bytes) > replayed ||
                     replayed == (uint64_t)n * REC_LEN, 5000);
    }
    WAIT_FOR(atomic_load(&dlq_metrics_get(F.m)->dlq_replayed_bytes) == (uint64_t)n * REC_LEN, 15000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    TH_ASSERT(got_equals(SIG_LOGS, &F.written));
    TH_ASSERT(got_equals(SIG_TRACES, &F.live));
    th_upstream_lock(F.u->srv);
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
    th_upstream_unlock(F.u->srv);
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
    WAIT_FOR(th_threads_named("sw-replay") == 1 && th_threads_named("sw-export") == 1, 2000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 1000), 0);
    TH_ASSERT_EQ_INT(th_threads_gone("sw-replay", 1000) + th_threads_gone("sw-export", 1000), 0);
    fx_done();
}

int main(void)
{
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    log_setup(LOG_LVL_WARN, 0);
    TH_RUN(t_replay_all_in_order_at_rate);
    TH_RUN(t_replay_interleaves_with_live);
    TH_RUN(t_replay_idle_stop);
    return th_done();
}
