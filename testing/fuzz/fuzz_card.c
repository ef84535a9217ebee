/* fuzz_card.c — the cardinality limiter on arbitrary metrics requests.
 *
 * Input: one byte choosing the table size (16..128 slots, so one request
 * crosses all three bands) and the key_ttl, then an encoded
 * ExportMetricsServiceRequest. As in the receiver, only requests that
 * ow_validate() accepts go in. The request runs three times (new series,
 * then existing ones, then after expiry); every output must validate and
 * unpack (after ow_strip_groups() when it holds unknown groups), and input points = output points + rejected + merged. A second
 * card runs the same requests without the wire fast path: both must
 * decide identically (same keys from bytes and from unpacked structs).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "opentelemetry/proto/collector/metrics/v1/metrics_service.pb-c.h"
#include "processors/card_int.h"
#include "runtime/err.h"
#include "runtime/otlp_wire.h"

static void check(const uint8_t *in, size_t len, uint32_t items, const card_result *r)
{
    const uint8_t *o = r->unchanged ? in : r->out.data;
    size_t olen = r->unchanged ? len : r->out.len;
    uint32_t out_items = 0;
    const char *why = NULL;
    if (ow_validate(SIG_METRICS, o, olen, &out_items, &why) != 0) abort();
    if (out_items != r->points_out) abort();
    if (r->points_in != items) abort();
    if ((uint64_t)r->points_in != r->points_out + r->rejected_points + r->merged_points) abort();
    if (r->unchanged && (r->rejected_points || r->aggregated_points)) abort();
    if (r->rejected_points && !r->message[0]) abort();
    ProtobufCMessage *m = protobuf_c_message_unpack(ow_descriptor(SIG_METRICS), NULL, olen, o);
    if (!m) { /* protobuf-c refuses unknown groups: without them it must unpack */
        buf plain;
        buf_init(&plain, olen + 5 * OW_MAX_DEPTH);
        if (ow_strip_groups(SIG_METRICS, o, olen, &plain) != 0) abort();
        m = protobuf_c_message_unpack(ow_descriptor(SIG_METRICS), NULL, plain.len, plain.data);
        buf_destroy(&plain);
    }
    if (!m) abort();
    if (ow_count_items(SIG_METRICS, m) != out_items) abort();
    protobuf_c_message_free_unpacked(m, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    uint8_t sel = data[0];
    data++;
    size--;
    uint32_t items;
    const char *why = NULL;
    if (ow_validate(SIG_METRICS, data, size, &items, &why) != 0) return 0;
    card_config cfg;
    card_config_default(&cfg);
    cfg.max_keys = 16u << (sel & 3);
    cfg.key_ttl_ns = (sel & 4) ? 1000 : 0;
    cfg.volatile_distinct = (sel & 8) ? 2 : 0;
    card *c = card_new(&cfg, NULL);
    card *slow = card_new(&cfg, NULL);
    if (!c || !slow) abort();
    slow->slow_only = 1;
    int64_t now[3] = {0, 10, 1000000};
    for (int i = 0; i < 3; i++) {
        card_result r, rs;
        int rc = card_process(c, data, size, now[i], &r);
        int rcs = card_process(slow, data, size, now[i], &rs);
        if (rc == 0) check(data, size, items, &r);
        else if (rc != SW_ENOMEM) abort();
        if (rc != rcs || c->t.used != slow->t.used) abort();
        if (rc == 0 && (r.unchanged != rs.unchanged || r.points_out != rs.points_out ||
                        r.rejected_points != rs.rejected_points ||
                        r.aggregated_points != rs.aggregated_points || r.out.len != rs.out.len ||
                        (r.out.len && memcmp(r.out.data, rs.out.data, r.out.len) != 0)))
            abort();
        card_result_destroy(&r);
        card_result_destroy(&rs);
    }
    card_free(c);
    card_free(slow);
    return 0;
}
