/* queue.h — the interim bounded in-memory queue between ingest and export.
 *
 * A FIFO of items bounded by bytes (queue.max_bytes). The ingest thread
 * pushes, the export thread pops: a mutex guards the list (interim design;
 * the priority queue replaces it with per-class lock-free rings). A push that
 * would pass the byte limit is refused with SW_EFULL and the caller keeps the
 * item, so the receiver can answer 429/503: nothing accepted is dropped.
 * The consumer waits on queue_wake_fd() (an eventfd, readable after a push).
 */
#ifndef SW_QUEUE_H
#define SW_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/item.h"
#include "runtime/metrics.h"

typedef struct queue queue;

/* Returns an owned queue, or NULL. m is borrowed (may be NULL). */
queue *queue_new(uint64_t max_bytes, sw_metrics *m);
/* Frees the queue and every item still in it. NULL-safe. */
void queue_free(queue *q);
/* Ingest thread. 0: the queue took ownership of it. SW_EFULL: over capacity,
 * SW_ECLOSED: closed; in both the caller still owns it. */
int queue_push(queue *q, item *it);
/* Export thread. Returns an owned item, or NULL when empty. */
item *queue_pop(queue *q);
/* Export thread: the first item's signal without removing it; -1 if empty. */
int queue_peek_signal(queue *q);
/* eventfd that becomes readable after pushes; queue_clear_wake() drains it. */
int queue_wake_fd(const queue *q);
void queue_clear_wake(queue *q);
uint64_t queue_bytes(queue *q);
uint64_t queue_items(queue *q);
double queue_fill_ratio(queue *q);
/* Refuse further pushes (shutdown). Pops still work. */
void queue_close(queue *q);

#endif
