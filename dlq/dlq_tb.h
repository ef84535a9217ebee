/* dlq_tb.h — token bucket for DLQ replay (dlq.replay.rate bytes per second).
 *
 * Pure arithmetic on an injected monotonic clock (ns); owned by the replay
 * thread. Tokens refill at `rate` per second up to `burst`. A take of n
 * bytes succeeds once min(n, burst) tokens are available and may leave the
 * bucket negative, so records larger than the burst still pass and the
 * long-run rate stays exactly `rate`; the error over a period T is at most
 * burst / (rate * T).
 */
#ifndef SW_DLQ_TB_H
#define SW_DLQ_TB_H

#include <stdint.h>

typedef struct dlq_tb {
    double rate;        /* bytes per second, > 0 */
    double burst;       /* bytes */
    double tokens;
    int64_t last_ns;
} dlq_tb;

/* Starts full. burst 0: dlq_tb_default_burst(rate). */
void dlq_tb_init(dlq_tb *tb, uint64_t rate, uint64_t burst, int64_t now_ns);
/* A small burst: 1/16 s of rate, at least 4 KiB. */
uint64_t dlq_tb_default_burst(uint64_t rate);
/* 1 and the tokens are taken, or 0 (nothing taken). */
int dlq_tb_take(dlq_tb *tb, uint64_t n, int64_t now_ns);
/* Nanoseconds until a take of n would succeed (0: now). */
int64_t dlq_tb_wait_ns(dlq_tb *tb, uint64_t n, int64_t now_ns);

#endif
