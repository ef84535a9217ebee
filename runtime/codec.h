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

/* A reusable compressor: one zstd context and one zlib deflate stream,
 * reset between calls instead of created and freed for every body (a zstd
 * context costs about 1 MiB of allocations at level 3). Owned by one
 * thread at a time. The output is the same as the functions above. */
typedef struct codec_cctx codec_cctx;
/* Returns an owned context (nothing allocated until first use), or NULL. */
codec_cctx *codec_cctx_new(void);
void codec_cctx_free(codec_cctx *c); /* NULL-safe */
int codec_cctx_gzip(codec_cctx *c, const uint8_t *in, size_t len, buf *out, int level);
int codec_cctx_zstd(codec_cctx *c, const uint8_t *in, size_t len, buf *out, int level);

#endif
