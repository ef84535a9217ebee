/* metrics.c — see metrics.h.
 *
 * Rendering follows the Prometheus text exposition format 0.0.4: every
 * family gets "# HELP" and "# TYPE" lines (even when it has no sample yet),
 * counters end in _total, values are in base units (seconds, bytes), and
 * label values are escaped (\\, \", \n). Counters are read with relaxed
 * loads, so one page is not an atomic snapshot across families; within the
 * latency histogram the buckets are read once and _count is their sum, so
 * the +Inf bucket always equals _count.
 */
#include "runtime/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/procstat.h"

#ifndef SW_VERSION
#define SW_VERSION "unknown"
#endif
#ifndef SW_GITREV
#define SW_GITREV "unknown"
#endif

/* 100 µs .. 10 s; dense around the 1-25 ms range the latency targets sit in. */
const double metrics_latency_bounds[MET_LAT_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
    0.025,  0.05,    0.1,    0.25,  1,      2.5,   10,
};
const double metrics_cl_bounds[MET_CL_BUCKETS] = {
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001,   0.0025,   0.005,   0.01,   0.025,   0.1,
};
static const int64_t cl_bounds_ns[MET_CL_BUCKETS] = {
    10000,   25000,   50000,   100000,   250000,   500000,
    1000000, 2500000, 5000000, 10000000, 25000000, 100000000,
};
/* The same bounds in nanoseconds, so an observation compares integers. */
static const int64_t lat_bounds_ns[MET_LAT_BUCKETS] = {
    100000,   250000,    500000,    1000000,    2500000,    5000000,    10000000,
    25000000, 50000000,  100000000, 250000000,  1000000000, 2500000000, 10000000000,
};

static const char *const refuse_names[RCV_REFUSE_COUNT] = {
    "decode", "too_large", "queue_full", "unsupported", "shutdown",
};
static const char *const result_names[EXP_RESULT_COUNT] = {"sent", "rejected", "dropped"};
static const char *const grpc_code_names[MET_GRPC_CODES] = {
    "OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
    "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *metrics_grpc_code_name(int code)
{
    return code >= 0 && code < MET_GRPC_CODES ? grpc_code_names[code] : "UNKNOWN";
}

sw_metrics *metrics_new(void)
{
    sw_metrics *m = calloc(1, sizeof *m);
    if (!m) return NULL;
    m->start_wall_ns = clock_wall_ns();
    return m;
}

void metrics_free(sw_metrics *m) { free(m); }

const char *metrics_refuse_reason_name(rcv_refuse_reason r)
{
    return (unsigned)r < RCV_REFUSE_COUNT ? refuse_names[r] : "unknown";
}

const char *metrics_exp_result_name(exp_result r)
{
    return (unsigned)r < EXP_RESULT_COUNT ? result_names[r] : "unknown";
}

void metrics_observe_latency(sw_metrics *m, int64_t ns)
{
    if (ns < 0) ns = 0;
    int i = 0;
    while (i < MET_LAT_BUCKETS && ns > lat_bounds_ns[i]) i++;
    metrics_add(&m->lat_buckets[i], 1);
    metrics_add(&m->lat_sum_ns, (uint64_t)ns);
    metrics_add(&m->lat_count, 1);
}

void metrics_observe_cl(sw_metrics *m, int64_t ns)
{
    if (ns < 0) ns = 0;
    int i = 0;
    while (i < MET_CL_BUCKETS && ns > cl_bounds_ns[i]) i++;
    metrics_add(&m->cl_proc_buckets[i], 1);
    metrics_add(&m->cl_proc_sum_ns, (uint64_t)ns);
}

/* ---- rendering -------------------------------------------------------- */

/* Output plus the first error: helpers do nothing once rc is set, so the
 * render functions read as a list of families. */
typedef struct mr_ctx {
    buf *out;
    int rc;
} mr_ctx;

static void mr_printf(mr_ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void mr_printf(mr_ctx *c, const char *fmt, ...)
{
    if (c->rc) return;
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) {
        c->rc = SW_EINVAL; /* every line we format is short */
        return;
    }
    c->rc = buf_append(c->out, tmp, (size_t)n);
}

static void mr_family(mr_ctx *c, const char *name, const char *type, const char *help)
{
    mr_printf(c, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t ld_u(const _Atomic uint64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

static int64_t ld_i(const _Atomic int64_t *p)
{
    return atomic_load_explicit(p, memory_order_relaxed);
}

/* Shortest decimal text that reads back as v. Integral values print
 * without an exponent ("10", not "1e+01"); a non-integral value needs more
 * significant digits than it has integer digits, so %g keeps it positional
 * unless it is tiny (< 1e-4), where the exponent form is fine. */
static void mr_fmt_double(char *dst, size_t cap, double v)
{
    if (v == (double)(long long)v && v > -1e15 && v < 1e15) {
        snprintf(dst, cap, "%lld", (long long)v);
        return;
    }
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(dst, cap, "%.*g", prec, v);
        if (strtod(dst, NULL) == v) return;
    }
}

/* Exact seconds from nanoseconds: "12.5", "0.003", "7". */
static void mr_fmt_ns_seconds(char *dst, size_t cap, uint64_t ns)
{
    int n = snprintf(dst, cap, "%llu.%09llu", (unsigned long long)(ns / 1000000000u),
                     (unsigned long long)(ns % 1000000000u));
    if (n <= 0 || (size_t)n >= cap) return;
    while (n > 0 && dst[n - 1] == '0') dst[--n] = '\0';
    if (n > 0 && dst[n - 1] == '.') dst[--n] = '\0';
}

static void mr_double(mr_ctx *c, const char *name, double v)
{
    char num[64];
    mr_fmt_double(num, sizeof num, v);
    mr_printf(c, "%s %s\n", name, num);
}

/* Appends s with Prometheus label-value escaping. */
static void mr_label_value(mr_ctx *c, const char *s)
{
    for (; *s && !c->rc; s++) {
        if (*s == '\\') c->rc = buf_append_str(c->out, "\\\\");
        else if (*s == '"') c->rc = buf_append_str(c->out, "\\\"");
        else if (*s == '\n') c->rc = buf_append_str(c->out, "\\n");
        else c->rc = buf_append(c->out, s, 1);
    }
}

/* ---- families --------------------------------------------------------- */

/* name{signal="..",code=".."} for every non-zero pair. */
static void mr_codes(mr_ctx *c, const char *name, const _Atomic uint64_t (*t)[MET_CODES])
{
    for (int s = 0; s < SIG_COUNT; s++) {
        for (int code = 0; code < MET_CODES; code++) {
            uint64_t v = ld_u(&t[s][code]);
            if (!v) continue;
            char cs[16];
            if (code == 0) snprintf(cs, sizeof cs, "error");
            else snprintf(cs, sizeof cs, "%d", code);
            mr_printf(c, "%s{signal=\"%s\",code=\"%s\"} %llu\n", name,
                      sw_signal_name((sw_signal)s), cs, (unsigned long long)v);
        }
    }
}

static void mr_per_signal(mr_ctx *c, const char *name, const _Atomic uint64_t *t)
{
    for (int s = 0; s < SIG_COUNT; s++)
        mr_printf(c, "%s{signal=\"%s\"} %llu\n", name, sw_signal_name((sw_signal)s),
                  (unsigned long long)ld_u(&t[s]));
}

static void mr_per_class_u(mr_ctx *c, const char *name, const _Atomic uint64_t *t)
{
    for (int k = 0; k < CLASS_COUNT; k++)
        mr_printf(c, "%s{class=\"%s\"} %llu\n", name, sw_class_name((sw_class)k),
                  (unsigned long long)ld_u(&t[k]));
}

static void mr_per_class_i(mr_ctx *c, const char *name, const _Atomic int64_t *t)
{
    for (int k = 0; k < CLASS_COUNT; k++)
        mr_printf(c, "%s{class=\"%s\"} %lld\n", name, sw_class_name((sw_class)k),
                  (long long)ld_i(&t[k]));
}

/* The receiver families carry transport="http" or "grpc"; gRPC calls are
 * counted by status name (code="OK", "INVALID_ARGUMENT", ...). */
static void mr_rcv_codes(mr_ctx *c, const char *name, const sw_metrics *m)
{
    for (int s = 0; s < SIG_COUNT; s++) {
        for (int code = 0; code < MET_CODES; code++) {
            uint64_t v = ld_u(&m->rcv_requests[s][code]);
            if (!v) continue;
            char cs[16];
            if (code == 0) snprintf(cs, sizeof cs, "error");
            else snprintf(cs, sizeof cs, "%d", code);
            mr_printf(c, "%s{signal=\"%s\",code=\"%s\",transport=\"http\"} %llu\n", name,
                      sw_signal_name((sw_signal)s), cs, (unsigned long long)v);
        }
        for (int code = 0; code < MET_GRPC_CODES; code++) {
            uint64_t v = ld_u(&m->rcv_grpc_requests[s][code]);
            if (v)
                mr_printf(c, "%s{signal=\"%s\",code=\"%s\",transport=\"grpc\"} %llu\n", name,
                          sw_signal_name((sw_signal)s), metrics_grpc_code_name(code),
                          (unsigned long long)v);
        }
    }
}

static void mr_rcv_per_signal(mr_ctx *c, const char *name, const _Atomic uint64_t *http,
                              const _Atomic uint64_t *grpc)
{
    for (int s = 0; s < SIG_COUNT; s++) {
        mr_printf(c, "%s{signal=\"%s\",transport=\"http\"} %llu\n", name,
                  sw_signal_name((sw_signal)s), (unsigned long long)ld_u(&http[s]));
        mr_printf(c, "%s{signal=\"%s\",transport=\"grpc\"} %llu\n", name,
                  sw_signal_name((sw_signal)s), (unsigned long long)ld_u(&grpc[s]));
    }
}

static void mr_receiver(mr_ctx *c, const sw_metrics *m)
{
    mr_family(c, "spillway_receiver_requests_total", "counter",
              "OTLP export requests answered by the receiver, by signal, status code "
              "(HTTP status, or gRPC status name) and transport.");
    mr_rcv_codes(c, "spillway_receiver_requests_total", m);
    mr_family(c, "spillway_receiver_items_total", "counter",
              "Spans, data points and log records accepted by the receiver.");
    mr_rcv_per_signal(c, "spillway_receiver_items_total", m->rcv_items, m->rcv_grpc_items);
    mr_family(c, "spillway_receiver_refused_items_total", "counter",
              "Items refused at intake, by signal, reason and transport.");
    for (int s = 0; s < SIG_COUNT; s++)
        for (int r = 0; r < RCV_REFUSE_COUNT; r++)
            mr_printf(c, "spillway_receiver_refused_items_total{signal=\"%s\",reason=\"%s\","
                         "transport=\"http\"} %llu\n"
                         "spillway_receiver_refused_items_total{signal=\"%s\",reason=\"%s\","
                         "transport=\"grpc\"} %llu\n",
                      sw_signal_name((sw_signal)s), refuse_names[r],
                      (unsigned long long)ld_u(&m->rcv_refused_items[s][r]),
                      sw_signal_name((sw_signal)s), refuse_names[r],
                      (unsigned long long)ld_u(&m->rcv_grpc_refused_items[s][r]));
    mr_family(c, "spillway_receiver_bytes_total", "counter",
              "Request body bytes received (as sent, before decompression).");
    mr_rcv_per_signal(c, "spillway_receiver_bytes_total", m->rcv_bytes, m->rcv_grpc_bytes);
}

static void mr_cardinality(mr_ctx *c, const sw_metrics *m)
{
    mr_family(c, "spillway_cl_keys_used", "gauge",
              "Series slots in use in the cardinality limiter's table.");
    mr_printf(c, "spillway_cl_keys_used %lld\n", (long long)ld_i(&m->cl_keys_used));
    mr_family(c, "spillway_cl_aggregated_samples_total", "counter",
              "Data points of new series admitted after high-entropy labels were removed.");
    mr_printf(c, "spillway_cl_aggregated_samples_total %llu\n",
              (unsigned long long)ld_u(&m->cl_aggregated_samples));
    mr_family(c, "spillway_cl_dropped_samples_total", "counter",
              "Data points of new series dropped by the cardinality limiter.");
    mr_printf(c, "spillway_cl_dropped_samples_total %llu\n",
              (unsigned long long)ld_u(&m->cl_dropped_samples));
    mr_family(c, "spillway_cl_max_keys", "gauge",
              "Series slots of the cardinality limiter's table (processors.cardinality.max_keys; "
              "0 when it is off).");
    mr_printf(c, "spillway_cl_max_keys %lld\n", (long long)ld_i(&m->cl_max_keys));
}

static void mr_queue(mr_ctx *c, const sw_metrics *m)
{
    int64_t used = 0;
    for (int k = 0; k < CLASS_COUNT; k++) used += ld_i(&m->queue_bytes[k]);
    uint64_t max = ld_u(&m->queue_max_bytes);
    double fill = (max && used > 0) ? (double)used / (double)max : 0.0;
    mr_family(c, "spillway_queue_fill_ratio", "gauge",
              "Bytes in the in-memory queue divided by queue.max_bytes (spill at 0.95).");
    mr_double(c, "spillway_queue_fill_ratio", fill);
    mr_family(c, "spillway_queue_items", "gauge", "Items in the in-memory queue, by class.");
    mr_per_class_i(c, "spillway_queue_items", m->queue_items);
    mr_family(c, "spillway_queue_bytes", "gauge", "Bytes in the in-memory queue, by class.");
    mr_per_class_i(c, "spillway_queue_bytes", m->queue_bytes);
    mr_family(c, "spillway_queue_dequeued_total", "counter",
              "Items taken from the queue by the exporter, by class.");
    mr_per_class_u(c, "spillway_queue_dequeued_total", m->queue_dequeued);
    mr_family(c, "spillway_queue_spilled_total", "counter",
              "Items sent to the DLQ instead of memory, by class.");
    mr_per_class_u(c, "spillway_queue_spilled_total", m->queue_spilled);
    mr_family(c, "spillway_queue_max_bytes", "gauge",
              "Capacity of the in-memory queue in bytes (queue.max_bytes).");
    mr_printf(c, "spillway_queue_max_bytes %llu\n", (unsigned long long)max);
}

static void mr_dlq(mr_ctx *c, const sw_metrics *m)
{
    int64_t oldest = ld_i(&m->dlq_oldest_wall_ns);
    int64_t age = oldest > 0 ? clock_wall_ns() - oldest : 0;
    char num[64];
    mr_fmt_ns_seconds(num, sizeof num, age > 0 ? (uint64_t)age : 0);
    mr_family(c, "spillway_dlq_bytes", "gauge", "Bytes of DLQ segment files on disk.");
    mr_printf(c, "spillway_dlq_bytes %lld\n", (long long)ld_i(&m->dlq_bytes));
    mr_family(c, "spillway_dlq_segments", "gauge", "DLQ segment files on disk.");
    mr_printf(c, "spillway_dlq_segments %lld\n", (long long)ld_i(&m->dlq_segments));
    mr_family(c, "spillway_dlq_oldest_age_seconds", "gauge",
              "Age of the oldest unacknowledged record in the DLQ (0 when empty).");
    mr_printf(c, "spillway_dlq_oldest_age_seconds %s\n", num);
    mr_family(c, "spillway_dlq_written_bytes_total", "counter",
              "Request bytes spilled into the DLQ.");
    mr_printf(c, "spillway_dlq_written_bytes_total %llu\n",
              (unsigned long long)ld_u(&m->dlq_written_bytes));
    mr_family(c, "spillway_dlq_replayed_bytes_total", "counter",
              "Request bytes replayed from the DLQ and acknowledged upstream.");
    mr_printf(c, "spillway_dlq_replayed_bytes_total %llu\n",
              (unsigned long long)ld_u(&m->dlq_replayed_bytes));
    mr_family(c, "spillway_dlq_corrupt_segments_total", "counter",
              "DLQ segments that failed verification and were moved to quarantine/.");
    mr_printf(c, "spillway_dlq_corrupt_segments_total %llu\n",
              (unsigned long long)ld_u(&m->dlq_corrupt_segments));
    mr_family(c, "spillway_dlq_write_errors_total", "counter",
              "DLQ storage operations that failed (segment create, write, fsync, seal, probe).");
    mr_printf(c, "spillway_dlq_write_errors_total %llu\n",
              (unsigned long long)ld_u(&m->dlq_write_errors));
    mr_family(c, "spillway_dlq_available", "gauge",
              "1 while the DLQ takes appends, 0 while its storage is unavailable.");
    mr_printf(c, "spillway_dlq_available %lld\n", (long long)ld_i(&m->dlq_available));
    mr_family(c, "spillway_dlq_max_bytes", "gauge",
              "dlq.max_size in bytes: past it appends are refused and intake answers 429/503.");
    mr_printf(c, "spillway_dlq_max_bytes %lld\n", (long long)ld_i(&m->dlq_max_bytes));
    mr_family(c, "spillway_dlq_written_items_total", "counter",
              "Items (spans, data points, log records) stored in the DLQ, by class: spilled at "
              "queue fill, by the exporter (breaker open, retries given up) or at shutdown.");
    mr_per_class_u(c, "spillway_dlq_written_items_total", m->dlq_written_items);
    mr_family(c, "spillway_dlq_replayed_items_total", "counter",
              "Items replayed from the DLQ and acknowledged, by class.");
    mr_per_class_u(c, "spillway_dlq_replayed_items_total", m->dlq_replayed_items);
}

static void mr_exporter(mr_ctx *c, const sw_metrics *m)
{
    mr_family(c, "spillway_exporter_requests_total", "counter",
              "Upstream export requests, by signal and HTTP status code (\"error\" = no response).");
    mr_codes(c, "spillway_exporter_requests_total", m->exp_requests);
    mr_family(c, "spillway_exporter_items_total", "counter",
              "Items the exporter finished with, by signal and result (sent, rejected, dropped).");
    for (int s = 0; s < SIG_COUNT; s++)
        for (int r = 0; r < EXP_RESULT_COUNT; r++)
            mr_printf(c, "spillway_exporter_items_total{signal=\"%s\",result=\"%s\"} %llu\n",
                      sw_signal_name((sw_signal)s), result_names[r],
                      (unsigned long long)ld_u(&m->exp_items[s][r]));
    mr_family(c, "spillway_exporter_retries_total", "counter",
              "Upstream requests retried after a retryable failure.");
    mr_printf(c, "spillway_exporter_retries_total %llu\n",
              (unsigned long long)ld_u(&m->exp_retries));
    mr_family(c, "spillway_exporter_partial_rejected_items_total", "counter",
              "Items the upstream reported as rejected in partial_success.");
    mr_per_signal(c, "spillway_exporter_partial_rejected_items_total", m->exp_partial_rejected);
    mr_family(c, "spillway_exporter_in_flight_requests", "gauge",
              "Upstream requests sent and not yet answered.");
    mr_printf(c, "spillway_exporter_in_flight_requests %lld\n",
              (long long)ld_i(&m->exp_in_flight));
    mr_family(c, "spillway_exporter_circuit_state", "gauge",
              "Exporter circuit breaker: 0 closed, 1 half-open, 2 open.");
    mr_printf(c, "spillway_exporter_circuit_state %lld\n",
              (long long)ld_i(&m->exp_circuit_state));
    mr_family(c, "spillway_exporter_dlq_failed_items_total", "counter",
              "Items the DLQ could not store when the exporter spilled them; kept in memory.");
    mr_printf(c, "spillway_exporter_dlq_failed_items_total %llu\n",
              (unsigned long long)ld_u(&m->exp_dlq_failed_items));
}

/* A histogram family from cumulative-able buckets (last = +Inf). */
static void mr_histogram(mr_ctx *c, const char *name, const char *help, const double *bounds,
                         int n, const _Atomic uint64_t *buckets, uint64_t sum_ns)
{
    uint64_t cum = 0;
    char num[64];
    mr_family(c, name, "histogram", help);
    for (int i = 0; i <= n; i++) {
        cum += ld_u(&buckets[i]);
        if (i < n) mr_fmt_double(num, sizeof num, bounds[i]);
        else snprintf(num, sizeof num, "+Inf");
        mr_printf(c, "%s_bucket{le=\"%s\"} %llu\n", name, num, (unsigned long long)cum);
    }
    mr_fmt_ns_seconds(num, sizeof num, sum_ns);
    mr_printf(c, "%s_sum %s\n", name, num);
    mr_printf(c, "%s_count %llu\n", name, (unsigned long long)cum);
}

static void mr_latency(mr_ctx *c, const sw_metrics *m)
{
    mr_histogram(c, "spillway_pipeline_latency_seconds",
                 "Time from receipt of a request to the upstream's acknowledgement.",
                 metrics_latency_bounds, MET_LAT_BUCKETS, m->lat_buckets,
                 ld_u(&m->lat_sum_ns));
    mr_histogram(c, "spillway_cl_processing_seconds",
                 "Cardinality limiter processing time per metrics request.",
                 metrics_cl_bounds, MET_CL_BUCKETS, m->cl_proc_buckets,
                 ld_u(&m->cl_proc_sum_ns));
}

static void mr_process(mr_ctx *c, const sw_metrics *m)
{
    procstat ps;
    if (procstat_read(&ps) != 0) return; /* no /proc: leave the families out */
    double start = ps.start_time_s > 0 ? ps.start_time_s : (double)m->start_wall_ns / 1e9;
    mr_family(c, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    mr_double(c, "process_cpu_seconds_total", ps.cpu_user_s + ps.cpu_system_s);
    mr_family(c, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    mr_printf(c, "process_resident_memory_bytes %llu\n", (unsigned long long)ps.rss_bytes);
    mr_family(c, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    mr_printf(c, "process_virtual_memory_bytes %llu\n", (unsigned long long)ps.vsize_bytes);
    mr_family(c, "process_start_time_seconds", "gauge",
              "Start time of the process since unix epoch in seconds.");
    mr_double(c, "process_start_time_seconds", start);
    if (ps.open_fds >= 0) {
        mr_family(c, "process_open_fds", "gauge", "Number of open file descriptors.");
        mr_printf(c, "process_open_fds %lld\n", (long long)ps.open_fds);
    }
    if (ps.max_fds >= 0) {
        mr_family(c, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        mr_printf(c, "process_max_fds %lld\n", (long long)ps.max_fds);
    }
}

static void mr_build_info(mr_ctx *c)
{
    mr_family(c, "spillway_build_info", "gauge",
              "Always 1; the labels name the running build.");
    mr_printf(c, "spillway_build_info{version=\"");
    mr_label_value(c, SW_VERSION);
    mr_printf(c, "\",revision=\"");
    mr_label_value(c, SW_GITREV);
    mr_printf(c, "\"} 1\n");
}

static void mr_counter(mr_ctx *c, const char *name, const char *help, const _Atomic uint64_t *v)
{
    mr_family(c, name, "counter", help);
    mr_printf(c, "%s %llu\n", name, (unsigned long long)ld_u(v));
}

static void mr_filelog(mr_ctx *c, const sw_metrics *m)
{
    char num[64];
    mr_family(c, "spillway_filelog_files_watched", "gauge", "Files the filelog receiver has open.");
    mr_printf(c, "spillway_filelog_files_watched %lld\n", (long long)ld_i(&m->fl_files_watched));
    mr_counter(c, "spillway_filelog_read_bytes_total", "Bytes read from log files.", &m->fl_bytes_read);
    mr_counter(c, "spillway_filelog_read_lines_total", "Lines read from log files.", &m->fl_lines_read);
    mr_counter(c, "spillway_filelog_records_total", "Log records handed to the pipeline.", &m->fl_records);
    mr_counter(c, "spillway_filelog_parse_errors_total",
               "Malformed lines, kept as raw text with a parse-error attribute.", &m->fl_parse_errors);
    mr_counter(c, "spillway_filelog_truncated_records_total", "Records cut at max_record_size.",
               &m->fl_truncated_records);
    mr_counter(c, "spillway_filelog_rotations_total", "Files rotated by rename.", &m->fl_rotations);
    mr_counter(c, "spillway_filelog_truncations_total", "Files truncated in place (copytruncate).",
               &m->fl_truncations);
    mr_counter(c, "spillway_filelog_position_saves_total", "Position files written.",
               &m->fl_position_saves);
    mr_fmt_double(num, sizeof num, (double)ld_i(&m->fl_save_lag_ns) / 1e9);
    mr_family(c, "spillway_filelog_position_save_lag_seconds", "gauge",
              "At the last save: time since the first position update it saved.");
    mr_printf(c, "spillway_filelog_position_save_lag_seconds %s\n", num);
    mr_counter(c, "spillway_filelog_checkpoint_fallbacks_total",
               "Corrupt position generations skipped at start (an older one was used).",
               &m->fl_checkpoint_fallbacks);
    mr_counter(c, "spillway_filelog_backpressure_pauses_total",
               "Times reading paused because the pipeline refused data.", &m->fl_backpressure_pauses);
    mr_counter(c, "spillway_filelog_delivery_failures_total",
               "Requests whose records were dropped downstream (position held).", &m->fl_delivery_failures);
}

static void mr_config(mr_ctx *c, const sw_metrics *m)
{
    mr_family(c, "spillway_config_reloads_total", "counter",
              "Configuration reloads on SIGHUP, by result (failure: the old one stays).");
    mr_printf(c, "spillway_config_reloads_total{result=\"success\"} %llu\n",
              (unsigned long long)ld_u(&m->config_reloads[0]));
    mr_printf(c, "spillway_config_reloads_total{result=\"failure\"} %llu\n",
              (unsigned long long)ld_u(&m->config_reloads[1]));
}

int metrics_render(const sw_metrics *m, buf *out)
{
    mr_ctx c = {.out = out, .rc = 0};
    mr_receiver(&c, m);
    mr_cardinality(&c, m);
    mr_queue(&c, m);
    mr_dlq(&c, m);
    mr_exporter(&c, m);
    mr_filelog(&c, m);
    mr_config(&c, m);
    mr_latency(&c, m);
    mr_process(&c, m);
    mr_build_info(&c);
    return c.rc;
}
