/* exp_circuit.h — the circuit breaker (exp_breaker.h) on an event loop.
 *
 * Wraps the pure state machine with the clock, a probe timer and the
 * metric: every attempt asks exp_circuit_allow() first and keeps its
 * ticket; every answer is recorded once with exp_circuit_record(): 2xx and
 * permanent 4xx answers are SUCCESS (the upstream is up), 429 THROTTLED,
 * no answer and 5xx FAILURE. Transitions are logged (WARN when it opens,
 * INFO otherwise), published in spillway_exporter_circuit_state and passed
 * to change(arg, to); while OPEN a timer calls wake(arg) when the probe
 * may go. Both callbacks are given at construction.
 *
 * Thread: the event_base's (the export thread); new/free while that loop
 * does not run. cfg and metrics are borrowed.
 */
#ifndef SW_EXP_CIRCUIT_H
#define SW_EXP_CIRCUIT_H

#include "config/cfg.h"
#include "exporters/otlp/exp_breaker.h"
#include "exporters/otlp/exp_metrics.h"

struct event_base;

typedef struct exp_circuit exp_circuit;

typedef void (*exp_circuit_change_fn)(void *arg, brk_state to);
typedef void (*exp_circuit_wake_fn)(void *arg);

/* Returns owned, or NULL. m (borrowed, not NULL) gets the breaker's state. */
exp_circuit *exp_circuit_new(struct event_base *base, const cfg *c, exp_metrics *m,
                             exp_circuit_change_fn change, exp_circuit_wake_fn wake, void *arg);
void exp_circuit_free(exp_circuit *k); /* NULL-safe */
/* Configuration reload: consecutive_failures, ratio_429 and open_duration
 * of c (borrowed) apply from the next outcome; the window needs a restart. */
void exp_circuit_reconfigure(exp_circuit *k, const cfg *c);
/* What happens to items while it is open, for the log line (borrowed,
 * static string). */
void exp_circuit_set_open_note(exp_circuit *k, const char *note);
/* May a request go now? BRK_DENIED, or the attempt's ticket. */
brk_ticket exp_circuit_allow(exp_circuit *k);
/* Records the answer of an attempt (code 0: none) and clears *t. */
void exp_circuit_record(exp_circuit *k, brk_ticket *t, int code);
/* Gives back the ticket of an attempt abandoned without an answer. */
void exp_circuit_forget(exp_circuit *k, brk_ticket *t);
/* 1 while nothing may be sent: OPEN before open_duration passed, or
 * HALF_OPEN with the probe out. */
int exp_circuit_blocked(exp_circuit *k);
brk_state exp_circuit_state(exp_circuit *k);
/* Stops the probe timer (the loop is ending). */
void exp_circuit_stop(exp_circuit *k);

#endif
