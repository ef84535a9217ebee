/* codec.h — gzip and zstd, both directions, with size caps.
 *
 * Pure functions over memory; any thread. Decompressors stream into a buf
 * and stop with SW_ETOOBIG as soon as the output would pass out->max, so a
 * compression bomb never gets decompressed past the cap. Output is appended
 * to `out`. Concatenated gzip members and concatenated zstd frames are
 * accepted. Malformed or truncated input: SW_EDECODE; empty input is
 * malformed too (a compressed body has at least a header). A zstd frame
 * asking for a window over 16 MiB is refused (SW_EDECODE), which bounds the
 * decoder's memory. On any error out->len is left as it was at entry.
 * Compressors append one gzip member / one zstd frame, SW_ETOOBIG if it
 * does not fit under out->max. Levels: gzip 0..9 (others: zlib default),
 * zstd 1..22 or negative fast levels (0 or out of range: 3).
 */
#ifndef SW_CODEC_H
#define SW_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/buf.h"

int codec_gunzip(const uint8_t *in, size_t len, buf *out);
int codec_gzip(const uint8_t *in, size_t len, buf *out, int level);
int codec_zstd_decompress(const uint8_t *in, size_t len, buf *out);
int codec_zstd_compress(const uint8_t *in, size_t len, buf *out, int level);

#endif
