/* test_dlq_scale.c — memory does not grow with the DLQ: a process that
 * opens a DLQ of 2,000 segments (16,000 records, ~32 MiB on disk), replays
 * and acknowledges all of it needs about the same peak RSS as one doing the
 * same with 20 segments. Each measurement runs in a fresh process (this
 * program executed again with --measure DIR; the DLQ was written
 * beforehand), so the figures are that process's own VmHWM and VmRSS. The figures are printed; the assertion is a
 * generous bound on the difference (2 MiB, against 32 MiB of records on
 * disk) — memory that grew per record or per byte would pass it many times
 * over. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dlq/dlq.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"

#define REC_LEN 2000
#define RECS_PER_SEG 8
#define SEG_SIZE 16384 /* 8 records of ~2 KiB (barely compressible) */
#define BIG_SEGS 2000
#define SMALL_SEGS 20
#define DIFF_MAX_KIB 2048

typedef struct scale_result {
    long open_rss_kib, hwm_kib, rss_kib;
    long records;
    double open_ms, replay_ms;
} scale_result;

static void opts_init(dlq_opts *o, const char *dir)
{
    memset(o, 0, sizeof *o);
    o->dir = dir;
    o->segment_size = SEG_SIZE;
    o->max_size = 1ull << 40;
    o->compression_level = 1;
    o->fsync = CFG_FSYNC_NEVER;
}

static item *mk(uint32_t i)
{
    uint8_t d[REC_LEN];
    uint64_t x = 0x9E3779B97F4A7C15ull * (i + 1);
    for (size_t k = 0; k < sizeof d; k++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        d[k] = (uint8_t)x;
    }
    item *it = item_new(SIG_LOGS, CLASS_NORMAL, i, clock_mono_ns(), d, sizeof d);
    if (!it) abort();
    return it;
}

static void on_done(void *arg, item *it, int status)
{
    if (status != 0) ++*(int *)arg;
    item_free(it);
}

/* Writes segs full segments (the last one sealed by dlq_close). */
static void write_dlq(const char *dir, int segs)
{
    dlq_opts o;
    opts_init(&o, dir);
    dlq *d = NULL;
    int failed = 0;
    TH_ASSERT_EQ_INT(dlq_open(&o, NULL, &d), 0);
    dlq_port *p = dlq_port_new(d);
    TH_ASSERT(p);
    for (uint32_t i = 0; i < (uint32_t)(segs * RECS_PER_SEG); i++) {
        item *it = mk(i);
        int rc;
        while ((rc = dlq_append(p, it, on_done, &failed)) == SW_EFULL) dlq_port_wait(p, 100);
        TH_ASSERT_EQ_INT(rc, 0);
        dlq_port_dispatch(p);
    }
    while (dlq_port_pending(p)) dlq_port_wait(p, 100);
    TH_ASSERT_EQ_INT(failed, 0);
    dlq_port_free(p);
    dlq_close(d);
}

static long status_kib(const char *key)
{
    char line[256];
    long v = -1;
    size_t n = strlen(key);
    FILE *f = fopen("/proc/self/status", "r");
    if (!f) return -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, key, n) == 0) v = strtol(line + n, NULL, 10);
    fclose(f);
    return v;
}

/* Child: open, replay and acknowledge everything, close; report. */
static void measure_child(const char *dir, int wfd)
{
    scale_result res = {0};
    dlq_opts o;
    opts_init(&o, dir);
    dlq *d = NULL;
    int64_t t0 = clock_mono_ns();
    if (dlq_open(&o, NULL, &d) != 0) _exit(2);
    dlq_wait_recovered(d);
    int64_t t1 = clock_mono_ns();
    res.open_rss_kib = status_kib("VmRSS:");
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    if (!r) _exit(3);
    for (;;) {
        item *it = NULL;
        dlq_pos pos;
        if (dlq_reader_next(r, &it, &pos) != 0) _exit(4);
        if (!it) break;
        res.records++;
        dlq_reader_ack(r, &pos);
        item_free(it);
    }
    dlq_reader_free(r);
    res.replay_ms = (double)(clock_mono_ns() - t1) / 1e6;
    res.open_ms = (double)(t1 - t0) / 1e6;
    res.hwm_kib = status_kib("VmHWM:");
    res.rss_kib = status_kib("VmRSS:");
    dlq_close(d);
    if (write(wfd, &res, sizeof res) != (ssize_t)sizeof res) _exit(5);
    _exit(0);
}

static void measure(const char *dir, scale_result *res)
{
    int fds[2];
    TH_ASSERT(pipe(fds) == 0);
    fflush(NULL);
    pid_t pid = fork();
    TH_ASSERT(pid >= 0);
    if (pid == 0) {
        char fd[16];
        snprintf(fd, sizeof fd, "%d", fds[1]);
        close(fds[0]);
        /* AddressSanitizer keeps freed memory in a quarantine (growing RSS
         * with every record freed); measure the allocator's own reuse. */
        if (th_proc_has_asan(getppid()))
            setenv("ASAN_OPTIONS", "quarantine_size_mb=0:thread_local_quarantine_size_kb=0", 1);
        execl("/proc/self/exe", "test_dlq_scale", "--measure", dir, fd, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    ssize_t n = read(fds[0], res, sizeof *res);
    close(fds[0]);
    int status = 0;
    TH_ASSERT(waitpid(pid, &status, 0) == pid);
    TH_ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "measuring child failed (%d)",
                  status);
    TH_ASSERT_EQ_INT(n, (ssize_t)sizeof *res);
}

static long dir_kib(const char *dir)
{
    char cmd[512], out[64] = "";
    snprintf(cmd, sizeof cmd, "du -sk '%s'", dir);
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    if (!fgets(out, sizeof out, f)) out[0] = '\0';
    pclose(f);
    return strtol(out, NULL, 10);
}

static void t_rss_independent_of_dlq_size(void)
{
    char small[256], big[256];
    TH_ASSERT(th_tmpdir(small, sizeof small) == 0);
    TH_ASSERT(th_tmpdir(big, sizeof big) == 0);
    write_dlq(small, SMALL_SEGS);
    write_dlq(big, BIG_SEGS);
    long small_kib = dir_kib(small), big_kib = dir_kib(big);
    scale_result s, b;
    measure(small, &s);
    measure(big, &b);
    printf("# small DLQ: %d segments, %ld records, %ld KiB on disk: open %.1f ms (RSS %ld KiB), "
           "replay %.1f ms, then RSS %ld KiB, peak %ld KiB\n", SMALL_SEGS, s.records, small_kib,
           s.open_ms, s.open_rss_kib, s.replay_ms, s.rss_kib, s.hwm_kib);
    printf("# big DLQ:   %d segments, %ld records, %ld KiB on disk: open %.1f ms (RSS %ld KiB), "
           "replay %.1f ms, then RSS %ld KiB, peak %ld KiB\n", BIG_SEGS, b.records, big_kib,
           b.open_ms, b.open_rss_kib, b.replay_ms, b.rss_kib, b.hwm_kib);
    printf("# peak RSS difference %ld KiB for %ld times the records\n", b.hwm_kib - s.hwm_kib,
           s.records ? b.records / s.records : 0);
    TH_ASSERT_EQ_INT(s.records, SMALL_SEGS * RECS_PER_SEG);
    TH_ASSERT_EQ_INT(b.records, BIG_SEGS * RECS_PER_SEG);
    TH_ASSERT(big_kib > 16 * DIFF_MAX_KIB); /* the bound below is small against the data */
    TH_ASSERT_MSG(b.hwm_kib - s.hwm_kib < DIFF_MAX_KIB,
                  "peak RSS %ld KiB with %d segments vs %ld KiB with %d", b.hwm_kib, BIG_SEGS,
                  s.hwm_kib, SMALL_SEGS);
    th_rmtree(small);
    th_rmtree(big);
}

int main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "--measure") == 0) measure_child(argv[2], (int)strtol(argv[3], NULL, 10));
    TH_RUN(t_rss_independent_of_dlq_size);
    return th_done();
}
