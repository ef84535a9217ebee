/* codec.c — see codec.h.
 *
 * Decompressors write straight into the output buf, at most CODEC_CHUNK bytes
 * per step and never past out->max. When the buf is full, one more step runs
 * into a one-byte scratch: if the stream still produces output the result is
 * SW_ETOOBIG, so a bomb costs at most out->max bytes of memory and the time
 * to inflate that much. On any error out->len is restored to its value at
 * entry (bytes past it may have been overwritten, within the old capacity).
 */
#include "runtime/codec.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "runtime/err.h"

#define CODEC_CHUNK (256u * 1024u)
/* Largest zstd window a frame may ask for: bounds decoder memory at 16 MiB
 * whatever the frame header claims. */
#define CODEC_ZSTD_WINDOW_LOG_MAX 24

/* Where the next decompression step writes: into the buf, or into a one-byte
 * probe once the buf is at its cap. */
typedef struct {
    uint8_t *dst;
    size_t room;
    int probe;
    uint8_t scratch[1];
} out_window;

static int window_next(buf *out, out_window *w)
{
    size_t left = out->max - out->len;
    if (left == 0) {
        w->dst = w->scratch;
        w->room = 1;
        w->probe = 1;
        return 0;
    }
    size_t n = left < CODEC_CHUNK ? left : CODEC_CHUNK;
    int rc = buf_reserve(out, n);
    if (rc) return rc;
    w->dst = out->data + out->len;
    w->room = n;
    w->probe = 0;
    return 0;
}

/* Accounts for `produced` bytes written by the last step. */
static int window_commit(buf *out, const out_window *w, size_t produced)
{
    if (w->probe) return produced ? SW_ETOOBIG : 0;
    out->len += produced;
    return 0;
}

/* ---- gzip ---------------------------------------------------------------- */

/* Feeds z from in[*pos..len) in pieces zlib's uInt can hold. */
static void z_refill(z_stream *z, const uint8_t *in, size_t len, size_t *pos)
{
    if (z->avail_in > 0 || *pos >= len) return;
    size_t n = len - *pos;
    if (n > UINT_MAX) n = UINT_MAX;
    z->next_in = (Bytef *)(uintptr_t)(in + *pos);
    z->avail_in = (uInt)n;
    *pos += n;
}

/* One inflate step. Returns 1 when all input is consumed at a member end,
 * 0 to go on, or an error. */
static int gunzip_step(z_stream *z, const uint8_t *in, size_t len, size_t *pos, buf *out)
{
    out_window w;
    int rc = window_next(out, &w);
    if (rc) return rc;
    z_refill(z, in, len, pos);
    z->next_out = w.dst;
    z->avail_out = (uInt)w.room;
    int zr = inflate(z, Z_NO_FLUSH);
    rc = window_commit(out, &w, w.room - z->avail_out);
    if (rc) return rc;
    switch (zr) {
    case Z_STREAM_END:
        if (z->avail_in == 0 && *pos >= len) return 1;
        return inflateReset(z) == Z_OK ? 0 : SW_EDECODE; /* next member */
    case Z_OK:
        return 0;
    case Z_MEM_ERROR:
        return SW_ENOMEM;
    default: /* Z_BUF_ERROR (truncated), Z_DATA_ERROR, Z_NEED_DICT */
        return SW_EDECODE;
    }
}

int codec_gunzip(const uint8_t *in, size_t len, buf *out)
{
    if (len == 0) return SW_EDECODE;
    size_t start = out->len, pos = 0;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) return SW_ENOMEM;
    int rc;
    while ((rc = gunzip_step(&z, in, len, &pos, out)) == 0) {
    }
    inflateEnd(&z);
    if (rc == 1) return 0;
    out->len = start;
    return rc;
}

/* One gzip member of in through an initialised (or reset) stream. */
static int gzip_run(z_stream *z, const uint8_t *in, size_t len, buf *out)
{
    size_t start = out->len, pos = 0;
    int rc = 0, zr = Z_OK;
    while (zr != Z_STREAM_END) {
        out_window w;
        if ((rc = window_next(out, &w)) != 0) break;
        z_refill(z, in, len, &pos);
        z->next_out = w.dst;
        z->avail_out = (uInt)w.room;
        zr = deflate(z, pos >= len ? Z_FINISH : Z_NO_FLUSH);
        if ((rc = window_commit(out, &w, w.room - z->avail_out)) != 0) break;
        if (w.probe && zr != Z_STREAM_END) { rc = SW_ETOOBIG; break; }
        if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) { rc = SW_EINVAL; break; }
    }
    if (rc) out->len = start;
    return rc;
}

static int gzip_level(int level)
{
    return level < 0 || level > 9 ? Z_DEFAULT_COMPRESSION : level;
}

static int gzip_init(z_stream *z, int level)
{
    memset(z, 0, sizeof *z);
    return deflateInit2(z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK
               ? 0
               : SW_ENOMEM;
}

int codec_gzip(const uint8_t *in, size_t len, buf *out, int level)
{
    z_stream z;
    if (gzip_init(&z, gzip_level(level)) != 0) return SW_ENOMEM;
    int rc = gzip_run(&z, in, len, out);
    deflateEnd(&z);
    return rc;
}

/* ---- zstd ---------------------------------------------------------------- */

static int zstd_err(size_t r)
{
    return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? SW_ENOMEM : SW_EDECODE;
}

/* One streaming step. Returns 1 when every frame is complete and all input
 * consumed, 0 to go on, or an error. */
static int unzstd_step(ZSTD_DCtx *d, ZSTD_inBuffer *ib, buf *out)
{
    out_window w;
    int rc = window_next(out, &w);
    if (rc) return rc;
    ZSTD_outBuffer ob = {w.dst, w.room, 0};
    size_t in_before = ib->pos;
    size_t r = ZSTD_decompressStream(d, &ob, ib);
    if (ZSTD_isError(r)) return zstd_err(r);
    rc = window_commit(out, &w, ob.pos);
    if (rc) return rc;
    if (r == 0 && ib->pos == ib->size) return 1;
    /* Input exhausted mid-frame with room left: truncated. */
    if (ib->pos == ib->size && ob.pos < ob.size) return SW_EDECODE;
    if (ib->pos == in_before && ob.pos == 0) return SW_EDECODE; /* no progress */
    return 0;
}

int codec_zstd_decompress(const uint8_t *in, size_t len, buf *out)
{
    if (len == 0) return SW_EDECODE;
    size_t start = out->len;
    ZSTD_DCtx *d = ZSTD_createDCtx();
    if (!d) return SW_ENOMEM;
    int rc = SW_ENOMEM;
    ZSTD_inBuffer ib = {in, len, 0};
    if (ZSTD_isError(ZSTD_DCtx_setParameter(d, ZSTD_d_windowLogMax, CODEC_ZSTD_WINDOW_LOG_MAX)))
        goto done;
    while ((rc = unzstd_step(d, &ib, out)) == 0) {
    }
    if (rc == 1) rc = 0;
done:
    ZSTD_freeDCtx(d);
    if (rc) out->len = start;
    return rc;
}

/* One zstd frame of in through c (its parameters are reset per frame). */
static int zstd_run(ZSTD_CCtx *c, const uint8_t *in, size_t len, buf *out, int level)
{
    if (level < ZSTD_minCLevel() || level > ZSTD_maxCLevel() || level == 0) level = 3;
    size_t left = out->max - out->len;
    size_t n = ZSTD_compressBound(len);
    if (n > left) n = left;
    if (n == 0) return SW_ETOOBIG;
    int rc = buf_reserve(out, n);
    if (rc) return rc;
    size_t r = ZSTD_compressCCtx(c, out->data + out->len, n, in, len, level);
    if (ZSTD_isError(r)) {
        ZSTD_ErrorCode e = ZSTD_getErrorCode(r);
        if (e == ZSTD_error_dstSize_tooSmall) return SW_ETOOBIG;
        return e == ZSTD_error_memory_allocation ? SW_ENOMEM : SW_EINVAL;
    }
    out->len += r;
    return 0;
}

int codec_zstd_compress(const uint8_t *in, size_t len, buf *out, int level)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    if (!c) return SW_ENOMEM;
    int rc = zstd_run(c, in, len, out, level);
    ZSTD_freeCCtx(c);
    return rc;
}

/* ---- reusable compression contexts ---------------------------------------- */

struct codec_cctx {
    ZSTD_CCtx *zstd;   /* created on first use */
    z_stream gz;
    int gz_ready;      /* gz initialised */
    int gz_level;      /* its level */
};

codec_cctx *codec_cctx_new(void)
{
    return calloc(1, sizeof(codec_cctx));
}

void codec_cctx_free(codec_cctx *c)
{
    if (!c) return;
    if (c->zstd) ZSTD_freeCCtx(c->zstd);
    if (c->gz_ready) deflateEnd(&c->gz);
    free(c);
}

int codec_cctx_gzip(codec_cctx *c, const uint8_t *in, size_t len, buf *out, int level)
{
    level = gzip_level(level);
    if (c->gz_ready && c->gz_level != level) {
        deflateEnd(&c->gz);
        c->gz_ready = 0;
    }
    if (!c->gz_ready) {
        if (gzip_init(&c->gz, level) != 0) return SW_ENOMEM;
        c->gz_ready = 1;
        c->gz_level = level;
    } else if (deflateReset(&c->gz) != Z_OK) {
        return SW_EINVAL;
    }
    return gzip_run(&c->gz, in, len, out);
}

int codec_cctx_zstd(codec_cctx *c, const uint8_t *in, size_t len, buf *out, int level)
{
    if (!c->zstd && !(c->zstd = ZSTD_createCCtx())) return SW_ENOMEM;
    return zstd_run(c->zstd, in, len, out, level);
}
