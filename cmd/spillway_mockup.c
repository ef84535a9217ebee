/* spillway-mockup — a mock OTLP/HTTP upstream for tests, demos and benchmarks.
 *
 * Single-threaded: one event_base runs the HTTP server, the latency timers
 * and the SIGTERM/SIGINT handlers. The server lives in testing/mockup/; the
 * endpoints and flags are documented in docs/mockup.md. Exit status: 0 after
 * a signal, 1 when it cannot start, 2 for a usage error.
 */
#define LOG_COMPONENT "mockup"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/log.h"
#include "testing/mockup/mock.h"

#ifndef SW_VERSION
#define SW_VERSION "0.0.0"
#endif

static void usage(FILE *f)
{
    fprintf(f,
        "usage: spillway-mockup [options]\n"
        "\n"
        "Mock OTLP/HTTP upstream: accepts POST /v1/traces, /v1/metrics, /v1/logs\n"
        "(protobuf or JSON; gzip, zstd or identity), counts and stores what it got,\n"
        "and answers with configurable latency, errors and 429s. Inspection:\n"
        "GET /stats, /received/{traces,metrics,logs,headers}, /healthz;\n"
        "POST /reset, /admin/fail?count=N&code=C, /admin/latency?ms=N,\n"
        "/admin/outage?seconds=N&mode=refuse|503|429|hang|trickle|continue.\n"
        "See docs/mockup.md.\n"
        "\n"
        "  --listen HOST:PORT   listen address (default 127.0.0.1:4319; port 0 = any)\n"
        "  --ready-file PATH    once listening, write 'http=HOST:PORT' (or https=)\n"
        "                       to PATH.tmp and rename it to PATH\n"
        "  --latency-ms N       delay every answer to POST /v1/* by N ms (default 0)\n"
        "  --error-rate F       fraction 0..1 of POSTs answered --error-code (default 0)\n"
        "  --error-code C       status for injected errors (default 503)\n"
        "  --rate-429 F         fraction 0..1 of POSTs answered 429 (default 0)\n"
        "  --retry-after S      Retry-After seconds sent with 429 (default 1)\n"
        "  --fail-first N       answer the first N POSTs with --error-code (default 0)\n"
        "  --success-code C     200 (default), 201 or 204 (204: empty body)\n"
        "  --tls-cert FILE      serve HTTPS with this PEM certificate (chain)\n"
        "  --tls-key FILE       ... and this PEM private key\n"
        "  --keep N             max stored content lines per signal (default 1000000)\n"
        "  --fast               validate and count only, store no content\n"
        "  --seed S             seed of the error/429 draws (default 1)\n"
        "  --outage-schedule DOWN_S/EVERY_S[/MODE]\n"
        "                       repeating outage: every EVERY_S seconds, up for\n"
        "                       EVERY_S - DOWN_S, then down for DOWN_S (e.g. 5/10/503);\n"
        "                       MODE refuse (default), 503, 429, hang, trickle\n"
        "                       (a 200 one byte per second) or continue (100 Continue\n"
        "                       lines every 10 ms, no final answer)\n"
        "  --outage-at START_S:DURATION_S[:MODE]\n"
        "                       one outage START_S seconds after start\n"
        "  --admin-listen HOST:PORT\n"
        "                       also serve every endpoint on this address; it is\n"
        "                       never refused (ready file gets 'admin=HOST:PORT')\n"
        "  --log-level L        error|warn|info|debug (default info)\n"
        "  --version            print the version\n"
        "  --help               this text\n");
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return SW_EINVAL;
    *out = v;
    return 0;
}

static int parse_rate(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= 0.0 && v <= 1.0)) return SW_EINVAL;
    *out = v;
    return 0;
}

/* "HOST:PORT" or "[V6]:PORT" into host (cap bytes) / *port. */
static int parse_hostport(const char *s, char *host, size_t cap, int *port_out)
{
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s) return SW_EINVAL;
    size_t hl = (size_t)(colon - s);
    if (s[0] == '[' && hl >= 2 && s[hl - 1] == ']') { s++; hl -= 2; }
    if (hl == 0 || hl >= cap) return SW_EINVAL;
    long port;
    if (parse_long(colon + 1, 0, 65535, &port)) return SW_EINVAL;
    memcpy(host, s, hl);
    host[hl] = '\0';
    *port_out = (int)port;
    return 0;
}

enum {
    OPT_LISTEN = 256, OPT_READY, OPT_LATENCY, OPT_ERATE, OPT_ECODE, OPT_R429, OPT_RETRY,
    OPT_FAILFIRST, OPT_SUCCESS, OPT_CERT, OPT_KEY, OPT_KEEP, OPT_FAST, OPT_SEED, OPT_LOG,
    OPT_SCHEDULE, OPT_AT, OPT_ADMIN, OPT_VERSION, OPT_HELP
};

static const struct option long_opts[] = {
    {"listen", required_argument, NULL, OPT_LISTEN},
    {"ready-file", required_argument, NULL, OPT_READY},
    {"latency-ms", required_argument, NULL, OPT_LATENCY},
    {"error-rate", required_argument, NULL, OPT_ERATE},
    {"error-code", required_argument, NULL, OPT_ECODE},
    {"rate-429", required_argument, NULL, OPT_R429},
    {"retry-after", required_argument, NULL, OPT_RETRY},
    {"fail-first", required_argument, NULL, OPT_FAILFIRST},
    {"success-code", required_argument, NULL, OPT_SUCCESS},
    {"tls-cert", required_argument, NULL, OPT_CERT},
    {"tls-key", required_argument, NULL, OPT_KEY},
    {"keep", required_argument, NULL, OPT_KEEP},
    {"fast", no_argument, NULL, OPT_FAST},
    {"seed", required_argument, NULL, OPT_SEED},
    {"log-level", required_argument, NULL, OPT_LOG},
    {"outage-schedule", required_argument, NULL, OPT_SCHEDULE},
    {"outage-at", required_argument, NULL, OPT_AT},
    {"admin-listen", required_argument, NULL, OPT_ADMIN},
    {"version", no_argument, NULL, OPT_VERSION},
    {"help", no_argument, NULL, OPT_HELP},
    {NULL, 0, NULL, 0},
};

/* Applies one option; SW_EINVAL for a bad value. */
static int apply_opt(int c, const char *arg, mock_opts *o, int *level)
{
    long v;
    int rc = 0;
    switch (c) {
    case OPT_LISTEN: return parse_hostport(arg, o->host, sizeof o->host, &o->port);
    case OPT_ADMIN: return parse_hostport(arg, o->admin_host, sizeof o->admin_host, &o->admin_port);
    case OPT_SCHEDULE: return mock_parse_schedule(arg, &o->outage);
    case OPT_AT: return mock_parse_outage_at(arg, &o->outage);
    case OPT_READY: o->ready_file = arg; return 0;
    case OPT_LATENCY: rc = parse_long(arg, 0, 3600000, &v); o->latency_ms = (int)v; break;
    case OPT_ERATE: return parse_rate(arg, &o->error_rate);
    case OPT_ECODE: rc = parse_long(arg, 100, 599, &v); o->error_code = (int)v; break;
    case OPT_R429: return parse_rate(arg, &o->rate_429);
    case OPT_RETRY: rc = parse_long(arg, 0, 86400, &v); o->retry_after = (int)v; break;
    case OPT_FAILFIRST: rc = parse_long(arg, 0, LONG_MAX, &o->fail_first); break;
    case OPT_SUCCESS:
        rc = parse_long(arg, 200, 204, &v);
        if (rc == 0 && v != 200 && v != 201 && v != 204) rc = SW_EINVAL;
        o->success_code = (int)v;
        break;
    case OPT_CERT: o->tls_cert = arg; return 0;
    case OPT_KEY: o->tls_key = arg; return 0;
    case OPT_KEEP: rc = parse_long(arg, 0, LONG_MAX, &v); o->keep = (size_t)v; break;
    case OPT_FAST: o->fast = 1; return 0;
    case OPT_SEED: rc = parse_long(arg, 0, LONG_MAX, &v); o->seed = (uint64_t)v; break;
    case OPT_LOG: *level = log_level_parse(arg); return *level < 0 ? SW_EINVAL : 0;
    default: return SW_EINVAL;
    }
    return rc;
}

/* 0: run; 1: --help/--version done (exit 0); 2: usage error. */
static int parse_args(int argc, char **argv, mock_opts *o, int *level)
{
    int c;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
        if (c == OPT_HELP) { usage(stdout); return 1; }
        if (c == OPT_VERSION) { printf("spillway-mockup %s\n", SW_VERSION); return 1; }
        if (c == '?' || c == ':') {
            fprintf(stderr, "spillway-mockup: unknown option or missing value: %s\n",
                    argv[optind - 1]);
            return 2;
        }
        if (apply_opt(c, optarg, o, level) != 0) {
            fprintf(stderr, "spillway-mockup: bad value for --%s: '%s'\n",
                    long_opts[c - OPT_LISTEN].name, optarg ? optarg : "");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "spillway-mockup: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->tls_cert != !o->tls_key) {
        fprintf(stderr, "spillway-mockup: --tls-cert and --tls-key go together\n");
        return 2;
    }
    return 0;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    LOG_INFO("signal %d: shutting down", (int)sig);
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    mock_opts o;
    mock_opts_defaults(&o);
    int level = LOG_LVL_INFO;
    int pr = parse_args(argc, argv, &o, &level);
    if (pr == 1) return 0;
    if (pr == 2) {
        fprintf(stderr, "try 'spillway-mockup --help'\n");
        return 2;
    }
    log_setup((log_level)level, 1);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    mock_server *srv = NULL;
    struct event *sterm = NULL, *sint = NULL;
    struct event_base *base = event_base_new();
    if (!base) goto done;
    sterm = evsignal_new(base, SIGTERM, on_signal, base);
    sint = evsignal_new(base, SIGINT, on_signal, base);
    if (!sterm || !sint || event_add(sterm, NULL) || event_add(sint, NULL)) goto done;
    if (mock_server_new(base, &o, &srv) != 0) goto done;
    if (event_base_dispatch(base) == 0) status = 0;
done:
    mock_server_free(srv);
    if (sint) event_free(sint);
    if (sterm) event_free(sterm);
    if (base) event_base_free(base);
    return status;
}
