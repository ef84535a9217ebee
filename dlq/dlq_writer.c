/* dlq_writer.c — the DLQ writer thread: recovery, record encoding, group
 * commit, segment roll and seal (see the DESIGN paragraph in dlq.h). */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define BATCH_MAX 256

/* ---- open segment: create, seal, recover in place ------------------------ */

static int is_rej(const dlq_area *a) { return a->kind == DLQ_AREA_REJECTED; }
static int is_main(const dlq_area *a) { return a->kind == DLQ_AREA_MAIN; }
static const char *area_label(const dlq_area *a)
{
    return is_main(a) ? "" : is_rej(a) ? "rejected-area " : "journal ";
}

/* Main area: publishes the open segment's size in the segment table (the
 * rejected area's counters move with each batch instead). open: the
 * writer goes on appending to it (the reader may read its first bytes). */
static void publish_cur(dlq *d, dlq_area *a, int sealed, int open)
{
    if (!is_main(a)) return;
    pthread_mutex_lock(&d->mu);
    dlq_seginfo *s = dlq_segs_find(d, a->cur.seq);
    if (s) {
        if (s->bytes != a->cur.size) s->written_ns = clock_mono_ns();
        s->bytes = a->cur.size;
        s->records = a->cur.records;
        s->sealed = sealed;
        s->open = open;
    }
    dlq_segs_publish(d);
    pthread_mutex_unlock(&d->mu);
}

/* Forgets a removed segment of `bytes` (d->mu held). */
static void forget_seg(dlq *d, dlq_area *a, uint64_t seq, uint64_t bytes)
{
    d->used -= bytes;
    if (is_rej(a)) {
        d->rej.used -= bytes;
        d->rej.bytes -= bytes;
        d->rej.segments--;
        return;
    }
    if (!is_main(a)) return;
    dlq_segs_remove(d, seq);
    dlq_segs_publish(d);
}

/* After a write, fsync or seal error that left its tail in doubt: closes
 * the segment and queues it for recovery in place (scan up to its last
 * good record, cut the rest, seal), retried by the writer until it
 * succeeds; meanwhile the reader waits at it. The next append opens a new
 * segment. Last good record: with fsync=always the last fsync'd one (the
 * records after it are refused by commit_batch: cut, not replayed as well),
 * otherwise the last written one (those were completed already). */
static void doubt_cur(dlq *d, dlq_area *a)
{
    uint64_t limit = d->o.fsync == CFG_FSYNC_ALWAYS ? a->cur.synced : a->cur.size;
    a->batch_doubt = 1;
    a->batch_doubt_seq = a->cur.seq;
    LOG_WARN("%ssegment %016llx closed after a storage error: it is cut back to its last good "
             "record (offset %llu) and sealed as soon as the storage allows",
             area_label(a), (unsigned long long)a->cur.seq, (unsigned long long)limit);
    publish_cur(d, a, 0, 0);
    close(a->cur.fd);
    a->cur.fd = -1;
    a->cur.dirty = 0;
    if (dlq_recover_add(a, a->cur.seq, limit, a->cur.size) != 0)
        LOG_ERROR("out of memory: segment %016llx is recovered at the next start",
                  (unsigned long long)a->cur.seq);
}

static int seal_cur(dlq *d, dlq_area *a)
{
    char name[DLQ_SEG_NAME_LEN + 1];
    if (a->cur.fd < 0) return 0;
    if (a->cur.records == 0) { /* nothing in it: remove rather than seal */
        dlq_seg_name(a->cur.seq, name);
        close(a->cur.fd);
        a->cur.fd = -1;
        unlinkat(a->dirfd, name, 0);
        pthread_mutex_lock(&d->mu);
        forget_seg(d, a, a->cur.seq, a->cur.size);
        pthread_mutex_unlock(&d->mu);
        return 0;
    }
    dlq_seg_hdr h = {.seq = a->cur.seq, .created_ns = a->cur.created_ns,
                     .sealed_ns = clock_wall_ns(), .records = a->cur.records,
                     .body_len = a->cur.size - DLQ_SEG_HDR_LEN};
    int rc = dlq_sha256_final(a->cur.body, h.body_sha);
    if (rc == 0 && (rc = dlq_seg_seal(a->cur.fd, &h, DLQ_SYNC(d))) != 0)
        dlq_health_fail(d, "segment seal", errno, 0);
    if (rc) {
        doubt_cur(d, a);
        return rc;
    }
    publish_cur(d, a, 1, 0);
    close(a->cur.fd);
    a->cur.fd = -1;
    a->cur.dirty = 0;
    return 0;
}

/* Creates rejected/ or journal/ on its first use. */
static int area_dir(dlq *d, dlq_area *a)
{
    const char *sub = is_rej(a) ? DLQ_REJ_DIR : DLQ_JNL_DIR;
    if (a->dirfd >= 0) return 0;
    if (mkdirat(d->dirfd, sub, 0755) != 0 && errno != EEXIST) {
        dlq_health_fail(d, is_rej(a) ? "cannot create " DLQ_REJ_DIR "/"
                                     : "cannot create " DLQ_JNL_DIR "/", errno, 0);
        return SW_EIO;
    }
    a->dirfd = openat(d->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a->dirfd < 0) {
        LOG_ERROR_RL(10, "cannot open %s/%s: %s", d->dir, sub, strerror(errno));
        return SW_EIO;
    }
    if (DLQ_SYNC(d)) dlq_sync_dir(d->dirfd);
    LOG_INFO("created the %sarea %s/%s", area_label(a), d->dir, sub);
    return 0;
}

static int open_cur(dlq *d, dlq_area *a)
{
    int fd = -1;
    int64_t now = clock_wall_ns();
    uint64_t seq = a->next_seq;
    int rc = !is_main(a) ? area_dir(d, a) : 0;
    if (rc == 0 && (rc = dlq_seg_create(a->dirfd, seq, now, DLQ_SYNC(d), &fd)) != 0)
        dlq_health_fail(d, "segment create", errno, 0);
    if (rc == 0) rc = dlq_sha256_reset(a->cur.body);
    if (rc) {
        if (fd >= 0) close(fd);
        return SW_EIO;
    }
    a->next_seq++;
    a->cur = (dlq_open_seg){.fd = fd, .seq = seq, .size = DLQ_SEG_HDR_LEN,
                            .synced = DLQ_SEG_HDR_LEN, .created_ns = now, .body = a->cur.body};
    dlq_seginfo s = {.seq = seq, .bytes = DLQ_SEG_HDR_LEN, .created_ns = now, .open = 1,
                     .written_ns = clock_mono_ns()};
    pthread_mutex_lock(&d->mu);
    d->used += DLQ_SEG_HDR_LEN;
    if (is_rej(a)) {
        d->rej.used += DLQ_SEG_HDR_LEN;
        d->rej.bytes += DLQ_SEG_HDR_LEN;
        d->rej.segments++;
    } else if (is_main(a)) {
        rc = dlq_segs_add(d, &s);
        dlq_segs_publish(d);
    }
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* ---- one record ---------------------------------------------------------- */

/* Compresses it into d->wbuf after room for the record header and note. */
static int encode_payload(dlq *d, const item *it, size_t note_len, int level, size_t *clen)
{
    if (level != d->cctx_level) { /* the journal's level differs: switch (cheap) */
        if (ZSTD_isError(ZSTD_CCtx_setParameter(d->cctx, ZSTD_c_compressionLevel, level)))
            return SW_EIO;
        d->cctx_level = level;
    }
    buf_reset(&d->wbuf);
    size_t bound = ZSTD_compressBound(it->len), at = DLQ_REC_HDR_LEN + note_len;
    int rc = buf_reserve(&d->wbuf, at + bound);
    if (rc) return rc;
    size_t c = ZSTD_compress2(d->cctx, d->wbuf.data + at, bound, it->data, it->len);
    if (ZSTD_isError(c)) {
        LOG_ERROR_RL(10, "zstd compression failed: %s", ZSTD_getErrorName(c));
        return SW_EIO;
    }
    *clen = c;
    d->wbuf.len = at + c;
    return 0;
}

/* Header (and, for the rejected area, status and note) in front of the
 * compressed payload already in d->wbuf. */
static int encode_header(dlq *d, dlq_area *a, const dlq_req *r, size_t clen)
{
    const item *it = r->it;
    dlq_rec_hdr h = {.klass = it->klass, .signal = it->signal, .count = it->count,
                     .ulen = (uint32_t)it->len, .clen = (uint32_t)clen,
                     .recv_wall_ns = dlq_mono_to_wall(it->recv_ns), .index = a->cur.records,
                     .status = r->code, .note_len = r->note_len};
    uint8_t *p = d->wbuf.data;
    dlq_rec_hdr_encode(&h, p);
    if (r->note_len) memcpy(p + DLQ_REC_HDR_LEN, r->note, r->note_len);
    return dlq_rec_hash(p, p + DLQ_REC_HDR_LEN, r->note_len + clen, p + DLQ_REC_HASHED);
}

static int write_all(dlq *d, int fd, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = d->o.pwrite(fd, p, n, (off_t)off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = ENOSPC;
            return -1;
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return 0;
}

/* Writes one record into its area; 0 or SW_EIO (the partial record is cut). */
static int write_record(dlq *d, dlq_req *r)
{
    dlq_area *a = &d->area[r->area];
    size_t clen = 0;
    int level = r->area == DLQ_AREA_JOURNAL ? DLQ_JNL_LEVEL : d->o.compression_level;
    int rc = encode_payload(d, r->it, r->note_len, level, &clen);
    if (rc) return rc == SW_ENOMEM ? SW_ENOMEM : SW_EIO;
    uint64_t total = d->wbuf.len;
    if (a->cur.fd >= 0 && a->cur.records > 0 && a->cur.size + total > d->o.segment_size &&
        seal_cur(d, a) != 0)
        return SW_EIO;
    if (a->cur.fd < 0 && open_cur(d, a) != 0) return SW_EIO;
    if ((rc = encode_header(d, a, r, clen)) != 0) return rc;
    r->seq = a->cur.seq;
    r->index = a->cur.records;
    if (write_all(d, a->cur.fd, d->wbuf.data, total, a->cur.size) != 0) {
        int err = errno;
        LOG_ERROR_RL(5, "DLQ write failed (%ssegment %016llx, offset %llu): %s",
                     area_label(a), (unsigned long long)a->cur.seq,
                     (unsigned long long)a->cur.size, strerror(err));
        /* Cut the partial record: the segment stays open and good; if even
         * that fails, it is recovered in place once the storage allows. */
        if (ftruncate(a->cur.fd, (off_t)a->cur.size) != 0) doubt_cur(d, a);
        dlq_health_fail(d, "segment write", err, total);
        return SW_EIO;
    }
    if (dlq_sha256_update(a->cur.body, d->wbuf.data, total) != 0) {
        doubt_cur(d, a);
        dlq_health_fail(d, "segment hash", 0, 0);
        return SW_EIO;
    }
    a->cur.size += total;
    a->cur.records++;
    a->cur.dirty = 1;
    d->disk_added[r->area] += total;
    return 0;
}

/* ---- batches and group commit ---------------------------------------------- */

/* fsync of the area's open segment. On failure the segment is recovered
 * in place (doubt_cur). */
static int do_fsync(dlq *d, dlq_area *a)
{
    d->last_fsync_ns = clock_mono_ns();
    if (a->cur.fd < 0 || !a->cur.dirty) return 0;
    a->cur.dirty = 0;
    if (d->o.sync_fn(a->cur.fd) == 0) {
        a->cur.synced = a->cur.size;
        return 0;
    }
    int err = errno;
    LOG_ERROR("DLQ fsync of %ssegment %016llx failed: %s", area_label(a),
              (unsigned long long)a->cur.seq, strerror(err));
    doubt_cur(d, a);
    dlq_health_fail(d, "segment fsync", err, 0);
    return SW_EIO;
}

static int any_dirty(const dlq *d)
{
    for (int k = 0; k < DLQ_AREAS; k++)
        if (d->area[k].cur.dirty) return 1;
    return 0;
}

/* fsync=always: one fsync per area written to. When a segment of this
 * batch was put in doubt (this fsync, or a write or seal error earlier in
 * the batch), the batch's records in it are refused: not fsync'd, and cut
 * from it by its recovery. Records of a segment sealed earlier in the
 * batch were fsync'd by the seal. */
static void commit_batch(dlq *d, dlq_req **b, size_t n)
{
    for (int k = 0; k < DLQ_AREAS; k++) {
        dlq_area *a = &d->area[k];
        if (a->cur.dirty) do_fsync(d, a);
        if (!a->batch_doubt) continue;
        for (size_t i = 0; i < n; i++)
            if (b[i]->area == k && b[i]->seq == a->batch_doubt_seq && b[i]->status == 0)
                b[i]->status = SW_EIO;
    }
}

/* Space bookkeeping after a batch: reservations out, bytes written in. */
static void account_batch(dlq *d, dlq_req **b, size_t n)
{
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < n; i++) {
        d->used -= b[i]->reserve;
        if (b[i]->area != DLQ_AREA_REJECTED) continue;
        d->rej.used -= b[i]->reserve;
        if (b[i]->status == 0) d->rej.records++;
    }
    for (int k = 0; k < DLQ_AREAS; k++) d->used += d->disk_added[k];
    d->rej.used += d->disk_added[DLQ_AREA_REJECTED];
    d->rej.bytes += d->disk_added[DLQ_AREA_REJECTED];
    pthread_mutex_unlock(&d->mu);
}

static void run_batch(dlq *d, dlq_req **b, size_t n)
{
    uint64_t written_req = 0;
    for (int k = 0; k < DLQ_AREAS; k++) {
        d->disk_added[k] = 0;
        d->area[k].batch_doubt = 0;
    }
    for (size_t i = 0; i < n; i++) /* unavailable: fail fast, the producer keeps it */
        b[i]->status = atomic_load(&d->avail) ? write_record(d, b[i]) : SW_EUNAVAIL;
    if (d->o.fsync == CFG_FSYNC_ALWAYS) commit_batch(d, b, n);
    for (size_t i = 0; i < n; i++)
        if (b[i]->status == 0 && b[i]->jpos) *b[i]->jpos = (dlq_jpos){b[i]->seq, b[i]->index};
    account_batch(d, b, n);
    if (d->area[DLQ_AREA_MAIN].cur.fd >= 0) publish_cur(d, &d->area[DLQ_AREA_MAIN], 0, 1);
    for (size_t i = 0; i < n; i++) {
        if (b[i]->status != 0 || b[i]->area != DLQ_AREA_MAIN) continue;
        written_req += b[i]->it->len;
        if (b[i]->it->klass < CLASS_COUNT)
            metrics_add(&d->m->dlq_written_items[b[i]->it->klass], b[i]->it->count);
    }
    metrics_add(&d->m->dlq_written_bytes, written_req);
    for (size_t i = 0; i < n; i++) dlq_req_complete(b[i], b[i]->status);
}

/* ---- recovery of unsealed segments (start-up, and after errors) ------- */

int dlq_recover_add(dlq_area *a, uint64_t seq, uint64_t limit, uint64_t acct)
{
    if (a->nrecover == a->recovcap) {
        size_t cap = a->recovcap ? a->recovcap * 2 : 4;
        dlq_recov *n = realloc(a->recover, cap * sizeof *n);
        if (!n) return SW_ENOMEM;
        a->recover = n;
        a->recovcap = cap;
    }
    a->recover[a->nrecover++] = (dlq_recov){.seq = seq, .limit = limit, .acct = acct};
    return 0;
}

/* Bookkeeping once segment e was cut to good_end and sealed (or removed):
 * e->acct bytes of it were counted in d->used. */
static void recovered_seg(dlq *d, dlq_area *a, const dlq_recov *e, const dlq_scan *s,
                          int removed)
{
    pthread_mutex_lock(&d->mu);
    uint64_t keep = removed ? 0 : s->good_end < e->acct ? s->good_end : e->acct;
    uint64_t cut = removed ? e->acct - DLQ_SEG_HDR_LEN : e->acct - keep;
    d->cut_bytes += cut;
    if (removed) {
        forget_seg(d, a, e->seq, e->acct);
    } else if (is_rej(a)) {
        d->used -= cut;
        d->rej.used -= cut;
        d->rej.bytes -= cut;
        d->rej.records += s->records;
    } else if (!is_main(a)) {
        d->used -= cut;
    } else {
        d->used -= cut;
        dlq_seginfo *i = dlq_segs_find(d, e->seq);
        if (i) *i = (dlq_seginfo){.seq = e->seq, .bytes = keep, .records = s->records,
                                  .created_ns = i->created_ns, .sealed = 1};
        dlq_segs_publish(d);
    }
    pthread_mutex_unlock(&d->mu);
}

/* Cuts the torn tail found by the scan and seals with the valid records. */
static int cut_and_seal(dlq *d, int fd, const char *name, dlq_seg_hdr *h, uint64_t size,
                        const dlq_scan *s)
{
    if (s->good_end < size) {
        LOG_WARN("open segment %s: cut %llu bytes of torn, corrupt or refused tail at offset "
                 "%llu (%s)", name, (unsigned long long)(size - s->good_end),
                 (unsigned long long)s->good_end, s->why ? s->why : "past its last good record");
        if (ftruncate(fd, (off_t)s->good_end) != 0) return SW_EIO;
    }
    h->flags = DLQ_SEG_SEALED;
    h->sealed_ns = clock_wall_ns();
    h->records = s->records;
    h->body_len = s->good_end - DLQ_SEG_HDR_LEN;
    memcpy(h->body_sha, s->body_sha, DLQ_SHA256_LEN);
    return dlq_seg_seal(fd, h, DLQ_SYNC(d));
}

/* Scans an unsealed segment up to its limit, cuts the rest, seals it; one
 * that fails its header goes to quarantine/ of its area. 0 when done
 * (recovered, removed or quarantined), SW_EIO to retry later (the storage
 * failed; recorded by dlq_health_fail). */
static int recover_one(dlq *d, dlq_area *a, dlq_recov *e)
{
    char name[DLQ_SEG_NAME_LEN + 1];
    dlq_seg_hdr h;
    dlq_scan s;
    uint64_t size = 0;
    const char *why = NULL;
    dlq_seg_name(e->seq, name);
    int fd = openat(a->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        dlq_health_fail(d, "segment recovery (open)", errno, 0);
        return SW_EIO;
    }
    int rc = dlq_seg_read_hdr(fd, &h, &size, &why);
    if (rc == 0) rc = dlq_seg_scan(d->rb, fd, size < e->limit ? size : e->limit, 0, &s);
    if (rc == 0 && s.records == 0) {
        LOG_WARN("open segment %s holds no complete record: removed (%llu bytes cut)", name,
                 (unsigned long long)(size - DLQ_SEG_HDR_LEN));
        if (unlinkat(a->dirfd, name, 0) == 0) recovered_seg(d, a, e, &s, 1);
        else rc = SW_EIO;
    } else if (rc == 0 && (rc = cut_and_seal(d, fd, name, &h, size, &s)) == 0) {
        recovered_seg(d, a, e, &s, 0);
        LOG_INFO("recovered open segment %s: %llu records", name, (unsigned long long)s.records);
    }
    int err = errno;
    close(fd);
    if (rc == SW_EDECODE) {
        dlq_quarantine(a->dirfd, name, why, d->m);
        pthread_mutex_lock(&d->mu);
        forget_seg(d, a, e->seq, e->acct);
        pthread_mutex_unlock(&d->mu);
        return 0;
    }
    if (rc == SW_EIO) dlq_health_fail(d, "segment recovery", err, 0);
    else if (rc) LOG_ERROR("recovery of segment %s failed: %s", name, sw_strerror(rc));
    return rc;
}

int dlq_recover_pending(dlq *d)
{
    size_t left = 0;
    for (int k = 0; k < DLQ_AREAS; k++) {
        dlq_area *a = &d->area[k];
        size_t keep = 0, done = 0;
        for (size_t i = 0; i < a->nrecover; i++) {
            if (recover_one(d, a, &a->recover[i]) == 0) done++;
            else a->recover[keep++] = a->recover[i];
        }
        a->nrecover = keep;
        left += keep;
        if (DLQ_SYNC(d) && done) dlq_sync_dir(a->dirfd);
    }
    return left ? SW_EIO : 0;
}

static void recover_all(dlq *d)
{
    if (dlq_recover_pending(d) != 0)
        LOG_ERROR("DLQ %s: some open segments could not be recovered yet; retried while the "
                  "DLQ is unavailable", d->dir);
    pthread_mutex_lock(&d->mu);
    d->recovered = 1;
    pthread_cond_broadcast(&d->rcv);
    pthread_mutex_unlock(&d->mu);
}

/* ---- the thread ------------------------------------------------------------- */

/* Waits for work (d->mu held) or until a timer is due: a batch fsync, or
 * a re-probe while the DLQ is unavailable. */
static void wait_work(dlq *d)
{
    while (!d->ring_n && !d->stop && !d->seal_req &&
           !(d->probe_req && !atomic_load(&d->avail))) {
        int64_t due = INT64_MAX;
        if (any_dirty(d) && d->o.fsync == CFG_FSYNC_BATCH)
            due = d->last_fsync_ns + (int64_t)d->o.batch_ms * 1000000;
        if (!atomic_load(&d->avail) && d->probe_at_ns < due) due = d->probe_at_ns;
        if (due == INT64_MAX) {
            pthread_cond_wait(&d->wcv, &d->mu);
            continue;
        }
        int64_t left = due - clock_mono_ns();
        if (left <= 0) return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + left;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&d->wcv, &d->mu, &ts);
    }
}

/* The reader acknowledged every record of the open segment, which has not
 * grown since: seal it so that it can be deleted (unconditional when off
 * is UINT64_MAX: the reader found a bad record in it). */
static void seal_on_request(dlq *d, uint64_t seq, uint64_t off)
{
    dlq_area *a = &d->area[DLQ_AREA_MAIN];
    if (a->cur.fd < 0 || a->cur.records == 0 || a->cur.seq != seq) return;
    if (off != UINT64_MAX && a->cur.size != off) return;
    seal_cur(d, a);
}

void *dlq_writer_main(void *arg)
{
    dlq *d = arg;
    dlq_req *b[BATCH_MAX];
    recover_all(d);
    d->last_fsync_ns = clock_mono_ns();
    for (;;) {
        pthread_mutex_lock(&d->mu);
        wait_work(d);
        size_t n = 0;
        while (d->ring_n && n < BATCH_MAX) {
            b[n] = d->ring[d->ring_head];
            d->ring_head = (d->ring_head + 1) % d->o.ring_slots;
            d->ring_n--;
            d->ring_bytes -= b[n]->it->len;
            n++;
        }
        int seal = d->seal_req, stop = d->stop && d->ring_n == 0;
        uint64_t seal_seq = d->seal_seq, seal_off = d->seal_off;
        d->seal_req = 0;
        pthread_mutex_unlock(&d->mu);
        if (n) run_batch(d, b, n);
        if (d->o.fsync == CFG_FSYNC_BATCH &&
            clock_mono_ns() - d->last_fsync_ns >= (int64_t)d->o.batch_ms * 1000000)
            for (int k = 0; k < DLQ_AREAS; k++) do_fsync(d, &d->area[k]);
        if (seal) seal_on_request(d, seal_seq, seal_off);
        if (!stop) dlq_health_tick(d);
        if (stop) break;
    }
    for (int k = 0; k < DLQ_AREAS; k++) seal_cur(d, &d->area[k]);
    return NULL;
}
