/* fuzz_prio.c — the priority classifier on untrusted protobuf.
 *
 * Input: one byte choosing the signal, then an encoded request. Whatever
 * the input, prio_classify() must not crash. Whatever ow_validate()
 * accepts must classify; a mixed request must split into per-class
 * requests that together hold exactly the original bytes, each valid on
 * its own, with item counts adding up to the whole; a single-class one
 * passes through unchanged.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "processors/prio.h"
#include "runtime/otlp_wire.h"

static prio *rules(void)
{
    static prio *p;
    static const prio_rule r[] = {
        {CLASS_CRITICAL, "service.name", "^(checkout|payment)"},
        {CLASS_CRITICAL, NULL, NULL, .span_error = 1},
        {CLASS_HIGH, NULL, NULL, .min_severity = 17},
        {CLASS_HIGH, "http.status_code", "^5[0-9]{2}$"},
        {CLASS_HIGH, "service.name", "api"},
        {CLASS_NORMAL, "flag", "^true$"},
    };
    if (!p && !(p = prio_new(r, sizeof r / sizeof r[0], NULL, 0))) abort();
    return p;
}

static void check_split(const prio *p, sw_signal sig, const uint8_t *data, size_t size,
                        const prio_result *r, uint32_t items)
{
    item *out[CLASS_COUNT];
    if (prio_split(p, sig, data, size, r, 0, out) != 0) abort();
    size_t total = 0;
    uint32_t count = 0;
    for (int k = 0; k < CLASS_COUNT; k++) {
        if (!out[k]) continue;
        uint32_t n;
        if (ow_validate(sig, out[k]->data, out[k]->len, &n, NULL) != 0 || n != out[k]->count) abort();
        if (out[k]->len != r->bytes[k]) abort();
        total += out[k]->len;
        count += n;
        item_free(out[k]);
    }
    if (total != size || count != items) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    sw_signal sig = (sw_signal)(data[0] % SIG_COUNT);
    data++;
    size--;
    const prio *p = rules();
    prio_result r;
    int rc = prio_classify(p, sig, data, size, &r);
    uint32_t items;
    if (ow_validate(sig, data, size, &items, NULL) != 0) return 0;
    if (rc != 0) abort();
    if (r.bytes[0] + r.bytes[1] + r.bytes[2] != size) abort();
    if (!r.single) {
        check_split(p, sig, data, size, &r, items);
        return 0;
    }
    item *out[CLASS_COUNT];
    size_t n;
    if (prio_items(p, sig, data, size, items, 0, out, &n) != 0 || n != 1) abort();
    if (out[0]->len != size || (size && memcmp(out[0]->data, data, size) != 0)) abort();
    item_free(out[0]);
    return 0;
}
