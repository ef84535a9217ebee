/* log.h — structured logs to stderr.
 *
 * One line per event: JSON ({"ts":..,"level":..,"component":..,"msg":..}) by
 * default, or text. Any thread may log; a line is written with one write(2).
 * The level check happens before the arguments are evaluated. Each .c file
 * that logs defines LOG_COMPONENT ("receiver", "exporter", ...) before
 * including this header. The *_RL variants log at most once per `secs` per
 * call site, for per-request paths. Never log payloads at INFO or above.
 */
#ifndef SW_LOG_H
#define SW_LOG_H

#include <stdatomic.h>

typedef enum { LOG_LVL_ERROR = 0, LOG_LVL_WARN, LOG_LVL_INFO, LOG_LVL_DEBUG } log_level;

/* Current level; written by log_setup() at start-up and on a configuration
 * reload (any thread may call it: both settings are atomics), read
 * everywhere. */
extern _Atomic int log_level_now;

void log_setup(log_level level, int json);
/* Parses "error|warn|info|debug"; returns -1 if unknown. */
int log_level_parse(const char *s);
void log_emit(log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Returns 1 if the call site (its state in *last_ns) may log now. */
int log_ratelimit(_Atomic long long *last_ns, int secs);

#ifndef LOG_COMPONENT
#define LOG_COMPONENT "spillway"
#endif

#define LOG_AT(lvl, ...)                                                     \
    do {                                                                     \
        if ((int)(lvl) <= atomic_load_explicit(&log_level_now, memory_order_relaxed)) \
            log_emit((lvl), LOG_COMPONENT, __VA_ARGS__);                     \
    } while (0)
#define LOG_ERROR(...) LOG_AT(LOG_LVL_ERROR, __VA_ARGS__)
#define LOG_WARN(...) LOG_AT(LOG_LVL_WARN, __VA_ARGS__)
#define LOG_INFO(...) LOG_AT(LOG_LVL_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) LOG_AT(LOG_LVL_DEBUG, __VA_ARGS__)

#define LOG_AT_RL(lvl, secs, ...)                                            \
    do {                                                                     \
        static _Atomic long long log_rl_last_;                               \
        if ((int)(lvl) <= atomic_load_explicit(&log_level_now, memory_order_relaxed) && \
            log_ratelimit(&log_rl_last_, (secs)))                            \
            log_emit((lvl), LOG_COMPONENT, __VA_ARGS__);                     \
    } while (0)
#define LOG_WARN_RL(secs, ...) LOG_AT_RL(LOG_LVL_WARN, secs, __VA_ARGS__)
#define LOG_INFO_RL(secs, ...) LOG_AT_RL(LOG_LVL_INFO, secs, __VA_ARGS__)
#define LOG_ERROR_RL(secs, ...) LOG_AT_RL(LOG_LVL_ERROR, secs, __VA_ARGS__)

#endif
