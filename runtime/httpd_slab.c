/* httpd_slab.c — connection structs in slabs (see httpd_int.h).
 *
 * A connection struct is about 2 KiB, and libevent allocates a few bytes
 * per descriptor number the first time it sees it; with plain malloc the
 * two interleave, so after a crowd of connections leaves, the heap is a
 * row of free 2 KiB holes between live bytes that malloc_trim() cannot give
 * back (it releases whole free pages only). Slabs of about
 * HTTPD_SLAB_BYTES are mapped on their own (mmap), and a slab whose
 * connections all closed is unmapped, so its memory goes back to the
 * kernel.
 * Ingest thread (the server's).
 */
#include "runtime/httpd_int.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define HTTPD_SLAB_BYTES (256 * 1024 + 4096)

struct hslab {
    hslab *prev, *next;        /* h->slabs */
    unsigned used, n;
    hconn *free;               /* linked through hconn.next */
    hconn items[];
};

static unsigned slab_items(void)
{
    size_t n = HTTPD_SLAB_BYTES / sizeof(hconn) + 1;
    return n < 16 ? 16 : (unsigned)n;
}

static void slab_unlink(httpd *h, hslab *s)
{
    if (s->prev) s->prev->next = s->next;
    else h->slabs = s->next;
    if (s->next) s->next->prev = s->prev;
    s->prev = s->next = NULL;
}

static void slab_push_front(httpd *h, hslab *s)
{
    s->next = h->slabs;
    if (h->slabs) h->slabs->prev = s;
    h->slabs = s;
}

static size_t slab_bytes(void) { return sizeof(hslab) + (size_t)slab_items() * sizeof(hconn); }

static void slab_release(hslab *s) { (void)munmap(s, slab_bytes()); }

static hslab *slab_new(httpd *h)
{
    unsigned n = slab_items();
    hslab *s = mmap(NULL, slab_bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                    -1, 0);
    if (s == MAP_FAILED) return NULL;
    s->prev = s->next = NULL;
    s->used = 0;
    s->n = n;
    s->free = NULL;
    for (unsigned i = n; i-- > 0;) {
        s->items[i].next = s->free;
        s->free = &s->items[i];
    }
    slab_push_front(h, s);
    return s;
}

hconn *httpd_slab_get(httpd *h)
{
    hslab *s = h->slabs;
    while (s && !s->free) s = s->next;
    if (!s && !(s = slab_new(h))) return NULL;
    hconn *c = s->free;
    s->free = c->next;
    s->used++;
    memset(c, 0, sizeof *c);
    c->slab = s;
    return c;
}

void httpd_slab_put(httpd *h, hconn *c)
{
    hslab *s = c->slab;
    c->next = s->free;
    s->free = c;
    s->used--;
    slab_unlink(h, s);
    if (s->used == 0 && h->slabs) { /* keep one empty slab at most */
        slab_release(s);
        return;
    }
    slab_push_front(h, s);
}

void httpd_slab_free_all(httpd *h)
{
    while (h->slabs) {
        hslab *s = h->slabs;
        slab_unlink(h, s);
        slab_release(s);
    }
}
