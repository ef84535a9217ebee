/* test_dlq_sink.c — the DLQ's append side on an event loop
 * (dlq/dlq_consumer.h): a failed write makes it refuse appends, one probe
 * goes after the retry interval, and its success ends the failure. */
#include <errno.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlq/dlq_consumer.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_wait.h"

static _Atomic int writes_fail;

static ssize_t test_pwrite(int fd, const void *p, size_t n, off_t off)
{
    if (atomic_load(&writes_fail)) {
        errno = ENOSPC;
        return -1;
    }
    return pwrite(fd, p, n, off);
}

static int ok, failed, rooms;
static item *back; /* items handed back by failed appends */

static void done(void *arg, item *it, int status)
{
    (void)arg;
    if (status == 0) {
        ok++;
        return;
    }
    failed++;
    it->next = back;
    back = it;
}

static void on_room(void *arg)
{
    (void)arg;
    rooms++;
}

static item *mk(int i)
{
    uint8_t data[32];
    memset(data, i, sizeof data);
    item *it = item_new(SIG_TRACES, CLASS_NORMAL, 1, clock_mono_ns(), data, sizeof data);
    TH_ASSERT(it);
    return it;
}

/* Runs the sink's loop once without blocking (completions, the retry
 * timer); always 1, so WAIT_FOR(spin() && cond, ...) polls the loop. */
static struct event_base *base;
static int spin(void)
{
    event_base_loop(base, EVLOOP_NONBLOCK);
    return 1;
}

static void t_fail_probe_recover(void)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/sw-dlqsink-XXXXXX");
    TH_ASSERT(mkdtemp(dir));
    dlq_opts o = {.dir = dir, .segment_size = 1u << 20, .max_size = 64u << 20,
                  .compression_level = 1, .fsync = CFG_FSYNC_NEVER, .pwrite = test_pwrite,
                  /* the DLQ re-probes well before the sink's first retry (500 ms):
                   * the sink's probe then meets an available DLQ */
                  .probe_ms = 20};
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_wait_recovered(d);
    base = event_base_new();
    dlq_sink *s = dlq_sink_new(d, base, on_room, NULL);
    TH_ASSERT(base && s);

    atomic_store(&writes_fail, 1);
    TH_ASSERT_EQ_INT(dlq_sink_put(s, mk(1), done, NULL), 0);
    WAIT_FOR(spin() && failed == 1, 5000);
    TH_ASSERT(back && back->data[0] == 1); /* handed back, not dropped */
    TH_ASSERT_EQ_INT(dlq_sink_blocked(s), 1);
    item *it = mk(2);
    TH_ASSERT_EQ_INT(dlq_sink_put(s, it, done, NULL), SW_EIO); /* refused: caller keeps it */
    atomic_store(&writes_fail, 0);
    int64_t t0 = clock_mono_ns();
    WAIT_FOR(spin() && !dlq_sink_blocked(s), 3000); /* the retry is due */
    TH_ASSERT(clock_mono_ns() - t0 >= 500000000LL);
    TH_ASSERT(rooms >= 1);
    /* The probe. The DLQ re-probes its storage on its own timer: when the
     * sink's retry comes first, the DLQ still refuses (SW_EUNAVAIL or
     * SW_EIO, the sink is blocked again, the caller keeps the item) and a
     * later retry takes it (seen under ASan and under load). */
    int rc = dlq_sink_put(s, it, done, NULL);
    int64_t probe_end = clock_mono_ns() + (int64_t)th_slow_ms(30000) * 1000000;
    while ((rc == SW_EIO || rc == SW_EUNAVAIL) && clock_mono_ns() < probe_end) {
        WAIT_FOR(spin() && !dlq_sink_blocked(s), 3000);
        rc = dlq_sink_put(s, it, done, NULL);
    }
    TH_ASSERT_EQ_INT(rc, 0);
    item *third = mk(3);
    TH_ASSERT_EQ_INT(dlq_sink_put(s, third, done, NULL), SW_EIO); /* one probe at a time */
    WAIT_FOR(spin() && ok == 1, 5000);
    TH_ASSERT_EQ_INT(dlq_sink_blocked(s), 0);
    TH_ASSERT_EQ_INT(dlq_sink_put(s, third, done, NULL), 0);
    TH_ASSERT_EQ_INT(dlq_sink_put(s, back, done, NULL), 0);
    back = NULL;
    WAIT_FOR(spin() && ok == 3, 5000);
    TH_ASSERT_EQ_INT(dlq_sink_drain(s, 1000, NULL), 0);
    dlq_sink_free(s);
    event_base_free(base);
    dlq_close(d);
    TH_ASSERT_EQ_INT(th_rmtree(dir), 0);
}

int main(void)
{
    log_setup(LOG_LVL_ERROR, 0);
    TH_RUN(t_fail_probe_recover);
    return th_done();
}
