/* test_exp_circuit.c — the circuit breaker on an event loop: tickets and
 * outcomes through exp_circuit_record, the metric, the change callback,
 * the probe timer's wake-up once open_duration passed, forgetting an
 * abandoned probe, and the log note. */
#include "exporters/otlp/exp_circuit.h"

#include <event2/event.h>
#include <stdatomic.h>
#include <string.h>

#include "testing/lib/th.h"
#include "exporters/otlp/exp_metrics.h"

typedef struct env {
    struct event_base *base;
    cfg *c;
    sw_metrics *m;
    exp_circuit *k;
    int changes;
    brk_state last;
    int wakes;
} env;

static void on_change(void *arg, brk_state to)
{
    env *v = arg;
    v->changes++;
    v->last = to;
}

static void on_wake(void *arg)
{
    ((env *)arg)->wakes++;
}

static void env_init(env *v, uint32_t failures, uint64_t open_ms)
{
    memset(v, 0, sizeof *v);
    TH_ASSERT((v->base = event_base_new()) != NULL);
    TH_ASSERT((v->c = cfg_defaults()) != NULL);
    v->c->exporter.cb_consecutive_failures = failures;
    v->c->exporter.cb_open_duration_ms = open_ms;
    TH_ASSERT((v->m = metrics_new()) != NULL);
    v->k = exp_circuit_new(v->base, v->c, exp_metrics_get(v->m), on_change, on_wake, v);
    TH_ASSERT(v->k);
}

static void env_destroy(env *v)
{
    exp_circuit_free(v->k);
    event_base_free(v->base);
    metrics_free(v->m);
    cfg_free(v->c);
}

/* One attempt answered with code; asserts it was allowed. */
static void attempt(env *v, int code)
{
    brk_ticket t = exp_circuit_allow(v->k);
    TH_ASSERT(t != BRK_DENIED);
    exp_circuit_record(v->k, &t, code);
    TH_ASSERT_EQ_INT(t, BRK_DENIED); /* recorded once */
}

static void t_opens_and_probes(void)
{
    env v;
    env_init(&v, 2, 300); /* long enough to see it blocked under a sanitizer */
    exp_circuit_set_open_note(v.k, "items wait");
    attempt(&v, 200);
    attempt(&v, 503);
    TH_ASSERT_EQ_INT(exp_circuit_state(v.k), BRK_CLOSED);
    TH_ASSERT(!exp_circuit_blocked(v.k));
    attempt(&v, 0); /* no answer: the second failure in a row */
    TH_ASSERT_EQ_INT(exp_circuit_state(v.k), BRK_OPEN);
    TH_ASSERT_EQ_INT(v.changes, 1);
    TH_ASSERT_EQ_INT(v.last, BRK_OPEN);
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(v.m)->exp_circuit_state), 2);
    TH_ASSERT(exp_circuit_blocked(v.k));
    TH_ASSERT_EQ_INT(exp_circuit_allow(v.k), BRK_DENIED);
    /* the probe timer wakes the owner once open_duration passed */
    for (int i = 0; i < 2000 && exp_circuit_blocked(v.k); i++)
        event_base_loop(v.base, EVLOOP_ONCE);
    TH_ASSERT(!exp_circuit_blocked(v.k));
    TH_ASSERT(v.wakes >= 1);
    brk_ticket p = exp_circuit_allow(v.k);
    TH_ASSERT_EQ_INT(p, BRK_PROBE);
    TH_ASSERT_EQ_INT(exp_circuit_state(v.k), BRK_HALF_OPEN);
    TH_ASSERT(exp_circuit_blocked(v.k)); /* the probe is out */
    exp_circuit_record(v.k, &p, 204);
    TH_ASSERT_EQ_INT(exp_circuit_state(v.k), BRK_CLOSED);
    TH_ASSERT_EQ_INT(v.last, BRK_CLOSED);
    TH_ASSERT_EQ_INT(atomic_load(&exp_metrics_get(v.m)->exp_circuit_state), 0);
    env_destroy(&v);
}

/* A probe abandoned without an answer is given back: another may go. */
static void t_forget_probe(void)
{
    env v;
    env_init(&v, 1, 1);
    attempt(&v, 502);
    TH_ASSERT_EQ_INT(exp_circuit_state(v.k), BRK_OPEN);
    for (int i = 0; i < 2000 && exp_circuit_blocked(v.k); i++)
        event_base_loop(v.base, EVLOOP_ONCE);
    brk_ticket p = exp_circuit_allow(v.k);
    TH_ASSERT_EQ_INT(p, BRK_PROBE);
    exp_circuit_forget(v.k, &p);
    TH_ASSERT_EQ_INT(p, BRK_DENIED);
    p = exp_circuit_allow(v.k);
    TH_ASSERT_EQ_INT(p, BRK_PROBE);
    exp_circuit_record(v.k, &p, 429);
    TH_ASSERT_EQ_INT(exp_circuit_state(v.k), BRK_OPEN);
    exp_circuit_stop(v.k);
    env_destroy(&v);
}

/* Recording a denied ticket changes nothing. */
static void t_denied_ticket_ignored(void)
{
    env v;
    env_init(&v, 1, 60000);
    brk_ticket t = BRK_DENIED;
    exp_circuit_record(v.k, &t, 503);
    TH_ASSERT_EQ_INT(exp_circuit_state(v.k), BRK_CLOSED);
    TH_ASSERT_EQ_INT(v.changes, 0);
    env_destroy(&v);
}

int main(void)
{
    TH_RUN(t_opens_and_probes);
    TH_RUN(t_forget_probe);
    TH_RUN(t_denied_ticket_ignored);
    return th_done();
}
