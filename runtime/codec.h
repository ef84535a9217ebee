/* codec.h — gzip and zstd, both directions, with size caps.
 *
 * Pure functions over memory; any thread. Decompressors stream into a buf
 * and stop with SW_ETOOBIG as soon as the output would pass out->max, so a
 * compression bomb never gets decompressed past the cap. Output is appended
 * to `out`. Concatenated gzip members and concatenated zstd frames are
 * accepted. Malformed or truncated input: SW_EDECODE.
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
