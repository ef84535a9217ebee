/* fuzz_decompress.c — gunzip and zstd decompression under a 1 MiB cap.
 *
 * The first byte picks the codec (even: gzip, odd: zstd); the rest is the
 * compressed stream. Any result is fine except a crash, a leak, output past
 * the cap, a buf changed by a failed call, or a successful decode that does
 * not survive a compress/decompress round trip.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/codec.h"
#include "runtime/err.h"

#define FUZZ_CAP (1024u * 1024u)

static void roundtrip(int zstd, const buf *plain)
{
    buf z, d;
    buf_init(&z, 2 * FUZZ_CAP);
    buf_init(&d, FUZZ_CAP);
    int rc = zstd ? codec_zstd_compress(plain->data, plain->len, &z, 1)
                  : codec_gzip(plain->data, plain->len, &z, 1);
    if (rc) abort();
    rc = zstd ? codec_zstd_decompress(z.data, z.len, &d) : codec_gunzip(z.data, z.len, &d);
    if (rc || d.len != plain->len || (d.len && memcmp(d.data, plain->data, d.len) != 0))
        abort();
    buf_destroy(&z);
    buf_destroy(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    int zstd = data[0] & 1;
    buf out;
    buf_init(&out, FUZZ_CAP);
    int rc = zstd ? codec_zstd_decompress(data + 1, size - 1, &out)
                  : codec_gunzip(data + 1, size - 1, &out);
    if (out.len > FUZZ_CAP) abort();
    if (rc != 0 && out.len != 0) abort();
    if (rc != 0 && rc != SW_EDECODE && rc != SW_ETOOBIG && rc != SW_ENOMEM) abort();
    if (rc == 0) roundtrip(zstd, &out);
    buf_destroy(&out);
    return 0;
}
