/* cfg_regex.c — checks a processors.priority.rules[].regex before anyone
 * compiles it for real: it must compile as a POSIX extended regex, and it
 * must be cheap to compile and to match.
 *
 * Compile cost: glibc's regcomp() builds a token tree in which a repeat
 * copies its operand — `x{m,n}` about max(m,n) times, `x+` twice (x x*) —
 * so nested or stacked repeats multiply: `(a{100}){100}` or `a+++++...+`
 * would take gigabytes. estimate_nodes() walks the regex once with a stack
 * of groups and adds up the nodes regcomp() would make, refusing anything
 * above CFG_RE_BUDGET before regcomp() ever sees it.
 *
 * Node count is not the whole cost: glibc computes each node's epsilon
 * closure, and a repeat of something that can match the empty string —
 * `()*`, `(a|)+`, `(a?)*`, `a**`, `(a?){900}` — chains epsilon loops that
 * make that cubic (`(()*){800}`, 2,400 nodes, took 3.4 s; `(()*){3000}`
 * minutes). Such a repeat means the same as a simpler regex (`(a*)*` is
 * `a*`), so it is refused: `*`, `+` and `{m,n}` with n > 1 may not apply to
 * a nullable operand (`?` may).
 *
 * All rules together: one regex at the budget compiles in about 20 ms and
 * holds about 2 MiB; 256 of them would take seconds and half a GiB, so the
 * regexes of one file share CFG_RE_TOTAL_BUDGET nodes (about 10 MiB).
 *
 * Match cost: back-references (\1..\9, a glibc extension to ERE) make
 * matching exponential in the worst case on data a client sends, so they
 * are refused.
 */
#include "config/cfg_int.h"

#include <ctype.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "runtime/err.h"

#define CFG_RE_MAX_LEN 1024
#define CFG_RE_BUDGET 10000.0    /* token-tree nodes */
#define CFG_RE_TOTAL_BUDGET 50000.0 /* nodes of all rules' regexes together */
#define CFG_RE_DEPTH 64          /* nested groups */

typedef struct re_frame {
    double total;                /* nodes of the group so far */
    double last;                 /* nodes of its last atom (what a repeat copies) */
    int alt_null;                /* an earlier alternative can match "" */
    int seq_null;                /* the current alternative so far can match "" */
    int pre_null;                /* seq_null before the last atom */
    int last_null;               /* the last atom can match "" */
} re_frame;

#define RE_BACKREF (-1.0)
#define RE_NULL_REPEAT (-2.0)

static double read_bound(const char **p)
{
    double v = 0;
    for (; isdigit((unsigned char)**p); (*p)++)
        if ((v = v * 10 + (**p - '0')) > 1e9) v = 1e9;
    return v;
}

/* How many copies of its operand the repeat at *p ('+' or '{') makes; moves
 * *p to the repeat's last character when it is a well-formed {m,n}. *lo gets
 * the least count, *many whether more than one copy can match. */
static double repeat_copies(const char **p, double *lo_out, int *many)
{
    *lo_out = 1;
    *many = 1;
    if (**p == '+') return 2;
    const char *q = *p + 1;
    double lo = read_bound(&q), hi = lo;
    int bounded = 1;
    if (*q == ',') {
        q++;
        bounded = isdigit((unsigned char)*q);
        hi = bounded ? read_bound(&q) : lo + 1;
    }
    if (*q != '}') return 1;  /* not an interval: left to regcomp() */
    *p = q;
    *lo_out = lo;
    *many = !bounded || hi > 1;
    return (hi > lo ? hi : lo) + 1;
}

/* p is at '['; returns the position of the closing ']', or of the NUL. */
static const char *skip_bracket(const char *p)
{
    p++;
    if (*p == '^') p++;
    if (*p == ']') p++;
    for (; *p && *p != ']'; p++) {
        if (*p != '[' || (p[1] != ':' && p[1] != '.' && p[1] != '=')) continue;
        char end = p[1];
        const char *q = p + 2;
        while (*q && !(q[0] == end && q[1] == ']')) q++;
        if (!*q) return q;
        p = q + 1;
    }
    return p;
}

/* Records an atom of n nodes that can (nullable) or cannot match "". */
static void re_atom(re_frame *f, double n, int nullable)
{
    f->total += n;
    f->last = n;
    f->pre_null = f->seq_null;
    f->seq_null = f->seq_null && nullable;
    f->last_null = nullable;
}

/* The last atom became optional (*, ?, {0,n}). */
static void re_optional(re_frame *f)
{
    f->last_null = 1;
    f->seq_null = f->pre_null;
}

/* An upper estimate of regcomp()'s token-tree nodes for re; RE_BACKREF for
 * a back-reference, RE_NULL_REPEAT for a repeat of a nullable operand.
 * Stops early once the budget is exceeded. Malformed regexes are left to
 * regcomp(). */
static double estimate_nodes(const char *re)
{
    re_frame st[CFG_RE_DEPTH + 1];
    int d = 0;
    st[0] = (re_frame){ .seq_null = 1, .pre_null = 1 };
    for (const char *p = re; *p && st[d].total <= CFG_RE_BUDGET; p++) {
        re_frame *f = &st[d];
        double m, lo;
        int many;
        switch (*p) {
        case '(':
            if (d == CFG_RE_DEPTH) return CFG_RE_BUDGET + 1;
            st[++d] = (re_frame){ .seq_null = 1, .pre_null = 1 };
            continue;
        case ')':
            if (d == 0) { re_atom(f, 1, 0); continue; }  /* unmatched: a literal */
            d--;
            re_atom(&st[d], f->total + 1, f->alt_null || f->seq_null);
            continue;
        case '|':
            f->alt_null = f->alt_null || f->seq_null;
            f->seq_null = f->pre_null = 1;
            f->last = 0;
            f->last_null = 0;
            continue;
        case '?':
            f->total += 1;
            f->last += 1;
            re_optional(f);
            continue;
        case '*':
            if (f->last_null) return RE_NULL_REPEAT;
            f->total += 1;
            f->last += 1;
            re_optional(f);
            continue;
        case '+': case '{':
            m = repeat_copies(&p, &lo, &many);
            if (m == 1) { re_atom(f, 1, 0); continue; }  /* a literal '{' */
            if (many && f->last_null) return RE_NULL_REPEAT;
            f->total += f->last * (m - 1);
            f->last *= m;
            if (lo == 0) re_optional(f);
            continue;
        case '[':
            p = skip_bracket(p);
            if (!*p) p--;            /* unclosed: regcomp() reports it */
            re_atom(f, 1, 0);
            continue;
        case '^': case '$':
            re_atom(f, 1, 1);        /* zero-width */
            continue;
        case '\\':
            if (p[1] >= '1' && p[1] <= '9') return RE_BACKREF;
            if (!p[1]) { re_atom(f, 1, 0); continue; }
            p++;
            re_atom(f, 1, strchr("bB<>`'", *p) != NULL);  /* word and buffer anchors */
            continue;
        default:
            re_atom(f, 1, 0);
            continue;
        }
    }
    double sum = 0;
    for (int i = 0; i <= d; i++) sum += st[i].total;
    return sum;
}

int cfg_regex_check(const char *re, double *used, char *msg, size_t msglen)
{
    regex_t compiled;
    char why[128];
    double nodes = strlen(re) > CFG_RE_MAX_LEN ? CFG_RE_BUDGET + 1 : estimate_nodes(re);
    if (nodes == RE_BACKREF) {
        snprintf(msg, msglen, "back-references (\\1..\\9) are not allowed: matching them can take "
                 "exponential time");
        return SW_EINVAL;
    }
    if (nodes == RE_NULL_REPEAT) {
        snprintf(msg, msglen, "a repeat (*, +, {m,n}) of something that can match the empty string, "
                 "as in (a*)* or (a|)+, is not allowed: it compiles in cubic time; write the simpler "
                 "equivalent, e.g. a*");
        return SW_EINVAL;
    }
    if (nodes > CFG_RE_BUDGET) {
        snprintf(msg, msglen, "regex too long (over %d bytes) or its repeats ({m,n}, +) nest too deeply",
                 CFG_RE_MAX_LEN);
        return SW_EINVAL;
    }
    if (*used + nodes > CFG_RE_TOTAL_BUDGET) {
        snprintf(msg, msglen, "the rules' regexes together are too large (over %.0f nodes of the "
                 "compiled form; this one alone about %.0f): shorten them or use fewer rules",
                 CFG_RE_TOTAL_BUDGET, nodes);
        return SW_EINVAL;
    }
    int rc = regcomp(&compiled, re, REG_EXTENDED | REG_NOSUB);
    if (rc == 0) {
        regfree(&compiled);
        *used += nodes;
        return 0;
    }
    regerror(rc, &compiled, why, sizeof why);
    snprintf(msg, msglen, "invalid regex \"%.80s\": %s", re, why);
    return rc == REG_ESPACE ? SW_ENOMEM : SW_EINVAL;
}
