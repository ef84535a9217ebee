/* rcv_respond.h — encodes the receiver's response bodies.
 *
 * Pure; any thread. Export{Trace,Metrics,Logs}ServiceResponse and
 * google.rpc.Status, in protobuf or in OTLP/JSON, following the OTLP/HTTP
 * specification: on full success the response is empty (a zero-length
 * protobuf body, or "{}" in JSON) and partial_success is set only when
 * something was rejected or there is a message. The three responses share
 * one wire shape (field 1 partial_success { 1: int64 rejected, 2: string
 * error_message }), so they are written directly without protobuf-c.
 * Messages are reduced to printable ASCII (other bytes become '?') so the
 * bodies are always valid UTF-8 and valid JSON.
 */
#ifndef SW_RCV_RESPOND_H
#define SW_RCV_RESPOND_H

#include <stdint.h>

#include "runtime/buf.h"
#include "runtime/item.h"

/* Appends the Export<sig>ServiceResponse to out: JSON when json != 0,
 * protobuf otherwise. rejected (>= 0) is the rejected item count, msg
 * (borrowed, may be NULL) the partial_success error_message. 0, SW_ETOOBIG
 * or SW_ENOMEM. */
int rcv_encode_response(sw_signal sig, int json, int64_t rejected, const char *msg,
                        buf *out);
/* Appends a google.rpc.Status {code, message} to out; JSON is
 * {"code":3,"message":"..."}. msg is borrowed, may be NULL. */
int rcv_encode_status(int json, int code, const char *msg, buf *out);

#endif
