/* exp_linger.h — how long an open batch may wait for more items while a
 * connection is idle: the linger policy, as pure state and functions.
 *
 * At low load the export loop sends an open batch as soon as the queue is
 * drained and a connection is idle, so every client request becomes its
 * own upstream request. When requests come close together (many clients,
 * bursts) a short wait merges them: fewer upstream requests, fewer system
 * calls and wake-ups on both sides. The wait is spent from a budget of
 * receive-to-upstream-ack time (batch.linger, 10 ms by default), so the
 * pipeline's latency stays within it:
 *
 *   deadline = oldest item's receive time + budget - 2 x RTT - 1 ms
 *
 * where RTT is a moving average of the upstream's 2xx round trips (no
 * linger before the first one, none when the upstream is slow). A batch
 * lingers only when the next item is likely to arrive before the
 * deadline: at least half of the recent gaps between items (moving
 * average) were shorter than the longest possible wait, and the next
 * item, expected one short gap after the last, is due before the
 * deadline. It then waits until one more short gap (at least 0.5 ms)
 * after that expected arrival, or the deadline, whichever comes first;
 * every arrival decides again. So evenly spaced requests further apart
 * than the budget are sent at once as before, a burst is sent shortly
 * after its last request, and a steady rate above 1/budget is sent in
 * pairs or more.
 *
 * No clock reads, no I/O, no allocation: the caller passes times
 * (monotonic nanoseconds). The export thread only.
 */
#ifndef SW_EXP_LINGER_H
#define SW_EXP_LINGER_H

#include <stdint.h>

#include "runtime/item.h"

typedef struct exp_linger_sig {
    int64_t last_ns;  /* receive time of the latest item; 0 before the first */
    int64_t gap_ns;   /* moving average of the short gaps; 0 before the first */
    uint32_t short_p; /* moving average of "the gap was short", in 1/1024 */
} exp_linger_sig;

typedef struct exp_linger {
    int64_t budget_ns; /* batch.linger; 0: never linger */
    int64_t rtt_ns;    /* moving average of 2xx round trips; 0 before the first */
    exp_linger_sig sig[SIG_COUNT];
} exp_linger;

/* Resets l with a budget of budget_ms (0: lingering off). */
void exp_linger_init(exp_linger *l, uint64_t budget_ms);
/* Configuration reload: a new budget, history kept. */
void exp_linger_set_budget(exp_linger *l, uint64_t budget_ms);
/* An item of sig received at recv_ns was taken from the queue. Items of
 * one request share a receive time and count once. */
void exp_linger_arrival(exp_linger *l, sw_signal sig, int64_t recv_ns);
/* A 2xx answer came rtt_ns after its request was sent. */
void exp_linger_rtt(exp_linger *l, int64_t rtt_ns);
/* For an open batch of sig whose oldest item was received at oldest_ns:
 * the time until which it may wait, or 0 to send it now. */
int64_t exp_linger_until(const exp_linger *l, sw_signal sig, int64_t oldest_ns, int64_t now_ns);

#endif
