/* exporter.h — the OTLP/HTTP exporter (exporters.otlphttp).
 *
 * Owns the export thread and its event_base. The thread pops items from the
 * queue, batches items of one signal by concatenating their bytes (up to
 * batch.max_bytes or batch.timeout), compresses (gzip/zstd/none), and POSTs
 * protobuf to <endpoint>/v1/<signal> over keep-alive connections with up to
 * max_in_flight requests at once (https through OpenSSL). Any 2xx is
 * success; retryable failures (connection errors, timeouts, 429, 502, 503,
 * 504) are retried with exponential backoff and jitter honouring
 * Retry-After (seconds or HTTP-date) until retry.max_elapsed_time; other
 * answers are permanent refusals: counted and logged, never retried (a 413
 * to several items first splits the batch in halves, down to single
 * items); with a DLQ the refused items are kept in its rejected area with
 * the upstream's status and message, never replayed. Counts into its
 * block of the metrics registry (exp_metrics.h).
 *
 * A circuit breaker (exporters.otlphttp.circuit_breaker) guards the
 * upstream: once open, no request goes out until one probe after
 * open_duration decides. With a dead-letter queue (exp_set_dlq), batches
 * that cannot be sent while it is open, items popped meanwhile, batches
 * whose retries are exhausted and, at the stop deadline, everything left
 * are appended to the DLQ with their class (what the DLQ cannot store
 * stays in memory and the exporter stops popping until it can); the DLQ's
 * replay source (dlq/dlq_consumer.h, a thread owned by the exporter) reads
 * the DLQ back (token bucket of dlq.replay.rate, only while the breaker is
 * closed) and the export thread interleaves it with live traffic
 * (dlq.replay.interleave), acknowledging records after a 2xx.
 * Without a DLQ, items wait in the queue while the breaker is open (the
 * receiver pushes back) and given-up batches are dropped (counted).
 * exporters.otlphttp.timeout is a deadline for each whole request.
 * Items carrying a delivery tracker are settled once (2xx: delivered).
 */
#ifndef SW_EXPORTER_H
#define SW_EXPORTER_H

#include <stdint.h>

#include <stddef.h>

#include "config/cfg.h"
#include "dlq/dlq.h"
#include "queue/apq.h"
#include "runtime/item.h"
#include "runtime/metrics.h"

typedef struct exporter exporter;

/* Returns an owned exporter or NULL. c, q and m are borrowed and must
 * outlive it. Does not start anything. */
exporter *exp_new(const cfg *c, apq *q, sw_metrics *m);
/* Gives the exporter a dead-letter queue (borrowed; must stay open until
 * exp_stop() returned). Call before exp_start(); NULL (the default): no
 * DLQ. exp_start() then creates the exporter's dlq_port, its reader and
 * the replay thread. */
void exp_set_dlq(exporter *e, dlq *d);
/* Starts the export thread (and, with a DLQ, the replay thread). 0 or
 * SW_E*. On failure nothing of the exporter runs any more (a replay
 * thread already started is stopped and joined), so the DLQ may be closed
 * at once; the exporter can then only be freed. */
int exp_start(exporter *e);
/* Graceful stop, called from the main thread after intake stopped:
 *   1. the replay thread stops (records it read but did not hand over stay
 *      in the DLQ, unacknowledged);
 *   2. the export thread sends what is queued, batched and in flight until
 *      nothing is left or timeout_ms passed (no new replay batch starts;
 *      one in flight may still be acknowledged);
 *   3. at the deadline, in-flight requests are cancelled and everything
 *      left (queue, open, sealed, backing-off and in-flight batches) is
 *      appended to the DLQ — or, without one, counted DROPPED; an
 *      unfinished replay batch is simply let go (it is still in the DLQ);
 *   4. with a DLQ, it waits up to 5 s more for those appends to complete
 *      (appends still unconfirmed then are not lost: dlq_close() writes
 *      them, exp_free() dispatches their completions);
 *   5. the thread exits and is joined; the DLQ reader persists its cursor
 *      and is freed.
 * Returns the number of items (queue units, not records) neither delivered
 * nor stored in the DLQ (logged with counts; counted DROPPED). 0 if never
 * started or already stopped. Call before dlq_close(). */
uint64_t exp_stop(exporter *e, uint64_t timeout_ms);
/* Cuts a stop short: the export thread treats its stop deadline as passed
 * (step 3 above at once: in-flight requests are abandoned, everything held
 * in memory goes to the DLQ as on a timeout; step 4 still waits for those
 * appends). Called while exp_stop runs (on another thread) or before it:
 * the next exp_stop then behaves as with timeout_ms 0. Thread-safe; no-op
 * if never started; harmless after the stop. */
void exp_hurry(exporter *e);
/* Configuration reload: posts exporters.otlphttp of c (borrowed: it must
 * stay valid until exp_free, since the export thread reads it from then
 * on) to the export thread, where reloads are applied in the order posted,
 * between requests: compression, batch.max_bytes, batch.timeout (new
 * batches), retry (next backoff), circuit_breaker consecutive_failures,
 * ratio_429 and open_duration (next answer; window needs a restart). When
 * the endpoint, headers, timeout, max_in_flight or tls changed, new
 * requests go over a new connection pool while requests in flight get
 * their answers on the old one, which is closed after the old timeout
 * (plus 1 s). Checks the headers and the endpoint first: 0, or SW_EINVAL
 * (invalid header or endpoint, logged) / SW_ENOMEM / SW_ECLOSED (stopped)
 * with nothing changed. Main thread. */
int exp_reconfigure(exporter *e, const cfg *c);
/* 1 while the upstream accepts (last request succeeded or none yet),
 * 0 while requests fail (a retryable failure clears it, a 2xx sets it; a
 * permanent refusal such as 400 leaves it); any thread. For /readyz. */
int exp_healthy(const exporter *e);
/* Upstream requests sent and not yet answered; any thread. */
int64_t exp_in_flight(const exporter *e);
/* 1 while the circuit breaker is open (not half-open); any thread. */
int exp_circuit_open(const exporter *e);
/* Frees everything, including items it still holds; completions of DLQ
 * appends not yet dispatched are waited for (the DLQ must still be open,
 * or already closed). NULL-safe. */
void exp_free(exporter *e);

/* Blocking POSTs of Export<sig>ServiceRequests (protobuf, not compressed)
 * to <url>/v1/<signal> (url as exporters.otlphttp.endpoint: http or https,
 * a path is a prefix; https verifies against the system CA store), for
 * `spillway dlq replay`: a private event_base and one keep-alive
 * connection reused from send to send; never on a network loop. */
typedef struct exp_sender exp_sender;
/* Owned, or NULL (a bad url, logged, or no memory). timeout_ms bounds each
 * send (0: 10 s). */
exp_sender *exp_sender_new(const char *url, uint64_t timeout_ms);
/* One POST. 0 on any 2xx; SW_EINVAL (bad signal), SW_EIO (no answer
 * within the timeout, or a non-2xx answer; logged). */
int exp_sender_send(exp_sender *s, sw_signal sig, const uint8_t *data, size_t len);
/* NULL-safe. */
void exp_sender_free(exp_sender *s);

#endif
