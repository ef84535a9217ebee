/* fl_parse.h — pure parsing of log lines for the filelog receiver.
 *
 * No I/O, no clock, no global state: the tailer hands in one line (without
 * its '\n') and gets a record description back. Two formats:
 *   - docker: one JSON object per line as the json-file driver writes it,
 *     {"log":"...","stream":"stdout|stderr","time":"RFC3339Nano"}. A "log"
 *     without a trailing '\n' is a piece of a longer line Docker split at
 *     16 KiB: the pieces are joined (fl_join) up to max_record_size.
 *   - raw: the line itself is the body.
 * A line that is not a valid docker object is kept as raw text with a
 * parse-error reason, never dropped. Used on the ingest thread; a
 * fl_parser is owned by one tailer and not thread-safe.
 */
#ifndef SW_FL_PARSE_H
#define SW_FL_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

typedef enum { FL_STREAM_NONE = 0, FL_STREAM_STDOUT = 1, FL_STREAM_STDERR = 2 } fl_stream;

typedef struct fl_line {
    const char *body;     /* borrowed: into the input line or the parser; valid
                             until the next fl_parse_docker() on that parser */
    size_t body_len;      /* without Docker's trailing '\n' */
    fl_stream stream;
    int64_t time_ns;      /* from "time", Unix ns; 0 when absent (raw) */
    int partial;          /* docker: "log" had no trailing '\n' (16 KiB piece) */
    const char *error;    /* static reason when malformed (body = raw line), else NULL */
} fl_line;

typedef struct fl_parser fl_parser;

/* Returns an owned parser, or NULL. */
fl_parser *fl_parser_new(void);
void fl_parser_free(fl_parser *p);

/* Parses one docker json-file line line[0..len) (borrowed; need not be
 * NUL-terminated). Always fills *out: a malformed line comes back with
 * out->error set and the raw line as body. 0, or SW_ENOMEM. */
int fl_parse_docker(fl_parser *p, const char *line, size_t len, fl_line *out);
/* A raw line: the body is the line without a trailing '\r'. */
void fl_parse_raw(const char *line, size_t len, fl_line *out);

/* Parses RFC 3339 time with up to 9 fractional digits and Z or ±HH:MM
 * (s[0..len)) into Unix nanoseconds. 0, or SW_EINVAL. */
int fl_parse_time(const char *s, size_t len, int64_t *ns);

/* Joins Docker's partial pieces into one record of at most max bytes. */
typedef struct fl_join {
    buf b;                /* the record so far (cap max) */
    int active;           /* a partial piece was added, the final one not yet */
    int truncated;        /* pieces beyond max were cut */
    fl_stream stream;     /* of the first piece */
    int64_t time_ns;      /* of the first piece */
} fl_join;

void fl_join_init(fl_join *j, size_t max);
void fl_join_destroy(fl_join *j);
/* Adds a piece (borrowed). Returns 1 when the record is complete (the piece
 * was final) and j->b holds it; 0 when more pieces are expected; SW_ENOMEM.
 * A record over max keeps its first max bytes and sets j->truncated. */
int fl_join_add(fl_join *j, const fl_line *piece);
/* Makes j empty for the next record (after a complete one was used). */
void fl_join_reset(fl_join *j);

#endif
