/* test_ascii.c — runtime/ascii.h: the one printable-ASCII rule. */
#include "runtime/ascii.h"
#include "testing/lib/th.h"

static void t_or_q(void)
{
    TH_ASSERT_EQ_INT(ascii_or_q(' '), ' ');
    TH_ASSERT_EQ_INT(ascii_or_q('~'), '~');
    TH_ASSERT_EQ_INT(ascii_or_q(0x1f), '?');
    TH_ASSERT_EQ_INT(ascii_or_q(0x7f), '?');
    TH_ASSERT_EQ_INT(ascii_or_q(0xc3), '?');
    TH_ASSERT_EQ_INT(ascii_or_q(0), '?');
}

static void t_copy(void)
{
    char out[8];
    const char in[] = {'a', 0, '\n', (char)0xff, 'b', 'c', 'd', 'e', 'f', 'g'};
    TH_ASSERT_EQ_INT(ascii_copy(out, sizeof out, in, sizeof in), 7); /* cap - 1 */
    TH_ASSERT_EQ_STR(out, "a???bcd");
    TH_ASSERT_EQ_INT(ascii_copy(out, sizeof out, "hi", 2), 2);
    TH_ASSERT_EQ_STR(out, "hi");
    TH_ASSERT_EQ_INT(ascii_copy(out, 1, "hi", 2), 0);
    TH_ASSERT_EQ_STR(out, "");
    out[0] = 'x';
    TH_ASSERT_EQ_INT(ascii_copy(out, 0, "hi", 2), 0);
    TH_ASSERT_EQ_INT(out[0], 'x'); /* nothing written */
}

int main(void)
{
    TH_RUN(t_or_q);
    TH_RUN(t_copy);
    return th_done();
}
