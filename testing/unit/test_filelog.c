/* test_filelog.c — the filelog receiver on a real event loop and real
 * files in a temp dir, with a fake pipeline that records what it gets and
 * settles (or holds, or refuses) the requests: order per file, joining,
 * malformed lines, rotation by rename and copytruncate, deletion, positions
 * that advance only once delivered, restart, backpressure, polling only. */
#include <dirent.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "receivers/filelog/filelog.h"
#include "receivers/filelog/fl_pos.h"
#include "runtime/err.h"
#include "runtime/item_track.h"
#include "runtime/log.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"
#include "receivers/filelog/fl_metrics.h"

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest req_t;

#define MAX_HELD 4096

typedef struct fake {
    int refuse;              /* refuse this many submissions (full) */
    int hold;                /* keep accepted items unsettled */
    item *held[MAX_HELD];
    size_t n_held;
    char **bodies;           /* every record body received, in order */
    char **attrs;            /* "iostream|truncated|parse_error" per record */
    size_t n, cap;
    int requests, refused;
} fake;

static char *attr_summary(const Opentelemetry__Proto__Logs__V1__LogRecord *lr)
{
    char s[256] = "";
    for (size_t i = 0; i < lr->n_attributes; i++) {
        const char *k = lr->attributes[i]->key;
        const Opentelemetry__Proto__Common__V1__AnyValue *v = lr->attributes[i]->value;
        size_t u = strlen(s);
        if (strcmp(k, "log.iostream") == 0) snprintf(s + u, sizeof s - u, "%s|", v->string_value);
        else if (strcmp(k, "spillway.filelog.truncated") == 0) snprintf(s + u, sizeof s - u, "truncated|");
        else if (strcmp(k, "spillway.filelog.parse_error") == 0) snprintf(s + u, sizeof s - u, "error|");
    }
    return strdup(s);
}

static void record(fake *fk, const uint8_t *pb, size_t len)
{
    req_t *r = opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(NULL, len, pb);
    TH_ASSERT(r != NULL);
    for (size_t i = 0; i < r->n_resource_logs; i++)
        for (size_t j = 0; j < r->resource_logs[i]->n_scope_logs; j++) {
            Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = r->resource_logs[i]->scope_logs[j];
            for (size_t k = 0; k < sl->n_log_records; k++) {
                if (fk->n == fk->cap) {
                    fk->cap = fk->cap ? fk->cap * 2 : 256;
                    fk->bodies = realloc(fk->bodies, fk->cap * sizeof *fk->bodies);
                    fk->attrs = realloc(fk->attrs, fk->cap * sizeof *fk->attrs);
                }
                fk->bodies[fk->n] = strdup(sl->log_records[k]->body->string_value);
                fk->attrs[fk->n++] = attr_summary(sl->log_records[k]);
            }
        }
    opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(r, NULL);
}

static void fake_submit(void *ctx, const fl_submit_req *rq, fl_submit_done_fn done, void *arg)
{
    fake *fk = ctx;
    if (fk->refuse > 0) {
        fk->refuse--;
        fk->refused++;
        done(arg, FL_SUBMIT_FULL, 0);
        return;
    }
    fk->requests++;
    record(fk, rq->pb, rq->len);
    item *it = item_new(SIG_LOGS, CLASS_NORMAL, rq->items, rq->recv_ns, rq->pb, rq->len);
    TH_ASSERT(it != NULL);
    item_track_attach(it, rq->trk);
    done(arg, FL_SUBMIT_ACCEPTED, 0);
    if (fk->hold && fk->n_held < MAX_HELD) {
        fk->held[fk->n_held++] = it;
        return;
    }
    item_settle(it, 0);
    item_free(it);
}

static void fake_release(fake *fk)
{
    for (size_t i = 0; i < fk->n_held; i++) {
        item_settle(fk->held[i], 0);
        item_free(fk->held[i]);
    }
    fk->n_held = 0;
}

static void fake_destroy(fake *fk)
{
    fake_release(fk);
    for (size_t i = 0; i < fk->n; i++) {
        free(fk->bodies[i]);
        free(fk->attrs[i]);
    }
    free(fk->bodies);
    free(fk->attrs);
    memset(fk, 0, sizeof *fk);
}

/* ---- environment ---- */

typedef struct env {
    char dir[256];
    char logs[300];
    cfg *c;
    sw_metrics *m;
    struct event_base *base;
    filelog *fl;
    fake fk;
} env;

static void env_config(env *e, const char *format, const char *extra)
{
    char yaml[2048], err[2048];
    int n = snprintf(yaml, sizeof yaml,
                     "receivers:\n  filelog:\n    include: [\"%s/*.log\"]\n    exclude: [\"%s/skip*\"]\n"
                     "    start_at: beginning\n    format: %s\n    poll_interval: 20ms\n"
                     "    positions_dir: %s/pos\n    max_record_size: 64KiB\n"
                     "    flush: { updates: 1, interval: 10ms }\n    batch: { max_bytes: 4KiB, timeout: 10ms }\n%s",
                     e->logs, e->logs, format, e->dir, extra ? extra : "");
    cfg_free(e->c);
    e->c = NULL;
    TH_ASSERT_MSG(cfg_load_mem("t.yaml", yaml, (size_t)n, &e->c, err, sizeof err) == 0, "%s", err);
}

static void env_init(env *e, const char *format, const char *extra)
{
    memset(e, 0, sizeof *e);
    TH_ASSERT_EQ_INT(th_tmpdir(e->dir, sizeof e->dir), 0);
    snprintf(e->logs, sizeof e->logs, "%s/logs", e->dir);
    TH_ASSERT_EQ_INT(mkdir(e->logs, 0755), 0);
    env_config(e, format, extra);
    e->m = metrics_new();
    e->base = event_base_new();
}

static void env_start(env *e)
{
    e->fl = fl_new(e->base, e->c, e->m, fake_submit, &e->fk);
    TH_ASSERT(e->fl != NULL);
    TH_ASSERT_EQ_INT(fl_start(e->fl), 0);
}

static void env_stop(env *e)
{
    fl_stop_intake(e->fl);
    fl_free(e->fl);
    e->fl = NULL;
}

static void env_free(env *e)
{
    if (e->fl) env_stop(e);
    fake_destroy(&e->fk);
    event_base_free(e->base);
    metrics_free(e->m);
    cfg_free(e->c);
    th_rmtree(e->dir);
}

/* Runs the loop until n records arrived (or the deadline). */
static size_t run_until(env *e, size_t n, int timeout_ms)
{
    int64_t end = th_now_ms() + timeout_ms;
    while (e->fk.n < n && th_now_ms() < end) event_base_loop(e->base, EVLOOP_ONCE);
    return e->fk.n;
}

static void run_ms(env *e, int ms)
{
    int64_t end = th_now_ms() + ms;
    while (th_now_ms() < end) event_base_loop(e->base, EVLOOP_ONCE);
}

static void append(const char *path, const char *text)
{
    FILE *f = fopen(path, "a");
    TH_ASSERT(f != NULL);
    fputs(text, f);
    TH_ASSERT_EQ_INT(fclose(f), 0);
}

static void docker_lines(const char *path, const char *tag, int from, int to)
{
    FILE *f = fopen(path, "a");
    TH_ASSERT(f != NULL);
    for (int i = from; i < to; i++)
        fprintf(f, "{\"log\":\"%s line %d\\n\",\"stream\":\"%s\",\"time\":\"2026-01-02T03:04:05.%09dZ\"}\n",
                tag, i, i % 2 ? "stderr" : "stdout", i);
    TH_ASSERT_EQ_INT(fclose(f), 0);
}

/* The bodies of tag, in arrival order, must be "tag line from".."to-1". */
static void expect_seq(env *e, const char *tag, int from, int to)
{
    char want[128];
    int next = from;
    size_t tl = strlen(tag);
    for (size_t i = 0; i < e->fk.n; i++) {
        const char *b = e->fk.bodies[i];
        if (strncmp(b, tag, tl) != 0 || b[tl] != ' ') continue;
        snprintf(want, sizeof want, "%s line %d", tag, next);
        TH_ASSERT_MSG(strcmp(b, want) == 0, "got \"%s\", want \"%s\"", b, want);
        next++;
    }
    TH_ASSERT_MSG(next == to, "%s: got lines %d..%d, want %d..%d", tag, from, next - 1, from, to - 1);
}

static uint64_t saved_offset(env *e)
{
    fl_pos_set s;
    unsigned bad;
    char dir[400];
    snprintf(dir, sizeof dir, "%s/pos", e->dir);
    TH_ASSERT_EQ_INT(fl_pos_load(dir, &s, &bad), 0);
    uint64_t off = 0;
    for (size_t i = 0; i < s.n; i++) off += s.v[i].offset;
    fl_pos_set_destroy(&s);
    return off;
}

static long fsize(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

/* ---- cases ---- */

static void t_tail_in_order(void)
{
    env e;
    char a[400], b[400];
    env_init(&e, "docker", NULL);
    snprintf(a, sizeof a, "%s/a.log", e.logs);
    snprintf(b, sizeof b, "%s/b.log", e.logs);
    docker_lines(a, "A", 0, 50);
    env_start(&e);
    docker_lines(b, "B", 0, 30);
    docker_lines(a, "A", 50, 100);
    TH_ASSERT_EQ_INT(run_until(&e, 130, 10000), 130);
    expect_seq(&e, "A", 0, 100);
    expect_seq(&e, "B", 0, 30);
    TH_ASSERT_EQ_STR(e.fk.attrs[0], "stdout|");
    TH_ASSERT_EQ_STR(e.fk.attrs[1], "stderr|");
    TH_ASSERT(e.fk.requests < 130); /* batched */
    run_ms(&e, 50);
    TH_ASSERT_EQ_INT(fl_save_now(e.fl), 0);
    TH_ASSERT_EQ_INT(saved_offset(&e), fsize(a) + fsize(b));
    TH_ASSERT_EQ_INT(fl_metrics_get(e.m)->fl_lines_read, 130);
    TH_ASSERT_EQ_INT(fl_metrics_get(e.m)->fl_records, 130);
    TH_ASSERT_EQ_INT(fl_metrics_get(e.m)->fl_files_watched, 2);
    env_free(&e);
}

static void t_partial_joined_and_malformed(void)
{
    env e;
    char a[400];
    env_init(&e, "docker", NULL);
    snprintf(a, sizeof a, "%s/a.log", e.logs);
    /* a 40 KiB line split into 16 KiB pieces, then 100 KiB (cut at 64 KiB) */
    static char piece[16385];
    FILE *f = fopen(a, "w");
    for (int big = 0; big < 2; big++) {
        int pieces = big ? 7 : 3;
        for (int i = 0; i < pieces; i++) {
            int len = i == pieces - 1 ? 8192 : 16384;
            memset(piece, 'a' + i, (size_t)len);
            piece[len] = '\0';
            fprintf(f, "{\"log\":\"%s%s\",\"stream\":\"stdout\",\"time\":\"2026-01-01T00:00:00Z\"}\n", piece,
                    i == pieces - 1 ? "\\n" : "");
        }
    }
    fputs("this is not json\n{\"log\":\"ok\\n\",\"stream\":\"stdout\"}\n", f);
    fclose(f);
    env_start(&e);
    TH_ASSERT_EQ_INT(run_until(&e, 4, 10000), 4);
    TH_ASSERT_EQ_INT(strlen(e.fk.bodies[0]), 2 * 16384 + 8192);
    TH_ASSERT(e.fk.bodies[0][16383] == 'a' && e.fk.bodies[0][16384] == 'b' && e.fk.bodies[0][32768] == 'c');
    TH_ASSERT_EQ_STR(e.fk.attrs[0], "stdout|");
    TH_ASSERT_EQ_INT(strlen(e.fk.bodies[1]), 64 * 1024);
    TH_ASSERT_EQ_STR(e.fk.attrs[1], "stdout|truncated|");
    TH_ASSERT_EQ_STR(e.fk.bodies[2], "this is not json");
    TH_ASSERT_EQ_STR(e.fk.attrs[2], "error|");
    TH_ASSERT_EQ_STR(e.fk.bodies[3], "ok");
    TH_ASSERT_EQ_INT(fl_metrics_get(e.m)->fl_parse_errors, 1);
    TH_ASSERT_EQ_INT(fl_metrics_get(e.m)->fl_truncated_records, 1);
    env_free(&e);
}

static void t_raw_and_exclude(void)
{
    env e;
    char a[400], s[400];
    env_init(&e, "raw", NULL);
    snprintf(a, sizeof a, "%s/plain.log", e.logs);
    snprintf(s, sizeof s, "%s/skipme.log", e.logs);
    append(s, "never\n");
    append(a, "one\r\n{\"log\":\"not parsed\"}\n\nlast without newline");
    env_start(&e);
    TH_ASSERT_EQ_INT(run_until(&e, 3, 10000), 3);
    run_ms(&e, 100);
    TH_ASSERT_EQ_INT(e.fk.n, 3); /* the unterminated line waits */
    TH_ASSERT_EQ_STR(e.fk.bodies[0], "one");
    TH_ASSERT_EQ_STR(e.fk.bodies[1], "{\"log\":\"not parsed\"}");
    TH_ASSERT_EQ_STR(e.fk.bodies[2], "");
    append(a, " now\n");
    TH_ASSERT_EQ_INT(run_until(&e, 4, 10000), 4);
    TH_ASSERT_EQ_STR(e.fk.bodies[3], "last without newline now");
    TH_ASSERT_EQ_INT(fl_files_open(e.fl), 1);
    env_free(&e);
}

static void t_rotation_rename(void)
{
    env e;
    char a[400], r[400];
    env_init(&e, "docker", NULL);
    snprintf(a, sizeof a, "%s/app.log", e.logs);
    snprintf(r, sizeof r, "%s/app.log.1", e.logs);
    docker_lines(a, "R", 0, 100);
    env_start(&e);
    TH_ASSERT_EQ_INT(run_until(&e, 100, 10000), 100);
    for (int round = 0; round < 3; round++) {
        int base = 100 + round * 300;
        docker_lines(a, "R", base, base + 100); /* maybe unread at rotation */
        TH_ASSERT_EQ_INT(rename(a, r), 0);
        docker_lines(r, "R", base + 100, base + 150); /* writer still on the old file */
        docker_lines(a, "R", base + 150, base + 300);
        TH_ASSERT_EQ_INT(run_until(&e, (size_t)base + 300, 15000), base + 300);
    }
    run_ms(&e, 200);
    expect_seq(&e, "R", 0, 1000);
    TH_ASSERT_EQ_INT(e.fk.n, 1000);
    TH_ASSERT(fl_metrics_get(e.m)->fl_rotations >= 1);
    TH_ASSERT_EQ_INT(fl_files_open(e.fl), 1); /* the rotated files were closed */
    env_free(&e);
}

static void t_copytruncate(void)
{
    env e;
    char a[400], cmd[1400];
    env_init(&e, "docker", NULL);
    snprintf(a, sizeof a, "%s/ct.log", e.logs);
    docker_lines(a, "C", 0, 100);
    env_start(&e);
    TH_ASSERT_EQ_INT(run_until(&e, 100, 10000), 100);
    docker_lines(a, "C", 100, 200); /* written, maybe unread, then copied */
    snprintf(cmd, sizeof cmd, "cp '%s' '%s.1' && truncate -s 0 '%s'", a, a, a);
    TH_ASSERT_EQ_INT(system(cmd), 0);
    docker_lines(a, "C", 200, 300);
    TH_ASSERT_EQ_INT(run_until(&e, 300, 10000), 300);
    run_ms(&e, 200);
    expect_seq(&e, "C", 0, 300);
    TH_ASSERT_EQ_INT(e.fk.n, 300);
    TH_ASSERT_EQ_INT(fl_metrics_get(e.m)->fl_truncations, 1);
    env_free(&e);
}

/* Descriptors this process has open (inotify watches live in one). */
static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    for (struct dirent *de; d && (de = readdir(d));) n += de->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

static int inotify_watches(void)
{
    char p[300], line[256];
    int n = 0;
    DIR *d = opendir("/proc/self/fdinfo");
    for (struct dirent *de; d && (de = readdir(d));) {
        snprintf(p, sizeof p, "/proc/self/fdinfo/%s", de->d_name);
        FILE *f = de->d_name[0] != '.' ? fopen(p, "r") : NULL;
        while (f && fgets(line, sizeof line, f)) n += strncmp(line, "inotify wd:", 11) == 0;
        if (f) fclose(f);
    }
    if (d) closedir(d);
    return n;
}

/* Files that come and go leave no descriptor, watch or file state behind. */
static void t_deleted_while_read(void)
{
    env e;
    char a[400];
    env_init(&e, "docker", NULL);
    snprintf(a, sizeof a, "%s/gone.log", e.logs);
    env_start(&e);
    int fds0 = -1, wd0 = -1;
    for (int cycle = 0; cycle < 20; cycle++) {
        docker_lines(a, "D", cycle * 10, cycle * 10 + 10);
        TH_ASSERT_EQ_INT(run_until(&e, (size_t)(cycle + 1) * 10, 10000), (cycle + 1) * 10);
        TH_ASSERT_EQ_INT(unlink(a), 0);
        int64_t end = th_now_ms() + 5000;
        while (fl_files_open(e.fl) && th_now_ms() < end) event_base_loop(e.base, EVLOOP_ONCE);
        TH_ASSERT_EQ_INT(fl_files_open(e.fl), 0);
        if (cycle == 0) { /* after the first file: the directory is watched */
            TH_ASSERT_EQ_INT(fl_save_now(e.fl), 0); /* the writer thread holds no file now */
            fds0 = open_fds();
            wd0 = inotify_watches();
        }
    }
    expect_seq(&e, "D", 0, 200);
    TH_ASSERT_EQ_INT(fl_metrics_get(e.m)->fl_files_watched, 0);
    run_ms(&e, 50);
    TH_ASSERT_EQ_INT(fl_save_now(e.fl), 0);
    TH_ASSERT_EQ_INT(open_fds(), fds0);
    TH_ASSERT_EQ_INT(inotify_watches(), wd0); /* the directory's watch stays, file watches went */
    TH_ASSERT_EQ_INT(wd0, 1);
    env_free(&e);
}

static void t_position_waits_for_delivery(void)
{
    env e;
    char a[400];
    env_init(&e, "docker", NULL);
    snprintf(a, sizeof a, "%s/a.log", e.logs);
    docker_lines(a, "P", 0, 200);
    e.fk.hold = 1;
    env_start(&e);
    TH_ASSERT_EQ_INT(run_until(&e, 200, 10000), 200);
    run_ms(&e, 50);
    TH_ASSERT_EQ_INT(fl_save_now(e.fl), 0);
    TH_ASSERT_EQ_INT(saved_offset(&e), 0); /* queued is not delivered */
    fake_release(&e.fk);
    run_ms(&e, 50);
    TH_ASSERT_EQ_INT(fl_save_now(e.fl), 0);
    TH_ASSERT_EQ_INT(saved_offset(&e), fsize(a));
    env_free(&e);
}

static void t_restart_resumes(void)
{
    env e;
    char a[400];
    env_init(&e, "docker", NULL);
    snprintf(a, sizeof a, "%s/a.log", e.logs);
    docker_lines(a, "S", 0, 100);
    env_start(&e);
    TH_ASSERT_EQ_INT(run_until(&e, 100, 10000), 100);
    run_ms(&e, 50);
    env_stop(&e);
    docker_lines(a, "S", 100, 150); /* written while stopped */
    env_start(&e);
    TH_ASSERT_EQ_INT(run_until(&e, 150, 10000), 150);
    run_ms(&e, 100);
    expect_seq(&e, "S", 0, 150); /* exactly once across the restart */
    /* start_at: end ignores a file without position at start-up... */
    env_stop(&e);
    env_config(&e, "docker", NULL);
    char b[400];
    snprintf(b, sizeof b, "%s/b.log", e.logs);
    docker_lines(b, "T", 0, 10);
    cfg *c = e.c;
    c->filelog.start_at = 0;
    env_start(&e);
    docker_lines(b, "T", 10, 20); /* ...but reads what is appended later */
    TH_ASSERT_EQ_INT(run_until(&e, 160, 10000), 160);
    expect_seq(&e, "T", 10, 20);
    env_free(&e);
}

static void t_corrupt_positions_fall_back(void)
{
    env e;
    char a[400], p[500];
    env_init(&e, "docker", NULL);
    snprintf(a, sizeof a, "%s/a.log", e.logs);
    docker_lines(a, "F", 0, 100);
    env_start(&e);
    TH_ASSERT_EQ_INT(run_until(&e, 100, 10000), 100);
    run_ms(&e, 50);
    env_stop(&e); /* last save: the newest generation */
    fl_pos_set s;
    unsigned bad;
    snprintf(p, sizeof p, "%s/pos", e.dir);
    TH_ASSERT_EQ_INT(fl_pos_load(p, &s, &bad), 0);
    snprintf(p, sizeof p, "%s/pos/positions.%u", e.dir, (unsigned)(s.seq % 3));
    fl_pos_set_destroy(&s);
    TH_ASSERT_EQ_INT(th_write_file(p, "garbage", 7), 0);
    docker_lines(a, "F", 100, 120);
    size_t before = e.fk.n;
    env_start(&e);
    /* The older generation may repeat lines, so the 20 new records are not
     * the next 20 to arrive: wait for line 119, which comes last. */
    int seen[120] = { 0 };
    int64_t end = th_now_ms() + 10000;
    for (size_t i = before; th_now_ms() < end && seen[119] == 0;) {
        if (i == e.fk.n) event_base_loop(e.base, EVLOOP_ONCE);
        for (; i < e.fk.n; i++) {
            int k = -1;
            if (sscanf(e.fk.bodies[i], "F line %d", &k) == 1 && k >= 0 && k < 120) seen[k]++;
        }
    }
    TH_ASSERT_EQ_INT(fl_metrics_get(e.m)->fl_checkpoint_fallbacks, 1);
    printf("# %zu records after the restart for 20 new lines\n", e.fk.n - before);
    /* the older generation may repeat a few lines, never skip one */
    for (size_t i = 0; i < before; i++) {
        int k = -1;
        if (sscanf(e.fk.bodies[i], "F line %d", &k) == 1 && k >= 0 && k < 120) seen[k]++;
    }
    for (int k = 0; k < 120; k++) TH_ASSERT_MSG(seen[k] >= 1, "F line %d lost", k);
    env_free(&e);
}

static void t_backpressure_pauses(void)
{
    env e;
    char a[400];
    env_init(&e, "docker", NULL);
    snprintf(a, sizeof a, "%s/a.log", e.logs);
    docker_lines(a, "B", 0, 500);
    e.fk.refuse = 5;
    env_start(&e);
    TH_ASSERT_EQ_INT(run_until(&e, 500, 15000), 500);
    run_ms(&e, 50);
    expect_seq(&e, "B", 0, 500);
    TH_ASSERT_EQ_INT(e.fk.n, 500);
    TH_ASSERT_EQ_INT(e.fk.refused, 5);
    TH_ASSERT(fl_metrics_get(e.m)->fl_backpressure_pauses >= 1);
    TH_ASSERT_EQ_INT(fl_paused(e.fl), 0);
    env_free(&e);
}

static void t_polling_only_many_files(void)
{
    env e;
    char p[400];
    env_init(&e, "docker", "    inotify: false\n    max_open_files: 64\n");
    env_start(&e);
    for (int i = 0; i < 100; i++) {
        snprintf(p, sizeof p, "%s/f%03d.log", e.logs, i);
        char tag[16];
        snprintf(tag, sizeof tag, "M%03d", i);
        docker_lines(p, tag, 0, 5);
    }
    TH_ASSERT_EQ_INT(run_until(&e, 64 * 5, 10000), 64 * 5); /* the limit: 64 at once */
    run_ms(&e, 100);
    TH_ASSERT_EQ_INT(e.fk.n, 64 * 5);
    TH_ASSERT_EQ_INT(fl_files_open(e.fl), 64);
    for (size_t i = 0; i < e.fk.n; i++) { /* deleting files read to the end frees slots */
        int k = -1;
        TH_ASSERT(sscanf(e.fk.bodies[i], "M%d", &k) == 1);
        snprintf(p, sizeof p, "%s/f%03d.log", e.logs, k);
        unlink(p);
    }
    TH_ASSERT_EQ_INT(run_until(&e, 100 * 5, 10000), 100 * 5);
    for (int i = 0; i < 100; i++) {
        char tag[16];
        snprintf(tag, sizeof tag, "M%03d", i);
        expect_seq(&e, tag, 0, 5);
    }
    env_free(&e);
}

/* receivers.filelog in the config: defaults (off), lists, errors with places. */
static void t_config(void)
{
    char err[2048];
    cfg *c = cfg_defaults();
    TH_ASSERT(c != NULL);
    TH_ASSERT_EQ_INT(c->filelog.include.n, 0);
    TH_ASSERT_EQ_STR(c->filelog.positions_dir, "./data/filelog");
    TH_ASSERT_EQ_INT(c->filelog.max_record_size, 1 << 20);
    TH_ASSERT_EQ_INT(c->filelog.flush_updates, 100);
    TH_ASSERT_EQ_INT(c->filelog.flush_interval_ms, 5000);
    TH_ASSERT_EQ_INT(c->filelog.batch_timeout_ms, 200);
    TH_ASSERT_EQ_INT(c->filelog.inotify, 1);
    cfg_free(c);
    static const char ok[] = "receivers:\n  filelog:\n    include: [/a/*.log, \"/b/*-json.log\"]\n"
                             "    exclude:\n      - /a/x.log\n    start_at: beginning\n    format: raw\n";
    TH_ASSERT_EQ_INT(cfg_load_mem("ok.yaml", ok, sizeof ok - 1, &c, err, sizeof err), 0);
    TH_ASSERT_EQ_INT(c->filelog.include.n, 2);
    TH_ASSERT_EQ_STR(c->filelog.include.v[1], "/b/*-json.log");
    TH_ASSERT_EQ_STR(c->filelog.exclude.v[0], "/a/x.log");
    TH_ASSERT_EQ_INT(c->filelog.start_at, 1);
    TH_ASSERT_EQ_INT(c->filelog.format, 1);
    cfg_free(c);
    static const struct { const char *yaml, *msg; } bad[] = {
        { "receivers:\n  filelog:\n    include: /a/*.log\n",
          "bad.yaml:3:14: receivers.filelog.include: expected a list of strings, got a scalar" },
        { "receivers:\n  filelog:\n    include: [\"\"]\n",
          "bad.yaml:3:15: receivers.filelog.include[0]: must not be empty" },
        { "receivers:\n  filelog:\n    include: [[x]]\n",
          "bad.yaml:3:15: receivers.filelog.include[0]: expected a non-empty string, got a list" },
        { "receivers:\n  filelog:\n    start_at: middle\n", "bad.yaml:3:15: receivers.filelog.start_at:" },
        { "receivers:\n  filelog:\n    tail: yes\n", "bad.yaml:3:5: receivers.filelog.tail: unknown key" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = NULL;
        TH_ASSERT_EQ_INT(cfg_load_mem("bad.yaml", bad[i].yaml, strlen(bad[i].yaml), &c, err, sizeof err), SW_EINVAL);
        TH_ASSERT_MSG(strstr(err, bad[i].msg) != NULL, "case %zu: %s", i, err);
    }
}

int main(int argc, char **argv)
{
    log_setup(getenv("FL_DEBUG") ? LOG_LVL_DEBUG : LOG_LVL_ERROR, 0);
    if (argc > 1) {
        if (strcmp(argv[1], "rotation") == 0) TH_RUN(t_rotation_rename);
        if (strcmp(argv[1], "copytruncate") == 0) TH_RUN(t_copytruncate);
        if (strcmp(argv[1], "polling") == 0) TH_RUN(t_polling_only_many_files);
        return th_done();
    }
    TH_RUN(t_config);
    TH_RUN(t_tail_in_order);
    TH_RUN(t_partial_joined_and_malformed);
    TH_RUN(t_raw_and_exclude);
    TH_RUN(t_rotation_rename);
    TH_RUN(t_copytruncate);
    TH_RUN(t_deleted_while_read);
    TH_RUN(t_position_waits_for_delivery);
    TH_RUN(t_restart_resumes);
    TH_RUN(t_corrupt_positions_fall_back);
    TH_RUN(t_backpressure_pauses);
    TH_RUN(t_polling_only_many_files);
    return th_done();
}
