/* test_loadgen.c — the load generator's pure parts: deterministic request
 * builder (lg_gen, lg_build) and latency histogram (lg_hist). The I/O part
 * (lg_client) is exercised by the benchmark and the integration tests. */
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "runtime/buf.h"
#include "runtime/codec.h"
#include "testing/lib/th.h"

/* The load generator's sources are linked only into spillway-loadgen;
 * the test compiles its pure parts in. */
#include "testing/loadgen/lg_build.c"
#include "testing/loadgen/lg_gen.c"
#include "testing/loadgen/lg_hist.c"

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
    TH_ASSERT_EQ_INT(rq->n_id, 100 * 3 - 10); /* trace+span per span, parent for 9 of 10 */
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
    TH_ASSERT_EQ_INT(rq->n_id, 0);
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
    TH_ASSERT_EQ_INT(rg->n_id, 0);
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
    TH_ASSERT_EQ_INT(rq->n_id, 0);
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
    return th_done();
}
