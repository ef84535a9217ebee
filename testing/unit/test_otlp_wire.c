/* test_otlp_wire.c — ow_validate(): schema walk, item counts, the
 * invariant that what it accepts unpacks with protobuf-c to the same count,
 * and agreement with the reference walk (testing/lib/ow_ref.h) on every
 * input: same verdict, reason and count. */
#include "runtime/otlp_wire.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "runtime/buf.h"
#include "runtime/err.h"
#include "processors/prio_wire.h"
#include "runtime/pbwire.h"
#include "testing/lib/ow_ref.h"
#include "testing/lib/th.h"

typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsReq;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__Gauge Gauge;
typedef Opentelemetry__Proto__Metrics__V1__Sum Sum;
typedef Opentelemetry__Proto__Metrics__V1__Histogram Histogram;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogram ExpHistogram;
typedef Opentelemetry__Proto__Metrics__V1__Summary Summary;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDP;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistDP;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint ExpDP;
typedef Opentelemetry__Proto__Metrics__V1__ExponentialHistogramDataPoint__Buckets Buckets;
typedef Opentelemetry__Proto__Metrics__V1__SummaryDataPoint SummaryDP;
typedef Opentelemetry__Proto__Metrics__V1__Exemplar Exemplar;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs ResourceLogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs ScopeLogs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;

#define MAX_SPANS 128
#define NATTR 5

/* ---- counting straight from the unpacked structs ---- */

static uint32_t metric_points(const Metric *m)
{
    switch (m->data_case) {
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE: return (uint32_t)m->gauge->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM: return (uint32_t)m->sum->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM:
        return (uint32_t)m->histogram->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM:
        return (uint32_t)m->exponential_histogram->n_data_points;
    case OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY: return (uint32_t)m->summary->n_data_points;
    default: return 0;
    }
}

static uint32_t struct_count(sw_signal sig, const ProtobufCMessage *msg)
{
    uint32_t n = 0;
    if (sig == SIG_TRACES) {
        const TraceReq *r = (const TraceReq *)msg;
        for (size_t i = 0; i < r->n_resource_spans; i++)
            for (size_t j = 0; j < r->resource_spans[i]->n_scope_spans; j++)
                n += (uint32_t)r->resource_spans[i]->scope_spans[j]->n_spans;
    } else if (sig == SIG_LOGS) {
        const LogsReq *r = (const LogsReq *)msg;
        for (size_t i = 0; i < r->n_resource_logs; i++)
            for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++)
                n += (uint32_t)r->resource_logs[i]->scope_logs[j]->n_log_records;
    } else {
        const MetricsReq *r = (const MetricsReq *)msg;
        for (size_t i = 0; i < r->n_resource_metrics; i++)
            for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
                const ScopeMetrics *sm = r->resource_metrics[i]->scope_metrics[j];
                for (size_t k = 0; k < sm->n_metrics; k++) n += metric_points(sm->metrics[k]);
            }
    }
    return n;
}

/* ow_validate and the reference walk agree; if they accept, protobuf-c
 * must unpack it to the same count. Returns 1 if accepted. */
static int check_invariant(sw_signal sig, const uint8_t *d, size_t n)
{
    uint32_t items = 99, ref_items = 98;
    const char *why = NULL, *ref_why = NULL;
    int rc = ow_validate(sig, d, n, &items, &why);
    TH_ASSERT_EQ_INT(rc, owref_validate(sig, d, n, &ref_items, &ref_why));
    TH_ASSERT_EQ_INT(items, ref_items);
    if (rc != 0) TH_ASSERT_EQ_STR(why, ref_why);
    if (rc != 0) {
        TH_ASSERT_EQ_INT(rc, SW_EDECODE);
        TH_ASSERT(why != NULL);
        return 0;
    }
    ProtobufCMessage *m = protobuf_c_message_unpack(ow_descriptor(sig), NULL, n, d);
    if (!m) { /* protobuf-c refuses groups: it must unpack the request without them */
        buf plain;
        buf_init(&plain, n + 5 * OW_MAX_DEPTH);
        TH_ASSERT_EQ_INT(ow_strip_groups(sig, d, n, &plain), 0);
        m = protobuf_c_message_unpack(ow_descriptor(sig), NULL, plain.len, plain.data);
        buf_destroy(&plain);
    }
    TH_ASSERT_MSG(m != NULL, "accepted (%u items) but protobuf-c cannot unpack", items);
    uint32_t want = struct_count(sig, m), generic = ow_count_items(sig, m);
    protobuf_c_message_free_unpacked(m, NULL);
    TH_ASSERT_EQ_INT(items, want);
    TH_ASSERT_EQ_INT(generic, want);
    return 1;
}

static uint8_t *pack(const ProtobufCMessage *m, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(*len ? *len : 1);
    TH_ASSERT(p != NULL);
    TH_ASSERT_EQ_INT(protobuf_c_message_pack(m, p), *len);
    return p;
}

/* ---- hand-built requests ---- */

typedef struct trace_fx {
    TraceReq req;
    ResourceSpans rs, *rsp;
    Resource res;
    KeyValue rkv, *rkvp;
    AnyValue rav;
    ScopeSpans ss, *ssp;
    Span spans[MAX_SPANS], *spanp[MAX_SPANS];
    KeyValue kv[MAX_SPANS][NATTR], *kvp[MAX_SPANS][NATTR];
    AnyValue av[MAX_SPANS][NATTR];
    Status st[MAX_SPANS];
    uint8_t tid[16], sid[8];
    char names[MAX_SPANS][32];
} trace_fx;

static void init_span(trace_fx *f, unsigned i)
{
    static const char *keys[NATTR] = {"http.method", "http.route", "http.status_code",
                                      "net.peer.name", "component"};
    Span *s = &f->spans[i];
    opentelemetry__proto__trace__v1__span__init(s);
    s->trace_id = (ProtobufCBinaryData){16, f->tid};
    s->span_id = (ProtobufCBinaryData){8, f->sid};
    s->parent_span_id = (ProtobufCBinaryData){8, f->sid};
    snprintf(f->names[i], sizeof f->names[i], "GET /api/v1/items/%u", i);
    s->name = f->names[i];
    s->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    s->start_time_unix_nano = 1700000000000000000ull + i;
    s->end_time_unix_nano = s->start_time_unix_nano + 12345678;
    for (unsigned k = 0; k < NATTR; k++) {
        opentelemetry__proto__common__v1__key_value__init(&f->kv[i][k]);
        opentelemetry__proto__common__v1__any_value__init(&f->av[i][k]);
        f->kv[i][k].key = (char *)keys[k];
        f->kv[i][k].value = &f->av[i][k];
        f->av[i][k].value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        f->av[i][k].string_value = "value-of-moderate-len";
        f->kvp[i][k] = &f->kv[i][k];
    }
    s->n_attributes = NATTR;
    s->attributes = f->kvp[i];
    opentelemetry__proto__trace__v1__status__init(&f->st[i]);
    f->st[i].code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
    s->status = &f->st[i];
    f->spanp[i] = s;
}

static uint8_t *build_traces(unsigned nspans, size_t *len)
{
    trace_fx *f = calloc(1, sizeof *f);
    TH_ASSERT(f != NULL && nspans <= MAX_SPANS);
    for (unsigned i = 0; i < 16; i++) f->tid[i] = (uint8_t)(0xa0 + i);
    for (unsigned i = 0; i < 8; i++) f->sid[i] = (uint8_t)(0x10 + i);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&f->req);
    opentelemetry__proto__trace__v1__resource_spans__init(&f->rs);
    opentelemetry__proto__resource__v1__resource__init(&f->res);
    opentelemetry__proto__common__v1__key_value__init(&f->rkv);
    opentelemetry__proto__common__v1__any_value__init(&f->rav);
    f->rav.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    f->rav.string_value = "checkout";
    f->rkv.key = "service.name";
    f->rkv.value = &f->rav;
    f->rkvp = &f->rkv;
    f->res.n_attributes = 1;
    f->res.attributes = &f->rkvp;
    f->rs.resource = &f->res;
    opentelemetry__proto__trace__v1__scope_spans__init(&f->ss);
    for (unsigned i = 0; i < nspans; i++) init_span(f, i);
    f->ss.n_spans = nspans;
    f->ss.spans = f->spanp;
    f->ssp = &f->ss;
    f->rs.n_scope_spans = 1;
    f->rs.scope_spans = &f->ssp;
    f->rsp = &f->rs;
    f->req.n_resource_spans = 1;
    f->req.resource_spans = &f->rsp;
    uint8_t *p = pack(&f->req.base, len);
    free(f);
    return p;
}

static uint8_t *build_metrics(size_t *len)
{
    MetricsReq req = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    ResourceMetrics rm = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT, *rmp = &rm;
    ScopeMetrics sm = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT, *smp = &sm;
    Metric m[5], *mp[5];
    Gauge g = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    Sum s = OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
    Histogram h = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT;
    ExpHistogram eh = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM__INIT;
    Summary su = OPENTELEMETRY__PROTO__METRICS__V1__SUMMARY__INIT;
    NumberDP nd[5], *ndp[5];
    HistDP hd[2], *hdp[2];
    ExpDP ed = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__INIT, *edp = &ed;
    Buckets pos = OPENTELEMETRY__PROTO__METRICS__V1__EXPONENTIAL_HISTOGRAM_DATA_POINT__BUCKETS__INIT;
    SummaryDP sd[2], *sdp[2];
    Exemplar ex = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__INIT, *exp_ = &ex;
    uint64_t counts[3] = {1, 2, 3}, ecounts[2] = {4, 5};
    double bounds[2] = {0.5, 1.5};
    uint8_t tid[16] = {1, 2, 3}, sid[8] = {4, 5, 6};
    static const char *names[5] = {"g", "s", "h", "eh", "su"};
    for (unsigned i = 0; i < 5; i++) {
        opentelemetry__proto__metrics__v1__metric__init(&m[i]);
        m[i].name = (char *)names[i];
        mp[i] = &m[i];
        opentelemetry__proto__metrics__v1__number_data_point__init(&nd[i]);
        nd[i].value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        nd[i].as_int = -(int64_t)i;
        ndp[i] = &nd[i];
    }
    ex.trace_id = (ProtobufCBinaryData){16, tid};
    ex.span_id = (ProtobufCBinaryData){8, sid};
    ex.value_case = OPENTELEMETRY__PROTO__METRICS__V1__EXEMPLAR__VALUE_AS_DOUBLE;
    ex.as_double = 2.5;
    nd[0].n_exemplars = 1;
    nd[0].exemplars = &exp_;
    g.n_data_points = 2; g.data_points = ndp;
    s.n_data_points = 3; s.data_points = ndp + 2;
    s.is_monotonic = 1;
    s.aggregation_temporality = 2;
    for (unsigned i = 0; i < 2; i++) {
        opentelemetry__proto__metrics__v1__histogram_data_point__init(&hd[i]);
        hd[i].count = 6;
        hd[i].n_bucket_counts = 3; hd[i].bucket_counts = counts;
        hd[i].n_explicit_bounds = 2; hd[i].explicit_bounds = bounds;
        hd[i]._sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
        hd[i].sum = 7.5;
        hd[i]._min_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___MIN_MIN;
        hd[i].min = 0;
        hdp[i] = &hd[i];
        opentelemetry__proto__metrics__v1__summary_data_point__init(&sd[i]);
        sd[i].count = 1; sd[i].sum = 1.0;
        sdp[i] = &sd[i];
    }
    h.n_data_points = 2; h.data_points = hdp;
    pos.offset = -3; pos.n_bucket_counts = 2; pos.bucket_counts = ecounts;
    ed.positive = &pos; ed.scale = -2; ed.count = 9;
    eh.n_data_points = 1; eh.data_points = &edp;
    su.n_data_points = 2; su.data_points = sdp;
    m[0].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE; m[0].gauge = &g;
    m[1].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM; m[1].sum = &s;
    m[2].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM; m[2].histogram = &h;
    m[3].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_EXPONENTIAL_HISTOGRAM;
    m[3].exponential_histogram = &eh;
    m[4].data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUMMARY; m[4].summary = &su;
    sm.n_metrics = 5; sm.metrics = mp;
    rm.n_scope_metrics = 1; rm.scope_metrics = &smp;
    req.n_resource_metrics = 1; req.resource_metrics = &rmp;
    return pack(&req.base, len);
}

static uint8_t *build_logs(size_t *len)
{
    LogsReq req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    ResourceLogs rl[2], *rlp[2];
    ScopeLogs sl[2], *slp[2];
    LogRecord lr[3], *lrp[3];
    AnyValue body = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    Opentelemetry__Proto__Common__V1__KeyValueList kvl =
        OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE_LIST__INIT;
    KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT, *kvp = &kv;
    AnyValue iv = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    iv.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    iv.int_value = -42;
    kv.key = "k";
    kv.value = &iv;
    kvl.n_values = 1; kvl.values = &kvp;
    body.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
    body.kvlist_value = &kvl;
    for (unsigned i = 0; i < 3; i++) {
        opentelemetry__proto__logs__v1__log_record__init(&lr[i]);
        lr[i].time_unix_nano = 1000 + i;
        lr[i].severity_number = 9;
        lr[i].severity_text = "INFO";
        lr[i].body = &body;
        lrp[i] = &lr[i];
    }
    for (unsigned i = 0; i < 2; i++) {
        opentelemetry__proto__logs__v1__resource_logs__init(&rl[i]);
        opentelemetry__proto__logs__v1__scope_logs__init(&sl[i]);
        slp[i] = &sl[i];
        rl[i].n_scope_logs = 1; rl[i].scope_logs = &slp[i];
        rlp[i] = &rl[i];
    }
    sl[0].n_log_records = 1; sl[0].log_records = lrp;
    sl[1].n_log_records = 2; sl[1].log_records = lrp + 1;
    req.n_resource_logs = 2; req.resource_logs = rlp;
    return pack(&req.base, len);
}

static uint8_t *build(sw_signal sig, size_t *len)
{
    if (sig == SIG_TRACES) return build_traces(7, len);
    if (sig == SIG_METRICS) return build_metrics(len);
    return build_logs(len);
}

/* ---- raw wire encoding for malformed inputs ---- */

static void put_varint(buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    do {
        t[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    TH_ASSERT(buf_append(b, t, n) == 0);
}

static void put_tag(buf *b, uint32_t field, unsigned wt) { put_varint(b, (uint64_t)field << 3 | wt); }

static void put_bytes(buf *b, uint32_t field, const buf *inner)
{
    put_tag(b, field, 2);
    put_varint(b, inner->len);
    TH_ASSERT(buf_append(b, inner->data, inner->len) == 0);
}

/* Wraps a Span body into a full traces request. */
static void wrap_span(const buf *span, buf *out)
{
    buf ss, rs;
    buf_init(&ss, 1 << 20);
    buf_init(&rs, 1 << 20);
    put_bytes(&ss, 2, span);
    put_bytes(&rs, 2, &ss);
    put_bytes(out, 1, &rs);
    buf_destroy(&ss);
    buf_destroy(&rs);
}

static int span_ok(const buf *span, uint32_t *items)
{
    buf req;
    buf_init(&req, 1 << 20);
    wrap_span(span, &req);
    int ok = check_invariant(SIG_TRACES, req.data, req.len);
    const char *why;
    ow_validate(SIG_TRACES, req.data, req.len, items, &why);
    buf_destroy(&req);
    return ok;
}

/* ---- cases ---- */

static void t_counts(void)
{
    static const uint32_t want[SIG_COUNT] = {7, 10, 3};
    for (int sig = 0; sig < SIG_COUNT; sig++) {
        size_t n;
        uint8_t *p = build((sw_signal)sig, &n);
        uint32_t items = 0;
        const char *why = "x";
        TH_ASSERT_EQ_INT(ow_validate((sw_signal)sig, p, n, &items, &why), 0);
        TH_ASSERT(why == NULL);
        TH_ASSERT_EQ_INT(items, want[sig]);
        TH_ASSERT(check_invariant((sw_signal)sig, p, n));
        free(p);
    }
}

static void t_empty(void)
{
    uint32_t items = 5;
    for (int sig = 0; sig < SIG_COUNT; sig++) {
        TH_ASSERT_EQ_INT(ow_validate((sw_signal)sig, NULL, 0, &items, NULL), 0);
        TH_ASSERT_EQ_INT(items, 0);
    }
    TH_ASSERT_EQ_INT(ow_validate(SIG_COUNT, NULL, 0, &items, NULL), SW_EDECODE);
}

static void t_concatenated(void)
{
    size_t a, b;
    uint8_t *p = build_traces(3, &a), *q = build_traces(4, &b);
    uint8_t *c = malloc(a + b);
    TH_ASSERT(c != NULL);
    memcpy(c, p, a);
    memcpy(c + a, q, b);
    uint32_t items;
    TH_ASSERT_EQ_INT(ow_validate(SIG_TRACES, c, a + b, &items, NULL), 0);
    TH_ASSERT_EQ_INT(items, 7);
    TH_ASSERT(check_invariant(SIG_TRACES, c, a + b));
    free(c);
    free(q);
    free(p);
}

static void t_truncated(void)
{
    for (int sig = 0; sig < SIG_COUNT; sig++) {
        size_t n, accepted = 0;
        uint8_t *p = build((sw_signal)sig, &n);
        for (size_t cut = 0; cut < n; cut++) {
            /* Copy so that ASan sees reads past the cut. */
            uint8_t *c = malloc(cut ? cut : 1);
            TH_ASSERT(c != NULL);
            memcpy(c, p, cut);
            accepted += (size_t)check_invariant((sw_signal)sig, c, cut);
            free(c);
        }
        TH_ASSERT(accepted < n);
        free(p);
    }
}

static uint64_t rng(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static void t_mutations(void)
{
    uint64_t seed = 0x1234567;
    for (int sig = 0; sig < SIG_COUNT; sig++) {
        size_t n;
        uint8_t *p = build((sw_signal)sig, &n);
        uint8_t *m = malloc(n);
        TH_ASSERT(m != NULL);
        for (int k = 0; k < 3000; k++) {
            memcpy(m, p, n);
            int flips = 1 + (int)(rng(&seed) % 3);
            for (int j = 0; j < flips; j++) m[rng(&seed) % n] = (uint8_t)rng(&seed);
            check_invariant((sw_signal)sig, m, n);
        }
        free(m);
        free(p);
    }
}

/* One random edit of m[0..*n) (capacity cap): byte set, insertion,
 * deletion, cut, or a copied slice; *n is updated. */
static void mutate(uint64_t *seed, uint8_t *m, size_t *n, size_t cap)
{
    static const uint8_t special[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x08};
    size_t at = *n ? rng(seed) % *n : 0, k = 1 + rng(seed) % 16;
    uint8_t v = rng(seed) & 1 ? (uint8_t)rng(seed) : special[rng(seed) % sizeof special];
    switch (rng(seed) % 5) {
    case 0:
        if (*n) m[at] = v;
        break;
    case 1:
        if (*n + 1 > cap) break;
        memmove(m + at + 1, m + at, *n - at);
        m[at] = v;
        (*n)++;
        break;
    case 2:
        if (k > *n - at) k = *n - at;
        memmove(m + at, m + at + k, *n - at - k);
        *n -= k;
        break;
    case 3:
        *n = at;
        break;
    default: {
        size_t from = *n ? rng(seed) % *n : 0;
        if (k > *n - from) k = *n - from;
        if (*n + k > cap) break;
        memmove(m + at + k, m + at, *n - at);
        memmove(m + at, m + (from >= at ? from + k : from), k);
        *n += k;
        break;
    }
    }
}

static void t_differential(void)
{
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    unsigned tried = 0, accepted = 0;
    for (int sig = 0; sig < SIG_COUNT; sig++) {
        size_t n;
        uint8_t *p = sig == SIG_TRACES ? build_traces(20, &n) : build((sw_signal)sig, &n);
        size_t cap = n + 64;
        uint8_t *m = malloc(cap);
        TH_ASSERT(m != NULL);
        for (int k = 0; k < 20000; k++) {
            size_t len = n;
            memcpy(m, p, n);
            for (int j = 1 + (int)(rng(&seed) % 4); j > 0; j--) mutate(&seed, m, &len, cap);
            for (int s = 0; s < SIG_COUNT; s++, tried++)
                accepted += (unsigned)check_invariant((sw_signal)s, m, len);
        }
        free(m);
        free(p);
    }
    printf("# differential: %u inputs, %u accepted\n", tried, accepted);
}

static void t_wrong_wire_type(void)
{
    buf span;
    uint32_t items;
    buf_init(&span, 1 << 20);
    put_tag(&span, 5, 0); /* name is a string: varint is wrong */
    put_varint(&span, 1);
    TH_ASSERT(!span_ok(&span, &items));
    buf_reset(&span);
    put_tag(&span, 7, 0); /* start_time_unix_nano is fixed64 */
    put_varint(&span, 1);
    TH_ASSERT(!span_ok(&span, &items));
    buf_reset(&span);
    put_tag(&span, 6, 1); /* kind is an enum (varint) */
    TH_ASSERT(buf_append(&span, "12345678", 8) == 0);
    TH_ASSERT(!span_ok(&span, &items));
    buf_reset(&span);
    put_tag(&span, 15, 0); /* status is a message */
    put_varint(&span, 0);
    TH_ASSERT(!span_ok(&span, &items));
    buf_reset(&span);
    put_tag(&span, 6, 0); /* right wire types are fine */
    put_varint(&span, 2);
    put_tag(&span, 7, 1);
    TH_ASSERT(buf_append(&span, "12345678", 8) == 0);
    TH_ASSERT(span_ok(&span, &items));
    TH_ASSERT_EQ_INT(items, 1);
    buf_destroy(&span);
}

static void t_unknown_fields(void)
{
    buf span, req;
    uint32_t items;
    buf_init(&span, 1 << 20);
    buf_init(&req, 1 << 20);
    put_tag(&span, 100, 0);
    put_varint(&span, UINT64_MAX);
    put_tag(&span, 101, 1);
    TH_ASSERT(buf_append(&span, "abcdefgh", 8) == 0);
    put_tag(&span, 102, 5);
    TH_ASSERT(buf_append(&span, "abcd", 4) == 0);
    put_tag(&span, 536870911, 2); /* largest field number */
    put_varint(&span, 3);
    TH_ASSERT(buf_append(&span, "xyz", 3) == 0);
    wrap_span(&span, &req);
    put_tag(&req, 9, 2); /* unknown at the top level too */
    put_varint(&req, 0);
    TH_ASSERT_EQ_INT(ow_validate(SIG_TRACES, req.data, req.len, &items, NULL), 0);
    TH_ASSERT_EQ_INT(items, 1);
    TH_ASSERT(check_invariant(SIG_TRACES, req.data, req.len));
    buf_destroy(&req);
    buf_destroy(&span);
}

/* Unknown fields of the group wire types, properly nested, are skipped like
 * any unknown field (protobuf parsers do); the same walk in prio_wire.h and
 * ow_strip_groups() (for protobuf-c, which refuses groups) agree. */
static void t_unknown_groups(void)
{
    static const uint8_t good[][16] = {
        {0x1b, 0x1c},                                     /* field 3: empty group */
        {0x1b, 0x08, 0x05, 0x12, 0x01, 'x', 0x1c},        /* with a varint and a string */
        {0x1b, 0x2b, 0x2c, 0x2b, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x2c, 0x1c}, /* nested */
        {0x0a, 0x00, 0x1b, 0x1c, 0x0a, 0x00},             /* between resources */
    };
    static const size_t glen[] = {2, 7, 15, 6};
    static const uint8_t bad[][8] = {
        {0x1b},                 /* not closed */
        {0x1b, 0x24},           /* closed by another field's end */
        {0x1c},                 /* end without start */
        {0x1b, 0x2b, 0x1c},     /* inner group not closed */
        {0x1b, 0x12, 0x05, 'x', 0x1c}, /* string length past the end */
    };
    static const size_t blen[] = {1, 2, 1, 3, 5};
    for (size_t i = 0; i < sizeof glen / sizeof glen[0]; i++) {
        uint32_t items = 99;
        const char *why = NULL;
        int rc = ow_validate(SIG_LOGS, good[i], glen[i], &items, &why);
        TH_ASSERT_MSG(rc == 0, "good case %zu refused: %s", i, why ? why : "");
        TH_ASSERT_EQ_INT(items, 0);
        buf b;
        buf_init(&b, 1024);
        const uint8_t *q = good[i], *qend = good[i] + glen[i];
        pbw_field f;
        while (q < qend) TH_ASSERT_MSG(pbw_next(&q, qend, &f) == 0, "prio walk, case %zu", i);
        TH_ASSERT_EQ_INT(ow_strip_groups(SIG_LOGS, good[i], glen[i], &b), 0);
        TH_ASSERT(memchr(b.data ? b.data : (uint8_t *)"", 0x1b, b.len) == NULL);
        buf_destroy(&b);
    }
    for (size_t i = 0; i < sizeof blen / sizeof blen[0]; i++) {
        uint32_t items;
        const char *why = NULL;
        TH_ASSERT_MSG(ow_validate(SIG_LOGS, bad[i], blen[i], &items, &why) == SW_EDECODE,
                      "bad case %zu accepted", i);
        TH_ASSERT(why != NULL);
        const uint8_t *q = bad[i];
        pbw_field f;
        TH_ASSERT_EQ_INT(pbw_next(&q, bad[i] + blen[i], &f), -1);
    }
    /* nesting: groups count against the depth limit */
    static uint8_t deep[2 * OW_MAX_DEPTH + 2];
    size_t n = 0;
    for (int i = 0; i < OW_MAX_DEPTH; i++) deep[n++] = 0x1b;
    for (int i = 0; i < OW_MAX_DEPTH; i++) deep[n++] = 0x1c;
    uint32_t items;
    const char *why = NULL;
    TH_ASSERT_EQ_INT(ow_validate(SIG_LOGS, deep, n, &items, &why), SW_EDECODE);
    TH_ASSERT_EQ_INT(ow_validate(SIG_LOGS, deep + 1, n - 2, &items, &why), 0);
    TH_ASSERT(pbw_skip_group(deep + 1, deep + n, 3, OW_MAX_DEPTH) == NULL);
}

/* A span with an unknown group inside: counted, stripped to what protobuf-c
 * unpacks, the rest byte for byte. */
static void t_group_in_span_strip(void)
{
    /* ExportTraceServiceRequest{ resource_spans{ scope_spans{ spans{ name "a",
     * field 90 as a group {1: 7} } } } } */
    static const uint8_t span[] = {0x2a, 0x01, 'a', 0xd3, 0x05, 0x08, 0x07, 0xd4, 0x05};
    uint8_t req[64];
    size_t n = 0;
    req[n++] = 0x0a; req[n++] = (uint8_t)(sizeof span + 4);
    req[n++] = 0x12; req[n++] = (uint8_t)(sizeof span + 2);
    req[n++] = 0x12; req[n++] = (uint8_t)sizeof span;
    memcpy(req + n, span, sizeof span);
    n += sizeof span;
    uint32_t items = 0;
    const char *why = NULL;
    TH_ASSERT_MSG(ow_validate(SIG_TRACES, req, n, &items, &why) == 0, "%s", why ? why : "");
    TH_ASSERT_EQ_INT(items, 1);
    TH_ASSERT(protobuf_c_message_unpack(ow_descriptor(SIG_TRACES), NULL, n, req) == NULL);
    buf b;
    buf_init(&b, 1024);
    TH_ASSERT_EQ_INT(ow_strip_groups(SIG_TRACES, req, n, &b), 0);
    TH_ASSERT_EQ_INT(b.len, n - 6);
    ProtobufCMessage *m = protobuf_c_message_unpack(ow_descriptor(SIG_TRACES), NULL, b.len, b.data);
    TH_ASSERT(m != NULL);
    TH_ASSERT_EQ_INT(ow_count_items(SIG_TRACES, m), 1);
    protobuf_c_message_free_unpacked(m, NULL);
    buf_destroy(&b);
}

static void t_groups_and_bad_tags(void)
{
    static const uint8_t bad[][4] = {
        {0x0b, 0x0c},     /* field 1 (known) as a group */
        {0x1e, 0x00},     /* wire type 6 */
        {0x1f, 0x00},     /* wire type 7 */
        {0x00, 0x00},     /* field number 0 */
        {0x80, 0x00, 0x00}, /* field number 0, two bytes */
    };
    static const size_t len[] = {2, 2, 2, 2, 3};
    for (size_t i = 0; i < sizeof len / sizeof len[0]; i++) {
        uint32_t items;
        const char *why = NULL;
        TH_ASSERT_MSG(ow_validate(SIG_LOGS, bad[i], len[i], &items, &why) == SW_EDECODE,
                      "case %zu accepted", i);
        TH_ASSERT(why != NULL);
    }
}

static void t_overlong_varints(void)
{
    buf span;
    uint32_t items;
    buf_init(&span, 1 << 20);
    static const uint8_t v11[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00};
    static const uint8_t v10_over[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    static const uint8_t v10_ok[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    put_tag(&span, 6, 0);
    TH_ASSERT(buf_append(&span, v11, sizeof v11) == 0);
    TH_ASSERT(!span_ok(&span, &items));
    buf_reset(&span);
    put_tag(&span, 6, 0);
    TH_ASSERT(buf_append(&span, v10_over, sizeof v10_over) == 0);
    TH_ASSERT(!span_ok(&span, &items));
    buf_reset(&span);
    put_tag(&span, 6, 0);
    TH_ASSERT(buf_append(&span, v10_ok, sizeof v10_ok) == 0);
    TH_ASSERT(span_ok(&span, &items));
    /* Six-byte tag and six-byte length prefix. */
    static const uint8_t tag6[] = {0xa8, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01};
    static const uint8_t len6[] = {0x2a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x41};
    buf_reset(&span);
    TH_ASSERT(buf_append(&span, tag6, sizeof tag6) == 0);
    TH_ASSERT(!span_ok(&span, &items));
    buf_reset(&span);
    TH_ASSERT(buf_append(&span, len6, sizeof len6) == 0);
    TH_ASSERT(!span_ok(&span, &items));
    /* Length past the end. */
    static const uint8_t past[] = {0x2a, 0x05, 0x41, 0x42};
    buf_reset(&span);
    TH_ASSERT(buf_append(&span, past, sizeof past) == 0);
    TH_ASSERT(!span_ok(&span, &items));
    buf_destroy(&span);
}

/* A LogRecord whose body is AnyValue nested `levels` deep through arrays. */
static void nested_logs(unsigned levels, buf *req)
{
    buf cur, next;
    buf_init(&cur, 1 << 20);
    buf_init(&next, 1 << 20);
    put_tag(&cur, 3, 0); /* innermost AnyValue { int_value: 7 } */
    put_varint(&cur, 7);
    for (unsigned i = 1; i < levels; i++) {
        buf arr;
        buf_init(&arr, 1 << 20);
        put_bytes(&arr, 1, &cur); /* ArrayValue { values: cur } */
        buf_reset(&next);
        put_bytes(&next, 5, &arr); /* AnyValue { array_value: arr } */
        buf_destroy(&arr);
        buf t = cur;
        cur = next;
        next = t;
    }
    buf lr, sl, rl;
    buf_init(&lr, 1 << 20);
    buf_init(&sl, 1 << 20);
    buf_init(&rl, 1 << 20);
    put_bytes(&lr, 5, &cur);
    put_bytes(&sl, 2, &lr);
    put_bytes(&rl, 2, &sl);
    put_bytes(req, 1, &rl);
    buf_destroy(&lr);
    buf_destroy(&sl);
    buf_destroy(&rl);
    buf_destroy(&cur);
    buf_destroy(&next);
}

static void t_depth(void)
{
    buf req;
    uint32_t items;
    const char *why = NULL;
    buf_init(&req, 1 << 20);
    nested_logs(100, &req);
    TH_ASSERT_EQ_INT(ow_validate(SIG_LOGS, req.data, req.len, &items, &why), SW_EDECODE);
    TH_ASSERT_EQ_STR(why, "nesting too deep");
    buf_reset(&req);
    nested_logs(20, &req);
    TH_ASSERT_EQ_INT(ow_validate(SIG_LOGS, req.data, req.len, &items, &why), 0);
    TH_ASSERT_EQ_INT(items, 1);
    TH_ASSERT(check_invariant(SIG_LOGS, req.data, req.len));
    buf_destroy(&req);
}

/* Metrics request with one histogram metric holding the given point. */
static int hist_point_ok(const buf *dp, uint32_t *items, size_t *nbuckets)
{
    buf h, m, sm, rm, req;
    buf_init(&h, 1 << 20); buf_init(&m, 1 << 20); buf_init(&sm, 1 << 20);
    buf_init(&rm, 1 << 20); buf_init(&req, 1 << 20);
    put_bytes(&h, 1, dp);
    put_bytes(&m, 9, &h);
    put_bytes(&sm, 2, &m);
    put_bytes(&rm, 2, &sm);
    put_bytes(&req, 1, &rm);
    int ok = check_invariant(SIG_METRICS, req.data, req.len);
    ow_validate(SIG_METRICS, req.data, req.len, items, NULL);
    *nbuckets = 0;
    if (ok) {
        MetricsReq *r = (MetricsReq *)protobuf_c_message_unpack(ow_descriptor(SIG_METRICS), NULL,
                                                                req.len, req.data);
        TH_ASSERT(r != NULL);
        *nbuckets = r->resource_metrics[0]->scope_metrics[0]->metrics[0]->histogram
                        ->data_points[0]->n_bucket_counts;
        protobuf_c_message_free_unpacked(&r->base, NULL);
    }
    buf_destroy(&h); buf_destroy(&m); buf_destroy(&sm); buf_destroy(&rm); buf_destroy(&req);
    return ok;
}

static void t_packed_fixed64(void)
{
    buf dp;
    uint32_t items;
    size_t nb;
    buf_init(&dp, 1 << 20);
    put_tag(&dp, 6, 2); /* packed bucket_counts: two fixed64 */
    put_varint(&dp, 16);
    TH_ASSERT(buf_append(&dp, "aaaaaaaabbbbbbbb", 16) == 0);
    TH_ASSERT(hist_point_ok(&dp, &items, &nb));
    TH_ASSERT_EQ_INT(items, 1);
    TH_ASSERT_EQ_INT(nb, 2);
    buf_reset(&dp);
    for (int i = 0; i < 3; i++) { /* unpacked: three elements */
        put_tag(&dp, 6, 1);
        TH_ASSERT(buf_append(&dp, "cccccccc", 8) == 0);
    }
    TH_ASSERT(hist_point_ok(&dp, &items, &nb));
    TH_ASSERT_EQ_INT(nb, 3);
    buf_reset(&dp);
    put_tag(&dp, 6, 2); /* packed length not a multiple of 8 */
    put_varint(&dp, 12);
    TH_ASSERT(buf_append(&dp, "aaaaaaaabbbb", 12) == 0);
    TH_ASSERT(!hist_point_ok(&dp, &items, &nb));
    buf_reset(&dp);
    put_tag(&dp, 10, 2); /* flags (uint32) packed: varints, last one cut */
    put_varint(&dp, 2);
    TH_ASSERT(buf_append(&dp, "\x01\x80", 2) == 0);
    TH_ASSERT(!hist_point_ok(&dp, &items, &nb));
    buf_destroy(&dp);
}

static void t_oneof_last_wins(void)
{
    /* Metric { gauge: 3 points, sum: 2 points }: protobuf-c keeps the sum. */
    buf g, s, m, sm, rm, req, dp;
    buf_init(&g, 1 << 20); buf_init(&s, 1 << 20); buf_init(&m, 1 << 20);
    buf_init(&sm, 1 << 20); buf_init(&rm, 1 << 20); buf_init(&req, 1 << 20);
    buf_init(&dp, 1 << 20);
    for (int i = 0; i < 3; i++) put_bytes(&g, 1, &dp);
    for (int i = 0; i < 2; i++) put_bytes(&s, 1, &dp);
    put_bytes(&m, 5, &g);
    put_bytes(&m, 7, &s);
    put_bytes(&sm, 2, &m);
    put_bytes(&rm, 2, &sm);
    put_bytes(&req, 1, &rm);
    uint32_t items;
    TH_ASSERT_EQ_INT(ow_validate(SIG_METRICS, req.data, req.len, &items, NULL), 0);
    TH_ASSERT_EQ_INT(items, 2);
    TH_ASSERT(check_invariant(SIG_METRICS, req.data, req.len));
    buf_destroy(&g); buf_destroy(&s); buf_destroy(&m); buf_destroy(&sm);
    buf_destroy(&rm); buf_destroy(&req); buf_destroy(&dp);
}

static void t_message_field_twice(void)
{
    /* Span.status twice: refused (protobuf-c merges, and fails to merge
     * some messages, e.g. two empty AnyValues). */
    buf span, empty;
    uint32_t items;
    buf_init(&span, 1 << 20);
    buf_init(&empty, 16);
    put_bytes(&span, 15, &empty);
    TH_ASSERT(span_ok(&span, &items));
    put_bytes(&span, 15, &empty);
    TH_ASSERT(!span_ok(&span, &items));
    buf_destroy(&span);
    buf_destroy(&empty);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void t_cost_vs_unpack(void)
{
    size_t n;
    uint8_t *p = build_traces(100, &n);
    uint32_t items = 0, sum = 0;
    const int iv = 2000, iu = 200;
    double t0 = now_s();
    for (int i = 0; i < iv; i++) {
        TH_ASSERT(ow_validate(SIG_TRACES, p, n, &items, NULL) == 0);
        sum += items;
    }
    double t1 = now_s();
    for (int i = 0; i < iu; i++) {
        ProtobufCMessage *m = protobuf_c_message_unpack(ow_descriptor(SIG_TRACES), NULL, n, p);
        TH_ASSERT(m != NULL);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    double t2 = now_s();
    TH_ASSERT_EQ_INT(sum, 100 * iv);
    double v = (t1 - t0) / iv * 1e6, u = (t2 - t1) / iu * 1e6;
    printf("# 100-span traces request, %zu bytes: ow_validate %.1f us (%.0f MB/s), "
           "protobuf-c unpack+free %.1f us: %.1fx\n",
           n, v, (double)n / v, u, u / v);
    free(p);
}

int main(void)
{
    TH_RUN(t_counts);
    TH_RUN(t_empty);
    TH_RUN(t_concatenated);
    TH_RUN(t_truncated);
    TH_RUN(t_mutations);
    TH_RUN(t_differential);
    TH_RUN(t_wrong_wire_type);
    TH_RUN(t_unknown_fields);
    TH_RUN(t_groups_and_bad_tags);
    TH_RUN(t_unknown_groups);
    TH_RUN(t_group_in_span_strip);
    TH_RUN(t_overlong_varints);
    TH_RUN(t_depth);
    TH_RUN(t_packed_fixed64);
    TH_RUN(t_oneof_last_wins);
    TH_RUN(t_message_field_twice);
    TH_RUN(t_cost_vs_unpack);
    return th_done();
}
