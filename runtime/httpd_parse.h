/* httpd_parse.h — the HTTP/1.1 request parser behind runtime/httpd.h.
 *
 * Pure functions over a caller's mutable buffer (no I/O, no allocation), so
 * they can be fuzzed on their own (testing/fuzz/fuzz_httpd.c). Any thread.
 *
 * A request head is found with httpd_head_end() (incremental: it resumes
 * from *scan), then parsed in place by httpd_parse_head(): the request
 * line's parts, header names and values are NUL-terminated inside the
 * buffer and the head keeps pointers to them (borrowed from the buffer).
 * A chunked body is decoded in place by httpd_chunked_step(): chunk data is
 * moved down so the decoded body is contiguous at the start of the body
 * area. Errors are HTTP statuses returned negated (-400, -413, ...).
 */
#ifndef SW_HTTPD_PARSE_H
#define SW_HTTPD_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define HTTPD_MAX_HEADERS 100      /* header fields per request; 431 above */
#define HTTPD_MAX_CHUNK_LINE 4096  /* chunk-size line incl. extensions; 400 above */
#define HTTPD_MAX_METHOD 32        /* method token length; 400 above */

typedef struct httpd_field {
    const char *name;              /* NUL-terminated, as sent */
    const char *value;             /* NUL-terminated, leading/trailing blanks cut */
} httpd_field;

typedef struct httpd_head {
    const char *method;            /* token, e.g. "POST"; NULL in a response */
    int status;                    /* a response's status code; 0 in a request */
    const char *path;              /* request target up to '?' */
    const char *query;             /* after '?', or "" */
    int minor;                     /* HTTP/1.<minor>: 0 or 1 */
    size_t nfields;
    httpd_field fields[HTTPD_MAX_HEADERS];
    int64_t content_length;        /* -1 when absent */
    int chunked;                   /* Transfer-Encoding: chunked */
    int keep_alive;                /* the connection may stay open after it */
    int expect_continue;           /* Expect: 100-continue */
} httpd_head;

/* Finds the end of a request head in b[0..len): returns the head length
 * (through the empty line) or 0 when it is not complete yet. *scan is the
 * resume offset (start at 0, keep between calls on the same head). Lines
 * end with CRLF or a bare LF. */
size_t httpd_head_end(const char *b, size_t len, size_t *scan);

/* Parses the complete head b[0..len) (len from httpd_head_end) in place.
 * 0, or a negated status: -400 malformed, -431 too many fields, -501
 * unsupported Transfer-Encoding, -505 HTTP version other than 1.0/1.1, -400
 * also for a repeated Content-Encoding field,
 * -417 an Expect other than 100-continue. */
int httpd_parse_head(char *b, size_t len, httpd_head *h);

/* Parses the complete head of a response b[0..len) in place, for an HTTP
 * client: status line "HTTP/1.x NNN [reason]" (status), fields, and what
 * frames the body (content_length, chunked, keep_alive; method and path
 * NULL). Same field rules as a request. 0, or -400 malformed, -431 too
 * many fields, -501 a Transfer-Encoding other than chunked, -505 not
 * HTTP/1.x. */
int httpd_parse_response_head(char *b, size_t len, httpd_head *h);

/* Checks the start b[0..len) of a head that is not complete yet, so that
 * input that cannot become an HTTP/1.x request line is refused at once
 * instead of after a timeout: 0 (could still be one), -400 (not a method
 * token, a control byte or a line end in the target, an HTTP/0.9 line, not
 * "HTTP/"), -505 (HTTP/2.0, the HTTP/2 preface, HTTP/1.2 ...). */
int httpd_head_prefix_check(const char *b, size_t len);

/* The value of field `name` (case-insensitive), or NULL. Borrowed. */
const char *httpd_head_field(const httpd_head *h, const char *name);

/* Chunked decoder state; zero it (or httpd_chunked_init) per body. */
typedef struct httpd_chunked {
    int state;
    uint64_t left;                 /* bytes left in the current chunk */
    size_t in;                     /* read cursor in the body area */
    size_t out;                    /* decoded bytes at the start of the area */
    size_t trailer;                /* trailer bytes seen */
} httpd_chunked;

void httpd_chunked_init(httpd_chunked *c);
/* Decodes what it can of the chunked body in b[0..len) (the bytes after
 * the head; len only grows between calls). Returns 1 when the body and its
 * trailers are complete (c->out: body length at b[0]; c->in: bytes
 * consumed), 0 for more input, -413 as soon as the body would pass cap,
 * -400 on a malformed chunk, -431 on trailers over max_trailer bytes. */
int httpd_chunked_step(httpd_chunked *c, uint8_t *b, size_t len, size_t cap,
                       size_t max_trailer);

#endif
