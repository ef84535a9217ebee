/* exp_response.h — reading upstream answers, as pure functions.
 *
 * A 2xx body may carry an Export*ServiceResponse whose partial_success
 * counts records the upstream dropped; an error body may carry a
 * google.rpc.Status whose message explains the refusal. Both are read here
 * from protobuf (a small wire walk: every length checked, nothing
 * allocated) or JSON (json-c), depending on the response Content-Type.
 * Messages come out truncated and reduced to printable ASCII, safe to log.
 * Pure; any thread; every input is untrusted.
 */
#ifndef SW_EXP_RESPONSE_H
#define SW_EXP_RESPONSE_H

#include <stddef.h>
#include <stdint.h>

typedef enum {
    EXP_BODY_PROTOBUF = 1, /* application/x-protobuf, or no Content-Type */
    EXP_BODY_JSON = 2,     /* application/json */
    EXP_BODY_TEXT = 3,     /* anything else (text/plain, text/html, ...) */
} exp_body_type;

/* Classifies a Content-Type value (borrowed, may be NULL). */
exp_body_type exp_body_type_of(const char *content_type);

/* Reads partial_success from an Export{Trace,Metrics,Logs}ServiceResponse
 * (the three share field numbers). *rejected: rejected spans / data points /
 * log records, 0 when absent; msg (msglen > 0) gets its error_message, ""
 * when absent. 0, or SW_EDECODE for a malformed body (outputs then 0/""). */
int exp_resp_partial(const uint8_t *body, size_t len, exp_body_type type,
                     int64_t *rejected, char *msg, size_t msglen);

/* Writes a printable summary of an error body into msg (msglen > 0): the
 * message of a google.rpc.Status (protobuf or JSON), else the body's own
 * text. Always NUL-terminated; "" for an empty body. */
void exp_resp_error_message(const uint8_t *body, size_t len, exp_body_type type,
                            char *msg, size_t msglen);

#endif
