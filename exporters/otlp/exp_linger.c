/* exp_linger.c — the linger policy (see exp_linger.h). */
#include "exporters/otlp/exp_linger.h"

#include <string.h>

#define NS_PER_MS 1000000LL
#define LINGER_SLACK_NS (1 * NS_PER_MS) /* timer and scheduling lateness */
#define LINGER_MIN_WAIT_NS 500000LL     /* after an expected arrival, at least */
#define LINGER_P_ONE 1024u              /* short_p of "always short" */
#define LINGER_P_MIN (LINGER_P_ONE / 2) /* linger when at least half were short */
#define LINGER_AVG_SHIFT 3              /* moving averages weigh the newest 1/8 */

void exp_linger_init(exp_linger *l, uint64_t budget_ms)
{
    memset(l, 0, sizeof *l);
    exp_linger_set_budget(l, budget_ms);
}

void exp_linger_set_budget(exp_linger *l, uint64_t budget_ms)
{
    l->budget_ns = budget_ms > 3600000u ? 3600000LL * NS_PER_MS : (int64_t)budget_ms * NS_PER_MS;
}

/* The longest an open batch can wait, counted from its oldest item; <= 0:
 * no room for waiting at all. */
static int64_t window_ns(const exp_linger *l)
{
    return l->budget_ns - 2 * l->rtt_ns - LINGER_SLACK_NS;
}

static int64_t avg(int64_t cur, int64_t sample)
{
    return cur + (sample - cur) / (1 << LINGER_AVG_SHIFT);
}

void exp_linger_arrival(exp_linger *l, sw_signal sig, int64_t recv_ns)
{
    if ((unsigned)sig >= SIG_COUNT) return;
    exp_linger_sig *s = &l->sig[sig];
    if (s->last_ns && recv_ns <= s->last_ns) return; /* same request, or out of order */
    if (s->last_ns) {
        int64_t gap = recv_ns - s->last_ns;
        int64_t w = window_ns(l);
        int is_short = w > 0 && gap <= w;
        int64_t p = s->short_p;
        p += ((is_short ? (int64_t)LINGER_P_ONE : 0) - p) / (1 << LINGER_AVG_SHIFT);
        s->short_p = (uint32_t)p;
        if (is_short) s->gap_ns = s->gap_ns ? avg(s->gap_ns, gap) : gap;
    }
    s->last_ns = recv_ns;
}

void exp_linger_rtt(exp_linger *l, int64_t rtt_ns)
{
    if (rtt_ns <= 0) rtt_ns = 1;
    l->rtt_ns = l->rtt_ns ? avg(l->rtt_ns, rtt_ns) : rtt_ns;
}

int64_t exp_linger_until(const exp_linger *l, sw_signal sig, int64_t oldest_ns, int64_t now_ns)
{
    if ((unsigned)sig >= SIG_COUNT || l->budget_ns <= 0 || l->rtt_ns <= 0) return 0;
    const exp_linger_sig *s = &l->sig[sig];
    if (s->short_p < LINGER_P_MIN || s->last_ns == 0) return 0;
    int64_t w = window_ns(l);
    if (w <= 0) return 0;
    int64_t deadline = oldest_ns + w;
    int64_t next = s->last_ns + s->gap_ns; /* the next arrival, expected */
    if (next > deadline) return 0;
    int64_t wait = s->gap_ns > LINGER_MIN_WAIT_NS ? s->gap_ns : LINGER_MIN_WAIT_NS;
    int64_t until = next + wait < deadline ? next + wait : deadline;
    return until > now_ns ? until : 0;
}
