/* micro_dlq.c — DLQ microbenchmark.
 *
 *   micro_dlq [DIR] [SECONDS]
 *
 * In a temp dir under DIR (default $TMPDIR or /tmp, the disk under test):
 * the disk's raw fsync rate (4 KiB write + fsync); spill write throughput
 * in MiB/s of request bytes with fsync: always (group commit), from one
 * producer appending realistic OTLP trace requests (100 spans, realistic
 * attributes, built with protobuf-c); the zstd-3 compression ratio on
 * them; read+verify throughput (reader: segment SHA-256, record SHA-256,
 * decompression); and start-up time and RSS of dlq_open() over a 1 GiB
 * DLQ. Prints one "name value unit" line per figure. Bounded in time and
 * disk (about 1.3 GiB, removed at the end).
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dlq/dlq.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"
#include "runtime/clock.h"
#include "runtime/log.h"
#include "dlq/dlq_metrics.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue KeyValue;
typedef Opentelemetry__Proto__Common__V1__AnyValue AnyValue;
typedef Opentelemetry__Proto__Trace__V1__Span Span;

#define NSPANS 100
#define NREQ 64          /* distinct requests cycled through */
#define SPAN_ATTRS 7
#define RES_ATTRS 6

static uint64_t rng = 0x243F6A8885A308D3ull;
static uint64_t rnd(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static void kv_str(KeyValue *kv, AnyValue *v, const char *k, const char *s)
{
    opentelemetry__proto__common__v1__key_value__init(kv);
    opentelemetry__proto__common__v1__any_value__init(v);
    kv->key = (char *)k;
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
    v->string_value = (char *)s;
    kv->value = v;
}

static void kv_int(KeyValue *kv, AnyValue *v, const char *k, int64_t i)
{
    kv_str(kv, v, k, "");
    v->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
    v->int_value = i;
}

/* One realistic ExportTraceServiceRequest of NSPANS spans; owned bytes. */
static uint8_t *build_request(size_t *len)
{
    static const char *routes[] = {"/api/v1/orders/{id}", "/api/v1/cart", "/api/v1/users/{id}/profile",
                                   "/checkout/payment", "/api/v2/search", "/health"};
    static const char *methods[] = {"GET", "POST", "PUT", "DELETE"};
    static const char *svc[] = {"checkout", "payment", "frontend", "inventory", "shipping"};
    static KeyValue rkv[RES_ATTRS], skv[NSPANS][SPAN_ATTRS];
    static AnyValue rv[RES_ATTRS], sv[NSPANS][SPAN_ATTRS];
    static KeyValue *rkvp[RES_ATTRS], *skvp[NSPANS][SPAN_ATTRS];
    static Span spans[NSPANS], *spanp[NSPANS];
    static uint8_t ids[NSPANS][32];
    static char names[NSPANS][64], peers[NSPANS][48];
    char pod[64];
    snprintf(pod, sizeof pod, "%s-7d9f8b6c5d-%05llx", svc[rnd() % 5], (unsigned long long)(rnd() & 0xfffff));
    kv_str(&rkv[0], &rv[0], "service.name", svc[rnd() % 5]);
    kv_str(&rkv[1], &rv[1], "service.version", "1.42.3");
    kv_str(&rkv[2], &rv[2], "host.name", "ip-10-0-12-34.eu-west-1.compute.internal");
    kv_str(&rkv[3], &rv[3], "k8s.pod.name", pod);
    kv_str(&rkv[4], &rv[4], "k8s.namespace.name", "shop-prod");
    kv_str(&rkv[5], &rv[5], "deployment.environment", "production");
    uint64_t t0 = 1704067200000000000ull + rnd() % 1000000000000ull;
    for (int i = 0; i < NSPANS; i++) {
        Span *s = &spans[i];
        opentelemetry__proto__trace__v1__span__init(s);
        for (int k = 0; k < 32; k++) ids[i][k] = (uint8_t)rnd();
        if (i % 10) memcpy(ids[i], ids[i - i % 10], 16); /* 10 spans per trace */
        s->trace_id = (ProtobufCBinaryData){16, ids[i]};
        s->span_id = (ProtobufCBinaryData){8, ids[i] + 16};
        if (i % 10) s->parent_span_id = (ProtobufCBinaryData){8, ids[i - 1] + 16};
        const char *route = routes[rnd() % 6], *method = methods[rnd() % 4];
        snprintf(names[i], sizeof names[i], "%s %s", method, route);
        snprintf(peers[i], sizeof peers[i], "%s.shop-prod.svc.cluster.local", svc[rnd() % 5]);
        s->name = names[i];
        s->kind = 2 + (int)(rnd() % 2);
        s->start_time_unix_nano = t0 + (uint64_t)i * 1000000 + rnd() % 1000;
        s->end_time_unix_nano = s->start_time_unix_nano + 100000 + rnd() % 50000000;
        kv_str(&skv[i][0], &sv[i][0], "http.request.method", method);
        kv_str(&skv[i][1], &sv[i][1], "http.route", route);
        kv_int(&skv[i][2], &sv[i][2], "http.response.status_code", rnd() % 20 ? 200 : 503);
        kv_str(&skv[i][3], &sv[i][3], "server.address", peers[i]);
        kv_int(&skv[i][4], &sv[i][4], "server.port", 8080);
        kv_str(&skv[i][5], &sv[i][5], "network.protocol.version", "1.1");
        kv_str(&skv[i][6], &sv[i][6], "user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) shop-client/3.1");
        for (int k = 0; k < SPAN_ATTRS; k++) skvp[i][k] = &skv[i][k];
        s->n_attributes = SPAN_ATTRS;
        s->attributes = skvp[i];
        spanp[i] = s;
    }
    for (int k = 0; k < RES_ATTRS; k++) rkvp[k] = &rkv[k];
    Opentelemetry__Proto__Resource__V1__Resource res = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    res.n_attributes = RES_ATTRS;
    res.attributes = rkvp;
    Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
        OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    scope.name = "io.opentelemetry.instrumentation.http";
    scope.version = "2.1.0";
    Opentelemetry__Proto__Trace__V1__ScopeSpans ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    ss.scope = &scope;
    ss.n_spans = NSPANS;
    ss.spans = spanp;
    Opentelemetry__Proto__Trace__V1__ScopeSpans *ssp = &ss;
    Opentelemetry__Proto__Trace__V1__ResourceSpans rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    rs.resource = &res;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    Opentelemetry__Proto__Trace__V1__ResourceSpans *rsp = &rs;
    Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest req =
        OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    *len = opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(&req);
    uint8_t *out = malloc(*len);
    if (out) opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(&req, out);
    return out;
}

static double secs_since(int64_t t0) { return (double)(clock_mono_ns() - t0) / 1e9; }

static long rss_kib(void)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0) v = strtol(line + 6, NULL, 10);
    if (f) fclose(f);
    return v;
}

static void fsync_rate(const char *dir, double secs)
{
    char p[600];
    snprintf(p, sizeof p, "%s/fsync-probe", dir);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) return;
    static char block[4096];
    int64_t t0 = clock_mono_ns();
    long n = 0;
    while (secs_since(t0) < secs) {
        if (pwrite(fd, block, sizeof block, (off_t)(n % 256) * 4096) < 0 || fsync(fd) != 0) break;
        n++;
    }
    printf("disk_fsync_rate %.0f fsync/s\n", n / secs_since(t0));
    close(fd);
    unlink(p);
}

static void on_done(void *arg, item *it, int status)
{
    long *failed = arg;
    if (status) (*failed)++;
    item_free(it);
}

/* Appends requests round-robin until `bytes` request bytes or `secs`. */
static void spill(dlq *d, uint8_t **reqs, size_t *lens, uint64_t bytes, double secs, int fsync_mode,
                  sw_metrics *m, int report)
{
    dlq_port *p = dlq_port_new(d);
    long failed = 0;
    uint64_t sent = 0;
    int64_t t0 = clock_mono_ns();
    for (uint64_t i = 0; sent < bytes && secs_since(t0) < secs; i++) {
        size_t k = i % NREQ;
        item *it = item_new(SIG_TRACES, (sw_class)(i % 3), NSPANS, clock_mono_ns(), reqs[k], lens[k]);
        while (dlq_append(p, it, on_done, &failed) != 0) dlq_port_wait(p, 10);
        sent += lens[k];
        dlq_port_dispatch(p);
    }
    while (dlq_port_pending(p)) dlq_port_wait(p, 100);
    double s = secs_since(t0);
    dlq_port_free(p);
    if (!report) return;
    const char *mode = fsync_mode == CFG_FSYNC_ALWAYS ? "always" : "never";
    printf("spill_write_fsync_%s %.1f MiB/s (%.0f requests/s, %ld failed)\n", mode,
           (double)sent / s / 1048576.0, (double)sent / lens[0] / s, failed);
    printf("compression_ratio %.2f (request bytes / bytes on disk)\n",
           (double)atomic_load(&dlq_metrics_get(m)->dlq_written_bytes) / (double)atomic_load(&dlq_metrics_get(m)->dlq_bytes));
}

static void read_verify(dlq *d)
{
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    uint64_t bytes = 0, n = 0;
    int64_t t0 = clock_mono_ns();
    int idle = 0;
    while (idle < 100) {
        item *it = NULL;
        dlq_pos pos;
        if (dlq_reader_next(r, &it, &pos) != 0) break;
        if (!it) {
            idle++;
            usleep(1000);
            continue;
        }
        idle = 0;
        bytes += it->len;
        n++;
        item_free(it);
    }
    double s = secs_since(t0) - 0.1; /* minus the idle tail */
    printf("read_verify %.1f MiB/s (%llu records)\n", (double)bytes / s / 1048576.0,
           (unsigned long long)n);
    dlq_reader_free(r);
}

static void rm_segments(const char *dir)
{
    DIR *dd = opendir(dir);
    struct dirent *e;
    char p[1024];
    while (dd && (e = readdir(dd)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (dd) closedir(dd);
}

static void startup_1gib(dlq_opts *o)
{
    /* Fill ~1 GiB on disk with incompressible requests (fast to write). */
    static uint8_t *reqs[NREQ];
    static size_t lens[NREQ];
    for (int k = 0; k < NREQ; k++) {
        lens[k] = 256 * 1024;
        reqs[k] = malloc(lens[k]);
        for (size_t j = 0; j < lens[k]; j++) reqs[k][j] = (uint8_t)rnd();
    }
    sw_metrics *m = metrics_new();
    o->fsync = CFG_FSYNC_NEVER;
    dlq *d = NULL;
    dlq_open(o, m, &d);
    spill(d, reqs, lens, 1ull << 30, 120.0, CFG_FSYNC_NEVER, m, 0);
    dlq_close(d);
    sync();
    for (int k = 0; k < NREQ; k++) free(reqs[k]);
    long rss0 = rss_kib();
    int64_t t0 = clock_mono_ns();
    dlq_open(o, m, &d);
    dlq_wait_recovered(d);
    double s = secs_since(t0);
    printf("startup_1gib %.1f ms (%lld segments, %lld bytes), RSS +%ld KiB\n", s * 1e3,
           (long long)atomic_load(&dlq_metrics_get(m)->dlq_segments), (long long)atomic_load(&dlq_metrics_get(m)->dlq_bytes),
           rss_kib() - rss0);
    dlq_reader *r = dlq_reader_new(d, 0, 0);
    item *it = NULL;
    dlq_pos pos;
    t0 = clock_mono_ns();
    dlq_reader_next(r, &it, &pos);
    printf("first_record_after_verifying_128mib_segment %.1f ms, RSS +%ld KiB\n",
           secs_since(t0) * 1e3, rss_kib() - rss0);
    item_free(it);
    dlq_reader_free(r);
    dlq_close(d);
    metrics_free(m);
}

int main(int argc, char **argv)
{
    const char *base = argc > 1 ? argv[1] : (getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    double secs = argc > 2 ? atof(argv[2]) : 10.0;
    char dir[512];
    log_setup(LOG_LVL_WARN, 0);
    snprintf(dir, sizeof dir, "%s/micro-dlq-XXXXXX", base);
    if (!mkdtemp(dir)) return 1;
    fsync_rate(dir, 2.0);
    static uint8_t *reqs[NREQ];
    static size_t lens[NREQ];
    size_t total = 0;
    for (int k = 0; k < NREQ; k++) reqs[k] = build_request(&lens[k]), total += lens[k];
    printf("request_size %.0f bytes (%d spans)\n", (double)total / NREQ, NSPANS);
    dlq_opts o = {.dir = dir, .segment_size = 128u << 20, .max_size = 8ull << 30,
                  .compression_level = 3, .fsync = CFG_FSYNC_ALWAYS};
    for (int mode = CFG_FSYNC_ALWAYS; mode <= CFG_FSYNC_NEVER; mode += 2) {
        sw_metrics *m = metrics_new();
        o.fsync = mode;
        dlq *d = NULL;
        if (dlq_open(&o, m, &d) != 0) return 1;
        spill(d, reqs, lens, 1ull << 30, secs, mode, m, 1);
        if (mode == CFG_FSYNC_ALWAYS) read_verify(d);
        dlq_close(d);
        metrics_free(m);
        rm_segments(dir);
    }
    for (int k = 0; k < NREQ; k++) free(reqs[k]);
    startup_1gib(&o);
    rm_segments(dir);
    rmdir(dir);
    return 0;
}
