/* exp_response.c — see exp_response.h. */
#include "exporters/otlp/exp_response.h"

#include <json-c/json.h>
#include <strings.h>

#include "runtime/ascii.h"
#include "runtime/err.h"
#include "runtime/pbwire.h"

/* ---- protobuf wire walk ------------------------------------------------ */

typedef struct pb_reader {
    const uint8_t *p, *end;
} pb_reader;

/* Reads the next field with runtime/pbwire.h. 1: a field was read, 0: end
 * of input, or SW_EDECODE. */
static int pb_next(pb_reader *r, pbw_field *f)
{
    if (r->p >= r->end) return 0;
    return pbw_next(&r->p, r->end, f) == 0 ? 1 : SW_EDECODE;
}

/* Copies s[0..n) into out as printable ASCII (others become '?', line
 * breaks and tabs a space), truncated, NUL-terminated. */
static void copy_printable(char *out, size_t outlen, const void *s, size_t n)
{
    const uint8_t *b = s;
    size_t j = 0;
    if (outlen == 0) return;
    for (size_t i = 0; i < n && j + 1 < outlen; i++) {
        uint8_t c = b[i];
        if (c == '\n' || c == '\r' || c == '\t') c = ' ';
        else c = (uint8_t)ascii_or_q(c);
        out[j++] = (char)c;
    }
    while (j > 0 && out[j - 1] == ' ') j--;
    out[j] = '\0';
}

/* ExportXPartialSuccess: 1 rejected (int64), 2 error_message (string). */
static int pb_partial_inner(const uint8_t *p, size_t len, int64_t *rejected,
                            char *msg, size_t msglen)
{
    pb_reader r = {p, p + len};
    pbw_field f = {0};
    int rc;
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num == 1 && f.wt == 0) *rejected = (int64_t)f.v;
        else if (f.num == 2 && f.wt == 2) copy_printable(msg, msglen, f.sub, f.n);
    }
    return rc;
}

static int pb_partial(const uint8_t *body, size_t len, int64_t *rejected, char *msg,
                      size_t msglen)
{
    pb_reader r = {body, body + len};
    pbw_field f = {0};
    int rc;
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num != 1 || f.wt != 2) continue;
        if (pb_partial_inner(f.sub, f.n, rejected, msg, msglen) != 0) return SW_EDECODE;
    }
    return rc;
}

/* google.rpc.Status: 2 message (string). 1 if found, else 0. */
static int pb_status_message(const uint8_t *body, size_t len, char *msg, size_t msglen)
{
    pb_reader r = {body, body + len};
    pbw_field f = {0};
    int rc, found = 0;
    while ((rc = pb_next(&r, &f)) == 1) {
        if (f.num == 2 && f.wt == 2) {
            copy_printable(msg, msglen, f.sub, f.n);
            found = 1;
        }
    }
    return rc == 0 && found;
}

/* ---- JSON ---------------------------------------------------------------- */

static json_object *json_parse_n(const uint8_t *body, size_t len)
{
    if (len > (size_t)INT32_MAX) return NULL;
    json_tokener *tok = json_tokener_new();
    if (!tok) return NULL;
    json_object *o = json_tokener_parse_ex(tok, (const char *)body, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    return o;
}

/* The first of keys present in o, or NULL. */
static json_object *json_get_any(json_object *o, const char *const *keys)
{
    json_object *v;
    for (; *keys; keys++)
        if (json_object_object_get_ex(o, *keys, &v)) return v;
    return NULL;
}

static int json_partial(const uint8_t *body, size_t len, int64_t *rejected, char *msg,
                        size_t msglen)
{
    static const char *const k_ps[] = {"partialSuccess", "partial_success", NULL};
    static const char *const k_rej[] = {"rejectedSpans", "rejectedDataPoints",
                                        "rejectedLogRecords", "rejected_spans",
                                        "rejected_data_points", "rejected_log_records", NULL};
    static const char *const k_msg[] = {"errorMessage", "error_message", NULL};
    json_object *root = json_parse_n(body, len);
    if (!root || !json_object_is_type(root, json_type_object)) {
        json_object_put(root);
        return SW_EDECODE;
    }
    json_object *ps = json_get_any(root, k_ps);
    if (ps && json_object_is_type(ps, json_type_object)) {
        json_object *rej = json_get_any(ps, k_rej);
        json_object *m = json_get_any(ps, k_msg);
        if (rej) *rejected = json_object_get_int64(rej); /* number or string */
        if (m && json_object_is_type(m, json_type_string))
            copy_printable(msg, msglen, json_object_get_string(m),
                           (size_t)json_object_get_string_len(m));
    }
    json_object_put(root);
    return 0;
}

/* {"code":..,"message":".."} (google.rpc.Status). 1 if found, else 0. */
static int json_status_message(const uint8_t *body, size_t len, char *msg, size_t msglen)
{
    json_object *root = json_parse_n(body, len), *m;
    int found = 0;
    if (root && json_object_is_type(root, json_type_object) &&
        json_object_object_get_ex(root, "message", &m) &&
        json_object_is_type(m, json_type_string)) {
        copy_printable(msg, msglen, json_object_get_string(m),
                       (size_t)json_object_get_string_len(m));
        found = 1;
    }
    json_object_put(root);
    return found;
}

/* ---- public -------------------------------------------------------------- */

exp_body_type exp_body_type_of(const char *content_type)
{
    if (!content_type || !*content_type) return EXP_BODY_PROTOBUF;
    while (*content_type == ' ') content_type++;
    if (strncasecmp(content_type, "application/x-protobuf", 22) == 0 ||
        strncasecmp(content_type, "application/protobuf", 20) == 0)
        return EXP_BODY_PROTOBUF;
    if (strncasecmp(content_type, "application/json", 16) == 0) return EXP_BODY_JSON;
    return EXP_BODY_TEXT;
}

int exp_resp_partial(const uint8_t *body, size_t len, exp_body_type type,
                     int64_t *rejected, char *msg, size_t msglen)
{
    int rc = 0;
    *rejected = 0;
    if (msglen) msg[0] = '\0';
    if (len == 0 || type == EXP_BODY_TEXT) return 0;
    if (type == EXP_BODY_JSON) rc = json_partial(body, len, rejected, msg, msglen);
    else rc = pb_partial(body, len, rejected, msg, msglen);
    if (rc != 0) {
        *rejected = 0;
        if (msglen) msg[0] = '\0';
        return SW_EDECODE;
    }
    return 0;
}

void exp_resp_error_message(const uint8_t *body, size_t len, exp_body_type type,
                            char *msg, size_t msglen)
{
    if (msglen == 0) return;
    msg[0] = '\0';
    if (len == 0) return;
    if (type == EXP_BODY_PROTOBUF && pb_status_message(body, len, msg, msglen)) return;
    if (type == EXP_BODY_JSON && json_status_message(body, len, msg, msglen)) return;
    copy_printable(msg, msglen, body, len);
}
