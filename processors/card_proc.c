/* card_proc.c — lifecycle of the cardinality limiter and card_process().
 *
 * card_process() first walks the encoded request (card_wire.c): when every
 * point belongs to a known series or is admitted as is, that is all, and
 * the caller forwards its original bytes. Otherwise it unpacks the request
 * into the arena, runs the policy over every metric (card_policy.c), and
 * re-encodes it when a point was dropped or rewritten.
 * Metrics emptied by the limiter are removed, and so are scopes and
 * resources emptied that way. Then it advances the key_ttl expiry walk by
 * a budget proportional to the request and records the time it took.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "processors/card_int.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/otlp_wire.h"

typedef Opentelemetry__Proto__Collector__Metrics__V1__ExportMetricsServiceRequest req_t;
typedef Opentelemetry__Proto__Metrics__V1__ResourceMetrics res_t;
typedef Opentelemetry__Proto__Metrics__V1__ScopeMetrics scope_t;

#define ARENA_KEEP (8u << 20)     /* decode memory kept between requests */
#define EXPIRE_BASE 64u           /* expiry walk: slots per request ... */
#define EXPIRE_PER_POINT 2u       /* ... plus per data point */

const int64_t card_latency_bounds_ns[CARD_LAT_BUCKETS] = {
    10000, 25000, 50000, 100000, 250000, 500000,
    1000000, 2500000, 5000000, 10000000, 25000000, 100000000};

int card_config_default(card_config *out)
{
    cfg *c = cfg_defaults();
    memset(out, 0, sizeof *out);
    if (!c) return SW_ENOMEM;
    out->max_keys = c->cardinality.max_keys;
    out->aggregate_threshold = c->cardinality.aggregate_threshold;
    out->drop_threshold = c->cardinality.drop_threshold;
    out->key_ttl_ns = (int64_t)c->cardinality.key_ttl_ms * 1000000;
    cfg_free(c);
    return 0;
}

static int config_ok(const card_config *cc)
{
    if (cc->max_keys < 16 || (cc->max_keys & (cc->max_keys - 1)) != 0) return 0;
    if (!(cc->aggregate_threshold > 0) || !(cc->drop_threshold <= 1)) return 0;
    if (cc->aggregate_threshold > cc->drop_threshold) return 0;
    return cc->key_ttl_ns >= 0;
}

/* Smallest number of used slots u with u / max >= ratio. */
static uint32_t limit_of(double ratio, uint32_t max)
{
    double u = ceil(ratio * (double)max - 1e-9);
    if (u < 0) u = 0;
    if (u > max) u = max;
    return (uint32_t)u;
}

static void init_limits(card *c)
{
    c->agg_limit = limit_of(c->cfg.aggregate_threshold, c->cfg.max_keys);
    c->drop_limit = limit_of(c->cfg.drop_threshold, c->cfg.max_keys);
    double v = c->cfg.volatile_distinct;
    if (v == 0) {
        v = (c->drop_limit - c->agg_limit) / 16.0;
        if (v < 16) v = 16;
    }
    c->volatile_n = v;
    Opentelemetry__Proto__Common__V1__KeyValue kv = OPENTELEMETRY__PROTO__COMMON__V1__KEY_VALUE__INIT;
    Opentelemetry__Proto__Common__V1__AnyValue av = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__INIT;
    c->marker = kv;
    c->marker_val = av;
    c->marker.key = (char *)CARD_MARKER_KEY;
    c->marker.value = &c->marker_val;
    c->marker_val.value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
    c->marker_val.bool_value = 1;
}

card *card_new(const card_config *cc, sw_metrics *m)
{
    if (!cc || !config_ok(cc)) return NULL;
    card *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cfg = *cc;
    c->m = card_metrics_get(m);
    if (m && !c->m) goto fail;
    card_arena_init(&c->arena, ARENA_KEEP);
    if (card_table_init(&c->t, cc->max_keys) != 0) goto fail;
    if (card_sketches_init(&c->sk) != 0) goto fail;
    init_limits(c);
    if (c->m) metrics_gauge_set(&c->m->cl_max_keys, (int64_t)cc->max_keys);
    return c;
fail:
    card_free(c);
    return NULL;
}

int card_reconfigure(card *c, double aggregate_threshold, double drop_threshold,
                     int64_t key_ttl_ns)
{
    card_config next = c->cfg;
    next.aggregate_threshold = aggregate_threshold;
    next.drop_threshold = drop_threshold;
    next.key_ttl_ns = key_ttl_ns;
    if (!config_ok(&next)) return SW_EINVAL;
    c->cfg = next;
    init_limits(c);
    return 0;
}

void card_free(card *c)
{
    if (!c) return;
    card_arena_destroy(&c->arena);
    card_sketches_destroy(&c->sk);
    card_table_destroy(&c->t);
    free(c);
}

static void result_init(card_result *out)
{
    memset(out, 0, sizeof *out);
    buf_init(&out->out, SIZE_MAX / 2);
}

void card_result_destroy(card_result *r)
{
    if (!r) return;
    buf_destroy(&r->out);
    memset(r, 0, sizeof *r);
}

/* Runs one scope's metrics; drops metrics the limiter emptied. */
static int run_scope(card *c, card_req *rq, scope_t *sm, uint64_t rh)
{
    size_t w = 0;
    for (size_t k = 0; k < sm->n_metrics; k++) {
        card_metric *m = sm->metrics[k];
        size_t *np = NULL;
        size_t before = card_points(m, &np) ? *np : 0;
        int rc = card_policy_metric(c, rq, m, rh);
        if (rc != 0) return rc;
        if (before && *np == 0) continue;
        sm->metrics[w++] = m;
    }
    sm->n_metrics = w;
    return 0;
}

static int run_request(card *c, card_req *rq, req_t *req)
{
    size_t wr = 0;
    for (size_t i = 0; i < req->n_resource_metrics; i++) {
        res_t *rm = req->resource_metrics[i];
        uint64_t rh = card_resource_hash(rm->resource, c->sorted);
        size_t ws = 0;
        for (size_t j = 0; j < rm->n_scope_metrics; j++) {
            scope_t *sm = rm->scope_metrics[j];
            size_t before = sm->n_metrics;
            int rc = run_scope(c, rq, sm, rh);
            if (rc != 0) return rc;
            if (before && sm->n_metrics == 0) continue;
            rm->scope_metrics[ws++] = sm;
        }
        size_t before = rm->n_scope_metrics;
        rm->n_scope_metrics = ws;
        if (before && ws == 0) continue;
        req->resource_metrics[wr++] = rm;
    }
    req->n_resource_metrics = wr;
    return 0;
}

static int encode(const req_t *req, buf *out)
{
    size_t n = protobuf_c_message_get_packed_size(&req->base);
    int rc = buf_reserve(out, n ? n : 1);
    if (rc != 0) return rc;
    out->len = protobuf_c_message_pack(&req->base, out->data);
    return 0;
}

static void account(card *c, const card_req *rq, card_result *out, int64_t took)
{
    out->points_in = (uint32_t)rq->points_in;
    out->rejected_points = rq->dropped;
    out->aggregated_points = rq->aggregated;
    out->merged_points = rq->merged;
    out->points_out = (uint32_t)(rq->points_in - rq->dropped - rq->merged);
    if (rq->dropped)
        snprintf(out->message, sizeof out->message,
                 "cardinality limit: %llu data points of new series dropped (%u of %u series in use)",
                 (unsigned long long)rq->dropped, c->t.used, c->cfg.max_keys);
    c->st.aggregated += rq->aggregated;
    c->st.dropped += rq->dropped;
    c->st.requests++;
    int b = 0;
    while (b < CARD_LAT_BUCKETS && took > card_latency_bounds_ns[b]) b++;
    c->st.lat_buckets[b]++;
    c->st.lat_sum_ns += (uint64_t)took;
    if (!c->m) return;
    metrics_hist_observe(&c->m->cl_proc, took);
    metrics_gauge_set(&c->m->cl_keys_used, c->t.used);
    if (rq->aggregated) metrics_add(&c->m->cl_aggregated_samples, rq->aggregated);
    if (rq->dropped) metrics_add(&c->m->cl_dropped_samples, rq->dropped);
}

int card_process(card *c, const uint8_t *pb, size_t len, int64_t now_ns, card_result *out)
{
    int64_t t0 = clock_mono_ns();
    result_init(out);
    card_req rq = {.now_ns = now_ns};
    int rc = SW_EDECODE;
    req_t *req = NULL;
    buf plain; /* the request without unknown groups, which protobuf-c refuses */
    buf_init(&plain, len + 5 * OW_MAX_DEPTH);
    if (!c->slow_only && card_wire_run(c, &rq, pb, len) == 0) {
        rc = 0;
        goto passed;
    }
    memset(&rq, 0, sizeof rq);
    rq.now_ns = now_ns;
    req = (req_t *)protobuf_c_message_unpack(
        &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
        &c->arena.pa, len, pb);
    if (!req && ow_strip_groups(SIG_METRICS, pb, len, &plain) == 0)
        req = (req_t *)protobuf_c_message_unpack(
            &opentelemetry__proto__collector__metrics__v1__export_metrics_service_request__descriptor,
            &c->arena.pa, plain.len, plain.data);
    if (!req) goto done;
    rc = run_request(c, &rq, req);
    if (rc != 0) goto done;
    if (rq.changed) rc = encode(req, &out->out);
    if (rc != 0) goto done;
passed:
    out->unchanged = !rq.changed;
    uint64_t budget = EXPIRE_BASE + EXPIRE_PER_POINT * rq.points_in;
    c->st.expired += card_table_expire(&c->t, now_ns, c->cfg.key_ttl_ns,
                                       budget > UINT32_MAX ? UINT32_MAX : (uint32_t)budget);
    account(c, &rq, out, clock_mono_ns() - t0);
done:
    buf_destroy(&plain);
    card_arena_reset(&c->arena);
    if (rc != 0) buf_reset(&out->out);
    return rc;
}

void card_get_stats(const card *c, card_stats *st)
{
    *st = c->st;
    st->keys_used = c->t.used;
    st->max_keys = c->cfg.max_keys;
    st->table_bytes = (size_t)c->cfg.max_keys * sizeof(card_slot);
    st->sketch_bytes = CARD_SK_METRICS * sizeof(card_metric_sk);
    st->scratch_bytes = c->arena.held + sizeof *c;
}
