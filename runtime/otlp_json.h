/* otlp_json.h — OTLP/JSON <-> protobuf for Export*ServiceRequest messages.
 *
 * Follows the OTLP JSON mapping: lowerCamelCase keys (original snake_case
 * names also accepted), trace/span ids as hex strings, other bytes base64,
 * enums as integers (names accepted too), 64-bit integers as strings or
 * numbers, unknown keys ignored. Conversion is generic over the protobuf-c
 * descriptors. Pure; any thread. Nesting deeper than OJ_MAX_DEPTH fails.
 */
#ifndef SW_OTLP_JSON_H
#define SW_OTLP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/item.h"

#define OJ_MAX_DEPTH 64

/* Parses an OTLP/JSON Export<sig>ServiceRequest and appends its protobuf
 * encoding to out (out->max caps it). 0, SW_EDECODE (reason written to
 * err, NUL-terminated), SW_ETOOBIG or SW_ENOMEM. */
int oj_json_to_pb(sw_signal sig, const char *json, size_t len, buf *out,
                  char *err, size_t errlen);

/* Appends the OTLP/JSON form of a protobuf Export<sig>ServiceRequest to out.
 * 0, SW_EDECODE, SW_ETOOBIG or SW_ENOMEM. */
int oj_pb_to_json(sw_signal sig, const uint8_t *pb, size_t len, buf *out);

#endif
