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
 * answers are counted and logged, not retried. Counts into sw_metrics.
 */
#ifndef SW_EXPORTER_H
#define SW_EXPORTER_H

#include <stdint.h>

#include "config/cfg.h"
#include "queue/apq.h"
#include "runtime/metrics.h"

typedef struct exporter exporter;

/* Returns an owned exporter or NULL. c, q and m are borrowed and must
 * outlive it. Does not start anything. */
exporter *exp_new(const cfg *c, apq *q, sw_metrics *m);
/* Starts the export thread. 0 or SW_E*. */
int exp_start(exporter *e);
/* Graceful stop, called from the main thread after intake stopped: the
 * thread sends what is queued and in flight until the queue is empty or
 * timeout_ms passed, then exits; joins it. Returns the number of items
 * (queue units, not records) that could not be delivered (logged with
 * counts; counted DROPPED). 0 if never started or already stopped. */
uint64_t exp_stop(exporter *e, uint64_t timeout_ms);
/* 1 while the upstream accepts (last request succeeded or none yet),
 * 0 while requests fail (a retryable failure clears it, a 2xx sets it; a
 * permanent refusal such as 400 leaves it); any thread. For /readyz. */
int exp_healthy(const exporter *e);
/* Frees everything, including items it still holds. NULL-safe. */
void exp_free(exporter *e);

#endif
