/* httpd_parse.c — see httpd_parse.h. Pure: no I/O, no allocation.
 *
 * Strict where leniency would let two parsers disagree about where a
 * request ends (RFC 9112 section 11.2, request smuggling): Content-Length
 * is digits only and must agree with any repetition, Transfer-Encoding is
 * "chunked" or refused, both together are refused, header names end at the
 * colon with no blank before it, and obsolete line folding is refused.
 * Lenient where it costs nothing: a bare LF ends a line, header values may
 * hold obs-text bytes. HTTP/1.x with x > 1 does not exist: 505. A second
 * Content-Encoding field is refused (400) rather than half-read.
 */
#include "runtime/httpd_parse.h"

#include <string.h>
#include <strings.h>

enum { CS_SIZE = 0, CS_DATA, CS_DATA_END, CS_TRAILER, CS_DONE };

/* RFC 9110 tchar. */
static int is_tchar(unsigned char ch)
{
    if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'))
        return 1;
    return ch && strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static int is_blank(char ch) { return ch == ' ' || ch == '\t'; }

static int hexval(unsigned char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

size_t httpd_head_end(const char *b, size_t len, size_t *scan)
{
    size_t i = *scan;
    while (i < len) {
        const char *nl = memchr(b + i, '\n', len - i);
        if (!nl) break;
        size_t p = (size_t)(nl - b);
        if ((p >= 1 && b[p - 1] == '\n') || (p >= 2 && b[p - 1] == '\r' && b[p - 2] == '\n'))
            return p + 1;
        i = p + 1;
    }
    *scan = len;
    return 0;
}

/* Cuts the line at *pos (ending in LF, optional CR before it) with a NUL
 * and returns it; *pos moves past the LF. NULL when no LF is left. */
static char *next_line(char *b, size_t len, size_t *pos)
{
    char *line = b + *pos;
    char *nl = memchr(line, '\n', len - *pos);
    if (!nl) return NULL;
    *pos = (size_t)(nl - b) + 1;
    if (nl > line && nl[-1] == '\r') nl--;
    *nl = '\0';
    return line;
}

/* "HTTP/1.1" -> minor. -400 not a version, -505 not HTTP/1.x. */
static int parse_version(const char *v, int *minor)
{
    if (strncmp(v, "HTTP/", 5) != 0 || v[5] < '0' || v[5] > '9' ||
        v[6] != '.' || v[7] < '0' || v[7] > '9' || v[8] != '\0')
        return -400;
    if (v[5] != '1' || v[7] > '1') return -505;
    *minor = v[7] == '0' ? 0 : 1;
    return 0;
}

/* Request target -> path and query. Origin form, absolute form (the path
 * part is used) or "*". */
static int parse_target(char *t, httpd_head *h)
{
    for (const unsigned char *p = (const unsigned char *)t; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f) return -400;
    if (strncasecmp(t, "http://", 7) == 0 || strncasecmp(t, "https://", 8) == 0) {
        char *auth = strstr(t, "//") + 2;
        char *slash = strpbrk(auth, "/?");
        if (!slash || *slash == '?') {
            h->path = "/";
            h->query = slash ? slash + 1 : "";
            return 0;
        }
        t = slash;
    } else if (t[0] != '/' && strcmp(t, "*") != 0) {
        return -400;
    }
    char *q = strchr(t, '?');
    h->query = "";
    if (q) {
        *q = '\0';
        h->query = q + 1;
    }
    h->path = t;
    return 0;
}

static int parse_request_line(char *line, httpd_head *h)
{
    char *sp1 = strchr(line, ' ');
    if (!sp1 || sp1 == line) return -400;
    char *sp2 = strchr(sp1 + 1, ' ');
    if (!sp2 || sp2 == sp1 + 1) return -400;
    if (sp1 - line > HTTPD_MAX_METHOD) return -400;
    *sp1 = '\0';
    *sp2 = '\0';
    for (const char *p = line; *p; p++)
        if (!is_tchar((unsigned char)*p)) return -400;
    h->method = line;
    int rc = parse_version(sp2 + 1, &h->minor);
    if (rc != 0) return rc;
    return parse_target(sp1 + 1, h);
}

/* Content-Length: 1*DIGIT; an absurd value saturates (it fails the cap). */
static int parse_length(const char *v, int64_t *out)
{
    int64_t n = 0;
    if (!*v) return -400;
    for (; *v; v++) {
        if (*v < '0' || *v > '9') return -400;
        n = n > (INT64_MAX - 9) / 10 ? INT64_MAX : n * 10 + (*v - '0');
    }
    *out = n;
    return 0;
}

/* Connection: a comma-separated token list. */
static void parse_connection(const char *v, int *close, int *keep)
{
    while (*v) {
        while (*v == ',' || is_blank(*v)) v++;
        size_t n = strcspn(v, ", \t");
        if (n == 5 && strncasecmp(v, "close", 5) == 0) *close = 1;
        if (n == 10 && strncasecmp(v, "keep-alive", 10) == 0) *keep = 1;
        v += n;
    }
}

typedef struct head_flags {
    int close, keep;
    int cenc;                  /* Content-Encoding fields seen */
    int response;              /* Expect and Content-Encoding are a request's */
} head_flags;

static int apply_field(httpd_head *h, const httpd_field *f, head_flags *fl)
{
    if (fl->response && (strcasecmp(f->name, "content-encoding") == 0 ||
                         strcasecmp(f->name, "expect") == 0))
        return 0;
    if (strcasecmp(f->name, "content-length") == 0) {
        int64_t n;
        if (parse_length(f->value, &n) != 0) return -400;
        if (h->content_length >= 0 && h->content_length != n) return -400;
        h->content_length = n;
    } else if (strcasecmp(f->name, "transfer-encoding") == 0) {
        if (h->chunked) return -400;
        if (strcasecmp(f->value, "chunked") != 0) return -501;
        h->chunked = 1;
    } else if (strcasecmp(f->name, "content-encoding") == 0) {
        if (fl->cenc++) return -400;
    } else if (strcasecmp(f->name, "connection") == 0) {
        parse_connection(f->value, &fl->close, &fl->keep);
    } else if (strcasecmp(f->name, "expect") == 0) {
        if (strcasecmp(f->value, "100-continue") != 0) return -417;
        h->expect_continue = h->minor >= 1;
    }
    return 0;
}

/* "Name: value" -> field. */
static int parse_field(char *line, httpd_field *f)
{
    char *colon = line;
    while (is_tchar((unsigned char)*colon)) colon++;
    if (colon == line || *colon != ':') return -400;
    *colon = '\0';
    char *v = colon + 1;
    while (is_blank(*v)) v++;
    char *e = v + strlen(v);
    for (const unsigned char *p = (const unsigned char *)v; p < (const unsigned char *)e; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) return -400;
    while (e > v && is_blank(e[-1])) e--;
    *e = '\0';
    f->name = line;
    f->value = v;
    return 0;
}

/* The fields after the first line, up to the empty line. */
static int parse_fields(char *b, size_t len, size_t pos, httpd_head *h, head_flags *fl)
{
    char *line;
    int rc;
    while ((line = next_line(b, len, &pos)) != NULL && *line) {
        if (is_blank(*line)) return -400; /* obsolete line folding */
        if (h->nfields == HTTPD_MAX_HEADERS) return -431;
        httpd_field *f = &h->fields[h->nfields];
        if ((rc = parse_field(line, f)) != 0 || (rc = apply_field(h, f, fl)) != 0) return rc;
        h->nfields++;
    }
    if (!line) return -400; /* no empty line: not a complete head */
    if (h->chunked && h->content_length >= 0) return -400;
    h->keep_alive = fl->close ? 0 : (h->minor >= 1 || fl->keep);
    return 0;
}

static void head_reset(httpd_head *h)
{
    h->method = h->path = h->query = NULL;
    h->status = 0;
    h->minor = 0;
    h->nfields = 0;
    h->content_length = -1;
    h->chunked = h->keep_alive = h->expect_continue = 0;
}

/* "HTTP/1.1 200 OK": version, three digits, then a reason (maybe empty)
 * of visible characters, blanks and obs-text. */
static int parse_status_line(char *line, httpd_head *h)
{
    char *sp = strchr(line, ' ');
    if (!sp) return -400;
    *sp = '\0';
    int rc = parse_version(line, &h->minor);
    if (rc != 0) return rc;
    const char *c = sp + 1;
    if (c[0] < '1' || c[0] > '5' || c[1] < '0' || c[1] > '9' || c[2] < '0' || c[2] > '9' ||
        (c[3] != '\0' && c[3] != ' '))
        return -400;
    h->status = (c[0] - '0') * 100 + (c[1] - '0') * 10 + (c[2] - '0');
    for (const unsigned char *p = (const unsigned char *)c + 3; *p; p++)
        if ((*p < 0x20 && *p != '\t') || *p == 0x7f) return -400;
    return 0;
}

/* A request head (response 0) or a response head (1). */
static int parse_message_head(char *b, size_t len, httpd_head *h, int response)
{
    size_t pos = 0;
    head_flags fl = {0, 0, 0, response};
    head_reset(h);
    if (memchr(b, '\0', len)) return -400;
    char *line = next_line(b, len, &pos);
    if (!line) return -400;
    int rc = response ? parse_status_line(line, h) : parse_request_line(line, h);
    if (rc != 0) return rc;
    return parse_fields(b, len, pos, h, &fl);
}

int httpd_parse_head(char *b, size_t len, httpd_head *h)
{
    return parse_message_head(b, len, h, 0);
}

int httpd_parse_response_head(char *b, size_t len, httpd_head *h)
{
    return parse_message_head(b, len, h, 1);
}

/* Version prefix "HTTP/1.0" / "HTTP/1.1" as far as v[0..n) goes. */
static int version_prefix(const char *v, size_t n)
{
    static const char want[] = "HTTP/";
    size_t i = 0;
    for (; i < n && i < 5; i++)
        if (v[i] != want[i]) return -400;
    if (i < n && (v[i] < '0' || v[i] > '9')) return -400;
    if (i < n && v[i] != '1') return -505;
    if (++i < n && v[i] != '.') return -400;
    if (++i < n && (v[i] < '0' || v[i] > '9')) return -400;
    if (i < n && v[i] > '1') return -505;
    if (++i < n && v[i] != '\r' && v[i] != '\n') return -400;
    return 0;
}

int httpd_head_prefix_check(const char *b, size_t len)
{
    size_t i = 0;
    for (; i < len && b[i] != ' '; i++)
        if (!is_tchar((unsigned char)b[i]) || i >= HTTPD_MAX_METHOD) return -400;
    if (i == 0 && len > 0) return -400;
    if (i++ >= len) return 0;
    size_t t = i;
    for (; i < len && b[i] != ' '; i++)
        if ((unsigned char)b[i] <= 0x20 || (unsigned char)b[i] >= 0x7f) return -400;
    if (i == t && i < len) return -400;
    if (i++ >= len) return 0;
    return version_prefix(b + i, len - i);
}

const char *httpd_head_field(const httpd_head *h, const char *name)
{
    for (size_t i = 0; i < h->nfields; i++)
        if (strcasecmp(h->fields[i].name, name) == 0) return h->fields[i].value;
    return NULL;
}

void httpd_chunked_init(httpd_chunked *c) { memset(c, 0, sizeof *c); }

/* Parses "HEX[ext]" in line[0..n) (CR/LF already cut). -400 or 0. */
static int chunk_size(const uint8_t *line, size_t n, uint64_t *size)
{
    size_t i = 0;
    uint64_t v = 0;
    for (; i < n && hexval(line[i]) >= 0; i++) {
        if (v >> 59) return -400; /* more than 2^63: not a real chunk */
        v = v * 16 + (uint64_t)hexval(line[i]);
    }
    if (i == 0) return -400;
    while (i < n && is_blank((char)line[i])) i++;
    if (i < n && line[i] != ';') return -400;
    for (; i < n; i++)
        if ((line[i] < 0x20 && line[i] != '\t') || line[i] == 0x7f) return -400;
    *size = v;
    return 0;
}

/* One line at c->in: its length without CR/LF in *n; 0 if incomplete. */
static int chunk_line(const httpd_chunked *c, const uint8_t *b, size_t len, size_t *n,
                      size_t *next)
{
    const uint8_t *nl = memchr(b + c->in, '\n', len - c->in);
    if (!nl) return 0;
    *next = (size_t)(nl - b) + 1;
    *n = (size_t)(nl - (b + c->in));
    if (*n > 0 && nl[-1] == '\r') (*n)--;
    return 1;
}

static int step_size(httpd_chunked *c, const uint8_t *b, size_t len, size_t cap)
{
    size_t n, next;
    if (!chunk_line(c, b, len, &n, &next))
        return len - c->in > HTTPD_MAX_CHUNK_LINE ? -400 : 0;
    if (n > HTTPD_MAX_CHUNK_LINE) return -400;
    uint64_t size;
    if (chunk_size(b + c->in, n, &size) != 0) return -400;
    if (size > (uint64_t)(cap - c->out)) return -413;
    c->in = next;
    c->left = size;
    c->state = size ? CS_DATA : CS_TRAILER;
    return 1;
}

static int step_data(httpd_chunked *c, uint8_t *b, size_t len)
{
    size_t n = len - c->in;
    if (n > c->left) n = (size_t)c->left;
    if (n == 0) return 0;
    memmove(b + c->out, b + c->in, n);
    c->out += n;
    c->in += n;
    c->left -= n;
    if (c->left) return 0;
    c->state = CS_DATA_END;
    return 1;
}

static int step_data_end(httpd_chunked *c, const uint8_t *b, size_t len)
{
    if (c->in >= len) return 0;
    if (b[c->in] == '\r') {
        if (c->in + 1 >= len) return 0;
        if (b[c->in + 1] != '\n') return -400;
        c->in++;
    } else if (b[c->in] != '\n') {
        return -400;
    }
    c->in++;
    c->state = CS_SIZE;
    return 1;
}

static int step_trailer(httpd_chunked *c, const uint8_t *b, size_t len, size_t max)
{
    size_t n, next;
    if (!chunk_line(c, b, len, &n, &next))
        return c->trailer + (len - c->in) > max ? -431 : 0;
    c->trailer += next - c->in;
    if (c->trailer > max) return -431;
    const uint8_t *line = b + c->in;
    c->in = next;
    if (n == 0) {
        c->state = CS_DONE;
        return 1;
    }
    size_t i = 0;
    while (i < n && is_tchar(line[i])) i++;
    return i > 0 && i < n && line[i] == ':' ? 1 : -400;
}

int httpd_chunked_step(httpd_chunked *c, uint8_t *b, size_t len, size_t cap,
                       size_t max_trailer)
{
    int rc = 1;
    if (c->in > len || c->out > cap) return -400;
    while (rc == 1) {
        switch (c->state) {
        case CS_SIZE: rc = step_size(c, b, len, cap); break;
        case CS_DATA: rc = step_data(c, b, len); break;
        case CS_DATA_END: rc = step_data_end(c, b, len); break;
        case CS_TRAILER: rc = step_trailer(c, b, len, max_trailer); break;
        default: return 1;
        }
    }
    return rc;
}
