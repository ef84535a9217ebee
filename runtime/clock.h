/* clock.h — monotonic and wall-clock time in nanoseconds. Any thread. */
#ifndef SW_CLOCK_H
#define SW_CLOCK_H

#include <stdint.h>
#include <sys/time.h>
#include <time.h>

static inline int64_t clock_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline int64_t clock_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Milliseconds as a struct timeval (libevent timers and timeouts). */
static inline struct timeval clock_ms_to_tv(uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    return tv;
}

/* Nanoseconds (negative: 0) as a struct timeval, rounded up to whole
 * microseconds so that a timer never fires before the time it was set for. */
static inline struct timeval clock_ns_to_tv(int64_t ns)
{
    uint64_t us = ns > 0 ? ((uint64_t)ns + 999u) / 1000u : 0;
    struct timeval tv = {(time_t)(us / 1000000u), (suseconds_t)(us % 1000000u)};
    return tv;
}

#endif
