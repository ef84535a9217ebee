/* test_loadgen.c — the load generator's pure parts: deterministic request
 * builder (lg_gen, lg_build: same seed, same bytes, for every signal,
 * encoding, compression and cardinality mode), item tokens as the mock
 * upstream renders them, the --verify comparison (lg_verify), the signal
 * interleaving (lg_mix) and the latency histogram (lg_hist). The I/O part
 * (lg_client) is exercised by itest_loadgen and the benchmark; here only
 * its handling of a refused connection (a collector restarting). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "runtime/buf.h"
#include "runtime/codec.h"
#include "testing/lib/th.h"

/* The load generator's sources are linked only into spillway-loadgen;
 * the test compiles its pure parts in. */
#include "testing/loadgen/lg_build.c"
#include "testing/loadgen/lg_client.c"
#include "testing/loadgen/lg_gen.c"
#include "testing/loadgen/lg_h2.c"
#include "testing/loadgen/lg_hist.c"
#include "testing/loadgen/lg_verify.c"
#include "testing/mockup/mock_render.c"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TReq;

static lg_gen_opts traces_opts(void)
{
    return (lg_gen_opts){.signal = SIG_TRACES, .batch = 100, .services = 1, .attrs = 7, .seed = 42};
}

static TReq *unpack_traces(const uint8_t *d, size_t n)
{
    return opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(NULL, n, d);
}

static size_t count_spans(const TReq *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_resource_spans; i++)
        for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
            n += r->resource_spans[i]->scope_spans[j]->n_spans;
    return n;
}

static void t_hist_small_exact(void)
{
    lg_hist h;
    lg_hist_init(&h);
    for (int i = 1; i <= 100; i++) lg_hist_add(&h, i);
    TH_ASSERT_EQ_INT(h.count, 100);
    TH_ASSERT_EQ_INT(lg_hist_pct(&h, 50), 50);
    TH_ASSERT_EQ_INT(lg_hist_pct(&h, 99), 99);
    TH_ASSERT_EQ_INT(lg_hist_pct(&h, 100), 100);
    TH_ASSERT_EQ_INT(h.min, 1);
    TH_ASSERT_EQ_INT(lg_hist_pct(&h, 0.5), 1);
}

static void t_hist_index_range(void)
{
    uint64_t s = 7;
    for (int i = 0; i < 100000; i++) {
        int64_t v = (int64_t)(lg_rand(&s) >> (24 + i % 40));
        uint32_t idx = lg_hist_index(v);
        int64_t lo, hi;
        TH_ASSERT(idx < LG_HIST_BUCKETS);
        lg_hist_range(idx, &lo, &hi);
        TH_ASSERT_MSG(lo <= v && v <= hi, "v=%lld in [%lld,%lld]", (long long)v, (long long)lo, (long long)hi);
        TH_ASSERT((double)(hi - lo) <= (double)lo / 128.0 + 1.0);
    }
    TH_ASSERT_EQ_INT(lg_hist_index(-5), 0);
    TH_ASSERT_EQ_INT(lg_hist_index(INT64_MAX), LG_HIST_BUCKETS - 1);
}

static void t_hist_percentiles_accuracy(void)
{
    lg_hist h, a, b;
    lg_hist_init(&h);
    lg_hist_init(&a);
    lg_hist_init(&b);
    /* 1 µs .. 100 ms in 1 µs steps, in two halves merged */
    for (int64_t us = 1; us <= 100000; us++) {
        lg_hist_add(&h, us * 1000);
        lg_hist_add(us % 2 ? &a : &b, us * 1000);
    }
    lg_hist_merge(&a, &b);
    TH_ASSERT_EQ_INT(a.count, h.count);
    const double ps[] = {50, 90, 99, 99.9};
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++) {
        double want = ps[i] / 100.0 * 100000.0 * 1000.0;
        double got = (double)lg_hist_pct(&h, ps[i]);
        TH_ASSERT_MSG(got > want * 0.995 && got < want * 1.005, "p%g: %g vs %g", ps[i], got, want);
        TH_ASSERT_EQ_INT(lg_hist_pct(&a, ps[i]), lg_hist_pct(&h, ps[i]));
    }
    TH_ASSERT_EQ_INT(lg_hist_pct(&h, 100), 100000000);
    lg_hist_init(&b);
    TH_ASSERT_EQ_INT(lg_hist_pct(&b, 99), 0);
}

static void t_pool_deterministic(void)
{
    lg_gen_opts o = traces_opts();
    int err = 0;
    lg_pool *a = lg_pool_new(&o, &err), *b = lg_pool_new(&o, &err);
    o.seed = 43;
    lg_pool *c = lg_pool_new(&o, &err);
    TH_ASSERT(a && b && c);
    TH_ASSERT_EQ_INT(lg_pool_size(a), 16);
    for (size_t i = 0; i < lg_pool_size(a); i++) {
        TH_ASSERT_EQ_INT(lg_pool_get(a, i)->len, lg_pool_get(b, i)->len);
        TH_ASSERT_MEM_EQ(lg_pool_get(a, i)->data, lg_pool_get(b, i)->data, lg_pool_get(a, i)->len);
    }
    TH_ASSERT(lg_pool_get(a, 0)->len != lg_pool_get(c, 0)->len ||
              memcmp(lg_pool_get(a, 0)->data, lg_pool_get(c, 0)->data, lg_pool_get(a, 0)->len) != 0);
    TH_ASSERT(memcmp(lg_pool_get(a, 0)->data, lg_pool_get(a, 1)->data, 64) != 0);
    lg_pool_free(a);
    lg_pool_free(b);
    lg_pool_free(c);
}

static void t_traces_shape_and_size(void)
{
    lg_gen_opts o = traces_opts();
    lg_pool *p = lg_pool_new(&o, NULL);
    TH_ASSERT(p);
    const lg_req *rq = lg_pool_get(p, 3);
    TH_ASSERT_MSG(rq->len >= 25000 && rq->len <= 35000, "100-span request is %zu bytes", rq->len);
    TH_ASSERT_EQ_INT(rq->n_patch, 100 * 3 - 10); /* trace+span per span, parent for 9 of 10 */
    TReq *r = unpack_traces(rq->data, rq->len);
    TH_ASSERT(r);
    TH_ASSERT_EQ_INT(count_spans(r), 100);
    const Opentelemetry__Proto__Trace__V1__Span *s0 = r->resource_spans[0]->scope_spans[0]->spans[0];
    const Opentelemetry__Proto__Trace__V1__Span *s1 = r->resource_spans[0]->scope_spans[0]->spans[1];
    TH_ASSERT_EQ_INT(s0->trace_id.len, 16);
    TH_ASSERT_EQ_INT(s0->n_attributes, 7);
    TH_ASSERT_EQ_INT(s0->parent_span_id.len, 0);
    TH_ASSERT_MEM_EQ(s1->parent_span_id.data, s0->span_id.data, 8);
    TH_ASSERT_MEM_EQ(s1->trace_id.data, s0->trace_id.data, 16);
    TH_ASSERT_EQ_STR(r->resource_spans[0]->resource->attributes[0]->value->string_value, "frontend");
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
    lg_pool_free(p);
}

static void t_ids_vary_per_pass(void)
{
    lg_gen_opts o = traces_opts();
    lg_pool *p = lg_pool_new(&o, NULL);
    TH_ASSERT(p);
    size_t n = lg_pool_size(p), len = lg_pool_get(p, 5)->len;
    uint8_t *a = malloc(len), *b = malloc(len), *c = malloc(len);
    TH_ASSERT(a && b && c);
    lg_pool_write(p, 5, a);
    lg_pool_write(p, 5 + n, b);
    lg_pool_write(p, 5 + n, c);
    TH_ASSERT_MEM_EQ(a, lg_pool_get(p, 5)->data, len);
    TH_ASSERT(memcmp(a, b, len) != 0);
    TH_ASSERT_MEM_EQ(b, c, len); /* same seq, same bytes */
    TReq *ra = unpack_traces(a, len), *rb = unpack_traces(b, len);
    TH_ASSERT(ra && rb);
    TH_ASSERT_EQ_INT(count_spans(rb), 100);
    Opentelemetry__Proto__Trace__V1__Span **sa = ra->resource_spans[0]->scope_spans[0]->spans;
    Opentelemetry__Proto__Trace__V1__Span **sb = rb->resource_spans[0]->scope_spans[0]->spans;
    TH_ASSERT(memcmp(sa[0]->trace_id.data, sb[0]->trace_id.data, 16) != 0);
    TH_ASSERT(memcmp(sa[0]->span_id.data, sb[0]->span_id.data, 8) != 0);
    TH_ASSERT_MEM_EQ(sb[3]->parent_span_id.data, sb[0]->span_id.data, 8);
    TH_ASSERT_MEM_EQ(sb[3]->trace_id.data, sb[0]->trace_id.data, 16);
    TH_ASSERT_EQ_STR(sa[7]->name, sb[7]->name);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(ra, NULL);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(rb, NULL);
    free(a);
    free(b);
    free(c);
    lg_pool_free(p);
}

static void t_metrics_and_logs_counts(void)
{
    lg_gen_opts o = traces_opts();
    o.signal = SIG_METRICS;
    o.batch = 95;
    lg_pool *p = lg_pool_new(&o, NULL);
    TH_ASSERT(p);
    const lg_req *rq = lg_pool_get(p, 0);
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest *m =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__unpack(NULL, rq->len, rq->data);
    TH_ASSERT(m);
    size_t pts = 0;
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = m->resource_metrics[0]->scope_metrics[0];
    for (size_t i = 0; i < sm->n_metrics; i++) {
        Opentelemetry__Proto__Metrics__V1__Metric *mt = sm->metrics[i];
        pts += mt->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM ? mt->sum->n_data_points
             : mt->data_case == OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE ? mt->gauge->n_data_points
             : mt->histogram->n_data_points;
    }
    TH_ASSERT_EQ_INT(pts, 95);
    TH_ASSERT_EQ_INT(rq->n_patch, 95); /* one token value per data point */
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__free_unpacked(m, NULL);
    lg_pool_free(p);

    o.signal = SIG_LOGS;
    o.batch = 50;
    p = lg_pool_new(&o, NULL);
    TH_ASSERT(p);
    rq = lg_pool_get(p, 1);
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest *l =
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(NULL, rq->len, rq->data);
    TH_ASSERT(l);
    TH_ASSERT_EQ_INT(l->resource_logs[0]->scope_logs[0]->n_log_records, 50);
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(l, NULL);
    lg_pool_free(p);
}

static void t_services_spread(void)
{
    lg_gen_opts o = traces_opts();
    o.services = 1000;
    o.batch = 20;
    lg_pool *p = lg_pool_new(&o, NULL);
    TH_ASSERT(p);
    TH_ASSERT_EQ_INT(lg_pool_size(p), 256);
    static char seen[1000][32];
    size_t distinct = 0;
    for (size_t i = 0; i < lg_pool_size(p); i++) {
        TReq *r = unpack_traces(lg_pool_get(p, i)->data, lg_pool_get(p, i)->len);
        TH_ASSERT(r);
        TH_ASSERT_EQ_INT(r->n_resource_spans, 4);
        TH_ASSERT_EQ_INT(count_spans(r), 20);
        for (size_t k = 0; k < r->n_resource_spans; k++) {
            const char *name = r->resource_spans[k]->resource->attributes[0]->value->string_value;
            size_t j = 0;
            while (j < distinct && strcmp(seen[j], name) != 0) j++;
            if (j == distinct && distinct < 1000) snprintf(seen[distinct++], sizeof seen[0], "%s", name);
        }
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
    }
    TH_ASSERT_EQ_INT(distinct, 1000);
    lg_pool_free(p);
}

static void t_compressed_pools(void)
{
    lg_gen_opts o = traces_opts();
    lg_pool *plain = lg_pool_new(&o, NULL);
    o.compression = LG_COMP_GZIP;
    lg_pool *gz = lg_pool_new(&o, NULL);
    o.compression = LG_COMP_ZSTD;
    lg_pool *zs = lg_pool_new(&o, NULL);
    TH_ASSERT(plain && gz && zs);
    buf out;
    buf_init(&out, 1u << 20);
    const lg_req *rp = lg_pool_get(plain, 2), *rg = lg_pool_get(gz, 2), *rz = lg_pool_get(zs, 2);
    TH_ASSERT(rg->len < rp->len && rz->len < rp->len);
    TH_ASSERT_EQ_INT(rg->n_patch, 0);
    TH_ASSERT_EQ_INT(codec_gunzip(rg->data, rg->len, &out), 0);
    TH_ASSERT_EQ_INT(out.len, rp->len);
    TH_ASSERT_MEM_EQ(out.data, rp->data, rp->len);
    buf_reset(&out);
    TH_ASSERT_EQ_INT(codec_zstd_decompress(rz->data, rz->len, &out), 0);
    TH_ASSERT_EQ_INT(out.len, rp->len);
    TH_ASSERT_MEM_EQ(out.data, rp->data, rp->len);
    buf_destroy(&out);
    lg_pool_free(plain);
    lg_pool_free(gz);
    lg_pool_free(zs);
}

static void t_json_pool(void)
{
    lg_gen_opts o = traces_opts();
    o.batch = 10;
    o.encoding = LG_ENC_JSON;
    int err = 0;
    lg_pool *p = lg_pool_new(&o, &err);
    TH_ASSERT_MSG(p, "json pool: %d", err);
    const lg_req *rq = lg_pool_get(p, 0);
    TH_ASSERT(rq->len > 2 && rq->data[0] == '{');
    TH_ASSERT(memmem(rq->data, rq->len, "resourceSpans", 13) != NULL);
    TH_ASSERT_EQ_INT(rq->n_patch, 0);
    buf pb;
    char msg[128] = "";
    buf_init(&pb, 1u << 20);
    TH_ASSERT_MSG(oj_json_to_pb(SIG_TRACES, (const char *)rq->data, rq->len, &pb, msg, sizeof msg) == 0, "%s", msg);
    TReq *r = unpack_traces(pb.data, pb.len);
    TH_ASSERT(r);
    TH_ASSERT_EQ_INT(count_spans(r), 10);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
    buf_destroy(&pb);
    lg_pool_free(p);
}

/* ---- determinism --------------------------------------------------- */

/* Request seq of pool p written into a fresh buffer (owned). */
static uint8_t *write_req(const lg_pool *p, uint64_t seq, size_t *len)
{
    *len = lg_pool_get(p, seq)->len;
    uint8_t *b = malloc(*len ? *len : 1);
    if (b) lg_pool_write(p, seq, b);
    return b;
}

/* 1 if request seq has the same bytes in pools a and b. */
static int same_req(const lg_pool *a, const lg_pool *b, uint64_t seq)
{
    size_t la, lb;
    uint8_t *x = write_req(a, seq, &la), *y = write_req(b, seq, &lb);
    int same = x && y && la == lb && memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

/* Same options -> identical bytes for requests over several passes;
 * another seed -> different bytes. */
static void check_deterministic(const lg_gen_opts *o, const char *what)
{
    lg_gen_opts o2 = *o;
    o2.seed = o->seed + 1;
    lg_pool *a = lg_pool_new(o, NULL), *b = lg_pool_new(o, NULL), *c = lg_pool_new(&o2, NULL);
    TH_ASSERT_MSG(a && b && c, "%s: pool", what);
    uint64_t n = lg_pool_size(a);
    const uint64_t seqs[] = {0, 1, n - 1, n, n + 1, 2 * n + 3, 7 * n + 5, 1000003};
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++)
        TH_ASSERT_MSG(same_req(a, b, seqs[i]), "%s: seq %llu differs", what, (unsigned long long)seqs[i]);
    TH_ASSERT_MSG(!same_req(a, c, 0) && !same_req(a, c, n + 1), "%s: seeds give the same bytes", what);
    lg_pool_free(a);
    lg_pool_free(b);
    lg_pool_free(c);
}

static void t_same_seed_same_bytes_all_signals(void)
{
    char what[96];
    for (int sig = 0; sig < SIG_COUNT; sig++)
        for (int enc = 0; enc < 2; enc++)
            for (int comp = 0; comp < 3; comp++) {
                lg_gen_opts o = {.signal = (sw_signal)sig, .batch = 20, .services = 3, .attrs = 5,
                                 .seed = 77, .pool = 4, .encoding = (lg_encoding)enc,
                                 .compression = (lg_compression)comp};
                snprintf(what, sizeof what, "%s %s %s", sw_signal_name(o.signal), lg_encoding_name(o.encoding),
                         lg_compression_name(o.compression));
                check_deterministic(&o, what);
            }
}

static void t_same_seed_same_bytes_modes(void)
{
    lg_gen_opts o = {.signal = SIG_METRICS, .batch = 20, .services = 5, .attrs = 3, .seed = 9,
                     .series = 1000, .churn = 0.05, .rate = 1000, .label_explosion = 1,
                     .prio_mix = {1, 2, 7}};
    check_deterministic(&o, "metrics series+churn+explosion+priority");
    o.signal = SIG_TRACES;
    check_deterministic(&o, "traces priority mix");
    o.signal = SIG_LOGS;
    check_deterministic(&o, "logs priority mix");
}

/* ---- tokens ---------------------------------------------------------- */

/* Renders request seq as the mock upstream would and reads its tokens. */
static void rendered_tokens(const lg_pool *p, uint64_t seq, uint64_t *out, size_t *n)
{
    size_t len, nlines = 0, un = 0;
    uint64_t items = 0, unreadable = 0, *tok = NULL;
    uint8_t *body = write_req(p, seq, &len);
    buf lines;
    buf_init(&lines, 64u << 20);
    TH_ASSERT(body);
    int rc = mock_render_request(lg_pool_signal(p), body, len, &lines, 100000, &nlines, &items);
    free(body);
    if (rc == 0) rc = lg_verify_parse(lg_pool_signal(p), (const char *)lines.data, lines.len, &tok, n, &unreadable);
    buf_destroy(&lines);
    TH_ASSERT_EQ_INT(rc, 0);
    un = (size_t)unreadable;
    if (un == 0) memcpy(out, tok, *n * sizeof *out);
    free(tok);
    TH_ASSERT_EQ_INT(un, 0);
}

static void t_tokens_match_rendered_lines(void)
{
    uint64_t want[40], got[40];
    for (int sig = 0; sig < SIG_COUNT; sig++) {
        lg_gen_opts o = {.signal = (sw_signal)sig, .batch = 40, .services = 2, .attrs = 2, .seed = 5, .pool = 3};
        lg_pool *p = lg_pool_new(&o, NULL);
        TH_ASSERT(p);
        const uint64_t seqs[] = {0, 2, 3, 10, 301};
        for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++) {
            size_t n = 0;
            lg_pool_tokens(p, seqs[i], want);
            rendered_tokens(p, seqs[i], got, &n);
            TH_ASSERT_EQ_INT(n, 40);
            TH_ASSERT_MSG(memcmp(want, got, sizeof want) == 0, "%s seq %llu: tokens differ",
                          sw_signal_name(o.signal), (unsigned long long)seqs[i]);
        }
        lg_pool_free(p);
    }
}

static void t_tokens_unique_over_passes(void)
{
    for (int sig = 0; sig < SIG_COUNT; sig++) {
        lg_gen_opts o = {.signal = (sw_signal)sig, .batch = 50, .services = 1, .attrs = 1, .seed = 3, .pool = 8};
        lg_pool *p = lg_pool_new(&o, NULL);
        uint64_t *all = malloc(64 * 50 * sizeof *all), *none = NULL;
        TH_ASSERT(p && all);
        for (uint64_t seq = 0; seq < 64; seq++) lg_pool_tokens(p, seq, all + seq * 50);
        lg_vres v;
        lg_verify_compare(all, 64 * 50, none, 0, &v); /* sorts */
        for (size_t i = 1; i < 64 * 50; i++) TH_ASSERT_MSG(all[i] != all[i - 1], "%s: token repeats", sw_signal_name(o.signal));
        free(all);
        lg_pool_free(p);
    }
}

static void t_token_of_line(void)
{
    uint64_t t = 0;
    TH_ASSERT_EQ_INT(lg_token_of_line(SIG_TRACES, "00ff 0102030405060708 GET /", 27, &t), 0);
    TH_ASSERT_EQ_INT(t, 0x0807060504030201ULL);
    TH_ASSERT(lg_token_of_line(SIG_TRACES, "00ff 01020304050607zz x", 23, &t) != 0);
    const char *l = "- 9 body text id=000000000000abcd";
    TH_ASSERT_EQ_INT(lg_token_of_line(SIG_LOGS, l, strlen(l), &t), 0);
    TH_ASSERT_EQ_INT(t, 0xabcd);
    TH_ASSERT(lg_token_of_line(SIG_LOGS, "- 9 no token", 12, &t) != 0);
    l = "m histogram a=b count=3 sum=1125899906842625";
    TH_ASSERT_EQ_INT(lg_token_of_line(SIG_METRICS, l, strlen(l), &t), 0);
    TH_ASSERT_EQ_INT(t, 1125899906842625ULL);
    l = "m gauge - 12.5";
    TH_ASSERT(lg_token_of_line(SIG_METRICS, l, strlen(l), &t) != 0);
}

/* ---- cardinality modes ----------------------------------------------- */

/* Appends the values of label key in the rendered lines of request seq to
 * vals (distinct values counted by the caller). */
static size_t label_values(const lg_pool *p, uint64_t seq, const char *key, char (*vals)[17], size_t max)
{
    size_t len, nlines = 0, k = 0;
    uint64_t items = 0;
    uint8_t *body = write_req(p, seq, &len);
    buf lines;
    buf_init(&lines, 64u << 20);
    TH_ASSERT(body);
    TH_ASSERT_EQ_INT(mock_render_request(SIG_METRICS, body, len, &lines, 100000, &nlines, &items), 0);
    free(body);
    TH_ASSERT(buf_append(&lines, "", 1) == 0);
    char pat[32];
    snprintf(pat, sizeof pat, "%s=", key);
    for (const char *at = strstr((const char *)lines.data, pat); at && k < max; at = strstr(at + 1, pat)) {
        memcpy(vals[k], at + strlen(pat), 16);
        vals[k++][16] = 0;
    }
    buf_destroy(&lines);
    return k;
}

static int cmp_str17(const void *a, const void *b) { return strcmp(a, b); }

static size_t distinct(char (*v)[17], size_t n)
{
    qsort(v, n, sizeof *v, cmp_str17);
    size_t d = n ? 1 : 0;
    for (size_t i = 1; i < n; i++) d += strcmp(v[i], v[i - 1]) != 0;
    return d;
}

static void t_series_exact_count(void)
{
    static char vals[8000][17];
    lg_gen_opts o = {.signal = SIG_METRICS, .batch = 10, .services = 1, .attrs = 2, .seed = 4, .series = 250};
    lg_pool *p = lg_pool_new(&o, NULL);
    TH_ASSERT(p);
    TH_ASSERT_EQ_INT(lg_pool_size(p), 16); /* 16 x 10 slots <= 250 series */
    size_t n = 0;
    for (uint64_t seq = 0; seq < 16 * 5; seq++) n += label_values(p, seq, "series.id", vals + n, 8000 - n);
    TH_ASSERT_EQ_INT(n, 800);
    TH_ASSERT_EQ_INT(distinct(vals, n), 250);
    lg_pool_free(p);
    o.series = 5; /* fewer series than a request has points */
    int err = 0;
    TH_ASSERT(lg_pool_new(&o, &err) == NULL);
    TH_ASSERT_EQ_INT(err, SW_EINVAL);
}

/* Series names of the requests of schedule second `sec` (10 requests of
 * 10 points at 100 points/s). */
static size_t second_values(const lg_pool *p, int sec, char (*vals)[17])
{
    size_t n = 0;
    for (uint64_t seq = (uint64_t)sec * 10; seq < (uint64_t)sec * 10 + 10; seq++)
        n += label_values(p, seq, "series.id", vals + n, 100 - n);
    return n;
}

static void t_series_churn(void)
{
    static char a[100][17], b[100][17], both[200][17];
    lg_gen_opts o = {.signal = SIG_METRICS, .batch = 10, .services = 1, .seed = 8, .series = 100,
                     .churn = 0.1, .rate = 100};
    lg_pool *p = lg_pool_new(&o, NULL);
    TH_ASSERT(p);
    for (int sec = 0; sec < 3; sec++) {
        TH_ASSERT_EQ_INT(second_values(p, sec, a), 100);
        TH_ASSERT_EQ_INT(second_values(p, sec + 1, b), 100);
        TH_ASSERT_EQ_INT(distinct(a, 100), 100);
        memcpy(both, a, sizeof a);
        memcpy(both + 100, b, sizeof b);
        size_t renamed = distinct(both, 200) - 100;
        printf("# churn 0.1/s of 100 series: %zu renamed in second %d\n", renamed, sec + 1);
        TH_ASSERT_MSG(renamed >= 5 && renamed <= 15, "second %d: %zu renamed", sec + 1, renamed);
    }
    lg_pool_free(p);
    o.churn = 0;
    p = lg_pool_new(&o, NULL);
    TH_ASSERT(p);
    second_values(p, 0, a);
    second_values(p, 5, b);
    memcpy(both, a, sizeof a);
    memcpy(both + 100, b, sizeof b);
    TH_ASSERT_EQ_INT(distinct(both, 200), 100);
    lg_pool_free(p);
}

static void t_label_explosion(void)
{
    static char vals[2000][17];
    lg_gen_opts o = {.signal = SIG_METRICS, .batch = 25, .services = 1, .attrs = 1, .seed = 2,
                     .label_explosion = 1, .pool = 4};
    lg_pool *p = lg_pool_new(&o, NULL);
    TH_ASSERT(p);
    size_t n = 0;
    for (uint64_t seq = 0; seq < 40; seq++) n += label_values(p, seq, "request.id", vals + n, 2000 - n);
    TH_ASSERT_EQ_INT(n, 1000);
    TH_ASSERT_EQ_INT(distinct(vals, n), 1000);
    lg_pool_free(p);
}

static void t_priority_mix(void)
{
    lg_gen_opts o = traces_opts();
    o.batch = 5;
    o.services = 3;
    o.prio_mix[0] = 1, o.prio_mix[1] = 2, o.prio_mix[2] = 7;
    lg_pool *p = lg_pool_new(&o, NULL);
    TH_ASSERT(p);
    TH_ASSERT_EQ_INT(lg_pool_size(p), 20); /* 16 rounded up to a multiple of 10 */
    size_t cls[3] = {0};
    for (size_t i = 0; i < lg_pool_size(p); i++) {
        TReq *r = unpack_traces(lg_pool_get(p, i)->data, lg_pool_get(p, i)->len);
        TH_ASSERT(r && r->n_resource_spans == 1);
        const char *name = r->resource_spans[0]->resource->attributes[0]->value->string_value;
        int c = !strncmp(name, "checkout", 8) || !strncmp(name, "payment", 7) ? 0
              : !strncmp(name, "frontend", 8) || !strncmp(name, "cart", 4) ? 1 : 2;
        cls[c]++;
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(r, NULL);
    }
    TH_ASSERT_EQ_INT(cls[0], 2);
    TH_ASSERT_EQ_INT(cls[1], 4);
    TH_ASSERT_EQ_INT(cls[2], 14);
    lg_pool_free(p);
}

/* ---- verify and mix -------------------------------------------------- */

static void t_verify_compare(void)
{
    uint64_t exp[] = {3, 1, 2, 3, 9}, got[] = {4, 3, 2, 3, 3, 4, 9, 9, 9};
    lg_vres v;
    lg_verify_compare(exp, 5, got, 9, &v);
    TH_ASSERT_EQ_INT(v.expected, 5);
    TH_ASSERT_EQ_INT(v.received, 9);
    TH_ASSERT_EQ_INT(v.missing, 1);    /* 1 */
    TH_ASSERT_EQ_INT(v.duplicated, 3); /* one more 3, two more 9 */
    TH_ASSERT_EQ_INT(v.unexpected, 2); /* 4, 4 */
    lg_verify_compare(exp, 5, exp, 5, &v);
    TH_ASSERT(v.missing == 0 && v.duplicated == 0 && v.unexpected == 0);
}

static void t_mix_map(void)
{
    lg_mix m;
    uint32_t w[3] = {6, 3, 1};
    TH_ASSERT_EQ_INT(lg_mix_init(&m, w, 3), 0);
    uint64_t next[3] = {0};
    for (uint64_t seq = 0; seq < 1000; seq++) {
        uint32_t s;
        uint64_t sub;
        lg_mix_map(&m, seq, &s, &sub);
        TH_ASSERT(s < 3);
        TH_ASSERT_EQ_INT(sub, next[s]); /* every stream numbers its requests without gaps */
        next[s]++;
    }
    TH_ASSERT(next[0] == 600 && next[1] == 300 && next[2] == 100);
    lg_mix_destroy(&m);
    w[1] = 0;
    TH_ASSERT_EQ_INT(lg_mix_init(&m, w, 3), SW_EINVAL);
}

static void t_verify_expected(void)
{
    lg_gen_opts o = traces_opts();
    o.batch = 10;
    lg_pool *pt = lg_pool_new(&o, NULL);
    o.signal = SIG_LOGS;
    lg_pool *pl = lg_pool_new(&o, NULL);
    TH_ASSERT(pt && pl);
    lg_stream st[2] = {{pt, "/v1/traces", 2}, {pl, "/v1/logs", 1}};
    lg_result *res = calloc(1, sizeof *res);
    TH_ASSERT(res);
    uint64_t acked[] = {0, 1, 3, 4, 40}; /* rounds of T L T: traces 0, logs 0, traces 2, logs 1, logs 13 */
    res->ok_seq = acked;
    res->n_ok_seq = 5;
    uint64_t *e = NULL, want[10];
    size_t n = 0;
    TH_ASSERT_EQ_INT(lg_verify_expected(st, 2, 1, res, &e, &n), 0);
    TH_ASSERT_EQ_INT(n, 30);
    lg_pool_tokens(pl, 1, want);
    TH_ASSERT(memcmp(e + 10, want, sizeof want) == 0);
    lg_pool_tokens(pl, 13, want);
    TH_ASSERT(memcmp(e + 20, want, sizeof want) == 0);
    free(e);
    TH_ASSERT_EQ_INT(lg_verify_expected(st, 2, 0, res, &e, &n), 0);
    TH_ASSERT_EQ_INT(n, 20);
    lg_pool_tokens(pt, 2, want);
    TH_ASSERT(memcmp(e + 10, want, sizeof want) == 0);
    free(e);
    free(res);
    lg_pool_free(pt);
    lg_pool_free(pl);
}

static void t_verify_absent(void)
{
    uint64_t sorted[] = {2, 3, 3, 7, 10}, tok[] = {7, 1, 3, 11, 10, 2};
    TH_ASSERT_EQ_INT(lg_verify_absent(tok, 6, sorted, 5), 2); /* 1, 11 */
    TH_ASSERT_EQ_INT(lg_verify_absent(tok, 6, sorted, 0), 6);
    TH_ASSERT_EQ_INT(lg_verify_absent(tok, 0, sorted, 5), 0);
}

/* --verify-missing: one line per acked request with items missing, with
 * its answer time; complete requests are not listed. */
static void t_verify_missing_list(void)
{
    lg_gen_opts o = traces_opts();
    o.batch = 10;
    lg_pool *p = lg_pool_new(&o, NULL);
    TH_ASSERT(p);
    lg_stream st[1] = {{p, "/v1/traces", 1}};
    lg_result res = {0};
    uint64_t seq[] = {0, 1, 2};
    int64_t ms[] = {1000, 2000, 3000};
    res.ok_seq = seq;
    res.ok_ms = ms;
    res.n_ok_seq = 3;
    uint64_t got[30];
    lg_pool_tokens(p, 0, got);
    lg_pool_tokens(p, 1, got + 10);
    lg_pool_tokens(p, 2, got + 20);
    /* request 1 lost 4 of its items */
    qsort(got + 14, 16, sizeof *got, cmp_u64);
    uint64_t *have = got + 14; /* tokens of requests 0 and 2, items 4.. of request 1 */
    uint64_t all[26];
    memcpy(all, got, 10 * sizeof *got);
    memcpy(all + 10, have, 16 * sizeof *got);
    qsort(all, 26, sizeof *all, cmp_u64);
    FILE *f = tmpfile();
    TH_ASSERT(f);
    lg_verify_opts vo = {.missing_out = f};
    TH_ASSERT_EQ_INT(list_missing(&vo, st, 1, 0, &res, all, 26), 0);
    char line[128] = "";
    rewind(f);
    TH_ASSERT(fgets(line, sizeof line, f) != NULL);
    TH_ASSERT_EQ_STR(line, "traces 1 2000 4\n");
    TH_ASSERT(fgets(line, sizeof line, f) == NULL);
    fclose(f);
    lg_pool_free(p);
}

/* A collector that is down (restarting) refuses connections: every
 * request is counted as a connection error, none as acknowledged, and the
 * run goes on to its end instead of stopping at the first failure. */
static void t_refused_connection_counted(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    TH_ASSERT(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    TH_ASSERT(bind(fd, (struct sockaddr *)&a, sizeof a) == 0);
    TH_ASSERT(getsockname(fd, (struct sockaddr *)&a, &al) == 0);
    close(fd); /* nothing listens on the port now */
    lg_gen_opts o = traces_opts();
    o.batch = 10;
    lg_pool *p = lg_pool_new(&o, NULL);
    TH_ASSERT(p);
    lg_stream st[1] = {{p, "/v1/traces", 1}};
    lg_run_opts ro = {.host = "127.0.0.1", .port = ntohs(a.sin_port), .content_type = "application/x-protobuf",
                      .rate = 0, .batch = 10, .connections = 2, .count = 8, .timeout_s = 5, .record_ok = 1};
    lg_result *res = calloc(1, sizeof *res);
    TH_ASSERT(res);
    TH_ASSERT_EQ_INT(lg_run(&ro, st, 1, res), 0);
    TH_ASSERT_EQ_INT(res->sent, 8);
    TH_ASSERT_EQ_INT(res->conn_errors, 8);
    TH_ASSERT_EQ_INT(res->ok, 0);
    TH_ASSERT_EQ_INT(res->items_ok, 0);
    TH_ASSERT_EQ_INT(res->n_ok_seq, 0);
    lg_result_destroy(res);
    free(res);
    lg_pool_free(p);
}

static void t_parse_names(void)
{
    TH_ASSERT_EQ_INT(lg_signal_parse("metrics"), SIG_METRICS);
    TH_ASSERT_EQ_INT(lg_signal_parse("spans"), -1);
    TH_ASSERT_EQ_INT(lg_encoding_parse("json"), LG_ENC_JSON);
    TH_ASSERT_EQ_INT(lg_compression_parse("zstd"), LG_COMP_ZSTD);
    TH_ASSERT_EQ_INT(lg_compression_parse(NULL), -1);
    TH_ASSERT_EQ_STR(lg_compression_name(LG_COMP_GZIP), "gzip");
    lg_gen_opts o = traces_opts();
    o.batch = 0;
    int err = 0;
    TH_ASSERT(lg_pool_new(&o, &err) == NULL);
    TH_ASSERT_EQ_INT(err, SW_EINVAL);
}

int main(void)
{
    TH_RUN(t_hist_small_exact);
    TH_RUN(t_hist_index_range);
    TH_RUN(t_hist_percentiles_accuracy);
    TH_RUN(t_pool_deterministic);
    TH_RUN(t_traces_shape_and_size);
    TH_RUN(t_ids_vary_per_pass);
    TH_RUN(t_metrics_and_logs_counts);
    TH_RUN(t_services_spread);
    TH_RUN(t_compressed_pools);
    TH_RUN(t_json_pool);
    TH_RUN(t_parse_names);
    TH_RUN(t_same_seed_same_bytes_all_signals);
    TH_RUN(t_same_seed_same_bytes_modes);
    TH_RUN(t_tokens_match_rendered_lines);
    TH_RUN(t_tokens_unique_over_passes);
    TH_RUN(t_token_of_line);
    TH_RUN(t_series_exact_count);
    TH_RUN(t_series_churn);
    TH_RUN(t_label_explosion);
    TH_RUN(t_priority_mix);
    TH_RUN(t_verify_compare);
    TH_RUN(t_mix_map);
    TH_RUN(t_verify_expected);
    TH_RUN(t_verify_absent);
    TH_RUN(t_verify_missing_list);
    TH_RUN(t_refused_connection_counted);
    return th_done();
}
