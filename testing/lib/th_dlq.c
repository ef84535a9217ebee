/* th_dlq.c — see th_dlq.h. */
#include "testing/lib/th_dlq.h"

#include <stdlib.h>
#include <string.h>

#include "runtime/clock.h"
#include "runtime/item.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"

void th_dlq_port_drain(dlq_port *p)
{
    int64_t deadline = clock_mono_ns() + (int64_t)th_slow_ms(30000) * 1000000;
    while (dlq_port_pending(p) && clock_mono_ns() < deadline) dlq_port_wait(p, 100);
    TH_ASSERT_EQ_INT(dlq_port_pending(p), 0);
}

static void stored(void *arg, item *it, int status)
{
    (void)it;
    if (status == 0) ++*(int *)arg;
}

void th_dlq_write_indexed(dlq *d, int n, size_t len)
{
    dlq_port *p = dlq_port_new(d);
    uint8_t *data = malloc(len ? len : 1);
    int ok = 0;
    TH_ASSERT(p && data);
    for (int i = 0; i < n; i++) {
        memset(data, i, len);
        item *it = item_new(SIG_LOGS, CLASS_HIGH, 1, clock_mono_ns(), data, len);
        TH_ASSERT(it && dlq_append(p, it, stored, &ok) == 0);
    }
    free(data);
    th_dlq_port_drain(p);
    dlq_port_free(p);
    TH_ASSERT_EQ_INT(ok, n);
}
