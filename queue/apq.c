/* apq.c — see apq.h. */
#define LOG_COMPONENT "queue"
#include "queue/apq.h"

#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "queue/apq_metrics.h"
#include "queue/ring.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define APQ_LINE 64
#define APQ_MAX_WEIGHT 1000u

struct apq {
    /* consumer only: smooth WRR credit per class */
    alignas(APQ_LINE) int64_t cur[CLASS_COUNT];
    /* written by both threads */
    alignas(APQ_LINE) _Atomic uint64_t bytes;
    alignas(APQ_LINE) _Atomic int wake_pending;
    _Atomic int closed;
    /* read-only after apq_new(), except spill (producer thread) */
    alignas(APQ_LINE) ring *r[CLASS_COUNT];
    _Atomic int64_t w[CLASS_COUNT]; /* apq_set_weights: any thread, relaxed */
    uint64_t max_bytes;
    uint64_t spill_bytes;        /* fill >= this: new items spill */
    apq_spill spill;
    apq_metrics *m;              /* owned by the metrics registry, or NULL */
    int efd;
};

int apq_opts_default(apq_opts *o)
{
    cfg *c = cfg_defaults();
    memset(o, 0, sizeof *o);
    if (!c) return SW_ENOMEM;
    apq_opts_from_cfg(o, c, NULL);
    cfg_free(c);
    return 0;
}

void apq_opts_from_cfg(apq_opts *o, const cfg *c, sw_metrics *m)
{
    memset(o, 0, sizeof *o);
    o->max_bytes = c->queue.max_bytes;
    o->spill_threshold = c->queue.spill_threshold;
    for (int k = 0; k < CLASS_COUNT; k++) o->weights[k] = c->priority.weights[k];
    o->m = m;
}

size_t apq_auto_slots(uint64_t max_bytes)
{
    uint64_t want = max_bytes / 4096;
    size_t n = 1024;
    while (n < want && n < ((size_t)1 << 20)) n <<= 1;
    return n;
}

static int opts_valid(const apq_opts *o)
{
    if (o->max_bytes == 0) return 0;
    if (!(o->spill_threshold > 0.0 && o->spill_threshold <= 1.0)) return 0;
    for (int k = 0; k < CLASS_COUNT; k++)
        if (o->weights[k] < 1 || o->weights[k] > APQ_MAX_WEIGHT) return 0;
    return o->slots <= ((size_t)1 << 30);
}

static void init_fields(apq *q, const apq_opts *o)
{
    for (int k = 0; k < CLASS_COUNT; k++) atomic_init(&q->w[k], (int64_t)o->weights[k]);
    q->max_bytes = o->max_bytes;
    q->spill_bytes = (uint64_t)((double)o->max_bytes * o->spill_threshold);
    if (q->spill_bytes > q->max_bytes) q->spill_bytes = q->max_bytes;
    q->spill = o->spill;
    q->m = apq_metrics_get(o->m);
    atomic_init(&q->bytes, 0);
    atomic_init(&q->wake_pending, 0);
    atomic_init(&q->closed, 0);
    if (q->m) atomic_store_explicit(&q->m->queue_max_bytes, q->max_bytes, memory_order_relaxed);
}

apq *apq_new(const apq_opts *o)
{
    apq *q = NULL;
    if (!opts_valid(o)) return NULL;
    q = aligned_alloc(APQ_LINE, sizeof *q);
    if (!q) return NULL;
    memset(q, 0, sizeof *q);
    q->efd = -1;
    size_t slots = o->slots ? o->slots : apq_auto_slots(o->max_bytes);
    for (int k = 0; k < CLASS_COUNT; k++)
        if (!(q->r[k] = ring_new(slots))) goto fail;
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) {
        LOG_ERROR("apq: eventfd: %s", strerror(errno));
        goto fail;
    }
    init_fields(q, o);
    if (o->m && !q->m) goto fail;
    return q;
fail:
    apq_free(q);
    return NULL;
}

void apq_free(apq *q)
{
    if (!q) return;
    for (int k = 0; k < CLASS_COUNT; k++) {
        item *it;
        while (q->r[k] && (it = ring_pop(q->r[k])) != NULL) item_free(it);
        ring_free(q->r[k]);
    }
    if (q->efd >= 0) close(q->efd);
    free(q);
}

void apq_set_spill(apq *q, const apq_spill *s)
{
    if (s) q->spill = *s;
    else memset(&q->spill, 0, sizeof q->spill);
}

/* ---- producer ----------------------------------------------------------- */

static void account(apq *q, const item *it, int64_t sign)
{
    if (!q->m) return;
    metrics_gauge_add(&q->m->queue_items[it->klass], sign);
    metrics_gauge_add(&q->m->queue_bytes[it->klass], sign * (int64_t)item_size(it));
}

/* Publishes it (room already checked). */
static void enqueue(apq *q, item *it)
{
    atomic_fetch_add_explicit(&q->bytes, item_size(it), memory_order_relaxed);
    /* Count before publishing: once pushed, the consumer may pop and free it. */
    account(q, it, +1);
    int rc = ring_push(q->r[it->klass], it);
    (void)rc; /* cannot fail: the producer saw a free slot and is the only one filling */
}

/* Wakes the consumer unless a wake-up is still pending. See DESIGN. */
static void wake(apq *q)
{
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&q->wake_pending, memory_order_relaxed)) return;
    if (atomic_exchange_explicit(&q->wake_pending, 1, memory_order_relaxed)) return;
    uint64_t one = 1;
    ssize_t w = write(q->efd, &one, sizeof one);
    (void)w; /* EAGAIN only when the counter is saturated: already readable */
}

void apq_count_spilled(apq *q, sw_class k)
{
    if (q->m && (unsigned)k < CLASS_COUNT) metrics_add(&q->m->queue_spilled[k], 1);
}

/* Offers it to the spill interface: APQ_SPILLED (counted) or SW_EFULL. */
static int spill_one(apq *q, item *it)
{
    unsigned k = it->klass;   /* read before it changes hands */
    if (!q->spill.spill || q->spill.spill(q->spill.arg, it) != 0) return SW_EFULL;
    if (q->m) metrics_add(&q->m->queue_spilled[k], 1);
    return APQ_SPILLED;
}

int apq_push(apq *q, item *it)
{
    if (atomic_load_explicit(&q->closed, memory_order_acquire)) return SW_ECLOSED;
    if (it->klass >= CLASS_COUNT) return SW_EINVAL;
    size_t sz = item_size(it);
    unsigned k = it->klass;
    uint64_t b = atomic_load_explicit(&q->bytes, memory_order_relaxed);
    if (b >= q->spill_bytes || sz > q->max_bytes - b || ring_full(q->r[k]))
        return spill_one(q, it);
    enqueue(q, it);
    wake(q);
    return 0;
}

/* 1 when memory can take all n items now; threshold: honour spill_bytes
 * (else only the hard limits: max_bytes and ring slots). */
static int fits_all(apq *q, item *const *its, size_t n, int threshold)
{
    size_t need[CLASS_COUNT] = {0};
    uint64_t sum = 0;
    uint64_t b = atomic_load_explicit(&q->bytes, memory_order_relaxed);
    if (threshold && b >= q->spill_bytes) return 0;
    for (size_t i = 0; i < n; i++) {
        need[its[i]->klass]++;
        sum += item_size(its[i]);
    }
    if (sum > q->max_bytes - b) return 0;
    for (int k = 0; k < CLASS_COUNT; k++)
        if (need[k] && ring_free_slots(q->r[k]) < need[k]) return 0;
    return 1;
}

static void enqueue_all(apq *q, item *const *its, size_t n)
{
    for (size_t i = 0; i < n; i++) enqueue(q, its[i]);
    wake(q);
}

int apq_push_all(apq *q, item *const *its, size_t n, size_t *taken)
{
    *taken = 0;
    if (atomic_load_explicit(&q->closed, memory_order_acquire)) return SW_ECLOSED;
    for (size_t i = 0; i < n; i++)
        if (its[i]->klass >= CLASS_COUNT) return SW_EINVAL;
    if (fits_all(q, its, n, 1)) {
        enqueue_all(q, its, n);
        *taken = n;
        return 0;
    }
    while (*taken < n && spill_one(q, its[*taken]) == APQ_SPILLED) (*taken)++;
    if (*taken == n) return APQ_SPILLED;
    if (*taken == 0) return SW_EFULL;
    /* part of the request is spilled already: the rest may use memory up
     * to the hard limit rather than be refused */
    if (!fits_all(q, its + *taken, n - *taken, 0)) return SW_EFULL;
    enqueue_all(q, its + *taken, n - *taken);
    *taken = n;
    return APQ_SPILLED;
}

/* ---- consumer ----------------------------------------------------------- */

/* Smooth weighted round robin over the classes with data: each gains its
 * weight, the richest is served and pays the sum of the weights in play.
 * An empty class loses its credit. Ties go to the more critical class.
 * Returns the class, or -1 when all are empty. */
static int wrr_pick(apq *q, int64_t cur[CLASS_COUNT])
{
    int best = -1;
    int64_t total = 0;
    for (int k = 0; k < CLASS_COUNT; k++) {
        if (!ring_peek(q->r[k])) {
            cur[k] = 0;
            continue;
        }
        int64_t w = atomic_load_explicit(&q->w[k], memory_order_relaxed);
        cur[k] += w;
        total += w;
        if (best < 0 || cur[k] > cur[best]) best = k;
    }
    if (best >= 0) cur[best] -= total;
    return best;
}

item *apq_pop(apq *q)
{
    int k = wrr_pick(q, q->cur);
    if (k < 0) return NULL;
    item *it = ring_pop(q->r[k]);
    atomic_fetch_sub_explicit(&q->bytes, item_size(it), memory_order_relaxed);
    if (q->m) {
        account(q, it, -1);
        metrics_add(&q->m->queue_dequeued[k], 1);
    }
    return it;
}

const item *apq_peek(apq *q)
{
    int64_t cur[CLASS_COUNT];
    memcpy(cur, q->cur, sizeof cur);
    int k = wrr_pick(q, cur);
    return k < 0 ? NULL : ring_peek(q->r[k]);
}

int apq_peek_signal(apq *q)
{
    const item *it = apq_peek(q);
    return it ? it->signal : -1;
}

int apq_wake_fd(const apq *q) { return q->efd; }

void apq_clear_wake_edge(apq *q)
{
    atomic_store_explicit(&q->wake_pending, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
}

/* Not written as a read plus apq_clear_wake_edge(): gcc inlines that call
 * and then refuses the fence under -fsanitize=thread (-Werror=tsan). */
void apq_clear_wake(apq *q)
{
    uint64_t v;
    ssize_t r = read(q->efd, &v, sizeof v);
    (void)r; /* EAGAIN when nothing was written: fine */
    atomic_store_explicit(&q->wake_pending, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_seq_cst);
}

/* ---- any thread --------------------------------------------------------- */

uint64_t apq_bytes(const apq *q) { return atomic_load_explicit(&q->bytes, memory_order_relaxed); }

size_t apq_class_items(const apq *q, sw_class c)
{
    return (unsigned)c < CLASS_COUNT ? ring_count(q->r[c]) : 0;
}

uint64_t apq_items(const apq *q)
{
    uint64_t n = 0;
    for (int k = 0; k < CLASS_COUNT; k++) n += ring_count(q->r[k]);
    return n;
}

uint64_t apq_max_bytes(const apq *q) { return q->max_bytes; }

double apq_fill_ratio(const apq *q) { return (double)apq_bytes(q) / (double)q->max_bytes; }

int apq_set_weights(apq *q, const unsigned w[CLASS_COUNT])
{
    for (int k = 0; k < CLASS_COUNT; k++)
        if (w[k] < 1 || w[k] > APQ_MAX_WEIGHT) return SW_EINVAL;
    for (int k = 0; k < CLASS_COUNT; k++)
        atomic_store_explicit(&q->w[k], (int64_t)w[k], memory_order_relaxed);
    return 0;
}

void apq_close(apq *q) { atomic_store_explicit(&q->closed, 1, memory_order_release); }
