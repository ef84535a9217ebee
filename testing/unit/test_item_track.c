/* test_item_track.c — delivery tracking (runtime/item_track.h). */
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "dlq/dlq.h"
#include "runtime/item_track.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"

typedef struct calls {
    int n;
    int failed;
} calls;

static void on_done(void *arg, int failed)
{
    calls *c = arg;
    c->n++;
    c->failed = failed;
}

static item *mk(void) { return item_new(SIG_LOGS, CLASS_NORMAL, 1, 0, "x", 1); }

/* The callback runs once, after the creator and every item let go. */
static void t_all_settled_ok(void)
{
    track_box *b = track_box_new(NULL);
    calls c = {0};
    item_tracker *t = item_tracker_new(b, on_done, &c);
    item *a = mk(), *z = mk();
    item_track_attach(a, t);
    item_track_attach(z, t);
    item_tracker_release(t, 0);
    TH_ASSERT_EQ_INT(track_box_dispatch(b), 0);
    item_settle(a, 0);
    TH_ASSERT(a->trk == NULL);
    TH_ASSERT_EQ_INT(track_box_dispatch(b), 0);
    item_settle(z, 0);
    item_settle(z, 1); /* settled already: no effect */
    TH_ASSERT_EQ_INT(track_box_live(b), 1);
    TH_ASSERT_EQ_INT(track_box_dispatch(b), 1);
    TH_ASSERT_EQ_INT(c.n, 1);
    TH_ASSERT_EQ_INT(c.failed, 0);
    TH_ASSERT_EQ_INT(track_box_live(b), 0);
    item_free(a);
    item_free(z);
    TH_ASSERT_EQ_INT(c.n, 1);
    track_box_free(b);
}

/* Freeing an item that still holds a reference settles it as failed. */
static void t_free_settles_failed(void)
{
    track_box *b = track_box_new(NULL);
    calls c = {0};
    item_tracker *t = item_tracker_new(b, on_done, &c);
    item *a = mk(), *z = mk();
    item_track_attach(a, t);
    item_track_attach(z, t);
    item_tracker_release(t, 0);
    item_settle(a, 0);
    item_free(z);
    TH_ASSERT_EQ_INT(track_box_dispatch(b), 1);
    TH_ASSERT_EQ_INT(c.n, 1);
    TH_ASSERT_EQ_INT(c.failed, 1);
    item_free(a);
    track_box_free(b);
}

/* The box may go first: later releases free their tracker silently. */
static void t_box_freed_first(void)
{
    track_box *b = track_box_new(NULL);
    calls c = {0};
    item_tracker *t = item_tracker_new(b, on_done, &c);
    item *a = mk();
    item_track_attach(a, t);
    item_tracker_release(t, 0);
    track_box_free(b);
    item_free(a); /* must not touch freed memory (ASan/valgrind) */
    TH_ASSERT_EQ_INT(c.n, 0);
}

typedef struct rel_arg {
    item **its;
    int n;
} rel_arg;

static void *releaser(void *arg)
{
    rel_arg *r = arg;
    for (int i = 0; i < r->n; i++) item_settle(r->its[i], 0);
    return NULL;
}

/* Releases from other threads wake the owner's event loop. */
static void t_cross_thread_event(void)
{
    enum { N = 20000 };
    struct event_base *base = event_base_new();
    track_box *b = track_box_new(base);
    TH_ASSERT(b != NULL);
    calls c = {0};
    static item *its[N];
    item_tracker *t = item_tracker_new(b, on_done, &c);
    for (int i = 0; i < N; i++) {
        its[i] = mk();
        item_track_attach(its[i], t);
    }
    item_tracker_release(t, 0);
    rel_arg r1 = {its, N / 2}, r2 = {its + N / 2, N - N / 2};
    pthread_t a, z;
    pthread_create(&a, NULL, releaser, &r1);
    pthread_create(&z, NULL, releaser, &r2);
    pthread_join(a, NULL);
    pthread_join(z, NULL);
    TH_ASSERT_EQ_INT(c.n, 0); /* only the loop runs callbacks */
    event_base_loop(base, EVLOOP_NONBLOCK);
    TH_ASSERT_EQ_INT(c.n, 1);
    TH_ASSERT_EQ_INT(c.failed, 0);
    for (int i = 0; i < N; i++) item_free(its[i]);
    track_box_free(b);
    event_base_free(base);
}

/* A record the DLQ stored settles its item as delivered-or-stored. */
static void dlq_cb(void *arg, item *it, int status)
{
    int *st = arg;
    *st = status;
    item_free(it);
}

static void t_dlq_store_settles(void)
{
    char dir[] = "/tmp/sw-track-XXXXXX";
    TH_ASSERT(mkdtemp(dir) != NULL);
    dlq_opts o = {.dir = dir, .segment_size = 1 << 20, .max_size = 8 << 20,
                  .compression_level = 1, .fsync = CFG_FSYNC_NEVER};
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_wait_recovered(d);
    dlq_port *p = dlq_port_new(d);
    track_box *b = track_box_new(NULL);
    calls c = {0};
    item_tracker *t = item_tracker_new(b, on_done, &c);
    item *a = mk();
    item_track_attach(a, t);
    item_tracker_release(t, 0);
    int st = -99;
    TH_ASSERT_EQ_INT(dlq_append(p, a, dlq_cb, &st), 0);
    while (dlq_port_pending(p)) dlq_port_wait(p, 1000);
    TH_ASSERT_EQ_INT(st, 0);
    TH_ASSERT_EQ_INT(track_box_dispatch(b), 1);
    TH_ASSERT_EQ_INT(c.failed, 0);
    dlq_close(d);
    dlq_port_free(p);
    track_box_free(b);
    TH_ASSERT_EQ_INT(th_rmtree(dir), 0);
}

int main(void)
{
    TH_RUN(t_all_settled_ok);
    TH_RUN(t_free_settles_failed);
    TH_RUN(t_box_freed_first);
    TH_RUN(t_cross_thread_event);
    TH_RUN(t_dlq_store_settles);
    return th_done();
}
