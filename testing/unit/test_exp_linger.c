/* test_exp_linger.c — the exporter's linger policy (exp_linger.h): when an
 * open batch waits for more items, and never past its budget. */
#include <stdint.h>

#include "exporters/otlp/exp_linger.h"
#include "testing/lib/th.h"

#define MS 1000000LL
#define US 1000LL

/* Items of sig arriving every gap_ns, n of them, the first at t0; returns
 * the receive time of the last. */
static int64_t arrivals(exp_linger *l, sw_signal sig, int64_t t0, int64_t gap_ns, int n)
{
    int64_t t = t0;
    for (int i = 0; i < n; i++, t += gap_ns) exp_linger_arrival(l, sig, t);
    return t - gap_ns;
}

/* A 10 ms budget and, unless rtt_ns is 0, one round trip of rtt_ns. */
static exp_linger fresh(int64_t rtt_ns)
{
    exp_linger l;
    exp_linger_init(&l, 10);
    if (rtt_ns) exp_linger_rtt(&l, rtt_ns);
    return l;
}

/* No round trip measured yet, or budget 0: never wait. */
static void t_off_until_known(void)
{
    exp_linger l = fresh(0);
    int64_t last = arrivals(&l, SIG_TRACES, 1000 * MS, 2 * MS, 50);
    TH_ASSERT_EQ_INT(exp_linger_until(&l, SIG_TRACES, last, last), 0);
    exp_linger_rtt(&l, 300 * US);
    TH_ASSERT(exp_linger_until(&l, SIG_TRACES, last, last) > last);
    exp_linger_set_budget(&l, 0);
    TH_ASSERT_EQ_INT(exp_linger_until(&l, SIG_TRACES, last, last), 0);
}

/* Evenly spaced items further apart than the window: sent at once (the
 * workload of one request every 10 ms against a 10 ms budget). */
static void t_sparse_sent_at_once(void)
{
    exp_linger l = fresh(300 * US);
    int64_t t = 1000 * MS;
    for (int i = 0; i < 100; i++, t += 10 * MS) {
        exp_linger_arrival(&l, SIG_TRACES, t);
        TH_ASSERT_EQ_INT(exp_linger_until(&l, SIG_TRACES, t, t), 0);
    }
}

/* A steady 5 ms gap with a 10 ms budget: the first of a pair waits for the
 * second, the second goes at once (its successor would be too late). */
static void t_steady_rate_pairs(void)
{
    exp_linger l = fresh(500 * US);
    int64_t last = arrivals(&l, SIG_TRACES, 1000 * MS, 5 * MS, 40);
    /* window = 10 - 2 x 0.5 - 1 = 8 ms from the oldest item */
    int64_t until = exp_linger_until(&l, SIG_TRACES, last, last);
    TH_ASSERT(until > last);
    TH_ASSERT(until <= last + 8 * MS);
    int64_t second = last + 5 * MS;
    exp_linger_arrival(&l, SIG_TRACES, second);
    TH_ASSERT_EQ_INT(exp_linger_until(&l, SIG_TRACES, last, second), 0);
}

/* A burst: the batch waits shortly after each arrival, and goes about
 * half a millisecond after the last one, not at the deadline. */
static void t_burst_ends_early(void)
{
    exp_linger l = fresh(200 * US);
    int64_t t = 1000 * MS;
    for (int b = 0; b < 10; b++, t += 40 * MS) arrivals(&l, SIG_LOGS, t, 50 * US, 4);
    int64_t first = t;
    int64_t last = arrivals(&l, SIG_LOGS, first, 50 * US, 4);
    int64_t until = exp_linger_until(&l, SIG_LOGS, first, last);
    TH_ASSERT_MSG(until > last && until <= last + 1 * MS, "until %lld ns after the last",
                  (long long)(until - last));
    TH_ASSERT_EQ_INT(exp_linger_until(&l, SIG_LOGS, first, until), 0);
    /* other signals keep their own history */
    TH_ASSERT_EQ_INT(exp_linger_until(&l, SIG_METRICS, first, last), 0);
}

/* However the items come, the wait ends by the deadline: oldest + budget
 * - 2 x RTT - 1 ms. */
static void t_never_past_deadline(void)
{
    exp_linger l = fresh(1 * MS);
    int64_t oldest = 1000 * MS;
    int64_t t = arrivals(&l, SIG_TRACES, oldest - 20 * 100 * US, 100 * US, 20);
    for (int i = 0; i < 200; i++, t += 100 * US) {
        exp_linger_arrival(&l, SIG_TRACES, t);
        int64_t until = exp_linger_until(&l, SIG_TRACES, oldest, t);
        TH_ASSERT(until == 0 || until <= oldest + 7 * MS);
        if (t >= oldest + 7 * MS) TH_ASSERT_EQ_INT(until, 0);
    }
}

/* A slow upstream leaves no room: RTT of 5 ms or more against 10 ms. */
static void t_slow_upstream_no_wait(void)
{
    exp_linger l = fresh(0);
    for (int i = 0; i < 50; i++) exp_linger_rtt(&l, 6 * MS);
    int64_t last = arrivals(&l, SIG_TRACES, 1000 * MS, 100 * US, 50);
    TH_ASSERT_EQ_INT(exp_linger_until(&l, SIG_TRACES, last, last), 0);
}

/* Items of one request share a receive time and count once; a rate that
 * slows down stops the waiting within a few gaps. */
static void t_history(void)
{
    exp_linger l = fresh(300 * US);
    int64_t t = 1000 * MS;
    for (int i = 0; i < 20; i++, t += 3 * MS) {
        exp_linger_arrival(&l, SIG_TRACES, t);
        exp_linger_arrival(&l, SIG_TRACES, t); /* a second class of the same request */
    }
    TH_ASSERT(l.sig[SIG_TRACES].gap_ns > 2 * MS && l.sig[SIG_TRACES].gap_ns <= 3 * MS);
    TH_ASSERT(exp_linger_until(&l, SIG_TRACES, t - 3 * MS, t - 3 * MS) != 0);
    int waited = 0;
    for (int i = 0; i < 20; i++, t += 20 * MS) {
        exp_linger_arrival(&l, SIG_TRACES, t);
        if (exp_linger_until(&l, SIG_TRACES, t, t)) waited = i + 1;
    }
    TH_ASSERT_MSG(waited > 0 && waited <= 8, "still waiting after %d slow items", waited);
}

int main(void)
{
    TH_RUN(t_off_until_known);
    TH_RUN(t_sparse_sent_at_once);
    TH_RUN(t_steady_rate_pairs);
    TH_RUN(t_burst_ends_early);
    TH_RUN(t_never_past_deadline);
    TH_RUN(t_slow_upstream_no_wait);
    TH_RUN(t_history);
    return th_done();
}
