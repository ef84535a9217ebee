/* fl_batch.h — log records of one file into an ExportLogsServiceRequest.
 *
 * Records are encoded as they are read (LogRecord messages appended to one
 * buffer); fl_batch_build() wraps them with the file's Resource into
 * ResourceLogs -> ScopeLogs, so a request holds one resource (one container
 * or one plain file). The receiver hands the batch on once it reaches
 * batch.max_bytes or its first record is batch.timeout old. Pure encoding;
 * owned by one tailer (ingest thread).
 *
 * A record: body (string AnyValue; bytes when not UTF-8), time_unix_nano from Docker's "time"
 * when known, observed_time_unix_nano from the clock, attributes
 * log.iostream (stdout|stderr), log.file.path (plain files),
 * spillway.filelog.truncated (true: cut at max_record_size) and
 * spillway.filelog.parse_error (reason: the raw line was kept as body).
 */
#ifndef SW_FL_BATCH_H
#define SW_FL_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "receivers/filelog/fl_parse.h"
#include "runtime/buf.h"

#define FL_ATTR_TRUNCATED "spillway.filelog.truncated"
#define FL_ATTR_PARSE_ERROR "spillway.filelog.parse_error"
#define FL_SCOPE_NAME "spillway.filelog"

typedef struct fl_record {
    const char *body;       /* borrowed */
    size_t len;
    fl_stream stream;
    int64_t time_ns;        /* 0: unknown */
    int64_t observed_ns;    /* wall clock when read */
    int truncated;
    const char *error;      /* parse error reason, or NULL */
    const char *path;       /* log.file.path attribute, or NULL */
} fl_record;

typedef struct fl_batch {
    buf recs;               /* LogRecords, each as ScopeLogs field 2 */
    uint32_t n;             /* records */
    int64_t first_ns;       /* monotonic time of the first record */
} fl_batch;

/* max: cap of the encoded records (batch.max_bytes plus one record). */
void fl_batch_init(fl_batch *b, size_t max);
void fl_batch_destroy(fl_batch *b);
void fl_batch_reset(fl_batch *b);
/* Appends one record (now_ns: monotonic, for the age). 0, SW_ETOOBIG (does
 * not fit: hand the batch on first), SW_ENOMEM. */
int fl_batch_add(fl_batch *b, const fl_record *r, int64_t now_ns);
/* Appends the ExportLogsServiceRequest of the batch with resource (the
 * Resource message's body, borrowed, may be empty) to out. */
int fl_batch_build(const fl_batch *b, const uint8_t *resource, size_t res_len, buf *out);

#endif
