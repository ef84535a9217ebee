/* micro_apq.c — microbenchmark of the adaptive priority queue.
 *
 * Prints "# " lines, asserts nothing about time:
 *   - push+pop per item on one thread (ring hot in cache), with and without
 *     the sw_metrics accounting, and with a backlog of 1000 items;
 *   - two-thread throughput: the ingest-like thread pushes, the export-like
 *     thread pops; items come back through a second ring so nothing is
 *     allocated while timing.
 * Usage: micro_apq [items]   (default 20,000,000)
 */
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "queue/apq.h"
#include "queue/ring.h"
#include "runtime/err.h"

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static apq *mkq(sw_metrics *m)
{
    apq_opts o;
    apq_opts_default(&o);
    o.m = m;
    apq *q = apq_new(&o);
    if (!q) abort();
    return q;
}

static item **pool_new(size_t n)
{
    item **p = malloc(n * sizeof *p);
    if (!p) abort();
    for (size_t i = 0; i < n; i++) {
        p[i] = item_new(SIG_TRACES, (sw_class)(i % 3), 100, 0, "x", 1);
        if (!p[i]) abort();
    }
    return p;
}

static void pool_free(item **p, size_t n)
{
    for (size_t i = 0; i < n; i++) item_free(p[i]);
    free(p);
}

/* push+pop with `backlog` items kept queued. */
static void single_thread(const char *name, sw_metrics *m, size_t backlog, uint64_t n)
{
    apq *q = mkq(m);
    item **pool = pool_new(backlog + 1);
    for (size_t i = 0; i < backlog; i++)
        if (apq_push(q, pool[i]) != 0) abort();
    item *it = pool[backlog];
    double t0 = now_s();
    for (uint64_t i = 0; i < n; i++) {
        if (apq_push(q, it) != 0) abort();
        it = apq_pop(q);
    }
    double dt = now_s() - t0;
    printf("# apq push+pop, 1 thread, %-28s %6.1f ns/item\n", name, dt * 1e9 / (double)n);
    while (apq_pop(q)) {}
    apq_free(q);
    pool_free(pool, backlog + 1);
}

typedef struct duo {
    apq *q;
    ring *back;          /* consumer -> producer: items to reuse */
    uint64_t n;
} duo;

static void *pop_side(void *arg)
{
    duo *d = arg;
    for (uint64_t got = 0; got < d->n;) {
        item *it = apq_pop(d->q);
        if (!it) {
            sched_yield();
            continue;
        }
        got++;
        while (ring_push(d->back, it) != 0) sched_yield();
    }
    return NULL;
}

static int push_side(duo *d, item *it)
{
    return apq_push(d->q, it);
}

static void two_threads(sw_metrics *m, uint64_t n)
{
    enum { POOL = 4096 };
    duo d = {.q = mkq(m), .back = ring_new(POOL), .n = n};
    item **pool = pool_new(POOL);
    if (!d.back) abort();
    for (size_t i = 0; i < POOL; i++) ring_push(d.back, pool[i]);
    pthread_t th;
    double t0 = now_s();
    if (pthread_create(&th, NULL, pop_side, &d) != 0) abort();
    uint64_t full = 0;
    for (uint64_t i = 0; i < n; i++) {
        item *it;
        while (!(it = ring_pop(d.back))) sched_yield();
        while (push_side(&d, it) == SW_EFULL) {
            full++;
            sched_yield();
        }
    }
    pthread_join(th, NULL);
    double dt = now_s() - t0;
    printf("# apq two threads%s: %.1f M items/s, %.1f ns/item (%llu full)\n",
           m ? " (metrics on)" : "", (double)n / dt / 1e6,
           dt * 1e9 / (double)n,
           (unsigned long long)full);
    ring_free(d.back);
    apq_free(d.q);
    pool_free(pool, POOL);
}

int main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000ull;
    sw_metrics *m = metrics_new();
    if (!m || !n) return 1;
    single_thread("empty, no metrics", NULL, 0, n);
    single_thread("empty, metrics", m, 0, n);
    single_thread("backlog 1000, metrics", m, 1000, n);
    two_threads(NULL, n);
    two_threads(m, n);
    metrics_free(m);
    return 0;
}
