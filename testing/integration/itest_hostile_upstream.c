/* itest_hostile_upstream.c — the exporter against upstreams that answer
 * too slowly to be useful: a 200 trickled one byte per second, a flood of
 * `100 Continue` lines without a final answer, and redirects.
 *
 * exporters.otlphttp.timeout (5 s in th_stack's config) is a deadline for
 * the whole request: each such attempt fails at the deadline, is retried,
 * and feeds the circuit breaker (consecutive_failures 2 here); once the
 * mock's outage ends the data arrives exactly once. Redirects are retryable
 * failures, never followed and never rejected.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define BREAKER_YAML "    circuit_breaker: { consecutive_failures: 2, open_duration: 2s }\n"

static th_stack *start(const th_stack_opts *o)
{
    th_stack *s = th_stack_start(o);
    TH_ASSERT_MSG(s, "stack did not start");
    return s;
}

static void send_traces(th_stack *s, th_expect *e, uint32_t seed0, int nreq, size_t per)
{
    char why[600];
    TH_ASSERT_MSG(th_stack_send_traces(s, e, seed0, nreq, per, why, sizeof why) == 0, "%s", why);
}

static double metric(th_stack *s, const char *name, const char *labels)
{
    int found = 0;
    const char *text = th_stack_metrics(s);
    TH_ASSERT_MSG(text, "GET /metrics failed");
    double v = th_prom_sum(text, name, labels, &found);
    return found ? v : 0;
}

/* Waits until the exporter counted `want` attempts without an answer. */
static double wait_no_answer(th_stack *s, double want, int timeout_ms)
{
    double v = 0;
    for (int64_t end = th_now_ms() + timeout_ms; th_now_ms() < end; th_nap_ms(50)) {
        v = metric(s, "spillway_exporter_requests_total", "code=\"error\"");
        if (v >= want) break;
    }
    return v;
}

/* An 8 s outage of mode `mode`: the first attempt is cut at the 5 s
 * deadline (a trickled answer would take over a minute), the retry too,
 * the breaker opens; after the outage the data arrives exactly once. */
static void hostile_outage(const char *mode)
{
    char why[1024], at[32];
    snprintf(at, sizeof at, "0:8:%s", mode);
    th_stack_opts o = {.mock_args = {"--outage-at", at}, .exporter_yaml = BREAKER_YAML};
    th_stack *s = start(&o);
    th_expect *e = th_expect_new();
    TH_ASSERT(e);
    int64_t t0 = th_now_ms();
    send_traces(s, e, 700, 1, 5);
    double failed = wait_no_answer(s, 1, 7000);
    int64_t first = th_now_ms() - t0;
    TH_ASSERT_MSG(failed >= 1, "no attempt failed within 7 s of a %s upstream", mode);
    printf("# %s: first attempt failed after %lld ms\n", mode, (long long)first);
    failed = wait_no_answer(s, 2, 7000);
    TH_ASSERT_MSG(failed >= 2, "the retry did not fail within the deadline either (%g)", failed);
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, 20000, why, sizeof why) == 0,
                  "%s", why);
    printf("# %s: delivered %lld ms after the send, %g attempts without an answer\n", mode,
           (long long)(th_now_ms() - t0),
           metric(s, "spillway_exporter_requests_total", "code=\"error\""));
    /* the mock counts a request when it gets it, spillway when it reads the
     * answer: wait for the counter rather than read it once */
    double sent = 0;
    for (int64_t end = th_now_ms() + 5000; th_now_ms() < end; th_nap_ms(20))
        if ((sent = metric(s, "spillway_exporter_items_total", "result=\"sent\"")) >= 5) break;
    TH_ASSERT_MSG(sent == 5, "sent %g items, want 5", sent);
    TH_ASSERT_EQ_INT(metric(s, "spillway_exporter_items_total", "result=\"rejected\""), 0);
}

static void t_trickled_answer_times_out(void) { hostile_outage("trickle"); }
static void t_continue_flood_times_out(void) { hostile_outage("continue"); }

/* 307 and 301 are not followed: retried like a 503, then delivered once,
 * nothing rejected. */
static void t_redirect_retried(void)
{
    char why[1024];
    th_stack *s = start(NULL);
    th_expect *e = th_expect_new();
    TH_ASSERT(e);
    TH_ASSERT(th_stack_mock_post(s, "/admin/fail?count=1&code=307") / 100 == 2);
    send_traces(s, e, 800, 1, 3);
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, 8000, why, sizeof why) == 0,
                  "%s", why);
    TH_ASSERT(th_stack_mock_post(s, "/admin/fail?count=1&code=301") / 100 == 2);
    send_traces(s, e, 900, 1, 3);
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, 8000, why, sizeof why) == 0,
                  "%s", why);
    th_mock_stats st;
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    TH_ASSERT_EQ_INT(th_mock_stats_code(&st, 307), 1);
    TH_ASSERT_EQ_INT(th_mock_stats_code(&st, 301), 1);
    TH_ASSERT(metric(s, "spillway_exporter_retries_total", NULL) >= 2);
    TH_ASSERT_EQ_INT(metric(s, "spillway_exporter_items_total", "result=\"rejected\""), 0);
}

int main(void)
{
    TH_ICASE(t_trickled_answer_times_out);
    TH_ICASE(t_continue_flood_times_out);
    TH_ICASE(t_redirect_retried);
    return th_done();
}
