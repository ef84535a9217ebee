/* spillway_loadgen.c — OTLP/HTTP workload generator.
 *
 * Sends deterministic traces, metrics and/or logs requests (testing/loadgen/
 * lg_gen.h) to an OTLP/HTTP endpoint at a fixed open-loop rate
 * (testing/loadgen/lg_client.h) and reports what happened: requests and
 * items sent and accepted, refusals by status, connection errors, late
 * (backlogged) requests, achieved rate and latency percentiles. With
 * --verify it then checks the mock upstream received every acked item
 * exactly once (testing/loadgen/lg_verify.h). Exit status: 0 when the run
 * completed (whatever the server answered), 1 when it could not run, 2 on a
 * usage error, 3 when --verify found missing or duplicated items.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/http.h>

#include "runtime/err.h"
#include "runtime/item.h"
#include "testing/loadgen/lg_client.h"
#include "testing/loadgen/lg_gen.h"
#include "testing/loadgen/lg_h2.h"
#include "testing/loadgen/lg_verify.h"

typedef struct lg_cli {
    lg_gen_opts gen;               /* common options; signal and rate set per stream */
    lg_run_opts run;
    const char *endpoint;
    char host[256];
    char base[512];                /* endpoint path without /v1/<signal> */
    char path[SIG_COUNT][540];
    uint32_t mix[SIG_COUNT];       /* request weights per signal (0 = not sent) */
    int json, quiet, verify;
    const char *verify_url;
    const char *verify_missing;    /* --verify-missing FILE, or NULL */
    lg_verify_opts vo;
    char vhost[256];
} lg_cli;

static void usage(FILE *f)
{
    fputs(
        "usage: spillway-loadgen [options]\n"
        "Sends OTLP/HTTP requests at a fixed open-loop rate and reports the outcome.\n\n"
        "  --protocol P            http | grpc (OTLP/gRPC over h2c; default endpoint then\n"
        "                          http://127.0.0.1:4317, protobuf only) (default http)\n"
        "  --endpoint URL          base URL (default http://127.0.0.1:4318); /v1/<signal> is\n"
        "                          appended (a URL ending in /v1/<signal> is taken as its base)\n"
        "  --signal LIST           traces | metrics | logs, or a comma list sent interleaved\n"
        "                          with equal weights (default traces)\n"
        "  --mix T:M:L             request weights of traces, metrics, logs (0 = none), e.g. 6:3:1\n"
        "  --rate N                items (spans, data points, log records) per second, all\n"
        "                          signals together (default 10000); requests go out every\n"
        "                          batch/rate seconds; 0 = closed loop, as fast as connections allow\n"
        "  --batch N               items per request (default 100)\n"
        "  --connections N         keep-alive connections, one request in flight each (default 4)\n"
        "  --duration SECONDS      length of the send window (default 10)\n"
        "  --count N               send exactly N requests instead of a duration\n"
        "  --encoding E            protobuf | json (default protobuf)\n"
        "  --compression C         none | gzip | zstd (default none)\n"
        "  --services N            distinct service.name values (default 1)\n"
        "  --attrs N               attributes per span / data point / log record (default 7)\n"
        "  --priority-mix C:H:N    weights of resources of critical (checkout, payment), high\n"
        "                          (frontend, cart) and normal (catalog, shipping, ...) services\n"
        "  --series N              metrics: N distinct series, named by a series.id label (N >= batch)\n"
        "  --churn R               metrics: fraction of the series renamed per second (needs --series\n"
        "                          and a rate), e.g. 0.01\n"
        "  --label-explosion       metrics: a request.id label unique to every data point\n"
        "  --seed S                generator seed; the same seed gives the same bytes (default 1)\n"
        "  --pool N                distinct pre-built requests (default: services clamped to 16..256)\n"
        "  --timeout SECONDS       per-request timeout and final drain limit (default 10)\n"
        "  --verify                check that the mock upstream received every item answered 2xx\n"
        "                          exactly once (exit status 3 if not); needs --verify-url\n"
        "  --verify-url URL        the spillway-mockup to check, http://HOST:PORT\n"
        "  --verify-wait SECONDS   longest wait for the upstream to receive everything (default 10)\n"
        "  --verify-settle SECONDS the upstream's count unchanged this long ends that wait early\n"
        "                          (default 1; raise it when the upstream may pause, e.g. outages)\n"
        "  --verify-missing FILE   list the acked requests with missing items in FILE, one line\n"
        "                          each: signal, request seq, answer time (Unix ms), items missing\n"
        "  --json                  print the summary as one JSON object on stdout\n"
        "  --quiet                 no progress line, no text summary unless --json\n"
        "  --help                  this text\n\n"
        "Requests due while every connection is busy wait in a backlog and are counted as\n"
        "late; latency is measured from each request's scheduled time, so a slow server shows\n"
        "up as latency. Plain protobuf requests get fresh ids and item tokens on every pass\n"
        "over the pool; JSON and compressed requests repeat the pool. A progress line is\n"
        "printed every second when stderr is a terminal. See docs/performance.md.\n",
        f);
}

/* Parses a number in [min, max]; 0 or -1. */
static int parse_num(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static int parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out)
{
    double v;
    if (parse_num(s, min, max, &v) || v != (double)(uint32_t)v) return -1;
    *out = (uint32_t)v;
    return 0;
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || end == s || *end || s[0] == '-') return -1;
    *out = v;
    return 0;
}

/* Splits a URL into host (hlen bytes) and port; *path gets its path (may
 * be ""). Returns the parsed URI (owned: evhttp_uri_free) or NULL. */
static struct evhttp_uri *split_url(const char *url, char *host, size_t hlen, uint16_t *port)
{
    struct evhttp_uri *u = evhttp_uri_parse(url);
    if (!u || !evhttp_uri_get_scheme(u) || strcmp(evhttp_uri_get_scheme(u), "http") != 0 ||
        !evhttp_uri_get_host(u)) {
        if (u) evhttp_uri_free(u);
        return NULL;
    }
    int p = evhttp_uri_get_port(u);
    *port = (uint16_t)(p > 0 ? p : 80);
    snprintf(host, hlen, "%s", evhttp_uri_get_host(u));
    return u;
}

/* Splits the endpoint into host, port and base path; sets each signal's
 * request path. 0 or -1. */
static int parse_endpoint(lg_cli *c)
{
    struct evhttp_uri *u = split_url(c->endpoint, c->host, sizeof c->host, &c->run.port);
    if (!u) return -1;
    const char *p = evhttp_uri_get_path(u);
    size_t pl = p ? strlen(p) : 0;
    while (pl > 0 && p[pl - 1] == '/') pl--;
    for (int s = 0; s < SIG_COUNT; s++) {
        size_t sl = strlen(sw_signal_path((sw_signal)s));
        if (pl >= sl && strncmp(p + pl - sl, sw_signal_path((sw_signal)s), sl) == 0) {
            pl -= sl;
            break;
        }
    }
    snprintf(c->base, sizeof c->base, "%.*s", (int)pl, p ? p : "");
    for (int s = 0; s < SIG_COUNT; s++)
        snprintf(c->path[s], sizeof c->path[s], "%s%s", c->base, sw_signal_path((sw_signal)s));
    evhttp_uri_free(u);
    return 0;
}

/* "a,b,c" of signal names -> equal weights. 0 or -1. */
static int parse_signals(const char *arg, uint32_t *mix)
{
    char tmp[64];
    if (snprintf(tmp, sizeof tmp, "%s", arg) >= (int)sizeof tmp) return -1;
    memset(mix, 0, SIG_COUNT * sizeof *mix);
    char *save = NULL;
    for (char *t = strtok_r(tmp, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int v = lg_signal_parse(t);
        if (v < 0) return -1;
        mix[v] = 1;
    }
    return mix[0] + mix[1] + mix[2] > 0 ? 0 : -1;
}

/* "a:b:c", each 0..1000; at least one non-zero unless zero_ok. 0 or -1. */
static int parse_weights(const char *arg, uint32_t w[3], int zero_ok)
{
    char *end;
    const char *p = arg;
    for (int i = 0; i < 3; i++) {
        errno = 0;
        unsigned long v = strtoul(p, &end, 10);
        if (errno || end == p || *p == '-' || v > 1000 || *end != (i < 2 ? ':' : '\0')) return -1;
        w[i] = (uint32_t)v;
        p = end + 1;
    }
    return zero_ok || w[0] + w[1] + w[2] > 0 ? 0 : -1;
}

/* Parses --verify-url into the verify options. 1 if valid. */
static int split_url_ok(lg_cli *c)
{
    struct evhttp_uri *u = split_url(c->verify_url, c->vhost, sizeof c->vhost, &c->vo.port);
    if (!u) return 0;
    evhttp_uri_free(u);
    c->vo.host = c->vhost;
    c->vo.timeout_s = c->run.timeout_s > 30 ? c->run.timeout_s : 30;
    return 1;
}

/* Option codes, in the order of LONGOPTS (apply_opt names an option by it). */
enum { O_ENDPOINT = 256, O_SIGNAL, O_RATE, O_BATCH, O_CONNS, O_DURATION, O_COUNT, O_ENCODING,
       O_COMPRESSION, O_SERVICES, O_ATTRS, O_SEED, O_POOL, O_TIMEOUT, O_JSON, O_QUIET, O_HELP,
       O_MIX, O_PRIO, O_SERIES, O_CHURN, O_EXPLODE, O_VERIFY, O_VERIFY_URL, O_VERIFY_WAIT,
       O_PROTOCOL, O_VERIFY_SETTLE, O_VERIFY_MISSING };

static const struct option LONGOPTS[] = {
    {"endpoint", required_argument, NULL, O_ENDPOINT}, {"signal", required_argument, NULL, O_SIGNAL},
    {"rate", required_argument, NULL, O_RATE}, {"batch", required_argument, NULL, O_BATCH},
    {"connections", required_argument, NULL, O_CONNS}, {"duration", required_argument, NULL, O_DURATION},
    {"count", required_argument, NULL, O_COUNT}, {"encoding", required_argument, NULL, O_ENCODING},
    {"compression", required_argument, NULL, O_COMPRESSION}, {"services", required_argument, NULL, O_SERVICES},
    {"attrs", required_argument, NULL, O_ATTRS}, {"seed", required_argument, NULL, O_SEED},
    {"pool", required_argument, NULL, O_POOL}, {"timeout", required_argument, NULL, O_TIMEOUT},
    {"json", no_argument, NULL, O_JSON}, {"quiet", no_argument, NULL, O_QUIET},
    {"help", no_argument, NULL, O_HELP}, {"mix", required_argument, NULL, O_MIX},
    {"priority-mix", required_argument, NULL, O_PRIO}, {"series", required_argument, NULL, O_SERIES},
    {"churn", required_argument, NULL, O_CHURN}, {"label-explosion", no_argument, NULL, O_EXPLODE},
    {"verify", no_argument, NULL, O_VERIFY}, {"verify-url", required_argument, NULL, O_VERIFY_URL},
    {"verify-wait", required_argument, NULL, O_VERIFY_WAIT},
    {"protocol", required_argument, NULL, O_PROTOCOL},
    {"verify-settle", required_argument, NULL, O_VERIFY_SETTLE},
    {"verify-missing", required_argument, NULL, O_VERIFY_MISSING}, {NULL, 0, NULL, 0}};

/* Applies one of the generator's options; 0, or -1 if bad. */
static int apply_gen_opt(lg_cli *c, int opt, const char *arg)
{
    int v, bad = 0;
    switch (opt) {
    case O_SIGNAL: bad = parse_signals(arg, c->mix); break;
    case O_MIX: bad = parse_weights(arg, c->mix, 0); break;
    case O_BATCH: bad = parse_u32(arg, 1, 1000000, &c->gen.batch); break;
    case O_ENCODING: bad = (v = lg_encoding_parse(arg)) < 0; c->gen.encoding = (lg_encoding)(bad ? 0 : v); break;
    case O_COMPRESSION:
        bad = (v = lg_compression_parse(arg)) < 0;
        c->gen.compression = (lg_compression)(bad ? 0 : v);
        break;
    case O_SERVICES: bad = parse_u32(arg, 1, 10000000, &c->gen.services); break;
    case O_ATTRS: bad = parse_u32(arg, 0, 1000, &c->gen.attrs); break;
    case O_SEED: bad = parse_u64(arg, &c->gen.seed); break;
    case O_POOL: bad = parse_u32(arg, 1, 65536, &c->gen.pool); break;
    case O_PRIO: bad = parse_weights(arg, c->gen.prio_mix, 0); break;
    case O_SERIES: bad = parse_u64(arg, &c->gen.series) || c->gen.series == 0; break;
    case O_CHURN: bad = parse_num(arg, 0, 1000, &c->gen.churn); break;
    case O_EXPLODE: c->gen.label_explosion = 1; break;
    default: return -1;
    }
    return bad ? -1 : 0;
}

/* Applies one option; 0, or -1 with a message printed. */
static int apply_opt(lg_cli *c, int opt, const char *arg)
{
    int bad = 0;
    switch (opt) {
    case O_ENDPOINT: c->endpoint = arg; break;
    case O_RATE: bad = parse_num(arg, 0, 1e9, &c->run.rate); break;
    case O_CONNS: bad = parse_u32(arg, 1, 1024, &c->run.connections); break;
    case O_DURATION: bad = parse_num(arg, 0.001, 1e6, &c->run.duration_s); break;
    case O_COUNT: bad = parse_u64(arg, &c->run.count) || c->run.count == 0; break;
    case O_TIMEOUT: bad = parse_num(arg, 0.001, 3600, &c->run.timeout_s); break;
    case O_JSON: c->json = 1; break;
    case O_QUIET: c->quiet = 1; break;
    case O_VERIFY: c->verify = 1; break;
    case O_VERIFY_URL: c->verify_url = arg; break;
    case O_VERIFY_WAIT: bad = parse_num(arg, 0, 3600, &c->vo.wait_s); break;
    case O_PROTOCOL:
        bad = strcmp(arg, "http") != 0 && strcmp(arg, "grpc") != 0;
        c->run.grpc = strcmp(arg, "grpc") == 0;
        if (c->run.grpc && strcmp(c->endpoint, "http://127.0.0.1:4318") == 0)
            c->endpoint = "http://127.0.0.1:4317";
        break;
    case O_VERIFY_SETTLE: bad = parse_num(arg, 0.05, 3600, &c->vo.settle_s); break;
    case O_VERIFY_MISSING: c->verify_missing = arg; break;
    default: bad = apply_gen_opt(c, opt, arg); break;
    }
    if (bad) fprintf(stderr, "spillway-loadgen: invalid value '%s' for --%s\n", arg, LONGOPTS[opt - O_ENDPOINT].name);
    return bad ? -1 : 0;
}

static uint32_t mix_total(const lg_cli *c) { return c->mix[0] + c->mix[1] + c->mix[2]; }

/* Requests of the run the schedule plans; 0 when unbounded (closed loop
 * for a duration). */
static uint64_t planned_requests(const lg_cli *c)
{
    if (c->run.count) return c->run.count;
    if (c->run.rate <= 0) return 0;
    uint64_t n = (uint64_t)(c->run.duration_s * c->run.rate / c->gen.batch);
    return n ? n : 1;
}

/* --verify of JSON or compressed requests (sent as built, so repeating
 * every pass over the pool): makes the pool hold the whole run. 0 or -1. */
static int verify_pool(lg_cli *c)
{
    if (c->gen.encoding == LG_ENC_PROTOBUF && c->gen.compression == LG_COMP_NONE) return 0;
    uint64_t total = planned_requests(c), maxw = 0;
    for (int s = 0; s < SIG_COUNT; s++) maxw = c->mix[s] > maxw ? c->mix[s] : maxw;
    uint64_t per = total ? (total * maxw + mix_total(c) - 1) / mix_total(c) + 1 : 0;
    if (per == 0 || per > 4096) {
        fputs("spillway-loadgen: --verify with JSON or compressed requests needs at most 4096 requests "
              "per signal (--count, or --rate x --duration / --batch)\n", stderr);
        return -1;
    }
    if (c->gen.pool < per) c->gen.pool = (uint32_t)per;
    return 0;
}

/* Checks option combinations and derives the run settings. 0 or -1. */
static int finish_args(lg_cli *c)
{
    if (parse_endpoint(c) != 0) {
        fprintf(stderr, "spillway-loadgen: invalid endpoint '%s' (http://HOST:PORT[/PATH])\n", c->endpoint);
        return -1;
    }
    if (c->gen.series && c->gen.series < c->gen.batch) {
        fputs("spillway-loadgen: --series must be at least --batch\n", stderr);
        return -1;
    }
    if (c->gen.churn > 0 && (!c->gen.series || c->run.rate <= 0)) {
        fputs("spillway-loadgen: --churn needs --series and a --rate above 0\n", stderr);
        return -1;
    }
    if (c->verify) {
        if (!c->verify_url || !split_url_ok(c)) {
            fputs("spillway-loadgen: --verify needs --verify-url http://HOST:PORT of the mock upstream\n", stderr);
            return -1;
        }
        if (verify_pool(c) != 0) return -1;
    }
    if (c->run.grpc) { /* OTLP/gRPC: protobuf only; the methods replace the paths */
        if (c->gen.encoding == LG_ENC_JSON) {
            fputs("spillway-loadgen: --protocol grpc sends protobuf only (no --encoding json)\n", stderr);
            return -1;
        }
        for (int s = 0; s < SIG_COUNT; s++) snprintf(c->path[s], sizeof c->path[s], "%s", lg_h2_method(s));
    }
    c->run.host = c->host;
    c->run.batch = c->gen.batch;
    c->run.content_type = c->gen.encoding == LG_ENC_JSON ? "application/json" : "application/x-protobuf";
    c->run.content_encoding = c->gen.compression == LG_COMP_NONE ? NULL : lg_compression_name(c->gen.compression);
    c->run.progress = !c->quiet && !c->json && isatty(STDERR_FILENO);
    c->run.record_ok = c->verify;
    return 0;
}

/* 0 to run, 1 after --help, -1 on a usage error. */
static int parse_args(lg_cli *c, int argc, char **argv)
{
    *c = (lg_cli){.endpoint = "http://127.0.0.1:4318", .mix = {1, 0, 0}};
    c->gen = (lg_gen_opts){.signal = SIG_TRACES, .batch = 100, .services = 1, .attrs = 7, .seed = 1};
    c->run = (lg_run_opts){.rate = 10000, .connections = 4, .duration_s = 10, .timeout_s = 10};
    c->vo = (lg_verify_opts){.wait_s = 10};
    int opt;
    while ((opt = getopt_long(argc, argv, "", LONGOPTS, NULL)) != -1) {
        if (opt == O_HELP) {
            usage(stdout);
            return 1;
        }
        if (apply_opt(c, opt, optarg) != 0) return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "spillway-loadgen: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return finish_args(c);
}

static double ms(int64_t ns) { return (double)ns / 1e6; }

/* Accepted items over the longer of the send window and the whole run. */
static double accepted_rate(const lg_result *r)
{
    double t = r->send_s > r->elapsed_s ? r->send_s : r->elapsed_s;
    return t > 0 ? (double)r->items_ok / t : 0.0;
}

static double avg_bytes(const lg_result *r) { return r->sent ? (double)r->bytes_sent / (double)r->sent : 0.0; }

/* CPU seconds (user + system) this process used so far. */
static double self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* "traces,metrics" of the signals sent. */
static const char *signal_list(const lg_cli *c)
{
    static char out[64];
    out[0] = 0;
    for (int s = 0; s < SIG_COUNT; s++)
        if (c->mix[s])
            snprintf(out + strlen(out), sizeof out - strlen(out), "%s%s", out[0] ? "," : "",
                     sw_signal_name((sw_signal)s));
    return out;
}

static int verify_failed(const lg_vres *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (v[i].missing || v[i].duplicated) return 1;
    return 0;
}

static void print_json_verify(const lg_stream *st, const lg_vres *v, uint32_t n)
{
    printf(",\"verify\":{\"ok\":%s,\"signals\":{", verify_failed(v, n) ? "false" : "true");
    for (uint32_t i = 0; i < n; i++)
        printf("%s\"%s\":{\"expected\":%llu,\"received\":%llu,\"missing\":%llu,\"duplicated\":%llu,"
               "\"unexpected\":%llu,\"unreadable\":%llu,\"upstream_items\":%llu,\"incomplete\":%s}",
               i ? "," : "", sw_signal_name(lg_pool_signal(st[i].pool)), (unsigned long long)v[i].expected,
               (unsigned long long)v[i].received, (unsigned long long)v[i].missing,
               (unsigned long long)v[i].duplicated, (unsigned long long)v[i].unexpected,
               (unsigned long long)v[i].unreadable, (unsigned long long)v[i].upstream_items,
               v[i].incomplete ? "true" : "false");
    printf("}}");
}

static void print_json(const lg_cli *c, const lg_result *r, const lg_stream *st, uint32_t ns,
                       const lg_vres *v)
{
    printf("{\"signal\":\"%s\",\"encoding\":\"%s\",\"compression\":\"%s\",\"endpoint\":\"http://%s:%u%s\","
           "\"target_rate\":%.1f,\"batch\":%u,\"connections\":%u,\"seed\":%llu,",
           signal_list(c), lg_encoding_name(c->gen.encoding), lg_compression_name(c->gen.compression),
           c->host, c->run.port, c->base, c->run.rate, c->gen.batch, c->run.connections,
           (unsigned long long)c->gen.seed);
    printf("\"requests_planned\":%llu,\"requests_sent\":%llu,\"requests_ok\":%llu,\"requests_refused\":%llu,"
           "\"connection_errors\":%llu,\"unanswered\":%llu,\"late\":%llu,\"unsent\":%llu,",
           (unsigned long long)r->planned, (unsigned long long)r->sent, (unsigned long long)r->ok,
           (unsigned long long)r->refused, (unsigned long long)r->conn_errors,
           (unsigned long long)r->unanswered, (unsigned long long)r->late, (unsigned long long)r->unsent);
    printf("\"items_sent\":%llu,\"items_accepted\":%llu,\"bytes_sent\":%llu,\"request_bytes_avg\":%.0f,\"cpu_seconds\":%.3f,"
           "\"send_seconds\":%.3f,\"elapsed_seconds\":%.3f,\"achieved_rate\":%.1f,\"accepted_rate\":%.1f,",
           (unsigned long long)r->items_sent, (unsigned long long)r->items_ok,
           (unsigned long long)r->bytes_sent, avg_bytes(r), self_cpu_s(), r->send_s, r->elapsed_s,
           r->send_s > 0 ? (double)r->items_sent / r->send_s : 0.0,
           accepted_rate(r));
    printf("\"refused_by_status\":{");
    const char *sep = "";
    for (int s = 0; s < LG_MAX_STATUS; s++) {
        if (!r->by_status[s] || (s >= 200 && s < 300)) continue;
        printf("%s\"%d\":%llu", sep, s, (unsigned long long)r->by_status[s]);
        sep = ",";
    }
    printf("},\"by_signal\":{");
    for (uint32_t i = 0; i < ns; i++)
        printf("%s\"%s\":{\"sent\":%llu,\"accepted\":%llu}", i ? "," : "",
               sw_signal_name(lg_pool_signal(st[i].pool)), (unsigned long long)r->stream_items_sent[i],
               (unsigned long long)r->stream_items_ok[i]);
    printf("},\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,\"count\":%llu}",
           ms(lg_hist_pct(&r->lat, 50)), ms(lg_hist_pct(&r->lat, 90)), ms(lg_hist_pct(&r->lat, 99)),
           ms(lg_hist_pct(&r->lat, 99.9)), ms(r->lat.max), (unsigned long long)r->lat.count);
    if (v) print_json_verify(st, v, ns);
    printf("}\n");
}

static void print_text_verify(const lg_stream *st, const lg_vres *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        printf("verify    %s: acked %llu, upstream has %llu: missing %llu, duplicated %llu, unexpected %llu%s%s\n",
               sw_signal_name(lg_pool_signal(st[i].pool)), (unsigned long long)v[i].expected,
               (unsigned long long)v[i].received, (unsigned long long)v[i].missing,
               (unsigned long long)v[i].duplicated, (unsigned long long)v[i].unexpected,
               v[i].unreadable ? " (lines without a token ignored)" : "",
               v[i].incomplete ? " (upstream stored fewer lines than it counted: --keep or --fast?)" : "");
    printf("verify    %s\n", verify_failed(v, n) ? "FAILED" : "ok: every acked item arrived exactly once");
}

static void print_text(const lg_cli *c, const lg_result *r, const lg_stream *st, uint32_t ns,
                       const lg_vres *v)
{
    printf("spillway-loadgen: %s %s/%s to http://%s:%u%s, %u items/request, %u connections, %.0f items/s\n",
           signal_list(c), lg_encoding_name(c->gen.encoding), lg_compression_name(c->gen.compression),
           c->host, c->run.port, c->base, c->gen.batch, c->run.connections, c->run.rate);
    printf("requests  sent %llu  ok %llu  refused %llu  connection errors %llu  unanswered %llu  late %llu  unsent %llu\n",
           (unsigned long long)r->sent, (unsigned long long)r->ok, (unsigned long long)r->refused,
           (unsigned long long)r->conn_errors, (unsigned long long)r->unanswered,
           (unsigned long long)r->late, (unsigned long long)r->unsent);
    printf("items     sent %llu  accepted %llu\n", (unsigned long long)r->items_sent,
           (unsigned long long)r->items_ok);
    printf("rate      achieved %.1f items/s over %.2f s, accepted %.1f items/s over %.2f s\n",
           r->send_s > 0 ? (double)r->items_sent / r->send_s : 0.0, r->send_s,
           accepted_rate(r), r->send_s > r->elapsed_s ? r->send_s : r->elapsed_s);
    printf("bytes     %.1f MB sent, %.0f bytes/request\n", (double)r->bytes_sent / 1e6, avg_bytes(r));
    printf("latency   p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms  (%llu answers)\n",
           ms(lg_hist_pct(&r->lat, 50)), ms(lg_hist_pct(&r->lat, 90)), ms(lg_hist_pct(&r->lat, 99)),
           ms(r->lat.max), (unsigned long long)r->lat.count);
    for (int s = 0; s < LG_MAX_STATUS; s++)
        if (r->by_status[s] && (s < 200 || s >= 300))
            printf("refused   status %d: %llu\n", s, (unsigned long long)r->by_status[s]);
    if (v) print_text_verify(st, v, ns);
}

/* Builds one pool per signal sent. 0 or a project error code. */
static int build_streams(lg_cli *c, lg_pool **pools, lg_stream *st, uint32_t *n)
{
    *n = 0;
    for (int s = 0; s < SIG_COUNT; s++) {
        if (!c->mix[s]) continue;
        lg_gen_opts g = c->gen;
        int err = 0;
        g.signal = (sw_signal)s;
        g.rate = c->run.rate * c->mix[s] / mix_total(c);
        pools[*n] = lg_pool_new(&g, &err);
        if (!pools[*n]) return err ? err : SW_ENOMEM;
        st[*n] = (lg_stream){.pool = pools[*n], .path = c->path[s], .weight = c->mix[s]};
        (*n)++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int ret = 1;
    lg_cli cli;
    lg_pool *pools[SIG_COUNT] = {0};
    lg_stream st[SIG_COUNT];
    lg_vres vres[SIG_COUNT];
    uint32_t ns = 0;
    lg_result *res = NULL;
    int a = parse_args(&cli, argc, argv);
    if (a != 0) {
        if (a < 0) fputs("spillway-loadgen: see --help\n", stderr);
        return a > 0 ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer closing mid-write is counted, not fatal */
    int err = build_streams(&cli, pools, st, &ns);
    res = calloc(1, sizeof *res);
    if (err || !res) {
        fprintf(stderr, "spillway-loadgen: cannot build requests: %s\n", sw_strerror(err ? err : SW_ENOMEM));
        goto done;
    }
    err = lg_run(&cli.run, st, ns, res);
    if (err) {
        fprintf(stderr, "spillway-loadgen: cannot run: %s\n", sw_strerror(err));
        goto done;
    }
    if (cli.verify && cli.verify_missing && !(cli.vo.missing_out = fopen(cli.verify_missing, "w"))) {
        fprintf(stderr, "spillway-loadgen: cannot write %s\n", cli.verify_missing);
        goto done;
    }
    if (cli.verify && (res->ok_seq_incomplete || lg_verify_run(&cli.vo, st, ns, res, vres) != 0)) {
        fputs("spillway-loadgen: verify could not be done\n", stderr);
        goto done;
    }
    if (cli.json) print_json(&cli, res, st, ns, cli.verify ? vres : NULL);
    else if (!cli.quiet) print_text(&cli, res, st, ns, cli.verify ? vres : NULL);
    ret = cli.verify && verify_failed(vres, ns) ? 3 : 0;
done:
    if (cli.vo.missing_out) fclose(cli.vo.missing_out);
    lg_result_destroy(res);
    free(res);
    for (uint32_t i = 0; i < SIG_COUNT; i++) lg_pool_free(pools[i]);
    return ret;
}
