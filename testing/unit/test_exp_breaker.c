/* test_exp_breaker.c — the exporter's circuit breaker with an injected clock:
 * every transition, the 429 ratio and its minimum sample, the sliding
 * window, the single half-open probe, stale answers and the listener. */
#include "exporters/otlp/exp_breaker.h"

#include "testing/lib/th.h"

#define S(x) ((int64_t)(x) * 1000000000LL)
#define MS(x) ((int64_t)(x) * 1000000LL)

/* Records every transition the listener sees. */
typedef struct seen {
    int n;
    brk_state from[16], to[16];
    brk_why why[16];
} seen;

static void on_change(void *arg, brk_state from, brk_state to, brk_why why)
{
    seen *s = arg;
    if (s->n < 16) {
        s->from[s->n] = from;
        s->to[s->n] = to;
        s->why[s->n] = why;
    }
    s->n++;
}

/* The breaker's defaults: the config schema's. */
static void config_defaults(brk_config *bc)
{
    cfg *c = cfg_defaults();
    TH_ASSERT(c);
    brk_config_from_cfg(bc, c);
    cfg_free(c);
}

static void init_default(brk_circuit *b, seen *s)
{
    brk_config c;
    config_defaults(&c);
    memset(s, 0, sizeof *s);
    brk_init(b, &c, on_change, s);
}

/* Sends one request at t and records o; asserts it was allowed. */
static void one(brk_circuit *b, int64_t t, brk_outcome o)
{
    brk_ticket k = brk_allow(b, t);
    TH_ASSERT_EQ_INT(k, BRK_ALLOWED);
    brk_record(b, t, k, o);
}

static void t_defaults(void)
{
    brk_config c;
    config_defaults(&c);
    TH_ASSERT_EQ_INT(c.consecutive_failures, 5);
    TH_ASSERT(c.ratio_429 == 0.30);
    TH_ASSERT_EQ_INT(c.window_ns, S(30));
    TH_ASSERT_EQ_INT(c.open_duration_ns, S(30));
    TH_ASSERT_EQ_INT(c.min_requests, 10);
    TH_ASSERT_EQ_INT(BRK_CLOSED, 0);
    TH_ASSERT_EQ_INT(BRK_HALF_OPEN, 1);
    TH_ASSERT_EQ_INT(BRK_OPEN, 2);
    TH_ASSERT_EQ_STR(brk_state_name(BRK_HALF_OPEN), "half-open");
    TH_ASSERT_EQ_STR(brk_why_name(BRK_WHY_RATIO_429), "429 ratio");
}

static void t_consecutive_opens(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    int64_t t = S(100);
    for (int i = 0; i < 4; i++) one(&b, t + MS(i), BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    one(&b, t + MS(5), BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_OPEN);
    TH_ASSERT_EQ_INT(s.n, 1);
    TH_ASSERT_EQ_INT(s.from[0], BRK_CLOSED);
    TH_ASSERT_EQ_INT(s.to[0], BRK_OPEN);
    TH_ASSERT_EQ_INT(s.why[0], BRK_WHY_CONSECUTIVE);
    TH_ASSERT_EQ_INT(brk_transitions(&b, BRK_WHY_CONSECUTIVE), 1);
    /* open: nothing goes through until open_duration has passed */
    TH_ASSERT_EQ_INT(brk_allow(&b, t + MS(6)), BRK_DENIED);
    TH_ASSERT_EQ_INT(brk_allow(&b, t + MS(5) + S(30) - 1), BRK_DENIED);
    TH_ASSERT_EQ_INT(b.denied, 2);
    TH_ASSERT_EQ_INT(brk_next_allow_ns(&b, t + MS(6)), t + MS(5) + S(30));
}

static void t_success_resets_run(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    int64_t t = S(1);
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < 4; i++) one(&b, t, BRK_FAILURE);
        one(&b, t, BRK_SUCCESS);
        t += S(10); /* keeps the 429-free window irrelevant */
    }
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    TH_ASSERT_EQ_INT(s.n, 0);
    TH_ASSERT_EQ_INT(brk_next_allow_ns(&b, t), t);
}

static void t_429_counts_as_failure(void)
{
    brk_circuit b;
    seen s;
    brk_config c;
    config_defaults(&c);
    c.ratio_429 = 1.0; /* only an all-429 window trips the ratio */
    c.min_requests = 1000;
    memset(&s, 0, sizeof s);
    brk_init(&b, &c, on_change, &s);
    one(&b, S(1), BRK_THROTTLED);
    one(&b, S(1), BRK_FAILURE);
    one(&b, S(1), BRK_THROTTLED);
    one(&b, S(1), BRK_FAILURE);
    one(&b, S(1), BRK_THROTTLED);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_OPEN);
    TH_ASSERT_EQ_INT(s.why[0], BRK_WHY_CONSECUTIVE);
}

static void t_ratio_needs_min_sample(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    /* 9 requests, 4 of them 429 (44 %): fewer than min_requests (10) */
    int64_t t = S(50);
    for (int i = 0; i < 9; i++) one(&b, t, (i % 2) ? BRK_THROTTLED : BRK_SUCCESS);
    uint64_t req, thr;
    brk_window(&b, t, &req, &thr);
    TH_ASSERT_EQ_INT(req, 9);
    TH_ASSERT_EQ_INT(thr, 4);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    one(&b, t, BRK_SUCCESS); /* 4 of 10: a success never opens it */
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    one(&b, t, BRK_THROTTLED); /* 5 of 11 */
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_OPEN);
    TH_ASSERT_EQ_INT(s.why[0], BRK_WHY_RATIO_429);
    TH_ASSERT_EQ_INT(brk_transitions(&b, BRK_WHY_RATIO_429), 1);
}

static void t_ratio_below_threshold(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    int64_t t = S(60);
    for (int i = 0; i < 10; i++) one(&b, t, BRK_SUCCESS);
    one(&b, t, BRK_THROTTLED);
    one(&b, t, BRK_THROTTLED);
    one(&b, t, BRK_SUCCESS);
    one(&b, t, BRK_THROTTLED); /* 3 of 14 = 21 % */
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    one(&b, t, BRK_THROTTLED); /* 4 of 15 = 27 % */
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    one(&b, t, BRK_THROTTLED); /* 5 of 16 = 31 % */
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_OPEN);
    TH_ASSERT_EQ_INT(s.why[0], BRK_WHY_RATIO_429);
}

static void t_ratio_exact_threshold(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    int64_t t = S(7);
    for (int i = 0; i < 7; i++) one(&b, t, BRK_SUCCESS);
    one(&b, t, BRK_THROTTLED);
    one(&b, t, BRK_THROTTLED);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED); /* 9 < min_requests */
    one(&b, t, BRK_THROTTLED);                         /* 3 of 10 = 30 % */
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_OPEN);
    TH_ASSERT_EQ_INT(s.why[0], BRK_WHY_RATIO_429);
}

static void t_below_ratio_stays_closed(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    /* a steady 25 % of 429s, never in a run of 5 */
    int64_t t = S(1000);
    for (int i = 0; i < 400; i++) {
        one(&b, t, (i % 4 == 3) ? BRK_THROTTLED : BRK_SUCCESS);
        t += MS(100);
    }
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    uint64_t req, thr;
    brk_window(&b, t, &req, &thr);
    TH_ASSERT(req >= 290 && req <= 300);
    TH_ASSERT(thr * 4 <= req + 4);
}

static void t_window_slides(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    int64_t t = S(200);
    /* 4 429s at t, separated by successes */
    for (int i = 0; i < 4; i++) {
        one(&b, t, BRK_THROTTLED);
        one(&b, t, BRK_SUCCESS);
    }
    uint64_t req, thr;
    brk_window(&b, t + S(29), &req, &thr);
    TH_ASSERT_EQ_INT(req, 8);
    TH_ASSERT_EQ_INT(thr, 4);
    /* 30 s later those have expired: the window holds only what follows */
    int64_t u = t + S(30);
    brk_window(&b, u, &req, &thr);
    TH_ASSERT_EQ_INT(req, 0);
    TH_ASSERT_EQ_INT(thr, 0);
    for (int i = 0; i < 9; i++) one(&b, u, BRK_SUCCESS);
    one(&b, u, BRK_THROTTLED); /* 1 of 10: had the old 429s stayed, 5 of 18 */
    one(&b, u, BRK_THROTTLED); /* 2 of 11 */
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    /* a gap longer than the ring clears it all at once */
    brk_window(&b, u + S(3600), &req, &thr);
    TH_ASSERT_EQ_INT(req, 0);
    /* a clock that goes back stays in the newest bucket */
    brk_window(&b, u, &req, &thr);
    TH_ASSERT_EQ_INT(req, 0);
}

static void t_window_partial_expiry(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    int64_t t = S(300);
    for (int sec = 0; sec < 10; sec++) one(&b, t + S(sec), BRK_SUCCESS);
    uint64_t req, thr;
    brk_window(&b, t + S(9), &req, &thr);
    TH_ASSERT_EQ_INT(req, 10);
    brk_window(&b, t + S(34), &req, &thr); /* seconds 0..4 have left */
    TH_ASSERT_EQ_INT(req, 5);
}

/* Opens the breaker at t with 5 failures. */
static void open_at(brk_circuit *b, int64_t t)
{
    for (int i = 0; i < 5; i++) one(b, t, BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_get_state(b), BRK_OPEN);
}

static void t_half_open_single_probe(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    open_at(&b, S(10));
    int64_t t = S(40);
    brk_ticket p = brk_allow(&b, t);
    TH_ASSERT_EQ_INT(p, BRK_PROBE);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_HALF_OPEN);
    TH_ASSERT_EQ_INT(s.n, 2);
    TH_ASSERT_EQ_INT(s.why[1], BRK_WHY_OPEN_ELAPSED);
    for (int i = 0; i < 100; i++) TH_ASSERT_EQ_INT(brk_allow(&b, t + S(i)), BRK_DENIED);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_HALF_OPEN);
    TH_ASSERT_EQ_INT(brk_next_allow_ns(&b, t), t);
}

static void t_probe_success_closes(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    open_at(&b, S(10));
    brk_ticket p = brk_allow(&b, S(41));
    brk_record(&b, S(42), p, BRK_SUCCESS);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    TH_ASSERT_EQ_INT(s.n, 3);
    TH_ASSERT_EQ_INT(s.from[2], BRK_HALF_OPEN);
    TH_ASSERT_EQ_INT(s.to[2], BRK_CLOSED);
    TH_ASSERT_EQ_INT(s.why[2], BRK_WHY_PROBE_OK);
    /* counters reset: 4 more failures do not open it */
    for (int i = 0; i < 4; i++) one(&b, S(43), BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    uint64_t req, thr;
    brk_window(&b, S(43), &req, &thr);
    TH_ASSERT_EQ_INT(req, 4);
}

static void t_probe_failure_reopens(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    open_at(&b, S(10));
    brk_ticket p = brk_allow(&b, S(40));
    brk_record(&b, S(45), p, BRK_THROTTLED);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_OPEN);
    TH_ASSERT_EQ_INT(s.why[2], BRK_WHY_PROBE_FAILED);
    /* open for a full open_duration from the probe's answer */
    TH_ASSERT_EQ_INT(brk_allow(&b, S(74)), BRK_DENIED);
    TH_ASSERT_EQ_INT(brk_next_allow_ns(&b, S(50)), S(75));
    p = brk_allow(&b, S(75));
    TH_ASSERT_EQ_INT(p, BRK_PROBE);
    brk_record(&b, S(76), p, BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_OPEN);
    TH_ASSERT_EQ_INT(brk_transitions(&b, BRK_WHY_PROBE_FAILED), 2);
    TH_ASSERT_EQ_INT(brk_transitions(&b, BRK_WHY_OPEN_ELAPSED), 2);
}

static void t_stale_answers_ignored(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    /* three requests in flight when the breaker opens */
    brk_ticket late[3];
    for (int i = 0; i < 3; i++) late[i] = brk_allow(&b, S(1));
    open_at(&b, S(1));
    brk_record(&b, S(2), late[0], BRK_SUCCESS); /* while OPEN */
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_OPEN);
    brk_ticket p = brk_allow(&b, S(31));
    brk_record(&b, S(32), late[1], BRK_SUCCESS); /* while HALF_OPEN: not the probe */
    brk_record(&b, S(32), late[2], BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_HALF_OPEN);
    TH_ASSERT_EQ_INT(b.stale, 3);
    brk_record(&b, S(33), p, BRK_SUCCESS);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    /* a probe ticket recorded twice changes nothing the second time */
    brk_record(&b, S(34), p, BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    brk_record(&b, S(34), BRK_DENIED, BRK_FAILURE);
    TH_ASSERT_EQ_INT(b.run, 0);
}

static void t_cancelled_probe(void)
{
    brk_circuit b;
    seen s;
    init_default(&b, &s);
    open_at(&b, S(0));
    brk_ticket p = brk_allow(&b, S(30));
    TH_ASSERT_EQ_INT(p, BRK_PROBE);
    brk_cancel(&b, p);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_HALF_OPEN);
    TH_ASSERT_EQ_INT(s.n, 2); /* no extra transition */
    p = brk_allow(&b, S(30));
    TH_ASSERT_EQ_INT(p, BRK_PROBE);
    TH_ASSERT_EQ_INT(brk_allow(&b, S(30)), BRK_DENIED);
    brk_cancel(&b, BRK_ALLOWED); /* no effect */
    TH_ASSERT_EQ_INT(brk_allow(&b, S(30)), BRK_DENIED);
    brk_record(&b, S(31), p, BRK_SUCCESS);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
}

static void t_rules_disabled(void)
{
    brk_circuit b;
    brk_config c;
    config_defaults(&c);
    c.consecutive_failures = 0;
    c.ratio_429 = 0;
    c.min_requests = 0;
    brk_init(&b, &c, NULL, NULL);
    for (int i = 0; i < 1000; i++) one(&b, S(1), BRK_THROTTLED);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_CLOSED);
    /* min_requests 0 acts as 1; tiny windows keep a 1 ns bucket */
    c.ratio_429 = 0.5;
    c.window_ns = 5;
    brk_init(&b, &c, NULL, NULL);
    one(&b, 100, BRK_THROTTLED);
    TH_ASSERT_EQ_INT(brk_get_state(&b), BRK_OPEN);
}

/* HTTP answers as breaker outcomes: only 429 throttles; no answer and 5xx
 * fail; 2xx and permanent 4xx show an upstream that is up. */
static void t_outcome_of_status(void)
{
    TH_ASSERT_EQ_INT(brk_outcome_of_status(200), BRK_SUCCESS);
    TH_ASSERT_EQ_INT(brk_outcome_of_status(204), BRK_SUCCESS);
    TH_ASSERT_EQ_INT(brk_outcome_of_status(400), BRK_SUCCESS);
    TH_ASSERT_EQ_INT(brk_outcome_of_status(401), BRK_SUCCESS);
    TH_ASSERT_EQ_INT(brk_outcome_of_status(413), BRK_SUCCESS);
    TH_ASSERT_EQ_INT(brk_outcome_of_status(429), BRK_THROTTLED);
    TH_ASSERT_EQ_INT(brk_outcome_of_status(0), BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_outcome_of_status(301), BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_outcome_of_status(307), BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_outcome_of_status(500), BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_outcome_of_status(502), BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_outcome_of_status(503), BRK_FAILURE);
    TH_ASSERT_EQ_INT(brk_outcome_of_status(504), BRK_FAILURE);
}

int main(void)
{
    TH_RUN(t_defaults);
    TH_RUN(t_consecutive_opens);
    TH_RUN(t_success_resets_run);
    TH_RUN(t_429_counts_as_failure);
    TH_RUN(t_ratio_needs_min_sample);
    TH_RUN(t_ratio_below_threshold);
    TH_RUN(t_ratio_exact_threshold);
    TH_RUN(t_below_ratio_stays_closed);
    TH_RUN(t_window_slides);
    TH_RUN(t_window_partial_expiry);
    TH_RUN(t_half_open_single_probe);
    TH_RUN(t_probe_success_closes);
    TH_RUN(t_probe_failure_reopens);
    TH_RUN(t_stale_answers_ignored);
    TH_RUN(t_cancelled_probe);
    TH_RUN(t_rules_disabled);
    TH_RUN(t_outcome_of_status);
    return th_done();
}
