/* fuzz_grpc.c — the OTLP/gRPC receiver without sockets: its framing and
 * decode (rcv_grpc_frame.h) and whole nghttp2 server sessions
 * (rcv_grpc_h2.c) fed from memory, output into a sink.
 *
 * Byte 0 selects the mode:
 *   bit 0 = 1  framing: byte 1 is the DATA piece size, byte 2 the signal
 *              (bits 0-1) and grpc-encoding (bits 2-3); the rest goes
 *              through rg_reader in pieces, then rg_decode(), and the
 *              header parsers and encoders see it too.
 *   bit 0 = 0  session: the rest is the client's byte stream (bit 1: the
 *              target sends the client preface first), fed in pieces of
 *              (byte 1 | 1) bytes. Calls are answered at once, alternating
 *              OK with partial_success and UNAVAILABLE + RetryInfo; with
 *              bit 2 they are held and answered only after the session is
 *              freed (the detached path of a stream reset or connection
 *              closed before the pipeline's answer).
 * Checks: the memory accounting returns to zero, no call is lost.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "receivers/otlp/rcv_grpc_frame.h"
#include "receivers/otlp/rcv_grpc_int.h"
#include "runtime/budget.h"
#include "runtime/buf.h"

#define CAP (64 * 1024)
#define MAX_HELD 256

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

typedef struct fz {
    rg_call *held[MAX_HELD];
    size_t n_held;
    int hold;
    unsigned calls;
    size_t out_bytes;
} fz;

static void answer(rg_call *c, unsigned k)
{
    rg_answer a = {RG_OK, 0, NULL, 0, 0, 1};
    if (k % 2) {
        a.status = RG_UNAVAILABLE;
        a.retry_after_s = 1;
        a.message = "queue full";
        a.reason = 2;
    } else {
        a.rejected = 3;
        a.message = "3 points dropped";
    }
    rg_call_done(c, &a);
}

static void submit(void *arg, rg_call *call, sw_signal sig, const uint8_t *pb, size_t len,
                   uint32_t items, int64_t recv_ns)
{
    fz *f = arg;
    (void)recv_ns;
    (void)items;
    if ((unsigned)sig >= SIG_COUNT || (len && !pb)) abort();
    volatile uint8_t x = 0;
    for (size_t i = 0; i < len; i++) x ^= pb[i];
    (void)x;
    f->calls++;
    if (f->hold && f->n_held < MAX_HELD) f->held[f->n_held++] = call;
    else answer(call, f->calls);
}

static int sink(void *arg, const uint8_t *data, size_t len)
{
    (void)data;
    ((fz *)arg)->out_bytes += len;
    return 0;
}

static void kick(void *arg) { (void)arg; }

static void session(const uint8_t *d, size_t n, uint8_t mode, size_t step)
{
    fz f = {0};
    f.hold = (mode >> 2) & 1;
    rg_server srv = {0};
    srv.cap = CAP;
    srv.mem = budget_new(4 * CAP);
    if (!srv.mem) return;
    srv.accepting = !((mode >> 3) & 1);
    srv.submit = submit;
    srv.submit_arg = &f;
    rg_io io = {sink, kick, &f};
    rg_session *s = rg_session_new(&srv, &io);
    if (!s) {
        budget_free(srv.mem);
        return;
    }
    int bad = 0;
    if (mode & 2) bad = rg_session_recv(s, (const uint8_t *)preface, 24) != 0;
    for (size_t off = 0; off < n && !bad; off += step) {
        size_t k = n - off < step ? n - off : step;
        bad = rg_session_recv(s, d + off, k) != 0;
        if (rg_session_flush(s) != 0) bad = 1;
    }
    rg_session_goaway(s);
    rg_session_flush(s);
    rg_session_free(s);
    for (size_t i = 0; i < f.n_held; i++) answer(f.held[i], (unsigned)i);
    if (srv.buffered != 0 || srv.calls_pending != 0 || budget_used(srv.mem) != 0) abort();
    budget_free(srv.mem);
}

static void framing(const uint8_t *d, size_t n)
{
    if (n < 3) return;
    size_t step = (size_t)d[1] + 1;
    sw_signal sig = (sw_signal)((d[2] & 3) % SIG_COUNT);
    rcv_encoding enc = (rcv_encoding)((d[2] >> 2) & 3);
    d += 3;
    n -= 3;
    int64_t ns;
    rg_parse_timeout((const char *)d, n < 12 ? n : 12, &ns);
    rg_content_type_ok((const char *)d, n < 40 ? n : 40);
    rg_parse_encoding((const char *)d, n < 16 ? n : 16);
    if (rg_route((const char *)d, n) >= SIG_COUNT) abort();
    rg_reader r;
    rg_reader_init(&r, CAP);
    int rc = 0;
    for (size_t off = 0; off < n && rc == 0; off += step)
        rc = rg_reader_feed(&r, d + off, n - off < step ? n - off : step);
    if (rg_reader_buffered(&r) > CAP) abort();
    if (rc == 0) {
        rg_decoded out;
        rg_decode(&r, sig, enc, CAP, NULL, &out);
        if (out.status == RG_OK && out.res.pb_len > CAP) abort();
        buf b;
        buf_init(&b, 4096);
        if (out.status == RG_OK) rg_encode_response(sig, out.res.items, NULL, &b);
        rg_encode_message(out.res.message, &b);
        rg_encode_status_details(out.status, out.res.message, out.status ? 1 : 0, &b);
        buf_destroy(&b);
        rg_decoded_destroy(&out);
    }
    rg_reader_destroy(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) return 0;
    if (data[0] & 1) framing(data, size);
    else session(data + 2, size - 2, data[0], (size_t)(data[1] | 1));
    return 0;
}
