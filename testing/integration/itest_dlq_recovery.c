/* itest_dlq_recovery.c — what survives a stop and a restart of spillway:
 *   - corruption: one flipped byte in a sealed segment's body makes
 *     `spillway dlq verify` exit 1 naming it; at the next start it is
 *     quarantined (dlq.dir/quarantine/, spillway_dlq_corrupt_segments_total)
 *     and none of its records is sent, while the other segments replay; a
 *     truncated header, a zero-length file and garbage files dropped into
 *     the directory are quarantined the same way; spillway keeps running;
 *   - graceful shutdown with a full memory queue and a dead upstream:
 *     SIGTERM exits 0 with everything acknowledged in the DLQ, and a
 *     restart with the upstream alive delivers all of it;
 *   - offline replay: after the same SIGTERM, `spillway dlq replay --to`
 *     the mock delivers all of it and leaves the DLQ empty;
 *   - priority survives the disk: critical/high/normal items spilled keep
 *     their class in the DLQ records (`spillway dlq dump`) and arrive after
 *     the restart.
 * The upstream is down (mock outage, 503 or refused) while data is sent,
 * so everything acknowledged is either in memory or in the DLQ at SIGTERM. */
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "testing/lib/th.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

#define DRAIN_MS 60000
#define MAX_REQUESTS 2000
#define MAX_SEGS 64

/* Upstream stuck: the breaker never opens, retries never give up, so data
 * stays where intake put it (memory or the DLQ) until SIGTERM. */
#define STUCK_EXPORTER "    max_in_flight: 1\n    circuit_breaker: { consecutive_failures: 1000000 }\n"

static const char *metrics_text(th_stack *s)
{
    const char *text = th_stack_metrics(s);
    TH_ASSERT_MSG(text, "GET /metrics failed");
    return text;
}

static double metric(th_stack *s, const char *name, const char *labels)
{
    return th_prom_sum(metrics_text(s), name, labels, NULL);
}

/* Sends d, which must be accepted, and records its lines. */
static void send_ok(th_http *c, const th_otlp *d, th_lines *sent)
{
    char why[512];
    TH_ASSERT_MSG(th_send_ok(c, d, sent, why, sizeof why) == 0, "%s", why);
}

static void stop_ok(th_stack *s)
{
    int st = 0;
    TH_ASSERT_MSG(th_stack_stop_spillway(s, SIGTERM, 20000, &st) == 0, "SIGTERM");
    TH_ASSERT_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "exit status 0x%x after SIGTERM", st);
}

static void print_text(const char *text)
{
    for (const char *p = text; p && *p;) {
        const char *nl = strchr(p, '\n');
        printf("#   %.*s\n", nl ? (int)(nl - p) : (int)strlen(p), p);
        p = nl ? nl + 1 : NULL;
    }
}

/* ---- spillway dlq dump ---- */

/* Content lines of every span of an OTLP/JSON traces request; the classes
 * the rules give its resources' service.name OR-ed into *classes (bit per
 * class, from `klass_of`). */
static void request_lines(json_object *req, th_lines *l, unsigned *classes,
                          int (*klass_of)(const char *service))
{
    json_object *rss, *sss, *spans, *v;
    char line[512];
    if (!json_object_object_get_ex(req, "resourceSpans", &rss)) return;
    for (size_t i = 0; i < json_object_array_length(rss); i++) {
        json_object *rs = json_object_array_get_idx(rss, i), *attrs;
        if (klass_of && json_object_object_get_ex(rs, "resource", &v) &&
            json_object_object_get_ex(v, "attributes", &attrs)) {
            for (size_t a = 0; a < json_object_array_length(attrs); a++) {
                json_object *kv = json_object_array_get_idx(attrs, a), *k, *val, *sv;
                if (json_object_object_get_ex(kv, "key", &k) &&
                    strcmp(json_object_get_string(k), "service.name") == 0 &&
                    json_object_object_get_ex(kv, "value", &val) &&
                    json_object_object_get_ex(val, "stringValue", &sv))
                    *classes |= 1u << klass_of(json_object_get_string(sv));
            }
        }
        if (!json_object_object_get_ex(rs, "scopeSpans", &sss)) continue;
        for (size_t j = 0; j < json_object_array_length(sss); j++) {
            if (!json_object_object_get_ex(json_object_array_get_idx(sss, j), "spans", &spans))
                continue;
            for (size_t k = 0; k < json_object_array_length(spans); k++) {
                json_object *sp = json_object_array_get_idx(spans, k), *tid, *sid, *nm;
                if (!json_object_object_get_ex(sp, "traceId", &tid) ||
                    !json_object_object_get_ex(sp, "spanId", &sid) ||
                    !json_object_object_get_ex(sp, "name", &nm))
                    continue;
                snprintf(line, sizeof(line), "%s %s %s\n", json_object_get_string(tid),
                         json_object_get_string(sid), json_object_get_string(nm));
                TH_ASSERT(th_lines_add(l, line) == 0);
            }
        }
    }
}

typedef struct dump_stats {
    long records, bad_class;
    long records_by[CLASS_COUNT], items_by[CLASS_COUNT];
} dump_stats;

static int class_index(const char *name)
{
    for (int k = 0; k < CLASS_COUNT; k++)
        if (strcmp(name, sw_class_name((sw_class)k)) == 0) return k;
    return -1;
}

/* Runs `spillway dlq dump` (expecting exit code want_rc) and sorts the
 * spans of its records: those of segment `skip_seg` (may be NULL) into
 * `skipped`, the others into `kept`. With klass_of, checks each record's
 * class against its resources' service names. */
static void read_dump(th_stack *s, int want_rc, const char *skip_seg, th_lines *kept,
                      th_lines *skipped, int (*klass_of)(const char *), dump_stats *ds)
{
    char *out = NULL;
    int rc = th_stack_dlq_cmd(s, "dump", &out);
    TH_ASSERT(th_res_add(free, out) == 0);
    TH_ASSERT_MSG(rc == want_rc && out, "spillway dlq dump exited %d, want %d", rc, want_rc);
    memset(ds, 0, sizeof(*ds));
    for (char *p = out, *nl; p && *p; p = nl ? nl + 1 : NULL) {
        nl = strchr(p, '\n');
        if (nl) *nl = '\0';
        json_object *o = json_tokener_parse(p), *seg, *cls, *items, *req;
        if (!o) continue; /* not a record line */
        TH_ASSERT_MSG(json_object_object_get_ex(o, "segment", &seg) &&
                      json_object_object_get_ex(o, "class", &cls) &&
                      json_object_object_get_ex(o, "items", &items) &&
                      json_object_object_get_ex(o, "request", &req), "dump line: %.200s", p);
        int k = class_index(json_object_get_string(cls));
        unsigned classes = 0;
        TH_ASSERT_MSG(k >= 0, "dump class '%s'", json_object_get_string(cls));
        int skip = skip_seg && strcmp(json_object_get_string(seg), skip_seg) == 0;
        request_lines(req, skip ? skipped : kept, &classes, klass_of);
        ds->records++;
        ds->records_by[k]++;
        ds->items_by[k] += json_object_get_int64(items);
        if (klass_of && classes != 1u << k) ds->bad_class++;
        json_object_put(o);
    }
}

/* ---- corruption ---- */

/* Sorted segment file names of the DLQ dir into names (n returned). */
static int list_segments(th_stack *s, char names[][32])
{
    char cmd[400];
    int n = 0;
    snprintf(cmd, sizeof(cmd), "ls %s", th_stack_dlq_dir(s));
    FILE *f = popen(cmd, "r");
    TH_ASSERT(f);
    while (n < MAX_SEGS && fgets(names[n], 32, f)) {
        names[n][strcspn(names[n], "\n")] = '\0';
        if (strlen(names[n]) == 20 && strcmp(names[n] + 16, ".seg") == 0) n++;
    }
    pclose(f);
    return n;
}

static void write_in_dlq(th_stack *s, const char *name, const void *data, size_t len)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/%s", th_stack_dlq_dir(s), name);
    TH_ASSERT_MSG(th_write_file(path, data, len) == 0, "write %s", path);
}

/* Flips one byte in the middle of segment `name`'s body; drops a truncated
 * header (a copy of first's first 100 bytes), a zero-length file, a garbage
 * segment and a garbage file with a non-segment name into the directory. */
static void damage(th_stack *s, const char *name, const char *first)
{
    char path[400];
    size_t len = 0;
    uint8_t junk[4096];
    snprintf(path, sizeof(path), "%s/%s", th_stack_dlq_dir(s), name);
    char *seg = th_read_file(path, &len);
    TH_ASSERT(seg && len > 256);
    TH_ASSERT(th_res_add(free, seg) == 0);
    seg[128 + (len - 128) / 2] ^= 0x5a;
    TH_ASSERT(th_write_file(path, seg, len) == 0);
    snprintf(path, sizeof(path), "%s/%s", th_stack_dlq_dir(s), first);
    char *head = th_read_file(path, &len);
    TH_ASSERT(head && len >= 128);
    TH_ASSERT(th_res_add(free, head) == 0);
    for (size_t i = 0; i < sizeof(junk); i++) junk[i] = (uint8_t)(i * 2654435761u >> 13);
    write_in_dlq(s, "7000000000000001.seg", "", 0);
    write_in_dlq(s, "7000000000000002.seg", head, 100);
    write_in_dlq(s, "7000000000000003.seg", junk, sizeof(junk));
    write_in_dlq(s, "notes.txt", junk, 1000);
}

static int quarantined(th_stack *s)
{
    char cmd[400], line[256];
    int n = 0;
    snprintf(cmd, sizeof(cmd), "ls %s/quarantine 2>/dev/null", th_stack_dlq_dir(s));
    FILE *f = popen(cmd, "r");
    if (!f) return -1;
    while (fgets(line, sizeof(line), f)) n++;
    pclose(f);
    return n;
}

/* The five damaged files are in quarantine/ and counted; spillway runs. */
static void check_quarantine(th_stack *s)
{
    int64_t deadline = th_now_ms() + 10000;
    while (quarantined(s) < 5 && th_now_ms() < deadline) th_nap_ms(50);
    double corrupt = metric(s, "spillway_dlq_corrupt_segments_total", NULL);
    int q = quarantined(s);
    printf("# quarantine/ holds %d files; spillway_dlq_corrupt_segments_total %.0f\n", q, corrupt);
    TH_ASSERT_MSG(q == 5, "quarantine/ holds %d files, want 5 (flipped, zero-length, truncated "
                  "header, garbage segment, garbage name)", q);
    TH_ASSERT_MSG(corrupt == 5, "spillway_dlq_corrupt_segments_total = %g, want 5", corrupt);
    TH_ASSERT_MSG(th_proc_alive(th_stack_spillway(s)), "spillway exited");
    const th_resp *r = th_stack_telemetry(s, "/healthz");
    TH_ASSERT_MSG(r && r->status == 200, "/healthz after quarantining");
}

/* Sends 1000-span requests until spillway_dlq_segments reaches want. */
static void fill_segments(th_stack *s, th_lines *sent, int want)
{
    th_http *c = th_stack_client(s);
    TH_ASSERT(c);
    int k = 0;
    while (metric(s, "spillway_dlq_segments", NULL) < want) {
        TH_ASSERT_MSG(k < MAX_REQUESTS, "%d requests did not make %d DLQ segments", k, want);
        th_otlp *d = th_otlp_new(SIG_TRACES, 100000 + (uint32_t)k++, 1000);
        TH_ASSERT(d);
        send_ok(c, d, sent);
        th_otlp_free(d);
    }
    printf("# %d requests of 1000 spans made %d segments\n", k, want);
}

static void t_corrupt_segment_quarantined(void)
{
    char why[1024], names[MAX_SEGS][32], *out = NULL;
    th_stack_opts o = {.queue_max_bytes = "64KiB",
                       .queue_yaml = "  spill_threshold: 0.01\n",
                       .batch_max_bytes = "16KiB",
                       .dlq_yaml = "  segment_size: 1MiB\n  replay: { rate: 64MiB }\n",
                       .exporter_yaml = STUCK_EXPORTER,
                       .retry_yaml = "max_elapsed_time: 1h"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_lines *sent = th_lines_new(), *good = th_lines_new(), *bad = th_lines_new();
    TH_ASSERT(sent && good && bad);
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=3600&mode=503") == 200, "outage");
    fill_segments(s, sent, 5);
    stop_ok(s);
    int n = list_segments(s, names);
    TH_ASSERT_MSG(n >= 3, "%d segment files after the stop", n);
    dump_stats ds;
    read_dump(s, 0, names[1], good, bad, NULL, &ds);
    printf("# %d segments, %ld records; %s holds %zu spans\n", n, ds.records, names[1],
           th_lines_count(bad));
    damage(s, names[1], names[0]);
    int rc = th_stack_dlq_cmd(s, "verify", &out);
    TH_ASSERT(th_res_add(free, out) == 0);
    char want[64];
    snprintf(want, sizeof(want), "CORRUPT %s", names[1]);
    if (rc != 1 || !out || !strstr(out, want)) print_text(out);
    TH_ASSERT_MSG(rc == 1, "spillway dlq verify exited %d on a damaged DLQ, want 1", rc);
    TH_ASSERT_MSG(strstr(out, want), "verify does not report '%s'", want);
    TH_ASSERT_MSG(th_stack_restart_spillway(s) == 0, "restart on the damaged DLQ");
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=0") == 200, "end of outage");
    th_cover cov;
    rc = th_stack_wait_cover(s, SIG_TRACES, good, NULL, DRAIN_MS, &cov, why, sizeof(why));
    printf("# upstream received %ld spans, %ld duplicates\n", cov.received, cov.dups);
    TH_ASSERT_MSG(rc == 0, "spans of the good segments (none of %s): %s", names[1], why);
    check_quarantine(s);
}

/* ---- graceful shutdown ---- */

/* Fills the queue up to queue.spill_threshold (0.95): the next items
 * spill at intake; a few more go there too. */
static void fill_queue(th_stack *s, th_http *c, th_lines *sent)
{
    int k = 0, extra = 0;
    double fill = 0, spilled = 0;
    for (; k < MAX_REQUESTS && extra < 5; k++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, 200000 + (uint32_t)k, 100);
        TH_ASSERT(d);
        send_ok(c, d, sent);
        th_otlp_free(d);
        const char *text = metrics_text(s);
        fill = th_prom_sum(text, "spillway_queue_fill_ratio", NULL, NULL);
        spilled = th_prom_sum(text, "spillway_queue_spilled_total", NULL, NULL);
        extra += spilled > 0;
    }
    printf("# %d requests filled the 1 MiB queue to %.2f, %.0f items spilled at intake\n", k,
           fill, spilled);
    TH_ASSERT_MSG(fill >= 0.9 && spilled > 0, "queue fill %.2f and %.0f spilled after %d requests",
                  fill, spilled, k);
}

/* A stack whose upstream refuses everything, with a full memory queue
 * stopped by SIGTERM: what was acknowledged (sent) is in the DLQ. */
static th_stack *stopped_with_full_dlq(th_lines *sent)
{
    th_stack_opts o = {.queue_max_bytes = "1MiB",
                       .batch_max_bytes = "64KiB",
                       .shutdown_timeout = "2s",
                       .dlq_yaml = "  replay: { rate: 64MiB }\n",
                       .exporter_yaml = STUCK_EXPORTER,
                       .retry_yaml = "max_elapsed_time: 1h",
                       .mock_admin = 1};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_http *c = th_stack_client(s);
    TH_ASSERT(c);
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=3600&mode=refuse") == 200,
                  "outage");
    fill_queue(s, c, sent);
    stop_ok(s);
    return s;
}

static void t_sigterm_full_queue_dead_upstream(void)
{
    char why[1024];
    th_lines *sent = th_lines_new(), *dumped = th_lines_new();
    TH_ASSERT(sent && dumped);
    th_stack *s = stopped_with_full_dlq(sent);
    long records = th_stack_dlq_records(s);
    printf("# after SIGTERM the DLQ holds %ld records\n", records);
    TH_ASSERT_MSG(records > 0, "spillway dlq ls: %ld records after SIGTERM", records);
    dump_stats ds;
    read_dump(s, 0, NULL, dumped, NULL, NULL, &ds);
    th_cover cov;
    int rc = th_lines_cover(th_lines_text(sent), NULL, th_lines_text(dumped), &cov, why,
                            sizeof(why));
    TH_ASSERT_MSG(rc == 0, "the DLQ after SIGTERM against what was acknowledged: %s", why);
    TH_ASSERT_MSG(th_stack_restart_spillway(s) == 0, "restart");
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=0") == 200, "end of outage");
    rc = th_stack_wait_cover(s, SIG_TRACES, sent, NULL, DRAIN_MS, &cov, why, sizeof(why));
    printf("# upstream received %ld spans, %ld duplicates\n", cov.received, cov.dups);
    TH_ASSERT_MSG(rc == 0, "spans after the restart: %s", why);
}

/* `spillway dlq replay --to URL` (offline, spillway stopped) sends every
 * record to the upstream and leaves the DLQ empty. */
static void t_offline_replay_to(void)
{
    char why[1024];
    th_lines *sent = th_lines_new();
    TH_ASSERT(sent);
    th_stack *s = stopped_with_full_dlq(sent);
    long records = th_stack_dlq_records(s);
    TH_ASSERT_MSG(records > 0, "spillway dlq ls: %ld records after SIGTERM", records);
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=0") == 200, "end of outage");
    char *out = NULL;
    int rc = th_stack_dlq_replay_to_mock(s, &out);
    printf("# spillway dlq replay --to: exit %d, %s", rc, out ? out : "(no output)\n");
    free(out);
    TH_ASSERT_MSG(rc == 0, "spillway dlq replay --to exited %d", rc);
    th_cover cov;
    rc = th_stack_wait_cover(s, SIG_TRACES, sent, NULL, DRAIN_MS, &cov, why, sizeof(why));
    printf("# %ld records replayed: upstream received %ld spans, %ld duplicates\n", records,
           cov.received, cov.dups);
    TH_ASSERT_MSG(rc == 0, "spans after the offline replay: %s", why);
    TH_ASSERT_EQ_INT(th_stack_dlq_records(s), 0);
}

/* ---- priority ---- */

#define PER_CLASS 20
static const char *const services[CLASS_COUNT] = {"checkout-api", "search-api", "cart"};

static int klass_of_service(const char *svc)
{
    if (strncmp(svc, "checkout", 8) == 0) return CLASS_CRITICAL;
    if (strncmp(svc, "search", 6) == 0) return CLASS_HIGH;
    return CLASS_NORMAL;
}

/* Figures only: replayed items bypass the memory queue. */
static void print_dequeued(th_stack *s)
{
    char lab[32];
    const char *text = metrics_text(s);
    printf("# after replay spillway_queue_dequeued_total:");
    for (int k = 0; k < CLASS_COUNT; k++) {
        snprintf(lab, sizeof(lab), "class=\"%s\"", sw_class_name((sw_class)k));
        printf(" %s %.0f", sw_class_name((sw_class)k),
               th_prom_sum(text, "spillway_queue_dequeued_total", lab, NULL));
    }
    printf("\n");
}

static void t_priority_survives_disk(void)
{
    char why[1024];
    th_stack_opts o = {.queue_max_bytes = "64KiB",
                       .queue_yaml = "  spill_threshold: 0.01\n",
                       .batch_max_bytes = "16KiB",
                       .dlq_yaml = "  replay: { rate: 64MiB }\n",
                       .exporter_yaml = STUCK_EXPORTER,
                       .retry_yaml = "max_elapsed_time: 1h",
                       .processors_yaml =
                           "  priority:\n    rules:\n"
                           "      - { class: critical, attribute: service.name, regex: \"^checkout\" }\n"
                           "      - { class: high, attribute: service.name, regex: \"^search\" }\n"};
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    th_lines *sent = th_lines_new(), *dumped = th_lines_new();
    th_http *c = th_stack_client(s);
    TH_ASSERT(sent && dumped && c);
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=3600&mode=503") == 200, "outage");
    for (int i = 0; i < PER_CLASS * CLASS_COUNT; i++) {
        th_res_spec rs = {.service = services[i % CLASS_COUNT], .seed = 300000 + (uint32_t)i,
                          .spans = 50};
        th_otlp *d = th_otlp_new_traces(&rs, 1);
        TH_ASSERT(d);
        send_ok(c, d, sent);
        th_otlp_free(d);
    }
    stop_ok(s);
    dump_stats ds;
    read_dump(s, 0, NULL, dumped, NULL, klass_of_service, &ds);
    printf("# DLQ records by class: critical %ld (%ld spans), high %ld (%ld), normal %ld (%ld)\n",
           ds.records_by[0], ds.items_by[0], ds.records_by[1], ds.items_by[1], ds.records_by[2],
           ds.items_by[2]);
    TH_ASSERT_MSG(ds.bad_class == 0, "%ld of %ld DLQ records have a class that does not match "
                  "their service.name", ds.bad_class, ds.records);
    for (int k = 0; k < CLASS_COUNT; k++)
        TH_ASSERT_MSG(ds.items_by[k] == PER_CLASS * 50, "%ld %s spans in the DLQ, want %d",
                      ds.items_by[k], sw_class_name((sw_class)k), PER_CLASS * 50);
    TH_ASSERT_MSG(th_stack_restart_spillway(s) == 0, "restart");
    TH_ASSERT_MSG(th_stack_mock_post(s, "/admin/outage?seconds=0") == 200, "end of outage");
    th_cover cov;
    int rc = th_stack_wait_cover(s, SIG_TRACES, sent, NULL, DRAIN_MS, &cov, why, sizeof(why));
    TH_ASSERT_MSG(rc == 0, "spans after the restart: %s", why);
    print_dequeued(s);
}

int main(void)
{
    TH_ICASE(t_corrupt_segment_quarantined);
    TH_ICASE(t_sigterm_full_queue_dead_upstream);
    TH_ICASE(t_offline_replay_to);
    TH_ICASE(t_priority_survives_disk);
    return th_done();
}
