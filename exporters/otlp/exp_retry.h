/* exp_retry.h — the exporter's retry policy, as pure functions.
 *
 * Classification of upstream answers into outcomes, exponential backoff
 * with equal jitter, Retry-After parsing (RFC 9110 §10.2.3: delay-seconds or
 * an HTTP-date in any of its three formats) and the give-up rule. No state,
 * no I/O, no clock reads: the caller passes the current time and a random
 * number, so everything here is unit-testable. Any thread.
 *
 * Policy (see docs/exporter.md):
 *   delay(attempt) = d/2 + r * d/2, d = min(initial * multiplier^attempt, max)
 *   ("equal jitter": never less than half the exponential step, so a crowd
 *   of collectors spreads out without retrying almost at once);
 *   with Retry-After: exactly that delay (not capped by max_interval: the
 *   upstream asked for it; max_elapsed_time still bounds the whole retry);
 *   give up when the next attempt would start later than max_elapsed_time
 *   after the first attempt (max_elapsed_time 0: never give up).
 */
#ifndef SW_EXP_RETRY_H
#define SW_EXP_RETRY_H

#include <stdint.h>

/* What to do with a batch after an answer. Never 0, so that a zeroed or
 * forgotten value is not mistaken for success. */
typedef enum {
    EXP_OK = 1,     /* delivered: any 2xx */
    EXP_RETRY = 2,  /* no response, 429, 502, 503, 504: back off and resend */
    EXP_REJECT = 3, /* any other answer: permanent, counted, not retried */
} exp_outcome;

typedef struct exp_retry_policy {
    uint64_t initial_ms;     /* retry.initial_interval */
    uint64_t max_ms;         /* retry.max_interval (caps the backoff) */
    double multiplier;       /* retry.multiplier (values below 1 act as 1) */
    uint64_t max_elapsed_ms; /* retry.max_elapsed_time, 0 = unlimited */
} exp_retry_policy;

/* code: HTTP status, 0 when there was no response (connection error,
 * TLS failure, timeout). Follows the OTLP/HTTP specification; a redirect
 * (3xx) is not followed: it is a retryable failure (the endpoint is
 * misconfigured or moving, and the data must not go to an address nobody
 * configured). */
exp_outcome exp_classify_status(int code);

/* Backoff before retry number attempt (0 = first retry); r in [0, 1). */
uint64_t exp_backoff_ms(const exp_retry_policy *p, uint32_t attempt, double r);

/* Parses a Retry-After value (borrowed) against now_unix_s (wall clock,
 * seconds). 0 and *delay_ms set (0 for a date in the past), or SW_EINVAL
 * for anything else (the caller then falls back to the backoff). */
int exp_parse_retry_after(const char *value, int64_t now_unix_s, uint64_t *delay_ms);

/* The delay before the next attempt: Retry-After when present and valid,
 * else exp_backoff_ms(). retry_after may be NULL. */
uint64_t exp_retry_delay_ms(const exp_retry_policy *p, uint32_t attempt, double r,
                            const char *retry_after, int64_t now_unix_s);

/* 1 if an attempt elapsed_ms + delay_ms after the first one would be past
 * max_elapsed_time (give up now), else 0. */
int exp_retry_exhausted(const exp_retry_policy *p, uint64_t elapsed_ms, uint64_t delay_ms);

#endif
