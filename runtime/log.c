/* log.c — see log.h. */
#include "runtime/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/json_esc.h"

_Atomic int log_level_now = LOG_LVL_INFO;
static _Atomic int log_json = 1;

static const char *level_names[] = {"error", "warn", "info", "debug"};

void log_setup(log_level level, int json)
{
    atomic_store(&log_level_now, (int)level);
    atomic_store(&log_json, json);
}

int log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0) return i;
    if (strcmp(s, "warning") == 0) return LOG_LVL_WARN;
    return -1;
}

/* Appends s to out as the body of a JSON string (runtime/json_esc.h);
 * stops before cap. Returns the new length. */
static size_t json_escape(char *out, size_t pos, size_t cap, const char *s)
{
    for (; *s && pos + JSON_ESC_MAX < cap; s++) {
        char e[JSON_ESC_MAX];
        size_t k = json_esc((unsigned char)*s, e);
        if (k == 0) {
            out[pos++] = *s;
        } else {
            memcpy(out + pos, e, k);
            pos += k;
        }
    }
    return pos;
}

void log_emit(log_level level, const char *component, const char *fmt, ...)
{
    char msg[1024], line[2400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char tbuf[40];
    size_t tl = strftime(tbuf, sizeof tbuf, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(tbuf + tl, sizeof tbuf - tl, ".%03ldZ", ts.tv_nsec / 1000000);

    size_t n;
    if (atomic_load(&log_json)) {
        n = (size_t)snprintf(line, sizeof line,
                             "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"%s\",\"msg\":\"",
                             tbuf, level_names[level], component);
        n = json_escape(line, n, sizeof line - 3, msg);
        line[n++] = '"';
        line[n++] = '}';
        line[n++] = '\n';
    } else {
        n = (size_t)snprintf(line, sizeof line, "%s %-5s [%s] %s\n", tbuf,
                             level_names[level], component, msg);
        if (n >= sizeof line) n = sizeof line - 1;
    }
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

int log_ratelimit(_Atomic long long *last_ns, int secs)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    long long prev = atomic_load(last_ns);
    if (prev != 0 && now - prev < (long long)secs * 1000000000LL) return 0;
    return atomic_compare_exchange_strong(last_ns, &prev, now);
}
