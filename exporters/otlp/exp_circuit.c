/* exp_circuit.c — the circuit breaker on the export thread (exp_circuit.h). */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_circuit.h"

#include <event2/event.h>
#include <stdlib.h>

#include "runtime/clock.h"
#include "runtime/log.h"

struct exp_circuit {
    brk_circuit brk;
    struct event *ev;          /* OPEN: fires when the probe may go */
    exp_metrics *m;            /* owned by the metrics registry */
    uint64_t open_ms;          /* for the log line */
    const char *open_note;
    exp_circuit_change_fn change;
    exp_circuit_wake_fn wake;
    void *arg;
};

/* libevent measures timeouts from its cached loop time, so a timer may
 * fire slightly before the breaker's own clock says the probe is due: it
 * is then armed again for the rest (plus a millisecond). */
static void arm_probe_timer(exp_circuit *k)
{
    int64_t now = clock_mono_ns();
    int64_t wait = brk_next_allow_ns(&k->brk, now) - now;
    struct timeval tv = clock_ms_to_tv((uint64_t)(wait > 0 ? wait : 0) / 1000000 + 1);
    evtimer_add(k->ev, &tv);
}

static void probe_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    exp_circuit *k = arg;
    (void)fd;
    (void)what;
    if (brk_get_state(&k->brk) == BRK_OPEN && exp_circuit_blocked(k)) arm_probe_timer(k);
    k->wake(k->arg);
}

static void on_transition(void *arg, brk_state from, brk_state to, brk_why why)
{
    exp_circuit *k = arg;
    metrics_gauge_set(&k->m->exp_circuit_state, (int64_t)to);
    if (to == BRK_OPEN) {
        LOG_WARN("circuit breaker %s -> open (%s): no requests upstream for %llu ms; %s",
                 brk_state_name(from), brk_why_name(why), (unsigned long long)k->open_ms,
                 k->open_note);
        arm_probe_timer(k);
    } else {
        LOG_INFO("circuit breaker %s -> %s (%s)", brk_state_name(from), brk_state_name(to),
                 brk_why_name(why));
    }
    k->change(k->arg, to);
}

exp_circuit *exp_circuit_new(struct event_base *base, const cfg *c, exp_metrics *m,
                             exp_circuit_change_fn change, exp_circuit_wake_fn wake, void *arg)
{
    exp_circuit *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    brk_config bc;
    brk_config_from_cfg(&bc, c);
    brk_init(&k->brk, &bc, on_transition, k);
    k->m = m;
    k->open_ms = c->exporter.cb_open_duration_ms;
    k->open_note = "items wait in the queue";
    k->change = change;
    k->wake = wake;
    k->arg = arg;
    metrics_gauge_set(&k->m->exp_circuit_state, BRK_CLOSED);
    if (!(k->ev = evtimer_new(base, probe_timer_cb, k))) {
        free(k);
        return NULL;
    }
    return k;
}

void exp_circuit_reconfigure(exp_circuit *k, const cfg *c)
{
    brk_config bc;
    brk_config_from_cfg(&bc, c);
    /* the window's buckets keep their size: circuit_breaker.window needs a restart */
    k->brk.c.consecutive_failures = bc.consecutive_failures;
    k->brk.c.ratio_429 = bc.ratio_429;
    k->brk.c.open_duration_ns = bc.open_duration_ns;
    k->open_ms = c->exporter.cb_open_duration_ms;
}

void exp_circuit_free(exp_circuit *k)
{
    if (!k) return;
    event_free(k->ev);
    free(k);
}

void exp_circuit_set_open_note(exp_circuit *k, const char *note)
{
    k->open_note = note;
}

brk_ticket exp_circuit_allow(exp_circuit *k)
{
    return brk_allow(&k->brk, clock_mono_ns());
}

void exp_circuit_record(exp_circuit *k, brk_ticket *t, int code)
{
    if (*t == BRK_DENIED) return;
    brk_ticket was = *t;
    *t = BRK_DENIED;
    brk_record(&k->brk, clock_mono_ns(), was, brk_outcome_of_status(code));
}

void exp_circuit_forget(exp_circuit *k, brk_ticket *t)
{
    brk_cancel(&k->brk, *t);
    *t = BRK_DENIED;
}

int exp_circuit_blocked(exp_circuit *k)
{
    brk_state s = brk_get_state(&k->brk);
    if (s == BRK_CLOSED) return 0;
    if (s == BRK_HALF_OPEN) return 1;
    int64_t now = clock_mono_ns();
    return brk_next_allow_ns(&k->brk, now) > now;
}

brk_state exp_circuit_state(exp_circuit *k)
{
    return brk_get_state(&k->brk);
}

void exp_circuit_stop(exp_circuit *k)
{
    event_del(k->ev);
}
