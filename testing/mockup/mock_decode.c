/* mock_decode.c — one request body to counts and stored lines. See mock.h.
 *
 * body -> (gunzip | zstd, capped) -> (OTLP/JSON -> protobuf) -> either a
 * full protobuf-c unpack that renders content lines, or (--fast) the wire
 * walk that only validates and counts. The full unpack is deliberately a
 * different decoder from the one spillway's own hot path uses, so the mock
 * checks what spillway sends rather than trusting it.
 */
#include "testing/mockup/mock.h"

#include <stdio.h>
#include <string.h>

#include "receivers/otlp/rcv_decode.h"
#include "runtime/codec.h"
#include "runtime/err.h"
#include "runtime/otlp_json.h"
#include "runtime/otlp_wire.h"

static void set_status(mock_decoded *out, int status, const char *what, int rc)
{
    out->status = status;
    snprintf(out->msg, sizeof out->msg, "%s: %s", what, sw_strerror(rc));
}

/* Maps a failed step to 400/413 (0 after setting out) or passes ENOMEM. */
static int step_failed(mock_decoded *out, const char *what, int rc)
{
    if (rc == SW_ENOMEM) return rc;
    set_status(out, rc == SW_ETOOBIG ? 413 : 400, what, rc);
    return 0;
}

static int decompress(int enc, const uint8_t *body, size_t len, buf *plain)
{
    return enc == RCV_CE_GZIP ? codec_gunzip(body, len, plain)
                              : codec_zstd_decompress(body, len, plain);
}

/* Counts (and in full mode renders) a protobuf request. */
static int inspect(sw_signal sig, const uint8_t *pb, size_t len, int fast, mock_store *st,
                   mock_decoded *out)
{
    if (fast) {
        uint32_t items = 0;
        const char *why = "";
        if (ow_validate(sig, pb, len, &items, &why) != 0) {
            out->status = 400;
            snprintf(out->msg, sizeof out->msg, "invalid protobuf: %s", why);
            return 0;
        }
        out->items = items;
        return 0;
    }
    int rc = mock_render_request(sig, pb, len, mock_store_lines(st, sig),
                                 mock_store_room(st, sig), &out->lines, &out->items);
    if (rc == SW_EDECODE) {
        out->status = 400;
        snprintf(out->msg, sizeof out->msg, "invalid protobuf request");
        return 0;
    }
    mock_store_add_kept(st, sig, out->lines);
    return rc == SW_ETOOBIG ? 0 : rc; /* line store full: counts stay right */
}

int mock_decode_body(sw_signal sig, int ctype, int enc, const uint8_t *body, size_t len,
                     int fast, mock_store *st, mock_decoded *out)
{
    memset(out, 0, sizeof *out);
    out->status = 200;
    if (len == 0) return 0; /* an empty request */
    buf plain, conv;
    buf_init(&plain, MOCK_MAX_DECODED);
    buf_init(&conv, MOCK_MAX_DECODED);
    const uint8_t *p = body;
    size_t n = len;
    int rc = 0;
    if (enc != RCV_CE_IDENTITY) {
        rc = decompress(enc, body, len, &plain);
        if (rc) { rc = step_failed(out, "decompress", rc); goto done; }
        p = plain.data;
        n = plain.len;
    }
    if (ctype == RCV_CT_JSON) {
        char why[128] = "";
        rc = oj_json_to_pb(sig, (const char *)(p ? p : (const uint8_t *)""), n, &conv, why,
                           sizeof why);
        if (rc == SW_EDECODE) {
            out->status = 400;
            snprintf(out->msg, sizeof out->msg, "invalid JSON: %s", why);
            rc = 0;
            goto done;
        }
        if (rc) { rc = step_failed(out, "JSON", rc); goto done; }
        p = conv.data;
        n = conv.len;
    }
    out->pb_len = n;
    rc = inspect(sig, p ? p : (const uint8_t *)"", n, fast, st, out);
done:
    buf_destroy(&conv);
    buf_destroy(&plain);
    return rc;
}
