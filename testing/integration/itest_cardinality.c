/* itest_cardinality.c — the cardinality limiter through the real binaries.
 *
 * A set of pre-existing series is sent, then a flood of unique series (a
 * label `id` unique per point, a label `pod` with few values, one metric
 * name per request out of a few dozen). The flood walks the table through
 * its three bands: admitted unchanged, aggregated (id removed, the marker
 * otel.cardinality.aggregated=true added, points of one reduced series
 * merged within a request), dropped. Then the pre-existing series are sent
 * again. Checked: spillway_cl_keys_used <= max_keys; the pre-existing
 * series arrive upstream unchanged after the flood (their content lines
 * identical to before); the dropped points = the sum of
 * partial_success.rejected_data_points over all responses =
 * spillway_cl_dropped_samples_total; every flood point upstream is either
 * unchanged or carries the marker without `id`; points in = points
 * upstream + dropped + merged, where every flood point has value 1 so an
 * aggregated point's value tells how many points it holds (merged = sum
 * over aggregated points of value - 1), and the aggregated points hold
 * spillway_cl_aggregated_samples_total. Runs with max_keys 4096 and once
 * with the default 65,536 and 1,000,000 unique series. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define DEADLINE_MS 10000
#define DRAIN_MS 120000
#define MARKER "otel.cardinality.aggregated=true"
#define PRE_ROUTES 100 /* pre.requests{route,code}: 2 series per route */
#define PRE_FLOOD 50   /* pre-existing series of flood.m0 */
#define PRE_POINTS (2 * PRE_ROUTES + PRE_FLOOD)
#define ATTR_LEN 48
#define POD_RUN 8

typedef struct flood {
    const char *cardinality_yaml; /* processors lines, NULL for the defaults */
    long max_keys;
    long series;  /* unique flood series, one point each */
    long per_req; /* points per request */
    int metrics;  /* metric names, one per request in turn */
    int pods;     /* values of the pod label (kept below the volatile bound) */
} flood;

/* Points and their attribute texts for one request; released with the case. */
typedef struct batch {
    th_point *pts;
    char (*attrs)[ATTR_LEN];
    char names[64][32];
} batch;

static void batch_release(void *p)
{
    batch *b = p;
    free(b->pts);
    free(b->attrs);
    free(b);
}

static batch *batch_new(long n)
{
    batch *b = calloc(1, sizeof(*b));
    TH_ASSERT(b);
    th_res_add(batch_release, b);
    b->pts = calloc((size_t)n, sizeof(*b->pts));
    b->attrs = calloc((size_t)n, sizeof(*b->attrs));
    TH_ASSERT(b->pts && b->attrs);
    return b;
}

static double metric(th_stack *s, const char *name, const char *labels)
{
    int found = 0;
    const char *text = th_stack_metrics(s);
    TH_ASSERT_MSG(text, "GET /metrics failed");
    double v = th_prom_sum(text, name, labels, &found);
    TH_ASSERT_MSG(found == 1, "/metrics has %d samples of %s{%s}", found, name,
                  labels ? labels : "");
    return v;
}

/* The pre-existing series: pre.requests{code,route} and flood.m0{id=preK,pod}. */
static th_otlp *pre_request(const flood *f, batch *b)
{
    int n = 0;
    snprintf(b->names[0], sizeof(b->names[0]), "pre.requests");
    snprintf(b->names[1], sizeof(b->names[1]), "flood.m0");
    for (int k = 0; k < 2 * PRE_ROUTES; k++, n++) {
        snprintf(b->attrs[n], ATTR_LEN, "route=/r%d,code=%d", k / 2, k % 2 ? 500 : 200);
        b->pts[n] = (th_point){b->names[0], b->attrs[n], 1000 + k};
    }
    for (int k = 0; k < PRE_FLOOD; k++, n++) {
        snprintf(b->attrs[n], ATTR_LEN, "pod=p%d,id=pre%d", k % f->pods, k);
        b->pts[n] = (th_point){b->names[1], b->attrs[n], 7 + k};
    }
    th_otlp *d = th_otlp_new_points("card-app", 5, b->pts, (size_t)n);
    TH_ASSERT(d);
    return d;
}

/* Flood request r: points id = r * per_req .. , metric flood.m<r % metrics>,
 * pod = (id / POD_RUN) % pods, value 1. Runs of POD_RUN points share a pod
 * so that, from a metric's first points on, id has clearly more distinct
 * values than pod (with both distinct per point, the estimator could not
 * tell which label is the volatile one). */
static th_otlp *flood_request(const flood *f, batch *b, long r)
{
    long from = r * f->per_req, to = from + f->per_req;
    if (to > f->series) to = f->series;
    snprintf(b->names[0], sizeof(b->names[0]), "flood.m%ld", r % f->metrics);
    for (long j = from; j < to; j++) {
        snprintf(b->attrs[j - from], ATTR_LEN, "id=%ld,pod=p%ld", j, (j / POD_RUN) % f->pods);
        b->pts[j - from] = (th_point){b->names[0], b->attrs[j - from], 1};
    }
    th_otlp *d = th_otlp_new_points("card-app", 5, b->pts, (size_t)(to - from));
    TH_ASSERT(d);
    return d;
}

/* rejected_data_points of a 200 answer (0 when partial_success is unset). */
static long rejected_points(const th_resp *r)
{
    char ct[128] = "";
    TH_ASSERT_MSG(r->status == 200, "status %d: %.200s", r->status, (const char *)r->body);
    TH_ASSERT(th_resp_header(r, "Content-Type", ct, sizeof(ct)));
    TH_ASSERT_MSG(strstr(ct, "application/x-protobuf"), "Content-Type %s", ct);
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceResponse *m =
        opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__unpack(
            NULL, r->body_len, r->body);
    TH_ASSERT_MSG(m, "the answer does not decode as ExportMetricsServiceResponse");
    long n = 0;
    int msg = 0;
    if (m->partial_success) {
        n = (long)m->partial_success->rejected_data_points;
        msg = m->partial_success->error_message && *m->partial_success->error_message;
    }
    opentelemetry__proto__collector__metrics__v1__export_metrics_service_response__free_unpacked(
        m, NULL);
    TH_ASSERT_MSG(n == 0 || msg, "%ld points rejected without an error_message", n);
    return n;
}

/* Waits until the mock's /received/metrics ends with `tail` (the lines of
 * the last request sent: one connection, FIFO, so all before arrived). */
static const char *wait_tail(th_stack *s, const char *tail, int timeout_ms)
{
    size_t tl = strlen(tail);
    int64_t deadline = th_now_ms() + timeout_ms;
    for (;;) {
        const char *text = th_stack_mock_get(s, "/received/metrics");
        size_t len = text ? strlen(text) : 0;
        if (text && len >= tl && memcmp(text + len - tl, tail, tl) == 0) return text;
        TH_ASSERT_MSG(th_now_ms() < deadline, "the last request did not arrive upstream within "
                      "%d ms", timeout_ms);
        th_nap_ms(50);
    }
}

typedef struct tally {
    long lines, plain, aggregated, agg_value, merged;
} tally;

/* Classifies one flood content line: unchanged (id kept, value 1) or
 * aggregated (marker, no id). seen[] catches an id arriving twice. */
static void tally_line(const flood *f, const char *line, size_t len, char *seen, tally *t)
{
    char name[64], attrs[160];
    long long v = 0;
    TH_ASSERT_MSG(len < 200 && sscanf(line, "%63s sum %159s %lld", name, attrs, &v) == 3 &&
                      strncmp(name, "flood.m", 7) == 0,
                  "unexpected line upstream: %.*s", (int)len, line);
    t->lines++;
    if (strncmp(attrs, "id=", 3) == 0) {
        long id = strtol(attrs + 3, NULL, 10);
        TH_ASSERT_MSG(v == 1 && id >= 0 && id < f->series && !strstr(attrs, MARKER),
                      "changed flood point upstream: %.*s", (int)len, line);
        TH_ASSERT_MSG(!seen[id], "flood point id=%ld arrived twice", id);
        seen[id] = 1;
        t->plain++;
    } else {
        TH_ASSERT_MSG(strncmp(attrs, MARKER ",pod=p", strlen(MARKER ",pod=p")) == 0 && v >= 1,
                      "aggregated point without the marker, or with other labels than pod: %.*s",
                      (int)len, line);
        t->aggregated++;
        t->agg_value += v;
        t->merged += v - 1;
    }
}

static tally tally_flood(const flood *f, const char *text, size_t len)
{
    tally t = {0};
    char *seen = calloc((size_t)f->series, 1);
    TH_ASSERT(seen);
    th_res_add(free, seen);
    for (const char *line = text; line < text + len;) {
        const char *nl = memchr(line, '\n', (size_t)(text + len - line));
        size_t l = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
        if (l) tally_line(f, line, l, seen, &t);
        line += l + 1;
    }
    return t;
}

/* Sends the flood; returns the sum of rejected_data_points. */
static long send_flood(const flood *f, th_http *c, batch *b)
{
    long rejected = 0, nreq = (f->series + f->per_req - 1) / f->per_req;
    for (long r = 0; r < nreq; r++) {
        th_otlp *d = flood_request(f, b, r);
        const th_resp *resp = th_otlp_send(c, d, TH_ENC_PB);
        TH_ASSERT_MSG(resp, "flood request %ld: %s", r, th_http_error(c));
        rejected += rejected_points(resp);
        th_otlp_free(d);
    }
    return rejected;
}

/* Sends the pre-existing series the first time; returns the mock's
 * content lines for them (owned, registered). */
static char *send_pre_first(th_stack *s, th_http *c, const th_otlp *pre)
{
    char why[512];
    const th_resp *r = th_otlp_send(c, pre, TH_ENC_PB);
    TH_ASSERT_MSG(th_otlp_check_success(r, SIG_METRICS, TH_ENC_PB, why, sizeof(why)) == 0,
                  "pre-existing series: %s", why);
    th_expect *e = th_expect_new();
    TH_ASSERT(e && th_expect_add(e, pre) == 0);
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_METRICS, e, 0, DEADLINE_MS, why, sizeof(why)) == 0,
                  "pre-existing series, first send: %s", why);
    char *before = strdup(th_stack_mock_get(s, "/received/metrics"));
    TH_ASSERT(before);
    th_res_add(free, before);
    return before;
}

/* The limiter's counters (and the receiver's accepted points). */
typedef struct counters {
    double handed, dropped, aggregated, keys;
} counters;

static counters read_counters(th_stack *s)
{
    counters k;
    k.handed = metric(s, "spillway_receiver_items_total", "signal=\"metrics\",transport=\"http\"");
    k.dropped = metric(s, "spillway_cl_dropped_samples_total", NULL);
    k.aggregated = metric(s, "spillway_cl_aggregated_samples_total", NULL);
    k.keys = metric(s, "spillway_cl_keys_used", NULL);
    return k;
}

static void check_figures(const flood *f, const tally *t, long rejected, const counters *k0,
                          const counters *k1, long upstream_items)
{
    double handed = k1->handed - k0->handed, dropped = k1->dropped - k0->dropped;
    double agg = k1->aggregated - k0->aggregated;
    printf("# keys_used %g (fill %.3f); in %ld = upstream %ld (unchanged %ld + aggregated %ld) "
           "+ dropped %g + merged %ld; receiver_items_total +%g\n", k1->keys,
           k1->keys / (double)f->max_keys, f->series, t->lines, t->plain, t->aggregated, dropped,
           t->merged, handed);
    printf("# partial_success rejected %ld; cl_dropped %g; cl_aggregated %g = points in "
           "aggregated series %ld\n", rejected, dropped, agg, t->agg_value);
    TH_ASSERT_MSG(k1->keys <= (double)f->max_keys, "keys_used %g > max_keys %ld", k1->keys,
                  f->max_keys);
    TH_ASSERT_EQ_INT(upstream_items, t->lines + PRE_POINTS);
    /* the receiver counts what it hands on, after the limiter */
    TH_ASSERT_EQ_INT(handed, t->lines + PRE_POINTS);
    TH_ASSERT_EQ_INT(rejected, dropped);
    TH_ASSERT_EQ_INT(f->series, t->lines + (long)dropped + t->merged);
    TH_ASSERT_EQ_INT(agg, t->agg_value);
    TH_ASSERT_MSG(t->aggregated > 0 && t->merged > 0 && dropped > 0,
                  "the flood did not reach every band (aggregated %ld, merged %ld, dropped %g)",
                  t->aggregated, t->merged, dropped);
}

static void run_flood(const flood *f)
{
    char why[512];
    th_stack_opts o = {.exporter_yaml = "    max_in_flight: 1\n",
                       .processors_yaml = f->cardinality_yaml};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_http *c = th_stack_client(s);
    batch *b = batch_new(f->per_req > PRE_POINTS ? f->per_req : PRE_POINTS);
    TH_ASSERT(c);
    th_otlp *pre = pre_request(f, b);
    char *before = send_pre_first(s, c, pre);
    TH_ASSERT(th_stack_mock_post(s, "/reset") / 100 == 2);

    counters k0 = read_counters(s);
    int64_t t0 = th_now_ms();
    long rejected = send_flood(f, c, b);
    int64_t t_sent = th_now_ms();
    const th_resp *r = th_otlp_send(c, pre, TH_ENC_PB);
    TH_ASSERT_MSG(th_otlp_check_success(r, SIG_METRICS, TH_ENC_PB, why, sizeof(why)) == 0,
                  "pre-existing series after the flood: %s", why);
    /* ends with exactly the lines of the first send: the series are unchanged */
    const char *text = wait_tail(s, before, DRAIN_MS);
    int64_t t_done = th_now_ms();
    size_t flood_len = strlen(text) - strlen(before);
    TH_ASSERT_MSG(flood_len == 0 || text[flood_len - 1] == '\n', "pre-existing lines changed");
    tally t = tally_flood(f, text, flood_len);
    printf("# max_keys %ld: %ld unique series in %ld-point requests sent in %lld ms, "
           "upstream complete after %lld ms\n", f->max_keys, f->series, f->per_req,
           (long long)(t_sent - t0), (long long)(t_done - t0));
    th_mock_stats st;
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    counters k1 = read_counters(s);
    check_figures(f, &t, rejected, &k0, &k1, st.items[SIG_METRICS]);
}

/* max_keys 4096: admit below 3072, aggregate below 3687 (volatile bound
 * 38 distinct values, so 24 pods stay), drop above. */
static void t_flood_4096(void)
{
    static const flood f = {"  cardinality: { max_keys: 4096 }\n", 4096, 50000, 1000, 64, 24};
    run_flood(&f);
}

/* The defaults (65,536 keys; volatile bound 614, 200 pods stay) and
 * 1,000,000 unique series in requests of 5,000 points. */
static void t_flood_default_1m(void)
{
    static const flood f = {NULL, 65536, 1000000, 5000, 64, 200};
    run_flood(&f);
}

int main(void)
{
    TH_ICASE(t_flood_4096);
    TH_ICASE(t_flood_default_1m);
    return th_done();
}
