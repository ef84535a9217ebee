/* exp_breaker.h — the exporter's circuit breaker, as a pure state machine.
 *
 * No I/O, no libevent, no clock reads: the caller passes the monotonic time
 * in nanoseconds, so every transition is unit-testable with an injected
 * clock. Embedded in the exporter and used only on the export thread; the
 * struct is visible so it can be embedded, its fields are private.
 *
 * States (values match spillway_exporter_circuit_state):
 *   CLOSED (0)    requests flow. Opens after `consecutive_failures` failed
 *                 requests in a row (FAILURE and THROTTLED both count; any
 *                 SUCCESS resets the run), or when a 429 is recorded and, among
 *                 the requests recorded within `window`, there are at least
 *                 `min_requests` and at least `ratio_429` of them were 429.
 *   OPEN (2)      no requests until `open_duration` has passed since opening;
 *                 then the next brk_allow() moves to HALF_OPEN and lets
 *                 exactly one probe through.
 *   HALF_OPEN (1) the probe is outstanding; nothing else is allowed. Probe
 *                 SUCCESS -> CLOSED (run and window cleared); probe FAILURE or
 *                 THROTTLED -> OPEN for another open_duration.
 *
 * DESIGN. The 429 window is a ring of BRK_BUCKETS buckets of window /
 * BRK_BUCKETS each, holding {requests, 429s}, with running totals: a record
 * is O(1) plus clearing the buckets that expired since the last record (at
 * most BRK_BUCKETS). The window therefore slides by whole buckets: an
 * answer leaves it between window - window/BRK_BUCKETS and window after it
 * was recorded.
 *
 * Tickets: brk_allow() returns BRK_DENIED (0), BRK_ALLOWED or BRK_PROBE, and
 * the caller hands that ticket back to brk_record() with the outcome. Only
 * the probe's answer decides HALF_OPEN; answers of requests sent before the
 * breaker opened (still in flight) are counted but change nothing while
 * OPEN or HALF_OPEN. Every request let through must be recorded exactly
 * once; a probe that could not be sent is given back with brk_cancel().
 */
#ifndef SW_EXP_BREAKER_H
#define SW_EXP_BREAKER_H

#include <stdint.h>

#include "config/cfg.h"

#define BRK_BUCKETS 30
#define BRK_DEFAULT_MIN_REQUESTS 10

typedef enum { BRK_CLOSED = 0, BRK_HALF_OPEN = 1, BRK_OPEN = 2 } brk_state;

/* Outcomes of one request; never 0 so a forgotten value is not success. */
typedef enum {
    BRK_SUCCESS = 1,   /* any 2xx; also a permanent refusal (400...): the upstream is up */
    BRK_FAILURE = 2,   /* connection error, timeout, 502/503/504 */
    BRK_THROTTLED = 3, /* 429 */
} brk_outcome;

/* What brk_allow() decided. */
typedef enum { BRK_DENIED = 0, BRK_ALLOWED = 1, BRK_PROBE = 2 } brk_ticket;

/* Why the state changed (for logs and counters). */
typedef enum {
    BRK_WHY_CONSECUTIVE = 0, /* CLOSED -> OPEN: consecutive_failures in a row */
    BRK_WHY_RATIO_429,       /* CLOSED -> OPEN: ratio_429 within window */
    BRK_WHY_PROBE_FAILED,    /* HALF_OPEN -> OPEN */
    BRK_WHY_PROBE_OK,        /* HALF_OPEN -> CLOSED */
    BRK_WHY_OPEN_ELAPSED,    /* OPEN -> HALF_OPEN */
    BRK_WHY_COUNT
} brk_why;

/* Its defaults are the config schema's (config/cfg_schema.c), nowhere
 * else: brk_config_from_cfg() maps exporters.otlphttp.circuit_breaker. */
typedef struct brk_config {
    uint32_t consecutive_failures; /* 0 disables this rule */
    double ratio_429;              /* <= 0 or > 1 disables this rule */
    int64_t window_ns;
    int64_t open_duration_ns;
    uint32_t min_requests;         /* requests within window before the ratio
                                      can open the breaker (0 acts as 1); not a
                                      config key: BRK_DEFAULT_MIN_REQUESTS */
} brk_config;

/* Called on every state change, on the thread calling brk_allow/brk_record.
 * It must not call back into the breaker. */
typedef void (*brk_listener)(void *arg, brk_state from, brk_state to, brk_why why);

typedef struct brk_bucket {
    uint32_t requests, throttled;
} brk_bucket;

typedef struct brk_circuit {
    brk_config c;
    brk_listener fn;           /* may be NULL */
    void *arg;
    brk_state state;
    uint32_t run;              /* consecutive failures (CLOSED) */
    int64_t opened_ns;         /* when OPEN was entered */
    int probe_out;             /* HALF_OPEN: the probe ticket is handed out */
    int64_t bucket_ns;         /* window / BRK_BUCKETS, >= 1 */
    int64_t head;              /* absolute bucket number of the newest bucket */
    brk_bucket ring[BRK_BUCKETS];
    uint64_t win_requests, win_throttled;
    uint64_t transitions[BRK_WHY_COUNT];
    uint64_t denied;           /* brk_allow() answers BRK_DENIED */
    uint64_t stale;            /* records ignored: answered while OPEN/HALF_OPEN */
} brk_circuit;

/* The outcome of an HTTP answer for the breaker (code 0: no answer):
 * 2xx and 4xx other than 429 SUCCESS (a permanent refusal still shows the
 * upstream is up), 429 THROTTLED, no answer, 3xx (not followed) and 5xx
 * FAILURE. */
brk_outcome brk_outcome_of_status(int code);

/* Fills bc from exporters.otlphttp.circuit_breaker of c (borrowed). */
void brk_config_from_cfg(brk_config *bc, const cfg *c);
/* Starts CLOSED with empty counters; copies *c. fn (may be NULL) and arg
 * are borrowed. */
void brk_init(brk_circuit *b, const brk_config *c, brk_listener fn, void *arg);

/* May a request be sent now? See the state table above. */
brk_ticket brk_allow(brk_circuit *b, int64_t now_ns);
/* Records the outcome of a request let through with ticket t. */
void brk_record(brk_circuit *b, int64_t now_ns, brk_ticket t, brk_outcome o);
/* Gives back a probe ticket that was not used: the next brk_allow() may
 * probe again. Other tickets: no effect. */
void brk_cancel(brk_circuit *b, brk_ticket t);

brk_state brk_get_state(const brk_circuit *b);
const char *brk_state_name(brk_state s);
const char *brk_why_name(brk_why w);
/* OPEN: when brk_allow() will let the probe through (to arm a timer);
 * other states: now_ns. */
int64_t brk_next_allow_ns(const brk_circuit *b, int64_t now_ns);
/* Requests and 429s within the window as of now_ns. */
void brk_window(brk_circuit *b, int64_t now_ns, uint64_t *requests, uint64_t *throttled);
/* How many times the breaker changed state for reason w. */
uint64_t brk_transitions(const brk_circuit *b, brk_why w);

#endif
