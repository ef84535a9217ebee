/* test_exp_poison.c — permanent refusals: 413 splitting and the DLQ's
 * rejected area, against a scripted upstream (testing/lib/th_upstream.h).
 *
 * Items are valid-looking requests: one field-1 entry each whose payload
 * names the item ("ITEM-0003", "POISON-0005"), so the upstream can tell
 * which items a request holds. The upstream answers 413 to bodies over a
 * size (one item fits, two do not), 400 with a text message to anything
 * holding a poison item, and 200 otherwise, recording what it accepted.
 */
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config/cfg.h"
#include "dlq/dlq.h"
#include "dlq/dlq_cmd.h"
#include "exporters/otlp/exporter.h"
#include "queue/apq.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "testing/lib/th.h"
#include "testing/lib/th_wait.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_upstream.h"
#include "dlq/dlq_metrics.h"
#include "exporters/otlp/exp_metrics.h"

#define ITEM_PAYLOAD 200            /* bytes after the 3-byte field header */
#define ITEM_LEN (ITEM_PAYLOAD + 3)
#define MAX_ITEMS 64
#define POISON_MSG "span 5: attribute value too long"

/* ---- the upstream's rules and what it saw (its mutex) ------------------- */

typedef struct rules {
    size_t max_body;                /* 413 above this (0: no limit) */
    int delivered[MAX_ITEMS];       /* times each good item was accepted */
    int poison_seen;                /* requests that held a poison item */
} rules;

/* Calls fn(arg, id, poison) for each item of a body; -1 if malformed. */
static int walk_items(const uint8_t *p, size_t len, void (*fn)(void *, int, int), void *arg)
{
    size_t off = 0;
    while (off < len) {
        if (len - off < ITEM_LEN || p[off] != 0x0a) return -1;
        char name[16];
        memcpy(name, p + off + 3, sizeof name - 1);
        name[sizeof name - 1] = '\0';
        int id = -1, poison = strncmp(name, "POISON-", 7) == 0;
        if (sscanf(name + (poison ? 7 : 5), "%4d", &id) != 1 || id < 0 || id >= MAX_ITEMS)
            return -1;
        if (fn) fn(arg, id, poison);
        off += ITEM_LEN;
    }
    return 0;
}

static void has_poison(void *arg, int id, int poison)
{
    (void)id;
    if (poison) *(int *)arg = 1;
}

static void mark_delivered(void *arg, int id, int poison)
{
    (void)poison;
    ((rules *)arg)->delivered[id]++;
}

static void decide(void *arg, const char *path, const uint8_t *body, size_t len, th_up_reply *r)
{
    rules *ru = arg;
    int poison = 0;
    (void)path;
    if (walk_items(body, len, has_poison, &poison) != 0) {
        r->code = 400; /* not what the test sent */
        return;
    }
    if (ru->max_body && len > ru->max_body) {
        r->code = 413;
        return;
    }
    if (poison) {
        ru->poison_seen++;
        r->code = 400;
        r->ctype = "text/plain";
        r->body_len = (size_t)snprintf(r->body, sizeof r->body, "%s", POISON_MSG);
        return;
    }
    walk_items(body, len, mark_delivered, ru);
}

/* ---- fixture -------------------------------------------------------------- */

typedef struct fx {
    rules ru;
    th_upstream *u;
    cfg *c;
    sw_metrics *m;
    apq *q;
    dlq *d;
    exporter *e;
    char dir[256];
    int appended;
} fx;

static fx F;

static void fx_begin(size_t max_body, uint64_t rejected_max)
{
    memset(&F, 0, sizeof F);
    F.ru.max_body = max_body;
    F.u = th_upstream_start(decide, &F.ru);
    F.c = cfg_defaults();
    F.m = metrics_new();
    TH_ASSERT(F.c && F.m);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%u", (unsigned)th_upstream_port(F.u));
    free(F.c->exporter.endpoint);
    F.c->exporter.endpoint = strdup(url);
    TH_ASSERT(F.c->exporter.endpoint);
    F.c->exporter.compression = CFG_COMP_GZIP; /* halves are compressed anew */
    F.c->exporter.max_in_flight = 1;
    F.c->exporter.batch_timeout_ms = 20;
    F.c->exporter.retry_initial_ms = 10;
    F.c->exporter.retry_max_ms = 40;
    F.c->dlq.replay_rate = 0; /* unpaced */
    F.c->dlq.replay_interleave_ms = 100;
    apq_opts o;
    apq_opts_default(&o);
    o.max_bytes = 64u << 20;
    o.spill_threshold = 1.0;
    o.m = F.m;
    F.q = apq_new(&o);
    TH_ASSERT(F.q);
    TH_ASSERT(th_tmpdir(F.dir, sizeof F.dir) == 0);
    dlq_opts d = {.dir = F.dir, .segment_size = 64u << 10, .max_size = 64u << 20,
                  .compression_level = 3, .fsync = CFG_FSYNC_NEVER,
                  .rejected_max = rejected_max};
    TH_ASSERT_EQ_INT(dlq_open(&d, F.m, &F.d), 0);
    dlq_wait_recovered(F.d);
}

static void fx_done(void)
{
    exp_free(F.e);
    dlq_close(F.d);
    apq_free(F.q);
    th_upstream_stop(F.u);
    metrics_free(F.m);
    cfg_free(F.c);
    th_rmtree(F.dir);
    memset(&F, 0, sizeof F);
}

static void start_exporter(void)
{
    F.e = exp_new(F.c, F.q, F.m);
    TH_ASSERT(F.e);
    exp_set_dlq(F.e, F.d);
    TH_ASSERT_EQ_INT(exp_start(F.e), 0);
}

/* An item: field 1, length ITEM_PAYLOAD, payload naming it. */
static item *mk_item(int id, int poison, uint32_t records)
{
    uint8_t data[ITEM_LEN];
    data[0] = 0x0a;
    data[1] = (uint8_t)(0x80 | (ITEM_PAYLOAD & 0x7f));
    data[2] = (uint8_t)(ITEM_PAYLOAD >> 7);
    memset(data + 3, '.', ITEM_PAYLOAD);
    char name[16];
    snprintf(name, sizeof name, poison ? "POISON-%04d" : "ITEM-%04d", id);
    memcpy(data + 3, name, strlen(name));
    item *it = item_new(SIG_TRACES, CLASS_HIGH, records, clock_mono_ns(), data, sizeof data);
    TH_ASSERT(it);
    return it;
}

static uint64_t ctr(_Atomic uint64_t *c) { return atomic_load(c); }


static uint64_t rejected_records(void)
{
    dlq_rej_stats st;
    dlq_rejected_stats(F.d, &st);
    return st.records;
}

/* Every good item 0..n-1 except `poison` accepted exactly once. */
static void assert_delivered_once(int n, int poison)
{
    th_upstream_lock(F.u);
    int bad = -1;
    for (int i = 0; i < n && bad < 0; i++)
        if (F.ru.delivered[i] != (i == poison ? 0 : 1)) bad = i;
    int times = bad >= 0 ? F.ru.delivered[bad] : 0;
    th_upstream_unlock(F.u);
    TH_ASSERT_MSG(bad < 0, "item %d accepted %d times", bad, times);
}

/* The rejected area's dump holds exactly one record: the poison item with
 * the upstream's status and message. */
static void assert_rejected_dump(int status, const char *msg)
{
    char *s = NULL, want[128];
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    TH_ASSERT(f);
    int rc = dlq_cmd_dump_rejected(F.dir, f);
    fclose(f);
    snprintf(want, sizeof want, "\"status\":%d,\"message\":\"%s\"", status, msg);
    int lines = 0;
    for (char *p = s; (p = strchr(p, '\n')) != NULL; p++) lines++;
    int found = strstr(s, want) != NULL;
    char head[200];
    snprintf(head, sizeof head, "%s", s);
    free(s);
    TH_ASSERT_EQ_INT(rc, 0);
    TH_ASSERT_EQ_INT(lines, 1);
    TH_ASSERT_MSG(found, "dump lacks %s: %s", want, head);
}

/* ---- cases ---------------------------------------------------------------- */

/* One batch of 8 items, item 5 poison; one item fits under the upstream's
 * size limit, two do not: 413 halves the batch down to single items (15
 * requests: 7 × 413, 7 × 200, 1 × 400), the good items are delivered once,
 * the poison item lands in the rejected area with status 400 and the
 * message, nothing is retried and nothing goes to the main DLQ. */
static void t_poison_isolated_by_413(void)
{
    fx_begin(ITEM_LEN + ITEM_LEN / 2, 0);
    for (int i = 0; i < 8; i++) TH_ASSERT_EQ_INT(apq_push(F.q, mk_item(i, i == 5, 3)), 0);
    start_exporter(); /* queued together: sent as one batch */
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == 21 && rejected_records() == 1,
             10000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    assert_delivered_once(8, 5);
    TH_ASSERT_EQ_INT(th_upstream_requests(F.u), 15);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_requests[SIG_TRACES][413]), 7);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_requests[SIG_TRACES][200]), 7);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_requests[SIG_TRACES][400]), 1);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_REJECTED]), 3);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_DROPPED]), 0);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_retries), 0);
    TH_ASSERT_EQ_INT(ctr(&dlq_metrics_get(F.m)->dlq_written_bytes), 0); /* main area untouched */
    TH_ASSERT_EQ_INT(exp_healthy(F.e), 1);
    assert_rejected_dump(400, POISON_MSG);
    fx_done();
}

/* A single item answered 413 is permanent: rejected area, status 413, one
 * request. */
static void t_single_item_413(void)
{
    fx_begin(ITEM_LEN / 2, 0);
    TH_ASSERT_EQ_INT(apq_push(F.q, mk_item(1, 0, 2)), 0);
    start_exporter();
    WAIT_FOR(rejected_records() == 1, 10000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    TH_ASSERT_EQ_INT(th_upstream_requests(F.u), 1);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_REJECTED]), 2);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_retries), 0);
    assert_rejected_dump(413, "");
    fx_done();
}

/* The rejected area is full: the refused item is counted dropped too (and
 * logged), the good ones still go out. */
static void t_rejected_area_full(void)
{
    fx_begin(0, 64); /* too small for any record */
    for (int i = 0; i < 3; i++) TH_ASSERT_EQ_INT(apq_push(F.q, mk_item(i, i == 1, 4)), 0);
    start_exporter(); /* one batch with the poison item: refused as a whole */
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_DROPPED]) == 12, 10000);
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_REJECTED]), 12);
    TH_ASSERT_EQ_INT(rejected_records(), 0);
    dlq_rej_stats st;
    dlq_rejected_stats(F.d, &st);
    TH_ASSERT_EQ_INT(st.refused, 3);
    fx_done();
}

static void appended(void *arg, item *it, int status)
{
    (void)arg;
    if (status == 0) F.appended++;
    else item_free(it);
}

/* A fresh reader of the main area finds nothing. */
static int main_area_empty(void)
{
    dlq_reader *r = dlq_reader_new(F.d, 0, 0);
    TH_ASSERT(r);
    item *it = NULL;
    dlq_pos pos;
    int found = 0;
    for (int i = 0; i < 20 && !found; i++) {
        TH_ASSERT_EQ_INT(dlq_reader_next(r, &it, &pos), 0);
        if (it) found = 1;
        else th_nap_ms(5);
    }
    item_free(it);
    dlq_reader_free(r);
    return !found;
}

/* Replay of records the upstream refuses: 6 records in the main area,
 * record 3 poison, the upstream's size limit one record. The replay batch
 * is split by 413s, the good records are delivered once, the poison one
 * goes to the rejected area (not back to the main area: no loop), and the
 * main area empties. */
static void t_replay_poison_to_rejected(void)
{
    fx_begin(ITEM_LEN + ITEM_LEN / 2, 0);
    dlq_port *p = dlq_port_new(F.d);
    TH_ASSERT(p);
    for (int i = 0; i < 6; i++) TH_ASSERT_EQ_INT(dlq_append(p, mk_item(i, i == 3, 1), appended, NULL), 0);
    while (dlq_port_pending(p) > 0) dlq_port_wait(p, 100);
    dlq_port_free(p);
    TH_ASSERT_EQ_INT(F.appended, 6);
    uint64_t written = ctr(&dlq_metrics_get(F.m)->dlq_written_bytes);
    F.c->exporter.compression = CFG_COMP_NONE; /* bodies reference the items: halves copy */
    start_exporter();
    WAIT_FOR(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_SENT]) == 5 && rejected_records() == 1,
             10000);
    WAIT_FOR(ctr(&dlq_metrics_get(F.m)->dlq_replayed_bytes) == 6 * ITEM_LEN, 10000); /* acked, poison included */
    WAIT_FOR(atomic_load(&dlq_metrics_get(F.m)->dlq_bytes) == 0, 10000);             /* segments deleted */
    TH_ASSERT_EQ_INT(exp_stop(F.e, 2000), 0);
    assert_delivered_once(6, 3);
    TH_ASSERT_EQ_INT(ctr(&dlq_metrics_get(F.m)->dlq_written_bytes), written); /* nothing re-appended */
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_REJECTED]), 1);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_items[SIG_TRACES][EXP_RESULT_DROPPED]), 0);
    TH_ASSERT_EQ_INT(ctr(&exp_metrics_get(F.m)->exp_retries), 0);
    th_upstream_lock(F.u);
    int seen = F.ru.poison_seen;
    th_upstream_unlock(F.u);
    TH_ASSERT_EQ_INT(seen, 1);
    printf("# replay: %d requests for 6 records (413 splits included)\n", th_upstream_requests(F.u));
    TH_ASSERT(main_area_empty());
    assert_rejected_dump(400, POISON_MSG);
    fx_done();
}

int main(void)
{
    evthread_use_pthreads();
    signal(SIGPIPE, SIG_IGN);
    log_setup(LOG_LVL_DEBUG, 0);
    if (!getenv("TEST_LOG")) atomic_store(&log_level_now, -1); /* refusals are logged by design */
    TH_RUN(t_poison_isolated_by_413);
    TH_RUN(t_single_item_413);
    TH_RUN(t_rejected_area_full);
    TH_RUN(t_replay_poison_to_rejected);
    return th_done();
}
