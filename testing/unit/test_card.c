/* test_card.c — cardinality limiter: FNV-1a, the series table, keys,
 * policy bands, key_ttl. Merge rules are in test_card_merge.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "processors/card_int.h"
#include "runtime/err.h"
#include "runtime/otlp_wire.h"
#include "testing/lib/th.h"
#include "processors/card_metrics.h"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req_t;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics res_t;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics scope_t;
typedef Opentelemetry__Proto__Metrics__V1__NumberDataPoint num_pt;

#define SEC 1000000000LL

/* ---- building requests (everything malloc'd: free_unpacked frees it) ---- */

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n, sz);
    if (!p) abort();
    return p;
}

static void *grow(void *arr, size_t n)
{
    void **a = realloc(arr, (n + 1) * sizeof(void *));
    if (!a) abort();
    return a;
}

static card_kv *kv_new(const char *k, const char *v)
{
    card_kv *kv = xcalloc(1, sizeof *kv);
    card_any *av = xcalloc(1, sizeof *av);
    card_kv kv0 = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    card_any av0 = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    *kv = kv0;
    *av = av0;
    kv->key = strdup(k);
    av->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    av->string_value = strdup(v);
    kv->value = av;
    return kv;
}

/* Attributes from "k=v,k=v" (empty: none). */
static card_kv **attrs_from(const char *spec, size_t *n)
{
    card_kv **a = NULL;
    *n = 0;
    char *copy = strdup(spec), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(tok, '=');
        if (!eq) continue;
        *eq = 0;
        a = grow(a, *n);
        a[(*n)++] = kv_new(tok, eq + 1);
    }
    free(copy);
    return a;
}

static req_t *req_new(const char *service)
{
    req_t r0 = OPENTELEMETRY__PROTO__COLLECTOR__METRICS__V1__EXPORT_METRICS_SERVICE_REQUEST__INIT;
    res_t rm0 = OPENTELEMETRY__PROTO__METRICS__V1__RESOURCE_METRICS__INIT;
    scope_t sm0 = OPENTELEMETRY__PROTO__METRICS__V1__SCOPE_METRICS__INIT;
    Opentelemetry__Proto__Resource__V1__Resource re0 = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    req_t *r = xcalloc(1, sizeof *r);
    res_t *rm = xcalloc(1, sizeof *rm);
    scope_t *sm = xcalloc(1, sizeof *sm);
    Opentelemetry__Proto__Resource__V1__Resource *re = xcalloc(1, sizeof *re);
    *r = r0; *rm = rm0; *sm = sm0; *re = re0;
    re->attributes = grow(NULL, 0);
    re->attributes[0] = kv_new("service.name", service);
    re->n_attributes = 1;
    rm->resource = re;
    rm->scope_metrics = grow(NULL, 0);
    rm->scope_metrics[0] = sm;
    rm->n_scope_metrics = 1;
    r->resource_metrics = grow(NULL, 0);
    r->resource_metrics[0] = rm;
    r->n_resource_metrics = 1;
    return r;
}

/* Appends a delta sum metric to the request's only scope. */
static card_metric *add_sum(req_t *r, const char *name)
{
    card_metric m0 = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__INIT;
    Opentelemetry__Proto__Metrics__V1__Sum s0 = OPENTELEMETRY__PROTO__METRICS__V1__SUM__INIT;
    scope_t *sm = r->resource_metrics[0]->scope_metrics[0];
    card_metric *m = xcalloc(1, sizeof *m);
    *m = m0;
    m->name = strdup(name);
    m->data_case = OPENTELEMETRY__PROTO__METRICS__V1__METRIC__DATA_SUM;
    m->sum = xcalloc(1, sizeof *m->sum);
    *m->sum = s0;
    m->sum->aggregation_temporality =
        OPENTELEMETRY__PROTO__METRICS__V1__AGGREGATION_TEMPORALITY__AGGREGATION_TEMPORALITY_DELTA;
    sm->metrics = grow(sm->metrics, sm->n_metrics);
    sm->metrics[sm->n_metrics++] = m;
    return m;
}

static void add_point(card_metric *m, const char *spec, int64_t value)
{
    num_pt p0 = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__INIT;
    num_pt *p = xcalloc(1, sizeof *p);
    *p = p0;
    p->attributes = attrs_from(spec, &p->n_attributes);
    p->time_unix_nano = 1000;
    p->value_case = OPENTELEMETRY__PROTO__METRICS__V1__NUMBER_DATA_POINT__VALUE_AS_INT;
    p->as_int = value;
    m->sum->data_points = grow(m->sum->data_points, m->sum->n_data_points);
    m->sum->data_points[m->sum->n_data_points++] = p;
}

static uint8_t *req_pack(req_t *r, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(&r->base);
    uint8_t *b = malloc(*len ? *len : 1);
    if (!b) abort();
    protobuf_c_message_pack(&r->base, b);
    protobuf_c_message_free_unpacked(&r->base, NULL);
    return b;
}

/* A request of metric `name` with n points "id=<first+i>,host=h<i%hosts>". */
static uint8_t *req_ids(const char *name, size_t first, size_t n, size_t hosts, size_t *len)
{
    req_t *r = req_new("svc");
    card_metric *m = add_sum(r, name);
    char spec[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(spec, sizeof spec, "id=%zu,host=h%zu", first + i, i % hosts);
        add_point(m, spec, 1);
    }
    return req_pack(r, len);
}

static card *card_small(uint32_t max_keys, int64_t ttl)
{
    card_config cfg;
    card_config_default(&cfg);
    cfg.max_keys = max_keys;
    cfg.key_ttl_ns = ttl;
    card *c = card_new(&cfg, NULL);
    if (!c) abort();
    return c;
}

/* Runs pb through c; checks the result re-decodes and adds up. */
static void run(card *c, uint8_t *pb, size_t len, int64_t now, card_result *out)
{
    int rc = card_process(c, pb, len, now, out);
    TH_ASSERT_EQ_INT(rc, 0);
    const uint8_t *o = out->unchanged ? pb : out->out.data;
    size_t olen = out->unchanged ? len : out->out.len;
    uint32_t items = 0;
    const char *why = NULL;
    TH_ASSERT_MSG(ow_validate(SIG_METRICS, o, olen, &items, &why) == 0, "invalid output: %s", why);
    TH_ASSERT_EQ_INT(items, out->points_out);
    TH_ASSERT_EQ_INT(out->points_in, out->points_out + out->rejected_points + out->merged_points);
}

/* Fills the table with junk keys up to `used` slots. */
static void fill_to(card *c, uint32_t used)
{
    for (uint64_t k = 0xabc0000000ULL; c->t.used < used; k += 0x9e3779b97f4aULL)
        TH_ASSERT(card_table_insert(&c->t, k, 0) >= 0);
}

/* ---- FNV-1a ---- */

static void t_fnv_vectors(void)
{
    TH_ASSERT(card_fnv1a64("", 0) == 0xcbf29ce484222325ULL);
    TH_ASSERT(card_fnv1a64("a", 1) == 0xaf63dc4c8601ec8cULL);
    TH_ASSERT(card_fnv1a64("foobar", 6) == 0x85944171f73967e8ULL);
}

/* ---- the table ---- */

static void t_table_cluster(void)
{
    card_table t;
    TH_ASSERT_EQ_INT(card_table_init(&t, 16), 0);
    /* three keys with home 5: slots 5, 6, 7 */
    TH_ASSERT_EQ_INT(card_table_insert(&t, 5, 1), 0);
    TH_ASSERT_EQ_INT(card_table_insert(&t, 21, 1), 0);
    TH_ASSERT_EQ_INT(card_table_insert(&t, 37, 1), 0);
    TH_ASSERT_EQ_INT(card_table_insert(&t, 6 + 48, 1), 0); /* home 6 -> slot 8 */
    TH_ASSERT_EQ_INT(card_table_insert(&t, 21, 2), 1);
    TH_ASSERT_EQ_INT(t.used, 4);
    TH_ASSERT_EQ_INT(card_table_find(&t, 5), 5);
    TH_ASSERT_EQ_INT(card_table_find(&t, 37), 7);
    TH_ASSERT_EQ_INT(card_table_find(&t, 54), 8);
    TH_ASSERT_EQ_INT(card_table_remove(&t, 21), 0);
    TH_ASSERT_EQ_INT(card_table_remove(&t, 21), SW_ENOTFOUND);
    /* backward shift: 37 to 6, 54 to 7 (home 6), slot 8 empty */
    TH_ASSERT_EQ_INT(card_table_find(&t, 37), 6);
    TH_ASSERT_EQ_INT(card_table_find(&t, 54), 7);
    TH_ASSERT(t.slots[8].key == 0);
    TH_ASSERT_EQ_INT(card_table_find(&t, 21), -1);
    TH_ASSERT_EQ_INT(t.used, 3);
    card_table_destroy(&t);
}

static void t_table_wrap(void)
{
    card_table t;
    TH_ASSERT_EQ_INT(card_table_init(&t, 16), 0);
    uint64_t keys[] = {14, 30, 46, 31}; /* homes 14, 14, 14, 15 */
    for (int i = 0; i < 4; i++) TH_ASSERT_EQ_INT(card_table_insert(&t, keys[i], 1), 0);
    TH_ASSERT_EQ_INT(card_table_find(&t, 46), 0);
    TH_ASSERT_EQ_INT(card_table_find(&t, 31), 1);
    TH_ASSERT_EQ_INT(card_table_remove(&t, 14), 0);
    TH_ASSERT_EQ_INT(card_table_find(&t, 30), 14);
    TH_ASSERT_EQ_INT(card_table_find(&t, 46), 15);
    TH_ASSERT_EQ_INT(card_table_find(&t, 31), 0);
    TH_ASSERT(t.slots[1].key == 0);
    TH_ASSERT_EQ_INT(card_table_remove(&t, 30), 0);
    TH_ASSERT_EQ_INT(card_table_find(&t, 46), 14);
    TH_ASSERT_EQ_INT(card_table_find(&t, 31), 15);
    TH_ASSERT_EQ_INT(t.used, 2);
    card_table_destroy(&t);
}

static void t_table_full(void)
{
    card_table t;
    TH_ASSERT_EQ_INT(card_table_init(&t, 16), 0);
    for (uint64_t k = 1; k <= 16; k++) TH_ASSERT_EQ_INT(card_table_insert(&t, k * 7, 1), 0);
    TH_ASSERT_EQ_INT(t.used, 16);
    TH_ASSERT_EQ_INT(card_table_insert(&t, 1000, 1), SW_EFULL);
    TH_ASSERT_EQ_INT(card_table_find(&t, 1000), -1);
    TH_ASSERT_EQ_INT(card_table_insert(&t, 7, 2), 1);
    TH_ASSERT_EQ_INT(t.used, 16);
    TH_ASSERT_EQ_INT(t.mask, 15);
    TH_ASSERT_EQ_INT(card_table_remove(&t, 49), 0);
    for (uint64_t k = 1; k <= 16; k++)
        TH_ASSERT_EQ_INT(card_table_find(&t, k * 7) >= 0, k != 7);
    TH_ASSERT_EQ_INT(card_table_insert(&t, 1000, 1), 0);
    TH_ASSERT_EQ_INT(card_table_find(&t, 1000) >= 0, 1);
    card_table_destroy(&t);
}

static void t_table_zero_key_and_bad_size(void)
{
    card_table t;
    TH_ASSERT_EQ_INT(card_table_init(&t, 100), SW_EINVAL);
    TH_ASSERT_EQ_INT(card_table_init(&t, 8), SW_EINVAL);
    TH_ASSERT_EQ_INT(card_table_init(&t, 32), 0);
    TH_ASSERT_EQ_INT(card_table_insert(&t, 0, 1), 0);
    TH_ASSERT(card_table_find(&t, 0) >= 0);
    TH_ASSERT_EQ_INT(card_table_remove(&t, 0), 0);
    TH_ASSERT_EQ_INT(t.used, 0);
    card_table_destroy(&t);
}

static void t_table_expire(void)
{
    card_table t;
    TH_ASSERT_EQ_INT(card_table_init(&t, 16), 0);
    /* cluster crossing the end: homes 14, 14, 14, 15 at 14, 15, 0, 1 */
    TH_ASSERT_EQ_INT(card_table_insert(&t, 14, 0), 0);
    TH_ASSERT_EQ_INT(card_table_insert(&t, 30, 5 * SEC), 0);
    TH_ASSERT_EQ_INT(card_table_insert(&t, 46, 0), 0);
    TH_ASSERT_EQ_INT(card_table_insert(&t, 31, 0), 0);
    TH_ASSERT_EQ_INT(card_table_insert(&t, 3, 5 * SEC), 0);
    /* a budget of 4 slots only looks at 0..3 */
    TH_ASSERT_EQ_INT(card_table_expire(&t, 6 * SEC, 2 * SEC, 4), 2);
    TH_ASSERT_EQ_INT(t.used, 3);
    TH_ASSERT_EQ_INT(card_table_expire(&t, 6 * SEC, 2 * SEC, 16), 1);
    TH_ASSERT_EQ_INT(t.used, 2);
    TH_ASSERT(card_table_find(&t, 30) >= 0 && card_table_find(&t, 3) >= 0);
    TH_ASSERT_EQ_INT(card_table_expire(&t, 6 * SEC, 0, 16), 0);
    TH_ASSERT_EQ_INT(card_table_expire(&t, 60 * SEC, 2 * SEC, 1000), 2);
    TH_ASSERT_EQ_INT(t.used, 0);
    card_table_destroy(&t);
}

/* Random inserts/removes against a plain list: the table agrees. */
static void t_table_model(void)
{
    card_table t;
    TH_ASSERT_EQ_INT(card_table_init(&t, 64), 0);
    uint64_t present[64];
    size_t n = 0;
    uint64_t s = 88172645463325252ULL;
    for (int step = 0; step < 20000; step++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        uint64_t key = (s % 200) + 1;
        size_t at = n;
        for (size_t i = 0; i < n; i++) if (present[i] == key) at = i;
        if (s & 0x100000) {
            int rc = card_table_insert(&t, key, 0);
            if (at < n) TH_ASSERT_EQ_INT(rc, 1);
            else if (n == 64) TH_ASSERT_EQ_INT(rc, SW_EFULL);
            else { TH_ASSERT_EQ_INT(rc, 0); present[n++] = key; }
        } else {
            int rc = card_table_remove(&t, key);
            TH_ASSERT_EQ_INT(rc, at < n ? 0 : SW_ENOTFOUND);
            if (at < n) present[at] = present[--n];
        }
        TH_ASSERT_EQ_INT(t.used, n);
    }
    for (size_t i = 0; i < n; i++) TH_ASSERT(card_table_find(&t, present[i]) >= 0);
    card_table_destroy(&t);
}

/* ---- keys ---- */

static void free_kvs(card_kv **a, size_t n)
{
    for (size_t i = 0; i < n; i++) protobuf_c_message_free_unpacked(&a[i]->base, NULL);
    free(a);
}

static uint64_t key_of(const char *spec)
{
    const card_kv *scratch[CARD_MAX_ATTRS];
    size_t n;
    card_kv **a = attrs_from(spec, &n);
    uint64_t h = card_hash_attrs(card_metric_prefix(1, "m"), a, n, scratch);
    free_kvs(a, n);
    return h;
}

static void t_key_order_and_encoding(void)
{
    TH_ASSERT(key_of("a=1,b=2,c=3") == key_of("c=3,a=1,b=2"));
    TH_ASSERT(key_of("a=1,b=2") != key_of("a=2,b=1"));
    TH_ASSERT(key_of("ab=c") != key_of("a=bc"));
    TH_ASSERT(key_of("a=b,c=d") != key_of("a=bc,=d"));
    TH_ASSERT(key_of("") != key_of("a="));
    /* the metric name and the resource are part of the key */
    const card_kv *scratch[CARD_MAX_ATTRS];
    TH_ASSERT(card_hash_attrs(card_metric_prefix(1, "m"), NULL, 0, scratch) !=
              card_hash_attrs(card_metric_prefix(1, "n"), NULL, 0, scratch));
    TH_ASSERT(card_metric_prefix(1, "m") != card_metric_prefix(2, "m"));
    /* type tags: "1" (string) differs from 1 (int) and true (bool) */
    card_kv *kv = kv_new("a", "1");
    uint64_t hs = card_hash_kv(CARD_FNV_OFFSET, kv);
    free(kv->value->string_value);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    kv->value->int_value = 1;
    uint64_t hi = card_hash_kv(CARD_FNV_OFFSET, kv);
    kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    kv->value->bool_value = 1;
    uint64_t hb = card_hash_kv(CARD_FNV_OFFSET, kv);
    TH_ASSERT(hs != hi && hi != hb && hs != hb);
    protobuf_c_message_free_unpacked(&kv->base, NULL);
}

/* More attributes than the scratch holds: still order-independent. */
static void t_key_many_attrs(void)
{
    char spec[4096] = "", rev[4096] = "", one[32];
    for (int i = 0; i < CARD_MAX_ATTRS + 6; i++) {
        snprintf(one, sizeof one, "%sk%d=v%d", i ? "," : "", i, i);
        strcat(spec, one);
        int j = CARD_MAX_ATTRS + 5 - i;
        snprintf(one, sizeof one, "%sk%d=v%d", i ? "," : "", j, j);
        strcat(rev, one);
    }
    TH_ASSERT(key_of(spec) == key_of(rev));
    TH_ASSERT(key_of(spec) != key_of("k0=v0"));
}

/* Through card_process: the same series in another attribute order is
 * an existing series. */
static void t_process_attr_order(void)
{
    card *c = card_small(1024, 0);
    req_t *r = req_new("svc");
    card_metric *m = add_sum(r, "m");
    add_point(m, "a=1,b=2,c=3", 1);
    size_t len;
    uint8_t *pb = req_pack(r, &len);
    card_result res;
    run(c, pb, len, 0, &res);
    TH_ASSERT_EQ_INT(res.unchanged, 1);
    TH_ASSERT_EQ_INT(c->t.used, 1);
    card_result_destroy(&res);
    free(pb);
    r = req_new("svc");
    m = add_sum(r, "m");
    add_point(m, "c=3,b=2,a=1", 1);
    pb = req_pack(r, &len);
    run(c, pb, len, 0, &res);
    TH_ASSERT_EQ_INT(c->t.used, 1);
    card_result_destroy(&res);
    free(pb);
    card_free(c);
}

/* ---- policy bands (max_keys 1024: admit below 768, drop from 922) ---- */

static void t_band_admit(void)
{
    card *c = card_small(1024, 0);
    TH_ASSERT_EQ_INT(c->agg_limit, 768);
    TH_ASSERT_EQ_INT(c->drop_limit, 922);
    fill_to(c, 757); /* 74 % */
    size_t len;
    uint8_t *pb = req_ids("m", 0, 10, 4, &len);
    card_result res;
    run(c, pb, len, 0, &res);
    TH_ASSERT_EQ_INT(res.unchanged, 1);
    TH_ASSERT_EQ_INT(res.points_out, 10);
    TH_ASSERT_EQ_INT(res.rejected_points + res.aggregated_points, 0);
    TH_ASSERT_EQ_INT(c->t.used, 767);
    card_result_destroy(&res);
    /* 11 more: one admitted (768), ten aggregated onto hosts h1..h0 */
    free(pb);
    pb = req_ids("m", 10, 11, 4, &len);
    run(c, pb, len, 0, &res);
    TH_ASSERT_EQ_INT(res.unchanged, 0);
    TH_ASSERT_EQ_INT(res.rejected_points, 0);
    TH_ASSERT_EQ_INT(res.aggregated_points, 10);
    card_result_destroy(&res);
    free(pb);
    card_free(c);
}

/* Lists the points of an encoded request as "name|k=v,...|value" lines. */
static void dump(const uint8_t *pb, size_t len, char *out, size_t cap)
{
    req_t *r = (req_t *)protobuf_c_message_unpack(
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        NULL, len, pb);
    if (!r) abort();
    size_t w = 0;
    out[0] = 0;
    for (size_t i = 0; i < r->n_resource_metrics; i++)
        for (size_t j = 0; j < r->resource_metrics[i]->n_scope_metrics; j++) {
            scope_t *sm = r->resource_metrics[i]->scope_metrics[j];
            for (size_t k = 0; k < sm->n_metrics; k++) {
                card_metric *m = sm->metrics[k];
                for (size_t p = 0; p < m->sum->n_data_points; p++) {
                    num_pt *pt = m->sum->data_points[p];
                    w += (size_t)snprintf(out + w, cap - w, "%s|", m->name);
                    for (size_t a = 0; a < pt->n_attributes; a++) {
                        card_any *v = pt->attributes[a]->value;
                        int b = v->value_case == OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
                        w += (size_t)snprintf(out + w, cap - w, "%s%s=%s", a ? "," : "",
                                              pt->attributes[a]->key,
                                              b ? (v->bool_value ? "true" : "false") : v->string_value);
                    }
                    w += (size_t)snprintf(out + w, cap - w, "|%lld\n", (long long)pt->as_int);
                }
            }
        }
    protobuf_c_message_free_unpacked(&r->base, NULL);
}

static void t_band_aggregate(void)
{
    card *c = card_small(1024, 0);
    size_t len;
    uint8_t *pb = req_ids("m", 0, 700, 4, &len); /* learn: id volatile, host 4 values */
    card_result res;
    run(c, pb, len, 0, &res);
    TH_ASSERT_EQ_INT(res.unchanged, 1);
    card_result_destroy(&res);
    free(pb);
    fill_to(c, 820); /* 80 % */
    pb = req_ids("m", 5000, 100, 4, &len);
    run(c, pb, len, 0, &res);
    TH_ASSERT_EQ_INT(res.unchanged, 0);
    TH_ASSERT_EQ_INT(res.points_in, 100);
    TH_ASSERT_EQ_INT(res.rejected_points, 0);
    TH_ASSERT_EQ_INT(res.aggregated_points, 100);
    TH_ASSERT_EQ_INT(res.merged_points, 96);
    TH_ASSERT_EQ_INT(res.points_out, 4);
    TH_ASSERT_EQ_INT(c->t.used, 824);
    TH_ASSERT_EQ_STR(res.message, "");
    char text[1024];
    dump(res.out.data, res.out.len, text, sizeof text);
    TH_ASSERT_EQ_STR(text, "m|host=h0,otel.cardinality.aggregated=true|25\n"
                           "m|host=h1,otel.cardinality.aggregated=true|25\n"
                           "m|host=h2,otel.cardinality.aggregated=true|25\n"
                           "m|host=h3,otel.cardinality.aggregated=true|25\n");
    card_result_destroy(&res);
    free(pb);
    /* the next flood maps onto the same four reduced series */
    pb = req_ids("m", 9000, 8, 4, &len);
    run(c, pb, len, 0, &res);
    TH_ASSERT_EQ_INT(res.aggregated_points, 8);
    TH_ASSERT_EQ_INT(res.points_out, 4);
    TH_ASSERT_EQ_INT(c->t.used, 824);
    card_result_destroy(&res);
    free(pb);
    card_free(c);
}

static void t_band_drop(void)
{
    sw_metrics *mt = metrics_new();
    TH_ASSERT(mt != NULL);
    card_config cfg;
    card_config_default(&cfg);
    cfg.max_keys = 1024;
    card *c = card_new(&cfg, mt);
    TH_ASSERT(c != NULL);
    TH_ASSERT_EQ_INT(atomic_load(&card_metrics_get(mt)->cl_max_keys), 1024); /* the alerts' denominator */
    size_t len;
    uint8_t *pb = req_ids("m", 0, 10, 4, &len); /* ten existing series */
    card_result res;
    run(c, pb, len, 0, &res);
    card_result_destroy(&res);
    free(pb);
    fill_to(c, 973); /* 95 % */
    req_t *r = req_new("svc");
    card_metric *m = add_sum(r, "m");
    char spec[64];
    for (int i = 0; i < 110; i++) {
        int id = i < 10 ? i : 1000 + i;
        snprintf(spec, sizeof spec, "host=h%d,id=%d", id % 4, id);
        add_point(m, spec, 1);
    }
    pb = req_pack(r, &len);
    run(c, pb, len, 0, &res);
    TH_ASSERT_EQ_INT(res.unchanged, 0);
    TH_ASSERT_EQ_INT(res.rejected_points, 100);
    TH_ASSERT_EQ_INT(res.points_out, 10);
    TH_ASSERT_EQ_INT(res.aggregated_points, 0);
    TH_ASSERT(strstr(res.message, "100 data points") != NULL);
    TH_ASSERT_EQ_INT(c->t.used, 973);
    TH_ASSERT_EQ_INT(atomic_load(&card_metrics_get(mt)->cl_dropped_samples), 100);
    TH_ASSERT_EQ_INT(atomic_load(&card_metrics_get(mt)->cl_keys_used), 973);
    uint64_t observed = 0;
    for (int b = 0; b <= CARD_LAT_BUCKETS; b++)
        observed += atomic_load(&card_metrics_get(mt)->cl_proc.buckets[b]);
    TH_ASSERT(observed >= 1); /* every processed request is timed */
    card_result_destroy(&res);
    free(pb);
    /* every point dropped: the metric, scope and resource go too */
    pb = req_ids("m", 50000, 5, 4, &len);
    run(c, pb, len, 0, &res);
    TH_ASSERT_EQ_INT(res.rejected_points, 5);
    TH_ASSERT_EQ_INT(res.points_out, 0);
    TH_ASSERT_EQ_INT(res.out.len, 0);
    card_result_destroy(&res);
    free(pb);
    card_free(c);
    metrics_free(mt);
}

/* An unknown group field (which protobuf-c refuses) does not let a request
 * pass the limiter unchecked: drops happen as without it. */
static void t_unknown_group_still_limited(void)
{
    card_config cfg;
    card_config_default(&cfg);
    cfg.max_keys = 1024;
    card *c = card_new(&cfg, NULL);
    TH_ASSERT(c != NULL);
    fill_to(c, 973); /* 95 %: new series are dropped */
    size_t len;
    uint8_t *pb = req_ids("m", 70000, 5, 4, &len);
    uint8_t *g = malloc(len + 2);
    TH_ASSERT(g != NULL);
    memcpy(g, pb, len);
    g[len] = 0x1b; /* field 3: start group */
    g[len + 1] = 0x1c; /* end group */
    card_result res;
    run(c, g, len + 2, 0, &res);
    TH_ASSERT_EQ_INT(res.unchanged, 0);
    TH_ASSERT_EQ_INT(res.rejected_points, 5);
    card_result_destroy(&res);
    free(g);
    free(pb);
    card_free(c);
}

/* 100 % fill with both thresholds at 1: new series are dropped, nothing
 * loops, the table does not grow. */
static void t_full_table_process(void)
{
    card_config cfg;
    card_config_default(&cfg);
    cfg.max_keys = 16;
    cfg.aggregate_threshold = 1;
    cfg.drop_threshold = 1;
    card *c = card_new(&cfg, NULL);
    TH_ASSERT(c != NULL);
    size_t len;
    uint8_t *pb = req_ids("m", 0, 40, 4, &len);
    card_result res;
    run(c, pb, len, 0, &res);
    TH_ASSERT_EQ_INT(c->t.used, 16);
    TH_ASSERT_EQ_INT(res.rejected_points, 24);
    TH_ASSERT_EQ_INT(res.points_out, 16);
    card_result_destroy(&res);
    free(pb);
    pb = req_ids("m", 0, 40, 4, &len);
    run(c, pb, len, 0, &res);
    TH_ASSERT_EQ_INT(res.rejected_points, 24);
    TH_ASSERT_EQ_INT(c->t.used, 16);
    card_result_destroy(&res);
    free(pb);
    card_free(c);
}

/* ---- key_ttl ---- */

static void t_ttl_frees_slots(void)
{
    card *c = card_small(1024, 10 * SEC);
    size_t len, klen;
    uint8_t *pb = req_ids("m", 0, 100, 4, &len);
    uint8_t *keep = req_ids("m", 0, 10, 4, &klen); /* the first ten series */
    card_result res;
    run(c, pb, len, 0, &res);
    card_result_destroy(&res);
    TH_ASSERT_EQ_INT(c->t.used, 100);
    run(c, keep, klen, 8 * SEC, &res); /* refreshes ten */
    card_result_destroy(&res);
    uint8_t *empty = NULL;
    for (int i = 0; i < 2 * (1024 / 64); i++) { /* each removal uses a step */
        TH_ASSERT_EQ_INT(card_process(c, empty, 0, 15 * SEC, &res), 0);
        card_result_destroy(&res);
    }
    TH_ASSERT_EQ_INT(c->t.used, 10);
    card_stats st;
    card_get_stats(c, &st);
    TH_ASSERT_EQ_INT(st.expired, 90);
    for (int i = 0; i < 2 * (1024 / 64); i++) { /* each removal uses a step */
        TH_ASSERT_EQ_INT(card_process(c, empty, 0, 30 * SEC, &res), 0);
        card_result_destroy(&res);
    }
    TH_ASSERT_EQ_INT(c->t.used, 0);
    free(pb);
    free(keep);
    card_free(c);
}

static void t_config_and_errors(void)
{
    card_config cfg;
    card_config_default(&cfg);
    TH_ASSERT_EQ_INT(cfg.max_keys, 65536);
    cfg.max_keys = 1000;
    TH_ASSERT(card_new(&cfg, NULL) == NULL);
    card_config_default(&cfg);
    cfg.aggregate_threshold = 0.95;
    TH_ASSERT(card_new(&cfg, NULL) == NULL);
    card_config_default(&cfg);
    cfg.drop_threshold = 1.5;
    TH_ASSERT(card_new(&cfg, NULL) == NULL);
    TH_ASSERT(card_new(NULL, NULL) == NULL);
    card_free(NULL);
    card_result_destroy(NULL);
    card *c = card_small(64, 0);
    card_result res;
    const uint8_t junk[] = {0x0a, 0x05, 0x01};
    TH_ASSERT_EQ_INT(card_process(c, junk, sizeof junk, 0, &res), SW_EDECODE);
    card_result_destroy(&res);
    card_stats st;
    card_get_stats(c, &st);
    TH_ASSERT_EQ_INT(st.table_bytes, 64 * sizeof(card_slot));
    card_free(c);
}

/* card_reconfigure: at 95 % fill new series are dropped; raised to a drop
 * threshold of 1.0 they are admitted; invalid limits change nothing. */
static void t_reconfigure_thresholds(void)
{
    card_config cfg;
    card_config_default(&cfg);
    cfg.max_keys = 1024;
    card *c = card_new(&cfg, NULL);
    TH_ASSERT(c != NULL);
    fill_to(c, 973); /* 95 % */
    size_t len;
    card_result res;
    uint8_t *pb = req_ids("m", 0, 5, 4, &len);
    run(c, pb, len, 0, &res);
    TH_ASSERT_EQ_INT(res.rejected_points, 5);
    card_result_destroy(&res);
    TH_ASSERT_EQ_INT(card_reconfigure(c, 0.9, 0.8, 0), SW_EINVAL);
    TH_ASSERT_EQ_INT(card_reconfigure(c, 0.5, 1.5, 0), SW_EINVAL);
    TH_ASSERT_EQ_INT(card_reconfigure(c, 0.5, 0.9, -1), SW_EINVAL);
    run(c, pb, len, 0, &res); /* unchanged limits: still dropped */
    TH_ASSERT_EQ_INT(res.rejected_points, 5);
    card_result_destroy(&res);
    TH_ASSERT_EQ_INT(card_reconfigure(c, 0.97, 1.0, 0), 0);
    run(c, pb, len, 0, &res); /* below the new aggregate threshold: admitted as they are */
    TH_ASSERT_EQ_INT(res.rejected_points, 0);
    TH_ASSERT_EQ_INT(res.points_out, 5);
    TH_ASSERT_EQ_INT(res.aggregated_points, 0);
    TH_ASSERT_EQ_INT(c->t.used, 978);
    card_result_destroy(&res);
    free(pb);
    card_free(c);
}

int main(void)
{
    TH_RUN(t_fnv_vectors);
    TH_RUN(t_table_cluster);
    TH_RUN(t_table_wrap);
    TH_RUN(t_table_full);
    TH_RUN(t_table_zero_key_and_bad_size);
    TH_RUN(t_table_expire);
    TH_RUN(t_table_model);
    TH_RUN(t_key_order_and_encoding);
    TH_RUN(t_key_many_attrs);
    TH_RUN(t_process_attr_order);
    TH_RUN(t_band_admit);
    TH_RUN(t_band_aggregate);
    TH_RUN(t_band_drop);
    TH_RUN(t_unknown_group_still_limited);
    TH_RUN(t_full_table_process);
    TH_RUN(t_ttl_frees_slots);
    TH_RUN(t_config_and_errors);
    TH_RUN(t_reconfigure_thresholds);
    return th_done();
}
