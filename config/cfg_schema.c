/* cfg_schema.c — the field tables: every config key, its type, where it
 * lives in struct cfg, its default (in config syntax), its range and a line
 * of help. The loader, the defaults and cfg_schema_foreach() all walk these
 * tables; configs/spillway.yaml and docs/configuration.md describe them.
 */
#include "config/cfg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/item.h"
#include "runtime/log.h"

#define F(k, t, m, d, lo, hi, h) { (k), (t), offsetof(cfg, m), (d), (lo), (hi), (h) }
#define FX(k, t, m, d, lo, hi, h, fl) { (k), (t), offsetof(cfg, m), (d), (lo), (hi), (h), NULL, NULL, (fl) }
#define FE(k, m, d, e, h) { (k), CFT_ENUM, offsetof(cfg, m), (d), 0, 0, (h), NULL, (e) }
#define SEC(k, s, h) { (k), CFT_SECTION, 0, NULL, 0, 0, (h), (s) }
#define END { NULL }

#define KIB 1024.0
#define MIB (1024.0 * KIB)
#define GIB (1024.0 * MIB)
#define TIB (1024.0 * GIB)
#define SEC_MS 1000.0
#define HOUR_MS 3600000.0

static const cfg_enum_val compression_enum[] = {
    { "gzip", CFG_COMP_GZIP }, { "zstd", CFG_COMP_ZSTD }, { "none", CFG_COMP_NONE }, { NULL, 0 },
};
static const cfg_enum_val fsync_enum[] = {
    { "always", CFG_FSYNC_ALWAYS }, { "batch", CFG_FSYNC_BATCH }, { "never", CFG_FSYNC_NEVER }, { NULL, 0 },
};
static const cfg_enum_val queue_mode_enum[] = {
    { "memory", CFG_QUEUE_MEMORY }, { "durable", CFG_QUEUE_DURABLE }, { NULL, 0 },
};
static const cfg_enum_val level_enum[] = {
    { "error", LOG_LVL_ERROR }, { "warn", LOG_LVL_WARN }, { "info", LOG_LVL_INFO },
    { "debug", LOG_LVL_DEBUG }, { NULL, 0 },
};
static const cfg_enum_val format_enum[] = { { "json", 1 }, { "text", 0 }, { NULL, 0 } };

static const cfg_field http_fields[] = {
    F("endpoint", CFT_HOSTPORT, receiver.http_endpoint, "127.0.0.1:4318", 0, 0,
      "address the OTLP/HTTP receiver listens on (host:port, [v6]:port; port 0 = any free port)"),
    F("max_request_body_size", CFT_SIZE, receiver.http_max_request_body_size, "16MiB", KIB, GIB,
      "largest accepted request body, before and after decompression (413 above)"),
    F("read_timeout", CFT_DURATION, receiver.http_read_timeout_ms, "10s", 1, HOUR_MS,
      "idle or slow clients are disconnected after this long without progress"),
    F("max_connections", CFT_UINT, receiver.http_max_connections, "4096", 1, 1048576,
      "open connections at most; more wait in the kernel's backlog"),
    F("header_timeout", CFT_DURATION, receiver.http_header_timeout_ms, "10s", 1, HOUR_MS,
      "the whole request head must arrive within this long (slowloris)"),
    F("min_body_rate", CFT_SIZE, receiver.http_min_body_rate, "1KiB", 0, GIB,
      "bytes per second a request body must average after header_timeout (slow POST); 0 = none"),
    END,
};
static const cfg_field grpc_tls_fields[] = {
    F("cert_file", CFT_STRING, receiver.grpc_tls_cert_file, "", 0, 0,
      "PEM certificate (chain) for h2 over TLS; empty = cleartext h2c"),
    F("key_file", CFT_STRING, receiver.grpc_tls_key_file, "", 0, 0, "PEM private key of cert_file"),
    END,
};
static const cfg_field grpc_fields[] = {
    FX("endpoint", CFT_HOSTPORT, receiver.grpc_endpoint, "127.0.0.1:4317", 0, 0,
       "address the OTLP/gRPC receiver listens on; empty = off", CFF_EMPTY_OK),
    F("max_connections", CFT_UINT, receiver.grpc_max_connections, "256", 1, 65536,
      "open HTTP/2 connections at most; more are closed at accept"),
    F("idle_timeout", CFT_DURATION, receiver.grpc_idle_timeout_ms, "5m", 1, 24 * HOUR_MS,
      "a connection without streams and without input for this long gets GOAWAY"),
    SEC("tls", grpc_tls_fields, "h2 over TLS (ALPN h2) when cert_file is set"),
    END,
};
static const cfg_field otlp_fields[] = {
    SEC("http", http_fields, "OTLP over HTTP"),
    { "grpc", CFT_SECTION, offsetof(cfg, receiver.grpc_enabled), NULL, 0, 0,
      "OTLP over gRPC; runs only when this section is present", grpc_fields, NULL, CFF_PRESENCE },
    F("intake_memory", CFT_SIZE, receiver.intake_memory, "64MiB", MIB, 64 * GIB,
      "request bytes held by all intake connections together; 503 + Retry-After above"),
    END,
};
static const cfg_enum_val start_at_enum[] = { { "end", 0 }, { "beginning", 1 }, { NULL, 0 } };
static const cfg_enum_val fl_format_enum[] = { { "docker", 0 }, { "raw", 1 }, { NULL, 0 } };
static const cfg_field fl_flush_fields[] = {
    F("updates", CFT_UINT, filelog.flush_updates, "100", 1, 1000000,
      "positions are saved after this many position updates"),
    F("interval", CFT_DURATION, filelog.flush_interval_ms, "5s", 1, HOUR_MS,
      "or after this long with an unsaved update"),
    END,
};
static const cfg_field fl_batch_fields[] = {
    F("max_bytes", CFT_SIZE, filelog.batch_max_bytes, "1MiB", KIB, 64 * MIB,
      "a request of one file's records is handed on at this size"),
    F("timeout", CFT_DURATION, filelog.batch_timeout_ms, "200ms", 1, HOUR_MS,
      "or when its oldest record is this old"),
    END,
};
static const cfg_field filelog_fields[] = {
    F("include", CFT_STRLIST, filelog.include, NULL, 0, 0,
      "globs of files to tail, e.g. /var/lib/docker/containers/*/*-json.log; empty = off"),
    F("exclude", CFT_STRLIST, filelog.exclude, NULL, 0, 0, "globs of files never tailed"),
    FE("start_at", filelog.start_at, "end", start_at_enum,
       "files without a saved position found at start: end | beginning"),
    FE("format", filelog.format, "docker", fl_format_enum, "docker (json-file lines) | raw (one record per line)"),
    F("poll_interval", CFT_DURATION, filelog.poll_interval_ms, "1s", 10, HOUR_MS,
      "globs are rescanned and files checked this often"),
    F("inotify", CFT_BOOL, filelog.inotify, "true", 0, 0,
      "use inotify to read changes at once; false = polling only"),
    FX("positions_dir", CFT_STRING, filelog.positions_dir, "./data/filelog", 0, 0,
       "directory of the position files", CFF_NONEMPTY),
    F("max_record_size", CFT_SIZE, filelog.max_record_size, "1MiB", KIB, 64 * MIB,
      "longest record; longer ones are cut and marked"),
    F("max_open_files", CFT_UINT, filelog.max_open_files, "1024", 1, 1000000,
      "files open at once; more wait for a free slot"),
    SEC("flush", fl_flush_fields, "when positions are saved"),
    SEC("batch", fl_batch_fields, "lines into requests"),
    F("label_prefix", CFT_STRING, filelog.label_prefix, "container.label.", 0, 0,
      "container labels become resource attributes under this prefix"),
    F("metadata_ttl", CFT_DURATION, filelog.metadata_ttl_ms, "10s", 1, HOUR_MS,
      "container metadata (config.v2.json) is checked for changes this often"),
    END,
};
static const cfg_field receivers_fields[] = {
    SEC("otlp", otlp_fields, "OTLP receiver"),
    SEC("filelog", filelog_fields, "container and plain log files"),
    END,
};

static const cfg_field cardinality_fields[] = {
    F("enabled", CFT_BOOL, cardinality.enabled, "true", 0, 0, "limit the number of metric series"),
    FX("max_keys", CFT_UINT, cardinality.max_keys, "65536", 1024, 16777216,
       "series table slots; a power of two", CFF_POW2),
    FX("aggregate_threshold", CFT_DOUBLE, cardinality.aggregate_threshold, "0.75", 0, 1,
       "fill above which new series lose their highest-entropy labels", CFF_MIN_EXCL | CFF_MAX_EXCL),
    FX("drop_threshold", CFT_DOUBLE, cardinality.drop_threshold, "0.90", 0, 1,
       "fill above which points of new series are dropped (> aggregate_threshold)", CFF_MIN_EXCL),
    F("key_ttl", CFT_DURATION, cardinality.key_ttl_ms, "10m", SEC_MS, 168 * HOUR_MS,
      "a series not seen for this long frees its slot"),
    END,
};
static const cfg_field weights_fields[] = {
    F("critical", CFT_UINT, priority.weights[CLASS_CRITICAL], "5", 1, 1000, "dequeue weight of critical"),
    F("high", CFT_UINT, priority.weights[CLASS_HIGH], "3", 1, 1000, "dequeue weight of high"),
    F("normal", CFT_UINT, priority.weights[CLASS_NORMAL], "1", 1, 1000, "dequeue weight of normal"),
    END,
};
static const cfg_field priority_fields[] = {
    SEC("weights", weights_fields, "weighted round robin between the class queues"),
    F("rules", CFT_RULES, priority.rules, NULL, 0, 0,
      "ordered list of {class, attribute + regex, span_status, min_severity}; "
      "the first match sets the class, default normal"),
    END,
};
static const cfg_field processors_fields[] = {
    SEC("cardinality", cardinality_fields, "metric cardinality limiter"),
    SEC("priority", priority_fields, "priority classifier"),
    END,
};

static const cfg_field queue_fields[] = {
    F("max_bytes", CFT_SIZE, queue.max_bytes, "64MiB", 64 * KIB, TIB,
      "memory for queued items, all classes together"),
    FX("spill_threshold", CFT_DOUBLE, queue.spill_threshold, "0.95", 0, 1,
       "fill at which new items go to the DLQ instead of memory", CFF_MIN_EXCL),
    FE("mode", queue.mode, "memory", queue_mode_enum,
       "memory | durable (every accepted request is in the DLQ's journal before its 2xx)"),
    END,
};

static const cfg_field replay_fields[] = {
    F("rate", CFT_SIZE, dlq.replay_rate, "4MiB", KIB, 64 * GIB, "replay budget in bytes per second"),
    F("interleave", CFT_DURATION, dlq.replay_interleave_ms, "500ms", 1, HOUR_MS,
      "replay and live traffic alternate in slices of this length"),
    END,
};
static const cfg_field dlq_fields[] = {
    FX("dir", CFT_STRING, dlq.dir, "./data/dlq", 0, 0, "directory of the dead-letter queue", CFF_NONEMPTY),
    F("segment_size", CFT_SIZE, dlq.segment_size, "128MiB", MIB, GIB, "largest segment file"),
    F("max_size", CFT_SIZE, dlq.max_size, "4GiB", MIB, 64 * TIB,
      "DLQ capacity; when full, intake answers 429/503 (>= segment_size)"),
    F("compression_level", CFT_INT, dlq.compression_level, "3", 1, 19, "zstd level of records"),
    FE("fsync", dlq.fsync, "always", fsync_enum, "durability: always | batch | never"),
    SEC("replay", replay_fields, "replay to the upstream once it recovers"),
    F("ring_bytes", CFT_SIZE, dlq.ring_bytes, "64MiB", MIB, 64 * GIB,
      "request bytes waiting in memory for the DLQ writer; spills past it are refused (503)"),
    END,
};

static const cfg_field batch_fields[] = {
    F("max_bytes", CFT_SIZE, exporter.batch_max_bytes, "4MiB", 1, GIB, "largest request sent upstream"),
    F("timeout", CFT_DURATION, exporter.batch_timeout_ms, "200ms", 1, HOUR_MS,
      "a partial batch is sent after this long"),
    F("linger", CFT_DURATION, exporter.batch_linger_ms, "10ms", 0, HOUR_MS,
      "receive-to-upstream-ack budget a batch may wait for more items while a connection is "
      "idle; 0 = send at once"),
    END,
};
static const cfg_field retry_fields[] = {
    F("initial_interval", CFT_DURATION, exporter.retry_initial_ms, "1s", 1, HOUR_MS, "first backoff"),
    F("max_interval", CFT_DURATION, exporter.retry_max_ms, "30s", 1, 24 * HOUR_MS,
      "largest backoff (>= initial_interval)"),
    F("multiplier", CFT_DOUBLE, exporter.retry_multiplier, "2", 1, 100, "backoff growth factor"),
    F("max_elapsed_time", CFT_DURATION, exporter.retry_max_elapsed_ms, "5m", 1, 168 * HOUR_MS,
      "retrying one request gives up after this long"),
    END,
};
static const cfg_field breaker_fields[] = {
    F("consecutive_failures", CFT_UINT, exporter.cb_consecutive_failures, "5", 1, 1000000,
      "failures in a row that open the breaker"),
    FX("ratio_429", CFT_DOUBLE, exporter.cb_ratio_429, "0.30", 0, 1,
       "share of 429 answers within window that opens the breaker", CFF_MIN_EXCL),
    F("window", CFT_DURATION, exporter.cb_window_ms, "30s", 1, 24 * HOUR_MS, "window of ratio_429"),
    F("open_duration", CFT_DURATION, exporter.cb_open_duration_ms, "30s", 1, 24 * HOUR_MS,
      "time open before one probe request"),
    END,
};
static const cfg_field tls_fields[] = {
    F("ca_file", CFT_STRING, exporter.tls_ca_file, "", 0, 0, "PEM CA bundle; empty = system store"),
    F("insecure_skip_verify", CFT_BOOL, exporter.tls_insecure_skip_verify, "false", 0, 0,
      "do not verify the server certificate (testing only)"),
    END,
};
static const cfg_field otlphttp_fields[] = {
    F("endpoint", CFT_URL, exporter.endpoint, "http://127.0.0.1:4319",
      0, 0, "upstream base URL; /v1/traces, /v1/metrics, /v1/logs are appended"),
    F("headers", CFT_HEADERS, exporter.headers, NULL, 0, 0, "extra request headers (name: value)"),
    FE("compression", exporter.compression, "gzip", compression_enum, "request body: gzip | zstd | none"),
    F("timeout", CFT_DURATION, exporter.timeout_ms, "10s", 1, HOUR_MS, "per-request timeout"),
    F("max_in_flight", CFT_UINT, exporter.max_in_flight, "4", 1, 64, "concurrent requests"),
    SEC("batch", batch_fields, "batching of items of one signal"),
    SEC("retry", retry_fields, "exponential backoff with jitter"),
    SEC("circuit_breaker", breaker_fields, "circuit breaker"),
    SEC("tls", tls_fields, "TLS for https:// endpoints"),
    END,
};
static const cfg_field exporters_fields[] = { SEC("otlphttp", otlphttp_fields, "OTLP/HTTP exporter"), END };

static const cfg_field log_fields[] = {
    FE("level", telemetry.log_level, "info", level_enum, "error | warn | info | debug"),
    FE("format", telemetry.log_json, "json", format_enum, "json | text"),
    END,
};
static const cfg_field telemetry_fields[] = {
    F("endpoint", CFT_HOSTPORT, telemetry.endpoint, "127.0.0.1:8888", 0, 0,
      "self-telemetry server: /metrics, /healthz, /readyz"),
    SEC("log", log_fields, "logs on stderr"),
    END,
};
static const cfg_field service_fields[] = {
    F("shutdown_timeout", CFT_DURATION, service.shutdown_timeout_ms, "10s", 1, HOUR_MS,
      "graceful shutdown drains for at most this long, then spills to the DLQ"),
    END,
};

static const cfg_field root_fields[] = {
    SEC("receivers", receivers_fields, "intake"),
    SEC("processors", processors_fields, "processing"),
    SEC("queue", queue_fields, "in-memory priority queue"),
    SEC("dlq", dlq_fields, "on-disk dead-letter queue"),
    SEC("exporters", exporters_fields, "upstream"),
    SEC("telemetry", telemetry_fields, "self-telemetry"),
    SEC("service", service_fields, "process"),
    END,
};

const cfg_field *cfg_schema_root(void) { return root_fields; }

static int apply_defaults(cfg *c, const cfg_field *t)
{
    char msg[160];
    for (; t->key; t++) {
        int rc = 0;
        if (t->type == CFT_SECTION) rc = apply_defaults(c, t->sub);
        else if (t->def) rc = cfg_value_set(c, t, t->def, msg, sizeof msg);
        if (rc != 0) return rc;
    }
    return 0;
}

int cfg_schema_apply_defaults(cfg *c) { return apply_defaults(c, root_fields); }

static const char *type_name(const cfg_field *f)
{
    static const char *names[] = {
        [CFT_SECTION] = "section", [CFT_STRING] = "string", [CFT_HOSTPORT] = "host:port",
        [CFT_URL] = "url", [CFT_BOOL] = "bool", [CFT_UINT] = "uint", [CFT_INT] = "int",
        [CFT_DOUBLE] = "double", [CFT_SIZE] = "size", [CFT_DURATION] = "duration",
        [CFT_ENUM] = "enum", [CFT_HEADERS] = "map", [CFT_RULES] = "list",
        [CFT_STRLIST] = "list",
    };
    return names[f->type];
}

static void foreach_in(const cfg_field *t, const char *prefix, cfg_key_fn fn, void *arg)
{
    char path[CFG_PATH_MAX];
    for (; t->key; t++) {
        snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", t->key);
        if (t->type == CFT_SECTION) foreach_in(t->sub, path, fn, arg);
        else fn(path, type_name(t), t->def ? t->def : "", t->help, arg);
    }
}

void cfg_schema_foreach(cfg_key_fn fn, void *arg) { foreach_in(root_fields, "", fn, arg); }

static void free_strings(cfg *c, const cfg_field *t)
{
    for (; t->key; t++) {
        if (t->type == CFT_SECTION) {
            free_strings(c, t->sub);
        } else if (t->type == CFT_STRING || t->type == CFT_HOSTPORT || t->type == CFT_URL) {
            char **s = (char **)(void *)((char *)c + t->offset);
            free(*s);
            *s = NULL;
        }
    }
}

void cfg_schema_free_strings(cfg *c) { free_strings(c, root_fields); }
