/* itest_retry.c — the exporter against an upstream that fails: retryable
 * failures are retried until everything arrives exactly once, Retry-After
 * is honoured, any 2xx is success, 400 is not retried, custom headers and
 * https (with a CA file) work. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define DEADLINE_MS 8000

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

static double metric(th_stack *s, const char *name, const char *labels, int *found)
{
    const char *text = th_stack_metrics(s);
    TH_ASSERT_MSG(text, "GET /metrics failed");
    return th_prom_sum(text, name, labels, found);
}

/* The first three upstream requests fail with 503: everything arrives,
 * exactly once (nothing had been accepted before the failures). */
static void t_fail_first_503(void)
{
    char why[1024];
    th_stack_opts o = {.mock_args = {"--fail-first", "3", "--error-code", "503"}};
    th_stack *s = start(&o);
    th_expect *e = th_expect_new();
    TH_ASSERT(e);
    send_traces(s, e, 100, 3, 5);
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, DEADLINE_MS, why, sizeof(why)) == 0,
                  "%s", why);
    th_mock_stats st;
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    printf("# mock answered 503 x%ld, 200 x%ld\n", th_mock_stats_code(&st, 503),
           th_mock_stats_code(&st, 200));
    TH_ASSERT_EQ_INT(th_mock_stats_code(&st, 503), 3);
    int found = 0;
    double retries = metric(s, "spillway_exporter_retries_total", NULL, &found);
    TH_ASSERT_MSG(found && retries >= 1, "spillway_exporter_retries_total = %g (found %d)",
                  retries, found);
}

/* One 429 with Retry-After: 1 — the data arrives, and not before the
 * second the upstream asked for. */
static void t_429_retry_after(void)
{
    char why[1024];
    th_stack_opts o = {.mock_args = {"--retry-after", "1"}};
    th_stack *s = start(&o);
    th_expect *e = th_expect_new();
    TH_ASSERT(e);
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/fail?count=1&code=429") / 100 == 2,
                  "mock /admin/fail refused");
    int64_t t0 = th_now_ms();
    send_traces(s, e, 200, 1, 4);
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, DEADLINE_MS, why, sizeof(why)) == 0,
                  "%s", why);
    int64_t ms = th_now_ms() - t0;
    th_mock_stats st;
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    printf("# delivered %lld ms after the send; mock answered 429 x%ld\n", (long long)ms,
           th_mock_stats_code(&st, 429));
    TH_ASSERT_EQ_INT(th_mock_stats_code(&st, 429), 1);
    TH_ASSERT_MSG(ms >= 900, "retried after %lld ms although Retry-After was 1 s", (long long)ms);
}

static void success_code(const char *code)
{
    char why[1024];
    th_stack_opts o = {.mock_args = {"--success-code", code}};
    th_stack *s = start(&o);
    th_expect *e = th_expect_new();
    TH_ASSERT(e);
    send_traces(s, e, 300, 3, 4);
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, DEADLINE_MS, why, sizeof(why)) == 0,
                  "%s", why);
    th_mock_stats st;
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    TH_ASSERT_EQ_INT(th_mock_stats_responses(&st), th_mock_stats_code(&st, atoi(code)));
    int found = 0;
    double v = metric(s, "spillway_exporter_retries_total", NULL, &found);
    TH_ASSERT_MSG(v == 0, "%s counted as failure: %g retries", code, v);
    v = metric(s, "spillway_exporter_items_total", "result=\"rejected\"", &found);
    TH_ASSERT_MSG(v == 0, "%s counted as rejected: %g items", code, v);
}

static void t_success_204(void) { success_code("204"); }
static void t_success_201(void) { success_code("201"); }

/* A 400 from upstream is final: one upstream request for the batch, its
 * items counted as rejected, no retry. */
static void t_400_not_retried(void)
{
    th_stack *s = start(NULL);
    th_expect *e = th_expect_new();
    TH_ASSERT(e);
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/fail?count=1&code=400") / 100 == 2,
                  "mock /admin/fail refused");
    send_traces(s, e, 400, 1, 6);
    int64_t deadline = th_now_ms() + DEADLINE_MS;
    double rejected = 0;
    int found = 0;
    while (th_now_ms() < deadline) {
        rejected = metric(s, "spillway_exporter_items_total", "result=\"rejected\"", &found);
        if (rejected >= 6) break;
        th_nap_ms(10);
    }
    TH_ASSERT_MSG(rejected == 6, "spillway_exporter_items_total{result=\"rejected\"} = %g, want 6",
                  rejected);
    /* Retries would come within max_interval (500 ms); watch for 1 s. */
    th_mock_stats st;
    for (int64_t until = th_now_ms() + 1000; th_now_ms() < until;) {
        TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
        TH_ASSERT_MSG(th_mock_stats_responses(&st) <= 1, "upstream saw %ld requests for one "
                      "rejected batch", th_mock_stats_responses(&st));
        th_nap_ms(20);
    }
    TH_ASSERT_EQ_INT(th_mock_stats_code(&st, 400), 1);
}

static void t_custom_headers(void)
{
    char why[1024];
    th_stack_opts o = {.exporter_yaml = "    headers: { api-key: secret123 }\n"};
    th_stack *s = start(&o);
    th_expect *e = th_expect_new();
    TH_ASSERT(e);
    send_traces(s, e, 500, 1, 2);
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, DEADLINE_MS, why, sizeof(why)) == 0,
                  "%s", why);
    const char *h = th_stack_mock_get(s, "/received/headers");
    TH_ASSERT_MSG(h, "mock GET /received/headers failed");
    TH_ASSERT_MSG(strcasestr(h, "api-key: secret123"), "api-key header missing upstream:\n%s", h);
}

static void t_https_upstream(void)
{
    char why[1024];
    th_stack_opts o = {.mock_tls = 1};
    th_stack *s = start(&o);
    th_expect *e = th_expect_new();
    TH_ASSERT(e);
    send_traces(s, e, 600, 2, 3);
    TH_ASSERT_MSG(th_stack_check_received(s, SIG_TRACES, e, 0, DEADLINE_MS, why, sizeof(why)) == 0,
                  "%s", why);
}

int main(void)
{
    TH_ICASE(t_fail_first_503);
    TH_ICASE(t_429_retry_after);
    TH_ICASE(t_success_204);
    TH_ICASE(t_success_201);
    TH_ICASE(t_400_not_retried);
    TH_ICASE(t_custom_headers);
    TH_ICASE(t_https_upstream);
    return th_done();
}
