/* itest_admission.c — admission is all or nothing per request, with the
 * real binaries.
 *
 * Mixed-class trace requests (a critical and a normal resource each) go to
 * spillway while the upstream is down and everything spills to the DLQ.
 * The DLQ sits on a 2 MiB tmpfs (private mount namespace), so a write hits
 * a real ENOSPC part-way through a record: that request is answered 503.
 * Checked: once the upstream is back, every accepted span arrives and
 * nothing of the refused request does (no part of it was left in the DLQ
 * to be replayed); its retry is then accepted and arrives exactly once.
 * Skipped where unprivileged user namespaces cannot mount a tmpfs (the
 * unit test test_pipeline covers the same with an injected write error).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define MAX_REQUESTS 4000 /* bound on requests sent while waiting for a refusal */
#define CRIT_SPANS 5      /* a small critical resource first ... */
#define NORMAL_SPANS 100  /* ... then a large normal one: a write that runs out of
                           * space most likely ends inside the normal part */
#define DRAIN_MS 60000
#define RETRY_MS 30000

static th_otlp *mixed_request(uint32_t seed)
{
    th_res_spec rs[2] = {{"checkout-api", seed * 2, CRIT_SPANS, TH_STATUS_OK},
                         {"cart", seed * 2 + 1, NORMAL_SPANS, TH_STATUS_OK}};
    return th_otlp_new_traces(rs, 2);
}

/* Sends mixed requests until the first refusal; the accepted ones go to
 * sent. Returns the refused request (owned), or NULL if none was refused. */
static th_otlp *send_until_refused(th_stack *s, th_lines *sent)
{
    char why[512];
    th_http *c = th_stack_client(s);
    TH_ASSERT(c);
    int accepted = 0;
    th_otlp *refused = NULL;
    for (int k = 0; k < MAX_REQUESTS && !refused; k++) {
        th_otlp *d = mixed_request(700000 + (uint32_t)k);
        TH_ASSERT(d);
        const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
        TH_ASSERT_MSG(r, "request %d: %s", k, th_http_error(c));
        if (r->status == 503 || r->status == 429) {
            char ra[32];
            TH_ASSERT_MSG(th_resp_header(r, "Retry-After", ra, sizeof ra), "no Retry-After");
            refused = d;
            continue;
        }
        TH_ASSERT_MSG(th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof why) == 0,
                      "request %d: %s", k, why);
        TH_ASSERT(th_lines_add(sent, d->lines) == 0);
        accepted++;
        th_otlp_free(d);
    }
    th_http_free(c);
    printf("# %d mixed-class requests accepted before the first refusal\n", accepted);
    return refused;
}

/* Retries d until it is accepted (the DLQ frees space as replay deletes
 * acknowledged segments), with a deadline. */
static void retry_until_accepted(th_stack *s, const th_otlp *d)
{
    char why[512];
    th_http *c = th_stack_client(s);
    TH_ASSERT(c);
    int64_t deadline = th_now_ms() + RETRY_MS;
    int tries = 0, status = 0;
    do {
        if (tries++) th_nap_ms(100);
        const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
        TH_ASSERT_MSG(r, "retry: %s", th_http_error(c));
        status = r->status;
        if (status == 200)
            TH_ASSERT_MSG(th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof why) == 0,
                          "retry: %s", why);
        else
            TH_ASSERT_MSG(status == 503 || status == 429, "retry answered %d", status);
    } while (status != 200 && th_now_ms() < deadline);
    th_http_free(c);
    printf("# the refused request was accepted at retry %d\n", tries);
    TH_ASSERT_MSG(status == 200, "retry still refused after %d ms", RETRY_MS);
}

static void t_enospc_refused_request_never_replayed(void)
{
    char why[1024];
    if (!th_stack_tmpfs_usable())
        th_skip("unshare -rm cannot mount a tmpfs here; covered by test_pipeline");
    th_stack_opts o = {
        .queue_max_bytes = "64KiB", .queue_yaml = "  spill_threshold: 0.01\n",
        .batch_max_bytes = "16KiB",
        .exporter_yaml = "    max_in_flight: 1\n"
                         "    circuit_breaker: { consecutive_failures: 1000000 }\n",
        .retry_yaml = "max_elapsed_time: 1h", .dlq_tmpfs = "2m",
        .dlq_yaml = "  segment_size: 1MiB\n  max_size: 1GiB\n  replay: { rate: 64MiB }\n",
        .processors_yaml =
            "  priority:\n    rules:\n"
            "      - { class: critical, attribute: service.name, regex: \"^checkout\" }\n"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start in a mount namespace with a tmpfs DLQ");
    th_lines *sent = th_lines_new();
    TH_ASSERT(sent);
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=3600&mode=503") == 200, "outage");
    th_otlp *refused = send_until_refused(s, sent);
    TH_ASSERT_MSG(refused, "no 503/429 after %d requests into a 2 MiB tmpfs", MAX_REQUESTS);
    TH_ASSERT_MSG(th_proc_alive(th_stack_spillway(s)), "spillway exited on a full disk");

    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=0") == 200, "end of outage");
    th_cover cov;
    int rc = th_stack_wait_cover(s, SIG_TRACES, sent, NULL, DRAIN_MS, &cov, why, sizeof why);
    printf("# upstream received %ld spans (%ld required), %ld duplicates, %ld unexpected\n",
           cov.received, cov.required, cov.dups, cov.unexpected);
    TH_ASSERT_MSG(rc == 0, "accepted spans after recovery: %s", why);
    TH_ASSERT_MSG(cov.unexpected == 0, "%ld spans of the refused request reached the upstream",
                  cov.unexpected);

    retry_until_accepted(s, refused);
    TH_ASSERT(th_lines_add(sent, refused->lines) == 0);
    rc = th_stack_wait_cover(s, SIG_TRACES, sent, NULL, DRAIN_MS, &cov, why, sizeof why);
    printf("# after the retry: %ld spans received, %ld duplicates\n", cov.received, cov.dups);
    TH_ASSERT_MSG(rc == 0, "spans after the retry: %s", why);
    TH_ASSERT_MSG(cov.dups == 0, "%ld spans arrived more than once", cov.dups);
    th_otlp_free(refused);
}

int main(void)
{
    TH_ICASE(t_enospc_refused_request_never_replayed);
    return th_done();
}
