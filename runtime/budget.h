/* budget.h — one memory budget for intake: the request bytes held by every
 * connection of the receivers (HTTP now, gRPC later) counted against one
 * limit.
 *
 * A budget is a counter with a limit. Buffers that hold client data are
 * charged when they grow (budget_reserve) and credited when they shrink or
 * are freed (budget_release). A reservation that does not fit is refused:
 * the caller answers 503 + Retry-After and drops what the client sent, so
 * the bytes held never pass the limit. Thread: the ingest thread only (no
 * locks); every user of one budget runs on that thread.
 *
 * Freed memory is given back to the kernel: budget_release() trims the
 * heap with malloc_trim() when usage is below a quarter of the limit and
 * 4 MiB were released since the last trim (at most ten times a second; a
 * trim skipped for
 * that runs from a timer when the budget is attached to the event loop).
 * glibc's allocator is
 * left as it is (a fixed mmap threshold would make every large exporter
 * batch cost page faults: about 40 % of the pass-through ceiling here).
 */
#ifndef SW_BUDGET_H
#define SW_BUDGET_H

#include <stddef.h>
#include <stdint.h>

typedef struct budget budget;
struct event_base;

/* Returns an owned budget of `limit` bytes (0: 64 MiB), or NULL. */
budget *budget_new(size_t limit);
void budget_free(budget *b);          /* NULL-safe */
/* Lets the budget run a deferred trim on base's thread (borrowed, must
 * outlive b). 0 or SW_ENOMEM. */
int budget_attach(budget *b, struct event_base *base);

/* Charges n bytes: 0, or -1 (nothing charged) when used + n > limit. */
int budget_reserve(budget *b, size_t n);
/* Credits n bytes charged before (never more than what is used). */
void budget_release(budget *b, size_t n);

size_t budget_used(const budget *b);
size_t budget_limit(const budget *b);
size_t budget_peak(const budget *b);    /* highest use since budget_new */
uint64_t budget_refused(const budget *b); /* reservations refused */

/* Gives freed heap memory back to the kernel now (malloc_trim): for
 * callers that just freed many small blocks that were never charged, such
 * as the structs of thousands of closed connections. Call it rarely. */
void budget_trim(budget *b);

#endif
