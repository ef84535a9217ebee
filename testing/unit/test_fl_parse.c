/* test_fl_parse.c — docker json-file and raw lines, RFC 3339 times and
 * the joining of Docker's 16 KiB pieces (receivers/filelog/fl_parse.h). */
#include <stdlib.h>
#include <string.h>

#include "receivers/filelog/fl_parse.h"
#include "testing/lib/th.h"

static fl_parser *P;

static fl_line parse(const char *s)
{
    fl_line l;
    TH_ASSERT_EQ_INT(fl_parse_docker(P, s, strlen(s), &l), 0);
    return l;
}

static void t_docker_line(void)
{
    fl_line l = parse("{\"log\":\"hello \\\"world\\\"\\n\",\"stream\":\"stderr\","
                      "\"time\":\"2026-12-07T10:17:11.123456789Z\"}");
    TH_ASSERT(l.error == NULL);
    TH_ASSERT_EQ_INT(l.body_len, 13);
    TH_ASSERT(memcmp(l.body, "hello \"world\"", 13) == 0);
    TH_ASSERT_EQ_INT(l.stream, FL_STREAM_STDERR);
    TH_ASSERT_EQ_INT(l.partial, 0);
    TH_ASSERT_EQ_INT(l.time_ns, 1796638631123456789LL);
    l = parse("{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"1970-01-01T00:00:01Z\"}\r");
    TH_ASSERT(l.error == NULL);
    TH_ASSERT_EQ_INT(l.stream, FL_STREAM_STDOUT);
    TH_ASSERT_EQ_INT(l.time_ns, 1000000000LL);
}

static void t_partial_and_empty(void)
{
    fl_line l = parse("{\"log\":\"abc\",\"stream\":\"stdout\",\"time\":\"2020-01-01T00:00:00Z\"}");
    TH_ASSERT(l.error == NULL);
    TH_ASSERT_EQ_INT(l.partial, 1);
    TH_ASSERT_EQ_INT(l.body_len, 3);
    l = parse("{\"log\":\"\\n\",\"stream\":\"stdout\"}");
    TH_ASSERT(l.error == NULL);
    TH_ASSERT_EQ_INT(l.partial, 0);
    TH_ASSERT_EQ_INT(l.body_len, 0);
}

static void t_malformed_kept(void)
{
    static const char *bad[] = {
        "not json at all", "{\"log\":\"x\\n\"", "[1,2]", "{\"stream\":\"stdout\"}",
        "{\"log\":5}", "{\"log\":\"x\\n\",\"stream\":\"sideways\"}",
        "{\"log\":\"x\\n\",\"time\":\"yesterday\"}", "{\"log\":\"x\\n\"} trailing", "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fl_line l = parse(bad[i]);
        TH_ASSERT_MSG(l.error != NULL, "accepted: %s", bad[i]);
        TH_ASSERT_EQ_INT(l.body_len, strlen(bad[i]));
        TH_ASSERT(l.body_len == 0 || memcmp(l.body, bad[i], l.body_len) == 0);
        TH_ASSERT_EQ_INT(l.partial, 0);
    }
}

static void t_raw(void)
{
    fl_line l;
    fl_parse_raw("plain text\r", 11, &l);
    TH_ASSERT_EQ_INT(l.body_len, 10);
    TH_ASSERT(l.error == NULL);
    TH_ASSERT_EQ_INT(l.time_ns, 0);
}

static void t_times(void)
{
    int64_t ns = 0;
    TH_ASSERT_EQ_INT(fl_parse_time("2024-02-29T23:59:59.5+01:00", 27, &ns), 0);
    TH_ASSERT_EQ_INT(ns, 1709247599500000000LL);
    TH_ASSERT_EQ_INT(fl_parse_time("2024-02-29T23:59:59.000000001Z", 30, &ns), 0);
    TH_ASSERT_EQ_INT(ns % 1000000000, 1);
    static const char *bad[] = {
        "2023-02-29T00:00:00Z", "2024-13-01T00:00:00Z", "2024-01-01 00:00:00Z",
        "2024-01-01T00:00:00", "2024-01-01T00:00:00.Z", "2024-01-01T00:00:00.1234567890Z",
        "2024-01-01T24:00:00Z", "2024-01-01T00:00:00+1:00", "1969-12-31T23:59:59Z",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        TH_ASSERT_MSG(fl_parse_time(bad[i], strlen(bad[i]), &ns) != 0, "accepted %s", bad[i]);
}

static void t_join(void)
{
    fl_join j;
    fl_join_init(&j, 10);
    fl_line a = { "abcd", 4, FL_STREAM_STDERR, 7, 1, NULL };
    fl_line b = { "efgh", 4, FL_STREAM_STDOUT, 9, 1, NULL };
    fl_line c = { "ij", 2, FL_STREAM_STDOUT, 11, 0, NULL };
    TH_ASSERT_EQ_INT(fl_join_add(&j, &a), 0);
    TH_ASSERT_EQ_INT(fl_join_add(&j, &b), 0);
    TH_ASSERT_EQ_INT(fl_join_add(&j, &c), 1);
    TH_ASSERT_EQ_INT(j.b.len, 10);
    TH_ASSERT(memcmp(j.b.data, "abcdefghij", 10) == 0);
    TH_ASSERT_EQ_INT(j.truncated, 0);
    TH_ASSERT_EQ_INT(j.stream, FL_STREAM_STDERR);
    TH_ASSERT_EQ_INT(j.time_ns, 7);
    fl_join_reset(&j);
    /* over max: the first 10 bytes, marked */
    TH_ASSERT_EQ_INT(fl_join_add(&j, &a), 0);
    TH_ASSERT_EQ_INT(fl_join_add(&j, &b), 0);
    TH_ASSERT_EQ_INT(fl_join_add(&j, &b), 0);
    TH_ASSERT_EQ_INT(fl_join_add(&j, &c), 1);
    TH_ASSERT_EQ_INT(j.b.len, 10);
    TH_ASSERT_EQ_INT(j.truncated, 1);
    TH_ASSERT(memcmp(j.b.data, "abcdefghef", 10) == 0);
    fl_join_reset(&j);
    TH_ASSERT_EQ_INT(j.truncated, 0);
    TH_ASSERT_EQ_INT(j.active, 0);
    fl_join_destroy(&j);
}

int main(void)
{
    P = fl_parser_new();
    TH_RUN(t_docker_line);
    TH_RUN(t_partial_and_empty);
    TH_RUN(t_malformed_kept);
    TH_RUN(t_raw);
    TH_RUN(t_times);
    TH_RUN(t_join);
    fl_parser_free(P);
    return th_done();
}
