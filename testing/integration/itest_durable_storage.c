/* itest_durable_storage.c — queue.mode durable with a DLQ that cannot be
 * written: nothing is acknowledged that is not on disk. With the DLQ
 * directory on a read-only tmpfs at start, the queue empty and the
 * upstream up (memory mode would answer 200 here), every request gets 503
 * + Retry-After and /readyz has the pipeline and the dlq not ready; once
 * the filesystem is writable again the DLQ recovers without a restart,
 * requests are accepted (journaled) and all of them arrive. spillway runs
 * in a private mount namespace (unshare -rm, as in itest_dlq_storage);
 * skipped where that is not allowed. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define SPANS 50
#define WAIT_MS 30000

/* /readyz: the HTTP status, and whether component `name` is ready. */
static int readyz(th_stack *s, const char *name, int *ready)
{
    const th_resp *r = th_stack_telemetry(s, "/readyz");
    TH_ASSERT_MSG(r, "GET /readyz failed");
    json_object *root = json_tokener_parse((const char *)r->body), *comp, *c, *v;
    int ok = root && json_object_object_get_ex(root, "components", &comp) &&
             json_object_object_get_ex(comp, name, &c);
    TH_ASSERT_MSG(ok, "/readyz has no %s component: %.300s", name, (const char *)r->body);
    *ready = json_object_object_get_ex(c, "ready", &v) && json_object_get_boolean(v);
    json_object_put(root);
    return r->status;
}

/* Remounts spillway's tmpfs (mode "ro" or "rw") inside its namespaces. */
static void remount(th_stack *s, const char *mode)
{
    char why[600];
    TH_ASSERT_MSG(th_stack_remount_dlq(s, mode, why, sizeof why) == 0, "%s", why);
}

static void t_readonly_at_start_refuses_everything(void)
{
    if (!th_stack_tmpfs_usable() || access("/usr/bin/nsenter", X_OK) != 0)
        th_skip("unshare -rm / nsenter cannot mount a tmpfs here");
    th_stack_opts o = {.queue_yaml = "  mode: durable\n", .dlq_fsync = "always",
                       .dlq_yaml = "  segment_size: 1MiB\n", .dlq_tmpfs = "4m,ro"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "spillway did not start with a read-only DLQ directory");
    int ready = 1, status = readyz(s, "pipeline", &ready);
    TH_ASSERT_MSG(status == 503 && !ready, "/readyz %d, pipeline ready %d", status, ready);
    readyz(s, "dlq", &ready);
    TH_ASSERT_MSG(!ready, "dlq ready on a read-only directory");
    th_http *c = th_stack_client(s);
    TH_ASSERT(c);
    char ra[32], why[512];
    for (int k = 0; k < 5; k++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, 500 + (uint32_t)k, SPANS);
        TH_ASSERT(d);
        const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
        TH_ASSERT_MSG(r, "request %d: %s", k, th_http_error(c));
        TH_ASSERT_MSG(r->status == 503, "request %d answered %d with the journal unwritable",
                      k, r->status);
        TH_ASSERT_MSG(th_resp_header(r, "Retry-After", ra, sizeof ra), "503 without Retry-After");
        th_otlp_free(d);
    }
    th_mock_stats st;
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    TH_ASSERT_EQ_INT(st.items[SIG_TRACES], 0); /* nothing refused was forwarded */
    remount(s, "rw");
    int64_t t0 = th_now_ms();
    do {
        readyz(s, "pipeline", &ready);
        if (!ready) th_nap_ms(100);
    } while (!ready && th_now_ms() - t0 < WAIT_MS);
    TH_ASSERT_MSG(ready, "pipeline not ready %d ms after the remount", WAIT_MS);
    printf("# ready again %lld ms after the remount\n", (long long)(th_now_ms() - t0));
    th_lines *sent = th_lines_new();
    TH_ASSERT(sent);
    for (int k = 0; k < 10; k++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, 600 + (uint32_t)k, SPANS);
        TH_ASSERT(d);
        TH_ASSERT_MSG(th_send_ok(c, d, sent, why, sizeof why) == 0,
                      "request %d after the remount: %s", k, why);
        th_otlp_free(d);
    }
    th_http_free(c);
    th_cover cov;
    int rc = th_stack_wait_cover(s, SIG_TRACES, sent, NULL, 30000, &cov, why, sizeof why);
    printf("# upstream received %ld spans of %ld acknowledged, %ld duplicates\n", cov.received,
           cov.required, cov.dups);
    TH_ASSERT_MSG(rc == 0, "acknowledged spans: %s", why);
}

int main(void)
{
    TH_ICASE(t_readonly_at_start_refuses_everything);
    return th_done();
}
