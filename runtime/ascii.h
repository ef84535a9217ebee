/* ascii.h — the one rule for putting outside text into logs, error bodies
 * and DLQ notes: printable ASCII (0x20..0x7e) stays, every other byte
 * becomes '?'. Pure; any thread.
 */
#ifndef SW_ASCII_H
#define SW_ASCII_H

#include <stddef.h>

/* c itself when printable ASCII, else '?'. */
static inline char ascii_or_q(unsigned char c) { return c >= 0x20 && c < 0x7f ? (char)c : '?'; }

/* Copies src[0..n) (borrowed) into dst as printable ASCII: at most cap - 1
 * bytes, then a NUL (nothing when cap is 0). Returns the bytes written. */
static inline size_t ascii_copy(char *dst, size_t cap, const void *src, size_t n)
{
    const unsigned char *s = src;
    size_t i = 0;
    if (cap == 0) return 0;
    for (; i < n && i + 1 < cap; i++) dst[i] = ascii_or_q(s[i]);
    dst[i] = '\0';
    return i;
}

#endif
