/* exp_batch.h — the batcher: items of one signal gathered into batches.
 *
 * The batcher keeps one open batch per signal, seals it when it reaches
 * max_bytes or when timeout_ms passed since its first item, compresses it
 * at sealing (one compression context, reused), and keeps sealed batches
 * in one FIFO until the export loop takes them for a connection. It owns
 * every batch and its items (with their delivery trackers) until the loop
 * says a batch is done; a request body references batch memory, so a done
 * batch whose body libevent still references is freed when the last
 * reference is released.
 *
 * A batch moves OPEN -> READY -> FLIGHT -> (BACKOFF -> READY -> FLIGHT)*
 * -> DONE. The batcher counts batches in FLIGHT or BACKOFF (active). The
 * loop learns of timer events (a batch sealed by its timeout, a backoff
 * that ended) through wake(arg), given at construction; items it had to
 * let go (no memory) through drop(arg, ...). It calls nothing else: no
 * sending, no answers, no DLQ.
 *
 * Thread: the thread that runs `base` (the export thread), except
 * exp_batcher_new/_free (while that thread is not running).
 */
#ifndef SW_EXP_BATCH_H
#define SW_EXP_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "dlq/dlq.h"
#include "exporters/otlp/exp_breaker.h"
#include "runtime/buf.h"
#include "runtime/item.h"

struct event;
struct event_base;

typedef enum {
    EXP_B_OPEN = 0, /* accepting items; batch timer pending */
    EXP_B_READY,    /* sealed, waiting for a connection slot */
    EXP_B_FLIGHT,   /* request in flight */
    EXP_B_BACKOFF,  /* retry timer pending */
    EXP_B_DONE,     /* outcome counted; freed when refs reaches 0 */
} exp_batch_state;

typedef struct exp_batcher exp_batcher;
typedef struct exp_batch exp_batch;

/* A batch: read by the export loop; changed only through the functions
 * below, except the fields marked "loop". */
struct exp_batch {
    exp_batcher *bt;
    exp_batch *next;          /* ready FIFO */
    exp_batch *lprev, *lnext; /* live list (not DONE) or zombie list (DONE, refs > 0) */
    sw_signal sig;
    exp_batch_state state;
    item *head, *tail;        /* owned items, in arrival order */
    uint32_t n_items;
    uint64_t n_records;       /* sum of item->count */
    size_t raw_len;           /* sum of item->len */
    buf body;                 /* compressed body; empty: items are sent as they are */
    int encoding;             /* cfg_compression of body */
    struct event *timer;      /* batch timeout, then retry backoff; NULL once DONE */
    int refs;                 /* references held by libevent buffers */
    /* loop */
    int64_t first_attempt_ns; /* 0 before the first send */
    int64_t sent_ns;          /* when the latest attempt was sent */
    uint32_t attempt;         /* retries so far */
    brk_ticket ticket;        /* of the attempt in flight (BRK_DENIED: none) */
    int replay;               /* items come from the DLQ */
    dlq_pos rp_last;          /* replay: position of the last item */
};

typedef struct exp_batcher_cfg {
    uint64_t max_bytes;   /* batch.max_bytes: sealed at this many raw bytes */
    uint64_t timeout_ms;  /* batch.timeout: sealed this long after its first item */
    int compression;      /* cfg_compression applied at sealing */
} exp_batcher_cfg;

/* Timer events: a batch was sealed by its timeout or left BACKOFF. */
typedef void (*exp_batcher_wake_fn)(void *arg);
/* Items let go for lack of memory (already freed). */
typedef void (*exp_batcher_drop_fn)(void *arg, sw_signal sig, uint64_t items, uint64_t records);

/* Returns owned, or NULL. base borrowed; bc copied. */
exp_batcher *exp_batcher_new(struct event_base *base, const exp_batcher_cfg *bc,
                             exp_batcher_wake_fn wake, exp_batcher_drop_fn drop, void *arg);
/* Destroys every batch not DONE (they own timers: call before the base is
 * freed). */
void exp_batcher_free_live(exp_batcher *bt);
/* Configuration reload: batch size, timeout and compression (bc copied)
 * apply to batches sealed from now on. */
void exp_batcher_reconfigure(exp_batcher *bt, const exp_batcher_cfg *bc);
/* Frees DONE batches libevent never released and the batcher (after the
 * base was freed: freeing it releases the last body references). NULL-safe. */
void exp_batcher_free(exp_batcher *bt);

/* The arg given to exp_batcher_new (for callbacks that receive a batch). */
void *exp_batcher_arg(const exp_batcher *bt);
/* Batches in FLIGHT or BACKOFF. */
uint32_t exp_batcher_active(const exp_batcher *bt);
/* The open batch of sig, or NULL. */
exp_batch *exp_batcher_open(const exp_batcher *bt, sw_signal sig);
/* 1 if any signal has an open batch. */
int exp_batcher_any_open(const exp_batcher *bt);
/* Some batch not DONE, or NULL (for giving everything up). */
exp_batch *exp_batcher_any_live(const exp_batcher *bt);
/* batch.max_bytes. */
uint64_t exp_batcher_max_bytes(const exp_batcher *bt);
/* Ready FIFO: first sealed batch (borrowed) / takes it out. */
exp_batch *exp_batcher_ready_peek(const exp_batcher *bt);
exp_batch *exp_batcher_ready_pop(exp_batcher *bt);

/* Adds an item to its signal's open batch (takes ownership), sealing by
 * size before and after. 0, or SW_ENOMEM (the item was dropped: drop()). */
int exp_batcher_add(exp_batcher *bt, item *it);
/* Adds it to its signal's open batch without sealing or arming the timer
 * (giving everything up). 0, or SW_ENOMEM (the caller still owns it). */
int exp_batcher_add_unsealed(exp_batcher *bt, item *it);

/* A new, empty OPEN batch that is not its signal's open batch and has no
 * timer armed (replay batches, split halves, the probe). Owned by the
 * batcher; NULL without memory. */
exp_batch *exp_batch_new(exp_batcher *bt, sw_signal sig);
/* Appends it (takes ownership). */
void exp_batch_append(exp_batch *b, item *it);
/* Takes the items out of b as an owned chain (it->next links) and leaves b
 * empty. Items whose bytes a request body still references are copied
 * instead (the originals stay with b until it is freed). A copy that
 * cannot be made is dropped (drop()). */
item *exp_batch_take_items(exp_batch *b);
/* OPEN -> READY: compresses and queues b (front: first in line). */
void exp_batch_seal(exp_batch *b, int front);
/* READY -> FLIGHT (the loop sends it). */
void exp_batch_flight(exp_batch *b);
/* FLIGHT -> BACKOFF for delay_ms, then READY at the front of the FIFO. */
void exp_batch_backoff(exp_batch *b, uint64_t delay_ms);
/* Adds references to the body into out (a struct evbuffer). 0 or -1. */
int exp_batch_attach_body(exp_batch *b, void *out);
/* Splits b by items into two new sealed batches at the front of the FIFO
 * (the first half, the first ceil(n/2) items, first in line); the halves
 * keep b's replay mark and position; b is done. Returns the number of
 * halves made (a half whose copies all failed is dropped: drop()), or
 * SW_ENOMEM (b is left as it was). */
int exp_batch_split(exp_batch *b);
/* Leaves every list; frees b now or when libevent lets go of its body. */
void exp_batch_done(exp_batch *b);

#endif
