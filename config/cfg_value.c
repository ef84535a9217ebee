/* cfg_value.c — scalar syntax of the config: sizes, durations, booleans,
 * numbers, host:port, ${env:...} expansion, and the typed store of one value
 * into a field of struct cfg (with its range check). Pure functions; no YAML.
 */
#include "config/cfg_int.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "runtime/buf.h"
#include "runtime/err.h"

#define ENV_MAX_LEN (64u * 1024u)   /* cap on one expanded value */

/* ---- sizes ---- */

static const struct { const char *unit; uint64_t mult; } size_units[] = {
    { "", 1 }, { "B", 1 },
    { "KB", 1000ull }, { "KiB", 1ull << 10 },
    { "MB", 1000000ull }, { "MiB", 1ull << 20 },
    { "GB", 1000000000ull }, { "GiB", 1ull << 30 },
    { "TB", 1000000000000ull }, { "TiB", 1ull << 40 },
};

/* Reads decimal digits into *v; 0, or SW_EINVAL on overflow (*p advanced). */
static int read_digits(const char **p, uint64_t *v, int *ndigits)
{
    uint64_t acc = 0;
    int n = 0;
    for (; isdigit((unsigned char)**p); (*p)++, n++) {
        unsigned d = (unsigned)(**p - '0');
        if (acc > (UINT64_MAX - d) / 10) return SW_EINVAL;
        acc = acc * 10 + d;
    }
    *v = acc;
    *ndigits = n;
    return 0;
}

int cfg_value_parse_size(const char *s, uint64_t *out, const char **why)
{
    uint64_t v;
    int n;
    *why = "invalid size (examples: 1024, 512KiB, 16MiB, 4GiB)";
    if (!s || !*s) return SW_EINVAL;
    if (*s == '-') { *why = "a size cannot be negative"; return SW_EINVAL; }
    const char *p = s;
    if (read_digits(&p, &v, &n) != 0) { *why = "size is too large"; return SW_EINVAL; }
    if (n == 0) return SW_EINVAL;
    if (*p == '.' || *p == ',') {
        *why = "a size is a whole number (use a smaller unit, e.g. 1536KiB)";
        return SW_EINVAL;
    }
    while (*p == ' ') p++;
    for (size_t i = 0; i < sizeof size_units / sizeof size_units[0]; i++) {
        if (strcasecmp(p, size_units[i].unit) != 0) continue;
        if (v > UINT64_MAX / size_units[i].mult) { *why = "size is too large"; return SW_EINVAL; }
        *out = v * size_units[i].mult;
        return 0;
    }
    *why = "unknown size unit (use B, KB, KiB, MB, MiB, GB, GiB, TB or TiB)";
    return SW_EINVAL;
}

int cfg_parse_size(const char *s, uint64_t *out)
{
    const char *why;
    return cfg_value_parse_size(s, out, &why);
}

/* ---- durations ---- */

static const struct { const char *unit; uint64_t ns; } dur_units[] = {
    { "ns", 1ull }, { "us", 1000ull }, { "\xc2\xb5s", 1000ull }, { "ms", 1000000ull },
    { "s", 1000000000ull }, { "m", 60000000000ull }, { "h", 3600000000000ull },
};

static uint64_t dur_unit_ns(const char *u, size_t len)
{
    for (size_t i = 0; i < sizeof dur_units / sizeof dur_units[0]; i++)
        if (strlen(dur_units[i].unit) == len && memcmp(u, dur_units[i].unit, len) == 0)
            return dur_units[i].ns;
    return 0;
}

/* One "<number>[.<fraction>]<unit>" term at *p, in nanoseconds. */
static int dur_term(const char **p, uint64_t *ns, const char **why)
{
    uint64_t ip = 0, fp = 0, scale = 1;
    int n = 0, fn = 0;
    if (read_digits(p, &ip, &n) != 0) { *why = "duration is too large"; return SW_EINVAL; }
    if (**p == '.') {
        for ((*p)++; isdigit((unsigned char)**p); (*p)++, fn++)
            if (fn < 9) { fp = fp * 10 + (uint64_t)(**p - '0'); scale *= 10; }
    }
    if (n == 0 && fn == 0) return SW_EINVAL;
    const char *u = *p;
    while (**p && !isdigit((unsigned char)**p) && **p != '.') (*p)++;
    size_t ulen = (size_t)(*p - u);
    if (ulen == 0) {
        *why = "a duration needs a unit: ns, us, ms, s, m or h (e.g. 500ms, 10s)";
        return SW_EINVAL;
    }
    uint64_t unit = dur_unit_ns(u, ulen);
    if (unit == 0) { *why = "unknown duration unit (use ns, us, ms, s, m or h)"; return SW_EINVAL; }
    if (ip > UINT64_MAX / unit) { *why = "duration is too large"; return SW_EINVAL; }
    __extension__ unsigned __int128 frac = (unsigned __int128)fp * unit / scale;
    if (frac > UINT64_MAX - ip * unit) { *why = "duration is too large"; return SW_EINVAL; }
    *ns = ip * unit + (uint64_t)frac;
    return 0;
}

int cfg_value_parse_duration(const char *s, uint64_t *ms, const char **why)
{
    uint64_t total = 0, ns;
    *why = "invalid duration (examples: 250us, 500ms, 10s, 5m, 1h30m)";
    if (!s || !*s) return SW_EINVAL;
    if (*s == '-') { *why = "a duration cannot be negative"; return SW_EINVAL; }
    const char *p = s;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.') return SW_EINVAL;
        if (dur_term(&p, &ns, why) != 0) return SW_EINVAL;
        if (ns > UINT64_MAX - total) { *why = "duration is too large"; return SW_EINVAL; }
        total += ns;
    }
    /* Sub-millisecond remainders round up: a positive duration never becomes 0. */
    *ms = total / 1000000u + (total % 1000000u ? 1 : 0);
    return 0;
}

int cfg_parse_duration_ms(const char *s, uint64_t *out)
{
    const char *why;
    return cfg_value_parse_duration(s, out, &why);
}

/* ---- booleans and numbers ---- */

int cfg_value_parse_bool(const char *s, int *out)
{
    static const char *yes[] = { "true", "yes", "on" }, *no[] = { "false", "no", "off" };
    for (int i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) { *out = 1; return 0; }
        if (strcasecmp(s, no[i]) == 0) { *out = 0; return 0; }
    }
    return SW_EINVAL;
}

int cfg_value_parse_int(const char *s, int64_t *out)
{
    const char *p = s;
    int neg = 0, n;
    uint64_t v;
    if (*p == '-' || *p == '+') neg = (*p++ == '-');
    if (read_digits(&p, &v, &n) != 0 || n == 0 || *p) return SW_EINVAL;
    if (v > (uint64_t)INT64_MAX) return SW_EINVAL;
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

int cfg_value_parse_double(const char *s, double *out)
{
    char *end;
    if (!*s || strspn(s, "0123456789.eE+-") != strlen(s)) return SW_EINVAL;
    errno = 0;
    double d = strtod(s, &end);
    if (*end || errno == ERANGE || !isfinite(d)) return SW_EINVAL;
    *out = d;
    return 0;
}

/* ---- host:port ---- */

static int parse_port(const char *s, uint16_t *port)
{
    int64_t v;
    if (!isdigit((unsigned char)*s) || strlen(s) > 5) return SW_EINVAL;
    if (cfg_value_parse_int(s, &v) != 0 || v > 65535) return SW_EINVAL;
    *port = (uint16_t)v;
    return 0;
}

static int valid_hostname(const char *h, size_t n)
{
    if (n == 0 || n > 253) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)h[i]) && !strchr("-._", h[i])) return 0;
    return 1;
}

int cfg_split_hostport(const char *s, char **host, uint16_t *port)
{
    const char *h, *colon;
    size_t hlen;
    char tmp[64];
    uint16_t p;
    if (!s) return SW_EINVAL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':') return SW_EINVAL;
        h = s + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (hlen == 0 || hlen >= sizeof tmp) return SW_EINVAL;
        memcpy(tmp, h, hlen);
        tmp[hlen] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, tmp, &a6) != 1) return SW_EINVAL;
    } else {
        colon = strchr(s, ':');
        if (!colon || strchr(colon + 1, ':')) return SW_EINVAL;
        h = s;
        hlen = (size_t)(colon - s);
        if (!valid_hostname(h, hlen)) return SW_EINVAL;
    }
    if (parse_port(colon + 1, &p) != 0) return SW_EINVAL;
    char *out = strndup(h, hlen);
    if (!out) return SW_ENOMEM;
    *host = out;
    *port = p;
    return 0;
}

/* ---- ${env:NAME} and ${env:NAME:-default} ---- */

/* Expands the reference starting at p ("${..."); returns the text after it
 * or NULL with *err set. */
static const char *expand_ref(const char *p, buf *b, const char **err)
{
    if (strncmp(p + 2, "env:", 4) != 0) {
        *err = "malformed reference: only ${env:NAME} and ${env:NAME:-default} are supported";
        return NULL;
    }
    const char *name = p + 6, *q = name;
    if (isalpha((unsigned char)*q) || *q == '_')
        while (isalnum((unsigned char)*q) || *q == '_') q++;
    size_t nlen = (size_t)(q - name);
    const char *def = NULL, *end;
    if (nlen == 0) {
        *err = strchr(name, '}') ? "malformed ${env:NAME} reference: bad or missing variable name"
                                 : "unterminated ${env:...} reference (missing '}')";
        return NULL;
    }
    if (q[0] == ':' && q[1] == '-') {
        def = q + 2;
        end = strchr(def, '}');
    } else {
        end = (*q == '}') ? q : NULL;
        if (*q && *q != '}') { *err = "malformed ${env:NAME} reference: expected '}' or ':-default'"; return NULL; }
    }
    if (!end) { *err = "unterminated ${env:...} reference (missing '}')"; return NULL; }
    char vname[256];
    if (nlen >= sizeof vname) { *err = "environment variable name too long"; return NULL; }
    memcpy(vname, name, nlen);
    vname[nlen] = '\0';
    const char *val = getenv(vname);
    int rc = 0;
    if (val && (*val || !def)) rc = buf_append_str(b, val);
    else if (def) rc = buf_append(b, def, (size_t)(end - def));
    if (rc != 0) { *err = rc == SW_ENOMEM ? "out of memory" : "expanded value too long"; return NULL; }
    return end + 1;
}

char *cfg_expand_env(const char *s, const char **err)
{
    buf b;
    char *out = NULL;
    int rc = 0;
    buf_init(&b, ENV_MAX_LEN);
    while (*s && rc == 0) {
        if (s[0] == '$' && s[1] == '$' && s[2] == '{') {   /* "$${" is a literal "${" */
            rc = buf_append(&b, "${", 2);
            s += 3;
        } else if (s[0] == '$' && s[1] == '{') {
            s = expand_ref(s, &b, err);
            if (!s) goto done;
        } else {
            rc = buf_append(&b, s++, 1);
        }
    }
    if (rc == 0) rc = buf_append(&b, "", 1);
    if (rc != 0) { *err = rc == SW_ENOMEM ? "out of memory" : "expanded value too long"; goto done; }
    size_t n;
    out = (char *)buf_steal(&b, &n);
done:
    buf_destroy(&b);
    return out;
}

/* ---- formatting (messages, docs) ---- */

void cfg_value_format(cfg_ftype t, double v, char *out, size_t len)
{
    static const char *su[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    if (t == CFT_SIZE) {
        uint64_t b = (uint64_t)v;
        int i = 0;
        while (i < 4 && b >= 1024 && b % 1024 == 0) { b /= 1024; i++; }
        snprintf(out, len, "%llu%s", (unsigned long long)b, i ? su[i] : "");
    } else if (t == CFT_DURATION) {
        uint64_t ms = (uint64_t)v;
        if (ms && ms % 3600000 == 0) snprintf(out, len, "%lluh", (unsigned long long)(ms / 3600000));
        else if (ms && ms % 60000 == 0) snprintf(out, len, "%llum", (unsigned long long)(ms / 60000));
        else if (ms && ms % 1000 == 0) snprintf(out, len, "%llus", (unsigned long long)(ms / 1000));
        else snprintf(out, len, "%llums", (unsigned long long)ms);
    } else {
        snprintf(out, len, "%.15g", v);
    }
}

/* ---- typed store of one value into a field ---- */

static int check_range(const cfg_field *f, double v, char *msg, size_t len)
{
    int lo = (f->flags & CFF_MIN_EXCL) ? v > f->min : v >= f->min;
    int hi = (f->flags & CFF_MAX_EXCL) ? v < f->max : v <= f->max;
    char a[32], b[32], s[32];
    if (lo && hi) {
        uint64_t u = (uint64_t)v;
        if (!(f->flags & CFF_POW2) || (u && (u & (u - 1)) == 0)) return 0;
        snprintf(msg, len, "must be a power of two (e.g. 65536)");
        return SW_EINVAL;
    }
    cfg_value_format(f->type, v, s, sizeof s);
    cfg_value_format(f->type, f->min, a, sizeof a);
    cfg_value_format(f->type, f->max, b, sizeof b);
    snprintf(msg, len, "%s is out of range: must be in %c%s, %s%c", s,
             (f->flags & CFF_MIN_EXCL) ? '(' : '[', a, b, (f->flags & CFF_MAX_EXCL) ? ')' : ']');
    return SW_EINVAL;
}

static int check_string(const cfg_field *f, const char *text, char *msg, size_t len)
{
    char *host = NULL;
    uint16_t port;
    if ((f->flags & CFF_NONEMPTY) && !*text) {
        snprintf(msg, len, "must not be empty");
        return SW_EINVAL;
    }
    if (f->type == CFT_HOSTPORT && !*text && (f->flags & CFF_EMPTY_OK)) return 0;
    if (f->type == CFT_HOSTPORT) {
        int rc = cfg_split_hostport(text, &host, &port);
        free(host);
        if (rc == SW_EINVAL)
            snprintf(msg, len, "invalid endpoint \"%s\": expected host:port or [ipv6]:port, port 0..65535", text);
        return rc;
    }
    if (f->type == CFT_URL) {
        size_t skip = strncmp(text, "http://", 7) == 0 ? 7 : strncmp(text, "https://", 8) == 0 ? 8 : 0;
        if (skip == 0 || !text[skip] || strpbrk(text, " \t\r\n")) {
            snprintf(msg, len, "invalid endpoint \"%s\": must start with http:// or https:// followed by a host", text);
            return SW_EINVAL;
        }
    }
    return 0;
}

static int set_string(char **dst, const cfg_field *f, const char *text, char *msg, size_t len)
{
    int rc = check_string(f, text, msg, len);
    if (rc != 0) return rc;
    char *s = strdup(text);
    if (!s) return SW_ENOMEM;
    free(*dst);
    *dst = s;
    return 0;
}

static int set_enum(char *dst, const cfg_field *f, const char *text, char *msg, size_t len)
{
    size_t used = 0;
    for (const cfg_enum_val *e = f->enums; e->name; e++)
        if (strcmp(e->name, text) == 0) { memcpy(dst, &e->value, sizeof e->value); return 0; }
    used = (size_t)snprintf(msg, len, "invalid value \"%s\": expected one of", text);
    for (const cfg_enum_val *e = f->enums; e->name && used < len; e++)
        used += (size_t)snprintf(msg + used, len - used, "%s %s", e == f->enums ? "" : " |", e->name);
    return SW_EINVAL;
}

static int set_number(cfg *c, const cfg_field *f, const char *text, char *msg, size_t len)
{
    char *dst = (char *)c + f->offset;
    const char *why = NULL;
    uint64_t u = 0;
    int64_t i = 0;
    double d = 0;
    int rc;
    switch (f->type) {
    case CFT_SIZE: rc = cfg_value_parse_size(text, &u, &why); d = (double)u; break;
    case CFT_DURATION: rc = cfg_value_parse_duration(text, &u, &why); d = (double)u; break;
    case CFT_DOUBLE: rc = cfg_value_parse_double(text, &d); why = "expected a number"; break;
    default: rc = cfg_value_parse_int(text, &i); d = (double)i; why = "expected an integer"; break;
    }
    if (rc != 0) { snprintf(msg, len, "\"%s\": %s", text, why); return SW_EINVAL; }
    if (check_range(f, d, msg, len) != 0) return SW_EINVAL;
    switch (f->type) {
    case CFT_SIZE: case CFT_DURATION: memcpy(dst, &u, sizeof u); break;
    case CFT_DOUBLE: memcpy(dst, &d, sizeof d); break;
    case CFT_UINT: { uint32_t v = (uint32_t)i; memcpy(dst, &v, sizeof v); break; }
    default: { int v = (int)i; memcpy(dst, &v, sizeof v); break; }
    }
    return 0;
}

int cfg_value_set(cfg *c, const cfg_field *f, const char *text, char *msg, size_t msglen)
{
    char *dst = (char *)c + f->offset;
    int b;
    msg[0] = '\0';
    switch (f->type) {
    case CFT_STRING: case CFT_HOSTPORT: case CFT_URL:
        return set_string((char **)(void *)dst, f, text, msg, msglen);
    case CFT_BOOL:
        if (cfg_value_parse_bool(text, &b) != 0) {
            snprintf(msg, msglen, "invalid boolean \"%s\": expected true/false, yes/no or on/off", text);
            return SW_EINVAL;
        }
        memcpy(dst, &b, sizeof b);
        return 0;
    case CFT_ENUM:
        return set_enum(dst, f, text, msg, msglen);
    case CFT_UINT: case CFT_INT: case CFT_DOUBLE: case CFT_SIZE: case CFT_DURATION:
        return set_number(c, f, text, msg, msglen);
    default:
        snprintf(msg, msglen, "internal error: field is not a scalar");
        return SW_EINVAL;
    }
}
