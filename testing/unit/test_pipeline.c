/* test_pipeline.c — the pipeline stage: processors, classification and
 * all-or-nothing admission to the memory queue or the DLQ.
 *
 * Each case builds a pipeline on a private event_base (never dispatched:
 * DLQ completions are run with pl_flush, the pipeline's own wait), a real
 * queue and, where needed, a real DLQ in a temp dir. What reached the DLQ is
 * read back after dlq_close() and a reopen, the way a restart would replay
 * it. Requests are built with th_otlp (service.name decides the class).
 */
#include "testing/lib/th.h"

#include <errno.h>
#include <event2/event.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/cfg.h"
#include "dlq/dlq.h"
#include "dlq/dlq_journal.h"
#include "pipeline/pipeline.h"
#include "queue/apq.h"
#include "runtime/clock.h"
#include "runtime/item_track.h"
#include "runtime/metrics.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "queue/apq_metrics.h"

/* ---- fixture ---------------------------------------------------------- */

typedef struct fixture {
    struct event_base *base;
    cfg c;
    cfg_prio_rule rule;
    sw_metrics *m;
    apq *q;
    dlq *d;
    dlq_opts dopts;
    char dir[256];
    pipeline *pl;
} fixture;

/* Write error injection: fails with ENOSPC while armed, after writing a
 * few bytes, so a partial record lands in the segment and must be cut. */
static _Atomic int fail_writes;
static ssize_t failing_pwrite(int fd, const void *p, size_t n, off_t off)
{
    if (!atomic_load(&fail_writes)) return pwrite(fd, p, n, off);
    if (n > 10) {
        ssize_t w = pwrite(fd, p, 10, off);
        if (w > 0) return w;
    }
    errno = ENOSPC;
    return -1;
}

/* queue_bytes: queue.max_bytes (spill threshold 0.95); with_dlq: open a DLQ. */
static int fx_durable; /* the next fx_start uses queue.mode durable */
/* What a receiver would count from the outcomes, since the start of the
 * case (reset by fx_start): accepted items, and refused items by status. */
static uint64_t g_accepted, g_refused[PL_REFUSED_DECODE + 1];

static void fx_start(fixture *f, uint64_t queue_bytes, int with_dlq)
{
    memset(f, 0, sizeof *f);
    g_accepted = 0;
    memset(g_refused, 0, sizeof g_refused);
    f->base = event_base_new();
    TH_ASSERT(f->base);
    f->rule = (cfg_prio_rule){CLASS_CRITICAL, "service.name", "^checkout", 0, 0, 1, 1};
    f->c.priority.rules = &f->rule;
    f->c.priority.n_rules = 1;
    f->c.priority.weights[CLASS_CRITICAL] = 5;
    f->c.priority.weights[CLASS_HIGH] = 3;
    f->c.priority.weights[CLASS_NORMAL] = 1;
    f->c.queue.max_bytes = queue_bytes;
    f->c.queue.spill_threshold = 0.95;
    f->c.queue.mode = fx_durable ? CFG_QUEUE_DURABLE : CFG_QUEUE_MEMORY;
    f->c.dlq.max_size = 1ull << 30;
    f->m = metrics_new();
    apq_opts qo;
    apq_opts_from_cfg(&qo, &f->c, f->m);
    f->q = apq_new(&qo);
    TH_ASSERT(f->m && f->q);
    if (with_dlq) {
        TH_ASSERT(th_tmpdir(f->dir, sizeof f->dir) == 0);
        memset(&f->dopts, 0, sizeof f->dopts);
        f->dopts.dir = f->dir;
        f->dopts.segment_size = 1 << 20;
        f->dopts.max_size = 1ull << 30;
        f->dopts.compression_level = 3;
        f->dopts.fsync = CFG_FSYNC_ALWAYS;
        f->dopts.pwrite = failing_pwrite;
        f->dopts.probe_ms = 20; /* a failed write makes the DLQ unavailable a while */
        TH_ASSERT_EQ_INT(dlq_open(&f->dopts, f->m, &f->d), 0);
        dlq_wait_recovered(f->d);
    }
    f->pl = pl_new(f->base, &f->c, f->q, f->d, f->m);
    TH_ASSERT(f->pl);
}

static void fx_stop(fixture *f)
{
    pl_flush(f->pl, 5000);
    dlq_close(f->d);
    pl_free(f->pl);
    apq_free(f->q);
    metrics_free(f->m);
    event_base_free(f->base);
    atomic_store(&fail_writes, 0);
}

/* What the callback saw. */
typedef struct seen {
    int calls;
    pl_outcome o;
    char msg[256];
} seen;

static void on_done(void *arg, const pl_outcome *o)
{
    seen *s = arg;
    if (o->status == PL_ACCEPTED) g_accepted += o->items;
    else g_refused[o->status] += o->items;
    s->calls++;
    s->o = *o;
    snprintf(s->msg, sizeof s->msg, "%s", o->message ? o->message : "");
}

static void submit(fixture *f, const th_otlp *d, seen *s)
{
    memset(s, 0, sizeof *s);
    pl_request rq = {d->sig, d->pb, d->pb_len, (uint32_t)d->items, clock_mono_ns(), NULL};
    pl_submit(f->pl, &rq, on_done, s);
}

/* Submits and runs DLQ completions until the callback ran. */
static void submit_wait(fixture *f, const th_otlp *d, seen *s)
{
    submit(f, d, s);
    if (s->calls == 0) pl_flush(f->pl, 10000);
    TH_ASSERT_EQ_INT(s->calls, 1);
}

/* A traces request of two resources: critical (checkout) and normal. */
static th_otlp *mixed(uint32_t seed, size_t spans)
{
    th_res_spec rs[2] = {{"checkout-api", seed, spans, TH_STATUS_OK},
                         {"cart", seed + 1, spans, TH_STATUS_OK}};
    th_otlp *d = th_otlp_new_traces(rs, 2);
    TH_ASSERT(d);
    return d;
}

static th_otlp *single(const char *service, uint32_t seed, size_t spans)
{
    th_res_spec rs = {service, seed, spans, TH_STATUS_OK};
    th_otlp *d = th_otlp_new_traces(&rs, 1);
    TH_ASSERT(d);
    return d;
}

/* Closes the DLQ, reopens it and reads every record (up to max) into out. */
static int dlq_records(fixture *f, item **out, int max)
{
    dlq_close(f->d);
    f->d = NULL;
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&f->dopts, NULL, &d), 0);
    dlq_wait_recovered(d); /* the writer thread's start-up scan */
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    TH_ASSERT(r);
    int n = 0;
    for (int idle = 0; n < max && idle < th_slow_ms(100);) { /* 500 ms idle, times SW_TEST_SLOW */
        item *it = NULL;
        dlq_pos pos;
        TH_ASSERT_EQ_INT(dlq_reader_next(r, &it, &pos), 0);
        if (!it) {
            idle++;
            th_nap_ms(5);
            continue;
        }
        idle = 0;
        out[n++] = it;
    }
    dlq_reader_free(r);
    dlq_close(d);
    return n;
}

static uint64_t refused(pl_status st) { return g_refused[st]; }

/* ---- cases ------------------------------------------------------------ */

static void t_memory_single_and_mixed(void)
{
    fixture f;
    fx_start(&f, 1 << 20, 0);
    th_otlp *a = single("search", 1, 3), *b = mixed(10, 2);
    seen s;
    submit(&f, a, &s);
    TH_ASSERT_EQ_INT(s.calls, 1); /* memory admission answers inside pl_submit */
    TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    TH_ASSERT_EQ_INT(s.o.items, 3);
    TH_ASSERT_EQ_INT(s.o.rejected, 0);
    TH_ASSERT(s.o.message == NULL);
    submit(&f, b, &s);
    TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    TH_ASSERT_EQ_INT(s.o.items, 4);
    TH_ASSERT_EQ_INT(apq_class_items(f.q, CLASS_CRITICAL), 1);
    TH_ASSERT_EQ_INT(apq_class_items(f.q, CLASS_NORMAL), 2);
    TH_ASSERT_EQ_INT(g_accepted, 7);
    item *it = apq_pop(f.q); /* critical first: the checkout resource only */
    TH_ASSERT(it && it->klass == CLASS_CRITICAL && it->count == 2);
    item_free(it);
    it = apq_pop(f.q);       /* the single-class request: its original bytes */
    TH_ASSERT(it && it->klass == CLASS_NORMAL && it->count == 3 && it->len == a->pb_len);
    TH_ASSERT(memcmp(it->data, a->pb, a->pb_len) == 0);
    item_free(it);
    th_otlp_free(a);
    th_otlp_free(b);
    fx_stop(&f);
}

static void t_empty_and_undecodable(void)
{
    fixture f;
    fx_start(&f, 1 << 20, 0);
    seen s;
    memset(&s, 0, sizeof s);
    pl_request empty = {SIG_LOGS, NULL, 0, 0, clock_mono_ns(), NULL};
    pl_submit(f.pl, &empty, on_done, &s);
    TH_ASSERT_EQ_INT(s.calls, 1);
    TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    TH_ASSERT_EQ_INT(s.o.items, 0);
    static const uint8_t junk[] = {0x0a, 0x7f, 0x01}; /* field 1, length past the end */
    memset(&s, 0, sizeof s);
    pl_request bad = {SIG_TRACES, junk, sizeof junk, 5, clock_mono_ns(), NULL};
    pl_submit(f.pl, &bad, on_done, &s);
    TH_ASSERT_EQ_INT(s.calls, 1);
    TH_ASSERT_EQ_INT(s.o.status, PL_REFUSED_DECODE);
    TH_ASSERT_EQ_INT(s.o.retry_after_s, 0);
    TH_ASSERT_EQ_INT(refused(PL_REFUSED_DECODE), 5);
    TH_ASSERT_EQ_INT(apq_items(f.q), 0);
    fx_stop(&f);
}

/* Without a DLQ a request memory cannot take is refused, whole. */
static void t_full_without_dlq(void)
{
    fixture f;
    fx_start(&f, 64 * 1024, 0);
    th_otlp *d = mixed(20, 40);
    seen s;
    int accepted = 0;
    for (int i = 0; i < 100 && (i == 0 || s.o.status == PL_ACCEPTED); i++) {
        submit(&f, d, &s);
        TH_ASSERT_EQ_INT(s.calls, 1);
        accepted += s.o.status == PL_ACCEPTED;
    }
    TH_ASSERT_EQ_INT(s.o.status, PL_REFUSED_FULL);
    TH_ASSERT(s.o.retry_after_s > 0);
    TH_ASSERT_EQ_STR(s.msg, "queue full");
    /* every accepted request is in memory in full: one item per class each */
    TH_ASSERT_EQ_INT(apq_class_items(f.q, CLASS_CRITICAL), (size_t)accepted);
    TH_ASSERT_EQ_INT(apq_class_items(f.q, CLASS_NORMAL), (size_t)accepted);
    TH_ASSERT_EQ_INT(refused(PL_REFUSED_FULL), 80);
    th_otlp_free(d);
    fx_stop(&f);
}

/* A mixed request that straddles the memory limit — its critical part
 * would still fit in memory, the whole request not — goes to the DLQ
 * whole, as one record of its most critical class; memory is left as it
 * was. */
static void t_straddling_request_goes_to_dlq_whole(void)
{
    fixture f;
    th_otlp *small = single("cart", 30, 1), *big = mixed(31, 25);
    th_res_spec crit = {"checkout-api", 31, 25, TH_STATUS_OK};
    th_otlp *part = th_otlp_new_traces(&crit, 1); /* big's critical part alone */
    TH_ASSERT(part);
    fx_start(&f, 64 * 1024, 1);
    /* fill memory with small items to just below the spill threshold */
    uint64_t below = (uint64_t)(0.95 * 64 * 1024);
    seen s;
    while (apq_bytes(f.q) + sizeof(item) + small->pb_len < below) {
        submit(&f, small, &s);
        TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    }
    uint64_t bytes = apq_bytes(f.q), items = apq_items(f.q), room = 64 * 1024 - bytes;
    printf("# memory %llu bytes, room %llu; request %zu bytes, its critical part %zu\n",
           (unsigned long long)bytes, (unsigned long long)room, big->pb_len, part->pb_len);
    TH_ASSERT_MSG(big->pb_len + 2 * sizeof(item) > room && part->pb_len + sizeof(item) < room,
                  "the request must straddle the limit");
    submit(&f, big, &s);
    TH_ASSERT_EQ_INT(s.calls, 0); /* waits for the DLQ */
    TH_ASSERT_EQ_INT(pl_pending(f.pl), 1);
    TH_ASSERT_EQ_INT(pl_flush(f.pl, 10000), 0);
    TH_ASSERT_EQ_INT(s.calls, 1);
    TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    TH_ASSERT_EQ_INT(s.o.items, 50);
    TH_ASSERT_EQ_INT(apq_bytes(f.q), bytes); /* nothing of it in memory */
    TH_ASSERT_EQ_INT(apq_items(f.q), items);
    TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(f.m)->queue_spilled[CLASS_CRITICAL]), 1);
    TH_ASSERT_EQ_INT(atomic_load(&apq_metrics_get(f.m)->queue_spilled[CLASS_NORMAL]), 0);
    item *recs[4];
    TH_ASSERT_EQ_INT(dlq_records(&f, recs, 4), 1);
    TH_ASSERT_EQ_INT(recs[0]->klass, CLASS_CRITICAL);
    TH_ASSERT_EQ_INT(recs[0]->count, 50);
    TH_ASSERT(recs[0]->len == big->pb_len && memcmp(recs[0]->data, big->pb, big->pb_len) == 0);
    item_free(recs[0]);
    th_otlp_free(small);
    th_otlp_free(big);
    th_otlp_free(part);
    fx_stop(&f);
    th_rmtree(f.dir);
}

/* A DLQ write failure refuses the request, and nothing of it is ever
 * replayed; the retry is stored exactly once. */
static void t_dlq_write_failure_refuses_whole_request(void)
{
    fixture f;
    th_otlp *d = mixed(40, 30), *other = single("search", 42, 2);
    fx_start(&f, 4096, 1); /* memory cannot take the request */
    seen s;
    atomic_store(&fail_writes, 1);
    submit_wait(&f, d, &s);
    TH_ASSERT_EQ_INT(s.o.status, PL_REFUSED_FULL);
    TH_ASSERT(s.o.retry_after_s > 0);
    TH_ASSERT_EQ_INT(s.o.items, 60);
    TH_ASSERT_EQ_INT(refused(PL_REFUSED_FULL), 60);
    TH_ASSERT_EQ_INT(g_accepted, 0);
    atomic_store(&fail_writes, 0);
    /* The write error made the DLQ unavailable until its re-probe succeeds
     * (dlq.h); the client retries after Retry-After. */
    for (int i = 0; i < 500 && !dlq_available(f.d); i++) th_nap_ms(10);
    TH_ASSERT(dlq_available(f.d));
    submit_wait(&f, d, &s); /* the client's retry */
    TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    submit_wait(&f, other, &s); /* small enough for memory */
    TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    TH_ASSERT_EQ_INT(g_accepted, 62);
    TH_ASSERT_EQ_INT(apq_items(f.q), 1);
    item *recs[8];
    int n = dlq_records(&f, recs, 8);
    TH_ASSERT_EQ_INT(n, 1); /* the retry, once; nothing of the refused attempt */
    TH_ASSERT(recs[0]->len == d->pb_len && memcmp(recs[0]->data, d->pb, d->pb_len) == 0);
    TH_ASSERT_EQ_INT(recs[0]->count, 60);
    for (int i = 0; i < n; i++) item_free(recs[i]);
    th_otlp_free(d);
    th_otlp_free(other);
    fx_stop(&f);
    th_rmtree(f.dir);
}

/* The DLQ refusing the append at once (max_size) refuses the request at once. */
static void t_dlq_full_refuses_at_once(void)
{
    fixture f;
    th_otlp *d = mixed(50, 30);
    fx_start(&f, 4096, 0);
    TH_ASSERT(th_tmpdir(f.dir, sizeof f.dir) == 0);
    f.dopts = (dlq_opts){.dir = f.dir, .segment_size = 1 << 20, .max_size = 1024,
                         .compression_level = 3, .fsync = CFG_FSYNC_ALWAYS};
    TH_ASSERT_EQ_INT(dlq_open(&f.dopts, f.m, &f.d), 0);
    pl_free(f.pl);
    f.pl = pl_new(f.base, &f.c, f.q, f.d, f.m);
    TH_ASSERT(f.pl);
    seen s;
    submit(&f, d, &s);
    TH_ASSERT_EQ_INT(s.calls, 1);
    TH_ASSERT_EQ_INT(s.o.status, PL_REFUSED_FULL);
    TH_ASSERT_EQ_INT(pl_pending(f.pl), 0);
    item *recs[2];
    TH_ASSERT_EQ_INT(dlq_records(&f, recs, 2), 0);
    th_otlp_free(d);
    fx_stop(&f);
    th_rmtree(f.dir);
}

static void t_stop_intake(void)
{
    fixture f;
    fx_start(&f, 1 << 20, 0);
    th_otlp *d = single("cart", 60, 4);
    TH_ASSERT_EQ_INT(pl_ready(f.pl), 1);
    pl_stop_intake(f.pl);
    TH_ASSERT_EQ_INT(pl_ready(f.pl), 0);
    seen s;
    submit(&f, d, &s);
    TH_ASSERT_EQ_INT(s.calls, 1);
    TH_ASSERT_EQ_INT(s.o.status, PL_REFUSED_SHUTDOWN);
    TH_ASSERT(s.o.retry_after_s > 0);
    TH_ASSERT_EQ_INT(refused(PL_REFUSED_SHUTDOWN), 4);
    TH_ASSERT_EQ_INT(apq_items(f.q), 0);
    th_otlp_free(d);
    fx_stop(&f);
}

/* Metrics: the limiter's drops come back as `rejected` with a message. */
static void t_cardinality_rejects(void)
{
    fixture f;
    memset(&f, 0, sizeof f);
    fx_start(&f, 1 << 20, 0);
    pl_free(f.pl);
    f.c.cardinality.enabled = 1;
    f.c.cardinality.max_keys = 16;
    f.c.cardinality.aggregate_threshold = 0.25;
    f.c.cardinality.drop_threshold = 0.25;
    f.pl = pl_new(f.base, &f.c, f.q, NULL, f.m);
    TH_ASSERT(f.pl);
    th_point pts[12];
    char attrs[12][32];
    for (int i = 0; i < 12; i++) {
        snprintf(attrs[i], sizeof attrs[i], "id=%d", i);
        pts[i] = (th_point){"requests", attrs[i], i};
    }
    th_otlp *d = th_otlp_new_points("svc", 70, pts, 12);
    TH_ASSERT(d);
    seen s;
    submit(&f, d, &s);
    TH_ASSERT_EQ_INT(s.calls, 1);
    TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    TH_ASSERT_MSG(s.o.rejected > 0 && s.o.items + s.o.rejected == 12,
                  "items %u rejected %lld", s.o.items, (long long)s.o.rejected);
    TH_ASSERT(s.msg[0] != '\0');
    TH_ASSERT_EQ_INT(g_accepted, s.o.items);
    th_otlp_free(d);
    fx_stop(&f);
}

/* ---- delivery tracking ---- */

typedef struct trk_seen {
    int calls, failed;
} trk_seen;

static void on_tracked(void *arg, int failed)
{
    trk_seen *t = arg;
    t->calls++;
    t->failed = failed;
}

static void submit_tracked(fixture *f, const th_otlp *d, item_tracker *trk, seen *s)
{
    memset(s, 0, sizeof *s);
    pl_request rq = {d->sig, d->pb, d->pb_len, (uint32_t)d->items, clock_mono_ns(), trk};
    pl_submit(f->pl, &rq, on_done, s);
}

/* Memory: every split item holds a reference; the tracker settles when the
 * last one is delivered. DLQ: the record settles it when stored; a write
 * failure leaves no reference behind and the tracker reports failure. */
static void t_tracking(void)
{
    fixture f;
    th_otlp *d = mixed(80, 10);
    fx_start(&f, 64 * 1024, 1);
    track_box *box = track_box_new(f.base);
    TH_ASSERT(box);
    seen s;
    trk_seen ts[3] = {{0, 0}, {0, 0}, {0, 0}};

    item_tracker *t = item_tracker_new(box, on_tracked, &ts[0]);
    TH_ASSERT(t);
    submit_tracked(&f, d, t, &s);
    TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    item_tracker_release(t, 0); /* the creator's reference */
    TH_ASSERT_EQ_INT(apq_items(f.q), 2);
    item *a = apq_pop(f.q), *b = apq_pop(f.q);
    TH_ASSERT(a && b && a->trk == t && b->trk == t);
    item_settle(a, 0);
    item_free(a);
    track_box_dispatch(box);
    TH_ASSERT_EQ_INT(ts[0].calls, 0); /* one item still out */
    item_settle(b, 0);
    item_free(b);
    track_box_dispatch(box);
    TH_ASSERT_EQ_INT(ts[0].calls, 1);
    TH_ASSERT_EQ_INT(ts[0].failed, 0);

    /* fill memory to its threshold: the next requests go to the DLQ */
    th_otlp *filler = single("cart", 81, 50);
    for (int i = 0; i < 1000 && apq_fill_ratio(f.q) < 0.95; i++) {
        submit(&f, filler, &s);
        TH_ASSERT(s.calls == 1 && s.o.status == PL_ACCEPTED);
    }
    t = item_tracker_new(box, on_tracked, &ts[1]);
    TH_ASSERT(t);
    submit_tracked(&f, d, t, &s);
    TH_ASSERT_EQ_INT(s.calls, 0);
    item_tracker_release(t, 0);
    TH_ASSERT_EQ_INT(pl_flush(f.pl, 10000), 0);
    TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    track_box_dispatch(box);
    TH_ASSERT_EQ_INT(ts[1].calls, 1); /* stored: settled by the DLQ */
    TH_ASSERT_EQ_INT(ts[1].failed, 0);

    atomic_store(&fail_writes, 1);
    t = item_tracker_new(box, on_tracked, &ts[2]);
    TH_ASSERT(t);
    submit_tracked(&f, d, t, &s);
    TH_ASSERT_EQ_INT(pl_flush(f.pl, 10000), 0);
    TH_ASSERT_EQ_INT(s.o.status, PL_REFUSED_FULL);
    track_box_dispatch(box);
    TH_ASSERT_EQ_INT(ts[2].calls, 0); /* only the creator's reference is left */
    item_tracker_release(t, 0);
    track_box_dispatch(box);
    TH_ASSERT_EQ_INT(ts[2].calls, 1);
    TH_ASSERT_EQ_INT(ts[2].failed, 1);
    TH_ASSERT_EQ_INT(track_box_live(box), 0);
    track_box_free(box);
    th_otlp_free(d);
    th_otlp_free(filler);
    fx_stop(&f);
    th_rmtree(f.dir);
}

/* ---- queue.mode durable ---------------------------------------------- */

static long file_size(const char *dir, uint64_t seq, const char *suffix)
{
    char path[400];
    snprintf(path, sizeof path, "%s/journal/%016llx%s", dir, (unsigned long long)seq, suffix);
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fclose(fp);
    return n;
}

/* Runs the ingest loop's pending events (tracker callbacks, ack flush). */
static void spin(fixture *f)
{
    for (int i = 0; i < 5; i++) event_base_loop(f->base, EVLOOP_NONBLOCK);
}

/* The answer waits for the journal record; the items then sit in memory
 * (split per class), and the record is acknowledged once every item of it
 * was delivered (settled); an item dropped without delivery leaves its
 * record to be replayed after a restart, exactly that one. */
static void t_durable_journal_then_memory(void)
{
    fixture f;
    fx_durable = 1;
    fx_start(&f, 1 << 20, 1);
    fx_durable = 0;
    th_otlp *a = mixed(300, 5), *b = single("search", 301, 4);
    seen s;
    submit(&f, a, &s);
    TH_ASSERT_EQ_INT(s.calls, 0); /* not before the journal append completed */
    TH_ASSERT_EQ_INT(apq_items(f.q), 0);
    TH_ASSERT_EQ_INT(pl_pending(f.pl), 1);
    int64_t deadline = clock_mono_ns() + 10000000000LL;
    while (s.calls == 0 && clock_mono_ns() < deadline) event_base_loop(f.base, EVLOOP_ONCE);
    TH_ASSERT_EQ_INT(s.calls, 1);
    TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    TH_ASSERT_EQ_INT(s.o.items, 10);
    TH_ASSERT_EQ_INT(apq_items(f.q), 2); /* one item per class */
    TH_ASSERT(file_size(f.dir, 0, ".seg") > 128);
    item *it;
    while ((it = apq_pop(f.q)) != NULL) { /* delivered */
        item_settle(it, 0);
        item_free(it);
    }
    spin(&f);
    TH_ASSERT_EQ_INT(file_size(f.dir, 0, ".ack"), 16); /* one entry: the one record */
    submit_wait(&f, b, &s);
    TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    TH_ASSERT_EQ_INT(apq_items(f.q), 1);
    item_free(apq_pop(f.q)); /* dropped, not delivered */
    spin(&f);
    TH_ASSERT_EQ_INT(file_size(f.dir, 0, ".ack"), 16);
    pl_flush(f.pl, 5000);
    dlq_close(f.d);
    f.d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&f.dopts, NULL, &f.d), 0);
    dlq_jrecov st;
    TH_ASSERT_EQ_INT(dlq_journal_recover(f.d, &st), 0);
    TH_ASSERT_EQ_INT(st.records, 2);
    TH_ASSERT_EQ_INT(st.acked, 1);
    TH_ASSERT_EQ_INT(st.moved, 1);
    dlq_reader *r = dlq_reader_new(f.d, 0, 0);
    TH_ASSERT(r);
    dlq_pos pos;
    TH_ASSERT_EQ_INT(dlq_reader_next(r, &it, &pos), 0);
    TH_ASSERT(it && it->len == b->pb_len && memcmp(it->data, b->pb, b->pb_len) == 0);
    item_free(it);
    TH_ASSERT_EQ_INT(dlq_reader_next(r, &it, &pos), 0);
    TH_ASSERT(it == NULL);
    dlq_reader_free(r);
    th_otlp_free(a);
    th_otlp_free(b);
    fx_stop(&f);
    th_rmtree(f.dir);
}

/* A journal that cannot be written refuses the request (503 + retry) and
 * queues nothing; not ready while the DLQ is unavailable. */
static void t_durable_refuses_without_journal(void)
{
    fixture f;
    fx_durable = 1;
    fx_start(&f, 1 << 20, 1);
    fx_durable = 0;
    th_otlp *a = single("search", 310, 6);
    seen s;
    TH_ASSERT(pl_ready(f.pl));
    atomic_store(&fail_writes, 1);
    submit_wait(&f, a, &s);
    TH_ASSERT_EQ_INT(s.o.status, PL_REFUSED_FULL);
    TH_ASSERT(s.o.retry_after_s > 0);
    TH_ASSERT_EQ_INT(apq_items(f.q), 0);
    TH_ASSERT(!pl_ready(f.pl));
    submit(&f, a, &s); /* refused at once while unavailable */
    TH_ASSERT_EQ_INT(s.calls, 1);
    TH_ASSERT_EQ_INT(s.o.status, PL_REFUSED_FULL);
    TH_ASSERT_EQ_INT(apq_items(f.q), 0);
    th_otlp_free(a);
    fx_stop(&f);
    th_rmtree(f.dir);
}

/* pl_reconfigure: the new rules decide from the next request on; a rule
 * that does not compile changes nothing. */
static void t_reconfigure_rules(void)
{
    fixture f;
    char err[256];
    fx_start(&f, 1 <<20, 0);
    th_otlp *pay = single("payment", 1, 2);
    seen s;
    submit(&f, pay, &s);
    TH_ASSERT_EQ_INT(apq_class_items(f.q, CLASS_NORMAL), 1);
    cfg next = f.c;
    cfg_prio_rule bad = {CLASS_HIGH, "service.name", "(", 0, 0, 1, 1};
    next.priority.rules = &bad;
    TH_ASSERT(pl_reconfigure(f.pl, &next, err, sizeof err) != 0);
    TH_ASSERT_MSG(strstr(err, "priority rules"), "%s", err);
    submit(&f, pay, &s);
    TH_ASSERT_EQ_INT(apq_class_items(f.q, CLASS_NORMAL), 2);
    cfg_prio_rule good = {CLASS_HIGH, "service.name", "^pay", 0, 0, 1, 1};
    next.priority.rules = &good;
    TH_ASSERT_EQ_INT(pl_reconfigure(f.pl, &next, err, sizeof err), 0);
    submit(&f, pay, &s);
    TH_ASSERT_EQ_INT(s.o.status, PL_ACCEPTED);
    TH_ASSERT_EQ_INT(apq_class_items(f.q, CLASS_HIGH), 1);
    TH_ASSERT_EQ_INT(apq_class_items(f.q, CLASS_NORMAL), 2);
    th_otlp *co = single("checkout", 5, 1); /* the old rule is gone */
    submit(&f, co, &s);
    TH_ASSERT_EQ_INT(apq_class_items(f.q, CLASS_CRITICAL), 0);
    TH_ASSERT_EQ_INT(apq_class_items(f.q, CLASS_NORMAL), 3);
    th_otlp_free(pay);
    th_otlp_free(co);
    fx_stop(&f);
}

int main(void)
{
    TH_RUN(t_memory_single_and_mixed);
    TH_RUN(t_empty_and_undecodable);
    TH_RUN(t_full_without_dlq);
    TH_RUN(t_straddling_request_goes_to_dlq_whole);
    TH_RUN(t_dlq_write_failure_refuses_whole_request);
    TH_RUN(t_dlq_full_refuses_at_once);
    TH_RUN(t_stop_intake);
    TH_RUN(t_cardinality_rejects);
    TH_RUN(t_tracking);
    TH_RUN(t_durable_journal_then_memory);
    TH_RUN(t_durable_refuses_without_journal);
    TH_RUN(t_reconfigure_rules);
    return th_done();
}
