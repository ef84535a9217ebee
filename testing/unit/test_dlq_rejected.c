/* test_dlq_rejected.c — the DLQ's rejected area (dir/rejected/): appends
 * with the upstream's status and message, never replayed, its bound, a
 * restart, its offline commands (ls, verify, dump, purge), and the main
 * area refusing rejected-area records. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dlq/dlq.h"
#include "dlq/dlq_cmd.h"
#include "dlq/dlq_fmt.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/log.h"
#include "testing/lib/th.h"
#include "testing/lib/th_dlq.h"
#include "testing/lib/th_proc.h"
#include "dlq/dlq_metrics.h"

/* ---- helpers ---------------------------------------------------------- */

static item *mk(uint32_t i, size_t len)
{
    uint8_t *d = malloc(len ? len : 1);
    if (!d) abort();
    for (size_t k = 0; k < len; k++) d[k] = (uint8_t)(i * 31 + k * 7);
    item *it = item_new((sw_signal)(i % 3), (sw_class)((i / 3) % 3), i + 1, clock_mono_ns(), d,
                        len);
    free(d);
    if (!it) abort();
    return it;
}

typedef struct done_log {
    int ok, failed;
} done_log;

static void on_done(void *arg, item *it, int status)
{
    done_log *l = arg;
    if (status == 0) l->ok++;
    else l->failed++;
    item_free(it);
}

static void opts_init(dlq_opts *o, const char *dir)
{
    memset(o, 0, sizeof *o);
    o->dir = dir;
    o->segment_size = 64u << 10;
    o->max_size = 1ull << 30;
    o->compression_level = 3;
    o->fsync = CFG_FSYNC_ALWAYS;
}

/* n rejected records i = first.. with status 400 + i % 4 and a message. */
static void append_rejected(dlq *d, uint32_t first, uint32_t n, done_log *l)
{
    dlq_port *p = dlq_port_new(d);
    TH_ASSERT(p);
    for (uint32_t i = first; i < first + n; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "bad \"span\" %u\n", i);
        TH_ASSERT_EQ_INT(dlq_append_rejected(p, mk(i, 300 + i), 400 + (int)(i % 4), msg,
                                             on_done, l), 0);
    }
    th_dlq_port_drain(p);
    dlq_port_free(p);
}

static int count_files(const char *dir, const char *suffix)
{
    DIR *dd = opendir(dir);
    int n = 0;
    struct dirent *e;
    size_t sl = strlen(suffix);
    while (dd && (e = readdir(dd)) != NULL) {
        size_t nl = strlen(e->d_name);
        if (nl >= sl && strcmp(e->d_name + nl - sl, suffix) == 0) n++;
    }
    if (dd) closedir(dd);
    return n;
}

/* Runs an offline command into a string (owned). */
static char *run_cmd(int (*fn)(const char *, FILE *), const char *dir, int *rc)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    TH_ASSERT(f);
    *rc = fn(dir, f);
    fclose(f);
    return s;
}

static int count_lines(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

/* Reads the main area until nothing is readable; returns records read. */
static int drain_main(dlq *d)
{
    dlq_wait_recovered(d); /* the writer thread's start-up scan */
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    TH_ASSERT(r);
    int n = 0, idle = 0;
    while (idle < th_slow_ms(40)) { /* 200 ms idle, times SW_TEST_SLOW */
        item *it = NULL;
        dlq_pos pos;
        TH_ASSERT_EQ_INT(dlq_reader_next(r, &it, &pos), 0);
        if (!it) {
            idle++;
            th_nap_ms(5);
            continue;
        }
        idle = 0;
        n++;
        TH_ASSERT_MSG(it->len < 300, "record of %zu bytes: a rejected one was replayed", it->len);
        dlq_reader_ack(r, &pos);
        item_free(it);
    }
    dlq_reader_free(r);
    return n;
}

/* ---- cases ---------------------------------------------------------- */

/* Rejected records go to rejected/, main records stay replayable, and the
 * reader returns only the main ones; the rejected area survives both the
 * replay and a restart. */
static void t_rejected_never_replayed(void)
{
    char dir[256], rej[300];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    snprintf(rej, sizeof rej, "%s/rejected", dir);
    dlq_opts o;
    opts_init(&o, dir);
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_port *p = dlq_port_new(d);
    for (uint32_t i = 0; i < 10; i++) /* main records: < 300 bytes */
        TH_ASSERT_EQ_INT(dlq_append(p, mk(i, 100 + i), on_done, &l), 0);
    th_dlq_port_drain(p);
    dlq_port_free(p);
    append_rejected(d, 0, 7, &l);
    TH_ASSERT_EQ_INT(l.ok, 17);
    dlq_rej_stats st;
    dlq_rejected_stats(d, &st);
    TH_ASSERT_EQ_INT(st.records, 7);
    TH_ASSERT_EQ_INT(st.segments, 1);
    TH_ASSERT_EQ_INT(st.max, (1ull << 30) / 8);
    TH_ASSERT(st.bytes > DLQ_SEG_HDR_LEN);
    TH_ASSERT_EQ_INT(drain_main(d), 10);
    dlq_close(d);
    TH_ASSERT_EQ_INT(count_files(dir, ".seg"), 0);  /* main area replayed, deleted */
    TH_ASSERT_EQ_INT(count_files(rej, ".seg"), 1);  /* rejected area untouched */

    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);    /* restart: counted again */
    dlq_wait_recovered(d);
    dlq_rejected_stats(d, &st);
    TH_ASSERT_EQ_INT(st.records, 7);
    TH_ASSERT_EQ_INT(drain_main(d), 0);
    append_rejected(d, 7, 3, &l);                   /* a new segment, next sequence */
    dlq_rejected_stats(d, &st);
    TH_ASSERT_EQ_INT(st.records, 10);
    TH_ASSERT_EQ_INT(st.segments, 2);
    dlq_close(d);
    TH_ASSERT_EQ_INT(count_files(rej, ".seg"), 2);
    struct stat sb;
    char seg[400];
    snprintf(seg, sizeof seg, "%s/0000000000000001.seg", rej);
    TH_ASSERT_MSG(stat(seg, &sb) == 0, "second rejected segment is not sequence 1");
    th_rmtree(dir);
}

/* ls, verify, dump (status and message, JSON-escaped) and purge. */
static void t_rejected_commands(void)
{
    char dir[256], rej[300];
    int rc;
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    snprintf(rej, sizeof rej, "%s/rejected", dir);
    char *out = run_cmd(dlq_cmd_ls_rejected, dir, &rc); /* no area yet: empty */
    TH_ASSERT_EQ_INT(rc, 0);
    TH_ASSERT_MSG(strstr(out, "empty"), "ls: %s", out);
    free(out);
    dlq_opts o;
    opts_init(&o, dir);
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    append_rejected(d, 0, 5, &l);
    dlq_close(d);

    out = run_cmd(dlq_cmd_ls_rejected, dir, &rc);
    TH_ASSERT_EQ_INT(rc, 0);
    TH_ASSERT_MSG(strstr(out, "0000000000000000.seg") && strstr(out, "5 records"), "ls: %s", out);
    TH_ASSERT_MSG(!strstr(out, "cursor"), "ls --rejected shows a cursor: %s", out);
    free(out);
    out = run_cmd(dlq_cmd_verify_rejected, dir, &rc);
    TH_ASSERT_EQ_INT(rc, 0);
    TH_ASSERT_MSG(strstr(out, "5 good records"), "verify: %s", out);
    free(out);
    out = run_cmd(dlq_cmd_dump_rejected, dir, &rc);
    TH_ASSERT_EQ_INT(rc, 0);
    TH_ASSERT_EQ_INT(count_lines(out, "\n"), 5);
    TH_ASSERT_MSG(strstr(out, "\"status\":400,\"message\":\"bad \\\"span\\\" 0?\""), "dump: %s", out);
    TH_ASSERT_MSG(strstr(out, "\"status\":403,\"message\":\"bad \\\"span\\\" 3?\""), "dump: %s", out);
    free(out);
    out = run_cmd(dlq_cmd_dump, dir, &rc); /* the main area holds nothing */
    TH_ASSERT_EQ_INT(rc, 0);
    TH_ASSERT_EQ_INT(strlen(out), 0);
    free(out);
    out = run_cmd(dlq_cmd_purge_rejected, dir, &rc);
    TH_ASSERT_EQ_INT(rc, 0);
    TH_ASSERT_MSG(strstr(out, "removed 1 rejected-area segments"), "purge: %s", out);
    free(out);
    TH_ASSERT_EQ_INT(count_files(rej, ".seg"), 0);
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_rej_stats st;
    dlq_rejected_stats(d, &st);
    TH_ASSERT_EQ_INT(st.records, 0);
    TH_ASSERT_EQ_INT(st.bytes, 0);
    dlq_close(d);
    th_rmtree(dir);
}

/* The area's bound: appends past it are refused (SW_ETOOBIG, counted),
 * live appends still go through. */
static void t_rejected_bound(void)
{
    char dir[256];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    dlq_opts o;
    opts_init(&o, dir);
    o.rejected_max = 4096;
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_port *p = dlq_port_new(d);
    int taken = 0, refused = 0;
    for (uint32_t i = 0; i < 40; i++) {
        item *it = mk(i, 1000);
        int rc = dlq_append_rejected(p, it, 400, "no", on_done, &l);
        if (rc == 0) {
            taken++;
            th_dlq_port_drain(p);
            continue;
        }
        TH_ASSERT_EQ_INT(rc, SW_ETOOBIG);
        item_free(it);
        refused++;
    }
    TH_ASSERT(taken >= 1 && refused >= 30);
    for (uint32_t i = 0; i < 20; i++) /* live data is not blocked */
        TH_ASSERT_EQ_INT(dlq_append(p, mk(i, 1000), on_done, &l), 0);
    th_dlq_port_drain(p);
    dlq_port_free(p);
    TH_ASSERT_EQ_INT(l.ok, taken + 20);
    dlq_rej_stats st;
    dlq_rejected_stats(d, &st);
    TH_ASSERT(st.bytes <= 4096);
    TH_ASSERT_EQ_INT(st.records, taken);
    TH_ASSERT_EQ_INT(st.refused, refused);
    TH_ASSERT(dlq_used_bytes(d) >= st.bytes); /* counts toward max_size */
    dlq_close(d);
    th_rmtree(dir);
}

/* A torn tail in the rejected area's open segment is cut at the next
 * start, like the main area's. */
static void t_rejected_torn_tail(void)
{
    char dir[256], seg[300], copy[300], cmd[1000];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    dlq_opts o;
    opts_init(&o, dir);
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    append_rejected(d, 0, 3, &l);
    /* copy the open (unsealed) segment, as a crash would leave it, plus junk */
    snprintf(seg, sizeof seg, "%s/rejected/0000000000000000.seg", dir);
    snprintf(copy, sizeof copy, "%s/open.copy", dir);
    snprintf(cmd, sizeof cmd, "cp '%s' '%s' && printf 'SWR1torn' >> '%s'", seg, copy, copy);
    TH_ASSERT(system(cmd) == 0);
    dlq_close(d);
    snprintf(cmd, sizeof cmd, "mv '%s' '%s'", copy, seg);
    TH_ASSERT(system(cmd) == 0);
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_wait_recovered(d);
    dlq_rej_stats st;
    dlq_rejected_stats(d, &st);
    TH_ASSERT_EQ_INT(st.records, 3);
    TH_ASSERT(dlq_cut_bytes(d) == 8);
    dlq_close(d);
    int rc;
    char *out = run_cmd(dlq_cmd_verify_rejected, dir, &rc);
    TH_ASSERT_EQ_INT(rc, 0);
    TH_ASSERT_MSG(strstr(out, "3 good records"), "verify: %s", out);
    free(out);
    th_rmtree(dir);
}

/* A rejected-area record (format 2) found in the main area is not
 * replayed: the segment goes to quarantine/. */
static void t_main_refuses_rejected_records(void)
{
    char dir[256], cmd[1000];
    TH_ASSERT(th_tmpdir(dir, sizeof dir) == 0);
    dlq_opts o;
    opts_init(&o, dir);
    dlq *d = NULL;
    done_log l = {0};
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    append_rejected(d, 0, 2, &l);
    dlq_close(d);
    snprintf(cmd, sizeof cmd, "mv '%s/rejected/0000000000000000.seg' '%s/'", dir, dir);
    TH_ASSERT(system(cmd) == 0);
    sw_metrics *m = metrics_new();
    TH_ASSERT_EQ_INT(dlq_open(&o, m, &d), 0);
    TH_ASSERT_EQ_INT(drain_main(d), 0);
    TH_ASSERT_EQ_INT(atomic_load(&dlq_metrics_get(m)->dlq_corrupt_segments), 1);
    dlq_close(d);
    metrics_free(m);
    char q[400];
    snprintf(q, sizeof q, "%s/quarantine", dir);
    TH_ASSERT_EQ_INT(count_files(q, ".seg"), 1);
    th_rmtree(dir);
}

/* Record format 2: encode/decode round trip, caps, format 1 unchanged. */
static void t_record_format(void)
{
    uint8_t raw[DLQ_REC_HDR_LEN];
    dlq_rec_hdr h = {.klass = 1, .signal = 2, .count = 3, .ulen = 10, .clen = 9,
                     .recv_wall_ns = 42, .index = 5, .status = 413, .note_len = 17};
    const char *why = NULL;
    dlq_rec_hdr_encode(&h, raw);
    TH_ASSERT_EQ_INT(raw[4], DLQ_REC_VERSION_NOTE);
    dlq_rec_hdr g;
    TH_ASSERT_EQ_INT(dlq_rec_hdr_decode(raw, &g, &why), 0);
    TH_ASSERT_EQ_INT(g.status, 413);
    TH_ASSERT_EQ_INT(g.note_len, 17);
    TH_ASSERT_EQ_INT(dlq_rec_size(&g), DLQ_REC_HDR_LEN + 17 + 9);
    raw[22] = (uint8_t)((DLQ_NOTE_MAX + 1) & 0xff), raw[23] = (uint8_t)((DLQ_NOTE_MAX + 1) >> 8);
    TH_ASSERT_EQ_INT(dlq_rec_hdr_decode(raw, &g, &why), SW_EDECODE);
    h.status = 0, h.note_len = 0;
    dlq_rec_hdr_encode(&h, raw);
    TH_ASSERT_EQ_INT(raw[4], DLQ_REC_VERSION);
    raw[20] = 1; /* format 1: reserved must stay zero */
    TH_ASSERT_EQ_INT(dlq_rec_hdr_decode(raw, &g, &why), SW_EDECODE);
}

int main(void)
{
    atomic_store(&log_level_now, LOG_LVL_ERROR); /* quarantine and cut warnings are expected */
    TH_RUN(t_record_format);
    TH_RUN(t_rejected_never_replayed);
    TH_RUN(t_rejected_commands);
    TH_RUN(t_rejected_bound);
    TH_RUN(t_rejected_torn_tail);
    TH_RUN(t_main_refuses_rejected_records);
    return th_done();
}
