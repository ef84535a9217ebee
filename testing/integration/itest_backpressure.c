/* itest_backpressure.c — a slow upstream, a small queue and a small DLQ:
 * the queue spills to the DLQ, and once the DLQ is at dlq.max_size the
 * receiver refuses with 503/429 + Retry-After instead of dropping;
 * everything it accepted arrives upstream (from memory or replayed from the
 * DLQ once the upstream is fast again), nothing it refused does, and the
 * refusals are counted in spillway_receiver_refused_items_total. */
#include <stdio.h>
#include <string.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define MAX_REQUESTS 4000 /* bound on requests sent while waiting for a refusal */
#define EXTRA_AFTER 3     /* requests sent after the first refusal */
#define SPANS 100         /* about 10 KiB per request */

static void t_full_queue_refuses(void)
{
    char why[1024], ra[32];
    th_stack_opts o = {.queue_max_bytes = "64KiB",
                       .batch_max_bytes = "16KiB",
                       .exporter_yaml = "    max_in_flight: 4\n",
                       .dlq_yaml = "  segment_size: 1MiB\n  max_size: 1MiB\n"
                                   "  replay: { rate: 64MiB }\n",
                       .mock_args = {"--latency-ms", "2000"}};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_http *c = th_stack_client(s);
    th_expect *e = th_expect_new();
    TH_ASSERT(c && e);
    int accepted = 0, refused = 0, extra = -1;
    long refused_items = 0;
    for (int k = 0; k < MAX_REQUESTS && extra < EXTRA_AFTER; k++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, 5000 + (uint32_t)k, SPANS);
        TH_ASSERT(d);
        const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
        TH_ASSERT_MSG(r, "request %d: %s", k, th_http_error(c));
        if (r->status == 503 || r->status == 429) {
            TH_ASSERT_MSG(th_resp_header(r, "Retry-After", ra, sizeof(ra)),
                          "%d answer without Retry-After", r->status);
            refused++;
            refused_items += SPANS;
            if (extra < 0) extra = 0;
        } else {
            TH_ASSERT_MSG(th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, why, sizeof(why)) == 0,
                          "request %d: %s", k, why);
            TH_ASSERT(th_expect_add(e, d) == 0);
            accepted++;
        }
        if (extra >= 0) extra++;
        th_otlp_free(d);
    }
    printf("# %d requests accepted, %d refused (Retry-After: %s)\n", accepted, refused,
           refused ? ra : "-");
    TH_ASSERT_MSG(refused > 0, "no 503/429 after %d requests of %d spans into a 64 KiB queue "
                  "and a 1 MiB DLQ with a 2 s upstream", MAX_REQUESTS, SPANS);
    /* The upstream recovers: memory drains, the DLQ replays. */
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/latency?ms=0") == 200, "mock latency reset");
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, 60000, why, sizeof(why)) == 0,
                  "accepted data upstream: %s", why);
    int found = 0;
    const char *text = th_stack_metrics(s);
    TH_ASSERT_MSG(text, "GET /metrics failed");
    double v = th_prom_sum(text, "spillway_receiver_refused_items_total", NULL, &found);
    TH_ASSERT_MSG(v == (double)refused_items,
                  "spillway_receiver_refused_items_total = %g, want %ld (%d samples)", v,
                  refused_items, found);
}

int main(void)
{
    TH_ICASE(t_full_queue_refuses);
    return th_done();
}
