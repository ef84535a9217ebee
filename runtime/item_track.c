/* item_track.c — see item_track.h. */
#include "runtime/item_track.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

struct item_tracker {
    struct item_tracker *next;   /* box list link (under box->mu) */
    track_box *box;
    item_tracker_fn fn;
    void *arg;
    _Atomic unsigned refs;
    _Atomic int failed;
};

struct track_box {
    pthread_mutex_t mu;          /* protects head and closed */
    item_tracker *head;          /* released trackers waiting for dispatch */
    int closed;                  /* owner gone: free released trackers */
    _Atomic unsigned refs;       /* owner (until closed) + live trackers */
    unsigned live;               /* owner thread: trackers not called back */
    int efd;
    struct event *ev;
};

static void box_unref(track_box *b)
{
    if (atomic_fetch_sub(&b->refs, 1) != 1) return;
    if (b->ev) event_free(b->ev);
    close(b->efd);
    pthread_mutex_destroy(&b->mu);
    free(b);
}

static void on_box(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    track_box_dispatch(arg);
}

track_box *track_box_new(struct event_base *base)
{
    track_box *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (b->efd < 0) {
        free(b);
        return NULL;
    }
    pthread_mutex_init(&b->mu, NULL);
    atomic_init(&b->refs, 1);
    if (base) {
        b->ev = event_new(base, b->efd, EV_READ | EV_PERSIST, on_box, b);
        if (!b->ev || event_add(b->ev, NULL) != 0) {
            box_unref(b);
            return NULL;
        }
    }
    return b;
}

unsigned track_box_dispatch(track_box *b)
{
    uint64_t v;
    ssize_t r = read(b->efd, &v, sizeof v);
    (void)r; /* EAGAIN: nothing posted since the last read */
    pthread_mutex_lock(&b->mu);
    item_tracker *t = b->head;
    b->head = NULL;
    pthread_mutex_unlock(&b->mu);
    unsigned n = 0;
    while (t) {
        item_tracker *next = t->next;
        t->fn(t->arg, atomic_load(&t->failed));
        b->live--;
        free(t);
        box_unref(b);
        t = next;
        n++;
    }
    return n;
}

unsigned track_box_live(const track_box *b) { return b->live; }

void track_box_free(track_box *b)
{
    if (!b) return;
    pthread_mutex_lock(&b->mu);
    b->closed = 1;
    item_tracker *t = b->head;
    b->head = NULL;
    pthread_mutex_unlock(&b->mu);
    if (b->ev) {
        event_free(b->ev);
        b->ev = NULL;
    }
    while (t) { /* released but not called back: the owner is gone */
        item_tracker *next = t->next;
        free(t);
        box_unref(b);
        t = next;
    }
    box_unref(b);
}

item_tracker *item_tracker_new(track_box *b, item_tracker_fn fn, void *arg)
{
    item_tracker *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->box = b;
    t->fn = fn;
    t->arg = arg;
    atomic_init(&t->refs, 1);
    atomic_init(&t->failed, 0);
    atomic_fetch_add(&b->refs, 1);
    b->live++;
    return t;
}

void item_tracker_ref(item_tracker *t) { atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed); }

void item_tracker_release(item_tracker *t, int failed)
{
    if (failed) atomic_store(&t->failed, 1);
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) return;
    track_box *b = t->box;
    pthread_mutex_lock(&b->mu);
    if (b->closed) {
        pthread_mutex_unlock(&b->mu);
        free(t);
        box_unref(b);
        return;
    }
    int was_empty = b->head == NULL;
    t->next = b->head;
    b->head = t;
    pthread_mutex_unlock(&b->mu);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(b->efd, &one, sizeof one);
        (void)w; /* EAGAIN only when the counter is saturated: still readable */
    }
}

void item_track_attach(item *it, item_tracker *t)
{
    item_tracker_ref(t);
    it->trk = t;
}

void item_settle(item *it, int failed)
{
    item_tracker *t = it->trk;
    if (!t) return;
    it->trk = NULL;
    item_tracker_release(t, failed);
}
