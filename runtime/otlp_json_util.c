/* otlp_json_util.c — hex, base64, JSON strings and field names for the
 * OTLP/JSON mapping (see otlp_json.h). */
#include "runtime/otlp_json.h"

#include <string.h>

#include "runtime/err.h"

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int hex_val(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

int oj_hex_decode(const char *s, size_t n, uint8_t *out)
{
    if (n % 2) return -1;
    for (size_t i = 0; i < n; i += 2) {
        int hi = hex_val((unsigned char)s[i]), lo = hex_val((unsigned char)s[i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i / 2] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int oj_append_hex(buf *b, const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    if (n > SIZE_MAX / 2) return SW_ETOOBIG;
    int rc = buf_reserve(b, 2 * n);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        b->data[b->len++] = (uint8_t)digits[p[i] >> 4];
        b->data[b->len++] = (uint8_t)digits[p[i] & 15];
    }
    return 0;
}

static int b64_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+' || c == '-') return 62;
    if (c == '/' || c == '_') return 63;
    return -1;
}

int oj_b64_decode(const char *s, size_t n, uint8_t *out, size_t *outlen)
{
    size_t pad = 0;
    while (n > 0 && s[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    if (n % 4 == 1 || (pad && (n + pad) % 4)) return -1;
    uint32_t acc = 0;
    size_t o = 0;
    unsigned bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_val((unsigned char)s[i]);
        if (v < 0) return -1;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* Leftover bits are ignored, as most decoders do. */
    *outlen = o;
    return 0;
}

int oj_append_b64(buf *b, const uint8_t *p, size_t n)
{
    if (n > SIZE_MAX / 2) return SW_ETOOBIG;
    int rc = buf_reserve(b, (n + 2) / 3 * 4);
    if (rc) return rc;
    char *o = (char *)b->data + b->len;
    size_t i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = b64_alphabet[(v >> 6) & 63];
        *o++ = b64_alphabet[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = b64_alphabet[v >> 18];
        *o++ = b64_alphabet[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64_alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)((uint8_t *)o - b->data);
    return 0;
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned min;
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; min = 0x80; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; min = 0x800; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; min = 0x10000; }
    else return 0;
    if (n < len) return 0;
    unsigned cp = c & (0x3f >> (len - 1));
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80) return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
    return len;
}

int oj_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t l = utf8_seq(p + i, n - i);
        if (l == 0) return 0;
        i += l;
    }
    return 1;
}

/* The value of 4 hex digits at s, or -1. */
static long hex4(const char *s)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char ch = s[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0'
              : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
              : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

int oj_check_surrogates(const char *s, size_t n, size_t *at)
{
    const char *p = s, *end = s + n;
    while ((p = memchr(p, '\\', (size_t)(end - p))) != NULL) {
        if (end - p < 2) return 0; /* json-c reports the truncation */
        if (p[1] != 'u') {
            p += 2;
            continue;
        }
        long u = end - p >= 6 ? hex4(p + 2) : -1;
        if (u < 0) return 0; /* malformed: json-c refuses it */
        if (u >= 0xdc00 && u <= 0xdfff) goto lone;
        if (u >= 0xd800 && u <= 0xdbff) {
            long lo = end - p >= 12 && p[6] == '\\' && p[7] == 'u' ? hex4(p + 8) : -1;
            if (lo < 0xdc00 || lo > 0xdfff) goto lone;
            p += 12;
            continue;
        }
        p += 6;
    }
    return 0;
lone:
    *at = (size_t)(p - s);
    return -1;
}

static int append_escape(buf *b, unsigned char c)
{
    switch (c) {
    case '"': return buf_append(b, "\\\"", 2);
    case '\\': return buf_append(b, "\\\\", 2);
    case '\n': return buf_append(b, "\\n", 2);
    case '\r': return buf_append(b, "\\r", 2);
    case '\t': return buf_append(b, "\\t", 2);
    case '\b': return buf_append(b, "\\b", 2);
    case '\f': return buf_append(b, "\\f", 2);
    default: return buf_printf(b, "\\u%04x", c);
    }
}

int oj_append_jstring(buf *b, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    int rc = buf_append(b, "\"", 1);
    size_t run = 0; /* bytes before i that need no escaping */
    for (size_t i = 0; i < n && rc == 0;) {
        size_t l = utf8_seq(p + i, n - i);
        if (l == 1 && p[i] >= 0x20 && p[i] != '"' && p[i] != '\\') {
            run++;
            i++;
            continue;
        }
        if (l > 1) {
            run += l;
            i += l;
            continue;
        }
        rc = buf_append(b, p + i - run, run);
        run = 0;
        if (rc == 0) rc = l ? append_escape(b, p[i]) : buf_append(b, "\\ufffd", 6);
        i++;
    }
    if (rc == 0) rc = buf_append(b, p + n - run, run);
    if (rc == 0) rc = buf_append(b, "\"", 1);
    return rc;
}

int oj_append_name(buf *b, const char *proto_name)
{
    char tmp[128];
    size_t o = 0;
    int upper = 0;
    tmp[o++] = '"';
    for (const char *p = proto_name; *p && o < sizeof tmp - 2; p++) {
        if (*p == '_') {
            upper = 1;
            continue;
        }
        tmp[o++] = upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
        upper = 0;
    }
    tmp[o++] = '"';
    return buf_append(b, tmp, o);
}

int oj_name_match(const char *proto_name, const char *key)
{
    if (strcmp(proto_name, key) == 0) return 1;
    const char *p = proto_name, *k = key;
    int upper = 0;
    for (; *p; p++) {
        if (*p == '_') {
            upper = 1;
            continue;
        }
        char want = upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p;
        if (*k++ != want) return 0;
        upper = 0;
    }
    return *k == '\0';
}

size_t oj_id_len(const ProtobufCFieldDescriptor *f)
{
    if (f->type != PROTOBUF_C_TYPE_BYTES) return 0;
    if (strcmp(f->name, "trace_id") == 0) return 16;
    if (strcmp(f->name, "span_id") == 0 || strcmp(f->name, "parent_span_id") == 0) return 8;
    return 0;
}

size_t oj_elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default:
        return 4;
    }
}
