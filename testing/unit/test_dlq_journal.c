/* test_dlq_journal.c — queue.mode durable's journal (dlq_journal.h):
 * appends report their position; acknowledged segments are deleted while
 * running; after a restart exactly the unacknowledged records move to the
 * main area and replay; torn, zeroed and foreign acknowledgement entries
 * are ignored (their records replay); a segment left without its
 * acknowledgement file replays whole; `spillway dlq verify` checks the
 * journal area. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlq/dlq.h"
#include "dlq/dlq_cmd.h"
#include "dlq/dlq_journal.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "testing/lib/th.h"
#include "testing/lib/th_dlq.h"
#include "testing/lib/th_proc.h"

/* ---- helpers ---------------------------------------------------------- */

/* Item i: count i + 1, len bytes derived from i (distinct per i). */
static item *mk(uint32_t i, size_t len)
{
    uint8_t *d = malloc(len);
    if (!d) abort();
    for (size_t k = 0; k < len; k++) d[k] = (uint8_t)(i * 31 + k * 7 + (k >> 8));
    memcpy(d, &i, sizeof i);
    item *it = item_new(SIG_TRACES, CLASS_NORMAL, i + 1, clock_mono_ns(), d, len);
    free(d);
    if (!it) abort();
    return it;
}

static void opts_init(dlq_opts *o, const char *dir)
{
    memset(o, 0, sizeof *o);
    o->dir = dir;
    o->segment_size = 16u << 10;
    o->max_size = 1ull << 30;
    o->compression_level = 3;
    o->fsync = CFG_FSYNC_ALWAYS;
}

typedef struct jdone {
    dlq_jpos pos;
    int status; /* 1: pending */
} jdone;

static void on_done(void *arg, item *it, int status)
{
    jdone *j = arg;
    j->status = status;
    item_free(it);
}

/* Appends n journal records (items 0..n-1, len bytes, incompressible
 * enough to fill several 16 KiB segments). */
static void append_n(dlq *d, jdone *out, uint32_t n, size_t len)
{
    dlq_port *p = dlq_port_new(d);
    TH_ASSERT(p);
    for (uint32_t i = 0; i < n; i++) {
        out[i].status = 1;
        TH_ASSERT_EQ_INT(dlq_append_journal(p, mk(i, len), &out[i].pos, on_done, &out[i]), 0);
    }
    th_dlq_port_drain(p);
    dlq_port_free(p);
    for (uint32_t i = 0; i < n; i++) TH_ASSERT_EQ_INT(out[i].status, 0);
}

/* Replays the main area; sets seen[i] for each record of item i. */
static int replay_all(dlq *d, int *seen, uint32_t n)
{
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    TH_ASSERT(r);
    int count = 0;
    for (;;) {
        item *it = NULL;
        dlq_pos pos;
        TH_ASSERT_EQ_INT(dlq_reader_next(r, &it, &pos), 0);
        if (!it) break;
        uint32_t i;
        memcpy(&i, it->data, sizeof i);
        TH_ASSERT(i < n);
        TH_ASSERT_EQ_INT(it->count, i + 1);
        seen[i]++;
        count++;
        dlq_reader_ack(r, &pos);
        item_free(it);
    }
    dlq_reader_free(r);
    return count;
}

static int count_suffix(const char *dir, const char *suffix)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls %s/journal 2>/dev/null | grep -c '%s$'", dir, suffix);
    FILE *f = popen(cmd, "r");
    int n = -1;
    if (f) {
        if (fscanf(f, "%d", &n) != 1) n = -1;
        pclose(f);
    }
    return n;
}

/* ---- cases ------------------------------------------------------------ */

#define N 60
#define LEN 2000

/* Acknowledged records are never replayed; every other one is, once. */
static void t_restart_replays_unacknowledged(void)
{
    char dir[256];
    dlq_opts o;
    dlq *d = NULL;
    jdone j[N];
    int seen[N] = {0};
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    opts_init(&o, dir);
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_wait_recovered(d);
    append_n(d, j, N, LEN);
    TH_ASSERT(j[N - 1].pos.seq > j[0].pos.seq); /* several segments */
    for (uint32_t i = 1; i < N; i++) /* positions follow the append order */
        TH_ASSERT(j[i].pos.seq > j[i - 1].pos.seq ||
                  (j[i].pos.seq == j[i - 1].pos.seq && j[i].pos.index == j[i - 1].pos.index + 1));
    dlq_journal *jn = dlq_journal_new(d);
    TH_ASSERT(jn);
    for (uint32_t i = 0; i < N; i++) TH_ASSERT_EQ_INT(dlq_journal_stored(jn, &j[i].pos), 0);
    for (uint32_t i = 0; i < N; i++)
        if (i % 3 != 0) TH_ASSERT_EQ_INT(dlq_journal_ack(jn, &j[i].pos), 0);
    TH_ASSERT_EQ_INT(dlq_journal_flush(jn), N - N / 3);
    dlq_journal_detach(jn);
    dlq_journal_free(jn);
    dlq_close(d); /* seals the open journal segment */
    d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_jrecov st;
    TH_ASSERT_EQ_INT(dlq_journal_recover(d, &st), 0);
    TH_ASSERT_EQ_INT(st.records, N);
    TH_ASSERT_EQ_INT(st.acked, N - N / 3);
    TH_ASSERT_EQ_INT(st.moved, N / 3);
    TH_ASSERT_EQ_INT(count_suffix(dir, ".seg"), 0); /* the journal is empty now */
    TH_ASSERT_EQ_INT(count_suffix(dir, ".ack"), 0);
    TH_ASSERT_EQ_INT(replay_all(d, seen, N), N / 3);
    for (uint32_t i = 0; i < N; i++) TH_ASSERT_EQ_INT(seen[i], i % 3 == 0 ? 1 : 0);
    dlq_close(d);
    th_rmtree(dir);
}

/* Fully acknowledged segments that the writer has left are deleted while
 * running, and their bytes leave dlq_used_bytes. */
static void t_acknowledged_segments_deleted(void)
{
    char dir[256];
    dlq_opts o;
    dlq *d = NULL;
    jdone j[N];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    opts_init(&o, dir);
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_wait_recovered(d);
    append_n(d, j, N, LEN);
    uint64_t used = dlq_used_bytes(d);
    int segs = count_suffix(dir, ".seg");
    TH_ASSERT(segs >= 2);
    dlq_journal *jn = dlq_journal_new(d);
    TH_ASSERT(jn);
    for (uint32_t i = 0; i < N; i++) TH_ASSERT_EQ_INT(dlq_journal_stored(jn, &j[i].pos), 0);
    for (uint32_t i = 0; i < N; i++) TH_ASSERT_EQ_INT(dlq_journal_ack(jn, &j[i].pos), 0);
    dlq_journal_flush(jn);
    /* every segment but the writer's open one is gone */
    TH_ASSERT_EQ_INT(count_suffix(dir, ".seg"), 1);
    TH_ASSERT_EQ_INT(dlq_journal_segments(jn), 1);
    TH_ASSERT(dlq_used_bytes(d) < used);
    dlq_journal_detach(jn);
    dlq_journal_free(jn);
    dlq_close(d);
    d = NULL;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_jrecov st;
    TH_ASSERT_EQ_INT(dlq_journal_recover(d, &st), 0);
    TH_ASSERT_EQ_INT(st.moved, 0); /* the last one was acknowledged too */
    TH_ASSERT_EQ_INT(st.segments, 1);
    TH_ASSERT_EQ_INT(count_suffix(dir, ".seg"), 0);
    TH_ASSERT_EQ_INT(dlq_used_bytes(d), 0);
    dlq_close(d);
    th_rmtree(dir);
}

/* Bad acknowledgement entries are ignored: their records replay. */
static void t_bad_entries_ignored(void)
{
    char dir[256], path[400];
    dlq_opts o;
    dlq *d = NULL;
    jdone j[8];
    int seen[8] = {0};
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    opts_init(&o, dir);
    o.segment_size = 1u << 20; /* one segment */
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_wait_recovered(d);
    append_n(d, j, 8, 100);
    dlq_journal *jn = dlq_journal_new(d);
    TH_ASSERT(jn);
    for (int i = 0; i < 8; i++) TH_ASSERT_EQ_INT(dlq_journal_stored(jn, &j[i].pos), 0);
    for (int i = 0; i < 4; i++) TH_ASSERT_EQ_INT(dlq_journal_ack(jn, &j[i].pos), 0);
    dlq_journal_flush(jn);
    dlq_journal_detach(jn);
    dlq_journal_free(jn);
    dlq_close(d);
    d = NULL;
    /* a zeroed entry, an entry of another segment for record 5, an entry
     * with a flipped bit for record 6, and a torn half entry */
    snprintf(path, sizeof path, "%s/journal/%016llx.ack", dir, (unsigned long long)j[0].pos.seq);
    int fd = open(path, O_WRONLY | O_APPEND);
    TH_ASSERT(fd >= 0);
    uint8_t zero[16] = {0}, e[16], half[8] = {1};
    TH_ASSERT(write(fd, zero, 16) == 16);
    uint64_t idx = 5, chk;
    memcpy(e, &idx, 8);
    { /* FNV-1a over (seq + 1, index): a foreign segment's entry */
        uint8_t b[16];
        uint64_t s = j[0].pos.seq + 1, h = 1469598103934665603ull;
        for (int k = 0; k < 8; k++) b[k] = (uint8_t)(s >> (8 * k)), b[8 + k] = (uint8_t)(idx >> (8 * k));
        for (int k = 0; k < 16; k++) h = (h ^ b[k]) * 1099511628211ull;
        chk = h;
    }
    memcpy(e + 8, &chk, 8);
    TH_ASSERT(write(fd, e, 16) == 16);
    e[0] = 6;
    e[9] ^= 1;
    TH_ASSERT(write(fd, e, 16) == 16);
    TH_ASSERT(write(fd, half, 8) == 8);
    close(fd);
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_jrecov st;
    TH_ASSERT_EQ_INT(dlq_journal_recover(d, &st), 0);
    TH_ASSERT_EQ_INT(st.acked, 4);
    TH_ASSERT_EQ_INT(st.moved, 4);
    TH_ASSERT_EQ_INT(replay_all(d, seen, 8), 4);
    for (int i = 0; i < 8; i++) TH_ASSERT_EQ_INT(seen[i], i < 4 ? 0 : 1);
    dlq_close(d);
    th_rmtree(dir);
}

/* A segment without an .ack file (nothing acknowledged before a kill)
 * replays whole; verify checks the journal area. */
static void t_no_ack_file_replays_whole(void)
{
    char dir[256], path[400], cmd[700];
    dlq_opts o;
    dlq *d = NULL;
    jdone j[6];
    int seen[6] = {0};
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    opts_init(&o, dir);
    o.segment_size = 1u << 20;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_wait_recovered(d);
    append_n(d, j, 6, 300);
    dlq_close(d);
    d = NULL;
    snprintf(path, sizeof path, "%s/journal/%016llx.seg", dir, (unsigned long long)j[0].pos.seq);
    char *out = NULL;
    size_t outlen = 0;
    FILE *mem = open_memstream(&out, &outlen);
    TH_ASSERT(mem);
    TH_ASSERT_EQ_INT(dlq_cmd_verify(dir, mem), 0);
    fclose(mem);
    TH_ASSERT(strstr(out, "journal area") != NULL);
    TH_ASSERT(strstr(out, "6 good records") != NULL);
    free(out);
    snprintf(cmd, sizeof cmd, "test -f %s", path);
    TH_ASSERT(system(cmd) == 0);
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_jrecov st;
    TH_ASSERT_EQ_INT(dlq_journal_recover(d, &st), 0);
    TH_ASSERT_EQ_INT(st.moved, 6);
    TH_ASSERT_EQ_INT(replay_all(d, seen, 6), 6);
    for (int i = 0; i < 6; i++) TH_ASSERT_EQ_INT(seen[i], 1);
    dlq_close(d);
    th_rmtree(dir);
}

int main(void)
{
    TH_ICASE(t_restart_replays_unacknowledged);
    TH_ICASE(t_acknowledged_segments_deleted);
    TH_ICASE(t_bad_entries_ignored);
    TH_ICASE(t_no_ack_file_replays_whole);
    return th_done();
}
