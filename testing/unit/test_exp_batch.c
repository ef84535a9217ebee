/* test_exp_batch.c — the batcher on its own: sealing by size and by
 * timeout, one open batch per signal, compression at sealing, the ready
 * FIFO and backoff order, taking items out while a request body still
 * references them, and the active count. */
#include "exporters/otlp/exp_batch.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <string.h>

#include "config/cfg.h"
#include "runtime/codec.h"
#include "runtime/err.h"
#include "testing/lib/th.h"

typedef struct env {
    struct event_base *base;
    exp_batcher *bt;
    int wakes;
    uint64_t dropped;
} env;

static void on_wake(void *arg)
{
    ((env *)arg)->wakes++;
}

static void on_drop(void *arg, sw_signal sig, uint64_t items, uint64_t records)
{
    (void)sig;
    (void)records;
    ((env *)arg)->dropped += items;
}

static void env_init(env *v, uint64_t max_bytes, uint64_t timeout_ms, int compression)
{
    memset(v, 0, sizeof *v);
    v->base = event_base_new();
    TH_ASSERT(v->base);
    exp_batcher_cfg bc = {max_bytes, timeout_ms, compression};
    v->bt = exp_batcher_new(v->base, &bc, on_wake, on_drop, v);
    TH_ASSERT(v->bt);
    TH_ASSERT(exp_batcher_arg(v->bt) == v);
}

static void env_destroy(env *v)
{
    exp_batcher_free_live(v->bt);
    event_base_free(v->base);
    exp_batcher_free(v->bt);
}

/* An item of len bytes, all of them c, counting `count` records. */
static item *mk(sw_signal sig, size_t len, uint8_t c, uint32_t count)
{
    uint8_t data[256];
    TH_ASSERT(len <= sizeof data);
    memset(data, c, len);
    item *it = item_new(sig, CLASS_NORMAL, count, 1, data, len);
    TH_ASSERT(it);
    return it;
}

/* Runs the loop until the batcher woke its owner n times (timers are a
 * few ms; the deadline only stops a broken test). */
static void wait_wakes(env *v, int n)
{
    for (int i = 0; i < 2000 && v->wakes < n; i++) event_base_loop(v->base, EVLOOP_ONCE);
    TH_ASSERT_EQ_INT(v->wakes, n);
}

static void t_seals_by_size(void)
{
    env v;
    env_init(&v, 100, 60000, CFG_COMP_NONE);
    TH_ASSERT_EQ_INT(exp_batcher_add(v.bt, mk(SIG_TRACES, 40, 'a', 1)), 0);
    TH_ASSERT_EQ_INT(exp_batcher_add(v.bt, mk(SIG_TRACES, 40, 'b', 2)), 0);
    TH_ASSERT(exp_batcher_ready_peek(v.bt) == NULL);
    /* 80 + 40 > 100: the open batch is sealed first, the item opens the next */
    TH_ASSERT_EQ_INT(exp_batcher_add(v.bt, mk(SIG_TRACES, 40, 'c', 4)), 0);
    exp_batch *b = exp_batcher_ready_pop(v.bt);
    TH_ASSERT(b);
    TH_ASSERT_EQ_INT(b->state, EXP_B_READY);
    TH_ASSERT_EQ_INT(b->n_items, 2);
    TH_ASSERT_EQ_INT(b->n_records, 3);
    TH_ASSERT_EQ_INT(b->raw_len, 80);
    TH_ASSERT_EQ_INT(b->head->data[0], 'a');
    TH_ASSERT_EQ_INT(b->tail->data[0], 'b');
    exp_batch *o = exp_batcher_open(v.bt, SIG_TRACES);
    TH_ASSERT(o && o->n_items == 1 && o->head->data[0] == 'c');
    /* reaching max_bytes exactly seals at once */
    TH_ASSERT_EQ_INT(exp_batcher_add(v.bt, mk(SIG_TRACES, 60, 'd', 1)), 0);
    TH_ASSERT(exp_batcher_open(v.bt, SIG_TRACES) == NULL);
    TH_ASSERT(exp_batcher_ready_peek(v.bt) == o);
    TH_ASSERT_EQ_INT(o->raw_len, 100);
    exp_batch_done(b);
    env_destroy(&v);
}

static void t_one_open_batch_per_signal(void)
{
    env v;
    env_init(&v, 1000, 60000, CFG_COMP_NONE);
    exp_batcher_add(v.bt, mk(SIG_TRACES, 10, 't', 1));
    exp_batcher_add(v.bt, mk(SIG_LOGS, 10, 'l', 1));
    exp_batcher_add(v.bt, mk(SIG_TRACES, 10, 'T', 1));
    exp_batch *t = exp_batcher_open(v.bt, SIG_TRACES), *l = exp_batcher_open(v.bt, SIG_LOGS);
    TH_ASSERT(t && l && t != l);
    TH_ASSERT_EQ_INT(t->n_items, 2);
    TH_ASSERT_EQ_INT(l->n_items, 1);
    TH_ASSERT(exp_batcher_open(v.bt, SIG_METRICS) == NULL);
    TH_ASSERT(exp_batcher_any_open(v.bt));
    env_destroy(&v); /* frees the open batches and their items */
}

static void t_seals_by_timeout(void)
{
    env v;
    env_init(&v, 1000, 5, CFG_COMP_NONE);
    exp_batcher_add(v.bt, mk(SIG_METRICS, 10, 'm', 1));
    TH_ASSERT(exp_batcher_ready_peek(v.bt) == NULL);
    wait_wakes(&v, 1);
    exp_batch *b = exp_batcher_ready_peek(v.bt);
    TH_ASSERT(b && b->sig == SIG_METRICS && b->state == EXP_B_READY);
    TH_ASSERT(!exp_batcher_any_open(v.bt));
    env_destroy(&v);
}

/* add_unsealed (giving everything up): no timer, no sealing by size. */
static void t_add_unsealed(void)
{
    env v;
    env_init(&v, 10, 1, CFG_COMP_NONE);
    TH_ASSERT_EQ_INT(exp_batcher_add_unsealed(v.bt, mk(SIG_LOGS, 20, 'x', 1)), 0);
    TH_ASSERT_EQ_INT(exp_batcher_add_unsealed(v.bt, mk(SIG_LOGS, 20, 'y', 1)), 0);
    exp_batch *b = exp_batcher_open(v.bt, SIG_LOGS);
    TH_ASSERT(b && b->n_items == 2);
    TH_ASSERT_EQ_INT(event_base_loop(v.base, EVLOOP_NONBLOCK), 1); /* no event pending */
    TH_ASSERT_EQ_INT(v.wakes, 0);
    TH_ASSERT(exp_batcher_any_live(v.bt) == b);
    env_destroy(&v);
}

static void t_compresses_at_seal(void)
{
    env v;
    env_init(&v, 1000, 60000, CFG_COMP_ZSTD);
    exp_batcher_add(v.bt, mk(SIG_TRACES, 100, 'p', 1));
    exp_batcher_add(v.bt, mk(SIG_TRACES, 50, 'q', 1));
    exp_batch *b = exp_batcher_open(v.bt, SIG_TRACES);
    exp_batch_seal(b, 0);
    TH_ASSERT_EQ_INT(b->encoding, CFG_COMP_ZSTD);
    buf out;
    buf_init(&out, 1 << 20);
    TH_ASSERT_EQ_INT(codec_zstd_decompress(b->body.data, b->body.len, &out), 0);
    TH_ASSERT_EQ_INT(out.len, 150);
    TH_ASSERT_EQ_INT(out.data[0], 'p');
    TH_ASSERT_EQ_INT(out.data[99], 'p');
    TH_ASSERT_EQ_INT(out.data[100], 'q');
    buf_destroy(&out);
    /* the body is one reference to the compressed bytes */
    struct evbuffer *ev = evbuffer_new();
    TH_ASSERT_EQ_INT(exp_batch_attach_body(b, ev), 0);
    TH_ASSERT_EQ_INT(b->refs, 1);
    TH_ASSERT_EQ_INT(evbuffer_get_length(ev), b->body.len);
    exp_batch_done(b); /* referenced: kept until the buffer lets go */
    evbuffer_free(ev);
    env_destroy(&v);
}

/* The ready FIFO: seal(front) goes first; a batch leaving BACKOFF goes to
 * the front; active counts FLIGHT and BACKOFF. */
static void t_fifo_and_backoff(void)
{
    env v;
    env_init(&v, 1000, 60000, CFG_COMP_NONE);
    exp_batch *a = exp_batch_new(v.bt, SIG_TRACES), *b = exp_batch_new(v.bt, SIG_TRACES);
    exp_batch *c = exp_batch_new(v.bt, SIG_TRACES);
    TH_ASSERT(a && b && c);
    TH_ASSERT(exp_batcher_open(v.bt, SIG_TRACES) == NULL); /* not the open batch */
    exp_batch_seal(a, 0);
    exp_batch_seal(b, 0);
    exp_batch_seal(c, 1);
    TH_ASSERT(exp_batcher_ready_pop(v.bt) == c);
    exp_batch_flight(c);
    exp_batch_flight(a); /* taken out of the FIFO wherever it is */
    TH_ASSERT_EQ_INT(exp_batcher_active(v.bt), 2);
    TH_ASSERT(exp_batcher_ready_peek(v.bt) == b);
    exp_batch_backoff(a, 2);
    TH_ASSERT_EQ_INT(exp_batcher_active(v.bt), 2);
    wait_wakes(&v, 1);
    TH_ASSERT_EQ_INT(a->state, EXP_B_READY);
    TH_ASSERT_EQ_INT(exp_batcher_active(v.bt), 1);
    TH_ASSERT(exp_batcher_ready_pop(v.bt) == a); /* a retry goes before newer batches */
    TH_ASSERT(exp_batcher_ready_pop(v.bt) == b);
    exp_batch_done(c);
    TH_ASSERT_EQ_INT(exp_batcher_active(v.bt), 0);
    env_destroy(&v);
}

/* Items referenced by a request body are copied out; the originals live
 * until the body is released. Unreferenced ones move out as they are. */
static void t_take_items(void)
{
    env v;
    env_init(&v, 1000, 60000, CFG_COMP_NONE);
    exp_batcher_add(v.bt, mk(SIG_LOGS, 30, 'r', 3));
    exp_batcher_add(v.bt, mk(SIG_LOGS, 0, 0, 0));
    exp_batch *b = exp_batcher_open(v.bt, SIG_LOGS);
    exp_batch_seal(b, 0);
    struct evbuffer *ev = evbuffer_new();
    TH_ASSERT_EQ_INT(exp_batch_attach_body(b, ev), 0);
    TH_ASSERT_EQ_INT(b->refs, 1); /* empty items add no reference */
    item *orig = b->head;
    item *chain = exp_batch_take_items(b);
    TH_ASSERT(chain && chain != orig && chain->next && !chain->next->next);
    TH_ASSERT_EQ_INT(chain->len, 30);
    TH_ASSERT_EQ_INT(chain->count, 3);
    TH_ASSERT_EQ_INT(b->n_items, 0);
    TH_ASSERT(b->head == orig); /* still referenced by the body */
    exp_batch_done(b);
    TH_ASSERT(exp_batcher_any_live(v.bt) == NULL);
    unsigned char peek[1];
    TH_ASSERT_EQ_INT(evbuffer_copyout(ev, peek, 1), 1);
    TH_ASSERT_EQ_INT(peek[0], 'r');
    evbuffer_free(ev); /* releases b */
    for (item *it = chain, *next; it; it = next) {
        next = it->next;
        item_free(it);
    }

    exp_batcher_add(v.bt, mk(SIG_LOGS, 10, 's', 1));
    b = exp_batcher_open(v.bt, SIG_LOGS);
    orig = b->head;
    chain = exp_batch_take_items(b);
    TH_ASSERT(chain == orig && b->head == NULL && b->raw_len == 0);
    exp_batch_done(b);
    item_free(chain);
    TH_ASSERT_EQ_INT(v.dropped, 0);
    env_destroy(&v);
}

/* A 413 halves a batch: first ceil(n/2) items first in line, both halves
 * before older sealed batches, the replay mark and position kept. */
static void t_split(void)
{
    env v;
    env_init(&v, 1000, 60000, CFG_COMP_NONE);
    exp_batch *old = exp_batch_new(v.bt, SIG_TRACES);
    exp_batch_seal(old, 0);
    exp_batch *b = exp_batch_new(v.bt, SIG_TRACES);
    for (int i = 0; i < 5; i++) exp_batch_append(b, mk(SIG_TRACES, 10, (uint8_t)('0' + i), 1));
    b->replay = 1;
    b->rp_last.seq = 42;
    exp_batch_seal(b, 0);
    exp_batch_flight(b);
    TH_ASSERT_EQ_INT(exp_batch_split(b), 2);
    TH_ASSERT_EQ_INT(exp_batcher_active(v.bt), 0);
    exp_batch *h0 = exp_batcher_ready_pop(v.bt), *h1 = exp_batcher_ready_pop(v.bt);
    TH_ASSERT(h0 && h1 && exp_batcher_ready_pop(v.bt) == old);
    TH_ASSERT_EQ_INT(h0->n_items, 3);
    TH_ASSERT_EQ_INT(h1->n_items, 2);
    TH_ASSERT_EQ_INT(h0->head->data[0], '0');
    TH_ASSERT_EQ_INT(h1->head->data[0], '3');
    TH_ASSERT(h0->replay && h1->replay);
    TH_ASSERT_EQ_INT(h1->rp_last.seq, 42);
    env_destroy(&v);
}

int main(void)
{
    TH_RUN(t_seals_by_size);
    TH_RUN(t_one_open_batch_per_signal);
    TH_RUN(t_seals_by_timeout);
    TH_RUN(t_add_unsealed);
    TH_RUN(t_compresses_at_seal);
    TH_RUN(t_fifo_and_backoff);
    TH_RUN(t_take_items);
    TH_RUN(t_split);
    return th_done();
}
