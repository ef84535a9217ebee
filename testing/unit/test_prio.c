/* test_prio.c — the priority classifier: rules, conditions, pass-through,
 * and splits whose parts re-decode to exactly the original resources. */
#include "processors/prio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/otlp_json.h"
#include "runtime/otlp_wire.h"
#include "testing/lib/th.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs ResourceLogs;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs ScopeLogs;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__Gauge Gauge;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberDP;

/* ---- building requests ---- */

enum { X_NONE = 0, X_INT, X_BOOL, X_DOUBLE };

typedef struct rspec {
    const char *svc;     /* service.name, NULL: absent */
    int xkind;           /* attribute "x": X_* */
    int64_t xval;
    int items;           /* spans / log records / data points */
    int error_at;        /* traces: index of the span with status ERROR, -1: none */
    int sev;             /* logs: severity of every record */
} rspec;

#define MAXI 128

typedef struct rstore {
    KeyValue kv[2];
    KeyValue *pkv[2];
    AnyValue av[2];
    Resource res;
    union {
        struct {
            ResourceSpans rs;
            ScopeSpans ss, *pss;
            Span sp[MAXI], *psp[MAXI];
            Status st[MAXI];
        } t;
        struct {
            ResourceLogs rl;
            ScopeLogs sl, *psl;
            LogRecord lr[MAXI], *plr[MAXI];
            AnyValue body[MAXI];
        } l;
        struct {
            ResourceMetrics rm;
            ScopeMetrics sm, *psm;
            Metric m, *pm;
            Gauge g;
            NumberDP dp[MAXI], *pdp[MAXI];
        } m;
    } u;
} rstore;

static void make_resource(const rspec *s, rstore *st)
{
    Resource r = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    st->res = r;
    size_t n = 0;
    if (s->svc) {
        KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
        AnyValue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        av.string_value = (char *)s->svc;
        st->av[n] = av;
        kv.key = "service.name";
        kv.value = &st->av[n];
        st->kv[n] = kv;
        st->pkv[n] = &st->kv[n];
        n++;
    }
    if (s->xkind) {
        KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
        AnyValue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        if (s->xkind == X_INT) {
            av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
            av.int_value = s->xval;
        } else if (s->xkind == X_BOOL) {
            av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
            av.bool_value = s->xval != 0;
        } else {
            av.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
            av.double_value = (double)s->xval;
        }
        st->av[n] = av;
        kv.key = "x";
        kv.value = &st->av[n];
        st->kv[n] = kv;
        st->pkv[n] = &st->kv[n];
        n++;
    }
    st->res.n_attributes = n;
    st->res.attributes = st->pkv;
}

static void make_spans(const rspec *s, rstore *st)
{
    ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    for (int i = 0; i < s->items; i++) {
        Span sp = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT;
        Status stt = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT;
        sp.name = "op";
        sp.start_time_unix_nano = 1000 + (uint64_t)i;
        stt.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
        if (i == s->error_at)
            stt.code = OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR;
        st->u.t.st[i] = stt;
        sp.status = &st->u.t.st[i];
        st->u.t.sp[i] = sp;
        st->u.t.psp[i] = &st->u.t.sp[i];
    }
    ss.n_spans = (size_t)s->items;
    ss.spans = st->u.t.psp;
    st->u.t.ss = ss;
    st->u.t.pss = &st->u.t.ss;
    rs.resource = &st->res;
    rs.n_scope_spans = 1;
    rs.scope_spans = &st->u.t.pss;
    st->u.t.rs = rs;
}

static void make_logs(const rspec *s, rstore *st)
{
    ResourceLogs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT;
    ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT;
    for (int i = 0; i < s->items; i++) {
        LogRecord lr = OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT;
        AnyValue body = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
        body.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
        body.string_value = "hello";
        st->u.l.body[i] = body;
        lr.body = &st->u.l.body[i];
        lr.severity_number = (Opentelemetry__Proto__Logs__V1__SeverityNumber)s->sev;
        st->u.l.lr[i] = lr;
        st->u.l.plr[i] = &st->u.l.lr[i];
    }
    sl.n_log_records = (size_t)s->items;
    sl.log_records = st->u.l.plr;
    st->u.l.sl = sl;
    st->u.l.psl = &st->u.l.sl;
    rl.resource = &st->res;
    rl.n_scope_logs = 1;
    rl.scope_logs = &st->u.l.psl;
    st->u.l.rl = rl;
}

static void make_metrics(const rspec *s, rstore *st)
{
    ResourceMetrics rm = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
    ScopeMetrics sm = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
    Metric m = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    Gauge g = OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT;
    for (int i = 0; i < s->items; i++) {
        NumberDP dp = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
        dp.time_unix_nano = 5 + (uint64_t)i;
        dp.value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        dp.as_int = i;
        st->u.m.dp[i] = dp;
        st->u.m.pdp[i] = &st->u.m.dp[i];
    }
    g.n_data_points = (size_t)s->items;
    g.data_points = st->u.m.pdp;
    st->u.m.g = g;
    m.name = "m";
    m.data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
    m.gauge = &st->u.m.g;
    st->u.m.m = m;
    st->u.m.pm = &st->u.m.m;
    sm.n_metrics = 1;
    sm.metrics = &st->u.m.pm;
    st->u.m.sm = sm;
    st->u.m.psm = &st->u.m.sm;
    rm.resource = &st->res;
    rm.n_scope_metrics = 1;
    rm.scope_metrics = &st->u.m.psm;
    st->u.m.rm = rm;
}

/* Returns the owned encoding of a request of n resources. */
static uint8_t *build(sw_signal sig, const rspec *s, size_t n, size_t *len)
{
    rstore *st = calloc(n ? n : 1, sizeof *st);
    void **ents = calloc(n ? n : 1, sizeof *ents);
    if (!st || !ents) abort();
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest tr =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest lr =
        OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
    Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest mr =
        OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    for (size_t i = 0; i < n; i++) {
        if (s[i].items > MAXI) abort();
        make_resource(&s[i], &st[i]);
        if (sig == SIG_TRACES) {
            make_spans(&s[i], &st[i]);
            ents[i] = &st[i].u.t.rs;
        } else if (sig == SIG_LOGS) {
            make_logs(&s[i], &st[i]);
            ents[i] = &st[i].u.l.rl;
        } else {
            make_metrics(&s[i], &st[i]);
            ents[i] = &st[i].u.m.rm;
        }
    }
    const ProtobufCMessage *req = &mr.base;
    tr.n_resource_spans = lr.n_resource_logs = mr.n_resource_metrics = n;
    tr.resource_spans = (ResourceSpans **)ents;
    lr.resource_logs = (ResourceLogs **)ents;
    mr.resource_metrics = (ResourceMetrics **)ents;
    if (sig == SIG_TRACES) req = &tr.base;
    else if (sig == SIG_LOGS) req = &lr.base;
    *len = protobuf_c_message_get_packed_size(req);
    uint8_t *b = malloc(*len + 16);
    if (!b) abort();
    protobuf_c_message_pack(req, b);
    free(ents);
    free(st);
    return b;
}

/* ---- inspecting requests ---- */

/* The repeated field 1 (resources) of an unpacked request. */
static ProtobufCMessage **entries(const ProtobufCMessage *req, size_t *n)
{
    const ProtobufCFieldDescriptor *f = &req->descriptor->fields[0];
    *n = *(const size_t *)((const char *)req + f->quantifier_offset);
    return *(ProtobufCMessage ***)((const char *)req + f->offset);
}

/* 1 when two messages encode to the same bytes. */
static int same_msg(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la = protobuf_c_message_get_packed_size(a), lb = protobuf_c_message_get_packed_size(b);
    if (la != lb) return 0;
    uint8_t *x = malloc(la + 1), *y = malloc(lb + 1);
    if (!x || !y) abort();
    protobuf_c_message_pack(a, x);
    protobuf_c_message_pack(b, y);
    int same = memcmp(x, y, la) == 0;
    free(x);
    free(y);
    return same;
}

/* Checks that the split items re-decode to the original resources of their
 * class, in order, with matching item counts. */
static void check_split(sw_signal sig, const uint8_t *pb, size_t len, const int *want_class,
                        item *out[CLASS_COUNT])
{
    ProtobufCMessage *orig = protobuf_c_message_unpack(ow_descriptor(sig), NULL, len, pb);
    TH_ASSERT(orig != NULL);
    size_t n_orig;
    ProtobufCMessage **oe = entries(orig, &n_orig);
    for (int k = 0; k < CLASS_COUNT; k++) {
        size_t want = 0;
        for (size_t i = 0; i < n_orig; i++) want += want_class[i] == k;
        if (!want) {
            TH_ASSERT_MSG(out[k] == NULL, "class %d present", k);
            continue;
        }
        TH_ASSERT_MSG(out[k] != NULL, "class %d missing", k);
        TH_ASSERT_EQ_INT(out[k]->klass, k);
        TH_ASSERT_EQ_INT(out[k]->signal, sig);
        uint32_t cnt;
        TH_ASSERT_EQ_INT(ow_validate(sig, out[k]->data, out[k]->len, &cnt, NULL), 0);
        TH_ASSERT_EQ_INT(cnt, out[k]->count);
        ProtobufCMessage *part = protobuf_c_message_unpack(ow_descriptor(sig), NULL, out[k]->len,
                                                           out[k]->data);
        TH_ASSERT(part != NULL);
        size_t n_part;
        ProtobufCMessage **pe = entries(part, &n_part);
        TH_ASSERT_EQ_INT(n_part, want);
        size_t j = 0;
        for (size_t i = 0; i < n_orig; i++)
            if (want_class[i] == k) TH_ASSERT_MSG(same_msg(oe[i], pe[j++]), "class %d entry %zu", k, i);
        protobuf_c_message_free_unpacked(part, NULL);
    }
    protobuf_c_message_free_unpacked(orig, NULL);
}

static prio *mkprio(const prio_rule *r, size_t n)
{
    char err[256];
    prio *p = prio_new(r, n, err, sizeof err);
    if (!p) th_fail(__FILE__, __LINE__, "prio_new: %s", err);
    return p;
}

/* Classifies a one-resource request and returns its class. */
static int class_of(const prio *p, sw_signal sig, const rspec *s)
{
    size_t len;
    uint8_t *pb = build(sig, s, 1, &len);
    prio_result r;
    int rc = prio_classify(p, sig, pb, len, &r);
    free(pb);
    if (rc != 0) return rc;
    if (!r.single) return -100;
    return (int)r.klass;
}

/* ---- cases ---- */

static const prio_rule svc_rules[] = {
    {CLASS_CRITICAL, "service.name", "^(checkout|payment)$"},
    {CLASS_HIGH, "service.name", "^check"},
    {CLASS_HIGH, "service.name", "api"},
};

static void t_rules_order_and_default(void)
{
    prio *p = mkprio(svc_rules, 3);
    TH_ASSERT_EQ_INT(prio_rule_count(p), 3);
    rspec s = {.svc = "checkout", .items = 2, .error_at = -1};
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_CRITICAL);   /* first rule wins */
    s.svc = "checkout-v2";                                            /* anchored $ fails */
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_HIGH);
    s.svc = "payment";
    TH_ASSERT_EQ_INT(class_of(p, SIG_LOGS, &s), CLASS_CRITICAL);
    s.svc = "public-api-gw";                                          /* unanchored */
    TH_ASSERT_EQ_INT(class_of(p, SIG_METRICS, &s), CLASS_HIGH);
    s.svc = "frontend";
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_NORMAL);     /* default */
    s.svc = "";
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_NORMAL);
    prio_free(p);
    /* reversed order: the broader rule comes first and wins */
    prio_rule rev[2] = {svc_rules[1], svc_rules[0]};
    p = mkprio(rev, 2);
    s.svc = "checkout";
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_HIGH);
    prio_free(p);
}

static void t_no_rules_all_normal(void)
{
    prio *p = mkprio(NULL, 0);
    rspec s = {.svc = "checkout", .items = 1, .error_at = -1};
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_NORMAL);
    prio_result r;
    TH_ASSERT_EQ_INT(prio_classify(NULL, SIG_LOGS, NULL, 0, &r), 0);
    TH_ASSERT(r.single && r.klass == CLASS_NORMAL);
    prio_free(p);
}

static void t_empty_request(void)
{
    prio *p = mkprio(svc_rules, 3);
    prio_result r;
    TH_ASSERT_EQ_INT(prio_classify(p, SIG_TRACES, (const uint8_t *)"", 0, &r), 0);
    TH_ASSERT(r.single);
    TH_ASSERT_EQ_INT(r.klass, CLASS_NORMAL);
    item *out[CLASS_COUNT];
    size_t n;
    TH_ASSERT_EQ_INT(prio_items(p, SIG_TRACES, NULL, 0, 0, 1, out, &n), 0);
    TH_ASSERT_EQ_INT(n, 1);
    TH_ASSERT_EQ_INT(out[0]->len, 0);
    item_free(out[0]);
    prio_free(p);
}

static void t_missing_and_non_string_attrs(void)
{
    const prio_rule r[] = {
        {CLASS_CRITICAL, "x", "^5[0-9][0-9]$"},   /* int in decimal */
        {CLASS_HIGH, "x", "^true$"},               /* bool */
        {CLASS_HIGH, "x", "^-"},                   /* negative int */
        {CLASS_CRITICAL, "absent.key", ".*"},      /* never present */
    };
    prio *p = mkprio(r, 4);
    rspec s = {.svc = "svc", .items = 1, .error_at = -1, .xkind = X_INT, .xval = 503};
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_CRITICAL);
    s.xval = 200;
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_NORMAL);
    s.xval = -7;
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_HIGH);
    s.xkind = X_BOOL, s.xval = 1;
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_HIGH);
    s.xval = 0;
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_NORMAL);
    s.xkind = X_DOUBLE, s.xval = 503;                 /* doubles never match */
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_NORMAL);
    s.xkind = X_NONE;                                 /* missing attribute */
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_NORMAL);
    s.svc = NULL;                                     /* no attributes at all */
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_NORMAL);
    prio_free(p);
}

static void t_error_span_raises(void)
{
    const prio_rule r[] = {
        {CLASS_CRITICAL, "service.name", "^checkout$", .span_error = 1},
        {CLASS_HIGH, NULL, NULL, .span_error = 1},
        {CLASS_HIGH, "service.name", "^never$"},
    };
    prio *p = mkprio(r, 3);
    rspec s = {.svc = "checkout", .items = 50, .error_at = -1};
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_NORMAL);
    s.error_at = 37;                                  /* one ERROR span raises the resource */
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_CRITICAL);
    s.svc = "frontend";
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_HIGH);
    s.error_at = 0;
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_HIGH);
    /* span rules never match logs or metrics */
    rspec l = {.svc = "checkout", .items = 3, .sev = 24};
    TH_ASSERT_EQ_INT(class_of(p, SIG_LOGS, &l), CLASS_NORMAL);
    TH_ASSERT_EQ_INT(class_of(p, SIG_METRICS, &l), CLASS_NORMAL);
    prio_free(p);
}

static void t_severity_raises(void)
{
    const prio_rule r[] = {
        {CLASS_CRITICAL, NULL, NULL, .min_severity = 21},        /* FATAL */
        {CLASS_HIGH, "service.name", "^api$", .min_severity = 17}, /* ERROR from api */
        {CLASS_HIGH, NULL, NULL, .min_severity = 13},             /* any WARN */
    };
    prio *p = mkprio(r, 3);
    rspec s = {.svc = "api", .items = 4, .sev = 9};
    TH_ASSERT_EQ_INT(class_of(p, SIG_LOGS, &s), CLASS_NORMAL);
    s.sev = 13;
    TH_ASSERT_EQ_INT(class_of(p, SIG_LOGS, &s), CLASS_HIGH);
    s.sev = 17;
    TH_ASSERT_EQ_INT(class_of(p, SIG_LOGS, &s), CLASS_HIGH);
    s.sev = 22;
    TH_ASSERT_EQ_INT(class_of(p, SIG_LOGS, &s), CLASS_CRITICAL);
    /* severity rules never match traces */
    rspec t = {.svc = "api", .items = 2, .error_at = 1};
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &t), CLASS_NORMAL);
    prio_free(p);
}

static void t_severity_parse(void)
{
    TH_ASSERT_EQ_INT(prio_severity_parse("TRACE"), 1);
    TH_ASSERT_EQ_INT(prio_severity_parse("warn"), 13);
    TH_ASSERT_EQ_INT(prio_severity_parse("Error"), 17);
    TH_ASSERT_EQ_INT(prio_severity_parse("ERROR3"), 19);
    TH_ASSERT_EQ_INT(prio_severity_parse("FATAL4"), 24);
    TH_ASSERT_EQ_INT(prio_severity_parse("17"), 17);
    TH_ASSERT_EQ_INT(prio_severity_parse("0"), -1);
    TH_ASSERT_EQ_INT(prio_severity_parse("25"), -1);
    TH_ASSERT_EQ_INT(prio_severity_parse("ERROR5"), -1);
    TH_ASSERT_EQ_INT(prio_severity_parse("ERR"), -1);
    TH_ASSERT_EQ_INT(prio_severity_parse(""), -1);
}

static void t_bad_rules(void)
{
    struct { prio_rule r; const char *msg; } bad[] = {
        {{CLASS_HIGH, "service.name", "("}, "invalid regex"},
        {{(sw_class)7, "service.name", "a"}, "unknown class"},
        {{CLASS_HIGH, NULL, NULL}, "no condition"},
        {{CLASS_HIGH, "service.name", NULL}, "go together"},
        {{CLASS_HIGH, NULL, "a"}, "go together"},
        {{CLASS_HIGH, "", "a"}, "empty attribute"},
        {{CLASS_HIGH, NULL, NULL, 1, 17}, "exclude"},
        {{CLASS_HIGH, NULL, NULL, 0, 25}, "min_severity"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        prio_rule two[2] = {svc_rules[0], bad[i].r};
        TH_ASSERT(prio_new(two, 2, err, sizeof err) == NULL);
        TH_ASSERT_MSG(strstr(err, bad[i].msg) && strncmp(err, "rule 1:", 7) == 0,
                      "case %zu: %s", i, err);
    }
    prio_rule many[PRIO_MAX_RULES + 1];
    for (size_t i = 0; i <= PRIO_MAX_RULES; i++) many[i] = svc_rules[0];
    TH_ASSERT(prio_new(many, PRIO_MAX_RULES + 1, err, sizeof err) == NULL);
    prio *p = prio_new(many, PRIO_MAX_RULES, NULL, 0);
    TH_ASSERT(p != NULL);
    prio_free(p);
    prio_free(NULL);
}

static void t_single_class_pass_through(void)
{
    prio *p = mkprio(svc_rules, 3);
    rspec s[3] = {
        {.svc = "checkout", .items = 5, .error_at = -1},
        {.svc = "payment", .items = 7, .error_at = -1},
        {.svc = "checkout", .items = 1, .error_at = -1},
    };
    size_t len;
    uint8_t *pb = build(SIG_TRACES, s, 3, &len);
    prio_result r;
    TH_ASSERT_EQ_INT(prio_classify(p, SIG_TRACES, pb, len, &r), 0);
    TH_ASSERT(r.single);
    TH_ASSERT_EQ_INT(r.klass, CLASS_CRITICAL);
    TH_ASSERT_EQ_INT(r.n_entries, 3);
    TH_ASSERT_EQ_INT(r.bytes[CLASS_CRITICAL], len);
    item *out[CLASS_COUNT];
    size_t n;
    TH_ASSERT_EQ_INT(prio_items(p, SIG_TRACES, pb, len, 13, 42, out, &n), 0);
    TH_ASSERT_EQ_INT(n, 1);
    TH_ASSERT_EQ_INT(out[0]->klass, CLASS_CRITICAL);
    TH_ASSERT_EQ_INT(out[0]->count, 13);
    TH_ASSERT_EQ_INT(out[0]->recv_ns, 42);
    TH_ASSERT_EQ_INT(out[0]->len, len);
    TH_ASSERT_MEM_EQ(out[0]->data, pb, len);          /* the original bytes */
    item_free(out[0]);
    free(pb);
    prio_free(p);
}

static void split_case(sw_signal sig, const rspec *s, const int *want, size_t n)
{
    prio *p = mkprio(svc_rules, 3);
    size_t len;
    uint8_t *pb = build(sig, s, n, &len);
    prio_result r;
    TH_ASSERT_EQ_INT(prio_classify(p, sig, pb, len, &r), 0);
    TH_ASSERT(!r.single);
    TH_ASSERT_EQ_INT(r.n_entries, n);
    TH_ASSERT_EQ_INT(r.bytes[0] + r.bytes[1] + r.bytes[2], len);
    item *out[CLASS_COUNT];
    TH_ASSERT_EQ_INT(prio_split(p, sig, pb, len, &r, 7, out), 0);
    check_split(sig, pb, len, want, out);
    uint32_t total, sum = 0;
    TH_ASSERT_EQ_INT(ow_validate(sig, pb, len, &total, NULL), 0);
    for (int k = 0; k < CLASS_COUNT; k++) {
        if (out[k]) {
            sum += out[k]->count;
            TH_ASSERT_EQ_INT(out[k]->recv_ns, 7);
        }
        item_free(out[k]);
    }
    TH_ASSERT_EQ_INT(sum, total);
    /* prio_items: the same, most critical first */
    item *its[CLASS_COUNT];
    size_t ni;
    TH_ASSERT_EQ_INT(prio_items(p, sig, pb, len, total, 7, its, &ni), 0);
    TH_ASSERT(ni >= 2);
    for (size_t i = 1; i < ni; i++) TH_ASSERT(its[i - 1]->klass < its[i]->klass);
    for (size_t i = 0; i < ni; i++) item_free(its[i]);
    free(pb);
    prio_free(p);
}

static void t_mixed_split_traces(void)
{
    rspec s[5] = {
        {.svc = "checkout", .items = 3, .error_at = -1},
        {.svc = "frontend", .items = 10, .error_at = 2},
        {.svc = "api", .items = 1, .error_at = -1},
        {.svc = "payment", .items = 4, .error_at = -1},
        {.svc = NULL, .items = 2, .error_at = -1},
    };
    const int want[5] = {CLASS_CRITICAL, CLASS_NORMAL, CLASS_HIGH, CLASS_CRITICAL, CLASS_NORMAL};
    split_case(SIG_TRACES, s, want, 5);
}

static void t_mixed_split_logs_metrics(void)
{
    rspec s[4] = {
        {.svc = "api", .items = 6, .sev = 9},
        {.svc = "worker", .items = 2, .sev = 9},
        {.svc = "payment", .items = 1, .sev = 9},
        {.svc = "worker2", .items = 0, .sev = 9},
    };
    const int want[4] = {CLASS_HIGH, CLASS_NORMAL, CLASS_CRITICAL, CLASS_NORMAL};
    split_case(SIG_LOGS, s, want, 4);
    split_case(SIG_METRICS, s, want, 4);
}

/* More resources than the classification caches: later ones are decided
 * again during the split. */
static void t_many_resources(void)
{
    enum { N = PRIO_CACHE * 2 + 5 };
    static rspec s[N];
    static int want[N];
    static const char *names[3] = {"payment", "api", "other"};
    for (int i = 0; i < N; i++) {
        int k = (i * 7 + i / 5) % 3;
        s[i] = (rspec){.svc = names[k], .items = 1 + i % 4, .error_at = -1, .sev = 1};
        want[i] = k;
    }
    split_case(SIG_TRACES, s, want, N);
    split_case(SIG_METRICS, s, want, N);
}

static void t_unknown_top_level_field(void)
{
    prio *p = mkprio(svc_rules, 3);
    rspec s[2] = {{.svc = "frontend", .items = 2, .error_at = -1},
                  {.svc = "api", .items = 1, .error_at = -1}};
    size_t len;
    uint8_t *pb = build(SIG_TRACES, s, 2, &len);
    pb[len++] = 0x98;                                 /* field 99, varint: 5 */
    pb[len++] = 0x06;
    pb[len++] = 5;
    prio_result r;
    TH_ASSERT_EQ_INT(prio_classify(p, SIG_TRACES, pb, len, &r), 0);
    TH_ASSERT(!r.single);
    TH_ASSERT_EQ_INT(r.klass, CLASS_HIGH);            /* the most critical present */
    item *out[CLASS_COUNT];
    TH_ASSERT_EQ_INT(prio_split(p, SIG_TRACES, pb, len, &r, 0, out), 0);
    TH_ASSERT(out[CLASS_HIGH] && out[CLASS_NORMAL] && !out[CLASS_CRITICAL]);
    TH_ASSERT_EQ_INT(out[CLASS_HIGH]->len + out[CLASS_NORMAL]->len, len);
    const uint8_t *tail = out[CLASS_HIGH]->data + out[CLASS_HIGH]->len - 3;
    TH_ASSERT_MEM_EQ(tail, pb + len - 3, 3);          /* goes with high */
    uint32_t cnt;
    TH_ASSERT_EQ_INT(ow_validate(SIG_TRACES, out[CLASS_HIGH]->data, out[CLASS_HIGH]->len, &cnt, NULL), 0);
    TH_ASSERT_EQ_INT(cnt, 1);
    for (int k = 0; k < CLASS_COUNT; k++) item_free(out[k]);
    free(pb);
    prio_free(p);
}

static void t_split_refuses_foreign_result(void)
{
    prio *p = mkprio(svc_rules, 3);
    rspec s[2] = {{.svc = "payment", .items = 2, .error_at = -1},
                  {.svc = "api", .items = 1, .error_at = -1}};
    size_t len;
    uint8_t *pb = build(SIG_TRACES, s, 2, &len);
    prio_result r;
    TH_ASSERT_EQ_INT(prio_classify(p, SIG_TRACES, pb, len, &r), 0);
    r.bytes[CLASS_HIGH] -= 1;                         /* not this request's result */
    item *out[CLASS_COUNT];
    TH_ASSERT_EQ_INT(prio_split(p, SIG_TRACES, pb, len, &r, 0, out), SW_EINVAL);
    TH_ASSERT(!out[0] && !out[1] && !out[2]);
    free(pb);
    prio_free(p);
}

static void t_garbage_rejected(void)
{
    prio *p = mkprio(svc_rules, 3);
    static const uint8_t bad[][8] = {
        {0x0a, 0x05, 0x0a},                           /* length past the end */
        {0x0b},                                       /* group */
        {0x08, 0x80},                                 /* truncated varint */
        {0x00, 0x01},                                 /* field 0 */
        {0x0a, 0x02, 0x0a, 0x05},                     /* nested length past its end */
        {0x0d, 1, 2, 3, 4},                           /* field 1 as fixed32 */
    };
    static const size_t blen[] = {3, 1, 2, 2, 4, 5};
    prio_result r;
    for (size_t i = 0; i < sizeof blen / sizeof blen[0]; i++)
        for (int sig = 0; sig < SIG_COUNT; sig++)
            TH_ASSERT_MSG(prio_classify(p, (sw_signal)sig, bad[i], blen[i], &r) == SW_EDECODE,
                          "case %zu sig %d", i, sig);
    TH_ASSERT_EQ_INT(prio_classify(p, (sw_signal)9, bad[0], 3, &r), SW_EINVAL);
    /* every truncation of a valid request: no crash, and consistent */
    rspec s[3] = {{.svc = "payment", .items = 3, .error_at = 1, .sev = 17},
                  {.svc = "api", .items = 2, .error_at = -1, .sev = 3, .xkind = X_INT, .xval = 5},
                  {.svc = "x", .items = 1, .error_at = -1}};
    for (int sig = 0; sig < SIG_COUNT; sig++) {
        size_t len;
        uint8_t *pb = build((sw_signal)sig, s, 3, &len);
        for (size_t cut = 0; cut < len; cut++) {
            uint32_t cnt;
            int ok = ow_validate((sw_signal)sig, pb, cut, &cnt, NULL) == 0;
            int rc = prio_classify(p, (sw_signal)sig, pb, cut, &r);
            if (ok) TH_ASSERT_EQ_INT(rc, 0);
            else TH_ASSERT(rc == 0 || rc == SW_EDECODE);
        }
        free(pb);
    }
    prio_free(p);
}

static void t_from_cfg(void)
{
    const char *yaml =
        "processors:\n"
        "  priority:\n"
        "    rules:\n"
        "      - { class: critical, attribute: service.name, regex: \"^(checkout|payment)\" }\n"
        "      - { class: high, attribute: deployment.environment, regex: \"^prod\" }\n";
    cfg *c = NULL;
    char err[512];
    TH_ASSERT_MSG(cfg_load_mem("t.yaml", yaml, strlen(yaml), &c, err, sizeof err) == 0, "%s", err);
    prio *p = prio_from_cfg(c, err, sizeof err);
    TH_ASSERT_MSG(p != NULL, "%s", err);
    TH_ASSERT_EQ_INT(prio_rule_count(p), 2);
    rspec s = {.svc = "payment-eu", .items = 1, .error_at = -1};
    TH_ASSERT_EQ_INT(class_of(p, SIG_TRACES, &s), CLASS_CRITICAL);
    prio_free(p);
    cfg_free(c);
}

/* The official OTLP/JSON example, converted to protobuf. */
static void t_otlp_example(void)
{
    FILE *f = fopen("../shared/otlp-examples/trace.json", "rb");
    if (!f) th_skip("../shared/otlp-examples/trace.json not present");
    static char js[1 << 16];
    size_t n = fread(js, 1, sizeof js, f);
    fclose(f);
    buf b;
    buf_init(&b, 1 << 20);
    char err[256];
    TH_ASSERT_MSG(oj_json_to_pb(SIG_TRACES, js, n, &b, err, sizeof err) == 0, "%s", err);
    const prio_rule r[] = {{CLASS_HIGH, "service.name", "^my\\.service$"}};
    prio *p = mkprio(r, 1);
    prio_result res;
    TH_ASSERT_EQ_INT(prio_classify(p, SIG_TRACES, b.data, b.len, &res), 0);
    TH_ASSERT(res.single);
    TH_ASSERT_EQ_INT(res.klass, CLASS_HIGH);
    prio_free(p);
    buf_destroy(&b);
}

int main(void)
{
    TH_RUN(t_rules_order_and_default);
    TH_RUN(t_no_rules_all_normal);
    TH_RUN(t_empty_request);
    TH_RUN(t_missing_and_non_string_attrs);
    TH_RUN(t_error_span_raises);
    TH_RUN(t_severity_raises);
    TH_RUN(t_severity_parse);
    TH_RUN(t_bad_rules);
    TH_RUN(t_single_class_pass_through);
    TH_RUN(t_mixed_split_traces);
    TH_RUN(t_mixed_split_logs_metrics);
    TH_RUN(t_many_resources);
    TH_RUN(t_unknown_top_level_field);
    TH_RUN(t_split_refuses_foreign_result);
    TH_RUN(t_garbage_rejected);
    TH_RUN(t_from_cfg);
    TH_RUN(t_otlp_example);
    return th_done();
}
