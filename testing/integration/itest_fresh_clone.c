/* itest_fresh_clone.c — a new user's first command, inside `make test`.
 *
 * Runs testing/deploy/fresh_clone.sh: git clone of this repository's HEAD
 * into a temporary directory, plain `make` there (no target), and a check
 * that build/spillway, build/spillway-mockup and build/spillway-loadgen
 * exist and answer --help. The script prints the "PASS: fresh_clone/..." /
 * "FAIL: fresh_clone/..." lines that testing/run_tests.sh counts. cwd is the
 * repository root. Without git the test is skipped.
 */
#include <stdio.h>
#include <stdlib.h>

#include "testing/lib/th_proc.h"

int main(void)
{
    if (system("command -v git >/dev/null 2>&1") != 0) {
        printf("SKIP: fresh_clone: git is not installed\n");
        return 0;
    }
    if (system("git rev-parse --git-dir >/dev/null 2>&1") != 0) {
        printf("SKIP: fresh_clone: not a git checkout\n");
        return 0;
    }
    return th_exec_script("fresh_clone", "testing/deploy/fresh_clone.sh", ".");
}
