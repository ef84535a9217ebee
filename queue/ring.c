/* ring.c — see ring.h. */
#include "queue/ring.h"

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"

#define RING_LINE 64
#define RING_MAX_SLOTS ((size_t)1 << 30)

struct ring {
    /* consumer's line: head is written by the consumer only */
    alignas(RING_LINE) _Atomic uint64_t head;
    uint64_t tail_seen;          /* consumer's copy of tail */
    /* producer's line: tail is written by the producer only */
    alignas(RING_LINE) _Atomic uint64_t tail;
    uint64_t head_seen;          /* producer's copy of head */
    /* read-only after ring_new() */
    alignas(RING_LINE) uint64_t mask;
    void **slots;
};

ring *ring_new(size_t min_slots)
{
    size_t n = 2;
    if (min_slots > RING_MAX_SLOTS) return NULL;
    while (n < min_slots) n <<= 1;
    ring *r = aligned_alloc(RING_LINE, sizeof *r);
    if (!r) return NULL;
    memset(r, 0, sizeof *r);
    r->slots = calloc(n, sizeof *r->slots);
    if (!r->slots) {
        free(r);
        return NULL;
    }
    r->mask = n - 1;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    return r;
}

void ring_free(ring *r)
{
    if (!r) return;
    free(r->slots);
    free(r);
}

size_t ring_capacity(const ring *r) { return (size_t)r->mask + 1; }

size_t ring_free_slots(ring *r)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t cap = r->mask + 1;
    if (t - r->head_seen >= cap)
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
    return (size_t)(cap - (t - r->head_seen));
}

int ring_full(ring *r) { return ring_free_slots(r) == 0; }

int ring_push(ring *r, void *p)
{
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
    if (t - r->head_seen > r->mask) {
        r->head_seen = atomic_load_explicit(&r->head, memory_order_acquire);
        if (t - r->head_seen > r->mask) return SW_EFULL;
    }
    r->slots[t & r->mask] = p;
    atomic_store_explicit(&r->tail, t + 1, memory_order_release);
    return 0;
}

/* Consumer: 1 when slot h holds a pointer to take. */
static inline int has_data(ring *r, uint64_t h)
{
    if (h != r->tail_seen) return 1;
    r->tail_seen = atomic_load_explicit(&r->tail, memory_order_acquire);
    return h != r->tail_seen;
}

void *ring_pop(ring *r)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (!has_data(r, h)) return NULL;
    void *p = r->slots[h & r->mask];
    atomic_store_explicit(&r->head, h + 1, memory_order_release);
    return p;
}

void *ring_peek(ring *r)
{
    uint64_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
    return has_data(r, h) ? r->slots[h & r->mask] : NULL;
}

size_t ring_count(const ring *r)
{
    /* head first: tail only grows, so tail - head never goes negative */
    uint64_t h = atomic_load_explicit(&r->head, memory_order_acquire);
    uint64_t t = atomic_load_explicit(&r->tail, memory_order_acquire);
    return (size_t)(t - h);
}
