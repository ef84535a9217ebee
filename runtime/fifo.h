/* fifo.h — an intrusive singly linked FIFO with push-to-front, written once.
 *
 * The elements are the caller's structs; the FIFO links them through a
 * `next` pointer member whose offset it is given (SW_FIFO_INIT(type,
 * member)), so one implementation serves items, batches and anything else
 * with a link. O(1) push at either end and pop; sw_fifo_remove is O(n).
 * No allocation, no locking: it belongs to the thread that owns its
 * elements. An element is in at most one FIFO through one link at a time.
 */
#ifndef SW_FIFO_H
#define SW_FIFO_H

#include <stddef.h>

typedef struct sw_fifo {
    void *head, *tail;
    size_t link;   /* offsetof(element, next pointer) */
    size_t n;
} sw_fifo;

#define SW_FIFO_INIT(type, member) ((sw_fifo){NULL, NULL, offsetof(type, member), 0})

static inline void **sw_fifo_next_(const sw_fifo *f, void *x)
{
    return (void **)((char *)x + f->link);
}

/* Appends x (borrowed; the FIFO only links it). */
static inline void sw_fifo_push(sw_fifo *f, void *x)
{
    *sw_fifo_next_(f, x) = NULL;
    if (f->tail) *sw_fifo_next_(f, f->tail) = x;
    else f->head = x;
    f->tail = x;
    f->n++;
}

/* Puts x first in line. */
static inline void sw_fifo_push_front(sw_fifo *f, void *x)
{
    *sw_fifo_next_(f, x) = f->head;
    f->head = x;
    if (!f->tail) f->tail = x;
    f->n++;
}

/* The first element, or NULL. */
static inline void *sw_fifo_peek(const sw_fifo *f) { return f->head; }

/* Takes the first element out (its link is cleared), or NULL. */
static inline void *sw_fifo_pop(sw_fifo *f)
{
    void *x = f->head;
    if (!x) return NULL;
    f->head = *sw_fifo_next_(f, x);
    if (!f->head) f->tail = NULL;
    *sw_fifo_next_(f, x) = NULL;
    f->n--;
    return x;
}

/* Takes x out wherever it is; 1 if it was there. */
static inline int sw_fifo_remove(sw_fifo *f, void *x)
{
    void *prev = NULL;
    for (void *cur = f->head; cur; prev = cur, cur = *sw_fifo_next_(f, cur)) {
        if (cur != x) continue;
        void *next = *sw_fifo_next_(f, cur);
        if (prev) *sw_fifo_next_(f, prev) = next;
        else f->head = next;
        if (f->tail == cur) f->tail = prev;
        *sw_fifo_next_(f, cur) = NULL;
        f->n--;
        return 1;
    }
    return 0;
}

static inline size_t sw_fifo_len(const sw_fifo *f) { return f->n; }

#endif
