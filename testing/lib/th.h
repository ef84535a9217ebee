/* th.h — the spillway test harness.
 *
 * A test program is a list of independent cases:
 *
 *     static void t_push_pop(void) { TH_ASSERT(x == 1); TH_ASSERT_EQ_INT(a, b); }
 *     int main(void) { TH_RUN(t_push_pop); return th_done(); }
 *
 * Each case prints "PASS: prog/case" or "FAIL: prog/case: file:line: what";
 * testing/run_tests.sh counts those lines. A failed assertion ends the case
 * (longjmp) and the program goes on with the next case. "SKIP: ..." lines are
 * counted as skipped. Single-threaded: assertions belong on the main thread.
 */
#ifndef TH_H
#define TH_H

#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct th_state {
    jmp_buf jb;
    int passed, failed, skipped;
    const char *current;
    int case_failed;
} th_state;

extern th_state th_g;

void th_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4), noreturn));
void th_run_case(const char *name, void (*fn)(void));
/* Marks the current case skipped with a reason; ends the case. */
void th_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Prints the summary line of this program; returns its exit code. */
int th_done(void);

#define TH_RUN(fn) th_run_case(#fn, fn)

#define TH_ASSERT(cond)                                                      \
    do {                                                                     \
        if (!(cond)) th_fail(__FILE__, __LINE__, "assertion failed: %s", #cond); \
    } while (0)

#define TH_ASSERT_MSG(cond, ...)                                             \
    do {                                                                     \
        if (!(cond)) th_fail(__FILE__, __LINE__, __VA_ARGS__);              \
    } while (0)

#define TH_ASSERT_EQ_INT(a, b)                                               \
    do {                                                                     \
        long long th_a_ = (long long)(a), th_b_ = (long long)(b);            \
        if (th_a_ != th_b_)                                                  \
            th_fail(__FILE__, __LINE__, "%s == %s: %lld != %lld", #a, #b,    \
                    th_a_, th_b_);                                           \
    } while (0)

#define TH_ASSERT_EQ_STR(a, b)                                               \
    do {                                                                     \
        const char *th_a_ = (a), *th_b_ = (b);                               \
        if (!th_a_ || !th_b_ || strcmp(th_a_, th_b_) != 0)                   \
            th_fail(__FILE__, __LINE__, "%s == %s: \"%s\" != \"%s\"", #a, #b, \
                    th_a_ ? th_a_ : "(null)", th_b_ ? th_b_ : "(null)");     \
    } while (0)

#define TH_ASSERT_MEM_EQ(a, b, n)                                            \
    do {                                                                     \
        if (memcmp((a), (b), (n)) != 0)                                      \
            th_fail(__FILE__, __LINE__, "memory differs: %s vs %s", #a, #b); \
    } while (0)

#endif
