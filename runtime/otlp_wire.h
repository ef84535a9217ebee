/* otlp_wire.h — walks encoded OTLP requests without decoding them.
 *
 * The hot path keeps requests as their original bytes. ow_validate() walks
 * the protobuf wire format of an Export{Trace,Metrics,Logs}ServiceRequest
 * against the schema (the protobuf-c descriptors generated from proto/):
 * well-formed varints, lengths within bounds, known fields with the right
 * wire type (packed or not for repeated scalars), nested messages to a depth
 * limit; unknown fields are allowed and skipped (they pass through). It
 * allocates nothing and counts the items: spans, metric data points, log
 * records. Pure; any thread.
 */
#ifndef SW_OTLP_WIRE_H
#define SW_OTLP_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/item.h"

#define OW_MAX_DEPTH 64

/* 0 and *items set, or SW_EDECODE (with a short reason in *why, static). */
int ow_validate(sw_signal sig, const uint8_t *data, size_t len, uint32_t *items,
                const char **why);

#endif
