/* itest_priority.c — priority classes through the real binaries: with the
 * upstream slowed and one request in flight, equal volumes of critical,
 * high and normal traces leave the queue 5:3:1 while all three are
 * backlogged, FIFO within a class, and spillway_queue_dequeued_total
 * agrees; a request with resources in two classes is split and arrives
 * whole; a single-class request passes as its original bytes; a
 * span_status rule raises a resource with an ERROR span to critical. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define DEADLINE_MS 10000
#define DRAIN_MS 60000

/* Requests per class in the ratio case, spans per request, and the seeds
 * (span names "span-<seed>-<i>" tell the class: seed / 1000). */
#define PER_CLASS 150
#define SPANS 2
#define SEED_CRIT 1000
#define SEED_HIGH 2000
#define SEED_NORM 3000
#define SEED_PLUG 9000
#define PLUG2_SPANS 40

static const char *const class_names[3] = {"critical", "high", "normal"};

static const char rules_yaml[] =
    "  priority:\n"
    "    rules:\n"
    "      - { class: critical, attribute: service.name, regex: \"^checkout\" }\n"
    "      - { class: high, attribute: service.name, regex: \"^search\" }\n";

static const char status_rules_yaml[] =
    "  priority:\n"
    "    rules:\n"
    "      - { class: critical, span_status: error }\n"
    "      - { class: critical, attribute: service.name, regex: \"^checkout\" }\n"
    "      - { class: high, attribute: service.name, regex: \"^search\" }\n";

static th_stack *start(th_stack_opts *o, const char *rules)
{
    o->processors_yaml = rules;
    th_stack *s = th_stack_start(o);
    TH_ASSERT_MSG(s, "stack did not start");
    return s;
}

static const char *metrics_text(th_stack *s)
{
    const char *text = th_stack_metrics(s);
    TH_ASSERT_MSG(text, "GET /metrics failed");
    return text;
}

/* Fills v[3] with metric `name`{class=...} for the three classes. */
static void by_class(const char *text, const char *name, double v[3])
{
    char lab[32];
    for (int k = 0; k < 3; k++) {
        int found = 0;
        snprintf(lab, sizeof(lab), "class=\"%s\"", class_names[k]);
        v[k] = th_prom_sum(text, name, lab, &found);
        TH_ASSERT_MSG(found == 1, "/metrics has %d samples of %s{%s}", found, name, lab);
    }
}

static void send_ok(th_http *c, const th_otlp *d, th_expect *e)
{
    char why[512];
    const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
    TH_ASSERT_MSG(r, "send: %s", th_http_error(c));
    TH_ASSERT_MSG(th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof(why)) == 0,
                  "seed %u: %s", d->seed, why);
    if (e) TH_ASSERT(th_expect_add(e, d) == 0);
}

static th_otlp *one_resource(const char *service, uint32_t seed, size_t spans, int status)
{
    th_res_spec r = {service, seed, spans, status};
    th_otlp *d = th_otlp_new_traces(&r, 1);
    TH_ASSERT(d);
    return d;
}

static th_mock_stats mock_stats(th_stack *s)
{
    th_mock_stats st;
    TH_ASSERT_MSG(th_stack_mock_stats(s, &st) == 0, "mock /stats did not answer");
    return st;
}

/* ---- 5:3:1 while backlogged ---- */

/* Holds the exporter: plug 1's answer waits upstream (60 s, inside the
 * exporter's 90 s request deadline; its only connection is busy) until
 * release_plug, plug 2 fills the next batch on its own, so nothing else
 * leaves the queue until then — however long filling the queue takes on a
 * busy machine. Plug 2 must have left the queue before anything else is
 * queued: the export thread takes it when it next runs, and had critical
 * or high requests been queued by then, the 5:3:1 order would have served
 * them first (seen under a sanitizer on a loaded machine). */
static void plug_exporter(th_stack *s, th_http *c, th_expect *e)
{
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/latency?ms=60000") / 100 == 2, "latency refused");
    send_ok(c, one_resource("plug", SEED_PLUG, SPANS, TH_STATUS_CYCLE), e);
    int64_t deadline = th_now_ms() + th_slow_ms(DEADLINE_MS);
    while (mock_stats(s).requests[SIG_TRACES] < 1 && th_now_ms() < deadline) th_nap_ms(5);
    TH_ASSERT_MSG(mock_stats(s).requests[SIG_TRACES] == 1, "plug 1 did not reach the upstream");
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/latency?ms=100") / 100 == 2, "latency refused");
    send_ok(c, one_resource("plug", SEED_PLUG + 1, PLUG2_SPANS, TH_STATUS_CYCLE), e);
    double d[3] = {0};
    deadline = th_now_ms() + th_slow_ms(DEADLINE_MS);
    for (;; th_nap_ms(5)) {
        by_class(metrics_text(s), "spillway_queue_dequeued_total", d);
        if (d[2] >= 2 || th_now_ms() >= deadline) break;
    }
    TH_ASSERT_MSG(d[0] == 0 && d[1] == 0 && d[2] == 2,
                  "set-up: dequeued %g/%g/%g, want the two plugs (normal) only", d[0], d[1], d[2]);
}

/* Sends PER_CLASS requests per class, interleaved, then checks they all
 * wait in the queue (plug 2 taken, plug 1 still unanswered). */
static void fill_queue(th_stack *s, th_http *c, th_expect *e)
{
    static const char *const svc[3] = {"checkout", "search", "web"};
    static const uint32_t seed0[3] = {SEED_CRIT, SEED_HIGH, SEED_NORM};
    int64_t t0 = th_now_ms();
    for (uint32_t k = 0; k < PER_CLASS; k++)
        for (int cl = 0; cl < 3; cl++) {
            th_otlp *d = one_resource(svc[cl], seed0[cl] + k, SPANS, TH_STATUS_CYCLE);
            send_ok(c, d, e);
            th_otlp_free(d);
        }
    double q[3] = {0};
    long sent_upstream = mock_stats(s).requests[SIG_TRACES];
    by_class(metrics_text(s), "spillway_queue_items", q);
    printf("# queued in %lld ms: critical %g, high %g, normal %g; upstream requests so far %ld\n",
           (long long)(th_now_ms() - t0), q[0], q[1], q[2], sent_upstream);
    TH_ASSERT_MSG(sent_upstream == 1, "set-up: the queue was not held (upstream saw %ld "
                  "requests before the data was queued)", sent_upstream);
    TH_ASSERT_MSG(q[0] == PER_CLASS && q[1] == PER_CLASS && q[2] == PER_CLASS,
                  "spillway_queue_items %g/%g/%g, want %d each", q[0], q[1], q[2], PER_CLASS);
}

/* Answers plug 1 now: the drain begins. */
static void release_plug(th_stack *s)
{
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/release") / 100 == 2, "release refused");
}

/* Checks shares of counts n[3] against 5:3:1 within ±10 %. */
static void check_531(const char *what, const double n[3])
{
    static const double want[3] = {5.0 / 9, 3.0 / 9, 1.0 / 9};
    double tot = n[0] + n[1] + n[2];
    printf("# %s: critical %g, high %g, normal %g (%.3f : %.3f : %.3f of 5:3:1)\n", what, n[0],
           n[1], n[2], tot ? 9 * n[0] / tot : 0, tot ? 9 * n[1] / tot : 0,
           tot ? 9 * n[2] / tot : 0);
    TH_ASSERT_MSG(tot > 0, "%s: nothing counted", what);
    for (int k = 0; k < 3; k++) {
        double share = n[k] / tot;
        TH_ASSERT_MSG(share >= 0.9 * want[k] && share <= 1.1 * want[k],
                      "%s: %s share %.4f outside 5:3:1 ± 10 %% (want %.4f)", what,
                      class_names[k], share, want[k]);
    }
}

/* In the middle of the drain, right after an upstream request arrived (the
 * exporter then waits 100 ms for its answer), the dequeue counters show
 * 5:3:1 while critical still has items queued. */
static void check_counters_midway(th_stack *s)
{
    long target = 2 + PLUG2_SPANS + (long)SPANS * PER_CLASS; /* ~PER_CLASS pops */
    long last = th_stack_wait_items(s, SIG_TRACES, target, DRAIN_MS);
    TH_ASSERT_MSG(last >= target, "upstream got %ld spans, want %ld", last, target);
    long reqs = mock_stats(s).requests[SIG_TRACES];
    int64_t deadline = th_now_ms() + th_slow_ms(DEADLINE_MS);
    while (mock_stats(s).requests[SIG_TRACES] == reqs && th_now_ms() < deadline) th_nap_ms(2);
    const char *text = metrics_text(s);
    double d[3], q[3];
    by_class(text, "spillway_queue_dequeued_total", d);
    by_class(text, "spillway_queue_items", q);
    d[2] -= 2; /* the plugs */
    TH_ASSERT_MSG(q[0] > 0 && q[1] > 0 && q[2] > 0,
                  "set-up: a class ran empty before the midway look (%g/%g/%g queued)", q[0],
                  q[1], q[2]);
    check_531("dequeued_total midway", d);
}

/* Class (0..2) of a content line by the seed in its span name; 3 for the
 * plugs, -1 if unknown. *k gets the request index within its class. */
static int line_class(const char *line, long *k)
{
    const char *name = strstr(line, " span-");
    if (!name) return -1;
    long seed = strtol(name + 6, NULL, 10);
    *k = seed % 1000;
    switch (seed / 1000) {
    case SEED_CRIT / 1000: return 0;
    case SEED_HIGH / 1000: return 1;
    case SEED_NORM / 1000: return 2;
    case SEED_PLUG / 1000: return 3;
    default: return -1;
    }
}

/* Walks the arrival order: FIFO within each class, every span once, and
 * the class counts of the prefix up to the last critical span (while it
 * lasts, all three classes have requests queued). */
static void check_arrival_order(th_stack *s)
{
    const char *text = th_stack_mock_get(s, "/received/traces");
    TH_ASSERT_MSG(text, "mock GET /received/traces failed");
    double n[3] = {0}, prefix[3] = {0};
    long last_k[4] = {-1, -1, -1, -1};
    const char *end_of_prefix = text;
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        long k = 0;
        int cl = line_class(line, &k);
        TH_ASSERT_MSG(cl >= 0 && strchr(line, '\n'), "unexpected line upstream: %.80s", line);
        TH_ASSERT_MSG(k >= last_k[cl], "%s request %ld arrived after request %ld",
                      cl < 3 ? class_names[cl] : "plug", k, last_k[cl]);
        last_k[cl] = k;
        if (cl == 0) end_of_prefix = line;
    }
    for (const char *line = text; *line; line = strchr(line, '\n') + 1) {
        long k = 0;
        int cl = line_class(line, &k);
        if (cl < 3) n[cl]++;
        if (cl < 3 && line <= end_of_prefix) prefix[cl]++;
    }
    for (int cl = 0; cl < 3; cl++) prefix[cl] /= SPANS; /* spans -> requests */
    check_531("arrival order until critical ran out (requests)", prefix);
    for (int cl = 0; cl < 3; cl++)
        TH_ASSERT_MSG(n[cl] == SPANS * PER_CLASS, "%s: %g spans arrived, want %d", class_names[cl],
                      n[cl], SPANS * PER_CLASS);
}

static void t_wrr_531_while_backlogged(void)
{
    char why[1024];
    th_stack_opts o = {.batch_max_bytes = "2KiB", .exporter_yaml = "    max_in_flight: 1\n",
                       .queue_max_bytes = "64MiB", .exporter_timeout = "90s"};
    th_stack *s = start(&o, rules_yaml);
    th_http *c = th_stack_client(s);
    th_expect *e = th_expect_new();
    TH_ASSERT(c && e);
    plug_exporter(s, c, e);
    fill_queue(s, c, e);
    release_plug(s);
    check_counters_midway(s);
    int64_t t0 = th_now_ms();
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, DRAIN_MS, why, sizeof(why)) == 0,
                  "%s", why);
    th_mock_stats st = mock_stats(s);
    printf("# drained in %lld ms after the midway look; %ld upstream requests\n",
           (long long)(th_now_ms() - t0), st.requests[SIG_TRACES]);
    TH_ASSERT_EQ_INT(st.items[SIG_TRACES], th_expect_items(e)); /* nothing duplicated */
    check_arrival_order(s);
    double d[3];
    by_class(metrics_text(s), "spillway_queue_dequeued_total", d);
    TH_ASSERT_EQ_INT(d[0], PER_CLASS);
    TH_ASSERT_EQ_INT(d[1], PER_CLASS);
    TH_ASSERT_EQ_INT(d[2], PER_CLASS + 2);
}

/* ---- split and pass-through ---- */

/* Waits until the mock counted `items` spans and the exporter is idle,
 * then returns the dequeue counters. */
static void settle(th_stack *s, th_expect *e, double d[3])
{
    char why[1024];
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, DEADLINE_MS, why, sizeof(why)) == 0,
                  "%s", why);
    by_class(metrics_text(s), "spillway_queue_dequeued_total", d);
}

/* Resources checkout-a, web, checkout-b: one critical item with two
 * resources and one normal item; together exactly the original bytes. */
static void t_split_two_classes(void)
{
    th_stack_opts o = {0};
    th_stack *s = start(&o, rules_yaml);
    th_http *c = th_stack_client(s);
    th_expect *e = th_expect_new();
    TH_ASSERT(c && e);
    th_res_spec res[3] = {{"checkout-a", 51, 3, TH_STATUS_CYCLE},
                          {"web", 52, 4, TH_STATUS_CYCLE},
                          {"checkout-b", 53, 2, TH_STATUS_CYCLE}};
    th_otlp *d = th_otlp_new_traces(res, 3);
    TH_ASSERT(d);
    send_ok(c, d, e);
    double q[3];
    settle(s, e, q);
    th_mock_stats st = mock_stats(s);
    printf("# split: dequeued critical %g, high %g, normal %g; upstream %ld requests, %ld "
           "spans, %ld bytes (sent %zu)\n", q[0], q[1], q[2], st.requests[SIG_TRACES],
           st.items[SIG_TRACES], st.bytes[SIG_TRACES], d->pb_len);
    TH_ASSERT_EQ_INT(q[0], 1);
    TH_ASSERT_EQ_INT(q[1], 0);
    TH_ASSERT_EQ_INT(q[2], 1);
    TH_ASSERT_EQ_INT(st.items[SIG_TRACES], 9);
    TH_ASSERT_EQ_INT(st.bytes[SIG_TRACES], d->pb_len);
}

/* Appends an explicit empty schema_url (field 3, "") to the request's only
 * ResourceSpans, a valid encoding that a re-encoder would not reproduce. */
static void add_empty_schema_url(th_otlp *d)
{
    const uint8_t *p = d->pb;
    size_t len = 0, shift = 0, pos = 1;
    TH_ASSERT(d->pb_len > 2 && p[0] == 0x0a);
    while (pos < d->pb_len && (p[pos] & 0x80)) len |= (size_t)(p[pos++] & 0x7f) << shift, shift += 7;
    TH_ASSERT(pos < d->pb_len);
    len |= (size_t)p[pos++] << shift;
    TH_ASSERT(pos + len == d->pb_len);
    size_t nlen = len + 2, out_len = 0;
    uint8_t *out = malloc(d->pb_len + 8);
    TH_ASSERT(out);
    out[out_len++] = 0x0a;
    for (size_t v = nlen; ; v >>= 7) {
        out[out_len++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
        if (v < 0x80) break;
    }
    memcpy(out + out_len, p + pos, len);
    out_len += len;
    out[out_len++] = 0x1a; /* field 3, length-delimited */
    out[out_len++] = 0x00;
    free(d->pb);
    d->pb = out;
    d->pb_len = out_len;
}

/* A single-class request goes upstream as the very bytes that came in. */
static void t_single_class_passes_bytes(void)
{
    th_stack_opts o = {0};
    th_stack *s = start(&o, rules_yaml);
    th_http *c = th_stack_client(s);
    th_expect *e = th_expect_new();
    TH_ASSERT(c && e);
    th_otlp *d = one_resource("checkout", 61, 5, TH_STATUS_CYCLE);
    add_empty_schema_url(d);
    TH_ASSERT(th_otlp_add_unknown_field(d) == 0);
    send_ok(c, d, e);
    double q[3];
    settle(s, e, q);
    th_mock_stats st = mock_stats(s);
    printf("# pass-through: %ld upstream request(s), %ld bytes, sent %zu\n",
           st.requests[SIG_TRACES], st.bytes[SIG_TRACES], d->pb_len);
    TH_ASSERT_EQ_INT(q[0], 1);
    TH_ASSERT_EQ_INT(q[1] + q[2], 0);
    TH_ASSERT_EQ_INT(st.requests[SIG_TRACES], 1);
    TH_ASSERT_EQ_INT(st.bytes[SIG_TRACES], d->pb_len);
    TH_ASSERT_EQ_INT(st.decode_errors, 0);
}

/* ---- span_status ---- */

/* Sends one request and checks which class's dequeue counter moved. */
static void expect_class(th_stack *s, th_http *c, th_expect *e, th_otlp *d, const char *want)
{
    double before[3], after[3];
    settle(s, e, before);
    send_ok(c, d, e);
    settle(s, e, after);
    for (int k = 0; k < 3; k++) {
        int hit = strcmp(class_names[k], want) == 0;
        TH_ASSERT_MSG(after[k] - before[k] == hit, "request seed %u: %s dequeued %g -> %g, "
                      "want the request in %s", d->seed, class_names[k], before[k], after[k],
                      want);
    }
}

static void t_span_status_error_raises(void)
{
    th_stack_opts o = {0};
    th_stack *s = start(&o, status_rules_yaml);
    th_http *c = th_stack_client(s);
    th_expect *e = th_expect_new();
    TH_ASSERT(c && e);
    expect_class(s, c, e, one_resource("web", 71, 3, TH_STATUS_OK), "normal");
    expect_class(s, c, e, one_resource("web", 72, 3, TH_STATUS_LAST_ERROR), "critical");
    expect_class(s, c, e, one_resource("search", 73, 3, TH_STATUS_OK), "high");
    expect_class(s, c, e, one_resource("search", 74, 1, TH_STATUS_LAST_ERROR), "critical");
    expect_class(s, c, e, one_resource("checkout", 75, 2, TH_STATUS_OK), "critical");
    /* web OK + web with an ERROR span in one request: split normal + critical */
    th_res_spec res[2] = {{"web", 76, 2, TH_STATUS_OK}, {"web", 77, 4, TH_STATUS_LAST_ERROR}};
    th_otlp *d = th_otlp_new_traces(res, 2);
    TH_ASSERT(d);
    double before[3], after[3];
    settle(s, e, before);
    send_ok(c, d, e);
    settle(s, e, after);
    TH_ASSERT_EQ_INT(after[0] - before[0], 1);
    TH_ASSERT_EQ_INT(after[1] - before[1], 0);
    TH_ASSERT_EQ_INT(after[2] - before[2], 1);
}

int main(void)
{
    TH_ICASE(t_wrr_531_while_backlogged);
    TH_ICASE(t_split_two_classes);
    TH_ICASE(t_single_class_passes_bytes);
    TH_ICASE(t_span_status_error_raises);
    return th_done();
}
