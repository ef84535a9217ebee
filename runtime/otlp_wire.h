/* otlp_wire.h — walks encoded OTLP requests without decoding them.
 *
 * The hot path keeps requests as their original bytes. ow_validate() walks
 * the protobuf wire format of an Export{Trace,Metrics,Logs}ServiceRequest
 * against the schema (the protobuf-c descriptors generated from proto/):
 * well-formed varints, lengths within bounds, known fields with the right
 * wire type (packed or not for repeated scalars), nested messages to a depth
 * limit; unknown fields are allowed and skipped (they pass through), groups
 * (wire types 3 and 4, properly nested, depth-limited) included. It
 * allocates nothing and counts the items: spans, metric data points, log
 * records. Pure; any thread.
 */
#ifndef SW_OTLP_WIRE_H
#define SW_OTLP_WIRE_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/item.h"

#define OW_MAX_DEPTH 64

/* 0 and *items set, or SW_EDECODE (with a short reason in *why, static). */
int ow_validate(sw_signal sig, const uint8_t *data, size_t len, uint32_t *items,
                const char **why);

/* Strictness beyond protobuf-c, so that whatever ow_validate() accepts also
 * unpacks with protobuf_c_message_unpack() and counts the same there:
 * field number 0, tags and lengths longer than 5 bytes, 10-byte varints
 * overflowing 64 bits and packed bools other than 0/1 are refused, and so is
 * a non-repeated, non-oneof message field given twice in one message
 * (protobuf-c cannot always merge the two). Of several members of one oneof,
 * the last counts, as protobuf-c keeps only that one. */

/* protobuf-c (1.4) cannot unpack groups. For stages that unpack: appends to
 * out a copy of the validated request in[0..len) without its unknown group
 * fields (every enclosing length rewritten); all else is kept byte for
 * byte. 0, SW_EDECODE, SW_ETOOBIG or SW_ENOMEM. */
int ow_strip_groups(sw_signal sig, const uint8_t *in, size_t len, buf *out);

/* The Export<sig>ServiceRequest descriptor; NULL for an unknown signal. */
const ProtobufCMessageDescriptor *ow_descriptor(sw_signal sig);

/* Items (spans, data points, log records) in an unpacked
 * Export<sig>ServiceRequest (borrowed). For stages that decoded or rebuilt
 * a request; ow_validate() counts the same on the encoded bytes. */
uint32_t ow_count_items(sw_signal sig, const ProtobufCMessage *req);

#endif
