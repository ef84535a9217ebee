/* exp_retry.c — see exp_retry.h. */
#include "exporters/otlp/exp_retry.h"

#include <ctype.h>
#include <string.h>
#include <time.h>

#include "runtime/err.h"

/* Retry-After values above this many seconds are clamped (a year). */
#define EXP_RA_MAX_S (366ULL * 24 * 3600)

exp_outcome exp_classify_status(int code)
{
    if (code >= 200 && code <= 299) return EXP_OK;
    if (code >= 300 && code <= 399) return EXP_RETRY; /* redirects are not followed */
    switch (code) {
    case 0:   /* no response */
    case 429: /* Too Many Requests */
    case 502: /* Bad Gateway */
    case 503: /* Service Unavailable */
    case 504: /* Gateway Timeout */
        return EXP_RETRY;
    default:
        return EXP_REJECT;
    }
}

uint64_t exp_backoff_ms(const exp_retry_policy *p, uint32_t attempt, double r)
{
    double mult = p->multiplier < 1.0 ? 1.0 : p->multiplier;
    double cap = (double)p->max_ms;
    double d = (double)p->initial_ms;
    for (uint32_t i = 0; i < attempt && d < cap; i++) d *= mult;
    if (d > cap) d = cap;
    if (r < 0.0) r = 0.0;
    if (r >= 1.0) r = 0.999999;
    double delay = d / 2.0 + r * (d / 2.0);
    return (uint64_t)delay;
}

/* Skips optional whitespace; returns the first other character. */
static const char *skip_ows(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

/* delay-seconds = 1*DIGIT. 0 or SW_EINVAL. */
static int parse_delta_seconds(const char *s, uint64_t *out_s)
{
    uint64_t v = 0;
    const char *p = s;
    if (!isdigit((unsigned char)*p)) return SW_EINVAL;
    for (; isdigit((unsigned char)*p); p++) {
        if (v < EXP_RA_MAX_S) v = v * 10 + (uint64_t)(*p - '0');
    }
    if (*skip_ows(p) != '\0') return SW_EINVAL;
    *out_s = v < EXP_RA_MAX_S ? v : EXP_RA_MAX_S;
    return 0;
}

/* HTTP-date: IMF-fixdate, obsolete RFC 850 and asctime formats (RFC 9110
 * §5.6.7 requires recipients to accept all three). The program runs in the
 * C locale, so day and month names are English. 0 or SW_EINVAL. */
static int parse_http_date(const char *s, int64_t *out_unix)
{
    static const char *const fmts[] = {
        "%a, %d %b %Y %H:%M:%S GMT", /* Sun, 06 Nov 1994 08:49:37 GMT */
        "%A, %d-%b-%y %H:%M:%S GMT", /* Sunday, 06-Nov-94 08:49:37 GMT */
        "%a %b %e %H:%M:%S %Y",      /* Sun Nov  6 08:49:37 1994 */
    };
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++) {
        struct tm tm;
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(s, fmts[i], &tm);
        if (!end || *skip_ows(end) != '\0') continue;
        time_t t = timegm(&tm);
        if (t == (time_t)-1) continue;
        *out_unix = (int64_t)t;
        return 0;
    }
    return SW_EINVAL;
}

int exp_parse_retry_after(const char *value, int64_t now_unix_s, uint64_t *delay_ms)
{
    if (!value) return SW_EINVAL;
    const char *s = skip_ows(value);
    uint64_t secs;
    if (parse_delta_seconds(s, &secs) == 0) {
        *delay_ms = secs * 1000;
        return 0;
    }
    int64_t when;
    if (parse_http_date(s, &when) != 0) return SW_EINVAL;
    int64_t diff = when - now_unix_s;
    if (diff <= 0) diff = 0;
    if ((uint64_t)diff > EXP_RA_MAX_S) diff = (int64_t)EXP_RA_MAX_S;
    *delay_ms = (uint64_t)diff * 1000;
    return 0;
}

uint64_t exp_retry_delay_ms(const exp_retry_policy *p, uint32_t attempt, double r,
                            const char *retry_after, int64_t now_unix_s)
{
    uint64_t ra;
    if (retry_after && exp_parse_retry_after(retry_after, now_unix_s, &ra) == 0)
        return ra; /* the server's word; max_elapsed_time still bounds it */
    return exp_backoff_ms(p, attempt, r);
}

int exp_retry_exhausted(const exp_retry_policy *p, uint64_t elapsed_ms, uint64_t delay_ms)
{
    if (p->max_elapsed_ms == 0) return 0;
    return elapsed_ms + delay_ms > p->max_elapsed_ms;
}
