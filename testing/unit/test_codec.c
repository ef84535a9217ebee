/* test_codec.c — gzip/zstd round trips, concatenation, truncation, garbage,
 * size caps and compression bombs. */
#include "runtime/codec.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <zstd.h>

#include "runtime/err.h"
#include "testing/lib/th.h"

#define MIB (1024u * 1024u)

typedef int (*dec_fn)(const uint8_t *, size_t, buf *);
typedef int (*enc_fn)(const uint8_t *, size_t, buf *, int);

static const struct {
    const char *name;
    enc_fn enc;
    dec_fn dec;
    int level;
} codecs[] = {
    {"gzip", codec_gzip, codec_gunzip, 6},
    {"zstd", codec_zstd_compress, codec_zstd_decompress, 3},
};

/* Compressible pseudo-random text. Returns owned memory. */
static uint8_t *make_text(size_t n, uint64_t seed)
{
    uint8_t *p = malloc(n ? n : 1);
    TH_ASSERT(p != NULL);
    for (size_t i = 0; i < n; i++) {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
        p[i] = (uint8_t)("spillway otlp \n0123456789"[seed % 25]);
    }
    return p;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void t_roundtrip_sizes(void)
{
    static const size_t sizes[] = {0, 1, 100, 65535, 256 * 1024 + 7, MIB + 3};
    for (size_t c = 0; c < 2; c++) {
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            size_t n = sizes[i];
            uint8_t *src = make_text(n, 42 + i);
            buf z, d;
            buf_init(&z, 4 * MIB);
            buf_init(&d, 4 * MIB);
            TH_ASSERT_EQ_INT(codecs[c].enc(src, n, &z, codecs[c].level), 0);
            TH_ASSERT(z.len > 0);
            TH_ASSERT_EQ_INT(codecs[c].dec(z.data, z.len, &d), 0);
            TH_ASSERT_EQ_INT(d.len, n);
            if (n) TH_ASSERT_MEM_EQ(d.data, src, n);
            buf_destroy(&z);
            buf_destroy(&d);
            free(src);
        }
    }
}

static void t_empty_input_is_malformed(void)
{
    buf d;
    buf_init(&d, MIB);
    TH_ASSERT_EQ_INT(codec_gunzip((const uint8_t *)"", 0, &d), SW_EDECODE);
    TH_ASSERT_EQ_INT(codec_zstd_decompress((const uint8_t *)"", 0, &d), SW_EDECODE);
    TH_ASSERT_EQ_INT(d.len, 0);
    buf_destroy(&d);
}

/* Two members (gzip) or two frames (zstd) decode to the concatenation, and
 * output is appended after what the buf already held. */
static void t_concatenated(void)
{
    for (size_t c = 0; c < 2; c++) {
        uint8_t *a = make_text(5000, 1), *b = make_text(70000, 2);
        buf z, d;
        buf_init(&z, MIB);
        buf_init(&d, MIB);
        TH_ASSERT_EQ_INT(codecs[c].enc(a, 5000, &z, codecs[c].level), 0);
        TH_ASSERT_EQ_INT(codecs[c].enc(b, 70000, &z, codecs[c].level), 0);
        TH_ASSERT_EQ_INT(buf_append(&d, "HEAD", 4), 0);
        TH_ASSERT_EQ_INT(codecs[c].dec(z.data, z.len, &d), 0);
        TH_ASSERT_EQ_INT(d.len, 4 + 5000 + 70000);
        TH_ASSERT_MEM_EQ(d.data, "HEAD", 4);
        TH_ASSERT_MEM_EQ(d.data + 4, a, 5000);
        TH_ASSERT_MEM_EQ(d.data + 5004, b, 70000);
        buf_destroy(&z);
        buf_destroy(&d);
        free(a);
        free(b);
    }
}

/* Every cut of a valid stream is malformed and leaves the buf as it was. */
static void t_truncation(void)
{
    for (size_t c = 0; c < 2; c++) {
        uint8_t *src = make_text(100000, 7);
        buf z, d;
        buf_init(&z, MIB);
        buf_init(&d, MIB);
        TH_ASSERT_EQ_INT(codecs[c].enc(src, 100000, &z, codecs[c].level), 0);
        TH_ASSERT_EQ_INT(buf_append(&d, "x", 1), 0);
        size_t step = z.len / 97 + 1;
        for (size_t cut = 1; cut < z.len; cut += (cut < 40 || cut > z.len - 40) ? 1 : step) {
            int rc = codecs[c].dec(z.data, cut, &d);
            TH_ASSERT_MSG(rc == SW_EDECODE, "%s cut at %zu of %zu: %d", codecs[c].name, cut,
                          z.len, rc);
            TH_ASSERT_EQ_INT(d.len, 1);
        }
        buf_destroy(&z);
        buf_destroy(&d);
        free(src);
    }
}

static void t_garbage(void)
{
    uint8_t junk[4096];
    uint64_t s = 99;
    for (size_t i = 0; i < sizeof junk; i++) {
        s ^= s << 13; s ^= s >> 7; s ^= s << 17;
        junk[i] = (uint8_t)s;
    }
    buf d;
    buf_init(&d, MIB);
    TH_ASSERT_EQ_INT(codec_gunzip(junk, sizeof junk, &d), SW_EDECODE);
    TH_ASSERT_EQ_INT(codec_zstd_decompress(junk, sizeof junk, &d), SW_EDECODE);
    /* Right magic, garbage after it. */
    junk[0] = 0x1f; junk[1] = 0x8b; junk[2] = 8; junk[3] = 0;
    TH_ASSERT_EQ_INT(codec_gunzip(junk, sizeof junk, &d), SW_EDECODE);
    junk[0] = 0x28; junk[1] = 0xb5; junk[2] = 0x2f; junk[3] = 0xfd;
    TH_ASSERT_EQ_INT(codec_zstd_decompress(junk, sizeof junk, &d), SW_EDECODE);
    /* The other codec's stream. */
    buf z;
    buf_init(&z, MIB);
    TH_ASSERT_EQ_INT(codec_zstd_compress((const uint8_t *)"hello", 5, &z, 3), 0);
    TH_ASSERT_EQ_INT(codec_gunzip(z.data, z.len, &d), SW_EDECODE);
    buf_reset(&z);
    TH_ASSERT_EQ_INT(codec_gzip((const uint8_t *)"hello", 5, &z, 6), 0);
    TH_ASSERT_EQ_INT(codec_zstd_decompress(z.data, z.len, &d), SW_EDECODE);
    TH_ASSERT_EQ_INT(d.len, 0);
    buf_destroy(&z);
    buf_destroy(&d);
}

/* A bad CRC or trailing junk after a valid stream is malformed. */
static void t_corrupt_tail(void)
{
    uint8_t *src = make_text(3000, 5);
    for (size_t c = 0; c < 2; c++) {
        buf z, d;
        buf_init(&z, MIB);
        buf_init(&d, MIB);
        TH_ASSERT_EQ_INT(codecs[c].enc(src, 3000, &z, codecs[c].level), 0);
        TH_ASSERT_EQ_INT(buf_append(&z, "\0\0\0junk", 7), 0);
        TH_ASSERT_EQ_INT(codecs[c].dec(z.data, z.len, &d), SW_EDECODE);
        buf_destroy(&z);
        buf_destroy(&d);
    }
    buf z, d;
    buf_init(&z, MIB);
    buf_init(&d, MIB);
    TH_ASSERT_EQ_INT(codec_gzip(src, 3000, &z, 6), 0);
    z.data[z.len - 6] ^= 0x40; /* inside the CRC-32 */
    TH_ASSERT_EQ_INT(codec_gunzip(z.data, z.len, &d), SW_EDECODE);
    buf_destroy(&z);
    buf_destroy(&d);
    free(src);
}

/* Builds a valid gzip stream of `mib` MiB of zeros (mib >= 2) in moments:
 * after a full flush deflate's output for each further MiB of zeros is the
 * same block run, so it is repeated, and the trailer is recomputed. */
static void gzip_zeros(size_t mib, buf *out)
{
    static uint8_t zeros[MIB];
    uint8_t tmp[64 * 1024];
    z_stream z;
    memset(&z, 0, sizeof z);
    TH_ASSERT(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    size_t block_at = 0, block_len = 0;
    for (int part = 0; part < 3; part++) {
        z.next_in = zeros;
        z.avail_in = part < 2 ? MIB : 0;
        size_t before = out->len;
        do {
            z.next_out = tmp;
            z.avail_out = sizeof tmp;
            int zr = deflate(&z, part < 2 ? Z_FULL_FLUSH : Z_FINISH);
            TH_ASSERT(zr == Z_OK || zr == Z_STREAM_END);
            TH_ASSERT_EQ_INT(buf_append(out, tmp, sizeof tmp - z.avail_out), 0);
        } while (z.avail_out == 0);
        if (part == 1) {
            block_at = before;
            block_len = out->len - before;
            for (size_t i = 2; i < mib; i++) {
                TH_ASSERT_EQ_INT(buf_reserve(out, block_len), 0);
                memcpy(out->data + out->len, out->data + block_at, block_len);
                out->len += block_len;
            }
        }
    }
    deflateEnd(&z);
    uLong one = crc32(0, zeros, MIB), crc = one;
    for (size_t i = 1; i < mib; i++) crc = crc32_combine(crc, one, MIB);
    uint32_t isize = (uint32_t)((uint64_t)mib * MIB);
    uint8_t *t = out->data + out->len - 8;
    for (int i = 0; i < 4; i++) {
        t[i] = (uint8_t)(crc >> (8 * i));
        t[4 + i] = (uint8_t)(isize >> (8 * i));
    }
}

/* One zstd frame of `mib` MiB of zeros, by streaming compression. */
static void zstd_zeros(size_t mib, buf *out)
{
    static uint8_t zeros[MIB];
    uint8_t tmp[64 * 1024];
    ZSTD_CCtx *c = ZSTD_createCCtx();
    TH_ASSERT(c != NULL);
    TH_ASSERT(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, 1)));
    for (size_t i = 0; i < mib; i++) {
        ZSTD_EndDirective mode = i + 1 == mib ? ZSTD_e_end : ZSTD_e_continue;
        ZSTD_inBuffer ib = {zeros, MIB, 0};
        size_t r;
        do {
            ZSTD_outBuffer ob = {tmp, sizeof tmp, 0};
            r = ZSTD_compressStream2(c, &ob, &ib, mode);
            TH_ASSERT(!ZSTD_isError(r));
            TH_ASSERT_EQ_INT(buf_append(out, tmp, ob.pos), 0);
        } while (ib.pos < ib.size || (mode == ZSTD_e_end && r != 0));
    }
    ZSTD_freeCCtx(c);
}

static void check_all_zero(const buf *d)
{
    for (size_t i = 0; i < d->len; i++)
        TH_ASSERT_MSG(d->data[i] == 0, "byte %zu is %u", i, d->data[i]);
}

/* Output of exactly out->max is fine; one byte more than max is not. */
static void t_cap_exact(void)
{
    buf g, s;
    buf_init(&g, 64 * MIB);
    buf_init(&s, 64 * MIB);
    gzip_zeros(8, &g);
    zstd_zeros(8, &s);
    const buf *streams[2] = {&g, &s};
    for (size_t c = 0; c < 2; c++) {
        buf d;
        buf_init(&d, 8 * MIB);
        TH_ASSERT_EQ_INT(codecs[c].dec(streams[c]->data, streams[c]->len, &d), 0);
        TH_ASSERT_EQ_INT(d.len, 8 * MIB);
        check_all_zero(&d);
        buf_destroy(&d);
        buf_init(&d, 8 * MIB - 1);
        TH_ASSERT_EQ_INT(codecs[c].dec(streams[c]->data, streams[c]->len, &d), SW_ETOOBIG);
        TH_ASSERT_EQ_INT(d.len, 0);
        buf_destroy(&d);
    }
    buf_destroy(&g);
    buf_destroy(&s);
}

static void bomb(size_t c, void (*make)(size_t, buf *))
{
    buf z, d;
    buf_init(&z, 64 * MIB);
    double t0 = now_s();
    make(1024, &z);
    double t1 = now_s();
    buf_init(&d, 16 * MIB);
    TH_ASSERT_EQ_INT(buf_append(&d, "abc", 3), 0);
    TH_ASSERT_EQ_INT(codecs[c].dec(z.data, z.len, &d), SW_ETOOBIG);
    double t2 = now_s();
    TH_ASSERT_EQ_INT(d.len, 3);
    TH_ASSERT(d.cap <= 16 * MIB);
    printf("# %s bomb: 1 GiB in %zu bytes, built in %.3f s, refused at 16 MiB in %.3f s\n",
           codecs[c].name, z.len, t1 - t0, t2 - t1);
    buf_destroy(&z);
    buf_destroy(&d);
}

static void t_gzip_bomb(void) { bomb(0, gzip_zeros); }
static void t_zstd_bomb(void) { bomb(1, zstd_zeros); }

/* A frame asking for a 32 MiB window is refused, whatever its content. */
static void t_zstd_window_limit(void)
{
    ZSTD_CCtx *c = ZSTD_createCCtx();
    TH_ASSERT(c != NULL);
    TH_ASSERT(!ZSTD_isError(ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, 25)));
    uint8_t tmp[256];
    ZSTD_inBuffer ib = {"abc", 3, 0};
    ZSTD_outBuffer ob = {tmp, sizeof tmp, 0};
    TH_ASSERT(!ZSTD_isError(ZSTD_compressStream2(c, &ob, &ib, ZSTD_e_continue)));
    ZSTD_inBuffer none = {NULL, 0, 0};
    TH_ASSERT_EQ_INT(ZSTD_compressStream2(c, &ob, &none, ZSTD_e_end), 0);
    ZSTD_freeCCtx(c);
    buf d;
    buf_init(&d, MIB);
    TH_ASSERT_EQ_INT(codec_zstd_decompress(tmp, ob.pos, &d), SW_EDECODE);
    buf_destroy(&d);
}

/* Compressors honour the cap too and leave the buf as it was. */
static void t_compress_cap(void)
{
    uint8_t *src = make_text(100000, 3);
    for (size_t c = 0; c < 2; c++) {
        buf z;
        buf_init(&z, 100);
        TH_ASSERT_EQ_INT(buf_append(&z, "ab", 2), 0);
        TH_ASSERT_EQ_INT(codecs[c].enc(src, 100000, &z, codecs[c].level), SW_ETOOBIG);
        TH_ASSERT_EQ_INT(z.len, 2);
        buf_destroy(&z);
    }
    free(src);
}

/* A reused context gives the same bytes as the one-shot compressors, body
 * after body and across a level change, and they decode back. */
static void t_cctx_reuse(void)
{
    codec_cctx *c = codec_cctx_new();
    TH_ASSERT(c);
    uint8_t in[20000];
    for (size_t i = 0; i < sizeof in; i++) in[i] = (uint8_t)((i * 7) % 251 + (i / 1000));
    for (int round = 0; round < 4; round++) {
        size_t len = sizeof in - (size_t)round * 3000;
        int lvl = round == 2 ? 1 : 6;
        buf a, b, d;
        buf_init(&a, 1u << 20);
        buf_init(&b, 1u << 20);
        buf_init(&d, 1u << 20);
        TH_ASSERT_EQ_INT(codec_cctx_gzip(c, in, len, &a, lvl), 0);
        TH_ASSERT_EQ_INT(codec_gzip(in, len, &b, lvl), 0);
        TH_ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        TH_ASSERT_EQ_INT(codec_gunzip(a.data, a.len, &d), 0);
        TH_ASSERT(d.len == len && memcmp(d.data, in, len) == 0);
        a.len = b.len = d.len = 0;
        TH_ASSERT_EQ_INT(codec_cctx_zstd(c, in, len, &a, lvl == 1 ? 1 : 3), 0);
        TH_ASSERT_EQ_INT(codec_zstd_compress(in, len, &b, lvl == 1 ? 1 : 3), 0);
        TH_ASSERT(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        TH_ASSERT_EQ_INT(codec_zstd_decompress(a.data, a.len, &d), 0);
        TH_ASSERT(d.len == len && memcmp(d.data, in, len) == 0);
        buf_destroy(&a);
        buf_destroy(&b);
        buf_destroy(&d);
    }
    buf small;
    buf_init(&small, 8); /* over the cap: SW_ETOOBIG, and the context still works */
    TH_ASSERT_EQ_INT(codec_cctx_gzip(c, in, sizeof in, &small, 6), SW_ETOOBIG);
    TH_ASSERT_EQ_INT(small.len, 0);
    buf_destroy(&small);
    buf ok;
    buf_init(&ok, 1u << 20);
    TH_ASSERT_EQ_INT(codec_cctx_gzip(c, in, 100, &ok, 6), 0);
    buf_destroy(&ok);
    codec_cctx_free(c);
    codec_cctx_free(NULL);
}

int main(void)
{
    TH_RUN(t_roundtrip_sizes);
    TH_RUN(t_empty_input_is_malformed);
    TH_RUN(t_concatenated);
    TH_RUN(t_truncation);
    TH_RUN(t_garbage);
    TH_RUN(t_corrupt_tail);
    TH_RUN(t_cap_exact);
    TH_RUN(t_gzip_bomb);
    TH_RUN(t_zstd_bomb);
    TH_RUN(t_zstd_window_limit);
    TH_RUN(t_compress_cap);
    TH_RUN(t_cctx_reuse);
    return th_done();
}
