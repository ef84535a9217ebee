/* dlq_tb.c — see dlq_tb.h. */
#include "dlq/dlq_tb.h"

uint64_t dlq_tb_default_burst(uint64_t rate)
{
    uint64_t b = rate / 16;
    return b < 4096 ? 4096 : b;
}

void dlq_tb_init(dlq_tb *tb, uint64_t rate, uint64_t burst, int64_t now_ns)
{
    tb->rate = rate ? (double)rate : 1.0;
    tb->burst = (double)(burst ? burst : dlq_tb_default_burst(rate));
    tb->tokens = tb->burst;
    tb->last_ns = now_ns;
}

static void refill(dlq_tb *tb, int64_t now_ns)
{
    if (now_ns <= tb->last_ns) return;
    tb->tokens += tb->rate * (double)(now_ns - tb->last_ns) / 1e9;
    if (tb->tokens > tb->burst) tb->tokens = tb->burst;
    tb->last_ns = now_ns;
}

static double need(const dlq_tb *tb, uint64_t n)
{
    return (double)n < tb->burst ? (double)n : tb->burst;
}

int dlq_tb_take(dlq_tb *tb, uint64_t n, int64_t now_ns)
{
    refill(tb, now_ns);
    if (tb->tokens < need(tb, n)) return 0;
    tb->tokens -= (double)n;
    return 1;
}

int64_t dlq_tb_wait_ns(dlq_tb *tb, uint64_t n, int64_t now_ns)
{
    refill(tb, now_ns);
    double missing = need(tb, n) - tb->tokens;
    if (missing <= 0) return 0;
    int64_t ns = (int64_t)(missing * 1e9 / tb->rate) + 1;
    return ns;
}
