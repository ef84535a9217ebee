/* ring.h — bounded single-producer / single-consumer ring of pointers.
 *
 * The hand-off primitive between two threads: exactly one thread pushes
 * (the producer) and exactly one pops (the consumer); which threads those
 * are is the owner's business (the APQ: ingest pushes, export pops). The
 * ring stores borrowed pointers and never frees what they point to; the
 * owner drains it before ring_free(). Lock-free, no allocation after
 * ring_new(), capacity a power of two.
 *
 * DESIGN. Two monotonically increasing 64-bit indices, `tail` written only
 * by the producer and `head` only by the consumer, on separate cache lines;
 * slot = index & mask. The producer publishes a slot with a release store
 * of tail, the consumer takes it with an acquire load (and frees the slot
 * with a release store of head). Each side keeps a private copy of the
 * other side's index and reloads it only when the ring looks full (or
 * empty), so a backlogged ring costs no cache-line transfer per operation
 * beyond the slot itself.
 */
#ifndef SW_RING_H
#define SW_RING_H

#include <stddef.h>

typedef struct ring ring;

/* Returns an owned ring of at least min_slots slots (rounded up to a power
 * of two, at least 2, at most 2^30), or NULL. */
ring *ring_new(size_t min_slots);
/* NULL-safe. Does not touch the pointers still inside. */
void ring_free(ring *r);
size_t ring_capacity(const ring *r);

/* Producer. 0: p is in the ring; SW_EFULL: no free slot. p must not be NULL. */
int ring_push(ring *r, void *p);
/* Producer: 1 when the next ring_push() would fail. */
int ring_full(ring *r);
/* Producer: free slots (exact for the producer; more may free up). */
size_t ring_free_slots(ring *r);

/* Consumer. The oldest pointer, or NULL when empty. */
void *ring_pop(ring *r);
/* Consumer: the oldest pointer without removing it, or NULL. */
void *ring_peek(ring *r);

/* Any thread: pointers in the ring right now (a snapshot). */
size_t ring_count(const ring *r);

#endif
