/* th_otlp.c — see th_otlp.h. Traces and logs builders, generator helpers,
 * sending, expected-content checks; metrics live in th_otlp_metrics.c. */
#include "testing/lib/th_otlp.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "runtime/codec.h"
#include "testing/lib/th_otlp_int.h"
#include "testing/lib/th_proc.h"

#define TH_GEN_MAX (64u << 20)

/* ---- generator context ---- */

void th_gen_init(th_gen *g, uint32_t seed)
{
    memset(g, 0, sizeof(*g));
    g->seed = seed;
    buf_init(&g->json, TH_GEN_MAX);
    buf_init(&g->lines, TH_GEN_MAX);
}

void th_gen_destroy(th_gen *g)
{
    for (size_t i = 0; i < g->n; i++) free(g->ptrs[i]);
    free(g->ptrs);
    buf_destroy(&g->json);
    buf_destroy(&g->lines);
}

void *th_gen_alloc(th_gen *g, size_t size)
{
    void *p;
    if (g->n == g->cap) {
        size_t ncap = g->cap ? g->cap * 2 : 64;
        void **np = realloc(g->ptrs, ncap * sizeof(*np));
        if (!np) longjmp(g->fail, 1);
        g->ptrs = np;
        g->cap = ncap;
    }
    p = calloc(1, size ? size : 1);
    if (!p) longjmp(g->fail, 1);
    g->ptrs[g->n++] = p;
    return p;
}

char *th_gen_strf(th_gen *g, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp)) longjmp(g->fail, 1);
    char *s = th_gen_alloc(g, (size_t)n + 1);
    memcpy(s, tmp, (size_t)n + 1);
    return s;
}

void th_gen_put(th_gen *g, buf *b, const char *fmt, ...)
{
    char tmp[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp) || buf_append(b, tmp, (size_t)n) != 0)
        longjmp(g->fail, 1);
}

uint64_t th_gen_mix(uint32_t seed, uint64_t i, uint64_t salt)
{
    uint64_t z = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + i * 0xBF58476D1CE4E5B9ULL + salt;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void th_gen_hex(char *out, const uint8_t *p, size_t n)
{
    static const char dig[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = dig[p[i] >> 4];
        out[2 * i + 1] = dig[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static void th_gen_id(th_gen *g, uint8_t *out, size_t n, uint64_t i, uint64_t salt)
{
    for (size_t k = 0; k < n; k += 8) {
        uint64_t v = th_gen_mix(g->seed, i, salt + k);
        for (size_t b = 0; b < 8 && k + b < n; b++) out[k + b] = (uint8_t)(v >> (8 * b));
    }
    out[n - 1] |= 1; /* never all zero */
}

th_kv *th_gen_kv_str(th_gen *g, const char *key, const char *val)
{
    th_kv *kv = th_gen_alloc(g, sizeof(*kv));
    Opentelemetry__Proto__Common__V1__AnyValue *v = th_gen_alloc(g, sizeof(*v));
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)val;
    kv->key = (char *)key;
    kv->value = v;
    return kv;
}

th_kv *th_gen_kv_int(th_gen *g, const char *key, int64_t val)
{
    th_kv *kv = th_gen_kv_str(g, key, "");
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    kv->value->int_value = val;
    return kv;
}

Opentelemetry__Proto__Resource__V1__Resource *th_gen_resource(th_gen *g)
{
    Opentelemetry__Proto__Resource__V1__Resource *r = th_gen_alloc(g, sizeof(*r));
    opentelemetry__proto__resource__v1__resource__init(r);
    r->n_attributes = 2;
    r->attributes = th_gen_alloc(g, 2 * sizeof(*r->attributes));
    r->attributes[0] = th_gen_kv_str(g, "service.name", th_gen_strf(g, "itest-%u", g->seed));
    r->attributes[1] = th_gen_kv_int(g, "itest.seed", g->seed);
    return r;
}

Opentelemetry__Proto__Common__V1__InstrumentationScope *th_gen_scope(th_gen *g)
{
    Opentelemetry__Proto__Common__V1__InstrumentationScope *s = th_gen_alloc(g, sizeof(*s));
    opentelemetry__proto__common__v1__instrumentation_scope__init(s);
    s->name = "itest.scope";
    s->version = "1.0";
    return s;
}

void th_gen_json_resource(th_gen *g)
{
    th_gen_put(g, &g->json,
               "\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
               "{\"stringValue\":\"itest-%u\"}},{\"key\":\"itest.seed\",\"value\":"
               "{\"intValue\":\"%u\"}}]}", g->seed, g->seed);
}

void th_gen_json_scope(th_gen *g)
{
    th_gen_put(g, &g->json, "\"scope\":{\"name\":\"itest.scope\",\"version\":\"1.0\"}");
}

/* ---- traces ---- */

th_span *th_gen_span(th_gen *g, size_t i, int status)
{
    th_span *s = th_gen_alloc(g, sizeof(*s));
    Opentelemetry__Proto__Trace__V1__Status *st = th_gen_alloc(g, sizeof(*st));
    uint8_t *ids = th_gen_alloc(g, 24);
    char tid[33], sid[17];
    opentelemetry__proto__trace__v1__span__init(s);
    opentelemetry__proto__trace__v1__status__init(st);
    th_gen_id(g, ids, 16, i / 4, 1);
    th_gen_id(g, ids + 16, 8, i, 100);
    s->trace_id = (ProtobufCBinaryData){16, ids};
    s->span_id = (ProtobufCBinaryData){8, ids + 16};
    s->name = th_gen_strf(g, "span-%u-%zu", g->seed, i);
    s->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)(1 + i % 5);
    s->start_time_unix_nano = TH_T0_NS + i * 1000;
    s->end_time_unix_nano = TH_T0_NS + i * 1000 + 500;
    s->n_attributes = 1;
    s->attributes = th_gen_alloc(g, sizeof(*s->attributes));
    s->attributes[0] = th_gen_kv_int(g, "i", (int64_t)i);
    st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)(status >= 0 ? status
                                                                              : (int)(i % 3));
    s->status = st;
    th_gen_hex(tid, ids, 16);
    th_gen_hex(sid, ids + 16, 8);
    th_gen_put(g, &g->json,
               "%s{\"traceId\":\"%s\",\"spanId\":\"%s\",\"name\":\"%s\",\"kind\":%d,"
               "\"startTimeUnixNano\":\"%llu\",\"endTimeUnixNano\":\"%llu\","
               "\"attributes\":[{\"key\":\"i\",\"value\":{\"intValue\":\"%zu\"}}],"
               "\"status\":{\"code\":%d}}",
               i ? "," : "", tid, sid, s->name, (int)s->kind,
               (unsigned long long)s->start_time_unix_nano,
               (unsigned long long)s->end_time_unix_nano, i, (int)st->code);
    th_gen_put(g, &g->lines, "%s %s %s\n", tid, sid, s->name);
    return s;
}

static void th_gen_traces(th_gen *g, size_t n, uint8_t **pb, size_t *pb_len)
{
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rs = th_gen_alloc(g, sizeof(*rs));
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ss = th_gen_alloc(g, sizeof(*ss));
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__init(&req);
    opentelemetry__proto__trace__v1__resource_spans__init(rs);
    opentelemetry__proto__trace__v1__scope_spans__init(ss);
    rs->resource = th_gen_resource(g);
    rs->n_scope_spans = 1;
    rs->scope_spans = th_gen_alloc(g, sizeof(*rs->scope_spans));
    rs->scope_spans[0] = ss;
    ss->scope = th_gen_scope(g);
    ss->n_spans = n;
    ss->spans = th_gen_alloc(g, (n ? n : 1) * sizeof(*ss->spans));
    req.n_resource_spans = 1;
    req.resource_spans = &rs;
    th_gen_put(g, &g->json, "{\"resourceSpans\":[{");
    th_gen_json_resource(g);
    th_gen_put(g, &g->json, ",\"scopeSpans\":[{");
    th_gen_json_scope(g);
    th_gen_put(g, &g->json, ",\"spans\":[");
    for (size_t i = 0; i < n; i++) ss->spans[i] = th_gen_span(g, i, -1);
    th_gen_put(g, &g->json, "]}]}]}");
    *pb_len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
    *pb = malloc(*pb_len ? *pb_len : 1);
    if (!*pb) longjmp(g->fail, 1);
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, *pb);
}

/* ---- logs ---- */

typedef Opentelemetry__Proto__Logs__V1__LogRecord th_log;

static th_log *th_log_new(th_gen *g, size_t i)
{
    th_log *r = th_gen_alloc(g, sizeof(*r));
    Opentelemetry__Proto__Common__V1__AnyValue *body = th_gen_alloc(g, sizeof(*body));
    uint8_t *ids = th_gen_alloc(g, 24);
    int quoted = i % 7 == 3;
    char tid[33] = "-", sid[17] = "";
    opentelemetry__proto__logs__v1__log_record__init(r);
    opentelemetry__proto__common__v1__any_value__init(body);
    r->time_unix_nano = TH_T0_NS + i;
    r->severity_number = (Opentelemetry__Proto__Logs__V1__SeverityNumber)(1 + i % 24);
    r->severity_text = th_gen_strf(g, "SEV%zu", 1 + i % 24);
    body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    body->string_value = th_gen_strf(g, "log %u %zu%s", g->seed, i, quoted ? " \"q\"" : "");
    r->body = body;
    if (i % 3 != 0) {
        th_gen_id(g, ids, 16, i / 4, 1);
        th_gen_id(g, ids + 16, 8, i, 200);
        r->trace_id = (ProtobufCBinaryData){16, ids};
        r->span_id = (ProtobufCBinaryData){8, ids + 16};
        th_gen_hex(tid, ids, 16);
        th_gen_hex(sid, ids + 16, 8);
    }
    th_gen_put(g, &g->json,
               "%s{\"timeUnixNano\":\"%llu\",\"severityNumber\":%d,\"severityText\":\"%s\","
               "\"body\":{\"stringValue\":\"log %u %zu%s\"}",
               i ? "," : "", (unsigned long long)r->time_unix_nano, (int)r->severity_number,
               r->severity_text, g->seed, i, quoted ? " \\\"q\\\"" : "");
    if (i % 3 != 0) th_gen_put(g, &g->json, ",\"traceId\":\"%s\",\"spanId\":\"%s\"", tid, sid);
    th_gen_put(g, &g->json, "}");
    th_gen_put(g, &g->lines, "%s %d %s\n", tid, (int)r->severity_number, body->string_value);
    return r;
}

static void th_gen_logs(th_gen *g, size_t n, uint8_t **pb, size_t *pb_len)
{
    Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req;
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = th_gen_alloc(g, sizeof(*rl));
    Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = th_gen_alloc(g, sizeof(*sl));
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__init(&req);
    opentelemetry__proto__logs__v1__resource_logs__init(rl);
    opentelemetry__proto__logs__v1__scope_logs__init(sl);
    rl->resource = th_gen_resource(g);
    rl->n_scope_logs = 1;
    rl->scope_logs = th_gen_alloc(g, sizeof(*rl->scope_logs));
    rl->scope_logs[0] = sl;
    sl->scope = th_gen_scope(g);
    sl->n_log_records = n;
    sl->log_records = th_gen_alloc(g, (n ? n : 1) * sizeof(*sl->log_records));
    req.n_resource_logs = 1;
    req.resource_logs = &rl;
    th_gen_put(g, &g->json, "{\"resourceLogs\":[{");
    th_gen_json_resource(g);
    th_gen_put(g, &g->json, ",\"scopeLogs\":[{");
    th_gen_json_scope(g);
    th_gen_put(g, &g->json, ",\"logRecords\":[");
    for (size_t i = 0; i < n; i++) sl->log_records[i] = th_log_new(g, i);
    th_gen_put(g, &g->json, "]}]}]}");
    *pb_len = opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
    *pb = malloc(*pb_len ? *pb_len : 1);
    if (!*pb) longjmp(g->fail, 1);
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, *pb);
}

/* ---- public ---- */

static void th_otlp_release(void *p) { th_otlp_free(p); }

static char *th_buf_cstr(buf *b)
{
    size_t len;
    if (buf_append(b, "", 1) != 0) return NULL;
    return (char *)buf_steal(b, &len);
}

/* The builder of th_otlp_new(): arg points at the item count. */
static void th_gen_default(th_gen *g, const void *arg, uint8_t **pb, size_t *pb_len)
{
    size_t n = *(const size_t *)arg;
    if (g->sig == SIG_TRACES) th_gen_traces(g, n, pb, pb_len);
    else if (g->sig == SIG_METRICS) th_gen_metrics(g, n, pb, pb_len);
    else th_gen_logs(g, n, pb, pb_len);
}

th_otlp *th_otlp_new(sw_signal sig, uint32_t seed, size_t n)
{
    return th_otlp_generate(sig, seed, n, th_gen_default, &n);
}

th_otlp *th_otlp_generate(sw_signal sig, uint32_t seed, size_t items, th_gen_fn build,
                          const void *arg)
{
    th_otlp *volatile d = calloc(1, sizeof(th_otlp));
    th_gen g;
    if (!d) return NULL;
    th_gen_init(&g, seed);
    g.sig = sig;
    if (setjmp(g.fail) != 0) goto fail;
    d->sig = sig;
    d->seed = seed;
    d->items = items;
    build(&g, arg, &d->pb, &d->pb_len);
    d->json_len = g.json.len;
    d->json = th_buf_cstr(&g.json);
    d->lines = th_buf_cstr(&g.lines);
    if (!d->json || !d->lines) goto fail;
    th_gen_destroy(&g);
    th_res_add(th_otlp_release, d);
    return d;
fail:
    th_gen_destroy(&g);
    free(d->pb);
    free(d->json);
    free(d->lines);
    free(d);
    return NULL;
}

void th_otlp_free(th_otlp *d)
{
    if (!d) return;
    th_res_forget(d);
    free(d->pb);
    free(d->json);
    free(d->lines);
    free(d);
}

int th_otlp_add_unknown_field(th_otlp *d)
{
    static const uint8_t field99[] = {0x98, 0x06, 0x01}; /* tag 99 varint, value 1 */
    uint8_t *np = realloc(d->pb, d->pb_len + sizeof(field99));
    if (!np) return -1;
    memcpy(np + d->pb_len, field99, sizeof(field99));
    d->pb = np;
    d->pb_len += sizeof(field99);
    return 0;
}

const char *th_enc_name(th_enc e)
{
    static const char *const names[] = {"protobuf", "json", "gzip+protobuf", "zstd+protobuf",
                                        "gzip+json"};
    return e < TH_ENC_COUNT ? names[e] : "?";
}

const char *th_enc_content_type(th_enc e)
{
    return e == TH_ENC_JSON || e == TH_ENC_GZIP_JSON ? "application/json"
                                                     : "application/x-protobuf";
}

uint8_t *th_compress(const char *coding, const void *data, size_t len, size_t *out_len)
{
    buf out;
    int rc;
    buf_init(&out, TH_GEN_MAX);
    if (strcmp(coding, "gzip") == 0) rc = codec_gzip(data, len, &out, 6);
    else rc = codec_zstd_compress(data, len, &out, 3);
    if (rc != 0) {
        buf_destroy(&out);
        return NULL;
    }
    if (out.len == 0 && buf_append(&out, "", 1) == 0) out.len = 0;
    return buf_steal(&out, out_len);
}

const th_resp *th_otlp_send(th_http *c, const th_otlp *d, th_enc e)
{
    int json = e == TH_ENC_JSON || e == TH_ENC_GZIP_JSON;
    const void *body = json ? (const void *)d->json : d->pb;
    size_t len = json ? d->json_len : d->pb_len, zlen = 0;
    const char *coding = e == TH_ENC_GZIP_PB || e == TH_ENC_GZIP_JSON ? "gzip"
                         : e == TH_ENC_ZSTD_PB                        ? "zstd"
                                                                      : NULL;
    uint8_t *z = NULL;
    char hdr[160], path[32];
    const th_resp *r;
    if (coding) {
        z = th_compress(coding, body, len, &zlen);
        if (!z) return NULL;
        body = z;
        len = zlen;
    }
    snprintf(hdr, sizeof(hdr), "Content-Type: %s\r\n%s%s%s", th_enc_content_type(e),
             coding ? "Content-Encoding: " : "", coding ? coding : "", coding ? "\r\n" : "");
    snprintf(path, sizeof(path), "/v1/%s", sw_signal_name(d->sig));
    r = th_http_request(c, "POST", path, hdr, body, len);
    free(z);
    return r;
}
