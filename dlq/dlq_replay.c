/* dlq_replay.c — the DLQ as a paced replay source (see dlq_consumer.h). */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_consumer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "dlq/dlq_int.h"
#include "dlq/dlq_tb.h"
#include "queue/ring.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define DLQ_RP_RING_SLOTS 64
#define DLQ_RP_WAIT_MS 100 /* paused, ring full, read error */
#define DLQ_RP_IDLE_MS 50  /* nothing readable now, and no word of new records */
#define DLQ_RP_IDLE_LONG_MS 1000 /* nothing readable or to persist; woken by the writer */

typedef struct rp_rec {
    item *it;
    dlq_pos pos;
} rp_rec;

struct dlq_replay {
    dlq *d;                    /* borrowed: dlq_set_replay_rate publishes there */
    dlq_reader *r;             /* owned; NULL once closed */
    ring *ring;                /* rp_rec*: replay thread -> consumer */
    int efd;                   /* eventfd: records in the ring */
    pthread_t th;
    int running;               /* thread created, not joined (owner thread) */
    _Atomic int stop;
    _Atomic int paused;
    pthread_mutex_t mu;        /* protects kick */
    pthread_cond_t cv;         /* signalled with kick set */
    int kick;
    int idle;                  /* napping for lack of records (with mu) */
    /* replay thread only */
    dlq_tb tb;
    uint64_t rate;             /* 0: unpaced */
    unsigned rate_gen;         /* d->replay_rate_gen taken into rate */
    rp_rec *held;              /* read, waiting for tokens or ring room */
    int told;                  /* the writer's publish calls wake this source */
    uint64_t seen_gen;         /* d->publish_gen before the last read */
};

static void kick(dlq_replay *r)
{
    pthread_mutex_lock(&r->mu);
    r->kick = 1;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

/* Sleeps ns, or less when kicked; idle: for lack of records, and then
 * not at all if the segment table changed since the last read. */
static void nap(dlq_replay *r, int64_t ns, int idle)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ns += ts.tv_nsec;
    ts.tv_sec += (time_t)(ns / 1000000000);
    ts.tv_nsec = (long)(ns % 1000000000);
    pthread_mutex_lock(&r->mu);
    r->idle = idle;
    if (!idle || atomic_load(&r->d->publish_gen) == r->seen_gen)
        while (!r->kick && !atomic_load(&r->stop))
            if (pthread_cond_timedwait(&r->cv, &r->mu, &ts) == ETIMEDOUT) break;
    r->idle = 0;
    r->kick = 0;
    pthread_mutex_unlock(&r->mu);
}

/* The writer published segment changes (d->mu held): new records, maybe. */
static void on_published(void *arg)
{
    dlq_replay *r = arg;
    pthread_mutex_lock(&r->mu);
    if (r->idle) {
        r->kick = 1;
        pthread_cond_signal(&r->cv);
    }
    pthread_mutex_unlock(&r->mu);
}

/* Reads the next record into r->held. 0, or how long to wait. */
static int64_t read_one(dlq_replay *r)
{
    rp_rec *rec = malloc(sizeof *rec);
    if (!rec) return DLQ_RP_WAIT_MS * 1000000LL;
    int rc = dlq_reader_next(r->r, &rec->it, &rec->pos);
    if (rc == 0 && rec->it) {
        r->held = rec;
        return 0;
    }
    free(rec);
    if (rc) {
        LOG_ERROR_RL(10, "replay: cannot read the DLQ: %s", sw_strerror(rc));
        return DLQ_RP_WAIT_MS * 1000000LL;
    }
    /* Acknowledged positions wait to be persisted (and segments to be
     * deleted) by dlq_reader_sync: keep looking at the short interval. */
    int quiet = r->told && dlq_reader_unpersisted(r->r) == 0;
    return (quiet ? DLQ_RP_IDLE_LONG_MS : DLQ_RP_IDLE_MS) * 1000000LL;
}

/* Takes a rate dlq_set_replay_rate published since the last look. */
static void follow_rate(dlq_replay *r)
{
    unsigned gen = atomic_load_explicit(&r->d->replay_rate_gen, memory_order_acquire);
    if (gen == r->rate_gen) return;
    r->rate_gen = gen;
    r->rate = atomic_load_explicit(&r->d->replay_rate, memory_order_relaxed);
    if (r->rate) dlq_tb_init(&r->tb, r->rate, 0, clock_mono_ns());
    LOG_INFO("replay rate now %llu bytes/s%s", (unsigned long long)r->rate,
             r->rate ? "" : " (unpaced)");
}

/* One step; returns how long to sleep (0: go on at once). */
static int64_t step(dlq_replay *r)
{
    follow_rate(r);
    if (atomic_load(&r->paused)) {
        dlq_reader_sync(r->r, 0);
        return DLQ_RP_WAIT_MS * 1000000LL;
    }
    if (!r->held) {
        r->seen_gen = atomic_load(&r->d->publish_gen);
        int64_t w = read_one(r);
        if (w) {
            dlq_reader_sync(r->r, 0);
            return w;
        }
    }
    int64_t now = clock_mono_ns();
    size_t len = r->held->it->len;
    if (r->rate) {
        int64_t w = dlq_tb_wait_ns(&r->tb, len, now);
        /* at most DLQ_RP_WAIT_MS at a time: a new rate is seen that soon */
        if (w > 0) return w < DLQ_RP_WAIT_MS * 1000000LL ? w : DLQ_RP_WAIT_MS * 1000000LL;
    }
    if (ring_full(r->ring)) return DLQ_RP_WAIT_MS * 1000000LL; /* kicked when taken */
    if (r->rate) dlq_tb_take(&r->tb, len, now);
    ring_push(r->ring, r->held);
    r->held = NULL;
    uint64_t one = 1;
    ssize_t wr = write(r->efd, &one, sizeof one);
    (void)wr; /* EAGAIN only when the counter is saturated: still readable */
    return 0;
}

static void *thread_main(void *arg)
{
    dlq_replay *r = arg;
    pthread_setname_np(pthread_self(), "sw-replay");
    if (r->rate) dlq_tb_init(&r->tb, r->rate, 0, clock_mono_ns());
    while (!atomic_load(&r->stop)) {
        int64_t w = step(r);
        if (w > 0) nap(r, w, !r->held && !atomic_load(&r->paused));
    }
    if (r->held) { /* read but not handed over: still in the DLQ, unacked */
        item_free(r->held->it);
        free(r->held);
        r->held = NULL;
    }
    return NULL;
}

dlq_replay *dlq_replay_new(dlq *d, uint64_t rate)
{
    dlq_replay *r = calloc(1, sizeof *r);
    pthread_condattr_t ca;
    if (!r) return NULL;
    r->efd = -1;
    r->d = d;
    r->rate = rate;
    r->rate_gen = atomic_load(&d->replay_rate_gen);
    if (pthread_condattr_init(&ca) != 0) {
        free(r);
        return NULL;
    }
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, &ca);
    pthread_condattr_destroy(&ca);
    r->r = dlq_reader_new(d, 0, 0);
    r->ring = ring_new(DLQ_RP_RING_SLOTS);
    r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!r->r || !r->ring || r->efd < 0) {
        dlq_replay_free(r);
        return NULL;
    }
    pthread_mutex_lock(&d->mu); /* one source is woken; others poll */
    if (!d->published) {
        d->published = on_published;
        d->published_arg = r;
        r->told = 1;
    }
    pthread_mutex_unlock(&d->mu);
    return r;
}

int dlq_replay_start(dlq_replay *r)
{
    sigset_t all, old;
    if (r->running) return SW_EINVAL;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old); /* signals belong to main */
    int rc = pthread_create(&r->th, NULL, thread_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        LOG_ERROR("cannot start the replay thread: %s", strerror(rc));
        return SW_EIO;
    }
    r->running = 1;
    return 0;
}

void dlq_replay_stop(dlq_replay *r)
{
    if (!r || !r->running) return;
    atomic_store(&r->stop, 1);
    kick(r);
    pthread_join(r->th, NULL);
    r->running = 0;
}

void dlq_replay_close(dlq_replay *r)
{
    if (!r || !r->r) return;
    if (r->told) {
        pthread_mutex_lock(&r->d->mu);
        r->d->published = NULL;
        r->d->published_arg = NULL;
        pthread_mutex_unlock(&r->d->mu);
        r->told = 0;
    }
    dlq_reader_free(r->r);
    r->r = NULL;
}

void dlq_replay_free(dlq_replay *r)
{
    if (!r) return;
    dlq_replay_stop(r);
    dlq_replay_drain(r);
    dlq_replay_close(r);
    ring_free(r->ring);
    if (r->efd >= 0) close(r->efd);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
}

void dlq_set_replay_rate(dlq *d, uint64_t rate)
{
    atomic_store_explicit(&d->replay_rate, rate, memory_order_relaxed);
    atomic_fetch_add_explicit(&d->replay_rate_gen, 1, memory_order_release);
}

void dlq_replay_pause(dlq_replay *r, int paused)
{
    atomic_store(&r->paused, paused ? 1 : 0);
    if (!paused) kick(r);
}

int dlq_replay_fd(const dlq_replay *r) { return r->efd; }

void dlq_replay_clear(dlq_replay *r)
{
    uint64_t v;
    ssize_t rd = read(r->efd, &v, sizeof v);
    (void)rd;
}

const item *dlq_replay_peek(dlq_replay *r)
{
    rp_rec *rec = ring_peek(r->ring);
    return rec ? rec->it : NULL;
}

item *dlq_replay_take(dlq_replay *r, dlq_pos *pos)
{
    rp_rec *rec = ring_pop(r->ring);
    if (!rec) return NULL;
    item *it = rec->it;
    *pos = rec->pos;
    free(rec);
    kick(r); /* room in the ring */
    return it;
}

void dlq_replay_ack(dlq_replay *r, const dlq_pos *pos)
{
    if (r->r) dlq_reader_ack(r->r, pos); /* closed: replayed again after a restart */
}

void dlq_replay_drain(dlq_replay *r)
{
    rp_rec *rec;
    while (r->ring && (rec = ring_pop(r->ring)) != NULL) {
        item_free(rec->it); /* still in the DLQ, unacked */
        free(rec);
    }
}
