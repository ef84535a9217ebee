/* fl_parse.c — docker json-file and raw line parsing, RFC 3339 times and
 * the joining of Docker's 16 KiB pieces. Pure: see fl_parse.h. */
#include "receivers/filelog/fl_parse.h"

#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/err.h"

struct fl_parser {
    json_tokener *tok;
    json_object *last;    /* object of the previous line (owns out->body) */
};

fl_parser *fl_parser_new(void)
{
    fl_parser *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->tok = json_tokener_new_ex(8); /* a json-file line nests one level */
    if (!p->tok) {
        free(p);
        return NULL;
    }
    return p;
}

void fl_parser_free(fl_parser *p)
{
    if (!p) return;
    if (p->last) json_object_put(p->last);
    json_tokener_free(p->tok);
    free(p);
}

void fl_parse_raw(const char *line, size_t len, fl_line *out)
{
    if (len && line[len - 1] == '\r') len--;
    *out = (fl_line){ .body = line, .body_len = len };
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int y, int m)
{
    static const int dm[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* "+HH:MM" / "-HH:MM" / "Z" at s[0..n) into seconds east of UTC. */
static int parse_zone(const char *s, size_t n, int64_t *off)
{
    int hh, mm;
    if (n == 1 && (s[0] == 'Z' || s[0] == 'z')) {
        *off = 0;
        return 0;
    }
    if (n != 6 || (s[0] != '+' && s[0] != '-') || s[3] != ':') return SW_EINVAL;
    if (digits(s + 1, 2, &hh) || digits(s + 4, 2, &mm) || hh > 23 || mm > 59) return SW_EINVAL;
    *off = (hh * 3600 + mm * 60) * (s[0] == '-' ? -1 : 1);
    return 0;
}

int fl_parse_time(const char *s, size_t len, int64_t *ns)
{
    int y, mo, d, h, mi, se;
    int64_t frac = 0, off = 0;
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
        s[13] != ':' || s[16] != ':')
        return SW_EINVAL;
    if (digits(s, 4, &y) || digits(s + 5, 2, &mo) || digits(s + 8, 2, &d) ||
        digits(s + 11, 2, &h) || digits(s + 14, 2, &mi) || digits(s + 17, 2, &se))
        return SW_EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 60)
        return SW_EINVAL;
    size_t i = 19;
    if (s[i] == '.') {
        int nd = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, nd++)
            if (nd < 9) frac = frac * 10 + (s[i] - '0');
        if (nd == 0 || nd > 9) return SW_EINVAL;
        for (; nd < 9; nd++) frac *= 10;
    }
    if (parse_zone(s + i, len - i, &off) != 0) return SW_EINVAL;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - off;
    if (secs < 0 || secs > INT64_MAX / 1000000000 - 1) return SW_EINVAL;
    *ns = secs * 1000000000 + frac;
    return 0;
}

static void malformed(const char *line, size_t len, const char *why, fl_line *out)
{
    fl_parse_raw(line, len, out);
    out->error = why;
}

/* Fills out from a parsed object; 0 or -1 with *why set. */
static int from_object(json_object *o, fl_line *out, const char **why)
{
    json_object *log, *stream, *tm;
    if (!json_object_is_type(o, json_type_object)) { *why = "not a JSON object"; return -1; }
    if (!json_object_object_get_ex(o, "log", &log) || !json_object_is_type(log, json_type_string)) {
        *why = "no \"log\" string";
        return -1;
    }
    out->body = json_object_get_string(log);
    out->body_len = (size_t)json_object_get_string_len(log);
    if (json_object_object_get_ex(o, "stream", &stream)) {
        const char *sv = json_object_get_string(stream);
        if (!json_object_is_type(stream, json_type_string)) { *why = "\"stream\" not a string"; return -1; }
        if (strcmp(sv, "stdout") == 0) out->stream = FL_STREAM_STDOUT;
        else if (strcmp(sv, "stderr") == 0) out->stream = FL_STREAM_STDERR;
        else { *why = "\"stream\" neither stdout nor stderr"; return -1; }
    }
    if (json_object_object_get_ex(o, "time", &tm)) {
        if (!json_object_is_type(tm, json_type_string) ||
            fl_parse_time(json_object_get_string(tm), (size_t)json_object_get_string_len(tm),
                          &out->time_ns) != 0) {
            *why = "\"time\" not RFC 3339";
            return -1;
        }
    }
    if (out->body_len && out->body[out->body_len - 1] == '\n') out->body_len--;
    else out->partial = 1;
    return 0;
}

int fl_parse_docker(fl_parser *p, const char *line, size_t len, fl_line *out)
{
    const char *why = "invalid JSON";
    if (p->last) {
        json_object_put(p->last);
        p->last = NULL;
    }
    *out = (fl_line){ 0 };
    if (len > INT32_MAX) {
        malformed(line, len, "line too long", out);
        return 0;
    }
    json_tokener_reset(p->tok);
    json_object *o = json_tokener_parse_ex(p->tok, line, (int)len);
    if (o) {
        size_t used = json_tokener_get_parse_end(p->tok);
        while (used < len && (line[used] == ' ' || line[used] == '\r' || line[used] == '\t')) used++;
        if (used != len) why = "trailing data after the JSON object";
        p->last = o;
        if (used == len && from_object(o, out, &why) == 0) return 0;
        *out = (fl_line){ 0 };
    }
    malformed(line, len, why, out);
    return 0;
}

void fl_join_init(fl_join *j, size_t max)
{
    memset(j, 0, sizeof *j);
    buf_init(&j->b, max);
}

void fl_join_destroy(fl_join *j) { buf_destroy(&j->b); }

void fl_join_reset(fl_join *j)
{
    buf_reset(&j->b);
    j->active = 0;
    j->truncated = 0;
}

int fl_join_add(fl_join *j, const fl_line *piece)
{
    if (!j->active) {
        j->stream = piece->stream;
        j->time_ns = piece->time_ns;
        j->active = 1;
    }
    size_t room = j->b.max - j->b.len, n = piece->body_len;
    if (n > room) {
        n = room;
        j->truncated = 1;
    }
    if (n && buf_append(&j->b, piece->body, n) != 0) return SW_ENOMEM;
    if (piece->partial && !piece->error) return 0;
    j->active = 0;
    return 1;
}
