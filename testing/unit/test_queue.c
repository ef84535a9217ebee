/* test_queue.c — the interim byte-bounded queue. */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>

#include "queue/queue.h"
#include "runtime/err.h"
#include "testing/lib/th.h"

static item *mk(uint32_t n, size_t len)
{
    uint8_t data[256] = {0};
    data[0] = (uint8_t)n;
    item *it = item_new(SIG_TRACES, CLASS_NORMAL, n, 0, data, len);
    if (!it) abort();
    return it;
}

static int readable(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static void t_fifo_order(void)
{
    queue *q = queue_new(1 << 20, NULL);
    TH_ASSERT(q);
    for (uint32_t i = 0; i < 10; i++) TH_ASSERT_EQ_INT(queue_push(q, mk(i, 10)), 0);
    TH_ASSERT_EQ_INT(queue_items(q), 10);
    for (uint32_t i = 0; i < 10; i++) {
        item *it = queue_pop(q);
        TH_ASSERT(it);
        TH_ASSERT_EQ_INT(it->count, i);
        item_free(it);
    }
    TH_ASSERT(queue_pop(q) == NULL);
    TH_ASSERT_EQ_INT(queue_bytes(q), 0);
    queue_free(q);
}

static void t_byte_limit_refuses(void)
{
    sw_metrics *m = metrics_new();
    size_t one = 100 + sizeof(item);
    queue *q = queue_new(one * 3, m);
    TH_ASSERT(q && m);
    for (int i = 0; i < 3; i++) TH_ASSERT_EQ_INT(queue_push(q, mk(1, 100)), 0);
    item *extra = mk(1, 100);
    TH_ASSERT_EQ_INT(queue_push(q, extra), SW_EFULL);   /* caller still owns it */
    TH_ASSERT_EQ_INT(queue_bytes(q), one * 3);
    TH_ASSERT(queue_fill_ratio(q) > 0.99);
    TH_ASSERT_EQ_INT(atomic_load(&m->queue_bytes[CLASS_NORMAL]), (int64_t)(one * 3));
    item_free(queue_pop(q));
    TH_ASSERT_EQ_INT(queue_push(q, extra), 0);          /* room again */
    TH_ASSERT_EQ_INT(atomic_load(&m->queue_dequeued[CLASS_NORMAL]), 1);
    queue_free(q);                                       /* frees what is left */
    metrics_free(m);
}

static void t_closed_refuses(void)
{
    queue *q = queue_new(1 << 20, NULL);
    TH_ASSERT_EQ_INT(queue_push(q, mk(1, 10)), 0);
    queue_close(q);
    item *it = mk(2, 10);
    TH_ASSERT_EQ_INT(queue_push(q, it), SW_ECLOSED);
    item_free(it);
    it = queue_pop(q);                                   /* pops still work */
    TH_ASSERT(it && it->count == 1);
    item_free(it);
    queue_free(q);
}

static void t_wake_fd(void)
{
    queue *q = queue_new(1 << 20, NULL);
    int fd = queue_wake_fd(q);
    TH_ASSERT(!readable(fd));
    TH_ASSERT_EQ_INT(queue_push(q, mk(1, 10)), 0);
    TH_ASSERT(readable(fd));
    queue_clear_wake(q);
    TH_ASSERT(!readable(fd));
    TH_ASSERT_EQ_INT(queue_push(q, mk(2, 10)), 0);       /* wakes again after clear */
    TH_ASSERT(readable(fd));
    queue_free(q);
}

#define STRESS_N 1000000u

static void *producer(void *arg)
{
    queue *q = arg;
    for (uint32_t i = 0; i < STRESS_N; i++) {
        item *it = item_new(SIG_LOGS, CLASS_NORMAL, i, 0, NULL, 0);
        if (!it) abort();
        while (queue_push(q, it) == SW_EFULL) sched_yield();
    }
    return NULL;
}

static void t_two_thread_stress(void)
{
    queue *q = queue_new(64 * sizeof(item), NULL);   /* tiny: forces refusals */
    pthread_t th;
    TH_ASSERT_EQ_INT(pthread_create(&th, NULL, producer, q), 0);
    uint32_t expect = 0;
    int in_order = 1;
    while (expect < STRESS_N) {
        item *it = queue_pop(q);
        if (!it) { sched_yield(); continue; }
        if (it->count != expect) in_order = 0;
        expect++;
        item_free(it);
    }
    pthread_join(th, NULL);
    TH_ASSERT(in_order);
    TH_ASSERT(queue_pop(q) == NULL);
    queue_free(q);
}

int main(void)
{
    TH_RUN(t_fifo_order);
    TH_RUN(t_byte_limit_refuses);
    TH_RUN(t_closed_refuses);
    TH_RUN(t_wake_fd);
    TH_RUN(t_two_thread_stress);
    return th_done();
}
