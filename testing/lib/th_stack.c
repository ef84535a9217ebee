/* th_stack.c — see th_stack.h. */
#include "testing/lib/th_stack.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct th_stack {
    char dir[256];
    int mock_tls;
    th_proc *mock, *sw;
    uint16_t mock_port, otlp_port, tele_port;
    uint16_t grpc_port;
    th_http *mock_c, *tele_c;
    uint16_t mock_admin_port; /* 0 without opts.mock_admin */
    char tmpfs[32];           /* opts.dlq_tmpfs, "" for none */
    char dlq[300];            /* <dir>/dlq */
};

static void th_stack_release(void *p) { th_stack_free(p); }

void th_stack_free(th_stack *s)
{
    if (!s) return;
    th_res_forget(s);
    if (th_g.case_failed == 1 && s->dir[0]) {
        char path[300];
        snprintf(path, sizeof(path), "%s/spillway.log", s->dir);
        th_print_tail(path, 25);
        snprintf(path, sizeof(path), "%s/mock.log", s->dir);
        th_print_tail(path, 10);
    }
    th_proc_free(s->sw);
    th_proc_free(s->mock);
    th_http_free(s->mock_c);
    th_http_free(s->tele_c);
    if (s->dir[0] && !getenv("SW_ITEST_KEEP")) th_rmtree(s->dir);
    free(s);
}

uint16_t th_stack_otlp_port(const th_stack *s) { return s->otlp_port; }
uint16_t th_stack_grpc_port(const th_stack *s) { return s->grpc_port; }
uint16_t th_stack_telemetry_port(const th_stack *s) { return s->tele_port; }
uint16_t th_stack_mock_port(const th_stack *s) { return s->mock_port; }
uint16_t th_stack_mock_admin_port(const th_stack *s) { return s->mock_admin_port; }
const char *th_stack_dir(const th_stack *s) { return s->dir; }
th_proc *th_stack_spillway(th_stack *s) { return s->sw; }
th_proc *th_stack_mockup(th_stack *s) { return s->mock; }

th_http *th_stack_client(th_stack *s) { return th_http_new(s->otlp_port, 0, 5000); }

/* Runs a process to completion within 15 s; 0 when it exited 0. */
static int th_run_cmd(char *const argv[], const char *log)
{
    th_proc *p = th_proc_start(argv, NULL, log);
    int st = 0, rc = -1;
    if (!p) return -1;
    if (th_proc_wait_exit(p, 15000, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0) rc = 0;
    th_proc_free(p);
    return rc;
}

static int th_make_cert(th_stack *s)
{
    char key[300], cert[300], log[300];
    snprintf(key, sizeof(key), "%s/key.pem", s->dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", s->dir);
    snprintf(log, sizeof(log), "%s/openssl.log", s->dir);
    char *argv[] = {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", NULL};
    if (th_run_cmd(argv, log) != 0) {
        printf("# openssl could not make a certificate\n");
        th_print_tail(log, 10);
        return -1;
    }
    return 0;
}

/* Waits for a ready file and returns its text (owned) or NULL. */
static char *th_wait_ready(th_proc *p, const char *ready, const char *what)
{
    int rc = th_proc_wait_file(p, ready, 10000);
    if (rc != 0) {
        printf("# %s %s (no ready file %s)\n", what,
               rc == -2 ? "exited during start-up" : "not ready within 10 s", ready);
        th_print_tail(th_proc_log(p), 20);
        return NULL;
    }
    return th_read_file(ready, NULL);
}

static int th_start_mock(th_stack *s, const th_stack_opts *o)
{
    char bin[300], ready[300], log[300], cert[300], key[300];
    char *argv[40];
    int n = 0;
    char *text;
    snprintf(bin, sizeof(bin), "%s/spillway-mockup", th_bin_dir());
    snprintf(ready, sizeof(ready), "%s/mock.ready", s->dir);
    snprintf(log, sizeof(log), "%s/mock.log", s->dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", s->dir);
    snprintf(key, sizeof(key), "%s/key.pem", s->dir);
    argv[n++] = bin;
    argv[n++] = "--listen";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "--ready-file";
    argv[n++] = ready;
    if (o->mock_tls) {
        argv[n++] = "--tls-cert";
        argv[n++] = cert;
        argv[n++] = "--tls-key";
        argv[n++] = key;
    }
    if (o->mock_admin) {
        argv[n++] = "--admin-listen";
        argv[n++] = "127.0.0.1:0";
    }
    for (int i = 0; i < 16 && o->mock_args[i]; i++) argv[n++] = (char *)o->mock_args[i];
    argv[n] = NULL;
    s->mock = th_proc_start(argv, NULL, log);
    if (!s->mock) return -1;
    th_res_forget(s->mock); /* owned by the stack */
    text = th_wait_ready(s->mock, ready, "spillway-mockup");
    if (!text) return -1;
    s->mock_port = th_ready_port(text, o->mock_tls ? "https" : "http");
    if (o->mock_admin) s->mock_admin_port = th_ready_port(text, "admin");
    free(text);
    if (!s->mock_port || (o->mock_admin && !s->mock_admin_port)) {
        printf("# mockup ready file has no %s= line\n",
               !s->mock_port ? (o->mock_tls ? "https" : "http") : "admin");
        return -1;
    }
    s->mock_c = th_http_new(o->mock_admin ? s->mock_admin_port : s->mock_port, o->mock_tls, 5000);
    if (!s->mock_c) return -1;
    th_res_forget(s->mock_c);
    return 0;
}

static const char *th_or(const char *v, const char *def) { return v && *v ? v : def; }

static int th_write_config(th_stack *s, const th_stack_opts *o, const char *path)
{
    FILE *f = fopen(path, "w");
    int rc;
    if (!f) return -1;
    fprintf(f,
            "receivers:\n  otlp:\n    http:\n      endpoint: 127.0.0.1:0\n"
            "      max_request_body_size: %s\n      read_timeout: %s\n"
            "%s"
            "%s%s"
            "%s%s"
            "queue:\n  max_bytes: %s\n%s"
            "dlq:\n  dir: %s/dlq\n  fsync: %s\n%s"
            "exporters:\n  otlphttp:\n    endpoint: %s://127.0.0.1:%u\n"
            "    compression: %s\n    timeout: %s\n"
            "    batch: { max_bytes: %s, timeout: 20ms }\n"
            "    retry: { initial_interval: 50ms, max_interval: 500ms%s%s }\n",
            th_or(o->max_body, "16MiB"), th_or(o->read_timeout, "10s"),
            th_or(o->receiver_yaml, ""),
            o->grpc_yaml ? "    grpc:\n      endpoint: 127.0.0.1:0\n" : "", th_or(o->grpc_yaml, ""),
            o->processors_yaml ? "processors:\n" : "", th_or(o->processors_yaml, ""),
            th_or(o->queue_max_bytes, "64MiB"), th_or(o->queue_yaml, ""), s->dir,
            th_or(o->dlq_fsync, "never"), th_or(o->dlq_yaml, ""),
            o->mock_tls ? "https" : "http", s->mock_port, th_or(o->compression, "none"),
            th_or(o->exporter_timeout, "5s"),
            th_or(o->batch_max_bytes, "4MiB"), o->retry_yaml ? ", " : "", th_or(o->retry_yaml, ""));
    if (o->mock_tls) fprintf(f, "    tls: { ca_file: %s/cert.pem }\n", s->dir);
    fprintf(f,
            "%stelemetry:\n  endpoint: 127.0.0.1:0\n  log: { level: info, format: text }\n"
            "service:\n  shutdown_timeout: %s\n",
            th_or(o->exporter_yaml, ""), th_or(o->shutdown_timeout, "5s"));
    rc = ferror(f) ? -1 : 0;
    if (fclose(f) != 0) rc = -1;
    return rc;
}

/* Starts spillway on the config already written (through unshare with a
 * tmpfs on the DLQ dir when s->tmpfs is set) and reads its ports. */
static int th_launch_spillway(th_stack *s)
{
    char bin[300], ready[300], log[300], conf[300], dlqdir[300];
    char *text;
    snprintf(bin, sizeof(bin), "%s/spillway", th_bin_dir());
    snprintf(ready, sizeof(ready), "%s/spillway.ready", s->dir);
    snprintf(log, sizeof(log), "%s/spillway.log", s->dir);
    snprintf(conf, sizeof(conf), "%s/spillway.yaml", s->dir);
    snprintf(dlqdir, sizeof(dlqdir), "%s/dlq", s->dir);
    unlink(ready);
    char *argv[] = {bin, "--config", conf, "--ready-file", ready, NULL};
    char *nsargv[] = {"/usr/bin/unshare", "-rm", "--", "/bin/sh", "-c",
                      "mount -t tmpfs -o \"size=$1\" tmpfs \"$2\" && shift 2 && exec \"$@\"",
                      "sh", s->tmpfs, dlqdir, bin, "--config", conf, "--ready-file", ready, NULL};
    if (s->tmpfs[0] && mkdir(dlqdir, 0755) != 0 && access(dlqdir, F_OK) != 0) return -1;
    s->sw = th_proc_start(s->tmpfs[0] ? nsargv : argv, NULL, log);
    if (!s->sw) return -1;
    th_res_forget(s->sw);
    text = th_wait_ready(s->sw, ready, "spillway");
    if (!text) {
        th_print_tail(conf, 40);
        return -1;
    }
    s->otlp_port = th_ready_port(text, "otlp_http");
    s->tele_port = th_ready_port(text, "telemetry");
    s->grpc_port = th_ready_port(text, "otlp_grpc");
    free(text);
    if (!s->otlp_port || !s->tele_port) {
        printf("# spillway ready file lacks otlp_http= or telemetry=\n");
        return -1;
    }
    s->tele_c = th_http_new(s->tele_port, 0, 5000);
    if (!s->tele_c) return -1;
    th_res_forget(s->tele_c);
    return 0;
}

static int th_start_spillway(th_stack *s, const th_stack_opts *o)
{
    char conf[300];
    snprintf(conf, sizeof(conf), "%s/spillway.yaml", s->dir);
    snprintf(s->tmpfs, sizeof(s->tmpfs), "%s", th_or(o->dlq_tmpfs, ""));
    if (th_write_config(s, o, conf) != 0) return -1;
    return th_launch_spillway(s);
}

th_stack *th_stack_start(const th_stack_opts *o)
{
    static const th_stack_opts none;
    th_stack *s = calloc(1, sizeof(*s));
    const char *tmp = getenv("TMPDIR");
    if (!s) return NULL;
    if (!o) o = &none;
    th_res_add(th_stack_release, s);
    snprintf(s->dir, sizeof(s->dir), "%s/spillway-itest-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->dir)) {
        s->dir[0] = '\0';
        goto fail;
    }
    snprintf(s->dlq, sizeof(s->dlq), "%s/dlq", s->dir);
    s->mock_tls = o->mock_tls;
    if (o->mock_tls && th_make_cert(s) != 0) goto fail;
    if (th_start_mock(s, o) != 0) goto fail;
    if (th_start_spillway(s, o) != 0) goto fail;
    return s;
fail:
    th_stack_free(s);
    return NULL;
}

/* ---- restarts and the DLQ directory ---- */

const char *th_stack_dlq_dir(const th_stack *s) { return s->dlq; }

int th_stack_stop_spillway(th_stack *s, int sig, int timeout_ms, int *status)
{
    int rc = -1;
    if (s->sw && th_proc_signal(s->sw, sig) == 0 &&
        th_proc_wait_exit(s->sw, timeout_ms, status) == 0)
        rc = 0;
    if (rc != 0 && s->sw && th_proc_alive(s->sw))
        printf("# spillway did not exit within %d ms of signal %d: killed\n", timeout_ms, sig);
    th_proc_free(s->sw); /* SIGKILL if still running */
    s->sw = NULL;
    th_http_free(s->tele_c);
    s->tele_c = NULL;
    s->otlp_port = s->tele_port = 0;
    return rc;
}

int th_stack_restart_spillway(th_stack *s)
{
    if (s->sw && th_proc_alive(s->sw)) {
        printf("# th_stack_restart_spillway: spillway is still running\n");
        return -1;
    }
    th_proc_free(s->sw);
    s->sw = NULL;
    th_http_free(s->tele_c);
    s->tele_c = NULL;
    return th_launch_spillway(s);
}

/* `spillway dlq VERB --dir <dlq dir> [OPT ARG]`: see th_stack_dlq_cmd. */
static int dlq_cmd(th_stack *s, const char *verb, const char *opt, const char *arg, char **out)
{
    char bin[300], log[300], dir[300];
    int st = 0, rc = -1;
    snprintf(bin, sizeof(bin), "%s/spillway", th_bin_dir());
    snprintf(log, sizeof(log), "%s/dlq-%s.out", s->dir, verb);
    snprintf(dir, sizeof(dir), "%s/dlq", s->dir);
    if (out) *out = NULL;
    unlink(log);
    char *argv[] = {bin, "dlq", (char *)verb, "--dir", dir, (char *)opt, (char *)arg, NULL};
    th_proc *p = th_proc_start(argv, NULL, log);
    if (!p) return -1;
    if (th_proc_wait_exit(p, 15000, &st) == 0 && WIFEXITED(st)) rc = WEXITSTATUS(st);
    else printf("# spillway dlq %s did not exit normally within 15 s\n", verb);
    th_proc_free(p);
    if (out) *out = th_read_file(log, NULL);
    return rc;
}

int th_stack_dlq_cmd(th_stack *s, const char *verb, char **out)
{
    return dlq_cmd(s, verb, NULL, NULL, out);
}

int th_stack_dlq_replay_to_mock(th_stack *s, char **out)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", (unsigned)th_stack_mock_port(s));
    return dlq_cmd(s, "replay", "--to", url, out);
}

long th_stack_dlq_records(th_stack *s)
{
    char *out = NULL;
    unsigned long long records = 0;
    int rc = th_stack_dlq_cmd(s, "ls", &out);
    const char *t = out ? strstr(out, "total:") : NULL;
    long n = -1;
    if (rc == 0 && t && sscanf(t, "total: %*d files, %*u bytes, %llu records", &records) == 1)
        n = (long)records;
    if (n < 0) {
        printf("# spillway dlq ls exited %d:\n", rc);
        for (char *p = out; p && *p;) {
            char *nl = strchr(p, '\n');
            printf("#   %.*s\n", nl ? (int)(nl - p) : (int)strlen(p), p);
            p = nl ? nl + 1 : NULL;
        }
    }
    free(out);
    return n;
}

int th_stack_tmpfs_usable(void)
{
    char dir[] = "/tmp/spillway-itest-ns-XXXXXX";
    int st = 0, ok = 0;
    if (access("/usr/bin/unshare", X_OK) != 0 || !mkdtemp(dir)) return 0;
    char *argv[] = {"/usr/bin/unshare", "-rm", "--", "/bin/sh", "-c",
                    "mount -t tmpfs -o size=1m tmpfs \"$0\"", dir, NULL};
    th_proc *p = th_proc_start(argv, NULL, "/dev/null");
    if (p && th_proc_wait_exit(p, 10000, &st) == 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0)
        ok = 1;
    th_proc_free(p);
    rmdir(dir);
    return ok;
}

/* ---- mock ---- */

static long th_json_long(json_object *o, const char *k1, const char *k2)
{
    json_object *a, *b;
    if (!json_object_object_get_ex(o, k1, &a)) return 0;
    if (!k2) return (long)json_object_get_int64(a);
    if (!json_object_object_get_ex(a, k2, &b)) return 0;
    return (long)json_object_get_int64(b);
}

int th_stack_mock_stats(th_stack *s, th_mock_stats *out)
{
    const char *text = th_stack_mock_get(s, "/stats");
    json_object *root, *resp;
    memset(out, 0, sizeof(*out));
    if (!text) return -1;
    root = json_tokener_parse(text);
    if (!root) return -1;
    for (int sig = 0; sig < SIG_COUNT; sig++) {
        const char *name = sw_signal_name((sw_signal)sig);
        out->requests[sig] = th_json_long(root, "requests", name);
        out->items[sig] = th_json_long(root, "items", name);
        out->bytes[sig] = th_json_long(root, "bytes", name);
    }
    out->decode_errors = th_json_long(root, "decode_errors", NULL);
    if (json_object_object_get_ex(root, "responses", &resp) &&
        json_object_is_type(resp, json_type_object)) {
        json_object_object_foreach(resp, key, val) {
            if (out->n_codes == 32) break;
            out->codes[out->n_codes] = atoi(key);
            out->code_counts[out->n_codes++] = (long)json_object_get_int64(val);
        }
    }
    json_object_put(root);
    return 0;
}

long th_mock_stats_code(const th_mock_stats *st, int code)
{
    for (int i = 0; i < st->n_codes; i++)
        if (st->codes[i] == code) return st->code_counts[i];
    return 0;
}

long th_mock_stats_responses(const th_mock_stats *st)
{
    long n = 0;
    for (int i = 0; i < st->n_codes; i++) n += st->code_counts[i];
    return n;
}

long th_stack_wait_items(th_stack *s, sw_signal sig, long want, int timeout_ms)
{
    int64_t deadline = th_now_ms() + th_slow_ms(timeout_ms);
    long last = -1;
    for (;;) {
        th_mock_stats st;
        if (th_stack_mock_stats(s, &st) == 0) last = st.items[sig];
        if (last >= want || th_now_ms() >= deadline) return last;
        th_nap_ms(10);
    }
}

int th_stack_check_received(th_stack *s, sw_signal sig, const th_expect *e, long base,
                            int timeout_ms, char *why, size_t len)
{
    long want = base + (long)th_expect_items(e);
    long got = th_stack_wait_items(s, sig, want, timeout_ms);
    char path[64];
    const char *text;
    snprintf(path, sizeof(path), "/received/%s", sw_signal_name(sig));
    text = th_stack_mock_get(s, path);
    if (!text) {
        snprintf(why, len, "mock GET %s failed", path);
        return -1;
    }
    if (th_expect_check(e, text, why, len) == 0) return 0;
    size_t used = strlen(why);
    if (used < len)
        snprintf(why + used, len - used, " mock item count %ld, want %ld after %d ms", got, want,
                 timeout_ms);
    return -1;
}

const char *th_stack_mock_get(th_stack *s, const char *path)
{
    const th_resp *r = th_http_request(s->mock_c, "GET", path, NULL, NULL, 0);
    return r && r->status == 200 ? (const char *)r->body : NULL;
}

int th_stack_mock_post(th_stack *s, const char *path)
{
    const th_resp *r = th_http_request(s->mock_c, "POST", path, NULL, NULL, 0);
    return r ? r->status : -1;
}

/* ---- telemetry ---- */

const th_resp *th_stack_telemetry(th_stack *s, const char *path)
{
    return th_http_request(s->tele_c, "GET", path, NULL, NULL, 0);
}

const char *th_stack_metrics(th_stack *s)
{
    const th_resp *r = th_stack_telemetry(s, "/metrics");
    return r && r->status == 200 ? (const char *)r->body : NULL;
}

/* 1 if the label block [lb, le) contains every pair of the filter. */
static int th_labels_match(const char *lb, size_t llen, const char *filter)
{
    const char *f = filter;
    while (f && *f) {
        const char *comma = strchr(f, ',');
        size_t flen = comma ? (size_t)(comma - f) : strlen(f);
        int ok = 0;
        for (size_t i = 0; i + flen <= llen && !ok; i++)
            ok = (i == 0 || lb[i - 1] == ',' || lb[i - 1] == '{') && memcmp(lb + i, f, flen) == 0 &&
                 (i + flen == llen || lb[i + flen] == ',' || lb[i + flen] == '}');
        if (!ok) return 0;
        f = comma ? comma + 1 : NULL;
    }
    return 1;
}

double th_prom_sum(const char *text, const char *name, const char *labels, int *found)
{
    size_t nlen = strlen(name);
    double sum = 0;
    int n = 0;
    for (const char *line = text; line && *line;) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        if (line[0] != '#' && len > nlen && strncmp(line, name, nlen) == 0 &&
            (line[nlen] == '{' || line[nlen] == ' ')) {
            const char *v = line + nlen;
            const char *lb = v, *le = v;
            if (*v == '{') {
                le = memchr(v, '}', len - nlen);
                v = le ? le + 1 : line + len;
            }
            if (th_labels_match(lb, (size_t)(le - lb), labels)) {
                sum += strtod(v, NULL);
                n++;
            }
        }
        line = nl ? nl + 1 : NULL;
    }
    if (found) *found = n;
    return sum;
}

int th_prom_has_family(const char *text, const char *name)
{
    static const char *const suffix[] = {"", "_bucket", "_count", "_sum"};
    char full[256];
    int found = 0;
    snprintf(full, sizeof(full), "# TYPE %s ", name);
    for (const char *line = text; line && *line;) {
        if (strncmp(line, full, strlen(full)) == 0) return 1;
        const char *nl = strchr(line, '\n');
        line = nl ? nl + 1 : NULL;
    }
    for (size_t i = 0; i < 4; i++) {
        snprintf(full, sizeof(full), "%s%s", name, suffix[i]);
        th_prom_sum(text, full, NULL, &found);
        if (found) return 1;
    }
    return 0;
}

int th_stack_send_traces(th_stack *s, th_expect *e, uint32_t seed0, int nreq, size_t per,
                         char *why, size_t whylen)
{
    char msg[512];
    th_http *c = th_stack_client(s);
    if (!c) {
        snprintf(why, whylen, "no client");
        return -1;
    }
    for (int k = 0; k < nreq; k++) {
        th_otlp *d = th_otlp_new(SIG_TRACES, seed0 + (uint32_t)k, per);
        if (!d) {
            snprintf(why, whylen, "request %d: out of memory", k);
            return -1;
        }
        const th_resp *r = th_otlp_send(c, d, TH_ENC_PB);
        if (th_otlp_check_success(r, SIG_TRACES, TH_ENC_PB, msg, sizeof msg) != 0) {
            snprintf(why, whylen, "request %d: %s%s", k, msg, r ? "" : th_http_error(c));
            th_otlp_free(d);
            return -1;
        }
        int added = th_expect_add(e, d);
        th_otlp_free(d);
        if (added != 0) {
            snprintf(why, whylen, "request %d: cannot record it", k);
            return -1;
        }
    }
    return 0;
}

int th_stack_remount_dlq(th_stack *s, const char *mode, char *why, size_t whylen)
{
    char pid[32], opts[32], log[512];
    snprintf(pid, sizeof pid, "%d", (int)th_proc_pid(th_stack_spillway(s)));
    snprintf(opts, sizeof opts, "remount,%s", mode);
    snprintf(log, sizeof log, "%s/nsenter.log", th_stack_dir(s));
    char *argv[] = {"/usr/bin/nsenter", "-t", pid, "-U", "-m", "--preserve-credentials", "--",
                    "mount", "-o", opts, (char *)th_stack_dlq_dir(s), NULL};
    th_proc *p = th_proc_start(argv, NULL, log);
    if (!p) {
        snprintf(why, whylen, "cannot run nsenter");
        return -1;
    }
    int status = -1;
    int ok = th_proc_wait_exit(p, 10000, &status) == 0 && WIFEXITED(status) &&
             WEXITSTATUS(status) == 0;
    th_proc_free(p);
    if (!ok) snprintf(why, whylen, "mount -o %s failed (see %s)", opts, log);
    return ok ? 0 : -1;
}

int th_stack_dlq_verify(th_stack *s, int run, char **out)
{
    *out = NULL;
    int rc = th_stack_dlq_cmd(s, "verify", out);
    if (rc != 0 && *out) {
        printf("# spillway dlq verify after kill %d:\n", run);
        for (char *p = *out; p && *p;) {
            char *nl = strchr(p, '\n');
            printf("#   %.*s\n", nl ? (int)(nl - p) : (int)strlen(p), p);
            p = nl ? nl + 1 : NULL;
        }
    }
    return rc;
}
