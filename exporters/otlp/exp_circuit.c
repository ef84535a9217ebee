/* exp_circuit.c — the circuit breaker (exp_breaker.h) wired into the
 * export thread.
 *
 * Every attempt asks exp_circuit_allow() first and keeps its ticket in the
 * batch; every answer is recorded once with exp_circuit_record(): 2xx and
 * permanent 4xx answers are SUCCESS (the upstream is up), 429 THROTTLED,
 * no answer and 5xx FAILURE. Transitions are logged (WARN when it opens,
 * INFO otherwise), published in spillway_exporter_circuit_state and in an
 * atomic the replay thread reads. While OPEN a timer wakes the pump when
 * the probe may go. Export thread only.
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_int.h"

#include <event2/event.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

/* libevent measures timeouts from its cached loop time, so a timer may
 * fire slightly before the breaker's own clock says the probe is due: it
 * is then armed again for the rest (plus a millisecond). */
static void arm_probe_timer(exporter *e)
{
    int64_t now = clock_mono_ns();
    int64_t wait = brk_next_allow_ns(&e->brk, now) - now;
    struct timeval tv = clock_ms_to_tv((uint64_t)(wait > 0 ? wait : 0) / 1000000 + 1);
    evtimer_add(e->brk_ev, &tv);
}

static void probe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    exporter *e = arg;
    (void)fd;
    (void)what;
    if (brk_get_state(&e->brk) == BRK_OPEN && exp_circuit_blocked(e)) arm_probe_timer(e);
    exp_schedule_pump(e);
}

static void on_transition(void *arg, brk_state from, brk_state to, brk_why why)
{
    exporter *e = arg;
    metrics_gauge_set(&e->m->exp_circuit_state, (int64_t)to);
    atomic_store(&e->circuit, (int)to);
    if (to == BRK_OPEN) {
        LOG_WARN("circuit breaker %s -> open (%s): no requests upstream for %llu ms; %s",
                 brk_state_name(from), brk_why_name(why),
                 (unsigned long long)e->c->exporter.cb_open_duration_ms,
                 e->sink ? "items go to the DLQ" : "items wait in the queue");
        exp_replay_circuit(e, 0);
        arm_probe_timer(e);
        return;
    }
    LOG_INFO("circuit breaker %s -> %s (%s)", brk_state_name(from), brk_state_name(to),
             brk_why_name(why));
    exp_replay_circuit(e, to == BRK_CLOSED);
}

int exp_circuit_init(exporter *e)
{
    brk_config bc;
    brk_config_from_cfg(&bc, e->c);
    brk_init(&e->brk, &bc, on_transition, e);
    atomic_init(&e->circuit, BRK_CLOSED);
    metrics_gauge_set(&e->m->exp_circuit_state, BRK_CLOSED);
    e->brk_ev = evtimer_new(e->base, probe_timer_cb, e);
    return e->brk_ev ? 0 : SW_ENOMEM;
}

brk_ticket exp_circuit_allow(exporter *e)
{
    return brk_allow(&e->brk, clock_mono_ns());
}

void exp_circuit_record(exporter *e, exp_batch *b, int code)
{
    if (b->ticket == BRK_DENIED) return;
    brk_ticket t = b->ticket;
    b->ticket = BRK_DENIED;
    brk_record(&e->brk, clock_mono_ns(), t, brk_outcome_of_status(code));
}

void exp_circuit_forget(exporter *e, exp_batch *b)
{
    brk_cancel(&e->brk, b->ticket);
    b->ticket = BRK_DENIED;
}

int exp_circuit_blocked(exporter *e)
{
    brk_state s = brk_get_state(&e->brk);
    if (s == BRK_CLOSED) return 0;
    if (s == BRK_HALF_OPEN) return 1;
    int64_t now = clock_mono_ns();
    return brk_next_allow_ns(&e->brk, now) > now;
}

/* With a DLQ every batch is spilled while the breaker is open, so when the
 * probe is due there is often nothing to probe with; and replay (the only
 * way the DLQ drains) waits for the breaker to close. An empty
 * Export<sig>ServiceRequest is a valid request every OTLP upstream must
 * accept: it is the probe. Without a DLQ the next real batch is the probe. */
void exp_circuit_probe_idle(exporter *e)
{
    if (!e->sink || e->draining || sw_fifo_peek(&e->ready) || e->active >= e->n_conns) return;
    if (brk_get_state(&e->brk) != BRK_OPEN || exp_circuit_blocked(e)) return;
    for (int s = 0; s < SIG_COUNT; s++)
        if (e->open[s]) return;
    if (apq_peek_signal(e->q) >= 0) return;
    exp_batch *b = exp_batch_new(e, SIG_TRACES);
    if (!b) return; /* tried again on the next pump */
    exp_batch_seal(e, b);
    b = exp_ready_pop(e);
    b->ticket = exp_circuit_allow(e);
    if (b->ticket == BRK_DENIED) { /* cannot happen: not blocked */
        exp_batch_done(e, b);
        return;
    }
    LOG_INFO("circuit breaker: probing the upstream with an empty request");
    exp_batch_send(e, b);
}
