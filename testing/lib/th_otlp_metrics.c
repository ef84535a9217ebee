/* th_otlp_metrics.c — the metrics request of th_otlp_new(): one metric per
 * data point, cycling gauge (double), sum (int), histogram, exponential
 * histogram, summary; attributes dp=<i>, host=h<i%3>. */
#include <stdlib.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "testing/lib/th_otlp_int.h"

typedef Opentelemetry__Proto__Metrics__V1__Metric th_metric;

static th_kv **th_dp_attrs(th_gen *g, size_t i, size_t *n)
{
    th_kv **kv = th_gen_alloc(g, 2 * sizeof(*kv));
    kv[0] = th_gen_kv_str(g, "dp", th_gen_strf(g, "%zu", i));
    kv[1] = th_gen_kv_str(g, "host", th_gen_strf(g, "h%zu", i % 3));
    *n = 2;
    return kv;
}

/* Writes `"attributes":[..],"startTimeUnixNano":..,"timeUnixNano":..` */
static void th_json_dp_head(th_gen *g, size_t i)
{
    th_gen_put(g, &g->json,
               "\"attributes\":[{\"key\":\"dp\",\"value\":{\"stringValue\":\"%zu\"}},"
               "{\"key\":\"host\",\"value\":{\"stringValue\":\"h%zu\"}}],"
               "\"startTimeUnixNano\":\"%llu\",\"timeUnixNano\":\"%llu\"",
               i, i % 3, (unsigned long long)TH_T0_NS, (unsigned long long)(TH_T0_NS + i));
}

static void th_metric_gauge(th_gen *g, th_metric *m, size_t i)
{
    Opentelemetry__Proto__Metrics__V1__Gauge *ga = th_gen_alloc(g, sizeof(*ga));
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *dp = th_gen_alloc(g, sizeof(*dp));
    opentelemetry__proto__metrics__v1__gauge__init(ga);
    opentelemetry__proto__metrics__v1__number_data_point__init(dp);
    dp->attributes = th_dp_attrs(g, i, &dp->n_attributes);
    dp->start_time_unix_nano = TH_T0_NS;
    dp->time_unix_nano = TH_T0_NS + i;
    dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
    dp->as_double = (double)i + 0.5;
    ga->n_data_points = 1;
    ga->data_points = th_gen_alloc(g, sizeof(*ga->data_points));
    ga->data_points[0] = dp;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m->gauge = ga;
    th_gen_put(g, &g->json, "\"gauge\":{\"dataPoints\":[{");
    th_json_dp_head(g, i);
    th_gen_put(g, &g->json, ",\"asDouble\":%.17g}]}", dp->as_double);
    th_gen_put(g, &g->lines, "gauge dp=%zu,host=h%zu %.17g\n", i, i % 3, dp->as_double);
}

static void th_metric_sum(th_gen *g, th_metric *m, size_t i)
{
    Opentelemetry__Proto__Metrics__V1__Sum *s = th_gen_alloc(g, sizeof(*s));
    Opentelemetry__Proto__Metrics__V1__NumberDataPoint *dp = th_gen_alloc(g, sizeof(*dp));
    opentelemetry__proto__metrics__v1__sum__init(s);
    opentelemetry__proto__metrics__v1__number_data_point__init(dp);
    dp->attributes = th_dp_attrs(g, i, &dp->n_attributes);
    dp->start_time_unix_nano = TH_T0_NS;
    dp->time_unix_nano = TH_T0_NS + i;
    dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    dp->as_int = (int64_t)i * 10;
    s->n_data_points = 1;
    s->data_points = th_gen_alloc(g, sizeof(*s->data_points));
    s->data_points[0] = dp;
    s->aggregation_temporality = 2;
    s->is_monotonic = 1;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m->sum = s;
    th_gen_put(g, &g->json, "\"sum\":{\"dataPoints\":[{");
    th_json_dp_head(g, i);
    th_gen_put(g, &g->json, ",\"asInt\":\"%lld\"}],\"aggregationTemporality\":2,"
               "\"isMonotonic\":true}", (long long)dp->as_int);
    th_gen_put(g, &g->lines, "sum dp=%zu,host=h%zu %lld\n", i, i % 3, (long long)dp->as_int);
}

static void th_metric_histogram(th_gen *g, th_metric *m, size_t i)
{
    Opentelemetry__Proto__Metrics__V1__Histogram *h = th_gen_alloc(g, sizeof(*h));
    Opentelemetry__Proto__Metrics__V1__HistogramDataPoint *dp = th_gen_alloc(g, sizeof(*dp));
    opentelemetry__proto__metrics__v1__histogram__init(h);
    opentelemetry__proto__metrics__v1__histogram_data_point__init(dp);
    dp->attributes = th_dp_attrs(g, i, &dp->n_attributes);
    dp->start_time_unix_nano = TH_T0_NS;
    dp->time_unix_nano = TH_T0_NS + i;
    dp->count = i + 1;
    dp->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    dp->sum = (double)(i + 1) * 2.5;
    dp->n_bucket_counts = 2;
    dp->bucket_counts = th_gen_alloc(g, 2 * sizeof(uint64_t));
    dp->bucket_counts[0] = i + 1;
    dp->n_explicit_bounds = 1;
    dp->explicit_bounds = th_gen_alloc(g, sizeof(double));
    dp->explicit_bounds[0] = 100.0;
    h->n_data_points = 1;
    h->data_points = th_gen_alloc(g, sizeof(*h->data_points));
    h->data_points[0] = dp;
    h->aggregation_temporality = 2;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
    m->histogram = h;
    th_gen_put(g, &g->json, "\"histogram\":{\"dataPoints\":[{");
    th_json_dp_head(g, i);
    th_gen_put(g, &g->json, ",\"count\":\"%zu\",\"sum\":%.17g,\"bucketCounts\":[\"%zu\",\"0\"],"
               "\"explicitBounds\":[100]}],\"aggregationTemporality\":2}", i + 1, dp->sum, i + 1);
    th_gen_put(g, &g->lines, "histogram dp=%zu,host=h%zu count=%zu sum=%.17g\n", i, i % 3,
               i + 1, dp->sum);
}

static void th_metric_exphist(th_gen *g, th_metric *m, size_t i)
{
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogram *h = th_gen_alloc(g, sizeof(*h));
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint *dp =
        th_gen_alloc(g, sizeof(*dp));
    Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets *b =
        th_gen_alloc(g, sizeof(*b));
    opentelemetry__proto__metrics__v1__exponential_histogram__init(h);
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__init(dp);
    opentelemetry__proto__metrics__v1__exponential_histogram_data_point__buckets__init(b);
    dp->attributes = th_dp_attrs(g, i, &dp->n_attributes);
    dp->start_time_unix_nano = TH_T0_NS;
    dp->time_unix_nano = TH_T0_NS + i;
    dp->count = i + 1;
    dp->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT___SUM_SUM;
    dp->sum = (double)i + 0.25;
    b->n_bucket_counts = 1;
    b->bucket_counts = th_gen_alloc(g, sizeof(uint64_t));
    b->bucket_counts[0] = i + 1;
    dp->positive = b;
    h->n_data_points = 1;
    h->data_points = th_gen_alloc(g, sizeof(*h->data_points));
    h->data_points[0] = dp;
    h->aggregation_temporality = 2;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m->exponential_histogram = h;
    th_gen_put(g, &g->json, "\"exponentialHistogram\":{\"dataPoints\":[{");
    th_json_dp_head(g, i);
    th_gen_put(g, &g->json, ",\"count\":\"%zu\",\"sum\":%.17g,\"scale\":0,\"zeroCount\":\"0\","
               "\"positive\":{\"offset\":0,\"bucketCounts\":[\"%zu\"]}}],"
               "\"aggregationTemporality\":2}", i + 1, dp->sum, i + 1);
    th_gen_put(g, &g->lines, "exphistogram dp=%zu,host=h%zu count=%zu sum=%.17g\n", i, i % 3,
               i + 1, dp->sum);
}

static void th_metric_summary(th_gen *g, th_metric *m, size_t i)
{
    Opentelemetry__Proto__Metrics__V1__Summary *s = th_gen_alloc(g, sizeof(*s));
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint *dp = th_gen_alloc(g, sizeof(*dp));
    Opentelemetry__Proto__Metrics__V1__SummaryDataPoint__ValueAtQuantile *q =
        th_gen_alloc(g, sizeof(*q));
    opentelemetry__proto__metrics__v1__summary__init(s);
    opentelemetry__proto__metrics__v1__summary_data_point__init(dp);
    opentelemetry__proto__metrics__v1__summary_data_point__value_at_quantile__init(q);
    dp->attributes = th_dp_attrs(g, i, &dp->n_attributes);
    dp->start_time_unix_nano = TH_T0_NS;
    dp->time_unix_nano = TH_T0_NS + i;
    dp->count = i + 2;
    dp->sum = (double)i * 1.5 + 1;
    q->quantile = 0.5;
    q->value = 1.0;
    dp->n_quantile_values = 1;
    dp->quantile_values = th_gen_alloc(g, sizeof(*dp->quantile_values));
    dp->quantile_values[0] = q;
    s->n_data_points = 1;
    s->data_points = th_gen_alloc(g, sizeof(*s->data_points));
    s->data_points[0] = dp;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY;
    m->summary = s;
    th_gen_put(g, &g->json, "\"summary\":{\"dataPoints\":[{");
    th_json_dp_head(g, i);
    th_gen_put(g, &g->json, ",\"count\":\"%zu\",\"sum\":%.17g,"
               "\"quantileValues\":[{\"quantile\":0.5,\"value\":1}]}]}", i + 2, dp->sum);
    th_gen_put(g, &g->lines, "summary dp=%zu,host=h%zu count=%zu sum=%.17g\n", i, i % 3,
               i + 2, dp->sum);
}

static th_metric *th_metric_new(th_gen *g, size_t i)
{
    static void (*const fill[5])(th_gen *, th_metric *, size_t) = {
        th_metric_gauge, th_metric_sum, th_metric_histogram, th_metric_exphist,
        th_metric_summary};
    th_metric *m = th_gen_alloc(g, sizeof(*m));
    opentelemetry__proto__metrics__v1__metric__init(m);
    m->name = th_gen_strf(g, "itest.m%u.%zu", g->seed, i);
    m->unit = "1";
    th_gen_put(g, &g->json, "%s{\"name\":\"%s\",\"unit\":\"1\",", i ? "," : "", m->name);
    th_gen_put(g, &g->lines, "%s ", m->name);
    fill[i % 5](g, m, i);
    th_gen_put(g, &g->json, "}");
    return m;
}

void th_gen_metrics(th_gen *g, size_t n, uint8_t **pb, size_t *pb_len)
{
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = th_gen_alloc(g, sizeof(*rm));
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = th_gen_alloc(g, sizeof(*sm));
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(&req);
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    rm->resource = th_gen_resource(g);
    rm->n_scope_metrics = 1;
    rm->scope_metrics = th_gen_alloc(g, sizeof(*rm->scope_metrics));
    rm->scope_metrics[0] = sm;
    sm->scope = th_gen_scope(g);
    sm->n_metrics = n;
    sm->metrics = th_gen_alloc(g, (n ? n : 1) * sizeof(*sm->metrics));
    req.n_resource_metrics = 1;
    req.resource_metrics = &rm;
    th_gen_put(g, &g->json, "{\"resourceMetrics\":[{");
    th_gen_json_resource(g);
    th_gen_put(g, &g->json, ",\"scopeMetrics\":[{");
    th_gen_json_scope(g);
    th_gen_put(g, &g->json, ",\"metrics\":[");
    for (size_t i = 0; i < n; i++) sm->metrics[i] = th_metric_new(g, i);
    th_gen_put(g, &g->json, "]}]}]}");
    *pb_len = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(&req);
    *pb = malloc(*pb_len ? *pb_len : 1);
    if (!*pb) longjmp(g->fail, 1);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(&req, *pb);
}
