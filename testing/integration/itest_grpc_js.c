/* itest_grpc_js.c — the OTLP/gRPC receiver with a client that is not ours:
 * the official OpenTelemetry JS SDK gRPC exporters (testing/grpc-js/, npm
 * packages pinned by its package-lock.json and installed by make into
 * BUILD/npm) send traces, metrics and logs, plain and gzip, to spillway;
 * and over TLS; every item must reach the mock upstream exactly once with its content
 * (span ids and names, metric points and values, log bodies), and the
 * receiver's metrics count the calls with transport="grpc". A missing node
 * or npm install fails the test: it is never skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"
#include "testing/lib/th_stack.h"

static const char *node_bin(void)
{
    static const char *const cands[] = {"/usr/bin/node", "/usr/bin/nodejs", "/usr/local/bin/node"};
    for (size_t i = 0; i < sizeof cands / sizeof cands[0]; i++)
        if (access(cands[i], X_OK) == 0) return cands[i];
    return NULL;
}

/* Runs send.js against the stack's gRPC port; its lines go to dir. */
static void run_sender(th_stack *s, const char *compression, const char *tag, const char *dir,
                       const char *ca)
{
    char ep[64], nodepath[400], modules[400], log[400];
    const char *node = node_bin();
    TH_ASSERT_MSG(node, "node not found (apt-get install nodejs; make deps)");
    snprintf(modules, sizeof modules, "%s/npm/node_modules/@opentelemetry/exporter-trace-otlp-grpc",
             th_bin_dir());
    TH_ASSERT_MSG(access(modules, R_OK) == 0,
                  "%s missing: the npm install of testing/grpc-js failed", modules);
    snprintf(ep, sizeof ep, "127.0.0.1:%u", th_stack_grpc_port(s));
    snprintf(nodepath, sizeof nodepath, "NODE_PATH=%s/npm/node_modules", th_bin_dir());
    snprintf(log, sizeof log, "%s/node-%s.log", dir, tag);
    char *argv[] = {(char *)node, "testing/grpc-js/send.js", "--endpoint", ep, "--compression",
                    (char *)compression, "--out", (char *)dir, "--tag", (char *)tag,
                    ca ? "--ca" : NULL, (char *)ca, NULL};
    char *env[] = {nodepath, NULL};
    th_proc *p = th_proc_start(argv, env, log);
    TH_ASSERT(p);
    int status = 0;
    int rc = th_proc_wait_exit(p, 90000, &status);
    if (rc != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) th_print_tail(log, 30);
    TH_ASSERT_MSG(rc == 0, "send.js did not finish within 90 s");
    TH_ASSERT_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "send.js failed (status %d)",
                  status);
    th_proc_free(p);
}

/* The mock received exactly the lines send.js wrote for sig. */
static void check_signal(th_stack *s, sw_signal sig, const char *dir)
{
    char path[400], why[1024];
    snprintf(path, sizeof path, "%s/%s.lines", dir, sw_signal_name(sig));
    char *text = th_read_file(path, NULL);
    TH_ASSERT_MSG(text && *text, "%s: no lines", path);
    th_lines *must = th_lines_new();
    int rc = must ? th_lines_add(must, text) : -1;
    free(text);
    TH_ASSERT(rc == 0);
    th_cover cv;
    rc = th_stack_wait_cover(s, sig, must, NULL, 20000, &cv, why, sizeof why);
    TH_ASSERT_MSG(rc == 0, "%s: %s", sw_signal_name(sig), why);
    TH_ASSERT_MSG(cv.dups == 0 && cv.received == cv.required,
                  "%s: %ld lines received for %ld sent (%ld duplicates)", sw_signal_name(sig),
                  cv.received, cv.required, cv.dups);
}

/* A throwaway certificate for 127.0.0.1 in dir (cert.pem, key.pem). */
static void make_cert(const char *dir)
{
    char key[300], cert[300], log[300];
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(log, sizeof log, "%s/openssl.log", dir);
    char *argv[] = {"/usr/bin/openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                    "subjectAltName=IP:127.0.0.1", NULL};
    th_proc *p = th_proc_start(argv, NULL, log);
    TH_ASSERT(p);
    int status = 0;
    TH_ASSERT_MSG(th_proc_wait_exit(p, 20000, &status) == 0 && WIFEXITED(status) &&
                      WEXITSTATUS(status) == 0,
                  "openssl could not make a certificate");
    th_proc_free(p);
}

static void roundtrip(const char *compression, const char *tag, int tls)
{
    char certdir[256], yaml[1024], ca[300];
    th_stack_opts o = {0};
    o.grpc_yaml = "";
    if (tls) {
        TH_ASSERT(th_tmpdir(certdir, sizeof certdir) == 0);
        make_cert(certdir);
        snprintf(yaml, sizeof yaml,
                 "      tls: { cert_file: %s/cert.pem, key_file: %s/key.pem }\n", certdir,
                 certdir);
        snprintf(ca, sizeof ca, "%s/cert.pem", certdir);
        o.grpc_yaml = yaml;
    }
    th_stack *s = th_stack_start(&o);
    TH_ASSERT_MSG(s, "stack did not start");
    TH_ASSERT_MSG(th_stack_grpc_port(s) != 0, "ready file lacks otlp_grpc=");
    run_sender(s, compression, tag, th_stack_dir(s), tls ? ca : NULL);
    check_signal(s, SIG_TRACES, th_stack_dir(s));
    check_signal(s, SIG_METRICS, th_stack_dir(s));
    check_signal(s, SIG_LOGS, th_stack_dir(s));
    const char *m = th_stack_metrics(s);
    TH_ASSERT(m);
    int found = 0;
    double ok = th_prom_sum(m, "spillway_receiver_requests_total", "code=\"OK\",transport=\"grpc\"",
                            &found);
    TH_ASSERT_MSG(ok >= 3, "grpc OK calls counted: %g", ok);
    double spans = th_prom_sum(m, "spillway_receiver_items_total",
                               "signal=\"traces\",transport=\"grpc\"", NULL);
    TH_ASSERT_MSG(spans == 25, "grpc spans counted: %g", spans);
    /* each item is counted once, under the transport it came in on */
    double http_items = th_prom_sum(m, "spillway_receiver_items_total", "transport=\"http\"", NULL);
    TH_ASSERT_MSG(http_items == 0, "gRPC items also counted under http: %g", http_items);
    double bad = th_prom_sum(m, "spillway_receiver_requests_total", "transport=\"grpc\"", NULL) - ok;
    TH_ASSERT_MSG(bad == 0, "%g gRPC calls were not OK", bad);
    /* gzip really went over the wire: fewer bytes in than the protobuf that
     * reached the mock (exporter compression none); plain: more (prefixes) */
    double in = th_prom_sum(m, "spillway_receiver_bytes_total",
                            "signal=\"traces\",transport=\"grpc\"", NULL);
    th_mock_stats st;
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    if (strcmp(compression, "gzip") == 0)
        TH_ASSERT_MSG(in < (double)st.bytes[SIG_TRACES], "gzip: %g bytes in, %ld upstream", in,
                      st.bytes[SIG_TRACES]);
    else
        TH_ASSERT_MSG(in > (double)st.bytes[SIG_TRACES], "plain: %g bytes in, %ld upstream", in,
                      st.bytes[SIG_TRACES]);
}

static void t_js_exporters_plain(void) { roundtrip("none", "plain", 0); }
static void t_js_exporters_gzip(void) { roundtrip("gzip", "gzip", 0); }
/* h2 over TLS with ALPN: grpc-js checks the certificate and insists on h2 */
static void t_js_exporters_tls(void) { roundtrip("gzip", "tls", 1); }

int main(void)
{
    TH_ICASE(t_js_exporters_plain);
    TH_ICASE(t_js_exporters_gzip);
    TH_ICASE(t_js_exporters_tls);
    return th_done();
}
