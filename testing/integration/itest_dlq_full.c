/* itest_dlq_full.c — a full disk queue with the upstream down: clients get
 * 503/429 with Retry-After, spillway keeps running, and once the upstream
 * is back everything that was acknowledged arrives (nothing refused does)
 * and intake accepts data again.
 *   - dlq.max_size of 1 MiB: the DLQ refuses appends before its limit;
 *   - a real ENOSPC: spillway runs in a private mount namespace (unshare
 *     -rm) with a 2 MiB tmpfs on its DLQ directory and a dlq.max_size far
 *     above it: the DLQ turns unavailable (/readyz not ready, counted) and
 *     available again once replay freed the disk. Skipped where
 *     unprivileged user namespaces are not allowed (then only max_size
 *     covers the disk-full path; injected write errors are unit-tested in
 *     the dlq module; read-only storage: itest_dlq_storage). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define MAX_REQUESTS 4000 /* bound on requests sent while waiting for refusals */
#define EXTRA_AFTER 3     /* requests sent after the first refusal */
#define AFTER 5           /* requests sent once the DLQ replayed */
#define SPANS 100
#define DRAIN_MS 60000

typedef struct fill_result {
    int accepted, refused;
    char retry_after[32];
} fill_result;

/* Sends until EXTRA_AFTER requests after the first refusal; the accepted
 * ones go to sent. */
static void fill_until_refused(th_stack *s, th_lines *sent, uint32_t seed, fill_result *fr)
{
    char why[512];
    th_http *c = th_stack_client(s);
    TH_ASSERT(c);
    memset(fr, 0, sizeof(*fr));
    for (int k = 0, extra = -1; k < MAX_REQUESTS && extra < EXTRA_AFTER; k++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, seed + (uint32_t)k, SPANS);
        TH_ASSERT(d);
        const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
        TH_ASSERT_MSG(r, "request %d: %s (spillway %s)", k, th_http_error(c),
                      th_proc_alive(th_stack_spillway(s)) ? "running" : "exited");
        if (r->status == 503 || r->status == 429) {
            TH_ASSERT_MSG(th_resp_header(r, "Retry-After", fr->retry_after,
                                         sizeof(fr->retry_after)),
                          "%d answer without Retry-After", r->status);
            fr->refused++;
            if (extra < 0) extra = 0;
        } else {
            TH_ASSERT_MSG(th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof(why)) == 0,
                          "request %d: %s", k, why);
            TH_ASSERT(th_lines_add(sent, d->lines) == 0);
            fr->accepted++;
        }
        if (extra >= 0) extra++;
        th_otlp_free(d);
    }
    th_http_free(c);
    printf("# %d requests accepted, %d refused (Retry-After: %s)\n", fr->accepted, fr->refused,
           fr->refused ? fr->retry_after : "-");
}

/* Waits until replay deleted every DLQ segment (spillway_dlq_bytes 0) and
 * the DLQ takes writes (spillway_dlq_available 1). The upstream holding
 * every span is not enough: the last segment is sealed only after
 * dlq.seal_idle_ms (1 s) without growth and deleted after that, and until
 * then its bytes count toward max_size, so intake still answers 503. */
static void wait_dlq_freed(th_stack *s)
{
    int64_t t0 = th_now_ms();
    double bytes = -1, avail = 0;
    for (;;) {
        const char *text = th_stack_metrics(s);
        if (text) {
            bytes = th_prom_sum(text, "spillway_dlq_bytes", NULL, NULL);
            avail = th_prom_sum(text, "spillway_dlq_available", NULL, NULL);
        }
        if ((bytes == 0 && avail == 1) || th_now_ms() - t0 >= DRAIN_MS) break;
        th_nap_ms(50);
    }
    printf("# DLQ emptied and available %lld ms after the upstream held every span\n",
           (long long)(th_now_ms() - t0));
    TH_ASSERT_MSG(bytes == 0 && avail == 1,
                  "replay did not free the DLQ: spillway_dlq_bytes %.0f, available %.0f", bytes,
                  avail);
}

/* The upstream comes back: what was accepted arrives, refused data does
 * not, replay frees the DLQ, and new requests are accepted again. */
static void recover_and_check(th_stack *s, th_lines *sent)
{
    char why[1024];
    TH_ASSERT_MSG(th_proc_alive(th_stack_spillway(s)), "spillway exited while the DLQ was full");
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=0") == 200, "end of outage");
    th_cover cov;
    int rc = th_stack_wait_cover(s, SIG_TRACES, sent, NULL, DRAIN_MS, &cov, why, sizeof(why));
    printf("# upstream received %ld spans, %ld duplicates\n", cov.received, cov.dups);
    TH_ASSERT_MSG(rc == 0, "acknowledged spans after recovery: %s", why);
    wait_dlq_freed(s);
    th_http *c = th_stack_client(s);
    TH_ASSERT(c);
    /* The DLQ frees its room once the last replayed records are
     * acknowledged and their segment deleted, a moment after the upstream
     * counted them: until then a request may still get 503 + Retry-After,
     * which a client retries (bounded). */
    int64_t room_deadline = th_now_ms() + th_slow_ms(10000);
    for (int k = 0; k < AFTER; k++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, 900000 + (uint32_t)k, SPANS);
        TH_ASSERT(d);
        const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
        char ra[16];
        while (r && r->status == 503 && th_resp_header(r, "Retry-After", ra, sizeof ra) &&
               th_now_ms() < room_deadline) {
            th_nap_ms(20);
            r = th_otlp_send(c, d, TH_ENC_PB);
        }
        TH_ASSERT_MSG(r && th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof(why)) == 0,
                      "request after recovery: %s", r ? why : th_http_error(c));
        TH_ASSERT(th_lines_add(sent, d->lines) == 0);
        th_otlp_free(d);
    }
    rc = th_stack_wait_cover(s, SIG_TRACES, sent, NULL, DRAIN_MS, &cov, why, sizeof(why));
    TH_ASSERT_MSG(rc == 0, "spans sent after recovery: %s", why);
}

/* Everything spills at intake (64 KiB queue, spill_threshold 0.01), the
 * exporter holds one request retrying, its breaker never opens. */
#define FULL_OPTS                                                                            \
    .queue_max_bytes = "64KiB", .queue_yaml = "  spill_threshold: 0.01\n",                   \
    .batch_max_bytes = "16KiB",                                                              \
    .exporter_yaml = "    max_in_flight: 1\n"                                                \
                     "    circuit_breaker: { consecutive_failures: 1000000 }\n",             \
    .retry_yaml = "max_elapsed_time: 1h"

static void t_max_size_refuses(void)
{
    th_stack_opts o = {FULL_OPTS,
                       .dlq_yaml = "  segment_size: 1MiB\n  max_size: 1MiB\n"
                                   "  replay: { rate: 64MiB }\n"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_lines *sent = th_lines_new();
    TH_ASSERT(sent);
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=3600&mode=503") == 200, "outage");
    fill_result fr;
    fill_until_refused(s, sent, 400000, &fr);
    TH_ASSERT_MSG(fr.refused > 0, "no 503/429 after %d requests into a 1 MiB DLQ", MAX_REQUESTS);
    const char *text = th_stack_metrics(s);
    TH_ASSERT_MSG(text, "GET /metrics failed");
    printf("# spillway_dlq_bytes %.0f at dlq.max_size 1 MiB\n",
           th_prom_sum(text, "spillway_dlq_bytes", NULL, NULL));
    recover_and_check(s, sent);
}

static void t_enospc_tmpfs(void)
{
    if (!th_stack_tmpfs_usable())
        th_skip("unshare -rm cannot mount a tmpfs here; disk full covered by dlq.max_size only");
    th_stack_opts o = {FULL_OPTS, .dlq_tmpfs = "2m",
                       .dlq_yaml = "  segment_size: 1MiB\n  max_size: 1GiB\n"
                                   "  replay: { rate: 64MiB }\n"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start in a mount namespace with a tmpfs DLQ");
    th_lines *sent = th_lines_new();
    TH_ASSERT(sent);
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=3600&mode=503") == 200, "outage");
    fill_result fr;
    fill_until_refused(s, sent, 500000, &fr);
    TH_ASSERT_MSG(fr.refused > 0, "no 503/429 after %d requests into a 2 MiB tmpfs", MAX_REQUESTS);
    /* The write error made the DLQ unavailable: not ready, counted. */
    const th_resp *rz = th_stack_telemetry(s, "/readyz");
    TH_ASSERT_MSG(rz && rz->status == 503 && strstr((const char *)rz->body, "No space left"),
                  "/readyz while the DLQ disk is full: %.300s", rz ? (const char *)rz->body : "-");
    const char *text = th_stack_metrics(s);
    TH_ASSERT_MSG(text, "GET /metrics failed");
    TH_ASSERT_EQ_INT((long)th_prom_sum(text, "spillway_dlq_available", NULL, NULL), 0);
    TH_ASSERT(th_prom_sum(text, "spillway_dlq_write_errors_total", NULL, NULL) >= 1);
    recover_and_check(s, sent);
    /* Replay freed the disk: the DLQ takes writes again, no restart. */
    int64_t t0 = th_now_ms();
    double avail = 0;
    while (th_now_ms() - t0 < DRAIN_MS && avail != 1) {
        text = th_stack_metrics(s);
        avail = text ? th_prom_sum(text, "spillway_dlq_available", NULL, NULL) : 0;
        if (avail != 1) th_nap_ms(100);
    }
    TH_ASSERT_MSG(avail == 1, "the DLQ did not become available after the disk was freed");
}

int main(void)
{
    TH_ICASE(t_max_size_refuses);
    TH_ICASE(t_enospc_tmpfs);
    return th_done();
}
