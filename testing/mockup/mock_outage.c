/* mock_outage.c — outage modes, --outage-schedule / --outage-at parsing and
 * the arithmetic of which outage is in force when. Pure: no libevent, no
 * clock. See mock.h and docs/mockup.md. */
#include "testing/mockup/mock.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"

/* Longest outage, schedule period or start offset: 30 days. */
#define OUTAGE_MAX_MS (30LL * 24 * 3600 * 1000)

static const char *const mode_names[] = {"none", "refuse", "503",     "429",
                                         "hang", "trickle", "continue"};
#define MOCK_OUT_LAST MOCK_OUT_CONTINUE

int mock_outage_mode_parse(const char *s)
{
    if (!s) return SW_EINVAL;
    for (int m = MOCK_OUT_REFUSE; m <= MOCK_OUT_LAST; m++)
        if (strcmp(s, mode_names[m]) == 0) return m;
    return SW_EINVAL;
}

const char *mock_outage_mode_name(int mode)
{
    return mode >= MOCK_OUT_NONE && mode <= MOCK_OUT_LAST ? mode_names[mode] : "?";
}

int mock_parse_seconds(const char *s, int64_t *ms)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') return SW_EINVAL;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < 0 ||
        v * 1000.0 > (double)OUTAGE_MAX_MS)
        return SW_EINVAL;
    *ms = (int64_t)llround(v * 1000.0);
    return 0;
}

/* Splits s at sep into at most n fields (copied into tmp); returns how
 * many, or SW_EINVAL when there are more. */
static int split(const char *s, char sep, char *tmp, size_t cap, char **f, int n)
{
    size_t len = strlen(s);
    if (len >= cap) return SW_EINVAL;
    memcpy(tmp, s, len + 1);
    int k = 0;
    f[k++] = tmp;
    for (char *p = tmp; *p; p++) {
        if (*p != sep) continue;
        if (k == n) return SW_EINVAL;
        *p = '\0';
        f[k++] = p + 1;
    }
    return k;
}

/* The optional MODE field; refuse when absent. */
static int field_mode(int nf, char **f, int idx)
{
    return nf > idx ? mock_outage_mode_parse(f[idx]) : MOCK_OUT_REFUSE;
}

int mock_parse_schedule(const char *s, mock_outage_plan *p)
{
    char tmp[128], *f[3];
    int nf = split(s, '/', tmp, sizeof tmp, f, 3);
    int64_t down, every;
    if (nf < 2 || mock_parse_seconds(f[0], &down) || mock_parse_seconds(f[1], &every))
        return SW_EINVAL;
    int mode = field_mode(nf, f, 2);
    if (mode < 0 || down <= 0 || every <= down) return SW_EINVAL;
    p->sched_down_ms = down;
    p->sched_every_ms = every;
    p->sched_mode = mode;
    return 0;
}

int mock_parse_outage_at(const char *s, mock_outage_plan *p)
{
    char tmp[128], *f[3];
    int nf = split(s, ':', tmp, sizeof tmp, f, 3);
    int64_t start, dur;
    if (nf < 2 || mock_parse_seconds(f[0], &start) || mock_parse_seconds(f[1], &dur))
        return SW_EINVAL;
    int mode = field_mode(nf, f, 2);
    if (mode < 0 || dur <= 0) return SW_EINVAL;
    p->at_start_ms = start;
    p->at_end_ms = start + dur;
    p->at_mode = mode;
    return 0;
}

/* A one-shot window [start, end): 1 if t is inside; lowers *next to its
 * next boundary after t. */
static int window_eval(int mode, int64_t start, int64_t end, int64_t t, int64_t *next)
{
    if (mode == MOCK_OUT_NONE) return 0;
    if (t < start && start < *next) *next = start;
    if (t < end && end < *next) *next = end;
    return t >= start && t < end;
}

/* The schedule: up for every - down, then down for down, repeating. */
static int sched_eval(const mock_outage_plan *p, int64_t t, int64_t *next)
{
    if (p->sched_every_ms <= 0 || p->sched_mode == MOCK_OUT_NONE) return 0;
    if (t < 0) t = 0;
    int64_t e = p->sched_every_ms, up = e - p->sched_down_ms;
    int64_t base = t - t % e, phase = t % e;
    int64_t b = phase < up ? base + up : base + e;
    if (b < *next) *next = b;
    return phase >= up;
}

int mock_outage_eval(const mock_outage_plan *p, int64_t t_ms, int64_t *next_ms)
{
    int64_t next = INT64_MAX;
    int admin = window_eval(p->admin_mode, p->admin_start_ms, p->admin_end_ms, t_ms, &next);
    int at = window_eval(p->at_mode, p->at_start_ms, p->at_end_ms, t_ms, &next);
    int sched = sched_eval(p, t_ms, &next);
    *next_ms = next;
    if (admin) return p->admin_mode;
    if (at) return p->at_mode;
    return sched ? p->sched_mode : MOCK_OUT_NONE;
}

int64_t mock_outage_remaining_ms(const mock_outage_plan *p, int64_t t_ms)
{
    int64_t next, t = t_ms;
    if (mock_outage_eval(p, t, &next) == MOCK_OUT_NONE) return 0;
    /* follow the boundaries while some outage stays in force (bounded: a
     * schedule alone alternates, so this ends within a few steps) */
    for (int i = 0; i < 64 && next != INT64_MAX; i++) {
        t = next;
        if (mock_outage_eval(p, t, &next) == MOCK_OUT_NONE) return t - t_ms;
    }
    return next == INT64_MAX ? INT64_MAX : t - t_ms;
}
