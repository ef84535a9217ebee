/* dlq_reader.c — replay: oldest first, verified, acknowledged in order,
 * cursor persisted, acknowledged segments deleted (see dlq.h). */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_int.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

struct dlq_reader {
    dlq *d;
    dlq_recbuf *rb;
    uint32_t flush_acks;
    int64_t flush_ns;
    /* reader thread */
    int fd;              /* segment being read, -1: none */
    uint64_t seq, off, end, index, records;
    int open_seg;        /* it is the writer's open segment: end grows */
    int open_bad;        /* a record of it failed: wait for its seal */
    int seal_asked;      /* asked the writer to seal (seal_seq, seal_off) */
    uint64_t seal_seq, seal_off;
    uint64_t next_min;   /* smallest sequence still to read */
    dlq_pos start;       /* persisted cursor at creation */
    uint64_t total;      /* request bytes returned so far */
    uint64_t items[CLASS_COUNT]; /* items of the records returned so far, by class */
    dlq_pos persisted;
    pthread_mutex_t mu;  /* protects acked, unpersisted, first_unpersisted_ns */
    dlq_pos acked;
    uint32_t unpersisted;
    int64_t first_unpersisted_ns;
};

dlq_reader *dlq_reader_new(dlq *d, uint32_t flush_acks, uint64_t flush_ms)
{
    dlq_reader *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->rb = dlq_recbuf_new();
    if (!r->rb) {
        free(r);
        return NULL;
    }
    r->d = d;
    r->fd = -1;
    r->flush_acks = flush_acks ? flush_acks : 64;
    r->flush_ns = (int64_t)(flush_ms ? flush_ms : 1000) * 1000000;
    pthread_mutex_lock(&d->mu);
    r->start = r->persisted = r->acked = d->cursor;
    pthread_mutex_unlock(&d->mu);
    r->next_min = r->start.seq;
    pthread_mutex_init(&r->mu, NULL);
    return r;
}

static int pos_after(const dlq_pos *a, const dlq_pos *b)
{
    return a->seq > b->seq || (a->seq == b->seq && a->off > b->off);
}

void dlq_reader_ack(dlq_reader *r, const dlq_pos *pos)
{
    uint64_t bytes = 0, items[CLASS_COUNT] = {0};
    pthread_mutex_lock(&r->mu);
    if (pos_after(pos, &r->acked)) {
        if (pos->total > r->acked.total) bytes = pos->total - r->acked.total;
        for (int k = 0; k < CLASS_COUNT; k++)
            if (pos->items[k] > r->acked.items[k]) items[k] = pos->items[k] - r->acked.items[k];
        r->acked = *pos;
        if (r->unpersisted++ == 0) r->first_unpersisted_ns = clock_mono_ns();
    }
    pthread_mutex_unlock(&r->mu);
    if (bytes) metrics_add(&r->d->m->dlq_replayed_bytes, bytes);
    for (int k = 0; k < CLASS_COUNT; k++)
        if (items[k]) metrics_add(&r->d->m->dlq_replayed_items[k], items[k]);
}

/* Deletes sealed segments wholly before pos (all records acknowledged). */
static void delete_acked(dlq_reader *r, const dlq_pos *pos)
{
    dlq *d = r->d;
    for (;;) {
        char name[DLQ_SEG_NAME_LEN + 1];
        uint64_t seq = 0;
        int found = 0;
        pthread_mutex_lock(&d->mu);
        for (size_t i = 0; i < d->nsegs && !found; i++) {
            dlq_seginfo *s = &d->segs[i];
            if (!s->sealed || s->seq > pos->seq) break;
            if (s->seq < pos->seq || pos->off >= s->bytes) {
                seq = s->seq;
                d->used -= s->bytes;
                dlq_segs_remove(d, seq);
                dlq_segs_publish(d);
                found = 1;
            }
        }
        pthread_mutex_unlock(&d->mu);
        if (!found) return;
        dlq_seg_name(seq, name);
        if (unlinkat(d->dirfd, name, 0) != 0) {
            LOG_ERROR_RL(10, "cannot delete acknowledged segment %s", name);
            continue;
        }
        LOG_DEBUG("deleted acknowledged segment %s", name);
        pthread_mutex_lock(&d->mu);
        if (!atomic_load(&d->avail)) { /* room again: the writer re-probes now */
            d->probe_req = 1;
            pthread_cond_signal(&d->wcv);
        }
        pthread_mutex_unlock(&d->mu);
    }
}

/* Asks the writer to seal the open segment when every record of it is
 * acknowledged and it has been idle for seal_idle_ms: then it can be
 * deleted. Only once per (segment, size). */
static void ask_seal_idle(dlq_reader *r, const dlq_pos *pos)
{
    dlq *d = r->d;
    int64_t idle = (int64_t)d->o.seal_idle_ms * 1000000;
    pthread_mutex_lock(&d->mu);
    dlq_seginfo *s = dlq_segs_find(d, pos->seq);
    if (s && s->open && s->records > 0 && pos->off >= s->bytes &&
        clock_mono_ns() - s->written_ns >= idle &&
        !(r->seal_asked && r->seal_seq == s->seq && r->seal_off == s->bytes)) {
        r->seal_asked = 1;
        r->seal_seq = d->seal_seq = s->seq;
        r->seal_off = d->seal_off = s->bytes;
        d->seal_req = 1;
        pthread_cond_signal(&d->wcv);
    }
    pthread_mutex_unlock(&d->mu);
}

static int has_deletable(dlq_reader *r, const dlq_pos *pos)
{
    dlq *d = r->d;
    pthread_mutex_lock(&d->mu);
    int yes = d->nsegs > 0 && d->segs[0].sealed &&
              (d->segs[0].seq < pos->seq || (d->segs[0].seq == pos->seq && pos->off >= d->segs[0].bytes));
    pthread_mutex_unlock(&d->mu);
    return yes;
}

uint32_t dlq_reader_unpersisted(dlq_reader *r)
{
    pthread_mutex_lock(&r->mu);
    uint32_t n = r->unpersisted;
    pthread_mutex_unlock(&r->mu);
    return n;
}

int dlq_reader_sync(dlq_reader *r, int force)
{
    pthread_mutex_lock(&r->mu);
    dlq_pos pos = r->acked;
    uint32_t n = r->unpersisted;
    int due = n && (force || n >= r->flush_acks ||
                    clock_mono_ns() - r->first_unpersisted_ns >= r->flush_ns);
    pthread_mutex_unlock(&r->mu);
    int del = has_deletable(r, &pos);
    ask_seal_idle(r, &pos);
    if (!due && !(del && pos_after(&pos, &r->persisted))) {
        if (del) delete_acked(r, &pos); /* the cursor on disk is already at pos */
        return 0;
    }
    /* Persist before deleting, so a restart normally never points before a
     * deletion. If the cursor cannot be written (a full disk), still delete
     * what is fully acknowledged: that is what gives the space back, and a
     * cursor left in a deleted segment reads as "all of it acknowledged"
     * (docs/dlq-format.md), so nothing is lost — at worst records of the
     * first remaining segment are replayed again after a restart. */
    int rc = dlq_cursor_store(r->d->dirfd, &pos, DLQ_SYNC(r->d));
    if (rc) {
        if (del) delete_acked(r, &pos);
        return rc;
    }
    r->persisted = pos;
    pthread_mutex_lock(&r->mu);
    r->unpersisted -= n;
    r->first_unpersisted_ns = r->unpersisted ? clock_mono_ns() : 0;
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_lock(&r->d->mu);
    r->d->cursor = pos;
    pthread_mutex_unlock(&r->d->mu);
    if (del) delete_acked(r, &pos);
    return 0;
}

/* Quarantines the reader's segment (or seq if none is open). */
static void reader_quarantine(dlq_reader *r, uint64_t seq, const char *why)
{
    char name[DLQ_SEG_NAME_LEN + 1];
    dlq *d = r->d;
    if (r->fd >= 0) close(r->fd);
    r->fd = -1;
    dlq_seg_name(seq, name);
    dlq_quarantine(d->dirfd, name, why, d->m);
    pthread_mutex_lock(&d->mu);
    dlq_seginfo *s = dlq_segs_find(d, seq);
    if (s) d->used -= s->bytes, dlq_segs_remove(d, seq);
    dlq_segs_publish(d);
    pthread_mutex_unlock(&d->mu);
    r->next_min = seq + 1;
}

/* Next segment to read: 0 and *out (a copy of its entry); 1 when none is
 * readable now: start-up recovery running, only an open segment without
 * records, or the next one is waiting for its recovery after a storage
 * error (sealed by the writer once the storage allows). */
static int pick_segment(dlq_reader *r, dlq_seginfo *out)
{
    dlq *d = r->d;
    int rc = 1;
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; d->recovered && i < d->nsegs; i++) {
        dlq_seginfo *s = &d->segs[i];
        if (s->seq < r->next_min) continue;
        if (s->sealed || (s->open && s->bytes > DLQ_SEG_HDR_LEN)) *out = *s, rc = 0;
        break; /* oldest first: never past a segment that is not readable yet */
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* Skips to the persisted cursor offset in the first segment. */
static int skip_to_start(dlq_reader *r)
{
    if (!r->open_seg && r->start.off >= r->end) { /* all acknowledged (its tail may be cut) */
        r->off = r->end;
        r->index = r->records;
        return 0;
    }
    while (r->off < r->start.off) {
        dlq_rec_hdr h;
        const char *why = NULL;
        int rc = dlq_seg_read_rec(r->rb, r->fd, r->off, r->end, r->index, &h, &why);
        if (rc) return rc;
        r->off += dlq_rec_size(&h);
        r->index++;
    }
    if (r->off != r->start.off) {
        LOG_WARN("replay cursor offset %llu is not a record boundary: segment replayed from its start",
                 (unsigned long long)r->start.off);
        r->off = DLQ_SEG_HDR_LEN;
        r->index = 0;
    }
    return 0;
}

/* A complete record of the writer's open segment failed its check: the
 * writer is asked to seal it; once sealed, the record is read again like
 * any record of a sealed segment (and the segment quarantined if it still
 * fails). Returns 0 (nothing readable now). */
static int open_record_failed(dlq_reader *r)
{
    dlq *d = r->d;
    LOG_WARN_RL(10, "open segment %016llx: record at offset %llu failed verification; "
                "waiting for the segment to be sealed", (unsigned long long)r->seq,
                (unsigned long long)r->off);
    r->open_bad = 1;
    r->end = r->off;
    pthread_mutex_lock(&d->mu);
    d->seal_req = 1;
    d->seal_seq = r->seq;
    d->seal_off = UINT64_MAX;
    pthread_cond_signal(&d->wcv);
    pthread_mutex_unlock(&d->mu);
    return 0;
}

/* Opens and verifies the next segment (an open one: its header only; its
 * records are checked one by one). 0, 1 (none now), or SW_E*. */
static int enter_segment(dlq_reader *r)
{
    char name[DLQ_SEG_NAME_LEN + 1];
    dlq_seg_hdr h;
    dlq_seginfo si;
    uint64_t size = 0;
    const char *why = NULL;
    for (;;) {
        if (pick_segment(r, &si) != 0) return 1;
        dlq_seg_name(si.seq, name);
        r->fd = openat(r->d->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0) return SW_EIO;
        int rc = dlq_seg_read_hdr(r->fd, &h, &size, &why);
        if (rc == 0 && (h.flags & DLQ_SEG_SEALED)) rc = dlq_seg_verify_body(r->fd, &h, size, &why);
        else if (rc == 0 && si.sealed) rc = SW_EDECODE, why = "segment not sealed";
        if (rc == SW_EDECODE) {
            reader_quarantine(r, si.seq, why);
            continue;
        }
        if (rc) return rc;
        r->open_seg = !(h.flags & DLQ_SEG_SEALED);
        r->open_bad = 0;
        r->seq = si.seq;
        r->off = DLQ_SEG_HDR_LEN;
        r->end = r->open_seg ? (si.bytes < size ? si.bytes : size) : size;
        r->index = 0;
        r->records = r->open_seg ? 0 : h.records;
        r->next_min = si.seq + 1;
        if (si.seq == r->start.seq && r->start.off > DLQ_SEG_HDR_LEN) {
            rc = skip_to_start(r);
            if (rc == SW_EDECODE && r->open_seg) return open_record_failed(r);
            if (rc == SW_EDECODE) {
                reader_quarantine(r, si.seq, "record failed verification");
                continue;
            }
            if (rc) return rc;
        }
        return 0;
    }
}

/* At the end of what was readable of the open segment: 0 to read on (it
 * grew or was sealed with more), 1 when nothing more is readable now, 2
 * when the segment is done (sealed and read to its end, or gone). */
static int refresh_open(dlq_reader *r)
{
    dlq *d = r->d;
    int rc = 1;
    pthread_mutex_lock(&d->mu);
    dlq_seginfo *s = dlq_segs_find(d, r->seq);
    if (!s) { /* removed (nothing left in it) or quarantined by the writer */
        r->records = r->index;
        rc = 2;
    } else if (s->sealed) {
        r->open_seg = 0;
        r->end = s->bytes;
        r->records = s->records;
        rc = r->off < r->end ? 0 : 2;
    } else if (s->open && !r->open_bad && s->bytes > r->end) {
        r->end = s->bytes;
        rc = 0;
    }
    pthread_mutex_unlock(&d->mu);
    if (rc == 0 && !r->open_seg) r->open_bad = 0;
    return rc;
}

static void leave_segment(dlq_reader *r)
{
    if (r->index != r->records && r->off == r->end && !r->open_seg)
        LOG_WARN("segment %016llx: %llu records read, header says %llu",
                 (unsigned long long)r->seq, (unsigned long long)r->index,
                 (unsigned long long)r->records);
    close(r->fd);
    r->fd = -1;
}

int dlq_reader_next(dlq_reader *r, item **out, dlq_pos *pos)
{
    *out = NULL;
    /* A cursor that cannot be written now (full disk) must not stop the
     * replay that frees the space: it is retried on the next call. */
    (void)dlq_reader_sync(r, 0); /* failures are logged there */
    int rc;
    for (;;) {
        if (r->fd < 0) {
            rc = enter_segment(r);
            if (rc == 1) return 0;
            if (rc) return rc;
        }
        if (r->off >= r->end && r->open_seg) {
            int st = refresh_open(r);
            if (st == 1) return 0;
            if (st == 0) continue;
            r->open_seg = 0;
        }
        if (r->off >= r->end) {
            leave_segment(r);
            continue;
        }
        dlq_rec_hdr h;
        const char *why = NULL;
        rc = dlq_seg_read_rec(r->rb, r->fd, r->off, r->end, r->index, &h, &why);
        if (rc == 0 && (h.status || h.note_len)) /* format 2 belongs in rejected/ only */
            rc = SW_EDECODE, why = "rejected-area record in the main area";
        if (rc == 0) rc = dlq_rec_to_item(r->rb, &h, out);
        if (rc == SW_EDECODE && r->open_seg) return open_record_failed(r);
        if (rc == SW_EDECODE) {
            reader_quarantine(r, r->seq, why ? why : "record does not decompress");
            continue;
        }
        if (rc) return rc;
        r->off += dlq_rec_size(&h);
        r->index++;
        r->total += (*out)->len;
        if ((*out)->klass < CLASS_COUNT) r->items[(*out)->klass] += (*out)->count;
        *pos = (dlq_pos){.seq = r->seq, .off = r->off, .total = r->total};
        memcpy(pos->items, r->items, sizeof pos->items);
        return 0;
    }
}

void dlq_reader_free(dlq_reader *r)
{
    if (!r) return;
    dlq_reader_sync(r, 1);
    if (r->fd >= 0) close(r->fd);
    dlq_recbuf_free(r->rb);
    pthread_mutex_destroy(&r->mu);
    free(r);
}
