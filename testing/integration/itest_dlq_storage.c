/* itest_dlq_storage.c — a DLQ on storage that refuses writes: spillway
 * keeps running, /readyz says not ready (component "dlq", with the
 * reason), spillway_dlq_available is 0 and write errors are counted,
 * clients get 503 + Retry-After instead of a 200 followed by a drop, and
 * once the filesystem takes writes again the DLQ is available again
 * without a restart and everything acknowledged arrives upstream.
 *   - read-only at start: a tmpfs mounted read-only on the DLQ dir;
 *   - read-only at run time: the tmpfs remounted read-only while spillway
 *     runs (before any segment is open: Linux refuses to remount a
 *     filesystem read-only while a file on it is open for writing), then
 *     read-write again.
 * spillway runs in a private mount namespace (unshare -rm, as in
 * itest_dlq_full); the remounts enter it with nsenter. Skipped where that
 * is not allowed. */
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define MAX_REQUESTS 3000 /* bound on requests sent while waiting for refusals */
#define EXTRA_AFTER 3     /* requests sent after the first refusal */
#define SPANS 100
#define WAIT_MS 30000

/* Everything spills at intake (64 KiB queue, spill_threshold 0.01); the
 * exporter holds one request retrying and its breaker never opens. */
#define STORAGE_OPTS                                                                         \
    .queue_max_bytes = "64KiB", .queue_yaml = "  spill_threshold: 0.01\n",                   \
    .batch_max_bytes = "16KiB",                                                              \
    .exporter_yaml = "    max_in_flight: 1\n"                                                \
                     "    circuit_breaker: { consecutive_failures: 1000000 }\n",             \
    .retry_yaml = "max_elapsed_time: 1h",                                                    \
    .dlq_yaml = "  segment_size: 1MiB\n  max_size: 1GiB\n  replay: { rate: 64MiB }\n"

/* /readyz: the HTTP status, and the dlq component's readiness and detail. */
static int readyz_dlq(th_stack *s, int *ready, char *detail, size_t len)
{
    const th_resp *r = th_stack_telemetry(s, "/readyz");
    TH_ASSERT_MSG(r, "GET /readyz failed");
    json_object *root = json_tokener_parse((const char *)r->body), *comp, *dlq, *v;
    int ok = root && json_object_object_get_ex(root, "components", &comp) &&
             json_object_object_get_ex(comp, "dlq", &dlq);
    TH_ASSERT_MSG(ok, "/readyz has no dlq component: %.300s", (const char *)r->body);
    *ready = json_object_object_get_ex(dlq, "ready", &v) && json_object_get_boolean(v);
    snprintf(detail, len, "%s",
             json_object_object_get_ex(dlq, "detail", &v) ? json_object_get_string(v) : "");
    json_object_put(root);
    return r->status;
}

static double metric(th_stack *s, const char *name)
{
    const char *text = th_stack_metrics(s);
    TH_ASSERT_MSG(text, "GET /metrics failed");
    return th_prom_sum(text, name, NULL, NULL);
}

/* The DLQ reports unavailable for the reason `why` everywhere. */
static void expect_unavailable(th_stack *s, const char *why)
{
    char detail[256];
    int ready = 1;
    int status = readyz_dlq(s, &ready, detail, sizeof detail);
    TH_ASSERT_MSG(status == 503 && !ready, "/readyz %d, dlq ready %d (%s)", status, ready, detail);
    TH_ASSERT_MSG(strstr(detail, why), "dlq detail '%s' lacks '%s'", detail, why);
    TH_ASSERT_EQ_INT((long)metric(s, "spillway_dlq_available"), 0);
    TH_ASSERT(metric(s, "spillway_dlq_write_errors_total") >= 1);
    printf("# dlq not ready: %s; %.0f write errors\n", detail,
           metric(s, "spillway_dlq_write_errors_total"));
}

/* Waits until the DLQ is available again (re-probe, with back-off). */
static void wait_available(th_stack *s)
{
    char detail[256];
    int ready = 0;
    int64_t t0 = th_now_ms();
    while (th_now_ms() - t0 < WAIT_MS) {
        readyz_dlq(s, &ready, detail, sizeof detail);
        if (ready) break;
        th_nap_ms(100);
    }
    TH_ASSERT_MSG(ready, "dlq still not ready after %d ms: %s", WAIT_MS, detail);
    TH_ASSERT_EQ_INT((long)metric(s, "spillway_dlq_available"), 1);
    printf("# dlq available again after %lld ms\n", (long long)(th_now_ms() - t0));
}

/* Sends until EXTRA_AFTER requests after the first refusal (or n
 * requests when must_accept: each must be accepted); accepted content
 * goes to sent. Returns the refusals (each a 503 with Retry-After). */
static int send_some(th_stack *s, th_lines *sent, uint32_t seed, int n, int must_accept)
{
    char why[512], ra[32];
    int accepted = 0, refused = 0;
    th_http *c = th_stack_client(s);
    TH_ASSERT(c);
    for (int k = 0, extra = -1; k < n && extra < EXTRA_AFTER; k++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, seed + (uint32_t)k, SPANS);
        TH_ASSERT(d);
        const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
        TH_ASSERT_MSG(r, "request %d: %s (spillway %s)", k, th_http_error(c),
                      th_proc_alive(th_stack_spillway(s)) ? "running" : "exited");
        if (r->status == 503 && !must_accept) {
            TH_ASSERT_MSG(th_resp_header(r, "Retry-After", ra, sizeof ra), "503 without Retry-After");
            refused++;
            if (extra < 0) extra = 0;
        } else {
            TH_ASSERT_MSG(th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof why) == 0,
                          "request %d: %s", k, why);
            TH_ASSERT(th_lines_add(sent, d->lines) == 0);
            accepted++;
        }
        if (extra >= 0) extra++;
        th_otlp_free(d);
    }
    th_http_free(c);
    printf("# %d requests accepted, %d refused with 503\n", accepted, refused);
    return refused;
}

/* Remounts spillway's tmpfs (mode "ro" or "rw") inside its namespaces. */
static void remount(th_stack *s, const char *mode)
{
    char why[600];
    TH_ASSERT_MSG(th_stack_remount_dlq(s, mode, why, sizeof why) == 0, "%s", why);
}

static void end_outage_and_check(th_stack *s, th_lines *sent)
{
    char why[1024];
    th_cover cov;
    TH_ASSERT_MSG(th_proc_alive(th_stack_spillway(s)), "spillway exited");
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=0") == 200, "end of outage");
    int rc = th_stack_wait_cover(s, SIG_TRACES, sent, NULL, 60000, &cov, why, sizeof why);
    printf("# upstream received %ld spans of %ld acknowledged, %ld duplicates\n", cov.received,
           cov.required, cov.dups);
    TH_ASSERT_MSG(rc == 0, "acknowledged spans: %s", why);
}

static void need_namespaces(void)
{
    if (!th_stack_tmpfs_usable() || access("/usr/bin/nsenter", X_OK) != 0)
        th_skip("unshare -rm / nsenter cannot mount a tmpfs here");
}

static void t_readonly_at_start(void)
{
    need_namespaces();
    th_stack_opts o = {STORAGE_OPTS, .dlq_tmpfs = "4m,ro"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "spillway did not start with a read-only DLQ directory");
    th_lines *sent = th_lines_new();
    TH_ASSERT(sent);
    expect_unavailable(s, "Read-only file system");
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=3600&mode=503") == 200, "outage");
    TH_ASSERT_MSG(send_some(s, sent, 100000, MAX_REQUESTS, 0) > 0, "no 503 while the DLQ is read-only");
    expect_unavailable(s, "Read-only file system");
    remount(s, "rw");
    wait_available(s);
    send_some(s, sent, 200000, 10, 1); /* spilled to the DLQ now: all accepted */
    end_outage_and_check(s, sent);
}

static void t_readonly_at_runtime(void)
{
    need_namespaces();
    th_stack_opts o = {STORAGE_OPTS, .dlq_tmpfs = "4m"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_lines *sent = th_lines_new();
    TH_ASSERT(sent);
    char detail[256];
    int ready = 0;
    readyz_dlq(s, &ready, detail, sizeof detail);
    TH_ASSERT_MSG(ready, "dlq not ready at start: %s", detail);
    TH_ASSERT_EQ_INT((long)metric(s, "spillway_dlq_available"), 1);
    remount(s, "ro");
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=3600&mode=503") == 200, "outage");
    TH_ASSERT_MSG(send_some(s, sent, 300000, MAX_REQUESTS, 0) > 0, "no 503 after the DLQ went read-only");
    expect_unavailable(s, "Read-only file system");
    remount(s, "rw");
    wait_available(s);
    send_some(s, sent, 400000, 10, 1);
    end_outage_and_check(s, sent);
    TH_ASSERT_MSG(th_proc_alive(th_stack_spillway(s)), "spillway exited");
}

int main(void)
{
    TH_ICASE(t_readonly_at_start);
    TH_ICASE(t_readonly_at_runtime);
    return th_done();
}
