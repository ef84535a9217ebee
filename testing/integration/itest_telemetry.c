/* itest_telemetry.c — the self-telemetry server: /metrics exposes the
 * receiver, exporter, queue and process families and they move with
 * traffic; /healthz and /readyz answer. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

static const char *const families[] = {
    "spillway_receiver_requests_total",     "spillway_receiver_items_total",
    "spillway_receiver_refused_items_total", "spillway_exporter_requests_total",
    "spillway_exporter_items_total",         "spillway_exporter_retries_total",
    "spillway_exporter_circuit_state",       "spillway_pipeline_latency_seconds",
    "process_resident_memory_bytes",         "process_cpu_seconds_total",
    "spillway_queue_fill_ratio",
};

static th_stack *start(void)
{
    th_stack *s = th_stack_start(NULL);
    TH_ASSERT_MSG(s, "stack did not start");
    return s;
}

static void t_families_present(void)
{
    th_stack *s = start();
    const char *text = th_stack_metrics(s);
    TH_ASSERT_MSG(text, "GET /metrics failed");
    for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
        TH_ASSERT_MSG(th_prom_has_family(text, families[i]), "/metrics lacks %s", families[i]);
    int found = 0;
    double rss = th_prom_sum(text, "process_resident_memory_bytes", NULL, &found);
    TH_ASSERT_MSG(found == 1 && rss > 0, "process_resident_memory_bytes = %g", rss);
}

static double get(th_stack *s, const char *name, const char *labels)
{
    const char *text = th_stack_metrics(s);
    TH_ASSERT_MSG(text, "GET /metrics failed");
    return th_prom_sum(text, name, labels, NULL);
}

/* After 2 trace requests (5 + 7 spans) and one bad one, the counters show
 * them, and the exporter counts the spans it delivered. */
static void t_counters_move(void)
{
    char why[1024];
    th_stack *s = start();
    th_http *c = th_stack_client(s);
    th_expect *e = th_expect_new();
    TH_ASSERT(c && e);
    double req0 = get(s, "spillway_receiver_requests_total", "signal=\"traces\",code=\"200\"");
    double lat0 = get(s, "spillway_pipeline_latency_seconds_count", NULL);
    for (int k = 0; k < 2; k++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, 70 + (uint32_t)k, 5 + 2 * (size_t)k);
        TH_ASSERT(d);
        const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
        TH_ASSERT_MSG(th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof(why)) == 0,
                      "%s", why);
        TH_ASSERT(th_expect_add(e, d) == 0);
    }
    const th_resp *r = th_http_request(c, "POST", "/v1/traces",
                                       "Content-Type: application/x-protobuf\r\n", "\xff\xff", 2);
    TH_ASSERT(r && r->status == 400);
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, 5000, why, sizeof(why)) == 0,
                  "%s", why);
    double req = get(s, "spillway_receiver_requests_total", "signal=\"traces\",code=\"200\"");
    double bad = get(s, "spillway_receiver_requests_total", "signal=\"traces\",code=\"400\"");
    double items = get(s, "spillway_receiver_items_total", "signal=\"traces\"");
    TH_ASSERT_MSG(req - req0 == 2, "requests{code=200} moved by %g, want 2", req - req0);
    TH_ASSERT_MSG(bad == 1, "requests{code=400} = %g, want 1", bad);
    TH_ASSERT_MSG(items == 12, "receiver items{traces} = %g, want 12", items);
    /* The exporter may count just after the upstream answered: poll. */
    double sent = 0, ereq = 0, lat = 0;
    for (int64_t until = th_now_ms() + 3000; th_now_ms() < until; th_nap_ms(10)) {
        sent = get(s, "spillway_exporter_items_total", "signal=\"traces\"");
        ereq = get(s, "spillway_exporter_requests_total", "signal=\"traces\"");
        lat = get(s, "spillway_pipeline_latency_seconds_count", NULL);
        if (sent >= 12 && ereq >= 1 && lat > lat0) break;
    }
    TH_ASSERT_MSG(sent == 12, "exporter items{traces} = %g, want 12", sent);
    TH_ASSERT_MSG(ereq >= 1, "exporter requests{traces} = %g", ereq);
    TH_ASSERT_MSG(lat > lat0, "pipeline latency histogram count did not move (%g)", lat);
    TH_ASSERT_EQ_INT(get(s, "spillway_exporter_circuit_state", NULL), 0);
}

static void t_healthz_readyz(void)
{
    th_stack *s = start();
    const th_resp *r = th_stack_telemetry(s, "/healthz");
    TH_ASSERT_MSG(r, "GET /healthz failed");
    TH_ASSERT_EQ_INT(r->status, 200);
    r = th_stack_telemetry(s, "/readyz");
    TH_ASSERT_MSG(r, "GET /readyz failed");
    TH_ASSERT_MSG(r->status == 200, "/readyz %d: %.200s", r->status, (const char *)r->body);
    json_object *root = json_tokener_parse((const char *)r->body), *comp;
    int ok = root && json_object_object_get_ex(root, "components", &comp) &&
             json_object_is_type(comp, json_type_object) && json_object_object_length(comp) > 0;
    json_object_put(root);
    TH_ASSERT_MSG(ok, "/readyz body lacks a non-empty \"components\" object: %.200s",
                  (const char *)r->body);
    r = th_stack_telemetry(s, "/nope");
    TH_ASSERT(r && r->status == 404);
}

int main(void)
{
    TH_ICASE(t_families_present);
    TH_ICASE(t_counters_move);
    TH_ICASE(t_healthz_readyz);
    return th_done();
}
