/* test_apq.c — the adaptive priority queue: weighted round robin, byte
 * capacity, spill hook, wake-ups, and a two-thread stress test.
 *
 * The stress test moves SW_APQ_STRESS_ITEMS items (default 10,000,000)
 * through a small queue between two threads and checks every item arrives
 * exactly once and in order within its class. Under ThreadSanitizer:
 *   make SANITIZE=thread BUILD=build-tsan build-tsan/tests/unit/test_apq
 *   build-tsan/tests/unit/test_apq
 */
#include "queue/apq.h"

#include <poll.h>
#include <sys/epoll.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "queue/ring.h"
#include "runtime/err.h"
#include "testing/lib/th.h"
#include "queue/apq_metrics.h"

static item *mk(sw_class k, int64_t seq, size_t len)
{
    static const uint8_t zeros[256];
    item *it = item_new(SIG_TRACES, k, 1, seq, zeros, len);
    if (!it) abort();
    return it;
}

static apq *mkq(unsigned wc, unsigned wh, unsigned wn, uint64_t max_bytes, sw_metrics *m)
{
    apq_opts o;
    apq_opts_default(&o);
    o.weights[CLASS_CRITICAL] = wc;
    o.weights[CLASS_HIGH] = wh;
    o.weights[CLASS_NORMAL] = wn;
    o.max_bytes = max_bytes;
    o.m = m;
    apq *q = apq_new(&o);
    if (!q) abort();
    return q;
}

static void fill_each(apq *q, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < CLASS_COUNT; k++)
            if (apq_push(q, mk((sw_class)k, (int64_t)i, 8)) != 0) abort();
}

/* Pops n items, counting per class; returns 0 if any pop was NULL. */
static int pop_count(apq *q, size_t n, size_t got[CLASS_COUNT])
{
    for (size_t i = 0; i < n; i++) {
        item *it = apq_pop(q);
        if (!it) return 0;
        got[it->klass]++;
        item_free(it);
    }
    return 1;
}

/* ---- ring ---- */

static void t_ring_basics(void)
{
    ring *r = ring_new(3);
    TH_ASSERT(r != NULL);
    TH_ASSERT_EQ_INT(ring_capacity(r), 4);
    int v[5];
    for (int i = 0; i < 4; i++) TH_ASSERT_EQ_INT(ring_push(r, &v[i]), 0);
    TH_ASSERT(ring_full(r));
    TH_ASSERT_EQ_INT(ring_push(r, &v[4]), SW_EFULL);
    TH_ASSERT_EQ_INT(ring_count(r), 4);
    TH_ASSERT(ring_peek(r) == &v[0]);
    TH_ASSERT(ring_pop(r) == &v[0]);
    TH_ASSERT_EQ_INT(ring_free_slots(r), 1);
    TH_ASSERT_EQ_INT(ring_push(r, &v[4]), 0);
    for (int i = 1; i < 5; i++) TH_ASSERT(ring_pop(r) == &v[i]);
    TH_ASSERT(ring_pop(r) == NULL);
    TH_ASSERT(ring_peek(r) == NULL);
    ring_free(r);
    ring_free(NULL);
}

/* ---- weighted round robin ---- */

static void t_wrr_900_exact(void)
{
    apq *q = mkq(5, 3, 1, 64u << 20, NULL);
    fill_each(q, 1000);
    /* the smooth sequence of one cycle */
    static const int want[9] = {0, 1, 0, 2, 0, 1, 0, 1, 0};
    size_t got[CLASS_COUNT] = {0};
    for (int i = 0; i < 9; i++) {
        item *it = apq_pop(q);
        TH_ASSERT(it != NULL);
        TH_ASSERT_MSG(it->klass == want[i], "pop %d: class %d, want %d", i, it->klass, want[i]);
        got[it->klass]++;
        item_free(it);
    }
    /* every further cycle of 9 is exactly 5:3:1 too */
    for (int cycle = 1; cycle < 100; cycle++) {
        size_t c[CLASS_COUNT] = {0};
        TH_ASSERT(pop_count(q, 9, c));
        TH_ASSERT_MSG(c[0] == 5 && c[1] == 3 && c[2] == 1, "cycle %d: %zu:%zu:%zu", cycle, c[0],
                      c[1], c[2]);
        for (int k = 0; k < CLASS_COUNT; k++) got[k] += c[k];
    }
    TH_ASSERT_EQ_INT(got[CLASS_CRITICAL], 500);
    TH_ASSERT_EQ_INT(got[CLASS_HIGH], 300);
    TH_ASSERT_EQ_INT(got[CLASS_NORMAL], 100);
    apq_free(q);
}

static void t_fifo_within_class(void)
{
    apq *q = mkq(5, 3, 1, 64u << 20, NULL);
    fill_each(q, 200);
    int64_t next[CLASS_COUNT] = {0};
    item *it;
    while ((it = apq_pop(q)) != NULL) {
        TH_ASSERT_EQ_INT(it->recv_ns, next[it->klass]);
        next[it->klass]++;
        item_free(it);
    }
    for (int k = 0; k < CLASS_COUNT; k++) TH_ASSERT_EQ_INT(next[k], 200);
    apq_free(q);
}

static void t_empty_class_stops_taking_turns(void)
{
    apq *q = mkq(5, 3, 1, 64u << 20, NULL);
    for (int i = 0; i < 10; i++) TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_CRITICAL, i, 8)), 0);
    for (int i = 0; i < 400; i++) {
        TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_HIGH, i, 8)), 0);
        TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_NORMAL, i, 8)), 0);
    }
    size_t got[CLASS_COUNT] = {0};
    /* the 10 critical items go within their first two cycles */
    TH_ASSERT(pop_count(q, 18, got));
    TH_ASSERT_EQ_INT(got[CLASS_CRITICAL], 10);
    TH_ASSERT_EQ_INT(apq_class_items(q, CLASS_CRITICAL), 0);
    /* then high and normal share the turns 3:1 */
    for (int i = 0; i < 50; i++) {
        size_t c[CLASS_COUNT] = {0};
        TH_ASSERT(pop_count(q, 4, c));
        TH_ASSERT_MSG(c[1] == 3 && c[2] == 1, "window %d: %zu:%zu:%zu", i, c[0], c[1], c[2]);
    }
    /* normal alone once high is gone */
    size_t rest[CLASS_COUNT] = {0};
    item *it;
    while ((it = apq_pop(q)) != NULL) {
        rest[it->klass]++;
        item_free(it);
    }
    TH_ASSERT_EQ_INT(rest[CLASS_CRITICAL], 0);
    TH_ASSERT_EQ_INT(got[CLASS_HIGH] + 150 + rest[CLASS_HIGH], 400);
    TH_ASSERT_EQ_INT(got[CLASS_NORMAL] + 50 + rest[CLASS_NORMAL], 400);
    /* a class that comes back takes turns again */
    TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_NORMAL, 0, 8)), 0);
    TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_CRITICAL, 0, 8)), 0);
    it = apq_pop(q);
    TH_ASSERT(it && it->klass == CLASS_CRITICAL);
    item_free(it);
    it = apq_pop(q);
    TH_ASSERT(it && it->klass == CLASS_NORMAL);
    item_free(it);
    TH_ASSERT(apq_pop(q) == NULL);
    apq_free(q);
}

static void t_custom_weights(void)
{
    struct { unsigned w[3]; size_t want[3]; } cases[] = {
        {{1, 1, 1}, {300, 300, 300}},
        {{10, 1, 1}, {750, 75, 75}},
        {{1, 2, 6}, {100, 200, 600}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        apq *q = mkq(cases[i].w[0], cases[i].w[1], cases[i].w[2], 64u << 20, NULL);
        fill_each(q, 1000);
        size_t got[CLASS_COUNT] = {0};
        TH_ASSERT(pop_count(q, 900, got));
        for (int k = 0; k < CLASS_COUNT; k++)
            TH_ASSERT_MSG(got[k] == cases[i].want[k], "case %zu class %d: %zu want %zu", i, k,
                          got[k], cases[i].want[k]);
        apq_free(q);
    }
}

static void t_invalid_options(void)
{
    apq_opts o;
    apq_opts_default(&o);
    o.weights[CLASS_HIGH] = 0;
    TH_ASSERT(apq_new(&o) == NULL);
    apq_opts_default(&o);
    o.spill_threshold = 0;
    TH_ASSERT(apq_new(&o) == NULL);
    o.spill_threshold = 1.5;
    TH_ASSERT(apq_new(&o) == NULL);
    apq_opts_default(&o);
    o.max_bytes = 0;
    TH_ASSERT(apq_new(&o) == NULL);
    apq_free(NULL);
    TH_ASSERT_EQ_INT(apq_auto_slots(64u << 20), 16384);
    TH_ASSERT_EQ_INT(apq_auto_slots(64 << 10), 1024);
}

static void t_from_cfg(void)
{
    cfg *c = cfg_defaults();
    TH_ASSERT(c != NULL);
    apq_opts o;
    apq_opts_from_cfg(&o, c, NULL);
    TH_ASSERT_EQ_INT(o.max_bytes, c->queue.max_bytes);
    TH_ASSERT_EQ_INT(o.weights[CLASS_CRITICAL], 5);
    TH_ASSERT_EQ_INT(o.weights[CLASS_HIGH], 3);
    TH_ASSERT_EQ_INT(o.weights[CLASS_NORMAL], 1);
    TH_ASSERT(o.spill_threshold > 0.94 && o.spill_threshold < 0.96);
    apq *q = apq_new(&o);
    TH_ASSERT(q != NULL);
    apq_free(q);
    cfg_free(c);
}

/* ---- capacity, threshold, spill ---- */

static void t_byte_capacity(void)
{
    sw_metrics *m = metrics_new();
    TH_ASSERT(m != NULL);
    const size_t one = sizeof(item) + 100;
    apq_opts o;
    apq_opts_default(&o);
    o.max_bytes = one * 10;
    o.spill_threshold = 1.0;
    o.m = m;
    apq *q = apq_new(&o);
    TH_ASSERT(q != NULL);
    TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(m)->queue_max_bytes), one * 10);
    for (int i = 0; i < 10; i++) TH_ASSERT_EQ_INT(apq_push(q, mk((sw_class)(i % 3), i, 100)), 0);
    TH_ASSERT_EQ_INT(apq_bytes(q), one * 10);
    TH_ASSERT_EQ_INT(apq_items(q), 10);
    TH_ASSERT(apq_fill_ratio(q) > 0.999);
    TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(m)->queue_items[CLASS_CRITICAL]), 4);
    TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(m)->queue_bytes[CLASS_HIGH]), 3 * one);
    item *extra = mk(CLASS_NORMAL, 99, 100);
    TH_ASSERT_EQ_INT(apq_push(q, extra), SW_EFULL);   /* caller keeps it */
    TH_ASSERT_EQ_INT(apq_bytes(q), one * 10);
    item *it = apq_pop(q);
    TH_ASSERT(it && it->klass == CLASS_CRITICAL);
    item_free(it);
    TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(m)->queue_dequeued[CLASS_CRITICAL]), 1);
    TH_ASSERT_EQ_INT(apq_bytes(q), one * 9);
    TH_ASSERT_EQ_INT(apq_push(q, extra), 0);          /* room again */
    /* an item larger than what is left never fits */
    item *big = mk(CLASS_HIGH, 0, 200);
    TH_ASSERT_EQ_INT(apq_push(q, big), SW_EFULL);
    item_free(big);
    size_t got[CLASS_COUNT] = {0};
    TH_ASSERT(pop_count(q, 10, got));
    TH_ASSERT_EQ_INT(apq_bytes(q), 0);
    for (int k = 0; k < CLASS_COUNT; k++) {
        TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(m)->queue_items[k]), 0);
        TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(m)->queue_bytes[k]), 0);
    }
    TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(m)->queue_dequeued[CLASS_NORMAL]), 4);
    apq_free(q);
    metrics_free(m);
}

typedef struct spill_box {
    int accept;
    size_t n;
    item *got[16];
} spill_box;

static int box_spill(void *arg, item *it)
{
    spill_box *b = arg;
    if (!b->accept || b->n == 16) return SW_EFULL;
    b->got[b->n++] = it;
    return 0;
}

static void box_free(spill_box *b)
{
    for (size_t i = 0; i < b->n; i++) item_free(b->got[i]);
    b->n = 0;
}

/* 100 units of capacity, one item = 1 unit: at 95 queued the fill is 0.95. */
static apq *unit_queue(sw_metrics *m, spill_box *b, size_t *unit)
{
    *unit = sizeof(item) + 16;
    apq_opts o;
    apq_opts_default(&o);
    o.max_bytes = *unit * 100;
    o.spill_threshold = 0.95;
    o.m = m;
    if (b) o.spill = (apq_spill){box_spill, b};
    apq *q = apq_new(&o);
    if (!q) abort();
    return q;
}

static void t_threshold_default_refuses(void)
{
    sw_metrics *m = metrics_new();
    size_t unit;
    apq *q = unit_queue(m, NULL, &unit);
    for (int i = 0; i < 95; i++) TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_HIGH, i, 16)), 0);
    TH_ASSERT(apq_fill_ratio(q) >= 0.95);
    item *it = mk(CLASS_HIGH, 95, 16);
    TH_ASSERT_EQ_INT(apq_push(q, it), SW_EFULL);      /* no DLQ yet: caller keeps it */
    TH_ASSERT_EQ_INT(apq_items(q), 95);
    TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(m)->queue_spilled[CLASS_HIGH]), 0);
    item_free(apq_pop(q));                            /* 0.94: memory again */
    TH_ASSERT_EQ_INT(apq_push(q, it), 0);
    apq_free(q);
    metrics_free(m);
}

static void t_threshold_spill(void)
{
    sw_metrics *m = metrics_new();
    spill_box b = {.accept = 1};
    size_t unit;
    apq *q = unit_queue(m, &b, &unit);
    for (int i = 0; i < 94; i++) TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_NORMAL, i, 16)), 0);
    TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_NORMAL, 94, 16)), 0);   /* 0.94 -> 0.95 */
    TH_ASSERT_EQ_INT(b.n, 0);
    item *c = mk(CLASS_CRITICAL, 0, 16);
    TH_ASSERT_EQ_INT(apq_push(q, c), APQ_SPILLED);                /* at 0.95: spill */
    TH_ASSERT_EQ_INT(b.n, 1);
    TH_ASSERT(b.got[0] == c);
    TH_ASSERT_EQ_INT(b.got[0]->klass, CLASS_CRITICAL);            /* keeps its class */
    TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(m)->queue_spilled[CLASS_CRITICAL]), 1);
    TH_ASSERT_EQ_INT(apq_items(q), 95);
    b.accept = 0;                                                 /* DLQ full */
    item *h = mk(CLASS_HIGH, 0, 16);
    TH_ASSERT_EQ_INT(apq_push(q, h), SW_EFULL);
    TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(m)->queue_spilled[CLASS_HIGH]), 0); /* only when taken */
    item_free(h);
    apq_set_spill(q, NULL);
    h = mk(CLASS_HIGH, 1, 16);
    TH_ASSERT_EQ_INT(apq_push(q, h), SW_EFULL);
    item_free(h);
    box_free(&b);
    apq_free(q);
    metrics_free(m);
}

static void t_ring_slots_full_spills(void)
{
    spill_box b = {.accept = 1};
    apq_opts o;
    apq_opts_default(&o);
    o.slots = 4;
    o.spill = (apq_spill){box_spill, &b};
    apq *q = apq_new(&o);
    TH_ASSERT(q != NULL);
    for (int i = 0; i < 4; i++) TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_HIGH, i, 8)), 0);
    TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_HIGH, 4, 8)), APQ_SPILLED);  /* no slot left */
    TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_NORMAL, 0, 8)), 0);          /* other rings free */
    TH_ASSERT_EQ_INT(b.n, 1);
    box_free(&b);
    apq_free(q);                                                       /* frees the rest */
}

static void t_push_all(void)
{
    sw_metrics *m = metrics_new();
    spill_box b = {.accept = 1};
    size_t unit, taken;
    apq *q = unit_queue(m, &b, &unit);
    item *three[3] = {mk(CLASS_CRITICAL, 0, 16), mk(CLASS_HIGH, 0, 16), mk(CLASS_NORMAL, 0, 16)};
    TH_ASSERT_EQ_INT(apq_push_all(q, three, 3, &taken), 0);
    TH_ASSERT_EQ_INT(taken, 3);
    for (int i = 0; i < 91; i++) TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_NORMAL, i + 1, 16)), 0);
    /* 94 queued (0.94): a request of 3 goes to memory as a whole (0.97) */
    item *more[3] = {mk(CLASS_CRITICAL, 1, 16), mk(CLASS_HIGH, 1, 16), mk(CLASS_NORMAL, 92, 16)};
    TH_ASSERT_EQ_INT(apq_push_all(q, more, 3, &taken), 0);
    TH_ASSERT_EQ_INT(apq_items(q), 97);
    /* 0.97: the next request spills whole */
    item *sp[2] = {mk(CLASS_CRITICAL, 2, 16), mk(CLASS_NORMAL, 93, 16)};
    TH_ASSERT_EQ_INT(apq_push_all(q, sp, 2, &taken), APQ_SPILLED);
    TH_ASSERT_EQ_INT(taken, 2);
    TH_ASSERT_EQ_INT(b.n, 2);
    TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(m)->queue_spilled[CLASS_CRITICAL]), 1);
    TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(m)->queue_spilled[CLASS_NORMAL]), 1);
    /* the spill refuses: nothing taken, the caller keeps both */
    b.accept = 0;
    item *no[2] = {mk(CLASS_HIGH, 2, 16), mk(CLASS_HIGH, 3, 16)};
    TH_ASSERT_EQ_INT(apq_push_all(q, no, 2, &taken), SW_EFULL);
    TH_ASSERT_EQ_INT(taken, 0);
    item_free(no[0]);
    item_free(no[1]);
    /* the spill takes one then is full: the rest fits under max_bytes */
    b.accept = 1;
    box_free(&b);
    b.n = 15;                                   /* one place left in the box */
    item *part[2] = {mk(CLASS_HIGH, 4, 16), mk(CLASS_NORMAL, 94, 16)};
    TH_ASSERT_EQ_INT(apq_push_all(q, part, 2, &taken), APQ_SPILLED);
    TH_ASSERT_EQ_INT(taken, 2);
    TH_ASSERT(b.got[15] == part[0]);
    TH_ASSERT_EQ_INT(apq_items(q), 98);
    item_free(b.got[15]);
    b.n = 0;
    apq_free(q);
    metrics_free(m);
}

static void t_close(void)
{
    apq *q = mkq(5, 3, 1, 1 << 20, NULL);
    TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_HIGH, 0, 8)), 0);
    apq_close(q);
    item *it = mk(CLASS_HIGH, 1, 8);
    TH_ASSERT_EQ_INT(apq_push(q, it), SW_ECLOSED);
    size_t taken = 9;
    TH_ASSERT_EQ_INT(apq_push_all(q, &it, 1, &taken), SW_ECLOSED);
    TH_ASSERT_EQ_INT(taken, 0);
    item_free(it);
    it = apq_pop(q);                            /* pops still work */
    TH_ASSERT(it && it->recv_ns == 0);
    item_free(it);
    TH_ASSERT(apq_pop(q) == NULL);
    apq_free(q);
}

static void t_bad_class(void)
{
    apq *q = mkq(5, 3, 1, 1 << 20, NULL);
    item *it = mk(CLASS_HIGH, 0, 8);
    it->klass = 7;
    TH_ASSERT_EQ_INT(apq_push(q, it), SW_EINVAL);
    item_free(it);
    apq_free(q);
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static void t_wake_fd(void)
{
    apq *q = mkq(5, 3, 1, 1 << 20, NULL);
    int fd = apq_wake_fd(q);
    TH_ASSERT(!readable(fd));
    for (int i = 0; i < 5; i++) TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_NORMAL, i, 8)), 0);
    TH_ASSERT(readable(fd));
    uint64_t v = 0;
    TH_ASSERT_EQ_INT(read(fd, &v, sizeof v), (ssize_t)sizeof v);
    TH_ASSERT_EQ_INT(v, 1);                     /* one write per wake-up, not per item */
    apq_clear_wake(q);
    TH_ASSERT(!readable(fd));
    TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_NORMAL, 5, 8)), 0);  /* wakes again after clear */
    TH_ASSERT(readable(fd));
    apq_clear_wake(q);
    TH_ASSERT(!readable(fd));
    apq_free(q);
}

/* An edge-triggered consumer never reads the eventfd: each wake-up is one
 * write and so one new edge; pushes before the re-arm make none. */
static void t_wake_fd_edge(void)
{
    apq *q = mkq(5, 3, 1, 1 << 20, NULL);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET}, got;
    TH_ASSERT(ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, apq_wake_fd(q), &ev) == 0);
    TH_ASSERT_EQ_INT(epoll_wait(ep, &got, 1, 0), 0);
    for (int round = 0; round < 3; round++) {
        TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_NORMAL, 2 * round, 8)), 0);
        TH_ASSERT_EQ_INT(apq_push(q, mk(CLASS_NORMAL, 2 * round + 1, 8)), 0);
        TH_ASSERT_EQ_INT(epoll_wait(ep, &got, 1, 0), 1); /* one edge for both pushes */
        TH_ASSERT_EQ_INT(epoll_wait(ep, &got, 1, 0), 0);
        apq_clear_wake_edge(q);
        TH_ASSERT_EQ_INT(epoll_wait(ep, &got, 1, 0), 0); /* re-arming makes no edge */
        while (apq_peek(q)) item_free(apq_pop(q));
    }
    uint64_t v = 0;
    TH_ASSERT_EQ_INT(read(apq_wake_fd(q), &v, sizeof v), (ssize_t)sizeof v);
    TH_ASSERT_EQ_INT(v, 3); /* one write per wake-up */
    close(ep);
    apq_free(q);
}

static void t_peek(void)
{
    apq *q = mkq(5, 3, 1, 1 << 20, NULL);
    TH_ASSERT(apq_peek(q) == NULL);
    TH_ASSERT_EQ_INT(apq_peek_signal(q), -1);
    fill_each(q, 20);
    for (int i = 0; i < 60; i++) {
        const item *p = apq_peek(q);
        TH_ASSERT_EQ_INT(apq_peek_signal(q), SIG_TRACES);
        item *it = apq_pop(q);
        TH_ASSERT(p == it);
        item_free(it);
    }
    TH_ASSERT(apq_peek(q) == NULL);
    apq_free(q);
}

/* ---- two threads ---- */

typedef struct stress {
    apq *q;
    uint64_t total;
    /* consumer results, read by main after join */
    uint64_t got, order_errors, lost_wakes;
    int64_t next[CLASS_COUNT];
} stress;

static int take(stress *s, item *it)
{
    if (!it) return 0;
    if (it->recv_ns != s->next[it->klass]) s->order_errors++;
    s->next[it->klass] = it->recv_ns + 1;
    s->got++;
    item_free(it);
    return 1;
}

static void *consumer(void *arg)
{
    stress *s = arg;
    struct pollfd p = {.fd = apq_wake_fd(s->q), .events = POLLIN};
    unsigned idle = 0;
    while (s->got < s->total) {
        if (take(s, apq_pop(s->q))) {
            idle = 0;
            continue;
        }
        if (++idle < 64) {
            sched_yield();
            continue;
        }
        apq_clear_wake(s->q);                   /* re-arm, then look once more */
        if (take(s, apq_pop(s->q))) continue;
        if (poll(&p, 1, 5000) == 0 && apq_peek(s->q)) s->lost_wakes++;
        idle = 0;
    }
    return NULL;
}

static uint64_t stress_items(void)
{
    const char *e = getenv("SW_APQ_STRESS_ITEMS");
    if (e && *e) return strtoull(e, NULL, 10);
    return 10000000;
}

static void t_two_threads(void)
{
    stress s = {.total = stress_items()};
    s.q = mkq(5, 3, 1, 512 * (sizeof(item) + 8), NULL);  /* small: the producer often waits */
    pthread_t th;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    TH_ASSERT_EQ_INT(pthread_create(&th, NULL, consumer, &s), 0);
    int64_t seq[CLASS_COUNT] = {0};
    uint32_t x = 2463534242u;
    uint64_t refused = 0;
    for (uint64_t i = 0; i < s.total; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5;
        sw_class k = (sw_class)(x % 9 < 2 ? CLASS_CRITICAL : x % 9 < 5 ? CLASS_HIGH : CLASS_NORMAL);
        item *it = mk(k, seq[k]++, 8);
        int rc;
        while ((rc = apq_push(s.q, it)) == SW_EFULL) {
            refused++;
            sched_yield();
        }
        if (rc != 0) abort();
    }
    pthread_join(th, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("# two threads: %llu items in %.2f s (%.1f ns/item), %llu full refusals\n",
           (unsigned long long)s.total, secs, secs * 1e9 / (double)s.total,
           (unsigned long long)refused);
    TH_ASSERT_EQ_INT(s.got, s.total);
    TH_ASSERT_EQ_INT(s.order_errors, 0);
    TH_ASSERT_EQ_INT(s.lost_wakes, 0);
    for (int k = 0; k < CLASS_COUNT; k++) TH_ASSERT_EQ_INT(s.next[k], seq[k]);
    TH_ASSERT(apq_pop(s.q) == NULL);
    TH_ASSERT_EQ_INT(apq_bytes(s.q), 0);
    apq_free(s.q);
}

/* apq_set_weights: the next pops follow the new weights; out-of-range
 * weights change nothing. */
static void t_set_weights(void)
{
    apq *q = mkq(5, 3, 1, 1 << 24, NULL);
    size_t got[CLASS_COUNT];
    fill_each(q, 300);
    unsigned bad[CLASS_COUNT] = {0, 1, 1};
    TH_ASSERT(apq_set_weights(q, bad) != 0);
    memset(got, 0, sizeof got);
    TH_ASSERT(pop_count(q, 90, got));
    TH_ASSERT_EQ_INT(got[CLASS_CRITICAL], 50);
    TH_ASSERT_EQ_INT(got[CLASS_NORMAL], 10);
    unsigned w[CLASS_COUNT] = {1, 1, 1};
    TH_ASSERT_EQ_INT(apq_set_weights(q, w), 0);
    memset(got, 0, sizeof got);
    TH_ASSERT(pop_count(q, 90, got));
    /* one cycle may still carry credit from the old weights */
    TH_ASSERT_MSG(got[CLASS_CRITICAL] >= 29 && got[CLASS_CRITICAL] <= 31 &&
                      got[CLASS_NORMAL] >= 29 && got[CLASS_NORMAL] <= 31,
                  "1:1:1 gave %zu:%zu:%zu", got[0], got[1], got[2]);
    apq_free(q);
}

int main(void)
{
    TH_RUN(t_ring_basics);
    TH_RUN(t_wrr_900_exact);
    TH_RUN(t_fifo_within_class);
    TH_RUN(t_empty_class_stops_taking_turns);
    TH_RUN(t_custom_weights);
    TH_RUN(t_invalid_options);
    TH_RUN(t_from_cfg);
    TH_RUN(t_byte_capacity);
    TH_RUN(t_threshold_default_refuses);
    TH_RUN(t_threshold_spill);
    TH_RUN(t_ring_slots_full_spills);
    TH_RUN(t_push_all);
    TH_RUN(t_close);
    TH_RUN(t_set_weights);
    TH_RUN(t_bad_class);
    TH_RUN(t_wake_fd);
    TH_RUN(t_wake_fd_edge);
    TH_RUN(t_peek);
    TH_RUN(t_two_threads);
    return th_done();
}
