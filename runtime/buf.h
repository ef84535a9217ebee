/* buf.h — a growable byte buffer with an explicit maximum size.
 *
 * Every payload that grows from outside input (bodies, decompressed data,
 * encoded output) lives in a buf whose `max` is the cap: an append past it
 * fails with SW_ETOOBIG and leaves the buffer as it was (curl's dynbuf idea).
 * Not thread-safe; owned by whoever embeds it.
 */
#ifndef SW_BUF_H
#define SW_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
    size_t max;    /* hard cap on len */
} buf;

void buf_init(buf *b, size_t max);
void buf_destroy(buf *b);
/* Empties the buffer, keeping its memory. */
void buf_reset(buf *b);
/* Makes room for n more bytes. 0, SW_ETOOBIG or SW_ENOMEM. */
int buf_reserve(buf *b, size_t n);
int buf_append(buf *b, const void *p, size_t n);
int buf_append_str(buf *b, const char *s);
int buf_printf(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Returns the data (owned by the caller) and resets the buffer to empty. */
uint8_t *buf_steal(buf *b, size_t *len);

#endif
