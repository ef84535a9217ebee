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
    const char *dlq_yaml;         /* extra lines in the dlq mapping, indented 2 */
    const char *exporter_yaml;    /* extra lines in exporters.otlphttp, indented 4 */
    const char *mock_args[16];    /* extra mockup arguments, NULL-terminated */
    int mock_tls;                 /* https upstream, exporter trusts its cert */
} th_stack_opts;

typedef struct th_stack th_stack;

/* Starts both processes (waits up to 10 s for each ready file). Returns an
 * owned, registered stack, or NULL with the reason printed as "# " lines. */
th_stack *th_stack_start(const th_stack_opts *o);
void th_stack_free(th_stack *s);

uint16_t th_stack_otlp_port(const th_stack *s);
uint16_t th_stack_telemetry_port(const th_stack *s);
uint16_t th_stack_mock_port(const th_stack *s);
const char *th_stack_dir(const th_stack *s);
th_proc *th_stack_spillway(th_stack *s);
th_proc *th_stack_mockup(th_stack *s);
/* A new registered connection to the receiver (timeout 5 s). */
th_http *th_stack_client(th_stack *s);

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
