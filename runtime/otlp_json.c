/* otlp_json.c — OTLP/JSON to protobuf (see otlp_json.h).
 *
 * json-c parses the document (strict, UTF-8 validated, nesting bounded);
 * the protobuf-c message tree is then built generically from the
 * descriptors: each message is malloc'ed and initialised by its descriptor,
 * fields are written at their offsets, and everything hangs off the root
 * as soon as it is allocated, so one protobuf_c_message_free_unpacked()
 * releases a tree built halfway. The tree is packed into the output buf.
 *
 * NUL characters (\u0000) inside strings: protobuf-c measures string
 * fields with strlen(), so such a string goes into the tree with each NUL
 * replaced by a placeholder byte (same length), and its exact bytes are
 * remembered by pointer. Packing then goes through a ProtobufCBuffer whose
 * append puts the exact bytes back where protobuf-c appends that pointer.
 */
#include "runtime/otlp_json.h"

#include <float.h>
#include <json-c/json.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"
#include "runtime/otlp_wire.h"

_Static_assert(OJ_MAX_DEPTH <= OW_MAX_DEPTH, "JSON may not nest deeper than the wire walk allows");

typedef struct jctx {
    char *err;
    size_t errlen;
    int rc;          /* SW_EDECODE or SW_ENOMEM once failed */
    size_t plen;     /* used part of path */
    char path[256];  /* field path of the value being converted */
    struct oj_nul *nuls; /* owned: strings holding NUL characters */
    size_t n_nuls, cap_nuls;
} jctx;

/* A string field holding NULs: the placeholder copy in the tree and the
 * exact bytes (owned). */
typedef struct oj_nul {
    const char *in_tree;
    char *exact;
    size_t len;
} oj_nul;

/* A JSON integer: value = neg ? -mag : mag. */
typedef struct jint {
    int neg;
    uint64_t mag;
} jint;

static int fill_msg(jctx *c, const ProtobufCMessageDescriptor *d, json_object *obj,
                    ProtobufCMessage *m, unsigned depth);

__attribute__((format(printf, 2, 3))) static int jfail(jctx *c, const char *fmt, ...)
{
    c->rc = SW_EDECODE;
    if (!c->err || c->errlen == 0) return -1;
    int n = 0;
    /* Deep paths keep their last part, where the problem is. */
    if (c->plen > 120) n = snprintf(c->err, c->errlen, "...%s: ", c->path + c->plen - 120);
    else if (c->plen) n = snprintf(c->err, c->errlen, "%s: ", c->path);
    if (n < 0 || (size_t)n >= c->errlen) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

static int jnomem(jctx *c)
{
    c->rc = SW_ENOMEM;
    if (c->err && c->errlen) snprintf(c->err, c->errlen, "out of memory");
    return -1;
}

/* Appends ".key" or "[i]" to the path; returns the length to restore. */
static size_t path_push(jctx *c, const char *key, size_t idx)
{
    size_t old = c->plen, room = sizeof c->path - c->plen;
    int n = key ? snprintf(c->path + c->plen, room, "%s%s", c->plen ? "." : "", key)
                : snprintf(c->path + c->plen, room, "[%zu]", idx);
    if (n > 0) c->plen = (size_t)n < room ? c->plen + (size_t)n : sizeof c->path - 1;
    return old;
}

static void path_pop(jctx *c, size_t old)
{
    c->plen = old;
    c->path[old] = '\0';
}

/* ---- scalars ---- */

/* Parses an optionally negative decimal integer: 0, -1 (syntax), -2 (range). */
static int parse_dec(const char *s, size_t n, jint *v)
{
    size_t i = 0;
    v->neg = n > 0 && s[0] == '-';
    i = (size_t)v->neg;
    if (i == n) return -1;
    uint64_t m = 0;
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (m > (UINT64_MAX - d) / 10) return -2;
        m = m * 10 + d;
    }
    v->mag = m;
    if (m == 0) v->neg = 0;
    return 0;
}

static int get_int(jctx *c, json_object *v, jint *out)
{
    switch (json_object_get_type(v)) {
    case json_type_int: {
        int64_t s = json_object_get_int64(v);
        out->neg = s < 0;
        out->mag = s < 0 ? (uint64_t)0 - (uint64_t)s : json_object_get_uint64(v);
        return 0;
    }
    case json_type_double: {
        double d = json_object_get_double(v);
        if (!isfinite(d) || d != floor(d)) return jfail(c, "expected an integer");
        if (d < -9223372036854775808.0 || d >= 18446744073709551616.0)
            return jfail(c, "integer out of range");
        out->neg = d < 0;
        out->mag = d < 0 ? (uint64_t)-d : (uint64_t)d;
        return 0;
    }
    case json_type_string: {
        int rc = parse_dec(json_object_get_string(v), (size_t)json_object_get_string_len(v), out);
        if (rc == -2) return jfail(c, "integer out of range");
        return rc ? jfail(c, "expected an integer, got \"%.40s\"", json_object_get_string(v)) : 0;
    }
    default:
        return jfail(c, "expected an integer");
    }
}

/* Checks -lo_mag <= v <= hi. */
static int int_range(jctx *c, const jint *v, uint64_t lo_mag, uint64_t hi)
{
    if (v->neg ? v->mag > lo_mag : v->mag > hi) return jfail(c, "integer out of range");
    return 0;
}

static int set_int(jctx *c, ProtobufCType t, json_object *v, void *dst)
{
    jint x;
    if (get_int(c, v, &x)) return -1;
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        if (int_range(c, &x, (uint64_t)INT32_MAX + 1, INT32_MAX)) return -1;
        *(int32_t *)dst = (int32_t)(x.neg ? (uint32_t)0 - (uint32_t)x.mag : (uint32_t)x.mag);
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (int_range(c, &x, 0, UINT32_MAX)) return -1;
        *(uint32_t *)dst = (uint32_t)x.mag;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if (int_range(c, &x, (uint64_t)INT64_MAX + 1, INT64_MAX)) return -1;
        *(int64_t *)dst = (int64_t)(x.neg ? (uint64_t)0 - x.mag : x.mag);
        return 0;
    default: /* UINT64, FIXED64 */
        if (int_range(c, &x, 0, UINT64_MAX)) return -1;
        *(uint64_t *)dst = x.mag;
        return 0;
    }
}

static int set_enum(jctx *c, const ProtobufCFieldDescriptor *f, json_object *v, void *dst)
{
    if (json_object_is_type(v, json_type_string)) {
        const ProtobufCEnumValue *ev =
            protobuf_c_enum_descriptor_get_value_by_name(f->descriptor, json_object_get_string(v));
        if (ev) {
            *(int32_t *)dst = ev->value;
            return 0;
        }
        jint x;
        const char *s = json_object_get_string(v);
        if (parse_dec(s, strlen(s), &x) != 0) return jfail(c, "unknown enum value \"%.40s\"", s);
    }
    return set_int(c, PROTOBUF_C_TYPE_ENUM, v, dst);
}

static int get_double(jctx *c, json_object *v, double *out)
{
    switch (json_object_get_type(v)) {
    case json_type_double:
        *out = json_object_get_double(v);
        if (isnan(*out)) *out = NAN; /* one NaN: the way back writes "NaN" */
        return 0;
    case json_type_int: {
        jint x;
        if (get_int(c, v, &x)) return -1;
        *out = x.neg ? -(double)x.mag : (double)x.mag;
        return 0;
    }
    case json_type_string: {
        const char *s = json_object_get_string(v);
        char *end;
        if (strcmp(s, "NaN") == 0) *out = NAN;
        else if (strcmp(s, "Infinity") == 0) *out = INFINITY;
        else if (strcmp(s, "-Infinity") == 0) *out = -INFINITY;
        else if (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
            *out = strtod(s, &end);
            /* strtod also reads "-nan": NaN is spelled "NaN" only */
            if (*end != '\0' || isnan(*out))
                return jfail(c, "expected a number, got \"%.40s\"", s);
        } else
            return jfail(c, "expected a number, got \"%.40s\"", s);
        return 0;
    }
    default:
        return jfail(c, "expected a number");
    }
}

/* Remembers the exact bytes of a string with NULs and puts placeholders
 * into the tree's copy p, so that strlen(p) == n. */
static int keep_nuls(jctx *c, char *p, const char *s, size_t n)
{
    if (c->n_nuls == c->cap_nuls) {
        size_t cap = c->cap_nuls ? c->cap_nuls * 2 : 8;
        oj_nul *nn = realloc(c->nuls, cap * sizeof *nn);
        if (!nn) return jnomem(c);
        c->nuls = nn;
        c->cap_nuls = cap;
    }
    char *exact = malloc(n);
    if (!exact) return jnomem(c);
    memcpy(exact, s, n);
    for (size_t i = 0; i < n; i++)
        if (!p[i]) p[i] = '0';
    c->nuls[c->n_nuls++] = (oj_nul){p, exact, n};
    return 0;
}

static int set_string(jctx *c, json_object *v, char **dst)
{
    if (!json_object_is_type(v, json_type_string)) return jfail(c, "expected a string");
    size_t n = (size_t)json_object_get_string_len(v);
    const char *s = json_object_get_string(v);
    if (!oj_utf8_valid(s, n)) return jfail(c, "string is not valid UTF-8");
    char *p = malloc(n + 1);
    if (!p) return jnomem(c);
    memcpy(p, s, n + 1);
    *dst = p; /* owned by the tree from here on */
    if (memchr(s, 0, n)) return keep_nuls(c, p, s, n);
    return 0;
}

static int set_bytes(jctx *c, const ProtobufCFieldDescriptor *f, json_object *v,
                     ProtobufCBinaryData *dst)
{
    if (!json_object_is_type(v, json_type_string)) return jfail(c, "expected a string");
    size_t n = (size_t)json_object_get_string_len(v), id = oj_id_len(f), len;
    const char *s = json_object_get_string(v);
    if (n == 0) return 0;
    if (id && n != 2 * id) return jfail(c, "expected %zu hex digits, got %zu", 2 * id, n);
    uint8_t *p = malloc(id ? id : n / 4 * 3 + 3);
    if (!p) return jnomem(c);
    int bad = id ? oj_hex_decode(s, n, p) : oj_b64_decode(s, n, p, &len);
    if (bad) {
        free(p);
        return id ? jfail(c, "invalid hex id") : jfail(c, "invalid base64");
    }
    if (!id && len == 0) {
        free(p);
        return 0;
    }
    dst->data = p;
    dst->len = id ? id : len;
    return 0;
}

static int set_message(jctx *c, const ProtobufCMessageDescriptor *d, json_object *v,
                       ProtobufCMessage **dst, unsigned depth)
{
    if (!json_object_is_type(v, json_type_object)) return jfail(c, "expected an object");
    if (depth >= OJ_MAX_DEPTH) return jfail(c, "nesting deeper than %d", OJ_MAX_DEPTH);
    ProtobufCMessage *m = malloc(d->sizeof_message);
    if (!m) return jnomem(c);
    d->message_init(m);
    *dst = m; /* owned by the parent from here on */
    return fill_msg(c, d, v, m, depth + 1);
}

/* Converts v into the value of field f at dst (one element if repeated). */
static int set_value(jctx *c, const ProtobufCFieldDescriptor *f, json_object *v, void *dst,
                     unsigned depth)
{
    double d;
    switch (f->type) {
    case PROTOBUF_C_TYPE_MESSAGE:
        return set_message(c, f->descriptor, v, dst, depth);
    case PROTOBUF_C_TYPE_STRING:
        return set_string(c, v, dst);
    case PROTOBUF_C_TYPE_BYTES:
        return set_bytes(c, f, v, dst);
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_object_is_type(v, json_type_boolean)) return jfail(c, "expected true or false");
        *(protobuf_c_boolean *)dst = json_object_get_boolean(v) ? 1 : 0;
        return 0;
    case PROTOBUF_C_TYPE_ENUM:
        return set_enum(c, f, v, dst);
    case PROTOBUF_C_TYPE_DOUBLE:
        if (get_double(c, v, &d)) return -1;
        *(double *)dst = d;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
        if (get_double(c, v, &d)) return -1;
        if (isfinite(d) && fabs(d) > FLT_MAX) return jfail(c, "number out of range");
        *(float *)dst = (float)d;
        return 0;
    default:
        return set_int(c, f->type, v, dst);
    }
}

static int set_repeated(jctx *c, const ProtobufCFieldDescriptor *f, json_object *v,
                        ProtobufCMessage *m, unsigned depth)
{
    if (!json_object_is_type(v, json_type_array)) return jfail(c, "expected an array");
    size_t n = json_object_array_length(v), es = oj_elem_size(f->type);
    if (n == 0) return 0;
    char *arr = calloc(n, es);
    if (!arr) return jnomem(c);
    *(void **)((char *)m + f->offset) = arr;
    size_t *count = (size_t *)((char *)m + f->quantifier_offset);
    for (size_t i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(v, i);
        size_t mark = path_push(c, NULL, i);
        /* Counted before it is filled: free_unpacked copes with the
         * zeroed slot, and a half-built element is still freed. */
        *count = i + 1;
        int rc = e ? set_value(c, f, e, arr + i * es, depth) : jfail(c, "null array element");
        path_pop(c, mark);
        if (rc) return -1;
    }
    return 0;
}

static int set_field(jctx *c, const ProtobufCFieldDescriptor *f, json_object *v,
                     ProtobufCMessage *m, unsigned depth)
{
    char *base = (char *)m;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) return set_repeated(c, f, v, m, depth);
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = (uint32_t *)(base + f->quantifier_offset);
        if (*which != 0) return jfail(c, "more than one member of a oneof is set");
        *which = f->id; /* before the value, so a half-built one is freed */
        return set_value(c, f, v, base + f->offset, depth);
    }
    if (set_value(c, f, v, base + f->offset, depth)) return -1;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
        f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)(base + f->quantifier_offset) = 1;
    return 0;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *key)
{
    for (unsigned i = 0; i < d->n_fields; i++)
        if (oj_name_match(d->fields[i].name, key)) return &d->fields[i];
    return NULL;
}

static int fill_msg(jctx *c, const ProtobufCMessageDescriptor *d, json_object *obj,
                    ProtobufCMessage *m, unsigned depth)
{
    uint64_t seen = 0;
    struct json_object_iterator it = json_object_iter_begin(obj);
    struct json_object_iterator end = json_object_iter_end(obj);
    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *key = json_object_iter_peek_name(&it);
        json_object *v = json_object_iter_peek_value(&it);
        const ProtobufCFieldDescriptor *f = find_field(d, key);
        if (!f || !v) continue; /* unknown key, or null: absent */
        size_t mark = path_push(c, key, 0);
        size_t idx = (size_t)(f - d->fields);
        int rc;
        if (idx < 64 && (seen & (1ull << idx)))
            rc = jfail(c, "field given twice");
        else
            rc = set_field(c, f, v, m, depth);
        seen |= idx < 64 ? 1ull << idx : 0;
        path_pop(c, mark);
        if (rc) return -1;
    }
    return 0;
}

/* Parses the whole of json[0..len) into a JSON object (owned). */
static json_object *parse_doc(jctx *c, const char *json, size_t len)
{
    json_object *root = NULL;
    json_tokener *tok = json_tokener_new_ex(2 * OJ_MAX_DEPTH + 2);
    if (!tok) {
        jnomem(c);
        goto cleanup;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, json, (int)len);
    enum json_tokener_error e = json_tokener_get_error(tok);
    size_t end = json_tokener_get_parse_end(tok);
    if (e == json_tokener_continue) {
        /* A final NUL tells json-c the input ends (e.g. after a number). */
        root = json_tokener_parse_ex(tok, "", 1);
        e = json_tokener_get_error(tok);
        end = len;
        if (e != json_tokener_success) e = json_tokener_continue;
    }
    if (e == json_tokener_continue) {
        jfail(c, "incomplete JSON document");
    } else if (e != json_tokener_success) {
        jfail(c, "invalid JSON at offset %zu: %s", end, json_tokener_error_desc(e));
    } else if (end != len) {
        jfail(c, "invalid JSON at offset %zu: unexpected data after the document", end);
    } else if (!json_object_is_type(root, json_type_object)) {
        jfail(c, "top-level value must be an object");
    } else {
        goto cleanup;
    }
    json_object_put(root);
    root = NULL;
cleanup:
    json_tokener_free(tok);
    return root;
}

typedef struct nul_sink {
    ProtobufCBuffer base;
    uint8_t *dst;              /* room reserved for the whole message */
    const jctx *c;             /* its nuls sorted by in_tree */
} nul_sink;

static int nul_cmp(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)((const oj_nul *)a)->in_tree;
    uintptr_t y = (uintptr_t)((const oj_nul *)b)->in_tree;
    return x < y ? -1 : x > y;
}

/* protobuf-c appends a string field's bytes from its own pointer: put the
 * exact bytes (with their NULs) back there. */
static void nul_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
    nul_sink *s = (nul_sink *)b;
    oj_nul key = {(const char *)data, NULL, 0};
    const oj_nul *hit = bsearch(&key, s->c->nuls, s->c->n_nuls, sizeof key, nul_cmp);
    memcpy(s->dst, hit && hit->len == len ? (const uint8_t *)hit->exact : data, len);
    s->dst += len;
}

static int pack_into(jctx *c, const ProtobufCMessage *m, buf *out)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    if (n == 0) return 0;
    int rc = buf_reserve(out, n);
    if (rc) {
        if (c->err && c->errlen) snprintf(c->err, c->errlen, "encoded request too large");
        c->rc = rc;
        return -1;
    }
    if (c->n_nuls == 0) {
        out->len += protobuf_c_message_pack(m, out->data + out->len);
        return 0;
    }
    qsort(c->nuls, c->n_nuls, sizeof *c->nuls, nul_cmp);
    nul_sink s = {{nul_append}, out->data + out->len, c};
    out->len += protobuf_c_message_pack_to_buffer(m, &s.base);
    return 0;
}

int oj_json_to_pb(sw_signal sig, const char *json, size_t len, buf *out, char *err,
                  size_t errlen)
{
    jctx c = {.err = err, .errlen = errlen, .rc = 0, .plen = 0};
    const ProtobufCMessageDescriptor *d = ow_descriptor(sig);
    ProtobufCMessage *m = NULL;
    json_object *root = NULL;
    c.path[0] = '\0';
    if (err && errlen) err[0] = '\0';
    if (!d) {
        jfail(&c, "unknown signal");
        goto cleanup;
    }
    if (len > INT_MAX) {
        jfail(&c, "JSON document too large");
        goto cleanup;
    }
    size_t at;
    if (oj_check_surrogates(json, len, &at) != 0) {
        jfail(&c, "invalid JSON at offset %zu: lone UTF-16 surrogate in a \\u escape", at);
        goto cleanup;
    }
    if (!(root = parse_doc(&c, json, len))) goto cleanup;
    if (!(m = malloc(d->sizeof_message))) {
        jnomem(&c);
        goto cleanup;
    }
    d->message_init(m);
    if (fill_msg(&c, d, root, m, 1) != 0) goto cleanup;
    pack_into(&c, m, out);
cleanup:
    protobuf_c_message_free_unpacked(m, NULL);
    json_object_put(root);
    for (size_t i = 0; i < c.n_nuls; i++) free(c.nuls[i].exact);
    free(c.nuls);
    return c.rc;
}
