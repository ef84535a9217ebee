/* test_cfg.c — the config loader: value syntax, env expansion, defaults,
 * the shipped configs/spillway.yaml, a full valid file, and a table of bad
 * files with the exact FILE:LINE:COL of each error.
 */
#include "testing/lib/th.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/cfg.h"
#include "processors/prio.h"
#include "runtime/err.h"
#include "runtime/item.h"
#include "runtime/log.h"

#define ERRLEN 4096

/* ---- helpers ---- */

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/sw_test_cfg_XXXXXX");
    TH_ASSERT(mkdtemp(tmpdir) != NULL);
}

/* Writes text to tmpdir/name; returns the path (static storage). */
static const char *write_tmp(const char *name, const char *text)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s.yaml", tmpdir, name);
    FILE *f = fopen(path, "w");
    TH_ASSERT(f != NULL);
    TH_ASSERT(fwrite(text, 1, strlen(text), f) == strlen(text));
    TH_ASSERT(fclose(f) == 0);
    return path;
}

static cfg *load_str(const char *text, char *err)
{
    cfg *c = NULL;
    int rc = cfg_load_mem("t.yaml", text, strlen(text), &c, err, ERRLEN);
    TH_ASSERT_MSG(rc == 0, "load failed (%d): %s", rc, err);
    TH_ASSERT(c != NULL);
    return c;
}

static int count_lines(const char *s)
{
    int n = 0;
    for (; *s; s++) n += (*s == '\n');
    return n;
}

/* ---- value syntax ---- */

static void t_sizes(void)
{
    static const struct { const char *s; uint64_t v; } good[] = {
        { "1024", 1024 }, { "0", 0 }, { "16MiB", 16ull << 20 }, { "4GiB", 4ull << 30 },
        { "128MiB", 128ull << 20 }, { "4MB", 4000000 }, { "512KiB", 512 * 1024 },
        { "1KB", 1000 }, { "7B", 7 }, { "2TiB", 2ull << 40 }, { "64kib", 65536 },
        { "16 MiB", 16ull << 20 }, { "18446744073709551615", UINT64_MAX },
    };
    static const char *bad[] = {
        "", "-1", "-5MiB", "1.5MiB", "1,5MiB", "abc", "MiB", "16XB", "16MiBs", "0x10",
        " 1", "+1", "18446744073709551616", "17179869184GiB", "16777216TiB", "1e3", "1 2",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 1;
        TH_ASSERT_MSG(cfg_parse_size(good[i].s, &v) == 0, "size \"%s\" rejected", good[i].s);
        TH_ASSERT_MSG(v == good[i].v, "size \"%s\" = %llu", good[i].s, (unsigned long long)v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 0;
        TH_ASSERT_MSG(cfg_parse_size(bad[i], &v) == SW_EINVAL, "size \"%s\" accepted", bad[i]);
    }
}

static void t_durations(void)
{
    static const struct { const char *s; uint64_t ms; } good[] = {
        { "500ms", 500 }, { "10s", 10000 }, { "10m", 600000 }, { "1h", 3600000 },
        { "250us", 1 }, { "1500us", 2 }, { "2000000ns", 2 }, { "1ns", 1 }, { "0s", 0 },
        { "0ms", 0 }, { "1h30m", 5400000 }, { "1m30s", 90000 }, { "1.5s", 1500 },
        { "0.25h", 900000 }, { "200ms", 200 }, { "168h", 168ull * 3600000 },
    };
    static const char *bad[] = {
        "", "10", "0", "1.5", "-1s", "-500ms", "s", "ms", "10x", "1d", "5 s", "1s-",
        "1..5s", ".s", "99999999999999999999h", "5124095576h", "10S", "1h 30m",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 12345;
        TH_ASSERT_MSG(cfg_parse_duration_ms(good[i].s, &v) == 0, "duration \"%s\" rejected", good[i].s);
        TH_ASSERT_MSG(v == good[i].ms, "duration \"%s\" = %llu", good[i].s, (unsigned long long)v);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t v = 0;
        TH_ASSERT_MSG(cfg_parse_duration_ms(bad[i], &v) == SW_EINVAL, "duration \"%s\" accepted", bad[i]);
    }
}

static void t_bare_duration_message(void)
{
    char err[ERRLEN];
    cfg *c = NULL;
    const char *y = "dlq:\n  replay:\n    interleave: 500\n";
    TH_ASSERT_EQ_INT(cfg_load_mem("d.yaml", y, strlen(y), &c, err, sizeof err), SW_EINVAL);
    TH_ASSERT(c == NULL);
    TH_ASSERT_MSG(strstr(err, "d.yaml:3:17: dlq.replay.interleave: ") == err, "%s", err);
    TH_ASSERT_MSG(strstr(err, "needs a unit") && strstr(err, "ms"), "%s", err);
}

static void t_env_expansion(void)
{
    static const struct { const char *in, *out; } good[] = {
        { "plain", "plain" }, { "", "" }, { "${env:SW_T_A}", "hello" },
        { "x-${env:SW_T_A}-y", "x-hello-y" }, { "${env:SW_T_A}${env:SW_T_A}", "hellohello" },
        { "${env:SW_T_UNSET}", "" }, { "a${env:SW_T_UNSET}b", "ab" },
        { "${env:SW_T_UNSET:-def}", "def" }, { "${env:SW_T_EMPTY:-def}", "def" },
        { "${env:SW_T_EMPTY}", "" }, { "${env:SW_T_A:-def}", "hello" },
        { "${env:SW_T_UNSET:-}", "" }, { "${env:SW_T_UNSET:-a:b-c}", "a:b-c" },
        { "$${env:SW_T_A}", "${env:SW_T_A}" }, { "a$b", "a$b" }, { "$", "$" },
        { "cost: 5$", "cost: 5$" }, { "^(a|b)$", "^(a|b)$" }, { "${env:_x1}", "" },
        { "${env:SW_T_SELF}", "${env:SW_T_A}" },
    };
    static const char *bad[] = {
        "${env:", "${env", "${", "${}", "${foo}", "${ENV:SW_T_A}", "${env:}", "${env:1A}",
        "${env:A B}", "${env:SW_T_A", "${env:SW_T_A:def}", "${env:SW_T_A:-def", "x ${env:A-B} y",
        "${env:SW_T_A}${",
    };
    setenv("SW_T_A", "hello", 1);
    setenv("SW_T_EMPTY", "", 1);
    setenv("SW_T_SELF", "${env:SW_T_A}", 1);
    unsetenv("SW_T_UNSET");
    unsetenv("_x1");
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        const char *err = NULL;
        char *s = cfg_expand_env(good[i].in, &err);
        TH_ASSERT_MSG(s != NULL, "\"%s\" rejected: %s", good[i].in, err ? err : "?");
        int same = strcmp(s, good[i].out) == 0;
        char got[128];
        snprintf(got, sizeof got, "%s", s);
        free(s);
        TH_ASSERT_MSG(same, "\"%s\" -> \"%s\", want \"%s\"", good[i].in, got, good[i].out);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *err = NULL;
        char *s = cfg_expand_env(bad[i], &err);
        free(s);
        TH_ASSERT_MSG(s == NULL && err != NULL, "\"%s\" accepted", bad[i]);
    }
}

static void t_hostport(void)
{
    static const struct { const char *s, *host; unsigned port; } good[] = {
        { "127.0.0.1:4318", "127.0.0.1", 4318 }, { "0.0.0.0:0", "0.0.0.0", 0 },
        { "localhost:65535", "localhost", 65535 }, { "[::1]:4317", "::1", 4317 },
        { "[::]:80", "::", 80 }, { "otel-collector.example.com:443", "otel-collector.example.com", 443 },
    };
    static const char *bad[] = {
        "", "127.0.0.1", ":4318", "host:", "host:65536", "host:-1", "host:+1", "host:abc",
        "[::1]", "[::1]4318", "::1:80", "[zz]:80", "[]:80", "ho st:80", "host:1:2", "host:000080",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *h = NULL;
        uint16_t p = 1;
        TH_ASSERT_MSG(cfg_split_hostport(good[i].s, &h, &p) == 0, "\"%s\" rejected", good[i].s);
        int ok = strcmp(h, good[i].host) == 0 && p == good[i].port;
        free(h);
        TH_ASSERT_MSG(ok, "\"%s\" split wrong", good[i].s);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *h = NULL;
        uint16_t p;
        TH_ASSERT_MSG(cfg_split_hostport(bad[i], &h, &p) == SW_EINVAL, "\"%s\" accepted", bad[i]);
        TH_ASSERT(h == NULL);
    }
}

/* ---- defaults and the shipped file ---- */

static void t_defaults(void)
{
    cfg *c = cfg_defaults();
    TH_ASSERT(c != NULL);
    TH_ASSERT_EQ_STR(c->source, "<defaults>");
    TH_ASSERT_EQ_STR(c->receiver.http_endpoint, "127.0.0.1:4318");
    TH_ASSERT_EQ_INT(c->receiver.http_max_request_body_size, 16 << 20);
    TH_ASSERT_EQ_INT(c->receiver.http_read_timeout_ms, 10000);
    TH_ASSERT_EQ_INT(c->receiver.http_max_connections, 4096);
    TH_ASSERT_EQ_INT(c->receiver.http_header_timeout_ms, 10000);
    TH_ASSERT_EQ_INT(c->receiver.http_min_body_rate, 1024);
    TH_ASSERT_EQ_INT(c->receiver.intake_memory, 64 << 20);
    TH_ASSERT_EQ_INT(c->dlq.ring_bytes, 64 << 20);
    TH_ASSERT_EQ_INT(c->cardinality.enabled, 1);
    TH_ASSERT_EQ_INT(c->cardinality.max_keys, 65536);
    TH_ASSERT(c->cardinality.aggregate_threshold == 0.75);
    TH_ASSERT(c->cardinality.drop_threshold == 0.90);
    TH_ASSERT_EQ_INT(c->cardinality.key_ttl_ms, 600000);
    TH_ASSERT_EQ_INT(c->priority.weights[CLASS_CRITICAL], 5);
    TH_ASSERT_EQ_INT(c->priority.weights[CLASS_HIGH], 3);
    TH_ASSERT_EQ_INT(c->priority.weights[CLASS_NORMAL], 1);
    TH_ASSERT_EQ_INT(c->priority.n_rules, 0);
    TH_ASSERT_EQ_INT(c->queue.max_bytes, 64 << 20);
    TH_ASSERT(c->queue.spill_threshold == 0.95);
    TH_ASSERT_EQ_STR(c->dlq.dir, "./data/dlq");
    TH_ASSERT_EQ_INT(c->dlq.segment_size, 128 << 20);
    TH_ASSERT_EQ_INT(c->dlq.max_size, 4ull << 30);
    TH_ASSERT_EQ_INT(c->dlq.compression_level, 3);
    TH_ASSERT_EQ_INT(c->dlq.fsync, CFG_FSYNC_ALWAYS);
    TH_ASSERT_EQ_INT(c->dlq.replay_rate, 4 << 20);
    TH_ASSERT_EQ_INT(c->dlq.replay_interleave_ms, 500);
    TH_ASSERT_EQ_STR(c->exporter.endpoint, "http://127.0.0.1:4319");
    TH_ASSERT_EQ_INT(c->exporter.n_headers, 0);
    TH_ASSERT_EQ_INT(c->exporter.compression, CFG_COMP_GZIP);
    TH_ASSERT_EQ_INT(c->exporter.timeout_ms, 10000);
    TH_ASSERT_EQ_INT(c->exporter.max_in_flight, 4);
    TH_ASSERT_EQ_INT(c->exporter.batch_max_bytes, 4 << 20);
    TH_ASSERT_EQ_INT(c->exporter.batch_timeout_ms, 200);
    TH_ASSERT_EQ_INT(c->exporter.batch_linger_ms, 10);
    TH_ASSERT_EQ_INT(c->exporter.retry_initial_ms, 1000);
    TH_ASSERT_EQ_INT(c->exporter.retry_max_ms, 30000);
    TH_ASSERT(c->exporter.retry_multiplier == 2.0);
    TH_ASSERT_EQ_INT(c->exporter.retry_max_elapsed_ms, 300000);
    TH_ASSERT_EQ_INT(c->exporter.cb_consecutive_failures, 5);
    TH_ASSERT(c->exporter.cb_ratio_429 == 0.30);
    TH_ASSERT_EQ_INT(c->exporter.cb_window_ms, 30000);
    TH_ASSERT_EQ_INT(c->exporter.cb_open_duration_ms, 30000);
    TH_ASSERT_EQ_STR(c->exporter.tls_ca_file, "");
    TH_ASSERT_EQ_INT(c->exporter.tls_insecure_skip_verify, 0);
    TH_ASSERT_EQ_STR(c->telemetry.endpoint, "127.0.0.1:8888");
    TH_ASSERT_EQ_INT(c->telemetry.log_level, LOG_LVL_INFO);
    TH_ASSERT_EQ_INT(c->telemetry.log_json, 1);
    TH_ASSERT_EQ_INT(c->service.shutdown_timeout_ms, 10000);
    cfg_free(c);
    cfg_free(NULL);
}

/* Field-by-field equality of two configs (source excepted); NULL if equal,
 * else the name of the first differing field. */
static const char *cfg_diff(const cfg *a, const cfg *b)
{
#define SAME_S(f) if (strcmp(a->f, b->f) != 0) return #f
#define SAME_N(f) if (a->f != b->f) return #f
    SAME_S(receiver.http_endpoint); SAME_N(receiver.http_max_request_body_size);
    SAME_N(receiver.http_read_timeout_ms);
    SAME_N(receiver.http_max_connections); SAME_N(receiver.http_header_timeout_ms);
    SAME_N(receiver.http_min_body_rate);
    SAME_N(receiver.intake_memory); SAME_N(dlq.ring_bytes);
    SAME_N(cardinality.enabled); SAME_N(cardinality.max_keys);
    SAME_N(cardinality.aggregate_threshold); SAME_N(cardinality.drop_threshold);
    SAME_N(cardinality.key_ttl_ms);
    for (int i = 0; i < CLASS_COUNT; i++) SAME_N(priority.weights[i]);
    SAME_N(priority.n_rules);
    SAME_N(queue.max_bytes); SAME_N(queue.spill_threshold);
    SAME_S(dlq.dir); SAME_N(dlq.segment_size); SAME_N(dlq.max_size);
    SAME_N(dlq.compression_level); SAME_N(dlq.fsync); SAME_N(dlq.replay_rate);
    SAME_N(dlq.replay_interleave_ms);
    SAME_S(exporter.endpoint); SAME_N(exporter.n_headers); SAME_N(exporter.compression);
    SAME_N(exporter.timeout_ms); SAME_N(exporter.max_in_flight);
    SAME_N(exporter.batch_max_bytes); SAME_N(exporter.batch_timeout_ms);
    SAME_N(exporter.batch_linger_ms);
    SAME_N(exporter.retry_initial_ms); SAME_N(exporter.retry_max_ms);
    SAME_N(exporter.retry_multiplier); SAME_N(exporter.retry_max_elapsed_ms);
    SAME_N(exporter.cb_consecutive_failures); SAME_N(exporter.cb_ratio_429);
    SAME_N(exporter.cb_window_ms); SAME_N(exporter.cb_open_duration_ms);
    SAME_S(exporter.tls_ca_file); SAME_N(exporter.tls_insecure_skip_verify);
    SAME_S(telemetry.endpoint); SAME_N(telemetry.log_level); SAME_N(telemetry.log_json);
    SAME_N(service.shutdown_timeout_ms);
#undef SAME_S
#undef SAME_N
    return NULL;
}

static void t_shipped_config_equals_defaults(void)
{
    char err[ERRLEN];
    cfg *c = NULL, *d = cfg_defaults();
    TH_ASSERT(d != NULL);
    int rc = cfg_load("configs/spillway.yaml", &c, err, sizeof err);
    if (rc != 0) cfg_free(d);
    TH_ASSERT_MSG(rc == 0, "configs/spillway.yaml: %s", err);
    const char *diff = cfg_diff(c, d);
    int src_ok = strcmp(c->source, "configs/spillway.yaml") == 0;
    cfg_free(c);
    cfg_free(d);
    TH_ASSERT_MSG(diff == NULL, "configs/spillway.yaml differs from defaults in %s", diff);
    TH_ASSERT(src_ok);
}

static void t_empty_documents_are_defaults(void)
{
    static const char *docs[] = { "", "# only a comment\n\n   # another\n", "---\n", "---\n...\n", "~\n" };
    char err[ERRLEN];
    cfg *d = cfg_defaults();
    TH_ASSERT(d != NULL);
    for (size_t i = 0; i < sizeof docs / sizeof docs[0]; i++) {
        cfg *c = NULL;
        int rc = cfg_load_mem("e.yaml", docs[i], strlen(docs[i]), &c, err, sizeof err);
        const char *diff = rc == 0 ? cfg_diff(c, d) : "load";
        cfg_free(c);
        if (diff) cfg_free(d);
        TH_ASSERT_MSG(diff == NULL, "doc %zu: %s %s", i, diff, err);
    }
    cfg_free(d);
}

/* Every key of the schema is documented and present in the shipped file. */
struct cover { const char *docs, *yaml; char missing[512]; };

static void cover_key(const char *path, const char *type, const char *def, const char *help, void *arg)
{
    struct cover *cv = arg;
    const char *leaf = strrchr(path, '.');
    char needle[128];
    (void)type; (void)def;
    snprintf(needle, sizeof needle, " %s:", leaf ? leaf + 1 : path);
    if (!strstr(cv->docs, path) || !strstr(cv->yaml, needle) || !help || !*help)
        snprintf(cv->missing, sizeof cv->missing, "%s", path);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *d = calloc(1, 1 << 20);
    if (d) (void)!fread(d, 1, (1 << 20) - 1, f);
    fclose(f);
    return d;
}

static void t_every_key_documented(void)
{
    struct cover cv = { 0 };
    char *docs = slurp("docs/configuration.md"), *yaml = slurp("configs/spillway.yaml");
    cv.docs = docs ? docs : "";
    cv.yaml = yaml ? yaml : "";
    cfg_schema_foreach(cover_key, &cv);
    free(docs);
    free(yaml);
    TH_ASSERT_MSG(cv.missing[0] == '\0', "key %s missing from docs/configuration.md or configs/spillway.yaml",
                  cv.missing);
}

/* ---- a full valid config ---- */

static const char *full_yaml =
    "# every section, non-default values\n"
    "receivers:\n"
    "  otlp:\n"
    "    http: { endpoint: \"[::1]:0\", max_request_body_size: 8MiB, read_timeout: 2500ms }\n"
    "processors:\n"
    "  cardinality:\n"
    "    enabled: no\n"
    "    max_keys: 1024\n"
    "    aggregate_threshold: 0.5\n"
    "    drop_threshold: 1\n"
    "    key_ttl: 1h\n"
    "  priority:\n"
    "    weights: &w { critical: 10, high: 4, normal: 1000 }\n"
    "    rules:\n"
    "      - { class: critical, attribute: service.name, regex: \"^(checkout|payment)\" }\n"
    "      - class: high\n"
    "        attribute: ${env:SW_TEST_CFG_ATTR:-deployment.environment}\n"
    "        regex: ^prod$\n"
    "queue: { max_bytes: 64KiB, spill_threshold: 1 }\n"
    "dlq:\n"
    "  dir: ${env:SW_TEST_CFG_DIR}/dlq\n"
    "  segment_size: 1MiB\n"
    "  max_size: 1GB\n"
    "  compression_level: 19\n"
    "  fsync: batch\n"
    "  replay: { rate: 512KiB, interleave: 1s }\n"
    "exporters:\n"
    "  otlphttp:\n"
    "    endpoint: https://otlp.example.com:443/base\n"
    "    headers:\n"
    "      api-key: \"${env:SW_TEST_CFG_KEY:-}\"\n"
    "      X-Scope-OrgID: tenant-1\n"
    "    compression: zstd\n"
    "    timeout: 3s\n"
    "    max_in_flight: 64\n"
    "    batch: { max_bytes: 1, timeout: 1ms, linger: 0s }\n"
    "    retry: { initial_interval: 100ms, max_interval: 100ms, multiplier: 1.5, max_elapsed_time: 1m }\n"
    "    circuit_breaker: { consecutive_failures: 1, ratio_429: 1, window: 1m, open_duration: 5s }\n"
    "    tls: { ca_file: /etc/ssl/ca.pem, insecure_skip_verify: on }\n"
    "telemetry:\n"
    "  endpoint: 0.0.0.0:9999\n"
    "  log: { level: debug, format: text }\n"
    "service: { shutdown_timeout: 30s }\n";

static void check_full(const cfg *c)
{
    TH_ASSERT_EQ_STR(c->receiver.http_endpoint, "[::1]:0");
    TH_ASSERT_EQ_INT(c->receiver.http_max_request_body_size, 8 << 20);
    TH_ASSERT_EQ_INT(c->receiver.http_read_timeout_ms, 2500);
    TH_ASSERT_EQ_INT(c->cardinality.enabled, 0);
    TH_ASSERT_EQ_INT(c->cardinality.max_keys, 1024);
    TH_ASSERT(c->cardinality.aggregate_threshold == 0.5 && c->cardinality.drop_threshold == 1.0);
    TH_ASSERT_EQ_INT(c->cardinality.key_ttl_ms, 3600000);
    TH_ASSERT_EQ_INT(c->priority.weights[CLASS_CRITICAL], 10);
    TH_ASSERT_EQ_INT(c->priority.weights[CLASS_HIGH], 4);
    TH_ASSERT_EQ_INT(c->priority.weights[CLASS_NORMAL], 1000);
    TH_ASSERT_EQ_INT(c->priority.n_rules, 2);
    TH_ASSERT_EQ_INT(c->priority.rules[0].klass, CLASS_CRITICAL);
    TH_ASSERT_EQ_STR(c->priority.rules[0].attribute, "service.name");
    TH_ASSERT_EQ_STR(c->priority.rules[0].regex, "^(checkout|payment)");
    TH_ASSERT_EQ_INT(c->priority.rules[0].line, 15);
    TH_ASSERT_EQ_INT(c->priority.rules[0].col, 9);
    TH_ASSERT_EQ_INT(c->priority.rules[1].klass, CLASS_HIGH);
    TH_ASSERT_EQ_STR(c->priority.rules[1].attribute, "deployment.environment");
    TH_ASSERT_EQ_STR(c->priority.rules[1].regex, "^prod$");
    TH_ASSERT_EQ_INT(c->priority.rules[1].line, 16);
    TH_ASSERT_EQ_INT(c->queue.max_bytes, 65536);
    TH_ASSERT(c->queue.spill_threshold == 1.0);
    TH_ASSERT_EQ_STR(c->dlq.dir, "/var/lib/sw/dlq");
    TH_ASSERT_EQ_INT(c->dlq.segment_size, 1 << 20);
    TH_ASSERT_EQ_INT(c->dlq.max_size, 1000000000);
    TH_ASSERT_EQ_INT(c->dlq.compression_level, 19);
    TH_ASSERT_EQ_INT(c->dlq.fsync, CFG_FSYNC_BATCH);
    TH_ASSERT_EQ_INT(c->dlq.replay_rate, 512 * 1024);
    TH_ASSERT_EQ_INT(c->dlq.replay_interleave_ms, 1000);
    TH_ASSERT_EQ_STR(c->exporter.endpoint, "https://otlp.example.com:443/base");
    TH_ASSERT_EQ_INT(c->exporter.n_headers, 2);
    TH_ASSERT_EQ_STR(c->exporter.headers[0].name, "api-key");
    TH_ASSERT_EQ_STR(c->exporter.headers[0].value, "s3cr3t");
    TH_ASSERT_EQ_STR(c->exporter.headers[1].name, "X-Scope-OrgID");
    TH_ASSERT_EQ_STR(c->exporter.headers[1].value, "tenant-1");
    TH_ASSERT_EQ_INT(c->exporter.compression, CFG_COMP_ZSTD);
    TH_ASSERT_EQ_INT(c->exporter.timeout_ms, 3000);
    TH_ASSERT_EQ_INT(c->exporter.max_in_flight, 64);
    TH_ASSERT_EQ_INT(c->exporter.batch_max_bytes, 1);
    TH_ASSERT_EQ_INT(c->exporter.batch_timeout_ms, 1);
    TH_ASSERT_EQ_INT(c->exporter.batch_linger_ms, 0);
    TH_ASSERT_EQ_INT(c->exporter.retry_initial_ms, 100);
    TH_ASSERT_EQ_INT(c->exporter.retry_max_ms, 100);
    TH_ASSERT(c->exporter.retry_multiplier == 1.5);
    TH_ASSERT_EQ_INT(c->exporter.retry_max_elapsed_ms, 60000);
    TH_ASSERT_EQ_INT(c->exporter.cb_consecutive_failures, 1);
    TH_ASSERT(c->exporter.cb_ratio_429 == 1.0);
    TH_ASSERT_EQ_INT(c->exporter.cb_window_ms, 60000);
    TH_ASSERT_EQ_INT(c->exporter.cb_open_duration_ms, 5000);
    TH_ASSERT_EQ_STR(c->exporter.tls_ca_file, "/etc/ssl/ca.pem");
    TH_ASSERT_EQ_INT(c->exporter.tls_insecure_skip_verify, 1);
    TH_ASSERT_EQ_STR(c->telemetry.endpoint, "0.0.0.0:9999");
    TH_ASSERT_EQ_INT(c->telemetry.log_level, LOG_LVL_DEBUG);
    TH_ASSERT_EQ_INT(c->telemetry.log_json, 0);
    TH_ASSERT_EQ_INT(c->service.shutdown_timeout_ms, 30000);
}

static void t_full_valid_config(void)
{
    char err[ERRLEN];
    cfg *c = NULL;
    setenv("SW_TEST_CFG_DIR", "/var/lib/sw", 1);
    setenv("SW_TEST_CFG_KEY", "s3cr3t", 1);
    unsetenv("SW_TEST_CFG_ATTR");
    make_tmpdir();
    const char *path = write_tmp("full", full_yaml);
    int rc = cfg_load(path, &c, err, sizeof err);
    unlink(path);
    rmdir(tmpdir);
    TH_ASSERT_MSG(rc == 0, "%s", err);
    TH_ASSERT_EQ_STR(err, "");
    TH_ASSERT(strstr(c->source, "/full.yaml") != NULL);
    check_full(c);   /* leaks c only if an assertion fails */
    cfg_free(c);
}

static void t_aliases_and_quoted_values(void)
{
    char err[ERRLEN];
    const char *y =
        "x-defaults: &d { max_bytes: 1MiB, spill_threshold: \"0.5\" }\n"
        "queue: *d\n";
    cfg *c = NULL;
    TH_ASSERT_EQ_INT(cfg_load_mem("a.yaml", y, strlen(y), &c, err, sizeof err), SW_EINVAL);
    TH_ASSERT_MSG(strstr(err, "a.yaml:1:1: x-defaults: unknown key") == err, "%s", err);
    const char *y2 =
        "processors:\n  priority:\n    weights: &w { critical: 7, high: \"2\", normal: 'on' }\n";
    TH_ASSERT_EQ_INT(cfg_load_mem("a.yaml", y2, strlen(y2), &c, err, sizeof err), SW_EINVAL);
    TH_ASSERT_MSG(strstr(err, "a.yaml:3:51: processors.priority.weights.normal: \"on\": expected an integer"),
                  "%s", err);
    const char *y3 = "queue: &q { max_bytes: 1MiB, spill_threshold: \"0.5\" }\n"
                     "dlq: { replay: { rate: 1KiB } }\n";
    c = load_str(y3, err);
    TH_ASSERT_EQ_INT(c->queue.max_bytes, 1 << 20);
    TH_ASSERT(c->queue.spill_threshold == 0.5);
    TH_ASSERT_EQ_INT(c->dlq.replay_rate, 1024);
    cfg_free(c);
}

static void t_not_nul_terminated(void)
{
    char err[ERRLEN];
    char data[32];
    cfg *c = NULL;
    memcpy(data, "queue: { max_bytes: 1MiB }XXXXX", 32);
    TH_ASSERT_EQ_INT(cfg_load_mem("m", data, 26, &c, err, sizeof err), 0);
    TH_ASSERT_EQ_INT(c->queue.max_bytes, 1 << 20);
    cfg_free(c);
    TH_ASSERT_EQ_INT(cfg_load_mem("m", "dlq: { dir: \"a\\0b\" }", 20, &c, err, sizeof err), SW_EINVAL);
    TH_ASSERT_MSG(strstr(err, "m:1:13: dlq.dir: value contains a NUL") == err, "%s", err);
    TH_ASSERT_EQ_INT(cfg_load_mem("m", "x: \x01", 4, &c, err, sizeof err), SW_EINVAL);
    TH_ASSERT_MSG(strstr(err, "m:1:") == err && strstr(err, "YAML syntax error"), "%s", err);
    TH_ASSERT_EQ_INT(cfg_load_mem("m", "x: [", 4, &c, NULL, 0), SW_EINVAL);
    TH_ASSERT(c == NULL);
}

/* ---- bad configs ---- */

struct bad_case {
    const char *name, *yaml;
    int line, col;
    const char *msg;
};

static const struct bad_case bad_cases[] = {
    { "unknown_top",
      "foo: 1\n",
      1, 1, "foo: unknown key" },
    { "unknown_nested",
      "receivers:\n  otlp:\n    http:\n      endpiont: 127.0.0.1:1\n",
      4, 7, "receivers.otlp.http.endpiont: unknown key" },
    { "unknown_section",
      "receivers:\n  otlp:\n    thrift: {}\n",
      3, 5, "receivers.otlp.thrift: unknown key" },
    { "mapping_for_scalar",
      "queue:\n  max_bytes: {a: 1}\n",
      2, 14, "queue.max_bytes: expected a single value, got a mapping" },
    { "list_for_scalar",
      "telemetry:\n  endpoint: [a, b]\n",
      2, 13, "telemetry.endpoint: expected a single value, got a list" },
    { "scalar_for_section",
      "queue: 5\n",
      1, 8, "queue: expected a mapping, got a scalar" },
    { "bad_size_unit",
      "queue:\n  max_bytes: 12XB\n",
      2, 14, "unknown size unit" },
    { "negative_size",
      "queue:\n  max_bytes: -5MiB\n",
      2, 14, "cannot be negative" },
    { "fractional_size",
      "dlq:\n  max_size: 1.5GiB\n",
      2, 13, "whole number" },
    { "overflow_size",
      "dlq:\n  max_size: 99999999999999999999\n",
      2, 13, "too large" },
    { "size_below_min",
      "queue:\n  max_bytes: 32KiB\n",
      2, 14, "out of range: must be in [64KiB" },
    { "segment_too_big",
      "dlq:\n  segment_size: 2GiB\n",
      2, 17, "dlq.segment_size: 2GiB is out of range: must be in [1MiB, 1GiB]" },
    { "bare_duration",
      "exporters:\n  otlphttp:\n    timeout: 10\n",
      3, 14, "needs a unit" },
    { "bad_duration_unit",
      "dlq:\n  replay:\n    interleave: 5d\n",
      3, 17, "unknown duration unit" },
    { "threshold_range",
      "processors:\n  cardinality:\n    drop_threshold: 1.5\n",
      3, 21, "processors.cardinality.drop_threshold: 1.5 is out of range: must be in (0, 1]" },
    { "aggregate_ge_drop",
      "processors:\n  cardinality:\n    aggregate_threshold: 0.9\n    drop_threshold: 0.8\n",
      3, 26, "processors.cardinality.aggregate_threshold: aggregate_threshold (0.9) must be less than drop_threshold (0.8)" },
    { "aggregate_vs_default_drop",
      "processors:\n  cardinality:\n    aggregate_threshold: 0.95\n",
      3, 26, "must be less than drop_threshold" },
    { "spill_zero",
      "queue:\n  spill_threshold: 0\n",
      2, 20, "must be in (0, 1]" },
    { "bad_enum",
      "exporters:\n  otlphttp:\n    compression: lz4\n",
      3, 18, "expected one of gzip | zstd | none" },
    { "bad_fsync",
      "dlq:\n  fsync: sometimes\n",
      2, 10, "expected one of always | batch | never" },
    { "bad_log_level",
      "telemetry:\n  log: { level: verbose }\n",
      2, 17, "telemetry.log.level: invalid value" },
    { "bad_regex",
      "processors:\n  priority:\n    rules:\n      - { class: high, attribute: service.name, regex: \"(unclosed\" }\n",
      4, 56, "processors.priority.rules[0].regex: invalid regex" },
    { "unknown_class",
      "processors:\n  priority:\n    rules:\n      - class: urgent\n        attribute: service.name\n        regex: x\n",
      4, 16, "rules[0].class: unknown class \"urgent\"" },
    { "rule_missing_regex",
      "processors:\n  priority:\n    rules:\n      - { class: high, attribute: a, regex: b }\n      - { class: high, attribute: a }\n",
      5, 9, "processors.priority.rules[1]: missing key \"regex\": attribute and regex go together" },
    { "rule_regex_without_attribute",
      "processors:\n  priority:\n    rules:\n      - class: high\n        regex: ^a\n",
      4, 9, "processors.priority.rules[0]: missing key \"attribute\": attribute and regex go together" },
    { "rule_no_condition",
      "processors:\n  priority:\n    rules:\n      - { class: high, span_status: error }\n      - { class: high }\n",
      5, 9, "processors.priority.rules[1]: a rule needs a condition: attribute with regex, span_status or "
            "min_severity" },
    { "rule_span_and_severity",
      "processors:\n  priority:\n    rules:\n      - { class: high, span_status: error }\n"
      "      - class: critical\n        span_status: error\n        min_severity: WARN\n",
      7, 9, "processors.priority.rules[1].min_severity: span_status (traces) and min_severity (logs) cannot "
            "be in one rule" },
    { "rule_severity_and_span",
      "processors:\n  priority:\n    rules:\n      - { class: high, min_severity: 17, span_status: error }\n",
      4, 42, "processors.priority.rules[0].span_status: span_status (traces) and min_severity (logs)" },
    { "rule_bad_span_status",
      "processors:\n  priority:\n    rules:\n      - { class: high, span_status: ok }\n",
      4, 37, "processors.priority.rules[0].span_status: invalid value \"ok\": only \"error\" is allowed" },
    { "rule_span_status_case",
      "processors:\n  priority:\n    rules:\n      - class: high\n        span_status: ERROR\n",
      5, 22, "processors.priority.rules[0].span_status: invalid value \"ERROR\"" },
    { "rule_bad_severity_name",
      "processors:\n  priority:\n    rules:\n      - { class: high, min_severity: NOTICE }\n",
      4, 38, "processors.priority.rules[0].min_severity: unknown severity \"NOTICE\"" },
    { "rule_severity_zero",
      "processors:\n  priority:\n    rules:\n      - { class: high, min_severity: 0 }\n",
      4, 38, "processors.priority.rules[0].min_severity: \"0\" is out of range: a severity number must be in "
             "[1, 24]" },
    { "rule_severity_25",
      "processors:\n  priority:\n    rules:\n      - { class: high, min_severity: \"25\" }\n",
      4, 38, "processors.priority.rules[0].min_severity: \"25\" is out of range" },
    { "rule_severity_negative",
      "processors:\n  priority:\n    rules:\n      - class: high\n        min_severity: -3\n",
      5, 23, "processors.priority.rules[0].min_severity: \"-3\" is out of range" },
    { "rule_severity_list",
      "processors:\n  priority:\n    rules:\n      - { class: high, min_severity: [WARN] }\n",
      4, 38, "processors.priority.rules[0].min_severity: expected a single value, got a list" },
    { "rule_severity_prefix_number",
      "processors:\n  priority:\n    rules:\n      - { class: high, min_severity: SEVERITY_NUMBER_9 }\n",
      4, 38, "processors.priority.rules[0].min_severity: unknown severity \"SEVERITY_NUMBER_9\"" },
    { "rule_severity_unspecified",
      "processors:\n  priority:\n    rules:\n      - class: high\n        min_severity: SEVERITY_NUMBER_UNSPECIFIED\n",
      5, 23, "processors.priority.rules[0].min_severity: unknown severity" },
    { "rule_bad_regex_beside_severity",
      "processors:\n  priority:\n    rules:\n      - class: high\n        min_severity: error\n"
      "        attribute: service.name\n        regex: \"a[\"\n",
      7, 16, "processors.priority.rules[0].regex: invalid regex \"a[\"" },
    { "rule_bad_regex_after_span",
      "processors:\n  priority:\n    rules:\n      - { class: high, attribute: a, regex: b }\n"
      "      - { class: critical, span_status: error, regex: \"*(\", attribute: k }\n",
      5, 55, "processors.priority.rules[1].regex: invalid regex" },
    { "rule_unknown_key",
      "processors:\n  priority:\n    rules:\n      - { class: high, attribute: a, regex: b, severity: 3 }\n",
      4, 48, "rules[0].severity: unknown key" },
    { "rules_not_list",
      "processors:\n  priority:\n    rules: { class: high }\n",
      3, 12, "expected a list of rules, got a mapping" },
    { "zero_weight",
      "processors:\n  priority:\n    weights:\n      critical: 0\n",
      4, 17, "processors.priority.weights.critical: 0 is out of range: must be in [1, 1000]" },
    { "negative_weight",
      "processors:\n  priority:\n    weights: { high: -2 }\n",
      3, 22, "weights.high: -2 is out of range" },
    { "fractional_weight",
      "processors:\n  priority:\n    weights: { normal: 1.5 }\n",
      3, 24, "expected an integer" },
    { "bad_endpoint",
      "receivers:\n  otlp:\n    http:\n      endpoint: localhost\n",
      4, 17, "invalid endpoint \"localhost\"" },
    { "bad_port",
      "telemetry:\n  endpoint: 127.0.0.1:70000\n",
      2, 13, "invalid endpoint" },
    { "exporter_no_scheme",
      "exporters:\n  otlphttp:\n    endpoint: 127.0.0.1:4319\n",
      3, 15, "must start with http:// or https://" },
    { "duplicate_key",
      "queue:\n  max_bytes: 1MiB\n  max_bytes: 2MiB\n",
      3, 3, "queue.max_bytes: duplicate key" },
    { "duplicate_section",
      "queue: {}\ndlq: {}\nqueue: {}\n",
      3, 1, "queue: duplicate key" },
    { "duplicate_header",
      "exporters:\n  otlphttp:\n    headers:\n      Api-Key: a\n      api-key: b\n",
      5, 7, "duplicate header" },
    { "header_value_list",
      "exporters:\n  otlphttp:\n    headers: { x: [1] }\n",
      3, 19, "expected a header value, got a list" },
    { "toplevel_list",
      "- a\n- b\n",
      1, 1, "top level must be a mapping" },
    { "toplevel_scalar",
      "hello\n",
      1, 1, "top level must be a mapping" },
    { "env_unterminated",
      "dlq:\n  dir: \"${env:\"\n",
      2, 8, "dlq.dir: unterminated ${env:...} reference" },
    { "env_not_env",
      "dlq:\n  dir: ${foo}\n",
      2, 8, "only ${env:NAME}" },
    { "env_bad_value",
      "queue:\n  max_bytes: ${env:SW_TEST_CFG_LOTS}\n",
      2, 14, "queue.max_bytes: \"lots\": invalid size" },
    { "bad_bool",
      "processors:\n  cardinality:\n    enabled: maybe\n",
      3, 14, "invalid boolean \"maybe\"" },
    { "max_keys_not_pow2",
      "processors:\n  cardinality:\n    max_keys: 5000\n",
      3, 15, "power of two" },
    { "max_keys_small",
      "processors:\n  cardinality:\n    max_keys: 512\n",
      3, 15, "out of range" },
    { "compression_level",
      "dlq:\n  compression_level: 20\n",
      2, 22, "must be in [1, 19]" },
    { "max_in_flight_zero",
      "exporters:\n  otlphttp:\n    max_in_flight: 0\n",
      3, 20, "must be in [1, 64]" },
    { "multiplier_small",
      "exporters:\n  otlphttp:\n    retry: { multiplier: 0.5 }\n",
      3, 26, "must be in [1, 100]" },
    { "breaker_ratio",
      "exporters:\n  otlphttp:\n    circuit_breaker: { ratio_429: 0 }\n",
      3, 35, "ratio_429: 0 is out of range" },
    { "batch_zero",
      "exporters:\n  otlphttp:\n    batch: { max_bytes: 0 }\n",
      3, 25, "max_bytes: 0 is out of range" },
    { "retry_max_lt_initial",
      "exporters:\n  otlphttp:\n    retry: { max_interval: 100ms }\n",
      3, 28, "max_interval must be at least initial_interval" },
    { "dlq_max_lt_segment",
      "dlq:\n  max_size: 64MiB\n",
      2, 13, "dlq.max_size: max_size must be at least segment_size" },
    { "null_value",
      "queue:\n  max_bytes: ~\n",
      2, 14, "a value is required" },
    { "empty_dir",
      "dlq:\n  dir: \"\"\n",
      2, 8, "must not be empty" },
    { "two_documents",
      "queue: {}\n---\nqueue: {}\n",
      3, 1, "only one YAML document" },
    { "complex_key",
      "? [a]\n: 1\n",
      1, 3, "a key must be a plain string" },
    { "regex_too_costly",
      "processors:\n  priority:\n    rules:\n      - { class: high, attribute: a, regex: \"(a{100}){100}\" }\n",
      4, 45, "rules[0].regex: regex too long (over 1024 bytes) or its repeats ({m,n}, +) nest too deeply" },
    { "regex_stacked_plus",
      "processors:\n  priority:\n    rules:\n      - class: high\n        attribute: a\n"
      "        regex: ^x++++++++++++++++$\n",
      6, 16, "processors.priority.rules[0].regex: regex too long (over 1024 bytes) or its repeats" },
    { "regex_nested_plus",
      "processors:\n  priority:\n    rules:\n      - class: high\n        attribute: a\n"
      "        regex: (((((((((((((((a+)+)+)+)+)+)+)+)+)+)+)+)+)+)+)+\n",
      6, 16, "processors.priority.rules[0].regex: regex too long" },
    { "regex_star_of_nullable",
      "processors:\n  priority:\n    rules:\n      - { class: high, attribute: a, regex: \"(()*){3000}\" }\n",
      4, 45, "processors.priority.rules[0].regex: a repeat (*, +, {m,n}) of something that can match the empty string" },
    { "regex_plus_of_empty_alternative",
      "processors:\n  priority:\n    rules:\n      - { class: high, attribute: a, regex: \"^x(a|)+\" }\n",
      4, 45, "processors.priority.rules[0].regex: a repeat (*, +, {m,n})" },
    { "regex_interval_of_optional",
      "processors:\n  priority:\n    rules:\n      - { class: high, attribute: a, regex: \"(a?){900}\" }\n",
      4, 45, "processors.priority.rules[0].regex: a repeat (*, +, {m,n})" },
    { "regex_total_budget",
      "processors:\n  priority:\n    rules:\n"
      "      - { class: high, attribute: a, regex: \"x{9000}\" }\n"
      "      - { class: high, attribute: a, regex: \"x{9000}\" }\n"
      "      - { class: high, attribute: a, regex: \"x{9000}\" }\n"
      "      - { class: high, attribute: a, regex: \"x{9000}\" }\n"
      "      - { class: high, attribute: a, regex: \"x{9000}\" }\n"
      "      - { class: high, attribute: a, regex: \"x{9000}\" }\n",
      9, 45, "processors.priority.rules[5].regex: the rules' regexes together are too large" },
    { "regex_backreference",
      "processors:\n  priority:\n    rules:\n      - { class: high, attribute: a, regex: \"^(a|b)\\\\1$\" }\n",
      4, 45, "processors.priority.rules[0].regex: back-references (\\1..\\9) are not allowed" },
};

static void t_bad_configs(void)
{
    char err[ERRLEN], prefix[320];
    setenv("SW_TEST_CFG_LOTS", "lots", 1);
    make_tmpdir();
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *b = &bad_cases[i];
        const char *path = write_tmp(b->name, b->yaml);
        cfg *c = NULL;
        int rc = cfg_load(path, &c, err, sizeof err);
        unlink(path);
        cfg_free(c);
        snprintf(prefix, sizeof prefix, "%s:%d:%d: ", path, b->line, b->col);
        if (rc != SW_EINVAL || c != NULL || strncmp(err, prefix, strlen(prefix)) != 0 ||
            !strstr(err, b->msg)) {
            rmdir(tmpdir);
            TH_ASSERT_MSG(0, "case %s: rc %d, want prefix \"%s\" and \"%s\", got: %s", b->name, rc,
                          prefix, b->msg, err);
        }
    }
    rmdir(tmpdir);
}

static void t_several_errors_collected(void)
{
    char err[ERRLEN];
    cfg *c = NULL;
    const char *y = "queue:\n  max_bytes: 1XB\n  spill_threshold: 2\n"
                    "dlq: { fsync: maybe }\nfoo: 1\n";
    TH_ASSERT_EQ_INT(cfg_load_mem("s.yaml", y, strlen(y), &c, err, sizeof err), SW_EINVAL);
    TH_ASSERT_EQ_INT(count_lines(err), 4);
    TH_ASSERT(strstr(err, "s.yaml:2:14: queue.max_bytes: ") == err);
    TH_ASSERT(strstr(err, "\ns.yaml:3:20: queue.spill_threshold: "));
    TH_ASSERT(strstr(err, "\ns.yaml:4:15: dlq.fsync: "));
    TH_ASSERT(strstr(err, "\ns.yaml:5:1: foo: unknown key"));
}

static void t_error_count_is_bounded(void)
{
    char y[4096], err[ERRLEN], small[64];
    size_t n = 0;
    cfg *c = NULL;
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(y + n, sizeof y - n, "k%d: 1\n", i);
    TH_ASSERT_EQ_INT(cfg_load_mem("b.yaml", y, n, &c, err, sizeof err), SW_EINVAL);
    TH_ASSERT(count_lines(err) <= 21);
    TH_ASSERT(strstr(err, "b.yaml: too many errors") != NULL);
    /* A small buffer is filled, truncated and terminated. */
    TH_ASSERT_EQ_INT(cfg_load_mem("b.yaml", y, n, &c, small, sizeof small), SW_EINVAL);
    TH_ASSERT_EQ_INT(strlen(small), sizeof small - 1);
}

static void t_missing_file(void)
{
    char err[ERRLEN];
    cfg *c = NULL;
    TH_ASSERT_EQ_INT(cfg_load("/nonexistent/spillway.yaml", &c, err, sizeof err), SW_EIO);
    TH_ASSERT(c == NULL);
    TH_ASSERT(strstr(err, "/nonexistent/spillway.yaml: ") == err);
    TH_ASSERT_EQ_INT(cfg_load("configs", &c, err, sizeof err), SW_EIO);
}

static void t_replacing_lists(void)
{
    char err[ERRLEN];
    const char *y = "exporters: { otlphttp: { headers: ~ } }\n"
                    "processors: { priority: { rules: [] } }\n";
    cfg *c = load_str(y, err);
    TH_ASSERT_EQ_INT(c->exporter.n_headers, 0);
    TH_ASSERT_EQ_INT(c->priority.n_rules, 0);
    cfg_free(c);
    const char *y2 = "exporters:\n  otlphttp:\n    headers: { a: \"1\", b: \"${env:SW_T_A}\" }\n"
                     "    tls:\n      ca_file:\n";
    setenv("SW_T_A", "hello", 1);
    c = load_str(y2, err);
    TH_ASSERT_EQ_INT(c->exporter.n_headers, 2);
    TH_ASSERT_EQ_STR(c->exporter.headers[1].value, "hello");
    TH_ASSERT_EQ_STR(c->exporter.tls_ca_file, "");
    cfg_free(c);
}

/* ---- priority rule conditions ---- */

static const char *cond_yaml =
    "processors:\n"
    "  priority:\n"
    "    rules:\n"
    "      - { class: critical, span_status: error }\n"
    "      - class: high\n"
    "        min_severity: ERROR\n"
    "      - { class: high, attribute: service.name, regex: ^pay, min_severity: warn }\n"
    "      - { class: critical, regex: ^db, attribute: db.system, span_status: error }\n"
    "      - { class: normal, attribute: a, regex: b }\n";

static void t_rule_conditions(void)
{
    char err[ERRLEN];
    cfg *c = load_str(cond_yaml, err);
    const cfg_prio_rule *r = c->priority.rules;
    TH_ASSERT_EQ_INT(c->priority.n_rules, 5);
    TH_ASSERT(r[0].klass == CLASS_CRITICAL && r[0].span_error == 1 && r[0].min_severity == 0);
    TH_ASSERT(r[0].attribute == NULL && r[0].regex == NULL);
    TH_ASSERT(r[0].line == 4 && r[0].col == 9);
    TH_ASSERT(r[1].klass == CLASS_HIGH && r[1].span_error == 0 && r[1].min_severity == 17);
    TH_ASSERT(r[1].attribute == NULL && r[1].regex == NULL);
    TH_ASSERT_EQ_INT(r[2].min_severity, 13);
    TH_ASSERT_EQ_STR(r[2].attribute, "service.name");
    TH_ASSERT_EQ_STR(r[2].regex, "^pay");
    TH_ASSERT(r[3].span_error == 1 && r[3].min_severity == 0);
    TH_ASSERT_EQ_STR(r[3].attribute, "db.system");
    TH_ASSERT(r[4].span_error == 0 && r[4].min_severity == 0);
    /* The classifier accepts what the loader accepted, conditions included. */
    prio *p = prio_from_cfg(c, err, sizeof err);
    cfg_free(c);
    TH_ASSERT_MSG(p != NULL, "prio_from_cfg: %s", err);
    TH_ASSERT_EQ_INT(prio_rule_count(p), 5);
    prio_free(p);
}

static void t_min_severity_values(void)
{
    static const struct { const char *text; int want; } cases[] = {
        { "TRACE", 1 }, { "trace2", 2 }, { "Debug", 5 }, { "INFO", 9 }, { "info4", 12 },
        { "WARN", 13 }, { "warn2", 14 }, { "Error", 17 }, { "ERROR3", 19 }, { "fatal", 21 },
        { "FATAL4", 24 }, { "SEVERITY_NUMBER_WARN", 13 }, { "severity_number_error2", 18 },
        { "SEVERITY_NUMBER_FATAL4", 24 }, { "1", 1 }, { "9", 9 }, { "\"24\"", 24 }, { "'17'", 17 },
    };
    char err[ERRLEN], y[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(y, sizeof y, "processors: { priority: { rules: [ { class: high, min_severity: %s } ] } }\n",
                 cases[i].text);
        cfg *c = load_str(y, err);
        int got = c->priority.rules[0].min_severity;
        cfg_free(c);
        TH_ASSERT_MSG(got == cases[i].want, "%s: got %d, want %d", cases[i].text, got, cases[i].want);
    }
}

static void t_regex_accepted(void)
{
    static const char *ok[] = {
        "^[+-]?[0-9]+$", "(a+)+", "x{1000}", "[[:alpha:]]+[]+]+", "a{2,}b{,3}", "\\++\\{", "(a{100}){50}",
        "^(checkout|payment)(-[a-z]+)*$", "[\\1]", "a+b+c+d+e+f+g+h+i+j+k+l+m+n+o+p+q+",
        "(a*)?", "(a?b)+", "(a|b?c)*", "(x?){0,1}", "^(-?[0-9]+,)*$", "\\b(foo|bar)\\b", "a{0,3}b{2}",
    };
    char err[ERRLEN], y[512];
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        snprintf(y, sizeof y, "processors: { priority: { rules: [ { class: high, attribute: a, regex: '%s' } ] } }\n",
                 ok[i]);
        cfg *c = NULL;
        int rc = cfg_load_mem("re.yaml", y, strlen(y), &c, err, sizeof err);
        cfg_free(c);
        TH_ASSERT_MSG(rc == 0, "%s: %s", ok[i], err);
    }
}

static void t_rule_errors_collected(void)
{
    char err[ERRLEN];
    cfg *c = NULL;
    const char *y = "processors:\n  priority:\n    rules:\n"
                    "      - span_status: error\n        min_severity: FATAL\n"
                    "      - { class: high, attribute: \"\" }\n";
    TH_ASSERT_EQ_INT(cfg_load_mem("r.yaml", y, strlen(y), &c, err, sizeof err), SW_EINVAL);
    TH_ASSERT(c == NULL);
    TH_ASSERT_MSG(count_lines(err) == 4, "%s", err);
    TH_ASSERT_MSG(strstr(err, "r.yaml:4:9: processors.priority.rules[0]: missing required key \"class\"\n")
                  == err, "%s", err);
    TH_ASSERT_MSG(strstr(err, "\nr.yaml:5:9: processors.priority.rules[0].min_severity: span_status"), "%s", err);
    TH_ASSERT_MSG(strstr(err, "\nr.yaml:6:35: processors.priority.rules[1].attribute: must not be empty\n"),
                  "%s", err);
    TH_ASSERT_MSG(strstr(err, "\nr.yaml:6:9: processors.priority.rules[1]: missing key \"regex\""), "%s", err);
}

/* receivers.otlp.grpc runs only when its section is present; "" turns it
 * off; the endpoint default applies inside the section. */
static void t_grpc_section(void)
{
    char err[ERRLEN];
    cfg *c = NULL;
    static const char none[] = "receivers:\n  otlp:\n    http: {endpoint: 127.0.0.1:0}\n";
    TH_ASSERT_EQ_INT(cfg_load_mem("a.yaml", none, sizeof none - 1, &c, err, sizeof err), 0);
    int off = c->receiver.grpc_enabled;
    cfg_free(c);
    TH_ASSERT_EQ_INT(off, 0);
    static const char empty[] = "receivers:\n  otlp:\n    grpc: {}\n";
    TH_ASSERT_EQ_INT(cfg_load_mem("b.yaml", empty, sizeof empty - 1, &c, err, sizeof err), 0);
    int on = c->receiver.grpc_enabled;
    int def = strcmp(c->receiver.grpc_endpoint, "127.0.0.1:4317") == 0;
    int conns = (int)c->receiver.grpc_max_connections;
    cfg_free(c);
    TH_ASSERT_EQ_INT(on, 1);
    TH_ASSERT(def);
    TH_ASSERT_EQ_INT(conns, 256);
    static const char blank[] =
        "receivers:\n  otlp:\n    grpc:\n      endpoint: \"\"\n      tls: {cert_file: a.pem, key_file: b.pem}\n";
    TH_ASSERT_EQ_INT(cfg_load_mem("c.yaml", blank, sizeof blank - 1, &c, err, sizeof err), 0);
    int is_blank = c->receiver.grpc_endpoint[0] == '\0';
    int tls = strcmp(c->receiver.grpc_tls_cert_file, "a.pem") == 0;
    cfg_free(c);
    TH_ASSERT(is_blank);
    TH_ASSERT(tls);
    static const char bad[] = "receivers:\n  otlp:\n    grpc:\n      endpoint: nohost\n";
    TH_ASSERT(cfg_load_mem("d.yaml", bad, sizeof bad - 1, &c, err, sizeof err) != 0);
    TH_ASSERT_MSG(strstr(err, "d.yaml:4:17: receivers.otlp.grpc.endpoint: invalid endpoint"), "%s", err);
}

int main(void)
{
    TH_RUN(t_sizes);
    TH_RUN(t_durations);
    TH_RUN(t_bare_duration_message);
    TH_RUN(t_env_expansion);
    TH_RUN(t_hostport);
    TH_RUN(t_defaults);
    TH_RUN(t_shipped_config_equals_defaults);
    TH_RUN(t_empty_documents_are_defaults);
    TH_RUN(t_every_key_documented);
    TH_RUN(t_full_valid_config);
    TH_RUN(t_aliases_and_quoted_values);
    TH_RUN(t_not_nul_terminated);
    TH_RUN(t_bad_configs);
    TH_RUN(t_several_errors_collected);
    TH_RUN(t_error_count_is_bounded);
    TH_RUN(t_missing_file);
    TH_RUN(t_replacing_lists);
    TH_RUN(t_rule_conditions);
    TH_RUN(t_min_severity_values);
    TH_RUN(t_rule_errors_collected);
    TH_RUN(t_regex_accepted);
    TH_RUN(t_grpc_section);
    return th_done();
}
