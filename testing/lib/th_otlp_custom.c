/* th_otlp_custom.c — requests with chosen content (th_otlp.h): traces with
 * several resources of given service names and span statuses, metrics with
 * given series (metric name, attributes, value). */
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "testing/lib/th_otlp_int.h"

#define TH_MAX_ATTRS 32

typedef Opentelemetry__Proto__Resource__V1__Resource th_resource;

/* Resource {service.name: service, itest.seed: seed} and its JSON. */
static th_resource *th_named_resource(th_gen *g, const char *service, uint32_t seed)
{
    th_resource *r = th_gen_alloc(g, sizeof(*r));
    opentelemetry__proto__resource__v1__resource__init(r);
    r->n_attributes = 2;
    r->attributes = th_gen_alloc(g, 2 * sizeof(*r->attributes));
    r->attributes[0] = th_gen_kv_str(g, "service.name", th_gen_strf(g, "%s", service));
    r->attributes[1] = th_gen_kv_int(g, "itest.seed", seed);
    th_gen_put(g, &g->json,
               "\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
               "{\"stringValue\":\"%s\"}},{\"key\":\"itest.seed\",\"value\":"
               "{\"intValue\":\"%u\"}}]}", service, seed);
    return r;
}

/* ---- traces ---- */

static int th_span_status(const th_res_spec *rs, size_t i)
{
    if (rs->status == TH_STATUS_OK) return 1;
    if (rs->status == TH_STATUS_LAST_ERROR) return i + 1 == rs->spans ? 2 : 1;
    return -1;
}

static Opentelemetry__Proto__Trace__V1__ResourceSpans *th_resource_spans(th_gen *g,
                                                                         const th_res_spec *rs)
{
    Opentelemetry__Proto__Trace__V1__ResourceSpans *r = th_gen_alloc(g, sizeof(*r));
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = th_gen_alloc(g, sizeof(*ss));
    opentelemetry__proto__trace__v1__resource_spans__init(r);
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    g->seed = rs->seed;
    th_gen_put(g, &g->json, "{");
    r->resource = th_named_resource(g, rs->service, rs->seed);
    r->n_scope_spans = 1;
    r->scope_spans = th_gen_alloc(g, sizeof(*r->scope_spans));
    r->scope_spans[0] = ss;
    th_gen_put(g, &g->json, ",\"scopeSpans\":[{");
    ss->scope = th_gen_scope(g);
    th_gen_json_scope(g);
    th_gen_put(g, &g->json, ",\"spans\":[");
    ss->n_spans = rs->spans;
    ss->spans = th_gen_alloc(g, (rs->spans ? rs->spans : 1) * sizeof(*ss->spans));
    for (size_t i = 0; i < rs->spans; i++) ss->spans[i] = th_gen_span(g, i, th_span_status(rs, i));
    th_gen_put(g, &g->json, "]}]}");
    return r;
}

typedef struct th_traces_arg {
    const th_res_spec *res;
    size_t n;
} th_traces_arg;

static void th_gen_traces_multi(th_gen *g, const void *arg, uint8_t **pb, size_t *pb_len)
{
    const th_traces_arg *a = arg;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    req.n_resource_spans = a->n;
    req.resource_spans = th_gen_alloc(g, (a->n ? a->n : 1) * sizeof(*req.resource_spans));
    th_gen_put(g, &g->json, "{\"resourceSpans\":[");
    for (size_t k = 0; k < a->n; k++) {
        if (k) th_gen_put(g, &g->json, ",");
        req.resource_spans[k] = th_resource_spans(g, &a->res[k]);
    }
    th_gen_put(g, &g->json, "]}");
    *pb_len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
    *pb = malloc(*pb_len ? *pb_len : 1);
    if (!*pb) longjmp(g->fail, 1);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, *pb);
}

th_otlp *th_otlp_new_traces(const th_res_spec *res, size_t n_res)
{
    th_traces_arg a = {res, n_res};
    size_t items = 0;
    for (size_t k = 0; k < n_res; k++) items += res[k].spans;
    return th_otlp_generate(SIG_TRACES, n_res ? res[0].seed : 0, items, th_gen_traces_multi, &a);
}

/* ---- metrics with given series ---- */

typedef Opentelemetry__Proto__Metrics__V1__Metric th_metric;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint th_ndp;

typedef struct th_attr {
    const char *k, *v;
} th_attr;

/* Splits "k=v,k=v" (a copy owned by g) into at most TH_MAX_ATTRS pairs. */
static size_t th_parse_attrs(th_gen *g, const char *text, th_attr *out)
{
    size_t n = 0;
    if (!text || !*text) return 0;
    char *s = th_gen_strf(g, "%s", text);
    for (char *tok = s; tok && *tok;) {
        char *comma = strchr(tok, ',');
        char *eq = strchr(tok, '=');
        if (comma) *comma = '\0';
        if (!eq || (comma && eq > comma) || n == TH_MAX_ATTRS) longjmp(g->fail, 1);
        *eq = '\0';
        out[n].k = tok;
        out[n++].v = eq + 1;
        tok = comma ? comma + 1 : NULL;
    }
    return n;
}

/* Writes the point's content line: attributes sorted by key. */
static void th_point_line(th_gen *g, const char *metric, const th_attr *a, size_t n, int64_t v)
{
    th_attr s[TH_MAX_ATTRS];
    memcpy(s, a, n * sizeof(*a));
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(s[j - 1].k, s[j].k) > 0; j--) {
            th_attr t = s[j];
            s[j] = s[j - 1];
            s[j - 1] = t;
        }
    th_gen_put(g, &g->lines, "%s sum ", metric);
    for (size_t i = 0; i < n; i++) th_gen_put(g, &g->lines, "%s%s=%s", i ? "," : "", s[i].k, s[i].v);
    th_gen_put(g, &g->lines, "%s %lld\n", n ? "" : "-", (long long)v);
}

static th_ndp *th_point_new(th_gen *g, const th_point *p, size_t idx, int first)
{
    th_attr a[TH_MAX_ATTRS];
    size_t n = th_parse_attrs(g, p->attrs, a);
    th_ndp *dp = th_gen_alloc(g, sizeof(*dp));
    opentelemetry__proto__metrics__v1__number_data_point__init(dp);
    dp->n_attributes = n;
    dp->attributes = th_gen_alloc(g, (n ? n : 1) * sizeof(*dp->attributes));
    th_gen_put(g, &g->json, "%s{\"attributes\":[", first ? "" : ",");
    for (size_t i = 0; i < n; i++) {
        dp->attributes[i] = th_gen_kv_str(g, a[i].k, a[i].v);
        th_gen_put(g, &g->json, "%s{\"key\":\"%s\",\"value\":{\"stringValue\":\"%s\"}}",
                   i ? "," : "", a[i].k, a[i].v);
    }
    dp->start_time_unix_nano = TH_T0_NS;
    dp->time_unix_nano = TH_T0_NS + idx;
    dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    dp->as_int = p->value;
    th_gen_put(g, &g->json, "],\"startTimeUnixNano\":\"%llu\",\"timeUnixNano\":\"%llu\","
               "\"asInt\":\"%lld\"}", (unsigned long long)TH_T0_NS,
               (unsigned long long)(TH_T0_NS + idx), (long long)p->value);
    th_point_line(g, p->metric, a, n, p->value);
    return dp;
}

/* The Metric of points [from, to) (all of one name): a delta monotonic sum. */
static th_metric *th_sum_metric(th_gen *g, const th_point *pts, size_t from, size_t to)
{
    th_metric *m = th_gen_alloc(g, sizeof(*m));
    Opentelemetry__Proto__Metrics__V1__Sum *s = th_gen_alloc(g, sizeof(*s));
    opentelemetry__proto__metrics__v1__metric__init(m);
    opentelemetry__proto__metrics__v1__sum__init(s);
    m->name = (char *)pts[from].metric;
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m->sum = s;
    s->aggregation_temporality = 1; /* delta */
    s->is_monotonic = 1;
    s->n_data_points = to - from;
    s->data_points = th_gen_alloc(g, (to - from) * sizeof(*s->data_points));
    th_gen_put(g, &g->json, "{\"name\":\"%s\",\"sum\":{\"dataPoints\":[", m->name);
    for (size_t i = from; i < to; i++) s->data_points[i - from] = th_point_new(g, &pts[i], i, i == from);
    th_gen_put(g, &g->json, "],\"aggregationTemporality\":1,\"isMonotonic\":true}}");
    return m;
}

typedef struct th_points_arg {
    const char *service;
    const th_point *pts;
    size_t n;
} th_points_arg;

/* Fills sm->metrics with one Metric per run of equal names. */
static void th_points_metrics(th_gen *g, const th_points_arg *a,
                              Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm)
{
    sm->metrics = th_gen_alloc(g, (a->n ? a->n : 1) * sizeof(*sm->metrics));
    for (size_t i = 0; i < a->n;) {
        size_t j = i + 1;
        while (j < a->n && strcmp(a->pts[j].metric, a->pts[i].metric) == 0) j++;
        if (sm->n_metrics) th_gen_put(g, &g->json, ",");
        sm->metrics[sm->n_metrics++] = th_sum_metric(g, a->pts, i, j);
        i = j;
    }
}

static void th_gen_points(th_gen *g, const void *arg, uint8_t **pb, size_t *pb_len)
{
    const th_points_arg *a = arg;
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req;
    Opentelemetry__Proto__Metrics__V1__ResourceMetrics *rm = th_gen_alloc(g, sizeof(*rm));
    Opentelemetry__Proto__Metrics__V1__ScopeMetrics *sm = th_gen_alloc(g, sizeof(*sm));
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__init(&req);
    opentelemetry__proto__metrics__v1__resource_metrics__init(rm);
    opentelemetry__proto__metrics__v1__scope_metrics__init(sm);
    th_gen_put(g, &g->json, "{\"resourceMetrics\":[{");
    rm->resource = th_named_resource(g, a->service, g->seed);
    rm->n_scope_metrics = 1;
    rm->scope_metrics = th_gen_alloc(g, sizeof(*rm->scope_metrics));
    rm->scope_metrics[0] = sm;
    sm->scope = th_gen_scope(g);
    th_gen_put(g, &g->json, ",\"scopeMetrics\":[{");
    th_gen_json_scope(g);
    th_gen_put(g, &g->json, ",\"metrics\":[");
    th_points_metrics(g, a, sm);
    th_gen_put(g, &g->json, "]}]}]}");
    req.n_resource_metrics = 1;
    req.resource_metrics = &rm;
    *pb_len = opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__get_packed_size(&req);
    *pb = malloc(*pb_len ? *pb_len : 1);
    if (!*pb) longjmp(g->fail, 1);
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__pack(&req, *pb);
}

th_otlp *th_otlp_new_points(const char *service, uint32_t seed, const th_point *pts, size_t n)
{
    th_points_arg a = {service, pts, n};
    return th_otlp_generate(SIG_METRICS, seed, n, th_gen_points, &a);
}
