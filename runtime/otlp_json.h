/* otlp_json.h — OTLP/JSON <-> protobuf for Export*ServiceRequest messages.
 *
 * Follows the OTLP JSON mapping: lowerCamelCase keys (original snake_case
 * names also accepted), trace/span ids as hex strings, other bytes base64,
 * enums as integers (names accepted too), 64-bit integers as strings or
 * numbers, unknown keys ignored. String escapes are decoded exactly: \\u0000
 * stays a NUL byte inside the protobuf string, a surrogate pair becomes one
 * 4-byte UTF-8 code point, and a lone surrogate is refused. Conversion is generic over the protobuf-c
 * descriptors. Pure; any thread. Nesting deeper than OJ_MAX_DEPTH fails.
 */
#ifndef SW_OTLP_JSON_H
#define SW_OTLP_JSON_H

#include <protobuf-c/protobuf-c.h>
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

/* ---- helpers shared by runtime/otlp_json*.c (pure, usable elsewhere) ---- */

/* Decodes n hex digits (either case) into n/2 bytes. 0 or -1. */
int oj_hex_decode(const char *s, size_t n, uint8_t *out);
/* Appends p[0..n) as lowercase hex. 0, SW_ETOOBIG or SW_ENOMEM. */
int oj_append_hex(buf *b, const uint8_t *p, size_t n);
/* Decodes base64 (standard or URL-safe alphabet, padding optional) into
 * out, which has room for n / 4 * 3 + 3 bytes. 0 or -1. */
int oj_b64_decode(const char *s, size_t n, uint8_t *out, size_t *outlen);
/* Appends standard base64 with padding. */
int oj_append_b64(buf *b, const uint8_t *p, size_t n);
/* 1 if s[0..n) is valid UTF-8 (no overlong forms, surrogates or values
 * above U+10FFFF). */
int oj_utf8_valid(const char *s, size_t n);
/* Scans JSON text s[0..n) for a \\u escape of a lone UTF-16 surrogate (a
 * high one not followed by an escaped low one, or a low one alone), which
 * json-c would silently turn into U+FFFD. 0, or -1 with its offset in *at. */
int oj_check_surrogates(const char *s, size_t n, size_t *at);
/* Appends s[0..n) as a quoted JSON string; invalid UTF-8 becomes U+FFFD. */
int oj_append_jstring(buf *b, const char *s, size_t n);
/* Appends the quoted lowerCamelCase JSON name of a proto field name. */
int oj_append_name(buf *b, const char *proto_name);
/* 1 if key is the proto field name or its lowerCamelCase JSON name. */
int oj_name_match(const char *proto_name, const char *key);
/* Byte length of a hex-encoded id field (trace_id 16, span_id and
 * parent_span_id 8), or 0 for a bytes field that is base64. */
size_t oj_id_len(const ProtobufCFieldDescriptor *f);
/* Size of one element of a repeated field of this type. */
size_t oj_elem_size(ProtobufCType t);

#endif
