/* fl_batch.c — LogRecord and ExportLogsServiceRequest encoding. */
#include "receivers/filelog/fl_batch.h"

#include <string.h>

#include "receivers/filelog/fl_enc.h"
#include "runtime/err.h"

void fl_batch_init(fl_batch *b, size_t max)
{
    memset(b, 0, sizeof *b);
    buf_init(&b->recs, max);
}

void fl_batch_destroy(fl_batch *b) { buf_destroy(&b->recs); }

void fl_batch_reset(fl_batch *b)
{
    buf_reset(&b->recs);
    b->n = 0;
    b->first_ns = 0;
}

/* 1 if p[0..n) is well-formed UTF-8 (no overlongs, surrogates or values
 * past U+10FFFF): protobuf string fields must be. */
static int utf8_valid(const uint8_t *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = p[i];
        if (c < 0x80) { i++; continue; }
        size_t k = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : 0;
        if (!k || c > 0xf4 || n - i <= k) return 0;
        uint8_t c1 = p[i + 1];
        if ((c1 & 0xc0) != 0x80) return 0;
        if ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 > 0x9f) || (c == 0xf0 && c1 < 0x90) ||
            (c == 0xf4 && c1 > 0x8f))
            return 0;
        for (size_t j = 2; j <= k; j++)
            if ((p[i + j] & 0xc0) != 0x80) return 0;
        i += k + 1;
    }
    return 1;
}

static size_t kv_str_size(size_t klen, size_t vlen)
{
    return fl_len_field(1, fl_len_field(1, klen) + fl_len_field(2, fl_len_field(1, vlen)));
}

/* Size of the LogRecord message body of r. */
static size_t record_size(const fl_record *r)
{
    size_t n = 9 + 9 + fl_len_field(5, fl_len_field(1, r->len)); /* observed, time, body */
    if (!r->time_ns) n -= 9;
    if (r->stream) n += kv_str_size(12, 6);
    if (r->path) n += kv_str_size(13, strlen(r->path));
    if (r->truncated) n += fl_len_field(6, fl_len_field(1, sizeof FL_ATTR_TRUNCATED - 1) + 4);
    if (r->error) n += kv_str_size(sizeof FL_ATTR_PARSE_ERROR - 1, strlen(r->error));
    return n;
}

static int put_record(buf *o, const fl_record *r)
{
    int rc = 0;
    if (r->time_ns) rc = fl_put_fixed64(o, 1, (uint64_t)r->time_ns);
    /* A body that is not UTF-8 goes as bytes_value (7), not string_value (1). */
    unsigned vf = utf8_valid((const uint8_t *)r->body, r->len) ? 1 : 7;
    if (!rc) rc = fl_put_len(o, 5, fl_len_field(vf, r->len));
    if (!rc) rc = fl_put_bytes(o, vf, r->body, r->len);
    if (!rc && r->stream)
        rc = fl_put_kv_str(o, 6, "log.iostream", 12, r->stream == FL_STREAM_STDERR ? "stderr" : "stdout", 6);
    if (!rc && r->path) rc = fl_put_kv_str(o, 6, "log.file.path", 13, r->path, strlen(r->path));
    if (!rc && r->truncated) rc = fl_put_kv_true(o, 6, FL_ATTR_TRUNCATED);
    if (!rc && r->error)
        rc = fl_put_kv_str(o, 6, FL_ATTR_PARSE_ERROR, sizeof FL_ATTR_PARSE_ERROR - 1, r->error,
                           strlen(r->error));
    if (!rc) rc = fl_put_fixed64(o, 11, (uint64_t)r->observed_ns);
    return rc;
}

int fl_batch_add(fl_batch *b, const fl_record *r, int64_t now_ns)
{
    size_t body = record_size(r), before = b->recs.len;
    if (fl_len_field(2, body) > b->recs.max - b->recs.len) return SW_ETOOBIG;
    int rc = buf_reserve(&b->recs, fl_len_field(2, body));
    if (!rc) rc = fl_put_len(&b->recs, 2, body);
    if (!rc) rc = put_record(&b->recs, r);
    if (rc) {
        b->recs.len = before;
        return rc;
    }
    if (!b->n++) b->first_ns = now_ns;
    return 0;
}

int fl_batch_build(const fl_batch *b, const uint8_t *resource, size_t res_len, buf *out)
{
    static const char scope[] = FL_SCOPE_NAME;
    size_t scope_msg = fl_len_field(1, sizeof scope - 1);
    size_t sl = fl_len_field(1, scope_msg) + b->recs.len;          /* ScopeLogs */
    size_t rl = fl_len_field(1, res_len) + fl_len_field(2, sl);    /* ResourceLogs */
    int rc = buf_reserve(out, fl_len_field(1, rl));
    if (!rc) rc = fl_put_len(out, 1, rl);
    if (!rc) rc = fl_put_bytes(out, 1, resource, res_len);
    if (!rc) rc = fl_put_len(out, 2, sl);
    if (!rc) rc = fl_put_len(out, 1, scope_msg);
    if (!rc) rc = fl_put_bytes(out, 1, scope, sizeof scope - 1);
    if (!rc) rc = buf_append(out, b->recs.data, b->recs.len);
    return rc;
}
