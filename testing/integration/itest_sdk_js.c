/* itest_sdk_js.c — both OTLP receivers with clients that are not ours: the
 * official OpenTelemetry JS SDK exporters (testing/sdk-js/, npm packages
 * pinned by its package-lock.json and installed by make into BUILD/npm)
 * send traces, metrics and logs to spillway over OTLP/gRPC (plain, gzip,
 * TLS), OTLP/HTTP with protobuf and OTLP/HTTP with JSON (plain and gzip);
 * every item must reach the mock upstream exactly once with its content
 * (span ids and names, metric points and values, log bodies), and the
 * receiver's metrics count the requests under the transport they came in
 * on. A missing node or npm install fails the test: it is never skipped. */
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

/* Runs send.js against the stack's port for protocol; its lines go to dir. */
static void run_sender(th_stack *s, const char *protocol, const char *compression, const char *tag,
                       const char *dir, const char *ca)
{
    char ep[64], nodepath[400], modules[400], log[400];
    const char *node = node_bin();
    TH_ASSERT_MSG(node, "node not found (apt-get install nodejs; make deps)");
    snprintf(modules, sizeof modules, "%s/npm/node_modules/@opentelemetry/exporter-trace-otlp-grpc",
             th_bin_dir());
    TH_ASSERT_MSG(access(modules, R_OK) == 0,
                  "%s missing: the npm install of testing/sdk-js failed", modules);
    int grpc = strcmp(protocol, "grpc") == 0;
    snprintf(ep, sizeof ep, "127.0.0.1:%u", grpc ? th_stack_grpc_port(s) : th_stack_otlp_port(s));
    snprintf(nodepath, sizeof nodepath, "NODE_PATH=%s/npm/node_modules", th_bin_dir());
    snprintf(log, sizeof log, "%s/node-%s.log", dir, tag);
    char *argv[] = {(char *)node, "testing/sdk-js/send.js", "--endpoint", ep, "--compression",
                    (char *)compression, "--protocol", (char *)protocol, "--out", (char *)dir,
                    "--tag", (char *)tag,
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

static void roundtrip(const char *protocol, const char *compression, const char *tag, int tls)
{
    char certdir[256], yaml[1024], ca[300], sel[64];
    int grpc = strcmp(protocol, "grpc") == 0;
    const char *transport = grpc ? "grpc" : "http", *other = grpc ? "http" : "grpc";
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
    run_sender(s, protocol, compression, tag, th_stack_dir(s), tls ? ca : NULL);
    check_signal(s, SIG_TRACES, th_stack_dir(s));
    check_signal(s, SIG_METRICS, th_stack_dir(s));
    check_signal(s, SIG_LOGS, th_stack_dir(s));
    const char *m = th_stack_metrics(s);
    TH_ASSERT(m);
    snprintf(sel, sizeof sel, "code=\"%s\",transport=\"%s\"", grpc ? "OK" : "200", transport);
    double ok = th_prom_sum(m, "spillway_receiver_requests_total", sel, NULL);
    TH_ASSERT_MSG(ok >= 3, "%s: successful requests counted: %g", protocol, ok);
    snprintf(sel, sizeof sel, "signal=\"traces\",transport=\"%s\"", transport);
    double spans = th_prom_sum(m, "spillway_receiver_items_total", sel, NULL);
    TH_ASSERT_MSG(spans == 25, "%s: spans counted: %g", protocol, spans);
    /* each item is counted once, under the transport it came in on */
    snprintf(sel, sizeof sel, "transport=\"%s\"", other);
    double other_items = th_prom_sum(m, "spillway_receiver_items_total", sel, NULL);
    TH_ASSERT_MSG(other_items == 0, "%s items also counted under %s: %g", transport, other,
                  other_items);
    snprintf(sel, sizeof sel, "transport=\"%s\"", transport);
    double bad = th_prom_sum(m, "spillway_receiver_requests_total", sel, NULL) - ok;
    TH_ASSERT_MSG(bad == 0, "%g %s requests were not successful", bad, protocol);
    /* gzip really went over the wire: fewer bytes in than the protobuf that
     * reached the mock (exporter compression none); plain protobuf: more
     * (gRPC's prefixes) or as many; JSON: more (hex ids, key names) */
    snprintf(sel, sizeof sel, "signal=\"traces\",transport=\"%s\"", transport);
    double in = th_prom_sum(m, "spillway_receiver_bytes_total", sel, NULL);
    th_mock_stats st;
    TH_ASSERT(th_stack_mock_stats(s, &st) == 0);
    printf("# %s %s: %g trace bytes in, %ld upstream\n", protocol, compression, in,
           st.bytes[SIG_TRACES]);
    if (strcmp(compression, "gzip") == 0)
        TH_ASSERT_MSG(in < (double)st.bytes[SIG_TRACES], "gzip: %g bytes in, %ld upstream", in,
                      st.bytes[SIG_TRACES]);
    else
        TH_ASSERT_MSG(in >= (double)st.bytes[SIG_TRACES], "plain: %g bytes in, %ld upstream", in,
                      st.bytes[SIG_TRACES]);
}

static void t_grpc_plain(void) { roundtrip("grpc", "none", "grpc-plain", 0); }
static void t_grpc_gzip(void) { roundtrip("grpc", "gzip", "grpc-gzip", 0); }
/* h2 over TLS with ALPN: grpc-js checks the certificate and insists on h2 */
static void t_grpc_tls(void) { roundtrip("grpc", "gzip", "grpc-tls", 1); }
static void t_http_protobuf_plain(void) { roundtrip("http/protobuf", "none", "proto-plain", 0); }
static void t_http_protobuf_gzip(void) { roundtrip("http/protobuf", "gzip", "proto-gzip", 0); }
static void t_http_json_plain(void) { roundtrip("http/json", "none", "json-plain", 0); }
static void t_http_json_gzip(void) { roundtrip("http/json", "gzip", "json-gzip", 0); }

int main(void)
{
    TH_ICASE(t_grpc_plain);
    TH_ICASE(t_grpc_gzip);
    TH_ICASE(t_grpc_tls);
    TH_ICASE(t_http_protobuf_plain);
    TH_ICASE(t_http_protobuf_gzip);
    TH_ICASE(t_http_json_plain);
    TH_ICASE(t_http_json_gzip);
    return th_done();
}
