/* itest_durable_kill.c — queue.mode durable under kill -9: spillway is
 * killed ten times at random moments while four connections send as fast
 * as it answers (the mock upstream stays up and is the ground truth).
 * After each kill, before the restart, `spillway dlq verify` exits 0 (a
 * torn tail of an open segment, journal or main area, is reported TORN,
 * not as corruption). At the end every span whose request was answered
 * 200 has arrived upstream — including the requests answered in the last
 * moments before each kill — and the duplicates stay within the bound
 * docs/durability.md gives per kill.
 *
 * As a kill rarely lands inside a record's write, the first kills that
 * find an open journal segment also leave a simulated torn tail (the
 * first 1000 bytes of its first record appended to its end): verify must
 * report it TORN and exit 0, and the restart must cut it.
 *
 * The kill moment: after a random 150..650 ms of load, one more request
 * is written on every connection, and spillway is killed after a random
 * 0..3 ms, while those are being journaled or answered; whatever of them
 * was answered 200 must arrive. The seed is printed; SW_KILL_SEED repeats
 * a run. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define KILLS 10
#define CONNS 4
#define SPANS 10           /* per request: small requests, many of them */
#define DRAIN_MS 60000
/* Duplicates one kill may cause (docs/durability.md), in requests, for the
 * configuration below: the batches in flight (max_in_flight 2 x 64 KiB of
 * ~3.3 KB requests = 40), the acknowledgements of one ingest loop pass
 * (at most one more batch, 20), a group commit of spilled items (none
 * here: the breaker does not open), the replay cursor (64 records) and a
 * kill during the start-up move (64 records). */
#define DUP_REQS_PER_KILL (40 + 20 + 64 + 64)

typedef struct kill_run {
    th_stack *s;
    th_lines *must, *may;
    uint32_t seed;      /* content seed of the next request */
    uint32_t rnd;       /* kill-moment generator */
    long ok, refused, unanswered, last_ok, torn;
} kill_run;

static uint32_t next_rnd(kill_run *k)
{
    k->rnd = k->rnd * 1664525u + 1013904223u;
    return k->rnd >> 8;
}

static void send_request(kill_run *k, th_http *c, th_otlp *d)
{
    char head[256];
    int n = snprintf(head, sizeof head,
                     "POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
                     "Content-Type: application/x-protobuf\r\nContent-Length: %zu\r\n\r\n",
                     th_stack_otlp_port(k->s), d->pb_len);
    TH_ASSERT(th_http_send_raw(c, head, (size_t)n) == 0);
    TH_ASSERT(th_http_send_raw(c, d->pb, d->pb_len) == 0);
}

/* Reads the answer to d on c: 200 puts its lines in must (acknowledged),
 * anything else in may (refused or unanswered: never required). */
static void settle(kill_run *k, th_http *c, th_otlp *d, int last)
{
    const th_resp *r = th_http_read_response(c);
    int ok = r && r->status == 200;
    TH_ASSERT(th_lines_add(ok ? k->must : k->may, d->lines) == 0);
    k->ok += ok;
    k->last_ok += ok && last;
    k->refused += r && r->status != 200;
    k->unanswered += !r;
}

/* Load for a random while, then the kill in the middle of a round. */
static void run_and_kill(kill_run *k, int run)
{
    th_http *c[CONNS];
    th_otlp *d[CONNS];
    for (int i = 0; i < CONNS; i++) TH_ASSERT((c[i] = th_stack_client(k->s)) != NULL);
    int64_t until = th_now_ms() + 150 + (int64_t)(next_rnd(k) % 500);
    for (int last = 0; !last;) {
        last = th_now_ms() >= until;
        for (int i = 0; i < CONNS; i++) {
            TH_ASSERT((d[i] = th_otlp_new(SIG_TRACES, k->seed++, SPANS)) != NULL);
            send_request(k, c[i], d[i]);
        }
        if (last) {
            int nap = (int)(next_rnd(k) % 4);
            if (nap) th_nap_ms(nap);
            TH_ASSERT_MSG(th_stack_stop_spillway(k->s, SIGKILL, 5000, NULL) == 0,
                          "kill -9 number %d", run);
        }
        for (int i = 0; i < CONNS; i++) {
            settle(k, c[i], d[i], last);
            th_otlp_free(d[i]);
        }
    }
    for (int i = 0; i < CONNS; i++) th_http_free(c[i]);
}

/* `spillway dlq verify` on the dead collector's directory must pass. */
static void verify_after_kill(kill_run *k, int run)
{
    char *out = NULL;
    int rc = th_stack_dlq_verify(k->s, run, &out);
    for (const char *p = out; p && (p = strstr(p, "TORN")) != NULL; p += 4) k->torn++;
    free(out);
    TH_ASSERT_MSG(rc == 0, "spillway dlq verify exited %d after kill -9 number %d", rc, run);
}

#define TORN_BYTES 1000
#define TORN_MAX 2

/* The open journal segment's name from verify's output ("" if none). */
static void open_journal_segment(const char *out, char *name, size_t len)
{
    const char *j = out ? strstr(out, "journal area") : NULL;
    const char *open = j ? strstr(j, ": open") : NULL;
    name[0] = '\0';
    if (!open) return;
    const char *line = open;
    while (line > j && line[-1] != '\n') line--;
    line += strspn(line, "OK ");
    snprintf(name, len, "%.*s", (int)(open - line), line);
}

/* Appends TORN_BYTES of the open journal segment's first record to its
 * end, as a kill in the middle of a write leaves it; verify must report
 * it. Returns 1 if a tail was made. */
static int make_torn_tail(kill_run *k, char *name, size_t len)
{
    char *out = NULL, path[400];
    size_t flen = 0;
    TH_ASSERT(th_stack_dlq_cmd(k->s, "verify", &out) == 0);
    open_journal_segment(out, name, len);
    free(out);
    if (!name[0]) return 0;
    snprintf(path, sizeof path, "%s/journal/%s", th_stack_dlq_dir(k->s), name);
    char *seg = th_read_file(path, &flen);
    TH_ASSERT(seg);
    int made = flen >= 128 + TORN_BYTES;
    if (made) {
        FILE *f = fopen(path, "ab");
        TH_ASSERT(f);
        size_t w = fwrite(seg + 128, 1, TORN_BYTES, f);
        TH_ASSERT(fclose(f) == 0 && w == TORN_BYTES);
    }
    free(seg);
    if (!made) return 0;
    char want[64];
    snprintf(want, sizeof want, "TORN    %s", name);
    int rc = th_stack_dlq_cmd(k->s, "verify", &out);
    int seen = out && strstr(out, want) != NULL;
    free(out);
    TH_ASSERT_MSG(rc == 0, "verify exited %d on a torn journal tail", rc);
    TH_ASSERT_MSG(seen, "verify does not report '%s'", want);
    return 1;
}

/* Waits for the recovery log line that cuts the torn tail of `name`. */
static void wait_cut(kill_run *k, const char *name)
{
    char path[300], want[128];
    snprintf(path, sizeof path, "%s/spillway.log", th_stack_dir(k->s));
    snprintf(want, sizeof want, "open segment %s: cut %d bytes", name, TORN_BYTES);
    int64_t deadline = th_now_ms() + 10000;
    for (;;) {
        char *log = th_read_file(path, NULL);
        int found = log && strstr(log, want);
        free(log);
        if (found) return;
        TH_ASSERT_MSG(th_now_ms() < deadline, "no log line '%s' after the restart", want);
        th_nap_ms(20);
    }
}

static void t_kill9_loop_durable(void)
{
    th_stack_opts o = {.queue_yaml = "  mode: durable\n",
                       .dlq_fsync = "always",
                       .batch_max_bytes = "64KiB",
                       .dlq_yaml = "  segment_size: 1MiB\n  replay: { rate: 64MiB }\n",
                       .exporter_yaml = "    max_in_flight: 2\n"};
    const char *env = getenv("SW_KILL_SEED");
    kill_run k = {.seed = 90000, .rnd = env ? (uint32_t)strtoul(env, NULL, 10)
                                            : (uint32_t)time(NULL)};
    printf("# kill-moment seed %u (SW_KILL_SEED repeats it)\n", k.rnd);
    k.s = th_stack_start(&o);
    TH_ASSERT_MSG(k.s, "stack did not start");
    k.must = th_lines_new();
    k.may = th_lines_new();
    TH_ASSERT(k.must && k.may);
    int64_t t0 = th_now_ms();
    int simulated = 0;
    for (int run = 1; run <= KILLS; run++) {
        char torn[32] = "";
        run_and_kill(&k, run);
        verify_after_kill(&k, run);
        if (simulated < TORN_MAX && make_torn_tail(&k, torn, sizeof torn)) simulated++;
        else torn[0] = '\0';
        TH_ASSERT_MSG(th_stack_restart_spillway(k.s) == 0, "restart after kill -9 number %d", run);
        if (torn[0]) wait_cut(&k, torn);
    }
    char why[1024];
    th_cover cov;
    int rc = th_stack_wait_cover(k.s, SIG_TRACES, k.must, k.may, DRAIN_MS, &cov, why, sizeof why);
    long bound = (long)KILLS * DUP_REQS_PER_KILL * SPANS;
    printf("# %d kills in %.1f s: %ld requests answered 200 (%ld of them in the last round "
           "before a kill), %ld refused, %ld unanswered; verify saw %ld torn tails after kills, "
           "%d more simulated and cut\n",
           KILLS, (double)(th_now_ms() - t0) / 1000.0, k.ok, k.last_ok, k.refused, k.unanswered,
           k.torn, simulated);
    printf("# upstream received %ld spans: %ld required, %ld missing, %ld duplicates "
           "(bound %ld), %ld of the unacknowledged spans\n",
           cov.received, cov.required, cov.missing, cov.dups, bound, cov.optional);
    TH_ASSERT_MSG(rc == 0, "acknowledged spans: %s", why);
    TH_ASSERT_MSG(k.ok > 0, "no request was answered 200");
    TH_ASSERT_MSG(simulated > 0, "no journal segment was open after any of the %d kills", KILLS);
    TH_ASSERT_MSG(cov.dups <= bound, "%ld duplicates, over the documented bound %ld", cov.dups,
                  bound);
    int st = 0;
    TH_ASSERT_MSG(th_stack_stop_spillway(k.s, SIGTERM, 15000, &st) == 0, "SIGTERM");
    TH_ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status %d after SIGTERM", st);
    char *out = NULL;
    rc = th_stack_dlq_cmd(k.s, "verify", &out);
    free(out);
    TH_ASSERT_MSG(rc == 0, "spillway dlq verify exited %d after the final graceful stop", rc);
}

int main(void)
{
    TH_ICASE(t_kill9_loop_durable);
    return th_done();
}
