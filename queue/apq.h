/* apq.h — the adaptive priority queue between the ingest and export threads.
 *
 * Three classes (critical, high, normal; item->klass) share one byte
 * capacity, queue.max_bytes; fill = queued bytes / max_bytes, bytes being
 * item_size() (payload plus item header). The ingest thread is the only
 * producer (apq_push, apq_push_all), the export thread the only consumer
 * (apq_pop, apq_peek*, apq_clear_wake); the counters may be read from any
 * thread. A queued item is owned by the queue until apq_pop() hands it on.
 *
 * Dequeue order is smooth weighted round robin over the classes that hold
 * items (weights default 5:3:1): with all three backlogged every 9 pops give
 * critical, high, critical, normal, critical, high, critical, high, critical
 * — exactly 5:3:1 per cycle; a class that empties stops taking turns, the
 * others share its turns in their own ratio, and no class with data waits
 * longer than one cycle. O(1): three compares per pop.
 *
 * Spill: when the fill is at or above spill_threshold (0.95), or an item
 * would not fit in max_bytes, or its class ring has no free slot, the item
 * is offered to the spill interface (the DLQ plugs in there); apq_push()
 * answers APQ_SPILLED if it took the item, SW_EFULL if not (the caller keeps
 * the item and answers 429/503 with Retry-After). Nothing accepted is lost.
 *
 * Wake-up: apq_wake_fd() is an eventfd for the consumer's event_base; it
 * becomes readable after a push when the consumer has cleared the previous
 * wake-up (one write per wake-up, not per item). The consumer calls
 * apq_clear_wake() first, then pops until NULL. A consumer that watches
 * the eventfd edge-triggered (EV_ET) calls apq_clear_wake_edge() instead,
 * which saves reading the eventfd: every write is a new edge.
 *
 * DESIGN. One SPSC ring of item pointers per class (queue/ring.h) and one
 * atomic byte counter. The producer checks capacity against the counter
 * (which only it increases, so a stale read is conservative), adds the
 * bytes, then publishes the pointer with a release store; the consumer pops
 * with an acquire load and subtracts. No lock anywhere; the only fences are
 * the seq_cst pair of the wake-up handshake (producer: publish, fence, test
 * wake_pending; consumer: clear wake_pending, fence, look at the rings), so a
 * push racing with the consumer going idle can never be left unnoticed.
 */
#ifndef SW_APQ_H
#define SW_APQ_H

#include <stddef.h>
#include <stdint.h>

#include "config/cfg.h"
#include "runtime/item.h"
#include "runtime/metrics.h"

typedef struct apq apq;

/* apq_push() / apq_push_all(): accepted, but by the spill interface. */
#define APQ_SPILLED 1

typedef struct apq_spill {
    /* Called on the producer thread with an item the memory queue will not
     * take (it->klass tells its class). 0: took ownership of it; negative
     * (SW_EFULL, SW_EIO, ...): refused, the caller keeps it. */
    int (*spill)(void *arg, item *it);
    void *arg;
} apq_spill;

typedef struct apq_opts {
    uint64_t max_bytes;              /* > 0 */
    double spill_threshold;          /* (0, 1]: fill at which new items spill */
    unsigned weights[CLASS_COUNT];   /* each 1..1000 */
    size_t slots;                    /* ring slots per class; 0 = auto */
    apq_spill spill;                 /* .spill NULL: always refuse (SW_EFULL) */
    sw_metrics *m;                   /* registry, borrowed, may be NULL (apq_metrics.h) */
} apq_opts;

/* The defaults of the config schema (config/cfg_schema.c, read through
 * cfg_defaults(): 64 MiB, 0.95, 5:3:1), auto slots, no spill, no metrics.
 * 0, or SW_ENOMEM with *o zeroed (which apq_new refuses). */
int apq_opts_default(apq_opts *o);
/* queue.max_bytes, queue.spill_threshold and processors.priority.weights
 * of c (borrowed), auto slots; m borrowed, may be NULL. */
void apq_opts_from_cfg(apq_opts *o, const cfg *c, sw_metrics *m);
/* Auto slots: max_bytes / 4096 rounded up to a power of two, clamped to
 * [1024, 1M] — one slot per 4 KiB of capacity per class. */
size_t apq_auto_slots(uint64_t max_bytes);

/* Returns an owned queue, or NULL (invalid options, or out of memory or
 * file descriptors). o is copied. */
apq *apq_new(const apq_opts *o);
/* Frees the queue and every item still in it. NULL-safe; no thread may be
 * using the queue any more. */
void apq_free(apq *q);
/* Replaces the spill interface (s copied; NULL = refuse). Call before the
 * producer starts or on the producer thread. */
void apq_set_spill(apq *q, const apq_spill *s);

/* Producer. Takes ownership of it unless the answer is negative:
 *   0            queued in memory
 *   APQ_SPILLED  handed to the spill interface (counted in queue_spilled)
 *   SW_EFULL     no room and the spill interface refused: caller keeps it
 *   SW_ECLOSED   closed: caller keeps it
 *   SW_EINVAL    it->klass out of range: caller keeps it */
int apq_push(apq *q, item *it);
/* Producer: the items of one request (a classified split, up to a few).
 * Memory takes all of them or none; otherwise each is offered to the spill
 * interface in order. Returns 0 (all in memory), APQ_SPILLED (all accepted,
 * at least one spilled), or a negative code as apq_push(). *taken says how
 * many items, from the front, the queue or the spill now own: n on success,
 * 0 on SW_ECLOSED/SW_EINVAL, and on SW_EFULL the count the spill interface
 * took before refusing (usually 0; the caller keeps and frees the rest, and
 * a client retry may then repeat those — at least once, never lost). */
int apq_push_all(apq *q, item *const *its, size_t n, size_t *taken);

/* Consumer. Returns the next item by weighted round robin (owned by the
 * caller), or NULL when every class is empty. */
item *apq_pop(apq *q);
/* Consumer: the item apq_pop() would return now (borrowed), or NULL. */
const item *apq_peek(apq *q);
/* Consumer: that item's signal, or -1 when empty. */
int apq_peek_signal(apq *q);
/* eventfd that becomes readable after pushes; apq_clear_wake() re-arms it. */
int apq_wake_fd(const apq *q);
void apq_clear_wake(apq *q);
/* apq_clear_wake() for an edge-triggered watch: re-arms without reading.
 * The counter grows by one per wake-up and cannot fill (2^64 - 2). */
void apq_clear_wake_edge(apq *q);

/* Any thread. */
uint64_t apq_bytes(const apq *q);
uint64_t apq_items(const apq *q);
size_t apq_class_items(const apq *q, sw_class c);
uint64_t apq_max_bytes(const apq *q);
double apq_fill_ratio(const apq *q);
/* Counts one item of class k that its producer spilled to the DLQ without
 * offering it to the queue (spillway_queue_spilled_total). Producer thread. */
void apq_count_spilled(apq *q, sw_class k);
/* Changes the dequeue weights (each 1..1000, else SW_EINVAL and nothing
 * changes). Any thread: the consumer uses them from its next pop on; a pop
 * racing with the change may mix old and new weights once, which only
 * shifts one turn — the credits stay bounded either way. */
int apq_set_weights(apq *q, const unsigned w[CLASS_COUNT]);
/* Refuse further pushes (SW_ECLOSED); pops still work. Any thread. */
void apq_close(apq *q);

#endif
