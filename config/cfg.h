/* cfg.h — spillway's configuration: YAML -> one typed, immutable struct.
 *
 * cfg_load() parses a YAML file (libyaml) against the field tables in
 * cfg.c, starting from the built-in defaults (cfg_defaults()); unknown keys,
 * wrong types and out-of-range values are errors reported as
 * "FILE:LINE:COL: key.path: message". ${env:NAME} and ${env:NAME:-default}
 * expand inside scalar values. Sizes accept B, KB, KiB, MB, MiB, GB, GiB;
 * durations ns, us, ms, s, m, h. After load the struct is read-only: every
 * component holds a const pointer. Loaded on the main thread before any
 * other thread starts. The cfg owns every string it points to.
 */
#ifndef SW_CFG_H
#define SW_CFG_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/item.h"

typedef enum { CFG_COMP_NONE = 0, CFG_COMP_GZIP = 1, CFG_COMP_ZSTD = 2 } cfg_compression;
typedef enum { CFG_FSYNC_ALWAYS = 0, CFG_FSYNC_BATCH = 1, CFG_FSYNC_NEVER = 2 } cfg_fsync;
typedef enum { CFG_QUEUE_MEMORY = 0, CFG_QUEUE_DURABLE = 1 } cfg_queue_mode;

/* A list of strings (receivers.filelog.include/exclude); the cfg owns v
 * and every v[i]. */
typedef struct cfg_strlist {
    size_t n;
    char **v;
} cfg_strlist;

typedef struct cfg_header {
    char *name;
    char *value;
} cfg_header;

/* One processors.priority.rules[] entry: a class and one or more
 * conditions, all of which must hold (see processors/prio.h). attribute and
 * regex are both set or both NULL; at least one condition is present;
 * span_error and min_severity never together. */
typedef struct cfg_prio_rule {
    int klass;           /* sw_class */
    char *attribute;     /* resource attribute key, e.g. service.name; NULL: none */
    char *regex;         /* POSIX ERE source; NULL exactly when attribute is */
    int span_error;      /* span_status: error -> 1 (traces); 0: no condition */
    int min_severity;    /* min_severity 1..24 (logs); 0: no condition */
    int line, col;       /* where the rule was written (for later errors) */
} cfg_prio_rule;

typedef struct cfg {
    char *source;                        /* file name, or "<defaults>" */
    struct {
        char *http_endpoint;             /* receivers.otlp.http.endpoint      127.0.0.1:4318 */
        uint64_t http_max_request_body_size; /* .max_request_body_size       16MiB */
        uint64_t http_read_timeout_ms;   /* .read_timeout (idle/slow clients) 10s */
        uint32_t http_max_connections;   /* .max_connections 4096 */
        uint64_t http_header_timeout_ms; /* .header_timeout (whole request head) 10s */
        uint64_t http_min_body_rate;     /* .min_body_rate bytes/s after it 1KiB; 0: none */
        uint64_t intake_memory;          /* receivers.otlp.intake_memory 64MiB */
        int grpc_enabled;                /* the receivers.otlp.grpc section is present
                                            (always on in cfg_defaults()) */
        char *grpc_endpoint;             /* receivers.otlp.grpc.endpoint 127.0.0.1:4317 ("" = off) */
        char *grpc_tls_cert_file;        /* .tls.cert_file ("" = h2c, no TLS) */
        char *grpc_tls_key_file;         /* .tls.key_file */
        uint32_t grpc_max_connections;   /* .max_connections 256 */
        uint64_t grpc_idle_timeout_ms;   /* .idle_timeout 5m */
    } receiver;
    struct {                             /* receivers.filelog (off while include is empty) */
        cfg_strlist include;             /* .include globs []                   */
        cfg_strlist exclude;             /* .exclude globs []                   */
        int start_at;                    /* .start_at end (0) | beginning (1)   */
        int format;                      /* .format docker (0) | raw (1)        */
        uint64_t poll_interval_ms;       /* .poll_interval 1s                   */
        int inotify;                     /* .inotify true (false: polling only) */
        char *positions_dir;             /* .positions_dir ./data/filelog       */
        uint64_t max_record_size;        /* .max_record_size 1MiB               */
        uint32_t max_open_files;         /* .max_open_files 1024                */
        uint32_t flush_updates;          /* .flush.updates 100                  */
        uint64_t flush_interval_ms;      /* .flush.interval 5s                  */
        uint64_t batch_max_bytes;        /* .batch.max_bytes 1MiB               */
        uint64_t batch_timeout_ms;       /* .batch.timeout 200ms                */
        char *label_prefix;              /* .label_prefix container.label.      */
        uint64_t metadata_ttl_ms;        /* .metadata_ttl 10s                   */
    } filelog;
    struct {
        int enabled;                     /* processors.cardinality.enabled    true */
        uint32_t max_keys;               /* 65536 (power of two) */
        double aggregate_threshold;      /* 0.75 */
        double drop_threshold;           /* 0.90 */
        uint64_t key_ttl_ms;             /* 10m */
    } cardinality;
    struct {
        unsigned weights[CLASS_COUNT];   /* processors.priority.weights 5,3,1 */
        size_t n_rules;
        cfg_prio_rule *rules;            /* processors.priority.rules */
    } priority;
    struct {
        uint64_t max_bytes;              /* queue.max_bytes 64MiB */
        double spill_threshold;          /* queue.spill_threshold 0.95 */
        cfg_queue_mode mode;             /* queue.mode memory */
    } queue;
    struct {
        char *dir;                       /* dlq.dir ./data/dlq */
        uint64_t segment_size;           /* 128MiB */
        uint64_t max_size;               /* 4GiB */
        int compression_level;           /* 3 */
        cfg_fsync fsync;                 /* always */
        uint64_t replay_rate;            /* dlq.replay.rate, bytes/s, 4MiB */
        uint64_t replay_interleave_ms;   /* dlq.replay.interleave 500ms */
        uint64_t ring_bytes;             /* dlq.ring_bytes 64MiB */
    } dlq;
    struct {
        char *endpoint;                  /* exporters.otlphttp.endpoint http://127.0.0.1:4319 */
        size_t n_headers;
        cfg_header *headers;             /* .headers (map) */
        cfg_compression compression;     /* gzip */
        uint64_t timeout_ms;             /* 10s */
        uint32_t max_in_flight;          /* .max_in_flight, concurrent requests, 4 */
        uint64_t batch_max_bytes;        /* .batch.max_bytes 4MiB */
        uint64_t batch_timeout_ms;       /* .batch.timeout 200ms */
        uint64_t batch_linger_ms;        /* .batch.linger 10ms (0: off) */
        uint64_t retry_initial_ms;       /* .retry.initial_interval 1s */
        uint64_t retry_max_ms;           /* .retry.max_interval 30s */
        double retry_multiplier;         /* .retry.multiplier 2 */
        uint64_t retry_max_elapsed_ms;   /* .retry.max_elapsed_time 5m */
        uint32_t cb_consecutive_failures;/* .circuit_breaker.consecutive_failures 5 */
        double cb_ratio_429;             /* .circuit_breaker.ratio_429 0.30 */
        uint64_t cb_window_ms;           /* .circuit_breaker.window 30s */
        uint64_t cb_open_duration_ms;    /* .circuit_breaker.open_duration 30s */
        char *tls_ca_file;               /* .tls.ca_file ("" = system store) */
        int tls_insecure_skip_verify;    /* .tls.insecure_skip_verify false */
    } exporter;
    struct {
        char *endpoint;                  /* telemetry.endpoint 127.0.0.1:8888 */
        int log_level;                   /* telemetry.log.level info (log_level) */
        int log_json;                    /* telemetry.log.format json|text */
    } telemetry;
    struct {
        uint64_t shutdown_timeout_ms;    /* service.shutdown_timeout 10s */
    } service;
} cfg;

/* Returns owned defaults, or NULL on allocation failure. */
cfg *cfg_defaults(void);
/*
 * Loads path over the defaults. On success returns 0 and *out (owned).
 * On failure returns a negative SW_E* code (SW_EINVAL for invalid config,
 * SW_EIO if the file cannot be read, SW_ETOOBIG over 4 MiB, SW_ENOMEM) and
 * writes up to ~20 "FILE:LINE:COL: key.path: message\n" lines into errbuf
 * (always NUL-terminated when errlen > 0). errbuf may be NULL.
 */
int cfg_load(const char *path, cfg **out, char *errbuf, size_t errlen);
/*
 * Like cfg_load() over data[0..len) (need not be NUL-terminated); name
 * (borrowed) is the FILE in messages and becomes c->source.
 */
int cfg_load_mem(const char *name, const char *data, size_t len, cfg **out,
                 char *errbuf, size_t errlen);
/* NULL-safe; frees c and everything it owns. */
void cfg_free(cfg *c);

/* Calls fn once per leaf key of the schema, in table order: full dotted
 * path, type name (string, host:port, url, bool, uint, int, double, size,
 * duration, enum, map, list), default in config syntax ("" if none), help.
 * All strings are borrowed for the duration of the call. */
typedef void (*cfg_key_fn)(const char *path, const char *type, const char *def,
                           const char *help, void *arg);
void cfg_schema_foreach(cfg_key_fn fn, void *arg);

/* Value parsers, exposed for tests and the command line. 0 or SW_EINVAL. */
int cfg_parse_size(const char *s, uint64_t *out);
int cfg_parse_duration_ms(const char *s, uint64_t *out);
/* Expands ${env:NAME} and ${env:NAME:-default}; returns owned string or NULL
 * (with *err set to a message) on a malformed reference. */
char *cfg_expand_env(const char *s, const char **err);
/* Splits "host:port" (IPv4, [IPv6] or name; port 0..65535); 0, SW_EINVAL or
 * SW_ENOMEM. On success *host is owned by the caller; untouched otherwise. */
int cfg_split_hostport(const char *s, char **host, uint16_t *port);

#endif
