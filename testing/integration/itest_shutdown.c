/* itest_shutdown.c — SIGTERM right after accepting data: spillway flushes
 * everything upstream (a slow one) within shutdown_timeout and exits 0.
 * During a drain (upstream hanging) the ingest loop still answers: /readyz
 * says not ready, a new request gets 503 + Retry-After, and a second
 * SIGTERM exits promptly with status 0 and everything acknowledged in the
 * DLQ (checked by replaying it after a restart). SIGHUP, SIGUSR1, SIGUSR2
 * and SIGALRM leave spillway running and serving. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

static void t_sigterm_flushes_everything(void)
{
    char why[1024];
    th_stack_opts o = {.mock_args = {"--latency-ms", "300"}, .shutdown_timeout = "8s"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_http *c = th_stack_client(s);
    th_expect *e[SIG_COUNT];
    for (int sig = 0; sig < SIG_COUNT; sig++) TH_ASSERT((e[sig] = th_expect_new()) != NULL);
    TH_ASSERT(c);
    for (int k = 0; k < 9; k++) {
        sw_signal sig = (sw_signal)(k % SIG_COUNT);
        th_otlp *d = th_otlp_new(sig, 900 + (uint32_t)k, 10);
        TH_ASSERT(d);
        const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
        TH_ASSERT_MSG(th_otlp_check_success(r, sig, TH_ENC_PB, why, sizeof(why)) == 0,
                      "request %d: %s", k, why);
        TH_ASSERT(th_expect_add(e[sig], d) == 0);
    }
    th_proc *sw = th_stack_spillway(s);
    int64_t t0 = th_now_ms();
    TH_ASSERT(th_proc_signal(sw, SIGTERM) == 0);
    int status = 0;
    TH_ASSERT_MSG(th_proc_wait_exit(sw, 12000, &status) == 0,
                  "spillway still running 12 s after SIGTERM");
    printf("# spillway exited %lld ms after SIGTERM\n", (long long)(th_now_ms() - t0));
    TH_ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "exit status: %s %d", WIFEXITED(status) ? "exited" : "killed by signal",
                  WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    /* Everything was acknowledged upstream before the exit. */
    for (int sig = 0; sig < SIG_COUNT; sig++)
        TH_ASSERT_MSG(th_stack_check_received(s, (sw_signal)sig, e[sig], 0, 0, why,
                                              sizeof(why)) == 0,
                      "%s after shutdown: %s", sw_signal_name((sw_signal)sig), why);
}

/* SIGTERM on an idle collector: a quick, clean exit. */
static void t_sigterm_idle(void)
{
    th_stack *s = th_stack_start(NULL);
    TH_ASSERT_MSG(s, "stack did not start");
    th_proc *sw = th_stack_spillway(s);
    int status = 0;
    TH_ASSERT(th_proc_signal(sw, SIGTERM) == 0);
    TH_ASSERT_MSG(th_proc_wait_exit(sw, 5000, &status) == 0, "still running 5 s after SIGTERM");
    TH_ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status 0x%x", status);
}

#define HANG_SPANS 20
#define HANG_REQUESTS 12

/* GET /readyz until it answers 503, up to timeout_ms. Returns the last status. */
static int wait_not_ready(th_stack *s, int timeout_ms)
{
    int64_t deadline = th_now_ms() + timeout_ms;
    int status = 0;
    for (;;) {
        const th_resp *r = th_stack_telemetry(s, "/readyz");
        status = r ? r->status : -1;
        if (status == 503 || th_now_ms() >= deadline) return status;
        th_nap_ms(20);
    }
}

/* The upstream hangs or keeps failing (mode): the drain cannot finish.
 * Meanwhile spillway answers; a second SIGTERM ends it at once and the DLQ
 * holds what was accepted. */
static void drain_case(const char *mode)
{
    char why[1024], path[128];
    th_stack_opts o = {.shutdown_timeout = "60s",
                       .retry_yaml = "max_elapsed_time: 1h"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    snprintf(path, sizeof path, "/admin/outage?seconds=3600&mode=%s", mode);
    TH_ASSERT_MSG(th_stack_mock_post(s, path) == 200, "outage %s", mode);
    th_lines *sent = th_lines_new();
    th_http *c = th_stack_client(s);
    TH_ASSERT(sent && c);
    for (int k = 0; k < HANG_REQUESTS; k++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, 3000 + (uint32_t)k, HANG_SPANS);
        TH_ASSERT(d);
        TH_ASSERT_MSG(th_send_ok(c, d, sent, why, sizeof why) == 0, "%s", why);
        th_otlp_free(d);
    }
    th_http_free(c);
    th_proc *sw = th_stack_spillway(s);
    TH_ASSERT(th_proc_signal(sw, SIGTERM) == 0);
    int st = wait_not_ready(s, 5000);
    TH_ASSERT_MSG(st == 503, "/readyz answered %d during the drain, want 503", st);
    const th_resp *ready = th_stack_telemetry(s, "/readyz");
    TH_ASSERT_MSG(ready && strstr((const char *)ready->body, "\"pipeline\":{\"ready\":false"),
                  "/readyz does not name the pipeline as not ready: %.300s",
                  ready ? (const char *)ready->body : "");
    c = th_stack_client(s);
    TH_ASSERT(c);
    th_otlp *late = th_otlp_new(SIG_TRACES, 3999, HANG_SPANS);
    TH_ASSERT(late);
    const th_resp *r = th_otlp_send(c, late, TH_ENC_PB);
    TH_ASSERT_MSG(r, "request during the drain: %s", th_http_error(c));
    char ra[32] = "";
    TH_ASSERT_MSG(r->status == 503, "request during the drain answered %d", r->status);
    TH_ASSERT_MSG(th_resp_header(r, "Retry-After", ra, sizeof ra), "503 without Retry-After");
    printf("# upstream %s, during the drain: /readyz 503, intake 503 Retry-After: %s\n", mode,
           ra);
    th_http_free(c);
    th_otlp_free(late);
    TH_ASSERT_MSG(th_proc_alive(sw), "spillway exited before the second signal");

    int64_t t0 = th_now_ms();
    TH_ASSERT(th_proc_signal(sw, SIGTERM) == 0);
    int status = 0;
    TH_ASSERT_MSG(th_proc_wait_exit(sw, 15000, &status) == 0,
                  "still running 15 s after the second SIGTERM (shutdown_timeout 60 s)");
    printf("# exited %lld ms after the second SIGTERM\n", (long long)(th_now_ms() - t0));
    TH_ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status 0x%x", status);
    long recs = th_stack_dlq_records(s);
    printf("# DLQ records after the exit: %ld\n", recs);
    TH_ASSERT_MSG(recs > 0, "nothing in the DLQ after the exit");

    /* Everything acknowledged arrives once the DLQ is replayed. */
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=0") == 200, "end of outage");
    TH_ASSERT_MSG(th_stack_restart_spillway(s) == 0, "restart");
    th_cover cov;
    int rc = th_stack_wait_cover(s, SIG_TRACES, sent, NULL, 60000, &cov, why, sizeof why);
    printf("# after the restart the upstream has %ld spans (%ld required), %ld duplicates\n",
           cov.received, cov.required, cov.dups);
    TH_ASSERT_MSG(rc == 0, "acknowledged spans after the restart: %s", why);
}

static void t_drain_hung_upstream_second_signal(void) { drain_case("hang"); }
/* Failing requests (503) back off between attempts, with nothing in
 * flight: the drain answers the same way and a second signal ends it. */
static void t_drain_failing_upstream_second_signal(void) { drain_case("503"); }

/* Upstream down, breaker open: the exporter stores everything in the DLQ
 * at once, so the drain does not wait for shutdown_timeout. */
static void t_sigterm_breaker_open(void)
{
    char why[1024];
    th_stack_opts o = {.shutdown_timeout = "60s", .retry_yaml = "max_elapsed_time: 1h"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    TH_ASSERT(th_stack_mock_post(s, "/admin/outage?seconds=3600&mode=refuse") == 200);
    th_lines *sent = th_lines_new();
    th_http *c = th_stack_client(s);
    TH_ASSERT(sent && c);
    int64_t deadline = th_now_ms() + 20000;
    double state = 0;
    for (int k = 0; state != 2 && th_now_ms() < deadline; k++) {
        th_otlp *d = th_otlp_new(SIG_LOGS, 7000 + (uint32_t)k, 10);
        TH_ASSERT(d);
        TH_ASSERT_MSG(th_send_ok(c, d, sent, why, sizeof why) == 0, "%s", why);
        th_otlp_free(d);
        const char *text = th_stack_metrics(s);
        state = text ? th_prom_sum(text, "spillway_exporter_circuit_state", NULL, NULL) : 0;
        if (state != 2) th_nap_ms(50);
    }
    th_http_free(c);
    TH_ASSERT_MSG(state == 2, "the circuit breaker did not open within 20 s");
    th_proc *sw = th_stack_spillway(s);
    int64_t t0 = th_now_ms();
    int status = 0;
    TH_ASSERT(th_proc_signal(sw, SIGTERM) == 0);
    TH_ASSERT_MSG(th_proc_wait_exit(sw, 15000, &status) == 0,
                  "still running 15 s after SIGTERM with the breaker open (shutdown_timeout 60 s)");
    printf("# breaker open: exited %lld ms after SIGTERM\n", (long long)(th_now_ms() - t0));
    TH_ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "exit status 0x%x", status);
    TH_ASSERT(th_stack_mock_post(s, "/admin/outage?seconds=0") == 200);
    TH_ASSERT_MSG(th_stack_restart_spillway(s) == 0, "restart");
    th_cover cov;
    int rc = th_stack_wait_cover(s, SIG_LOGS, sent, NULL, 60000, &cov, why, sizeof why);
    TH_ASSERT_MSG(rc == 0, "acknowledged logs after the restart: %s", why);
}

/* SIGHUP, SIGUSR1, SIGUSR2, SIGALRM: spillway keeps running and serving. */
static void t_other_signals_ignored(void)
{
    char why[512];
    static const int sigs[] = {SIGHUP, SIGUSR1, SIGUSR2, SIGALRM};
    th_stack *s = th_stack_start(NULL);
    TH_ASSERT_MSG(s, "stack did not start");
    th_proc *sw = th_stack_spillway(s);
    th_http *c = th_stack_client(s);
    TH_ASSERT(c);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
        TH_ASSERT(th_proc_signal(sw, sigs[i]) == 0);
        th_otlp *d = th_otlp_new(SIG_LOGS, 5000 + (uint32_t)i, 3);
        TH_ASSERT(d);
        const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
        TH_ASSERT_MSG(r && th_otlp_check_success(r, SIG_LOGS, TH_ENC_PB, why, sizeof why) == 0,
                      "request after signal %d: %s", sigs[i], r ? why : th_http_error(c));
        th_otlp_free(d);
        const th_resp *ready = th_stack_telemetry(s, "/readyz");
        TH_ASSERT_MSG(ready && ready->status == 200, "/readyz after signal %d", sigs[i]);
    }
    th_http_free(c);
    TH_ASSERT_MSG(th_proc_alive(sw), "spillway exited after a signal it should ignore");
    /* Had one of them ended the process, the status would say so. */
    int status = 0;
    TH_ASSERT(th_proc_signal(sw, SIGTERM) == 0);
    TH_ASSERT_MSG(th_proc_wait_exit(sw, 10000, &status) == 0, "still running after SIGTERM");
    TH_ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "exit status 0x%x (killed by signal %d?)", status,
                  WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

int main(void)
{
    TH_ICASE(t_sigterm_flushes_everything);
    TH_ICASE(t_sigterm_idle);
    TH_ICASE(t_drain_hung_upstream_second_signal);
    TH_ICASE(t_drain_failing_upstream_second_signal);
    TH_ICASE(t_sigterm_breaker_open);
    TH_ICASE(t_other_signals_ignored);
    return th_done();
}
