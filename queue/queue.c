/* queue.c — see queue.h.
 *
 * DESIGN: a singly linked FIFO guarded by one mutex. The ingest thread is the
 * only producer and the export thread the only consumer; both hold the lock
 * for a few instructions. The byte count is kept under the same lock, and
 * mirrored into sw_metrics for /metrics. Wake-ups go through an eventfd the
 * consumer registers with its event_base: a push writes to it only when the
 * consumer has consumed the previous wake-up (`wake_pending`), so a backlog
 * costs one write, not one per item.
 */
#include "queue/queue.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "runtime/err.h"

struct queue {
    pthread_mutex_t mu;      /* protects head, tail, bytes, items, closed, wake_pending */
    item *head, *tail;
    uint64_t bytes, items, max_bytes;
    int closed;
    int wake_pending;
    int efd;
    sw_metrics *m;           /* borrowed, may be NULL */
};

queue *queue_new(uint64_t max_bytes, sw_metrics *m)
{
    queue *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) goto fail;
    if (pthread_mutex_init(&q->mu, NULL) != 0) goto fail_fd;
    q->max_bytes = max_bytes;
    q->m = m;
    if (m) atomic_store(&m->queue_max_bytes, max_bytes);
    return q;
fail_fd:
    close(q->efd);
fail:
    free(q);
    return NULL;
}

void queue_free(queue *q)
{
    if (!q) return;
    item *it = q->head;
    while (it) {
        item *next = it->next;
        item_free(it);
        it = next;
    }
    pthread_mutex_destroy(&q->mu);
    close(q->efd);
    free(q);
}

static void account(queue *q, const item *it, int sign)
{
    if (!q->m) return;
    metrics_gauge_add(&q->m->queue_items[it->klass], sign);
    metrics_gauge_add(&q->m->queue_bytes[it->klass], sign * (int64_t)item_size(it));
}

int queue_push(queue *q, item *it)
{
    size_t sz = item_size(it);
    int wake = 0;
    pthread_mutex_lock(&q->mu);
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return SW_ECLOSED;
    }
    if (q->bytes + sz > q->max_bytes) {
        pthread_mutex_unlock(&q->mu);
        return SW_EFULL;
    }
    it->next = NULL;
    if (q->tail) q->tail->next = it;
    else q->head = it;
    q->tail = it;
    q->bytes += sz;
    q->items++;
    if (!q->wake_pending) {
        q->wake_pending = 1;
        wake = 1;
    }
    account(q, it, +1);
    pthread_mutex_unlock(&q->mu);
    if (wake) {
        uint64_t one = 1;
        ssize_t w = write(q->efd, &one, sizeof one);
        (void)w; /* EAGAIN only if the counter is saturated: already readable */
    }
    return 0;
}

item *queue_pop(queue *q)
{
    pthread_mutex_lock(&q->mu);
    item *it = q->head;
    if (it) {
        q->head = it->next;
        if (!q->head) q->tail = NULL;
        q->bytes -= item_size(it);
        q->items--;
        it->next = NULL;
        account(q, it, -1);
        if (q->m) metrics_add(&q->m->queue_dequeued[it->klass], 1);
    }
    pthread_mutex_unlock(&q->mu);
    return it;
}

int queue_peek_signal(queue *q)
{
    pthread_mutex_lock(&q->mu);
    int sig = q->head ? q->head->signal : -1;
    pthread_mutex_unlock(&q->mu);
    return sig;
}

int queue_wake_fd(const queue *q) { return q->efd; }

void queue_clear_wake(queue *q)
{
    uint64_t v;
    pthread_mutex_lock(&q->mu);
    ssize_t r = read(q->efd, &v, sizeof v);
    (void)r;
    q->wake_pending = 0;
    pthread_mutex_unlock(&q->mu);
}

uint64_t queue_bytes(queue *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t b = q->bytes;
    pthread_mutex_unlock(&q->mu);
    return b;
}

uint64_t queue_items(queue *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t n = q->items;
    pthread_mutex_unlock(&q->mu);
    return n;
}

double queue_fill_ratio(queue *q)
{
    return q->max_bytes ? (double)queue_bytes(q) / (double)q->max_bytes : 0.0;
}

void queue_close(queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = 1;
    pthread_mutex_unlock(&q->mu);
}
