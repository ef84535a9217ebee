/* fuzz_otlp_json.c — OTLP/JSON to protobuf and back.
 *
 * Input: one byte choosing the signal, then a JSON document. Whatever
 * oj_json_to_pb() accepts must pass ow_validate(), convert back to JSON,
 * and that JSON must convert to the very same bytes (unless a string holds
 * \u0000, which the way back cuts).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/buf.h"
#include "runtime/err.h"
#include "runtime/otlp_json.h"
#include "runtime/otlp_wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    sw_signal sig = (sw_signal)(data[0] % SIG_COUNT);
    char err[256];
    buf pb, js, pb2;
    buf_init(&pb, (size_t)1 << 24);
    buf_init(&js, (size_t)1 << 26);
    buf_init(&pb2, (size_t)1 << 24);
    int rc = oj_json_to_pb(sig, (const char *)data + 1, size - 1, &pb, err, sizeof err);
    if (rc != 0) {
        if (rc != SW_EDECODE || err[0] == '\0') abort();
        goto cleanup;
    }
    uint32_t items;
    if (ow_validate(sig, pb.data, pb.len, &items, NULL) != 0) abort();
    if (oj_pb_to_json(sig, pb.data, pb.len, &js) != 0) abort();
    if (oj_json_to_pb(sig, (const char *)js.data, js.len, &pb2, err, sizeof err) != 0) abort();
    /* protobuf-c's unpacked strings end at a NUL, so oj_pb_to_json() cuts a
     * string at its first \u0000: the exact round trip holds without them. */
    if (memmem(data + 1, size - 1, "\\u0000", 6)) goto cleanup;
    if (pb2.len != pb.len || (pb.len && memcmp(pb.data, pb2.data, pb.len) != 0)) abort();
cleanup:
    buf_destroy(&pb);
    buf_destroy(&js);
    buf_destroy(&pb2);
    return 0;
}
