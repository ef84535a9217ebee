/* mock_store.c — the mock's counters and stored content lines. See mock.h.
 *
 * Lines are kept in arrival order up to `keep` per signal; later lines are
 * not stored (the counters still count them). Response codes are counted
 * in a table indexed by status (100..599).
 */
#include "testing/mockup/mock.h"

#include <inttypes.h>
#include <stdlib.h>

#include "runtime/err.h"

/* Cap on the stored text of one signal and on saved headers. */
#define STORE_TEXT_MAX ((size_t)1 << 31)
#define STORE_HEADERS_MAX (256u * 1024u)

struct mock_store {
    size_t keep;
    uint64_t requests[SIG_COUNT];
    uint64_t accepted[SIG_COUNT];
    uint64_t items[SIG_COUNT];
    uint64_t bytes[SIG_COUNT];    /* request bodies as received */
    uint64_t pb_bytes[SIG_COUNT]; /* the same after decompression/conversion */
    uint64_t kept[SIG_COUNT];
    uint64_t decode_errors;
    uint64_t responses[600];
    buf lines[SIG_COUNT];
    buf headers;
    uint64_t outage_requests;
    size_t n_outage_secs; /* used entries of outage_secs */
    struct { int64_t sec; uint64_t n; } outage_secs[MOCK_OUTAGE_SECONDS_MAX];
};

mock_store *mock_store_new(size_t keep)
{
    mock_store *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->keep = keep;
    for (int i = 0; i < SIG_COUNT; i++) buf_init(&s->lines[i], STORE_TEXT_MAX);
    buf_init(&s->headers, STORE_HEADERS_MAX);
    return s;
}

void mock_store_free(mock_store *s)
{
    if (!s) return;
    for (int i = 0; i < SIG_COUNT; i++) buf_destroy(&s->lines[i]);
    buf_destroy(&s->headers);
    free(s);
}

void mock_store_reset(mock_store *s)
{
    for (int i = 0; i < SIG_COUNT; i++) {
        buf_destroy(&s->lines[i]); /* give the memory back, not just len */
        s->requests[i] = s->accepted[i] = s->items[i] = s->bytes[i] = s->pb_bytes[i] = s->kept[i] = 0;
    }
    buf_reset(&s->headers);
    s->decode_errors = 0;
    s->outage_requests = 0;
    s->n_outage_secs = 0;
    for (size_t i = 0; i < sizeof s->responses / sizeof s->responses[0]; i++)
        s->responses[i] = 0;
}

void mock_store_count_request(mock_store *s, sw_signal sig) { s->requests[sig]++; }

void mock_store_count_accepted(mock_store *s, sw_signal sig, uint64_t items, size_t bytes,
                               size_t pb_bytes)
{
    s->accepted[sig]++;
    s->items[sig] += items;
    s->bytes[sig] += bytes;
    s->pb_bytes[sig] += pb_bytes;
}

void mock_store_count_outage_request(mock_store *s, int64_t sec)
{
    s->outage_requests++;
    size_t n = s->n_outage_secs;
    if (n && s->outage_secs[n - 1].sec == sec) {
        s->outage_secs[n - 1].n++;
    } else if (n < MOCK_OUTAGE_SECONDS_MAX) {
        s->outage_secs[n].sec = sec;
        s->outage_secs[n].n = 1;
        s->n_outage_secs++;
    }
}

void mock_store_count_decode_error(mock_store *s) { s->decode_errors++; }

void mock_store_count_response(mock_store *s, int code)
{
    if (code >= 100 && code < 600) s->responses[code]++;
}

size_t mock_store_room(const mock_store *s, sw_signal sig)
{
    return s->kept[sig] >= s->keep ? 0 : s->keep - (size_t)s->kept[sig];
}

buf *mock_store_lines(mock_store *s, sw_signal sig) { return &s->lines[sig]; }

void mock_store_add_kept(mock_store *s, sw_signal sig, size_t n) { s->kept[sig] += n; }

buf *mock_store_headers(mock_store *s) { return &s->headers; }

/* "name":{"traces":a,"metrics":b,"logs":c} */
static int put_per_signal(buf *out, const char *name, const uint64_t v[SIG_COUNT])
{
    return buf_printf(out, "\"%s\":{\"traces\":%" PRIu64 ",\"metrics\":%" PRIu64
                      ",\"logs\":%" PRIu64 "},",
                      name, v[SIG_TRACES], v[SIG_METRICS], v[SIG_LOGS]);
}

static int put_responses(const mock_store *s, buf *out)
{
    int rc = buf_append_str(out, "\"responses\":{");
    const char *sep = "";
    for (int c = 100; rc == 0 && c < 600; c++) {
        if (!s->responses[c]) continue;
        rc = buf_printf(out, "%s\"%d\":%" PRIu64, sep, c, s->responses[c]);
        sep = ",";
    }
    if (rc == 0) rc = buf_append_str(out, "},");
    return rc;
}

/* "outage":{"active":..,"mode":..,"remaining_ms":..,"uptime_ms":..,
 * "started":..,"requests":..,"per_second":{"SEC":N,...}}, */
static int put_outage(const mock_store *s, const mock_outage_status *os, buf *out)
{
    int rc = buf_printf(out,
                        "\"outage\":{\"active\":%s,\"mode\":\"%s\",\"remaining_ms\":%" PRId64
                        ",\"uptime_ms\":%" PRId64 ",\"started\":%" PRIu64
                        ",\"requests\":%" PRIu64 ",\"per_second\":{",
                        os->mode ? "true" : "false", mock_outage_mode_name(os->mode),
                        os->remaining_ms, os->uptime_ms, os->started, s->outage_requests);
    for (size_t i = 0; rc == 0 && i < s->n_outage_secs; i++)
        rc = buf_printf(out, "%s\"%" PRId64 "\":%" PRIu64, i ? "," : "",
                        s->outage_secs[i].sec, s->outage_secs[i].n);
    if (rc == 0) rc = buf_append_str(out, "}},");
    return rc;
}

int mock_store_stats_json(const mock_store *s, const mock_outage_status *os, buf *out)
{
    int rc = buf_append_str(out, "{");
    if (rc == 0) rc = put_per_signal(out, "requests", s->requests);
    if (rc == 0) rc = put_per_signal(out, "accepted", s->accepted);
    if (rc == 0) rc = put_per_signal(out, "items", s->items);
    if (rc == 0) rc = put_per_signal(out, "bytes", s->bytes);
    if (rc == 0) rc = put_per_signal(out, "pb_bytes", s->pb_bytes);
    if (rc == 0) rc = buf_printf(out, "\"decode_errors\":%" PRIu64 ",", s->decode_errors);
    if (rc == 0) rc = put_responses(s, out);
    if (rc == 0) rc = put_per_signal(out, "kept", s->kept);
    if (rc == 0 && os) rc = put_outage(s, os, out);
    if (rc == 0) out->data[out->len - 1] = '}'; /* replaces the last ',' */
    if (rc == 0) rc = buf_append_str(out, "\n");
    return rc;
}
