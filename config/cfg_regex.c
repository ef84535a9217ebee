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
#define CFG_RE_DEPTH 64          /* nested groups */

typedef struct re_frame {
    double total;                /* nodes of the group so far */
    double last;                 /* nodes of its last atom (what a repeat copies) */
} re_frame;

static double read_bound(const char **p)
{
    double v = 0;
    for (; isdigit((unsigned char)**p); (*p)++)
        if ((v = v * 10 + (**p - '0')) > 1e9) v = 1e9;
    return v;
}

/* How many copies of its operand the repeat at *p ('+' or '{') makes; moves
 * *p to the repeat's last character when it is a well-formed {m,n}. */
static double repeat_copies(const char **p)
{
    if (**p == '+') return 2;
    const char *q = *p + 1;
    double lo = read_bound(&q), hi = lo;
    if (*q == ',') {
        q++;
        hi = isdigit((unsigned char)*q) ? read_bound(&q) : lo + 1;
    }
    if (*q == '}') *p = q;
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

/* An upper estimate of regcomp()'s token-tree nodes for re, or -1 for a
 * back-reference. Stops early once the budget is exceeded. Malformed
 * regexes are left to regcomp(). */
static double estimate_nodes(const char *re)
{
    re_frame st[CFG_RE_DEPTH + 1] = { { 0, 0 } };
    int d = 0;
    for (const char *p = re; *p && st[d].total <= CFG_RE_BUDGET; p++) {
        double atom = 1, m;
        switch (*p) {
        case '(':
            if (d == CFG_RE_DEPTH) return CFG_RE_BUDGET + 1;
            st[++d] = (re_frame){ 0, 0 };
            continue;
        case ')':
            if (d > 0) atom = st[d--].total + 1;
            break;
        case '|': st[d].last = 0; continue;
        case '*': case '?': st[d].total += 1; st[d].last += 1; continue;
        case '+': case '{':
            m = repeat_copies(&p);
            st[d].total += st[d].last * (m - 1);
            st[d].last *= m;
            continue;
        case '[':
            p = skip_bracket(p);
            if (!*p) p--;            /* unclosed: regcomp() reports it */
            break;
        case '\\':
            if (p[1] >= '1' && p[1] <= '9') return -1;
            if (p[1]) p++;
            break;
        default: break;
        }
        st[d].total += atom;
        st[d].last = atom;
    }
    double sum = 0;
    for (int i = 0; i <= d; i++) sum += st[i].total;
    return sum;
}

int cfg_regex_check(const char *re, char *msg, size_t msglen)
{
    regex_t compiled;
    char why[128];
    double nodes = strlen(re) > CFG_RE_MAX_LEN ? CFG_RE_BUDGET + 1 : estimate_nodes(re);
    if (nodes < 0) {
        snprintf(msg, msglen, "back-references (\\1..\\9) are not allowed: matching them can take "
                 "exponential time");
        return SW_EINVAL;
    }
    if (nodes > CFG_RE_BUDGET) {
        snprintf(msg, msglen, "regex too long (over %d bytes) or its repeats ({m,n}, +) nest too deeply",
                 CFG_RE_MAX_LEN);
        return SW_EINVAL;
    }
    int rc = regcomp(&compiled, re, REG_EXTENDED | REG_NOSUB);
    if (rc == 0) {
        regfree(&compiled);
        return 0;
    }
    regerror(rc, &compiled, why, sizeof why);
    snprintf(msg, msglen, "invalid regex \"%.80s\": %s", re, why);
    return rc == REG_ESPACE ? SW_ENOMEM : SW_EINVAL;
}
