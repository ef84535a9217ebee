/* micro_card.c — microbenchmark of the cardinality limiter.
 *
 * Requests of 1,000 data points (10 sum metrics x 100 points, 3 attributes
 * each: method (4 values), status (5 values), id) through card_process()
 * on a 65,536-key table prefilled to 0 %, 80 % and 95 %, with
 *   existing  every series already in the table (the steady state),
 *   new       every series new (admitted / aggregated / dropped by band).
 * The table is restored before each request so the fill stays put.
 * Prints P50/P95/P99 per request, the median cost per data point, a
 * protobuf-c unpack-only baseline and the memory of table and sketches.
 * Usage: micro_card [iterations]   (default 300)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "processors/card_int.h"
#include "runtime/clock.h"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req_t;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics res_t;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics scope_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint num_pt;
typedef Opentelemetry__Proto__Resource__V1__Resource resource_t;

#define METRICS 10
#define PER_METRIC 100
#define POINTS (METRICS * PER_METRIC)
#define NATTR 3

/* Storage for one request built on the stack of main (no frees). */
typedef struct gen {
    char strs[POINTS * NATTR + 64][32];
    size_t n_strs;
    card_kv kv[POINTS * NATTR + 2];
    card_any av[POINTS * NATTR + 2];
    card_kv *kvp[POINTS * NATTR + 2];
    size_t n_kv;
    num_pt pt[POINTS];
    num_pt *ptp[POINTS];
    Opentelemetry__Proto__Metrics__V1__Sum sum[METRICS];
    card_metric m[METRICS];
    card_metric *mp[METRICS];
    scope_t sm;
    scope_t *smp;
    resource_t re;
    res_t rm;
    res_t *rmp;
    req_t req;
} gen;

static card_kv *mk_kv(gen *g, const char *k, const char *v)
{
    card_kv kv0 = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    card_any av0 = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    size_t i = g->n_kv++;
    g->kv[i] = kv0;
    g->av[i] = av0;
    g->kv[i].key = (char *)k;
    g->av[i].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    snprintf(g->strs[g->n_strs], sizeof g->strs[0], "%s", v);
    g->av[i].string_value = g->strs[g->n_strs++];
    g->kv[i].value = &g->av[i];
    g->kvp[i] = &g->kv[i];
    return &g->kv[i];
}

static const char *metric_names[METRICS] = {
    "http.server.requests", "http.server.duration_sum", "rpc.calls", "db.queries",
    "cache.hits", "cache.misses", "queue.depth_sum", "jobs.done", "bytes.sent", "bytes.received"};

/* Encodes a request whose ids start at id0. Returns malloc'd bytes. */
static uint8_t *build(uint64_t id0, size_t *len)
{
    static const char *methods[] = {"GET", "POST", "PUT", "DELETE"};
    static const char *status[] = {"200", "201", "404", "500", "503"};
    gen *g = calloc(1, sizeof *g);
    if (!g) abort();
    req_t r0 = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    res_t rm0 = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
    scope_t sm0 = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
    resource_t re0 = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    card_metric m0 = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    Opentelemetry__Proto__Metrics__V1__Sum s0 = OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
    num_pt p0 = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
    g->req = r0; g->rm = rm0; g->sm = sm0; g->re = re0;
    mk_kv(g, "service.name", "checkout");
    mk_kv(g, "host.name", "node-17");
    g->re.attributes = g->kvp;
    g->re.n_attributes = 2;
    char idbuf[32];
    for (size_t k = 0; k < METRICS; k++) {
        g->m[k] = m0;
        g->sum[k] = s0;
        g->m[k].name = (char *)metric_names[k];
        g->m[k].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        g->m[k].sum = &g->sum[k];
        g->sum[k].aggregation_temporality = 1;
        g->sum[k].data_points = &g->ptp[k * PER_METRIC];
        g->sum[k].n_data_points = PER_METRIC;
        g->mp[k] = &g->m[k];
        for (size_t i = 0; i < PER_METRIC; i++) {
            size_t p = k * PER_METRIC + i;
            g->pt[p] = p0;
            g->pt[p].time_unix_nano = 1700000000000000000ULL + p;
            g->pt[p].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
            g->pt[p].as_int = (int64_t)p;
            g->pt[p].attributes = &g->kvp[g->n_kv];
            g->pt[p].n_attributes = NATTR;
            snprintf(idbuf, sizeof idbuf, "%llu", (unsigned long long)(id0 + i));
            mk_kv(g, "method", methods[i % 4]);
            mk_kv(g, "status", status[(i / 4) % 5]);
            mk_kv(g, "user.id", idbuf);
            g->ptp[p] = &g->pt[p];
        }
    }
    g->sm.metrics = g->mp;
    g->sm.n_metrics = METRICS;
    g->smp = &g->sm;
    g->rm.resource = &g->re;
    g->rm.scope_metrics = &g->smp;
    g->rm.n_scope_metrics = 1;
    g->rmp = &g->rm;
    g->req.resource_metrics = &g->rmp;
    g->req.n_resource_metrics = 1;
    *len = protobuf_c_message_get_packed_size(&g->req.base);
    uint8_t *b = malloc(*len);
    if (!b) abort();
    protobuf_c_message_pack(&g->req.base, b);
    free(g);
    return b;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static int64_t pct(const int64_t *v, int n, double p)
{
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static void report(const char *name, int64_t *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_i64);
    printf("%-26s P50 %7.1f us  P95 %7.1f us  P99 %7.1f us  per point %6.1f ns\n", name,
           pct(t, n, 0.5) / 1e3, pct(t, n, 0.95) / 1e3, pct(t, n, 0.99) / 1e3,
           (double)pct(t, n, 0.5) / POINTS);
}

static void fill_junk(card *c, uint32_t used)
{
    for (uint64_t k = 0x7a0000000ULL; c->t.used < used; k += 0x9e3779b97f4aULL)
        card_table_insert(&c->t, k, 0);
}

/* One scenario: fill, warm the sketches and (if existing) the series. */
static void scenario(const char *name, double fill, int existing, int iters)
{
    card_config cfg;
    card_config_default(&cfg);
    card *c = card_new(&cfg, NULL);
    if (!c) abort();
    size_t len;
    uint8_t *warm = build(1, &len);   /* ids 1..100: learned, then known */
    card_result r;
    card_process(c, warm, len, 0, &r);
    card_result_destroy(&r);
    fill_junk(c, (uint32_t)(fill * cfg.max_keys));
    card_slot *snap = malloc((size_t)cfg.max_keys * sizeof *snap);
    if (!snap) abort();
    memcpy(snap, c->t.slots, (size_t)cfg.max_keys * sizeof *snap);
    card_table saved = c->t;
    int64_t *t = malloc((size_t)iters * sizeof *t);
    uint8_t **reqs = malloc((size_t)iters * sizeof *reqs);
    size_t *lens = malloc((size_t)iters * sizeof *lens);
    if (!t || !reqs || !lens) abort();
    for (int i = 0; i < iters; i++) reqs[i] = existing ? warm : build(1000000 + (uint64_t)i * 1000, &lens[i]);
    uint64_t rejected = 0, aggregated = 0, changed = 0;
    for (int i = 0; i < iters; i++) {
        memcpy(c->t.slots, snap, (size_t)cfg.max_keys * sizeof *snap);
        c->t.used = saved.used;
        int64_t t0 = clock_mono_ns();
        card_process(c, reqs[i], existing ? len : lens[i], 1, &r);
        t[i] = clock_mono_ns() - t0;
        rejected += r.rejected_points;
        aggregated += r.aggregated_points;
        changed += !r.unchanged;
        card_result_destroy(&r);
    }
    report(name, t, iters);
    printf("%-26s   rewritten %llu/%d requests, rejected %.0f, aggregated %.0f points per request\n", "",
           (unsigned long long)changed, iters, (double)rejected / iters, (double)aggregated / iters);
    for (int i = 0; i < iters; i++) if (!existing) free(reqs[i]);
    free(reqs); free(lens); free(t); free(snap); free(warm);
    card_free(c);
}

/* Baseline: protobuf-c unpack into an arena, and with malloc. */
static void baseline(int iters)
{
    size_t len;
    uint8_t *pb = build(1, &len);
    card_arena a;
    card_arena_init(&a, 8u << 20);
    int64_t *t = malloc((size_t)iters * sizeof *t);
    if (!t) abort();
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < iters; i++) {
            int64_t t0 = clock_mono_ns();
            ProtobufCMessage *m = protobuf_c_message_unpack(
                &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
                pass ? NULL : &a.pa, len, pb);
            if (pass) protobuf_c_message_free_unpacked(m, NULL);
            else card_arena_reset(&a);
            t[i] = clock_mono_ns() - t0;
        }
        report(pass ? "unpack+free (malloc)" : "unpack (arena)", t, iters);
    }
    printf("request size: %zu bytes, %d points\n", len, POINTS);
    card_arena_destroy(&a);
    free(t);
    free(pb);
}

int main(int argc, char **argv)
{
    int iters = argc > 1 ? atoi(argv[1]) : 300;
    if (iters < 10) iters = 10;
    printf("cardinality limiter: %d requests of %d points per scenario, max_keys 65536\n",
           iters, POINTS);
    baseline(iters);
    scenario("fill 0%, existing series", 0.0, 1, iters);
    scenario("fill 0%, new series", 0.0, 0, iters);
    scenario("fill 80%, existing series", 0.80, 1, iters);
    scenario("fill 80%, new series", 0.80, 0, iters);
    scenario("fill 95%, existing series", 0.95, 1, iters);
    scenario("fill 95%, new series", 0.95, 0, iters);
    card_config cfg;
    card_config_default(&cfg);
    card *c = card_new(&cfg, NULL);
    card_stats st;
    card_get_stats(c, &st);
    printf("memory: table %zu bytes (%zu per slot), sketches %zu bytes (%d metrics x %d labels x K=%d), "
           "card struct %zu bytes\n", st.table_bytes, sizeof(card_slot), st.sketch_bytes,
           CARD_SK_METRICS, CARD_SK_LABELS, CARD_KMV_K, sizeof(struct card));
    card_free(c);
    return 0;
}
