/* test_dlq.c — DLQ writer, reader, cursor, limits, write errors, token
 * bucket. Recovery, quarantine and the offline commands: test_dlq_recovery.c. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dlq/dlq.h"
#include "dlq/dlq_fmt.h"
#include "dlq/dlq_tb.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "testing/lib/th.h"
#include "testing/lib/th_dlq.h"
#include "testing/lib/th_proc.h"
#include "dlq/dlq_metrics.h"

/* ---- helpers ---------------------------------------------------------- */

static item *mk(uint32_t i, size_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    if (!d) abort();
    uint64_t x = 0x9E3779B97F4A7C15ull * (i + 1);
    for (size_t k = 0; k < len; k++) { /* half random, half repetitive: compresses ~2:1 */
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        d[k] = (k & 1) ? (uint8_t)x : (uint8_t)(k % 7);
    }
    item *it = item_new((sw_signal)((i / 3) % 3), (sw_class)(i % 3), i, clock_mono_ns(), d, len);
    free(d);
    if (!it) abort();
    return it;
}

static int check_item(const item *it, uint32_t i, size_t len)
{
    item *want = mk(i, len);
    int ok = it->len == len && it->count == i && it->klass == want->klass &&
             it->signal == want->signal && memcmp(it->data, want->data, len) == 0 &&
             llabs(it->recv_ns - want->recv_ns) < 60LL * 1000000000;
    item_free(want);
    return ok;
}

static size_t len_of(uint32_t i) { return 50 + (i * 37) % 900; }

typedef struct done_log {
    int n, ok, failed;
    item *back[64];
    int nback;
} done_log;

static void on_done(void *arg, item *it, int status)
{
    done_log *l = arg;
    l->n++;
    if (status == 0) l->ok++;
    else l->failed++;
    if (it && l->nback < 64) l->back[l->nback++] = it;
    else item_free(it);
}

static void opts_init(dlq_opts *o, const char *dir, uint64_t seg)
{
    memset(o, 0, sizeof *o);
    o->dir = dir;
    o->segment_size = seg;
    o->max_size = 1ull << 30;
    o->compression_level = 3;
    o->fsync = CFG_FSYNC_NEVER;
}

/* Appends records first..first+n-1 and waits for their completions. */
static void append_n(dlq *d, uint32_t first, uint32_t n, done_log *l)
{
    dlq_port *p = dlq_port_new(d);
    TH_ASSERT(p);
    for (uint32_t i = first; i < first + n; i++) {
        item *it = mk(i, len_of(i));
        TH_ASSERT_EQ_INT(dlq_append(p, it, on_done, l), 0);
    }
    th_dlq_port_drain(p);
    dlq_port_free(p);
}

static int count_segs(const char *dir)
{
    DIR *dd = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (dd && (e = readdir(dd)) != NULL)
        if (strstr(e->d_name, ".seg") && !strstr(e->d_name, ".tmp")) n++;
    if (dd) closedir(dd);
    return n;
}

/* Reads up to max records (polling while the writer seals on request). */
static int read_all(dlq_reader *r, item **out, dlq_pos *pos, int max)
{
    int n = 0, idle = 0;
    while (n < max && idle < th_slow_ms(100)) { /* 500 ms idle, times SW_TEST_SLOW */
        item *it = NULL;
        TH_ASSERT_EQ_INT(dlq_reader_next(r, &it, &pos[n]), 0);
        if (!it) {
            idle++;
            th_nap_ms(5);
            continue;
        }
        idle = 0;
        out[n++] = it;
    }
    return n;
}

/* ---- cases ---------------------------------------------------------- */

static void t_roundtrip_many_segments(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    sw_metrics *m = metrics_new();
    dlq_opts o;
    opts_init(&o, dir, 8192);
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    append_n(d, 0, 200, &l);
    TH_ASSERT_EQ_INT(l.ok, 200);
    dlq_close(d);
    TH_ASSERT(count_segs(dir) >= 4);
    uint64_t want_bytes = 0;
    for (uint32_t i = 0; i < 200; i++) want_bytes += len_of(i);
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_written_bytes), want_bytes);

    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    TH_ASSERT(atomic_load(&dlq_metrics_get(m)->dlq_segments) >= 4);
    TH_ASSERT(atomic_load(&dlq_metrics_get(m)->dlq_oldest_wall_ns) > 0);
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    static item *items[256];
    static dlq_pos pos[256];
    int n = read_all(r, items, pos, 256);
    TH_ASSERT_EQ_INT(n, 200);
    for (int i = 0; i < n; i++) {
        TH_ASSERT_MSG(check_item(items[i], (uint32_t)i, len_of((uint32_t)i)), "record %d differs", i);
        dlq_reader_ack(r, &pos[i]);
        item_free(items[i]);
    }
    TH_ASSERT_EQ_INT(dlq_reader_sync(r, 1), 0);
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_replayed_bytes), want_bytes);
    TH_ASSERT_EQ_INT(count_segs(dir), 0);        /* all acknowledged: deleted */
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_segments), 0);
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_bytes), 0);
    TH_ASSERT_EQ_INT(dlq_used_bytes(d), 0);
    dlq_reader_free(r);
    dlq_close(d);
    metrics_free(m);
    th_rmtree(dir);
}

static uint64_t items_of(const _Atomic uint64_t *t, int k) { return atomic_load(&t[k]); }

/* Items per class: spillway_dlq_written_items_total counts the items of
 * every record stored in the main area (not the rejected area, not a
 * failed write), spillway_dlq_replayed_items_total those of the records
 * acknowledged, once each: an ack covers the records before it, an ack
 * behind an earlier one adds nothing, and a new reader (restart) counts
 * only what it acknowledges itself. mk(i) has class i % 3 and count i.
 * Failed writes: t_write_error_refuses_and_keeps_earlier. */
static void t_items_per_class(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    sw_metrics *m = metrics_new();
    dlq_opts o;
    opts_init(&o, dir, 4096);
    o.max_size = 123456789;
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_max_bytes), 123456789);
    append_n(d, 0, 30, &l);                        /* i = 0..29 */
    TH_ASSERT_EQ_INT(l.ok, 30);
    uint64_t want[CLASS_COUNT] = {0};
    for (uint32_t i = 0; i < 30; i++) want[i % 3] += i;
    dlq_port *p = dlq_port_new(d);                /* rejected area: not counted */
    TH_ASSERT_EQ_INT(dlq_append_rejected(p, mk(1000, 100), 400, "bad", on_done, &l), 0);
    while (dlq_port_pending(p)) dlq_port_wait(p, 100);
    dlq_port_free(p);
    TH_ASSERT_EQ_INT(l.ok, 31);
    for (int k = 0; k < CLASS_COUNT; k++) {
        TH_ASSERT_EQ_INT(items_of(dlq_metrics_get(m)->dlq_written_items, k), want[k]);
        TH_ASSERT_EQ_INT(items_of(dlq_metrics_get(m)->dlq_replayed_items, k), 0);
    }

    dlq_reader *r = dlq_reader_new(d, 1, 0);
    item *items[32];
    dlq_pos pos[32];
    TH_ASSERT_EQ_INT(read_all(r, items, pos, 32), 30);
    for (int i = 0; i < 30; i++) item_free(items[i]);
    TH_ASSERT_EQ_INT(items_of(dlq_metrics_get(m)->dlq_replayed_items, CLASS_CRITICAL), 0); /* read, not acked */
    dlq_reader_ack(r, &pos[4]);                   /* records 0..4 */
    TH_ASSERT_EQ_INT(items_of(dlq_metrics_get(m)->dlq_replayed_items, CLASS_CRITICAL), 0 + 3);
    TH_ASSERT_EQ_INT(items_of(dlq_metrics_get(m)->dlq_replayed_items, CLASS_HIGH), 1 + 4);
    TH_ASSERT_EQ_INT(items_of(dlq_metrics_get(m)->dlq_replayed_items, CLASS_NORMAL), 2);
    dlq_reader_ack(r, &pos[2]);                   /* behind: ignored */
    dlq_reader_ack(r, &pos[4]);                   /* again: nothing new */
    TH_ASSERT_EQ_INT(items_of(dlq_metrics_get(m)->dlq_replayed_items, CLASS_HIGH), 5);
    dlq_reader_ack(r, &pos[9]);                   /* records 5..9 */
    TH_ASSERT_EQ_INT(items_of(dlq_metrics_get(m)->dlq_replayed_items, CLASS_CRITICAL), 0 + 3 + 6 + 9);
    TH_ASSERT_EQ_INT(items_of(dlq_metrics_get(m)->dlq_replayed_items, CLASS_HIGH), 1 + 4 + 7);
    TH_ASSERT_EQ_INT(items_of(dlq_metrics_get(m)->dlq_replayed_items, CLASS_NORMAL), 2 + 5 + 8);
    dlq_reader_free(r);                           /* persists the cursor after record 9 */
    dlq_close(d);

    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);     /* the rest, through a new reader */
    r = dlq_reader_new(d, 0, 0);
    TH_ASSERT_EQ_INT(read_all(r, items, pos, 32), 20);
    TH_ASSERT(check_item(items[0], 10, len_of(10)));
    for (int i = 0; i < 20; i++) item_free(items[i]);
    dlq_reader_ack(r, &pos[19]);
    for (int k = 0; k < CLASS_COUNT; k++) {
        TH_ASSERT_EQ_INT(items_of(dlq_metrics_get(m)->dlq_replayed_items, k), want[k]);
        TH_ASSERT_EQ_INT(items_of(dlq_metrics_get(m)->dlq_written_items, k), want[k]); /* reopen adds nothing */
    }
    dlq_reader_free(r);
    dlq_close(d);
    metrics_free(m);
    th_rmtree(dir);
}

static int seg_sealed(const char *dir, int *sealed)
{
    DIR *dd = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (dd && (e = readdir(dd)) != NULL) {
        char p[512];
        uint8_t raw[DLQ_SEG_HDR_LEN];
        dlq_seg_hdr h;
        const char *why = NULL;
        size_t len = 0;
        if (!strstr(e->d_name, ".seg") || strstr(e->d_name, ".tmp")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        char *img = th_read_file(p, &len);
        if (img && len >= sizeof raw) {
            memcpy(raw, img, sizeof raw);
            if (dlq_seg_hdr_decode(raw, &h, &why) == 0) *sealed = (h.flags & DLQ_SEG_SEALED) != 0;
        }
        free(img);
        n++;
    }
    if (dd) closedir(dd);
    return n;
}

/* The reader reads the writer's open segment without having it sealed:
 * records appended later land in the same segment and are read too; once
 * everything is acknowledged and the segment idle, it is sealed and
 * deleted. (Before: every poll that reached the open segment sealed it,
 * one segment per poll.) */
static void t_reader_reads_open_segment(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    sw_metrics *m = metrics_new();
    dlq_opts o;
    opts_init(&o, dir, 1 << 20);
    o.seal_idle_ms = 50;
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    append_n(d, 0, 5, &l);
    dlq_reader *r = dlq_reader_new(d, 1, 0);
    item *items[8];
    dlq_pos pos[8];
    for (int round = 0; round < 3; round++) { /* read, append more, read again */
        uint32_t first = round ? (uint32_t)(5 + 3 * (round - 1)) : 0, n = round ? 3 : 5;
        if (round) append_n(d, first, n, &l);
        TH_ASSERT_EQ_INT(read_all(r, items, pos, (int)n), (int)n);
        for (uint32_t i = 0; i < n; i++) {
            TH_ASSERT(check_item(items[i], first + i, len_of(first + i)));
            TH_ASSERT_EQ_INT(pos[i].seq, pos[0].seq);
            item_free(items[i]);
        }
        int sealed = -1;
        TH_ASSERT_EQ_INT(seg_sealed(dir, &sealed), 1); /* still the one segment */
        TH_ASSERT_EQ_INT(sealed, 0);                   /* and still open */
    }
    dlq_reader_ack(r, &pos[2]);              /* all of it acknowledged: sealed once idle, deleted */
    int64_t deadline = clock_mono_ns() + 10LL * 1000000000;
    while (count_segs(dir) > 0 && clock_mono_ns() < deadline) {
        TH_ASSERT_EQ_INT(dlq_reader_sync(r, 0), 0);
        th_nap_ms(10);
    }
    TH_ASSERT_EQ_INT(count_segs(dir), 0);
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_bytes), 0);
    TH_ASSERT_EQ_INT(dlq_used_bytes(d), 0);
    append_n(d, 20, 2, &l);                  /* writing goes on in a new segment */
    TH_ASSERT_EQ_INT(read_all(r, items, pos, 2), 2);
    TH_ASSERT(check_item(items[0], 20, len_of(20)) && check_item(items[1], 21, len_of(21)));
    item_free(items[0]);
    item_free(items[1]);
    dlq_reader_free(r);
    dlq_close(d);
    metrics_free(m);
    th_rmtree(dir);
}

static void t_cursor_survives_reopen(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    dlq_opts o;
    opts_init(&o, dir, 4096);
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    append_n(d, 0, 40, &l);
    dlq_close(d);
    int segs_before = count_segs(dir);

    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_reader *r = dlq_reader_new(d, 1000, 60000); /* flushes only on free */
    item *items[20];
    dlq_pos pos[20];
    TH_ASSERT_EQ_INT(read_all(r, items, pos, 17), 17);
    for (int i = 0; i < 17; i++) {
        dlq_reader_ack(r, &pos[i]);
        item_free(items[i]);
    }
    dlq_reader_free(r);
    dlq_close(d);
    TH_ASSERT(count_segs(dir) < segs_before);       /* acknowledged segments deleted */

    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    r = dlq_reader_new(d, 0, 0);
    TH_ASSERT_EQ_INT(read_all(r, items, pos, 1), 1);
    TH_ASSERT_MSG(check_item(items[0], 17, len_of(17)), "replay resumed at count %u",
                  items[0]->count);
    item_free(items[0]);
    dlq_reader_free(r);
    dlq_close(d);
    th_rmtree(dir);
}

static int seg_exists(const char *dir, uint64_t seq)
{
    char p[512], name[DLQ_SEG_NAME_LEN + 1];
    struct stat st;
    dlq_seg_name(seq, name);
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0;
}

static void t_segment_deleted_only_after_all_acks(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    dlq_opts o;
    opts_init(&o, dir, 4096);
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    append_n(d, 0, 30, &l);
    dlq_reader *r = dlq_reader_new(d, 1, 0);
    item *items[40];
    dlq_pos pos[40];
    int n = read_all(r, items, pos, 30);
    TH_ASSERT_EQ_INT(n, 30);
    uint64_t first = pos[0].seq;
    int last_of_first = 0;
    while (last_of_first + 1 < n && pos[last_of_first + 1].seq == first) last_of_first++;
    TH_ASSERT(last_of_first + 1 < n);                 /* several segments */
    for (int i = 0; i < last_of_first; i++) dlq_reader_ack(r, &pos[i]);
    TH_ASSERT_EQ_INT(dlq_reader_sync(r, 1), 0);
    TH_ASSERT(seg_exists(dir, first));                /* one record still unacknowledged */
    dlq_reader_ack(r, &pos[last_of_first]);
    TH_ASSERT_EQ_INT(dlq_reader_sync(r, 0), 0);
    TH_ASSERT(!seg_exists(dir, first));
    TH_ASSERT(seg_exists(dir, pos[last_of_first + 1].seq));
    for (int i = 0; i < n; i++) item_free(items[i]);
    dlq_reader_free(r);
    dlq_close(d);
    th_rmtree(dir);
}

static void t_max_size_refuses(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    dlq_opts o;
    opts_init(&o, dir, 8192);
    o.max_size = 32 * 1024;
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_port *p = dlq_port_new(d);
    int accepted = 0, rc = 0;
    for (uint32_t i = 0; i < 1000 && rc == 0; i++) {
        item *it = mk(i, 2000);
        rc = dlq_append(p, it, on_done, &l);
        if (rc == 0) accepted++;
        else item_free(it);                           /* refused: still ours */
        while (dlq_port_pending(p)) dlq_port_wait(p, 100);
    }
    TH_ASSERT_EQ_INT(rc, SW_EFULL);
    TH_ASSERT(accepted > 3);
    TH_ASSERT(dlq_used_bytes(d) <= o.max_size);
    TH_ASSERT_EQ_INT(l.ok, accepted);
    /* Replaying and acknowledging frees room. */
    dlq_reader *r = dlq_reader_new(d, 1, 0);
    static item *items[1000];
    static dlq_pos pos[1000];
    int n = read_all(r, items, pos, accepted);
    TH_ASSERT_EQ_INT(n, accepted);
    for (int i = 0; i < n; i++) {
        dlq_reader_ack(r, &pos[i]);
        item_free(items[i]);
    }
    TH_ASSERT_EQ_INT(dlq_reader_sync(r, 1), 0);
    item *it = mk(1, 2000);
    TH_ASSERT_EQ_INT(dlq_append(p, it, on_done, &l), 0);
    while (dlq_port_pending(p)) dlq_port_wait(p, 100);
    dlq_reader_free(r);
    dlq_close(d);
    dlq_port_free(p);
    th_rmtree(dir);
}

/* Write error injection: fails with ENOSPC while armed, after writing a
 * few bytes (so a partial record lands in the file and must be cut). */
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

static void t_write_error_refuses_and_keeps_earlier(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    sw_metrics *m = metrics_new();
    dlq_opts o;
    opts_init(&o, dir, 1 << 20);
    o.fsync = CFG_FSYNC_ALWAYS;
    o.pwrite = failing_pwrite;
    o.probe_ms = 20;
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    append_n(d, 0, 10, &l);
    TH_ASSERT_EQ_INT(l.ok, 10);
    atomic_store(&fail_writes, 1);
    dlq_port *p = dlq_port_new(d);
    int refused = 0;
    for (uint32_t i = 10; i < 15; i++) {              /* once unavailable: refused at once */
        item *it = mk(i, len_of(i));
        int rc = dlq_append(p, it, on_done, &l);
        if (rc == SW_EUNAVAIL) refused++, item_free(it);
        else TH_ASSERT_EQ_INT(rc, 0);
    }
    while (dlq_port_pending(p)) dlq_port_wait(p, 100);
    dlq_port_free(p);
    TH_ASSERT(refused < 5);
    TH_ASSERT_EQ_INT(l.failed + refused, 5);
    TH_ASSERT_EQ_INT(l.nback, 5 - refused);           /* items handed back */
    TH_ASSERT(check_item(l.back[0], 10, len_of(10)));
    for (int i = 0; i < l.nback; i++) item_free(l.back[i]);
    TH_ASSERT(!dlq_available(d));                    /* refused until a probe succeeds */
    atomic_store(&fail_writes, 0);
    int64_t deadline = clock_mono_ns() + 10LL * 1000000000;
    while (!dlq_available(d) && clock_mono_ns() < deadline) th_nap_ms(10);
    TH_ASSERT(dlq_available(d));
    append_n(d, 15, 3, &l);
    TH_ASSERT_EQ_INT(l.ok, 13);
    uint64_t stored = 0; /* items of records 0..9 and 15..17; the failed ones not counted */
    for (int k = 0; k < CLASS_COUNT; k++) stored += atomic_load(&dlq_metrics_get(m)->dlq_written_items[k]);
    TH_ASSERT_EQ_INT(stored, 45 + 15 + 16 + 17);
    dlq_close(d);

    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    item *items[20];
    dlq_pos pos[20];
    TH_ASSERT_EQ_INT(read_all(r, items, pos, 20), 13);
    for (int i = 0; i < 13; i++) {
        uint32_t want = i < 10 ? (uint32_t)i : (uint32_t)(i + 5);
        TH_ASSERT(check_item(items[i], want, len_of(want)));
        item_free(items[i]);
    }
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_corrupt_segments), 0);
    dlq_reader_free(r);
    dlq_close(d);
    metrics_free(m);
    th_rmtree(dir);
}

static void t_group_commit_always(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    dlq_opts o;
    opts_init(&o, dir, 64 * 1024);
    o.fsync = CFG_FSYNC_ALWAYS;
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    append_n(d, 0, 300, &l);
    TH_ASSERT_EQ_INT(l.ok, 300);
    dlq_close(d);
    th_rmtree(dir);
}

static void t_close_completes_pending(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    dlq_opts o;
    opts_init(&o, dir, 64 * 1024);
    o.fsync = CFG_FSYNC_BATCH;
    o.batch_ms = 50;
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_port *p = dlq_port_new(d);
    for (uint32_t i = 0; i < 100; i++) TH_ASSERT_EQ_INT(dlq_append(p, mk(i, 500), on_done, &l), 0);
    dlq_close(d);                                     /* writes everything first */
    dlq_port_dispatch(p);
    TH_ASSERT_EQ_INT(l.ok, 100);
    dlq_port_free(p);
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    static item *items[128];
    static dlq_pos pos[128];
    int n = read_all(r, items, pos, 128);
    TH_ASSERT_EQ_INT(n, 100);
    for (int i = 0; i < n; i++) item_free(items[i]);
    dlq_reader_free(r);
    dlq_close(d);
    th_rmtree(dir);
}

static void t_token_bucket_accuracy(void)
{
    const uint64_t rate = 256 * 1024;
    dlq_tb tb;
    int64_t now = 1000000000;
    dlq_tb_init(&tb, rate, 0, now);
    uint64_t seed = 42, sent = 0;
    const int64_t end = now + 60LL * 1000000000;      /* 60 simulated seconds */
    while (now < end) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t n = 1000 + (seed >> 33) % 40000;
        int64_t w = dlq_tb_wait_ns(&tb, n, now);
        now += w;
        TH_ASSERT(dlq_tb_take(&tb, n, now));
        sent += n;
        now += 10000;                                 /* 10 us of work per send */
    }
    double got = (double)sent / 60.0;
    TH_ASSERT_MSG(got > rate * 0.95 && got < rate * 1.05, "rate %.0f B/s for %llu", got,
                  (unsigned long long)rate);
    /* A record larger than the burst passes and is paid for. */
    dlq_tb_init(&tb, 1000, 100, 0);
    TH_ASSERT(dlq_tb_take(&tb, 5000, 0));
    TH_ASSERT(!dlq_tb_take(&tb, 1, 1000000));
    TH_ASSERT(dlq_tb_wait_ns(&tb, 100, 0) > 4000000000LL);
}

static void t_too_big_refused(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    dlq_opts o;
    opts_init(&o, dir, 4096);
    dlq *d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_port *p = dlq_port_new(d);
    item *it = item_new(SIG_LOGS, CLASS_HIGH, 1, 0, "", 0);
    it->len = (size_t)DLQ_MAX_RECORD_LEN + 1;         /* only the length is looked at */
    TH_ASSERT_EQ_INT(dlq_append(p, it, on_done, NULL), SW_ETOOBIG);
    item_free(it);
    dlq_close(d);
    dlq_port_free(p);
    th_rmtree(dir);
}

int main(void)
{
    TH_RUN(t_roundtrip_many_segments);
    TH_RUN(t_reader_reads_open_segment);
    TH_RUN(t_items_per_class);
    TH_RUN(t_cursor_survives_reopen);
    TH_RUN(t_segment_deleted_only_after_all_acks);
    TH_RUN(t_max_size_refuses);
    TH_RUN(t_write_error_refuses_and_keeps_earlier);
    TH_RUN(t_group_commit_always);
    TH_RUN(t_close_completes_pending);
    TH_RUN(t_token_bucket_accuracy);
    TH_RUN(t_too_big_refused);
    return th_done();
}
