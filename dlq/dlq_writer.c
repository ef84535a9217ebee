/* dlq_writer.c — the DLQ writer thread: recovery, record encoding, group
 * commit, segment roll and seal (see the DESIGN paragraph in dlq.h). */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_int.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

#define BATCH_MAX 256

/* ---- open segment: create, seal, abandon -------------------------------- */

static void publish_cur(dlq *d, int sealed)
{
    pthread_mutex_lock(&d->mu);
    dlq_seginfo *s = dlq_segs_find(d, d->cur.seq);
    if (s) {
        s->bytes = d->cur.size;
        s->records = d->cur.records;
        s->sealed = sealed;
    }
    dlq_segs_publish(d);
    pthread_mutex_unlock(&d->mu);
}

/* Leaves the segment unsealed on disk (recovered at the next start) after a
 * write or fsync error that left its tail in doubt. */
static void abandon_cur(dlq *d)
{
    LOG_ERROR("segment %016llx abandoned after a write error; it is recovered at the next start",
              (unsigned long long)d->cur.seq);
    publish_cur(d, 0);
    close(d->cur.fd);
    d->cur.fd = -1;
}

static int seal_cur(dlq *d)
{
    char name[DLQ_SEG_NAME_LEN + 1];
    if (d->cur.fd < 0) return 0;
    if (d->cur.records == 0) { /* nothing in it: remove rather than seal */
        dlq_seg_name(d->cur.seq, name);
        close(d->cur.fd);
        d->cur.fd = -1;
        unlinkat(d->dirfd, name, 0);
        pthread_mutex_lock(&d->mu);
        d->used -= d->cur.size;
        dlq_segs_remove(d, d->cur.seq);
        dlq_segs_publish(d);
        pthread_mutex_unlock(&d->mu);
        return 0;
    }
    dlq_seg_hdr h = {.seq = d->cur.seq, .created_ns = d->cur.created_ns,
                     .sealed_ns = clock_wall_ns(), .records = d->cur.records,
                     .body_len = d->cur.size - DLQ_SEG_HDR_LEN};
    int rc = dlq_sha256_final(d->cur.body, h.body_sha);
    if (rc == 0) rc = dlq_seg_seal(d->cur.fd, &h, DLQ_SYNC(d));
    if (rc) {
        abandon_cur(d);
        return rc;
    }
    publish_cur(d, 1);
    close(d->cur.fd);
    d->cur.fd = -1;
    d->dirty = 0;
    return 0;
}

static int open_cur(dlq *d)
{
    int fd = -1;
    int64_t now = clock_wall_ns();
    uint64_t seq = d->next_seq;
    int rc = dlq_seg_create(d->dirfd, seq, now, DLQ_SYNC(d), &fd);
    if (rc == 0) rc = dlq_sha256_reset(d->cur.body);
    if (rc) {
        if (fd >= 0) close(fd);
        return SW_EIO;
    }
    d->next_seq++;
    d->cur = (dlq_open_seg){.fd = fd, .seq = seq, .size = DLQ_SEG_HDR_LEN,
                            .created_ns = now, .body = d->cur.body};
    dlq_seginfo s = {.seq = seq, .bytes = DLQ_SEG_HDR_LEN, .created_ns = now};
    pthread_mutex_lock(&d->mu);
    rc = dlq_segs_add(d, &s);
    d->used += DLQ_SEG_HDR_LEN;
    dlq_segs_publish(d);
    pthread_mutex_unlock(&d->mu);
    return rc;
}

/* ---- one record ---------------------------------------------------------- */

/* Compresses it into d->wbuf after room for the record header. */
static int encode_payload(dlq *d, const item *it, size_t *clen)
{
    buf_reset(&d->wbuf);
    size_t bound = ZSTD_compressBound(it->len);
    int rc = buf_reserve(&d->wbuf, DLQ_REC_HDR_LEN + bound);
    if (rc) return rc;
    size_t c = ZSTD_compress2(d->cctx, d->wbuf.data + DLQ_REC_HDR_LEN, bound, it->data, it->len);
    if (ZSTD_isError(c)) {
        LOG_ERROR_RL(10, "zstd compression failed: %s", ZSTD_getErrorName(c));
        return SW_EIO;
    }
    *clen = c;
    d->wbuf.len = DLQ_REC_HDR_LEN + c;
    return 0;
}

static int encode_header(dlq *d, const item *it, size_t clen)
{
    dlq_rec_hdr h = {.klass = it->klass, .signal = it->signal, .count = it->count,
                     .ulen = (uint32_t)it->len, .clen = (uint32_t)clen,
                     .recv_wall_ns = dlq_mono_to_wall(it->recv_ns), .index = d->cur.records};
    uint8_t *p = d->wbuf.data;
    dlq_rec_hdr_encode(&h, p);
    return dlq_rec_hash(p, p + DLQ_REC_HDR_LEN, clen, p + DLQ_REC_HASHED);
}

static int write_all(dlq *d, const uint8_t *p, size_t n, uint64_t off)
{
    while (n > 0) {
        ssize_t w = d->o.pwrite(d->cur.fd, p, n, (off_t)off);
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

/* Writes one record; 0 or SW_EIO (the partial record is cut). */
static int write_record(dlq *d, const item *it)
{
    size_t clen = 0;
    int rc = encode_payload(d, it, &clen);
    if (rc) return rc == SW_ENOMEM ? SW_ENOMEM : SW_EIO;
    uint64_t total = DLQ_REC_HDR_LEN + clen;
    if (d->cur.fd >= 0 && d->cur.records > 0 && d->cur.size + total > d->o.segment_size)
        seal_cur(d);
    if (d->cur.fd < 0 && open_cur(d) != 0) return SW_EIO;
    if ((rc = encode_header(d, it, clen)) != 0) return rc;
    if (write_all(d, d->wbuf.data, total, d->cur.size) != 0) {
        LOG_ERROR_RL(5, "DLQ write failed (segment %016llx, offset %llu): %s",
                     (unsigned long long)d->cur.seq, (unsigned long long)d->cur.size,
                     strerror(errno));
        if (ftruncate(d->cur.fd, (off_t)d->cur.size) != 0) abandon_cur(d);
        return SW_EIO;
    }
    if (dlq_sha256_update(d->cur.body, d->wbuf.data, total) != 0) {
        abandon_cur(d);
        return SW_EIO;
    }
    d->cur.size += total;
    d->cur.records++;
    d->dirty = 1;
    d->disk_added += total;
    return 0;
}

/* ---- batches and group commit ---------------------------------------------- */

static int do_fsync(dlq *d)
{
    d->last_fsync_ns = clock_mono_ns();
    if (d->cur.fd < 0 || !d->dirty) return 0;
    d->dirty = 0;
    if (fsync(d->cur.fd) == 0) return 0;
    LOG_ERROR("DLQ fsync of segment %016llx failed: %s", (unsigned long long)d->cur.seq,
              strerror(errno));
    abandon_cur(d);
    return SW_EIO;
}

static void run_batch(dlq *d, dlq_req **b, size_t n)
{
    uint64_t written_req = 0;
    int ok_any = 0;
    d->disk_added = 0;
    for (size_t i = 0; i < n; i++) {
        b[i]->status = write_record(d, b[i]->it);
        if (b[i]->status == 0) ok_any = 1, written_req += b[i]->it->len;
    }
    if (ok_any && d->o.fsync == CFG_FSYNC_ALWAYS && do_fsync(d) != 0) {
        /* Durability of this batch's records is unknown: refuse them all;
         * the segment is recovered (verified record by record) at restart. */
        for (size_t i = 0; i < n; i++)
            if (b[i]->status == 0) b[i]->status = SW_EIO, written_req -= b[i]->it->len;
    }
    pthread_mutex_lock(&d->mu);
    for (size_t i = 0; i < n; i++) d->used -= b[i]->reserve;
    d->used += d->disk_added;
    pthread_mutex_unlock(&d->mu);
    if (d->cur.fd >= 0) publish_cur(d, 0);
    metrics_add(&d->m->dlq_written_bytes, written_req);
    for (size_t i = 0; i < n; i++) dlq_req_complete(b[i], b[i]->status);
}

/* ---- start-up recovery of unsealed segments ---------------------------- */

static void recovered_seg(dlq *d, uint64_t seq, uint64_t size, const dlq_scan *s, int removed)
{
    pthread_mutex_lock(&d->mu);
    uint64_t cut = size - s->good_end;
    if (removed) cut = size - DLQ_SEG_HDR_LEN, d->used -= size, dlq_segs_remove(d, seq);
    else d->used -= cut;
    d->cut_bytes += cut;
    dlq_seginfo *e = removed ? NULL : dlq_segs_find(d, seq);
    if (e) *e = (dlq_seginfo){.seq = seq, .bytes = s->good_end, .records = s->records,
                              .created_ns = e->created_ns, .sealed = 1};
    dlq_segs_publish(d);
    pthread_mutex_unlock(&d->mu);
}

/* Scans an unsealed segment, cuts its torn or corrupt tail, seals it. */
static int recover_one(dlq *d, uint64_t seq)
{
    char name[DLQ_SEG_NAME_LEN + 1];
    dlq_seg_hdr h;
    dlq_scan s;
    uint64_t size = 0;
    const char *why = NULL;
    dlq_seg_name(seq, name);
    int fd = openat(d->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0) return SW_EIO;
    int rc = dlq_seg_read_hdr(fd, &h, &size, &why);
    if (rc == 0) rc = dlq_seg_scan(d->rb, fd, size, 0, &s);
    if (rc) goto out;
    if (s.records == 0) {
        LOG_WARN("open segment %s holds no complete record: removed (%llu bytes cut)", name,
                 (unsigned long long)(size - DLQ_SEG_HDR_LEN));
        if (unlinkat(d->dirfd, name, 0) == 0) recovered_seg(d, seq, size, &s, 1);
        goto out;
    }
    if (s.good_end < size) {
        LOG_WARN("open segment %s: cut %llu bytes of torn or corrupt tail at offset %llu (%s)",
                 name, (unsigned long long)(size - s.good_end), (unsigned long long)s.good_end,
                 s.why ? s.why : "?");
        if (ftruncate(fd, (off_t)s.good_end) != 0) {
            rc = SW_EIO;
            goto out;
        }
    }
    h.flags = DLQ_SEG_SEALED;
    h.sealed_ns = clock_wall_ns();
    h.records = s.records;
    h.body_len = s.good_end - DLQ_SEG_HDR_LEN;
    memcpy(h.body_sha, s.body_sha, DLQ_SHA256_LEN);
    if ((rc = dlq_seg_seal(fd, &h, DLQ_SYNC(d))) == 0) recovered_seg(d, seq, size, &s, 0);
    LOG_INFO("recovered open segment %s: %llu records", name, (unsigned long long)s.records);
out:
    close(fd);
    if (rc == SW_EDECODE) {
        dlq_quarantine(d->dirfd, name, why, d->m);
        return SW_EDECODE;
    }
    if (rc) LOG_ERROR("recovery of segment %s failed: %s", name, sw_strerror(rc));
    return rc;
}

static void recover_all(dlq *d)
{
    for (size_t i = 0; i < d->nrecover; i++) {
        if (recover_one(d, d->recover[i]) == SW_EDECODE) {
            pthread_mutex_lock(&d->mu);
            dlq_seginfo *e = dlq_segs_find(d, d->recover[i]);
            if (e) d->used -= e->bytes, dlq_segs_remove(d, d->recover[i]);
            dlq_segs_publish(d);
            pthread_mutex_unlock(&d->mu);
        }
    }
    if (DLQ_SYNC(d) && d->nrecover) dlq_sync_dir(d->dirfd);
    pthread_mutex_lock(&d->mu);
    d->recovered = 1;
    pthread_cond_broadcast(&d->rcv);
    pthread_mutex_unlock(&d->mu);
}

/* ---- the thread ------------------------------------------------------------- */

/* Waits for work (d->mu held); returns 1 when a batch fsync is due. */
static int wait_work(dlq *d)
{
    while (!d->ring_n && !d->stop && !d->seal_req) {
        if (!(d->dirty && d->o.fsync == CFG_FSYNC_BATCH)) {
            pthread_cond_wait(&d->wcv, &d->mu);
            continue;
        }
        int64_t due = d->last_fsync_ns + (int64_t)d->o.batch_ms * 1000000;
        int64_t left = due - clock_mono_ns();
        if (left <= 0) return 1;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t ns = ts.tv_nsec + left;
        ts.tv_sec += ns / 1000000000;
        ts.tv_nsec = ns % 1000000000;
        pthread_cond_timedwait(&d->wcv, &d->mu, &ts);
    }
    return 0;
}

void *dlq_writer_main(void *arg)
{
    dlq *d = arg;
    dlq_req *b[BATCH_MAX];
    recover_all(d);
    d->last_fsync_ns = clock_mono_ns();
    for (;;) {
        pthread_mutex_lock(&d->mu);
        int fsync_due = wait_work(d);
        size_t n = 0;
        while (d->ring_n && n < BATCH_MAX) {
            b[n] = d->ring[d->ring_head];
            d->ring_head = (d->ring_head + 1) % d->o.ring_slots;
            d->ring_n--;
            d->ring_bytes -= b[n]->it->len;
            n++;
        }
        int seal = d->seal_req, stop = d->stop && d->ring_n == 0;
        d->seal_req = 0;
        pthread_mutex_unlock(&d->mu);
        if (n) run_batch(d, b, n);
        if (d->o.fsync == CFG_FSYNC_BATCH &&
            (fsync_due || clock_mono_ns() - d->last_fsync_ns >= (int64_t)d->o.batch_ms * 1000000))
            do_fsync(d);
        if (seal && d->cur.records > 0) seal_cur(d);
        if (stop) break;
    }
    seal_cur(d);
    return NULL;
}
