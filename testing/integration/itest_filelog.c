/* itest_filelog.c — the container log receiver with the real binaries:
 * spillway tails Docker json-file logs in a temp dir and forwards them to
 * spillway-mockup; the lines the mock received are compared with the lines
 * written, per file and in order. Lines appended while running, rotation by
 * rename and by copytruncate under load, 16 KiB pieces joined, malformed
 * lines kept and counted, deletion while reading, many files
 * (SW_FILELOG_FILES=1000 for the full count), a polling-only path, restart
 * after SIGTERM (exactly once), kill -9 (at least once, duplicates
 * reported), a corrupt position file and an upstream outage. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define MAX_TAGS 1000
#define MAX_LINES 100000

typedef struct fstack {
    th_stack *s;
    char logs[400];
} fstack;

/* Starts the stack, then restarts spillway with receivers.filelog added
 * (fl_yaml: extra keys, indented 4). */
static void fl_start(fstack *f, const th_stack_opts *o, const char *fl_yaml)
{
    char conf[400], *text, *out;
    size_t len;
    int st;
    f->s = th_stack_start(o);
    TH_ASSERT(f->s != NULL);
    snprintf(f->logs, sizeof f->logs, "%s/logs", th_stack_dir(f->s));
    TH_ASSERT_EQ_INT(mkdir(f->logs, 0755), 0);
    TH_ASSERT_EQ_INT(th_stack_stop_spillway(f->s, SIGTERM, 10000, &st), 0);
    snprintf(conf, sizeof conf, "%s/spillway.yaml", th_stack_dir(f->s));
    text = th_read_file(conf, &len);
    TH_ASSERT(text != NULL);
    char *at = strstr(text, "      read_timeout:");
    TH_ASSERT(at != NULL);
    at = strchr(at, '\n') + 1;
    size_t cap = len + 4096;
    out = malloc(cap);
    int n = snprintf(out, cap,
                     "%.*s  filelog:\n    include: [\"%s/*.log\"]\n    start_at: beginning\n"
                     "    poll_interval: 100ms\n    positions_dir: %s/positions\n"
                     "    flush: { updates: 10, interval: 200ms }\n    batch: { timeout: 50ms }\n%s%s",
                     (int)(at - text), text, f->logs, th_stack_dir(f->s), fl_yaml ? fl_yaml : "", at);
    TH_ASSERT_EQ_INT(th_write_file(conf, out, (size_t)n), 0);
    free(out);
    free(text);
    TH_ASSERT_EQ_INT(th_stack_restart_spillway(f->s), 0);
}

static void path_of(const fstack *f, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", f->logs, name);
}

/* Appends docker json-file lines "<tag> line <i>" for i in [from, to). */
static void write_lines(const char *path, const char *tag, int from, int to)
{
    FILE *fp = fopen(path, "a");
    TH_ASSERT(fp != NULL);
    for (int i = from; i < to; i++)
        fprintf(fp, "{\"log\":\"%s line %d\\n\",\"stream\":\"%s\",\"time\":\"2026-12-07T10:00:00.%09dZ\"}\n",
                tag, i, i % 3 ? "stdout" : "stderr", i);
    TH_ASSERT_EQ_INT(fclose(fp), 0);
}

/* What arrived for tags "<prefix>NNN": counts per line, order per tag. */
typedef struct tally {
    int n_tags, n_lines;
    unsigned short *count;   /* [tag * n_lines + line] */
    long total, dups, missing, out_of_order, foreign;
    int ooo_tag, ooo_line, ooo_after; /* the first line out of order */
} tally;

static void tally_received(th_stack *s, const char *prefix, int n_tags, int n_lines, tally *t)
{
    memset(t, 0, sizeof *t);
    t->n_tags = n_tags;
    t->n_lines = n_lines;
    t->count = calloc((size_t)n_tags * (size_t)n_lines, sizeof *t->count);
    int *last = malloc((size_t)n_tags * sizeof *last);
    for (int i = 0; i < n_tags; i++) last[i] = -1;
    const char *text = th_stack_mock_get(s, "/received/logs");
    TH_ASSERT(text != NULL);
    size_t pl = strlen(prefix);
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        int tag = -1, line = -1, used = 0;
        char fmt[64];
        snprintf(fmt, sizeof fmt, "- 0 %s%%d line %%d%%n", prefix);
        (void)pl;
        if (sscanf(p, fmt, &tag, &line, &used) == 2 && tag >= 0 && tag < n_tags && line >= 0 &&
            line < n_lines && (p[used] == '\n' || p[used] == '\0')) {
            t->total++;
            if (t->count[tag * n_lines + line]++) t->dups++;
            else if (line != last[tag] + 1 && t->out_of_order++ == 0) {
                t->ooo_tag = tag;
                t->ooo_line = line;
                t->ooo_after = last[tag];
            }
            if (line > last[tag]) last[tag] = line;
        } else {
            t->foreign++;
        }
        p = nl ? nl + 1 : p + strlen(p);
    }
    for (long i = 0; i < (long)n_tags * n_lines; i++) t->missing += t->count[i] == 0;
    free(last);
}

static void tally_free(tally *t) { free(t->count); }

/* Waits until the mock holds `want` log records. */
static long wait_logs(fstack *f, long want, int timeout_ms)
{
    return th_stack_wait_items(f->s, SIG_LOGS, want, timeout_ms);
}

static double metric(fstack *f, const char *name)
{
    const char *m = th_stack_metrics(f->s);
    TH_ASSERT(m != NULL);
    return th_prom_sum(m, name, NULL, NULL);
}

#define EXPECT_EXACT(t)                                                                      \
    if ((t).out_of_order)                                                                    \
        printf("# first out of order: tag %d line %d after line %d\n", (t).ooo_tag,          \
               (t).ooo_line, (t).ooo_after);                                                 \
    TH_ASSERT_MSG((t).missing == 0 && (t).dups == 0 && (t).out_of_order == 0 && (t).foreign == 0, \
                  "missing %ld, duplicates %ld, out of order %ld, foreign %ld of %ld",       \
                  (t).missing, (t).dups, (t).out_of_order, (t).foreign, (t).total)

/* ---- cases ---- */

/* Lines appended while spillway runs arrive once each, in order per file
 * (one request in flight upstream, as above). */
static void t_appended_in_order(void)
{
    fstack f;
    char p[500], tag[16];
    th_stack_opts o = {.exporter_yaml = "    max_in_flight: 1\n"};
    fl_start(&f, &o, NULL);
    for (int round = 0; round < 4; round++)
        for (int k = 0; k < 3; k++) {
            snprintf(tag, sizeof tag, "A%03d", k);
            snprintf(p, sizeof p, "%s/app%d.log", f.logs, k);
            write_lines(p, tag, round * 500, round * 500 + 500);
        }
    TH_ASSERT_EQ_INT(wait_logs(&f, 6000, 20000), 6000);
    tally t;
    tally_received(f.s, "A", 3, 2000, &t);
    EXPECT_EXACT(t);
    tally_free(&t);
    TH_ASSERT(metric(&f, "spillway_filelog_records_total") == 6000);
    TH_ASSERT(metric(&f, "spillway_filelog_files_watched") == 3);
    path_of(&f, "app0.log", p, sizeof p);
    (void)p;
}

/* Rename rotation and copytruncate while lines are written at ~10,000/s.
 * One request in flight upstream, so that the upstream sees the records in
 * the order the receiver read them (with several, a slow first request is
 * overtaken: seen under ASan). */
static void t_rotation_under_load(void)
{
    fstack f;
    char a[500], a1[520], c[500], cmd[1600];
    th_stack_opts o = {.exporter_yaml = "    max_in_flight: 1\n"};
    fl_start(&f, &o, NULL);
    path_of(&f, "rot.log", a, sizeof a);
    snprintf(a1, sizeof a1, "%s.1", a);
    path_of(&f, "ct.log", c, sizeof c);
    int n = 0, per_tick = 100, total = 15000;
    int64_t t0 = th_now_ms();
    while (n < total) {
        write_lines(a, "R000", n, n + per_tick / 2);
        write_lines(c, "R001", n, n + per_tick / 2);
        n += per_tick / 2;
        if (n % 2500 == 0) { /* rotate: rename (writer follows) and copytruncate */
            if (n % 5000 == 0) {
                TH_ASSERT_EQ_INT(rename(a, a1), 0);
            } else {
                snprintf(cmd, sizeof cmd, "cp '%s' '%s.1' && truncate -s 0 '%s'", c, c, c);
                TH_ASSERT_EQ_INT(system(cmd), 0);
            }
        }
        th_nap_ms(10); /* paces the writer: 100 lines per 10 ms */
    }
    int64_t wrote_ms = th_now_ms() - t0;
    TH_ASSERT_EQ_INT(wait_logs(&f, 2 * total, 30000), 2 * total);
    tally t;
    tally_received(f.s, "R", 2, total, &t);
    printf("# %d lines in %lld ms (%.0f lines/s) with %d renames and %d copytruncates\n", 2 * total,
           (long long)wrote_ms, 2000.0 * total / (double)(wrote_ms ? wrote_ms : 1), total / 5000,
           total / 5000 + (total % 5000 >= 2500));
    EXPECT_EXACT(t);
    tally_free(&t);
    TH_ASSERT(metric(&f, "spillway_filelog_rotations_total") >= 1);
    TH_ASSERT(metric(&f, "spillway_filelog_truncations_total") >= 1);
}

/* 16 KiB pieces are joined; malformed lines are kept and counted. */
static void t_partial_and_malformed(void)
{
    fstack f;
    char p[500];
    th_stack_opts o = {0};
    fl_start(&f, &o, NULL);
    path_of(&f, "big.log", p, sizeof p);
    FILE *fp = fopen(p, "w");
    static char piece[16385];
    for (int i = 0; i < 4; i++) {
        memset(piece, 'a' + i, 16384);
        piece[i == 3 ? 100 : 16384] = '\0';
        fprintf(fp, "{\"log\":\"%s%s\",\"stream\":\"stdout\",\"time\":\"2026-12-07T10:00:00Z\"}\n", piece,
                i == 3 ? "\\n" : "");
    }
    fputs("garbage that is not json\n{\"log\":\"after\\n\",\"stream\":\"stderr\"}\n", fp);
    fclose(fp);
    TH_ASSERT_EQ_INT(wait_logs(&f, 3, 15000), 3);
    const char *text = th_stack_mock_get(f.s, "/received/logs");
    TH_ASSERT(text != NULL);
    const char *l2 = strchr(text, '\n');
    TH_ASSERT(l2 != NULL);
    TH_ASSERT_EQ_INT((long)(l2 - text), 4 + 3 * 16384 + 100); /* "- 0 " + joined body */
    TH_ASSERT(strstr(text, "\n- 0 garbage that is not json\n- 0 after\n") != NULL);
    TH_ASSERT(metric(&f, "spillway_filelog_parse_errors_total") == 1);
}

/* Many files at once, half of them deleted after being read: they are
 * closed and nothing is lost or left open. */
static void t_many_files_and_deletion(void)
{
    fstack f;
    char p[500], tag[16];
    const char *env = getenv("SW_FILELOG_FILES");
    int files = env ? atoi(env) : 200;
    if (files < 2 || files > MAX_TAGS) files = 200;
    th_stack_opts o = {0};
    fl_start(&f, &o, "    max_open_files: 2000\n");
    int64_t t0 = th_now_ms();
    for (int i = 0; i < files; i++) {
        snprintf(tag, sizeof tag, "M%03d", i);
        snprintf(p, sizeof p, "%s/m%04d.log", f.logs, i);
        write_lines(p, tag, 0, 20);
    }
    TH_ASSERT_EQ_INT(wait_logs(&f, 20L * files, 30000), 20L * files);
    printf("# %d files x 20 lines delivered in %lld ms; spillway RSS %ld KiB\n", files,
           (long long)(th_now_ms() - t0), th_proc_rss_kib(th_proc_pid(th_stack_spillway(f.s))));
    for (int i = 0; i < files; i += 2) {
        snprintf(p, sizeof p, "%s/m%04d.log", f.logs, i);
        TH_ASSERT_EQ_INT(unlink(p), 0);
    }
    for (int i = 1; i < files; i += 2) {
        snprintf(tag, sizeof tag, "M%03d", i);
        snprintf(p, sizeof p, "%s/m%04d.log", f.logs, i);
        write_lines(p, tag, 20, 40);
    }
    TH_ASSERT_EQ_INT(wait_logs(&f, 30L * files, 30000), 30L * files);
    int64_t end = th_now_ms() + 10000;
    while (metric(&f, "spillway_filelog_files_watched") != files / 2 && th_now_ms() < end) th_nap_ms(50);
    TH_ASSERT(metric(&f, "spillway_filelog_files_watched") == files / 2);
    tally t;
    tally_received(f.s, "M", files, 40, &t);
    TH_ASSERT_MSG(t.dups == 0 && t.out_of_order == 0 && t.foreign == 0 && t.total == 30L * files,
                  "total %ld dups %ld order %ld foreign %ld", t.total, t.dups, t.out_of_order, t.foreign);
    tally_free(&t);
}

/* inotify off: the poll tick alone finds and reads files. */
static void t_polling_only(void)
{
    fstack f;
    char p[500];
    th_stack_opts o = {0};
    fl_start(&f, &o, "    inotify: false\n");
    path_of(&f, "poll.log", p, sizeof p);
    for (int round = 0; round < 5; round++) {
        write_lines(p, "P000", round * 200, round * 200 + 200);
        TH_ASSERT_EQ_INT(wait_logs(&f, (round + 1) * 200L, 10000), (round + 1) * 200L);
    }
    tally t;
    tally_received(f.s, "P", 1, 1000, &t);
    EXPECT_EXACT(t);
    tally_free(&t);
}

/* SIGTERM, lines written while down, restart: every line exactly once. */
static void t_restart_sigterm_exactly_once(void)
{
    fstack f;
    char p[500];
    int st;
    th_stack_opts o = {0};
    fl_start(&f, &o, NULL);
    path_of(&f, "r.log", p, sizeof p);
    write_lines(p, "S000", 0, 3000);
    TH_ASSERT_EQ_INT(wait_logs(&f, 3000, 10000), 3000);
    int64_t end = th_now_ms() + 5000; /* delivered records settle, positions are saved */
    while (metric(&f, "spillway_filelog_position_saves_total") < 1 && th_now_ms() < end) th_nap_ms(20);
    TH_ASSERT(metric(&f, "spillway_filelog_delivery_failures_total") == 0);
    TH_ASSERT_EQ_INT(th_stack_stop_spillway(f.s, SIGTERM, 15000, &st), 0);
    write_lines(p, "S000", 3000, 4000);
    TH_ASSERT_EQ_INT(th_stack_restart_spillway(f.s), 0);
    write_lines(p, "S000", 4000, 5000);
    TH_ASSERT_EQ_INT(wait_logs(&f, 5000, 20000), 5000);
    end = th_now_ms() + 500; /* a duplicate would show up within this */
    while (th_now_ms() < end) th_nap_ms(50);
    tally t;
    tally_received(f.s, "S", 1, 5000, &t);
    EXPECT_EXACT(t);
    tally_free(&t);
}

/* kill -9 while lines are written (~10,000/s): at least once, and the
 * duplicates (lines delivered after the last position save) reported. */
static void t_kill9_at_least_once(void)
{
    fstack f;
    char p[500];
    int st;
    const int total = 12000, kill_at = 8000;
    th_stack_opts o = {0};
    fl_start(&f, &o, NULL);
    path_of(&f, "k.log", p, sizeof p);
    for (int n = 0; n < total; n += 100) {
        if (n == kill_at) {
            th_stack_stop_spillway(f.s, SIGKILL, 5000, &st);
            TH_ASSERT(st != 0);
        }
        if (n == kill_at + 2000) TH_ASSERT_EQ_INT(th_stack_restart_spillway(f.s), 0);
        write_lines(p, "K000", n, n + 100);
        th_nap_ms(10); /* paces the writer */
    }
    TH_ASSERT(wait_logs(&f, total, 30000) >= total);
    int64_t end = th_now_ms() + 1000;
    while (th_now_ms() < end) th_nap_ms(50);
    tally t;
    tally_received(f.s, "K", 1, total, &t);
    printf("# kill -9 at ~10,000 lines/s: %ld records for %d lines, %ld duplicates "
           "(flush: 10 updates / 200 ms)\n", t.total, total, t.dups);
    TH_ASSERT_MSG(t.missing == 0 && t.foreign == 0, "missing %ld foreign %ld", t.missing, t.foreign);
    tally_free(&t);
}

/* kill -9 while the upstream is down, so the records read sit in the
 * queue: after the restart they are read again from the files (positions
 * move only once records are delivered or in the DLQ). */
static void t_kill9_during_outage(void)
{
    fstack f;
    char p[500];
    int st;
    th_stack_opts o = {.mock_admin = 1};
    fl_start(&f, &o, NULL);
    path_of(&f, "ko.log", p, sizeof p);
    write_lines(p, "Q000", 0, 500);
    TH_ASSERT_EQ_INT(wait_logs(&f, 500, 10000), 500);
    TH_ASSERT_MSG(th_stack_mock_post(f.s, "/admin/outage?seconds=3600&mode=503") == 200, "outage");
    write_lines(p, "Q000", 500, 2000);
    int64_t end = th_now_ms() + 10000; /* read and handed on, positions saved meanwhile */
    while (metric(&f, "spillway_filelog_records_total") < 2000 && th_now_ms() < end) th_nap_ms(20);
    TH_ASSERT(metric(&f, "spillway_filelog_records_total") >= 2000);
    end = th_now_ms() + 600; /* > flush.interval: a save would have happened */
    while (th_now_ms() < end) th_nap_ms(50);
    th_stack_stop_spillway(f.s, SIGKILL, 5000, &st);
    TH_ASSERT_MSG(th_stack_mock_post(f.s, "/admin/outage?seconds=0") == 200, "end of outage");
    TH_ASSERT_EQ_INT(th_stack_restart_spillway(f.s), 0);
    TH_ASSERT(wait_logs(&f, 2000, 20000) >= 2000);
    end = th_now_ms() + 500;
    while (th_now_ms() < end) th_nap_ms(50);
    tally t;
    tally_received(f.s, "Q", 1, 2000, &t);
    printf("# kill -9 during an outage: %ld records for 2000 lines, %ld duplicates\n", t.total, t.dups);
    TH_ASSERT_MSG(t.missing == 0 && t.foreign == 0, "missing %ld foreign %ld", t.missing, t.foreign);
    tally_free(&t);
}

/* The newest position generation is corrupt: the previous one is used,
 * logged and counted, and no line is lost. */
static void t_corrupt_positions(void)
{
    fstack f;
    char p[500], pos[600];
    int st;
    th_stack_opts o = {0};
    fl_start(&f, &o, NULL);
    path_of(&f, "c.log", p, sizeof p);
    write_lines(p, "C000", 0, 2000);
    TH_ASSERT_EQ_INT(wait_logs(&f, 2000, 10000), 2000);
    TH_ASSERT_EQ_INT(th_stack_stop_spillway(f.s, SIGTERM, 15000, &st), 0);
    /* corrupt the generation written last (newest mtime) */
    time_t newest = 0;
    for (int g = 0; g < 3; g++) {
        char q[600];
        struct stat sb;
        snprintf(q, sizeof q, "%s/positions/positions.%d", th_stack_dir(f.s), g);
        if (stat(q, &sb) == 0 && sb.st_mtime >= newest) {
            newest = sb.st_mtime;
            snprintf(pos, sizeof pos, "%s", q);
        }
    }
    TH_ASSERT(newest != 0);
    size_t len = 0;
    char *d = th_read_file(pos, &len);
    TH_ASSERT(d && len > 10);
    d[len - 3] ^= 0x5a;
    TH_ASSERT_EQ_INT(th_write_file(pos, d, len), 0);
    free(d);
    write_lines(p, "C000", 2000, 3000);
    TH_ASSERT_EQ_INT(th_stack_restart_spillway(f.s), 0);
    TH_ASSERT(wait_logs(&f, 3000, 20000) >= 3000);
    int64_t end = th_now_ms() + 5000;
    while (metric(&f, "spillway_filelog_checkpoint_fallbacks_total") < 1 && th_now_ms() < end) th_nap_ms(50);
    TH_ASSERT(metric(&f, "spillway_filelog_checkpoint_fallbacks_total") == 1);
    char *log = th_read_file(th_proc_log(th_stack_spillway(f.s)), &len);
    TH_ASSERT(log && strstr(log, "corrupt") != NULL);
    free(log);
    tally t;
    tally_received(f.s, "C", 1, 3000, &t);
    printf("# corrupt newest generation: %ld duplicates after falling back\n", t.dups);
    TH_ASSERT_MSG(t.missing == 0 && t.foreign == 0, "missing %ld", t.missing);
    tally_free(&t);
}

/* The upstream is down while the files grow: nothing is lost. */
static void t_upstream_outage(void)
{
    fstack f;
    char p[500];
    th_stack_opts o = {.mock_admin = 1, .queue_max_bytes = "64KiB"};
    fl_start(&f, &o, NULL);
    path_of(&f, "o.log", p, sizeof p);
    write_lines(p, "O000", 0, 500);
    TH_ASSERT_EQ_INT(wait_logs(&f, 500, 10000), 500);
    /* SW_FILELOG_OUTAGE_S=60 for the full minute; 4 s in make test */
    const char *env = getenv("SW_FILELOG_OUTAGE_S");
    int secs = env && atoi(env) > 0 && atoi(env) <= 600 ? atoi(env) : 4;
    char url[128];
    snprintf(url, sizeof url, "/admin/outage?seconds=%d&mode=503", secs);
    TH_ASSERT_MSG(th_stack_mock_post(f.s, url) == 200, "outage");
    int64_t until = th_now_ms() + secs * 1000LL;
    for (int n = 500; n < 6000; n += 500) { /* the files grow through the outage */
        write_lines(p, "O000", n, n + 500);
        int64_t step = th_now_ms() + (until - th_now_ms()) / ((6000 - n) / 500 + 1);
        while (th_now_ms() < step) th_nap_ms(20);
    }
    TH_ASSERT_EQ_INT(wait_logs(&f, 6000, 40000 + secs * 1000), 6000);
    int64_t end = th_now_ms() + 500;
    while (th_now_ms() < end) th_nap_ms(50);
    tally t;
    tally_received(f.s, "O", 1, 6000, &t);
    printf("# outage: %ld duplicates\n", t.dups);
    TH_ASSERT_MSG(t.missing == 0 && t.foreign == 0, "missing %ld foreign %ld", t.missing, t.foreign);
    tally_free(&t);
}

int main(int argc, char **argv)
{
    if (argc > 1) { /* one case by name, for debugging */
        if (strcmp(argv[1], "rotation") == 0) TH_RUN(t_rotation_under_load);
        if (strcmp(argv[1], "kill9outage") == 0) TH_RUN(t_kill9_during_outage);
        if (strcmp(argv[1], "kill9") == 0) TH_RUN(t_kill9_at_least_once);
        if (strcmp(argv[1], "many") == 0) TH_RUN(t_many_files_and_deletion);
        if (strcmp(argv[1], "outage") == 0) TH_RUN(t_upstream_outage);
        if (strcmp(argv[1], "sigterm") == 0) TH_RUN(t_restart_sigterm_exactly_once);
        return th_done();
    }
    TH_RUN(t_appended_in_order);
    TH_RUN(t_rotation_under_load);
    TH_RUN(t_partial_and_malformed);
    TH_RUN(t_many_files_and_deletion);
    TH_RUN(t_polling_only);
    TH_RUN(t_restart_sigterm_exactly_once);
    TH_RUN(t_kill9_at_least_once);
    TH_RUN(t_kill9_during_outage);
    TH_RUN(t_corrupt_positions);
    TH_RUN(t_upstream_outage);
    return th_done();
}
