/* fuzz_httpd.c — the HTTP/1.1 request parser (runtime/httpd_parse.h).
 *
 * The input is a stream of pipelined requests, framed the way a server
 * connection frames them: blank lines skipped, a head found and parsed in
 * place, then a Content-Length body skipped or a chunked body decoded in
 * place, fed in pieces whose size comes from the first input byte. Checks
 * the decoder's invariants (output within cap and within the input) and
 * that the early refusal of a partial head (httpd_head_prefix_check) never
 * refuses the start of a head that parses. Each head is also parsed as a
 * response head (httpd_parse_response_head, the exporter's client).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/httpd_parse.h"

#define CAP 4096

/* Decodes a chunked body at b[0..len) in pieces of step bytes; returns the
 * bytes consumed, or 0 when it failed or is incomplete. */
static size_t chunked(uint8_t *b, size_t len, size_t step)
{
    httpd_chunked c;
    httpd_chunked_init(&c);
    int rc = 0;
    for (size_t have = 0; rc == 0 && have < len;) {
        have = len - have < step ? len : have + step;
        rc = httpd_chunked_step(&c, b, have, CAP, 1024);
        if (c.out > CAP || c.out > c.in || c.in > have) abort();
    }
    return rc == 1 ? c.in : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static httpd_head h;
    if (size < 1) return 0;
    size_t step = (size_t)data[0] % 64 + 1;
    char *b = malloc(size);
    if (!b) return 0;
    memcpy(b, data + 1, size - 1);
    size_t len = size - 1, off = 0;
    while (off < len) {
        while (off < len && (b[off] == '\r' || b[off] == '\n')) off++;
        size_t scan = 0, end = httpd_head_end(b + off, len - off, &scan);
        /* The early check never refuses a prefix of a head that parses. */
        int early = 0;
        for (size_t k = 1; k <= (end ? end : len - off) && k <= 64 && !early; k++)
            early = httpd_head_prefix_check(b + off, k);
        if (end == 0) break;
        char copy[64];
        size_t cl = end < sizeof copy ? end : sizeof copy;
        memcpy(copy, b + off, cl);
        /* The same head read as an answer (the exporter's client). */
        char *resp = malloc(end);
        if (resp) {
            memcpy(resp, b + off, end);
            if (httpd_parse_response_head(resp, end, &h) == 0 &&
                (h.status < 100 || h.status > 599 || h.method || (h.chunked && h.content_length >= 0)))
                abort();
            free(resp);
        }
        int parsed = httpd_parse_head(b + off, end, &h);
        if (parsed == 0 && early != 0) abort();
        if (early != 0 && httpd_head_prefix_check(copy, cl) == 0) abort();
        if (parsed != 0) break;
        (void)httpd_head_field(&h, "content-type");
        off += end;
        if (h.chunked) {
            size_t used = chunked((uint8_t *)b + off, len - off, step);
            if (used == 0) break;
            off += used;
        } else if (h.content_length > 0) {
            if ((uint64_t)h.content_length > len - off) break;
            off += (size_t)h.content_length;
        }
    }
    free(b);
    return 0;
}
