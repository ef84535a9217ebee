/* test_dlq_replay.c — the DLQ's replay source (dlq/dlq_consumer.h) on its
 * own: records come out in order with their positions, nothing while
 * paused, acknowledged records are gone after a reopen and unacknowledged
 * ones come back; an idle replay thread sleeps until the writer has new
 * records. */
#include <dirent.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlq/dlq_consumer.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "testing/lib/th.h"
#include "testing/lib/th_dlq.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_thread.h"
#include "testing/lib/th_wait.h"

#define N 10

static char dir[64];
static dlq *open_dlq(void)
{
    dlq_opts o = {.dir = dir, .segment_size = 1u << 20, .max_size = 64u << 20,
                  .compression_level = 1, .fsync = CFG_FSYNC_NEVER};
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_wait_recovered(d);
    return d;
}

static void t_in_order_pause_ack(void)
{
    snprintf(dir, sizeof dir, "/tmp/sw-dlqrp-XXXXXX");
    TH_ASSERT(mkdtemp(dir));
    dlq *d = open_dlq();
    th_dlq_write_indexed(d, N, 64);
    dlq_replay *r = dlq_replay_new(d, 0);
    TH_ASSERT(r);
    dlq_replay_pause(r, 1);
    TH_ASSERT_EQ_INT(dlq_replay_start(r), 0);
    WAIT_FOR(th_threads_named("sw-replay") == 1, 2000);
    TH_ASSERT(dlq_replay_peek(r) == NULL); /* paused: nothing read */
    dlq_replay_pause(r, 0);
    dlq_pos pos[N];
    for (int i = 0; i < N; i++) {
        WAIT_FOR(dlq_replay_peek(r) != NULL, 5000);
        item *it = dlq_replay_take(r, &pos[i]);
        TH_ASSERT(it && it->len == 64 && it->data[0] == (uint8_t)i && it->signal == SIG_LOGS);
        item_free(it);
    }
    dlq_replay_ack(r, &pos[5]); /* records 0..5 delivered, 6..9 not */
    dlq_replay_free(r);
    dlq_close(d);
    d = open_dlq(); /* the unacknowledged ones come back, in order */
    r = dlq_replay_new(d, 0);
    TH_ASSERT(r && dlq_replay_start(r) == 0);
    for (int i = 6; i < N; i++) {
        WAIT_FOR(dlq_replay_peek(r) != NULL, 5000);
        dlq_pos p;
        item *it = dlq_replay_take(r, &p);
        TH_ASSERT_MSG(it && it->data[0] == (uint8_t)i, "record %d: got %d", i,
                      it ? it->data[0] : -1);
        item_free(it);
    }
    dlq_replay_free(r);
    TH_ASSERT_EQ_INT(th_threads_gone("sw-replay", 1000), 0);
    dlq_close(d);
    TH_ASSERT_EQ_INT(th_rmtree(dir), 0);
}

/* dlq_set_replay_rate reaches a running replay thread: at 1 KiB/s the
 * second 8 KiB record would wait about 8 s; unpaced, the rest come at once. */
static void t_rate_change(void)
{
    snprintf(dir, sizeof dir, "/tmp/sw-dlqrp-XXXXXX");
    TH_ASSERT(mkdtemp(dir));
    dlq *d = open_dlq();
    th_dlq_write_indexed(d, N, 8192);
    dlq_replay *r = dlq_replay_new(d, 1024);
    TH_ASSERT(r && dlq_replay_start(r) == 0);
    dlq_pos pos;
    WAIT_FOR(dlq_replay_peek(r) != NULL, 5000);
    item_free(dlq_replay_take(r, &pos));
    int64_t t0 = clock_mono_ns();
    while (clock_mono_ns() - t0 < 300 * 1000000LL) {
        TH_ASSERT_MSG(dlq_replay_peek(r) == NULL, "second record before the bucket refilled");
        th_nap_ms(10);
    }
    dlq_set_replay_rate(d, 0);
    t0 = clock_mono_ns();
    for (int i = 1; i < N; i++) {
        WAIT_FOR(dlq_replay_peek(r) != NULL, 5000);
        item *it = dlq_replay_take(r, &pos);
        TH_ASSERT(it && it->data[0] == (uint8_t)i);
        item_free(it);
    }
    printf("# after the rate change: %d records of 8 KiB in %.1f ms (at 1 KiB/s: ~%d s)\n",
           N - 1, (double)(clock_mono_ns() - t0) / 1e6, (N - 1) * 8);
    dlq_replay_free(r);
    dlq_close(d);
    TH_ASSERT_EQ_INT(th_rmtree(dir), 0);
}

/* Voluntary context switches of the thread named name, or -1. */
static long thread_switches(const char *name)
{
    DIR *dp = opendir("/proc/self/task");
    long n = -1;
    struct dirent *e;
    while (dp && n < 0 && (e = readdir(dp)) != NULL) {
        char path[300], comm[32] = "", line[128];
        snprintf(path, sizeof path, "/proc/self/task/%s/comm", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f) continue;
        if (!fgets(comm, sizeof comm, f)) comm[0] = '\0';
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        if (strcmp(comm, name) != 0) continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/status", e->d_name);
        if (!(f = fopen(path, "r"))) continue;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "voluntary_ctxt_switches: %ld", &n) == 1) break;
        fclose(f);
    }
    if (dp) closedir(dp);
    return n;
}

/* With nothing to replay the thread sleeps until the writer publishes new
 * records (it polled 20 times a second before), and records appended then
 * still come out, in order. */
static void t_idle_waits_for_writer(void)
{
    snprintf(dir, sizeof dir, "/tmp/sw-dlqrp-XXXXXX");
    TH_ASSERT(mkdtemp(dir));
    dlq *d = open_dlq();
    dlq_replay *r = dlq_replay_new(d, 0);
    TH_ASSERT(r && dlq_replay_start(r) == 0);
    WAIT_FOR(th_threads_named("sw-replay") == 1, 2000);
    th_nap_ms(200);
    long c0 = thread_switches("sw-replay");
    th_nap_ms(1500);
    long c1 = thread_switches("sw-replay");
    TH_ASSERT(c0 >= 0 && c1 >= c0);
    printf("# idle replay thread: %ld wake-ups in 1.5 s\n", c1 - c0);
    TH_ASSERT_MSG(c1 - c0 <= 5, "replay thread woke %ld times in 1.5 s with nothing to read",
                  c1 - c0);
    th_dlq_write_indexed(d, 3, 64);
    for (int i = 0; i < 3; i++) {
        WAIT_FOR(dlq_replay_peek(r) != NULL, 5000);
        dlq_pos p;
        item *it = dlq_replay_take(r, &p);
        TH_ASSERT(it && it->data[0] == (uint8_t)i);
        item_free(it);
    }
    dlq_replay_free(r);
    dlq_close(d);
    TH_ASSERT_EQ_INT(th_rmtree(dir), 0);
}

int main(void)
{
    log_setup(LOG_LVL_WARN, 0);
    TH_RUN(t_in_order_pause_ack);
    TH_RUN(t_rate_change);
    TH_RUN(t_idle_waits_for_writer);
    return th_done();
}
