/* test_exporter.c — the OTLP/HTTP exporter against an in-process upstream.
 *
 * Each case starts the shared scripted upstream (testing/lib/th_upstream.h)
 * on 127.0.0.1:0 (its own thread and event_base; https with a certificate
 * made by the openssl command for the TLS cases), a queue and an exporter, pushes items, and waits with a
 * deadline until the server or the counters show what should happen. The
 * server decompresses what it receives, so the cases compare bytes.
 */
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "config/cfg.h"
#include "dlq/dlq.h"
#include "exporters/otlp/exporter.h"
#include "queue/apq.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/codec.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_upstream.h"
#include "testing/lib/th_wait.h"
#include "dlq/dlq_metrics.h"
#include "exporters/otlp/exp_metrics.h"

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


#define MAX_REQS 64

/* ---- scripted upstream ---------------------------------------------------- */

typedef struct srv_resp {
    int code;
    const char *retry_after; /* header, or NULL */
    const char *ctype;       /* Content-Type of body, or NULL */
    const void *body;
    size_t body_len;
    int delay_ms;            /* answer this much later */
} srv_resp;

/* The shared in-process upstream (testing/lib/th_upstream.h) answering per
 * script, then dflt, and recording what it received; the fields below are
 * written by its callbacks under its lock. */
typedef struct srv {
    th_upstream *u;
    uint16_t port;
    const srv_resp *script;
    size_t n_script, next;
    srv_resp dflt;
    int requests;
    unsigned paths;     /* bit per signal path seen */
    buf received;       /* decoded bodies, concatenated */
    size_t req_len[MAX_REQS];
    int64_t req_ns[MAX_REQS]; /* arrival times (clock_mono_ns) */
    char path[64], ctype[64], cenc[16], api_key[64], host[64];
    int bad_body;       /* undecodable Content-Encoding payloads */
    int host_headers;   /* Host headers in the last request */
} srv;

static void srv_observe(void *arg, const th_up_req *q)
{
    srv *s = arg;
    snprintf(s->path, sizeof s->path, "%s", q->path);
    snprintf(s->ctype, sizeof s->ctype, "%s", q->content_type);
    snprintf(s->cenc, sizeof s->cenc, "%s", q->content_encoding);
    snprintf(s->api_key, sizeof s->api_key, "%s", q->api_key);
    snprintf(s->host, sizeof s->host, "%s", q->host);
    s->host_headers = q->host_headers;
    if (!q->decoded) s->bad_body++;
}

static void srv_decide(void *arg, const char *uri, const uint8_t *body, size_t len,
                       th_up_reply *r)
{
    srv *s = arg;
    static const char *const paths[] = {"/v1/traces", "/v1/metrics", "/v1/logs"};
    if (s->requests < MAX_REQS) {
        s->req_len[s->requests] = len;
        s->req_ns[s->requests] = clock_mono_ns();
    }
    s->requests++;
    for (int i = 0; i < 3; i++)
        if (strstr(uri, paths[i])) s->paths |= 1u << i;
    if (len) buf_append(&s->received, body, len);
    const srv_resp *sr = s->next < s->n_script ? &s->script[s->next++] : &s->dflt;
    r->code = sr->code;
    r->retry_after = sr->retry_after;
    r->ctype = sr->ctype;
    r->delay_ms = sr->delay_ms;
    r->body_len = sr->body_len < sizeof r->body ? sr->body_len : sizeof r->body;
    if (r->body_len) memcpy(r->body, sr->body, r->body_len);
}

/* Starts a server answering per script, then dflt. cert/key: https. */
static srv *srv_start(const srv_resp *script, size_t n, srv_resp dflt, const char *cert,
                      const char *key)
{
    srv *s = calloc(1, sizeof *s);
    TH_ASSERT(s);
    buf_init(&s->received, 64u << 20);
    s->script = script;
    s->n_script = n;
    s->dflt = dflt;
    th_up_opts o = {.decide = srv_decide, .observe = srv_observe, .arg = s,
                    .tls_cert = cert, .tls_key = key};
    s->u = th_upstream_start_opts(&o);
    s->port = th_upstream_port(s->u);
    return s;
}

static void srv_stop(srv *s)
{
    if (!s) return;
    th_upstream_stop(s->u);
    buf_destroy(&s->received);
    free(s);
}

static int srv_requests(srv *s)
{
    th_upstream_lock(s->u);
    int n = s->requests;
    th_upstream_unlock(s->u);
    return n;
}

static size_t srv_received(srv *s)
{
    th_upstream_lock(s->u);
    size_t n = s->received.len;
    th_upstream_unlock(s->u);
    return n;
}

/* ---- fixture -------------------------------------------------------------- */

typedef struct fx {
    srv *s;
    cfg *c;
    sw_metrics *m;
    apq *q;
    exporter *e;
    buf sent;        /* concatenation of every pushed item */
    uint64_t records;
} fx;

static fx F; /* the current case's fixture, released by fx_done() */

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = strdup(v);
    TH_ASSERT(*dst);
}

/* A cfg for the test upstream at url: small intervals, one connection. */
static cfg *make_cfg(const char *url)
{
    cfg *c = cfg_defaults();
    TH_ASSERT(c);
    set_str(&c->exporter.endpoint, url);
    c->exporter.compression = CFG_COMP_NONE;
    c->exporter.timeout_ms = 2000;
    c->exporter.max_in_flight = 1;
    c->exporter.batch_max_bytes = 1u << 20;
    c->exporter.batch_timeout_ms = 20;
    c->exporter.retry_initial_ms = 10;
    c->exporter.retry_max_ms = 40;
    c->exporter.retry_multiplier = 2.0;
    c->exporter.retry_max_elapsed_ms = 60000;
    c->exporter.headers = calloc(1, sizeof(cfg_header));
    TH_ASSERT(c->exporter.headers);
    c->exporter.n_headers = 1;
    c->exporter.headers[0].name = strdup("api-key");
    c->exporter.headers[0].value = strdup("secret-1");
    return c;
}

static void fx_begin(srv *s, cfg *c)
{
    memset(&F, 0, sizeof F);
    F.s = s;
    F.c = c;
    F.m = metrics_new();
    F.q = test_apq_new(64u << 20, F.m);
    TH_ASSERT(F.m && F.q);
    buf_init(&F.sent, 64u << 20);
    F.e = exp_new(F.c, F.q, F.m);
    TH_ASSERT(F.e);
}

static void fx_done(void)
{
    exp_free(F.e);
    apq_free(F.q);
    metrics_free(F.m);
    cfg_free(F.c);
    srv_stop(F.s);
    buf_destroy(&F.sent);
    memset(&F, 0, sizeof F);
}

static char *url_for(srv *s, const char *scheme, const char *suffix)
{
    static char u[128];
    snprintf(u, sizeof u, "%s://127.0.0.1:%u%s", scheme, (unsigned)s->port, suffix);
    return u;
}

/* Pushes an item of len bytes (a pattern derived from seq), count records. */
static void push(sw_signal sig, size_t len, uint32_t count, int seq)
{
    uint8_t data[4096];
    TH_ASSERT(len <= sizeof data);
    for (size_t i = 0; i < len; i++) data[i] = (uint8_t)(seq * 31 + i);
    item *it = item_new(sig, CLASS_NORMAL, count, clock_mono_ns(), data, len);
    TH_ASSERT(it);
    TH_ASSERT_EQ_INT(apq_push(F.q, it), 0);
    TH_ASSERT_EQ_INT(buf_append(&F.sent, data, len), 0);
    F.records += count;
}

static uint64_t ctr(_Atomic uint64_t *c) { return atomic_load(c); }


static void assert_received_all(void)
{
    th_upstream_lock(F.s->u);
    int same = F.s->received.len == F.sent.len &&
               (F.sent.len == 0 || memcmp(F.s->received.data, F.sent.data, F.sent.len) == 0);
    size_t got = F.s->received.len;
    th_upstream_unlock(F.s->u);
    TH_ASSERT_MSG(same, "upstream got %zu bytes, %zu pushed (or different bytes)", got,
                  F.sent.len);
}

static const srv_resp OK200 = {200, NULL, NULL, NULL, 0};
static const srv_resp E503 = {503, NULL, NULL, NULL, 0};

/* ---- cases ---------------------------------------------------------------- */

/* Items pushed together go out as one gzip request to <prefix>/v1/traces
 * with the custom header; counters and latency follow. */
static void t_batch_gzip_headers(void)
{
    srv *s = srv_start(NULL, 0, OK200, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", "/otlp/"));
    c->exporter.compression = CFG_COMP_GZIP;
    fx_begin(s, c);
    for (int i = 0; i < 5; i++) push(SIG_TRACES, 100 + (size_t)i, 3, i);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == F.records, 5000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    assert_received_all();
    TH_ASSERT_EQ_INT(srv_requests(s), 1);
    TH_ASSERT_EQ_STR(s->path, "/otlp/v1/traces");
    TH_ASSERT_EQ_STR(s->cenc, "gzip");
    TH_ASSERT_EQ_STR(s->ctype, "application/x-protobuf");
    TH_ASSERT_EQ_STR(s->api_key, "secret-1");
    char host[64];
    snprintf(host, sizeof host, "127.0.0.1:%u", (unsigned)s->port);
    TH_ASSERT_EQ_STR(s->host, host);
    TH_ASSERT_EQ_INT(s->host_headers, 1);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_requests[SIG_TRACES][200]), 1);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->latency.count), 5);
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(F.m)->exp_in_flight), 0);
    TH_ASSERT_EQ_INT(exp_healthy(F.e), 1);
    fx_done();
}

/* batch.max_bytes splits batches; a larger item goes alone; zstd. */
static void t_max_bytes_zstd(void)
{
    static const size_t sizes[] = {40, 40, 40, 40, 250, 30};
    static const size_t want[] = {80, 80, 250, 30};
    srv *s = srv_start(NULL, 0, OK200, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    c->exporter.compression = CFG_COMP_ZSTD;
    c->exporter.batch_max_bytes = 100;
    fx_begin(s, c);
    for (int i = 0; i < 6; i++) push(SIG_METRICS, sizes[i], 1, i);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(srv_received(s) == F.sent.len, 5000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    assert_received_all();
    TH_ASSERT_EQ_INT(srv_requests(s), 4);
    for (int i = 0; i < 4; i++) TH_ASSERT_EQ_INT(s->req_len[i], want[i]);
    TH_ASSERT_EQ_STR(s->path, "/v1/metrics");
    TH_ASSERT_EQ_STR(s->cenc, "zstd");
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_METRICS][EXP_RESULT_SENT]), 6);
    fx_done();
}

/* 503 twice, then 200: the same bytes three times, two retries. */
static void t_retry_503_then_200(void)
{
    static const srv_resp script[] = {{503, NULL, NULL, NULL, 0}, {503, NULL, NULL, NULL, 0}};
    srv *s = srv_start(script, 2, OK200, NULL, NULL);
    fx_begin(s, make_cfg(url_for(s, "http", "")));
    push(SIG_LOGS, 64, 2, 1);
    push(SIG_LOGS, 32, 5, 2);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_LOGS][EXP_RESULT_SENT]) == 7, 5000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    TH_ASSERT_EQ_INT(srv_requests(s), 3);
    for (int i = 0; i < 3; i++) TH_ASSERT_EQ_INT(s->req_len[i], 96);
    th_upstream_lock(s->u);
    int same = s->received.len == 3 * F.sent.len &&
               !memcmp(s->received.data, F.sent.data, F.sent.len) &&
               !memcmp(s->received.data + F.sent.len, F.sent.data, F.sent.len) &&
               !memcmp(s->received.data + 2 * F.sent.len, F.sent.data, F.sent.len);
    th_upstream_unlock(s->u);
    TH_ASSERT(same);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_requests[SIG_LOGS][503]), 2);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_requests[SIG_LOGS][200]), 1);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_retries), 2);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_LOGS][EXP_RESULT_DROPPED]), 0);
    TH_ASSERT_EQ_INT(th_upstream_conns(s->u), 1); /* kept alive across answers */
    TH_ASSERT_EQ_INT(exp_healthy(F.e), 1);
    fx_done();
}

/* 429 with Retry-After: 1 is retried after one second although the
 * backoff alone would wait at least 30 s. */
static void t_retry_after_honoured(void)
{
    static const srv_resp script[] = {{429, "1", NULL, NULL, 0}};
    srv *s = srv_start(script, 1, OK200, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    c->exporter.retry_initial_ms = 60000;
    c->exporter.retry_max_ms = 60000;
    fx_begin(s, c);
    push(SIG_TRACES, 50, 1, 1);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_requests[SIG_TRACES][429]) == 1, 5000);
    TH_ASSERT_EQ_INT(exp_healthy(F.e), 0);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == 1, 5000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    TH_ASSERT_EQ_INT(srv_requests(s), 2);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_retries), 1);
    TH_ASSERT_EQ_INT(exp_healthy(F.e), 1);
    fx_done();
}

/* 204 with no body is a success; a 200 with partial_success is counted
 * and not retried. */
static void t_204_and_partial_success(void)
{
    /* ExportLogsServiceResponse{partial_success{rejected_log_records: 7, "quota"}} */
    static const uint8_t partial[] = {0x0a, 0x09, 0x08, 0x07, 0x12, 0x05, 'q', 'u', 'o', 't', 'a'};
    static const srv_resp script[] = {{204, NULL, NULL, NULL, 0},
                                      {200, NULL, "application/x-protobuf", partial, sizeof partial}};
    srv *s = srv_start(script, 2, OK200, NULL, NULL);
    fx_begin(s, make_cfg(url_for(s, "http", "")));
    push(SIG_LOGS, 20, 4, 1);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_LOGS][EXP_RESULT_SENT]) == 4, 5000);
    push(SIG_LOGS, 20, 10, 2);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_LOGS][EXP_RESULT_SENT]) == 14, 5000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    TH_ASSERT_EQ_INT(srv_requests(s), 2);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_requests[SIG_LOGS][204]), 1);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_partial_rejected[SIG_LOGS]), 7);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_retries), 0);
    assert_received_all();
    fx_done();
}

/* An idle connection takes an open batch at once (batch.timeout is a
 * minute here); while the only connection is busy, items accumulate into
 * one batch that goes when it frees up. */
static void t_eager_when_idle_batch_when_busy(void)
{
    static const srv_resp script[] = {{200, NULL, NULL, NULL, 0, 300}};
    srv *s = srv_start(script, 1, OK200, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    c->exporter.batch_timeout_ms = 60000;
    fx_begin(s, c);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    push(SIG_TRACES, 10, 1, 0);
    WAIT_FOR(srv_requests(s) == 1, 5000); /* its answer takes 300 ms */
    for (int i = 1; i <= 5; i++) push(SIG_TRACES, 10, 1, i);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == 6, 5000);
    TH_ASSERT_EQ_INT(srv_requests(s), 2);
    TH_ASSERT_EQ_INT(s->req_len[0], 10);
    TH_ASSERT_EQ_INT(s->req_len[1], 50);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    assert_received_all();
    fx_done();
}

/* batch.linger: items that keep arriving close together while the
 * connection is idle are merged into fewer upstream requests, and none
 * waits past the budget (without it, batch.timeout, a minute here). */
static void t_linger_merges_close_items(void)
{
    srv *s = srv_start(NULL, 0, OK200, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    c->exporter.batch_timeout_ms = 60000;
    c->exporter.batch_linger_ms = 400;
    fx_begin(s, c);
    exp_metrics *em = exp_metrics_get(F.m);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    push(SIG_TRACES, 10, 1, 0); /* its answer gives the round trip */
    WAIT_FOR(ctr(&em->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == 1, 5000);
    enum { N = 40 };
    for (int i = 1; i <= N; i++) {
        push(SIG_TRACES, 10, 1, i);
        nanosleep(&(struct timespec){0, 5000000}, NULL); /* 5 ms apart */
    }
    WAIT_FOR(ctr(&em->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == N + 1, 10000);
    int reqs = srv_requests(s);
    TH_ASSERT_MSG(reqs <= N / 2, "%d upstream requests for %d items", reqs, N + 1);
    /* every item acknowledged within 1 s of its receipt (budget 400 ms) */
    uint64_t slow = 0;
    for (unsigned i = 0; i <= em->latency.n; i++)
        if (i == em->latency.n || em->latency.bounds_ns[i] > 1000000000LL)
            slow += atomic_load(&em->latency.buckets[i]);
    TH_ASSERT_EQ_INT(slow, 0);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    assert_received_all();
    fx_done();
}

/* 400 with a google.rpc.Status body: rejected, counted, never retried. */
static void t_400_rejected(void)
{
    static const uint8_t status[] = {0x08, 0x03, 0x12, 0x07, 'b', 'a', 'd', ' ', 'p', 'b', '!'};
    static const srv_resp script[] = {{400, NULL, "application/x-protobuf", status, sizeof status}};
    srv *s = srv_start(script, 1, OK200, NULL, NULL);
    fx_begin(s, make_cfg(url_for(s, "http", "")));
    push(SIG_TRACES, 30, 6, 1);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_REJECTED]) == 6, 5000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    TH_ASSERT_EQ_INT(srv_requests(s), 1);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_requests[SIG_TRACES][400]), 1);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_retries), 0);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]), 0);
    TH_ASSERT_EQ_INT(exp_healthy(F.e), 1);
    fx_done();
}

/* One request per signal, each to its path. */
static void t_signals_paths(void)
{
    srv *s = srv_start(NULL, 0, OK200, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", "/"));
    c->exporter.max_in_flight = 3;
    fx_begin(s, c);
    push(SIG_TRACES, 10, 1, 1);
    push(SIG_METRICS, 10, 1, 2);
    push(SIG_LOGS, 10, 1, 3);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(srv_requests(s) == 3, 5000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    TH_ASSERT_EQ_INT(s->paths, 7);
    for (int sig = 0; sig < SIG_COUNT; sig++)
        TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[sig][EXP_RESULT_SENT]), 1);
    fx_done();
}

/* exp_stop flushes open batches at once (batch.timeout is long here) and
 * returns 0 once everything is acknowledged. */
static void t_stop_drains(void)
{
    srv *s = srv_start(NULL, 0, OK200, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    c->exporter.batch_timeout_ms = 60000;
    fx_begin(s, c);
    for (int i = 0; i < 20; i++) push(SIG_TRACES, 200, 1, i);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 3000), 0);
    assert_received_all();
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]), 20);
    TH_ASSERT_EQ_INT(apq_items(F.q), 0);
    fx_done();
}

/* Upstream always 503: exp_stop gives up at its deadline and returns the
 * number of undelivered items; they are counted DROPPED. */
static void t_stop_undelivered(void)
{
    srv *s = srv_start(NULL, 0, E503, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    c->exporter.batch_max_bytes = 100;
    fx_begin(s, c);
    for (int i = 0; i < 4; i++) push(SIG_METRICS, 100, 3, i);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(srv_requests(s) >= 2, 5000);
    TH_ASSERT_EQ_INT(exp_healthy(F.e), 0);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 200), 4);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_METRICS][EXP_RESULT_DROPPED]), 12);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_METRICS][EXP_RESULT_SENT]), 0);
    TH_ASSERT_EQ_INT(apq_items(F.q), 0);
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(F.m)->exp_in_flight), 0);
    fx_done();
}

/* While the upstream refuses, the exporter holds only what its slots
 * allow; the rest stays in the queue (backpressure, bounded memory). */
static void t_backpressure(void)
{
    srv *s = srv_start(NULL, 0, E503, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    c->exporter.batch_max_bytes = 100;
    fx_begin(s, c);
    for (int i = 0; i < 10; i++) push(SIG_TRACES, 100, 1, i);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(srv_requests(s) >= 3, 5000);
    /* one batch in flight or backing off, one sealed and waiting */
    TH_ASSERT_EQ_INT(apq_items(F.q), 8);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 50), 10);
    fx_done();
}

/* Nothing listens: connection errors are counted as code 0 and retried;
 * max_elapsed_time gives up (DROPPED) before the stop. */
static void t_connection_refused(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof sa;
    TH_ASSERT(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sl) == 0);
    TH_ASSERT(getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    cfg *c = make_cfg(url); /* the port stays bound but never listens */
    c->exporter.retry_max_elapsed_ms = 400;
    c->exporter.cb_open_duration_ms = 50; /* the breaker opens after 5: probes go on */
    fx_begin(NULL, c);
    push(SIG_LOGS, 10, 2, 1);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_LOGS][EXP_RESULT_DROPPED]) == 2, 5000);
    TH_ASSERT(ctr(&exp_metrics_get(F.m)->exp_requests[SIG_LOGS][0]) >= 2);
    TH_ASSERT(ctr(&exp_metrics_get(F.m)->exp_retries) >= 1);
    TH_ASSERT_EQ_INT(exp_healthy(F.e), 0);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 100), 0); /* dropped before the stop began */
    close(fd);
    fx_done();
}


/* ---- circuit breaker and DLQ ----------------------------------------------- */

/* 5 failures in a row open the breaker: no request reaches the upstream
 * until the probe, open_duration later; a failed probe re-opens it for
 * another open_duration; a successful one closes it and the items that
 * waited in the queue (no DLQ) go out. */
static void t_breaker_probe(void)
{
    static const srv_resp script[] = {{503}, {503}, {503}, {503}, {503}, {503}};
    srv *s = srv_start(script, 6, OK200, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    c->exporter.cb_open_duration_ms = 300;
    fx_begin(s, c);
    push(SIG_TRACES, 40, 1, 1);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(atomic_load(&exp_metrics_get(F.m)->exp_circuit_state) == 2, 5000);
    TH_ASSERT_EQ_INT(srv_requests(s), 5);
    for (int i = 2; i <= 4; i++) push(SIG_TRACES, 40, 1, i); /* wait in the queue */
    WAIT_FOR(srv_requests(s) >= 6, 5000);                    /* the probe: 503 */
    WAIT_FOR(srv_requests(s) >= 7, 5000);                    /* the next probe: 200 */
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == 4, 5000);
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(F.m)->exp_circuit_state), 0);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    th_upstream_lock(s->u);
    int64_t gap1 = s->req_ns[5] - s->req_ns[4], gap2 = s->req_ns[6] - s->req_ns[5];
    th_upstream_unlock(s->u);
    TH_ASSERT_MSG(gap1 >= 300000000LL, "a request %lld ns after the breaker opened",
                  (long long)gap1);
    TH_ASSERT_MSG(gap2 >= 300000000LL, "a request %lld ns after the probe failed",
                  (long long)gap2);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_DROPPED]), 0);
    fx_done();
}

static char dlq_dir[64];

/* A DLQ in a fresh temporary directory, counting into F.m. */
static dlq *test_dlq_open(void)
{
    snprintf(dlq_dir, sizeof dlq_dir, "/tmp/sw-expdlq-XXXXXX");
    TH_ASSERT(mkdtemp(dlq_dir));
    dlq_opts o = {.dir = dlq_dir, .segment_size = 1u << 20, .max_size = 64u << 20,
                  .compression_level = 3, .fsync = CFG_FSYNC_NEVER};
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, F.m, &d), 0);
    dlq_wait_recovered(d);
    return d;
}

static void test_dlq_close(dlq *d)
{
    dlq_close(d);
    TH_ASSERT_EQ_INT(th_rmtree(dlq_dir), 0);
}

/* Reads every record of d with a fresh reader (acked), checking each is
 * one of the pushed items (bytes, signal, class). Returns how many. */
static int dlq_read_all(dlq *d, sw_signal sig, sw_class klass, size_t len)
{
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    TH_ASSERT(r);
    int n = 0;
    int64_t end = clock_mono_ns() + 3000000000LL;
    while (clock_mono_ns() < end) {
        item *it = NULL;
        dlq_pos pos;
        TH_ASSERT_EQ_INT(dlq_reader_next(r, &it, &pos), 0);
        if (!it) {
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL); /* the writer seals the open segment */
            continue;
        }
        int ok = it->signal == sig && it->klass == klass && it->len == len &&
                 memmem(F.sent.data, F.sent.len, it->data, it->len) != NULL;
        item_free(it);
        dlq_reader_ack(r, &pos);
        TH_ASSERT_MSG(ok, "record %d is not one of the pushed items", n);
        n++;
        end = clock_mono_ns() + 300000000LL; /* done once nothing comes for 300 ms */
    }
    dlq_reader_free(r);
    return n;
}

static void push_class(sw_signal sig, sw_class klass, size_t len, int seq)
{
    uint8_t data[512];
    TH_ASSERT(len <= sizeof data);
    for (size_t i = 0; i < len; i++) data[i] = (uint8_t)(seq * 31 + i);
    item *it = item_new(sig, klass, 1, clock_mono_ns(), data, len);
    TH_ASSERT(it);
    TH_ASSERT_EQ_INT(apq_push(F.q, it), 0);
    TH_ASSERT_EQ_INT(buf_append(&F.sent, data, len), 0);
    F.records++;
}

/* With a DLQ, while the breaker is open the upstream sees nothing and
 * every item (the failed batch and those pushed later) goes to the DLQ
 * with its class; nothing is dropped. */
static void t_breaker_open_spills(void)
{
    srv *s = srv_start(NULL, 0, E503, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    c->exporter.cb_open_duration_ms = 60000;
    fx_begin(s, c);
    dlq *d = test_dlq_open();
    exp_set_dlq(F.e, d);
    push_class(SIG_METRICS, CLASS_HIGH, 100, 0);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(atomic_load(&exp_metrics_get(F.m)->exp_circuit_state) == 2, 5000);
    for (int i = 1; i < 20; i++) push_class(SIG_METRICS, CLASS_HIGH, 100, i);
    WAIT_FOR(ctr(&dlq_metrics_get(F.m)->dlq_written_bytes) == 2000, 5000);
    TH_ASSERT_EQ_INT(srv_requests(s), 5);
    TH_ASSERT_EQ_INT(apq_items(F.q), 0);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 500), 0);
    TH_ASSERT_EQ_INT(srv_requests(s), 5);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_METRICS][EXP_RESULT_DROPPED]), 0);
    TH_ASSERT_EQ_INT(dlq_read_all(d, SIG_METRICS, CLASS_HIGH, 100), 20);
    exp_free(F.e);
    F.e = NULL;
    test_dlq_close(d);
    fx_done();
}

/* Retries exhausted with a DLQ: the batch goes to the DLQ (class and bytes
 * kept), not dropped. */
static void t_give_up_to_dlq(void)
{
    srv *s = srv_start(NULL, 0, E503, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    c->exporter.retry_max_elapsed_ms = 200;
    c->exporter.cb_consecutive_failures = 1000; /* the breaker stays out of it */
    c->exporter.cb_ratio_429 = 0;
    fx_begin(s, c);
    dlq *d = test_dlq_open();
    exp_set_dlq(F.e, d);
    push_class(SIG_LOGS, CLASS_CRITICAL, 64, 7);
    push_class(SIG_LOGS, CLASS_CRITICAL, 64, 8);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(ctr(&dlq_metrics_get(F.m)->dlq_written_bytes) >= 128, 5000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 100), 0);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_LOGS][EXP_RESULT_DROPPED]), 0);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_LOGS][EXP_RESULT_SENT]), 0);
    /* replay may have sent them once more meanwhile (and failed): each
     * record read back is one of the two, at least both are there */
    TH_ASSERT(dlq_read_all(d, SIG_LOGS, CLASS_CRITICAL, 64) >= 2);
    exp_free(F.e);
    F.e = NULL;
    test_dlq_close(d);
    fx_done();
}

/* Stop with a dead upstream (answers never come): at the deadline the
 * queue, the batches and the request in flight go to the DLQ; exp_stop
 * returns 0 (nothing neither delivered nor stored). */
static void t_stop_dead_upstream_to_dlq(void)
{
    static const srv_resp slow = {200, NULL, NULL, NULL, 0, 5000};
    srv *s = srv_start(NULL, 0, slow, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    c->exporter.batch_max_bytes = 300;
    c->exporter.timeout_ms = 10000;
    fx_begin(s, c);
    dlq *d = test_dlq_open();
    exp_set_dlq(F.e, d);
    for (int i = 0; i < 12; i++) push_class(SIG_TRACES, CLASS_NORMAL, 100, i);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(srv_requests(s) >= 1, 5000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 200), 0);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_DROPPED]), 0);
    TH_ASSERT_EQ_INT(ctr(&dlq_metrics_get(F.m)->dlq_written_bytes), 1200);
    TH_ASSERT_EQ_INT(apq_items(F.q), 0);
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(F.m)->exp_in_flight), 0);
    TH_ASSERT_EQ_INT(dlq_read_all(d, SIG_TRACES, CLASS_NORMAL, 100), 12);
    exp_free(F.e);
    F.e = NULL;
    test_dlq_close(d);
    fx_done();
}

/* ---- TLS ------------------------------------------------------------------- */

static char tls_dir[64], tls_cert[128], tls_key[128];

/* A self-signed certificate for 127.0.0.1, made once; skips without openssl. */
static void need_cert(void)
{
    if (tls_cert[0]) return;
    snprintf(tls_dir, sizeof tls_dir, "/tmp/sw-exp-XXXXXX");
    if (!mkdtemp(tls_dir)) th_skip("mkdtemp failed");
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -days 1 -keyout %s/key.pem "
             "-out %s/cert.pem >/dev/null 2>&1", tls_dir, tls_dir);
    if (system(cmd) != 0) {
        rmdir(tls_dir);
        tls_dir[0] = '\0';
        th_skip("the openssl command could not make a certificate");
    }
    snprintf(tls_key, sizeof tls_key, "%s/key.pem", tls_dir);
    snprintf(tls_cert, sizeof tls_cert, "%s/cert.pem", tls_dir);
}

static void tls_cleanup(void)
{
    if (!tls_dir[0]) return;
    if (tls_cert[0]) unlink(tls_cert);
    if (tls_key[0]) unlink(tls_key);
    rmdir(tls_dir);
}

/* https with tls.ca_file = the server's certificate: delivered. */
static void t_tls_trusted(void)
{
    need_cert();
    srv *s = srv_start(NULL, 0, OK200, tls_cert, tls_key);
    cfg *c = make_cfg(url_for(s, "https", "/otlp"));
    c->exporter.compression = CFG_COMP_GZIP;
    set_str(&c->exporter.tls_ca_file, tls_cert);
    fx_begin(s, c);
    for (int i = 0; i < 3; i++) push(SIG_TRACES, 300, 1, i);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == 3, 5000);
    push(SIG_TRACES, 300, 1, 9); /* a second request, on the kept-alive connection */
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == 4, 5000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    assert_received_all();
    TH_ASSERT_EQ_STR(s->path, "/otlp/v1/traces");
    TH_ASSERT_EQ_STR(s->api_key, "secret-1");
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_requests[SIG_TRACES][0]), 0);
    TH_ASSERT_EQ_INT(th_upstream_conns(s->u), 1); /* one handshake, two requests */
    fx_done();
}

/* https with the default store: the self-signed certificate fails
 * verification, counted as a connection error and retried; nothing
 * reaches the server. */
static void t_tls_untrusted(void)
{
    need_cert();
    srv *s = srv_start(NULL, 0, OK200, tls_cert, tls_key);
    fx_begin(s, make_cfg(url_for(s, "https", "")));
    push(SIG_TRACES, 300, 1, 1);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_requests[SIG_TRACES][0]) >= 2, 5000);
    TH_ASSERT(ctr(&exp_metrics_get(F.m)->exp_retries) >= 1);
    TH_ASSERT_EQ_INT(exp_healthy(F.e), 0);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 100), 1);
    TH_ASSERT_EQ_INT(srv_requests(s), 0);
    fx_done();
}

/* Bad configuration is refused by exp_new. */
static void t_bad_config(void)
{
    static const char *bad[] = {"ftp://127.0.0.1:1", "127.0.0.1:4319", "http://", "http://h:0"};
    sw_metrics *m = metrics_new();
    apq *q = test_apq_new(1024, m);
    TH_ASSERT(m && q);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg *c = make_cfg(bad[i]);
        exporter *e = exp_new(c, q, m);
        int refused = e == NULL;
        exp_free(e);
        cfg_free(c);
        TH_ASSERT_MSG(refused, "accepted endpoint %s", bad[i]);
    }
    cfg *c = make_cfg("https://127.0.0.1:1");
    set_str(&c->exporter.tls_ca_file, "/nonexistent/ca.pem");
    exporter *e = exp_new(c, q, m);
    int refused = e == NULL;
    exp_free(e);
    cfg_free(c);
    apq_free(q);
    metrics_free(m);
    TH_ASSERT_MSG(refused, "accepted a missing tls.ca_file");
}

/* Freed without a start, and with a start but no stop. */
static void t_lifecycle(void)
{
    srv *s = srv_start(NULL, 0, OK200, NULL, NULL);
    fx_begin(s, make_cfg(url_for(s, "http", "")));
    exp_free(F.e);
    F.e = exp_new(F.c, F.q, F.m);
    TH_ASSERT(F.e);
    push(SIG_TRACES, 10, 1, 1);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    TH_ASSERT(exp_start(F.e) != 0);
    fx_done(); /* exp_free stops the running thread */
}

/* exp_reconfigure to a new endpoint and header while a request is in
 * flight: that request is answered on its old connection (once), the next
 * goes to the new upstream with the new header. */
static void t_reconfigure_in_flight(void)
{
    static const srv_resp SLOW = {200, NULL, NULL, NULL, 0, 300};
    srv *s2 = srv_start(NULL, 0, OK200, NULL, NULL);
    srv *s = srv_start(NULL, 0, SLOW, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    fx_begin(s, c);
    cfg *c2 = make_cfg(url_for(s2, "http", ""));
    set_str(&c2->exporter.headers[0].value, "secret-2");
    c2->exporter.max_in_flight = 2;
    c2->exporter.compression = CFG_COMP_GZIP;
    push(SIG_LOGS, 200, 1, 1);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(srv_requests(s) == 1, 5000); /* answered 300 ms later */
    TH_ASSERT_EQ_INT(exp_reconfigure(F.e, c2), 0);
    uint8_t second[64];
    memset(second, 7, sizeof second);
    item *it = item_new(SIG_LOGS, CLASS_NORMAL, 2, clock_mono_ns(), second, sizeof second);
    TH_ASSERT(it && apq_push(F.q, it) == 0);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_LOGS][EXP_RESULT_SENT]) == 3, 5000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    assert_received_all(); /* the old upstream: the first item only, once */
    TH_ASSERT_EQ_INT(srv_requests(s), 1);
    TH_ASSERT_EQ_STR(s->api_key, "secret-1");
    TH_ASSERT_EQ_INT(srv_requests(s2), 1);
    TH_ASSERT_EQ_STR(s2->api_key, "secret-2");
    TH_ASSERT_EQ_STR(s2->cenc, "gzip");
    TH_ASSERT(srv_received(s2) == sizeof second &&
              memcmp(s2->received.data, second, sizeof second) == 0);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_retries), 0);
    TH_ASSERT_EQ_INT(exp_reconfigure(F.e, c2), SW_ECLOSED);
    fx_done();
    cfg_free(c2);
    srv_stop(s2);
}

/* exp_reconfigure before exp_start applies at once; an exporter
 * reconfigured and never started frees everything. */
static void t_reconfigure_before_start(void)
{
    srv *s2 = srv_start(NULL, 0, OK200, NULL, NULL);
    srv *s = srv_start(NULL, 0, OK200, NULL, NULL);
    cfg *c = make_cfg(url_for(s, "http", ""));
    fx_begin(s, c);
    cfg *c2 = make_cfg(url_for(s2, "http", ""));
    set_str(&c2->exporter.endpoint, "ftp://nowhere");
    TH_ASSERT_EQ_INT(exp_reconfigure(F.e, c2), SW_EINVAL); /* nothing changed */
    set_str(&c2->exporter.endpoint, url_for(s2, "http", ""));
    TH_ASSERT_EQ_INT(exp_reconfigure(F.e, c2), 0);
    push(SIG_METRICS, 100, 1, 3);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_METRICS][EXP_RESULT_SENT]) == 1, 5000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    TH_ASSERT_EQ_INT(srv_requests(s), 0);
    TH_ASSERT_EQ_INT(srv_requests(s2), 1);
    fx_done();
    sw_metrics *m = metrics_new();
    apq *q = test_apq_new(1 << 20, m);
    TH_ASSERT(m && q);
    exporter *e = exp_new(c2, q, m);
    cfg *c3 = make_cfg(url_for(s2, "http", "/other"));
    TH_ASSERT(e && exp_reconfigure(e, c3) == 0);
    exp_free(e);
    apq_free(q);
    metrics_free(m);
    cfg_free(c3);
    cfg_free(c2);
    srv_stop(s2);
}

int main(void)
{
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    log_setup(LOG_LVL_WARN, 0);
    TH_RUN(t_batch_gzip_headers);
    TH_RUN(t_max_bytes_zstd);
    TH_RUN(t_retry_503_then_200);
    TH_RUN(t_retry_after_honoured);
    TH_RUN(t_204_and_partial_success);
    TH_RUN(t_eager_when_idle_batch_when_busy);
    TH_RUN(t_linger_merges_close_items);
    TH_RUN(t_400_rejected);
    TH_RUN(t_signals_paths);
    TH_RUN(t_stop_drains);
    TH_RUN(t_stop_undelivered);
    TH_RUN(t_backpressure);
    TH_RUN(t_connection_refused);
    TH_RUN(t_breaker_probe);
    TH_RUN(t_breaker_open_spills);
    TH_RUN(t_give_up_to_dlq);
    TH_RUN(t_stop_dead_upstream_to_dlq);
    TH_RUN(t_tls_trusted);
    TH_RUN(t_tls_untrusted);
    TH_RUN(t_bad_config);
    TH_RUN(t_lifecycle);
    tls_cleanup();
    TH_RUN(t_reconfigure_in_flight);
    TH_RUN(t_reconfigure_before_start);
    return th_done();
}
