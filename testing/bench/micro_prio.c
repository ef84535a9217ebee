/* micro_prio.c — microbenchmark of the priority classifier.
 *
 * Requests of 100 spans like an SDK sends them (ids, name, times, five span
 * attributes, six resource attributes; ~30 KB), in one resource or spread
 * over ten. Prints "# " lines with the cost per request and per span of
 * prio_classify() (pass-through), prio_items() on a mixed request (classify
 * + split), a span-status rule (walks every span), and for scale
 * ow_validate() and a protobuf-c unpack + free. Asserts nothing.
 * Usage: micro_prio [iterations]   (default 20000)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "processors/prio.h"
#include "runtime/otlp_wire.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Trace__V1__Span Span;

#define SPANS 100
#define NRES_MAX 10

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Storage for one request being built (pointers into it are packed). */
typedef struct store {
    KeyValue kv[NRES_MAX * 6 + SPANS * 5];
    KeyValue *pkv[NRES_MAX * 6 + SPANS * 5];
    AnyValue av[NRES_MAX * 6 + SPANS * 5];
    size_t nkv;
    Span sp[SPANS];
    Span *psp[SPANS];
    Opentelemetry__Proto__Trace__V1__Status st[SPANS];
    Opentelemetry__Proto__Resource__V1__Resource res[NRES_MAX];
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss[NRES_MAX];
    Opentelemetry__Proto__Trace__V1__ScopeSpans *pss[NRES_MAX];
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs[NRES_MAX];
    Opentelemetry__Proto__Trace__V1__ResourceSpans *prs[NRES_MAX];
    uint8_t ids[SPANS][32];
} store;

static KeyValue **attrs(store *s, size_t n, const char *const *keys, const char *const *vals,
                        int64_t ival)
{
    KeyValue **first = &s->pkv[s->nkv];
    for (size_t i = 0; i < n; i++, s->nkv++) {
        KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
        AnyValue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        if (vals[i]) {
            av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
            av.string_value = (char *)vals[i];
        } else {
            av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            av.int_value = ival;
        }
        s->av[s->nkv] = av;
        kv.key = (char *)keys[i];
        kv.value = &s->av[s->nkv];
        s->kv[s->nkv] = kv;
        s->pkv[s->nkv] = &s->kv[s->nkv];
    }
    return first;
}

static void make_span(store *s, int i, int error)
{
    static const char *k[5] = {"http.method", "http.url", "http.status_code", "net.peer.name", "thread.id"};
    static const char *v[5] = {"GET", "https://shop.example.com/api/v1/items?page=2", NULL,
                               "10.1.2.3", NULL};
    Span sp = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
    Opentelemetry__Proto__Trace__V1__Status st = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
    for (int b = 0; b < 32; b++) s->ids[i][b] = (uint8_t)(i * 31 + b * 7 + 1);
    sp.trace_id = (ProtobufCBinaryData){16, s->ids[i]};
    sp.span_id = (ProtobufCBinaryData){8, s->ids[i] + 16};
    sp.parent_span_id = (ProtobufCBinaryData){8, s->ids[i] + 24};
    sp.name = "GET /api/v1/items";
    sp.kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    sp.start_time_unix_nano = 1700000000000000000ull + (uint64_t)i * 1000;
    sp.end_time_unix_nano = sp.start_time_unix_nano + 250000;
    sp.attributes = attrs(s, 5, k, v, 200);
    sp.n_attributes = 5;
    st.code = error ? OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR
                    : OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
    s->st[i] = st;
    sp.status = &s->st[i];
    s->sp[i] = sp;
    s->psp[i] = &s->sp[i];
}

/* An owned encoded request of 100 spans over nres resources named by svc. */
static uint8_t *build(size_t nres, const char *const *svc, size_t *len)
{
    static const char *k[6] = {"service.name", "service.version", "host.name",
                               "telemetry.sdk.name", "telemetry.sdk.language",
                               "deployment.environment"};
    store *s = calloc(1, sizeof *s);
    if (!s) abort();
    size_t per = SPANS / nres;
    for (int i = 0; i < SPANS; i++) make_span(s, i, 0);
    for (size_t r = 0; r < nres; r++) {
        const char *v[6] = {svc[r], "1.42.0", "node-17.cluster.local", "opentelemetry", "go", "prod"};
        Opentelemetry__Proto__Resource__V1__Resource res =
            OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
        Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
        Opentelemetry__Proto__Trace__V1__ResourceSpans rs =
            OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
        res.attributes = attrs(s, 6, k, v, 0);
        res.n_attributes = 6;
        s->res[r] = res;
        ss.spans = &s->psp[r * per];
        ss.n_spans = per;
        s->ss[r] = ss;
        s->pss[r] = &s->ss[r];
        rs.resource = &s->res[r];
        rs.scope_spans = &s->pss[r];
        rs.n_scope_spans = 1;
        s->rs[r] = rs;
        s->prs[r] = &s->rs[r];
    }
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.resource_spans = s->prs;
    req.n_resource_spans = nres;
    *len = protobuf_c_message_get_packed_size(&req.base);
    uint8_t *b = malloc(*len);
    if (!b) abort();
    protobuf_c_message_pack(&req.base, b);
    free(s);
    return b;
}

static void report(const char *what, double secs, long iters)
{
    double ns = secs * 1e9 / (double)iters;
    printf("# %-52s %9.0f ns/request %7.1f ns/span\n", what, ns, ns / SPANS);
}

static void bench_classify(const char *what, const prio *p, const uint8_t *pb, size_t len, long n)
{
    prio_result r;
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if (prio_classify(p, SIG_TRACES, pb, len, &r) != 0) abort();
    report(what, now_s() - t0, n);
}

static void bench_items(const char *what, const prio *p, const uint8_t *pb, size_t len, long n)
{
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        item *out[CLASS_COUNT];
        size_t k;
        if (prio_items(p, SIG_TRACES, pb, len, SPANS, 0, out, &k) != 0) abort();
        for (size_t j = 0; j < k; j++) item_free(out[j]);
    }
    report(what, now_s() - t0, n);
}

static void bench_reference(const uint8_t *pb, size_t len, long n)
{
    uint32_t cnt;
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        if (ow_validate(SIG_TRACES, pb, len, &cnt, NULL) != 0) abort();
    report("reference: ow_validate, 1 resource", now_s() - t0, n);
    long m = n / 10 ? n / 10 : 1;
    t0 = now_s();
    for (long i = 0; i < m; i++) {
        ProtobufCMessage *msg = protobuf_c_message_unpack(ow_descriptor(SIG_TRACES), NULL, len, pb);
        if (!msg) abort();
        protobuf_c_message_free_unpacked(msg, NULL);
    }
    report("reference: protobuf-c unpack + free, 1 resource", now_s() - t0, m);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 20000;
    const prio_rule rules[] = {
        {CLASS_CRITICAL, "service.name", "^(checkout|payment)"},
        {CLASS_HIGH, "service.name", "^(api|auth)-"},
        {CLASS_HIGH, "deployment.environment", "^staging$"},
    };
    const prio_rule err_rules[] = {{CLASS_HIGH, NULL, NULL, .span_error = 1}};
    static const char *one[1] = {"frontend"};
    static const char *same[10] = {"frontend", "cart", "search", "frontend", "cart",
                                   "search", "frontend", "cart", "search", "ads"};
    static const char *mixed[10] = {"checkout", "api-gw", "frontend", "payment", "auth-svc",
                                    "cart", "search", "checkout", "api-gw", "ads"};
    prio *p = prio_new(rules, 3, NULL, 0), *pe = prio_new(err_rules, 1, NULL, 0);
    size_t l1, l10, lmix;
    uint8_t *r1 = build(1, one, &l1), *r10 = build(10, same, &l10), *rmix = build(10, mixed, &lmix);
    if (!p || !pe || n <= 0) return 1;
    printf("# request sizes: 1 resource %zu B, 10 resources %zu B (100 spans each)\n", l1, l10);
    bench_classify("classify, 1 resource (pass-through)", p, r1, l1, n);
    bench_classify("classify, 10 resources, one class (pass-through)", p, r10, l10, n);
    bench_classify("classify, 10 resources, 3 classes", p, rmix, lmix, n);
    bench_items("prio_items, 1 resource (classify + copy)", p, r1, l1, n);
    bench_items("prio_items, 10 resources, 3 classes (split)", p, rmix, lmix, n);
    bench_classify("classify, span_error rule, 1 resource (no ERROR)", pe, r1, l1, n);
    bench_reference(r1, l1, n);
    free(r1);
    free(r10);
    free(rmix);
    prio_free(p);
    prio_free(pe);
    return 0;
}
