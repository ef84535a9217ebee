/* lg_verify.h — --verify: did the upstream receive exactly what was acked?
 *
 * After a run, every request answered 2xx (lg_result.ok_seq) is turned back
 * into the tokens of its items (lg_pool_tokens: one unique 64-bit value per
 * span, log record or data point). The mock upstream's stored content lines
 * (GET /received/<signal>, docs/mockup.md) are read back into tokens too
 * (lg_token_of_line), and the two multisets are compared:
 *   missing     acked items the upstream does not have
 *   duplicated  extra copies of an item the upstream has more than once
 *   unexpected  items the upstream has that were never acked (e.g. a
 *               request that timed out at the client but arrived, or a
 *               previous run's items)
 * Before reading the lines it waits, up to wait_s, until the mock's /stats
 * item count for the signal reaches the number acked or stops changing for
 * settle_s (default a second; a collector in between delivers
 * asynchronously, and across an upstream outage it pauses for a while).
 * With missing_out, every acked request that has items missing upstream
 * is listed there, one line each:
 *   <signal> <seq> <answer time, Unix ms> <items missing>
 * so a harness can tell which process lifetime acknowledged what was lost.
 * The comparison is pure; lg_verify_run does blocking HTTP on its own
 * event_base (call it after lg_run, on the same thread).
 */
#ifndef SW_LG_VERIFY_H
#define SW_LG_VERIFY_H

#include <stddef.h>
#include <stdio.h>
#include <stdint.h>

#include "runtime/buf.h"
#include "testing/loadgen/lg_client.h"
#include "testing/loadgen/lg_gen.h"

typedef struct lg_vres {
    uint64_t expected;     /* items acked */
    uint64_t received;     /* items (lines with a token) the upstream stored */
    uint64_t missing, duplicated, unexpected;
    uint64_t unreadable;   /* lines without a token */
    uint64_t upstream_items; /* the mock's /stats item count for the signal */
    int incomplete;        /* the mock stored fewer lines than it counted items
                            * (its --keep cap, or --fast): missing is unreliable */
} lg_vres;

typedef struct lg_verify_opts {
    const char *host;      /* the mock upstream; borrowed */
    uint16_t port;
    double wait_s;         /* longest wait for delivery */
    double settle_s;       /* the count unchanged this long ends the wait early (0: 1 s) */
    double timeout_s;      /* per HTTP request */
    FILE *missing_out;     /* NULL, or where to list the acked requests with missing
                            * items (lg_verify_run); borrowed */
} lg_verify_opts;

/* Sorts exp[0..n_exp) and got[0..n_got) in place and counts into *out
 * (expected, received, missing, duplicated, unexpected). */
void lg_verify_compare(uint64_t *exp, size_t n_exp, uint64_t *got, size_t n_got, lg_vres *out);

/* Number of tok[0..n) not present in sorted[0..n_sorted) (ascending). */
size_t lg_verify_absent(const uint64_t *tok, size_t n, const uint64_t *sorted, size_t n_sorted);

/* Tokens of the lines of text[0..len) (one item per line). *out is owned
 * by the caller (free()). Lines without a token are counted in
 * *unreadable. 0 or SW_ENOMEM. */
int lg_verify_parse(sw_signal sig, const char *text, size_t len, uint64_t **out, size_t *n,
                    uint64_t *unreadable);

/* Tokens of the items of stream si among the acked requests of res.
 * *out owned by the caller. 0, SW_ENOMEM or SW_EINVAL. */
int lg_verify_expected(const lg_stream *streams, uint32_t n, uint32_t si, const lg_result *res,
                       uint64_t **out, size_t *n_out);

/* Verifies each stream against the mock: out[i] for streams[i]. 0, or
 * SW_EIO when the mock could not be read (message on stderr), SW_ENOMEM. */
int lg_verify_run(const lg_verify_opts *vo, const lg_stream *streams, uint32_t n,
                  const lg_result *res, lg_vres *out);

/* GET http://host:port/path into out (capped by out's max); *status is the
 * HTTP status, 0 without an answer. 0 or SW_EIO / SW_ENOMEM / SW_ETOOBIG. */
int lg_http_get(const char *host, uint16_t port, const char *path, double timeout_s, buf *out,
                int *status);

#endif
