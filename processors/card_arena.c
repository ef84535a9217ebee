/* card_arena.c — bump allocator behind protobuf-c unpacking.
 *
 * protobuf-c allocates every sub-message, array and string separately;
 * through this arena each allocation is a pointer bump and freeing the
 * whole request is a reset. Chunks grow geometrically with the largest
 * request seen; a reset keeps chunks up to `keep` bytes and releases the
 * rest, so one huge request does not pin its memory.
 */
#include <stdlib.h>

#include "processors/card_int.h"

#define ARENA_ALIGN 16
#define ARENA_MIN_CHUNK (64 * 1024)

struct card_chunk {
    card_chunk *next;
    size_t size;  /* usable bytes after the header */
    size_t used;
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

static void *pa_alloc(void *data, size_t n)
{
    return card_arena_alloc(data, n);
}

static void pa_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

void card_arena_init(card_arena *a, size_t keep)
{
    a->head = NULL;
    a->held = 0;
    a->keep = keep;
    a->pa.alloc = pa_alloc;
    a->pa.free = pa_free;
    a->pa.allocator_data = a;
}

static void free_chain(card_chunk *c)
{
    while (c) {
        card_chunk *next = c->next;
        free(c);
        c = next;
    }
}

void card_arena_destroy(card_arena *a)
{
    free_chain(a->head);
    a->head = NULL;
    a->held = 0;
}

void *card_arena_alloc(card_arena *a, size_t n)
{
    if (n > SIZE_MAX / 2) return NULL;
    n = (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
    if (n == 0) n = ARENA_ALIGN;
    card_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t size = a->held > ARENA_MIN_CHUNK ? a->held : ARENA_MIN_CHUNK;
        if (size < n) size = n;
        c = malloc(sizeof *c + size);
        if (!c) return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
        a->held += size;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

void card_arena_reset(card_arena *a)
{
    card_chunk *c = a->head;
    if (!c) return;
    if (!c->next && c->size <= a->keep) {
        c->used = 0;
        return;
    }
    /* the request outgrew one chunk: replace the chain by a single chunk
     * of the total size (within keep), so the next one needs no malloc */
    size_t total = a->held;
    free_chain(c);
    a->head = NULL;
    a->held = 0;
    if (total > a->keep) return;
    c = malloc(sizeof *c + total);
    if (!c) return;
    c->size = total;
    c->used = 0;
    c->next = NULL;
    a->head = c;
    a->held = total;
}
