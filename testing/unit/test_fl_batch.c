/* test_fl_batch.c — records into ExportLogsServiceRequest bytes
 * (receivers/filelog/fl_batch.h), checked by unpacking with protobuf-c
 * and by the wire walk every receiver's data goes through. */
#include <string.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "receivers/filelog/fl_batch.h"
#include "receivers/filelog/fl_meta.h"
#include "runtime/err.h"
#include "runtime/otlp_wire.h"
#include "testing/lib/th.h"

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue kv_t;

static req_t *unpack(const buf *b)
{
    uint32_t items = 0;
    const char *why = NULL;
    TH_ASSERT_MSG(ow_validate(SIG_LOGS, b->data, b->len, &items, &why) == 0, "walk: %s", why);
    req_t *r = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(NULL, b->len, b->data);
    TH_ASSERT(r != NULL);
    return r;
}

static const kv_t *attr(kv_t **kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(kv[i]->key, key) == 0) return kv[i];
    return NULL;
}

static void t_records_and_resource(void)
{
    fl_batch b;
    buf res, out;
    fl_batch_init(&b, 1 << 20);
    buf_init(&res, 1 << 20);
    buf_init(&out, 1 << 22);
    fl_container_info ci = { "web", "registry:5000/team/app:1.2", 0, NULL, NULL };
    TH_ASSERT_EQ_INT(fl_meta_encode_resource("abc", &ci, "container.label.", &res), 0);
    fl_record r1 = { "first line", 10, FL_STREAM_STDOUT, 1700000000123456789LL, 42, 0, NULL, NULL };
    fl_record r2 = { "{\"x\": broken", 12, 0, 0, 43, 1, "invalid JSON", "/var/log/a.log" };
    TH_ASSERT_EQ_INT(fl_batch_add(&b, &r1, 1000), 0);
    TH_ASSERT_EQ_INT(fl_batch_add(&b, &r2, 2000), 0);
    TH_ASSERT_EQ_INT(b.n, 2);
    TH_ASSERT_EQ_INT(b.first_ns, 1000);
    TH_ASSERT_EQ_INT(fl_batch_build(&b, res.data, res.len, &out), 0);
    req_t *r = unpack(&out);
    TH_ASSERT_EQ_INT(r->n_resource_logs, 1);
    Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = r->resource_logs[0];
    TH_ASSERT(rl->resource != NULL);
    kv_t **ra = rl->resource->attributes;
    size_t nra = rl->resource->n_attributes;
    TH_ASSERT_EQ_STR(attr(ra, nra, "container.id")->value->string_value, "abc");
    TH_ASSERT_EQ_STR(attr(ra, nra, "container.name")->value->string_value, "web");
    TH_ASSERT_EQ_STR(attr(ra, nra, "container.image.name")->value->string_value, "registry:5000/team/app");
    const kv_t *tags = attr(ra, nra, "container.image.tags");
    TH_ASSERT(tags && tags->value->array_value && tags->value->array_value->n_values == 1);
    TH_ASSERT_EQ_STR(tags->value->array_value->values[0]->string_value, "1.2");
    TH_ASSERT_EQ_INT(rl->n_scope_logs, 1);
    TH_ASSERT_EQ_STR(rl->scope_logs[0]->scope->name, FL_SCOPE_NAME);
    TH_ASSERT_EQ_INT(rl->scope_logs[0]->n_log_records, 2);
    Opentelemetry__Proto__Logs__V1__LogRecord *a = rl->scope_logs[0]->log_records[0];
    Opentelemetry__Proto__Logs__V1__LogRecord *z = rl->scope_logs[0]->log_records[1];
    TH_ASSERT_EQ_STR(a->body->string_value, "first line");
    TH_ASSERT(a->time_unix_nano == 1700000000123456789ULL);
    TH_ASSERT_EQ_INT(a->observed_time_unix_nano, 42);
    TH_ASSERT_EQ_STR(attr(a->attributes, a->n_attributes, "log.iostream")->value->string_value, "stdout");
    TH_ASSERT_EQ_INT(a->n_attributes, 1);
    TH_ASSERT_EQ_STR(z->body->string_value, "{\"x\": broken");
    TH_ASSERT_EQ_INT(z->time_unix_nano, 0);
    TH_ASSERT(attr(z->attributes, z->n_attributes, FL_ATTR_TRUNCATED)->value->bool_value);
    TH_ASSERT_EQ_STR(attr(z->attributes, z->n_attributes, FL_ATTR_PARSE_ERROR)->value->string_value,
                     "invalid JSON");
    TH_ASSERT_EQ_STR(attr(z->attributes, z->n_attributes, "log.file.path")->value->string_value,
                     "/var/log/a.log");
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(r, NULL);
    /* two requests concatenated are one request with both */
    TH_ASSERT_EQ_INT(fl_batch_build(&b, NULL, 0, &out), 0);
    r = unpack(&out);
    TH_ASSERT_EQ_INT(r->n_resource_logs, 2);
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(r, NULL);
    fl_batch_destroy(&b);
    buf_destroy(&res);
    buf_destroy(&out);
}

static void t_bounded(void)
{
    fl_batch b;
    char body[300];
    memset(body, 'x', sizeof body);
    fl_batch_init(&b, 1100);
    fl_record r = { body, sizeof body, FL_STREAM_STDERR, 1, 2, 0, NULL, NULL };
    int n = 0;
    while (fl_batch_add(&b, &r, 5) == 0) n++;
    TH_ASSERT_EQ_INT(n, 3);
    TH_ASSERT_EQ_INT(b.n, 3);
    TH_ASSERT(b.recs.len <= 1100 && b.recs.len > 1000);
    size_t len = b.recs.len;
    TH_ASSERT_EQ_INT(fl_batch_add(&b, &r, 5), SW_ETOOBIG);
    TH_ASSERT_EQ_INT(b.recs.len, len); /* unchanged by the refusal */
    fl_batch_reset(&b);
    TH_ASSERT_EQ_INT(b.n, 0);
    TH_ASSERT_EQ_INT(fl_batch_add(&b, &r, 5), 0);
    fl_batch_destroy(&b);
}

/* Bodies that are not UTF-8 go as bytes, so no upstream rejects them. */
static void t_non_utf8_body_as_bytes(void)
{
    static const struct { const char *s; int ok; } c[] = {
        { "plain", 1 }, { "caf\xc3\xa9 \xe4\xb8\xad \xf0\x9f\x98\x80", 1 }, { "\xff", 0 },
        { "\xc3", 0 }, { "\xc0\xaf", 0 }, { "\xed\xa0\x80", 0 }, { "\xf4\x90\x80\x80", 0 },
        { "ok \xe2\x82", 0 },
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        fl_batch b;
        buf out;
        fl_batch_init(&b, 4096);
        buf_init(&out, 8192);
        fl_record r = { c[i].s, strlen(c[i].s), 0, 0, 1, 0, NULL, NULL };
        TH_ASSERT_EQ_INT(fl_batch_add(&b, &r, 1), 0);
        TH_ASSERT_EQ_INT(fl_batch_build(&b, NULL, 0, &out), 0);
        req_t *q = unpack(&out);
        const Opentelemetry__Proto__Common__V1__AnyValue *v =
            q->resource_logs[0]->scope_logs[0]->log_records[0]->body;
        if (c[i].ok) {
            TH_ASSERT_MSG(v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE, "%zu", i);
            TH_ASSERT_EQ_STR(v->string_value, c[i].s);
        } else {
            TH_ASSERT_MSG(v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BYTES_VALUE, "%zu", i);
            TH_ASSERT(v->bytes_value.len == strlen(c[i].s) && memcmp(v->bytes_value.data, c[i].s, v->bytes_value.len) == 0);
        }
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(q, NULL);
        fl_batch_destroy(&b);
        buf_destroy(&out);
    }
}

int main(void)
{
    TH_RUN(t_non_utf8_body_as_bytes);
    TH_RUN(t_records_and_resource);
    TH_RUN(t_bounded);
    return th_done();
}
