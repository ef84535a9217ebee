/* test_dlq_health.c — storage failures never drop what the DLQ took and
 * never stop replay: the available / unavailable state (injected write and
 * fsync errors, the start-up probe), fail-fast appends while unavailable,
 * recovery in place of a segment whose tail is in doubt, and replay going
 * on without a restart. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlq/dlq.h"
#include "dlq/dlq_fmt.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "testing/lib/th.h"
#include "testing/lib/th_dlq.h"
#include "testing/lib/th_proc.h"
#include "dlq/dlq_metrics.h"

/* ---- helpers ---------------------------------------------------------- */

static item *mk(uint32_t i)
{
    uint8_t d[300];
    for (size_t k = 0; k < sizeof d; k++) d[k] = (uint8_t)(i * 31 + k * (k & 3));
    item *it = item_new(SIG_TRACES, CLASS_NORMAL, i, clock_mono_ns(), d, 100 + i % 200);
    if (!it) abort();
    return it;
}

static int is_item(const item *it, uint32_t i)
{
    item *w = mk(i);
    int ok = it->len == w->len && it->count == i && memcmp(it->data, w->data, w->len) == 0;
    item_free(w);
    return ok;
}

typedef struct done_log {
    int ok, failed, eio, unavail;
    int nback;
    item *back[64];
} done_log;

static void on_done(void *arg, item *it, int status)
{
    done_log *l = arg;
    if (status == 0) l->ok++;
    else l->failed++;
    if (status == SW_EIO) l->eio++;
    if (status == SW_EUNAVAIL) l->unavail++;
    if (it && l->nback < 64) l->back[l->nback++] = it;
    else item_free(it);
}

/* Appends records first..first+n-1 (each must be taken) and waits. */
static void append_n(dlq *d, uint32_t first, uint32_t n, done_log *l)
{
    dlq_port *p = dlq_port_new(d);
    TH_ASSERT(p);
    for (uint32_t i = first; i < first + n; i++) TH_ASSERT_EQ_INT(dlq_append(p, mk(i), on_done, l), 0);
    th_dlq_port_drain(p);
    dlq_port_free(p);
}

static void wait_available(dlq *d, int want)
{
    int64_t deadline = clock_mono_ns() + 10LL * 1000000000;
    while (dlq_available(d) != want && clock_mono_ns() < deadline) th_nap_ms(5);
    TH_ASSERT_EQ_INT(dlq_available(d), want);
}

/* Reads what is readable now (polling a little), acknowledging each. */
static int read_some(dlq_reader *r, uint32_t *counts, int max)
{
    int n = 0, idle = 0;
    while (n < max && idle < th_slow_ms(40)) { /* 200 ms idle, times SW_TEST_SLOW */
        item *it = NULL;
        dlq_pos pos;
        TH_ASSERT_EQ_INT(dlq_reader_next(r, &it, &pos), 0);
        if (!it) {
            idle++;
            th_nap_ms(5);
            continue;
        }
        idle = 0;
        counts[n++] = it->count;
        TH_ASSERT_MSG(is_item(it, it->count), "record %u differs", it->count);
        dlq_reader_ack(r, &pos);
        item_free(it);
    }
    return n;
}

static void opts_init(dlq_opts *o, const char *dir)
{
    memset(o, 0, sizeof *o);
    o->dir = dir;
    o->segment_size = 1 << 20;
    o->max_size = 1ull << 30;
    o->compression_level = 3;
    o->fsync = CFG_FSYNC_ALWAYS;
    o->probe_ms = 20;
}

/* ---- injection ---------------------------------------------------------- */

static _Atomic int write_errno; /* 0: pwrite(2) */
static _Atomic int sync_errno;  /* 0: fsync(2) */

static ssize_t inj_pwrite(int fd, const void *p, size_t n, off_t off)
{
    int e = atomic_load(&write_errno);
    if (!e) return pwrite(fd, p, n, off);
    if (n > 16) { /* a partial write first, as a filling disk does */
        ssize_t w = pwrite(fd, p, 16, off);
        if (w > 0) return w;
    }
    errno = e;
    return -1;
}

static int inj_fsync(int fd)
{
    int e = atomic_load(&sync_errno);
    if (!e) return fsync(fd);
    errno = e;
    return -1;
}

/* ---- cases ---------------------------------------------------------- */

/* Each storage errno turns the DLQ unavailable with a reason, counted;
 * appends then fail fast with SW_EUNAVAIL and the caller keeps the item;
 * once writes succeed again a re-probe makes it available and appends go
 * on in the same segment; nothing written before is lost. */
static void t_write_errors_unavailable_then_back(void)
{
    static const int errs[] = {ENOSPC, EIO, EROFS, EFBIG};
    char dir[256], why[200];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    sw_metrics *m = metrics_new();
    dlq_opts o;
    opts_init(&o, dir);
    o.pwrite = inj_pwrite;
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    TH_ASSERT(dlq_available(d));
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_available), 1);
    TH_ASSERT(dlq_ready(d, why, sizeof why) == 1);
    uint32_t next = 0;
    for (size_t k = 0; k < sizeof errs / sizeof errs[0]; k++) {
        append_n(d, next, 3, &l);
        next += 3;
        uint64_t errors = atomic_load(&dlq_metrics_get(m)->dlq_write_errors);
        atomic_store(&write_errno, errs[k]);
        dlq_port *p = dlq_port_new(d);
        item *it = mk(1000);
        TH_ASSERT_EQ_INT(dlq_append(p, it, on_done, &l), 0);
        th_dlq_port_drain(p);
        TH_ASSERT_EQ_INT(l.eio, (int)k + 1);               /* the failed one is handed back */
        TH_ASSERT(l.nback > 0 && l.back[l.nback - 1] == it);
        item_free(l.back[--l.nback]);
        TH_ASSERT(!dlq_available(d));
        TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_available), 0);
        TH_ASSERT(atomic_load(&dlq_metrics_get(m)->dlq_write_errors) > errors);
        TH_ASSERT(dlq_ready(d, why, sizeof why) == 0);
        TH_ASSERT_MSG(strstr(why, strerror(errs[k])), "reason '%s' for %s", why, strerror(errs[k]));
        it = mk(1001);                                     /* fail fast, nothing queued */
        TH_ASSERT_EQ_INT(dlq_append(p, it, on_done, &l), SW_EUNAVAIL);
        TH_ASSERT_EQ_INT(dlq_port_pending(p), 0);
        item_free(it);
        th_nap_ms(60);                                     /* re-probes fail meanwhile */
        TH_ASSERT(!dlq_available(d));
        atomic_store(&write_errno, 0);
        wait_available(d, 1);
        TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_available), 1);
        TH_ASSERT(dlq_health(d, why, sizeof why) == 1 && strcmp(why, "available") == 0);
        dlq_port_free(p);
    }
    append_n(d, next, 3, &l);
    next += 3;
    TH_ASSERT_EQ_INT(l.ok, (int)next);
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    uint32_t got[64];
    TH_ASSERT_EQ_INT(read_some(r, got, 64), (int)next);    /* in order, none lost or extra */
    for (uint32_t i = 0; i < next; i++) TH_ASSERT_EQ_INT(got[i], i);
    dlq_reader_free(r);
    dlq_close(d);
    metrics_free(m);
    th_rmtree(dir);
}

/* An fsync error (fsync=always) leaves the open segment's tail in doubt:
 * the batch is refused, the segment is cut back to its last fsync'd record
 * and sealed in place once the storage works, and replay goes on past it
 * without a restart — the records before the error, none of the refused
 * ones, and the ones appended after. (Before: the segment was abandoned
 * unsealed and the reader stopped at it until the next start.) */
static void t_fsync_error_recovered_in_place(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    sw_metrics *m = metrics_new();
    dlq_opts o;
    opts_init(&o, dir);
    o.sync_fn = inj_fsync;
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    dlq_reader *r = dlq_reader_new(d, 1, 0);
    uint32_t got[64];
    append_n(d, 0, 5, &l);
    TH_ASSERT_EQ_INT(read_some(r, got, 64), 5);          /* read while the segment is open */
    atomic_store(&sync_errno, EIO);
    dlq_port *p = dlq_port_new(d);
    int refused = 0;
    for (uint32_t i = 5; i < 9; i++) {
        item *it = mk(i);
        int rc = dlq_append(p, it, on_done, &l);
        if (rc == SW_EUNAVAIL) refused++, item_free(it); /* unavailable already */
        else TH_ASSERT_EQ_INT(rc, 0);
    }
    th_dlq_port_drain(p);
    dlq_port_free(p);
    TH_ASSERT_EQ_INT(l.ok, 5);
    TH_ASSERT(l.eio >= 1);
    TH_ASSERT_EQ_INT(l.failed + refused, 4);             /* refused: the producer keeps them */
    for (int i = 0; i < l.nback; i++) item_free(l.back[i]);
    l.nback = 0;
    TH_ASSERT(!dlq_available(d));
    TH_ASSERT_EQ_INT(read_some(r, got, 64), 0);          /* nothing unverified, nothing refused */
    atomic_store(&sync_errno, 0);
    wait_available(d, 1);
    append_n(d, 9, 4, &l);
    int n = read_some(r, got, 64);
    TH_ASSERT_EQ_INT(n, 4);                              /* replay went on, no restart */
    for (int i = 0; i < n; i++) TH_ASSERT_EQ_INT(got[i], 9 + (uint32_t)i);
    TH_ASSERT(dlq_cut_bytes(d) > 0);                     /* the refused batch was cut */
    dlq_reader_free(r);
    dlq_close(d);
    /* After a restart nothing comes back that was refused or acknowledged. */
    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    r = dlq_reader_new(d, 0, 0);
    TH_ASSERT_EQ_INT(read_some(r, got, 64), 0);
    dlq_reader_free(r);
    dlq_close(d);
    metrics_free(m);
    th_rmtree(dir);
}

/* An fsync error next to a segment boundary (small segments), then many
 * rolls: the segment in doubt is recovered (or removed when only refused
 * records were in it) and replay goes on across it, in order. */
static void t_roll_during_failure_keeps_replaying(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    dlq_opts o;
    opts_init(&o, dir);
    o.segment_size = 1200; /* a few records per segment */
    o.pwrite = inj_pwrite;
    o.sync_fn = inj_fsync;
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_reader *r = dlq_reader_new(d, 1, 0);
    uint32_t got[128];
    append_n(d, 0, 3, &l);
    atomic_store(&sync_errno, ENOSPC);
    dlq_port *p = dlq_port_new(d);
    TH_ASSERT_EQ_INT(dlq_append(p, mk(3), on_done, &l), 0);
    th_dlq_port_drain(p);
    TH_ASSERT_EQ_INT(l.failed, 1);
    for (int i = 0; i < l.nback; i++) item_free(l.back[i]);
    l.nback = 0;
    atomic_store(&sync_errno, 0);
    wait_available(d, 1);
    for (uint32_t i = 4; i < 40; i++) { /* several rolls */
        TH_ASSERT_EQ_INT(dlq_append(p, mk(i), on_done, &l), 0);
        th_dlq_port_drain(p);
    }
    dlq_port_free(p);
    int n = read_some(r, got, 128);
    TH_ASSERT_EQ_INT(n, 3 + 36);
    for (int i = 0; i < n; i++) TH_ASSERT_EQ_INT(got[i], i < 3 ? (uint32_t)i : (uint32_t)(i + 1));
    dlq_reader_free(r);
    dlq_close(d);
    th_rmtree(dir);
}

/* The start-up probe: a directory that does not take writes opens with
 * the DLQ unavailable (its sealed segments still replay), and it becomes
 * available once the probe succeeds. */
static void t_start_probe(void)
{
    char dir[256], why[200];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    sw_metrics *m = metrics_new();
    dlq_opts o;
    opts_init(&o, dir);
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    append_n(d, 0, 6, &l);
    dlq_close(d);
    o.pwrite = inj_pwrite;
    atomic_store(&write_errno, EROFS);
    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    TH_ASSERT(!dlq_available(d));
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_available), 0);
    TH_ASSERT(atomic_load(&dlq_metrics_get(m)->dlq_write_errors) >= 1);
    TH_ASSERT(dlq_health(d, why, sizeof why) == 0);
    TH_ASSERT_MSG(strstr(why, "probe") && strstr(why, strerror(EROFS)), "reason '%s'", why);
    dlq_port *p = dlq_port_new(d);
    item *it = mk(100);
    TH_ASSERT_EQ_INT(dlq_append(p, it, on_done, &l), SW_EUNAVAIL);
    item_free(it);
    dlq_wait_recovered(d); /* the writer thread's start-up scan */
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    uint32_t got[16];
    TH_ASSERT_EQ_INT(read_some(r, got, 16), 6);           /* replay is not blocked */
    atomic_store(&write_errno, 0);
    wait_available(d, 1);
    TH_ASSERT_EQ_INT(dlq_append(p, mk(6), on_done, &l), 0);
    th_dlq_port_drain(p);
    TH_ASSERT_EQ_INT(read_some(r, got, 16), 1);
    TH_ASSERT_EQ_INT(got[0], 6);
    dlq_port_free(p);
    dlq_reader_free(r);
    dlq_close(d);
    metrics_free(m);
    th_rmtree(dir);
}

/* A segment that fails its header check but cannot be moved to
 * quarantine/ (here quarantine is a plain file; on a read-only disk the
 * rename fails the same way) does not stop the start: it is left in
 * place, unused, its sequence number is not reused, and the good segments
 * replay. */
static void t_unmovable_bad_segment_does_not_stop_open(void)
{
    char dir[256], p[512], bad[512];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    dlq_opts o;
    opts_init(&o, dir);
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    append_n(d, 0, 3, &l);
    dlq_close(d);                                         /* segment 0, sealed */
    snprintf(bad, sizeof bad, "%s/0000000000000005.seg", dir);
    TH_ASSERT(th_write_file(bad, "not a segment header at all", 27) == 0);
    snprintf(p, sizeof p, "%s/quarantine", dir);
    TH_ASSERT(th_write_file(p, "x", 1) == 0);
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    append_n(d, 3, 2, &l);
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    uint32_t got[16];
    TH_ASSERT_EQ_INT(read_some(r, got, 16), 5);
    for (uint32_t i = 0; i < 5; i++) TH_ASSERT_EQ_INT(got[i], i);
    dlq_reader_free(r);
    dlq_close(d);
    size_t len = 0;
    char *img = th_read_file(bad, &len);                  /* never overwritten */
    TH_ASSERT(img && len == 27 && memcmp(img, "not a segment", 13) == 0);
    free(img);
    th_rmtree(dir);
}

/* A directory that cannot be created at all is an error, not a silent
 * run without a DLQ. */
static void t_uncreatable_dir_fails(void)
{
    char dir[256], path[300];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    snprintf(path, sizeof path, "%s/file", dir);
    TH_ASSERT(th_write_file(path, "x", 1) == 0);
    snprintf(path, sizeof path, "%s/file/dlq", dir);     /* under a regular file */
    dlq_opts o;
    opts_init(&o, path);
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), SW_EIO);
    TH_ASSERT(d == NULL);
    th_rmtree(dir);
}

int main(void)
{
    TH_RUN(t_write_errors_unavailable_then_back);
    TH_RUN(t_fsync_error_recovered_in_place);
    TH_RUN(t_roll_during_failure_keeps_replaying);
    TH_RUN(t_start_probe);
    TH_RUN(t_unmovable_bad_segment_does_not_stop_open);
    TH_RUN(t_uncreatable_dir_fails);
    return th_done();
}
