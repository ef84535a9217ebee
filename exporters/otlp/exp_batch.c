/* exp_batch.c — the batcher (exp_batch.h): build, seal, keep, release.
 *
 * Items of one signal are chained in arrival order; their bytes, concatenated,
 * are one valid Export*ServiceRequest. Sealing compresses them into one body
 * (gzip level 6 / zstd level 3) or, with compression none, leaves them where
 * they are: the request body then references each item's bytes. A retry
 * resends exactly the same bytes. Items keep their delivery trackers
 * (runtime/item_track.h) while their batch exists; an item freed without
 * being settled is settled as failed by item_free(). Export thread only.
 */
#define LOG_COMPONENT "exporter"
#include "exporters/otlp/exp_batch.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <stdlib.h>

#include "config/cfg.h"
#include "runtime/clock.h"
#include "runtime/codec.h"
#include "runtime/err.h"
#include "runtime/fifo.h"
#include "runtime/log.h"

struct exp_batcher {
    struct event_base *base;   /* borrowed */
    exp_batcher_cfg cfg;
    exp_batcher_wake_fn wake;
    exp_batcher_drop_fn drop;
    void *arg;
    codec_cctx *cctx;          /* owned: reused for every batch */
    exp_batch *open[SIG_COUNT];
    sw_fifo ready;             /* sealed batches waiting for a slot (exp_batch.next) */
    exp_batch *live;           /* every batch not DONE */
    exp_batch *zombies;        /* DONE batches still referenced */
    uint32_t active;           /* batches in FLIGHT or BACKOFF */
};

/* ---- lists --------------------------------------------------------------- */

static void dlist_link(exp_batch **head, exp_batch *b)
{
    b->lprev = NULL;
    b->lnext = *head;
    if (*head) (*head)->lprev = b;
    *head = b;
}

static void dlist_unlink(exp_batch **head, exp_batch *b)
{
    if (b->lprev) b->lprev->lnext = b->lnext;
    else *head = b->lnext;
    if (b->lnext) b->lnext->lprev = b->lprev;
    b->lprev = b->lnext = NULL;
}

static void set_state(exp_batch *b, exp_batch_state st)
{
    int was = b->state == EXP_B_FLIGHT || b->state == EXP_B_BACKOFF;
    int is = st == EXP_B_FLIGHT || st == EXP_B_BACKOFF;
    b->bt->active = b->bt->active + (uint32_t)is - (uint32_t)was;
    b->state = st;
}

/* ---- the batcher ----------------------------------------------------------- */

exp_batcher *exp_batcher_new(struct event_base *base, const exp_batcher_cfg *bc,
                             exp_batcher_wake_fn wake, exp_batcher_drop_fn drop, void *arg)
{
    exp_batcher *bt = calloc(1, sizeof *bt);
    if (!bt) return NULL;
    bt->base = base;
    bt->cfg = *bc;
    bt->wake = wake;
    bt->drop = drop;
    bt->arg = arg;
    bt->ready = SW_FIFO_INIT(exp_batch, next);
    if (!(bt->cctx = codec_cctx_new())) {
        free(bt);
        return NULL;
    }
    return bt;
}

static void batch_destroy(exp_batch *b)
{
    item *it = b->head;
    while (it) {
        item *next = it->next;
        item_free(it);
        it = next;
    }
    buf_destroy(&b->body);
    if (b->timer) event_free(b->timer);
    free(b);
}

static void free_list(exp_batch **head)
{
    while (*head) {
        exp_batch *b = *head;
        dlist_unlink(head, b);
        batch_destroy(b);
    }
}

void exp_batcher_reconfigure(exp_batcher *bt, const exp_batcher_cfg *bc)
{
    bt->cfg = *bc; /* open batches seal by the new size and timeout from now on */
}

void exp_batcher_free_live(exp_batcher *bt)
{
    if (!bt) return;
    free_list(&bt->live);
    for (int s = 0; s < SIG_COUNT; s++) bt->open[s] = NULL;
    bt->ready = SW_FIFO_INIT(exp_batch, next);
    bt->active = 0;
}

void exp_batcher_free(exp_batcher *bt)
{
    if (!bt) return;
    exp_batcher_free_live(bt);
    free_list(&bt->zombies);
    codec_cctx_free(bt->cctx);
    free(bt);
}

void *exp_batcher_arg(const exp_batcher *bt) { return bt->arg; }
uint32_t exp_batcher_active(const exp_batcher *bt) { return bt->active; }
exp_batch *exp_batcher_open(const exp_batcher *bt, sw_signal sig) { return bt->open[sig]; }
exp_batch *exp_batcher_any_live(const exp_batcher *bt) { return bt->live; }
uint64_t exp_batcher_max_bytes(const exp_batcher *bt) { return bt->cfg.max_bytes; }
exp_batch *exp_batcher_ready_peek(const exp_batcher *bt) { return sw_fifo_peek(&bt->ready); }

int exp_batcher_any_open(const exp_batcher *bt)
{
    for (int s = 0; s < SIG_COUNT; s++)
        if (bt->open[s]) return 1;
    return 0;
}

exp_batch *exp_batcher_ready_pop(exp_batcher *bt)
{
    return sw_fifo_pop(&bt->ready);
}

/* ---- one batch --------------------------------------------------------------- */

static void batch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    exp_batch *b = arg;
    exp_batcher *bt = b->bt;
    (void)fd;
    (void)what;
    if (b->state == EXP_B_OPEN) {
        exp_batch_seal(b, 0);
    } else if (b->state == EXP_B_BACKOFF) {
        set_state(b, EXP_B_READY);
        sw_fifo_push_front(&bt->ready, b); /* retries go before newer batches */
    }
    bt->wake(bt->arg);
}

exp_batch *exp_batch_new(exp_batcher *bt, sw_signal sig)
{
    exp_batch *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->timer = evtimer_new(bt->base, batch_timer_cb, b);
    if (!b->timer) {
        free(b);
        return NULL;
    }
    b->bt = bt;
    b->sig = sig;
    b->state = EXP_B_OPEN;
    b->encoding = CFG_COMP_NONE;
    b->ticket = BRK_DENIED;
    buf_init(&b->body, 0);
    dlist_link(&bt->live, b);
    return b;
}

void exp_batch_done(exp_batch *b)
{
    exp_batcher *bt = b->bt;
    if (b->state == EXP_B_DONE) return;
    if (b->state == EXP_B_OPEN && bt->open[b->sig] == b) bt->open[b->sig] = NULL;
    if (b->state == EXP_B_READY) sw_fifo_remove(&bt->ready, b);
    set_state(b, EXP_B_DONE);
    dlist_unlink(&bt->live, b);
    if (b->timer) {
        event_free(b->timer);
        b->timer = NULL;
    }
    if (b->refs == 0) batch_destroy(b);
    else dlist_link(&bt->zombies, b);
}

static void body_ref_done(const void *data, size_t len, void *arg)
{
    exp_batch *b = arg;
    (void)data;
    (void)len;
    if (--b->refs > 0 || b->state != EXP_B_DONE) return;
    dlist_unlink(&b->bt->zombies, b);
    batch_destroy(b);
}

void exp_batch_append(exp_batch *b, item *it)
{
    it->next = NULL;
    if (b->tail) b->tail->next = it;
    else b->head = it;
    b->tail = it;
    b->n_items++;
    b->n_records += it->count;
    b->raw_len += it->len;
}

/* 1 while a request body references the items' own bytes. */
static int items_referenced(const exp_batch *b)
{
    return b->refs > 0 && b->encoding == CFG_COMP_NONE;
}

static item *copy_items(exp_batch *b)
{
    item *head = NULL, **tail = &head;
    for (item *it = b->head; it; it = it->next) {
        item *cp = item_new((sw_signal)it->signal, (sw_class)it->klass, it->count,
                            it->recv_ns, it->data, it->len);
        if (!cp) {
            LOG_ERROR_RL(1, "out of memory copying an item: dropped 1 item (%u records)",
                         it->count);
            b->bt->drop(b->bt->arg, (sw_signal)it->signal, 1, it->count);
            continue;
        }
        cp->trk = it->trk; /* the copy carries the delivery reference on */
        it->trk = NULL;
        *tail = cp;
        tail = &cp->next;
    }
    *tail = NULL; /* the originals are freed with b, once libevent lets go */
    return head;
}

item *exp_batch_take_items(exp_batch *b)
{
    item *head;
    if (items_referenced(b)) {
        head = copy_items(b);
    } else {
        head = b->head;
        b->head = b->tail = NULL;
    }
    b->n_items = 0;
    b->n_records = 0;
    b->raw_len = 0;
    return head;
}

/* The open batch of sig, created (timer armed when arm) if there is none. */
static exp_batch *open_batch(exp_batcher *bt, sw_signal sig, int arm)
{
    exp_batch *b = bt->open[sig];
    if (b) return b;
    if (!(b = exp_batch_new(bt, sig))) return NULL;
    bt->open[sig] = b;
    if (arm) {
        struct timeval tv = clock_ms_to_tv(bt->cfg.timeout_ms);
        evtimer_add(b->timer, &tv);
    }
    return b;
}

int exp_batcher_add(exp_batcher *bt, item *it)
{
    exp_batch *b = bt->open[it->signal];
    if (b && b->raw_len + it->len > bt->cfg.max_bytes) exp_batch_seal(b, 0);
    if (!(b = open_batch(bt, (sw_signal)it->signal, 1))) {
        LOG_ERROR_RL(1, "out of memory for a batch: dropped 1 item (%u records)", it->count);
        bt->drop(bt->arg, (sw_signal)it->signal, 1, it->count);
        item_free(it);
        return SW_ENOMEM;
    }
    exp_batch_append(b, it);
    if (b->raw_len >= bt->cfg.max_bytes) exp_batch_seal(b, 0);
    return 0;
}

int exp_batcher_add_unsealed(exp_batcher *bt, item *it)
{
    exp_batch *b = open_batch(bt, (sw_signal)it->signal, 0);
    if (!b) return SW_ENOMEM;
    exp_batch_append(b, it);
    return 0;
}

/* Compresses the concatenated items into b->body, per config. On failure
 * the batch is sent uncompressed. */
static void batch_compress(exp_batcher *bt, exp_batch *b)
{
    int enc = bt->cfg.compression;
    buf tmp;
    const uint8_t *in;
    int rc = 0;
    if (enc == CFG_COMP_NONE) return;
    buf_init(&tmp, b->raw_len);
    if (b->n_items == 1) {
        in = b->head->data;
    } else {
        for (item *it = b->head; it && rc == 0; it = it->next) rc = buf_append(&tmp, it->data, it->len);
        in = tmp.data;
    }
    buf_init(&b->body, b->raw_len + b->raw_len / 8 + 1024);
    if (rc == 0 && enc == CFG_COMP_GZIP)
        rc = codec_cctx_gzip(bt->cctx, in, b->raw_len, &b->body, 6);
    else if (rc == 0)
        rc = codec_cctx_zstd(bt->cctx, in, b->raw_len, &b->body, 3);
    buf_destroy(&tmp);
    if (rc != 0) {
        LOG_WARN_RL(10, "compression failed (%s): sending a batch uncompressed", sw_strerror(rc));
        buf_destroy(&b->body);
        buf_init(&b->body, 0);
        return;
    }
    b->encoding = enc;
}

void exp_batch_seal(exp_batch *b, int front)
{
    exp_batcher *bt = b->bt;
    if (b->state != EXP_B_OPEN) return;
    if (bt->open[b->sig] == b) bt->open[b->sig] = NULL;
    evtimer_del(b->timer);
    if (b->n_items) batch_compress(bt, b);
    set_state(b, EXP_B_READY);
    if (front) sw_fifo_push_front(&bt->ready, b);
    else sw_fifo_push(&bt->ready, b);
}

void exp_batch_flight(exp_batch *b)
{
    if (b->state == EXP_B_READY) sw_fifo_remove(&b->bt->ready, b);
    set_state(b, EXP_B_FLIGHT);
}

void exp_batch_backoff(exp_batch *b, uint64_t delay_ms)
{
    set_state(b, EXP_B_BACKOFF);
    struct timeval tv = clock_ms_to_tv(delay_ms);
    evtimer_add(b->timer, &tv);
}

int exp_batch_attach_body(exp_batch *b, void *out)
{
    struct evbuffer *ev = out;
    if (b->encoding != CFG_COMP_NONE) {
        if (evbuffer_add_reference(ev, b->body.data, b->body.len, body_ref_done, b) != 0)
            return -1;
        b->refs++;
        return 0;
    }
    for (item *it = b->head; it; it = it->next) {
        if (it->len == 0) continue;
        if (evbuffer_add_reference(ev, it->data, it->len, body_ref_done, b) != 0) return -1;
        b->refs++;
    }
    return 0;
}

int exp_batch_split(exp_batch *b)
{
    exp_batch *h[2] = {exp_batch_new(b->bt, b->sig), exp_batch_new(b->bt, b->sig)};
    if (!h[0] || !h[1]) {
        for (int i = 0; i < 2; i++)
            if (h[i]) exp_batch_done(h[i]);
        return SW_ENOMEM;
    }
    int replay = b->replay;
    dlq_pos last = b->rp_last;
    item *chain = exp_batch_take_items(b);
    exp_batch_done(b);
    uint32_t got = 0, i = 0;
    for (item *it = chain; it; it = it->next) got++;
    for (item *it = chain, *next; it; it = next, i++) {
        next = it->next;
        exp_batch_append(h[i < (got + 1) / 2 ? 0 : 1], it);
    }
    int pieces = 0;
    for (int k = 1; k >= 0; k--) {
        h[k]->replay = replay;
        h[k]->rp_last = last;
        if (h[k]->n_items == 0) { /* copies failed: counted dropped */
            exp_batch_done(h[k]);
            continue;
        }
        exp_batch_seal(h[k], 1);
        pieces++;
    }
    return pieces;
}
