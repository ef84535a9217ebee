/* fl_submit.c — batches into requests, delivery tracking, commits and
 * position saves. Ingest thread. See fl_int.h (DESIGN). */
#define LOG_COMPONENT "filelog"

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "receivers/filelog/fl_int.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define RETRY_MIN_MS 50
#define RETRY_MAX_MS 1000

static void submit(fl_sub *s);

/* Settled subs at the front of the FIFO move the committed offset. */
static void advance(fl_file *f)
{
    filelog *fl = f->fl;
    int moved = 0;
    while (f->head && f->head->state == SUB_SETTLED) {
        fl_sub *s = f->head;
        f->head = s->next;
        if (!f->head) f->tail = NULL;
        if (s->failed && !f->held) {
            f->held = 1;
            FL_COUNT(fl, fl_delivery_failures, 1);
            LOG_WARN("%s: records were dropped downstream; its position stays at %llu until restart",
                     f->path, (unsigned long long)f->commit_off);
        }
        if (!f->held && s->end_off > f->commit_off) {
            f->commit_off = s->end_off;
            moved = 1;
        }
        free(s);
    }
    if (moved) {
        if (!fl->updates++) fl->first_unsaved_ns = clock_mono_ns();
    }
    fl_note_commit(fl);
}

/* Tracker callback: every item of s was delivered or stored (or dropped). */
static void on_settled(void *arg, int failed)
{
    fl_sub *s = arg;
    s->state = SUB_SETTLED;
    s->failed = failed;
    advance(s->f);
}

static void schedule_retry(filelog *fl, unsigned retry_after_s)
{
    unsigned ms = fl->backoff_ms ? fl->backoff_ms * 2 : RETRY_MIN_MS;
    if (ms > RETRY_MAX_MS) ms = RETRY_MAX_MS;
    if (retry_after_s && retry_after_s * 1000u < ms) ms = retry_after_s * 1000u;
    fl->backoff_ms = ms;
    struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };
    if (fl->retry_ev && !fl->stopping) evtimer_add(fl->retry_ev, &tv);
}

static void on_done(void *arg, fl_submit_status st, unsigned retry_after_s)
{
    fl_sub *s = arg;
    fl_file *f = s->f;
    filelog *fl = f->fl;
    if (st == FL_SUBMIT_ACCEPTED || st == FL_SUBMIT_INVALID) {
        if (st == FL_SUBMIT_INVALID)
            LOG_ERROR("%s: the pipeline refused a request of %u records as invalid", f->path, s->items);
        else
            FL_COUNT(fl, fl_records, s->items);
        s->state = SUB_ACCEPTED;
        free(s->pb);
        s->pb = NULL;
        if (f->tail) f->tail->next = s;
        else f->head = s;
        f->tail = s;
        item_tracker *t = s->trk;
        s->trk = NULL;
        item_tracker_release(t, st == FL_SUBMIT_INVALID);
        return;
    }
    /* Full or stopping: the request waits; the file and the receiver pause. */
    s->state = SUB_REFUSED;
    f->pending = s;
    if (st == FL_SUBMIT_SHUTDOWN) return;
    if (!fl->paused) {
        fl->paused = 1;
        FL_COUNT(fl, fl_backpressure_pauses, 1);
        LOG_WARN_RL(10, "the pipeline is full: reading paused, the files hold the backlog");
    }
    schedule_retry(fl, retry_after_s);
}

static void submit(fl_sub *s)
{
    filelog *fl = s->f->fl;
    if (!s->trk) s->trk = item_tracker_new(fl->box, on_settled, s);
    if (!s->trk) {
        s->state = SUB_SUBMITTING;
        on_done(s, FL_SUBMIT_FULL, 0);
        return;
    }
    s->state = SUB_SUBMITTING;
    fl_submit_req rq = { s->pb, s->len, s->items, clock_mono_ns(), s->trk };
    fl->submit(fl->submit_ctx, &rq, on_done, s);
}

void fl_flush_batch(fl_file *f)
{
    filelog *fl = f->fl;
    if (!f->batch.n || f->pending) return;
    const buf *res = f->cont ? fl_meta_resource(fl->meta, f->cont, clock_mono_ns()) : NULL;
    buf_reset(&fl->out);
    fl_sub *s = calloc(1, sizeof *s);
    if (!s || fl_batch_build(&f->batch, res ? res->data : NULL, res ? res->len : 0, &fl->out) != 0) {
        LOG_WARN_RL(10, "%s: cannot build a request (out of memory); retrying", f->path);
        free(s);
        return;
    }
    s->f = f;
    s->end_off = f->safe_off;
    s->items = f->batch.n;
    s->pb = buf_steal(&fl->out, &s->len);
    fl_batch_reset(&f->batch);
    submit(s);
}

int fl_add_record(fl_file *f, const fl_record *r)
{
    int64_t now = clock_mono_ns();
    int rc = fl_batch_add(&f->batch, r, now);
    if (rc == SW_ETOOBIG && f->batch.n) {
        fl_flush_batch(f);
        rc = fl_batch_add(&f->batch, r, now);
    }
    if (rc != 0) {
        LOG_ERROR("%s: a record could not be batched: %s", f->path, sw_strerror(rc));
        return rc;
    }
    if (f->batch.recs.len >= f->fl->c->filelog.batch_max_bytes) fl_flush_batch(f);
    return 0;
}

void fl_retry_pending(filelog *fl)
{
    for (fl_file *f = fl->files; f; f = f->next) {
        if (!f->pending) continue;
        fl_sub *s = f->pending;
        f->pending = NULL;
        submit(s);
        if (f->pending) return; /* still full: on_done scheduled the next try */
    }
    fl->paused = 0;
    fl->backoff_ms = 0;
    for (fl_file *f = fl->files; f; f = f->next) f->more = 1;
    fl_kick(fl);
}

/* The saved position of an open (or still delivering) file. */
static int add_entry(fl_pos_set *set, fl_file *f)
{
    fl_file_fingerprint(f);
    fl_pos_entry e = { f->dev, f->ino, f->fp_len, f->fp_hash, f->commit_off, f->path };
    return fl_pos_set_add(set, &e);
}

static int shadowed(const filelog *fl, const fl_file *f)
{
    for (const fl_file *g = fl->files; g; g = g->next)
        if (g != f && g->fd >= 0 && g->dev == f->dev && g->ino == f->ino) return 1;
    return 0;
}

void fl_maybe_save(filelog *fl, int force)
{
    const cfg *c = fl->c;
    int64_t now = clock_mono_ns();
    if (!fl->saver) return;
    if (!force && (!fl->updates || (fl->updates < c->filelog.flush_updates &&
                                    now - fl->first_unsaved_ns < (int64_t)c->filelog.flush_interval_ms * 1000000)))
        return;
    fl_pos_set set;
    buf img;
    int rc = 0;
    fl_pos_set_init(&set);
    buf_init(&img, 64u << 20);
    for (fl_file *f = fl->files; f && rc == 0; f = f->next)
        if ((f->fd >= 0 || f->head || f->pending) && !(f->fd < 0 && shadowed(fl, f))) rc = add_entry(&set, f);
    for (size_t i = 0; i < fl->saved.n && rc == 0; i++) rc = fl_pos_set_add(&set, &fl->saved.v[i]);
    if (rc == 0) rc = fl_pos_encode(fl->seq + 1, set.v, set.n, &img);
    fl_pos_set_destroy(&set);
    if (rc != 0) {
        buf_destroy(&img);
        LOG_WARN_RL(60, "positions not saved (%s); trying again", sw_strerror(rc));
        return;
    }
    size_t len = 0;
    uint8_t *data = buf_steal(&img, &len);
    fl_saver_post(fl->saver, ++fl->seq, data, len, fl->updates ? fl->first_unsaved_ns : 0);
    fl->updates = 0;
    fl->first_unsaved_ns = 0;
}

void fl_reap(filelog *fl)
{
    for (fl_file **pp = &fl->files; *pp;) {
        fl_file *f = *pp;
        int blocks = 0;
        for (fl_file *g = fl->files; g; g = g->next) blocks |= g->blocked_by == f;
        if (!fl_file_finished(f) || blocks) {
            pp = &f->next;
            continue;
        }
        *pp = f->next;
        LOG_DEBUG("done with %s at offset %llu", f->path, (unsigned long long)f->commit_off);
        fl_file_free(f);
    }
}

void fl_note_commit(filelog *fl)
{
    fl_maybe_save(fl, 0);
}
