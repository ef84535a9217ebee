/* fuzz_rcv_decode.c — libFuzzer target for the receiver's body decoder.
 *
 * Input layout: byte 0 selects the signal (bits 0-1, mod 3), the content
 * type (bits 2-3, mod 3: protobuf, JSON, unknown) and the content encoding
 * (bits 4-5: identity, gzip, zstd, unknown); the rest is the body. The
 * decompressed-size cap is 1 MiB. The failure message is also encoded as a
 * google.rpc.Status in both encodings, and a success as a response.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "receivers/otlp/rcv_decode.h"
#include "receivers/otlp/rcv_respond.h"
#include "runtime/buf.h"

#define FUZZ_CAP (1024 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    rcv_request_info info = {
        .signal = (sw_signal)((data[0] & 3) % SIG_COUNT),
        .ctype = (rcv_content_type)(((data[0] >> 2) & 3) % 3),
        .cenc = (rcv_encoding)((data[0] >> 4) & 3),
    };
    rcv_result res;
    int rc = rcv_decode(&info, data + 1, size - 1, FUZZ_CAP, &res);
    if (rc == 0) {
        /* the protobuf must be readable in full */
        volatile uint8_t sink = 0;
        for (size_t i = 0; i < res.pb_len; i++) sink ^= res.pb[i];
        (void)sink;
        if (res.http_status != 200 || (res.pb_len == 0 && res.items != 0))
            __builtin_trap();
    } else if (res.http_status == 200 || res.message[0] == '\0' || res.pb != NULL) {
        __builtin_trap();
    }
    buf b;
    buf_init(&b, 4096);
    rcv_encode_status(data[0] & 1, res.grpc_code, res.message, &b);
    rcv_encode_status(!(data[0] & 1), res.grpc_code, res.message, &b);
    rcv_encode_response(info.signal, data[0] & 1, (int64_t)res.items, res.message, &b);
    buf_destroy(&b);
    rcv_result_destroy(&res);
    return 0;
}
