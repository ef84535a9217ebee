/* test_card_merge.c — cardinality limiter: how points that collapse onto
 * one reduced series are merged, per metric type; and the wire fast path
 * computing the same series keys as the struct path.
 *
 * Every case puts a card in the aggregate band (table at 80 %) with the
 * label "id" known as volatile, then sends points whose ids are new and
 * whose only other label is host=a: all of them reduce to
 * {host=a, otel.cardinality.aggregated=true}. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "processors/card_int.h"
#include "runtime/otlp_json.h"
#include "runtime/otlp_wire.h"
#include "testing/lib/th.h"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint num_pt;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint hist_pt;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint exp_pt;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint sum_pt;

#define Q "\""
#define ATTRS(id)                                                                     \
    Q "attributes" Q ":[{" Q "key" Q ":" Q "id" Q "," Q "value" Q ":{" Q "stringValue" Q \
    ":" Q id Q "}},{" Q "key" Q ":" Q "host" Q "," Q "value" Q ":{" Q "stringValue" Q ":" Q "a" Q "}}]"
#define REQ(metric)                                                                   \
    "{\"resourceMetrics\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","  \
    "\"value\":{\"stringValue\":\"svc\"}}]},\"scopeMetrics\":[{\"metrics\":[" metric "]}]}]}"

typedef struct run_out {
    card *c;
    card_result res;
    req_t *req;          /* the output, unpacked */
    card_metric *m;      /* its first metric (or NULL) */
} run_out;

static card *card_band2(const char *metric)
{
    card_config cfg;
    card_config_default(&cfg);
    cfg.max_keys = 1024;
    card *c = card_new(&cfg, NULL);
    if (!c) abort();
    for (uint64_t k = 0x51000000ULL; c->t.used < 820; k += 0x9e3779b97ULL)
        card_table_insert(&c->t, k, 0);
    card_metric_sk *ms = card_sketch_metric(&c->sk, card_fnv1a64(metric, strlen(metric)));
    for (uint64_t v = 0; v < 200; v++)
        card_sketch_add(ms, card_fnv1a64("id", 2), v * 0x9e3779b97f4a7c15ULL);
    return c;
}

/* Converts json, runs it through a band-2 card, unpacks the output. */
static void run_json(const char *json, run_out *o)
{
    buf pb;
    char err[128];
    buf_init(&pb, 1 << 20);
    TH_ASSERT_MSG(oj_json_to_pb(SIG_METRICS, json, strlen(json), &pb, err, sizeof err) == 0,
                  "json: %s", err);
    o->c = card_band2("m");
    TH_ASSERT_EQ_INT(card_process(o->c, pb.data, pb.len, 0, &o->res), 0);
    TH_ASSERT_EQ_INT(o->res.unchanged, 0);
    uint32_t items = 0;
    const char *why = NULL;
    TH_ASSERT_MSG(ow_validate(SIG_METRICS, o->res.out.data, o->res.out.len, &items, &why) == 0,
                  "invalid output: %s", why);
    TH_ASSERT_EQ_INT(items, o->res.points_out);
    TH_ASSERT_EQ_INT(o->res.points_in,
                     o->res.points_out + o->res.merged_points + o->res.rejected_points);
    o->req = (req_t *)protobuf_c_message_unpack(
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        NULL, o->res.out.len, o->res.out.data);
    TH_ASSERT(o->req != NULL);
    o->m = o->req->resource_metrics[0]->scope_metrics[0]->metrics[0];
    buf_destroy(&pb);
}

static void run_free(run_out *o)
{
    if (o->req) protobuf_c_message_free_unpacked(&o->req->base, NULL);
    card_result_destroy(&o->res);
    card_free(o->c);
}

/* The point's attributes are exactly host=a and the marker. */
static void check_reduced(card_kv **a, size_t n)
{
    TH_ASSERT_EQ_INT(n, 2);
    TH_ASSERT_EQ_STR(a[0]->key, "host");
    TH_ASSERT_EQ_STR(a[0]->value->string_value, "a");
    TH_ASSERT_EQ_STR(a[1]->key, CARD_MARKER_KEY);
    TH_ASSERT(a[1]->value->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE);
    TH_ASSERT(a[1]->value->bool_value);
}

#define NUM(id, start, t, val) "{" ATTRS(id) ",\"startTimeUnixNano\":\"" start "\",\"timeUnixNano\":\"" t "\"," val "}"

static void t_sum_delta_adds(void)
{
    run_out o = {0};
    run_json(REQ("{\"name\":\"m\",\"sum\":{\"aggregationTemporality\":1,\"isMonotonic\":true,\"dataPoints\":["
                 NUM("1", "20", "200", "\"asInt\":\"3\"") ","
                 NUM("2", "10", "300", "\"asInt\":\"4\"") ","
                 NUM("3", "30", "250", "\"asInt\":\"5\"") "]}}"), &o);
    TH_ASSERT_EQ_INT(o.res.aggregated_points, 3);
    TH_ASSERT_EQ_INT(o.res.merged_points, 2);
    TH_ASSERT_EQ_INT(o.m->sum->n_data_points, 1);
    num_pt *p = o.m->sum->data_points[0];
    TH_ASSERT(p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT);
    TH_ASSERT_EQ_INT(p->as_int, 12);
    TH_ASSERT_EQ_INT(p->start_time_unix_nano, 10);
    TH_ASSERT_EQ_INT(p->time_unix_nano, 300);
    check_reduced(p->attributes, p->n_attributes);
    run_free(&o);
}

static void t_sum_cumulative_mixed_adds(void)
{
    run_out o = {0};
    run_json(REQ("{\"name\":\"m\",\"sum\":{\"aggregationTemporality\":2,\"dataPoints\":["
                 NUM("1", "10", "200", "\"asDouble\":1.5") ","
                 NUM("2", "10", "200", "\"asInt\":\"2\"") "]}}"), &o);
    TH_ASSERT_EQ_INT(o.m->sum->n_data_points, 1);
    num_pt *p = o.m->sum->data_points[0];
    TH_ASSERT(p->value_case == OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE);
    TH_ASSERT(p->as_double == 3.5);
    run_free(&o);
}

static void t_gauge_keeps_latest(void)
{
    run_out o = {0};
    run_json(REQ("{\"name\":\"m\",\"gauge\":{\"dataPoints\":["
                 NUM("1", "0", "200", "\"asInt\":\"1\"") ","
                 NUM("2", "0", "300", "\"asInt\":\"2\"") ","
                 NUM("3", "0", "100", "\"asInt\":\"3\"") "]}}"), &o);
    TH_ASSERT_EQ_INT(o.m->gauge->n_data_points, 1);
    num_pt *p = o.m->gauge->data_points[0];
    TH_ASSERT_EQ_INT(p->as_int, 2);
    TH_ASSERT_EQ_INT(p->time_unix_nano, 300);
    check_reduced(p->attributes, p->n_attributes);
    run_free(&o);
}

#define HIST(id, t, count, sum, buckets, bounds, extra)                                \
    "{" ATTRS(id) ",\"timeUnixNano\":\"" t "\",\"count\":\"" count "\",\"sum\":" sum \
    ",\"bucketCounts\":[" buckets "],\"explicitBounds\":[" bounds "]" extra "}"

static void t_histogram_bounds(void)
{
    run_out o = {0};
    run_json(REQ("{\"name\":\"m\",\"histogram\":{\"aggregationTemporality\":1,\"dataPoints\":["
                 HIST("1", "100", "3", "6", "\"1\",\"2\",\"0\"", "1,5", ",\"min\":1,\"max\":3") ","
                 HIST("2", "100", "2", "20", "\"0\",\"1\",\"1\"", "1,10", ",\"min\":4,\"max\":16") ","
                 HIST("3", "200", "4", "10", "\"1\",\"1\",\"2\"", "1,5", ",\"min\":0.5,\"max\":9") "]}}"),
             &o);
    /* 1 and 3 share bounds and merge; 2 stays apart */
    TH_ASSERT_EQ_INT(o.res.aggregated_points, 3);
    TH_ASSERT_EQ_INT(o.res.merged_points, 1);
    TH_ASSERT_EQ_INT(o.m->histogram->n_data_points, 2);
    hist_pt *a = o.m->histogram->data_points[0], *b = o.m->histogram->data_points[1];
    TH_ASSERT_EQ_INT(a->count, 7);
    TH_ASSERT(a->sum == 16);
    TH_ASSERT_EQ_INT(a->n_bucket_counts, 3);
    TH_ASSERT_EQ_INT(a->bucket_counts[0], 2);
    TH_ASSERT_EQ_INT(a->bucket_counts[1], 3);
    TH_ASSERT_EQ_INT(a->bucket_counts[2], 2);
    TH_ASSERT(a->min == 0.5 && a->max == 9);
    TH_ASSERT_EQ_INT(a->time_unix_nano, 200);
    TH_ASSERT_EQ_INT(b->count, 2);
    TH_ASSERT(b->explicit_bounds[1] == 10);
    check_reduced(a->attributes, a->n_attributes);
    check_reduced(b->attributes, b->n_attributes);
    run_free(&o);
}

#define EXPH(id, scale, zero, pos_off, pos) \
    "{" ATTRS(id) ",\"timeUnixNano\":\"100\",\"count\":\"10\",\"sum\":5,\"scale\":" scale \
    ",\"zeroCount\":\"" zero "\",\"positive\":{\"offset\":" pos_off ",\"bucketCounts\":[" pos "]}}"

static void t_exp_histogram(void)
{
    run_out o = {0};
    run_json(REQ("{\"name\":\"m\",\"exponentialHistogram\":{\"aggregationTemporality\":1,\"dataPoints\":["
                 EXPH("1", "2", "1", "0", "\"1\",\"2\"") ","
                 EXPH("2", "2", "2", "1", "\"10\",\"20\"") ","
                 EXPH("3", "3", "0", "0", "\"5\"") "]}}"), &o);
    TH_ASSERT_EQ_INT(o.m->exponential_histogram->n_data_points, 2);
    exp_pt *a = o.m->exponential_histogram->data_points[0];
    exp_pt *b = o.m->exponential_histogram->data_points[1];
    TH_ASSERT_EQ_INT(a->count, 20);
    TH_ASSERT(a->sum == 10);
    TH_ASSERT_EQ_INT(a->zero_count, 3);
    TH_ASSERT_EQ_INT(a->positive->offset, 0);
    TH_ASSERT_EQ_INT(a->positive->n_bucket_counts, 3);
    TH_ASSERT_EQ_INT(a->positive->bucket_counts[0], 1);
    TH_ASSERT_EQ_INT(a->positive->bucket_counts[1], 12);
    TH_ASSERT_EQ_INT(a->positive->bucket_counts[2], 20);
    TH_ASSERT_EQ_INT(b->scale, 3);   /* another scale: kept apart */
    TH_ASSERT_EQ_INT(b->count, 10);
    run_free(&o);
}

#define SUMMARY(id, t, count) \
    "{" ATTRS(id) ",\"timeUnixNano\":\"" t "\",\"count\":\"" count "\",\"sum\":1}"

static void t_summary_keeps_latest(void)
{
    run_out o = {0};
    run_json(REQ("{\"name\":\"m\",\"summary\":{\"dataPoints\":["
                 SUMMARY("1", "300", "7") "," SUMMARY("2", "100", "8") "," SUMMARY("3", "300", "9") "]}}"),
             &o);
    TH_ASSERT_EQ_INT(o.m->summary->n_data_points, 1);
    sum_pt *p = o.m->summary->data_points[0];
    TH_ASSERT_EQ_INT(p->count, 9);   /* latest; the later one on a tie */
    check_reduced(p->attributes, p->n_attributes);
    run_free(&o);
}

/* A point flagged "no recorded value" adds nothing to a sum. */
static void t_no_recorded_value(void)
{
    run_out o = {0};
    run_json(REQ("{\"name\":\"m\",\"sum\":{\"aggregationTemporality\":1,\"dataPoints\":["
                 NUM("1", "0", "100", "\"asInt\":\"3\"") ","
                 NUM("2", "0", "100", "\"asInt\":\"100\",\"flags\":1") "]}}"), &o);
    TH_ASSERT_EQ_INT(o.m->sum->data_points[0]->as_int, 3);
    run_free(&o);
}

/* Every key one table holds, the other holds too. */
static void same_keys(const card *a, const card *b)
{
    TH_ASSERT_EQ_INT(a->t.used, b->t.used);
    for (uint32_t i = 0; i <= a->t.mask; i++)
        if (a->t.slots[i].key) TH_ASSERT(card_table_find(&b->t, a->t.slots[i].key) >= 0);
}

static void t_wire_keys_match_struct(void)
{
    static const char *reqs[] = {
        REQ("{\"name\":\"m\",\"gauge\":{\"dataPoints\":[{\"attributes\":["
            "{\"key\":\"s\",\"value\":{\"stringValue\":\"ab\"}},"
            "{\"key\":\"y\",\"value\":{\"bytesValue\":\"AAEC\"}},"
            "{\"key\":\"d\",\"value\":{\"doubleValue\":-0.0}},"
            "{\"key\":\"i\",\"value\":{\"intValue\":\"-7\"}},"
            "{\"key\":\"b\",\"value\":{\"boolValue\":true}},"
            "{\"key\":\"e\",\"value\":{}},{\"key\":\"n\"},"
            "{\"key\":\"kx\",\"value\":{\"stringValue\":\"\"}},"
            "{\"key\":\"" CARD_MARKER_KEY "\",\"value\":{\"boolValue\":true}}],\"asInt\":\"1\"},"
            "{\"asInt\":\"2\"},{\"attributes\":[{\"key\":\"b\",\"value\":{\"stringValue\":\"1\"}},"
            "{\"key\":\"a\",\"value\":{\"stringValue\":\"2\"}}],\"asInt\":\"3\"}]}},"
            "{\"name\":\"h\",\"histogram\":{\"dataPoints\":[" HIST("1", "1", "1", "1", "\"1\"", "", "") "]}},"
            "{\"name\":\"x\",\"exponentialHistogram\":{\"dataPoints\":[" EXPH("1", "0", "0", "0", "") "]}},"
            "{\"name\":\"z\",\"summary\":{\"dataPoints\":[" SUMMARY("9", "1", "1") "]}}"),
        "{\"resourceMetrics\":[{\"scopeMetrics\":[{\"metrics\":[{\"name\":\"m\",\"sum\":{\"dataPoints\":[{\"asInt\":\"1\"}]}}]}]},"
        "{\"resource\":{},\"scopeMetrics\":[{\"metrics\":[{\"name\":\"m\",\"sum\":{\"dataPoints\":[{\"asInt\":\"1\"}]}}]}]}]}",
    };
    for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
        buf pb;
        char err[128];
        buf_init(&pb, 1 << 20);
        TH_ASSERT_MSG(oj_json_to_pb(SIG_METRICS, reqs[i], strlen(reqs[i]), &pb, err, sizeof err) == 0,
                      "json %zu: %s", i, err);
        card_config cfg;
        card_config_default(&cfg);
        cfg.max_keys = 64;
        card *fast = card_new(&cfg, NULL), *slow = card_new(&cfg, NULL);
        TH_ASSERT(fast && slow);
        slow->slow_only = 1;
        card_result r1, r2;
        TH_ASSERT_EQ_INT(card_process(fast, pb.data, pb.len, 0, &r1), 0);
        TH_ASSERT_EQ_INT(card_process(slow, pb.data, pb.len, 0, &r2), 0);
        TH_ASSERT_EQ_INT(r1.unchanged, 1);
        TH_ASSERT_EQ_INT(r2.unchanged, 1);
        TH_ASSERT_EQ_INT(r1.points_in, r2.points_in);
        same_keys(fast, slow);
        if (i == 1) TH_ASSERT_EQ_INT(fast->t.used, 1); /* absent and empty resource: one identity */
        card_result_destroy(&r1);
        card_result_destroy(&r2);
        card_free(fast);
        card_free(slow);
        buf_destroy(&pb);
    }
}

/* Appends field (LEN) with payload p[0..n) to out (lengths < 128). */
static size_t lenf(uint8_t *out, uint8_t field, const void *p, size_t n)
{
    out[0] = (uint8_t)(field << 3 | 2);
    out[1] = (uint8_t)n;
    memcpy(out + 2, p, n);
    return n + 2;
}

/* Strings with NUL bytes: both paths cut them at the first NUL, as
 * protobuf-c's copies are read with strlen(). */
static void t_wire_nul_strings(void)
{
    uint8_t any[16], kv[32], pt[48], g[64], m[80], sm[96], rm[112], req[128];
    size_t n = lenf(any, 1, "a\0b", 3);
    size_t k = lenf(kv, 1, "k\0x", 3);
    k += lenf(kv + k, 2, any, n);
    size_t p = lenf(pt, 7, kv, k);
    size_t gl = lenf(g, 1, pt, p);
    size_t ml = lenf(m, 1, "m\0z", 3);
    ml += lenf(m + ml, 5, g, gl);
    size_t sl = lenf(sm, 2, m, ml);
    size_t rl = lenf(rm, 2, sm, sl);
    size_t ql = lenf(req, 1, rm, rl);
    card_config cfg;
    card_config_default(&cfg);
    cfg.max_keys = 64;
    card *fast = card_new(&cfg, NULL), *slow = card_new(&cfg, NULL);
    TH_ASSERT(fast && slow);
    slow->slow_only = 1;
    card_result r1, r2;
    TH_ASSERT_EQ_INT(card_process(fast, req, ql, 0, &r1), 0);
    TH_ASSERT_EQ_INT(card_process(slow, req, ql, 0, &r2), 0);
    TH_ASSERT_EQ_INT(r1.points_in, 1);
    same_keys(fast, slow);
    card_result_destroy(&r1);
    card_result_destroy(&r2);
    card_free(fast);
    card_free(slow);
}

int main(void)
{
    TH_RUN(t_sum_delta_adds);
    TH_RUN(t_sum_cumulative_mixed_adds);
    TH_RUN(t_gauge_keeps_latest);
    TH_RUN(t_histogram_bounds);
    TH_RUN(t_exp_histogram);
    TH_RUN(t_summary_keeps_latest);
    TH_RUN(t_no_recorded_value);
    TH_RUN(t_wire_keys_match_struct);
    TH_RUN(t_wire_nul_strings);
    return th_done();
}
