/* th_wait.h — waiting on a condition with a deadline, for tests.
 *
 * WAIT_FOR(cond, timeout_ms) polls cond every 2 ms until it holds or
 * timeout_ms passed, then asserts it (the case fails with the condition's
 * text); the timeout is scaled by th_slow_ms(). Tests wait on what they expect, never for a fixed time. Main
 * (test) thread only: a failed WAIT_FOR ends the case.
 */
#ifndef TH_WAIT_H
#define TH_WAIT_H

#include <stdint.h>
#include <time.h>

#include "runtime/clock.h"
#include "testing/lib/th.h"
#include "testing/lib/th_proc.h"

#define TH_WAIT_POLL_NS 2000000

#define WAIT_FOR(cond, timeout_ms)                                            \
    do {                                                                      \
        int64_t wf_end_ = clock_mono_ns() + (int64_t)th_slow_ms(timeout_ms) * 1000000; \
        while (!(cond) && clock_mono_ns() < wf_end_) {                        \
            struct timespec wf_ts_ = {0, TH_WAIT_POLL_NS};                    \
            nanosleep(&wf_ts_, NULL);                                         \
        }                                                                     \
        TH_ASSERT_MSG((cond), "still false after %d ms: %s", (int)(timeout_ms), #cond); \
    } while (0)

#endif
