/* itest_shutdown_hurry.c — a second SIGTERM while the exporter is stopping
 * (step 3 of cmd/spillway.c's shutdown) cuts its stop short.
 *
 * The drain (step 2) ends at once: the queue is empty, nothing is in
 * flight and the upstream's last answer was a 2xx. But one batch is backing
 * off (a 429 with Retry-After) and the upstream now hangs: in step 3 that
 * batch is sent again and hangs, then again, until shutdown_timeout (30 s).
 * A second SIGTERM then makes spillway abandon the request, store what it
 * holds in the DLQ and exit 0 well before shutdown_timeout; a restart
 * against a healthy upstream replays it, and every acknowledged span
 * arrives. Times are reported, not asserted (only "before
 * shutdown_timeout"). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define SHUTDOWN_MS 30000
#define SPANS 20

/* 1 once spillway's log contains text. */
static int log_has(th_proc *sw, const char *text)
{
    size_t len = 0;
    char *log = th_read_file(th_proc_log(sw), &len);
    int found = log && strstr(log, text) != NULL;
    free(log);
    return found;
}

/* Polls spillway's log for text until timeout_ms. 0 or -1. */
static int wait_log(th_proc *sw, const char *text, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    while (!log_has(sw, text)) {
        if (th_now_ms() >= deadline) return -1;
        th_nap_ms(20);
    }
    return 0;
}

static double metric(th_stack *s, const char *name)
{
    const char *text = th_stack_metrics(s);
    return text ? th_prom_sum(text, name, NULL, NULL) : -1;
}

/* One acknowledged request of SPANS spans (seed), its lines kept in sent. */
static void send_one(th_stack *s, th_lines *sent, uint32_t seed)
{
    char why[512];
    th_http *c = th_stack_client(s);
    TH_ASSERT(c);
    th_otlp *d = th_otlp_new(SIG_TRACES, seed, SPANS);
    TH_ASSERT(d);
    TH_ASSERT_MSG(th_send_ok(c, d, sent, why, sizeof why) == 0, "%s", why);
    th_otlp_free(d);
    th_http_free(c);
}

static void t_second_signal_during_exporter_stop(void)
{
    char why[1024];
    th_stack_opts o = {.mock_args = {"--retry-after", "5"}, .shutdown_timeout = "30s",
                       .retry_yaml = "max_elapsed_time: 1h"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_proc *sw = th_stack_spillway(s);
    th_lines *sent = th_lines_new();
    TH_ASSERT(sent);

    /* A batch answered 429, Retry-After: 5 — it backs off for 5 s. */
    TH_ASSERT(th_stack_mock_post(s, "/admin/fail?count=1&code=429") == 200);
    send_one(s, sent, 8100);
    int64_t deadline = th_now_ms() + 10000;
    th_mock_stats st;
    while (th_stack_mock_stats(s, &st) != 0 || th_mock_stats_code(&st, 429) < 1) {
        TH_ASSERT_MSG(th_now_ms() < deadline, "the upstream did not answer 429 within 10 s");
        th_nap_ms(20);
    }
    /* The next one is delivered: the upstream's last answer is a 2xx. */
    send_one(s, sent, 8101);
    TH_ASSERT_MSG(th_stack_wait_items(s, SIG_TRACES, SPANS, 10000) >= SPANS,
                  "the second request was not delivered");
    TH_ASSERT(th_stack_mock_post(s, "/admin/outage?seconds=3600&mode=hang") == 200);

    int64_t t0 = th_now_ms();
    TH_ASSERT(th_proc_signal(sw, SIGTERM) == 0);
    TH_ASSERT_MSG(wait_log(sw, "stopping the exporter (", 10000) == 0,
                  "step 3 (stopping the exporter) did not begin within 10 s of SIGTERM");
    int64_t t3 = th_now_ms();
    /* The backed-off batch goes out again and hangs. */
    deadline = th_now_ms() + 15000;
    while (metric(s, "spillway_exporter_in_flight_requests") < 1) {
        TH_ASSERT_MSG(th_now_ms() < deadline, "no request in flight during step 3");
        th_nap_ms(20);
    }
    TH_ASSERT_MSG(th_proc_alive(sw), "spillway exited before the second signal");
    int64_t t_second = th_now_ms();
    TH_ASSERT(th_proc_signal(sw, SIGTERM) == 0);
    int status = 0;
    int64_t left = SHUTDOWN_MS - 1000 - (th_now_ms() - t0);
    TH_ASSERT_MSG(left > 0, "the setup took the whole shutdown_timeout");
    TH_ASSERT_MSG(th_proc_wait_exit(sw, (int)left, &status) == 0,
                  "still running %lld ms after the first SIGTERM (shutdown_timeout 30 s): the "
                  "second SIGTERM did not cut the exporter's stop short",
                  (long long)(th_now_ms() - t0));
    int64_t t_exit = th_now_ms();
    printf("# step 3 began %lld ms after SIGTERM; second SIGTERM %lld ms later (a request "
           "in flight); exit %lld ms after it, %lld ms after the first (shutdown_timeout "
           "%d ms)\n",
           (long long)(t3 - t0), (long long)(t_second - t3), (long long)(t_exit - t_second),
           (long long)(t_exit - t0), SHUTDOWN_MS);
    TH_ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status 0x%x", status);
    TH_ASSERT_MSG(log_has(sw, "stop cut short"), "the exporter's log does not say it was hurried");
    TH_ASSERT_MSG(!log_has(sw, "neither delivered nor stored"), "the exporter lost items");
    long recs = th_stack_dlq_records(s);
    printf("# DLQ records after the exit: %ld\n", recs);
    TH_ASSERT_MSG(recs > 0, "nothing in the DLQ after the exit");

    /* Every acknowledged span arrives once the DLQ is replayed. */
    TH_ASSERT(th_stack_mock_post(s, "/admin/outage?seconds=0") == 200);
    TH_ASSERT_MSG(th_stack_restart_spillway(s) == 0, "restart");
    th_cover cov;
    int rc = th_stack_wait_cover(s, SIG_TRACES, sent, NULL, 60000, &cov, why, sizeof why);
    printf("# after the restart the upstream has %ld spans (%ld required), %ld duplicates\n",
           cov.received, cov.required, cov.dups);
    TH_ASSERT_MSG(rc == 0, "acknowledged spans after the restart: %s", why);
    th_lines_free(sent);
}

int main(void)
{
    TH_ICASE(t_second_signal_during_exporter_stop);
    return th_done();
}
