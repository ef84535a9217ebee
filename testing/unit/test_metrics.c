/* test_metrics.c — registry counting and Prometheus text rendering. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/cfg_reload_metrics.h"
#include "dlq/dlq_metrics.h"
#include "exporters/otlp/exp_metrics.h"
#include "processors/card_metrics.h"
#include "queue/apq_metrics.h"
#include "receivers/filelog/fl_metrics.h"
#include "receivers/otlp/rcv_metrics.h"
#include "runtime/buf.h"
#include "runtime/clock.h"
#include "runtime/err.h"
#include "runtime/metrics.h"
#include "runtime/procstat.h"
#include "testing/lib/th.h"
#include "testing/lib/th_page.h"


/* A registry with every component's families, registered in the order
 * cmd/spillway.c registers them. */
static sw_metrics *metrics_all(void)
{
    sw_metrics *m = metrics_new();
    if (!m) return NULL;
    if (!rcv_http_metrics_get(m) || !rcv_grpc_metrics_get(m) || !card_metrics_get(m) ||
        !apq_metrics_get(m) || !dlq_metrics_get(m) || !exp_metrics_get(m) ||
        !fl_metrics_get(m) || !cfg_reload_metrics_get(m)) {
        metrics_free(m);
        return NULL;
    }
    return m;
}

/* Value of the sample whose line starts with "prefix " (e.g. a name with
 * labels); -1 if absent. */
static double sample(const char *page, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = page; (p = strstr(p, prefix)) != NULL; p++) {
        if ((p == page || p[-1] == '\n') && p[n] == ' ') return strtod(p + n + 1, NULL);
    }
    return -1;
}

static void t_counters_exact_lines(void)
{
    sw_metrics *m = metrics_all();
    TH_ASSERT(m);
    metrics_add(&rcv_http_metrics_get(m)->rcv_requests[SIG_TRACES][200], 3);
    metrics_add(&rcv_http_metrics_get(m)->rcv_requests[SIG_LOGS][metrics_code_index(429)], 1);
    metrics_add(&rcv_http_metrics_get(m)->rcv_items[SIG_METRICS], 42);
    metrics_add(&rcv_http_metrics_get(m)->rcv_refused_items[SIG_TRACES][RCV_REFUSE_QUEUE_FULL], 7);
    metrics_add(&rcv_http_metrics_get(m)->rcv_bytes[SIG_TRACES], 31000);
    metrics_add(&rcv_grpc_metrics_get(m)->rcv_grpc_requests[SIG_LOGS][8], 2);
    metrics_add(&rcv_grpc_metrics_get(m)->rcv_grpc_items[SIG_LOGS], 11);
    metrics_add(&rcv_grpc_metrics_get(m)->rcv_grpc_refused_items[SIG_LOGS][RCV_REFUSE_TOO_LARGE], 5);
    metrics_add(&exp_metrics_get(m)->exp_requests[SIG_TRACES][metrics_code_index(-1)], 2);
    metrics_add(&exp_metrics_get(m)->exp_requests[SIG_TRACES][503], 5);
    metrics_add(&exp_metrics_get(m)->exp_items[SIG_LOGS][EXP_RESULT_REJECTED], 9);
    metrics_add(&exp_metrics_get(m)->exp_retries, 4);
    metrics_add(&exp_metrics_get(m)->exp_partial_rejected[SIG_METRICS], 6);
    metrics_gauge_add(&exp_metrics_get(m)->exp_in_flight, 2);
    metrics_gauge_set(&exp_metrics_get(m)->exp_circuit_state, 2);
    char *p = th_metrics_page(m);
    TH_ASSERT(p);
    TH_ASSERT(th_has_line(p, "spillway_receiver_requests_total{signal=\"traces\",code=\"200\",transport=\"http\"} 3"));
    TH_ASSERT(th_has_line(p, "spillway_receiver_requests_total{signal=\"logs\",code=\"429\",transport=\"http\"} 1"));
    TH_ASSERT(!strstr(p, "spillway_receiver_requests_total{signal=\"metrics\""));
    TH_ASSERT(th_has_line(p, "spillway_receiver_items_total{signal=\"metrics\",transport=\"http\"} 42"));
    TH_ASSERT(th_has_line(p, "spillway_receiver_items_total{signal=\"traces\",transport=\"http\"} 0"));
    TH_ASSERT(th_has_line(p, "spillway_receiver_refused_items_total{signal=\"traces\",reason=\"queue_full\",transport=\"http\"} 7"));
    TH_ASSERT(th_has_line(p, "spillway_receiver_refused_items_total{signal=\"logs\",reason=\"shutdown\",transport=\"http\"} 0"));
    TH_ASSERT(th_has_line(p, "spillway_receiver_bytes_total{signal=\"traces\",transport=\"http\"} 31000"));
    TH_ASSERT(th_has_line(p, "spillway_receiver_requests_total{signal=\"logs\",code=\"RESOURCE_EXHAUSTED\",transport=\"grpc\"} 2"));
    TH_ASSERT(!strstr(p, "code=\"OK\",transport=\"grpc\""));
    TH_ASSERT(th_has_line(p, "spillway_receiver_items_total{signal=\"logs\",transport=\"grpc\"} 11"));
    TH_ASSERT(th_has_line(p, "spillway_receiver_refused_items_total{signal=\"logs\",reason=\"too_large\",transport=\"grpc\"} 5"));
    TH_ASSERT(th_has_line(p, "spillway_receiver_bytes_total{signal=\"traces\",transport=\"grpc\"} 0"));
    TH_ASSERT(th_has_line(p, "spillway_exporter_requests_total{signal=\"traces\",code=\"error\"} 2"));
    TH_ASSERT(th_has_line(p, "spillway_exporter_requests_total{signal=\"traces\",code=\"503\"} 5"));
    TH_ASSERT(th_has_line(p, "spillway_exporter_items_total{signal=\"logs\",result=\"rejected\"} 9"));
    TH_ASSERT(th_has_line(p, "spillway_exporter_items_total{signal=\"traces\",result=\"sent\"} 0"));
    TH_ASSERT(th_has_line(p, "spillway_exporter_retries_total 4"));
    TH_ASSERT(th_has_line(p, "spillway_exporter_partial_rejected_items_total{signal=\"metrics\"} 6"));
    TH_ASSERT(th_has_line(p, "spillway_exporter_in_flight_requests 2"));
    TH_ASSERT(th_has_line(p, "spillway_exporter_circuit_state 2"));
    free(p);
    metrics_free(m);
}

static void t_queue_and_fill(void)
{
    sw_metrics *m = metrics_all();
    TH_ASSERT(m);
    atomic_store(&apq_metrics_get(m)->queue_max_bytes, 1000);
    metrics_gauge_add(&apq_metrics_get(m)->queue_bytes[CLASS_CRITICAL], 100);
    metrics_gauge_add(&apq_metrics_get(m)->queue_bytes[CLASS_NORMAL], 150);
    metrics_gauge_add(&apq_metrics_get(m)->queue_items[CLASS_NORMAL], 3);
    metrics_add(&apq_metrics_get(m)->queue_dequeued[CLASS_HIGH], 11);
    metrics_add(&apq_metrics_get(m)->queue_spilled[CLASS_CRITICAL], 12);
    char *p = th_metrics_page(m);
    TH_ASSERT(p);
    TH_ASSERT(th_has_line(p, "spillway_queue_fill_ratio 0.25"));
    TH_ASSERT(th_has_line(p, "spillway_queue_bytes{class=\"critical\"} 100"));
    TH_ASSERT(th_has_line(p, "spillway_queue_bytes{class=\"normal\"} 150"));
    TH_ASSERT(th_has_line(p, "spillway_queue_items{class=\"normal\"} 3"));
    TH_ASSERT(th_has_line(p, "spillway_queue_items{class=\"high\"} 0"));
    TH_ASSERT(th_has_line(p, "spillway_queue_dequeued_total{class=\"high\"} 11"));
    TH_ASSERT(th_has_line(p, "spillway_queue_spilled_total{class=\"critical\"} 12"));
    TH_ASSERT(th_has_line(p, "spillway_queue_max_bytes 1000"));
    free(p);
    metrics_free(m);
}

static void t_fill_ratio_no_max(void)
{
    sw_metrics *m = metrics_all();
    TH_ASSERT(m);
    metrics_gauge_add(&apq_metrics_get(m)->queue_bytes[CLASS_HIGH], 10);
    char *p = th_metrics_page(m);
    TH_ASSERT(p);
    TH_ASSERT(th_has_line(p, "spillway_queue_fill_ratio 0"));
    free(p);
    metrics_free(m);
}

static void t_dlq_and_cardinality(void)
{
    sw_metrics *m = metrics_all();
    TH_ASSERT(m);
    metrics_gauge_set(&card_metrics_get(m)->cl_keys_used, 1234);
    metrics_add(&card_metrics_get(m)->cl_aggregated_samples, 5);
    metrics_add(&card_metrics_get(m)->cl_dropped_samples, 6);
    metrics_gauge_set(&dlq_metrics_get(m)->dlq_bytes, 4096);
    metrics_gauge_set(&dlq_metrics_get(m)->dlq_segments, 2);
    metrics_add(&dlq_metrics_get(m)->dlq_written_bytes, 8192);
    metrics_add(&dlq_metrics_get(m)->dlq_replayed_bytes, 100);
    metrics_add(&dlq_metrics_get(m)->dlq_corrupt_segments, 1);
    metrics_add(&dlq_metrics_get(m)->dlq_write_errors, 3);
    metrics_gauge_set(&dlq_metrics_get(m)->dlq_available, 1);
    metrics_gauge_set(&dlq_metrics_get(m)->dlq_max_bytes, 4294967296LL);
    metrics_gauge_set(&card_metrics_get(m)->cl_max_keys, 65536);
    metrics_add(&dlq_metrics_get(m)->dlq_written_items[CLASS_HIGH], 70);
    metrics_add(&dlq_metrics_get(m)->dlq_replayed_items[CLASS_NORMAL], 9);
    char *p = th_metrics_page(m);
    TH_ASSERT(p);
    TH_ASSERT(th_has_line(p, "spillway_cl_keys_used 1234"));
    TH_ASSERT(th_has_line(p, "spillway_cl_aggregated_samples_total 5"));
    TH_ASSERT(th_has_line(p, "spillway_cl_dropped_samples_total 6"));
    TH_ASSERT(th_has_line(p, "spillway_dlq_bytes 4096"));
    TH_ASSERT(th_has_line(p, "spillway_dlq_segments 2"));
    TH_ASSERT(th_has_line(p, "spillway_dlq_oldest_age_seconds 0"));
    TH_ASSERT(th_has_line(p, "spillway_dlq_written_bytes_total 8192"));
    TH_ASSERT(th_has_line(p, "spillway_dlq_replayed_bytes_total 100"));
    TH_ASSERT(th_has_line(p, "spillway_dlq_corrupt_segments_total 1"));
    TH_ASSERT(th_has_line(p, "spillway_dlq_write_errors_total 3"));
    TH_ASSERT(th_has_line(p, "spillway_dlq_available 1"));
    TH_ASSERT(th_has_line(p, "spillway_dlq_max_bytes 4294967296"));
    TH_ASSERT(th_has_line(p, "spillway_cl_max_keys 65536"));
    TH_ASSERT(th_has_line(p, "spillway_dlq_written_items_total{class=\"high\"} 70"));
    TH_ASSERT(th_has_line(p, "spillway_dlq_written_items_total{class=\"critical\"} 0"));
    TH_ASSERT(th_has_line(p, "spillway_dlq_replayed_items_total{class=\"normal\"} 9"));
    free(p);
    metrics_gauge_set(&dlq_metrics_get(m)->dlq_oldest_wall_ns, clock_wall_ns() - 90LL * 1000000000LL);
    p = th_metrics_page(m);
    TH_ASSERT(p);
    double age = sample(p, "spillway_dlq_oldest_age_seconds");
    TH_ASSERT_MSG(age >= 90 && age < 90 + 3600, "age %g", age);
    free(p);
    metrics_free(m);
}

static void t_histogram(void)
{
    sw_metrics *m = metrics_all();
    TH_ASSERT(m);
    metrics_hist_observe(&exp_metrics_get(m)->latency, 50000);         /* 50 µs  -> le=0.0001 */
    metrics_hist_observe(&exp_metrics_get(m)->latency, 100000);        /* exactly on a bound: inclusive */
    metrics_hist_observe(&exp_metrics_get(m)->latency, 3000000);       /* 3 ms   -> le=0.005 */
    metrics_hist_observe(&exp_metrics_get(m)->latency, 3000000);
    metrics_hist_observe(&exp_metrics_get(m)->latency, 20000000000LL); /* 20 s   -> +Inf only */
    metrics_hist_observe(&exp_metrics_get(m)->latency, -5);            /* clock skew: counted as 0 */
    char *p = th_metrics_page(m);
    TH_ASSERT(p);
    TH_ASSERT(th_has_line(p, "# TYPE spillway_pipeline_latency_seconds histogram"));
    TH_ASSERT(th_has_line(p, "spillway_pipeline_latency_seconds_bucket{le=\"0.0001\"} 3"));
    TH_ASSERT(th_has_line(p, "spillway_pipeline_latency_seconds_bucket{le=\"0.00025\"} 3"));
    TH_ASSERT(th_has_line(p, "spillway_pipeline_latency_seconds_bucket{le=\"0.0025\"} 3"));
    TH_ASSERT(th_has_line(p, "spillway_pipeline_latency_seconds_bucket{le=\"0.005\"} 5"));
    TH_ASSERT(th_has_line(p, "spillway_pipeline_latency_seconds_bucket{le=\"10\"} 5"));
    TH_ASSERT(th_has_line(p, "spillway_pipeline_latency_seconds_bucket{le=\"+Inf\"} 6"));
    TH_ASSERT(th_has_line(p, "spillway_pipeline_latency_seconds_count 6"));
    TH_ASSERT(th_has_line(p, "spillway_pipeline_latency_seconds_sum 20.00615"));
    /* Cumulative: every bucket >= the one before, in bound order. */
    double prev = 0;
    char key[128];
    for (int i = 0; i < EXP_LAT_BUCKETS; i++) {
        snprintf(key, sizeof key, "spillway_pipeline_latency_seconds_bucket{le=\"%g\"}",
                 (double)exp_latency_bounds_ns[i] / 1e9);
        double v = sample(p, key);
        TH_ASSERT_MSG(v >= prev, "bucket %s = %g < %g", key, v, prev);
        prev = v;
        if (i) TH_ASSERT(exp_latency_bounds_ns[i] > exp_latency_bounds_ns[i - 1]);
    }
    TH_ASSERT(exp_latency_bounds_ns[0] <= 100000 &&
              exp_latency_bounds_ns[EXP_LAT_BUCKETS - 1] >= 10000000000LL);
    free(p);
    metrics_free(m);
}

static const char *const families[][2] = {
    {"spillway_receiver_requests_total", "counter"},
    {"spillway_receiver_items_total", "counter"},
    {"spillway_receiver_refused_items_total", "counter"},
    {"spillway_receiver_bytes_total", "counter"},
    {"spillway_cl_keys_used", "gauge"},
    {"spillway_cl_aggregated_samples_total", "counter"},
    {"spillway_cl_dropped_samples_total", "counter"},
    {"spillway_queue_fill_ratio", "gauge"},
    {"spillway_queue_items", "gauge"},
    {"spillway_queue_bytes", "gauge"},
    {"spillway_queue_dequeued_total", "counter"},
    {"spillway_queue_spilled_total", "counter"},
    {"spillway_dlq_bytes", "gauge"},
    {"spillway_dlq_segments", "gauge"},
    {"spillway_dlq_oldest_age_seconds", "gauge"},
    {"spillway_dlq_written_bytes_total", "counter"},
    {"spillway_dlq_replayed_bytes_total", "counter"},
    {"spillway_dlq_corrupt_segments_total", "counter"},
    {"spillway_dlq_write_errors_total", "counter"},
    {"spillway_dlq_available", "gauge"},
    {"spillway_dlq_max_bytes", "gauge"},
    {"spillway_dlq_written_items_total", "counter"},
    {"spillway_dlq_replayed_items_total", "counter"},
    {"spillway_queue_max_bytes", "gauge"},
    {"spillway_cl_max_keys", "gauge"},
    {"spillway_exporter_requests_total", "counter"},
    {"spillway_exporter_items_total", "counter"},
    {"spillway_exporter_retries_total", "counter"},
    {"spillway_exporter_partial_rejected_items_total", "counter"},
    {"spillway_exporter_in_flight_requests", "gauge"},
    {"spillway_exporter_circuit_state", "gauge"},
    {"spillway_pipeline_latency_seconds", "histogram"},
    {"spillway_cl_processing_seconds", "histogram"},
    {"process_resident_memory_bytes", "gauge"},
    {"process_virtual_memory_bytes", "gauge"},
    {"process_cpu_seconds_total", "counter"},
    {"process_start_time_seconds", "gauge"},
    {"process_open_fds", "gauge"},
    {"spillway_build_info", "gauge"},
};

static void t_help_and_type_everywhere(void)
{
    sw_metrics *m = metrics_all();
    TH_ASSERT(m);
    char *p = th_metrics_page(m); /* nothing counted: families still announced */
    TH_ASSERT(p);
    char line[256];
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
        snprintf(line, sizeof line, "# TYPE %s %s", families[i][0], families[i][1]);
        TH_ASSERT_MSG(th_has_line(p, line), "missing \"%s\"", line);
        snprintf(line, sizeof line, "# HELP %s ", families[i][0]);
        TH_ASSERT_MSG(strstr(p, line) != NULL, "missing \"%s\"", line);
    }
    /* Every sample line belongs to the family announced just before it. */
    TH_ASSERT(p[strlen(p) - 1] == '\n');
    char fam[128] = "";
    for (char *ln = p, *nl; *ln; ln = nl + 1) {
        nl = strchr(ln, '\n');
        TH_ASSERT(nl && nl > ln);
        if (strncmp(ln, "# TYPE ", 7) == 0) {
            size_t n = strcspn(ln + 7, " ");
            TH_ASSERT(n < sizeof fam);
            memcpy(fam, ln + 7, n);
            fam[n] = '\0';
        } else if (ln[0] != '#') {
            TH_ASSERT_MSG(fam[0] && strncmp(ln, fam, strlen(fam)) == 0,
                          "sample outside its family: %.60s", ln);
        }
    }
    free(p);
    metrics_free(m);
}

/* The page of a registry holding every component's families, as main
 * builds it: names, types and label names, in page order. Any change here
 * is a change of spillway's exposition (docs/metrics.md). */
static const char *const layout[][3] = {
    {"spillway_receiver_requests_total", "counter", "signal,code,transport"},
    {"spillway_receiver_items_total", "counter", "signal,transport"},
    {"spillway_receiver_refused_items_total", "counter", "signal,reason,transport"},
    {"spillway_receiver_bytes_total", "counter", "signal,transport"},
    {"spillway_cl_keys_used", "gauge", ""},
    {"spillway_cl_aggregated_samples_total", "counter", ""},
    {"spillway_cl_dropped_samples_total", "counter", ""},
    {"spillway_cl_max_keys", "gauge", ""},
    {"spillway_cl_processing_seconds", "histogram", "le"},
    {"spillway_queue_fill_ratio", "gauge", ""},
    {"spillway_queue_items", "gauge", "class"},
    {"spillway_queue_bytes", "gauge", "class"},
    {"spillway_queue_dequeued_total", "counter", "class"},
    {"spillway_queue_spilled_total", "counter", "class"},
    {"spillway_queue_max_bytes", "gauge", ""},
    {"spillway_dlq_bytes", "gauge", ""},
    {"spillway_dlq_segments", "gauge", ""},
    {"spillway_dlq_oldest_age_seconds", "gauge", ""},
    {"spillway_dlq_written_bytes_total", "counter", ""},
    {"spillway_dlq_replayed_bytes_total", "counter", ""},
    {"spillway_dlq_corrupt_segments_total", "counter", ""},
    {"spillway_dlq_write_errors_total", "counter", ""},
    {"spillway_dlq_available", "gauge", ""},
    {"spillway_dlq_max_bytes", "gauge", ""},
    {"spillway_dlq_written_items_total", "counter", "class"},
    {"spillway_dlq_replayed_items_total", "counter", "class"},
    {"spillway_exporter_requests_total", "counter", "signal,code"},
    {"spillway_exporter_items_total", "counter", "signal,result"},
    {"spillway_exporter_retries_total", "counter", ""},
    {"spillway_exporter_partial_rejected_items_total", "counter", "signal"},
    {"spillway_exporter_in_flight_requests", "gauge", ""},
    {"spillway_exporter_circuit_state", "gauge", ""},
    {"spillway_exporter_dlq_failed_items_total", "counter", ""},
    {"spillway_pipeline_latency_seconds", "histogram", "le"},
    {"spillway_filelog_files_watched", "gauge", ""},
    {"spillway_filelog_read_bytes_total", "counter", ""},
    {"spillway_filelog_read_lines_total", "counter", ""},
    {"spillway_filelog_records_total", "counter", ""},
    {"spillway_filelog_parse_errors_total", "counter", ""},
    {"spillway_filelog_truncated_records_total", "counter", ""},
    {"spillway_filelog_rotations_total", "counter", ""},
    {"spillway_filelog_truncations_total", "counter", ""},
    {"spillway_filelog_position_saves_total", "counter", ""},
    {"spillway_filelog_position_save_lag_seconds", "gauge", ""},
    {"spillway_filelog_checkpoint_fallbacks_total", "counter", ""},
    {"spillway_filelog_backpressure_pauses_total", "counter", ""},
    {"spillway_filelog_delivery_failures_total", "counter", ""},
    {"spillway_config_reloads_total", "counter", "result"},
};

/* Label names of a sample line ("a,b"), into dst. */
static void label_names(const char *ln, const char *end, char *dst, size_t cap)
{
    size_t n = 0;
    dst[0] = '\0';
    const char *p = memchr(ln, '{', (size_t)(end - ln));
    while (p && p < end && *p != '}') {
        const char *k = p + 1, *eq = memchr(k, '=', (size_t)(end - k));
        if (!eq) break;
        n += (size_t)snprintf(dst + n, cap - n, "%s%.*s", n ? "," : "", (int)(eq - k), k);
        p = eq + 2;
        while (p < end && *p != '"') p += (*p == '\\') ? 2 : 1;
        p++; /* past the closing quote: ',' or '}' */
    }
}

static void t_page_layout(void)
{
    sw_metrics *m = metrics_all();
    TH_ASSERT(m);
    /* one sample in each sparse family, so its labels show */
    metrics_add(&rcv_http_metrics_get(m)->rcv_requests[SIG_LOGS][200], 1);
    metrics_add(&rcv_grpc_metrics_get(m)->rcv_grpc_requests[SIG_LOGS][0], 1);
    metrics_add(&exp_metrics_get(m)->exp_requests[SIG_LOGS][200], 1);
    char *p = th_metrics_page(m);
    TH_ASSERT(p);
    size_t nf = 0, n = sizeof layout / sizeof layout[0];
    char labels[128] = "", fam[128] = "";
    int labelled = 0;
    for (char *ln = p, *nl; *ln; ln = nl + 1) {
        nl = strchr(ln, '\n');
        TH_ASSERT(nl);
        if (strncmp(ln, "# TYPE ", 7) == 0) {
            if (nf && nf <= n) TH_ASSERT_EQ_STR(labels, layout[nf - 1][2]);
            snprintf(fam, sizeof fam, "%.*s", (int)(nl - ln - 7), ln + 7);
            if (strncmp(fam, "process_", 8) == 0 || strncmp(fam, "spillway_build_info", 19) == 0)
                break;
            TH_ASSERT_MSG(nf < n, "family beyond the list: %s", fam);
            char want[160];
            snprintf(want, sizeof want, "%s %s", layout[nf][0], layout[nf][1]);
            TH_ASSERT_EQ_STR(fam, want);
            nf++;
            labelled = 0;
            labels[0] = '\0';
        } else if (ln[0] != '#' && !labelled) {
            label_names(ln, nl, labels, sizeof labels);
            labelled = 1;
        }
    }
    TH_ASSERT_EQ_INT(nf, n);
    /* and each family once */
    for (size_t i = 0; i < n; i++) {
        char line[160];
        snprintf(line, sizeof line, "# TYPE %s ", layout[i][0]);
        char *first = strstr(p, line);
        TH_ASSERT(first && !strstr(first + 1, line));
    }
    free(p);
    metrics_free(m);
}

static void t_process_and_build_info(void)
{
    sw_metrics *m = metrics_all();
    TH_ASSERT(m);
    char *p = th_metrics_page(m);
    TH_ASSERT(p);
    TH_ASSERT(sample(p, "process_resident_memory_bytes") > 0);
    TH_ASSERT(sample(p, "process_virtual_memory_bytes") > 0);
    TH_ASSERT(sample(p, "process_cpu_seconds_total") >= 0);
    TH_ASSERT(sample(p, "process_start_time_seconds") > 1.5e9);
    TH_ASSERT(sample(p, "process_open_fds") >= 0);
    char line[256];
    snprintf(line, sizeof line, "spillway_build_info{version=\"%s\",revision=\"%s\"} 1",
             SW_VERSION, SW_GITREV);
    TH_ASSERT_MSG(th_has_line(p, line), "missing \"%s\"", line);
    free(p);
    metrics_free(m);
}

static void t_procstat(void)
{
    procstat a, b;
    TH_ASSERT_EQ_INT(procstat_read(&a), 0);
    TH_ASSERT(a.rss_bytes > 0);
    TH_ASSERT(a.vsize_bytes >= a.rss_bytes);
    TH_ASSERT(a.peak_rss_bytes >= a.rss_bytes / 2);
    TH_ASSERT(a.threads >= 1);
    TH_ASSERT(a.open_fds >= 0);
    TH_ASSERT(a.cpu_user_s >= 0 && a.cpu_system_s >= 0);
    /* One more descriptor is counted exactly once. */
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    TH_ASSERT(fd >= 0);
    int rc = procstat_read(&b);
    close(fd);
    TH_ASSERT_EQ_INT(rc, 0);
    TH_ASSERT_EQ_INT(b.open_fds, a.open_fds + 1);
    pid_t parent = getppid();
    if (parent > 0) {
        TH_ASSERT_EQ_INT(procstat_read_pid(parent, &b), 0);
        TH_ASSERT(b.threads >= 1);
    }
    /* A PID above pid_max never exists. */
    TH_ASSERT_EQ_INT(procstat_read_pid((pid_t)0x7ffffff0, &b), SW_ENOTFOUND);
}

static void t_render_cap(void)
{
    sw_metrics *m = metrics_all();
    TH_ASSERT(m);
    buf b;
    buf_init(&b, 100);
    TH_ASSERT_EQ_INT(metrics_render(m, &b), SW_ETOOBIG);
    TH_ASSERT(b.len <= 100);
    buf_destroy(&b);
    metrics_free(m);
}

#define ADDS 1000000

static void *adder(void *arg)
{
    sw_metrics *m = arg;
    for (int i = 0; i < ADDS; i++) {
        metrics_add(&rcv_http_metrics_get(m)->rcv_requests[SIG_TRACES][200], 1);
        metrics_gauge_add(&apq_metrics_get(m)->queue_bytes[CLASS_HIGH], 1);
    }
    return NULL;
}

static void t_concurrent_adds(void)
{
    sw_metrics *m = metrics_all();
    TH_ASSERT(m);
    pthread_t th[2];
    TH_ASSERT_EQ_INT(pthread_create(&th[0], NULL, adder, m), 0);
    TH_ASSERT_EQ_INT(pthread_create(&th[1], NULL, adder, m), 0);
    pthread_join(th[0], NULL);
    pthread_join(th[1], NULL);
    char *p = th_metrics_page(m);
    TH_ASSERT(p);
    TH_ASSERT(th_has_line(p, "spillway_receiver_requests_total{signal=\"traces\",code=\"200\",transport=\"http\"} 2000000"));
    TH_ASSERT(th_has_line(p, "spillway_queue_bytes{class=\"high\"} 2000000"));
    free(p);
    metrics_free(m);
}

static void t_names(void)
{
    TH_ASSERT_EQ_STR(rcv_refuse_reason_name(RCV_REFUSE_TOO_LARGE), "too_large");
    TH_ASSERT_EQ_STR(exp_result_name(EXP_RESULT_DROPPED), "dropped");
    TH_ASSERT_EQ_INT(metrics_code_index(600), 0);
    TH_ASSERT_EQ_INT(metrics_code_index(204), 204);
    metrics_free(NULL);
}

int main(void)
{
    TH_RUN(t_counters_exact_lines);
    TH_RUN(t_queue_and_fill);
    TH_RUN(t_fill_ratio_no_max);
    TH_RUN(t_dlq_and_cardinality);
    TH_RUN(t_histogram);
    TH_RUN(t_help_and_type_everywhere);
    TH_RUN(t_page_layout);
    TH_RUN(t_process_and_build_info);
    TH_RUN(t_procstat);
    TH_RUN(t_render_cap);
    TH_RUN(t_concurrent_adds);
    TH_RUN(t_names);
    return th_done();
}
