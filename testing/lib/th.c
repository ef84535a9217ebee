/* th.c — see th.h. */
#include "testing/lib/th.h"

#include <stdarg.h>
#include <stdlib.h>

th_state th_g;

static const char *prog_name(void)
{
    extern char *program_invocation_short_name;
    return program_invocation_short_name;
}

void th_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    printf("FAIL: %s/%s: %s:%d: ", prog_name(), th_g.current ? th_g.current : "?",
           file, line);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    th_g.case_failed = 1;
    longjmp(th_g.jb, 1);
}

void th_skip(const char *fmt, ...)
{
    va_list ap;
    printf("SKIP: %s/%s: ", prog_name(), th_g.current ? th_g.current : "?");
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    th_g.case_failed = 2;
    longjmp(th_g.jb, 1);
}

void th_run_case(const char *name, void (*fn)(void))
{
    th_g.current = name;
    th_g.case_failed = 0;
    if (setjmp(th_g.jb) == 0) fn();
    if (th_g.case_failed == 0) {
        printf("PASS: %s/%s\n", prog_name(), name);
        th_g.passed++;
    } else if (th_g.case_failed == 1) {
        th_g.failed++;
    } else {
        th_g.skipped++;
    }
    fflush(stdout);
    th_g.current = NULL;
}

int th_done(void)
{
    printf("# %s: %d passed, %d failed, %d skipped\n", prog_name(), th_g.passed,
           th_g.failed, th_g.skipped);
    return th_g.failed ? 1 : 0;
}
