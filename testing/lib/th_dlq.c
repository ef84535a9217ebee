/* th_dlq.c — see th_dlq.h. */
#include "testing/lib/th_dlq.h"

#include "runtime/clock.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"

void th_dlq_port_drain(dlq_port *p)
{
    int64_t deadline = clock_mono_ns() + (int64_t)th_slow_ms(30000) * 1000000;
    while (dlq_port_pending(p) && clock_mono_ns() < deadline) dlq_port_wait(p, 100);
    TH_ASSERT_EQ_INT(dlq_port_pending(p), 0);
}
