/* lg_build.c — see lg_build.h.
 *
 * One request's message tree lives in a bump arena (a few 64 KB blocks)
 * that is freed after packing, so building never leaks half a tree and
 * needs no per-message free.
 */
#include "testing/loadgen/lg_build.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "runtime/err.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope Scope;
typedef Opentelemetry__Proto__Resource__V1__Resource Resource;
typedef Opentelemetry__Proto__Trace__V1__Span Span;
typedef Opentelemetry__Proto__Trace__V1__Status Status;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans ScopeSpans;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans ResourceSpans;
typedef Opentelemetry__Proto__Metrics__V1__Metric Metric;
typedef Opentelemetry__Proto__Metrics__V1__Sum Sum;
typedef Opentelemetry__Proto__Metrics__V1__Gauge Gauge;
typedef Opentelemetry__Proto__Metrics__V1__Histogram Histogram;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint NumberPoint;
typedef Opentelemetry__Proto__Metrics__V1__HistogramDataPoint HistPoint;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics ScopeMetrics;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics ResourceMetrics;
typedef Opentelemetry__Proto__Logs__V1__LogRecord LogRecord;
typedef Opentelemetry__Proto__Logs__V1__ScopeLogs ScopeLogs;
typedef Opentelemetry__Proto__Logs__V1__ResourceLogs ResourceLogs;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest TraceReq;
typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest MetricsReq;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest LogsReq;

#define BASE_TIME_NS 1704067200000000000ULL /* 2024-01-01T00:00:00Z */
#define TRACE_SPANS 10u                     /* spans per trace */
#define METRIC_POINTS 10u                   /* data points per metric */
#define HIST_BOUNDS 9u
#define CUMULATIVE OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_CUMULATIVE

/* ---- arena ---------------------------------------------------------- */

typedef struct ablk {
    struct ablk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
} ablk;

typedef struct bctx {
    ablk *arena;
    uint64_t rng;
    const lg_gen_opts *o;
    lg_notes *notes;
    int err;            /* sticky: first failure */
    uint64_t t0;        /* base timestamp of this request */
    uint32_t r, npool;  /* pool entry being built, pool size */
    uint32_t item;      /* items built so far in this request */
    uint64_t res_idx;   /* resource being built, counted over the pool */
} bctx;

static void *ar_alloc(bctx *c, size_t n)
{
    n = (n + 15u) & ~(size_t)15u;
    ablk *b = c->arena;
    if (!b || b->cap - b->used < n) {
        size_t cap = n > 65536u ? n : 65536u;
        b = malloc(sizeof *b + cap);
        if (!b) {
            c->err = SW_ENOMEM;
            return NULL;
        }
        b->next = c->arena;
        b->used = 0;
        b->cap = cap;
        c->arena = b;
    }
    void *p = b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

static void *ar_dup(bctx *c, const void *src, size_t n)
{
    void *p = ar_alloc(c, n);
    if (p) memcpy(p, src, n);
    return p;
}

#define AR_NEW(c, T, INIT) ((T *)ar_dup((c), &(T)INIT, sizeof(T)))

static char *ar_printf(bctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *ar_printf(bctx *c, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof tmp) n = (int)sizeof tmp - 1;
    return ar_dup(c, tmp, (size_t)n + 1);
}

static void ar_free(bctx *c)
{
    while (c->arena) {
        ablk *n = c->arena->next;
        free(c->arena);
        c->arena = n;
    }
}

uint64_t lg_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    return lg_mix64(z);
}

uint64_t lg_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t lg_token(uint64_t seed, uint64_t idx)
{
    return (lg_mix64(seed ^ 0x5bd1e9955bd1e995ULL) & ((1ULL << 50) - 1)) + 1 + idx;
}

uint64_t lg_series_value(const lg_gen_opts *o, uint32_t npool, uint64_t seq, uint32_t ix)
{
    uint64_t slots = (uint64_t)npool * o->batch, q = (seq % npool) * o->batch + ix;
    uint64_t per_slot = (o->series - q + slots - 1) / slots; /* >= 1: slots <= series */
    uint64_t s = q + (seq / npool % per_slot) * slots;
    uint64_t gen = 0;
    if (o->churn > 0 && o->rate > 0) {
        double t = (double)seq * o->batch / o->rate;
        gen = (uint64_t)(t * o->churn + (double)s / (double)o->series);
    }
    return lg_mix64(o->seed ^ lg_mix64(s + 1) ^ (gen * 0x9e3779b97f4a7c15ULL));
}

uint64_t lg_explode_value(const lg_gen_opts *o, uint64_t seq, uint32_t ix)
{
    return lg_mix64((o->seed * 0xd1b54a32d192ed03ULL) + seq * o->batch + ix);
}

void lg_hex16(uint64_t v, uint8_t *dst)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--, v >>= 4) dst[i] = (uint8_t)hex[v & 15u];
}

int lg_note_group(int kind)
{
    if (kind == LG_P_ID || kind == LG_P_SPAN) return 0;
    return kind == LG_P_TOK_INT || kind == LG_P_TOK_DBL ? 1 : 2;
}

static uint32_t rnd(bctx *c, uint32_t n) { return (uint32_t)(lg_rand(&c->rng) % n); }

/* ---- ids ------------------------------------------------------------ */

/* Returns n arena bytes of random id (never all zero), or NULL. */
static uint8_t *new_id(bctx *c, size_t n)
{
    uint8_t *p = ar_alloc(c, n);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = lg_rand(&c->rng) | 1u;
        memcpy(p + i, &v, n - i < 8 ? n - i : 8);
    }
    return p;
}

/* Records a patchable field: its bytes as packed, kind, and token. */
static void note(bctx *c, int kind, const void *bytes, uint8_t width, uint64_t tok)
{
    lg_notes *l = c->notes;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 256;
        lg_note *nv = realloc(l->v, ncap * sizeof *nv);
        if (!nv) {
            c->err = SW_ENOMEM;
            return;
        }
        l->v = nv;
        l->cap = ncap;
    }
    lg_note *n = &l->v[l->n++];
    memset(n, 0, sizeof *n);
    memcpy(n->v, bytes, width);
    n->width = width;
    n->kind = (uint8_t)kind;
    n->item = c->item;
    n->tok = tok;
}

/* The first 8 bytes of an id. */
static void note_id(bctx *c, const uint8_t *id, int kind)
{
    uint64_t v;
    memcpy(&v, id, 8);
    note(c, kind, id, 8, v);
}

/* An arena string of 16 hex digits of v, noted as kind. */
static char *hex_note(bctx *c, int kind, uint64_t v)
{
    char *s = ar_alloc(c, 17);
    if (!s) return NULL;
    lg_hex16(v, (uint8_t *)s);
    note(c, kind, s, 16, v);
    return s;
}

/* ---- attributes ----------------------------------------------------- */

static KeyValue *kv_new(bctx *c, const char *key, AnyValue **val)
{
    KeyValue *kv = AR_NEW(c, KeyValue, OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT);
    AnyValue *v = AR_NEW(c, AnyValue, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
    if (!kv || !v) return NULL;
    kv->key = (char *)key;
    kv->value = v;
    *val = v;
    return kv;
}

static KeyValue *kv_str(bctx *c, const char *key, const char *s)
{
    AnyValue *v;
    KeyValue *kv = s ? kv_new(c, key, &v) : NULL;
    if (!kv) return NULL;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    return kv;
}

static KeyValue *kv_int(bctx *c, const char *key, int64_t i)
{
    AnyValue *v;
    KeyValue *kv = kv_new(c, key, &v);
    if (!kv) return NULL;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
    return kv;
}

static KeyValue *kv_bool(bctx *c, const char *key, int b)
{
    AnyValue *v;
    KeyValue *kv = kv_new(c, key, &v);
    if (!kv) return NULL;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    v->bool_value = b != 0;
    return kv;
}

static KeyValue *kv_dbl(bctx *c, const char *key, double d)
{
    AnyValue *v;
    KeyValue *kv = kv_new(c, key, &v);
    if (!kv) return NULL;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
    v->double_value = d;
    return kv;
}

static const char *const METHODS[] = {"GET", "GET", "GET", "POST", "PUT", "DELETE"};
static const char *const ROUTES[] = {
    "/api/v1/orders/{id}", "/api/v1/orders", "/api/v1/cart", "/api/v1/products/{sku}",
    "/api/v1/checkout", "/api/v1/users/{id}/profile", "/healthz", "/api/v1/search"};
static const int STATUSES[] = {200, 200, 200, 200, 200, 201, 204, 304, 400, 404, 500, 503};
static const char *const DBS[] = {"postgresql", "redis", "mysql"};
static const char *const AGENTS[] = {
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
    "okhttp/4.12.0", "Go-http-client/1.1"};
static const char *const FUNCS[] = {"OrderService.get", "CartService.add",
                                    "CheckoutService.place", "UserService.load"};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Attribute j of a span or log record: realistic keys and value types. */
static KeyValue *item_attr(bctx *c, uint32_t j)
{
    uint64_t x = lg_rand(&c->rng);
    if (j >= 16) return kv_str(c, ar_printf(c, "app.attr.%u", j), ar_printf(c, "v%llu", (unsigned long long)(x % 1000)));
    switch (j) {
    case 0: return kv_str(c, "http.request.method", METHODS[x % ARRAY_LEN(METHODS)]);
    case 1: return kv_str(c, "http.route", ROUTES[x % ARRAY_LEN(ROUTES)]);
    case 2: return kv_int(c, "http.response.status_code", STATUSES[x % ARRAY_LEN(STATUSES)]);
    case 3: return kv_str(c, "server.address", ar_printf(c, "api-%llu.internal.example.com", (unsigned long long)(x % 16)));
    case 4: return kv_str(c, "url.path", ar_printf(c, "/api/v1/orders/%llu", (unsigned long long)(x % 1000000)));
    case 5: return kv_int(c, "server.port", 8080);
    case 6: return kv_str(c, "enduser.id", ar_printf(c, "user-%06llu", (unsigned long long)(x % 1000000)));
    case 7: return kv_str(c, "db.system", DBS[x % ARRAY_LEN(DBS)]);
    case 8: return kv_str(c, "user_agent.original", AGENTS[x % ARRAY_LEN(AGENTS)]);
    case 9: return kv_int(c, "thread.id", (int64_t)(x % 64));
    case 10: return kv_bool(c, "cache.hit", (int)(x & 1));
    case 11: return kv_str(c, "code.function", FUNCS[x % ARRAY_LEN(FUNCS)]);
    case 12: return kv_dbl(c, "app.request.cost", (double)(x % 10000) / 100.0);
    case 13: return kv_str(c, "network.protocol.version", "1.1");
    case 14: return kv_str(c, "db.statement", "SELECT id, status, total FROM orders WHERE customer_id = $1 LIMIT 50");
    default: return kv_int(c, "app.retry.count", (int64_t)(x % 3));
    }
}

/* Attribute j of a metric data point: small value sets, bounded cardinality. */
static KeyValue *point_attr(bctx *c, uint32_t j, uint32_t point)
{
    uint32_t v = j == 0 ? point : rnd(c, 10);
    return kv_str(c, ar_printf(c, "label.%u", j), ar_printf(c, "value-%u", v));
}

/* An array of n span or log record attributes. NULL when n == 0 or on
 * failure. */
static KeyValue **attr_list(bctx *c, uint32_t n)
{
    if (n == 0) return NULL;
    KeyValue **a = ar_alloc(c, n * sizeof *a);
    for (uint32_t j = 0; a && j < n; j++)
        if (!(a[j] = item_attr(c, j))) return NULL;
    return a;
}

/* ---- resource and scope --------------------------------------------- */

static const char *const SERVICES[] = {
    "frontend", "checkout", "payment", "cart", "catalog", "shipping",
    "email", "recommendation", "ad", "currency", "quote", "accounting"};
static const char *const LANGS[] = {"go", "java", "python", "nodejs", "dotnet"};
/* Service names per priority class (lg_gen.h), critical, high, normal. */
static const char *const CLASS_SERVICES[3][8] = {
    {"checkout", "payment"},
    {"frontend", "cart"},
    {"catalog", "shipping", "email", "recommendation", "ad", "currency", "quote", "accounting"}};
static const uint32_t CLASS_N[3] = {2, 2, 8};

/* Base service name of service svc, resource c->res_idx. */
static const char *service_base(const bctx *c, uint32_t svc)
{
    const uint32_t *w = c->o->prio_mix;
    uint32_t total = w[0] + w[1] + w[2];
    if (total == 0) return SERVICES[svc % ARRAY_LEN(SERVICES)];
    uint32_t slot = (uint32_t)((c->res_idx + c->o->seed % total) % total), k = 0;
    while (slot >= w[k]) slot -= w[k++];
    return CLASS_SERVICES[k][svc % CLASS_N[k]];
}

static Resource *resource_new(bctx *c, uint32_t svc)
{
    Resource *res = AR_NEW(c, Resource, OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT);
    KeyValue **a = ar_alloc(c, 7 * sizeof *a);
    if (!res || !a) return NULL;
    const char *base = service_base(c, svc);
    uint32_t gen = svc / ARRAY_LEN(SERVICES);
    a[0] = kv_str(c, "service.name", gen ? ar_printf(c, "%s-%u", base, gen) : base);
    a[1] = kv_str(c, "service.namespace", "shop");
    a[2] = kv_str(c, "service.version", "1.4.2");
    a[3] = kv_str(c, "service.instance.id", ar_printf(c, "%08x-%04x", svc * 2654435761u, svc & 0xffffu));
    a[4] = kv_str(c, "host.name", ar_printf(c, "node-%02u.cluster.local", svc % 32));
    a[5] = kv_str(c, "telemetry.sdk.language", LANGS[svc % ARRAY_LEN(LANGS)]);
    a[6] = kv_str(c, "deployment.environment.name", "production");
    for (int i = 0; i < 7; i++)
        if (!a[i]) return NULL;
    res->n_attributes = 7;
    res->attributes = a;
    return res;
}

static Scope *scope_new(bctx *c, const char *name)
{
    Scope *s = AR_NEW(c, Scope, OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT);
    if (!s) return NULL;
    s->name = (char *)name;
    s->version = "1.32.0";
    return s;
}

/* ---- traces --------------------------------------------------------- */

static const char *const CHILD_NAMES[] = {"SELECT orders", "redis GET", "HTTP GET inventory",
                                          "render order", "publish order.created",
                                          "HTTP POST payment/charge"};
static const int CHILD_KINDS[] = {3, 3, 3, 1, 4, 3};

static Status *status_new(bctx *c)
{
    uint32_t x = rnd(c, 100);
    if (x >= 10) return NULL; /* unset: field omitted */
    Status *st = AR_NEW(c, Status, OPENTELEMETRY__PROTO__TRACE__V1__STATUS__INIT);
    if (!st) return NULL;
    st->code = x < 3 ? OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_ERROR
                     : OPENTELEMETRY__PROTO__TRACE__V1__STATUS__STATUS_CODE__STATUS_CODE_OK;
    if (x < 3) st->message = "upstream request timed out";
    return st;
}

/* One span of trace tid; a root span when parent is NULL. */
static Span *span_new(bctx *c, uint8_t *tid, uint8_t *parent, uint64_t start)
{
    Span *sp = AR_NEW(c, Span, OPENTELEMETRY__PROTO__TRACE__V1__SPAN__INIT);
    uint8_t *sid = new_id(c, 8);
    if (!sp || !sid) return NULL;
    sp->trace_id = (ProtobufCBinaryData){16, tid};
    sp->span_id = (ProtobufCBinaryData){8, sid};
    note_id(c, tid, LG_P_ID);
    note_id(c, sid, LG_P_SPAN);
    uint32_t k = rnd(c, ARRAY_LEN(CHILD_NAMES));
    if (parent) {
        sp->parent_span_id = (ProtobufCBinaryData){8, parent};
        note_id(c, parent, LG_P_ID);
        sp->name = (char *)CHILD_NAMES[k];
        sp->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)CHILD_KINDS[k];
    } else {
        sp->name = ar_printf(c, "%s %s", METHODS[rnd(c, ARRAY_LEN(METHODS))], ROUTES[rnd(c, ARRAY_LEN(ROUTES))]);
        sp->kind = OPENTELEMETRY__PROTO__TRACE__V1__SPAN__SPAN_KIND__SPAN_KIND_SERVER;
    }
    sp->flags = 0x301; /* sampled, parent-is-remote known */
    sp->start_time_unix_nano = start;
    sp->end_time_unix_nano = start + 50000u + rnd(c, 200000000u);
    sp->n_attributes = c->o->attrs;
    sp->attributes = attr_list(c, c->o->attrs);
    sp->status = status_new(c);
    c->item++;
    if (!sp->name || (c->o->attrs && !sp->attributes)) return NULL;
    return sp;
}

static ResourceSpans *traces_resource(bctx *c, uint32_t svc, uint32_t n)
{
    ResourceSpans *rs = AR_NEW(c, ResourceSpans, OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT);
    ScopeSpans *ss = AR_NEW(c, ScopeSpans, OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT);
    ScopeSpans **ssv = ar_alloc(c, sizeof *ssv);
    Span **spans = ar_alloc(c, n * sizeof *spans);
    if (!rs || !ss || !ssv || !spans) return NULL;
    if (!(rs->resource = resource_new(c, svc)) || !(ss->scope = scope_new(c, "io.opentelemetry.http")))
        return NULL;
    uint8_t *tid = NULL, *root = NULL;
    for (uint32_t s = 0; s < n; s++) {
        if (s % TRACE_SPANS == 0 && !(tid = new_id(c, 16))) return NULL;
        uint64_t start = c->t0 + (uint64_t)s * 1000000u + rnd(c, 1000000u);
        spans[s] = span_new(c, tid, s % TRACE_SPANS ? root : NULL, start);
        if (!spans[s]) return NULL;
        if (s % TRACE_SPANS == 0) root = spans[s]->span_id.data;
    }
    ss->n_spans = n;
    ss->spans = spans;
    ssv[0] = ss;
    rs->n_scope_spans = 1;
    rs->scope_spans = ssv;
    return rs;
}

/* ---- metrics -------------------------------------------------------- */

static const char *const METRIC_NAMES[] = {
    "http.server.request.count", "process.memory.usage", "http.server.request.duration",
    "db.client.operation.count", "system.cpu.utilization", "rpc.client.duration",
    "messaging.publish.count", "jvm.threads.count", "http.client.request.duration"};

/* Data point attributes: series.id (series mode) and request.id (label
 * explosion) first, then o->attrs labels. NULL when none or on failure. */
static KeyValue **point_attrs(bctx *c, uint32_t p, size_t *n)
{
    const lg_gen_opts *o = c->o;
    size_t k = 0;
    *n = (o->series ? 1u : 0u) + (o->label_explosion ? 1u : 0u) + o->attrs;
    KeyValue **a = *n ? ar_alloc(c, *n * sizeof *a) : NULL;
    if (!a) return NULL;
    if (o->series)
        a[k++] = kv_str(c, "series.id", hex_note(c, LG_P_SERIES, lg_series_value(o, c->npool, c->r, c->item)));
    if (o->label_explosion)
        a[k++] = kv_str(c, "request.id", hex_note(c, LG_P_EXPLODE, lg_explode_value(o, c->r, c->item)));
    for (uint32_t j = 0; j < o->attrs; j++) a[k++] = point_attr(c, j, p);
    for (size_t i = 0; i < *n; i++)
        if (!a[i]) return NULL;
    return a;
}

/* The token of the data point being built, noted at its value field. */
static uint64_t point_token(bctx *c) { return lg_token(c->o->seed, (uint64_t)c->r * c->o->batch + c->item); }

static NumberPoint *number_point(bctx *c, uint32_t p, int is_int)
{
    NumberPoint *dp = AR_NEW(c, NumberPoint, OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT);
    if (!dp) return NULL;
    uint64_t tok = point_token(c);
    dp->start_time_unix_nano = BASE_TIME_NS;
    dp->time_unix_nano = c->t0;
    if (is_int) {
        dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
        dp->as_int = (int64_t)tok;
        note(c, LG_P_TOK_INT, &dp->as_int, 8, tok);
    } else {
        dp->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_DOUBLE;
        dp->as_double = (double)tok;
        note(c, LG_P_TOK_DBL, &dp->as_double, 8, tok);
    }
    dp->attributes = point_attrs(c, p, &dp->n_attributes);
    c->item++;
    return dp->n_attributes && !dp->attributes ? NULL : dp;
}

static HistPoint *hist_point(bctx *c, uint32_t p)
{
    static double bounds[HIST_BOUNDS] = {5, 10, 25, 50, 75, 100, 250, 500, 1000};
    HistPoint *dp = AR_NEW(c, HistPoint, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT__INIT);
    uint64_t *counts = ar_alloc(c, (HIST_BOUNDS + 1) * sizeof *counts);
    if (!dp || !counts) return NULL;
    uint64_t total = 0, tok = point_token(c);
    for (uint32_t b = 0; b <= HIST_BOUNDS; b++) total += counts[b] = rnd(c, 500);
    dp->start_time_unix_nano = BASE_TIME_NS;
    dp->time_unix_nano = c->t0;
    dp->count = total;
    dp->n_bucket_counts = HIST_BOUNDS + 1;
    dp->bucket_counts = counts;
    dp->n_explicit_bounds = HIST_BOUNDS;
    dp->explicit_bounds = bounds;
    dp->_sum_case = OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM_DATA_POINT___SUM_SUM;
    dp->sum = (double)tok; /* the token: a running total is as plausible as any */
    note(c, LG_P_TOK_DBL, &dp->sum, 8, tok);
    dp->attributes = point_attrs(c, p, &dp->n_attributes);
    c->item++;
    return dp->n_attributes && !dp->attributes ? NULL : dp;
}

/* Metric m with n points: kind m % 3 = sum, gauge, histogram. */
static Metric *metric_new(bctx *c, uint32_t m, uint32_t n)
{
    Metric *mt = AR_NEW(c, Metric, OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT);
    void **pts = ar_alloc(c, n * sizeof *pts);
    if (!mt || !pts) return NULL;
    const char *base = METRIC_NAMES[m % ARRAY_LEN(METRIC_NAMES)];
    mt->name = m < ARRAY_LEN(METRIC_NAMES) ? (char *)base : ar_printf(c, "%s.%u", base, m);
    mt->unit = m % 3 == 2 ? "ms" : "1";
    for (uint32_t p = 0; p < n; p++)
        if (!(pts[p] = m % 3 == 2 ? (void *)hist_point(c, p) : (void *)number_point(c, p, m % 3 == 0)))
            return NULL;
    if (m % 3 == 0) {
        Sum *s = AR_NEW(c, Sum, OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT);
        if (!s) return NULL;
        s->n_data_points = n;
        s->data_points = (NumberPoint **)pts;
        s->aggregation_temporality = CUMULATIVE;
        s->is_monotonic = 1;
        mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
        mt->sum = s;
    } else if (m % 3 == 1) {
        Gauge *g = AR_NEW(c, Gauge, OPENTELEMETRY__PROTO__METRICS__V1__GAUGE__INIT);
        if (!g) return NULL;
        g->n_data_points = n;
        g->data_points = (NumberPoint **)pts;
        mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_GAUGE;
        mt->gauge = g;
    } else {
        Histogram *h = AR_NEW(c, Histogram, OPENTELEMETRY__PROTO__METRICS__V1__HISTOGRAM__INIT);
        if (!h) return NULL;
        h->n_data_points = n;
        h->data_points = (HistPoint **)pts;
        h->aggregation_temporality = CUMULATIVE;
        mt->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_HISTOGRAM;
        mt->histogram = h;
    }
    return mt;
}

static ResourceMetrics *metrics_resource(bctx *c, uint32_t svc, uint32_t n)
{
    uint32_t nm = (n + METRIC_POINTS - 1) / METRIC_POINTS;
    ResourceMetrics *rm = AR_NEW(c, ResourceMetrics, OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT);
    ScopeMetrics *sm = AR_NEW(c, ScopeMetrics, OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT);
    ScopeMetrics **smv = ar_alloc(c, sizeof *smv);
    Metric **mv = ar_alloc(c, nm * sizeof *mv);
    if (!rm || !sm || !smv || !mv) return NULL;
    if (!(rm->resource = resource_new(c, svc)) || !(sm->scope = scope_new(c, "io.opentelemetry.runtime")))
        return NULL;
    for (uint32_t m = 0; m < nm; m++) {
        uint32_t pts = n - m * METRIC_POINTS < METRIC_POINTS ? n - m * METRIC_POINTS : METRIC_POINTS;
        if (!(mv[m] = metric_new(c, m, pts))) return NULL;
    }
    sm->n_metrics = nm;
    sm->metrics = mv;
    smv[0] = sm;
    rm->n_scope_metrics = 1;
    rm->scope_metrics = smv;
    return rm;
}

/* ---- logs ----------------------------------------------------------- */

static LogRecord *log_new(bctx *c, uint64_t t)
{
    static const int sev[] = {9, 9, 9, 9, 9, 9, 5, 13, 13, 17};
    LogRecord *lr = AR_NEW(c, LogRecord, OPENTELEMETRY__PROTO__LOGS__V1__LOG_RECORD__INIT);
    AnyValue *body = AR_NEW(c, AnyValue, OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT);
    if (!lr || !body) return NULL;
    int s = sev[rnd(c, ARRAY_LEN(sev))];
    lr->time_unix_nano = t;
    lr->observed_time_unix_nano = t + 150000u;
    lr->severity_number = (Opentelemetry__Proto__Logs__V1__SeverityNumber)s;
    lr->severity_text = s == 5 ? "DEBUG" : s == 9 ? "INFO" : s == 13 ? "WARN" : "ERROR";
    body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    uint64_t tok = lg_token(c->o->seed, (uint64_t)c->r * c->o->batch + c->item);
    uint8_t hex[16];
    lg_hex16(tok, hex);
    body->string_value = ar_printf(c, "%s %s completed with status %d in %u ms (order %u) id=%.16s",
                                   METHODS[rnd(c, ARRAY_LEN(METHODS))], ROUTES[rnd(c, ARRAY_LEN(ROUTES))],
                                   STATUSES[rnd(c, ARRAY_LEN(STATUSES))], rnd(c, 2000), rnd(c, 1000000),
                                   (const char *)hex);
    note(c, LG_P_TOK_HEX, hex, 16, tok);
    lr->body = body;
    lr->n_attributes = c->o->attrs;
    lr->attributes = attr_list(c, c->o->attrs);
    if (!body->string_value || (c->o->attrs && !lr->attributes)) return NULL;
    if (rnd(c, 5) != 0) { /* most records belong to a span */
        uint8_t *tid = new_id(c, 16), *sid = new_id(c, 8);
        if (!tid || !sid) return NULL;
        lr->flags = 1;
        lr->trace_id = (ProtobufCBinaryData){16, tid};
        lr->span_id = (ProtobufCBinaryData){8, sid};
        note_id(c, tid, LG_P_ID);
        note_id(c, sid, LG_P_ID);
    }
    c->item++;
    return lr;
}

static ResourceLogs *logs_resource(bctx *c, uint32_t svc, uint32_t n)
{
    ResourceLogs *rl = AR_NEW(c, ResourceLogs, OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT);
    ScopeLogs *sl = AR_NEW(c, ScopeLogs, OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT);
    ScopeLogs **slv = ar_alloc(c, sizeof *slv);
    LogRecord **lv = ar_alloc(c, n * sizeof *lv);
    if (!rl || !sl || !slv || !lv) return NULL;
    if (!(rl->resource = resource_new(c, svc)) || !(sl->scope = scope_new(c, "io.opentelemetry.log")))
        return NULL;
    for (uint32_t i = 0; i < n; i++)
        if (!(lv[i] = log_new(c, c->t0 + (uint64_t)i * 1000000u + rnd(c, 1000000u)))) return NULL;
    sl->n_log_records = n;
    sl->log_records = lv;
    slv[0] = sl;
    rl->n_scope_logs = 1;
    rl->scope_logs = slv;
    return rl;
}

/* ---- request -------------------------------------------------------- */

/* Builds the message tree of request r; NULL on failure (c->err set). */
static ProtobufCMessage *request_new(bctx *c, uint32_t r, uint32_t npool)
{
    const lg_gen_opts *o = c->o;
    uint32_t rpr = (o->services + npool - 1) / npool; /* resources per request */
    if (rpr > o->batch) rpr = o->batch;
    void **res = ar_alloc(c, rpr * sizeof *res);
    TraceReq *tr = AR_NEW(c, TraceReq, OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT);
    MetricsReq *mr = AR_NEW(c, MetricsReq, OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT);
    LogsReq *lr = AR_NEW(c, LogsReq, OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT);
    if (!res || !tr || !mr || !lr) return NULL;
    for (uint32_t k = 0; k < rpr; k++) {
        uint32_t svc = (uint32_t)(((uint64_t)r * rpr + k) % o->services);
        uint32_t n = o->batch / rpr + (k < o->batch % rpr ? 1u : 0u);
        c->res_idx = (uint64_t)r * rpr + k;
        if (o->signal == SIG_TRACES) res[k] = traces_resource(c, svc, n);
        else if (o->signal == SIG_METRICS) res[k] = metrics_resource(c, svc, n);
        else res[k] = logs_resource(c, svc, n);
        if (!res[k]) return NULL;
    }
    tr->n_resource_spans = mr->n_resource_metrics = lr->n_resource_logs = rpr;
    tr->resource_spans = (ResourceSpans **)res;
    mr->resource_metrics = (ResourceMetrics **)res;
    lr->resource_logs = (ResourceLogs **)res;
    if (o->signal == SIG_TRACES) return &tr->base;
    return o->signal == SIG_METRICS ? &mr->base : &lr->base;
}

int lg_build_request(const lg_gen_opts *o, uint32_t r, uint32_t npool,
                     uint8_t **out, size_t *len, lg_notes *notes)
{
    if (!o || o->batch == 0 || o->services == 0 || npool == 0 || o->signal >= SIG_COUNT ||
        (o->series && o->series < (uint64_t)npool * o->batch))
        return SW_EINVAL;
    bctx c = {.rng = o->seed ^ ((uint64_t)(r + 1) * 0xd1b54a32d192ed03ULL), .o = o, .notes = notes,
              .r = r, .npool = npool};
    c.t0 = BASE_TIME_NS + (uint64_t)r * 1000000000ULL;
    uint8_t *data = NULL;
    ProtobufCMessage *msg = request_new(&c, r, npool);
    if (!msg || c.err) goto done;
    *len = protobuf_c_message_get_packed_size(msg);
    data = malloc(*len ? *len : 1);
    if (!data) {
        c.err = SW_ENOMEM;
        goto done;
    }
    protobuf_c_message_pack(msg, data);
    *out = data;
done:
    ar_free(&c);
    if (!msg && !c.err) c.err = SW_ENOMEM;
    return c.err;
}
