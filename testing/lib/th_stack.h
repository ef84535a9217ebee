/* th_stack.h — a mock upstream plus a spillway collector for one test.
 *
 * th_stack_start() makes a temp dir, starts build/spillway-mockup on an
 * ephemeral loopback port (optionally with TLS and a throwaway self-signed
 * certificate made with the openssl command), writes a spillway config that
 * points at it (ephemeral receiver and telemetry ports, small batch timeout
 * and retry intervals, DLQ in the temp dir) and starts build/spillway; both
 * report their ports through ready files. Binaries come from $SW_BIN_DIR
 * (default "build"). The stack is registered with the per-case cleanup:
 * both processes are killed by PID and the temp dir removed; when the case
 * failed, the tails of both logs are printed as "# " lines first.
 * spillway can be stopped (any signal) and started again on the same
 * config, temp dir and DLQ while the mock keeps running, and the offline
 * `spillway dlq` commands run on its DLQ dir; th_stack_lines.c adds
 * at-least-once content checks for outage and crash tests.
 * Main thread only.
 */
#ifndef TH_STACK_H
#define TH_STACK_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/item.h"
#include "testing/lib/th_http.h"
#include "testing/lib/th_otlp.h"
#include "testing/lib/th_proc.h"

typedef struct th_stack_opts {
    const char *compression;      /* exporters.otlphttp.compression, default "none" */
    const char *max_body;         /* receivers.otlp.http.max_request_body_size, "16MiB" */
    const char *read_timeout;     /* receivers.otlp.http.read_timeout, "10s" */
    const char *queue_max_bytes;  /* queue.max_bytes, "64MiB" */
    const char *shutdown_timeout; /* service.shutdown_timeout, "5s" */
    const char *batch_max_bytes;  /* exporters.otlphttp.batch.max_bytes, "4MiB" */
    const char *exporter_timeout; /* exporters.otlphttp.timeout, "5s" */
    const char *dlq_yaml;         /* extra lines in the dlq mapping, indented 2 */
    const char *exporter_yaml;    /* extra lines in exporters.otlphttp, indented 4 */
    const char *processors_yaml;  /* lines of a processors mapping, indented 2 (none if NULL) */
    const char *mock_args[16];    /* extra mockup arguments, NULL-terminated */
    int mock_tls;                 /* https upstream, exporter trusts its cert */
    const char *dlq_fsync;        /* dlq.fsync, default "never" */
    const char *queue_yaml;       /* extra lines in the queue mapping, indented 2 */
    const char *retry_yaml;       /* extra entries of the exporters.otlphttp.retry flow
                                   * mapping, e.g. "max_elapsed_time: 1h" */
    int mock_admin;               /* mockup --admin-listen: th_stack_mock_get/post/stats
                                   * use that port, reachable during a refuse outage */
    const char *dlq_tmpfs;        /* run spillway in a private mount namespace
                                   * (unshare -rm) with a tmpfs of this size ("2m") on
                                   * the DLQ dir; see th_stack_tmpfs_usable() */
    const char *grpc_yaml;        /* non-NULL: receivers.otlp.grpc on 127.0.0.1:0 plus
                                   * these lines of its mapping, indented 6 ("" for none) */
    const char *receiver_yaml;    /* extra lines after receivers.otlp.http.read_timeout:
                                   * http keys indented 6, otlp keys (intake_memory) 4 */
} th_stack_opts;

typedef struct th_stack th_stack;

/* Starts both processes (waits up to 10 s for each ready file). Returns an
 * owned, registered stack, or NULL with the reason printed as "# " lines. */
th_stack *th_stack_start(const th_stack_opts *o);
void th_stack_free(th_stack *s);

uint16_t th_stack_otlp_port(const th_stack *s);
/* The OTLP/gRPC port (opts.grpc_yaml), or 0. */
uint16_t th_stack_grpc_port(const th_stack *s);
uint16_t th_stack_telemetry_port(const th_stack *s);
uint16_t th_stack_mock_port(const th_stack *s);
/* The mock's --admin-listen port (opts.mock_admin), or 0. */
uint16_t th_stack_mock_admin_port(const th_stack *s);
const char *th_stack_dir(const th_stack *s);
th_proc *th_stack_spillway(th_stack *s);
th_proc *th_stack_mockup(th_stack *s);
/* A new registered connection to the receiver (timeout 5 s). */
th_http *th_stack_client(th_stack *s);

/* ---- restarts and the DLQ directory ---- */

/* The DLQ directory, <dir>/dlq. Borrowed. */
const char *th_stack_dlq_dir(const th_stack *s);
/* Sends nreq protobuf trace requests of per spans (seeds seed0, seed0+1,
 * ...) with a fresh client, each answered with success, and adds them to
 * e. 0, or -1 with the reason in why. */
int th_stack_send_traces(th_stack *s, th_expect *e, uint32_t seed0, int nreq, size_t per,
                         char *why, size_t whylen);
/* For a spillway started in its own user and mount namespaces with the DLQ
 * on a tmpfs: remounts that tmpfs "ro" or "rw" from inside them (nsenter).
 * 0, or -1 with the reason in why. */
int th_stack_remount_dlq(th_stack *s, const char *mode, char *why, size_t whylen);
/* Sends sig (SIGTERM, SIGKILL, ...) to spillway and waits up to timeout_ms
 * for it to exit. 0 with *status (waitpid status; may be NULL) set, or -1
 * when it was not running or did not exit in time (it is then killed). */
int th_stack_stop_spillway(th_stack *s, int sig, int timeout_ms, int *status);
/* Starts spillway again after it exited, with the same config file, temp
 * dir and DLQ (the mock keeps running). Receiver and telemetry ports
 * change: make new clients with th_stack_client(). Its log is appended to
 * the same file. 0, or -1 with the reason printed as "# " lines. */
int th_stack_restart_spillway(th_stack *s);
/* Runs `spillway dlq VERB --dir <dlq dir>` (bounded by 15 s; spillway must
 * not be running). Returns its exit status, or -1 when it did not run or
 * exit normally; *out (may be NULL) receives its stdout and stderr (owned,
 * not registered; NULL on error). */
int th_stack_dlq_cmd(th_stack *s, const char *verb, char **out);
/* `spillway dlq replay --dir <dlq dir> --to <the mock upstream>`, as
 * th_stack_dlq_cmd. */
int th_stack_dlq_replay_to_mock(th_stack *s, char **out);
/* `spillway dlq verify` on the DLQ directory after kill -9 number run: its
 * exit status, its output in *out (owned, may be NULL), printed as "# "
 * lines when the status is not 0. */
int th_stack_dlq_verify(th_stack *s, int run, char **out);
/* Records in the DLQ directory by `spillway dlq ls` (its "total:" line),
 * or -1 (the listing is printed as "# " lines when it has no total). */
long th_stack_dlq_records(th_stack *s);
/* 1 if spillway can be started with opts.dlq_tmpfs here (an unprivileged
 * `unshare -rm` may mount a tmpfs), else 0. */
int th_stack_tmpfs_usable(void);

/* ---- the mock upstream ---- */

typedef struct th_mock_stats {
    long requests[SIG_COUNT];
    long items[SIG_COUNT];
    long bytes[SIG_COUNT];
    long decode_errors;
    int n_codes;
    int codes[32];
    long code_counts[32];
} th_mock_stats;

/* GET /stats; 0 or -1. */
int th_stack_mock_stats(th_stack *s, th_mock_stats *out);
/* Responses the mock answered with `code`. */
long th_mock_stats_code(const th_mock_stats *st, int code);
/* Sum of all responses. */
long th_mock_stats_responses(const th_mock_stats *st);
/* Polls /stats every 10 ms until items[sig] >= want or the deadline.
 * Returns the last count seen (-1 if /stats never answered). */
long th_stack_wait_items(th_stack *s, sw_signal sig, long want, int timeout_ms);
/* Waits (up to timeout_ms) until the mock counted base + the expected
 * items of sig, then compares GET /received/<sig> with the expectation.
 * 0 when equal; else -1 with the reason in why. */
int th_stack_check_received(th_stack *s, sw_signal sig, const th_expect *e, long base,
                            int timeout_ms, char *why, size_t len);
/* GET path on the mock; returns the body (borrowed, valid until the next
 * th_stack_mock_* call) or NULL unless the answer is 200. */
const char *th_stack_mock_get(th_stack *s, const char *path);
/* POST path (empty body) on the mock; returns the status or -1. */
int th_stack_mock_post(th_stack *s, const char *path);

/* ---- at-least-once content checks (th_stack_lines.c) ---- */

/* A growing multiset of content lines (th_otlp "lines"). */
typedef struct th_lines th_lines;

/* Returns an owned, registered, empty set, or NULL. */
th_lines *th_lines_new(void);
void th_lines_free(th_lines *l);
/* Appends text ('\n'-terminated lines, e.g. th_otlp.lines). 0 or -1. */
int th_lines_add(th_lines *l, const char *text);
/* The lines, NUL-terminated (borrowed; valid until the next add). */
const char *th_lines_text(const th_lines *l);
size_t th_lines_count(const th_lines *l);
/* Sends d as protobuf on c; the answer must be a success. Then adds d's
 * lines to sent. 0, or -1 with the reason (seed first) in why. */
int th_send_ok(th_http *c, const th_otlp *d, th_lines *sent, char *why, size_t whylen);

/* Result of comparing received lines with required and optional ones. */
typedef struct th_cover {
    long required;   /* lines in `must` */
    long received;   /* lines in `got` */
    long missing;    /* required lines not received (multiset difference) */
    long dups;       /* received copies beyond a line's count in must + may */
    long optional;   /* received lines that were only in `may` (first copies) */
    long unexpected; /* received lines in neither must nor may */
} th_cover;

/* At-least-once comparison of `got` (text of /received/<signal>) with the
 * multiset `must` (every line has to arrive at least that often) and
 * `may` (lines allowed to arrive, e.g. acknowledged while only in memory
 * before a kill -9; may be NULL). Duplicates are counted, not refused.
 * 0 when nothing is missing or unexpected; else -1 with the counts and the
 * first missing / unexpected line in why. */
int th_lines_cover(const char *must, const char *may, const char *got, th_cover *out, char *why,
                   size_t len);
/* Waits up to timeout_ms until /received/<sig> covers must (as above),
 * polling the mock's item count and then the lines every 250 ms. 0 or -1
 * with the reason (of the last comparison) in why; *out is filled. */
int th_stack_wait_cover(th_stack *s, sw_signal sig, const th_lines *must, const th_lines *may,
                        int timeout_ms, th_cover *out, char *why, size_t len);

/* ---- spillway self-telemetry ---- */

/* GET path on the telemetry port; returns the response (borrowed, valid
 * until the next th_stack_telemetry/metrics call) or NULL. */
const th_resp *th_stack_telemetry(th_stack *s, const char *path);
/* GET /metrics body (borrowed as above) or NULL. */
const char *th_stack_metrics(th_stack *s);

/* Sum of the samples of metric `name` (exact name) whose labels include
 * every `k="v"` pair listed in `labels` (comma-separated, or NULL/"" for
 * all). *found (may be NULL) is set to the number of matching samples. */
double th_prom_sum(const char *text, const char *name, const char *labels, int *found);
/* 1 if the exposition text declares the family (a "# TYPE name" line) or
 * has a sample of it (name, name_bucket, name_count, name_sum). */
int th_prom_has_family(const char *text, const char *name);

#endif
