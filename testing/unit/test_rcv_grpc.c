/* test_rcv_grpc.c — the OTLP/gRPC receiver without sockets: framing,
 * decode and encoders (rcv_grpc_frame.h), and nghttp2 server sessions
 * (rcv_grpc_h2.c) driven from memory with a fake pipeline. */
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "receivers/otlp/rcv_grpc_frame.h"
#include "receivers/otlp/rcv_grpc_int.h"
#include "runtime/budget.h"
#include "runtime/codec.h"
#include "runtime/err.h"
#include "runtime/otlp_json.h"
#include "testing/lib/th.h"
#include "testing/lib/th_h2.h"
#include "testing/lib/th_otlp.h"

#define TRACES "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

static void t_route_and_headers(void)
{
    TH_ASSERT_EQ_INT(rg_route(TRACES, strlen(TRACES)), SIG_TRACES);
    const char *m = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    TH_ASSERT_EQ_INT(rg_route(m, strlen(m)), SIG_METRICS);
    const char *l = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    TH_ASSERT_EQ_INT(rg_route(l, strlen(l)), SIG_LOGS);
    TH_ASSERT_EQ_INT(rg_route(TRACES, strlen(TRACES) - 1), -1);
    TH_ASSERT_EQ_INT(rg_route("/x", 2), -1);
    TH_ASSERT(rg_content_type_ok("application/grpc", 16));
    TH_ASSERT(rg_content_type_ok("application/grpc+proto", 22));
    TH_ASSERT(rg_content_type_ok("Application/GRPC; charset=x", 27));
    TH_ASSERT(!rg_content_type_ok("application/grpc+json", 21));
    TH_ASSERT(!rg_content_type_ok("application/grpcx", 17));
    TH_ASSERT(!rg_content_type_ok("application/json", 16));
    TH_ASSERT_EQ_INT(rg_parse_encoding(NULL, 0), RCV_CE_IDENTITY);
    TH_ASSERT_EQ_INT(rg_parse_encoding("gzip", 4), RCV_CE_GZIP);
    TH_ASSERT_EQ_INT(rg_parse_encoding("zstd", 4), RCV_CE_ZSTD);
    TH_ASSERT_EQ_INT(rg_parse_encoding("identity", 8), RCV_CE_IDENTITY);
    TH_ASSERT_EQ_INT(rg_parse_encoding("x-gzip", 6), RCV_CE_UNKNOWN);
    TH_ASSERT_EQ_INT(rg_parse_encoding("br", 2), RCV_CE_UNKNOWN);
    int64_t ns = 0;
    TH_ASSERT_EQ_INT(rg_parse_timeout("100m", 4, &ns), 0);
    TH_ASSERT_EQ_INT(ns, 100000000);
    TH_ASSERT_EQ_INT(rg_parse_timeout("2H", 2, &ns), 0);
    TH_ASSERT_EQ_INT(ns, 7200LL * 1000000000);
    TH_ASSERT_EQ_INT(rg_parse_timeout("99999999n", 9, &ns), 0);
    TH_ASSERT_EQ_INT(ns, 99999999);
    TH_ASSERT_EQ_INT(rg_parse_timeout("123456789S", 10, &ns), SW_EINVAL); /* 9 digits */
    TH_ASSERT_EQ_INT(rg_parse_timeout("10x", 3, &ns), SW_EINVAL);
    TH_ASSERT_EQ_INT(rg_parse_timeout("S", 1, &ns), SW_EINVAL);
    TH_ASSERT_EQ_INT(rg_parse_timeout("-1S", 3, &ns), SW_EINVAL);
}

static size_t prefix(uint8_t *out, int flag, size_t len)
{
    out[0] = (uint8_t)flag;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
    return 5;
}

static void t_reader_and_decode(void)
{
    th_otlp *d = th_otlp_new(SIG_TRACES, 3, 4);
    TH_ASSERT(d);
    uint8_t p[5];
    prefix(p, 0, d->pb_len);
    rg_reader r;
    rg_reader_init(&r, 1 << 20);
    /* byte by byte through the prefix, then the rest */
    for (int i = 0; i < 5; i++) TH_ASSERT_EQ_INT(rg_reader_feed(&r, p + i, 1), 0);
    TH_ASSERT_EQ_INT(rg_reader_feed(&r, d->pb, d->pb_len), 0);
    TH_ASSERT(r.complete);
    rg_decoded out;
    rg_decode(&r, SIG_TRACES, RCV_CE_IDENTITY, 1 << 20, NULL, &out);
    TH_ASSERT_EQ_INT(out.status, RG_OK);
    TH_ASSERT_EQ_INT(out.res.items, 4);
    TH_ASSERT_EQ_INT(out.res.pb_len, d->pb_len);
    rg_decoded_destroy(&out);
    TH_ASSERT_EQ_INT(rg_reader_feed(&r, p, 1), SW_EDECODE); /* a second message */
    rg_reader_destroy(&r);

    rg_reader_init(&r, 100);
    prefix(p, 0, 101);
    TH_ASSERT_EQ_INT(rg_reader_feed(&r, p, 5), SW_ETOOBIG);
    TH_ASSERT_EQ_INT(rg_reader_buffered(&r), 0);
    rg_reader_destroy(&r);

    rg_reader_init(&r, 100);
    prefix(p, 2, 1);
    TH_ASSERT_EQ_INT(rg_reader_feed(&r, p, 5), SW_EDECODE); /* flag 2 */
    rg_reader_destroy(&r);

    rg_reader_init(&r, 100);
    TH_ASSERT_EQ_INT(rg_reader_feed(&r, p, 3), 0);
    rg_decode(&r, SIG_TRACES, RCV_CE_IDENTITY, 100, NULL, &out);
    TH_ASSERT_EQ_INT(out.status, RG_INVALID_ARGUMENT);
    TH_ASSERT(strstr(out.res.message, "truncated"));
    rg_decoded_destroy(&out);
    rg_reader_destroy(&r);

    rg_reader_init(&r, 100);
    rg_decode(&r, SIG_TRACES, RCV_CE_IDENTITY, 100, NULL, &out);
    TH_ASSERT_EQ_INT(out.status, RG_INVALID_ARGUMENT); /* no message at all */
    rg_decoded_destroy(&out);
    rg_reader_destroy(&r);
}

static void t_decode_compressed(void)
{
    th_otlp *d = th_otlp_new(SIG_LOGS, 9, 5);
    buf z;
    buf_init(&z, 1 << 20);
    TH_ASSERT_EQ_INT(codec_gzip(d->pb, d->pb_len, &z, 6), 0);
    uint8_t p[5];
    rg_reader r;
    rg_decoded out;
    rg_reader_init(&r, 1 << 20);
    prefix(p, 1, z.len);
    TH_ASSERT_EQ_INT(rg_reader_feed(&r, p, 5), 0);
    TH_ASSERT_EQ_INT(rg_reader_feed(&r, z.data, z.len), 0);
    rg_decode(&r, SIG_LOGS, RCV_CE_GZIP, 1 << 20, NULL, &out);
    TH_ASSERT_EQ_INT(out.status, RG_OK);
    TH_ASSERT_EQ_INT(out.res.items, 5);
    TH_ASSERT_EQ_INT(out.res.pb_len, d->pb_len);
    TH_ASSERT_MEM_EQ(out.res.pb, d->pb, d->pb_len);
    rg_decoded_destroy(&out);
    /* the decompression limit (here the cap) is charged to the intake
     * budget until the result is destroyed; when it does not fit now, the
     * call is told to retry (UNAVAILABLE) */
    budget *mem = budget_new(2 << 20);
    TH_ASSERT(mem);
    rg_decode(&r, SIG_LOGS, RCV_CE_GZIP, 1 << 20, mem, &out);
    TH_ASSERT_EQ_INT(out.status, RG_OK);
    TH_ASSERT_EQ_INT(budget_used(mem), 1 << 20);
    rg_decoded_destroy(&out);
    TH_ASSERT_EQ_INT(budget_used(mem), 0);
    TH_ASSERT_EQ_INT(budget_reserve(mem, (1 << 20) + 1), 0);
    rg_decode(&r, SIG_LOGS, RCV_CE_GZIP, 1 << 20, mem, &out);
    TH_ASSERT_EQ_INT(out.status, RG_UNAVAILABLE);
    rg_decoded_destroy(&out);
    budget_release(mem, (1 << 20) + 1);
    TH_ASSERT_EQ_INT(budget_used(mem), 0);
    budget_free(mem);
    /* flag 1 without an encoding: INTERNAL (gRPC's rule) */
    rg_decode(&r, SIG_LOGS, RCV_CE_IDENTITY, 1 << 20, NULL, &out);
    TH_ASSERT_EQ_INT(out.status, RG_INTERNAL);
    rg_decoded_destroy(&out);
    /* decompressed size over the cap: RESOURCE_EXHAUSTED */
    rg_decode(&r, SIG_LOGS, RCV_CE_GZIP, d->pb_len - 1, NULL, &out);
    TH_ASSERT_EQ_INT(out.status, RG_RESOURCE_EXHAUSTED);
    rg_decoded_destroy(&out);
    /* not gzip at all */
    rg_decode(&r, SIG_LOGS, RCV_CE_ZSTD, 1 << 20, NULL, &out);
    TH_ASSERT_EQ_INT(out.status, RG_INVALID_ARGUMENT);
    rg_decoded_destroy(&out);
    rg_reader_destroy(&r);
    buf_destroy(&z);
}

static void t_encoders(void)
{
    buf b;
    buf_init(&b, 4096);
    TH_ASSERT_EQ_INT(rg_encode_response(SIG_METRICS, 0, NULL, &b), 0);
    TH_ASSERT_EQ_INT(b.len, 5);
    TH_ASSERT_MEM_EQ(b.data, "\0\0\0\0\0", 5);
    buf_reset(&b);
    TH_ASSERT_EQ_INT(rg_encode_response(SIG_METRICS, 7, "dropped", &b), 0);
    /* prefix + 0a LEN {08 07 12 07 "dropped"} */
    static const uint8_t want[] = {0, 0, 0, 0, 13, 0x0a, 11, 0x08, 7, 0x12, 7,
                                   'd', 'r', 'o', 'p', 'p', 'e', 'd'};
    TH_ASSERT_EQ_INT(b.len, sizeof want);
    TH_ASSERT_MEM_EQ(b.data, want, sizeof want);
    buf_reset(&b);
    TH_ASSERT_EQ_INT(rg_encode_message("50% off\n\xc3\xa9", &b), 0);
    TH_ASSERT_EQ_INT(b.len, strlen("50%25 off%0A%C3%A9"));
    TH_ASSERT_MEM_EQ(b.data, "50%25 off%0A%C3%A9", b.len);
    buf_reset(&b);
    TH_ASSERT_EQ_INT(rg_encode_status_details(RG_UNAVAILABLE, "queue full", 3, &b), 0);
    uint8_t raw[512];
    size_t n = 0;
    TH_ASSERT_EQ_INT(oj_b64_decode((const char *)b.data, b.len, raw, &n), 0);
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, n, raw);
    TH_ASSERT(st);
    int ok = st->code == RG_UNAVAILABLE && strcmp(st->message, "queue full") == 0 &&
             st->n_details == 1 &&
             strcmp(st->details[0]->type_url, "type.googleapis.com/google.rpc.RetryInfo") == 0;
    Google__Rpc__RetryInfo *ri =
        ok ? google__rpc__retry_info__unpack(NULL, st->details[0]->value.len,
                                             st->details[0]->value.data)
           : NULL;
    int secs = ri && ri->retry_delay ? (int)ri->retry_delay->seconds : -1;
    google__rpc__retry_info__free_unpacked(ri, NULL);
    google__rpc__status__free_unpacked(st, NULL);
    buf_destroy(&b);
    TH_ASSERT(ok);
    TH_ASSERT_EQ_INT(secs, 3);
}

/* ---- sessions from memory ------------------------------------------------ */

typedef struct fake {
    rg_call *held[8];
    int n_held, hold, calls;
    uint32_t items;
    buf out;
} fake;

static void fake_submit(void *arg, rg_call *call, sw_signal sig, const uint8_t *pb, size_t len,
                        uint32_t items, int64_t recv_ns)
{
    (void)sig, (void)pb, (void)len, (void)recv_ns;
    fake *f = arg;
    f->calls++;
    f->items += items;
    if (f->hold) {
        f->held[f->n_held++] = call;
        return;
    }
    rg_answer a = {RG_OK, 2, "2 points dropped", 0, 0, items};
    rg_call_done(call, &a);
}

static int fake_write(void *arg, const uint8_t *d, size_t n)
{
    return buf_append(&((fake *)arg)->out, d, n) == 0 ? 0 : -1;
}
static void fake_kick(void *arg) { (void)arg; }

static void lit(buf *b, const char *n, const char *v)
{
    uint8_t z = 0, nl = (uint8_t)strlen(n), vl = (uint8_t)strlen(v);
    buf_append(b, &z, 1);
    buf_append(b, &nl, 1);
    buf_append(b, n, nl);
    buf_append(b, &vl, 1);
    buf_append(b, v, vl);
}

/* Client bytes: preface, SETTINGS, a HEADERS + DATA call on stream id. */
static void client_call(buf *in, uint32_t id, const th_otlp *d, int end)
{
    buf h, m;
    buf_init(&h, 4096);
    buf_init(&m, 1 << 20);
    buf_append(&h, "\x83\x86\x01\x09" "127.0.0.1", 13); /* POST, http, :authority */
    uint8_t pl[2] = {0x04, (uint8_t)strlen(TRACES)};
    buf_append(&h, pl, 2);
    buf_append(&h, TRACES, strlen(TRACES));
    lit(&h, "content-type", "application/grpc");
    uint8_t p[5];
    prefix(p, 0, d->pb_len);
    buf_append(&m, p, 5);
    buf_append(&m, d->pb, d->pb_len);
    th_h2_frame(in, 1, 4, id, h.data, h.len);
    th_h2_frame(in, 0, end ? 1 : 0, id, m.data, m.len);
    buf_destroy(&h);
    buf_destroy(&m);
}

static void t_session_call(void)
{
    fake f = {0};
    buf_init(&f.out, 1 << 20);
    budget *mem = budget_new(4 << 20);
    TH_ASSERT(mem);
    rg_server srv = {.cap = 1 << 20, .mem = mem, .accepting = 1, .submit = fake_submit};
    srv.submit_arg = &f;
    rg_io io = {fake_write, fake_kick, &f};
    rg_session *s = rg_session_new(&srv, &io);
    TH_ASSERT(s);
    buf in;
    buf_init(&in, 1 << 20);
    buf_append(&in, th_h2_preface, 24);
    th_h2_frame(&in, 4, 0, 0, NULL, 0);
    th_otlp *d = th_otlp_new(SIG_TRACES, 5, 6);
    client_call(&in, 1, d, 1);
    TH_ASSERT_EQ_INT(rg_session_recv(s, in.data, in.len), 0);
    TH_ASSERT_EQ_INT(rg_session_flush(s), 0);
    int calls = f.calls;
    uint32_t items = f.items;
    size_t out = f.out.len;
    int pending = (int)srv.calls_pending;
    size_t buffered = srv.buffered;
    rg_session_free(s);
    buf_destroy(&in);
    buf_destroy(&f.out);
    TH_ASSERT_EQ_INT(calls, 1);
    TH_ASSERT_EQ_INT(items, 6);
    TH_ASSERT_EQ_INT(pending, 0);
    TH_ASSERT_EQ_INT(buffered, 0);
    TH_ASSERT(out > 9 + 9 + 13); /* SETTINGS, ACK, HEADERS, DATA, trailers */
    TH_ASSERT_EQ_INT(budget_used(mem), 0);
    TH_ASSERT(budget_peak(mem) >= d->pb_len); /* the message was charged */
    budget_free(mem);
}

/* A call the pipeline answers only after its stream (and session) went
 * away: detached, freed by the answer; nothing leaks (ASan / valgrind). */
static void t_session_detached(void)
{
    fake f = {0};
    f.hold = 1;
    buf_init(&f.out, 1 << 20);
    budget *mem = budget_new(4 << 20);
    TH_ASSERT(mem);
    rg_server srv = {.cap = 1 << 20, .mem = mem, .accepting = 1, .submit = fake_submit};
    srv.submit_arg = &f;
    rg_io io = {fake_write, fake_kick, &f};
    rg_session *s = rg_session_new(&srv, &io);
    TH_ASSERT(s);
    buf in;
    buf_init(&in, 1 << 20);
    buf_append(&in, th_h2_preface, 24);
    th_h2_frame(&in, 4, 0, 0, NULL, 0);
    th_otlp *d = th_otlp_new(SIG_TRACES, 5, 2);
    client_call(&in, 1, d, 1);
    client_call(&in, 3, d, 1);
    static const uint8_t cancel[4] = {0, 0, 0, 8};
    th_h2_frame(&in, 3, 0, 1, cancel, 4); /* stream 1 reset while in the pipeline */
    TH_ASSERT_EQ_INT(rg_session_recv(s, in.data, in.len), 0);
    TH_ASSERT_EQ_INT(f.n_held, 2);
    TH_ASSERT_EQ_INT(srv.calls_pending, 2);
    rg_session_free(s); /* stream 3 detached with the session */
    rg_answer a = {RG_OK, 0, NULL, 0, 0, 2};
    for (int i = 0; i < f.n_held; i++) rg_call_done(f.held[i], &a);
    buf_destroy(&in);
    buf_destroy(&f.out);
    TH_ASSERT_EQ_INT(srv.calls_pending, 0);
    TH_ASSERT_EQ_INT(srv.buffered, 0);
    TH_ASSERT_EQ_INT(budget_used(mem), 0);
    budget_free(mem);
}

/* The memory bound: a message whose buffer does not fit in the intake
 * budget is refused (UNAVAILABLE), and its bytes are released. */
static void t_session_memory_bound(void)
{
    fake f = {0};
    buf_init(&f.out, 1 << 20);
    budget *mem = budget_new(1000);
    TH_ASSERT(mem);
    rg_server srv = {.cap = 1 << 20, .mem = mem, .accepting = 1, .submit = fake_submit};
    srv.submit_arg = &f;
    rg_io io = {fake_write, fake_kick, &f};
    rg_session *s = rg_session_new(&srv, &io);
    TH_ASSERT(s);
    buf in;
    buf_init(&in, 1 << 20);
    buf_append(&in, th_h2_preface, 24);
    th_h2_frame(&in, 4, 0, 0, NULL, 0);
    th_otlp *d = th_otlp_new(SIG_TRACES, 5, 40);
    TH_ASSERT(d->pb_len > 1000);
    client_call(&in, 1, d, 0); /* not finished: stays buffered if it fitted */
    TH_ASSERT_EQ_INT(rg_session_recv(s, in.data, in.len), 0);
    size_t buffered = srv.buffered;
    int calls = f.calls;
    rg_session_free(s);
    buf_destroy(&in);
    buf_destroy(&f.out);
    TH_ASSERT_EQ_INT(buffered, 0);
    TH_ASSERT_EQ_INT(calls, 0);
    TH_ASSERT(budget_refused(mem) >= 1);
    TH_ASSERT(budget_peak(mem) <= 1000);
    TH_ASSERT_EQ_INT(budget_used(mem), 0);
    budget_free(mem);
}

int main(void)
{
    TH_RUN(t_route_and_headers);
    TH_RUN(t_reader_and_decode);
    TH_RUN(t_decode_compressed);
    TH_RUN(t_encoders);
    TH_RUN(t_session_call);
    TH_RUN(t_session_detached);
    TH_RUN(t_session_memory_bound);
    return th_done();
}
