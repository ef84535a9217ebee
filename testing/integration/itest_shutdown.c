/* itest_shutdown.c — SIGTERM right after accepting data: spillway flushes
 * everything upstream (a slow one) within shutdown_timeout and exits 0. */
#include <signal.h>
#include <stdio.h>
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

int main(void)
{
    TH_ICASE(t_sigterm_flushes_everything);
    TH_ICASE(t_sigterm_idle);
    return th_done();
}
