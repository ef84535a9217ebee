/* dlq_store.c — the DLQ directory: open, start-up scan, segment table,
 * close (see dlq.h). */
#define LOG_COMPONENT "dlq"
#include "dlq/dlq_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"

void dlq_opts_from_cfg(dlq_opts *o, const cfg *c)
{
    memset(o, 0, sizeof *o);
    o->dir = c->dlq.dir;
    o->segment_size = c->dlq.segment_size;
    o->max_size = c->dlq.max_size;
    o->compression_level = c->dlq.compression_level;
    o->fsync = c->dlq.fsync;
    o->ring_bytes = c->dlq.ring_bytes;
}

/* ---- segment table (d->mu held) ---------------------------------------- */

int dlq_segs_add(dlq *d, const dlq_seginfo *s)
{
    if (d->nsegs == d->segcap) {
        size_t cap = d->segcap ? d->segcap * 2 : 16;
        dlq_seginfo *n = realloc(d->segs, cap * sizeof *n);
        if (!n) return SW_ENOMEM;
        d->segs = n;
        d->segcap = cap;
    }
    size_t i = d->nsegs;
    while (i > 0 && d->segs[i - 1].seq > s->seq) {
        d->segs[i] = d->segs[i - 1];
        i--;
    }
    d->segs[i] = *s;
    d->nsegs++;
    return 0;
}

dlq_seginfo *dlq_segs_find(dlq *d, uint64_t seq)
{
    for (size_t i = 0; i < d->nsegs; i++)
        if (d->segs[i].seq == seq) return &d->segs[i];
    return NULL;
}

void dlq_segs_remove(dlq *d, uint64_t seq)
{
    for (size_t i = 0; i < d->nsegs; i++) {
        if (d->segs[i].seq != seq) continue;
        memmove(&d->segs[i], &d->segs[i + 1], (d->nsegs - i - 1) * sizeof d->segs[0]);
        d->nsegs--;
        return;
    }
}

void dlq_segs_publish(dlq *d)
{
    int64_t bytes = 0, oldest = 0;
    for (size_t i = 0; i < d->nsegs; i++) {
        bytes += (int64_t)d->segs[i].bytes;
        if (oldest == 0 && d->segs[i].records > 0) oldest = d->segs[i].created_ns;
    }
    metrics_gauge_set(&d->m->dlq_bytes, bytes);
    metrics_gauge_set(&d->m->dlq_segments, (int64_t)d->nsegs);
    metrics_gauge_set(&d->m->dlq_oldest_wall_ns, oldest);
    atomic_fetch_add(&d->publish_gen, 1);
    if (d->published) d->published(d->published_arg);
}

/* ---- start-up scan ------------------------------------------------------ */

static int mkdir_p(const char *path)
{
    char tmp[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof tmp) return SW_EINVAL;
    memcpy(tmp, path, n + 1);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) goto fail;
        *p = '/';
    }
    if (mkdir(tmp, 0755) != 0 && errno != EEXIST) goto fail;
    return 0;
fail:
    LOG_ERROR("cannot create DLQ directory %s: %s", tmp, strerror(errno));
    return SW_EIO;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Adds a segment found at open to its area's bookkeeping (d->mu not
 * needed: the writer is not running yet). */
static int scan_add(dlq *d, dlq_area *a, const dlq_seg_hdr *h, uint64_t seq, uint64_t size)
{
    int sealed = (h->flags & DLQ_SEG_SEALED) != 0;
    if (!sealed && dlq_recover_add(a, seq, UINT64_MAX, size) != 0) return SW_ENOMEM;
    if (a->kind == DLQ_AREA_REJECTED) {
        d->rej.used += size;
        d->rej.bytes += size;
        d->rej.segments++;
        d->rej.records += sealed ? h->records : 0; /* unsealed: counted when recovered */
    } else if (a->kind == DLQ_AREA_JOURNAL) {
        /* journal/: only its bytes are counted (d->used) */
    } else {
        dlq_seginfo s = {.seq = seq, .bytes = size, .records = sealed ? h->records : 1,
                         .created_ns = h->created_ns, .sealed = sealed};
        /* unsealed: records unknown until recovered; 1 counts for the oldest age */
        int rc = dlq_segs_add(d, &s);
        if (rc) return rc;
    }
    d->used += size;
    if (seq >= a->next_seq) a->next_seq = seq + 1;
    return 0;
}

/* Reads one segment's header; quarantines it when it fails. */
static int scan_segment(dlq *d, dlq_area *a, const char *name, uint64_t seq)
{
    dlq_seg_hdr h;
    uint64_t size = 0;
    const char *why = NULL;
    int fd = openat(a->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        LOG_ERROR("cannot open segment %s: %s", name, strerror(errno));
        return SW_EIO;
    }
    int rc = dlq_seg_read_hdr(fd, &h, &size, &why);
    close(fd);
    if (rc == 0 && h.seq != seq) why = "sequence differs from the file name", rc = SW_EDECODE;
    if (rc == 0 && (h.flags & DLQ_SEG_SEALED) && size != DLQ_SEG_HDR_LEN + h.body_len)
        why = "segment length differs from its header", rc = SW_EDECODE;
    if (rc == SW_EDECODE) {
        /* Storage that refuses the move (read-only) must not stop the start:
         * the file stays where it is, unused, and its sequence number is
         * never reused. */
        if (dlq_quarantine(a->dirfd, name, why, d->m) != 0 && seq >= a->next_seq)
            a->next_seq = seq + 1;
        return 0;
    }
    if (rc) return rc;
    return scan_add(d, a, &h, seq, size);
}

/* One directory entry: a segment, a leftover temporary, or a stranger
 * (directories such as quarantine/ and rejected/ are not entries). */
static int scan_entry(dlq *d, dlq_area *a, const char *name)
{
    struct stat st;
    uint64_t seq;
    if (fstatat(a->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) return 0;
    if (strcmp(name, "cursor") == 0 || strcmp(name, "cursor.tmp") == 0) return 0;
    if (a->kind == DLQ_AREA_JOURNAL && ends_with(name, DLQ_JNL_ACK_SUFFIX)) return 0;
    if (ends_with(name, ".seg.tmp")) {
        LOG_INFO("removing unfinished segment creation %s (never held records)", name);
        unlinkat(a->dirfd, name, 0);
        return 0;
    }
    if (dlq_seg_name_parse(name, &seq) != 0) {
        (void)dlq_quarantine(a->dirfd, name, "not a segment file name", d->m); /* left if it fails */
        return 0;
    }
    return scan_segment(d, a, name, seq);
}

static int scan_dir(dlq *d, dlq_area *a)
{
    int fd = dup(a->dirfd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0) close(fd);
        LOG_ERROR("cannot list %s%s: %s", d->dir,
                  a->kind == DLQ_AREA_REJECTED ? "/" DLQ_REJ_DIR
                  : a->kind == DLQ_AREA_JOURNAL ? "/" DLQ_JNL_DIR : "", strerror(errno));
        return SW_EIO;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(dir)) != NULL)
        if (e->d_name[0] != '.') rc = scan_entry(d, a, e->d_name);
    closedir(dir);
    return rc;
}

/* Scans the area in subdirectory name, which is created on first use. */
static int scan_optional(dlq *d, int area, const char *name)
{
    dlq_area *a = &d->area[area];
    a->dirfd = openat(d->dirfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (a->dirfd < 0 && errno == ENOENT) return 0; /* created on first use */
    if (a->dirfd < 0) {
        LOG_ERROR("cannot open %s/%s: %s", d->dir, name, strerror(errno));
        return SW_EIO;
    }
    return scan_dir(d, a);
}

int dlq_rej_scan(dlq *d) { return scan_optional(d, DLQ_AREA_REJECTED, DLQ_REJ_DIR); }

int dlq_jnl_scan(dlq *d) { return scan_optional(d, DLQ_AREA_JOURNAL, DLQ_JNL_DIR); }

/* Cursor: segments wholly before it were acknowledged (a crash came
 * between the cursor write and their deletion). */
static int load_cursor(dlq *d)
{
    int rc = dlq_cursor_load(d->dirfd, &d->cursor);
    if (rc == SW_ENOTFOUND) {
        d->cursor.seq = 0;
        d->cursor.off = 0;
        return 0;
    }
    if (rc) return rc;
    dlq_area *a = &d->area[DLQ_AREA_MAIN];
    if (d->cursor.seq >= a->next_seq) a->next_seq = d->cursor.seq + 1;
    return 0;
}

static int open_init(dlq *d, const dlq_opts *o, sw_metrics *m)
{
    d->o = *o;
    d->dirfd = -1;
    for (int i = 0; i < DLQ_AREAS; i++)
        d->area[i] = (dlq_area){.kind = i, .dirfd = -1, .cur.fd = -1};
    for (int i = 0; i < DLQ_AREAS; i++)
        if (!(d->area[i].cur.body = dlq_sha256_new())) return SW_ENOMEM;
    d->rej.max = o->rejected_max ? o->rejected_max : o->max_size / DLQ_REJ_SHARE;
    if (!d->o.batch_ms) d->o.batch_ms = 100;
    if (!d->o.ring_slots) d->o.ring_slots = 4096;
    if (!d->o.ring_bytes) { /* the schema's dlq.ring_bytes */
        cfg *c = cfg_defaults();
        if (!c) return SW_ENOMEM;
        d->o.ring_bytes = c->dlq.ring_bytes;
        cfg_free(c);
    }
    if (!d->o.pwrite) d->o.pwrite = pwrite;
    if (!d->o.sync_fn) d->o.sync_fn = fsync;
    if (!d->o.probe_ms) d->o.probe_ms = 1000;
    if (!d->o.seal_idle_ms) d->o.seal_idle_ms = 1000;
    d->o.dir = NULL;
    if (!m) m = d->own_m = metrics_new();
    d->m = dlq_metrics_get(m);
    d->dir = strdup(o->dir);
    d->ring = calloc(d->o.ring_slots, sizeof *d->ring);
    d->cctx = ZSTD_createCCtx();
    d->rb = dlq_recbuf_new();
    buf_init(&d->wbuf, DLQ_REC_HDR_LEN + DLQ_NOTE_MAX + dlq_rec_max_clen());
    if (!d->m || !d->dir || !d->ring || !d->cctx || !d->rb) return SW_ENOMEM;
    if (ZSTD_isError(ZSTD_CCtx_setParameter(d->cctx, ZSTD_c_compressionLevel,
                                            o->compression_level)))
        return SW_EINVAL;
    d->cctx_level = o->compression_level;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->wcv, NULL);
    pthread_cond_init(&d->rcv, NULL);
    return 0;
}

int dlq_open(const dlq_opts *o, sw_metrics *m, dlq **out)
{
    if (!o->dir || !o->dir[0] || o->segment_size <= DLQ_SEG_HDR_LEN) return SW_EINVAL;
    dlq *d = calloc(1, sizeof *d);
    if (!d) return SW_ENOMEM;
    int rc = open_init(d, o, m);
    if (rc) goto fail;
    if ((rc = mkdir_p(d->dir)) != 0) goto fail;
    rc = SW_EIO;
    d->dirfd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d->dirfd < 0) {
        LOG_ERROR("cannot open DLQ directory %s: %s", d->dir, strerror(errno));
        goto fail;
    }
    d->area[DLQ_AREA_MAIN].dirfd = d->dirfd;
    if ((rc = scan_dir(d, &d->area[DLQ_AREA_MAIN])) != 0 || (rc = load_cursor(d)) != 0 ||
        (rc = dlq_rej_scan(d)) != 0 || (rc = dlq_jnl_scan(d)) != 0)
        goto fail;
    dlq_segs_publish(d);
    atomic_store(&d->avail, 1);
    metrics_gauge_set(&d->m->dlq_available, 1);
    metrics_gauge_set(&d->m->dlq_max_bytes,
                      o->max_size > INT64_MAX ? INT64_MAX : (int64_t)o->max_size);
    if (dlq_health_probe(d, DLQ_PROBE_MIN) != 0)
        LOG_ERROR("DLQ directory %s is not writable (%s): spillway runs with the DLQ unavailable "
                  "(data that would spill is refused with 503, /readyz is not ready) and "
                  "retries every %llu ms or more", d->dir, d->why,
                  (unsigned long long)d->o.probe_ms);
    LOG_INFO("DLQ %s: %zu segments, %llu bytes, %zu to recover; rejected area %llu segments, "
             "%llu bytes (bound %llu)", d->dir, d->nsegs, (unsigned long long)d->used,
             d->area[DLQ_AREA_MAIN].nrecover + d->area[DLQ_AREA_REJECTED].nrecover +
                 d->area[DLQ_AREA_JOURNAL].nrecover,
             (unsigned long long)d->rej.segments, (unsigned long long)d->rej.bytes,
             (unsigned long long)d->rej.max);
    if (pthread_create(&d->thr, NULL, dlq_writer_main, d) != 0) {
        rc = SW_ENOMEM;
        goto fail;
    }
    d->started = 1;
    *out = d;
    return 0;
fail:
    dlq_close(d);
    return rc;
}

uint64_t dlq_used_bytes(dlq *d)
{
    pthread_mutex_lock(&d->mu);
    uint64_t v = d->used;
    pthread_mutex_unlock(&d->mu);
    return v;
}

uint64_t dlq_cut_bytes(dlq *d)
{
    pthread_mutex_lock(&d->mu);
    uint64_t v = d->cut_bytes;
    pthread_mutex_unlock(&d->mu);
    return v;
}

void dlq_rejected_stats(dlq *d, dlq_rej_stats *s)
{
    pthread_mutex_lock(&d->mu);
    *s = (dlq_rej_stats){.bytes = d->rej.bytes, .segments = d->rej.segments,
                         .records = d->rej.records, .max = d->rej.max,
                         .refused = d->rej.refused};
    pthread_mutex_unlock(&d->mu);
}

void dlq_wait_recovered(dlq *d)
{
    pthread_mutex_lock(&d->mu);
    while (!d->recovered) pthread_cond_wait(&d->rcv, &d->mu);
    pthread_mutex_unlock(&d->mu);
}

/* After the writer sealed the open segment at close: deletes the sealed
 * segments the persisted cursor has passed (a segment whose records were
 * all acknowledged while it was still open). */
static void delete_passed(dlq *d)
{
    while (d->nsegs > 0) {
        char name[DLQ_SEG_NAME_LEN + 1];
        dlq_seginfo *s = &d->segs[0];
        if (!s->sealed || s->seq > d->cursor.seq ||
            (s->seq == d->cursor.seq && d->cursor.off < s->bytes))
            break;
        dlq_seg_name(s->seq, name);
        if (unlinkat(d->dirfd, name, 0) != 0) break;
        d->used -= s->bytes;
        dlq_segs_remove(d, s->seq);
    }
    dlq_segs_publish(d);
}

void dlq_close(dlq *d)
{
    if (!d) return;
    if (d->started) {
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_cond_signal(&d->wcv);
        pthread_mutex_unlock(&d->mu);
        pthread_join(d->thr, NULL);
        delete_passed(d);
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->wcv);
        pthread_cond_destroy(&d->rcv);
    }
    if (d->dirfd >= 0) close(d->dirfd);
    if (d->area[DLQ_AREA_REJECTED].dirfd >= 0) close(d->area[DLQ_AREA_REJECTED].dirfd);
    if (d->area[DLQ_AREA_JOURNAL].dirfd >= 0) close(d->area[DLQ_AREA_JOURNAL].dirfd);
    for (int i = 0; i < DLQ_AREAS; i++) {
        dlq_sha256_free(d->area[i].cur.body);
        free(d->area[i].recover);
    }
    buf_destroy(&d->wbuf);
    dlq_recbuf_free(d->rb);
    ZSTD_freeCCtx(d->cctx);
    free(d->ring);
    free(d->segs);
    free(d->dir);
    metrics_free(d->own_m);
    free(d);
}
