/* spillway_loadgen.c — OTLP/HTTP workload generator.
 *
 * Sends deterministic traces, metrics or logs requests (testing/loadgen/
 * lg_gen.h) to an OTLP/HTTP endpoint at a fixed open-loop rate
 * (testing/loadgen/lg_client.h) and reports what happened: requests and
 * items sent and accepted, refusals by status, connection errors, late
 * (backlogged) requests, achieved rate and latency percentiles. Exit status:
 * 0 when the run completed (whatever the server answered), 1 when it could
 * not run, 2 on a usage error.
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

typedef struct lg_cli {
    lg_gen_opts gen;
    lg_run_opts run;
    const char *endpoint;
    char host[256];
    char path[512];
    int json, quiet;
} lg_cli;

static void usage(FILE *f)
{
    fputs(
        "usage: spillway-loadgen [options]\n"
        "Sends OTLP/HTTP requests at a fixed open-loop rate and reports the outcome.\n\n"
        "  --endpoint URL          base URL (default http://127.0.0.1:4318); /v1/<signal> is\n"
        "                          appended unless the URL already ends with it\n"
        "  --signal S              traces | metrics | logs (default traces)\n"
        "  --rate N                items (spans, data points, log records) per second\n"
        "                          (default 10000); requests go out every batch/rate seconds;\n"
        "                          0 = closed loop, as fast as the connections allow\n"
        "  --batch N               items per request (default 100)\n"
        "  --connections N         keep-alive connections, one request in flight each (default 4)\n"
        "  --duration SECONDS      length of the send window (default 10)\n"
        "  --count N               send exactly N requests instead of a duration\n"
        "  --encoding E            protobuf | json (default protobuf)\n"
        "  --compression C         none | gzip | zstd (default none)\n"
        "  --services N            distinct service.name values (default 1)\n"
        "  --attrs N               attributes per span / data point / log record (default 7)\n"
        "  --seed S                generator seed; the same seed gives the same bytes (default 1)\n"
        "  --pool N                distinct pre-built requests (default: services clamped to 16..256)\n"
        "  --timeout SECONDS       per-request timeout and final drain limit (default 10)\n"
        "  --json                  print the summary as one JSON object on stdout\n"
        "  --quiet                 no progress line, no text summary unless --json\n"
        "  --help                  this text\n\n"
        "Requests due while every connection is busy wait in a backlog and are counted as\n"
        "late; latency is measured from each request's scheduled time, so a slow server shows\n"
        "up as latency. Plain protobuf requests get fresh trace/span ids on every pass over\n"
        "the pool. A progress line is printed every second when stderr is a terminal.\n",
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

/* Splits the endpoint into host, port and request path. 0 or -1. */
static int parse_endpoint(lg_cli *c)
{
    int rc = -1;
    struct evhttp_uri *u = evhttp_uri_parse(c->endpoint);
    if (!u || !evhttp_uri_get_scheme(u) || strcmp(evhttp_uri_get_scheme(u), "http") != 0 ||
        !evhttp_uri_get_host(u))
        goto done;
    int port = evhttp_uri_get_port(u);
    c->run.port = (uint16_t)(port > 0 ? port : 80);
    snprintf(c->host, sizeof c->host, "%s", evhttp_uri_get_host(u));
    const char *p = evhttp_uri_get_path(u);
    const char *sig = sw_signal_path(c->gen.signal);
    size_t pl = p ? strlen(p) : 0, sl = strlen(sig);
    while (pl > 0 && p[pl - 1] == '/') pl--;
    if (pl >= sl && strncmp(p + pl - sl, sig, sl) == 0)
        snprintf(c->path, sizeof c->path, "%.*s", (int)pl, p);
    else
        snprintf(c->path, sizeof c->path, "%.*s%s", (int)pl, p ? p : "", sig);
    rc = 0;
done:
    if (u) evhttp_uri_free(u);
    return rc;
}

/* Option codes, in the order of LONGOPTS (apply_opt names an option by it). */
enum { O_ENDPOINT = 256, O_SIGNAL, O_RATE, O_BATCH, O_CONNS, O_DURATION, O_COUNT, O_ENCODING,
       O_COMPRESSION, O_SERVICES, O_ATTRS, O_SEED, O_POOL, O_TIMEOUT, O_JSON, O_QUIET, O_HELP };

static const struct option LONGOPTS[] = {
    {"endpoint", required_argument, NULL, O_ENDPOINT}, {"signal", required_argument, NULL, O_SIGNAL},
    {"rate", required_argument, NULL, O_RATE}, {"batch", required_argument, NULL, O_BATCH},
    {"connections", required_argument, NULL, O_CONNS}, {"duration", required_argument, NULL, O_DURATION},
    {"count", required_argument, NULL, O_COUNT}, {"encoding", required_argument, NULL, O_ENCODING},
    {"compression", required_argument, NULL, O_COMPRESSION}, {"services", required_argument, NULL, O_SERVICES},
    {"attrs", required_argument, NULL, O_ATTRS}, {"seed", required_argument, NULL, O_SEED},
    {"pool", required_argument, NULL, O_POOL}, {"timeout", required_argument, NULL, O_TIMEOUT},
    {"json", no_argument, NULL, O_JSON}, {"quiet", no_argument, NULL, O_QUIET},
    {"help", no_argument, NULL, O_HELP}, {NULL, 0, NULL, 0}};

/* Applies one option; 0, or -1 with a message printed. */
static int apply_opt(lg_cli *c, int opt, const char *arg)
{
    int v, bad = 0;
    switch (opt) {
    case O_ENDPOINT: c->endpoint = arg; break;
    case O_SIGNAL: bad = (v = lg_signal_parse(arg)) < 0; c->gen.signal = (sw_signal)(bad ? 0 : v); break;
    case O_RATE: bad = parse_num(arg, 0, 1e9, &c->run.rate); break;
    case O_BATCH: bad = parse_u32(arg, 1, 1000000, &c->gen.batch); break;
    case O_CONNS: bad = parse_u32(arg, 1, 1024, &c->run.connections); break;
    case O_DURATION: bad = parse_num(arg, 0.001, 1e6, &c->run.duration_s); break;
    case O_COUNT: bad = parse_u64(arg, &c->run.count) || c->run.count == 0; break;
    case O_ENCODING: bad = (v = lg_encoding_parse(arg)) < 0; c->gen.encoding = (lg_encoding)(bad ? 0 : v); break;
    case O_COMPRESSION:
        bad = (v = lg_compression_parse(arg)) < 0;
        c->gen.compression = (lg_compression)(bad ? 0 : v);
        break;
    case O_SERVICES: bad = parse_u32(arg, 1, 10000000, &c->gen.services); break;
    case O_ATTRS: bad = parse_u32(arg, 0, 1000, &c->gen.attrs); break;
    case O_SEED: bad = parse_u64(arg, &c->gen.seed); break;
    case O_POOL: bad = parse_u32(arg, 1, 65536, &c->gen.pool); break;
    case O_TIMEOUT: bad = parse_num(arg, 0.001, 3600, &c->run.timeout_s); break;
    case O_JSON: c->json = 1; break;
    case O_QUIET: c->quiet = 1; break;
    default: return -1;
    }
    if (bad) fprintf(stderr, "spillway-loadgen: invalid value '%s' for --%s\n", arg, LONGOPTS[opt - O_ENDPOINT].name);
    return bad ? -1 : 0;
}

/* 0 to run, 1 after --help, -1 on a usage error. */
static int parse_args(lg_cli *c, int argc, char **argv)
{
    *c = (lg_cli){.endpoint = "http://127.0.0.1:4318"};
    c->gen = (lg_gen_opts){.signal = SIG_TRACES, .batch = 100, .services = 1, .attrs = 7, .seed = 1};
    c->run = (lg_run_opts){.rate = 10000, .connections = 4, .duration_s = 10, .timeout_s = 10};
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
    if (parse_endpoint(c) != 0) {
        fprintf(stderr, "spillway-loadgen: invalid endpoint '%s' (http://HOST:PORT[/PATH])\n", c->endpoint);
        return -1;
    }
    c->run.host = c->host;
    c->run.path = c->path;
    c->run.batch = c->gen.batch;
    c->run.content_type = c->gen.encoding == LG_ENC_JSON ? "application/json" : "application/x-protobuf";
    c->run.content_encoding = c->gen.compression == LG_COMP_NONE ? NULL : lg_compression_name(c->gen.compression);
    c->run.progress = !c->quiet && !c->json && isatty(STDERR_FILENO);
    return 0;
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

static void print_json(const lg_cli *c, const lg_result *r)
{
    printf("{\"signal\":\"%s\",\"encoding\":\"%s\",\"compression\":\"%s\",\"endpoint\":\"http://%s:%u%s\","
           "\"target_rate\":%.1f,\"batch\":%u,\"connections\":%u,",
           sw_signal_name(c->gen.signal), lg_encoding_name(c->gen.encoding),
           lg_compression_name(c->gen.compression), c->host, c->run.port, c->path, c->run.rate,
           c->gen.batch, c->run.connections);
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
    printf("},\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,\"count\":%llu}}\n",
           ms(lg_hist_pct(&r->lat, 50)), ms(lg_hist_pct(&r->lat, 90)), ms(lg_hist_pct(&r->lat, 99)),
           ms(lg_hist_pct(&r->lat, 99.9)), ms(r->lat.max), (unsigned long long)r->lat.count);
}

static void print_text(const lg_cli *c, const lg_result *r)
{
    printf("spillway-loadgen: %s %s/%s to http://%s:%u%s, %u items/request, %u connections, %.0f items/s\n",
           sw_signal_name(c->gen.signal), lg_encoding_name(c->gen.encoding),
           lg_compression_name(c->gen.compression), c->host, c->run.port, c->path, c->gen.batch,
           c->run.connections, c->run.rate);
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
}

int main(int argc, char **argv)
{
    int ret = 1;
    lg_cli cli;
    lg_pool *pool = NULL;
    lg_result *res = NULL;
    int a = parse_args(&cli, argc, argv);
    if (a != 0) {
        if (a < 0) fputs("spillway-loadgen: see --help\n", stderr);
        return a > 0 ? 0 : 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer closing mid-write is counted, not fatal */
    int err = 0;
    pool = lg_pool_new(&cli.gen, &err);
    res = calloc(1, sizeof *res);
    if (!pool || !res) {
        fprintf(stderr, "spillway-loadgen: cannot build requests: %s\n", sw_strerror(pool ? SW_ENOMEM : err));
        goto done;
    }
    err = lg_run(&cli.run, pool, res);
    if (err) {
        fprintf(stderr, "spillway-loadgen: cannot run: %s\n", sw_strerror(err));
        goto done;
    }
    if (cli.json) print_json(&cli, res);
    else if (!cli.quiet) print_text(&cli, res);
    ret = 0;
done:
    free(res);
    lg_pool_free(pool);
    return ret;
}
