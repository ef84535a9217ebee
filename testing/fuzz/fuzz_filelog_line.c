/* fuzz_filelog_line.c — the filelog receiver's line parser on untrusted
 * input: Docker json-file lines (and raw lines), the joining of partial
 * pieces and the batch encoding of what comes out.
 *
 * Input: lines separated by '\n', parsed like the tailer does. Whatever the
 * input, nothing crashes; a malformed line comes back whole as the body
 * with an error reason; a joined record never exceeds its cap; every batch
 * built from the records passes the OTLP wire walk and counts exactly the
 * records added.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "receivers/filelog/fl_batch.h"
#include "receivers/filelog/fl_parse.h"
#include "runtime/otlp_wire.h"

#define JOIN_MAX 4096

static void add(fl_batch *b, const char *body, size_t len, const fl_line *l, int truncated)
{
    fl_record r = { body, len, l->stream, l->time_ns, 1, truncated, l->error, NULL };
    if (fl_batch_add(b, &r, 1) != 0) abort(); /* the cap fits every record here */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static fl_parser *p;
    if (!p && !(p = fl_parser_new())) abort();
    fl_join j;
    fl_batch b;
    buf out;
    fl_join_init(&j, JOIN_MAX);
    fl_batch_init(&b, 64 * (size + JOIN_MAX + 512));
    buf_init(&out, 64 * (size + JOIN_MAX + 512) + 1024);
    const char *s = (const char *)data, *end = s + size;
    uint32_t records = 0;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t len = nl ? (size_t)(nl - s) : (size_t)(end - s);
        fl_line l, raw;
        if (fl_parse_docker(p, s, len, &l) != 0) abort();
        fl_parse_raw(s, len, &raw);
        if (raw.body_len > len || (l.error && (l.body != s || l.body_len != raw.body_len))) abort();
        if (l.error) {
            add(&b, l.body, l.body_len, &l, 0);
            records++;
        } else if (l.partial || j.active) {
            if (fl_join_add(&j, &l) == 1) {
                if (j.b.len > JOIN_MAX) abort();
                add(&b, j.b.data ? (const char *)j.b.data : "", j.b.len, &l, j.truncated);
                records++;
                fl_join_reset(&j);
            }
        } else {
            add(&b, l.body, l.body_len, &l, 0);
            records++;
        }
        s += len + (nl ? 1 : 0);
    }
    if (b.n != records) abort();
    if (records) {
        uint32_t items = 0;
        const char *why;
        if (fl_batch_build(&b, (const uint8_t *)"", 0, &out) != 0) abort();
        if (ow_validate(SIG_LOGS, out.data, out.len, &items, &why) != 0 || items != records) abort();
    }
    buf_destroy(&out);
    fl_batch_destroy(&b);
    fl_join_destroy(&j);
    return 0;
}
