/* itest_grpc_edge.c — the OTLP/gRPC receiver at its edges, with our own
 * HTTP/2 client (testing/lib/th_h2.h) against the real binaries: many
 * concurrent streams on one connection; status codes for oversized,
 * truncated, garbage, wrongly compressed and wrongly typed requests and for
 * unknown methods (nothing of a refused request is forwarded); deadlines;
 * UNAVAILABLE with google.rpc.RetryInfo while stopping; and hostile
 * connections (bad preface, garbage frames, HEADERS / SETTINGS / PING
 * floods, window-update abuse, rapid reset, idle, over the connection
 * limit) that end in a connection error while other clients are still
 * served and the process stays within a memory bound; and the intake
 * memory budget shared with the OTLP/HTTP receiver. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "runtime/otlp_json.h"
#include "testing/lib/th.h"
#include "testing/lib/th_h2.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define TRACES "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
#define LOGS "/opentelemetry.proto.collector.logs.v1.LogsService/Export"

enum { OK = 0, INVALID_ARGUMENT = 3, DEADLINE_EXCEEDED = 4, RESOURCE_EXHAUSTED = 8,
       UNIMPLEMENTED = 12, INTERNAL = 13, UNAVAILABLE = 14 };

static th_stack *start(const char *grpc_yaml, const char *max_body)
{
    th_stack_opts o = {0};
    o.grpc_yaml = grpc_yaml ? grpc_yaml : "";
    o.max_body = max_body;
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    TH_ASSERT_MSG(th_stack_grpc_port(s), "ready file lacks otlp_grpc=");
    return s;
}

static th_h2 *client(th_stack *s)
{
    th_h2 *h = th_h2_connect(th_stack_grpc_port(s), 1);
    TH_ASSERT(h);
    return h;
}

/* One unary call; returns its result (valid while h lives). */
static const th_h2_result *call(th_h2 *h, const char *path, const char *enc, int compressed,
                                const uint8_t *msg, size_t len)
{
    int32_t id = th_h2_grpc(h, path, enc, compressed, msg, len);
    TH_ASSERT(id > 0);
    TH_ASSERT_MSG(th_h2_wait(h, 10000) == 0, "no answer on stream %d", id);
    return th_h2_get(h, id);
}

static void assert_status(const th_h2_result *r, int want)
{
    TH_ASSERT(r);
    TH_ASSERT_MSG(r->grpc_status == want, "grpc-status %d (%s), want %d", r->grpc_status,
                  r->grpc_message, want);
    TH_ASSERT_EQ_INT(r->http_status, 200);
}

/* A valid traces request goes through: OK, response message, upstream. */
static void served(th_stack *s, uint32_t seed, long base)
{
    th_h2 *h = client(s);
    th_otlp *d = th_otlp_new(SIG_TRACES, seed, 3);
    TH_ASSERT(d);
    const th_h2_result *r = call(h, TRACES, NULL, 0, d->pb, d->pb_len);
    assert_status(r, OK);
    TH_ASSERT_EQ_STR(r->content_type, "application/grpc");
    TH_ASSERT_EQ_INT(r->body.len, 5); /* an empty Export*ServiceResponse */
    TH_ASSERT_MSG(th_stack_wait_items(s, SIG_TRACES, base + 3, 10000) == base + 3,
                  "the request was not forwarded");
    th_h2_free(h);
    th_otlp_free(d);
}

/* Nothing beyond `want` items reached the upstream: a valid request after
 * the refused ones arrives alone. */
static void nothing_forwarded(th_stack *s, long want_before)
{
    served(s, 999, want_before);
    th_mock_stats st;
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    TH_ASSERT_MSG(st.items[SIG_TRACES] == want_before + 3, "upstream got %ld spans, want %ld",
                  st.items[SIG_TRACES], want_before + 3);
}

static void t_concurrent_streams(void)
{
    char why[512];
    th_stack *s = start(NULL, NULL);
    th_h2 *h = client(s);
    th_expect *e = th_expect_new();
    TH_ASSERT(e);
    int32_t ids[64];
    for (int i = 0; i < 64; i++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, 100 + (uint32_t)i, 4);
        TH_ASSERT(d && th_expect_add(e, d) == 0);
        ids[i] = th_h2_grpc(h, TRACES, NULL, 0, d->pb, d->pb_len);
        TH_ASSERT(ids[i] > 0);
    }
    TH_ASSERT_MSG(th_h2_wait(h, 20000) == 0, "not every stream was answered");
    for (int i = 0; i < 64; i++) assert_status(th_h2_get(h, ids[i]), OK);
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, 15000, why, sizeof why) == 0,
                  "%s", why);
}

/* Flow control: messages far larger than the 1 MiB stream window and, all
 * together, than the 4 MiB connection window go through on one connection
 * (the receiver opens its windows as it consumes). */
static void t_flow_control(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = client(s);
    int32_t ids[3];
    size_t total = 0;
    for (int i = 0; i < 3; i++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, 300 + (uint32_t)i, 30000);
        TH_ASSERT(d && d->pb_len > 2 * 1024 * 1024);
        total += d->pb_len;
        ids[i] = th_h2_grpc(h, TRACES, NULL, 0, d->pb, d->pb_len);
        TH_ASSERT(ids[i] > 0);
    }
    TH_ASSERT_MSG(th_h2_wait(h, 30000) == 0, "large calls not answered");
    for (int i = 0; i < 3; i++) assert_status(th_h2_get(h, ids[i]), OK);
    printf("# %zu bytes in 3 calls on one connection\n", total);
    TH_ASSERT(th_stack_wait_items(s, SIG_TRACES, 90000, 20000) == 90000);
}

static void t_compressed(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = client(s);
    th_otlp *d = th_otlp_new(SIG_LOGS, 7, 6);
    size_t zl = 0;
    uint8_t *z = th_compress("gzip", d->pb, d->pb_len, &zl);
    TH_ASSERT(z);
    const th_h2_result *r = call(h, LOGS, "gzip", 1, z, zl);
    free(z);
    assert_status(r, OK);
    TH_ASSERT_MSG(strstr(r->accept_encoding, "gzip") && strstr(r->accept_encoding, "zstd"),
                  "grpc-accept-encoding \"%s\"", r->accept_encoding);
    TH_ASSERT(th_stack_wait_items(s, SIG_LOGS, 6, 10000) == 6);
    z = th_compress("zstd", d->pb, d->pb_len, &zl);
    TH_ASSERT(z);
    r = call(h, LOGS, "zstd", 1, z, zl);
    free(z);
    assert_status(r, OK);
    TH_ASSERT(th_stack_wait_items(s, SIG_LOGS, 12, 10000) == 12);
    r = call(h, LOGS, "identity", 0, d->pb, d->pb_len); /* flag 0 with any encoding */
    assert_status(r, OK);
    TH_ASSERT(th_stack_wait_items(s, SIG_LOGS, 18, 10000) == 18);
    r = call(h, LOGS, "br", 1, d->pb, d->pb_len);
    assert_status(r, UNIMPLEMENTED);
}

static size_t put_len(uint8_t *p, uint8_t tag, size_t len)
{
    size_t n = 0;
    p[n++] = tag;
    for (; len >= 0x80; len >>= 7) p[n++] = (uint8_t)(len | 0x80);
    p[n++] = (uint8_t)len;
    return n;
}

/* A valid traces request of one span whose name is `name_len` 'a's: it
 * compresses to almost nothing. Returns its length in out (room for
 * name_len + 64). */
static size_t squashy_request(uint8_t *out, size_t name_len)
{
    uint8_t span[64];
    size_t sp = 0;
    sp += put_len(span + sp, 0x0a, 16);
    memset(span + sp, 1, 16);
    sp += 16;
    sp += put_len(span + sp, 0x12, 8);
    memset(span + sp, 2, 8);
    sp += 8;
    sp += put_len(span + sp, 0x2a, name_len); /* name: header only, bytes follow */
    size_t span_len = sp + name_len;
    uint8_t h1[8], h2[8], h3[8];
    size_t n3 = put_len(h3, 0x12, span_len);               /* ScopeSpans.spans */
    size_t n2 = put_len(h2, 0x12, n3 + span_len);          /* ResourceSpans.scope_spans */
    size_t n1 = put_len(h1, 0x0a, n2 + n3 + span_len);     /* request.resource_spans */
    size_t n = 0;
    memcpy(out + n, h1, n1), n += n1;
    memcpy(out + n, h2, n2), n += n2;
    memcpy(out + n, h3, n3), n += n3;
    memcpy(out + n, span, sp), n += sp;
    memset(out + n, 'a', name_len);
    return n + name_len;
}

/* max_request_body_size 4KiB: a bigger message, or one that decompresses
 * past it, gets RESOURCE_EXHAUSTED and is not forwarded. */
static void t_too_large(void)
{
    th_stack *s = start(NULL, "4KiB");
    th_h2 *h = client(s);
    th_otlp *big = th_otlp_new(SIG_TRACES, 11, 200);
    TH_ASSERT(big && big->pb_len > 8 * 1024);
    const th_h2_result *r = call(h, TRACES, NULL, 0, big->pb, big->pb_len);
    assert_status(r, RESOURCE_EXHAUSTED);
    static uint8_t squashy[64 * 1024];
    size_t sl = squashy_request(squashy, 60000);
    size_t zl = 0;
    uint8_t *z = th_compress("gzip", squashy, sl, &zl);
    TH_ASSERT(z && zl < 4096);
    r = call(h, TRACES, "gzip", 1, z, zl);
    free(z);
    assert_status(r, RESOURCE_EXHAUSTED);
    TH_ASSERT_MSG(strstr(r->grpc_message, "larger than"), "grpc-message \"%s\"", r->grpc_message);
    nothing_forwarded(s, 0);
    const char *m = th_stack_metrics(s);
    TH_ASSERT(m);
    double n = th_prom_sum(m, "spillway_receiver_requests_total",
                           "code=\"RESOURCE_EXHAUSTED\",transport=\"grpc\"", NULL);
    TH_ASSERT_MSG(n == 2, "RESOURCE_EXHAUSTED counted %g times", n);
}

static void t_invalid(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = client(s);
    /* garbage protobuf: a field 1 length running past the end */
    static const uint8_t garbage[] = {0x0a, 0x50, 0x01, 0x02, 0x03};
    assert_status(call(h, TRACES, NULL, 0, garbage, sizeof garbage), INVALID_ARGUMENT);
    /* truncated length prefix: 3 of 5 prefix bytes, then END_STREAM */
    static const uint8_t part[] = {0, 0, 0};
    int32_t id = th_h2_start(h, TRACES, "application/grpc", NULL, part, sizeof part, 1);
    TH_ASSERT(id > 0 && th_h2_wait(h, 10000) == 0);
    assert_status(th_h2_get(h, id), INVALID_ARGUMENT);
    /* the prefix announces 100 bytes, 10 arrive */
    static const uint8_t shortmsg[15] = {0, 0, 0, 0, 100};
    id = th_h2_start(h, TRACES, "application/grpc", NULL, shortmsg, sizeof shortmsg, 1);
    TH_ASSERT(id > 0 && th_h2_wait(h, 10000) == 0);
    assert_status(th_h2_get(h, id), INVALID_ARGUMENT);
    /* two messages in a unary call */
    static const uint8_t two[10] = {0};
    id = th_h2_start(h, TRACES, "application/grpc", NULL, two, sizeof two, 1);
    TH_ASSERT(id > 0 && th_h2_wait(h, 10000) == 0);
    assert_status(th_h2_get(h, id), INVALID_ARGUMENT);
    /* compressed flag without grpc-encoding */
    th_otlp *d = th_otlp_new(SIG_TRACES, 5, 2);
    const th_h2_result *r = call(h, TRACES, NULL, 1, d->pb, d->pb_len);
    TH_ASSERT_MSG(r->grpc_status == INTERNAL, "compressed flag alone: %d", r->grpc_status);
    /* wrong content-type */
    uint8_t framed[4096];
    framed[0] = 0;
    framed[1] = framed[2] = 0;
    framed[3] = (uint8_t)(d->pb_len >> 8);
    framed[4] = (uint8_t)d->pb_len;
    memcpy(framed + 5, d->pb, d->pb_len);
    id = th_h2_start(h, TRACES, "application/json", NULL, framed, d->pb_len + 5, 1);
    TH_ASSERT(id > 0 && th_h2_wait(h, 10000) == 0);
    assert_status(th_h2_get(h, id), INVALID_ARGUMENT);
    nothing_forwarded(s, 0);
}

static void t_unknown_method(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = client(s);
    th_otlp *d = th_otlp_new(SIG_TRACES, 5, 2);
    assert_status(call(h, "/opentelemetry.proto.collector.trace.v1.TraceService/Ping", NULL, 0,
                       d->pb, d->pb_len), UNIMPLEMENTED);
    assert_status(call(h, "/grpc.health.v1.Health/Check", NULL, 0, d->pb, d->pb_len),
                  UNIMPLEMENTED);
    nothing_forwarded(s, 0);
}

/* grpc-timeout: a call whose message never completes gets
 * DEADLINE_EXCEEDED. */
static void t_deadline(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = client(s);
    static const uint8_t part[] = {0, 0, 0, 0, 50, 1, 2};
    const char *extra[] = {"grpc-timeout", "200m", NULL};
    int32_t id = th_h2_start(h, TRACES, "application/grpc", extra, part, sizeof part, 0);
    TH_ASSERT(id > 0);
    TH_ASSERT_MSG(th_h2_wait(h, 10000) == 0, "no answer after the deadline");
    assert_status(th_h2_get(h, id), DEADLINE_EXCEEDED);
}

/* Checks grpc-status-details-bin: a google.rpc.Status with the code and a
 * RetryInfo detail. */
static void assert_retry_info(const th_h2_result *r, int code)
{
    uint8_t raw[1024];
    size_t n = 0;
    TH_ASSERT_MSG(r->details_b64[0], "no grpc-status-details-bin");
    TH_ASSERT(oj_b64_decode(r->details_b64, strlen(r->details_b64), raw, &n) == 0);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, n, raw);
    TH_ASSERT_MSG(st, "grpc-status-details-bin is not a google.rpc.Status");
    int ok = st->code == code && st->n_details == 1 &&
             strcmp(st->details[0]->type_url, "type.googleapis.com/google.rpc.RetryInfo") == 0;
    Google__Rpc__RetryInfo *ri = ok ? google__rpc__retry_info__unpack(
                                          NULL, st->details[0]->value.len,
                                          st->details[0]->value.data)
                                    : NULL;
    int delay = ri && ri->retry_delay ? (int)ri->retry_delay->seconds : -1;
    google__rpc__retry_info__free_unpacked(ri, NULL);
    google__rpc__status__free_unpacked(st, NULL);
    TH_ASSERT_MSG(ok, "status details: wrong code or detail type");
    TH_ASSERT_MSG(delay >= 1, "RetryInfo.retry_delay %d s", delay);
}

/* SIGTERM with a call half sent: while spillway drains (the upstream holds
 * an earlier request for 2 s, so the drain lasts), the pipeline refuses and
 * the call completes with UNAVAILABLE + RetryInfo; at the end of the drain
 * GOAWAY arrives; nothing of the refused call is forwarded. */
static void t_shutdown_unavailable(void)
{
    th_stack_opts o = {0};
    o.grpc_yaml = "";
    o.mock_args[0] = "--latency-ms";
    o.mock_args[1] = "2000";
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_h2 *h = client(s);
    th_otlp *first = th_otlp_new(SIG_TRACES, 20, 3), *d = th_otlp_new(SIG_TRACES, 21, 5);
    assert_status(call(h, TRACES, NULL, 0, first->pb, first->pb_len), OK);
    uint8_t hdr[5] = {0, 0, 0, (uint8_t)(d->pb_len >> 8), (uint8_t)d->pb_len};
    int32_t id = th_h2_start(h, TRACES, "application/grpc", NULL, hdr, 5, 0);
    TH_ASSERT(id > 0);
    th_mock_stats st;
    int64_t deadline = th_now_ms() + 10000; /* the first request is held upstream */
    while (th_now_ms() < deadline && !(th_stack_mock_stats(s, &st) == 0 && st.requests[SIG_TRACES] > 0))
        th_nap_ms(10);
    TH_ASSERT_MSG(st.requests[SIG_TRACES] > 0, "the first request never reached the upstream");
    TH_ASSERT(th_proc_signal(th_stack_spillway(s), SIGTERM) == 0);
    deadline = th_now_ms() + 10000;
    const th_resp *r = NULL;
    while (th_now_ms() < deadline) { /* the pipeline stops taking requests */
        r = th_stack_telemetry(s, "/readyz");
        if (r && r->status == 503) break;
        th_nap_ms(10);
    }
    TH_ASSERT_MSG(r && r->status == 503, "/readyz never turned 503 after SIGTERM");
    TH_ASSERT(th_h2_send_data(h, id, d->pb, d->pb_len, 1) == 0);
    TH_ASSERT_MSG(th_h2_wait(h, 10000) == 0, "the open call was not answered");
    const th_h2_result *res = th_h2_get(h, id);
    assert_status(res, UNAVAILABLE);
    assert_retry_info(res, UNAVAILABLE);
    TH_ASSERT_MSG(th_h2_wait_end(h, 15000) && th_h2_goaway(h, NULL), "no GOAWAY at the end of the drain");
    TH_ASSERT(th_stack_wait_items(s, SIG_TRACES, 3, 10000) == 3);
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    TH_ASSERT_EQ_INT(st.items[SIG_TRACES], 3);
}

/* Backpressure: a slow upstream, a 64 KiB queue and a 1 MiB DLQ; once
 * both are full the calls get UNAVAILABLE + RetryInfo; what was accepted
 * arrives upstream when it recovers, exactly; nothing refused does. */
static void t_backpressure_unavailable(void)
{
    th_stack_opts o = {.queue_max_bytes = "64KiB",
                       .batch_max_bytes = "16KiB",
                       .exporter_yaml = "    max_in_flight: 4\n",
                       .dlq_yaml = "  segment_size: 1MiB\n  max_size: 1MiB\n"
                                   "  replay: { rate: 64MiB }\n",
                       .mock_args = {"--latency-ms", "2000"}};
    o.grpc_yaml = "";
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_h2 *h = client(s);
    long accepted = 0, refused = 0;
    int extra = -1;
    for (int k = 0; k < 4000 && extra < 3; k++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, 7000 + (uint32_t)k, 100);
        TH_ASSERT(d);
        const th_h2_result *r = call(h, TRACES, NULL, 0, d->pb, d->pb_len);
        if (r->grpc_status == UNAVAILABLE) {
            assert_retry_info(r, UNAVAILABLE);
            refused++;
            if (extra < 0) extra = 0;
        } else {
            assert_status(r, OK);
            accepted++;
        }
        if (extra >= 0) extra++;
        th_otlp_free(d);
    }
    printf("# %ld calls accepted, %ld refused with UNAVAILABLE + RetryInfo\n", accepted, refused);
    TH_ASSERT_MSG(refused > 0, "no UNAVAILABLE from a full queue and DLQ");
    TH_ASSERT(th_stack_mock_post(s, "/admin/latency?ms=0") == 200);
    long want = accepted * 100;
    TH_ASSERT_MSG(th_stack_wait_items(s, SIG_TRACES, want, 60000) == want,
                  "upstream did not get the %ld accepted spans", want);
    th_mock_stats st;
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    TH_ASSERT_MSG(st.items[SIG_TRACES] == want, "upstream got %ld spans, want %ld",
                  st.items[SIG_TRACES], want);
    const char *m = th_stack_metrics(s);
    TH_ASSERT(m);
    double n = th_prom_sum(m, "spillway_receiver_refused_items_total",
                           "reason=\"queue_full\",transport=\"grpc\"", NULL);
    TH_ASSERT_MSG(n == (double)refused * 100, "refused items counted %g, want %ld", n, refused * 100);
    double hr = th_prom_sum(m, "spillway_receiver_refused_items_total", "transport=\"http\"", NULL);
    TH_ASSERT_MSG(hr == 0, "gRPC refusals also counted under http: %g", hr);
}

/* One intake budget for both receivers (receivers.otlp.intake_memory
 * 4 MiB, messages up to 1 MiB): five gRPC calls each hold a ~800 KB
 * message open (all but its last byte; each buffer is charged 1 MiB), so
 * at most four fit and the others get UNAVAILABLE + RetryInfo; while they
 * are held, an HTTP body gets 503 + Retry-After; completed, the held calls
 * are answered OK and forwarded exactly; then both receivers serve again.
 * RSS stays within baseline + intake_memory + slack. */
#define HELD 5
static void t_shared_intake_budget(void)
{
    th_stack_opts o = {.max_body = "1MiB", .receiver_yaml = "    intake_memory: 4MiB\n"};
    o.grpc_yaml = "";
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    pid_t pid = th_proc_pid(th_stack_spillway(s));
    long base = th_proc_rss_kib(pid), peak = base;
    th_otlp *big = th_otlp_new(SIG_TRACES, 4000, 10000);
    TH_ASSERT(big && big->pb_len > 512 * 1024 && big->pb_len + 5 < 1024 * 1024);
    uint8_t hdr[5] = {0, (uint8_t)(big->pb_len >> 24), (uint8_t)(big->pb_len >> 16),
                      (uint8_t)(big->pb_len >> 8), (uint8_t)big->pb_len};
    th_h2 *h[HELD];
    int32_t id[HELD];
    for (int i = 0; i < HELD; i++) {
        h[i] = client(s);
        id[i] = th_h2_start(h[i], TRACES, "application/grpc", NULL, hdr, 5, 0);
        TH_ASSERT(id[i] > 0);
        /* a call refused at its prefix may be answered (and its stream
         * closed) while the client is still sending */
        if (th_h2_send_data(h[i], id[i], big->pb, big->pb_len - 1, 0) != 0) {
            th_h2_wait_end(h[i], 1000);
            const th_h2_result *r = th_h2_get(h[i], id[i]);
            TH_ASSERT_MSG(r && r->closed, "call %d: sending failed on an open stream", i);
        }
    }
    /* Every message is announced and nearly sent: wait for the refusals. */
    int refused = 0;
    int64_t deadline = th_now_ms() + 20000;
    while (refused == 0 && th_now_ms() < deadline) {
        for (int i = 0; i < HELD; i++) {
            th_h2_wait_end(h[i], 10);
            const th_h2_result *r = th_h2_get(h[i], id[i]);
            refused += r && r->closed;
        }
    }
    TH_ASSERT_MSG(refused > 0, "%d calls of 1 MiB each all held in a 4 MiB budget", HELD);
    long rss = th_proc_rss_kib(pid);
    if (rss > peak) peak = rss;
    /* HTTP shares the budget: a body does not fit while the calls hold it. */
    th_http *c = th_stack_client(s);
    const th_resp *hr = th_http_request(c, "POST", "/v1/traces",
                                        "Content-Type: application/x-protobuf\r\n", big->pb,
                                        big->pb_len);
    TH_ASSERT_MSG(hr, "HTTP: %s", th_http_error(c));
    char ra[16];
    TH_ASSERT_MSG(hr->status == 503, "HTTP answered %d while gRPC held the budget", hr->status);
    TH_ASSERT_MSG(th_resp_header(hr, "Retry-After", ra, sizeof ra), "503 without Retry-After");
    th_http_disconnect(c);
    /* Complete the held calls: OK and forwarded; the refused ones carry
     * RetryInfo. */
    int ok = 0;
    for (int i = 0; i < HELD; i++) {
        const th_h2_result *r = th_h2_get(h[i], id[i]);
        if (!r->closed)
            TH_ASSERT(th_h2_send_data(h[i], id[i], big->pb + big->pb_len - 1, 1, 1) == 0);
        TH_ASSERT_MSG(th_h2_wait(h[i], 10000) == 0, "call %d not answered", i);
        r = th_h2_get(h[i], id[i]);
        if (r->grpc_status == OK) {
            ok++;
            continue;
        }
        assert_status(r, UNAVAILABLE);
        assert_retry_info(r, UNAVAILABLE);
    }
    printf("# intake 4 MiB: %d of %d gRPC calls held, %d refused; HTTP 503 meanwhile; "
           "RSS base %ld KiB, peak %ld KiB\n", ok, HELD, HELD - ok, base, peak);
    TH_ASSERT_MSG(ok >= 2 && ok <= 4, "%d calls of 1 MiB held in a 4 MiB budget", ok);
    long want = (long)ok * 10000;
    TH_ASSERT_MSG(th_stack_wait_items(s, SIG_TRACES, want, 20000) == want,
                  "upstream did not get the %ld spans of the held calls", want);
    /* The budget is free again: HTTP and gRPC are both served. */
    th_otlp *d = th_otlp_new(SIG_TRACES, 4001, 3);
    TH_ASSERT(d);
    hr = th_http_request(c, "POST", "/v1/traces", "Content-Type: application/x-protobuf\r\n",
                         d->pb, d->pb_len);
    TH_ASSERT_MSG(hr && hr->status == 200, "HTTP after the release: %d", hr ? hr->status : 0);
    served(s, 4002, want + 3);
    if (th_proc_has_asan(pid))
        printf("# skipped: peak RSS bound under AddressSanitizer (shadow memory and quarantine); "
               "make test checks it\n");
    else
        TH_ASSERT_MSG(peak <= base + 4 * 1024 + 16 * 1024, "peak RSS %ld KiB, base %ld KiB",
                      peak, base);
}

/* ---- hostile connections ------------------------------------------------ */

/* After an attack on `bad`, it ended in a connection error, spillway lives,
 * serves others, and stays under a memory bound. */
static void survived(th_stack *s, th_h2 *bad, long base, const char *what)
{
    TH_ASSERT_MSG(th_h2_raw_wait_close(bad, 10000), "%s: the connection was not closed", what);
    TH_ASSERT_MSG(th_proc_alive(th_stack_spillway(s)), "%s: spillway died", what);
    served(s, 500, base);
    long rss = th_proc_rss_kib(th_proc_pid(th_stack_spillway(s)));
    printf("# %s: spillway RSS %ld KiB after the attack\n", what, rss);
    if (th_proc_has_asan(th_proc_pid(th_stack_spillway(s))))
        printf("# skipped: %s: RSS bound under AddressSanitizer (shadow memory and quarantine); "
               "make test checks it\n", what);
    else
        TH_ASSERT_MSG(rss > 0 && rss < 256 * 1024, "%s: RSS %ld KiB", what, rss);
}

static th_h2 *raw(th_stack *s, int preface)
{
    th_h2 *h = th_h2_connect(th_stack_grpc_port(s), 0);
    TH_ASSERT(h);
    if (preface) {
        buf b;
        buf_init(&b, 1024);
        buf_append(&b, th_h2_preface, 24);
        th_h2_frame(&b, 4 /* SETTINGS */, 0, 0, NULL, 0);
        TH_ASSERT(th_h2_send_raw(h, b.data, b.len) == 0);
        buf_destroy(&b);
    }
    return h;
}

static void t_bad_preface(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = raw(s, 0);
    static const char req[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    th_h2_send_raw(h, req, sizeof req - 1);
    survived(s, h, 0, "bad preface");
}

static void t_garbage_frames(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = raw(s, 1);
    uint8_t junk[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) {
        x = x * 1103515245u + 12345u;
        junk[i] = (uint8_t)(x >> 16);
    }
    th_h2_send_raw(h, junk, sizeof junk);
    survived(s, h, 0, "garbage frames");
    uint32_t code = 0;
    TH_ASSERT_MSG(th_h2_goaway(h, &code) && code != 0, "no GOAWAY with an error code");
}

/* HEADERS flood: thousands of streams opened and never finished, far over
 * SETTINGS_MAX_CONCURRENT_STREAMS. */
static void t_headers_flood(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = raw(s, 1);
    buf b;
    buf_init(&b, 64 * 1024 * 1024);
    /* HPACK: :method POST (idx 3), :scheme http (6), :path / (4) */
    static const uint8_t hb[] = {0x83, 0x86, 0x84};
    for (uint32_t id = 1; id < 2 * 5000; id += 2)
        th_h2_frame(&b, 1 /* HEADERS */, 4 /* END_HEADERS */, id, hb, sizeof hb);
    th_h2_send_raw(h, b.data, b.len);
    buf_destroy(&b);
    survived(s, h, 0, "HEADERS flood");
}

static void t_settings_flood(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = raw(s, 1);
    buf b;
    buf_init(&b, 64 * 1024 * 1024);
    static const uint8_t iv[6] = {0, 3, 0, 0, 0, 100}; /* MAX_CONCURRENT_STREAMS 100 */
    for (int i = 0; i < 20000; i++) th_h2_frame(&b, 4, 0, 0, iv, sizeof iv);
    th_h2_send_raw(h, b.data, b.len);
    buf_destroy(&b);
    survived(s, h, 0, "SETTINGS flood");
}

static void t_ping_flood(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = raw(s, 1);
    buf b;
    buf_init(&b, 64 * 1024 * 1024);
    static const uint8_t op[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    for (int i = 0; i < 20000; i++) th_h2_frame(&b, 6 /* PING */, 0, 0, op, sizeof op);
    th_h2_send_raw(h, b.data, b.len);
    buf_destroy(&b);
    survived(s, h, 0, "PING flood");
}

/* WINDOW_UPDATE abuse: zero increments by the thousand, then an overflow. */
static void t_window_update_abuse(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = raw(s, 1);
    buf b;
    buf_init(&b, 64 * 1024 * 1024);
    static const uint8_t one[4] = {0, 0, 0, 1}, max[4] = {0x7f, 0xff, 0xff, 0xff};
    for (int i = 0; i < 5000; i++) th_h2_frame(&b, 8 /* WINDOW_UPDATE */, 0, 0, one, 4);
    th_h2_frame(&b, 8, 0, 0, max, 4);
    th_h2_frame(&b, 8, 0, 0, max, 4);
    th_h2_send_raw(h, b.data, b.len);
    buf_destroy(&b);
    survived(s, h, 0, "WINDOW_UPDATE abuse");
    uint32_t code = 0;
    TH_ASSERT_MSG(th_h2_goaway(h, &code) && code != 0, "no GOAWAY with an error code");
}

/* Rapid reset (CVE-2023-44487): streams opened and cancelled at once. */
static void t_rapid_reset(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = raw(s, 1);
    buf b;
    buf_init(&b, 64 * 1024 * 1024);
    /* :method POST, :scheme http, :path (literal, indexed name 4) */
    uint8_t hb[80];
    size_t pl = strlen(TRACES);
    hb[0] = 0x83;
    hb[1] = 0x86;
    hb[2] = 0x04;
    hb[3] = (uint8_t)pl;
    memcpy(hb + 4, TRACES, pl);
    static const uint8_t cancel[4] = {0, 0, 0, 8};
    for (uint32_t id = 1; id < 2 * 3000; id += 2) {
        th_h2_frame(&b, 1, 4, id, hb, 4 + pl);
        th_h2_frame(&b, 3 /* RST_STREAM */, 0, id, cancel, 4);
    }
    th_h2_send_raw(h, b.data, b.len);
    buf_destroy(&b);
    survived(s, h, 0, "rapid reset");
    uint32_t code = 0;
    TH_ASSERT_MSG(th_h2_goaway(h, &code) && code == 11 /* ENHANCE_YOUR_CALM */,
                  "GOAWAY code %u", code);
}

/* PING is answered (by nghttp2), on a connection that also serves calls. */
static void t_ping(void)
{
    th_stack *s = start(NULL, NULL);
    th_h2 *h = client(s);
    TH_ASSERT(th_h2_ping(h) == 0 && th_h2_ping(h) == 0);
    int64_t deadline = th_now_ms() + 10000;
    while (th_h2_pongs(h) < 2 && th_now_ms() < deadline && !th_h2_wait_end(h, 20)) {}
    TH_ASSERT_EQ_INT(th_h2_pongs(h), 2);
    th_otlp *d = th_otlp_new(SIG_TRACES, 8, 1);
    assert_status(call(h, TRACES, NULL, 0, d->pb, d->pb_len), OK);
}

/* Idle connections get GOAWAY and close; streams waiting keep theirs. */
static void t_idle_timeout(void)
{
    th_stack *s = start("      idle_timeout: 300ms\n", NULL);
    th_h2 *h = client(s);
    int64_t t0 = th_now_ms();
    TH_ASSERT_MSG(th_h2_wait_end(h, 10000), "idle connection not closed");
    printf("# idle connection closed after %lld ms\n", (long long)(th_now_ms() - t0));
    TH_ASSERT(th_h2_goaway(h, NULL));
    served(s, 1, 0);
}

/* max_connections 3: a fourth connection is closed at once; the three
 * still work. */
static void t_connection_limit(void)
{
    th_stack *s = start("      max_connections: 3\n", NULL);
    th_h2 *c[3];
    th_otlp *d = th_otlp_new(SIG_TRACES, 3, 1);
    for (int i = 0; i < 3; i++) {
        c[i] = client(s);
        assert_status(call(c[i], TRACES, NULL, 0, d->pb, d->pb_len), OK);
    }
    th_h2 *extra = raw(s, 1);
    TH_ASSERT_MSG(th_h2_raw_wait_close(extra, 10000), "a 4th connection was kept");
    for (int i = 0; i < 3; i++) assert_status(call(c[i], TRACES, NULL, 0, d->pb, d->pb_len), OK);
    TH_ASSERT(th_stack_wait_items(s, SIG_TRACES, 6, 10000) == 6);
}

/* The load generator's gRPC mode against the receiver: every request OK,
 * every item upstream exactly once (its --verify). */
static void t_loadgen_grpc(void)
{
    char bin[300], ep[64], mock[64], log[300];
    th_stack *s = start(NULL, NULL);
    snprintf(bin, sizeof bin, "%s/spillway-loadgen", th_bin_dir());
    snprintf(ep, sizeof ep, "http://127.0.0.1:%u", th_stack_grpc_port(s));
    snprintf(mock, sizeof mock, "http://127.0.0.1:%u", th_stack_mock_port(s));
    snprintf(log, sizeof log, "%s/loadgen.log", th_stack_dir(s));
    char *argv[] = {bin, "--protocol", "grpc", "--endpoint", ep, "--signal", "traces,metrics,logs",
                    "--compression", "gzip", "--count", "60", "--rate", "0", "--connections", "3",
                    "--verify", "--verify-url", mock, "--quiet", NULL};
    th_proc *p = th_proc_start(argv, NULL, log);
    TH_ASSERT(p);
    int status = 0;
    TH_ASSERT_MSG(th_proc_wait_exit(p, 60000, &status) == 0, "loadgen did not finish");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) th_print_tail(log, 20);
    TH_ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "loadgen status %d", status);
}

int main(void)
{
    TH_ICASE(t_concurrent_streams);
    TH_ICASE(t_flow_control);
    TH_ICASE(t_compressed);
    TH_ICASE(t_too_large);
    TH_ICASE(t_invalid);
    TH_ICASE(t_unknown_method);
    TH_ICASE(t_deadline);
    TH_ICASE(t_shutdown_unavailable);
    TH_ICASE(t_backpressure_unavailable);
    TH_ICASE(t_shared_intake_budget);
    TH_ICASE(t_bad_preface);
    TH_ICASE(t_garbage_frames);
    TH_ICASE(t_headers_flood);
    TH_ICASE(t_settings_flood);
    TH_ICASE(t_ping_flood);
    TH_ICASE(t_window_update_abuse);
    TH_ICASE(t_rapid_reset);
    TH_ICASE(t_ping);
    TH_ICASE(t_idle_timeout);
    TH_ICASE(t_connection_limit);
    TH_ICASE(t_loadgen_grpc);
    return th_done();
}
