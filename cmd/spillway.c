/* spillway — the collector's main().
 *
 * Threads: the main thread runs the ingest event_base (OTLP/HTTP receiver,
 * the pipeline stage it submits to, the self-telemetry server, signals);
 * the exporter owns the export thread; the DLQ its writer thread. The queue
 * between ingest and export is the only hand-off of live data.
 *
 * Shutdown (SIGTERM/SIGINT) never blocks the ingest loop: the signal only
 * STARTS the drain, so /readyz keeps answering (503, pipeline "refusing"),
 * intake keeps answering (503 + Retry-After), and a second signal is seen.
 *   1. stop intake: pl_stop_intake (every request is refused 503), close
 *      the queue (the exporter still pops);
 *   2. drain (on the loop, polled every DRAIN_POLL_MS): wait until the
 *      queue is empty, nothing is in flight and the upstream answers (its
 *      last request succeeded) or the breaker is open, or
 *      service.shutdown_timeout passed;
 *   3. stop the exporter: a short-lived shutdown thread runs the blocking
 *      exp_stop with the time left (it sends what is batched, then spills
 *      what remains to the DLQ) and wakes the loop through done_ev;
 *   4. back on the loop: answer requests still waiting for the DLQ
 *      (pl_flush), close the listener, and leave the loop after one more
 *      pass that sends the last answers; then sync the DLQ and free.
 * A second SIGTERM/SIGINT during step 2 goes to step 3 at once with no time
 * left: everything in memory is appended to the DLQ, then spillway exits 0.
 * During step 3 it cuts the exporter's stop short (exp_hurry): requests in
 * flight are abandoned and everything the exporter holds is appended to
 * the DLQ as at its deadline; step 4 follows and spillway exits 0. Later
 * signals are only logged.
 * SIGUSR1, SIGUSR2 and SIGALRM are handled on the loop and never end the
 * process.
 *
 * SIGHUP reloads the --config file (reload(), on the loop, so between two
 * requests of the ingest thread): a file that does not load changes
 * nothing (its FILE:LINE:COL errors are logged); a valid one is applied —
 * the keys of config/cfg_reload.h at once, the others logged as ignored
 * until a restart. Components keep the cfg they started with for
 * restart-only keys; every cfg a reload applied stays allocated until
 * exit (the export thread may still read the previous one), a few KiB
 * each.
 */
#define LOG_COMPONENT "main"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <event2/thread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "config/cfg_reload.h"
#include "config/cfg_reload_metrics.h"
#include "dlq/dlq.h"
#include "dlq/dlq_cmd.h"
#include "dlq/dlq_metrics.h"
#include "exporters/otlp/exporter.h"
#include "exporters/otlp/exp_metrics.h"
#include "pipeline/pipeline.h"
#include "processors/card_metrics.h"
#include "queue/apq.h"
#include "queue/apq_metrics.h"
#include "receivers/otlp/receiver.h"
#include "receivers/otlp/rcv_grpc.h"
#include "receivers/otlp/rcv_metrics.h"
#include "receivers/filelog/filelog.h"
#include "receivers/filelog/fl_metrics.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/evbase.h"
#include "runtime/log.h"
#include "runtime/metrics.h"
#include "runtime/telemetry.h"

typedef struct app {
    cfg *cfg;                   /* the start-up config: restart-only keys */
    const char *config_path;    /* --config, or NULL (defaults: no reload) */
    cfg **reloaded;             /* owned: every config a reload applied, oldest first */
    size_t n_reloaded;
    sw_metrics *metrics;
    cfg_reload_metrics *reloads; /* owned by metrics */
    apq *queue;
    dlq *dlq;
    struct event_base *base;
    pipeline *pl;
    receiver *rcv;
    rcv_grpc *grpc;                  /* NULL unless receivers.otlp.grpc is on */
    filelog *fl;                /* receivers.filelog, or NULL when off */
    telemetry *tel;
    exporter *exp;
    struct event *sigterm, *sigint;
    struct event *sigother[4];  /* SIGHUP, SIGUSR1, SIGUSR2, SIGALRM */
    struct event *drain_ev;     /* timer: polls the drain (step 2) */
    struct event *done_ev;      /* activated by the shutdown thread (step 3 done) */
    pthread_t stopper;          /* the shutdown thread, once started */
    int stopper_started;
    uint64_t stop_timeout_ms;   /* for the shutdown thread: exp_stop's timeout */
    uint64_t lost;              /* set by the shutdown thread */
    int64_t drain_deadline_ns;
    int stopping;               /* 1: draining; 2: exporter stopping; 3: done */
} app;

#define DRAIN_POLL_MS 20
#define PL_FLUSH_MS 5000

static void usage(FILE *f)
{
    fprintf(f,
            "usage: spillway [--config FILE] [--ready-file PATH]\n"
            "       spillway validate --config FILE\n"
            "       spillway dlq {ls|verify|dump} --dir DIR\n"
            "       spillway dlq {ls|verify|dump|purge} --rejected --dir DIR\n"
            "       spillway dlq replay --dir DIR --to URL [--rate BYTES_PER_S]\n"
            "       spillway --version | --help\n"
            "\n"
            "OpenTelemetry collector: OTLP/HTTP in (receivers.otlp.http.endpoint,\n"
            "default 127.0.0.1:4318), OTLP/HTTP out (exporters.otlphttp.endpoint),\n"
            "self-telemetry on telemetry.endpoint (default 127.0.0.1:8888).\n"
            "\n"
            "  --config FILE      YAML configuration (built-in defaults without it)\n"
            "  --ready-file PATH  once listening, write 'otlp_http=HOST:PORT' and\n"
            "                     (gRPC on) 'otlp_grpc=HOST:PORT' and\n"
            "                     'telemetry=HOST:PORT' lines to PATH\n"
            "  validate           check a configuration file; exit 0, or 1 with\n"
            "                     FILE:LINE:COL: messages\n"
            "  dlq ls             list a DLQ directory's segments, records, ages\n"
            "  dlq verify         verify every segment and record (exit 1 on corruption)\n"
            "  dlq dump           print every record as one OTLP/JSON line\n"
            "  --rejected         the rejected area (DIR/rejected/): data the upstream\n"
            "                     refused for good, kept for inspection; purge removes it\n"
            "  dlq replay         send every record to an OTLP/HTTP endpoint (URL as\n"
            "                     exporters.otlphttp.endpoint), paced at --rate (e.g.\n"
            "                     4MiB; default unlimited); acknowledged records are\n"
            "                     removed, a rerun continues where it stopped\n"
            "  --version          print the version\n");
}

static int load_config(const char *path, cfg **out)
{
    char err[8192];
    if (!path) {
        *out = cfg_defaults();
        return *out ? 0 : SW_ENOMEM;
    }
    int rc = cfg_load(path, out, err, sizeof err);
    if (rc != 0) fputs(err, stderr);
    return rc;
}

static int cmd_validate(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) path = argv[++i];
        else if (strcmp(argv[i], "--help") == 0) { usage(stdout); return 0; }
        else { fprintf(stderr, "validate: unexpected argument '%s'\n", argv[i]); return 2; }
    }
    if (!path) {
        fprintf(stderr, "validate: --config FILE is required\n");
        return 2;
    }
    cfg *c = NULL;
    if (load_config(path, &c) != 0) return 1;
    printf("%s: ok\n", path);
    cfg_free(c);
    return 0;
}

/* dlq_send_fn for `spillway dlq replay`: one blocking POST per record,
 * all over one connection. */
static int replay_send(void *arg, sw_signal sig, const uint8_t *data, size_t len)
{
    return exp_sender_send(arg, sig, data, len) == 0 ? 0 : 1;
}

static int cmd_dlq(int argc, char **argv)
{
    const char *dir = NULL, *to = NULL, *verb = argc > 0 ? argv[0] : "";
    uint64_t rate = 0;
    int rejected = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0 && i + 1 < argc) dir = argv[++i];
        else if (strcmp(argv[i], "--rejected") == 0) rejected = 1;
        else if (strcmp(argv[i], "--to") == 0 && i + 1 < argc) to = argv[++i];
        else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc) {
            if (cfg_parse_size(argv[++i], &rate) != 0) {
                fprintf(stderr, "dlq: bad --rate '%s' (bytes per second, e.g. 4MiB)\n", argv[i]);
                return 2;
            }
        } else { fprintf(stderr, "dlq: unexpected argument '%s'\n", argv[i]); return 2; }
    }
    if (!dir) {
        fprintf(stderr, "dlq %s: --dir DIR is required\n", verb);
        return 2;
    }
    log_setup(LOG_LVL_WARN, 0);
    if (rejected) { /* the rejected area: dir/rejected/ */
        if (strcmp(verb, "ls") == 0) return dlq_cmd_ls_rejected(dir, stdout);
        if (strcmp(verb, "verify") == 0) return dlq_cmd_verify_rejected(dir, stdout);
        if (strcmp(verb, "dump") == 0) return dlq_cmd_dump_rejected(dir, stdout);
        if (strcmp(verb, "purge") == 0) return dlq_cmd_purge_rejected(dir, stdout);
        fprintf(stderr, "dlq %s: --rejected works with ls, verify, dump and purge\n", verb);
        return 2;
    }
    if (strcmp(verb, "ls") == 0) return dlq_cmd_ls(dir, stdout);
    if (strcmp(verb, "verify") == 0) return dlq_cmd_verify(dir, stdout);
    if (strcmp(verb, "dump") == 0) return dlq_cmd_dump(dir, stdout);
    if (strcmp(verb, "replay") == 0) {
        if (!to) {
            fprintf(stderr, "dlq replay: --to URL is required\n");
            return 2;
        }
        exp_sender *snd = exp_sender_new(to, 10000);
        if (!snd) return 1;
        int rc = dlq_cmd_replay(dir, rate, replay_send, snd, stdout);
        exp_sender_free(snd);
        return rc;
    }
    if (strcmp(verb, "purge") == 0) {
        fprintf(stderr, "dlq purge: only the rejected area can be purged (--rejected)\n");
        return 2;
    }
    fprintf(stderr, "dlq: unknown command '%s' (ls, verify, dump, replay, purge --rejected)\n",
            verb);
    return 2;
}

/* The filelog receiver's submissions go to the pipeline like any other. */
typedef struct fl_call {
    fl_submit_done_fn done;
    void *arg;
} fl_call;

static void fl_submitted(void *arg, const pl_outcome *o)
{
    fl_call *c = arg;
    fl_submit_status st = o->status == PL_ACCEPTED ? FL_SUBMIT_ACCEPTED
                          : o->status == PL_REFUSED_SHUTDOWN ? FL_SUBMIT_SHUTDOWN
                          : o->status == PL_REFUSED_DECODE ? FL_SUBMIT_INVALID : FL_SUBMIT_FULL;
    c->done(c->arg, st, o->retry_after_s);
    free(c);
}

static void fl_submit_pl(void *ctx, const fl_submit_req *rq, fl_submit_done_fn done, void *arg)
{
    app *a = ctx;
    fl_call *c = malloc(sizeof *c);
    if (!c) {
        done(arg, FL_SUBMIT_FULL, 1);
        return;
    }
    c->done = done;
    c->arg = arg;
    pl_request r = {SIG_LOGS, rq->pb, rq->len, rq->items, rq->recv_ns, rq->trk};
    pl_submit(a->pl, &r, fl_submitted, c);
}

/* Shutdown thread: the blocking part of the stop (step 3). */
static void *stopper_main(void *arg)
{
    app *a = arg;
    a->lost = exp_stop(a->exp, a->stop_timeout_ms);
    event_active(a->done_ev, EV_READ, 0);
    return NULL;
}

/* Step 3: stops the exporter on the shutdown thread with timeout_ms left. */
static void stop_exporter(app *a, uint64_t timeout_ms)
{
    if (a->stopping >= 2) return;
    a->stopping = 2;
    event_del(a->drain_ev);
    a->stop_timeout_ms = timeout_ms;
    LOG_INFO("stopping the exporter (%llu ms left to send what it holds)",
             (unsigned long long)timeout_ms);
    if (pthread_create(&a->stopper, NULL, stopper_main, a) == 0) {
        a->stopper_started = 1;
        return;
    }
    LOG_ERROR("cannot start the shutdown thread; stopping the exporter on the loop");
    stopper_main(a);
}

/* Step 4, on the loop once the exporter stopped. */
static void on_stopped(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app *a = arg;
    if (a->stopper_started) pthread_join(a->stopper, NULL);
    a->stopper_started = 0;
    a->stopping = 3;
    if (a->lost)
        LOG_WARN("shutdown: %llu items could be neither delivered nor stored",
                 (unsigned long long)a->lost);
    else
        LOG_INFO("shutdown: queue drained");
    pl_flush(a->pl, PL_FLUSH_MS);
    if (a->fl) fl_save_now(a->fl);
    rcv_stop_intake(a->rcv);
    rcv_grpc_stop_intake(a->grpc);
    /* One more pass of the loop sends the last answers. */
    struct timeval grace = {0, 200000};
    event_base_loopexit(a->base, &grace);
}

/* Step 2: the queue drains while the exporter runs as usual. */
static void on_drain_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    app *a = arg;
    int64_t left = a->drain_deadline_ns - clock_mono_ns();
    /* idle: nothing queued or in flight, and the upstream answering — or
     * the breaker open, when the exporter stores what it holds in the DLQ
     * at once. A failing upstream with the breaker closed leaves batches
     * backing off: they wait here, where a second signal can still cut the
     * drain short. */
    int idle = apq_items(a->queue) == 0 && exp_in_flight(a->exp) == 0 &&
               (exp_healthy(a->exp) || exp_circuit_open(a->exp));
    if (idle || left <= 0) stop_exporter(a, left > 0 ? (uint64_t)left / 1000000 : 0);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    app *a = arg;
    if (a->stopping == 1) {
        LOG_WARN("second signal %d: storing what is left in the DLQ and exiting", (int)sig);
        stop_exporter(a, 0);
        return;
    }
    if (a->stopping == 2) {
        LOG_WARN("second signal %d: cutting the exporter's stop short; what it holds goes "
                 "to the DLQ", (int)sig);
        exp_hurry(a->exp);
        return;
    }
    if (a->stopping) {
        LOG_WARN("signal %d: already stopping; the exporter is storing what it holds", (int)sig);
        return;
    }
    a->stopping = 1;
    uint64_t ms = a->cfg->service.shutdown_timeout_ms;
    LOG_INFO("signal %d: stopping intake, draining queue (timeout %llu ms)", (int)sig,
             (unsigned long long)ms);
    if (a->fl) fl_stop_intake(a->fl); /* hands on what was read, reads no more */
    pl_stop_intake(a->pl);
    apq_close(a->queue);
    a->drain_deadline_ns = clock_mono_ns() + (int64_t)ms * 1000000;
    struct timeval tick = {0, DRAIN_POLL_MS * 1000};
    if (event_add(a->drain_ev, &tick) != 0) stop_exporter(a, ms);
    else on_drain_tick(-1, 0, a);
}

/* ---- reload (SIGHUP) ---- */

typedef struct reload_keys {
    char list[1024];            /* "a.b, c.d" of changed keys */
    size_t n;
    int want_reloadable;        /* collect the keys that apply at once, else the others */
} reload_keys;

static void collect_key(const char *path, int reloadable, void *arg)
{
    reload_keys *k = arg;
    if (reloadable != k->want_reloadable) return;
    size_t used = strlen(k->list);
    if (used + strlen(path) + 8 < sizeof k->list)
        snprintf(k->list + used, sizeof k->list - used, "%s%s", k->n ? ", " : "", path);
    k->n++;
}

static void reload_failed(app *a, const char *why)
{
    metrics_add(&a->reloads->config_reloads[CFG_RELOAD_FAILURE], 1);
    LOG_ERROR("reload of %s failed (%s); still running on the previous configuration",
              a->config_path, why);
}

/* Logs every line of a cfg_load error text. */
static void log_config_errors(const char *err)
{
    while (*err) {
        size_t n = strcspn(err, "\n");
        if (n) LOG_ERROR("reload: %.*s", (int)n, err);
        err += n + (err[n] == '\n');
    }
}

/* Applies next (owned; kept in a->reloaded once anything may read it). */
static void reload_apply(app *a, cfg *next)
{
    char why[300];
    const cfg *live = a->n_reloaded ? a->reloaded[a->n_reloaded - 1] : a->cfg;
    reload_keys now = {.want_reloadable = 1}, later = {.want_reloadable = 0};
    cfg_reload_diff(live, next, collect_key, &now, NULL);
    cfg_reload_diff(a->cfg, next, collect_key, &later, NULL);
    cfg **grown = realloc(a->reloaded, (a->n_reloaded + 1) * sizeof *grown);
    if (!grown) {
        cfg_free(next);
        reload_failed(a, "out of memory");
        return;
    }
    a->reloaded = grown;
    int rc = exp_reconfigure(a->exp, next);
    if (rc != 0) {
        cfg_free(next);
        reload_failed(a, "exporters.otlphttp: invalid settings");
        return;
    }
    a->reloaded[a->n_reloaded++] = next; /* the export thread may read it from now on */
    if ((rc = pl_reconfigure(a->pl, next, why, sizeof why)) != 0) {
        metrics_add(&a->reloads->config_reloads[CFG_RELOAD_FAILURE], 1);
        LOG_ERROR("reload of %s failed (%s) after the exporter's settings were applied; "
                  "everything else runs on the previous configuration", a->config_path, why);
        return;
    }
    apq_set_weights(a->queue, next->priority.weights);
    dlq_set_replay_rate(a->dlq, next->dlq.replay_rate);
    log_setup((log_level)next->telemetry.log_level, next->telemetry.log_json);
    metrics_add(&a->reloads->config_reloads[CFG_RELOAD_SUCCESS], 1);
    LOG_INFO("reloaded %s: %zu keys changed and applied%s%s", a->config_path, now.n,
             now.n ? ": " : "", now.list);
    if (later.n)
        LOG_WARN("reload: %zu keys differ from the running configuration but need a "
                 "restart, ignored until then: %s", later.n, later.list);
}

static void reload(app *a)
{
    char err[8192];
    cfg *next = NULL;
    if (!a->config_path) {
        LOG_WARN("SIGHUP: started without --config (built-in defaults): nothing to reload");
        return;
    }
    if (a->stopping) {
        LOG_WARN("SIGHUP: shutting down; configuration not reloaded");
        return;
    }
    LOG_INFO("SIGHUP: reloading %s", a->config_path);
    int rc = cfg_load(a->config_path, &next, err, sizeof err);
    if (rc != 0) {
        log_config_errors(err);
        reload_failed(a, sw_strerror(rc));
        return;
    }
    reload_apply(a, next);
}

/* Signals that must never end the process. */
static void on_other_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    if (sig == SIGHUP)
        reload(arg);
    else
        LOG_DEBUG("signal %d ignored", (int)sig);
}

static int ready_receiver(void *arg, char *detail, size_t len)
{
    int ok = rcv_ready(arg);
    snprintf(detail, len, ok ? "accepting" : "stopped");
    return ok;
}

static int ready_grpc(void *arg, char *detail, size_t len)
{
    int ok = rcv_grpc_ready(arg);
    snprintf(detail, len, ok ? "accepting" : "stopped");
    return ok;
}

static int ready_pipeline(void *arg, char *detail, size_t len)
{
    int ok = pl_ready(arg);
    snprintf(detail, len, ok ? "accepting" : "refusing");
    return ok;
}

static int ready_exporter(void *arg, char *detail, size_t len)
{
    int ok = exp_healthy(arg);
    snprintf(detail, len, ok ? "upstream accepting" : "upstream failing");
    return ok;
}

static int ready_queue(void *arg, char *detail, size_t len)
{
    double fill = apq_fill_ratio(arg);
    snprintf(detail, len, "fill %.3f", fill);
    return fill < 1.0;
}

static int write_ready_file(const app *a, const char *path)
{
    char tmp[4096];
    char *host = NULL, *thost = NULL;
    char *ghost = NULL;
    uint16_t port = 0;
    int rc = SW_EIO;
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp) return SW_EINVAL;
    if (cfg_split_hostport(a->cfg->receiver.http_endpoint, &host, &port) != 0) goto out;
    if (cfg_split_hostport(a->cfg->telemetry.endpoint, &thost, &port) != 0) goto out;
    if (a->grpc && cfg_split_hostport(a->cfg->receiver.grpc_endpoint, &ghost, &port) != 0)
        goto out;
    FILE *f = fopen(tmp, "w");
    if (!f) goto out;
    fprintf(f, "otlp_http=%s:%u\ntelemetry=%s:%u\n", host, rcv_http_port(a->rcv), thost,
            telemetry_port(a->tel));
    if (ghost) fprintf(f, "otlp_grpc=%s:%u\n", ghost, rcv_grpc_port(a->grpc));
    if (fclose(f) != 0 || rename(tmp, path) != 0) goto out;
    rc = 0;
out:
    if (rc) LOG_ERROR("cannot write ready file %s: %s", path, strerror(errno));
    free(host);
    free(thost);
    free(ghost);
    return rc;
}

/* Every component's families, in the page order of /metrics, whether the
 * component runs or not (the filelog and gRPC families are announced, at
 * zero, when those receivers are off). Components find their blocks again
 * when they are built. 0 or SW_ENOMEM. */
static int register_metrics(app *a)
{
    sw_metrics *m = a->metrics;
    if (!rcv_http_metrics_get(m) || !rcv_grpc_metrics_get(m) || !card_metrics_get(m) ||
        !apq_metrics_get(m) || !dlq_metrics_get(m) || !exp_metrics_get(m) ||
        !fl_metrics_get(m) || !(a->reloads = cfg_reload_metrics_get(m)))
        return SW_ENOMEM;
    return 0;
}

static int app_start(app *a, const char *ready_file)
{
    char *host = NULL;
    uint16_t port = 0;
    int rc = SW_ENOMEM;
    a->metrics = metrics_new();
    if (a->metrics && register_metrics(a) == 0) {
        apq_opts qo;
        apq_opts_from_cfg(&qo, a->cfg, a->metrics);
        a->queue = apq_new(&qo);
    }
    a->base = a->queue ? evbase_new() : NULL;
    if (!a->base) goto out;
    rc = SW_EINVAL;
    if (cfg_split_hostport(a->cfg->telemetry.endpoint, &host, &port) != 0) goto out;
    a->tel = telemetry_new(a->base, host, port, a->metrics);
    if (!a->tel) goto out;
    dlq_opts dopts;
    dlq_opts_from_cfg(&dopts, a->cfg);
    if ((rc = dlq_open(&dopts, a->metrics, &a->dlq)) != 0) {
        LOG_ERROR("cannot open the DLQ in %s: %s", a->cfg->dlq.dir, sw_strerror(rc));
        goto out;
    }
    rc = SW_ENOMEM;
    a->exp = exp_new(a->cfg, a->queue, a->metrics);
    a->pl = a->exp ? pl_new(a->base, a->cfg, a->queue, a->dlq, a->metrics) : NULL;
    a->rcv = a->pl ? rcv_new(a->base, a->cfg, a->pl, a->metrics) : NULL;
    if (!a->rcv) goto out;
    exp_set_dlq(a->exp, a->dlq);
    if ((rc = rcv_start(a->rcv)) != 0) goto out;
    if (rcv_grpc_enabled(a->cfg)) {
        rc = SW_ENOMEM;
        if (!(a->grpc = rcv_grpc_new(a->base, a->cfg, a->pl, a->metrics,
                                     rcv_intake_budget(a->rcv)))) goto out;
        if ((rc = rcv_grpc_start(a->grpc)) != 0) goto out;
        telemetry_add_component(a->tel, "receiver_grpc", ready_grpc, a->grpc);
    }
    if ((rc = exp_start(a->exp)) != 0) goto out;
    if (a->cfg->filelog.include.n) {
        rc = SW_ENOMEM;
        a->fl = fl_new(a->base, a->cfg, a->metrics, fl_submit_pl, a);
        if (!a->fl || (rc = fl_start(a->fl)) != 0) goto out;
    }
    telemetry_add_component(a->tel, "receiver", ready_receiver, a->rcv);
    telemetry_add_component(a->tel, "pipeline", ready_pipeline, a->pl);
    telemetry_add_component(a->tel, "queue", ready_queue, a->queue);
    telemetry_add_component(a->tel, "exporter", ready_exporter, a->exp);
    telemetry_add_component(a->tel, "dlq", dlq_ready, a->dlq);
    a->sigterm = evsignal_new(a->base, SIGTERM, on_signal, a);
    a->sigint = evsignal_new(a->base, SIGINT, on_signal, a);
    rc = SW_ENOMEM;
    if (!a->sigterm || !a->sigint) goto out;
    event_add(a->sigterm, NULL);
    event_add(a->sigint, NULL);
    static const int others[4] = {SIGHUP, SIGUSR1, SIGUSR2, SIGALRM};
    for (int i = 0; i < 4; i++) {
        a->sigother[i] = evsignal_new(a->base, others[i], on_other_signal, a);
        if (!a->sigother[i] || event_add(a->sigother[i], NULL) != 0) goto out;
    }
    a->drain_ev = event_new(a->base, -1, EV_PERSIST, on_drain_tick, a);
    a->done_ev = event_new(a->base, -1, 0, on_stopped, a);
    if (!a->drain_ev || !a->done_ev) goto out;
    rc = ready_file ? write_ready_file(a, ready_file) : 0;
out:
    free(host);
    return rc;
}

static void app_free(app *a)
{
    if (a->stopper_started) pthread_join(a->stopper, NULL);
    exp_stop(a->exp, 0); /* no-op once stopped (or never started) */
    if (a->sigterm) event_free(a->sigterm);
    if (a->sigint) event_free(a->sigint);
    for (int i = 0; i < 4; i++)
        if (a->sigother[i]) event_free(a->sigother[i]);
    if (a->drain_ev) event_free(a->drain_ev);
    if (a->done_ev) event_free(a->done_ev);
    /* The DLQ completes every pending append before the ports go. */
    pl_flush(a->pl, 0); /* also detaches the journal's store from the DLQ */
    dlq_close(a->dlq);
    pl_flush(a->pl, 0); /* answers what the DLQ completed */
    fl_free(a->fl); /* saves the positions once more */
    exp_free(a->exp);
    rcv_grpc_free(a->grpc); /* before rcv_free: it credits the budget rcv owns */
    rcv_free(a->rcv);
    pl_free(a->pl);
    telemetry_free(a->tel);
    if (a->base) event_base_free(a->base);
    apq_free(a->queue);
    metrics_free(a->metrics);
    for (size_t i = 0; i < a->n_reloaded; i++) cfg_free(a->reloaded[i]);
    free(a->reloaded);
    cfg_free(a->cfg);
}

int main(int argc, char **argv)
{
    const char *config = NULL, *ready_file = NULL;
    if (argc > 1 && strcmp(argv[1], "validate") == 0) return cmd_validate(argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "dlq") == 0) return cmd_dlq(argc - 2, argv + 2);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config = argv[++i];
        else if (strcmp(argv[i], "--ready-file") == 0 && i + 1 < argc) ready_file = argv[++i];
        else if (strcmp(argv[i], "--version") == 0) {
            printf("spillway %s (%s)\n", SW_VERSION, SW_GITREV);
            return 0;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "spillway: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    app a = {0};
    a.config_path = config;
    if (load_config(config, &a.cfg) != 0) return 1;
    log_setup((log_level)a.cfg->telemetry.log_level, a.cfg->telemetry.log_json);
    signal(SIGPIPE, SIG_IGN);
    /* Until the loop handles them (app_start), these must not end the process. */
    signal(SIGHUP, SIG_IGN);
    signal(SIGUSR1, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    signal(SIGALRM, SIG_IGN);
    if (evthread_use_pthreads() != 0) {
        LOG_ERROR("libevent threading support unavailable");
        cfg_free(a.cfg);
        return 1;
    }
    int rc = app_start(&a, ready_file);
    if (rc == 0) {
        LOG_INFO("spillway %s started: otlp_http=%s telemetry=%s upstream=%s", SW_VERSION,
                 a.cfg->receiver.http_endpoint, a.cfg->telemetry.endpoint,
                 a.cfg->exporter.endpoint);
        event_base_dispatch(a.base);
        LOG_INFO("stopped");
    } else {
        LOG_ERROR("start-up failed: %s", sw_strerror(rc));
    }
    app_free(&a);
    return rc == 0 ? 0 : 1;
}
